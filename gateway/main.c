/*
 * main.c: command-line dispatch for the infergate binary, nothing else.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "infergate/bootstrap/bootstrap.h"
#include "infergate/core/config.h"
#include "infergate/base/error.h"
#include "infergate/proxy/gateway.h"

extern char **environ;

#define IG_VERSION "0.1.0"

static void usage(FILE *f)
{
    fputs("usage: infergate <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve [-c FILE] [flags]      run the sidecar gateway (see `infergate serve --help`)\n"
          "  check-config -c FILE         validate a config and print the effective config\n"
          "  bootstrap render|plan|apply|destroy [-c FILE]\n"
          "                               provision App Mesh and the Kubernetes stack\n"
          "  version                      print the version\n"
          "\n"
          "exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error\n",
          f);
}

static int load_config(ig_config_t *cfg, int argc, char **argv)
{
    char err[1024];
    ig_config_init(cfg);
    int r = ig_config_from_args(cfg, argc, argv, environ, err, sizeof(err));
    if (r == IG_EAGAIN)
        return 0; /* --help was printed */
    if (r != 0) {
        fprintf(stderr, "infergate %s: %s\n", argv[0], err);
        return 2;
    }
    if (ig_bootstrap_check_config(cfg->bootstrap, err, sizeof(err)) != 0) {
        fprintf(stderr, "infergate %s: %s\n", argv[0], err);
        return 2;
    }
    return -1;
}

static int cmd_serve(int argc, char **argv)
{
    ig_config_t cfg;
    int r = load_config(&cfg, argc, argv);
    if (r >= 0) {
        ig_config_dispose(&cfg);
        return r;
    }
    r = ig_gateway_run(&cfg);
    ig_config_dispose(&cfg);
    return r;
}

static int cmd_check_config(int argc, char **argv)
{
    ig_config_t cfg;
    int r = load_config(&cfg, argc, argv);
    if (r >= 0) {
        ig_config_dispose(&cfg);
        return r;
    }
    char *json = ig_config_to_json(&cfg, true);
    fputs(json, stdout);
    if (json[0] && json[strlen(json) - 1] != '\n')
        fputc('\n', stdout);
    free(json);
    ig_config_dispose(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc - 1, argv + 1);
    if (strcmp(cmd, "bootstrap") == 0)
        return ig_bootstrap_main(argc - 1, argv + 1, environ);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("infergate %s (libuv %s, cJSON %s)\n", IG_VERSION, uv_version_string(),
               cJSON_Version());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "infergate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
