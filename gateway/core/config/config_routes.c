/*
 * config_routes.c: the "routes" key and its batch policies.
 *
 * "routes" is an array of objects, unlike the scalar keys of the table in
 * config.c, so it is read by hand here: a route's match pattern (checked by
 * the router), its protocol, its batch policy (only on batching protocols)
 * and its default deadline. An array in a file, INFERGATE_ROUTES or --set
 * replaces the routes as a whole and never merges into them.
 * ig_config_validate checks every route again through ig_config_check_route,
 * which also covers routes built in code rather than parsed.
 */
#include "infergate/core/config.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/core/router.h"

#include "config_int.h"

#define BATCH_MAX_SIZE 4096
#define BATCH_MAX_DELAY_US 10000000ull
#define ROUTE_MAX_QUEUE_TIMEOUT_MS 3600000ull
#define DEFAULT_QUEUE_TIMEOUT_MS 5000
#define DEFAULT_BATCH_SIZE 32
#define DEFAULT_BATCH_DELAY_US 2000

static const char *const proto_names[] = {"passthrough", "kserve-v1", "oip-v2"};

const char *ig_protocol_name(ig_protocol_t p)
{
    return (unsigned)p < sizeof proto_names / sizeof proto_names[0] ? proto_names[p] : "unknown";
}

void ig_config_route_defaults(ig_route_conf_t *r)
{
    memset(r, 0, sizeof *r);
    r->protocol = IG_PROTO_PASSTHROUGH;
    r->batch.max_size = DEFAULT_BATCH_SIZE;
    r->batch.max_delay_us = DEFAULT_BATCH_DELAY_US;
    r->queue_timeout_ms = DEFAULT_QUEUE_TIMEOUT_MS;
}

void ig_config_free_routes(ig_route_conf_t *routes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(routes[i].match);
    free(routes);
}

static int parse_protocol(const char *s, ig_protocol_t *out)
{
    for (size_t i = 0; i < sizeof proto_names / sizeof proto_names[0]; i++) {
        if (strcmp(s, proto_names[i]) == 0) {
            *out = (ig_protocol_t)i;
            return 0;
        }
    }
    return IG_EINVAL;
}

/* Cross-checks of one batch policy; `where` is "<origin>: routes[i].batch". */
static int check_batch(const ig_batch_conf_t *b, const char *where, char *err, size_t errlen)
{
    if (b->max_size < 1 || b->max_size > BATCH_MAX_SIZE)
        return ig_error_fmt(err, errlen, IG_ECONFIG,
                            "%s.max_size: must be an integer in 1..%d, got %u", where,
                            BATCH_MAX_SIZE, b->max_size);
    if (b->max_delay_us > BATCH_MAX_DELAY_US)
        return ig_error_fmt(err, errlen, IG_ECONFIG,
                            "%s.max_delay_us: must be an integer in 0..%llu, got %" PRIu64, where,
                            BATCH_MAX_DELAY_US, b->max_delay_us);
    if (b->n_preferred > IG_CONFIG_MAX_PREFERRED)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s.preferred_sizes: at most %d sizes", where,
                            IG_CONFIG_MAX_PREFERRED);
    for (size_t i = 0; i < b->n_preferred; i++) {
        uint32_t s = b->preferred_sizes[i];
        if (s < 1 || s > b->max_size)
            return ig_error_fmt(err, errlen, IG_ECONFIG,
                                "%s.preferred_sizes[%zu]: must be in 1..max_size (%u), got %u",
                                where, i, b->max_size, s);
        if (i > 0 && s <= b->preferred_sizes[i - 1])
            return ig_error_fmt(err, errlen, IG_ECONFIG,
                                "%s.preferred_sizes[%zu]: must be larger than the size before it "
                                "(ascending order), got %u after %u",
                                where, i, s, b->preferred_sizes[i - 1]);
    }
    return 0;
}

