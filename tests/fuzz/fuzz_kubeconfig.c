/*
 * fuzz_kubeconfig.c: libFuzzer target for bootstrap's kubeconfig parser
 * (ig_kubeconfig_parse in gateway/bootstrap/kubeconfig.c, which reads the
 * YAML through template.c's reader).
 *
 * An input is a kubeconfig, in which the harness replaces "@TOKEN@" with a
 * secret token and "@KEY@" with the base64 of a secret private key, so that
 * seeds put secrets where real files have them (user.token, exec env values,
 * client-key-data). The input's hash picks the context asked for (none, so
 * current-context, or "dev" or "prod") and the directory relative paths are
 * taken from. Invariants, from bootstrap_kube.h and docs/bootstrap.md:
 *  - a rejected file gives IG_EPARSE or IG_ENOTFOUND, a message that starts
 *    with the file's name, and an ig_kube_auth_t that owns nothing;
 *  - an accepted one gives a server (non-empty, no trailing '/'), equal to
 *    the cluster's server without its trailing slashes, and the credential
 *    forms the context's user has, each in its field: token, tokenFile,
 *    client-certificate(-data), client-key(-data), exec (command, args, env
 *    as NAME=value), certificate-authority(-data), insecure-skip-tls-verify,
 *    namespace; relative paths are joined to the directory and data fields
 *    in standard base64 decode to the bytes they hold (up to a NUL);
 *  - secrets are never in a message: neither the error text nor `source`
 *    holds the token, the key or its base64, unless the file also wrote that
 *    string where a message may name it: in a key, or in a string that is not
 *    the value of a token, client-key-data, value or password member;
 *  - ig_kube_auth_dispose leaves nothing (LeakSanitizer checks the rest).
 * The parser runs no exec plugin and reads no file; neither does this target.
 *
 * Open bug, kept in tests/fuzz/regressions/fuzz_kubeconfig/: a server of
 * slashes only ("/") is accepted as an empty server. To fuzz past it,
 * IG_FUZZ_KUBECONFIG_KNOWN=1 lets the server be empty.
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/bootstrap/kubeconfig.h"
#include "infergate/bootstrap/template.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"

#define ORIGIN "fuzz.kubeconfig"
#define KUBE_DIR "/etc/kube"

static const char TOKEN[] = "SECRETtokenQ7x9Zk2Lw";
static const char KEY[] = "-----BEGIN EC PRIVATE KEY-----\nSECRETkeyM4w8JpVd\n"
                          "-----END EC PRIVATE KEY-----\n";
static char key_b64[256];
static bool known;

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        FUZZ_CHECK(o + 5 <= outlen, "base64 buffer too small");
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Strict standard base64 (whitespace skipped, '=' only as padding at the end).
 * Returns the decoded bytes, NUL-terminated, or NULL when `in` is not that. */
static char *b64_decode_strict(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t o = 0, digits = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            continue;
        if (*p == '=') {
            pad++;
            continue;
        }
        const char *c = strchr(b64chars, *p);
        if (!c || pad) {
            free(out);
            return NULL;
        }
        digits++;
        acc = (acc << 6) | (unsigned)(c - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if ((digits + pad) % 4 != 0 || pad > 2 || digits % 4 == 1) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    return out;
}

/* The input with the markers replaced; NUL-terminated. */
static char *expand(const uint8_t *data, size_t size, size_t *len)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    for (size_t i = 0; i < size;) {
        if (size - i >= 7 && memcmp(data + i, "@TOKEN@", 7) == 0) {
            ig_buf_append_str(&b, TOKEN);
            i += 7;
        } else if (size - i >= 5 && memcmp(data + i, "@KEY@", 5) == 0) {
            ig_buf_append_str(&b, key_b64);
            i += 5;
        } else {
            ig_buf_append(&b, data + i, 1);
            i++;
        }
    }
    ig_buf_append(&b, "", 0);
    return ig_buf_take(&b, len);
}

static bool secret_member(const char *name)
{
    return name && (strcmp(name, "token") == 0 || strcmp(name, "client-key-data") == 0 ||
                    strcmp(name, "value") == 0 || strcmp(name, "password") == 0);
}

/* Whether `s` occurs in a key, or in a string that is not a secret member's value. */
static bool echoable(const cJSON *j, const char *s)
{
    if (j->string && strstr(j->string, s))
        return true;
    if (cJSON_IsString(j))
        return !secret_member(j->string) && strstr(j->valuestring, s);
    for (const cJSON *c = j->child; c; c = c->next)
        if (echoable(c, s))
            return true;
    return false;
}

