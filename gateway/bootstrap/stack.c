/*
 * stack.c: turns the config into the ordered list of resources (render).
 *
 * The Kubernetes half lives here: ServiceAccount -> ConfigMap -> Deployment ->
 * PodDisruptionBudget -> Service (and the headless one a DNS-discovering mesh
 * asks for) -> prometheus-adapter rules -> HPA (or KEDA ScaledObject). The mesh provider
 * adds its own resources first and patches the pod spec with its proxy; this
 * file never looks at what it adds. Rendering is pure: no network, and the
 * same inputs give the same bytes. The structural diff that plan prints is
 * diff.c.
 */
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "infergate/bootstrap/kube.h"
#include "infergate/bootstrap/stack.h"
#include "infergate/base/error.h"
#include "infergate/base/hash.h"
#include "infergate/base/log.h"

void ig_bootstrap_stack_init(ig_bootstrap_stack_t *s)
{
    memset(s, 0, sizeof(*s));
    s->outputs = cJSON_CreateObject();
}

void ig_bootstrap_stack_dispose(ig_bootstrap_stack_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ig_bootstrap_resource_t *r = &s->items[i];
        free(r->kind);
        free(r->name);
        free(r->source);
        free(r->path);
        free(r->parent);
        cJSON_Delete(r->body);
    }
    free(s->items);
    cJSON_Delete(s->outputs);
    memset(s, 0, sizeof(*s));
}

ig_bootstrap_resource_t *ig_bootstrap_stack_add(ig_bootstrap_stack_t *s,
                                                const ig_bootstrap_backend_t *backend,
                                                const char *kind, const char *name,
                                                const char *source, const char *path,
                                                const char *parent, cJSON *body)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = ig_xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    ig_bootstrap_resource_t *r = &s->items[s->n++];
    r->backend = backend;
    r->kind = ig_xstrdup(kind);
    r->name = ig_xstrdup(name);
    r->source = ig_xstrdup(source);
    r->path = ig_xstrdup(path);
    r->parent = parent ? ig_xstrdup(parent) : NULL;
    r->body = body;
    return r;
}

int ig_bootstrap_template_load(const char *dir, const char *path, const ig_tpl_vars_t *vars,
                               cJSON **out, char *err, size_t errlen)
{
    char *owned = NULL;
    const char *text;
    size_t len;
    char full[1024];
    if (dir) {
        snprintf(full, sizeof(full), "%s/%s", dir, path);
        if (ig_file_read(full, 16u << 20, &owned, &len) != 0) {
            snprintf(err, errlen, "%s: cannot read template", full);
            return IG_EIO;
        }
        text = owned;
    } else {
        text = ig_tpl_builtin(path);
        if (!text) {
            snprintf(err, errlen, "%s: no such built-in template", path);
            return IG_ENOTFOUND;
        }
        len = strlen(text);
        snprintf(full, sizeof(full), "%s", path);
    }
    ig_buf_t b;
    ig_buf_init(&b, 16u << 20);
    int rc = ig_tpl_subst(text, len, vars, full, &b, err, errlen);
    free(owned);
    if (rc == 0) {
        size_t pl = strlen(path);
        if (pl > 5 && !strcmp(path + pl - 5, ".json")) {
            const char *end = NULL;
            *out = cJSON_ParseWithLengthOpts(b.base, b.len, &end, 0);
            if (!*out) {
                snprintf(err, errlen, "%s: invalid JSON after substitution near byte %zu", full,
                         end ? (size_t)(end - b.base) : 0);
                rc = IG_EPARSE;
            }
        } else {
            rc = ig_yaml_to_json(b.base, b.len, full, out, err, errlen);
        }
    }
    ig_buf_dispose(&b);
    return rc;
}

/* ---- the Kubernetes half --------------------------------------------- */

