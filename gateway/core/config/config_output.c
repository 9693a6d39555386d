/*
 * config_output.c: the effective configuration as JSON.
 *
 * ig_config_to_json writes every key of the table in config.c, the routes
 * and the raw "bootstrap" tree, in the shape of a config file, so that the
 * output read back gives the same configuration (`infergate check-config`,
 * GET /admin/config). With redaction, credentials in URLs (through
 * ig_log_redact_url, the one URL redactor) and members named like secrets
 * are replaced by "<redacted>". It reads a configuration and never changes
 * one.
 */
#include "infergate/core/config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/base/log.h"

#include "config_int.h"

static bool is_secret_name(const char *name)
{
    static const char *const words[] = {"token", "secret", "password", "key_id"};
    for (size_t i = 0; name && i < sizeof words / sizeof words[0]; i++) {
        if (strcasestr(name, words[i]))
            return true;
    }
    return false;
}

/* Swaps `it` for a string, keeping its member name (cJSON's replace does not). */
static void replace_with_string(cJSON *parent, cJSON *it, const char *s)
{
    cJSON *repl = cJSON_CreateString(s);
    if (!repl) {
        fprintf(stderr, "infergate: out of memory redacting the configuration\n");
        abort();
    }
    repl->string = it->string;
    repl->type |= it->type & cJSON_StringIsConst;
    it->string = NULL;
    cJSON_ReplaceItemViaPointer(parent, it, repl);
}

/* Redacts, in place, members named like secrets and credentials in URLs. */
static void redact_tree(cJSON *node)
{
    for (cJSON *it = node->child; it;) {
        cJSON *next = it->next;
        if (cJSON_IsObject(node) && is_secret_name(it->string) && !cJSON_IsNull(it)) {
            replace_with_string(node, it, IG_LOG_REDACTED);
        } else if (cJSON_IsString(it) && strstr(it->valuestring, "://")) {
            char *r = ig_log_redact_url(it->valuestring);
            if (strcmp(r, it->valuestring) != 0)
                replace_with_string(node, it, r);
            free(r);
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            redact_tree(it);
        }
        it = next;
    }
}

static void add_key(cJSON *obj, const ig_config_t *c, const ig_config_key_t *k, bool redact)
{
    const char *dot = strrchr(k->path, '.');
    const char *leaf = dot ? dot + 1 : k->path;
    switch (k->kind) {
    case IG_CONFIG_K_STR: {
        const char *s = *(char *const *)ig_config_field_ptr(c, k);
        if (!s) {
            cJSON_AddNullToObject(obj, leaf);
        } else if (redact && k->check == ig_config_check_upstream_url) {
            char *r = ig_log_redact_url(s);
            cJSON_AddStringToObject(obj, leaf, r);
            free(r);
        } else {
            cJSON_AddStringToObject(obj, leaf, s);
        }
        break;
    }
    case IG_CONFIG_K_U32:
    case IG_CONFIG_K_U64:
        cJSON_AddNumberToObject(obj, leaf, (double)ig_config_field_uint(c, k));
        break;
    case IG_CONFIG_K_BOOL:
        cJSON_AddBoolToObject(obj, leaf, *(const bool *)ig_config_field_ptr(c, k));
        break;
    case IG_CONFIG_K_LEVEL:
        cJSON_AddStringToObject(
            obj, leaf, ig_log_level_name(*(const ig_log_level_t *)ig_config_field_ptr(c, k)));
        break;
    }
}

static cJSON *routes_to_json(const ig_config_t *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < c->nroutes; i++) {
        const ig_route_conf_t *r = &c->routes[i];
        cJSON *o = cJSON_CreateObject();
        if (r->match)
            cJSON_AddStringToObject(o, "match", r->match);
        cJSON_AddStringToObject(o, "protocol", ig_protocol_name(r->protocol));
        if (r->protocol != IG_PROTO_PASSTHROUGH) {
            cJSON *b = cJSON_AddObjectToObject(o, "batch");
            cJSON_AddNumberToObject(b, "max_size", r->batch.max_size);
            cJSON_AddNumberToObject(b, "max_delay_us", (double)r->batch.max_delay_us);
            cJSON *p = cJSON_AddArrayToObject(b, "preferred_sizes");
            for (size_t j = 0; j < r->batch.n_preferred && j < IG_CONFIG_MAX_PREFERRED; j++)
                cJSON_AddItemToArray(p, cJSON_CreateNumber(r->batch.preferred_sizes[j]));
        }
        cJSON_AddNumberToObject(o, "queue_timeout_ms", (double)r->queue_timeout_ms);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

char *ig_config_to_json(const ig_config_t *c, bool redact)
{
    cJSON *root = cJSON_CreateObject();
    for (size_t i = 0; i < ig_config_nkeys; i++) {
        if (!strchr(ig_config_keys[i].path, '.'))
            add_key(root, c, &ig_config_keys[i], redact);
    }
    for (size_t s = 0; s < ig_config_nsections; s++) {
        if (strcmp(ig_config_sections[s], "routes") == 0) {
            cJSON_AddItemToObject(root, "routes", routes_to_json(c));
            continue;
        }
        cJSON *obj = cJSON_AddObjectToObject(root, ig_config_sections[s]);
        size_t slen = strlen(ig_config_sections[s]);
        for (size_t i = 0; i < ig_config_nkeys; i++) {
            if (strncmp(ig_config_keys[i].path, ig_config_sections[s], slen) == 0 &&
                ig_config_keys[i].path[slen] == '.')
                add_key(obj, c, &ig_config_keys[i], redact);
        }
    }
    if (c->bootstrap) {
        cJSON *b = cJSON_Duplicate(c->bootstrap, true);
        if (b && redact)
            redact_tree(b);
        if (b)
            cJSON_AddItemToObject(root, "bootstrap", b);
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    if (!out) {
        fprintf(stderr, "infergate: out of memory printing the configuration\n");
        abort();
    }
    return out;
}
