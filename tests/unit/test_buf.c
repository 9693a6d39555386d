/*
 * test_buf.c: the capped buffer of buf.h: the cap, growth, consume/take,
 * and JSON string literals (escapes, UTF-8, all or nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"

static void test_cap_and_growth(void **state)
{
    (void)state;
    ig_buf_t b;
    ig_buf_init(&b, 10);
    assert_null(b.base); /* nothing allocated yet */
    assert_int_equal(ig_buf_append_str(&b, "12345"), 0);
    assert_int_equal(ig_buf_printf(&b, "%d", 678), 0);
    assert_string_equal(b.base, "12345678");
    /* Past the cap: refused, contents unchanged. */
    assert_int_equal(ig_buf_append_str(&b, "abc"), IG_ETOOLARGE);
    assert_int_equal(ig_buf_printf(&b, "%s", "abc"), IG_ETOOLARGE);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.base, "12345678");
    assert_int_equal(ig_buf_append_str(&b, "9A"), 0); /* exactly the cap */
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.base, "123456789A", 10);
    ig_buf_dispose(&b);

    /* No cap: printf grows as needed. */
    ig_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ig_buf_printf(&b, "%04d", i), 0);
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.base + 3996, "0999", 4);
    assert_int_equal(b.base[b.len], '\0');
    ig_buf_dispose(&b);
}

static void test_consume_reset_take(void **state)
{
    (void)state;
    ig_buf_t b;
    ig_buf_init(&b, 0);
    ig_buf_append_str(&b, "hello world");
    ig_buf_consume(&b, 6);
    assert_string_equal(b.base, "world");
    ig_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.base, "");
    ig_buf_append_str(&b, "kept");
    size_t n = 0;
    char *p = ig_buf_take(&b, &n);
    assert_int_equal(n, 4);
    assert_string_equal(p, "kept");
    assert_null(b.base);
    free(p);
    p = ig_buf_take(&b, &n); /* empty: still a string the caller frees */
    assert_int_equal(n, 0);
    assert_string_equal(p, "");
    free(p);
}

/* Appends `in` (n bytes) as a JSON string and checks the result. */
static void expect_json(const char *in, size_t n, const char *want)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    assert_int_equal(ig_buf_append_json_str(&b, in, n), 0);
    assert_string_equal(b.base, want);
    ig_buf_dispose(&b);
}

static void test_json_escapes(void **state)
{
    (void)state;
    expect_json("", 0, "\"\"");
    expect_json("plain text", 10, "\"plain text\"");
    expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect_json("\n\r\t", 3, "\"\\n\\r\\t\"");
    expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    expect_json("nul\0in", 6, "\"nul\\u0000in\"");
}

static void test_json_utf8(void **state)
{
    (void)state;
    /* Well-formed UTF-8 passes through: 2, 3 and 4 byte sequences. */
    expect_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
                "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Anything else becomes U+FFFD: one for each byte that cannot start a
     * sequence, one for a cut-off sequence (Unicode's maximal subparts). */
    const char *fffd = "\xef\xbf\xbd";
    char want[64];
    snprintf(want, sizeof(want), "\"a%sb\"", fffd);
    expect_json("a\xff"
                "b",
                3, want); /* never valid */
    expect_json("a\xc3"
                "b",
                3, want); /* truncated */
    snprintf(want, sizeof(want), "\"%s%s\"", fffd, fffd);
    expect_json("\xc0\xaf", 2, want); /* overlong '/' */
    snprintf(want, sizeof(want), "\"%s%s%s\"", fffd, fffd, fffd);
    expect_json("\xed\xa0\x80", 3, want); /* a surrogate */
    snprintf(want, sizeof(want), "\"%s%s%s%s\"", fffd, fffd, fffd, fffd);
    expect_json("\xf4\x90\x80\x80", 4, want); /* above U+10FFFF */
    snprintf(want, sizeof(want), "\"x%s\"", fffd);
    expect_json("x\xe2\x82", 3, want); /* cut at the end */
    snprintf(want, sizeof(want), "\"%sy\"", fffd);
    expect_json("\xf0\x9f\x98y", 4, want); /* cut before an ASCII byte */
}

static void test_utf8_valid(void **state)
{
    (void)state;
    size_t at = 99;
    assert_true(ig_utf8_valid("", 0, &at));
    assert_true(ig_utf8_valid("ascii \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 17, &at));
    assert_int_equal(at, 99); /* untouched when valid */
    assert_false(ig_utf8_valid("ab\xff", 3, &at));
    assert_int_equal(at, 2);
    assert_false(ig_utf8_valid("a\xc3\xa9\xed\xa0\x80", 6, &at)); /* a surrogate */
    assert_int_equal(at, 3);
    assert_false(ig_utf8_valid("\xe2\x82", 2, NULL)); /* cut off */
}

static void test_json_all_or_nothing(void **state)
{
    (void)state;
    ig_buf_t b;
    ig_buf_init(&b, 12);
    ig_buf_append_str(&b, "k=");
    /* 2 + 2 quotes + 9 bytes > 12: nothing of it is left behind. */
    assert_int_equal(ig_buf_append_json_str(&b, "123456789", 9), IG_ETOOLARGE);
    assert_string_equal(b.base, "k=");
    /* Fits before escaping, not after. */
    assert_int_equal(ig_buf_append_json_str(&b, "\"\"\"\"\"", 5), IG_ETOOLARGE);
    assert_string_equal(b.base, "k=");
    assert_int_equal(ig_buf_append_json_str(&b, "ok", 2), 0);
    assert_string_equal(b.base, "k=\"ok\"");
    ig_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_and_growth),      cmocka_unit_test(test_consume_reset_take),
        cmocka_unit_test(test_json_escapes),        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_all_or_nothing), cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
