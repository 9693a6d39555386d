/*
 * upstream.c: the keep-alive connection pool to the model and the HTTP/1.1
 * client that runs one call at a time on each connection.
 *
 * Connections are kept in two lists: every open one, and the idle ones
 * (most recently used first, so that warm connections get reused and cold
 * ones age out when the model closes them). A call takes an idle
 * connection, or opens one while fewer than max_connections exist, or
 * waits in FIFO order for one to come free.
 *
 * Timeouts live on the connection: while connecting, connect_timeout_ms;
 * once the request is written, the call's response timeout. Responses are
 * parsed with llhttp and streamed to the caller as they arrive.
 *
 * The callback rule: no callback of a call runs before ig_upstream_call
 * returns. A failure found on the caller's stack (a write to a connection
 * the model already reset, a connect that cannot even start) is put on the
 * pool's pending list and reported by a zero timer from the loop
 * (fail_later). A connection whose call is canceled while it connects
 * finishes connecting and serves the next call that needs one.
 */
#include "infergate/net/upstream.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "infergate/base/url.h"

#define MAX_RESP_HEADERS 100

typedef enum { U_CONNECTING, U_IDLE, U_BUSY, U_CLOSED } uconn_state_t;

typedef struct uconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    int handles_open;
    ig_upstream_t *u;
    ig_link_t link;      /* in the pool's conns */
    ig_link_t idle_link; /* in the pool's idle list */
    uconn_state_t state;
    /* Served a call or sat idle before the current one: the model may
     * have closed it meanwhile, so a failure before any response byte is
     * worth one retry on a fresh connection. */
    bool reused;
    bool writing; /* write_req in flight */
    bool spare;   /* connecting, its call canceled, no call taken it over yet */
    ig_ucall_t *call;
    llhttp_t parser;
    bool head_method;
    int status;
    bool got_head;
    bool done;     /* message complete for the current call */
    ig_buf_t out;  /* request head being written */
    ig_buf_t head; /* response header bytes */
    /* Where each response header lies in `head`; grown on demand so that a
     * pooled connection does not carry room for a hundred headers. The
     * slices handed to on_head are built on the stack. */
    struct hspan {
        uint32_t name_off, name_len, value_off, value_len;
    } * spans;
    size_t scap;
    size_t nhdrs;
    bool in_value;
} uconn_t;

struct ig_upstream {
    uv_loop_t *loop;
    ig_upstream_opts_t opts;
    struct sockaddr_storage addr;
    char host[300];
    char base_path[512];
    llhttp_settings_t settings;
    ig_list_t conns; /* every open connection, not the closing ones */
    ig_list_t idle;  /* the idle ones */
    size_t nconns, nidle;
    size_t nspare;   /* connecting ones without a call (uconn_t.spare) */
    size_t nclosing; /* connections whose handles are closing */
    ig_list_t wait;  /* calls waiting for a connection (ig_ucall_t.wait_link_) */
    /* Calls that failed on the caller's stack, reported from the loop by
     * `defer` (ig_ucall_t.wait_link_ too: a call is never in both). */
    ig_list_t pending;
    size_t npending;
    uv_timer_t defer;
    bool defer_closed;
    bool serving; /* serve_waiters is on the stack */
    bool freeing;
    char readbuf[64 * 1024];
};

static void conn_fail(uconn_t *uc, int err);
static void conn_fail_ex(uconn_t *uc, int err, bool defer);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void start_on_conn(uconn_t *uc, ig_ucall_t *c);
static void open_conn_for(ig_upstream_t *u, ig_ucall_t *c);

/* ---- lists ----------------------------------------------------------- */

static void idle_remove(ig_upstream_t *u, uconn_t *uc)
{
    if (!ig_list_contains(&u->idle, &uc->idle_link))
        return;
    ig_list_remove(&u->idle, &uc->idle_link);
    u->nidle--;
}

/* Most recently used first: a light load keeps reusing a few warm
 * connections and lets the rest age out. */
static void idle_push(ig_upstream_t *u, uconn_t *uc)
{
    uc->reused = true; /* the model may close it while it waits */
    ig_list_push_front(&u->idle, &uc->idle_link);
    u->nidle++;
}

static void wait_push(ig_upstream_t *u, ig_ucall_t *c)
{
    ig_list_push_back(&u->wait, &c->wait_link_);
}

