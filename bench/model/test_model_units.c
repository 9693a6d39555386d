/*
 * test_model_units.c: unit tests of infergate-model's pure parts: the iris
 * math (checked against the data set it was trained on), V1/V2 parsing and
 * rendering, path matching, query parsing and the command line.
 *
 * argv[1] is bench/model/iris.csv.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "extras.h"
#include "infergate/base/error.h"
#include "iris.h"
#include "kserve.h"
#include "opts.h"

static const char *csv_path;

/* ---- iris ----------------------------------------------------------------- */

static void test_iris_known_rows(void **state)
{
    (void)state;
    static const struct {
        double x[4];
        int64_t label;
    } rows[] = {
        {{5.1, 3.5, 1.4, 0.2}, 0}, {{4.9, 3.0, 1.4, 0.2}, 0}, {{7.0, 3.2, 4.7, 1.4}, 1},
        {{5.7, 2.8, 4.1, 1.3}, 1}, {{6.7, 3.0, 5.2, 2.3}, 2}, {{6.3, 3.3, 6.0, 2.5}, 2},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ig_iris_pred_t p;
        ig_iris_predict(rows[i].x, &p);
        assert_int_equal(p.label, rows[i].label);
        float sum = p.probs[0] + p.probs[1] + p.probs[2];
        assert_true(sum > 0.999f && sum < 1.001f);
        for (int k = 0; k < 3; k++)
            assert_true(p.probs[k] <= p.probs[p.label]);
    }
}

/* Recomputes the training accuracy in C over the whole data set: it must be
 * the one train_iris.py recorded, which proves the C forward pass matches the
 * Python one the weights were trained with. */
static void test_iris_accuracy_matches_training(void **state)
{
    (void)state;
    FILE *f = fopen(csv_path, "r");
    char line[256];
    size_t n = 0, correct = 0;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        double x[4];
        int label;
        ig_iris_pred_t p;
        if (line[0] == '#' || line[0] == 's')
            continue;
        assert_int_equal(sscanf(line, "%lf,%lf,%lf,%lf,%d", &x[0], &x[1], &x[2], &x[3], &label), 5);
        ig_iris_predict(x, &p);
        correct += p.label == label;
        n++;
    }
    fclose(f);
    assert_int_equal(n, 150);
    assert_true((double)correct / (double)n == ig_iris_train_accuracy());
    assert_true(ig_iris_train_accuracy() >= 0.9);
}

static void test_iris_rows_and_names(void **state)
{
    (void)state;
    double x[8] = {5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3};
    ig_iris_pred_t p[2];
    ig_iris_predict_rows(x, 2, p);
    assert_int_equal(p[0].label, 0);
    assert_int_equal(p[1].label, 2);
    assert_string_equal(ig_iris_class_name(1), "versicolor");
    assert_string_equal(ig_iris_class_name(7), "unknown");
}

/* ---- V1 ------------------------------------------------------------------- */

static int v1(const char *body, ig_kserve_input_t *in, char *err)
{
    return ig_kserve_v1_parse(body, strlen(body), in, err, 256);
}

static void test_v1_parse_ok(void **state)
{
    (void)state;
    ig_kserve_input_t in;
    char err[256];
    assert_int_equal(
        v1("{\"instances\":[[5.1,3.5,1.4,0.2],[6.7,3,5.2,2.3]],\"parameters\":{}} ", &in, err), 0);
    assert_int_equal(in.rows, 2);
    assert_true(in.x[4] == 6.7 && in.x[7] == 2.3);
    ig_kserve_input_dispose(&in);
    assert_null(in.x);
}

static void expect_v1_error(const char *body, int code, const char *msg)
{
    ig_kserve_input_t in;
    char err[256];
    assert_int_equal(v1(body, &in, err), code);
    assert_string_equal(err, msg);
    assert_null(in.x);
}

