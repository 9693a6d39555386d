/*
 * config.c: assembles the gateway configuration.
 *
 * Layers, lowest first: built-in defaults (ig_config_init), one JSON file,
 * INFERGATE_* environment variables, command-line flags. Every scalar key is
 * described once, in the `keys` table below, with its type, range and a
 * format check; the JSON reader, the environment, --set, validation and the
 * JSON writer all walk that one table, so a key cannot be readable in one
 * place and forgotten in another. "routes" (an array that replaces, never
 * merges) and "bootstrap" (a raw tree owned by the bootstrap module) are the
 * two keys handled by hand.
 *
 * Every error names where the value came from (a file, "env NAME", a flag)
 * and the key path, with indexes for arrays. This module does not open
 * sockets or resolve names: it only checks that values are well formed.
 */
#include "infergate/config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infergate/buf.h"
#include "infergate/error.h"
#include "infergate/router.h"

#define REDACTED "<redacted>"
#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define BATCH_MAX_SIZE 4096
#define BATCH_MAX_DELAY_US 10000000ull
#define ROUTE_MAX_QUEUE_TIMEOUT_MS 3600000ull
#define DEFAULT_QUEUE_TIMEOUT_MS 5000
#define DEFAULT_BATCH_SIZE 32
#define DEFAULT_BATCH_DELAY_US 2000

/* ---------------------------------------------------------------------------
 * Errors
 */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Describes a JSON value for "got …" in messages. */
static const char *describe(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v))
        snprintf(buf, len, "the string '%s'", v->valuestring);
    else if (cJSON_IsNumber(v) && fabs(v->valuedouble) < 1e15 &&
             v->valuedouble == floor(v->valuedouble))
        snprintf(buf, len, "%.0f", v->valuedouble);
    else if (cJSON_IsNumber(v))
        snprintf(buf, len, "%g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(buf, len, "null");
    else if (cJSON_IsArray(v))
        snprintf(buf, len, "an array");
    else
        snprintf(buf, len, "an object");
    return buf;
}

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

static bool is_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* Checks a bracketed IPv6 literal "[...]" of length n starting at s. */
static bool valid_v6_literal(const char *s, size_t n)
{
    char host[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof host)
        return false;
    memcpy(host, s + 1, n - 2);
    host[n - 2] = '\0';
    return inet_pton(AF_INET6, host, &a) == 1;
}

/* Checks a host name or IPv4 literal of length n. */
static bool valid_host_name(const char *s, size_t n)
{
    bool digits_only = true;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_host_char(s[i]))
            return false;
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            digits_only = false;
    }
    if (digits_only) {
        char host[16];
        struct in_addr a;
        if (n >= sizeof host)
            return false;
        memcpy(host, s, n);
        host[n] = '\0';
        return inet_pton(AF_INET, host, &a) == 1;
    }
    return true;
}

static const char *check_listen_addr(const char *s)
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
        if (!colon || !valid_host_name(s, (size_t)(colon - s)))
            return why;
    }
    return parse_port(colon + 1, true) ? why : NULL;
}

static bool valid_path_chars(const char *p)
{
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch == 0x7f || ch == '#')
            return false;
    }
    return true;
}

