/*
 * fuzz_codec_diff.c: differential libFuzzer target for the span codecs
 * (gateway/base/json.c, codec_v1.c, codec_v2*.c, codec_tensor.c), held against
 * the reference parser of json_ref.c, which shares no code with them.
 *
 * Input layout: byte 0's bits 0-1 pick the mode, its other bits are
 * variant flags (F_* below); the rest is
 *  - MODE_JSON: one JSON text;
 *  - MODE_V1, MODE_V2: up to three request bodies separated by NUL bytes
 *    (with F_ANSWER and two or more pieces, the last is the model answer,
 *    and with F_ANSWER_HDR a V2 answer opens with two bytes, big-endian,
 *    giving its Inference-Header-Content-Length);
 *  - MODE_V2_BINARY: bytes a generator turns into V2 requests with the
 *    binary tensor data extension (FP32, INT64 and BYTES inputs).
 *
 * Invariants, beyond the sanitizers:
 *  - json.c: ig_json_value on a whole text (white space after it only)
 *    accepts exactly when the reference does (nesting limit included);
 *    ig_json_canonical of an accepted value re-parses to an equal tree up
 *    to member order, is idempotent and has no white space between tokens;
 *    ig_json_canonical_omit drops exactly the members named; every string
 *    and name decodes (ig_json_unescape, ig_json_str_eq) as the reference
 *    decodes it, and every number's ig_json_num_t fields are right. Every
 *    body and answer of the other modes gets these checks too.
 *  - V1: parse accepts exactly the JSON objects with at most one
 *    "instances" and one "inputs" member, not both, and either a non-empty
 *    "instances" array (its length is the rows) or an "inputs" member
 *    (then the part is alone); the key is the model and every member but
 *    "instances", canonical.
 *  - V2 (no binary header): an accepted body is JSON with exactly one
 *    non-empty "inputs" array of tensors whose names, datatypes, shapes and
 *    data agree (rows = shape[0], prod(shape) values); a body that is not
 *    JSON is refused. Equal keys mean equal names, datatypes and shape[1:].
 *  - Merging three parts (the body three times, or the fuzzer's variants
 *    with an equal key) gives a body whose rows are the parts' rows in
 *    order, token for token, with the first part's other members; V2
 *    binary: the merged tail is the parts' bytes, input by input.
 *  - Splitting an echo answer built from the merged body with the
 *    reference (V1: the instances as predictions; V2: every input as an
 *    output, data flat or nested by shape, shape before or after it, in
 *    JSON or, binary mode, in binary) succeeds; splitting any answer that
 *    the split accepts gives each part exactly its rows of the answer
 *    (V2: flattened row-major, by byte ranges for binary outputs, in the
 *    encoding the part asked for, converted exactly), the answer's other
 *    members, and the part's own "id". An answer the reference finds
 *    unusable (not JSON, an output whose dim 0 is not the batch's rows, a
 *    binary size that does not match the shape) must fail the split.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/core/codec.h"
#include "infergate/base/dtype.h"
#include "infergate/base/error.h"
#include "infergate/base/json.h"
#include "codec_ref.h"
#include "json_ref.h"

enum { MODE_JSON, MODE_V1, MODE_V2, MODE_V2_BINARY };

#define F_ANSWER 0x04     /* the last NUL-separated piece is the model's answer */
#define F_FLIP 0x80       /* binary echo: binary inputs answered in JSON and vice versa */
#define F_ANSWER_HDR 0x80 /* V2 with F_ANSWER: the answer opens with its header length */

#define NPARTS 3
#define GEN_INPUTS 2

static bool verbose; /* IG_FUZZ_VERBOSE=1: say how far an input got */

#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (verbose)                                                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
    } while (0)

/* ---- small helpers -------------------------------------------------------------- */

/* printf arguments for "%.*s" showing at most 200 bytes of s[0..len), which
 * the fuzzer's data does not NUL-terminate. */
#define SHOW(s, len) (int)((len) < 200 ? (len) : 200), (s)

static ig_slice_t model_name(void)
{
    return IG_SLICE_LIT("m");
}

static void check_rejected(const ig_batch_part_t *p, int rc, const char *err)
{
    FUZZ_CHECK(rc == IG_EINVAL, "parse returned %d (%s)", rc, ig_err_name(rc));
    FUZZ_CHECK(err[0] != '\0', "a rejected body got no message");
    FUZZ_CHECK(p->doc == NULL && p->key.base == NULL && p->reply.base == NULL,
               "a rejected part still owns memory");
}

/* ---- json.c against the reference ----------------------------------------------- */

