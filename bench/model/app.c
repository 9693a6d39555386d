/*
 * app.c: infergate-model's request handling and simulated accelerator.
 *
 * Every inference call (V1 predict or V2 infer for the served model) is
 * parsed, runs the real iris math, and occupies one of --max-concurrency
 * model instances for cost_base_us + cost_per_row_us * rows + delay_ms.
 * Calls beyond the free instances wait in FIFO order. Each instance keeps a
 * virtual clock (the time it became free), and a call that waited starts at
 * that instant rather than when the loop got round to it. One timerfd, set
 * to the earliest end among the running calls, wakes the loop with
 * microsecond precision (libuv's own timers count whole milliseconds, which
 * made a 2.05 ms call take 3 ms on an idle instance).
 *
 * Fault injection (--fail-every, --crash-after, --hang-after) counts
 * inference calls in arrival order. /stats reports what reached the model,
 * including max_inflight, so gateway tests can prove it honoured its
 * concurrency limit. Everything runs on one loop; no locks, no globals
 * besides the log threshold.
 */
#include "app.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "extras.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "infergate/base/list.h"
#include "infergate/base/log.h"
#include "infergate/net/server.h"
#include "iris.h"
#include "kserve.h"

#define MODEL_VERSION "1"

typedef struct app app_t;

typedef enum {
    CALL_QUEUED,  /* waiting for a model instance */
    CALL_RUNNING, /* holds an instance until end_ns (unlimited: just a place on the clock) */
    CALL_HANGING, /* --hang-after: never answered */
} call_state_t;

typedef struct call {
    app_t *app;
    ig_req_t *req; /* NULL once the client went away */
    int protocol;  /* 1 or 2 */
    bool versioned;
    ig_kserve_input_t in;
    uint64_t arrival_ns;
    uint64_t end_ns; /* when the simulated compute is done */
    size_t inst;     /* instance index while running with instances */
    call_state_t state;
    ig_link_t link; /* in app->queue, app->running or app->hanging */
} call_t;

typedef struct {
    uint64_t rows, count;
} size_count_t;

struct app {
    uv_loop_t *loop;
    ig_server_t *server;
    const ig_opts_t *o;
    uint64_t ready_at_ns;

    /* /stats */
    uint64_t calls, rows, errors, inflight, max_inflight;
    size_count_t *sizes; /* sorted by rows */
    size_t nsizes, capsizes;

    /* fault injection: never reset by /stats/reset */
    uint64_t seq;       /* inference calls received */
    uint64_t completed; /* inference calls answered */

    /* model instances; ninst == 0 means unlimited */
    size_t ninst;
    uint64_t *free_at_ns;
    bool *busy;
    ig_list_t queue, running, hanging;

    /* the accelerator's clock: a timerfd at the earliest running end_ns */
    int clock_fd;
    uv_poll_t clock_poll;
    uint64_t clock_armed_ns; /* 0: disarmed */

    uv_signal_t sigint, sigterm;
    bool stopping;
    int exit_code;
};

static const ig_header_t json_ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};

/* ---- lists ----------------------------------------------------------- */

static call_t *first_call(const ig_list_t *l)
{
    return IG_LIST_ITEM(l->head, call_t, link);
}

static ig_list_t *list_of(app_t *a, call_t *c)
{
    switch (c->state) {
    case CALL_QUEUED:
        return &a->queue;
    case CALL_RUNNING:
        return &a->running;
    case CALL_HANGING:
        return &a->hanging;
    }
    return &a->running;
}

/* ---- stats ------------------------------------------------------------ */

static void count_batch(app_t *a, uint64_t rows)
{
    size_t lo = 0, hi = a->nsizes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->sizes[mid].rows < rows)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < a->nsizes && a->sizes[lo].rows == rows) {
        a->sizes[lo].count++;
        return;
    }
    if (a->nsizes == a->capsizes) {
        a->capsizes = a->capsizes ? a->capsizes * 2 : 16;
        a->sizes = ig_xrealloc(a->sizes, a->capsizes * sizeof(*a->sizes));
    }
    memmove(&a->sizes[lo + 1], &a->sizes[lo], (a->nsizes - lo) * sizeof(*a->sizes));
    a->sizes[lo] = (size_count_t){rows, 1};
    a->nsizes++;
}

