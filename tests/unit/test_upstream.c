/*
 * test_upstream.c: unit tests of the upstream pool through upstream.h, over
 * real loopback sockets.
 *
 * The model is a fake HTTP server on the same loop (port 0): it counts the
 * connections it accepted and the requests it read whole, answers each with
 * a small keep-alive 200 (or holds it, or sends a large body), and can close
 * its connections gracefully or with a reset, without the pool's loop
 * running in between, which is how a kept-alive connection goes stale.
 *
 * Every callback checks that the ig_upstream_call that started its call has
 * returned (the callback rule of upstream.h). Each test frees its pool,
 * closes every handle and ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "infergate/base/error.h"
#include "infergate/net/upstream.h"

/* ---- the fake model ---------------------------------------------------- */

#define MAX_PEERS 16

typedef struct fake fake_t;

typedef struct {
    uv_tcp_t tcp;
    fake_t *f;
    char in[8192];
    size_t len;
    bool open;
} peer_t;

struct fake {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    int port;
    peer_t *peers[MAX_PEERS];
    int accepted;
    int requests; /* requests read whole */
    bool hold;    /* read requests but do not answer */
    size_t big;   /* answer with a body of this many bytes instead of "ok" */
    char *bigbuf;
    uv_write_t wreq[MAX_PEERS];
};

static void on_peer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void peer_close(peer_t *p, bool reset)
{
    if (!p->open)
        return;
    p->open = false;
    for (int i = 0; i < MAX_PEERS; i++)
        if (p->f->peers[i] == p)
            p->f->peers[i] = NULL;
    if (reset)
        assert_int_equal(uv_tcp_close_reset(&p->tcp, on_peer_closed), 0);
    else
        uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void on_fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    peer_t *p = h->data;
    buf->base = p->in + p->len;
    buf->len = sizeof(p->in) - p->len;
}

static void on_fake_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void fake_answer(peer_t *p, int slot)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    fake_t *f = p->f;
    if (f->big) {
        char head[96];
        int n =
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", f->big);
        uv_buf_t b[2] = {uv_buf_init(head, (unsigned)n), uv_buf_init(f->bigbuf, (unsigned)f->big)};
        /* The head is copied by a direct try; the body lives in bigbuf. */
        int w = uv_try_write((uv_stream_t *)&p->tcp, b, 1);
        assert_int_equal(w, n);
        assert_int_equal(
            uv_write(&f->wreq[slot], (uv_stream_t *)&p->tcp, b + 1, 1, on_fake_written), 0);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)ok, sizeof(ok) - 1);
    assert_int_equal(uv_try_write((uv_stream_t *)&p->tcp, &b, 1), (int)sizeof(ok) - 1);
}

/* Counts and answers each complete request in p->in. */
static void fake_parse(peer_t *p, int slot)
{
    for (;;) {
        char *end = memmem(p->in, p->len, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t head = (size_t)(end + 4 - p->in);
        size_t cl = 0;
        char *h = memmem(p->in, head, "Content-Length: ", 16);
        if (h)
            cl = strtoul(h + 16, NULL, 10);
        if (p->len < head + cl)
            return;
        memmove(p->in, p->in + head + cl, p->len - head - cl);
        p->len -= head + cl;
        p->f->requests++;
        if (!p->f->hold)
            fake_answer(p, slot);
    }
}

static void on_fake_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    peer_t *p = st->data;
    if (nread < 0) {
        peer_close(p, false);
        return;
    }
    p->len += (size_t)nread;
    int slot = 0;
    for (int i = 0; i < MAX_PEERS; i++)
        if (p->f->peers[i] == p)
            slot = i;
    fake_parse(p, slot);
}

static void on_fake_conn(uv_stream_t *ls, int status)
{
    fake_t *f = ls->data;
    assert_int_equal(status, 0);
    peer_t *p = calloc(1, sizeof(*p));
    p->f = f;
    p->open = true;
    uv_tcp_init(f->loop, &p->tcp);
    p->tcp.data = p;
    assert_int_equal(uv_accept(ls, (uv_stream_t *)&p->tcp), 0);
    f->accepted++;
    int i = 0;
    while (i < MAX_PEERS && f->peers[i])
        i++;
    assert_true(i < MAX_PEERS);
    f->peers[i] = p;
    uv_read_start((uv_stream_t *)&p->tcp, on_fake_alloc, on_fake_read);
}

