/*
 * test_bootstrap_render.c: the rendered stack: order, cross-checks with the
 * gateway config, providers and engines, determinism, the diff used by plan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "infergate/bootstrap/conf.h"
#include "infergate/bootstrap/stack.h"
#include "infergate/core/config.h"
#include "infergate/base/error.h"

static const char *GATEWAY = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                             "\"upstream\":{\"url\":\"http://127.0.0.1:8081\"}}";

typedef struct {
    ig_config_t gc;
    ig_bootstrap_conf_t bc;
    ig_bootstrap_stack_t s;
    char err[1024];
} fx_t;

/* Renders `gateway` + `boot` (the bootstrap section); returns the rc. */
static int render(fx_t *f, const char *gateway, const char *boot, const char *tpl_dir)
{
    char *const envp[] = {"AWS_REGION=eu-west-1", NULL};
    memset(f, 0, sizeof(*f));
    ig_config_init(&f->gc);
    ig_bootstrap_stack_init(&f->s);
    int rc =
        ig_config_merge_json(&f->gc, gateway, strlen(gateway), "t.json", f->err, sizeof(f->err));
    assert_int_equal(rc, 0);
    cJSON *b = boot ? cJSON_Parse(boot) : NULL;
    rc = ig_bootstrap_conf_load(&f->bc, b, f->err, sizeof(f->err));
    cJSON_Delete(b);
    if (rc == 0)
        rc = ig_bootstrap_render(&f->bc, &f->gc, tpl_dir, envp, &f->s, f->err, sizeof(f->err));
    return rc;
}

static void fx_dispose(fx_t *f)
{
    ig_bootstrap_stack_dispose(&f->s);
    ig_bootstrap_conf_dispose(&f->bc);
    ig_config_dispose(&f->gc);
}

static const cJSON *at(const cJSON *j, const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index. */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(j))
            j = cJSON_GetArrayItem(j, (int)strtol(tok, NULL, 10));
        else
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
    }
    return j;
}

