/*
 * fuzz_router.c: libFuzzer target for the route table (gateway/core/router.c).
 *
 * An input is a list of patterns, one per line, then an empty line, then a
 * list of request paths, one per line (without the empty line, every line
 * is used both ways). Patterns that ig_router_check_pattern accepts form
 * the route table; every path is matched against it.
 *
 * The harness carries its own matcher, written from the rules in router.c's
 * opening comment (a capture takes one or more characters other than '/'
 * and stops where the literal after it first matches; a capture with no
 * literal after it takes its whole segment; a trailing '*' takes the rest;
 * first route wins). Invariants:
 *  - a rejected pattern comes with a message, and a table holding it is
 *    rejected by ig_router_init naming routes[i].match;
 *  - the router and the reference agree on which route matches and on
 *    every capture; captures are non-empty, hold no '/', lie inside the
 *    path, and ig_route_capture finds each by name.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/base/error.h"
#include "infergate/core/router.h"

#define MAX_ROUTES 32
#define MAX_REF_CAPS 64

typedef struct {
    size_t n;
    ig_slice_t names[MAX_REF_CAPS];
    ig_slice_t values[MAX_REF_CAPS];
} ref_caps_t;

/* Length of the literal run at p (up to '{', a '*' or the end). */
static size_t lit_len(const char *p)
{
    size_t n = 0;
    while (p[n] && p[n] != '{' && p[n] != '*')
        n++;
    return n;
}

/* The reference: matches a pattern (already checked) against a whole path. */
static bool ref_match(const char *pat, const char *path, size_t plen, ref_caps_t *caps)
{
    size_t pos = 0;
    caps->n = 0;
    for (;;) {
        if (*pat == '\0')
            return pos == plen;
        if (*pat == '*')
            return true;
        if (*pat != '{') {
            size_t n = lit_len(pat);
            if (n > plen - pos || memcmp(path + pos, pat, n) != 0)
                return false;
            pos += n;
            pat += n;
            continue;
        }
        const char *name = pat + 1;
        const char *close = strchr(name, '}');
        const char *after = close + 1;
        size_t need = lit_len(after);
        size_t end;
        if (need == 0) {
            /* The whole rest of the segment. */
            end = pos;
            while (end < plen && path[end] != '/')
                end++;
        } else {
            /* The first end, one character or more in, where the literal
             * follows; the capture itself may not cross a '/'. */
            end = plen + 1; /* none yet */
            for (size_t j = pos + 1; j <= plen && path[j - 1] != '/'; j++) {
                if (plen - j >= need && memcmp(path + j, after, need) == 0) {
                    end = j;
                    break;
                }
            }
            if (end == plen + 1)
                return false;
        }
        if (end == pos)
            return false;
        if (caps->n < MAX_REF_CAPS) {
            caps->names[caps->n] = ig_slice(name, (size_t)(close - name));
            caps->values[caps->n] = ig_slice(path + pos, end - pos);
            caps->n++;
        }
        pos = end;
        pat = after;
    }
}

static size_t count_char(const char *s, char ch)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == ch;
    return n;
}

