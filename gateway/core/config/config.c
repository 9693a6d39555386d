/*
 * config.c: assembles the gateway configuration.
 *
 * Layers, lowest first: built-in defaults (ig_config_init), one JSON file,
 * INFERGATE_* environment variables, command-line flags. Every scalar key is
 * described once, in the `ig_config_keys` table below, with its type, range
 * and a format check; the JSON reader, the environment, --set, validation and
 * the JSON writer all walk that one table, so a key cannot be readable in one
 * place and forgotten in another. "routes" (an array that replaces, never
 * merges) and "bootstrap" (a raw tree owned by the bootstrap module) are the
 * two keys handled by hand.
 *
 * This file holds the table, setting keys from JSON values and strings,
 * merging whole JSON documents, and the defaults. The rest of the module
 * shares gateway/core/config/config_int.h: config_check.c (format checks, validation),
 * config_routes.c (the "routes" array), config_cli.c (environment and flags)
 * and config_output.c (ig_config_to_json and redaction).
 *
 * Every error names where the value came from (a file, "env NAME", a flag)
 * and the key path, with indexes for arrays. This module does not open
 * sockets or resolve names: it only checks that values are well formed.
 */
#include "infergate/core/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

#include "config_int.h"

#define MAX_FILE_BYTES (16u * 1024 * 1024)

/* ---------------------------------------------------------------------------
 * Errors
 */

/* ---------------------------------------------------------------------------
 * The scalar keys
 */

#define F(field) offsetof(ig_config_t, field)
const ig_config_key_t ig_config_keys[] = {
    {"listen", IG_CONFIG_K_STR, F(listen), 0, 0, ig_config_check_listen_addr},
    {"admin_listen", IG_CONFIG_K_STR, F(admin_listen), 0, 0, ig_config_check_listen_addr},
    {"upstream.url", IG_CONFIG_K_STR, F(upstream.url), 0, 0, ig_config_check_upstream_url},
    {"upstream.max_concurrency", IG_CONFIG_K_U32, F(upstream.max_concurrency), 1, 65535, NULL},
    {"upstream.max_connections", IG_CONFIG_K_U32, F(upstream.max_connections), 1, 65535, NULL},
    {"upstream.connect_timeout_ms", IG_CONFIG_K_U64, F(upstream.connect_timeout_ms), 1, 600000,
     NULL},
    {"upstream.timeout_ms", IG_CONFIG_K_U64, F(upstream.timeout_ms), 1, 86400000, NULL},
    {"upstream.ready_path", IG_CONFIG_K_STR, F(upstream.ready_path), 0, 0,
     ig_config_check_abs_path},
    {"upstream.probe_interval_ms", IG_CONFIG_K_U64, F(upstream.probe_interval_ms), 1, 3600000,
     NULL},
    {"limits.max_queue", IG_CONFIG_K_U64, F(limits.max_queue), 0, 10000000, NULL},
    {"limits.max_body_bytes", IG_CONFIG_K_U64, F(limits.max_body_bytes), 1, 1073741824, NULL},
    {"limits.max_header_bytes", IG_CONFIG_K_U64, F(limits.max_header_bytes), 256, 1048576, NULL},
    {"limits.header_timeout_ms", IG_CONFIG_K_U64, F(limits.header_timeout_ms), 1, 3600000, NULL},
    {"limits.idle_timeout_ms", IG_CONFIG_K_U64, F(limits.idle_timeout_ms), 1, 86400000, NULL},
    {"limits.max_connections", IG_CONFIG_K_U64, F(limits.max_connections), 1, 1000000, NULL},
    {"drain.grace_ms", IG_CONFIG_K_U64, F(drain.grace_ms), 0, 3600000, NULL},
    {"drain.timeout_ms", IG_CONFIG_K_U64, F(drain.timeout_ms), 1, 3600000, NULL},
    {"metrics.window_s", IG_CONFIG_K_U32, F(metrics.window_s), 1, 3600, NULL},
    {"log.level", IG_CONFIG_K_LEVEL, F(log.level), 0, 0, NULL},
    {"log.access_log", IG_CONFIG_K_BOOL, F(log.access_log), 0, 0, NULL},
};
#undef F
const size_t ig_config_nkeys = sizeof ig_config_keys / sizeof ig_config_keys[0];

/* Objects in the file, in the order ig_config_to_json writes them. */
const char *const ig_config_sections[] = {"upstream", "limits",  "routes",
                                          "drain",    "metrics", "log"};
const size_t ig_config_nsections = sizeof ig_config_sections / sizeof ig_config_sections[0];

static char **field_str(ig_config_t *c, const ig_config_key_t *k)
{
    return (char **)(void *)((char *)c + k->off);
}

