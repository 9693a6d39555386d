/*
 * kubeconfig.c: how bootstrap finds and authenticates to a Kubernetes API.
 *
 * Reads kubeconfig files (YAML, through template.c's reader): the context,
 * its cluster (server, CA file or data, insecure-skip-tls-verify) and its
 * user (token, tokenFile, client certificate and key as files or data, exec
 * credential plugins such as `aws eks get-token`), or falls back to the pod's
 * service account when running in a cluster. Secrets stay in ig_kube_auth_t
 * and are wiped when it is disposed; messages name files and keys only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "infergate/bootstrap/client.h"
#include "infergate/bootstrap/kubeconfig.h"
#include "infergate/bootstrap/template.h"
#include "infergate/base/error.h"

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}

static void free_argv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

void ig_kube_auth_dispose(ig_kube_auth_t *a)
{
    free(a->server);
    free(a->namespace_);
    free(a->ca_file);
    free(a->ca_pem);
    free(a->cert_file);
    free(a->key_file);
    free(a->cert_pem);
    wipe_free(a->key_pem);
    wipe_free(a->token);
    free(a->token_file);
    free_argv(a->exec_argv);
    for (char **p = a->exec_env; p && *p; p++)
        wipe_free(*p);
    free(a->exec_env);
    memset(a, 0, sizeof(*a));
}

/* Decodes the standard base64 (RFC 4648 section 4, padded) of kubeconfig's
 * *-data fields into a NUL-terminated string in *out (the caller frees it).
 * Spaces, tabs and line breaks are skipped: YAML folds long scalars and
 * people paste wrapped `base64` output. Anything else outside the alphabet,
 * a length that is not a multiple of four, or '=' other than one or two at
 * the very end is refused with *why set to a static sentence.
 * EVP_DecodeBlock does the decoding but reads '=' as a zero digit wherever
 * it stands, so the padding is checked here first, and the bytes it adds
 * for the padding are taken off its count. */
static int b64_decode(const char *in, char **out, const char **why)
{
    size_t n = strlen(in), m = 0;
    if (n > INT_MAX) {
        *why = "is too long";
        return IG_EPARSE;
    }
    unsigned char *clean = ig_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
            clean[m++] = (unsigned char)ch;
    }
    size_t pad = 0;
    while (pad < m && pad < 3 && clean[m - 1 - pad] == '=')
        pad++;
    const char *bad = NULL;
    if (m % 4 != 0)
        bad = "has a length that is not a multiple of 4 (cut short, or '=' padding missing)";
    else if (pad > 2 || memchr(clean, '=', m - pad))
        bad = "has '=' padding other than one or two at the end";
    unsigned char *dst = ig_xmalloc(m / 4 * 3 + 1);
    int r = bad ? -1 : EVP_DecodeBlock(dst, clean, (int)m);
    free(clean);
    if (r < 0) {
        free(dst);
        *why = bad ? bad : "has characters outside the base64 alphabet (A-Z a-z 0-9 + /)";
        return IG_EPARSE;
    }
    r -= (int)pad;
    dst[r] = '\0';
    *out = (char *)dst;
    return 0;
}

static const cJSON *named(const cJSON *list, const char *name, const char *member)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return cJSON_GetObjectItemCaseSensitive(it, member);
    }
    return NULL;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

static char *path_in(const char *dir, const char *p)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    if (p[0] == '/' || !dir)
        ig_buf_append_str(&b, p);
    else
        ig_buf_printf(&b, "%s/%s", dir, p);
    return ig_buf_take(&b, NULL);
}

static int data_field(const cJSON *o, const char *key, char **dst, const char *origin, char *err,
                      size_t errlen)
{
    const char *v = str_of(o, key);
    if (!v)
        return 0;
    const char *why = NULL;
    if (b64_decode(v, dst, &why) < 0)
        return ig_error_fmt(err, errlen, IG_EPARSE, "%s: %s is not valid base64: it %s", origin,
                            key, why);
    return 0;
}