static void test_appmesh_hpa_stack(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(render(&f, GATEWAY, NULL, NULL), 0);
    static const char *const kinds[] = {"Mesh",
                                        "VirtualNode",
                                        "VirtualRouter",
                                        "Route",
                                        "VirtualService",
                                        "ServiceAccount",
                                        "ConfigMap",
                                        "Deployment",
                                        "PodDisruptionBudget",
                                        "Service",
                                        "Service",
                                        "ConfigMap",
                                        "HorizontalPodAutoscaler"};
    assert_int_equal(f.s.n, 13);
    for (size_t i = 0; i < f.s.n; i++)
        assert_string_equal(f.s.items[i].kind, kinds[i]);
    assert_ptr_equal(f.s.items[0].backend, &ig_bootstrap_appmesh_backend);
    assert_ptr_equal(f.s.items[5].backend, &ig_bootstrap_kube_backend);
    assert_string_equal(f.s.items[5].path, "/api/v1/namespaces/default/serviceaccounts/ml-service");
    assert_string_equal(f.s.items[8].path,
                        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/ml-service");
    assert_string_equal(f.s.items[10].name, "ml-service-pods");
    assert_string_equal(f.s.items[3].path,
                        "/v20190125/meshes/ml-mesh/virtualRouter/ml-service-router/routes/"
                        "ml-service-route");
    assert_string_equal(f.s.items[7].path,
                        "/apis/apps/v1/namespaces/default/deployments/ml-service");
    const cJSON *vn = f.s.items[1].body;
    assert_int_equal(at(vn, "spec.listeners.0.portMapping.port")->valueint, 8080);
    assert_int_equal(at(vn, "spec.listeners.0.healthCheck.port")->valueint, 8080);
    /* Route timeout covers queueing (default 5000) + model timeout (30000) + slack. */
    assert_int_equal(at(f.s.items[3].body, "spec.httpRoute.timeout.perRequest.value")->valueint,
                     36000);
    const cJSON *dep = f.s.items[7].body;
    const cJSON *pod = at(dep, "spec.template.spec");
    assert_int_equal(cJSON_GetArraySize(at(pod, "containers")), 3);
    assert_string_equal(at(pod, "containers.2.name")->valuestring, "envoy");
    assert_string_equal(at(pod, "containers.2.env.1.value")->valuestring, "eu-west-1");
    assert_string_equal(at(pod, "initContainers.0.name")->valuestring, "proxyinit");
    /* drain 3000 + 25000 ms -> wait 29 s, grace 34 s. */
    assert_int_equal(at(pod, "terminationGracePeriodSeconds")->valueint, 34);
    assert_true(cJSON_IsNumber(at(pod, "containers.0.ports.0.containerPort")));
    assert_string_equal(at(pod, "containers.0.resources.requests.cpu")->valuestring, "1");
    const cJSON *cfg =
        cJSON_GetObjectItemCaseSensitive(at(f.s.items[6].body, "data"), "config.json");
    assert_true(cJSON_IsString(cfg));
    cJSON *gw = cJSON_Parse(cfg->valuestring);
    assert_non_null(gw);
    assert_null(cJSON_GetObjectItemCaseSensitive(gw, "bootstrap"));
    assert_string_equal(at(gw, "upstream.url")->valuestring, "http://127.0.0.1:8081");
    cJSON_Delete(gw);
    const cJSON *hpa = f.s.items[12].body;
    assert_string_equal(at(hpa, "spec.metrics.0.pods.target.averageValue")->valuestring, "700m");
    assert_string_equal(at(hpa, "spec.metrics.1.pods.target.averageValue")->valuestring, "8");
    assert_int_equal(at(hpa, "spec.metrics.2.resource.target.averageUtilization")->valueint, 80);
    assert_string_equal(at(f.s.items[11].body, "metadata.namespace")->valuestring, "monitoring");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(f.s.outputs, "ml_service_endpoint")->valuestring,
        "http://ml-service.default.svc.cluster.local:8080");
    fx_dispose(&f);
}

static const cJSON *named(const cJSON *arr, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return it;
    }
    return NULL;
}

static const ig_bootstrap_resource_t *find_kind(const fx_t *f, const char *kind, const char *name)
{
    for (size_t i = 0; i < f->s.n; i++)
        if (!strcmp(f->s.items[i].kind, kind) && (!name || !strcmp(f->s.items[i].name, name)))
            return &f->s.items[i];
    return NULL;
}

/* The Deployment names a ServiceAccount: it must be rendered (and applied)
 * before it, or the ReplicaSet cannot create a single pod. */
static void test_service_account_is_rendered_before_the_deployment(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(
        render(&f, GATEWAY,
               "{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::111122223333:role/envoy\"},"
               "\"kubernetes\":{\"service_account_annotations\":{\"example.com/team\":\"ml\"}}}",
               NULL),
        0);
    const ig_bootstrap_resource_t *sa = find_kind(&f, "ServiceAccount", NULL);
    const ig_bootstrap_resource_t *dep = find_kind(&f, "Deployment", NULL);
    assert_non_null(sa);
    assert_true(sa < dep);
    assert_string_equal(sa->name, "ml-service");
    assert_string_equal(at(sa->body, "apiVersion")->valuestring, "v1");
    assert_string_equal(at(sa->body, "metadata.namespace")->valuestring, "default");
    const cJSON *labels = at(sa->body, "metadata.labels");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/managed-by")->valuestring,
        "infergate");
    const cJSON *ann = at(sa->body, "metadata.annotations");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(ann, "eks.amazonaws.com/role-arn")->valuestring,
        "arn:aws:iam::111122223333:role/envoy");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ann, "example.com/team")->valuestring,
                        "ml");
    assert_true(cJSON_IsFalse(at(sa->body, "automountServiceAccountToken")));
    const cJSON *pod = at(dep->body, "spec.template.spec");
    assert_string_equal(at(pod, "serviceAccountName")->valuestring, "ml-service");
    assert_true(cJSON_IsFalse(at(pod, "automountServiceAccountToken")));
    fx_dispose(&f);

    /* Without annotations there is no annotations member at all. */
    assert_int_equal(render(&f, GATEWAY, NULL, NULL), 0);
    assert_null(at(find_kind(&f, "ServiceAccount", NULL)->body, "metadata.annotations"));
    fx_dispose(&f);

    /* An existing account (e.g. made by eksctl for IRSA) is used, not rendered. */
    assert_int_equal(render(&f, GATEWAY,
                            "{\"kubernetes\":{\"service_account\":\"shared-sa\","
                            "\"create_service_account\":false}}",
                            NULL),
                     0);
    assert_null(find_kind(&f, "ServiceAccount", NULL));
    assert_string_equal(
        at(find_kind(&f, "Deployment", NULL)->body, "spec.template.spec.serviceAccountName")
            ->valuestring,
        "shared-sa");
    fx_dispose(&f);
}

