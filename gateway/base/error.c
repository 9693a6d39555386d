/*
 * error.c: names and messages for the IG_E* codes of error.h, the one
 * place where libuv's error codes are translated into ours, and the one
 * helper that formats a failure's explanation into a caller's buffer.
 */
#include "infergate/base/error.h"

#include <stdio.h>
#include <uv.h>

const char *ig_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define IG_ERR_MSG(name, msg)                                                                      \
    case IG_##name:                                                                                \
        return msg;
        IG_ERRNO_MAP(IG_ERR_MSG)
#undef IG_ERR_MSG
    default:
        return "unknown error";
    }
}

const char *ig_err_name(int err)
{
    switch (err) {
    case 0:
        return "IG_OK";
#define IG_ERR_NAME(name, msg)                                                                     \
    case IG_##name:                                                                                \
        return "IG_" #name;
        IG_ERRNO_MAP(IG_ERR_NAME)
#undef IG_ERR_NAME
    default:
        return "IG_EUNKNOWN";
    }
}

int ig_error_from_uv(int uverr)
{
    switch (uverr) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_EADDRNOTAVAIL:
        return IG_ECONNREFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_EOF:
    case UV_ECONNABORTED:
        return IG_ECONNRESET;
    case UV_ETIMEDOUT:
        return IG_ETIMEDOUT;
    case UV_ECANCELED:
        return IG_ECANCELED;
    case UV_ENOMEM:
        return IG_ENOMEM;
    case UV_EINVAL:
        return IG_EINVAL;
    case UV_EADDRINUSE:
        return IG_EADDRINUSE;
    case UV_EACCES:
        return IG_EADDR;
    default:
        return IG_EIO;
    }
}

int ig_error_vfmt(char *err, size_t errlen, int code, const char *fmt, va_list ap)
{
    if (err && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    return code;
}

int ig_error_fmt(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ig_error_vfmt(err, errlen, code, fmt, ap);
    va_end(ap);
    return code;
}
