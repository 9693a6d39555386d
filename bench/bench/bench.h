/*
 * bench.h: the subcommands of infergate-bench, each called by main() with
 * the arguments after its name. Each returns the process exit code: 0 ok,
 * 1 runtime failure, 2 usage error (message names the flag), 130 interrupted.
 */
#ifndef IG_BENCH_BENCH_H
#define IG_BENCH_BENCH_H

#include <stddef.h>

#include "load.h"

int ig_bench_load(int argc, char **argv);
int ig_bench_compare(int argc, char **argv);
int ig_bench_sweep(int argc, char **argv);

/* Flags shared by the subcommands that send requests: --method, --body,
 * --body-file, --header. Returns 1 when argv[*i] was one of them, 0 when not,
 * IG_EINVAL with `err` filled. A body read from a file is heap memory that
 * *owned takes (freed by the caller). */
int ig_bench_request_flag(int argc, char **argv, int *i, ig_load_opts_t *o, char **owned, char *err,
                          size_t errlen);

/* nproc and the CPU model line from /proc/cpuinfo, for reports. */
void ig_bench_machine(int *nproc, char *cpu, size_t len);

#endif
