/*
 * codecref.c: the pre-span cJSON codec, gateway/core/codec/codec.c as it was at commit
 * 0a9a26d, kept only as the baseline of `infergate-bench codec` (the "old
 * cJSON path" column of bench/bench/codec.c). It is never linked into the
 * gateway. Every external name is renamed (ig_codec_* -> ig_refcodec_*,
 * ig_batch_part_t -> ig_refcodec_part_t) so that it links beside the
 * codec it is measured against; the code is otherwise unchanged. Do not
 * fix or improve it: it must stay what the gateway ran before.
 *
 * The original opening comment: what the two batching codecs (codecref_v1.c, codecref_v2.c) share.
 *
 * Both codecs read bodies with cJSON and write bodies themselves, straight
 * into an ig_buf_t: that keeps object members in the order the client or the
 * model wrote them, lets batch keys be printed canonically (members sorted by
 * name, so {"a":1,"b":2} and {"b":2,"a":1} give the same key), and keeps
 * numbers exact. cJSON parses every number into a double; printing it back
 * with %.15g, or %.17g when that does not round-trip, yields the same double
 * on the model's side, and integral values are printed as integers so an
 * INT64 tensor never turns into "1e+17". What cJSON's parse itself loses
 * (integers beyond 2^53) stays lost: see docs/batching.md.
 *
 * This file knows nothing about instances or tensors; it is JSON plumbing
 * and the part disposal that codecref.h promises.
 */
#include "codecref.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/base/hash.h"

void ig_refcodec_part_dispose(ig_refcodec_part_t *part)
{
    ig_buf_dispose(&part->key);
    ig_buf_dispose(&part->reply);
    cJSON_Delete(part->doc);
    memset(part, 0, sizeof(*part));
}

int ig_refcodec_split_fail(ig_refcodec_part_t *const *parts, size_t ndrop, size_t i, int rc,
                           char *err, size_t errlen)
{
    for (size_t j = 0; j < ndrop; j++)
        ig_buf_dispose(&parts[j]->reply);
    return ig_refcodec_fail(
        err, errlen, IG_EUPSTREAM,
        "model answer: cannot build the reply for request %zu of the batch (%s)", i,
        ig_strerror(rc));
}

uint64_t ig_refcodec_hash(const void *data, size_t len)
{
    return ig_hash_bytes(data, len); /* the same FNV-1a, now shared */
}

int ig_refcodec_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ig_error_vfmt(err, errlen, code, fmt, ap);
    va_end(ap);
    return code;
}

/* An object's members, sorted by name with document order breaking ties.
 * Small objects use the caller's stack array; larger ones the heap. */
typedef struct {
    const cJSON *item;
    size_t index;
} member_t;

typedef struct {
    member_t *v;
    size_t n;
    member_t stack[16];
} members_t;

static int cmp_member(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int c = strcmp(x->item->string ? x->item->string : "", y->item->string ? y->item->string : "");
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void members_sorted(const cJSON *obj, members_t *m)
{
    const cJSON *it;
    size_t n = 0;
    for (it = obj->child; it; it = it->next)
        n++;
    m->v =
        n <= sizeof(m->stack) / sizeof(m->stack[0]) ? m->stack : ig_xmalloc(n * sizeof(member_t));
    m->n = 0;
    for (it = obj->child; it; it = it->next) {
        m->v[m->n].item = it;
        m->v[m->n].index = m->n;
        m->n++;
    }
    if (m->n > 1)
        qsort(m->v, m->n, sizeof(member_t), cmp_member);
}

static void members_dispose(members_t *m)
{
    if (m->v != m->stack)
        free(m->v);
    m->v = NULL;
}

static bool omitted(const char *name, const char *const *omit)
{
    if (!omit || !name)
        return false;
    for (; *omit; omit++)
        if (strcmp(name, *omit) == 0)
            return true;
    return false;
}

const char *ig_refcodec_duplicate_member(const cJSON *obj)
{
    const char *dup = NULL;
    members_t m;

    if (!cJSON_IsObject(obj))
        return NULL;
    members_sorted(obj, &m);
    for (size_t i = 1; i < m.n && !dup; i++)
        if (strcmp(m.v[i - 1].item->string, m.v[i].item->string) == 0)
            dup = m.v[i].item->string;
    members_dispose(&m);
    return dup;
}

int ig_refcodec_parse_object(ig_slice_t body, const char *what, bool utf8, cJSON **out, char *err,
                             size_t errlen)
{
    const char *end = NULL;
    cJSON *root;
    const char *dup;
    int rc = 0;

    *out = NULL;
    if (body.len == 0)
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: empty, expected a JSON object", what);
    size_t bad;
    if (utf8 && !ig_utf8_valid(body.base, body.len, &bad))
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: not UTF-8 at byte %zu", what, bad);
    root = cJSON_ParseWithLengthOpts(body.base, body.len, &end, false);
    if (!root) {
        size_t at =
            end && end >= body.base && end <= body.base + body.len ? (size_t)(end - body.base) : 0;
        return ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: invalid JSON at byte %zu", what, at);
    }
    if (end) {
        while (end < body.base + body.len &&
               (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end < body.base + body.len) {
            rc = ig_refcodec_fail(err, errlen, IG_EINVAL,
                                  "%s: unexpected bytes after the JSON value at byte %zu", what,
                                  (size_t)(end - body.base));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: expected a JSON object", what);
        goto fail;
    }
    /* A member given twice would be read one way for the key and another
     * way by the model; refuse it rather than guess. */
    if ((dup = ig_refcodec_duplicate_member(root))) {
        rc = ig_refcodec_fail(err, errlen, IG_EINVAL, "%s: member \"%.64s\" appears twice", what,
                              dup);
        goto fail;
    }
    *out = root;
    return 0;
fail:
    cJSON_Delete(root);
    return rc;
}

int ig_refcodec_write_number(ig_buf_t *out, double d)
{
    char tmp[40];
    int n;

    if (isnan(d)) {
        n = snprintf(tmp, sizeof(tmp), "null"); /* cJSON never parses one; be safe */
    } else if (isinf(d)) {
        n = snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "1e999" : "-1e999");
    } else if (d == 0) {
        n = snprintf(tmp, sizeof(tmp), "%s", signbit(d) ? "-0" : "0");
    } else if (d == trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        n = snprintf(tmp, sizeof(tmp), "%lld", (long long)d);
    } else if (d == trunc(d) && d > 0 && d < 18446744073709551616.0) {
        n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)d); /* UINT64 range */
    } else {
        n = snprintf(tmp, sizeof(tmp), "%.15g", d);
        if (strtod(tmp, NULL) != d)
            n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    }
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return IG_EINVAL; /* cannot happen with these formats */
    return ig_buf_append(out, tmp, (size_t)n);
}

