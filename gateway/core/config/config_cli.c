/*
 * config_cli.c: the configuration layers a process is started with.
 *
 * INFERGATE_* environment variables (the key path in capitals, '.' as '_')
 * go over the file; command-line flags (a few short names, and --set for
 * any key path) go over the environment. ig_config_from_args strings the
 * layers together for a subcommand and prints the usage text. Values are
 * set through the same key table and setters as a file's (config.c), so a
 * flag is checked exactly like the key it sets.
 */
#include "infergate/core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"
#include "infergate/base/log.h"

#include "config_int.h"

/* ---------------------------------------------------------------------------
 * Environment
 */

/* True when env name (not NUL-terminated) is INFERGATE_ + path in capitals. */
static bool env_name_is(const char *name, size_t n, const char *path)
{
    static const char prefix[] = "INFERGATE_";
    size_t plen = sizeof prefix - 1;
    if (n != plen + strlen(path) || memcmp(name, prefix, plen) != 0)
        return false;
    for (size_t i = 0; path[i]; i++) {
        char want = path[i] == '.'
                        ? '_'
                        : (char)(path[i] >= 'a' && path[i] <= 'z' ? path[i] - 'a' + 'A' : path[i]);
        if (name[plen + i] != want)
            return false;
    }
    return true;
}

/* Kubernetes injects {SERVICE}_SERVICE_HOST, {SERVICE}_SERVICE_PORT*,
 * {SERVICE}_PORT and {SERVICE}_PORT_<n>_<PROTO>* for every Service in the
 * namespace ("service links"). A Service named "infergate" would otherwise
 * make every sidecar in the namespace refuse to start, so those names are
 * not config variables and are skipped. */
static bool is_service_link(const char *e, size_t n)
{
    const char *rest = e + strlen("INFERGATE_");
    size_t rn = n - strlen("INFERGATE_");
    if ((rn >= 12 && memcmp(rest, "SERVICE_HOST", 12) == 0) ||
        (rn >= 12 && memcmp(rest, "SERVICE_PORT", 12) == 0))
        return true;
    if (rn == 4 && memcmp(rest, "PORT", 4) == 0)
        return true;
    if (rn > 5 && memcmp(rest, "PORT_", 5) == 0 && rest[5] >= '0' && rest[5] <= '9')
        return true;
    return false;
}