uint64_t ig_config_field_uint(const ig_config_t *c, const ig_config_key_t *k)
{
    if (k->kind == IG_CONFIG_K_U32)
        return *(const uint32_t *)ig_config_field_ptr(c, k);
    return *(const uint64_t *)ig_config_field_ptr(c, k);
}

static void store_uint(ig_config_t *c, const ig_config_key_t *k, uint64_t v)
{
    void *p = (char *)c + k->off;
    if (k->kind == IG_CONFIG_K_U32)
        *(uint32_t *)p = (uint32_t)v;
    else
        *(uint64_t *)p = v;
}

static const ig_config_key_t *find_key(const char *path)
{
    for (size_t i = 0; i < ig_config_nkeys; i++) {
        if (strcmp(ig_config_keys[i].path, path) == 0)
            return &ig_config_keys[i];
    }
    return NULL;
}

static bool is_section(const char *name)
{
    for (size_t i = 0; i < ig_config_nsections; i++) {
        if (strcmp(ig_config_sections[i], name) == 0)
            return true;
    }
    return false;
}

/* Edit distance between two short strings, for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known key path to a mistyped one, or NULL. */
static const char *suggest_key(const char *path)
{
    const char *best = NULL;
    size_t bestd = 3; /* only suggest for small typos */
    for (size_t i = 0; i < ig_config_nkeys + 2; i++) {
        const char *cand = i < ig_config_nkeys    ? ig_config_keys[i].path
                           : i == ig_config_nkeys ? "routes"
                                                  : "bootstrap";
        size_t d = edit_distance(path, cand);
        if (d < bestd) {
            bestd = d;
            best = cand;
        }
    }
    return best;
}

static int unknown_key(const char *origin, const char *path, char *err, size_t errlen)
{
    const char *hint = suggest_key(path);
    if (hint)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: %s: unknown key (did you mean %s?)",
                            origin, path, hint);
    return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: %s: unknown key", origin, path);
}

/* ---------------------------------------------------------------------------
 * Setting scalar keys from JSON values and from strings
 */

static int store_str(ig_config_t *c, const ig_config_key_t *k, const char *s, const char *where,
                     char *err, size_t errlen)
{
    const char *why = k->check ? k->check(s) : NULL;
    if (why) {
        /* The value may be a URL with a password in it (upstream.url): it
         * is quoted redacted, like every URL infergate prints. */
        char *shown = ig_log_redact_url(s);
        int rc = ig_error_fmt(err, errlen, IG_ECONFIG, "%s: %s, got '%s'", where, why, shown);
        free(shown);
        return rc;
    }
    char **f = field_str(c, k);
    free(*f);
    *f = ig_xstrdup(s);
    return 0;
}

int ig_config_range_error(const ig_config_key_t *k, const char *where, const char *got, char *err,
                          size_t errlen)
{
    return ig_error_fmt(err, errlen, IG_ECONFIG,
                        "%s: must be an integer in %" PRIu64 "..%" PRIu64 ", got %s", where, k->min,
                        k->max, got);
}

bool ig_config_json_uint(const cJSON *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
static bool str_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int set_from_json(ig_config_t *c, const ig_config_key_t *k, const cJSON *v,
                         const char *where, char *err, size_t errlen)
{
    char got[256];
    switch (k->kind) {
    case IG_CONFIG_K_STR:
        if (!cJSON_IsString(v))
            return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: must be a string, got %s", where,
                                ig_config_describe(v, got, sizeof got));
        return store_str(c, k, v->valuestring, where, err, errlen);
    case IG_CONFIG_K_U32:
    case IG_CONFIG_K_U64: {
        uint64_t n;
        if (!ig_config_json_uint(v, k->min, k->max, &n))
            return ig_config_range_error(k, where, ig_config_describe(v, got, sizeof got), err,
                                         errlen);
        store_uint(c, k, n);
        return 0;
    }
    case IG_CONFIG_K_BOOL:
        if (!cJSON_IsBool(v))
            return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: must be true or false, got %s", where,
                                ig_config_describe(v, got, sizeof got));
        *(bool *)((char *)c + k->off) = cJSON_IsTrue(v);
        return 0;
    case IG_CONFIG_K_LEVEL: {
        ig_log_level_t l;
        if (!cJSON_IsString(v) || ig_log_level_parse(v->valuestring, &l) != 0)
            return ig_error_fmt(err, errlen, IG_ECONFIG,
                                "%s: must be one of debug, info, warn, error, off, got %s", where,
                                ig_config_describe(v, got, sizeof got));
        *(ig_log_level_t *)((char *)c + k->off) = l;
        return 0;
    }
    }
    return IG_EINVAL;
}

