/*
 * gateway.c: the sidecar's data-port request path and its start-up.
 *
 * A request is routed, given a deadline, and admitted: it takes a
 * concurrency slot at once, waits in the bounded queue, or is refused with
 * its own status. With a slot it is forwarded to the model through the
 * upstream pool, and the response is streamed back as it arrives. Every
 * request ends in exactly one response; every error response goes through
 * ig_gateway_reject, which also counts it.
 *
 * Per-request state (ig_pending_t) is recycled through a free list, and its
 * deadline timer stays initialised across uses, so the steady state
 * allocates nothing per request.
 */
#include "infergate/gateway.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/error.h"
#include "infergate/log.h"

#define MAX_FWD_HEADERS (IG_SERVER_MAX_HEADERS + 6)

typedef enum {
    P_FREE,
    P_QUEUED,   /* waiting for a slot */
    P_UPSTREAM, /* holding a slot, call in progress */
} pending_state_t;

struct ig_pending {
    ig_adm_item_t item;
    ig_gateway_t *gw;
    ig_req_t *req;
    size_t route;
    pending_state_t state;
    uv_timer_t deadline_timer;
    uint64_t deadline_ns; /* 0: none */
    uint64_t queued_ns;
    uint64_t dispatched_ns;
    uint64_t head_ns;
    bool started; /* response head sent to the client */
    ig_ucall_t call;
    ig_header_t fwd[MAX_FWD_HEADERS];
    ig_buf_t xff;
    char timing[160];
    ig_pending_t *next_free;
    ig_pending_t *next_all;
};

static uint64_t now_us(const ig_gateway_t *gw)
{
    return uv_now(gw->loop) * 1000;
}

/* ---- pending pool ----------------------------------------------------- */

static ig_pending_t *pending_get(ig_gateway_t *gw)
{
    ig_pending_t *p = gw->free_pendings;
    if (p) {
        gw->free_pendings = p->next_free;
    } else {
        p = ig_xcalloc(1, sizeof(*p));
        p->gw = gw;
        uv_timer_init(gw->loop, &p->deadline_timer);
        p->deadline_timer.data = p;
        ig_buf_init(&p->xff, 4096);
        p->next_all = gw->all_pendings;
        gw->all_pendings = p;
    }
    p->next_free = NULL;
    p->req = NULL;
    p->state = P_FREE;
    p->started = false;
    p->deadline_ns = p->queued_ns = p->dispatched_ns = p->head_ns = 0;
    memset(&p->call, 0, sizeof(p->call));
    p->call.data = p;
    p->item.data = p;
    return p;
}

static void pending_put(ig_pending_t *p)
{
    ig_gateway_t *gw = p->gw;
    uv_timer_stop(&p->deadline_timer);
    if (p->req) {
        p->req->data = NULL;
        p->req->on_abort = NULL;
        p->req->on_writable = NULL;
    }
    p->req = NULL;
    p->state = P_FREE;
    p->next_free = gw->free_pendings;
    gw->free_pendings = p;
}

static void update_gauges(ig_gateway_t *gw)
{
    ig_metrics_set_inflight(gw->metrics, gw->inflight);
    ig_metrics_set_upstream_inflight(gw->metrics, gw->adm.inflight);
}

static void depth_change(ig_gateway_t *gw, size_t route, int delta)
{
    gw->route_depth[route] += (uint64_t)(int64_t)delta;
    ig_metrics_set_queue_depth(gw->metrics, route, gw->route_depth[route]);
}

/* ---- errors ----------------------------------------------------------- */

void ig_gateway_reject(ig_gateway_t *gw, ig_req_t *req, size_t route, int status,
                       ig_reason_t reason, const char *msg)
{
    ig_header_t h[2];
    size_t n = 0;
    char retry[16];
    if (reason == IG_REASON_QUEUE_FULL || reason == IG_REASON_DEADLINE_UNMEETABLE ||
        reason == IG_REASON_DRAINING) {
        snprintf(retry, sizeof(retry), "%" PRIu32, ig_admission_retry_after_s(&gw->adm));
        h[n++] = (ig_header_t){IG_SLICE_LIT("Retry-After"), ig_slice_cstr(retry)};
    }
    if (reason == IG_REASON_DRAINING)
        ig_req_set_close(req);
    if (reason == IG_REASON_UPSTREAM_UNAVAILABLE || reason == IG_REASON_UPSTREAM_TIMEOUT ||
        reason == IG_REASON_BAD_RESPONSE)
        ig_metrics_upstream_error(gw->metrics, reason);
    else
        ig_metrics_rejected(gw->metrics, route, reason);
    ig_req_error(req, status, ig_reason_name(reason), msg, h, n);
}

