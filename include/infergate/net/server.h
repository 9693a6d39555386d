/*
 * server.h: an HTTP/1.1 server on libuv + llhttp, shared by every binary.
 *
 * The server owns listeners and client connections. It parses requests with
 * llhttp, enforces the limits below (431 for headers, 413 for bodies, 400 for
 * malformed or smuggling-shaped messages, 408 when headers are too slow),
 * buffers each request body whole (de-chunked), and hands a complete request
 * to the handler. Pipelined requests are handed over one at a time, in order:
 * the next one is parsed only when the previous response has finished, so
 * responses always leave in request order.
 *
 * It knows nothing about routes, queues or models: that is the application's
 * business (gateway.c for infergate, bench/model for infergate-model).
 */
#ifndef INFERGATE_SERVER_H
#define INFERGATE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/base/slice.h"
#include "infergate/net/http.h"
#include "infergate/net/reason.h"

typedef struct ig_server ig_server_t;
typedef struct ig_req ig_req_t;
typedef struct ig_conn ig_conn_t;

/* The most headers a request may carry; more gives 431. */
#define IG_SERVER_MAX_HEADERS 100

typedef struct {
    size_t max_header_bytes;    /* request line + headers; 431 beyond */
    size_t max_body_bytes;      /* 413 beyond */
    uint64_t header_timeout_ms; /* from a request's first byte to its last header: 408 */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request in progress */
    size_t max_connections;     /* connections beyond this are accepted and closed at once */
} ig_server_limits_t;

/* Called once per complete request. The handler answers it, now or later,
 * with exactly one of ig_req_respond / ig_req_reject / ig_req_error /
 * ig_req_start+finish. */
typedef void (*ig_request_cb)(ig_req_t *req, void *ud);

/* Called by ig_req_reject (and for the errors the server answers itself:
 * malformed requests, limits, timeouts) before the error is written, so
 * that every rejection is counted in one place. */
typedef void (*ig_reject_cb)(ig_req_t *req, ig_reason_t reason, void *ud);

/* Called after a response has been fully handed to the socket (or the
 * connection died while writing it), for access logs and metrics. `status` is
 * the response status, 0 if no response could be sent. */
typedef void (*ig_complete_cb)(ig_req_t *req, int status, uint64_t bytes_out, void *ud);

/* Called from the loop (a handle's close callback, never on the stack of a
 * server function) each time a client connection has closed and its
 * memory is released, with `open`, the connections still open (what
 * ig_server_connections() returns then). Connections closed right after
 * accept (over max_connections, or after stop_accepting) count too. Not
 * called once ig_server_close has begun. This is the event a drain waits
 * for: after ig_server_stop_accepting, `open == 0` means every client
 * connection is gone, with no need to poll ig_server_connections(). */
typedef void (*ig_conn_closed_cb)(ig_server_t *s, size_t open, void *ud);

typedef struct {
    ig_server_limits_t limits;
    ig_request_cb on_request;
    ig_complete_cb on_complete;       /* may be NULL */
    ig_reject_cb on_reject;           /* may be NULL */
    ig_conn_closed_cb on_conn_closed; /* may be NULL */
    void *ud;
    const char *server_name; /* value of the Server header, NULL for none */
} ig_server_opts_t;

struct ig_req {
    void *data; /* the handler's own pointer */

    /* Set by the handler when it keeps the request past on_request. Called
     * at most once, if the client goes away or the server is closed before
     * the response finished. The handler must drop every reference to req
     * before returning: the server frees it right after. */
    void (*on_abort)(ig_req_t *req);

    /* Set by a streaming handler: called when the write backlog fell below
     * IG_SERVER_LOW_WATER after ig_req_write reported it above the high water. */
    void (*on_writable)(ig_req_t *req);

    int method;             /* llhttp_method_t */
    ig_slice_t method_name; /* "GET" */
    ig_slice_t target;      /* raw request target: path and query */
    ig_slice_t path;        /* target up to '?' */
    ig_slice_t query;       /* after '?', without it; empty if none */
    uint8_t http_major, http_minor;
    const ig_header_t *headers;
    size_t nheaders;
    ig_slice_t body;     /* the whole body, de-chunked */
    bool keep_alive;     /* the client allows reuse of the connection */
    uint64_t start_ns;   /* uv_hrtime() at the request's first byte */
    const char *peer_ip; /* "127.0.0.1" or "::1" */
    bool peer_is_loopback;
    ig_slice_t request_id; /* X-Request-Id from the client, or a new one */
    ig_server_t *server;
    uint64_t tag; /* the handler's small value, 0 at first, kept until on_complete */
};

#define IG_SERVER_HIGH_WATER (256 * 1024)
#define IG_SERVER_LOW_WATER (64 * 1024)

/* Creates a server on `loop`. `opts` is copied. Never NULL. */
ig_server_t *ig_server_new(uv_loop_t *loop, const ig_server_opts_t *opts);

