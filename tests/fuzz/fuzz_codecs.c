/*
 * fuzz_codecs.c: libFuzzer target for the gateway's batching codecs
 * (gateway/core/codec/codec.c, codec_v1.c, codec_v2*.c, codec_tensor.c) through
 * codec.h. tests/fuzz/fuzz_codec_diff.c holds the same code against a
 * reference parser; this target checks the contracts with cJSON.
 *
 * Input layout: byte 0 picks the codec (bit 0: V1 or V2) and the binary
 * hint (bit 1). Without the hint, the rest is a request body, optionally
 * followed by a NUL byte and a model answer. With it (the binary tensor
 * data extension: a JSON header, then raw bytes, NULs included), two
 * bytes big-endian give the request's Inference-Header-Content-Length,
 * two more its length; the body follows, and whatever is left is the
 * answer, whose first two bytes give its header length. Without an answer, a fake model answers
 * the merged call by echoing it (V1: the instances as predictions; V2:
 * every input as an output, binary inputs as binary outputs with the
 * merged call's bytes), so the successful split path is reached too.
 *
 * Invariants, from codec.h's contract:
 *  - parse returns 0 or IG_EINVAL with a message; a rejected part owns
 *    nothing; an accepted one has rows >= 1 and, unless alone (only a V1
 *    columnar body is), a non-empty key whose hash is ig_codec_hash of it,
 *    the same on a second parse;
 *  - merging three copies of a part succeeds, gives a JSON object (V2
 *    binary: a JSON header of the returned length and the bytes) that
 *    parses again with three times the rows and the same key (merging does
 *    not change what the batch key describes), and fails only with
 *    IG_ETOOLARGE under a small cap;
 *  - split returns 0 or IG_EUPSTREAM with a message; on error no part
 *    keeps a reply; on success every reply's JSON (its header, when
 *    reply_header_len says it has binary data after it) is a UTF-8 JSON
 *    object; every V2 output in a reply has dim 0 equal to the part's rows
 *    (an output the split cannot cut so fails the batch with 502) and,
 *    when JSON, prod(shape) values; binary outputs' sizes add up to the
 *    bytes after the header; against the echo model each reply holds
 *    exactly its own part's rows and V2 replies carry the part's own id
 *    (the echo fails only when a binary output holds a NaN, an infinity or
 *    BYTES that are not UTF-8 and a part asked for JSON).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/core/codec.h"
#include "infergate/base/error.h"

#define NPARTS 3

static bool verbose; /* IG_FUZZ_VERBOSE=1: say how far an input got */

#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (verbose)                                                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

static void check_rejected(const ig_batch_part_t *p, int rc, const char *err)
{
    FUZZ_CHECK(rc == IG_EINVAL, "parse returned %d (%s)", rc, ig_err_name(rc));
    FUZZ_CHECK(err[0] != '\0', "a rejected body got no message");
    FUZZ_CHECK(p->doc == NULL && p->key.base == NULL && p->reply.base == NULL,
               "a rejected part still owns memory");
}

/* The two-byte big-endian number at the start of s, which it then skips
 * (0 when s is shorter). */
static size_t take_u16(const char **s, size_t *len)
{
    if (*len < 2)
        return 0;
    size_t v = (size_t)((unsigned char)(*s)[0] << 8 | (unsigned char)(*s)[1]);
    *s += 2;
    *len -= 2;
    return v;
}

static cJSON *parse_header(const char *s, size_t len, int64_t header_len)
{
    return cJSON_ParseWithLength(s, header_len >= 0 ? (size_t)header_len : len);
}

static const cJSON *binary_size(const cJSON *tensor)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tensor, "parameters"),
                                            "binary_data_size");
}

/* The echo model: what a model that returns its inputs would answer, with
 * *answer_hl its header length (binary inputs come back binary). */