static void test_disruption_budget_and_spread(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(render(&f, GATEWAY, "{\"replicas\":{\"min\":1,\"max\":3}}", NULL), 0);
    const ig_bootstrap_resource_t *pdb = find_kind(&f, "PodDisruptionBudget", NULL);
    const ig_bootstrap_resource_t *dep = find_kind(&f, "Deployment", NULL);
    assert_non_null(pdb);
    assert_string_equal(at(pdb->body, "apiVersion")->valuestring, "policy/v1");
    assert_int_equal(at(pdb->body, "spec.maxUnavailable")->valueint, 1);
    assert_null(at(pdb->body, "spec.minAvailable"));
    assert_string_equal(at(pdb->body, "spec.unhealthyPodEvictionPolicy")->valuestring,
                        "AlwaysAllow");
    assert_true(cJSON_Compare(at(pdb->body, "spec.selector"), at(dep->body, "spec.selector"), 1));
    /* Rollouts never go below capacity and scale with the fleet. */
    assert_int_equal(at(dep->body, "spec.strategy.rollingUpdate.maxUnavailable")->valueint, 0);
    assert_string_equal(at(dep->body, "spec.strategy.rollingUpdate.maxSurge")->valuestring, "25%");
    const cJSON *spread = at(dep->body, "spec.template.spec.topologySpreadConstraints");
    assert_int_equal(cJSON_GetArraySize(spread), 2);
    assert_string_equal(at(spread, "0.topologyKey")->valuestring, "topology.kubernetes.io/zone");
    assert_string_equal(at(spread, "1.topologyKey")->valuestring, "kubernetes.io/hostname");
    assert_string_equal(at(spread, "0.whenUnsatisfiable")->valuestring, "ScheduleAnyway");
    assert_true(cJSON_Compare(at(spread, "0.labelSelector"), at(dep->body, "spec.selector"), 1));
    fx_dispose(&f);
}

/* The mesh's view of the gateway: DNS discovery of every ready pod through a
 * headless Service, retries only where no request reached a gateway, a stream
 * idle timeout no shorter than a request. */
