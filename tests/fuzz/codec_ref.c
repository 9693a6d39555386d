/*
 * codec_ref.c: the reference side of fuzz_codec_diff (see codec_ref.h).
 *
 * Written from the protocol and codec.h's contract, over json_ref.c's
 * trees; where the codecs' limits decide (16 dimensions, 16-digit sizes,
 * raw output names) it says so. Slow on purpose: lists are searched
 * linearly and values converted one at a time.
 */
#include "codec_ref.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static const char *const REPLY_TOP[] = {"id", "outputs"};
static const char *const OUTPUT_KEYS[] = {"shape", "data", "parameters"};
static const char *const BDS[] = {"binary_data_size"};

bool ref_slice_eq(ig_slice_t a, ig_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* A string node's raw bytes between its quotes. */
ig_slice_t ref_str_inner(const jref_node_t *v)
{
    return ig_slice(v->raw.base + 1, v->raw.len - 2);
}

void ref_put(ig_buf_t *b, const char *s)
{
    FUZZ_CHECK(ig_buf_append_str(b, s) == 0, "append");
}

void ref_put_slice(ig_buf_t *b, ig_slice_t s)
{
    FUZZ_CHECK(ig_buf_append_slice(b, s) == 0, "append");
}

void ref_put_fmt(ig_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    FUZZ_CHECK(ig_buf_vprintf(b, fmt, ap) == 0, "printf");
    va_end(ap);
}

/* A shallow copy of object `obj` without its members named omit[0..n):
 * compare it, then free(.kids) only. */
jref_node_t ref_without(const jref_node_t *obj, const char *const *omit, size_t n)
{
    jref_node_t f = *obj;
    f.kids = malloc((obj->n ? obj->n : 1) * sizeof(*f.kids));
    FUZZ_CHECK(f.kids != NULL, "out of memory");
    f.n = 0;
    for (size_t k = 0; k < obj->n; k++) {
        bool drop = false;
        for (size_t o = 0; o < n && !drop; o++)
            drop = strlen(omit[o]) == obj->kids[k].name_len &&
                   memcmp(obj->kids[k].name, omit[o], obj->kids[k].name_len) == 0;
        if (!drop)
            f.kids[f.n++] = obj->kids[k];
    }
    return f;
}

/* Whether objects a and b are equal but for members named omit[...]. */
bool ref_equal_without(const jref_node_t *a, const jref_node_t *b, const char *const *omit,
                       size_t n, bool any_order)
{
    jref_node_t fa = ref_without(a, omit, n), fb = ref_without(b, omit, n);
    bool eq = jref_equal(&fa, &fb, any_order);
    free(fa.kids);
    free(fb.kids);
    return eq;
}

/* A shape: non-negative integers of at most 16 digits, as the codecs take them. */
bool ref_dims(const jref_node_t *shape, uint64_t *dims, size_t *ndims)
{
    if (!shape || shape->kind != JREF_ARRAY || shape->n == 0 || shape->n > REF_MAX_DIMS)
        return false;
    for (size_t k = 0; k < shape->n; k++) {
        bool neg;
        const jref_node_t *d = &shape->kids[k];
        if (!jref_integer(d, &dims[k], &neg) || (neg && dims[k] != 0) || d->raw.len - neg > 16)
            return false;
    }
    *ndims = shape->n;
    return true;
}

/* Product of dims, saturating at UINT64_MAX (as codec_tensor.c). */
uint64_t ref_product(const uint64_t *dims, size_t n)
{
    uint64_t p = 1;
    bool sat = false;
    for (size_t k = 0; k < n; k++) {
        if (dims[k] == 0)
            return 0;
        if (__builtin_mul_overflow(p, dims[k], &p))
            sat = true;
    }
    return sat ? UINT64_MAX : p;
}

/* What the reference says of a V1 body: NULL when it must be refused, else
 * the instances array, or the doc itself for a columnar ("alone") body. */
const jref_node_t *ref_v1(const jref_node_t *d, bool parsed)
{
    if (!parsed || d->kind != JREF_OBJECT)
        return NULL;
    size_t ni = jref_count(d, "instances"), np = jref_count(d, "inputs");
    if (ni > 1 || np > 1 || (ni && np))
        return NULL;
    if (np)
        return d;
    const jref_node_t *inst = jref_get(d, "instances");
    return inst && inst->kind == JREF_ARRAY && inst->n > 0 ? inst : NULL;
}

void ref_v1_echo(ig_buf_t *a, const ig_buf_t *merged, unsigned flags)
{
    jref_node_t m;
    const char *sep = (flags & REF_ECHO_WS) ? " ,\n " : ",";
    FUZZ_CHECK(jref_parse(merged->base, merged->len, &m), "merged");
    const jref_node_t *mi = jref_get(&m, "instances");
    ref_put(a, "{");
    if (flags & REF_ECHO_DATA_FIRST)
        ref_put_fmt(a, "\"model_version\":\"1\"%s", sep);
    ref_put(a, "\"predictions\":[");
    for (size_t e = 0; e < mi->n; e++) {
        if (e)
            ref_put(a, sep);
        ref_put_slice(a, mi->kids[e].raw);
    }
    ref_put(a, "]");
    if (!(flags & REF_ECHO_DATA_FIRST))
        ref_put_fmt(a, "%s\"model_version\":\"1\"", sep);
    ref_put(a, "}");
    jref_free(&m);
}

/* Whether a part asked for output `name` (raw, as the model wrote it) in
 * binary: the first of its outputs so named with a binary_data flag, else
 * its parameters.binary_data_output. An output without a name matches none
 * of the listed ones. */
bool ref_wants_binary(const jref_node_t *doc, ig_slice_t name, bool has_name)
{
    const jref_node_t *outs = jref_get(doc, "outputs");
    if (has_name && outs && outs->kind == JREF_ARRAY) {
        for (size_t k = 0; k < outs->n; k++) {
            const jref_node_t *n = jref_get(&outs->kids[k], "name");
            const jref_node_t *bd = jref_get(jref_get(&outs->kids[k], "parameters"), "binary_data");
            if (n && n->kind == JREF_STRING && ref_slice_eq(ref_str_inner(n), name) && bd)
                return bd->kind == JREF_TRUE;
        }
    }
    const jref_node_t *bdo = jref_get(jref_get(doc, "parameters"), "binary_data_output");
    return bdo && bdo->kind == JREF_TRUE;
}

/* The JSON values `leaves` as binary tensor data of `dt`: 1 done, 0 when a
 * value does not fit, -1 when the reference does not convert this datatype
 * (FP16, BF16: only their count is checked). */
int ref_to_binary(const ig_dtype_t *dt, const jref_vec_t *leaves, ig_buf_t *out)
{
    unsigned char b[8];
    for (size_t i = 0; i < leaves->n; i++) {
        const jref_node_t *v = leaves->v[i];
        switch (dt->kind) {
        case IG_DT_BOOL:
            if (v->kind != JREF_TRUE && v->kind != JREF_FALSE)
                return 0;
            b[0] = v->kind == JREF_TRUE;
            FUZZ_CHECK(ig_buf_append(out, b, 1) == 0, "append");
            break;
        case IG_DT_BYTES:
            if (v->kind != JREF_STRING)
                return 0;
            for (unsigned k = 0; k < 4; k++)
                b[k] = (unsigned char)(v->str_len >> (8 * k));
            FUZZ_CHECK(ig_buf_append(out, b, 4) == 0 && ig_buf_append(out, v->str, v->str_len) == 0,
                       "append");
            break;
        case IG_DT_INT: {
            uint64_t mag, x;
            bool neg, sig = dt->min_digits != NULL;
            unsigned bits = 8 * dt->size;
            if (!jref_integer(v, &mag, &neg))
                return 0;
            if (neg && mag) {
                if (!sig || mag > ((uint64_t)1 << (bits - 1)))
                    return 0;
                x = (uint64_t)0 - mag;
            } else {
                uint64_t max = sig          ? ((uint64_t)1 << (bits - 1)) - 1
                               : bits == 64 ? UINT64_MAX
                                            : ((uint64_t)1 << bits) - 1;
                if (mag > max)
                    return 0;
                x = mag;
            }
            for (unsigned k = 0; k < dt->size; k++)
                b[k] = (unsigned char)(x >> (8 * k));
            FUZZ_CHECK(ig_buf_append(out, b, dt->size) == 0, "append");
            break;
        }
        case IG_DT_FLOAT: {
            if (v->kind != JREF_NUMBER || dt->size == 2)
                return v->kind != JREF_NUMBER ? 0 : -1;
            char tmp[512];
            if (v->raw.len >= sizeof(tmp))
                return -1;
            memcpy(tmp, v->raw.base, v->raw.len);
            tmp[v->raw.len] = '\0';
            if (dt->size == 4) {
                float f = strtof(tmp, NULL);
                if (!isfinite(f))
                    return 0;
                memcpy(b, &f, 4);
            } else {
                double d = strtod(tmp, NULL);
                if (!isfinite(d))
                    return 0;
                memcpy(b, &d, 8);
            }
            FUZZ_CHECK(ig_buf_append(out, b, dt->size) == 0, "append");
            break;
        }
        }
    }
    return 1;
}

/* The element count of binary data, or SIZE_MAX when it is not whole elements. */
size_t ref_binary_count(const ig_dtype_t *dt, ig_slice_t b)
{
    if (dt->kind != IG_DT_BYTES)
        return b.len % dt->size ? SIZE_MAX : b.len / dt->size;
    size_t at = 0, n = 0;
    while (at < b.len) {
        if (b.len - at < 4)
            return SIZE_MAX;
        const unsigned char *u = (const unsigned char *)b.base + at;
        uint64_t len = u[0] | (uint64_t)u[1] << 8 | (uint64_t)u[2] << 16 | (uint64_t)u[3] << 24;
        if (len > b.len - at - 4)
            return SIZE_MAX;
        at += 4 + len;
        n++;
    }
    return n;
}

/* Whether `got` holds the values `want`: token for token when both are
 * JSON, else as binary tensor data (BOOL bytes read as 0 or not). */
bool ref_same_values(const ig_dtype_t *dt, const ref_vals_t *want, const ref_vals_t *got)
{
    if (want->json && got->json) {
        if (want->nleaves != got->nleaves)
            return false;
        for (size_t i = 0; i < want->nleaves; i++)
            if (!jref_equal(want->leaves[i], got->leaves[i], false))
                return false;
        return true;
    }
    if (!dt)
        return false;
    ig_buf_t wb, gb;
    ig_slice_t w = want->bytes, g = got->bytes;
    int cw = 1, cg = 1;
    bool eq;
    ig_buf_init(&wb, 0);
    ig_buf_init(&gb, 0);
    if (want->json) {
        jref_vec_t v = {(const jref_node_t **)want->leaves, want->nleaves, want->nleaves};
        cw = ref_to_binary(dt, &v, &wb);
        w = ig_slice(wb.base, wb.len);
    }
    if (got->json) {
        jref_vec_t v = {(const jref_node_t **)got->leaves, got->nleaves, got->nleaves};
        cg = ref_to_binary(dt, &v, &gb);
        g = ig_slice(gb.base, gb.len);
    }
    if (cw == 0 || cg == 0) {
        eq = false;
    } else if (cw < 0 || cg < 0) {
        size_t nw = want->json ? want->nleaves : ref_binary_count(dt, w);
        size_t ng = got->json ? got->nleaves : ref_binary_count(dt, g);
        eq = nw == ng && nw != SIZE_MAX;
    } else if (dt->kind == IG_DT_BOOL && (want->json || got->json)) {
        eq = w.len == g.len;
        for (size_t i = 0; i < w.len && eq; i++)
            eq = (w.base[i] != 0) == (g.base[i] != 0);
    } else {
        eq = ref_slice_eq(w, g);
    }
    ig_buf_dispose(&wb);
    ig_buf_dispose(&gb);
    return eq;
}

void ref_answer_dispose(ref_answer_t *a)
{
    for (size_t k = 0; k < a->nouts; k++)
        jref_vec_free(&a->outs[k].leaves);
    free(a->outs);
    jref_free(&a->doc);
}

/* Reads a V2 answer for a batch of `total` rows. */
void ref_answer_read(ref_answer_t *a, ig_slice_t hdr, ig_slice_t tail, uint64_t total)
{
    memset(a, 0, sizeof(*a));
    a->parsed = jref_parse(hdr.base, hdr.len, &a->doc);
    const jref_node_t *outs = jref_get(&a->doc, "outputs");
    if (!a->parsed || a->doc.kind != JREF_OBJECT || jref_count(&a->doc, "outputs") != 1 ||
        outs->kind != JREF_ARRAY) {
        a->simple = a->must_fail = true; /* whatever its members, the split must refuse it */
        return;
    }
    a->simple = !jref_has_duplicates(&a->doc);
    a->outs = calloc(outs->n ? outs->n : 1, sizeof(*a->outs));
    FUZZ_CHECK(a->outs != NULL, "out of memory");
    a->nouts = outs->n;
    size_t off = 0;
    for (size_t k = 0; k < outs->n; k++) {
        ref_output_t *o = &a->outs[k];
        const jref_node_t *ob = &outs->kids[k];
        o->obj = ob;
        if (ob->kind != JREF_OBJECT) {
            a->must_fail = true;
            continue;
        }
        /* Duplicate members, or parameters that are not an object (which the
         * split copies as they are), make a reply the reference does not
         * predict in detail. */
        const jref_node_t *pm = jref_get(ob, "parameters");
        if (jref_has_duplicates(ob) || (pm && pm->kind != JREF_OBJECT) || jref_has_duplicates(pm))
            a->simple = false;
        const jref_node_t *name = jref_get(ob, "name"), *dt = jref_get(ob, "datatype");
        const jref_node_t *params = jref_get(ob, "parameters"), *data = jref_get(ob, "data");
        const jref_node_t *bds = jref_get(params, "binary_data_size");
        if (name && name->kind == JREF_STRING) {
            o->has_name = true;
            o->name = ref_str_inner(name);
        }
        if (dt && dt->kind == JREF_STRING)
            o->dt = ig_dtype_find_n(ref_str_inner(dt).base, ref_str_inner(dt).len);
        if (!ref_dims(jref_get(ob, "shape"), o->dims, &o->ndims) || o->dims[0] != total) {
            a->must_fail = true;
            continue;
        }
        o->per_row = ref_product(o->dims + 1, o->ndims - 1);
        if (bds) {
            uint64_t size, count, bytes;
            bool neg;
            if (!jref_integer(bds, &size, &neg) || neg || bds->raw.len > 16 || data || !o->dt ||
                size > tail.len - off) {
                a->must_fail = true;
                continue;
            }
            o->binary = true;
            o->bin = ig_slice(tail.base + off, (size_t)size);
            off += (size_t)size;
            /* The exact element count the shape needs, without wrapping. */
            bool over =
                __builtin_mul_overflow(total, o->per_row, &count) || o->per_row == UINT64_MAX;
            if (over)
                a->must_fail = true;
            else if (o->dt->kind == IG_DT_BYTES)
                a->must_fail |= ref_binary_count(o->dt, o->bin) != count;
            else
                a->must_fail |= __builtin_mul_overflow(count, o->dt->size, &bytes) || bytes != size;
            continue;
        }
        if (!data || data->kind != JREF_ARRAY) {
            a->must_fail = true;
            continue;
        }
        jref_leaves(data, &o->leaves);
        for (size_t i = 0; i < o->leaves.n; i++)
            if (o->leaves.v[i]->kind == JREF_OBJECT)
                a->must_fail = true;
        if (o->leaves.n != ref_product(o->dims, o->ndims))
            a->must_fail = true;
    }
    if (off != tail.len)
        a->must_fail = true;
}

/* The values of rows [r0, r0 + rows) of answer output o. */
ref_vals_t ref_answer_rows(const ref_output_t *o, uint64_t r0, uint64_t rows)
{
    ref_vals_t v = {0};
    if (!o->binary) {
        v.json = true;
        v.leaves = o->leaves.n ? o->leaves.v + r0 * o->per_row : NULL;
        v.nleaves = (size_t)(rows * o->per_row);
        return v;
    }
    if (o->dt->kind != IG_DT_BYTES) {
        size_t row = (size_t)o->per_row * o->dt->size;
        v.bytes = ig_slice(o->bin.base + r0 * row, rows * row);
        return v;
    }
    const unsigned char *u = (const unsigned char *)o->bin.base;
    size_t at = 0, from = 0;
    for (uint64_t e = 0; e < (r0 + rows) * o->per_row; e++) {
        if (e == r0 * o->per_row)
            from = at;
        at += 4 +
              (u[at] | (size_t)u[at + 1] << 8 | (size_t)u[at + 2] << 16 | (size_t)u[at + 3] << 24);
    }
    if (rows * o->per_row == 0)
        from = at;
    v.bytes = ig_slice(o->bin.base + from, at - from);
    return v;
}

/* Checks part g's reply against the answer, for its rows [r0, r0 + rows). */
void ref_v2_check_reply(const ref_answer_t *a, const jref_node_t *doc, const ig_batch_part_t *part,
                        size_t p, uint64_t r0)
{
    jref_node_t r;
    size_t off = 0;
    bool any_bin = false;

    FUZZ_CHECK(part->reply.base != NULL && part->reply_header_len <= (int64_t)part->reply.len,
               "V2 reply %zu missing or its header length %" PRId64 " is too long", p,
               part->reply_header_len);
    ig_slice_t hdr = part->reply_header_len >= 0
                         ? ig_slice(part->reply.base, (size_t)part->reply_header_len)
                         : ig_slice(part->reply.base, part->reply.len);
    ig_slice_t tail = ig_slice(hdr.base + hdr.len, part->reply.len - hdr.len);
    FUZZ_CHECK(jref_parse(hdr.base, hdr.len, &r) && r.kind == JREF_OBJECT,
               "V2 reply %zu is not a JSON object: %.200s", p, hdr.base);
    const jref_node_t *id = jref_get(doc, "id"), *rid = jref_get(&r, "id");
    if (a->simple) /* an answer with two ids gets the request's twice */
        FUZZ_CHECK(jref_count(&r, "id") == (id != NULL) && (!id || jref_equal(id, rid, false)),
                   "V2 reply %zu does not carry its request's own id", p);
    const jref_node_t *routs = jref_get(&r, "outputs");
    FUZZ_CHECK(jref_count(&r, "outputs") == 1 && routs->kind == JREF_ARRAY && routs->n == a->nouts,
               "V2 reply %zu has not the answer's %zu outputs", p, a->nouts);
    if (a->simple)
        FUZZ_CHECK(ref_equal_without(&r, &a->doc, REPLY_TOP, 2, false),
                   "V2 reply %zu's other members are not the answer's", p);
    for (size_t k = 0; k < a->nouts; k++) {
        const ref_output_t *o = &a->outs[k];
        const jref_node_t *ro = &routs->kids[k];
        uint64_t dims[REF_MAX_DIMS];
        size_t nd;
        FUZZ_CHECK(ro->kind == JREF_OBJECT && ref_dims(jref_get(ro, "shape"), dims, &nd) &&
                       dims[0] == part->rows,
                   "V2 reply %zu output %zu is not cut to %u rows", p, k, part->rows);
        if (!a->simple)
            continue;
        FUZZ_CHECK(nd == o->ndims && memcmp(dims + 1, o->dims + 1, (nd - 1) * sizeof(*dims)) == 0,
                   "V2 reply %zu output %zu is not shaped as the answer's", p, k);
        FUZZ_CHECK(ref_equal_without(ro, o->obj, OUTPUT_KEYS, 3, false),
                   "V2 reply %zu output %zu's members are not the answer's", p, k);
        bool bin = o->dt && ref_wants_binary(doc, o->name, o->has_name);
        const jref_node_t *rp = jref_get(ro, "parameters"), *op = jref_get(o->obj, "parameters");
        const jref_node_t *bds = jref_get(rp, "binary_data_size");
        if (op && op->kind == JREF_OBJECT)
            FUZZ_CHECK(rp && ref_equal_without(rp, op, BDS, 1, false),
                       "V2 reply %zu output %zu's parameters changed", p, k);
        else if (!op)
            FUZZ_CHECK(bin ? rp && rp->n == 1 : !rp, "V2 reply %zu output %zu has parameters", p,
                       k);
        ref_vals_t got = {0}, want = ref_answer_rows(o, r0, part->rows);
        jref_vec_t leaves = {0};
        any_bin |= bin;
        if (bin) {
            uint64_t size;
            bool neg;
            FUZZ_CHECK(bds && jref_integer(bds, &size, &neg) && !neg && size <= tail.len - off &&
                           !jref_get(ro, "data"),
                       "V2 reply %zu output %zu is not binary as asked", p, k);
            got.bytes = ig_slice(tail.base + off, (size_t)size);
            off += (size_t)size;
        } else {
            const jref_node_t *data = jref_get(ro, "data");
            FUZZ_CHECK(!bds && data && data->kind == JREF_ARRAY,
                       "V2 reply %zu output %zu is not JSON as asked", p, k);
            jref_leaves(data, &leaves);
            got.json = true;
            got.leaves = leaves.v;
            got.nleaves = leaves.n;
        }
        FUZZ_CHECK(ref_same_values(o->dt, &want, &got),
                   "V2 reply %zu output %zu does not hold its rows [%" PRIu64 ", +%u)", p, k, r0,
                   part->rows);
        jref_vec_free(&leaves);
    }
    if (a->simple)
        FUZZ_CHECK(off == tail.len && (part->reply_header_len >= 0) == any_bin,
                   "V2 reply %zu has %zu binary bytes, its outputs %zu", p, tail.len, off);
    jref_free(&r);
}

/* Appends leaves[*at..] nested by dims[level..] (row-major). */
static void nest(ig_buf_t *a, const jref_vec_t *leaves, size_t *at, const uint64_t *dims, size_t nd,
                 size_t level, const char *sep)
{
    ref_put(a, "[");
    for (uint64_t e = 0; e < dims[level]; e++) {
        if (e)
            ref_put(a, sep);
        if (level + 1 < nd)
            nest(a, leaves, at, dims, nd, level + 1, sep);
        else
            ref_put_slice(a, leaves->v[(*at)++]->raw);
    }
    ref_put(a, "]");
}

/* An output of the echo answer: name, datatype and shape of the merged
 * input, then `data` (a JSON array) or binary_data_size. */
void ref_v2_echo_output(ig_buf_t *a, const jref_node_t *mi, unsigned flags, const char *data,
                        int64_t bin_size)
{
    const char *sep = (flags & REF_ECHO_WS) ? " , " : ",";
    ref_put_fmt(a, "{\"name\":%.*s%s\"datatype\":%.*s%s", (int)jref_get(mi, "name")->raw.len,
                jref_get(mi, "name")->raw.base, sep, (int)jref_get(mi, "datatype")->raw.len,
                jref_get(mi, "datatype")->raw.base, sep);
    const jref_node_t *shape = jref_get(mi, "shape");
    char body[64];
    if (bin_size >= 0)
        snprintf(body, sizeof(body), "\"parameters\":{\"binary_data_size\":%" PRId64 "}", bin_size);
    if (flags & REF_ECHO_DATA_FIRST) {
        if (bin_size >= 0)
            ref_put(a, body);
        else
            ref_put_fmt(a, "\"data\":%s", data);
        ref_put_fmt(a, "%s\"shape\":%.*s}", sep, (int)shape->raw.len, shape->raw.base);
    } else {
        ref_put_fmt(a, "\"shape\":%.*s%s", (int)shape->raw.len, shape->raw.base, sep);
        if (bin_size >= 0)
            ref_put_fmt(a, "%s}", body);
        else
            ref_put_fmt(a, "\"data\":%s}", data);
    }
}

/* The echo model's JSON answer to the merged V2 body m. */
void ref_v2_echo(ig_buf_t *a, const jref_node_t *m, unsigned flags)
{
    const jref_node_t *mins = jref_get(m, "inputs");
    const char *sep = (flags & REF_ECHO_WS) ? " ,\n" : ",";
    ref_put(a, "{\"model_name\":\"echo\",");
    if (flags & REF_ECHO_ID)
        ref_put(a, "\"id\":\"batch\",");
    ref_put(a, "\"outputs\":[");
    for (size_t k = 0; k < mins->n; k++) {
        const jref_node_t *mi = &mins->kids[k];
        uint64_t dims[REF_MAX_DIMS];
        size_t nd, at = 0;
        jref_vec_t leaves = {0};
        ig_buf_t data;
        ig_buf_init(&data, 0);
        ref_dims(jref_get(mi, "shape"), dims, &nd);
        jref_leaves(jref_get(mi, "data"), &leaves);
        if ((flags & REF_ECHO_NEST) && nd > 1 && leaves.n > 0) {
            nest(&data, &leaves, &at, dims, nd, 0, sep);
        } else {
            ref_put(&data, "[");
            for (size_t i = 0; i < leaves.n; i++) {
                if (i)
                    ref_put(&data, sep);
                ref_put_slice(&data, leaves.v[i]->raw);
            }
            ref_put(&data, "]");
        }
        if (k)
            ref_put(a, sep);
        ref_v2_echo_output(a, mi, flags, data.base, -1);
        ig_buf_dispose(&data);
        jref_vec_free(&leaves);
    }
    ref_put(a, "]}");
}

/* Whether binary data of dt can be given as JSON: finite floats, UTF-8 strings. */
bool ref_json_able(const ig_dtype_t *dt, ig_slice_t b)
{
    if (dt->kind == IG_DT_BYTES) {
        const unsigned char *u = (const unsigned char *)b.base;
        for (size_t at = 0; at < b.len;) {
            size_t n =
                u[at] | (size_t)u[at + 1] << 8 | (size_t)u[at + 2] << 16 | (size_t)u[at + 3] << 24;
            if (!jref_utf8_valid(b.base + at + 4, n))
                return false;
            at += 4 + n;
        }
        return true;
    }
    if (dt->size == 4)
        for (size_t at = 0; at < b.len; at += 4) {
            float f;
            memcpy(&f, b.base + at, 4);
            if (!isfinite(f))
                return false;
        }
    return true;
}

/* The elements of binary data `b` as JSON text (json_able data only). */
void ref_bytes_to_json(const ig_dtype_t *dt, ig_slice_t b, ig_buf_t *out)
{
    const unsigned char *u = (const unsigned char *)b.base;
    ref_put(out, "[");
    for (size_t at = 0, e = 0; at < b.len; e++) {
        if (e)
            ref_put(out, ",");
        if (dt->kind == IG_DT_BYTES) {
            size_t n =
                u[at] | (size_t)u[at + 1] << 8 | (size_t)u[at + 2] << 16 | (size_t)u[at + 3] << 24;
            FUZZ_CHECK(ig_buf_append_json_str(out, b.base + at + 4, n) == 0, "append");
            at += 4 + n;
        } else if (dt->size == 4) {
            float f;
            memcpy(&f, u + at, 4);
            ref_put_fmt(out, "%.9g", (double)f);
            at += 4;
        } else {
            uint64_t x = 0;
            for (unsigned k = 0; k < 8; k++)
                x |= (uint64_t)u[at + k] << (8 * k);
            ref_put_fmt(out, "%" PRId64, (int64_t)x);
            at += 8;
        }
    }
    ref_put(out, "]");
}
