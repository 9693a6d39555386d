/*
 * appmesh.c: the AWS App Mesh provider (REST API 2019-01-25, SigV4).
 *
 * Three roles behind the mesh provider interface: rendering the five App
 * Mesh resources (mesh -> virtual node -> virtual router -> route -> virtual
 * service) and the pod's Envoy proxy; the REST client (libcurl's SigV4,
 * retries with full-jitter backoff on throttling, 5xx and transport errors,
 * a clientToken on creates so a retried create is idempotent); and the
 * backend that plans, applies and destroys those resources. API errors are
 * reported with App Mesh's own type and message.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "infergate/bootstrap/appmesh.h"
#include "infergate/bootstrap/stack.h"
#include "infergate/base/error.h"

#define API "/v20190125"

/* ---- client ---------------------------------------------------------- */

/* The region: `*region` when set (bootstrap.mesh.region), else AWS_REGION,
 * else AWS_DEFAULT_REGION. Returns 0 or IG_ECONFIG. */
static int resolve_region(const char **region, char *const *envp, char *err, size_t errlen)
{
    if (!*region)
        *region = ig_env_get(envp, "AWS_REGION");
    if (!*region)
        *region = ig_env_get(envp, "AWS_DEFAULT_REGION");
    if (!*region) {
        snprintf(err, errlen, "bootstrap.mesh.region: not set, and neither is AWS_REGION");
        return IG_ECONFIG;
    }
    return 0;
}

int ig_appmesh_init(ig_appmesh_t *m, const char *region, char *const *envp, char *err,
                    size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (resolve_region(&region, envp, err, errlen) != 0)
        return IG_ECONFIG;
    m->region = ig_xstrdup(region);
    const char *ep = ig_env_get(envp, "AWS_ENDPOINT_URL_APPMESH");
    if (!ep)
        ep = ig_env_get(envp, "AWS_ENDPOINT_URL");
    ig_buf_t b;
    ig_buf_init(&b, 0);
    if (ep)
        ig_buf_append_str(&b, ep);
    else
        ig_buf_printf(&b, "https://appmesh.%s.amazonaws.com", region);
    while (b.len && b.base[b.len - 1] == '/')
        b.base[--b.len] = '\0';
    m->endpoint = ig_buf_take(&b, NULL);
    snprintf(m->sigv4, sizeof(m->sigv4), "aws:amz:%s:appmesh", region);
    ig_client_retry_default(&m->retry, envp);
    m->inuse_wait_s = 30;
    int rc = ig_aws_creds_resolve(&m->creds, envp, region, err, errlen);
    if (rc != 0) {
        ig_appmesh_dispose(m);
        return rc;
    }
    return 0;
}

void ig_appmesh_dispose(ig_appmesh_t *m)
{
    free(m->endpoint);
    free(m->region);
    ig_aws_creds_dispose(&m->creds);
    memset(m, 0, sizeof(*m));
}

static const char *default_type(long status)
{
    switch (status) {
    case 400:
        return "BadRequestException";
    case 403:
        return "ForbiddenException";
    case 404:
        return "NotFoundException";
    case 409:
        return "ConflictException";
    case 429:
        return "TooManyRequestsException";
    case 503:
        return "ServiceUnavailableException";
    default:
        return status >= 500 ? "InternalServerErrorException" : "UnknownError";
    }
}

/* App Mesh asks to slow down with these error types too, whatever the status. */
static bool am_again(int rc, const ig_client_resp_t *resp)
{
    return ig_client_again(rc, resp) ||
           (rc == 0 && (!strcmp(resp->error_type, "ThrottlingException") ||
                        !strcmp(resp->error_type, "TooManyRequestsException")));
}

/* "App Mesh GET /v20190125/meshes/x: HTTP 404 NotFoundException: message". */
static void am_api_error(const ig_client_req_t *req, const ig_client_resp_t *resp, const cJSON *j,
                         const void *path, char *err, size_t errlen)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItemCaseSensitive(j, "Message");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(j, "__type");
    const char *t = resp->error_type[0]   ? resp->error_type
                    : cJSON_IsString(typ) ? typ->valuestring
                                          : default_type(resp->status);
    const char *hash = strrchr(t, '#'); /* "ns#Type" */
    snprintf(err, errlen, "App Mesh %s %s: HTTP %ld %s: %s", req->method, (const char *)path,
             resp->status, hash ? hash + 1 : t,
             cJSON_IsString(msg) ? msg->valuestring : "(no message)");
}

