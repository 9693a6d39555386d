/*
 * opts.c: parses the infergate-model command line.
 *
 * Hand-written rather than getopt_long so that every message names the flag
 * and its value the same way, and so that numbers are checked strictly
 * (digits only, bounded): a typo must fail, not become 0.
 */
#include "opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"

/* Upper bound for every numeric flag: an hour in microseconds, and far more
 * calls or instances than a test or benchmark can use. */
#define MAX_VALUE 3600000000ULL

static const char usage[] =
    "usage: infergate-model [flags]\n"
    "\n"
    "Example model server: an iris classifier behind KServe V1 and Open Inference\n"
    "Protocol V2, with a synthetic accelerator cost model and fault injection.\n"
    "\n"
    "  --listen ADDR            address to listen on (default 127.0.0.1:8081; port 0 picks one)\n"
    "  --name NAME              model name served (default iris)\n"
    "  --cost-base-us N         each inference call takes N us of model time (default 0)\n"
    "  --cost-per-row-us N      plus N us per row (default 0)\n"
    "  --max-concurrency N      model instances; calls beyond wait FIFO (0 = unlimited, default "
    "1)\n"
    "  --delay-ms N             extra delay added to every inference call (default 0)\n"
    "  --fail-every N           every Nth inference call answers 500 (default off)\n"
    "  --crash-after N          after N completed inference calls, the next exits the process\n"
    "                           with status 3 without answering (default off)\n"
    "  --hang-after N           inference calls after the Nth are never answered (default off)\n"
    "  --not-ready-ms N         readiness endpoints answer 503 for the first N ms (default 0)\n"
    "  --port-file PATH         write the bound port (decimal + newline) once listening\n"
    "  --log-level L            debug|info|warn|error|off (default info)\n"
    "  --quiet                  no per-call log lines\n"
    "  --short-batch-answers    a V1 call with more than one row is answered with one\n"
    "                           prediction too few (tests a gateway's count check)\n"
    "  -h, --help               this text\n"
    "  --version                print the version\n";

const char *ig_opts_usage(void)
{
    return usage;
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t *out, char *err,
                     size_t errlen)
{
    unsigned long long v;
    char *end;

    if (*s < '0' || *s > '9')
        return ig_error_fmt(err, errlen, IG_EINVAL, "%s: '%s' is not a non-negative integer", flag,
                            s);
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0')
        return ig_error_fmt(err, errlen, IG_EINVAL, "%s: '%s' is not a non-negative integer", flag,
                            s);
    if (errno == ERANGE || v > MAX_VALUE)
        return ig_error_fmt(err, errlen, IG_EINVAL, "%s: %s is too large (at most %llu)", flag, s,
                            MAX_VALUE);
    if (v < min)
        return ig_error_fmt(err, errlen, IG_EINVAL, "%s: %s is too small (at least %llu)", flag, s,
                            (unsigned long long)min);
    *out = v;
    return 0;
}

static int check_name(const char *s, char *err, size_t errlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return ig_error_fmt(err, errlen, IG_EINVAL, "--name: must be 1 to 64 characters");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "--name: '%s' may only contain letters, digits, '.', '_' and '-'",
                                s);
    }
    return 0;
}

typedef enum {
    F_LISTEN,
    F_NAME,
    F_COST_BASE,
    F_COST_ROW,
    F_MAX_CONC,
    F_DELAY,
    F_FAIL_EVERY,
    F_CRASH_AFTER,
    F_HANG_AFTER,
    F_NOT_READY,
    F_PORT_FILE,
    F_LOG_LEVEL,
} flag_id_t;

static const struct {
    const char *name;
    flag_id_t id;
} value_flags[] = {
    {"--listen", F_LISTEN},
    {"--name", F_NAME},
    {"--cost-base-us", F_COST_BASE},
    {"--cost-per-row-us", F_COST_ROW},
    {"--max-concurrency", F_MAX_CONC},
    {"--delay-ms", F_DELAY},
    {"--fail-every", F_FAIL_EVERY},
    {"--crash-after", F_CRASH_AFTER},
    {"--hang-after", F_HANG_AFTER},
    {"--not-ready-ms", F_NOT_READY},
    {"--port-file", F_PORT_FILE},
    {"--log-level", F_LOG_LEVEL},
};

