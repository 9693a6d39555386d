/*
 * test_config.c: the configuration layers (defaults < file < env < flags),
 * the exact wording of errors, ranges, routes, JSON output with redaction and
 * its round trip, and that every file in examples/ validates. Through
 * config.h only; files go to a private temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "infergate/core/config.h"
#include "infergate/base/error.h"

static char tmpdir[] = "/tmp/ig_test_config.XXXXXX";
static char err[1024];

/* Writes `text` to tmpdir/name and returns the path (static storage, one at a time per slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return p;
}

static int merge(ig_config_t *c, const char *json)
{
    err[0] = '\0';
    return ig_config_merge_json(c, json, strlen(json), "t.json", err, sizeof err);
}

/* Merges `json` into a fresh default config and expects exactly `want`. */
static void expect_merge_error(const char *json, int code, const char *want)
{
    ig_config_t c;
    ig_config_init(&c);
    int rc = merge(&c, json);
    if (rc != code || strcmp(err, want) != 0)
        fail_msg("merging %s\n  got  %d '%s'\n  want %d '%s'", json, rc, err, code, want);
    ig_config_dispose(&c);
}

/* Merges `json` (must succeed) and expects validation to fail with `want`. */
static void expect_validate_error(const char *json, const char *want)
{
    ig_config_t c;
    ig_config_init(&c);
    assert_int_equal(merge(&c, json), 0);
    int rc = ig_config_validate(&c, err, sizeof err);
    if (rc != IG_ECONFIG || strcmp(err, want) != 0)
        fail_msg("validating %s\n  got  %d '%s'\n  want '%s'", json, rc, err, want);
    ig_config_dispose(&c);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const written[] = {"partial.json", "broken.json", "prec.json", "other.json"};
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, written[i]);
        unlink(p);
    }
    return rmdir(tmpdir);
}

static void test_defaults(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    assert_string_equal(c.listen, "0.0.0.0:8080");
    assert_string_equal(c.admin_listen, "0.0.0.0:9090");
    assert_string_equal(c.upstream.url, "http://127.0.0.1:8081");
    assert_int_equal(c.upstream.max_concurrency, 4);
    assert_int_equal(c.upstream.max_connections, 64);
    assert_int_equal(c.upstream.connect_timeout_ms, 1000);
    assert_int_equal(c.upstream.timeout_ms, 30000);
    assert_string_equal(c.upstream.ready_path, "/v2/health/ready");
    assert_int_equal(c.upstream.probe_interval_ms, 1000);
    assert_int_equal(c.limits.max_queue, 1024);
    assert_int_equal(c.limits.max_body_bytes, 8388608);
    assert_int_equal(c.limits.max_header_bytes, 16384);
    assert_int_equal(c.limits.header_timeout_ms, 10000);
    assert_int_equal(c.limits.idle_timeout_ms, 60000);
    assert_int_equal(c.limits.max_connections, 10000);
    assert_int_equal(c.drain.grace_ms, 3000);
    assert_int_equal(c.drain.timeout_ms, 25000);
    assert_int_equal(c.metrics.window_s, 30);
    assert_int_equal(c.log.level, IG_LOG_INFO);
    assert_true(c.log.access_log);
    assert_null(c.bootstrap);
    assert_null(c.source);

    assert_int_equal(c.nroutes, 3);
    assert_string_equal(c.routes[0].match, "/v1/models/{model}:predict");
    assert_int_equal(c.routes[0].protocol, IG_PROTO_KSERVE_V1);
    assert_int_equal(c.routes[0].batch.max_size, 32);
    assert_int_equal(c.routes[0].batch.max_delay_us, 2000);
    assert_int_equal(c.routes[0].batch.n_preferred, 2);
    assert_int_equal(c.routes[0].batch.preferred_sizes[0], 16);
    assert_int_equal(c.routes[0].batch.preferred_sizes[1], 32);
    assert_int_equal(c.routes[0].queue_timeout_ms, 5000);
    assert_string_equal(c.routes[1].match, "/v2/models/{model}/infer");
    assert_int_equal(c.routes[1].protocol, IG_PROTO_OIP_V2);
    assert_int_equal(c.routes[1].batch.max_size, 32);
    assert_int_equal(c.routes[1].batch.n_preferred, 0);
    assert_int_equal(c.routes[1].queue_timeout_ms, 5000);
    assert_string_equal(c.routes[2].match, "/*");
    assert_int_equal(c.routes[2].protocol, IG_PROTO_PASSTHROUGH);

    assert_int_equal(ig_config_validate(&c, err, sizeof err), 0);
    ig_config_dispose(&c);
    assert_null(c.routes);
}

