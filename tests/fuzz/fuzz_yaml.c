/*
 * fuzz_yaml.c: libFuzzer target for bootstrap's YAML reader and writer
 * (ig_yaml_to_json and ig_json_to_yaml in gateway/bootstrap/template.c),
 * which read the k8s/ templates after substitution and kubeconfig files, and
 * print `bootstrap render`'s output.
 *
 * An input is a YAML stream; when it is also a JSON text that cJSON reads
 * whole, it is used as JSON too. Invariants, from bootstrap_template.h:
 *  - a rejected stream gives IG_EPARSE, no value, and a message that starts
 *    with the origin's name;
 *  - reading is deterministic: a second read gives an equal value;
 *  - an accepted stream round-trips: ig_json_to_yaml writes the value, the
 *    reader accepts what it wrote and gives a value equal to the first (same
 *    types, numbers equal as doubles, same strings, same members in the same
 *    order), and writing that again gives the same bytes (unless the value
 *    holds a -0, written "-0" and read back as the integer 0);
 *  - JSON is YAML here: when cJSON and the YAML reader both accept an input,
 *    they give equal values;
 *  - a JSON value within the reader's limits (no duplicate member names,
 *    nesting and node count as in template.c, finite numbers, UTF-8 strings:
 *    what a JSON text per RFC 8259 can say) round-trips through the writer and
 *    the reader to an equal value, as `bootstrap render` needs for the
 *    mesh-config/ JSON templates.
 * "Equal" is strict: numbers compare with ==. Open bugs, each kept in
 * tests/fuzz/regressions/fuzz_yaml/, break these invariants:
 *  - 1e999 reads as infinity, which cJSON prints (and so the writer writes)
 *    as null;
 *  - an integer past 2^53 such as 9007199254740993 is printed with 15 digits
 *    (9.00719925474099e+15), another number;
 *  - the writer puts out raw the characters YAML reads as line breaks
 *    (U+0085, U+2028, U+2029), refuses (U+0080..U+009F, U+FFFE, U+FFFF) or
 *    drops as a byte-order mark at the start of the stream (U+FEFF);
 *  - a top-level string or key "..." or "... x" is written plain at the start
 *    of a line, where it ends the document.
 * To fuzz past them, IG_FUZZ_YAML_KNOWN=1 compares numbers as cJSON prints
 * them, lets a non-finite number come back as null, and skips the round trip
 * of values holding those characters or such a string.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "infergate/bootstrap/template.h"
#include "infergate/base/buf.h"
#include "infergate/base/error.h"

#define ORIGIN "fuzz.yaml"
/* template.c's limits: nesting deeper than 64 below the root, more than 200000 nodes. */
#define MAX_DEPTH 64
#define MAX_NODES 200000

static bool known;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("IG_FUZZ_YAML_KNOWN");
    known = e && strcmp(e, "1") == 0;
    return 0;
}

/* The number as cJSON prints it (what ig_json_to_yaml writes). */
static bool same_print(const cJSON *a, const cJSON *b)
{
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    FUZZ_CHECK(x && y, "cJSON cannot print a number");
    bool same = strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

static bool json_equal(const cJSON *a, const cJSON *b)
{
    if (known && cJSON_IsNumber(a) && !isfinite(a->valuedouble))
        return cJSON_IsNull(b) || (cJSON_IsNumber(b) && same_print(a, b));
    if ((a->type & 0xff) != (b->type & 0xff))
        return false;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble || (known && same_print(a, b));
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
        return true;
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next) {
        if (cJSON_IsObject(a) && strcmp(x->string, y->string) != 0)
            return false;
        if (!json_equal(x, y))
            return false;
    }
    return !x && !y;
}

/* Whether a cJSON value is one the reader could give: see the opening comment. */
static bool within_limits(const cJSON *j, int depth, size_t *nodes)
{
    if (depth > MAX_DEPTH || ++*nodes > MAX_NODES)
        return false;
    if (cJSON_IsNumber(j))
        return isfinite(j->valuedouble);
    if (cJSON_IsString(j))
        return ig_utf8_valid(j->valuestring, strlen(j->valuestring), NULL);
    for (const cJSON *c = j->child; c; c = c->next) {
        if (cJSON_IsObject(j)) {
            if (!ig_utf8_valid(c->string, strlen(c->string), NULL))
                return false;
            for (const cJSON *d = j->child; d != c; d = d->next)
                if (strcmp(d->string, c->string) == 0)
                    return false;
        }
        if (!within_limits(c, depth + 1, nodes))
            return false;
    }
    return true;
}

static char *print(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    FUZZ_CHECK(s != NULL, "cJSON cannot print the value");
    return s;
}

