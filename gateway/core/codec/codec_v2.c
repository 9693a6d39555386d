/*
 * codec_v2.c: batching for the Open Inference Protocol V2 (KServe V2,
 * Triton): parse, batch key and merge. The split is in codec_v2_split.c.
 *
 * A V2 request carries tensors: {"id", "parameters", "inputs": [{name,
 * datatype, shape, data, parameters}], "outputs": [{name, parameters}]}.
 * Dimension 0 of every input is the batch axis, so requests whose inputs
 * agree on everything but dim 0 and the data (names, datatypes, shape[1:],
 * per-input parameters, requested outputs, top-level parameters) can be
 * stacked: the merged call has shape [sum of rows, ...] and the row-major
 * concatenation of every part's data, copied as the clients wrote it.
 *
 * The binary tensor data extension is batched too. A request with an
 * Inference-Header-Content-Length header is a JSON header followed by the
 * raw bytes of every input that has parameters.binary_data_size. Whether an
 * input or output is binary is not part of the key: in a merged call an
 * input is binary when any member sent it binary (the others' JSON values
 * are converted to bytes), and an output is asked for in binary when any
 * member wants it so; each reply gets the encoding its own request asked
 * for. FP16 and BF16 inputs are the exception: their JSON text is not
 * converted (that would round twice), so for them the encoding is in the key.
 *
 * The request "id" is per request: it is not in the key, the merged call
 * carries none, and each reply gets its own back. Parsing checks what a
 * merge relies on (shapes agree with the data, every value fits its
 * datatype, checked on its digits, binary sizes add up), so a malformed
 * request gets its own 400 instead of poisoning its batch-mates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_v2_int.h"
#include "infergate/base/error.h"
#include "infergate/base/hash.h"

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 8;                                                         \
            (arr) = ig_xrealloc((arr), (cap) * sizeof(*(arr)));                                    \
        }                                                                                          \
    } while (0)

/* The largest dimension and binary size taken: 2^53 (a JSON number every
 * client library reads exactly). */
#define MAX_DIM 9007199254740992ull

static void v2_doc_free(void *p)
{
    v2_doc_t *d = p;
    free(d->top);
    free(d->members);
    free(d->inputs);
    free(d->dims);
    free(d->outputs);
    ig_buf_dispose(&d->own);
    free(d);
}

typedef struct {
    ig_json_t j;
    v2_doc_t *d;
    char *err;
    size_t errlen;
    char where[96];
} pctx_t;

static int bad_json(pctx_t *c)
{
    return ig_codec_json_fail(&c->j, "body", IG_EINVAL, c->err, c->errlen);
}

#define FAIL(c, ...) ig_error_fmt((c)->err, (c)->errlen, IG_EINVAL, __VA_ARGS__)

/* Reads a JSON integer in [0, MAX_DIM]; -1 when the value is something else. */
static int read_count(pctx_t *c, uint64_t *out)
{
    ig_json_num_t num;
    int ch = ig_json_peek(&c->j);
    if (ch != '-' && (ch < '0' || ch > '9')) {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return -1;
    }
    if (ig_json_number(&c->j, &num))
        return bad_json(c);
    if (!num.integer || (num.neg && !num.zero) || num.digits.len > 16)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < num.digits.len; i++)
        v = v * 10 + (uint64_t)(num.digits.base[i] - '0');
    if (v > MAX_DIM)
        return -1;
    *out = v;
    return 0;
}

/* Reads true or false; -1 when the value is something else. */
static int read_flag(pctx_t *c, bool *out)
{
    ig_json_kind_t k;
    if (ig_json_value(&c->j, &k, NULL))
        return bad_json(c);
    if (k != IG_JSON_TRUE && k != IG_JSON_FALSE)
        return -1;
    *out = k == IG_JSON_TRUE;
    return 0;
}

/* Reads a parameters object, looking for the one flag or size named `key`:
 * *flag (binary_data, binary_data_output) or *size (binary_data_size). */
static int read_params(pctx_t *c, const char *what, const char *key, int *flag, int64_t *size)
{
    ig_slice_t name;
    bool esc, b = false;
    size_t i = 0;
    int r;

    if (ig_json_peek(&c->j) != '{') {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return FAIL(c, "%s.parameters: expected an object", what);
    }
    ig_json_enter(&c->j, '{');
    while ((r = ig_json_member(&c->j, &i, &name, &esc)) == 1) {
        if (!ig_json_str_eq(name, esc, key)) {
            if (ig_json_value(&c->j, NULL, NULL))
                return bad_json(c);
            continue;
        }
        if (size) {
            uint64_t v;
            if ((r = read_count(c, &v)) > 0)
                return r;
            if (r < 0 || *size >= 0)
                return FAIL(c, "%s.parameters.%s: %s", what, key,
                            r < 0 ? "expected a byte count" : "given twice");
            *size = (int64_t)v;
        } else {
            if ((r = read_flag(c, &b)) > 0)
                return r;
            if (r < 0 || *flag >= 0)
                return FAIL(c, "%s.parameters.%s: %s", what, key,
                            r < 0 ? "expected true or false" : "given twice");
            *flag = b;
        }
    }
    return r < 0 ? bad_json(c) : 0;
}