static void fake_start(fake_t *f, uv_loop_t *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    uv_tcp_init(loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, on_fake_conn), 0);
    struct sockaddr_in b;
    int bl = sizeof(b);
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&b, &bl);
    f->port = ntohs(b.sin_port);
    f->listening = true;
}

/* Closes every accepted connection: with a reset (RST) or gracefully (FIN). */
static void fake_drop_peers(fake_t *f, bool reset)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (f->peers[i])
            peer_close(f->peers[i], reset);
}

static void fake_stop_listening(fake_t *f)
{
    if (f->listening)
        uv_close((uv_handle_t *)&f->listener, NULL);
    f->listening = false;
}

static void fake_stop(fake_t *f)
{
    fake_drop_peers(f, false);
    fake_stop_listening(f);
}

/* ---- the loop ---------------------------------------------------------- */

static uv_loop_t loop;
static uv_timer_t watchdog;
static bool timed_out;

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}

/* Runs the loop until `done(arg)` holds; fails the test after 5 s. */
static void run_until(bool (*done)(void *), void *arg)
{
    timed_out = false;
    uv_timer_start(&watchdog, on_watchdog, 5000, 0);
    while (!done(arg) && !timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    assert_false(timed_out);
}

static void on_sleep(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

/* Runs the loop for `ms` milliseconds. */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    bool over = false;
    uv_timer_init(&loop, &t);
    t.data = &over;
    uv_timer_start(&t, on_sleep, ms, 0);
    run_until(flag_set, &over);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        (*(int *)arg)++;
        uv_close(h, NULL);
    }
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &watchdog);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Everything the test opened is closed by now; walk only to make a
     * leftover visible as a failure rather than a hang. */
    int left = 0;
    uv_walk(&loop, close_walk, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(left, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ---- calls ------------------------------------------------------------- */

typedef struct {
    ig_ucall_t call;
    bool returned; /* ig_upstream_call came back */
    int heads, dones;
    int status, err;
    size_t body_bytes;
    bool pause_on_body; /* pause at the first body bytes */
    size_t bytes_at_pause;
} tcall_t;

static int on_head(ig_ucall_t *c, int status, const ig_header_t *h, size_t n, int64_t cl)
{
    (void)h;
    (void)n;
    (void)cl;
    tcall_t *t = c->data;
    assert_true(t->returned);
    t->heads++;
    t->status = status;
    return 0;
}

static void on_body(ig_ucall_t *c, const char *data, size_t len)
{
    (void)data;
    tcall_t *t = c->data;
    assert_true(t->returned);
    t->body_bytes += len;
    if (t->pause_on_body) {
        t->pause_on_body = false;
        ig_upstream_pause(c);
        t->bytes_at_pause = t->body_bytes;
    }
}

static void on_done(ig_ucall_t *c, int err)
{
    tcall_t *t = c->data;
    assert_true(t->returned);
    t->dones++;
    t->err = err;
}

static void call_init(tcall_t *t, const char *method, const char *body)
{
    memset(t, 0, sizeof(*t));
    t->call.data = t;
    t->call.method = method;
    t->call.target = ig_slice_cstr("/v1/models/m:predict");
    t->call.body = body ? ig_slice_cstr(body) : (ig_slice_t){0};
    t->call.on_head = on_head;
    t->call.on_body = on_body;
    t->call.on_done = on_done;
}

/* Starts a call the way the rule is checked: `returned` turns true only
 * once ig_upstream_call is back, and every callback asserts it. */
static void start(ig_upstream_t *u, tcall_t *t)
{
    t->returned = false;
    assert_int_equal(ig_upstream_call(u, &t->call), 0);
    t->returned = true;
    assert_int_equal(t->dones, 0);
}

static bool call_done(void *arg)
{
    return ((tcall_t *)arg)->dones > 0;
}

static ig_upstream_t *pool_new(int port, size_t max_conns)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    ig_upstream_opts_t o = {.url = url,
                            .max_connections = max_conns,
                            .connect_timeout_ms = 2000,
                            .timeout_ms = 3000,
                            .max_header_bytes = 16384};
    ig_upstream_t *u = NULL;
    char err[256];
    assert_int_equal(ig_upstream_new(&loop, &o, &u, err, sizeof(err)), 0);
    return u;
}

typedef struct {
    ig_upstream_t *u;
    size_t n;
} idle_wait_t;

static bool idle_reached(void *arg)
{
    idle_wait_t *w = arg;
    return ig_upstream_idle_connections(w->u) == w->n;
}

static bool accepted_one(void *arg)
{
    return ((fake_t *)arg)->accepted >= 1;
}

static bool read_one(void *arg)
{
    return ((fake_t *)arg)->requests >= 1;
}

static bool paused(void *arg)
{
    return ((tcall_t *)arg)->bytes_at_pause > 0;
}

/* A port nothing listens on: bound, then closed again. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* One completed call leaves its connection idle in the pool, and the
 * server's side accepted. */
static void warm_one(ig_upstream_t *u, fake_t *f)
{
    tcall_t t;
    call_init(&t, "GET", NULL);
    start(u, &t);
    run_until(call_done, &t);
    assert_int_equal(t.err, 0);
    assert_int_equal(t.status, 200);
    assert_int_equal(t.body_bytes, 2);
    assert_int_equal(ig_upstream_idle_connections(u), 1);
    assert_int_equal(f->accepted, 1);
}

/* ---- tests ------------------------------------------------------------- */

static void test_round_trip_keep_alive(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 4);
    warm_one(u, &f);
    tcall_t t;
    call_init(&t, "POST", "{\"instances\":[1]}");
    start(u, &t);
    run_until(call_done, &t);
    assert_int_equal(t.err, 0);
    assert_int_equal(t.heads, 1);
    assert_true(t.call.got_response);
    /* The second call went over the kept-alive connection. */
    assert_int_equal(f.accepted, 1);
    assert_int_equal(f.requests, 2);
    assert_int_equal(ig_upstream_open_connections(u), 1);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* The model closed the kept-alive connection (FIN) before the pool noticed:
 * the GET is written, the connection found dead, and the call retried once
 * on a fresh connection; the model sees the request once. */
static void test_stale_idle_retried_once(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 4);
    warm_one(u, &f);
    fake_drop_peers(&f, false);
    tcall_t t;
    call_init(&t, "GET", NULL);
    start(u, &t);
    run_until(call_done, &t);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.err, 0);
    assert_int_equal(t.status, 200);
    assert_int_equal(f.accepted, 2);
    assert_int_equal(f.requests, 2); /* the warm-up and this one, once */
    run_for(20);
    assert_int_equal(t.dones, 1);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* The model reset the idle connection: the write fails before any byte is
 * sent, so even a POST is provably unsent and retried once. */
