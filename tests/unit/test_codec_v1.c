/*
 * test_codec_v1.c: the KServe V1 batching codec through codec.h: parse
 * errors and their messages, batch keys, the exact merged body, split round
 * trips against a fake model, prediction count mismatches, and numbers that
 * must survive a merge unchanged.
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

static int parse(ig_batch_part_t *p, const char *model, const char *body)
{
    memset(p, 0, sizeof(*p));
    err[0] = '\0';
    return ig_codec_v1.parse(p, ig_slice_cstr(model), ig_slice_cstr(body), -1, err, sizeof(err));
}

static void parse_ok(ig_batch_part_t *p, const char *model, const char *body)
{
    int rc = parse(p, model, body);
    if (rc)
        fail_msg("parse of %s failed: %s", body, err);
}

static void expect_error(const char *body, const char *needle)
{
    ig_batch_part_t p;
    assert_int_equal(parse(&p, "m", body), IG_EINVAL);
    if (!strstr(err, needle))
        fail_msg("body %s: message \"%s\" does not contain \"%s\"", body, err, needle);
    /* A failed parse leaves nothing behind. */
    assert_null(p.doc);
    assert_null(p.key.base);
    ig_batch_part_dispose(&p);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("", "body: empty");
    expect_error("{\"instances\": [1,", "body: invalid JSON at byte");
    /* JSON between systems is UTF-8 (RFC 8259 8.1): a Latin-1 name is refused. */
    expect_error("{\"instances\": [1], \"sig\xe9\": 1}", "body: not UTF-8 at byte 23");
    expect_error("[[1,2]]", "body: expected a JSON object");
    expect_error("{\"instances\": [1]} x", "unexpected bytes after the JSON value at byte 19");
    expect_error("{\"signature_name\": \"s\"}", "instances: missing");
    expect_error("{\"instances\": {\"a\": 1}}", "instances: expected an array");
    expect_error("{\"instances\": []}", "instances: empty");
    expect_error("{\"instances\": [1], \"inputs\": [2]}", "both \"instances\" and \"inputs\"");
    expect_error("{\"instances\": [1], \"instances\": [2]}", "\"instances\" appears twice");
}

static void test_rows_and_columnar_form(void **state)
{
    (void)state;
    ig_batch_part_t p;
    parse_ok(&p, "iris", "{\"instances\": [[1,2,3,4], [5,6,7,8]]}");
    assert_int_equal(p.rows, 2);
    assert_false(p.alone);
    assert_non_null(p.key.base);
    ig_batch_part_dispose(&p);
    assert_null(p.doc);

    /* The columnar form is valid but not batched. */
    parse_ok(&p, "iris", "{\"inputs\": [[1,2,3,4], [5,6,7,8], [9,9,9,9]]}");
    assert_true(p.alone);
    assert_int_equal(p.rows, 3);
    assert_int_equal(p.key.len, 0);
    ig_batch_part_dispose(&p);
    parse_ok(&p, "iris", "{\"inputs\": {\"a\": [1, 2]}}");
    assert_true(p.alone);
    assert_int_equal(p.rows, 1);
    ig_batch_part_dispose(&p);

    /* Disposing a zeroed part is harmless. */
    memset(&p, 0, sizeof(p));
    ig_batch_part_dispose(&p);
}

static bool same_key(const char *model_a, const char *a, const char *model_b, const char *b)
{
    ig_batch_part_t pa, pb;
    parse_ok(&pa, model_a, a);
    parse_ok(&pb, model_b, b);
    bool eq = pa.key.len == pb.key.len && memcmp(pa.key.base, pb.key.base, pa.key.len) == 0;
    /* The hash is a function of the key. */
    if (eq)
        assert_true(pa.key_hash == pb.key_hash);
    else
        assert_true(pa.key_hash != pb.key_hash);
    ig_batch_part_dispose(&pa);
    ig_batch_part_dispose(&pb);
    return eq;
}