static v2_mkind_t tensor_kind(ig_slice_t name, bool esc)
{
    if (ig_json_str_eq(name, esc, "name"))
        return M_NAME;
    if (ig_json_str_eq(name, esc, "datatype"))
        return M_DATATYPE;
    if (ig_json_str_eq(name, esc, "shape"))
        return M_SHAPE;
    if (ig_json_str_eq(name, esc, "data"))
        return M_DATA;
    if (ig_json_str_eq(name, esc, "parameters"))
        return M_PARAMS;
    return M_OTHER;
}

static int read_shape(pctx_t *c, v2_tensor_t *t)
{
    v2_doc_t *d = c->d;
    size_t i = 0;
    int r;
    if (ig_json_peek(&c->j) != '[') {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return FAIL(c, "%s.shape: expected a non-empty array of dimensions", c->where);
    }
    ig_json_enter(&c->j, '[');
    t->dfirst = d->ndims;
    while ((r = ig_json_element(&c->j, &i)) == 1) {
        uint64_t v;
        if ((r = read_count(c, &v)) > 0)
            return r;
        if (r < 0)
            return FAIL(c, "%s.shape[%zu]: expected a non-negative integer", c->where, i - 1);
        GROW(d->dims, d->ndims, d->dcap);
        d->dims[d->ndims++] = v;
    }
    if (r < 0)
        return bad_json(c);
    t->ndims = d->ndims - t->dfirst;
    if (t->ndims == 0)
        return FAIL(c, "%s.shape: expected a non-empty array of dimensions", c->where);
    return 0;
}

static void shape_text(const v2_doc_t *d, const v2_tensor_t *t, char *out, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(out, len, "[");
    for (size_t k = 0; k < t->ndims && at < len; k++)
        at += (size_t)snprintf(out + at, len - at, "%s%" PRIu64, k ? "," : "",
                               d->dims[t->dfirst + k]);
    if (at < len)
        snprintf(out + at, len - at, "]");
}

static int walk(pctx_t *c, v2_tensor_t *t, ig_json_t *j)
{
    ig_twalk_t w = {
        .dt = t->dt, .where = c->where, .err = c->err, .errlen = c->errlen, .code = IG_EINVAL};
    int rc = ig_tensor_walk(j, &w);
    if (rc)
        return rc;
    t->count = w.count;
    t->flat = !w.nested;
    t->inner = w.inner;
    return 0;
}

