/*
 * batcher.h: batch forming. Requests of a batching route that share a
 * batch key wait together in a group; the group says when it is ready to
 * go to the model and which of its members ride in the next call.
 *
 * Dispatch rules (DESIGN.md "Batching"), evaluated when a concurrency slot
 * is free: the group's rows reach batch.max_size; a batch.preferred_sizes
 * value is reached; the oldest member has waited batch.max_delay_us; or
 * max_delay_us is 0. A member larger than max_size goes alone.
 *
 * The batcher owns one timer per group (for max_delay_us) and calls
 * `on_due` when a group's oldest member has waited long enough; it never
 * talks to the model or to clients: the gateway does (gateway.c).
 * Groups are recycled through a free list; their timers stay initialised.
 */
#ifndef INFERGATE_BATCHER_H
#define INFERGATE_BATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/core/config.h"
#include "infergate/base/list.h"

typedef struct ig_batcher ig_batcher_t;
typedef struct ig_batch_group ig_batch_group_t;

/* Embedded in the caller's per-request state. */
typedef struct ig_batch_member {
    ig_link_t link;
    ig_batch_group_t *group; /* NULL when not waiting in a group */
    uint32_t rows;
    uint64_t enq_ns; /* uv_hrtime() when it joined */
    void *data;      /* the caller's */
} ig_batch_member_t;

struct ig_batch_group {
    ig_link_t link; /* in the batcher's groups or spare */
    ig_batcher_t *b;
    size_t route;
    const ig_batch_conf_t *conf; /* borrowed */
    uint64_t key_hash;
    char *key; /* owned */
    size_t key_len, key_cap;
    ig_list_t members; /* of ig_batch_member_t, oldest first */
    uint32_t rows;     /* sum over members */
    uint32_t count;    /* members */
    uv_timer_t timer;
};

struct ig_batcher {
    uv_loop_t *loop;
    ig_list_t groups; /* active */
    ig_list_t spare;  /* recycled, timers initialised */
    size_t ngroups;
    void (*on_due)(ig_batcher_t *b, ig_batch_group_t *g);
    void *data;
    int open_timers;
    bool disposing;
};

void ig_batcher_init(ig_batcher_t *b, uv_loop_t *loop,
                     void (*on_due)(ig_batcher_t *b, ig_batch_group_t *g), void *data);

/* Stops and closes every timer; the loop must run afterwards for the
 * close callbacks, which free the groups. Members must have left. */
void ig_batcher_dispose(ig_batcher_t *b);

/* Adds a member to the group of (route, key), creating it if needed, and
 * arms the group's max_delay timer when the member is its oldest. `key` is
 * copied. `now_ns` is uv_hrtime(). Returns the group. */
ig_batch_group_t *ig_batcher_join(ig_batcher_t *b, size_t route, const ig_batch_conf_t *conf,
                                  const char *key, size_t key_len, uint64_t key_hash,
                                  ig_batch_member_t *m, uint32_t rows, uint64_t now_ns);

/* Removes a waiting member (its client left, its deadline passed). A group
 * left empty is recycled. No-op when the member is in no group. */
void ig_batcher_leave(ig_batch_member_t *m);

/* With a free slot, should this group's next batch go now? */
bool ig_batcher_ready(const ig_batch_group_t *g, uint64_t now_ns);

/* Removes the members of the group's next batch, oldest first, into
 * out[0..return) (at most max_out), and re-arms the timer for the rest (or
 * recycles the group when none is left; `g` must not be used afterwards
 * then). The batch holds up to max_size rows, or, when only a preferred size
 * made the group ready, up to the largest preferred size reached; it always
 * holds at least one member (a member bigger than max_size goes alone). */
size_t ig_batcher_take(ig_batch_group_t *g, uint64_t now_ns, ig_batch_member_t **out,
                       size_t max_out);

#endif