static int write_str(ig_buf_t *out, const char *s)
{
    return ig_buf_append_json_str(out, s ? s : "", s ? strlen(s) : 0);
}

static int write_value(ig_buf_t *out, const cJSON *v, bool sorted, const char *const *omit);

/* Writes member `it` of the object being written as "name":value, after a
 * comma unless it is the *first; a member named in `omit` is left out. */
static int write_member(ig_buf_t *out, const cJSON *it, bool sorted, const char *const *omit,
                        bool *first)
{
    if (omitted(it->string, omit))
        return 0;
    int rc = 0;
    if (!*first)
        rc = ig_buf_append(out, ",", 1);
    *first = false;
    if (!rc)
        rc = write_str(out, it->string);
    if (!rc)
        rc = ig_buf_append(out, ":", 1);
    if (!rc)
        rc = write_value(out, it, sorted, NULL);
    return rc;
}

static int write_value(ig_buf_t *out, const cJSON *v, bool sorted, const char *const *omit)
{
    int rc = 0;

    if (cJSON_IsNumber(v))
        return ig_refcodec_write_number(out, v->valuedouble);
    if (cJSON_IsString(v))
        return write_str(out, v->valuestring);
    if (cJSON_IsTrue(v))
        return ig_buf_append(out, "true", 4);
    if (cJSON_IsFalse(v))
        return ig_buf_append(out, "false", 5);
    if (cJSON_IsRaw(v))
        return ig_buf_append_str(out, v->valuestring ? v->valuestring : "null");
    if (cJSON_IsArray(v)) {
        if ((rc = ig_buf_append(out, "[", 1)))
            return rc;
        for (const cJSON *it = v->child; it; it = it->next) {
            if (it != v->child && (rc = ig_buf_append(out, ",", 1)))
                return rc;
            if ((rc = write_value(out, it, sorted, NULL)))
                return rc;
        }
        return ig_buf_append(out, "]", 1);
    }
    if (cJSON_IsObject(v)) {
        bool first = true;
        if ((rc = ig_buf_append(out, "{", 1)))
            return rc;
        if (sorted) {
            members_t m;
            members_sorted(v, &m);
            for (size_t i = 0; i < m.n && !rc; i++)
                rc = write_member(out, m.v[i].item, true, omit, &first);
            members_dispose(&m);
        } else {
            for (const cJSON *it = v->child; it && !rc; it = it->next)
                rc = write_member(out, it, false, omit, &first);
        }
        if (rc)
            return rc;
        return ig_buf_append(out, "}", 1);
    }
    return ig_buf_append(out, "null", 4);
}

int ig_refcodec_write_json(ig_buf_t *out, const cJSON *v, bool sorted, const char *const *omit)
{
    return write_value(out, v, sorted, omit);
}

int ig_refcodec_key_begin(ig_buf_t *key, ig_slice_t model)
{
    int rc = ig_buf_append_json_str(key, model.base ? model.base : "", model.base ? model.len : 0);
    return rc ? rc : ig_buf_append(key, " ", 1);
}