static size_t queued(const app_t *a)
{
    size_t n = 0;
    for (const ig_link_t *l = a->queue.head; l; l = l->next)
        n++;
    return n;
}

static void render_json(ig_req_t *req, int status, cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        ig_req_error(req, 500, "out of memory rendering JSON", NULL, 0);
        return;
    }
    ig_req_respond(req, status, &json_ct, 1, s, strlen(s));
    cJSON_free(s);
}

static void handle_stats(app_t *a, ig_req_t *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *sizes = cJSON_CreateObject();
    if (!root || !sizes) {
        cJSON_Delete(root);
        cJSON_Delete(sizes);
        ig_req_error(req, 500, "out of memory rendering JSON", NULL, 0);
        return;
    }
    cJSON_AddNumberToObject(root, "calls", (double)a->calls);
    cJSON_AddNumberToObject(root, "rows", (double)a->rows);
    cJSON_AddNumberToObject(root, "inflight", (double)a->inflight);
    cJSON_AddNumberToObject(root, "max_inflight", (double)a->max_inflight);
    for (size_t i = 0; i < a->nsizes; i++) {
        char key[24];
        snprintf(key, sizeof(key), "%" PRIu64, a->sizes[i].rows);
        cJSON_AddNumberToObject(sizes, key, (double)a->sizes[i].count);
    }
    cJSON_AddItemToObject(root, "batch_sizes", sizes);
    cJSON_AddNumberToObject(root, "errors", (double)a->errors);
    cJSON_AddNumberToObject(root, "queued", (double)queued(a));
    render_json(req, 200, root);
}

static void handle_stats_reset(app_t *a, ig_req_t *req)
{
    a->calls = a->rows = a->errors = 0;
    a->max_inflight = a->inflight;
    a->nsizes = 0;
    handle_stats(a, req);
}

/* ---- calls ------------------------------------------------------------ */

static void call_free(call_t *c)
{
    ig_kserve_input_dispose(&c->in);
    free(c);
}

static void log_call(app_t *a, call_t *c, int status)
{
    char fields[256];
    uint64_t dur_us;
    if (a->o->quiet || IG_LOG_INFO < ig_log_threshold)
        return;
    dur_us = (uv_hrtime() - c->arrival_ns) / 1000;
    snprintf(fields, sizeof(fields),
             "\"protocol\":\"v%d\",\"model\":\"%s\",\"batch_size\":%zu,\"inflight\":%" PRIu64
             ",\"status\":%d,\"duration_us\":%" PRIu64,
             c->protocol, a->o->name, c->in.rows, a->inflight, status, dur_us);
    ig_log_write(IG_LOG_INFO, fields, "call");
}

/* Answers a call and releases it. The call must not be in any list. */
static void call_answer(call_t *c, int status, const char *body, size_t len, const char *errmsg)
{
    app_t *a = c->app;
    ig_req_t *req = c->req;

    if (req) {
        log_call(a, c, status);
        a->inflight--;
        a->completed++;
        if (status != 200)
            a->errors++;
        c->req = NULL;
        req->on_abort = NULL;
        req->data = NULL;
    }
    /* Free before responding: ig_req_respond may hand the connection's next
     * pipelined request to on_request before it returns. */
    call_free(c);
    if (!req)
        return;
    if (errmsg)
        ig_req_error(req, status, errmsg, NULL, 0);
    else
        ig_req_respond(req, status, &json_ct, 1, body, len);
}

