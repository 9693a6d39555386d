/*
 * run.c: the sidecar's life: start-up (routes, metrics, upstream pool,
 * both listeners, signals, the first probe), the access log, and the
 * orderly teardown once the drain has finished.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

/* ---- access log and completion ---------------------------------------- */

static void on_data_complete(ig_req_t *req, int status, uint64_t bytes_out, void *ud)
{
    ig_gateway_t *gw = ud;
    uint64_t dur_us = (uv_hrtime() - req->start_ns) / 1000;
    uint64_t route_tag = req->tag & ~IG_GW_TAG_COUNTED;
    size_t route = route_tag ? (size_t)(route_tag - 1) : IG_METRICS_NO_ROUTE;
    ig_metrics_request_done(gw->metrics, route, status, dur_us, ig_gw_now_us(gw));
    /* Only requests that reached on_data_request were counted in: the
     * server answers malformed ones (400/408/413/431) itself. */
    if (req->tag & IG_GW_TAG_COUNTED)
        gw->inflight--;
    ig_gw_update_gauges(gw);
    if (gw->cfg->log.access_log && ig_log_threshold <= IG_LOG_INFO) {
        ig_buf_t *b = &gw->scratch;
        ig_buf_reset(b);
        ig_buf_append_str(b, "{\"msg\":\"access\",\"method\":");
        ig_buf_append_json_str(b, req->method_name.base, req->method_name.len);
        ig_buf_append_str(b, ",\"path\":");
        ig_buf_append_json_str(b, req->path.base, req->path.len);
        ig_buf_printf(b,
                      ",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%" PRIu64 ",\"peer\":", status,
                      (double)dur_us / 1000.0, bytes_out);
        ig_buf_append_json_str(b, req->peer_ip, strlen(req->peer_ip));
        ig_buf_append_str(b, ",\"request_id\":");
        ig_buf_append_json_str(b, req->request_id.base, req->request_id.len);
        ig_buf_append_str(b, "}\n");
        ig_log_raw(b->base, b->len);
    }
    if (gw->drain)
        ig_drain_poke(gw->drain);
}

/* Every rejection of either port, the server's own (431, 408, ...) included,
 * is counted here. A failed call to the model is counted per call instead
 * (infergate_upstream_errors_total), by the code that made the call. */
static void on_data_reject(ig_req_t *req, ig_reason_t reason, void *ud)
{
    ig_gateway_t *gw = ud;
    uint64_t route_tag = req->tag & ~IG_GW_TAG_COUNTED;
    if (!(ig_reason_flags(reason) & IG_RF_UPSTREAM))
        ig_metrics_rejected(gw->metrics, route_tag ? (size_t)(route_tag - 1) : IG_METRICS_NO_ROUTE,
                            reason);
}

static void on_admin_reject(ig_req_t *req, ig_reason_t reason, void *ud)
{
    ig_gateway_t *gw = ud;
    (void)req;
    ig_metrics_rejected(gw->metrics, IG_METRICS_NO_ROUTE, reason);
}

/* Either port: a client connection closed. */
static void on_conn_closed(ig_server_t *s, size_t open, void *ud)
{
    ig_gateway_t *gw = ud;
    (void)s, (void)open;
    if (gw->drain)
        ig_drain_poke(gw->drain);
}

static void on_data_request(ig_req_t *req, void *ud)
{
    ig_gateway_t *gw = ud;
    gw->inflight++;
    req->tag = IG_GW_TAG_COUNTED;
    ig_gateway_on_request(req, ud);
}

/* ---- start-up and shutdown -------------------------------------------- */

