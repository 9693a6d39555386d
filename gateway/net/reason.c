/*
 * reason.c: lookups in the rejection table (reason.h).
 */
#include "infergate/net/reason.h"

#include <string.h>

#include "infergate/base/error.h"

static const struct {
    const char *name;
    int status;
    unsigned flags;
} table[IG_REASON__COUNT] = {
#define IG_REASON_ROW(id, str, st, fl) {str, st, fl},
    IG_REASON_TABLE(IG_REASON_ROW)
#undef IG_REASON_ROW
};

const char *ig_reason_name(ig_reason_t r)
{
    return (unsigned)r < IG_REASON__COUNT ? table[r].name : "unknown";
}

int ig_reason_status(ig_reason_t r)
{
    return (unsigned)r < IG_REASON__COUNT ? table[r].status : 500;
}

unsigned ig_reason_flags(ig_reason_t r)
{
    return (unsigned)r < IG_REASON__COUNT ? table[r].flags : 0;
}

ig_reason_t ig_reason_parse(const char *s, size_t len)
{
    if (!s)
        return IG_REASON__COUNT;
    for (unsigned i = 0; i < IG_REASON__COUNT; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, s, len) == 0)
            return (ig_reason_t)i;
    return IG_REASON__COUNT;
}

ig_reason_t ig_reason_of_upstream_error(int err)
{
    switch (err) {
    case IG_ETIMEDOUT:
        return IG_REASON_UPSTREAM_TIMEOUT;
    case IG_EPROTO:
        return IG_REASON_BAD_RESPONSE;
    case IG_ECANCELED:
        return IG_REASON_DRAINING;
    default:
        return IG_REASON_UPSTREAM_UNAVAILABLE;
    }
}
