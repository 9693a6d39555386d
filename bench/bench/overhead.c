/*
 * overhead.c: `infergate-bench overhead`, the gateway's CPU per request on a
 * batching route against a passthrough route, same model, same load.
 *
 * One infergate-model (no cost by default, so the gateway is the bottleneck
 * and its own work is what is measured) stays up. For every generated body
 * (KServe V1 and OIP V2 FP32 JSON, gen.h, at each --rows) two gateways run
 * in turn, each started fresh with the same upstream and queue settings:
 *
 * - batching: the routes /v1/models/{model}:predict (kserve-v1) and
 *   /v2/models/{model}/infer (oip-v2) with the --batch-max-* settings, and
 *   the catch-all passthrough route;
 * - passthrough: the catch-all passthrough route only, so the same paths
 *   are forwarded as they are. Routes cannot rewrite paths, so a second
 *   route on one gateway could not reach the same model paths.
 *
 * Each gets a warm-up load of its own, then the measured load. The
 * gateway's CPU time is utime + stime of its process from /proc/PID/stat
 * (every thread, in clock ticks), read right before and right after the
 * measured load, and divided by the answers of that load. The batch sizes
 * come from the gateway's own infergate_batch_size histogram (sum / count on
 * the route, read at the same two moments). A run with errors or non-200
 * answers is a failure: its CPU per request would not mean what it says.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "gen.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "peers.h"

#define MAX_ROWS_VALUES 8
#define BATCH_MAX_SIZE 4096 /* the gateway's bound on batch.max_size (config_routes.c) */
#define BODY_SEED 20240601u

static const char usage_overhead[] =
    "usage: infergate-bench overhead [flags]\n"
    "\n"
    "Starts one infergate-model and, in turn, an infergate with batching routes and one\n"
    "with only a passthrough route, sends each the same keep-alive load and reports the\n"
    "gateway's CPU time per request (utime + stime from /proc/PID/stat) on both.\n"
    "\n"
    "  --rows LIST               rows of 4 floats per request body, for a V1 and a V2 JSON\n"
    "                            body each (default 256,2048: about 10 KB and 80 KB)\n"
    "  --batch-max-size N        requests per batch: the batching routes get\n"
    "                            batch.max_size = N x rows, at most 4096 (default 8)\n"
    "  --batch-max-delay-us N    batch.max_delay_us of the batching routes (default 500)\n"
    "  --upstream-concurrency N  upstream.max_concurrency of both gateways (default 4)\n"
    "  --model-args 'FLAGS'      infergate-model flags (default '--max-concurrency 0')\n"
    "  --connections N           keep-alive connections (default 32)\n"
    "  --duration S              seconds of measured load per run (default 10)\n"
    "  --warmup S                unmeasured load before each run (default 1)\n"
    "  --header 'K: V'           extra request header, repeatable\n"
    "  --gateway PATH, --model PATH   the binaries (default: next to infergate-bench)\n"
    "  --keep-dir                keep the temp dir with configs and logs\n"
    "  --json                    one JSON object on stdout instead of the table\n"
    "  -h, --help                this text\n";

enum { SIDE_BATCHING, SIDE_PASSTHROUGH, SIDE__COUNT };
static const char *const side_names[SIDE__COUNT] = {"batching", "passthrough"};

typedef struct {
    const char *route; /* the route the load goes to, as the metrics label it */
    ig_load_result_t r;
    double cpu_s;           /* gateway utime + stime over the measured load */
    double cpu_us_per_req;  /* cpu_s / answers */
    uint64_t calls;         /* calls to the model (infergate_batch_size count) */
    double mean_batch_rows; /* rows per call; NAN on passthrough */
} side_t;

typedef struct {
    ig_gen_kind_t kind;
    uint32_t rows;
    ig_gen_request_t body;
    uint64_t max_size; /* batch.max_size of the batching routes, in rows */
    side_t side[SIDE__COUNT];
    bool ran;
} body_run_t;

typedef struct {
    ig_bench_setup_t base; /* the load, the model, the binaries */
    uint64_t rows[MAX_ROWS_VALUES];
    size_t nrows;
    uint64_t batch_requests, max_delay_us, upstream_concurrency;
    body_run_t runs[MAX_ROWS_VALUES * 2];
    size_t nruns;
} overhead_t;

static const ig_gen_kind_t kinds[] = {IG_GEN_V1_JSON, IG_GEN_V2_JSON};

/* ---- flags -------------------------------------------------------------------- */

/* The request flags `compare` and `sweep` take, which make no sense here:
 * the bodies are generated and go to fixed paths. */