int ig_kubeconfig_parse(ig_kube_auth_t *a, const char *text, size_t len, const char *origin,
                        const char *dir, const char *context, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    cJSON *kc = NULL;
    int rc = ig_yaml_to_json(text, len, origin, &kc, err, errlen);
    if (rc)
        return rc;
    if (!cJSON_IsObject(kc)) {
        cJSON_Delete(kc);
        snprintf(err, errlen, "%s: not a kubeconfig (want a mapping)", origin);
        return IG_EPARSE;
    }
    const char *ctxname = context ? context : str_of(kc, "current-context");
    if (!ctxname) {
        snprintf(err, errlen, "%s: no current-context and no bootstrap.kubernetes.context", origin);
        rc = IG_ENOTFOUND;
        goto out;
    }
    const cJSON *ctx = named(cJSON_GetObjectItemCaseSensitive(kc, "contexts"), ctxname, "context");
    if (!ctx) {
        snprintf(err, errlen, "%s: context \"%s\" not found", origin, ctxname);
        rc = IG_ENOTFOUND;
        goto out;
    }
    const char *clname = str_of(ctx, "cluster"), *uname = str_of(ctx, "user");
    const cJSON *cl =
        clname ? named(cJSON_GetObjectItemCaseSensitive(kc, "clusters"), clname, "cluster") : NULL;
    if (!cl) {
        snprintf(err, errlen, "%s: context \"%s\": cluster \"%s\" not found", origin, ctxname,
                 clname ? clname : "");
        rc = IG_ENOTFOUND;
        goto out;
    }
    const cJSON *user =
        uname ? named(cJSON_GetObjectItemCaseSensitive(kc, "users"), uname, "user") : NULL;
    if (uname && !user) {
        snprintf(err, errlen, "%s: context \"%s\": user \"%s\" not found", origin, ctxname, uname);
        rc = IG_ENOTFOUND;
        goto out;
    }
    snprintf(a->source, sizeof(a->source), "%s (context %s)", origin, ctxname);
    const char *server = str_of(cl, "server");
    if (!server) {
        snprintf(err, errlen, "%s: cluster \"%s\" has no server", origin, clname);
        rc = IG_EPARSE;
        goto out;
    }
    a->server = ig_xstrdup(server);
    size_t sl = strlen(a->server);
    while (sl && a->server[sl - 1] == '/')
        a->server[--sl] = '\0';
    /* Checked after stripping: "/" or "///" would otherwise leave "" and send
     * every request to a relative path. */
    if (!sl) {
        snprintf(err, errlen, "%s: cluster \"%s\" has no server", origin, clname);
        rc = IG_EPARSE;
        goto out;
    }
    const char *ns = str_of(ctx, "namespace");
    a->namespace_ = ns ? ig_xstrdup(ns) : NULL;
    a->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify"));
    const char *caf = str_of(cl, "certificate-authority");
    if (caf)
        a->ca_file = path_in(dir, caf);
    if ((rc = data_field(cl, "certificate-authority-data", &a->ca_pem, origin, err, errlen)))
        goto out;
    if (user) {
        const char *v;
        if ((v = str_of(user, "client-certificate")))
            a->cert_file = path_in(dir, v);
        if ((v = str_of(user, "client-key")))
            a->key_file = path_in(dir, v);
        if ((rc = data_field(user, "client-certificate-data", &a->cert_pem, origin, err, errlen)) ||
            (rc = data_field(user, "client-key-data", &a->key_pem, origin, err, errlen)))
            goto out;
        if ((v = str_of(user, "token")))
            a->token = ig_xstrdup(v);
        if ((v = str_of(user, "tokenFile")))
            a->token_file = path_in(dir, v);
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(user, "exec");
        if (cJSON_IsObject(ex)) {
            const char *cmd = str_of(ex, "command");
            if (!cmd) {
                snprintf(err, errlen, "%s: user \"%s\": exec has no command", origin, uname);
                rc = IG_EPARSE;
                goto out;
            }
            const cJSON *args = cJSON_GetObjectItemCaseSensitive(ex, "args");
            int n = cJSON_GetArraySize(args);
            a->exec_argv = ig_xcalloc((size_t)n + 2, sizeof(char *));
            a->exec_argv[0] = ig_xstrdup(cmd);
            int i = 1;
            const cJSON *it;
            cJSON_ArrayForEach(it, args)
            {
                if (!cJSON_IsString(it)) {
                    snprintf(err, errlen, "%s: user \"%s\": exec.args must be strings", origin,
                             uname);
                    rc = IG_EPARSE;
                    goto out;
                }
                a->exec_argv[i++] = ig_xstrdup(it->valuestring);
            }
            const cJSON *env = cJSON_GetObjectItemCaseSensitive(ex, "env");
            int ne = cJSON_GetArraySize(env);
            a->exec_env = ig_xcalloc((size_t)ne + 1, sizeof(char *));
            i = 0;
            cJSON_ArrayForEach(it, env)
            {
                const char *en = str_of(it, "name");
                const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "value");
                if (!en || !cJSON_IsString(ev)) {
                    snprintf(err, errlen,
                             "%s: user \"%s\": exec.env entries need name and "
                             "value",
                             origin, uname);
                    rc = IG_EPARSE;
                    goto out;
                }
                ig_buf_t b;
                ig_buf_init(&b, 0);
                ig_buf_printf(&b, "%s=%s", en, ev->valuestring);
                a->exec_env[i++] = ig_buf_take(&b, NULL);
            }
        }
    }