static int port_of(const char *addr, const char *key, int *port, char *err, size_t errlen)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || !end || (*end && *end != '/') || p < 1 || p > 65535) {
        /* `addr` may be upstream.url's "user:password@host" part. */
        char *shown = ig_log_redact_url(addr ? addr : "");
        snprintf(err, errlen, "%s: cannot find a port in \"%s\"", key, shown);
        free(shown);
        return IG_ECONFIG;
    }
    *port = (int)p;
    return 0;
}

static char *gateway_config_json(const ig_config_t *gc)
{
    char *full = ig_config_to_json(gc, false);
    cJSON *j = full ? cJSON_Parse(full) : NULL;
    free(full);
    if (!j)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "bootstrap");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "source");
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    /* cJSON indents with tabs (raw tabs appear nowhere else: strings escape
     * them); two spaces read better in `kubectl get configmap -o yaml`. */
    ig_buf_t b;
    ig_buf_init(&b, 0);
    bool line_start = true;
    for (const char *p = txt; *p; p++) {
        if (*p == '\t')
            ig_buf_append(&b, line_start ? "  " : " ", line_start ? 2 : 1);
        else
            ig_buf_append(&b, p, 1);
        line_start = *p == '\n' || (line_start && *p == '\t');
    }
    ig_buf_append(&b, "\n", 1);
    free(txt);
    return ig_buf_take(&b, NULL);
}

static void quantity(char *out, size_t n, double v)
{
    long long milli = llround(v * 1000.0);
    if (milli % 1000 == 0)
        snprintf(out, n, "%lld", milli / 1000);
    else
        snprintf(out, n, "%lldm", milli);
}

