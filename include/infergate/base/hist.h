/*
 * hist.h: fixed-bucket latency/size histograms, shared by the gateway's
 * metrics and infergate-bench.
 *
 * Buckets are log-spaced (about 4% relative error), recording is one
 * increment, and quantiles come from the bucket counts. No allocation.
 */
#ifndef INFERGATE_HIST_H
#define INFERGATE_HIST_H

#include <stdint.h>

/* Values from 1 to ~2^40 (units are the caller's: microseconds, rows, …). */
#define IG_HIST_BUCKETS 704

typedef struct {
    uint64_t counts[IG_HIST_BUCKETS];
    uint64_t n;
    uint64_t sum;
    uint64_t max;
} ig_hist_t;

void ig_hist_reset(ig_hist_t *h);
void ig_hist_record(ig_hist_t *h, uint64_t v);
/* Adds every count of `src` into `dst`. */
void ig_hist_merge(ig_hist_t *dst, const ig_hist_t *src);
/* The value at quantile q (0..1), 0 when empty. */
uint64_t ig_hist_quantile(const ig_hist_t *h, double q);
/* Upper bound of bucket i. */
uint64_t ig_hist_bucket_upper(unsigned i);

#endif
