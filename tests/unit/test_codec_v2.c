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

#include "infergate/core/codec.h"
#include "infergate/base/error.h"

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
    int rc = parse_hint(&p, "m", body, false);
    if (rc != IG_EINVAL)
        fail_msg("body %s: parse returned %d, not IG_EINVAL", body, rc);
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
    expect_error("{\"inputs\": [{\"name\": \"x\",", "body: invalid JSON at byte 25");
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
    expect_error(REQ1(T("x", "FP32", "[1]", "[1e999]")),
                 "value 0 (1e999) is out of range for FP32");
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
                 "inputs[0] (\"x\"): member \"shape\" appears twice");
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

/* A binary-extension body: the JSON header, then `bin` (len bytes). */
static size_t bin_body(char *out, const char *json, const void *bin, size_t len)
{
    size_t h = strlen(json);
    memcpy(out, json, h);
    memcpy(out + h, bin, len);
    return h + len;
}

static int parse_bin(ig_batch_part_t *p, const char *body, size_t len, int64_t hlen)
{
    memset(p, 0, sizeof(*p));
    err[0] = '\0';
    return ig_codec_v2.parse(p, IG_SLICE_LIT("m"), ig_slice(body, len), hlen, err, sizeof(err));
}

static void test_binary_batched(void **state)
{
    (void)state;
    ig_batch_part_t a, b, c;
    ig_batch_part_t *parts[] = {&a, &b, &c};
    char ab[512], cb[512];
    const float xa[] = {1, 2, 3, 4};
    const char *ha = "{\"id\":\"A\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
                     "\"shape\":[2,2],\"parameters\":{\"binary_data_size\":16}}],"
                     "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}";
    size_t la = bin_body(ab, ha, xa, sizeof(xa));
    assert_int_equal(parse_bin(&a, ab, la, (int64_t)strlen(ha)), 0);
    assert_false(a.alone);
    assert_int_equal(a.rows, 2);
    /* A JSON member of the same key, asking JSON back. */
    parse_ok(&b, "{\"id\":\"B\",\"inputs\":[" T("x", "FP32", "[1,2]",
                                                "[5.5, 6]") "],"
                                                            "\"outputs\":[{\"name\":\"y\"}]}");
    /* Another binary one, asking binary for everything. */
    const float xc[] = {7, 8};
    const char *hc = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,2],"
                     "\"parameters\":{\"binary_data_size\":8}}],\"outputs\":[{\"name\":\"y\"}],"
                     "\"parameters\":{\"binary_data_output\":true}}";
    size_t lc = bin_body(cb, hc, xc, sizeof(xc));
    assert_int_equal(parse_bin(&c, cb, lc, (int64_t)strlen(hc)), 0);
    assert_true(a.key.len == b.key.len && memcmp(a.key.base, b.key.base, a.key.len) == 0);
    assert_true(a.key.len == c.key.len && memcmp(a.key.base, c.key.base, a.key.len) == 0);

    ig_buf_t out;
    int64_t hlen = -1;
    ig_buf_init(&out, 0);
    assert_int_equal(ig_codec_v2.merge(parts, 3, &out, &hlen), 0);
    const char *want = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[4,2],"
                       "\"parameters\":{\"binary_data_size\":32}}],"
                       "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}";
    assert_int_equal(hlen, (int64_t)strlen(want));
    assert_memory_equal(out.base, want, strlen(want));
    assert_int_equal(out.len, strlen(want) + 32);
    const float merged[] = {1, 2, 3, 4, 5.5f, 6, 7, 8};
    assert_memory_equal(out.base + hlen, merged, sizeof(merged));
    ig_buf_dispose(&out);

    /* The model answers y in binary: a and c get bytes, b gets JSON. */
    char ans[512];
    const float y[] = {0.25f, -1, 3e38f, 0.1f, 10.5f, 1e-7f, 42, 43};
    const char *hy = "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"y\",\"datatype\":\"FP32\","
                     "\"shape\":[4,2],\"parameters\":{\"binary_data_size\":32}}]}";
    size_t ly = bin_body(ans, hy, y, sizeof(y));
    assert_int_equal(
        ig_codec_v2.split(ig_slice(ans, ly), (int64_t)strlen(hy), parts, 3, err, sizeof(err)), 0);
    const char *ra = "{\"id\":\"A\",\"model_name\":\"m\",\"outputs\":[{\"name\":\"y\",\"datatype\":"
                     "\"FP32\",\"shape\":[2,2],\"parameters\":{\"binary_data_size\":16}}]}";
    assert_int_equal(a.reply_header_len, (int64_t)strlen(ra));
    assert_int_equal(a.reply.len, strlen(ra) + 16);
    assert_memory_equal(a.reply.base, ra, strlen(ra));
    assert_memory_equal(a.reply.base + strlen(ra), y, 16);
    assert_int_equal(b.reply_header_len, -1);
    assert_string_equal(
        b.reply.base,
        "{\"id\":\"B\",\"model_name\":\"m\",\"outputs\":[{\"name\":\"y\",\"datatype\":"
        "\"FP32\",\"shape\":[1,2],\"parameters\":{},\"data\":[10.5,1e-07]}]}");
    assert_int_equal(c.reply.len - (size_t)c.reply_header_len, 8);
    assert_memory_equal(c.reply.base + c.reply_header_len, y + 6, 8);

    /* A binary answer one byte short fails the batch, saying why. */
    assert_int_equal(
        ig_codec_v2.split(ig_slice(ans, ly - 1), (int64_t)strlen(hy), parts, 3, err, sizeof(err)),
        IG_EUPSTREAM);
    assert_non_null(strstr(err, "binary_data_size 32"));
    assert_null(a.reply.base);
    assert_null(b.reply.base);

    /* The model answers JSON to the binary batch: a and c get bytes. */
    const char *jy = "{\"outputs\":[{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[4,2],"
                     "\"data\":[0.25,-1,3e38,0.1,10.5,1e-7,42,43]}]}";
    assert_int_equal(ig_codec_v2.split(ig_slice_cstr(jy), -1, parts, 3, err, sizeof(err)), 0);
    assert_memory_equal(a.reply.base + a.reply_header_len, y, 16);
    assert_string_equal(b.reply.base, "{\"id\":\"B\",\"outputs\":[{\"name\":\"y\",\"datatype\":"
                                      "\"FP32\",\"shape\":[1,2],\"data\":[10.5,1e-7]}]}");
    for (int i = 0; i < 3; i++)
        ig_batch_part_dispose(parts[i]);

    /* BYTES: length-prefixed elements, stacked with a JSON member. */
    const char sb[] = "\x02\0\0\0ab\x01\0\0\0c";
    const char *hs = "{\"inputs\":[{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],"
                     "\"parameters\":{\"binary_data_size\":11}}]}";
    size_t ls = bin_body(ab, hs, sb, 11);
    assert_int_equal(parse_bin(&a, ab, ls, (int64_t)strlen(hs)), 0);
    parse_ok(&b, "{\"inputs\":[" T("s", "BYTES", "[1]", "[\"\\u00e9\"]") "]}");
    ig_buf_init(&out, 0);
    assert_int_equal(ig_codec_v2.merge(parts, 2, &out, &hlen), 0);
    assert_int_equal(out.len - (size_t)hlen, 11 + 6);
    assert_memory_equal(out.base + hlen, "\x02\0\0\0ab\x01\0\0\0c\x02\0\0\0\xc3\xa9", 17);
    ig_buf_dispose(&out);
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);

    /* What a binary request must get right. */
    assert_int_equal(parse_bin(&a, ab, ls, (int64_t)ls + 1), IG_EINVAL);
    assert_non_null(strstr(err, "larger than the body"));
    assert_int_equal(parse_bin(&a, ab, ls - 1, (int64_t)strlen(hs)), IG_EINVAL);
    assert_non_null(strstr(err, "binary_data_size: 11 bytes, but only 10"));
    assert_int_equal(parse_bin(&a, ab, ls, (int64_t)strlen(hs) - 1), IG_EINVAL);
    la = bin_body(ab, ha, xa, 12);
    assert_int_equal(parse_bin(&a, ab, la, (int64_t)strlen(ha)), IG_EINVAL);
    assert_non_null(strstr(err, "only 12 bytes"));
    la = bin_body(ab, ha, xa, sizeof(xa));
    memcpy(ab + la, "xx", 2);
    assert_int_equal(parse_bin(&a, ab, la + 2, (int64_t)strlen(ha)), IG_EINVAL);
    assert_non_null(strstr(err, "add up to 16 bytes, but 18 bytes follow"));
    assert_int_equal(parse_hint(&a, "m", ha, false), IG_EINVAL);
    assert_non_null(strstr(err, "needs the Inference-Header-Content-Length header"));
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
 * Outputs: "sum" FP32 [N] (x0 + x1), "pair" FP32 [N, 2] (x reversed), and
 * "echo" BYTES [N] (tag, or "!" when flag is false). The answer carries
 * model_name, model_version, the request's id and fixed parameters. */
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
    cJSON *echo = tensor("echo", "BYTES", rows, -1);
    cJSON *sd = cJSON_AddArrayToObject(sum, "data"), *pd = cJSON_AddArrayToObject(pair, "data");
    cJSON *ed = cJSON_AddArrayToObject(echo, "data");
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
    cJSON_AddItemToArray(outs, sum);
    cJSON_AddItemToArray(outs, pair);
    cJSON_AddItemToArray(outs, echo);
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
    /* Exact text: the model's member order, each part's own id (none for b:
     * the model's id of the merged call is dropped), the outputs sliced. */
    assert_string_equal(
        b.reply.base,
        "{\"model_name\":\"fake\",\"model_version\":\"3\",\"parameters\":{\"device\":\"cpu\"},"
        "\"outputs\":[{\"name\":\"sum\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[3,7]},"
        "{\"name\":\"pair\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[2,1,4,3]},"
        "{\"name\":\"echo\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"!\",\"c\"]}]}");
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
                       "outputs[0] (\"y\").datatype: missing or unknown");
    /* Regression (hostile review): an output that is not batch-sized used to
     * be copied whole to every member, so each client saw the others' rows. */
    expect_split_error(parts, 2,
                       "{\"outputs\": [{\"name\":\"y\",\"shape\":[3],\"data\":[1,2,3]},"
                       "{\"name\":\"z\",\"shape\":[2],\"data\":[true,false]}]}",
                       "outputs[1] (\"z\").shape[0] is 2, not the batch's 3 rows");

    /* Shape [3, 2] with nested rows is sliced row by row, nesting kept. */
    assert_int_equal(
        ig_codec_v2.split(
            IG_SLICE_LIT("{\"outputs\": ["
                         "{\"name\":\"y\",\"shape\":[3,2],\"data\":[[1,2], [3,4],[5, 6]]},"
                         "{\"name\":\"z\",\"shape\":[3],\"data\":[true, false,true]}]}"),
            -1, parts, 2, err, sizeof(err)),
        0);
    assert_string_equal(a.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[1,2],\"data\":[[1,2]]},"
                        "{\"name\":\"z\",\"shape\":[1],\"data\":[true]}]}");
    assert_string_equal(b.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[2,2],\"data\":[[3,4],[5, 6]]},"
                        "{\"name\":\"z\",\"shape\":[2],\"data\":[false,true]}]}");
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);
    /* Mixed nesting is flattened, values as written. */
    parse_ok(&a, "{\"inputs\":[" T("x", "FP32", "[1]", "[1]") "]}");
    parse_ok(&b, "{\"inputs\":[" T("x", "FP32", "[2]", "[2, 3]") "]}");
    assert_int_equal(ig_codec_v2.split(IG_SLICE_LIT("{\"outputs\": [{\"name\":\"y\",\"shape\":"
                                                    "[3,2],\"data\":[[1.50,2],3,[4,[5e0]],6]}]}"),
                                       -1, parts, 2, err, sizeof(err)),
                     0);
    assert_string_equal(a.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[1,2],\"data\":[1.50,2]}]}");
    assert_string_equal(b.reply.base,
                        "{\"outputs\":[{\"name\":\"y\",\"shape\":[2,2],\"data\":[3,4,5e0,6]}]}");
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);
}