static void wait_remove(ig_upstream_t *u, ig_ucall_t *c)
{
    ig_list_remove(&u->wait, &c->wait_link_);
}

static ig_ucall_t *wait_pop(ig_upstream_t *u)
{
    return IG_LIST_ITEM(ig_list_pop_front(&u->wait), ig_ucall_t, wait_link_);
}

/* ---- errors reported from the loop ----------------------------------- */

static void on_defer(uv_timer_t *t)
{
    ig_upstream_t *u = t->data;
    /* Only the calls queued before this run: a caller that starts a new
     * call from on_done, and fails again at once, waits for the next one. */
    size_t n = u->npending;
    while (n-- > 0 && u->pending.head) {
        ig_ucall_t *c = IG_LIST_ITEM(ig_list_pop_front(&u->pending), ig_ucall_t, wait_link_);
        u->npending--;
        int err = c->pend_err_;
        c->pend_err_ = 0;
        c->on_done(c, err);
    }
    if (u->pending.head && !u->freeing)
        uv_timer_start(&u->defer, on_defer, 0, 0);
}

/* Ends `c` with `err` from the loop, not from the caller's stack. */
static void fail_later(ig_upstream_t *u, ig_ucall_t *c, int err)
{
    c->pend_err_ = err;
    ig_list_push_back(&u->pending, &c->wait_link_);
    u->npending++;
    if (!uv_is_active((uv_handle_t *)&u->defer))
        uv_timer_start(&u->defer, on_defer, 0, 0);
}

static void attach(uconn_t *uc, ig_ucall_t *c)
{
    if (uc->spare) {
        uc->spare = false;
        uc->u->nspare--;
    }
    uc->call = c;
    c->conn_ = uc;
}

/* ---- connection lifecycle --------------------------------------------- */

static void maybe_free_pool(ig_upstream_t *u)
{
    if (u->freeing && u->nconns == 0 && u->nclosing == 0 && u->defer_closed)
        free(u);
}

static void on_defer_closed(uv_handle_t *h)
{
    ig_upstream_t *u = h->data;
    u->defer_closed = true;
    maybe_free_pool(u);
}

/* Opens connections for waiting calls while there is room. */
static void serve_waiters(ig_upstream_t *u)
{
    /* open_conn_for can fail at once and close the connection, which
     * comes back here: the outer loop goes on instead. */
    if (u->serving)
        return;
    u->serving = true;
    while (!u->freeing && u->wait.head && u->nconns < u->opts.max_connections)
        open_conn_for(u, wait_pop(u));
    u->serving = false;
}

static void on_handle_closed(uv_handle_t *h)
{
    uconn_t *uc = h->data;
    if (--uc->handles_open > 0)
        return;
    ig_upstream_t *u = uc->u;
    ig_buf_dispose(&uc->out);
    ig_buf_dispose(&uc->head);
    free(uc->spans);
    free(uc);
    u->nclosing--;
    maybe_free_pool(u);
}

/* Closes the connection and gives up its slot at once; its current call
 * (if any) is detached first by the caller. Serves no waiting call. */
static void conn_drop(uconn_t *uc)
{
    if (uc->state == U_CLOSED)
        return;
    ig_upstream_t *u = uc->u;
    if (uc->state == U_IDLE)
        idle_remove(u, uc);
    if (uc->spare) {
        uc->spare = false;
        u->nspare--;
    }
    uc->state = U_CLOSED;
    ig_list_remove(&u->conns, &uc->link);
    u->nconns--;
    u->nclosing++;
    uv_close((uv_handle_t *)&uc->timer, on_handle_closed);
    uv_close((uv_handle_t *)&uc->tcp, on_handle_closed);
}

/* Closes the connection; the slot that came free serves the oldest
 * waiting call. */
static void conn_close(uconn_t *uc)
{
    ig_upstream_t *u = uc->u;
    conn_drop(uc);
    serve_waiters(u);
}