/* Ends a pending request with an error response (if nothing was sent yet)
 * or a truncated connection (if the response had started). */
static void pending_fail(ig_pending_t *p, int status, ig_reason_t reason, const char *msg)
{
    ig_gateway_t *gw = p->gw;
    ig_req_t *req = p->req;
    size_t route = p->route;
    bool started = p->started;
    pending_put(p);
    if (started) {
        if (reason == IG_REASON_UPSTREAM_UNAVAILABLE || reason == IG_REASON_UPSTREAM_TIMEOUT ||
            reason == IG_REASON_BAD_RESPONSE)
            ig_metrics_upstream_error(gw->metrics, reason);
        ig_req_abort(req);
    } else {
        ig_gateway_reject(gw, req, route, status, reason, msg);
    }
}

/* ---- forwarding --------------------------------------------------------- */

static void dispatch(ig_pending_t *p);

/* A slot came free: give it to the oldest queued request. */
static void release_slot(ig_gateway_t *gw, uint64_t held_us)
{
    ig_admission_release(&gw->adm, held_us);
    ig_adm_item_t *it;
    while ((it = ig_admission_pop(&gw->adm)) != NULL) {
        ig_pending_t *next = it->data;
        uv_timer_stop(&next->deadline_timer);
        depth_change(gw, next->route, -1);
        dispatch(next);
    }
    update_gauges(gw);
}

/* The call of `p` is over: its slot goes to the next request. `reached`
 * says whether the call got to the model (then its time is recorded). */
static void finish_call(ig_pending_t *p, bool reached)
{
    ig_gateway_t *gw = p->gw;
    uint64_t held = 0;
    if (reached) {
        held = (uv_hrtime() - p->dispatched_ns) / 1000;
        held = held ? held : 1;
        ig_metrics_upstream_call(gw->metrics, p->route, held, 1, 1, now_us(gw));
    }
    p->state = P_FREE;
    release_slot(gw, held);
}

static bool connection_listed(ig_slice_t conn_hdr, ig_slice_t name)
{
    /* Connection: a, b names more hop-by-hop headers (RFC 9110 7.6.1). */
    const char *s = conn_hdr.base, *end = conn_hdr.base + conn_hdr.len;
    while (s < end) {
        while (s < end && (*s == ' ' || *s == ',' || *s == '\t'))
            s++;
        const char *t = s;
        while (t < end && *t != ',' && *t != ' ' && *t != '\t')
            t++;
        if ((size_t)(t - s) == name.len && strncasecmp(s, name.base, name.len) == 0)
            return true;
        s = t;
    }
    return false;
}

static size_t build_forward_headers(ig_pending_t *p)
{
    ig_req_t *req = p->req;
    ig_slice_t conn_hdr = ig_req_header(req, "connection");
    ig_slice_t old_xff = {NULL, 0};
    bool have_id = false, have_proto = false;
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders && n < MAX_FWD_HEADERS - 4; i++) {
        ig_slice_t name = req->headers[i].name;
        if (ig_http_is_hop_by_hop(name) || ig_slice_ieq(name, "host") ||
            ig_slice_ieq(name, "content-length") || ig_slice_ieq(name, "expect") ||
            ig_slice_ieq(name, "x-infergate-timeout-ms") ||
            (conn_hdr.base && connection_listed(conn_hdr, name)))
            continue;
        if (ig_slice_ieq(name, "x-forwarded-for")) {
            if (!old_xff.base)
                old_xff = req->headers[i].value;
            continue;
        }
        if (ig_slice_ieq(name, "x-request-id"))
            have_id = true;
        if (ig_slice_ieq(name, "x-forwarded-proto"))
            have_proto = true;
        p->fwd[n++] = req->headers[i];
    }
    ig_buf_reset(&p->xff);
    if (old_xff.base && old_xff.len > 0 &&
        ig_buf_append_slice(&p->xff, old_xff) == 0 && ig_buf_append(&p->xff, ", ", 2) == 0) {
        /* appended below */
    } else {
        ig_buf_reset(&p->xff);
    }
    if (ig_buf_append_str(&p->xff, req->peer_ip) != 0) {
        ig_buf_reset(&p->xff);
        ig_buf_append_str(&p->xff, req->peer_ip);
    }
    p->fwd[n++] = (ig_header_t){IG_SLICE_LIT("X-Forwarded-For"), ig_slice(p->xff.base, p->xff.len)};
    if (!have_proto)
        p->fwd[n++] = (ig_header_t){IG_SLICE_LIT("X-Forwarded-Proto"), IG_SLICE_LIT("http")};
    if (!have_id)
        p->fwd[n++] = (ig_header_t){IG_SLICE_LIT("X-Request-Id"), req->request_id};
    return n;
}

