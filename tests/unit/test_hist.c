/*
 * test_hist.c: the log-linear histogram of hist.h: exact small values,
 * bounded relative error, quantile ranks, merge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "infergate/base/hist.h"

static ig_hist_t h, h2;

static void test_empty_and_small(void **state)
{
    (void)state;
    ig_hist_reset(&h);
    assert_int_equal(ig_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 0; v < 16; v++)
        ig_hist_record(&h, v);
    /* Below 16 every value has its own bucket: quantiles are exact. */
    assert_int_equal(ig_hist_quantile(&h, 0.0), 0);
    assert_int_equal(ig_hist_quantile(&h, 0.5), 7);
    assert_int_equal(ig_hist_quantile(&h, 1.0), 15);
    assert_int_equal(h.n, 16);
    assert_int_equal(h.sum, 120);
    assert_int_equal(h.max, 15);
}

static void test_relative_error_bound(void **state)
{
    (void)state;
    /* A value is reported as its bucket's upper bound: never below it, at
     * most 1/16 above (16 linear buckets per power of two). */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        uint64_t v = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) % (1ull << 40);
        v = v ? v : 1;
        ig_hist_reset(&h);
        ig_hist_record(&h, v);
        ig_hist_record(&h, 1ull << 45); /* so max does not clip the bucket bound */
        uint64_t got = ig_hist_quantile(&h, 0.0);
        assert_true(got >= v);
        assert_true(got - v <= v / 16);
    }
    /* Alone, a value is exact: the bound is clipped to the maximum. */
    ig_hist_reset(&h);
    ig_hist_record(&h, 1000003);
    assert_int_equal(ig_hist_quantile(&h, 0.99), 1000003);
}

static void test_ranks(void **state)
{
    (void)state;
    ig_hist_reset(&h);
    for (uint64_t v = 1; v <= 1000; v++)
        ig_hist_record(&h, v);
    /* Nearest rank (1 + q(n-1)), reported within 1/16 above. */
    uint64_t p50 = ig_hist_quantile(&h, 0.5), p99 = ig_hist_quantile(&h, 0.99);
    assert_true(p50 >= 500 && p50 <= 500 + 500 / 16);
    assert_true(p99 >= 990 && p99 <= 990 + 990 / 16);
    assert_int_equal(ig_hist_quantile(&h, 1.0), 1000);
    /* Monotone in q. */
    uint64_t prev = 0;
    for (int i = 0; i <= 100; i++) {
        uint64_t q = ig_hist_quantile(&h, i / 100.0);
        assert_true(q >= prev);
        prev = q;
    }
}

static void test_merge_equals_recording_all(void **state)
{
    (void)state;
    static ig_hist_t all;
    ig_hist_reset(&h);
    ig_hist_reset(&h2);
    ig_hist_reset(&all);
    for (uint64_t v = 1; v < 5000; v += 7) {
        ig_hist_record(v % 2 ? &h : &h2, v * 13);
        ig_hist_record(&all, v * 13);
    }
    ig_hist_merge(&h, &h2);
    assert_memory_equal(&h, &all, sizeof(all));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_small),
        cmocka_unit_test(test_relative_error_bound),
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_merge_equals_recording_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
