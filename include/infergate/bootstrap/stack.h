/*
 * stack.h: the ordered resource list and the backends that own it.
 *
 * Rendering turns the config into a stack: an ordered list of resources, each
 * the exact body one backend sends (an App Mesh create request, a Kubernetes
 * object). plan/apply/destroy walk that list through each resource's backend.
 * A mesh provider (App Mesh today, a VPC Lattice one tomorrow) contributes
 * its resources, a patch to the pod spec (its proxy, if it needs one) and a
 * backend; the Kubernetes half never looks inside them.
 */
#ifndef INFERGATE_BOOTSTRAP_STACK_H
#define INFERGATE_BOOTSTRAP_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include "infergate/bootstrap/conf.h"
#include "infergate/bootstrap/diff.h"
#include "infergate/bootstrap/template.h"
#include "infergate/base/buf.h"
#include "infergate/core/config.h"

struct cJSON;

typedef struct ig_bootstrap_backend ig_bootstrap_backend_t;

typedef struct {
    const ig_bootstrap_backend_t *backend; /* not owned: static */
    char *kind;                            /* owned: "Mesh", "VirtualNode", "Deployment", … */
    char *name;                            /* owned */
    char *source;                          /* owned: the template it came from */
    char *path;                            /* owned: the backend's address of the live object */
    char *parent;       /* owned or NULL: App Mesh parent names, "mesh[/router]" */
    struct cJSON *body; /* owned: what is sent */
} ig_bootstrap_resource_t;

typedef enum {
    IG_BOOTSTRAP_NOOP = 0,
    IG_BOOTSTRAP_CREATE = 1,
    IG_BOOTSTRAP_UPDATE = 2,
} ig_bootstrap_action_t;

typedef struct {
    ig_bootstrap_action_t action;
    ig_buf_t diff; /* "  path: live -> desired\n" lines for UPDATE */
    size_t ndiff;
    bool managed;  /* the live object carries managed-by infergate */
    char *version; /* owned or NULL: live version (App Mesh) */
} ig_bootstrap_plan_t;

typedef enum {
    IG_BOOTSTRAP_DELETED = 0,
    IG_BOOTSTRAP_ABSENT = 1,
    IG_BOOTSTRAP_NOT_MANAGED = 2,
} ig_bootstrap_delete_result_t;

/* A backend: how one API is read and written. Every op returns 0 or a
 * negative IG_E* code with `err` filled (for API errors: the API's error type
 * and message). */
struct ig_bootstrap_backend {
    const char *name; /* "appmesh", "kubernetes" */
    int (*plan)(void *ctx, const ig_bootstrap_resource_t *r, ig_bootstrap_plan_t *p, char *err,
                size_t errlen);
    int (*apply)(void *ctx, const ig_bootstrap_resource_t *r, const ig_bootstrap_plan_t *p,
                 char *err, size_t errlen);
    int (*destroy)(void *ctx, const ig_bootstrap_resource_t *r, ig_bootstrap_delete_result_t *res,
                   char *err, size_t errlen);
};

typedef struct {
    ig_bootstrap_resource_t *items; /* owned array, in apply order */
    size_t n;
    size_t cap;
    struct cJSON *outputs; /* owned object */
} ig_bootstrap_stack_t;

void ig_bootstrap_stack_init(ig_bootstrap_stack_t *s);
void ig_bootstrap_stack_dispose(ig_bootstrap_stack_t *s);

/* Appends a resource; takes ownership of `body`. Returns the new item. */
ig_bootstrap_resource_t *ig_bootstrap_stack_add(ig_bootstrap_stack_t *s,
                                                const ig_bootstrap_backend_t *backend,
                                                const char *kind, const char *name,
                                                const char *source, const char *path,
                                                const char *parent, struct cJSON *body);

/* Loads template `path` (embedded, or from `dir` when not NULL), substitutes
 * `vars` and parses it (JSON for .json, YAML otherwise). */
int ig_bootstrap_template_load(const char *dir, const char *path, const ig_tpl_vars_t *vars,
                               struct cJSON **out, char *err, size_t errlen);

/* A mesh provider. ctx_new/ctx_free are only called by plan/apply/destroy:
 * render never touches the network. */
typedef struct {
    const char *name;
    /* Adds provider variables (names, region, images) to `vars`. */
    int (*vars)(const ig_bootstrap_conf_t *c, char *const *envp, ig_tpl_vars_t *vars, char *err,
                size_t errlen);
    /* Appends the provider's resources (in apply order) and its outputs. */
    int (*render)(const ig_bootstrap_conf_t *c, const char *tpl_dir, const ig_tpl_vars_t *vars,
                  ig_bootstrap_stack_t *s, char *err, size_t errlen);
    /* Adds what the pod needs (proxy containers, init containers) to `pod_spec`. */
    int (*pod_patch)(const ig_bootstrap_conf_t *c, const char *tpl_dir, const ig_tpl_vars_t *vars,
                     struct cJSON *pod_spec, struct cJSON *pod_annotations, char *err,
                     size_t errlen);
    int (*ctx_new)(const ig_bootstrap_conf_t *c, char *const *envp, void **ctx, char *err,
                   size_t errlen);
    void (*ctx_free)(void *ctx);
} ig_mesh_provider_t;

/* The provider named `name` ("appmesh", "none"), or NULL. */
const ig_mesh_provider_t *ig_mesh_provider_find(const char *name);

extern const ig_mesh_provider_t ig_mesh_appmesh;
extern const ig_mesh_provider_t ig_mesh_none;
extern const ig_bootstrap_backend_t ig_bootstrap_appmesh_backend;
extern const ig_bootstrap_backend_t ig_bootstrap_kube_backend;

/* Renders the stack from the typed bootstrap config, the gateway config (its
 * ports, drain and timeouts; its JSON without the bootstrap section goes into
 * the ConfigMap) and `envp` (read for AWS_REGION only). Deterministic: the
 * same inputs give the same bytes. `tpl_dir` NULL uses the embedded templates. */
int ig_bootstrap_render(const ig_bootstrap_conf_t *c, const ig_config_t *gc, const char *tpl_dir,
                        char *const *envp, ig_bootstrap_stack_t *s, char *err, size_t errlen);

#endif