static void test_stale_reset_post_retried(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 1);
    warm_one(u, &f);
    fake_drop_peers(&f, true);
    tcall_t t;
    call_init(&t, "POST", "{\"instances\":[2]}");
    start(u, &t);
    run_until(call_done, &t);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.err, 0);
    assert_int_equal(f.requests, 2);
    assert_int_equal(f.accepted, 2);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* A POST written to a connection the model had closed (FIN) may have been
 * read: it is never sent again, the call fails with IG_ECONNRESET. */
static void test_stale_written_post_not_resent(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 4);
    warm_one(u, &f);
    fake_drop_peers(&f, false);
    tcall_t t;
    call_init(&t, "POST", "{\"instances\":[3]}");
    start(u, &t);
    run_until(call_done, &t);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.err, IG_ECONNRESET);
    assert_int_equal(f.accepted, 1);
    assert_int_equal(f.requests, 1);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* Retried exactly once: when the fresh connection fails too (nothing
 * listens any more), the call ends with that error, once. */
static void test_stale_retry_exactly_once(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 4);
    warm_one(u, &f);
    fake_drop_peers(&f, true);
    fake_stop_listening(&f);
    tcall_t t;
    call_init(&t, "GET", NULL);
    start(u, &t);
    run_until(call_done, &t);
    run_for(20);
    assert_int_equal(t.dones, 1);
    assert_int_equal(t.err, IG_ECONNREFUSED);
    assert_int_equal(f.accepted, 1);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* Issue 8's bug: a call canceled while its connection connects left that
 * connection idle as if new; reset by the model, it then failed the next
 * call's write with no retry, and on_done ran inside ig_upstream_call. */
