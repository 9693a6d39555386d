/*
 * main.c: infergate-bench's entry point and its `load` subcommand.
 *
 * main() dispatches on the first argument; `compare`, `sweep`, `codec` and
 * `overhead` live in their own files. The flags that describe a request
 * (--method, --body, --body-file, --header) are parsed here once for the
 * commands that take them, and what the others share (their common flags,
 * exit codes, the machine and number helpers of their reports) is written
 * here once for all of them.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "procs.h"

#define MAX_BODY_FILE (64u * 1024 * 1024)

static const char usage_main[] =
    "usage: infergate-bench <command> [flags]\n"
    "\n"
    "commands:\n"
    "  load      keep-alive HTTP/1.1 load against one URL (closed or open loop)\n"
    "  compare   the same load direct to infergate-model and through infergate, nginx\n"
    "            and HAProxy, side by side\n"
    "  sweep     infergate's throughput and p99 per upstream.max_concurrency, and the\n"
    "            best setting that meets a p99 target\n"
    "  codec     the batching codecs' MB/s per core (parse, merge, split), against the\n"
    "            pre-span cJSON codec and memcpy\n"
    "  overhead  the gateway's CPU per request on a batching route against passthrough\n"
    "\n"
    "`infergate-bench <command> --help` lists a command's flags.\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted\n";

static const char usage_load[] =
    "usage: infergate-bench load --url URL [flags]\n"
    "\n"
    "  --url URL            http://host:port/path[?query] (required)\n"
    "  --connections N      keep-alive connections (default 64)\n"
    "  --duration S         seconds of measured load (default 10; decimals allowed)\n"
    "  --requests N         stop after N requests instead of a duration\n"
    "  --rate R             open loop: R requests/s on a fixed schedule, latency from the\n"
    "                       intended send time (default: closed loop)\n"
    "  --warmup S           seconds of unmeasured load first (default 0)\n"
    "  --timeout-ms N       per-request timeout (default 30000)\n"
    "  --method M           request method (default GET, or POST with a body)\n"
    "  --body STRING        request body (adds Content-Type: application/json unless given)\n"
    "  --body-file F        request body from a file\n"
    "  --header 'K: V'      extra request header, repeatable\n"
    "  --rss-pid PID        also report VmRSS of PID (and its children) before and at the end\n"
    "  --json               one JSON object on stdout instead of the text summary\n"
    "  -h, --help           this text\n";

int ig_bench_request_flag(int argc, char **argv, int *i, ig_load_opts_t *o, char **owned, char *err,
                          size_t errlen)
{
    const char *v;
    int m;
    if ((m = ig_cli_match(argc, argv, i, "--method", &v, err, errlen)) != 0) {
        if (m < 0)
            return m;
        size_t n = strlen(v);
        bool ok = n > 0 && n <= 16;
        for (size_t k = 0; ok && k < n; k++)
            ok = v[k] >= 'A' && v[k] <= 'Z';
        if (!ok) {
            snprintf(err, errlen, "--method: expected an upper-case token like POST, got '%s'", v);
            return IG_EINVAL;
        }
        o->method = v;
        return 1;
    }
    if ((m = ig_cli_match(argc, argv, i, "--body", &v, err, errlen)) != 0) {
        if (m < 0)
            return m;
        if (o->body.base) {
            snprintf(err, errlen, "--body: a body was already given");
            return IG_EINVAL;
        }
        o->body = ig_slice_cstr(v);
        if (!o->body.base)
            o->body = IG_SLICE_LIT("");
        return 1;
    }
    if ((m = ig_cli_match(argc, argv, i, "--body-file", &v, err, errlen)) != 0) {
        if (m < 0)
            return m;
        if (o->body.base) {
            snprintf(err, errlen, "--body-file: a body was already given");
            return IG_EINVAL;
        }
        size_t len = 0;
        int rc = ig_file_read(v, MAX_BODY_FILE, owned, &len);
        if (rc != 0) {
            if (rc == IG_ETOOLARGE)
                snprintf(err, errlen, "--body-file: %s: larger than 64 MiB", v);
            else
                snprintf(err, errlen, "--body-file: cannot read %s: %s", v, strerror(errno));
            return IG_EINVAL;
        }
        o->body = ig_slice(*owned ? *owned : "", len);
        return 1;
    }
    if ((m = ig_cli_match(argc, argv, i, "--header", &v, err, errlen)) != 0) {
        if (m < 0)
            return m;
        return ig_load_add_header(o, v, err, errlen) < 0 ? IG_EINVAL : 1;
    }
    return 0;
}

static void machine(int *nproc, char *cpu, size_t len)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    *nproc = n > 0 ? (int)n : 0;
    snprintf(cpu, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(cpu, len, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

void ig_bench_machine_print(void)
{
    int nproc;
    char cpu[256];
    machine(&nproc, cpu, sizeof(cpu));
    printf("machine: %d CPUs, %s\n", nproc, cpu);
}

void ig_bench_machine_json(cJSON *parent)
{
    int nproc;
    char cpu[256];
    machine(&nproc, cpu, sizeof(cpu));
    cJSON *m = cJSON_AddObjectToObject(parent, "machine");
    cJSON_AddNumberToObject(m, "nproc", nproc);
    cJSON_AddStringToObject(m, "cpu", cpu);
}

bool ig_bench_help(int argc, char **argv, const char *usage)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return true;
        }
    }
    return false;
}

/* ---- what compare and sweep share ---------------------------------------- */

