/*
 * codecref_v2.c: the pre-span cJSON codec, gateway/core/codec/codec_v2.c as it was at commit
 * 0a9a26d, kept only as the baseline of `infergate-bench codec` (the "old
 * cJSON path" column of bench/bench/codec.c). It is never linked into the
 * gateway. Every external name is renamed (ig_codec_* -> ig_refcodec_*,
 * ig_batch_part_t -> ig_refcodec_part_t) so that it links beside the
 * codec it is measured against; the code is otherwise unchanged. Do not
 * fix or improve it: it must stay what the gateway ran before.
 *
 * The original opening comment: batching for the Open Inference Protocol V2 (KServe V2, Triton).
 *
 * A V2 request carries tensors: {"id", "parameters", "inputs": [{name,
 * datatype, shape, data, parameters}], "outputs": [{name, parameters}]}.
 * Dimension 0 of every input is the batch axis, so requests whose inputs
 * agree on everything but dim 0 and the data (names, datatypes, shape[1:],
 * per-input parameters, requested outputs, top-level parameters) can be
 * stacked: the merged call has shape [sum of rows, ...] and the row-major
 * concatenation of every part's data. The model's answer is cut back along
 * dim 0 for each output whose shape[0] equals the batch's rows; an output of
 * any other shape (a per-batch statistic, say) is copied whole to everyone.
 *
 * The request "id" is per request: it is not in the key, the merged call
 * carries none, and each reply gets its own back. Parsing checks what a
 * merge relies on (shapes agree with the data, the data's types fit the
 * datatype) so a malformed request gets its own 400 instead of poisoning its
 * batch-mates. Requests using the binary tensor data extension are valid
 * but travel alone: their bytes are not JSON and cannot be stacked here.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecref.h"
#include "infergate/base/dtype.h"
#include "infergate/base/error.h"

/* Shape dimensions are JSON numbers: integral, non-negative and no larger
 * than a double counts exactly. */
#define MAX_DIM 9007199254740992.0

static const char *const key_omit_top[] = {"id", "inputs", NULL};
static const char *const key_omit_input[] = {"data", "shape", NULL};

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "an invalid value";
}

static bool is_dim(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
           v->valuedouble <= MAX_DIM && v->valuedouble == floor(v->valuedouble);
}

/* Checks that `shape` is a non-empty array of dims; returns the index of the
 * first bad one, or -1 when the shape is fine (-2: not a non-empty array). */
static int bad_dim(const cJSON *shape)
{
    int i = 0;
    if (!cJSON_IsArray(shape) || !shape->child)
        return -2;
    for (const cJSON *d = shape->child; d; d = d->next, i++)
        if (!is_dim(d))
            return i;
    return -1;
}

/* Product of the dims from `d` on, saturating at SIZE_MAX. */
static size_t dims_product(const cJSON *d)
{
    size_t p = 1;
    bool saturated = false;
    for (; d; d = d->next) {
        double v = d->valuedouble;
        if (v == 0)
            return 0;
        if (saturated || v > (double)(SIZE_MAX / p))
            saturated = true;
        else
            p *= (size_t)v;
    }
    return saturated ? SIZE_MAX : p;
}

/* Renders a shape for a message, cut to fit. */
static void shape_text(const cJSON *shape, char *out, size_t outlen)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    if (ig_refcodec_write_json(&b, shape, false, NULL) == 0 && b.base)
        snprintf(out, outlen, "%.60s%s", b.base, b.len > 60 ? "..." : "");
    else
        snprintf(out, outlen, "?");
    ig_buf_dispose(&b);
}

static bool flag_set(const cJSON *params, const char *name)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(params, name);
    return p && !cJSON_IsFalse(p);
}

/* The binary tensor data extension, announced in any parameters object the
 * request has: binary inputs (binary_data_size), or binary outputs asked for
 * (binary_data on an output, binary_data_output for all of them). */
