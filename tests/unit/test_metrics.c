/*
 * test_metrics.c: unit tests of the metrics module through metrics.h.
 *
 * Every timestamp is passed explicitly, so the window arithmetic is
 * deterministic: no test sleeps or reads a clock. The last test feeds the
 * rendering to `promtool check metrics` when promtool is installed and is
 * skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/core/metrics.h"

extern char **environ;

#define S(x) ((uint64_t)(x)*1000000u)
#define MS(x) ((uint64_t)(x)*1000u)
/* An arbitrary, second-aligned start so that slot arithmetic is exercised
 * away from zero. */
#define T0 S(1700000000)

static const char *const two_routes[] = {"/v1/models/{model}:predict", "/*"};

/* Renders the exposition into a fresh buffer (caller disposes). */
static ig_buf_t render(ig_metrics_t *m, uint64_t now_us)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    assert_int_equal(ig_metrics_render_prometheus(m, &b, now_us), 0);
    assert_non_null(b.base);
    return b;
}

/* Whether `text` holds `line` as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    }
    return 0;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- rendering ---\n%s", line, text);
}

static void expect_no_line_containing(const char *text, const char *part)
{
    if (strstr(text, part))
        fail_msg("unexpected text: %s\n--- rendering ---\n%s", part, text);
}

static cJSON *autoscale(ig_metrics_t *m, uint64_t now_us)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    assert_int_equal(ig_metrics_render_autoscale(m, &b, now_us), 0);
    cJSON *j = cJSON_Parse(b.base);
    if (!j)
        fail_msg("autoscale JSON does not parse: %s", b.base);
    ig_buf_dispose(&b);
    return j;
}

static double json_num(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v))
        fail_msg("autoscale: %s missing or not a number", key);
    return v->valuedouble;
}

static void test_reason_names_round_trip(void **state)
{
    (void)state;
    for (int r = 0; r < IG_REASON__COUNT; r++) {
        const char *name = ig_reason_name((ig_reason_t)r);
        assert_int_equal(ig_reason_parse(name, strlen(name)), r);
    }
    assert_string_equal(ig_reason_name(IG_REASON_QUEUE_FULL), "queue_full");
    assert_string_equal(ig_reason_name(IG_REASON_DEADLINE_UNMEETABLE), "deadline_unmeetable");
    assert_int_equal(ig_reason_parse("deadline", 8), IG_REASON_DEADLINE);
    /* A prefix of a longer name, a longer string, and garbage are unknown. */
    assert_int_equal(ig_reason_parse("deadline_unmeetable", 8), IG_REASON_DEADLINE);
    assert_int_equal(ig_reason_parse("queue_ful", 9), IG_REASON__COUNT);
    assert_int_equal(ig_reason_parse("queue_fullx", 11), IG_REASON__COUNT);
    assert_int_equal(ig_reason_parse("", 0), IG_REASON__COUNT);
    assert_int_equal(ig_reason_parse(NULL, 3), IG_REASON__COUNT);
    assert_string_equal(ig_reason_name(IG_REASON__COUNT), "unknown");
}

