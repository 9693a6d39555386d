/*
 * health.c: upstream readiness probing and the drain state machine.
 *
 * Probing: GET upstream.ready_path every 100 ms until the model first
 * answers 2xx (start-up is when readiness matters most), then every
 * upstream.probe_interval_ms. Probes use the upstream pool but not a
 * concurrency slot: they are not inference calls.
 *
 * Drain (DESIGN.md "Drain"): NONE -> GRACE (readiness 503, still serving
 * for drain.grace_ms) -> CLOSING (listener closed; queued and in-flight work
 * finishes, bounded by drain.timeout_ms, after which the rest gets 503
 * draining) -> DONE (drain waiters answered, connections flushed, the loop
 * ends). The exit code is 0 when nothing had to be cut off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/proxy/gateway.h"
#include "infergate/base/log.h"

#define STARTUP_PROBE_MS 100
/* How long DONE waits for the last responses to reach their clients. */
#define FLUSH_MS 2000

static void schedule_probe(ig_gateway_t *gw);

/* ---- probing ---------------------------------------------------------- */

static void set_ready(ig_gateway_t *gw, bool ok, const char *why)
{
    ig_health_t *h = &gw->health;
    if (ok != h->upstream_ready) {
        if (ok)
            ig_log_info("upstream is ready");
        else
            ig_log_warn("upstream is not ready: %s", why ? why : "unknown");
    }
    h->upstream_ready = ok;
    if (ok)
        h->ever_ready = true;
    if (why)
        snprintf(h->last_probe_error, sizeof(h->last_probe_error), "%s", why);
    else
        h->last_probe_error[0] = '\0';
    ig_metrics_set_ready(gw->metrics, ig_health_ready(gw));
}

static int on_probe_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                         int64_t content_length)
{
    (void)hdrs, (void)n, (void)content_length;
    ig_gateway_t *gw = c->data;
    gw->health.probe_status = status;
    return 0;
}

static void on_probe_body(ig_ucall_t *c, const char *data, size_t len)
{
    (void)c, (void)data, (void)len;
}

static void on_probe_done(ig_ucall_t *c, int err)
{
    ig_gateway_t *gw = c->data;
    ig_health_t *h = &gw->health;
    int status = h->probe_status;
    h->probe_busy = false;
    if (err == 0 && status >= 200 && status < 300) {
        h->probes_ok++;
        set_ready(gw, true, NULL);
    } else {
        char why[128];
        if (err)
            snprintf(why, sizeof(why), "probe failed: %s", ig_strerror(err));
        else
            snprintf(why, sizeof(why), "probe answered %d", status);
        h->probes_failed++;
        set_ready(gw, false, why);
    }
    if (h->phase == IG_DRAIN_NONE || h->phase == IG_DRAIN_GRACE)
        schedule_probe(gw);
}

static void on_probe_timer(uv_timer_t *t)
{
    ig_gateway_t *gw = t->data;
    ig_health_t *h = &gw->health;
    if (h->probe_busy || !gw->upstream)
        return;
    ig_ucall_t *c = &h->probe;
    memset(c, 0, sizeof(*c));
    c->data = gw;
    h->probe_status = 0;
    c->method = "GET";
    c->target = ig_slice_cstr(gw->cfg->upstream.ready_path);
    c->timeout_ms = gw->cfg->upstream.connect_timeout_ms + 1000;
    c->on_head = on_probe_head;
    c->on_body = on_probe_body;
    c->on_done = on_probe_done;
    if (ig_upstream_call(gw->upstream, c) == 0)
        h->probe_busy = true;
    else
        schedule_probe(gw);
}

static void schedule_probe(ig_gateway_t *gw)
{
    ig_health_t *h = &gw->health;
    uint64_t ms = h->ever_ready ? gw->cfg->upstream.probe_interval_ms : STARTUP_PROBE_MS;
    uv_timer_start(&h->probe_timer, on_probe_timer, ms, 0);
}

bool ig_health_ready(const ig_gateway_t *gw)
{
    return gw->health.upstream_ready && gw->health.phase == IG_DRAIN_NONE;
}

void ig_health_start(ig_gateway_t *gw)
{
    ig_health_t *h = &gw->health;
    uv_timer_init(gw->loop, &h->probe_timer);
    uv_timer_init(gw->loop, &h->drain_timer);
    uv_timer_init(gw->loop, &h->exit_timer);
    h->probe_timer.data = h->drain_timer.data = h->exit_timer.data = gw;
    ig_metrics_set_ready(gw->metrics, false);
    uv_timer_start(&h->probe_timer, on_probe_timer, 0, 0);
}

/* ---- drain ------------------------------------------------------------ */

static void on_closed_all(void *arg)
{
    (void)arg;
}

static void shut_down(ig_gateway_t *gw)
{
    ig_health_t *h = &gw->health;
    uv_timer_stop(&h->exit_timer);
    if (gw->data)
        ig_server_close(gw->data, on_closed_all, NULL);
    if (gw->admin)
        ig_server_close(gw->admin, on_closed_all, NULL);
    gw->data = gw->admin = NULL;
    if (h->probe_busy)
        ig_upstream_cancel(&h->probe);
    h->probe_busy = false;
    if (gw->upstream)
        ig_upstream_free(gw->upstream);
    gw->upstream = NULL;
    uv_close((uv_handle_t *)&h->probe_timer, NULL);
    uv_close((uv_handle_t *)&h->drain_timer, NULL);
    uv_close((uv_handle_t *)&h->exit_timer, NULL);
    uv_close((uv_handle_t *)&gw->sigterm, NULL);
    uv_close((uv_handle_t *)&gw->sigint, NULL);
}

