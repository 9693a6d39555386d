/*
 * response.c: answering a request: response heads, complete and streamed
 * bodies (Content-Length, chunked or close-delimited), JSON errors, and the
 * write queue behind them with its high/low water marks.
 *
 * Writes try the socket directly first, so a small response costs no copy;
 * only what the socket does not take at once is copied and queued. When a
 * response is out, ig_conn_response_finished (server.c) reports it done and
 * moves the connection on to the next request or closes it.
 *
 * What this file is not: it does not read or parse (server.c does), and it
 * knows nothing of routes or upstreams.
 */
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/net/http.h"
#include "infergate/net/server.h"
#include "server_int.h"

/* ---- writing --------------------------------------------------------- */

/* Corked bytes beyond this are sent at once rather than held. */
#define CORK_MAX (16 * 1024)

static int send_now(ig_conn_t *c, const char *data, size_t len);

typedef struct {
    uv_write_t w;
    ig_conn_t *conn;
    size_t len;
    char data[];
} wreq_t;

static void maybe_writable(ig_conn_t *c)
{
    req_impl_t *r = &c->req;
    if (r->want_writable && c->state == C_RESPONSE &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < IG_SERVER_LOW_WATER) {
        r->want_writable = false;
        if (r->pub.on_writable)
            r->pub.on_writable(&r->pub);
    }
}

static void on_write(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    ig_conn_t *c = wr->conn;
    free(wr);
    if (status < 0) {
        if (!c->closing)
            ig_conn_close(c);
        return;
    }
    if (c->closing)
        return;
    maybe_writable(c);
    if (c->write_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < IG_SERVER_LOW_WATER)
        ig_conn_resume_input(c);
}

/* Sends bytes, trying a direct write first so that the common small
 * response costs no copy. The bytes are copied when they must be queued. */
int ig_conn_send(ig_conn_t *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return 0;
    if (c->out.len > 0) {
        /* Corked bytes go first; small data joins them in one write. */
        if (c->out.len + len <= CORK_MAX) {
            ig_buf_append(&c->out, data, len);
            return ig_conn_flush(c);
        }
        int r = ig_conn_flush(c);
        if (r)
            return r;
    }
    return send_now(c, data, len);
}

static void flushq_remove(ig_conn_t *c)
{
    if (!c->in_flushq)
        return;
    ig_list_remove(&c->srv->flushq, &c->flink);
    c->in_flushq = false;
}

/* Puts the connection on the server's flush list (once). */
static void cork_register(ig_conn_t *c)
{
    if (c->in_flushq || c->closing)
        return;
    ig_server_t *s = c->srv;
    ig_list_push_front(&s->flushq, &c->flink);
    c->in_flushq = true;
}

void ig_conn_cork(ig_conn_t *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    if (c->out.len + len > CORK_MAX) {
        /* Too big to hold: send what is corked and this directly. */
        ig_conn_send(c, data, len);
        return;
    }
    ig_buf_append(&c->out, data, len);
    cork_register(c);
}

int ig_conn_flush(ig_conn_t *c)
{
    flushq_remove(c);
    if (c->out.len == 0 || c->closing) {
        ig_buf_reset(&c->out);
        return 0;
    }
    int r = send_now(c, c->out.base, c->out.len);
    c->flushes++;
    ig_buf_reset(&c->out);
    /* A response buffer grown for a big head is not worth keeping. */
    if (c->out.cap > 4 * CORK_MAX)
        ig_buf_dispose(&c->out);
    return r;
}

void ig_conn_uncork_discard(ig_conn_t *c)
{
    flushq_remove(c);
    ig_buf_reset(&c->out);
}

void ig_server_flush_all(uv_check_t *h)
{
    ig_server_t *s = h->data;
    while (s->flushq.head) {
        ig_conn_t *c = IG_LIST_ITEM(s->flushq.head, ig_conn_t, flink);
        if (ig_conn_flush(c) != 0)
            ig_conn_close(c);
    }
}