static void check_path(const ig_router_t *r, const ig_route_conf_t *routes, size_t nroutes,
                       const char *path, size_t plen)
{
    ig_route_match_t m;
    memset(&m, 0xa5, sizeof m); /* the router must fill what it reports */
    int rc = ig_router_match(r, ig_slice(path, plen), &m);

    ref_caps_t ref;
    size_t want = nroutes;
    for (size_t k = 0; k < nroutes; k++) {
        if (ref_match(routes[k].match, path, plen, &ref)) {
            want = k;
            break;
        }
    }
    if (want == nroutes) {
        FUZZ_CHECK(rc == IG_ENOTFOUND, "'%.*s' matched route %zu '%s'; no route should match",
                   (int)plen, path, m.index, rc == 0 ? m.route->match : "?");
        FUZZ_CHECK(m.route == NULL && m.ncaptures == 0, "a failed match left a route behind");
        return;
    }
    FUZZ_CHECK(rc == 0, "'%.*s' matched nothing; route %zu '%s' should match", (int)plen, path,
               want, routes[want].match);
    FUZZ_CHECK(m.index == want && m.route == &routes[want],
               "'%.*s' matched route %zu '%s', but route %zu '%s' comes first", (int)plen, path,
               m.index, m.route ? m.route->match : "?", want, routes[want].match);
    size_t ncap = count_char(routes[want].match, '{');
    FUZZ_CHECK(m.ncaptures == ncap && ncap <= IG_ROUTER_MAX_CAPTURES,
               "'%s' on '%.*s': %zu captures, the pattern has %zu", routes[want].match, (int)plen,
               path, m.ncaptures, ncap);
    FUZZ_CHECK(ref.n == ncap, "reference found %zu captures, pattern has %zu", ref.n, ncap);

    const char *pat = routes[want].match;
    size_t patlen = strlen(pat);
    for (size_t i = 0; i < m.ncaptures; i++) {
        ig_slice_t v = m.values[i], nm = m.names[i];
        FUZZ_CHECK(v.base >= path && v.len <= plen && (size_t)(v.base - path) <= plen - v.len,
                   "capture %zu lies outside the path", i);
        FUZZ_CHECK(nm.base >= pat && nm.len < patlen && (size_t)(nm.base - pat) <= patlen - nm.len,
                   "capture name %zu lies outside the pattern", i);
        FUZZ_CHECK(v.len > 0 && memchr(v.base, '/', v.len) == NULL,
                   "capture '%.*s' is empty or crosses a '/'", (int)v.len, v.base);
        FUZZ_CHECK(nm.len == ref.names[i].len && nm.base == ref.names[i].base &&
                       v.base == ref.values[i].base && v.len == ref.values[i].len,
                   "'%s' on '%.*s': capture %zu is '%.*s', the rules say '%.*s'", pat, (int)plen,
                   path, i, (int)v.len, v.base, (int)ref.values[i].len, ref.values[i].base);
        char name[256];
        if (nm.len < sizeof name) {
            memcpy(name, nm.base, nm.len);
            name[nm.len] = '\0';
            ig_slice_t got = ig_route_capture(&m, name);
            FUZZ_CHECK(got.base == v.base && got.len == v.len,
                       "ig_route_capture('%s') does not return capture %zu", name, i);
        }
    }
    FUZZ_CHECK(ig_route_capture(&m, "no such capture!").base == NULL,
               "ig_route_capture found a name that is not there");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *sep = NULL;
    for (size_t i = 0; i + 1 < size; i++) {
        if (text[i] == '\n' && text[i + 1] == '\n') {
            sep = text + i;
            break;
        }
    }
    size_t pat_len = sep ? (size_t)(sep - text) : size;
    const char *paths = sep ? sep + 2 : text;
    size_t paths_len = sep ? size - pat_len - 2 : size;

    ig_route_conf_t routes[MAX_ROUTES];
    size_t nroutes = 0;
    char *rejected = NULL;
    size_t rejected_at = 0;
    memset(routes, 0, sizeof routes);

    for (size_t off = 0; off <= pat_len && nroutes < MAX_ROUTES;) {
        const char *nl = memchr(text + off, '\n', pat_len - off);
        size_t len = nl ? (size_t)(nl - (text + off)) : pat_len - off;
        char *pat = malloc(len + 1);
        FUZZ_CHECK(pat != NULL, "out of memory");
        memcpy(pat, text + off, len);
        pat[len] = '\0';
        char err[512] = "";
        int rc = ig_router_check_pattern(pat, err, sizeof err);
        if (rc == 0) {
            routes[nroutes].match = pat;
            routes[nroutes].protocol = IG_PROTO_PASSTHROUGH;
            nroutes++;
        } else {
            FUZZ_CHECK(rc == IG_EINVAL && err[0], "pattern rejected with %d and message '%s'", rc,
                       err);
            if (!rejected) {
                rejected = pat;
                rejected_at = nroutes;
            } else {
                free(pat);
            }
        }
        if (!nl)
            break;
        off += len + 1;
    }

    char err[1024] = "";
    ig_router_t r;
    if (rejected) {
        /* The same table with the bad pattern in it must be refused. */
        ig_route_conf_t bad[MAX_ROUTES + 1];
        memcpy(bad, routes, rejected_at * sizeof *routes);
        bad[rejected_at] = (ig_route_conf_t){.match = rejected};
        memcpy(bad + rejected_at + 1, routes + rejected_at,
               (nroutes - rejected_at) * sizeof *routes);
        int rc = ig_router_init(&r, bad, nroutes + 1, err, sizeof err);
        char want[64];
        snprintf(want, sizeof want, "routes[%zu].match", rejected_at);
        FUZZ_CHECK(rc == IG_EINVAL && strstr(err, want) != NULL,
                   "a table with bad pattern '%s' at %zu gave %d, '%s'", rejected, rejected_at, rc,
                   err);
        free(rejected);
    }
    FUZZ_CHECK(ig_router_init(&r, routes, nroutes, err, sizeof err) == 0,
               "checked patterns were refused: %s", err);

    for (size_t off = 0; off <= paths_len;) {
        const char *nl = memchr(paths + off, '\n', paths_len - off);
        size_t len = nl ? (size_t)(nl - (paths + off)) : paths_len - off;
        check_path(&r, routes, nroutes, paths + off, len);
        if (!nl)
            break;
        off += len + 1;
    }

    for (size_t i = 0; i < nroutes; i++)
        free(routes[i].match);
    return 0;
}