static void check_string(ig_slice_t raw, const char *dec, size_t dec_len)
{
    ig_buf_t b;
    bool esc = memchr(raw.base, '\\', raw.len) != NULL, got_esc;
    ig_slice_t got;
    ig_json_t j;

    ig_buf_init(&b, 0);
    FUZZ_CHECK(ig_json_unescape(raw, &b) == 0, "unescape failed");
    FUZZ_CHECK(b.len == dec_len && (dec_len == 0 || memcmp(b.base, dec, dec_len) == 0),
               "ig_json_unescape(%.*s) is not what the reference decodes", (int)raw.len, raw.base);
    ig_buf_dispose(&b);
    if (memchr(dec, '\0', dec_len) == NULL)
        FUZZ_CHECK(ig_json_str_eq(raw, esc, dec), "ig_json_str_eq(%.*s) is false for its text",
                   (int)raw.len, raw.base);
    ig_json_init(&j, raw.base - 1, raw.len + 2);
    FUZZ_CHECK(ig_json_string(&j, &got, &got_esc) == 0 && ref_slice_eq(got, raw) &&
                   got_esc == esc && j.pos == raw.len + 2,
               "ig_json_string on %.*s", (int)raw.len, raw.base);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ig_json_number's findings against the number's text. */
static void check_number(ig_slice_t t)
{
    ig_json_t j;
    ig_json_num_t num;
    size_t i = 0, int_start, int_end, frac_start = 0, frac_end = 0;
    int64_t exp = 0;
    bool neg, eneg = false, zero = true, has_exp;

    ig_json_init(&j, t.base, t.len);
    FUZZ_CHECK(ig_json_number(&j, &num) == 0 && j.pos == t.len, "ig_json_number(%.*s)", (int)t.len,
               t.base);
    neg = t.base[0] == '-';
    i = neg;
    int_start = i;
    while (i < t.len && is_digit(t.base[i]))
        i++;
    int_end = i;
    if (i < t.len && t.base[i] == '.') {
        frac_start = ++i;
        while (i < t.len && is_digit(t.base[i]))
            i++;
        frac_end = i;
    }
    has_exp = i < t.len;
    if (has_exp) {
        i++;
        if (t.base[i] == '+' || t.base[i] == '-')
            eneg = t.base[i++] == '-';
        for (; i < t.len; i++)
            if (exp < 1000000000)
                exp = exp * 10 + (t.base[i] - '0');
    }
    /* The first significant digit, counting the integer digits then the fraction's. */
    int64_t z = -1, at = 0;
    for (size_t k = int_start; k < int_end && z < 0; k++, at++)
        if (t.base[k] != '0')
            z = at;
    for (size_t k = frac_start; k < frac_end && z < 0; k++, at++)
        if (t.base[k] != '0')
            z = at;
    zero = z < 0;
    FUZZ_CHECK(ref_slice_eq(num.text, t), "number text");
    FUZZ_CHECK(ref_slice_eq(num.digits, ig_slice(t.base + int_start, int_end - int_start)),
               "number digits of %.*s", (int)t.len, t.base);
    FUZZ_CHECK(num.neg == neg && num.zero == zero && num.integer == (frac_end == 0 && !has_exp),
               "number flags of %.*s", (int)t.len, t.base);
    if (!zero) {
        int64_t e10 = (int64_t)(int_end - int_start) - 1 - z + (eneg ? -exp : exp);
        e10 = e10 > 1000000 ? 1000000 : e10 < -1000000 ? -1000000 : e10;
        /* The scanner stops reading an exponent at 1000000, so past that
         * (where no datatype's range is near) only the side must agree. */
        if (exp < 1000000)
            FUZZ_CHECK(num.e10 == e10, "e10 of %.*s is %" PRId64 ", not %" PRId64, (int)t.len,
                       t.base, num.e10, e10);
        else
            FUZZ_CHECK((num.e10 > 400) == (e10 > 400) && (num.e10 < -400) == (e10 < -400),
                       "e10 of %.*s is %" PRId64 ", not about %" PRId64, (int)t.len, t.base,
                       num.e10, e10);
    }
}

static void check_tree_scalars(const jref_node_t *v)
{
    if (v->name)
        check_string(v->name_raw, v->name, v->name_len);
    if (v->kind == JREF_STRING)
        check_string(ref_str_inner(v), v->str, v->str_len);
    if (v->kind == JREF_NUMBER)
        check_number(v->raw);
    for (size_t k = 0; k < v->n; k++)
        check_tree_scalars(&v->kids[k]);
}

/* No white space outside strings. */
static bool compact(const ig_buf_t *b)
{
    bool in_str = false;
    for (size_t i = 0; i < b->len; i++) {
        char c = b->base[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            return false;
        }
    }
    return true;
}

/* Runs the scanner checks on s[0..len); returns whether it is JSON, with the
 * reference tree in *tree (the caller frees it) when `tree` is set. */
static bool check_json(const char *s, size_t len, jref_node_t *tree)
{
    jref_node_t ref, c;
    ig_json_t j;
    ig_json_kind_t kind;
    ig_slice_t span;
    ig_buf_t out, again;

    bool want = jref_parse(s, len, &ref);
    ig_json_init(&j, s, len);
    int rc = ig_json_value(&j, &kind, &span);
    bool got = rc == 0 && ig_json_peek(&j) < 0;
    FUZZ_CHECK(got == want, "ig_json_value %s what the reference %s: %.*s",
               got ? "accepts" : "refuses", want ? "accepts" : "refuses", SHOW(s, len));
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EINVAL && j.err != NULL && j.err_at <= len,
                   "a failed scan returned %d, err %s at %zu", rc, j.err ? j.err : "(none)",
                   j.err_at);
    }
    if (!want) {
        if (tree)
            memset(tree, 0, sizeof(*tree));
        return false;
    }
    FUZZ_CHECK((int)kind == (int)ref.kind + IG_JSON_OBJECT && ref_slice_eq(span, ref.raw),
               "ig_json_value's kind or span differ from the reference");
    check_tree_scalars(&ref);

    ig_buf_init(&out, 0);
    FUZZ_CHECK(ig_json_canonical(&out, span) == 0, "ig_json_canonical failed");
    FUZZ_CHECK(jref_parse(out.base, out.len, &c), "the canonical form is not JSON: %.200s",
               out.base);
    FUZZ_CHECK(jref_equal(&ref, &c, true), "the canonical form is another value: %.200s", out.base);
    FUZZ_CHECK(compact(&out), "the canonical form has white space: %.200s", out.base);
    ig_buf_init(&again, 0);
    FUZZ_CHECK(ig_json_canonical(&again, ig_slice(out.base, out.len)) == 0 &&
                   again.len == out.len && memcmp(again.base, out.base, out.len) == 0,
               "the canonical form is not canonical: %.200s", out.base);
    ig_buf_dispose(&again);
    jref_free(&c);
    ig_buf_reset(&out);

    if (ref.kind == JREF_OBJECT && ref.n > 0 &&
        !memchr(ref.kids[0].name, 0, ref.kids[0].name_len)) {
        const char *omit = ref.kids[0].name;
        FUZZ_CHECK(ig_json_canonical_omit(&out, span, omit) == 0, "canonical_omit failed");
        FUZZ_CHECK(jref_parse(out.base, out.len, &c), "canonical_omit is not JSON");
        jref_node_t f = ref_without(&ref, &omit, 1);
        FUZZ_CHECK(jref_equal(&f, &c, true), "canonical_omit(\"%s\") gives %.200s", omit, out.base);
        free(f.kids);
        jref_free(&c);
    }
    ig_buf_dispose(&out);
    if (tree)
        *tree = ref;
    else
        jref_free(&ref);
    return true;
}

