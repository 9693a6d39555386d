/*
 * metrics.c: the gateway's autoscaling signals. See metrics.h for the
 * contract and docs/metrics.md for every metric and how to scale on it.
 *
 * Two kinds of state live here. Cumulative Prometheus state (counters and
 * fixed-bucket histograms per route, plus gauges) only ever grows and is
 * rendered as text when /metrics is scraped. A sliding window of
 * `window_s` one-second slots, kept in a ring indexed by the second of
 * now_us, feeds the load factor and the /autoscale quantiles: each slot
 * holds that second's arrivals, the slot-time of the model calls that ended
 * in it and a fine-grained latency histogram (hist.h). Slots are cleared
 * lazily, when a later second reuses them, and ignored when stale, so
 * nothing runs on a timer.
 *
 * Recording is a few increments and a short bucket search; nothing here
 * allocates after ig_metrics_new, and all formatting happens at scrape time.
 * This module does not know about requests or HTTP: callers hand it numbers.
 */
#include "infergate/core/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/base/hist.h"

/* ---- fixed Prometheus buckets ------------------------------------------- */

/* Durations: upper bounds in microseconds (exact integers, so `le` tests
 * are exact) and the same bounds as the text Prometheus shows, in seconds. */
#define DUR_BOUNDS 14
static const uint64_t dur_bound_us[DUR_BOUNDS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const dur_le[DUR_BOUNDS + 1] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf",
};