/* The rejection table (net/reason.h): what the rows promise. */
static void test_reason_table(void **state)
{
    (void)state;
    for (int r = 0; r < IG_REASON__COUNT; r++) {
        int st = ig_reason_status((ig_reason_t)r);
        unsigned fl = ig_reason_flags((ig_reason_t)r);
        assert_true(st >= 400 && st <= 599);
        for (int q = 0; q < r; q++) /* names are unique */
            assert_string_not_equal(ig_reason_name((ig_reason_t)q), ig_reason_name((ig_reason_t)r));
        if (fl & IG_RF_UPSTREAM) /* the model failed: a gateway status, never a 4xx */
            assert_true(st == 502 || st == 504);
        if (fl & IG_RF_SERVER) /* the server closes after answering what it could not parse */
            assert_true(fl & IG_RF_CLOSE);
    }
    assert_int_equal(ig_reason_status(IG_REASON_HEADERS_TOO_LARGE), 431);
    assert_int_equal(ig_reason_status(IG_REASON_QUEUE_FULL), 503);
    assert_true(ig_reason_flags(IG_REASON_QUEUE_FULL) & IG_RF_RETRY_AFTER);
    assert_true(ig_reason_flags(IG_REASON_DRAINING) & IG_RF_CLOSE);
    assert_int_equal(ig_reason_status(IG_REASON__COUNT), 500);
    assert_int_equal(ig_reason_flags(IG_REASON__COUNT), 0);
    assert_int_equal(ig_reason_of_upstream_error(IG_ETIMEDOUT), IG_REASON_UPSTREAM_TIMEOUT);
    assert_int_equal(ig_reason_of_upstream_error(IG_EPROTO), IG_REASON_BAD_RESPONSE);
    assert_int_equal(ig_reason_of_upstream_error(IG_ECANCELED), IG_REASON_DRAINING);
    assert_int_equal(ig_reason_of_upstream_error(IG_ECONNREFUSED), IG_REASON_UPSTREAM_UNAVAILABLE);
}

static void test_counters_and_labels(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    ig_metrics_request_done(m, 0, 200, MS(3), T0);
    ig_metrics_request_done(m, 0, 200, MS(4), T0);
    ig_metrics_request_done(m, 0, 503, MS(1), T0);
    ig_metrics_request_done(m, 1, 404, MS(1), T0);
    for (int i = 0; i < 3; i++)
        ig_metrics_rejected(m, 0, IG_REASON_QUEUE_FULL);
    ig_metrics_rejected(m, 1, IG_REASON_BODY_TOO_LARGE);
    ig_metrics_rejected(m, 1, IG_REASON__COUNT); /* ignored, no crash */
    ig_metrics_upstream_error(m, IG_REASON_UPSTREAM_TIMEOUT);
    ig_metrics_upstream_error(m, IG_REASON_UPSTREAM_TIMEOUT);

    ig_buf_t b = render(m, T0);
    expect_line(b.base,
                "infergate_requests_total{route=\"/v1/models/{model}:predict\",code=\"200\"} 2");
    expect_line(b.base,
                "infergate_requests_total{route=\"/v1/models/{model}:predict\",code=\"503\"} 1");
    expect_line(b.base, "infergate_requests_total{route=\"/*\",code=\"404\"} 1");
    expect_no_line_containing(b.base, "code=\"201\"");
    expect_line(b.base, "infergate_rejected_total{route=\"/v1/models/{model}:predict\","
                        "reason=\"queue_full\"} 3");
    expect_line(b.base, "infergate_rejected_total{route=\"/*\",reason=\"body_too_large\"} 1");
    expect_line(b.base, "infergate_upstream_errors_total{reason=\"upstream_timeout\"} 2");
    /* The upstream reasons are present from the start, zero included. */
    expect_line(b.base, "infergate_upstream_errors_total{reason=\"upstream_unavailable\"} 0");
    expect_line(b.base, "infergate_upstream_errors_total{reason=\"bad_response\"} 0");
    /* No series for route="none" until it is used. */
    expect_no_line_containing(b.base, "route=\"none\"");
    ig_buf_dispose(&b);

    ig_metrics_request_done(m, IG_METRICS_NO_ROUTE, 404, MS(1), T0);
    ig_metrics_rejected(m, IG_METRICS_NO_ROUTE, IG_REASON_NO_ROUTE);
    /* An index past the table is a caller bug: counted under "none". */
    ig_metrics_request_done(m, 7, 404, MS(1), T0);
    /* A status outside 100..599 is counted, not dropped. */
    ig_metrics_request_done(m, 1, 42, MS(1), T0);
    b = render(m, T0);
    expect_line(b.base, "infergate_requests_total{route=\"none\",code=\"404\"} 2");
    expect_line(b.base, "infergate_rejected_total{route=\"none\",reason=\"no_route\"} 1");
    expect_line(b.base, "infergate_request_duration_seconds_count{route=\"none\"} 2");
    expect_line(b.base, "infergate_queue_depth{route=\"none\"} 0");
    expect_line(b.base, "infergate_requests_total{route=\"/*\",code=\"other\"} 1");
    ig_buf_dispose(&b);
    ig_metrics_free(m);
}

