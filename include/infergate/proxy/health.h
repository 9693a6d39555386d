/*
 * health.h: readiness probing of the model.
 *
 * GET upstream.ready_path every 100 ms until the model first answers 2xx
 * (start-up is when readiness matters most), then every
 * upstream.probe_interval_ms. Probes use the upstream pool but not a
 * concurrency slot: they are not inference calls.
 */
#ifndef INFERGATE_PROXY_HEALTH_H
#define INFERGATE_PROXY_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/net/upstream.h"

typedef struct ig_health ig_health_t;

/* Called when the model's readiness changes. */
typedef void (*ig_health_cb)(void *ud);

/* Starts probing `ready_path` through `upstream` (borrowed). */
ig_health_t *ig_health_new(uv_loop_t *loop, ig_upstream_t *upstream, const char *ready_path,
                           uint64_t interval_ms, uint64_t probe_timeout_ms, ig_health_cb on_change,
                           void *ud);
/* No more probes; a probe in flight ends without scheduling another. */
void ig_health_stop(ig_health_t *h);
/* Cancels a probe in flight, closes the timer (the loop must run
 * afterwards) and frees the prober. Before the upstream pool is freed. */
void ig_health_free(ig_health_t *h);

/* The last probe's verdict. */
bool ig_health_upstream_ready(const ig_health_t *h);
/* Why the last probe failed ("" when it did not). */
const char *ig_health_last_error(const ig_health_t *h);

#endif