/* Batch sizes, in rows. */
#define BATCH_BOUNDS 10
static const uint64_t batch_bound[BATCH_BOUNDS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const char *const batch_le[BATCH_BOUNDS + 1] = {
    "1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "+Inf",
};

/* Counts per bucket are NOT cumulative here (one increment per record);
 * rendering accumulates them. The last slot is +Inf. */
typedef struct {
    uint64_t counts[DUR_BOUNDS + 1];
    uint64_t n;
    uint64_t sum_us;
} dur_hist_t;

typedef struct {
    uint64_t counts[BATCH_BOUNDS + 1];
    uint64_t n;
    uint64_t sum;
} batch_hist_t;

static unsigned bucket_index(const uint64_t *bounds, unsigned nbounds, uint64_t v)
{
    unsigned i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    return i;
}

static void dur_record(dur_hist_t *h, uint64_t us)
{
    h->counts[bucket_index(dur_bound_us, DUR_BOUNDS, us)]++;
    h->n++;
    h->sum_us += us;
}

static void batch_record(batch_hist_t *h, uint64_t rows)
{
    h->counts[bucket_index(batch_bound, BATCH_BOUNDS, rows)]++;
    h->n++;
    h->sum += rows;
}

/* ---- state -------------------------------------------------------------- */

/* infergate_requests_total's code label: statuses 100..599, plus one slot
 * for anything else (a caller bug, rendered as code="other" rather than
 * dropped, so the counter still adds up to the duration histogram's count). */
#define CODE_MIN 100
#define CODE_MAX 599
#define CODE_SLOTS (CODE_MAX - CODE_MIN + 2)
#define CODE_OTHER (CODE_SLOTS - 1)

typedef struct {
    char *label; /* owned; already escaped for the exposition format */
    bool used;   /* the "none" route is rendered only once it was used */
    uint64_t codes[CODE_SLOTS];
    uint64_t rejected[IG_REASON__COUNT];
    dur_hist_t request_dur;
    dur_hist_t queue_wait;
    dur_hist_t upstream_dur;
    batch_hist_t batch;
    uint64_t queue_depth;
} route_stats_t;

/* One second of the sliding window. */
typedef struct {
    uint64_t sec; /* the second (now_us / 1e6) these numbers belong to */
    bool live;    /* false until first written */
    uint64_t arrivals;
    uint64_t held_us;       /* sum over model calls of the slot time they held */
    uint64_t held_requests; /* sum over those calls of the requests they carried */
    ig_hist_t latency;      /* request durations, microseconds */
} slot_t;

struct ig_metrics {
    size_t nroutes;
    route_stats_t *routes; /* nroutes + 1: the last one is route="none" */
    uint64_t upstream_errors[IG_REASON__COUNT];
    uint64_t inflight;
    uint64_t upstream_inflight;
    bool ready;

    uint32_t window_s;
    uint32_t max_concurrency;
    bool started; /* start_us set, by ig_metrics_start or the first timestamp seen */
    uint64_t start_us;
    slot_t *slots;     /* window_s of them */
    ig_hist_t scratch; /* merge target for quantiles at scrape time */
};

#define US_PER_S UINT64_C(1000000)

/* Escapes a label value per the text format: backslash, double quote and
 * line feed. Returns an owned string. */
static char *escape_label(const char *s)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\\' || s[i] == '"' || s[i] == '\n')
            extra++;
    char *out = ig_xmalloc(n + extra + 1), *p = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            *p++ = '\\';
            *p++ = s[i];
        } else if (s[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

ig_metrics_t *ig_metrics_new(size_t nroutes, const char *const *route_names, uint32_t window_s,
                             uint32_t max_concurrency)
{
    ig_metrics_t *m = ig_xcalloc(1, sizeof(*m));
    m->nroutes = nroutes;
    m->routes = ig_xcalloc(nroutes + 1, sizeof(*m->routes));
    for (size_t i = 0; i < nroutes; i++) {
        const char *name = route_names && route_names[i] ? route_names[i] : "";
        m->routes[i].label = escape_label(name);
        m->routes[i].used = true;
    }
    m->routes[nroutes].label = escape_label("none");
    m->window_s = window_s ? window_s : 1;
    m->max_concurrency = max_concurrency ? max_concurrency : 1;
    m->slots = ig_xcalloc(m->window_s, sizeof(*m->slots));
    return m;
}

void ig_metrics_free(ig_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i <= m->nroutes; i++)
        free(m->routes[i].label);
    free(m->routes);
    free(m->slots);
    free(m);
}

/* The stats of a route index; IG_METRICS_NO_ROUTE, and any index past the
 * table (a caller bug that must not crash the gateway), land on "none". */
static route_stats_t *route_of(ig_metrics_t *m, size_t route)
{
    route_stats_t *r = &m->routes[route < m->nroutes ? route : m->nroutes];
    r->used = true;
    return r;
}

static void note_time(ig_metrics_t *m, uint64_t now_us)
{
    if (!m->started) {
        m->started = true;
        m->start_us = now_us;
    }
}

void ig_metrics_start(ig_metrics_t *m, uint64_t now_us)
{
    m->started = true;
    m->start_us = now_us;
}

/* The slot for the second of now_us, cleared if it held an older second.
 * NULL when now_us is older than what the slot already holds: the event is
 * then outside the window (clocks on the loop are monotonic, so this only
 * happens for an event stamped more than window_s seconds late). */
static slot_t *slot_for(ig_metrics_t *m, uint64_t now_us)
{
    note_time(m, now_us);
    uint64_t sec = now_us / US_PER_S;
    slot_t *s = &m->slots[sec % m->window_s];
    if (s->live && s->sec == sec)
        return s;
    if (s->live && s->sec > sec)
        return NULL;
    s->live = true;
    s->sec = sec;
    s->arrivals = 0;
    s->held_us = 0;
    s->held_requests = 0;
    ig_hist_reset(&s->latency);
    return s;
}

/* Whether a slot belongs to the window that ends in second `cur`. */
static bool slot_in_window(const ig_metrics_t *m, const slot_t *s, uint64_t cur)
{
    return s->live && s->sec <= cur && s->sec + m->window_s > cur;
}

/* ---- recording ---------------------------------------------------------- */

void ig_metrics_arrival(ig_metrics_t *m, size_t route, uint64_t now_us)
{
    (void)route_of(m, route);
    slot_t *s = slot_for(m, now_us);
    if (s)
        s->arrivals++;
}

void ig_metrics_request_done(ig_metrics_t *m, size_t route, int status, uint64_t duration_us,
                             uint64_t now_us)
{
    route_stats_t *r = route_of(m, route);
    if (status >= CODE_MIN && status <= CODE_MAX)
        r->codes[status - CODE_MIN]++;
    else
        r->codes[CODE_OTHER]++;
    dur_record(&r->request_dur, duration_us);
    slot_t *s = slot_for(m, now_us);
    if (s)
        ig_hist_record(&s->latency, duration_us);
}

void ig_metrics_rejected(ig_metrics_t *m, size_t route, ig_reason_t reason)
{
    if ((unsigned)reason >= IG_REASON__COUNT)
        return;
    route_of(m, route)->rejected[reason]++;
}

void ig_metrics_queue_wait(ig_metrics_t *m, size_t route, uint64_t wait_us)
{
    dur_record(&route_of(m, route)->queue_wait, wait_us);
}

void ig_metrics_upstream_call(ig_metrics_t *m, size_t route, uint64_t held_us, uint32_t rows,
                              uint32_t requests, uint64_t now_us)
{
    route_stats_t *r = route_of(m, route);
    dur_record(&r->upstream_dur, held_us);
    batch_record(&r->batch, rows);
    slot_t *s = slot_for(m, now_us);
    if (s) {
        /* A call always carries at least one request; 0 would make the
         * mean slot-time per request unbounded. */
        s->held_us += held_us;
        s->held_requests += requests ? requests : 1;
    }
}

void ig_metrics_upstream_error(ig_metrics_t *m, ig_reason_t reason)
{
    if ((unsigned)reason >= IG_REASON__COUNT)
        return;
    m->upstream_errors[reason]++;
}

void ig_metrics_set_queue_depth(ig_metrics_t *m, size_t route, uint64_t depth)
{
    route_of(m, route)->queue_depth = depth;
}

void ig_metrics_set_inflight(ig_metrics_t *m, uint64_t n)
{
    m->inflight = n;
}

void ig_metrics_set_upstream_inflight(ig_metrics_t *m, uint64_t n)
{
    m->upstream_inflight = n;
}

void ig_metrics_set_ready(ig_metrics_t *m, bool ready)
{
    m->ready = ready;
}

/* ---- window arithmetic -------------------------------------------------- */

typedef struct {
    uint64_t arrivals;
    uint64_t held_us;
    uint64_t held_requests;
    double span_s; /* the time the window covers, >= 1 s */
} window_sums_t;

/* Sums the window ending at now_us. The window holds the current, partial
 * second plus the window_s - 1 seconds before it, so it covers
 * (window_s - 1) s + the elapsed part of this second; before the first
 * full window it covers only the time since the first event. Dividing by
 * that span (never below 1 s) keeps the rates right both soon after start
 * and at any point inside a second. */
static window_sums_t window_sums(ig_metrics_t *m, uint64_t now_us, bool merge_latency)
{
    window_sums_t w = {0};
    note_time(m, now_us);
    uint64_t cur = now_us / US_PER_S;
    if (merge_latency)
        ig_hist_reset(&m->scratch);
    for (uint32_t i = 0; i < m->window_s; i++) {
        const slot_t *s = &m->slots[i];
        if (!slot_in_window(m, s, cur))
            continue;
        w.arrivals += s->arrivals;
        w.held_us += s->held_us;
        w.held_requests += s->held_requests;
        if (merge_latency)
            ig_hist_merge(&m->scratch, &s->latency);
    }
    uint64_t span_us = (uint64_t)(m->window_s - 1) * US_PER_S + now_us % US_PER_S;
    uint64_t since = now_us > m->start_us ? now_us - m->start_us : 0;
    if (since < span_us)
        span_us = since;
    if (span_us < US_PER_S)
        span_us = US_PER_S;
    w.span_s = (double)span_us / (double)US_PER_S;
    return w;
}

static double arrival_rate_of(const window_sums_t *w)
{
    return (double)w->arrivals / w->span_s;
}

static double load_factor_of(const ig_metrics_t *m, const window_sums_t *w)
{
    if (w->held_requests == 0)
        return 0.0;
    double mean_hold_s = (double)w->held_us / (double)w->held_requests / (double)US_PER_S;
    return arrival_rate_of(w) * mean_hold_s / (double)m->max_concurrency;
}

double ig_metrics_load_factor(ig_metrics_t *m, uint64_t now_us)
{
    window_sums_t w = window_sums(m, now_us, false);
    return load_factor_of(m, &w);
}

/* ---- rendering ---------------------------------------------------------- */

/* A render in progress: the first failure sticks and later writes are
 * skipped, so callers check once at the end. */
typedef struct {
    ig_buf_t *b;
    int err;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->err = ig_buf_vprintf(o->b, fmt, ap);
    va_end(ap);
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Microseconds as exact decimal seconds. */
static void put_seconds(out_t *o, uint64_t us)
{
    put(o, "%" PRIu64 ".%06" PRIu64, us / US_PER_S, us % US_PER_S);
}

static void render_dur_hist(out_t *o, const char *name, const char *label, const dur_hist_t *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i <= DUR_BOUNDS; i++) {
        cum += h->counts[i];
        put(o, "%s_bucket{route=\"%s\",le=\"%s\"} %" PRIu64 "\n", name, label, dur_le[i], cum);
    }
    put(o, "%s_sum{route=\"%s\"} ", name, label);
    put_seconds(o, h->sum_us);
    put(o, "\n%s_count{route=\"%s\"} %" PRIu64 "\n", name, label, h->n);
}

static void render_batch_hist(out_t *o, const char *name, const char *label, const batch_hist_t *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i <= BATCH_BOUNDS; i++) {
        cum += h->counts[i];
        put(o, "%s_bucket{route=\"%s\",le=\"%s\"} %" PRIu64 "\n", name, label, batch_le[i], cum);
    }
    put(o, "%s_sum{route=\"%s\"} %" PRIu64 "\n", name, label, h->sum);
    put(o, "%s_count{route=\"%s\"} %" PRIu64 "\n", name, label, h->n);
}

