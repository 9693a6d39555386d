/*
 * compare.c: `infergate-bench compare`, the same load direct to the model and
 * through each proxy, side by side in one run.
 *
 * One infergate-model serves every peer. All proxies are started up front on
 * their own loopback ports and stay up for the whole run; the rounds then
 * visit the peers in alternating order (forward, backward, forward, …) so
 * that slow drifts of a noisy machine spread over all of them instead of
 * favouring whoever ran first. Memory is read from /proc/PID/status before
 * each peer's load and at its end, with the connections still open.
 *
 * Optional phases: --idle-connections N opens N keep-alive connections to
 * each peer, one request each, and reports the RSS growth per connection;
 * --wrk PATH runs wrk against each peer right after our own load, so an
 * independent generator's figures come from the same processes.
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
#include "wrk.h"

#define MAX_ROUNDS 20

static const char usage_compare[] =
    "usage: infergate-bench compare [flags]\n"
    "\n"
    "Starts one infergate-model, puts each peer in front of it on free loopback ports and\n"
    "runs the same keep-alive load through each, alternating the order over the rounds.\n"
    "\n"
    "  --peers LIST         any of direct,infergate,nginx,haproxy (default: all four);\n"
    "                       peers that are not installed are skipped with a note\n"
    "  --model-args 'FLAGS' infergate-model flags (default '--max-concurrency 0')\n"
    "  --connections N      keep-alive connections (default 64)\n"
    "  --duration S         seconds of measured load per peer and round (default 10)\n"
    "  --warmup S           unmeasured load before each measurement (default 1)\n"
    "  --rounds N           rounds, alternating the peer order (default 2)\n"
    "  --path P             request path (default /v1/models/iris:predict with a one-row\n"
    "                       KServe V1 body; a --path without --body sends GET)\n"
    "  --method M, --body STRING, --body-file F, --header 'K: V'   as for `load`\n"
    "  --idle-connections N also open N idle keep-alive connections to each peer (one\n"
    "                       request each) and report RSS per idle connection\n"
    "  --wrk PATH           also run wrk (e.g. /usr/bin/wrk) against each peer, per round\n"
    "  --wrk-threads N      wrk -t (default 2)\n"
    "  --gateway PATH, --model PATH, --nginx PATH, --haproxy PATH   the binaries\n"
    "                       (default: next to infergate-bench; /usr/sbin for the proxies)\n"
    "  --keep-dir           keep the temp dir with configs and logs\n"
    "  --json               one JSON object on stdout instead of the tables\n"
    "  -h, --help           this text\n";

static const char default_path[] = "/v1/models/iris:predict";
static const char default_body[] = "{\"instances\":[[5.1,3.5,1.4,0.2]]}";

typedef struct {
    ig_peer_t peer;
    bool wanted, skipped;
    char note[320];
    ig_load_result_t runs[MAX_ROUNDS];
    ig_wrk_result_t wrk[MAX_ROUNDS];
    unsigned nruns, nwrk;
    ig_load_result_t idle;
    bool have_idle;
    ig_hist_t merged;
    double rps_mean;
} peer_run_t;

typedef struct {
    ig_load_opts_t load;
    char *owned_body;
    char path[2048];
    char url[2200];
    const char *model_args;
    unsigned rounds;
    unsigned idle_connections;
    const char *wrk;
    unsigned wrk_threads;
    bool json;
    ig_bench_env_t env;
    peer_run_t peers[IG_PEER__COUNT];
} compare_t;

static int parse(compare_t *c, int argc, char **argv, char *err, size_t errlen)
{
    ig_load_opts_t *o = &c->load;
    uint64_t u;
    bool method_set = false, path_set = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (!strcmp(a, "--json")) {
            c->json = true;
            continue;
        }
        if (!strcmp(a, "--keep-dir")) {
            c->env.keep_dir = true;
            continue;
        }
        const char *prev_method = o->method;
        if ((m = ig_bench_request_flag(argc, argv, &i, o, &c->owned_body, err, errlen)) != 0) {
            if (m < 0)
                return IG_EINVAL;
            method_set |= o->method != prev_method;
            continue;
        }
        if ((m = ig_cli_match(argc, argv, &i, "--peers", &v, err, errlen)) != 0) {
            if (m < 0)
                return m;
            for (int k = 0; k < IG_PEER__COUNT; k++)
                c->peers[k].wanted = false;
            const char *p = v;
            for (;;) {
                size_t len = strcspn(p, ",");
                ig_peer_kind_t kind;
                if (ig_peer_kind_parse(p, len, &kind) < 0) {
                    snprintf(err, errlen,
                             "--peers: unknown peer '%.*s' (expected direct, infergate, nginx, "
                             "haproxy)",
                             (int)len, p);
                    return IG_EINVAL;
                }
                c->peers[kind].wanted = true;
                if (!p[len])
                    break;
                p += len + 1;
            }
        } else if ((m = ig_cli_match(argc, argv, &i, "--model-args", &v, err, errlen))) {
            if (m < 0)
                return m;
            c->model_args = v;
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
        } else if ((m = ig_cli_match(argc, argv, &i, "--rounds", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--rounds", v, 1, MAX_ROUNDS, &u, err, errlen) < 0)
                return IG_EINVAL;
            c->rounds = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--path", &v, err, errlen))) {
            if (m < 0)
                return m;
            if (v[0] != '/' || strlen(v) >= sizeof(c->path) || strpbrk(v, " \t\r\n#")) {
                snprintf(err, errlen,
                         "--path: expected an absolute path like /v2/health/ready, "
                         "got '%s'",
                         v);
                return IG_EINVAL;
            }
            snprintf(c->path, sizeof(c->path), "%s", v);
            path_set = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--idle-connections", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--idle-connections", v, 0, 20000, &u, err, errlen) < 0)
                return IG_EINVAL;
            c->idle_connections = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--wrk", &v, err, errlen))) {
            if (m < 0)
                return m;
            if (!ig_proc_executable(v)) {
                snprintf(err, errlen, "--wrk: %s is not an executable", v);
                return IG_EINVAL;
            }
            c->wrk = v;
        } else if ((m = ig_cli_match(argc, argv, &i, "--wrk-threads", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--wrk-threads", v, 1, 64, &u, err, errlen) < 0)
                return IG_EINVAL;
            c->wrk_threads = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--gateway", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->env.gateway, sizeof(c->env.gateway), "%s", v);
        } else if ((m = ig_cli_match(argc, argv, &i, "--model", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->env.model, sizeof(c->env.model), "%s", v);
        } else if ((m = ig_cli_match(argc, argv, &i, "--nginx", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->env.nginx, sizeof(c->env.nginx), "%s", v);
        } else if ((m = ig_cli_match(argc, argv, &i, "--haproxy", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->env.haproxy, sizeof(c->env.haproxy), "%s", v);
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench compare --help)", a);
            return IG_EINVAL;
        }
    }
    if (!path_set && !o->body.base) {
        snprintf(c->path, sizeof(c->path), "%s", default_path);
        o->body = IG_SLICE_LIT(default_body);
    }
    if (o->body.base) {
        if (!method_set)
            o->method = "POST";
        ig_load_default_content_type(o, "application/json");
    }
    return 0;
}

/* ---- running ----------------------------------------------------------- */

