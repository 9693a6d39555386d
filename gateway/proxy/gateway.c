/*
 * gateway.c: the sidecar's data-port request path: admission and dispatch.
 *
 * A request is routed, given a deadline, and admitted: it takes a
 * concurrency slot at once, waits in the bounded queue, or is refused with
 * its own status. On a batching route its body is parsed first (a bad one
 * gets 400 alone) and it waits in its batch group (batcher.c) until the
 * group is ready; a batch of several goes to the model as one call
 * (batch_call.c). Alone, a request goes through the passthrough forwarder
 * (forward.c). Both are handed an owner table and never call back up by
 * name; the pending request's state is pending.c's alone. Every request
 * ends in exactly one response; every error goes through ig_gateway_reject
 * and ig_req_reject, and the server's on_reject counts it. Start-up and
 * teardown: run.c.
 */
#include "gateway_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/base/hash.h"
#include "infergate/base/log.h"

static void pending_put(ig_pending_t *p)
{
    ig_pending_put(&p->gw->pendings, p);
}

static void depth_change(ig_gateway_t *gw, size_t route, int delta)
{
    gw->route_depth[route] += (uint64_t)(int64_t)delta;
    ig_metrics_set_queue_depth(gw->metrics, route, gw->route_depth[route]);
}

/* ---- errors ----------------------------------------------------------- */

void ig_gateway_reject(ig_gateway_t *gw, ig_req_t *req, ig_reason_t reason, const char *msg)
{
    ig_header_t h[1];
    size_t n = 0;
    char retry[16];
    if (ig_reason_flags(reason) & IG_RF_RETRY_AFTER) {
        snprintf(retry, sizeof(retry), "%" PRIu32, ig_admission_retry_after_s(&gw->adm));
        h[n++] = (ig_header_t){IG_SLICE_LIT("Retry-After"), ig_slice_cstr(retry)};
    }
    /* Counted by the server's on_reject (run.c). */
    ig_req_reject(req, reason, msg, h, n);
}

/* Ends a pending request with an error response (if nothing was sent yet)
 * or a truncated connection (if the response had started). A failed call
 * to the model is counted here, once: this request was the call. */
void ig_gw_pending_fail(ig_pending_t *p, ig_reason_t reason, const char *msg)
{
    ig_gateway_t *gw = p->gw;
    ig_req_t *req = p->req;
    bool started = p->started;
    pending_put(p);
    if (ig_reason_flags(reason) & IG_RF_UPSTREAM)
        ig_metrics_upstream_error(gw->metrics, reason);
    /* A head still in the cork (the model's answer failed in the same read)
     * is taken back, so the client gets the error instead of nothing. */
    if (started && ig_req_unstart(req) == 0)
        started = false;
    if (started)
        ig_req_abort(req);
    else
        ig_gateway_reject(gw, req, reason, msg);
}

/* ---- forwarding --------------------------------------------------------- */

static void dispatch(ig_pending_t *p);
static void release_slot(ig_gateway_t *gw, uint64_t held_us);
static void requeue_alone(ig_pending_t *p);

/* What batch calls may ask of the request path. */
static void finish_call(ig_pending_t *p, bool reached);
static const ig_forward_owner_t forward_owner = {
    .call_over = finish_call,
    .fail = ig_gw_pending_fail,
};
static const ig_bcall_owner_t bcall_owner = {
    .release_slot = release_slot,
    .requeue_alone = requeue_alone,
    .reject = ig_gateway_reject,
};

/* Gives free concurrency slots to queued requests, oldest first. A
 * request of a batching route goes when its group is ready (full, a
 * preferred size reached, or its oldest member waited max_delay_us), and
 * takes batch-mates of its group along; a group not ready yet is passed
 * over for the requests behind it. */
