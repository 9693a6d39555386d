/*
 * error.h: the one list of infergate error codes.
 *
 * Every function that can fail returns int: 0 on success, or a negative IG_E*
 * code from the X-macro list below. ig_strerror() turns a code into a short
 * English sentence. libuv, libcurl and llhttp codes are translated into this
 * list in exactly one place each (ig_error_from_uv() here; the others in the
 * modules that own those libraries).
 *
 * Functions that explain a failure take a caller's (char *err, size_t errlen)
 * buffer; ig_error_fmt() is the one helper that fills it and returns the code,
 * so that `return ig_error_fmt(err, errlen, IG_EINVAL, "...", ...);` is a
 * single statement everywhere.
 */
#ifndef INFERGATE_ERROR_H
#define INFERGATE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#define IG_ERRNO_MAP(X)                                                                            \
    X(EAGAIN, "need more input")                                                                   \
    X(ENOMEM, "out of memory")                                                                     \
    X(EINVAL, "invalid argument")                                                                  \
    X(ETOOLARGE, "value exceeds its configured limit")                                             \
    X(ENOTFOUND, "not found")                                                                      \
    X(EPARSE, "parse error")                                                                       \
    X(ECONFIG, "configuration error")                                                              \
    X(EIO, "input/output error")                                                                   \
    X(ECONNREFUSED, "connection refused")                                                          \
    X(ECONNRESET, "connection reset by peer")                                                      \
    X(ETIMEDOUT, "timed out")                                                                      \
    X(ECANCELED, "operation canceled")                                                             \
    X(EQUEUEFULL, "queue is full")                                                                 \
    X(EDEADLINE, "deadline passed")                                                                \
    X(EUNMEETABLE, "deadline cannot be met")                                                       \
    X(EDRAINING, "draining")                                                                       \
    X(EPROTO, "protocol error")                                                                    \
    X(EADDR, "bad address")                                                                        \
    X(EADDRINUSE, "address already in use")                                                        \
    X(EEXIST, "already exists")                                                                    \
    X(EUPSTREAM, "upstream error")                                                                 \
    X(EAPI, "remote API error")                                                                    \
    X(EAUTH, "authentication failed")

enum {
    IG_OK = 0,
    IG__ERR_BASE = -4000, /* leaves room below libuv's codes */
#define IG_ERR_ENUM(name, msg) IG_##name,
    IG_ERRNO_MAP(IG_ERR_ENUM)
#undef IG_ERR_ENUM
        IG__ERR_END
};

/* Returns a static, never-NULL sentence for an IG_E* code (or "unknown error"). */
const char *ig_strerror(int err);

/* Returns the symbolic name ("IG_ETIMEDOUT") for an IG_E* code. */
const char *ig_err_name(int err);

/* Translates a negative libuv error code into the closest IG_E* code. */
int ig_error_from_uv(int uverr);

/* Formats a message into err (truncated to errlen bytes, always terminated)
 * and returns `code` unchanged. Nothing is written when err is NULL or
 * errlen is 0, so callers that do not want the text pass (NULL, 0). */
int ig_error_fmt(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ig_error_fmt with a va_list, for wrappers that carry their own buffer;
 * `ap` is consumed as by vsnprintf. */
int ig_error_vfmt(char *err, size_t errlen, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
