/*
 * codec_ref.h: what the reference says of the batching codecs, for
 * tests/fuzz/fuzz_codec_diff.c. Built on the reference JSON parser of
 * json_ref.h and the datatype table of dtype.h, never on the codecs: it
 * decides which V1 bodies are valid, builds echo answers from a merged
 * body, converts JSON values to binary tensor data on its own, reads a V2
 * model answer (and whether a split must refuse it) and checks each
 * reply of a split against it.
 *
 * Every function aborts through FUZZ_CHECK on a broken invariant; nothing
 * here returns an error.
 */
#ifndef INFERGATE_FUZZ_CODEC_REF_H
#define INFERGATE_FUZZ_CODEC_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"
#include "infergate/core/codec.h"
#include "infergate/base/dtype.h"
#include "json_ref.h"

#define REF_MAX_DIMS 16 /* the split takes at most 16 dimensions */

/* How an echo answer is written (bits of the fuzz input's first byte). */
#define REF_ECHO_NEST 0x08       /* V2: data nested by shape */
#define REF_ECHO_DATA_FIRST 0x10 /* data before shape (V1: predictions last) */
#define REF_ECHO_ID 0x20         /* V2: the answer has an "id" of its own */
#define REF_ECHO_WS 0x40         /* white space between tokens */

/* ---- helpers ---- */

bool ref_slice_eq(ig_slice_t a, ig_slice_t b);

/* A string node's raw bytes between its quotes. */
ig_slice_t ref_str_inner(const jref_node_t *v);

/* Appends to b; the buffers have no cap, so these cannot fail. */
void ref_put(ig_buf_t *b, const char *s);
void ref_put_slice(ig_buf_t *b, ig_slice_t s);
void ref_put_fmt(ig_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A shallow copy of object `obj` without its members named omit[0..n):
 * compare it, then free(.kids) only. */
jref_node_t ref_without(const jref_node_t *obj, const char *const *omit, size_t n);

/* Whether objects a and b are equal but for members named omit[0..n). */
bool ref_equal_without(const jref_node_t *a, const jref_node_t *b, const char *const *omit,
                       size_t n, bool any_order);

/* A shape as the codecs take one: 1 to REF_MAX_DIMS non-negative integers
 * of at most 16 digits ("-0" is 0). */
bool ref_dims(const jref_node_t *shape, uint64_t *dims, size_t *ndims);

/* Product of dims, saturating at UINT64_MAX (0 when a dimension is). */
uint64_t ref_product(const uint64_t *dims, size_t n);

/* ---- V1 ---- */

/* What a V1 body must get: NULL when it must be refused, else its
 * instances array, or `d` itself for a columnar ("inputs") body, which
 * goes alone. `parsed`: whether d is a tree at all. */
const jref_node_t *ref_v1(const jref_node_t *d, bool parsed);

/* The echo model's answer to the merged V1 body: its instances as the
 * predictions, and a "model_version". */
void ref_v1_echo(ig_buf_t *a, const ig_buf_t *merged, unsigned flags);

/* ---- V2 ---- */

/* Values of one output for some rows: JSON leaves or binary tensor data. */
typedef struct {
    bool json;
    const jref_node_t *const *leaves;
    size_t nleaves;
    ig_slice_t bytes;
} ref_vals_t;

/* One output of a model answer, as the reference reads it. */
typedef struct {
    const jref_node_t *obj;
    ig_slice_t name; /* raw */
    bool has_name;
    const ig_dtype_t *dt;
    uint64_t dims[REF_MAX_DIMS];
    size_t ndims;
    uint64_t per_row;
    bool binary;
    ig_slice_t bin;
    jref_vec_t leaves;
} ref_output_t;

typedef struct {
    jref_node_t doc;
    bool parsed;
    bool simple;    /* no duplicate members: the reference predicts the reply */
    bool must_fail; /* the split cannot use it */
    ref_output_t *outs;
    size_t nouts;
} ref_answer_t;

/* Whether the request `doc` asked for output `name` (raw, as the model
 * wrote it) in binary: its first output so named that has a binary_data
 * flag, else its parameters.binary_data_output. An output without a name
 * matches none of the listed ones. */
bool ref_wants_binary(const jref_node_t *doc, ig_slice_t name, bool has_name);

/* Appends the JSON values `leaves` as binary tensor data of dt. 1 when
 * done, 0 when a value does not fit, -1 when the reference does not
 * convert the datatype (FP16, BF16: only counts are compared). */
int ref_to_binary(const ig_dtype_t *dt, const jref_vec_t *leaves, ig_buf_t *out);

/* The element count of binary data of dt, or SIZE_MAX when it is not whole
 * elements. */
size_t ref_binary_count(const ig_dtype_t *dt, ig_slice_t b);

/* Whether `got` holds the values `want`: token for token when both are
 * JSON, else compared as binary tensor data (BOOL bytes as zero or not). */
bool ref_same_values(const ig_dtype_t *dt, const ref_vals_t *want, const ref_vals_t *got);

/* Reads a V2 model answer (JSON header `hdr`, binary `tail`) to a batch
 * of `total` rows; say whether the split must refuse it. The answer
 * borrows hdr and tail; dispose of it. */
void ref_answer_read(ref_answer_t *a, ig_slice_t hdr, ig_slice_t tail, uint64_t total);
void ref_answer_dispose(ref_answer_t *a);

/* The values of rows [r0, r0 + rows) of an answer's output. */
ref_vals_t ref_answer_rows(const ref_output_t *o, uint64_t r0, uint64_t rows);

/* Checks part's reply (the p-th of the batch, its rows starting at r0;
 * `doc` is its request's JSON) against the answer: the answer's members
 * with the request's own id, every output cut to the part's rows, in the
 * encoding the request asked for, holding exactly those rows' values. */
void ref_v2_check_reply(const ref_answer_t *a, const jref_node_t *doc, const ig_batch_part_t *part,
                        size_t p, uint64_t r0);

/* One output of an echo answer: name, datatype and shape of the merged
 * input `mi`, then `data` (a JSON array's text) or, when bin_size >= 0, a
 * binary_data_size. */
void ref_v2_echo_output(ig_buf_t *a, const jref_node_t *mi, unsigned flags, const char *data,
                        int64_t bin_size);

/* The echo model's JSON answer to the merged V2 JSON body m: every input
 * as an output, data flat or (REF_ECHO_NEST) nested by its shape. */
void ref_v2_echo(ig_buf_t *a, const jref_node_t *m, unsigned flags);

/* Whether binary data of dt can be given as JSON (finite floats, UTF-8
 * strings), and its elements as a JSON array (FP32, INT64 and BYTES). */
bool ref_json_able(const ig_dtype_t *dt, ig_slice_t b);
void ref_bytes_to_json(const ig_dtype_t *dt, ig_slice_t b, ig_buf_t *out);

#endif