static int on_up_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                      int64_t content_length)
{
    ig_pending_t *p = c->data;
    ig_req_t *req = p->req;
    p->head_ns = uv_hrtime();
    ig_header_t out[MAX_FWD_HEADERS];
    size_t k = 0;
    for (size_t i = 0; i < n && k < MAX_FWD_HEADERS - 1; i++) {
        ig_slice_t name = hdrs[i].name;
        if (ig_http_is_hop_by_hop(name) || ig_slice_ieq(name, "content-length") ||
            ig_slice_ieq(name, "x-request-id"))
            continue;
        out[k++] = hdrs[i];
    }
    double queue_ms = (double)(p->dispatched_ns - p->queued_ns) / 1e6;
    double up_ms = (double)(p->head_ns - p->dispatched_ns) / 1e6;
    int tl = snprintf(p->timing, sizeof(p->timing), "queue;dur=%.3f, upstream;dur=%.3f, batch;desc=1",
                      queue_ms, up_ms);
    out[k++] = (ig_header_t){IG_SLICE_LIT("Server-Timing"), ig_slice(p->timing, (size_t)tl)};
    p->started = true;
    ig_req_start(req, status, out, k, content_length >= 0 ? content_length : IG_REQ_CHUNKED);
    return 0;
}

static void on_up_body(ig_ucall_t *c, const char *data, size_t len)
{
    ig_pending_t *p = c->data;
    if (ig_req_write(p->req, data, len) >= IG_SERVER_HIGH_WATER)
        ig_upstream_pause(c);
}

static void on_client_writable(ig_req_t *req)
{
    ig_pending_t *p = req->data;
    if (p && p->state == P_UPSTREAM)
        ig_upstream_resume(&p->call);
}

static void on_up_done(ig_ucall_t *c, int err)
{
    ig_pending_t *p = c->data;
    ig_gateway_t *gw = p->gw;
    finish_call(p, err != IG_ECONNREFUSED && err != IG_ECANCELED);
    if (err == 0) {
        ig_req_t *req = p->req;
        pending_put(p);
        ig_req_finish(req);
        return;
    }
    char msg[160];
    if (err == IG_ETIMEDOUT) {
        snprintf(msg, sizeof(msg), "the model did not answer in time");
        pending_fail(p, 504, IG_REASON_UPSTREAM_TIMEOUT, msg);
    } else if (err == IG_EPROTO) {
        snprintf(msg, sizeof(msg), "the model sent an invalid HTTP response");
        pending_fail(p, 502, IG_REASON_BAD_RESPONSE, msg);
    } else if (err == IG_ECANCELED) {
        pending_fail(p, 503, IG_REASON_DRAINING, "the gateway is shutting down");
    } else {
        snprintf(msg, sizeof(msg), "the model is unavailable: %s", ig_strerror(err));
        pending_fail(p, 502, IG_REASON_UPSTREAM_UNAVAILABLE, msg);
    }
    (void)gw;
}

static void dispatch(ig_pending_t *p)
{
    ig_gateway_t *gw = p->gw;
    ig_req_t *req = p->req;
    const ig_config_t *cfg = gw->cfg;
    p->dispatched_ns = uv_hrtime();
    ig_metrics_queue_wait(gw->metrics, p->route, (p->dispatched_ns - p->queued_ns) / 1000);

    uint64_t timeout_ms = cfg->upstream.timeout_ms;
    if (p->deadline_ns) {
        if (p->dispatched_ns >= p->deadline_ns) {
            /* Expired in the same loop turn that freed its slot. */
            finish_call(p, false);
            pending_fail(p, 504, IG_REASON_DEADLINE, "deadline passed while queued");
            return;
        }
        uint64_t left_ms = (p->deadline_ns - p->dispatched_ns + 999999) / 1000000;
        if (left_ms < timeout_ms || timeout_ms == 0)
            timeout_ms = left_ms;
    }
    ig_ucall_t *c = &p->call;
    c->data = p;
    c->method = req->method_name.base;
    c->target = req->target;
    c->nheaders = build_forward_headers(p);
    c->headers = p->fwd;
    c->body = req->body;
    c->timeout_ms = timeout_ms;
    c->on_head = on_up_head;
    c->on_body = on_up_body;
    c->on_done = on_up_done;
    p->state = P_UPSTREAM;
    req->on_writable = on_client_writable;
    update_gauges(gw);
    if (ig_upstream_call(gw->upstream, c) != 0) {
        finish_call(p, false);
        pending_fail(p, 502, IG_REASON_UPSTREAM_UNAVAILABLE, "the upstream pool refused the call");
    }
}

