/* Text sources and the TextVectorization vocabulary (see text.h for the
 * Keras rules followed). Records are tokenized once at open into token
 * ids held in memory; get(i) copies a row. */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsource.h"
#include "sources.h"

/* ---- vocabulary: tokens plus an open-addressing hash ------------------- */

typedef struct tok {
    char *s;
    size_t len;
    int64_t count;
} tok;

struct ct_vocab {
    tok *t;            /* t[0] "", t[1] "[UNK]", then learned tokens */
    int64_t n, cap;
    int64_t *slot;     /* hash slots: token index or -1 */
    int64_t nslot;
    char **classes;
    int64_t n_classes;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int64_t find_slot(const ct_vocab *v, const char *s, size_t len)
{
    int64_t i = (int64_t)(hash_bytes(s, len) & (uint64_t)(v->nslot - 1));
    for (;;) {
        int64_t k = v->slot[i];
        if (k < 0 || (v->t[k].len == len && memcmp(v->t[k].s, s, len) == 0)) return i;
        i = (i + 1) & (v->nslot - 1);
    }
}

static ct_status rehash(ct_vocab *v, int64_t nslot)
{
    int64_t *ns = malloc(sizeof(int64_t) * (size_t)nslot);
    if (!ns) return CT_FAIL(CT_ERR_NOMEM, "vocabulary: out of memory");
    free(v->slot);
    v->slot = ns;
    v->nslot = nslot;
    for (int64_t i = 0; i < nslot; i++) ns[i] = -1;
    for (int64_t k = 0; k < v->n; k++) v->slot[find_slot(v, v->t[k].s, v->t[k].len)] = k;
    return CT_OK;
}

/* Index of token s (added with count 0 when new), or -1 on no memory. */
static int64_t vocab_add(ct_vocab *v, const char *s, size_t len)
{
    if (2 * (v->n + 1) > v->nslot && rehash(v, v->nslot ? 2 * v->nslot : 1024) != CT_OK) return -1;
    int64_t i = find_slot(v, s, len);
    if (v->slot[i] >= 0) return v->slot[i];
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 256;
        tok *t = realloc(v->t, sizeof(tok) * (size_t)cap);
        if (!t) return -1;
        v->t = t, v->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = 0;
    v->t[v->n] = (tok){c, len, 0};
    v->slot[i] = v->n;
    return v->n++;
}

static ct_vocab *vocab_new(void)
{
    ct_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    if (vocab_add(v, "", 0) != 0 || vocab_add(v, "[UNK]", 5) != 1) {
        ct_vocab_destroy(v);
        return NULL;
    }
    return v;
}

void ct_vocab_destroy(ct_vocab *v)
{
    if (!v) return;
    for (int64_t k = 0; k < v->n; k++) free(v->t[k].s);
    for (int64_t k = 0; k < v->n_classes; k++) free(v->classes[k]);
    free(v->classes);
    free(v->t);
    free(v->slot);
    free(v);
}

int64_t ct_vocab_size(const ct_vocab *v) { return v->n; }

const char *ct_vocab_token(const ct_vocab *v, int64_t i, size_t *len)
{
    if (i < 0 || i >= v->n) return NULL;
    if (len) *len = v->t[i].len;
    return v->t[i].s;
}

int64_t ct_vocab_lookup(const ct_vocab *v, const char *s, size_t len)
{
    int64_t k = v->slot[find_slot(v, s, len)];
    return k >= 2 ? k : 1;
}

int64_t ct_vocab_class_count(const ct_vocab *v) { return v->n_classes; }
const char *ct_vocab_class(const ct_vocab *v, int64_t i) { return i >= 0 && i < v->n_classes ? v->classes[i] : NULL; }

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Keras's order: count descending, ties by token bytes descending. */
static int keras_order(const void *pa, const void *pb)
{
    const tok *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return -bytes_cmp(a->s, a->len, b->s, b->len);
}

/* Sort the counted tokens into Keras's order, keep max_tokens - 2 of them. */
static ct_status vocab_finish(ct_vocab *v, int64_t max_tokens)
{
    qsort(v->t + 2, (size_t)(v->n - 2), sizeof(tok), keras_order);
    int64_t keep = v->n;
    if (max_tokens > 0 && keep > max_tokens) keep = max_tokens;
    for (int64_t k = keep; k < v->n; k++) free(v->t[k].s);
    v->n = keep;
    return rehash(v, v->nslot);
}

/* ---- tokenizing -------------------------------------------------------- */

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static int is_punct(unsigned char c) { return c >= 33 && c <= 126 && !(c >= '0' && c <= '9') && !((c | 32) >= 'a' && (c | 32) <= 'z'); }

/* Standardize s into buf (at most len bytes); returns the new length. */
static size_t standardize(ct_text_standardize mode, const char *s, size_t len, char *buf)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (mode != CT_TEXT_NONE && c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (mode == CT_TEXT_STRIP && is_punct(c)) continue;
        buf[n++] = (char)c;
    }
    return n;
}

