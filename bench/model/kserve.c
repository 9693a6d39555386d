/*
 * kserve.c: KServe V1 and Open Inference Protocol V2 bodies for the iris model.
 *
 * Parsing validates everything a client can get wrong and says where, in the
 * JSON-path style clients know ("inputs[0].shape"), so a 400 is actionable.
 * Nothing is allocated for the feature matrix until its size is known to
 * match the body, so a lying shape cannot make us allocate more than the
 * body itself implies. Rendering uses cJSON; FP32 values are printed with the
 * 9 significant digits that round-trip a float, not as the double they
 * widen to.
 */
#include "kserve.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/dtype.h"
#include "infergate/base/error.h"

/* Iris measurements are centimetres. Far larger values overflow the
 * standardisation into infinities and the softmax into NaN, so they are
 * refused instead of answered with meaningless numbers. */
#define MAX_FEATURE 1e6

static void *xalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("infergate-model: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* Parses a whole body as one JSON value; trailing non-space bytes are an error. */
static cJSON *parse_body(const char *body, size_t len, char *err, size_t errlen, int *rc)
{
    const char *end = NULL;
    cJSON *root;

    *rc = 0;
    if (len == 0) {
        *rc = ig_error_fmt(err, errlen, IG_EPARSE, "body: empty, expected a JSON object");
        return NULL;
    }
    root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (root && end) {
        while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end < body + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    if (!root) {
        *rc = ig_error_fmt(err, errlen, IG_EPARSE, "body: invalid JSON");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *rc = ig_error_fmt(err, errlen, IG_EINVAL, "body: expected a JSON object");
        return NULL;
    }
    return root;
}

int ig_kserve_v1_parse(const char *body, size_t len, ig_kserve_input_t *in, char *err,
                       size_t errlen)
{
    int rc;
    cJSON *root = parse_body(body, len, err, errlen, &rc);
    const cJSON *instances, *row;
    size_t rows, i = 0;
    double *x;

    memset(in, 0, sizeof(*in));
    if (!root)
        return rc;
    instances = cJSON_GetObjectItemCaseSensitive(root, "instances");
    if (!instances) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "instances: missing");
        goto out;
    }
    if (!cJSON_IsArray(instances)) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "instances: expected an array");
        goto out;
    }
    rows = (size_t)cJSON_GetArraySize(instances);
    if (rows == 0) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "instances: expected at least one instance");
        goto out;
    }
    x = xalloc(rows * IG_IRIS_FEATURES * sizeof(double));
    cJSON_ArrayForEach(row, instances)
    {
        const cJSON *v;
        int j = 0;
        bool ok = cJSON_IsArray(row) && cJSON_GetArraySize(row) == IG_IRIS_FEATURES;
        if (ok) {
            cJSON_ArrayForEach(v, row)
            {
                if (!cJSON_IsNumber(v)) {
                    ok = false;
                    break;
                }
                if (!isfinite(v->valuedouble)) {
                    free(x);
                    rc = ig_error_fmt(err, errlen, IG_EINVAL,
                                      "instances[%zu][%d]: not a finite number", i, j);
                    goto out;
                }
                if (fabs(v->valuedouble) > MAX_FEATURE) {
                    free(x);
                    rc = ig_error_fmt(err, errlen, IG_EINVAL,
                                      "instances[%zu][%d]: %g is out of range (|x| <= %g)", i, j,
                                      v->valuedouble, MAX_FEATURE);
                    goto out;
                }
                x[i * IG_IRIS_FEATURES + (size_t)j++] = v->valuedouble;
            }
        }
        if (!ok) {
            free(x);
            rc = ig_error_fmt(err, errlen, IG_EINVAL,
                              "instances[%zu]: expected an array of %d numbers", i,
                              IG_IRIS_FEATURES);
            goto out;
        }
        i++;
    }
    in->rows = rows;
    in->x = x;
    in->outputs[0] = IG_KSERVE_OUT_LABEL;
    in->noutputs = 1;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* Renders a JSON value compactly for an error message, cut to fit. */
static void describe(const cJSON *v, char *out, size_t outlen)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(out, outlen, "?");
        return;
    }
    if (strlen(s) > 40)
        snprintf(out, outlen, "%.37s...", s);
    else
        snprintf(out, outlen, "%s", s);
    cJSON_free(s);
}

