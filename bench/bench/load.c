/*
 * load.c: the keep-alive HTTP/1.1 load generator behind every infergate-bench
 * subcommand.
 *
 * The client side is the gateway's own upstream pool: it already speaks
 * keep-alive HTTP/1.1, parses responses with llhttp, classifies failures
 * (refused, reset, timeout, bad response) and queues calls when every
 * connection is busy. Here it is sized to --connections, so the pool's
 * connections are the simulated clients. This file only decides *when* to
 * send (closed or open loop), times each request and counts outcomes.
 *
 * Request slots (`slot_t`) hold one ig_ucall_t each. Closed loop uses one
 * slot per connection and re-arms it from on_done. Open loop takes slots
 * from a free list that grows up to IG_LOAD_MAX_BACKLOG outstanding
 * requests; a 1 ms timer releases every request that has come due.
 */
#include "load.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/url.h"
#include "infergate/net/upstream.h"
#include "procs.h"

typedef struct slot {
    ig_ucall_t call;
    struct run *run;
    struct slot *next_free;
    uint64_t intended_ns; /* open loop: when it was due; closed loop: 0 */
    int status;
    bool measured; /* sent after the warm-up: counted */
} slot_t;

typedef struct run {
    const ig_load_opts_t *o;
    ig_load_result_t *r;
    uv_loop_t loop;
    uv_timer_t tick;   /* open-loop pacing and the interrupt check */
    uv_timer_t phase;  /* warm-up end, then measurement end */
    uv_timer_t settle; /* idle mode: lets the peer settle before sampling RSS */
    ig_upstream_t *pool;
    char base_url[320];
    ig_slice_t target;
    slot_t **all; /* every slot allocated, to free at the end */
    size_t nall, capall;
    slot_t *free_list;
    uint64_t outstanding;
    uint64_t issued;     /* open loop: requests released so far (due or not sent) */
    uint64_t t0_ns;      /* open loop: schedule origin */
    uint64_t measure_ns; /* when measurement began; 0 during warm-up */
    uint64_t last_done_ns;
    bool measuring;
    bool stopping; /* send nothing more */
    bool finished; /* pool freed */
} run_t;

static void issue(run_t *run, slot_t *s, uint64_t intended_ns);
static void stop(run_t *run, bool abort);

static void on_settled(uv_timer_t *t)
{
    run_t *run = t->data;
    stop(run, false);
}

void ig_load_defaults(ig_load_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->method = "GET";
    o->connections = 64;
    o->duration_s = 10;
    o->timeout_ms = 30000;
}

int ig_load_add_header(ig_load_opts_t *o, const char *kv, char *err, size_t errlen)
{
    const char *colon = strchr(kv, ':');
    if (!colon || colon == kv) {
        snprintf(err, errlen, "--header: expected 'Name: value', got '%s'", kv);
        return IG_EINVAL;
    }
    ig_slice_t name = ig_slice(kv, (size_t)(colon - kv));
    for (size_t k = 0; k < name.len; k++) {
        char c = name.base[k];
        if (c <= ' ' || c >= 127) {
            snprintf(err, errlen, "--header: invalid character in the name of '%s'", kv);
            return IG_EINVAL;
        }
    }
    static const char *const own[] = {
        "host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade"};
    for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
        if (ig_slice_ieq(name, own[k])) {
            snprintf(err, errlen, "--header: %.*s is written by infergate-bench itself",
                     (int)name.len, name.base);
            return IG_EINVAL;
        }
    }
    if (o->nheaders == IG_LOAD_MAX_HEADERS) {
        snprintf(err, errlen, "--header: at most %d headers", IG_LOAD_MAX_HEADERS);
        return IG_EINVAL;
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    o->headers[o->nheaders].name = name;
    o->headers[o->nheaders].value = ig_slice_cstr(v);
    o->nheaders++;
    return 0;
}

void ig_load_default_content_type(ig_load_opts_t *o, const char *type)
{
    for (size_t k = 0; k < o->nheaders; k++)
        if (ig_slice_ieq(o->headers[k].name, "content-type"))
            return;
    if (o->nheaders == IG_LOAD_MAX_HEADERS)
        return;
    o->headers[o->nheaders].name = IG_SLICE_LIT("Content-Type");
    o->headers[o->nheaders].value = ig_slice_cstr(type);
    o->nheaders++;
}

