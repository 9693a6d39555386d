/*
 * sweep.c: `infergate-bench sweep`, the tuning grid.
 *
 * One infergate-model with the cost model under study stays up; for every
 * point of the grid a fresh infergate is started with that point's settings,
 * the same load runs through it, and the point's goodput (200s per second)
 * and p99 are recorded. The best point is the one with the highest goodput
 * whose p99 meets the target with no errors and no non-200 answers.
 *
 * The grid is a list of axes, each a flag, a label and a function that
 * writes one value into the gateway config. Today there is one axis,
 * upstream.max_concurrency. Batching adds rows to `axes` below (e.g.
 * --batch-max-size-values writing routes[0].batch.max_size) and nothing else:
 * the product over the axes, the report and the choice of the best point are
 * written for any number of them.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "infergate/buf.h"
#include "infergate/error.h"
#include "peers.h"

#define MAX_AXIS_VALUES 32
#define MAX_POINTS 256

static const char usage_sweep[] =
    "usage: infergate-bench sweep --p99-target-ms T [flags]\n"
    "\n"
    "Runs infergate in front of one infergate-model for every grid point, the same load\n"
    "each time, and reports goodput and p99 per point and the best point meeting the target.\n"
    "\n"
    "  --p99-target-ms T          the latency target (required; decimals allowed)\n"
    "  --concurrency-values LIST  upstream.max_concurrency values (default 1,2,4,8)\n"
    "  --model-args 'FLAGS'       infergate-model flags (default '--cost-base-us 2000\n"
    "                             --cost-per-row-us 50 --max-concurrency 4')\n"
    "  --connections N            keep-alive connections (default 64)\n"
    "  --duration S               seconds of measured load per point (default 10)\n"
    "  --warmup S                 unmeasured load before each point (default 1)\n"
    "  --path P                   request path (default /v1/models/iris:predict with a\n"
    "                             one-row KServe V1 body)\n"
    "  --method M, --body STRING, --body-file F, --header 'K: V'   as for `load`\n"
    "  --gateway PATH, --model PATH   the binaries (default: next to infergate-bench)\n"
    "  --keep-dir                 keep the temp dir with configs and logs\n"
    "  --json                     one JSON object on stdout instead of the table\n"
    "  -h, --help                 this text\n";

static const char default_path[] = "/v1/models/iris:predict";
static const char default_body[] = "{\"instances\":[[5.1,3.5,1.4,0.2]]}";

/* ---- the grid ------------------------------------------------------------ */

typedef struct {
    const char *flag;  /* the list flag */
    const char *label; /* config key, for reports */
    uint64_t min, max;
    void (*apply)(cJSON *cfg, uint64_t v);
    const char *defaults;
} axis_def_t;

static cJSON *child_obj(cJSON *parent, const char *k)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, k);
    return cJSON_IsObject(o) ? o : cJSON_AddObjectToObject(parent, k);
}

static void set_num(cJSON *o, const char *k, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddNumberToObject(o, k, v);
}

static void apply_concurrency(cJSON *cfg, uint64_t v)
{
    cJSON *up = child_obj(cfg, "upstream");
    set_num(up, "max_concurrency", (double)v);
    /* Each concurrent call needs its own pooled connection. */
    set_num(up, "max_connections", (double)(v < 64 ? 64 : v));
}

static const axis_def_t axes[] = {
    {"--concurrency-values", "upstream.max_concurrency", 1, 65535, apply_concurrency, "1,2,4,8"},
};
#define NAXES (sizeof(axes) / sizeof(axes[0]))

typedef struct {
    uint64_t v[NAXES];
    ig_load_result_t r;
    double goodput; /* 200 answers per second */
    bool meets;
    bool ran;
} point_t;

typedef struct {
    ig_load_opts_t load;
    char *owned_body;
    char path[2048];
    char url[2200];
    const char *model_args;
    double target_ms;
    bool have_target;
    uint64_t values[NAXES][MAX_AXIS_VALUES];
    size_t nvalues[NAXES];
    bool json;
    ig_bench_env_t env;
    point_t points[MAX_POINTS];
    size_t npoints;
    double limit_rps; /* the cost model's ceiling without batching; NAN if unknown */
} sweep_t;