static bool refused_flag(const char *a)
{
    static const char *const refused[] = {"--path", "--body", "--body-file", "--method", NULL};
    for (size_t k = 0; refused[k]; k++) {
        size_t n = strlen(refused[k]);
        if (!strncmp(a, refused[k], n) && (a[n] == '\0' || a[n] == '='))
            return true;
    }
    return false;
}

static int parse(overhead_t *o, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (refused_flag(a)) {
            snprintf(err, errlen,
                     "%s: not taken by overhead, which generates its bodies (see --rows)", a);
            return IG_EINVAL;
        }
        if ((m = ig_bench_setup_flag(argc, argv, &i, &o->base, err, errlen)) != 0) {
            if (m < 0)
                return m;
            continue;
        }
        if ((m = ig_cli_match(argc, argv, &i, "--rows", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint_list("--rows", v, 1, 65536, o->rows, MAX_ROWS_VALUES,
                                          &o->nrows, err, errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--batch-max-size", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--batch-max-size", v, 1, BATCH_MAX_SIZE, &o->batch_requests,
                                     err, errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--batch-max-delay-us", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--batch-max-delay-us", v, 0, 10000000, &o->max_delay_us, err,
                                     errlen) < 0)
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--upstream-concurrency", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--upstream-concurrency", v, 1, 65535,
                                     &o->upstream_concurrency, err, errlen) < 0)
                return IG_EINVAL;
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench overhead --help)", a);
            return IG_EINVAL;
        }
    }
    o->base.load.method = "POST";
    ig_load_default_content_type(&o->base.load, "application/json");
    return 0;
}

/* ---- gateway configs ------------------------------------------------------------ */

static void add_route(cJSON *routes, const char *match, const char *protocol, uint64_t max_size,
                      uint64_t delay_us)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "match", match);
    cJSON_AddStringToObject(r, "protocol", protocol);
    if (max_size) {
        cJSON *b = cJSON_AddObjectToObject(r, "batch");
        cJSON_AddNumberToObject(b, "max_size", (double)max_size);
        cJSON_AddNumberToObject(b, "max_delay_us", (double)delay_us);
    }
    cJSON_AddItemToArray(routes, r);
}

static const char route_v1[] = "/v1/models/{model}:predict";
static const char route_v2[] = "/v2/models/{model}/infer";
static const char route_all[] = "/*";

/* Both gateways share everything but the routes: the same concurrency
 * towards the model, and a queue that holds every connection's request. */
static cJSON *gateway_config(const overhead_t *o, int side, uint64_t max_size)
{
    cJSON *cfg = cJSON_CreateObject();
    cJSON *up = cJSON_AddObjectToObject(cfg, "upstream");
    cJSON_AddNumberToObject(up, "max_concurrency", (double)o->upstream_concurrency);
    cJSON_AddNumberToObject(up, "max_connections",
                            (double)(o->upstream_concurrency < 64 ? 64 : o->upstream_concurrency));
    cJSON *lim = cJSON_AddObjectToObject(cfg, "limits");
    cJSON_AddNumberToObject(lim, "max_queue", (double)o->base.load.connections + 1024);
    cJSON_AddNumberToObject(lim, "max_connections", (double)o->base.load.connections + 1000);
    cJSON *routes = cJSON_AddArrayToObject(cfg, "routes");
    if (side == SIDE_BATCHING) {
        add_route(routes, route_v1, "kserve-v1", max_size, o->max_delay_us);
        add_route(routes, route_v2, "oip-v2", max_size, o->max_delay_us);
    }
    add_route(routes, route_all, "passthrough", 0, 0);
    return cfg;
}

/* ---- what the gateway reports about itself -------------------------------------- */

/* utime + stime of `pid` in seconds (fields 14 and 15 of /proc/PID/stat,
 * counted after the parenthesised command name, which may hold blanks). */
static int proc_cpu_s(pid_t pid, double *out)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return IG_ENOTFOUND;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    if (!p)
        return IG_EPARSE;
    p++;
    unsigned long long v[13] = {0};
    /* After ')': field 3 (state) is a letter, then 4..15 are numbers. */
    while (*p == ' ')
        p++;
    if (*p)
        p++;
    for (int k = 0; k < 12; k++) {
        char *end;
        v[k] = strtoull(p, &end, 10);
        if (end == p)
            return IG_EPARSE;
        p = end;
    }
    long tick = sysconf(_SC_CLK_TCK);
    *out = (double)(v[10] + v[11]) / (double)(tick > 0 ? tick : 100);
    return 0;
}

