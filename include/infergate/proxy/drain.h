/*
 * drain.h: the drain state machine (DESIGN.md "Drain"), its own module.
 *
 * NONE -> GRACE (readiness 503, still serving for grace_ms) -> CLOSING
 * (listener closed; queued and in-flight work finishes, bounded by
 * timeout_ms, after which the rest gets 503 draining) -> DONE (drain
 * waiters answered, the last responses flushed, then ops->shut_down). The
 * exit code is 0 when nothing had to be cut off.
 *
 * The drain knows the two servers (net layer) and nothing of the gateway:
 * what it needs from the request path comes through the ops table that
 * run.c wires. Nothing outside drain.c reads its state except through the
 * functions below.
 */
#ifndef INFERGATE_PROXY_DRAIN_H
#define INFERGATE_PROXY_DRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/net/server.h"

typedef enum {
    IG_DRAIN_NONE = 0, /* serving */
    IG_DRAIN_GRACE,    /* not ready, still accepting for grace_ms */
    IG_DRAIN_CLOSING,  /* listener closed, finishing queued and in-flight work */
    IG_DRAIN_DONE,     /* everything answered; the process is about to exit */
} ig_drain_phase_t;

typedef struct {
    /* Requests still queued or with the model that a client waits for. */
    uint64_t (*outstanding)(void *ud);
    /* drain.timeout_ms passed: answer every outstanding request 503 draining. */
    void (*fail_all)(void *ud);
    /* The phase changed (readiness depends on it). */
    void (*phase_changed)(void *ud);
    /* DONE and flushed (or the flush deadline passed): close everything so
     * that the loop ends. Called once. */
    void (*shut_down)(void *ud);
} ig_drain_ops_t;

typedef struct ig_drain ig_drain_t;

/* `data` and `admin` are the two servers (borrowed; ig_drain_forget_servers
 * before they are closed elsewhere). */
ig_drain_t *ig_drain_new(uv_loop_t *loop, const ig_drain_ops_t *ops, void *ud, uint64_t grace_ms,
                         uint64_t timeout_ms, ig_server_t *data, ig_server_t *admin);
/* Closes the drain's timers (the loop must run afterwards) and frees it;
 * parked waiters are dropped without an answer (their connections close). */
void ig_drain_free(ig_drain_t *d);

/* Starts the drain (SIGTERM, SIGINT, POST /admin/drain); later calls do nothing. */
void ig_drain_start(ig_drain_t *d, const char *why);
/* Something finished (a data-port request was answered, a connection of
 * either port closed): the drain may be complete. Cheap; call it on every
 * such event. */
void ig_drain_poke(ig_drain_t *d);
/* Parks an admin request (GET /admin/drain?wait=1) until DONE. */
void ig_drain_add_waiter(ig_drain_t *d, ig_req_t *req);

ig_drain_phase_t ig_drain_phase(const ig_drain_t *d);
/* "serving", "grace", "closing", "drained". */
const char *ig_drain_phase_name(ig_drain_phase_t p);
/* New data-port requests are refused 503 draining (DONE, or cut off). */
bool ig_drain_refusing(const ig_drain_t *d);
/* 0 when every request was answered, 1 when drain.timeout_ms cut some off. */
int ig_drain_exit_code(const ig_drain_t *d);

#endif
