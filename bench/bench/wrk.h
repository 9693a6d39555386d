/*
 * wrk.h: running wrk (the Debian package) against a peer, so that `compare`
 * can report an independent load generator's figures next to its own, in
 * the same run and against the same processes.
 */
#ifndef IG_BENCH_WRK_H
#define IG_BENCH_WRK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "load.h"
#include "peers.h"

typedef struct {
    double rps;
    double p50_ms, p99_ms; /* from --latency */
    uint64_t requests;
    uint64_t non_2xx;
    uint64_t socket_errors; /* connect + read + write + timeout */
    bool parsed;            /* Requests/sec and the percentiles were found */
} ig_wrk_result_t;

/* Parses wrk's text output (with --latency). 0, or IG_EPARSE when the
 * Requests/sec line or the 50%/99% lines are missing. */
int ig_wrk_parse(const char *text, ig_wrk_result_t *r);

/* Runs `wrk -t THREADS -c CONNS -d SECONDS --latency [-s SCRIPT] URL` with
 * o's connections, duration (rounded up to whole seconds), method, body and
 * headers (through a generated Lua script), output to `log_name` in the
 * env's dir. 0, or an IG_E* with `err` filled. */
int ig_wrk_run(const char *wrk, const ig_bench_env_t *env, const ig_load_opts_t *o,
               unsigned threads, const char *log_name, ig_wrk_result_t *r, char *err,
               size_t errlen);

#endif