int ig_appmesh_call(ig_appmesh_t *m, const char *method, const char *path, const cJSON *body,
                    long *status, cJSON **out, char *err, size_t errlen)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    ig_buf_t url;
    ig_buf_init(&url, 0);
    ig_buf_printf(&url, "%s%s", m->endpoint, path);
    ig_client_req_t req = {.method = method,
                           .url = url.base,
                           .body = text,
                           .body_len = text ? strlen(text) : 0,
                           .content_type = text ? "application/json" : NULL,
                           .sigv4 = m->sigv4,
                           .access_key = m->creds.access_key,
                           .secret_key = m->creds.secret_key,
                           .session_token = m->creds.session_token};
    int rc = ig_client_json_call(&req, &m->retry, am_again, am_api_error, path, status, out, err,
                                 errlen);
    if (rc != 0 && rc != IG_EAPI) {
        char inner[512];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "App Mesh unreachable after %d attempts: %s", m->retry.max_attempts,
                 inner);
    }
    free(text);
    ig_buf_dispose(&url);
    return rc;
}

/* ---- provider: render ------------------------------------------------ */

static int am_vars(const ig_bootstrap_conf_t *c, char *const *envp, ig_tpl_vars_t *v, char *err,
                   size_t errlen)
{
    const char *region = c->mesh.region;
    if (resolve_region(&region, envp, err, errlen) != 0)
        return IG_ECONFIG;
    ig_tpl_vars_set(v, "REGION", region);
    ig_tpl_vars_set(v, "MESH_NAME", c->mesh.name);
    ig_tpl_vars_set(v, "VIRTUAL_NODE", c->name);
    ig_tpl_vars_setf(v, "VIRTUAL_ROUTER", "%s-router", c->name);
    ig_tpl_vars_setf(v, "ROUTE", "%s-route", c->name);
    ig_tpl_vars_set(v, "VIRTUAL_SERVICE", c->mesh.hostname);
    ig_tpl_vars_set(v, "MESH_HOSTNAME", c->mesh.hostname);
    /* The virtual node finds its pods through a headless Service (rendered
     * by the Kubernetes half when DISCOVERY_SERVICE is set): callers' Envoys
     * then see every ready pod (responseType ENDPOINTS) and balance each
     * request, where a ClusterIP would pin their keep-alive connections. */
    ig_tpl_vars_setf(v, "DISCOVERY_SERVICE", "%s-pods", c->name);
    ig_tpl_vars_setf(v, "DISCOVERY_HOSTNAME", "%s-pods.%s.svc.cluster.local", c->name,
                     c->namespace_);
    ig_tpl_vars_set(v, "EGRESS_FILTER", c->mesh.egress_filter);
    ig_tpl_vars_set(v, "ENVOY_IMAGE", c->mesh.envoy_image);
    ig_tpl_vars_set(v, "PROXY_INIT_IMAGE", c->mesh.proxy_init_image);
    return 0;
}

static int am_add(ig_bootstrap_stack_t *s, const char *tpl_dir, const ig_tpl_vars_t *v,
                  const char *source, const char *kind, const char *name, const char *parent,
                  const char *path, char *err, size_t errlen)
{
    cJSON *body = NULL;
    int rc = ig_bootstrap_template_load(tpl_dir, source, v, &body, err, errlen);
    if (rc == 0)
        ig_bootstrap_stack_add(s, &ig_bootstrap_appmesh_backend, kind, name, source, path, parent,
                               body);
    return rc;
}