/* RFC 9110 9.2.2: methods whose repetition has the effect of one request. */
static bool idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; m && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* The current call ends with `err`, from the loop when `defer` (the
 * failure was found on a caller's stack); the connection is closed. */
static void conn_fail_ex(uconn_t *uc, int err, bool defer)
{
    ig_ucall_t *c = uc->call;
    ig_upstream_t *u = uc->u;
    /* A stale kept-alive connection is retried once, where sending the
     * request again cannot do the work twice: nothing of it was written,
     * or its method is idempotent. */
    bool retry = c && !c->got_response && uc->reused && !c->retried_ &&
                 (err == IG_ECONNRESET || err == IG_EPROTO) &&
                 (!c->wrote_ || idempotent(c->method));
    uc->call = NULL;
    conn_drop(uc);
    if (c) {
        c->conn_ = NULL;
        if (retry) {
            /* The model probably closed this kept-alive connection while
             * it was idle: try once more on a fresh one, in the slot this
             * one just gave up (the call keeps its turn before waiters). */
            c->retried_ = true;
            ig_log_debug("retrying upstream call on a fresh connection after a stale one failed");
            if (u->nconns < u->opts.max_connections)
                open_conn_for(u, c);
            else
                ig_list_push_front(&u->wait, &c->wait_link_);
            c = NULL;
        }
    }
    serve_waiters(u);
    if (!c)
        return;
    if (defer)
        fail_later(u, c, err);
    else
        c->on_done(c, err);
}

static void conn_fail(uconn_t *uc, int err)
{
    conn_fail_ex(uc, err, false);
}

/* Returns a connection whose call completed to the pool (or closes it),
 * then tells the caller. */
static void conn_release(uconn_t *uc, bool keep)
{
    ig_ucall_t *c = uc->call;
    ig_upstream_t *u = uc->u;
    uc->call = NULL;
    c->conn_ = NULL;
    uv_timer_stop(&uc->timer);
    if (c->paused_) {
        c->paused_ = false;
        if (keep && uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read) < 0)
            keep = false;
    }
    if (keep && !u->freeing) {
        uc->reused = true;
        ig_ucall_t *next = wait_pop(u);
        if (next) {
            start_on_conn(uc, next);
        } else {
            uc->state = U_IDLE;
            idle_push(u, uc);
        }
    } else {
        conn_close(uc);
    }
    c->on_done(c, 0);
}

/* ---- response parsing -------------------------------------------------- */

static uconn_t *uc_of(llhttp_t *p)
{
    return p->data;
}

static int head_add(uconn_t *uc, const char *at, size_t len)
{
    return ig_buf_append(&uc->head, at, len) == 0 ? 0 : -1;
}

