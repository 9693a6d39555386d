/*
 * test_codec_v2.c: the Open Inference Protocol V2 batching codec through
 * codec.h: tensor validation and its messages, batch keys, binary data going
 * alone, the exact merged body, split round trips against a fake model
 * (nested data, BYTES, BOOL, outputs that are not batch-sized, ids), and
 * malformed answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "infergate/codec.h"
#include "infergate/error.h"

static char err[256];

static int parse_hint(ig_batch_part_t *p, const char *model, const char *body, bool binary)
{
    memset(p, 0, sizeof(*p));
    err[0] = '\0';
    return ig_codec_v2.parse(p, ig_slice_cstr(model), ig_slice_cstr(body), binary ? 0 : -1, err,
                             sizeof(err));
}

static void parse_ok(ig_batch_part_t *p, const char *body)
{
    if (parse_hint(p, "m", body, false))
        fail_msg("parse of %s failed: %s", body, err);
}

static void expect_error(const char *body, const char *needle)
{
    ig_batch_part_t p;
    assert_int_equal(parse_hint(&p, "m", body, false), IG_EINVAL);
    if (!strstr(err, needle))
        fail_msg("body %s:\n message \"%s\"\n does not contain \"%s\"", body, err, needle);
    assert_null(p.doc);
    assert_null(p.key.base);
}

#define T(name, dt, shape, data)                                                                   \
    "{\"name\":\"" name "\",\"datatype\":\"" dt "\",\"shape\":" shape ",\"data\":" data "}"
#define REQ1(t) "{\"inputs\":[" t "]}"

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("{\"inputs\": 1", "body: invalid JSON at byte");
    expect_error("{\"id\": \"\xff\"}", "body: not UTF-8 at byte 8");
    expect_error("{}", "inputs: missing");
    expect_error("{\"inputs\": []}", "inputs: empty");
    expect_error("{\"inputs\": {}}", "inputs: expected an array of tensors");
    expect_error("{\"id\": 7, \"inputs\": []}", "id: expected a string");
    expect_error("{\"inputs\": [1]}", "inputs[0]: expected a tensor object");
    expect_error("{\"inputs\": [{\"datatype\": \"FP32\"}]}", "inputs[0].name: expected a string");
    expect_error("{\"inputs\": [{\"name\": \"x\", \"shape\": [1], \"data\": [1]}]}",
                 "inputs[0] (\"x\").datatype: missing");
    expect_error(REQ1(T("x", "FLOAT", "[1]", "[1]")),
                 "inputs[0] (\"x\").datatype: \"FLOAT\" is not a tensor datatype");
    expect_error("{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"data\": [1]}]}",
                 "inputs[0] (\"x\").shape: missing");
    expect_error(REQ1(T("x", "FP32", "[]", "[]")), "shape: expected a non-empty array");
    expect_error(REQ1(T("x", "FP32", "[2, -1]", "[1, 2]")),
                 "inputs[0] (\"x\").shape[1]: expected a non-negative integer");
    expect_error(REQ1(T("x", "FP32", "[1.5]", "[1]")), "shape[0]: expected a non-negative integer");
    expect_error(REQ1(T("x", "FP32", "[0, 4]", "[]")), "shape[0]: expected at least 1 row, got 0");
    expect_error("{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1]}]}",
                 "inputs[0] (\"x\").data: missing");
    expect_error(REQ1(T("x", "FP32", "[2, 2]", "[1, 2, 3]")),
                 "inputs[0] (\"x\").data: holds 3 values but shape [2,2] needs 4");
    expect_error(REQ1(T("x", "FP32", "[2, 2]", "[[1, 2], [3]]")),
                 "holds 3 values but shape [2,2] needs 4");
    expect_error(REQ1(T("x", "FP32", "[1, 9007199254740992, 9007199254740992]", "[1]")),
                 "is far larger");
    expect_error(REQ1(T("x", "FP32", "[2]", "[1, \"2\"]")),
                 "inputs[0] (\"x\").data: value 1 is a string, datatype FP32 needs numbers");
    expect_error(REQ1(T("x", "FP32", "[1]", "[1e999]")), "value 0 is not a finite number");
    expect_error(REQ1(T("x", "FP32", "[1]", "[1e39]")), "out of range for FP32");
    expect_error(REQ1(T("b", "BOOL", "[2]", "[true, 1]")),
                 "inputs[0] (\"b\").data: value 1 is a number, datatype BOOL needs true or false");
    expect_error(REQ1(T("s", "BYTES", "[2]", "[\"a\", null]")),
                 "value 1 is null, datatype BYTES needs strings");
    expect_error(REQ1(T("i", "INT32", "[2]", "[1, 2.5]")), "value 1 (2.5) is not an integer");
    expect_error(REQ1(T("i", "INT8", "[2]", "[127, 128]")),
                 "value 1 (128) is out of range for INT8");
    expect_error(REQ1(T("u", "UINT8", "[1]", "[-1]")), "out of range for UINT8");
    expect_error(REQ1(T("o", "FP32", "[1]", "[{\"a\": 1}]")), "value 0 is an object");
    expect_error("{\"inputs\": [" T("a", "FP32", "[2]", "[1, 2]") "," T("b", "FP32", "[3]",
                                                                        "[1, 2, 3]") "]}",
                 "inputs[1].shape[0]: 3 rows, but inputs[0] has 2");
    expect_error("{\"parameters\": [], \"inputs\": [" T("a", "FP32", "[1]", "[1]") "]}",
                 "body.parameters: expected an object");
    expect_error("{\"inputs\": [{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1],"
                 "\"parameters\":1}]}",
                 "inputs[0] (\"a\").parameters: expected an object");
    expect_error(
        "{\"outputs\": [{\"nom\": \"y\"}], \"inputs\": [" T("a", "FP32", "[1]", "[1]") "]}",
        "outputs[0].name: expected a string");
    /* Regression (fuzz_codecs v2_duplicate_shape_member): a member given
     * twice in a tensor is refused, not half-validated. */
    expect_error("{\"inputs\": [{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
                 "\"data\":[1],\"shape\":true}]}",
                 "inputs[0]: member \"shape\" appears twice");
    expect_error("{\"outputs\": {}, \"inputs\": [" T("a", "FP32", "[1]", "[1]") "]}",
                 "outputs: expected an array");
}

