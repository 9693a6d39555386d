/*
 * server.c: listeners, the life of a client connection, reading, and llhttp
 * request parsing with its limits and timers.
 *
 * A connection handles one request at a time. Bytes that arrive while a
 * request is with the handler (pipelined requests, or a client closing) are
 * kept in `in` and parsed once the response has finished, so responses
 * always leave in request order. The request object is embedded in its
 * connection and reused, so a keep-alive connection allocates nothing per
 * request once its buffers have grown.
 *
 * Answering a request (response heads, bodies, the write queue) is
 * response.c's part; server_int.h is the seam between the two. What this
 * module is not: it does not route, queue or proxy. It hands a complete
 * request to one callback and offers functions to answer it.
 */
#include "infergate/net/server.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "infergate/net/http.h"
#include "server_int.h"

/* Bytes a connection keeps from the client while a request is being
 * handled, before it stops reading. */
#define PENDING_CAP (1024 * 1024)

static void feed(ig_conn_t *c);
static void send_error(ig_conn_t *c, ig_reason_t reason, const char *msg);

/* ---- request id ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void make_reqid(ig_server_t *s, char out[24])
{
    uint64_t v = splitmix64(s->reqid_seed + ++s->reqid_counter);
    snprintf(out, 24, "%016llx", (unsigned long long)v);
}

/* ---- connection lifecycle --------------------------------------------- */

static void maybe_free_server(ig_server_t *s)
{
    if (s->closing && s->open_handles == 0 && s->nconns == 0) {
        void (*cb)(void *) = s->close_cb;
        void *arg = s->close_arg;
        free(s);
        if (cb)
            cb(arg);
    }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    ig_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    ig_server_t *s = c->srv;
    ig_buf_dispose(&c->in);
    ig_buf_dispose(&c->out);
    ig_buf_dispose(&c->req.head);
    ig_buf_dispose(&c->req.body);
    free(c->req.spans);
    free(c->req.headers);
    free(c);
    s->nconns--;
    /* From a close callback, so the event never runs on the stack of the
     * server function that closed the connection. */
    if (!s->closing && s->opts.on_conn_closed)
        s->opts.on_conn_closed(s, s->nconns, s->opts.ud);
    maybe_free_server(s);
}

static void request_done(ig_conn_t *c, int status)
{
    ig_server_t *s = c->srv;
    req_impl_t *r = &c->req;
    s->active--;
    if (s->opts.on_complete)
        s->opts.on_complete(&r->pub, status, r->bytes_out, s->opts.ud);
}

void ig_conn_close(ig_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    ig_server_t *s = c->srv;
    ig_conn_uncork_discard(c);
    if (c->state == C_HANDLER || c->state == C_RESPONSE) {
        req_impl_t *r = &c->req;
        void (*abort_cb)(ig_req_t *) = r->pub.on_abort;
        r->pub.on_abort = NULL;
        r->pub.on_writable = NULL;
        if (abort_cb)
            abort_cb(&r->pub);
        request_done(c, r->started ? r->status : 0);
        c->state = C_IDLE;
    }
    /* unlink */
    ig_list_remove(&s->conns, &c->link);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    (void)status;
    ig_conn_t *c = sr->data;
    free(sr);
    ig_conn_close(c);
}

/* Closes after everything queued has been written. */
void ig_conn_close_after_write(ig_conn_t *c)
{
    if (c->closing)
        return;
    if (ig_conn_flush(c) != 0) {
        ig_conn_close(c);
        return;
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    uv_timer_stop(&c->timer);
    uv_shutdown_t *sr = ig_xmalloc(sizeof(*sr));
    sr->data = c;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(sr);
        ig_conn_close(c);
    }
}

static void on_timer(uv_timer_t *t)
{
    ig_conn_t *c = t->data;
    switch (c->state) {
    case C_IDLE:
        ig_conn_close(c);
        break;
    case C_HEAD:
        send_error(c, IG_REASON_HEADER_TIMEOUT, "request headers not received in time");
        break;
    case C_BODY:
        send_error(c, IG_REASON_BODY_TIMEOUT, "request body not received in time");
        break;
    default:
        break;
    }
}

