/*
 * codecref.h: the pre-span cJSON codec, include/infergate/core/codec.h as it was at commit
 * 0a9a26d, kept only as the baseline of `infergate-bench codec` (the "old
 * cJSON path" column of bench/bench/codec.c). It is never linked into the
 * gateway. Every external name is renamed (ig_codec_* -> ig_refcodec_*,
 * ig_batch_part_t -> ig_refcodec_part_t) so that it links beside the
 * codec it is measured against; the code is otherwise unchanged. Do not
 * fix or improve it: it must stay what the gateway ran before.
 *
 * The original opening comment: merging small inference requests into one batch call and
 * splitting the answer back, for KServe V1 (codecref_v1.c) and the Open
 * Inference Protocol V2 (codecref_v2.c).
 *
 * A codec is pure data transformation: no I/O, no clock. The batcher
 * (batcher.c) decides who rides together; the codec says whether a request
 * CAN ride with others (its batch key and row count), builds the merged
 * body, and cuts the model's answer into one body per request.
 *
 * Batch key (DESIGN.md "Batching"): the model name from the path plus
 * everything in the body that is not per-row data. V1: every top-level key
 * but "instances". V2: input names, datatypes, shape[1:], requested
 * outputs, parameters. Two requests may share a call only when their keys
 * are byte-equal; keys are canonical (object members sorted by name).
 */
#ifndef IG_BENCH_CODECREF_H
#define IG_BENCH_CODECREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"
#include "infergate/base/slice.h"

/* One request's share of a batch. Zero-initialise, then ig_refcodec_parse. */
typedef struct ig_refcodec_part {
    uint32_t rows;     /* instances / dim 0 */
    bool alone;        /* valid, but must not be merged (e.g. V2 binary data, V1 "inputs") */
    ig_buf_t key;      /* canonical batch key (owned); empty when alone */
    uint64_t key_hash; /* hash of key, for quick comparison */
    void *doc;         /* the codec's parsed request (owned; a cJSON tree) */
    ig_buf_t reply;    /* after a successful split: this request's response body (owned) */
} ig_refcodec_part_t;

typedef struct ig_refcodec {
    const char *name; /* "kserve-v1", "oip-v2" */

    /* Parses one request body. `model` is the model name from the path (may
     * be empty). Returns 0, or IG_EINVAL with a message for the client in
     * `err` (the request gets 400 and its batch-mates are unaffected).
     * `binary_hint` is true when the request announced binary tensor data
     * (V2's Inference-Header-Content-Length header): such a request is
     * valid but `alone`. */
    int (*parse)(ig_refcodec_part_t *part, ig_slice_t model, ig_slice_t body, bool binary_hint,
                 char *err, size_t errlen);

    /* Builds the body of one call for parts[0..n) (n >= 1, all with equal
     * keys, none alone) into `out`, rows concatenated in the given order.
     * Returns 0 or IG_ETOOLARGE if `out`'s cap is exceeded. */
    int (*merge)(ig_refcodec_part_t *const *parts, size_t n, ig_buf_t *out);

    /* Splits the model's 2xx answer `body` to the merged call into
     * parts[i]->reply. Returns 0, or IG_EUPSTREAM with a message in `err`
     * (e.g. "the model returned 31 predictions for a batch of 32 rows"):
     * then every member fails with 502. */
    int (*split)(ig_slice_t body, ig_refcodec_part_t *const *parts, size_t n, char *err,
                 size_t errlen);
} ig_refcodec_t;

extern const ig_refcodec_t ig_refcodec_v1;
extern const ig_refcodec_t ig_refcodec_v2;

/* Frees what a part owns and zeroes it; safe on a zeroed part. */
void ig_refcodec_part_dispose(ig_refcodec_part_t *part);

/* ---- Helpers shared by codecref_v1.c and codecref_v2.c (defined in codecref.c) ----
 * Not for the batcher: they exist so both codecs parse, print and hash JSON
 * the same way. `struct cJSON` is cJSON's own tag, so this header needs no
 * cJSON include. */
struct cJSON;

/* 64-bit FNV-1a of the bytes (the batch key hash). */
uint64_t ig_refcodec_hash(const void *data, size_t len);

/* Formats a message into err (when errlen > 0) and returns `code`. */
int ig_refcodec_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends a split that could not build request i's reply (`rc`, the buffer's
 * error): disposes the replies of parts[0..ndrop), so that none is left half
 * built, and returns IG_EUPSTREAM with "model answer: cannot build the reply
 * for request I of the batch (<rc's text>)" in err. */
int ig_refcodec_split_fail(ig_refcodec_part_t *const *parts, size_t ndrop, size_t i, int rc,
                           char *err, size_t errlen);

/* Parses `body` as exactly one JSON object (whitespace may follow it).
 * `what` names the body in messages ("body", "model answer"). With `utf8`
 * (client requests), text that is not UTF-8 is refused, as RFC 8259 8.1
 * requires of JSON between systems: the merged call could not carry it
 * unchanged. Returns 0 and the tree in *out (caller frees with
 * cJSON_Delete), or IG_EINVAL with a message: empty, not UTF-8 (with the
 * byte offset), invalid JSON (with the byte offset), trailing bytes, not an
 * object, or a member name that appears twice at the top level. */
int ig_refcodec_parse_object(ig_slice_t body, const char *what, bool utf8, struct cJSON **out,
                             char *err, size_t errlen);

/* Returns the name of a member that appears twice in object `obj` (the
 * pointer lies inside obj), or NULL when every name is unique or obj is not
 * an object. O(n log n). */
const char *ig_refcodec_duplicate_member(const struct cJSON *obj);

/* Appends `v` as compact JSON. With `sorted`, every object's members are
 * written ordered by name (bytewise; equal names keep document order): the
 * canonical form of batch keys. `omit` (NULL-terminated, may be NULL) names
 * members of `v` itself to leave out. Numbers go through
 * ig_refcodec_write_number. Returns 0 or IG_ETOOLARGE (out's cap). */
int ig_refcodec_write_json(ig_buf_t *out, const struct cJSON *v, bool sorted,
                           const char *const *omit);

/* Appends a number so that parsing it back gives the same double:
 * integral values in [-2^63, 2^64) as plain integers (never "1e+17",
 * which integer parsers refuse), others with %.15g, or %.17g when
 * %.15g does not round-trip; -0 as "-0"; infinities (a literal such as
 * 1e999 parses to one) as 1e999 / -1e999. 0 or IG_ETOOLARGE. */
int ig_refcodec_write_number(ig_buf_t *out, double d);

/* Starts a batch key: the model name as a JSON string and a space. */
int ig_refcodec_key_begin(ig_buf_t *key, ig_slice_t model);

#endif
