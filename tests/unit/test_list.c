/*
 * test_list.c: the intrusive list of list.h: order, removal anywhere,
 * membership, and IG_LIST_ITEM back to the element.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "infergate/base/list.h"

typedef struct {
    int id;
    ig_link_t link;
} item_t;

/* The ids from head to tail, checked against the links both ways. */
static void expect_ids(const ig_list_t *l, const int *ids, size_t n)
{
    size_t i = 0;
    const ig_link_t *prev = NULL;
    for (ig_link_t *e = l->head; e; e = e->next, i++) {
        assert_true(i < n);
        assert_ptr_equal(e->prev, prev);
        assert_int_equal(IG_LIST_ITEM(e, item_t, link)->id, ids[i]);
        prev = e;
    }
    assert_int_equal(i, n);
    assert_ptr_equal(l->tail, prev);
}

static void test_order_and_removal(void **state)
{
    (void)state;
    item_t it[5];
    ig_list_t l = {0};
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        it[i].link = (ig_link_t){0};
    }
    expect_ids(&l, NULL, 0);
    ig_list_push_back(&l, &it[1].link);
    ig_list_push_back(&l, &it[2].link);
    ig_list_push_front(&l, &it[0].link);
    ig_list_push_back(&l, &it[3].link);
    expect_ids(&l, (int[]){0, 1, 2, 3}, 4);

    ig_list_remove(&l, &it[2].link); /* middle */
    expect_ids(&l, (int[]){0, 1, 3}, 3);
    assert_false(ig_list_contains(&l, &it[2].link));
    ig_list_remove(&l, &it[3].link); /* tail */
    expect_ids(&l, (int[]){0, 1}, 2);
    ig_list_remove(&l, &it[0].link); /* head */
    expect_ids(&l, (int[]){1}, 1);
    assert_true(ig_list_contains(&l, &it[1].link)); /* alone: no links, but the head */
    assert_false(ig_list_contains(&l, &it[4].link));

    assert_ptr_equal(ig_list_pop_front(&l), &it[1].link);
    expect_ids(&l, NULL, 0);
    assert_null(ig_list_pop_front(&l));
    assert_null(IG_LIST_ITEM(l.head, item_t, link));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