static bool wants_binary(const cJSON *root)
{
    const cJSON *list, *t;
    const char *const lists[] = {"inputs", "outputs"};

    if (flag_set(cJSON_GetObjectItemCaseSensitive(root, "parameters"), "binary_data_output"))
        return true;
    for (size_t l = 0; l < 2; l++) {
        list = cJSON_GetObjectItemCaseSensitive(root, lists[l]);
        if (!cJSON_IsArray(list))
            continue;
        cJSON_ArrayForEach(t, list)
        {
            const cJSON *p =
                cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "parameters") : NULL;
            if (cJSON_IsObject(p) &&
                (flag_set(p, "binary_data_size") || flag_set(p, "binary_data")))
                return true;
        }
    }
    return false;
}

/* Best-effort row count of a request that goes alone: dim 0 of its first
 * input when that is readable, else 1. */
static uint32_t guess_rows(const cJSON *root)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    const cJSON *t = cJSON_IsArray(inputs) ? inputs->child : NULL;
    const cJSON *shape = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "shape") : NULL;
    const cJSON *d0 = cJSON_IsArray(shape) ? shape->child : NULL;
    if (is_dim(d0) && d0->valuedouble >= 1 && d0->valuedouble <= UINT32_MAX)
        return (uint32_t)d0->valuedouble;
    return 1;
}

/* Walks a tensor's data (flat or nested), counting scalars and checking each
 * against the datatype. `where` names the input in messages. */
typedef struct {
    const ig_dtype_t *dt;
    size_t count;
    const char *where;
    char *err;
    size_t errlen;
} walk_t;

static int check_scalar(walk_t *w, const cJSON *v)
{
    const ig_dtype_t *dt = w->dt;
    double d;

    switch (dt->kind) {
    case IG_DT_BOOL:
        if (!cJSON_IsBool(v))
            goto wrong_type;
        return 0;
    case IG_DT_BYTES:
        if (!cJSON_IsString(v))
            goto wrong_type;
        return 0;
    case IG_DT_INT:
    case IG_DT_FLOAT:
        if (!cJSON_IsNumber(v))
            goto wrong_type;
        d = v->valuedouble;
        if (!isfinite(d))
            return ig_refcodec_fail(w->err, w->errlen, IG_EINVAL,
                                    "%s.data: value %zu is not a finite number", w->where,
                                    w->count);
        if (dt->kind == IG_DT_INT && d != floor(d))
            return ig_refcodec_fail(w->err, w->errlen, IG_EINVAL,
                                    "%s.data: value %zu (%.17g) is not an integer, datatype %s",
                                    w->where, w->count, d, dt->name);
        if (!ig_dtype_in_range(dt, d))
            return ig_refcodec_fail(w->err, w->errlen, IG_EINVAL,
                                    "%s.data: value %zu (%.17g) is out of range for %s", w->where,
                                    w->count, d, dt->name);
        return 0;
    }
wrong_type:
    return ig_refcodec_fail(w->err, w->errlen, IG_EINVAL,
                            "%s.data: value %zu is %s, datatype %s needs %s", w->where, w->count,
                            json_kind(v), dt->name,
                            dt->kind == IG_DT_BOOL    ? "true or false"
                            : dt->kind == IG_DT_BYTES ? "strings"
                                                      : "numbers");
}

static int walk_data(walk_t *w, const cJSON *arr)
{
    int rc;
    for (const cJSON *v = arr->child; v; v = v->next) {
        if (cJSON_IsArray(v)) {
            if ((rc = walk_data(w, v)))
                return rc;
            continue;
        }
        if ((rc = check_scalar(w, v)))
            return rc;
        w->count++;
    }
    return 0;
}

static int check_params(const cJSON *p, const char *where, char *err, size_t errlen)
{
    if (p && !cJSON_IsObject(p))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.parameters: expected an object", where);
    return 0;
}

