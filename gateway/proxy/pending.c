/*
 * pending.c: the owner of a pending request's state (pending.h).
 */
#include "pending.h"

#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/log.h"

#define BIT(s) (1u << (s))

/* allowed[from]: the states `from` may go to. */
static const unsigned allowed[P__COUNT] = {
    [P_FREE] = BIT(P_FREE) | BIT(P_QUEUED) | BIT(P_UPSTREAM),
    [P_QUEUED] = BIT(P_FREE) | BIT(P_UPSTREAM) | BIT(P_BATCH),
    [P_UPSTREAM] = BIT(P_FREE) | BIT(P_ORPHAN),
    [P_ORPHAN] = BIT(P_FREE),
    [P_BATCH] = BIT(P_DETACHED) | BIT(P_QUEUED),
    [P_DETACHED] = BIT(P_FREE),
};

static const char *const names[P__COUNT] = {
#define IG_PENDING_NAME(s) #s,
    IG_PENDING_STATES(IG_PENDING_NAME)
#undef IG_PENDING_NAME
};

const char *ig_pending_state_name(ig_pending_state_t s)
{
    return (unsigned)s < P__COUNT ? names[s] : "?";
}

bool ig_pending_allowed(ig_pending_state_t from, ig_pending_state_t to)
{
    return (unsigned)from < P__COUNT && (unsigned)to < P__COUNT && (allowed[from] & BIT(to));
}

void ig_pending_to(ig_pending_t *p, ig_pending_state_t to)
{
    if (!ig_pending_allowed(p->state, to)) {
        ig_log_fail("internal error: pending request %s -> %s is not a transition",
                    ig_pending_state_name(p->state), ig_pending_state_name(to));
        abort();
    }
    p->state = to;
}

void ig_pending_pool_init(ig_pending_pool_t *pool, uv_loop_t *loop)
{
    memset(pool, 0, sizeof(*pool));
    pool->loop = loop;
}

void ig_pending_pool_dispose(ig_pending_pool_t *pool)
{
    ig_pending_t *p = pool->all;
    while (p) {
        ig_pending_t *n = p->next_all;
        ig_buf_dispose(&p->xff);
        ig_batch_part_dispose(&p->part);
        free(p);
        p = n;
    }
    pool->all = pool->free = NULL;
}

ig_pending_t *ig_pending_get(ig_pending_pool_t *pool, struct ig_gateway *gw)
{
    ig_pending_t *p = pool->free;
    if (p) {
        pool->free = p->next_free;
    } else {
        p = ig_xcalloc(1, sizeof(*p));
        uv_timer_init(pool->loop, &p->deadline_timer);
        p->deadline_timer.data = p;
        ig_buf_init(&p->xff, 4096);
        p->next_all = pool->all;
        pool->all = p;
    }
    p->gw = gw;
    p->next_free = NULL;
    p->req = NULL;
    p->state = P_FREE;
    p->started = false;
    p->batching = false;
    p->bcall = NULL;
    memset(&p->member, 0, sizeof(p->member));
    p->member.data = p;
    p->deadline_ns = p->queued_ns = p->dispatched_ns = p->head_ns = 0;
    memset(&p->call, 0, sizeof(p->call));
    p->call.data = p;
    p->item.data = p;
    return p;
}

void ig_pending_drop_req(ig_pending_t *p)
{
    if (p->req) {
        p->req->data = NULL;
        p->req->on_abort = NULL;
        p->req->on_writable = NULL;
    }
    p->req = NULL;
}

void ig_pending_put(ig_pending_pool_t *pool, ig_pending_t *p)
{
    uv_timer_stop(&p->deadline_timer);
    ig_batcher_leave(&p->member);
    ig_batch_part_dispose(&p->part);
    ig_pending_drop_req(p);
    ig_pending_to(p, P_FREE);
    p->next_free = pool->free;
    pool->free = p;
}
