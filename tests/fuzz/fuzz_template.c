/*
 * fuzz_template.c: libFuzzer target for bootstrap's ${VAR} substitution
 * (ig_tpl_subst and the variable table in gateway/bootstrap/template.c).
 *
 * An input is a variable table, then a template. The table is a list of
 * entries separated by NUL bytes and ended by an empty entry (so "\0\0"
 * separates it from the template): "NAME=VALUE" sets NAME, a bare "NAME"
 * marks it known but unset, and a later entry for the same NAME replaces an
 * earlier one. An input without "\0\0" is all template, with a fixed table
 * (names set to quotes, newlines, "${", "$$", bytes that are not UTF-8, an
 * empty value, and one known-but-unset name). The input's hash decides
 * whether the output buffer already holds a prefix and whether it is capped.
 *
 * The harness carries its own renderer, written from bootstrap_template.h:
 * "$$" is one literal '$'; "${NAME}" with NAME of letters, digits and '_'
 * (not starting with a digit) is the value, JSON-string-escaped without the
 * quotes; a '$' followed by anything else, or last, is copied; "${" not
 * closed that way is IG_EPARSE; an unknown or unset NAME is IG_ENOTFOUND.
 * Invariants:
 *  - the result code is the reference's: 0, IG_EPARSE, IG_ENOTFOUND, or
 *    IG_ETOOLARGE exactly when the rendering would pass a capped buffer's
 *    limit (before any placeholder error further on);
 *  - on success the buffer holds its prefix and then exactly the reference
 *    rendering, so a `${` in the output never comes from the template's own
 *    placeholder syntax: it is a "$$" escape followed by '{', or bytes of a
 *    value (escaping leaves '$' and '{' alone). The harness also checks this
 *    directly: a template without "$$" whose used values hold no '$' renders
 *    with no "${" at all;
 *  - every inserted value is a valid JSON string body: in quotes it parses
 *    back to the value (when the value is UTF-8);
 *  - an error has a message "fuzz.tpl:LINE: ..." with the line of the bad
 *    placeholder, and an unknown or unset one is named as ${NAME};
 *  - rendering the same input again gives the same code, bytes and message;
 *  - ig_tpl_vars_get agrees with the table (last entry wins, unset is NULL).
 *
 * IG_FUZZ_TEMPLATE_NO_CAP=1 turns the capped runs off, to keep fuzzing the
 * rest while the cap bug kept in tests/fuzz/regressions/fuzz_template/ is
 * open (a quarter of all inputs hit it).
 */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/bootstrap/template.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"

#define ORIGIN "fuzz.tpl"
#define MAX_VARS 64
#define PREFIX "pre$"

typedef struct {
    char *name;  /* owned */
    char *value; /* owned; NULL: known but unset */
} ref_var_t;

typedef struct {
    ref_var_t v[MAX_VARS];
    size_t n;
} ref_table_t;

/* The reference's verdict for one rendering. */
typedef struct {
    int rc;
    size_t line;      /* of the failing placeholder */
    const char *name; /* of the unknown or unset variable, inside the template */
    size_t name_len;
    ig_buf_t out;     /* the rendering (prefix included) */
    bool used_dollar; /* a value holding '$' was inserted */
} ref_result_t;

static const char *const default_table[][2] = {
    {"NAME", "infergate"},
    {"PORT", "8080"},
    {"IMAGE", "ghcr.io/acme/model:1.2"},
    {"QUOTE", "a\"b\\c"},
    {"LINES", "one\ntwo\r\n\tthree"},
    {"DOLLAR", "${NAME}$$"},
    {"EMPTY", ""},
    {"LATIN1", "caf\xe9"},
    {"UTF8", "caf\xc3\xa9 \xe2\x82\xac"},
    {"CTRL", "\x01\x1f\x7f"},
    {"UNSET", NULL},
    {"_x9", "u"},
};

static ref_var_t *ref_find(ref_table_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->v[i].name) == len && memcmp(t->v[i].name, name, len) == 0)
            return &t->v[i];
    return NULL;
}

static void table_set(ref_table_t *t, ig_tpl_vars_t *vars, const char *name, const char *value)
{
    ig_tpl_vars_set(vars, name, value);
    ref_var_t *r = ref_find(t, name, strlen(name));
    if (!r) {
        FUZZ_CHECK(t->n < MAX_VARS, "the reference table is full"); /* read_table stops first */
        r = &t->v[t->n++];
        r->name = strdup(name);
        FUZZ_CHECK(r->name != NULL, "out of memory");
        r->value = NULL;
    }
    free(r->value);
    r->value = value ? strdup(value) : NULL;
    FUZZ_CHECK(!value || r->value, "out of memory");
}