/* ---- requests -------------------------------------------------------------------- */

/* What the harness knows of one request. */
typedef struct {
    ig_slice_t body;
    int64_t header_len;
    jref_node_t doc; /* the reference tree of its JSON (the header when binary) */
    bool parsed;
    ig_batch_part_t part;
    bool accepted;
    /* MODE_V2_BINARY: the generated body, and each input's elements as binary
     * tensor data, whichever encoding carried them. */
    ig_buf_t text;
    ig_buf_t bytes[GEN_INPUTS];
    bool bin_in[GEN_INPUTS];
} req_t;

static ig_slice_t req_header(const req_t *r)
{
    return r->header_len >= 0 ? ig_slice(r->body.base, (size_t)r->header_len) : r->body;
}

static void req_dispose(req_t *r)
{
    jref_free(&r->doc);
    ig_batch_part_dispose(&r->part);
    ig_buf_dispose(&r->text);
    for (size_t k = 0; k < GEN_INPUTS; k++)
        ig_buf_dispose(&r->bytes[k]);
}

static bool same_key(const req_t *a, const req_t *b)
{
    return a->part.key.len == b->part.key.len &&
           memcmp(a->part.key.base, b->part.key.base, a->part.key.len) == 0;
}

/* The batch group: accepted, batchable parts whose key is the first one's. */
static size_t group(req_t *rq, size_t n, req_t **g)
{
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (rq[i].accepted && !rq[i].part.alone && (ng == 0 || same_key(&rq[i], g[0])))
            g[ng++] = &rq[i];
    return ng;
}

static void check_batchable(const req_t *r)
{
    FUZZ_CHECK(r->part.rows >= 1, "accepted part has 0 rows");
    FUZZ_CHECK(r->part.key.len > 0, "a batchable part has an empty key");
    FUZZ_CHECK(r->part.key_hash == ig_hash_bytes(r->part.key.base, r->part.key.len),
               "key_hash is not the hash of the key");
}

/* ---- V1 ---------------------------------------------------------------------------- */

static const char *const V1_INST[] = {"instances"};

static void v1_parse(req_t *r)
{
    char err[256] = "";
    const jref_node_t *want = ref_v1(&r->doc, r->parsed);
    int rc = ig_codec_v1.parse(&r->part, model_name(), r->body, -1, err, sizeof(err));
    SAY("V1 parse: %d %s\n", rc, rc ? err : r->part.alone ? "(alone)" : "");
    FUZZ_CHECK((rc == 0) == (want != NULL), "V1 %s a body the reference %s (%s): %.*s",
               rc ? "refuses" : "accepts", want ? "accepts" : "refuses", err,
               SHOW(r->body.base, r->body.len));
    if (rc) {
        check_rejected(&r->part, rc, err);
        return;
    }
    r->accepted = true;
    FUZZ_CHECK(r->part.alone == (want == &r->doc), "V1 alone is %d", r->part.alone);
    if (r->part.alone) {
        FUZZ_CHECK(r->part.key.len == 0, "an alone part has a key");
        return;
    }
    check_batchable(r);
    FUZZ_CHECK(r->part.rows == want->n, "V1 rows %u, the reference counts %zu", r->part.rows,
               want->n);
    /* The key: the model as a JSON string, a space, the other members. */
    const ig_buf_t *key = &r->part.key;
    jref_node_t k;
    FUZZ_CHECK(key->len >= 4 && memcmp(key->base, "\"m\" ", 4) == 0, "V1 key %.100s", key->base);
    FUZZ_CHECK(jref_parse(key->base + 4, key->len - 4, &k), "V1 key is not JSON: %.200s",
               key->base);
    FUZZ_CHECK(ref_equal_without(&r->doc, &k, V1_INST, 1, true),
               "V1 key is not the members but instances: %.200s", key->base);
    jref_free(&k);
}

static void v1_check_merged(req_t **g, size_t ng, const ig_buf_t *out, int64_t hl)
{
    jref_node_t m;
    FUZZ_CHECK(hl == -1, "a V1 merge has a binary header");
    FUZZ_CHECK(check_json(out->base, out->len, &m) && m.kind == JREF_OBJECT,
               "the merged V1 body is not a JSON object: %.200s", out->base);
    const jref_node_t *mi = jref_get(&m, "instances");
    FUZZ_CHECK(jref_count(&m, "instances") == 1 && mi->kind == JREF_ARRAY,
               "merged V1 body has no single instances array");
    size_t at = 0;
    for (size_t p = 0; p < ng; p++) {
        const jref_node_t *inst = jref_get(&g[p]->doc, "instances");
        for (size_t e = 0; e < inst->n; e++, at++)
            FUZZ_CHECK(at < mi->n && jref_equal(&mi->kids[at], &inst->kids[e], false),
                       "merged instance %zu is not part %zu's row %zu", at, p, e);
    }
    FUZZ_CHECK(at == mi->n, "the merged body has %zu rows, the parts %zu", mi->n, at);
    FUZZ_CHECK(ref_equal_without(&m, &g[0]->doc, V1_INST, 1, false),
               "the merged body's other members are not the first part's");
    jref_free(&m);
}

/* After a split of `answer` returned rc: each reply is the answer with its
 * own predictions, or the split failed and left none. */
