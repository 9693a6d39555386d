/*
 * kube.c: the Kubernetes client and backend of bootstrap.
 *
 * Writes go through server-side apply (PATCH, application/apply-patch+yaml,
 * fieldManager=infergate, force: infergate owns the fields it sets). plan
 * asks the API server what an apply would produce (dryRun=All) and compares
 * that with the live object, so server defaults and normalisation never show
 * up as changes; apply writes only what plan found different, so a second
 * apply writes nothing. destroy deletes, with propagation, only objects that
 * carry app.kubernetes.io/managed-by=infergate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "infergate/bootstrap/kube.h"
#include "infergate/bootstrap/stack.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

#define FIELD_MANAGER "infergate"
#define MANAGED_LABEL "app.kubernetes.io/managed-by"

int ig_kube_init(ig_kube_t *k, const char *kubeconfig, const char *context, char *const *envp,
                 char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    int rc = ig_kube_auth_resolve(&k->auth, kubeconfig, context, envp, err, errlen);
    if (rc)
        return rc;
    if (strncmp(k->auth.server, "https://", 8) && strncmp(k->auth.server, "http://", 7)) {
        char *shown = ig_log_redact_url(k->auth.server);
        snprintf(err, errlen, "%s: server \"%s\" is not an http(s) URL", k->auth.source, shown);
        free(shown);
        ig_kube_auth_dispose(&k->auth);
        return IG_ECONFIG;
    }
    if (k->auth.exec_argv && (rc = ig_kube_exec_credential(&k->auth, err, errlen))) {
        ig_kube_auth_dispose(&k->auth);
        return rc;
    }
    ig_client_retry_default(&k->retry, envp);
    return 0;
}

void ig_kube_dispose(ig_kube_t *k)
{
    ig_kube_auth_dispose(&k->auth);
    free(k->exec_token);
    memset(k, 0, sizeof(*k));
}

static char *read_token(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *t = ig_xstrdup(buf);
    memset(buf, 0, sizeof(buf));
    return t;
}

/* "Kubernetes GET /api/v1/…: HTTP 404 NotFound: message", from the Status object. */
static void kube_api_error(const ig_client_req_t *req, const ig_client_resp_t *resp, const cJSON *j,
                           const void *path, char *err, size_t errlen)
{
    const char *reason = NULL, *msg = NULL;
    if (cJSON_IsObject(j)) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reason");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        reason = cJSON_IsString(r) ? r->valuestring : NULL;
        msg = cJSON_IsString(m) ? m->valuestring : NULL;
    }
    snprintf(err, errlen, "Kubernetes %s %s: HTTP %ld %s: %s", req->method, (const char *)path,
             resp->status, reason ? reason : "Error", msg ? msg : "(no message)");
}

int ig_kube_request(ig_kube_t *k, const char *method, const char *path_and_query,
                    const char *content_type, const char *body, long *status, cJSON **out,
                    char *err, size_t errlen)
{
    ig_kube_auth_t *a = &k->auth;
    char *file_token = NULL;
    if (a->token_file && !a->token) {
        file_token = read_token(a->token_file);
        if (!file_token) {
            snprintf(err, errlen, "%s: cannot read tokenFile %s", a->source, a->token_file);
            return IG_EIO;
        }
    }
    ig_buf_t url;
    ig_buf_init(&url, 0);
    ig_buf_printf(&url, "%s%s", a->server, path_and_query);
    ig_client_req_t req = {.method = method,
                           .url = url.base,
                           .body = body,
                           .body_len = body ? strlen(body) : 0,
                           .content_type = content_type,
                           .bearer = a->token ? a->token : file_token,
                           .insecure = a->insecure,
                           .ca_file = a->ca_file,
                           .ca_pem = a->ca_pem,
                           .cert_file = a->cert_file,
                           .key_file = a->key_file,
                           .cert_pem = a->cert_pem,
                           .key_pem = a->key_pem};
    int rc = ig_client_json_call(&req, &k->retry, ig_client_again, kube_api_error, path_and_query,
                                 status, out, err, errlen);
    if (file_token) {
        memset(file_token, 0, strlen(file_token));
        free(file_token);
    }
    if (rc != 0 && rc != IG_EAPI) {
        char inner[512];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "Kubernetes API unreachable (%s): %s", a->source, inner);
    }
    ig_buf_dispose(&url);
    return rc;
}

