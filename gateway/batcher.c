/*
 * batcher.c: batch groups, their readiness rules and their max_delay
 * timers. See batcher.h for the contract.
 */
#include "infergate/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "infergate/buf.h"

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
    ig_batch_group_t *g = b->spare;
    if (g) {
        b->spare = g->next;
    } else {
        g = ig_xcalloc(1, sizeof(*g));
        g->b = b;
        uv_timer_init(b->loop, &g->timer);
        g->timer.data = g;
        b->open_timers++;
    }
    g->next = b->groups;
    g->prev = NULL;
    if (b->groups)
        b->groups->prev = g;
    b->groups = g;
    b->ngroups++;
    return g;
}

static void group_put(ig_batch_group_t *g)
{
    ig_batcher_t *b = g->b;
    uv_timer_stop(&g->timer);
    if (g->prev)
        g->prev->next = g->next;
    else
        b->groups = g->next;
    if (g->next)
        g->next->prev = g->prev;
    b->ngroups--;
    g->head = g->tail = NULL;
    g->rows = g->count = 0;
    g->key_len = 0;
    g->next = b->spare;
    g->prev = NULL;
    b->spare = g;
}

void ig_batcher_dispose(ig_batcher_t *b)
{
    b->disposing = true;
    while (b->groups)
        group_put(b->groups);
    while (b->spare) {
        ig_batch_group_t *g = b->spare;
        b->spare = g->next;
        uv_close((uv_handle_t *)&g->timer, on_spare_closed);
    }
}

static uint64_t due_ns(const ig_batch_group_t *g)
{
    return g->head->enq_ns + g->conf->max_delay_us * 1000ull;
}

static void arm(ig_batch_group_t *g, uint64_t now_ns)
{
    if (!g->head || g->conf->max_delay_us == 0) {
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
    if (!g->head)
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
    ig_batch_group_t *g = b->groups;
    while (g && !key_eq(g, route, key, key_len, key_hash))
        g = g->next;
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
    m->next = NULL;
    m->prev = g->tail;
    if (g->tail)
        g->tail->next = m;
    else
        g->head = m;
    g->tail = m;
    g->rows += rows;
    g->count++;
    if (g->head == m)
        arm(g, now_ns);
    return g;
}

static void unlink_member(ig_batch_group_t *g, ig_batch_member_t *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        g->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        g->tail = m->prev;
    g->rows -= m->rows;
    g->count--;
    m->prev = m->next = NULL;
    m->group = NULL;
}

void ig_batcher_leave(ig_batch_member_t *m)
{
    ig_batch_group_t *g = m->group;
    if (!g)
        return;
    bool was_oldest = g->head == m;
    unlink_member(g, m);
    if (!g->head)
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
    if (!g->head)
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
    while (g->head && n < max_out) {
        ig_batch_member_t *m = g->head;
        if (n > 0 && rows + m->rows > limit)
            break;
        rows += m->rows;
        unlink_member(g, m);
        out[n++] = m;
        if (rows >= limit)
            break;
    }
    if (!g->head)
        group_put(g);
    else
        arm(g, now_ns);
    return n;
}