static int am_render(const ig_bootstrap_conf_t *c, const char *tpl_dir, const ig_tpl_vars_t *v,
                     ig_bootstrap_stack_t *s, char *err, size_t errlen)
{
    const char *mesh = ig_tpl_vars_get(v, "MESH_NAME");
    const char *vn = ig_tpl_vars_get(v, "VIRTUAL_NODE");
    const char *vr = ig_tpl_vars_get(v, "VIRTUAL_ROUTER");
    const char *rt = ig_tpl_vars_get(v, "ROUTE");
    const char *vs = ig_tpl_vars_get(v, "VIRTUAL_SERVICE");
    char path[1024], parent[600];
    int rc;
    (void)c;
    /* Names go into URL paths: escape them (a mesh name may hold any byte). */
    CURL *h = curl_easy_init();
    if (!h)
        return IG_ENOMEM;
    char *em = curl_easy_escape(h, mesh, 0), *evn = curl_easy_escape(h, vn, 0);
    char *evr = curl_easy_escape(h, vr, 0), *ert = curl_easy_escape(h, rt, 0);
    char *evs = curl_easy_escape(h, vs, 0);
    snprintf(path, sizeof(path), API "/meshes/%s", em);
    rc = am_add(s, tpl_dir, v, "mesh-config/mesh.json", "Mesh", mesh, NULL, path, err, errlen);
    snprintf(parent, sizeof(parent), "%s", mesh);
    snprintf(path, sizeof(path), API "/meshes/%s/virtualNodes/%s", em, evn);
    if (rc == 0)
        rc = am_add(s, tpl_dir, v, "mesh-config/virtual-node.json", "VirtualNode", vn, parent, path,
                    err, errlen);
    snprintf(path, sizeof(path), API "/meshes/%s/virtualRouters/%s", em, evr);
    if (rc == 0)
        rc = am_add(s, tpl_dir, v, "mesh-config/virtual-router.json", "VirtualRouter", vr, parent,
                    path, err, errlen);
    snprintf(parent, sizeof(parent), "%s/%s", mesh, vr);
    snprintf(path, sizeof(path), API "/meshes/%s/virtualRouter/%s/routes/%s", em, evr, ert);
    if (rc == 0)
        rc =
            am_add(s, tpl_dir, v, "mesh-config/route.json", "Route", rt, parent, path, err, errlen);
    snprintf(parent, sizeof(parent), "%s", mesh);
    snprintf(path, sizeof(path), API "/meshes/%s/virtualServices/%s", em, evs);
    if (rc == 0)
        rc = am_add(s, tpl_dir, v, "mesh-config/virtual-service.json", "VirtualService", vs, parent,
                    path, err, errlen);
    curl_free(em);
    curl_free(evn);
    curl_free(evr);
    curl_free(ert);
    curl_free(evs);
    curl_easy_cleanup(h);
    if (rc == 0) {
        cJSON_AddStringToObject(s->outputs, "mesh", mesh);
        cJSON_AddStringToObject(s->outputs, "virtual_node", vn);
        cJSON_AddStringToObject(s->outputs, "virtual_router", vr);
        cJSON_AddStringToObject(s->outputs, "virtual_service", vs);
    }
    return rc;
}

static cJSON *array_member(cJSON *obj, const char *key)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        a = cJSON_AddArrayToObject(obj, key);
    }
    return a;
}

static int am_pod_patch(const ig_bootstrap_conf_t *c, const char *tpl_dir, const ig_tpl_vars_t *v,
                        cJSON *pod, cJSON *ann, char *err, size_t errlen)
{
    cJSON *frag = NULL;
    int rc = ig_bootstrap_template_load(tpl_dir, "k8s/appmesh-proxy.yaml", v, &frag, err, errlen);
    if (rc)
        return rc;
    static const char *const keys[] = {"initContainers", "containers"};
    for (int k = 0; k < 2; k++) {
        cJSON *src = cJSON_GetObjectItemCaseSensitive(frag, keys[k]);
        cJSON *dst = array_member(pod, keys[k]);
        cJSON *it;
        cJSON_ArrayForEach(it, src)
        {
            cJSON *dup = cJSON_Duplicate(it, true);
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(dup, "name");
            if (k == 1 && cJSON_IsString(name) && !strcmp(name->valuestring, "envoy") &&
                c->resources_proxy) {
                cJSON_DeleteItemFromObjectCaseSensitive(dup, "resources");
                cJSON_AddItemToObject(dup, "resources", cJSON_Duplicate(c->resources_proxy, true));
            }
            cJSON_AddItemToArray(dst, dup);
        }
    }
    cJSON_Delete(frag);
    /* The App Mesh controller's webhook would inject a second Envoy. */
    if (ann)
        cJSON_AddStringToObject(ann, "appmesh.k8s.aws/sidecarInjectorWebhook", "disabled");
    return 0;
}