static void check_no_secret(const char *text, const cJSON *tree, const char *what,
                            const char *secret)
{
    if (!strstr(text, secret))
        return;
    bool named = false;
    if (tree) {
        named = echoable(tree, secret);
    } else {
        /* The reader failed: the one message that quotes the file is a duplicate key's. */
        const char *dup = strstr(text, "duplicate key \"");
        named = dup && strstr(dup, secret);
    }
    FUZZ_CHECK(named, "a secret in the %s: '%s'", what, text);
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* The member `member` of the first entry of `list` whose name is `name`. */
static const cJSON *named(const cJSON *list, const char *name, const char *member)
{
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next) {
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(nv) && strcmp(nv->valuestring, name) == 0)
            return cJSON_GetObjectItemCaseSensitive(it, member);
    }
    return NULL;
}

static void check_str(const char *field, const char *got, const char *want)
{
    if (!want) {
        FUZZ_CHECK(got == NULL, "%s is '%s', the file has none", field, got);
        return;
    }
    FUZZ_CHECK(got && strcmp(got, want) == 0, "%s is '%s', want '%s'", field, got ? got : "(null)",
               want);
}

static void check_path(const char *field, const char *got, const char *file, const char *dir)
{
    if (!file) {
        FUZZ_CHECK(got == NULL, "%s is '%s', the file has none", field, got);
        return;
    }
    ig_buf_t b;
    ig_buf_init(&b, 0);
    if (file[0] == '/' || !dir)
        ig_buf_append_str(&b, file);
    else
        ig_buf_printf(&b, "%s/%s", dir, file);
    check_str(field, got, b.base);
    ig_buf_dispose(&b);
}

static void check_data(const char *field, const char *got, const char *b64)
{
    if (!b64) {
        FUZZ_CHECK(got == NULL, "%s set, the file has no data", field);
        return;
    }
    FUZZ_CHECK(got != NULL, "%s missing", field);
    char *want = b64_decode_strict(b64);
    if (want) /* lenient input (URL-safe digits, junk after '=') is not checked */
        FUZZ_CHECK(strcmp(got, want) == 0, "%s does not hold the decoded data", field);
    free(want);
}

