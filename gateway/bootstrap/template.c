/*
 * template.c: ${VAR} substitution, YAML -> cJSON and cJSON -> YAML.
 *
 * The bootstrap templates are text with ${NAME} placeholders. Values are
 * inserted JSON-string-escaped (templates put string placeholders inside
 * double quotes, which both JSON and YAML read the same way), so a value with
 * a quote, a colon or a newline cannot change the document's structure.
 * The YAML reader uses libyaml's document API and types plain scalars as the
 * Kubernetes API server does (YAML 1.2 core schema). The YAML writer is the
 * one `bootstrap render` prints with. None of this is on the request path.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "infergate/bootstrap/template.h"
#include "infergate/base/error.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 200000
/* Bytes (scalar lengths, plus one per node) that alias expansion may add: the
 * document API shares aliased nodes, but the cJSON tree copies them, so a few
 * KB of nested aliases would otherwise become gigabytes before the node count
 * stops them. A file without aliases is not limited by this. */
#define YAML_MAX_EXPANDED (4u << 20)

void ig_tpl_vars_init(ig_tpl_vars_t *v)
{
    memset(v, 0, sizeof(*v));
}

void ig_tpl_vars_dispose(ig_tpl_vars_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i].name);
        free(v->items[i].value);
    }
    free(v->items);
    memset(v, 0, sizeof(*v));
}

static ig_tpl_var_t *vars_find(const ig_tpl_vars_t *v, const char *name, size_t len)
{
    for (size_t i = 0; i < v->n; i++)
        if (strlen(v->items[i].name) == len && memcmp(v->items[i].name, name, len) == 0)
            return &v->items[i];
    return NULL;
}

void ig_tpl_vars_set(ig_tpl_vars_t *v, const char *name, const char *value)
{
    ig_tpl_var_t *it = vars_find(v, name, strlen(name));
    if (!it) {
        if (v->n == v->cap) {
            v->cap = v->cap ? v->cap * 2 : 32;
            v->items = ig_xrealloc(v->items, v->cap * sizeof(*v->items));
        }
        it = &v->items[v->n++];
        it->name = ig_xstrdup(name);
        it->value = NULL;
    }
    free(it->value);
    it->value = value ? ig_xstrdup(value) : NULL;
}

void ig_tpl_vars_setf(ig_tpl_vars_t *v, const char *name, const char *fmt, ...)
{
    ig_buf_t b;
    ig_buf_init(&b, 0);
    va_list ap;
    va_start(ap, fmt);
    ig_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    ig_tpl_vars_set(v, name, b.base ? b.base : "");
    ig_buf_dispose(&b);
}

const char *ig_tpl_vars_get(const ig_tpl_vars_t *v, const char *name)
{
    const ig_tpl_var_t *it = vars_find(v, name, strlen(name));
    return it ? it->value : NULL;
}

/* Appends `s` escaped as the inside of a JSON string (no quotes). */
static int append_escaped(ig_buf_t *out, const char *s)
{
    ig_buf_t tmp;
    ig_buf_init(&tmp, 0);
    int rc = ig_buf_append_json_str(&tmp, s, strlen(s));
    if (rc == 0 && tmp.len >= 2)
        rc = ig_buf_append(out, tmp.base + 1, tmp.len - 2);
    ig_buf_dispose(&tmp);
    return rc;
}

static bool var_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

