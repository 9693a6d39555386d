/*
 * test_server.c: unit tests of the HTTP server through server.h, over real
 * loopback sockets.
 *
 * The server listens on 127.0.0.1 port 0; clients are raw libuv TCP
 * connections on the same loop that write bytes and collect what comes
 * back, so the tests see the wire. Each test closes the server with
 * ig_server_close, waits for its callback and ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "infergate/base/error.h"
#include "infergate/net/server.h"

static uv_loop_t loop;
static uv_timer_t watchdog;
static bool timed_out;

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}

static void run_until(bool (*done)(void *), void *arg)
{
    timed_out = false;
    uv_timer_start(&watchdog, on_watchdog, 5000, 0);
    while (!done(arg) && !timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&watchdog);
    assert_false(timed_out);
}

/* ---- the handler ------------------------------------------------------- */

typedef struct {
    ig_server_t *srv;
    int requests;
    int max_active; /* most requests with the handler at once */
    bool async;     /* answer from a zero timer instead of on the stack */
    bool stream;    /* answer with a large streamed body */
    uv_timer_t answer_timer;
    ig_req_t *held;
    int closed_events;
    size_t last_open;
    bool in_server_call; /* a server function is on the stack */
    bool freed;
    /* streaming */
    int64_t backlog_peak;
    bool writable_seen;
    size_t streamed;
} app_t;

static app_t app;
static char chunk[64 * 1024];

static void answer(ig_req_t *req)
{
    char body[64];
    int n =
        snprintf(body, sizeof(body), "%.*s#%d", (int)req->path.len, req->path.base, app.requests);
    assert_int_equal(ig_req_respond(req, 200, NULL, 0, body, (size_t)n), 0);
}

static void on_answer_timer(uv_timer_t *t)
{
    (void)t;
    ig_req_t *req = app.held;
    app.held = NULL;
    answer(req);
}

#define STREAM_TARGET (32u << 20) /* more than loopback socket buffers hold */

static void stream_more(ig_req_t *req)
{
    while (app.streamed < STREAM_TARGET) {
        int64_t b = ig_req_write(req, chunk, sizeof(chunk));
        app.streamed += sizeof(chunk);
        if (b > app.backlog_peak)
            app.backlog_peak = b;
        if (b > IG_SERVER_HIGH_WATER)
            return; /* wait for on_writable */
    }
    ig_req_finish(req);
}

static void on_writable(ig_req_t *req)
{
    app.writable_seen = true;
    stream_more(req);
}

static void on_request(ig_req_t *req, void *ud)
{
    assert_ptr_equal(ud, &app);
    app.requests++;
    size_t active = ig_server_active_requests(app.srv);
    if ((int)active > app.max_active)
        app.max_active = (int)active;
    if (app.stream) {
        req->on_writable = on_writable;
        assert_int_equal(ig_req_start(req, 200, NULL, 0, IG_REQ_CHUNKED), 0);
        stream_more(req);
        return;
    }
    if (app.async) {
        app.held = req;
        uv_timer_start(&app.answer_timer, on_answer_timer, 1, 0);
        return;
    }
    answer(req);
}

static void on_conn_closed(ig_server_t *s, size_t open, void *ud)
{
    assert_ptr_equal(ud, &app);
    assert_ptr_equal(s, app.srv);
    assert_false(app.in_server_call);
    assert_int_equal(open, ig_server_connections(s));
    app.closed_events++;
    app.last_open = open;
}

static void on_server_freed(void *arg)
{
    ((app_t *)arg)->freed = true;
}

static bool server_freed(void *arg)
{
    return ((app_t *)arg)->freed;
}

static bool flag_true(void *arg)
{
    return *(bool *)arg;
}

