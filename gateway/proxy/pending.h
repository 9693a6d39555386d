/*
 * pending.h: a client request inside the gateway, and its one owner.
 *
 * pending.c is the only code that changes a pending request's state: every
 * change goes through ig_pending_to, checked against the transition table
 * below, so a path that would, say, answer a request twice or requeue one
 * that is already with the model stops at the transition instead of
 * corrupting a neighbour. Private to the proxy layer.
 *
 *   FREE ----> QUEUED ----> UPSTREAM ----> ORPHAN
 *    |  \         |  ^         |              |
 *    |   `--------|--|-------> |              |
 *    |            v  |         |              |
 *    |          BATCH ---> DETACHED           |
 *    |                        |               |
 *    `<-----------------------'<--------------'   (and QUEUED, UPSTREAM -> FREE)
 *
 *   FREE      in the pool, or finishing (its call is over)
 *   QUEUED    waiting for a slot (and, on a batching route, for batch-mates)
 *   UPSTREAM  its own call to the model, the response streamed back
 *   ORPHAN    its client left after the call was written; the model still
 *             works on it, so the call runs to its end (response discarded)
 *             and holds its concurrency slot until then
 *   BATCH     riding in a batch call (back to QUEUED when the batch is
 *             re-sent member by member: poison isolation)
 *   DETACHED  answered already; its batch call still refers to it
 */
#ifndef INFERGATE_PROXY_PENDING_H
#define INFERGATE_PROXY_PENDING_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/core/admission.h"
#include "infergate/core/batcher.h"
#include "infergate/core/codec.h"
#include "infergate/net/server.h"
#include "infergate/net/upstream.h"

#define IG_PENDING_MAX_FWD_HEADERS (IG_SERVER_MAX_HEADERS + 6)

#define IG_PENDING_STATES(X)                                                                       \
    X(FREE)                                                                                        \
    X(QUEUED)                                                                                      \
    X(UPSTREAM)                                                                                    \
    X(ORPHAN)                                                                                      \
    X(BATCH)                                                                                       \
    X(DETACHED)

typedef enum {
#define IG_PENDING_ENUM(s) P_##s,
    IG_PENDING_STATES(IG_PENDING_ENUM)
#undef IG_PENDING_ENUM
        P__COUNT
} ig_pending_state_t;

typedef struct ig_pending ig_pending_t;
typedef struct ig_bcall ig_bcall_t;
struct ig_gateway;

struct ig_pending {
    ig_adm_item_t item;
    ig_batch_member_t member; /* while waiting in a batch group */
    ig_batch_part_t part;     /* the parsed body, on batching routes */
    struct ig_gateway *gw;    /* its owner's context */
    ig_req_t *req;
    size_t route;
    ig_pending_state_t state; /* read anywhere, written by ig_pending_to only */
    bool batching;            /* may share a call with others */
    bool started;             /* response head sent to the client */
    ig_bcall_t *bcall;
    const void *fwd_owner; /* forward.c's owner table, while UPSTREAM/ORPHAN */
    uv_timer_t deadline_timer;
    uint64_t deadline_ns; /* 0: none */
    uint64_t queued_ns;
    uint64_t dispatched_ns;
    uint64_t head_ns;
    ig_ucall_t call;
    ig_header_t fwd[IG_PENDING_MAX_FWD_HEADERS];
    ig_buf_t xff;
    char timing[160];
    ig_pending_t *next_free;
    ig_pending_t *next_all;
};

/* Recycled pending requests: the steady state allocates nothing. */
typedef struct {
    uv_loop_t *loop;
    ig_pending_t *free;
    ig_pending_t *all; /* every allocated one, for shutdown */
} ig_pending_pool_t;

void ig_pending_pool_init(ig_pending_pool_t *pool, uv_loop_t *loop);
/* Frees every pending (after the loop has closed their timers). */
void ig_pending_pool_dispose(ig_pending_pool_t *pool);

/* A FREE pending for `gw`, zeroed but for its buffers and timer. */
ig_pending_t *ig_pending_get(ig_pending_pool_t *pool, struct ig_gateway *gw);
/* Back to the pool: stops its deadline, leaves its batch group, disposes of
 * its parsed body, detaches it from its client request (FREE). */
void ig_pending_put(ig_pending_pool_t *pool, ig_pending_t *p);

/* The one state change. A transition the table does not allow is a
 * gateway bug: it is logged and the process aborts rather than answer a
 * client twice or lose one. */
void ig_pending_to(ig_pending_t *p, ig_pending_state_t to);
/* Whether the table allows from -> to. */
bool ig_pending_allowed(ig_pending_state_t from, ig_pending_state_t to);
/* "QUEUED" for P_QUEUED. */
const char *ig_pending_state_name(ig_pending_state_t s);

/* The request's callbacks stop reaching the pending (client gone, or
 * answered while its batch call goes on). */
void ig_pending_drop_req(ig_pending_t *p);

#endif
