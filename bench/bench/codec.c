/*
 * codec.c: `infergate-bench codec`, the batching codecs' throughput per core.
 *
 * One round trip is what the gateway does for one batch: parse N request
 * bodies, merge them into one call, split the model's answer to that call
 * back into N replies, and free it all. The answer is the one an echo model
 * gives (gen.h), so the split has as much tensor data to cut as the merge
 * wrote. Round trips repeat until the thread has used --seconds of CPU time
 * (CLOCK_THREAD_CPUTIME_ID, so time the scheduler gives to other processes
 * on a shared machine is not counted); throughput is the N request bodies'
 * bytes per CPU second. Each figure is the median of --rounds such runs,
 * and the rounds of the three contenders interleave, so slow drifts of the
 * machine reach all of them alike:
 *
 * - new: the gateway's codecs (include/infergate/core/codec.h), linked as the
 *   gateway links them;
 * - old: the pre-span cJSON codecs of commit 0a9a26d (bench/codecref/);
 * - memcpy: copying the N bodies into one buffer and back out into N, the
 *   floor any codec that moves the bytes must pay.
 *
 * Before timing, one round trip of each codec is checked: every request
 * parses and gets the same batch key, merge and split succeed, and every
 * reply is non-empty. A codec that marks the requests `alone` (it would send
 * each on its own, as the old codec does with binary tensors) is reported as
 * n/a with the reason, not timed.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "codecref.h"
#include "gen.h"
#include "infergate/base/buf.h"
#include "infergate/core/codec.h"
#include "infergate/base/error.h"
#include "procs.h"

#define MAX_BATCH 64
#define MAX_ROUNDS 20
#define MAX_SIZES 8
#define MIN_SIZE 64
#define MAX_SIZE (64u * 1024 * 1024)
#define DEFAULT_SEED 20240601u
#define TRIP_ALONE 1 /* a trip's result: the codec would send these requests alone */

static const char usage_codec[] =
    "usage: infergate-bench codec [flags]\n"
    "\n"
    "Measures the batching codecs per core: parse N request bodies, merge them, split an\n"
    "echo model's answer back into N replies. Reports MB/s of request bytes per CPU second\n"
    "of this thread for the gateway's codec (new), the pre-span cJSON codec (old) and\n"
    "memcpy of the same bytes in and out (the floor), and microseconds per request.\n"
    "\n"
    "  --cases LIST     any of v1-json,v2-json,v2-binary (default: all three)\n"
    "  --sizes LIST     request body sizes, bytes with an optional k (1024) or m\n"
    "                   (1048576) suffix (default 1k,10k,100k,1m)\n"
    "  --batch N        requests per batch (default 8, at most 64)\n"
    "  --seconds S      CPU seconds per measurement, at least (default 1; decimals allowed)\n"
    "  --rounds N       measurements per figure; the median is reported (default 3)\n"
    "  --seed N         seed of the generated values (default 20240601)\n"
    "  --json           one JSON object on stdout instead of the table\n"
    "  -h, --help       this text\n";

/* new/old: the whole round trip; new_ms/old_ms: merge + split alone, on
 * requests parsed beforehand (parsing happens once, on arrival; the codec
 * work of a batch call is the merge and the split). */
enum { C_NEW, C_OLD, C_MEMCPY, C_NEW_MS, C_OLD_MS, C__COUNT };
static const char *const contender_names[C__COUNT] = {"new", "old", "memcpy", "new_merge_split",
                                                      "old_merge_split"};

/* The N requests of one case and size, the echo answer to their merged
 * call, and the buffers of the memcpy floor. */
typedef struct {
    ig_gen_kind_t kind;
    size_t n;
    ig_gen_request_t q[MAX_BATCH];
    ig_buf_t answer;
    int64_t answer_header_len;
    size_t bytes; /* the N bodies together */
    char *merged;
    char *copies[MAX_BATCH];
    ig_batch_part_t *nparts;    /* parsed by the new codec, for new_ms (NULL: alone) */
    ig_refcodec_part_t *oparts; /* parsed by the old codec, for old_ms (NULL: alone) */
} fixture_t;

typedef struct {
    bool ran;
    char note[200]; /* why not, when !ran */
    double mb_s;    /* median of the rounds */
    double us_per_request;
    double rounds[MAX_ROUNDS];
    double us_rounds[MAX_ROUNDS];
} figure_t;