/* The value of the sample `name{route="label"}` in a Prometheus text body. */
static bool metric_value(const char *body, const char *name, const char *label, double *out)
{
    char key[512];
    snprintf(key, sizeof(key), "%s{route=\"%s\"} ", name, label);
    size_t klen = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, klen)) {
            char *end;
            *out = strtod(p + klen, &end);
            return end != p + klen;
        }
    }
    return false;
}

typedef struct {
    double cpu_s;
    double batch_sum, batch_count;
} gw_sample_t;

static int sample(const ig_peer_t *gw, const char *route, gw_sample_t *s, char *err, size_t errlen)
{
    int rc = proc_cpu_s(gw->proc.pid, &s->cpu_s);
    if (rc < 0) {
        snprintf(err, errlen, "cannot read /proc/%d/stat of the gateway: %s", (int)gw->proc.pid,
                 ig_strerror(rc));
        return rc;
    }
    char *body = NULL;
    int status = 0;
    rc = ig_proc_http_get(gw->admin_port, "/metrics", &status, &body);
    if (rc == 0 && status != 200)
        rc = IG_EPROTO;
    if (rc == 0 && (!metric_value(body, "infergate_batch_size_sum", route, &s->batch_sum) ||
                    !metric_value(body, "infergate_batch_size_count", route, &s->batch_count)))
        rc = IG_ENOTFOUND;
    if (rc < 0)
        snprintf(err, errlen,
                 "gateway admin GET /metrics on port %d: %s (status %d; looked for "
                 "infergate_batch_size{route=\"%s\"})",
                 gw->admin_port, ig_strerror(rc), status, route);
    free(body);
    return rc;
}

/* ---- running ---------------------------------------------------------------------- */

static const char *body_path(ig_gen_kind_t kind)
{
    return kind == IG_GEN_V1_JSON ? "/v1/models/iris:predict" : "/v2/models/iris/infer";
}

static int check_answers(const body_run_t *b, int side, char *err, size_t errlen)
{
    const ig_load_result_t *r = &b->side[side].r;
    uint64_t bad = r->responses - r->by_status[200];
    if (r->by_status[200] > 0 && bad == 0 && r->errors_total == 0)
        return 0;
    int other = 0;
    for (int st = 100; st < 600 && !other; st++)
        if (st != 200 && r->by_status[st])
            other = st;
    snprintf(err, errlen,
             "%s %u rows on the %s gateway (route %s): %llu answers, %llu of them not 200 "
             "(e.g. %d), %llu errors; see the gateway log (--keep-dir)",
             ig_gen_kind_name(b->kind), b->rows, side_names[side], b->side[side].route,
             (unsigned long long)r->responses, (unsigned long long)bad, other,
             (unsigned long long)r->errors_total);
    return IG_EUPSTREAM;
}

static int run_side(overhead_t *o, body_run_t *b, int side, int model_port, char *err,
                    size_t errlen)
{
    side_t *sd = &b->side[side];
    sd->route = side == SIDE_PASSTHROUGH    ? route_all
                : b->kind == IG_GEN_V1_JSON ? route_v1
                                            : route_v2;
    cJSON *cfg = gateway_config(o, side, b->max_size);
    ig_peer_t gw = {.kind = IG_PEER_INFERGATE};
    int rc =
        ig_peer_start(&o->base.env, &gw, model_port, o->base.load.connections, cfg, err, errlen);
    cJSON_Delete(cfg);
    if (rc < 0)
        return rc;
    fprintf(stderr, "infergate-bench: overhead %s %u rows, %s gateway\n", ig_gen_kind_name(b->kind),
            b->rows, side_names[side]);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", gw.port, body_path(b->kind));
    ig_load_opts_t lo = o->base.load;
    lo.url = url;
    lo.body = ig_slice(b->body.body.base, b->body.body.len);
    lo.warmup_s = 0;
    /* The warm-up is a load of its own, so that the gateway's counters can
     * be read between it and the measured load. */
    if (o->base.load.warmup_s > 0) {
        ig_load_opts_t w = lo;
        w.duration_s = o->base.load.warmup_s;
        rc = ig_load_run(&w, &sd->r, err, errlen);
        if (rc == 0 && sd->r.interrupted)
            rc = IG_ECANCELED;
        memset(&sd->r, 0, sizeof(sd->r));
    }
    gw_sample_t before = {0}, after = {0};
    if (rc == 0)
        rc = sample(&gw, sd->route, &before, err, errlen);
    if (rc == 0)
        rc = ig_load_run(&lo, &sd->r, err, errlen);
    if (rc == 0 && sd->r.interrupted)
        rc = IG_ECANCELED;
    if (rc == 0)
        rc = sample(&gw, sd->route, &after, err, errlen);
    ig_peer_stop(&gw);
    if (rc == 0)
        rc = check_answers(b, side, err, errlen);
    if (rc < 0)
        return rc;
    sd->cpu_s = after.cpu_s - before.cpu_s;
    sd->cpu_us_per_req = sd->cpu_s * 1e6 / (double)sd->r.responses;
    sd->calls = (uint64_t)(after.batch_count - before.batch_count);
    sd->mean_batch_rows = side == SIDE_BATCHING && sd->calls > 0
                              ? (after.batch_sum - before.batch_sum) / (double)sd->calls
                              : NAN;
    return 0;
}

