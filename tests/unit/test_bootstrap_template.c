/*
 * test_bootstrap_template.c: ${VAR} substitution and YAML <-> JSON typing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "infergate/bootstrap/template.h"
#include "infergate/base/error.h"

static int subst(const char *text, const ig_tpl_vars_t *v, ig_buf_t *out, char *err)
{
    return ig_tpl_subst(text, strlen(text), v, "t.yaml", out, err, 256);
}

static void test_subst_replaces_and_escapes(void **state)
{
    (void)state;
    ig_tpl_vars_t v;
    ig_tpl_vars_init(&v);
    ig_tpl_vars_set(&v, "NAME", "ml");
    ig_tpl_vars_set(&v, "TRICKY", "a\"b: c\\d\ne");
    ig_buf_t out;
    ig_buf_init(&out, 0);
    char err[256];
    assert_int_equal(subst("n: \"${NAME}\" t: \"${TRICKY}\" $$ $x ${NAME}", &v, &out, err), 0);
    assert_string_equal(out.base, "n: \"ml\" t: \"a\\\"b: c\\\\d\\ne\" $ $x ml");
    /* The escaped value reads back as the original through YAML. */
    ig_buf_reset(&out);
    assert_int_equal(subst("k: \"${TRICKY}\"\n", &v, &out, err), 0);
    cJSON *j = NULL;
    assert_int_equal(ig_yaml_to_json(out.base, out.len, "t", &j, err, sizeof(err)), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "k")->valuestring, "a\"b: c\\d\ne");
    cJSON_Delete(j);
    ig_buf_dispose(&out);
    ig_tpl_vars_dispose(&v);
}

static void test_subst_unknown_and_unset_name_file_and_line(void **state)
{
    (void)state;
    ig_tpl_vars_t v;
    ig_tpl_vars_init(&v);
    ig_tpl_vars_set(&v, "SET", "x");
    ig_tpl_vars_set(&v, "UNSET", NULL);
    ig_buf_t out;
    ig_buf_init(&out, 0);
    char err[256];
    assert_int_equal(subst("a\nb\nc: ${NOPE}\n", &v, &out, err), IG_ENOTFOUND);
    assert_string_equal(err, "t.yaml:3: unknown variable ${NOPE}");
    assert_int_equal(subst("${SET}\n${UNSET}", &v, &out, err), IG_ENOTFOUND);
    assert_string_equal(err, "t.yaml:2: variable ${UNSET} is not set");
    assert_int_equal(subst("x ${SET", &v, &out, err), IG_EPARSE);
    assert_int_equal(subst("x ${}", &v, &out, err), IG_EPARSE);
    assert_int_equal(subst("x ${1A}", &v, &out, err), IG_EPARSE);
    ig_buf_dispose(&out);
    ig_tpl_vars_dispose(&v);
}

/* literal_bytes_past_cap_dropped: literal bytes and "$$" past a capped buffer's
 * limit were dropped and the call returned 0. */
static void test_subst_literal_bytes_past_cap_fail(void **state)
{
    (void)state;
    ig_tpl_vars_t v;
    ig_tpl_vars_init(&v);
    ig_tpl_vars_set(&v, "A", "ab");
    char err[256];
    const char *cases[] = {"replicas: 3\n", "a\n$$$$$$", "${A}\nxyz"};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ig_buf_t out;
        ig_buf_init(&out, 4);
        assert_int_equal(subst(cases[k], &v, &out, err), IG_ETOOLARGE);
        assert_non_null(strstr(err, "t.yaml:"));
        ig_buf_dispose(&out);
    }
    ig_buf_t out;
    ig_buf_init(&out, 4);
    assert_int_equal(subst("a$$b", &v, &out, err), 0); /* exactly the cap */
    assert_string_equal(out.base, "a$b");
    ig_buf_dispose(&out);
    ig_tpl_vars_dispose(&v);
}

