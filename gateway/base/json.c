/*
 * json.c: the validating span scanner of json.h.
 *
 * Written for the batching codecs' hot path: bodies of tensors are mostly
 * numbers and commas, so numbers are scanned by a tight loop over digits
 * and strings by a table lookup per byte, with UTF-8 checked only where a
 * byte above 0x7f appears. No value is converted and nothing is allocated
 * but in ig_json_canonical (members of large objects) and ig_json_str_eq
 * (long escaped names).
 */
#include "infergate/base/json.h"

#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"

void ig_json_init(ig_json_t *j, const char *s, size_t len)
{
    *j = (ig_json_t){.s = s, .len = len};
}

static inline bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int ig_json_peek(ig_json_t *j)
{
    while (j->pos < j->len && is_ws((unsigned char)j->s[j->pos]))
        j->pos++;
    return j->pos < j->len ? (unsigned char)j->s[j->pos] : -1;
}

static int fail_at(ig_json_t *j, size_t at, const char *msg)
{
    if (!j->err) {
        j->err = msg;
        j->err_at = at;
    }
    return IG_EINVAL;
}

int ig_json_fail(ig_json_t *j, const char *msg)
{
    ig_json_peek(j);
    return fail_at(j, j->pos, msg);
}

/* Length of the well-formed UTF-8 sequence at u[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *u, size_t n)
{
    unsigned char c = u[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (u[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (u[2] & 0xc0) != 0x80)
            return 0;
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return u[1] >= lo && u[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (u[2] & 0xc0) != 0x80 || (u[3] & 0xc0) != 0x80)
            return 0;
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return u[1] >= lo && u[1] <= hi ? 4 : 0;
    }
    return 0;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* 1 for the bytes a string scan must stop at: '"', '\\', controls, non-ASCII. */
static const unsigned char str_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

int ig_json_string(ig_json_t *j, ig_slice_t *raw, bool *escaped)
{
    const unsigned char *u = (const unsigned char *)j->s;
    size_t i, n = j->len;
    bool esc = false;

    if (ig_json_peek(j) != '"')
        return fail_at(j, j->pos, "expected a string");
    i = j->pos + 1;
    for (;;) {
        while (i < n && !str_stop[u[i]])
            i++;
        if (i >= n)
            return fail_at(j, n, "unterminated string");
        unsigned char c = u[i];
        if (c == '"')
            break;
        if (c == '\\') {
            esc = true;
            if (i + 1 >= n)
                return fail_at(j, n, "unterminated string");
            char e = (char)u[i + 1];
            if (e == 'u') {
                int v = i + 6 <= n ? hex4(j->s + i + 2) : -1;
                if (v < 0)
                    return fail_at(j, i, "invalid \\u escape in a string");
                if (v >= 0xdc00 && v <= 0xdfff)
                    return fail_at(j, i, "lone low surrogate escape in a string");
                if (v >= 0xd800 && v <= 0xdbff) {
                    int lo = i + 12 <= n && u[i + 6] == '\\' && u[i + 7] == 'u' ? hex4(j->s + i + 8)
                                                                                : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(j, i, "high surrogate escape without its low half");
                    i += 12;
                } else {
                    i += 6;
                }
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                e != 't')
                return fail_at(j, i, "invalid escape in a string");
            i += 2;
            continue;
        }
        if (c < 0x20)
            return fail_at(j, i, "control character in a string");
        size_t k = utf8_len(u + i, n - i);
        if (!k)
            return fail_at(j, i, "not UTF-8");
        i += k;
    }
    if (raw)
        *raw = ig_slice(j->s + j->pos + 1, i - j->pos - 1);
    if (escaped)
        *escaped = esc;
    j->pos = i + 1;
    return 0;
}

int ig_json_number(ig_json_t *j, ig_json_num_t *num)
{
    const char *why;
    size_t at;
    ig_json_peek(j);
    at = j->pos;
    if (ig_json_scan_number(j->s, j->len, &at, num, &why))
        return fail_at(j, at, why);
    j->pos = at;
    return 0;
}

static int literal(ig_json_t *j, const char *lit, size_t len)
{
    if (j->len - j->pos < len || memcmp(j->s + j->pos, lit, len) != 0)
        return fail_at(j, j->pos, "invalid literal");
    j->pos += len;
    return 0;
}

int ig_json_enter(ig_json_t *j, char open)
{
    if (ig_json_peek(j) != (unsigned char)open)
        return fail_at(j, j->pos, open == '{' ? "expected an object" : "expected an array");
    if (j->depth >= IG_JSON_MAX_DEPTH)
        return fail_at(j, j->pos, "nested too deeply");
    j->depth++;
    j->pos++;
    return 0;
}