static int am_ctx_new(const ig_bootstrap_conf_t *c, char *const *envp, void **ctx, char *err,
                      size_t errlen)
{
    ig_appmesh_t *m = ig_xcalloc(1, sizeof(*m));
    int rc = ig_appmesh_init(m, c->mesh.region, envp, err, errlen);
    if (rc != 0) {
        free(m);
        return rc;
    }
    *ctx = m;
    return 0;
}

static void am_ctx_free(void *ctx)
{
    if (ctx) {
        ig_appmesh_dispose(ctx);
        free(ctx);
    }
}

const ig_mesh_provider_t ig_mesh_appmesh = {
    .name = "appmesh",
    .vars = am_vars,
    .render = am_render,
    .pod_patch = am_pod_patch,
    .ctx_new = am_ctx_new,
    .ctx_free = am_ctx_free,
};

/* ---- backend: plan / apply / destroy ---------------------------------- */

/* "VirtualNode" -> "virtualNode": the describe answer's member. */
static void data_key(const char *kind, char *out, size_t n)
{
    snprintf(out, n, "%s", kind);
    if (out[0] >= 'A' && out[0] <= 'Z')
        out[0] = (char)(out[0] - 'A' + 'a');
}

static void client_token(char out[37])
{
    unsigned char rnd[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, rnd, sizeof(rnd));
        (void)n;
        close(fd);
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[32] = '\0';
}

/* Reads the live resource: 0 with *live (the describe member), or 0 with
 * *live NULL when it does not exist. */
static int am_read(ig_appmesh_t *m, const ig_bootstrap_resource_t *r, cJSON **live, char *err,
                   size_t errlen)
{
    long st;
    cJSON *ans = NULL;
    *live = NULL;
    int rc = ig_appmesh_call(m, "GET", r->path, NULL, &st, &ans, err, errlen);
    if (rc == IG_EAPI && st == 404)
        return 0;
    if (rc)
        return rc;
    /* The describe output's payload member ("mesh", "virtualNode", …) is the
     * whole body (the service model marks it as the payload). */
    char key[64];
    data_key(r->kind, key, sizeof(key));
    cJSON *d = cJSON_DetachItemFromObjectCaseSensitive(ans, key);
    if (d) {
        cJSON_Delete(ans);
        ans = d;
    }
    if (!cJSON_IsObject(ans) || !cJSON_GetObjectItemCaseSensitive(ans, "metadata")) {
        cJSON_Delete(ans);
        snprintf(err, errlen, "App Mesh GET %s: answer is not a %s description", r->path, key);
        return IG_EPROTO;
    }
    *live = ans;
    return 0;
}

static int am_managed(ig_appmesh_t *m, const cJSON *live, bool *managed, char *err, size_t errlen)
{
    const cJSON *arn =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(live, "metadata"), "arn");
    *managed = false;
    if (!cJSON_IsString(arn))
        return 0;
    CURL *h = curl_easy_init();
    char *e = h ? curl_easy_escape(h, arn->valuestring, 0) : NULL;
    ig_buf_t p;
    ig_buf_init(&p, 0);
    ig_buf_printf(&p, API "/tags?resourceArn=%s", e ? e : "");
    curl_free(e);
    if (h)
        curl_easy_cleanup(h);
    long st;
    cJSON *ans = NULL;
    int rc = ig_appmesh_call(m, "GET", p.base, NULL, &st, &ans, err, errlen);
    ig_buf_dispose(&p);
    if (rc)
        return rc;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(ans, "tags"))
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "key");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "value");
        if (cJSON_IsString(k) && cJSON_IsString(v) && !strcmp(k->valuestring, "managed-by") &&
            !strcmp(v->valuestring, "infergate"))
            *managed = true;
    }
    cJSON_Delete(ans);
    return 0;
}

static int am_plan(void *ctx, const ig_bootstrap_resource_t *r, ig_bootstrap_plan_t *p, char *err,
                   size_t errlen)
{
    ig_appmesh_t *m = ctx;
    cJSON *live = NULL;
    int rc = am_read(m, r, &live, err, errlen);
    if (rc)
        return rc;
    if (!live) {
        p->action = IG_BOOTSTRAP_CREATE;
        return 0;
    }
    rc = am_managed(m, live, &p->managed, err, errlen);
    if (rc == 0) {
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(r->body, "spec");
        const cJSON *have = cJSON_GetObjectItemCaseSensitive(live, "spec");
        /* App Mesh fills defaults into what it returns: compare what we set. */
        p->ndiff = ig_bootstrap_diff(want ? want : cJSON_GetObjectItemCaseSensitive(live, "spec"),
                                     have, true, "spec", &p->diff);
        p->action = p->ndiff ? IG_BOOTSTRAP_UPDATE : IG_BOOTSTRAP_NOOP;
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(live, "metadata"), "version");
        if (cJSON_IsNumber(ver)) {
            char vb[32];
            snprintf(vb, sizeof(vb), "%.0f", ver->valuedouble);
            p->version = ig_xstrdup(vb);
        }
    }
    cJSON_Delete(live);
    return rc;
}