static void test_file_merges_over_defaults(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    const char *path = write_file("partial.json", "{\"upstream\": {\"max_concurrency\": 8},\n"
                                                  " \"log\": {\"access_log\": false}}\n");
    assert_int_equal(ig_config_merge_file(&c, path, err, sizeof err), 0);
    assert_int_equal(c.upstream.max_concurrency, 8);
    assert_false(c.log.access_log);
    /* Siblings in the same object keep their defaults. */
    assert_int_equal(c.upstream.timeout_ms, 30000);
    assert_string_equal(c.upstream.url, "http://127.0.0.1:8081");
    assert_int_equal(c.log.level, IG_LOG_INFO);
    assert_int_equal(c.nroutes, 3);
    assert_string_equal(c.source, path);
    ig_config_dispose(&c);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_merge_error("{\"upstream\": {\"max_concurency\": 4}}", IG_ECONFIG,
                       "t.json: upstream.max_concurency: unknown key "
                       "(did you mean upstream.max_concurrency?)");
    expect_merge_error("{\"bogus_key\": 1}", IG_ECONFIG, "t.json: bogus_key: unknown key");
    expect_merge_error("{\"upstream.url\": \"http://h:1\"}", IG_ECONFIG,
                       "t.json: upstream.url: unknown key (a file nests key paths: write "
                       "{\"upstream\": {\"url\": …}}, not {\"upstream.url\": …})");
    expect_merge_error("{\"limits\": {\"max_queue\": 1, \"nope\": 2}}", IG_ECONFIG,
                       "t.json: limits.nope: unknown key");
    expect_merge_error("{\"routes\": [{\"match\": \"/*\"}, {\"match\": \"/x\", \"prio\": 1}]}",
                       IG_ECONFIG,
                       "t.json: routes[1].prio: unknown key "
                       "(known: match, protocol, batch, queue_timeout_ms)");
    expect_merge_error("{\"routes\": [{\"match\": \"/v1/{m}\", \"protocol\": \"kserve-v1\", "
                       "\"batch\": {\"max_sise\": 4}}]}",
                       IG_ECONFIG,
                       "t.json: routes[0].batch.max_sise: unknown key "
                       "(known: max_size, max_delay_us, preferred_sizes)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_merge_error("{\"listen\": 8080}", IG_ECONFIG,
                       "t.json: listen: must be a string, got 8080");
    expect_merge_error("{\"upstream\": {\"max_concurrency\": \"8\"}}", IG_ECONFIG,
                       "t.json: upstream.max_concurrency: must be an integer in 1..65535, "
                       "got the string '8'");
    expect_merge_error("{\"log\": {\"access_log\": \"yes\"}}", IG_ECONFIG,
                       "t.json: log.access_log: must be true or false, got the string 'yes'");
    expect_merge_error("{\"log\": {\"level\": \"loud\"}}", IG_ECONFIG,
                       "t.json: log.level: must be one of debug, info, warn, error, off, "
                       "got the string 'loud'");
    expect_merge_error("{\"upstream\": []}", IG_ECONFIG,
                       "t.json: upstream: must be an object, got an array");
    expect_merge_error("{\"routes\": {}}", IG_ECONFIG,
                       "t.json: routes: must be an array of routes, got an object");
    expect_merge_error("{\"routes\": [\"/*\"]}", IG_ECONFIG,
                       "t.json: routes[0]: must be an object, got the string '/*'");
    expect_merge_error("{\"routes\": [{\"match\": 7}]}", IG_ECONFIG,
                       "t.json: routes[0].match: must be a string, got 7");
    expect_merge_error("{\"bootstrap\": [1]}", IG_ECONFIG,
                       "t.json: bootstrap: must be an object, got an array");
    expect_merge_error("[1, 2]", IG_ECONFIG,
                       "t.json: the top level must be a JSON object, got an array");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_merge_error("{\"upstream\": {\"max_concurrency\": 0}}", IG_ECONFIG,
                       "t.json: upstream.max_concurrency: must be an integer in 1..65535, got 0");
    expect_merge_error("{\"upstream\": {\"max_concurrency\": 65536}}", IG_ECONFIG,
                       "t.json: upstream.max_concurrency: must be an integer in 1..65535, "
                       "got 65536");
    expect_merge_error("{\"upstream\": {\"max_concurrency\": -3}}", IG_ECONFIG,
                       "t.json: upstream.max_concurrency: must be an integer in 1..65535, got -3");
    expect_merge_error("{\"upstream\": {\"max_concurrency\": 1.5}}", IG_ECONFIG,
                       "t.json: upstream.max_concurrency: must be an integer in 1..65535, "
                       "got 1.5");
    expect_merge_error("{\"limits\": {\"max_queue\": 10000001}}", IG_ECONFIG,
                       "t.json: limits.max_queue: must be an integer in 0..10000000, "
                       "got 10000001");
    expect_merge_error("{\"metrics\": {\"window_s\": 0}}", IG_ECONFIG,
                       "t.json: metrics.window_s: must be an integer in 1..3600, got 0");
    expect_merge_error("{\"limits\": {\"max_body_bytes\": -5}}", IG_ECONFIG,
                       "t.json: limits.max_body_bytes: must be an integer in 1..1073741824, "
                       "got -5");
    expect_merge_error("{\"upstream\": {\"timeout_ms\": 0}}", IG_ECONFIG,
                       "t.json: upstream.timeout_ms: must be an integer in 1..86400000, got 0");
    /* The brief's own example of an array index in a key path. */
    expect_merge_error("{\"routes\": [{\"match\": \"/*\"}, {\"match\": \"/v1/{m}:predict\", "
                       "\"protocol\": \"kserve-v1\", \"batch\": {\"max_size\": 0}}]}",
                       IG_ECONFIG,
                       "t.json: routes[1].batch.max_size: must be an integer in 1..4096, got 0");
    expect_merge_error("{\"routes\": [{\"match\": \"/x\", \"protocol\": \"oip-v2\", "
                       "\"batch\": {\"max_size\": 8, \"preferred_sizes\": [4, 16]}}]}",
                       IG_ECONFIG,
                       "t.json: routes[0].batch.preferred_sizes[1]: must be in 1..max_size (8), "
                       "got 16");
    expect_merge_error("{\"routes\": [{\"match\": \"/x\", \"protocol\": \"oip-v2\", "
                       "\"batch\": {\"preferred_sizes\": [16, 8]}}]}",
                       IG_ECONFIG,
                       "t.json: routes[0].batch.preferred_sizes[1]: must be larger than the size "
                       "before it (ascending order), got 8 after 16");
    expect_merge_error("{\"routes\": [{\"match\": \"/x\", \"batch\": {\"max_size\": 8}}]}",
                       IG_ECONFIG,
                       "t.json: routes[0].batch: not allowed on a passthrough route (only "
                       "kserve-v1 and oip-v2 routes batch)");
    expect_merge_error("{\"routes\": [{\"match\": \"/x\", \"protocol\": \"grpc\"}]}", IG_ECONFIG,
                       "t.json: routes[0].protocol: must be one of passthrough, kserve-v1, "
                       "oip-v2, got the string 'grpc'");
    expect_merge_error("{\"routes\": [{\"match\": \"/x/{a\"}]}", IG_ECONFIG,
                       "t.json: routes[0].match: pattern '/x/{a': unclosed '{' at offset 3");
    expect_merge_error("{\"routes\": [{\"protocol\": \"oip-v2\"}]}", IG_ECONFIG,
                       "t.json: routes[0].match: required (a path pattern such as \"/*\")");
    expect_merge_error("{\"routes\": []}", IG_ECONFIG,
                       "t.json: routes: must contain at least one route (e.g. {\"match\": "
                       "\"/*\"})");
    expect_merge_error("{\"routes\": [{\"match\": \"/x\", \"queue_timeout_ms\": 0}]}", IG_ECONFIG,
                       "t.json: routes[0].queue_timeout_ms: must be an integer in 1..3600000, "
                       "got 0");
    expect_merge_error("{\"upstream\": {\"url\": \"https://127.0.0.1:8443\"}}", IG_ECONFIG,
                       "t.json: upstream.url: uses https://, but TLS to the model is not "
                       "supported (the model runs on loopback in the same pod): use http://, "
                       "got 'https://127.0.0.1:8443'");
    expect_merge_error("{\"upstream\": {\"url\": \"127.0.0.1:8081\"}}", IG_ECONFIG,
                       "t.json: upstream.url: must be an http:// URL: http://host[:port][/path], "
                       "got '127.0.0.1:8081'");
    expect_merge_error("{\"upstream\": {\"url\": \"http://h:0\"}}", IG_ECONFIG,
                       "t.json: upstream.url: has a port outside 1..65535, got 'http://h:0'");
    expect_merge_error("{\"listen\": \"8080\"}", IG_ECONFIG,
                       "t.json: listen: must be host:port or [v6]:port with a port in 0..65535, "
                       "got '8080'");
    expect_merge_error("{\"admin_listen\": \"[::1:9090\"}", IG_ECONFIG,
                       "t.json: admin_listen: must be host:port or [v6]:port with a port in "
                       "0..65535, got '[::1:9090'");
    expect_merge_error("{\"listen\": \"127.0.0.1:65536\"}", IG_ECONFIG,
                       "t.json: listen: must be host:port or [v6]:port with a port in 0..65535, "
                       "got '127.0.0.1:65536'");
    expect_merge_error("{\"upstream\": {\"ready_path\": \"health\"}}", IG_ECONFIG,
                       "t.json: upstream.ready_path: must be an absolute path starting with "
                       "'/', got 'health'");

    /* Zero is meaningful for these, and the edges are inclusive. */
    ig_config_t c;
    ig_config_init(&c);
    assert_int_equal(merge(&c, "{\"limits\": {\"max_queue\": 0}, \"drain\": {\"grace_ms\": 0},"
                               " \"upstream\": {\"max_concurrency\": 65535, "
                               "\"max_connections\": 65535},"
                               " \"listen\": \"[::1]:0\", \"admin_listen\": \"localhost:0\","
                               " \"routes\": [{\"match\": \"/x\", \"protocol\": \"oip-v2\","
                               " \"batch\": {\"max_delay_us\": 0, \"max_size\": 4096}}]}"),
                     0);
    assert_int_equal(c.limits.max_queue, 0);
    assert_int_equal(c.drain.grace_ms, 0);
    assert_int_equal(c.routes[0].batch.max_delay_us, 0);
    assert_int_equal(c.routes[0].batch.max_size, 4096);
    assert_int_equal(ig_config_validate(&c, err, sizeof err), 0);
    ig_config_dispose(&c);
}

static void test_cross_field_validation(void **state)
{
    (void)state;
    expect_validate_error("{\"listen\": \"127.0.0.1:8080\", \"admin_listen\": \"127.0.0.1:8080\"}",
                          "admin_listen: must differ from listen (both are on port 8080: "
                          "'127.0.0.1:8080' and '127.0.0.1:8080')");
    expect_validate_error("{\"listen\": \"0.0.0.0:7000\", \"admin_listen\": \"127.0.0.1:7000\"}",
                          "admin_listen: must differ from listen (both are on port 7000: "
                          "'0.0.0.0:7000' and '127.0.0.1:7000')");
    expect_validate_error("{\"upstream\": {\"max_concurrency\": 100}}",
                          "upstream.max_connections: must be >= upstream.max_concurrency (100), "
                          "got 64 (each concurrent model call needs its own connection)");

    /* Port 0 twice is fine (the kernel picks two ports), as are different hosts. */
    ig_config_t c;
    ig_config_init(&c);
    assert_int_equal(merge(&c, "{\"listen\": \"127.0.0.1:0\", \"admin_listen\": \"127.0.0.1:0\"}"),
                     0);
    assert_int_equal(ig_config_validate(&c, err, sizeof err), 0);
    assert_int_equal(
        merge(&c, "{\"listen\": \"127.0.0.1:80\", \"admin_listen\": \"127.0.0.2:80\"}"), 0);
    assert_int_equal(ig_config_validate(&c, err, sizeof err), 0);

    /* Validation also catches values set directly in the struct. */
    c.routes[0].batch.max_size = 0;
    assert_int_equal(ig_config_validate(&c, err, sizeof err), IG_ECONFIG);
    assert_string_equal(err, "routes[0].batch.max_size: must be an integer in 1..4096, got 0");
    c.routes[0].batch.max_size = 32;
    c.metrics.window_s = 0;
    assert_int_equal(ig_config_validate(&c, err, sizeof err), IG_ECONFIG);
    assert_string_equal(err, "metrics.window_s: must be an integer in 1..3600, got 0");
    ig_config_dispose(&c);
}

static void test_routes_replace(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    assert_int_equal(merge(&c, "{\"routes\": [{\"match\": \"/v2/models/{model}/infer\", "
                               "\"protocol\": \"oip-v2\", \"batch\": {\"max_size\": 8}}]}"),
                     0);
    assert_int_equal(c.nroutes, 1);
    assert_string_equal(c.routes[0].match, "/v2/models/{model}/infer");
    assert_int_equal(c.routes[0].protocol, IG_PROTO_OIP_V2);
    assert_int_equal(c.routes[0].batch.max_size, 8);
    /* Unset batch fields take the route defaults, not the replaced route's. */
    assert_int_equal(c.routes[0].batch.max_delay_us, 2000);
    assert_int_equal(c.routes[0].batch.n_preferred, 0);
    assert_int_equal(c.routes[0].queue_timeout_ms, 5000);

    /* A failing routes array leaves the previous routes in place. */
    assert_int_equal(merge(&c, "{\"routes\": [{\"match\": \"/a\"}, {\"match\": \"b\"}]}"),
                     IG_ECONFIG);
    assert_string_equal(err, "t.json: routes[1].match: pattern 'b' must start with '/'");
    assert_int_equal(c.nroutes, 1);
    assert_string_equal(c.routes[0].match, "/v2/models/{model}/infer");
    ig_config_dispose(&c);
}

static void test_invalid_json_location(void **state)
{
    (void)state;
    /* A trailing comma inside "upstream", on line 4. */
    expect_merge_error("{\n  \"listen\": \"127.0.0.1:1\",\n  \"upstream\": {\n"
                       "    \"max_concurrency\": 4,\n  }\n}\n",
                       IG_EPARSE, "t.json: invalid JSON at line 5, column 4");
    expect_merge_error("{\"listen\": \"127.0.0.1:1\",", IG_EPARSE,
                       "t.json: invalid JSON at line 1, column 25");
    expect_merge_error("{}\n{}", IG_EPARSE,
                       "t.json: invalid JSON at line 2, column 1: unexpected text after the "
                       "document");
    expect_merge_error("  \n ", IG_EPARSE, "t.json: invalid JSON: the document is empty");

    /* The file variant names the path, and a missing file is an I/O error. */
    ig_config_t c;
    ig_config_init(&c);
    const char *path = write_file("broken.json", "{\n\"listen\" \"x\"}");
    assert_int_equal(ig_config_merge_file(&c, path, err, sizeof err), IG_EPARSE);
    char want[700];
    snprintf(want, sizeof want, "%s: invalid JSON at line 2, column 10", path);
    assert_string_equal(err, want);
    assert_null(c.source);
    snprintf(want, sizeof want, "%s/missing.json", tmpdir);
    assert_int_equal(ig_config_merge_file(&c, want, err, sizeof err), IG_EIO);
    assert_non_null(strstr(err, "missing.json: cannot read the config file: No such file"));
    assert_int_equal(ig_config_merge_file(&c, tmpdir, err, sizeof err), IG_EIO);
    ig_config_dispose(&c);
}

/* Regression: Kubernetes injects INFERGATE_SERVICE_HOST, INFERGATE_PORT,
 * INFERGATE_PORT_8080_TCP… for a Service named "infergate"; those must not
 * stop the sidecar, while a misspelt setting still must. */
static void test_env_kubernetes_service_links_ignored(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    char *links[] = {"INFERGATE_SERVICE_HOST=10.0.0.7",
                     "INFERGATE_SERVICE_PORT=8080",
                     "INFERGATE_SERVICE_PORT_HTTP=8080",
                     "INFERGATE_PORT=tcp://10.0.0.7:8080",
                     "INFERGATE_PORT_8080_TCP=tcp://10.0.0.7:8080",
                     "INFERGATE_PORT_8080_TCP_ADDR=10.0.0.7",
                     "INFERGATE_UPSTREAM_MAX_CONCURRENCY=3",
                     NULL};
    assert_int_equal(ig_config_apply_env(&c, links, err, sizeof err), 0);
    assert_int_equal(c.upstream.max_concurrency, 3);
    char *typo[] = {"INFERGATE_UPSTREAM_MAX_CONCURENCY=3", NULL};
    assert_int_equal(ig_config_apply_env(&c, typo, err, sizeof err), IG_ECONFIG);
    assert_non_null(strstr(err, "INFERGATE_UPSTREAM_MAX_CONCURENCY"));
    char *portish[] = {"INFERGATE_PORTS=1", NULL};
    assert_int_equal(ig_config_apply_env(&c, portish, err, sizeof err), IG_ECONFIG);
    ig_config_dispose(&c);
}

static void test_env(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    char *env[] = {"PATH=/usr/bin",
                   "INFERGATE_CONFIG=/ignored/here",
                   "INFERGATE_LISTEN=127.0.0.1:7070",
                   "INFERGATE_UPSTREAM_MAX_CONCURRENCY=12",
                   "INFERGATE_LIMITS_MAX_QUEUE=0",
                   "INFERGATE_DRAIN_GRACE_MS=250",
                   "INFERGATE_LOG_LEVEL=debug",
                   "INFERGATE_LOG_ACCESS_LOG=0",
                   "INFERGATE_METRICS_WINDOW_S=60",
                   "INFERGATE_ROUTES=[{\"match\":\"/*\"}]",
                   "INFERGATE_BOOTSTRAP={\"name\":\"svc\"}",
                   NULL};
    assert_int_equal(ig_config_apply_env(&c, env, err, sizeof err), 0);
    assert_string_equal(c.listen, "127.0.0.1:7070");
    assert_int_equal(c.upstream.max_concurrency, 12);
    assert_int_equal(c.limits.max_queue, 0);
    assert_int_equal(c.drain.grace_ms, 250);
    assert_int_equal(c.log.level, IG_LOG_DEBUG);
    assert_false(c.log.access_log);
    assert_int_equal(c.metrics.window_s, 60);
    assert_int_equal(c.nroutes, 1);
    assert_string_equal(cJSON_GetObjectItem(c.bootstrap, "name")->valuestring, "svc");

    char *t[] = {"INFERGATE_LOG_ACCESS_LOG=true", NULL};
    assert_int_equal(ig_config_apply_env(&c, t, err, sizeof err), 0);
    assert_true(c.log.access_log);
    assert_int_equal(ig_config_apply_env(&c, NULL, err, sizeof err), 0);
    ig_config_dispose(&c);
}

static void expect_env_error(const char *var, const char *want)
{
    ig_config_t c;
    ig_config_init(&c);
    char *env[] = {(char *)var, NULL};
    int rc = ig_config_apply_env(&c, env, err, sizeof err);
    if (rc == 0 || strcmp(err, want) != 0)
        fail_msg("env %s\n  got  %d '%s'\n  want '%s'", var, rc, err, want);
    ig_config_dispose(&c);
}

static void test_bad_env(void **state)
{
    (void)state;
    expect_env_error("INFERGATE_UPSTREAM_MAX_CONCURRENCY=abc",
                     "env INFERGATE_UPSTREAM_MAX_CONCURRENCY: must be an integer in 1..65535, "
                     "got 'abc'");
    expect_env_error("INFERGATE_UPSTREAM_MAX_CONCURRENCY= 8",
                     "env INFERGATE_UPSTREAM_MAX_CONCURRENCY: must be an integer in 1..65535, "
                     "got ' 8'");
    expect_env_error("INFERGATE_LIMITS_MAX_QUEUE=99999999999999999999999",
                     "env INFERGATE_LIMITS_MAX_QUEUE: must be an integer in 0..10000000, "
                     "got '99999999999999999999999'");
    expect_env_error("INFERGATE_LOG_ACCESS_LOG=yes",
                     "env INFERGATE_LOG_ACCESS_LOG: must be true, false, 1 or 0, got 'yes'");
    expect_env_error("INFERGATE_UPSTREAM_URL=https://model:443",
                     "env INFERGATE_UPSTREAM_URL: uses https://, but TLS to the model is not "
                     "supported (the model runs on loopback in the same pod): use http://, "
                     "got 'https://model:443'");
    expect_env_error("INFERGATE_MAX_CONCURRENCY=4",
                     "env INFERGATE_MAX_CONCURRENCY: not a known setting (a variable is "
                     "INFERGATE_ plus the key path in capitals, e.g. "
                     "INFERGATE_UPSTREAM_MAX_CONCURRENCY)");
    expect_env_error("INFERGATE_ROUTES=[{\"match\": \"/a\",}]",
                     "env INFERGATE_ROUTES: invalid JSON at line 1, column 18");
    expect_env_error("INFERGATE_ROUTES=[{\"match\": \"/a\", \"protocol\": \"v3\"}]",
                     "env INFERGATE_ROUTES: routes[0].protocol: must be one of passthrough, "
                     "kserve-v1, oip-v2, got the string 'v3'");
}

/* Runs ig_config_from_args over a fresh default config. */
static int from_args(ig_config_t *c, char **argv, char **envp)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    ig_config_init(c);
    err[0] = '\0';
    return ig_config_from_args(c, argc, argv, envp, err, sizeof err);
}

