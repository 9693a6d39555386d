/*
 * buf.c: capped growing buffers and the allocation helpers that abort on
 * out-of-memory (which is outside any configured cap, so not recoverable).
 */
#include "infergate/base/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"

static void oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *ig_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *ig_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *ig_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *ig_xstrdup(const char *s)
{
    return ig_xstrndup(s, strlen(s));
}

char *ig_xstrndup(const char *s, size_t n)
{
    char *p = ig_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ig_buf_init(ig_buf_t *b, size_t max)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ig_buf_dispose(ig_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
}

int ig_buf_reserve(ig_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return IG_ETOOLARGE;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return IG_ETOOLARGE;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    b->base = ig_xrealloc(b->base, cap);
    b->cap = cap;
    return 0;
}

int ig_buf_append(ig_buf_t *b, const void *data, size_t len)
{
    int r = ig_buf_reserve(b, len);
    if (r)
        return r;
    if (len)
        memcpy(b->base + b->len, data, len);
    b->len += len;
    b->base[b->len] = '\0';
    return 0;
}

int ig_buf_append_str(ig_buf_t *b, const char *s)
{
    return ig_buf_append(b, s, strlen(s));
}

int ig_buf_append_slice(ig_buf_t *b, ig_slice_t s)
{
    return ig_buf_append(b, s.base, s.len);
}

int ig_buf_vprintf(ig_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return IG_EINVAL;
    int r = ig_buf_reserve(b, (size_t)n);
    if (r)
        return r;
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ig_buf_printf(ig_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = ig_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

/* The length of the well-formed UTF-8 sequence at s[0..len), or 0 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). When 0, *bad is
 * how many bytes one U+FFFD stands for: the longest prefix of a sequence
 * that could have been valid, at least 1 (Unicode's "maximal subpart"). */
static size_t utf8_seq(const unsigned char *s, size_t len, size_t *bad)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    *bad = 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (i >= len || s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
            return 0;
        *bad = i + 1;
    }
    return n;
}

bool ig_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, bad;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(u + i, len - i, &bad);
        if (!k) {
            if (bad_at)
                *bad_at = i;
            return false;
        }
        i += k;
    }
    return true;
}

int ig_buf_append_json_str(ig_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t start = b->len;
    int r = ig_buf_reserve(b, len + 2);
    if (r == 0)
        r = ig_buf_append(b, "\"", 1);
    for (size_t i = 0; r == 0 && i < len;) {
        unsigned char c = u[i];
        char esc[8];
        size_t n = 0;
        size_t run = i;
        while (run < len && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            /* Most text needs no escape: copy it in one go. */
            r = ig_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        if (c >= 0x80) {
            size_t bad, k = utf8_seq(u + i, len - i, &bad);
            if (k) {
                r = ig_buf_append(b, s + i, k);
                i += k;
            } else {
                /* Not UTF-8 (a header's obs-text, say): U+FFFD, as
                 * encoders do, so every line stays valid JSON. */
                r = ig_buf_append(b, "\xef\xbf\xbd", 3);
                i += bad;
            }
            continue;
        }
        switch (c) {
        case '"':
            esc[n++] = '\\', esc[n++] = '"';
            break;
        case '\\':
            esc[n++] = '\\', esc[n++] = '\\';
            break;
        case '\n':
            esc[n++] = '\\', esc[n++] = 'n';
            break;
        case '\r':
            esc[n++] = '\\', esc[n++] = 'r';
            break;
        case '\t':
            esc[n++] = '\\', esc[n++] = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                esc[n++] = '\\', esc[n++] = 'u', esc[n++] = '0', esc[n++] = '0';
                esc[n++] = hex[c >> 4], esc[n++] = hex[c & 15];
            } else {
                esc[n++] = (char)c;
            }
        }
        r = ig_buf_append(b, esc, n);
        i++;
    }
    if (r == 0)
        r = ig_buf_append(b, "\"", 1);
    if (r) {
        /* All or nothing: drop the partial string. */
        b->len = start;
        if (b->base)
            b->base[start] = '\0';
    }
    return r;
}

void ig_buf_consume(ig_buf_t *b, size_t n)
{
    if (n >= b->len) {
        ig_buf_reset(b);
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
    b->base[b->len] = '\0';
}

char *ig_buf_take(ig_buf_t *b, size_t *len)
{
    char *p = b->base;
    if (len)
        *len = b->len;
    if (!p)
        p = ig_xstrdup("");
    b->base = NULL;
    b->len = b->cap = 0;
    return p;
}

int ig_file_read(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return IG_EIO;
    ig_buf_t b;
    ig_buf_init(&b, max);
    char chunk[16384];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = ig_buf_append(&b, chunk, n);
    if (rc == 0 && ferror(f))
        rc = IG_EIO;
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc != 0) {
        ig_buf_dispose(&b);
        return rc;
    }
    if (!b.base)
        ig_buf_append(&b, "", 0);
    *out = ig_buf_take(&b, len);
    return 0;
}
