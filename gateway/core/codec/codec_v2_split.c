/*
 * codec_v2_split.c: cutting the model's answer to a merged V2 call back
 * into one reply per request.
 *
 * Every output must have dim 0 equal to the batch's rows: it is cut along
 * it, each request getting its own rows as the model wrote them (JSON data
 * by byte spans, binary data by byte ranges). An output of any other shape
 * cannot be attributed to the requests, so the batch fails with 502 rather
 * than give one client another's results. Each reply has the request's own
 * "id" and the encoding it asked for each output; where that is not the
 * encoding the model used, the rows are converted (codec_tensor.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_v2_int.h"
#include "infergate/base/error.h"

typedef struct {
    ig_slice_t obj;
    size_t mfirst, mcount; /* members in the split's member list */
    ig_slice_t name;       /* raw */
    const ig_dtype_t *dt;  /* NULL when the model gave none (JSON only) */
    uint64_t dims[16];
    size_t ndims;
    uint64_t per_row;
    ig_slice_t data; /* JSON data array, or empty */
    bool binary;
    int64_t bin_size; /* binary_data_size, -1: none */
    ig_slice_t bin;   /* its bytes */
    /* JSON rows: flat (bounds), by top-level element (tops), or scattered
     * leaves (flattened on output). */
    enum { ROWS_FLAT, ROWS_TOPS, ROWS_LEAVES } form;
    size_t *bounds; /* 2 * rows: byte offsets (into the body) or, binary BYTES, into bin */
    ig_slice_t *tops;
    ig_buf_t leaves; /* ROWS_LEAVES: the flattened values, and their offsets */
    size_t *leaf_at;
    ig_buf_t conv; /* the output converted to binary, when some client wants that */
    size_t *conv_bounds;
    bool converted;
    bool walked;       /* the data was walked while the output was read */
    const char *bbase; /* what bounds are offsets into */
    ig_twalk_t w;      /* the walk's findings */
} sout_t;

typedef struct {
    ig_json_t j;
    char *err;
    size_t errlen;
    ig_json_member_t *members;
    size_t nmembers, mcap;
    sout_t *outs;
    size_t nouts, ocap;
    ig_json_member_t *top;
    size_t ntop, tcap;
    size_t outputs_at; /* index of "outputs" in top */
    bool have_outputs, have_id;
    uint64_t total;
} sctx_t;

#define SFAIL(c, ...) ig_error_fmt((c)->err, (c)->errlen, IG_EUPSTREAM, __VA_ARGS__)

static int sbad(sctx_t *c)
{
    return ig_codec_json_fail(&c->j, "model answer", IG_EUPSTREAM, c->err, c->errlen);
}

static void add(ig_json_member_t **arr, size_t *n, size_t *cap, ig_json_member_t m)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *arr = ig_xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[(*n)++] = m;
}

static int read_dims(sctx_t *c, sout_t *o, const char *where)
{
    size_t i = 0;
    int r;
    if (ig_json_enter(&c->j, '['))
        return SFAIL(c, "%s.shape: expected a non-empty array of dimensions", where);
    while ((r = ig_json_element(&c->j, &i)) == 1) {
        ig_json_num_t num;
        if (ig_json_peek(&c->j) == '-' ||
            (ig_json_peek(&c->j) >= '0' && ig_json_peek(&c->j) <= '9')) {
            if (ig_json_number(&c->j, &num))
                return sbad(c);
        } else {
            return SFAIL(c, "%s.shape[%zu]: expected a non-negative integer", where, i - 1);
        }
        if (!num.integer || (num.neg && !num.zero) || num.digits.len > 16)
            return SFAIL(c, "%s.shape[%zu]: expected a non-negative integer", where, i - 1);
        if (o->ndims == sizeof(o->dims) / sizeof(o->dims[0]))
            return SFAIL(c, "%s.shape: more than 16 dimensions", where);
        uint64_t v = 0;
        for (size_t k = 0; k < num.digits.len; k++)
            v = v * 10 + (uint64_t)(num.digits.base[k] - '0');
        o->dims[o->ndims++] = v;
    }
    if (r < 0)
        return sbad(c);
    if (o->ndims == 0)
        return SFAIL(c, "%s.shape: expected a non-empty array of dimensions", where);
    return 0;
}