/* Parses the `le` buckets of one histogram series from the rendering and
 * checks they never decrease; returns how many there were. */
static int check_cumulative(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    unsigned long long prev = 0;
    int seen = 0;
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p += n) {
        const char *v = strchr(p + n, ' ');
        assert_non_null(v);
        unsigned long long c = strtoull(v + 1, NULL, 10);
        assert_true(c >= prev);
        prev = c;
        seen++;
    }
    return seen;
}

static void test_histogram_buckets_cumulative(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    /* 500 us sits exactly on the first bound and belongs to it (le means <=). */
    const uint64_t durs[] = {300, 500, 700, 3000, S(20)};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++)
        ig_metrics_request_done(m, 1, 200, durs[i], T0);
    const uint32_t rows[] = {1, 3, 32, 1000};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ig_metrics_upstream_call(m, 1, MS(10), rows[i], 1, T0);
    ig_metrics_queue_wait(m, 1, MS(2));

    ig_buf_t b = render(m, T0);
    const char *h = "infergate_request_duration_seconds";
    char line[256];
    const struct {
        const char *le;
        int count;
    } want[] = {{"0.0005", 2}, {"0.001", 3}, {"0.0025", 3}, {"0.005", 4}, {"0.01", 4},
                {"0.025", 4},  {"0.05", 4},  {"0.1", 4},    {"0.25", 4},  {"0.5", 4},
                {"1", 4},      {"2.5", 4},   {"5", 4},      {"10", 4},    {"+Inf", 5}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(line, sizeof(line), "%s_bucket{route=\"/*\",le=\"%s\"} %d", h, want[i].le,
                 want[i].count);
        expect_line(b.base, line);
    }
    expect_line(b.base, "infergate_request_duration_seconds_sum{route=\"/*\"} 20.004500");
    expect_line(b.base, "infergate_request_duration_seconds_count{route=\"/*\"} 5");
    assert_int_equal(
        check_cumulative(b.base, "infergate_request_duration_seconds_bucket{route=\"/*\","), 15);

    const struct {
        const char *le;
        int count;
    } bw[] = {{"1", 1},  {"2", 1},   {"4", 2},   {"8", 2},   {"16", 2},  {"32", 3},
              {"64", 3}, {"128", 3}, {"256", 3}, {"512", 3}, {"+Inf", 4}};
    for (size_t i = 0; i < sizeof(bw) / sizeof(bw[0]); i++) {
        snprintf(line, sizeof(line), "infergate_batch_size_bucket{route=\"/*\",le=\"%s\"} %d",
                 bw[i].le, bw[i].count);
        expect_line(b.base, line);
    }
    expect_line(b.base, "infergate_batch_size_sum{route=\"/*\"} 1036");
    expect_line(b.base, "infergate_batch_size_count{route=\"/*\"} 4");
    assert_int_equal(check_cumulative(b.base, "infergate_batch_size_bucket{route=\"/*\","), 11);

    expect_line(b.base, "infergate_upstream_duration_seconds_bucket{route=\"/*\",le=\"0.005\"} 0");
    expect_line(b.base, "infergate_upstream_duration_seconds_bucket{route=\"/*\",le=\"0.01\"} 4");
    expect_line(b.base, "infergate_upstream_duration_seconds_sum{route=\"/*\"} 0.040000");
    expect_line(b.base, "infergate_queue_wait_seconds_bucket{route=\"/*\",le=\"0.001\"} 0");
    expect_line(b.base, "infergate_queue_wait_seconds_bucket{route=\"/*\",le=\"0.0025\"} 1");
    expect_line(b.base, "infergate_queue_wait_seconds_count{route=\"/*\"} 1");
    /* The other route exists, so its (empty) series are there too. */
    expect_line(b.base, "infergate_request_duration_seconds_bucket{route=\"/v1/models/{model}:"
                        "predict\",le=\"+Inf\"} 0");
    expect_line(b.base, "infergate_batch_size_count{route=\"/v1/models/{model}:predict\"} 0");
    ig_buf_dispose(&b);
    ig_metrics_free(m);
}