static void arm_timer(ig_conn_t *c)
{
    const ig_server_limits_t *l = &c->srv->opts.limits;
    uint64_t ms = 0;
    if (c->state == C_IDLE)
        ms = l->idle_timeout_ms;
    else if (c->state == C_HEAD)
        ms = l->header_timeout_ms;
    else if (c->state == C_BODY)
        ms = l->idle_timeout_ms;
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- reading and parsing ----------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ig_conn_t *c = h->data;
    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    ig_conn_t *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* A client that goes away mid-request aborts it; at EOF between
         * requests we are simply done. */
        c->eof = true;
        ig_conn_close(c);
        return;
    }
    if (ig_buf_append(&c->in, buf->base, (size_t)nread) != 0) {
        ig_conn_close(c);
        return;
    }
    if (c->state == C_HANDLER || c->state == C_RESPONSE || c->write_paused) {
        /* Pipelined bytes wait; stop reading when too many pile up. */
        if (c->in.len > PENDING_CAP && c->reading) {
            uv_read_stop(st);
            c->reading = false;
        }
        return;
    }
    feed(c);
}

static void req_reset(ig_conn_t *c)
{
    req_impl_t *r = &c->req;
    ig_buf_t head = r->head, body = r->body;
    hspan_t *spans = r->spans;
    ig_header_t *headers = r->headers;
    size_t hcap = r->hcap;
    ig_buf_reset(&head);
    ig_buf_reset(&body);
    memset(r, 0, sizeof(*r));
    r->head = head;
    r->body = body;
    r->spans = spans;
    r->headers = headers;
    r->hcap = hcap;
    r->conn = c;
    r->pub.server = c->srv;
    r->pub.peer_ip = c->peer_ip;
    r->pub.peer_is_loopback = c->loopback;
}

static ig_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int on_message_begin(llhttp_t *p)
{
    ig_conn_t *c = conn_of(p);
    req_reset(c);
    c->req.pub.start_ns = uv_hrtime();
    c->state = C_HEAD;
    arm_timer(c);
    return 0;
}

static int head_append(ig_conn_t *c, const char *at, size_t len)
{
    if (ig_buf_append(&c->req.head, at, len) != 0) {
        c->err_reason = IG_REASON_HEADERS_TOO_LARGE;
        c->err_msg = "request headers exceed limits.max_header_bytes";
        return -1;
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    ig_conn_t *c = conn_of(p);
    req_impl_t *r = &c->req;
    if (r->url.len == 0)
        r->url.off = r->head.len;
    r->url.len += len;
    return head_append(c, at, len);
}

/* llhttp reports the trailer fields of a chunked body through the header
 * callbacks too, after headers-complete. By then the request's target, path,
 * headers and id are slices into `head`, which must not grow (it would move),
 * so trailers are discarded, as RFC 9110 6.5.1 allows, and only counted:
 * head and trailers together stay within max_header_bytes. */
static int on_trailer(ig_conn_t *c, size_t len)
{
    req_impl_t *r = &c->req;
    size_t max = c->srv->opts.limits.max_header_bytes;
    r->trailer_len += len;
    if (max && (r->trailer_len > max || r->head.len > max - r->trailer_len)) {
        c->err_reason = IG_REASON_HEADERS_TOO_LARGE;
        c->err_msg = "request trailers exceed limits.max_header_bytes";
        return -1;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    ig_conn_t *c = conn_of(p);
    req_impl_t *r = &c->req;
    if (c->state == C_BODY)
        return on_trailer(c, len);
    if (r->in_value || r->nheaders == 0) {
        if (r->nheaders == IG_SERVER_MAX_HEADERS) {
            c->err_reason = IG_REASON_HEADERS_TOO_LARGE;
            c->err_msg = "too many request headers";
            return -1;
        }
        if (r->nheaders == r->hcap) {
            size_t cap = r->hcap ? r->hcap * 2 : 16;
            if (cap > IG_SERVER_MAX_HEADERS)
                cap = IG_SERVER_MAX_HEADERS;
            r->spans = ig_xrealloc(r->spans, cap * sizeof(*r->spans));
            r->headers = ig_xrealloc(r->headers, cap * sizeof(*r->headers));
            r->hcap = cap;
        }
        r->in_value = false;
        r->spans[r->nheaders].name = (span_t){r->head.len, 0};
        r->spans[r->nheaders].value = (span_t){r->head.len, 0};
        r->nheaders++;
    }
    r->spans[r->nheaders - 1].name.len += len;
    return head_append(c, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    ig_conn_t *c = conn_of(p);
    req_impl_t *r = &c->req;
    if (c->state == C_BODY)
        return on_trailer(c, len);
    if (!r->in_value) {
        r->in_value = true;
        r->spans[r->nheaders - 1].value.off = r->head.len;
    }
    r->spans[r->nheaders - 1].value.len += len;
    return head_append(c, at, len);
}

/* RFC 9110 5.6.2 tchar: what a header name may consist of. */
static bool is_token(ig_slice_t s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.base[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && strchr(extra, ch))))
            return false;
    }
    return true;
}

