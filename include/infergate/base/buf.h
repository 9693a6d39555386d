/*
 * buf.h: a growing byte buffer with a hard cap.
 *
 * The buffer owns its bytes (base is heap memory). Appending past `max`
 * fails with IG_ETOOLARGE and leaves the contents unchanged; running out of
 * memory aborts with a message, since it is outside any configured cap.
 */
#ifndef INFERGATE_BUF_H
#define INFERGATE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "infergate/base/slice.h"

typedef struct {
    char *base; /* owned; NUL-terminated after every append when len < cap */
    size_t len;
    size_t cap;
    size_t max; /* 0 means no cap */
} ig_buf_t;

/* Prepares an empty buffer capped at `max` bytes (0: no cap). Allocates nothing. */
void ig_buf_init(ig_buf_t *b, size_t max);

/* Frees the bytes; the buffer is empty and reusable afterwards. */
void ig_buf_dispose(ig_buf_t *b);

/* Ensures room for `extra` more bytes. 0 or IG_ETOOLARGE. */
int ig_buf_reserve(ig_buf_t *b, size_t extra);

/* Appends bytes. 0 or IG_ETOOLARGE. */
int ig_buf_append(ig_buf_t *b, const void *data, size_t len);
int ig_buf_append_str(ig_buf_t *b, const char *s);
int ig_buf_append_slice(ig_buf_t *b, ig_slice_t s);

/* Appends printf-formatted text. 0 or IG_ETOOLARGE. */
int ig_buf_printf(ig_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ig_buf_vprintf(ig_buf_t *b, const char *fmt, va_list ap);

/* Appends `s` as a JSON string literal, quotes included: control characters
 * escaped, well-formed UTF-8 kept, any other byte replaced by U+FFFD, so the
 * result is always valid JSON. 0, or IG_ETOOLARGE with nothing appended. */
int ig_buf_append_json_str(ig_buf_t *b, const char *s, size_t len);

/* Whether s[0..len) is well-formed UTF-8 (RFC 3629). If not, and `bad_at`
 * is given, *bad_at is the offset of the first byte that is not. */
bool ig_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Drops the first `n` bytes, moving the rest to the front. */
void ig_buf_consume(ig_buf_t *b, size_t n);

/* Empties the buffer but keeps its memory. */
static inline void ig_buf_reset(ig_buf_t *b)
{
    b->len = 0;
    if (b->base)
        b->base[0] = '\0';
}

/* Hands the bytes over to the caller (who frees them) and leaves the buffer empty. */
char *ig_buf_take(ig_buf_t *b, size_t *len);

/* Reads the whole file at `path` into *out: heap memory, NUL-terminated
 * ("" for an empty file), the caller frees it. *len (when `len` is not NULL)
 * gets its length. Returns 0, IG_EIO (cannot open or read it; errno says
 * why) or IG_ETOOLARGE (more than `max` bytes; 0: no cap); *out is NULL on
 * error. */
int ig_file_read(const char *path, size_t max, char **out, size_t *len);

/* Allocation helpers that abort with a message on failure. */
void *ig_xmalloc(size_t n);
void *ig_xcalloc(size_t n, size_t size);
void *ig_xrealloc(void *p, size_t n);
char *ig_xstrdup(const char *s);
char *ig_xstrndup(const char *s, size_t n);

#endif
