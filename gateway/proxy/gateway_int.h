/*
 * gateway_int.h: the proxy layer's shared context (struct ig_gateway) and
 * what its modules call of each other. Private to gateway/proxy/: not a
 * public contract. Calls go downwards only (run.c -> admin.c, gateway.c ->
 * batch_call.c -> pending.c); a batch call reaches back through the
 * ig_bcall_owner_t table it is given.
 */
#ifndef INFERGATE_GATEWAY_INT_H
#define INFERGATE_GATEWAY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "infergate/base/buf.h"
#include "infergate/core/admission.h"
#include "infergate/core/batcher.h"
#include "infergate/core/codec.h"
#include "infergate/core/config.h"
#include "infergate/core/metrics.h"
#include "infergate/core/router.h"
#include "infergate/net/server.h"
#include "infergate/net/upstream.h"
#include "infergate/proxy/drain.h"
#include "infergate/proxy/gateway.h"
#include "infergate/proxy/health.h"
#include "pending.h"

#define IG_GW_MAX_FWD_HEADERS IG_PENDING_MAX_FWD_HEADERS
/* ig_req_t.tag of a data-port request: this bit says it was counted in the
 * in-flight gauge; the rest is its route index + 1 (0: no route). */
#define IG_GW_TAG_COUNTED (1ull << 63)

/* The most requests one batch call can carry (batch.max_size rows, >= 1 each). */
#define IG_GW_MAX_BATCH 4096

/* What a batch call needs from the request path, wired by gateway.c: the
 * call never calls up into it by name. */
typedef struct {
    /* The call is over: its concurrency slot goes to the next request. */
    void (*release_slot)(ig_gateway_t *gw, uint64_t held_us);
    /* Back to the head of the queue, to be sent on its own (poison isolation). */
    void (*requeue_alone)(ig_pending_t *p);
    /* Answers a member's client with a rejection. */
    void (*reject)(ig_gateway_t *gw, ig_req_t *req, ig_reason_t reason, const char *msg);
} ig_bcall_owner_t;

/* What the passthrough forwarder needs from the request path. */
typedef struct {
    /* The call is over (`reached`: it got to the model): FREE, slot released. */
    void (*call_over)(ig_pending_t *p, bool reached);
    /* Ends the request with an error (or a cut connection, once started). */
    void (*fail)(ig_pending_t *p, ig_reason_t reason, const char *msg);
} ig_forward_owner_t;

/* The sidecar's context: private to the proxy layer (gateway.h keeps it
 * opaque); run.c builds it. */
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
    ig_pending_pool_t pendings; /* recycled per-request state */
    ig_buf_t scratch;           /* access log lines and admin bodies */
};

/* ---- gateway.c ---- */
/* Answers a data-port request with the rejection `reason`
 * (ig_req_reject, with Retry-After when the reason asks for it). The data
 * server's on_reject counts it. */
void ig_gateway_reject(ig_gateway_t *gw, ig_req_t *req, ig_reason_t reason, const char *msg);

/* Data-port request handler (ig_request_cb). */
void ig_gateway_on_request(ig_req_t *req, void *ud);

/* Fails every queued and in-flight request with 503 draining. */
void ig_gateway_fail_all(ig_gateway_t *gw);

/* Requests still queued or with the model that a client waits
 * for (calls whose clients all left do not count: drain need not wait). */
uint64_t ig_gateway_outstanding(const ig_gateway_t *gw);

/* Ready for traffic: the model answers its probe and no drain started. */
bool ig_gateway_ready(const ig_gateway_t *gw);

/* admin.c: admin-port request handler (ig_request_cb). */
void ig_admin_on_request(ig_req_t *req, void *ud);

void ig_gw_pending_fail(ig_pending_t *p, ig_reason_t reason, const char *msg);
/* The loop's clock in µs, and the in-flight gauges set from the context:
 * inline, so that every proxy file may use them without calling into
 * gateway.c. */
static inline uint64_t ig_gw_now_us(const ig_gateway_t *gw)
{
    return uv_now(gw->loop) * 1000;
}

static inline void ig_gw_update_gauges(ig_gateway_t *gw)
{
    ig_metrics_set_inflight(gw->metrics, gw->inflight);
    ig_metrics_set_upstream_inflight(gw->metrics, gw->adm.inflight);
}
/* The batcher's on_due: a group's oldest member has waited max_delay_us. */
void ig_gw_on_group_due(ig_batcher_t *b, ig_batch_group_t *g);

/* forward.c: sends p's request to the model as it came (p: FREE or
 * QUEUED -> UPSTREAM) and streams the answer back to its client. */
void ig_forward_start(ig_pending_t *p, const ig_forward_owner_t *owner, ig_upstream_t *upstream,
                      uint64_t timeout_ms);

/* batch_call.c: sends members[0..n) (n >= 2, equal keys) as one call; the
 * first holds the concurrency slot. */
void ig_bcall_dispatch(ig_gateway_t *gw, const ig_bcall_owner_t *owner, ig_pending_t **members,
                       size_t n);
/* A member leaves its batch call early (client gone, deadline). */
void ig_bcall_detach(ig_pending_t *p);
/* A member's deadline passed while the model works: 504 upstream_timeout
 * for it alone. */
void ig_bcall_expire(ig_pending_t *p);
/* Fails every batch call in flight with 503 draining. */
void ig_bcall_fail_all(ig_gateway_t *gw);
void ig_bcall_free_all(ig_gateway_t *gw);

#endif