/* Validates one input tensor; *rows gets its dim 0. */
static int check_input(const cJSON *t, size_t i, double *rows, char *err, size_t errlen)
{
    const cJSON *name, *dtype, *shape, *data;
    const ig_dtype_t *dt;
    const char *dup;
    char where[96], shp[72];
    size_t want;
    walk_t w;
    int bad, rc;

    snprintf(where, sizeof(where), "inputs[%zu]", i);
    if (!cJSON_IsObject(t))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: expected a tensor object", where);
    if ((dup = ig_refcodec_duplicate_member(t)))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: member \"%.32s\" appears twice", where,
                                dup);
    name = cJSON_GetObjectItemCaseSensitive(t, "name");
    if (!cJSON_IsString(name))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.name: expected a string", where);
    snprintf(where, sizeof(where), "inputs[%zu] (\"%.48s\")", i, name->valuestring);
    dtype = cJSON_GetObjectItemCaseSensitive(t, "datatype");
    if (!cJSON_IsString(dtype))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.datatype: %s", where,
                                dtype ? "expected a string" : "missing");
    dt = ig_dtype_find(dtype->valuestring);
    if (!dt)
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "%s.datatype: \"%.32s\" is not a tensor datatype (BOOL, UINT8..64, "
                                "INT8..64, FP16, FP32, FP64, BF16, BYTES)",
                                where, dtype->valuestring);
    shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    if (!shape)
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.shape: missing", where);
    bad = bad_dim(shape);
    if (bad == -2)
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "%s.shape: expected a non-empty array of dimensions", where);
    if (bad >= 0)
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "%s.shape[%d]: expected a non-negative integer", where, bad);
    *rows = shape->child->valuedouble;
    if (*rows < 1)
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "%s.shape[0]: expected at least 1 row, got 0", where);
    if (*rows > UINT32_MAX)
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.shape[0]: %.0f rows is too many", where,
                                *rows);
    if ((rc = check_params(cJSON_GetObjectItemCaseSensitive(t, "parameters"), where, err, errlen)))
        return rc;
    data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (!cJSON_IsArray(data))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.data: %s", where,
                                data ? "expected an array" : "missing");
    w = (walk_t){.dt = dt, .where = where, .err = err, .errlen = errlen};
    if ((rc = walk_data(&w, data)))
        return rc;
    want = dims_product(shape->child);
    if (w.count != want) {
        shape_text(shape, shp, sizeof(shp));
        if (want == SIZE_MAX)
            return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                    "%s.data: holds %zu values but shape %s is far larger", where,
                                    w.count, shp);
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "%s.data: holds %zu values but shape %s needs %zu", where, w.count,
                                shp, want);
    }
    return 0;
}

static int check_outputs(const cJSON *outputs, char *err, size_t errlen)
{
    const cJSON *o, *name;
    char where[48];
    size_t i = 0;
    int rc;

    if (!outputs)
        return 0;
    if (!cJSON_IsArray(outputs))
        return ig_refcodec_fail(err, errlen, IG_EINVAL,
                                "outputs: expected an array of {\"name\": ...} objects");
    cJSON_ArrayForEach(o, outputs)
    {
        snprintf(where, sizeof(where), "outputs[%zu]", i++);
        if (!cJSON_IsObject(o))
            return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: expected an object", where);
        name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(name))
            return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s.name: expected a string", where);
        if ((rc = check_params(cJSON_GetObjectItemCaseSensitive(o, "parameters"), where, err,
                               errlen)))
            return rc;
    }
    return 0;
}

/* Appends shape[1:] of an input as a JSON array (the part of a shape that
 * is in the key). */
static int write_shape_tail(ig_buf_t *out, const cJSON *shape)
{
    int rc = ig_buf_append(out, "[", 1);
    for (const cJSON *d = shape->child->next; d && !rc; d = d->next) {
        if (d != shape->child->next)
            rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = ig_refcodec_write_number(out, d->valuedouble);
    }
    return rc ? rc : ig_buf_append(out, "]", 1);
}

