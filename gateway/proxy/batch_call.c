/*
 * batch_call.c: one call to the model that carries several requests.
 *
 * The members' bodies are merged by the route's codec, sent as one request,
 * and the model's answer is buffered whole and split back into one
 * response per member. What can go wrong stays with the member it concerns:
 * a member whose client leaves or whose deadline passes is answered (or
 * dropped) alone while the call goes on for the others; a 4xx answer to a
 * multi-request batch re-sends every member on its own, so only the
 * offending request gets the error (poison isolation).
 *
 * A batch call holds one concurrency slot. Members stay attached until the
 * call ends, even when already answered (P_DETACHED), because the split
 * needs every member's row range.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

/* The largest answer a batch call may return: the per-request body limit
 * times the members, at least 64 MiB. */
#define MIN_RESP_CAP (64u * 1024 * 1024)

struct ig_bcall {
    ig_gateway_t *gw;
    const ig_bcall_owner_t *owner;
    ig_ucall_t ucall;
    size_t route;
    const ig_codec_t *codec;
    ig_pending_t **members;
    ig_batch_part_t **parts;
    size_t n, cap;
    size_t live; /* members not yet answered */
    uint32_t rows;
    ig_buf_t body; /* merged request */
    ig_buf_t resp; /* the model's answer */
    int status;
    ig_buf_t ctype;     /* the answer's Content-Type */
    int64_t resp_hlen;  /* the answer's Inference-Header-Content-Length, -1: none */
    char hlen_text[24]; /* the merged call's Inference-Header-Content-Length */
    ig_buf_t owned;     /* the call's own copy of the target and Authorization:
                         * members (and their connections) may be gone before
                         * the request is written or retried */
    ig_header_t fwd[5];
    size_t nfwd;
    ig_buf_t reqid; /* the call's X-Request-Id: "batch-" and the first member's */
    uint64_t dispatched_ns, head_ns;
    bool in_flight;
    bool orphaned; /* every member left after it was sent: runs to its end */
    ig_bcall_t *next_free;
    ig_bcall_t *next_all;
};

static ig_bcall_t *bcall_get(ig_gateway_t *gw, size_t n)
{
    ig_bcall_t *b = gw->bcalls_free;
    if (b) {
        gw->bcalls_free = b->next_free;
    } else {
        b = ig_xcalloc(1, sizeof(*b));
        b->gw = gw;
        ig_buf_init(&b->body, 0);
        ig_buf_init(&b->resp, 0);
        ig_buf_init(&b->ctype, 256);
        ig_buf_init(&b->owned, 0);
        ig_buf_init(&b->reqid, 0);
        b->next_all = gw->bcalls_all;
        gw->bcalls_all = b;
    }
    if (b->cap < n) {
        b->members = ig_xrealloc(b->members, n * sizeof(*b->members));
        b->parts = ig_xrealloc(b->parts, n * sizeof(*b->parts));
        b->cap = n;
    }
    b->next_free = NULL;
    b->n = b->live = 0;
    b->rows = 0;
    b->status = 0;
    b->resp_hlen = -1;
    b->in_flight = false;
    b->orphaned = false;
    ig_buf_reset(&b->body);
    ig_buf_reset(&b->resp);
    ig_buf_reset(&b->ctype);
    ig_buf_reset(&b->owned);
    ig_buf_reset(&b->reqid);
    memset(&b->ucall, 0, sizeof(b->ucall));
    b->ucall.data = b;
    return b;
}

/* Ends the call: members go back to the pool, the slot to the next request. */
static void bcall_end(ig_bcall_t *b, uint64_t held_us)
{
    ig_gateway_t *gw = b->gw;
    for (size_t i = 0; i < b->n; i++) {
        ig_pending_t *p = b->members[i];
        p->bcall = NULL;
        if (p->state == P_DETACHED)
            ig_pending_put(&gw->pendings, p);
    }
    b->n = 0;
    b->in_flight = false;
    if (b->orphaned) {
        b->orphaned = false;
        gw->orphans--;
    }
    /* Release big buffers rather than keep the largest answer ever seen. */
    if (b->resp.cap > 1024 * 1024)
        ig_buf_dispose(&b->resp);
    if (b->body.cap > 1024 * 1024)
        ig_buf_dispose(&b->body);
    b->next_free = gw->bcalls_free;
    gw->bcalls_free = b;
    b->owner->release_slot(gw, held_us);
}

/* A member stops waiting for the call: it no longer refers to its client's
 * request (answering may hand the next pipelined request of that
 * connection to the gateway at once, reusing the request object), but stays
 * in the call until it ends. Returns the request, if any, to answer. */