static int run(overhead_t *o, char *err, size_t errlen)
{
    ig_proc_t model;
    int model_port = 0;
    memset(&model, 0, sizeof(model));
    if (!ig_proc_executable(o->base.env.gateway)) {
        snprintf(err, errlen, "--gateway: %s is not an executable", o->base.env.gateway);
        return IG_ENOTFOUND;
    }
    int rc = ig_model_start(&o->base.env, o->base.model_args, &model, &model_port, err, errlen);
    if (rc < 0)
        return rc;
    ig_gen_rng_t rng;
    ig_gen_seed(&rng, BODY_SEED);
    for (size_t k = 0; k < o->nrows && rc == 0; k++) {
        for (size_t p = 0; p < sizeof(kinds) / sizeof(kinds[0]) && rc == 0; p++) {
            body_run_t *b = &o->runs[o->nruns++];
            b->kind = kinds[p];
            b->rows = (uint32_t)o->rows[k];
            ig_gen_request(&b->body, b->kind, b->rows, &rng);
            uint64_t ms = o->batch_requests * o->rows[k];
            b->max_size = ms > BATCH_MAX_SIZE ? BATCH_MAX_SIZE : ms;
            for (int s = 0; s < SIDE__COUNT && rc == 0; s++)
                rc = run_side(o, b, s, model_port, err, errlen);
            b->ran = rc == 0;
        }
    }
    ig_proc_stop(&model, 5000);
    return rc;
}

/* ---- reports ------------------------------------------------------------------------ */

/* A figure with `prec` decimals in `width`, or "-" (a 32-byte buffer). */
static const char *cell(char *buf, int width, int prec, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, 32, "%*s", width, "-");
    else
        snprintf(buf, 32, "%*.*f", width, prec, v);
    return buf;
}

static void print_table(const overhead_t *o)
{
    ig_bench_machine_print();
    printf("load: closed loop, %u keep-alive connections, %.1f s per run after %.1f s warm-up; "
           "model args '%s'\n",
           o->base.load.connections, o->base.load.duration_s, o->base.load.warmup_s,
           o->base.model_args);
    printf("gateways: upstream.max_concurrency %llu; batching routes with batch.max_size = %llu "
           "requests' rows (at most %d), batch.max_delay_us %llu\n\n",
           (unsigned long long)o->upstream_concurrency, (unsigned long long)o->batch_requests,
           BATCH_MAX_SIZE, (unsigned long long)o->max_delay_us);
    printf("%-9s %6s %7s %8s | %10s %10s %9s %8s | %10s %10s | %9s\n", "case", "rows", "bytes",
           "max_size", "batch rps", "CPU us/req", "rows/call", "req/call", "pass rps", "CPU us/req",
           "batch/pass");
    for (size_t k = 0; k < o->nruns; k++) {
        const body_run_t *b = &o->runs[k];
        if (!b->ran)
            continue;
        const side_t *bt = &b->side[SIDE_BATCHING], *ps = &b->side[SIDE_PASSTHROUGH];
        char c[8][32];
        printf("%-9s %6u %7zu %8llu | %s %s %s %s | %s %s | %s\n", ig_gen_kind_name(b->kind),
               b->rows, b->body.body.len, (unsigned long long)b->max_size,
               cell(c[0], 10, 0, bt->r.rps), cell(c[1], 10, 1, bt->cpu_us_per_req),
               cell(c[2], 9, 1, bt->mean_batch_rows),
               cell(c[3], 8, 2, bt->mean_batch_rows / (double)b->rows),
               cell(c[4], 10, 0, ps->r.rps), cell(c[5], 10, 1, ps->cpu_us_per_req),
               cell(c[6], 9, 2, ig_bench_ratio(bt->cpu_us_per_req, ps->cpu_us_per_req)));
    }
    printf("\nCPU us/req: the gateway process's utime + stime over the measured load, per "
           "answer.\nrows/call, req/call: mean batch the batching route sent (its "
           "infergate_batch_size).\n");
}

