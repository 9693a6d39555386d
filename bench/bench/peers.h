/*
 * peers.h: the model and the proxies that `compare` and `sweep` put in front
 * of it, each started on free loopback ports and stopped by pid.
 *
 * A peer is one way to reach the same infergate-model: directly, through
 * infergate (passthrough, or any config the caller builds), through nginx
 * (proxy_pass with upstream keep-alive, one worker) or through HAProxy (one
 * thread, http-reuse always). The nginx and HAProxy configs are rendered
 * from the templates in bench/peers/, compiled into the binary.
 */
#ifndef IG_BENCH_PEERS_H
#define IG_BENCH_PEERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "procs.h"

typedef enum {
    IG_PEER_DIRECT,
    IG_PEER_INFERGATE,
    IG_PEER_NGINX,
    IG_PEER_HAPROXY,
    IG_PEER__COUNT
} ig_peer_kind_t;

/* Where the binaries are and where configs and logs go. */
typedef struct {
    char gateway[PATH_MAX];
    char model[PATH_MAX];
    char nginx[PATH_MAX];
    char haproxy[PATH_MAX];
    char dir[PATH_MAX]; /* a private temp dir */
    bool keep_dir;      /* leave it in place at the end (also kept after a failure) */
} ig_bench_env_t;

typedef struct {
    ig_peer_kind_t kind;
    const char *name; /* "direct", "infergate", "nginx", "haproxy" */
    ig_proc_t proc;   /* unused for direct */
    int port;         /* where the load goes */
    int admin_port;   /* infergate only */
    pid_t rss_pid;    /* whose memory is measured: the proxy, or the model for direct */
    bool running;
} ig_peer_t;

/* Name <-> kind. ig_peer_kind_parse returns 0 or IG_EINVAL. */
const char *ig_peer_name(ig_peer_kind_t k);
int ig_peer_kind_parse(const char *name, size_t len, ig_peer_kind_t *out);

/* Fills the binary paths: infergate and infergate-model next to this
 * executable (build tree: ../gateway/infergate), nginx and HAProxy in
 * /usr/sbin. Flags may override them afterwards. */
void ig_bench_env_defaults(ig_bench_env_t *env);

/* Creates the temp dir. 0 or IG_EIO. */
int ig_bench_env_open(ig_bench_env_t *env, char *err, size_t errlen);

/* Removes the temp dir unless keep_dir or `failed` (then says where it is). */
void ig_bench_env_close(ig_bench_env_t *env, bool failed);

/* Whether the peer's program exists; if not, `note` says why it is skipped. */
bool ig_peer_available(const ig_bench_env_t *env, ig_peer_kind_t k, char *note, size_t len);

/* Starts infergate-model on 127.0.0.1:0 with `args` (blank-separated flags,
 * appended after --quiet --log-level warn) and waits for its port file. */
int ig_model_start(const ig_bench_env_t *env, const char *args, ig_proc_t *p, int *port, char *err,
                   size_t errlen);

/* Starts a peer in front of the model on 127.0.0.1:`model_port`. `conns` is
 * the most client connections it will see (sizes pools and limits).
 * `gateway_config` (infergate only) is a cJSON object that is completed with
 * listen, admin_listen and upstream.url and written to a file; NULL means
 * the passthrough config of `compare`. Retries with fresh ports when the
 * child fails to bind. 0, or an IG_E* with `err` filled. */
int ig_peer_start(const ig_bench_env_t *env, ig_peer_t *peer, int model_port, unsigned conns,
                  void *gateway_config, char *err, size_t errlen);

/* Stops the peer's process (not the model for direct). */
void ig_peer_stop(ig_peer_t *peer);

/* The passthrough infergate config `compare` uses: max_concurrency and the
 * pool sized for `conns`, every path passthrough, logs at warn. A cJSON
 * object the caller frees. */
void *ig_peer_passthrough_config(unsigned conns);

/* Renders a template: every @NAME@ is replaced by the value of NAME in
 * vars[] (pairs name, value; NULL-terminated). An unknown placeholder is
 * IG_ENOTFOUND naming it. The result goes to `path`. */
int ig_peer_render(const char *tmpl, const char *const *vars, const char *path, char *err,
                   size_t errlen);

#endif