/* Reads one input tensor at the scanner's position. */
static int read_tensor(pctx_t *c, size_t index)
{
    v2_doc_t *d = c->d;
    ig_slice_t name, tname = {NULL, 0};
    bool esc;
    size_t i = 0;
    int r, rc;
    unsigned seen = 0;
    int64_t bin_size = -1;
    int unused_flag = -1;
    bool deferred = false;

    snprintf(c->where, sizeof(c->where), "inputs[%zu]", index);
    if (ig_json_peek(&c->j) != '{') {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return FAIL(c, "%s: expected a tensor object", c->where);
    }
    GROW(d->inputs, d->ninputs, d->icap);
    v2_tensor_t *t = &d->inputs[d->ninputs++];
    memset(t, 0, sizeof(*t));
    t->mfirst = d->nmembers;
    ig_json_enter(&c->j, '{');
    while ((r = ig_json_member(&c->j, &i, &name, &esc)) == 1) {
        v2_mkind_t kind = tensor_kind(name, esc);
        size_t vstart = c->j.pos;
        if (kind != M_OTHER) {
            if (seen & (1u << kind))
                return FAIL(c, "%s: member \"%.*s\" appears twice", c->where, (int)name.len,
                            name.base);
            seen |= 1u << kind;
        }
        switch (kind) {
        case M_NAME:
            if (ig_json_peek(&c->j) != '"') {
                if (ig_json_value(&c->j, NULL, NULL))
                    return bad_json(c);
                return FAIL(c, "%s.name: expected a string", c->where);
            }
            if (ig_json_string(&c->j, &tname, NULL))
                return bad_json(c);
            snprintf(c->where, sizeof(c->where), "inputs[%zu] (\"%.*s\")", index,
                     (int)(tname.len > 48 ? 48 : tname.len), tname.base);
            break;
        case M_DATATYPE: {
            ig_slice_t raw;
            bool desc;
            if (ig_json_peek(&c->j) != '"') {
                if (ig_json_value(&c->j, NULL, NULL))
                    return bad_json(c);
                return FAIL(c, "%s.datatype: expected a string", c->where);
            }
            if (ig_json_string(&c->j, &raw, &desc))
                return bad_json(c);
            if (desc) {
                char tmp[16];
                ig_buf_t b;
                ig_buf_init(&b, sizeof(tmp));
                if (ig_json_unescape(raw, &b) == 0)
                    t->dt = ig_dtype_find_n(b.base, b.len);
                ig_buf_dispose(&b);
            } else {
                t->dt = ig_dtype_find_n(raw.base, raw.len);
            }
            if (!t->dt)
                return FAIL(c,
                            "%s.datatype: \"%.*s\" is not a tensor datatype (BOOL, UINT8..64, "
                            "INT8..64, FP16, FP32, FP64, BF16, BYTES)",
                            c->where, (int)(raw.len > 32 ? 32 : raw.len), raw.base);
            break;
        }
        case M_SHAPE:
            if ((rc = read_shape(c, t)))
                return rc;
            break;
        case M_DATA:
            if (t->dt) {
                if ((rc = walk(c, t, &c->j)))
                    return rc;
            } else {
                /* The datatype comes later: check the grammar now and the
                 * values once it is known. */
                if (ig_json_peek(&c->j) != '[') {
                    if (ig_json_value(&c->j, NULL, NULL))
                        return bad_json(c);
                    return FAIL(c, "%s.data: expected an array", c->where);
                }
                if (ig_json_value(&c->j, NULL, NULL))
                    return bad_json(c);
                deferred = true;
            }
            t->data = ig_slice(c->j.s + vstart, c->j.pos - vstart);
            break;
        case M_PARAMS:
            if ((rc = read_params(c, c->where, "binary_data_size", &unused_flag, &bin_size)))
                return rc;
            t->params = ig_slice(c->j.s + vstart, c->j.pos - vstart);
            break;
        default:
            if (ig_json_value(&c->j, NULL, NULL))
                return bad_json(c);
            break;
        }
        GROW(d->members, d->nmembers, d->mcap);
        d->members[d->nmembers++] = (v2_member_t){{ig_slice(name.base - 1, name.len + 2),
                                                   ig_slice(c->j.s + vstart, c->j.pos - vstart), i},
                                                  kind};
    }
    if (r < 0)
        return bad_json(c);
    t->mcount = d->nmembers - t->mfirst;
    if (!(seen & (1u << M_NAME)))
        return FAIL(c, "%s.name: expected a string", c->where);
    if (!t->dt)
        return FAIL(c, "%s.datatype: missing", c->where);
    if (!(seen & (1u << M_SHAPE)))
        return FAIL(c, "%s.shape: missing", c->where);
    t->rows = d->dims[t->dfirst];
    if (t->rows < 1)
        return FAIL(c, "%s.shape[0]: expected at least 1 row, got 0", c->where);
    if (t->rows > UINT32_MAX)
        return FAIL(c, "%s.shape[0]: %" PRIu64 " rows is too many", c->where, t->rows);
    uint64_t want = ig_tensor_product(d->dims + t->dfirst, t->ndims);
    t->per_row = ig_tensor_product(d->dims + t->dfirst + 1, t->ndims - 1);
    if (t->data.base && bin_size >= 0)
        return FAIL(c, "%s: has both data and parameters.binary_data_size; send one", c->where);
    if (bin_size >= 0) {
        t->binary = true;
        t->count = want;
        t->bin = ig_slice(NULL, (size_t)bin_size);
        return 0;
    }
    if (!t->data.base)
        return FAIL(c, "%s.data: missing", c->where);
    if (deferred) {
        ig_json_t sub;
        ig_json_init(&sub, t->data.base, t->data.len);
        if ((rc = walk(c, t, &sub)))
            return rc;
    }
    if (t->count != want) {
        char shp[72];
        shape_text(d, t, shp, sizeof(shp));
        if (want == UINT64_MAX)
            return FAIL(c, "%s.data: holds %" PRIu64 " values but shape %s is far larger", c->where,
                        t->count, shp);
        return FAIL(c, "%s.data: holds %" PRIu64 " values but shape %s needs %" PRIu64, c->where,
                    t->count, shp, want);
    }
    return 0;
}

static int read_inputs(pctx_t *c)
{
    size_t i = 0;
    int r, rc;
    if (ig_json_peek(&c->j) != '[') {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return FAIL(c, "inputs: expected an array of tensors");
    }
    ig_json_enter(&c->j, '[');
    while ((r = ig_json_element(&c->j, &i)) == 1)
        if ((rc = read_tensor(c, i - 1)))
            return rc;
    if (r < 0)
        return bad_json(c);
    if (i == 0)
        return FAIL(c, "inputs: empty, expected at least one tensor");
    return 0;
}