static const char *check_upstream_url(const char *s)
{
    if (strncasecmp(s, "https://", 8) == 0)
        return "uses https://, but TLS to the model is not supported (the model runs on "
               "loopback in the same pod): use http://";
    if (strncmp(s, "http://", 7) != 0)
        return "must be an http:// URL: http://host[:port][/path]";
    const char *auth = s + 7;
    size_t alen = strcspn(auth, "/?#");
    if (auth[alen] == '?' || auth[alen] == '#')
        return "must be http://host[:port][/path] (no query or fragment)";
    const char *host = auth;
    for (size_t i = alen; i > 0; i--) {
        if (auth[i - 1] == '@') {
            host = auth + i;
            break;
        }
    }
    size_t hlen = alen - (size_t)(host - auth);
    const char *port = NULL;
    size_t namelen;
    if (hlen > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        if (!close)
            return "has an invalid IPv6 host";
        namelen = (size_t)(close - host) + 1;
        if (!valid_v6_literal(host, namelen))
            return "has an invalid IPv6 host";
        if (namelen < hlen) {
            if (host[namelen] != ':')
                return "must be http://host[:port][/path]";
            port = host + namelen + 1;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        namelen = colon ? (size_t)(colon - host) : hlen;
        if (!valid_host_name(host, namelen))
            return "has no valid host: must be http://host[:port][/path]";
        if (colon)
            port = colon + 1;
    }
    if (port) {
        char digits[8];
        size_t plen = (size_t)(auth + alen - port);
        if (plen == 0 || plen >= sizeof digits)
            return "has an invalid port (1..65535)";
        memcpy(digits, port, plen);
        digits[plen] = '\0';
        const char *why = parse_port(digits, false);
        if (why)
            return why;
    }
    if (!valid_path_chars(auth + alen))
        return "has spaces or control characters in its path";
    return NULL;
}

static const char *check_abs_path(const char *s)
{
    if (s[0] != '/')
        return "must be an absolute path starting with '/'";
    if (!valid_path_chars(s))
        return "must not contain spaces, control characters or '#'";
    return NULL;
}

/* ---------------------------------------------------------------------------
 * The scalar keys
 */

typedef enum { K_STR, K_U32, K_U64, K_BOOL, K_LEVEL } key_kind_t;

typedef struct {
    const char *path; /* "upstream.max_concurrency" */
    key_kind_t kind;
    size_t off;
    uint64_t min, max;
    const char *(*check)(const char *s); /* K_STR only */
} conf_key_t;

#define F(field) offsetof(ig_config_t, field)
static const conf_key_t keys[] = {
    {"listen", K_STR, F(listen), 0, 0, check_listen_addr},
    {"admin_listen", K_STR, F(admin_listen), 0, 0, check_listen_addr},
    {"upstream.url", K_STR, F(upstream.url), 0, 0, check_upstream_url},
    {"upstream.max_concurrency", K_U32, F(upstream.max_concurrency), 1, 65535, NULL},
    {"upstream.max_connections", K_U32, F(upstream.max_connections), 1, 65535, NULL},
    {"upstream.connect_timeout_ms", K_U64, F(upstream.connect_timeout_ms), 1, 600000, NULL},
    {"upstream.timeout_ms", K_U64, F(upstream.timeout_ms), 1, 86400000, NULL},
    {"upstream.ready_path", K_STR, F(upstream.ready_path), 0, 0, check_abs_path},
    {"upstream.probe_interval_ms", K_U64, F(upstream.probe_interval_ms), 1, 3600000, NULL},
    {"limits.max_queue", K_U64, F(limits.max_queue), 0, 10000000, NULL},
    {"limits.max_body_bytes", K_U64, F(limits.max_body_bytes), 1, 1073741824, NULL},
    {"limits.max_header_bytes", K_U64, F(limits.max_header_bytes), 256, 1048576, NULL},
    {"limits.header_timeout_ms", K_U64, F(limits.header_timeout_ms), 1, 3600000, NULL},
    {"limits.idle_timeout_ms", K_U64, F(limits.idle_timeout_ms), 1, 86400000, NULL},
    {"limits.max_connections", K_U64, F(limits.max_connections), 1, 1000000, NULL},
    {"drain.grace_ms", K_U64, F(drain.grace_ms), 0, 3600000, NULL},
    {"drain.timeout_ms", K_U64, F(drain.timeout_ms), 1, 3600000, NULL},
    {"metrics.window_s", K_U32, F(metrics.window_s), 1, 3600, NULL},
    {"log.level", K_LEVEL, F(log.level), 0, 0, NULL},
    {"log.access_log", K_BOOL, F(log.access_log), 0, 0, NULL},
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])

/* Objects in the file, in the order ig_config_to_json writes them. */
static const char *const sections[] = {"upstream", "limits", "routes", "drain", "metrics", "log"};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static const char *const proto_names[] = {"passthrough", "kserve-v1", "oip-v2"};

static char **field_str(ig_config_t *c, const conf_key_t *k)
{
    return (char **)(void *)((char *)c + k->off);
}

static const void *field_ptr(const ig_config_t *c, const conf_key_t *k)
{
    return (const char *)c + k->off;
}

static uint64_t field_uint(const ig_config_t *c, const conf_key_t *k)
{
    if (k->kind == K_U32)
        return *(const uint32_t *)field_ptr(c, k);
    return *(const uint64_t *)field_ptr(c, k);
}

static void store_uint(ig_config_t *c, const conf_key_t *k, uint64_t v)
{
    void *p = (char *)c + k->off;
    if (k->kind == K_U32)
        *(uint32_t *)p = (uint32_t)v;
    else
        *(uint64_t *)p = v;
}

static const conf_key_t *find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    }
    return NULL;
}

/* True when env name (not NUL-terminated) is INFERGATE_ + path in capitals. */
static bool env_name_is(const char *name, size_t n, const char *path)
{
    static const char prefix[] = "INFERGATE_";
    size_t plen = sizeof prefix - 1;
    if (n != plen + strlen(path) || memcmp(name, prefix, plen) != 0)
        return false;
    for (size_t i = 0; path[i]; i++) {
        char want = path[i] == '.'
                        ? '_'
                        : (char)(path[i] >= 'a' && path[i] <= 'z' ? path[i] - 'a' + 'A' : path[i]);
        if (name[plen + i] != want)
            return false;
    }
    return true;
}