/* ---- deadlines and client aborts ------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    ig_pending_t *p = t->data;
    ig_gateway_t *gw = p->gw;
    if (p->state != P_QUEUED)
        return;
    ig_admission_remove(&gw->adm, &p->item);
    depth_change(gw, p->route, -1);
    pending_fail(p, 504, IG_REASON_DEADLINE, "deadline passed while queued");
}

static void on_client_abort(ig_req_t *req)
{
    ig_pending_t *p = req->data;
    ig_gateway_t *gw = p->gw;
    if (p->state == P_QUEUED) {
        /* Never sent upstream. */
        ig_admission_remove(&gw->adm, &p->item);
        depth_change(gw, p->route, -1);
        p->req = NULL;
        pending_put(p);
    } else if (p->state == P_UPSTREAM) {
        ig_upstream_cancel(&p->call);
        p->req = NULL;
        finish_call(p, true);
        pending_put(p);
    }
}

/* ---- the request handler --------------------------------------------- */

static int parse_timeout_header(ig_slice_t v, uint64_t *ms)
{
    if (v.len == 0 || v.len > 9)
        return IG_EINVAL;
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return IG_EINVAL;
        x = x * 10 + (uint64_t)(v.base[i] - '0');
    }
    if (x == 0)
        return IG_EINVAL;
    *ms = x;
    return 0;
}

static bool answer_own_health(ig_gateway_t *gw, ig_req_t *req)
{
    if (!ig_slice_eq(req->path, "/v2/health/live") && !ig_slice_eq(req->path, "/v2/health/ready"))
        return false;
    bool live = ig_slice_eq(req->path, "/v2/health/live");
    bool ok = live ? gw->health.phase != IG_DRAIN_DONE : ig_health_ready(gw);
    static const char yes[] = "{\"live\":true}\n", ready[] = "{\"ready\":true}\n",
                      notready[] = "{\"ready\":false}\n";
    ig_header_t h = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    if (live)
        ig_req_respond(req, 200, &h, 1, yes, sizeof(yes) - 1);
    else if (ok)
        ig_req_respond(req, 200, &h, 1, ready, sizeof(ready) - 1);
    else
        ig_req_respond(req, 503, &h, 1, notready, sizeof(notready) - 1);
    return true;
}