static int on_message_begin(llhttp_t *p)
{
    uconn_t *uc = uc_of(p);
    ig_buf_reset(&uc->head);
    uc->nhdrs = 0;
    uc->in_value = false;
    uc->got_head = false;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    uconn_t *uc = uc_of(p);
    if (uc->in_value || uc->nhdrs == 0) {
        if (uc->nhdrs == MAX_RESP_HEADERS)
            return -1;
        uc->in_value = false;
        if (uc->nhdrs == uc->scap) {
            size_t cap = uc->scap ? uc->scap * 2 : 16;
            if (cap > MAX_RESP_HEADERS)
                cap = MAX_RESP_HEADERS;
            uc->spans = ig_xrealloc(uc->spans, cap * sizeof(*uc->spans));
            uc->scap = cap;
        }
        uint32_t at_off = (uint32_t)uc->head.len;
        uc->spans[uc->nhdrs] = (struct hspan){at_off, 0, at_off, 0};
        uc->nhdrs++;
    }
    uc->spans[uc->nhdrs - 1].name_len += (uint32_t)len;
    return head_add(uc, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    uconn_t *uc = uc_of(p);
    if (!uc->in_value) {
        uc->in_value = true;
        uc->spans[uc->nhdrs - 1].value_off = (uint32_t)uc->head.len;
    }
    uc->spans[uc->nhdrs - 1].value_len += (uint32_t)len;
    return head_add(uc, at, len);
}

static int on_headers_complete(llhttp_t *p)
{
    uconn_t *uc = uc_of(p);
    ig_ucall_t *c = uc->call;
    int status = llhttp_get_status_code(p);
    if (status < 200)
        return 1; /* interim response: no content (RFC 9110 15.2), the real one follows */
    uc->status = status;
    uc->got_head = true;
    const char *base = uc->head.base ? uc->head.base : "";
    ig_header_t hdrs[MAX_RESP_HEADERS];
    for (size_t i = 0; i < uc->nhdrs; i++) {
        const struct hspan *sp = &uc->spans[i];
        hdrs[i].name = ig_slice(base + sp->name_off, sp->name_len);
        hdrs[i].value = ig_slice(base + sp->value_off, sp->value_len);
    }
    int64_t cl = -1;
    if (p->flags & F_CONTENT_LENGTH) {
        /* llhttp takes lengths up to 2^64-1; ours is signed, with -1 for
         * unknown. A length beyond INT64_MAX is no honest answer. */
        if (p->content_length > (uint64_t)INT64_MAX)
            return -1;
        cl = (int64_t)p->content_length;
    }
    bool no_body = uc->head_method || status == 204 || status == 304;
    /* A HEAD answer keeps the length of the body it describes. */
    int64_t shown = uc->head_method ? cl : (no_body ? 0 : cl);
    if (c && c->on_head && c->on_head(c, status, hdrs, uc->nhdrs, shown) != 0) {
        /* The caller gave up on this call: no more callbacks. */
        uc->call = NULL;
        c->conn_ = NULL;
        return -1;
    }
    return no_body ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    uconn_t *uc = uc_of(p);
    ig_ucall_t *c = uc->call;
    if (c && c->on_body && uc->got_head)
        c->on_body(c, at, len);
    return uc->call ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
    uconn_t *uc = uc_of(p);
    if (!uc->got_head)
        return 0; /* end of an interim response */
    uc->done = true;
    return HPE_PAUSED;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    uconn_t *uc = h->data;
    buf->base = uc->u->readbuf;
    buf->len = sizeof(uc->u->readbuf);
}

static void finish_message(uconn_t *uc)
{
    bool keep = llhttp_should_keep_alive(&uc->parser) && !uc->u->freeing;
    conn_release(uc, keep);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    uconn_t *uc = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (uc->state == U_BUSY && uc->call) {
            /* A close-delimited body ends here. */
            if (uc->got_head && llhttp_message_needs_eof(&uc->parser)) {
                llhttp_errno_t fe = llhttp_finish(&uc->parser);
                if ((fe == HPE_OK || fe == HPE_PAUSED) && uc->done) {
                    conn_release(uc, false);
                    return;
                }
            }
            conn_fail(uc, IG_ECONNRESET);
            return;
        }
        conn_close(uc);
        return;
    }
    if (uc->state != U_BUSY || !uc->call) {
        /* Bytes nobody asked for: the connection is out of sync. */
        conn_close(uc);
        return;
    }
    uc->call->got_response = true;
    uc->done = false;
    llhttp_errno_t e = llhttp_execute(&uc->parser, buf->base, (size_t)nread);
    if (uc->done) {
        size_t used = (size_t)(llhttp_get_error_pos(&uc->parser) - buf->base);
        bool extra = used < (size_t)nread;
        llhttp_resume(&uc->parser);
        if (extra) {
            /* The model sent more than one response: do not reuse. */
            conn_release(uc, false);
            return;
        }
        finish_message(uc);
        return;
    }
    if (e == HPE_OK)
        return;
    if (!uc->call) {
        /* on_head canceled the call. */
        conn_close(uc);
        return;
    }
    ig_log_warn("bad response from upstream: %s", llhttp_errno_name(e));
    conn_fail(uc, IG_EPROTO);
}