static void test_precedence(void **state)
{
    (void)state;
    ig_config_t c;
    const char *path = write_file("prec.json", "{\"upstream\": {\"max_concurrency\": 8,"
                                               " \"timeout_ms\": 1234},"
                                               " \"limits\": {\"max_queue\": 5}}");
    char cfgvar[600];
    snprintf(cfgvar, sizeof cfgvar, "INFERGATE_CONFIG=%s", path);

    /* File over defaults, via INFERGATE_CONFIG. */
    char *argv0[] = {"serve", NULL};
    char *env0[] = {cfgvar, NULL};
    assert_int_equal(from_args(&c, argv0, env0), 0);
    assert_int_equal(c.upstream.max_concurrency, 8);
    assert_int_equal(c.upstream.timeout_ms, 1234);
    assert_string_equal(c.source, path);
    ig_config_dispose(&c);

    /* Env over file. */
    char *env1[] = {cfgvar, "INFERGATE_UPSTREAM_MAX_CONCURRENCY=9", NULL};
    assert_int_equal(from_args(&c, argv0, env1), 0);
    assert_int_equal(c.upstream.max_concurrency, 9);
    assert_int_equal(c.upstream.timeout_ms, 1234);
    assert_int_equal(c.limits.max_queue, 5);
    ig_config_dispose(&c);

    /* Flags over env, in both spellings; -c beats INFERGATE_CONFIG. */
    const char *other = write_file("other.json", "{\"limits\": {\"max_queue\": 6}}");
    char *argv2[] = {"serve",
                     "-c",
                     (char *)other,
                     "--max-concurrency",
                     "10",
                     "--max-queue=7",
                     "--log-level",
                     "warn",
                     "--listen",
                     "127.0.0.1:1111",
                     "--admin-listen=[::1]:2222",
                     "--upstream",
                     "http://[::1]:8000/base",
                     NULL};
    assert_int_equal(from_args(&c, argv2, env1), 0);
    assert_int_equal(c.upstream.max_concurrency, 10);
    assert_int_equal(c.limits.max_queue, 7);
    assert_int_equal(c.upstream.timeout_ms, 30000); /* prec.json was not read */
    assert_int_equal(c.log.level, IG_LOG_WARN);
    assert_string_equal(c.listen, "127.0.0.1:1111");
    assert_string_equal(c.admin_listen, "[::1]:2222");
    assert_string_equal(c.upstream.url, "http://[::1]:8000/base");
    assert_string_equal(c.source, other);
    ig_config_dispose(&c);
}

