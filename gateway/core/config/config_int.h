/*
 * config_int.h: what the files of the configuration module share, and no
 * other module may use.
 *
 * The module is include/infergate/core/config.h, implemented in five files:
 * config.c (the key table, setting keys, merging JSON documents, defaults),
 * config_check.c (format checks of string values, ig_config_validate),
 * config_routes.c (the "routes" array and its batch policies), config_cli.c
 * (INFERGATE_* environment, flags, usage text) and config_output.c
 * (ig_config_to_json and redaction). This header is the seam between them;
 * it is not a contract for anyone else, so it lives beside them and not in
 * include/.
 *
 * Conventions for every function below: `err`/`errlen` receive the message
 * (errlen may be 0), the return is 0 or a negative IG_E* code, and `where`
 * (or `origin`) is the prefix of the message: a file name, "env NAME" or a
 * flag, then the key path.
 */
#ifndef INFERGATE_GATEWAY_CONFIG_INT_H
#define INFERGATE_GATEWAY_CONFIG_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/core/config.h"

/* ---------------------------------------------------------------------------
 * Errors (config.c)
 */

/* Writes a short description of a JSON value ("the string 'x'", "-3",
 * "an array") into `buf` for the "got …" part of messages; returns `buf`. */
const char *ig_config_describe(const cJSON *v, char *buf, size_t len);

/* ---------------------------------------------------------------------------
 * The scalar keys (config.c)
 */

typedef enum {
    IG_CONFIG_K_STR,   /* char *, owned; `check` validates the format */
    IG_CONFIG_K_U32,   /* uint32_t in min..max */
    IG_CONFIG_K_U64,   /* uint64_t in min..max */
    IG_CONFIG_K_BOOL,  /* bool */
    IG_CONFIG_K_LEVEL, /* ig_log_level_t */
} ig_config_key_kind_t;

typedef struct {
    const char *path; /* "upstream.max_concurrency" */
    ig_config_key_kind_t kind;
    size_t off; /* offset of the field in ig_config_t */
    uint64_t min, max;
    const char *(*check)(const char *s); /* IG_CONFIG_K_STR only */
} ig_config_key_t;

/* Every scalar key: the one description of each (see config.c). */
extern const ig_config_key_t ig_config_keys[];
extern const size_t ig_config_nkeys;

/* The objects of a config file, in the order ig_config_to_json writes them
 * ("routes" among them, although it is an array). */
extern const char *const ig_config_sections[];
extern const size_t ig_config_nsections;

/* The address of key `k`'s field in `c`. */
static inline const void *ig_config_field_ptr(const ig_config_t *c, const ig_config_key_t *k)
{
    return (const char *)c + k->off;
}

/* The value of an IG_CONFIG_K_U32 or IG_CONFIG_K_U64 key, widened. */
uint64_t ig_config_field_uint(const ig_config_t *c, const ig_config_key_t *k);

/* Fails with IG_ECONFIG: "<where>: must be an integer in <min>..<max>, got <got>". */
int ig_config_range_error(const ig_config_key_t *k, const char *where, const char *got, char *err,
                          size_t errlen);

/* True, with *out set, when `v` is an integral JSON number in min..max. */
bool ig_config_json_uint(const cJSON *v, uint64_t min, uint64_t max, uint64_t *out);

/* Sets scalar key `k` from a string, as an environment variable or a flag
 * gives it ("8", "true", "debug"). IG_ECONFIG when it does not parse or is
 * out of range; `c` is then unchanged. */
int ig_config_set_from_string(ig_config_t *c, const ig_config_key_t *k, const char *s,
                              const char *where, char *err, size_t errlen);

/* Sets any key path from a string: a scalar key, or "routes" / "bootstrap"
 * from JSON text. IG_ECONFIG for an unknown key (with a "did you mean"),
 * IG_EPARSE for invalid JSON. */
int ig_config_set_keypath(ig_config_t *c, const char *keypath, const char *value, const char *where,
                          char *err, size_t errlen);

/* ---------------------------------------------------------------------------
 * Format checks of string values (config_check.c). Each returns NULL when the
 * value is fine, or why it is not: a static sentence without the value.
 */

/* "host:port" or "[v6]:port", port 0..65535. */
const char *ig_config_check_listen_addr(const char *s);

/* "http://host[:port][/path]": no https, query or fragment. */
const char *ig_config_check_upstream_url(const char *s);

/* An absolute path without spaces, control characters or '#'. */
const char *ig_config_check_abs_path(const char *s);
/* No spaces, control characters, DEL or '#' (config_util.c). */
bool ig_config_valid_path_chars(const char *p);

/* ---------------------------------------------------------------------------
 * Routes (config_routes.c)
 */

/* Fills `r` with a route's defaults (passthrough, default batch policy and
 * deadline, no match pattern). */
void ig_config_route_defaults(ig_route_conf_t *r);

/* Frees `n` routes and the array itself (NULL when n is 0 is fine). */
void ig_config_free_routes(ig_route_conf_t *routes, size_t n);

/* Replaces c's routes with the JSON array `arr`. IG_ECONFIG naming
 * "<origin>: routes[i].<key>"; on an error `c` is unchanged. */
int ig_config_set_routes_json(ig_config_t *c, const cJSON *arr, const char *origin, char *err,
                              size_t errlen);

/* Checks route `r`, the i-th, as ig_config_validate does (for routes set in
 * code rather than parsed). IG_ECONFIG naming "routes[i].<key>". */
int ig_config_check_route(const ig_route_conf_t *r, size_t i, char *err, size_t errlen);

#endif