static void test_yaml_typing(void **state)
{
    (void)state;
    const char *y = "i: 42\nneg: -7\nhex: 0x1f\nf: 0.7\ne: 1e3\nt: true\nF: False\nn: null\n"
                    "tilde: ~\nempty:\nqi: \"42\"\nqs: 'true'\nplain: hello world\n"
                    "ver: 1.2.3\nyes: yes\nblock: |\n  line1\n  line2\nlist:\n  - 1\n  - \"1\"\n"
                    "flow: {a: 1, b: [x, 2]}\n";
    cJSON *j = NULL;
    char err[256];
    assert_int_equal(ig_yaml_to_json(y, strlen(y), "t", &j, err, sizeof(err)), 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "i")));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "i")->valueint, 42);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "neg")->valueint, -7);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "hex")->valueint, 31);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "f")->valuedouble == 0.7);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "e")->valuedouble == 1000.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "t")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "F")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "n")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "tilde")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "empty")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "qi")->valuestring, "42");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "qs")->valuestring, "true");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "plain")->valuestring, "hello world");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "ver")->valuestring, "1.2.3");
    /* YAML 1.2 (as the Kubernetes API reads it): "yes" is a string. */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "yes")->valuestring, "yes");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "block")->valuestring,
                        "line1\nline2\n");
    cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "list");
    assert_true(cJSON_IsNumber(cJSON_GetArrayItem(list, 0)));
    assert_true(cJSON_IsString(cJSON_GetArrayItem(list, 1)));
    cJSON *flow = cJSON_GetObjectItemCaseSensitive(j, "flow");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(flow, "b")), 2);
    cJSON_Delete(j);
}

static void test_yaml_errors_and_streams(void **state)
{
    (void)state;
    cJSON *j = NULL;
    char err[256];
    const char *dup = "a: 1\nb: 2\na: 3\n";
    assert_int_equal(ig_yaml_to_json(dup, strlen(dup), "d.yaml", &j, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "d.yaml:3: duplicate key \"a\""));
    const char *bad = "a: [1, 2\n";
    assert_int_equal(ig_yaml_to_json(bad, strlen(bad), "b.yaml", &j, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "b.yaml:"));
    assert_int_equal(ig_yaml_to_json("", 0, "e.yaml", &j, err, sizeof(err)), IG_EPARSE);
    const char *two = "a: 1\n---\nb: 2\n";
    assert_int_equal(ig_yaml_to_json(two, strlen(two), "s", &j, err, sizeof(err)), 0);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    /* Alias bombs are bounded, not exponential. */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e]\n";
    assert_int_equal(ig_yaml_to_json(bomb, strlen(bomb), "bomb", &j, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "too large"));
}

/* float_overflow_reads_as_infinity: 1e999 read as infinity, printed as null. */
static void test_yaml_float_overflow_refused(void **state)
{
    (void)state;
    cJSON *j = (cJSON *)1;
    char err[256];
    const char *y = "a: 1\nx: -1e999\n";
    assert_int_equal(ig_yaml_to_json(y, strlen(y), "f.yaml", &j, err, sizeof(err)), IG_EPARSE);
    assert_null(j);
    assert_string_equal(err, "f.yaml:2: number -1e999 is out of range");
    /* Quoted, it is a string as before; a tiny float rounds as strtod does. */
    y = "x: \"1e999\"\ny: 1e-999\n";
    assert_int_equal(ig_yaml_to_json(y, strlen(y), "f.yaml", &j, err, sizeof(err)), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "x")->valuestring, "1e999");
    cJSON_Delete(j);
}

/* alias_expansion_unbounded_in_bytes: aliases were bounded by node count only, so a
 * 6 KB file expanded to a gigabyte. */
