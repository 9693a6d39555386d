/*
 * test_bootstrap_kubeconfig.c: kubeconfig parsing, resolution order, in-cluster
 * credentials and exec credential plugins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "infergate/bootstrap/kubeconfig.h"
#include "infergate/base/error.h"

static char dir[] = "/tmp/ig-test-kube-XXXXXX";

static void write_file(const char *name, const char *text, int mode)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, (mode_t)mode);
}

/* "-----BEGIN CERTIFICATE-----\nX\n" and "KEY" in base64. */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClgK"
#define KEY_B64 "S0VZ"

static const char *KC = "apiVersion: v1\n"
                        "kind: Config\n"
                        "current-context: dev\n"
                        "clusters:\n"
                        "- name: c1\n"
                        "  cluster:\n"
                        "    server: https://10.0.0.1:6443/\n"
                        "    certificate-authority-data: " CA_B64 "\n"
                        "- name: c2\n"
                        "  cluster:\n"
                        "    server: https://k.example:443\n"
                        "    insecure-skip-tls-verify: true\n"
                        "    certificate-authority: ca.crt\n"
                        "contexts:\n"
                        "- name: dev\n"
                        "  context: {cluster: c1, user: tok, namespace: ml}\n"
                        "- name: prod\n"
                        "  context: {cluster: c2, user: certs}\n"
                        "- name: eks\n"
                        "  context: {cluster: c1, user: aws}\n"
                        "- name: broken\n"
                        "  context: {cluster: nope, user: tok}\n"
                        "users:\n"
                        "- name: tok\n"
                        "  user:\n"
                        "    token: abc.def\n"
                        "- name: certs\n"
                        "  user:\n"
                        "    client-certificate: certs/c.pem\n"
                        "    client-key-data: " KEY_B64 "\n"
                        "    tokenFile: /var/run/tok\n"
                        "- name: aws\n"
                        "  user:\n"
                        "    exec:\n"
                        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                        "      command: aws\n"
                        "      args: [eks, get-token, --cluster-name, ml]\n"
                        "      env:\n"
                        "      - {name: AWS_PROFILE, value: ml}\n";

static void test_current_context_token_and_ca_data(void **state)
{
    (void)state;
    ig_kube_auth_t a;
    char err[512];
    assert_int_equal(
        ig_kubeconfig_parse(&a, KC, strlen(KC), "kc", "/home/u/.kube", NULL, err, sizeof(err)), 0);
    assert_string_equal(a.server, "https://10.0.0.1:6443");
    assert_string_equal(a.namespace_, "ml");
    assert_string_equal(a.token, "abc.def");
    assert_string_equal(a.ca_pem, "-----BEGIN CERTIFICATE-----\nX\n");
    assert_false(a.insecure);
    assert_null(a.exec_argv);
    ig_kube_auth_dispose(&a);
}

static void test_named_context_certs_relative_paths_insecure(void **state)
{
    (void)state;
    ig_kube_auth_t a;
    char err[512];
    assert_int_equal(
        ig_kubeconfig_parse(&a, KC, strlen(KC), "kc", "/home/u/.kube", "prod", err, sizeof(err)),
        0);
    assert_true(a.insecure);
    assert_string_equal(a.ca_file, "/home/u/.kube/ca.crt");
    assert_string_equal(a.cert_file, "/home/u/.kube/certs/c.pem");
    assert_string_equal(a.key_pem, "KEY");
    assert_string_equal(a.token_file, "/var/run/tok");
    assert_null(a.token);
    ig_kube_auth_dispose(&a);
}

static void test_exec_plugin_parsed(void **state)
{
    (void)state;
    ig_kube_auth_t a;
    char err[512];
    assert_int_equal(ig_kubeconfig_parse(&a, KC, strlen(KC), "kc", ".", "eks", err, sizeof(err)),
                     0);
    assert_string_equal(a.exec_argv[0], "aws");
    assert_string_equal(a.exec_argv[2], "get-token");
    assert_string_equal(a.exec_argv[4], "ml");
    assert_null(a.exec_argv[5]);
    assert_string_equal(a.exec_env[0], "AWS_PROFILE=ml");
    ig_kube_auth_dispose(&a);
}