/* Length of the UTF-8 character at s (1 for a stray byte). */
static size_t utf8_len(const char *s, size_t left)
{
    unsigned char c = (unsigned char)*s;
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return n <= left ? n : 1;
}

typedef void (*tok_fn)(void *ctx, const char *s, size_t len);

/* Call fn on each token of the standardized text s[0..len). */
static void each_token(int characters, const char *s, size_t len, tok_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        if (characters) {
            size_t n = utf8_len(s + i, len - i);
            fn(ctx, s + i, n);
            i += n;
            continue;
        }
        while (i < len && is_space((unsigned char)s[i])) i++;
        size_t b = i;
        while (i < len && !is_space((unsigned char)s[i])) i++;
        if (i > b) fn(ctx, s + b, i - b);
    }
}

typedef struct vec_ctx {
    const ct_vocab *v;
    float *ids;
    int64_t n, cap;
} vec_ctx;

static void vec_token(void *c, const char *s, size_t len)
{
    vec_ctx *x = c;
    if (x->n < x->cap) x->ids[x->n] = (float)ct_vocab_lookup(x->v, s, len);
    x->n++;
}

int64_t ct_text_vectorize(const ct_vocab *v, const ct_text_options *o, const char *s, size_t len, float *ids)
{
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    size_t n = standardize(o->standardize, s, len, buf);
    vec_ctx x = {v, ids, 0, o->sequence_length};
    each_token(o->characters, buf, n, vec_token, &x);
    free(buf);
    for (int64_t k = x.n; k < o->sequence_length; k++) ids[k] = 0;
    return x.n;
}

typedef struct count_ctx {
    ct_vocab *v;
    int oom;
} count_ctx;

static void count_token(void *c, const char *s, size_t len)
{
    count_ctx *x = c;
    int64_t k = vocab_add(x->v, s, len);
    if (k < 0) x->oom = 1;
    else if (k >= 2) x->v->t[k].count++;
}

/* ---- serialization ----------------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t n, cap;
} strbuf;

static int sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *t = realloc(b->s, cap);
        if (!t) return -1;
        b->s = t, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

static int sb_escaped_line(strbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int r = s[i] == '\n' ? sb_put(b, "\\n", 2) : s[i] == '\\' ? sb_put(b, "\\\\", 2) : sb_put(b, s + i, 1);
        if (r) return -1;
    }
    return sb_put(b, "\n", 1);
}

ct_status ct_vocab_serialize(const ct_vocab *v, char **out, size_t *len)
{
    strbuf b = {0};
    char head[64];
    int bad = 0;
    snprintf(head, sizeof head, "ctrain-vocab 1\nclasses %lld\n", (long long)v->n_classes);
    bad |= sb_put(&b, head, strlen(head));
    for (int64_t k = 0; k < v->n_classes; k++) bad |= sb_escaped_line(&b, v->classes[k], strlen(v->classes[k]));
    snprintf(head, sizeof head, "tokens %lld\n", (long long)(v->n - 2));
    bad |= sb_put(&b, head, strlen(head));
    for (int64_t k = 2; k < v->n; k++) bad |= sb_escaped_line(&b, v->t[k].s, v->t[k].len);
    if (bad) {
        free(b.s);
        return CT_FAIL(CT_ERR_NOMEM, "vocabulary: out of memory");
    }
    *out = b.s;
    *len = b.n;
    return CT_OK;
}

/* Next line of text[*pos..len) unescaped into buf; -1 at the end. */
static int64_t next_line(const char *text, size_t len, size_t *pos, char *buf)
{
    if (*pos >= len) return -1;
    size_t n = 0, i = *pos;
    for (; i < len && text[i] != '\n'; i++) {
        if (text[i] == '\\' && i + 1 < len && (text[i + 1] == 'n' || text[i + 1] == '\\')) {
            buf[n++] = text[i + 1] == 'n' ? '\n' : '\\';
            i++;
        } else buf[n++] = text[i];
    }
    *pos = i + 1;
    buf[n] = 0;
    return (int64_t)n;
}

