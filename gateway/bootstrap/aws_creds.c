/*
 * aws_creds.c: where bootstrap's AWS credentials come from.
 *
 * The chain follows botocore's order for the sources we support:
 * environment, web identity (STS AssumeRoleWithWebIdentity, the EKS IRSA
 * path), then the shared credentials file and its AWS_PROFILE. Secrets live
 * only in ig_aws_creds_t and are wiped when it is disposed; messages name
 * variables and files, never values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "infergate/bootstrap/aws_creds.h"
#include "infergate/bootstrap/client.h"
#include "infergate/base/error.h"
#include "infergate/base/log.h"

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}

void ig_aws_creds_dispose(ig_aws_creds_t *c)
{
    wipe_free(c->access_key);
    wipe_free(c->secret_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int ig_aws_creds_parse_ini(ig_aws_creds_t *c, const char *text, const char *profile,
                           const char *origin, char *err, size_t errlen)
{
    char *copy = ig_xstrdup(text);
    char *save = copy;
    bool in = false, found = false;
    char *ak = NULL, *sk = NULL, *st = NULL;
    for (char *line = copy; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *l = trim(line);
        if (*l == '[') {
            char *end = strchr(l, ']');
            if (end) {
                *end = '\0';
                char *name = trim(l + 1);
                /* ~/.aws/config spells it "profile NAME"; accept both here. */
                if (!strncmp(name, "profile ", 8))
                    name = trim(name + 8);
                in = !strcmp(name, profile);
                found |= in;
            }
        } else if (in && *l && *l != '#' && *l != ';') {
            char *eq = strchr(l, '=');
            if (eq) {
                *eq = '\0';
                char *k = trim(l), *v = trim(eq + 1);
                if (!strcmp(k, "aws_access_key_id"))
                    ak = v;
                else if (!strcmp(k, "aws_secret_access_key"))
                    sk = v;
                else if (!strcmp(k, "aws_session_token"))
                    st = v;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    int rc = 0;
    if (!found) {
        snprintf(err, errlen, "%s: no profile [%s]", origin, profile);
        rc = IG_ENOTFOUND;
    } else if (!ak || !*ak || !sk || !*sk) {
        snprintf(err, errlen,
                 "%s: profile [%s] lacks aws_access_key_id or "
                 "aws_secret_access_key",
                 origin, profile);
        rc = IG_EPARSE;
    } else {
        c->access_key = ig_xstrdup(ak);
        c->secret_key = ig_xstrdup(sk);
        c->session_token = st && *st ? ig_xstrdup(st) : NULL;
        snprintf(c->source, sizeof(c->source), "shared-credentials-file");
    }
    /* The copy held secrets. */
    memset(save, 0, strlen(text));
    free(save);
    return rc;
}

/* Returns the text of the first <tag>…</tag> in xml (owned), or NULL. */
static char *xml_text(const char *xml, const char *tag)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return NULL;
    /* Undo the five XML entities; STS tokens may contain '&' escaped as &amp;. */
    ig_buf_t out;
    ig_buf_init(&out, 0);
    for (const char *p = a; p < b; p++) {
        static const struct {
            const char *ent;
            char c;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        bool done = false;
        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && *p == '&'; i++) {
            size_t n = strlen(ents[i].ent);
            if ((size_t)(b - p) >= n && !strncmp(p, ents[i].ent, n)) {
                ig_buf_append(&out, &ents[i].c, 1);
                p += n - 1;
                done = true;
                break;
            }
        }
        if (!done)
            ig_buf_append(&out, p, 1);
    }
    if (!out.base)
        ig_buf_append(&out, "", 0);
    return ig_buf_take(&out, NULL);
}

int ig_aws_sts_parse(ig_aws_creds_t *c, const char *xml, char *err, size_t errlen)
{
    const char *creds = strstr(xml, "<Credentials>");
    if (!creds) {
        char *code = xml_text(xml, "Code"), *msg = xml_text(xml, "Message");
        snprintf(err, errlen, "STS AssumeRoleWithWebIdentity: %s: %s",
                 code ? code : "no <Credentials> in the answer", msg ? msg : "");
        free(code);
        free(msg);
        return IG_EAUTH;
    }
    char *ak = xml_text(creds, "AccessKeyId");
    char *sk = xml_text(creds, "SecretAccessKey");
    char *st = xml_text(creds, "SessionToken");
    if (!ak || !sk || !st || !*ak || !*sk) {
        wipe_free(ak);
        wipe_free(sk);
        wipe_free(st);
        snprintf(err, errlen,
                 "STS AssumeRoleWithWebIdentity: <Credentials> lacks AccessKeyId, "
                 "SecretAccessKey or SessionToken");
        return IG_EPARSE;
    }
    c->access_key = ak;
    c->secret_key = sk;
    c->session_token = st;
    snprintf(c->source, sizeof(c->source), "web-identity");
    return 0;
}