static void test_valid_tensors(void **state)
{
    (void)state;
    ig_batch_part_t p;
    /* Nested and flat data, several inputs with equal rows, zero-sized dims. */
    parse_ok(
        &p,
        "{\"id\": \"r1\", \"inputs\": [" T("a", "FP32", "[2, 2]", "[[1, 2], [3, 4]]") "," T(
            "b", "INT64", "[2]",
            "[-9223372036854775808, 9007199254740992]") "," T("c", "BYTES", "[2, 1]",
                                                              "[\"x\", \"\\u00e9\"]") "," T("d",
                                                                                            "BOOL",
                                                                                            "[2, "
                                                                                            "0]",
                                                                                            "[[], "
                                                                                            "[]]") "," T("e",
                                                                                                         "UINT64",
                                                                                                         "[2]",
                                                                                                         "[0, 18446744073709549568]") "]}");
    assert_int_equal(p.rows, 2);
    assert_false(p.alone);
    ig_batch_part_dispose(&p);
}

static bool same_key(const char *a, const char *b)
{
    ig_batch_part_t pa, pb;
    parse_ok(&pa, a);
    parse_ok(&pb, b);
    bool eq = pa.key.len == pb.key.len && memcmp(pa.key.base, pb.key.base, pa.key.len) == 0;
    assert_true(eq == (pa.key_hash == pb.key_hash));
    ig_batch_part_dispose(&pa);
    ig_batch_part_dispose(&pb);
    return eq;
}