/* Walks output o's JSON data at j, noting where each row begins and ends. */
static int walk_output(sctx_t *c, sout_t *o, ig_json_t *j, const char *where)
{
    o->per_row = ig_tensor_product(o->dims + 1, o->ndims - 1);
    free(o->bounds);
    free(o->tops);
    o->bounds = ig_xmalloc(2 * (c->total ? c->total : 1) * sizeof(*o->bounds));
    o->tops = ig_xmalloc((c->total ? c->total : 1) * sizeof(*o->tops));
    o->w = (ig_twalk_t){.where = where,
                        .err = c->err,
                        .errlen = c->errlen,
                        .code = IG_EUPSTREAM,
                        .per_row = o->per_row,
                        .bounds = o->bounds,
                        .tops = o->tops,
                        .nrows = c->total};
    return ig_tensor_walk(j, &o->w);
}

static int read_output(sctx_t *c, size_t k)
{
    char where[96];
    ig_slice_t name;
    bool esc;
    size_t i = 0;
    int r;

    snprintf(where, sizeof(where), "model answer: outputs[%zu]", k);
    if (c->nouts == c->ocap) {
        c->ocap = c->ocap ? 2 * c->ocap : 8;
        c->outs = ig_xrealloc(c->outs, c->ocap * sizeof(*c->outs));
    }
    sout_t *o = &c->outs[c->nouts++];
    memset(o, 0, sizeof(*o));
    o->bin_size = -1;
    o->mfirst = c->nmembers;
    size_t ostart = c->j.pos;
    if (ig_json_enter(&c->j, '{'))
        return SFAIL(c, "%s: expected an object", where);
    while ((r = ig_json_member(&c->j, &i, &name, &esc)) == 1) {
        size_t vstart = c->j.pos;
        int ch = ig_json_peek(&c->j);
        if (ig_json_str_eq(name, esc, "name") && ch == '"') {
            if (ig_json_string(&c->j, &o->name, NULL))
                return sbad(c);
            snprintf(where, sizeof(where), "model answer: outputs[%zu] (\"%.*s\")", k,
                     (int)(o->name.len > 48 ? 48 : o->name.len), o->name.base);
        } else if (ig_json_str_eq(name, esc, "datatype") && ch == '"') {
            ig_slice_t raw;
            if (ig_json_string(&c->j, &raw, NULL))
                return sbad(c);
            o->dt = ig_dtype_find_n(raw.base, raw.len);
        } else if (ig_json_str_eq(name, esc, "shape")) {
            if (o->ndims)
                return SFAIL(c, "%s: member \"shape\" appears twice", where);
            if ((r = read_dims(c, o, where)))
                return r;
        } else if (ig_json_str_eq(name, esc, "data")) {
            if (o->data.base)
                return SFAIL(c, "%s: member \"data\" appears twice", where);
            if (ch != '[') {
                if (ig_json_value(&c->j, NULL, NULL))
                    return sbad(c);
                return SFAIL(c, "%s.data: expected an array", where);
            }
            if (o->ndims) {
                /* The shape came first, as it usually does: one walk. */
                if ((r = walk_output(c, o, &c->j, where)))
                    return r;
                o->walked = true;
                o->bbase = c->j.s;
                o->data = ig_slice(c->j.s + vstart, c->j.pos - vstart);
            } else if (ig_json_value(&c->j, NULL, &o->data)) {
                return sbad(c);
            }
        } else if (ig_json_str_eq(name, esc, "parameters")) {
            if (ch != '{')
                return SFAIL(c, "%s.parameters: expected an object", where);
            size_t pi = 0;
            ig_slice_t pname;
            bool pesc;
            ig_json_enter(&c->j, '{');
            while ((r = ig_json_member(&c->j, &pi, &pname, &pesc)) == 1) {
                ig_json_num_t num;
                if (ig_json_str_eq(pname, pesc, "binary_data_size")) {
                    int pc = ig_json_peek(&c->j);
                    if (pc != '-' && (pc < '0' || pc > '9'))
                        return SFAIL(c, "%s.parameters.binary_data_size: expected a byte count",
                                     where);
                    if (ig_json_number(&c->j, &num))
                        return sbad(c);
                    if (!num.integer || num.neg || num.digits.len > 16)
                        return SFAIL(c, "%s.parameters.binary_data_size: expected a byte count",
                                     where);
                    o->bin_size = 0;
                    for (size_t x = 0; x < num.digits.len; x++)
                        o->bin_size = o->bin_size * 10 + (num.digits.base[x] - '0');
                } else if (ig_json_value(&c->j, NULL, NULL)) {
                    return sbad(c);
                }
            }
            if (r < 0)
                return sbad(c);
        } else if (ig_json_value(&c->j, NULL, NULL)) {
            return sbad(c);
        }
        add(&c->members, &c->nmembers, &c->mcap,
            (ig_json_member_t){ig_slice(name.base - 1, name.len + 2),
                               ig_slice(c->j.s + vstart, c->j.pos - vstart), i});
    }
    if (r < 0)
        return sbad(c);
    o->obj = ig_slice(c->j.s + ostart, c->j.pos - ostart);
    o->mcount = c->nmembers - o->mfirst;
    if (!o->ndims)
        return SFAIL(c, "%s.shape: missing", where);
    if (o->dims[0] != c->total)
        return SFAIL(c,
                     "%s.shape[0] is %" PRIu64 ", not the batch's %" PRIu64
                     " rows: the output cannot be divided between the requests",
                     where, o->dims[0], c->total);
    o->per_row = ig_tensor_product(o->dims + 1, o->ndims - 1);
    uint64_t count = ig_tensor_product(o->dims, o->ndims);
    if (o->bin_size >= 0) {
        if (o->data.base)
            return SFAIL(c, "%s: has both data and binary_data_size", where);
        if (!o->dt)
            return SFAIL(c, "%s.datatype: missing or unknown, binary data cannot be divided",
                         where);
        o->binary = true;
        return 0;
    }
    if (!o->data.base)
        return SFAIL(c, "%s.data: missing", where);
    if (!o->walked) {
        ig_json_t sub;
        ig_json_init(&sub, o->data.base, o->data.len);
        if ((r = walk_output(c, o, &sub, where)))
            return r;
        o->bbase = o->data.base;
    }
    ig_twalk_t w = o->w;
    if (w.count != count) {
        char shp[72];
        size_t at = (size_t)snprintf(shp, sizeof(shp), "[");
        for (size_t d = 0; d < o->ndims && at < sizeof(shp); d++)
            at += (size_t)snprintf(shp + at, sizeof(shp) - at, "%s%" PRIu64, d ? "," : "",
                                   o->dims[d]);
        if (at < sizeof(shp))
            snprintf(shp + at, sizeof(shp) - at, "]");
        return SFAIL(c, "%s.data: holds %" PRIu64 " values but shape %s needs %" PRIu64, where,
                     w.count, shp, count);
    }
    if (!w.nested) {
        o->form = ROWS_FLAT;
    } else if (w.top_arrays && w.top == c->total && w.even_tops) {
        o->form = ROWS_TOPS;
    } else {
        bool first = true;
        o->form = ROWS_LEAVES;
        ig_buf_init(&o->leaves, 0);
        if (ig_tensor_write_leaves(&o->leaves, o->data, &first))
            return SFAIL(c, "%s.data: cannot be flattened", where);
        /* offsets of each leaf's start in the flattened text, and its end */
        o->leaf_at = ig_xmalloc((count + 1) * sizeof(*o->leaf_at));
        size_t at = 0, e = 0;
        bool in_str = false;
        o->leaf_at[0] = 0;
        for (size_t x = 0; x < o->leaves.len; x++) {
            char ch = o->leaves.base[x];
            if (in_str) {
                if (ch == '\\')
                    x++;
                else if (ch == '"')
                    in_str = false;
            } else if (ch == '"') {
                in_str = true;
            } else if (ch == ',') {
                o->leaf_at[++e] = x + 1;
            }
        }
        (void)at;
        o->leaf_at[count] = o->leaves.len + 1;
    }
    return 0;
}