static void pump(ig_gateway_t *gw)
{
    /* A dispatch that fails at once releases its slot, which pumps again:
     * the loop below already goes on with the next request, so a nested
     * call has nothing to add (and must not grow the stack per request). */
    if (gw->pumping)
        return;
    gw->pumping = true;
    while (gw->adm.inflight < gw->adm.max_concurrency && gw->adm.queue.head) {
        uint64_t now = uv_hrtime();
        ig_pending_t *p = NULL;
        for (ig_link_t *l = gw->adm.queue.head; l; l = l->next) {
            ig_pending_t *c = IG_LIST_ITEM(l, ig_adm_item_t, link)->data;
            if (!c->member.group || ig_batcher_ready(c->member.group, now)) {
                p = c;
                break;
            }
        }
        if (!p)
            break;
        if (!p->member.group) {
            ig_admission_take(&gw->adm, &p->item);
            depth_change(gw, p->route, -1);
            dispatch(p);
            continue;
        }
        ig_batch_member_t **ms = gw->pump_taken;
        size_t n = ig_batcher_take(p->member.group, now, ms, IG_GW_MAX_BATCH);
        ig_pending_t **members = gw->pump_members;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            ig_pending_t *q = ms[i]->data;
            ig_admission_remove(&gw->adm, &q->item);
            depth_change(gw, q->route, -1);
            if (q->deadline_ns && q->deadline_ns <= now) {
                /* Its deadline passed in this same loop turn, before its
                 * timer could run: it expired while queued. */
                ig_gw_pending_fail(q, IG_REASON_DEADLINE, "deadline passed while queued");
                continue;
            }
            members[k++] = q;
        }
        if (k == 0)
            continue;
        ig_admission_take(&gw->adm, &members[0]->item); /* the call's one slot */
        if (k == 1) {
            /* Alone after all: the request goes as it came, streamed back. */
            dispatch(members[0]);
        } else {
            /* Deadline timers keep running: each member's own deadline
             * still holds while the model works on the batch. */
            ig_bcall_dispatch(gw, &bcall_owner, members, k);
        }
    }
    gw->pumping = false;
    ig_gw_update_gauges(gw);
}

void ig_gw_on_group_due(ig_batcher_t *b, ig_batch_group_t *g)
{
    (void)g;
    pump(b->data);
}

/* A slot came free: give it to the next request. */
static void release_slot(ig_gateway_t *gw, uint64_t held_us)
{
    ig_admission_release(&gw->adm, held_us);
    pump(gw);
}

static void requeue_alone(ig_pending_t *p)
{
    ig_gateway_t *gw = p->gw;
    ig_pending_to(p, P_QUEUED);
    p->bcall = NULL;
    ig_batcher_leave(&p->member);
    p->batching = false;
    ig_admission_push_front(&gw->adm, &p->item);
    depth_change(gw, p->route, +1);
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
        ig_metrics_upstream_call(gw->metrics, p->route, held, 1, 1, ig_gw_now_us(gw));
    }
    ig_pending_to(p, P_FREE);
    release_slot(gw, held);
}

static void dispatch(ig_pending_t *p)
{
    ig_gateway_t *gw = p->gw;
    const ig_config_t *cfg = gw->cfg;
    p->dispatched_ns = uv_hrtime();
    ig_metrics_queue_wait(gw->metrics, p->route, (p->dispatched_ns - p->queued_ns) / 1000);

    uint64_t timeout_ms = cfg->upstream.timeout_ms;
    if (p->deadline_ns) {
        if (p->dispatched_ns >= p->deadline_ns) {
            /* Expired in the same loop turn that freed its slot. */
            finish_call(p, false);
            ig_gw_pending_fail(p, IG_REASON_DEADLINE, "deadline passed while queued");
            return;
        }
        uint64_t left_ms = (p->deadline_ns - p->dispatched_ns + 999999) / 1000000;
        if (left_ms < timeout_ms || timeout_ms == 0)
            timeout_ms = left_ms;
    }
    ig_gw_update_gauges(gw);
    ig_forward_start(p, &forward_owner, gw->upstream, timeout_ms);
}

/* ---- deadlines and client aborts ------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    ig_pending_t *p = t->data;
    ig_gateway_t *gw = p->gw;
    if (p->state == P_BATCH) {
        ig_bcall_expire(p);
        return;
    }
    if (p->state == P_UPSTREAM) {
        /* A response already under way is bounded by the call's own
         * timeout (the same deadline); otherwise answer now. A call still
         * waiting for a connection to the model never reached it. */
        if (p->started)
            return;
        bool sent = p->call.sent_ns != 0;
        ig_upstream_cancel(&p->call);
        finish_call(p, sent);
        if (sent)
            ig_gw_pending_fail(p, IG_REASON_UPSTREAM_TIMEOUT,
                               "the model did not answer before this request's deadline");
        else
            ig_gw_pending_fail(p, IG_REASON_DEADLINE,
                               "deadline passed while waiting for a connection to the model");
        return;
    }
    if (p->state != P_QUEUED)
        return;
    ig_admission_remove(&gw->adm, &p->item);
    ig_batcher_leave(&p->member);
    depth_change(gw, p->route, -1);
    ig_gw_pending_fail(p, IG_REASON_DEADLINE, "deadline passed while queued");
}

