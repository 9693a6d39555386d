/*
 * drain.c: the drain state machine (drain.h).
 *
 * CLOSING ends when nothing is queued or with the model and every client
 * connection has closed (each response now carries Connection: close, and
 * a connection that has not sent its first request yet gets a moment to do
 * so, see ig_server_stop_accepting). DONE ends when the last connection of
 * either port has closed (its last response flushed) or FLUSH_MS passed.
 * Nothing polls: requests finishing and connections closing (the servers'
 * on_conn_closed, wired by run.c) poke the drain.
 */
#include "infergate/proxy/drain.h"

#include <stdio.h>
#include <stdlib.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

/* How long DONE waits for the last responses to reach their clients. */
#define FLUSH_MS 2000

/* A request parked on the admin port until the drain completes. */
typedef struct waiter {
    ig_req_t *req;
    ig_drain_t *d;
    struct waiter *next;
} waiter_t;

struct ig_drain {
    uv_loop_t *loop;
    const ig_drain_ops_t *ops;
    void *ud;
    uint64_t grace_ms, timeout_ms;
    ig_server_t *data, *admin;
    ig_drain_phase_t phase;
    uv_timer_t timer;      /* grace, then drain.timeout_ms, then the flush deadline */
    uv_timer_t poll_timer; /* DONE: checks the flush from the loop, once per poke */
    uint64_t started_ns;
    bool timed_out; /* some requests were cut off by drain.timeout_ms */
    bool shut;      /* ops->shut_down was called */
    waiter_t *waiters;
    int open_handles; /* while closing */
};

ig_drain_t *ig_drain_new(uv_loop_t *loop, const ig_drain_ops_t *ops, void *ud, uint64_t grace_ms,
                         uint64_t timeout_ms, ig_server_t *data, ig_server_t *admin)
{
    ig_drain_t *d = ig_xcalloc(1, sizeof(*d));
    d->loop = loop;
    d->ops = ops;
    d->ud = ud;
    d->grace_ms = grace_ms;
    d->timeout_ms = timeout_ms;
    d->data = data;
    d->admin = admin;
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->poll_timer);
    d->timer.data = d->poll_timer.data = d;
    return d;
}

static void on_timer_closed(uv_handle_t *h)
{
    ig_drain_t *d = h->data;
    if (--d->open_handles == 0)
        free(d);
}

void ig_drain_free(ig_drain_t *d)
{
    if (!d)
        return;
    waiter_t *w = d->waiters;
    while (w) {
        waiter_t *n = w->next;
        w->req->on_abort = NULL;
        w->req->data = NULL;
        free(w);
        w = n;
    }
    d->waiters = NULL;
    /* The last close callback frees the drain. */
    d->open_handles = 2;
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    uv_close((uv_handle_t *)&d->poll_timer, on_timer_closed);
}

ig_drain_phase_t ig_drain_phase(const ig_drain_t *d)
{
    return d->phase;
}

const char *ig_drain_phase_name(ig_drain_phase_t p)
{
    switch (p) {
    case IG_DRAIN_NONE:
        return "serving";
    case IG_DRAIN_GRACE:
        return "grace";
    case IG_DRAIN_CLOSING:
        return "closing";
    case IG_DRAIN_DONE:
        return "drained";
    }
    return "unknown";
}

bool ig_drain_refusing(const ig_drain_t *d)
{
    return d->phase == IG_DRAIN_DONE || d->timed_out;
}

int ig_drain_exit_code(const ig_drain_t *d)
{
    return d->timed_out ? 1 : 0;
}

static void set_phase(ig_drain_t *d, ig_drain_phase_t p)
{
    d->phase = p;
    d->ops->phase_changed(d->ud);
}

static void shut_down(ig_drain_t *d)
{
    if (d->shut)
        return;
    d->shut = true;
    uv_timer_stop(&d->poll_timer);
    uv_timer_stop(&d->timer);
    d->ops->shut_down(d->ud);
}

/* DONE: the last responses (drain waiters included) are flushed when no
 * connection is left; run from the loop, never inside a server callback. */