int ig_config_set_from_string(ig_config_t *c, const ig_config_key_t *k, const char *s,
                              const char *where, char *err, size_t errlen)
{
    char got[256];
    switch (k->kind) {
    case IG_CONFIG_K_STR:
        return store_str(c, k, s, where, err, errlen);
    case IG_CONFIG_K_U32:
    case IG_CONFIG_K_U64: {
        uint64_t n;
        if (!str_uint(s, &n) || n < k->min || n > k->max) {
            snprintf(got, sizeof got, "'%s'", s);
            return ig_config_range_error(k, where, got, err, errlen);
        }
        store_uint(c, k, n);
        return 0;
    }
    case IG_CONFIG_K_BOOL: {
        bool b;
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
            b = true;
        else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
            b = false;
        else
            return ig_error_fmt(err, errlen, IG_ECONFIG,
                                "%s: must be true, false, 1 or 0, got '%s'", where, s);
        *(bool *)((char *)c + k->off) = b;
        return 0;
    }
    case IG_CONFIG_K_LEVEL: {
        ig_log_level_t l;
        if (ig_log_level_parse(s, &l) != 0)
            return ig_error_fmt(err, errlen, IG_ECONFIG,
                                "%s: must be one of debug, info, warn, error, off, got '%s'", where,
                                s);
        *(ig_log_level_t *)((char *)c + k->off) = l;
        return 0;
    }
    }
    return IG_EINVAL;
}

/* ---------------------------------------------------------------------------
 * The raw "bootstrap" tree
 */

static int set_bootstrap_json(ig_config_t *c, const cJSON *v, const char *origin, char *err,
                              size_t errlen)
{
    char got[256];
    if (cJSON_IsNull(v)) {
        cJSON_Delete(c->bootstrap);
        c->bootstrap = NULL;
        return 0;
    }
    if (!cJSON_IsObject(v))
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: bootstrap: must be an object, got %s",
                            origin, ig_config_describe(v, got, sizeof got));
    cJSON *dup = cJSON_Duplicate(v, true);
    if (!dup)
        return ig_error_fmt(err, errlen, IG_ENOMEM, "%s: bootstrap: out of memory", origin);
    cJSON_Delete(c->bootstrap);
    c->bootstrap = dup;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Documents
 */

static void text_location(const char *text, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, start = 0;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = off - start + 1;
}

static bool is_json_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Parses a whole JSON document; errors carry the line and column. */
static int parse_json(const char *text, size_t len, const char *origin, cJSON **out, char *err,
                      size_t errlen)
{
    size_t line, col, off = 0;
    while (off < len && is_json_space(text[off]))
        off++;
    if (off == len)
        return ig_error_fmt(err, errlen, IG_EPARSE, "%s: invalid JSON: the document is empty",
                            origin);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        text_location(text, off, &line, &col);
        return ig_error_fmt(err, errlen, IG_EPARSE, "%s: invalid JSON at line %zu, column %zu",
                            origin, line, col);
    }
    off = (size_t)(end - text);
    while (off < len && is_json_space(text[off]))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        text_location(text, off, &line, &col);
        return ig_error_fmt(
            err, errlen, IG_EPARSE,
            "%s: invalid JSON at line %zu, column %zu: unexpected text after the document", origin,
            line, col);
    }
    *out = root;
    return 0;
}

