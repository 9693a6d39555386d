/*
 * bench.h: the subcommands of infergate-bench, each called by main() with
 * the arguments after its name. Each returns the process exit code: 0 ok,
 * 1 runtime failure, 2 usage error (message names the flag), 130 interrupted.
 */
#ifndef IG_BENCH_BENCH_H
#define IG_BENCH_BENCH_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "load.h"
#include "peers.h"

int ig_bench_load(int argc, char **argv);
int ig_bench_compare(int argc, char **argv);
int ig_bench_sweep(int argc, char **argv);
int ig_bench_codec(int argc, char **argv);
int ig_bench_overhead(int argc, char **argv);

/* Flags shared by the subcommands that send requests: --method, --body,
 * --body-file, --header. Returns 1 when argv[*i] was one of them, 0 when not,
 * IG_EINVAL with `err` filled. A body read from a file is heap memory that
 * *owned takes (freed by the caller). */
int ig_bench_request_flag(int argc, char **argv, int *i, ig_load_opts_t *o, char **owned, char *err,
                          size_t errlen);

/* The machine for reports: nproc and the CPU model line of /proc/cpuinfo,
 * as the line "machine: N CPUs, MODEL" on stdout, or as the object
 * "machine": {"nproc", "cpu"} added to `parent`. */
void ig_bench_machine_print(void);
void ig_bench_machine_json(cJSON *parent);

/* -h or --help anywhere in argv: prints `usage` on stdout and returns true. */
bool ig_bench_help(int argc, char **argv, const char *usage);

/* What `compare` and `sweep` have in common: the load sent through the
 * peers, the infergate-model behind them, the binaries and the temp dir. */
typedef struct {
    ig_load_opts_t load;
    char *owned_body; /* a --body-file's contents */
    char path[2048];
    char url[2200];
    const char *model_args;
    bool json;
    ig_bench_env_t env;
    bool method_set, path_set; /* seen while parsing */
} ig_bench_setup_t;

/* Defaults: ig_load_defaults with a 1 s warm-up, `model_args`, the binaries
 * next to infergate-bench. */
void ig_bench_setup_init(ig_bench_setup_t *b, const char *model_args);

/* The flags both take: --json, --keep-dir, the request flags, --model-args,
 * --connections, --duration, --warmup, --path, --gateway, --model. Returns 1
 * when argv[*i] was one of them, 0 when not, IG_EINVAL with `err` filled. */
int ig_bench_setup_flag(int argc, char **argv, int *i, ig_bench_setup_t *b, char *err,
                        size_t errlen);

/* After the flags: without --path or a body, POST a one-row KServe V1 iris
 * request to /v1/models/iris:predict; a body means POST (unless --method)
 * and Content-Type: application/json (unless --header gave one). */
void ig_bench_setup_finish(ig_bench_setup_t *b);

/* Frees what the flags allocated. */
void ig_bench_setup_dispose(ig_bench_setup_t *b);

/* The exit code of a subcommand whose run ended with `rc` (0 or an IG_E*);
 * on failure prints "infergate-bench CMD: ERR" (or that it was interrupted). */
int ig_bench_exit_code(const char *cmd, int rc, const char *err);

/* a / b, or NAN when either is NAN or b is not positive. */
double ig_bench_ratio(double a, double b);

/* Adds number `v` to `o`, or null when it is NAN or infinite. */
void ig_bench_json_number(cJSON *o, const char *k, double v);

/* ig_load_json of one run without its "url" member (the peers' URLs differ
 * only in a port chosen at run time). */
cJSON *ig_bench_load_json(const ig_load_opts_t *o, const ig_load_result_t *r);

#endif
