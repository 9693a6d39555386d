/*
 * peers.c: starting infergate-model, infergate, nginx and HAProxy for the
 * side-by-side benchmarks, and rendering the proxies' configs.
 *
 * Ports are picked free at run time (bind to 0, close, hand to the child).
 * Another process may grab such a port in between, so a child that exits
 * before its port accepts is restarted on fresh ports, up to three times.
 * The model needs none of that: it binds port 0 and reports the port in its
 * --port-file.
 */
#include "peers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "peer_templates.h"

#define START_TIMEOUT_MS 20000
#define START_ATTEMPTS 3

static const char *const kind_names[IG_PEER__COUNT] = {"direct", "infergate", "nginx", "haproxy"};

const char *ig_peer_name(ig_peer_kind_t k)
{
    return k < IG_PEER__COUNT ? kind_names[k] : "?";
}

int ig_peer_kind_parse(const char *name, size_t len, ig_peer_kind_t *out)
{
    for (int k = 0; k < IG_PEER__COUNT; k++) {
        if (strlen(kind_names[k]) == len && strncmp(kind_names[k], name, len) == 0) {
            *out = (ig_peer_kind_t)k;
            return 0;
        }
    }
    return IG_EINVAL;
}

/* ---- environment ------------------------------------------------------- */

static void first_executable(char *out, size_t len, const char *dir, const char *const *rel)
{
    out[0] = '\0';
    for (size_t k = 0; rel[k]; k++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel[k]) >= sizeof(path))
            continue;
        if (ig_proc_executable(path)) {
            snprintf(out, len, "%s", path);
            return;
        }
    }
    /* Not found: the first candidate, so the error message names a path. */
    snprintf(out, len, "%s/%s", dir, rel[0]);
}

void ig_bench_env_defaults(ig_bench_env_t *env)
{
    memset(env, 0, sizeof(*env));
    char self[PATH_MAX];
    if (ig_proc_self_dir(self, sizeof(self)) < 0)
        snprintf(self, sizeof(self), ".");
    /* Installed: all three binaries side by side. Build tree: bench/ and gateway/. */
    static const char *const gw[] = {"../gateway/infergate", "infergate", NULL};
    static const char *const model[] = {"infergate-model", NULL};
    first_executable(env->gateway, sizeof(env->gateway), self, gw);
    first_executable(env->model, sizeof(env->model), self, model);
    snprintf(env->nginx, sizeof(env->nginx), "/usr/sbin/nginx");
    snprintf(env->haproxy, sizeof(env->haproxy), "/usr/sbin/haproxy");
}

int ig_bench_env_open(ig_bench_env_t *env, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(env->dir, sizeof(env->dir), "%s/infergate-bench-XXXXXX", tmp);
    if (!mkdtemp(env->dir)) {
        snprintf(err, errlen, "cannot create a temp dir in %s: %s", tmp, strerror(errno));
        env->dir[0] = '\0';
        return IG_EIO;
    }
    /* nginx started as root runs its worker as nobody, which must reach the
     * temp paths inside. */
    chmod(env->dir, 0755);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void ig_bench_env_close(ig_bench_env_t *env, bool failed)
{
    if (!env->dir[0])
        return;
    if (env->keep_dir || failed) {
        fprintf(stderr, "infergate-bench: configs and logs kept in %s\n", env->dir);
        return;
    }
    nftw(env->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    env->dir[0] = '\0';
}

bool ig_peer_available(const ig_bench_env_t *env, ig_peer_kind_t k, char *note, size_t len)
{
    const char *path = k == IG_PEER_INFERGATE ? env->gateway
                       : k == IG_PEER_NGINX   ? env->nginx
                       : k == IG_PEER_HAPROXY ? env->haproxy
                                              : env->model;
    if (ig_proc_executable(path))
        return true;
    snprintf(note, len, "%s skipped: %s is not installed (or not executable)", ig_peer_name(k),
             path);
    return false;
}

/* ---- templates ----------------------------------------------------------- */

int ig_peer_render(const char *tmpl, const char *const *vars, const char *path, char *err,
                   size_t errlen)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    const char *p = tmpl;
    int rc = 0;
    while (*p) {
        const char *at = strchr(p, '@');
        if (!at) {
            ig_buf_append_str(&b, p);
            break;
        }
        ig_buf_append(&b, p, (size_t)(at - p));
        const char *end = strchr(at + 1, '@');
        size_t nlen = end ? (size_t)(end - at - 1) : 0;
        bool is_name = end && nlen > 0;
        for (size_t k = 0; is_name && k < nlen; k++) {
            char c = at[1 + k];
            is_name = (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9');
        }
        if (!is_name) {
            /* A lone '@' is text. */
            ig_buf_append(&b, "@", 1);
            p = at + 1;
            continue;
        }
        const char *val = NULL;
        for (size_t k = 0; vars[k]; k += 2)
            if (strlen(vars[k]) == nlen && strncmp(vars[k], at + 1, nlen) == 0)
                val = vars[k + 1];
        if (!val) {
            snprintf(err, errlen, "template placeholder @%.*s@ has no value", (int)nlen, at + 1);
            rc = IG_ENOTFOUND;
            break;
        }
        ig_buf_append_str(&b, val);
        p = end + 1;
    }
    if (rc == 0) {
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b.base, 1, b.len, f) != b.len) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            rc = IG_EIO;
        }
        if (f && fclose(f) != 0 && rc == 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            rc = IG_EIO;
        }
    }
    ig_buf_dispose(&b);
    return rc;
}

