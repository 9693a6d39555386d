/*
 * sweep.c: `infergate-bench sweep`, the tuning grid.
 *
 * One infergate-model with the cost model under study stays up; for every
 * point of the grid a fresh infergate is started with that point's settings,
 * the same load runs through it, and the point's goodput (200s per second),
 * p50/p99 and the batch sizes the model saw (its GET /stats, read before and
 * after the measured load) are recorded. The best point is the one with the
 * highest goodput whose p99 meets the target with no errors and no non-200
 * answers.
 *
 * The grid is a list of axes, each a flag, a label and a function that
 * writes one value into the gateway config: upstream.max_concurrency for the
 * whole gateway, and batch.max_size and batch.max_delay_us for the route the
 * load's path goes to (found with the gateway's own router over its default
 * routes). The product over the axes, the report and the choice of the best
 * point are written for any number of axes.
 *
 * Each point is also set against the cost model's ceiling. A call of n rows
 * holds one of the model's K instances for B + R*n us (plus --delay-ms), so
 * at most K*n/(B + R*n) rows per us go through; divided by the rows of one
 * request, that is a request rate. It is given at the largest batch the
 * point allows and at the mean batch the model actually saw.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "infergate/base/buf.h"
#include "infergate/core/config.h"
#include "infergate/base/error.h"
#include "infergate/core/router.h"
#include "peers.h"

#define MAX_AXIS_VALUES 32
#define MAX_POINTS 256
#define MODEL_IDLE_WAIT_MS 35000 /* above upstream.timeout_ms (30 s by default) */

static const char usage_sweep[] =
    "usage: infergate-bench sweep --p99-target-ms T [flags]\n"
    "\n"
    "Runs infergate in front of one infergate-model for every grid point, the same load\n"
    "each time, and reports goodput, p50/p99 and the batch sizes the model saw per point,\n"
    "against the cost model's ceiling, and the best point meeting the target.\n"
    "\n"
    "  --p99-target-ms T          the latency target (required; decimals allowed)\n"
    "  --concurrency-values LIST  upstream.max_concurrency values (default 1,2,4,8)\n"
    "  --batch-max-size-values LIST      batch.max_size of the route the load goes to\n"
    "                             (default 1,32; 1 means no batching)\n"
    "  --batch-max-delay-us-values LIST  batch.max_delay_us of that route (default 2000)\n"
    "                             (the batch flags need a kserve-v1 or oip-v2 path)\n"
    "  --model-args 'FLAGS'       infergate-model flags (default '--cost-base-us 2000\n"
    "                             --cost-per-row-us 50 --max-concurrency 4')\n"
    "  --connections N            keep-alive connections (default 64)\n"
    "  --rate R                   open loop: R requests/s on a fixed schedule over those\n"
    "                             connections, latency from the intended send time\n"
    "                             (default: closed loop)\n"
    "  --duration S               seconds of measured load per point (default 10)\n"
    "  --warmup S                 unmeasured load before each point (default 1)\n"
    "  --path P                   request path (default /v1/models/iris:predict, and\n"
    "                             without --body a one-row KServe V1 body)\n"
    "  --method M, --body STRING, --body-file F, --header 'K: V'   as for `load`\n"
    "  --gateway PATH, --model PATH   the binaries (default: next to infergate-bench)\n"
    "  --keep-dir                 keep the temp dir with configs and logs\n"
    "  --json                     one JSON object on stdout instead of the table\n"
    "  -h, --help                 this text\n";

/* ---- the grid ------------------------------------------------------------ */

