/*
 * appmesh.h: the AWS App Mesh REST client of bootstrap.
 *
 * SigV4-signed JSON calls through client.h, with the credentials of
 * aws_creds.h; what to create and in which order is stack.c's business.
 */
#ifndef INFERGATE_BOOTSTRAP_APPMESH_H
#define INFERGATE_BOOTSTRAP_APPMESH_H

#include <stddef.h>

#include "infergate/bootstrap/aws_creds.h"
#include "infergate/bootstrap/client.h"

struct cJSON;

/* The App Mesh client. */
typedef struct {
    char *endpoint; /* owned, no trailing slash */
    char *region;   /* owned */
    char sigv4[128];
    ig_aws_creds_t creds;
    ig_client_retry_t retry;
    int inuse_wait_s; /* how long destroy waits for App Mesh children to go */
} ig_appmesh_t;

/* Region: `region` when set, else AWS_REGION, else AWS_DEFAULT_REGION.
 * Endpoint: AWS_ENDPOINT_URL_APPMESH, else AWS_ENDPOINT_URL, else
 * https://appmesh.REGION.amazonaws.com. */
int ig_appmesh_init(ig_appmesh_t *m, const char *region, char *const *envp, char *err,
                    size_t errlen);
void ig_appmesh_dispose(ig_appmesh_t *m);

/* One API call with retries. `path` starts with /v20190125/. On an API error
 * (status >= 400 after retries) returns IG_EAPI with `err` = "Type: message"
 * and *status set; 0 otherwise with *out the parsed JSON answer (may be NULL
 * for an empty body). */
int ig_appmesh_call(ig_appmesh_t *m, const char *method, const char *path, const struct cJSON *body,
                    long *status, struct cJSON **out, char *err, size_t errlen);

#endif