ct_status ct_vocab_parse(const char *text, size_t len, const char *name, ct_vocab **out)
{
    *out = NULL;
    char *buf = malloc(len + 1);
    ct_vocab *v = vocab_new();
    ct_status st = CT_OK;
    size_t pos = 0;
    long long nc = -1, nt = -1;
    if (!buf || !v) {
        st = CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    if (next_line(text, len, &pos, buf) < 0 || strcmp(buf, "ctrain-vocab 1") != 0 ||
        next_line(text, len, &pos, buf) < 0 || sscanf(buf, "classes %lld", &nc) != 1 || nc < 0) {
        st = CT_FAIL(CT_ERR_CHECKPOINT, "%s: vocabulary does not start with 'ctrain-vocab 1' and 'classes N'", name);
        goto fail;
    }
    v->classes = calloc((size_t)nc + 1, sizeof(char *));
    for (long long k = 0; v->classes && k < nc; k++) {
        if (next_line(text, len, &pos, buf) < 0 || !(v->classes[k] = strdup(buf))) {
            st = CT_FAIL(CT_ERR_CHECKPOINT, "%s: vocabulary ends inside its %lld class names", name, nc);
            goto fail;
        }
        v->n_classes = k + 1;
    }
    if (next_line(text, len, &pos, buf) < 0 || sscanf(buf, "tokens %lld", &nt) != 1 || nt < 0) {
        st = CT_FAIL(CT_ERR_CHECKPOINT, "%s: vocabulary has no 'tokens N' line", name);
        goto fail;
    }
    for (long long k = 0; k < nt; k++) {
        int64_t n = next_line(text, len, &pos, buf);
        if (n < 0) {
            st = CT_FAIL(CT_ERR_CHECKPOINT, "%s: vocabulary ends after %lld of %lld tokens", name, k, nt);
            goto fail;
        }
        if (vocab_add(v, buf, (size_t)n) != k + 2) {
            st = CT_FAIL(CT_ERR_CHECKPOINT, "%s: vocabulary token %lld is a duplicate", name, k + 2);
            goto fail;
        }
    }
    free(buf);
    *out = v;
    return CT_OK;
fail:
    free(buf);
    ct_vocab_destroy(v);
    return st;
}

/* ---- records ----------------------------------------------------------- */

typedef struct field {
    const char *s; /* into the file, or into the owned unquoted copy */
    size_t len;
} field;

typedef struct record {
    field label, text;
    long line;
} record;

typedef struct reader {
    const char *name, *text;
    size_t len, pos;
    long line;
    char delim;
    int no_labels; /* the file has no label column (labels_optional) */
    char *own;   /* unquoted copies of CSV fields, freed at the end */
    size_t own_n, own_cap;
} reader;

/* Fields of the next non-blank record into f (at most nf; *n gets the
 * count). TSV: a line, fields literal. CSV: RFC 4180. *eof at the end. */
static ct_status read_fields(reader *r, field *f, int nf, int *n, int *eof, long *line)
{
    for (;;) {
        if (r->pos >= r->len) {
            *eof = 1;
            return CT_OK;
        }
        r->line++;
        *line = r->line;
        const char *s = r->text;
        size_t i = r->pos;
        int k = 0;
        for (;;) {
            field cur = {s + i, 0};
            if (r->delim == ',' && i < r->len && s[i] == '"') {
                /* unquote into r->own (fields point into it after the record is done) */
                size_t start = r->own_n;
                i++;
                for (;;) {
                    if (i >= r->len)
                        return CT_FAIL(CT_ERR_DATA, "%s:%ld: a quoted field is not closed before the end of the file",
                                       r->name, *line);
                    if (s[i] == '"') {
                        if (i + 1 < r->len && s[i + 1] == '"') i++;
                        else break;
                    }
                    if (s[i] == '\n') r->line++;
                    r->own[r->own_n++] = s[i++];
                }
                i++; /* closing quote */
                cur.s = r->own + start; /* own holds len + 1 bytes and never moves */
                cur.len = r->own_n - start;
                while (i < r->len && s[i] != r->delim && s[i] != '\n' && s[i] != '\r') i++;
            } else {
                while (i < r->len && s[i] != r->delim && s[i] != '\n') i++;
                cur.len = (size_t)(s + i - cur.s);
                if (cur.len && cur.s[cur.len - 1] == '\r' && (i >= r->len || s[i] == '\n')) cur.len--;
            }
            if (k < nf) f[k] = cur;
            k++;
            if (i < r->len && s[i] == r->delim) {
                i++;
                continue;
            }
            while (i < r->len && s[i] != '\n') i++;
            r->pos = i + 1;
            break;
        }
        if (k == 1 && f[0].len == 0 && f[0].s != r->own + r->own_n) continue; /* a blank line */
        *n = k;
        *eof = 0;
        return CT_OK;
    }
}

static field resolve(const reader *r, field f) { return f; }

/* ---- the stage --------------------------------------------------------- */

typedef struct text_stage {
    ct_mem_source src;
    ct_vocab *own_vocab;
    const ct_vocab *vocab;
    int64_t T, ylen;
    float *x, *y;       /* records: (n, T) and (n, ylen); LM: ids (the stream) */
    int lm;
    int64_t step, stream_n;
} text_stage;

static ct_status text_get(ct_stage *st, int64_t i, ct_sample *out)
{
    text_stage *s = (text_stage *)st;
    if (s->lm) {
        const float *w = s->x + i * s->step;
        memcpy(out->x, w, sizeof(float) * (size_t)s->T);
        if (s->ylen == 1) out->y[0] = w[s->T];
        else memcpy(out->y, w + 1, sizeof(float) * (size_t)s->T);
    } else {
        memcpy(out->x, s->x + i * s->T, sizeof(float) * (size_t)s->T);
        memcpy(out->y, s->y + i * s->ylen, sizeof(float) * (size_t)s->ylen);
    }
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void text_close(ct_stage *st)
{
    text_stage *s = (text_stage *)st;
    ct_vocab_destroy(s->own_vocab);
    free(s->x);
    free(s->y);
    free(s->src.name);
    free(s);
}

static const ct_stage_vtable text_vtable = {"text", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell,
                                            ct_mem_source_seek, text_close, text_get};

const ct_vocab *ct_text_stage_vocab(const ct_stage *s)
{
    return s && s->vt == &text_vtable ? ((const text_stage *)s)->vocab : NULL;
}

static ct_status check_options(const ct_text_options *o, const char *name)
{
    if (o->sequence_length < 1)
        return CT_FAIL(CT_ERR_CONFIG, "%s: output_sequence_length must be >= 1, got %lld", name,
                       (long long)o->sequence_length);
    if (o->max_tokens != 0 && o->max_tokens < 3)
        return CT_FAIL(CT_ERR_CONFIG, "%s: max_tokens %lld leaves no room for a token after padding and [UNK] (need >= 3)",
                       name, (long long)o->max_tokens);
    if (o->lm_step < 0) return CT_FAIL(CT_ERR_CONFIG, "%s: lm_step must be >= 1", name);
    return CT_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Classes from string labels (sorted), or none when every label is a
 * number. */
static ct_status build_classes(ct_vocab *v, const reader *r, const record *rec, int64_t n)
{
    int numeric = 1;
    for (int64_t i = 0; i < n && numeric; i++) {
        field f = resolve(r, rec[i].label);
        char tmp[64];
        if (f.len == 0 || f.len >= sizeof tmp) {
            numeric = 0;
            break;
        }
        memcpy(tmp, f.s, f.len);
        tmp[f.len] = 0;
        char *end;
        strtod(tmp, &end);
        numeric = *end == 0;
    }
    if (numeric) return CT_OK;
    char **names = malloc(sizeof(char *) * (size_t)(n + 1));
    if (!names) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", r->name);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        field f = resolve(r, rec[i].label);
        names[m] = strndup(f.s, f.len);
        if (!names[m]) {
            for (int64_t k = 0; k < m; k++) free(names[k]);
            free(names);
            return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", r->name);
        }
        m++;
    }
    qsort(names, (size_t)m, sizeof(char *), cmp_str);
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++) {
        if (u > 0 && strcmp(names[u - 1], names[i]) == 0) free(names[i]);
        else names[u++] = names[i];
    }
    v->classes = names;
    v->n_classes = u;
    return CT_OK;
}

static ct_status label_value(const ct_vocab *v, const reader *r, const record *rec, float *y)
{
    field f = resolve(r, rec->label);
    if (r->no_labels) {
        *y = 0;
        return CT_OK;
    }
    if (v->n_classes == 0) {
        char tmp[64], *end;
        size_t n = f.len < sizeof tmp - 1 ? f.len : sizeof tmp - 1;
        memcpy(tmp, f.s, n);
        tmp[n] = 0;
        double d = strtod(tmp, &end);
        if (n == 0 || *end || f.len != n)
            return CT_FAIL(CT_ERR_DATA, "%s:%ld: label '%.*s' is not a number (the training labels are numbers)",
                           r->name, rec->line, (int)(f.len > 40 ? 40 : f.len), f.s);
        *y = (float)d;
        return CT_OK;
    }
    int64_t lo = 0, hi = v->n_classes - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = bytes_cmp(v->classes[mid], strlen(v->classes[mid]), f.s, f.len);
        if (c == 0) {
            *y = (float)mid;
            return CT_OK;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return CT_FAIL(CT_ERR_DATA, "%s:%ld: label '%.*s' is not one of the %lld training classes (first '%s')", r->name,
                   rec->line, (int)(f.len > 40 ? 40 : f.len), f.s, (long long)v->n_classes, v->classes[0]);
}

/* Count tokens of the standardized text into v. */
static ct_status count_text(ct_vocab *v, const ct_text_options *o, const char *s, size_t len, char *buf,
                            const char *name)
{
    size_t n = standardize(o->standardize, s, len, buf);
    count_ctx c = {v, 0};
    each_token(o->characters, buf, n, count_token, &c);
    return c.oom ? CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name) : CT_OK;
}

static ct_status find_column(const reader *r, const field *hdr, int nh, const char *want, int *col)
{
    for (int k = 0; k < nh; k++) {
        field f = resolve(r, hdr[k]);
        if (f.len == strlen(want) && memcmp(f.s, want, f.len) == 0) {
            *col = k;
            return CT_OK;
        }
    }
    char list[256] = "";
    size_t at = 0;
    for (int k = 0; k < nh && at < sizeof list - 8; k++) {
        field f = resolve(r, hdr[k]);
        at += (size_t)snprintf(list + at, sizeof list - at, "%s'%.*s'", k ? ", " : "", (int)(f.len > 30 ? 30 : f.len), f.s);
    }
    return CT_FAIL(CT_ERR_DATA, "%s:1: no column named '%s' in the header (columns: %s)", r->name, want, list);
}

#define MAX_FIELDS 64

static ct_status read_records(reader *r, const ct_text_options *o, record **out, int64_t *n_out)
{
    field f[MAX_FIELDS];
    int nf = 0, eof = 0, lc = 0, tc = 0;
    long line = 0;
    CT_TRY(read_fields(r, f, MAX_FIELDS, &nf, &eof, &line));
    if (eof) return CT_FAIL(CT_ERR_DATA, "%s: the file is empty (expected a header naming the label and text columns)", r->name);
    if (nf > MAX_FIELDS) return CT_FAIL(CT_ERR_DATA, "%s:%ld: more than %d columns", r->name, line, MAX_FIELDS);
    CT_TRY(find_column(r, f, nf, o->text_column ? o->text_column : "text", &tc));
    if (find_column(r, f, nf, o->label_column ? o->label_column : "label", &lc) != CT_OK) {
        if (!o->labels_optional) return ct_error_status();
        ct_error_clear();
        lc = -1;
    }
    int need = (lc > tc ? lc : tc) + 1;
    int64_t n = 0, cap = 1024;
    record *rec = malloc(sizeof(record) * (size_t)cap);
    if (!rec) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", r->name);
    for (;;) {
        ct_status st = read_fields(r, f, MAX_FIELDS, &nf, &eof, &line);
        if (st == CT_OK && !eof && nf < need)
            st = CT_FAIL(CT_ERR_DATA, "%s:%ld: %d field%s, the header has column %d ('%s')", r->name, line, nf,
                         nf == 1 ? "" : "s", need, need - 1 == lc ? (o->label_column ? o->label_column : "label")
                                                                    : (o->text_column ? o->text_column : "text"));
        if (st != CT_OK) {
            free(rec);
            return st;
        }
        if (eof) break;
        if (n == cap) {
            record *t = realloc(rec, sizeof(record) * (size_t)(cap *= 2));
            if (!t) {
                free(rec);
                return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", r->name);
            }
            rec = t;
        }
        rec[n++] = (record){lc >= 0 ? f[lc] : (field){"", 0}, f[tc], line};
        if (lc < 0) r->no_labels = 1;
    }
    if (n == 0) {
        free(rec);
        return CT_FAIL(CT_ERR_DATA, "%s: no records after the header", r->name);
    }
    *out = rec;
    *n_out = n;
    return CT_OK;
}

static ct_status open_records(text_stage *s, const char *text, size_t len, const char *name, const ct_text_options *o,
                              double train_part)
{
    char delim = o->delimiter;
    if (!delim) {
        size_t nl = strlen(name);
        delim = nl >= 4 && strcmp(name + nl - 4, ".csv") == 0 ? ',' : '\t';
    }
    reader r = {.name = name, .text = text, .len = len, .delim = delim};
    r.own_cap = len + 1;
    r.own = malloc(r.own_cap);
    record *rec = NULL;
    int64_t n = 0;
    char *buf = malloc(len + 1);
    ct_status st = r.own && buf ? read_records(&r, o, &rec, &n) : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    if (st == CT_OK && !s->vocab) {
        int64_t m = train_part > 0 && train_part < 1 ? (int64_t)((double)n * train_part) : n;
        s->own_vocab = vocab_new();
        if (!s->own_vocab) st = CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
        for (int64_t i = 0; st == CT_OK && i < m; i++) {
            field f = resolve(&r, rec[i].text);
            st = count_text(s->own_vocab, o, f.s, f.len, buf, name);
        }
        if (st == CT_OK) st = vocab_finish(s->own_vocab, o->max_tokens);
        if (st == CT_OK && ct_vocab_size(s->own_vocab) <= 2)
            st = CT_FAIL(CT_ERR_DATA, "%s: the vocabulary is empty: no token in the text column '%s' of %lld records",
                         name, o->text_column ? o->text_column : "text", (long long)m);
        if (st == CT_OK) st = build_classes(s->own_vocab, &r, rec, n); /* classes from every record */
        s->vocab = s->own_vocab;
    }
    if (st == CT_OK) {
        s->T = o->sequence_length;
        s->ylen = 1;
        s->x = malloc(sizeof(float) * (size_t)(n * s->T));
        s->y = malloc(sizeof(float) * (size_t)n);
        if (!s->x || !s->y) st = CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    }
    for (int64_t i = 0; st == CT_OK && i < n; i++) {
        field f = resolve(&r, rec[i].text);
        if (ct_text_vectorize(s->vocab, o, f.s, f.len, s->x + i * s->T) < 0)
            st = CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
        else st = label_value(s->vocab, &r, &rec[i], s->y + i);
    }
    if (st == CT_OK) {
        s->src.base.length = n;
        s->src.base.x_shape = ct_shape1(s->T);
        s->src.base.y_shape = ct_shape1(1);
        s->src.base.num_classes = ct_vocab_class_count(s->vocab);
    }
    free(rec);
    free(buf);
    free(r.own);
    return st;
}

static ct_status open_lm(text_stage *s, const char *text, size_t len, const char *name, const ct_text_options *o,
                         double train_part)
{
    ct_status st = CT_OK;
    if (!s->vocab) {
        char *buf = malloc(len + 1);
        s->own_vocab = vocab_new();
        /* the training part: that fraction of the text (the windows split at about the same place) */
        size_t part = train_part > 0 && train_part < 1 ? (size_t)((double)len * train_part) : len;
        while (part < len && ((unsigned char)text[part] & 0xC0) == 0x80) part++; /* a whole UTF-8 character */
        st = buf && s->own_vocab ? count_text(s->own_vocab, o, text, part, buf, name)
                                 : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
        free(buf);
        if (st == CT_OK) st = vocab_finish(s->own_vocab, o->max_tokens);
        if (st == CT_OK && ct_vocab_size(s->own_vocab) <= 2)
            st = CT_FAIL(CT_ERR_DATA, "%s: the vocabulary is empty: the file holds no token", name);
        s->vocab = s->own_vocab;
    }
    if (st != CT_OK) return st;
    s->lm = 1;
    s->T = o->sequence_length;
    s->step = o->lm_step ? o->lm_step : s->T + 1;
    s->ylen = o->lm_sequence_targets ? s->T : 1;
    /* every token of the file: vectorize with room for all of them */
    ct_text_options all = *o;
    all.sequence_length = (int64_t)len + 1;
    s->x = malloc(sizeof(float) * (len + 1));
    if (!s->x) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    s->stream_n = ct_text_vectorize(s->vocab, &all, text, len, s->x);
    if (s->stream_n < 0) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    if (s->stream_n < s->T + 1)
        return CT_FAIL(CT_ERR_DATA, "%s: %lld tokens are too few for one window of %lld plus its target", name,
                       (long long)s->stream_n, (long long)s->T);
    s->src.base.length = (s->stream_n - s->T - 1) / s->step + 1;
    s->src.base.x_shape = ct_shape1(s->T);
    s->src.base.y_shape = ct_shape1(s->ylen);
    s->src.base.num_classes = ct_vocab_size(s->vocab);
    return CT_OK;
}

ct_status ct_text_open_memory(const char *text, size_t len, const char *name, const ct_text_options *o,
                              const ct_vocab *vocab, double train_part, ct_stage **out)
{
    *out = NULL;
    if (!name) name = "text";
    CT_TRY(check_options(o, name));
    text_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    s->src.base.vt = &text_vtable;
    s->src.name = strdup(name);
    s->vocab = vocab;
    ct_status st = !s->src.name ? CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name)
                   : o->lm      ? open_lm(s, text, len, name, o, train_part)
                                : open_records(s, text, len, name, o, train_part);
    if (st != CT_OK) {
        text_close(&s->src.base);
        return st;
    }
    *out = &s->src.base;
    return CT_OK;
}

ct_status ct_text_open(const char *path, const ct_text_options *o, const ct_vocab *vocab, double train_part,
                       ct_stage **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    CT_TRY(ct_file_slurp(path, &text, &len));
    ct_status st = ct_text_open_memory(text, len, path, o, vocab, train_part, out);
    free(text);
    return st;
}