int ig_tpl_subst(const char *text, size_t len, const ig_tpl_vars_t *vars, const char *origin,
                 ig_buf_t *out, char *err, size_t errlen)
{
    size_t line = 1;
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        if (c == '\n')
            line++;
        /* Every append is checked: a capped buffer that fills up must fail the
         * call, not drop the rendering's tail and return 0. */
        if (c != '$' || i + 1 >= len || (text[i + 1] != '{' && text[i + 1] != '$')) {
            if (ig_buf_append(out, &c, 1) != 0)
                goto too_large;
            i++;
            continue;
        }
        if (text[i + 1] == '$') {
            if (ig_buf_append(out, "$", 1) != 0)
                goto too_large;
            i += 2;
            continue;
        }
        size_t start = i + 2, j = start;
        while (j < len && var_char(text[j], j == start))
            j++;
        if (j >= len || text[j] != '}' || j == start) {
            snprintf(err, errlen,
                     "%s:%zu: malformed placeholder (want ${NAME} with NAME of "
                     "letters, digits and _)",
                     origin, line);
            return IG_EPARSE;
        }
        const ig_tpl_var_t *v = vars_find(vars, text + start, j - start);
        if (!v) {
            snprintf(err, errlen, "%s:%zu: unknown variable ${%.*s}", origin, line,
                     (int)(j - start), text + start);
            return IG_ENOTFOUND;
        }
        if (!v->value) {
            snprintf(err, errlen, "%s:%zu: variable ${%.*s} is not set", origin, line,
                     (int)(j - start), text + start);
            return IG_ENOTFOUND;
        }
        if (append_escaped(out, v->value) != 0)
            goto too_large;
        i = j + 1;
    }
    return 0;
too_large:
    snprintf(err, errlen, "%s:%zu: output too large", origin, line);
    return IG_ETOOLARGE;
}

/* ---- YAML -> JSON ---------------------------------------------------- */

static bool is_int(const char *s, long long *out)
{
    const char *p = s;
    int base = 10;
    if (*p == '+' || *p == '-')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
        if (p != s)
            return false; /* YAML 1.2: no sign on hex/octal */
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    if (!*p)
        return false;
    for (const char *q = p; *q; q++) {
        if (base == 10 && !isdigit((unsigned char)*q))
            return false;
        if (base == 16 && !isxdigit((unsigned char)*q))
            return false;
        if (base == 8 && (*q < '0' || *q > '7'))
            return false;
    }
    errno = 0;
    long long v = strtoll(base == 10 ? s : p, NULL, base);
    if (errno == ERANGE)
        return false;
    *out = v;
    return true;
}

static bool is_float(const char *s, double *out)
{
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p)
        return false;
    *out = strtod(s, NULL);
    return true;
}

typedef struct {
    yaml_document_t *doc;
    const char *origin;
    char *err;
    size_t errlen;
    size_t nodes;
    unsigned char *seen; /* one per node of doc: converted once already */
    size_t expanded;     /* bytes copied for aliases so far */
} yconv_t;