static int run_load(compare_t *c, peer_run_t *pr, unsigned round, char *err, size_t errlen)
{
    ig_load_opts_t o = c->load;
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d%s", pr->peer.port, c->path);
    o.url = c->url;
    o.rss_pid = pr->peer.rss_pid;
    fprintf(stderr, "infergate-bench: round %u: %s, %u connections, %.1f s\n", round + 1,
            pr->peer.name, o.connections, o.duration_s);
    ig_load_result_t *r = &pr->runs[pr->nruns];
    int rc = ig_load_run(&o, r, err, errlen);
    if (rc < 0)
        return rc;
    pr->nruns++;
    if (r->interrupted)
        return IG_ECANCELED;
    if (c->wrk) {
        char log[64];
        snprintf(log, sizeof(log), "wrk-%s-%u.log", pr->peer.name, round + 1);
        rc = ig_wrk_run(c->wrk, &c->env, &o, c->wrk_threads, log, &pr->wrk[pr->nwrk], err, errlen);
        if (rc < 0)
            return rc;
        pr->nwrk++;
    }
    return 0;
}

static int run_idle(compare_t *c, peer_run_t *pr, char *err, size_t errlen)
{
    ig_load_opts_t o = c->load;
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d%s", pr->peer.port, c->path);
    o.url = c->url;
    o.rss_pid = pr->peer.rss_pid;
    o.idle_connections = c->idle_connections;
    fprintf(stderr, "infergate-bench: %s: %u idle connections\n", pr->peer.name,
            c->idle_connections);
    int rc = ig_load_run(&o, &pr->idle, err, errlen);
    if (rc < 0)
        return rc;
    pr->have_idle = true;
    return pr->idle.interrupted ? IG_ECANCELED : 0;
}