int ig_config_check_route(const ig_route_conf_t *r, size_t i, char *err, size_t errlen)
{
    char why[256], where[64];
    if (!r->match)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "routes[%zu].match: required", i);
    if (ig_router_check_pattern(r->match, why, sizeof why) != 0)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "routes[%zu].match: %s", i, why);
    if ((unsigned)r->protocol > IG_PROTO_OIP_V2)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "routes[%zu].protocol: unknown protocol %d", i,
                            (int)r->protocol);
    if (r->queue_timeout_ms < 1 || r->queue_timeout_ms > ROUTE_MAX_QUEUE_TIMEOUT_MS)
        return ig_error_fmt(
            err, errlen, IG_ECONFIG,
            "routes[%zu].queue_timeout_ms: must be an integer in 1..%llu, got %" PRIu64, i,
            ROUTE_MAX_QUEUE_TIMEOUT_MS, r->queue_timeout_ms);
    if (r->protocol == IG_PROTO_PASSTHROUGH)
        return 0;
    snprintf(where, sizeof where, "routes[%zu].batch", i);
    return check_batch(&r->batch, where, err, errlen);
}

static int parse_batch(const cJSON *obj, ig_batch_conf_t *b, const char *where, char *err,
                       size_t errlen)
{
    char got[256];
    if (!cJSON_IsObject(obj))
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: must be an object, got %s", where,
                            ig_config_describe(obj, got, sizeof got));
    for (const cJSON *it = obj->child; it; it = it->next) {
        uint64_t n;
        if (strcmp(it->string, "max_size") == 0) {
            if (!ig_config_json_uint(it, 1, BATCH_MAX_SIZE, &n))
                return ig_error_fmt(err, errlen, IG_ECONFIG,
                                    "%s.max_size: must be an integer in 1..%d, got %s", where,
                                    BATCH_MAX_SIZE, ig_config_describe(it, got, sizeof got));
            b->max_size = (uint32_t)n;
        } else if (strcmp(it->string, "max_delay_us") == 0) {
            if (!ig_config_json_uint(it, 0, BATCH_MAX_DELAY_US, &n))
                return ig_error_fmt(err, errlen, IG_ECONFIG,
                                    "%s.max_delay_us: must be an integer in 0..%llu, got %s", where,
                                    BATCH_MAX_DELAY_US, ig_config_describe(it, got, sizeof got));
            b->max_delay_us = n;
        } else if (strcmp(it->string, "preferred_sizes") == 0) {
            if (!cJSON_IsArray(it))
                return ig_error_fmt(err, errlen, IG_ECONFIG,
                                    "%s.preferred_sizes: must be an array of integers, got %s",
                                    where, ig_config_describe(it, got, sizeof got));
            size_t count = 0;
            for (const cJSON *e = it->child; e; e = e->next, count++) {
                if (count == IG_CONFIG_MAX_PREFERRED)
                    return ig_error_fmt(err, errlen, IG_ECONFIG,
                                        "%s.preferred_sizes: at most %d sizes", where,
                                        IG_CONFIG_MAX_PREFERRED);
                if (!ig_config_json_uint(e, 1, BATCH_MAX_SIZE, &n))
                    return ig_error_fmt(
                        err, errlen, IG_ECONFIG,
                        "%s.preferred_sizes[%zu]: must be an integer in 1..%d, got %s", where,
                        count, BATCH_MAX_SIZE, ig_config_describe(e, got, sizeof got));
                b->preferred_sizes[count] = (uint32_t)n;
            }
            b->n_preferred = count;
        } else {
            return ig_error_fmt(
                err, errlen, IG_ECONFIG,
                "%s.%s: unknown key (known: max_size, max_delay_us, preferred_sizes)", where,
                it->string);
        }
    }
    return check_batch(b, where, err, errlen);
}

