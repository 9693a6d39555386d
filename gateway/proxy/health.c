/*
 * health.c: readiness probing of the model (health.h).
 */
#include "infergate/proxy/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

#define STARTUP_PROBE_MS 100

struct ig_health {
    uv_loop_t *loop;
    ig_upstream_t *upstream;
    const char *ready_path;
    uint64_t interval_ms, timeout_ms;
    ig_health_cb on_change;
    void *ud;
    uv_timer_t timer;
    ig_ucall_t probe;
    bool probe_busy;
    bool stopped;
    int probe_status;
    bool upstream_ready;
    bool ever_ready;
    char last_error[128];
};

static void schedule_probe(ig_health_t *h);

static void set_ready(ig_health_t *h, bool ok, const char *why)
{
    bool changed = ok != h->upstream_ready;
    if (changed) {
        if (ok)
            ig_log_info("upstream is ready");
        else
            ig_log_warn("upstream is not ready: %s", why ? why : "unknown");
    }
    h->upstream_ready = ok;
    if (ok)
        h->ever_ready = true;
    snprintf(h->last_error, sizeof(h->last_error), "%s", why ? why : "");
    h->on_change(h->ud);
}

static int on_probe_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                         int64_t content_length)
{
    (void)hdrs, (void)n, (void)content_length;
    ig_health_t *h = c->data;
    h->probe_status = status;
    return 0;
}

static void on_probe_body(ig_ucall_t *c, const char *data, size_t len)
{
    (void)c, (void)data, (void)len;
}

static void on_probe_done(ig_ucall_t *c, int err)
{
    ig_health_t *h = c->data;
    int status = h->probe_status;
    h->probe_busy = false;
    if (err == 0 && status >= 200 && status < 300) {
        set_ready(h, true, NULL);
    } else {
        char why[128];
        if (err)
            snprintf(why, sizeof(why), "probe failed: %s", ig_strerror(err));
        else
            snprintf(why, sizeof(why), "probe answered %d", status);
        set_ready(h, false, why);
    }
    if (!h->stopped)
        schedule_probe(h);
}

static void on_probe_timer(uv_timer_t *t)
{
    ig_health_t *h = t->data;
    if (h->probe_busy || h->stopped)
        return;
    ig_ucall_t *c = &h->probe;
    memset(c, 0, sizeof(*c));
    c->data = h;
    h->probe_status = 0;
    c->method = "GET";
    c->target = ig_slice_cstr(h->ready_path);
    c->timeout_ms = h->timeout_ms;
    c->on_head = on_probe_head;
    c->on_body = on_probe_body;
    c->on_done = on_probe_done;
    /* Busy before the call: its callbacks never run before it returns
     * (upstream.h), but the flag must be right whenever they do. */
    h->probe_busy = true;
    if (ig_upstream_call(h->upstream, c) != 0) {
        h->probe_busy = false;
        schedule_probe(h);
    }
}

static void schedule_probe(ig_health_t *h)
{
    uint64_t ms = h->ever_ready ? h->interval_ms : STARTUP_PROBE_MS;
    uv_timer_start(&h->timer, on_probe_timer, ms, 0);
}

ig_health_t *ig_health_new(uv_loop_t *loop, ig_upstream_t *upstream, const char *ready_path,
                           uint64_t interval_ms, uint64_t probe_timeout_ms, ig_health_cb on_change,
                           void *ud)
{
    ig_health_t *h = ig_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->upstream = upstream;
    h->ready_path = ready_path;
    h->interval_ms = interval_ms;
    h->timeout_ms = probe_timeout_ms;
    h->on_change = on_change;
    h->ud = ud;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_probe_timer, 0, 0);
    return h;
}

void ig_health_stop(ig_health_t *h)
{
    h->stopped = true;
    uv_timer_stop(&h->timer);
}

static void on_closed(uv_handle_t *t)
{
    free(t->data);
}

void ig_health_free(ig_health_t *h)
{
    if (!h)
        return;
    ig_health_stop(h);
    if (h->probe_busy)
        ig_upstream_cancel(&h->probe);
    h->probe_busy = false;
    uv_close((uv_handle_t *)&h->timer, on_closed);
}

bool ig_health_upstream_ready(const ig_health_t *h)
{
    return h->upstream_ready;
}

const char *ig_health_last_error(const ig_health_t *h)
{
    return h->last_error;
}
