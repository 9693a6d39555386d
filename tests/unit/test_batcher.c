/*
 * test_batcher.c: batch groups through batcher.h: keys, readiness rules
 * (max_size, preferred sizes, max_delay_us, zero delay), what a batch takes,
 * the max_delay timer, and members leaving. Each test closes its loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/core/batcher.h"

typedef struct {
    int due_calls;
    ig_batch_group_t *last_due;
} ctx_t;

static void on_due(ig_batcher_t *b, ig_batch_group_t *g)
{
    ctx_t *c = b->data;
    c->due_calls++;
    c->last_due = g;
}

static ig_batch_conf_t conf(uint32_t max_size, uint64_t delay_us)
{
    ig_batch_conf_t c;
    memset(&c, 0, sizeof(c));
    c.max_size = max_size;
    c.max_delay_us = delay_us;
    return c;
}

static void close_loop(uv_loop_t *loop, ig_batcher_t *b)
{
    ig_batcher_dispose(b);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

#define MS 1000000ull

static void test_same_key_same_group_other_key_other_group(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(8, 1000000);
    ig_batch_member_t m[4];
    memset(m, 0, sizeof(m));
    ig_batch_group_t *g0 = ig_batcher_join(&b, 0, &cf, "k1", 2, 1, &m[0], 1, 0);
    ig_batch_group_t *g1 = ig_batcher_join(&b, 0, &cf, "k1", 2, 1, &m[1], 2, 0);
    ig_batch_group_t *g2 = ig_batcher_join(&b, 0, &cf, "k2", 2, 2, &m[2], 1, 0);
    ig_batch_group_t *g3 = ig_batcher_join(&b, 1, &cf, "k1", 2, 1, &m[3], 1, 0);
    assert_ptr_equal(g0, g1);
    assert_ptr_not_equal(g0, g2);
    assert_ptr_not_equal(g0, g3); /* another route */
    assert_int_equal(g0->rows, 3);
    assert_int_equal(g0->count, 2);
    assert_int_equal(b.ngroups, 3);
    for (int i = 0; i < 4; i++)
        ig_batcher_leave(&m[i]);
    assert_int_equal(b.ngroups, 0);
    close_loop(&loop, &b);
}

static void test_ready_rules(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(8, 5000); /* 5 ms */
    cf.preferred_sizes[0] = 4;
    cf.n_preferred = 1;
    ig_batch_member_t m[8];
    memset(m, 0, sizeof(m));
    uint64_t t0 = 100 * MS;
    ig_batch_group_t *g = ig_batcher_join(&b, 0, &cf, "k", 1, 9, &m[0], 1, t0);
    assert_false(ig_batcher_ready(g, t0));
    assert_false(ig_batcher_ready(g, t0 + 4 * MS));
    assert_true(ig_batcher_ready(g, t0 + 5 * MS)); /* oldest waited max_delay */
    ig_batcher_join(&b, 0, &cf, "k", 1, 9, &m[1], 3, t0 + MS);
    assert_true(ig_batcher_ready(g, t0 + MS)); /* 4 rows: a preferred size */
    for (int i = 0; i < 2; i++)
        ig_batcher_leave(&m[i]);

    ig_batch_conf_t full = conf(8, 1000000);
    g = ig_batcher_join(&b, 0, &full, "f", 1, 7, &m[2], 5, t0);
    assert_false(ig_batcher_ready(g, t0));
    ig_batcher_join(&b, 0, &full, "f", 1, 7, &m[3], 3, t0);
    assert_true(ig_batcher_ready(g, t0)); /* max_size reached */
    ig_batcher_leave(&m[2]);
    ig_batcher_leave(&m[3]);

    ig_batch_conf_t zero = conf(8, 0);
    g = ig_batcher_join(&b, 0, &zero, "z", 1, 5, &m[4], 1, t0);
    assert_true(ig_batcher_ready(g, t0)); /* no delay: go with a free slot */
    ig_batcher_leave(&m[4]);
    close_loop(&loop, &b);
}