static void test_v1_parse_errors(void **state)
{
    (void)state;
    expect_v1_error("", IG_EPARSE, "body: empty, expected a JSON object");
    expect_v1_error("{\"instances\":", IG_EPARSE, "body: invalid JSON");
    expect_v1_error("{} x", IG_EPARSE, "body: invalid JSON");
    expect_v1_error("[1]", IG_EINVAL, "body: expected a JSON object");
    expect_v1_error("{\"rows\":[]}", IG_EINVAL, "instances: missing");
    expect_v1_error("{\"instances\":{}}", IG_EINVAL, "instances: expected an array");
    expect_v1_error("{\"instances\":[]}", IG_EINVAL, "instances: expected at least one instance");
    expect_v1_error("{\"instances\":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3]]}", IG_EINVAL,
                    "instances[3]: expected an array of 4 numbers");
    expect_v1_error("{\"instances\":[[1,2,\"3\",4]]}", IG_EINVAL,
                    "instances[0]: expected an array of 4 numbers");
    expect_v1_error("{\"instances\":[{\"sepal_length\":1}]}", IG_EINVAL,
                    "instances[0]: expected an array of 4 numbers");
    expect_v1_error("{\"instances\":[[1,2,1e999,4]]}", IG_EINVAL,
                    "instances[0][2]: not a finite number");
    expect_v1_error("{\"instances\":[[5.1,3.5,2e300,0.2]]}", IG_EINVAL,
                    "instances[0][2]: 2e+300 is out of range (|x| <= 1e+06)");
}

static void test_v1_render(void **state)
{
    (void)state;
    ig_iris_pred_t p[3] = {{.label = 0}, {.label = 2}, {.label = 1}};
    size_t len;
    char *s = ig_kserve_v1_render(p, 3, &len);
    assert_string_equal(s, "{\"predictions\":[0,2,1]}");
    assert_int_equal(len, strlen(s));
    cJSON_free(s);
}

/* ---- V2 ------------------------------------------------------------------- */

static int v2(const char *body, ig_kserve_input_t *in, char *err)
{
    return ig_kserve_v2_parse(body, strlen(body), in, err, 256);
}

static void test_v2_parse_flat_and_nested(void **state)
{
    (void)state;
    ig_kserve_input_t in;
    char err[256];
    assert_int_equal(v2("{\"id\":\"r1\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":"
                        "\"FP64\",\"data\":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}",
                        &in, err),
                     0);
    assert_int_equal(in.rows, 2);
    assert_string_equal(in.id, "r1");
    assert_true(in.x[4] == 6.7);
    assert_int_equal(in.noutputs, 2);
    ig_kserve_input_dispose(&in);

    assert_int_equal(v2("{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
                        "\"data\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}],"
                        "\"outputs\":[{\"name\":\"probabilities\"},{\"name\":\"label\"}]}",
                        &in, err),
                     0);
    assert_null(in.id);
    /* FP32 input is taken at float precision. */
    assert_true(in.x[4] == (double)6.7f);
    assert_int_equal(in.noutputs, 2);
    assert_int_equal(in.outputs[0], IG_KSERVE_OUT_PROBS);
    assert_int_equal(in.outputs[1], IG_KSERVE_OUT_LABEL);
    ig_kserve_input_dispose(&in);

    assert_int_equal(v2("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"INT32\","
                        "\"data\":[5,3,1,0]}]}",
                        &in, err),
                     0);
    assert_true(in.x[0] == 5.0);
    ig_kserve_input_dispose(&in);
}

static void expect_v2_error(const char *body, const char *msg)
{
    ig_kserve_input_t in;
    char err[256];
    assert_int_equal(v2(body, &in, err), IG_EINVAL);
    assert_string_equal(err, msg);
    assert_null(in.x);
    assert_null(in.id);
}

#define T(shape, dtype, data)                                                                      \
    "{\"inputs\":[{\"name\":\"x\",\"shape\":" shape ",\"datatype\":\"" dtype "\",\"data\":" data   \
    "}]}"