/* Writes to the socket: directly when nothing is queued, else queued. */
static int send_now(ig_conn_t *c, const char *data, size_t len)
{
    uv_stream_t *st = (uv_stream_t *)&c->tcp;
    if (uv_stream_get_write_queue_size(st) == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(st, &b, 1);
        if (n == (int)len)
            return 0;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            return ig_error_from_uv(n);
        }
    }
    wreq_t *wr = ig_xmalloc(sizeof(*wr) + len);
    wr->conn = c;
    wr->len = len;
    memcpy(wr->data, data, len);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
    int r = uv_write(&wr->w, st, &b, 1, on_write);
    if (r < 0) {
        free(wr);
        return ig_error_from_uv(r);
    }
    return 0;
}

/* ---- responding ------------------------------------------------------- */

static req_impl_t *impl(ig_req_t *q)
{
    return (req_impl_t *)q;
}

ig_slice_t ig_req_header(const ig_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (ig_slice_ieq(req->headers[i].name, name))
            return req->headers[i].value;
    return (ig_slice_t){NULL, 0};
}

void ig_req_set_close(ig_req_t *req)
{
    impl(req)->close_after = true;
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static int write_head(req_impl_t *r, int status, const ig_header_t *hdrs, size_t n,
                      int64_t content_length, ig_buf_t *out)
{
    ig_conn_t *c = r->conn;
    ig_req_t *q = &r->pub;
    if (r->started)
        return IG_EINVAL;
    r->started = true;
    r->status = status;
    if (!status_has_body(status))
        r->no_body = true;
    if (!q->keep_alive || c->srv->stopping || c->srv->closing_soon)
        r->close_after = true;
    if (content_length == IG_REQ_CHUNKED && !r->no_body) {
        if (q->http_major == 1 && q->http_minor == 0)
            content_length = IG_REQ_CLOSE_DELIMITED;
        else
            r->chunked = true;
    }
    if (content_length == IG_REQ_CLOSE_DELIMITED)
        r->close_after = true;

    ig_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, ig_http_status_text(status));
    if (c->srv->opts.server_name)
        ig_buf_printf(out, "Server: %s\r\n", c->srv->opts.server_name);
    for (size_t i = 0; i < n; i++) {
        ig_buf_append_slice(out, hdrs[i].name);
        ig_buf_append(out, ": ", 2);
        ig_buf_append_slice(out, hdrs[i].value);
        ig_buf_append(out, "\r\n", 2);
    }
    ig_buf_append(out, "X-Request-Id: ", 14);
    ig_buf_append_slice(out, q->request_id);
    ig_buf_append(out, "\r\n", 2);
    if (r->chunked)
        ig_buf_append_str(out, "Transfer-Encoding: chunked\r\n");
    else if (content_length >= 0 && (status_has_body(status) || q->method == HTTP_HEAD))
        ig_buf_printf(out, "Content-Length: %lld\r\n", (long long)content_length);
    if (r->close_after)
        ig_buf_append_str(out, "Connection: close\r\n");
    else if (q->http_minor == 0)
        ig_buf_append_str(out, "Connection: keep-alive\r\n");
    ig_buf_append(out, "\r\n", 2);
    return 0;
}

int ig_req_respond(ig_req_t *req, int status, const ig_header_t *hdrs, size_t nhdrs,
                   const char *body, size_t len)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    if (r->started)
        return IG_EINVAL;
    r->pub.on_abort = NULL;
    /* Head and body are assembled in the connection's output buffer (no
     * allocation once it has grown) and leave in one write. */
    size_t before = c->out.len;
    write_head(r, status, hdrs, nhdrs, (int64_t)len, &c->out);
    if (!r->no_body && len)
        ig_buf_append(&c->out, body, len);
    r->bytes_out = c->out.len - before;
    c->state = C_RESPONSE;
    if (ig_conn_flush(c) != 0) {
        ig_conn_close(c);
        return 0;
    }
    ig_conn_response_finished(r);
    return 0;
}

