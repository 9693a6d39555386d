/*
 * test_url.c: the URL parser of url.h: user info up to the last '@' of the
 * authority, IPv6 literals, ports and their range, paths, queries and
 * fragments, and the sentences given for what it rejects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/base/error.h"
#include "infergate/base/url.h"

static ig_url_t parse_ok(const char *s)
{
    ig_url_t u;
    const char *why = "unset";
    int rc = ig_url_parse(s, strlen(s), &u, &why);
    if (rc != 0)
        fail_msg("'%s' was rejected: %s", s, why);
    return u;
}

static void expect_bad(const char *s, const char *want)
{
    ig_url_t u;
    const char *why = NULL;
    assert_int_equal(ig_url_parse(s, strlen(s), &u, &why), IG_EPARSE);
    assert_non_null(why);
    assert_string_equal(why, want);
}

static void expect_slice(ig_slice_t got, const char *want)
{
    if (!want) {
        assert_null(got.base);
        assert_int_equal(got.len, 0);
        return;
    }
    assert_non_null(got.base);
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.base, want, got.len);
}

static void test_plain(void **state)
{
    (void)state;
    ig_url_t u = parse_ok("http://model:8081/v1/models?verbose=1#top");
    expect_slice(u.scheme, "http");
    expect_slice(u.userinfo, NULL);
    expect_slice(u.host, "model");
    expect_slice(u.hostport, "model:8081");
    expect_slice(u.path, "/v1/models");
    expect_slice(u.query, "verbose=1");
    expect_slice(u.fragment, "top");
    assert_int_equal(u.port, 8081);
    assert_true(u.has_port);
    assert_false(u.ipv6);
    assert_false(u.https);

    u = parse_ok("http://127.0.0.1");
    expect_slice(u.host, "127.0.0.1");
    expect_slice(u.path, "");
    expect_slice(u.query, NULL);
    assert_int_equal(u.port, 80);
    assert_false(u.has_port);

    u = parse_ok("HTTPS://example.com");
    assert_true(u.https);
    assert_int_equal(u.port, 443);
}

static void test_userinfo(void **state)
{
    (void)state;
    ig_url_t u = parse_ok("http://user:secret@h:9000/p");
    expect_slice(u.userinfo, "user:secret");
    expect_slice(u.host, "h");
    expect_slice(u.hostport, "h:9000");
    assert_int_equal(u.port, 9000);

    /* The user info runs to the last '@' of the authority. */
    u = parse_ok("http://user:p@ss@w0rd@model:8081/x@y");
    expect_slice(u.userinfo, "user:p@ss@w0rd");
    expect_slice(u.host, "model");
    expect_slice(u.path, "/x@y");

    /* An '@' after the authority is not user info. */
    u = parse_ok("http://h/a@b?c@d");
    expect_slice(u.userinfo, NULL);
    expect_slice(u.host, "h");
    expect_slice(u.path, "/a@b");
    expect_slice(u.query, "c@d");

    u = parse_ok("http://@h");
    expect_slice(u.userinfo, "");
    expect_slice(u.host, "h");

    /* "user:pa/ss@host" ends its authority at the '/': "user" with a bad port. */
    expect_bad("http://user:pa/ss@host", "has an invalid port (1..65535)");
    expect_bad("http://user:pw@", "has no host");
}

static void test_ipv6(void **state)
{
    (void)state;
    ig_url_t u = parse_ok("http://[::1]:8000/base");
    expect_slice(u.host, "::1");
    expect_slice(u.hostport, "[::1]:8000");
    assert_true(u.ipv6);
    assert_int_equal(u.port, 8000);
    expect_slice(u.path, "/base");

    u = parse_ok("http://u:p@[2001:db8::5]");
    expect_slice(u.userinfo, "u:p");
    expect_slice(u.host, "2001:db8::5");
    assert_false(u.has_port);
    assert_int_equal(u.port, 80);

    u = parse_ok("http://[::ffff:10.0.0.1]?q");
    expect_slice(u.host, "::ffff:10.0.0.1");
    expect_slice(u.query, "q");

    expect_bad("http://[::1/x", "has an invalid IPv6 host");
    expect_bad("http://[nope]:80", "has an invalid IPv6 host");
    expect_bad("http://[]", "has an invalid IPv6 host");
    expect_bad("http://[::1]8080", "has characters after its IPv6 host");
    expect_bad("http://::1:8080", "has no host");
}

