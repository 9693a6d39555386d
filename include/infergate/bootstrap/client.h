/*
 * client.h: the one HTTP client of bootstrap (libcurl), with retries.
 *
 * Blocking calls, one at a time: bootstrap is a command-line tool, not the
 * request path. libcurl's error codes are translated into IG_E* codes here
 * and nowhere else. Secrets handed in (keys, tokens, client keys) are never
 * logged or put into error messages.
 */
#ifndef INFERGATE_BOOTSTRAP_CLIENT_H
#define INFERGATE_BOOTSTRAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "infergate/base/buf.h"

struct cJSON;

typedef struct {
    const char *method; /* "GET", "PUT", "PATCH", "DELETE", "POST" */
    const char *url;
    const char *body; /* NULL: none */
    size_t body_len;
    const char *content_type; /* NULL: none */
    const char *accept;       /* NULL: application/json */
    /* SigV4: "aws:amz:REGION:SERVICE" plus keys; session token as a header. */
    const char *sigv4;
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    const char *bearer; /* Authorization: Bearer … */
    /* TLS */
    bool insecure;
    const char *ca_file;
    const char *ca_pem; /* PEM bytes, NUL-terminated */
    const char *cert_file;
    const char *key_file;
    const char *cert_pem;
    const char *key_pem;
    long timeout_ms; /* whole transfer; 0: 30000 */
} ig_client_req_t;

typedef struct {
    long status;
    ig_buf_t body;          /* owned */
    char error_type[128];   /* x-amzn-ErrorType, up to its first ':'; "" when absent */
    char content_type[128]; /* the answer's Content-Type; "" when absent */
} ig_client_resp_t;

void ig_client_resp_init(ig_client_resp_t *r);
void ig_client_resp_dispose(ig_client_resp_t *r);

/* One exchange. Returns 0 when any HTTP answer came back (look at status),
 * or IG_ECONNREFUSED / IG_ETIMEDOUT / IG_EADDR / IG_EAUTH (TLS) / IG_EIO with
 * `err` naming the URL (never a secret). */
int ig_client_do(const ig_client_req_t *req, ig_client_resp_t *resp, char *err, size_t errlen);

/* Retry policy for throttling, 5xx and transport errors: up to
 * `max_attempts` tries, sleeping a full-jitter exponential backoff
 * (base_ms * 2^n, capped at cap_ms) between them. */
typedef struct {
    int max_attempts;
    long base_ms;
    long cap_ms;
} ig_client_retry_t;

/* Reads AWS_MAX_ATTEMPTS (default 5) into a policy with base 100 ms, cap 5 s. */
void ig_client_retry_default(ig_client_retry_t *p, char *const *envp);

/* The delay before retry number `attempt` (0-based): uniform in
 * [0, min(cap, base * 2^attempt)]. */
long ig_client_backoff_ms(const ig_client_retry_t *p, int attempt);

/* Sleeps for `ms` milliseconds. */
void ig_client_sleep_ms(long ms);

/* Whether a finished try is worth another. `rc` is ig_client_do's result;
 * look at `resp` only when rc == 0. */
typedef bool (*ig_client_again_fn)(int rc, const ig_client_resp_t *resp);

/* The usual answer to that: a transport failure that waiting may heal
 * (IG_ECONNREFUSED, IG_ECONNRESET, IG_ETIMEDOUT), or an answer with status
 * 429 or 5xx. A bad URL or TLS setup does not heal by waiting. */
bool ig_client_again(int rc, const ig_client_resp_t *resp);

/* ig_client_do, tried again while `again` says so, up to p->max_attempts
 * tries in all, sleeping ig_client_backoff_ms between them. Returns the last
 * try's result: 0 with its answer in `resp`, or its error with `err`. */
int ig_client_do_retry(const ig_client_req_t *req, const ig_client_retry_t *p,
                       ig_client_again_fn again, ig_client_resp_t *resp, char *err, size_t errlen);

/* Fills `err` for a JSON API's answer with status >= 400. `answer` is its
 * body parsed (NULL when empty or not JSON); `ud` is ig_client_json_call's. */
typedef void (*ig_client_api_error_fn)(const ig_client_req_t *req, const ig_client_resp_t *resp,
                                       const struct cJSON *answer, const void *ud, char *err,
                                       size_t errlen);

/* One call to a JSON API through ig_client_do_retry. *status is the answer's
 * status, 0 when none came. An answer with status >= 400 returns IG_EAPI with
 * `err` filled by `api_error`. Otherwise 0, and *out (when `out` is not NULL;
 * NULL on every error) the parsed body, NULL when it is empty or not JSON;
 * the caller frees it with cJSON_Delete. A transport failure returns its
 * code with `err` from ig_client_do (never IG_EAPI). */
int ig_client_json_call(const ig_client_req_t *req, const ig_client_retry_t *p,
                        ig_client_again_fn again, ig_client_api_error_fn api_error, const void *ud,
                        long *status, struct cJSON **out, char *err, size_t errlen);

/* ---- Helpers every bootstrap module shares --------------------------- */

/* Looks NAME up in a NULL-terminated environment; NULL when absent or empty. */
const char *ig_env_get(char *const *envp, const char *name);

#endif