static bool is_section(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++) {
        if (strcmp(sections[i], name) == 0)
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
    for (size_t i = 0; i < NKEYS + 2; i++) {
        const char *cand = i < NKEYS ? keys[i].path : i == NKEYS ? "routes" : "bootstrap";
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
        return fail(err, errlen, IG_ECONFIG, "%s: %s: unknown key (did you mean %s?)", origin, path,
                    hint);
    return fail(err, errlen, IG_ECONFIG, "%s: %s: unknown key", origin, path);
}

/* ---------------------------------------------------------------------------
 * Setting scalar keys from JSON values and from strings
 */

static int store_str(ig_config_t *c, const conf_key_t *k, const char *s, const char *where,
                     char *err, size_t errlen)
{
    const char *why = k->check ? k->check(s) : NULL;
    if (why)
        return fail(err, errlen, IG_ECONFIG, "%s: %s, got '%s'", where, why, s);
    char **f = field_str(c, k);
    free(*f);
    *f = ig_xstrdup(s);
    return 0;
}

static int range_error(const conf_key_t *k, const char *where, const char *got, char *err,
                       size_t errlen)
{
    return fail(err, errlen, IG_ECONFIG,
                "%s: must be an integer in %" PRIu64 "..%" PRIu64 ", got %s", where, k->min, k->max,
                got);
}

static bool json_uint(const cJSON *v, uint64_t min, uint64_t max, uint64_t *out)
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

static int set_from_json(ig_config_t *c, const conf_key_t *k, const cJSON *v, const char *where,
                         char *err, size_t errlen)
{
    char got[256];
    switch (k->kind) {
    case K_STR:
        if (!cJSON_IsString(v))
            return fail(err, errlen, IG_ECONFIG, "%s: must be a string, got %s", where,
                        describe(v, got, sizeof got));
        return store_str(c, k, v->valuestring, where, err, errlen);
    case K_U32:
    case K_U64: {
        uint64_t n;
        if (!json_uint(v, k->min, k->max, &n))
            return range_error(k, where, describe(v, got, sizeof got), err, errlen);
        store_uint(c, k, n);
        return 0;
    }
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return fail(err, errlen, IG_ECONFIG, "%s: must be true or false, got %s", where,
                        describe(v, got, sizeof got));
        *(bool *)((char *)c + k->off) = cJSON_IsTrue(v);
        return 0;
    case K_LEVEL: {
        ig_log_level_t l;
        if (!cJSON_IsString(v) || ig_log_level_parse(v->valuestring, &l) != 0)
            return fail(err, errlen, IG_ECONFIG,
                        "%s: must be one of debug, info, warn, error, off, got %s", where,
                        describe(v, got, sizeof got));
        *(ig_log_level_t *)((char *)c + k->off) = l;
        return 0;
    }
    }
    return IG_EINVAL;
}

static int set_from_string(ig_config_t *c, const conf_key_t *k, const char *s, const char *where,
                           char *err, size_t errlen)
{
    char got[256];
    switch (k->kind) {
    case K_STR:
        return store_str(c, k, s, where, err, errlen);
    case K_U32:
    case K_U64: {
        uint64_t n;
        if (!str_uint(s, &n) || n < k->min || n > k->max) {
            snprintf(got, sizeof got, "'%s'", s);
            return range_error(k, where, got, err, errlen);
        }
        store_uint(c, k, n);
        return 0;
    }
    case K_BOOL: {
        bool b;
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
            b = true;
        else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
            b = false;
        else
            return fail(err, errlen, IG_ECONFIG, "%s: must be true, false, 1 or 0, got '%s'", where,
                        s);
        *(bool *)((char *)c + k->off) = b;
        return 0;
    }
    case K_LEVEL: {
        ig_log_level_t l;
        if (ig_log_level_parse(s, &l) != 0)
            return fail(err, errlen, IG_ECONFIG,
                        "%s: must be one of debug, info, warn, error, off, got '%s'", where, s);
        *(ig_log_level_t *)((char *)c + k->off) = l;
        return 0;
    }
    }
    return IG_EINVAL;
}

/* ---------------------------------------------------------------------------
 * Routes
 */

static void route_defaults(ig_route_conf_t *r)
{
    memset(r, 0, sizeof *r);
    r->protocol = IG_PROTO_PASSTHROUGH;
    r->batch.max_size = DEFAULT_BATCH_SIZE;
    r->batch.max_delay_us = DEFAULT_BATCH_DELAY_US;
    r->queue_timeout_ms = DEFAULT_QUEUE_TIMEOUT_MS;
}

static void free_routes(ig_route_conf_t *routes, size_t n)
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
        return fail(err, errlen, IG_ECONFIG, "%s.max_size: must be an integer in 1..%d, got %u",
                    where, BATCH_MAX_SIZE, b->max_size);
    if (b->max_delay_us > BATCH_MAX_DELAY_US)
        return fail(err, errlen, IG_ECONFIG,
                    "%s.max_delay_us: must be an integer in 0..%llu, got %" PRIu64, where,
                    BATCH_MAX_DELAY_US, b->max_delay_us);
    if (b->n_preferred > IG_CONFIG_MAX_PREFERRED)
        return fail(err, errlen, IG_ECONFIG, "%s.preferred_sizes: at most %d sizes", where,
                    IG_CONFIG_MAX_PREFERRED);
    for (size_t i = 0; i < b->n_preferred; i++) {
        uint32_t s = b->preferred_sizes[i];
        if (s < 1 || s > b->max_size)
            return fail(err, errlen, IG_ECONFIG,
                        "%s.preferred_sizes[%zu]: must be in 1..max_size (%u), got %u", where, i,
                        b->max_size, s);
        if (i > 0 && s <= b->preferred_sizes[i - 1])
            return fail(err, errlen, IG_ECONFIG,
                        "%s.preferred_sizes[%zu]: must be larger than the size before it "
                        "(ascending order), got %u after %u",
                        where, i, s, b->preferred_sizes[i - 1]);
    }
    return 0;
}