static void test_keys(void **state)
{
    (void)state;
    /* Rows, data and ids do not matter. */
    assert_true(same_key(
        "{\"id\": \"1\", \"inputs\": [" T("x", "FP32", "[1, 2]", "[1, 2]") "]}",
        "{\"id\": \"2\", \"inputs\": [" T("x", "FP32", "[3, 2]", "[[1, 2], [3, 4], [5, 6]]") "]}"));
    /* Member order (anywhere) does not matter. */
    assert_true(same_key(
        "{\"parameters\": {\"a\": 1, \"b\": 2}, \"outputs\": [{\"name\": \"y\", \"parameters\": "
        "{\"k\": 1, \"j\": 2}}], \"inputs\": [" T("x", "FP32", "[1, 2]", "[1, 2]") "]}",
        "{\"inputs\": [{\"shape\": [1, 2], \"data\": [1, 2], \"datatype\": \"FP32\", \"name\": "
        "\"x\"}], \"outputs\": [{\"parameters\": {\"j\": 2, \"k\": 1}, \"name\": \"y\"}], "
        "\"parameters\": {\"b\": 2, \"a\": 1}}"));
    /* Top-level parameters differ. */
    assert_false(
        same_key("{\"parameters\": {\"a\": 1}, \"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
                 "{\"parameters\": {\"a\": 2}, \"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}"));
    assert_false(
        same_key("{\"parameters\": {\"a\": 1}, \"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
                 "{\"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}"));
    /* Input parameters differ. */
    assert_false(
        same_key("{\"inputs\": [{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1],"
                 "\"parameters\":{\"content_type\":\"np\"}}]}",
                 "{\"inputs\": [{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1],"
                 "\"parameters\":{\"content_type\":\"pd\"}}]}"));
    /* shape[1:] differs. */
    assert_false(same_key("{\"inputs\": [" T("x", "FP32", "[1, 2]", "[1, 2]") "]}",
                          "{\"inputs\": [" T("x", "FP32", "[2, 1]", "[1, 2]") "]}"));
    assert_false(same_key("{\"inputs\": [" T("x", "FP32", "[1, 2]", "[1, 2]") "]}",
                          "{\"inputs\": [" T("x", "FP32", "[1, 2, 1]", "[1, 2]") "]}"));
    /* Datatype and name differ. */
    assert_false(same_key("{\"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
                          "{\"inputs\": [" T("x", "FP64", "[1]", "[1]") "]}"));
    assert_false(same_key("{\"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
                          "{\"inputs\": [" T("y", "FP32", "[1]", "[1]") "]}"));
    /* Output selection differs. */
    assert_false(same_key(
        "{\"outputs\": [{\"name\": \"label\"}], \"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
        "{\"outputs\": [{\"name\": \"probabilities\"}], \"inputs\": [" T("x", "FP32", "[1]",
                                                                         "[1]") "]}"));
    assert_false(same_key(
        "{\"outputs\": [{\"name\": \"label\"}], \"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}",
        "{\"inputs\": [" T("x", "FP32", "[1]", "[1]") "]}"));
    assert_false(same_key("{\"outputs\": [{\"name\": \"a\"}, {\"name\": \"b\"}], \"inputs\": [" T(
                              "x", "FP32", "[1]", "[1]") "]}",
                          "{\"outputs\": [{\"name\": \"b\"}, {\"name\": \"a\"}], \"inputs\": [" T(
                              "x", "FP32", "[1]", "[1]") "]}"));
}

static void test_binary_goes_alone(void **state)
{
    (void)state;
    ig_batch_part_t p;
    /* Announced by the header: a JSON header followed by raw bytes. */
    const char bin[] = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[3,4],"
                       "\"parameters\":{\"binary_data_size\":48}}]}\x01\x02\x03\x00\xff";
    memset(&p, 0, sizeof(p));
    assert_int_equal(ig_codec_v2.parse(&p, IG_SLICE_LIT("m"), ig_slice(bin, sizeof(bin) - 1), 0,
                                       err, sizeof(err)),
                     0);
    assert_true(p.alone);
    assert_int_equal(p.rows, 3);
    assert_int_equal(p.key.len, 0);
    ig_batch_part_dispose(&p);
    assert_int_equal(parse_hint(&p, "m", "\x01\x02 not json", true), 0);
    assert_true(p.alone);
    assert_int_equal(p.rows, 1);
    ig_batch_part_dispose(&p);

    /* Announced by parameters anywhere. */
    parse_ok(&p, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],"
                 "\"parameters\":{\"binary_data_size\":8}}]}");
    assert_true(p.alone);
    assert_int_equal(p.rows, 2);
    ig_batch_part_dispose(&p);
    parse_ok(&p, "{\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}],"
                 "\"inputs\":[" T("x", "FP32", "[1]", "[1]") "]}");
    assert_true(p.alone);
    ig_batch_part_dispose(&p);
    parse_ok(&p, "{\"parameters\":{\"binary_data_output\":true},"
                 "\"inputs\":[" T("x", "FP32", "[1]", "[1]") "]}");
    assert_true(p.alone);
    ig_batch_part_dispose(&p);
    /* binary_data: false asks for JSON: batchable. */
    parse_ok(&p, "{\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":false}}],"
                 "\"inputs\":[" T("x", "FP32", "[1]", "[1]") "]}");
    assert_false(p.alone);
    ig_batch_part_dispose(&p);
}

static char *merge(ig_batch_part_t *const *parts, size_t n)
{
    ig_buf_t out;
    ig_buf_init(&out, 0);
    assert_int_equal(ig_codec_v2.merge(parts, n, &out, &(int64_t){0}), 0);
    return ig_buf_take(&out, NULL);
}