static void test_help_and_type_for_every_family(void **state)
{
    (void)state;
    static const char *const fam[][2] = {
        {"infergate_requests_total", "counter"},
        {"infergate_request_duration_seconds", "histogram"},
        {"infergate_queue_wait_seconds", "histogram"},
        {"infergate_upstream_duration_seconds", "histogram"},
        {"infergate_batch_size", "histogram"},
        {"infergate_queue_depth", "gauge"},
        {"infergate_inflight_requests", "gauge"},
        {"infergate_upstream_inflight", "gauge"},
        {"infergate_rejected_total", "counter"},
        {"infergate_upstream_errors_total", "counter"},
        {"infergate_load_factor", "gauge"},
        {"infergate_ready", "gauge"},
    };
    /* No routes and no samples at all: the families are still declared. */
    ig_metrics_t *m = ig_metrics_new(0, NULL, 30, 4);
    ig_buf_t b = render(m, T0);
    char line[160];
    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s %s", fam[i][0], fam[i][1]);
        expect_line(b.base, line);
        snprintf(line, sizeof(line), "# HELP %s ", fam[i][0]);
        assert_non_null(strstr(b.base, line));
    }
    expect_line(b.base, "infergate_load_factor 0");
    expect_line(b.base, "infergate_ready 0");
    expect_line(b.base, "infergate_inflight_requests 0");
    ig_buf_dispose(&b);
    ig_metrics_free(m);
}

/* 100 arrivals over 10 s, each holding a slot 40 ms, max_concurrency 4:
 * 10/s * 0.04 s / 4 = 0.1. */
static void test_load_factor_arithmetic(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 10, 4);
    ig_metrics_start(m, T0);
    for (int i = 0; i < 100; i++) {
        uint64_t t = T0 + MS(100) * (uint64_t)i;
        ig_metrics_arrival(m, 0, t);
        ig_metrics_upstream_call(m, 0, MS(40), 1, 1, t + MS(40));
    }
    /* The last moment of the first window: all 100 arrivals, 10 s elapsed. */
    double lf = ig_metrics_load_factor(m, T0 + S(10) - 1);
    assert_float_equal(lf, 0.1, 1e-6);

    /* The rendering and the JSON show the same number. */
    ig_buf_t b = render(m, T0 + S(10) - 1);
    assert_non_null(strstr(b.base, "\ninfergate_load_factor 0.100000"));
    ig_buf_dispose(&b);
    cJSON *j = autoscale(m, T0 + S(10) - 1);
    assert_float_equal(json_num(j, "load_factor"), 0.1, 1e-6);
    assert_float_equal(json_num(j, "arrival_rate"), 10.0, 1e-5);
    cJSON_Delete(j);

    /* One second later the first second has left the window: 90 arrivals
     * over the 9 whole seconds the window now covers, still 10/s. */
    lf = ig_metrics_load_factor(m, T0 + S(10));
    assert_float_equal(lf, 0.1, 1e-9);
    ig_metrics_free(m);
}

/* A batched call that holds a slot for H with R requests gives each of them
 * H/R: 20 arrivals/s, calls of 4 requests holding 80 ms each (20 ms per
 * request), max_concurrency 2: 20 * 0.02 / 2 = 0.2. */
static void test_load_factor_batched_calls(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 10, 2);
    ig_metrics_start(m, T0);
    for (int i = 0; i < 200; i++) {
        uint64_t t = T0 + MS(50) * (uint64_t)i;
        ig_metrics_arrival(m, 0, t);
        if (i % 4 == 3)
            ig_metrics_upstream_call(m, 0, MS(80), 4, 4, t + MS(10));
    }
    assert_float_equal(ig_metrics_load_factor(m, T0 + S(10) - 1), 0.2, 1e-6);
    ig_metrics_free(m);
}

