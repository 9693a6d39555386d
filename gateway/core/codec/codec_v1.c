/*
 * codec_v1.c: batching for KServe V1 ({"instances": [...]} -> {"predictions": [...]}).
 *
 * A V1 request is one JSON object whose "instances" array holds the rows;
 * every other top-level member (a "signature_name", model options...)
 * applies to all rows, so it is part of the batch key: requests whose other
 * members differ never ride together. The merged call is the instances of
 * every part, concatenated in order as their bytes were written, followed by
 * the first part's other members; the answer's "predictions" array must
 * have one entry per row and is cut back by each part's row count, every
 * other member of the answer being copied to every reply.
 *
 * The codec never looks inside a row: rows are opaque JSON values, copied
 * byte for byte, so a number such as 1.10000000000000000001 or
 * 12345678901234567890123 reaches the model and comes back exactly as it
 * was written.
 *
 * The columnar form ({"inputs": ...}) is valid V1 but has no row axis this
 * codec can rely on, so such a request is marked `alone` and goes through
 * as it came.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"
#include "infergate/core/codec.h"
#include "infergate/base/error.h"
#include "infergate/base/hash.h"
#include "infergate/base/json.h"

typedef struct {
    ig_slice_t inner; /* the instances array's contents, trimmed */
    size_t nothers;
    ig_json_member_t *others; /* the other top-level members, in document order */
    ig_json_member_t stack[6];
} v1_doc_t;

static void v1_doc_free(void *doc)
{
    v1_doc_t *d = doc;
    if (d->others != d->stack)
        free(d->others);
    free(d);
}

static void add_member(v1_doc_t *d, size_t *cap, ig_json_member_t m)
{
    if (d->nothers == *cap) {
        *cap *= 2;
        if (d->others == d->stack) {
            d->others = ig_xmalloc(*cap * sizeof(*d->others));
            memcpy(d->others, d->stack, sizeof(d->stack));
        } else {
            d->others = ig_xrealloc(d->others, *cap * sizeof(*d->others));
        }
    }
    d->others[d->nothers++] = m;
}

/* Reads the array at j's position, counting its elements; with `tops`
 * (nrows entries), notes where each of the first nrows begins and ends.
 * Rows are opaque: any JSON value. */
static int count_array(ig_json_t *j, uint64_t *n, ig_slice_t *inner, ig_slice_t *tops, size_t nrows)
{
    ig_twalk_t w = {.where = "", .code = IG_EINVAL, .objects = true, .tops = tops, .nrows = nrows};
    if (ig_tensor_walk(j, &w))
        return IG_EINVAL;
    *n = w.top;
    *inner = w.inner;
    return 0;
}