static void test_set_flag(void **state)
{
    (void)state;
    ig_config_t c;
    char *argv[] = {"serve",
                    "--set",
                    "upstream.timeout_ms=5000",
                    "--set",
                    "routes=[{\"match\":\"/v2/models/{model}/infer\",\"protocol\":\"oip-v2\"}]",
                    "--set=log.access_log=false",
                    "--set",
                    "upstream.max_connections=2",
                    "--set",
                    "upstream.max_concurrency=2",
                    NULL};
    char *env[] = {"INFERGATE_UPSTREAM_TIMEOUT_MS=9", NULL};
    assert_int_equal(from_args(&c, argv, env), 0);
    assert_int_equal(c.upstream.timeout_ms, 5000);
    assert_int_equal(c.nroutes, 1);
    assert_int_equal(c.routes[0].protocol, IG_PROTO_OIP_V2);
    assert_false(c.log.access_log);
    assert_int_equal(c.upstream.max_connections, 2);
    ig_config_dispose(&c);

    /* The public single-key setter. */
    ig_config_init(&c);
    assert_int_equal(ig_config_set(&c, "drain.timeout_ms", "100", err, sizeof err), 0);
    assert_int_equal(c.drain.timeout_ms, 100);
    assert_int_equal(ig_config_set(&c, "drain.timeout_ms", "0", err, sizeof err), IG_ECONFIG);
    assert_string_equal(err, "drain.timeout_ms: must be an integer in 1..3600000, got '0'");
    assert_int_equal(ig_config_set(&c, "drain.timeot_ms", "1", err, sizeof err), IG_ECONFIG);
    assert_string_equal(err, "drain.timeot_ms: unknown key drain.timeot_ms (did you mean "
                             "drain.timeout_ms?)");
    ig_config_dispose(&c);
}

