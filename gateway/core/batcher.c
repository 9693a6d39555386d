/*
 * batcher.c: batch groups, their readiness rules and their max_delay
 * timers. See batcher.h for the contract.
 */
#include "infergate/core/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"

static void on_group_timer(uv_timer_t *t);

static void on_spare_closed(uv_handle_t *h)
{
    ig_batch_group_t *g = h->data;
    ig_batcher_t *b = g->b;
    free(g->key);
    free(g);
    b->open_timers--;
}

void ig_batcher_init(ig_batcher_t *b, uv_loop_t *loop,
                     void (*on_due)(ig_batcher_t *b, ig_batch_group_t *g), void *data)
{
    memset(b, 0, sizeof(*b));
    b->loop = loop;
    b->on_due = on_due;
    b->data = data;
}

static ig_batch_group_t *group_get(ig_batcher_t *b)
{
    ig_batch_group_t *g = IG_LIST_ITEM(ig_list_pop_front(&b->spare), ig_batch_group_t, link);
    if (!g) {
        g = ig_xcalloc(1, sizeof(*g));
        g->b = b;
        uv_timer_init(b->loop, &g->timer);
        g->timer.data = g;
        b->open_timers++;
    }
    ig_list_push_front(&b->groups, &g->link);
    b->ngroups++;
    return g;
}

static void group_put(ig_batch_group_t *g)
{
    ig_batcher_t *b = g->b;
    uv_timer_stop(&g->timer);
    ig_list_remove(&b->groups, &g->link);
    b->ngroups--;
    g->members = (ig_list_t){0};
    g->rows = g->count = 0;
    g->key_len = 0;
    ig_list_push_front(&b->spare, &g->link);
}

void ig_batcher_dispose(ig_batcher_t *b)
{
    b->disposing = true;
    while (b->groups.head)
        group_put(IG_LIST_ITEM(b->groups.head, ig_batch_group_t, link));
    ig_link_t *l;
    while ((l = ig_list_pop_front(&b->spare)) != NULL) {
        ig_batch_group_t *g = IG_LIST_ITEM(l, ig_batch_group_t, link);
        uv_close((uv_handle_t *)&g->timer, on_spare_closed);
    }
}

/* The group's oldest member, or NULL. */
static ig_batch_member_t *oldest(const ig_batch_group_t *g)
{
    return IG_LIST_ITEM(g->members.head, ig_batch_member_t, link);
}

static uint64_t due_ns(const ig_batch_group_t *g)
{
    return oldest(g)->enq_ns + g->conf->max_delay_us * 1000ull;
}

static void arm(ig_batch_group_t *g, uint64_t now_ns)
{
    if (!g->members.head || g->conf->max_delay_us == 0) {
        uv_timer_stop(&g->timer);
        return;
    }
    uint64_t due = due_ns(g);
    uint64_t ms = due > now_ns ? (due - now_ns + 999999) / 1000000 : 0;
    uv_timer_start(&g->timer, on_group_timer, ms, 0);
}

static void on_group_timer(uv_timer_t *t)
{
    ig_batch_group_t *g = t->data;
    uint64_t now = uv_hrtime();
    if (!g->members.head)
        return;
    /* libuv's clock is cached per loop turn and rounds to milliseconds:
     * the timer may fire a little early. */
    if (now < due_ns(g)) {
        arm(g, now);
        return;
    }
    g->b->on_due(g->b, g);
}

static bool key_eq(const ig_batch_group_t *g, size_t route, const char *key, size_t len,
                   uint64_t hash)
{
    return g->route == route && g->key_hash == hash && g->key_len == len &&
           memcmp(g->key, key, len) == 0;
}

ig_batch_group_t *ig_batcher_join(ig_batcher_t *b, size_t route, const ig_batch_conf_t *conf,
                                  const char *key, size_t key_len, uint64_t key_hash,
                                  ig_batch_member_t *m, uint32_t rows, uint64_t now_ns)
{
    ig_batch_group_t *g = NULL;
    for (ig_link_t *l = b->groups.head; l && !g; l = l->next) {
        ig_batch_group_t *x = IG_LIST_ITEM(l, ig_batch_group_t, link);
        if (key_eq(x, route, key, key_len, key_hash))
            g = x;
    }
    if (!g) {
        g = group_get(b);
        g->route = route;
        g->conf = conf;
        g->key_hash = key_hash;
        if (g->key_cap < key_len + 1) {
            g->key = ig_xrealloc(g->key, key_len + 1);
            g->key_cap = key_len + 1;
        }
        memcpy(g->key, key, key_len);
        g->key[key_len] = '\0';
        g->key_len = key_len;
    }
    m->group = g;
    m->rows = rows;
    m->enq_ns = now_ns;
    ig_list_push_back(&g->members, &m->link);
    g->rows += rows;
    g->count++;
    if (oldest(g) == m)
        arm(g, now_ns);
    return g;
}

static void unlink_member(ig_batch_group_t *g, ig_batch_member_t *m)
{
    ig_list_remove(&g->members, &m->link);
    g->rows -= m->rows;
    g->count--;
    m->group = NULL;
}

void ig_batcher_leave(ig_batch_member_t *m)
{
    ig_batch_group_t *g = m->group;
    if (!g)
        return;
    bool was_oldest = oldest(g) == m;
    unlink_member(g, m);
    if (!g->members.head)
        group_put(g);
    else if (was_oldest)
        arm(g, uv_hrtime());
}

/* The largest preferred size <= rows, or 0. */
static uint32_t preferred_reached(const ig_batch_conf_t *c, uint32_t rows)
{
    uint32_t best = 0;
    for (size_t i = 0; i < c->n_preferred; i++)
        if (c->preferred_sizes[i] <= rows && c->preferred_sizes[i] > best)
            best = c->preferred_sizes[i];
    return best;
}

static bool full_or_late(const ig_batch_group_t *g, uint64_t now_ns)
{
    const ig_batch_conf_t *c = g->conf;
    return g->rows >= c->max_size || c->max_delay_us == 0 || now_ns >= due_ns(g);
}

bool ig_batcher_ready(const ig_batch_group_t *g, uint64_t now_ns)
{
    if (!g->members.head)
        return false;
    return full_or_late(g, now_ns) || preferred_reached(g->conf, g->rows) > 0;
}

size_t ig_batcher_take(ig_batch_group_t *g, uint64_t now_ns, ig_batch_member_t **out,
                       size_t max_out)
{
    const ig_batch_conf_t *c = g->conf;
    uint32_t limit = c->max_size;
    if (!full_or_late(g, now_ns)) {
        uint32_t pref = preferred_reached(c, g->rows);
        if (pref > 0)
            limit = pref;
    }
    size_t n = 0;
    uint32_t rows = 0;
    ig_batch_member_t *m;
    while ((m = oldest(g)) != NULL && n < max_out) {
        if (n > 0 && rows + m->rows > limit)
            break;
        rows += m->rows;
        unlink_member(g, m);
        out[n++] = m;
        if (rows >= limit)
            break;
    }
    if (!g->members.head)
        group_put(g);
    else
        arm(g, now_ns);
    return n;
}