static int v1_parse(ig_batch_part_t *part, ig_slice_t model, ig_slice_t body, int64_t header_len,
                    char *err, size_t errlen)
{
    ig_json_t j;
    ig_slice_t name;
    bool esc, have_inst = false, have_inputs = false;
    uint64_t rows = 0, inputs_rows = 1;
    size_t i = 0, cap = sizeof(((v1_doc_t *)0)->stack) / sizeof(ig_json_member_t);
    int r, rc;

    (void)header_len; /* V1 has no binary extension */
    part->reply_header_len = -1;
    if (body.len == 0)
        return ig_error_fmt(err, errlen, IG_EINVAL, "body: empty, expected a JSON object");
    v1_doc_t *d = ig_xcalloc(1, sizeof(*d));
    d->others = d->stack;
    ig_json_init(&j, body.base, body.len);
    if (ig_json_peek(&j) != '{') {
        ig_json_kind_t k;
        if (ig_json_value(&j, &k, NULL))
            goto bad_json;
        rc = ig_error_fmt(err, errlen, IG_EINVAL, "body: expected a JSON object");
        goto fail;
    }
    ig_json_enter(&j, '{');
    while ((r = ig_json_member(&j, &i, &name, &esc)) == 1) {
        ig_json_member_t m = {ig_slice(name.base - 1, name.len + 2), {NULL, 0}, i};
        bool inst = ig_json_str_eq(name, esc, "instances");
        bool inputs = !inst && ig_json_str_eq(name, esc, "inputs");
        if ((inst && have_inst) || (inputs && have_inputs)) {
            rc = ig_error_fmt(err, errlen, IG_EINVAL, "body: member \"%s\" appears twice",
                              inst ? "instances" : "inputs");
            goto fail;
        }
        if (inst) {
            have_inst = true;
            if (ig_json_peek(&j) != '[') {
                rc = ig_error_fmt(err, errlen, IG_EINVAL, "instances: expected an array of rows");
                goto fail;
            }
            if (count_array(&j, &rows, &d->inner, NULL, 0))
                goto bad_json;
            continue;
        }
        size_t at = j.pos;
        if (ig_json_value(&j, NULL, &m.value))
            goto bad_json;
        if (inputs) {
            have_inputs = true;
            if (j.s[at] == '[') {
                ig_json_t sub;
                ig_slice_t inner;
                ig_json_init(&sub, m.value.base, m.value.len);
                count_array(&sub, &inputs_rows, &inner, NULL, 0);
            }
        }
        add_member(d, &cap, m);
    }
    if (r < 0)
        goto bad_json;
    if (ig_json_peek(&j) >= 0) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL,
                          "body: unexpected bytes after the JSON value at byte %zu", j.pos);
        goto fail;
    }
    if (have_inst && have_inputs) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL,
                          "body: has both \"instances\" and \"inputs\"; send one of them");
        goto fail;
    }
    if (have_inputs) {
        /* Columnar form: valid, not batchable. Count rows when it is a list. */
        part->rows = inputs_rows > 0 && inputs_rows <= UINT32_MAX ? (uint32_t)inputs_rows : 1;
        part->alone = true;
        v1_doc_free(d);
        return 0;
    }
    if (!have_inst) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL,
                          "instances: missing (expected {\"instances\": [row, ...]})");
        goto fail;
    }
    if (rows == 0 || rows > UINT32_MAX) {
        rc = ig_error_fmt(err, errlen, IG_EINVAL,
                          rows ? "instances: too many rows"
                               : "instances: empty, expected at least one row");
        goto fail;
    }
    part->rows = (uint32_t)rows;
    /* The key sorts its copy of the members: the merge needs document order. */
    ig_json_member_t kstack[8],
        *km = d->nothers <= 8 ? kstack : ig_xmalloc(d->nothers * sizeof(*km));
    memcpy(km, d->others, d->nothers * sizeof(*km));
    ig_buf_init(&part->key, 0);
    rc = ig_codec_key_begin(&part->key, model);
    if (!rc)
        rc = ig_json_canonical_members(&part->key, km, d->nothers);
    if (km != kstack)
        free(km);
    if (rc) {
        ig_error_fmt(err, errlen, rc, "body: cannot build the batch key");
        goto fail;
    }
    part->key_hash = ig_hash_bytes(part->key.base, part->key.len);
    part->body = body;
    part->doc = d;
    part->doc_free = v1_doc_free;
    return 0;
bad_json:
    rc = ig_codec_json_fail(&j, "body", IG_EINVAL, err, errlen);
fail:
    v1_doc_free(d);
    ig_batch_part_dispose(part);
    return rc;
}

/* Appends ,"name":value for each member. */
static int write_members(ig_buf_t *out, const ig_json_member_t *m, size_t n)
{
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        if (!(rc = ig_buf_append(out, ",", 1)) && !(rc = ig_buf_append_slice(out, m[k].name)) &&
            !(rc = ig_buf_append(out, ":", 1)))
            rc = ig_buf_append_slice(out, m[k].value);
    }
    return rc;
}

static int v1_merge(ig_batch_part_t *const *parts, size_t n, ig_buf_t *out, int64_t *header_len)
{
    size_t need = 32;
    int rc;

    *header_len = -1;
    if (n == 0 || !parts[0]->doc)
        return IG_EINVAL;
    for (size_t i = 0; i < n; i++)
        need += parts[i]->body.len + 1;
    if ((rc = ig_buf_reserve(out, need)) || (rc = ig_buf_append_str(out, "{\"instances\":[")))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const v1_doc_t *d = parts[i]->doc;
        if (!d)
            return IG_EINVAL;
        if ((i > 0 && (rc = ig_buf_append(out, ",", 1))) ||
            (rc = ig_buf_append_slice(out, d->inner)))
            return rc;
    }
    const v1_doc_t *d0 = parts[0]->doc;
    if ((rc = ig_buf_append(out, "]", 1)) || (rc = write_members(out, d0->others, d0->nothers)))
        return rc;
    return ig_buf_append(out, "}", 1);
}