/* Reads a shape dimension: a non-negative integral number. */
static bool shape_dim(const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    if (!isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
        return false;
    *out = v->valuedouble;
    return true;
}

/* Checks one tensor element and converts it to the datatype's precision. */
static int element(const cJSON *v, const ig_dtype_t *dt, double *out, const char *where, char *err,
                   size_t errlen)
{
    double d;
    if (!cJSON_IsNumber(v))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].data%s: expected a number", where);
    d = v->valuedouble;
    if (!isfinite(d))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].data%s: not a finite number", where);
    if (dt->kind == IG_DT_INT) {
        if (d != floor(d) || !ig_dtype_in_range(dt, d))
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "inputs[0].data%s: %g is not a valid %s value", where, d, dt->name);
    } else {
        if (!ig_dtype_in_range(dt, d))
            return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].data%s: %g is out of %s range",
                                where, d, dt->name);
        if (strcmp(dt->name, "FP32") == 0)
            d = (double)(float)d;
    }
    if (fabs(d) > MAX_FEATURE)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "inputs[0].data%s: %g is out of range (|x| <= %g)", where, d,
                            MAX_FEATURE);
    *out = d;
    return 0;
}

static int parse_outputs(const cJSON *outputs, ig_kserve_input_t *in, char *err, size_t errlen)
{
    const cJSON *o;
    size_t i = 0;

    in->noutputs = 0;
    if (!cJSON_IsArray(outputs))
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "outputs: expected an array of {\"name\": ...}");
    cJSON_ArrayForEach(o, outputs)
    {
        const cJSON *name = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "name") : NULL;
        ig_kserve_output_t which;
        bool dup = false;

        if (!cJSON_IsString(name))
            return ig_error_fmt(err, errlen, IG_EINVAL, "outputs[%zu].name: expected a string", i);
        if (strcmp(name->valuestring, "label") == 0)
            which = IG_KSERVE_OUT_LABEL;
        else if (strcmp(name->valuestring, "probabilities") == 0)
            which = IG_KSERVE_OUT_PROBS;
        else
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "outputs[%zu].name: unknown output '%.64s' (this model has label, "
                                "probabilities)",
                                i, name->valuestring);
        for (size_t k = 0; k < in->noutputs; k++)
            dup = dup || in->outputs[k] == which;
        if (!dup)
            in->outputs[in->noutputs++] = which;
        i++;
    }
    if (in->noutputs == 0)
        return ig_error_fmt(err, errlen, IG_EINVAL, "outputs: empty; omit it to get every output");
    return 0;
}

static int parse_tensor(const cJSON *t, ig_kserve_input_t *in, char *err, size_t errlen)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "datatype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    const ig_dtype_t *dt;
    double dims[2];
    char got[64];
    size_t rows, want, n, i = 0;
    bool nested;
    const cJSON *v;
    double *x;
    int rc;

    if (!cJSON_IsString(name))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].name: expected a string");
    if (!dtype)
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].datatype: missing");
    if (!cJSON_IsString(dtype))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].datatype: expected a string");
    dt = ig_dtype_find(dtype->valuestring);
    if (!dt || (dt->kind != IG_DT_INT && dt->kind != IG_DT_FLOAT))
        return ig_error_fmt(
            err, errlen, IG_EINVAL,
            "inputs[0].datatype: %.32s is not supported (expected FP16, FP32, FP64, "
            "BF16 or an integer type)",
            dtype->valuestring);
    if (!shape)
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].shape: missing");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 2 ||
        !shape_dim(cJSON_GetArrayItem(shape, 0), &dims[0]) ||
        !shape_dim(cJSON_GetArrayItem(shape, 1), &dims[1]) || dims[1] != IG_IRIS_FEATURES) {
        describe(shape, got, sizeof(got));
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].shape: expected [N, %d], got %s",
                            IG_IRIS_FEATURES, got);
    }
    if (dims[0] < 1)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "inputs[0].shape: expected at least 1 row, got 0");
    if (!data)
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].data: missing");
    if (!cJSON_IsArray(data))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].data: expected an array");

    /* The element count is checked against the shape before allocating, so
     * a huge shape with little data is refused without costing memory. */
    n = (size_t)cJSON_GetArraySize(data);
    nested = n > 0 && cJSON_IsArray(data->child);
    if (dims[0] > (double)(SIZE_MAX / (IG_IRIS_FEATURES * sizeof(double))))
        return ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0].shape: %.0f rows is too many",
                            dims[0]);
    rows = (size_t)dims[0];
    want = nested ? rows : rows * IG_IRIS_FEATURES;
    if (n != want)
        return ig_error_fmt(err, errlen, IG_EINVAL,
                            "inputs[0].data: %zu %s for shape [%zu, %d] (expected %zu)", n,
                            nested ? "rows" : "values", rows, IG_IRIS_FEATURES, want);

    x = xalloc(rows * IG_IRIS_FEATURES * sizeof(double));
    cJSON_ArrayForEach(v, data)
    {
        char where[48];
        if (nested) {
            const cJSON *e;
            size_t j = 0;
            if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != IG_IRIS_FEATURES) {
                free(x);
                return ig_error_fmt(
                    err, errlen, IG_EINVAL,
                    "inputs[0].data[%zu]: expected an array of %d numbers (nested data "
                    "must match shape [%zu, %d])",
                    i, IG_IRIS_FEATURES, rows, IG_IRIS_FEATURES);
            }
            cJSON_ArrayForEach(e, v)
            {
                snprintf(where, sizeof(where), "[%zu][%zu]", i, j);
                rc = element(e, dt, &x[i * IG_IRIS_FEATURES + j], where, err, errlen);
                if (rc < 0) {
                    free(x);
                    return rc;
                }
                j++;
            }
        } else {
            snprintf(where, sizeof(where), "[%zu]", i);
            rc = element(v, dt, &x[i], where, err, errlen);
            if (rc < 0) {
                free(x);
                return rc;
            }
        }
        i++;
    }
    in->rows = rows;
    in->x = x;
    return 0;
}

