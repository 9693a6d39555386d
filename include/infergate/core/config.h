/*
 * config.h: the gateway configuration and how it is assembled.
 *
 * Precedence: built-in defaults < JSON file < INFERGATE_* environment < flags.
 * Every error names the key path ("upstream.max_concurrency") and the
 * problem. Unknown keys are errors: a typo must not fall back to a default.
 * The "bootstrap" section is kept as a raw JSON tree here and validated by
 * the bootstrap module, which owns its meaning.
 */
#ifndef INFERGATE_CONFIG_H
#define INFERGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/log.h"

struct cJSON;

typedef enum {
    IG_PROTO_PASSTHROUGH = 0,
    IG_PROTO_KSERVE_V1 = 1,
    IG_PROTO_OIP_V2 = 2,
} ig_protocol_t;

#define IG_CONFIG_MAX_PREFERRED 16

typedef struct {
    uint32_t max_size;     /* rows per batch; >= 1 */
    uint64_t max_delay_us; /* how long the oldest request may wait for batch-mates */
    uint32_t preferred_sizes[IG_CONFIG_MAX_PREFERRED];
    size_t n_preferred;
} ig_batch_conf_t;

typedef struct {
    char *match; /* owned pattern, e.g. "/v1/models/{model}:predict"; see router.h */
    ig_protocol_t protocol;
    ig_batch_conf_t batch;     /* meaningful for kserve-v1 and oip-v2 */
    uint64_t queue_timeout_ms; /* default per-request deadline */
} ig_route_conf_t;

typedef struct {
    char *listen;       /* owned; "0.0.0.0:8080" */
    char *admin_listen; /* owned; "0.0.0.0:9090" */
    struct {
        char *url; /* owned */
        uint32_t max_concurrency;
        uint32_t max_connections;
        uint64_t connect_timeout_ms;
        uint64_t timeout_ms;
        char *ready_path; /* owned */
        uint64_t probe_interval_ms;
    } upstream;
    struct {
        uint64_t max_queue;
        uint64_t max_body_bytes;
        uint64_t max_header_bytes;
        uint64_t header_timeout_ms;
        uint64_t idle_timeout_ms;
        uint64_t max_connections;
    } limits;
    ig_route_conf_t *routes; /* owned array */
    size_t nroutes;
    struct {
        uint64_t grace_ms;
        uint64_t timeout_ms;
    } drain;
    struct {
        uint32_t window_s;
    } metrics;
    struct {
        ig_log_level_t level;
        bool access_log;
    } log;
    struct cJSON *bootstrap; /* owned raw "bootstrap" object, NULL when absent */
    char *source;            /* owned path of the file read, NULL when none */
} ig_config_t;

/* Fills `c` with the documented defaults (including the three default routes). */
void ig_config_init(ig_config_t *c);

/* Frees everything `c` owns. */
void ig_config_dispose(ig_config_t *c);

/* Merges a JSON document over `c`. `origin` names it in errors (a path).
 * Returns 0, or IG_ECONFIG / IG_EPARSE with `err` set to e.g.
 * "config.json: upstream.max_concurrency: must be an integer in 1..65535, got -3".
 * Objects merge key by key; "routes" replaces the routes as a whole. On an
 * error `c` may be partly merged (but stays valid for ig_config_dispose). */
int ig_config_merge_json(ig_config_t *c, const char *text, size_t len, const char *origin,
                         char *err, size_t errlen);

/* Reads a file and merges it. IG_EIO when it cannot be read. */
int ig_config_merge_file(ig_config_t *c, const char *path, char *err, size_t errlen);

/* Applies INFERGATE_* variables from `envp` (NULL-terminated). The variable
 * for key path a.b_c is INFERGATE_A_B_C (e.g. INFERGATE_UPSTREAM_MAX_CONCURRENCY);
 * INFERGATE_ROUTES takes a JSON array. Unknown INFERGATE_* names are errors,
 * except INFERGATE_CONFIG (the file path, read by ig_config_from_args). */
int ig_config_apply_env(ig_config_t *c, char *const *envp, char *err, size_t errlen);

/* Sets one key path from a string, as a flag or env var would:
 * ig_config_set(c, "upstream.max_concurrency", "8", …). */
int ig_config_set(ig_config_t *c, const char *keypath, const char *value, char *err, size_t errlen);

/* Cross-field checks (addresses parse, URL is http://, routes valid,
 * preferred sizes <= max_size, …). */
int ig_config_validate(const ig_config_t *c, char *err, size_t errlen);

/* Builds the configuration from a subcommand's argv (argv[0] is the
 * subcommand): -c/--config FILE (or INFERGATE_CONFIG), then env, then flags
 * --listen, --admin-listen, --upstream URL, --max-concurrency N, --max-queue N,
 * --log-level L, --set key.path=value (repeatable). Validates at the end.
 * `c` must already hold the defaults (ig_config_init); whatever happens it
 * stays valid for ig_config_dispose. Values in the config file for keys
 * given by env or flags are still checked. Returns 0, or
 * IG_ECONFIG/IG_EPARSE/IG_EIO/IG_EINVAL with `err` filled;
 * `-h/--help` returns IG_EAGAIN after printing usage to stdout. */
int ig_config_from_args(ig_config_t *c, int argc, char **argv, char *const *envp, char *err,
                        size_t errlen);

/* The effective configuration as pretty JSON (caller frees); with `redact`,
 * secrets (credentials in URLs, anything named *token*, *secret*, *password*,
 * *key_id*) are replaced by "<redacted>". The output, fed back as a config
 * file, gives the same configuration. */
char *ig_config_to_json(const ig_config_t *c, bool redact);

const char *ig_protocol_name(ig_protocol_t p);

#endif