static ig_req_t *detach(ig_bcall_t *b, ig_pending_t *p)
{
    ig_req_t *req = p->req;
    ig_pending_to(p, P_DETACHED);
    uv_timer_stop(&p->deadline_timer);
    ig_pending_drop_req(p);
    b->live--;
    return req;
}

static void member_timing(ig_bcall_t *b, ig_pending_t *p, ig_header_t *h)
{
    double queue_ms = (double)(p->dispatched_ns - p->queued_ns) / 1e6;
    double up_ms = (double)(b->head_ns - b->dispatched_ns) / 1e6;
    int n = snprintf(p->timing, sizeof(p->timing),
                     "queue;dur=%.3f, upstream;dur=%.3f, batch;desc=%" PRIu32, queue_ms, up_ms,
                     b->rows);
    *h = (ig_header_t){IG_SLICE_LIT("Server-Timing"), ig_slice(p->timing, (size_t)n)};
}

/* Answers one member with a body of the model's (its share, or the whole
 * answer for errors forwarded as they are). `hlen` >= 0 says the body uses
 * the binary tensor data extension with a JSON header of that length; -1 a
 * plain body, sent with the model's Content-Type when the model's answer
 * was plain too. */
static void answer(ig_bcall_t *b, ig_pending_t *p, int status, const char *body, size_t len,
                   int64_t hlen)
{
    ig_req_t *req = p->req;
    ig_header_t h[3];
    size_t nh = 0;
    char hl[24];
    if (hlen >= 0) {
        int n = snprintf(hl, sizeof(hl), "%" PRId64, hlen);
        h[nh++] =
            (ig_header_t){IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/octet-stream")};
        h[nh++] =
            (ig_header_t){IG_SLICE_LIT("Inference-Header-Content-Length"), ig_slice(hl, (size_t)n)};
    } else if (b->ctype.len && b->resp_hlen < 0) {
        h[nh++] =
            (ig_header_t){IG_SLICE_LIT("Content-Type"), ig_slice(b->ctype.base, b->ctype.len)};
    } else {
        h[nh++] = (ig_header_t){IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    }
    member_timing(b, p, &h[nh++]);
    detach(b, p);
    ig_req_respond(req, status, h, nh, body, len);
}

static void fail_member(ig_bcall_t *b, ig_pending_t *p, ig_reason_t reason, const char *msg)
{
    ig_req_t *req = detach(b, p);
    b->owner->reject(b->gw, req, reason, msg);
}

/* Fails every member still waiting; a failed call to the model counts
 * once in infergate_upstream_errors_total, whatever its members. */
static void fail_all_members(ig_bcall_t *b, ig_reason_t reason, const char *msg)
{
    if (ig_reason_flags(reason) & IG_RF_UPSTREAM)
        ig_metrics_upstream_error(b->gw->metrics, reason);
    for (size_t i = 0; i < b->n; i++)
        if (b->members[i]->state == P_BATCH)
            fail_member(b, b->members[i], reason, msg);
}

static int on_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                   int64_t content_length)
{
    ig_bcall_t *b = c->data;
    b->status = status;
    b->head_ns = uv_hrtime();
    (void)content_length;
    for (size_t i = 0; i < n; i++) {
        if (ig_slice_ieq(hdrs[i].name, "content-type"))
            ig_buf_append_slice(&b->ctype, hdrs[i].value);
        else if (ig_slice_ieq(hdrs[i].name, "inference-header-content-length") &&
                 ig_codec_header_len(hdrs[i].value, &b->resp_hlen) != 0)
            b->resp_hlen = INT64_MAX; /* unreadable: the split says so */
    }
    return 0;
}

static void on_body(ig_ucall_t *c, const char *data, size_t len)
{
    ig_bcall_t *b = c->data;
    /* Over the cap the append fails; on_done sees a short answer and the
     * status says so below. */
    if (ig_buf_append(&b->resp, data, len) != 0)
        b->status = -1;
}

static void isolate(ig_bcall_t *b)
{
    /* Back to the head of the queue, in order, each to be sent alone. */
    for (size_t i = b->n; i-- > 0;) {
        ig_pending_t *p = b->members[i];
        if (p->state != P_BATCH)
            continue;
        b->members[i] = NULL;
        b->live--;
        b->owner->requeue_alone(p);
    }
    /* Compact the member list so bcall_end only sees those left. */
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->members[i])
            b->members[k++] = b->members[i];
    b->n = k;
}