static void souts_free(sctx_t *c)
{
    for (size_t k = 0; k < c->nouts; k++) {
        sout_t *o = &c->outs[k];
        free(o->bounds);
        free(o->tops);
        free(o->leaf_at);
        free(o->conv_bounds);
        ig_buf_dispose(&o->leaves);
        ig_buf_dispose(&o->conv);
    }
    free(c->outs);
    free(c->members);
    free(c->top);
}

/* The binary bytes of rows [r0, r0 + rows) of output o. */
static int binary_rows(sctx_t *c, sout_t *o, uint64_t r0, uint32_t rows, ig_slice_t *out)
{
    const char *base;
    size_t len, *bounds;
    if (o->binary) {
        base = o->bin.base;
        len = o->bin.len;
        bounds = o->bounds;
    } else {
        if (!o->converted) {
            o->converted = true;
            ig_buf_init(&o->conv, 0);
            if (!o->dt || ig_tensor_to_binary(o->dt, o->data, &o->conv))
                return SFAIL(c,
                             "model answer: output \"%.*s\" cannot be given in binary: its "
                             "values do not fit datatype %s",
                             (int)o->name.len, o->name.base, o->dt ? o->dt->name : "(none)");
            if (o->dt->kind == IG_DT_BYTES) {
                o->conv_bounds = ig_xmalloc(2 * c->total * sizeof(size_t));
                ig_tensor_bytes_ok(o->conv.base, o->conv.len, ig_tensor_product(o->dims, o->ndims),
                                   o->per_row, o->conv_bounds, c->total);
            }
        }
        base = o->conv.base;
        len = o->conv.len;
        bounds = o->conv_bounds;
    }
    if (o->per_row == 0 || rows == 0) {
        *out = ig_slice(base, 0);
    } else if (o->dt->kind == IG_DT_BYTES) {
        size_t from = bounds[2 * r0], to = bounds[2 * (r0 + rows - 1) + 1];
        *out = ig_slice(base + from, to - from);
    } else {
        /* The size check made count x size the buffer's length, so these
         * products fit; the guard keeps it so if that ever changes. */
        uint64_t row = o->per_row * o->dt->size;
        if (r0 + rows > len / row)
            return SFAIL(c, "model answer: output \"%.*s\": rows beyond its binary data",
                         (int)o->name.len, o->name.base);
        *out = ig_slice(base + (size_t)(r0 * row), (size_t)(rows * row));
    }
    return 0;
}