static void test_yaml_alias_expansion_bounded_in_bytes(void **state)
{
    (void)state;
    ig_buf_t y;
    ig_buf_init(&y, 0);
    ig_buf_append_str(&y, "a: &a \"");
    for (int i = 0; i < 6000; i++)
        ig_buf_append_str(&y, "x");
    ig_buf_append_str(&y, "\"\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                          "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                          "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n");
    cJSON *j = NULL;
    char err[256];
    assert_int_equal(ig_yaml_to_json(y.base, y.len, "bomb", &j, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "bomb:"));
    assert_non_null(strstr(err, "alias expansion too large"));
    /* Alias keys count too. */
    ig_buf_reset(&y);
    ig_buf_append_str(&y, "k: &k \"");
    for (int i = 0; i < 60000; i++)
        ig_buf_append_str(&y, "k");
    ig_buf_append_str(&y, "\"\nl: [");
    for (int i = 0; i < 100; i++)
        ig_buf_append_str(&y, "{*k : 1},");
    ig_buf_append_str(&y, "]\n");
    assert_int_equal(ig_yaml_to_json(y.base, y.len, "keys", &j, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "alias expansion too large"));
    /* A large document without aliases is not limited by it, nor are small aliases. */
    ig_buf_reset(&y);
    ig_buf_append_str(&y, "big: \"");
    for (int i = 0; i < (5 << 20); i++)
        ig_buf_append(&y, "y", 1);
    ig_buf_append_str(&y, "\"\nsmall: &s [1, 2]\nagain: *s\n");
    assert_int_equal(ig_yaml_to_json(y.base, y.len, "big", &j, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "again")), 2);
    cJSON_Delete(j);
    ig_buf_dispose(&y);
}

static void test_json_to_yaml_round_trips(void **state)
{
    (void)state;
    const char *src = "{\"s\":\"plain\",\"n\":\"8080\",\"b\":\"true\",\"colon\":\"a: b\","
                      "\"dash\":\"-c\",\"multi\":\"l1\\nl2\\n\",\"num\":3,\"f\":0.5,"
                      "\"t\":true,\"nil\":null,\"empty\":\"\",\"arr\":[{\"k\":1,\"l\":[]},\"x\"],"
                      "\"obj\":{},\"q\":\"say \\\"hi\\\"\",\"hash\":\"a #b\"}";
    cJSON *in = cJSON_Parse(src);
    assert_non_null(in);
    ig_buf_t y;
    ig_buf_init(&y, 0);
    assert_int_equal(ig_json_to_yaml(in, &y), 0);
    cJSON *back = NULL;
    char err[256];
    assert_int_equal(ig_yaml_to_json(y.base, y.len, "rt", &back, err, sizeof(err)), 0);
    assert_true(cJSON_Compare(in, back, true));
    assert_non_null(strstr(y.base, "multi: |\n  l1\n  l2\n"));
    cJSON_Delete(in);
    cJSON_Delete(back);
    ig_buf_dispose(&y);
}

/* Writes `j` as YAML into `y`, reads it back, and checks it is strictly equal. */
static void round_trip_strict(const cJSON *j, ig_buf_t *y)
{
    ig_buf_reset(y);
    assert_int_equal(ig_json_to_yaml(j, y), 0);
    cJSON *back = NULL;
    char err[256] = "";
    int rc = ig_yaml_to_json(y->base, y->len, "rt", &back, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s\n---\n%s", err, y->base);
    assert_true(cJSON_Compare(j, back, true));
    if (cJSON_IsNumber(j))
        assert_true(j->valuedouble == back->valuedouble);
    cJSON_Delete(back);
}

/* integer_above_2e53_printed_with_15_digits: numbers were printed with cJSON's
 * printer, which stops at 15 digits when they are close. */
static void test_json_to_yaml_numbers_exact(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {9007199254740992.0, "9007199254740992\n"},
        {1e17, "100000000000000000\n"},
        {-9223372036854774784.0, "-9223372036854774784\n"},
        {9223372036854775808.0, "9.223372036854776e+18\n"},
        {0.1, "0.1\n"},
        {1.0 / 3, "0.3333333333333333\n"},
        {3, "3\n"},
        {1e300, "1e+300\n"},
        {5e-324, "4.94065645841247e-324\n"},
    };
    ig_buf_t y;
    ig_buf_init(&y, 0);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cJSON *n = cJSON_CreateNumber(cases[k].d);
        round_trip_strict(n, &y);
        assert_string_equal(y.base, cases[k].want);
        cJSON_Delete(n);
    }
    const char *src = "replicas: 9007199254740993\n";
    cJSON *j = NULL;
    char err[256];
    assert_int_equal(ig_yaml_to_json(src, strlen(src), "n", &j, err, sizeof(err)), 0);
    ig_buf_reset(&y);
    assert_int_equal(ig_json_to_yaml(j, &y), 0);
    assert_string_equal(y.base, "replicas: 9007199254740992\n");
    cJSON_Delete(j);
    ig_buf_dispose(&y);
}