static int read_outputs(pctx_t *c)
{
    v2_doc_t *d = c->d;
    size_t i = 0, k;
    int r, rc;
    if (ig_json_peek(&c->j) != '[') {
        if (ig_json_value(&c->j, NULL, NULL))
            return bad_json(c);
        return FAIL(c, "outputs: expected an array of {\"name\": ...} objects");
    }
    ig_json_enter(&c->j, '[');
    d->outputs_listed = true;
    while ((r = ig_json_element(&c->j, &i)) == 1) {
        char where[32];
        ig_slice_t name, oname = {NULL, 0};
        bool esc;
        unsigned seen = 0;
        snprintf(where, sizeof(where), "outputs[%zu]", i - 1);
        if (ig_json_peek(&c->j) != '{') {
            if (ig_json_value(&c->j, NULL, NULL))
                return bad_json(c);
            return FAIL(c, "%s: expected an object", where);
        }
        GROW(d->outputs, d->noutputs, d->ocap);
        v2_output_t *o = &d->outputs[d->noutputs++];
        *o = (v2_output_t){.mfirst = d->nmembers, .binary = -1};
        ig_json_enter(&c->j, '{');
        k = 0;
        while ((r = ig_json_member(&c->j, &k, &name, &esc)) == 1) {
            v2_mkind_t kind = tensor_kind(name, esc);
            size_t vstart = c->j.pos;
            if (kind == M_NAME || kind == M_PARAMS) {
                if (seen & (1u << kind))
                    return FAIL(c, "%s: member \"%.*s\" appears twice", where, (int)name.len,
                                name.base);
                seen |= 1u << kind;
            }
            if (kind == M_NAME) {
                if (ig_json_peek(&c->j) != '"') {
                    if (ig_json_value(&c->j, NULL, NULL))
                        return bad_json(c);
                    return FAIL(c, "%s.name: expected a string", where);
                }
                if (ig_json_string(&c->j, &oname, &esc))
                    return bad_json(c);
            } else if (kind == M_PARAMS) {
                if ((rc = read_params(c, where, "binary_data", &o->binary, NULL)))
                    return rc;
                o->params = ig_slice(c->j.s + vstart, c->j.pos - vstart);
            } else {
                kind = M_OTHER;
                if (ig_json_value(&c->j, NULL, NULL))
                    return bad_json(c);
            }
            GROW(d->members, d->nmembers, d->mcap);
            d->members[d->nmembers++] =
                (v2_member_t){{ig_slice(name.base - 1, name.len + 2),
                               ig_slice(c->j.s + vstart, c->j.pos - vstart), k},
                              kind};
        }
        if (r < 0)
            return bad_json(c);
        o->mcount = d->nmembers - o->mfirst;
        if (!oname.base)
            return FAIL(c, "%s.name: expected a string", where);
        o->name_off = d->own.len;
        o->name_len = oname.len;
        ig_buf_append_slice(&d->own, oname);
    }
    return r < 0 ? bad_json(c) : 0;
}

static v2_mkind_t top_kind(ig_slice_t name, bool esc)
{
    if (ig_json_str_eq(name, esc, "id"))
        return M_ID;
    if (ig_json_str_eq(name, esc, "inputs"))
        return M_INPUTS;
    if (ig_json_str_eq(name, esc, "outputs"))
        return M_OUTPUTS;
    if (ig_json_str_eq(name, esc, "parameters"))
        return M_PARAMS;
    return M_OTHER;
}

/* Places every binary input's bytes in the body after the JSON header. */
static int place_binary(pctx_t *c, ig_slice_t tail, bool announced)
{
    v2_doc_t *d = c->d;
    size_t off = 0;
    bool any = false;
    for (size_t k = 0; k < d->ninputs; k++) {
        v2_tensor_t *t = &d->inputs[k];
        if (!t->binary)
            continue;
        any = true;
        size_t size = t->bin.len;
        snprintf(c->where, sizeof(c->where), "inputs[%zu]", k);
        if (!announced)
            return FAIL(c,
                        "%s.parameters.binary_data_size: binary tensor data needs the "
                        "Inference-Header-Content-Length header",
                        c->where);
        if (size > tail.len - off)
            return FAIL(c,
                        "%s.parameters.binary_data_size: %zu bytes, but only %zu bytes of "
                        "binary data are left in the body",
                        c->where, size, tail.len - off);
        t->bin = ig_slice(tail.base + off, size);
        off += size;
        if (t->dt->kind == IG_DT_BYTES) {
            if (!ig_tensor_bytes_ok(t->bin.base, t->bin.len, t->count, 0, NULL, 0))
                return FAIL(c,
                            "%s: %zu bytes of BYTES data do not hold %" PRIu64
                            " length-prefixed elements",
                            c->where, size, t->count);
        } else if (t->count > size / t->dt->size || t->count * t->dt->size != size) {
            return FAIL(c,
                        "%s.parameters.binary_data_size: %zu bytes, but %" PRIu64
                        " %s elements need %" PRIu64,
                        c->where, size, t->count, t->dt->name,
                        t->count > UINT64_MAX / t->dt->size ? UINT64_MAX : t->count * t->dt->size);
        }
    }
    if (off != tail.len)
        return FAIL(c,
                    "binary tensor data: the inputs' binary_data_size add up to %zu bytes, but "
                    "%zu bytes follow the JSON header",
                    off, tail.len);
    (void)any;
    return 0;
}