static void test_merge_three_parts(void **state)
{
    (void)state;
    ig_batch_part_t a, b, c;
    ig_batch_part_t *parts[] = {&a, &b, &c};
    parse_ok(&a,
             "{\"id\":\"a\",\"parameters\":{\"p\":1},\"outputs\":[{\"name\":\"y\"}],\"inputs\":["
             "{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[0.1,2],"
             "\"parameters\":{\"content_type\":\"np\"}}," T("s", "BYTES", "[1]", "[\"one\"]") "]}");
    parse_ok(&b,
             "{\"inputs\":["
             "{\"parameters\":{\"content_type\":\"np\"},\"data\":[[3,4],[5,6]],\"shape\":[2,2],"
             "\"datatype\":\"FP32\",\"name\":\"x\"}," T(
                 "s", "BYTES", "[2]",
                 "[\"two\",\"three\"]") "],"
                                        "\"outputs\":[{\"name\":\"y\"}],\"parameters\":{\"p\":1}}");
    parse_ok(&c,
             "{\"id\":\"c\",\"outputs\":[{\"name\":\"y\"}],\"parameters\":{\"p\":1},\"inputs\":["
             "{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[3,2],\"data\":[7,8,9,10,11,12],"
             "\"parameters\":{\"content_type\":\"np\"}}," T("s", "BYTES", "[3]",
                                                            "[\"4\",\"5\",\"\\\"6\\\"\"]") "]}");
    assert_true(a.key.len == b.key.len && memcmp(a.key.base, b.key.base, a.key.len) == 0);
    assert_true(a.key.len == c.key.len && memcmp(a.key.base, c.key.base, a.key.len) == 0);
    char *body = merge(parts, 3);
    assert_string_equal(
        body, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[6,2],"
              "\"data\":[0.1,2,3,4,5,6,7,8,9,10,11,12],\"parameters\":{\"content_type\":\"np\"}},"
              "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[6],"
              "\"data\":[\"one\",\"two\",\"three\",\"4\",\"5\",\"\\\"6\\\"\"]}],"
              "\"parameters\":{\"p\":1},\"outputs\":[{\"name\":\"y\"}]}");
    free(body);
    for (int i = 0; i < 3; i++)
        ig_batch_part_dispose(parts[i]);
}

/* Collects the scalars of (possibly nested) data, row-major. */
static void flatten(const cJSON *arr, cJSON *into)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (cJSON_IsArray(v))
            flatten(v, into);
        else
            cJSON_AddItemToArray(into, cJSON_Duplicate(v, true));
    }
}

static cJSON *tensor(const char *name, const char *dt, double d0, double d1)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", dt);
    cJSON *shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(d0));
    if (d1 >= 0)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(d1));
    return t;
}

/* The fake model. Input "x" is FP32 [N, 2]; "flag" BOOL [N]; "tag" BYTES [N].
 * Outputs: "sum" FP32 [N] (x0 + x1), "pair" FP32 [N, 2] (x reversed),
 * "echo" BYTES [N] (tag, or "!" when flag is false), and "version" INT64 [4]
 * which is not batch-sized. The answer carries model_name, model_version,
 * the request's id and fixed parameters. */