/* Appends [rows, shape[1:]...]: a shape with its dim 0 replaced. */
static int write_shape_rows(ig_buf_t *out, uint64_t rows, const cJSON *shape)
{
    int rc = ig_buf_append(out, "[", 1);
    if (!rc)
        rc = ig_refcodec_write_number(out, (double)rows);
    for (const cJSON *d = shape->child->next; d && !rc; d = d->next) {
        rc = ig_buf_append(out, ",", 1);
        if (!rc)
            rc = ig_refcodec_write_number(out, d->valuedouble);
    }
    return rc ? rc : ig_buf_append(out, "]", 1);
}

static int build_key(ig_refcodec_part_t *part, ig_slice_t model, const cJSON *root)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    const cJSON *t;
    int rc;

    ig_buf_init(&part->key, 0);
    if ((rc = ig_refcodec_key_begin(&part->key, model)) ||
        (rc = ig_refcodec_write_json(&part->key, root, true, key_omit_top)))
        return rc;
    cJSON_ArrayForEach(t, inputs)
    {
        if ((rc = ig_buf_append(&part->key, " ", 1)) ||
            (rc = ig_refcodec_write_json(&part->key, t, true, key_omit_input)) ||
            (rc = write_shape_tail(&part->key, cJSON_GetObjectItemCaseSensitive(t, "shape"))))
            return rc;
    }
    part->key_hash = ig_refcodec_hash(part->key.base, part->key.len);
    return 0;
}

static int v2_parse(ig_refcodec_part_t *part, ig_slice_t model, ig_slice_t body, bool binary_hint,
                    char *err, size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *id, *inputs, *t;
    double rows = 0, r = 0;
    size_t i = 0;
    int rc;

    if (binary_hint) {
        /* The body is a JSON header followed by raw tensor bytes: read the
         * header only to count rows; the model validates the rest. */
        const char *end = NULL;
        root = body.len ? cJSON_ParseWithLengthOpts(body.base, body.len, &end, false) : NULL;
        part->rows = cJSON_IsObject(root) ? guess_rows(root) : 1;
        cJSON_Delete(root);
        part->alone = true;
        return 0;
    }
    rc = ig_refcodec_parse_object(body, "body", true, &root, err, errlen);
    if (rc)
        return rc;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsString(id)) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL, "id: expected a string");
        goto fail;
    }
    if (wants_binary(root)) {
        part->rows = guess_rows(root);
        part->alone = true;
        part->doc = root;
        return 0;
    }
    if ((rc = check_params(cJSON_GetObjectItemCaseSensitive(root, "parameters"), "body", err,
                           errlen)) ||
        (rc = check_outputs(cJSON_GetObjectItemCaseSensitive(root, "outputs"), err, errlen)))
        goto fail;
    inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs) || !inputs->child) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL, "inputs: %s",
                              !inputs                 ? "missing"
                              : cJSON_IsArray(inputs) ? "empty, expected at least one tensor"
                                                      : "expected an array of tensors");
        goto fail;
    }
    cJSON_ArrayForEach(t, inputs)
    {
        if ((rc = check_input(t, i, &r, err, errlen)))
            goto fail;
        if (i > 0 && r != rows) {
            rc = ig_refcodec_fail(err, errlen, IG_EINVAL,
                                  "inputs[%zu].shape[0]: %.0f rows, but inputs[0] has %.0f; every "
                                  "input needs the same batch dimension",
                                  i, r, rows);
            goto fail;
        }
        rows = r;
        i++;
    }
    part->rows = (uint32_t)rows;
    if ((rc = build_key(part, model, root))) {
        ig_refcodec_fail(err, errlen, rc, "body: cannot build the batch key");
        goto fail;
    }
    part->doc = root;
    return 0;
fail:
    cJSON_Delete(root);
    ig_refcodec_part_dispose(part);
    return rc;
}