static int parse_batch(const cJSON *obj, ig_batch_conf_t *b, const char *where, char *err,
                       size_t errlen)
{
    char got[256];
    if (!cJSON_IsObject(obj))
        return fail(err, errlen, IG_ECONFIG, "%s: must be an object, got %s", where,
                    describe(obj, got, sizeof got));
    for (const cJSON *it = obj->child; it; it = it->next) {
        uint64_t n;
        if (strcmp(it->string, "max_size") == 0) {
            if (!json_uint(it, 1, BATCH_MAX_SIZE, &n))
                return fail(err, errlen, IG_ECONFIG,
                            "%s.max_size: must be an integer in 1..%d, got %s", where,
                            BATCH_MAX_SIZE, describe(it, got, sizeof got));
            b->max_size = (uint32_t)n;
        } else if (strcmp(it->string, "max_delay_us") == 0) {
            if (!json_uint(it, 0, BATCH_MAX_DELAY_US, &n))
                return fail(err, errlen, IG_ECONFIG,
                            "%s.max_delay_us: must be an integer in 0..%llu, got %s", where,
                            BATCH_MAX_DELAY_US, describe(it, got, sizeof got));
            b->max_delay_us = n;
        } else if (strcmp(it->string, "preferred_sizes") == 0) {
            if (!cJSON_IsArray(it))
                return fail(err, errlen, IG_ECONFIG,
                            "%s.preferred_sizes: must be an array of integers, got %s", where,
                            describe(it, got, sizeof got));
            size_t count = 0;
            for (const cJSON *e = it->child; e; e = e->next, count++) {
                if (count == IG_CONFIG_MAX_PREFERRED)
                    return fail(err, errlen, IG_ECONFIG, "%s.preferred_sizes: at most %d sizes",
                                where, IG_CONFIG_MAX_PREFERRED);
                if (!json_uint(e, 1, BATCH_MAX_SIZE, &n))
                    return fail(err, errlen, IG_ECONFIG,
                                "%s.preferred_sizes[%zu]: must be an integer in 1..%d, got %s",
                                where, count, BATCH_MAX_SIZE, describe(e, got, sizeof got));
                b->preferred_sizes[count] = (uint32_t)n;
            }
            b->n_preferred = count;
        } else {
            return fail(err, errlen, IG_ECONFIG,
                        "%s.%s: unknown key (known: max_size, max_delay_us, preferred_sizes)",
                        where, it->string);
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
        return fail(err, errlen, IG_ECONFIG, "%s: must be an object, got %s", where,
                    describe(obj, got, sizeof got));

    /* The protocol decides whether "batch" is allowed, so read it first. */
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(obj, "protocol");
    if (proto && (!cJSON_IsString(proto) || parse_protocol(proto->valuestring, &r->protocol)))
        return fail(err, errlen, IG_ECONFIG,
                    "%s.protocol: must be one of passthrough, kserve-v1, oip-v2, got %s", where,
                    describe(proto, got, sizeof got));

    for (const cJSON *it = obj->child; it; it = it->next) {
        if (strcmp(it->string, "match") == 0) {
            if (!cJSON_IsString(it))
                return fail(err, errlen, IG_ECONFIG, "%s.match: must be a string, got %s", where,
                            describe(it, got, sizeof got));
            if (ig_router_check_pattern(it->valuestring, why, sizeof why) != 0)
                return fail(err, errlen, IG_ECONFIG, "%s.match: %s", where, why);
            free(r->match);
            r->match = ig_xstrdup(it->valuestring);
        } else if (strcmp(it->string, "protocol") == 0) {
            continue; /* read above */
        } else if (strcmp(it->string, "batch") == 0) {
            if (r->protocol == IG_PROTO_PASSTHROUGH)
                return fail(err, errlen, IG_ECONFIG,
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
            if (!json_uint(it, 1, ROUTE_MAX_QUEUE_TIMEOUT_MS, &n))
                return fail(err, errlen, IG_ECONFIG,
                            "%s.queue_timeout_ms: must be an integer in 1..%llu, got %s", where,
                            ROUTE_MAX_QUEUE_TIMEOUT_MS, describe(it, got, sizeof got));
            r->queue_timeout_ms = n;
        } else {
            return fail(err, errlen, IG_ECONFIG,
                        "%s.%s: unknown key (known: match, protocol, batch, queue_timeout_ms)",
                        where, it->string);
        }
    }
    if (!r->match)
        return fail(err, errlen, IG_ECONFIG, "%s.match: required (a path pattern such as \"/*\")",
                    where);
    return 0;
}

/* Replaces c's routes with the array `arr`; on error c is unchanged. */
static int set_routes_json(ig_config_t *c, const cJSON *arr, const char *origin, char *err,
                           size_t errlen)
{
    char got[256];
    if (!cJSON_IsArray(arr))
        return fail(err, errlen, IG_ECONFIG, "%s: routes: must be an array of routes, got %s",
                    origin, describe(arr, got, sizeof got));
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0)
        return fail(err, errlen, IG_ECONFIG,
                    "%s: routes: must contain at least one route (e.g. {\"match\": \"/*\"})",
                    origin);
    ig_route_conf_t *routes = ig_xcalloc(n, sizeof *routes);
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        route_defaults(&routes[i]);
        int rc = parse_route(it, i, origin, &routes[i], err, errlen);
        if (rc) {
            free_routes(routes, i + 1);
            return rc;
        }
    }
    free_routes(c->routes, c->nroutes);
    c->routes = routes;
    c->nroutes = n;
    return 0;
}

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
        return fail(err, errlen, IG_ECONFIG, "%s: bootstrap: must be an object, got %s", origin,
                    describe(v, got, sizeof got));
    cJSON *dup = cJSON_Duplicate(v, true);
    if (!dup)
        return fail(err, errlen, IG_ENOMEM, "%s: bootstrap: out of memory", origin);
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
        return fail(err, errlen, IG_EPARSE, "%s: invalid JSON: the document is empty", origin);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        text_location(text, off, &line, &col);
        return fail(err, errlen, IG_EPARSE, "%s: invalid JSON at line %zu, column %zu", origin,
                    line, col);
    }
    off = (size_t)(end - text);
    while (off < len && is_json_space(text[off]))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        text_location(text, off, &line, &col);
        return fail(err, errlen, IG_EPARSE,
                    "%s: invalid JSON at line %zu, column %zu: unexpected text after the document",
                    origin, line, col);
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
            rc = set_routes_json(c, it, origin, err, errlen);
        } else if (!section && strcmp(path, "bootstrap") == 0) {
            rc = set_bootstrap_json(c, it, origin, err, errlen);
        } else if (!section && is_section(path)) {
            if (!cJSON_IsObject(it))
                return fail(err, errlen, IG_ECONFIG, "%s: %s: must be an object, got %s", origin,
                            path, describe(it, got, sizeof got));
            rc = merge_object(c, it, it->string, origin, err, errlen);
        } else {
            /* "upstream.url" is a key path, not a member name. */
            if (strchr(it->string, '.'))
                return fail(err, errlen, IG_ECONFIG,
                            "%s: %s: unknown key (a file nests key paths: write "
                            "{\"upstream\": {\"url\": …}}, not {\"upstream.url\": …})",
                            origin, path);
            const conf_key_t *k = find_key(path);
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
        rc = fail(err, errlen, IG_ECONFIG, "%s: the top level must be a JSON object, got %s",
                  origin, describe(root, got, sizeof got));
    else
        rc = merge_object(c, root, NULL, origin, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int ig_config_merge_file(ig_config_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, IG_EIO, "%s: cannot read the config file: %s", path,
                    strerror(errno));
    ig_buf_t b;
    ig_buf_init(&b, MAX_FILE_BYTES);
    int rc = 0;
    for (;;) {
        size_t want = MAX_FILE_BYTES - b.len < 4096 ? MAX_FILE_BYTES - b.len : 4096;
        if (want == 0) {
            char probe;
            if (fread(&probe, 1, 1, f) == 1)
                rc = fail(err, errlen, IG_EIO, "%s: the config file is larger than %u bytes", path,
                          MAX_FILE_BYTES);
            break;
        }
        if (ig_buf_reserve(&b, want) != 0)
            break; /* cannot happen: want stays within the cap */
        size_t got = fread(b.base + b.len, 1, want, f);
        b.len += got;
        if (got == 0) {
            if (ferror(f))
                rc = fail(err, errlen, IG_EIO, "%s: cannot read the config file: %s", path,
                          strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = ig_config_merge_json(c, b.base ? b.base : "", b.len, path, err, errlen);
    ig_buf_dispose(&b);
    if (rc == 0) {
        free(c->source);
        c->source = ig_xstrdup(path);
    }
    return rc;
}

/* Sets a key path from a string; `where` prefixes errors. "routes" and
 * "bootstrap" take JSON. */
static int set_keypath(ig_config_t *c, const char *keypath, const char *value, const char *where,
                       char *err, size_t errlen)
{
    if (strcmp(keypath, "routes") == 0 || strcmp(keypath, "bootstrap") == 0) {
        cJSON *root;
        int rc = parse_json(value, strlen(value), where, &root, err, errlen);
        if (rc)
            return rc;
        if (keypath[0] == 'r')
            rc = set_routes_json(c, root, where, err, errlen);
        else
            rc = set_bootstrap_json(c, root, where, err, errlen);
        cJSON_Delete(root);
        return rc;
    }
    const conf_key_t *k = find_key(keypath);
    if (!k) {
        const char *hint = suggest_key(keypath);
        if (hint)
            return fail(err, errlen, IG_ECONFIG, "%s: unknown key %s (did you mean %s?)", where,
                        keypath, hint);
        return fail(err, errlen, IG_ECONFIG, "%s: unknown key %s", where, keypath);
    }
    return set_from_string(c, k, value, where, err, errlen);
}

int ig_config_set(ig_config_t *c, const char *keypath, const char *value, char *err, size_t errlen)
{
    return set_keypath(c, keypath, value, keypath, err, errlen);
}

/* Kubernetes injects {SERVICE}_SERVICE_HOST, {SERVICE}_SERVICE_PORT*,
 * {SERVICE}_PORT and {SERVICE}_PORT_<n>_<PROTO>* for every Service in the
 * namespace ("service links"). A Service named "infergate" would otherwise
 * make every sidecar in the namespace refuse to start, so those names are
 * not config variables and are skipped. */
static bool is_service_link(const char *e, size_t n)
{
    const char *rest = e + strlen("INFERGATE_");
    size_t rn = n - strlen("INFERGATE_");
    if ((rn >= 12 && memcmp(rest, "SERVICE_HOST", 12) == 0) ||
        (rn >= 12 && memcmp(rest, "SERVICE_PORT", 12) == 0))
        return true;
    if (rn == 4 && memcmp(rest, "PORT", 4) == 0)
        return true;
    if (rn > 5 && memcmp(rest, "PORT_", 5) == 0 && rest[5] >= '0' && rest[5] <= '9')
        return true;
    return false;
}

int ig_config_apply_env(ig_config_t *c, char *const *envp, char *err, size_t errlen)
{
    static const char prefix[] = "INFERGATE_";
    if (!envp)
        return 0;
    for (size_t i = 0; envp[i]; i++) {
        const char *e = envp[i];
        const char *eq = strchr(e, '=');
        if (strncmp(e, prefix, sizeof prefix - 1) != 0 || !eq)
            continue;
        size_t n = (size_t)(eq - e);
        const char *value = eq + 1;
        char where[128];
        snprintf(where, sizeof where, "env %.*s", (int)n, e);
        if (n == strlen("INFERGATE_CONFIG") && memcmp(e, "INFERGATE_CONFIG", n) == 0)
            continue;

        int rc;
        if (env_name_is(e, n, "routes")) {
            rc = set_keypath(c, "routes", value, where, err, errlen);
        } else if (env_name_is(e, n, "bootstrap")) {
            rc = set_keypath(c, "bootstrap", value, where, err, errlen);
        } else {
            const conf_key_t *k = NULL;
            for (size_t j = 0; j < NKEYS && !k; j++) {
                if (env_name_is(e, n, keys[j].path))
                    k = &keys[j];
            }
            if (!k && is_service_link(e, n))
                continue;
            if (!k)
                return fail(err, errlen, IG_ECONFIG,
                            "%s: not a known setting (a variable is INFERGATE_ plus the key "
                            "path in capitals, e.g. INFERGATE_UPSTREAM_MAX_CONCURRENCY)",
                            where);
            rc = set_from_string(c, k, value, where, err, errlen);
        }
        if (rc)
            return rc;
    }
    return 0;
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

static int check_route(const ig_route_conf_t *r, size_t i, char *err, size_t errlen)
{
    char why[256], where[64];
    if (!r->match)
        return fail(err, errlen, IG_ECONFIG, "routes[%zu].match: required", i);
    if (ig_router_check_pattern(r->match, why, sizeof why) != 0)
        return fail(err, errlen, IG_ECONFIG, "routes[%zu].match: %s", i, why);
    if ((unsigned)r->protocol > IG_PROTO_OIP_V2)
        return fail(err, errlen, IG_ECONFIG, "routes[%zu].protocol: unknown protocol %d", i,
                    (int)r->protocol);
    if (r->queue_timeout_ms < 1 || r->queue_timeout_ms > ROUTE_MAX_QUEUE_TIMEOUT_MS)
        return fail(err, errlen, IG_ECONFIG,
                    "routes[%zu].queue_timeout_ms: must be an integer in 1..%llu, got %" PRIu64, i,
                    ROUTE_MAX_QUEUE_TIMEOUT_MS, r->queue_timeout_ms);
    if (r->protocol == IG_PROTO_PASSTHROUGH)
        return 0;
    snprintf(where, sizeof where, "routes[%zu].batch", i);
    return check_batch(&r->batch, where, err, errlen);
}

int ig_config_validate(const ig_config_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const conf_key_t *k = &keys[i];
        if (k->kind == K_STR) {
            const char *s = *(char *const *)field_ptr(c, k);
            if (!s)
                return fail(err, errlen, IG_ECONFIG, "%s: is not set", k->path);
            const char *why = k->check ? k->check(s) : NULL;
            if (why)
                return fail(err, errlen, IG_ECONFIG, "%s: %s, got '%s'", k->path, why, s);
        } else if (k->kind == K_U32 || k->kind == K_U64) {
            uint64_t v = field_uint(c, k);
            if (v < k->min || v > k->max) {
                char got[32];
                snprintf(got, sizeof got, "%" PRIu64, v);
                return range_error(k, k->path, got, err, errlen);
            }
        } else if (k->kind == K_LEVEL) {
            if ((unsigned)c->log.level > IG_LOG_OFF)
                return fail(err, errlen, IG_ECONFIG, "%s: unknown level %d", k->path,
                            (int)c->log.level);
        }
    }
    if (!c->routes || c->nroutes == 0)
        return fail(err, errlen, IG_ECONFIG, "routes: must contain at least one route");
    for (size_t i = 0; i < c->nroutes; i++) {
        int rc = check_route(&c->routes[i], i, err, errlen);
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
        return fail(err, errlen, IG_ECONFIG,
                    "admin_listen: must differ from listen (both are on port %lu: '%s' and '%s')",
                    p1, c->listen, c->admin_listen);

    if (c->upstream.max_connections < c->upstream.max_concurrency)
        return fail(err, errlen, IG_ECONFIG,
                    "upstream.max_connections: must be >= upstream.max_concurrency (%u), got %u "
                    "(each concurrent model call needs its own connection)",
                    c->upstream.max_concurrency, c->upstream.max_connections);
    if (c->bootstrap && !cJSON_IsObject(c->bootstrap))
        return fail(err, errlen, IG_ECONFIG, "bootstrap: must be an object");
    return 0;
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
        route_defaults(&c->routes[i]);
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
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].kind == K_STR)
            free(*field_str(c, &keys[i]));
    }
    free_routes(c->routes, c->nroutes);
    cJSON_Delete(c->bootstrap);
    free(c->source);
    memset(c, 0, sizeof *c);
}

const char *ig_protocol_name(ig_protocol_t p)
{
    return (unsigned)p < sizeof proto_names / sizeof proto_names[0] ? proto_names[p] : "unknown";
}

/* ---------------------------------------------------------------------------
 * Flags
 */

static const struct {
    const char *flag; /* "--listen ADDR" */
    const char *keypath;
    const char *help;
} flag_keys[] = {
    {"--listen ADDR", "listen", "data listener, host:port (listen)"},
    {"--admin-listen ADDR", "admin_listen", "admin listener, host:port (admin_listen)"},
    {"--upstream URL", "upstream.url", "the model server, http://host:port (upstream.url)"},
    {"--max-concurrency N", "upstream.max_concurrency",
     "concurrent calls to the model (upstream.max_concurrency)"},
    {"--max-queue N", "limits.max_queue", "requests waiting before 503 (limits.max_queue)"},
    {"--log-level LEVEL", "log.level", "debug|info|warn|error|off (log.level)"},
};
#define NFLAGS (sizeof flag_keys / sizeof flag_keys[0])

static void print_usage(const char *sub)
{
    printf("usage: infergate %s [-c FILE] [flags]\n\n", sub);
    printf("  -c, --config FILE   JSON configuration file (or INFERGATE_CONFIG)\n");
    for (size_t i = 0; i < NFLAGS; i++)
        printf("  %-19s %s\n", flag_keys[i].flag, flag_keys[i].help);
    printf("  --set KEY=VALUE     set any key path, e.g. --set upstream.timeout_ms=5000 or\n"
           "                      --set 'routes=[{\"match\":\"/*\"}]' (repeatable)\n");
    printf("  -h, --help          this text\n\n");
    printf("Precedence: defaults < config file < INFERGATE_* environment < flags.\n"
           "Every key has a variable: INFERGATE_ + the key path in capitals with '.' as '_'\n"
           "(INFERGATE_UPSTREAM_MAX_CONCURRENCY=8); INFERGATE_ROUTES takes a JSON array.\n"
           "See docs/configuration.md for every key, its default and range.\n");
}

enum { FLAG_CONFIG = -1, FLAG_SET = -2 };

/* Reads the flag at argv[*i] (advancing past its value). Returns the index
 * into flag_keys, FLAG_CONFIG or FLAG_SET, or a negative IG_E* code. */
static int next_flag(int argc, char **argv, int *i, const char **name, size_t *namelen,
                     const char **value, char *err, size_t errlen)
{
    const char *arg = argv[*i];
    if (arg[0] != '-' || arg[1] == '\0' || strcmp(arg, "--") == 0)
        return fail(err, errlen, IG_EINVAL, "unexpected argument '%s' (see --help)", arg);
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    int kind = IG_EINVAL;
    if ((n == 2 && memcmp(arg, "-c", 2) == 0) || (n == 8 && memcmp(arg, "--config", 8) == 0))
        kind = FLAG_CONFIG;
    else if (n == 5 && memcmp(arg, "--set", 5) == 0)
        kind = FLAG_SET;
    for (size_t k = 0; k < NFLAGS && kind == IG_EINVAL; k++) {
        /* The table's flag text carries its value's name after a space. */
        if (strcspn(flag_keys[k].flag, " ") == n && memcmp(arg, flag_keys[k].flag, n) == 0)
            kind = (int)k;
    }
    if (kind == IG_EINVAL)
        return fail(err, errlen, IG_EINVAL, "unknown flag %.*s (see --help)", (int)n, arg);
    if (eq) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        return fail(err, errlen, IG_EINVAL, "%.*s: requires a value", (int)n, arg);
    }
    *name = arg;
    *namelen = n;
    return kind;
}

static const char *env_value(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

int ig_config_from_args(ig_config_t *c, int argc, char **argv, char *const *envp, char *err,
                        size_t errlen)
{
    const char *sub = argc > 0 && argv[0] ? argv[0] : "serve";
    const char *config_path = NULL, *name, *value;
    size_t namelen;
    int kind;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(sub);
            return IG_EAGAIN;
        }
    }
    /* First pass: syntax, and which file to read. */
    for (int i = 1; i < argc; i++) {
        kind = next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (kind < 0 && kind != FLAG_CONFIG && kind != FLAG_SET)
            return kind;
        if (kind == FLAG_CONFIG)
            config_path = value;
    }
    if (!config_path) {
        config_path = env_value(envp, "INFERGATE_CONFIG");
        if (config_path && config_path[0] == '\0')
            config_path = NULL;
    }
    int rc = 0;
    if (config_path)
        rc = ig_config_merge_file(c, config_path, err, errlen);
    if (rc == 0)
        rc = ig_config_apply_env(c, envp, err, errlen);
    /* Second pass: flags, in order, over everything else. */
    for (int i = 1; i < argc && rc == 0; i++) {
        char where[300];
        kind = next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (kind == FLAG_CONFIG)
            continue;
        if (kind == FLAG_SET) {
            const char *eq = strchr(value, '=');
            if (!eq || eq == value)
                return fail(err, errlen, IG_EINVAL, "--set: expected key.path=value, got '%s'",
                            value);
            char key[256];
            size_t klen = (size_t)(eq - value);
            if (klen >= sizeof key)
                return fail(err, errlen, IG_ECONFIG, "--set: key path too long");
            memcpy(key, value, klen);
            key[klen] = '\0';
            snprintf(where, sizeof where, "--set %s", key);
            rc = set_keypath(c, key, eq + 1, where, err, errlen);
        } else {
            snprintf(where, sizeof where, "%.*s", (int)namelen, name);
            rc = set_keypath(c, flag_keys[kind].keypath, value, where, err, errlen);
        }
    }
    if (rc == 0)
        rc = ig_config_validate(c, err, errlen);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Output
 */

/* Replaces the userinfo of a URL ("http://user:pw@host/") with REDACTED. */
static char *redact_url(const char *url)
{
    const char *scheme = strstr(url, "://");
    if (!scheme)
        return ig_xstrdup(url);
    const char *auth = scheme + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = alen; i > 0 && !at; i--) {
        if (auth[i - 1] == '@')
            at = auth + i - 1;
    }
    if (!at)
        return ig_xstrdup(url);
    ig_buf_t b;
    ig_buf_init(&b, 0);
    ig_buf_append(&b, url, (size_t)(auth - url));
    ig_buf_append_str(&b, REDACTED);
    ig_buf_append_str(&b, at);
    return ig_buf_take(&b, NULL);
}

