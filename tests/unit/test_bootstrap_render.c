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

#include "infergate/bootstrap_conf.h"
#include "infergate/bootstrap_stack.h"
#include "infergate/config.h"
#include "infergate/error.h"

static const char *GATEWAY = "{\"listen\":\"0.0.0.0:8080\",\"admin_listen\":\"0.0.0.0:9090\","
                             "\"upstream\":{\"url\":\"http://127.0.0.1:8081\"}}";

typedef struct {
    ig_config_t gc;
    ig_bs_conf_t bc;
    ig_bs_stack_t s;
    char err[1024];
} fx_t;

/* Renders `gateway` + `boot` (the bootstrap section); returns the rc. */
static int render(fx_t *f, const char *gateway, const char *boot, const char *tpl_dir)
{
    char *const envp[] = {"AWS_REGION=eu-west-1", NULL};
    memset(f, 0, sizeof(*f));
    ig_config_init(&f->gc);
    ig_bs_stack_init(&f->s);
    int rc =
        ig_config_merge_json(&f->gc, gateway, strlen(gateway), "t.json", f->err, sizeof(f->err));
    assert_int_equal(rc, 0);
    cJSON *b = boot ? cJSON_Parse(boot) : NULL;
    rc = ig_bs_conf_load(&f->bc, b, f->err, sizeof(f->err));
    cJSON_Delete(b);
    if (rc == 0)
        rc = ig_bs_render(&f->bc, &f->gc, tpl_dir, envp, &f->s, f->err, sizeof(f->err));
    return rc;
}

static void fx_dispose(fx_t *f)
{
    ig_bs_stack_dispose(&f->s);
    ig_bs_conf_dispose(&f->bc);
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
    static const char *const kinds[] = {
        "Mesh",      "VirtualNode", "VirtualRouter", "Route",     "VirtualService",
        "ConfigMap", "Deployment",  "Service",       "ConfigMap", "HorizontalPodAutoscaler"};
    assert_int_equal(f.s.n, 10);
    for (size_t i = 0; i < f.s.n; i++)
        assert_string_equal(f.s.items[i].kind, kinds[i]);
    assert_ptr_equal(f.s.items[0].backend, &ig_bs_appmesh_backend);
    assert_ptr_equal(f.s.items[5].backend, &ig_bs_kube_backend);
    assert_string_equal(f.s.items[3].path,
                        "/v20190125/meshes/ml-mesh/virtualRouter/ml-service-router/routes/"
                        "ml-service-route");
    assert_string_equal(f.s.items[6].path,
                        "/apis/apps/v1/namespaces/default/deployments/ml-service");
    const cJSON *vn = f.s.items[1].body;
    assert_int_equal(at(vn, "spec.listeners.0.portMapping.port")->valueint, 8080);
    assert_int_equal(at(vn, "spec.listeners.0.healthCheck.port")->valueint, 8080);
    /* Route timeout covers queueing (default 5000) + model timeout (30000) + slack. */
    assert_int_equal(at(f.s.items[3].body, "spec.httpRoute.timeout.perRequest.value")->valueint,
                     36000);
    const cJSON *dep = f.s.items[6].body;
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
        cJSON_GetObjectItemCaseSensitive(at(f.s.items[5].body, "data"), "config.json");
    assert_true(cJSON_IsString(cfg));
    cJSON *gw = cJSON_Parse(cfg->valuestring);
    assert_non_null(gw);
    assert_null(cJSON_GetObjectItemCaseSensitive(gw, "bootstrap"));
    assert_string_equal(at(gw, "upstream.url")->valuestring, "http://127.0.0.1:8081");
    cJSON_Delete(gw);
    const cJSON *hpa = f.s.items[9].body;
    assert_string_equal(at(hpa, "spec.metrics.0.pods.target.averageValue")->valuestring, "700m");
    assert_string_equal(at(hpa, "spec.metrics.1.pods.target.averageValue")->valuestring, "8");
    assert_int_equal(at(hpa, "spec.metrics.2.resource.target.averageUtilization")->valueint, 80);
    assert_string_equal(at(f.s.items[8].body, "metadata.namespace")->valuestring, "monitoring");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(f.s.outputs, "ml_service_endpoint")->valuestring,
        "http://ml-service.default.svc.cluster.local:8080");
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
            at(a.s.items[6].body, "spec.template.metadata.annotations"), "infergate.io/config-hash")
            ->valuestring;
    const char *h3 =
        cJSON_GetObjectItemCaseSensitive(
            at(c.s.items[6].body, "spec.template.metadata.annotations"), "infergate.io/config-hash")
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
    assert_int_equal(f.s.n, 4);
    assert_string_equal(f.s.items[3].kind, "ScaledObject");
    assert_string_equal(f.s.items[3].path,
                        "/apis/keda.sh/v1alpha1/namespaces/ml/scaledobjects/ml-service");
    assert_string_equal(at(f.s.items[3].body, "spec.triggers.0.metadata.threshold")->valuestring,
                        "1.5");
    assert_non_null(strstr(at(f.s.items[3].body, "spec.triggers.0.metadata.query")->valuestring,
                           "namespace=\"ml\""));
    assert_int_equal(cJSON_GetArraySize(at(f.s.items[1].body, "spec.template.spec.containers")), 2);
    assert_null(at(f.s.items[1].body, "spec.template.spec.initContainers"));
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
    ig_bs_stack_init(&f.s);
    assert_int_equal(
        ig_config_merge_json(&f.gc, GATEWAY, strlen(GATEWAY), "t", f.err, sizeof(f.err)), 0);
    assert_int_equal(ig_bs_conf_load(&f.bc, NULL, f.err, sizeof(f.err)), 0);
    assert_int_equal(ig_bs_render(&f.bc, &f.gc, NULL, envp, &f.s, f.err, sizeof(f.err)),
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
    assert_int_equal(ig_bs_diff(want, live, true, "spec", &out), 1);
    assert_string_equal(out.base, "    spec.b.c: \"y\" -> \"x\"\n");
    ig_buf_reset(&out);
    assert_int_equal(ig_bs_diff(want, live, false, "", &out), 3);
    assert_non_null(strstr(out.base, "b.extra: true -> (absent)"));
    assert_non_null(strstr(out.base, "e[0].default: 0 -> (absent)"));
    ig_buf_reset(&out);
    assert_int_equal(ig_bs_diff(want, want, false, "", &out), 0);
    cJSON *shorter = cJSON_Parse("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1]},\"e\":[{\"n\":1}]}");
    assert_int_equal(ig_bs_diff(want, shorter, true, "", &out), 1);
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
        cmocka_unit_test(test_render_is_deterministic_and_tracks_config),
        cmocka_unit_test(test_keda_and_no_mesh),
        cmocka_unit_test(test_cross_checks_with_the_gateway_config),
        cmocka_unit_test(test_region_required_for_appmesh),
        cmocka_unit_test(test_templates_from_the_source_tree_match_builtin),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
