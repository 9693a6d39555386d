/*
 * http.h: small HTTP facts shared by the server, the upstream client, the
 * proxy and the example model: the header slice type, reason phrases,
 * hop-by-hop header names and "host:port" parsing (http.c).
 *
 * Nothing here touches a socket or the loop; it is the vocabulary the
 * server (server.h) and the upstream pool (upstream.h) speak, kept apart so
 * that a module needing only that vocabulary does not pull in either.
 */
#ifndef INFERGATE_HTTP_H
#define INFERGATE_HTTP_H

#include <stdbool.h>
#include <sys/socket.h>

#include "infergate/base/slice.h"

/* One header field as it appeared on the wire; both slices point into the
 * message's buffer (never owning). */
typedef struct {
    ig_slice_t name;
    ig_slice_t value;
} ig_header_t;

/* The reason phrase of an HTTP status ("Service Unavailable"); a class
 * phrase ("Server Error") for codes without their own. Never NULL. */
const char *ig_http_status_text(int status);

/* True for the hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1):
 * Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade. */
bool ig_http_is_hop_by_hop(ig_slice_t name);

/* Parses "host:port" / "[v6]:port" into a sockaddr ("localhost" is
 * 127.0.0.1, an empty host or "*" is 0.0.0.0; no name resolution).
 * 0 or IG_EADDR. */
int ig_addr_parse(const char *addr, struct sockaddr_storage *out);

#endif