static int am_apply(void *ctx, const ig_bootstrap_resource_t *r, const ig_bootstrap_plan_t *p,
                    char *err, size_t errlen)
{
    ig_appmesh_t *m = ctx;
    if (p->action == IG_BOOTSTRAP_NOOP)
        return 0;
    char token[37];
    client_token(token);
    long st;
    int rc;
    if (p->action == IG_BOOTSTRAP_CREATE) {
        cJSON *body = cJSON_Duplicate(r->body, true);
        cJSON_AddStringToObject(body, "clientToken", token);
        /* The collection is the path without its last segment. */
        char coll[1024];
        snprintf(coll, sizeof(coll), "%s", r->path);
        char *slash = strrchr(coll, '/');
        if (slash)
            *slash = '\0';
        if (!strcmp(r->kind, "Mesh"))
            snprintf(coll, sizeof(coll), API "/meshes");
        rc = ig_appmesh_call(m, "PUT", coll, body, &st, NULL, err, errlen);
        cJSON_Delete(body);
        return rc;
    }
    if (!p->managed) {
        snprintf(err, errlen,
                 "App Mesh %s %s exists without the managed-by=infergate tag; "
                 "refusing to change it (tag it, or remove it)",
                 r->kind, r->name);
        return IG_EEXIST;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(r->body, "spec");
    cJSON_AddItemToObject(body, "spec", spec ? cJSON_Duplicate(spec, true) : cJSON_CreateObject());
    cJSON_AddStringToObject(body, "clientToken", token);
    rc = ig_appmesh_call(m, "PUT", r->path, body, &st, NULL, err, errlen);
    cJSON_Delete(body);
    return rc;
}

static int am_destroy(void *ctx, const ig_bootstrap_resource_t *r,
                      ig_bootstrap_delete_result_t *res, char *err, size_t errlen)
{
    ig_appmesh_t *m = ctx;
    cJSON *live = NULL;
    int rc = am_read(m, r, &live, err, errlen);
    if (rc)
        return rc;
    if (!live) {
        *res = IG_BOOTSTRAP_ABSENT;
        return 0;
    }
    bool managed = false;
    rc = am_managed(m, live, &managed, err, errlen);
    cJSON_Delete(live);
    if (rc)
        return rc;
    if (!managed) {
        *res = IG_BOOTSTRAP_NOT_MANAGED;
        return 0;
    }
    /* App Mesh refuses to delete a parent while its children are still
     * being deleted (ResourceInUseException): wait for them, bounded. */
    long waited_ms = 0;
    for (int attempt = 0;; attempt++) {
        long st;
        rc = ig_appmesh_call(m, "DELETE", r->path, NULL, &st, NULL, err, errlen);
        if (rc == IG_EAPI && st == 404) {
            *res = IG_BOOTSTRAP_ABSENT;
            return 0;
        }
        if (rc != IG_EAPI || st != 409 || !strstr(err, "ResourceInUse") ||
            waited_ms >= m->inuse_wait_s * 1000L)
            break;
        long d = 500L << (attempt < 4 ? attempt : 4);
        ig_client_sleep_ms(d);
        waited_ms += d;
    }
    if (rc == IG_EAPI && strstr(err, "ResourceInUse")) {
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0,
                 " (still in use after %d s: it holds or is referenced by resources infergate "
                 "did not create)",
                 m->inuse_wait_s);
    }
    if (rc == 0)
        *res = IG_BOOTSTRAP_DELETED;
    return rc;
}

const ig_bootstrap_backend_t ig_bootstrap_appmesh_backend = {
    .name = "appmesh",
    .plan = am_plan,
    .apply = am_apply,
    .destroy = am_destroy,
};