int ig_kserve_v2_parse(const char *body, size_t len, ig_kserve_input_t *in, char *err,
                       size_t errlen)
{
    int rc;
    cJSON *root = parse_body(body, len, err, errlen, &rc);
    const cJSON *inputs, *outputs, *id, *t;
    int ninputs;

    memset(in, 0, sizeof(*in));
    if (!root)
        return rc;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && !cJSON_IsString(id)) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "id: expected a string");
        goto out;
    }
    inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!inputs) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "inputs: missing");
        goto out;
    }
    if (!cJSON_IsArray(inputs)) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "inputs: expected an array of tensors");
        goto out;
    }
    ninputs = cJSON_GetArraySize(inputs);
    if (ninputs != 1) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "inputs: expected 1 tensor, got %d", ninputs);
        goto out;
    }
    t = cJSON_GetArrayItem(inputs, 0);
    if (!cJSON_IsObject(t)) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "inputs[0]: expected an object");
        goto out;
    }
    outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (outputs) {
        rc = parse_outputs(outputs, in, err, errlen);
        if (rc < 0)
            goto out;
    } else {
        in->outputs[0] = IG_KSERVE_OUT_LABEL;
        in->outputs[1] = IG_KSERVE_OUT_PROBS;
        in->noutputs = 2;
    }
    rc = parse_tensor(t, in, err, errlen);
    if (rc < 0)
        goto out;
    if (id) {
        size_t n = strlen(id->valuestring);
        in->id = xalloc(n + 1);
        memcpy(in->id, id->valuestring, n + 1);
    }
out:
    if (rc < 0) {
        free(in->x);
        memset(in, 0, sizeof(*in));
    }
    cJSON_Delete(root);
    return rc;
}

void ig_kserve_input_dispose(ig_kserve_input_t *in)
{
    free(in->x);
    free(in->id);
    memset(in, 0, sizeof(*in));
}

static cJSON *must(cJSON *item)
{
    if (!item) {
        fputs("infergate-model: out of memory building JSON\n", stderr);
        abort();
    }
    return item;
}

static char *print(cJSON *root, size_t *len)
{
    char *s = cJSON_PrintUnformatted(root);
    if (!s) {
        fputs("infergate-model: out of memory printing JSON\n", stderr);
        abort();
    }
    cJSON_Delete(root);
    *len = strlen(s);
    return s;
}

char *ig_kserve_v1_render(const ig_iris_pred_t *pred, size_t rows, size_t *len)
{
    cJSON *root = must(cJSON_CreateObject());
    cJSON *arr = must(cJSON_AddArrayToObject(root, "predictions"));
    for (size_t i = 0; i < rows; i++)
        cJSON_AddItemToArray(arr, must(cJSON_CreateNumber((double)pred[i].label)));
    return print(root, len);
}

static cJSON *tensor(const char *name, const char *dtype, size_t d0, size_t d1)
{
    cJSON *t = must(cJSON_CreateObject());
    cJSON *shape;
    must(cJSON_AddStringToObject(t, "name", name));
    must(cJSON_AddStringToObject(t, "datatype", dtype));
    shape = must(cJSON_AddArrayToObject(t, "shape"));
    cJSON_AddItemToArray(shape, must(cJSON_CreateNumber((double)d0)));
    if (d1)
        cJSON_AddItemToArray(shape, must(cJSON_CreateNumber((double)d1)));
    return t;
}