/* Appends the JSON values of rows [r0, r0 + rows) of output o, with brackets. */
static int json_rows(sctx_t *c, sout_t *o, uint64_t r0, uint32_t rows, ig_buf_t *out)
{
    int rc = ig_buf_append(out, "[", 1);
    if (rc || rows == 0)
        return rc ? rc : ig_buf_append(out, "]", 1);
    if (o->binary) {
        ig_slice_t b;
        if ((rc = binary_rows(c, o, r0, rows, &b)))
            return rc;
        rc = ig_tensor_to_json(o->dt, b.base, b.len, (uint64_t)rows * o->per_row, out);
        if (rc == IG_EINVAL)
            return SFAIL(c,
                         "model answer: output \"%.*s\" cannot be given as JSON (a NaN, an "
                         "infinity, or BYTES that are not UTF-8)",
                         (int)o->name.len, o->name.base);
    } else if (o->per_row == 0) {
        rc = 0;
    } else if (o->form == ROWS_FLAT) {
        size_t from = o->bounds[2 * r0], to = o->bounds[2 * (r0 + rows - 1) + 1];
        rc = ig_buf_append(out, o->bbase + from, to - from);
    } else if (o->form == ROWS_TOPS) {
        const char *from = o->tops[r0].base;
        const ig_slice_t *last = &o->tops[r0 + rows - 1];
        rc = ig_buf_append(out, from, (size_t)(last->base + last->len - from));
    } else {
        size_t a = o->leaf_at[r0 * o->per_row], b = o->leaf_at[(r0 + rows) * o->per_row] - 1;
        rc = ig_buf_append(out, o->leaves.base + a, b - a);
    }
    return rc ? rc : ig_buf_append(out, "]", 1);
}