static int on_headers_complete(llhttp_t *p)
{
    ig_conn_t *c = conn_of(p);
    req_impl_t *r = &c->req;
    ig_server_t *s = c->srv;
    const char *base = r->head.base ? r->head.base : "";

    for (size_t i = 0; i < r->nheaders; i++) {
        r->headers[i].name = ig_slice(base + r->spans[i].name.off, r->spans[i].name.len);
        r->headers[i].value = ig_slice(base + r->spans[i].value.off, r->spans[i].value.len);
        if (!is_token(r->headers[i].name)) {
            /* "X-Foo : v" or "Bad Header: v": RFC 9112 5.1 demands 400, since
             * proxies that disagree on such names enable smuggling. */
            c->err_reason = IG_REASON_BAD_REQUEST;
            c->err_msg = "malformed HTTP request: invalid header name";
            return -1;
        }
    }
    ig_req_t *q = &r->pub;
    q->headers = r->headers;
    q->nheaders = r->nheaders;
    q->method = llhttp_get_method(p);
    const char *mname = llhttp_method_name((llhttp_method_t)q->method);
    q->method_name = ig_slice_cstr(mname);
    q->target = ig_slice(base + r->url.off, r->url.len);
    const char *qm = memchr(q->target.base, '?', q->target.len);
    if (qm) {
        q->path = ig_slice(q->target.base, (size_t)(qm - q->target.base));
        q->query = ig_slice(qm + 1, q->target.len - q->path.len - 1);
    } else {
        q->path = q->target;
        q->query = ig_slice("", 0);
    }
    q->http_major = llhttp_get_http_major(p);
    q->http_minor = llhttp_get_http_minor(p);
    q->keep_alive = llhttp_should_keep_alive(p);
    r->no_body = q->method == HTTP_HEAD;

    ig_slice_t id = ig_req_header(q, "x-request-id");
    if (id.base && id.len > 0 && id.len <= 200) {
        q->request_id = id;
    } else {
        make_reqid(s, r->reqid);
        q->request_id = ig_slice(r->reqid, 16);
    }

    if (q->http_major != 1 || q->http_minor > 1) {
        c->err_reason = IG_REASON_HTTP_VERSION_NOT_SUPPORTED;
        c->err_msg = "only HTTP/1.0 and HTTP/1.1 are supported";
        return -1;
    }
    if (q->target.len == 0 ||
        (q->target.base[0] != '/' && q->method != HTTP_OPTIONS && q->method != HTTP_CONNECT)) {
        c->err_reason = IG_REASON_BAD_REQUEST;
        c->err_msg = "request target must be an absolute path";
        return -1;
    }
    if (memchr(q->target.base, '#', q->target.len)) {
        /* RFC 9112 3.2: a fragment is never sent in a request target. */
        c->err_reason = IG_REASON_BAD_REQUEST;
        c->err_msg = "request target must not hold a fragment (#)";
        return -1;
    }
    size_t nhost = 0, nte = 0;
    ig_slice_t te = {NULL, 0};
    for (size_t i = 0; i < q->nheaders; i++) {
        if (ig_slice_ieq(q->headers[i].name, "host"))
            nhost++;
        else if (ig_slice_ieq(q->headers[i].name, "transfer-encoding")) {
            nte++;
            te = q->headers[i].value;
        }
    }
    if (nhost > 1 || (nhost == 0 && q->http_minor == 1)) {
        /* RFC 9112 3.2: an HTTP/1.1 request has exactly one Host. */
        c->err_reason = IG_REASON_BAD_REQUEST;
        c->err_msg = nhost ? "malformed HTTP request: more than one Host header"
                           : "malformed HTTP request: HTTP/1.1 needs a Host header";
        return -1;
    }
    if (nte > 0 && q->http_minor == 0) {
        /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
         * framing; a proxy must not guess. */
        c->err_reason = IG_REASON_BAD_REQUEST;
        c->err_msg = "malformed HTTP request: Transfer-Encoding in an HTTP/1.0 request";
        return -1;
    }
    while (te.len && (te.base[0] == ' ' || te.base[0] == '\t')) {
        te.base++;
        te.len--;
    }
    while (te.len && (te.base[te.len - 1] == ' ' || te.base[te.len - 1] == '\t'))
        te.len--;
    if (nte > 1 || (nte == 1 && !ig_slice_ieq(te, "chunked"))) {
        /* Any other coding would reach the model as bytes it cannot read. */
        c->err_reason = IG_REASON_NOT_IMPLEMENTED;
        c->err_msg = "only the chunked transfer coding is supported";
        return -1;
    }
    if (q->method == HTTP_CONNECT || llhttp_get_upgrade(p)) {
        /* Neither tunnels nor protocol upgrades are proxied. */
        c->err_reason = IG_REASON_BAD_REQUEST;
        c->err_msg = "CONNECT and protocol upgrades are not supported";
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->opts.limits.max_body_bytes) {
        c->err_reason = IG_REASON_BODY_TOO_LARGE;
        c->err_msg = "request body exceeds limits.max_body_bytes";
        return -1;
    }
    ig_buf_reset(&r->body);
    r->body.max = s->opts.limits.max_body_bytes;
    ig_slice_t expect = ig_req_header(q, "expect");
    if (expect.base && ig_slice_ieq(expect, "100-continue") && q->http_minor >= 1)
        ig_conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = C_BODY;
    arm_timer(c);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    ig_conn_t *c = conn_of(p);
    if (ig_buf_append(&c->req.body, at, len) != 0) {
        c->err_reason = IG_REASON_BODY_TOO_LARGE;
        c->err_msg = "request body exceeds limits.max_body_bytes";
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ig_conn_t *c = conn_of(p);
    req_impl_t *r = &c->req;
    r->pub.body = ig_slice(r->body.base ? r->body.base : "", r->body.len);
    c->state = C_HANDLER;
    uv_timer_stop(&c->timer);
    /* Hand the request over outside the parser: pause here. */
    return HPE_PAUSED;
}

static void dispatch(ig_conn_t *c)
{
    ig_server_t *s = c->srv;
    s->active++;
    s->opts.on_request(&c->req.pub, s->opts.ud);
}

/* Parses what is in c->in, handing complete requests to the handler one at
 * a time. Runs until it needs more bytes, a request is with the handler,
 * or the connection closes. */
static void feed(ig_conn_t *c)
{
    if (c->in_feed) {
        c->resume_feed = true;
        return;
    }
    c->in_feed = true;
    while (!c->closing && !c->write_paused && c->in.len > 0 && c->state != C_HANDLER &&
           c->state != C_RESPONSE) {
        llhttp_errno_t e = llhttp_execute(&c->parser, c->in.base, c->in.len);
        if (e == HPE_OK) {
            ig_buf_reset(&c->in);
            break;
        }
        if (e == HPE_PAUSED) {
            size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.base);
            llhttp_resume(&c->parser);
            ig_buf_consume(&c->in, used);
            c->resume_feed = false;
            dispatch(c);
            /* If the handler answered synchronously, the state is back to
             * idle and the loop continues with the next pipelined request. */
            if (c->resume_feed)
                c->resume_feed = false;
            continue;
        }
        /* A parse error or one of our limits. */
        const char *msg = c->err_msg;
        char why[160];
        if (!msg) {
            snprintf(why, sizeof(why), "malformed HTTP request: %s",
                     llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
                                                         : llhttp_errno_name(e));
            msg = why;
        }
        ig_reason_t reason = c->err_reason ? (ig_reason_t)c->err_reason : IG_REASON_BAD_REQUEST;
        ig_buf_reset(&c->in);
        send_error(c, reason, msg);
        break;
    }
    c->in_feed = false;
    if (!c->closing && !c->reading && !c->write_paused && c->in.len < PENDING_CAP &&
        c->state != C_HANDLER && c->state != C_RESPONSE) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

/* Answers a request the parser could not finish (the handler never saw it)
 * and closes the connection afterwards. */
static void send_error(ig_conn_t *c, ig_reason_t reason, const char *msg)
{
    if (c->closing)
        return;
    req_impl_t *r = &c->req;
    if (c->state == C_IDLE || r->pub.request_id.len == 0) {
        if (c->state == C_IDLE)
            req_reset(c);
        make_reqid(c->srv, r->reqid);
        r->pub.request_id = ig_slice(r->reqid, 16);
        if (!r->pub.start_ns)
            r->pub.start_ns = uv_hrtime();
    }
    r->no_body = false;
    c->srv->active++;
    c->state = C_HANDLER;
    ig_req_set_close(&r->pub);
    ig_req_reject(&r->pub, reason, msg, NULL, 0);
}

/* ---- after a response ------------------------------------------------ */

/* After the last byte of a response was handed to libuv: count it, then
 * close or go on with the next request. */
void ig_conn_response_finished(req_impl_t *r)
{
    ig_conn_t *c = r->conn;
    r->pub.on_abort = NULL;
    r->pub.on_writable = NULL;
    request_done(c, r->status);
    c->state = C_IDLE;
    c->used = true;
    if (r->close_after || (c->srv->stopping && c->in.len == 0)) {
        ig_conn_close_after_write(c);
        return;
    }
    arm_timer(c);
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= IG_SERVER_HIGH_WATER) {
        /* A client that pipelines and does not read its answers must not
         * make the gateway hold them all: like nginx, read the next
         * request only once the answers before it are (mostly) written.
         * on_write resumes at IG_SERVER_LOW_WATER. */
        c->write_paused = true;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        return;
    }
    ig_conn_resume_input(c);
}