/* Steady traffic long past the first window: at any point inside a second
 * the rate is right, because the window's span is (window_s - 1) s plus the
 * elapsed part of the current second. */
static void test_load_factor_steady_state(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 10, 4);
    ig_metrics_start(m, T0);
    uint64_t step = MS(100), t = T0;
    for (int i = 0; i < 400; i++, t += step) {
        ig_metrics_arrival(m, 1, t);
        ig_metrics_upstream_call(m, 1, MS(40), 1, 1, t);
        if (t >= T0 + S(11)) {
            /* Half a step after the last arrival; the discrete arrivals
             * make the count off by at most one against a span of at least
             * 9 s: within 1/90 of the rate. */
            double lf = ig_metrics_load_factor(m, t + MS(50));
            assert_float_equal(lf, 0.1, 0.1 * 0.012);
        }
    }
    ig_metrics_free(m);
}

/* Soon after start the rates divide by the elapsed time (at least 1 s),
 * not by window_s. */
static void test_load_factor_before_first_window(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    ig_metrics_start(m, T0);
    for (int i = 0; i < 20; i++) {
        uint64_t t = T0 + MS(100) * (uint64_t)i;
        ig_metrics_arrival(m, 0, t);
        ig_metrics_upstream_call(m, 0, MS(40), 1, 1, t);
    }
    assert_float_equal(ig_metrics_load_factor(m, T0 + S(2)), 0.1, 1e-9);
    ig_metrics_free(m);

    /* One arrival 100 ms after start: the span is floored to 1 s. */
    m = ig_metrics_new(2, two_routes, 30, 1);
    ig_metrics_start(m, T0);
    ig_metrics_arrival(m, 0, T0 + MS(50));
    ig_metrics_upstream_call(m, 0, MS(500), 1, 1, T0 + MS(90));
    assert_float_equal(ig_metrics_load_factor(m, T0 + MS(100)), 0.5, 1e-9);
    cJSON *j = autoscale(m, T0 + MS(100));
    assert_float_equal(json_num(j, "arrival_rate"), 1.0, 1e-9);
    cJSON_Delete(j);
    ig_metrics_free(m);

    /* Without ig_metrics_start the first timestamp seen is the start. */
    m = ig_metrics_new(2, two_routes, 30, 4);
    for (int i = 0; i < 20; i++) {
        uint64_t t = T0 + S(5) + MS(100) * (uint64_t)i;
        ig_metrics_arrival(m, 0, t);
        ig_metrics_upstream_call(m, 0, MS(40), 1, 1, t);
    }
    assert_float_equal(ig_metrics_load_factor(m, T0 + S(7)), 0.1, 1e-9);
    ig_metrics_free(m);
}

static void test_window_expiry(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 5, 4);
    ig_metrics_start(m, T0);
    for (int i = 0; i < 50; i++) {
        uint64_t t = T0 + MS(20) * (uint64_t)i;
        ig_metrics_arrival(m, 0, t);
        ig_metrics_upstream_call(m, 0, MS(40), 1, 1, t);
        ig_metrics_request_done(m, 0, 200, MS(45), t);
    }
    assert_true(ig_metrics_load_factor(m, T0 + S(2)) > 0.0);

    /* Ten seconds later everything has left the 5 s window; the cumulative
     * counters keep it all. */
    uint64_t later = T0 + S(10) + MS(500);
    assert_float_equal(ig_metrics_load_factor(m, later), 0.0, 0.0);
    cJSON *j = autoscale(m, later);
    assert_float_equal(json_num(j, "arrival_rate"), 0.0, 0.0);
    assert_float_equal(json_num(j, "p50_ms"), 0.0, 0.0);
    assert_float_equal(json_num(j, "p99_ms"), 0.0, 0.0);
    cJSON_Delete(j);
    ig_buf_t b = render(m, later);
    expect_line(b.base,
                "infergate_requests_total{route=\"/v1/models/{model}:predict\",code=\"200\"} 50");
    ig_buf_dispose(&b);

    /* Second T0+10 reuses T0's slot (10 % 5 == 0): the old counts are
     * cleared, only the new arrivals count, over a 4.5 s span. */
    for (int i = 0; i < 5; i++)
        ig_metrics_arrival(m, 0, T0 + S(10) + MS(10) * (uint64_t)i);
    j = autoscale(m, later);
    assert_float_equal(json_num(j, "arrival_rate"), 5.0 / 4.5, 1e-9);
    cJSON_Delete(j);

    /* An event stamped far in the past lands outside the window: ignored,
     * and the newer second it would collide with is left intact. */
    ig_metrics_arrival(m, 0, T0 + MS(1));
    ig_metrics_request_done(m, 0, 200, MS(1), T0 + MS(1));
    j = autoscale(m, later);
    assert_float_equal(json_num(j, "arrival_rate"), 5.0 / 4.5, 1e-9);
    cJSON_Delete(j);
    ig_metrics_free(m);
}

