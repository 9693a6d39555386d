/*
 * opts.h: the command line of infergate-model.
 *
 * Parsing is pure (no I/O, no exit) so it can be unit-tested; main.c prints
 * the message and exits 2 on failure. Every error names the flag.
 */
#ifndef INFERGATE_MODEL_OPTS_H
#define INFERGATE_MODEL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/log.h"

/* Value of a count flag that was not given: the fault is off. */
#define IG_OPTS_OFF UINT64_MAX

typedef enum {
    IG_OPTS_RUN = 0,
    IG_OPTS_HELP,
    IG_OPTS_VERSION,
} ig_opts_action_t;

typedef struct {
    ig_opts_action_t action;
    const char *listen; /* borrowed from argv or a literal */
    const char *name;   /* model name; [A-Za-z0-9._-]{1,64} */
    uint64_t cost_base_us;
    uint64_t cost_per_row_us;
    uint64_t max_concurrency; /* 0: unlimited */
    uint64_t delay_ms;
    uint64_t fail_every;  /* 0: off */
    uint64_t crash_after; /* IG_OPTS_OFF: off */
    uint64_t hang_after;  /* IG_OPTS_OFF: off */
    uint64_t not_ready_ms;
    const char *port_file; /* NULL: none */
    ig_log_level_t log_level;
    bool quiet;
    bool short_batch_answers; /* V1 answers to multi-row calls lack one prediction */
} ig_opts_t;

/* Fills `o` with the defaults, then applies argv[1..argc). Flags take their
 * value as the next argument or after '=' (--name=iris). Returns 0, or
 * IG_EINVAL with a message naming the flag in `err`. */
int ig_opts_parse(int argc, char **argv, ig_opts_t *o, char *err, size_t errlen);

/* The --help text. */
const char *ig_opts_usage(void);

#endif
