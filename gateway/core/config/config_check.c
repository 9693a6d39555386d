/*
 * config_check.c: is a configuration well formed?
 *
 * Two kinds of checks live here. The format checks of string values
 * (listen addresses, the upstream URL, absolute paths) are named in the key
 * table of config.c and run whenever such a value is set, from a file, the
 * environment or a flag. ig_config_validate then checks the configuration as
 * a whole, once every layer is merged: every key in range, the routes, and
 * the relations between keys (admin_listen apart from listen, enough
 * upstream connections for the concurrency). Nothing here opens a socket or
 * resolves a name.
 */
#include "infergate/core/config.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infergate/base/error.h"
#include "infergate/base/log.h"
#include "infergate/base/url.h"

#include "config_int.h"

/* ---------------------------------------------------------------------------
 * Format checks for string values. Each returns NULL when the value is fine,
 * or the reason it is not (a static sentence without the value).
 */

static const char *parse_port(const char *p, bool allow_zero)
{
    if (*p == '\0')
        return "has no port";
    unsigned long port = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9' || q - p >= 5)
            return "has an invalid port (0..65535)";
        port = port * 10 + (unsigned long)(*q - '0');
    }
    if (port > 65535 || (!allow_zero && port == 0))
        return allow_zero ? "has a port outside 0..65535" : "has a port outside 1..65535";
    return NULL;
}

/* A bracketed IPv6 literal "[...]" of length n starting at s. */
static bool valid_v6_literal(const char *s, size_t n)
{
    return n >= 3 && s[0] == '[' && s[n - 1] == ']' && ig_url_valid_v6(s + 1, n - 2);
}

const char *ig_config_check_listen_addr(const char *s)
{
    static const char why[] = "must be host:port or [v6]:port with a port in 0..65535";
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || !valid_v6_literal(s, (size_t)(close - s) + 1))
            return why;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || !ig_url_valid_name(s, (size_t)(colon - s)))
            return why;
    }
    return parse_port(colon + 1, true) ? why : NULL;
}

const char *ig_config_check_upstream_url(const char *s)
{
    if (strncasecmp(s, "https://", 8) == 0)
        return "uses https://, but TLS to the model is not supported (the model runs on "
               "loopback in the same pod): use http://";
    if (strncasecmp(s, "http://", 7) != 0)
        return "must be an http:// URL: http://host[:port][/path]";
    ig_url_t u;
    const char *why;
    if (ig_url_parse(s, strlen(s), &u, &why) < 0)
        return why;
    if (u.query.base || u.fragment.base)
        return "must be http://host[:port][/path] (no query or fragment)";
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Validation
 */

/* Splits "host:port" / "[v6]:port" (already format-checked). */
static void split_addr(const char *s, char *host, size_t hostlen, unsigned long *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n >= 2 && s[0] == '[') {
        h = s + 1;
        n -= 2;
    }
    if (n >= hostlen)
        n = hostlen - 1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon ? strtoul(colon + 1, NULL, 10) : 0;
}

static bool is_wildcard_host(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

int ig_config_validate(const ig_config_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < ig_config_nkeys; i++) {
        const ig_config_key_t *k = &ig_config_keys[i];
        if (k->kind == IG_CONFIG_K_STR) {
            const char *s = *(char *const *)ig_config_field_ptr(c, k);
            if (!s)
                return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: is not set", k->path);
            const char *why = k->check ? k->check(s) : NULL;
            if (why) {
                char *shown = ig_log_redact_url(s); /* upstream.url may hold a password */
                int rc =
                    ig_error_fmt(err, errlen, IG_ECONFIG, "%s: %s, got '%s'", k->path, why, shown);
                free(shown);
                return rc;
            }
        } else if (k->kind == IG_CONFIG_K_U32 || k->kind == IG_CONFIG_K_U64) {
            uint64_t v = ig_config_field_uint(c, k);
            if (v < k->min || v > k->max) {
                char got[32];
                snprintf(got, sizeof got, "%" PRIu64, v);
                return ig_config_range_error(k, k->path, got, err, errlen);
            }
        } else if (k->kind == IG_CONFIG_K_LEVEL) {
            if ((unsigned)c->log.level > IG_LOG_OFF)
                return ig_error_fmt(err, errlen, IG_ECONFIG, "%s: unknown level %d", k->path,
                                    (int)c->log.level);
        }
    }
    if (!c->routes || c->nroutes == 0)
        return ig_error_fmt(err, errlen, IG_ECONFIG, "routes: must contain at least one route");
    for (size_t i = 0; i < c->nroutes; i++) {
        int rc = ig_config_check_route(&c->routes[i], i, err, errlen);
        if (rc)
            return rc;
    }

    /* Port 0 asks the kernel for a free port, so two of them never clash. */
    char h1[256], h2[256];
    unsigned long p1, p2;
    split_addr(c->listen, h1, sizeof h1, &p1);
    split_addr(c->admin_listen, h2, sizeof h2, &p2);
    if (p1 != 0 && p1 == p2 &&
        (strcmp(h1, h2) == 0 || is_wildcard_host(h1) || is_wildcard_host(h2)))
        return ig_error_fmt(
            err, errlen, IG_ECONFIG,
            "admin_listen: must differ from listen (both are on port %lu: '%s' and '%s')", p1,
            c->listen, c->admin_listen);

    if (c->upstream.max_connections < c->upstream.max_concurrency)
        return ig_error_fmt(
            err, errlen, IG_ECONFIG,
            "upstream.max_connections: must be >= upstream.max_concurrency (%u), got %u "
            "(each concurrent model call needs its own connection)",
            c->upstream.max_concurrency, c->upstream.max_connections);
    if (c->bootstrap && !cJSON_IsObject(c->bootstrap))
        return ig_error_fmt(err, errlen, IG_ECONFIG, "bootstrap: must be an object");
    return 0;
}
