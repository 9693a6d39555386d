/*
 * conf.c: the config file's "bootstrap" section, typed and validated.
 *
 * Every key has a default (listed in docs/bootstrap.md and applied here);
 * unknown keys, wrong types and out-of-range values are errors that name the
 * key path. This is also what `infergate check-config` runs on the section.
 * It knows nothing of templates or APIs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "infergate/bootstrap/bootstrap.h"
#include "infergate/bootstrap/conf.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

#define DEFAULT_ENVOY_IMAGE "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.12.1-prod"
#define DEFAULT_PROXY_INIT_IMAGE "public.ecr.aws/appmesh/aws-appmesh-proxy-route-manager:v7-prod"

typedef struct {
    char *err;
    size_t errlen;
} ectx_t;

static int fail(ectx_t *e, const char *path, const char *what)
{
    snprintf(e->err, e->errlen, "%s: %s", path, what);
    return IG_ECONFIG;
}

/* Checks that every member of `obj` is one of `known` (NULL-terminated). */
static int only_known(ectx_t *e, const cJSON *obj, const char *path, const char *const *known)
{
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            if (!strcmp(c->string, known[i]))
                ok = true;
        if (!ok) {
            ig_buf_t b;
            ig_buf_init(&b, 0);
            ig_buf_printf(&b, "unknown key (known:");
            for (int i = 0; known[i]; i++)
                ig_buf_printf(&b, " %s", known[i]);
            ig_buf_printf(&b, ")");
            snprintf(e->err, e->errlen, "%s.%s: %s", path, c->string, b.base);
            ig_buf_dispose(&b);
            return IG_ECONFIG;
        }
    }
    return 0;
}

static int get_obj(ectx_t *e, const cJSON *parent, const char *key, const char *path,
                   const cJSON **out)
{
    const cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v)) {
        char p[256];
        snprintf(p, sizeof(p), "%s.%s", path, key);
        return fail(e, p, "must be an object");
    }
    *out = v;
    return 0;
}

/* Reads a string member. Absent keeps the default; null sets NULL when
 * `nullable`. The default must already be in *dst (owned). */
static int get_str(ectx_t *e, const cJSON *parent, const char *key, const char *path, char **dst,
                   bool nullable)
{
    const cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    char p[256];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (!v)
        return 0;
    if (cJSON_IsNull(v)) {
        if (!nullable)
            return fail(e, p, "must be a string, got null");
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (!cJSON_IsString(v))
        return fail(e, p, "must be a string");
    if (!*v->valuestring)
        return fail(e, p, "must not be empty");
    free(*dst);
    *dst = ig_xstrdup(v->valuestring);
    return 0;
}

static int get_int(ectx_t *e, const cJSON *parent, const char *key, const char *path, int *dst,
                   int lo, int hi)
{
    const cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    char p[256], what[128];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        snprintf(what, sizeof(what), "must be an integer in %d..%d", lo, hi);
        return fail(e, p, what);
    }
    *dst = (int)v->valuedouble;
    return 0;
}

static int get_double(ectx_t *e, const cJSON *parent, const char *key, const char *path,
                      double *dst, double lo, double hi)
{
    const cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    char p[256], what[128];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble > lo) || v->valuedouble > hi) {
        snprintf(what, sizeof(what), "must be a number in (%g, %g]", lo, hi);
        return fail(e, p, what);
    }
    *dst = v->valuedouble;
    return 0;
}

static int get_bool(ectx_t *e, const cJSON *parent, const char *key, const char *path, bool *dst)
{
    const cJSON *v = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    char p[256];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return fail(e, p, "must be true or false");
    *dst = cJSON_IsTrue(v);
    return 0;
}

/* An annotation key: an optional DNS-subdomain prefix and '/', then a name of
 * at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric. */
static bool annotation_key_ok(const char *k)
{
    const char *slash = strchr(k, '/');
    const char *name = slash ? slash + 1 : k;
    if (slash) {
        size_t pl = (size_t)(slash - k);
        if (pl == 0 || pl > 253)
            return false;
        for (const char *c = k; c < slash; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
                return false;
    }
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && ((i == 0 || i == n - 1) || (c != '-' && c != '_' && c != '.')))
            return false;
    }
    return true;
}