/* ---- sending --------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
    uconn_t *uc = t->data;
    conn_fail(uc, IG_ETIMEDOUT);
}

static void on_written(uv_write_t *w, int status)
{
    uconn_t *uc = w->data;
    uc->writing = false;
    if (status < 0 && uc->state == U_BUSY && uc->call)
        conn_fail(uc,
                  ig_error_from_uv(status) == IG_ECONNREFUSED ? IG_ECONNREFUSED : IG_ECONNRESET);
}

static void start_on_conn(uconn_t *uc, ig_ucall_t *c)
{
    ig_upstream_t *u = uc->u;
    uc->state = U_BUSY;
    attach(uc, c);
    c->got_response = false;
    uc->head_method = strcmp(c->method, "HEAD") == 0;
    uc->done = false;
    llhttp_init(&uc->parser, HTTP_RESPONSE, &u->settings);
    uc->parser.data = uc;

    ig_buf_t *o = &uc->out;
    ig_buf_reset(o);
    ig_buf_printf(o, "%s %s", c->method, u->base_path);
    ig_buf_append_slice(o, c->target);
    ig_buf_printf(o, " HTTP/1.1\r\nHost: %s\r\n", u->host);
    for (size_t i = 0; i < c->nheaders; i++) {
        ig_buf_append_slice(o, c->headers[i].name);
        ig_buf_append(o, ": ", 2);
        ig_buf_append_slice(o, c->headers[i].value);
        ig_buf_append(o, "\r\n", 2);
    }
    bool method_has_body = strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0 &&
                           strcmp(c->method, "DELETE") != 0 && strcmp(c->method, "OPTIONS") != 0;
    if (c->body.len > 0 || method_has_body)
        ig_buf_printf(o, "Content-Length: %zu\r\n", c->body.len);
    ig_buf_append(o, "\r\n", 2);

    uv_buf_t bufs[2] = {uv_buf_init(o->base, (unsigned)o->len),
                        uv_buf_init((char *)c->body.base, (unsigned)c->body.len)};
    uc->write_req.data = uc;
    c->sent_ns = uv_hrtime();
    uint64_t tmo = c->timeout_ms ? c->timeout_ms : u->opts.timeout_ms;
    if (tmo)
        uv_timer_start(&uc->timer, on_timeout, tmo, 0);
    if (c->paused_)
        uv_read_stop((uv_stream_t *)&uc->tcp);
    /* Most requests fit the socket buffer: write them directly. A queued
     * uv_write would cost an extra epoll_ctl per call for its callback. */
    unsigned nbufs = c->body.len ? 2 : 1;
    c->wrote_ = false;
    int w = uv_try_write((uv_stream_t *)&uc->tcp, bufs, nbufs);
    size_t done = w > 0 ? (size_t)w : 0;
    c->wrote_ = done > 0;
    if (w < 0 && w != UV_EAGAIN) {
        /* Nothing was written: a stale connection is retried, and the
         * error of any other is reported from the loop, since this may
         * run inside ig_upstream_call. */
        conn_fail_ex(uc, IG_ECONNRESET, true);
        return;
    }
    if (done == o->len + c->body.len)
        return;
    /* Queue what is left. */
    unsigned first = 0;
    while (first < nbufs && done >= bufs[first].len) {
        done -= bufs[first].len;
        first++;
    }
    bufs[first].base += done;
    bufs[first].len -= done;
    int r =
        uv_write(&uc->write_req, (uv_stream_t *)&uc->tcp, bufs + first, nbufs - first, on_written);
    if (r < 0) {
        conn_fail_ex(uc, IG_ECONNRESET, true);
        return;
    }
    /* Queued: libuv may write part of it before failing, so from here on
     * the request counts as sent. */
    c->wrote_ = true;
    uc->writing = true;
}

static void on_connect(uv_connect_t *req, int status)
{
    uconn_t *uc = req->data;
    if (uc->state == U_CLOSED)
        return;
    uv_timer_stop(&uc->timer);
    if (status < 0) {
        conn_fail(uc, ig_error_from_uv(status) == IG_ETIMEDOUT ? IG_ETIMEDOUT : IG_ECONNREFUSED);
        return;
    }
    uv_tcp_nodelay(&uc->tcp, 1);
    if (uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read) < 0) {
        conn_fail(uc, IG_ECONNREFUSED);
        return;
    }
    ig_ucall_t *c = uc->call;
    if (!c) {
        /* Its call was canceled while connecting and no call took it over
         * (ig_upstream_cancel hands it to a waiting one, ig_upstream_call
         * takes a spare one): keep the connection. */
        ig_ucall_t *next = wait_pop(uc->u);
        if (next) {
            start_on_conn(uc, next);
        } else {
            if (uc->spare) {
                uc->spare = false;
                uc->u->nspare--;
            }
            uc->state = U_IDLE;
            idle_push(uc->u, uc);
        }
        return;
    }
    start_on_conn(uc, c);
}

static void on_connect_timeout(uv_timer_t *t)
{
    uconn_t *uc = t->data;
    conn_fail(uc, IG_ETIMEDOUT);
}