/* Writes a separator when needed, then `"name":`. */
static int member_name(ig_buf_t *out, bool *first, const char *name)
{
    int rc = 0;
    if (!*first)
        rc = ig_buf_append(out, ",", 1);
    *first = false;
    if (!rc)
        rc = ig_buf_append_json_str(out, name, strlen(name));
    return rc ? rc : ig_buf_append(out, ":", 1);
}

/* Appends every scalar of (possibly nested) `arr`, comma-separated. */
static int write_leaves(ig_buf_t *out, const cJSON *arr, bool *first)
{
    int rc = 0;
    for (const cJSON *v = arr->child; v && !rc; v = v->next) {
        if (cJSON_IsArray(v)) {
            rc = write_leaves(out, v, first);
            continue;
        }
        if (!*first)
            rc = ig_buf_append(out, ",", 1);
        *first = false;
        if (!rc)
            rc = ig_refcodec_write_json(out, v, false, NULL);
    }
    return rc;
}

/* Writes input j of the merged call; cur[i] is part i's input j. */
static int merge_input(ig_buf_t *out, const cJSON *const *cur, size_t n, uint64_t total)
{
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(cur[0], "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cur[0], "data");
    bool first = true;
    int rc;

    if (bad_dim(shape) != -1 || !cJSON_IsArray(data))
        return IG_EINVAL; /* not a part that v2_parse accepted */
    rc = ig_buf_append(out, "{", 1);
    for (const cJSON *m = cur[0]->child; m && !rc; m = m->next) {
        if ((rc = member_name(out, &first, m->string)))
            break;
        if (m == shape) {
            /* shape[1:] is equal in every part: it is in the key */
            rc = write_shape_rows(out, total, m);
        } else if (m == data) {
            bool lfirst = true;
            rc = ig_buf_append(out, "[", 1);
            for (size_t i = 0; i < n && !rc; i++) {
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(cur[i], "data");
                if (!cJSON_IsArray(d))
                    return IG_EINVAL;
                rc = write_leaves(out, d, &lfirst);
            }
            if (!rc)
                rc = ig_buf_append(out, "]", 1);
        } else {
            rc = ig_refcodec_write_json(out, m, false, NULL);
        }
    }
    return rc ? rc : ig_buf_append(out, "}", 1);
}

static int v2_merge(ig_refcodec_part_t *const *parts, size_t n, ig_buf_t *out)
{
    const cJSON **cur;
    const cJSON *root0;
    uint64_t total = 0;
    bool first = true;
    int rc;

    if (n == 0 || !parts[0]->doc)
        return IG_EINVAL;
    root0 = parts[0]->doc;
    cur = ig_xmalloc(n * sizeof(*cur));
    for (size_t i = 0; i < n; i++) {
        const cJSON *inputs =
            parts[i]->doc ? cJSON_GetObjectItemCaseSensitive(parts[i]->doc, "inputs") : NULL;
        if (!cJSON_IsArray(inputs)) {
            free(cur);
            return IG_EINVAL;
        }
        cur[i] = inputs->child;
        total += parts[i]->rows;
    }
    rc = ig_buf_append_str(out, "{\"inputs\":[");
    while (!rc && cur[0]) {
        for (size_t i = 0; i < n; i++)
            if (!cur[i])
                rc = IG_EINVAL; /* keys differ: the batcher broke the contract */
        if (!rc && !first)
            rc = ig_buf_append(out, ",", 1);
        first = false;
        if (!rc)
            rc = merge_input(out, cur, n, total);
        for (size_t i = 0; i < n; i++)
            cur[i] = cur[i] ? cur[i]->next : NULL;
    }
    free(cur);
    if (!rc)
        rc = ig_buf_append(out, "]", 1);
    /* The rest of the first part (outputs, parameters...): equal in all parts. */
    first = false;
    for (const cJSON *m = root0->child; m && !rc; m = m->next) {
        if (strcmp(m->string, "id") == 0 || strcmp(m->string, "inputs") == 0)
            continue;
        if (!(rc = member_name(out, &first, m->string)))
            rc = ig_refcodec_write_json(out, m, false, NULL);
    }
    return rc ? rc : ig_buf_append(out, "}", 1);
}

/* One output of the model's answer, checked and, when it is batch-sized,
 * flattened so that each part's rows are a slice of `leaves`. */
typedef struct {
    const cJSON *o, *shape, *data;
    const cJSON **leaves; /* owned; NULL when the output is copied whole */
    size_t per_row;       /* scalars per row: prod(shape[1:]) */
} out_t;

static size_t count_leaves(const cJSON *arr)
{
    size_t n = 0;
    for (const cJSON *v = arr->child; v; v = v->next)
        n += cJSON_IsArray(v) ? count_leaves(v) : 1;
    return n;
}

static void collect_leaves(const cJSON *arr, const cJSON **leaves, size_t *k)
{
    for (const cJSON *v = arr->child; v; v = v->next) {
        if (cJSON_IsArray(v))
            collect_leaves(v, leaves, k);
        else
            leaves[(*k)++] = v;
    }
}

static int check_output(out_t *ot, const cJSON *o, size_t k, uint64_t total, char *err,
                        size_t errlen)
{
    const cJSON *name, *data;
    char where[96], shp[72];
    size_t have, want;

    ot->o = o;
    ot->data = NULL;
    snprintf(where, sizeof(where), "model answer: outputs[%zu]", k);
    if (!cJSON_IsObject(o))
        return ig_refcodec_fail(err, errlen, IG_EUPSTREAM, "%s: expected an object", where);
    name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (cJSON_IsString(name))
        snprintf(where, sizeof(where), "model answer: outputs[%zu] (\"%.48s\")", k,
                 name->valuestring);
    ot->shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    if (bad_dim(ot->shape) != -1)
        return ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                                "%s.shape: expected a non-empty array of non-negative integers",
                                where);
    data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (!cJSON_IsArray(data))
        return ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                                "%s.data: %s (binary outputs cannot be split)", where,
                                data ? "expected an array" : "missing");
    ot->data = data;
    have = count_leaves(data);
    want = dims_product(ot->shape->child);
    if (have != want) {
        shape_text(ot->shape, shp, sizeof(shp));
        return ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                                "%s.data: holds %zu values but shape %s needs %s%zu", where, have,
                                shp, want == SIZE_MAX ? "more than " : "", want);
    }
    if (ot->shape->child->valuedouble == (double)total) {
        size_t at = 0;
        ot->per_row = dims_product(ot->shape->child->next);
        ot->leaves = ig_xmalloc((have ? have : 1) * sizeof(*ot->leaves));
        collect_leaves(data, ot->leaves, &at);
    }
    return 0;
}

