/*
 * json_ref.c: the reference JSON parser of json_ref.h.
 *
 * Plain recursive descent over the grammar of RFC 8259 section 2 to 7,
 * one production per function, written for being checked by reading, not
 * for speed. UTF-8 is decoded to a code point and the code point checked
 * against RFC 3629 (shortest form, no surrogates, at most U+10FFFF).
 */
#include "json_ref.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

typedef struct {
    const unsigned char *s;
    size_t n, i;
} parser_t;

typedef struct {
    char *p;
    size_t len, cap;
} text_t;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    FUZZ_CHECK(q != NULL, "out of memory (%zu bytes)", n);
    return q;
}

static void text_put(text_t *t, const void *data, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        t->cap = (t->len + len + 1) * 2;
        t->p = xrealloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, data, len);
    t->len += len;
    t->p[t->len] = '\0';
}

/* The code point cp as UTF-8. */
static void text_put_cp(text_t *t, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    text_put(t, b, n);
}

static bool at_end(const parser_t *p)
{
    return p->i >= p->n;
}

static int next(const parser_t *p)
{
    return at_end(p) ? -1 : p->s[p->i];
}

/* ws = *( %x20 / %x09 / %x0A / %x0D ) */
static void skip_ws(parser_t *p)
{
    while (!at_end(p)) {
        unsigned char c = p->s[p->i];
        if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d)
            break;
        p->i++;
    }
}

/* One UTF-8 encoded character at the position (RFC 3629 section 3 and 4):
 * its code point, moving past it; false if the bytes are not one. */