static int canon_except(ig_buf_t *key, const v2_member_t *m, size_t n, unsigned omit_kinds)
{
    ig_json_member_t stack[16], *km = n <= 16 ? stack : ig_xmalloc(n * sizeof(*km));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(omit_kinds & (1u << m[i].kind)))
            km[k++] = m[i].m;
    int rc = ig_json_canonical_members(key, km, k);
    if (km != stack)
        free(km);
    return rc;
}

/* Appends the canonical form of a parameters object without its member
 * `omit` (a binary flag, which is not in the key), or nothing when no
 * other member is left: {"binary_data": true} and no parameters at all
 * ask the model for the same thing. */
static int key_params(ig_buf_t *key, const char *tag, ig_slice_t params, const char *omit)
{
    size_t at = key->len;
    int rc;
    if (!params.base)
        return 0;
    if ((rc = ig_buf_append_str(key, tag)) || (rc = ig_json_canonical_omit(key, params, omit)))
        return rc;
    if (key->len - at == strlen(tag) + 2)
        key->len = at; /* "{}" */
    return 0;
}

static int build_key(ig_batch_part_t *part, ig_slice_t model, const v2_doc_t *d)
{
    ig_buf_t *key = &part->key;
    int rc;

    ig_buf_init(key, 0);
    if ((rc = ig_codec_key_begin(key, model)) ||
        (rc = canon_except(key, d->top, d->ntop,
                           1u << M_ID | 1u << M_INPUTS | 1u << M_OUTPUTS | 1u << M_PARAMS)))
        return rc;
    if ((rc = key_params(key, " P", d->params, "binary_data_output")))
        return rc;
    if (d->outputs_listed && (rc = ig_buf_append(key, " O", 2)))
        return rc;
    for (size_t k = 0; k < d->noutputs; k++) {
        const v2_output_t *o = &d->outputs[k];
        if ((rc = ig_buf_append(key, " ", 1)) ||
            (rc = canon_except(key, d->members + o->mfirst, o->mcount, 1u << M_PARAMS)))
            return rc;
        if ((rc = key_params(key, " p", o->params, "binary_data")))
            return rc;
    }
    for (size_t k = 0; k < d->ninputs; k++) {
        const v2_tensor_t *t = &d->inputs[k];
        if ((rc = ig_buf_append(key, " I", 2)) ||
            (rc = canon_except(key, d->members + t->mfirst, t->mcount,
                               1u << M_DATA | 1u << M_SHAPE | 1u << M_PARAMS)))
            return rc;
        if ((rc = key_params(key, " p", t->params, "binary_data_size")))
            return rc;
        rc = ig_buf_append(key, "[", 1);
        for (size_t x = 1; x < t->ndims && !rc; x++)
            rc = ig_buf_printf(key, "%s%" PRIu64, x > 1 ? "," : "", d->dims[t->dfirst + x]);
        if (!rc)
            rc = ig_buf_append(key, "]", 1);
        /* FP16/BF16 JSON text is never converted: the encoding must match. */
        if (!rc && t->dt->size == 2 && t->dt->kind == IG_DT_FLOAT)
            rc = ig_buf_append(key, t->binary ? "b" : "j", 1);
        if (rc)
            return rc;
    }
    part->key_hash = ig_hash_bytes(key->base, key->len);
    return 0;
}