static int v1_split(ig_slice_t body, int64_t header_len, ig_batch_part_t *const *parts, size_t n,
                    char *err, size_t errlen)
{
    ig_json_t j;
    ig_slice_t name;
    bool esc, have = false;
    uint64_t total = 0, count = 0;
    size_t i = 0, nm = 0, mcap = 8, pred_index = 0;
    ig_slice_t *tops = NULL;
    uint64_t *first = ig_xmalloc((n ? n : 1) * sizeof(*first));
    ig_json_member_t *m = ig_xmalloc(mcap * sizeof(*m));
    int r, rc;

    (void)header_len;
    for (size_t k = 0; k < n; k++) {
        ig_buf_dispose(&parts[k]->reply); /* on failure, none keeps a reply */
        first[k] = total;
        total += parts[k]->rows;
    }
    if (ig_json_trim(body).len == 0) {
        rc = ig_error_fmt(err, errlen, IG_EUPSTREAM, "model answer: empty");
        goto out;
    }
    ig_json_init(&j, body.base, body.len);
    if (ig_json_enter(&j, '{'))
        goto bad_json;
    while ((r = ig_json_member(&j, &i, &name, &esc)) == 1) {
        size_t vstart = j.pos;
        if (ig_json_str_eq(name, esc, "predictions")) {
            if (have) {
                rc = ig_error_fmt(err, errlen, IG_EUPSTREAM,
                                  "model answer: member \"predictions\" appears twice");
                goto out;
            }
            have = true;
            pred_index = nm;
            if (ig_json_peek(&j) != '[')
                goto no_predictions;
            /* One walk over the predictions, noting where each row begins
             * and ends. */
            ig_slice_t inner;
            tops = ig_xmalloc((total ? total : 1) * sizeof(*tops));
            if (count_array(&j, &count, &inner, tops, total))
                goto bad_json;
        } else if (ig_json_value(&j, NULL, NULL)) {
            goto bad_json;
        }
        if (nm == mcap) {
            mcap *= 2;
            m = ig_xrealloc(m, mcap * sizeof(*m));
        }
        m[nm++] = (ig_json_member_t){ig_slice(name.base - 1, name.len + 2),
                                     ig_slice(j.s + vstart, j.pos - vstart), i};
    }
    if (r < 0)
        goto bad_json;
    if (ig_json_peek(&j) >= 0) {
        rc = ig_error_fmt(err, errlen, IG_EUPSTREAM,
                          "model answer: unexpected bytes after the JSON value at byte %zu", j.pos);
        goto out;
    }
    if (!have) {
    no_predictions:
        rc = ig_error_fmt(err, errlen, IG_EUPSTREAM,
                          "model answer: expected a \"predictions\" array for a batch of %llu "
                          "rows",
                          (unsigned long long)total);
        goto out;
    }
    if (count != total) {
        rc = ig_error_fmt(err, errlen, IG_EUPSTREAM,
                          "the model returned %llu predictions for a batch of %llu rows",
                          (unsigned long long)count, (unsigned long long)total);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        ig_buf_t *out = &parts[k]->reply;
        ig_buf_dispose(out);
        ig_buf_init(out, 0);
        /* About its share of the answer: one allocation, no regrowth. */
        ig_buf_reserve(out, (size_t)((double)body.len * parts[k]->rows / (double)total) + 256);
        parts[k]->reply_header_len = -1;
        rc = ig_buf_append(out, "{", 1);
        for (size_t x = 0; x < nm && !rc; x++) {
            if (x > 0)
                rc = ig_buf_append(out, ",", 1);
            if (!rc)
                rc = ig_buf_append_slice(out, m[x].name);
            if (!rc)
                rc = ig_buf_append(out, ":", 1);
            if (rc)
                break;
            if (x == pred_index) {
                const ig_slice_t *a = &tops[first[k]], *b = &tops[first[k] + parts[k]->rows - 1];
                rc = ig_buf_append(out, "[", 1);
                if (!rc)
                    rc = ig_buf_append(out, a->base, (size_t)(b->base + b->len - a->base));
                if (!rc)
                    rc = ig_buf_append(out, "]", 1);
            } else {
                rc = ig_buf_append_slice(out, m[x].value);
            }
        }
        if (!rc)
            rc = ig_buf_append(out, "}", 1);
        if (rc) {
            rc = ig_codec_split_fail(parts, k + 1, k, rc, err, errlen);
            goto out;
        }
    }
    rc = 0;
    goto out;
bad_json:
    rc = ig_codec_json_fail(&j, "model answer", IG_EUPSTREAM, err, errlen);
out:
    free(tops);
    free(first);
    free(m);
    return rc;
}

const ig_codec_t ig_codec_v1 = {
    .name = "kserve-v1",
    .parse = v1_parse,
    .merge = v1_merge,
    .split = v1_split,
};