/* Writes one output for a part holding `rows` rows that start at `row0`. */
static int write_output(ig_buf_t *r, const out_t *ot, uint64_t row0, uint32_t rows)
{
    bool first = true;
    int rc = ig_buf_append(r, "{", 1);

    for (const cJSON *m = ot->o->child; m && !rc; m = m->next) {
        if ((rc = member_name(r, &first, m->string)))
            break;
        if (ot->leaves && m == ot->shape) {
            rc = write_shape_rows(r, rows, m);
        } else if (ot->leaves && m == ot->data) {
            size_t from = (size_t)row0 * ot->per_row, to = from + (size_t)rows * ot->per_row;
            rc = ig_buf_append(r, "[", 1);
            for (size_t k = from; k < to && !rc; k++) {
                if (k > from)
                    rc = ig_buf_append(r, ",", 1);
                if (!rc)
                    rc = ig_refcodec_write_json(r, ot->leaves[k], false, NULL);
            }
            if (!rc)
                rc = ig_buf_append(r, "]", 1);
        } else {
            rc = ig_refcodec_write_json(r, m, false, NULL);
        }
    }
    return rc ? rc : ig_buf_append(r, "}", 1);
}

/* Members of the answer that each reply gets in a fixed place. */
static const char *const reply_fixed[] = {"model_name", "model_version", "id",
                                          "parameters", "outputs",       NULL};