static void test_v2_parse_errors(void **state)
{
    (void)state;
    expect_v2_error("{}", "inputs: missing");
    expect_v2_error("{\"inputs\":{}}", "inputs: expected an array of tensors");
    expect_v2_error("{\"inputs\":[]}", "inputs: expected 1 tensor, got 0");
    expect_v2_error("{\"inputs\":[1]}", "inputs[0]: expected an object");
    expect_v2_error("{\"id\":3,\"inputs\":[]}", "id: expected a string");
    expect_v2_error("{\"inputs\":[{\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
                    "inputs[0].name: expected a string");
    expect_v2_error("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
                    "inputs[0].datatype: missing");
    expect_v2_error(T("[1,4]", "BYTES", "[1,2,3,4]"),
                    "inputs[0].datatype: BYTES is not supported (expected FP16, FP32, FP64, "
                    "BF16 or an integer type)");
    expect_v2_error(T("[1,4]", "BOOL", "[true,false,true,false]"),
                    "inputs[0].datatype: BOOL is not supported (expected FP16, FP32, FP64, "
                    "BF16 or an integer type)");
    expect_v2_error(T("[2,3]", "FP32", "[1,2,3,4,5,6]"),
                    "inputs[0].shape: expected [N, 4], got [2,3]");
    expect_v2_error(T("[4]", "FP32", "[1,2,3,4]"), "inputs[0].shape: expected [N, 4], got [4]");
    expect_v2_error(T("[1.5,4]", "FP32", "[1,2,3,4]"),
                    "inputs[0].shape: expected [N, 4], got [1.5,4]");
    expect_v2_error(T("[0,4]", "FP32", "[]"), "inputs[0].shape: expected at least 1 row, got 0");
    expect_v2_error(T("[2,4]", "FP32", "[1,2,3,4,5,6,7]"),
                    "inputs[0].data: 7 values for shape [2, 4] (expected 8)");
    expect_v2_error(T("[1000000000,4]", "FP32", "[1,2,3,4]"),
                    "inputs[0].data: 4 values for shape [1000000000, 4] (expected 4000000000)");
    expect_v2_error(T("[2,4]", "FP32", "[[1,2,3,4]]"),
                    "inputs[0].data: 1 rows for shape [2, 4] (expected 2)");
    expect_v2_error(T("[2,4]", "FP32", "[[1,2,3,4],[1,2,3]]"),
                    "inputs[0].data[1]: expected an array of 4 numbers (nested data must match "
                    "shape [2, 4])");
    expect_v2_error(T("[1,4]", "FP32", "[1,2,true,4]"), "inputs[0].data[2]: expected a number");
    expect_v2_error(T("[1,4]", "FP64", "[[1,2,null,4]]"),
                    "inputs[0].data[0][2]: expected a number");
    expect_v2_error(T("[1,4]", "INT32", "[1,2,3.5,4]"),
                    "inputs[0].data[2]: 3.5 is not a valid INT32 value");
    expect_v2_error(T("[1,4]", "UINT8", "[1,2,256,4]"),
                    "inputs[0].data[2]: 256 is not a valid UINT8 value");
    expect_v2_error(T("[1,4]", "FP32", "[1,2,1e39,4]"),
                    "inputs[0].data[2]: 1e+39 is out of FP32 range");
    expect_v2_error(T("[1,4]", "FP16", "[1,2,65520,4]"),
                    "inputs[0].data[2]: 65520 is out of FP16 range");
    /* 2^63 is one past INT64's largest value. */
    expect_v2_error(T("[1,4]", "INT64", "[1,2,9223372036854775808,4]"),
                    "inputs[0].data[2]: 9.22337e+18 is not a valid INT64 value");
    expect_v2_error(T("[1,4]", "FP64", "[5.1,3.5,1.41e308,0.3]"),
                    "inputs[0].data[2]: 1.41e+308 is out of range (|x| <= 1e+06)");
    expect_v2_error(T("[1,4]", "FP32", "{}"), "inputs[0].data: expected an array");
    expect_v2_error("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\"}]}",
                    "inputs[0].data: missing");
    expect_v2_error("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\","
                    "\"data\":[1,2,3,4]}],\"outputs\":[{\"name\":\"logits\"}]}",
                    "outputs[0].name: unknown output 'logits' (this model has label, "
                    "probabilities)");
    expect_v2_error("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\","
                    "\"data\":[1,2,3,4]}],\"outputs\":[]}",
                    "outputs: empty; omit it to get every output");
}

static void test_v2_render(void **state)
{
    (void)state;
    ig_kserve_input_t in;
    char err[256];
    ig_iris_pred_t p[2] = {{.label = 0, .probs = {0.75f, 0.25f, 0.0f}},
                           {.label = 2, .probs = {0.1f, 0.2f, 0.7f}}};
    size_t len;
    char *s;

    assert_int_equal(v2("{\"id\":\"a\\\"b\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],"
                        "\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7,8]}]}",
                        &in, err),
                     0);
    s = ig_kserve_v2_render(&in, p, "iris", "1", &len);
    assert_string_equal(
        s, "{\"model_name\":\"iris\",\"model_version\":\"1\",\"id\":\"a\\\"b\",\"outputs\":["
           "{\"name\":\"label\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[0,2]},"
           "{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[2,3],"
           "\"data\":[0.75,0.25,0,0.100000001,0.200000003,0.699999988]}]}");
    cJSON_free(s);
    in.outputs[0] = IG_KSERVE_OUT_LABEL;
    in.noutputs = 1;
    s = ig_kserve_v2_render(&in, p, "iris", NULL, &len);
    assert_string_equal(s, "{\"model_name\":\"iris\",\"id\":\"a\\\"b\",\"outputs\":["
                           "{\"name\":\"label\",\"datatype\":\"INT64\",\"shape\":[2],"
                           "\"data\":[0,2]}]}");
    cJSON_free(s);
    ig_kserve_input_dispose(&in);
}