int ig_kube_object_path(const cJSON *obj, ig_buf_t *out, char *err, size_t errlen)
{
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    if (!cJSON_IsString(av) || !cJSON_IsString(kind) || !cJSON_IsString(name) ||
        !cJSON_IsString(ns)) {
        snprintf(err, errlen, "object lacks apiVersion, kind, metadata.name or metadata.namespace");
        return IG_EINVAL;
    }
    /* Plural resource names of the kinds bootstrap writes. */
    static const struct {
        const char *kind, *plural;
    } plurals[] = {{"ConfigMap", "configmaps"},
                   {"Service", "services"},
                   {"Deployment", "deployments"},
                   {"HorizontalPodAutoscaler", "horizontalpodautoscalers"},
                   {"ScaledObject", "scaledobjects"},
                   {"ServiceAccount", "serviceaccounts"},
                   {"PodDisruptionBudget", "poddisruptionbudgets"}};
    const char *plural = NULL;
    for (size_t i = 0; i < sizeof(plurals) / sizeof(plurals[0]); i++)
        if (!strcmp(kind->valuestring, plurals[i].kind))
            plural = plurals[i].plural;
    if (!plural) {
        snprintf(err, errlen, "kind %s is not one bootstrap manages", kind->valuestring);
        return IG_EINVAL;
    }
    bool core = !strchr(av->valuestring, '/');
    ig_buf_printf(out, "/%s/%s/namespaces/%s/%s/%s", core ? "api" : "apis", av->valuestring,
                  ns->valuestring, plural, name->valuestring);
    return 0;
}

/* ---- backend ---------------------------------------------------------- */

static bool is_managed(const cJSON *obj)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                         "labels"),
        MANAGED_LABEL);
    return cJSON_IsString(l) && !strcmp(l->valuestring, "infergate");
}