void ig_gateway_on_request(ig_req_t *req, void *ud)
{
    ig_gateway_t *gw = ud;

    if (answer_own_health(gw, req))
        return;
    ig_route_match_t m;
    if (ig_router_match(&gw->router, req->path, &m) != 0) {
        ig_gateway_reject(gw, req, IG_METRICS_NO_ROUTE, 404, IG_REASON_NO_ROUTE,
                          "no route matches this path");
        return;
    }
    size_t route = m.index;
    req->tag = route + 1;
    ig_metrics_arrival(gw->metrics, route, now_us(gw));
    if (gw->health.phase == IG_DRAIN_DONE || gw->health.timed_out) {
        ig_gateway_reject(gw, req, route, 503, IG_REASON_DRAINING, "the gateway is draining");
        return;
    }
    uint64_t timeout_ms = m.route->queue_timeout_ms;
    ig_slice_t th = ig_req_header(req, "x-infergate-timeout-ms");
    if (th.base && parse_timeout_header(th, &timeout_ms) != 0) {
        ig_gateway_reject(gw, req, route, 400, IG_REASON_BAD_REQUEST,
                          "X-Infergate-Timeout-Ms must be a positive integer of milliseconds");
        return;
    }

    ig_pending_t *p = pending_get(gw);
    p->req = req;
    p->route = route;
    p->queued_ns = uv_hrtime();
    p->deadline_ns = timeout_ms ? req->start_ns + timeout_ms * 1000000ull : 0;
    uint64_t budget_us = 0;
    if (p->deadline_ns) {
        if (p->deadline_ns <= p->queued_ns) {
            pending_put(p);
            ig_gateway_reject(gw, req, route, 504, IG_REASON_DEADLINE,
                              "deadline passed before the request was read");
            return;
        }
        budget_us = (p->deadline_ns - p->queued_ns) / 1000;
    }
    req->data = p;
    req->on_abort = on_client_abort;

    int r = ig_admission_arrive(&gw->adm, &p->item, budget_us);
    if (r == IG_ADMIT_RUN) {
        dispatch(p);
        return;
    }
    if (r == IG_ADMIT_QUEUED) {
        p->state = P_QUEUED;
        depth_change(gw, route, +1);
        if (p->deadline_ns)
            uv_timer_start(&p->deadline_timer, on_deadline,
                           (p->deadline_ns - p->queued_ns + 999999) / 1000000, 0);
        return;
    }
    pending_put(p);
    if (r == IG_EQUEUEFULL)
        ig_gateway_reject(gw, req, route, 503, IG_REASON_QUEUE_FULL,
                          "the queue is full (limits.max_queue)");
    else
        ig_gateway_reject(gw, req, route, 503, IG_REASON_DEADLINE_UNMEETABLE,
                          "the deadline cannot be met at the current queue length");
}

uint64_t ig_gateway_outstanding(const ig_gateway_t *gw)
{
    return gw->adm.depth + gw->adm.inflight;
}

void ig_gateway_fail_all(ig_gateway_t *gw)
{
    ig_adm_item_t *it;
    while ((it = ig_admission_pop_rider(&gw->adm)) != NULL) {
        ig_pending_t *p = it->data;
        depth_change(gw, p->route, -1);
        pending_fail(p, 503, IG_REASON_DRAINING,
                     "the gateway is shutting down and drain.timeout_ms has passed");
    }
    for (ig_pending_t *p = gw->all_pendings; p; p = p->next_all) {
        if (p->state != P_UPSTREAM)
            continue;
        ig_upstream_cancel(&p->call);
        finish_call(p, true);
        pending_fail(p, 503, IG_REASON_DRAINING,
                     "the gateway is shutting down and drain.timeout_ms has passed");
    }
}

/* ---- access log and completion ---------------------------------------- */

static void on_data_complete(ig_req_t *req, int status, uint64_t bytes_out, void *ud)
{
    ig_gateway_t *gw = ud;
    uint64_t dur_us = (uv_hrtime() - req->start_ns) / 1000;
    size_t route = req->tag ? (size_t)(req->tag - 1) : IG_METRICS_NO_ROUTE;
    ig_metrics_request_done(gw->metrics, route, status, dur_us, now_us(gw));
    if (gw->inflight > 0)
        gw->inflight--;
    update_gauges(gw);
    if (gw->cfg->log.access_log && ig_log_threshold <= IG_LOG_INFO) {
        ig_buf_t *b = &gw->scratch;
        ig_buf_reset(b);
        ig_buf_append_str(b, "{\"msg\":\"access\",\"method\":");
        ig_buf_append_json_str(b, req->method_name.base, req->method_name.len);
        ig_buf_append_str(b, ",\"path\":");
        ig_buf_append_json_str(b, req->path.base, req->path.len);
        ig_buf_printf(b, ",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%" PRIu64 ",\"peer\":",
                      status, (double)dur_us / 1000.0, bytes_out);
        ig_buf_append_json_str(b, req->peer_ip, strlen(req->peer_ip));
        ig_buf_append_str(b, ",\"request_id\":");
        ig_buf_append_json_str(b, req->request_id.base, req->request_id.len);
        ig_buf_append_str(b, "}\n");
        ig_log_raw(b->base, b->len);
    }
    ig_health_on_request_done(gw);
}

static void on_data_request(ig_req_t *req, void *ud)
{
    ig_gateway_t *gw = ud;
    gw->inflight++;
    ig_gateway_on_request(req, ud);
}