/* ---- slots ----------------------------------------------------------- */

static slot_t *slot_get(run_t *run)
{
    slot_t *s = run->free_list;
    if (s) {
        run->free_list = s->next_free;
        return s;
    }
    if (run->nall == run->capall) {
        run->capall = run->capall ? run->capall * 2 : 256;
        run->all = ig_xrealloc(run->all, run->capall * sizeof(*run->all));
    }
    s = ig_xcalloc(1, sizeof(*s));
    s->run = run;
    run->all[run->nall++] = s;
    return s;
}

static void slot_put(run_t *run, slot_t *s)
{
    s->next_free = run->free_list;
    run->free_list = s;
}

/* ---- ending ------------------------------------------------------------ */

static void sample_rss(pid_t pid, uint64_t *out)
{
    uint64_t kb = 0;
    if (pid > 0 && ig_proc_rss_kb(pid, &kb) == 0)
        *out = kb;
}

/* Stops the timers and closes the loop's handles (the pool is the caller's). */
static void close_handles(run_t *run)
{
    uv_timer_stop(&run->tick);
    uv_timer_stop(&run->phase);
    uv_close((uv_handle_t *)&run->tick, NULL);
    uv_close((uv_handle_t *)&run->phase, NULL);
    uv_close((uv_handle_t *)&run->settle, NULL);
}

/* Frees the pool once nothing is outstanding; the loop then runs dry. */
static void maybe_finish(run_t *run)
{
    if (run->finished || !run->stopping || run->outstanding > 0)
        return;
    run->finished = true;
    close_handles(run);
    ig_upstream_free(run->pool);
    run->pool = NULL;
}

/* Stops sending; what is in flight still completes (bounded by the request
 * timeout). With `abort`, in-flight requests are canceled instead. */
static void stop(run_t *run, bool abort)
{
    if (!run->stopping) {
        run->stopping = true;
        sample_rss(run->o->rss_pid, &run->r->rss_end_kb);
        run->r->connections_open = (unsigned)ig_upstream_open_connections(run->pool);
    }
    if (abort && !run->finished) {
        /* ig_upstream_free fails every call with IG_ECANCELED; on_done counts
         * them and maybe_finish then sees nothing outstanding. */
        run->finished = true;
        close_handles(run);
        ig_upstream_t *p = run->pool;
        run->pool = NULL;
        ig_upstream_free(p);
        return;
    }
    maybe_finish(run);
}

/* ---- callbacks ------------------------------------------------------- */

static int on_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n, int64_t cl)
{
    (void)hdrs;
    (void)n;
    (void)cl;
    slot_t *s = c->data;
    s->status = status;
    return 0;
}

static void on_body(ig_ucall_t *c, const char *data, size_t len)
{
    /* Bodies are read and dropped: the pool has already parsed them. */
    (void)c;
    (void)data;
    (void)len;
}

static void count_error(ig_load_result_t *r, int err)
{
    switch (err) {
    case IG_ECONNREFUSED:
        r->errors.connect++;
        break;
    case IG_ECONNRESET:
        r->errors.reset++;
        break;
    case IG_ETIMEDOUT:
        r->errors.timeout++;
        break;
    case IG_ECANCELED:
        r->errors.canceled++;
        break;
    default:
        r->errors.protocol++;
        break;
    }
    r->errors_total++;
}

static bool more_to_send(run_t *run)
{
    const ig_load_opts_t *o = run->o;
    if (run->stopping)
        return false;
    if (o->requests && run->measuring && run->r->sent >= o->requests)
        return false;
    return true;
}

static void on_done(ig_ucall_t *c, int err)
{
    slot_t *s = c->data;
    run_t *run = s->run;
    ig_load_result_t *r = run->r;
    uint64_t now = uv_hrtime();
    run->outstanding--;
    if (s->measured) {
        run->last_done_ns = now;
        if (err == 0) {
            r->responses++;
            if (s->status >= 0 && s->status < 600)
                r->by_status[s->status]++;
            uint64_t from = s->intended_ns ? s->intended_ns : c->sent_ns;
            uint64_t us = now > from ? (now - from) / 1000 : 0;
            ig_hist_record(&r->latency, us ? us : 1);
        } else {
            count_error(r, err);
        }
    }
    if (run->o->idle_connections) {
        slot_put(run, s);
        if (run->outstanding == 0 && !run->stopping && !run->finished) {
            /* Every connection has answered and is idle in the pool: give
             * the peer a moment to release per-request memory, then sample. */
            uv_timer_start(&run->settle, on_settled, 300, 0);
        }
        return;
    }
    if (run->o->rate > 0) {
        slot_put(run, s);
    } else if (more_to_send(run)) {
        issue(run, s, 0);
        return;
    } else {
        slot_put(run, s);
    }
    if (run->o->requests && run->measuring && r->sent >= run->o->requests && !run->stopping &&
        run->outstanding == 0)
        stop(run, false);
    maybe_finish(run);
}

