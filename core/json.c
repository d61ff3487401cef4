/* JSON writer and reader (see json.h). */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- writer ----------------------------------------------------------------- */

void ct_json_init(ct_json *j) { memset(j, 0, sizeof *j); }

void ct_json_free(ct_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

static void put(ct_json *j, const char *s, size_t n)
{
    if (j->failed) return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) {
            j->failed = 1;
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
}

static void puts_(ct_json *j, const char *s) { put(j, s, strlen(s)); }

static void newline(ct_json *j)
{
    if (!j->pretty) return;
    put(j, "\n", 1);
    for (int i = 0; i < j->depth; i++) put(j, "  ", 2);
}

/* Comma and indentation before a value or key at the current level. */
static void before_value(ct_json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0) {
        if (j->count[j->depth]++) put(j, ",", 1);
        if (j->pretty) newline(j);
        else if (j->count[j->depth] > 1) put(j, " ", 1);
    }
}

static void open_(ct_json *j, const char *c)
{
    before_value(j);
    put(j, c, 1);
    if (j->depth + 1 >= CT_JSON_MAX_DEPTH) {
        j->failed = 2;
        return;
    }
    j->count[++j->depth] = 0;
}

static void close_(ct_json *j, const char *c)
{
    if (j->depth <= 0) {
        j->failed = 2;
        return;
    }
    int had = j->count[j->depth];
    j->depth--;
    if (had) newline(j);
    put(j, c, 1);
}

void ct_json_obj(ct_json *j) { open_(j, "{"); }
void ct_json_obj_end(ct_json *j) { close_(j, "}"); }
void ct_json_arr(ct_json *j) { open_(j, "["); }
void ct_json_arr_end(ct_json *j) { close_(j, "]"); }

static void escaped(ct_json *j, const char *s, size_t n)
{
    put(j, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\t') esc = "\\t";
        else if (c == '\r') esc = "\\r";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        }
        if (!esc) continue;
        put(j, s + run, i - run);
        puts_(j, esc);
        run = i + 1;
    }
    put(j, s + run, n - run);
    put(j, "\"", 1);
}

void ct_json_key(ct_json *j, const char *key)
{
    before_value(j);
    escaped(j, key, strlen(key));
    put(j, ": ", 2);
    j->after_key = 1;
}

void ct_json_strn(ct_json *j, const char *s, size_t n)
{
    before_value(j);
    escaped(j, s, n);
}

void ct_json_str(ct_json *j, const char *s) { ct_json_strn(j, s, strlen(s)); }

void ct_json_int(ct_json *j, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    before_value(j);
    puts_(j, b);
}

/* Python's repr of a float has a '.' or an exponent; keep that so readers
 * that distinguish ints from floats see a float. */
static void put_number_text(ct_json *j, char *b)
{
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    before_value(j);
    puts_(j, b);
}

void ct_json_num(ct_json *j, double v)
{
    if (!isfinite(v)) {
        ct_json_null(j);
        return;
    }
    char b[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (strtod(b, NULL) == v) break;
    }
    put_number_text(j, b);
}

void ct_json_numf(ct_json *j, float v)
{
    if (!isfinite(v)) {
        ct_json_null(j);
        return;
    }
    char b[40];
    for (int p = 1; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if (strtof(b, NULL) == v) break;
    }
    put_number_text(j, b);
}

void ct_json_bool(ct_json *j, int v)
{
    before_value(j);
    puts_(j, v ? "true" : "false");
}

void ct_json_null(ct_json *j)
{
    before_value(j);
    puts_(j, "null");
}

void ct_json_raw(ct_json *j, const char *text)
{
    before_value(j);
    puts_(j, text);
}

void ct_json_kints(ct_json *j, const char *k, const int64_t *v, int n)
{
    ct_json_key(j, k);
    ct_json_arr(j);
    for (int i = 0; i < n; i++) ct_json_int(j, v[i]);
    ct_json_arr_end(j);
}

