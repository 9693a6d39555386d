/*
 * test_pending.c: the pending request's transition table (pending.h) and
 * its owner's pool.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "infergate/base/log.h"
#include "pending.h"

/* The transitions the request path takes, and no others. */
static const struct {
    ig_pending_state_t from, to;
} legal[] = {
    {P_FREE, P_FREE},       /* put after its call finished */
    {P_FREE, P_QUEUED},     /* admitted, waits */
    {P_FREE, P_UPSTREAM},   /* admitted, a slot at once */
    {P_QUEUED, P_FREE},     /* deadline, client gone, drain cut-off */
    {P_QUEUED, P_UPSTREAM}, /* dispatched alone */
    {P_QUEUED, P_BATCH},    /* dispatched with batch-mates */
    {P_UPSTREAM, P_FREE},   /* answered or failed */
    {P_UPSTREAM, P_ORPHAN}, /* client left after the call was written */
    {P_ORPHAN, P_FREE},     /* the model answered nobody */
    {P_BATCH, P_DETACHED},  /* answered, or left, while the call goes on */
    {P_BATCH, P_QUEUED},    /* a 4xx batch re-sent member by member */
    {P_DETACHED, P_FREE},   /* the batch call ended */
};

static bool is_legal(ig_pending_state_t a, ig_pending_state_t b)
{
    for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
        if (legal[i].from == a && legal[i].to == b)
            return true;
    return false;
}

static void test_table_is_exactly_the_documented_transitions(void **state)
{
    (void)state;
    for (int a = 0; a < P__COUNT; a++)
        for (int b = 0; b < P__COUNT; b++) {
            if (ig_pending_allowed((ig_pending_state_t)a, (ig_pending_state_t)b) !=
                is_legal((ig_pending_state_t)a, (ig_pending_state_t)b))
                fail_msg("%s -> %s: table says %d", ig_pending_state_name((ig_pending_state_t)a),
                         ig_pending_state_name((ig_pending_state_t)b),
                         ig_pending_allowed((ig_pending_state_t)a, (ig_pending_state_t)b));
        }
    assert_false(ig_pending_allowed(P__COUNT, P_FREE));
    assert_false(ig_pending_allowed(P_FREE, P__COUNT));
    assert_string_equal(ig_pending_state_name(P_DETACHED), "DETACHED");
}

/* Every state is reachable from FREE, and FREE from every state: no
 * request can be stranded. */
static void test_no_dead_ends(void **state)
{
    (void)state;
    unsigned reach = 1u << P_FREE;
    for (int round = 0; round < P__COUNT; round++)
        for (int a = 0; a < P__COUNT; a++)
            for (int b = 0; b < P__COUNT; b++)
                if ((reach & (1u << a)) &&
                    ig_pending_allowed((ig_pending_state_t)a, (ig_pending_state_t)b))
                    reach |= 1u << b;
    assert_int_equal(reach, (1u << P__COUNT) - 1);
    for (int a = 0; a < P__COUNT; a++) {
        unsigned seen = 1u << a;
        for (int round = 0; round < P__COUNT; round++)
            for (int x = 0; x < P__COUNT; x++)
                for (int b = 0; b < P__COUNT; b++)
                    if ((seen & (1u << x)) &&
                        ig_pending_allowed((ig_pending_state_t)x, (ig_pending_state_t)b))
                        seen |= 1u << b;
        if (!(seen & (1u << P_FREE)))
            fail_msg("%s cannot get back to FREE", ig_pending_state_name((ig_pending_state_t)a));
    }
}

static void close_loop(uv_loop_t *loop, ig_pending_pool_t *pool)
{
    for (ig_pending_t *p = pool->all; p; p = p->next_all)
        uv_close((uv_handle_t *)&p->deadline_timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    ig_pending_pool_dispose(pool);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_pool_recycles_and_walks_a_path(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ig_pending_pool_t pool;
    ig_pending_pool_init(&pool, &loop);
    ig_pending_t *p = ig_pending_get(&pool, NULL);
    assert_int_equal(p->state, P_FREE);
    ig_pending_to(p, P_QUEUED);
    ig_pending_to(p, P_BATCH);
    ig_pending_to(p, P_QUEUED); /* isolated */
    ig_pending_to(p, P_UPSTREAM);
    ig_pending_to(p, P_ORPHAN);
    ig_pending_put(&pool, p);
    assert_int_equal(p->state, P_FREE);
    ig_pending_t *q = ig_pending_get(&pool, NULL);
    assert_ptr_equal(q, p); /* recycled, not allocated */
    assert_null(q->req);
    assert_null(q->bcall);
    ig_pending_t *r = ig_pending_get(&pool, NULL);
    assert_ptr_not_equal(r, q);
    ig_pending_put(&pool, q);
    ig_pending_put(&pool, r);
    close_loop(&loop, &pool);
}

/* A transition outside the table stops the process (in a child here). */
static void test_illegal_transition_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ig_log_threshold = IG_LOG_OFF;
        uv_loop_t loop;
        uv_loop_init(&loop);
        ig_pending_pool_t pool;
        ig_pending_pool_init(&pool, &loop);
        ig_pending_t *p = ig_pending_get(&pool, NULL);
        ig_pending_to(p, P_QUEUED);
        ig_pending_to(p, P_BATCH);
        ig_pending_to(p, P_FREE); /* a batch member must be detached first */
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_exactly_the_documented_transitions),
        cmocka_unit_test(test_no_dead_ends),
        cmocka_unit_test(test_pool_recycles_and_walks_a_path),
        cmocka_unit_test(test_illegal_transition_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