static int parse_route(const cJSON *obj, size_t idx, const char *origin, ig_route_conf_t *r,
                       char *err, size_t errlen)
{
    char got[256], where[512], why[256];
    snprintf(where, sizeof where, "%s: routes[%zu]", origin, idx);
    if (!cJSON_IsObject(obj))
        return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: must be an object, got %s", where,
                            ig_config_describe(obj, got, sizeof got));

    /* The protocol decides whether "batch" is allowed, so read it first. */
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(obj, "protocol");
    if (proto && (!cJSON_IsString(proto) || parse_protocol(proto->valuestring, &r->protocol)))
        return ig_error_fmt(err, errlen, IG_ECONFIG,
                            "%s.protocol: must be one of passthrough, kserve-v1, oip-v2, got %s",
                            where, ig_config_describe(proto, got, sizeof got));

    for (const cJSON *it = obj->child; it; it = it->next) {
        if (strcmp(it->string, "match") == 0) {
            if (!cJSON_IsString(it))
                return ig_error_fmt(err, errlen, IG_ECONFIG, "%s.match: must be a string, got %s",
                                    where, ig_config_describe(it, got, sizeof got));
            if (ig_router_check_pattern(it->valuestring, why, sizeof why) != 0)
                return ig_error_fmt(err, errlen, IG_ECONFIG, "%s.match: %s", where, why);
            free(r->match);
            r->match = ig_xstrdup(it->valuestring);
        } else if (strcmp(it->string, "protocol") == 0) {
            continue; /* read above */
        } else if (strcmp(it->string, "batch") == 0) {
            if (r->protocol == IG_PROTO_PASSTHROUGH)
                return ig_error_fmt(
                    err, errlen, IG_ECONFIG,
                    "%s.batch: not allowed on a passthrough route (only kserve-v1 and "
                    "oip-v2 routes batch)",
                    where);
            char bwhere[600];
            snprintf(bwhere, sizeof bwhere, "%s.batch", where);
            int rc = parse_batch(it, &r->batch, bwhere, err, errlen);
            if (rc)
                return rc;
        } else if (strcmp(it->string, "queue_timeout_ms") == 0) {
            uint64_t n;
            if (!ig_config_json_uint(it, 1, ROUTE_MAX_QUEUE_TIMEOUT_MS, &n))
                return ig_error_fmt(err, errlen, IG_ECONFIG,
                                    "%s.queue_timeout_ms: must be an integer in 1..%llu, got %s",
                                    where, ROUTE_MAX_QUEUE_TIMEOUT_MS,
                                    ig_config_describe(it, got, sizeof got));
            r->queue_timeout_ms = n;
        } else {
            return ig_error_fmt(
                err, errlen, IG_ECONFIG,
                "%s.%s: unknown key (known: match, protocol, batch, queue_timeout_ms)", where,
                it->string);
        }
    }
    if (!r->match)
        return ig_error_fmt(err, errlen, IG_ECONFIG,
                            "%s.match: required (a path pattern such as \"/*\")", where);
    return 0;
}

/* Replaces c's routes with the array `arr`; on error c is unchanged. */
int ig_config_set_routes_json(ig_config_t *c, const cJSON *arr, const char *origin, char *err,
                              size_t errlen)
{
    char got[256];
    if (!cJSON_IsArray(arr))
        return ig_error_fmt(err, errlen, IG_ECONFIG,
                            "%s: routes: must be an array of routes, got %s", origin,
                            ig_config_describe(arr, got, sizeof got));
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0)
        return ig_error_fmt(
            err, errlen, IG_ECONFIG,
            "%s: routes: must contain at least one route (e.g. {\"match\": \"/*\"})", origin);
    ig_route_conf_t *routes = ig_xcalloc(n, sizeof *routes);
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        ig_config_route_defaults(&routes[i]);
        int rc = parse_route(it, i, origin, &routes[i], err, errlen);
        if (rc) {
            ig_config_free_routes(routes, i + 1);
            return rc;
        }
    }
    ig_config_free_routes(c->routes, c->nroutes);
    c->routes = routes;
    c->nroutes = n;
    return 0;
}
