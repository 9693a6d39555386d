/*
 * test_bootstrap_aws_creds.c: the AWS credential chain, shared file and STS parsing,
 * backoff bounds. No network: the web-identity step is covered end to end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "infergate/bootstrap/aws_creds.h"
#include "infergate/bootstrap/client.h"
#include "infergate/base/error.h"

static char tmpdir[] = "/tmp/ig-test-aws-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_env_comes_first(void **state)
{
    (void)state;
    char cred[256];
    snprintf(cred, sizeof(cred), "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", tmpdir);
    char *envp[] = {"AWS_ACCESS_KEY_ID=AKENV",
                    "AWS_SECRET_ACCESS_KEY=SKENV",
                    "AWS_SESSION_TOKEN=STENV",
                    cred,
                    "AWS_WEB_IDENTITY_TOKEN_FILE=/nonexistent",
                    "AWS_ROLE_ARN=arn:x",
                    NULL};
    ig_aws_creds_t c;
    char err[512];
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), 0);
    assert_string_equal(c.access_key, "AKENV");
    assert_string_equal(c.secret_key, "SKENV");
    assert_string_equal(c.session_token, "STENV");
    assert_string_equal(c.source, "environment");
    ig_aws_creds_dispose(&c);
}

static void test_half_env_is_an_error(void **state)
{
    (void)state;
    char *envp[] = {"AWS_ACCESS_KEY_ID=AKENV", NULL};
    ig_aws_creds_t c;
    char err[512];
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), IG_ECONFIG);
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
    ig_aws_creds_dispose(&c);
}

static void test_web_identity_before_shared_file(void **state)
{
    (void)state;
    /* With both configured, web identity is tried (and fails here on the
     * unreadable token file), proving it comes before the shared file. */
    char cred[256];
    snprintf(cred, sizeof(cred), "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", tmpdir);
    char *envp[] = {cred, "AWS_WEB_IDENTITY_TOKEN_FILE=/nonexistent/token",
                    "AWS_ROLE_ARN=arn:aws:iam::1:role/r", NULL};
    ig_aws_creds_t c;
    char err[512];
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), IG_EIO);
    assert_non_null(strstr(err, "AWS_WEB_IDENTITY_TOKEN_FILE"));
    ig_aws_creds_dispose(&c);
}

static void test_shared_file_and_profile(void **state)
{
    (void)state;
    char cred[256], prof[64];
    snprintf(cred, sizeof(cred), "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", tmpdir);
    char *envp[] = {cred, NULL, NULL};
    ig_aws_creds_t c;
    char err[512];
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), 0);
    assert_string_equal(c.access_key, "AKDEFAULT");
    assert_null(c.session_token);
    assert_string_equal(c.source, "shared-credentials-file");
    ig_aws_creds_dispose(&c);
    snprintf(prof, sizeof(prof), "AWS_PROFILE=ml");
    envp[1] = prof;
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), 0);
    assert_string_equal(c.access_key, "AKML");
    assert_string_equal(c.secret_key, "SK=ML");
    assert_string_equal(c.session_token, "TOKML");
    ig_aws_creds_dispose(&c);
    snprintf(prof, sizeof(prof), "AWS_PROFILE=half");
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "[half]"));
    assert_null(strstr(err, "AKHALF")); /* never a secret in a message */
    ig_aws_creds_dispose(&c);
    snprintf(prof, sizeof(prof), "AWS_PROFILE=nope");
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), IG_ENOTFOUND);
    ig_aws_creds_dispose(&c);
}

static void test_nothing_found_lists_sources(void **state)
{
    (void)state;
    char *envp[] = {"AWS_SHARED_CREDENTIALS_FILE=/nonexistent/creds", NULL};
    ig_aws_creds_t c;
    char err[512];
    assert_int_equal(ig_aws_creds_resolve(&c, envp, "us-west-2", err, sizeof(err)), IG_ENOTFOUND);
    assert_non_null(strstr(err, "AWS_ACCESS_KEY_ID"));
    assert_non_null(strstr(err, "AWS_WEB_IDENTITY_TOKEN_FILE"));
    assert_non_null(strstr(err, "/nonexistent/creds"));
    ig_aws_creds_dispose(&c);
}

static void test_sts_answer_parsing(void **state)
{
    (void)state;
    ig_aws_creds_t c = {0};
    char err[512];
    const char *ok = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                     "<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s&amp;k"
                     "</SecretAccessKey><SessionToken>tok&lt;1&gt;</SessionToken></Credentials>"
                     "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    assert_int_equal(ig_aws_sts_parse(&c, ok, err, sizeof(err)), 0);
    assert_string_equal(c.access_key, "ASIA1");
    assert_string_equal(c.secret_key, "s&k");
    assert_string_equal(c.session_token, "tok<1>");
    ig_aws_creds_dispose(&c);
    const char *bad = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message>"
                      "</Error></ErrorResponse>";
    assert_int_equal(ig_aws_sts_parse(&c, bad, err, sizeof(err)), IG_EAUTH);
    assert_non_null(strstr(err, "AccessDenied: no"));
}

static void test_backoff_is_bounded_and_grows(void **state)
{
    (void)state;
    ig_client_retry_t p;
    char *envp[] = {"AWS_MAX_ATTEMPTS=3", NULL};
    ig_client_retry_default(&p, envp);
    assert_int_equal(p.max_attempts, 3);
    long max0 = 0, max5 = 0;
    for (int i = 0; i < 200; i++) {
        long a = ig_client_backoff_ms(&p, 0), b = ig_client_backoff_ms(&p, 5);
        assert_true(a >= 0 && a <= p.base_ms);
        assert_true(b >= 0 && b <= p.cap_ms);
        if (a > max0)
            max0 = a;
        if (b > max5)
            max5 = b;
    }
    /* Full jitter: later attempts draw from a wider range. */
    assert_true(max5 > max0);
    assert_true(ig_client_backoff_ms(&p, 60) <= p.cap_ms);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    char p[256];
    snprintf(p, sizeof(p), "%s/credentials", tmpdir);
    write_file(p, "# comment\n[default]\naws_access_key_id = AKDEFAULT\n"
                  "aws_secret_access_key=SKDEFAULT\n\n[profile ml]\n"
                  "aws_access_key_id=AKML\naws_secret_access_key = SK=ML\r\n"
                  "aws_session_token = TOKML\n[half]\naws_access_key_id=AKHALF\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[256];
    snprintf(p, sizeof(p), "%s/credentials", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_comes_first),
        cmocka_unit_test(test_half_env_is_an_error),
        cmocka_unit_test(test_web_identity_before_shared_file),
        cmocka_unit_test(test_shared_file_and_profile),
        cmocka_unit_test(test_nothing_found_lists_sources),
        cmocka_unit_test(test_sts_answer_parsing),
        cmocka_unit_test(test_backoff_is_bounded_and_grows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
