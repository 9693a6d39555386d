/*
 * url.h: the one parser of http:// URLs.
 *
 * The config check of upstream.url, the upstream client pool and the
 * benchmark's --url all read URLs through ig_url_parse, so they agree on
 * where the host is. It follows RFC 3986: the authority runs from "//" to
 * the first '/', '?' or '#'; the user info is everything up to the LAST '@'
 * in the authority (a password may hold an '@' of its own); the host is a
 * name, an IPv4 literal or a bracketed IPv6 literal; an optional ":port"
 * follows. It splits and checks; it does not percent-decode, resolve names
 * or open anything, and it knows only the http and https schemes.
 */
#ifndef INFERGATE_URL_H
#define INFERGATE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infergate/base/slice.h"

/* The parts of a URL, as slices into the parsed string (which must outlive
 * them). An absent part has base NULL and len 0; a present but empty one
 * ("http://h?" has an empty query) has a non-NULL base. */
typedef struct {
    ig_slice_t scheme;   /* "http" or "https", as written (matched ignoring case) */
    ig_slice_t userinfo; /* before the last '@' of the authority, not decoded */
    ig_slice_t host;     /* name or IP literal; an IPv6 literal without its brackets */
    ig_slice_t hostport; /* host[:port] as written, brackets kept: a Host header value */
    ig_slice_t path;     /* from the '/' after the authority to '?' or '#'; may be empty */
    ig_slice_t query;    /* after '?', up to '#' */
    ig_slice_t fragment; /* after '#' */
    uint16_t port;       /* the explicit port, else the scheme's default (80 or 443) */
    bool has_port;       /* a ":port" was written */
    bool ipv6;           /* host is an IPv6 literal */
    bool https;          /* the scheme is https */
} ig_url_t;

/* Parses the len bytes at s into *out. Returns 0, or IG_EPARSE with *why
 * (when why is not NULL) set to a static sentence fit to follow a key name,
 * such as "has a port outside 1..65535" or "has an unsupported scheme (use
 * http://)". Checked: the scheme; a non-empty host of name characters
 * [A-Za-z0-9._-] (all-digit-and-dot names must be valid IPv4) or a valid
 * IPv6 literal in brackets; a port of 1 to 5 digits in 1..65535; no spaces,
 * control or non-ASCII bytes anywhere. *out is filled only on success. */
int ig_url_parse(const char *s, size_t len, ig_url_t *out, const char **why);

/* The host checks ig_url_parse makes, for other host:port values (listen
 * addresses): a host name or whole IPv4 literal of n bytes (letters,
 * digits, '.', '-', '_'; at most 253), and an IPv6 literal without its
 * brackets. */
bool ig_url_valid_name(const char *s, size_t n);
bool ig_url_valid_v6(const char *s, size_t n);

#endif
