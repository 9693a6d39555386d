/*
 * router.h: the route table, path pattern -> route configuration.
 *
 * Patterns are literal text with `{name}` captures (one path segment's
 * worth: no '/') and an optional trailing `*` that matches the rest. Routes
 * are tried in configuration order; the first match wins.
 */
#ifndef INFERGATE_ROUTER_H
#define INFERGATE_ROUTER_H

#include <stddef.h>

#include "infergate/core/config.h"
#include "infergate/base/slice.h"

#define IG_ROUTER_MAX_CAPTURES 4

typedef struct {
    const ig_route_conf_t *route; /* borrowed from the config */
    size_t index;                 /* position in the table */
    size_t ncaptures;
    ig_slice_t names[IG_ROUTER_MAX_CAPTURES];  /* "model" */
    ig_slice_t values[IG_ROUTER_MAX_CAPTURES]; /* point into the matched path */
} ig_route_match_t;

typedef struct {
    const ig_route_conf_t *routes; /* borrowed */
    size_t nroutes;
} ig_router_t;

/* Checks a pattern's syntax: 0 or IG_EINVAL with a message in err. */
int ig_router_check_pattern(const char *pattern, char *err, size_t errlen);

/* Builds a router over the config's routes (borrowed, must outlive it).
 * Returns 0 or IG_EINVAL if a pattern is malformed (err says which). */
int ig_router_init(ig_router_t *r, const ig_route_conf_t *routes, size_t n, char *err,
                   size_t errlen);

/* Finds the first route matching `path`. Returns 0 and fills *m, or IG_ENOTFOUND. */
int ig_router_match(const ig_router_t *r, ig_slice_t path, ig_route_match_t *m);

/* The value of capture `name` in a match, or an empty slice (base NULL). */
ig_slice_t ig_route_capture(const ig_route_match_t *m, const char *name);

#endif