/* Writes one output's JSON for a request; its binary rows go to `tail`. */
static int write_output(sctx_t *c, sout_t *o, const v2_doc_t *d, uint64_t r0, uint32_t rows,
                        ig_buf_t *r, ig_buf_t *tail, bool *any_bin)
{
    bool want_bin = ig_v2_wants_binary(d, o->name, false) && o->dt;
    bool first = true, wrote_params = false, wrote_data = false;
    size_t tail0 = tail->len;
    char num[32];
    int rc;

    if (want_bin) {
        ig_slice_t b;
        if ((rc = binary_rows(c, o, r0, rows, &b)) || (rc = ig_buf_append_slice(tail, b)))
            return rc;
        *any_bin = true;
    }
    int nn = snprintf(num, sizeof(num), "%zu", tail->len - tail0);
    rc = ig_buf_append(r, "{", 1);
    for (size_t x = 0; x < o->mcount && !rc; x++) {
        const ig_json_member_t *m = &c->members[o->mfirst + x];
        ig_slice_t raw = ig_slice(m->name.base + 1, m->name.len - 2);
        if (ig_json_str_eq(raw, memchr(raw.base, '\\', raw.len) != NULL, "shape")) {
            rc = ig_v2_put_name(r, &first, m->name);
            if (!rc)
                rc = ig_v2_put_shape(r, rows, o->dims + 1, o->ndims - 1);
        } else if (m->value.base == o->data.base && o->data.base) {
            if (want_bin)
                continue;
            wrote_data = true;
            rc = ig_v2_put_name(r, &first, m->name);
            if (!rc)
                rc = json_rows(c, o, r0, rows, r);
        } else if (m->value.len && m->value.base[0] == '{' &&
                   ig_json_str_eq(raw, memchr(raw.base, '\\', raw.len) != NULL, "parameters")) {
            wrote_params = true;
            rc = ig_v2_put_name(r, &first, m->name);
            if (!rc)
                rc = ig_v2_put_object_except(r, m->value, "binary_data_size",
                                             want_bin ? "binary_data_size" : NULL,
                                             ig_slice(num, (size_t)nn));
        } else {
            rc = ig_v2_put_member(r, &first, m->name, m->value);
        }
    }
    if (!rc && want_bin && !wrote_params)
        rc = ig_buf_printf(r, "%s\"parameters\":{\"binary_data_size\":%s}", first ? "" : ",", num);
    if (!rc && !want_bin && !wrote_data) {
        rc = ig_buf_append_str(r, first ? "\"data\":" : ",\"data\":");
        if (!rc)
            rc = json_rows(c, o, r0, rows, r);
    }
    return rc ? rc : ig_buf_append(r, "}", 1);
}