static void expect_args_error(char **argv, int code, const char *want)
{
    ig_config_t c;
    char *env[] = {NULL};
    int rc = from_args(&c, argv, env);
    if (rc != code || strcmp(err, want) != 0)
        fail_msg("args\n  got  %d '%s'\n  want %d '%s'", rc, err, code, want);
    ig_config_dispose(&c);
}

static void test_bad_flags(void **state)
{
    (void)state;
    char *a1[] = {"serve", "--foo", NULL};
    expect_args_error(a1, IG_EINVAL, "unknown flag --foo (see --help)");
    char *a2[] = {"serve", "--max-concurrency", "abc", NULL};
    expect_args_error(a2, IG_ECONFIG,
                      "--max-concurrency: must be an integer in 1..65535, got 'abc'");
    char *a3[] = {"serve", "--listen", NULL};
    expect_args_error(a3, IG_EINVAL, "--listen: requires a value");
    char *a4[] = {"serve", "extra", NULL};
    expect_args_error(a4, IG_EINVAL, "unexpected argument 'extra' (see --help)");
    char *a5[] = {"serve", "--set", "upstream.timeout_ms", NULL};
    expect_args_error(a5, IG_EINVAL, "--set: expected key.path=value, got 'upstream.timeout_ms'");
    char *a6[] = {"serve", "--set", "upstream.max_concurency=3", NULL};
    expect_args_error(a6, IG_ECONFIG,
                      "--set upstream.max_concurency: unknown key upstream.max_concurency "
                      "(did you mean upstream.max_concurrency?)");
    char *a7[] = {"serve", "--log-level", "chatty", NULL};
    expect_args_error(a7, IG_ECONFIG,
                      "--log-level: must be one of debug, info, warn, error, off, got 'chatty'");
    char *a8[] = {"serve", "--upstream", "https://m", NULL};
    expect_args_error(a8, IG_ECONFIG,
                      "--upstream: uses https://, but TLS to the model is not supported (the "
                      "model runs on loopback in the same pod): use http://, got 'https://m'");
    /* Unknown flags are reported before any file is read. */
    char *a9[] = {"serve", "-c", "/nonexistent/x.json", "--bogus", NULL};
    expect_args_error(a9, IG_EINVAL, "unknown flag --bogus (see --help)");
    char *a10[] = {"serve", "-c", "/nonexistent/x.json", NULL};
    expect_args_error(a10, IG_EIO,
                      "/nonexistent/x.json: cannot read the config file: No such file or "
                      "directory");
    /* Validation runs at the end. */
    char *a11[] = {"serve", "--listen", "127.0.0.1:9000", "--admin-listen", "127.0.0.1:9000", NULL};
    expect_args_error(a11, IG_ECONFIG,
                      "admin_listen: must differ from listen (both are on port 9000: "
                      "'127.0.0.1:9000' and '127.0.0.1:9000')");
}