typedef struct {
    ig_gen_kind_t kind;
    char size_label[24];
    size_t target;
    uint32_t rows;
    double request_bytes; /* mean body length */
    size_t batch_bytes;
    figure_t fig[C__COUNT];
} result_t;

typedef struct {
    ig_gen_kind_t cases[IG_GEN__COUNT];
    size_t ncases;
    size_t sizes[MAX_SIZES];
    char size_labels[MAX_SIZES][24];
    size_t nsizes;
    unsigned batch, rounds;
    double seconds;
    uint64_t seed;
    bool json;
    result_t results[IG_GEN__COUNT * MAX_SIZES];
    size_t nresults;
} codec_bench_t;

/* ---- flags ------------------------------------------------------------------ */

static int parse_sizes(codec_bench_t *b, const char *v, char *err, size_t errlen)
{
    b->nsizes = 0;
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",");
        size_t k = 0;
        uint64_t n = 0;
        while (k < len && p[k] >= '0' && p[k] <= '9' && n < MAX_SIZE)
            n = n * 10 + (uint64_t)(p[k++] - '0');
        uint64_t mul = 1;
        if (k < len && (p[k] == 'k' || p[k] == 'K'))
            mul = 1024;
        else if (k < len && (p[k] == 'm' || p[k] == 'M'))
            mul = 1024 * 1024;
        if (mul > 1)
            k++;
        bool digits = k > 0 && p[0] >= '0' && p[0] <= '9';
        if (!digits || k != len || len >= sizeof(b->size_labels[0]) || n * mul < MIN_SIZE ||
            n * mul > MAX_SIZE || b->nsizes == MAX_SIZES) {
            snprintf(err, errlen,
                     "--sizes: expected up to %d sizes from 64 to 64m, like 1k,10k,100k,1m; "
                     "got '%.*s'",
                     MAX_SIZES, (int)len, p);
            return IG_EINVAL;
        }
        b->sizes[b->nsizes] = (size_t)(n * mul);
        snprintf(b->size_labels[b->nsizes], sizeof(b->size_labels[0]), "%.*s", (int)len, p);
        b->nsizes++;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

static int parse_cases(codec_bench_t *b, const char *v, char *err, size_t errlen)
{
    b->ncases = 0;
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",");
        ig_gen_kind_t k;
        bool dup = false;
        if (ig_gen_kind_parse(p, len, &k) == 0)
            for (size_t i = 0; i < b->ncases; i++)
                dup |= b->cases[i] == k;
        if (ig_gen_kind_parse(p, len, &k) < 0 || dup) {
            snprintf(err, errlen,
                     "--cases: %s '%.*s' (expected any of v1-json, v2-json, v2-binary)",
                     dup ? "repeated case" : "unknown case", (int)len, p);
            return IG_EINVAL;
        }
        b->cases[b->ncases++] = k;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

static int parse(codec_bench_t *b, int argc, char **argv, char *err, size_t errlen)
{
    uint64_t u;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (!strcmp(a, "--json")) {
            b->json = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--cases", &v, err, errlen))) {
            if (m < 0 || parse_cases(b, v, err, errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--sizes", &v, err, errlen))) {
            if (m < 0 || parse_sizes(b, v, err, errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--batch", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--batch", v, 1, MAX_BATCH, &u, err, errlen) < 0)
                return IG_EINVAL;
            b->batch = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--seconds", &v, err, errlen))) {
            if (m < 0 || ig_cli_number("--seconds", v, 0.001, 3600, &b->seconds, err, errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--rounds", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--rounds", v, 1, MAX_ROUNDS, &u, err, errlen) < 0)
                return IG_EINVAL;
            b->rounds = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--seed", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--seed", v, 0, UINT64_MAX, &b->seed, err, errlen) < 0)
                return IG_EINVAL;
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench codec --help)", a);
            return IG_EINVAL;
        }
    }
    return 0;
}

/* ---- fixtures ----------------------------------------------------------------- */

static const ig_slice_t model_name = IG_SLICE_LIT("m");

static ig_slice_t body_of(const ig_gen_request_t *q);