static int write_reply(sctx_t *c, ig_batch_part_t *part, uint64_t r0, ig_buf_t *tail)
{
    const v2_doc_t *d = part->doc;
    ig_buf_t *r = &part->reply;
    bool first = true, any_bin = false, id_done = false;
    int rc;

    ig_buf_reset(tail);
    rc = ig_buf_append(r, "{", 1);
    if (!rc && !c->have_id && d->id_len) {
        rc = ig_buf_append_str(r, "\"id\":");
        if (!rc)
            rc = ig_buf_append(r, d->own.base, d->id_len);
        first = false;
    }
    for (size_t x = 0; x < c->ntop && !rc; x++) {
        const ig_json_member_t *m = &c->top[x];
        ig_slice_t raw = ig_slice(m->name.base + 1, m->name.len - 2);
        bool esc = memchr(raw.base, '\\', raw.len) != NULL;
        if (x == c->outputs_at) {
            rc = ig_v2_put_name(r, &first, m->name);
            if (!rc)
                rc = ig_buf_append(r, "[", 1);
            for (size_t k = 0; k < c->nouts && !rc; k++) {
                if (k > 0)
                    rc = ig_buf_append(r, ",", 1);
                if (!rc)
                    rc = write_output(c, &c->outs[k], d, r0, part->rows, r, tail, &any_bin);
            }
            if (!rc)
                rc = ig_buf_append(r, "]", 1);
        } else if (ig_json_str_eq(raw, esc, "id")) {
            /* each reply carries its own request's id (once), or none */
            if (d->id_len && !id_done)
                rc = ig_v2_put_member(r, &first, m->name, ig_slice(d->own.base, d->id_len));
            id_done = true;
        } else {
            rc = ig_v2_put_member(r, &first, m->name, m->value);
        }
    }
    if (!rc)
        rc = ig_buf_append(r, "}", 1);
    part->reply_header_len = -1;
    if (!rc && any_bin) {
        part->reply_header_len = (int64_t)r->len;
        rc = ig_buf_append(r, tail->base, tail->len);
    }
    return rc;
}