static void test_keys(void **state)
{
    (void)state;
    /* Rows never matter. */
    assert_true(same_key("m", "{\"instances\": [1]}", "m", "{\"instances\": [[2, 3], 4, 5]}"));
    /* Other members do, whatever their order and spacing. */
    assert_true(same_key("m", "{\"instances\": [1], \"a\": 1, \"b\": {\"x\": 1, \"y\": [2, 3]}}",
                         "m", "{ \"b\": {\"y\": [2,3], \"x\": 1}, \"instances\": [9], \"a\": 1 }"));
    /* As they are written: 1 and 1.0 are different text, so the merged call
     * (which carries the first member's) would not be what the other sent. */
    assert_false(
        same_key("m", "{\"instances\": [1], \"a\": 1}", "m", "{\"instances\": [1], \"a\": 1.0}"));
    assert_false(same_key("m", "{\"instances\": [1], \"signature_name\": \"a\"}", "m",
                          "{\"instances\": [1], \"signature_name\": \"b\"}"));
    assert_false(same_key("m", "{\"instances\": [1], \"signature_name\": \"a\"}", "m",
                          "{\"instances\": [1]}"));
    /* Array order inside parameters is significant. */
    assert_false(same_key("m", "{\"instances\": [1], \"p\": [1, 2]}", "m",
                          "{\"instances\": [1], \"p\": [2, 1]}"));
    /* The model name is part of the key, and cannot be confused with the body. */
    assert_false(same_key("m1", "{\"instances\": [1]}", "m2", "{\"instances\": [1]}"));
    assert_false(same_key("a\" {}", "{\"instances\": [1]}", "a", "{\"instances\": [1]}"));
}

static char *merge(ig_batch_part_t *const *parts, size_t n)
{
    ig_buf_t out;
    ig_buf_init(&out, 0);
    assert_int_equal(ig_codec_v1.merge(parts, n, &out, &(int64_t){0}), 0);
    return ig_buf_take(&out, NULL);
}

static void test_merge_three_parts(void **state)
{
    (void)state;
    ig_batch_part_t a, b, c;
    ig_batch_part_t *parts[] = {&a, &b, &c};
    parse_ok(&a, "m", "{\"signature_name\": \"serve\", \"instances\": [[1, 2]]}");
    parse_ok(
        &b, "m",
        "{\"instances\": [[3, 4], {\"k\": \"v\", \"a\": null}], \"signature_name\": \"serve\"}");
    parse_ok(&c, "m",
             "{\"instances\": [\"x\", true, [0.5, -0.25]], \"signature_name\": \"serve\"}");
    assert_int_equal(a.rows + b.rows + c.rows, 6);
    char *body = merge(parts, 3);
    /* Rows go as they were written, spacing included. */
    assert_string_equal(body, "{\"instances\":[[1, 2],[3, 4], {\"k\": \"v\", \"a\": null},\"x\", "
                              "true, [0.5, -0.25]],\"signature_name\":\"serve\"}");
    free(body);

    /* A cap on the output is honoured. */
    ig_buf_t small;
    ig_buf_init(&small, 16);
    assert_int_equal(ig_codec_v1.merge(parts, 3, &small, &(int64_t){0}), IG_ETOOLARGE);
    ig_buf_dispose(&small);
    for (int i = 0; i < 3; i++)
        ig_batch_part_dispose(parts[i]);
}

/* The fake model: each instance is an array of numbers; its prediction is
 * {"sum": sum, "first": first element}. Adds a top-level "model_version". */
static char *fake_model(const char *body)
{
    cJSON *req = cJSON_Parse(body);
    assert_non_null(req);
    cJSON *ans = cJSON_CreateObject();
    cJSON *preds = cJSON_AddArrayToObject(ans, "predictions");
    const cJSON *row, *v;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(req, "instances"))
    {
        double sum = 0;
        cJSON_ArrayForEach(v, row) sum += v->valuedouble;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "sum", sum);
        cJSON_AddNumberToObject(p, "first", row->child ? row->child->valuedouble : 0);
        cJSON_AddItemToArray(preds, p);
    }
    cJSON_AddStringToObject(ans, "model_version", "7");
    char *s = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    cJSON_Delete(req);
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