static void fixture_init(fixture_t *f, ig_gen_kind_t kind, size_t n, uint32_t rows, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    f->kind = kind;
    f->n = n;
    ig_gen_rng_t r;
    ig_gen_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        ig_gen_request(&f->q[i], kind, rows, &r);
        f->bytes += f->q[i].body.len;
        f->copies[i] = ig_xmalloc(f->q[i].body.len + 1);
    }
    f->merged = ig_xmalloc(f->bytes + 1);
    ig_gen_echo_answer(f->q, n, &f->answer, &f->answer_header_len);
    /* Parsed once for the merge + split figures. */
    const ig_codec_t *nc = kind == IG_GEN_V1_JSON ? &ig_codec_v1 : &ig_codec_v2;
    const ig_refcodec_t *oc = kind == IG_GEN_V1_JSON ? &ig_refcodec_v1 : &ig_refcodec_v2;
    char msg[256];
    f->nparts = ig_xcalloc(n, sizeof(*f->nparts));
    f->oparts = ig_xcalloc(n, sizeof(*f->oparts));
    bool nok = true, ook = true;
    for (size_t i = 0; i < n; i++) {
        nok = nok &&
              nc->parse(&f->nparts[i], model_name, body_of(&f->q[i]), f->q[i].header_len, msg,
                        sizeof(msg)) == 0 &&
              !f->nparts[i].alone;
        ook = ook &&
              oc->parse(&f->oparts[i], model_name, body_of(&f->q[i]), f->q[i].header_len >= 0, msg,
                        sizeof(msg)) == 0 &&
              !f->oparts[i].alone;
    }
    if (!nok) {
        for (size_t i = 0; i < n; i++)
            ig_batch_part_dispose(&f->nparts[i]);
        free(f->nparts);
        f->nparts = NULL;
    }
    if (!ook) {
        for (size_t i = 0; i < n; i++)
            ig_refcodec_part_dispose(&f->oparts[i]);
        free(f->oparts);
        f->oparts = NULL;
    }
}

static void fixture_dispose(fixture_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        ig_gen_request_dispose(&f->q[i]);
        free(f->copies[i]);
    }
    free(f->merged);
    ig_buf_dispose(&f->answer);
    for (size_t i = 0; f->nparts && i < f->n; i++)
        ig_batch_part_dispose(&f->nparts[i]);
    for (size_t i = 0; f->oparts && i < f->n; i++)
        ig_refcodec_part_dispose(&f->oparts[i]);
    free(f->nparts);
    free(f->oparts);
}

static ig_slice_t body_of(const ig_gen_request_t *q)
{
    return ig_slice(q->body.base, q->body.len);
}

/* ---- one round trip per contender ----------------------------------------------- */

typedef int (*trip_fn)(const fixture_t *f, bool check, char *err, size_t errlen);

/* The gateway's codec. With `check`, also verifies what the timed runs rely on. */
static int trip_new(const fixture_t *f, bool check, char *err, size_t errlen)
{
    const ig_codec_t *codec = f->kind == IG_GEN_V1_JSON ? &ig_codec_v1 : &ig_codec_v2;
    ig_batch_part_t parts[MAX_BATCH];
    ig_batch_part_t *pp[MAX_BATCH];
    char msg[256] = "";
    int rc = 0;
    memset(parts, 0, sizeof(parts[0]) * f->n);
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        pp[i] = &parts[i];
        rc = codec->parse(&parts[i], model_name, body_of(&f->q[i]), f->q[i].header_len, msg,
                          sizeof(msg));
        if (rc)
            snprintf(err, errlen, "new %s codec: request %zu does not parse: %s", codec->name, i,
                     msg);
        else if (parts[i].alone)
            rc = TRIP_ALONE;
        else if (check && i > 0 &&
                 (parts[i].key.len != parts[0].key.len ||
                  memcmp(parts[i].key.base, parts[0].key.base, parts[0].key.len) != 0)) {
            snprintf(err, errlen, "new %s codec: request %zu got another batch key than request 0",
                     codec->name, i);
            rc = IG_EINVAL;
        }
    }
    ig_buf_t out;
    ig_buf_init(&out, 0);
    int64_t header_len = -1;
    if (rc == 0 && (rc = codec->merge(pp, f->n, &out, &header_len)) != 0)
        snprintf(err, errlen, "new %s codec: merge failed: %s", codec->name, ig_strerror(rc));
    if (rc == 0 && (rc = codec->split(ig_slice(f->answer.base, f->answer.len), f->answer_header_len,
                                      pp, f->n, msg, sizeof(msg))) != 0)
        snprintf(err, errlen, "new %s codec: split failed: %s", codec->name, msg);
    for (size_t i = 0; check && rc == 0 && i < f->n; i++) {
        if (parts[i].reply.len == 0) {
            snprintf(err, errlen, "new %s codec: reply %zu is empty", codec->name, i);
            rc = IG_EINVAL;
        }
    }
    for (size_t i = 0; i < f->n; i++)
        ig_batch_part_dispose(&parts[i]);
    ig_buf_dispose(&out);
    return rc;
}