ct_status ct_json_finish(ct_json *j)
{
    if (j->failed == 1) return CT_FAIL(CT_ERR_NOMEM, "JSON text of %zu bytes", j->len);
    if (j->failed || j->depth != 0)
        return CT_FAIL(CT_ERR_RUNTIME, "JSON writer: unbalanced or too deep nesting (depth %d)", j->depth);
    if (!j->buf) put(j, "", 0);
    return j->failed ? CT_FAIL(CT_ERR_NOMEM, "JSON text") : CT_OK;
}

/* --- reader ----------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t n, i;
    const char *name;
    int depth;
} parser;

static ct_status perr(parser *p, const char *what)
{
    if (p->i >= p->n) return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: expected %s, found the end of the text", p->name, p->i, what);
    return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: expected %s, found '%c'", p->name, p->i, what, p->s[p->i]);
}

static void skip_ws(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static ct_json_value *new_value(ct_json_type t, size_t offset)
{
    ct_json_value *v = calloc(1, sizeof *v);
    if (v) {
        v->type = t;
        v->offset = offset;
    }
    return v;
}

void ct_json_value_free(ct_json_value *v)
{
    if (!v) return;
    for (size_t k = 0; (v->type == CT_JSON_ARRAY || v->type == CT_JSON_OBJECT) && k < v->len; k++) {
        ct_json_value_free(v->items[k]);
        if (v->keys) free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t utf8(unsigned cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* p->i at the opening quote; a malloc'd, NUL-terminated copy in *out. */
static ct_status parse_string(parser *p, char **out, size_t *len)
{
    size_t start = ++p->i, cap = 16, k = 0;
    char *o = malloc(cap);
    if (!o) return CT_FAIL(CT_ERR_NOMEM, "JSON string");
    while (1) {
        if (p->i >= p->n) {
            free(o);
            p->i = start - 1;
            return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: string never closed", p->name, start - 1);
        }
        if (k + 8 > cap) {
            char *b = realloc(o, cap *= 2);
            if (!b) { free(o); return CT_FAIL(CT_ERR_NOMEM, "JSON string"); }
            o = b;
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') break;
        if (c < 0x20) { free(o); return perr(p, "a character allowed in a string (control characters must be escaped)"); }
        if (c != '\\') { o[k++] = (char)c; p->i++; continue; }
        if (p->i + 1 >= p->n) { free(o); p->i++; return perr(p, "an escape"); }
        char e = p->s[++p->i];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            o[k++] = map[simple - "\"\\/bfnrt"];
            p->i++;
            continue;
        }
        unsigned cp;
        if (e != 'u' || p->i + 4 >= p->n || !hex4(p->s + p->i + 1, &cp)) { free(o); return perr(p, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"); }
        p->i += 5;
        if (cp >= 0xd800 && cp < 0xdc00 && p->i + 5 < p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
            unsigned lo;
            if (hex4(p->s + p->i + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p->i += 6;
            }
        }
        k += utf8(cp, o + k);
    }
    p->i++;
    o[k] = 0;
    *out = o;
    *len = k;
    return CT_OK;
}

static ct_status parse_value(parser *p, ct_json_value **out);

static ct_status push(ct_json_value *v, ct_json_value *item, char *key)
{
    if ((v->len & (v->len - 1)) == 0) { /* grow at powers of two */
        size_t cap = v->len ? v->len * 2 : 1;
        ct_json_value **it = realloc(v->items, cap * sizeof *it);
        if (!it) return CT_FAIL(CT_ERR_NOMEM, "JSON array");
        v->items = it;
        if (v->type == CT_JSON_OBJECT) {
            char **ks = realloc(v->keys, cap * sizeof *ks);
            if (!ks) return CT_FAIL(CT_ERR_NOMEM, "JSON object");
            v->keys = ks;
        }
    }
    v->items[v->len] = item;
    if (v->type == CT_JSON_OBJECT) v->keys[v->len] = key;
    v->len++;
    return CT_OK;
}

static ct_status parse_container(parser *p, ct_json_value *v)
{
    int obj = v->type == CT_JSON_OBJECT;
    char close = obj ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return CT_OK; }
    while (1) {
        char *key = NULL;
        size_t klen;
        skip_ws(p);
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return perr(p, "a key string");
            CT_TRY(parse_string(p, &key, &klen));
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); return perr(p, "':' after the key"); }
            p->i++;
        }
        ct_json_value *item = NULL;
        ct_status s = parse_value(p, &item);
        if (s == CT_OK) s = push(v, item, key);
        if (s != CT_OK) {
            free(key);
            ct_json_value_free(item);
            return s;
        }
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return CT_OK; }
        return perr(p, obj ? "',' or '}'" : "',' or ']'");
    }
}