/* kubernetes.service_account_annotations: {"key": "string value", ...}. */
static int get_annotations(ectx_t *e, const cJSON *parent, const char *key, const char *path,
                           cJSON **dst)
{
    const cJSON *v;
    int rc = get_obj(e, parent, key, path, &v);
    if (rc || !v)
        return rc;
    cJSON *out = cJSON_CreateObject();
    for (const cJSON *c = v->child; c; c = c->next) {
        char p[512];
        snprintf(p, sizeof(p), "%s.%s.%s", path, key, c->string);
        if (!annotation_key_ok(c->string)) {
            cJSON_Delete(out);
            return fail(e, p,
                        "not a valid annotation key ([prefix/]name, name of at most 63 "
                        "alphanumerics, '-', '_' or '.')");
        }
        if (!cJSON_IsString(c)) {
            cJSON_Delete(out);
            return fail(e, p, "must be a string");
        }
        cJSON_AddStringToObject(out, c->string, c->valuestring);
    }
    cJSON_Delete(*dst);
    *dst = out;
    return 0;
}

/* arn:PARTITION:iam::ACCOUNT:role/NAME, the form IRSA's annotation takes. */
static bool role_arn_ok(const char *s)
{
    if (strncmp(s, "arn:aws", 7))
        return false;
    const char *p = strchr(s + 4, ':');
    if (!p || strncmp(p, ":iam::", 6))
        return false;
    p += 6;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    return digits == 12 && !strncmp(p, ":role/", 6) && p[6] != '\0';
}

/* A DNS-1123 subdomain: dot-separated labels, at most 253 characters. */
static bool dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
        if (!alnum && (edge || (c != '-' && c != '.')))
            return false;
    }
    return true;
}

/* A Kubernetes quantity: digits with an optional fraction and suffix. */
static bool quantity_ok(const char *s)
{
    const char *p = s;
    size_t d = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        d++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            d++;
        }
    }
    if (!d)
        return false;
    static const char *const suffix[] = {"",   "m",  "k",  "M",  "G",  "T", "P",
                                         "Ki", "Mi", "Gi", "Ti", "Pi", NULL};
    for (int i = 0; suffix[i]; i++)
        if (!strcmp(p, suffix[i]))
            return true;
    return false;
}

/* resources.<container>: {"requests": {"cpu","memory"}, "limits": {"cpu","memory"}};
 * the given object replaces the default wholesale, null members drop a value. */
static int get_resources(ectx_t *e, const cJSON *parent, const char *key, const char *path,
                         cJSON **dst)
{
    const cJSON *v;
    char p[256];
    snprintf(p, sizeof(p), "%s.%s", path, key);
    int rc = get_obj(e, parent, key, path, &v);
    if (rc || !v)
        return rc;
    static const char *const rl[] = {"requests", "limits", NULL};
    static const char *const cm[] = {"cpu", "memory", NULL};
    if ((rc = only_known(e, v, p, rl)))
        return rc;
    cJSON *out = cJSON_CreateObject();
    for (int i = 0; rl[i]; i++) {
        const cJSON *sect;
        char sp[300];
        snprintf(sp, sizeof(sp), "%s.%s", p, rl[i]);
        if ((rc = get_obj(e, v, rl[i], p, &sect)) || (sect && (rc = only_known(e, sect, sp, cm)))) {
            cJSON_Delete(out);
            return rc;
        }
        if (!sect)
            continue;
        cJSON *o = cJSON_AddObjectToObject(out, rl[i]);
        for (int k = 0; cm[k]; k++) {
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(sect, cm[k]);
            char qp[320];
            snprintf(qp, sizeof(qp), "%s.%s", sp, cm[k]);
            if (!q || cJSON_IsNull(q))
                continue;
            if (!cJSON_IsString(q) || !quantity_ok(q->valuestring)) {
                cJSON_Delete(out);
                return fail(e, qp,
                            "must be a Kubernetes quantity string such as \"250m\" or "
                            "\"512Mi\"");
            }
            cJSON_AddStringToObject(o, cm[k], q->valuestring);
        }
    }
    cJSON_Delete(*dst);
    *dst = out;
    return 0;
}