int ig_v2_split(ig_slice_t body, int64_t header_len, ig_batch_part_t *const *parts, size_t n,
                char *err, size_t errlen)
{
    sctx_t c = {.err = err, .errlen = errlen};
    ig_slice_t hdr, tail, name;
    bool esc;
    size_t i = 0;
    int r, rc;

    for (size_t k = 0; k < n; k++) {
        ig_buf_dispose(&parts[k]->reply); /* on failure, none keeps a reply */
        if (!parts[k]->doc)
            return ig_error_fmt(err, errlen, IG_EINVAL, "request %zu of the batch has no body", k);
        c.total += parts[k]->rows;
    }
    if (ig_v2_cut(body, header_len, &hdr, &tail) != 0)
        return ig_error_fmt(err, errlen, IG_EUPSTREAM,
                            "model answer: Inference-Header-Content-Length %" PRId64
                            " is larger than its body (%zu bytes)",
                            header_len, body.len);
    if (ig_json_trim(hdr).len == 0)
        return ig_error_fmt(err, errlen, IG_EUPSTREAM, "model answer: empty");
    ig_json_init(&c.j, hdr.base, hdr.len);
    if (ig_json_enter(&c.j, '{')) {
        rc = sbad(&c);
        goto out;
    }
    while ((r = ig_json_member(&c.j, &i, &name, &esc)) == 1) {
        size_t vstart = c.j.pos;
        if (ig_json_str_eq(name, esc, "outputs")) {
            if (c.have_outputs) {
                rc = SFAIL(&c, "model answer: member \"outputs\" appears twice");
                goto out;
            }
            c.have_outputs = true;
            c.outputs_at = c.ntop;
            size_t e = 0;
            if (ig_json_enter(&c.j, '[')) {
                rc = SFAIL(&c, "model answer: expected an \"outputs\" array of tensors");
                goto out;
            }
            while ((r = ig_json_element(&c.j, &e)) == 1)
                if ((rc = read_output(&c, e - 1)))
                    goto out;
            if (r < 0) {
                rc = sbad(&c);
                goto out;
            }
        } else {
            if (ig_json_str_eq(name, esc, "id"))
                c.have_id = true;
            if (ig_json_value(&c.j, NULL, NULL)) {
                rc = sbad(&c);
                goto out;
            }
        }
        add(&c.top, &c.ntop, &c.tcap,
            (ig_json_member_t){ig_slice(name.base - 1, name.len + 2),
                               ig_slice(c.j.s + vstart, c.j.pos - vstart), i});
    }
    if (r < 0) {
        rc = sbad(&c);
        goto out;
    }
    if (ig_json_peek(&c.j) >= 0) {
        rc = SFAIL(&c, "model answer: unexpected bytes after the JSON value at byte %zu", c.j.pos);
        goto out;
    }
    if (!c.have_outputs) {
        rc = SFAIL(&c, "model answer: expected an \"outputs\" array of tensors");
        goto out;
    }
    /* Binary outputs: their bytes follow the header in output order. */
    size_t off = 0;
    for (size_t k = 0; k < c.nouts; k++) {
        sout_t *o = &c.outs[k];
        if (!o->binary)
            continue;
        if ((uint64_t)o->bin_size > tail.len - off) {
            rc = SFAIL(&c,
                       "model answer: output \"%.*s\" has binary_data_size %" PRId64
                       " but only %zu bytes of binary data are left",
                       (int)o->name.len, o->name.base, o->bin_size, tail.len - off);
            goto out;
        }
        o->bin = ig_slice(tail.base + off, (size_t)o->bin_size);
        off += (size_t)o->bin_size;
        /* The product saturates: a shape whose count wraps 2^64 must not
         * pass for a small one. */
        uint64_t count = ig_tensor_product(o->dims, o->ndims);
        if (o->dt->kind == IG_DT_BYTES) {
            o->bounds = ig_xmalloc(2 * c.total * sizeof(*o->bounds));
            if (!ig_tensor_bytes_ok(o->bin.base, o->bin.len, count, o->per_row, o->bounds,
                                    c.total)) {
                rc = SFAIL(&c,
                           "model answer: output \"%.*s\": %zu bytes of BYTES data do not hold "
                           "%" PRIu64 " length-prefixed elements",
                           (int)o->name.len, o->name.base, o->bin.len, count);
                goto out;
            }
        } else if (count > o->bin.len / o->dt->size || count * o->dt->size != o->bin.len) {
            rc = SFAIL(&c,
                       "model answer: output \"%.*s\" has binary_data_size %zu but its shape "
                       "of %" PRIu64 " %s elements needs %" PRIu64 " bytes",
                       (int)o->name.len, o->name.base, o->bin.len, count, o->dt->name,
                       count * o->dt->size);
            goto out;
        }
    }
    if (off != tail.len) {
        rc = SFAIL(&c,
                   "model answer: its outputs' binary_data_size add up to %zu bytes, but %zu "
                   "bytes follow the JSON header",
                   off, tail.len);
        goto out;
    }
    ig_buf_t scratch;
    ig_buf_init(&scratch, 0);
    uint64_t r0 = 0;
    rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        ig_buf_t *rep = &parts[k]->reply;
        ig_buf_dispose(rep);
        ig_buf_init(rep, 0);
        /* About its share of the answer: one allocation, no regrowth. */
        ig_buf_reserve(rep, (size_t)((double)body.len * parts[k]->rows / (double)c.total) + 512);
        if ((rc = write_reply(&c, parts[k], r0, &scratch))) {
            if (rc == IG_EUPSTREAM) {
                for (size_t x = 0; x <= k; x++)
                    ig_buf_dispose(&parts[x]->reply);
            } else {
                rc = ig_codec_split_fail(parts, k + 1, k, rc, err, errlen);
            }
        }
        r0 += parts[k]->rows;
    }
    ig_buf_dispose(&scratch);
out:
    souts_free(&c);
    return rc;
}
