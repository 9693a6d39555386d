/*
 * fuzz_model_codec.c: libFuzzer target for infergate-model's wire protocols
 * (bench/model/kserve.c): the KServe V1 and Open Inference Protocol V2
 * request parsers, the renderers fed by what they parsed, and the request
 * path classifier.
 *
 * An input is a request body; both parsers read it. Invariants, from
 * kserve.h's contract:
 *  - a rejected body gives IG_EPARSE or IG_EINVAL, a message, and an input
 *    struct that owns nothing;
 *  - an accepted one has rows >= 1, finite features (the model needs
 *    them), one or two outputs, and renders to valid JSON whose arrays
 *    have one entry per row (V1 "predictions"; V2 "label", and
 *    "probabilities" with three per row) and which echoes the V2 "id";
 *  - the input, read as a request path, classifies into a kind whose model
 *    and version slices lie inside the path and are never empty.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/base/error.h"
#include "iris.h"
#include "kserve.h"

typedef int (*parse_fn)(const char *, size_t, ig_kserve_input_t *, char *, size_t);

static size_t array_len(const cJSON *obj, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, name);
    FUZZ_CHECK(cJSON_IsArray(a), "rendered answer lacks the array '%s'", name);
    return (size_t)cJSON_GetArraySize(a);
}

static void check_v2_render(const ig_kserve_input_t *in, const ig_iris_pred_t *pred)
{
    size_t len = 0;
    char *out = ig_kserve_v2_render(in, pred, "iris", (in->rows & 1) ? "1" : NULL, &len);
    FUZZ_CHECK(out != NULL && strlen(out) == len, "V2 render length %zu", len);
    cJSON *root = cJSON_ParseWithLength(out, len);
    FUZZ_CHECK(root != NULL, "V2 render is not JSON: %s", out);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (in->id) {
        FUZZ_CHECK(cJSON_IsString(id) && strcmp(id->valuestring, in->id) == 0,
                   "the V2 answer does not echo the request id");
    } else {
        FUZZ_CHECK(id == NULL, "the V2 answer has an id the request did not");
    }
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    FUZZ_CHECK(cJSON_IsArray(outputs) && (size_t)cJSON_GetArraySize(outputs) == in->noutputs,
               "the V2 answer has %d outputs, %zu were asked for",
               cJSON_IsArray(outputs) ? cJSON_GetArraySize(outputs) : -1, in->noutputs);
    const cJSON *o;
    size_t k = 0;
    cJSON_ArrayForEach(o, outputs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        FUZZ_CHECK(cJSON_IsString(name), "output %zu has no name", k);
        size_t per_row = in->outputs[k] == IG_KSERVE_OUT_PROBS ? IG_IRIS_CLASSES : 1;
        size_t n = array_len(o, "data");
        FUZZ_CHECK(n == in->rows * per_row, "output '%s' has %zu values for %zu rows",
                   name->valuestring, n, in->rows);
        k++;
    }
    cJSON_Delete(root);
    cJSON_free(out);
}

static void run_parser(const char *which, parse_fn parse, const uint8_t *data, size_t size)
{
    ig_kserve_input_t in;
    char err[512] = "";
    memset(&in, 0x5a, sizeof in); /* the parser must set every field it promises */
    int rc = parse((const char *)data, size, &in, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EPARSE || rc == IG_EINVAL, "%s: returned %d (%s)", which, rc,
                   ig_err_name(rc));
        FUZZ_CHECK(err[0] != '\0', "%s: an error without a message", which);
        FUZZ_CHECK(in.x == NULL && in.id == NULL && in.rows == 0,
                   "%s: a failed parse left something owned", which);
        ig_kserve_input_dispose(&in);
        return;
    }
    FUZZ_CHECK(in.rows >= 1 && in.x != NULL, "%s: accepted with %zu rows", which, in.rows);
    FUZZ_CHECK(in.rows <= size, "%s: %zu rows from %zu bytes", which, in.rows, size);
    FUZZ_CHECK(in.noutputs >= 1 && in.noutputs <= 2, "%s: %zu outputs", which, in.noutputs);
    for (size_t i = 0; i < in.noutputs; i++)
        FUZZ_CHECK(in.outputs[i] == IG_KSERVE_OUT_LABEL || in.outputs[i] == IG_KSERVE_OUT_PROBS,
                   "%s: output %zu is %d", which, i, (int)in.outputs[i]);
    for (size_t i = 0; i < in.rows * IG_IRIS_FEATURES; i++)
        FUZZ_CHECK(isfinite(in.x[i]), "%s: feature %zu is not finite", which, i);

    ig_iris_pred_t *pred = calloc(in.rows, sizeof *pred);
    FUZZ_CHECK(pred != NULL, "out of memory");
    ig_iris_predict_rows(in.x, in.rows, pred);
    for (size_t i = 0; i < in.rows; i++)
        FUZZ_CHECK(pred[i].label >= 0 && pred[i].label < IG_IRIS_CLASSES,
                   "%s: row %zu predicted label %lld", which, i, (long long)pred[i].label);

    size_t len = 0;
    char *v1 = ig_kserve_v1_render(pred, in.rows, &len);
    cJSON *root = cJSON_ParseWithLength(v1, len);
    FUZZ_CHECK(root != NULL, "%s: V1 render is not JSON: %s", which, v1);
    FUZZ_CHECK(array_len(root, "predictions") == in.rows, "%s: V1 answer row count", which);
    cJSON_Delete(root);
    cJSON_free(v1);

    check_v2_render(&in, pred);
    free(pred);
    ig_kserve_input_dispose(&in);
    FUZZ_CHECK(in.x == NULL && in.id == NULL, "dispose left pointers behind");
}

static void check_path(const uint8_t *data, size_t size)
{
    ig_slice_t path = ig_slice((const char *)data, size);
    ig_kserve_path_t p;
    ig_kserve_path_kind_t kind = ig_kserve_match(path, &p);
    FUZZ_CHECK(kind == p.kind, "the returned kind differs from out->kind");
    const char *lo = path.base, *hi = path.base + path.len;
    bool has_model = kind == IG_KSERVE_PATH_V1_PREDICT || kind == IG_KSERVE_PATH_V1_MODEL ||
                     kind == IG_KSERVE_PATH_V2_MODEL || kind == IG_KSERVE_PATH_V2_MODEL_READY ||
                     kind == IG_KSERVE_PATH_V2_INFER;
    if (has_model) {
        FUZZ_CHECK(p.model.len > 0 && p.model.base >= lo && p.model.base + p.model.len <= hi,
                   "model slice outside the path or empty");
        FUZZ_CHECK(memchr(p.model.base, '/', p.model.len) == NULL, "model name holds a '/'");
    }
    if (p.version.base) {
        FUZZ_CHECK(has_model && kind != IG_KSERVE_PATH_V1_PREDICT &&
                       kind != IG_KSERVE_PATH_V1_MODEL,
                   "a version on a path kind %d that has none", (int)kind);
        FUZZ_CHECK(p.version.len > 0 && p.version.base >= lo &&
                       p.version.base + p.version.len <= hi,
                   "version slice outside the path or empty");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_parser("v1", ig_kserve_v1_parse, data, size);
    run_parser("v2", ig_kserve_v2_parse, data, size);
    check_path(data, size);
    return 0;
}
