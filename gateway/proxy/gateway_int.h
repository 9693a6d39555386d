/*
 * gateway_int.h: what gateway.c and batch_call.c share about a request in
 * flight. Private to the gateway: not a public contract.
 */
#ifndef INFERGATE_GATEWAY_INT_H
#define INFERGATE_GATEWAY_INT_H

#include "infergate/core/batcher.h"
#include "infergate/core/codec.h"
#include "infergate/proxy/gateway.h"

#define IG_GW_MAX_FWD_HEADERS (IG_SERVER_MAX_HEADERS + 6)
/* ig_req_t.tag of a data-port request: this bit says it was counted in the
 * in-flight gauge; the rest is its route index + 1 (0: no route). */
#define IG_GW_TAG_COUNTED (1ull << 63)

/* The most requests one batch call can carry (batch.max_size rows, >= 1 each). */
#define IG_GW_MAX_BATCH 4096

typedef struct ig_bcall ig_bcall_t;

typedef enum {
    P_FREE,
    P_QUEUED,   /* waiting for a slot (and, on a batching route, for batch-mates) */
    P_UPSTREAM, /* its own call to the model, response streamed back */
    P_ORPHAN,   /* its client left after the call was written; the model is
                 * still working on it, so the call runs to its end (response
                 * discarded) and holds its concurrency slot until then */
    P_BATCH,    /* riding in a batch call */
    P_DETACHED, /* answered already; its batch call still refers to it */
} ig_pending_state_t;

struct ig_pending {
    ig_adm_item_t item;
    ig_batch_member_t member; /* while waiting in a batch group */
    ig_batch_part_t part;     /* the parsed body, on batching routes */
    ig_gateway_t *gw;
    ig_req_t *req;
    size_t route;
    ig_pending_state_t state;
    bool batching; /* may share a call with others */
    bool started;  /* response head sent to the client */
    ig_bcall_t *bcall;
    uv_timer_t deadline_timer;
    uint64_t deadline_ns; /* 0: none */
    uint64_t queued_ns;
    uint64_t dispatched_ns;
    uint64_t head_ns;
    ig_ucall_t call;
    ig_header_t fwd[IG_GW_MAX_FWD_HEADERS];
    ig_buf_t xff;
    char timing[160];
    ig_pending_t *next_free;
    ig_pending_t *next_all;
};

/* gateway.c */
void ig_gw_pending_put(ig_pending_t *p);
void ig_gw_pending_fail(ig_pending_t *p, ig_reason_t reason, const char *msg);
void ig_gw_release_slot(ig_gateway_t *gw, uint64_t held_us);
void ig_gw_update_gauges(ig_gateway_t *gw);
uint64_t ig_gw_now_us(const ig_gateway_t *gw);
/* Puts an admitted request back at the head of the queue to be sent on its
 * own (poison isolation). */
void ig_gw_requeue_alone(ig_pending_t *p);
/* The batcher's on_due: a group's oldest member has waited max_delay_us. */
void ig_gw_on_group_due(ig_batcher_t *b, ig_batch_group_t *g);


/* batch_call.c: sends members[0..n) (n >= 2, equal keys) as one call; the
 * first holds the concurrency slot. */
void ig_bcall_dispatch(ig_gateway_t *gw, ig_pending_t **members, size_t n);
/* A member leaves its batch call early (client gone, deadline). */
void ig_bcall_detach(ig_pending_t *p);
/* A member's deadline passed while the model works: 504 upstream_timeout
 * for it alone. */
void ig_bcall_expire(ig_pending_t *p);
/* Fails every batch call in flight with 503 draining. */
void ig_bcall_fail_all(ig_gateway_t *gw);
void ig_bcall_free_all(ig_gateway_t *gw);

#endif