static int v2_parse(ig_batch_part_t *part, ig_slice_t model, ig_slice_t body, int64_t header_len,
                    char *err, size_t errlen)
{
    ig_slice_t hdr, tail, name;
    pctx_t c = {.err = err, .errlen = errlen};
    bool esc;
    size_t i = 0;
    unsigned seen = 0;
    int r, rc;
    int bin_out = -1;

    part->reply_header_len = -1;
    if (ig_v2_cut(body, header_len, &hdr, &tail) != 0)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "Inference-Header-Content-Length (%" PRId64
                            ") is larger than the body (%zu bytes)",
                            header_len, body.len);
    if (ig_json_trim(hdr).len == 0)
        return ig_error_fmt(err, errlen, IG_EINVAL, "body: empty, expected a JSON object");
    c.d = ig_xcalloc(1, sizeof(*c.d));
    ig_buf_init(&c.d->own, 0);
    ig_json_init(&c.j, hdr.base, hdr.len);
    if (ig_json_peek(&c.j) != '{') {
        rc = ig_json_value(&c.j, NULL, NULL) ? bad_json(&c)
                                             : FAIL(&c, "body: expected a JSON object");
        goto fail;
    }
    ig_json_enter(&c.j, '{');
    while ((r = ig_json_member(&c.j, &i, &name, &esc)) == 1) {
        v2_mkind_t kind = top_kind(name, esc);
        size_t vstart = c.j.pos;
        if (kind != M_OTHER) {
            if (seen & (1u << kind)) {
                rc = FAIL(&c, "body: member \"%.*s\" appears twice", (int)name.len, name.base);
                goto fail;
            }
            seen |= 1u << kind;
        }
        rc = 0;
        switch (kind) {
        case M_ID: {
            ig_slice_t id;
            if (ig_json_peek(&c.j) != '"') {
                rc = ig_json_value(&c.j, NULL, NULL) ? bad_json(&c)
                                                     : FAIL(&c, "id: expected a string");
                break;
            }
            if (ig_json_string(&c.j, &id, NULL)) {
                rc = bad_json(&c);
                break;
            }
            /* own starts with the id's text, quotes included */
            ig_buf_t tmp = c.d->own;
            ig_buf_init(&c.d->own, 0);
            ig_buf_append(&c.d->own, id.base - 1, id.len + 2);
            c.d->id_len = id.len + 2;
            ig_buf_append(&c.d->own, tmp.base ? tmp.base : "", tmp.len);
            for (size_t k = 0; k < c.d->noutputs; k++)
                c.d->outputs[k].name_off += c.d->id_len;
            ig_buf_dispose(&tmp);
            break;
        }
        case M_INPUTS:
            rc = read_inputs(&c);
            break;
        case M_OUTPUTS:
            rc = read_outputs(&c);
            break;
        case M_PARAMS:
            rc = read_params(&c, "body", "binary_data_output", &bin_out, NULL);
            c.d->params = ig_slice(c.j.s + vstart, c.j.pos - vstart);
            break;
        default:
            if (ig_json_value(&c.j, NULL, NULL))
                rc = bad_json(&c);
            break;
        }
        if (rc)
            goto fail;
        GROW(c.d->top, c.d->ntop, c.d->tcap);
        c.d->top[c.d->ntop++] = (v2_member_t){
            {ig_slice(name.base - 1, name.len + 2), ig_slice(c.j.s + vstart, c.j.pos - vstart), i},
            kind};
    }
    if (r < 0) {
        rc = bad_json(&c);
        goto fail;
    }
    if (ig_json_peek(&c.j) >= 0) {
        rc = FAIL(&c, "body: unexpected bytes after the JSON value at byte %zu", c.j.pos);
        goto fail;
    }
    if (!(seen & (1u << M_INPUTS))) {
        rc = FAIL(&c, "inputs: missing");
        goto fail;
    }
    c.d->bin_out_all = bin_out == 1;
    for (size_t k = 1; k < c.d->ninputs; k++) {
        if (c.d->inputs[k].rows != c.d->inputs[0].rows) {
            rc = FAIL(&c,
                      "inputs[%zu].shape[0]: %" PRIu64 " rows, but inputs[0] has %" PRIu64
                      "; every input needs the same batch dimension",
                      k, c.d->inputs[k].rows, c.d->inputs[0].rows);
            goto fail;
        }
    }
    if ((rc = place_binary(&c, tail, header_len >= 0)))
        goto fail;
    part->rows = (uint32_t)c.d->inputs[0].rows;
    if ((rc = build_key(part, model, c.d))) {
        ig_error_fmt(err, errlen, rc, "body: cannot build the batch key");
        goto fail;
    }
    part->body = body;
    part->doc = c.d;
    part->doc_free = v2_doc_free;
    return 0;
fail:
    v2_doc_free(c.d);
    ig_batch_part_dispose(part);
    return rc;
}

/* ---- merge ---- */

int ig_v2_put_name(ig_buf_t *out, bool *first, ig_slice_t name)
{
    int rc = 0;
    if (!*first)
        rc = ig_buf_append(out, ",", 1);
    *first = false;
    if (!rc)
        rc = ig_buf_append_slice(out, name);
    return rc ? rc : ig_buf_append(out, ":", 1);
}

int ig_v2_put_member(ig_buf_t *out, bool *first, ig_slice_t name, ig_slice_t value)
{
    int rc = ig_v2_put_name(out, first, name);
    return rc ? rc : ig_buf_append_slice(out, value);
}

int ig_v2_put_shape(ig_buf_t *out, uint64_t rows, const uint64_t *tail, size_t ntail)
{
    int rc = ig_buf_printf(out, "[%" PRIu64, rows);
    for (size_t k = 0; k < ntail && !rc; k++)
        rc = ig_buf_printf(out, ",%" PRIu64, tail[k]);
    return rc ? rc : ig_buf_append(out, "]", 1);
}

