/*
 * fuzz_codecs.c: libFuzzer target for the gateway's batching codecs
 * (gateway/codec.c, codec_v1.c, codec_v2.c) through codec.h.
 *
 * Input layout: byte 0 picks the codec (bit 0: V1 or V2) and the binary
 * hint (bit 1); the rest is a request body, optionally followed by a NUL
 * byte and a model answer. Without an answer, a fake model answers the
 * merged call by echoing it (V1: the instances as predictions; V2: every
 * input as an output), so the successful split path is reached too.
 *
 * Invariants, from codec.h's contract:
 *  - parse returns 0 or IG_EINVAL with a message; a rejected part owns
 *    nothing; an accepted one has rows >= 1 and, unless alone, a non-empty
 *    key whose hash is ig_codec_hash of it, the same on a second parse;
 *  - merging three copies of a part succeeds, gives a JSON object that
 *    parses again with three times the rows and the same key (merging does
 *    not change what the batch key describes), and fails only with
 *    IG_ETOOLARGE under a small cap;
 *  - split returns 0 or IG_EUPSTREAM with a message; on error no part
 *    keeps a reply; on success every reply is a JSON object, and against
 *    the echo model each reply holds exactly its own part's rows (and V2
 *    replies carry the part's own id).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/codec.h"
#include "infergate/error.h"

#define NPARTS 3

static void check_rejected(const ig_batch_part_t *p, int rc, const char *err)
{
    FUZZ_CHECK(rc == IG_EINVAL, "parse returned %d (%s)", rc, ig_err_name(rc));
    FUZZ_CHECK(err[0] != '\0', "a rejected body got no message");
    FUZZ_CHECK(p->doc == NULL && p->key.base == NULL && p->reply.base == NULL,
               "a rejected part still owns memory");
}

/* The echo model: what a model that returns its inputs would answer. */
static char *echo_answer(const ig_codec_t *codec, const char *merged)
{
    cJSON *req = cJSON_Parse(merged);
    FUZZ_CHECK(req != NULL, "the merged body is not JSON: %.200s", merged);
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
            cJSON_AddItemToArray(outs, o);
        }
    }
    char *s = cJSON_PrintUnformatted(ans);
    FUZZ_CHECK(s != NULL, "cannot print the echo answer");
    cJSON_Delete(ans);
    cJSON_Delete(req);
    return s;
}

static size_t count_scalars(const cJSON *arr)
{
    size_t n = 0;
    for (const cJSON *v = arr->child; v; v = v->next)
        n += cJSON_IsArray(v) ? count_scalars(v) : 1;
    return n;
}

static void check_echo_reply(const ig_codec_t *codec, const ig_batch_part_t *p)
{
    cJSON *r = cJSON_ParseWithLength(p->reply.base, p->reply.len);
    FUZZ_CHECK(cJSON_IsObject(r), "reply is not a JSON object: %.200s", p->reply.base);
    if (codec == &ig_codec_v1) {
        const cJSON *preds = cJSON_GetObjectItemCaseSensitive(r, "predictions");
        FUZZ_CHECK(cJSON_IsArray(preds) && (uint32_t)cJSON_GetArraySize(preds) == p->rows,
                   "V1 reply has not %u predictions", p->rows);
    } else {
        const cJSON *o, *doc_id = cJSON_GetObjectItemCaseSensitive(p->doc, "id");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
        FUZZ_CHECK((doc_id == NULL && id == NULL) ||
                       (cJSON_IsString(doc_id) && cJSON_IsString(id) &&
                        strcmp(doc_id->valuestring, id->valuestring) == 0),
                   "V2 reply does not carry the part's own id");
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(r, "outputs"))
        {
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
            const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
            FUZZ_CHECK(cJSON_IsArray(shape) && shape->child &&
                           shape->child->valuedouble == (double)p->rows,
                       "V2 reply output is not cut to %u rows", p->rows);
            double want = 1;
            for (const cJSON *d = shape->child; d; d = d->next)
                want *= d->valuedouble;
            FUZZ_CHECK(cJSON_IsArray(data) && (double)count_scalars(data) == want,
                       "V2 reply output data does not match its shape");
        }
    }
    cJSON_Delete(r);
}