static void on_done(ig_ucall_t *c, int err)
{
    ig_bcall_t *b = c->data;
    ig_gateway_t *gw = b->gw;
    uint64_t held = (uv_hrtime() - b->dispatched_ns) / 1000;
    held = held ? held : 1;
    bool reached = err != IG_ECONNREFUSED && err != IG_ECANCELED;
    if (reached)
        ig_metrics_upstream_call(gw->metrics, b->route, held, b->rows, (uint32_t)b->n,
                                 ig_gw_now_us(gw));
    if (b->live == 0) {
        /* Every member left: the answer goes nowhere. */
        bcall_end(b, reached ? held : 0);
        return;
    }
    char msg[200];

    if (err) {
        snprintf(msg, sizeof(msg), "the model failed the batch call: %s", ig_strerror(err));
        fail_all_members(b, ig_reason_of_upstream_error(err), msg);
        bcall_end(b, reached ? held : 0);
        return;
    }
    if (b->status < 0) {
        snprintf(msg, sizeof(msg),
                 "the model's answer to a batch of %" PRIu32 " rows exceeds the gateway's buffer",
                 b->rows);
        fail_all_members(b, IG_REASON_BAD_RESPONSE, msg);
        bcall_end(b, held);
        return;
    }
    if (b->status >= 200 && b->status < 300) {
        ig_slice_t body = ig_slice(b->resp.base ? b->resp.base : "", b->resp.len);
        if (b->codec->split(body, b->resp_hlen, b->parts, b->n, msg, sizeof(msg)) != 0) {
            ig_log_warn("batch split failed: %s", msg);
            fail_all_members(b, IG_REASON_BAD_RESPONSE, msg);
        } else {
            for (size_t i = 0; i < b->n; i++) {
                ig_pending_t *p = b->members[i];
                if (p->state == P_BATCH)
                    answer(b, p, b->status, p->part.reply.base ? p->part.reply.base : "",
                           p->part.reply.len, p->part.reply_header_len);
            }
        }
        bcall_end(b, held);
        return;
    }
    if (b->status >= 400 && b->status < 500 && b->live > 1) {
        ig_log_info("the model answered %d to a batch of %zu requests: re-sending each alone",
                    b->status, b->live);
        isolate(b);
        bcall_end(b, held);
        return;
    }
    /* Anything else (5xx, or a 4xx for the one member left) is the model's
     * answer to every member, as it is. */
    for (size_t i = 0; i < b->n; i++) {
        ig_pending_t *p = b->members[i];
        if (p->state == P_BATCH)
            answer(b, p, b->status, b->resp.base ? b->resp.base : "", b->resp.len,
                   b->resp_hlen >= 0 && b->resp_hlen <= (int64_t)b->resp.len ? b->resp_hlen : -1);
    }
    bcall_end(b, held);
}