static char *fake_model(const char *body)
{
    cJSON *req = cJSON_Parse(body);
    assert_non_null(req);
    cJSON *x = cJSON_CreateArray(), *flag = cJSON_CreateArray(), *tag = cJSON_CreateArray();
    double rows = 0;
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItem(req, "inputs"))
    {
        const char *name = cJSON_GetObjectItem(in, "name")->valuestring;
        cJSON *into = strcmp(name, "x") == 0 ? x : strcmp(name, "flag") == 0 ? flag : tag;
        flatten(cJSON_GetObjectItem(in, "data"), into);
        rows = cJSON_GetObjectItem(in, "shape")->child->valuedouble;
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddStringToObject(ans, "model_name", "fake");
    cJSON_AddStringToObject(ans, "model_version", "3");
    const cJSON *id = cJSON_GetObjectItem(req, "id");
    if (id)
        cJSON_AddStringToObject(ans, "id", id->valuestring);
    cJSON *params = cJSON_AddObjectToObject(ans, "parameters");
    cJSON_AddStringToObject(params, "device", "cpu");
    cJSON *outs = cJSON_AddArrayToObject(ans, "outputs");
    cJSON *sum = tensor("sum", "FP32", rows, -1), *pair = tensor("pair", "FP32", rows, 2);
    cJSON *echo = tensor("echo", "BYTES", rows, -1), *ver = tensor("version", "INT64", 4, -1);
    cJSON *sd = cJSON_AddArrayToObject(sum, "data"), *pd = cJSON_AddArrayToObject(pair, "data");
    cJSON *ed = cJSON_AddArrayToObject(echo, "data"), *vd = cJSON_AddArrayToObject(ver, "data");
    for (int i = 0; i < (int)rows; i++) {
        double x0 = cJSON_GetArrayItem(x, 2 * i)->valuedouble;
        double x1 = cJSON_GetArrayItem(x, 2 * i + 1)->valuedouble;
        cJSON_AddItemToArray(sd, cJSON_CreateNumber(x0 + x1));
        cJSON_AddItemToArray(pd, cJSON_CreateNumber(x1));
        cJSON_AddItemToArray(pd, cJSON_CreateNumber(x0));
        bool f = cJSON_IsTrue(cJSON_GetArrayItem(flag, i));
        cJSON_AddItemToArray(ed,
                             cJSON_CreateString(f ? cJSON_GetArrayItem(tag, i)->valuestring : "!"));
    }
    for (int v = 1; v <= 4; v++)
        cJSON_AddItemToArray(vd, cJSON_CreateNumber(v * 10));
    cJSON_AddItemToArray(outs, sum);
    cJSON_AddItemToArray(outs, pair);
    cJSON_AddItemToArray(outs, echo);
    cJSON_AddItemToArray(outs, ver);
    char *s = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    cJSON_Delete(req);
    cJSON_Delete(x);
    cJSON_Delete(flag);
    cJSON_Delete(tag);
    return s;
}

static void assert_json_equal(const char *got, const char *want)
{
    cJSON *g = cJSON_Parse(got), *w = cJSON_Parse(want);
    assert_non_null(g);
    assert_non_null(w);
    if (!cJSON_Compare(g, w, true))
        fail_msg("JSON differs:\n got  %s\n want %s", got, want);
    cJSON_Delete(g);
    cJSON_Delete(w);
}

#define INPUTS3(xs, xd, n, fd, td)                                                                 \
    "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":" xs ",\"data\":" xd "},"         \
    "{\"name\":\"flag\",\"datatype\":\"BOOL\",\"shape\":[" n "],\"data\":" fd "},"                 \
    "{\"name\":\"tag\",\"datatype\":\"BYTES\",\"shape\":[" n ",1],\"data\":" td "}]"

