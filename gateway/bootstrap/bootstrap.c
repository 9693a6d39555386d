/*
 * bootstrap.c: `infergate bootstrap render|plan|apply|destroy`.
 *
 * Reads the same config file as the sidecar, renders the ordered stack
 * (stack.c, plus the mesh provider's part) and walks it: render prints it
 * without touching the network; plan asks each backend what differs; apply
 * writes only what differs, in order, and stops at the first failure saying
 * what was already done (re-running continues from there); destroy deletes
 * in reverse order only what carries the managed-by infergate tag or label.
 * The outputs (names, endpoint) end apply and render.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "infergate/bootstrap/bootstrap.h"
#include "infergate/bootstrap/kube.h"
#include "infergate/bootstrap/stack.h"
#include "infergate/core/config.h"
#include "infergate/base/error.h"

typedef enum { CMD_RENDER, CMD_PLAN, CMD_APPLY, CMD_DESTROY } cmd_t;

typedef struct {
    cmd_t cmd;
    const char *config;
    const char *templates;
    bool json;
    bool wait;
    int timeout_s;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: infergate bootstrap render|plan|apply|destroy -c FILE [options]\n"
            "  -c, --config FILE     the config file (default: $INFERGATE_CONFIG)\n"
            "  -o, --output FORMAT   yaml (render's default), text (plan/apply/destroy's) or json\n"
            "      --wait            apply: wait until the Deployment is available\n"
            "      --timeout S       how long --wait waits (default 300)\n"
            "      --templates DIR   read mesh-config/ and k8s/ from DIR instead of the built-in\n"
            "                        copies\n"
            "Credentials: AWS from the environment, web identity or the shared credentials\n"
            "file (AWS_PROFILE); Kubernetes from bootstrap.kubernetes.kubeconfig, KUBECONFIG,\n"
            "~/.kube/config or the pod's service account. See docs/bootstrap.md.\n");
}

static int parse_args(opts_t *o, int argc, char **argv, char *const *envp)
{
    memset(o, 0, sizeof(*o));
    o->timeout_s = 300;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "-h") || !strcmp(c, "--help")) {
        usage(stdout);
        return -1;
    }
    if (!strcmp(c, "render"))
        o->cmd = CMD_RENDER;
    else if (!strcmp(c, "plan"))
        o->cmd = CMD_PLAN;
    else if (!strcmp(c, "apply"))
        o->cmd = CMD_APPLY;
    else if (!strcmp(c, "destroy"))
        o->cmd = CMD_DESTROY;
    else {
        fprintf(stderr,
                "infergate bootstrap: unknown subcommand \"%s\" (want render, plan, "
                "apply or destroy)\n",
                c);
        return 2;
    }
    const char *output = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (!val)
                goto missing;
            o->config = val;
            i++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!val)
                goto missing;
            output = val;
            i++;
        } else if (!strcmp(a, "--templates")) {
            if (!val)
                goto missing;
            o->templates = val;
            i++;
        } else if (!strcmp(a, "--timeout")) {
            if (!val)
                goto missing;
            char *end;
            long t = strtol(val, &end, 10);
            if (*end || t < 1 || t > 86400) {
                fprintf(stderr,
                        "infergate bootstrap: --timeout: want seconds in 1..86400, got "
                        "\"%s\"\n",
                        val);
                return 2;
            }
            o->timeout_s = (int)t;
            i++;
        } else if (!strcmp(a, "--wait")) {
            o->wait = true;
        } else {
            fprintf(stderr, "infergate bootstrap: unknown flag \"%s\"\n", a);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "infergate bootstrap: %s needs a value\n", a);
        return 2;
    }
    if (output) {
        if (!strcmp(output, "json"))
            o->json = true;
        else if (strcmp(output, "yaml") && strcmp(output, "text")) {
            fprintf(stderr, "infergate bootstrap: --output: want yaml, text or json, got \"%s\"\n",
                    output);
            return 2;
        }
    }
    if (o->wait && o->cmd != CMD_APPLY) {
        fprintf(stderr, "infergate bootstrap: --wait only applies to apply\n");
        return 2;
    }
    if (!o->config)
        o->config = ig_env_get(envp, "INFERGATE_CONFIG");
    if (!o->config) {
        fprintf(stderr, "infergate bootstrap: -c FILE is required (or set INFERGATE_CONFIG)\n");
        return 2;
    }
    return 0;
}

/* Loads the config file and renders the stack. Returns an exit code. */
static int load_stack(const opts_t *o, char *const *envp, ig_config_t *gc, ig_bootstrap_conf_t *bc,
                      ig_bootstrap_stack_t *s)
{
    char err[1024] = "";
    ig_config_init(gc);
    int rc = ig_config_merge_file(gc, o->config, err, sizeof(err));
    if (rc == 0)
        rc = ig_config_validate(gc, err, sizeof(err));
    if (rc == 0)
        rc = ig_bootstrap_conf_load(bc, gc->bootstrap, err, sizeof(err));
    if (rc == 0)
        rc = ig_bootstrap_render(bc, gc, o->templates, envp, s, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "infergate bootstrap: %s\n", err);
        return 2; /* the file or templates named on the command line are unusable */
    }
    return 0;
}