static void test_take_respects_max_size_and_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(4, 1000);
    ig_batch_member_t m[5];
    memset(m, 0, sizeof(m));
    uint32_t rows[5] = {1, 2, 2, 1, 6};
    ig_batch_group_t *g = NULL;
    for (int i = 0; i < 5; i++)
        g = ig_batcher_join(&b, 0, &cf, "k", 1, 1, &m[i], rows[i], 0);
    ig_batch_member_t *out[8];
    uint64_t late = 10 * MS;
    /* 1 + 2 fit, the next 2 would make 5 > 4. */
    size_t n = ig_batcher_take(g, late, out, 8);
    assert_int_equal(n, 2);
    assert_ptr_equal(out[0], &m[0]);
    assert_ptr_equal(out[1], &m[1]);
    assert_null(m[0].group);
    n = ig_batcher_take(g, late, out, 8);
    assert_int_equal(n, 2);
    assert_ptr_equal(out[0], &m[2]);
    assert_ptr_equal(out[1], &m[3]);
    /* A member bigger than max_size goes alone; the group is then gone. */
    n = ig_batcher_take(g, late, out, 8);
    assert_int_equal(n, 1);
    assert_ptr_equal(out[0], &m[4]);
    assert_int_equal(b.ngroups, 0);
    close_loop(&loop, &b);
}

static void test_take_preferred_size_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(32, 1000000);
    cf.preferred_sizes[0] = 2;
    cf.preferred_sizes[1] = 4;
    cf.n_preferred = 2;
    ig_batch_member_t m[5];
    memset(m, 0, sizeof(m));
    ig_batch_group_t *g = NULL;
    for (int i = 0; i < 5; i++)
        g = ig_batcher_join(&b, 0, &cf, "k", 1, 1, &m[i], 1, 0);
    ig_batch_member_t *out[8];
    /* Ready only through a preferred size: the largest reached (4), not all 5. */
    assert_true(ig_batcher_ready(g, 0));
    size_t n = ig_batcher_take(g, 0, out, 8);
    assert_int_equal(n, 4);
    assert_int_equal(g->rows, 1);
    ig_batcher_leave(&m[4]);
    close_loop(&loop, &b);
}

static void test_timer_fires_after_max_delay(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(8, 3000);
    ig_batch_member_t m;
    memset(&m, 0, sizeof(m));
    uint64_t t0 = uv_hrtime();
    ig_batch_group_t *g = ig_batcher_join(&b, 0, &cf, "k", 1, 1, &m, 1, t0);
    uv_run(&loop, UV_RUN_DEFAULT); /* the timer is the only active handle */
    assert_int_equal(c.due_calls, 1);
    assert_ptr_equal(c.last_due, g);
    assert_true(uv_hrtime() - t0 >= 3000000ull);
    assert_true(ig_batcher_ready(g, uv_hrtime()));
    ig_batcher_leave(&m);
    close_loop(&loop, &b);
}

static void test_leave_oldest_rearms_and_recycles(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ctx_t c = {0};
    ig_batcher_t b;
    ig_batcher_init(&b, &loop, on_due, &c);
    ig_batch_conf_t cf = conf(8, 2000);
    ig_batch_member_t m[2];
    memset(m, 0, sizeof(m));
    uint64_t t0 = uv_hrtime();
    ig_batch_group_t *g = ig_batcher_join(&b, 0, &cf, "k", 1, 1, &m[0], 1, t0);
    ig_batcher_join(&b, 0, &cf, "k", 1, 1, &m[1], 2, t0 + 1000000);
    ig_batcher_leave(&m[0]);
    assert_ptr_equal(g->members.head, &m[1].link);
    assert_int_equal(g->rows, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.due_calls, 1);
    ig_batcher_leave(&m[1]);
    ig_batcher_leave(&m[1]); /* no-op */
    assert_int_equal(b.ngroups, 0);
    /* A recycled group serves a new key. */
    ig_batch_member_t x;
    memset(&x, 0, sizeof(x));
    ig_batch_group_t *g2 = ig_batcher_join(&b, 2, &cf, "another", 7, 3, &x, 1, uv_hrtime());
    assert_ptr_equal(g2, g);
    assert_int_equal(g2->route, 2);
    assert_memory_equal(g2->key, "another", 7);
    ig_batcher_leave(&x);
    close_loop(&loop, &b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_same_group_other_key_other_group),
        cmocka_unit_test(test_ready_rules),
        cmocka_unit_test(test_take_respects_max_size_and_order),
        cmocka_unit_test(test_take_preferred_size_only),
        cmocka_unit_test(test_timer_fires_after_max_delay),
        cmocka_unit_test(test_leave_oldest_rearms_and_recycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
