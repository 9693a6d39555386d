/*
 * test_bootstrap_conf.c: the "bootstrap" config section: defaults, key-path errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "infergate/bootstrap/bootstrap.h"
#include "infergate/bootstrap/conf.h"
#include "infergate/base/error.h"

static int load_text(ig_bootstrap_conf_t *c, const char *json, char *err)
{
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    if (json)
        assert_non_null(j);
    int rc = ig_bootstrap_conf_load(c, j, err, 512);
    cJSON_Delete(j);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    ig_bootstrap_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c, NULL, err), 0);
    assert_string_equal(c.name, "ml-service");
    assert_string_equal(c.namespace_, "default");
    assert_string_equal(c.gateway_image, "infergate:0.1.0");
    assert_int_equal(c.model_port, 8081);
    assert_int_equal(c.replicas_min, 1);
    assert_int_equal(c.replicas_max, 10);
    assert_int_equal(c.autoscaling.engine, IG_BOOTSTRAP_ENGINE_HPA);
    assert_true(c.autoscaling.load_factor_target == 0.7);
    assert_int_equal(c.autoscaling.queue_depth_target, 8);
    assert_int_equal(c.autoscaling.cpu_utilization, 80);
    assert_string_equal(c.mesh.provider, "appmesh");
    assert_string_equal(c.mesh.name, "ml-mesh");
    assert_null(c.mesh.region);
    assert_string_equal(c.mesh.hostname, "ml-service.default.svc.cluster.local");
    assert_non_null(strstr(c.mesh.envoy_image, "aws-appmesh-envoy"));
    assert_null(c.kubernetes.kubeconfig);
    /* The pods get their own ServiceAccount, named after the stack. */
    assert_string_equal(c.kubernetes.service_account, "ml-service");
    assert_true(c.kubernetes.create_service_account);
    assert_int_equal(cJSON_GetArraySize(c.kubernetes.sa_annotations), 0);
    assert_null(c.mesh.iam_role_arn);
    ig_bootstrap_conf_dispose(&c);
}

static void test_service_account_and_irsa(void **state)
{
    (void)state;
    ig_bootstrap_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c,
                               "{\"name\":\"bert\",\"mesh\":{\"iam_role_arn\":"
                               "\"arn:aws-cn:iam::111122223333:role/path/envoy\"},"
                               "\"kubernetes\":{\"service_account_annotations\":"
                               "{\"example.com/owner\":\"ml\"}}}",
                               err),
                     0);
    assert_string_equal(c.kubernetes.service_account, "bert");
    const cJSON *a = c.kubernetes.sa_annotations;
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(a, "eks.amazonaws.com/role-arn")->valuestring,
        "arn:aws-cn:iam::111122223333:role/path/envoy");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "example.com/owner")->valuestring,
                        "ml");
    ig_bootstrap_conf_dispose(&c);
    /* The same role given both ways is fine. */
    assert_int_equal(load_text(&c,
                               "{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::111122223333:role/r\"},"
                               "\"kubernetes\":{\"service_account_annotations\":{"
                               "\"eks.amazonaws.com/role-arn\":"
                               "\"arn:aws:iam::111122223333:role/r\"}}}",
                               err),
                     0);
    ig_bootstrap_conf_dispose(&c);
    /* An existing account is used as is. */
    assert_int_equal(load_text(&c,
                               "{\"kubernetes\":{\"service_account\":\"default\","
                               "\"create_service_account\":false}}",
                               err),
                     0);
    assert_string_equal(c.kubernetes.service_account, "default");
    assert_false(c.kubernetes.create_service_account);
    ig_bootstrap_conf_dispose(&c);
}

static void test_values_and_derived_hostname(void **state)
{
    (void)state;
    ig_bootstrap_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c,
                               "{\"name\":\"bert\",\"namespace\":\"ml\",\"replicas\":{\"min\":2,"
                               "\"max\":4},\"autoscaling\":{\"engine\":\"keda\"},"
                               "\"mesh\":{\"provider\":\"none\",\"region\":null},"
                               "\"resources\":{\"model\":{\"requests\":{\"cpu\":\"500m\"}}}}",
                               err),
                     0);
    assert_string_equal(c.mesh.hostname, "bert.ml.svc.cluster.local");
    assert_int_equal(c.replicas_min, 2);
    assert_int_equal(c.autoscaling.engine, IG_BOOTSTRAP_ENGINE_KEDA);
    assert_string_equal(c.mesh.provider, "none");
    cJSON *req = cJSON_GetObjectItemCaseSensitive(c.resources_model, "requests");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(req, "cpu")->valuestring, "500m");
    assert_null(cJSON_GetObjectItemCaseSensitive(c.resources_model, "limits"));
    ig_bootstrap_conf_dispose(&c);
}