/* The pre-span cJSON codec, through its own (older) interface. */
static int trip_old(const fixture_t *f, bool check, char *err, size_t errlen)
{
    const ig_refcodec_t *codec = f->kind == IG_GEN_V1_JSON ? &ig_refcodec_v1 : &ig_refcodec_v2;
    ig_refcodec_part_t parts[MAX_BATCH];
    ig_refcodec_part_t *pp[MAX_BATCH];
    char msg[256] = "";
    int rc = 0;
    memset(parts, 0, sizeof(parts[0]) * f->n);
    for (size_t i = 0; i < f->n && rc == 0; i++) {
        pp[i] = &parts[i];
        rc = codec->parse(&parts[i], model_name, body_of(&f->q[i]), f->q[i].header_len >= 0, msg,
                          sizeof(msg));
        if (rc)
            snprintf(err, errlen, "old %s codec: request %zu does not parse: %s", codec->name, i,
                     msg);
        else if (parts[i].alone)
            rc = TRIP_ALONE;
        else if (check && i > 0 &&
                 (parts[i].key.len != parts[0].key.len ||
                  memcmp(parts[i].key.base, parts[0].key.base, parts[0].key.len) != 0)) {
            snprintf(err, errlen, "old %s codec: request %zu got another batch key than request 0",
                     codec->name, i);
            rc = IG_EINVAL;
        }
    }
    ig_buf_t out;
    ig_buf_init(&out, 0);
    if (rc == 0 && (rc = codec->merge(pp, f->n, &out)) != 0)
        snprintf(err, errlen, "old %s codec: merge failed: %s", codec->name, ig_strerror(rc));
    if (rc == 0 && (rc = codec->split(ig_slice(f->answer.base, f->answer.len), pp, f->n, msg,
                                      sizeof(msg))) != 0)
        snprintf(err, errlen, "old %s codec: split failed: %s", codec->name, msg);
    for (size_t i = 0; check && rc == 0 && i < f->n; i++) {
        if (parts[i].reply.len == 0) {
            snprintf(err, errlen, "old %s codec: reply %zu is empty", codec->name, i);
            rc = IG_EINVAL;
        }
    }
    for (size_t i = 0; i < f->n; i++)
        ig_refcodec_part_dispose(&parts[i]);
    ig_buf_dispose(&out);
    return rc;
}

/* Merge + split of the new codec on the fixture's parsed requests. */
static int trip_new_ms(const fixture_t *f, bool check, char *err, size_t errlen)
{
    ig_batch_part_t *pp[MAX_BATCH];
    char msg[256] = "";
    int64_t header_len = -1;
    ig_buf_t out;
    int rc;
    if (!f->nparts)
        return TRIP_ALONE;
    for (size_t i = 0; i < f->n; i++)
        pp[i] = &f->nparts[i];
    ig_buf_init(&out, 0);
    const ig_codec_t *codec = f->kind == IG_GEN_V1_JSON ? &ig_codec_v1 : &ig_codec_v2;
    if ((rc = codec->merge(pp, f->n, &out, &header_len)) != 0)
        snprintf(err, errlen, "new codec: merge failed: %s", ig_strerror(rc));
    else if ((rc = codec->split(ig_slice(f->answer.base, f->answer.len), f->answer_header_len, pp,
                                f->n, msg, sizeof(msg))) != 0)
        snprintf(err, errlen, "new codec: split failed: %s", msg);
    for (size_t i = 0; check && rc == 0 && i < f->n; i++)
        if (f->nparts[i].reply.len == 0) {
            snprintf(err, errlen, "new codec: reply %zu is empty", i);
            rc = IG_EINVAL;
        }
    for (size_t i = 0; i < f->n; i++)
        ig_buf_dispose(&f->nparts[i].reply);
    ig_buf_dispose(&out);
    return rc;
}