static cJSON *scalar_to_json(yconv_t *y, const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    /* libyaml gives untagged plain scalars the str tag too, so the style
     * decides: only plain scalars are typed. */
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return cJSON_CreateString(v);
    if (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
        return cJSON_CreateNull();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return cJSON_CreateTrue();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return cJSON_CreateFalse();
    long long i;
    if (is_int(v, &i))
        return cJSON_CreateNumber((double)i);
    double d;
    if (is_float(v, &d)) {
        /* The core schema calls 1e999 a float, but no double holds it: strtod
         * gives infinity, which JSON cannot carry (cJSON prints it as null).
         * Keeping it as a string would change its type; refuse it instead. */
        if (!isfinite(d)) {
            snprintf(y->err, y->errlen, "%s:%zu: number %.40s%s is out of range", y->origin,
                     n->start_mark.line + 1, v, strlen(v) > 40 ? "..." : "");
            return NULL;
        }
        return cJSON_CreateNumber(d);
    }
    return cJSON_CreateString(v);
}

/* Counts `bytes` against the alias expansion budget when `copy`; false when over. */
static bool expand_ok(yconv_t *y, const yaml_node_t *n, bool copy, size_t bytes)
{
    if (!copy)
        return true;
    y->expanded += bytes;
    if (y->expanded <= YAML_MAX_EXPANDED)
        return true;
    snprintf(y->err, y->errlen, "%s:%zu: alias expansion too large (over %u bytes)", y->origin,
             n->start_mark.line + 1, YAML_MAX_EXPANDED);
    return false;
}

/* Converts node `n`; `copy` is true below an alias, whose nodes were converted before. */
static cJSON *node_to_json(yconv_t *y, yaml_node_t *n, int depth, bool copy)
{
    if (depth > YAML_MAX_DEPTH || ++y->nodes > YAML_MAX_NODES) {
        snprintf(y->err, y->errlen, "%s:%zu: document nests too deep or is too large", y->origin,
                 n->start_mark.line + 1);
        return NULL;
    }
    size_t idx = (size_t)(n - y->doc->nodes.start);
    if (y->seen[idx])
        copy = true;
    y->seen[idx] = 1;
    size_t bytes = 1 + (n->type == YAML_SCALAR_NODE ? n->data.scalar.length : 0);
    if (!expand_ok(y, n, copy, bytes))
        return NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_to_json(y, n);
    case YAML_SEQUENCE_NODE: {
        cJSON *arr = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            cJSON *c = node_to_json(y, yaml_document_get_node(y->doc, *it), depth + 1, copy);
            if (!c) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, c);
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        cJSON *obj = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                snprintf(y->err, y->errlen, "%s:%zu: mapping keys must be scalars", y->origin,
                         n->start_mark.line + 1);
                cJSON_Delete(obj);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            /* A key can be an alias too (`*a: 1`). */
            size_t kidx = (size_t)(k - y->doc->nodes.start);
            bool kcopy = copy || y->seen[kidx];
            y->seen[kidx] = 1;
            if (!expand_ok(y, k, kcopy, k->data.scalar.length)) {
                cJSON_Delete(obj);
                return NULL;
            }
            if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
                snprintf(y->err, y->errlen, "%s:%zu: duplicate key \"%s\"", y->origin,
                         k->start_mark.line + 1, key);
                cJSON_Delete(obj);
                return NULL;
            }
            cJSON *c = node_to_json(y, yaml_document_get_node(y->doc, p->value), depth + 1, copy);
            if (!c) {
                cJSON_Delete(obj);
                return NULL;
            }
            cJSON_AddItemToObject(obj, key, c);
        }
        return obj;
    }
    default:
        snprintf(y->err, y->errlen, "%s: empty YAML node", y->origin);
        return NULL;
    }
}

int ig_yaml_to_json(const char *text, size_t len, const char *origin, cJSON **out, char *err,
                    size_t errlen)
{
    yaml_parser_t parser;
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", origin);
        return IG_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    cJSON *docs = cJSON_CreateArray();
    int rc = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(err, errlen, "%s:%zu:%zu: YAML: %s%s%s", origin, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                     parser.context ? parser.context : "");
            rc = IG_EPARSE;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break; /* end of stream */
        }
        size_t nnodes = (size_t)(doc.nodes.top - doc.nodes.start);
        yconv_t y = {&doc, origin, err, errlen, 0, ig_xcalloc(nnodes, 1), 0};
        cJSON *j = node_to_json(&y, root, 0, false);
        free(y.seen);
        yaml_document_delete(&doc);
        if (!j) {
            rc = IG_EPARSE;
            break;
        }
        cJSON_AddItemToArray(docs, j);
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        cJSON_Delete(docs);
        return rc;
    }
    int n = cJSON_GetArraySize(docs);
    if (n == 0) {
        snprintf(err, errlen, "%s: empty YAML document", origin);
        cJSON_Delete(docs);
        return IG_EPARSE;
    }
    if (n == 1) {
        *out = cJSON_DetachItemFromArray(docs, 0);
        cJSON_Delete(docs);
    } else {
        *out = docs;
    }
    return 0;
}

/* ---- JSON -> YAML ---------------------------------------------------- */

/* The length of the UTF-8 sequence at `p` when it is a character that YAML
 * cannot carry raw in a plain or block scalar, else 0: the line breaks U+0085,
 * U+2028 and U+2029, the other C1 controls U+0080..U+009F, U+FFFE and U+FFFF
 * (not printable), and U+FEFF (a byte-order mark, dropped at the stream's start). */
static size_t yaml_odd_char(const unsigned char *p)
{
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
        return 2;
    if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        return 3;
    if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
        return 3;
    if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
        return 3;
    return 0;
}

