/*
 * admission.c: bounded FIFO queue, concurrency limit and deadline
 * prediction. See admission.h for the contract.
 *
 * The prediction is Little's law on one queue with `max_concurrency`
 * servers: slots free up at a rate of max_concurrency / hold, so an item
 * with k items ahead waits about (k + 1) * hold / max_concurrency before it
 * gets one, then holds it for about `hold` itself.
 */
#include "infergate/core/admission.h"

#include <math.h>

#include "infergate/base/error.h"

/* Weight of the newest sample in the moving average of hold times. */
#define EWMA_ALPHA 0.2

void ig_admission_init(ig_admission_t *a, size_t max_queue, size_t max_concurrency)
{
    a->max_queue = max_queue;
    a->max_concurrency = max_concurrency ? max_concurrency : 1;
    a->depth = 0;
    a->inflight = 0;
    a->queue = (ig_list_t){0};
    a->hold_us_ewma = 0;
    a->hold_samples = 0;
    a->per_call_ewma = 1.0;
}

static void link_tail(ig_admission_t *a, ig_adm_item_t *it)
{
    ig_list_push_back(&a->queue, &it->link);
    it->queued = true;
    a->depth++;
}

static void unlink_item(ig_admission_t *a, ig_adm_item_t *it)
{
    ig_list_remove(&a->queue, &it->link);
    it->queued = false;
    a->depth--;
}

/* The oldest queued item, or NULL. */
static ig_adm_item_t *oldest(const ig_admission_t *a)
{
    return IG_LIST_ITEM(a->queue.head, ig_adm_item_t, link);
}

uint64_t ig_admission_predict_wait_us(const ig_admission_t *a, size_t ahead)
{
    if (a->inflight < a->max_concurrency && ahead == 0)
        return 0;
    if (a->hold_samples < IG_ADMISSION_MIN_SAMPLES)
        return 0;
    /* Items ahead are served per_call_ewma at a time. */
    double calls_ahead = (double)ahead / a->per_call_ewma;
    return (uint64_t)((calls_ahead + 1.0) * a->hold_us_ewma / (double)a->max_concurrency);
}

int ig_admission_arrive(ig_admission_t *a, ig_adm_item_t *it, uint64_t budget_us)
{
    it->queued = false;
    it->link = (ig_link_t){0};
    if (a->inflight < a->max_concurrency && a->depth == 0) {
        a->inflight++;
        return IG_ADMIT_RUN;
    }
    return ig_admission_enqueue(a, it, budget_us);
}

int ig_admission_enqueue(ig_admission_t *a, ig_adm_item_t *it, uint64_t budget_us)
{
    it->queued = false;
    it->link = (ig_link_t){0};
    if (a->depth >= a->max_queue)
        return IG_EQUEUEFULL;
    if (budget_us && a->hold_samples >= IG_ADMISSION_MIN_SAMPLES) {
        uint64_t need = ig_admission_predict_wait_us(a, a->depth) + (uint64_t)a->hold_us_ewma;
        if (need > budget_us)
            return IG_EUNMEETABLE;
    }
    link_tail(a, it);
    return IG_ADMIT_QUEUED;
}

void ig_admission_remove(ig_admission_t *a, ig_adm_item_t *it)
{
    if (it->queued)
        unlink_item(a, it);
}

ig_adm_item_t *ig_admission_pop(ig_admission_t *a)
{
    ig_adm_item_t *it = oldest(a);
    if (!it || a->inflight >= a->max_concurrency)
        return NULL;
    unlink_item(a, it);
    a->inflight++;
    return it;
}

void ig_admission_take(ig_admission_t *a, ig_adm_item_t *it)
{
    if (it->queued)
        unlink_item(a, it);
    a->inflight++;
}

void ig_admission_push_front(ig_admission_t *a, ig_adm_item_t *it)
{
    ig_list_push_front(&a->queue, &it->link);
    it->queued = true;
    a->depth++;
}

void ig_admission_note_call(ig_admission_t *a, uint32_t requests)
{
    if (requests == 0)
        return;
    a->per_call_ewma += EWMA_ALPHA * ((double)requests - a->per_call_ewma);
    if (a->per_call_ewma < 1.0)
        a->per_call_ewma = 1.0;
}

ig_adm_item_t *ig_admission_pop_rider(ig_admission_t *a)
{
    ig_adm_item_t *it = oldest(a);
    if (it)
        unlink_item(a, it);
    return it;
}

void ig_admission_release(ig_admission_t *a, uint64_t held_us)
{
    if (a->inflight > 0)
        a->inflight--;
    if (held_us) {
        if (a->hold_samples == 0)
            a->hold_us_ewma = (double)held_us;
        else
            a->hold_us_ewma += EWMA_ALPHA * ((double)held_us - a->hold_us_ewma);
        a->hold_samples++;
    }
}

uint32_t ig_admission_retry_after_s(const ig_admission_t *a)
{
    double us = (double)ig_admission_predict_wait_us(a, a->depth);
    double s = ceil(us / 1e6);
    if (s < 1)
        return 1;
    if (s > 3600)
        return 3600;
    return (uint32_t)s;
}