static void v1_check_split(ig_slice_t answer, req_t **g, size_t ng, int rc, const char *err,
                           bool echo)
{
    jref_node_t a, r;
    bool ok = check_json(answer.base, answer.len, &a);
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EUPSTREAM && err[0], "split returned %d (%s)", rc, ig_err_name(rc));
        FUZZ_CHECK(!echo, "split refused the echo answer: %s", err);
        for (size_t p = 0; p < ng; p++)
            FUZZ_CHECK(g[p]->part.reply.base == NULL, "a failed split left a reply");
        jref_free(&a);
        return;
    }
    FUZZ_CHECK(ok && a.kind == JREF_OBJECT, "split accepted an answer that is not an object");
    const jref_node_t *pred = jref_get(&a, "predictions");
    uint64_t total = 0, r0 = 0;
    for (size_t p = 0; p < ng; p++)
        total += g[p]->part.rows;
    FUZZ_CHECK(jref_count(&a, "predictions") == 1 && pred->kind == JREF_ARRAY && pred->n == total,
               "split accepted an answer without %" PRIu64 " predictions", total);
    for (size_t p = 0; p < ng; p++) {
        const ig_batch_part_t *part = &g[p]->part;
        FUZZ_CHECK(part->reply.base != NULL && part->reply_header_len == -1, "V1 reply %zu", p);
        FUZZ_CHECK(jref_parse(part->reply.base, part->reply.len, &r) && r.kind == JREF_OBJECT &&
                       r.n == a.n,
                   "V1 reply %zu is not the answer's members: %.200s", p, part->reply.base);
        for (size_t x = 0; x < a.n; x++) {
            const jref_node_t *am = &a.kids[x], *rm = &r.kids[x];
            FUZZ_CHECK(ref_slice_eq(am->name_raw, rm->name_raw), "V1 reply member %zu renamed", x);
            if (am != pred) {
                FUZZ_CHECK(jref_equal(am, rm, false), "V1 reply member %zu changed", x);
                continue;
            }
            FUZZ_CHECK(rm->kind == JREF_ARRAY && rm->n == part->rows,
                       "V1 reply %zu has not its %u predictions", p, part->rows);
            for (size_t e = 0; e < rm->n; e++)
                FUZZ_CHECK(jref_equal(&rm->kids[e], &pred->kids[r0 + e], false),
                           "V1 reply %zu prediction %zu is not the answer's row %" PRIu64, p, e,
                           r0 + e);
        }
        jref_free(&r);
        r0 += part->rows;
    }
    jref_free(&a);
}

/* ---- V2: the reference's view of requests and answers ------------------------------ */

static const char *const V2_TENSOR_KEYS[] = {"name", "datatype", "shape", "data", "parameters"};
static const char *const V2_TOP_KEYS[] = {"id", "inputs", "outputs", "parameters"};
static const char *const V2_BDS[] = {"binary_data_size"};

static void v2_check_split(ig_slice_t answer, int64_t ahl, req_t **g, size_t ng, int rc,
                           const char *err, bool must_succeed)
{
    ref_answer_t a;
    uint64_t total = 0, r0 = 0;
    ig_slice_t hdr = ahl >= 0 ? ig_slice(answer.base, (size_t)ahl) : answer;
    for (size_t p = 0; p < ng; p++)
        total += g[p]->part.rows;
    check_json(hdr.base, hdr.len, NULL);
    ref_answer_read(&a, hdr, ig_slice(hdr.base + hdr.len, answer.len - hdr.len), total);
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EUPSTREAM && err[0], "split returned %d (%s)", rc, ig_err_name(rc));
        FUZZ_CHECK(!must_succeed, "split refused the echo answer: %s", err);
        for (size_t p = 0; p < ng; p++)
            FUZZ_CHECK(g[p]->part.reply.base == NULL, "a failed split left a reply");
    } else {
        FUZZ_CHECK(a.parsed, "split accepted an answer that is not JSON");
        FUZZ_CHECK(!a.simple || !a.must_fail,
                   "split accepted an answer the reference cannot divide: %.300s", hdr.base);
        for (size_t p = 0; p < ng; p++) {
            ref_v2_check_reply(&a, &g[p]->doc, &g[p]->part, p, r0);
            r0 += g[p]->part.rows;
        }
    }
    ref_answer_dispose(&a);
}

/* ---- V2 JSON ------------------------------------------------------------------------ */

/* What an accepted V2 body must be, by the reference. */
static void v2_check_accepted(const req_t *r)
{
    FUZZ_CHECK(r->parsed && r->doc.kind == JREF_OBJECT, "V2 accepted a body that is not a JSON "
                                                        "object");
    const jref_node_t *ins = jref_get(&r->doc, "inputs");
    FUZZ_CHECK(jref_count(&r->doc, "inputs") == 1 && ins->kind == JREF_ARRAY && ins->n > 0,
               "V2 accepted a body without one non-empty inputs array");
    for (size_t k = 0; k < ins->n; k++) {
        const jref_node_t *t = &ins->kids[k];
        uint64_t dims[REF_MAX_DIMS];
        size_t nd;
        FUZZ_CHECK(t->kind == JREF_OBJECT, "inputs[%zu] is not an object", k);
        for (size_t x = 0; x < 5; x++)
            FUZZ_CHECK(jref_count(t, V2_TENSOR_KEYS[x]) <= 1, "inputs[%zu].%s twice", k,
                       V2_TENSOR_KEYS[x]);
        const jref_node_t *name = jref_get(t, "name"), *dt = jref_get(t, "datatype");
        FUZZ_CHECK(name && name->kind == JREF_STRING, "inputs[%zu] has no name", k);
        FUZZ_CHECK(dt && dt->kind == JREF_STRING && ig_dtype_find_n(dt->str, dt->str_len),
                   "inputs[%zu] has no datatype", k);
        FUZZ_CHECK(ref_dims(jref_get(t, "shape"), dims, &nd) && dims[0] == r->part.rows,
                   "inputs[%zu].shape[0] is not the part's %u rows", k, r->part.rows);
        if (jref_get(jref_get(t, "parameters"), "binary_data_size"))
            continue;
        const jref_node_t *data = jref_get(t, "data");
        jref_vec_t leaves = {0};
        FUZZ_CHECK(data && data->kind == JREF_ARRAY, "inputs[%zu] has no data", k);
        jref_leaves(data, &leaves);
        FUZZ_CHECK(leaves.n == ref_product(dims, nd), "inputs[%zu] has %zu values for its shape", k,
                   leaves.n);
        jref_vec_free(&leaves);
    }
}