/* Whether `s` holds U+0080..U+009F, U+2028, U+2029, U+FEFF, U+FFFE or U+FFFF (UTF-8). */
static bool odd_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return true;
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
            return true;
        if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
            return true;
        if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
            return true;
    }
    return false;
}

/* Whether a number in `j` is -0, which cJSON prints as "-0" and YAML reads as the integer 0. */
static bool has_negative_zero(const cJSON *j)
{
    if (cJSON_IsNumber(j))
        return j->valuedouble == 0 && signbit(j->valuedouble);
    for (const cJSON *c = j->child; c; c = c->next)
        if (has_negative_zero(c))
            return true;
    return false;
}

static bool has_odd_chars(const cJSON *j)
{
    if (j->string && odd_chars(j->string))
        return true;
    if (cJSON_IsString(j))
        return odd_chars(j->valuestring);
    for (const cJSON *c = j->child; c; c = c->next)
        if (has_odd_chars(c))
            return true;
    return false;
}

/* Whether a top-level scalar or a top-level key of `j` starts with the document end marker. */
static bool has_doc_end(const cJSON *j)
{
    const char *s = cJSON_IsString(j) ? j->valuestring : NULL;
    if (cJSON_IsObject(j))
        for (const cJSON *c = j->child; c; c = c->next)
            if (strncmp(c->string, "...", 3) == 0)
                return true;
    return s && strncmp(s, "...", 3) == 0;
}

/* Writes `j` as YAML, reads it back, and checks the value and a second writing. */
static void round_trip(const cJSON *j, const char *what)
{
    if (known && (has_odd_chars(j) || has_doc_end(j)))
        return;
    ig_buf_t y;
    ig_buf_init(&y, 0);
    FUZZ_CHECK(ig_json_to_yaml(j, &y) == 0, "%s: ig_json_to_yaml failed", what);
    FUZZ_CHECK(y.len > 0 && y.base[y.len - 1] == '\n', "%s: the YAML does not end a line", what);
    cJSON *back = NULL;
    char err[512] = "";
    int rc = ig_yaml_to_json(y.base, y.len, "written.yaml", &back, err, sizeof err);
    FUZZ_CHECK(rc == 0, "%s: the written YAML does not read back: %s\n---\n%s---", what, err,
               y.base);
    if (!json_equal(j, back)) {
        char *a = print(j), *b = print(back);
        FUZZ_CHECK(false, "%s: the value changed through YAML:\n%s\n---\n%s---\n%s", what, a,
                   y.base, b);
    }
    ig_buf_t y2;
    ig_buf_init(&y2, 0);
    FUZZ_CHECK(ig_json_to_yaml(back, &y2) == 0, "%s: writing the value read back failed", what);
    FUZZ_CHECK(has_negative_zero(j) || (y2.len == y.len && memcmp(y2.base, y.base, y.len) == 0),
               "%s: writing again gave other YAML:\n%s---\n%s---", what, y.base, y2.base);
    ig_buf_dispose(&y2);
    cJSON_Delete(back);
    ig_buf_dispose(&y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    cJSON *j = (cJSON *)1; /* the reader must set it */
    char err[512] = "";
    int rc = ig_yaml_to_json(text, size, ORIGIN, &j, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_EPARSE, "returned %d (%s): %s", rc, ig_err_name(rc), err);
        FUZZ_CHECK(j == NULL, "a failed read left a value");
        FUZZ_CHECK(strncmp(err, ORIGIN ":", strlen(ORIGIN) + 1) == 0,
                   "the message does not name the origin: '%s'", err);
        j = NULL;
    } else {
        FUZZ_CHECK(j != NULL, "accepted without a value");
        cJSON *again = NULL;
        char err2[512] = "";
        FUZZ_CHECK(ig_yaml_to_json(text, size, ORIGIN, &again, err2, sizeof err2) == 0,
                   "a second read failed: %s", err2);
        FUZZ_CHECK(json_equal(j, again), "a second read gave another value");
        cJSON_Delete(again);
        round_trip(j, "yaml");
    }

    /* The same bytes as JSON. cJSON wants a NUL after the text. */
    char *copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    copy[size] = '\0';
    cJSON *j0 = cJSON_ParseWithLengthOpts(copy, size, NULL, 1);
    if (j0) {
        if (j && !json_equal(j0, j)) {
            char *a = print(j0), *b = print(j);
            FUZZ_CHECK(false, "cJSON and the YAML reader read the JSON differently:\n%s\n---\n%s",
                       a, b);
        }
        size_t nodes = 0;
        if (within_limits(j0, 0, &nodes))
            round_trip(j0, "json");
        cJSON_Delete(j0);
    }
    free(copy);
    cJSON_Delete(j);
    return 0;
}