static void test_mesh_discovery_retries_and_timeouts(void **state)
{
    (void)state;
    fx_t f;
    const char *gw = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                     "\"upstream\":{\"url\":\"http://127.0.0.1:8081\",\"timeout_ms\":30000},"
                     "\"limits\":{\"idle_timeout_ms\":10000}}";
    assert_int_equal(render(&f, gw, "{\"name\":\"bert\",\"namespace\":\"ml\"}", NULL), 0);
    const cJSON *vn = find_kind(&f, "VirtualNode", NULL)->body;
    assert_string_equal(at(vn, "spec.serviceDiscovery.dns.hostname")->valuestring,
                        "bert-pods.ml.svc.cluster.local");
    assert_string_equal(at(vn, "spec.serviceDiscovery.dns.responseType")->valuestring, "ENDPOINTS");
    const ig_bootstrap_resource_t *hs = find_kind(&f, "Service", "bert-pods");
    assert_non_null(hs);
    assert_string_equal(at(hs->body, "spec.clusterIP")->valuestring, "None");
    assert_true(cJSON_Compare(at(hs->body, "spec.selector"),
                              at(find_kind(&f, "Service", "bert")->body, "spec.selector"), 1));
    /* The virtual service keeps the ClusterIP Service's name: what clients call. */
    assert_string_equal(find_kind(&f, "VirtualService", NULL)->name, "bert.ml.svc.cluster.local");
    const cJSON *route = at(find_kind(&f, "Route", NULL)->body, "spec.httpRoute");
    assert_int_equal(at(route, "timeout.perRequest.value")->valueint, 36000);
    /* idle_timeout_ms 10000 would cut a 30 s inference: the longest request wins. */
    assert_int_equal(at(route, "timeout.idle.value")->valueint, 36000);
    assert_int_equal(at(vn, "spec.listeners.0.timeout.http.idle.value")->valueint, 36000);
    const cJSON *retry = at(route, "retryPolicy");
    assert_non_null(retry);
    assert_null(at(retry, "httpRetryEvents")); /* never a 503 queue_full: no retry budget */
    assert_string_equal(at(retry, "tcpRetryEvents.0")->valuestring, "connection-error");
    assert_int_equal(at(retry, "maxRetries")->valueint, 2);
    assert_int_equal(at(retry, "perRetryTimeout.value")->valueint, 36000);
    fx_dispose(&f);

    /* A longer keep-alive idle is kept. */
    const char *gw2 = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                      "\"upstream\":{\"url\":\"http://127.0.0.1:8081\"},"
                      "\"limits\":{\"idle_timeout_ms\":90000}}";
    assert_int_equal(render(&f, gw2, NULL, NULL), 0);
    assert_int_equal(
        at(find_kind(&f, "Route", NULL)->body, "spec.httpRoute.timeout.idle.value")->valueint,
        90000);
    fx_dispose(&f);
}

/* preStop hooks wait for the gateway's drain; a failed call (the gateway has
 * already drained and exited) must not turn into a sleep of the whole drain. */
static void test_prestop_hooks_wait_for_the_drain(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(render(&f, GATEWAY, NULL, NULL), 0);
    const cJSON *pod = at(find_kind(&f, "Deployment", NULL)->body, "spec.template.spec");
    static const char *const who[] = {"model", "envoy"};
    for (int i = 0; i < 2; i++) {
        const cJSON *ct = named(at(pod, "containers"), who[i]);
        assert_non_null(ct);
        const char *cmd = at(ct, "lifecycle.preStop.exec.command.2")->valuestring;
        assert_non_null(strstr(cmd, "curl -fsS -m 29 -o /dev/null "
                                    "'http://127.0.0.1:9090/admin/drain?wait=1' || true"));
        assert_non_null(strstr(cmd, "command -v curl"));
        assert_null(strstr(cmd, "|| sleep"));
    }
    const cJSON *envoy = named(at(pod, "containers"), "envoy");
    assert_true(cJSON_IsFalse(at(envoy, "securityContext.allowPrivilegeEscalation")));
    assert_int_equal(at(envoy, "securityContext.runAsUser")->valueint, 1337);
    assert_string_equal(at(pod, "securityContext.seccompProfile.type")->valuestring,
                        "RuntimeDefault");
    fx_dispose(&f);
}