static bool is_secret_name(const char *name)
{
    static const char *const words[] = {"token", "secret", "password", "key_id"};
    for (size_t i = 0; name && i < sizeof words / sizeof words[0]; i++) {
        if (strcasestr(name, words[i]))
            return true;
    }
    return false;
}

/* Swaps `it` for a string, keeping its member name (cJSON's replace does not). */
static void replace_with_string(cJSON *parent, cJSON *it, const char *s)
{
    cJSON *repl = cJSON_CreateString(s);
    if (!repl) {
        fprintf(stderr, "infergate: out of memory redacting the configuration\n");
        abort();
    }
    repl->string = it->string;
    repl->type |= it->type & cJSON_StringIsConst;
    it->string = NULL;
    cJSON_ReplaceItemViaPointer(parent, it, repl);
}

/* Redacts, in place, members named like secrets and credentials in URLs. */
static void redact_tree(cJSON *node)
{
    for (cJSON *it = node->child; it;) {
        cJSON *next = it->next;
        if (cJSON_IsObject(node) && is_secret_name(it->string) && !cJSON_IsNull(it)) {
            replace_with_string(node, it, REDACTED);
        } else if (cJSON_IsString(it) && strstr(it->valuestring, "://")) {
            char *r = redact_url(it->valuestring);
            if (strcmp(r, it->valuestring) != 0)
                replace_with_string(node, it, r);
            free(r);
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            redact_tree(it);
        }
        it = next;
    }
}