static int common_vars(const ig_bootstrap_conf_t *c, const ig_config_t *gc, ig_tpl_vars_t *v,
                       char *err, size_t errlen)
{
    int gport, aport, uport;
    int rc;
    if ((rc = port_of(gc->listen, "listen", &gport, err, errlen)) ||
        (rc = port_of(gc->admin_listen, "admin_listen", &aport, err, errlen)))
        return rc;
    /* In the pod, the Service, the mesh proxy and the kubelet's probes reach
     * the gateway on the pod IP: loopback-only listeners would be unreachable. */
    const char *lst[2][2] = {{"listen", gc->listen}, {"admin_listen", gc->admin_listen}};
    for (int i = 0; i < 2; i++) {
        const char *a = lst[i][1];
        if (!strncmp(a, "127.", 4) || !strncmp(a, "[::1]", 5) || !strncmp(a, "localhost", 9)) {
            snprintf(err, errlen,
                     "%s: \"%s\" listens on loopback only; in the pod the "
                     "Service and the probes need 0.0.0.0 (or [::])",
                     lst[i][0], a);
            return IG_ECONFIG;
        }
    }
    const char *u = gc->upstream.url ? gc->upstream.url : "";
    const char *hostpart = strstr(u, "://") ? strstr(u, "://") + 3 : u;
    if ((rc = port_of(hostpart, "upstream.url", &uport, err, errlen)))
        return rc;
    if (uport != c->model_port ||
        (strncmp(hostpart, "127.0.0.1:", 10) && strncmp(hostpart, "localhost:", 10) &&
         strncmp(hostpart, "[::1]:", 6))) {
        char *shown = ig_log_redact_url(u);
        snprintf(err, errlen,
                 "bootstrap.model_port: the sidecar reaches the model container at "
                 "http://127.0.0.1:%d, but upstream.url is \"%s\"; make them agree",
                 c->model_port, shown);
        free(shown);
        return IG_ECONFIG;
    }
    if (gport == aport || gport == c->model_port || aport == c->model_port) {
        snprintf(err, errlen,
                 "bootstrap.model_port: listen (%d), admin_listen (%d) and "
                 "model_port (%d) share one pod and must differ",
                 gport, aport, c->model_port);
        return IG_ECONFIG;
    }
    char *cfg = gateway_config_json(gc);
    if (!cfg) {
        snprintf(err, errlen, "cannot serialise the gateway configuration");
        return IG_ECONFIG;
    }
    ig_tpl_vars_set(v, "GATEWAY_CONFIG", cfg);
    ig_tpl_vars_setf(v, "CONFIG_HASH", "%016" PRIx64, ig_hash_bytes(cfg, strlen(cfg)));
    free(cfg);

    ig_tpl_vars_set(v, "NAME", c->name);
    ig_tpl_vars_set(v, "NAMESPACE", c->namespace_);
    ig_tpl_vars_set(v, "MODEL_IMAGE", c->model_image);
    ig_tpl_vars_set(v, "GATEWAY_IMAGE", c->gateway_image);
    ig_tpl_vars_set(v, "IMAGE_PULL_POLICY", c->image_pull_policy);
    ig_tpl_vars_set(v, "SERVICE_ACCOUNT", c->kubernetes.service_account);
    ig_tpl_vars_setf(v, "MODEL_PORT", "%d", c->model_port);
    ig_tpl_vars_setf(v, "GATEWAY_PORT", "%d", gport);
    ig_tpl_vars_setf(v, "ADMIN_PORT", "%d", aport);
    ig_tpl_vars_setf(v, "MIN_REPLICAS", "%d", c->replicas_min);
    ig_tpl_vars_setf(v, "MAX_REPLICAS", "%d", c->replicas_max);
    char q[64];
    quantity(q, sizeof(q), c->autoscaling.load_factor_target);
    ig_tpl_vars_set(v, "LOAD_FACTOR_TARGET", q);
    ig_tpl_vars_setf(v, "LOAD_FACTOR_TARGET_DECIMAL", "%g", c->autoscaling.load_factor_target);
    ig_tpl_vars_setf(v, "QUEUE_DEPTH_TARGET", "%d", c->autoscaling.queue_depth_target);
    ig_tpl_vars_setf(v, "CPU_UTILIZATION", "%d", c->autoscaling.cpu_utilization);
    ig_tpl_vars_set(v, "PROMETHEUS_URL", c->autoscaling.prometheus_url);
    ig_tpl_vars_set(v, "ADAPTER_NAMESPACE", c->autoscaling.adapter_namespace);

    /* The model's preStop waits for the whole drain; the pod's grace period
     * must outlast it, with room for the kubelet's own bookkeeping. */
    unsigned long long drain_ms = gc->drain.grace_ms + gc->drain.timeout_ms;
    unsigned long long wait_s = (drain_ms + 999) / 1000 + 1;
    ig_tpl_vars_setf(v, "DRAIN_WAIT_S", "%llu", wait_s);
    ig_tpl_vars_setf(v, "TERMINATION_GRACE_S", "%llu", wait_s + 5);
    /* What a preStop hook runs to wait for the drain: the gateway answers
     * GET /admin/drain?wait=1 when it has drained. A failed call means it is
     * already gone, so the hook returns at once instead of sleeping the whole
     * drain out; only an image with neither curl nor wget sleeps. */
    ig_tpl_vars_setf(v, "DRAIN_WAIT_CMD",
                     "if command -v curl >/dev/null 2>&1; then "
                     "curl -fsS -m %llu -o /dev/null 'http://127.0.0.1:%d/admin/drain?wait=1' "
                     "|| true; "
                     "elif command -v wget >/dev/null 2>&1; then "
                     "wget -q -O /dev/null -T %llu 'http://127.0.0.1:%d/admin/drain?wait=1' "
                     "|| true; "
                     "else sleep %llu; fi",
                     wait_s, aport, wait_s, aport, wait_s);

    /* A mesh proxy in front must not cut a request the gateway would still
     * serve: allow the longest queue wait plus the model's timeout. */
    unsigned long long qmax = 0;
    for (size_t i = 0; i < gc->nroutes; i++)
        if (gc->routes[i].queue_timeout_ms > qmax)
            qmax = gc->routes[i].queue_timeout_ms;
    unsigned long long req_ms = (unsigned long long)gc->upstream.timeout_ms + qmax + 1000;
    ig_tpl_vars_setf(v, "REQUEST_TIMEOUT_MS", "%llu", req_ms);
    /* The mesh's idle timeout is a stream's: no byte flows while the model
     * computes, so it must not be shorter than the longest request. */
    unsigned long long idle_ms = gc->limits.idle_timeout_ms;
    ig_tpl_vars_setf(v, "IDLE_TIMEOUT_MS", "%llu", idle_ms > req_ms ? idle_ms : req_ms);
    return 0;
}

