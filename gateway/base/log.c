/*
 * log.c: JSON-lines logging to stderr.
 *
 * One line per event, written with a single write(2) so concurrent
 * processes sharing stderr never interleave within a line. Also the one
 * place that decides how a secret is kept out of what gets printed: the
 * user info of URLs and credentials quoted back by a peer (see log.h).
 */
#include "infergate/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"

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

/* ---- redaction --------------------------------------------------------- */

/* Whether auth[0..len) ends like host:port or a bracketed IPv6 host, or has
 * no ':' at all: what is left of an authority once its user info is gone. */
static bool plain_host_port(const char *auth, size_t len)
{
    if (len > 0 && auth[len - 1] == ']')
        return true;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (auth[i] == ':')
            colon = auth + i;
    }
    if (!colon)
        return true;
    for (const char *p = colon + 1; p < auth + len; p++) {
        if (*p < '0' || *p > '9')
            return false;
    }
    return true;
}

/* The '@' that ends the user info in auth[0..len), or NULL. */
static const char *last_at(const char *auth, size_t len)
{
    for (size_t i = len; i > 0; i--) {
        if (auth[i - 1] == '@')
            return auth + i - 1;
    }
    return NULL;
}

char *ig_log_redact_url(const char *url)
{
    if (!url)
        return ig_xstrdup("");
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = last_at(auth, alen);
    /* "http://user:pa/ss@host" is not a valid URL, but people write such
     * passwords: when what precedes the first '/', '?' or '#' cannot be a
     * host[:port] and an '@' follows, that '@' ends the user info. */
    if (!at && !plain_host_port(auth, alen))
        at = last_at(auth, strlen(auth));
    if (!at)
        return ig_xstrdup(url);
    ig_buf_t b;
    ig_buf_init(&b, 0);
    ig_buf_append(&b, url, (size_t)(auth - url));
    ig_buf_append_str(&b, IG_LOG_REDACTED);
    ig_buf_append_str(&b, at);
    return ig_buf_take(&b, NULL);
}

size_t ig_log_scrub(char *text, size_t cap, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (!text || cap == 0 || slen == 0)
        return 0;
    size_t tlen = strnlen(text, cap);
    bool cut_short = tlen >= cap - 1; /* snprintf filled the buffer */
    size_t n = 0;
    ig_buf_t b;
    ig_buf_init(&b, 0);
    const char *p = text;
    for (const char *hit; (hit = strstr(p, secret)) != NULL; p = hit + slen, n++) {
        ig_buf_append(&b, p, (size_t)(hit - p));
        ig_buf_append_str(&b, IG_LOG_REDACTED);
    }
    ig_buf_append_str(&b, p);
    size_t full = b.len, len = b.len;
    /* A message cut short inside the secret ends with its first bytes; a
     * few bytes are not worth mangling an ordinary ending for. */
    for (size_t k = slen - 1; cut_short && k >= 4; k--) {
        if (len >= k && memcmp(b.base + len - k, secret, k) == 0) {
            len -= k;
            break;
        }
    }
    size_t keep = len < cap - 1 ? len : cap - 1;
    if (keep)
        memcpy(text, b.base, keep);
    text[keep] = '\0';
    if (b.base)
        memset(b.base, 0, full);
    ig_buf_dispose(&b);
    return n;
}