typedef struct {
    const char *flag;  /* the list flag */
    const char *label; /* config key, for reports and the JSON settings */
    const char *col;   /* short column title */
    uint64_t min, max; /* the gateway's own bounds for the key */
    bool on_route;     /* applies to the batch object of the load's route */
    void (*apply)(cJSON *cfg, cJSON *batch, uint64_t v);
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

static void apply_concurrency(cJSON *cfg, cJSON *batch, uint64_t v)
{
    (void)batch;
    cJSON *up = child_obj(cfg, "upstream");
    set_num(up, "max_concurrency", (double)v);
    /* Each concurrent call needs its own pooled connection. */
    set_num(up, "max_connections", (double)(v < 64 ? 64 : v));
}

static void apply_max_size(cJSON *cfg, cJSON *batch, uint64_t v)
{
    (void)cfg;
    set_num(batch, "max_size", (double)v);
}

static void apply_max_delay(cJSON *cfg, cJSON *batch, uint64_t v)
{
    (void)cfg;
    set_num(batch, "max_delay_us", (double)v);
}

enum { AX_CONCURRENCY, AX_MAX_SIZE, AX_MAX_DELAY };

/* Bounds as gateway/core/config/config_routes.c checks them (BATCH_MAX_SIZE, BATCH_MAX_DELAY_US).
 */
static const axis_def_t axes[] = {
    [AX_CONCURRENCY] = {"--concurrency-values", "upstream.max_concurrency", "concurrency", 1, 65535,
                        false, apply_concurrency, "1,2,4,8"},
    [AX_MAX_SIZE] = {"--batch-max-size-values", "batch.max_size", "max_size", 1, 4096, true,
                     apply_max_size, "1,32"},
    [AX_MAX_DELAY] = {"--batch-max-delay-us-values", "batch.max_delay_us", "delay_us", 0, 10000000,
                      true, apply_max_delay, "2000"},
};
#define NAXES (sizeof(axes) / sizeof(axes[0]))

/* What the model's GET /stats said (the counters sweep uses). */
typedef struct {
    uint64_t calls, rows, errors;
    size_t nsizes;
    uint64_t *size, *count; /* heap arrays of nsizes: calls per row count */
} model_stats_t;

typedef struct {
    uint64_t v[NAXES];
    ig_load_result_t r;
    double goodput; /* 200 answers per second */
    bool meets;
    bool ran;
    bool have_stats;                    /* the model's counters were read before and after */
    model_stats_t seen;                 /* after - before: the measured load only */
    double mean_rows;                   /* rows per call the model saw; NAN without calls */
    uint64_t max_rows;                  /* the largest call */
    double rows_at_max;                 /* rows per call the point's max_size allows */
    double limit_at_max, limit_at_mean; /* req/s ceilings; NAN when the model has none */
} point_t;

/* The infergate-model cost flags. */
typedef struct {
    double base_us, per_row_us, instances, delay_ms;
} cost_model_t;

typedef struct {
    ig_bench_setup_t base; /* the load, the model, the binaries */
    double target_ms;
    bool have_target;
    uint64_t values[NAXES][MAX_AXIS_VALUES];
    size_t nvalues[NAXES];
    bool given[NAXES];  /* the flag was on the command line */
    bool active[NAXES]; /* applies to this load (batch axes need a batching route) */
    /* The default route the load's path goes to, rebuilt in every config. */
    size_t route_index;
    ig_protocol_t route_protocol;
    char route_match[256];
    long rows_per_request; /* -1 when the body has no rows */
    cost_model_t cost;
    point_t points[MAX_POINTS];
    size_t npoints;
    double limit_rps; /* the cost model's ceiling without batching; NAN if unknown */
} sweep_t;

/* ---- route and cost model ----------------------------------------------- */

/* Finds the gateway default route that `path` (query left off) goes to. */
static int find_route(sweep_t *s, char *err, size_t errlen)
{
    ig_config_t c;
    ig_config_init(&c);
    ig_router_t router;
    ig_route_match_t m;
    int rc = ig_router_init(&router, c.routes, c.nroutes, err, errlen);
    if (rc == 0) {
        size_t len = strcspn(s->base.path, "?");
        rc = ig_router_match(&router, ig_slice(s->base.path, len), &m);
        if (rc == 0) {
            s->route_index = m.index;
            s->route_protocol = m.route->protocol;
            snprintf(s->route_match, sizeof(s->route_match), "%s", m.route->match);
        } else {
            snprintf(err, errlen, "--path: %.200s matches none of the gateway's default routes",
                     s->base.path);
        }
    }
    ig_config_dispose(&c);
    return rc;
}

/* The gateway's default routes, with `batch` (the axes' values) on the load's
 * route. Each route gets only match and protocol otherwise, so no
 * preferred_sizes: a batch leaves at max_size rows or after max_delay_us. */
static cJSON *routes_json(const sweep_t *s, cJSON **batch)
{
    ig_config_t c;
    ig_config_init(&c);
    cJSON *arr = cJSON_CreateArray();
    *batch = NULL;
    for (size_t i = 0; i < c.nroutes; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "match", c.routes[i].match);
        cJSON_AddStringToObject(r, "protocol", ig_protocol_name(c.routes[i].protocol));
        if (i == s->route_index && c.routes[i].protocol != IG_PROTO_PASSTHROUGH)
            *batch = cJSON_AddObjectToObject(r, "batch");
        cJSON_AddItemToArray(arr, r);
    }
    ig_config_dispose(&c);
    return arr;
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

/* Reads the cost flags out of --model-args (docs/model.md): a missing flag
 * has the model's default, except --max-concurrency, which defaults to 1. */
static void parse_cost(const char *args, cost_model_t *c)
{
    char store[2048], *w[64], err[128];
    size_t n = 0;
    *c = (cost_model_t){.instances = 1};
    if (ig_cli_split("--model-args", args, store, sizeof(store), w, 64, &n, err, sizeof(err)) < 0)
        return;
    for (size_t k = 0; k < n; k++) {
        char *eq = strchr(w[k], '=');
        const char *val = eq ? eq + 1 : (k + 1 < n ? w[k + 1] : "");
        size_t nl = eq ? (size_t)(eq - w[k]) : strlen(w[k]);
        double *dst = NULL;
        if (nl == 14 && !strncmp(w[k], "--cost-base-us", nl))
            dst = &c->base_us;
        else if (nl == 17 && !strncmp(w[k], "--cost-per-row-us", nl))
            dst = &c->per_row_us;
        else if (nl == 17 && !strncmp(w[k], "--max-concurrency", nl))
            dst = &c->instances;
        else if (nl == 10 && !strncmp(w[k], "--delay-ms", nl))
            dst = &c->delay_ms;
        if (dst)
            *dst = strtod(val, NULL);
    }
}

/* Requests per second when every call carries `call_rows` rows and a request
 * has `req_rows`: K × call_rows × 1e6 / (req_rows × (B + R × call_rows + delay)).
 * NAN when there is no ceiling (no cost, or unlimited instances). */
static double ceiling_rps(const cost_model_t *c, double call_rows, double req_rows)
{
    double cost_us = c->base_us + c->per_row_us * call_rows + c->delay_ms * 1000.0;
    if (!(call_rows > 0) || !(req_rows > 0) || cost_us <= 0 || c->instances <= 0)
        return NAN;
    return c->instances * call_rows * 1e6 / (req_rows * cost_us);
}

/* Rows per call when batches hold at most `max_size` rows of `req_rows`-row
 * requests: as many whole requests as fit, and a larger request goes alone. */
static double rows_at_max_size(uint64_t max_size, long req_rows)
{
    if (req_rows <= 0)
        return NAN;
    if ((uint64_t)req_rows > max_size)
        return (double)req_rows;
    return (double)(req_rows * (long)(max_size / (uint64_t)req_rows));
}

/* ---- the model's counters ------------------------------------------------- */

static int stats_read(int port, cJSON **out, char *err, size_t errlen)
{
    char *body = NULL;
    int status = 0;
    int rc = ig_proc_http_get(port, "/stats", &status, &body);
    if (rc == 0 && status != 200)
        rc = IG_EPROTO;
    *out = rc == 0 ? cJSON_Parse(body) : NULL;
    free(body);
    if (rc == 0 && !cJSON_IsObject(*out))
        rc = IG_EPARSE;
    if (rc < 0) {
        snprintf(err, errlen, "infergate-model GET /stats on port %d: %s (status %d)", port,
                 ig_strerror(rc), status);
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static uint64_t json_u64(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the model has no call in flight or queued (calls the load gave
 * up on may still be running), then reads its counters. A model that stays
 * busy past MODEL_IDLE_WAIT_MS is read anyway, with a warning. */
static int stats_when_idle(int port, model_stats_t *st, char *err, size_t errlen)
{
    cJSON *j = NULL;
    int rc = 0;
    for (unsigned waited = 0;; waited += 20) {
        cJSON_Delete(j);
        if ((rc = stats_read(port, &j, err, errlen)) < 0)
            return rc;
        if (json_u64(j, "inflight") == 0 && json_u64(j, "queued") == 0)
            break;
        if (waited >= MODEL_IDLE_WAIT_MS || ig_bench_interrupted()) {
            fprintf(stderr,
                    "infergate-bench: warning: the model still has calls in flight after %u ms; "
                    "its counters are read anyway\n",
                    waited);
            break;
        }
        sleep_ms(20);
    }
    memset(st, 0, sizeof(*st));
    st->calls = json_u64(j, "calls");
    st->rows = json_u64(j, "rows");
    st->errors = json_u64(j, "errors");
    const cJSON *sizes = cJSON_GetObjectItemCaseSensitive(j, "batch_sizes");
    size_t cap = cJSON_IsObject(sizes) ? (size_t)cJSON_GetArraySize(sizes) : 0;
    st->size = ig_xcalloc(cap ? cap : 1, sizeof(*st->size));
    st->count = ig_xcalloc(cap ? cap : 1, sizeof(*st->count));
    const cJSON *it;
    cJSON_ArrayForEach(it, sizes)
    {
        char *end = NULL;
        unsigned long long sz = strtoull(it->string, &end, 10);
        if (end == it->string || *end || !cJSON_IsNumber(it) || st->nsizes == cap)
            continue;
        st->size[st->nsizes] = sz;
        st->count[st->nsizes++] = json_u64(sizes, it->string);
    }
    cJSON_Delete(j);
    return 0;
}

static uint64_t stats_count(const model_stats_t *st, uint64_t size)
{
    for (size_t k = 0; k < st->nsizes; k++)
        if (st->size[k] == size)
            return st->count[k];
    return 0;
}

static void stats_free(model_stats_t *st)
{
    free(st->size);
    free(st->count);
    memset(st, 0, sizeof(*st));
}

/* d = after - before: what the measured load alone made the model do. */
static void stats_delta(const model_stats_t *before, const model_stats_t *after, model_stats_t *d)
{
    memset(d, 0, sizeof(*d));
    d->size = ig_xcalloc(after->nsizes ? after->nsizes : 1, sizeof(*d->size));
    d->count = ig_xcalloc(after->nsizes ? after->nsizes : 1, sizeof(*d->count));
    d->calls = after->calls - before->calls;
    d->rows = after->rows - before->rows;
    d->errors = after->errors - before->errors;
    for (size_t k = 0; k < after->nsizes; k++) {
        uint64_t n = after->count[k] - stats_count(before, after->size[k]);
        if (n == 0)
            continue;
        /* Keep sizes ascending for the report. */
        size_t at = d->nsizes++;
        while (at > 0 && d->size[at - 1] > after->size[k]) {
            d->size[at] = d->size[at - 1];
            d->count[at] = d->count[at - 1];
            at--;
        }
        d->size[at] = after->size[k];
        d->count[at] = n;
    }
}

/* ---- flags ----------------------------------------------------------------- */

static int parse(sweep_t *s, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if ((m = ig_bench_setup_flag(argc, argv, &i, &s->base, err, errlen)) != 0) {
            if (m < 0)
                return m;
            continue;
        }
        bool axis_flag = false;
        for (size_t k = 0; k < NAXES && !axis_flag; k++) {
            if ((m = ig_cli_match(argc, argv, &i, axes[k].flag, &v, err, errlen)) == 0)
                continue;
            if (m < 0 || ig_cli_uint_list(axes[k].flag, v, axes[k].min, axes[k].max, s->values[k],
                                          MAX_AXIS_VALUES, &s->nvalues[k], err, errlen) < 0)
                return IG_EINVAL;
            s->given[k] = true;
            axis_flag = true;
        }
        if (axis_flag)
            continue;
        if ((m = ig_cli_match(argc, argv, &i, "--p99-target-ms", &v, err, errlen))) {
            if (m < 0 ||
                ig_cli_number("--p99-target-ms", v, 0.001, 3600000, &s->target_ms, err, errlen) < 0)
                return IG_EINVAL;
            s->have_target = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--rate", &v, err, errlen))) {
            if (m < 0 ||
                ig_cli_number("--rate", v, 0.001, 10000000, &s->base.load.rate, err, errlen) < 0)
                return IG_EINVAL;
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench sweep --help)", a);
            return IG_EINVAL;
        }
    }
    if (!s->have_target) {
        snprintf(err, errlen, "--p99-target-ms: required (see infergate-bench sweep --help)");
        return IG_EINVAL;
    }
    ig_bench_setup_finish(&s->base);
    if (find_route(s, err, errlen) < 0)
        return IG_EINVAL;
    bool batching = s->route_protocol != IG_PROTO_PASSTHROUGH;
    for (size_t k = 0; k < NAXES; k++) {
        s->active[k] = !axes[k].on_route || batching;
        if (!s->active[k]) {
            if (s->given[k]) {
                snprintf(
                    err, errlen,
                    "%s: the load's path %.200s goes to the passthrough route %s, which does not "
                    "batch (use a /v1/models/NAME:predict or /v2/models/NAME/infer path)",
                    axes[k].flag, s->base.path, s->route_match);
                return IG_EINVAL;
            }
            s->values[k][0] = 0; /* never written into a config */
            s->nvalues[k] = 1;
        } else if (s->nvalues[k] == 0 &&
                   ig_cli_uint_list(axes[k].flag, axes[k].defaults, axes[k].min, axes[k].max,
                                    s->values[k], MAX_AXIS_VALUES, &s->nvalues[k], err,
                                    errlen) < 0) {
            return IG_EINVAL;
        }
    }
    size_t total = 1;
    for (size_t k = 0; k < NAXES; k++)
        total *= s->nvalues[k];
    if (total > MAX_POINTS) {
        snprintf(err, errlen, "%s, %s, %s: the grid has %zu points, at most %d", axes[0].flag,
                 axes[1].flag, axes[2].flag, total, MAX_POINTS);
        return IG_EINVAL;
    }
    return 0;
}

/* ---- running the grid --------------------------------------------------- */

static cJSON *point_config(const sweep_t *s, const point_t *pt)
{
    cJSON *cfg = cJSON_CreateObject();
    cJSON *batch = NULL;
    cJSON_AddItemToObject(cfg, "routes", routes_json(s, &batch));
    for (size_t k = 0; k < NAXES; k++) {
        if (s->active[k])
            axes[k].apply(cfg, batch, pt->v[k]);
    }
    /* The queue must hold every connection's request, or the sweep
     * measures rejections instead of latency. */
    set_num(child_obj(cfg, "limits"), "max_queue", (double)s->base.load.connections + 1024);
    return cfg;
}

/* Derived figures of a point that ran: goodput, target, batches, ceilings. */
static void point_figures(const sweep_t *s, point_t *pt)
{
    pt->goodput = pt->r.elapsed_s > 0 ? (double)pt->r.by_status[200] / pt->r.elapsed_s : 0;
    pt->meets = pt->r.latency.n > 0 && ig_load_ms(&pt->r, 0.99) <= s->target_ms &&
                pt->r.errors_total == 0 && pt->r.by_status[200] == pt->r.responses;
    pt->mean_rows = NAN;
    pt->max_rows = 0;
    if (pt->have_stats && pt->seen.calls > 0) {
        pt->mean_rows = (double)pt->seen.rows / (double)pt->seen.calls;
        pt->max_rows = pt->seen.nsizes ? pt->seen.size[pt->seen.nsizes - 1] : 0;
    }
    double req_rows = (double)s->rows_per_request;
    pt->rows_at_max = s->active[AX_MAX_SIZE]
                          ? rows_at_max_size(pt->v[AX_MAX_SIZE], s->rows_per_request)
                          : req_rows;
    pt->limit_at_max = ceiling_rps(&s->cost, pt->rows_at_max, req_rows);
    pt->limit_at_mean = ceiling_rps(&s->cost, pt->mean_rows, req_rows);
}

static int run_point(sweep_t *s, point_t *pt, int model_port, char *err, size_t errlen)
{
    cJSON *cfg = point_config(s, pt);
    ig_peer_t gw = {.kind = IG_PEER_INFERGATE};
    int rc =
        ig_peer_start(&s->base.env, &gw, model_port, s->base.load.connections, cfg, err, errlen);
    cJSON_Delete(cfg);
    if (rc < 0)
        return rc;
    snprintf(s->base.url, sizeof(s->base.url), "http://127.0.0.1:%d%s", gw.port, s->base.path);
    fprintf(stderr, "infergate-bench: sweep point %zu:", s->npoints);
    for (size_t k = 0; k < NAXES; k++)
        if (s->active[k])
            fprintf(stderr, " %s=%llu", axes[k].label, (unsigned long long)pt->v[k]);
    fprintf(stderr, "\n");
    /* The warm-up is a load of its own, so that the model's counters can be
     * read between it and the measured load, when nothing is in flight. */
    ig_load_opts_t o = s->base.load;
    o.url = s->base.url;
    o.warmup_s = 0;
    if (s->base.load.warmup_s > 0) {
        ig_load_opts_t w = o;
        w.duration_s = s->base.load.warmup_s;
        rc = ig_load_run(&w, &pt->r, err, errlen);
        if (rc == 0 && pt->r.interrupted)
            rc = IG_ECANCELED;
        memset(&pt->r, 0, sizeof(pt->r));
    }
    model_stats_t before = {0}, after = {0};
    if (rc == 0)
        rc = stats_when_idle(model_port, &before, err, errlen);
    if (rc == 0)
        rc = ig_load_run(&o, &pt->r, err, errlen);
    if (rc == 0 && pt->r.interrupted)
        rc = IG_ECANCELED;
    if (rc == 0)
        rc = stats_when_idle(model_port, &after, err, errlen);
    ig_peer_stop(&gw);
    if (rc == 0)
        stats_delta(&before, &after, &pt->seen);
    stats_free(&before);
    stats_free(&after);
    if (rc < 0)
        return rc;
    pt->have_stats = true;
    pt->ran = true;
    point_figures(s, pt);
    return 0;
}

static int run(sweep_t *s, char *err, size_t errlen)
{
    ig_proc_t model;
    int model_port = 0;
    memset(&model, 0, sizeof(model));
    if (!ig_proc_executable(s->base.env.gateway)) {
        snprintf(err, errlen, "--gateway: %s is not an executable", s->base.env.gateway);
        return IG_ENOTFOUND;
    }
    int rc = ig_model_start(&s->base.env, s->base.model_args, &model, &model_port, err, errlen);
    if (rc < 0)
        return rc;
    size_t idx[NAXES] = {0};
    for (;;) {
        point_t *pt = &s->points[s->npoints++];
        for (size_t k = 0; k < NAXES; k++)
            pt->v[k] = s->values[k][idx[k]];
        if ((rc = run_point(s, pt, model_port, err, errlen)) < 0)
            break;
        /* Next grid point: an odometer whose last axis turns fastest, so the
         * table reads like nested loops in the order of the axes. */
        size_t k = NAXES;
        while (k > 0 && ++idx[k - 1] == s->nvalues[k - 1])
            idx[--k] = 0;
        if (k == 0)
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

/* ---- reports ---------------------------------------------------------------- */

/* A figure with `prec` decimals, or "-" when there is none (24-byte buffer). */
static const char *fmt(char *buf, int prec, double v)
{
    if (isnan(v) || isinf(v))
        return "-";
    snprintf(buf, 24, "%.*f", prec, v);
    return buf;
}

static void print_table(const sweep_t *s)
{
    ig_bench_machine_print();
    char loop[48] = "closed loop";
    if (s->base.load.rate > 0)
        snprintf(loop, sizeof(loop), "open loop at %g req/s", s->base.load.rate);
    printf("load: %s %s (route %s, %s), %u keep-alive connections, %s, %.1f s per point; "
           "model args '%s'\n",
           s->base.load.method, s->base.path, s->route_match, ig_protocol_name(s->route_protocol),
           s->base.load.connections, loop, s->base.load.duration_s, s->base.model_args);
    if (!isnan(s->limit_rps))
        printf("cost model: %g instance(s), %g us + %g us/row per call; %ld row(s) per request; "
               "ceiling without batching %.0f req/s\n",
               s->cost.instances, s->cost.base_us + s->cost.delay_ms * 1000.0, s->cost.per_row_us,
               s->rows_per_request, s->limit_rps);
    printf("p99 target: %.3f ms\n\n", s->target_ms);
    for (size_t k = 0; k < NAXES; k++)
        if (s->active[k])
            printf("%11s ", axes[k].col);
    printf("%10s %8s %8s %9s %9s %6s %9s %6s %7s %s\n", "goodput/s", "p50 ms", "p99 ms",
           "rows/call", "ceil@max", "of", "ceil@mean", "of", "non-200", "meets");
    for (size_t p = 0; p < s->npoints; p++) {
        const point_t *pt = &s->points[p];
        if (!pt->ran)
            continue;
        for (size_t k = 0; k < NAXES; k++)
            if (s->active[k])
                printf("%11llu ", (unsigned long long)pt->v[k]);
        char f[5][24];
        printf("%10.0f %8.3f %8.3f %9s %9s %6s %9s %6s %7llu %s\n", pt->goodput,
               ig_load_ms(&pt->r, 0.5), ig_load_ms(&pt->r, 0.99), fmt(f[0], 2, pt->mean_rows),
               fmt(f[1], 0, pt->limit_at_max),
               fmt(f[2], 2, ig_bench_ratio(pt->goodput, pt->limit_at_max)),
               fmt(f[3], 0, pt->limit_at_mean),
               fmt(f[4], 2, ig_bench_ratio(pt->goodput, pt->limit_at_mean)),
               (unsigned long long)(pt->r.responses - pt->r.by_status[200] + pt->r.errors_total),
               pt->meets ? "yes" : "no");
    }
    printf("\nrows/call: mean rows per call the model saw (its /stats, measured load only).\n"
           "ceil@max, ceil@mean: the cost model's req/s ceiling with calls of max_size rows\n"
           "and of rows/call rows; 'of': goodput as a fraction of it.\n");
    const point_t *b = best_point(s);
    if (b) {
        printf("\nbest:");
        for (size_t k = 0; k < NAXES; k++)
            if (s->active[k])
                printf(" %s=%llu", axes[k].label, (unsigned long long)b->v[k]);
        printf(" (%.0f req/s, p99 %.3f ms)\n", b->goodput, ig_load_ms(&b->r, 0.99));
    } else {
        printf("\nbest: no setting met p99 <= %.3f ms without errors\n", s->target_ms);
    }
}

static cJSON *model_json(const point_t *pt)
{
    if (!pt->have_stats)
        return cJSON_CreateNull();
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "calls", (double)pt->seen.calls);
    cJSON_AddNumberToObject(m, "rows", (double)pt->seen.rows);
    cJSON_AddNumberToObject(m, "errors", (double)pt->seen.errors);
    cJSON *sizes = cJSON_AddObjectToObject(m, "batch_sizes");
    for (size_t k = 0; k < pt->seen.nsizes; k++) {
        char key[24];
        snprintf(key, sizeof(key), "%llu", (unsigned long long)pt->seen.size[k]);
        cJSON_AddNumberToObject(sizes, key, (double)pt->seen.count[k]);
    }
    ig_bench_json_number(m, "mean_batch_rows", pt->mean_rows);
    cJSON_AddNumberToObject(m, "max_batch_rows", (double)pt->max_rows);
    return m;
}

static void print_json(const sweep_t *s)
{
    cJSON *j = cJSON_CreateObject();
    ig_bench_machine_json(j);
    cJSON_AddNumberToObject(j, "p99_target_ms", s->target_ms);
    cJSON_AddStringToObject(j, "model_args", s->base.model_args);
    cJSON *route = cJSON_AddObjectToObject(j, "route");
    cJSON_AddStringToObject(route, "match", s->route_match);
    cJSON_AddStringToObject(route, "protocol", ig_protocol_name(s->route_protocol));
    cJSON *cost = cJSON_AddObjectToObject(j, "cost_model");
    cJSON_AddNumberToObject(cost, "base_us", s->cost.base_us);
    cJSON_AddNumberToObject(cost, "per_row_us", s->cost.per_row_us);
    cJSON_AddNumberToObject(cost, "instances", s->cost.instances);
    cJSON_AddNumberToObject(cost, "delay_ms", s->cost.delay_ms);
    if (s->rows_per_request > 0)
        cJSON_AddNumberToObject(j, "rows_per_request", (double)s->rows_per_request);
    else
        cJSON_AddNullToObject(j, "rows_per_request");
    ig_bench_json_number(j, "limit_rps", s->limit_rps);
    cJSON *pts = cJSON_AddArrayToObject(j, "points");
    const point_t *b = best_point(s);
    for (size_t p = 0; p < s->npoints; p++) {
        const point_t *pt = &s->points[p];
        if (!pt->ran)
            continue;
        cJSON *pj = cJSON_CreateObject();
        cJSON *set = cJSON_AddObjectToObject(pj, "settings");
        for (size_t k = 0; k < NAXES; k++)
            if (s->active[k])
                cJSON_AddNumberToObject(set, axes[k].label, (double)pt->v[k]);
        cJSON_AddNumberToObject(pj, "goodput_rps", pt->goodput);
        cJSON_AddBoolToObject(pj, "meets_target", pt->meets);
        cJSON_AddItemToObject(pj, "model", model_json(pt));
        ig_bench_json_number(pj, "rows_per_call_at_max_size", pt->rows_at_max);
        ig_bench_json_number(pj, "limit_rps_at_max_size", pt->limit_at_max);
        ig_bench_json_number(pj, "of_limit_at_max_size",
                             ig_bench_ratio(pt->goodput, pt->limit_at_max));
        ig_bench_json_number(pj, "limit_rps_at_mean_batch", pt->limit_at_mean);
        ig_bench_json_number(pj, "of_limit_at_mean_batch",
                             ig_bench_ratio(pt->goodput, pt->limit_at_mean));
        ig_load_opts_t o = s->base.load;
        o.warmup_s = 0;
        cJSON_AddItemToObject(pj, "load", ig_bench_load_json(&o, &pt->r));
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
    if (ig_bench_help(argc, argv, usage_sweep))
        return 0;
    sweep_t *s = ig_xcalloc(1, sizeof(*s));
    ig_bench_setup_init(&s->base, "--cost-base-us 2000 --cost-per-row-us 50 --max-concurrency 4");
    char err[1024];
    if (parse(s, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench sweep: %s\n", err);
        ig_bench_setup_dispose(&s->base);
        free(s);
        return IG_BENCH_EXIT_USAGE;
    }
    parse_cost(s->base.model_args, &s->cost);
    s->rows_per_request = body_rows(s->base.load.body);
    s->limit_rps = ceiling_rps(&s->cost, (double)s->rows_per_request, (double)s->rows_per_request);
    int rc = ig_bench_env_open(&s->base.env, err, sizeof(err));
    if (rc == 0)
        rc = run(s, err, sizeof(err));
    int code = ig_bench_exit_code("sweep", rc, err);
    if (code == IG_BENCH_EXIT_OK) {
        if (s->base.json)
            print_json(s);
        else
            print_table(s);
    }
    ig_bench_env_close(&s->base.env, code == IG_BENCH_EXIT_FAIL);
    for (size_t p = 0; p < s->npoints; p++)
        stats_free(&s->points[p].seen);
    ig_bench_setup_dispose(&s->base);
    free(s);
    return code;
}
