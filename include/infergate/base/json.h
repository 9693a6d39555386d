/*
 * json.h: a validating JSON scanner over byte spans (RFC 8259), with no tree.
 *
 * The batching codecs read request bodies and model answers with it: one
 * pass checks the grammar and UTF-8 and hands out {base, len} spans of the
 * values, which the codecs copy as they are. Nothing is converted: a number
 * is a span of digits, a string a span of its raw (still escaped) bytes.
 *
 * The scanner keeps a position in the text. A failed call leaves a static
 * message in `err` and the byte offset where the text went wrong in
 * `err_at`; the text is then not to be scanned further.
 *
 * It accepts exactly RFC 8259 JSON text, with these limits, which are
 * documented in docs/batching.md: nesting at most IG_JSON_MAX_DEPTH levels;
 * strings must be UTF-8 (RFC 8259 8.1) and a \u escape of a surrogate must
 * be a high-low pair (8.2 leaves lone ones undefined; they are refused).
 */
#ifndef INFERGATE_JSON_H
#define INFERGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/slice.h"

#define IG_JSON_MAX_DEPTH 128

typedef enum {
    IG_JSON_NONE,
    IG_JSON_OBJECT,
    IG_JSON_ARRAY,
    IG_JSON_STRING,
    IG_JSON_NUMBER,
    IG_JSON_TRUE,
    IG_JSON_FALSE,
    IG_JSON_NULL,
} ig_json_kind_t;

typedef struct ig_json {
    const char *s;
    size_t len;
    size_t pos;      /* the next byte to read */
    const char *err; /* static text, set on failure */
    size_t err_at;   /* byte offset of the failure */
    int depth;
} ig_json_t;

/* What a number's digits say, without converting it. */
typedef struct {
    ig_slice_t text;   /* the whole number as written */
    ig_slice_t digits; /* its integer digits, without the sign */
    bool neg;
    bool integer; /* no fraction and no exponent */
    bool zero;    /* every digit is 0 */
    /* Decimal exponent of the first significant digit (value in
     * [10^e10, 10^(e10+1))), clamped to +-1000000; meaningless when zero. */
    int64_t e10;
} ig_json_num_t;

void ig_json_init(ig_json_t *j, const char *s, size_t len);

/* Skips white space; returns the next byte, or -1 at the end of the text. */
int ig_json_peek(ig_json_t *j);

/* Fails with `msg` at the current position (after white space); returns
 * IG_EINVAL, so it can end a parse: `return ig_json_fail(j, "...")`. */
int ig_json_fail(ig_json_t *j, const char *msg);

/* Validates the value at the position and moves past it. *kind and *span
 * (the value's bytes, from its first to its last byte) may be NULL.
 * 0 or IG_EINVAL. */
int ig_json_value(ig_json_t *j, ig_json_kind_t *kind, ig_slice_t *span);

/* Expects `open` ('{' or '[') at the position and enters it. 0 or IG_EINVAL. */
int ig_json_enter(ig_json_t *j, char open);

/* Steps through the object entered last. *i counts the members seen so far
 * (start it at 0). Returns 1 with *name (the raw bytes between the quotes)
 * and *escaped (the name holds a backslash escape) when a member follows,
 * positioned at its value, which the caller must read (ig_json_value or
 * ig_json_enter...); 0 when the object ended (its '}' consumed); IG_EINVAL. */
int ig_json_member(ig_json_t *j, size_t *i, ig_slice_t *name, bool *escaped);

/* The same for arrays: 1 when an element follows (positioned at it), 0 at
 * the end (']' consumed), IG_EINVAL. */
int ig_json_element(ig_json_t *j, size_t *i);

/* Reads a number at the position (after white space). 0 or IG_EINVAL. */
int ig_json_number(ig_json_t *j, ig_json_num_t *num);

/* The length of the run of ASCII digits at s[0..n). Eight bytes at a time:
 * a byte is a digit when its xor with '0' is below 10, i.e. neither it nor
 * it plus 6 has a high nibble; the lowest flagged byte ends the run (a
 * carry out of a flagged byte can only disturb the bytes after it). */
