/*
 * codec.c: what the batching codecs (codec_v1.c, codec_v2*.c) share.
 *
 * Both codecs are span codecs: they scan a body once with the validating
 * scanner of json.h and build merged calls and replies by copying byte
 * spans of what the clients and the model wrote, so no number or string
 * changes on the way (docs/batching.md). This file holds their plumbing:
 * part disposal, the batch key hash, and error messages.
 */
#include "infergate/core/codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/base/json.h"

void ig_batch_part_dispose(ig_batch_part_t *part)
{
    ig_buf_dispose(&part->key);
    ig_buf_dispose(&part->reply);
    if (part->doc && part->doc_free)
        part->doc_free(part->doc);
    memset(part, 0, sizeof(*part));
}

int ig_codec_header_len(ig_slice_t value, int64_t *out)
{
    const char *s = value.base, *end = value.base + value.len;
    int64_t v = 0;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (s == end)
        return IG_EINVAL;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > ((int64_t)1 << 62) / 10)
            return IG_EINVAL;
        v = v * 10 + (*s - '0');
    }
    if (v > ((int64_t)1 << 62))
        return IG_EINVAL;
    *out = v;
    return 0;
}

int ig_codec_split_fail(ig_batch_part_t *const *parts, size_t ndrop, size_t i, int rc, char *err,
                        size_t errlen)
{
    for (size_t j = 0; j < ndrop; j++)
        ig_buf_dispose(&parts[j]->reply);
    return ig_error_fmt(err, errlen, IG_EUPSTREAM,
                        "model answer: cannot build the reply for request %zu of the batch (%s)", i,
                        ig_strerror(rc));
}

int ig_codec_json_fail(const ig_json_t *j, const char *what, int code, char *err, size_t errlen)
{
    const char *why = j->err ? j->err : "invalid JSON";
    if (strcmp(why, "not UTF-8") == 0)
        return ig_error_fmt(err, errlen, code, "%s: not UTF-8 at byte %zu", what, j->err_at);
    return ig_error_fmt(err, errlen, code, "%s: invalid JSON at byte %zu: %s", what, j->err_at,
                        why);
}

int ig_codec_key_begin(ig_buf_t *key, ig_slice_t model)
{
    int rc = ig_buf_append_json_str(key, model.base ? model.base : "", model.base ? model.len : 0);
    return rc ? rc : ig_buf_append(key, " ", 1);
}