static char *echo_answer(const ig_codec_t *codec, const ig_buf_t *merged, int64_t hl,
                         size_t *answer_len, int64_t *answer_hl)
{
    cJSON *req = parse_header(merged->base, merged->len, hl);
    FUZZ_CHECK(req != NULL, "the merged body is not JSON: %.200s", merged->base);
    cJSON *ans = cJSON_CreateObject();
    if (codec == &ig_codec_v1) {
        cJSON *inst = cJSON_DetachItemFromObjectCaseSensitive(req, "instances");
        cJSON_AddItemToObject(ans, "predictions", inst);
        cJSON_AddStringToObject(ans, "model_version", "1");
    } else {
        cJSON *outs = cJSON_AddArrayToObject(ans, "outputs");
        const cJSON *in;
        cJSON_AddStringToObject(ans, "model_name", "echo");
        cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(req, "inputs"))
        {
            cJSON *o = cJSON_CreateObject();
            const char *keep[] = {"name", "datatype", "shape", "data"};
            for (size_t k = 0; k < 4; k++) {
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(in, keep[k]);
                if (m)
                    cJSON_AddItemToObject(o, keep[k], cJSON_Duplicate(m, true));
            }
            const cJSON *bds = binary_size(in);
            if (bds)
                cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "parameters"),
                                        "binary_data_size", bds->valuedouble);
            cJSON_AddItemToArray(outs, o);
        }
    }
    char *s = cJSON_PrintUnformatted(ans);
    FUZZ_CHECK(s != NULL, "cannot print the echo answer");
    cJSON_Delete(ans);
    cJSON_Delete(req);
    size_t n = strlen(s), tail = hl >= 0 ? merged->len - (size_t)hl : 0;
    /* The merged call's bytes, input after input, are the outputs' bytes. */
    char *a = malloc(n + tail + 1);
    FUZZ_CHECK(a != NULL, "out of memory");
    memcpy(a, s, n);
    if (tail)
        memcpy(a + n, merged->base + hl, tail);
    a[n + tail] = '\0';
    cJSON_free(s);
    *answer_len = n + tail;
    *answer_hl = hl >= 0 ? (int64_t)n : -1;
    return a;
}

static size_t count_scalars(const cJSON *arr)
{
    size_t n = 0;
    for (const cJSON *v = arr->child; v; v = v->next)
        n += cJSON_IsArray(v) ? count_scalars(v) : 1;
    return n;
}

/* What every successful split must give: a UTF-8 JSON object (header);
 * V2 outputs cut to the part's rows, JSON data matching the shape, binary
 * sizes adding up to the bytes after the header. */
static cJSON *check_reply(const ig_codec_t *codec, const ig_batch_part_t *p, size_t i)
{
    size_t hlen = p->reply_header_len >= 0 ? (size_t)p->reply_header_len : p->reply.len;
    FUZZ_CHECK(p->reply.base != NULL, "split left part %zu without a reply", i);
    FUZZ_CHECK(p->reply_header_len < 0 || (uint64_t)p->reply_header_len <= p->reply.len,
               "reply %zu: header length %lld past its end", i, (long long)p->reply_header_len);
    FUZZ_CHECK(ig_utf8_valid(p->reply.base, hlen, NULL), "reply %zu is not UTF-8", i);
    cJSON *r = cJSON_ParseWithLength(p->reply.base, hlen);
    FUZZ_CHECK(cJSON_IsObject(r), "reply %zu is not a JSON object: %.200s", i, p->reply.base);
    if (codec == &ig_codec_v1) {
        FUZZ_CHECK(p->reply_header_len == -1, "a V1 reply has a binary header");
        return r;
    }
    const cJSON *o;
    double bin = 0;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(r, "outputs"))
    {
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const cJSON *bds = binary_size(o);
        FUZZ_CHECK(cJSON_IsArray(shape) && shape->child &&
                       shape->child->valuedouble == (double)p->rows,
                   "reply %zu: an output is not cut to %u rows", i, p->rows);
        if (bds) {
            FUZZ_CHECK(cJSON_IsNumber(bds) && !data, "reply %zu: a binary output has data", i);
            bin += bds->valuedouble;
            continue;
        }
        double want = 1;
        for (const cJSON *d = shape->child; d; d = d->next)
            want *= d->valuedouble;
        FUZZ_CHECK(cJSON_IsArray(data) && (double)count_scalars(data) == want,
                   "reply %zu: output data does not match its shape", i);
    }
    FUZZ_CHECK(bin == (double)(p->reply.len - hlen),
               "reply %zu: binary outputs of %.0f bytes, %zu after the header", i, bin,
               p->reply.len - hlen);
    return r;
}