static void run(const ig_codec_t *codec, bool hint, ig_slice_t req, const char *answer,
                size_t answer_len, bool have_answer)
{
    ig_batch_part_t parts[NPARTS], again;
    ig_batch_part_t *pp[NPARTS];
    char err[256] = "";
    ig_slice_t model = IG_SLICE_LIT("m");

    memset(parts, 0, sizeof(parts));
    int rc = codec->parse(&parts[0], model, req, hint ? 0 : -1, err, sizeof(err));
    if (rc != 0) {
        check_rejected(&parts[0], rc, err);
        return;
    }
    FUZZ_CHECK(parts[0].rows >= 1, "accepted part has 0 rows");
    if (parts[0].alone) {
        FUZZ_CHECK(parts[0].key.len == 0, "an alone part has a key");
        ig_batch_part_dispose(&parts[0]);
        return;
    }
    FUZZ_CHECK(parts[0].key.len > 0, "a batchable part has an empty key");
    FUZZ_CHECK(parts[0].key_hash == ig_codec_hash(parts[0].key.base, parts[0].key.len),
               "key_hash is not the hash of the key");
    for (size_t i = 1; i < NPARTS; i++) {
        rc = codec->parse(&parts[i], model, req, hint ? 0 : -1, err, sizeof(err));
        FUZZ_CHECK(rc == 0 && parts[i].key.len == parts[0].key.len &&
                       memcmp(parts[i].key.base, parts[0].key.base, parts[0].key.len) == 0,
                   "a second parse of the same body differs");
    }
    for (size_t i = 0; i < NPARTS; i++)
        pp[i] = &parts[i];

    /* Merging under a small cap fails cleanly or fits. */
    ig_buf_t out;
    ig_buf_init(&out, 64);
    rc = codec->merge(pp, NPARTS, &out, &(int64_t){0});
    FUZZ_CHECK(rc == 0 || rc == IG_ETOOLARGE, "capped merge returned %d", rc);
    ig_buf_dispose(&out);

    ig_buf_init(&out, 0);
    rc = codec->merge(pp, NPARTS, &out, &(int64_t){0});
    FUZZ_CHECK(rc == 0, "merge returned %d (%s)", rc, ig_err_name(rc));
    uint64_t total = (uint64_t)parts[0].rows * NPARTS;
    if (total <= UINT32_MAX) {
        memset(&again, 0, sizeof(again));
        rc = codec->parse(&again, model, ig_slice(out.base, out.len), -1, err, sizeof(err));
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
        echo = echo_answer(codec, out.base);
        answer = echo;
        answer_len = strlen(echo);
    }
    err[0] = '\0';
    rc = codec->split(ig_slice(answer, answer_len), -1, pp, NPARTS, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EUPSTREAM, "split returned %d (%s)", rc, ig_err_name(rc));
        FUZZ_CHECK(err[0] != '\0', "a failed split gave no message");
        FUZZ_CHECK(have_answer, "split refused the echo model's answer: %s", err);
        for (size_t i = 0; i < NPARTS; i++)
            FUZZ_CHECK(parts[i].reply.base == NULL, "a failed split left a reply");
    } else {
        for (size_t i = 0; i < NPARTS; i++) {
            FUZZ_CHECK(parts[i].reply.base != NULL, "split left part %zu without a reply", i);
            /* Whatever the model sent, each client gets UTF-8 JSON. */
            FUZZ_CHECK(ig_utf8_valid(parts[i].reply.base, parts[i].reply.len, NULL),
                       "reply %zu is not UTF-8", i);
            if (!have_answer)
                check_echo_reply(codec, &parts[i]);
            else {
                cJSON *r = cJSON_ParseWithLength(parts[i].reply.base, parts[i].reply.len);
                FUZZ_CHECK(cJSON_IsObject(r), "reply is not a JSON object");
                cJSON_Delete(r);
            }
        }
    }
    cJSON_free(echo);
    ig_buf_dispose(&out);
    for (size_t i = 0; i < NPARTS; i++)
        ig_batch_part_dispose(&parts[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ig_codec_t *codec = (data[0] & 1) ? &ig_codec_v2 : &ig_codec_v1;
    bool hint = (data[0] & 2) != 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(body, '\0', len);
    size_t req_len = nul ? (size_t)(nul - body) : len;
    const char *answer = nul ? nul + 1 : NULL;
    size_t answer_len = nul ? len - req_len - 1 : 0;

    run(codec, hint, ig_slice(body, req_len), answer, answer_len, nul != NULL);
    return 0;
}