static void test_quantiles(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    ig_metrics_start(m, T0);
    /* 1..100 ms, spread over three seconds (so three slots are merged). */
    for (int i = 1; i <= 100; i++)
        ig_metrics_request_done(m, 0, 200, MS(i), T0 + MS(30) * (uint64_t)i);
    cJSON *j = autoscale(m, T0 + S(4));
    /* The window histogram's buckets are within ~6.25% of the value. */
    assert_float_equal(json_num(j, "p50_ms"), 50.0, 50.0 * 0.07);
    assert_float_equal(json_num(j, "p95_ms"), 95.0, 95.0 * 0.07);
    assert_float_equal(json_num(j, "p99_ms"), 99.0, 99.0 * 0.07);
    assert_true(json_num(j, "p50_ms") <= json_num(j, "p95_ms"));
    assert_true(json_num(j, "p95_ms") <= json_num(j, "p99_ms"));
    cJSON_Delete(j);
    ig_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    static const char *const names[] = {"a\"b\\c\nd", "/plain"};
    ig_metrics_t *m = ig_metrics_new(2, names, 30, 4);
    ig_metrics_set_queue_depth(m, 0, 5);
    ig_metrics_request_done(m, 0, 200, MS(1), T0);
    ig_buf_t b = render(m, T0);
    expect_line(b.base, "infergate_queue_depth{route=\"a\\\"b\\\\c\\nd\"} 5");
    expect_line(b.base, "infergate_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"200\"} 1");
    /* A raw newline inside a label would break the line structure. */
    expect_no_line_containing(b.base, "c\nd");
    ig_buf_dispose(&b);
    ig_metrics_free(m);
}

static void test_gauges_and_autoscale_json(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    ig_metrics_set_queue_depth(m, 0, 3);
    ig_metrics_set_queue_depth(m, 1, 4);
    ig_metrics_set_inflight(m, 9);
    ig_metrics_set_upstream_inflight(m, 2);
    ig_metrics_set_ready(m, true);
    ig_buf_t b = render(m, T0);
    expect_line(b.base, "infergate_queue_depth{route=\"/v1/models/{model}:predict\"} 3");
    expect_line(b.base, "infergate_queue_depth{route=\"/*\"} 4");
    expect_line(b.base, "infergate_inflight_requests 9");
    expect_line(b.base, "infergate_upstream_inflight 2");
    expect_line(b.base, "infergate_ready 1");
    ig_buf_dispose(&b);

    cJSON *j = autoscale(m, T0);
    static const char *const keys[] = {"queue_depth", "inflight", "arrival_rate", "p50_ms",
                                       "p95_ms",      "p99_ms",   "load_factor"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        (void)json_num(j, keys[i]);
    assert_float_equal(json_num(j, "queue_depth"), 7.0, 0.0);
    assert_float_equal(json_num(j, "inflight"), 9.0, 0.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ready")));
    assert_int_equal(cJSON_GetArraySize(j), 8);
    cJSON_Delete(j);

    /* Gauges are set, not added: lowering them shows the new value. */
    ig_metrics_set_queue_depth(m, 1, 0);
    ig_metrics_set_ready(m, false);
    j = autoscale(m, T0);
    assert_float_equal(json_num(j, "queue_depth"), 3.0, 0.0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "ready")));
    cJSON_Delete(j);
    ig_metrics_free(m);
}