static cJSON *find_named(cJSON *arr, const char *name)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return it;
    }
    return NULL;
}

static void set_resources(cJSON *containers, const char *name, const cJSON *res)
{
    cJSON *ct = find_named(containers, name);
    if (!ct || !res)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(ct, "resources");
    cJSON_AddItemToObject(ct, "resources", cJSON_Duplicate(res, true));
}

static int add_kube(ig_bootstrap_stack_t *s, const char *source, cJSON *obj, char *err,
                    size_t errlen)
{
    ig_buf_t path;
    ig_buf_init(&path, 0);
    int rc = ig_kube_object_path(obj, &path, err, errlen);
    if (rc == 0) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
        ig_bootstrap_stack_add(s, &ig_bootstrap_kube_backend, kind->valuestring, name->valuestring,
                               source, path.base, NULL, obj);
    } else {
        cJSON_Delete(obj);
    }
    ig_buf_dispose(&path);
    return rc;
}

/* Loads one Kubernetes template and appends it. */
static int add_template(ig_bootstrap_stack_t *s, const char *tpl_dir, const char *path,
                        const ig_tpl_vars_t *v, char *err, size_t errlen)
{
    cJSON *obj = NULL;
    int rc = ig_bootstrap_template_load(tpl_dir, path, v, &obj, err, errlen);
    if (rc == 0)
        rc = add_kube(s, path, obj, err, errlen);
    return rc;
}

static int add_service_account(const ig_bootstrap_conf_t *c, ig_bootstrap_stack_t *s,
                               const char *tpl_dir, const ig_tpl_vars_t *v, char *err,
                               size_t errlen)
{
    cJSON *obj = NULL;
    int rc = ig_bootstrap_template_load(tpl_dir, "k8s/serviceaccount.yaml", v, &obj, err, errlen);
    if (rc)
        return rc;
    if (cJSON_GetArraySize(c->kubernetes.sa_annotations) > 0) {
        cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        if (cJSON_IsObject(md)) {
            cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
            cJSON_AddItemToObject(md, "annotations",
                                  cJSON_Duplicate(c->kubernetes.sa_annotations, true));
        }
    }
    return add_kube(s, "k8s/serviceaccount.yaml", obj, err, errlen);
}

static int add_deployment(const ig_bootstrap_conf_t *c, const ig_mesh_provider_t *mp,
                          ig_bootstrap_stack_t *s, const char *tpl_dir, const ig_tpl_vars_t *v,
                          char *err, size_t errlen)
{
    cJSON *obj = NULL;
    int rc = ig_bootstrap_template_load(tpl_dir, "k8s/deployment.yaml", v, &obj, err, errlen);
    if (rc)
        return rc;
    cJSON *tmpl =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "template");
    cJSON *pod = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), "annotations");
    cJSON *containers = cJSON_GetObjectItemCaseSensitive(pod, "containers");
    set_resources(containers, "model", c->resources_model);
    set_resources(containers, "infergate", c->resources_gateway);
    if (mp->pod_patch)
        rc = mp->pod_patch(c, tpl_dir, v, pod, ann, err, errlen);
    if (rc) {
        cJSON_Delete(obj);
        return rc;
    }
    return add_kube(s, "k8s/deployment.yaml", obj, err, errlen);
}

