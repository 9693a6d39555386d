/*
 * client.c: bootstrap's HTTP client over libcurl, and its retry policy.
 *
 * One blocking exchange per call; bootstrap is a command-line tool, never the
 * request path. This is the one place where libcurl's error codes become
 * IG_E* codes. Secrets (keys, tokens, client keys) go to libcurl and nowhere
 * else: error messages name the URL and what failed, never a credential.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "infergate/bootstrap/client.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

void ig_client_resp_init(ig_client_resp_t *r)
{
    r->status = 0;
    r->error_type[0] = r->content_type[0] = '\0';
    ig_buf_init(&r->body, 64u << 20);
}

void ig_client_resp_dispose(ig_client_resp_t *r)
{
    ig_buf_dispose(&r->body);
}

const char *ig_env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ig_buf_t *b = ud;
    if (ig_buf_append(b, ptr, size * nmemb) != 0)
        return 0; /* past the cap: libcurl aborts the transfer */
    return size * nmemb;
}

static void header_value(char *dst, size_t dstlen, const char *v, size_t n, bool cut_colon)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (cut_colon) {
        const char *c = memchr(v, ':', n);
        if (c)
            n = (size_t)(c - v);
    }
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ig_client_resp_t *r = ud;
    size_t n = size * nmemb;
    static const char et[] = "x-amzn-errortype:", ct[] = "content-type:";
    if (n > sizeof(et) - 1 && !strncasecmp(ptr, et, sizeof(et) - 1))
        header_value(r->error_type, sizeof(r->error_type), ptr + sizeof(et) - 1,
                     n - (sizeof(et) - 1), true);
    else if (n > sizeof(ct) - 1 && !strncasecmp(ptr, ct, sizeof(ct) - 1))
        header_value(r->content_type, sizeof(r->content_type), ptr + sizeof(ct) - 1,
                     n - (sizeof(ct) - 1), false);
    return n;
}

/* The one translation of libcurl codes. */
static int from_curl(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        return IG_ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return IG_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return IG_EADDR;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
        return IG_EAUTH;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return IG_ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return IG_ENOMEM;
    case CURLE_WRITE_ERROR:
        return IG_ETOOLARGE;
    default:
        return IG_EIO;
    }
}

static int curl_ready(void)
{
    /* libcurl wants one global init per process; bootstrap is single-threaded. */
    static int done;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return IG_EIO;
        done = 1;
    }
    return 0;
}

/* Takes the credentials `req` carried out of a message about it. An API
 * may quote what it was sent: App Mesh's InvalidSignatureException, like
 * every AWS signature error, prints the canonical request, session token
 * header and all. The access key id stays: it names the key, and AWS
 * messages show it too. */
static void scrub_credentials(const ig_client_req_t *req, char *err, size_t errlen)
{
    ig_log_scrub(err, errlen, req->secret_key);
    ig_log_scrub(err, errlen, req->session_token);
    ig_log_scrub(err, errlen, req->bearer);
}

