/*
 * test_admission.c: the bounded queue, the concurrency limit and the
 * deadline prediction, through admission.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "infergate/core/admission.h"
#include "infergate/base/error.h"

static void test_slots_then_queue_then_full(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t it[6];
    ig_admission_init(&a, 2, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ig_admission_arrive(&a, &it[i], 0), IG_ADMIT_RUN);
    assert_int_equal(a.inflight, 3);
    assert_int_equal(ig_admission_arrive(&a, &it[3], 0), IG_ADMIT_QUEUED);
    assert_int_equal(ig_admission_arrive(&a, &it[4], 0), IG_ADMIT_QUEUED);
    assert_int_equal(a.depth, 2);
    assert_int_equal(ig_admission_arrive(&a, &it[5], 0), IG_EQUEUEFULL);
    assert_int_equal(a.depth, 2);
    assert_false(it[5].queued);
}

static void test_fifo_order_on_release(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run, q1, q2;
    ig_admission_init(&a, 10, 1);
    assert_int_equal(ig_admission_arrive(&a, &run, 0), IG_ADMIT_RUN);
    assert_int_equal(ig_admission_arrive(&a, &q1, 0), IG_ADMIT_QUEUED);
    assert_int_equal(ig_admission_arrive(&a, &q2, 0), IG_ADMIT_QUEUED);
    /* No slot free: nothing pops. */
    assert_null(ig_admission_pop(&a));
    ig_admission_release(&a, 1000);
    assert_ptr_equal(ig_admission_pop(&a), &q1);
    assert_null(ig_admission_pop(&a));
    ig_admission_release(&a, 1000);
    assert_ptr_equal(ig_admission_pop(&a), &q2);
    assert_int_equal(a.depth, 0);
    assert_int_equal(a.inflight, 1);
}

static void test_queued_arrival_never_overtakes(void **state)
{
    (void)state;
    /* A slot is free but someone waits: the newcomer must queue behind. */
    ig_admission_t a;
    ig_adm_item_t x, y, z;
    ig_admission_init(&a, 10, 1);
    assert_int_equal(ig_admission_arrive(&a, &x, 0), IG_ADMIT_RUN);
    assert_int_equal(ig_admission_arrive(&a, &y, 0), IG_ADMIT_QUEUED);
    ig_admission_release(&a, 0);
    assert_int_equal(ig_admission_arrive(&a, &z, 0), IG_ADMIT_QUEUED);
    assert_ptr_equal(ig_admission_pop(&a), &y);
}

static void test_remove_middle(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run, q[3];
    ig_admission_init(&a, 10, 1);
    ig_admission_arrive(&a, &run, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ig_admission_arrive(&a, &q[i], 0), IG_ADMIT_QUEUED);
    ig_admission_remove(&a, &q[1]);
    ig_admission_remove(&a, &q[1]); /* no-op the second time */
    assert_int_equal(a.depth, 2);
    ig_admission_release(&a, 0);
    assert_ptr_equal(ig_admission_pop(&a), &q[0]);
    ig_admission_release(&a, 0);
    assert_ptr_equal(ig_admission_pop(&a), &q[2]);
    assert_null(a.queue.head);
    assert_null(a.queue.tail);
}

static void test_zero_queue_rejects_beyond_limit(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t x, y;
    ig_admission_init(&a, 0, 1);
    assert_int_equal(ig_admission_arrive(&a, &x, 0), IG_ADMIT_RUN);
    assert_int_equal(ig_admission_arrive(&a, &y, 0), IG_EQUEUEFULL);
}

static void test_prediction_needs_samples(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run, q;
    ig_admission_init(&a, 10, 1);
    ig_admission_arrive(&a, &run, 0);
    /* Without history a tiny budget is still queued: no guessing. */
    assert_int_equal(ig_admission_arrive(&a, &q, 1), IG_ADMIT_QUEUED);
    assert_int_equal(ig_admission_predict_wait_us(&a, 5), 0);
}

static void test_unmeetable_deadline(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run[2], q[3], late, ok;
    ig_admission_init(&a, 10, 2);
    /* History: calls hold a slot for 100 ms. */
    for (int i = 0; i < IG_ADMISSION_MIN_SAMPLES; i++) {
        ig_admission_arrive(&a, &run[0], 0);
        ig_admission_release(&a, 100000);
    }
    assert_int_equal(ig_admission_arrive(&a, &run[0], 0), IG_ADMIT_RUN);
    assert_int_equal(ig_admission_arrive(&a, &run[1], 0), IG_ADMIT_RUN);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ig_admission_arrive(&a, &q[i], 0), IG_ADMIT_QUEUED);
    /* 3 ahead, 2 slots, 100 ms each: wait ~ (3+1)*100/2 = 200 ms, then 100 ms of service. */
    assert_int_equal(ig_admission_predict_wait_us(&a, 3), 200000);
    assert_int_equal(ig_admission_arrive(&a, &late, 250000), IG_EUNMEETABLE);
    assert_false(late.queued);
    assert_int_equal(a.depth, 3);
    assert_int_equal(ig_admission_arrive(&a, &ok, 350000), IG_ADMIT_QUEUED);
}