/* After a member or an element: ',' continues, `close` ends. */
static int next_item(ig_json_t *j, size_t *i, char close)
{
    int c = ig_json_peek(j);
    if (c == close) {
        j->pos++;
        j->depth--;
        return 0;
    }
    if (*i > 0) {
        if (c != ',')
            return fail_at(j, j->pos,
                           close == '}' ? "expected ',' or '}' in an object"
                                        : "expected ',' or ']' in an array");
        j->pos++;
        c = ig_json_peek(j);
    }
    if (c < 0)
        return fail_at(j, j->pos, "unexpected end of the text");
    (*i)++;
    return 1;
}

int ig_json_member(ig_json_t *j, size_t *i, ig_slice_t *name, bool *escaped)
{
    int r = next_item(j, i, '}');
    if (r <= 0)
        return r;
    if (ig_json_peek(j) != '"')
        return fail_at(j, j->pos, "expected a member name");
    if (ig_json_string(j, name, escaped))
        return IG_EINVAL;
    if (ig_json_peek(j) != ':')
        return fail_at(j, j->pos, "expected ':' after a member name");
    j->pos++;
    if (ig_json_peek(j) < 0)
        return fail_at(j, j->pos, "unexpected end of the text");
    return 1;
}

int ig_json_element(ig_json_t *j, size_t *i)
{
    if (*i == 0 && ig_json_peek(j) == ',')
        return fail_at(j, j->pos, "expected a value");
    return next_item(j, i, ']');
}

