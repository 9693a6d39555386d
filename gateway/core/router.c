/*
 * router.c: the route table, request path -> route configuration.
 *
 * A pattern is literal text with `{name}` captures and an optional trailing
 * `*`. A capture matches one or more characters other than '/', and stops at
 * the first place where the literal text that follows it in the pattern
 * matches ("{model}:predict" on "iris:predict" captures "iris"); a capture
 * with no literal after it runs to the end of its path segment. A trailing
 * `*` matches the rest of the path, possibly empty. Routes are tried in
 * configuration order and the first match wins.
 *
 * Matching walks the pattern text directly: it allocates nothing, and its
 * cost is linear in the path length times the length of the literal after a
 * capture, so a hostile path cannot make it backtrack. The router knows
 * nothing about protocols or batching; it only hands back the route.
 */
#include "infergate/core/router.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "infergate/base/error.h"

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Characters that cannot appear in a request path as the server hands it
 * over (the query is cut off at '?', fragments are never sent). */
static bool is_bad_literal_char(unsigned char ch)
{
    return ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#';
}

int ig_router_check_pattern(const char *pattern, char *err, size_t errlen)
{
    if (!pattern || pattern[0] != '/')
        return ig_error_fmt(err, errlen, IG_EINVAL, "pattern '%s' must start with '/'",
                            pattern ? pattern : "(null)");

    const char *names[IG_ROUTER_MAX_CAPTURES];
    size_t namelens[IG_ROUTER_MAX_CAPTURES];
    size_t ncap = 0;
    bool literal_since_capture = true;

    for (size_t i = 0; pattern[i]; i++) {
        char ch = pattern[i];
        if (ch == '*') {
            if (pattern[i + 1] != '\0')
                return ig_error_fmt(err, errlen, IG_EINVAL,
                                    "pattern '%s': '*' is only allowed at the end (offset %zu)",
                                    pattern, i);
            continue;
        }
        if (ch == '}')
            return ig_error_fmt(err, errlen, IG_EINVAL, "pattern '%s': unmatched '}' at offset %zu",
                                pattern, i);
        if (ch != '{') {
            if (is_bad_literal_char((unsigned char)ch))
                return ig_error_fmt(err, errlen, IG_EINVAL,
                                    "pattern '%s': invalid character 0x%02x at offset %zu", pattern,
                                    (unsigned char)ch, i);
            literal_since_capture = true;
            continue;
        }

        size_t open = i;
        size_t j = i + 1;
        while (pattern[j] && pattern[j] != '}') {
            if (!is_name_char(pattern[j])) {
                if (pattern[j] == '{' || pattern[j] == '/' || pattern[j] == '*')
                    return ig_error_fmt(err, errlen, IG_EINVAL,
                                        "pattern '%s': unclosed '{' at offset %zu", pattern, open);
                return ig_error_fmt(err, errlen, IG_EINVAL,
                                    "pattern '%s': invalid character '%c' in capture name at "
                                    "offset %zu (use letters, digits, '_' or '-')",
                                    pattern, pattern[j], j);
            }
            j++;
        }
        if (!pattern[j])
            return ig_error_fmt(err, errlen, IG_EINVAL, "pattern '%s': unclosed '{' at offset %zu",
                                pattern, open);
        size_t namelen = j - open - 1;
        if (namelen == 0)
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "pattern '%s': empty capture name at offset %zu", pattern, open);
        if (!literal_since_capture)
            return ig_error_fmt(err, errlen, IG_EINVAL,
                                "pattern '%s': two captures need literal text between them "
                                "(offset %zu)",
                                pattern, open);
        if (ncap == IG_ROUTER_MAX_CAPTURES)
            return ig_error_fmt(err, errlen, IG_EINVAL, "pattern '%s': more than %d captures",
                                pattern, IG_ROUTER_MAX_CAPTURES);
        for (size_t k = 0; k < ncap; k++) {
            if (namelens[k] == namelen && memcmp(names[k], pattern + open + 1, namelen) == 0)
                return ig_error_fmt(err, errlen, IG_EINVAL,
                                    "pattern '%s': capture name '%.*s' used twice", pattern,
                                    (int)namelen, pattern + open + 1);
        }
        names[ncap] = pattern + open + 1;
        namelens[ncap] = namelen;
        ncap++;
        literal_since_capture = false;
        i = j;
    }
    return 0;
}

int ig_router_init(ig_router_t *r, const ig_route_conf_t *routes, size_t n, char *err,
                   size_t errlen)
{
    r->routes = NULL;
    r->nroutes = 0;
    for (size_t i = 0; i < n; i++) {
        char why[256];
        if (ig_router_check_pattern(routes[i].match, why, sizeof why) != 0)
            return ig_error_fmt(err, errlen, IG_EINVAL, "routes[%zu].match: %s", i, why);
    }
    r->routes = routes;
    r->nroutes = n;
    return 0;
}

/* Length of the literal run starting at p: up to the next capture, the
 * trailing '*', or the end. */
static size_t literal_len(const char *p)
{
    return strcspn(p, "{*");
}

/* Matches one (well-formed) pattern against the whole path. */
static bool match_pattern(const char *pat, const char *path, size_t plen, ig_route_match_t *m)
{
    size_t i = 0;
    size_t ncap = 0;

    while (*pat) {
        if (*pat == '*') {
            /* Only ever last: it takes whatever is left, even nothing. */
            m->ncaptures = ncap;
            return true;
        }
        if (*pat != '{') {
            size_t n = literal_len(pat);
            if (plen - i < n || memcmp(path + i, pat, n) != 0)
                return false;
            i += n;
            pat += n;
            continue;
        }

        const char *name = pat + 1;
        const char *close = strchr(name, '}');
        if (!close)
            return false; /* cannot happen for checked patterns */
        const char *next = close + 1;
        size_t litn = literal_len(next);
        size_t start = i;

        if (litn == 0) {
            /* End of pattern or '*' next: the capture takes its whole segment. */
            while (i < plen && path[i] != '/')
                i++;
            if (i == start)
                return false;
        } else {
            size_t j = start + 1;
            bool found = false;
            while (j <= plen) {
                if (path[j - 1] == '/')
                    return false;
                if (plen - j >= litn && memcmp(path + j, next, litn) == 0) {
                    found = true;
                    break;
                }
                j++;
            }
            if (!found)
                return false;
            i = j;
        }
        if (ncap < IG_ROUTER_MAX_CAPTURES) {
            m->names[ncap] = ig_slice(name, (size_t)(close - name));
            m->values[ncap] = ig_slice(path + start, i - start);
            ncap++;
        }
        pat = next;
    }
    m->ncaptures = ncap;
    return i == plen;
}

int ig_router_match(const ig_router_t *r, ig_slice_t path, ig_route_match_t *m)
{
    for (size_t k = 0; k < r->nroutes; k++) {
        const ig_route_conf_t *route = &r->routes[k];
        if (!route->match)
            continue;
        if (match_pattern(route->match, path.base ? path.base : "", path.len, m)) {
            m->route = route;
            m->index = k;
            return 0;
        }
    }
    m->route = NULL;
    m->index = 0;
    m->ncaptures = 0;
    return IG_ENOTFOUND;
}

ig_slice_t ig_route_capture(const ig_route_match_t *m, const char *name)
{
    for (size_t k = 0; k < m->ncaptures; k++) {
        if (ig_slice_eq(m->names[k], name))
            return m->values[k];
    }
    return ig_slice(NULL, 0);
}
