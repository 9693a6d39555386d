/*
 * codec_tensor.c: tensor data for the batching codecs (see codec_int.h).
 *
 * Range checks run on the digits: an integer fits INT64 when its digit
 * string is no longer than "9223372036854775807" and, at that length, no
 * greater; a float fits FP32 when its decimal exponent is below 38, and
 * only a number at 10^38 is converted (into a scratch double, for the
 * comparison alone) to settle it. The text itself is never rewritten.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"
#include "infergate/base/error.h"

uint64_t ig_tensor_product(const uint64_t *dims, size_t n)
{
    uint64_t p = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] == 0)
            return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (p > UINT64_MAX / dims[i])
            return UINT64_MAX;
        p *= dims[i];
    }
    return p;
}

/* Whether the digit string d (no sign, no leading zero) is <= lim. */
static bool digits_le(ig_slice_t d, const char *lim)
{
    size_t n = strlen(lim);
    if (d.len != n)
        return d.len < n;
    return memcmp(d.base, lim, n) <= 0;
}

/* A number's value through a NUL-terminated copy of its text, for strtod
 * (as_float: strtof). */
static double number_read(ig_slice_t text, bool as_float)
{
    char stack[128];
    char *s = text.len < sizeof(stack) ? stack : ig_xmalloc(text.len + 1);
    memcpy(s, text.base, text.len);
    s[text.len] = '\0';
    double d = as_float ? (double)strtof(s, NULL) : strtod(s, NULL);
    if (s != stack)
        free(s);
    return d;
}

static double number_value(ig_slice_t text)
{
    return number_read(text, false);
}

static double number_float(ig_slice_t text)
{
    return number_read(text, true);
}

const char *ig_tensor_check_number(const ig_dtype_t *dt, const ig_json_num_t *num)
{
    if (dt->kind == IG_DT_INT) {
        if (!num->integer)
            return "is not an integer";
        if (num->zero)
            return NULL;
        if (num->neg)
            return dt->min_digits && digits_le(num->digits, dt->min_digits) ? NULL
                                                                            : "is out of range";
        return digits_le(num->digits, dt->max_digits) ? NULL : "is out of range";
    }
    if (num->zero || num->e10 < dt->max_e10)
        return NULL;
    if (num->e10 > dt->max_e10)
        return "is out of range";
    /* At the boundary's power of ten: does it round to a finite value?
     * FP32 asks strtof itself (one rounding, as the model's parser does). */
    if (dt->size == 4)
        return isfinite(number_float(num->text)) ? NULL : "is out of range";
    return ig_dtype_in_range(dt, number_value(num->text)) ? NULL : "is out of range";
}

static const char *kind_text(int c)
{
    switch (c) {
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    case '{':
        return "an object";
    default:
        return "a number";
    }
}