static void form_add(ig_buf_t *b, CURL *h, const char *k, const char *v)
{
    char *e = curl_easy_escape(h, v, 0);
    ig_buf_printf(b, "%s%s=%s", b->len ? "&" : "", k, e ? e : "");
    curl_free(e);
}

/* STS is tried again on every transport failure, not only those that
 * ig_client_again counts as passing, and on 429 and 5xx answers. */
static bool sts_again(int rc, const ig_client_resp_t *resp)
{
    return rc != 0 || ig_client_again(rc, resp);
}

static int web_identity(ig_aws_creds_t *c, char *const *envp, const char *region,
                        const char *token_file, const char *role, char *err, size_t errlen)
{
    char *token;
    if (ig_file_read(token_file, 64 * 1024, &token, NULL) != 0) {
        snprintf(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE: cannot read %s", token_file);
        return IG_EIO;
    }
    char *t = token;
    size_t n = strlen(t);
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
        t[--n] = '\0';
    const char *session = ig_env_get(envp, "AWS_ROLE_SESSION_NAME");
    ig_buf_t form;
    ig_buf_init(&form, 0);
    CURL *h = curl_easy_init();
    if (!h) {
        wipe_free(token);
        return IG_ENOMEM;
    }
    form_add(&form, h, "Action", "AssumeRoleWithWebIdentity");
    form_add(&form, h, "Version", "2011-06-15");
    form_add(&form, h, "RoleArn", role);
    form_add(&form, h, "RoleSessionName", session ? session : "infergate-bootstrap");
    form_add(&form, h, "WebIdentityToken", t);
    curl_easy_cleanup(h);

    const char *ep = ig_env_get(envp, "AWS_ENDPOINT_URL_STS");
    if (!ep)
        ep = ig_env_get(envp, "AWS_ENDPOINT_URL");
    char url[512];
    if (ep)
        snprintf(url, sizeof(url), "%s/", ep);
    else if (region)
        snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com/", region);
    else
        snprintf(url, sizeof(url), "https://sts.amazonaws.com/");

    ig_client_retry_t rp;
    ig_client_retry_default(&rp, envp);
    ig_client_req_t req = {.method = "POST",
                           .url = url,
                           .body = form.base,
                           .body_len = form.len,
                           .content_type = "application/x-www-form-urlencoded",
                           .accept = "text/xml"};
    ig_client_resp_t resp;
    ig_client_resp_init(&resp);
    int rc = ig_client_do_retry(&req, &rp, sts_again, &resp, err, errlen);
    memset(form.base, 0, form.len);
    ig_buf_dispose(&form);
    if (rc == 0) {
        rc = ig_aws_sts_parse(c, resp.body.base ? resp.body.base : "", err, errlen);
        if (rc == 0 && resp.status != 200) {
            ig_aws_creds_dispose(c);
            snprintf(err, errlen, "STS AssumeRoleWithWebIdentity: HTTP %ld", resp.status);
            rc = IG_EAUTH;
        }
    }
    ig_client_resp_dispose(&resp);
    /* STS's message is printed as it came; it must not quote the token. */
    if (rc != 0)
        ig_log_scrub(err, errlen, t);
    wipe_free(token);
    return rc;
}

int ig_aws_creds_resolve(ig_aws_creds_t *c, char *const *envp, const char *region, char *err,
                         size_t errlen)
{
    memset(c, 0, sizeof(*c));
    const char *ak = ig_env_get(envp, "AWS_ACCESS_KEY_ID");
    const char *sk = ig_env_get(envp, "AWS_SECRET_ACCESS_KEY");
    if (ak && sk) {
        const char *st = ig_env_get(envp, "AWS_SESSION_TOKEN");
        c->access_key = ig_xstrdup(ak);
        c->secret_key = ig_xstrdup(sk);
        c->session_token = st ? ig_xstrdup(st) : NULL;
        snprintf(c->source, sizeof(c->source), "environment");
        return 0;
    }
    if (ak || sk) {
        snprintf(err, errlen, "%s is set but %s is not",
                 ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return IG_ECONFIG;
    }
    const char *tf = ig_env_get(envp, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = ig_env_get(envp, "AWS_ROLE_ARN");
    if (tf && role)
        return web_identity(c, envp, region, tf, role, err, errlen);

    const char *profile = ig_env_get(envp, "AWS_PROFILE");
    if (!profile)
        profile = "default";
    const char *file = ig_env_get(envp, "AWS_SHARED_CREDENTIALS_FILE");
    char path[1024];
    if (!file) {
        const char *home = ig_env_get(envp, "HOME");
        snprintf(path, sizeof(path), "%s/.aws/credentials", home ? home : "");
        file = path;
    }
    char *text;
    if (ig_file_read(file, 1u << 20, &text, NULL) != 0) {
        snprintf(err, errlen,
                 "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                 "unset, AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN unset, and %s cannot be read",
                 file);
        return IG_ENOTFOUND;
    }
    int rc = ig_aws_creds_parse_ini(c, text, profile, file, err, errlen);
    memset(text, 0, strlen(text));
    free(text);
    return rc;
}