static const jref_node_t *v2_input(const req_t *r, size_t k)
{
    return &jref_get(&r->doc, "inputs")->kids[k];
}

/* Parts with equal keys agree on what the merge takes from the first. */
static void v2_check_same_key(const req_t *a, const req_t *b)
{
    const jref_node_t *ia = jref_get(&a->doc, "inputs"), *ib = jref_get(&b->doc, "inputs");
    FUZZ_CHECK(ia->n == ib->n, "equal V2 keys, %zu and %zu inputs", ia->n, ib->n);
    for (size_t k = 0; k < ia->n; k++) {
        uint64_t da[REF_MAX_DIMS], db[REF_MAX_DIMS];
        size_t na, nb;
        const jref_node_t *ta = &ia->kids[k], *tb = &ib->kids[k];
        FUZZ_CHECK(jref_equal(jref_get(ta, "name"), jref_get(tb, "name"), false) &&
                       jref_equal(jref_get(ta, "datatype"), jref_get(tb, "datatype"), false),
                   "equal V2 keys, inputs[%zu] named or typed differently", k);
        FUZZ_CHECK(ref_dims(jref_get(ta, "shape"), da, &na) &&
                       ref_dims(jref_get(tb, "shape"), db, &nb) && na == nb &&
                       memcmp(da + 1, db + 1, (na - 1) * sizeof(*da)) == 0,
                   "equal V2 keys, inputs[%zu] shaped differently", k);
    }
    FUZZ_CHECK(ref_equal_without(&a->doc, &b->doc, V2_TOP_KEYS, 4, true),
               "equal V2 keys, other members differ");
}

static void v2_parse(req_t *r)
{
    char err[256] = "";
    int rc = ig_codec_v2.parse(&r->part, model_name(), r->body, r->header_len, err, sizeof(err));
    SAY("V2 parse: %d %s\n", rc, rc ? err : "");
    if (!r->parsed)
        FUZZ_CHECK(rc != 0, "V2 accepts a body that is not JSON: %.*s",
                   SHOW(r->body.base, r->body.len));
    if (rc) {
        check_rejected(&r->part, rc, err);
        return;
    }
    r->accepted = true;
    FUZZ_CHECK(!r->part.alone, "a V2 part is alone");
    check_batchable(r);
    v2_check_accepted(r);
}

/* The merged V2 JSON body: inputs stacked, the first part's other members. */
static void v2_check_merged(req_t **g, size_t ng, const jref_node_t *m)
{
    uint64_t total = 0;
    for (size_t p = 0; p < ng; p++)
        total += g[p]->part.rows;
    FUZZ_CHECK(m->kind == JREF_OBJECT && jref_count(m, "id") == 0,
               "the merged V2 body carries an id");
    const jref_node_t *mins = jref_get(m, "inputs"), *ins0 = jref_get(&g[0]->doc, "inputs");
    FUZZ_CHECK(mins && mins->kind == JREF_ARRAY && mins->n == ins0->n,
               "the merged V2 body has not the parts' inputs");
    for (size_t k = 0; k < mins->n; k++) {
        const jref_node_t *mi = &mins->kids[k], *t0 = &ins0->kids[k];
        uint64_t dm[REF_MAX_DIMS], d0[REF_MAX_DIMS];
        size_t nm, n0;
        FUZZ_CHECK(ref_equal_without(mi, t0, V2_TENSOR_KEYS + 2, 3, false) &&
                       jref_get(mi, "name") && jref_get(mi, "datatype"),
                   "merged inputs[%zu]'s members are not the first part's", k);
        FUZZ_CHECK(ref_dims(jref_get(mi, "shape"), dm, &nm) &&
                       ref_dims(jref_get(t0, "shape"), d0, &n0) && nm == n0 && dm[0] == total &&
                       memcmp(dm + 1, d0 + 1, (nm - 1) * sizeof(*dm)) == 0,
                   "merged inputs[%zu] is not shaped [%" PRIu64 ", ...]", k, total);
        const jref_node_t *mp = jref_get(mi, "parameters"), *p0 = jref_get(t0, "parameters");
        FUZZ_CHECK(p0 ? mp && ref_equal_without(mp, p0, V2_BDS, 1, false) : !mp,
                   "merged inputs[%zu].parameters are not the first part's", k);
        jref_vec_t lm = {0}, lp = {0};
        jref_leaves(jref_get(mi, "data"), &lm);
        for (size_t p = 0; p < ng; p++)
            jref_leaves(jref_get(v2_input(g[p], k), "data"), &lp);
        FUZZ_CHECK(lm.n == lp.n, "merged inputs[%zu] has %zu values, the parts %zu", k, lm.n, lp.n);
        for (size_t i = 0; i < lm.n; i++)
            FUZZ_CHECK(jref_equal(lm.v[i], lp.v[i], false), "merged inputs[%zu] value %zu", k, i);
        jref_vec_free(&lm);
        jref_vec_free(&lp);
    }
    FUZZ_CHECK(ref_equal_without(m, &g[0]->doc, V2_TOP_KEYS, 4, false),
               "the merged V2 body's other members are not the first part's");
}

/* ---- the JSON body modes ------------------------------------------------------------ */