/* Reads the table part of the input; returns the offset of the template. */
static size_t read_table(const uint8_t *data, size_t size, ref_table_t *t, ig_tpl_vars_t *vars)
{
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == 0 && data[i + 1] == 0) {
            end = data + i;
            break;
        }
    if (!end) {
        for (size_t i = 0; i < sizeof default_table / sizeof default_table[0]; i++)
            table_set(t, vars, default_table[i][0], default_table[i][1]);
        return 0;
    }
    const char *p = (const char *)data;
    while (p < (const char *)end) {
        size_t n = strlen(p); /* entries end at a NUL, and one is at `end` */
        char *entry = strndup(p, n);
        FUZZ_CHECK(entry != NULL, "out of memory");
        char *eq = strchr(entry, '=');
        if (eq)
            *eq = '\0';
        /* Past MAX_VARS names, further new names are left out of both tables. */
        if (t->n < MAX_VARS || ref_find(t, entry, strlen(entry)))
            table_set(t, vars, entry, eq ? eq + 1 : NULL);
        free(entry);
        p += n + 1;
    }
    return (size_t)(end - data) + 2;
}

static bool var_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* Appends `n` bytes unless the cap forbids; false when it does. */
static bool ref_put(ref_result_t *r, size_t cap, const char *s, size_t n)
{
    if (cap && r->out.len + n > cap)
        return false;
    FUZZ_CHECK(ig_buf_append(&r->out, s, n) == 0, "the reference buffer is uncapped");
    return true;
}

/* The escaped value, checked to be a JSON string body that reads back as the value. */
static void escape_value(const char *value, ig_buf_t *esc)
{
    ig_buf_reset(esc);
    FUZZ_CHECK(ig_buf_append_json_str(esc, value, strlen(value)) == 0, "escape failed");
    FUZZ_CHECK(esc->len >= 2 && esc->base[0] == '"' && esc->base[esc->len - 1] == '"',
               "a JSON string without its quotes");
    if (!ig_utf8_valid(value, strlen(value), NULL))
        return;
    cJSON *j = cJSON_ParseWithLength(esc->base, esc->len);
    FUZZ_CHECK(cJSON_IsString(j) && strcmp(j->valuestring, value) == 0,
               "the escaped value does not read back as the value: %s", esc->base);
    cJSON_Delete(j);
}

static void ref_render(const char *text, size_t len, ref_table_t *t, size_t cap, bool prefix,
                       ref_result_t *r)
{
    memset(r, 0, sizeof *r);
    ig_buf_init(&r->out, 0);
    ig_buf_t esc;
    ig_buf_init(&esc, 0);
    if (prefix)
        FUZZ_CHECK(ref_put(r, 0, PREFIX, strlen(PREFIX)), "prefix");
    size_t line = 1;
    for (size_t i = 0; i < len;) {
        bool dollar = text[i] == '$' && i + 1 < len;
        if (dollar && text[i + 1] == '$') {
            if (!ref_put(r, cap, "$", 1))
                goto too_large;
            i += 2;
            continue;
        }
        if (!dollar || text[i + 1] != '{') {
            if (text[i] == '\n')
                line++;
            if (!ref_put(r, cap, text + i, 1))
                goto too_large;
            i++;
            continue;
        }
        size_t start = i + 2, j = start;
        while (j < len && var_char(text[j], j == start))
            j++;
        r->line = line;
        if (j == start || j >= len || text[j] != '}') {
            r->rc = IG_EPARSE;
            goto out;
        }
        ref_var_t *v = ref_find(t, text + start, j - start);
        if (!v || !v->value) {
            r->rc = IG_ENOTFOUND;
            r->name = text + start;
            r->name_len = j - start;
            goto out;
        }
        escape_value(v->value, &esc);
        if (!ref_put(r, cap, esc.base + 1, esc.len - 2))
            goto too_large;
        if (strchr(v->value, '$'))
            r->used_dollar = true;
        i = j + 1;
    }
    goto out;
too_large:
    r->rc = IG_ETOOLARGE;
    r->line = line;
out:
    ig_buf_dispose(&esc);
}

typedef struct {
    int rc;
    ig_buf_t out;
    char err[256];
} run_t;