static void issue(run_t *run, slot_t *s, uint64_t intended_ns)
{
    const ig_load_opts_t *o = run->o;
    memset(&s->call, 0, sizeof(s->call));
    s->call.data = s;
    s->call.method = o->method;
    s->call.target = run->target;
    s->call.headers = o->headers;
    s->call.nheaders = o->nheaders;
    s->call.body = o->body;
    s->call.timeout_ms = o->timeout_ms;
    s->call.on_head = on_head;
    s->call.on_body = on_body;
    s->call.on_done = on_done;
    s->intended_ns = intended_ns;
    s->status = 0;
    s->measured = run->measuring;
    if (s->measured)
        run->r->sent++;
    run->outstanding++;
    if (ig_upstream_call(run->pool, &s->call) != 0) {
        /* Cannot happen with the fields set above; counted rather than lost. */
        run->outstanding--;
        if (s->measured)
            count_error(run->r, IG_EPROTO);
        slot_put(run, s);
    }
}

/* Open loop: release every request whose time has come. */
static void release_due(run_t *run, uint64_t now)
{
    const ig_load_opts_t *o = run->o;
    double interval_ns = 1e9 / o->rate;
    uint64_t due = (uint64_t)((double)(now - run->t0_ns) / interval_ns) + 1;
    while (run->issued < due && more_to_send(run)) {
        uint64_t when = run->t0_ns + (uint64_t)((double)run->issued * interval_ns);
        run->issued++;
        if (run->outstanding >= IG_LOAD_MAX_BACKLOG) {
            if (run->measuring) {
                run->r->sent++;
                run->r->errors.backlog++;
                run->r->errors_total++;
            }
            continue;
        }
        issue(run, slot_get(run), when);
    }
    if (o->requests && run->measuring && run->r->sent >= o->requests && !run->stopping)
        stop(run, false);
}

static void on_tick(uv_timer_t *t)
{
    run_t *run = t->data;
    if (ig_bench_interrupted()) {
        run->r->interrupted = true;
        stop(run, true);
        return;
    }
    if (run->o->rate > 0 && !run->stopping)
        release_due(run, uv_hrtime());
}

static void begin_measuring(run_t *run);

static void on_phase(uv_timer_t *t)
{
    run_t *run = t->data;
    if (!run->measuring) {
        begin_measuring(run);
        return;
    }
    stop(run, false);
}

static void begin_measuring(run_t *run)
{
    run->measuring = true;
    run->measure_ns = uv_hrtime();
    run->last_done_ns = run->measure_ns;
    if (run->o->requests == 0) {
        uint64_t ms = (uint64_t)llround(run->o->duration_s * 1000.0);
        uv_timer_start(&run->phase, on_phase, ms ? ms : 1, 0);
    }
}

/* ---- setup ------------------------------------------------------------- */

static int split_url(run_t *run, const char *url, char *err, size_t errlen)
{
    ig_url_t u;
    const char *why;
    if (ig_url_parse(url, strlen(url), &u, &why) < 0)
        return ig_error_fmt(err, errlen, IG_EINVAL, "--url: %s, got '%s'", why, url);
    if (u.https)
        return ig_error_fmt(err, errlen, IG_EINVAL, "--url: must start with http://, got '%s'",
                            url);
    if (u.fragment.base)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "--url: a fragment is not sent in HTTP, got '%s'", url);
    if (u.hostport.len + 8 > sizeof(run->base_url))
        return ig_error_fmt(err, errlen, IG_EINVAL, "--url: host too long in '%s'", url);
    snprintf(run->base_url, sizeof(run->base_url), "http://%.*s", (int)u.hostport.len,
             u.hostport.base);
    if (u.path.len == 0 && u.query.base)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "--url: a query needs a path before it ('/?…'), got '%s'", url);
    /* The request target is the path and query as written. */
    run->target = u.path.len ? ig_slice(u.path.base, strlen(u.path.base)) : IG_SLICE_LIT("/");
    return 0;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