static void test_render_over_cap_leaves_buffer_unchanged(void **state)
{
    (void)state;
    ig_metrics_t *m = ig_metrics_new(2, two_routes, 30, 4);
    ig_buf_t b;
    ig_buf_init(&b, 200);
    assert_int_equal(ig_buf_append_str(&b, "prefix"), 0);
    assert_int_equal(ig_metrics_render_prometheus(m, &b, T0), IG_ETOOLARGE);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.base, "prefix");
    ig_buf_dispose(&b);

    ig_buf_init(&b, 20);
    assert_int_equal(ig_metrics_render_autoscale(m, &b, T0), IG_ETOOLARGE);
    assert_int_equal(b.len, 0);
    ig_buf_dispose(&b);
    ig_metrics_free(m);
}

/* Where promtool is: $PROMTOOL if set, else /usr/bin/promtool; NULL when
 * not executable. */
static const char *find_promtool(void)
{
    const char *p = getenv("PROMTOOL");
    if (!p || !*p)
        p = "/usr/bin/promtool";
    return access(p, X_OK) == 0 ? p : NULL;
}

static void test_promtool_accepts_rendering(void **state)
{
    (void)state;
    const char *promtool = find_promtool();
    if (!promtool) {
        print_message("promtool not found (apt-get install prometheus); skipping\n");
        skip();
    }
    static const char *const names[] = {"/v1/models/{model}:predict", "/v2/models/{model}/infer",
                                        "we\"ird\\ro\nute"};
    ig_metrics_t *m = ig_metrics_new(3, names, 30, 4);
    ig_metrics_start(m, T0);
    for (int i = 0; i < 50; i++) {
        uint64_t t = T0 + MS(37) * (uint64_t)i;
        size_t route = (size_t)(i % 3);
        ig_metrics_arrival(m, route, t);
        ig_metrics_queue_wait(m, route, MS(i % 7));
        ig_metrics_upstream_call(m, route, MS(20 + i), (uint32_t)(i % 40 + 1), 2, t);
        ig_metrics_request_done(m, route, i % 5 ? 200 : 503, MS(25 + i), t);
    }
    ig_metrics_request_done(m, IG_METRICS_NO_ROUTE, 404, 80, T0);
    ig_metrics_rejected(m, 0, IG_REASON_QUEUE_FULL);
    ig_metrics_rejected(m, IG_METRICS_NO_ROUTE, IG_REASON_NO_ROUTE);
    ig_metrics_upstream_error(m, IG_REASON_UPSTREAM_UNAVAILABLE);
    ig_metrics_set_queue_depth(m, 1, 12);
    ig_metrics_set_inflight(m, 14);
    ig_metrics_set_upstream_inflight(m, 4);
    ig_metrics_set_ready(m, true);
    ig_buf_t b = render(m, T0 + S(2));
    ig_metrics_free(m);

    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.base, b.len), (ssize_t)b.len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 0);
    char *argv[] = {(char *)promtool, "check", "metrics", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, promtool, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0) {
        unlink(path);
        fail_msg("cannot run %s: %s", promtool, strerror(rc));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    unlink(path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("promtool check metrics rejected the rendering (status %d):\n%s", status, b.base);
    ig_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names_round_trip),
        cmocka_unit_test(test_reason_table),
        cmocka_unit_test(test_counters_and_labels),
        cmocka_unit_test(test_histogram_buckets_cumulative),
        cmocka_unit_test(test_help_and_type_for_every_family),
        cmocka_unit_test(test_load_factor_arithmetic),
        cmocka_unit_test(test_load_factor_batched_calls),
        cmocka_unit_test(test_load_factor_steady_state),
        cmocka_unit_test(test_load_factor_before_first_window),
        cmocka_unit_test(test_window_expiry),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_gauges_and_autoscale_json),
        cmocka_unit_test(test_render_over_cap_leaves_buffer_unchanged),
        cmocka_unit_test(test_promtool_accepts_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