/* Appends `s` as a double-quoted scalar: JSON's escapes (all of them YAML
 * escapes too), and \u escapes for the characters of yaml_odd_char, which a
 * double-quoted scalar would otherwise fold or refuse. */
static int yaml_quoted(ig_buf_t *out, const char *s)
{
    ig_buf_t tmp;
    ig_buf_init(&tmp, 0);
    int rc = ig_buf_append_json_str(&tmp, s, strlen(s));
    const unsigned char *p = (const unsigned char *)tmp.base, *run = p;
    const unsigned char *end = p + tmp.len;
    while (rc == 0 && p < end) {
        size_t n = yaml_odd_char(p);
        if (!n) {
            p++;
            continue;
        }
        unsigned cp =
            n == 2 ? p[1] : ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
        rc = ig_buf_append(out, (const char *)run, (size_t)(p - run));
        if (rc == 0)
            rc = ig_buf_printf(out, "\\u%04x", cp);
        p += n;
        run = p;
    }
    if (rc == 0)
        rc = ig_buf_append(out, (const char *)run, (size_t)(end - run));
    ig_buf_dispose(&tmp);
    return rc;
}

/* True when `s` can be written as a plain scalar and read back as the same string. */
static bool plain_safe(const char *s)
{
    if (!*s)
        return false;
    long long i;
    double d;
    if (is_int(s, &i) || is_float(s, &d))
        return false;
    static const char *const special[] = {
        "~",   "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
        "yes", "no",   "on",   "off",  "Yes",  "No",   "On",   "Off",   "YES",   "NO",
        "ON",  "OFF",  "y",    "n",    "Y",    "N",    ".inf", ".nan",  "-.inf", NULL};
    for (int k = 0; special[k]; k++)
        if (!strcmp(s, special[k]))
            return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]))
        return false;
    /* At column 0, "..." (and "---") followed by a blank or the end mark the
     * document's end (start); quoted, they cannot. */
    if (!strncmp(s, "...", 3) || !strncmp(s, "---", 3))
        return false;
    size_t n = strlen(s);
    if (s[n - 1] == ' ' || s[n - 1] == ':')
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || yaml_odd_char((const unsigned char *)p))
            return false;
        if (c == ':' && (p[1] == ' '))
            return false;
        if (c == ' ' && p[1] == '#')
            return false;
    }
    return true;
}

/* A multi-line string that a literal block scalar can carry unchanged. */
static bool block_safe(const char *s)
{
    if (!strchr(s, '\n') || s[0] == ' ' || s[0] == '\n')
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\n') || c == 0x7f || yaml_odd_char((const unsigned char *)p))
            return false;
        if (c == ' ' && (p[1] == '\n' || p[1] == '\0'))
            return false; /* trailing spaces would be lost by editors */
        if (c == '\n' && p[1] == '\n')
            return false;
    }
    return true;
}

static void indent(ig_buf_t *out, int n);

/* Writes a number so that it reads back as the same double: an integral value
 * below 2^63 in magnitude as an integer, any other as the shortest of %.15g,
 * %.16g and %.17g that strtod reads back exactly (cJSON's printer stops at 15
 * digits when they are merely close, so 9007199254740993 came out as
 * 9.00719925474099e+15). Infinities and NaN, which the reader never gives and
 * JSON cannot hold, are written as cJSON prints them: null. */
static int yaml_number(double d, ig_buf_t *out)
{
    if (!isfinite(d))
        return ig_buf_append_str(out, "null");
    if (d > -9223372036854775808.0 && d < 9223372036854775808.0 && (double)(long long)d == d)
        return ig_buf_printf(out, "%lld", (long long)d);
    char b[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof(b), "%.*g", prec, d);
        if (strtod(b, NULL) == d)
            break;
    }
    return ig_buf_append_str(out, b);
}

