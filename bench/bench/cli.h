/*
 * cli.h: argv helpers shared by the infergate-bench subcommands.
 *
 * Flags take their value as the next argument (`--duration 5`) or after `=`
 * (`--duration=5`). Every parser here fills `err` with a message that names
 * the flag, so main() can print it and exit 2. Nothing here allocates.
 */
#ifndef IG_BENCH_CLI_H
#define IG_BENCH_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes of every infergate-bench subcommand (DESIGN.md). */
#define IG_BENCH_EXIT_OK 0
#define IG_BENCH_EXIT_FAIL 1
#define IG_BENCH_EXIT_USAGE 2
#define IG_BENCH_EXIT_INTERRUPTED 130

/* Matches argv[*i] against flag `name` ("--duration"). Returns 1 and sets
 * *val (and advances *i past a separate value) when it matches, 0 when it
 * does not, or IG_EINVAL with `err` filled when the value is missing. */
int ig_cli_match(int argc, char **argv, int *i, const char *name, const char **val, char *err,
                 size_t errlen);

/* Decimal digits only, within [min, max]. 0 or IG_EINVAL naming `flag`. */
int ig_cli_uint(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                char *err, size_t errlen);

/* A non-negative decimal number ("2", "0.5"), within [min, max]. */
int ig_cli_number(const char *flag, const char *s, double min, double max, double *out, char *err,
                  size_t errlen);

/* A comma-separated list of integers in [min, max] ("1,2,4,8"), at most `cap`
 * values. Sets *n. 0 or IG_EINVAL. */
int ig_cli_uint_list(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     size_t cap, size_t *n, char *err, size_t errlen);

/* Splits `s` on blanks into at most `cap` words, written NUL-terminated into
 * `store` (of `storelen` bytes) and pointed to by `words`. No quoting: the
 * model's flags never need it. 0 or IG_ETOOLARGE naming `flag`. */
int ig_cli_split(const char *flag, const char *s, char *store, size_t storelen, char **words,
                 size_t cap, size_t *n, char *err, size_t errlen);

#endif
