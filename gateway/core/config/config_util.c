/*
 * config_util.c: the small helpers every file of the config module uses:
 * describing a JSON value for messages, path checks. The bottom of the
 * module: it calls none of its siblings, so they never call each other in
 * a circle through it.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "infergate/base/log.h"

/* Describes a JSON value for "got …" in messages. */
const char *ig_config_describe(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v)) {
        char *shown = ig_log_redact_url(v->valuestring); /* may be a URL with a password */
        snprintf(buf, len, "the string '%s'", shown);
        free(shown);
    } else if (cJSON_IsNumber(v) && fabs(v->valuedouble) < 1e15 &&
               v->valuedouble == floor(v->valuedouble))
        snprintf(buf, len, "%.0f", v->valuedouble);
    else if (cJSON_IsNumber(v))
        snprintf(buf, len, "%g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(buf, len, "null");
    else if (cJSON_IsArray(v))
        snprintf(buf, len, "an array");
    else
        snprintf(buf, len, "an object");
    return buf;
}

bool ig_config_valid_path_chars(const char *p)
{
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch == 0x7f || ch == '#')
            return false;
    }
    return true;
}

const char *ig_config_check_abs_path(const char *s)
{
    if (s[0] != '/')
        return "must be an absolute path starting with '/'";
    if (!ig_config_valid_path_chars(s))
        return "must not contain spaces, control characters or '#'";
    return NULL;
}
