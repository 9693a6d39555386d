/*
 * kubeconfig.h: how bootstrap finds and authenticates to a Kubernetes API.
 *
 * Kubeconfig resolution: bootstrap.kubernetes.kubeconfig, else KUBECONFIG
 * (first file of the list), else ~/.kube/config; when none exists and
 * KUBERNETES_SERVICE_HOST is set, the pod's service account. The context is
 * bootstrap.kubernetes.context, else current-context. TLS verification is on
 * unless the cluster says insecure-skip-tls-verify: true. The client that
 * uses the result is kube.h's.
 */
#ifndef INFERGATE_BOOTSTRAP_KUBECONFIG_H
#define INFERGATE_BOOTSTRAP_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *server;     /* owned: https://host:port, no trailing slash */
    char *namespace_; /* owned or NULL: the context's namespace */
    bool insecure;
    char *ca_file;    /* owned or NULL */
    char *ca_pem;     /* owned or NULL: decoded certificate-authority-data */
    char *cert_file;  /* owned or NULL */
    char *key_file;   /* owned or NULL */
    char *cert_pem;   /* owned or NULL */
    char *key_pem;    /* owned or NULL: secret */
    char *token;      /* owned or NULL: secret */
    char *token_file; /* owned or NULL: re-read on every use */
    /* exec credential plugin */
    char **exec_argv; /* owned, NULL-terminated: command then args */
    char **exec_env;  /* owned, NULL-terminated "NAME=value" */
    char source[256]; /* where it came from, for messages */
} ig_kube_auth_t;

void ig_kube_auth_dispose(ig_kube_auth_t *a);

/* Parses kubeconfig text. `context` NULL: current-context. Relative file
 * paths are taken relative to `dir`. Returns 0, IG_EPARSE or IG_ENOTFOUND
 * (context, cluster or user missing: `err` names which). */
int ig_kubeconfig_parse(ig_kube_auth_t *a, const char *text, size_t len, const char *origin,
                        const char *dir, const char *context, char *err, size_t errlen);

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT from `envp` and token, ca.crt and
 * namespace from `sa_dir` (normally /var/run/secrets/kubernetes.io/serviceaccount). */
int ig_kube_incluster(ig_kube_auth_t *a, char *const *envp, const char *sa_dir, char *err,
                      size_t errlen);

/* The whole resolution described above. */
int ig_kube_auth_resolve(ig_kube_auth_t *a, const char *kubeconfig, const char *context,
                         char *const *envp, char *err, size_t errlen);

/* Runs the exec plugin and fills token / cert_pem / key_pem from its
 * ExecCredential status. */
int ig_kube_exec_credential(ig_kube_auth_t *a, char *err, size_t errlen);

#endif