static void run_bodies(int mode, const ig_slice_t *bodies, size_t nb, const ig_slice_t *answer,
                       unsigned flags)
{
    const ig_codec_t *codec = mode == MODE_V1 ? &ig_codec_v1 : &ig_codec_v2;
    req_t rq[NPARTS];
    req_t *g[NPARTS];
    ig_batch_part_t *pp[NPARTS];
    char err[256] = "";

    memset(rq, 0, sizeof(rq));
    for (size_t i = 0; i < NPARTS; i++) {
        rq[i].body = bodies[i % nb];
        rq[i].header_len = -1;
        rq[i].parsed = check_json(rq[i].body.base, rq[i].body.len, &rq[i].doc);
        if (mode == MODE_V1)
            v1_parse(&rq[i]);
        else
            v2_parse(&rq[i]);
    }
    size_t ng = group(rq, NPARTS, g);
    for (size_t p = 1; p < ng; p++) {
        if (mode == MODE_V1)
            FUZZ_CHECK(ref_equal_without(&g[0]->doc, &g[p]->doc, V1_INST, 1, true),
                       "equal V1 keys, other members differ");
        else
            v2_check_same_key(g[0], g[p]);
    }
    if (ng == 0)
        goto done;
    for (size_t p = 0; p < ng; p++)
        pp[p] = &g[p]->part;

    ig_buf_t out, ans;
    int64_t hl = 0;
    ig_buf_init(&out, 0);
    ig_buf_init(&ans, 0);
    int rc = codec->merge(pp, ng, &out, &hl);
    FUZZ_CHECK(rc == 0, "merge returned %d (%s)", rc, ig_err_name(rc));
    if (mode == MODE_V1) {
        v1_check_merged(g, ng, &out, hl);
    } else {
        jref_node_t m;
        FUZZ_CHECK(hl == -1, "a merge of JSON V2 bodies has a binary header");
        FUZZ_CHECK(check_json(out.base, out.len, &m), "the merged V2 body is not JSON: %.200s",
                   out.base);
        v2_check_merged(g, ng, &m);
        if (!answer)
            ref_v2_echo(&ans, &m, flags);
        jref_free(&m);
    }
    if (mode == MODE_V1 && !answer)
        ref_v1_echo(&ans, &out, flags);
    ig_slice_t a = answer ? *answer : ig_slice(ans.base, ans.len);
    int64_t ahl = -1;
    if (answer && mode == MODE_V2 && (flags & F_ANSWER_HDR) && a.len >= 2) {
        /* Two bytes, big-endian: the answer's Inference-Header-Content-Length. */
        ahl = (int64_t)((unsigned char)a.base[0] << 8 | (unsigned char)a.base[1]);
        a = ig_slice(a.base + 2, a.len - 2);
        if (ahl > (int64_t)a.len)
            ahl = (int64_t)a.len;
    }
    err[0] = '\0';
    rc = codec->split(a, ahl, pp, ng, err, sizeof(err));
    SAY("split of %zu parts (%s answer): %d %s\n", ng, answer ? "given" : "echo", rc,
        rc ? err : "");
    if (mode == MODE_V1)
        v1_check_split(a, g, ng, rc, err, answer == NULL);
    else
        v2_check_split(a, ahl, g, ng, rc, err, answer == NULL);
    ig_buf_dispose(&ans);
    ig_buf_dispose(&out);
done:
    for (size_t i = 0; i < NPARTS; i++)
        req_dispose(&rq[i]);
}

/* ---- V2 with the binary tensor data extension --------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} gen_t;

static unsigned gen_byte(gen_t *g)
{
    return g->i < g->n ? g->p[g->i++] : 0;
}

/* A JSON string of the bytes s[0..n) (ASCII only), every byte \u-escaped when `all`. */
static void put_json_str(ig_buf_t *b, const unsigned char *s, size_t n, bool all)
{
    ref_put(b, "\"");
    for (size_t i = 0; i < n; i++) {
        if (all || s[i] < 0x20)
            ref_put_fmt(b, "\\u%04x", s[i]);
        else if (s[i] == '"' || s[i] == '\\')
            ref_put_fmt(b, "\\%c", s[i]);
        else
            FUZZ_CHECK(ig_buf_append(b, s + i, 1) == 0, "append");
    }
    ref_put(b, "\"");
}

static const char *const GEN_TYPES[] = {"FP32", "INT64", "BYTES"};

typedef struct {
    size_t ninputs;
    const ig_dtype_t *dt[GEN_INPUTS];
    int cols; /* shape [rows, cols], or [rows] when -1 */
} gen_cfg_t;

/* One element of input k from the generator: its binary form into `bytes`
 * and, for a JSON input, its JSON text into `json`. */
static void gen_element(gen_t *g, const ig_dtype_t *dt, ig_buf_t *bytes, ig_buf_t *json)
{
    unsigned char b[8];
    if (dt->kind == IG_DT_BYTES) {
        unsigned lb = gen_byte(g), n = lb % 8;
        unsigned char s[8];
        for (unsigned k = 0; k < n; k++) {
            s[k] = (unsigned char)gen_byte(g);
            if (json)
                s[k] &= 0x7f; /* JSON strings must be UTF-8 */
        }
        for (unsigned k = 0; k < 4; k++)
            b[k] = (unsigned char)(n >> (8 * k));
        FUZZ_CHECK(ig_buf_append(bytes, b, 4) == 0 && ig_buf_append(bytes, s, n) == 0, "append");
        if (json)
            put_json_str(json, s, n, (lb & 0x80) != 0);
        return;
    }
    for (unsigned k = 0; k < dt->size; k++)
        b[k] = (unsigned char)gen_byte(g);
    if (dt->size == 4) {
        float f;
        memcpy(&f, b, 4);
        if (json && !isfinite(f)) {
            f = 0; /* JSON has no NaN or infinity */
            memcpy(b, &f, 4);
        }
        if (json)
            ref_put_fmt(json, "%.9g", (double)f);
    } else if (json) {
        uint64_t x = 0;
        for (unsigned k = 0; k < 8; k++)
            x |= (uint64_t)b[k] << (8 * k);
        ref_put_fmt(json, "%" PRId64, (int64_t)x);
    }
    FUZZ_CHECK(ig_buf_append(bytes, b, dt->size) == 0, "append");
}

