/*
 * test_router.c: route patterns, captures, wildcard, first-match order and
 * pattern syntax errors, through router.h only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/base/error.h"
#include "infergate/core/router.h"

static ig_route_conf_t route(const char *match, ig_protocol_t proto)
{
    ig_route_conf_t r;
    memset(&r, 0, sizeof r);
    r.match = (char *)match;
    r.protocol = proto;
    r.batch.max_size = 32;
    r.queue_timeout_ms = 5000;
    return r;
}

static void assert_capture(const ig_route_match_t *m, const char *name, const char *want)
{
    ig_slice_t v = ig_route_capture(m, name);
    assert_non_null(v.base);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.base, want, v.len);
}

static void test_capture_stops_at_following_literal(void **state)
{
    (void)state;
    ig_route_conf_t r = route("/v1/models/{model}:predict", IG_PROTO_KSERVE_V1);
    ig_router_t rt;
    ig_route_match_t m;
    assert_int_equal(ig_router_init(&rt, &r, 1, NULL, 0), 0);

    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/iris:predict"), &m), 0);
    assert_ptr_equal(m.route, &r);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.ncaptures, 1);
    assert_true(ig_slice_eq(m.names[0], "model"));
    assert_capture(&m, "model", "iris");

    /* A ':' inside the name is fine as long as ":predict" follows it. */
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/a:b:predict"), &m), 0);
    assert_capture(&m, "model", "a:b");

    /* Captures need one or more characters, never '/'. */
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/:predict"), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/a/b:predict"), &m),
                     IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/iris:explain"), &m),
                     IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/iris:predictx"), &m),
                     IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/iris"), &m), IG_ENOTFOUND);
}

static void test_two_captures(void **state)
{
    (void)state;
    ig_route_conf_t r = route("/v2/models/{model}/versions/{version}/infer", IG_PROTO_OIP_V2);
    ig_router_t rt;
    ig_route_match_t m;
    assert_int_equal(ig_router_init(&rt, &r, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/models/resnet/versions/3/infer"), &m),
                     0);
    assert_int_equal(m.ncaptures, 2);
    assert_capture(&m, "model", "resnet");
    assert_capture(&m, "version", "3");
    assert_null(ig_route_capture(&m, "other").base);
    assert_int_equal(ig_route_capture(&m, "other").len, 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/models/resnet/versions//infer"), &m),
                     IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/models/resnet/infer"), &m),
                     IG_ENOTFOUND);
}

static void test_capture_at_end_takes_one_segment(void **state)
{
    (void)state;
    ig_route_match_t m;
    ig_route_conf_t r = route("/models/{name}", IG_PROTO_PASSTHROUGH);
    ig_router_t rt;
    assert_int_equal(ig_router_init(&rt, &r, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/models/abc"), &m), 0);
    assert_capture(&m, "name", "abc");
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/models/abc/def"), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/models/"), &m), IG_ENOTFOUND);
}

