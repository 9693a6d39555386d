/*
 * fuzz_request.c: libFuzzer target for the server's request path
 * (gateway/net/server.c and response.c with llhttp), the code every byte from a client meets.
 *
 * An input is the byte stream one client sends on one connection. The
 * harness serves one end of a socketpair with ig_server_adopt_fd, writes the
 * input to the other end in two or three pieces (split at offsets derived
 * from the input, running the loop in between so the parser sees requests
 * cut anywhere), half-closes, and collects whatever the server answers.
 * Limits are small (1 KiB of headers, 4 KiB of body) so that 431 and 413
 * are reachable; timeouts are off so that nothing depends on the clock.
 *
 * The handler answers every request, in a way chosen from the request
 * itself: a complete response, a streamed one (Content-Length, chunked or
 * close-delimited), a JSON error, or the same later from an idle callback
 * (which the client's EOF may abort, exercising on_abort).
 *
 * Invariants checked besides what ASan/UBSan/LSan see:
 *  - the answer parses as a sequence of HTTP responses, each of which
 *    starts with "HTTP/1.1 ", and none is cut short;
 *  - final responses <= requests the handler saw + 1 (the parser's error);
 *  - after the client's EOF the server closes the connection, with no
 *    request left active, and closing the server leaves the loop empty.
 */
#include <errno.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "fuzz_common.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "infergate/net/server.h"

/* Requests whose method we remember (HEAD responses carry no body). An
 * 8 KiB input holds at most ~450 requests of the shortest form. */
#define MAX_TRACKED 4096
/* Loop iterations that may pass without news before the harness moves on. */
#define QUIET_ROUNDS 3
#define MAX_ROUNDS 2000

typedef enum {
    ANSWER_RESPOND,
    ANSWER_NO_BODY,
    ANSWER_CHUNKED,
    ANSWER_LENGTH,
    ANSWER_CLOSE_DELIMITED,
    ANSWER_ERROR,
    ANSWER_LATER,
    ANSWER_KINDS
} answer_t;

typedef struct {
    ig_server_t *srv;
    bool server_freed;
    size_t seen;      /* requests handed to the handler */
    size_t completed; /* on_complete calls */
    size_t aborted;
    bool is_head[MAX_TRACKED];
    ig_req_t *pending; /* a request answered later by on_idle */
    answer_t pending_how;
    uint64_t pending_hash;
    /* everything the server wrote */
    char *out;
    size_t out_len, out_cap;
    bool out_eof;
} harness_t;

static uv_loop_t loop;
static uv_idle_t idle;
static harness_t H;
static bool verbose; /* IG_FUZZ_VERBOSE=1: print what the server answered */

/* ---- the handler ---------------------------------------------------------- */