static void run(const char *text, size_t len, const ig_tpl_vars_t *vars, size_t cap, bool prefix,
                run_t *r)
{
    ig_buf_init(&r->out, cap);
    if (prefix)
        FUZZ_CHECK(ig_buf_append_str(&r->out, PREFIX) == 0, "prefix over the cap");
    memset(r->err, 0, sizeof r->err);
    r->rc = ig_tpl_subst(text, len, vars, ORIGIN, &r->out, r->err, sizeof r->err);
}

static void check_error(const run_t *got, const ref_result_t *want)
{
    char head[64];
    int n = snprintf(head, sizeof head, ORIGIN ":%zu: ", want->line);
    FUZZ_CHECK(strncmp(got->err, head, (size_t)n) == 0,
               "the message does not start with '%s': '%s'", head, got->err);
    FUZZ_CHECK(strlen(got->err) > (size_t)n, "an error without a message: '%s'", got->err);
    if (want->rc == IG_ENOTFOUND && want->name_len < 100) {
        char named[128];
        snprintf(named, sizeof named, "${%.*s}", (int)want->name_len, want->name);
        FUZZ_CHECK(strstr(got->err, named) != NULL, "the message does not name %s: '%s'", named,
                   got->err);
    }
}

static bool same_bytes(const ig_buf_t *a, const ig_buf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

static bool has_seq(const char *s, size_t len, const char *seq)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == seq[0] && s[i + 1] == seq[1])
            return true;
    return false;
}

static bool no_cap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("IG_FUZZ_TEMPLATE_NO_CAP");
    no_cap = e && strcmp(e, "1") == 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ref_table_t table = {.n = 0};
    ig_tpl_vars_t vars;
    ig_tpl_vars_init(&vars);
    size_t off = read_table(data, size, &table, &vars);
    const char *text = (const char *)data + off;
    size_t len = size - off;

    for (size_t i = 0; i < table.n; i++) {
        const char *got = ig_tpl_vars_get(&vars, table.v[i].name);
        const char *want = table.v[i].value;
        FUZZ_CHECK(want ? got && strcmp(got, want) == 0 : got == NULL,
                   "ig_tpl_vars_get('%s') disagrees with the table", table.v[i].name);
    }

    uint64_t h = fuzz_hash(data, size);
    bool prefix = h & 1;
    ref_result_t want;
    ref_render(text, len, &table, 0, prefix, &want);
    size_t cap = 0;
    if ((h >> 1) % 4 == 0 && !no_cap) {
        /* A cap somewhere between the prefix and just past the whole rendering. */
        size_t lo = prefix ? strlen(PREFIX) : 1; /* the rendering holds at least lo - 1 */
        cap = lo + (size_t)((h >> 8) % (want.out.len + 2 - lo));
        ig_buf_dispose(&want.out);
        ref_render(text, len, &table, cap, prefix, &want);
    }

    run_t got, again;
    run(text, len, &vars, cap, prefix, &got);
    FUZZ_CHECK(got.rc == want.rc, "returned %d (%s), the reference %d (%s); message '%s'", got.rc,
               ig_err_name(got.rc), want.rc, ig_err_name(want.rc), got.err);
    if (got.rc == 0) {
        FUZZ_CHECK(same_bytes(&got.out, &want.out),
                   "the rendering differs from the reference (%zu vs %zu bytes, cap %zu)",
                   got.out.len, want.out.len, cap);
        size_t from = prefix ? strlen(PREFIX) : 0;
        if (!has_seq(text, len, "$$") && !want.used_dollar && got.out.len > from)
            FUZZ_CHECK(!has_seq(got.out.base + from, got.out.len - from, "${"),
                       "a '${' in the output that no value or '$$' put there");
    } else {
        check_error(&got, &want);
    }

    run(text, len, &vars, cap, prefix, &again);
    FUZZ_CHECK(again.rc == got.rc && strcmp(again.err, got.err) == 0,
               "a second rendering failed differently: '%s' vs '%s'", got.err, again.err);
    if (got.rc == 0)
        FUZZ_CHECK(same_bytes(&again.out, &got.out), "a second rendering gave other bytes");

    ig_buf_dispose(&again.out);
    ig_buf_dispose(&got.out);
    ig_buf_dispose(&want.out);
    for (size_t i = 0; i < table.n; i++) {
        free(table.v[i].name);
        free(table.v[i].value);
    }
    ig_tpl_vars_dispose(&vars);
    return 0;
}