/* ---- start-up and shutdown -------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum)
{
    ig_gateway_t *gw = s->data;
    ig_health_drain(gw, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int ig_gateway_run(const ig_config_t *cfg)
{
    ig_gateway_t gw_storage;
    ig_gateway_t *gw = &gw_storage;
    memset(gw, 0, sizeof(*gw));
    char err[512];
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw->loop = &loop;
    gw->cfg = cfg;
    ig_log_threshold = cfg->log.level;
    ig_buf_init(&gw->scratch, 0);

    if (ig_router_init(&gw->router, cfg->routes, cfg->nroutes, err, sizeof(err)) != 0) {
        ig_log_fail("invalid routes: %s", err);
        return 2;
    }
    gw->route_names = ig_xcalloc(cfg->nroutes, sizeof(char *));
    for (size_t i = 0; i < cfg->nroutes; i++)
        gw->route_names[i] = cfg->routes[i].match;
    gw->route_depth = ig_xcalloc(cfg->nroutes, sizeof(uint64_t));
    gw->metrics = ig_metrics_new(cfg->nroutes, gw->route_names, cfg->metrics.window_s,
                                 cfg->upstream.max_concurrency);
    ig_metrics_start(gw->metrics, now_us(gw));
    ig_admission_init(&gw->adm, cfg->limits.max_queue, cfg->upstream.max_concurrency);

    ig_upstream_opts_t uo = {
        .url = cfg->upstream.url,
        .max_connections = cfg->upstream.max_connections,
        .connect_timeout_ms = cfg->upstream.connect_timeout_ms,
        .timeout_ms = cfg->upstream.timeout_ms,
        .max_header_bytes = cfg->limits.max_header_bytes * 4,
    };
    int rc = 1;
    if (ig_upstream_new(&loop, &uo, &gw->upstream, err, sizeof(err)) != 0) {
        ig_log_fail("%s", err);
        goto out;
    }

    ig_server_opts_t so = {
        .limits = {
            .max_header_bytes = cfg->limits.max_header_bytes,
            .max_body_bytes = cfg->limits.max_body_bytes,
            .header_timeout_ms = cfg->limits.header_timeout_ms,
            .idle_timeout_ms = cfg->limits.idle_timeout_ms,
            .max_connections = cfg->limits.max_connections,
        },
        .on_request = on_data_request,
        .on_complete = on_data_complete,
        .ud = gw,
    };
    gw->data = ig_server_new(&loop, &so);
    int r = ig_server_listen(gw->data, cfg->listen);
    if (r != 0) {
        ig_log_fail("cannot listen on %s (listen): %s", cfg->listen, ig_strerror(r));
        goto out;
    }
    ig_server_opts_t ao = so;
    ao.limits.max_body_bytes = 4096;
    ao.limits.max_connections = 256;
    ao.on_request = ig_admin_on_request;
    ao.on_complete = NULL;
    gw->admin = ig_server_new(&loop, &ao);
    r = ig_server_listen(gw->admin, cfg->admin_listen);
    if (r != 0) {
        ig_log_fail("cannot listen on %s (admin_listen): %s", cfg->admin_listen, ig_strerror(r));
        goto out;
    }

    uv_signal_init(&loop, &gw->sigterm);
    uv_signal_init(&loop, &gw->sigint);
    gw->sigterm.data = gw->sigint.data = gw;
    uv_signal_start(&gw->sigterm, on_signal, SIGTERM);
    uv_signal_start(&gw->sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    ig_health_start(gw);
    char fields[256];
    snprintf(fields, sizeof(fields), "\"listen\":\"%s\",\"admin_listen\":\"%s\",\"upstream\":\"%s\"",
             cfg->listen, cfg->admin_listen, cfg->upstream.url);
    IG_LOGF(IG_LOG_INFO, fields, "infergate serving");
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = gw->exit_code;
    IG_LOGF(IG_LOG_INFO, NULL, "infergate stopped, exit code %d", rc);

out:
    /* Close whatever is still open so the loop can be closed cleanly. */
    if (gw->data && gw->health.phase != IG_DRAIN_DONE)
        ig_server_close(gw->data, NULL, NULL);
    if (gw->admin && gw->health.phase != IG_DRAIN_DONE)
        ig_server_close(gw->admin, NULL, NULL);
    if (gw->upstream)
        ig_upstream_free(gw->upstream);
    uv_walk(&loop, close_walk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ig_pending_t *p = gw->all_pendings;
    while (p) {
        ig_pending_t *n = p->next_all;
        ig_buf_dispose(&p->xff);
        free(p);
        p = n;
    }
    ig_metrics_free(gw->metrics);
    free(gw->route_names);
    free(gw->route_depth);
    ig_buf_dispose(&gw->scratch);
    return rc;
}
