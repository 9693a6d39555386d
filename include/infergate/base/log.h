/*
 * log.h: JSON-lines logging to stderr.
 *
 * Every line is one JSON object: {"ts":"…","level":"info","msg":"…", …}.
 * IG_LOG checks the level before evaluating its arguments, so a filtered
 * line costs a compare. ig_log_fail is for why something failed,
 * ig_log_info for progress (curl's failf/infof split).
 *
 * It also owns redaction, what must never reach a log line, an error
 * message or a printed configuration: ig_log_redact_url for the user info
 * of a URL, ig_log_scrub for a credential a peer may quote back. Every
 * module that prints a URL or a peer's message goes through these two.
 */
#ifndef INFERGATE_LOG_H
#define INFERGATE_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

/* What stands in for a secret wherever one would have been printed. */
#define IG_LOG_REDACTED "<redacted>"

/* A heap copy of `url` with the user info of its authority ("user:password"
 * in "http://user:password@host:8081/p") replaced by IG_LOG_REDACTED:
 * "http://<redacted>@host:8081/p". The authority starts after "://" and ends
 * at the first '/', '?' or '#' (RFC 3986); the user info ends at its last
 * '@', as the configuration's URL check reads it. Two invalid forms people
 * still write are redacted too: a string without "://" is read as starting
 * with its authority ("user:pw@host:8081"), and when the authority cannot be
 * host[:port] ("http://user:pa/ss@host": a '/', '?' or '#' in the password)
 * the user info ends at the last '@' of the string. Otherwise, without '@'
 * in the authority, the copy is unchanged. The user name goes too: it is
 * often a key id or a token. Never
 * returns NULL (out of memory aborts); the caller frees the result. */
char *ig_log_redact_url(const char *url);

/* Replaces, in place, every occurrence of `secret` in the NUL-terminated
 * `text` (a buffer of `cap` bytes) with IG_LOG_REDACTED, cutting the result
 * to fit. When `text` fills `cap` (snprintf cut it short), a tail of it
 * that is the first 4 or more bytes of `secret` is cut off too. For
 * messages that quote a peer, which may echo a credential that was sent to
 * it. A NULL or empty `secret`, or `cap` 0, changes nothing. Returns how
 * many occurrences were replaced. */
size_t ig_log_scrub(char *text, size_t cap, const char *secret);

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