static int apply(ig_opts_t *o, flag_id_t id, const char *flag, const char *v, char *err,
                 size_t errlen)
{
    switch (id) {
    case F_LISTEN:
        if (*v == '\0')
            return ig_error_fmt(err, errlen, IG_EINVAL, "%s: empty address", flag);
        o->listen = v;
        return 0;
    case F_NAME:
        if (check_name(v, err, errlen) < 0)
            return IG_EINVAL;
        o->name = v;
        return 0;
    case F_COST_BASE:
        return parse_u64(flag, v, 0, &o->cost_base_us, err, errlen);
    case F_COST_ROW:
        return parse_u64(flag, v, 0, &o->cost_per_row_us, err, errlen);
    case F_MAX_CONC:
        /* Each instance costs a little memory up front; 100000 is far beyond
         * any sensible simulation. */
        if (parse_u64(flag, v, 0, &o->max_concurrency, err, errlen) < 0)
            return IG_EINVAL;
        if (o->max_concurrency > 100000)
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "%s: %s is too large (at most 100000; 0 = unlimited)", flag, v);
        return 0;
    case F_DELAY:
        return parse_u64(flag, v, 0, &o->delay_ms, err, errlen);
    case F_FAIL_EVERY:
        return parse_u64(flag, v, 1, &o->fail_every, err, errlen);
    case F_CRASH_AFTER:
        return parse_u64(flag, v, 0, &o->crash_after, err, errlen);
    case F_HANG_AFTER:
        return parse_u64(flag, v, 0, &o->hang_after, err, errlen);
    case F_NOT_READY:
        return parse_u64(flag, v, 0, &o->not_ready_ms, err, errlen);
    case F_PORT_FILE:
        if (*v == '\0')
            return ig_error_fmt(err, errlen, IG_EINVAL, "%s: empty path", flag);
        o->port_file = v;
        return 0;
    case F_LOG_LEVEL:
        if (ig_log_level_parse(v, &o->log_level) < 0)
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "%s: '%s' is not one of debug, info, warn, error, off", flag, v);
        return 0;
    }
    return ig_error_fmt(err, errlen, IG_EINVAL, "%s: unhandled flag", flag);
}

int ig_opts_parse(int argc, char **argv, ig_opts_t *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->action = IG_OPTS_RUN;
    o->listen = "127.0.0.1:8081";
    o->name = "iris";
    o->max_concurrency = 1;
    o->crash_after = IG_OPTS_OFF;
    o->hang_after = IG_OPTS_OFF;
    o->log_level = IG_LOG_INFO;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        bool found = false;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            o->action = IG_OPTS_HELP;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            o->action = IG_OPTS_VERSION;
            return 0;
        }
        if (strcmp(arg, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        if (eq && nlen == strlen("--quiet") && strncmp(arg, "--quiet", nlen) == 0)
            return ig_error_fmt(err, errlen, IG_EINVAL, "--quiet: takes no value");
        if (strcmp(arg, "--short-batch-answers") == 0) {
            o->short_batch_answers = true;
            continue;
        }
        if (eq && nlen == strlen("--short-batch-answers") &&
            strncmp(arg, "--short-batch-answers", nlen) == 0)
            return ig_error_fmt(err, errlen, IG_EINVAL, "--short-batch-answers: takes no value");
        for (size_t f = 0; f < sizeof(value_flags) / sizeof(value_flags[0]); f++) {
            const char *name = value_flags[f].name;
            const char *v;
            if (strlen(name) != nlen || strncmp(arg, name, nlen) != 0)
                continue;
            found = true;
            if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                return ig_error_fmt(err, errlen, IG_EINVAL, "%s: missing value", name);
            }
            if (apply(o, value_flags[f].id, name, v, err, errlen) < 0)
                return IG_EINVAL;
            break;
        }
        if (!found) {
            if (arg[0] == '-')
                return ig_error_fmt(err, errlen, IG_EINVAL, "%.*s: unknown flag (see --help)",
                                    (int)nlen, arg);
            return ig_error_fmt(err, errlen, IG_EINVAL, "'%s': unexpected argument (see --help)",
                                arg);
        }
    }
    return 0;
}