static void open_conn_for(ig_upstream_t *u, ig_ucall_t *c)
{
    uconn_t *uc = ig_xcalloc(1, sizeof(*uc));
    uc->u = u;
    uv_tcp_init(u->loop, &uc->tcp);
    uv_timer_init(u->loop, &uc->timer);
    uc->tcp.data = uc;
    uc->timer.data = uc;
    uc->handles_open = 2;
    ig_buf_init(&uc->out, 0);
    ig_buf_init(&uc->head, u->opts.max_header_bytes ? u->opts.max_header_bytes : 65536);
    ig_list_push_front(&u->conns, &uc->link);
    u->nconns++;
    uc->state = U_CONNECTING;
    attach(uc, c);
    uc->connect_req.data = uc;
    int r = uv_tcp_connect(&uc->connect_req, &uc->tcp, (struct sockaddr *)&u->addr, on_connect);
    if (r < 0) {
        /* Reported from the loop, as promised: the callback must not run
         * before ig_upstream_call returns. */
        conn_fail_ex(uc, IG_ECONNREFUSED, true);
        return;
    }
    if (u->opts.connect_timeout_ms)
        uv_timer_start(&uc->timer, on_connect_timeout, u->opts.connect_timeout_ms, 0);
}

/* ---- public API ------------------------------------------------------- */

