/*
 * app.h: the infergate-model server: routes, the simulated accelerator,
 * fault injection and statistics, on top of the project's HTTP server.
 */
#ifndef INFERGATE_MODEL_APP_H
#define INFERGATE_MODEL_APP_H

#include "opts.h"

/* Runs the server until SIGINT or SIGTERM. Returns the process exit status:
 * 0 after a clean shutdown, 2 when --listen is not an address, 1 when it
 * cannot listen or write --port-file (the reason is logged). --crash-after
 * ends the process from inside with status 3. */
int ig_model_app_run(const ig_opts_t *o);

#endif