static void call_compute_and_answer(call_t *c)
{
    ig_iris_pred_t *pred;
    char *body;
    size_t len;

    if (!c->req) {
        c->app->inflight--; /* abandoned while running: the work is done now */
        call_free(c);
        return;
    }
    pred = ig_xcalloc(c->in.rows, sizeof(*pred));
    ig_iris_predict_rows(c->in.x, c->in.rows, pred);
    if (c->protocol == 1)
        body = ig_kserve_v1_render(
            pred, c->app->o->short_batch_answers && c->in.rows > 1 ? c->in.rows - 1 : c->in.rows,
            &len);
    else
        body = ig_kserve_v2_render(&c->in, pred, c->app->o->name,
                                   c->versioned ? MODEL_VERSION : NULL, &len);
    free(pred);
    call_answer(c, 200, body, len, NULL);
    cJSON_free(body);
}

static void crash_now(app_t *a)
{
    ig_log_fail("--crash-after %" PRIu64 ": %" PRIu64
                " inference calls completed, exiting with status 3",
                a->o->crash_after, a->completed);
    _exit(3); /* like a crash: no atexit handlers, no leak checks */
}

static uint64_t call_cost_ns(const app_t *a, const call_t *c)
{
    return (a->o->cost_base_us + a->o->cost_per_row_us * (uint64_t)c->in.rows) * 1000 +
           a->o->delay_ms * 1000000;
}

static void pump(app_t *a);