static void test_help(void **state)
{
    (void)state;
    ig_config_t c;
    char *argv[] = {"check-config", "--max-concurrency", "abc", "-h", NULL};
    char *env[] = {NULL};
    /* Help wins over everything else on the line and reads nothing. */
    assert_int_equal(from_args(&c, argv, env), IG_EAGAIN);
    ig_config_dispose(&c);
    char *argv2[] = {"serve", "--help", NULL};
    assert_int_equal(from_args(&c, argv2, env), IG_EAGAIN);
    ig_config_dispose(&c);
}

/* to_json then merge_json gives back the same configuration, every key. */
static void test_to_json_round_trip(void **state)
{
    (void)state;
    ig_config_t a, b;
    ig_config_init(&a);
    assert_int_equal(merge(&a, "{\"listen\": \"[::1]:0\", \"admin_listen\": \"127.0.0.1:0\","
                               " \"upstream\": {\"url\": \"http://127.0.0.1:9/m\","
                               " \"max_concurrency\": 3, \"max_connections\": 5,"
                               " \"connect_timeout_ms\": 11, \"timeout_ms\": 12,"
                               " \"ready_path\": \"/ready\", \"probe_interval_ms\": 13},"
                               " \"limits\": {\"max_queue\": 0, \"max_body_bytes\": 14,"
                               " \"max_header_bytes\": 1500, \"header_timeout_ms\": 16,"
                               " \"idle_timeout_ms\": 17, \"max_connections\": 18},"
                               " \"routes\": [{\"match\": \"/v1/models/{m}:predict\","
                               " \"protocol\": \"kserve-v1\", \"batch\": {\"max_size\": 9,"
                               " \"max_delay_us\": 0, \"preferred_sizes\": [3, 9]},"
                               " \"queue_timeout_ms\": 19},"
                               " {\"match\": \"/*\", \"queue_timeout_ms\": 20}],"
                               " \"drain\": {\"grace_ms\": 0, \"timeout_ms\": 21},"
                               " \"metrics\": {\"window_s\": 22},"
                               " \"log\": {\"level\": \"error\", \"access_log\": false},"
                               " \"bootstrap\": {\"name\": \"svc\", \"replicas\": {\"min\": 2}}}"),
                     0);
    char *j1 = ig_config_to_json(&a, false);
    ig_config_init(&b);
    assert_int_equal(ig_config_merge_json(&b, j1, strlen(j1), "dump", err, sizeof err), 0);
    assert_int_equal(ig_config_validate(&b, err, sizeof err), 0);
    char *j2 = ig_config_to_json(&b, false);
    assert_string_equal(j1, j2);

    assert_string_equal(b.listen, "[::1]:0");
    assert_string_equal(b.upstream.ready_path, "/ready");
    assert_int_equal(b.limits.max_header_bytes, 1500);
    assert_int_equal(b.limits.max_queue, 0);
    assert_int_equal(b.nroutes, 2);
    assert_int_equal(b.routes[0].batch.n_preferred, 2);
    assert_int_equal(b.routes[0].batch.preferred_sizes[1], 9);
    assert_int_equal(b.routes[0].batch.max_delay_us, 0);
    assert_int_equal(b.routes[1].queue_timeout_ms, 20);
    assert_int_equal(b.log.level, IG_LOG_ERROR);
    assert_int_equal(b.metrics.window_s, 22);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(b.bootstrap, "replicas"), "min")->valueint, 2);

    /* Every key is present in the output, including defaults. */
    cJSON *doc = cJSON_Parse(j1);
    assert_non_null(doc);
    assert_true(
        cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "limits"), "idle_timeout_ms")));
    assert_true(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "log"), "access_log")));
    cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "routes"), 1);
    assert_string_equal(cJSON_GetObjectItem(r1, "protocol")->valuestring, "passthrough");
    assert_null(cJSON_GetObjectItem(r1, "batch")); /* would be rejected on input */
    cJSON_Delete(doc);
    free(j1);
    free(j2);
    ig_config_dispose(&b);

    /* The defaults round-trip too. */
    ig_config_dispose(&a);
    ig_config_init(&a);
    j1 = ig_config_to_json(&a, true);
    ig_config_init(&b);
    assert_int_equal(ig_config_merge_json(&b, j1, strlen(j1), "dump", err, sizeof err), 0);
    j2 = ig_config_to_json(&b, true);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    ig_config_dispose(&a);
    ig_config_dispose(&b);
}