void ig_conn_resume_input(ig_conn_t *c)
{
    c->write_paused = false;
    if (c->closing || c->state != C_IDLE)
        return;
    if (c->in.len > 0)
        feed(c);
    else if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

/* ---- listeners and the server ----------------------------------------- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
            return true;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            return a->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static ig_conn_t *conn_new(ig_server_t *s)
{
    ig_conn_t *c = ig_xcalloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    s->nconns++;
    ig_list_push_front(&s->conns, &c->link);
    return c;
}

/* Starts serving a connected socket. */
static void conn_start(ig_conn_t *c)
{
    ig_server_t *s = c->srv;
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof(c->peer_ip));
        else if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof(c->peer_ip));
        c->loopback = is_loopback(&ss);
        /* Report IPv4-mapped peers in their IPv4 form. */
        if (strncmp(c->peer_ip, "::ffff:", 7) == 0 && strchr(c->peer_ip + 7, '.'))
            memmove(c->peer_ip, c->peer_ip + 7, strlen(c->peer_ip + 7) + 1);
    }
    ig_buf_init(&c->in, 0);
    ig_buf_init(&c->out, 0);
    ig_buf_init(&c->req.head, s->opts.limits.max_header_bytes);
    ig_buf_init(&c->req.body, s->opts.limits.max_body_bytes);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    req_reset(c);
    c->state = C_IDLE;
    arm_timer(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
    else
        ig_conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    listener_t *l = ls->data;
    ig_server_t *s = l->srv;
    if (status < 0)
        return;
    ig_conn_t *c = conn_new(s);
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 || s->stopping ||
        (s->opts.limits.max_connections && s->nconns > s->opts.limits.max_connections)) {
        ig_conn_close(c);
        return;
    }
    conn_start(c);
}

