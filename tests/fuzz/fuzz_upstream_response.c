/*
 * fuzz_upstream_response.c: libFuzzer target for the upstream client
 * (gateway/net/upstream.c with llhttp): what the gateway does with whatever the
 * model server sends back.
 *
 * An input is the model's answer, byte for byte. Each iteration starts a
 * listener on 127.0.0.1 (port chosen by the kernel) and a pool pointed at
 * it. Every connection the listener accepts is answered, once the request
 * has arrived, with the input (in up to three pieces on successive loop
 * iterations, so the response parser sees it cut up), then a FIN; the
 * harness keeps reading until the pool closes its end, so no RST is sent.
 * Two calls run one after the other: the second may find the first one's
 * connection kept alive (and then closed by the peer), which exercises the
 * retry on a fresh connection. Some calls pause the body on its first
 * chunk and resume it on the next loop iteration.
 *
 * Invariants checked besides the sanitizers:
 *  - each call ends with exactly one on_done, with 0, IG_ECONNRESET or
 *    IG_EPROTO: the peer always answers and always closes, so a timeout or
 *    a refused connection would be a bug;
 *  - on_head runs at most once, before any body; body bytes never exceed
 *    the bytes sent; a call that succeeded with a Content-Length delivered
 *    exactly that many bytes;
 *  - freeing the pool leaves nothing active on the loop.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fuzz_common.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "infergate/net/upstream.h"

#define NCALLS 2

typedef struct {
    ig_ucall_t call;
    int done; /* on_done count */
    int err;
    int heads; /* on_head count */
    int status;
    int64_t content_length;
    size_t body_bytes;
    bool pause_once;
} call_t;

typedef struct peer {
    uv_tcp_t tcp;
    struct peer *next;
    bool answered; /* started writing the input */
    int piece;     /* next piece to write, 0..3 */
    bool shut;     /* FIN sent */
} peer_t;

static uv_loop_t loop;
static uv_tcp_t listener;
static uv_idle_t ticker; /* writes the next piece; resumes a paused call */
static bool verbose;     /* IG_FUZZ_VERBOSE=1: say what each call got */

static struct {
    const uint8_t *data;
    size_t size;
    size_t cuts[4];
    peer_t *peers;
    int open_peers;
    int accepted;
    ig_upstream_t *pool;
    call_t calls[NCALLS];
    int current;
    call_t *paused;
    bool listener_closed;
} S;

static void start_call(int i);
static void on_tick(uv_idle_t *h);

/* ---- the model's side ------------------------------------------------------- */

static void on_peer_closed(uv_handle_t *h)
{
    peer_t *p = h->data;
    for (peer_t **pp = &S.peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
    S.open_peers--;
}

static void close_peer(peer_t *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static void on_peer_write(uv_write_t *w, int status)
{
    (void)status; /* the pool may have closed already */
    free(w);
}

static void on_peer_shutdown(uv_shutdown_t *r, int status)
{
    (void)status;
    free(r);
}

/* Writes the next piece of the answer, or the FIN after the last. */
static void peer_step(peer_t *p)
{
    if (uv_is_closing((uv_handle_t *)&p->tcp) || p->shut)
        return;
    if (p->piece < 3) {
        size_t from = S.cuts[p->piece], to = S.cuts[p->piece + 1];
        p->piece++;
        if (to > from) {
            uv_write_t *w = malloc(sizeof *w);
            FUZZ_CHECK(w != NULL, "out of memory");
            uv_buf_t b = uv_buf_init((char *)S.data + from, (unsigned)(to - from));
            if (uv_write(w, (uv_stream_t *)&p->tcp, &b, 1, on_peer_write) != 0)
                free(w);
        }
        return;
    }
    p->shut = true;
    uv_shutdown_t *r = malloc(sizeof *r);
    FUZZ_CHECK(r != NULL, "out of memory");
    if (uv_shutdown(r, (uv_stream_t *)&p->tcp, on_peer_shutdown) != 0) {
        free(r);
        close_peer(p);
    }
}

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char sink[65536];
    buf->base = sink;
    buf->len = sizeof sink;
}

static void peer_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    peer_t *p = st->data;
    if (nread < 0) {
        close_peer(p);
        return;
    }
    if (nread > 0 && !p->answered) {
        p->answered = true;
        uv_idle_start(&ticker, on_tick);
    }
}

