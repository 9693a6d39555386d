/*
 * cli.c: flag matching and value parsing for infergate-bench.
 *
 * Kept apart from the subcommands so that load, compare and sweep reject bad
 * input with the same wording: the flag, what it expects, what it got.
 */
#include "cli.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/error.h"

int ig_cli_match(int argc, char **argv, int *i, const char *name, const char **val, char *err,
                 size_t errlen)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "%s: missing value", name);
        return IG_EINVAL;
    }
    *i += 1;
    *val = argv[*i];
    return 1;
}

int ig_cli_uint(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                char *err, size_t errlen)
{
    uint64_t v = 0;
    size_t len = strlen(s);
    bool ok = len > 0 && len <= 19;
    for (size_t k = 0; ok && k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            ok = false;
        else
            v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (!ok || v < min || v > max) {
        snprintf(err, errlen, "%s: expected an integer from %llu to %llu, got '%s'", flag,
                 (unsigned long long)min, (unsigned long long)max, s);
        return IG_EINVAL;
    }
    *out = v;
    return 0;
}

int ig_cli_number(const char *flag, const char *s, double min, double max, double *out, char *err,
                  size_t errlen)
{
    /* Digits with at most one '.', so "1e3", "inf", "-1" and " 2" are refused
     * before strtod sees them. */
    size_t len = strlen(s), dots = 0, digits = 0;
    bool ok = len > 0 && len < 32;
    for (size_t k = 0; ok && k < len; k++) {
        if (s[k] == '.')
            dots++;
        else if (s[k] >= '0' && s[k] <= '9')
            digits++;
        else
            ok = false;
    }
    double v = 0;
    if (ok && dots <= 1 && digits > 0) {
        char *end = NULL;
        v = strtod(s, &end);
        ok = end && *end == '\0' && isfinite(v);
    } else {
        ok = false;
    }
    if (!ok || v < min || v > max) {
        snprintf(err, errlen, "%s: expected a number from %g to %g, got '%s'", flag, min, max, s);
        return IG_EINVAL;
    }
    *out = v;
    return 0;
}

int ig_cli_uint_list(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     size_t cap, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[24];
        if (len == 0 || len >= sizeof(item)) {
            snprintf(err, errlen, "%s: expected comma-separated integers, got '%s'", flag, s);
            return IG_EINVAL;
        }
        if (*n == cap) {
            snprintf(err, errlen, "%s: at most %zu values, got '%s'", flag, cap, s);
            return IG_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (ig_cli_uint(flag, item, min, max, &out[*n], err, errlen) < 0)
            return IG_EINVAL;
        (*n)++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int ig_cli_split(const char *flag, const char *s, char *store, size_t storelen, char **words,
                 size_t cap, size_t *n, char *err, size_t errlen)
{
    size_t used = 0;
    *n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        size_t len = (size_t)(p - start);
        if (*n == cap || used + len + 1 > storelen) {
            snprintf(err, errlen, "%s: too many or too long words in '%s'", flag, s);
            return IG_ETOOLARGE;
        }
        memcpy(store + used, start, len);
        store[used + len] = '\0';
        words[(*n)++] = store + used;
        used += len + 1;
    }
    return 0;
}