static void answer(ig_req_t *req, answer_t how, uint64_t h)
{
    static const int statuses[] = {200, 201, 404, 500, 503};
    static const int empty_statuses[] = {204, 304, 200};
    /* Echo the path in a header when it is printable ASCII: the handler,
     * not the server, is responsible for what its header values contain. */
    size_t plen = req->path.len < 40 ? req->path.len : 40;
    for (size_t i = 0; i < plen; i++) {
        unsigned char ch = (unsigned char)req->path.base[i];
        if (ch <= 0x20 || ch >= 0x7f)
            plen = 0;
    }
    ig_header_t hdrs[2] = {
        {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("text/plain")},
        {IG_SLICE_LIT("X-Fuzz"), plen ? ig_slice(req->path.base, plen) : IG_SLICE_LIT("-")},
    };
    size_t nh = (h >> 8) % 3;
    /* What the answer says comes from the request, so that the bytes the
     * server writes depend on what it parsed. */
    char body[128];
    int n = snprintf(body, sizeof(body), "%.*s %zu %zu\n", (int)req->method_name.len,
                     req->method_name.base, req->body.len, req->nheaders);
    size_t blen = n > 0 ? (size_t)n : 0;
    size_t echo = req->body.len < 48 ? req->body.len : 48;
    if (blen + echo < sizeof(body)) {
        memcpy(body + blen, req->body.base, echo);
        blen += echo;
    }
    if (((h >> 12) & 7) == 0)
        ig_req_set_close(req);
    (void)ig_req_header(req, "content-type");

    switch (how) {
    case ANSWER_RESPOND:
        ig_req_respond(req, statuses[(h >> 16) % 5], hdrs, nh, body, blen);
        break;
    case ANSWER_NO_BODY:
        ig_req_respond(req, empty_statuses[(h >> 16) % 3], hdrs, nh, NULL, 0);
        break;
    case ANSWER_CHUNKED:
        ig_req_start(req, 200, hdrs, nh, IG_REQ_CHUNKED);
        ig_req_write(req, body, blen / 2);
        ig_req_write(req, body, 0);
        ig_req_write(req, body + blen / 2, blen - blen / 2);
        ig_req_finish(req);
        break;
    case ANSWER_LENGTH:
        ig_req_start(req, 201, hdrs, nh, (int64_t)blen);
        ig_req_write(req, body, blen / 3);
        ig_req_write(req, body + blen / 3, blen - blen / 3);
        ig_req_finish(req);
        break;
    case ANSWER_CLOSE_DELIMITED:
        ig_req_start(req, 200, hdrs, nh, IG_REQ_CLOSE_DELIMITED);
        ig_req_write(req, body, blen);
        ig_req_finish(req);
        break;
    case ANSWER_ERROR:
        if ((h >> 16) & 1)
            ig_req_error(req, 400 + (int)((h >> 17) % 100),
                         "a message with \"quotes\", \\ and \x01 control bytes", hdrs, nh);
        else
            ig_req_reject(req, (ig_reason_t)((h >> 17) % IG_REASON__COUNT),
                          "a message with \"quotes\", \\ and \x01 control bytes", hdrs, nh);
        break;
    default:
        ig_req_respond(req, 200, NULL, 0, "?", 1);
        break;
    }
}

static void on_abort(ig_req_t *req)
{
    FUZZ_CHECK(req == H.pending, "on_abort for a request that is not pending");
    H.pending = NULL;
    H.aborted++;
    uv_idle_stop(&idle);
}

static void on_idle(uv_idle_t *handle)
{
    (void)handle;
    uv_idle_stop(&idle);
    ig_req_t *req = H.pending;
    if (!req)
        return;
    H.pending = NULL;
    req->on_abort = NULL;
    answer(req, H.pending_how, H.pending_hash);
}

static void on_request(ig_req_t *req, void *ud)
{
    harness_t *h = ud;
    FUZZ_CHECK(h->pending == NULL, "a second request handed over while one is pending");
    FUZZ_CHECK(req->path.len <= req->target.len, "path longer than target");
    FUZZ_CHECK(req->body.len <= 4096, "body of %zu bytes beyond max_body_bytes", req->body.len);
    FUZZ_CHECK(req->nheaders <= IG_SERVER_MAX_HEADERS, "%zu headers", req->nheaders);
    if (h->seen < MAX_TRACKED)
        h->is_head[h->seen] = req->method == HTTP_HEAD;
    h->seen++;

    uint64_t hash =
        fuzz_hash(req->target.base, req->target.len) ^ (h->seen * 0x9e3779b97f4a7c15ull);
    answer_t how = (answer_t)(hash % ANSWER_KINDS);
    if (how == ANSWER_LATER) {
        h->pending = req;
        h->pending_how = (answer_t)((hash >> 24) % ANSWER_LATER);
        h->pending_hash = hash;
        req->on_abort = on_abort;
        uv_idle_start(&idle, on_idle);
        return;
    }
    answer(req, how, hash);
}

static void on_complete(ig_req_t *req, int status, uint64_t bytes_out, void *ud)
{
    (void)req;
    (void)bytes_out;
    harness_t *h = ud;
    h->completed++;
    FUZZ_CHECK(status == 0 || (status >= 100 && status <= 599), "completed with status %d", status);
}