/* ---- paths ---------------------------------------------------------------- */

static void expect_path(const char *path, ig_kserve_path_kind_t kind, const char *model,
                        const char *version)
{
    ig_kserve_path_t p;
    assert_int_equal(ig_kserve_match(ig_slice_cstr(path), &p), kind);
    assert_int_equal(p.kind, kind);
    if (model)
        assert_true(ig_slice_eq(p.model, model));
    if (version)
        assert_true(p.version.base && ig_slice_eq(p.version, version));
    else
        assert_null(p.version.base);
}

static void test_match(void **state)
{
    (void)state;
    expect_path("/v1/models/iris:predict", IG_KSERVE_PATH_V1_PREDICT, "iris", NULL);
    expect_path("/v1/models/iris", IG_KSERVE_PATH_V1_MODEL, "iris", NULL);
    expect_path("/v1/models/iris:explain", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v1/models/:predict", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v1/models/", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v1/models/a/b:predict", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2", IG_KSERVE_PATH_V2_SERVER, "", NULL);
    expect_path("/v2/health/live", IG_KSERVE_PATH_V2_LIVE, "", NULL);
    expect_path("/v2/health/ready", IG_KSERVE_PATH_V2_READY, "", NULL);
    expect_path("/v2/models/iris", IG_KSERVE_PATH_V2_MODEL, "iris", NULL);
    expect_path("/v2/models/iris/ready", IG_KSERVE_PATH_V2_MODEL_READY, "iris", NULL);
    expect_path("/v2/models/iris/infer", IG_KSERVE_PATH_V2_INFER, "iris", NULL);
    expect_path("/v2/models/iris/versions/1", IG_KSERVE_PATH_V2_MODEL, "iris", "1");
    expect_path("/v2/models/iris/versions/1/ready", IG_KSERVE_PATH_V2_MODEL_READY, "iris", "1");
    expect_path("/v2/models/iris/versions/7/infer", IG_KSERVE_PATH_V2_INFER, "iris", "7");
    expect_path("/v2/models/iris/infer/", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2/models/iris/versions/1/infer/x", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2/models/iris/versions/1/explain", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2/models/iris/versions", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2/models//infer", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v2/models/", IG_KSERVE_PATH_NONE, NULL, NULL);
    expect_path("/v3/models/iris/infer", IG_KSERVE_PATH_NONE, NULL, NULL);
}

/* ---- query ---------------------------------------------------------------- */

static void test_query(void **state)
{
    (void)state;
    uint64_t v;
    ig_slice_t q = IG_SLICE_LIT("chunks=3&size=10&xsize=5&interval_ms=");
    assert_int_equal(ig_extras_query_u64(q, "chunks", 9, 100, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(ig_extras_query_u64(q, "size", 9, 100, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(ig_extras_query_u64(q, "ms", 9, 100, &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(ig_extras_query_u64(q, "interval_ms", 9, 100, &v), IG_EINVAL);
    assert_int_equal(ig_extras_query_u64(IG_SLICE_LIT("ms=-1"), "ms", 0, 100, &v), IG_EINVAL);
    assert_int_equal(ig_extras_query_u64(IG_SLICE_LIT("ms=101"), "ms", 0, 100, &v), IG_EINVAL);
    assert_int_equal(
        ig_extras_query_u64(IG_SLICE_LIT("ms=99999999999999999999999"), "ms", 0, 100, &v),
        IG_EINVAL);
    assert_int_equal(ig_extras_query_u64(ig_slice("", 0), "ms", 7, 100, &v), 0);
    assert_int_equal(v, 7);
}

/* ---- argv ----------------------------------------------------------------- */

static int parse(ig_opts_t *o, char *err, ...)
{
    char *argv[32] = {"infergate-model"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a = va_arg(ap, char *); a && argc < 31; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    return ig_opts_parse(argc, argv, o, err, 256);
}

static void test_opts_defaults_and_values(void **state)
{
    (void)state;
    ig_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, NULL), 0);
    assert_string_equal(o.listen, "127.0.0.1:8081");
    assert_string_equal(o.name, "iris");
    assert_int_equal(o.max_concurrency, 1);
    assert_true(o.crash_after == IG_OPTS_OFF && o.hang_after == IG_OPTS_OFF);
    assert_int_equal(o.fail_every, 0);
    assert_int_equal(o.log_level, IG_LOG_INFO);
    assert_false(o.quiet);

    assert_int_equal(parse(&o, err, "--listen", "127.0.0.1:0", "--name=m-1.x", "--cost-base-us",
                           "2000", "--cost-per-row-us=50", "--max-concurrency", "0", "--delay-ms",
                           "3", "--fail-every", "5", "--crash-after", "0", "--hang-after", "7",
                           "--not-ready-ms", "100", "--port-file", "/tmp/p", "--log-level", "warn",
                           "--quiet", NULL),
                     0);
    assert_string_equal(o.listen, "127.0.0.1:0");
    assert_string_equal(o.name, "m-1.x");
    assert_int_equal(o.cost_base_us, 2000);
    assert_int_equal(o.cost_per_row_us, 50);
    assert_int_equal(o.max_concurrency, 0);
    assert_int_equal(o.delay_ms, 3);
    assert_int_equal(o.fail_every, 5);
    assert_int_equal(o.crash_after, 0);
    assert_int_equal(o.hang_after, 7);
    assert_int_equal(o.not_ready_ms, 100);
    assert_string_equal(o.port_file, "/tmp/p");
    assert_int_equal(o.log_level, IG_LOG_WARN);
    assert_true(o.quiet);

    assert_int_equal(parse(&o, err, "--quiet", "-h", "--bogus", NULL), 0);
    assert_int_equal(o.action, IG_OPTS_HELP);
    assert_int_equal(parse(&o, err, "--version", NULL), 0);
    assert_int_equal(o.action, IG_OPTS_VERSION);
}

static void expect_opts_error(const char *msg, const char *a1, const char *a2)
{
    ig_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, a1, a2, NULL), IG_EINVAL);
    assert_string_equal(err, msg);
}

static void test_opts_errors(void **state)
{
    (void)state;
    expect_opts_error("--bogus: unknown flag (see --help)", "--bogus", NULL);
    expect_opts_error("--bogus: unknown flag (see --help)", "--bogus=1", NULL);
    expect_opts_error("'extra': unexpected argument (see --help)", "extra", NULL);
    expect_opts_error("--listen: missing value", "--listen", NULL);
    expect_opts_error("--cost-base-us: 'x1' is not a non-negative integer", "--cost-base-us", "x1");
    expect_opts_error("--delay-ms: '-1' is not a non-negative integer", "--delay-ms", "-1");
    expect_opts_error("--delay-ms: '5ms' is not a non-negative integer", "--delay-ms", "5ms");
    expect_opts_error("--delay-ms: 99999999999 is too large (at most 3600000000)", "--delay-ms",
                      "99999999999");
    expect_opts_error("--fail-every: 0 is too small (at least 1)", "--fail-every", "0");
    expect_opts_error("--max-concurrency: 100001 is too large (at most 100000; 0 = unlimited)",
                      "--max-concurrency", "100001");
    expect_opts_error("--name: 'a/b' may only contain letters, digits, '.', '_' and '-'", "--name",
                      "a/b");
    expect_opts_error("--name: must be 1 to 64 characters", "--name=", NULL);
    expect_opts_error("--log-level: 'loud' is not one of debug, info, warn, error, off",
                      "--log-level", "loud");
    expect_opts_error("--port-file: empty path", "--port-file", "");
    expect_opts_error("--listen: empty address", "--listen=", NULL);
    expect_opts_error("--quiet: takes no value", "--quiet=1", NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iris_known_rows),
        cmocka_unit_test(test_iris_accuracy_matches_training),
        cmocka_unit_test(test_iris_rows_and_names),
        cmocka_unit_test(test_v1_parse_ok),
        cmocka_unit_test(test_v1_parse_errors),
        cmocka_unit_test(test_v1_render),
        cmocka_unit_test(test_v2_parse_flat_and_nested),
        cmocka_unit_test(test_v2_parse_errors),
        cmocka_unit_test(test_v2_render),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_opts_defaults_and_values),
        cmocka_unit_test(test_opts_errors),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s bench/model/iris.csv\n", argv[0]);
        return 2;
    }
    csv_path = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