static int merge_object(ig_config_t *c, const cJSON *obj, const char *section, const char *origin,
                        char *err, size_t errlen)
{
    char got[256], path[256], where[768];
    for (const cJSON *it = obj->child; it; it = it->next) {
        int rc;
        if (section)
            snprintf(path, sizeof path, "%s.%s", section, it->string);
        else
            snprintf(path, sizeof path, "%s", it->string);

        if (!section && strcmp(path, "routes") == 0) {
            rc = ig_config_set_routes_json(c, it, origin, err, errlen);
        } else if (!section && strcmp(path, "bootstrap") == 0) {
            rc = set_bootstrap_json(c, it, origin, err, errlen);
        } else if (!section && is_section(path)) {
            if (!cJSON_IsObject(it))
                return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: %s: must be an object, got %s",
                                    origin, path, ig_config_describe(it, got, sizeof got));
            rc = merge_object(c, it, it->string, origin, err, errlen);
        } else {
            /* "upstream.url" is a key path, not a member name. */
            if (strchr(it->string, '.'))
                return ig_error_fmt(err, errlen, IG_ECONFIG,
                                    "%s: %s: unknown key (a file nests key paths: write "
                                    "{\"upstream\": {\"url\": …}}, not {\"upstream.url\": …})",
                                    origin, path);
            const ig_config_key_t *k = find_key(path);
            if (!k)
                return unknown_key(origin, path, err, errlen);
            snprintf(where, sizeof where, "%s: %s", origin, path);
            rc = set_from_json(c, k, it, where, err, errlen);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int ig_config_merge_json(ig_config_t *c, const char *text, size_t len, const char *origin,
                         char *err, size_t errlen)
{
    char got[256];
    cJSON *root;
    if (!origin)
        origin = "config";
    int rc = parse_json(text, len, origin, &root, err, errlen);
    if (rc)
        return rc;
    if (!cJSON_IsObject(root))
        rc =
            ig_error_fmt(err, errlen, IG_ECONFIG, "%s: the top level must be a JSON object, got %s",
                         origin, ig_config_describe(root, got, sizeof got));
    else
        rc = merge_object(c, root, NULL, origin, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int ig_config_merge_file(ig_config_t *c, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc = ig_file_read(path, MAX_FILE_BYTES, &text, &len);
    if (rc == IG_ETOOLARGE)
        return ig_error_fmt(err, errlen, IG_EIO, "%s: the config file is larger than %u bytes",
                            path, MAX_FILE_BYTES);
    if (rc != 0)
        return ig_error_fmt(err, errlen, IG_EIO, "%s: cannot read the config file: %s", path,
                            strerror(errno));
    rc = ig_config_merge_json(c, text, len, path, err, errlen);
    free(text);
    if (rc == 0) {
        free(c->source);
        c->source = ig_xstrdup(path);
    }
    return rc;
}

/* Sets a key path from a string; `where` prefixes errors. "routes" and
 * "bootstrap" take JSON. */
int ig_config_set_keypath(ig_config_t *c, const char *keypath, const char *value, const char *where,
                          char *err, size_t errlen)
{
    if (strcmp(keypath, "routes") == 0 || strcmp(keypath, "bootstrap") == 0) {
        cJSON *root;
        int rc = parse_json(value, strlen(value), where, &root, err, errlen);
        if (rc)
            return rc;
        if (keypath[0] == 'r')
            rc = ig_config_set_routes_json(c, root, where, err, errlen);
        else
            rc = set_bootstrap_json(c, root, where, err, errlen);
        cJSON_Delete(root);
        return rc;
    }
    const ig_config_key_t *k = find_key(keypath);
    if (!k) {
        const char *hint = suggest_key(keypath);
        if (hint)
            return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: unknown key %s (did you mean %s?)",
                                where, keypath, hint);
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: unknown key %s", where, keypath);
    }
    return ig_config_set_from_string(c, k, value, where, err, errlen);
}

int ig_config_set(ig_config_t *c, const char *keypath, const char *value, char *err, size_t errlen)
{
    return ig_config_set_keypath(c, keypath, value, keypath, err, errlen);
}

/* ---------------------------------------------------------------------------
 * Defaults and lifetime
 */

void ig_config_init(ig_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen = ig_xstrdup("0.0.0.0:8080");
    c->admin_listen = ig_xstrdup("0.0.0.0:9090");
    c->upstream.url = ig_xstrdup("http://127.0.0.1:8081");
    c->upstream.max_concurrency = 4;
    c->upstream.max_connections = 64;
    c->upstream.connect_timeout_ms = 1000;
    c->upstream.timeout_ms = 30000;
    c->upstream.ready_path = ig_xstrdup("/v2/health/ready");
    c->upstream.probe_interval_ms = 1000;
    c->limits.max_queue = 1024;
    c->limits.max_body_bytes = 8388608;
    c->limits.max_header_bytes = 16384;
    c->limits.header_timeout_ms = 10000;
    c->limits.idle_timeout_ms = 60000;
    c->limits.max_connections = 10000;

    c->nroutes = 3;
    c->routes = ig_xcalloc(c->nroutes, sizeof *c->routes);
    for (size_t i = 0; i < c->nroutes; i++)
        ig_config_route_defaults(&c->routes[i]);
    c->routes[0].match = ig_xstrdup("/v1/models/{model}:predict");
    c->routes[0].protocol = IG_PROTO_KSERVE_V1;
    c->routes[0].batch.preferred_sizes[0] = 16;
    c->routes[0].batch.preferred_sizes[1] = 32;
    c->routes[0].batch.n_preferred = 2;
    c->routes[1].match = ig_xstrdup("/v2/models/{model}/infer");
    c->routes[1].protocol = IG_PROTO_OIP_V2;
    c->routes[2].match = ig_xstrdup("/*");

    c->drain.grace_ms = 3000;
    c->drain.timeout_ms = 25000;
    c->metrics.window_s = 30;
    c->log.level = IG_LOG_INFO;
    c->log.access_log = true;
}

void ig_config_dispose(ig_config_t *c)
{
    for (size_t i = 0; i < ig_config_nkeys; i++) {
        if (ig_config_keys[i].kind == IG_CONFIG_K_STR)
            free(*field_str(c, &ig_config_keys[i]));
    }
    ig_config_free_routes(c->routes, c->nroutes);
    cJSON_Delete(c->bootstrap);
    free(c->source);
    memset(c, 0, sizeof *c);
}