static double per_conn_kb(const ig_load_result_t *r)
{
    if (!r->connections_open || !r->rss_end_kb)
        return NAN;
    return ((double)r->rss_end_kb - (double)r->rss_before_kb) / r->connections_open;
}

static void summarize(compare_t *c)
{
    for (int k = 0; k < IG_PEER__COUNT; k++) {
        peer_run_t *pr = &c->peers[k];
        ig_hist_reset(&pr->merged);
        double sum = 0;
        for (unsigned r = 0; r < pr->nruns; r++) {
            ig_hist_merge(&pr->merged, &pr->runs[r].latency);
            sum += pr->runs[r].rps;
        }
        pr->rps_mean = pr->nruns ? sum / pr->nruns : 0;
    }
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : NAN;
}

/* "%9.2f", or a dash when there is nothing to compare with. */
static const char *fmt_num(char *buf, size_t len, double v, int width, int prec)
{
    if (isnan(v))
        snprintf(buf, len, "%*s", width, "-");
    else
        snprintf(buf, len, "%*.*f", width, prec, v);
    return buf;
}

static double wrk_mean(const peer_run_t *pr, int what)
{
    double s = 0;
    for (unsigned r = 0; r < pr->nwrk; r++)
        s += what == 0 ? pr->wrk[r].rps : what == 1 ? pr->wrk[r].p50_ms : pr->wrk[r].p99_ms;
    return pr->nwrk ? s / pr->nwrk : NAN;
}

