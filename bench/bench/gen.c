/*
 * gen.c: synthetic tensor requests and echo-model answers (gen.h).
 *
 * Values are float32, as most models take: a random sign, a magnitude
 * spread evenly over 10^-2 .. 10^3 on a log scale, and printed with "%.Pg"
 * where P, from 4 to 9, is drawn per value. So numbers are as long as real
 * clients make them: "-0.0123", "417.20581", "3.0518", "-0.057617187". Every
 * value stays within what infergate-model accepts (|x| <= 1e6), so the same
 * bodies serve the gateway benchmarks. Binary tensors carry the same floats
 * as raw little-endian IEEE 754 bytes, written byte by byte so that the
 * result does not depend on the host's byte order.
 */
#include "gen.h"

#include <math.h>
#include <string.h>

#include "infergate/base/error.h"

#define COLS 4
#define SAMPLE_ROWS 64
#define SAMPLE_SEED 0x5eedULL

static const char *const kind_names[IG_GEN__COUNT] = {"v1-json", "v2-json", "v2-binary"};

const char *ig_gen_kind_name(ig_gen_kind_t k)
{
    return k < IG_GEN__COUNT ? kind_names[k] : "?";
}

int ig_gen_kind_parse(const char *name, size_t len, ig_gen_kind_t *out)
{
    for (int k = 0; k < IG_GEN__COUNT; k++) {
        if (strlen(kind_names[k]) == len && strncmp(kind_names[k], name, len) == 0) {
            *out = (ig_gen_kind_t)k;
            return 0;
        }
    }
    return IG_EINVAL;
}

void ig_gen_seed(ig_gen_rng_t *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t ig_gen_next(ig_gen_rng_t *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double unit(ig_gen_rng_t *r)
{
    return (double)(ig_gen_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Draws one value: appends its text to `text` (when not NULL) and its four
 * little-endian bytes to `raw` (when not NULL). */
static void value(ig_gen_rng_t *r, ig_buf_t *text, ig_buf_t *raw)
{
    double mag = pow(10.0, unit(r) * 5.0 - 2.0);
    float f = (float)((ig_gen_next(r) & 1) ? -mag : mag);
    int prec = 4 + (int)(ig_gen_next(r) % 6);
    if (text)
        ig_buf_printf(text, "%.*g", prec, (double)f);
    if (raw) {
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        unsigned char b[4] = {(unsigned char)bits, (unsigned char)(bits >> 8),
                              (unsigned char)(bits >> 16), (unsigned char)(bits >> 24)};
        ig_buf_append(raw, b, sizeof(b));
    }
}

void ig_gen_request(ig_gen_request_t *q, ig_gen_kind_t kind, uint32_t rows, ig_gen_rng_t *r)
{
    memset(q, 0, sizeof(*q));
    q->kind = kind;
    q->rows = rows;
    q->header_len = -1;
    ig_buf_init(&q->body, 0);
    ig_buf_init(&q->values, 0);
    ig_buf_t *b = &q->body, *v = &q->values;
    switch (kind) {
    case IG_GEN_V1_JSON:
        for (uint32_t i = 0; i < rows; i++) {
            ig_buf_append_str(v, i ? ",[" : "[");
            for (int c = 0; c < COLS; c++) {
                if (c)
                    ig_buf_append(v, ",", 1);
                value(r, v, NULL);
            }
            ig_buf_append(v, "]", 1);
        }
        ig_buf_append_str(b, "{\"instances\":[");
        ig_buf_append(b, v->base, v->len);
        ig_buf_append_str(b, "]}");
        break;
    case IG_GEN_V2_JSON:
        for (uint64_t i = 0; i < (uint64_t)rows * COLS; i++) {
            if (i)
                ig_buf_append(v, ",", 1);
            value(r, v, NULL);
        }
        ig_buf_printf(b,
                      "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[%u,%d],"
                      "\"data\":[",
                      rows, COLS);
        ig_buf_append(b, v->base, v->len);
        ig_buf_append_str(b, "]}]}");
        break;
    default:
        for (uint64_t i = 0; i < (uint64_t)rows * COLS; i++)
            value(r, NULL, v);
        ig_buf_printf(b,
                      "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[%u,%d],"
                      "\"parameters\":{\"binary_data_size\":%zu}}],"
                      "\"outputs\":[{\"name\":\"x\",\"parameters\":{\"binary_data\":true}}]}",
                      rows, COLS, v->len);
        q->header_len = (int64_t)b->len;
        ig_buf_append(b, v->base, v->len);
        break;
    }
}

void ig_gen_request_dispose(ig_gen_request_t *q)
{
    ig_buf_dispose(&q->body);
    ig_buf_dispose(&q->values);
}

uint32_t ig_gen_rows_for_bytes(ig_gen_kind_t kind, size_t bytes)
{
    ig_gen_rng_t r;
    ig_gen_request_t one, many;
    ig_gen_seed(&r, SAMPLE_SEED);
    ig_gen_request(&one, kind, 1, &r);
    ig_gen_request(&many, kind, SAMPLE_ROWS, &r);
    double per_row = (double)(many.body.len - one.body.len) / (SAMPLE_ROWS - 1);
    double fixed = (double)one.body.len - per_row;
    ig_gen_request_dispose(&one);
    ig_gen_request_dispose(&many);
    double rows = per_row > 0 ? round(((double)bytes - fixed) / per_row) : 1;
    return rows < 1 ? 1 : rows > 1e8 ? 100000000u : (uint32_t)rows;
}

void ig_gen_echo_answer(const ig_gen_request_t *qs, size_t n, ig_buf_t *out, int64_t *header_len)
{
    uint64_t total = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        total += qs[i].rows;
        bytes += qs[i].values.len;
    }
    ig_buf_init(out, 0);
    *header_len = -1;
    ig_gen_kind_t kind = n ? qs[0].kind : IG_GEN_V1_JSON;
    if (kind == IG_GEN_V1_JSON)
        ig_buf_append_str(out, "{\"predictions\":[");
    else
        ig_buf_printf(out,
                      "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
                      "\"shape\":[%llu,%d],",
                      (unsigned long long)total, COLS);
    if (kind == IG_GEN_V2_BINARY) {
        ig_buf_printf(out, "\"parameters\":{\"binary_data_size\":%zu}}]}", bytes);
        *header_len = (int64_t)out->len;
        for (size_t i = 0; i < n; i++)
            ig_buf_append(out, qs[i].values.base, qs[i].values.len);
        return;
    }
    if (kind == IG_GEN_V2_JSON)
        ig_buf_append_str(out, "\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            ig_buf_append(out, ",", 1);
        ig_buf_append(out, qs[i].values.base, qs[i].values.len);
    }
    ig_buf_append_str(out, kind == IG_GEN_V1_JSON ? "],\"model_name\":\"m\"}" : "]}]}");
}