int ig_bootstrap_render(const ig_bootstrap_conf_t *c, const ig_config_t *gc, const char *tpl_dir,
                        char *const *envp, ig_bootstrap_stack_t *s, char *err, size_t errlen)
{
    const ig_mesh_provider_t *mp = ig_mesh_provider_find(c->mesh.provider);
    if (!mp) {
        snprintf(err, errlen, "bootstrap.mesh.provider: unknown provider \"%s\"", c->mesh.provider);
        return IG_ECONFIG;
    }
    ig_tpl_vars_t v;
    ig_tpl_vars_init(&v);
    int rc = common_vars(c, gc, &v, err, errlen);
    if (rc == 0 && mp->vars)
        rc = mp->vars(c, envp, &v, err, errlen);
    if (rc == 0 && mp->render)
        rc = mp->render(c, tpl_dir, &v, s, err, errlen);

    /* The ServiceAccount exists before the pods that name it. */
    if (rc == 0 && c->kubernetes.create_service_account)
        rc = add_service_account(c, s, tpl_dir, &v, err, errlen);
    if (rc == 0)
        rc = add_template(s, tpl_dir, "k8s/configmap.yaml", &v, err, errlen);
    if (rc == 0)
        rc = add_deployment(c, mp, s, tpl_dir, &v, err, errlen);
    if (rc == 0)
        rc = add_template(s, tpl_dir, "k8s/poddisruptionbudget.yaml", &v, err, errlen);
    if (rc == 0)
        rc = add_template(s, tpl_dir, "k8s/service.yaml", &v, err, errlen);
    /* A provider that discovers pods by DNS names the headless Service. */
    if (rc == 0 && ig_tpl_vars_get(&v, "DISCOVERY_SERVICE"))
        rc = add_template(s, tpl_dir, "k8s/service-pods.yaml", &v, err, errlen);
    if (rc == 0 && c->autoscaling.engine == IG_BOOTSTRAP_ENGINE_HPA)
        rc = add_template(s, tpl_dir, "k8s/prometheus-adapter-rules.yaml", &v, err, errlen);
    if (rc == 0)
        rc = add_template(s, tpl_dir,
                          c->autoscaling.engine == IG_BOOTSTRAP_ENGINE_KEDA
                              ? "k8s/keda-scaledobject.yaml"
                              : "k8s/hpa.yaml",
                          &v, err, errlen);

    if (rc == 0) {
        const char *host = ig_tpl_vars_get(&v, "MESH_HOSTNAME");
        char ep[512];
        snprintf(ep, sizeof(ep), "http://%s:%s", host ? host : c->mesh.hostname,
                 ig_tpl_vars_get(&v, "GATEWAY_PORT"));
        cJSON_AddStringToObject(s->outputs, "ml_service_endpoint", ep);
        snprintf(ep, sizeof(ep), "%s/%s", c->namespace_, c->name);
        cJSON_AddStringToObject(s->outputs, "deployment", ep);
        snprintf(ep, sizeof(ep), "%s/%s/%s", c->namespace_,
                 c->autoscaling.engine == IG_BOOTSTRAP_ENGINE_KEDA ? "ScaledObject"
                                                                   : "HorizontalPodAutoscaler",
                 c->name);
        cJSON_AddStringToObject(s->outputs, "autoscaler", ep);
    }
    ig_tpl_vars_dispose(&v);
    return rc;
}

/* ---- provider "none": Kubernetes only --------------------------------- */

static int none_render(const ig_bootstrap_conf_t *c, const char *tpl_dir, const ig_tpl_vars_t *vars,
                       ig_bootstrap_stack_t *s, char *err, size_t errlen)
{
    (void)c, (void)tpl_dir, (void)vars, (void)err, (void)errlen;
    cJSON_AddNullToObject(s->outputs, "mesh");
    cJSON_AddNullToObject(s->outputs, "virtual_node");
    cJSON_AddNullToObject(s->outputs, "virtual_router");
    cJSON_AddNullToObject(s->outputs, "virtual_service");
    return 0;
}

const ig_mesh_provider_t ig_mesh_none = {
    .name = "none",
    .vars = NULL,
    .render = none_render,
    .pod_patch = NULL,
    .ctx_new = NULL,
    .ctx_free = NULL,
};

const ig_mesh_provider_t *ig_mesh_provider_find(const char *name)
{
    static const ig_mesh_provider_t *const all[] = {&ig_mesh_appmesh, &ig_mesh_none};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}