/* Against the echo model: each reply holds its own rows and V2 its own id. */
static void check_echo_reply(const ig_codec_t *codec, const ig_batch_part_t *p, const cJSON *r,
                             const cJSON *req)
{
    if (codec == &ig_codec_v1) {
        const cJSON *preds = cJSON_GetObjectItemCaseSensitive(r, "predictions");
        FUZZ_CHECK(cJSON_IsArray(preds) && (uint32_t)cJSON_GetArraySize(preds) == p->rows,
                   "V1 reply has not %u predictions", p->rows);
        return;
    }
    const cJSON *doc_id = cJSON_GetObjectItemCaseSensitive(req, "id");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
    FUZZ_CHECK((doc_id == NULL && id == NULL) ||
                   (cJSON_IsString(doc_id) && cJSON_IsString(id) &&
                    strcmp(doc_id->valuestring, id->valuestring) == 0),
               "V2 reply does not carry the part's own id");
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "outputs"));
    int want = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(req, "inputs"));
    FUZZ_CHECK(n == want, "V2 echo reply has %d outputs for %d inputs", n, want);
}

static void run(const ig_codec_t *codec, ig_slice_t req, int64_t req_hl, const char *answer,
                size_t answer_len, int64_t answer_hl, bool have_answer)
{
    ig_batch_part_t parts[NPARTS], again;
    ig_batch_part_t *pp[NPARTS];
    char err[256] = "";
    ig_slice_t model = IG_SLICE_LIT("m");

    memset(parts, 0, sizeof(parts));
    int rc = codec->parse(&parts[0], model, req, req_hl, err, sizeof(err));
    SAY("parse: %d %s\n", rc, rc ? err : "");
    if (rc != 0) {
        check_rejected(&parts[0], rc, err);
        return;
    }
    FUZZ_CHECK(parts[0].rows >= 1, "accepted part has 0 rows");
    if (parts[0].alone) {
        FUZZ_CHECK(codec == &ig_codec_v1, "a V2 part is alone");
        FUZZ_CHECK(parts[0].key.len == 0, "an alone part has a key");
        ig_batch_part_dispose(&parts[0]);
        return;
    }
    FUZZ_CHECK(parts[0].key.len > 0, "a batchable part has an empty key");
    FUZZ_CHECK(parts[0].key_hash == ig_hash_bytes(parts[0].key.base, parts[0].key.len),
               "key_hash is not the hash of the key");
    for (size_t i = 1; i < NPARTS; i++) {
        rc = codec->parse(&parts[i], model, req, req_hl, err, sizeof(err));
        FUZZ_CHECK(rc == 0 && parts[i].key.len == parts[0].key.len &&
                       memcmp(parts[i].key.base, parts[0].key.base, parts[0].key.len) == 0,
                   "a second parse of the same body differs");
    }
    for (size_t i = 0; i < NPARTS; i++)
        pp[i] = &parts[i];

    /* Merging under a small cap fails cleanly or fits. */
    ig_buf_t out;
    int64_t hl = 0;
    ig_buf_init(&out, 64);
    rc = codec->merge(pp, NPARTS, &out, &hl);
    FUZZ_CHECK(rc == 0 || rc == IG_ETOOLARGE, "capped merge returned %d", rc);
    ig_buf_dispose(&out);

    ig_buf_init(&out, 0);
    rc = codec->merge(pp, NPARTS, &out, &hl);
    FUZZ_CHECK(rc == 0, "merge returned %d (%s)", rc, ig_err_name(rc));
    FUZZ_CHECK(hl == -1 || (hl >= 0 && (uint64_t)hl <= out.len && codec == &ig_codec_v2),
               "merge gave header length %lld for %zu bytes", (long long)hl, out.len);
    uint64_t total = (uint64_t)parts[0].rows * NPARTS;
    if (total <= UINT32_MAX) {
        memset(&again, 0, sizeof(again));
        rc = codec->parse(&again, model, ig_slice(out.base, out.len), hl, err, sizeof(err));
        FUZZ_CHECK(rc == 0, "the merged body does not parse: %s: %.300s", err, out.base);
        FUZZ_CHECK(!again.alone && again.rows == total, "the merged body has %u rows, not %llu",
                   again.rows, (unsigned long long)total);
        FUZZ_CHECK(again.key.len == parts[0].key.len &&
                       memcmp(again.key.base, parts[0].key.base, again.key.len) == 0,
                   "merging changed the batch key:\n %.300s\n %.300s", parts[0].key.base,
                   again.key.base);
        ig_batch_part_dispose(&again);
    }

    char *echo = NULL;
    if (!have_answer) {
        echo = echo_answer(codec, &out, hl, &answer_len, &answer_hl);
        answer = echo;
    }
    err[0] = '\0';
    rc = codec->split(ig_slice(answer, answer_len), answer_hl, pp, NPARTS, err, sizeof(err));
    SAY("split (%s answer): %d %s\n", have_answer ? "given" : "echo", rc, rc ? err : "");
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EUPSTREAM, "split returned %d (%s)", rc, ig_err_name(rc));
        FUZZ_CHECK(err[0] != '\0', "a failed split gave no message");
        /* Binary echo outputs may hold what JSON cannot (NaN, BYTES that are
         * not UTF-8): a part that asked for JSON then fails the batch. */
        FUZZ_CHECK(have_answer || (answer_hl >= 0 && strstr(err, "cannot be given as JSON")),
                   "split refused the echo model's answer: %s", err);
        for (size_t i = 0; i < NPARTS; i++)
            FUZZ_CHECK(parts[i].reply.base == NULL, "a failed split left a reply");
    } else {
        cJSON *doc = parse_header(req.base, req.len, req_hl);
        for (size_t i = 0; i < NPARTS; i++) {
            cJSON *r = check_reply(codec, &parts[i], i);
            if (!have_answer)
                check_echo_reply(codec, &parts[i], r, doc);
            cJSON_Delete(r);
        }
        cJSON_Delete(doc);
    }
    free(echo);
    ig_buf_dispose(&out);
    for (size_t i = 0; i < NPARTS; i++)
        ig_batch_part_dispose(&parts[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("IG_FUZZ_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ig_codec_t *codec = (data[0] & 1) ? &ig_codec_v2 : &ig_codec_v1;
    bool hint = (data[0] & 2) != 0;
    const char *body = (const char *)data + 1, *answer;
    size_t len = size - 1, req_len, answer_len;
    int64_t req_hl = -1, answer_hl = -1;
    bool have_answer;

    if (hint) {
        /* Header lengths past the end are kept: the codec must refuse them. */
        req_hl = (int64_t)take_u16(&body, &len);
        req_len = take_u16(&body, &len);
        if (req_len > len)
            req_len = len;
        answer = body + req_len;
        answer_len = len - req_len;
        have_answer = answer_len > 0;
        if (have_answer)
            answer_hl = (int64_t)take_u16(&answer, &answer_len);
    } else {
        const char *nul = memchr(body, '\0', len);
        req_len = nul ? (size_t)(nul - body) : len;
        answer = nul ? nul + 1 : body + len;
        answer_len = nul ? len - req_len - 1 : 0;
        have_answer = nul != NULL;
    }
    run(codec, ig_slice(body, req_len), req_hl, answer, answer_len, answer_hl, have_answer);
    return 0;
}
