/*
 * kube.h: the Kubernetes API client of bootstrap.
 *
 * Requests to the API server with the credentials kubeconfig.h resolves
 * (bearer token, client certificate or an exec plugin's), the path of an
 * object, and waiting for a Deployment to roll out.
 */
#ifndef INFERGATE_BOOTSTRAP_KUBE_H
#define INFERGATE_BOOTSTRAP_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "infergate/bootstrap/client.h"
#include "infergate/bootstrap/kubeconfig.h"
#include "infergate/base/buf.h"

struct cJSON;

typedef struct {
    ig_kube_auth_t auth;
    ig_client_retry_t retry;
    char *exec_token; /* owned: token from the exec plugin, cached for the run */
} ig_kube_t;

int ig_kube_init(ig_kube_t *k, const char *kubeconfig, const char *context, char *const *envp,
                 char *err, size_t errlen);
void ig_kube_dispose(ig_kube_t *k);

/* One request (with retries on 429/5xx/transport). Status >= 400 returns
 * IG_EAPI with `err` = "Reason: message" from the Status object. `body` is
 * sent as is; *out is the parsed answer or NULL. *status always set on an
 * HTTP answer. */
int ig_kube_request(ig_kube_t *k, const char *method, const char *path_and_query,
                    const char *content_type, const char *body, long *status, struct cJSON **out,
                    char *err, size_t errlen);

/* "/api/v1/namespaces/NS/configmaps/NAME" for an object with apiVersion,
 * kind, metadata.name and metadata.namespace. */
int ig_kube_object_path(const struct cJSON *obj, ig_buf_t *out, char *err, size_t errlen);

/* Waits until the Deployment at `path` is available for its current
 * generation, up to `timeout_s`. IG_ETIMEDOUT names what was last seen. */
int ig_kube_wait_deployment(ig_kube_t *k, const char *path, int timeout_s, char *err,
                            size_t errlen);

#endif