static const char default_path[] = "/v1/models/iris:predict";
static const char default_body[] = "{\"instances\":[[5.1,3.5,1.4,0.2]]}";

void ig_bench_setup_init(ig_bench_setup_t *b, const char *model_args)
{
    memset(b, 0, sizeof(*b));
    ig_load_defaults(&b->load);
    b->load.warmup_s = 1;
    b->model_args = model_args;
    ig_bench_env_defaults(&b->env);
}

int ig_bench_setup_flag(int argc, char **argv, int *i, ig_bench_setup_t *b, char *err,
                        size_t errlen)
{
    ig_load_opts_t *o = &b->load;
    const char *a = argv[*i], *v;
    uint64_t u;
    int m;
    if (!strcmp(a, "--json")) {
        b->json = true;
        return 1;
    }
    if (!strcmp(a, "--keep-dir")) {
        b->env.keep_dir = true;
        return 1;
    }
    const char *prev_method = o->method;
    if ((m = ig_bench_request_flag(argc, argv, i, o, &b->owned_body, err, errlen)) != 0) {
        if (m < 0)
            return IG_EINVAL;
        b->method_set |= o->method != prev_method;
        return 1;
    }
    if ((m = ig_cli_match(argc, argv, i, "--model-args", &v, err, errlen))) {
        if (m < 0)
            return m;
        b->model_args = v;
    } else if ((m = ig_cli_match(argc, argv, i, "--connections", &v, err, errlen))) {
        if (m < 0 || ig_cli_uint("--connections", v, 1, 20000, &u, err, errlen) < 0)
            return IG_EINVAL;
        o->connections = (unsigned)u;
    } else if ((m = ig_cli_match(argc, argv, i, "--duration", &v, err, errlen))) {
        if (m < 0 || ig_cli_number("--duration", v, 0.01, 3600, &o->duration_s, err, errlen))
            return IG_EINVAL;
    } else if ((m = ig_cli_match(argc, argv, i, "--warmup", &v, err, errlen))) {
        if (m < 0 || ig_cli_number("--warmup", v, 0, 600, &o->warmup_s, err, errlen))
            return IG_EINVAL;
    } else if ((m = ig_cli_match(argc, argv, i, "--path", &v, err, errlen))) {
        if (m < 0)
            return m;
        if (v[0] != '/' || strlen(v) >= sizeof(b->path) || strpbrk(v, " \t\r\n#")) {
            snprintf(err, errlen,
                     "--path: expected an absolute path like /v2/health/ready, "
                     "got '%s'",
                     v);
            return IG_EINVAL;
        }
        snprintf(b->path, sizeof(b->path), "%s", v);
        b->path_set = true;
    } else if ((m = ig_cli_match(argc, argv, i, "--gateway", &v, err, errlen))) {
        if (m < 0)
            return m;
        snprintf(b->env.gateway, sizeof(b->env.gateway), "%s", v);
    } else if ((m = ig_cli_match(argc, argv, i, "--model", &v, err, errlen))) {
        if (m < 0)
            return m;
        snprintf(b->env.model, sizeof(b->env.model), "%s", v);
    }
    return m;
}

