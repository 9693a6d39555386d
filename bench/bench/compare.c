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
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
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
    "  --path P             request path (default /v1/models/iris:predict, and without\n"
    "                       --body a one-row KServe V1 body; a --path without --body\n"
    "                       sends GET)\n"
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
    ig_bench_setup_t base; /* the load, the model, the binaries */
    unsigned rounds;
    unsigned idle_connections;
    const char *wrk;
    unsigned wrk_threads;
    peer_run_t peers[IG_PEER__COUNT];
} compare_t;

static int parse(compare_t *c, int argc, char **argv, char *err, size_t errlen)
{
    uint64_t u;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if ((m = ig_bench_setup_flag(argc, argv, &i, &c->base, err, errlen)) != 0) {
            if (m < 0)
                return m;
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
        } else if ((m = ig_cli_match(argc, argv, &i, "--rounds", &v, err, errlen))) {
            if (m < 0 || ig_cli_uint("--rounds", v, 1, MAX_ROUNDS, &u, err, errlen) < 0)
                return IG_EINVAL;
            c->rounds = (unsigned)u;
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
        } else if ((m = ig_cli_match(argc, argv, &i, "--nginx", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->base.env.nginx, sizeof(c->base.env.nginx), "%s", v);
        } else if ((m = ig_cli_match(argc, argv, &i, "--haproxy", &v, err, errlen))) {
            if (m < 0)
                return m;
            snprintf(c->base.env.haproxy, sizeof(c->base.env.haproxy), "%s", v);
        } else {
            snprintf(err, errlen, "unknown flag %s (see infergate-bench compare --help)", a);
            return IG_EINVAL;
        }
    }
    ig_bench_setup_finish(&c->base);
    return 0;
}

/* ---- running ----------------------------------------------------------- */

static int run_load(compare_t *c, peer_run_t *pr, unsigned round, char *err, size_t errlen)
{
    ig_load_opts_t o = c->base.load;
    snprintf(c->base.url, sizeof(c->base.url), "http://127.0.0.1:%d%s", pr->peer.port,
             c->base.path);
    o.url = c->base.url;
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
        rc = ig_wrk_run(c->wrk, &c->base.env, &o, c->wrk_threads, log, &pr->wrk[pr->nwrk], err,
                        errlen);
        if (rc < 0)
            return rc;
        pr->nwrk++;
    }
    return 0;
}