static void print_tables(compare_t *c)
{
    const peer_run_t *direct = &c->peers[IG_PEER_DIRECT];
    const peer_run_t *nginx = &c->peers[IG_PEER_NGINX];
    int nproc;
    char cpu[256];
    ig_bench_machine(&nproc, cpu, sizeof(cpu));
    printf("machine: %d CPUs, %s\n", nproc, cpu);
    printf("load: %s %s, %u keep-alive connections, %.1f s per run after %.1f s warm-up, "
           "%u round(s), model args '%s'\n\n",
           c->load.method, c->path, c->load.connections, c->load.duration_s, c->load.warmup_s,
           c->rounds, c->model_args);
    printf("%-10s %10s %9s %9s %9s %9s %10s %10s %9s  %s\n", "peer", "req/s", "p50 ms", "p99 ms",
           "vs direct", "vs nginx", "RSS KiB", "RSS load", "KiB/conn", "req/s per round");
    for (int k = 0; k < IG_PEER__COUNT; k++) {
        const peer_run_t *pr = &c->peers[k];
        if (!pr->wanted || pr->skipped || !pr->nruns)
            continue;
        const ig_load_result_t *first = &pr->runs[0];
        uint64_t end_max = 0;
        for (unsigned r = 0; r < pr->nruns; r++)
            if (pr->runs[r].rss_end_kb > end_max)
                end_max = pr->runs[r].rss_end_kb;
        char r1[24], r2[24], r3[24];
        printf("%-10s %10.0f %9.3f %9.3f %s %s %10llu %10llu %s ", ig_peer_name(k), pr->rps_mean,
               (double)ig_hist_quantile(&pr->merged, 0.5) / 1000.0,
               (double)ig_hist_quantile(&pr->merged, 0.99) / 1000.0,
               fmt_num(r1, sizeof(r1), ratio(pr->rps_mean, direct->rps_mean), 9, 2),
               fmt_num(r2, sizeof(r2), ratio(pr->rps_mean, nginx->rps_mean), 9, 2),
               (unsigned long long)first->rss_before_kb, (unsigned long long)end_max,
               fmt_num(r3, sizeof(r3), per_conn_kb(first), 9, 1));
        for (unsigned r = 0; r < pr->nruns; r++)
            printf(" %.0f", pr->runs[r].rps);
        uint64_t bad = 0, errs = 0;
        for (unsigned r = 0; r < pr->nruns; r++) {
            bad += pr->runs[r].responses - pr->runs[r].by_status[200];
            errs += pr->runs[r].errors_total;
        }
        if (bad || errs)
            printf("  (%llu non-200, %llu errors)", (unsigned long long)bad,
                   (unsigned long long)errs);
        printf("\n");
    }
    if (c->wrk) {
        printf("\nwrk -t%u -c%u -d%.0fs --latency (same processes, right after each run above)\n",
               c->wrk_threads, c->load.connections, ceil(c->load.duration_s));
        printf("%-10s %10s %9s %9s %9s %9s  %s\n", "peer", "req/s", "p50 ms", "p99 ms", "vs direct",
               "vs nginx", "req/s per round");
        for (int k = 0; k < IG_PEER__COUNT; k++) {
            const peer_run_t *pr = &c->peers[k];
            if (!pr->wanted || pr->skipped || !pr->nwrk)
                continue;
            char r1[24], r2[24];
            printf("%-10s %10.0f %9.3f %9.3f %s %s ", ig_peer_name(k), wrk_mean(pr, 0),
                   wrk_mean(pr, 1), wrk_mean(pr, 2),
                   fmt_num(r1, sizeof(r1), ratio(wrk_mean(pr, 0), wrk_mean(direct, 0)), 9, 2),
                   fmt_num(r2, sizeof(r2), ratio(wrk_mean(pr, 0), wrk_mean(nginx, 0)), 9, 2));
            for (unsigned r = 0; r < pr->nwrk; r++)
                printf(" %.0f", pr->wrk[r].rps);
            uint64_t bad = 0;
            for (unsigned r = 0; r < pr->nwrk; r++)
                bad += pr->wrk[r].non_2xx + pr->wrk[r].socket_errors;
            if (bad)
                printf("  (%llu non-2xx or socket errors)", (unsigned long long)bad);
            printf("\n");
        }
    }
    if (c->idle_connections) {
        printf("\nidle keep-alive connections: %u per peer, one request each\n",
               c->idle_connections);
        printf("%-10s %12s %12s %10s %10s %10s\n", "peer", "RSS before", "RSS after", "open",
               "KiB/conn", "errors");
        for (int k = 0; k < IG_PEER__COUNT; k++) {
            const peer_run_t *pr = &c->peers[k];
            if (!pr->wanted || pr->skipped || !pr->have_idle)
                continue;
            char r1[24];
            printf("%-10s %12llu %12llu %10u %s %10llu%s\n", ig_peer_name(k),
                   (unsigned long long)pr->idle.rss_before_kb,
                   (unsigned long long)pr->idle.rss_end_kb, pr->idle.connections_open,
                   fmt_num(r1, sizeof(r1), per_conn_kb(&pr->idle), 10, 2),
                   (unsigned long long)(pr->idle.errors_total + pr->idle.responses -
                                        pr->idle.by_status[200]),
                   k == IG_PEER_DIRECT ? "  (infergate-model itself)" : "");
        }
    }
    for (int k = 0; k < IG_PEER__COUNT; k++)
        if (c->peers[k].wanted && c->peers[k].skipped)
            printf("note: %s\n", c->peers[k].note);
}