static void expect_error(const char *json, const char *want)
{
    ig_bootstrap_conf_t c;
    char err[512] = "";
    assert_int_equal(load_text(&c, json, err), IG_ECONFIG);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    ig_bootstrap_conf_dispose(&c);
}

static void test_errors_name_the_key_path(void **state)
{
    (void)state;
    expect_error("{\"nmae\":\"x\"}", "bootstrap.nmae: unknown key");
    expect_error("{\"mesh\":{\"regoin\":\"x\"}}", "bootstrap.mesh.regoin: unknown key");
    expect_error("{\"replicas\":{\"min\":0}}", "bootstrap.replicas.min: must be an integer");
    expect_error("{\"replicas\":{\"min\":5,\"max\":2}}", "bootstrap.replicas.min: must be <=");
    expect_error("{\"replicas\":{\"min\":1.5}}", "bootstrap.replicas.min");
    expect_error("{\"name\":\"Bad_Name\"}", "bootstrap.name: must be a DNS-1035 label");
    expect_error("{\"model_port\":\"8081\"}", "bootstrap.model_port");
    expect_error("{\"autoscaling\":{\"engine\":\"vpa\"}}", "bootstrap.autoscaling.engine");
    expect_error("{\"autoscaling\":{\"load_factor_target\":0}}",
                 "bootstrap.autoscaling.load_factor_target");
    expect_error("{\"mesh\":{\"provider\":\"istio\"}}", "bootstrap.mesh.provider");
    expect_error("{\"mesh\":{\"name\":null}}", "bootstrap.mesh.name: must be a string");
    expect_error("{\"resources\":{\"gateway\":{\"requests\":{\"cpu\":\"lots\"}}}}",
                 "bootstrap.resources.gateway.requests.cpu");
    expect_error("{\"resources\":{\"gpu\":{}}}", "bootstrap.resources.gpu: unknown key");
    expect_error("{\"kubernetes\":{\"context\":5}}", "bootstrap.kubernetes.context");
    expect_error("[1]", "bootstrap: must be an object");
    expect_error("{\"kubernetes\":{\"service_account\":\"default\"}}",
                 "bootstrap.kubernetes.service_account: \"default\" belongs to Kubernetes");
    expect_error("{\"kubernetes\":{\"service_account\":\"Bad_SA\"}}",
                 "bootstrap.kubernetes.service_account: must be a DNS-1123 subdomain");
    expect_error("{\"kubernetes\":{\"create_service_account\":\"yes\"}}",
                 "bootstrap.kubernetes.create_service_account: must be true or false");
    expect_error("{\"kubernetes\":{\"service_account_annotations\":{\"a\":1}}}",
                 "bootstrap.kubernetes.service_account_annotations.a: must be a string");
    expect_error(
        "{\"kubernetes\":{\"service_account_annotations\":{\"-bad\":\"x\"}}}",
        "bootstrap.kubernetes.service_account_annotations.-bad: not a valid annotation key");
    expect_error("{\"kubernetes\":{\"create_service_account\":false,"
                 "\"service_account_annotations\":{\"a\":\"b\"}}}",
                 "bootstrap.kubernetes.service_account_annotations: needs "
                 "bootstrap.kubernetes.create_service_account");
    expect_error("{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::1234:role/x\"}}",
                 "bootstrap.mesh.iam_role_arn: must be an IAM role ARN");
    expect_error("{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::111122223333:user/x\"}}",
                 "bootstrap.mesh.iam_role_arn: must be an IAM role ARN");
    expect_error("{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::111122223333:role/a\"},"
                 "\"kubernetes\":{\"create_service_account\":false}}",
                 "bootstrap.mesh.iam_role_arn: needs bootstrap.kubernetes.create_service_account");
    expect_error("{\"mesh\":{\"iam_role_arn\":\"arn:aws:iam::111122223333:role/a\"},"
                 "\"kubernetes\":{\"service_account_annotations\":{"
                 "\"eks.amazonaws.com/role-arn\":\"arn:aws:iam::111122223333:role/b\"}}}",
                 "bootstrap.mesh.iam_role_arn: disagrees with");
    /* <name>-pods, the headless Service App Mesh discovers, must stay a label. */
    expect_error("{\"name\":\"a23456789012345678901234567890123456789012345678901234567890\"}",
                 "bootstrap.name: must be at most 58 characters with mesh.provider appmesh");
}

static void test_check_config_entry_point(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(ig_bootstrap_check_config(NULL, err, sizeof(err)), 0);
    cJSON *j = cJSON_Parse("{\"replicas\":{\"max\":0}}");
    assert_int_equal(ig_bootstrap_check_config(j, err, sizeof(err)), IG_ECONFIG);
    assert_non_null(strstr(err, "bootstrap.replicas.max"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_and_derived_hostname),
        cmocka_unit_test(test_service_account_and_irsa),
        cmocka_unit_test(test_errors_name_the_key_path),
        cmocka_unit_test(test_check_config_entry_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