static int run_idle(compare_t *c, peer_run_t *pr, char *err, size_t errlen)
{
    ig_load_opts_t o = c->base.load;
    snprintf(c->base.url, sizeof(c->base.url), "http://127.0.0.1:%d%s", pr->peer.port,
             c->base.path);
    o.url = c->base.url;
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
    ig_bench_machine_print();
    printf("load: %s %s, %u keep-alive connections, %.1f s per run after %.1f s warm-up, "
           "%u round(s), model args '%s'\n\n",
           c->base.load.method, c->base.path, c->base.load.connections, c->base.load.duration_s,
           c->base.load.warmup_s, c->rounds, c->base.model_args);
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
               fmt_num(r1, sizeof(r1), ig_bench_ratio(pr->rps_mean, direct->rps_mean), 9, 2),
               fmt_num(r2, sizeof(r2), ig_bench_ratio(pr->rps_mean, nginx->rps_mean), 9, 2),
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
               c->wrk_threads, c->base.load.connections, ceil(c->base.load.duration_s));
        printf("%-10s %10s %9s %9s %9s %9s  %s\n", "peer", "req/s", "p50 ms", "p99 ms", "vs direct",
               "vs nginx", "req/s per round");
        for (int k = 0; k < IG_PEER__COUNT; k++) {
            const peer_run_t *pr = &c->peers[k];
            if (!pr->wanted || pr->skipped || !pr->nwrk)
                continue;
            char r1[24], r2[24];
            printf(
                "%-10s %10.0f %9.3f %9.3f %s %s ", ig_peer_name(k), wrk_mean(pr, 0),
                wrk_mean(pr, 1), wrk_mean(pr, 2),
                fmt_num(r1, sizeof(r1), ig_bench_ratio(wrk_mean(pr, 0), wrk_mean(direct, 0)), 9, 2),
                fmt_num(r2, sizeof(r2), ig_bench_ratio(wrk_mean(pr, 0), wrk_mean(nginx, 0)), 9, 2));
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

static void print_json(compare_t *c)
{
    const peer_run_t *direct = &c->peers[IG_PEER_DIRECT];
    const peer_run_t *nginx = &c->peers[IG_PEER_NGINX];
    cJSON *j = cJSON_CreateObject();
    ig_bench_machine_json(j);
    cJSON *cfg = cJSON_AddObjectToObject(j, "config");
    cJSON_AddStringToObject(cfg, "method", c->base.load.method);
    cJSON_AddStringToObject(cfg, "path", c->base.path);
    cJSON_AddNumberToObject(cfg, "connections", c->base.load.connections);
    cJSON_AddNumberToObject(cfg, "duration_s", c->base.load.duration_s);
    cJSON_AddNumberToObject(cfg, "warmup_s", c->base.load.warmup_s);
    cJSON_AddNumberToObject(cfg, "rounds", c->rounds);
    cJSON_AddStringToObject(cfg, "model_args", c->base.model_args);
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
        ig_bench_json_number(p, "ratio_direct", ig_bench_ratio(pr->rps_mean, direct->rps_mean));
        ig_bench_json_number(p, "ratio_nginx", ig_bench_ratio(pr->rps_mean, nginx->rps_mean));
        if (pr->nruns)
            ig_bench_json_number(p, "rss_kb_per_connection", per_conn_kb(&pr->runs[0]));
        cJSON *runs = cJSON_AddArrayToObject(p, "runs");
        for (unsigned r = 0; r < pr->nruns; r++)
            cJSON_AddItemToArray(runs, ig_bench_load_json(&c->base.load, &pr->runs[r]));
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
            ig_load_opts_t o = c->base.load;
            o.idle_connections = c->idle_connections;
            cJSON_AddItemToObject(p, "idle", ig_bench_load_json(&o, &pr->idle));
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
    int rc = ig_model_start(&c->base.env, c->base.model_args, &model, &model_port, err, errlen);
    if (rc < 0)
        return rc;
    unsigned conns = c->base.load.connections > c->idle_connections ? c->base.load.connections
                                                                    : c->idle_connections;
    for (int k = 0; k < IG_PEER__COUNT && rc == 0; k++) {
        peer_run_t *pr = &c->peers[k];
        if (!pr->wanted)
            continue;
        pr->peer.kind = (ig_peer_kind_t)k;
        pr->peer.name = ig_peer_name((ig_peer_kind_t)k);
        if (!ig_peer_available(&c->base.env, (ig_peer_kind_t)k, pr->note, sizeof(pr->note))) {
            pr->skipped = true;
            fprintf(stderr, "infergate-bench: %s\n", pr->note);
            continue;
        }
        rc = ig_peer_start(&c->base.env, &pr->peer, model_port, conns, NULL, err, errlen);
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
    if (ig_bench_help(argc, argv, usage_compare))
        return 0;
    compare_t *c = ig_xcalloc(1, sizeof(*c));
    ig_bench_setup_init(&c->base, "--max-concurrency 0");
    c->rounds = 2;
    c->wrk_threads = 2;
    for (int k = 0; k < IG_PEER__COUNT; k++)
        c->peers[k].wanted = true;
    char err[1024];
    if (parse(c, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-bench compare: %s\n", err);
        ig_bench_setup_dispose(&c->base);
        free(c);
        return IG_BENCH_EXIT_USAGE;
    }
    int rc = ig_bench_env_open(&c->base.env, err, sizeof(err));
    if (rc == 0)
        rc = run(c, err, sizeof(err));
    int code = ig_bench_exit_code("compare", rc, err);
    if (code == IG_BENCH_EXIT_OK) {
        summarize(c);
        if (c->base.json)
            print_json(c);
        else
            print_tables(c);
    }
    ig_bench_env_close(&c->base.env, code == IG_BENCH_EXIT_FAIL);
    ig_bench_setup_dispose(&c->base);
    free(c);
    return code;
}
