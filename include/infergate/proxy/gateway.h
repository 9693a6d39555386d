/*
 * gateway.h: the sidecar's one context object and its request path.
 *
 * `ig_gateway_t` holds every piece of state of a running sidecar; modules
 * reach it through the pointer passed to them, never through globals.
 * gateway.c owns the data-port request path (route, admit, forward,
 * stream back); health.c the upstream probe; drain.c the drain state
 * machine; admin.c the admin port; run.c wires them.
 */
#ifndef INFERGATE_GATEWAY_H
#define INFERGATE_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/core/admission.h"
#include "infergate/core/batcher.h"
#include "infergate/base/buf.h"
#include "infergate/core/config.h"
#include "infergate/core/metrics.h"
#include "infergate/core/router.h"
#include "infergate/net/server.h"
#include "infergate/net/upstream.h"
#include "infergate/proxy/drain.h"
#include "infergate/proxy/health.h"

typedef struct ig_gateway ig_gateway_t;
typedef struct ig_pending ig_pending_t;

struct ig_gateway {
    uv_loop_t *loop;
    const ig_config_t *cfg;
    ig_router_t router;
    ig_server_t *data;
    ig_server_t *admin;
    ig_upstream_t *upstream;
    ig_admission_t adm;
    ig_metrics_t *metrics;
    const char **route_names; /* labels, borrowed from cfg */
    uint64_t *route_depth;    /* queued requests per route */
    uint64_t inflight;        /* client requests inside the gateway */
    uint64_t orphans;         /* slots held by calls whose clients all left: the
                               * model still works on them, nobody waits */
    ig_health_t *health;
    ig_drain_t *drain;
    uv_signal_t sigterm, sigint;
    struct ig_codec const **route_codecs; /* per route: NULL for passthrough */
    ig_batcher_t batcher;
    bool pumping;                        /* pump() is on the stack */
    struct ig_batch_member **pump_taken; /* pump's scratch: IG_GW_MAX_BATCH each */
    ig_pending_t **pump_members;
    struct ig_bcall *bcalls_free; /* recycled batch calls */
    struct ig_bcall *bcalls_all;
    ig_pending_t *free_pendings; /* recycled per-request state */
    ig_pending_t *all_pendings;  /* every allocated one, for shutdown */
    ig_buf_t scratch;            /* access log lines and admin bodies */
};

/* Runs the sidecar until it has drained: binds both ports, probes the
 * model, serves, drains on SIGTERM/SIGINT/POST /admin/drain. Returns the
 * process exit code: 0 when every request was answered, 1 when the drain
 * timeout cut some off or start-up failed (the reason is logged). */
int ig_gateway_run(const ig_config_t *cfg);

/* gateway.c: answers a data-port request with the rejection `reason`
 * (ig_req_reject, with Retry-After when the reason asks for it). The data
 * server's on_reject counts it. */
void ig_gateway_reject(ig_gateway_t *gw, ig_req_t *req, ig_reason_t reason, const char *msg);

/* gateway.c: data-port request handler (ig_request_cb). */
void ig_gateway_on_request(ig_req_t *req, void *ud);

/* gateway.c: fails every queued and in-flight request with 503 draining. */
void ig_gateway_fail_all(ig_gateway_t *gw);

/* gateway.c: requests still queued or with the model that a client waits
 * for (calls whose clients all left do not count: drain need not wait). */
uint64_t ig_gateway_outstanding(const ig_gateway_t *gw);

/* Ready for traffic: the model answers its probe and no drain started. */
bool ig_gateway_ready(const ig_gateway_t *gw);

/* admin.c: admin-port request handler (ig_request_cb). */
void ig_admin_on_request(ig_req_t *req, void *ud);

#endif