/* The same for the old codec. */
static int trip_old_ms(const fixture_t *f, bool check, char *err, size_t errlen)
{
    ig_refcodec_part_t *pp[MAX_BATCH];
    char msg[256] = "";
    ig_buf_t out;
    int rc;
    if (!f->oparts)
        return TRIP_ALONE;
    for (size_t i = 0; i < f->n; i++)
        pp[i] = &f->oparts[i];
    ig_buf_init(&out, 0);
    const ig_refcodec_t *codec = f->kind == IG_GEN_V1_JSON ? &ig_refcodec_v1 : &ig_refcodec_v2;
    if ((rc = codec->merge(pp, f->n, &out)) != 0)
        snprintf(err, errlen, "old codec: merge failed: %s", ig_strerror(rc));
    else if ((rc = codec->split(ig_slice(f->answer.base, f->answer.len), pp, f->n, msg,
                                sizeof(msg))) != 0)
        snprintf(err, errlen, "old codec: split failed: %s", msg);
    for (size_t i = 0; check && rc == 0 && i < f->n; i++)
        if (f->oparts[i].reply.len == 0) {
            snprintf(err, errlen, "old codec: reply %zu is empty", i);
            rc = IG_EINVAL;
        }
    for (size_t i = 0; i < f->n; i++)
        ig_buf_dispose(&f->oparts[i].reply);
    ig_buf_dispose(&out);
    return rc;
}

/* Tells the compiler that the memory behind `p` is read, so the copies
 * into it cannot be optimised away. */