int ig_server_adopt_fd(ig_server_t *s, int fd)
{
    if (s->stopping)
        return IG_EINVAL;
    ig_conn_t *c = conn_new(s);
    int r = uv_tcp_open(&c->tcp, fd);
    if (r < 0) {
        close(fd);
        ig_conn_close(c);
        return ig_error_from_uv(r);
    }
    conn_start(c);
    return 0;
}

ig_server_t *ig_server_new(uv_loop_t *loop, const ig_server_opts_t *opts)
{
    ig_server_t *s = ig_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->opts = *opts;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    s->reqid_seed = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    /* Corked bytes leave after each round of I/O; the handle alone must not
     * keep the loop alive. */
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, ig_server_flush_all);
    uv_unref((uv_handle_t *)&s->flush_check);
    s->open_handles++;
    return s;
}

static void on_check_closed(uv_handle_t *h)
{
    ig_server_t *s = h->data;
    s->open_handles--;
    maybe_free_server(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    ig_server_t *s = l->srv;
    free(l);
    s->open_handles--;
    maybe_free_server(s);
}

int ig_server_listen(ig_server_t *s, const char *addr)
{
    struct sockaddr_storage ss;
    if (ig_addr_parse(addr, &ss) != 0)
        return IG_EADDR;
    if (s->nlisteners == sizeof(s->listeners) / sizeof(s->listeners[0]))
        return IG_EINVAL;
    listener_t *l = ig_xcalloc(1, sizeof(*l));
    l->srv = s;
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    s->open_handles++;
    int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return ig_error_from_uv(r);
    }
    if (s->nlisteners == 0) {
        struct sockaddr_storage bound;
        int bl = sizeof(bound);
        if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &bl) == 0)
            s->port =
                ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    s->listeners[s->nlisteners++] = l;
    return 0;
}

