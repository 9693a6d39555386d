/*
 * gen.h: synthetic inference requests for `infergate-bench codec` and
 * `overhead`, and the answer an echo model would give to a batch of them.
 *
 * Every request is a tensor of R rows of 4 FP32 values, in one of three
 * encodings: KServe V1 JSON ({"instances":[[f,f,f,f],...]}), Open Inference
 * Protocol V2 JSON (one input "x", shape [R,4], flat data) and V2 with the
 * binary tensor data extension (a JSON header with binary_data_size, then
 * R*16 raw little-endian bytes, and a binary output asked for). Values are
 * random floats written the way clients write them: varying magnitudes and
 * digit counts. A generator is seeded, so the same seed gives the same bytes
 * on every run and machine. Nothing here is timed.
 */
#ifndef IG_BENCH_GEN_H
#define IG_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"

typedef enum { IG_GEN_V1_JSON, IG_GEN_V2_JSON, IG_GEN_V2_BINARY, IG_GEN__COUNT } ig_gen_kind_t;

/* "v1-json", "v2-json", "v2-binary"; ig_gen_kind_parse returns 0 or IG_EINVAL. */
const char *ig_gen_kind_name(ig_gen_kind_t k);
int ig_gen_kind_parse(const char *name, size_t len, ig_gen_kind_t *out);

/* splitmix64: small, fast and good enough for test data. */
typedef struct {
    uint64_t state;
} ig_gen_rng_t;

void ig_gen_seed(ig_gen_rng_t *r, uint64_t seed);
uint64_t ig_gen_next(ig_gen_rng_t *r);

/* One generated request. `values` holds what an echo model sends back for
 * it: V1 the rows as written ("[a,b,c,d],[...]"), V2 JSON the flat values
 * ("a,b,..."), V2 binary the raw bytes. All buffers are owned. */
typedef struct {
    ig_gen_kind_t kind;
    uint32_t rows;
    ig_buf_t body;
    int64_t header_len; /* -1 for JSON, else the JSON header's length in body */
    ig_buf_t values;
} ig_gen_request_t;

/* Builds a request of `rows` rows from the generator into `q` (which it
 * initialises; free with ig_gen_request_dispose). */
void ig_gen_request(ig_gen_request_t *q, ig_gen_kind_t kind, uint32_t rows, ig_gen_rng_t *r);

void ig_gen_request_dispose(ig_gen_request_t *q);

/* The number of rows that makes a request of `kind` about `bytes` long
 * (at least 1), estimated from a sample with a fixed seed. */
uint32_t ig_gen_rows_for_bytes(ig_gen_kind_t kind, size_t bytes);

/* The answer of an echo model to the merged call of qs[0..n) (all of one
 * kind), into `out` (initialised here): V1 {"predictions":[every row],
 * "model_name":"m"}; V2 one output "x" of shape [total rows, 4] with every
 * value, as JSON data or, for binary, as binary_data_size and raw bytes
 * after the header, whose length goes to *header_len (-1 for JSON). */
void ig_gen_echo_answer(const ig_gen_request_t *qs, size_t n, ig_buf_t *out, int64_t *header_len);

#endif