int ig_load_run(const ig_load_opts_t *o, ig_load_result_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    ig_hist_reset(&r->latency);
    run_t *run = ig_xcalloc(1, sizeof(*run));
    run->o = o;
    run->r = r;
    int rc = split_url(run, o->url, err, errlen);
    if (rc < 0) {
        free(run);
        return rc;
    }
    unsigned conns = o->idle_connections ? o->idle_connections : o->connections;
    if (conns == 0) {
        snprintf(err, errlen, "--connections: must be at least 1");
        free(run);
        return IG_EINVAL;
    }
    uv_loop_init(&run->loop);
    ig_upstream_opts_t uo = {
        .url = run->base_url,
        .max_connections = conns,
        .connect_timeout_ms = o->timeout_ms,
        .timeout_ms = o->timeout_ms,
        .max_header_bytes = 64 * 1024,
    };
    char perr[256];
    rc = ig_upstream_new(&run->loop, &uo, &run->pool, perr, sizeof(perr));
    if (rc < 0) {
        /* The pool's message names its config key; ours is --url. */
        const char *msg = strncmp(perr, "upstream.url: ", 14) == 0 ? perr + 14 : perr;
        snprintf(err, errlen, "--url: %s", msg);
        uv_loop_close(&run->loop);
        free(run);
        return rc;
    }
    uv_timer_init(&run->loop, &run->tick);
    uv_timer_init(&run->loop, &run->phase);
    uv_timer_init(&run->loop, &run->settle);
    run->tick.data = run->phase.data = run->settle.data = run;
    sample_rss(o->rss_pid, &r->rss_before_kb);

    uv_timer_start(&run->tick, on_tick, 1, 1);
    if (o->idle_connections) {
        /* Memory per idle connection: N connections, one request each. */
        run->measuring = true;
        run->measure_ns = uv_hrtime();
        for (unsigned k = 0; k < conns; k++)
            issue(run, slot_get(run), 0);
    } else {
        if (o->warmup_s > 0) {
            uint64_t ms = (uint64_t)llround(o->warmup_s * 1000.0);
            uv_timer_start(&run->phase, on_phase, ms ? ms : 1, 0);
        } else {
            begin_measuring(run);
        }
        if (o->rate > 0) {
            run->t0_ns = uv_hrtime();
            release_due(run, run->t0_ns);
        } else {
            for (unsigned k = 0; k < conns && more_to_send(run); k++)
                issue(run, slot_get(run), 0);
        }
    }
    uv_run(&run->loop, UV_RUN_DEFAULT);
    int cr = uv_loop_close(&run->loop);
    if (cr != 0)
        fprintf(stderr, "infergate-bench: event loop closed with handles open (%s)\n",
                uv_err_name(cr));

    uint64_t end = run->last_done_ns > run->measure_ns ? run->last_done_ns : run->measure_ns;
    r->elapsed_s = secs(end - run->measure_ns);
    r->rps = r->elapsed_s > 0 ? (double)r->responses / r->elapsed_s : 0;
    for (size_t k = 0; k < run->nall; k++)
        free(run->all[k]);
    free(run->all);
    free(run);
    return 0;
}

/* ---- reporting --------------------------------------------------------- */

double ig_load_ms(const ig_load_result_t *r, double q)
{
    return (double)ig_hist_quantile(&r->latency, q) / 1000.0;
}

static const char *mode_name(const ig_load_opts_t *o)
{
    if (o->idle_connections)
        return "idle";
    return o->rate > 0 ? "open" : "closed";
}

