/*
 * server_int.h: what the two files of the HTTP server share, and no other
 * module may use.
 *
 * The server is include/infergate/net/server.h, implemented in server.c
 * (listeners, connection lifecycle, reading, llhttp parsing, limits and
 * timers) and response.c (response heads and bodies, the write queue). This
 * header is the seam between them: the connection and request structs, and
 * the few functions each file calls in the other. It is not a contract for
 * anyone else, so it lives beside them and not in include/. The types keep
 * the short names they had when they were local to server.c; only the two
 * server files include this header.
 */
#ifndef INFERGATE_GATEWAY_SERVER_INT_H
#define INFERGATE_GATEWAY_SERVER_INT_H

#include <arpa/inet.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/base/buf.h"
#include "infergate/base/list.h"
#include "infergate/net/server.h"

typedef enum {
    C_IDLE,     /* waiting for the first byte of a request */
    C_HEAD,     /* reading request line and headers */
    C_BODY,     /* reading the body */
    C_HANDLER,  /* request handed over, no response yet */
    C_RESPONSE, /* response started (streaming) */
} conn_state_t;

typedef struct {
    size_t off, len;
} span_t;

/* Where one header's name and value lie in the request's head buffer. */
typedef struct {
    span_t name, value;
} hspan_t;

typedef struct {
    ig_req_t pub;
    ig_conn_t *conn;
    ig_buf_t head; /* url and header bytes, capped at max_header_bytes */
    span_t url;
    /* Grown on demand up to IG_SERVER_MAX_HEADERS and kept across the
     * connection's requests: an idle connection does not carry room for a
     * hundred headers it never saw. */
    hspan_t *spans;
    ig_header_t *headers;
    size_t hcap;
    size_t nheaders;
    bool in_value;
    size_t trailer_len; /* bytes of trailer fields after a chunked body */
    ig_buf_t body;
    bool started;       /* response head sent */
    bool chunked;       /* response uses chunked encoding */
    bool no_body;       /* HEAD request or 1xx/204/304 response */
    bool close_after;   /* close the connection once the response is out */
    bool want_writable; /* the handler waits for on_writable */
    int status;
    uint64_t bytes_out;
    /* Where a streamed response began in the connection's cork, and the
     * cork's flush count then: while they match, nothing of it has left
     * and ig_req_unstart can take it back. */
    size_t cork_at;
    uint64_t flushes_at;
    bool close_before; /* close_after before the head was written */
    char reqid[24];
} req_impl_t;

struct ig_conn {
    uv_tcp_t tcp; /* first: handle pointer is the conn pointer */
    uv_timer_t timer;
    int handles_open;
    ig_server_t *srv;
    ig_link_t link; /* in the server's conns */
    llhttp_t parser;
    conn_state_t state;
    ig_buf_t in; /* unparsed bytes */
    bool reading;
    bool closing;
    bool eof;          /* client half-closed or went away */
    bool in_feed;      /* feed() is on the stack */
    bool write_paused; /* answers wait to be written: the next pipelined request is
                        * neither read nor parsed until the queue drains */
    bool resume_feed;  /* a response finished during feed() */
    int err_reason; /* ig_reason_t of a parse error; 0 (queue_full, never a parse error): none yet
                     */
    const char *err_msg;
    char peer_ip[INET6_ADDRSTRLEN];
    bool loopback;
    bool used;        /* has answered a request: idle now means between requests */
    ig_buf_t out;     /* corked response bytes, sent by the flush at the end of the loop turn */
    uint64_t flushes; /* times `out` was sent */
    ig_link_t flink;  /* in the server's flush list, while `out` holds bytes */
    bool in_flushq;
    req_impl_t req;
};

typedef struct {
    uv_tcp_t tcp;
    ig_server_t *srv;
} listener_t;

struct ig_server {
    uv_loop_t *loop;
    ig_server_opts_t opts;
    llhttp_settings_t settings;
    listener_t *listeners[8];
    size_t nlisteners;
    int port;
    ig_list_t conns; /* every open connection (ig_conn_t.link) */
    size_t nconns;
    size_t active;
    bool stopping;     /* listeners closed */
    bool closing_soon; /* every response says Connection: close */
    bool closing;
    int open_handles;
    void (*close_cb)(void *);
    void *close_arg;
    uint64_t reqid_seed;
    uint64_t reqid_counter;
    uv_check_t flush_check; /* sends corked bytes after each round of I/O */
    ig_list_t flushq;       /* connections with corked bytes (ig_conn_t.flink) */
    char readbuf[64 * 1024];
};

/* ---------------------------------------------------------------------------
 * Connection lifecycle (server.c)
 */

/* Closes `c` now. A request with the handler or mid-response is aborted
 * (its on_abort runs before this returns) and reported done to on_complete;
 * the connection is unlinked from the server and its handles closed. Memory
 * goes in the close callbacks. Does nothing on a closing connection. */
void ig_conn_close(ig_conn_t *c);

/* Stops reading and closes `c` once everything queued has been written
 * (uv_shutdown), or at once if the shutdown cannot start. */
void ig_conn_close_after_write(ig_conn_t *c);

/* The last byte of r's response was handed to libuv: clears the handler's
 * callbacks, reports the request done to on_complete, then closes the
 * connection (after the write) or goes on with the next request. A
 * pipelined request may reach the handler before this returns. */
void ig_conn_response_finished(req_impl_t *r);
/* Reads and parses the next pipelined request again after the write queue
 * drained below IG_SERVER_LOW_WATER (response.c's write callback). */
void ig_conn_resume_input(ig_conn_t *c);

/* ---------------------------------------------------------------------------
 * Writing (response.c)
 */

/* Sends `len` bytes on `c`, trying a direct write first; what the socket
 * does not take at once is copied and queued, so `data` may be reused on
 * return. A no-op (0) on a closing connection. Returns 0 or the IG_E* of a
 * failed write, after which the caller decides whether to close; a queued
 * write that fails later closes the connection itself. */
int ig_conn_send(ig_conn_t *c, const char *data, size_t len);

/* Adds bytes to the connection's cork: they leave with the next
 * ig_conn_send or ig_conn_flush, or at the latest when the loop turn's I/O
 * is done (the server's check handle), so that a streamed response's head,
 * body and chunk framing produced in one turn go out in one write. */
void ig_conn_cork(ig_conn_t *c, const char *data, size_t len);

/* Sends the corked bytes now. Returns 0 or an IG_E* like ig_conn_send. */
int ig_conn_flush(ig_conn_t *c);

/* Drops the corked bytes and leaves the flush list (the connection is
 * closing). */
void ig_conn_uncork_discard(ig_conn_t *c);

/* The server's check callback: flushes every corked connection. */
void ig_server_flush_all(uv_check_t *h);

#endif