static void test_ports(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("http://h:1").port, 1);
    assert_int_equal(parse_ok("http://h:65535").port, 65535);
    assert_int_equal(parse_ok("http://h:00080").port, 80);
    expect_bad("http://h:0", "has a port outside 1..65535");
    expect_bad("http://h:65536", "has a port outside 1..65535");
    expect_bad("http://h:99999", "has a port outside 1..65535");
    expect_bad("http://h:123456", "has an invalid port (1..65535)");
    expect_bad("http://h:", "has an invalid port (1..65535)");
    expect_bad("http://h:8o", "has an invalid port (1..65535)");
    expect_bad("http://h:-1", "has an invalid port (1..65535)");
    expect_bad("http://h:80:81", "has an invalid port (1..65535)");
    expect_bad("http://[::1]:", "has an invalid port (1..65535)");
    expect_bad("http://[::1]:70000", "has a port outside 1..65535");
}

static void test_hosts(void **state)
{
    (void)state;
    expect_bad("http://", "has no host");
    expect_bad("http:///path", "has no host");
    expect_bad("http://?q", "has no host");
    expect_bad("http://:8080", "has no host");
    expect_bad("http://ho$t", "has no valid host");
    expect_bad("http://1.2.3", "has no valid host");
    expect_bad("http://256.1.1.1", "has no valid host");
    expect_slice(parse_ok("http://my-model_1.ns.svc").host, "my-model_1.ns.svc");
}

static void test_paths_and_queries(void **state)
{
    (void)state;
    ig_url_t u = parse_ok("http://h/");
    expect_slice(u.path, "/");
    u = parse_ok("http://h?");
    expect_slice(u.path, "");
    expect_slice(u.query, "");
    u = parse_ok("http://h/a/b/?x=1&y=%20#");
    expect_slice(u.path, "/a/b/");
    expect_slice(u.query, "x=1&y=%20");
    expect_slice(u.fragment, "");
    u = parse_ok("http://h#f?not-a-query");
    expect_slice(u.query, NULL);
    expect_slice(u.fragment, "f?not-a-query");

    expect_bad("http://h/a b", "has spaces, control or non-ASCII characters");
    expect_bad("http://h/a\tb", "has spaces, control or non-ASCII characters");
    expect_bad("http://h/caf\xc3\xa9", "has spaces, control or non-ASCII characters");

    /* The length bounds the parse: bytes past it are not read. */
    ig_url_t v;
    assert_int_equal(ig_url_parse("http://h:80/xyz", 11, &v, NULL), 0);
    expect_slice(v.hostport, "h:80");
    expect_slice(v.path, "");
}

static void test_schemes(void **state)
{
    (void)state;
    expect_bad("ftp://h/", "has an unsupported scheme (use http://)");
    expect_bad("unix:///run/model.sock", "has an unsupported scheme (use http://)");
    expect_bad("h:8080", "is not a URL (http://host[:port][/path])");
    expect_bad("", "is not a URL (http://host[:port][/path])");
    expect_bad("http:/h", "is not a URL (http://host[:port][/path])");

    /* A failed parse leaves *out alone. */
    ig_url_t u;
    memset(&u, 0x5a, sizeof u);
    assert_int_equal(ig_url_parse("gopher://h", 10, &u, NULL), IG_EPARSE);
    assert_int_equal(u.port, 0x5a5a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),   cmocka_unit_test(test_userinfo),
        cmocka_unit_test(test_ipv6),    cmocka_unit_test(test_ports),
        cmocka_unit_test(test_hosts),   cmocka_unit_test(test_paths_and_queries),
        cmocka_unit_test(test_schemes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