void ig_load_print(const ig_load_opts_t *o, const ig_load_result_t *r)
{
    printf("target      %s %s\n", o->method, o->url);
    if (o->idle_connections)
        printf("mode        %u idle keep-alive connections, one request each\n",
               o->idle_connections);
    else if (o->rate > 0)
        printf("mode        open loop at %.1f req/s, %u connections\n", o->rate, o->connections);
    else
        printf("mode        closed loop, %u connections\n", o->connections);
    printf("requests    %llu sent, %llu responses, %llu errors%s\n", (unsigned long long)r->sent,
           (unsigned long long)r->responses, (unsigned long long)r->errors_total,
           r->interrupted ? " (interrupted)" : "");
    printf("status     ");
    bool any = false;
    for (int s = 0; s < 600; s++) {
        if (r->by_status[s]) {
            printf(" %d: %llu", s, (unsigned long long)r->by_status[s]);
            any = true;
        }
    }
    printf("%s\n", any ? "" : " none");
    printf("errors      connect %llu, reset %llu, timeout %llu, protocol %llu, backlog %llu, "
           "canceled %llu\n",
           (unsigned long long)r->errors.connect, (unsigned long long)r->errors.reset,
           (unsigned long long)r->errors.timeout, (unsigned long long)r->errors.protocol,
           (unsigned long long)r->errors.backlog, (unsigned long long)r->errors.canceled);
    printf("duration    %.3f s\n", r->elapsed_s);
    printf("throughput  %.1f req/s\n", r->rps);
    if (r->latency.n)
        printf("latency     p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms%s\n",
               ig_load_ms(r, 0.5), ig_load_ms(r, 0.9), ig_load_ms(r, 0.99), ig_load_ms(r, 0.999),
               (double)r->latency.max / 1000.0,
               o->rate > 0 ? " (from the intended send time)" : "");
    else
        printf("latency     no responses\n");
    if (r->rss_before_kb || r->rss_end_kb) {
        unsigned n = r->connections_open;
        double delta = (double)r->rss_end_kb - (double)r->rss_before_kb;
        printf("rss         %llu KiB before, %llu KiB at the end with %u connections open",
               (unsigned long long)r->rss_before_kb, (unsigned long long)r->rss_end_kb, n);
        if (n)
            printf(" (%.2f KiB per connection)", delta / n);
        printf("\n");
    }
}

static void add_num(cJSON *o, const char *k, double v)
{
    cJSON_AddNumberToObject(o, k, v);
}

void *ig_load_json(const ig_load_opts_t *o, const ig_load_result_t *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "url", o->url);
    cJSON_AddStringToObject(j, "method", o->method);
    cJSON_AddStringToObject(j, "mode", mode_name(o));
    add_num(j, "connections", o->idle_connections ? o->idle_connections : o->connections);
    if (o->rate > 0)
        add_num(j, "rate", o->rate);
    add_num(j, "requests", (double)r->sent);
    add_num(j, "responses", (double)r->responses);
    cJSON *st = cJSON_AddObjectToObject(j, "status");
    for (int s = 0; s < 600; s++) {
        if (r->by_status[s]) {
            char k[8];
            snprintf(k, sizeof(k), "%d", s);
            add_num(st, k, (double)r->by_status[s]);
        }
    }
    cJSON *e = cJSON_AddObjectToObject(j, "errors");
    add_num(e, "connect", (double)r->errors.connect);
    add_num(e, "reset", (double)r->errors.reset);
    add_num(e, "timeout", (double)r->errors.timeout);
    add_num(e, "protocol", (double)r->errors.protocol);
    add_num(e, "backlog", (double)r->errors.backlog);
    add_num(e, "canceled", (double)r->errors.canceled);
    add_num(j, "errors_total", (double)r->errors_total);
    add_num(j, "duration_s", r->elapsed_s);
    add_num(j, "rps", r->rps);
    cJSON *l = cJSON_AddObjectToObject(j, "latency_ms");
    add_num(l, "p50", ig_load_ms(r, 0.5));
    add_num(l, "p90", ig_load_ms(r, 0.9));
    add_num(l, "p99", ig_load_ms(r, 0.99));
    add_num(l, "p99_9", ig_load_ms(r, 0.999));
    add_num(l, "max", (double)r->latency.max / 1000.0);
    add_num(l, "mean", r->latency.n ? (double)r->latency.sum / (double)r->latency.n / 1000.0 : 0);
    if (r->rss_before_kb || r->rss_end_kb) {
        cJSON *m = cJSON_AddObjectToObject(j, "rss_kb");
        add_num(m, "before", (double)r->rss_before_kb);
        add_num(m, "end", (double)r->rss_end_kb);
        add_num(m, "connections_open", r->connections_open);
        if (r->connections_open)
            add_num(m, "per_connection",
                    ((double)r->rss_end_kb - (double)r->rss_before_kb) / r->connections_open);
    }
    cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
    return j;
}