/* Sets the clock to the earliest end among the running calls. */
static void clock_rearm(app_t *a)
{
    uint64_t next = 0;
    for (ig_link_t *l = a->running.head; l; l = l->next) {
        uint64_t end = IG_LIST_ITEM(l, call_t, link)->end_ns;
        if (next == 0 || end < next)
            next = end;
    }
    if (next == a->clock_armed_ns)
        return;
    /* uv_hrtime() reads CLOCK_MONOTONIC, the timerfd's clock. An end in
     * the past fires at once; a zero it_value disarms. */
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(next / 1000000000u);
    its.it_value.tv_nsec = (long)(next % 1000000000u);
    if (timerfd_settime(a->clock_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        ig_log_fail("timerfd_settime: %s", strerror(errno));
    a->clock_armed_ns = next;
}

/* The running call that ends first, if it has ended by `now`. */
static call_t *ended_call(app_t *a, uint64_t now)
{
    call_t *first = NULL;
    for (ig_link_t *l = a->running.head; l; l = l->next) {
        call_t *c = IG_LIST_ITEM(l, call_t, link);
        if (c->end_ns <= now && (!first || c->end_ns < first->end_ns))
            first = c;
    }
    return first;
}

static void on_clock(uv_poll_t *h, int status, int events)
{
    app_t *a = h->data;
    uint64_t expirations;
    (void)status;
    (void)events;
    if (read(a->clock_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        ig_log_fail("timerfd read: %s", strerror(errno));
    a->clock_armed_ns = 0;
    uint64_t now = uv_hrtime();
    call_t *c;
    while ((c = ended_call(a, now)) != NULL) {
        ig_list_remove(&a->running, &c->link);
        if (a->ninst > 0)
            a->busy[c->inst] = false;
        /* Start the next queued call before answering, so a pipelined
         * request that arrives while we answer cannot jump the FIFO. */
        pump(a);
        call_compute_and_answer(c);
    }
    clock_rearm(a);
}

/* Occupies an instance (or none, when unlimited) for the call's cost. */
static void call_start(app_t *a, call_t *c, size_t inst)
{
    uint64_t start = c->arrival_ns;

    if (a->o->crash_after != IG_OPTS_OFF && a->completed >= a->o->crash_after)
        crash_now(a);
    if (a->ninst > 0) {
        a->busy[inst] = true;
        if (a->free_at_ns[inst] > start)
            start = a->free_at_ns[inst];
    }
    c->end_ns = start + call_cost_ns(a, c);
    if (a->ninst > 0)
        a->free_at_ns[inst] = c->end_ns;
    c->inst = inst;
    c->state = CALL_RUNNING;
    ig_list_push_back(&a->running, &c->link);
    if (a->clock_armed_ns == 0 || c->end_ns < a->clock_armed_ns)
        clock_rearm(a);
}

/* Hands free instances to queued calls, oldest first. */
static void pump(app_t *a)
{
    size_t i = 0;
    while (a->queue.head) {
        while (i < a->ninst && a->busy[i])
            i++;
        if (i == a->ninst)
            return;
        call_t *c = first_call(&a->queue);
        ig_list_remove(&a->queue, &c->link);
        call_start(a, c, i);
    }
}

static void on_call_abort(ig_req_t *req)
{
    call_t *c = req->data;
    app_t *a = c->app;

    c->req = NULL;
    ig_log_debug("inference call abandoned by its client while %s",
                 c->state == CALL_QUEUED    ? "queued"
                 : c->state == CALL_RUNNING ? "running"
                                            : "hanging");
    /* A running call keeps its instance, and counts as in flight, until its
     * cost has elapsed, as a real accelerator cannot take back work it has
     * started. */
    if (c->state == CALL_RUNNING)
        return;
    a->inflight--;
    ig_list_remove(list_of(a, c), &c->link);
    call_free(c);
}

static void handle_infer(app_t *a, ig_req_t *req, int protocol, bool versioned)
{
    call_t *c;
    char err[256];
    int rc;

    a->seq++;
    a->calls++;
    if (a->o->crash_after != IG_OPTS_OFF && a->completed >= a->o->crash_after)
        crash_now(a);

    c = ig_xcalloc(1, sizeof(*c));
    c->app = a;
    c->req = req;
    c->protocol = protocol;
    c->versioned = versioned;
    c->arrival_ns = uv_hrtime();
    req->data = c;
    req->on_abort = on_call_abort;
    if (++a->inflight > a->max_inflight)
        a->max_inflight = a->inflight;

    if (a->o->hang_after != IG_OPTS_OFF && a->seq > a->o->hang_after) {
        c->state = CALL_HANGING;
        ig_list_push_back(&a->hanging, &c->link);
        ig_log_debug("--hang-after %" PRIu64 ": call %" PRIu64 " will never be answered",
                     a->o->hang_after, a->seq);
        return;
    }
    if (ig_req_header(req, "Inference-Header-Content-Length").base) {
        call_answer(c, 400, NULL, 0,
                    "binary tensor data (Inference-Header-Content-Length) is not supported; "
                    "send JSON data");
        return;
    }
    if (protocol == 1)
        rc = ig_kserve_v1_parse(req->body.base, req->body.len, &c->in, err, sizeof(err));
    else
        rc = ig_kserve_v2_parse(req->body.base, req->body.len, &c->in, err, sizeof(err));
    if (rc < 0) {
        call_answer(c, 400, NULL, 0, err);
        return;
    }
    a->rows += c->in.rows;
    count_batch(a, c->in.rows);
    if (a->o->fail_every && a->seq % a->o->fail_every == 0) {
        snprintf(err, sizeof(err), "injected failure (fail-every %" PRIu64 ")", a->o->fail_every);
        call_answer(c, 500, NULL, 0, err);
        return;
    }
    if (call_cost_ns(a, c) == 0 && !a->queue.head) {
        size_t i = 0;
        while (i < a->ninst && a->busy[i])
            i++;
        if (a->ninst == 0 || i < a->ninst) {
            /* Free compute and a free instance: answer now, no timer. */
            call_compute_and_answer(c);
            return;
        }
    }
    if (a->ninst == 0) {
        call_start(a, c, 0);
        return;
    }
    c->state = CALL_QUEUED;
    ig_list_push_back(&a->queue, &c->link);
    pump(a);
}

/* ---- metadata and health ------------------------------------------------ */

static bool is_ready(const app_t *a)
{
    return uv_hrtime() >= a->ready_at_ns;
}

static cJSON *tensor_meta(const char *name, const char *dtype, int d1)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *shape;
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", dtype);
    shape = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(-1));
    if (d1)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(d1));
    return t;
}

static void handle_model_meta(app_t *a, ig_req_t *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *versions, *inputs, *outputs;
    cJSON_AddStringToObject(root, "name", a->o->name);
    versions = cJSON_AddArrayToObject(root, "versions");
    cJSON_AddItemToArray(versions, cJSON_CreateString(MODEL_VERSION));
    cJSON_AddStringToObject(root, "platform", "infergate-model");
    inputs = cJSON_AddArrayToObject(root, "inputs");
    outputs = cJSON_AddArrayToObject(root, "outputs");
    cJSON_AddItemToArray(inputs, tensor_meta("input", "FP32", IG_IRIS_FEATURES));
    cJSON_AddItemToArray(outputs, tensor_meta("label", "INT64", 0));
    cJSON_AddItemToArray(outputs, tensor_meta("probabilities", "FP32", IG_IRIS_CLASSES));
    render_json(req, 200, root);
}

static void handle_server_meta(ig_req_t *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", "infergate-model");
    cJSON_AddStringToObject(root, "version", IG_MODEL_VERSION);
    cJSON_AddArrayToObject(root, "extensions");
    render_json(req, 200, root);
}

static void handle_ready(app_t *a, ig_req_t *req, bool v1)
{
    bool ready = is_ready(a);
    cJSON *root = cJSON_CreateObject();
    if (v1)
        cJSON_AddStringToObject(root, "name", a->o->name);
    cJSON_AddBoolToObject(root, "ready", ready);
    render_json(req, ready ? 200 : 503, root);
}

/* ---- routing ------------------------------------------------------------ */

static bool method_is(ig_req_t *req, const char *m)
{
    return ig_slice_eq(req->method_name, m);
}

/* HEAD is answered wherever GET is; the server drops the body. */
static bool method_is_get(ig_req_t *req)
{
    return method_is(req, "GET") || method_is(req, "HEAD");
}

static void not_allowed(ig_req_t *req, const char *allow)
{
    char msg[200];
    ig_header_t h = {IG_SLICE_LIT("Allow"), ig_slice_cstr(allow)};
    snprintf(msg, sizeof(msg), "method %.*s is not allowed on %.*s (use %s)",
             (int)(req->method_name.len > 16 ? 16 : req->method_name.len), req->method_name.base,
             (int)(req->path.len > 100 ? 100 : req->path.len), req->path.base, allow);
    ig_req_error(req, 405, msg, &h, 1);
}

static void not_found(ig_req_t *req)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "no route for %.*s %.*s",
             (int)(req->method_name.len > 16 ? 16 : req->method_name.len), req->method_name.base,
             (int)(req->path.len > 100 ? 100 : req->path.len), req->path.base);
    ig_req_error(req, 404, msg, NULL, 0);
}