static void test_split_round_trip(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"id\":\"first\"," INPUTS3("[1,2]", "[[0.5,0.25]]", "1", "[true]", "[[\"a\"]]") "}",
        "{" INPUTS3("[2,2]", "[1,2,3,4]", "2", "[false,true]", "[\"b\",\"c\"]") "}",
        "{\"id\":\"third\"," INPUTS3("[3,2]", "[[5,6],[7,8],[0.1,0.2]]", "3", "[true,true,false]",
                                     "[[\"d\"],[\"\\u00e9\"],[\"f\"]]") "}",
    };
    ig_batch_part_t a, b, c;
    ig_batch_part_t *parts[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        parse_ok(parts[i], bodies[i]);
    assert_int_equal(a.rows + b.rows + c.rows, 6);

    char *merged = merge(parts, 3);
    /* The merged call carries no id of its own. */
    cJSON *m = cJSON_Parse(merged);
    assert_non_null(m);
    assert_null(cJSON_GetObjectItem(m, "id"));
    cJSON_Delete(m);

    char *answer = fake_model(merged);
    assert_int_equal(ig_codec_v2.split(ig_slice_cstr(answer), -1, parts, 3, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) {
        char *alone = fake_model(bodies[i]);
        assert_non_null(parts[i]->reply.base);
        assert_json_equal(parts[i]->reply.base, alone);
        cJSON_free(alone);
    }
    /* Exact text: fixed member order, each part's own id (none for b), the
     * batch-sized outputs sliced, "version" copied whole. */
    assert_string_equal(
        b.reply.base,
        "{\"model_name\":\"fake\",\"model_version\":\"3\",\"parameters\":{\"device\":\"cpu\"},"
        "\"outputs\":[{\"name\":\"sum\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[3,7]},"
        "{\"name\":\"pair\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[2,1,4,3]},"
        "{\"name\":\"echo\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"!\",\"c\"]},"
        "{\"name\":\"version\",\"datatype\":\"INT64\",\"shape\":[4],\"data\":[10,20,30,40]}]}");
    assert_non_null(strstr(a.reply.base, "\"id\":\"first\""));
    assert_non_null(strstr(c.reply.base, "\"id\":\"third\""));
    cJSON_free(answer);
    free(merged);
    for (int i = 0; i < 3; i++)
        ig_batch_part_dispose(parts[i]);
}

static void expect_split_error(ig_batch_part_t *const *parts, size_t n, const char *answer,
                               const char *needle)
{
    assert_int_equal(ig_codec_v2.split(ig_slice_cstr(answer), -1, parts, n, err, sizeof(err)),
                     IG_EUPSTREAM);
    if (!strstr(err, needle))
        fail_msg("answer %s:\n message \"%s\"\n does not contain \"%s\"", answer, err, needle);
    for (size_t i = 0; i < n; i++)
        assert_null(parts[i]->reply.base);
}

static void test_malformed_answers(void **state)
{
    (void)state;
    ig_batch_part_t a, b;
    ig_batch_part_t *parts[] = {&a, &b};
    parse_ok(&a, "{\"inputs\":[" T("x", "FP32", "[1]", "[1]") "]}");
    parse_ok(&b, "{\"inputs\":[" T("x", "FP32", "[2]", "[2, 3]") "]}");

    expect_split_error(parts, 2, "", "model answer: empty");
    expect_split_error(parts, 2, "{\"outputs\": [", "model answer: invalid JSON");
    expect_split_error(parts, 2, "{\"model_name\": \"m\"}", "expected an \"outputs\" array");
    expect_split_error(parts, 2, "{\"outputs\": [7]}", "outputs[0]: expected an object");
    expect_split_error(parts, 2, "{\"outputs\": [{\"name\":\"y\",\"shape\":[3],\"data\":[1,2]}]}",
                       "outputs[0] (\"y\").data: holds 2 values but shape [3] needs 3");
    expect_split_error(parts, 2, "{\"outputs\": [{\"name\":\"y\",\"shape\":\"3\",\"data\":[1]}]}",
                       "outputs[0] (\"y\").shape: expected a non-empty array");
    expect_split_error(parts, 2,
                       "{\"outputs\": [{\"name\":\"y\",\"shape\":[3],\"parameters\":"
                       "{\"binary_data_size\":12}}]}",
                       "outputs[0] (\"y\").data: missing (binary outputs cannot be split)");

    /* Shape [3, 2] with nested rows is sliced; [2] is copied whole. */
    assert_int_equal(
        ig_codec_v2.split(
            IG_SLICE_LIT("{\"outputs\": ["
                         "{\"name\":\"y\",\"shape\":[3,2],\"data\":[[1,2],[3,4],[5,6]]},"
                         "{\"name\":\"z\",\"shape\":[2],\"data\":[true,false]}]}"),
            -1, parts, 2, err, sizeof(err)),
        0);
    assert_string_equal(a.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[1,2],\"data\":[1,2]},"
                        "{\"name\":\"z\",\"shape\":[2],\"data\":[true,false]}]}");
    assert_string_equal(b.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[2,2],\"data\":[3,4,5,6]},"
                        "{\"name\":\"z\",\"shape\":[2],\"data\":[true,false]}]}");
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);
}

static void test_numbers_survive(void **state)
{
    (void)state;
    ig_batch_part_t a;
    ig_batch_part_t *parts[] = {&a};
    parse_ok(
        &a,
        "{\"inputs\":[" T("f", "FP32", "[3]", "[0.1, 3.4028234663852886e38, 1.17549435e-38]") "," T(
            "i", "INT64", "[3]", "[9007199254740993, -9223372036854775808, 1e17]") "]}");
    char *body = merge(parts, 1);
    assert_string_equal(body,
                        "{\"inputs\":[{\"name\":\"f\",\"datatype\":\"FP32\",\"shape\":[3],"
                        "\"data\":[0.1,3.4028234663852886e+38,1.17549435e-38]},"
                        "{\"name\":\"i\",\"datatype\":\"INT64\",\"shape\":[3],"
                        "\"data\":[9007199254740992,-9223372036854775808,100000000000000000]}]}");
    free(body);
    ig_batch_part_dispose(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_valid_tensors),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_binary_goes_alone),
        cmocka_unit_test(test_merge_three_parts),
        cmocka_unit_test(test_split_round_trip),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_numbers_survive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