static void api_method_path(const ig_bootstrap_resource_t *r, char *method, size_t ml, char *path,
                            size_t pl)
{
    if (r->backend == &ig_bootstrap_kube_backend) {
        snprintf(method, ml, "PATCH");
        snprintf(path, pl, "%s?fieldManager=infergate&force=true", r->path);
        return;
    }
    snprintf(method, ml, "PUT");
    if (!strcmp(r->kind, "Mesh")) {
        snprintf(path, pl, "/v20190125/meshes");
    } else {
        snprintf(path, pl, "%s", r->path);
        char *slash = strrchr(path, '/');
        if (slash)
            *slash = '\0';
    }
}

/* Writes a --json report to stdout, pretty-printed, with a newline. */
static void print_json(const cJSON *root)
{
    char *t = cJSON_Print(root);
    puts(t);
    free(t);
}

/* Ends a failed plan, apply or destroy. With --json the report so far still
 * goes to stdout, with its "error". Frees `root`; returns the exit code. */
static int report_failure(const opts_t *o, cJSON *root, const char *err, int rc)
{
    if (o->json) {
        cJSON_AddStringToObject(root, "error", err);
        print_json(root);
    }
    cJSON_Delete(root);
    return rc == IG_ECONFIG ? 2 : 1;
}

static int do_render(const opts_t *o, const ig_bootstrap_stack_t *s)
{
    char method[16], path[1200];
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "resources");
        for (size_t i = 0; i < s->n; i++) {
            const ig_bootstrap_resource_t *r = &s->items[i];
            cJSON *it = cJSON_CreateObject();
            api_method_path(r, method, sizeof(method), path, sizeof(path));
            cJSON_AddStringToObject(it, "backend", r->backend->name);
            cJSON_AddStringToObject(it, "kind", r->kind);
            cJSON_AddStringToObject(it, "name", r->name);
            cJSON_AddStringToObject(it, "source", r->source);
            cJSON_AddStringToObject(it, "method", method);
            cJSON_AddStringToObject(it, "path", path);
            cJSON_AddItemToObject(it, "body", cJSON_Duplicate(r->body, true));
            cJSON_AddItemToArray(arr, it);
        }
        cJSON_AddItemToObject(root, "outputs", cJSON_Duplicate(s->outputs, true));
        print_json(root);
        cJSON_Delete(root);
        return 0;
    }
    ig_buf_t b;
    ig_buf_init(&b, 0);
    for (size_t i = 0; i < s->n; i++) {
        const ig_bootstrap_resource_t *r = &s->items[i];
        api_method_path(r, method, sizeof(method), path, sizeof(path));
        ig_buf_printf(&b, "---\n# %zu. %s %s %s (from %s)\n# %s %s\n", i + 1, r->backend->name,
                      r->kind, r->name, r->source, method, path);
        ig_json_to_yaml(r->body, &b);
    }
    ig_buf_printf(&b, "---\n# outputs\n");
    ig_json_to_yaml(s->outputs, &b);
    fwrite(b.base, 1, b.len, stdout);
    ig_buf_dispose(&b);
    return 0;
}

/* Backend contexts, created on first use: render never needs them. */
typedef struct {
    const ig_mesh_provider_t *mp;
    const ig_bootstrap_conf_t *bc;
    char *const *envp;
    void *mesh_ctx;
    ig_kube_t kube;
    bool kube_ready;
} ctxs_t;

static int ctx_for(ctxs_t *c, const ig_bootstrap_resource_t *r, void **out, char *err,
                   size_t errlen)
{
    int rc = 0;
    if (r->backend == &ig_bootstrap_kube_backend) {
        if (!c->kube_ready) {
            rc = ig_kube_init(&c->kube, c->bc->kubernetes.kubeconfig, c->bc->kubernetes.context,
                              c->envp, err, errlen);
            c->kube_ready = rc == 0;
        }
        *out = &c->kube;
        return rc;
    }
    if (!c->mesh_ctx && c->mp->ctx_new)
        rc = c->mp->ctx_new(c->bc, c->envp, &c->mesh_ctx, err, errlen);
    *out = c->mesh_ctx;
    return rc;
}