/* Builds request `idx` of the binary mode into r. */
static void gen_request(gen_t *g, const gen_cfg_t *cfg, size_t idx, req_t *r)
{
    unsigned rows = 1 + gen_byte(g) % 3, fl = gen_byte(g);
    size_t per_row = cfg->cols < 0 ? 1 : (size_t)cfg->cols;
    ig_buf_t tail, *t = &r->text;
    bool any_bin = false;

    ig_buf_init(t, 0);
    ig_buf_init(&tail, 0);
    ref_put(t, "{");
    if (fl & 1)
        ref_put_fmt(t, "\"id\":\"p%zu\",", idx);
    ref_put(t, "\"inputs\":[");
    for (size_t k = 0; k < cfg->ninputs; k++) {
        ig_buf_t json;
        bool bin = !(fl & (2u << k));
        ig_buf_init(&json, 0);
        ig_buf_init(&r->bytes[k], 0);
        r->bin_in[k] = bin;
        any_bin |= bin;
        for (size_t e = 0; e < rows * per_row; e++) {
            if (!bin && e)
                ref_put(&json, ",");
            gen_element(g, cfg->dt[k], &r->bytes[k], bin ? NULL : &json);
        }
        ref_put_fmt(t, "%s{\"name\":\"in%zu\",\"datatype\":\"%s\",\"shape\":[%u", k ? "," : "", k,
                    cfg->dt[k]->name, rows);
        if (cfg->cols >= 0)
            ref_put_fmt(t, ",%d", cfg->cols);
        if (bin) {
            ref_put_fmt(t, "],\"parameters\":{\"binary_data_size\":%zu}}", r->bytes[k].len);
            ref_put_slice(&tail, ig_slice(r->bytes[k].base, r->bytes[k].len));
        } else {
            ref_put_fmt(t, "],\"data\":[%.*s]}", (int)json.len, json.base ? json.base : "");
        }
        ig_buf_dispose(&json);
    }
    ref_put(t, "]");
    switch ((fl >> 3) & 3) {
    case 1:
        ref_put(t, ",\"parameters\":{\"binary_data_output\":true}");
        break;
    case 2:
        ref_put(t, ",\"parameters\":{\"binary_data_output\":false}");
        break;
    case 3:
        ref_put(t, ",\"parameters\":{}");
        break;
    }
    ref_put(t, "}");
    r->header_len = any_bin || (fl & 0x20) ? (int64_t)t->len : -1;
    ref_put_slice(t, ig_slice(tail.base, tail.len));
    ig_buf_dispose(&tail);
    r->body = ig_slice(t->base, t->len);
}

