/*
 * hist.c: log-linear histogram: 16 linear sub-buckets per power of two.
 */
#include "infergate/base/hist.h"

#include <string.h>

#define SUB_BITS 4
#define SUB (1u << SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - SUB_BITS;
    unsigned idx = (shift + 1) * SUB + (unsigned)((v >> shift) & (SUB - 1));
    return idx < IG_HIST_BUCKETS ? idx : IG_HIST_BUCKETS - 1;
}

uint64_t ig_hist_bucket_upper(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned shift = i / SUB - 1;
    uint64_t base = (uint64_t)(SUB + i % SUB) << shift;
    return base + ((1ull << shift) - 1);
}

void ig_hist_reset(ig_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void ig_hist_record(ig_hist_t *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void ig_hist_merge(ig_hist_t *dst, const ig_hist_t *src)
{
    for (unsigned i = 0; i < IG_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t ig_hist_quantile(const ig_hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)(h->n - 1)) + 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < IG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t up = ig_hist_bucket_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}