static void on_flush_check(uv_timer_t *t)
{
    ig_drain_t *d = t->data;
    if (ig_server_connections(d->data) + ig_server_connections(d->admin) == 0)
        shut_down(d);
}

static void on_flush_deadline(uv_timer_t *t)
{
    shut_down(t->data);
}

static void enter_done(ig_drain_t *d)
{
    if (d->phase == IG_DRAIN_DONE)
        return;
    set_phase(d, IG_DRAIN_DONE);
    uv_timer_stop(&d->timer);
    uint64_t ms = (uv_hrtime() - d->started_ns) / 1000000;
    ig_log_info("drained in %llu ms%s", (unsigned long long)ms,
                d->timed_out ? ", some requests were cut off by drain.timeout_ms" : "");
    /* Admin responses from now on say Connection: close. */
    ig_server_stop_accepting(d->admin);
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"drained\":true,\"complete\":%s}\n",
                     d->timed_out ? "false" : "true");
    ig_header_t ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    while (d->waiters) {
        waiter_t *w = d->waiters;
        d->waiters = w->next;
        ig_req_t *req = w->req;
        req->on_abort = NULL;
        req->data = NULL;
        free(w);
        ig_req_respond(req, 200, &ct, 1, body, (size_t)n);
    }
    uv_timer_start(&d->timer, on_flush_deadline, FLUSH_MS, 0);
    uv_timer_start(&d->poll_timer, on_flush_check, 0, 0);
}

void ig_drain_poke(ig_drain_t *d)
{
    if (d->phase == IG_DRAIN_DONE && !d->shut)
        uv_timer_start(&d->poll_timer, on_flush_check, 0, 0);
    if (d->phase != IG_DRAIN_CLOSING)
        return;
    if (ig_server_active_requests(d->data) == 0 && d->ops->outstanding(d->ud) == 0 &&
        ig_server_connections(d->data) == 0)
        enter_done(d);
}

static void on_drain_timeout(uv_timer_t *t)
{
    ig_drain_t *d = t->data;
    uint64_t left = d->ops->outstanding(d->ud);
    if (left > 0 || ig_server_active_requests(d->data) > 0) {
        ig_log_warn("drain.timeout_ms passed with %llu requests outstanding: answering 503",
                    (unsigned long long)left);
        d->timed_out = true;
        d->ops->fail_all(d->ud);
    }
    enter_done(d);
}

static void on_grace_over(uv_timer_t *t)
{
    ig_drain_t *d = t->data;
    set_phase(d, IG_DRAIN_CLOSING);
    ig_log_info("drain: grace period over, closing the listener");
    ig_server_stop_accepting(d->data);
    uv_timer_start(&d->timer, on_drain_timeout, d->timeout_ms, 0);
    ig_drain_poke(d);
}

void ig_drain_start(ig_drain_t *d, const char *why)
{
    if (d->phase != IG_DRAIN_NONE)
        return;
    d->started_ns = uv_hrtime();
    set_phase(d, IG_DRAIN_GRACE);
    /* Clients that keep their connections learn to leave from
     * Connection: close on every response from now on. */
    ig_server_close_soon(d->data);
    ig_log_info("drain started (%s): readiness is now 503, accepting for %llu ms more", why,
                (unsigned long long)d->grace_ms);
    uv_timer_start(&d->timer, on_grace_over, d->grace_ms, 0);
}

static void on_waiter_abort(ig_req_t *req)
{
    waiter_t *me = req->data;
    waiter_t **pp = &me->d->waiters;
    while (*pp) {
        if (*pp == me) {
            *pp = me->next;
            free(me);
            return;
        }
        pp = &(*pp)->next;
    }
}

void ig_drain_add_waiter(ig_drain_t *d, ig_req_t *req)
{
    waiter_t *w = ig_xcalloc(1, sizeof(*w));
    w->req = req;
    w->d = d;
    w->next = d->waiters;
    d->waiters = w;
    req->data = w;
    req->on_abort = on_waiter_abort;
}