static void add_num_or_null(cJSON *o, const char *k, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void print_json(compare_t *c)
{
    const peer_run_t *direct = &c->peers[IG_PEER_DIRECT];
    const peer_run_t *nginx = &c->peers[IG_PEER_NGINX];
    cJSON *j = cJSON_CreateObject();
    int nproc;
    char cpu[256];
    ig_bench_machine(&nproc, cpu, sizeof(cpu));
    cJSON *m = cJSON_AddObjectToObject(j, "machine");
    cJSON_AddNumberToObject(m, "nproc", nproc);
    cJSON_AddStringToObject(m, "cpu", cpu);
    cJSON *cfg = cJSON_AddObjectToObject(j, "config");
    cJSON_AddStringToObject(cfg, "method", c->load.method);
    cJSON_AddStringToObject(cfg, "path", c->path);
    cJSON_AddNumberToObject(cfg, "connections", c->load.connections);
    cJSON_AddNumberToObject(cfg, "duration_s", c->load.duration_s);
    cJSON_AddNumberToObject(cfg, "warmup_s", c->load.warmup_s);
    cJSON_AddNumberToObject(cfg, "rounds", c->rounds);
    cJSON_AddStringToObject(cfg, "model_args", c->model_args);
    cJSON *peers = cJSON_AddArrayToObject(j, "peers");
    cJSON *skipped = cJSON_AddArrayToObject(j, "skipped");
    for (int k = 0; k < IG_PEER__COUNT; k++) {
        const peer_run_t *pr = &c->peers[k];
        if (!pr->wanted)
            continue;
        if (pr->skipped) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "name", ig_peer_name(k));
            cJSON_AddStringToObject(s, "note", pr->note);
            cJSON_AddItemToArray(skipped, s);
            continue;
        }
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToArray(peers, p);
        cJSON_AddStringToObject(p, "name", ig_peer_name(k));
        cJSON_AddNumberToObject(p, "rps", pr->rps_mean);
        cJSON_AddNumberToObject(p, "p50_ms", (double)ig_hist_quantile(&pr->merged, 0.5) / 1000.0);
        cJSON_AddNumberToObject(p, "p99_ms", (double)ig_hist_quantile(&pr->merged, 0.99) / 1000.0);
        add_num_or_null(p, "ratio_direct", ratio(pr->rps_mean, direct->rps_mean));
        add_num_or_null(p, "ratio_nginx", ratio(pr->rps_mean, nginx->rps_mean));
        if (pr->nruns)
            add_num_or_null(p, "rss_kb_per_connection", per_conn_kb(&pr->runs[0]));
        cJSON *runs = cJSON_AddArrayToObject(p, "runs");
        for (unsigned r = 0; r < pr->nruns; r++) {
            ig_load_opts_t o = c->load;
            o.url = "";
            cJSON *rj = ig_load_json(&o, &pr->runs[r]);
            cJSON_DeleteItemFromObject(rj, "url");
            cJSON_AddItemToArray(runs, rj);
        }
        if (c->wrk) {
            cJSON *w = cJSON_AddArrayToObject(p, "wrk");
            for (unsigned r = 0; r < pr->nwrk; r++) {
                cJSON *wj = cJSON_CreateObject();
                cJSON_AddNumberToObject(wj, "rps", pr->wrk[r].rps);
                cJSON_AddNumberToObject(wj, "p50_ms", pr->wrk[r].p50_ms);
                cJSON_AddNumberToObject(wj, "p99_ms", pr->wrk[r].p99_ms);
                cJSON_AddNumberToObject(wj, "requests", (double)pr->wrk[r].requests);
                cJSON_AddNumberToObject(wj, "non_2xx", (double)pr->wrk[r].non_2xx);
                cJSON_AddNumberToObject(wj, "socket_errors", (double)pr->wrk[r].socket_errors);
                cJSON_AddItemToArray(w, wj);
            }
        }
        if (pr->have_idle) {
            ig_load_opts_t o = c->load;
            o.url = "";
            o.idle_connections = c->idle_connections;
            cJSON *ij = ig_load_json(&o, &pr->idle);
            cJSON_DeleteItemFromObject(ij, "url");
            cJSON_AddItemToObject(p, "idle", ij);
        }
    }
    char *s = cJSON_Print(j);
    puts(s);
    free(s);
    cJSON_Delete(j);
}

