/*
 * diff.c: the structural diff that `bootstrap plan` prints, shared by every
 * backend (diff.h). Its own file so that the backends, which stack.c's
 * registry names, do not call back into stack.c.
 */
#include "infergate/bootstrap/diff.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void diff_value(ig_buf_t *out, const char *path, const cJSON *live, const cJSON *want)
{
    char *l = live ? cJSON_PrintUnformatted(live) : NULL;
    char *w = want ? cJSON_PrintUnformatted(want) : NULL;
    /* Long values (a whole config file) are cut: the path says where. */
    ig_buf_printf(out, "    %s: %.200s%s -> %.200s%s\n", path, l ? l : "(absent)",
                  l && strlen(l) > 200 ? "…" : "", w ? w : "(absent)",
                  w && strlen(w) > 200 ? "…" : "");
    free(l);
    free(w);
}

static size_t diff_rec(const cJSON *want, const cJSON *live, bool subset, const char *path,
                       ig_buf_t *out)
{
    size_t n = 0;
    if (cJSON_IsObject(want) && cJSON_IsObject(live)) {
        for (const cJSON *c = want->child; c; c = c->next) {
            char p[1024];
            snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", c->string);
            const cJSON *lc = cJSON_GetObjectItemCaseSensitive(live, c->string);
            if (!lc) {
                diff_value(out, p, NULL, c);
                n++;
            } else {
                n += diff_rec(c, lc, subset, p, out);
            }
        }
        if (!subset) {
            for (const cJSON *c = live->child; c; c = c->next) {
                if (cJSON_GetObjectItemCaseSensitive(want, c->string))
                    continue;
                char p[1024];
                snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", c->string);
                diff_value(out, p, c, NULL);
                n++;
            }
        }
        return n;
    }
    if (cJSON_IsArray(want) && cJSON_IsArray(live) &&
        cJSON_GetArraySize(want) == cJSON_GetArraySize(live)) {
        int i = 0;
        for (const cJSON *w = want->child, *l = live->child; w && l; w = w->next, l = l->next) {
            char p[1024];
            snprintf(p, sizeof(p), "%s[%d]", path, i++);
            n += diff_rec(w, l, subset, p, out);
        }
        return n;
    }
    if (cJSON_IsNumber(want) && cJSON_IsNumber(live) && want->valuedouble == live->valuedouble)
        return 0;
    if (!cJSON_Compare(want, live, true)) {
        diff_value(out, *path ? path : "(root)", live, want);
        return 1;
    }
    return 0;
}

size_t ig_bootstrap_diff(const cJSON *desired, const cJSON *live, bool subset, const char *prefix,
                         ig_buf_t *out)
{
    return diff_rec(desired, live, subset, prefix ? prefix : "", out);
}
