/*
 * log.h: JSON-lines logging to stderr.
 *
 * Every line is one JSON object: {"ts":"…","level":"info","msg":"…", …}.
 * IG_LOG checks the level before evaluating its arguments, so a filtered
 * line costs a compare. ig_log_fail is for why something failed,
 * ig_log_info for progress (curl's failf/infof split).
 */
#ifndef INFERGATE_LOG_H
#define INFERGATE_LOG_H

#include <stdbool.h>

typedef enum {
    IG_LOG_DEBUG = 0,
    IG_LOG_INFO = 1,
    IG_LOG_WARN = 2,
    IG_LOG_ERROR = 3,
    IG_LOG_OFF = 4,
} ig_log_level_t;

/* The process-wide threshold: the one piece of global state, set once at start-up. */
extern ig_log_level_t ig_log_threshold;

/* Parses "debug", "info", "warn", "error", "off". Returns 0 or IG_EINVAL. */
int ig_log_level_parse(const char *s, ig_log_level_t *out);
const char *ig_log_level_name(ig_log_level_t l);

/* Writes one line. `fields` is NULL or extra JSON members without braces,
 * e.g. "\"port\":8080"; `msg` is printf-formatted and JSON-escaped. */
void ig_log_write(ig_log_level_t level, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes one pre-built JSON object line (used by the access log). */
void ig_log_raw(const char *json_line, unsigned long len);

#define IG_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= ig_log_threshold)                                                           \
            ig_log_write((level), NULL, __VA_ARGS__);                                              \
    } while (0)

#define IG_LOGF(level, fields, ...)                                                                \
    do {                                                                                           \
        if ((level) >= ig_log_threshold)                                                           \
            ig_log_write((level), (fields), __VA_ARGS__);                                          \
    } while (0)

#define ig_log_debug(...) IG_LOG(IG_LOG_DEBUG, __VA_ARGS__)
#define ig_log_info(...) IG_LOG(IG_LOG_INFO, __VA_ARGS__)
#define ig_log_warn(...) IG_LOG(IG_LOG_WARN, __VA_ARGS__)
#define ig_log_fail(...) IG_LOG(IG_LOG_ERROR, __VA_ARGS__)

#endif
