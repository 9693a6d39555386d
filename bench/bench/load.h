/*
 * load.h: the load engine of infergate-bench, shared by `load`, `compare`
 * and `sweep`.
 *
 * One libuv loop drives keep-alive HTTP/1.1 traffic through the project's
 * upstream pool (include/infergate/net/upstream.h) with one pool connection per
 * simulated client connection. Two modes:
 *
 * - closed loop (rate 0): each connection sends its next request as soon as
 *   the previous response ended; latency runs from the actual send;
 * - open loop (rate R): requests are due at fixed intervals 1/R whatever the
 *   server does, and latency runs from the *intended* send time, so a stalled
 *   server shows up in the percentiles instead of silently slowing the
 *   client down (coordinated omission).
 *
 * Every request that is sent ends as exactly one response or one error, so
 * `sent == responses + errors` holds in every result.
 */
#ifndef IG_BENCH_LOAD_H
#define IG_BENCH_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "infergate/base/hist.h"
#include "infergate/net/server.h"
#include "infergate/base/slice.h"

#define IG_LOAD_MAX_HEADERS 32

typedef struct {
    const char *url;    /* http://host:port[/path[?query]] */
    const char *method; /* "GET", "POST", … */
    ig_slice_t body;    /* the caller's bytes, kept valid during the run */
    ig_header_t headers[IG_LOAD_MAX_HEADERS];
    size_t nheaders;
    unsigned connections;
    double duration_s;   /* measured time; used when requests is 0 */
    uint64_t requests;   /* stop after this many requests (0: by duration) */
    double rate;         /* requests per second (open loop); 0: closed loop */
    double warmup_s;     /* traffic before measuring, not counted */
    uint64_t timeout_ms; /* per request, from send to the last response byte */
    pid_t rss_pid;       /* > 0: sample VmRSS of this process and its children */
    /* > 0: open this many connections, one request each, then keep them idle
     * and sample RSS (memory per idle connection); no load phase. */
    unsigned idle_connections;
} ig_load_opts_t;

/* Errors by kind. `backlog` counts open-loop requests that were due while
 * IG_LOAD_MAX_BACKLOG others were still unanswered; they are never sent. */
typedef struct {
    uint64_t connect, reset, timeout, protocol, backlog, canceled;
} ig_load_errors_t;

#define IG_LOAD_MAX_BACKLOG 100000

typedef struct {
    uint64_t sent;
    uint64_t responses;
    uint64_t by_status[600]; /* index: HTTP status */
    ig_load_errors_t errors;
    uint64_t errors_total;
    double elapsed_s;                   /* measure start to the last completion */
    double rps;                         /* responses / elapsed_s */
    ig_hist_t latency;                  /* microseconds */
    uint64_t rss_before_kb, rss_end_kb; /* 0 when not sampled */
    unsigned connections_open;          /* pool connections open when RSS was sampled at the end */
    bool interrupted;                   /* stopped early by SIGINT/SIGTERM */
} ig_load_result_t;

/* Fills `o` with the defaults (GET, 64 connections, 10 s, closed loop,
 * 30 s timeout). */
void ig_load_defaults(ig_load_opts_t *o);

/* Runs one load on a fresh loop and fills `r`. Returns 0 (even when requests
 * failed: see r->errors), or IG_EINVAL / IG_EADDR with `err` filled when the
 * options are unusable. Stops early, with r->interrupted, once
 * ig_bench_interrupted() (procs.h) is true. */
int ig_load_run(const ig_load_opts_t *o, ig_load_result_t *r, char *err, size_t errlen);

/* Adds a "Name: value" header given on the command line to `o`; the string
 * must outlive `o`. Refuses headers the pool writes itself (Host,
 * Content-Length, Connection, Transfer-Encoding). 0 or IG_EINVAL. */
int ig_load_add_header(ig_load_opts_t *o, const char *kv, char *err, size_t errlen);

/* Sets (or keeps) a Content-Type header: added only when none is present. */
void ig_load_default_content_type(ig_load_opts_t *o, const char *type);

/* Prints a human summary of `r` to stdout. */
void ig_load_print(const ig_load_opts_t *o, const ig_load_result_t *r);

/* Latency quantile in milliseconds. */
double ig_load_ms(const ig_load_result_t *r, double q);

/* Returns r as a new cJSON object (cJSON *, declared void * to keep cJSON out
 * of this header). */
void *ig_load_json(const ig_load_opts_t *o, const ig_load_result_t *r);

#endif