static void add_key(cJSON *obj, const ig_config_t *c, const conf_key_t *k, bool redact)
{
    const char *dot = strrchr(k->path, '.');
    const char *leaf = dot ? dot + 1 : k->path;
    switch (k->kind) {
    case K_STR: {
        const char *s = *(char *const *)field_ptr(c, k);
        if (!s) {
            cJSON_AddNullToObject(obj, leaf);
        } else if (redact && k->check == check_upstream_url) {
            char *r = redact_url(s);
            cJSON_AddStringToObject(obj, leaf, r);
            free(r);
        } else {
            cJSON_AddStringToObject(obj, leaf, s);
        }
        break;
    }
    case K_U32:
    case K_U64:
        cJSON_AddNumberToObject(obj, leaf, (double)field_uint(c, k));
        break;
    case K_BOOL:
        cJSON_AddBoolToObject(obj, leaf, *(const bool *)field_ptr(c, k));
        break;
    case K_LEVEL:
        cJSON_AddStringToObject(obj, leaf,
                                ig_log_level_name(*(const ig_log_level_t *)field_ptr(c, k)));
        break;
    }
}

static cJSON *routes_to_json(const ig_config_t *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < c->nroutes; i++) {
        const ig_route_conf_t *r = &c->routes[i];
        cJSON *o = cJSON_CreateObject();
        if (r->match)
            cJSON_AddStringToObject(o, "match", r->match);
        cJSON_AddStringToObject(o, "protocol", ig_protocol_name(r->protocol));
        if (r->protocol != IG_PROTO_PASSTHROUGH) {
            cJSON *b = cJSON_AddObjectToObject(o, "batch");
            cJSON_AddNumberToObject(b, "max_size", r->batch.max_size);
            cJSON_AddNumberToObject(b, "max_delay_us", (double)r->batch.max_delay_us);
            cJSON *p = cJSON_AddArrayToObject(b, "preferred_sizes");
            for (size_t j = 0; j < r->batch.n_preferred && j < IG_CONFIG_MAX_PREFERRED; j++)
                cJSON_AddItemToArray(p, cJSON_CreateNumber(r->batch.preferred_sizes[j]));
        }
        cJSON_AddNumberToObject(o, "queue_timeout_ms", (double)r->queue_timeout_ms);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

char *ig_config_to_json(const ig_config_t *c, bool redact)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < NKEYS; i++) {
        if (!strchr(keys[i].path, '.'))
            add_key(root, c, &keys[i], redact);
    }
    for (size_t s = 0; s < NSECTIONS; s++) {
        if (strcmp(sections[s], "routes") == 0) {
            cJSON_AddItemToObject(root, "routes", routes_to_json(c));
            continue;
        }
        cJSON *obj = cJSON_AddObjectToObject(root, sections[s]);
        size_t slen = strlen(sections[s]);
        for (size_t i = 0; i < NKEYS; i++) {
            if (strncmp(keys[i].path, sections[s], slen) == 0 && keys[i].path[slen] == '.')
                add_key(obj, c, &keys[i], redact);
        }
    }
    if (c->bootstrap) {
        cJSON *b = cJSON_Duplicate(c->bootstrap, true);
        if (b && redact)
            redact_tree(b);
        if (b)
            cJSON_AddItemToObject(root, "bootstrap", b);
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    if (!out) {
        fprintf(stderr, "infergate: out of memory printing the configuration\n");
        abort();
    }
    return out;
}
