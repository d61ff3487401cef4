/* A small JSON writer and reader: what Keras's model_config, TF.js's
 * model.json and its GraphDef need, nothing more.
 *
 * Writer: a growable text buffer with a nesting stack that places commas
 * and ": " itself. Strings are escaped as RFC 8259 requires (quote,
 * backslash, control characters as \u00XX; other UTF-8 bytes pass through),
 * so any layer name gives valid JSON. Numbers: integers exactly, floats with
 * the shortest %.17g-or-shorter text that reads back to the same double
 * (non-finite values become null, as JSON has no NaN). Out of memory sets a
 * flag that ct_json_finish reports; callers do not check every call.
 *
 * Reader: parses a whole document into a tree (ct_json_value) owned by one
 * allocation list; errors name the byte offset and what was expected. */
#ifndef CT_JSON_H
#define CT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CT_JSON_MAX_DEPTH 64

typedef struct ct_json {
    char *buf;
    size_t len, cap;
    int depth;
    int count[CT_JSON_MAX_DEPTH]; /* values written at each level (comma placement) */
    int after_key;                /* a key was written; the next value follows it */
    int failed;                   /* out of memory or nesting too deep */
    int pretty;                   /* newlines and indentation (export-json) */
} ct_json;

void ct_json_init(ct_json *j);
void ct_json_free(ct_json *j);
/* CT_OK and the text in j->buf (NUL-terminated, owned by j), or
 * CT_ERR_NOMEM / CT_ERR_RUNTIME when a write failed or nesting is open. */
ct_status ct_json_finish(ct_json *j);

void ct_json_obj(ct_json *j);      /* { */
void ct_json_obj_end(ct_json *j);  /* } */
void ct_json_arr(ct_json *j);      /* [ */
void ct_json_arr_end(ct_json *j);  /* ] */
void ct_json_key(ct_json *j, const char *key);
void ct_json_str(ct_json *j, const char *s);
void ct_json_strn(ct_json *j, const char *s, size_t n);
void ct_json_int(ct_json *j, int64_t v);
void ct_json_num(ct_json *j, double v);
/* A float32 value in the shortest text that reads back to the same float
 * (0.99f is written 0.99, as Python writes the value Keras holds). */
void ct_json_numf(ct_json *j, float v);
void ct_json_bool(ct_json *j, int v);
void ct_json_null(ct_json *j);
/* Pre-formed JSON text as one value (must be valid JSON). */
void ct_json_raw(ct_json *j, const char *text);

/* key + value shorthands for objects */
static inline void ct_json_kstr(ct_json *j, const char *k, const char *v) { ct_json_key(j, k); if (v) ct_json_str(j, v); else ct_json_null(j); }
static inline void ct_json_kint(ct_json *j, const char *k, int64_t v) { ct_json_key(j, k); ct_json_int(j, v); }
static inline void ct_json_knum(ct_json *j, const char *k, double v) { ct_json_key(j, k); ct_json_num(j, v); }
static inline void ct_json_knumf(ct_json *j, const char *k, float v) { ct_json_key(j, k); ct_json_numf(j, v); }
static inline void ct_json_kbool(ct_json *j, const char *k, int v) { ct_json_key(j, k); ct_json_bool(j, v); }
static inline void ct_json_knull(ct_json *j, const char *k) { ct_json_key(j, k); ct_json_null(j); }
/* key: [v0, v1, ...] of integers */
void ct_json_kints(ct_json *j, const char *k, const int64_t *v, int n);

/* --- reader ---------------------------------------------------------------- */

typedef enum ct_json_type {
    CT_JSON_NULL = 0,
    CT_JSON_BOOL,
    CT_JSON_NUMBER,
    CT_JSON_STRING,
    CT_JSON_ARRAY,
    CT_JSON_OBJECT
} ct_json_type;

typedef struct ct_json_value ct_json_value;
struct ct_json_value {
    ct_json_type type;
    double num;            /* NUMBER; BOOL as 0/1 */
    char *str;             /* STRING (NUL-terminated; may hold NULs from \u0000) */
    size_t len;            /* STRING length; ARRAY/OBJECT element count */
    ct_json_value **items; /* ARRAY elements, OBJECT values */
    char **keys;           /* OBJECT keys */
    size_t offset;         /* byte offset in the document (for messages) */
};

/* Parse `text` (len bytes). On error the message is "<name>: offset N:
 * expected ...". *out is freed with ct_json_value_free. */
ct_status ct_json_parse(const char *text, size_t len, const char *name, ct_json_value **out);
void ct_json_value_free(ct_json_value *v);

/* Object member by key, NULL when absent (or v is not an object). */
const ct_json_value *ct_json_get(const ct_json_value *v, const char *key);
/* Member of a given type, NULL when absent or of another type. */
const ct_json_value *ct_json_get_type(const ct_json_value *v, const char *key, ct_json_type t);
/* The string of a member, NULL unless it is a string. */
const char *ct_json_get_str(const ct_json_value *v, const char *key);
const char *ct_json_type_name(ct_json_type t);

#endif