static void test_redaction(void **state)
{
    (void)state;
    ig_config_t c;
    ig_config_init(&c);
    assert_int_equal(
        merge(&c, "{\"upstream\": {\"url\": \"http://user:hunter2@127.0.0.1:8081/p\"},"
                  " \"bootstrap\": {\"name\": \"svc\", \"api_token\": \"tok-123\","
                  " \"kubernetes\": {\"Client_Secret\": \"s3cr3t\", \"context\": null,"
                  " \"users\": [{\"password\": \"pw\", \"user\": \"u\"}]},"
                  " \"aws\": {\"access_key_id\": \"AKIAEXAMPLE\", \"region\": \"us-west-2\","
                  " \"session_token\": null},"
                  " \"endpoint\": \"http://admin:pw2@mesh.local/\"}}"),
        0);
    assert_int_equal(ig_config_validate(&c, err, sizeof err), 0);

    char *red = ig_config_to_json(&c, true);
    const char *secrets[] = {"hunter2",     "tok-123", "s3cr3t", "\"pw\"",
                             "AKIAEXAMPLE", "pw2",     "user:"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strstr(red, secrets[i]))
            fail_msg("redacted output contains %s:\n%s", secrets[i], red);
    }
    cJSON *doc = cJSON_Parse(red);
    cJSON *up = cJSON_GetObjectItem(doc, "upstream");
    assert_string_equal(cJSON_GetObjectItem(up, "url")->valuestring,
                        "http://<redacted>@127.0.0.1:8081/p");
    cJSON *bs = cJSON_GetObjectItem(doc, "bootstrap");
    assert_string_equal(cJSON_GetObjectItem(bs, "name")->valuestring, "svc");
    assert_string_equal(cJSON_GetObjectItem(bs, "api_token")->valuestring, "<redacted>");
    assert_string_equal(cJSON_GetObjectItem(bs, "endpoint")->valuestring,
                        "http://<redacted>@mesh.local/");
    cJSON *aws = cJSON_GetObjectItem(bs, "aws");
    assert_string_equal(cJSON_GetObjectItem(aws, "access_key_id")->valuestring, "<redacted>");
    assert_string_equal(cJSON_GetObjectItem(aws, "region")->valuestring, "us-west-2");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(aws, "session_token"))); /* nothing to hide */
    cJSON *user =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(bs, "kubernetes"), "users"), 0);
    assert_string_equal(cJSON_GetObjectItem(user, "password")->valuestring, "<redacted>");
    assert_string_equal(cJSON_GetObjectItem(user, "user")->valuestring, "u");
    cJSON_Delete(doc);

    /* The redacted output is still a valid config file. */
    ig_config_t back;
    ig_config_init(&back);
    assert_int_equal(ig_config_merge_json(&back, red, strlen(red), "red", err, sizeof err), 0);
    assert_int_equal(ig_config_validate(&back, err, sizeof err), 0);
    ig_config_dispose(&back);
    free(red);

    /* Without redaction everything is there, and the config itself is untouched. */
    char *raw = ig_config_to_json(&c, false);
    assert_non_null(strstr(raw, "hunter2"));
    assert_non_null(strstr(raw, "tok-123"));
    assert_non_null(strstr(raw, "AKIAEXAMPLE"));
    free(raw);
    ig_config_dispose(&c);
}