static cJSON *resources_default(const char *req_cpu, const char *req_mem, const char *lim_mem)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *q = cJSON_AddObjectToObject(r, "requests");
    cJSON_AddStringToObject(q, "cpu", req_cpu);
    cJSON_AddStringToObject(q, "memory", req_mem);
    cJSON *l = cJSON_AddObjectToObject(r, "limits");
    cJSON_AddStringToObject(l, "memory", lim_mem);
    return r;
}

/* RFC 1123 label (DNS-1035 for Service names: starts with a letter). */
static bool dns_label(const char *s, bool letter_first)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    if (letter_first && !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok || ((i == 0 || i == n - 1) && c == '-'))
            return false;
    }
    return true;
}

static bool one_of(const char *s, const char *const *vals)
{
    for (int i = 0; vals[i]; i++)
        if (!strcmp(s, vals[i]))
            return true;
    return false;
}

static void set_defaults(ig_bootstrap_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->name = ig_xstrdup("ml-service");
    c->namespace_ = ig_xstrdup("default");
    c->model_image = ig_xstrdup("infergate-model:0.1.0");
    c->gateway_image = ig_xstrdup("infergate:0.1.0");
    c->image_pull_policy = ig_xstrdup("IfNotPresent");
    c->model_port = 8081;
    c->replicas_min = 1;
    c->replicas_max = 10;
    c->autoscaling.engine = IG_BOOTSTRAP_ENGINE_HPA;
    c->autoscaling.load_factor_target = 0.7;
    c->autoscaling.queue_depth_target = 8;
    c->autoscaling.cpu_utilization = 80;
    c->autoscaling.prometheus_url = ig_xstrdup("http://prometheus-server.monitoring.svc:80");
    c->autoscaling.adapter_namespace = ig_xstrdup("monitoring");
    c->resources_model = resources_default("1", "2Gi", "2Gi");
    c->resources_gateway = resources_default("250m", "64Mi", "256Mi");
    c->resources_proxy = resources_default("100m", "64Mi", "256Mi");
    c->mesh.provider = ig_xstrdup("appmesh");
    c->mesh.name = ig_xstrdup("ml-mesh");
    c->mesh.region = NULL;
    c->mesh.hostname = NULL; /* derived from name and namespace below */
    c->mesh.egress_filter = ig_xstrdup("ALLOW_ALL");
    c->mesh.envoy_image = ig_xstrdup(DEFAULT_ENVOY_IMAGE);
    c->mesh.proxy_init_image = ig_xstrdup(DEFAULT_PROXY_INIT_IMAGE);
    c->kubernetes.kubeconfig = NULL;
    c->kubernetes.context = NULL;
    c->mesh.iam_role_arn = NULL;
    c->kubernetes.service_account = NULL; /* the stack's name, below */
    c->kubernetes.create_service_account = true;
    c->kubernetes.sa_annotations = cJSON_CreateObject();
}

void ig_bootstrap_conf_dispose(ig_bootstrap_conf_t *c)
{
    free(c->name);
    free(c->namespace_);
    free(c->model_image);
    free(c->gateway_image);
    free(c->image_pull_policy);
    free(c->autoscaling.prometheus_url);
    free(c->autoscaling.adapter_namespace);
    cJSON_Delete(c->resources_model);
    cJSON_Delete(c->resources_gateway);
    cJSON_Delete(c->resources_proxy);
    free(c->mesh.provider);
    free(c->mesh.name);
    free(c->mesh.region);
    free(c->mesh.hostname);
    free(c->mesh.egress_filter);
    free(c->mesh.envoy_image);
    free(c->mesh.proxy_init_image);
    free(c->kubernetes.kubeconfig);
    free(c->kubernetes.context);
    free(c->mesh.iam_role_arn);
    free(c->kubernetes.service_account);
    cJSON_Delete(c->kubernetes.sa_annotations);
    memset(c, 0, sizeof(*c));
}