int ig_v2_put_object_except(ig_buf_t *out, ig_slice_t obj, const char *omit, const char *extra_name,
                            ig_slice_t extra)
{
    ig_json_t j;
    ig_slice_t name;
    bool esc, first = true;
    size_t i = 0;
    int r, rc = ig_buf_append(out, "{", 1);

    if (obj.base) {
        ig_json_init(&j, obj.base, obj.len);
        ig_json_enter(&j, '{');
        while (!rc && (r = ig_json_member(&j, &i, &name, &esc)) == 1) {
            size_t vstart = j.pos;
            if (ig_json_value(&j, NULL, NULL))
                return IG_EINVAL;
            if (omit && ig_json_str_eq(name, esc, omit))
                continue;
            rc = ig_v2_put_member(out, &first, ig_slice(name.base - 1, name.len + 2),
                                  ig_slice(j.s + vstart, j.pos - vstart));
        }
    }
    if (!rc && extra_name) {
        if (!first)
            rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = ig_buf_printf(out, "\"%s\":", extra_name);
        if (!rc)
            rc = ig_buf_append_slice(out, extra);
    }
    return rc ? rc : ig_buf_append(out, "}", 1);
}

bool ig_v2_wants_binary(const v2_doc_t *d, ig_slice_t name, bool name_esc)
{
    (void)name_esc; /* output names are compared as written */
    for (size_t k = 0; name.base && k < d->noutputs; k++) {
        const v2_output_t *o = &d->outputs[k];
        if (o->binary >= 0 && o->name_len == name.len &&
            memcmp(d->own.base + o->name_off, name.base, name.len) == 0)
            return o->binary == 1;
    }
    return d->bin_out_all;
}

/* Writes input `k` of the merged call; its binary bytes, if any, go to `bin`. */
static int merge_input(ig_batch_part_t *const *parts, size_t n, size_t k, uint64_t total,
                       ig_buf_t *out, ig_buf_t *bin)
{
    const v2_doc_t *d0 = parts[0]->doc;
    const v2_tensor_t *t0 = &d0->inputs[k];
    bool any_bin = false, all_flat = true, first = true;
    char num[32];
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        const v2_doc_t *d = parts[i]->doc;
        if (!d || d->ninputs != d0->ninputs)
            return IG_EINVAL; /* keys differ: the batcher broke the contract */
        const v2_tensor_t *t = &d->inputs[k];
        any_bin = any_bin || t->binary;
        all_flat = all_flat && !t->binary && t->flat;
    }
    size_t bin_start = bin->len;
    if (any_bin) {
        for (size_t i = 0; i < n && !rc; i++) {
            const v2_tensor_t *t = &((const v2_doc_t *)parts[i]->doc)->inputs[k];
            rc = t->binary ? ig_buf_append_slice(bin, t->bin)
                           : ig_tensor_to_binary(t->dt, t->data, bin);
        }
        if (rc)
            return rc == IG_ETOOLARGE ? rc : IG_EINVAL;
    }
    bool wrote_params = false;
    rc = ig_buf_append(out, "{", 1);
    for (size_t x = 0; x < t0->mcount && !rc; x++) {
        const v2_member_t *m = &d0->members[t0->mfirst + x];
        switch (m->kind) {
        case M_SHAPE:
            rc = ig_v2_put_name(out, &first, m->m.name);
            if (!rc)
                rc = ig_v2_put_shape(out, total, d0->dims + t0->dfirst + 1, t0->ndims - 1);
            break;
        case M_DATA:
            if (any_bin)
                break;
            rc = ig_v2_put_name(out, &first, m->m.name);
            if (!rc)
                rc = ig_buf_append(out, "[", 1);
            bool lfirst = true;
            for (size_t i = 0; i < n && !rc; i++) {
                const v2_tensor_t *t = &((const v2_doc_t *)parts[i]->doc)->inputs[k];
                if (all_flat) {
                    if (t->inner.len == 0)
                        continue;
                    if (!lfirst)
                        rc = ig_buf_append(out, ",", 1);
                    lfirst = false;
                    if (!rc)
                        rc = ig_buf_append_slice(out, t->inner);
                } else {
                    rc = ig_tensor_write_leaves(out, t->data, &lfirst);
                }
            }
            if (!rc)
                rc = ig_buf_append(out, "]", 1);
            break;
        case M_PARAMS: {
            wrote_params = true;
            int nn = snprintf(num, sizeof(num), "%zu", bin->len - bin_start);
            rc = ig_v2_put_name(out, &first, m->m.name);
            if (!rc)
                rc = ig_v2_put_object_except(out, m->m.value, "binary_data_size",
                                             any_bin ? "binary_data_size" : NULL,
                                             ig_slice(num, (size_t)nn));
            break;
        }
        default:
            rc = ig_v2_put_member(out, &first, m->m.name, m->m.value);
            break;
        }
    }
    if (!rc && any_bin && !wrote_params)
        rc = ig_buf_printf(out, "%s\"parameters\":{\"binary_data_size\":%zu}", first ? "" : ",",
                           bin->len - bin_start);
    return rc ? rc : ig_buf_append(out, "}", 1);
}

