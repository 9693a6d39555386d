/*
 * codecref_v1.c: the pre-span cJSON codec, gateway/core/codec/codec_v1.c as it was at commit
 * 0a9a26d, kept only as the baseline of `infergate-bench codec` (the "old
 * cJSON path" column of bench/bench/codec.c). It is never linked into the
 * gateway. Every external name is renamed (ig_codec_* -> ig_refcodec_*,
 * ig_batch_part_t -> ig_refcodec_part_t) so that it links beside the
 * codec it is measured against; the code is otherwise unchanged. Do not
 * fix or improve it: it must stay what the gateway ran before.
 *
 * The original opening comment: batching for KServe V1 ({"instances": [...]} -> {"predictions":
 * [...]}).
 *
 * A V1 request is one JSON object whose "instances" array holds the rows;
 * every other top-level member (a "signature_name", model options...)
 * applies to all rows, so it is part of the batch key: requests whose other
 * members differ never ride together. The merged call is the first part's
 * object with the instances of every part concatenated in order; the answer's
 * "predictions" array must have one entry per row and is cut back by each
 * part's row count, any other top-level member of the answer being copied
 * to every reply.
 *
 * The columnar form ({"inputs": ...}) is valid V1 but has no row axis this
 * codec can rely on, so such a request is marked `alone` and goes through
 * as it came. The codec never looks inside an instance: rows are opaque
 * JSON values, written back exactly (see codecref.c on numbers).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#include "codecref.h"
#include "infergate/base/error.h"

static const char *const instances_only[] = {"instances", NULL};

static int v1_parse(ig_refcodec_part_t *part, ig_slice_t model, ig_slice_t body, bool binary_hint,
                    char *err, size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *instances, *inputs;
    int n, rc;

    (void)binary_hint; /* V1 has no binary extension */
    rc = ig_refcodec_parse_object(body, "body", true, &root, err, errlen);
    if (rc)
        return rc;
    instances = cJSON_GetObjectItemCaseSensitive(root, "instances");
    inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (instances && inputs) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL,
                              "body: has both \"instances\" and \"inputs\"; send one of them");
        goto fail;
    }
    if (inputs) {
        /* Columnar form: valid, not batchable. Count rows when it is a list. */
        n = cJSON_IsArray(inputs) ? cJSON_GetArraySize(inputs) : 1;
        part->rows = n > 0 ? (uint32_t)n : 1;
        part->alone = true;
        part->doc = root;
        return 0;
    }
    if (!instances) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL,
                              "instances: missing (expected {\"instances\": [row, ...]})");
        goto fail;
    }
    if (!cJSON_IsArray(instances)) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL, "instances: expected an array of rows");
        goto fail;
    }
    n = cJSON_GetArraySize(instances);
    if (n <= 0) {
        rc =
            ig_refcodec_fail(err, errlen, IG_EINVAL, "instances: empty, expected at least one row");
        goto fail;
    }
    part->rows = (uint32_t)n;
    ig_buf_init(&part->key, 0);
    if ((rc = ig_refcodec_key_begin(&part->key, model)) ||
        (rc = ig_refcodec_write_json(&part->key, root, true, instances_only))) {
        ig_refcodec_fail(err, errlen, rc, "body: cannot build the batch key");
        goto fail;
    }
    part->key_hash = ig_refcodec_hash(part->key.base, part->key.len);
    part->doc = root;
    return 0;
fail:
    cJSON_Delete(root);
    ig_refcodec_part_dispose(part);
    return rc;
}

/* Writes `"name":value` for every member of obj but the omitted ones, each
 * preceded by a comma. */
static int write_other_members(ig_buf_t *out, const cJSON *obj, const char *omit1,
                               const char *omit2)
{
    int rc = 0;
    for (const cJSON *it = obj->child; it && !rc; it = it->next) {
        if ((omit1 && strcmp(it->string, omit1) == 0) || (omit2 && strcmp(it->string, omit2) == 0))
            continue;
        if (!(rc = ig_buf_append(out, ",", 1)) &&
            !(rc = ig_buf_append_json_str(out, it->string, strlen(it->string))) &&
            !(rc = ig_buf_append(out, ":", 1)))
            rc = ig_refcodec_write_json(out, it, false, NULL);
    }
    return rc;
}

static int v1_merge(ig_refcodec_part_t *const *parts, size_t n, ig_buf_t *out)
{
    bool first = true;
    int rc;

    if (n == 0 || !parts[0]->doc)
        return IG_EINVAL;
    if ((rc = ig_buf_append_str(out, "{\"instances\":[")))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const cJSON *inst =
            parts[i]->doc ? cJSON_GetObjectItemCaseSensitive(parts[i]->doc, "instances") : NULL;
        if (!cJSON_IsArray(inst))
            return IG_EINVAL;
        for (const cJSON *row = inst->child; row; row = row->next) {
            if (!first && (rc = ig_buf_append(out, ",", 1)))
                return rc;
            first = false;
            if ((rc = ig_refcodec_write_json(out, row, false, NULL)))
                return rc;
        }
    }
    if ((rc = ig_buf_append(out, "]", 1)) ||
        (rc = write_other_members(out, parts[0]->doc, "instances", NULL)))
        return rc;
    return ig_buf_append(out, "}", 1);
}

static int v1_split(ig_slice_t body, ig_refcodec_part_t *const *parts, size_t n, char *err,
                    size_t errlen)
{
    cJSON *root = NULL;
    const cJSON *preds, *row;
    uint64_t total = 0;
    int rc, count;

    for (size_t i = 0; i < n; i++)
        total += parts[i]->rows;
    if (ig_refcodec_parse_object(body, "model answer", false, &root, err, errlen))
        return IG_EUPSTREAM;
    preds = cJSON_GetObjectItemCaseSensitive(root, "predictions");
    if (!cJSON_IsArray(preds)) {
        rc = ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                              "model answer: expected a \"predictions\" array for a batch of %llu "
                              "rows",
                              (unsigned long long)total);
        goto out;
    }
    count = cJSON_GetArraySize(preds);
    if ((uint64_t)count != total) {
        rc = ig_refcodec_fail(err, errlen, IG_EUPSTREAM,
                              "the model returned %d predictions for a batch of %llu rows", count,
                              (unsigned long long)total);
        goto out;
    }
    /* One walk over the predictions, handing each part its next rows. */
    row = preds->child;
    for (size_t i = 0; i < n; i++) {
        ig_buf_t *r = &parts[i]->reply;
        ig_buf_dispose(r);
        ig_buf_init(r, 0);
        rc = ig_buf_append_str(r, "{\"predictions\":[");
        for (uint32_t k = 0; k < parts[i]->rows && !rc; k++, row = row->next) {
            if (k > 0)
                rc = ig_buf_append(r, ",", 1);
            if (!rc)
                rc = ig_refcodec_write_json(r, row, false, NULL);
        }
        if (!rc)
            rc = ig_buf_append(r, "]", 1);
        if (!rc)
            rc = write_other_members(r, root, "predictions", NULL);
        if (!rc)
            rc = ig_buf_append(r, "}", 1);
        if (rc) {
            rc = ig_refcodec_split_fail(parts, n, i, rc, err, errlen);
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

const ig_refcodec_t ig_refcodec_v1 = {
    .name = "kserve-v1",
    .parse = v1_parse,
    .merge = v1_merge,
    .split = v1_split,
};
