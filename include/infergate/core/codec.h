/*
 * codec.h: merging small inference requests into one batch call and
 * splitting the answer back, for KServe V1 (codec_v1.c) and the Open
 * Inference Protocol V2 (codec_v2.c).
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
#ifndef INFERGATE_CODEC_H
#define INFERGATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/buf.h"
#include "infergate/base/slice.h"

/* One request's share of a batch. Zero-initialise, then ig_codec_parse. */
typedef struct ig_batch_part {
    uint32_t rows;               /* instances / dim 0 */
    bool alone;                  /* valid, but must not be merged (e.g. V1 "inputs") */
    ig_buf_t key;                /* canonical batch key (owned); empty when alone */
    uint64_t key_hash;           /* hash of key, for quick comparison */
    ig_slice_t body;             /* the request body (borrowed): must stay valid until merge */
    void *doc;                   /* the codec's index of the body and what split needs (owned) */
    void (*doc_free)(void *doc); /* frees doc */
    ig_buf_t reply; /* after a successful split: this request's response body (owned) */
    /* After a successful split: -1 when the reply is plain JSON, else the
     * length of its JSON header (binary tensor data extension; the reply is
     * sent with Inference-Header-Content-Length and application/octet-stream). */
    int64_t reply_header_len;
} ig_batch_part_t;

typedef struct ig_codec {
    const char *name; /* "kserve-v1", "oip-v2" */

    /* Parses one request body. `model` is the model name from the path (may
     * be empty). `header_len` is the request's Inference-Header-Content-Length
     * (V2 binary tensor data extension: the first header_len bytes are the
     * JSON header, the rest raw tensor bytes), or -1 when it had none.
     * Returns 0, or IG_EINVAL with a message for the client in `err` (the
     * request gets 400 and its batch-mates are unaffected). The part
     * borrows `body` (part->body) until merge. */
    int (*parse)(ig_batch_part_t *part, ig_slice_t model, ig_slice_t body, int64_t header_len,
                 char *err, size_t errlen);

    /* Builds the body of one call for parts[0..n) (n >= 1, all with equal
     * keys, none alone, bodies still valid) into `out`, rows concatenated in
     * the given order. *header_len gets -1 for a plain JSON body, else the
     * length of the JSON header before the binary tensor data (the call is
     * then sent with Inference-Header-Content-Length). Returns 0 or
     * IG_ETOOLARGE if `out`'s cap is exceeded. */
    int (*merge)(ig_batch_part_t *const *parts, size_t n, ig_buf_t *out, int64_t *header_len);

    /* Splits the model's 2xx answer `body` to the merged call into
     * parts[i]->reply (and parts[i]->reply_header_len). `header_len` is the
     * answer's Inference-Header-Content-Length, or -1 when it had none.
     * Needs only what each part owns (its body may be gone). Returns 0, or
     * IG_EUPSTREAM with a message in `err` (e.g. "the model returned 31
     * predictions for a batch of 32 rows"): then every member fails with
     * 502 and no part keeps a reply. */
    int (*split)(ig_slice_t body, int64_t header_len, ig_batch_part_t *const *parts, size_t n,
                 char *err, size_t errlen);
} ig_codec_t;

extern const ig_codec_t ig_codec_v1;
extern const ig_codec_t ig_codec_v2;

/* Reads an Inference-Header-Content-Length value: decimal digits only
 * (optional surrounding blanks), at most 2^62. Returns 0 with *out, or
 * IG_EINVAL. */
int ig_codec_header_len(ig_slice_t value, int64_t *out);

/* Frees what a part owns and zeroes it; safe on a zeroed part. */
void ig_batch_part_dispose(ig_batch_part_t *part);

/* ---- Helpers shared by codec_v1.c and codec_v2*.c (defined in codec.c) ---- */

/* Ends a split that could not build request i's reply (`rc`, the buffer's
 * error): disposes the replies of parts[0..ndrop), so that none is left half
 * built, and returns IG_EUPSTREAM with "model answer: cannot build the reply
 * for request I of the batch (<rc's text>)" in err. */
int ig_codec_split_fail(ig_batch_part_t *const *parts, size_t ndrop, size_t i, int rc, char *err,
                        size_t errlen);

/* Starts a batch key: the model name as a JSON string and a space. */
int ig_codec_key_begin(ig_buf_t *key, ig_slice_t model);

/* Fails a scan that went wrong in `j`: "<what>: invalid JSON at byte N:
 * <why>" (or "<what>: not UTF-8 at byte N"), with `code`. */
struct ig_json;
int ig_codec_json_fail(const struct ig_json *j, const char *what, int code, char *err,
                       size_t errlen);

#endif