static void clobber(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* The floor: the N bodies into one buffer, then back out into N. */
static int trip_memcpy(const fixture_t *f, bool check, char *err, size_t errlen)
{
    (void)check;
    (void)err;
    (void)errlen;
    size_t off = 0;
    for (size_t i = 0; i < f->n; i++) {
        memcpy(f->merged + off, f->q[i].body.base, f->q[i].body.len);
        off += f->q[i].body.len;
    }
    clobber(f->merged);
    off = 0;
    for (size_t i = 0; i < f->n; i++) {
        memcpy(f->copies[i], f->merged + off, f->q[i].body.len);
        off += f->q[i].body.len;
        clobber(f->copies[i]);
    }
    return 0;
}

static const trip_fn trips[C__COUNT] = {trip_new, trip_old, trip_memcpy, trip_new_ms, trip_old_ms};

/* ---- timing ----------------------------------------------------------------------- */

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs round trips until `seconds` of thread CPU time have gone by. The
 * clock is read after a growing number of trips (doubling while a group
 * takes under 2 ms), so reading it costs nothing measurable. */
static int measure(trip_fn fn, const fixture_t *f, double seconds, double *mb_s, double *us_req,
                   char *err, size_t errlen)
{
    uint64_t trips_done = 0, step = 1;
    double t0 = thread_cpu_s(), t = t0;
    for (;;) {
        double group0 = t;
        for (uint64_t k = 0; k < step; k++) {
            int rc = fn(f, false, err, errlen);
            if (rc != 0)
                return rc < 0 ? rc : IG_EINVAL;
        }
        trips_done += step;
        t = thread_cpu_s();
        if (t - t0 >= seconds)
            break;
        if (ig_bench_interrupted())
            return IG_ECANCELED;
        if (t - group0 < 0.002 && step < (1u << 20))
            step *= 2;
    }
    double cpu = t - t0;
    *mb_s = (double)trips_done * (double)f->bytes / cpu / 1e6;
    *us_req = cpu * 1e6 / ((double)trips_done * (double)f->n);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int run_case(codec_bench_t *b, result_t *res, char *err, size_t errlen)
{
    fixture_t *f = ig_xmalloc(sizeof(*f));
    res->rows = ig_gen_rows_for_bytes(res->kind, res->target);
    fixture_init(f, res->kind, b->batch, res->rows, b->seed);
    res->batch_bytes = f->bytes;
    res->request_bytes = (double)f->bytes / (double)f->n;
    int rc = 0;
    for (int c = 0; c < C__COUNT && rc == 0; c++) {
        figure_t *fig = &res->fig[c];
        rc = trips[c](f, true, err, errlen);
        fig->ran = rc == 0;
        if (rc == TRIP_ALONE) {
            snprintf(fig->note, sizeof(fig->note),
                     "the %s codec sends %s requests alone (it cannot batch them)",
                     c == C_OLD_MS   ? "old"
                     : c == C_NEW_MS ? "new"
                                     : contender_names[c],
                     ig_gen_kind_name(res->kind));
            rc = 0;
        }
    }
    for (unsigned r = 0; r < b->rounds && rc == 0; r++)
        for (int c = 0; c < C__COUNT && rc == 0; c++)
            if (res->fig[c].ran)
                rc = measure(trips[c], f, b->seconds, &res->fig[c].rounds[r],
                             &res->fig[c].us_rounds[r], err, errlen);
    for (int c = 0; c < C__COUNT && rc == 0; c++) {
        figure_t *fig = &res->fig[c];
        fig->mb_s = fig->ran ? median(fig->rounds, b->rounds) : NAN;
        fig->us_per_request = fig->ran ? median(fig->us_rounds, b->rounds) : NAN;
    }
    fixture_dispose(f);
    free(f);
    return rc;
}

static int run(codec_bench_t *b, char *err, size_t errlen)
{
    for (size_t k = 0; k < b->ncases; k++) {
        for (size_t s = 0; s < b->nsizes; s++) {
            result_t *res = &b->results[b->nresults];
            memset(res, 0, sizeof(*res));
            res->kind = b->cases[k];
            res->target = b->sizes[s];
            snprintf(res->size_label, sizeof(res->size_label), "%s", b->size_labels[s]);
            int rc = run_case(b, res, err, errlen);
            if (rc < 0)
                return rc;
            b->nresults++;
            fprintf(stderr, "infergate-bench: codec %s %s (%u rows, %.0f bytes/request):",
                    ig_gen_kind_name(res->kind), res->size_label, res->rows, res->request_bytes);
            for (int c = 0; c < C__COUNT; c++) {
                if (res->fig[c].ran)
                    fprintf(stderr, " %s %.1f MB/s", contender_names[c], res->fig[c].mb_s);
                else
                    fprintf(stderr, " %s n/a", contender_names[c]);
            }
            fprintf(stderr, "\n");
        }
    }
    return 0;
}

/* ---- reports ------------------------------------------------------------------------- */

/* A figure right-aligned in `width`, or "n/a" (a 32-byte buffer). */
static const char *cell(char *buf, int width, int prec, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, 32, "%*s", width, "n/a");
    else
        snprintf(buf, 32, "%*.*f", width, prec, v);
    return buf;
}

static void print_table(const codec_bench_t *b)
{
    ig_bench_machine_print();
    printf("round trip: parse %u requests, merge them, split the echo answer into %u replies "
           "(new, old);\nm+s: merge and split alone, on requests parsed beforehand;\n"
           "MB/s = request body bytes per CPU second of this thread, median of %u round(s) of "
           "at least %.3g s\n\n",
           b->batch, b->batch, b->rounds, b->seconds);
    printf("%-10s %6s %8s %10s %10s %10s %8s %10s %10s %9s %11s %10s %10s %10s\n", "case", "size",
           "rows", "bytes/req", "new MB/s", "old MB/s", "new/old", "new m+s", "old m+s",
           "m+s ratio", "memcpy MB/s", "new/memcpy", "new us/req", "old us/req");
    for (size_t k = 0; k < b->nresults; k++) {
        const result_t *r = &b->results[k];
        const figure_t *nw = &r->fig[C_NEW], *old = &r->fig[C_OLD], *mc = &r->fig[C_MEMCPY];
        const figure_t *nms = &r->fig[C_NEW_MS], *oms = &r->fig[C_OLD_MS];
        char c[10][32];
        printf("%-10s %6s %8u %10.0f %s %s %s %s %s %s %s %s %s %s\n", ig_gen_kind_name(r->kind),
               r->size_label, r->rows, r->request_bytes, cell(c[0], 10, 1, nw->mb_s),
               cell(c[1], 10, 1, old->mb_s), cell(c[2], 8, 2, ig_bench_ratio(nw->mb_s, old->mb_s)),
               cell(c[3], 10, 1, nms->mb_s), cell(c[4], 10, 1, oms->mb_s),
               cell(c[5], 9, 2, ig_bench_ratio(nms->mb_s, oms->mb_s)), cell(c[6], 11, 1, mc->mb_s),
               cell(c[7], 10, 3, ig_bench_ratio(nw->mb_s, mc->mb_s)),
               cell(c[8], 10, 2, nw->us_per_request), cell(c[9], 10, 2, old->us_per_request));
    }
    /* Each reason for an n/a once. */
    const char *notes[IG_GEN__COUNT * MAX_SIZES * C__COUNT];
    size_t nnotes = 0;
    for (size_t k = 0; k < b->nresults; k++) {
        for (int c = 0; c < C__COUNT; c++) {
            const figure_t *fig = &b->results[k].fig[c];
            bool seen = fig->ran;
            for (size_t j = 0; j < nnotes && !seen; j++)
                seen = !strcmp(notes[j], fig->note);
            if (!seen)
                notes[nnotes++] = fig->note;
        }
    }
    if (nnotes)
        printf("\n");
    for (size_t j = 0; j < nnotes; j++)
        printf("n/a: %s\n", notes[j]);
}

static cJSON *figure_json(const figure_t *fig, unsigned rounds)
{
    if (!fig->ran)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    ig_bench_json_number(o, "mb_s", fig->mb_s);
    ig_bench_json_number(o, "us_per_request", fig->us_per_request);
    cJSON *arr = cJSON_AddArrayToObject(o, "rounds_mb_s");
    for (unsigned r = 0; r < rounds; r++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(fig->rounds[r]));
    return o;
}

static void print_json(const codec_bench_t *b)
{
    cJSON *j = cJSON_CreateObject();
    ig_bench_machine_json(j);
    cJSON *cfg = cJSON_AddObjectToObject(j, "config");
    cJSON_AddNumberToObject(cfg, "batch", b->batch);
    cJSON_AddNumberToObject(cfg, "seconds", b->seconds);
    cJSON_AddNumberToObject(cfg, "rounds", b->rounds);
    cJSON_AddNumberToObject(cfg, "seed", (double)b->seed);
    cJSON *arr = cJSON_AddArrayToObject(j, "results");
    for (size_t k = 0; k < b->nresults; k++) {
        const result_t *r = &b->results[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "case", ig_gen_kind_name(r->kind));
        cJSON_AddStringToObject(o, "size", r->size_label);
        cJSON_AddNumberToObject(o, "target_bytes", (double)r->target);
        cJSON_AddNumberToObject(o, "rows", r->rows);
        cJSON_AddNumberToObject(o, "request_bytes", r->request_bytes);
        cJSON_AddNumberToObject(o, "batch_bytes", (double)r->batch_bytes);
        cJSON *notes = cJSON_CreateObject();
        for (int c = 0; c < C__COUNT; c++) {
            cJSON_AddItemToObject(o, contender_names[c], figure_json(&r->fig[c], b->rounds));
            if (!r->fig[c].ran)
                cJSON_AddStringToObject(notes, contender_names[c], r->fig[c].note);
        }
        cJSON_AddItemToObject(o, "notes", notes);
        ig_bench_json_number(o, "new_vs_old",
                             ig_bench_ratio(r->fig[C_NEW].mb_s, r->fig[C_OLD].mb_s));
        ig_bench_json_number(o, "merge_split_new_vs_old",
                             ig_bench_ratio(r->fig[C_NEW_MS].mb_s, r->fig[C_OLD_MS].mb_s));
        ig_bench_json_number(o, "new_vs_memcpy",
                             ig_bench_ratio(r->fig[C_NEW].mb_s, r->fig[C_MEMCPY].mb_s));
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(j);
    puts(s);
    free(s);
    cJSON_Delete(j);
}

int ig_bench_codec(int argc, char **argv)
{
    if (ig_bench_help(argc, argv, usage_codec))
        return 0;
    codec_bench_t *b = ig_xcalloc(1, sizeof(*b));
    b->batch = 8;
    b->rounds = 3;
    b->seconds = 1;
    b->seed = DEFAULT_SEED;
    char err[1024];
    if (parse_cases(b, "v1-json,v2-json,v2-binary", err, sizeof(err)) < 0 ||
        parse_sizes(b, "1k,10k,100k,1m", err, sizeof(err)) < 0 ||
        parse(b, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench codec: %s\n", err);
        free(b);
        return IG_BENCH_EXIT_USAGE;
    }
    int code = ig_bench_exit_code("codec", run(b, err, sizeof(err)), err);
    if (code == IG_BENCH_EXIT_OK) {
        if (b->json)
            print_json(b);
        else
            print_table(b);
    }
    free(b);
    return code;
}
