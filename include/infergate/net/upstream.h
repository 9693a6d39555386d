/*
 * upstream.h: keep-alive connection pool to the model server.
 *
 * One pool per upstream URL. A call sends one HTTP/1.1 request and streams
 * the response back through callbacks. Idle connections are reused; at most
 * `max_connections` exist at once (calls beyond wait for one). A call that
 * failed on a reused connection before any response byte arrived is retried
 * once on a fresh connection, since the model may have closed it while idle.
 *
 * The callback rule: no callback of a call ever runs before
 * ig_upstream_call returns. Failures found while the call is being started
 * (a write to a connection the model already reset, a connect that cannot
 * start) are reported from the loop, on the next turn.
 *
 * The pool knows nothing about admission or routes: the concurrency limit
 * towards the model is the caller's (admission.c).
 */
#ifndef INFERGATE_UPSTREAM_H
#define INFERGATE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/base/list.h"
#include "infergate/net/http.h"

typedef struct ig_upstream ig_upstream_t;
typedef struct ig_ucall ig_ucall_t;

typedef struct {
    const char *url; /* http://host:port[/base-path]; host may be a name, resolved at start */
    size_t max_connections;
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;     /* default response timeout of a call */
    size_t max_header_bytes; /* response head limit */
} ig_upstream_opts_t;

struct ig_ucall {
    void *data; /* the caller's */

    /* The request, filled by the caller; must stay valid until on_done or cancel.
     * `headers` must not hold Host, Content-Length, Connection or other
     * hop-by-hop headers: the pool writes those itself. */
    const char *method;
    ig_slice_t target;
    const ig_header_t *headers;
    size_t nheaders;
    ig_slice_t body;
    uint64_t timeout_ms; /* from send to the end of the response; 0: the pool's default */

    /* The response. on_head may return non-zero to cancel the call (then no
     * further callback runs). content_length is -1 when unknown. */
    int (*on_head)(ig_ucall_t *c, int status, const ig_header_t *hdrs, size_t n,
                   int64_t content_length);
    void (*on_body)(ig_ucall_t *c, const char *data, size_t len);
    /* Runs exactly once unless the call was canceled, never before
     * ig_upstream_call returned: err is 0, or IG_ECONNREFUSED (could not
     * connect), IG_ECONNRESET (connection lost), IG_ETIMEDOUT (connect or
     * response timeout), IG_EPROTO (bad response), IG_ECANCELED (the pool
     * was freed).
     *
     * A reused connection (one that served a call or sat idle in the pool,
     * e.g. opened for a call canceled while it connected) that fails before
     * any response byte arrived is retried once on a fresh connection, but
     * only when that is safe (RFC 9110 9.2.2): the method is idempotent
     * (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or no byte of the request
     * was written. A POST the model may have started on is never sent
     * twice: the call fails with IG_ECONNRESET instead. */
    void (*on_done)(ig_ucall_t *c, int err);

    /* Set by the pool: whether any response byte arrived (the caller then
     * knows if it can still send its own error response). */
    bool got_response;
    uint64_t sent_ns; /* uv_hrtime() when the request was written */

    /* private */
    void *conn_;
    ig_link_t wait_link_;
    bool retried_;
    bool wrote_; /* some byte of the request reached the socket */
    bool paused_;
    int pend_err_; /* non-zero while its error waits to be reported from the loop */
    ig_upstream_t *pool_;
};

/* Creates a pool. Resolves the URL's host synchronously (at start-up only).
 * Returns 0 and sets *out, or IG_EADDR / IG_EINVAL with `err` filled. */
int ig_upstream_new(uv_loop_t *loop, const ig_upstream_opts_t *opts, ig_upstream_t **out, char *err,
                    size_t errlen);

/* Starts a call. Returns 0 (callbacks will run later, never before this
 * returns, errors found at once included) or IG_EINVAL (then no callback
 * ever runs). Takes an idle connection, else one still connecting for a
 * canceled call, else opens one, else waits (FIFO) for one. */
int ig_upstream_call(ig_upstream_t *u, ig_ucall_t *c);

/* Lets a call run on after its caller frees the request (method, target,
 * headers, body): the response is still read and handed to the callbacks,
 * and the connection goes back to the pool at the end. Possible only once
 * the request was written whole; the call is then never retried. Returns 0,
 * or IG_EAGAIN when part of the request is still unwritten (cancel it). */
int ig_upstream_orphan(ig_ucall_t *c);

/* Abandons a call: no callback runs afterwards (also when its error was
 * already waiting to be reported). A connection in the middle of the call
 * is closed, not returned to the pool; one still connecting goes on
 * connecting for the next call that needs one. */
void ig_upstream_cancel(ig_ucall_t *c);

/* Stops / restarts reading the response (backpressure from a slow client).
 * Bytes already read when pause is called (at most one 64 KiB read) are
 * still delivered to on_body; nothing more is read until resume. */
void ig_upstream_pause(ig_ucall_t *c);
void ig_upstream_resume(ig_ucall_t *c);

/* The base path from the URL ("" when none), to prefix request targets with. */
const char *ig_upstream_base_path(const ig_upstream_t *u);

/* Host header value ("127.0.0.1:8081"). */
const char *ig_upstream_host(const ig_upstream_t *u);

size_t ig_upstream_open_connections(const ig_upstream_t *u);
size_t ig_upstream_idle_connections(const ig_upstream_t *u);

/* Closes every connection and ends every call not yet done before it
 * returns (unlike ig_upstream_call, on_done runs on this stack): calls
 * whose error was waiting to be reported get that error, the others
 * IG_ECANCELED. The pool's memory is freed once its handles closed (the
 * loop must run); `u` must not be used after this call. */
void ig_upstream_free(ig_upstream_t *u);

#endif
