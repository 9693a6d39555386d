/*
 * codec_v2_int.h: the parsed form of an Open Inference Protocol V2 request,
 * shared by codec_v2.c (parse, key, merge) and codec_v2_split.c (split).
 * Private to the V2 codec.
 *
 * Everything is a span into the request body, except what the split needs
 * after the body may be gone (the request's own "id" and the encoding it
 * asked for each output), which the doc copies into `own`.
 */
#ifndef INFERGATE_CODEC_V2_INT_H
#define INFERGATE_CODEC_V2_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "codec_int.h"

/* What a member of a tensor or of the top level is. */
typedef enum {
    M_OTHER,
    M_NAME,
    M_DATATYPE,
    M_SHAPE,
    M_DATA,
    M_PARAMS,
    M_ID,
    M_INPUTS,
    M_OUTPUTS
} v2_mkind_t;

typedef struct {
    ig_json_member_t m; /* name with quotes, value span */
    v2_mkind_t kind;
} v2_member_t;

typedef struct {
    size_t mfirst, mcount; /* its members: doc->members[mfirst..) */
    const ig_dtype_t *dt;
    size_t dfirst, ndims; /* its shape: doc->dims[dfirst..) */
    uint64_t rows, per_row, count;
    ig_slice_t data;   /* the JSON data array, or empty when binary */
    ig_slice_t inner;  /* flat JSON data: the values between the brackets */
    bool flat;         /* JSON data with no nested array */
    ig_slice_t params; /* its parameters object, or empty */
    bool binary;
    ig_slice_t bin; /* binary tensor data */
} v2_tensor_t;

typedef struct {
    size_t mfirst, mcount;     /* its members in doc->members (merge) */
    ig_slice_t params;         /* its parameters object, or empty (merge) */
    size_t name_off, name_len; /* its raw name, in doc->own (split) */
    int binary;                /* binary_data: -1 not given, 0, 1 */
} v2_output_t;

typedef struct {
    v2_member_t *top; /* the top-level members, in document order */
    size_t ntop, tcap;
    v2_member_t *members; /* the tensors' and the outputs' members */
    size_t nmembers, mcap;
    v2_tensor_t *inputs;
    size_t ninputs, icap;
    uint64_t *dims;
    size_t ndims, dcap;
    v2_output_t *outputs;
    size_t noutputs, ocap;
    bool outputs_listed;
    bool bin_out_all;  /* parameters.binary_data_output */
    ig_slice_t params; /* top-level parameters, or empty */
    ig_buf_t own;      /* the id's JSON text, then the output names */
    size_t id_len;     /* 0: the request had no id */
} v2_doc_t;

/* Whether part `d` wants output `name` (raw, as the model wrote it) in
 * binary: its binary_data, else its binary_data_output. */
bool ig_v2_wants_binary(const v2_doc_t *d, ig_slice_t name, bool name_esc);

/* Cuts a body of the binary tensor data extension into its JSON header and
 * the raw bytes after it (header_len -1: all JSON, no bytes). 0, or -1
 * when header_len is larger than the body. */
static inline int ig_v2_cut(ig_slice_t body, int64_t header_len, ig_slice_t *hdr, ig_slice_t *tail)
{
    *hdr = body;
    *tail = ig_slice(body.base + body.len, 0);
    if (header_len < 0)
        return 0;
    if ((uint64_t)header_len > body.len)
        return -1;
    *hdr = ig_slice(body.base, (size_t)header_len);
    *tail = ig_slice(body.base + header_len, body.len - (size_t)header_len);
    return 0;
}

int ig_v2_split(ig_slice_t body, int64_t header_len, ig_batch_part_t *const *parts, size_t n,
                char *err, size_t errlen);

/* Appends "name": (the name with its quotes, as written), after a comma
 * unless *first (then clears it). 0 or IG_ETOOLARGE. */
int ig_v2_put_name(ig_buf_t *out, bool *first, ig_slice_t name);

/* Appends the shape [rows, tail...]. 0 or IG_ETOOLARGE. */
int ig_v2_put_shape(ig_buf_t *out, uint64_t rows, const uint64_t *tail, size_t ntail);

/* Appends "name":value, after a comma unless *first (then clears it). */
int ig_v2_put_member(ig_buf_t *out, bool *first, ig_slice_t name, ig_slice_t value);

/* Appends the object `obj` (validated; empty base: none) without its
 * members named `omit`, and with `"extra_name":extra` added at its end
 * when extra_name is set. 0 or IG_ETOOLARGE. */
int ig_v2_put_object_except(ig_buf_t *out, ig_slice_t obj, const char *omit, const char *extra_name,
                            ig_slice_t extra);

#endif
