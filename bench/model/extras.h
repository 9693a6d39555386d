/*
 * extras.h: the test and benchmark endpoints of infergate-model.
 *
 * These exist so the gateway's tests can observe exactly what reached the
 * model and exercise every response framing through a proxy: /echo,
 * /headers, /slow, /stream (chunked) and /close-delimited. They are not part
 * of any inference protocol. Each handler answers the request, now or later;
 * a request whose client goes away is cleaned up through req->on_abort.
 */
#ifndef INFERGATE_MODEL_EXTRAS_H
#define INFERGATE_MODEL_EXTRAS_H

#include <stdint.h>
#include <uv.h>

#include "infergate/net/server.h"
#include "infergate/base/slice.h"

/* Limits on the query parameters, so a request cannot ask for unbounded work. */
#define IG_EXTRAS_MAX_MS 600000u               /* /slow ms, /stream interval_ms */
#define IG_EXTRAS_MAX_CHUNKS 1000000u          /* /stream chunks */
#define IG_EXTRAS_MAX_SIZE (64u * 1024 * 1024) /* /stream size, /close-delimited size */

/* POST /echo: 200 with the request body and its Content-Type (none if absent). */
void ig_extras_echo(ig_req_t *req);

/* GET /headers: 200 JSON object {lowercased name: value}; repeated headers
 * are joined with ", " in arrival order. */
void ig_extras_headers(ig_req_t *req);

/* GET /slow?ms=N: 200 "ok" after N ms (default 0). */
void ig_extras_slow(uv_loop_t *loop, ig_req_t *req);

/* GET /stream?chunks=N&size=B&interval_ms=T: a chunked 200 of N chunks of B
 * bytes, T ms apart (defaults 4, 16, 0). Byte i of the body is 'a' + i % 26. */
void ig_extras_stream(uv_loop_t *loop, ig_req_t *req);

/* GET /close-delimited?size=B: 200 with B bytes (default 16) of the same
 * pattern, no Content-Length, and the connection closed after the body. */
void ig_extras_close_delimited(uv_loop_t *loop, ig_req_t *req);

/* Reads decimal `key` from a query string ("a=1&b=2"). Absent: *out = def.
 * Returns 0, or IG_EINVAL when present but not digits only or above `max`. */
int ig_extras_query_u64(ig_slice_t query, const char *key, uint64_t def, uint64_t max,
                        uint64_t *out);

#endif