/* Waits for the last responses (drain waiters included) to be flushed. */
static void on_exit_timer(uv_timer_t *t)
{
    ig_gateway_t *gw = t->data;
    ig_health_t *h = &gw->health;
    size_t open = (gw->data ? ig_server_connections(gw->data) : 0) +
                  (gw->admin ? ig_server_connections(gw->admin) : 0);
    if (open == 0 || uv_hrtime() >= h->exit_deadline_ns)
        shut_down(gw);
}

static void enter_done(ig_gateway_t *gw)
{
    ig_health_t *h = &gw->health;
    if (h->phase == IG_DRAIN_DONE)
        return;
    h->phase = IG_DRAIN_DONE;
    gw->exit_code = h->timed_out ? 1 : 0;
    uv_timer_stop(&h->drain_timer);
    uv_timer_stop(&h->probe_timer);
    uint64_t ms = (uv_hrtime() - h->drain_started_ns) / 1000000;
    ig_log_info("drained in %llu ms%s", (unsigned long long)ms,
                h->timed_out ? ", some requests were cut off by drain.timeout_ms" : "");
    /* Admin responses from now on say Connection: close. */
    ig_server_stop_accepting(gw->admin);
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"drained\":true,\"complete\":%s}\n",
                     h->timed_out ? "false" : "true");
    ig_header_t ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    while (h->waiters) {
        ig_waiter_t *w = h->waiters;
        h->waiters = w->next;
        ig_req_t *req = w->req;
        req->on_abort = NULL;
        req->data = NULL;
        free(w);
        ig_req_respond(req, 200, &ct, 1, body, (size_t)n);
    }
    h->exit_deadline_ns = uv_hrtime() + (uint64_t)FLUSH_MS * 1000000;
    uv_timer_stop(&h->exit_timer);
    uv_timer_start(&h->exit_timer, on_exit_timer, 0, 20);
}

static void check_drained(ig_gateway_t *gw)
{
    ig_health_t *h = &gw->health;
    if (h->phase != IG_DRAIN_CLOSING)
        return;
    /* Drained means: nothing queued or with the model, and every client
     * connection closed (each response now carries Connection: close, and
     * a connection that has not sent its first request yet gets a moment
     * to do so, see ig_server_stop_accepting). */
    if (ig_server_active_requests(gw->data) == 0 && ig_gateway_outstanding(gw) == 0 &&
        ig_server_connections(gw->data) == 0)
        enter_done(gw);
}

/* Connections also close without a request finishing: poll while closing. */
static void on_closing_poll(uv_timer_t *t)
{
    check_drained(t->data);
}

static void on_drain_timeout(uv_timer_t *t)
{
    ig_gateway_t *gw = t->data;
    ig_health_t *h = &gw->health;
    uint64_t left = ig_gateway_outstanding(gw);
    if (left > 0 || ig_server_active_requests(gw->data) > 0) {
        ig_log_warn("drain.timeout_ms passed with %llu requests outstanding: answering 503",
                    (unsigned long long)left);
        h->timed_out = true;
        ig_gateway_fail_all(gw);
    }
    enter_done(gw);
}

static void on_grace_over(uv_timer_t *t)
{
    ig_gateway_t *gw = t->data;
    ig_health_t *h = &gw->health;
    h->phase = IG_DRAIN_CLOSING;
    ig_log_info("drain: grace period over, closing the listener");
    ig_server_stop_accepting(gw->data);
    uv_timer_start(&h->drain_timer, on_drain_timeout, gw->cfg->drain.timeout_ms, 0);
    uv_timer_start(&h->exit_timer, on_closing_poll, 10, 10);
    check_drained(gw);
}

void ig_health_drain(ig_gateway_t *gw, const char *why)
{
    ig_health_t *h = &gw->health;
    if (h->phase != IG_DRAIN_NONE)
        return;
    h->phase = IG_DRAIN_GRACE;
    h->drain_started_ns = uv_hrtime();
    ig_metrics_set_ready(gw->metrics, false);
    /* Clients that keep their connections learn to leave from
     * Connection: close on every response from now on. */
    ig_server_close_soon(gw->data);
    ig_log_info("drain started (%s): readiness is now 503, accepting for %llu ms more", why,
                (unsigned long long)gw->cfg->drain.grace_ms);
    uv_timer_start(&h->drain_timer, on_grace_over, gw->cfg->drain.grace_ms, 0);
}

void ig_health_on_request_done(ig_gateway_t *gw)
{
    check_drained(gw);
}

static void on_waiter_abort(ig_req_t *req)
{
    ig_gateway_t *gw = req->data;
    ig_waiter_t **pp = &gw->health.waiters;
    while (*pp) {
        if ((*pp)->req == req) {
            ig_waiter_t *w = *pp;
            *pp = w->next;
            free(w);
            return;
        }
        pp = &(*pp)->next;
    }
}

void ig_health_add_waiter(ig_gateway_t *gw, ig_req_t *req)
{
    ig_waiter_t *w = ig_xcalloc(1, sizeof(*w));
    w->req = req;
    w->next = gw->health.waiters;
    gw->health.waiters = w;
    req->data = gw;
    req->on_abort = on_waiter_abort;
}

void ig_health_dispose(ig_gateway_t *gw)
{
    ig_waiter_t *w = gw->health.waiters;
    while (w) {
        ig_waiter_t *n = w->next;
        free(w);
        w = n;
    }
    gw->health.waiters = NULL;
}