static void test_render_is_deterministic_and_tracks_config(void **state)
{
    (void)state;
    fx_t a, b, c;
    assert_int_equal(render(&a, GATEWAY, NULL, NULL), 0);
    assert_int_equal(render(&b, GATEWAY, NULL, NULL), 0);
    for (size_t i = 0; i < a.s.n; i++)
        assert_true(cJSON_Compare(a.s.items[i].body, b.s.items[i].body, true));
    /* A config change changes the pod's config hash, so pods roll. */
    const char *other = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                        "\"upstream\":{\"url\":\"http://127.0.0.1:8081\",\"max_concurrency\":9}}";
    assert_int_equal(render(&c, other, NULL, NULL), 0);
    const char *h1 =
        cJSON_GetObjectItemCaseSensitive(
            at(a.s.items[7].body, "spec.template.metadata.annotations"), "infergate.io/config-hash")
            ->valuestring;
    const char *h3 =
        cJSON_GetObjectItemCaseSensitive(
            at(c.s.items[7].body, "spec.template.metadata.annotations"), "infergate.io/config-hash")
            ->valuestring;
    assert_int_equal(strlen(h1), 16);
    assert_string_not_equal(h1, h3);
    fx_dispose(&a);
    fx_dispose(&b);
    fx_dispose(&c);
}

static void test_keda_and_no_mesh(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(render(&f, GATEWAY,
                            "{\"autoscaling\":{\"engine\":\"keda\",\"load_factor_target\":1.5},"
                            "\"mesh\":{\"provider\":\"none\"},\"namespace\":\"ml\"}",
                            NULL),
                     0);
    /* No mesh: no headless Service for DNS discovery, no adapter rules. */
    static const char *const kinds[] = {"ServiceAccount",      "ConfigMap", "Deployment",
                                        "PodDisruptionBudget", "Service",   "ScaledObject"};
    assert_int_equal(f.s.n, 6);
    for (size_t i = 0; i < f.s.n; i++)
        assert_string_equal(f.s.items[i].kind, kinds[i]);
    const cJSON *so = f.s.items[5].body;
    assert_string_equal(f.s.items[5].path,
                        "/apis/keda.sh/v1alpha1/namespaces/ml/scaledobjects/ml-service");
    assert_string_equal(at(so, "spec.triggers.0.metadata.threshold")->valuestring, "1.5");
    const char *q = at(so, "spec.triggers.0.metadata.query")->valuestring;
    assert_non_null(strstr(q, "namespace=\"ml\""));
    /* Only this Deployment's pods (<name>-<rs hash>-<pod hash>), not those
     * of a Deployment named ml-service-something. */
    assert_non_null(strstr(q, "pod=~\"ml-service-[a-z0-9]+-[a-z0-9]+\""));
    assert_null(strstr(q, "ml-service-.*"));
    const cJSON *pod = at(f.s.items[2].body, "spec.template.spec");
    assert_int_equal(cJSON_GetArraySize(at(pod, "containers")), 2);
    assert_null(at(pod, "initContainers"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(f.s.outputs, "mesh")));
    fx_dispose(&f);
}

static void test_cross_checks_with_the_gateway_config(void **state)
{
    (void)state;
    fx_t f;
    assert_int_equal(render(&f, GATEWAY, "{\"model_port\":9000}", NULL), IG_ECONFIG);
    assert_non_null(strstr(f.err, "bootstrap.model_port"));
    fx_dispose(&f);
    const char *loop = "{\"listen\":\"127.0.0.1:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                       "\"upstream\":{\"url\":\"http://127.0.0.1:8081\"}}";
    assert_int_equal(render(&f, loop, NULL, NULL), IG_ECONFIG);
    assert_non_null(strstr(f.err, "listen: \"127.0.0.1:8080\" listens on loopback only"));
    fx_dispose(&f);
    const char *remote = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                         "\"upstream\":{\"url\":\"http://model.svc:8081\"}}";
    assert_int_equal(render(&f, remote, NULL, NULL), IG_ECONFIG);
    assert_non_null(strstr(f.err, "upstream.url"));
    fx_dispose(&f);
}