static void test_cancel_while_connecting_then_reuse(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 1);
    tcall_t a;
    call_init(&a, "GET", NULL);
    start(u, &a);
    ig_upstream_cancel(&a.call);
    idle_wait_t w = {u, 1};
    run_until(idle_reached, &w);
    run_until(accepted_one, &f);
    assert_int_equal(f.requests, 0);
    fake_drop_peers(&f, true);

    tcall_t b;
    call_init(&b, "POST", "{\"instances\":[4]}");
    start(u, &b); /* asserts no on_done ran inside */
    run_until(call_done, &b);
    assert_int_equal(b.dones, 1);
    assert_int_equal(b.err, 0);
    assert_int_equal(b.status, 200);
    assert_int_equal(f.requests, 1); /* sent once, on the fresh connection */
    assert_int_equal(f.accepted, 2);
    assert_int_equal(a.dones + a.heads, 0);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* A call started while a canceled call's connection still connects takes
 * that connection over instead of opening another. */
static void test_cancel_while_connecting_handed_over(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    ig_upstream_t *u = pool_new(f.port, 4);
    tcall_t a, b;
    call_init(&a, "GET", NULL);
    call_init(&b, "GET", NULL);
    start(u, &a);
    ig_upstream_cancel(&a.call);
    start(u, &b);
    assert_int_equal(ig_upstream_open_connections(u), 1);
    run_until(call_done, &b);
    assert_int_equal(b.err, 0);
    assert_int_equal(f.accepted, 1);
    assert_int_equal(f.requests, 1);
    assert_int_equal(a.dones, 0);

    /* At the limit: the waiting call gets the canceled call's connection. */
    ig_upstream_free(u);
    u = pool_new(f.port, 1);
    tcall_t c, d;
    call_init(&c, "GET", NULL);
    call_init(&d, "GET", NULL);
    start(u, &c);
    start(u, &d);
    ig_upstream_cancel(&c.call);
    run_until(call_done, &d);
    assert_int_equal(d.err, 0);
    assert_int_equal(c.dones, 0);
    assert_int_equal(f.accepted, 2);
    assert_int_equal(f.requests, 2);
    ig_upstream_free(u);
    fake_stop(&f);
}

typedef struct {
    tcall_t *calls;
    int n;
} all_t;

static bool all_done(void *arg)
{
    all_t *a = arg;
    for (int i = 0; i < a->n; i++)
        if (a->calls[i].dones == 0)
            return false;
    return true;
}

/* Errors known at once still arrive from the loop: connection refused on
 * a closed port, with the pool at its limit (the second call waits, then
 * fails the same way), and a connect that cannot even start. */
static void test_callbacks_never_synchronous(void **state)
{
    (void)state;
    ig_upstream_t *u = pool_new(closed_port(), 1);
    tcall_t t[3];
    for (int i = 0; i < 3; i++) {
        call_init(&t[i], i == 1 ? "POST" : "GET", "x");
        start(u, &t[i]);
    }
    all_t all = {t, 3};
    run_until(all_done, &all);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].dones, 1);
        assert_int_equal(t[i].err, IG_ECONNREFUSED);
        assert_int_equal(t[i].heads, 0);
    }
    ig_upstream_free(u);

    /* TCP to a multicast address fails inside connect() itself. */
    ig_upstream_opts_t o = {.url = "http://224.0.0.1:9", .max_connections = 2};
    char err[128];
    assert_int_equal(ig_upstream_new(&loop, &o, &u, err, sizeof(err)), 0);
    tcall_t m[3];
    for (int i = 0; i < 3; i++) {
        call_init(&m[i], "GET", NULL);
        start(u, &m[i]);
    }
    /* A call whose error waits to be reported can still be canceled. */
    ig_upstream_cancel(&m[1].call);
    tcall_t *left[2] = {&m[0], &m[2]};
    for (int i = 0; i < 2; i++) {
        run_until(call_done, left[i]);
        assert_int_not_equal(left[i]->err, 0);
    }
    run_for(20);
    assert_int_equal(m[0].dones, 1);
    assert_int_equal(m[1].dones, 0);
    assert_int_equal(m[2].dones, 1);
    ig_upstream_free(u);
}