void ig_bcall_dispatch(ig_gateway_t *gw, const ig_bcall_owner_t *owner, ig_pending_t **members,
                       size_t n)
{
    const ig_config_t *cfg = gw->cfg;
    ig_pending_t *first = members[0];
    ig_bcall_t *b = bcall_get(gw, n);
    b->owner = owner;
    b->route = first->route;
    b->codec = gw->route_codecs[first->route];
    b->dispatched_ns = uv_hrtime();
    b->head_ns = b->dispatched_ns;
    uint64_t cap = cfg->limits.max_body_bytes * n;
    b->resp.max = cap > MIN_RESP_CAP ? cap : MIN_RESP_CAP;

    uint64_t latest_deadline = 0;
    bool any_unbounded = false;
    for (size_t i = 0; i < n; i++) {
        ig_pending_t *p = members[i];
        ig_pending_to(p, P_BATCH);
        p->bcall = b;
        p->dispatched_ns = b->dispatched_ns;
        ig_metrics_queue_wait(gw->metrics, p->route, (p->dispatched_ns - p->queued_ns) / 1000);
        b->members[i] = p;
        b->parts[i] = &p->part;
        b->rows += p->part.rows;
        if (p->deadline_ns == 0)
            any_unbounded = true;
        else if (p->deadline_ns > latest_deadline)
            latest_deadline = p->deadline_ns;
    }
    b->n = b->live = n;
    ig_admission_note_call(&gw->adm, (uint32_t)n);

    /* Each member keeps its own deadline while the model works; the call
     * itself may run until the last of them. */
    uint64_t timeout_ms = cfg->upstream.timeout_ms;
    if (!any_unbounded && latest_deadline > b->dispatched_ns) {
        uint64_t left = (latest_deadline - b->dispatched_ns + 999999) / 1000000;
        if (timeout_ms == 0 || left < timeout_ms)
            timeout_ms = left;
    }

    int64_t hlen = -1;
    int mr = b->codec->merge(b->parts, n, &b->body, &hlen);
    if (mr != 0) {
        /* IG_ETOOLARGE is the only failure the codec contract allows for
         * members that share a key; anything else is a gateway bug. */
        const char *why = mr == IG_ETOOLARGE ? "the merged batch is too large"
                                             : "internal error: batch members disagree";
        ig_log_fail("batch merge failed: %s", ig_strerror(mr));
        for (size_t i = 0; i < n; i++)
            fail_member(b, members[i], IG_REASON_INTERNAL, why);
        bcall_end(b, 0);
        return;
    }
    ig_req_t *r0 = first->req;
    b->nfwd = 0;
    if (hlen >= 0) {
        int hn = snprintf(b->hlen_text, sizeof(b->hlen_text), "%" PRId64, hlen);
        b->fwd[b->nfwd++] =
            (ig_header_t){IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/octet-stream")};
        b->fwd[b->nfwd++] = (ig_header_t){IG_SLICE_LIT("Inference-Header-Content-Length"),
                                          ig_slice(b->hlen_text, (size_t)hn)};
    } else {
        b->fwd[b->nfwd++] =
            (ig_header_t){IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    }
    /* The id is the call's own copy, whatever its length: the first member
     * may leave before the call is written. */
    ig_buf_append_str(&b->reqid, "batch-");
    ig_buf_append_slice(&b->reqid, r0->request_id);
    b->fwd[b->nfwd++] =
        (ig_header_t){IG_SLICE_LIT("X-Request-Id"), ig_slice(b->reqid.base, b->reqid.len)};
    /* Members share credentials (the batch key includes Authorization)
     * and the target (so does the key). Both are copied: the first member
     * may leave, and its connection go, before the call is written. */
    ig_slice_t auth = ig_req_header(r0, "authorization");
    ig_buf_append_slice(&b->owned, r0->target);
    if (auth.base)
        ig_buf_append_slice(&b->owned, auth);
    ig_slice_t target = ig_slice(b->owned.base, r0->target.len);
    if (auth.base)
        b->fwd[b->nfwd++] = (ig_header_t){IG_SLICE_LIT("Authorization"),
                                          ig_slice(b->owned.base + r0->target.len, auth.len)};

    ig_ucall_t *c = &b->ucall;
    c->data = b;
    c->method = "POST";
    c->target = target;
    c->headers = b->fwd;
    c->nheaders = b->nfwd;
    c->body = ig_slice(b->body.base, b->body.len);
    c->timeout_ms = timeout_ms;
    c->on_head = on_head;
    c->on_body = on_body;
    c->on_done = on_done;
    b->in_flight = true;
    ig_gw_update_gauges(gw);
    if (ig_upstream_call(gw->upstream, c) != 0) {
        b->in_flight = false;
        fail_all_members(b, IG_REASON_UPSTREAM_UNAVAILABLE, "the upstream pool refused the call");
        bcall_end(b, 0);
    }
}

/* Bookkeeping after a member left the call early. */
static void after_leave(ig_bcall_t *b)
{
    if (b->live == 0 && b->in_flight && !b->orphaned) {
        if (b->ucall.sent_ns != 0) {
            /* Nobody waits for the answer, but the model is working on
             * it: the call keeps its slot until it ends, so
             * upstream.max_concurrency holds at the model. It owns its
             * request bytes, so nothing refers to the clients any more. */
            b->orphaned = true;
            b->gw->orphans++;
            return;
        }
        /* Not sent yet: the model never sees it. */
        ig_upstream_cancel(&b->ucall);
        uint64_t held = (uv_hrtime() - b->dispatched_ns) / 1000;
        bcall_end(b, held ? held : 1);
    }
}

void ig_bcall_detach(ig_pending_t *p)
{
    ig_bcall_t *b = p->bcall;
    detach(b, p);
    after_leave(b);
}

void ig_bcall_expire(ig_pending_t *p)
{
    ig_bcall_t *b = p->bcall;
    fail_member(b, p, IG_REASON_UPSTREAM_TIMEOUT,
                "the model did not answer before this request's deadline");
    after_leave(b);
}

void ig_bcall_fail_all(ig_gateway_t *gw)
{
    for (ig_bcall_t *b = gw->bcalls_all; b; b = b->next_all) {
        if (!b->in_flight)
            continue;
        ig_upstream_cancel(&b->ucall);
        for (size_t i = 0; i < b->n; i++)
            if (b->members[i]->state == P_BATCH)
                fail_member(b, b->members[i], IG_REASON_DRAINING,
                            "the gateway is shutting down and drain.timeout_ms has passed");
        bcall_end(b, 0);
    }
}

void ig_bcall_free_all(ig_gateway_t *gw)
{
    ig_bcall_t *b = gw->bcalls_all;
    while (b) {
        ig_bcall_t *n = b->next_all;
        ig_buf_dispose(&b->body);
        ig_buf_dispose(&b->resp);
        ig_buf_dispose(&b->ctype);
        ig_buf_dispose(&b->owned);
        ig_buf_dispose(&b->reqid);
        free(b->members);
        free(b->parts);
        free(b);
        b = n;
    }
    gw->bcalls_all = gw->bcalls_free = NULL;
}
