/*
 * diff.h: the structural diff of a desired resource against the live one.
 */
#ifndef INFERGATE_BOOTSTRAP_DIFF_H
#define INFERGATE_BOOTSTRAP_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "infergate/base/buf.h"

struct cJSON;

/* Structural diff: appends "  path: live -> desired" lines for every member
 * of `desired` whose value differs in `live`. With `subset`, members only in
 * `live` are ignored (server-filled defaults); otherwise they count too.
 * Paths start with `prefix` ("" or e.g. "spec"). Returns the number of
 * differences. */
size_t ig_bootstrap_diff(const struct cJSON *desired, const struct cJSON *live, bool subset,
                         const char *prefix, ig_buf_t *out);

#endif