int ig_json_value(ig_json_t *j, ig_json_kind_t *kind, ig_slice_t *span)
{
    int c = ig_json_peek(j), r;
    size_t start = j->pos, i = 0;
    ig_json_kind_t k;

    switch (c) {
    case '{':
        k = IG_JSON_OBJECT;
        if (ig_json_enter(j, '{'))
            return IG_EINVAL;
        ig_slice_t name;
        while ((r = ig_json_member(j, &i, &name, NULL)) == 1)
            if (ig_json_value(j, NULL, NULL))
                return IG_EINVAL;
        if (r < 0)
            return r;
        break;
    case '[':
        k = IG_JSON_ARRAY;
        if (ig_json_enter(j, '['))
            return IG_EINVAL;
        while ((r = ig_json_element(j, &i)) == 1)
            if (ig_json_value(j, NULL, NULL))
                return IG_EINVAL;
        if (r < 0)
            return r;
        break;
    case '"':
        k = IG_JSON_STRING;
        if (ig_json_string(j, NULL, NULL))
            return IG_EINVAL;
        break;
    case 't':
        k = IG_JSON_TRUE;
        if (literal(j, "true", 4))
            return IG_EINVAL;
        break;
    case 'f':
        k = IG_JSON_FALSE;
        if (literal(j, "false", 5))
            return IG_EINVAL;
        break;
    case 'n':
        k = IG_JSON_NULL;
        if (literal(j, "null", 4))
            return IG_EINVAL;
        break;
    case -1:
        return fail_at(j, j->pos, "unexpected end of the text");
    default:
        if (c != '-' && (c < '0' || c > '9'))
            return fail_at(j, j->pos,
                           c >= 0x80 ? "not UTF-8 or not a JSON value" : "expected a JSON value");
        k = IG_JSON_NUMBER;
        if (ig_json_number(j, NULL))
            return IG_EINVAL;
        break;
    }
    if (kind)
        *kind = k;
    if (span)
        *span = ig_slice(j->s + start, j->pos - start);
    return 0;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* Decodes validated raw string bytes into `out` (room for raw.len bytes:
 * decoding never grows the text); returns the decoded length. */
static size_t decode(ig_slice_t raw, char *out)
{
    const char *s = raw.base;
    size_t i = 0, n = 0;
    while (i < raw.len) {
        if (s[i] != '\\') {
            out[n++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            unsigned cp = (unsigned)hex4(s + i);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo = (unsigned)hex4(s + i + 2);
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(out, &n, cp);
            break;
        }
        default: /* '"', '\\', '/' */
            out[n++] = e;
            break;
        }
    }
    return n;
}

int ig_json_unescape(ig_slice_t raw, ig_buf_t *out)
{
    int rc = ig_buf_reserve(out, raw.len);
    if (rc)
        return rc;
    out->len += decode(raw, out->base + out->len);
    return 0;
}

bool ig_json_str_eq(ig_slice_t raw, bool escaped, const char *lit)
{
    size_t n = strlen(lit);
    if (!escaped)
        return raw.len == n && memcmp(raw.base, lit, n) == 0;
    if (raw.len < n)
        return false; /* decoding never grows the text */
    char stack[256];
    char *buf = raw.len <= sizeof(stack) ? stack : ig_xmalloc(raw.len);
    size_t k = decode(raw, buf);
    bool eq = k == n && memcmp(buf, lit, n) == 0;
    if (buf != stack)
        free(buf);
    return eq;
}

ig_slice_t ig_json_trim(ig_slice_t s)
{
    while (s.len && is_ws((unsigned char)s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len && is_ws((unsigned char)s.base[s.len - 1]))
        s.len--;
    return s;
}

static int cmp_member(const void *a, const void *b)
{
    const ig_json_member_t *x = a, *y = b;
    size_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
    int c = memcmp(x->name.base, y->name.base, n);
    if (c)
        return c;
    if (x->name.len != y->name.len)
        return x->name.len < y->name.len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int canon(ig_buf_t *out, ig_json_t *j, int depth);

int ig_json_canonical_members(ig_buf_t *out, ig_json_member_t *m, size_t n)
{
    int rc;
    if (n > 1)
        qsort(m, n, sizeof(*m), cmp_member);
    rc = ig_buf_append(out, "{", 1);
    for (size_t k = 0; k < n && !rc; k++) {
        if (k > 0)
            rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = ig_buf_append_slice(out, m[k].name);
        if (!rc)
            rc = ig_buf_append(out, ":", 1);
        if (!rc) {
            ig_json_t sub;
            ig_json_init(&sub, m[k].value.base, m[k].value.len);
            rc = canon(out, &sub, 0);
        }
    }
    return rc ? rc : ig_buf_append(out, "}", 1);
}

/* The canonical form of the object at j, leaving out members named `omit`. */
static int canon_object(ig_buf_t *out, ig_json_t *j, const char *omit)
{
    ig_json_member_t stack[16], *m = stack;
    size_t n = 0, cap = 16, i = 0;
    ig_slice_t name;
    bool esc;
    int r, rc = 0;

    if (ig_json_enter(j, '{'))
        return IG_EINVAL;
    while ((r = ig_json_member(j, &i, &name, &esc)) == 1) {
        if (n == cap) {
            cap *= 2;
            if (m == stack) {
                m = ig_xmalloc(cap * sizeof(*m));
                memcpy(m, stack, sizeof(stack));
            } else {
                m = ig_xrealloc(m, cap * sizeof(*m));
            }
        }
        m[n].name = ig_slice(name.base - 1, name.len + 2);
        m[n].index = n;
        if ((rc = ig_json_value(j, NULL, &m[n].value)))
            goto out;
        if (!omit || !ig_json_str_eq(name, esc, omit))
            n++;
    }
    if (r < 0) {
        rc = r;
        goto out;
    }
    rc = ig_json_canonical_members(out, m, n);
out:
    if (m != stack)
        free(m);
    return rc;
}

static int canon(ig_buf_t *out, ig_json_t *j, int depth)
{
    int c = ig_json_peek(j), r, rc;
    size_t i = 0;
    ig_slice_t span;

    if (depth > IG_JSON_MAX_DEPTH)
        return IG_EINVAL;
    if (c == '{')
        return canon_object(out, j, NULL);
    if (c == '[') {
        if (ig_json_enter(j, '['))
            return IG_EINVAL;
        if ((rc = ig_buf_append(out, "[", 1)))
            return rc;
        while ((r = ig_json_element(j, &i)) == 1) {
            if (i > 1 && (rc = ig_buf_append(out, ",", 1)))
                return rc;
            if ((rc = canon(out, j, depth + 1)))
                return rc;
        }
        return r < 0 ? r : ig_buf_append(out, "]", 1);
    }
    if ((rc = ig_json_value(j, NULL, &span)))
        return rc;
    return ig_buf_append_slice(out, span);
}

int ig_json_canonical(ig_buf_t *out, ig_slice_t span)
{
    ig_json_t j;
    ig_json_init(&j, span.base, span.len);
    return canon(out, &j, 0);
}

int ig_json_canonical_omit(ig_buf_t *out, ig_slice_t obj, const char *omit)
{
    ig_json_t j;
    ig_json_init(&j, obj.base, obj.len);
    return canon_object(out, &j, omit);
}