static void on_signal(uv_signal_t *s, int signum)
{
    ig_gateway_t *gw = s->data;
    ig_drain_start(gw->drain, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- the drain's and the prober's view of the gateway ------------------ */

static void on_readiness(void *ud)
{
    ig_gateway_t *gw = ud;
    ig_metrics_set_ready(gw->metrics, ig_gateway_ready(gw));
}

static uint64_t drain_outstanding(void *ud)
{
    return ig_gateway_outstanding(ud);
}

static void drain_fail_all(void *ud)
{
    ig_gateway_fail_all(ud);
}

static void drain_phase_changed(void *ud)
{
    ig_gateway_t *gw = ud;
    /* Probing goes on while the gateway still takes requests (grace). */
    if (ig_drain_phase(gw->drain) >= IG_DRAIN_CLOSING && gw->health)
        ig_health_stop(gw->health);
    on_readiness(gw);
}

static void on_closed_all(void *arg)
{
    (void)arg;
}

/* Drained and flushed: close everything so that the loop ends. */
static void drain_shut_down(void *ud)
{
    ig_gateway_t *gw = ud;
    ig_server_close(gw->data, on_closed_all, NULL);
    ig_server_close(gw->admin, on_closed_all, NULL);
    gw->data = gw->admin = NULL;
    ig_health_free(gw->health);
    gw->health = NULL;
    ig_upstream_free(gw->upstream);
    gw->upstream = NULL;
    uv_close((uv_handle_t *)&gw->sigterm, NULL);
    uv_close((uv_handle_t *)&gw->sigint, NULL);
}

static const ig_drain_ops_t drain_ops = {
    .outstanding = drain_outstanding,
    .fail_all = drain_fail_all,
    .phase_changed = drain_phase_changed,
    .shut_down = drain_shut_down,
};

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int ig_gateway_run(const ig_config_t *cfg)
{
    ig_gateway_t gw_storage;
    ig_gateway_t *gw = &gw_storage;
    memset(gw, 0, sizeof(*gw));
    char err[512];
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw->loop = &loop;
    gw->cfg = cfg;
    ig_log_threshold = cfg->log.level;
    ig_buf_init(&gw->scratch, 0);
    ig_pending_pool_init(&gw->pendings, &loop);

    if (ig_router_init(&gw->router, cfg->routes, cfg->nroutes, err, sizeof(err)) != 0) {
        ig_log_fail("invalid routes: %s", err);
        return 2;
    }
    gw->route_names = ig_xcalloc(cfg->nroutes, sizeof(char *));
    for (size_t i = 0; i < cfg->nroutes; i++)
        gw->route_names[i] = cfg->routes[i].match;
    gw->route_depth = ig_xcalloc(cfg->nroutes, sizeof(uint64_t));
    gw->route_codecs = ig_xcalloc(cfg->nroutes, sizeof(*gw->route_codecs));
    for (size_t i = 0; i < cfg->nroutes; i++)
        gw->route_codecs[i] = cfg->routes[i].protocol == IG_PROTO_KSERVE_V1 ? &ig_codec_v1
                              : cfg->routes[i].protocol == IG_PROTO_OIP_V2  ? &ig_codec_v2
                                                                            : NULL;
    ig_batcher_init(&gw->batcher, &loop, ig_gw_on_group_due, gw);
    gw->pump_taken = ig_xcalloc(IG_GW_MAX_BATCH, sizeof(*gw->pump_taken));
    gw->pump_members = ig_xcalloc(IG_GW_MAX_BATCH, sizeof(*gw->pump_members));
    gw->metrics = ig_metrics_new(cfg->nroutes, gw->route_names, cfg->metrics.window_s,
                                 cfg->upstream.max_concurrency);
    ig_metrics_start(gw->metrics, ig_gw_now_us(gw));
    ig_admission_init(&gw->adm, cfg->limits.max_queue, cfg->upstream.max_concurrency);

    /* The upstream client has no use for the URL's user info (it sends no
     * credentials of its own, and skips the user info when it parses the
     * URL), but it quotes the URL in its error messages: it gets the
     * redacted form, and so does the start-up line below. */
    char *shown_url = ig_log_redact_url(cfg->upstream.url);
    ig_upstream_opts_t uo = {
        .url = shown_url,
        .max_connections = cfg->upstream.max_connections,
        .connect_timeout_ms = cfg->upstream.connect_timeout_ms,
        .timeout_ms = cfg->upstream.timeout_ms,
        .max_header_bytes = cfg->limits.max_header_bytes * 4,
    };
    int rc = 1;
    if (ig_upstream_new(&loop, &uo, &gw->upstream, err, sizeof(err)) != 0) {
        ig_log_fail("%s", err);
        goto out;
    }

    ig_server_opts_t so = {
        .limits =
            {
                .max_header_bytes = cfg->limits.max_header_bytes,
                .max_body_bytes = cfg->limits.max_body_bytes,
                .header_timeout_ms = cfg->limits.header_timeout_ms,
                .idle_timeout_ms = cfg->limits.idle_timeout_ms,
                .max_connections = cfg->limits.max_connections,
            },
        .on_request = on_data_request,
        .on_complete = on_data_complete,
        .on_reject = on_data_reject,
        .on_conn_closed = on_conn_closed,
        .ud = gw,
    };
    gw->data = ig_server_new(&loop, &so);
    int r = ig_server_listen(gw->data, cfg->listen);
    if (r != 0) {
        ig_log_fail("cannot listen on %s (listen): %s", cfg->listen, ig_strerror(r));
        goto out;
    }
    ig_server_opts_t ao = so;
    ao.limits.max_body_bytes = 4096;
    ao.limits.max_connections = 256;
    ao.on_request = ig_admin_on_request;
    ao.on_complete = NULL;
    ao.on_reject = on_admin_reject;
    gw->admin = ig_server_new(&loop, &ao);
    r = ig_server_listen(gw->admin, cfg->admin_listen);
    if (r != 0) {
        ig_log_fail("cannot listen on %s (admin_listen): %s", cfg->admin_listen, ig_strerror(r));
        goto out;
    }

    uv_signal_init(&loop, &gw->sigterm);
    uv_signal_init(&loop, &gw->sigint);
    gw->sigterm.data = gw->sigint.data = gw;
    uv_signal_start(&gw->sigterm, on_signal, SIGTERM);
    uv_signal_start(&gw->sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);

    gw->drain = ig_drain_new(&loop, &drain_ops, gw, cfg->drain.grace_ms, cfg->drain.timeout_ms,
                             gw->data, gw->admin);
    ig_metrics_set_ready(gw->metrics, false);
    gw->health = ig_health_new(&loop, gw->upstream, cfg->upstream.ready_path,
                               cfg->upstream.probe_interval_ms,
                               cfg->upstream.connect_timeout_ms + 1000, on_readiness, gw);
    /* The bound ports too: with port 0 in the config they are the only
     * way to learn where the gateway listens. */
    ig_buf_t *f = &gw->scratch;
    ig_buf_reset(f);
    ig_buf_append_str(f, "\"listen\":");
    ig_buf_append_json_str(f, cfg->listen, strlen(cfg->listen));
    ig_buf_printf(f, ",\"port\":%d,\"admin_listen\":", ig_server_port(gw->data));
    ig_buf_append_json_str(f, cfg->admin_listen, strlen(cfg->admin_listen));
    ig_buf_printf(f, ",\"admin_port\":%d,\"upstream\":", ig_server_port(gw->admin));
    ig_buf_append_json_str(f, shown_url, strlen(shown_url));
    const char *fields = f->base;
    /* Written at every level but off: it is the one line that says where
     * the gateway listens (with port 0, the only way to learn it). */
    if (ig_log_threshold < IG_LOG_OFF)
        ig_log_write(IG_LOG_INFO, fields, "infergate serving");
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = ig_drain_exit_code(gw->drain);
    gw->data = gw->admin = NULL; /* closed by drain_shut_down */
    IG_LOGF(IG_LOG_INFO, NULL, "infergate stopped, exit code %d", rc);

out:
    /* Close whatever is still open so the loop can be closed cleanly. */
    if (gw->data)
        ig_server_close(gw->data, NULL, NULL);
    if (gw->admin)
        ig_server_close(gw->admin, NULL, NULL);
    ig_drain_free(gw->drain); /* waiters left by a start-up failure or abort */
    gw->drain = NULL;
    ig_health_free(gw->health);
    if (gw->upstream)
        ig_upstream_free(gw->upstream);
    ig_batcher_dispose(&gw->batcher);
    uv_walk(&loop, close_walk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ig_pending_pool_dispose(&gw->pendings);
    ig_metrics_free(gw->metrics);
    free(gw->route_names);
    free(gw->route_depth);
    free(gw->route_codecs);
    free(gw->pump_taken);
    free(gw->pump_members);
    ig_bcall_free_all(gw);
    ig_buf_dispose(&gw->scratch);
    free(shown_url);
    return rc;
}