static void test_missing_pieces_are_named(void **state)
{
    (void)state;
    ig_kube_auth_t a;
    char err[512];
    assert_int_equal(
        ig_kubeconfig_parse(&a, KC, strlen(KC), "kc", ".", "staging", err, sizeof(err)),
        IG_ENOTFOUND);
    assert_non_null(strstr(err, "context \"staging\" not found"));
    assert_int_equal(ig_kubeconfig_parse(&a, KC, strlen(KC), "kc", ".", "broken", err, sizeof(err)),
                     IG_ENOTFOUND);
    assert_non_null(strstr(err, "cluster \"nope\" not found"));
    const char *bad = "current-context: x\ncontexts: [\n";
    assert_int_equal(
        ig_kubeconfig_parse(&a, bad, strlen(bad), "bad.yaml", ".", NULL, err, sizeof(err)),
        IG_EPARSE);
    assert_non_null(strstr(err, "bad.yaml:"));
}

/* A kubeconfig whose one cluster carries `data` as certificate-authority-data. */
static int parse_ca_data(const char *data, ig_kube_auth_t *a, char *err, size_t errlen)
{
    char kc[1024];
    snprintf(kc, sizeof kc,
             "current-context: d\n"
             "clusters: [{name: c, cluster: {server: 'https://k:6443', "
             "certificate-authority-data: \"%s\"}}]\n"
             "contexts: [{name: d, context: {cluster: c, user: u}}]\n"
             "users: [{name: u, user: {token: t}}]\n",
             data);
    return ig_kubeconfig_parse(a, kc, strlen(kc), "kc", ".", NULL, err, errlen);
}

static void expect_ca(const char *data, const char *want)
{
    ig_kube_auth_t a;
    char err[512] = "";
    if (parse_ca_data(data, &a, err, sizeof err) != 0)
        fail_msg("'%s' was refused: %s", data, err);
    assert_string_equal(a.ca_pem, want);
    ig_kube_auth_dispose(&a);
}

static void expect_bad_ca(const char *data, const char *why)
{
    ig_kube_auth_t a;
    char err[512] = "";
    assert_int_equal(parse_ca_data(data, &a, err, sizeof err), IG_EPARSE);
    assert_non_null(strstr(err, "kc: certificate-authority-data is not valid base64: it "));
    if (!strstr(err, why))
        fail_msg("'%s' gave '%s', expected '%s' in it", data, err, why);
}

/* base64_lax_decoder: the hand-written decoder skipped any '=' onwards,
 * took URL-safe '-' and '_', and accepted a cut-short last group. */
static void test_base64_data_strict(void **state)
{
    (void)state;
    expect_ca("YQ==", "a");
    expect_ca("YWI=", "ab");
    expect_ca("YWJj", "abc");
    expect_ca("YWJj\\nZA==", "abcd"); /* a YAML "\n": wrapped base64 output */
    expect_ca(" YW Jj\\r\\nZGVm\\t", "abcdef");
    expect_ca("Pz8/", "???");
    expect_ca("Pj4+", ">>>");

    expect_bad_ca("YWJ", "not a multiple of 4");
    expect_bad_ca("YQ=", "not a multiple of 4");
    expect_bad_ca("Y===", "'=' padding other than one or two at the end");
    expect_bad_ca("Y=Q=", "'=' padding other than one or two at the end");
    expect_bad_ca("YQ==YWJj", "'=' padding other than one or two at the end");
    expect_bad_ca("YW-j", "characters outside the base64 alphabet");
    expect_bad_ca("YW_j", "characters outside the base64 alphabet");
    expect_bad_ca("YW*j", "characters outside the base64 alphabet");
}

/* server_of_slashes_accepted_as_empty: "server: /" became "" after the trailing
 * slashes were stripped, and was accepted. */
static void test_server_of_slashes_refused(void **state)
{
    (void)state;
    const char *servers[] = {"/", "///"};
    for (size_t k = 0; k < 2; k++) {
        char kc[512];
        snprintf(kc, sizeof(kc),
                 "current-context: a\nclusters:\n- {name: c, cluster: {server: \"%s\"}}\n"
                 "contexts:\n- {name: a, context: {cluster: c}}\n",
                 servers[k]);
        ig_kube_auth_t a;
        char err[512];
        assert_int_equal(ig_kubeconfig_parse(&a, kc, strlen(kc), "kc", ".", NULL, err, sizeof(err)),
                         IG_EPARSE);
        assert_non_null(strstr(err, "cluster \"c\" has no server"));
    }
}