/* ---- the model --------------------------------------------------------- */

int ig_model_start(const ig_bench_env_t *env, const char *args, ig_proc_t *p, int *port, char *err,
                   size_t errlen)
{
    if (!ig_proc_executable(env->model)) {
        snprintf(err, errlen,
                 "--model: %s is not an executable (build infergate-model or pass "
                 "--model PATH)",
                 env->model);
        return IG_ENOTFOUND;
    }
    char port_file[PATH_MAX + 16], log[PATH_MAX + 16];
    snprintf(port_file, sizeof(port_file), "%s/model.port", env->dir);
    snprintf(log, sizeof(log), "%s/model.log", env->dir);
    unlink(port_file);
    char store[2048];
    char *words[64];
    size_t nw = 0;
    int rc = ig_cli_split("--model-args", args ? args : "", store, sizeof(store), words, 56, &nw,
                          err, errlen);
    if (rc < 0)
        return rc;
    char *argv[72];
    size_t n = 0;
    argv[n++] = (char *)env->model;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--quiet";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    for (size_t k = 0; k < nw; k++)
        argv[n++] = words[k];
    argv[n] = NULL;
    rc = ig_proc_spawn(p, "infergate-model", argv, log, err, errlen);
    if (rc < 0)
        return rc;
    rc = ig_proc_wait_port_file(p, port_file, port, START_TIMEOUT_MS, err, errlen);
    if (rc < 0) {
        ig_proc_stop(p, 2000);
        return rc;
    }
    return 0;
}

/* ---- proxies ----------------------------------------------------------- */

void *ig_peer_passthrough_config(unsigned conns)
{
    unsigned pool = conns + 16 > 65535 ? 65535 : conns + 16;
    cJSON *c = cJSON_CreateObject();
    cJSON *up = cJSON_AddObjectToObject(c, "upstream");
    /* Large enough that the gateway's concurrency limit never queues. */
    cJSON_AddNumberToObject(up, "max_concurrency", pool);
    cJSON_AddNumberToObject(up, "max_connections", pool);
    cJSON *lim = cJSON_AddObjectToObject(c, "limits");
    cJSON_AddNumberToObject(lim, "max_connections", conns + 1000);
    cJSON *routes = cJSON_AddArrayToObject(c, "routes");
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "match", "/*");
    cJSON_AddStringToObject(r, "protocol", "passthrough");
    cJSON_AddItemToArray(routes, r);
    return c;
}

static void set_obj_str(cJSON *o, const char *k, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v);
}

static cJSON *obj(cJSON *parent, const char *k)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, k);
    if (!cJSON_IsObject(o)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, k);
        o = cJSON_AddObjectToObject(parent, k);
    }
    return o;
}

