/*
 * slice.h: {base, len} views of bytes that never own them.
 */
#ifndef INFERGATE_SLICE_H
#define INFERGATE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *base;
    size_t len;
} ig_slice_t;

#define IG_SLICE_LIT(s) ((ig_slice_t){(s), sizeof(s) - 1})

static inline ig_slice_t ig_slice(const char *base, size_t len)
{
    return (ig_slice_t){base, len};
}

static inline ig_slice_t ig_slice_cstr(const char *s)
{
    return (ig_slice_t){s, s ? strlen(s) : 0};
}

static inline bool ig_slice_eq(ig_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.base, lit, n) == 0;
}

/* ASCII case-insensitive comparison, for header names and tokens. */
static inline bool ig_slice_ieq(ig_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && strncasecmp(a.base, lit, n) == 0;
}

#endif
