/*
 * gateway.h: the sidecar, from outside: one call that runs it.
 *
 * `ig_gateway_t` holds every piece of state of a running sidecar; it is
 * opaque here (its fields are the proxy layer's, gateway_int.h), and
 * modules reach it through the pointer passed to them, never through
 * globals.
 * gateway.c owns the data-port request path (route, admit, forward,
 * stream back); health.c the upstream probe; drain.c the drain state
 * machine; admin.c the admin port; run.c wires them.
 */
#ifndef INFERGATE_GATEWAY_H
#define INFERGATE_GATEWAY_H

#include "infergate/core/config.h"

typedef struct ig_gateway ig_gateway_t;

/* Runs the sidecar until it has drained: binds both ports, probes the
 * model, serves, drains on SIGTERM/SIGINT/POST /admin/drain. Returns the
 * process exit code: 0 when every request was answered, 1 when the drain
 * timeout cut some off or start-up failed (the reason is logged). */
int ig_gateway_run(const ig_config_t *cfg);

#endif