static void on_client_abort(ig_req_t *req)
{
    ig_pending_t *p = req->data;
    ig_gateway_t *gw = p->gw;
    if (p->state == P_QUEUED) {
        /* Never sent upstream. */
        ig_admission_remove(&gw->adm, &p->item);
        ig_batcher_leave(&p->member);
        depth_change(gw, p->route, -1);
        p->req = NULL;
        pending_put(p);
    } else if (p->state == P_BATCH) {
        /* The batch goes on for the others; the call owns p until it ends. */
        ig_bcall_detach(p);
    } else if (p->state == P_UPSTREAM) {
        ig_pending_drop_req(p);
        if (ig_upstream_orphan(&p->call) == 0) {
            /* The model is working on it and cannot be told to stop: the
             * slot stays taken until it answers, as in a batch call, so
             * upstream.max_concurrency holds at the model. The call's own
             * timeout (at most the deadline) bounds the wait. */
            ig_pending_to(p, P_ORPHAN);
            gw->orphans++;
            uv_timer_stop(&p->deadline_timer);
            ig_upstream_resume(&p->call);
            return;
        }
        bool sent = p->call.sent_ns != 0;
        ig_upstream_cancel(&p->call);
        finish_call(p, sent);
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
    bool ok = live ? ig_drain_phase(gw->drain) != IG_DRAIN_DONE : ig_gateway_ready(gw);
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

/* Puts a queued request of a batching route into the group of requests it
 * may share a call with: same route, same request target, same
 * credentials (a batch is sent with one Authorization) and same codec key. */
static void join_batch(ig_gateway_t *gw, ig_pending_t *p, const ig_route_match_t *m)
{
    ig_req_t *req = p->req;
    ig_buf_t *k = &gw->scratch;
    ig_buf_reset(k);
    ig_buf_append_slice(k, req->target);
    ig_buf_append(k, "\n", 1);
    ig_slice_t auth = ig_req_header(req, "authorization");
    if (auth.base)
        ig_buf_append_slice(k, auth);
    ig_buf_append(k, "\n", 1);
    ig_buf_append(k, p->part.key.base ? p->part.key.base : "", p->part.key.len);
    uint64_t h = ig_hash_bytes(k->base, k->len);
    ig_batcher_join(&gw->batcher, p->route, &m->route->batch, k->base, k->len, h, &p->member,
                    p->part.rows, p->queued_ns);
}

void ig_gateway_on_request(ig_req_t *req, void *ud)
{
    ig_gateway_t *gw = ud;

    if (answer_own_health(gw, req))
        return;
    ig_route_match_t m;
    if (ig_router_match(&gw->router, req->path, &m) != 0) {
        ig_gateway_reject(gw, req, IG_REASON_NO_ROUTE, "no route matches this path");
        return;
    }
    size_t route = m.index;
    req->tag = (req->tag & IG_GW_TAG_COUNTED) | (route + 1);
    ig_metrics_arrival(gw->metrics, route, ig_gw_now_us(gw));
    if (ig_drain_refusing(gw->drain)) {
        ig_gateway_reject(gw, req, IG_REASON_DRAINING, "the gateway is draining");
        return;
    }
    uint64_t timeout_ms = m.route->queue_timeout_ms;
    ig_slice_t th = ig_req_header(req, "x-infergate-timeout-ms");
    if (th.base && parse_timeout_header(th, &timeout_ms) != 0) {
        ig_gateway_reject(gw, req, IG_REASON_BAD_REQUEST,
                          "X-Infergate-Timeout-Ms must be a positive integer of milliseconds");
        return;
    }

    ig_pending_t *p = ig_pending_get(&gw->pendings, gw);
    p->req = req;
    p->route = route;
    p->queued_ns = uv_hrtime();
    p->deadline_ns = timeout_ms ? req->start_ns + timeout_ms * 1000000ull : 0;
    uint64_t budget_us = 0;
    if (p->deadline_ns) {
        if (p->deadline_ns <= p->queued_ns) {
            pending_put(p);
            ig_gateway_reject(gw, req, IG_REASON_DEADLINE,
                              "deadline passed before the request was read");
            return;
        }
        budget_us = (p->deadline_ns - p->queued_ns) / 1000;
    }

    /* A batching route parses the body now: a malformed one gets its 400
     * here and never disturbs a batch. */
    /* Only an inference call (POST) is parsed and may batch; anything else
     * on the route goes to the model as it came. */
    const ig_codec_t *codec = gw->route_codecs[route];
    if (codec && ig_slice_eq(req->method_name, "POST")) {
        char err[256];
        ig_slice_t model = ig_route_capture(&m, "model");
        int64_t hlen = -1;
        ig_slice_t hv = ig_req_header(req, "inference-header-content-length");
        if (hv.base && ig_codec_header_len(hv, &hlen) != 0) {
            pending_put(p);
            ig_gateway_reject(gw, req, IG_REASON_BAD_REQUEST,
                              "Inference-Header-Content-Length must be a byte count no larger "
                              "than the body");
            return;
        }
        if (codec->parse(&p->part, model.base ? model : ig_slice("", 0), req->body, hlen, err,
                         sizeof(err)) != 0) {
            pending_put(p);
            ig_gateway_reject(gw, req, IG_REASON_BAD_REQUEST, err);
            return;
        }
        p->batching = !p->part.alone && gw->cfg->limits.max_queue > 0;
    }
    req->data = p;
    req->on_abort = on_client_abort;

    int r = p->batching ? ig_admission_enqueue(&gw->adm, &p->item, budget_us)
                        : ig_admission_arrive(&gw->adm, &p->item, budget_us);
    /* The deadline counts all time in the gateway, whatever the request is
     * waiting for: a slot, batch-mates, a connection to the model, or the
     * model itself. The timer runs until the request is answered. */
    if ((r == IG_ADMIT_RUN || r == IG_ADMIT_QUEUED) && p->deadline_ns)
        uv_timer_start(&p->deadline_timer, on_deadline,
                       (p->deadline_ns - p->queued_ns + 999999) / 1000000, 0);
    if (r == IG_ADMIT_RUN) {
        dispatch(p);
        return;
    }
    if (r == IG_ADMIT_QUEUED) {
        ig_pending_to(p, P_QUEUED);
        depth_change(gw, route, +1);
        if (p->batching)
            join_batch(gw, p, &m);
        pump(gw);
        return;
    }
    pending_put(p);
    if (r == IG_EQUEUEFULL)
        ig_gateway_reject(gw, req, IG_REASON_QUEUE_FULL, "the queue is full (limits.max_queue)");
    else
        ig_gateway_reject(gw, req, IG_REASON_DEADLINE_UNMEETABLE,
                          "the deadline cannot be met at the current queue length");
}

bool ig_gateway_ready(const ig_gateway_t *gw)
{
    return gw->health && gw->drain && ig_health_upstream_ready(gw->health) &&
           ig_drain_phase(gw->drain) == IG_DRAIN_NONE;
}

uint64_t ig_gateway_outstanding(const ig_gateway_t *gw)
{
    return gw->adm.depth + gw->adm.inflight - gw->orphans;
}

void ig_gateway_fail_all(ig_gateway_t *gw)
{
    ig_adm_item_t *it;
    while ((it = ig_admission_pop_rider(&gw->adm)) != NULL) {
        ig_pending_t *p = it->data;
        ig_batcher_leave(&p->member);
        depth_change(gw, p->route, -1);
        ig_gw_pending_fail(p, IG_REASON_DRAINING,
                           "the gateway is shutting down and drain.timeout_ms has passed");
    }
    for (ig_pending_t *p = gw->pendings.all; p; p = p->next_all) {
        if (p->state != P_UPSTREAM && p->state != P_ORPHAN)
            continue;
        bool sent = p->call.sent_ns != 0;
        bool orphan = p->state == P_ORPHAN;
        ig_upstream_cancel(&p->call);
        if (orphan)
            gw->orphans--;
        finish_call(p, sent);
        if (orphan) {
            pending_put(p);
            continue;
        }
        ig_gw_pending_fail(p, IG_REASON_DRAINING,
                           "the gateway is shutting down and drain.timeout_ms has passed");
    }
    ig_bcall_fail_all(gw);
}