static inline size_t ig_json_digits(const char *s, size_t n)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n - i >= 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t a = x ^ 0x3030303030303030ull;
        uint64_t m = (a | (a + 0x0606060606060606ull)) & 0xf0f0f0f0f0f0f0f0ull;
        if (m)
            return i + ((size_t)__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < n && (unsigned char)(s[i] - '0') < 10)
        i++;
    return i;
}

/* The number scanner itself, inline for the tensor walks' tight loops:
 * reads the number at s[*pos..n) into *num (may be NULL) and moves *pos
 * past it; on failure returns -1 with *pos at the bad byte and *why set. */
static inline int ig_json_scan_number(const char *s, size_t n, size_t *pos, ig_json_num_t *num,
                                      const char **why)
{
    size_t i = *pos, start = i, int_start, int_end;
    bool neg = false, zero = true, integer = true;
    int64_t e10 = 0, exp = 0;

    if (i < n && s[i] == '-') {
        neg = true;
        i++;
    }
    int_start = i;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        zero = false;
        i++;
        i += ig_json_digits(s + i, n - i);
    } else {
        *pos = i;
        *why = "invalid number";
        return -1;
    }
    int_end = i;
    if (!zero)
        e10 = (int64_t)(int_end - int_start) - 1;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        integer = false;
        i += ig_json_digits(s + i, n - i);
        if (i == f) {
            *pos = i;
            *why = "invalid number: no digit after the decimal point";
            return -1;
        }
        if (zero) {
            size_t z = f;
            while (z < i && s[z] == '0')
                z++;
            if (z < i) {
                zero = false;
                e10 = -(int64_t)(z - f) - 1;
            }
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false;
        integer = false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        size_t f = i;
        while (i < n && (unsigned char)(s[i] - '0') < 10) {
            if (exp < 1000000)
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == f) {
            *pos = i;
            *why = "invalid number: no digit in the exponent";
            return -1;
        }
        e10 += eneg ? -exp : exp;
        if (e10 > 1000000)
            e10 = 1000000;
        if (e10 < -1000000)
            e10 = -1000000;
    }
    if (num) {
        num->text = (ig_slice_t){s + start, i - start};
        num->digits = (ig_slice_t){s + int_start, int_end - int_start};
        num->neg = neg;
        num->integer = integer;
        num->zero = zero;
        num->e10 = e10;
    }
    *pos = i;
    return 0;
}

/* Reads a string at the position: *raw gets the bytes between the quotes,
 * *escaped whether they hold an escape. 0 or IG_EINVAL. */
int ig_json_string(ig_json_t *j, ig_slice_t *raw, bool *escaped);

/* Whether the raw string bytes `raw` (as ig_json_string gave them) decode
 * to exactly `lit`. */
bool ig_json_str_eq(ig_slice_t raw, bool escaped, const char *lit);

/* Appends the decoded bytes of the raw string `raw` (already validated) to
 * `out`. 0 or IG_ETOOLARGE. */
int ig_json_unescape(ig_slice_t raw, ig_buf_t *out);

/* Appends `span` (a validated JSON value) to `out` with the white space
 * between tokens removed and every object's members ordered by their raw
 * name (bytewise; equal names keep their order): a canonical form for
 * batch keys, which keeps every token as written. 0 or IG_ETOOLARGE. */
int ig_json_canonical(ig_buf_t *out, ig_slice_t span);

/* The same for an object, leaving out the members whose name decodes to
 * `omit` (NULL: none). */
int ig_json_canonical_omit(ig_buf_t *out, ig_slice_t obj, const char *omit);

/* An object member as spans: `name` with its quotes, as written. */
typedef struct {
    ig_slice_t name;
    ig_slice_t value;
    size_t index; /* document order, which breaks ties between equal names */
} ig_json_member_t;

/* Appends the canonical object made of m[0..n) (sorted in place). 0 or
 * IG_ETOOLARGE. */
int ig_json_canonical_members(ig_buf_t *out, ig_json_member_t *m, size_t n);

/* The byte span of `s` with leading and trailing JSON white space removed. */
ig_slice_t ig_json_trim(ig_slice_t s);

#endif
