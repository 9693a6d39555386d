/*
 * metrics.h: counters, gauges, histograms and sliding windows for the
 * autoscaling signals; Prometheus text (0.0.4) and JSON rendering.
 *
 * Recording is an increment or two (no allocation, no formatting); all
 * formatting happens when /metrics or /autoscale is scraped. Single
 * threaded: called from the loop only.
 *
 * Metric names and labels are DESIGN.md's "Autoscaling signals" table.
 * Route labels are the routes' match patterns; requests that matched no
 * route use the route index IG_METRICS_NO_ROUTE and the label "none".
 */
#ifndef INFERGATE_METRICS_H
#define INFERGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"
#include "infergate/net/reason.h"

/* Reasons (the label of infergate_rejected_total and
 * infergate_upstream_errors_total) are the rejection table of net/reason.h. */

#define IG_METRICS_NO_ROUTE ((size_t)-1)

typedef struct ig_metrics ig_metrics_t;

/* `route_names` (borrowed, must outlive the metrics) label each route.
 * `window_s` is the sliding window of the load factor and the /autoscale
 * quantiles; `max_concurrency` the load factor's denominator. Never NULL. */
ig_metrics_t *ig_metrics_new(size_t nroutes, const char *const *route_names, uint32_t window_s,
                             uint32_t max_concurrency);
void ig_metrics_free(ig_metrics_t *m);

/* Marks when the gateway started serving. Until a full window has passed,
 * rates divide by the time since then (at least 1 s) rather than by
 * window_s, so the load factor is right soon after start. Optional: without
 * it, the first timestamp passed to any ig_metrics_* call is the start. */
void ig_metrics_start(ig_metrics_t *m, uint64_t now_us);

/* A request arrived on a route (arrival rate of the load factor). */
void ig_metrics_arrival(ig_metrics_t *m, size_t route, uint64_t now_us);

/* A response finished: infergate_requests_total{route,code} and
 * infergate_request_duration_seconds{route}, plus the window's latency
 * quantiles. */
void ig_metrics_request_done(ig_metrics_t *m, size_t route, int status, uint64_t duration_us,
                             uint64_t now_us);

/* A request was refused by the gateway: infergate_rejected_total{route,reason}. */
void ig_metrics_rejected(ig_metrics_t *m, size_t route, ig_reason_t reason);

/* A request left the queue for the model: infergate_queue_wait_seconds{route}. */
void ig_metrics_queue_wait(ig_metrics_t *m, size_t route, uint64_t wait_us);

/* A call to the model finished (success or not) after holding a
 * concurrency slot for `held_us`, carrying `rows` rows (1 for passthrough):
 * infergate_upstream_duration_seconds{route}, infergate_batch_size{route},
 * and the slot-time of the load factor. `requests` is how many client
 * requests rode on the call (the load factor counts time per request). */
void ig_metrics_upstream_call(ig_metrics_t *m, size_t route, uint64_t held_us, uint32_t rows,
                              uint32_t requests, uint64_t now_us);

/* infergate_upstream_errors_total{reason}. */
void ig_metrics_upstream_error(ig_metrics_t *m, ig_reason_t reason);

/* Gauges. */
void ig_metrics_set_queue_depth(ig_metrics_t *m, size_t route, uint64_t depth);
void ig_metrics_set_inflight(ig_metrics_t *m, uint64_t n);          /* requests in the gateway */
void ig_metrics_set_upstream_inflight(ig_metrics_t *m, uint64_t n); /* calls to the model */
void ig_metrics_set_ready(ig_metrics_t *m, bool ready);

/* infergate_load_factor over the window ending at now:
 * (arrivals / window_s) * (mean slot-time per request) / max_concurrency. */
double ig_metrics_load_factor(ig_metrics_t *m, uint64_t now_us);

/* Appends the Prometheus exposition (text format 0.0.4, accepted by
 * `promtool check metrics`). 0 or IG_ETOOLARGE. */
int ig_metrics_render_prometheus(ig_metrics_t *m, ig_buf_t *out, uint64_t now_us);

/* Appends the /autoscale JSON object: queue_depth, inflight, arrival_rate,
 * p50_ms, p95_ms, p99_ms, load_factor, ready. */
int ig_metrics_render_autoscale(ig_metrics_t *m, ig_buf_t *out, uint64_t now_us);

#endif
