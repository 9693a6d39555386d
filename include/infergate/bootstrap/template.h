/*
 * template.h: ${VAR} substitution and YAML -> cJSON for bootstrap.
 *
 * Templates (mesh-config/ JSON, k8s/ YAML) are plain text with ${NAME}
 * placeholders. Substitution happens on the text, before parsing; every value
 * is inserted JSON-string-escaped, so templates put string placeholders inside
 * double quotes and a value can never break the document's structure. A
 * placeholder that is not in the variable set, or is in it without a value,
 * is an error naming the variable, the file and the line.
 *
 * The YAML reader types plain scalars the way YAML 1.2's core schema and the
 * Kubernetes API do: integers, floats, true/false and null become JSON
 * numbers, booleans and null; quoted and block scalars stay strings.
 * Not part of the request path.
 */
#ifndef INFERGATE_BOOTSTRAP_TEMPLATE_H
#define INFERGATE_BOOTSTRAP_TEMPLATE_H

#include <stddef.h>

#include "infergate/base/buf.h"

struct cJSON;

typedef struct {
    char *name;  /* owned */
    char *value; /* owned; NULL: known but unset */
} ig_tpl_var_t;

typedef struct {
    ig_tpl_var_t *items; /* owned array */
    size_t n;
    size_t cap;
} ig_tpl_vars_t;

void ig_tpl_vars_init(ig_tpl_vars_t *v);
void ig_tpl_vars_dispose(ig_tpl_vars_t *v);

/* Sets (or replaces) NAME. `value` is copied; NULL marks the variable known
 * but unset. */
void ig_tpl_vars_set(ig_tpl_vars_t *v, const char *name, const char *value);
void ig_tpl_vars_setf(ig_tpl_vars_t *v, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the value of NAME, or NULL when unknown or unset. */
const char *ig_tpl_vars_get(const ig_tpl_vars_t *v, const char *name);

/* Substitutes every ${NAME} of `text` into `out` (appended). `$$` is a
 * literal `$`; a `$` not followed by `{` or `$` is copied as is. `origin`
 * names the file in errors, e.g. "k8s/deployment.yaml:12: unknown variable
 * ${FOO}". Returns 0, IG_ENOTFOUND (unknown or unset variable), IG_EPARSE
 * (unterminated or empty ${), with `err` filled. */
int ig_tpl_subst(const char *text, size_t len, const ig_tpl_vars_t *vars, const char *origin,
                 ig_buf_t *out, char *err, size_t errlen);

/* Parses a YAML stream into JSON. With exactly one document *out is that
 * document; a stream of several documents gives an array of them. The caller
 * frees *out with cJSON_Delete. Errors name `origin`, line and column.
 * Rejects duplicate keys, non-scalar keys and nesting deeper than 64.
 * Returns 0 or IG_EPARSE. */
int ig_yaml_to_json(const char *text, size_t len, const char *origin, struct cJSON **out, char *err,
                    size_t errlen);

/* Writes `j` as block YAML (two-space indent; strings quoted when a plain
 * scalar would be read back as another type). Appends to `out`. */
int ig_json_to_yaml(const struct cJSON *j, ig_buf_t *out);

/* One embedded template by its path ("k8s/deployment.yaml"), or NULL. */
const char *ig_tpl_builtin(const char *path);

#endif