static bool utf8_char(parser_t *p, uint32_t *cp)
{
    unsigned char c = p->s[p->i];
    size_t len;
    uint32_t v, min;

    if (c < 0x80) {
        len = 1;
        v = c;
        min = 0;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return false; /* a continuation byte, or 0xf8..0xff */
    }
    if (p->n - p->i < len)
        return false;
    for (size_t k = 1; k < len; k++) {
        unsigned char cc = p->s[p->i + k];
        if ((cc & 0xc0) != 0x80)
            return false;
        v = (v << 6) | (cc & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return false;
    p->i += len;
    *cp = v;
    return true;
}

bool jref_utf8_valid(const char *s, size_t len)
{
    parser_t p = {(const unsigned char *)s, len, 0};
    uint32_t cp;
    while (!at_end(&p))
        if (!utf8_char(&p, &cp))
            return false;
    return true;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "\uXXXX" at the position (the backslash), moving past it. */
static bool u_escape(parser_t *p, uint32_t *v)
{
    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
        return false;
    *v = 0;
    for (size_t k = 2; k < 6; k++) {
        int d = hex_digit(p->s[p->i + k]);
        if (d < 0)
            return false;
        *v = *v * 16 + (uint32_t)d;
    }
    p->i += 6;
    return true;
}

/* string = quotation-mark *char quotation-mark; decodes into *out. */
static bool parse_string(parser_t *p, text_t *out, ig_slice_t *raw)
{
    size_t start = p->i;
    if (next(p) != '"')
        return false;
    p->i++;
    for (;;) {
        if (at_end(p))
            return false;
        unsigned char c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20)
            return false; /* unescaped: %x20-21 / %x23-5B / %x5D-10FFFF */
        if (c != '\\') {
            uint32_t cp;
            size_t at = p->i;
            if (!utf8_char(p, &cp))
                return false;
            text_put(out, p->s + at, p->i - at);
            continue;
        }
        if (p->n - p->i < 2)
            return false;
        unsigned char e = p->s[p->i + 1];
        const char *simple = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(simple, e) : NULL;
        if (hit) {
            text_put(out, to + (hit - simple), 1);
            p->i += 2;
            continue;
        }
        uint32_t hi, lo;
        if (e != 'u' || !u_escape(p, &hi))
            return false;
        if (hi >= 0xdc00 && hi <= 0xdfff)
            return false; /* a lone low surrogate */
        if (hi >= 0xd800 && hi <= 0xdbff) {
            if (!u_escape(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
                return false; /* a high surrogate without its low half */
            hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
        }
        text_put_cp(out, hi);
    }
    *raw = ig_slice((const char *)p->s + start, p->i - start);
    return true;
}

static bool digit(int c)
{
    return c >= '0' && c <= '9';
}

/* number = [ minus ] int [ frac ] [ exp ] */
static bool parse_number(parser_t *p)
{
    if (next(p) == '-')
        p->i++;
    if (next(p) == '0') {
        p->i++;
    } else if (next(p) >= '1' && next(p) <= '9') {
        while (digit(next(p)))
            p->i++;
    } else {
        return false;
    }
    if (next(p) == '.') {
        p->i++;
        if (!digit(next(p)))
            return false;
        while (digit(next(p)))
            p->i++;
    }
    if (next(p) == 'e' || next(p) == 'E') {
        p->i++;
        if (next(p) == '+' || next(p) == '-')
            p->i++;
        if (!digit(next(p)))
            return false;
        while (digit(next(p)))
            p->i++;
    }
    return true;
}

static bool literal(parser_t *p, const char *lit)
{
    size_t n = strlen(lit);
    if (p->n - p->i < n || memcmp(p->s + p->i, lit, n) != 0)
        return false;
    p->i += n;
    return true;
}

static jref_node_t *add_kid(jref_node_t *v, size_t *cap)
{
    if (v->n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        v->kids = xrealloc(v->kids, *cap * sizeof(*v->kids));
    }
    jref_node_t *k = &v->kids[v->n++];
    memset(k, 0, sizeof(*k));
    return k;
}

static bool parse_value(parser_t *p, jref_node_t *v, int depth);

/* begin-array [ value *( value-separator value ) ] end-array, and the same
 * for objects with members; `depth` containers are open around this one. */
static bool parse_container(parser_t *p, jref_node_t *v, int depth)
{
    bool object = next(p) == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;

    if (depth >= JREF_MAX_DEPTH)
        return false;
    v->kind = object ? JREF_OBJECT : JREF_ARRAY;
    p->i++;
    skip_ws(p);
    if (next(p) == close) {
        p->i++;
        return true;
    }
    for (;;) {
        jref_node_t *k = add_kid(v, &cap);
        skip_ws(p);
        if (object) {
            text_t name = {0};
            ig_slice_t raw;
            if (!parse_string(p, &name, &raw)) {
                free(name.p);
                return false;
            }
            text_put(&name, "", 0);
            k->name = name.p;
            k->name_len = name.len;
            k->name_raw = ig_slice(raw.base + 1, raw.len - 2);
            skip_ws(p);
            if (next(p) != ':')
                return false;
            p->i++;
        }
        if (!parse_value(p, k, depth + 1))
            return false;
        skip_ws(p);
        if (next(p) == ',') {
            p->i++;
            continue;
        }
        if (next(p) == close) {
            p->i++;
            return true;
        }
        return false;
    }
}

/* ws value ws, leaving the position after the trailing white space. */
static bool parse_value(parser_t *p, jref_node_t *v, int depth)
{
    skip_ws(p);
    size_t start = p->i;
    bool ok;
    switch (next(p)) {
    case '{':
    case '[':
        ok = parse_container(p, v, depth);
        break;
    case '"': {
        text_t t = {0};
        ig_slice_t raw;
        v->kind = JREF_STRING;
        ok = parse_string(p, &t, &raw);
        text_put(&t, "", 0);
        v->str = t.p;
        v->str_len = t.len;
        break;
    }
    case 't':
        v->kind = JREF_TRUE;
        ok = literal(p, "true");
        break;
    case 'f':
        v->kind = JREF_FALSE;
        ok = literal(p, "false");
        break;
    case 'n':
        v->kind = JREF_NULL;
        ok = literal(p, "null");
        break;
    default:
        v->kind = JREF_NUMBER;
        ok = parse_number(p);
        break;
    }
    v->raw = ig_slice((const char *)p->s + start, p->i - start);
    skip_ws(p);
    return ok;
}

bool jref_parse(const char *s, size_t len, jref_node_t *out)
{
    parser_t p = {(const unsigned char *)s, len, 0};
    memset(out, 0, sizeof(*out));
    if (parse_value(&p, out, 0) && at_end(&p))
        return true;
    jref_free(out);
    return false;
}

void jref_free(jref_node_t *v)
{
    for (size_t k = 0; k < v->n; k++)
        jref_free(&v->kids[k]);
    free(v->kids);
    free(v->str);
    free(v->name);
    memset(v, 0, sizeof(*v));
}

static bool name_is(const jref_node_t *member, const char *name)
{
    size_t n = strlen(name);
    return member->name_len == n && memcmp(member->name, name, n) == 0;
}

const jref_node_t *jref_get(const jref_node_t *obj, const char *name)
{
    if (!obj || obj->kind != JREF_OBJECT)
        return NULL;
    for (size_t k = 0; k < obj->n; k++)
        if (name_is(&obj->kids[k], name))
            return &obj->kids[k];
    return NULL;
}

size_t jref_count(const jref_node_t *obj, const char *name)
{
    size_t c = 0;
    if (obj && obj->kind == JREF_OBJECT)
        for (size_t k = 0; k < obj->n; k++)
            c += name_is(&obj->kids[k], name);
    return c;
}

bool jref_has_duplicates(const jref_node_t *obj)
{
    if (!obj || obj->kind != JREF_OBJECT)
        return false;
    for (size_t a = 0; a < obj->n; a++)
        for (size_t b = a + 1; b < obj->n; b++)
            if (obj->kids[a].name_len == obj->kids[b].name_len &&
                memcmp(obj->kids[a].name, obj->kids[b].name, obj->kids[a].name_len) == 0)
                return true;
    return false;
}

bool jref_str_is(const jref_node_t *v, const char *lit)
{
    size_t n = strlen(lit);
    return v && v->kind == JREF_STRING && v->str_len == n && memcmp(v->str, lit, n) == 0;
}

static bool slice_eq(ig_slice_t a, ig_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

bool jref_equal(const jref_node_t *a, const jref_node_t *b, bool any_order)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == JREF_ARRAY) {
        if (a->n != b->n)
            return false;
        for (size_t k = 0; k < a->n; k++)
            if (!jref_equal(&a->kids[k], &b->kids[k], any_order))
                return false;
        return true;
    }
    if (a->kind != JREF_OBJECT)
        return slice_eq(a->raw, b->raw);
    if (a->n != b->n)
        return false;
    if (!any_order) {
        for (size_t k = 0; k < a->n; k++)
            if (!slice_eq(a->kids[k].name_raw, b->kids[k].name_raw) ||
                !jref_equal(&a->kids[k], &b->kids[k], false))
                return false;
        return true;
    }
    /* Equality is an equivalence, so matching greedily one to one is exact. */
    bool *used = calloc(b->n ? b->n : 1, sizeof(*used));
    FUZZ_CHECK(used != NULL, "out of memory");
    bool ok = true;
    for (size_t k = 0; k < a->n && ok; k++) {
        ok = false;
        for (size_t m = 0; m < b->n && !ok; m++) {
            if (!used[m] && slice_eq(a->kids[k].name_raw, b->kids[m].name_raw) &&
                jref_equal(&a->kids[k], &b->kids[m], true)) {
                used[m] = true;
                ok = true;
            }
        }
    }
    free(used);
    return ok;
}

void jref_vec_push(jref_vec_t *vec, const jref_node_t *v)
{
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? 2 * vec->cap : 16;
        vec->v = xrealloc(vec->v, vec->cap * sizeof(*vec->v));
    }
    vec->v[vec->n++] = v;
}

void jref_vec_free(jref_vec_t *vec)
{
    free(vec->v);
    memset(vec, 0, sizeof(*vec));
}

void jref_leaves(const jref_node_t *v, jref_vec_t *out)
{
    if (v->kind != JREF_ARRAY) {
        jref_vec_push(out, v);
        return;
    }
    for (size_t k = 0; k < v->n; k++)
        jref_leaves(&v->kids[k], out);
}

bool jref_integer(const jref_node_t *v, uint64_t *mag, bool *neg)
{
    if (!v || v->kind != JREF_NUMBER)
        return false;
    const char *s = v->raw.base;
    size_t n = v->raw.len, i = 0;
    uint64_t x = 0;
    *neg = n > 0 && s[0] == '-';
    i = *neg;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (!digit(s[i]))
            return false; /* a fraction or an exponent */
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *mag = x;
    return true;
}
