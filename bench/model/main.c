/*
 * main.c: infergate-model's entry point: parses argv and runs the server.
 */
#include <stdio.h>

#include "app.h"
#include "opts.h"

int main(int argc, char **argv)
{
    ig_opts_t o;
    char err[256];

    if (ig_opts_parse(argc, argv, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate-model: %s\n", err);
        return 2;
    }
    if (o.action == IG_OPTS_HELP) {
        fputs(ig_opts_usage(), stdout);
        return 0;
    }
    if (o.action == IG_OPTS_VERSION) {
        printf("infergate-model %s\n", IG_MODEL_VERSION);
        return 0;
    }
    return ig_model_app_run(&o);
}