static int merge_outputs(ig_batch_part_t *const *parts, size_t n, const v2_member_t *top,
                         ig_buf_t *out)
{
    const v2_doc_t *d0 = parts[0]->doc;
    int rc = ig_buf_append_slice(out, top->m.name);
    if (!rc)
        rc = ig_buf_append(out, ":[", 2);
    for (size_t k = 0; k < d0->noutputs && !rc; k++) {
        const v2_output_t *o = &d0->outputs[k];
        ig_slice_t oname = ig_slice(d0->own.base + o->name_off, o->name_len);
        bool any = false, first = true, wrote_params = false;
        for (size_t i = 0; i < n; i++)
            any = any || ig_v2_wants_binary(parts[i]->doc, oname, false);
        if (k > 0)
            rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = ig_buf_append(out, "{", 1);
        for (size_t x = 0; x < o->mcount && !rc; x++) {
            const v2_member_t *m = &d0->members[o->mfirst + x];
            if (m->kind != M_PARAMS) {
                rc = ig_v2_put_member(out, &first, m->m.name, m->m.value);
                continue;
            }
            wrote_params = true;
            rc = ig_v2_put_name(out, &first, m->m.name);
            if (!rc)
                rc = ig_v2_put_object_except(out, m->m.value, "binary_data",
                                             any ? "binary_data" : NULL, IG_SLICE_LIT("true"));
        }
        if (!rc && any && !wrote_params)
            rc = ig_buf_printf(out, "%s\"parameters\":{\"binary_data\":true}", first ? "" : ",");
        if (!rc)
            rc = ig_buf_append(out, "}", 1);
    }
    return rc ? rc : ig_buf_append(out, "]", 1);
}

static int v2_merge(ig_batch_part_t *const *parts, size_t n, ig_buf_t *out, int64_t *header_len)
{
    const v2_doc_t *d0;
    uint64_t total = 0;
    size_t need = 64;
    bool first = false, any_bin_out = false, wrote_params = false;
    ig_buf_t bin;
    int rc;

    *header_len = -1;
    if (n == 0 || !parts[0]->doc)
        return IG_EINVAL;
    d0 = parts[0]->doc;
    for (size_t i = 0; i < n; i++) {
        if (!parts[i]->doc)
            return IG_EINVAL;
        total += parts[i]->rows;
        need += parts[i]->body.len + 1;
        any_bin_out = any_bin_out || ((const v2_doc_t *)parts[i]->doc)->bin_out_all;
    }
    ig_buf_init(&bin, out->max);
    if ((rc = ig_buf_reserve(out, need)) || (rc = ig_buf_append_str(out, "{\"inputs\":[")))
        goto out;
    for (size_t k = 0; k < d0->ninputs && !rc; k++) {
        if (k > 0)
            rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = merge_input(parts, n, k, total, out, &bin);
    }
    if (!rc)
        rc = ig_buf_append(out, "]", 1);
    /* The rest of the first part: equal in all parts but for the id and
     * the binary flags, which are the merged call's own. */
    for (size_t x = 0; x < d0->ntop && !rc; x++) {
        const v2_member_t *m = &d0->top[x];
        switch (m->kind) {
        case M_ID:
        case M_INPUTS:
            break;
        case M_OUTPUTS:
            rc = ig_buf_append(out, ",", 1);
            if (!rc)
                rc = merge_outputs(parts, n, m, out);
            break;
        case M_PARAMS:
            wrote_params = true;
            rc = ig_buf_append(out, ",", 1);
            if (!rc)
                rc = ig_buf_append_slice(out, m->m.name);
            if (!rc)
                rc = ig_buf_append(out, ":", 1);
            if (!rc)
                rc = ig_v2_put_object_except(
                    out, m->m.value, "binary_data_output",
                    any_bin_out && !d0->outputs_listed ? "binary_data_output" : NULL,
                    IG_SLICE_LIT("true"));
            break;
        default:
            rc = ig_v2_put_member(out, &first, m->m.name, m->m.value);
            break;
        }
    }
    if (!rc && !wrote_params && any_bin_out && !d0->outputs_listed)
        rc = ig_buf_append_str(out, ",\"parameters\":{\"binary_data_output\":true}");
    if (!rc)
        rc = ig_buf_append(out, "}", 1);
    if (!rc && bin.len) {
        *header_len = (int64_t)out->len;
        rc = ig_buf_append(out, bin.base, bin.len);
    } else if (!rc) {
        /* binary inputs of zero bytes still make a binary request */
        for (size_t k = 0; k < d0->ninputs; k++)
            for (size_t i = 0; i < n; i++)
                if (((const v2_doc_t *)parts[i]->doc)->inputs[k].binary)
                    *header_len = (int64_t)out->len;
    }
out:
    ig_buf_dispose(&bin);
    return rc;
}

const ig_codec_t ig_codec_v2 = {
    .name = "oip-v2",
    .parse = v2_parse,
    .merge = v2_merge,
    .split = ig_v2_split,
};