static cJSON *side_json(const overhead_t *o, const body_run_t *b, int side)
{
    const side_t *sd = &b->side[side];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "route", sd->route);
    cJSON_AddNumberToObject(j, "rps", sd->r.rps);
    cJSON_AddNumberToObject(j, "requests", (double)sd->r.responses);
    cJSON_AddNumberToObject(j, "cpu_s", sd->cpu_s);
    ig_bench_json_number(j, "cpu_us_per_request", sd->cpu_us_per_req);
    cJSON_AddNumberToObject(j, "calls", (double)sd->calls);
    ig_bench_json_number(j, "mean_batch_rows", sd->mean_batch_rows);
    ig_bench_json_number(j, "mean_batch_requests", sd->mean_batch_rows / (double)b->rows);
    ig_load_opts_t lo = o->base.load;
    lo.body = ig_slice(b->body.body.base, b->body.body.len);
    cJSON_AddItemToObject(j, "load", ig_bench_load_json(&lo, &sd->r));
    return j;
}

static void print_json(const overhead_t *o)
{
    cJSON *j = cJSON_CreateObject();
    ig_bench_machine_json(j);
    cJSON *cfg = cJSON_AddObjectToObject(j, "config");
    cJSON_AddNumberToObject(cfg, "connections", o->base.load.connections);
    cJSON_AddNumberToObject(cfg, "duration_s", o->base.load.duration_s);
    cJSON_AddNumberToObject(cfg, "warmup_s", o->base.load.warmup_s);
    cJSON_AddStringToObject(cfg, "model_args", o->base.model_args);
    cJSON_AddNumberToObject(cfg, "batch_max_size_requests", (double)o->batch_requests);
    cJSON_AddNumberToObject(cfg, "batch_max_delay_us", (double)o->max_delay_us);
    cJSON_AddNumberToObject(cfg, "upstream_concurrency", (double)o->upstream_concurrency);
    cJSON *arr = cJSON_AddArrayToObject(j, "bodies");
    for (size_t k = 0; k < o->nruns; k++) {
        const body_run_t *b = &o->runs[k];
        if (!b->ran)
            continue;
        cJSON *bj = cJSON_CreateObject();
        cJSON_AddStringToObject(bj, "case", ig_gen_kind_name(b->kind));
        cJSON_AddNumberToObject(bj, "rows", b->rows);
        cJSON_AddNumberToObject(bj, "bytes", (double)b->body.body.len);
        cJSON_AddStringToObject(bj, "path", body_path(b->kind));
        cJSON_AddNumberToObject(bj, "batch_max_size", (double)b->max_size);
        for (int s = 0; s < SIDE__COUNT; s++)
            cJSON_AddItemToObject(bj, side_names[s], side_json(o, b, s));
        ig_bench_json_number(bj, "cpu_ratio",
                             ig_bench_ratio(b->side[SIDE_BATCHING].cpu_us_per_req,
                                            b->side[SIDE_PASSTHROUGH].cpu_us_per_req));
        cJSON_AddItemToArray(arr, bj);
    }
    char *s = cJSON_Print(j);
    puts(s);
    free(s);
    cJSON_Delete(j);
}

int ig_bench_overhead(int argc, char **argv)
{
    if (ig_bench_help(argc, argv, usage_overhead))
        return 0;
    overhead_t *o = ig_xcalloc(1, sizeof(*o));
    ig_bench_setup_init(&o->base, "--max-concurrency 0");
    o->base.load.connections = 32;
    o->rows[0] = 256;
    o->rows[1] = 2048;
    o->nrows = 2;
    o->batch_requests = 8;
    o->max_delay_us = 500;
    o->upstream_concurrency = 4;
    char err[1024];
    if (parse(o, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench overhead: %s\n", err);
        ig_bench_setup_dispose(&o->base);
        free(o);
        return IG_BENCH_EXIT_USAGE;
    }
    int rc = ig_bench_env_open(&o->base.env, err, sizeof(err));
    if (rc == 0)
        rc = run(o, err, sizeof(err));
    int code = ig_bench_exit_code("overhead", rc, err);
    if (code == IG_BENCH_EXIT_OK) {
        if (o->base.json)
            print_json(o);
        else
            print_table(o);
    }
    ig_bench_env_close(&o->base.env, code == IG_BENCH_EXIT_FAIL);
    for (size_t k = 0; k < o->nruns; k++)
        ig_gen_request_dispose(&o->runs[k].body);
    ig_bench_setup_dispose(&o->base);
    free(o);
    return code;
}