char *ig_kserve_v2_render(const ig_kserve_input_t *in, const ig_iris_pred_t *pred,
                          const char *model, const char *version, size_t *len)
{
    cJSON *root = must(cJSON_CreateObject());
    cJSON *outs;

    must(cJSON_AddStringToObject(root, "model_name", model));
    if (version)
        must(cJSON_AddStringToObject(root, "model_version", version));
    if (in->id)
        must(cJSON_AddStringToObject(root, "id", in->id));
    outs = must(cJSON_AddArrayToObject(root, "outputs"));
    for (size_t k = 0; k < in->noutputs; k++) {
        cJSON *t, *data;
        if (in->outputs[k] == IG_KSERVE_OUT_LABEL) {
            t = tensor("label", "INT64", in->rows, 0);
            data = must(cJSON_AddArrayToObject(t, "data"));
            for (size_t i = 0; i < in->rows; i++)
                cJSON_AddItemToArray(data, must(cJSON_CreateNumber((double)pred[i].label)));
        } else {
            t = tensor("probabilities", "FP32", in->rows, IG_IRIS_CLASSES);
            data = must(cJSON_AddArrayToObject(t, "data"));
            for (size_t i = 0; i < in->rows; i++) {
                for (int c = 0; c < IG_IRIS_CLASSES; c++) {
                    char num[32];
                    snprintf(num, sizeof(num), "%.9g", (double)pred[i].probs[c]);
                    cJSON_AddItemToArray(data, must(cJSON_CreateRaw(num)));
                }
            }
        }
        cJSON_AddItemToArray(outs, t);
    }
    return print(root, len);
}

static bool strip_prefix(ig_slice_t *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s->len < n || memcmp(s->base, prefix, n) != 0)
        return false;
    *s = ig_slice(s->base + n, s->len - n);
    return true;
}

static ig_kserve_path_kind_t match_v2_model(ig_slice_t rest, ig_kserve_path_t *out)
{
    ig_slice_t seg[4];
    size_t n = 0;

    /* Up to four non-empty segments: {m}[/versions/{v}][/ready|/infer]. A
     * trailing slash gives an empty segment and so no match. */
    for (;;) {
        const char *slash = memchr(rest.base, '/', rest.len);
        size_t len = slash ? (size_t)(slash - rest.base) : rest.len;
        if (n == 4 || len == 0)
            return IG_KSERVE_PATH_NONE;
        seg[n++] = ig_slice(rest.base, len);
        if (!slash)
            break;
        rest = ig_slice(slash + 1, rest.len - len - 1);
    }
    out->model = seg[0];
    if (n >= 3 && ig_slice_eq(seg[1], "versions")) {
        out->version = seg[2];
        if (n == 3)
            return out->kind = IG_KSERVE_PATH_V2_MODEL;
        if (ig_slice_eq(seg[3], "ready"))
            return out->kind = IG_KSERVE_PATH_V2_MODEL_READY;
        if (ig_slice_eq(seg[3], "infer"))
            return out->kind = IG_KSERVE_PATH_V2_INFER;
        return IG_KSERVE_PATH_NONE;
    }
    if (n == 1)
        return out->kind = IG_KSERVE_PATH_V2_MODEL;
    if (n == 2 && ig_slice_eq(seg[1], "ready"))
        return out->kind = IG_KSERVE_PATH_V2_MODEL_READY;
    if (n == 2 && ig_slice_eq(seg[1], "infer"))
        return out->kind = IG_KSERVE_PATH_V2_INFER;
    return IG_KSERVE_PATH_NONE;
}

ig_kserve_path_kind_t ig_kserve_match(ig_slice_t path, ig_kserve_path_t *out)
{
    ig_slice_t rest = path;

    memset(out, 0, sizeof(*out));
    out->model = ig_slice("", 0);
    if (ig_slice_eq(path, "/v2") || ig_slice_eq(path, "/v2/"))
        return out->kind = IG_KSERVE_PATH_V2_SERVER;
    if (ig_slice_eq(path, "/v2/health/live"))
        return out->kind = IG_KSERVE_PATH_V2_LIVE;
    if (ig_slice_eq(path, "/v2/health/ready"))
        return out->kind = IG_KSERVE_PATH_V2_READY;
    if (strip_prefix(&rest, "/v2/models/")) {
        ig_kserve_path_kind_t k = match_v2_model(rest, out);
        if (k == IG_KSERVE_PATH_NONE)
            memset(out, 0, sizeof(*out));
        return k;
    }
    if (strip_prefix(&rest, "/v1/models/")) {
        const char *colon = memchr(rest.base, ':', rest.len);
        if (rest.len == 0 || memchr(rest.base, '/', rest.len))
            return IG_KSERVE_PATH_NONE;
        if (!colon) {
            out->model = rest;
            return out->kind = IG_KSERVE_PATH_V1_MODEL;
        }
        if (colon == rest.base)
            return IG_KSERVE_PATH_NONE;
        if (!ig_slice_eq(ig_slice(colon + 1, rest.len - (size_t)(colon + 1 - rest.base)),
                         "predict"))
            return IG_KSERVE_PATH_NONE;
        out->model = ig_slice(rest.base, (size_t)(colon - rest.base));
        return out->kind = IG_KSERVE_PATH_V1_PREDICT;
    }
    return IG_KSERVE_PATH_NONE;
}
