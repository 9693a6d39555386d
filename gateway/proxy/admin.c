/*
 * admin.c: the admin port: liveness, readiness, drain control, the
 * effective configuration, and the autoscaling signals (Prometheus text at
 * /metrics, JSON at /autoscale).
 *
 * Mutating endpoints (POST /admin/drain) answer only loopback peers: in a
 * pod, that is the pod itself (the model container's preStop hook).
 */
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "gateway_int.h"
#include "infergate/base/log.h"

static const ig_header_t json_ct = {IG_SLICE_LIT("Content-Type"), IG_SLICE_LIT("application/json")};

static void respond_json(ig_req_t *req, int status, const char *body, size_t len)
{
    ig_req_respond(req, status, &json_ct, 1, body, len);
}

static bool query_has(ig_slice_t q, const char *kv)
{
    size_t n = strlen(kv);
    const char *s = q.base, *end = q.base + q.len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        if ((size_t)(e - s) == n && memcmp(s, kv, n) == 0)
            return true;
        s = e + 1;
    }
    return false;
}

void ig_admin_on_request(ig_req_t *req, void *ud)
{
    ig_gateway_t *gw = ud;
    ig_drain_phase_t phase = ig_drain_phase(gw->drain);
    ig_buf_t *b = &gw->scratch;
    bool get = ig_slice_eq(req->method_name, "GET") || ig_slice_eq(req->method_name, "HEAD");
    bool post = ig_slice_eq(req->method_name, "POST");
    ig_buf_reset(b);

    if (ig_slice_eq(req->path, "/healthz") && get) {
        respond_json(req, 200, "{\"status\":\"ok\"}\n", 16);
        return;
    }
    if (ig_slice_eq(req->path, "/readyz") && get) {
        bool ready = ig_gateway_ready(gw);
        const char *why = ig_health_last_error(gw->health);
        ig_buf_printf(
            b, "{\"ready\":%s,\"upstream_ready\":%s,\"phase\":\"%s\"", ready ? "true" : "false",
            ig_health_upstream_ready(gw->health) ? "true" : "false", ig_drain_phase_name(phase));
        if (why[0]) {
            ig_buf_append_str(b, ",\"reason\":");
            ig_buf_append_json_str(b, why, strlen(why));
        }
        ig_buf_append_str(b, "}\n");
        respond_json(req, ready ? 200 : 503, b->base, b->len);
        return;
    }
    if (ig_slice_eq(req->path, "/admin/drain")) {
        if (post) {
            if (!req->peer_is_loopback) {
                ig_req_reject(req, IG_REASON_FORBIDDEN,
                              "POST /admin/drain answers loopback peers only", NULL, 0);
                return;
            }
            ig_drain_start(gw->drain, "POST /admin/drain");
            ig_buf_printf(b, "{\"draining\":true,\"phase\":\"%s\"}\n",
                          ig_drain_phase_name(ig_drain_phase(gw->drain)));
            respond_json(req, 202, b->base, b->len);
            return;
        }
        if (get) {
            if (query_has(req->query, "wait=1") || query_has(req->query, "wait=true")) {
                if (phase == IG_DRAIN_DONE) {
                    respond_json(req, 200, "{\"drained\":true}\n", 17);
                    return;
                }
                ig_drain_add_waiter(gw->drain, req);
                return;
            }
            ig_buf_printf(b, "{\"phase\":\"%s\",\"outstanding\":%llu}\n",
                          ig_drain_phase_name(phase),
                          (unsigned long long)ig_gateway_outstanding(gw));
            respond_json(req, 200, b->base, b->len);
            return;
        }
    }
    if (ig_slice_eq(req->path, "/admin/config") && get) {
        char *json = ig_config_to_json(gw->cfg, true);
        respond_json(req, 200, json, strlen(json));
        free(json);
        return;
    }
    if (ig_slice_eq(req->path, "/metrics") && get) {
        ig_metrics_set_inflight(gw->metrics, gw->inflight);
        ig_metrics_set_upstream_inflight(gw->metrics, gw->adm.inflight);
        ig_metrics_render_prometheus(gw->metrics, b, uv_now(gw->loop) * 1000);
        ig_header_t ct = {IG_SLICE_LIT("Content-Type"),
                          IG_SLICE_LIT("text/plain; version=0.0.4; charset=utf-8")};
        ig_req_respond(req, 200, &ct, 1, b->base, b->len);
        return;
    }
    if (ig_slice_eq(req->path, "/autoscale") && get) {
        ig_metrics_render_autoscale(gw->metrics, b, uv_now(gw->loop) * 1000);
        respond_json(req, 200, b->base, b->len);
        return;
    }
    bool known = ig_slice_eq(req->path, "/healthz") || ig_slice_eq(req->path, "/readyz") ||
                 ig_slice_eq(req->path, "/admin/drain") ||
                 ig_slice_eq(req->path, "/admin/config") || ig_slice_eq(req->path, "/metrics") ||
                 ig_slice_eq(req->path, "/autoscale");
    if (known) {
        ig_header_t allow = {IG_SLICE_LIT("Allow"), ig_slice_eq(req->path, "/admin/drain")
                                                        ? IG_SLICE_LIT("GET, POST")
                                                        : IG_SLICE_LIT("GET, HEAD")};
        ig_req_reject(req, IG_REASON_METHOD_NOT_ALLOWED, "method not allowed on this endpoint",
                      &allow, 1);
        return;
    }
    ig_req_reject(req, IG_REASON_NOT_FOUND,
                  "unknown admin endpoint (try /healthz, /readyz, /metrics, /autoscale, "
                  "/admin/drain, /admin/config)",
                  NULL, 0);
}