static void test_numbers_survive(void **state)
{
    (void)state;
    ig_batch_part_t a, b;
    ig_batch_part_t *parts[] = {&a, &b};
    /* The whole 64-bit ranges, integers past 2^53, long decimals and -0.0
     * reach the model as written, and come back as the model wrote them. */
    parse_ok(&a, "{\"inputs\":[" T("f", "FP64", "[3]", "[0.1, 1.10000000000000000001, -0.0]") "," T(
                     "i", "INT64", "[3]",
                     "[9223372036854775807, -9223372036854775808, 9007199254740993]") "]}");
    parse_ok(&b, "{\"inputs\":[" T("f", "FP64", "[1]", "[2.5e-308]") "," T(
                     "i", "INT64", "[1]", "[-9223372036854775807]") "]}");
    char *body = merge(parts, 2);
    assert_string_equal(body,
                        "{\"inputs\":[{\"name\":\"f\",\"datatype\":\"FP64\",\"shape\":[4],"
                        "\"data\":[0.1, 1.10000000000000000001, -0.0,2.5e-308]},"
                        "{\"name\":\"i\",\"datatype\":\"INT64\",\"shape\":[4],"
                        "\"data\":[9223372036854775807, -9223372036854775808, 9007199254740993,"
                        "-9223372036854775807]}]}");
    const char answer[] = "{\"outputs\":[{\"name\":\"o\",\"datatype\":\"UINT64\",\"shape\":[4],"
                          "\"data\":[18446744073709551615,0, 9007199254740993 ,1]}]}";
    assert_int_equal(ig_codec_v2.split(IG_SLICE_LIT(answer), -1, parts, 2, err, sizeof(err)), 0);
    assert_string_equal(a.reply.base, "{\"outputs\":[{\"name\":\"o\",\"datatype\":\"UINT64\","
                                      "\"shape\":[3],\"data\":[18446744073709551615,0, "
                                      "9007199254740993]}]}");
    assert_string_equal(b.reply.base, "{\"outputs\":[{\"name\":\"o\",\"datatype\":\"UINT64\","
                                      "\"shape\":[1],\"data\":[1]}]}");
    free(body);
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);

    /* Range checks on the digits: the limits pass, one past them fails. */
    parse_ok(&a, "{\"inputs\":[" T("u", "UINT64", "[2]", "[18446744073709551615, -0]") "," T(
                     "h", "FP16", "[2]", "[65504, -6.5504e4]") "]}");
    ig_batch_part_dispose(&a);
    expect_error(REQ1(T("i", "INT64", "[1]", "[9223372036854775808]")),
                 "value 0 (9223372036854775808) is out of range for INT64");
    expect_error(REQ1(T("i", "INT64", "[1]", "[-9223372036854775809]")),
                 "value 0 (-9223372036854775809) is out of range for INT64");
    expect_error(REQ1(T("u", "UINT64", "[1]", "[18446744073709551616]")),
                 "out of range for UINT64");
    expect_error(REQ1(T("u", "UINT64", "[1]", "[-1]")), "out of range for UINT64");
    expect_error(REQ1(T("i", "INT64", "[1]", "[1e17]")), "value 0 (1e17) is not an integer");
    /* Floats fit when they round to a finite value: FLT_MAX as %.9g prints
     * it, 65519 for FP16 (rounds to 65504); 65520 rounds to infinity. */
    expect_error(REQ1(T("h", "FP16", "[1]", "[65520]")), "out of range for FP16");
    parse_ok(&a, REQ1(T("h", "FP16", "[2]", "[65519, -65519.99]")));
    ig_batch_part_dispose(&a);
    parse_ok(&a, REQ1(T("f", "FP32", "[3]", "[3.40282347e+38, 3.4028235e+38, -3.4028235e38]")));
    ig_batch_part_dispose(&a);
    expect_error(REQ1(T("f", "FP32", "[1]", "[3.4028236e38]")), "out of range for FP32");
    parse_ok(&a, REQ1(T("b", "BF16", "[1]", "[3.39e+38]")));
    ig_batch_part_dispose(&a);
    expect_error(REQ1(T("d", "FP64", "[1]", "[1.8e308]")), "out of range for FP64");
    expect_error(REQ1(T("f", "FP32", "[1]", "[3.5e38]")), "out of range for FP32");
    expect_error(REQ1(T("f", "FP32", "[1]", "[-0.00000000000000000000000000000000000000034e79]")),
                 "out of range for FP32");
    parse_ok(&a, REQ1(T("f", "FP32", "[2]", "[3.4028234663852886e38, 0.0000000034e-300]")));
    ig_batch_part_dispose(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_valid_tensors),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_binary_batched),
        cmocka_unit_test(test_merge_three_parts),
        cmocka_unit_test(test_split_round_trip),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_numbers_survive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