out:
    cJSON_Delete(kc);
    if (rc)
        ig_kube_auth_dispose(a);
    return rc;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

int ig_kube_incluster(ig_kube_auth_t *a, char *const *envp, const char *sa_dir, char *err,
                      size_t errlen)
{
    memset(a, 0, sizeof(*a));
    const char *host = ig_env_get(envp, "KUBERNETES_SERVICE_HOST");
    const char *port = ig_env_get(envp, "KUBERNETES_SERVICE_PORT");
    if (!host) {
        snprintf(err, errlen, "not in a cluster: KUBERNETES_SERVICE_HOST is unset");
        return IG_ENOTFOUND;
    }
    ig_buf_t b;
    ig_buf_init(&b, 0);
    bool v6 = strchr(host, ':') != NULL;
    ig_buf_printf(&b, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port ? port : "443");
    a->server = ig_buf_take(&b, NULL);
    char p[1024];
    snprintf(p, sizeof(p), "%s/token", sa_dir);
    if (access(p, R_OK) != 0) {
        snprintf(err, errlen, "in-cluster: cannot read the service account token %s", p);
        ig_kube_auth_dispose(a);
        return IG_EIO;
    }
    /* Projected tokens rotate: re-read the file on every request. */
    a->token_file = ig_xstrdup(p);
    snprintf(p, sizeof(p), "%s/ca.crt", sa_dir);
    if (access(p, R_OK) == 0)
        a->ca_file = ig_xstrdup(p);
    snprintf(p, sizeof(p), "%s/namespace", sa_dir);
    char *ns;
    if (ig_file_read(p, 256, &ns, NULL) == 0) {
        chomp(ns);
        a->namespace_ = ns;
    }
    snprintf(a->source, sizeof(a->source), "in-cluster service account (%s)", sa_dir);
    return 0;
}