/* Starts listening on "host:port" ("0.0.0.0:8080", "[::1]:0", "localhost:80").
 * Port 0 picks a free one (see ig_server_port). May be called for several
 * addresses. Returns 0, IG_EADDR (unparsable), or an IG_E* from bind/listen. */
int ig_server_listen(ig_server_t *s, const char *addr);

/* Serves an already connected stream socket `fd` (e.g. one end of a
 * socketpair in a fuzzer, or an inherited socket) as a client connection.
 * The server owns the fd from then on, even on failure. 0 or an IG_E*. */
int ig_server_adopt_fd(ig_server_t *s, int fd);

/* The port of the first listener, or 0. */
int ig_server_port(const ig_server_t *s);

/* Marks every later response `Connection: close`, so that clients move to
 * other endpoints while the server still accepts (drain grace period). */
void ig_server_close_soon(ig_server_t *s);

/* How long a connection accepted but not yet sent a byte may still deliver
 * its first request after ig_server_stop_accepting. */
#define IG_SERVER_FIRST_REQUEST_GRACE_MS 1000

/* Stops accepting: closes the listeners, closes connections idle between
 * requests, gives connections that have not sent their first request
 * IG_SERVER_FIRST_REQUEST_GRACE_MS more, and marks every later response
 * `Connection: close`. In-progress requests continue. Idempotent.
 * ig_server_connections() reaching 0 afterwards means fully drained; the
 * on_conn_closed option reports that moment without polling. */
void ig_server_stop_accepting(ig_server_t *s);

/* Closes every connection (aborting in-progress requests via on_abort) and
 * frees the server once every handle is closed; `cb` (may be NULL) runs then. */
void ig_server_close(ig_server_t *s, void (*cb)(void *arg), void *arg);

/* Requests handed to the handler and not yet finished. */
size_t ig_server_active_requests(const ig_server_t *s);
size_t ig_server_connections(const ig_server_t *s);

/* Case-insensitive header lookup; returns an empty slice with base NULL if absent. */
ig_slice_t ig_req_header(const ig_req_t *req, const char *name);

/* Sends a complete response. Adds Content-Length, Connection, X-Request-Id
 * and Server; `hdrs` must not contain those. Copies everything it is given.
 * Returns 0 or IG_EINVAL if a response was already started. */
int ig_req_respond(ig_req_t *req, int status, const ig_header_t *hdrs, size_t nhdrs,
                   const char *body, size_t len);

/* Answers with the rejection `reason` (net/reason.h): its status, the JSON
 * error {"error": msg, "reason": "<reason>"}, Connection: close when the
 * reason says so, plus `hdrs` (e.g. Retry-After). Reports the reason to the
 * server's on_reject first. The one way the gateway answers an error. */
int ig_req_reject(ig_req_t *req, ig_reason_t reason, const char *msg, const ig_header_t *hdrs,
                  size_t nhdrs);

/* Sends the JSON error {"error": msg} (the status text when msg is NULL)
 * with any status and no reason, for servers that are not the gateway (the
 * example model). Not counted. */
int ig_req_error(ig_req_t *req, int status, const char *msg, const ig_header_t *hdrs, size_t nhdrs);

/* Starts a streamed response. content_length >= 0 is sent as Content-Length;
 * IG_REQ_CHUNKED uses chunked encoding (close-delimited for HTTP/1.0
 * clients); IG_REQ_CLOSE_DELIMITED sends no framing and closes the
 * connection after the body. */
#define IG_REQ_CHUNKED (-1)
#define IG_REQ_CLOSE_DELIMITED (-2)
int ig_req_start(ig_req_t *req, int status, const ig_header_t *hdrs, size_t nhdrs,
                 int64_t content_length);

/* Takes back a response started with ig_req_start while none of its bytes
 * has left the connection yet (they are still corked, which holds until the
 * end of the loop turn that started it): the request can then be answered
 * anew, e.g. with a 502 when the model's answer turned out malformed right
 * after its head. Returns 0, or IG_EAGAIN when bytes were already sent. */
int ig_req_unstart(ig_req_t *req);

/* Writes body bytes of a started response (copied). Returns the write
 * backlog in bytes (>= 0): above IG_SERVER_HIGH_WATER the caller should stop
 * producing until on_writable. */
int64_t ig_req_write(ig_req_t *req, const char *data, size_t len);

/* Ends a started response. The req must not be touched afterwards. */
void ig_req_finish(ig_req_t *req);

/* Aborts a started response whose body cannot be completed (e.g. upstream
 * died mid-body): the connection is closed so the client sees truncation.
 * The req must not be touched afterwards. on_abort is not called. */
void ig_req_abort(ig_req_t *req);

/* Forces `Connection: close` on this request's response. */
void ig_req_set_close(ig_req_t *req);

#endif