static void ctxs_dispose(ctxs_t *c)
{
    if (c->mesh_ctx && c->mp->ctx_free)
        c->mp->ctx_free(c->mesh_ctx);
    if (c->kube_ready)
        ig_kube_dispose(&c->kube);
}

static const char *action_name(ig_bootstrap_action_t a)
{
    return a == IG_BOOTSTRAP_CREATE ? "create" : a == IG_BOOTSTRAP_UPDATE ? "update" : "unchanged";
}

static cJSON *diff_lines(const ig_buf_t *d)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = d->base;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        while (n && *q == ' ') {
            q++;
            n--;
        }
        char *line = ig_xstrndup(q, n);
        cJSON_AddItemToArray(arr, cJSON_CreateString(line));
        free(line);
        p = e ? e + 1 : p + strlen(p);
    }
    return arr;
}

static void print_outputs(const opts_t *o, const ig_bootstrap_stack_t *s, cJSON *json_root)
{
    if (o->json) {
        cJSON_AddItemToObject(json_root, "outputs", cJSON_Duplicate(s->outputs, true));
        return;
    }
    printf("Outputs:\n");
    const cJSON *it;
    cJSON_ArrayForEach(it, s->outputs)
    {
        if (cJSON_IsString(it))
            printf("  %s = %s\n", it->string, it->valuestring);
        else
            printf("  %s = (none)\n", it->string);
    }
}

/* plan and apply: the same walk; apply writes what plan finds. */
static int do_plan_apply(const opts_t *o, ig_bootstrap_stack_t *s, ctxs_t *cx)
{
    bool apply = o->cmd == CMD_APPLY;
    char err[2048] = "";
    size_t counts[3] = {0, 0, 0};
    cJSON *root = cJSON_CreateObject();
    cJSON *changes = cJSON_AddArrayToObject(root, "resources");
    int rc = 0;
    size_t i;
    for (i = 0; i < s->n; i++) {
        ig_bootstrap_resource_t *r = &s->items[i];
        void *ctx = NULL;
        ig_bootstrap_plan_t p = {0};
        ig_buf_init(&p.diff, 0);
        rc = ctx_for(cx, r, &ctx, err, sizeof(err));
        if (rc == 0)
            rc = r->backend->plan(ctx, r, &p, err, sizeof(err));
        if (rc == 0 && apply)
            rc = r->backend->apply(ctx, r, &p, err, sizeof(err));
        if (rc == 0) {
            counts[p.action]++;
            const char *what = apply ? (p.action == IG_BOOTSTRAP_CREATE   ? "created"
                                        : p.action == IG_BOOTSTRAP_UPDATE ? "updated"
                                                                          : "unchanged")
                                     : action_name(p.action);
            if (o->json) {
                cJSON *it = cJSON_CreateObject();
                cJSON_AddStringToObject(it, "backend", r->backend->name);
                cJSON_AddStringToObject(it, "kind", r->kind);
                cJSON_AddStringToObject(it, "name", r->name);
                cJSON_AddStringToObject(it, "action", what);
                cJSON_AddItemToObject(it, "diff", diff_lines(&p.diff));
                cJSON_AddItemToArray(changes, it);
            } else {
                printf("%-10s %-24s %-40s %s\n", r->backend->name, r->kind, r->name, what);
                if (p.action == IG_BOOTSTRAP_UPDATE && p.diff.base)
                    fputs(p.diff.base, stdout);
                fflush(stdout);
            }
        }
        ig_buf_dispose(&p.diff);
        free(p.version);
        if (rc != 0)
            break;
    }
    if (rc == 0 && apply && o->wait) {
        for (size_t k = 0; k < s->n && rc == 0; k++) {
            ig_bootstrap_resource_t *r = &s->items[k];
            if (r->backend != &ig_bootstrap_kube_backend || strcmp(r->kind, "Deployment"))
                continue;
            if (!o->json)
                printf("waiting for Deployment %s to become available…\n", r->name);
            fflush(stdout);
            rc = ig_kube_wait_deployment(&cx->kube, r->path, o->timeout_s, err, sizeof(err));
        }
    }
    const char *verbs[3] = {apply ? "unchanged" : "unchanged", apply ? "created" : "to create",
                            apply ? "updated" : "to update"};
    if (rc != 0) {
        fprintf(stderr, "infergate bootstrap %s: failed at %s %s: %s\n", apply ? "apply" : "plan",
                i < s->n ? s->items[i].kind : "rollout", i < s->n ? s->items[i].name : "", err);
        fprintf(stderr,
                "already done: %zu created, %zu updated, %zu unchanged; %zu not reached. "
                "Re-run to continue.\n",
                counts[IG_BOOTSTRAP_CREATE], counts[IG_BOOTSTRAP_UPDATE], counts[IG_BOOTSTRAP_NOOP],
                i < s->n ? s->n - i - 1 : 0);
        return report_failure(o, root, err, rc);
    }
    if (o->json) {
        cJSON *sum = cJSON_AddObjectToObject(root, "summary");
        cJSON_AddNumberToObject(sum, verbs[IG_BOOTSTRAP_CREATE],
                                (double)counts[IG_BOOTSTRAP_CREATE]);
        cJSON_AddNumberToObject(sum, verbs[IG_BOOTSTRAP_UPDATE],
                                (double)counts[IG_BOOTSTRAP_UPDATE]);
        cJSON_AddNumberToObject(sum, verbs[IG_BOOTSTRAP_NOOP], (double)counts[IG_BOOTSTRAP_NOOP]);
        if (apply)
            print_outputs(o, s, root);
        print_json(root);
    } else {
        printf("%s: %zu %s, %zu %s, %zu %s.\n", apply ? "Apply complete" : "Plan",
               counts[IG_BOOTSTRAP_CREATE], verbs[IG_BOOTSTRAP_CREATE], counts[IG_BOOTSTRAP_UPDATE],
               verbs[IG_BOOTSTRAP_UPDATE], counts[IG_BOOTSTRAP_NOOP], verbs[IG_BOOTSTRAP_NOOP]);
        if (apply)
            print_outputs(o, s, NULL);
    }
    cJSON_Delete(root);
    return 0;
}