int ig_kube_auth_resolve(ig_kube_auth_t *a, const char *kubeconfig, const char *context,
                         char *const *envp, char *err, size_t errlen)
{
    char path[1024] = "";
    if (kubeconfig) {
        snprintf(path, sizeof(path), "%s", kubeconfig);
    } else if (ig_env_get(envp, "KUBECONFIG")) {
        /* A list like $PATH: the first file that exists is used. */
        const char *list = ig_env_get(envp, "KUBECONFIG");
        const char *p = list;
        while (*p) {
            const char *e = strchr(p, ':');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            snprintf(path, sizeof(path), "%.*s", (int)n, p);
            if (n && access(path, R_OK) == 0)
                break;
            path[0] = '\0';
            p += n + (e ? 1 : 0);
        }
        if (!path[0]) {
            snprintf(err, errlen, "KUBECONFIG: none of \"%s\" can be read", list);
            return IG_EIO;
        }
    } else {
        const char *home = ig_env_get(envp, "HOME");
        snprintf(path, sizeof(path), "%s/.kube/config", home ? home : "");
        if (access(path, R_OK) != 0) {
            if (ig_env_get(envp, "KUBERNETES_SERVICE_HOST"))
                return ig_kube_incluster(a, envp, "/var/run/secrets/kubernetes.io/serviceaccount",
                                         err, errlen);
            snprintf(err, errlen,
                     "no Kubernetes credentials: bootstrap.kubernetes.kubeconfig "
                     "and KUBECONFIG unset, %s missing, and not in a cluster",
                     path);
            return IG_ENOTFOUND;
        }
    }
    char *text;
    if (ig_file_read(path, 4u << 20, &text, NULL) != 0) {
        snprintf(err, errlen, "kubeconfig %s: cannot be read", path);
        return IG_EIO;
    }
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int rc = ig_kubeconfig_parse(a, text, strlen(text), path, dir, context, err, errlen);
    memset(text, 0, strlen(text));
    free(text);
    return rc;
}

/* Runs argv with the extra environment, collecting stdout (bounded). */
static int run_capture(char **argv, char **extra_env, ig_buf_t *out, int *status, char *err,
                       size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "exec credential plugin %s: pipe: %s", argv[0], strerror(errno));
        return IG_EIO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(err, errlen, "exec credential plugin %s: fork: %s", argv[0], strerror(errno));
        return IG_EIO;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        for (char **e = extra_env; e && *e; e++) {
            char *eq = strchr(*e, '=');
            if (eq) {
                *eq = '\0';
                setenv(*e, eq + 1, 1);
                *eq = '=';
            }
        }
        /* Tells the plugin which API it answers for (client.authentication.k8s.io). */
        setenv("KUBERNETES_EXEC_INFO",
               "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
               "\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false}}",
               1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && ig_buf_append(out, chunk, (size_t)n) != 0)
            break;
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return 0;
}

int ig_kube_exec_credential(ig_kube_auth_t *a, char *err, size_t errlen)
{
    if (!a->exec_argv)
        return 0;
    ig_buf_t out;
    ig_buf_init(&out, 1u << 20);
    int status = 0;
    int rc = run_capture(a->exec_argv, a->exec_env, &out, &status, err, errlen);
    if (rc == 0 && status != 0) {
        snprintf(err, errlen, "exec credential plugin %s exited with status %d%s", a->exec_argv[0],
                 status, status == 127 ? " (command not found?)" : "");
        rc = IG_EAUTH;
    }
    cJSON *j = rc == 0 && out.base ? cJSON_ParseWithLength(out.base, out.len) : NULL;
    if (rc == 0) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        const char *kind = str_of(j, "kind");
        const char *tok = str_of(st, "token");
        const char *cert = str_of(st, "clientCertificateData");
        const char *key = str_of(st, "clientKeyData");
        if (!j || !kind || strcmp(kind, "ExecCredential") || (!tok && !(cert && key))) {
            snprintf(err, errlen,
                     "exec credential plugin %s: output is not an ExecCredential "
                     "with status.token or status.clientCertificateData/clientKeyData",
                     a->exec_argv[0]);
            rc = IG_EPARSE;
        } else {
            if (tok) {
                wipe_free(a->token);
                a->token = ig_xstrdup(tok);
            }
            if (cert && key) {
                free(a->cert_pem);
                wipe_free(a->key_pem);
                a->cert_pem = ig_xstrdup(cert);
                a->key_pem = ig_xstrdup(key);
            }
        }
    }
    cJSON_Delete(j);
    if (out.base)
        memset(out.base, 0, out.len);
    ig_buf_dispose(&out);
    return rc;
}
