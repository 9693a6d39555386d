/*
 * url.c: splits an http:// or https:// URL into its parts (see url.h).
 *
 * One pass, left to right, on the rules of RFC 3986 section 3: scheme,
 * "//", authority up to the first '/', '?' or '#', then path, query and
 * fragment. Within the authority the user info ends at the last '@', and
 * the port follows the last ':' that is not inside an IPv6 literal's
 * brackets. Host names are checked against the characters DNS names use;
 * IP literals with inet_pton. Nothing here allocates.
 */
#include "infergate/base/url.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "infergate/base/error.h"

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return IG_EPARSE;
}

/* Bytes a URL may not hold unescaped: controls, space, DEL and non-ASCII
 * (a request line is ASCII). */
static bool bad_bytes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return true;
    }
    return false;
}

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

bool ig_url_valid_name(const char *s, size_t n)
{
    bool digits_only = true;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(s[i]))
            return false;
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            digits_only = false;
    }
    if (digits_only) { /* "1.2.3" is no name: it must be a whole IPv4 literal */
        char buf[16];
        struct in_addr a;
        if (n >= sizeof buf)
            return false;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return inet_pton(AF_INET, buf, &a) == 1;
    }
    return true;
}

bool ig_url_valid_v6(const char *s, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

int ig_url_parse(const char *s, size_t len, ig_url_t *out, const char **why)
{
    ig_url_t u;
    memset(&u, 0, sizeof u);
    const char *end = s + len;
    const char *sep = len >= 3 ? memmem(s, len, "://", 3) : NULL;
    if (!sep)
        return fail(why, "is not a URL (http://host[:port][/path])");
    u.scheme = ig_slice(s, (size_t)(sep - s));
    if (ig_slice_ieq(u.scheme, "https"))
        u.https = true;
    else if (!ig_slice_ieq(u.scheme, "http"))
        return fail(why, "has an unsupported scheme (use http://)");
    if (bad_bytes(s, len))
        return fail(why, "has spaces, control or non-ASCII characters");

    const char *auth = sep + 3;
    const char *aend = auth;
    while (aend < end && *aend != '/' && *aend != '?' && *aend != '#')
        aend++;
    const char *hp = auth;
    for (const char *p = aend; p > auth; p--) {
        if (p[-1] == '@') {
            u.userinfo = ig_slice(auth, (size_t)(p - 1 - auth));
            hp = p;
            break;
        }
    }
    u.hostport = ig_slice(hp, (size_t)(aend - hp));
    if (hp == aend)
        return fail(why, "has no host");

    const char *colon; /* the ':' before the port, or NULL */
    if (*hp == '[') {
        const char *close = memchr(hp, ']', (size_t)(aend - hp));
        if (!close || !ig_url_valid_v6(hp + 1, (size_t)(close - hp - 1)))
            return fail(why, "has an invalid IPv6 host");
        u.host = ig_slice(hp + 1, (size_t)(close - hp - 1));
        u.ipv6 = true;
        if (close + 1 < aend && close[1] != ':')
            return fail(why, "has characters after its IPv6 host");
        colon = close + 1 < aend ? close + 1 : NULL;
    } else {
        colon = memchr(hp, ':', (size_t)(aend - hp));
        u.host = ig_slice(hp, colon ? (size_t)(colon - hp) : (size_t)(aend - hp));
        if (u.host.len == 0)
            return fail(why, "has no host");
        if (!ig_url_valid_name(u.host.base, u.host.len))
            return fail(why, "has no valid host");
    }
    u.port = u.https ? 443 : 80;
    if (colon) {
        const char *p = colon + 1;
        size_t n = (size_t)(aend - p);
        unsigned long v = 0;
        if (n == 0 || n > 5)
            return fail(why, "has an invalid port (1..65535)");
        for (size_t i = 0; i < n; i++) {
            if (p[i] < '0' || p[i] > '9')
                return fail(why, "has an invalid port (1..65535)");
            v = v * 10 + (unsigned long)(p[i] - '0');
        }
        if (v == 0 || v > 65535)
            return fail(why, "has a port outside 1..65535");
        u.port = (uint16_t)v;
        u.has_port = true;
    }

    const char *p = aend;
    const char *q = p;
    while (q < end && *q != '?' && *q != '#')
        q++;
    u.path = ig_slice(p, (size_t)(q - p));
    if (q < end && *q == '?') {
        const char *f = memchr(q + 1, '#', (size_t)(end - q - 1));
        u.query = ig_slice(q + 1, (size_t)((f ? f : end) - q - 1));
        q = f ? f : end;
    }
    if (q < end && *q == '#')
        u.fragment = ig_slice(q + 1, (size_t)(end - q - 1));
    *out = u;
    return 0;
}
