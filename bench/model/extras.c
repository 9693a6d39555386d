/*
 * extras.c: /echo, /headers, /slow, /stream and /close-delimited.
 *
 * The streaming endpoints produce their body piece by piece from a libuv
 * timer and honour the server's back-pressure: when ig_req_write reports a
 * backlog above IG_SERVER_HIGH_WATER they stop until on_writable. Their
 * state lives in a heap struct that owns a uv_timer_t, so it is freed only
 * in the timer's close callback, whichever of "finished" or "client went
 * away" comes first.
 */
#include "extras.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"

int ig_extras_query_u64(ig_slice_t query, const char *key, uint64_t def, uint64_t max,
                        uint64_t *out)
{
    size_t klen = strlen(key);
    const char *p = query.base;
    const char *end = query.base + query.len;

    *out = def;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            uint64_t n = 0;
            if (v == stop)
                return IG_EINVAL;
            for (; v < stop; v++) {
                if (*v < '0' || *v > '9')
                    return IG_EINVAL;
                n = n * 10 + (uint64_t)(*v - '0');
                if (n > max)
                    return IG_EINVAL;
            }
            *out = n;
            return 0;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}

/* Answers 400 naming the parameter when it is malformed. */
static bool query_param(ig_req_t *req, const char *key, uint64_t def, uint64_t max, uint64_t *out)
{
    char msg[160];
    if (ig_extras_query_u64(req->query, key, def, max, out) == 0)
        return true;
    snprintf(msg, sizeof(msg), "query parameter %s: expected an integer from 0 to %llu", key,
             (unsigned long long)max);
    ig_req_error(req, 400, msg, NULL, 0);
    return false;
}

void ig_extras_echo(ig_req_t *req)
{
    ig_slice_t ct = ig_req_header(req, "Content-Type");
    ig_header_t h = {IG_SLICE_LIT("Content-Type"), ct};
    ig_req_respond(req, 200, &h, ct.base ? 1 : 0, req->body.base, req->body.len);
}

void ig_extras_headers(ig_req_t *req)
{
    cJSON *obj = cJSON_CreateObject();
    ig_header_t h = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};
    char *s;

    if (!obj) {
        ig_req_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        char *name = ig_xstrndup(req->headers[i].name.base, req->headers[i].name.len);
        char *value = ig_xstrndup(req->headers[i].value.base, req->headers[i].value.len);
        cJSON *prev;
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        prev = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (prev && cJSON_IsString(prev)) {
            ig_buf_t joined;
            ig_buf_init(&joined, 0);
            ig_buf_append_str(&joined, prev->valuestring);
            ig_buf_append(&joined, ", ", 2);
            ig_buf_append_str(&joined, value);
            cJSON_ReplaceItemInObjectCaseSensitive(obj, name, cJSON_CreateString(joined.base));
            ig_buf_dispose(&joined);
        } else {
            cJSON_AddStringToObject(obj, name, value);
        }
        free(name);
        free(value);
    }
    s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s) {
        ig_req_error(req, 500, "out of memory", NULL, 0);
        return;
    }
    ig_req_respond(req, 200, &h, 1, s, strlen(s));
    cJSON_free(s);
}

/* One timed response in progress: /slow, /stream or /close-delimited. */
typedef struct {
    uv_timer_t timer;
    ig_req_t *req;        /* NULL once the client went away or the body is done */
    uint64_t left;        /* body bytes still to send */
    uint64_t offset;      /* body bytes sent so far: position in the pattern */
    uint64_t piece;       /* bytes per write */
    uint64_t interval_ms; /* pause between writes */
    bool slow;            /* /slow: answer "ok" when the timer fires */
} timed_t;

static void on_timed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void timed_done(timed_t *t)
{
    t->req = NULL;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timed_closed);
}

static void on_timed_abort(ig_req_t *req)
{
    timed_t *t = req->data;
    timed_done(t);
}

static void pump(timed_t *t);