static int parse(sweep_t *s, int argc, char **argv, char *err, size_t errlen)
{
    ig_load_opts_t *o = &s->load;
    uint64_t u;
    bool method_set = false, path_set = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (!strcmp(a, "--json")) {
            s->json = true;
            continue;
        }
        if (!strcmp(a, "--keep-dir")) {
            s->env.keep_dir = true;
            continue;
        }
        const char *prev_method = o->method;
        if ((m = ig_bench_request_flag(argc, argv, &i, o, &s->owned_body, err, errlen)) != 0) {
            if (m < 0)
                return IG_EINVAL;
            method_set |= o->method != prev_method;
            continue;
        }
        bool axis_flag = false;
        for (size_t k = 0; k < NAXES && !axis_flag; k++) {
            if ((m = ig_cli_match(argc, argv, &i, axes[k].flag, &v, err, errlen)) == 0)
                continue;
            if (m < 0 || ig_cli_uint_list(axes[k].flag, v, axes[k].min, axes[k].max, s->values[k],
                                          MAX_AXIS_VALUES, &s->nvalues[k], err, errlen) < 0)
                return IG_EINVAL;
            axis_flag = true;
        }
        if (axis_flag)
            continue;
        if ((m = ig_cli_match(argc, argv, &i, "--p99-target-ms", &v, err, errlen))) {
            if (m < 0 ||
                ig_cli_number("--p99-target-ms", v, 0.001, 3600000, &s->target_ms, err, errlen) < 0)
                return IG_EINVAL;
            s->have_target = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--model-args", &v, err, errlen))) {
            if (m < 0)
                return m;
            s->model_args = v;
        } else if ((m = ig_cli_match(argc, argv, &i, "--connections", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--connections", v, 1, 20000, &u, err, errlen) < 0)
                return IG_EINVAL;
            o->connections = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--duration", &v, err, errlen))) {
            if (m < 0 || ig_cli_number("--duration", v, 0.01, 3600, &o->duration_s, err, errlen))
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--warmup", &v, err, errlen))) {
            if (m < 0 || ig_cli_number("--warmup", v, 0, 600, &o->warmup_s, err, errlen))
                return IG_EINVAL;
        } else if ((m = ig_cli_match(argc, argv, &i, "--path", &v, err, errlen))) {
            if (m < 0)
                return m;
            if (v[0] != '/' || strlen(v) >= sizeof(s->path) || strpbrk(v, " \t\r\n#")) {
                snprintf(err, errlen, "--path: expected an absolute path, got '%s'", v);
                return IG_EINVAL;
            }
            snprintf(s->path, sizeof(s->path), "%s", v);
            path_set = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--gateway", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(s->env.gateway, sizeof(s->env.gateway), "%s", v);
        } else if ((m = ig_cli_match(argc, argv, &i, "--model", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(s->env.model, sizeof(s->env.model), "%s", v);
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench sweep --help)", a);
            return IG_EINVAL;
        }
    }
    if (!s->have_target) {
        snprintf(err, errlen, "--p99-target-ms: required (see infergate-bench sweep --help)");
        return IG_EINVAL;
    }
    for (size_t k = 0; k < NAXES; k++) {
        if (s->nvalues[k] == 0 &&
            ig_cli_uint_list(axes[k].flag, axes[k].defaults, axes[k].min, axes[k].max, s->values[k],
                             MAX_AXIS_VALUES, &s->nvalues[k], err, errlen) < 0)
            return IG_EINVAL;
    }
    size_t total = 1;
    for (size_t k = 0; k < NAXES; k++)
        total *= s->nvalues[k];
    if (total > MAX_POINTS) {
        snprintf(err, errlen, "%s: the grid has %zu points, at most %d", axes[0].flag, total,
                 MAX_POINTS);
        return IG_EINVAL;
    }
    if (!path_set && !o->body.base) {
        snprintf(s->path, sizeof(s->path), "%s", default_path);
        o->body = IG_SLICE_LIT(default_body);
    }
    if (o->body.base) {
        if (!method_set)
            o->method = "POST";
        ig_load_default_content_type(o, "application/json");
    }
    return 0;
}

/* Rows in one request body: V1 instances, or dim 0 of the first V2 input. */
static long body_rows(ig_slice_t body)
{
    if (!body.base)
        return -1;
    cJSON *j = cJSON_ParseWithLength(body.base, body.len);
    long rows = -1;
    cJSON *inst = cJSON_GetObjectItemCaseSensitive(j, "instances");
    cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    if (cJSON_IsArray(inst)) {
        rows = cJSON_GetArraySize(inst);
    } else if (cJSON_IsArray(inputs)) {
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(inputs, 0), "shape");
        cJSON *d0 = cJSON_GetArrayItem(shape, 0);
        if (cJSON_IsNumber(d0))
            rows = (long)d0->valuedouble;
    }
    cJSON_Delete(j);
    return rows;
}

/* The model's ceiling for unbatched requests of `rows` rows:
 * C × 1e6 / (base + per_row × rows) calls per second (docs/model.md). */
static double cost_limit(const char *args, long rows)
{
    char store[2048], *w[64], err[128];
    size_t n = 0;
    if (rows <= 0 ||
        ig_cli_split("--model-args", args, store, sizeof(store), w, 64, &n, err, sizeof(err)) < 0)
        return NAN;
    double base = 0, per_row = 0, conc = 1, delay_ms = 0;
    for (size_t k = 0; k < n; k++) {
        char *eq = strchr(w[k], '=');
        const char *val = eq ? eq + 1 : (k + 1 < n ? w[k + 1] : "");
        size_t nl = eq ? (size_t)(eq - w[k]) : strlen(w[k]);
        double *dst = NULL;
        if (nl == 14 && !strncmp(w[k], "--cost-base-us", nl))
            dst = &base;
        else if (nl == 17 && !strncmp(w[k], "--cost-per-row-us", nl))
            dst = &per_row;
        else if (nl == 17 && !strncmp(w[k], "--max-concurrency", nl))
            dst = &conc;
        else if (nl == 10 && !strncmp(w[k], "--delay-ms", nl))
            dst = &delay_ms;
        if (dst)
            *dst = strtod(val, NULL);
    }
    double cost_us = base + per_row * (double)rows + delay_ms * 1000.0;
    if (cost_us <= 0 || conc <= 0)
        return NAN; /* no cost, or unlimited instances: no ceiling from the model */
    return conc * 1e6 / cost_us;
}

static int run(sweep_t *s, char *err, size_t errlen)
{
    ig_proc_t model;
    int model_port = 0;
    memset(&model, 0, sizeof(model));
    if (!ig_proc_executable(s->env.gateway)) {
        snprintf(err, errlen, "--gateway: %s is not an executable", s->env.gateway);
        return IG_ENOTFOUND;
    }
    int rc = ig_model_start(&s->env, s->model_args, &model, &model_port, err, errlen);
    if (rc < 0)
        return rc;
    size_t idx[NAXES] = {0};
    for (;;) {
        point_t *pt = &s->points[s->npoints++];
        for (size_t k = 0; k < NAXES; k++)
            pt->v[k] = s->values[k][idx[k]];
        cJSON *cfg = cJSON_CreateObject();
        for (size_t k = 0; k < NAXES; k++)
            axes[k].apply(cfg, pt->v[k]);
        /* The queue must hold every connection's request, or the sweep
         * measures rejections instead of latency. */
        set_num(child_obj(cfg, "limits"), "max_queue", (double)s->load.connections + 1024);
        ig_peer_t gw = {.kind = IG_PEER_INFERGATE};
        rc = ig_peer_start(&s->env, &gw, model_port, s->load.connections, cfg, err, errlen);
        cJSON_Delete(cfg);
        if (rc < 0)
            break;
        ig_load_opts_t o = s->load;
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d%s", gw.port, s->path);
        o.url = s->url;
        fprintf(stderr, "infergate-bench: sweep point %zu:", s->npoints);
        for (size_t k = 0; k < NAXES; k++)
            fprintf(stderr, " %s=%llu", axes[k].label, (unsigned long long)pt->v[k]);
        fprintf(stderr, "\n");
        rc = ig_load_run(&o, &pt->r, err, errlen);
        ig_peer_stop(&gw);
        if (rc < 0)
            break;
        if (pt->r.interrupted) {
            rc = IG_ECANCELED;
            break;
        }
        pt->ran = true;
        pt->goodput = pt->r.elapsed_s > 0 ? (double)pt->r.by_status[200] / pt->r.elapsed_s : 0;
        pt->meets = pt->r.latency.n > 0 && ig_load_ms(&pt->r, 0.99) <= s->target_ms &&
                    pt->r.errors_total == 0 && pt->r.by_status[200] == pt->r.responses;
        /* Next grid point: odometer over the axes. */
        size_t k = 0;
        while (k < NAXES && ++idx[k] == s->nvalues[k])
            idx[k++] = 0;
        if (k == NAXES)
            break;
    }
    ig_proc_stop(&model, 5000);
    return rc;
}

static const point_t *best_point(const sweep_t *s)
{
    const point_t *best = NULL;
    for (size_t p = 0; p < s->npoints; p++) {
        const point_t *pt = &s->points[p];
        if (pt->ran && pt->meets && (!best || pt->goodput > best->goodput))
            best = pt;
    }
    return best;
}

static void print_table(const sweep_t *s)
{
    int nproc;
    char cpu[256];
    ig_bench_machine(&nproc, cpu, sizeof(cpu));
    printf("machine: %d CPUs, %s\n", nproc, cpu);
    printf("load: %s %s, %u keep-alive connections, %.1f s per point; model args '%s'\n",
           s->load.method, s->path, s->load.connections, s->load.duration_s, s->model_args);
    if (!isnan(s->limit_rps))
        printf("cost-model ceiling without batching: %.0f req/s\n", s->limit_rps);
    printf("p99 target: %.3f ms\n\n", s->target_ms);
    for (size_t k = 0; k < NAXES; k++)
        printf("%-26s ", axes[k].label);
    printf("%10s %9s %9s %9s %9s %s\n", "goodput/s", "of limit", "p50 ms", "p99 ms", "non-200",
           "meets");
    for (size_t p = 0; p < s->npoints; p++) {
        const point_t *pt = &s->points[p];
        if (!pt->ran)
            continue;
        for (size_t k = 0; k < NAXES; k++)
            printf("%-26llu ", (unsigned long long)pt->v[k]);
        printf("%10.0f %9.2f %9.3f %9.3f %9llu %s\n", pt->goodput,
               isnan(s->limit_rps) ? NAN : pt->goodput / s->limit_rps, ig_load_ms(&pt->r, 0.5),
               ig_load_ms(&pt->r, 0.99),
               (unsigned long long)(pt->r.responses - pt->r.by_status[200] + pt->r.errors_total),
               pt->meets ? "yes" : "no");
    }
    const point_t *b = best_point(s);
    if (b) {
        printf("\nbest:");
        for (size_t k = 0; k < NAXES; k++)
            printf(" %s=%llu", axes[k].label, (unsigned long long)b->v[k]);
        printf(" (%.0f req/s, p99 %.3f ms)\n", b->goodput, ig_load_ms(&b->r, 0.99));
    } else {
        printf("\nbest: no setting met p99 <= %.3f ms without errors\n", s->target_ms);
    }
}

static void print_json(const sweep_t *s)
{
    cJSON *j = cJSON_CreateObject();
    int nproc;
    char cpu[256];
    ig_bench_machine(&nproc, cpu, sizeof(cpu));
    cJSON *m = cJSON_AddObjectToObject(j, "machine");
    cJSON_AddNumberToObject(m, "nproc", nproc);
    cJSON_AddStringToObject(m, "cpu", cpu);
    cJSON_AddNumberToObject(j, "p99_target_ms", s->target_ms);
    cJSON_AddStringToObject(j, "model_args", s->model_args);
    if (isnan(s->limit_rps))
        cJSON_AddNullToObject(j, "limit_rps");
    else
        cJSON_AddNumberToObject(j, "limit_rps", s->limit_rps);
    cJSON *pts = cJSON_AddArrayToObject(j, "points");
    const point_t *b = best_point(s);
    for (size_t p = 0; p < s->npoints; p++) {
        const point_t *pt = &s->points[p];
        if (!pt->ran)
            continue;
        cJSON *pj = cJSON_CreateObject();
        cJSON *set = cJSON_AddObjectToObject(pj, "settings");
        for (size_t k = 0; k < NAXES; k++)
            cJSON_AddNumberToObject(set, axes[k].label, (double)pt->v[k]);
        cJSON_AddNumberToObject(pj, "goodput_rps", pt->goodput);
        cJSON_AddBoolToObject(pj, "meets_target", pt->meets);
        ig_load_opts_t o = s->load;
        o.url = "";
        cJSON *lj = ig_load_json(&o, &pt->r);
        cJSON_DeleteItemFromObject(lj, "url");
        cJSON_AddItemToObject(pj, "load", lj);
        cJSON_AddItemToArray(pts, pj);
        if (pt == b)
            cJSON_AddItemToObject(j, "best", cJSON_Duplicate(set, 1));
    }
    if (!b)
        cJSON_AddNullToObject(j, "best");
    char *str = cJSON_Print(j);
    puts(str);
    free(str);
    cJSON_Delete(j);
}

int ig_bench_sweep(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_sweep, stdout);
            return 0;
        }
    }
    sweep_t *s = ig_xcalloc(1, sizeof(*s));
    ig_load_defaults(&s->load);
    s->load.warmup_s = 1;
    s->model_args = "--cost-base-us 2000 --cost-per-row-us 50 --max-concurrency 4";
    ig_bench_env_defaults(&s->env);
    char err[1024];
    if (parse(s, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench sweep: %s\n", err);
        free(s->owned_body);
        free(s);
        return IG_BENCH_EXIT_USAGE;
    }
    s->limit_rps = cost_limit(s->model_args, body_rows(s->load.body));
    int code = IG_BENCH_EXIT_OK;
    int rc = ig_bench_env_open(&s->env, err, sizeof(err));
    if (rc == 0)
        rc = run(s, err, sizeof(err));
    if (rc < 0) {
        code = rc == IG_ECANCELED ? IG_BENCH_EXIT_INTERRUPTED : IG_BENCH_EXIT_FAIL;
        fprintf(stderr, "infergate-bench sweep: %s\n",
                rc == IG_ECANCELED ? "interrupted; every process it started is stopped" : err);
    } else if (s->json) {
        print_json(s);
    } else {
        print_table(s);
    }
    ig_bench_env_close(&s->env, code == IG_BENCH_EXIT_FAIL);
    free(s->owned_body);
    free(s);
    return code;
}