/* A call whose request is written whole can outlive its request memory. */
static void test_orphan(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    f.hold = true;
    ig_upstream_t *u = pool_new(f.port, 2);
    tcall_t t;
    char *body = strdup("{\"instances\":[5]}");
    call_init(&t, "POST", body);
    start(u, &t);
    /* Still connecting: nothing written yet. */
    assert_int_equal(ig_upstream_orphan(&t.call), IG_EAGAIN);
    run_until(read_one, &f);
    assert_int_equal(ig_upstream_orphan(&t.call), 0);
    free(body);
    assert_null(t.call.method);
    f.hold = false;
    for (int i = 0; i < MAX_PEERS; i++)
        if (f.peers[i])
            fake_answer(f.peers[i], i);
    run_until(call_done, &t);
    assert_int_equal(t.err, 0);
    assert_int_equal(t.body_bytes, 2);
    assert_int_equal(ig_upstream_idle_connections(u), 1);
    ig_upstream_free(u);
    fake_stop(&f);
}

/* Paused, the pool stops reading: at most the read in progress is still
 * delivered, and the rest arrives after resume. */
static void test_pause_resume(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    f.big = 8u << 20;
    f.bigbuf = malloc(f.big);
    memset(f.bigbuf, 'x', f.big);
    ig_upstream_t *u = pool_new(f.port, 1);
    tcall_t t;
    call_init(&t, "GET", NULL);
    t.pause_on_body = true;
    start(u, &t);
    run_until(paused, &t);
    run_for(100);
    size_t later = t.body_bytes;
    assert_true(later - t.bytes_at_pause <= 64 * 1024);
    assert_true(later < f.big);
    assert_int_equal(t.dones, 0);
    ig_upstream_resume(&t.call);
    run_until(call_done, &t);
    assert_int_equal(t.err, 0);
    assert_int_equal(t.body_bytes, f.big);
    ig_upstream_free(u);
    fake_stop(&f);
    uv_run(&loop, UV_RUN_DEFAULT);
    free(f.bigbuf);
}

/* Freeing the pool ends every call not done, once each, with an error:
 * the one on a connection, the ones waiting for a connection, and the one
 * whose error was waiting to be reported. */
static void test_free_with_calls_waiting(void **state)
{
    (void)state;
    static fake_t f; /* its handles outlive the test body until teardown */
    fake_start(&f, &loop);
    f.hold = true;
    ig_upstream_t *u = pool_new(f.port, 1);
    tcall_t t[4];
    for (int i = 0; i < 4; i++) {
        call_init(&t[i], "POST", "{}");
        start(u, &t[i]);
    }
    run_until(read_one, &f);
    assert_int_equal(f.requests, 1);
    ig_upstream_free(u);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(t[i].dones, 1);
        assert_int_equal(t[i].err, IG_ECANCELED);
    }

    ig_upstream_opts_t o = {.url = "http://224.0.0.1:9", .max_connections = 1};
    char err[128];
    assert_int_equal(ig_upstream_new(&loop, &o, &u, err, sizeof(err)), 0);
    tcall_t m;
    call_init(&m, "GET", NULL);
    start(u, &m);
    ig_upstream_free(u);
    assert_int_equal(m.dones, 1);
    assert_int_not_equal(m.err, 0);
    run_for(20);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t[i].dones, 1);
    assert_int_equal(m.dones, 1);
    fake_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_idle_retried_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_reset_post_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_written_post_not_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_retry_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_connecting_then_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_connecting_handed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callbacks_never_synchronous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_calls_waiting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
