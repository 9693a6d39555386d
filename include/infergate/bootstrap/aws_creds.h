/*
 * aws_creds.h: AWS credentials for bootstrap's signed calls.
 *
 * Credential chain, in botocore's order for what we support:
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity;
 *   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), profile AWS_PROFILE (else "default").
 * Secrets are never printed or logged; errors name the variable or file.
 */
#ifndef INFERGATE_BOOTSTRAP_AWS_CREDS_H
#define INFERGATE_BOOTSTRAP_AWS_CREDS_H

#include <stddef.h>

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

#endif