static void start_server(void)
{
    memset(&app, 0, sizeof(app));
    uv_timer_init(&loop, &app.answer_timer);
    ig_server_opts_t o = {
        .limits = {.max_header_bytes = 8192,
                   .max_body_bytes = 1 << 20,
                   .header_timeout_ms = 5000,
                   .idle_timeout_ms = 5000,
                   .max_connections = 16},
        .on_request = on_request,
        .on_conn_closed = on_conn_closed,
        .ud = &app,
    };
    app.srv = ig_server_new(&loop, &o);
    assert_int_equal(ig_server_listen(app.srv, "127.0.0.1:0"), 0);
    assert_true(ig_server_port(app.srv) > 0);
}

static bool timer_closed;

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
    timer_closed = true;
}

/* Closes the handler's timer and waits, so that app can be reset. */
static void close_answer_timer(void)
{
    timer_closed = false;
    uv_close((uv_handle_t *)&app.answer_timer, on_timer_closed);
    run_until(flag_true, &timer_closed);
}

static void close_server(void)
{
    app.in_server_call = true;
    ig_server_close(app.srv, on_server_freed, &app);
    app.in_server_call = false;
    assert_false(app.freed); /* the callback runs from the loop */
    run_until(server_freed, &app);
    close_answer_timer();
}

/* ---- the client -------------------------------------------------------- */

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    bool connected, eof, closed;
    bool reading;
    char *rx;
    size_t len, cap;
} client_t;

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = h->data;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->rx = realloc(c->rx, c->cap);
    }
    buf->base = c->rx + c->len;
    buf->len = c->cap - c->len - 1;
}

static void on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    client_t *c = st->data;
    if (nread < 0) {
        c->eof = true;
        uv_read_stop(st);
        return;
    }
    c->len += (size_t)nread;
    c->rx[c->len] = '\0';
}

static void on_client_connect(uv_connect_t *r, int status)
{
    client_t *c = r->data;
    assert_int_equal(status, 0);
    c->connected = true;
    if (c->reading)
        uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read);
}

static bool client_connected(void *arg)
{
    return ((client_t *)arg)->connected;
}

static void client_open(client_t *c, bool reading)
{
    memset(c, 0, sizeof(*c));
    c->reading = reading;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", ig_server_port(app.srv), &a);
    assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&a, on_client_connect),
                     0);
    run_until(client_connected, c);
}

static void client_send(client_t *c, const char *s)
{
    uv_buf_t b = uv_buf_init((char *)s, (unsigned)strlen(s));
    assert_int_equal(uv_try_write((uv_stream_t *)&c->tcp, &b, 1), (int)strlen(s));
}

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    c->closed = true;
    free(c->rx);
    c->rx = NULL;
}

static void client_close(client_t *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static bool client_closed(void *arg)
{
    return ((client_t *)arg)->closed;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; hay && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

typedef struct {
    client_t *c;
    int responses;
} want_t;

static bool got_responses(void *arg)
{
    want_t *w = arg;
    return count(w->c->rx, "HTTP/1.1 200 OK\r\n") >= w->responses;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &watchdog);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        (*(int *)arg)++;
        uv_close(h, NULL);
    }
}

