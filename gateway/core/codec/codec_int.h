/*
 * codec_int.h: what the batching codecs share about tensor data
 * (codec_tensor.c), private to codec.c, codec_v1.c, codec_v2*.c.
 *
 * JSON tensor data is walked without converting it: scalars are checked
 * against their datatype on their digits and counted, and the walk records
 * where rows begin and end so that a split can copy each client's rows as
 * the model wrote them. The binary tensor data extension's raw bytes are
 * converted to JSON text, or JSON text to raw bytes, only where a client
 * asked for the other encoding than the one the model used (or another
 * member of its batch sent); these conversions are exact for integers,
 * BOOL and BYTES, and for floats give the same value of the datatype.
 */
#ifndef INFERGATE_CODEC_INT_H
#define INFERGATE_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"
#include "infergate/core/codec.h"
#include "infergate/base/dtype.h"
#include "infergate/base/json.h"

/* A walk over a tensor's `data` array (flat or nested). Set the inputs,
 * zero the rest, call ig_tensor_walk with the scanner at the array. */
typedef struct {
    /* in */
    const ig_dtype_t *dt; /* NULL: any JSON scalar is fine (model answers) */
    const char *where;    /* names the tensor in messages */
    char *err;
    size_t errlen;
    int code;         /* the error code to return (IG_EINVAL, IG_EUPSTREAM) */
    bool objects;     /* with dt NULL: objects count as scalars too (V1 rows) */
    uint64_t per_row; /* with bounds: scalars per row */
    size_t *bounds;   /* optional, 2 * nrows entries: [2r] the offset where
                       * row r's first scalar starts, [2r+1] where its last
                       * one ends (flat data only) */
    ig_slice_t *tops; /* optional, ntops entries: the top-level elements */
    size_t nrows;     /* size of bounds / tops, in rows */
    /* out */
    uint64_t count;   /* scalars */
    size_t top;       /* top-level elements */
    bool nested;      /* some element is an array */
    bool top_arrays;  /* every top-level element is an array */
    bool even_tops;   /* every top-level array holds exactly per_row scalars */
    ig_slice_t inner; /* the bytes between the array's brackets, trimmed */
    uint64_t k, row;  /* private: where the walk is in the current row */
} ig_twalk_t;

/* Walks the array at j's position and moves past it. 0, or w->code with a
 * message in w->err ("<where>.data: value 3 (9223372036854775808) is out of
 * range for INT64", or the grammar error with its byte offset). */
int ig_tensor_walk(ig_json_t *j, ig_twalk_t *w);

/* Checks a number against a numeric datatype on its text. NULL when it
 * fits, else what is wrong ("is not an integer", "is out of range"). */
const char *ig_tensor_check_number(const ig_dtype_t *dt, const ig_json_num_t *num);

/* Appends every scalar of the validated JSON array `data`, flattened, each
 * preceded by a comma unless *first. 0 or IG_ETOOLARGE. */
int ig_tensor_write_leaves(ig_buf_t *out, ig_slice_t data, bool *first);

/* Appends the scalars of the validated JSON array `data` as binary tensor
 * data of datatype dt (little-endian; BYTES with 4-byte length prefixes).
 * 0, IG_ETOOLARGE, or IG_EINVAL when a value does not fit the datatype
 * (model answers are not checked beforehand). */
int ig_tensor_to_binary(const ig_dtype_t *dt, ig_slice_t data, ig_buf_t *out);

/* Appends `count` elements of binary tensor data `bytes` as comma-separated
 * JSON scalars. 0, IG_ETOOLARGE, or IG_EINVAL (a NaN or infinity, BYTES
 * that are not UTF-8, or bytes that do not hold count elements). */
int ig_tensor_to_json(const ig_dtype_t *dt, const char *bytes, size_t len, uint64_t count,
                      ig_buf_t *out);

/* Checks that binary BYTES data bytes[0..len) holds exactly `count`
 * length-prefixed elements. With `bounds` (2 * nrows entries), records the
 * byte offsets where each row of per_row elements starts and ends. */
bool ig_tensor_bytes_ok(const char *bytes, size_t len, uint64_t count, uint64_t per_row,
                        size_t *bounds, size_t nrows);

/* Product of dims, saturating at UINT64_MAX. */
uint64_t ig_tensor_product(const uint64_t *dims, size_t n);

#endif