/* Drops what changes on every write or belongs to controllers. */
static void normalise(cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    static const char *const volatile_md[] = {
        "managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink"};
    for (size_t i = 0; i < sizeof(volatile_md) / sizeof(volatile_md[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(md, volatile_md[i]);
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
}

/* Reads the live object at r->path into *live. A 404 is no error: *found
 * is false then. */
static int kube_read(ig_kube_t *k, const ig_bootstrap_resource_t *r, cJSON **live, bool *found,
                     char *err, size_t errlen)
{
    long st;
    int rc = ig_kube_request(k, "GET", r->path, NULL, NULL, &st, live, err, errlen);
    *found = !(rc == IG_EAPI && st == 404);
    return *found ? rc : 0;
}

/* Server-side apply of r's body. With `dry_run` nothing changes: *out (when
 * not NULL) is the object as the API server would make it. */
static int server_side_apply(ig_kube_t *k, const ig_bootstrap_resource_t *r, bool dry_run,
                             cJSON **out, char *err, size_t errlen)
{
    char *body = cJSON_PrintUnformatted(r->body);
    ig_buf_t q;
    ig_buf_init(&q, 0);
    ig_buf_printf(&q, "%s?fieldManager=" FIELD_MANAGER "&force=true%s", r->path,
                  dry_run ? "&dryRun=All" : "");
    long st;
    int rc = ig_kube_request(k, "PATCH", q.base, "application/apply-patch+yaml", body, &st, out,
                             err, errlen);
    free(body);
    ig_buf_dispose(&q);
    return rc;
}

static int kube_plan(void *ctx, const ig_bootstrap_resource_t *r, ig_bootstrap_plan_t *p, char *err,
                     size_t errlen)
{
    ig_kube_t *k = ctx;
    cJSON *live = NULL;
    bool found;
    int rc = kube_read(k, r, &live, &found, err, errlen);
    if (rc)
        return rc;
    if (!found) {
        p->action = IG_BOOTSTRAP_CREATE;
        return 0;
    }
    p->managed = is_managed(live);
    cJSON *would = NULL;
    rc = server_side_apply(k, r, true, &would, err, errlen);
    if (rc == 0) {
        normalise(live);
        normalise(would);
        p->ndiff = ig_bootstrap_diff(would, live, false, "", &p->diff);
        p->action = p->ndiff ? IG_BOOTSTRAP_UPDATE : IG_BOOTSTRAP_NOOP;
    }
    cJSON_Delete(live);
    cJSON_Delete(would);
    return rc;
}

static int kube_apply(void *ctx, const ig_bootstrap_resource_t *r, const ig_bootstrap_plan_t *p,
                      char *err, size_t errlen)
{
    ig_kube_t *k = ctx;
    if (p->action == IG_BOOTSTRAP_NOOP)
        return 0;
    if (p->action == IG_BOOTSTRAP_UPDATE && !p->managed) {
        snprintf(err, errlen,
                 "%s %s exists without the label " MANAGED_LABEL "=infergate; "
                 "refusing to change it (label it, or remove it)",
                 r->kind, r->path);
        return IG_EEXIST;
    }
    return server_side_apply(k, r, false, NULL, err, errlen);
}

static int kube_destroy(void *ctx, const ig_bootstrap_resource_t *r,
                        ig_bootstrap_delete_result_t *res, char *err, size_t errlen)
{
    ig_kube_t *k = ctx;
    cJSON *live = NULL;
    bool found;
    int rc = kube_read(k, r, &live, &found, err, errlen);
    if (rc)
        return rc;
    if (!found) {
        *res = IG_BOOTSTRAP_ABSENT;
        return 0;
    }
    bool managed = is_managed(live);
    cJSON_Delete(live);
    if (!managed) {
        *res = IG_BOOTSTRAP_NOT_MANAGED;
        return 0;
    }
    ig_buf_t q;
    ig_buf_init(&q, 0);
    ig_buf_printf(&q, "%s?propagationPolicy=Foreground", r->path);
    long st;
    rc = ig_kube_request(k, "DELETE", q.base, NULL, NULL, &st, NULL, err, errlen);
    ig_buf_dispose(&q);
    if (rc == IG_EAPI && st == 404) {
        *res = IG_BOOTSTRAP_ABSENT;
        return 0;
    }
    if (rc == 0)
        *res = IG_BOOTSTRAP_DELETED;
    return rc;
}

const ig_bootstrap_backend_t ig_bootstrap_kube_backend = {
    .name = "kubernetes",
    .plan = kube_plan,
    .apply = kube_apply,
    .destroy = kube_destroy,
};

static double num(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int ig_kube_wait_deployment(ig_kube_t *k, const char *path, int timeout_s, char *err, size_t errlen)
{
    long waited = 0, step = 250;
    char seen[256] = "nothing yet";
    for (;;) {
        long st;
        cJSON *d = NULL;
        int rc = ig_kube_request(k, "GET", path, NULL, NULL, &st, &d, err, errlen);
        if (rc)
            return rc;
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(d, "metadata");
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(d, "status");
        double gen = num(md, "generation", 0), obs = num(status, "observedGeneration", -1);
        double want = num(spec, "replicas", 1);
        double upd = num(status, "updatedReplicas", num(status, "replicas", 0));
        double avail = num(status, "availableReplicas", 0);
        bool available = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "status");
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "Available") && cJSON_IsString(s))
                available = !strcmp(s->valuestring, "True");
        }
        snprintf(seen, sizeof(seen),
                 "observedGeneration %.0f of %.0f, %.0f updated and %.0f available of %.0f, "
                 "Available=%s",
                 obs, gen, upd, avail, want, available ? "True" : "False");
        cJSON_Delete(d);
        if (obs >= gen && upd >= want && avail >= want && available)
            return 0;
        if (waited >= timeout_s * 1000L) {
            snprintf(err, errlen, "Deployment %s not available after %d s: %s", path, timeout_s,
                     seen);
            return IG_ETIMEDOUT;
        }
        ig_client_sleep_ms(step);
        waited += step;
        if (step < 2000)
            step *= 2;
    }
}
