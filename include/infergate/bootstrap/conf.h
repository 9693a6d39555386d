/*
 * conf.h: the "bootstrap" section of the config file, typed.
 *
 * Every key has a documented default (docs/bootstrap.md); unknown keys and
 * wrong types are errors naming the key path ("bootstrap.replicas.min").
 */
#ifndef INFERGATE_BOOTSTRAP_CONF_H
#define INFERGATE_BOOTSTRAP_CONF_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

typedef enum { IG_BOOTSTRAP_ENGINE_HPA = 0, IG_BOOTSTRAP_ENGINE_KEDA = 1 } ig_bootstrap_engine_t;

typedef struct {
    char *name;
    char *namespace_;
    char *model_image;
    char *gateway_image;
    char *image_pull_policy;
    int model_port;
    int replicas_min;
    int replicas_max;
    struct {
        ig_bootstrap_engine_t engine;
        double load_factor_target;
        int queue_depth_target;
        int cpu_utilization;
        char *prometheus_url;    /* KEDA's Prometheus */
        char *adapter_namespace; /* where prometheus-adapter runs */
    } autoscaling;
    struct cJSON *resources_model;   /* owned {"requests":{..},"limits":{..}} */
    struct cJSON *resources_gateway; /* owned */
    struct cJSON *resources_proxy;   /* owned; the mesh proxy container */
    struct {
        char *provider; /* "appmesh" or "none" */
        char *name;
        char *region; /* NULL: AWS_REGION */
        char *hostname;
        char *egress_filter;
        char *envoy_image;
        char *proxy_init_image;
        char *iam_role_arn; /* NULL: none; else the ServiceAccount's IRSA role */
    } mesh;
    struct {
        char *kubeconfig;             /* NULL: KUBECONFIG or ~/.kube/config or in-cluster */
        char *context;                /* NULL: current-context */
        char *service_account;        /* default: the stack's name */
        bool create_service_account;  /* render and own it (default true) */
        struct cJSON *sa_annotations; /* owned object of strings, maybe empty; holds
                                       * eks.amazonaws.com/role-arn from mesh.iam_role_arn */
    } kubernetes;
} ig_bootstrap_conf_t;

/* Fills `c` from `section` (NULL: all defaults) and validates it. On error
 * `err` names the key path. Returns 0 or IG_ECONFIG; `c` is disposable
 * either way. */
int ig_bootstrap_conf_load(ig_bootstrap_conf_t *c, const struct cJSON *section, char *err,
                           size_t errlen);

void ig_bootstrap_conf_dispose(ig_bootstrap_conf_t *c);

#endif