static void test_region_required_for_appmesh(void **state)
{
    (void)state;
    char *const envp[] = {NULL};
    fx_t f;
    memset(&f, 0, sizeof(f));
    ig_config_init(&f.gc);
    ig_bootstrap_stack_init(&f.s);
    assert_int_equal(
        ig_config_merge_json(&f.gc, GATEWAY, strlen(GATEWAY), "t", f.err, sizeof(f.err)), 0);
    assert_int_equal(ig_bootstrap_conf_load(&f.bc, NULL, f.err, sizeof(f.err)), 0);
    assert_int_equal(ig_bootstrap_render(&f.bc, &f.gc, NULL, envp, &f.s, f.err, sizeof(f.err)),
                     IG_ECONFIG);
    assert_non_null(strstr(f.err, "bootstrap.mesh.region"));
    fx_dispose(&f);
}

static void test_templates_from_the_source_tree_match_builtin(void **state)
{
    (void)state;
    const char *root = getenv("IG_TEST_SOURCE_ROOT");
    if (!root)
        fail_msg("IG_TEST_SOURCE_ROOT is not set (meson sets it)");
    fx_t a, b;
    assert_int_equal(render(&a, GATEWAY, NULL, NULL), 0);
    assert_int_equal(render(&b, GATEWAY, NULL, root), 0);
    assert_int_equal(a.s.n, b.s.n);
    for (size_t i = 0; i < a.s.n; i++)
        assert_true(cJSON_Compare(a.s.items[i].body, b.s.items[i].body, true));
    fx_dispose(&a);
    fx_dispose(&b);
    assert_int_equal(render(&a, GATEWAY, NULL, "/nonexistent"), IG_EIO);
    assert_non_null(strstr(a.err, "/nonexistent/mesh-config/mesh.json"));
    fx_dispose(&a);
}

static void test_diff(void **state)
{
    (void)state;
    cJSON *want = cJSON_Parse("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1,2]},\"e\":[{\"n\":1}]}");
    cJSON *live = cJSON_Parse("{\"a\":1,\"b\":{\"c\":\"y\",\"d\":[1,2],\"extra\":true},"
                              "\"e\":[{\"n\":1,\"default\":0}]}");
    ig_buf_t out;
    ig_buf_init(&out, 0);
    assert_int_equal(ig_bootstrap_diff(want, live, true, "spec", &out), 1);
    assert_string_equal(out.base, "    spec.b.c: \"y\" -> \"x\"\n");
    ig_buf_reset(&out);
    assert_int_equal(ig_bootstrap_diff(want, live, false, "", &out), 3);
    assert_non_null(strstr(out.base, "b.extra: true -> (absent)"));
    assert_non_null(strstr(out.base, "e[0].default: 0 -> (absent)"));
    ig_buf_reset(&out);
    assert_int_equal(ig_bootstrap_diff(want, want, false, "", &out), 0);
    cJSON *shorter = cJSON_Parse("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1]},\"e\":[{\"n\":1}]}");
    assert_int_equal(ig_bootstrap_diff(want, shorter, true, "", &out), 1);
    assert_non_null(strstr(out.base, "b.d: [1] -> [1,2]"));
    cJSON_Delete(shorter);
    cJSON_Delete(want);
    cJSON_Delete(live);
    ig_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appmesh_hpa_stack),
        cmocka_unit_test(test_service_account_is_rendered_before_the_deployment),
        cmocka_unit_test(test_disruption_budget_and_spread),
        cmocka_unit_test(test_mesh_discovery_retries_and_timeouts),
        cmocka_unit_test(test_prestop_hooks_wait_for_the_drain),
        cmocka_unit_test(test_render_is_deterministic_and_tracks_config),
        cmocka_unit_test(test_keda_and_no_mesh),
        cmocka_unit_test(test_cross_checks_with_the_gateway_config),
        cmocka_unit_test(test_region_required_for_appmesh),
        cmocka_unit_test(test_templates_from_the_source_tree_match_builtin),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
