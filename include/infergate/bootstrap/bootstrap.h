/*
 * bootstrap.h: `infergate bootstrap render|plan|apply|destroy`.
 *
 * Provisions the stack the sidecar runs in from the same config file. Never
 * linked into the request path: main.c calls this one entry point.
 */
#ifndef INFERGATE_BOOTSTRAP_H
#define INFERGATE_BOOTSTRAP_H

/* Runs the bootstrap subcommand. argv[0] is "bootstrap". Returns the process
 * exit code: 0 ok, 1 runtime failure, 2 usage or config error. */
int ig_bootstrap_main(int argc, char **argv, char *const *envp);

struct cJSON;

/* Validates the config's "bootstrap" section (NULL allowed: absent). Errors
 * name the key path, e.g. "bootstrap.replicas.min: must be >= 1". Used by
 * `infergate check-config` too. Returns 0 or IG_ECONFIG. */
int ig_bootstrap_check_config(const struct cJSON *section, char *err, unsigned long errlen);

#endif