static int do_destroy(const opts_t *o, ig_bootstrap_stack_t *s, ctxs_t *cx)
{
    char err[2048] = "";
    size_t counts[3] = {0, 0, 0};
    static const char *const names[3] = {"deleted", "absent", "skipped (not managed by infergate)"};
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "resources");
    int rc = 0;
    size_t done = 0;
    for (size_t k = s->n; k-- > 0;) {
        ig_bootstrap_resource_t *r = &s->items[k];
        void *ctx = NULL;
        ig_bootstrap_delete_result_t res = IG_BOOTSTRAP_ABSENT;
        rc = ctx_for(cx, r, &ctx, err, sizeof(err));
        if (rc == 0)
            rc = r->backend->destroy(ctx, r, &res, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "infergate bootstrap destroy: failed at %s %s: %s\n", r->kind, r->name,
                    err);
            fprintf(stderr,
                    "already done: %zu deleted, %zu absent, %zu skipped; %zu not "
                    "reached. Re-run to continue.\n",
                    counts[0], counts[1], counts[2], k);
            return report_failure(o, root, err, rc);
        }
        counts[res]++;
        done++;
        if (o->json) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "backend", r->backend->name);
            cJSON_AddStringToObject(it, "kind", r->kind);
            cJSON_AddStringToObject(it, "name", r->name);
            cJSON_AddStringToObject(it, "result",
                                    res == IG_BOOTSTRAP_NOT_MANAGED ? "skipped" : names[res]);
            cJSON_AddItemToArray(arr, it);
        } else {
            printf("%-10s %-24s %-40s %s\n", r->backend->name, r->kind, r->name, names[res]);
            fflush(stdout);
        }
    }
    if (o->json) {
        cJSON *sum = cJSON_AddObjectToObject(root, "summary");
        cJSON_AddNumberToObject(sum, "deleted", (double)counts[0]);
        cJSON_AddNumberToObject(sum, "absent", (double)counts[1]);
        cJSON_AddNumberToObject(sum, "skipped", (double)counts[2]);
        print_json(root);
    } else {
        printf("Destroy complete: %zu deleted, %zu absent, %zu skipped.\n", counts[0], counts[1],
               counts[2]);
    }
    cJSON_Delete(root);
    (void)done;
    return 0;
}

int ig_bootstrap_main(int argc, char **argv, char *const *envp)
{
    opts_t o;
    int rc = parse_args(&o, argc, argv, envp);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    ig_config_t gc;
    ig_bootstrap_conf_t bc;
    memset(&bc, 0, sizeof(bc));
    ig_bootstrap_stack_t s;
    ig_bootstrap_stack_init(&s);
    rc = load_stack(&o, envp, &gc, &bc, &s);
    if (rc == 0) {
        if (o.cmd == CMD_RENDER) {
            rc = do_render(&o, &s);
        } else {
            ctxs_t cx = {.mp = ig_mesh_provider_find(bc.mesh.provider), .bc = &bc, .envp = envp};
            rc = o.cmd == CMD_DESTROY ? do_destroy(&o, &s, &cx) : do_plan_apply(&o, &s, &cx);
            ctxs_dispose(&cx);
        }
    }
    fflush(stdout);
    ig_bootstrap_stack_dispose(&s);
    ig_bootstrap_conf_dispose(&bc);
    ig_config_dispose(&gc);
    return rc;
}