static void on_server_closed(void *arg)
{
    harness_t *h = arg;
    h->server_freed = true;
}

/* ---- the client side -------------------------------------------------------- */

/* Reads what the server wrote so far. Returns true if anything arrived. */
static bool drain(int fd)
{
    bool got = false;
    for (;;) {
        if (H.out_cap - H.out_len < 16384) {
            H.out_cap = H.out_cap ? H.out_cap * 2 : 65536;
            H.out = realloc(H.out, H.out_cap);
            FUZZ_CHECK(H.out != NULL, "out of memory");
        }
        ssize_t n = recv(fd, H.out + H.out_len, H.out_cap - H.out_len, MSG_DONTWAIT);
        if (n > 0) {
            H.out_len += (size_t)n;
            got = true;
            continue;
        }
        if (n == 0) {
            if (!H.out_eof)
                got = true;
            H.out_eof = true;
        }
        return got;
    }
}

/* Runs the loop until a few rounds pass without the server writing or the
 * handler's idle callback pending, or the connection is gone. */
static void pump(int fd)
{
    int quiet = 0;
    for (int i = 0; i < MAX_ROUNDS && quiet < QUIET_ROUNDS; i++) {
        int alive = uv_run(&loop, UV_RUN_NOWAIT);
        bool got = drain(fd);
        if (got || H.pending)
            quiet = 0;
        else
            quiet++;
        if (!alive && ig_server_connections(H.srv) == 0)
            break;
    }
}

/* Writes bytes, pumping the loop when the socket is full. Returns false
 * once the server closed its end. */
static bool send_all(int fd, const uint8_t *p, size_t len)
{
    for (int tries = 0; len > 0 && tries < MAX_ROUNDS; tries++) {
        ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            pump(fd);
            continue;
        }
        return false; /* EPIPE / ECONNRESET: the server closed */
    }
    return true;
}

/* ---- checking the answer ---------------------------------------------------- */

typedef struct {
    size_t heads;     /* final (>= 200) response heads */
    size_t completes; /* final responses complete */
    bool final_msg;   /* the message being parsed is a final response */
    size_t off;       /* offset of the byte being parsed */
} resp_count_t;

/* The stream is parsed one byte at a time, so that a message's first byte
 * is known here and its status line can be checked as sent. */
static int on_resp_begin(llhttp_t *p)
{
    resp_count_t *rc = p->data;
    size_t left = H.out_len - rc->off;
    size_t cmp = left < 9 ? left : 9;
    FUZZ_CHECK(memcmp(H.out + rc->off, "HTTP/1.1 ", cmp) == 0,
               "a response at offset %zu starts with '%.*s'", rc->off, (int)cmp, H.out + rc->off);
    return 0;
}

static int on_resp_headers(llhttp_t *p)
{
    resp_count_t *rc = p->data;
    int status = llhttp_get_status_code(p);
    FUZZ_CHECK(llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 1,
               "response %zu is HTTP/%d.%d", rc->heads, llhttp_get_http_major(p),
               llhttp_get_http_minor(p));
    FUZZ_CHECK(status != 101, "the server switched protocols");
    rc->final_msg = status >= 200;
    if (!rc->final_msg)
        return 0; /* 100 Continue */
    size_t i = rc->heads++;
    FUZZ_CHECK(rc->heads <= H.seen + 1,
               "%zu responses but the handler saw only %zu requests (+1 parser error)", rc->heads,
               H.seen);
    bool head = i < H.seen && i < MAX_TRACKED && H.is_head[i];
    return head ? 1 : 0; /* 1: this response has no body */
}

static int on_resp_complete(llhttp_t *p)
{
    resp_count_t *rc = p->data;
    if (rc->final_msg)
        rc->completes++;
    return 0;
}