static void test_ewma_and_retry_after(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run, q[4];
    ig_admission_init(&a, 100, 1);
    for (int i = 0; i < 10; i++) {
        ig_admission_arrive(&a, &run, 0);
        ig_admission_release(&a, 2000000); /* 2 s per call */
    }
    assert_true(a.hold_us_ewma > 1999999.0 && a.hold_us_ewma < 2000001.0);
    assert_int_equal(ig_admission_arrive(&a, &run, 0), IG_ADMIT_RUN);
    for (int i = 0; i < 4; i++)
        ig_admission_arrive(&a, &q[i], 0);
    /* 4 queued + the one running, 2 s each, one slot: ~10 s to drain. */
    assert_int_equal(ig_admission_retry_after_s(&a), 10);
    ig_admission_t empty;
    ig_admission_init(&empty, 1, 1);
    assert_int_equal(ig_admission_retry_after_s(&empty), 1);
}

static void test_release_without_sample_keeps_average(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t x;
    ig_admission_init(&a, 1, 1);
    ig_admission_arrive(&a, &x, 0);
    ig_admission_release(&a, 0); /* failed before reaching the model */
    assert_int_equal(a.hold_samples, 0);
    assert_int_equal(a.inflight, 0);
    ig_admission_release(&a, 0); /* never below zero */
    assert_int_equal(a.inflight, 0);
}

static void test_enqueue_take_push_front(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t w1, w2, again;
    ig_admission_init(&a, 2, 2);
    /* A batch member waits even with slots free. */
    assert_int_equal(ig_admission_enqueue(&a, &w1, 0), IG_ADMIT_QUEUED);
    assert_int_equal(ig_admission_enqueue(&a, &w2, 0), IG_ADMIT_QUEUED);
    assert_int_equal(a.inflight, 0);
    assert_int_equal(ig_admission_enqueue(&a, &again, 0), IG_EQUEUEFULL);
    /* Taking a specific item (not the head) unlinks it and holds a slot. */
    ig_admission_take(&a, &w2);
    assert_int_equal(a.inflight, 1);
    assert_int_equal(a.depth, 1);
    assert_ptr_equal(a.queue.head, &w1.link);
    /* Re-sent alone: back at the head, past the bound. */
    ig_admission_push_front(&a, &again);
    ig_admission_push_front(&a, &w2);
    assert_int_equal(a.depth, 3);
    assert_ptr_equal(a.queue.head, &w2.link);
    assert_ptr_equal(a.queue.head->next, &again.link);
    assert_ptr_equal(a.queue.tail, &w1.link);
}

static void test_prediction_counts_calls_not_requests(void **state)
{
    (void)state;
    ig_admission_t a;
    ig_adm_item_t run, q[8];
    ig_admission_init(&a, 100, 1);
    for (int i = 0; i < IG_ADMISSION_MIN_SAMPLES; i++) {
        ig_admission_arrive(&a, &run, 0);
        ig_admission_release(&a, 100000);
    }
    ig_admission_arrive(&a, &run, 0);
    for (int i = 0; i < 8; i++)
        ig_admission_enqueue(&a, &q[i], 0);
    uint64_t one_per_call = ig_admission_predict_wait_us(&a, 8);
    for (int i = 0; i < 50; i++)
        ig_admission_note_call(&a, 8);
    uint64_t batched = ig_admission_predict_wait_us(&a, 8);
    /* 8 ahead served 8 per call: about two calls' time instead of nine. */
    assert_int_equal(one_per_call, 900000);
    assert_true(batched < 250000 && batched >= 150000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_then_queue_then_full),
        cmocka_unit_test(test_fifo_order_on_release),
        cmocka_unit_test(test_queued_arrival_never_overtakes),
        cmocka_unit_test(test_remove_middle),
        cmocka_unit_test(test_zero_queue_rejects_beyond_limit),
        cmocka_unit_test(test_prediction_needs_samples),
        cmocka_unit_test(test_unmeetable_deadline),
        cmocka_unit_test(test_ewma_and_retry_after),
        cmocka_unit_test(test_release_without_sample_keeps_average),
        cmocka_unit_test(test_enqueue_take_push_front),
        cmocka_unit_test(test_prediction_counts_calls_not_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