static int write_gateway_config(const ig_bench_env_t *env, cJSON *cfg, int port, int admin,
                                int model_port, char *path, size_t pathlen, char *err,
                                size_t errlen)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", port);
    set_obj_str(cfg, "listen", buf);
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", admin);
    set_obj_str(cfg, "admin_listen", buf);
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d", model_port);
    set_obj_str(obj(cfg, "upstream"), "url", buf);
    /* Bench runs want no access log and a quick stop; keep what the caller set. */
    cJSON *log = obj(cfg, "log");
    if (!cJSON_GetObjectItemCaseSensitive(log, "level"))
        cJSON_AddStringToObject(log, "level", "warn");
    if (!cJSON_GetObjectItemCaseSensitive(log, "access_log"))
        cJSON_AddBoolToObject(log, "access_log", false);
    cJSON *drain = obj(cfg, "drain");
    if (!cJSON_GetObjectItemCaseSensitive(drain, "grace_ms"))
        cJSON_AddNumberToObject(drain, "grace_ms", 0);
    if (!cJSON_GetObjectItemCaseSensitive(drain, "timeout_ms"))
        cJSON_AddNumberToObject(drain, "timeout_ms", 2000);
    snprintf(path, pathlen, "%s/infergate.json", env->dir);
    char *text = cJSON_Print(cfg);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!text || !f || fputs(text, f) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = IG_EIO;
    }
    if (f && fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = IG_EIO;
    }
    free(text);
    return rc;
}

/* The temp-path directives nginx needs for modules it was built with (each
 * defaults to /var/lib/nginx/…, which may not exist or be writable). */
