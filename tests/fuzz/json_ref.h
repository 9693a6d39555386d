/*
 * json_ref.h: a slow, obviously correct JSON parser for the differential
 * fuzz targets (tests/fuzz/fuzz_codec_diff.c), written from RFC 8259 and
 * RFC 3629 alone and sharing no code with gateway/base/json.c.
 *
 * It builds a tree whose scalars keep their raw text (a number is the
 * bytes as written, a string its bytes with the quotes and escapes), so a
 * test can say "this value came through unchanged, token by token". String
 * values and member names are also decoded.
 *
 * It has the two limits json.h documents for the scanner: nesting deeper
 * than JREF_MAX_DEPTH containers is refused, and so is a \u escape of a
 * lone surrogate (RFC 8259 8.2 leaves their meaning undefined). Nothing
 * else is refused that RFC 8259 allows, and nothing allowed that it
 * refuses: no byte order mark, no comments, no trailing commas, UTF-8 only.
 */
#ifndef INFERGATE_FUZZ_JSON_REF_H
#define INFERGATE_FUZZ_JSON_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/slice.h"

#define JREF_MAX_DEPTH 128

typedef enum {
    JREF_OBJECT,
    JREF_ARRAY,
    JREF_STRING,
    JREF_NUMBER,
    JREF_TRUE,
    JREF_FALSE,
    JREF_NULL,
} jref_kind_t;

typedef struct jref_node {
    jref_kind_t kind;
    ig_slice_t raw; /* the value as written, from its first byte to its last */
    char *str;      /* JREF_STRING: the decoded bytes (owned, NUL-terminated) */
    size_t str_len;
    ig_slice_t name_raw; /* as an object member: its name between the quotes */
    char *name;          /* ... decoded (owned, NUL-terminated) */
    size_t name_len;
    struct jref_node *kids; /* elements or members, in document order (owned) */
    size_t n;
} jref_node_t;

/* A growing list of borrowed node pointers. */
typedef struct {
    const jref_node_t **v;
    size_t n, cap;
} jref_vec_t;

/* Parses the whole of s[0..len) (white space around one value) into *out.
 * Returns false, with *out zeroed, when the text is not JSON or nests too
 * deeply. The tree borrows `s`. */
bool jref_parse(const char *s, size_t len, jref_node_t *out);

/* Frees what the tree owns; safe on a zeroed node. */
void jref_free(jref_node_t *v);

/* The first member of object `obj` whose name decodes to `name`, or NULL
 * (also when obj is NULL or not an object). */
const jref_node_t *jref_get(const jref_node_t *obj, const char *name);

/* How many members of `obj` have a name decoding to `name`. */
size_t jref_count(const jref_node_t *obj, const char *name);

/* Whether two members of `obj` have the same decoded name. */
bool jref_has_duplicates(const jref_node_t *obj);

/* Whether `v` is a string decoding to `lit`. */
bool jref_str_is(const jref_node_t *v, const char *lit);

/* Whether two values are the same tokens: same structure, every scalar's
 * raw text equal, member names equal as written. With any_order, object
 * members may come in any order (duplicates are matched one to one). */
bool jref_equal(const jref_node_t *a, const jref_node_t *b, bool any_order);

/* Appends the scalars of `v` in row-major order (arrays flattened, any
 * other value is a leaf). */
void jref_leaves(const jref_node_t *v, jref_vec_t *out);

void jref_vec_push(jref_vec_t *vec, const jref_node_t *v);
void jref_vec_free(jref_vec_t *vec);

/* Whether s[0..len) is well-formed UTF-8 (RFC 3629). */
bool jref_utf8_valid(const char *s, size_t len);

/* A number token that is an integer written without fraction or exponent
 * ("-0" included, as 0) and fits 64 bits: its magnitude and sign. */
bool jref_integer(const jref_node_t *v, uint64_t *mag, bool *neg);

#endif