static void on_accept(uv_stream_t *ls, int status)
{
    if (status < 0)
        return;
    peer_t *p = calloc(1, sizeof *p);
    FUZZ_CHECK(p != NULL, "out of memory");
    uv_tcp_init(&loop, &p->tcp);
    p->tcp.data = p;
    p->next = S.peers;
    S.peers = p;
    S.open_peers++;
    if (uv_accept(ls, (uv_stream_t *)&p->tcp) != 0) {
        close_peer(p);
        return;
    }
    S.accepted++;
    uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

static void on_tick(uv_idle_t *h)
{
    bool busy = false;
    for (peer_t *p = S.peers; p; p = p->next) {
        if (p->answered && !p->shut) {
            peer_step(p);
            busy = true;
        }
    }
    if (S.paused) {
        call_t *c = S.paused;
        S.paused = NULL;
        ig_upstream_resume(&c->call);
    }
    if (!busy)
        uv_idle_stop(h);
}

/* ---- the gateway's side ------------------------------------------------------ */

static call_t *call_of(ig_ucall_t *uc)
{
    return (call_t *)uc;
}

static int on_head(ig_ucall_t *uc, int status, const ig_header_t *hdrs, size_t n,
                   int64_t content_length)
{
    call_t *c = call_of(uc);
    FUZZ_CHECK(c->done == 0, "on_head after on_done");
    FUZZ_CHECK(c->heads == 0, "on_head ran twice");
    FUZZ_CHECK(c->body_bytes == 0, "body bytes before the head");
    FUZZ_CHECK(status >= 200 && status <= 999, "on_head with status %d", status);
    FUZZ_CHECK(n <= 100, "%zu headers", n);
    for (size_t i = 0; i < n; i++) {
        const ig_header_t *hd = &hdrs[i];
        FUZZ_CHECK(hd->name.len <= S.size && hd->value.len <= S.size,
                   "header %zu longer than the response", i);
        /* Touch every byte so that ASan sees a slice pointing anywhere wrong. */
        volatile unsigned sum = 0;
        for (size_t k = 0; k < hd->name.len; k++)
            sum += (unsigned char)hd->name.base[k];
        for (size_t k = 0; k < hd->value.len; k++)
            sum += (unsigned char)hd->value.base[k];
        (void)sum;
    }
    FUZZ_CHECK(content_length >= -1, "content_length %lld", (long long)content_length);
    if (verbose)
        fprintf(stderr, "fuzz_upstream_response: call %d (%s): head %d, length %lld\n",
                (int)(c - S.calls), c->call.method, status, (long long)content_length);
    c->heads++;
    c->status = status;
    c->content_length = content_length;
    return 0;
}

static void on_body(ig_ucall_t *uc, const char *data, size_t len)
{
    call_t *c = call_of(uc);
    FUZZ_CHECK(c->done == 0, "on_body after on_done");
    FUZZ_CHECK(c->heads == 1, "on_body before on_head");
    FUZZ_CHECK(len > 0 && len <= S.size, "a body chunk of %zu bytes", len);
    FUZZ_CHECK(data != NULL, "NULL body chunk");
    volatile unsigned sum = 0;
    for (size_t k = 0; k < len; k++)
        sum += (unsigned char)data[k];
    (void)sum;
    c->body_bytes += len;
    FUZZ_CHECK(c->body_bytes <= S.size, "%zu body bytes delivered, %zu sent", c->body_bytes,
               S.size);
    if (c->pause_once) {
        c->pause_once = false;
        ig_upstream_pause(uc);
        S.paused = c;
        uv_idle_start(&ticker, on_tick);
    }
}

static void on_done(ig_ucall_t *uc, int err)
{
    call_t *c = call_of(uc);
    FUZZ_CHECK(c->done == 0, "on_done ran twice (err %s, then %s)", ig_err_name(c->err),
               ig_err_name(err));
    c->done++;
    c->err = err;
    if (verbose)
        fprintf(stderr, "fuzz_upstream_response: call %d (%s): done %s, %zu body bytes\n",
                (int)(c - S.calls), c->call.method, err ? ig_err_name(err) : "ok", c->body_bytes);
    if (S.paused == c)
        S.paused = NULL;
    FUZZ_CHECK(err == 0 || err == IG_ECONNRESET || err == IG_EPROTO,
               "call ended with %d (%s); the peer answered and closed", err, ig_err_name(err));
    if (err == 0) {
        FUZZ_CHECK(c->heads == 1, "success without a response head");
        /* A HEAD answer carries the Content-Length of the body it
         * describes, and no body. */
        bool head = strcmp(c->call.method, "HEAD") == 0;
        FUZZ_CHECK(!head || c->body_bytes == 0, "HEAD call %d delivered %zu body bytes",
                   (int)(c - S.calls), c->body_bytes);
        FUZZ_CHECK(head || c->content_length < 0 || (uint64_t)c->content_length == c->body_bytes,
                   "%s call %d: Content-Length %lld but %zu body bytes delivered", c->call.method,
                   (int)(c - S.calls), (long long)c->content_length, c->body_bytes);
    }
    int next = (int)(c - S.calls) + 1;
    if (next < NCALLS) {
        start_call(next);
    } else {
        ig_upstream_free(S.pool);
        S.pool = NULL;
        uv_close((uv_handle_t *)&listener, NULL);
    }
}

static void start_call(int i)
{
    static const char *const methods[] = {"GET", "POST", "HEAD", "PUT"};
    static const ig_header_t hdrs[] = {
        {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")},
        {IG_SLICE_LIT("X-Request-Id"), IG_SLICE_LIT("fuzz")},
    };
    uint64_t h = fuzz_hash(S.data, S.size) >> (8 * i);
    call_t *c = &S.calls[i];
    memset(c, 0, sizeof *c);
    c->content_length = -1;
    c->pause_once = (h >> 4) & 1;
    c->call.method = methods[h % 4];
    c->call.target = IG_SLICE_LIT("/v2/models/m/infer");
    c->call.headers = hdrs;
    c->call.nheaders = 2;
    if (strcmp(c->call.method, "POST") == 0 || strcmp(c->call.method, "PUT") == 0)
        c->call.body = IG_SLICE_LIT("{\"inputs\":[]}");
    c->call.on_head = on_head;
    c->call.on_body = on_body;
    c->call.on_done = on_done;
    S.current = i;
    FUZZ_CHECK(ig_upstream_call(S.pool, &c->call) == 0, "ig_upstream_call refused a call");
    FUZZ_CHECK(c->done == 0, "on_done ran before ig_upstream_call returned");
}

/* ---- the target ------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ig_log_threshold = IG_LOG_OFF;
    verbose = getenv("IG_FUZZ_VERBOSE") != NULL;
    FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
    uv_idle_init(&loop, &ticker);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&S, 0, sizeof S);
    S.data = data;
    S.size = size;
    uint64_t hash = fuzz_hash(data, size);
    size_t a = size ? (size_t)(hash % (size + 1)) : 0;
    size_t b = size ? (size_t)((hash >> 32) % (size + 1)) : 0;
    S.cuts[0] = 0;
    S.cuts[1] = a < b ? a : b;
    S.cuts[2] = a < b ? b : a;
    S.cuts[3] = size;

    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&loop, &listener);
    FUZZ_CHECK(uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0) == 0, "bind");
    FUZZ_CHECK(uv_listen((uv_stream_t *)&listener, 16, on_accept) == 0, "listen");
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&bound)->sin_port));

    ig_upstream_opts_t opts = {
        .url = url,
        .max_connections = 2,
        /* Far beyond anything loopback needs: reaching one is a hang, and the
         * on_done check reports it. */
        .connect_timeout_ms = 30000,
        .timeout_ms = 30000,
        .max_header_bytes = 1024,
    };
    char err[256];
    FUZZ_CHECK(ig_upstream_new(&loop, &opts, &S.pool, err, sizeof err) == 0, "%s", err);
    start_call(0);

    /* Runs until the last call is done, the pool freed and every handle
     * closed: nothing else keeps this loop alive. */
    uv_run(&loop, UV_RUN_DEFAULT);

    for (int i = 0; i < NCALLS; i++)
        FUZZ_CHECK(S.calls[i].done == 1, "call %d ended %d times", i, S.calls[i].done);
    FUZZ_CHECK(S.open_peers == 0, "%d peer connections still open", S.open_peers);
    FUZZ_CHECK(!uv_loop_alive(&loop), "a handle or request outlived the pool");
    return 0;
}
