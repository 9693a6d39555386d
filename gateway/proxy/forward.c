/*
 * forward.c: the passthrough forwarder: one request sent to the model as
 * it came (hop-by-hop headers dropped, X-Forwarded-*, X-Request-Id set),
 * the model's answer streamed back as it arrives, with backpressure from a
 * slow client. What becomes of the request when the call ends (its slot,
 * its error answer) is its owner's business, reached through the
 * ig_forward_owner_t table it is given; the forwarder never calls up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gateway_int.h"
#include "infergate/base/error.h"
#include "infergate/net/http.h"

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
    bool have_proto = false;
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders && n < IG_GW_MAX_FWD_HEADERS - 4; i++) {
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
            continue; /* the request's id (the client's, or a new one when it
                       * sent none or an unusable one) is added below */
        if (ig_slice_ieq(name, "x-forwarded-proto"))
            have_proto = true;
        p->fwd[n++] = req->headers[i];
    }
    ig_buf_reset(&p->xff);
    if (old_xff.base && old_xff.len > 0 && ig_buf_append_slice(&p->xff, old_xff) == 0 &&
        ig_buf_append(&p->xff, ", ", 2) == 0) {
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
    p->fwd[n++] = (ig_header_t){IG_SLICE_LIT("X-Request-Id"), req->request_id};
    return n;
}

static int on_up_head(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                      int64_t content_length)
{
    ig_pending_t *p = c->data;
    ig_req_t *req = p->req;
    if (p->state == P_ORPHAN)
        return 0; /* read on, discarding */
    p->head_ns = uv_hrtime();
    ig_header_t out[IG_GW_MAX_FWD_HEADERS];
    size_t k = 0;
    /* The model's Connection header names more hop-by-hop headers (RFC
     * 9110 7.6.1): they are for this hop only, as on the request side. */
    for (size_t i = 0; i < n && k < IG_GW_MAX_FWD_HEADERS - 1; i++) {
        ig_slice_t name = hdrs[i].name;
        if (ig_http_is_hop_by_hop(name) || ig_slice_ieq(name, "content-length") ||
            ig_slice_ieq(name, "x-request-id"))
            continue;
        bool listed = false;
        for (size_t j = 0; j < n && !listed; j++)
            listed =
                ig_slice_ieq(hdrs[j].name, "connection") && connection_listed(hdrs[j].value, name);
        if (listed)
            continue;
        out[k++] = hdrs[i];
    }
    double queue_ms = (double)(p->dispatched_ns - p->queued_ns) / 1e6;
    double up_ms = (double)(p->head_ns - p->dispatched_ns) / 1e6;
    int tl = snprintf(p->timing, sizeof(p->timing),
                      "queue;dur=%.3f, upstream;dur=%.3f, batch;desc=1", queue_ms, up_ms);
    out[k++] = (ig_header_t){IG_SLICE_LIT("Server-Timing"), ig_slice(p->timing, (size_t)tl)};
    p->started = true;
    ig_req_start(req, status, out, k, content_length >= 0 ? content_length : IG_REQ_CHUNKED);
    return 0;
}

static void on_up_body(ig_ucall_t *c, const char *data, size_t len)
{
    ig_pending_t *p = c->data;
    if (p->state == P_ORPHAN)
        return;
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
    const ig_forward_owner_t *owner = p->fwd_owner;
    bool orphan = p->state == P_ORPHAN;
    if (orphan)
        p->gw->orphans--;
    owner->call_over(p, err != IG_ECONNREFUSED && err != IG_ECANCELED);
    if (orphan) {
        ig_pending_put(&p->gw->pendings, p);
        return;
    }
    if (err == 0) {
        ig_req_t *req = p->req;
        ig_pending_put(&p->gw->pendings, p);
        ig_req_finish(req);
        return;
    }
    ig_reason_t reason = ig_reason_of_upstream_error(err);
    char msg[160];
    if (reason == IG_REASON_UPSTREAM_TIMEOUT)
        snprintf(msg, sizeof(msg), "the model did not answer in time");
    else if (reason == IG_REASON_BAD_RESPONSE)
        snprintf(msg, sizeof(msg), "the model sent an invalid HTTP response");
    else if (reason == IG_REASON_DRAINING)
        snprintf(msg, sizeof(msg), "the gateway is shutting down");
    else
        snprintf(msg, sizeof(msg), "the model is unavailable: %s", ig_strerror(err));
    owner->fail(p, reason, msg);
}

void ig_forward_start(ig_pending_t *p, const ig_forward_owner_t *owner, ig_upstream_t *upstream,
                      uint64_t timeout_ms)
{
    ig_req_t *req = p->req;
    ig_ucall_t *c = &p->call;
    p->fwd_owner = owner;
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
    ig_pending_to(p, P_UPSTREAM);
    req->on_writable = on_client_writable;
    if (ig_upstream_call(upstream, c) != 0) {
        owner->call_over(p, false);
        owner->fail(p, IG_REASON_UPSTREAM_UNAVAILABLE, "the upstream pool refused the call");
    }
}