static void on_timed_writable(ig_req_t *req)
{
    timed_t *t = req->data;
    req->on_writable = NULL;
    pump(t);
}

static void on_timed_timer(uv_timer_t *h)
{
    timed_t *t = h->data;
    if (t->slow) {
        ig_req_t *req = t->req;
        ig_header_t ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("text/plain")};
        timed_done(t);
        req->on_abort = NULL;
        ig_req_respond(req, 200, &ct, 1, "ok", 2);
        return;
    }
    pump(t);
}

/* Writes pieces until the body is done, a pause is due, or the socket
 * backlog asks us to wait for on_writable. */
static void pump(timed_t *t)
{
    char *buf = ig_xmalloc(t->piece ? t->piece : 1);

    while (t->left > 0) {
        uint64_t n = t->left < t->piece ? t->left : t->piece;
        int64_t backlog;
        for (uint64_t i = 0; i < n; i++)
            buf[i] = (char)('a' + (t->offset + i) % 26);
        t->offset += n;
        t->left -= n;
        backlog = ig_req_write(t->req, buf, (size_t)n);
        if (!t->req) {
            /* The write failed and the server aborted the request. */
            free(buf);
            return;
        }
        if (t->left == 0)
            break;
        if (backlog >= IG_SERVER_HIGH_WATER) {
            t->req->on_writable = on_timed_writable;
            free(buf);
            return;
        }
        if (t->interval_ms > 0) {
            uv_timer_start(&t->timer, on_timed_timer, t->interval_ms, 0);
            free(buf);
            return;
        }
    }
    free(buf);
    {
        ig_req_t *req = t->req;
        timed_done(t);
        req->on_abort = NULL;
        req->on_writable = NULL;
        ig_req_finish(req);
    }
}

static timed_t *timed_new(uv_loop_t *loop, ig_req_t *req)
{
    timed_t *t = ig_xcalloc(1, sizeof(*t));
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->req = req;
    req->data = t;
    req->on_abort = on_timed_abort;
    return t;
}

void ig_extras_slow(uv_loop_t *loop, ig_req_t *req)
{
    uint64_t ms;
    timed_t *t;
    if (!query_param(req, "ms", 0, IG_EXTRAS_MAX_MS, &ms))
        return;
    t = timed_new(loop, req);
    t->slow = true;
    uv_timer_start(&t->timer, on_timed_timer, ms, 0);
}

void ig_extras_stream(uv_loop_t *loop, ig_req_t *req)
{
    uint64_t chunks, size, interval;
    ig_header_t ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/octet-stream")};
    timed_t *t;

    if (!query_param(req, "chunks", 4, IG_EXTRAS_MAX_CHUNKS, &chunks) ||
        !query_param(req, "size", 16, IG_EXTRAS_MAX_SIZE, &size) ||
        !query_param(req, "interval_ms", 0, IG_EXTRAS_MAX_MS, &interval))
        return;
    if (size == 0 && chunks > 0) {
        ig_req_error(req, 400,
                     "query parameter size: must be at least 1 (an empty chunk ends the body)",
                     NULL, 0);
        return;
    }
    if (chunks * size > IG_EXTRAS_MAX_SIZE) {
        ig_req_error(req, 400, "query parameters chunks*size: at most 64 MiB in total", NULL, 0);
        return;
    }
    t = timed_new(loop, req);
    t->left = chunks * size;
    t->piece = size;
    t->interval_ms = interval;
    ig_req_start(req, 200, &ct, 1, IG_REQ_CHUNKED);
    pump(t);
}

void ig_extras_close_delimited(uv_loop_t *loop, ig_req_t *req)
{
    uint64_t size;
    ig_header_t ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/octet-stream")};
    timed_t *t;

    if (!query_param(req, "size", 16, IG_EXTRAS_MAX_SIZE, &size))
        return;
    t = timed_new(loop, req);
    t->left = size;
    t->piece = 64 * 1024;
    ig_req_start(req, 200, &ct, 1, IG_REQ_CLOSE_DELIMITED);
    pump(t);
}