static void test_resolution_order_and_in_cluster(void **state)
{
    (void)state;
    char kc1[600], kcenv[1300], home[600];
    snprintf(kc1, sizeof(kc1), "%s/first", dir);
    write_file("first", KC, 0600);
    /* KUBECONFIG is a list: the first readable file wins. */
    snprintf(kcenv, sizeof(kcenv), "KUBECONFIG=%s/missing:%s", dir, kc1);
    snprintf(home, sizeof(home), "HOME=%s", dir);
    char *envp[] = {kcenv, home, NULL};
    ig_kube_auth_t a;
    char err[512];
    assert_int_equal(ig_kube_auth_resolve(&a, NULL, "prod", envp, err, sizeof(err)), 0);
    assert_string_equal(a.server, "https://k.example:443");
    char want_ca[600];
    snprintf(want_ca, sizeof(want_ca), "%s/ca.crt", dir); /* relative to the file's dir */
    assert_string_equal(a.ca_file, want_ca);
    ig_kube_auth_dispose(&a);
    /* No kubeconfig anywhere, but in a pod: the service account. */
    char *pod_env[] = {home, "KUBERNETES_SERVICE_HOST=10.96.0.1", NULL};
    assert_int_equal(ig_kube_auth_resolve(&a, NULL, NULL, pod_env, err, sizeof(err)), IG_EIO);
    assert_non_null(strstr(err, "serviceaccount/token"));
    snprintf(want_ca, sizeof(want_ca), "%s/sa", dir);
    mkdir(want_ca, 0700);
    write_file("sa/token", "satoken\n", 0600);
    write_file("sa/ca.crt", "CA\n", 0600);
    write_file("sa/namespace", "ml\n", 0600);
    char *sa_env[] = {"KUBERNETES_SERVICE_HOST=fd00::1", "KUBERNETES_SERVICE_PORT=6443", NULL};
    assert_int_equal(ig_kube_incluster(&a, sa_env, want_ca, err, sizeof(err)), 0);
    assert_string_equal(a.server, "https://[fd00::1]:6443");
    assert_string_equal(a.namespace_, "ml");
    assert_non_null(strstr(a.token_file, "/sa/token"));
    assert_non_null(strstr(a.ca_file, "/sa/ca.crt"));
    ig_kube_auth_dispose(&a);
    char *none[] = {home, NULL};
    assert_int_equal(ig_kube_auth_resolve(&a, NULL, NULL, none, err, sizeof(err)), IG_ENOTFOUND);
    assert_non_null(strstr(err, "not in a cluster"));
}

static void test_exec_credential_runs_the_plugin(void **state)
{
    (void)state;
    write_file("plugin.sh",
               "#!/bin/sh\n[ \"$1\" = get-token ] || exit 3\n[ \"$MY_ENV\" = on ] || exit 4\n"
               "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
               "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"from-plugin\"}}'\n",
               0700);
    write_file("bad.sh", "#!/bin/sh\necho not json\n", 0700);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s/plugin.sh", dir);
    char *argv[] = {cmd, "get-token", NULL};
    char *env[] = {"MY_ENV=on", NULL};
    ig_kube_auth_t a = {0};
    a.exec_argv = calloc(3, sizeof(char *));
    a.exec_argv[0] = strdup(argv[0]);
    a.exec_argv[1] = strdup(argv[1]);
    a.exec_env = calloc(2, sizeof(char *));
    a.exec_env[0] = strdup(env[0]);
    char err[512];
    assert_int_equal(ig_kube_exec_credential(&a, err, sizeof(err)), 0);
    assert_string_equal(a.token, "from-plugin");
    free(a.exec_argv[1]);
    a.exec_argv[1] = strdup("other");
    assert_int_equal(ig_kube_exec_credential(&a, err, sizeof(err)), IG_EAUTH);
    assert_non_null(strstr(err, "exited with status 3"));
    free(a.exec_argv[0]);
    snprintf(cmd, sizeof(cmd), "%s/bad.sh", dir);
    a.exec_argv[0] = strdup(cmd);
    assert_int_equal(ig_kube_exec_credential(&a, err, sizeof(err)), IG_EPARSE);
    assert_non_null(strstr(err, "not an ExecCredential"));
    ig_kube_auth_dispose(&a);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_context_token_and_ca_data),
        cmocka_unit_test(test_named_context_certs_relative_paths_insecure),
        cmocka_unit_test(test_exec_plugin_parsed),
        cmocka_unit_test(test_missing_pieces_are_named),
        cmocka_unit_test(test_base64_data_strict),
        cmocka_unit_test(test_server_of_slashes_refused),
        cmocka_unit_test(test_resolution_order_and_in_cluster),
        cmocka_unit_test(test_exec_credential_runs_the_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