static void test_split_round_trip(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"instances\": [[1, 2]]}",
        "{\"instances\": [[3, 4.5], [0.1, 0.2]]}",
        "{\"instances\": [[-1], [10, 20, 30], [7, 7]]}",
    };
    ig_batch_part_t a, b, c;
    ig_batch_part_t *parts[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        parse_ok(parts[i], "m", bodies[i]);

    char *merged = merge(parts, 3);
    char *answer = fake_model(merged);
    assert_int_equal(ig_codec_v1.split(ig_slice_cstr(answer), -1, parts, 3, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) {
        char *alone = fake_model(bodies[i]);
        assert_non_null(parts[i]->reply.base);
        assert_json_equal(parts[i]->reply.base, alone);
        cJSON_free(alone);
    }
    /* Exact text of one reply: slice first, the answer's other members after. */
    assert_string_equal(a.reply.base,
                        "{\"predictions\":[{\"sum\":3,\"first\":1}],\"model_version\":\"7\"}");
    cJSON_free(answer);
    free(merged);
    for (int i = 0; i < 3; i++)
        ig_batch_part_dispose(parts[i]);
}

static void test_split_count_mismatch(void **state)
{
    (void)state;
    ig_batch_part_t a, b;
    ig_batch_part_t *parts[] = {&a, &b};
    parse_ok(&a, "m", "{\"instances\": [1, 2]}");
    parse_ok(&b, "m", "{\"instances\": [3]}");

    assert_int_equal(ig_codec_v1.split(IG_SLICE_LIT("{\"predictions\": [1, 2]}"), -1, parts, 2, err,
                                       sizeof(err)),
                     IG_EUPSTREAM);
    assert_string_equal(err, "the model returned 2 predictions for a batch of 3 rows");
    assert_null(a.reply.base);
    assert_null(b.reply.base);

    assert_int_equal(ig_codec_v1.split(IG_SLICE_LIT("{\"predictions\": [1, 2, 3, 4]}"), -1, parts,
                                       2, err, sizeof(err)),
                     IG_EUPSTREAM);
    assert_string_equal(err, "the model returned 4 predictions for a batch of 3 rows");

    assert_int_equal(
        ig_codec_v1.split(IG_SLICE_LIT("{\"outputs\": [1, 2, 3]}"), -1, parts, 2, err, sizeof(err)),
        IG_EUPSTREAM);
    assert_non_null(strstr(err, "expected a \"predictions\" array"));

    assert_int_equal(
        ig_codec_v1.split(IG_SLICE_LIT("<html>502</html>"), -1, parts, 2, err, sizeof(err)),
        IG_EUPSTREAM);
    assert_non_null(strstr(err, "model answer: invalid JSON"));

    assert_int_equal(ig_codec_v1.split(IG_SLICE_LIT("{\"predictions\": [[1], 2, \"x\"]}"), -1,
                                       parts, 2, err, sizeof(err)),
                     0);
    assert_string_equal(a.reply.base, "{\"predictions\":[[1], 2]}");
    assert_string_equal(b.reply.base, "{\"predictions\":[\"x\"]}");
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);
}

static void test_numbers_survive(void **state)
{
    (void)state;
    ig_batch_part_t a, b;
    ig_batch_part_t *parts[] = {&a, &b};
    /* Every number reaches the model as the client wrote it: more digits
     * than a double holds, integers past 2^53 and past 2^64, -0.0, and
     * exponents in either case. */
    parse_ok(&a, "m",
             "{\"instances\": [[0.1, 1.10000000000000000001, 1.7976931348623157e308, "
             "12345678901234567890123, -0.0, 1.5E-300, 9007199254740993, -9223372036854775809]]}");
    parse_ok(&b, "m", "{\"instances\": [\"\\u00e9\\ud83d\\ude00\", 1e400]}");
    char *body = merge(parts, 2);
    assert_string_equal(body,
                        "{\"instances\":[[0.1, 1.10000000000000000001, 1.7976931348623157e308, "
                        "12345678901234567890123, -0.0, 1.5E-300, 9007199254740993, "
                        "-9223372036854775809],\"\\u00e9\\ud83d\\ude00\", 1e400]}");
    /* ... and every client gets its rows as the model wrote them. */
    const char answer[] = "{\"predictions\": [[1.10000000000000000001,-0.0], 18446744073709551617 ,"
                          "\"\\ud83d\\ude00\"], \"model_version\": \"1\"}";
    assert_int_equal(ig_codec_v1.split(IG_SLICE_LIT(answer), -1, parts, 2, err, sizeof(err)), 0);
    assert_string_equal(
        a.reply.base, "{\"predictions\":[[1.10000000000000000001,-0.0]],\"model_version\":\"1\"}");
    assert_string_equal(b.reply.base, "{\"predictions\":[18446744073709551617 ,"
                                      "\"\\ud83d\\ude00\"],\"model_version\":\"1\"}");
    free(body);
    ig_batch_part_dispose(&a);
    ig_batch_part_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_rows_and_columnar_form),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_merge_three_parts),
        cmocka_unit_test(test_split_round_trip),
        cmocka_unit_test(test_split_count_mismatch),
        cmocka_unit_test(test_numbers_survive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