static int walk_fail(ig_twalk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int walk_fail(ig_twalk_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ig_error_vfmt(w->err, w->errlen, w->code, fmt, ap);
    va_end(ap);
    return w->code;
}

static int grammar_fail(ig_twalk_t *w, const ig_json_t *j)
{
    return walk_fail(w, "%s.data: invalid JSON at byte %zu: %s", w->where, j->err_at,
                     j->err ? j->err : "?");
}

static int scalar(ig_json_t *j, ig_twalk_t *w, int c, size_t *end)
{
    const ig_dtype_t *dt = w->dt;
    ig_json_kind_t kind;

    if (!dt) {
        if (c == '{' && !w->objects)
            return walk_fail(w, "%s.data: value %" PRIu64 " is an object", w->where, w->count);
        if (ig_json_value(j, &kind, NULL))
            return grammar_fail(w, j);
        *end = j->pos;
        return 0;
    }
    switch (dt->kind) {
    case IG_DT_BOOL:
        if (c != 't' && c != 'f')
            break;
        if (ig_json_value(j, NULL, NULL))
            return grammar_fail(w, j);
        *end = j->pos;
        return 0;
    case IG_DT_BYTES:
        if (c != '"')
            break;
        if (ig_json_string(j, NULL, NULL))
            return grammar_fail(w, j);
        *end = j->pos;
        return 0;
    case IG_DT_INT:
    case IG_DT_FLOAT: {
        if (c != '-' && (c < '0' || c > '9'))
            break;
        ig_json_num_t num;
        if (ig_json_number(j, &num))
            return grammar_fail(w, j);
        const char *bad = ig_tensor_check_number(dt, &num);
        if (bad)
            return walk_fail(w, "%s.data: value %" PRIu64 " (%.*s%s) %s for %s", w->where, w->count,
                             (int)(num.text.len > 40 ? 40 : num.text.len), num.text.base,
                             num.text.len > 40 ? "..." : "", bad, dt->name);
        *end = j->pos;
        return 0;
    }
    }
    if (c == '-' || (c >= '0' && c <= '9') || c == '"' || c == 't' || c == 'f' || c == 'n' ||
        c == '{')
        return walk_fail(w, "%s.data: value %" PRIu64 " is %s, datatype %s needs %s", w->where,
                         w->count, kind_text(c), dt->name,
                         dt->kind == IG_DT_BOOL    ? "true or false"
                         : dt->kind == IG_DT_BYTES ? "strings"
                                                   : "numbers");
    if (ig_json_value(j, NULL, NULL))
        return grammar_fail(w, j);
    return walk_fail(w, "%s.data: value %" PRIu64 " is not a scalar", w->where, w->count);
}

static int fail_at_byte(ig_json_t *j, ig_twalk_t *w, size_t at, const char *why)
{
    j->err = why;
    j->err_at = at;
    return grammar_fail(w, j);
}

static inline bool ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* One scalar seen: rows and bounds follow the count, without a division. */
static inline void count_scalar(ig_twalk_t *w, size_t start, size_t end)
{
    if (w->bounds && w->per_row && w->row < w->nrows) {
        if (w->k == 0)
            w->bounds[2 * w->row] = start;
        if (w->k + 1 == w->per_row)
            w->bounds[2 * w->row + 1] = end;
    }
    if (++w->k == w->per_row) {
        w->k = 0;
        w->row++;
    }
    w->count++;
}

/* The common case, a flat array of plain numbers, in one tight loop. Starts
 * at an element (white space skipped) of the top level; runs while the
 * elements are numbers whose fit needs no more than their digit counts,
 * and returns where it stopped: at the start of an element the general
 * loop must read (anything unusual, including every error, is left to it,
 * which reports it), or after the closing ']' (*closed set). */
static size_t flat_numbers(const char *s, size_t n, size_t p, ig_twalk_t *w, bool top_level,
                           bool *closed)
{
    const ig_dtype_t *dt = w->dt;
    size_t int_max = 0, count = w->count, top = w->top;
    uint64_t k = w->k, row = w->row, per_row = w->per_row, nrows = w->nrows;
    size_t *bounds = w->per_row ? w->bounds : NULL;
    ig_slice_t *tops = top_level ? w->tops : NULL;
    bool is_int = dt && dt->kind == IG_DT_INT;

    if (dt)
        int_max = is_int ? strlen(dt->max_digits) - 1 : (size_t)dt->max_e10;
    *closed = false;
    while (p < n) {
        size_t i = p, int_len;
        bool neg = s[i] == '-';
        i += neg;
        if (i >= n)
            break;
        if (s[i] == '0') {
            i++;
            int_len = 0; /* below 1 */
        } else if ((unsigned char)(s[i] - '1') < 9) {
            int_len = 1 + ig_json_digits(s + i + 1, n - i - 1);
            i += int_len;
        } else {
            break;
        }
        if (i < n && s[i] == '.') {
            size_t f = ig_json_digits(s + i + 1, n - i - 1);
            if (f == 0 || is_int)
                break;
            i += 1 + f;
        }
        if (i >= n || (s[i] | 0x20) == 'e')
            break;
        /* It fits when it has fewer integer digits than the largest value
         * of its type: below 10^max_e10 for floats, 10^(digits-1) for
         * integers; a negative one needs a signed type. */
        if (dt && (int_len > int_max || (neg && is_int && !dt->min_digits && int_len > 0)))
            break;
        size_t end = i;
        while (i < n && ws(s[i]))
            i++;
        if (i >= n || (s[i] != ',' && s[i] != ']'))
            break; /* the general loop reads it again and says what is wrong */
        if (bounds && row < nrows) {
            if (k == 0)
                bounds[2 * row] = p;
            if (k + 1 == per_row)
                bounds[2 * row + 1] = end;
        }
        if (++k == per_row) {
            k = 0;
            row++;
        }
        if (tops && top < nrows)
            tops[top] = ig_slice(s + p, end - p);
        top += top_level;
        count++;
        if (s[i] == ']') {
            p = i + 1;
            *closed = true;
            break;
        }
        i++;
        while (i < n && ws(s[i]))
            i++;
        p = i;
        if (p < n && (s[p] == ']' || s[p] == ','))
            break; /* a trailing comma: the general loop reports it */
    }
    w->count = count;
    w->top = top;
    w->k = k;
    w->row = row;
    return p;
}

/* The walk is written as one loop over the bytes, with numbers scanned
 * inline: a tensor's data is mostly numbers, and this loop is most of the
 * codec's time. Anything else goes through the scanner's functions. */
static int walk_level(ig_json_t *j, ig_twalk_t *w, int level)
{
    const char *s = j->s;
    size_t n = j->len, p, open;
    const ig_dtype_t *dt = w->dt;
    bool numbers = !dt || dt->kind == IG_DT_INT || dt->kind == IG_DT_FLOAT;
    int rc;

    if (ig_json_enter(j, '['))
        return grammar_fail(w, j);
    p = open = j->pos;
    if (level == 0)
        w->top_arrays = true;
    while (p < n && ws(s[p]))
        p++;
    if (p < n && s[p] == ']') {
        p++;
        goto done;
    }
    for (;;) {
        while (p < n && ws(s[p]))
            p++;
        if (numbers) {
            bool closed;
            size_t before = w->count;
            p = flat_numbers(s, n, p, w, level == 0, &closed);
            if (level == 0 && w->count != before)
                w->top_arrays = false;
            if (closed)
                break;
            while (p < n && ws(s[p]))
                p++;
        }
        if (p >= n)
            return fail_at_byte(j, w, p, "unexpected end of the text");
        char c = s[p];
        size_t start = p, end = p;
        if (numbers && (c == '-' || (unsigned char)(c - '0') < 10)) {
            ig_json_num_t num;
            const char *why;
            if (ig_json_scan_number(s, n, &p, &num, &why))
                return fail_at_byte(j, w, p, why);
            if (dt) {
                const char *bad = ig_tensor_check_number(dt, &num);
                if (bad)
                    return walk_fail(w, "%s.data: value %" PRIu64 " (%.*s%s) %s for %s", w->where,
                                     w->count, (int)(num.text.len > 40 ? 40 : num.text.len),
                                     num.text.base, num.text.len > 40 ? "..." : "", bad, dt->name);
            }
            end = p;
            if (level == 0)
                w->top_arrays = false;
            count_scalar(w, start, end);
        } else if (c == '[') {
            uint64_t before = w->count;
            w->nested = true;
            j->pos = p;
            if ((rc = walk_level(j, w, level + 1)))
                return rc;
            p = end = j->pos;
            if (level == 0 && w->count - before != w->per_row)
                w->even_tops = false;
        } else if (c == ',' || c == ']') {
            return fail_at_byte(j, w, p, "expected a value");
        } else {
            j->pos = p;
            if ((rc = scalar(j, w, c, &end)))
                return rc;
            p = j->pos;
            if (level == 0)
                w->top_arrays = false;
            count_scalar(w, start, end);
        }
        if (level == 0) {
            if (w->tops && w->top < w->nrows)
                w->tops[w->top] = ig_slice(s + start, end - start);
            w->top++;
        }
        while (p < n && ws(s[p]))
            p++;
        if (p < n && s[p] == ',') {
            p++;
            continue;
        }
        if (p < n && s[p] == ']') {
            p++;
            break;
        }
        return fail_at_byte(
            j, w, p, p < n ? "expected ',' or ']' in an array" : "unexpected end of the text");
    }
done:
    j->pos = p;
    j->depth--;
    if (level == 0)
        w->inner = ig_json_trim(ig_slice(s + open, p - 1 - open));
    return 0;
}

int ig_tensor_walk(ig_json_t *j, ig_twalk_t *w)
{
    w->count = w->k = w->row = 0;
    w->even_tops = true;
    w->top = 0;
    w->nested = false;
    w->top_arrays = false;
    w->inner = ig_slice(NULL, 0);
    if (ig_json_peek(j) != '[')
        return walk_fail(w, "%s.data: expected an array", w->where);
    return walk_level(j, w, 0);
}

/* Calls fn on every scalar of the validated array at j, row-major. */
static int each_leaf(ig_json_t *j, int (*fn)(ig_slice_t v, void *ctx), void *ctx)
{
    size_t i = 0;
    int r, rc;
    if (ig_json_enter(j, '['))
        return IG_EINVAL;
    while ((r = ig_json_element(j, &i)) == 1) {
        if (ig_json_peek(j) == '[') {
            if ((rc = each_leaf(j, fn, ctx)))
                return rc;
            continue;
        }
        ig_slice_t v;
        if (ig_json_value(j, NULL, &v))
            return IG_EINVAL;
        if ((rc = fn(v, ctx)))
            return rc;
    }
    return r < 0 ? IG_EINVAL : 0;
}

typedef struct {
    ig_buf_t *out;
    bool *first;
    const ig_dtype_t *dt;
} leaf_ctx_t;

static int put_leaf(ig_slice_t v, void *ctx)
{
    leaf_ctx_t *l = ctx;
    int rc;
    if (!*l->first && (rc = ig_buf_append(l->out, ",", 1)))
        return rc;
    *l->first = false;
    return ig_buf_append_slice(l->out, v);
}

int ig_tensor_write_leaves(ig_buf_t *out, ig_slice_t data, bool *first)
{
    ig_json_t j;
    leaf_ctx_t l = {out, first, NULL};
    ig_json_init(&j, data.base, data.len);
    return each_leaf(&j, put_leaf, &l);
}

/* ---- binary <-> JSON ---- */

static void put_le(unsigned char *p, uint64_t v, unsigned size)
{
    for (unsigned k = 0; k < size; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_le(const unsigned char *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < size; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* IEEE binary16 from a double, rounded to nearest, ties to even. */
static uint16_t half_from_double(double d)
{
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    double a = fabs(d);
    if (isnan(d))
        return 0x7e00;
    if (a >= 65520.0)
        return sign | 0x7c00;
    if (a < 0x1p-24 * 0.5)
        return sign;
    int e;
    double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    if (e < -13) {
        /* subnormal: units of 2^-24 */
        double q = nearbyint(a * 0x1p24);
        return sign | (uint16_t)q;
    }
    double q = nearbyint(m * 2048.0); /* 11 significant bits */
    if (q >= 2048.0) {
        q /= 2;
        e++;
    }
    if (e > 16)
        return sign | 0x7c00;
    return sign | (uint16_t)(((e + 14) << 10) | ((uint16_t)q & 0x3ff));
}

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff, v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static uint16_t bf16_from_double(double d)
{
    float f = (float)d;
    uint32_t b;
    memcpy(&b, &f, 4);
    if (isnan(f))
        return 0x7fc0;
    b += 0x7fff + ((b >> 16) & 1);
    return (uint16_t)(b >> 16);
}

static double bf16_to_double(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Whether `v` is exactly one number that fits numeric datatype dt. */
static bool fits(const ig_dtype_t *dt, ig_slice_t v, ig_json_num_t *num)
{
    ig_json_t j;
    ig_json_init(&j, v.base, v.len);
    return ig_json_number(&j, num) == 0 && j.pos == v.len && !ig_tensor_check_number(dt, num);
}

/* One JSON scalar (validated) as binary. */
static int scalar_to_binary(const ig_dtype_t *dt, ig_slice_t v, ig_buf_t *out)
{
    unsigned char b[8];
    int rc;

    switch (dt->kind) {
    case IG_DT_BOOL:
        if (v.base[0] != 't' && v.base[0] != 'f')
            return IG_EINVAL;
        b[0] = v.base[0] == 't';
        return ig_buf_append(out, b, 1);
    case IG_DT_BYTES: {
        if (v.base[0] != '"')
            return IG_EINVAL;
        size_t at = out->len;
        if ((rc = ig_buf_append(out, "\0\0\0\0", 4)) ||
            (rc = ig_json_unescape(ig_slice(v.base + 1, v.len - 2), out)))
            return rc;
        size_t n = out->len - at - 4;
        if (n > UINT32_MAX)
            return IG_EINVAL;
        put_le((unsigned char *)out->base + at, n, 4);
        return 0;
    }
    case IG_DT_INT: {
        ig_json_num_t num;
        if (!fits(dt, v, &num))
            return IG_EINVAL;
        uint64_t x = 0;
        for (size_t i = 0; i < num.digits.len; i++)
            x = x * 10 + (uint64_t)(num.digits.base[i] - '0');
        if (num.neg)
            x = (uint64_t)0 - x;
        put_le(b, x, dt->size);
        return ig_buf_append(out, b, dt->size);
    }
    case IG_DT_FLOAT: {
        ig_json_num_t num;
        if (!fits(dt, v, &num))
            return IG_EINVAL;
        char stack[128];
        char *s = v.len < sizeof(stack) ? stack : ig_xmalloc(v.len + 1);
        memcpy(s, v.base, v.len);
        s[v.len] = '\0';
        if (dt->size == 4) {
            float f = strtof(s, NULL); /* correctly rounded, once */
            memcpy(b, &f, 4);
        } else if (dt->size == 8) {
            double d = strtod(s, NULL);
            memcpy(b, &d, 8);
        } else {
            double d = strtod(s, NULL);
            uint16_t h = dt->name[0] == 'F' ? half_from_double(d) : bf16_from_double(d);
            put_le(b, h, 2);
        }
        if (s != stack)
            free(s);
        return ig_buf_append(out, b, dt->size);
    }
    }
    return IG_EINVAL;
}

static int binary_leaf(ig_slice_t v, void *ctx)
{
    leaf_ctx_t *l = ctx;
    return scalar_to_binary(l->dt, v, l->out);
}

int ig_tensor_to_binary(const ig_dtype_t *dt, ig_slice_t data, ig_buf_t *out)
{
    ig_json_t j;
    leaf_ctx_t l = {out, NULL, dt};
    ig_json_init(&j, data.base, data.len);
    return each_leaf(&j, binary_leaf, &l);
}

/* Shortest "%.Ng" text that reads back as the same value of the type. */
static int float_text(ig_buf_t *out, double d, const ig_dtype_t *dt)
{
    char tmp[40];
    int lo = dt->size == 8 ? 15 : dt->size == 4 ? 6 : 3, hi = dt->size == 8 ? 17 : 9;
    if (!isfinite(d))
        return IG_EINVAL; /* JSON has no NaN or infinity */
    for (int p = lo; p <= hi; p++) {
        int n = snprintf(tmp, sizeof(tmp), "%.*g", p, d);
        if (n <= 0 || (size_t)n >= sizeof(tmp))
            return IG_EINVAL;
        double back = strtod(tmp, NULL);
        bool same = dt->size == 8        ? back == d
                    : dt->size == 4      ? strtof(tmp, NULL) == (float)d
                    : dt->name[0] == 'F' ? half_from_double(back) == half_from_double(d)
                                         : bf16_from_double(back) == bf16_from_double(d);
        if (same || p == hi)
            return ig_buf_append(out, tmp, (size_t)n);
    }
    return IG_EINVAL;
}

int ig_tensor_to_json(const ig_dtype_t *dt, const char *bytes, size_t len, uint64_t count,
                      ig_buf_t *out)
{
    const unsigned char *u = (const unsigned char *)bytes;
    size_t at = 0;
    int rc = 0;

    if (dt->kind != IG_DT_BYTES && (count > len / dt->size || count * dt->size != len))
        return IG_EINVAL;
    for (uint64_t i = 0; i < count && !rc; i++) {
        if (i > 0 && (rc = ig_buf_append(out, ",", 1)))
            return rc;
        char tmp[32];
        int n;
        switch (dt->kind) {
        case IG_DT_BOOL:
            rc = u[at] ? ig_buf_append(out, "true", 4) : ig_buf_append(out, "false", 5);
            at += 1;
            break;
        case IG_DT_INT: {
            uint64_t x = get_le(u + at, dt->size);
            at += dt->size;
            if (dt->min_digits) {
                unsigned shift = 64 - 8 * dt->size;
                int64_t s = (int64_t)(x << shift) >> shift; /* sign-extend */
                n = snprintf(tmp, sizeof(tmp), "%" PRId64, s);
            } else {
                n = snprintf(tmp, sizeof(tmp), "%" PRIu64, x);
            }
            rc = ig_buf_append(out, tmp, (size_t)n);
            break;
        }
        case IG_DT_FLOAT: {
            double d;
            if (dt->size == 4) {
                float f;
                memcpy(&f, u + at, 4);
                d = f;
            } else if (dt->size == 8) {
                memcpy(&d, u + at, 8);
            } else {
                uint16_t h = (uint16_t)get_le(u + at, 2);
                d = dt->name[0] == 'F' ? half_to_double(h) : bf16_to_double(h);
            }
            at += dt->size;
            rc = float_text(out, d, dt);
            break;
        }
        case IG_DT_BYTES: {
            if (len - at < 4)
                return IG_EINVAL;
            uint64_t n4 = get_le(u + at, 4);
            at += 4;
            if (n4 > len - at || !ig_utf8_valid(bytes + at, (size_t)n4, NULL))
                return IG_EINVAL;
            rc = ig_buf_append_json_str(out, bytes + at, (size_t)n4);
            at += (size_t)n4;
            break;
        }
        }
    }
    if (!rc && at != len)
        return IG_EINVAL;
    return rc;
}

bool ig_tensor_bytes_ok(const char *bytes, size_t len, uint64_t count, uint64_t per_row,
                        size_t *bounds, size_t nrows)
{
    const unsigned char *u = (const unsigned char *)bytes;
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (bounds && per_row && i % per_row == 0 && i / per_row < nrows)
            bounds[2 * (i / per_row)] = at;
        if (len - at < 4)
            return false;
        uint64_t n = get_le(u + at, 4);
        if (n > len - at - 4)
            return false;
        at += 4 + (size_t)n;
        if (bounds && per_row && (i + 1) % per_row == 0 && i / per_row < nrows)
            bounds[2 * (i / per_row) + 1] = at;
    }
    return at == len;
}