int ig_server_port(const ig_server_t *s)
{
    return s->port;
}

void ig_server_close_soon(ig_server_t *s)
{
    s->closing_soon = true;
}

void ig_server_stop_accepting(ig_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->closing_soon = true;
    for (size_t i = 0; i < s->nlisteners; i++)
        uv_close((uv_handle_t *)&s->listeners[i]->tcp, on_listener_closed);
    s->nlisteners = 0;
    ig_link_t *next;
    for (ig_link_t *l = s->conns.head; l; l = next) {
        next = l->next;
        ig_conn_t *c = IG_LIST_ITEM(l, ig_conn_t, link);
        if (c->state != C_IDLE || c->in.len != 0)
            continue;
        if (c->used) {
            /* Between requests: nothing is lost by closing now. */
            ig_conn_close(c);
        } else {
            /* Accepted but nothing read yet: its first request may be on
             * the wire. Give it a moment before giving up on it. */
            uint64_t ms = s->opts.limits.idle_timeout_ms;
            if (ms == 0 || ms > IG_SERVER_FIRST_REQUEST_GRACE_MS)
                ms = IG_SERVER_FIRST_REQUEST_GRACE_MS;
            uv_timer_start(&c->timer, on_timer, ms, 0);
        }
    }
}

void ig_server_close(ig_server_t *s, void (*cb)(void *arg), void *arg)
{
    ig_server_stop_accepting(s);
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    while (s->conns.head)
        ig_conn_close(IG_LIST_ITEM(s->conns.head, ig_conn_t, link));
    if (!uv_is_closing((uv_handle_t *)&s->flush_check))
        uv_close((uv_handle_t *)&s->flush_check, on_check_closed);
    maybe_free_server(s);
}

size_t ig_server_active_requests(const ig_server_t *s)
{
    return s->active;
}

size_t ig_server_connections(const ig_server_t *s)
{
    return s->nconns;
}