static void test_wildcard(void **state)
{
    (void)state;
    ig_route_match_t m;
    ig_route_conf_t all = route("/*", IG_PROTO_PASSTHROUGH);
    ig_route_conf_t v2 = route("/v2/*", IG_PROTO_PASSTHROUGH);
    ig_route_conf_t cap = route("/m/{name}*", IG_PROTO_PASSTHROUGH);
    ig_router_t rt;

    assert_int_equal(ig_router_init(&rt, &all, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/"), &m), 0);
    assert_int_equal(m.ncaptures, 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/a/b/c?not-a-query"), &m), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT(""), &m), IG_ENOTFOUND);

    assert_int_equal(ig_router_init(&rt, &v2, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/"), &m), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/health/ready"), &m), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2"), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/x"), &m), IG_ENOTFOUND);

    assert_int_equal(ig_router_init(&rt, &cap, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/m/iris/ready"), &m), 0);
    assert_capture(&m, "name", "iris");
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/m/iris"), &m), 0);
    assert_capture(&m, "name", "iris");
}

static void test_first_match_wins(void **state)
{
    (void)state;
    ig_route_match_t m;
    ig_router_t rt;
    ig_route_conf_t table[] = {
        route("/v1/models/{model}:predict", IG_PROTO_KSERVE_V1),
        route("/v2/models/{model}/infer", IG_PROTO_OIP_V2),
        route("/*", IG_PROTO_PASSTHROUGH),
    };
    assert_int_equal(ig_router_init(&rt, table, 3, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/models/m/infer"), &m), 0);
    assert_int_equal(m.index, 1);
    assert_ptr_equal(m.route, &table[1]);
    assert_int_equal(m.route->protocol, IG_PROTO_OIP_V2);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/m:predict"), &m), 0);
    assert_int_equal(m.index, 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v2/models/m/ready"), &m), 0);
    assert_int_equal(m.index, 2);
    assert_int_equal(m.ncaptures, 0);

    /* The catch-all first shadows everything after it. */
    ig_route_conf_t reversed[] = {table[2], table[0]};
    assert_int_equal(ig_router_init(&rt, reversed, 2, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/v1/models/m:predict"), &m), 0);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.route->protocol, IG_PROTO_PASSTHROUGH);
}

static void test_no_match(void **state)
{
    (void)state;
    ig_route_match_t m;
    ig_router_t rt;
    ig_route_conf_t table[] = {route("/healthz", IG_PROTO_PASSTHROUGH),
                               route("/v2/models/{model}/infer", IG_PROTO_OIP_V2)};
    assert_int_equal(ig_router_init(&rt, table, 2, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/healthz"), &m), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/healthz2"), &m), IG_ENOTFOUND);
    assert_null(m.route);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/health"), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/HEALTHZ"), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, ig_slice(NULL, 0), &m), IG_ENOTFOUND);

    /* An empty table matches nothing. */
    assert_int_equal(ig_router_init(&rt, NULL, 0, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/"), &m), IG_ENOTFOUND);
}

/* Only the first `len` bytes of the path slice count: it need not be
 * NUL-terminated (the server hands over slices into its read buffer). */
static void test_path_slice_not_terminated(void **state)
{
    (void)state;
    ig_route_match_t m;
    ig_router_t rt;
    ig_route_conf_t r = route("/v1/models/{model}:predict", IG_PROTO_KSERVE_V1);
    const char raw[] = "/v1/models/iris:predictXYZ";
    assert_int_equal(ig_router_init(&rt, &r, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, ig_slice(raw, strlen(raw) - 3), &m), 0);
    assert_capture(&m, "model", "iris");
    assert_int_equal(ig_router_match(&rt, ig_slice(raw, 14), &m), IG_ENOTFOUND);
}

static void assert_bad_pattern(const char *pattern, const char *needle)
{
    char err[256] = "";
    assert_int_equal(ig_router_check_pattern(pattern, err, sizeof err), IG_EINVAL);
    if (!strstr(err, needle))
        fail_msg("pattern '%s': error '%s' does not mention '%s'", pattern, err, needle);
}

static void test_pattern_syntax(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ig_router_check_pattern("/", err, sizeof err), 0);
    assert_int_equal(ig_router_check_pattern("/*", err, sizeof err), 0);
    assert_int_equal(ig_router_check_pattern("/v1/models/{model}:predict", err, sizeof err), 0);
    assert_int_equal(ig_router_check_pattern("/a/{b}/c/{d}/e/{f}/g/{h}", err, sizeof err), 0);
    assert_int_equal(ig_router_check_pattern("/{a}-{b}", err, sizeof err), 0);

    assert_bad_pattern("", "must start with '/'");
    assert_bad_pattern("v1/models", "must start with '/'");
    assert_bad_pattern("*", "must start with '/'");
    assert_bad_pattern("/v1/{model", "unclosed '{' at offset 4");
    assert_bad_pattern("/v1/{mo/del}", "unclosed '{'");
    assert_bad_pattern("/v1/{}/x", "empty capture name at offset 4");
    assert_bad_pattern("/v1/*/x", "'*' is only allowed at the end");
    assert_bad_pattern("/**", "'*' is only allowed at the end");
    assert_bad_pattern("/{a}{b}", "two captures need literal text between them");
    assert_bad_pattern("/{a}/{b}/{c}/{d}/{e}", "more than 4 captures");
    assert_bad_pattern("/{a}/{a}", "capture name 'a' used twice");
    assert_bad_pattern("/v1/x}", "unmatched '}'");
    assert_bad_pattern("/v1/{a b}", "invalid character ' ' in capture name");
    assert_bad_pattern("/v1 /x", "invalid character 0x20");
    assert_bad_pattern("/v1?x=1", "invalid character 0x3f");
    assert_bad_pattern(NULL, "must start with '/'");

    /* A NULL or zero-length error buffer is allowed. */
    assert_int_equal(ig_router_check_pattern("/{", NULL, 0), IG_EINVAL);
}

static void test_init_names_bad_route(void **state)
{
    (void)state;
    char err[256] = "";
    ig_router_t rt;
    ig_route_conf_t table[] = {route("/ok", IG_PROTO_PASSTHROUGH),
                               route("/bad/{x", IG_PROTO_PASSTHROUGH)};
    assert_int_equal(ig_router_init(&rt, table, 2, err, sizeof err), IG_EINVAL);
    assert_string_equal(err, "routes[1].match: pattern '/bad/{x': unclosed '{' at offset 5");
    assert_int_equal(rt.nroutes, 0);
}

/* A path built to make a backtracking matcher explode must still answer. */
static void test_adversarial_path(void **state)
{
    (void)state;
    static char path[16385];
    ig_route_match_t m;
    ig_router_t rt;
    ig_route_conf_t r = route("/{a}-{b}-{c}-{d}x", IG_PROTO_PASSTHROUGH);
    path[0] = '/';
    memset(path + 1, '-', sizeof path - 2);
    path[sizeof path - 1] = '\0';
    assert_int_equal(ig_router_init(&rt, &r, 1, NULL, 0), 0);
    assert_int_equal(ig_router_match(&rt, ig_slice_cstr(path), &m), IG_ENOTFOUND);
    assert_int_equal(ig_router_match(&rt, IG_SLICE_LIT("/1-2-3-4x"), &m), 0);
    assert_capture(&m, "a", "1");
    assert_capture(&m, "d", "4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_stops_at_following_literal),
        cmocka_unit_test(test_two_captures),
        cmocka_unit_test(test_capture_at_end_takes_one_segment),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_no_match),
        cmocka_unit_test(test_path_slice_not_terminated),
        cmocka_unit_test(test_pattern_syntax),
        cmocka_unit_test(test_init_names_bad_route),
        cmocka_unit_test(test_adversarial_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