static ct_status parse_value(parser *p, ct_json_value **out)
{
    skip_ws(p);
    *out = NULL;
    if (p->i >= p->n) return perr(p, "a value");
    char c = p->s[p->i];
    size_t at = p->i;
    if (c == '{' || c == '[') {
        if (++p->depth > 256) return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: nesting deeper than 256", p->name, at);
        ct_json_value *v = new_value(c == '{' ? CT_JSON_OBJECT : CT_JSON_ARRAY, at);
        if (!v) return CT_FAIL(CT_ERR_NOMEM, "JSON value");
        ct_status s = parse_container(p, v);
        p->depth--;
        if (s != CT_OK) { ct_json_value_free(v); return s; }
        *out = v;
        return CT_OK;
    }
    if (c == '"') {
        ct_json_value *v = new_value(CT_JSON_STRING, at);
        if (!v) return CT_FAIL(CT_ERR_NOMEM, "JSON value");
        ct_status s = parse_string(p, &v->str, &v->len);
        if (s != CT_OK) { ct_json_value_free(v); return s; }
        *out = v;
        return CT_OK;
    }
    static const struct { const char *word; ct_json_type t; double num; } words[] = {
        {"true", CT_JSON_BOOL, 1}, {"false", CT_JSON_BOOL, 0}, {"null", CT_JSON_NULL, 0},
        {"NaN", CT_JSON_NUMBER, NAN}, {"Infinity", CT_JSON_NUMBER, INFINITY}, {"-Infinity", CT_JSON_NUMBER, -INFINITY}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t wl = strlen(words[k].word);
        if (p->n - p->i >= wl && memcmp(p->s + p->i, words[k].word, wl) == 0) {
            *out = new_value(words[k].t, at);
            if (!*out) return CT_FAIL(CT_ERR_NOMEM, "JSON value");
            (*out)->num = words[k].num;
            p->i += wl;
            return CT_OK;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t k = 0;
        while (p->i < p->n && k < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[p->i])) buf[k++] = p->s[p->i++];
        buf[k] = 0;
        char *end;
        double d = strtod(buf, &end);
        if (end != buf + k) { p->i = at; return perr(p, "a number"); }
        *out = new_value(CT_JSON_NUMBER, at);
        if (!*out) return CT_FAIL(CT_ERR_NOMEM, "JSON value");
        (*out)->num = d;
        return CT_OK;
    }
    return perr(p, "a value (object, array, string, number, true, false or null)");
}

ct_status ct_json_parse(const char *text, size_t len, const char *name, ct_json_value **out)
{
    parser p = {.s = text, .n = len, .name = name ? name : "JSON"};
    ct_status s = parse_value(&p, out);
    if (s == CT_OK) {
        skip_ws(&p);
        if (p.i < p.n) {
            s = perr(&p, "the end of the text after the top-level value");
            ct_json_value_free(*out);
            *out = NULL;
        }
    }
    return s;
}

const ct_json_value *ct_json_get(const ct_json_value *v, const char *key)
{
    if (!v || v->type != CT_JSON_OBJECT) return NULL;
    for (size_t k = 0; k < v->len; k++)
        if (strcmp(v->keys[k], key) == 0) return v->items[k];
    return NULL;
}

const ct_json_value *ct_json_get_type(const ct_json_value *v, const char *key, ct_json_type t)
{
    const ct_json_value *m = ct_json_get(v, key);
    return m && m->type == t ? m : NULL;
}

const char *ct_json_get_str(const ct_json_value *v, const char *key)
{
    const ct_json_value *m = ct_json_get_type(v, key, CT_JSON_STRING);
    return m ? m->str : NULL;
}

const char *ct_json_type_name(ct_json_type t)
{
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return (unsigned)t < 6 ? names[t] : "?";
}
