/*
 * admission.h: the bounded FIFO queue in front of the model and its
 * concurrency limit.
 *
 * Pure bookkeeping, no I/O and no timers: the caller owns the clock and the
 * items. An item either takes a slot at once, waits in the queue, or is
 * refused (queue full, or its deadline predicted unmeetable from the time
 * calls have recently held a slot). A slot is one call to the model: a batch
 * of many requests holds one slot.
 */
#ifndef INFERGATE_ADMISSION_H
#define INFERGATE_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/list.h"

typedef struct ig_adm_item {
    ig_link_t link;
    bool queued;
    void *data; /* the caller's */
} ig_adm_item_t;

typedef struct {
    size_t max_queue;
    size_t max_concurrency;
    size_t depth;        /* items queued */
    size_t inflight;     /* slots taken */
    ig_list_t queue;     /* of ig_adm_item_t, oldest first */
    double hold_us_ewma; /* how long a call recently held a slot */
    uint64_t hold_samples;
    double per_call_ewma; /* requests served by one call (batching), >= 1 */
} ig_admission_t;

/* Outcomes of ig_admission_arrive besides the negative IG_E* refusals. */
#define IG_ADMIT_RUN 1    /* a slot was taken for the item: dispatch it now */
#define IG_ADMIT_QUEUED 0 /* the item waits in the queue */

/* Samples needed before predictions are trusted. */
#define IG_ADMISSION_MIN_SAMPLES 3

void ig_admission_init(ig_admission_t *a, size_t max_queue, size_t max_concurrency);

/* Decides on an arriving item. `budget_us` is the time left before its
 * deadline (0: no deadline). Returns IG_ADMIT_RUN, IG_ADMIT_QUEUED,
 * IG_EQUEUEFULL, or IG_EUNMEETABLE (waiting for a slot and then being
 * served would take longer than the budget, by recent history). */
int ig_admission_arrive(ig_admission_t *a, ig_adm_item_t *it, uint64_t budget_us);

/* Queues an item even when a slot is free (a batch member waiting for
 * batch-mates). Returns IG_ADMIT_QUEUED, IG_EQUEUEFULL or IG_EUNMEETABLE. */
int ig_admission_enqueue(ig_admission_t *a, ig_adm_item_t *it, uint64_t budget_us);

/* Unlinks a queued item and takes a slot for it (the caller checked that
 * one is free: inflight < max_concurrency). */
void ig_admission_take(ig_admission_t *a, ig_adm_item_t *it);

/* Puts an item back at the head of the queue, past the max_queue bound: a
 * request that was already admitted and must be re-sent on its own. */
void ig_admission_push_front(ig_admission_t *a, ig_adm_item_t *it);

/* Records that a call carried `requests` requests, so that predictions
 * count calls, not requests, when batching serves many per call. */
void ig_admission_note_call(ig_admission_t *a, uint32_t requests);

/* Removes a queued item (deadline passed, client gone). No-op if not queued. */
void ig_admission_remove(ig_admission_t *a, ig_adm_item_t *it);

/* When a slot is free and an item waits, takes the slot for the oldest item,
 * unlinks it and returns it; otherwise NULL. */
ig_adm_item_t *ig_admission_pop(ig_admission_t *a);

/* Unlinks the oldest queued item WITHOUT taking a slot (a batch-mate riding
 * on a call that already holds one); NULL when the queue is empty. */
ig_adm_item_t *ig_admission_pop_rider(ig_admission_t *a);

/* Gives a slot back; `held_us` is how long the call held it (0: do not
 * record, e.g. it failed before reaching the model). */
void ig_admission_release(ig_admission_t *a, uint64_t held_us);

/* Expected wait for a slot of an item that would be queued at position
 * `ahead` (items before it), in microseconds; 0 when a slot is free or
 * nothing is known yet. */
uint64_t ig_admission_predict_wait_us(const ig_admission_t *a, size_t ahead);

/* A Retry-After value in whole seconds (>= 1): the expected time for the
 * current queue to drain. */
uint32_t ig_admission_retry_after_s(const ig_admission_t *a);

#endif