static void test_examples_validate(void **state)
{
    (void)state;
    const char *dir = getenv("IG_EXAMPLES_DIR");
    if (!dir)
        fail_msg("IG_EXAMPLES_DIR is not set (meson sets it to the examples directory)");
    const char *names[] = {"demo.json", "kserve-v1.json", "oip-v2.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        ig_config_t c;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ig_config_init(&c);
        if (ig_config_merge_file(&c, path, err, sizeof err) != 0 ||
            ig_config_validate(&c, err, sizeof err) != 0)
            fail_msg("%s", err);
        if (i == 0) {
            /* demo.json is the documented demo: loopback ports and the default routes. */
            assert_string_equal(c.listen, "127.0.0.1:8080");
            assert_string_equal(c.admin_listen, "127.0.0.1:9090");
            assert_string_equal(c.upstream.url, "http://127.0.0.1:8081");
            ig_config_t d;
            ig_config_init(&d);
            assert_int_equal(c.nroutes, d.nroutes);
            for (size_t r = 0; r < d.nroutes; r++) {
                assert_string_equal(c.routes[r].match, d.routes[r].match);
                assert_int_equal(c.routes[r].protocol, d.routes[r].protocol);
                assert_memory_equal(&c.routes[r].batch, &d.routes[r].batch,
                                    sizeof d.routes[r].batch);
            }
            ig_config_dispose(&d);
        }
        ig_config_dispose(&c);
    }
}

static void test_protocol_names(void **state)
{
    (void)state;
    assert_string_equal(ig_protocol_name(IG_PROTO_PASSTHROUGH), "passthrough");
    assert_string_equal(ig_protocol_name(IG_PROTO_KSERVE_V1), "kserve-v1");
    assert_string_equal(ig_protocol_name(IG_PROTO_OIP_V2), "oip-v2");
    assert_string_equal(ig_protocol_name((ig_protocol_t)7), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_merges_over_defaults),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_cross_field_validation),
        cmocka_unit_test(test_routes_replace),
        cmocka_unit_test(test_invalid_json_location),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_kubernetes_service_links_ignored),
        cmocka_unit_test(test_bad_env),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_set_flag),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_examples_validate),
        cmocka_unit_test(test_protocol_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