/* 404 unless the path names the served model (and version "1" if any). */
static bool model_known(app_t *a, ig_req_t *req, const ig_kserve_path_t *p)
{
    char msg[240];
    if (!ig_slice_eq(p->model, a->o->name)) {
        snprintf(msg, sizeof(msg), "model '%.*s' not found (this server serves '%s')",
                 (int)(p->model.len > 64 ? 64 : p->model.len), p->model.base, a->o->name);
        ig_req_error(req, 404, msg, NULL, 0);
        return false;
    }
    if (p->version.base && !ig_slice_eq(p->version, MODEL_VERSION)) {
        snprintf(msg, sizeof(msg), "model '%s' has no version '%.*s' (versions: %s)", a->o->name,
                 (int)(p->version.len > 32 ? 32 : p->version.len), p->version.base, MODEL_VERSION);
        ig_req_error(req, 404, msg, NULL, 0);
        return false;
    }
    return true;
}

/* Runs `fn` for a GET-only helper endpoint, or answers 405. */
#define GET_ONLY(req, call)                                                                        \
    do {                                                                                           \
        if (!method_is_get(req))                                                                   \
            not_allowed((req), "GET, HEAD");                                                       \
        else                                                                                       \
            call;                                                                                  \
    } while (0)

static void on_request(ig_req_t *req, void *ud)
{
    app_t *a = ud;
    ig_kserve_path_t p;

    if (ig_slice_eq(req->path, "/stats"))
        GET_ONLY(req, handle_stats(a, req));
    else if (ig_slice_eq(req->path, "/stats/reset")) {
        if (method_is(req, "POST"))
            handle_stats_reset(a, req);
        else
            not_allowed(req, "POST");
    } else if (ig_slice_eq(req->path, "/echo")) {
        if (method_is(req, "POST"))
            ig_extras_echo(req);
        else
            not_allowed(req, "POST");
    } else if (ig_slice_eq(req->path, "/headers"))
        GET_ONLY(req, ig_extras_headers(req));
    else if (ig_slice_eq(req->path, "/slow"))
        GET_ONLY(req, ig_extras_slow(a->loop, req));
    else if (ig_slice_eq(req->path, "/stream"))
        GET_ONLY(req, ig_extras_stream(a->loop, req));
    else if (ig_slice_eq(req->path, "/close-delimited"))
        GET_ONLY(req, ig_extras_close_delimited(a->loop, req));
    else {
        switch (ig_kserve_match(req->path, &p)) {
        case IG_KSERVE_PATH_NONE:
            not_found(req);
            break;
        case IG_KSERVE_PATH_V2_SERVER:
            GET_ONLY(req, handle_server_meta(req));
            break;
        case IG_KSERVE_PATH_V2_LIVE:
            GET_ONLY(req, render_json(req, 200, cJSON_CreateObject()));
            break;
        case IG_KSERVE_PATH_V2_READY:
            GET_ONLY(req, handle_ready(a, req, false));
            break;
        case IG_KSERVE_PATH_V1_MODEL:
            if (!method_is_get(req))
                not_allowed(req, "GET, HEAD");
            else if (model_known(a, req, &p))
                handle_ready(a, req, true);
            break;
        case IG_KSERVE_PATH_V2_MODEL:
            if (!method_is_get(req))
                not_allowed(req, "GET, HEAD");
            else if (model_known(a, req, &p))
                handle_model_meta(a, req);
            break;
        case IG_KSERVE_PATH_V2_MODEL_READY:
            if (!method_is_get(req))
                not_allowed(req, "GET, HEAD");
            else if (model_known(a, req, &p))
                handle_ready(a, req, false);
            break;
        case IG_KSERVE_PATH_V1_PREDICT:
        case IG_KSERVE_PATH_V2_INFER:
            if (!method_is(req, "POST"))
                not_allowed(req, "POST");
            else if (model_known(a, req, &p))
                handle_infer(a, req, p.kind == IG_KSERVE_PATH_V1_PREDICT ? 1 : 2,
                             p.version.base != NULL);
            break;
        }
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

static int write_port_file(const char *path, int port)
{
    ig_buf_t tmp;
    FILE *f;
    int ok;

    /* Written under a temporary name and renamed, so a test polling for the
     * file never reads it half-written. */
    ig_buf_init(&tmp, 0);
    ig_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp.base, "w");
    if (!f) {
        ig_log_fail("--port-file %s: cannot create %s", path, tmp.base);
        ig_buf_dispose(&tmp);
        return IG_EIO;
    }
    ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp.base, path) != 0) {
        ig_log_fail("--port-file %s: cannot write it", path);
        unlink(tmp.base);
        ig_buf_dispose(&tmp);
        return IG_EIO;
    }
    ig_buf_dispose(&tmp);
    return 0;
}