static void nginx_extra_temp_paths(const ig_bench_env_t *env, char *out, size_t len)
{
    char log[PATH_MAX + 16];
    snprintf(log, sizeof(log), "%s/nginx-V.log", env->dir);
    unlink(log);
    char *argv[] = {(char *)env->nginx, "-V", NULL};
    ig_proc_t p;
    char err[256];
    char text[8192] = "";
    if (ig_proc_spawn(&p, "nginx -V", argv, log, err, sizeof(err)) == 0) {
        for (int k = 0; k < 500 && ig_proc_alive(&p); k++)
            usleep(10000);
        ig_proc_stop(&p, 1000);
        FILE *f = fopen(log, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof(text) - 1, f);
            text[n] = '\0';
            fclose(f);
        }
    }
    out[0] = '\0';
    static const char *const mods[] = {"fastcgi", "uwsgi", "scgi"};
    size_t used = 0;
    for (size_t k = 0; k < 3; k++) {
        char without[64];
        snprintf(without, sizeof(without), "--without-http_%s_module", mods[k]);
        if (strstr(text, without))
            continue;
        int n = snprintf(out + used, len - used, "    %s_temp_path %s/%s;\n", mods[k], env->dir,
                         mods[k]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
}

static int start_once(const ig_bench_env_t *env, ig_peer_t *peer, int model_port, unsigned conns,
                      cJSON *gw_cfg, char *err, size_t errlen)
{
    char listen[64], upstream[64], path[PATH_MAX + 32], log[PATH_MAX + 32];
    peer->port = ig_proc_free_port();
    if (peer->port <= 0) {
        snprintf(err, errlen, "%s: no free loopback port", peer->name);
        return IG_EIO;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", peer->port);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", model_port);
    snprintf(log, sizeof(log), "%s/%s.log", env->dir, peer->name);
    char num1[24], num2[24], num3[24];
    int rc;

    switch (peer->kind) {
    case IG_PEER_INFERGATE: {
        do
            peer->admin_port = ig_proc_free_port();
        while (peer->admin_port == peer->port);
        rc = write_gateway_config(env, gw_cfg, peer->port, peer->admin_port, model_port, path,
                                  sizeof(path), err, errlen);
        if (rc < 0)
            return rc;
        char *argv[] = {(char *)env->gateway, "serve", "-c", path, NULL};
        rc = ig_proc_spawn(&peer->proc, "infergate", argv, log, err, errlen);
        if (rc < 0)
            return rc;
        rc = ig_proc_wait_port(&peer->proc, peer->port, START_TIMEOUT_MS, err, errlen);
        if (rc == 0)
            rc = ig_proc_wait_http(&peer->proc, peer->admin_port, "/readyz", 200, START_TIMEOUT_MS,
                                   err, errlen);
        break;
    }
    case IG_PEER_NGINX: {
        char extra[1024];
        nginx_extra_temp_paths(env, extra, sizeof(extra));
        snprintf(num1, sizeof(num1), "%u", conns * 2 + 64);
        snprintf(num2, sizeof(num2), "%u", conns * 4 + 256);
        snprintf(num3, sizeof(num3), "%u", conns < 32 ? 32 : conns);
        const char *vars[] = {"DIR",
                              env->dir,
                              "LISTEN",
                              listen,
                              "UPSTREAM",
                              upstream,
                              "WORKER_CONNECTIONS",
                              num1,
                              "NOFILE",
                              num2,
                              "UPSTREAM_KEEPALIVE",
                              num3,
                              "EXTRA_TEMP_PATHS",
                              extra,
                              NULL};
        snprintf(path, sizeof(path), "%s/nginx.conf", env->dir);
        rc = ig_peer_render(ig_tmpl_nginx, vars, path, err, errlen);
        if (rc < 0)
            return rc;
        char prefix[PATH_MAX + 2], errlog[PATH_MAX + 32];
        snprintf(prefix, sizeof(prefix), "%s/", env->dir);
        snprintf(errlog, sizeof(errlog), "%s/nginx-error.log", env->dir);
        char *argv[] = {(char *)env->nginx, "-e", errlog, "-c", path, "-p", prefix, "-g",
                        "daemon off;",      NULL};
        rc = ig_proc_spawn(&peer->proc, "nginx", argv, log, err, errlen);
        if (rc < 0)
            return rc;
        rc = ig_proc_wait_port(&peer->proc, peer->port, START_TIMEOUT_MS, err, errlen);
        break;
    }
    case IG_PEER_HAPROXY: {
        snprintf(num1, sizeof(num1), "%u", conns + 1000);
        const char *vars[] = {"LISTEN", listen, "UPSTREAM", upstream, "MAXCONN", num1, NULL};
        snprintf(path, sizeof(path), "%s/haproxy.cfg", env->dir);
        rc = ig_peer_render(ig_tmpl_haproxy, vars, path, err, errlen);
        if (rc < 0)
            return rc;
        char *argv[] = {(char *)env->haproxy, "-f", path, "-db", NULL};
        rc = ig_proc_spawn(&peer->proc, "haproxy", argv, log, err, errlen);
        if (rc < 0)
            return rc;
        rc = ig_proc_wait_port(&peer->proc, peer->port, START_TIMEOUT_MS, err, errlen);
        break;
    }
    default:
        snprintf(err, errlen, "%s is not a proxy", peer->name);
        return IG_EINVAL;
    }
    if (rc < 0)
        ig_proc_stop(&peer->proc, 2000);
    return rc;
}

int ig_peer_start(const ig_bench_env_t *env, ig_peer_t *peer, int model_port, unsigned conns,
                  void *gateway_config, char *err, size_t errlen)
{
    peer->name = ig_peer_name(peer->kind);
    peer->running = false;
    if (peer->kind == IG_PEER_DIRECT) {
        peer->port = model_port;
        peer->running = true;
        return 0;
    }
    cJSON *cfg = gateway_config;
    cJSON *own = NULL;
    if (peer->kind == IG_PEER_INFERGATE && !cfg)
        cfg = own = ig_peer_passthrough_config(conns);
    int rc = IG_EIO;
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        rc = start_once(env, peer, model_port, conns, cfg, err, errlen);
        /* Only a child that died (most likely a port taken in between) is
         * worth another try; timeouts and bad configs are not. */
        if (rc != IG_EIO || ig_bench_interrupted() || peer->proc.pid == 0)
            break;
        fprintf(stderr, "infergate-bench: %s did not start, retrying on new ports: %s\n",
                peer->name, err);
    }
    cJSON_Delete(own);
    if (rc == 0) {
        peer->running = true;
        peer->rss_pid = peer->proc.pid;
        fprintf(stderr, "infergate-bench: %s (pid %d) listening on 127.0.0.1:%d\n", peer->name,
                (int)peer->proc.pid, peer->port);
    }
    return rc;
}

void ig_peer_stop(ig_peer_t *peer)
{
    if (peer->kind != IG_PEER_DIRECT && peer->proc.pid > 0)
        ig_proc_stop(&peer->proc, 5000);
    peer->running = false;
}
