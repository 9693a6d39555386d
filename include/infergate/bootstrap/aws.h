/*
 * bootstrap_aws.h: AWS credentials and the App Mesh REST client.
 *
 * Credential chain, in botocore's order for what we support:
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity;
 *   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), profile AWS_PROFILE (else "default").
 * Secrets are never printed or logged; errors name the variable or file.
 */
#ifndef INFERGATE_BOOTSTRAP_AWS_H
#define INFERGATE_BOOTSTRAP_AWS_H

#include <stddef.h>

#include "infergate/bootstrap/http.h"

struct cJSON;

typedef struct {
    char *access_key;    /* owned */
    char *secret_key;    /* owned */
    char *session_token; /* owned or NULL */
    char source[64];     /* "environment", "web-identity", "shared-credentials-file" */
} ig_aws_creds_t;

void ig_aws_creds_dispose(ig_aws_creds_t *c);

/* Resolves credentials from `envp` (NULL-terminated). `region` is used for
 * the STS endpoint. Returns 0, IG_ENOTFOUND (no source had any: `err` lists
 * what was tried), IG_EAUTH (STS refused), IG_EPARSE, IG_EIO. */
int ig_aws_creds_resolve(ig_aws_creds_t *c, char *const *envp, const char *region, char *err,
                         size_t errlen);

/* Parses a shared credentials file's text for `profile`. Returns 0,
 * IG_ENOTFOUND (no such profile) or IG_EPARSE (profile without both keys). */
int ig_aws_creds_parse_ini(ig_aws_creds_t *c, const char *text, const char *profile,
                           const char *origin, char *err, size_t errlen);

/* Reads <Credentials> out of an AssumeRoleWithWebIdentity XML answer. */
int ig_aws_sts_parse(ig_aws_creds_t *c, const char *xml, char *err, size_t errlen);

/* The App Mesh client. */
typedef struct {
    char *endpoint; /* owned, no trailing slash */
    char *region;   /* owned */
    char sigv4[128];
    ig_aws_creds_t creds;
    ig_http_retry_t retry;
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