static void check_answer(void)
{
    llhttp_settings_t s;
    llhttp_t p;
    resp_count_t rc = {0};
    llhttp_settings_init(&s);
    s.on_message_begin = on_resp_begin;
    s.on_headers_complete = on_resp_headers;
    s.on_message_complete = on_resp_complete;
    llhttp_init(&p, HTTP_RESPONSE, &s);
    p.data = &rc;

    for (rc.off = 0; rc.off < H.out_len; rc.off++) {
        llhttp_errno_t e = llhttp_execute(&p, H.out + rc.off, 1);
        FUZZ_CHECK(e == HPE_OK, "unparsable response byte at offset %zu: %s (%s)", rc.off,
                   llhttp_errno_name(e), llhttp_get_error_reason(&p));
    }
    llhttp_errno_t e = llhttp_finish(&p);
    FUZZ_CHECK(e == HPE_OK, "the last response was cut short: %s (%s)", llhttp_errno_name(e),
               llhttp_get_error_reason(&p));
    FUZZ_CHECK(rc.completes == rc.heads, "%zu response heads but %zu complete responses", rc.heads,
               rc.completes);
}

/* ---- the target ------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ig_log_threshold = IG_LOG_OFF;
    verbose = getenv("IG_FUZZ_VERBOSE") != NULL;
    FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
    uv_idle_init(&loop, &idle);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *keep_out = H.out;
    size_t keep_cap = H.out_cap;
    memset(&H, 0, sizeof(H));
    H.out = keep_out;
    H.out_cap = keep_cap;

    ig_server_opts_t opts = {
        .limits = {.max_header_bytes = 1024, .max_body_bytes = 4096},
        .on_request = on_request,
        .on_complete = on_complete,
        .ud = &H,
        .server_name = "fuzz",
    };
    H.srv = ig_server_new(&loop, &opts);

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
               strerror(errno));
    FUZZ_CHECK(ig_server_adopt_fd(H.srv, sv[0]) == 0, "ig_server_adopt_fd failed");

    /* Two or three pieces, at offsets derived from the input. */
    uint64_t hash = fuzz_hash(data, size);
    size_t cut1 = size ? (size_t)(hash % (size + 1)) : 0;
    size_t cut2 = size ? (size_t)((hash >> 32) % (size + 1)) : 0;
    if (cut2 < cut1) {
        size_t t = cut1;
        cut1 = cut2;
        cut2 = t;
    }
    if ((hash >> 62) == 0)
        cut2 = cut1; /* only two pieces */
    size_t cuts[4] = {0, cut1, cut2, size};
    for (int i = 0; i < 3; i++) {
        if (cuts[i + 1] > cuts[i] && !send_all(sv[1], data + cuts[i], cuts[i + 1] - cuts[i]))
            break;
        pump(sv[1]);
    }
    shutdown(sv[1], SHUT_WR);
    for (int i = 0; i < MAX_ROUNDS && ig_server_connections(H.srv) > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    FUZZ_CHECK(ig_server_connections(H.srv) == 0,
               "the server kept the connection open after the client's EOF");
    FUZZ_CHECK(ig_server_active_requests(H.srv) == 0,
               "%zu requests still active after the connection closed",
               ig_server_active_requests(H.srv));
    FUZZ_CHECK(H.pending == NULL, "a pending request was neither answered nor aborted");
    drain(sv[1]);
    close(sv[1]);

    ig_server_close(H.srv, on_server_closed, &H);
    for (int i = 0; i < MAX_ROUNDS && !H.server_freed; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    FUZZ_CHECK(H.server_freed, "ig_server_close never finished");
    FUZZ_CHECK(!uv_loop_alive(&loop), "a handle or request outlived the server");

    FUZZ_CHECK(H.completed <= H.seen + 1, "%zu completions for %zu requests", H.completed, H.seen);
    if (verbose)
        fprintf(stderr,
                "fuzz_request: %zu requests seen, %zu completed, %zu aborted; answer:\n%.*s\n",
                H.seen, H.completed, H.aborted, (int)H.out_len, H.out);
    check_answer();
    return 0;
}