/* line_separator_written_raw_in_plain_scalar, c1_control_written_raw,
 * bom_starting_a_written_scalar: characters YAML reads as line breaks, does not
 * allow raw, or drops as a byte-order mark were written raw. */
static void test_json_to_yaml_escapes_yaml_breaks_and_controls(void **state)
{
    (void)state;
    static const char *const strs[] = {
        "x\xc2\x85y",
        "x\xe2\x80\xa8y",
        "x\xe2\x80\xa9y",
        "x\xc2\x80y",
        "x\xc2\x9fy",
        "x\xef\xbf\xbe",
        "\xef\xbf\xbfz",
        "\xef\xbb\xbf<",
        "a\xef\xbb\xbf"
        "b",
        "l1\nl\xe2\x80\xa8\n",
        "\xc2\xa0ok\xc3\xa9",
    };
    ig_buf_t y;
    ig_buf_init(&y, 0);
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
        cJSON *s = cJSON_CreateString(strs[k]);
        round_trip_strict(s, &y);
        cJSON_Delete(s);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, strs[k], strs[k]); /* as a key and a value */
        cJSON *a = cJSON_AddArrayToObject(o, "list");
        cJSON_AddItemToArray(a, cJSON_CreateString(strs[k]));
        round_trip_strict(o, &y);
        cJSON_Delete(o);
    }
    cJSON *s = cJSON_CreateString("x\xe2\x80\xa8y");
    round_trip_strict(s, &y);
    assert_string_equal(y.base, "\"x\\u2028y\"\n");
    cJSON_Delete(s);
    s = cJSON_CreateString("\xc2\xa0ok"); /* printable: stays plain */
    round_trip_strict(s, &y);
    assert_string_equal(y.base, "\xc2\xa0ok\n");
    cJSON_Delete(s);
    ig_buf_dispose(&y);
}

/* document_end_marker_as_plain_key: "... x" written plain at column 0 ended the document. */
static void test_json_to_yaml_quotes_document_markers(void **state)
{
    (void)state;
    static const char *const strs[] = {"...", "... x", "...x", "---", "--- x"};
    ig_buf_t y;
    ig_buf_init(&y, 0);
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
        cJSON *s = cJSON_CreateString(strs[k]);
        round_trip_strict(s, &y);
        assert_int_equal(y.base[0], '"');
        cJSON_Delete(s);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, strs[k], 1);
        cJSON_AddStringToObject(o, "v", strs[k]);
        round_trip_strict(o, &y);
        assert_int_equal(y.base[0], '"');
        cJSON_Delete(o);
    }
    ig_buf_dispose(&y);
}

/* Regression (fuzz_yaml key_longer_than_1024_written_implicit): a key past
 * YAML's 1024-character limit for implicit keys did not read back. */
static void test_json_to_yaml_long_keys_written_explicitly(void **state)
{
    (void)state;
    char key[1501];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    ig_buf_t y;
    ig_buf_init(&y, 0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, key, 1);
    cJSON *inner = cJSON_AddObjectToObject(o, "short");
    cJSON_AddStringToObject(inner, key, "v");
    cJSON_AddItemToObject(inner, "x", cJSON_CreateArray());
    round_trip_strict(o, &y);
    assert_int_equal(y.base[0], '?');
    cJSON_Delete(o);
    ig_buf_dispose(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subst_replaces_and_escapes),
        cmocka_unit_test(test_subst_unknown_and_unset_name_file_and_line),
        cmocka_unit_test(test_subst_literal_bytes_past_cap_fail),
        cmocka_unit_test(test_yaml_typing),
        cmocka_unit_test(test_yaml_errors_and_streams),
        cmocka_unit_test(test_yaml_float_overflow_refused),
        cmocka_unit_test(test_yaml_alias_expansion_bounded_in_bytes),
        cmocka_unit_test(test_json_to_yaml_round_trips),
        cmocka_unit_test(test_json_to_yaml_numbers_exact),
        cmocka_unit_test(test_json_to_yaml_escapes_yaml_breaks_and_controls),
        cmocka_unit_test(test_json_to_yaml_quotes_document_markers),
        cmocka_unit_test(test_json_to_yaml_long_keys_written_explicitly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