int ig_upstream_new(uv_loop_t *loop, const ig_upstream_opts_t *opts, ig_upstream_t **out, char *err,
                    size_t errlen)
{
    const char *url = opts->url;
    int rc = IG_EINVAL;
    /* Messages quote the URL without its user info (a password). */
    char *shown = ig_log_redact_url(url ? url : "");
    ig_url_t pu;
    const char *why = NULL;
    if (!url || ig_url_parse(url, strlen(url), &pu, &why) < 0) {
        snprintf(err, errlen, "upstream.url: %s, got '%s'", why ? why : "is not set", shown);
        goto fail;
    }
    if (pu.https || pu.query.base || pu.fragment.base) {
        snprintf(err, errlen, "upstream.url: must be http://host[:port][/path], got '%s'", shown);
        goto fail;
    }
    char host[260], port[8];
    if (pu.hostport.len >= 256) { /* fits u->host; host[] holds a part of it */
        snprintf(err, errlen, "upstream.url: host too long in '%s'", shown);
        goto fail;
    }
    snprintf(host, sizeof(host), "%.*s", (int)pu.host.len, pu.host.base);
    snprintf(port, sizeof(port), "%u", (unsigned)pu.port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gr = getaddrinfo(host, port, &hints, &res);
    if (gr != 0 || !res) {
        snprintf(err, errlen, "upstream.url: cannot resolve '%s' port '%s': %s", host, port,
                 gai_strerror(gr));
        rc = IG_EADDR;
        goto fail;
    }
    free(shown);
    ig_upstream_t *u = ig_xcalloc(1, sizeof(*u));
    memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    u->loop = loop;
    u->opts = *opts;
    u->opts.url = NULL; /* not kept: the caller's string */
    if (u->opts.max_connections == 0)
        u->opts.max_connections = 64;
    snprintf(u->host, sizeof(u->host), "%.*s", (int)pu.hostport.len, pu.hostport.base);
    if (pu.path.len > 0) {
        snprintf(u->base_path, sizeof(u->base_path), "%.*s", (int)pu.path.len, pu.path.base);
        size_t bl = strlen(u->base_path);
        if (bl > 0 && u->base_path[bl - 1] == '/')
            u->base_path[bl - 1] = '\0';
    }
    llhttp_settings_init(&u->settings);
    u->settings.on_message_begin = on_message_begin;
    u->settings.on_header_field = on_header_field;
    u->settings.on_header_value = on_header_value;
    u->settings.on_headers_complete = on_headers_complete;
    u->settings.on_body = on_body;
    u->settings.on_message_complete = on_message_complete;
    uv_timer_init(loop, &u->defer);
    u->defer.data = u;
    *out = u;
    return 0;
fail:
    free(shown);
    return rc;
}

int ig_upstream_call(ig_upstream_t *u, ig_ucall_t *c)
{
    if (!c->method || !c->on_done || u->freeing)
        return IG_EINVAL;
    c->conn_ = NULL;
    c->pool_ = u;
    c->wait_link_ = (ig_link_t){0};
    c->pend_err_ = 0;
    c->retried_ = false;
    c->paused_ = false;
    c->got_response = false;
    if (u->idle.head) {
        uconn_t *uc = IG_LIST_ITEM(u->idle.head, uconn_t, idle_link);
        idle_remove(u, uc);
        start_on_conn(uc, c);
        return 0;
    }
    if (u->nspare > 0) {
        /* A connection still connecting for a canceled call: on_connect
         * sends this call on it. */
        for (ig_link_t *l = u->conns.head; l; l = l->next) {
            uconn_t *uc = IG_LIST_ITEM(l, uconn_t, link);
            if (uc->spare) {
                attach(uc, c);
                return 0;
            }
        }
    }
    if (u->nconns < u->opts.max_connections)
        open_conn_for(u, c);
    else
        wait_push(u, c);
    return 0;
}

void ig_upstream_cancel(ig_ucall_t *c)
{
    ig_upstream_t *u = c->pool_;
    if (c->pend_err_) {
        /* Its error waits to be reported: it never will be. */
        ig_list_remove(&u->pending, &c->wait_link_);
        u->npending--;
        c->pend_err_ = 0;
        return;
    }
    uconn_t *uc = c->conn_;
    if (uc) {
        uc->call = NULL;
        c->conn_ = NULL;
        if (uc->state == U_BUSY) {
            conn_close(uc);
        } else if (uc->state == U_CONNECTING) {
            /* The connection goes on connecting, for the oldest waiting
             * call or, failing one, the next call to come (see on_connect). */
            ig_ucall_t *next = wait_pop(u);
            if (next) {
                attach(uc, next);
            } else {
                uc->spare = true;
                u->nspare++;
            }
        }
        return;
    }
    /* Waiting for a connection. */
    if (u && ig_list_contains(&u->wait, &c->wait_link_))
        wait_remove(u, c);
}

int ig_upstream_orphan(ig_ucall_t *c)
{
    uconn_t *uc = c->conn_;
    if (!uc || uc->state != U_BUSY || uc->writing || c->sent_ns == 0)
        return IG_EAGAIN;
    c->retried_ = true; /* a retry would resend the request */
    c->method = NULL;
    c->target = (ig_slice_t){0};
    c->headers = NULL;
    c->nheaders = 0;
    c->body = (ig_slice_t){0};
    return 0;
}

void ig_upstream_pause(ig_ucall_t *c)
{
    uconn_t *uc = c->conn_;
    c->paused_ = true;
    if (uc && uc->state == U_BUSY)
        uv_read_stop((uv_stream_t *)&uc->tcp);
}

void ig_upstream_resume(ig_ucall_t *c)
{
    uconn_t *uc = c->conn_;
    if (!c->paused_)
        return;
    c->paused_ = false;
    if (uc && uc->state == U_BUSY)
        uv_read_start((uv_stream_t *)&uc->tcp, on_alloc, on_read);
}

const char *ig_upstream_base_path(const ig_upstream_t *u)
{
    return u->base_path;
}

const char *ig_upstream_host(const ig_upstream_t *u)
{
    return u->host;
}

size_t ig_upstream_open_connections(const ig_upstream_t *u)
{
    return u->nconns;
}

size_t ig_upstream_idle_connections(const ig_upstream_t *u)
{
    return u->nidle;
}

void ig_upstream_free(ig_upstream_t *u)
{
    u->freeing = true;
    ig_ucall_t *c;
    /* Errors already decided are told as they are, now. */
    while ((c = IG_LIST_ITEM(ig_list_pop_front(&u->pending), ig_ucall_t, wait_link_))) {
        u->npending--;
        int err = c->pend_err_;
        c->pend_err_ = 0;
        c->on_done(c, err);
    }
    while ((c = wait_pop(u)))
        c->on_done(c, IG_ECANCELED);
    while (u->conns.head) {
        uconn_t *uc = IG_LIST_ITEM(u->conns.head, uconn_t, link);
        ig_ucall_t *call = uc->call;
        uc->call = NULL;
        conn_drop(uc);
        if (call) {
            call->conn_ = NULL;
            call->on_done(call, IG_ECANCELED);
        }
    }
    uv_close((uv_handle_t *)&u->defer, on_defer_closed);
}
