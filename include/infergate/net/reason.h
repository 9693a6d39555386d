/*
 * reason.h: the rejection table: every reason the gateway, its HTTP server
 * and its admin port answer an error with, in one X-macro.
 *
 * A reason fixes the status, the machine-readable "reason" of the JSON
 * error body, the label of infergate_rejected_total (or, for a failed call
 * to the model, of infergate_upstream_errors_total) and the flags below.
 * Nothing else in the tree spells a reason: code names IG_REASON_*, and
 * the answer goes through ig_req_reject (server.h), which writes the body
 * and reports the reason to the server's on_reject hook for counting.
 *
 * Flags:
 *   IG_RF_RETRY_AFTER  the answer carries Retry-After (the caller knows the value)
 *   IG_RF_CLOSE        the connection closes after the answer
 *   IG_RF_UPSTREAM     a failed call to the model: counted once per call in
 *                      infergate_upstream_errors_total, not per request in
 *                      infergate_rejected_total
 *   IG_RF_SERVER       found by the HTTP server before any handler saw the request
 */
#ifndef INFERGATE_NET_REASON_H
#define INFERGATE_NET_REASON_H

#include <stdbool.h>
#include <stddef.h>

#define IG_RF_RETRY_AFTER 1u
#define IG_RF_CLOSE 2u
#define IG_RF_UPSTREAM 4u
#define IG_RF_SERVER 8u

/* X(NAME, "reason", status, flags) */
#define IG_REASON_TABLE(X)                                                                         \
    X(QUEUE_FULL, "queue_full", 503, IG_RF_RETRY_AFTER)                                            \
    X(DEADLINE, "deadline", 504, 0)                                                                \
    X(DEADLINE_UNMEETABLE, "deadline_unmeetable", 503, IG_RF_RETRY_AFTER)                          \
    X(DRAINING, "draining", 503, IG_RF_RETRY_AFTER | IG_RF_CLOSE)                                  \
    X(UPSTREAM_UNAVAILABLE, "upstream_unavailable", 502, IG_RF_UPSTREAM)                           \
    X(UPSTREAM_TIMEOUT, "upstream_timeout", 504, IG_RF_UPSTREAM)                                   \
    X(BAD_RESPONSE, "bad_response", 502, IG_RF_UPSTREAM)                                           \
    X(BAD_REQUEST, "bad_request", 400, 0)                                                          \
    X(HEADERS_TOO_LARGE, "headers_too_large", 431, IG_RF_SERVER | IG_RF_CLOSE)                     \
    X(BODY_TOO_LARGE, "body_too_large", 413, IG_RF_SERVER | IG_RF_CLOSE)                           \
    X(HEADER_TIMEOUT, "header_timeout", 408, IG_RF_SERVER | IG_RF_CLOSE)                           \
    X(BODY_TIMEOUT, "body_timeout", 408, IG_RF_SERVER | IG_RF_CLOSE)                               \
    X(NOT_IMPLEMENTED, "not_implemented", 501, IG_RF_SERVER | IG_RF_CLOSE)                         \
    X(HTTP_VERSION_NOT_SUPPORTED, "http_version_not_supported", 505, IG_RF_SERVER | IG_RF_CLOSE)   \
    X(NO_ROUTE, "no_route", 404, 0)                                                                \
    X(NOT_FOUND, "not_found", 404, 0)                                                              \
    X(METHOD_NOT_ALLOWED, "method_not_allowed", 405, 0)                                            \
    X(FORBIDDEN, "forbidden", 403, 0)                                                              \
    X(INTERNAL, "internal", 500, 0)

typedef enum {
#define IG_REASON_ENUM(name, str, status, flags) IG_REASON_##name,
    IG_REASON_TABLE(IG_REASON_ENUM)
#undef IG_REASON_ENUM
        IG_REASON__COUNT
} ig_reason_t;

/* "queue_full" for IG_REASON_QUEUE_FULL; "unknown" out of range. */
const char *ig_reason_name(ig_reason_t r);
/* The status the reason is answered with (500 out of range). */
int ig_reason_status(ig_reason_t r);
/* The reason's IG_RF_* flags (0 out of range). */
unsigned ig_reason_flags(ig_reason_t r);
/* Parses a reason string; IG_REASON__COUNT if unknown. */
ig_reason_t ig_reason_parse(const char *s, size_t len);

/* The one mapping of a failed call to the model (an ig_upstream_call's
 * on_done error, IG_E* of error.h) to its reason: IG_ETIMEDOUT ->
 * upstream_timeout, IG_EPROTO -> bad_response, IG_ECANCELED -> draining
 * (the gateway cancels calls only when it shuts down), anything else ->
 * upstream_unavailable. */
ig_reason_t ig_reason_of_upstream_error(int err);

#endif