int ig_config_apply_env(ig_config_t *c, char *const *envp, char *err, size_t errlen)
{
    static const char prefix[] = "INFERGATE_";
    if (!envp)
        return 0;
    for (size_t i = 0; envp[i]; i++) {
        const char *e = envp[i];
        const char *eq = strchr(e, '=');
        if (strncmp(e, prefix, sizeof prefix - 1) != 0 || !eq)
            continue;
        size_t n = (size_t)(eq - e);
        const char *value = eq + 1;
        char where[128];
        snprintf(where, sizeof where, "env %.*s", (int)n, e);
        if (n == strlen("INFERGATE_CONFIG") && memcmp(e, "INFERGATE_CONFIG", n) == 0)
            continue;

        int rc;
        if (env_name_is(e, n, "routes")) {
            rc = ig_config_set_keypath(c, "routes", value, where, err, errlen);
        } else if (env_name_is(e, n, "bootstrap")) {
            rc = ig_config_set_keypath(c, "bootstrap", value, where, err, errlen);
        } else {
            const ig_config_key_t *k = NULL;
            for (size_t j = 0; j < ig_config_nkeys && !k; j++) {
                if (env_name_is(e, n, ig_config_keys[j].path))
                    k = &ig_config_keys[j];
            }
            if (!k && is_service_link(e, n))
                continue;
            if (!k)
                return ig_error_fmt(
                    err, errlen, IG_ECONFIG,
                    "%s: not a known setting (a variable is INFERGATE_ plus the key "
                    "path in capitals, e.g. INFERGATE_UPSTREAM_MAX_CONCURRENCY)",
                    where);
            rc = ig_config_set_from_string(c, k, value, where, err, errlen);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Flags
 */

static const struct {
    const char *flag; /* "--listen ADDR" */
    const char *keypath;
    const char *help;
} flag_keys[] = {
    {"--listen ADDR", "listen", "data listener, host:port (listen)"},
    {"--admin-listen ADDR", "admin_listen", "admin listener, host:port (admin_listen)"},
    {"--upstream URL", "upstream.url", "the model server, http://host:port (upstream.url)"},
    {"--max-concurrency N", "upstream.max_concurrency",
     "concurrent calls to the model (upstream.max_concurrency)"},
    {"--max-queue N", "limits.max_queue", "requests waiting before 503 (limits.max_queue)"},
    {"--log-level LEVEL", "log.level", "debug|info|warn|error|off (log.level)"},
};
#define NFLAGS (sizeof flag_keys / sizeof flag_keys[0])

static void print_usage(const char *sub)
{
    printf("usage: infergate %s [-c FILE] [flags]\n\n", sub);
    printf("  -c, --config FILE   JSON configuration file (or INFERGATE_CONFIG)\n");
    for (size_t i = 0; i < NFLAGS; i++)
        printf("  %-19s %s\n", flag_keys[i].flag, flag_keys[i].help);
    printf("  --set KEY=VALUE     set any key path, e.g. --set upstream.timeout_ms=5000 or\n"
           "                      --set 'routes=[{\"match\":\"/*\"}]' (repeatable)\n");
    printf("  -h, --help          this text\n\n");
    printf("Precedence: defaults < config file < INFERGATE_* environment < flags.\n"
           "Every key has a variable: INFERGATE_ + the key path in capitals with '.' as '_'\n"
           "(INFERGATE_UPSTREAM_MAX_CONCURRENCY=8); INFERGATE_ROUTES takes a JSON array.\n"
           "See docs/configuration.md for every key, its default and range.\n");
}

enum { FLAG_CONFIG = -1, FLAG_SET = -2 };

/* Fails with IG_EINVAL quoting an argument the user typed, which may be a
 * URL with a password (a misplaced --upstream value): redacted. The
 * message is `before`, the argument in quotes, then `after`. */
static int quoted_fail(char *err, size_t errlen, const char *before, const char *arg,
                       const char *after)
{
    char *shown = ig_log_redact_url(arg);
    int rc = ig_error_fmt(err, errlen, IG_EINVAL, "%s'%s'%s", before, shown, after);
    free(shown);
    return rc;
}

/* Reads the flag at argv[*i] (advancing past its value). Returns the index
 * into flag_keys, FLAG_CONFIG or FLAG_SET, or a negative IG_E* code. */
static int next_flag(int argc, char **argv, int *i, const char **name, size_t *namelen,
                     const char **value, char *err, size_t errlen)
{
    const char *arg = argv[*i];
    if (arg[0] != '-' || arg[1] == '\0' || strcmp(arg, "--") == 0)
        return quoted_fail(err, errlen, "unexpected argument ", arg, " (see --help)");
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    int kind = IG_EINVAL;
    if ((n == 2 && memcmp(arg, "-c", 2) == 0) || (n == 8 && memcmp(arg, "--config", 8) == 0))
        kind = FLAG_CONFIG;
    else if (n == 5 && memcmp(arg, "--set", 5) == 0)
        kind = FLAG_SET;
    for (size_t k = 0; k < NFLAGS && kind == IG_EINVAL; k++) {
        /* The table's flag text carries its value's name after a space. */
        if (strcspn(flag_keys[k].flag, " ") == n && memcmp(arg, flag_keys[k].flag, n) == 0)
            kind = (int)k;
    }
    if (kind == IG_EINVAL)
        return ig_error_fmt(err, errlen, IG_EINVAL, "unknown flag %.*s (see --help)", (int)n, arg);
    if (eq) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        return ig_error_fmt(err, errlen, IG_EINVAL, "%.*s: requires a value", (int)n, arg);
    }
    *name = arg;
    *namelen = n;
    return kind;
}

static const char *env_value(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

int ig_config_from_args(ig_config_t *c, int argc, char **argv, char *const *envp, char *err,
                        size_t errlen)
{
    const char *sub = argc > 0 && argv[0] ? argv[0] : "serve";
    const char *config_path = NULL, *name, *value;
    size_t namelen;
    int kind;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(sub);
            return IG_EAGAIN;
        }
    }
    /* First pass: syntax, and which file to read. */
    for (int i = 1; i < argc; i++) {
        kind = next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (kind < 0 && kind != FLAG_CONFIG && kind != FLAG_SET)
            return kind;
        if (kind == FLAG_CONFIG)
            config_path = value;
    }
    if (!config_path) {
        config_path = env_value(envp, "INFERGATE_CONFIG");
        if (config_path && config_path[0] == '\0')
            config_path = NULL;
    }
    int rc = 0;
    if (config_path)
        rc = ig_config_merge_file(c, config_path, err, errlen);
    if (rc == 0)
        rc = ig_config_apply_env(c, envp, err, errlen);
    /* Second pass: flags, in order, over everything else. */
    for (int i = 1; i < argc && rc == 0; i++) {
        char where[300];
        kind = next_flag(argc, argv, &i, &name, &namelen, &value, err, errlen);
        if (kind == FLAG_CONFIG)
            continue;
        if (kind == FLAG_SET) {
            const char *eq = strchr(value, '=');
            if (!eq || eq == value)
                return quoted_fail(err, errlen, "--set: expected key.path=value, got ", value, "");
            char key[256];
            size_t klen = (size_t)(eq - value);
            if (klen >= sizeof key)
                return ig_error_fmt(err, errlen, IG_ECONFIG, "--set: key path too long");
            memcpy(key, value, klen);
            key[klen] = '\0';
            snprintf(where, sizeof where, "--set %s", key);
            rc = ig_config_set_keypath(c, key, eq + 1, where, err, errlen);
        } else {
            snprintf(where, sizeof where, "%.*s", (int)namelen, name);
            rc = ig_config_set_keypath(c, flag_keys[kind].keypath, value, where, err, errlen);
        }
    }
    if (rc == 0)
        rc = ig_config_validate(c, err, errlen);
    return rc;
}