static void run_binary(const uint8_t *data, size_t size, unsigned flags)
{
    gen_t gen = {data, size, 0};
    gen_cfg_t cfg;
    req_t rq[NPARTS];
    req_t *g[NPARTS];
    ig_batch_part_t *pp[NPARTS];
    char err[256];
    unsigned c = gen_byte(&gen);
    size_t np = 1 + (c >> 3) % NPARTS;

    cfg.ninputs = 1 + (c & 1);
    cfg.cols = ((c >> 1) & 3) == 3 ? -1 : (int)((c >> 1) & 3);
    for (size_t k = 0; k < cfg.ninputs; k++)
        cfg.dt[k] = ig_dtype_find(GEN_TYPES[gen_byte(&gen) % 3]);
    memset(rq, 0, sizeof(rq));
    for (size_t i = 0; i < np; i++) {
        gen_request(&gen, &cfg, i, &rq[i]);
        ig_slice_t hdr = req_header(&rq[i]);
        rq[i].parsed = jref_parse(hdr.base, hdr.len, &rq[i].doc);
        FUZZ_CHECK(rq[i].parsed, "generated header is not JSON: %.200s", hdr.base);
        err[0] = '\0';
        int rc = ig_codec_v2.parse(&rq[i].part, model_name(), rq[i].body, rq[i].header_len, err,
                                   sizeof(err));
        FUZZ_CHECK(rc == 0, "V2 refuses a well-formed binary request: %s: %.300s", err, hdr.base);
        rq[i].accepted = true;
        check_batchable(&rq[i]);
        v2_check_accepted(&rq[i]);
    }
    size_t ng = group(rq, np, g);
    FUZZ_CHECK(ng == np, "binary requests of one shape got different keys");
    for (size_t p = 0; p < ng; p++)
        pp[p] = &g[p]->part;

    /* The merge: JSON inputs stacked as JSON, binary ones (some part binary)
     * as the parts' bytes, input by input, after the header. */
    ig_buf_t out, ans, atail;
    int64_t hl = 0;
    ig_buf_init(&out, 0);
    int rc = ig_codec_v2.merge(pp, ng, &out, &hl);
    FUZZ_CHECK(rc == 0, "merge returned %d (%s)", rc, ig_err_name(rc));
    bool any_bin = false, in_bin[GEN_INPUTS] = {false};
    for (size_t k = 0; k < cfg.ninputs; k++)
        for (size_t p = 0; p < ng; p++)
            in_bin[k] |= g[p]->bin_in[k];
    for (size_t k = 0; k < cfg.ninputs; k++)
        any_bin |= in_bin[k];
    FUZZ_CHECK(any_bin ? hl >= 0 && (uint64_t)hl <= out.len : hl == -1,
               "merged header length %" PRId64, hl);
    ig_slice_t mhdr = hl >= 0 ? ig_slice(out.base, (size_t)hl) : ig_slice(out.base, out.len);
    ig_slice_t mtail = ig_slice(mhdr.base + mhdr.len, out.len - mhdr.len);
    jref_node_t m;
    FUZZ_CHECK(check_json(mhdr.base, mhdr.len, &m), "the merged header is not JSON: %.200s",
               mhdr.base);
    const jref_node_t *mins = jref_get(&m, "inputs");
    FUZZ_CHECK(mins && mins->kind == JREF_ARRAY && mins->n == cfg.ninputs, "merged inputs");
    size_t off = 0, seg[GEN_INPUTS] = {0};
    for (size_t k = 0; k < cfg.ninputs; k++) {
        const jref_node_t *mi = &mins->kids[k];
        const jref_node_t *bds = jref_get(jref_get(mi, "parameters"), "binary_data_size");
        if (!in_bin[k]) {
            FUZZ_CHECK(!bds && jref_get(mi, "data"), "merged JSON input %zu", k);
            continue;
        }
        uint64_t size;
        bool neg;
        FUZZ_CHECK(bds && jref_integer(bds, &size, &neg) && !jref_get(mi, "data"),
                   "merged input %zu is not binary", k);
        seg[k] = off;
        for (size_t p = 0; p < ng; p++) {
            const ig_buf_t *b = &g[p]->bytes[k];
            FUZZ_CHECK(off + b->len <= mtail.len &&
                           (b->len == 0 || memcmp(mtail.base + off, b->base, b->len) == 0),
                       "merged binary input %zu: part %zu's bytes are not at %zu", k, p, off);
            off += b->len;
        }
        FUZZ_CHECK(off - seg[k] == size,
                   "merged input %zu's binary_data_size is %" PRIu64 ", its bytes %zu", k, size,
                   off - seg[k]);
    }
    FUZZ_CHECK(off == mtail.len, "the merged tail has %zu bytes, the inputs %zu", mtail.len, off);

    /* The echo answer: every input as an output, binary or JSON (F_FLIP
     * turns each into the other encoding where it can be). */
    bool may_fail = false, any_out_bin = false;
    ig_buf_init(&ans, 0);
    ig_buf_init(&atail, 0);
    ref_put(&ans, "{\"model_name\":\"echo\",");
    if (flags & REF_ECHO_ID)
        ref_put(&ans, "\"id\":\"batch\",");
    ref_put(&ans, "\"outputs\":[");
    for (size_t k = 0; k < cfg.ninputs; k++) {
        const jref_node_t *mi = &mins->kids[k];
        const ig_dtype_t *dt = cfg.dt[k];
        ig_buf_t d, b;
        ig_buf_init(&d, 0);
        ig_buf_init(&b, 0);
        ig_slice_t bytes;
        if (in_bin[k]) {
            size_t len = 0;
            for (size_t p = 0; p < ng; p++)
                len += g[p]->bytes[k].len;
            bytes = ig_slice(mtail.base + seg[k], len);
        } else {
            jref_vec_t leaves = {0};
            jref_leaves(jref_get(mi, "data"), &leaves);
            FUZZ_CHECK(ref_to_binary(dt, &leaves, &b) == 1, "cannot convert merged input %zu", k);
            jref_vec_free(&leaves);
            bytes = ig_slice(b.base, b.len);
        }
        bool out_bin = in_bin[k] != ((flags & F_FLIP) != 0);
        if (!out_bin && !ref_json_able(dt, bytes))
            out_bin = true;
        if (k)
            ref_put(&ans, ",");
        any_out_bin |= out_bin;
        if (out_bin) {
            ref_v2_echo_output(&ans, mi, flags, NULL, (int64_t)bytes.len);
            ref_put_slice(&atail, bytes);
            /* A part that wants JSON must get its values as JSON. */
            for (size_t p = 0; p < ng; p++)
                if (!ref_wants_binary(&g[p]->doc, ref_str_inner(jref_get(mi, "name")), true))
                    may_fail |=
                        !ref_json_able(dt, ig_slice(g[p]->bytes[k].base, g[p]->bytes[k].len));
        } else {
            ref_bytes_to_json(dt, bytes, &d);
            ref_v2_echo_output(&ans, mi, flags, d.base, -1);
        }
        ig_buf_dispose(&d);
        ig_buf_dispose(&b);
    }
    ref_put(&ans, "]}");
    int64_t ahl = any_out_bin || (flags & REF_ECHO_WS) ? (int64_t)ans.len : -1;
    ref_put_slice(&ans, ig_slice(atail.base, atail.len));
    err[0] = '\0';
    rc = ig_codec_v2.split(ig_slice(ans.base, ans.len), ahl, pp, ng, err, sizeof(err));
    SAY("binary: %zu parts, merged header %" PRId64 " of %zu bytes, split: %d %s\n", ng, hl,
        out.len, rc, rc ? err : "");
    if (may_fail)
        FUZZ_CHECK(rc != 0, "split gave a part a NaN, an infinity or non-UTF-8 BYTES in JSON");
    v2_check_split(ig_slice(ans.base, ans.len), ahl, g, ng, rc, err, !may_fail);

    jref_free(&m);
    ig_buf_dispose(&atail);
    ig_buf_dispose(&ans);
    ig_buf_dispose(&out);
    for (size_t i = 0; i < NPARTS; i++)
        req_dispose(&rq[i]);
}

/* ---- entry ------------------------------------------------------------------------------ */

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
    int mode = data[0] & 3;
    unsigned flags = data[0] & ~3u;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;

    if (mode == MODE_JSON) {
        check_json(rest, len, NULL);
        return 0;
    }
    if (mode == MODE_V2_BINARY) {
        run_binary(data + 1, len, flags);
        return 0;
    }
    /* Up to four pieces: three bodies and, with F_ANSWER, the answer last. */
    ig_slice_t piece[4];
    size_t np = 0;
    while (np < 3) {
        const char *nul = memchr(rest, '\0', len);
        if (!nul)
            break;
        piece[np++] = ig_slice(rest, (size_t)(nul - rest));
        len -= (size_t)(nul - rest) + 1;
        rest = nul + 1;
    }
    piece[np++] = ig_slice(rest, len);
    const ig_slice_t *answer = NULL;
    if ((flags & F_ANSWER) && np >= 2)
        answer = &piece[--np];
    run_bodies(mode, piece, np, answer, flags);
    return 0;
}