/* Checks an accepted file's fields against the file itself. */
static void check_accepted(const ig_kube_auth_t *a, const cJSON *kc, const char *context,
                           const char *dir)
{
    FUZZ_CHECK(a->server && (a->server[0] || known), "accepted without a server");
    size_t sl = strlen(a->server);
    FUZZ_CHECK(sl == 0 || a->server[sl - 1] != '/', "the server '%s' ends with '/'", a->server);

    const char *ctxname = context ? context : str_of(kc, "current-context");
    FUZZ_CHECK(ctxname, "accepted without a context");
    const cJSON *ctx = named(cJSON_GetObjectItemCaseSensitive(kc, "contexts"), ctxname, "context");
    FUZZ_CHECK(ctx, "accepted, but context '%s' is not in the file", ctxname);
    const char *clname = str_of(ctx, "cluster"), *uname = str_of(ctx, "user");
    FUZZ_CHECK(clname, "accepted a context without a cluster");
    const cJSON *cl = named(cJSON_GetObjectItemCaseSensitive(kc, "clusters"), clname, "cluster");
    FUZZ_CHECK(cl, "accepted, but cluster '%s' is not in the file", clname);
    const cJSON *user =
        uname ? named(cJSON_GetObjectItemCaseSensitive(kc, "users"), uname, "user") : NULL;

    const char *server = str_of(cl, "server");
    FUZZ_CHECK(server, "accepted a cluster without a server");
    size_t n = strlen(server);
    while (n && server[n - 1] == '/')
        n--;
    FUZZ_CHECK(strlen(a->server) == n && strncmp(a->server, server, n) == 0,
               "server '%s' from '%s'", a->server, server);

    char source[sizeof a->source];
    snprintf(source, sizeof source, "%s (context %s)", ORIGIN, ctxname);
    FUZZ_CHECK(strcmp(a->source, source) == 0, "source '%s', want '%s'", a->source, source);
    check_str("namespace", a->namespace_, str_of(ctx, "namespace"));
    FUZZ_CHECK(a->insecure ==
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "insecure-skip-tls-verify")),
               "insecure is %d", a->insecure);
    check_path("ca_file", a->ca_file, str_of(cl, "certificate-authority"), dir);
    check_data("ca_pem", a->ca_pem, str_of(cl, "certificate-authority-data"));

    check_path("cert_file", a->cert_file, user ? str_of(user, "client-certificate") : NULL, dir);
    check_path("key_file", a->key_file, user ? str_of(user, "client-key") : NULL, dir);
    check_data("cert_pem", a->cert_pem, user ? str_of(user, "client-certificate-data") : NULL);
    check_data("key_pem", a->key_pem, user ? str_of(user, "client-key-data") : NULL);
    check_str("token", a->token, user ? str_of(user, "token") : NULL);
    check_path("token_file", a->token_file, user ? str_of(user, "tokenFile") : NULL, dir);

    const cJSON *ex = user ? cJSON_GetObjectItemCaseSensitive(user, "exec") : NULL;
    if (!cJSON_IsObject(ex)) {
        FUZZ_CHECK(a->exec_argv == NULL && a->exec_env == NULL, "an exec plugin from nowhere");
        return;
    }
    FUZZ_CHECK(a->exec_argv && a->exec_argv[0], "exec without argv");
    check_str("exec command", a->exec_argv[0], str_of(ex, "command"));
    size_t i = 1;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(ex, "args");
    for (const cJSON *it = args ? args->child : NULL; it; it = it->next, i++) {
        FUZZ_CHECK(cJSON_IsString(it), "accepted an exec argument that is not a string");
        check_str("exec argument", a->exec_argv[i], it->valuestring);
    }
    FUZZ_CHECK(a->exec_argv[i] == NULL, "exec argv has more than the file's %zu entries", i);
    FUZZ_CHECK(a->exec_env, "exec without env");
    i = 0;
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(ex, "env");
    for (const cJSON *it = env ? env->child : NULL; it; it = it->next, i++) {
        const char *en = str_of(it, "name");
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "value");
        FUZZ_CHECK(en && cJSON_IsString(ev), "accepted an exec env entry without name or value");
        ig_buf_t b;
        ig_buf_init(&b, 0);
        ig_buf_printf(&b, "%s=%s", en, ev->valuestring);
        check_str("exec env", a->exec_env[i], b.base);
        ig_buf_dispose(&b);
    }
    FUZZ_CHECK(a->exec_env[i] == NULL, "exec env has more than the file's %zu entries", i);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("IG_FUZZ_KUBECONFIG_KNOWN");
    known = e && strcmp(e, "1") == 0;
    b64_encode(KEY, strlen(KEY), key_b64, sizeof key_b64);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const contexts[] = {NULL, NULL, "dev", "prod"};
    uint64_t h = fuzz_hash(data, size);
    const char *context = contexts[h % 4];
    const char *dir = (h >> 2) & 1 ? KUBE_DIR : NULL;
    size_t len;
    char *text = expand(data, size, &len);

    ig_kube_auth_t a;
    memset(&a, 0x5a, sizeof a);
    char err[512] = "";
    int rc = ig_kubeconfig_parse(&a, text, len, ORIGIN, dir, context, err, sizeof err);

    cJSON *kc = NULL;
    char err2[512];
    if (ig_yaml_to_json(text, len, ORIGIN, &kc, err2, sizeof err2) != 0)
        kc = NULL;
    const char *secrets[] = {TOKEN, key_b64, "SECRETkeyM4w8JpVd"};
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EPARSE || rc == IG_ENOTFOUND, "returned %d (%s): %s", rc,
                   ig_err_name(rc), err);
        FUZZ_CHECK(strncmp(err, ORIGIN ":", strlen(ORIGIN) + 1) == 0,
                   "the message does not name the file: '%s'", err);
        static const ig_kube_auth_t zero;
        FUZZ_CHECK(memcmp(&a, &zero, sizeof a) == 0, "a failed parse left something behind");
        for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
            check_no_secret(err, kc, "error message", secrets[i]);
    } else {
        FUZZ_CHECK(kc != NULL, "accepted a file its YAML reader refuses: %s", err2);
        check_accepted(&a, kc, context, dir);
        for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
            check_no_secret(a.source, kc, "source", secrets[i]);
        ig_kube_auth_dispose(&a);
        static const ig_kube_auth_t zero;
        FUZZ_CHECK(memcmp(&a, &zero, sizeof a) == 0, "dispose left something behind");
    }
    cJSON_Delete(kc);
    free(text);
    return 0;
}