static int run(compare_t *c, char *err, size_t errlen)
{
    ig_proc_t model;
    int model_port = 0;
    memset(&model, 0, sizeof(model));
    int rc = ig_model_start(&c->env, c->model_args, &model, &model_port, err, errlen);
    if (rc < 0)
        return rc;
    unsigned conns =
        c->load.connections > c->idle_connections ? c->load.connections : c->idle_connections;
    for (int k = 0; k < IG_PEER__COUNT && rc == 0; k++) {
        peer_run_t *pr = &c->peers[k];
        if (!pr->wanted)
            continue;
        pr->peer.kind = (ig_peer_kind_t)k;
        pr->peer.name = ig_peer_name((ig_peer_kind_t)k);
        if (!ig_peer_available(&c->env, (ig_peer_kind_t)k, pr->note, sizeof(pr->note))) {
            pr->skipped = true;
            fprintf(stderr, "infergate-bench: %s\n", pr->note);
            continue;
        }
        rc = ig_peer_start(&c->env, &pr->peer, model_port, conns, NULL, err, errlen);
        if (k == IG_PEER_DIRECT)
            pr->peer.rss_pid = model.pid;
    }
    /* Rounds alternate the order: forward, backward, forward, … */
    for (unsigned round = 0; rc == 0 && round < c->rounds; round++) {
        for (int n = 0; rc == 0 && n < IG_PEER__COUNT; n++) {
            int k = round % 2 == 0 ? n : IG_PEER__COUNT - 1 - n;
            peer_run_t *pr = &c->peers[k];
            if (pr->wanted && !pr->skipped)
                rc = run_load(c, pr, round, err, errlen);
        }
    }
    for (int k = 0; rc == 0 && c->idle_connections && k < IG_PEER__COUNT; k++) {
        peer_run_t *pr = &c->peers[k];
        if (pr->wanted && !pr->skipped)
            rc = run_idle(c, pr, err, errlen);
    }
    for (int k = IG_PEER__COUNT - 1; k >= 0; k--)
        if (c->peers[k].peer.running)
            ig_peer_stop(&c->peers[k].peer);
    ig_proc_stop(&model, 5000);
    return rc;
}

int ig_bench_compare(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_compare, stdout);
            return 0;
        }
    }
    compare_t *c = ig_xcalloc(1, sizeof(*c));
    ig_load_defaults(&c->load);
    c->load.warmup_s = 1;
    c->rounds = 2;
    c->wrk_threads = 2;
    c->model_args = "--max-concurrency 0";
    ig_bench_env_defaults(&c->env);
    for (int k = 0; k < IG_PEER__COUNT; k++)
        c->peers[k].wanted = true;
    char err[1024];
    if (parse(c, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench compare: %s\n", err);
        free(c->owned_body);
        free(c);
        return IG_BENCH_EXIT_USAGE;
    }
    int code = IG_BENCH_EXIT_OK;
    int rc = ig_bench_env_open(&c->env, err, sizeof(err));
    if (rc == 0)
        rc = run(c, err, sizeof(err));
    if (rc < 0) {
        code = rc == IG_ECANCELED ? IG_BENCH_EXIT_INTERRUPTED : IG_BENCH_EXIT_FAIL;
        fprintf(stderr, "infergate-bench compare: %s\n",
                rc == IG_ECANCELED ? "interrupted; every process it started is stopped" : err);
    } else {
        summarize(c);
        if (c->json)
            print_json(c);
        else
            print_tables(c);
    }
    ig_bench_env_close(&c->env, code == IG_BENCH_EXIT_FAIL);
    free(c->owned_body);
    free(c);
    return code;
}