static int load(ig_bootstrap_conf_t *c, const cJSON *b, ectx_t *e)
{
    static const char *const top[] = {"name",          "namespace",         "model_image",
                                      "gateway_image", "image_pull_policy", "model_port",
                                      "replicas",      "autoscaling",       "resources",
                                      "mesh",          "kubernetes",        NULL};
    static const char *const rep[] = {"min", "max", NULL};
    static const char *const aut[] = {"engine",
                                      "load_factor_target",
                                      "queue_depth_target",
                                      "cpu_utilization",
                                      "prometheus_url",
                                      "adapter_namespace",
                                      NULL};
    static const char *const res[] = {"model", "gateway", "proxy", NULL};
    static const char *const msh[] = {"provider",         "name",          "region",
                                      "hostname",         "egress_filter", "envoy_image",
                                      "proxy_init_image", "iam_role_arn",  NULL};
    static const char *const kub[] = {"kubeconfig",
                                      "context",
                                      "service_account",
                                      "create_service_account",
                                      "service_account_annotations",
                                      NULL};
    const char *P = "bootstrap";
    int rc;
    if (b && !cJSON_IsObject(b))
        return fail(e, P, "must be an object");
    if ((rc = only_known(e, b, P, top)))
        return rc;
    if ((rc = get_str(e, b, "name", P, &c->name, false)) ||
        (rc = get_str(e, b, "namespace", P, &c->namespace_, false)) ||
        (rc = get_str(e, b, "model_image", P, &c->model_image, false)) ||
        (rc = get_str(e, b, "gateway_image", P, &c->gateway_image, false)) ||
        (rc = get_str(e, b, "image_pull_policy", P, &c->image_pull_policy, false)) ||
        (rc = get_int(e, b, "model_port", P, &c->model_port, 1, 65535)))
        return rc;
    if (!dns_label(c->name, true))
        return fail(e, "bootstrap.name",
                    "must be a DNS-1035 label (lower-case letters, digits "
                    "and '-', starting with a letter, at most 63)");
    if (!dns_label(c->namespace_, false))
        return fail(e, "bootstrap.namespace", "must be a DNS-1123 label");
    static const char *const pulls[] = {"Always", "IfNotPresent", "Never", NULL};
    if (!one_of(c->image_pull_policy, pulls))
        return fail(e, "bootstrap.image_pull_policy", "must be Always, IfNotPresent or Never");

    const cJSON *o;
    if ((rc = get_obj(e, b, "replicas", P, &o)) ||
        (rc = only_known(e, o, "bootstrap.replicas", rep)) ||
        (rc = get_int(e, o, "min", "bootstrap.replicas", &c->replicas_min, 1, 10000)) ||
        (rc = get_int(e, o, "max", "bootstrap.replicas", &c->replicas_max, 1, 10000)))
        return rc;
    if (c->replicas_min > c->replicas_max)
        return fail(e, "bootstrap.replicas.min", "must be <= bootstrap.replicas.max");

    const char *AP = "bootstrap.autoscaling";
    char *engine = ig_xstrdup(c->autoscaling.engine == IG_BOOTSTRAP_ENGINE_KEDA ? "keda" : "hpa");
    if ((rc = get_obj(e, b, "autoscaling", P, &o)) || (rc = only_known(e, o, AP, aut)) ||
        (rc = get_str(e, o, "engine", AP, &engine, false)) ||
        (rc = get_double(e, o, "load_factor_target", AP, &c->autoscaling.load_factor_target, 0,
                         100)) ||
        (rc = get_int(e, o, "queue_depth_target", AP, &c->autoscaling.queue_depth_target, 1,
                      1000000)) ||
        (rc = get_int(e, o, "cpu_utilization", AP, &c->autoscaling.cpu_utilization, 1, 1000)) ||
        (rc = get_str(e, o, "prometheus_url", AP, &c->autoscaling.prometheus_url, false)) ||
        (rc = get_str(e, o, "adapter_namespace", AP, &c->autoscaling.adapter_namespace, false))) {
        free(engine);
        return rc;
    }
    if (!strcmp(engine, "hpa"))
        c->autoscaling.engine = IG_BOOTSTRAP_ENGINE_HPA;
    else if (!strcmp(engine, "keda"))
        c->autoscaling.engine = IG_BOOTSTRAP_ENGINE_KEDA;
    else {
        free(engine);
        return fail(e, "bootstrap.autoscaling.engine", "must be \"hpa\" or \"keda\"");
    }
    free(engine);
    if (!dns_label(c->autoscaling.adapter_namespace, false))
        return fail(e, "bootstrap.autoscaling.adapter_namespace", "must be a DNS-1123 label");
    if (strncmp(c->autoscaling.prometheus_url, "http://", 7) &&
        strncmp(c->autoscaling.prometheus_url, "https://", 8))
        return fail(e, "bootstrap.autoscaling.prometheus_url", "must be an http(s):// URL");
    /* User info would be written in clear into the ScaledObject, and so
     * printed by render and plan: KEDA takes credentials from a
     * TriggerAuthentication instead. The redactor tells whether there is any. */
    char *shown = ig_log_redact_url(c->autoscaling.prometheus_url);
    bool has_userinfo = strcmp(shown, c->autoscaling.prometheus_url) != 0;
    free(shown);
    if (has_userinfo)
        return fail(e, "bootstrap.autoscaling.prometheus_url",
                    "must not carry credentials (user@ or user:password@): they would be written "
                    "in clear into the ScaledObject; give KEDA a TriggerAuthentication instead");

    const char *RP = "bootstrap.resources";
    if ((rc = get_obj(e, b, "resources", P, &o)) || (rc = only_known(e, o, RP, res)) ||
        (rc = get_resources(e, o, "model", RP, &c->resources_model)) ||
        (rc = get_resources(e, o, "gateway", RP, &c->resources_gateway)) ||
        (rc = get_resources(e, o, "proxy", RP, &c->resources_proxy)))
        return rc;

    const char *MP = "bootstrap.mesh";
    if ((rc = get_obj(e, b, "mesh", P, &o)) || (rc = only_known(e, o, MP, msh)) ||
        (rc = get_str(e, o, "provider", MP, &c->mesh.provider, false)) ||
        (rc = get_str(e, o, "name", MP, &c->mesh.name, false)) ||
        (rc = get_str(e, o, "region", MP, &c->mesh.region, true)) ||
        (rc = get_str(e, o, "hostname", MP, &c->mesh.hostname, true)) ||
        (rc = get_str(e, o, "egress_filter", MP, &c->mesh.egress_filter, false)) ||
        (rc = get_str(e, o, "envoy_image", MP, &c->mesh.envoy_image, false)) ||
        (rc = get_str(e, o, "proxy_init_image", MP, &c->mesh.proxy_init_image, false)) ||
        (rc = get_str(e, o, "iam_role_arn", MP, &c->mesh.iam_role_arn, true)))
        return rc;
    static const char *const providers[] = {"appmesh", "none", NULL};
    if (!one_of(c->mesh.provider, providers))
        return fail(e, "bootstrap.mesh.provider", "must be \"appmesh\" or \"none\"");
    static const char *const filters[] = {"ALLOW_ALL", "DROP_ALL", NULL};
    if (!one_of(c->mesh.egress_filter, filters))
        return fail(e, "bootstrap.mesh.egress_filter", "must be \"ALLOW_ALL\" or \"DROP_ALL\"");
    if (strlen(c->mesh.name) > 255)
        return fail(e, "bootstrap.mesh.name", "must be at most 255 characters");
    if (c->mesh.iam_role_arn && !role_arn_ok(c->mesh.iam_role_arn))
        return fail(e, "bootstrap.mesh.iam_role_arn",
                    "must be an IAM role ARN, arn:aws:iam::<12-digit account>:role/<name>");
    /* App Mesh discovers the pods through the headless Service <name>-pods,
     * whose name must stay a DNS-1035 label. */
    if (!strcmp(c->mesh.provider, "appmesh") && strlen(c->name) > 58)
        return fail(e, "bootstrap.name",
                    "must be at most 58 characters with mesh.provider appmesh (the headless "
                    "Service <name>-pods must be a DNS-1035 label)");
    if (!c->mesh.hostname) {
        ig_buf_t h;
        ig_buf_init(&h, 0);
        ig_buf_printf(&h, "%s.%s.svc.cluster.local", c->name, c->namespace_);
        c->mesh.hostname = ig_buf_take(&h, NULL);
    }

    const char *KP = "bootstrap.kubernetes";
    if ((rc = get_obj(e, b, "kubernetes", P, &o)) || (rc = only_known(e, o, KP, kub)) ||
        (rc = get_str(e, o, "kubeconfig", KP, &c->kubernetes.kubeconfig, true)) ||
        (rc = get_str(e, o, "context", KP, &c->kubernetes.context, true)) ||
        (rc = get_str(e, o, "service_account", KP, &c->kubernetes.service_account, false)) ||
        (rc =
             get_bool(e, o, "create_service_account", KP, &c->kubernetes.create_service_account)) ||
        (rc = get_annotations(e, o, "service_account_annotations", KP,
                              &c->kubernetes.sa_annotations)))
        return rc;
    if (!c->kubernetes.service_account)
        c->kubernetes.service_account = ig_xstrdup(c->name);
    if (!dns_subdomain(c->kubernetes.service_account))
        return fail(e, "bootstrap.kubernetes.service_account", "must be a DNS-1123 subdomain");
    if (c->kubernetes.create_service_account) {
        /* Every namespace has "default", made and owned by Kubernetes: infergate
         * must neither label it as its own nor delete it on destroy. */
        if (!strcmp(c->kubernetes.service_account, "default"))
            return fail(e, "bootstrap.kubernetes.service_account",
                        "\"default\" belongs to Kubernetes; choose another name, or set "
                        "bootstrap.kubernetes.create_service_account to false to use it as is");
        const char *irsa = "eks.amazonaws.com/role-arn";
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(c->kubernetes.sa_annotations, irsa);
        if (c->mesh.iam_role_arn && a && strcmp(a->valuestring, c->mesh.iam_role_arn))
            return fail(e, "bootstrap.mesh.iam_role_arn",
                        "disagrees with bootstrap.kubernetes.service_account_annotations"
                        "[\"eks.amazonaws.com/role-arn\"]; set one of them");
        if (c->mesh.iam_role_arn && !a)
            cJSON_AddStringToObject(c->kubernetes.sa_annotations, irsa, c->mesh.iam_role_arn);
    } else {
        if (c->mesh.iam_role_arn)
            return fail(e, "bootstrap.mesh.iam_role_arn",
                        "needs bootstrap.kubernetes.create_service_account: infergate can only "
                        "annotate a ServiceAccount it creates (annotate yours with "
                        "eks.amazonaws.com/role-arn instead)");
        if (cJSON_GetArraySize(c->kubernetes.sa_annotations) > 0)
            return fail(e, "bootstrap.kubernetes.service_account_annotations",
                        "needs bootstrap.kubernetes.create_service_account: infergate can only "
                        "annotate a ServiceAccount it creates");
    }
    return 0;
}

int ig_bootstrap_conf_load(ig_bootstrap_conf_t *c, const cJSON *section, char *err, size_t errlen)
{
    ectx_t e = {err, errlen};
    set_defaults(c);
    return load(c, section, &e);
}

int ig_bootstrap_check_config(const struct cJSON *section, char *err, unsigned long errlen)
{
    ig_bootstrap_conf_t c;
    int rc = ig_bootstrap_conf_load(&c, section, err, errlen);
    ig_bootstrap_conf_dispose(&c);
    return rc;
}