void ig_bench_setup_finish(ig_bench_setup_t *b)
{
    ig_load_opts_t *o = &b->load;
    if (!b->path_set) {
        /* A body alone (more rows, say) still goes to the default model. */
        snprintf(b->path, sizeof(b->path), "%s", default_path);
        if (!o->body.base)
            o->body = IG_SLICE_LIT(default_body);
    }
    if (o->body.base) {
        if (!b->method_set)
            o->method = "POST";
        ig_load_default_content_type(o, "application/json");
    }
}

void ig_bench_setup_dispose(ig_bench_setup_t *b)
{
    free(b->owned_body);
    b->owned_body = NULL;
}

int ig_bench_exit_code(const char *cmd, int rc, const char *err)
{
    if (rc >= 0)
        return IG_BENCH_EXIT_OK;
    fprintf(stderr, "infergate-bench %s: %s\n", cmd,
            rc == IG_ECANCELED ? "interrupted; every process it started is stopped" : err);
    return rc == IG_ECANCELED ? IG_BENCH_EXIT_INTERRUPTED : IG_BENCH_EXIT_FAIL;
}

double ig_bench_ratio(double a, double b)
{
    return isnan(a) || isnan(b) || b <= 0 ? NAN : a / b;
}

void ig_bench_json_number(cJSON *o, const char *k, double v)
{
    if (isnan(v) || isinf(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

cJSON *ig_bench_load_json(const ig_load_opts_t *o, const ig_load_result_t *r)
{
    ig_load_opts_t copy = *o;
    copy.url = "";
    cJSON *j = ig_load_json(&copy, r);
    cJSON_DeleteItemFromObject(j, "url");
    return j;
}

/* ---- load ------------------------------------------------------------------ */

int ig_bench_load(int argc, char **argv)
{
    ig_load_opts_t o;
    ig_load_defaults(&o);
    char err[512];
    char *owned = NULL;
    bool json = false, have_duration = false, method_set = false;
    uint64_t u;
    int rc = IG_BENCH_EXIT_USAGE;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int m;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_load, stdout);
            free(owned);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        const char *prev_method = o.method;
        if ((m = ig_bench_request_flag(argc, argv, &i, &o, &owned, err, sizeof(err))) != 0) {
            if (m < 0)
                goto usage;
            method_set |= o.method != prev_method;
            continue;
        }
        if ((m = ig_cli_match(argc, argv, &i, "--url", &v, err, sizeof(err))) != 0) {
            if (m < 0)
                goto usage;
            o.url = v;
        } else if ((m = ig_cli_match(argc, argv, &i, "--connections", &v, err, sizeof(err)))) {
            if (m < 0 || ig_cli_uint("--connections", v, 1, 60000, &u, err, sizeof(err)) < 0)
                goto usage;
            o.connections = (unsigned)u;
        } else if ((m = ig_cli_match(argc, argv, &i, "--duration", &v, err, sizeof(err)))) {
            if (m < 0 ||
                ig_cli_number("--duration", v, 0.001, 86400, &o.duration_s, err, sizeof(err)) < 0)
                goto usage;
            have_duration = true;
        } else if ((m = ig_cli_match(argc, argv, &i, "--requests", &v, err, sizeof(err)))) {
            if (m < 0 || ig_cli_uint("--requests", v, 1, 1000000000000ull, &o.requests, err,
                                     sizeof(err)) < 0)
                goto usage;
        } else if ((m = ig_cli_match(argc, argv, &i, "--rate", &v, err, sizeof(err)))) {
            if (m < 0 || ig_cli_number("--rate", v, 0.001, 10000000, &o.rate, err, sizeof(err)) < 0)
                goto usage;
        } else if ((m = ig_cli_match(argc, argv, &i, "--warmup", &v, err, sizeof(err)))) {
            if (m < 0 || ig_cli_number("--warmup", v, 0, 3600, &o.warmup_s, err, sizeof(err)) < 0)
                goto usage;
        } else if ((m = ig_cli_match(argc, argv, &i, "--timeout-ms", &v, err, sizeof(err)))) {
            if (m < 0 ||
                ig_cli_uint("--timeout-ms", v, 1, 3600000, &o.timeout_ms, err, sizeof(err)) < 0)
                goto usage;
        } else if ((m = ig_cli_match(argc, argv, &i, "--rss-pid", &v, err, sizeof(err)))) {
            if (m < 0 || ig_cli_uint("--rss-pid", v, 1, 4194304, &u, err, sizeof(err)) < 0)
                goto usage;
            o.rss_pid = (pid_t)u;
        } else {
            snprintf(err, sizeof(err), "unknown flag %s (see infergate-bench load --help)", a);
            goto usage;
        }
    }
    if (!o.url) {
        snprintf(err, sizeof(err), "--url: required (see infergate-bench load --help)");
        goto usage;
    }
    if (have_duration && o.requests) {
        snprintf(err, sizeof(err), "--requests: cannot be combined with --duration");
        goto usage;
    }
    if (o.body.base) {
        if (!method_set)
            o.method = "POST";
        ig_load_default_content_type(&o, "application/json");
    }

    ig_load_result_t *r = ig_xmalloc(sizeof(*r));
    if (ig_load_run(&o, r, err, sizeof(err)) < 0) {
        free(r);
        goto usage;
    }
    if (json) {
        cJSON *j = ig_load_json(&o, r);
        char *s = cJSON_PrintUnformatted(j);
        puts(s);
        free(s);
        cJSON_Delete(j);
    } else {
        ig_load_print(&o, r);
    }
    /* Requests went out but not one answer came back: say so in the exit code. */
    rc = r->interrupted                     ? IG_BENCH_EXIT_INTERRUPTED
         : r->sent > 0 && r->responses == 0 ? IG_BENCH_EXIT_FAIL
                                            : IG_BENCH_EXIT_OK;
    if (rc == IG_BENCH_EXIT_FAIL)
        fprintf(stderr, "infergate-bench load: no response from %s\n", o.url);
    free(r);
    free(owned);
    return rc;

usage:
    fprintf(stderr, "infergate-bench load: %s\n", err);
    free(owned);
    return IG_BENCH_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    ig_log_threshold = IG_LOG_ERROR;
    if (argc < 2) {
        fputs(usage_main, stderr);
        return IG_BENCH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    ig_proc_setup();
    if (!strcmp(cmd, "load"))
        return ig_bench_load(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare"))
        return ig_bench_compare(argc - 2, argv + 2);
    if (!strcmp(cmd, "sweep"))
        return ig_bench_sweep(argc - 2, argv + 2);
    if (!strcmp(cmd, "codec"))
        return ig_bench_codec(argc - 2, argv + 2);
    if (!strcmp(cmd, "overhead"))
        return ig_bench_overhead(argc - 2, argv + 2);
    fprintf(stderr, "infergate-bench: unknown command '%s' (see infergate-bench --help)\n", cmd);
    return IG_BENCH_EXIT_USAGE;
}