/* The routes to render: every configured one, and "none" once used. */
static size_t routes_to_render(const ig_metrics_t *m)
{
    return m->routes[m->nroutes].used ? m->nroutes + 1 : m->nroutes;
}

/* Upstream reasons are always rendered (zero included) so that rate()
 * works from the first scrape; other reasons appear once they occur. */
static bool is_upstream_reason(unsigned r)
{
    return (ig_reason_flags((ig_reason_t)r) & IG_RF_UPSTREAM) != 0;
}

int ig_metrics_render_prometheus(ig_metrics_t *m, ig_buf_t *out, uint64_t now_us)
{
    out_t o = {out, 0};
    size_t start_len = out->len;
    size_t nr = routes_to_render(m);

    family(&o, "infergate_requests_total", "counter",
           "Responses sent, by route pattern and HTTP status code.");
    for (size_t i = 0; i < nr; i++) {
        const route_stats_t *r = &m->routes[i];
        for (unsigned c = 0; c < CODE_SLOTS; c++) {
            if (!r->codes[c])
                continue;
            if (c == CODE_OTHER)
                put(&o, "infergate_requests_total{route=\"%s\",code=\"other\"} %" PRIu64 "\n",
                    r->label, r->codes[c]);
            else
                put(&o, "infergate_requests_total{route=\"%s\",code=\"%u\"} %" PRIu64 "\n",
                    r->label, c + CODE_MIN, r->codes[c]);
        }
    }

    family(&o, "infergate_request_duration_seconds", "histogram",
           "Time from a request's arrival to the end of its response, in seconds.");
    for (size_t i = 0; i < nr; i++)
        render_dur_hist(&o, "infergate_request_duration_seconds", m->routes[i].label,
                        &m->routes[i].request_dur);

    family(&o, "infergate_queue_wait_seconds", "histogram",
           "Time a request waited in the gateway's queue before its call to the model, in "
           "seconds.");
    for (size_t i = 0; i < nr; i++)
        render_dur_hist(&o, "infergate_queue_wait_seconds", m->routes[i].label,
                        &m->routes[i].queue_wait);

    family(&o, "infergate_upstream_duration_seconds", "histogram",
           "Time a call to the model held a concurrency slot, in seconds.");
    for (size_t i = 0; i < nr; i++)
        render_dur_hist(&o, "infergate_upstream_duration_seconds", m->routes[i].label,
                        &m->routes[i].upstream_dur);

    family(&o, "infergate_batch_size", "histogram", "Rows carried by each call to the model.");
    for (size_t i = 0; i < nr; i++)
        render_batch_hist(&o, "infergate_batch_size", m->routes[i].label, &m->routes[i].batch);

    family(&o, "infergate_queue_depth", "gauge", "Requests waiting in the gateway's queue.");
    for (size_t i = 0; i < nr; i++)
        put(&o, "infergate_queue_depth{route=\"%s\"} %" PRIu64 "\n", m->routes[i].label,
            m->routes[i].queue_depth);

    family(&o, "infergate_inflight_requests", "gauge",
           "Requests inside the gateway: queued, batching or at the model.");
    put(&o, "infergate_inflight_requests %" PRIu64 "\n", m->inflight);

    family(&o, "infergate_upstream_inflight", "gauge",
           "Calls to the model in progress (a batch is one call).");
    put(&o, "infergate_upstream_inflight %" PRIu64 "\n", m->upstream_inflight);

    family(&o, "infergate_rejected_total", "counter",
           "Requests the gateway answered itself with an error, by route and reason.");
    for (size_t i = 0; i < nr; i++) {
        for (unsigned k = 0; k < IG_REASON__COUNT; k++) {
            if (m->routes[i].rejected[k])
                put(&o, "infergate_rejected_total{route=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                    m->routes[i].label, ig_reason_name((ig_reason_t)k), m->routes[i].rejected[k]);
        }
    }

    family(&o, "infergate_upstream_errors_total", "counter",
           "Failed calls to the model, by reason.");
    for (unsigned k = 0; k < IG_REASON__COUNT; k++) {
        if (m->upstream_errors[k] || is_upstream_reason(k))
            put(&o, "infergate_upstream_errors_total{reason=\"%s\"} %" PRIu64 "\n",
                ig_reason_name((ig_reason_t)k), m->upstream_errors[k]);
    }

    family(&o, "infergate_load_factor", "gauge",
           "Arrival rate times mean slot time per request, over max_concurrency, across the "
           "metrics window (Little's law): the fraction of the pod's capacity in demand.");
    put(&o, "infergate_load_factor %.9g\n", ig_metrics_load_factor(m, now_us));

    family(&o, "infergate_ready", "gauge",
           "1 when the model is ready and the gateway is not draining, else 0.");
    put(&o, "infergate_ready %d\n", m->ready ? 1 : 0);

    if (o.err) {
        /* Leave the buffer as it was: a half exposition is worse than none. */
        out->len = start_len;
        if (out->base)
            out->base[start_len] = '\0';
    }
    return o.err;
}

int ig_metrics_render_autoscale(ig_metrics_t *m, ig_buf_t *out, uint64_t now_us)
{
    window_sums_t w = window_sums(m, now_us, true);
    uint64_t depth = 0;
    for (size_t i = 0; i <= m->nroutes; i++)
        depth += m->routes[i].queue_depth;
    size_t start_len = out->len;
    int r = ig_buf_printf(out,
                          "{\"queue_depth\":%" PRIu64 ",\"inflight\":%" PRIu64
                          ",\"arrival_rate\":%.9g,\"p50_ms\":%.6g,\"p95_ms\":%.6g"
                          ",\"p99_ms\":%.6g,\"load_factor\":%.9g,\"ready\":%s}",
                          depth, m->inflight, arrival_rate_of(&w),
                          (double)ig_hist_quantile(&m->scratch, 0.50) / 1000.0,
                          (double)ig_hist_quantile(&m->scratch, 0.95) / 1000.0,
                          (double)ig_hist_quantile(&m->scratch, 0.99) / 1000.0,
                          load_factor_of(m, &w), m->ready ? "true" : "false");
    if (r) {
        out->len = start_len;
        if (out->base)
            out->base[start_len] = '\0';
    }
    return r;
}