static int write_reply(ig_buf_t *r, const cJSON *root, const out_t *outs, size_t nout,
                       const ig_refcodec_part_t *part, uint64_t row0)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(part->doc, "id");
    bool first = true;
    int rc = ig_buf_append(r, "{", 1);

    for (size_t f = 0; reply_fixed[f] && !rc; f++) {
        const char *name = reply_fixed[f];
        const cJSON *m;
        if (strcmp(name, "id") == 0) {
            if (cJSON_IsString(id) && !(rc = member_name(r, &first, "id")))
                rc = ig_refcodec_write_json(r, id, false, NULL);
        } else if (strcmp(name, "outputs") == 0) {
            if (!(rc = member_name(r, &first, "outputs")))
                rc = ig_buf_append(r, "[", 1);
            for (size_t k = 0; k < nout && !rc; k++) {
                if (k > 0)
                    rc = ig_buf_append(r, ",", 1);
                if (!rc)
                    rc = write_output(r, &outs[k], row0, part->rows);
            }
            if (!rc)
                rc = ig_buf_append(r, "]", 1);
        } else if ((m = cJSON_GetObjectItemCaseSensitive(root, name))) {
            if (!(rc = member_name(r, &first, name)))
                rc = ig_refcodec_write_json(r, m, false, NULL);
        }
    }
    /* Anything else the model said applies to the whole batch: copy it. */
    for (const cJSON *m = root->child; m && !rc; m = m->next) {
        bool fixed = false;
        for (size_t f = 0; reply_fixed[f]; f++)
            fixed = fixed || strcmp(m->string, reply_fixed[f]) == 0;
        if (fixed)
            continue;
        if (!(rc = member_name(r, &first, m->string)))
            rc = ig_refcodec_write_json(r, m, false, NULL);
    }
    return rc ? rc : ig_buf_append(r, "}", 1);
}

static int v2_split(ig_slice_t body, ig_refcodec_part_t *const *parts, size_t n, char *err,
                    size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *outputs, *o;
    out_t *outs = NULL;
    size_t nout = 0, k = 0;
    uint64_t total = 0, row0 = 0;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!parts[i]->doc)
            return ig_refcodec_fail(err, errlen, IG_EINVAL, "request %zu of the batch has no body",
                                    i);
        total += parts[i]->rows;
    }
    if (ig_refcodec_parse_object(body, "model answer", false, &root, err, errlen))
        return IG_EUPSTREAM;
    outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!cJSON_IsArray(outputs)) {
        rc = ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                              "model answer: expected an \"outputs\" array of tensors");
        goto out;
    }
    for (o = outputs->child; o; o = o->next)
        nout++;
    outs = ig_xcalloc(nout ? nout : 1, sizeof(*outs));
    for (o = outputs->child; o; o = o->next, k++)
        if ((rc = check_output(&outs[k], o, k, total, err, errlen)))
            goto out;
    for (size_t i = 0; i < n; i++) {
        ig_buf_t *r = &parts[i]->reply;
        ig_buf_dispose(r);
        ig_buf_init(r, 0);
        if ((rc = write_reply(r, root, outs, nout, parts[i], row0))) {
            rc = ig_refcodec_split_fail(parts, i + 1, i, rc, err, errlen);
            goto out;
        }
        row0 += parts[i]->rows;
    }
    rc = 0;
out:
    for (size_t j = 0; outs && j < nout; j++)
        free(outs[j].leaves);
    free(outs);
    cJSON_Delete(root);
    return rc;
}

const ig_refcodec_t ig_refcodec_v2 = {
    .name = "oip-v2",
    .parse = v2_parse,
    .merge = v2_merge,
    .split = v2_split,
};
