/*
 * log.c: JSON-lines logging to stderr.
 *
 * One line per event, written with a single write(2) so concurrent
 * processes sharing stderr never interleave within a line.
 */
#include "infergate/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "infergate/buf.h"
#include "infergate/error.h"

ig_log_level_t ig_log_threshold = IG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int ig_log_level_parse(const char *s, ig_log_level_t *out)
{
    for (int i = 0; i <= IG_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (ig_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = IG_LOG_WARN;
        return 0;
    }
    return IG_EINVAL;
}

const char *ig_log_level_name(ig_log_level_t l)
{
    return (unsigned)l <= IG_LOG_OFF ? level_names[l] : "unknown";
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void ig_log_raw(const char *json_line, unsigned long len)
{
    write_all(json_line, len);
}

void ig_log_write(ig_log_level_t level, const char *fields, const char *fmt, ...)
{
    char ts[64];
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    ig_buf_t heap;
    ig_buf_init(&heap, 0);
    ig_buf_t *out = &heap;

    ig_buf_printf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, ig_log_level_name(level));
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= sizeof(msg))
        m = sizeof(msg) - 1;
    ig_buf_append_json_str(out, msg, (size_t)m);
    if (fields && *fields) {
        ig_buf_append(out, ",", 1);
        ig_buf_append_str(out, fields);
    }
    ig_buf_append(out, "}\n", 2);
    write_all(out->base, out->len);
    ig_buf_dispose(&heap);
}
