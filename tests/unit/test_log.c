/*
 * test_log.c: the redaction helpers of log.h: ig_log_redact_url and
 * ig_log_scrub, which stand between a secret and every log line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/base/log.h"

static void expect_url(const char *in, const char *want)
{
    char *got = ig_log_redact_url(in);
    if (strcmp(got, want) != 0)
        fail_msg("redact(%s) = %s, want %s", in, got, want);
    free(got);
}

static void test_redact_url(void **state)
{
    (void)state;
    expect_url("http://user:s3cret@127.0.0.1:8081/p", "http://<redacted>@127.0.0.1:8081/p");
    expect_url("http://token@model:8081", "http://<redacted>@model:8081");
    /* The host follows the last '@': a password may hold one. */
    expect_url("http://u:p@ss@h:1/x", "http://<redacted>@h:1/x");
    /* An '@' in the path or query is not user info. */
    expect_url("http://h:1/a@b?c=d@e", "http://h:1/a@b?c=d@e");
    expect_url("http://[::1]:8081/v2", "http://[::1]:8081/v2");
    /* Forms people write anyway: no scheme, a '/' in the password. */
    expect_url("u:pw@h:8081", "<redacted>@h:8081");
    expect_url("http://u:pa/ss@h:8081", "http://<redacted>@h:8081");
    expect_url("", "");
}

static void test_scrub(void **state)
{
    (void)state;
    char t[128] = "signature mismatch: x-amz-security-token:TOKEN123; again TOKEN123.";
    assert_int_equal(ig_log_scrub(t, sizeof(t), "TOKEN123"), 2);
    assert_string_equal(t,
                        "signature mismatch: x-amz-security-token:<redacted>; again <redacted>.");
    assert_null(strstr(t, "TOKEN"));
    /* A message cut short in the middle of the secret loses that tail. */
    char cut[24] = "error near TOKEN12345";
    ig_log_scrub(cut, strlen(cut) + 1, "TOKEN12345678");
    assert_null(strstr(cut, "TOKE"));
    /* Nothing to do. */
    char same[32] = "nothing secret here";
    assert_int_equal(ig_log_scrub(same, sizeof(same), ""), 0);
    assert_int_equal(ig_log_scrub(same, sizeof(same), NULL), 0);
    assert_string_equal(same, "nothing secret here");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_scrub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