int ig_client_do(const ig_client_req_t *req, ig_client_resp_t *resp, char *err, size_t errlen)
{
    if (curl_ready() != 0) {
        snprintf(err, errlen, "libcurl initialisation failed");
        return IG_EIO;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "libcurl: cannot create a handle");
        return IG_ENOMEM;
    }
    struct curl_slist *hdrs = NULL;
    char line[8192];
    char errbuf[CURL_ERROR_SIZE] = "";

    ig_buf_reset(&resp->body);
    resp->status = 0;
    resp->error_type[0] = resp->content_type[0] = '\0';
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "infergate-bootstrap/0.1.0");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(req->method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    /* libcurl adds "Expect: 100-continue" to large bodies; the APIs here
     * answer straight away, so skip the extra round trip. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    snprintf(line, sizeof(line), "Accept: %s", req->accept ? req->accept : "application/json");
    hdrs = curl_slist_append(hdrs, line);
    if (req->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
        hdrs = curl_slist_append(hdrs, line);
    } else if (req->body) {
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    if (req->sigv4) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, req->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, req->access_key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, req->secret_key);
        if (req->session_token) {
            snprintf(line, sizeof(line), "X-Amz-Security-Token: %s", req->session_token);
            hdrs = curl_slist_append(hdrs, line);
        }
    }
    if (req->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", req->bearer);
        hdrs = curl_slist_append(hdrs, line);
    }
    memset(line, 0, sizeof(line)); /* it may have held a token */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    if (req->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
    if (req->ca_pem) {
        struct curl_blob b = {(void *)req->ca_pem, strlen(req->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    }
    if (req->cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, req->cert_file);
    if (req->key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, req->key_file);
    if (req->cert_pem) {
        struct curl_blob b = {(void *)req->cert_pem, strlen(req->cert_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
    }
    if (req->key_pem) {
        struct curl_blob b = {(void *)req->key_pem, strlen(req->key_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
    }

    CURLcode cc = curl_easy_perform(h);
    int rc = from_curl(cc);
    if (rc == 0) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    } else {
        /* errbuf is libcurl's own text: it names hosts and files, not
         * secrets. The URL may carry user info (a kubeconfig's server). */
        char *shown = ig_log_redact_url(req->url);
        snprintf(err, errlen, "%s %s: %s", req->method, shown,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        free(shown);
        scrub_credentials(req, err, errlen);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

void ig_client_retry_default(ig_client_retry_t *p, char *const *envp)
{
    p->max_attempts = 5;
    p->base_ms = 100;
    p->cap_ms = 5000;
    const char *v = ig_env_get(envp, "AWS_MAX_ATTEMPTS");
    if (v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*end && n >= 1 && n <= 20)
            p->max_attempts = (int)n;
    }
}

bool ig_client_again(int rc, const ig_client_resp_t *resp)
{
    if (rc == 0)
        return resp->status == 429 || resp->status >= 500;
    return rc == IG_ECONNREFUSED || rc == IG_ECONNRESET || rc == IG_ETIMEDOUT;
}

int ig_client_do_retry(const ig_client_req_t *req, const ig_client_retry_t *p,
                       ig_client_again_fn again, ig_client_resp_t *resp, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        int rc = ig_client_do(req, resp, err, errlen);
        if (!again(rc, resp) || attempt + 1 >= p->max_attempts)
            return rc;
        ig_client_sleep_ms(ig_client_backoff_ms(p, attempt));
    }
}

int ig_client_json_call(const ig_client_req_t *req, const ig_client_retry_t *p,
                        ig_client_again_fn again, ig_client_api_error_fn api_error, const void *ud,
                        long *status, cJSON **out, char *err, size_t errlen)
{
    ig_client_resp_t resp;
    ig_client_resp_init(&resp);
    *status = 0;
    if (out)
        *out = NULL;
    int rc = ig_client_do_retry(req, p, again, &resp, err, errlen);
    if (rc == 0) {
        *status = resp.status;
        cJSON *j = resp.body.len ? cJSON_ParseWithLength(resp.body.base, resp.body.len) : NULL;
        if (resp.status >= 400) {
            api_error(req, &resp, j, ud, err, errlen);
            scrub_credentials(req, err, errlen);
            cJSON_Delete(j);
            rc = IG_EAPI;
        } else if (out) {
            *out = j;
        } else {
            cJSON_Delete(j);
        }
    }
    ig_client_resp_dispose(&resp);
    return rc;
}

static unsigned long long rng_next(void)
{
    /* Jitter needs no cryptographic quality, only streams that differ
     * between processes, so two clients do not retry in lockstep. */
    static unsigned long long s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)getpid() ^
            (unsigned long long)ts.tv_sec;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

long ig_client_backoff_ms(const ig_client_retry_t *p, int attempt)
{
    long ceil = p->base_ms;
    for (int i = 0; i < attempt && ceil < p->cap_ms; i++)
        ceil *= 2;
    if (ceil > p->cap_ms)
        ceil = p->cap_ms;
    return (long)(rng_next() % (unsigned long long)(ceil + 1));
}

void ig_client_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