static int yaml_scalar(const cJSON *j, ig_buf_t *out, int ind)
{
    if (cJSON_IsString(j) && ind >= 0 && block_safe(j->valuestring)) {
        const char *s = j->valuestring;
        size_t n = strlen(s);
        ig_buf_append_str(out, s[n - 1] == '\n' ? "|\n" : "|-\n");
        const char *p = s;
        while (*p) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            indent(out, ind);
            ig_buf_append(out, p, l);
            ig_buf_append_str(out, "\n");
            p += l;
            if (*p == '\n')
                p++;
        }
        out->len--; /* the caller adds the final newline */
        out->base[out->len] = '\0';
        return 0;
    }
    if (cJSON_IsString(j)) {
        if (plain_safe(j->valuestring))
            return ig_buf_append_str(out, j->valuestring);
        return yaml_quoted(out, j->valuestring);
    }
    if (cJSON_IsNumber(j))
        return yaml_number(j->valuedouble, out);
    char *p = cJSON_PrintUnformatted(j);
    int rc = ig_buf_append_str(out, p);
    free(p);
    return rc;
}

static bool is_container(const cJSON *j)
{
    return (cJSON_IsObject(j) || cJSON_IsArray(j)) && j->child;
}

static void indent(ig_buf_t *out, int n)
{
    for (int i = 0; i < n; i++)
        ig_buf_append(out, " ", 1);
}

static int yaml_node(const cJSON *j, ig_buf_t *out, int ind, bool inline_first);

static int yaml_key(const char *k, ig_buf_t *out)
{
    if (plain_safe(k))
        return ig_buf_append_str(out, k);
    return yaml_quoted(out, k);
}

/* Writes a value that takes no lines of its own, and ends the line: an empty
 * sequence or mapping in flow style, or a scalar. */
static void yaml_leaf(const cJSON *c, ig_buf_t *out, int ind)
{
    if (cJSON_IsArray(c))
        ig_buf_append_str(out, "[]");
    else if (cJSON_IsObject(c))
        ig_buf_append_str(out, "{}");
    else
        yaml_scalar(c, out, ind);
    ig_buf_append_str(out, "\n");
}

/* Writes a container at indentation `ind`. With `inline_first`, the first
 * line continues the current one (after "- "). */
static int yaml_node(const cJSON *j, ig_buf_t *out, int ind, bool inline_first)
{
    bool first = true;
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!(first && inline_first))
            indent(out, ind);
        first = false;
        if (cJSON_IsArray(j)) {
            ig_buf_append_str(out, "- ");
            if (is_container(c)) {
                yaml_node(c, out, ind + 2, true);
                continue;
            }
            yaml_leaf(c, out, ind + 2);
        } else {
            /* A key longer than YAML's 1024-character limit for implicit
             * keys is written explicitly: "? key", then ": value" on its
             * own line at the same indentation. */
            ig_buf_t key;
            ig_buf_init(&key, 0);
            yaml_key(c->string, &key);
            if (key.len > 1000) {
                ig_buf_append_str(out, "? ");
                ig_buf_append(out, key.base, key.len);
                ig_buf_append_str(out, "\n");
                indent(out, ind);
            } else {
                ig_buf_append(out, key.base ? key.base : "", key.len);
            }
            ig_buf_dispose(&key);
            if (is_container(c)) {
                ig_buf_append_str(out, ":\n");
                /* Sequences inside mappings are indented too: clearer to read. */
                yaml_node(c, out, ind + 2, false);
                continue;
            }
            ig_buf_append_str(out, ": ");
            yaml_leaf(c, out, ind + 2);
        }
    }
    return 0;
}

int ig_json_to_yaml(const cJSON *j, ig_buf_t *out)
{
    if (!is_container(j)) {
        int rc = cJSON_IsArray(j)    ? ig_buf_append_str(out, "[]")
                 : cJSON_IsObject(j) ? ig_buf_append_str(out, "{}")
                                     : yaml_scalar(j, out, -1);
        if (rc == 0)
            rc = ig_buf_append_str(out, "\n");
        return rc;
    }
    return yaml_node(j, out, 0, false);
}