static int error_body(ig_req_t *req, int status, const char *reason, const char *msg,
                      const ig_header_t *hdrs, size_t nhdrs)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    ig_buf_append_str(&b, "{\"error\":");
    ig_buf_append_json_str(&b, msg ? msg : ig_http_status_text(status),
                           strlen(msg ? msg : ig_http_status_text(status)));
    if (reason) {
        ig_buf_append_str(&b, ",\"reason\":");
        ig_buf_append_json_str(&b, reason, strlen(reason));
    }
    ig_buf_append_str(&b, "}\n");
    ig_header_t h[16];
    size_t n = 0;
    h[n++] = (ig_header_t){IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    for (size_t i = 0; i < nhdrs && n < 16; i++)
        h[n++] = hdrs[i];
    int r = ig_req_respond(req, status, h, n, b.base, b.len);
    ig_buf_dispose(&b);
    return r;
}

int ig_req_reject(ig_req_t *req, ig_reason_t reason, const char *msg, const ig_header_t *hdrs,
                  size_t nhdrs)
{
    ig_server_t *s = impl(req)->conn->srv;
    if (s->opts.on_reject)
        s->opts.on_reject(req, reason, s->opts.ud);
    if (ig_reason_flags(reason) & IG_RF_CLOSE)
        ig_req_set_close(req);
    return error_body(req, ig_reason_status(reason), ig_reason_name(reason), msg, hdrs, nhdrs);
}

int ig_req_error(ig_req_t *req, int status, const char *msg, const ig_header_t *hdrs, size_t nhdrs)
{
    return error_body(req, status, NULL, msg, hdrs, nhdrs);
}

int ig_req_start(ig_req_t *req, int status, const ig_header_t *hdrs, size_t nhdrs,
                 int64_t content_length)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    if (r->started)
        return IG_EINVAL;
    size_t before = c->out.len;
    r->cork_at = before;
    r->flushes_at = c->flushes;
    r->close_before = r->close_after;
    write_head(r, status, hdrs, nhdrs, content_length, &c->out);
    r->bytes_out = c->out.len - before;
    c->state = C_RESPONSE;
    /* The head waits in the cork for the body bytes of this loop turn. */
    cork_register(c);
    return 0;
}

int ig_req_unstart(ig_req_t *req)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    if (!r->started || c->closing || c->flushes != r->flushes_at ||
        c->out.len < r->cork_at + r->bytes_out)
        return IG_EAGAIN;
    c->out.len = r->cork_at;
    r->started = false;
    r->chunked = false;
    r->no_body = r->pub.method == HTTP_HEAD;
    r->close_after = r->close_before;
    r->bytes_out = 0;
    r->status = 0;
    c->state = C_HANDLER;
    return 0;
}

int64_t ig_req_write(ig_req_t *req, const char *data, size_t len)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    if (c->closing || !r->started)
        return 0;
    if (!r->no_body && len) {
        if (r->chunked) {
            char sz[24];
            int n = snprintf(sz, sizeof(sz), "%zx\r\n", len);
            ig_conn_cork(c, sz, (size_t)n);
            ig_conn_cork(c, data, len);
            ig_conn_cork(c, "\r\n", 2);
            r->bytes_out += (size_t)n + len + 2;
        } else {
            ig_conn_cork(c, data, len);
            r->bytes_out += len;
        }
    }
    size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->out.len;
    if (q >= IG_SERVER_HIGH_WATER)
        r->want_writable = true;
    return (int64_t)q;
}

void ig_req_finish(ig_req_t *req)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    if (!r->started) {
        ig_req_respond(req, 200, NULL, 0, NULL, 0);
        return;
    }
    if (r->chunked && !r->no_body && !c->closing) {
        ig_conn_cork(c, "0\r\n\r\n", 5);
        r->bytes_out += 5;
    }
    if (c->closing)
        return;
    if (ig_conn_flush(c) != 0) {
        ig_conn_close(c);
        return;
    }
    ig_conn_response_finished(r);
}

void ig_req_abort(ig_req_t *req)
{
    req_impl_t *r = impl(req);
    ig_conn_t *c = r->conn;
    r->pub.on_abort = NULL;
    r->pub.on_writable = NULL;
    if (c->closing)
        return;
    /* ig_conn_close reports the request done with the status it had. */
    ig_conn_close(c);
}