static int teardown(void **state)
{
    (void)state;
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int left = 0;
    uv_walk(&loop, close_walk, &left);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(left, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    start_server();
    static client_t c;
    client_open(&c, true);
    client_send(&c, "POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                    "X-Request-Id: abc\r\n\r\nhey");
    want_t w = {&c, 1};
    run_until(got_responses, &w);
    assert_non_null(strstr(c.rx, "Content-Length: 7\r\n"));
    assert_non_null(strstr(c.rx, "X-Request-Id: abc\r\n"));
    assert_non_null(strstr(c.rx, "\r\n\r\n/v1/x#1"));
    assert_int_equal(ig_server_connections(app.srv), 1);
    client_close(&c);
    run_until(client_closed, &c);
    close_server();
}

/* Three requests in one write, answered later: handed over one at a
 * time, answered in order on the one connection. */
static void test_pipelining(void **state)
{
    (void)state;
    start_server();
    app.async = true;
    static client_t c;
    client_open(&c, true);
    client_send(&c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                    "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    want_t w = {&c, 3};
    run_until(got_responses, &w);
    char *a = strstr(c.rx, "/a#1"), *b = strstr(c.rx, "/b#2"), *d = strstr(c.rx, "/c#3");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    assert_true(a < b && b < d);
    assert_int_equal(app.max_active, 1);
    client_close(&c);
    run_until(client_closed, &c);
    close_server();
}

static bool closed_events(void *arg)
{
    return app.closed_events >= *(int *)arg;
}

/* on_conn_closed reports each closed connection with the count still
 * open, from the loop: a client going away, and the idle connections that
 * ig_server_stop_accepting closes (not on its stack). Nothing is reported
 * once ig_server_close began. */
static void test_conn_closed_event(void **state)
{
    (void)state;
    start_server();
    static client_t c1, c2, c3;
    client_open(&c1, true);
    client_open(&c2, true);
    client_open(&c3, true);
    client_send(&c1, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n");
    client_send(&c2, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    want_t w1 = {&c1, 1}, w2 = {&c2, 1};
    run_until(got_responses, &w1);
    run_until(got_responses, &w2);
    assert_int_equal(ig_server_connections(app.srv), 3);
    assert_int_equal(app.closed_events, 0);

    client_close(&c1);
    int want = 1;
    run_until(closed_events, &want);
    assert_int_equal(app.last_open, 2);

    /* Both left are idle between requests (c2) or before their first
     * one (c3, given a grace period): stop_accepting closes c2 now, and
     * its event comes from the loop. */
    app.in_server_call = true;
    ig_server_stop_accepting(app.srv);
    app.in_server_call = false;
    assert_int_equal(app.closed_events, 1);
    want = 2;
    run_until(closed_events, &want);
    assert_int_equal(app.last_open, 1);
    client_close(&c3);
    want = 3;
    run_until(closed_events, &want);
    assert_int_equal(app.last_open, 0);
    assert_int_equal(ig_server_connections(app.srv), 0);
    client_close(&c2);
    run_until(client_closed, &c2);
    run_until(client_closed, &c3);
    run_until(client_closed, &c1);

    /* ig_server_close closes connections without the event. */
    ig_server_close(app.srv, on_server_freed, &app);
    run_until(server_freed, &app);
    close_answer_timer();
    assert_int_equal(app.closed_events, 3);

    start_server();
    static client_t c4;
    client_open(&c4, true);
    client_send(&c4, "GET /4 HTTP/1.1\r\nHost: h\r\n\r\n");
    want_t w4 = {&c4, 1};
    run_until(got_responses, &w4);
    close_server();
    assert_int_equal(app.closed_events, 0);
    client_close(&c4);
    run_until(client_closed, &c4);
}

static bool client_eof(void *arg)
{
    return ((client_t *)arg)->eof;
}

static bool backlog_high(void *arg)
{
    (void)arg;
    return app.backlog_peak > IG_SERVER_HIGH_WATER;
}

/* A streamed answer to a client that does not read: ig_req_write reports
 * the backlog past the high water, on_writable comes once the client
 * reads again, and every byte arrives. */
static void test_stream_backpressure(void **state)
{
    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    start_server();
    app.stream = true;
    static client_t c;
    client_open(&c, false);
    client_send(&c, "GET /big HTTP/1.0\r\n\r\n"); /* close-delimited */
    run_until(backlog_high, NULL);
    assert_true(app.backlog_peak > IG_SERVER_HIGH_WATER);
    assert_false(app.writable_seen);
    assert_true(app.streamed < STREAM_TARGET);
    uv_read_start((uv_stream_t *)&c.tcp, on_client_alloc, on_client_read);
    run_until(client_eof, &c);
    assert_true(app.writable_seen);
    assert_int_equal(count(c.rx, "HTTP/1.1 200 OK\r\n"), 1);
    char *body = strstr(c.rx, "\r\n\r\n");
    assert_non_null(body);
    assert_int_equal(c.len - (size_t)(body + 4 - c.rx), STREAM_TARGET);
    client_close(&c);
    run_until(client_closed, &c);
    close_server();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_closed_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_backpressure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
