/*
 * list.h: an intrusive doubly linked list.
 *
 * The queues and pools of the request path (admission queue, batch groups,
 * server connections, upstream connections and waiting calls, the example
 * model's calls) each embed an ig_link_t in their element and keep an
 * ig_list_t: O(1) append, prepend and removal from the middle, no
 * allocation. IG_LIST_ITEM turns a link back into its element.
 */
#ifndef INFERGATE_LIST_H
#define INFERGATE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ig_link {
    struct ig_link *prev, *next;
} ig_link_t;

typedef struct {
    ig_link_t *head, *tail;
} ig_list_t;

/* The element that holds `link` in its member `field`; NULL for NULL. */
#define IG_LIST_ITEM(link, type, field) ((type *)ig_list_item_((link), offsetof(type, field)))

static inline void *ig_list_item_(ig_link_t *link, size_t offset)
{
    return link ? (void *)((char *)link - offset) : NULL;
}

static inline void ig_list_push_back(ig_list_t *l, ig_link_t *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
}

static inline void ig_list_push_front(ig_list_t *l, ig_link_t *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
}

/* Unlinks `e`, which must be in `l`, and clears its links. */
static inline void ig_list_remove(ig_list_t *l, ig_link_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

/* Removes and returns the first link, or NULL when empty. */
static inline ig_link_t *ig_list_pop_front(ig_list_t *l)
{
    ig_link_t *e = l->head;
    if (e)
        ig_list_remove(l, e);
    return e;
}

/* Whether `e` (whose links are cleared whenever it is out of a list) is in `l`. */
static inline bool ig_list_contains(const ig_list_t *l, const ig_link_t *e)
{
    return e->prev || e->next || l->head == e;
}

#endif