static void on_clock_closed(uv_handle_t *h)
{
    app_t *a = h->data;
    close(a->clock_fd);
    a->clock_fd = -1;
}

static void on_server_closed(void *arg)
{
    app_t *a = arg;
    a->server = NULL;
    /* Calls still holding an instance lost their clients with the server. */
    while (a->running.head) {
        call_t *c = first_call(&a->running);
        ig_list_remove(&a->running, &c->link);
        c->req = NULL;
        call_free(c);
    }
    uv_close((uv_handle_t *)&a->clock_poll, on_clock_closed);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *a = h->data;
    if (a->stopping)
        return;
    a->stopping = true;
    ig_log_info("signal %d: shutting down", signum);
    ig_server_close(a->server, on_server_closed, a);
}

int ig_model_app_run(const ig_opts_t *o)
{
    uv_loop_t loop;
    app_t a;
    ig_server_opts_t so;
    ig_buf_t fields;
    int rc;

    memset(&a, 0, sizeof(a));
    ig_log_threshold = o->log_level;
    if (uv_loop_init(&loop) != 0) {
        ig_log_fail("cannot create the event loop");
        return 1;
    }
    a.loop = &loop;
    a.o = o;
    a.ninst = (size_t)o->max_concurrency;
    if (a.ninst > 0) {
        a.free_at_ns = ig_xcalloc(a.ninst, sizeof(*a.free_at_ns));
        a.busy = ig_xcalloc(a.ninst, sizeof(*a.busy));
    }

    memset(&so, 0, sizeof(so));
    so.limits.max_header_bytes = 64 * 1024;
    so.limits.max_body_bytes = 64 * 1024 * 1024;
    so.limits.header_timeout_ms = 10000;
    so.limits.idle_timeout_ms = 60000;
    so.limits.max_connections = 10000;
    so.on_request = on_request;
    so.ud = &a;
    so.server_name = "infergate-model";
    a.server = ig_server_new(&loop, &so);

    rc = ig_server_listen(a.server, o->listen);
    if (rc < 0) {
        ig_log_fail("--listen %s: %s", o->listen, ig_strerror(rc));
        a.exit_code = rc == IG_EADDR ? 2 : 1;
        ig_server_close(a.server, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto done;
    }
    a.ready_at_ns = uv_hrtime() + o->not_ready_ms * 1000000;
    if (o->port_file && write_port_file(o->port_file, ig_server_port(a.server)) < 0) {
        a.exit_code = 1;
        ig_server_close(a.server, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto done;
    }

    a.clock_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (a.clock_fd < 0 || uv_poll_init(&loop, &a.clock_poll, a.clock_fd) != 0) {
        ig_log_fail("cannot create the accelerator clock (timerfd): %s", strerror(errno));
        if (a.clock_fd >= 0)
            close(a.clock_fd);
        a.exit_code = 1;
        ig_server_close(a.server, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        goto done;
    }
    a.clock_poll.data = &a;
    uv_poll_start(&a.clock_poll, UV_READABLE, on_clock);

    uv_signal_init(&loop, &a.sigint);
    uv_signal_init(&loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    ig_buf_init(&fields, 0);
    ig_buf_append_str(&fields, "\"listen\":");
    ig_buf_append_json_str(&fields, o->listen, strlen(o->listen));
    ig_buf_printf(&fields,
                  ",\"port\":%d,\"model\":\"%s\",\"max_concurrency\":%" PRIu64
                  ",\"cost_base_us\":%" PRIu64 ",\"cost_per_row_us\":%" PRIu64
                  ",\"train_accuracy\":%.4f",
                  ig_server_port(a.server), o->name, o->max_concurrency, o->cost_base_us,
                  o->cost_per_row_us, ig_iris_train_accuracy());
    IG_LOGF(IG_LOG_INFO, fields.base, "infergate-model listening");
    ig_buf_dispose(&fields);

    uv_run(&loop, UV_RUN_DEFAULT);
    a.exit_code = 0;
done:
    /* Queued and hanging calls were freed by their on_abort when the server
     * closed their connections. */
    free(a.free_at_ns);
    free(a.busy);
    free(a.sizes);
    if (uv_loop_close(&loop) != 0)
        ig_log_warn("event loop closed with handles still open");
    return a.exit_code;
}
