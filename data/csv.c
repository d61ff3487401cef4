/* Numeric CSV files as a source stage.
 *
 * The whole text is parsed at open into two float arrays (features and
 * labels), so every error is reported before training starts, with the
 * file, the line and the column. Lines are split on '\n' (a trailing '\r'
 * is dropped, so CRLF files work); fields may be quoted ("1.5", with ""
 * for a literal quote) and have spaces around them. Lines holding only
 * blanks are skipped. Numbers are parsed with strtod: the launcher keeps
 * LC_NUMERIC at "C", so the decimal point is always '.'.
 *
 * Text mode (ct_csv_options.text, for boosted trees): missing-value
 * tokens read as NaN, and a feature column holding any field that is not
 * a number is a text column whose values become level codes 0..L-1 in
 * byte order of the distinct texts (found in a first pass, so a column is
 * text or numeric as a whole). */
#include "memsource.h"
#include "sources.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* --- splitting one line into fields ------------------------------------ */

typedef struct csv_row {
    int n, cap;   /* fields in use / allocated */
    char **field; /* NUL-terminated, unquoted, trimmed; point into buf */
    char *buf;
    size_t buf_cap;
} csv_row;

typedef struct csv_parser {
    const char *name;
    const char *text;
    size_t len, pos;
    long line;          /* 1-based number of the line last read */
    char delim;
    csv_row row;
    char **header;      /* column names (copies), NULL without a header */
    int ncols;
    int label_col;
    int text_mode;      /* text mode */
    unsigned char *is_text; /* per column, text mode: holds text */
} csv_parser;

/* The distinct texts of one text column, in order of first appearance
 * while reading (sorted at the end), with a hash index. */
typedef struct csv_levels {
    char **name;
    long *line;          /* line of the first appearance */
    int64_t n, cap;
    int64_t *slot;       /* open addressing: level + 1, 0 empty */
    int64_t slots;
} csv_levels;

static int csv_blank(char c, char delim) { return (c == ' ' || c == '\t') && c != delim; }

static ct_status row_reserve(const csv_parser *p, csv_row *row, size_t line_len)
{
    /* Unquoting only shrinks a field; each field adds one NUL. */
    size_t need = 2 * line_len + 2;
    if (need > row->buf_cap) {
        char *b = realloc(row->buf, need);
        if (!b) return CT_FAIL(CT_ERR_NOMEM, "%s:%ld: out of memory", p->name, p->line);
        row->buf = b;
        row->buf_cap = need;
    }
    return CT_OK;
}

static ct_status row_add(const csv_parser *p, csv_row *row, char *field)
{
    if (row->n == row->cap) {
        int cap = row->cap ? 2 * row->cap : 16;
        char **f = realloc(row->field, (size_t)cap * sizeof *f);
        if (!f) return CT_FAIL(CT_ERR_NOMEM, "%s:%ld: out of memory", p->name, p->line);
        row->field = f;
        row->cap = cap;
    }
    row->field[row->n++] = field;
    return CT_OK;
}

/* Copies the quoted field starting at s[*i] (the opening quote) to *o. */
static ct_status unquote(const csv_parser *p, const char *s, size_t len, size_t *i, char **o)
{
    int col = p->row.n + 1;
    for ((*i)++; *i < len; (*i)++) {
        if (s[*i] != '"') {
            *(*o)++ = s[*i];
        } else if (*i + 1 < len && s[*i + 1] == '"') {
            *(*o)++ = '"';
            (*i)++;
        } else {
            (*i)++;
            while (*i < len && csv_blank(s[*i], p->delim)) (*i)++;
            if (*i < len && s[*i] != p->delim)
                return CT_FAIL(CT_ERR_DATA, "%s:%ld: column %d: text after the closing quote",
                               p->name, p->line, col);
            return CT_OK;
        }
    }
    return CT_FAIL(CT_ERR_DATA, "%s:%ld: column %d: quote is not closed on this line", p->name,
                   p->line, col);
}

/* Splits s[0..len) into p->row: fields trimmed of blanks and unquoted. */
static ct_status split_line(csv_parser *p, const char *s, size_t len)
{
    csv_row *row = &p->row;
    size_t i = 0;
    CT_TRY(row_reserve(p, row, len));
    char *o = row->buf;
    row->n = 0;
    for (;;) {
        while (i < len && csv_blank(s[i], p->delim)) i++;
        char *start = o;
        if (i < len && s[i] == '"') {
            CT_TRY(unquote(p, s, len, &i, &o));
        } else {
            while (i < len && s[i] != p->delim) *o++ = s[i++];
            while (o > start && csv_blank(o[-1], p->delim)) o--;
        }
        *o++ = 0;
        CT_TRY(row_add(p, row, start));
        if (i >= len) return CT_OK;
        i++; /* the delimiter */
    }
}

/* Reads the next line that is not blank into p->row; *eof at the end. */
static ct_status next_row(csv_parser *p, int *eof)
{
    while (p->pos < p->len) {
        const char *s = p->text + p->pos;
        const char *nl = memchr(s, '\n', p->len - p->pos);
        size_t len = nl ? (size_t)(nl - s) : p->len - p->pos;
        p->pos += len + (nl ? 1 : 0);
        p->line++;
        if (len && s[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (csv_blank(s[k], p->delim) || s[k] == '\r')) k++;
        if (k == len) continue;
        *eof = 0;
        return split_line(p, s, len);
    }
    *eof = 1;
    return CT_OK;
}

/* --- columns ------------------------------------------------------------ */

/* "column 3 ('price')" for messages; columns count from 1 like lines. */
static const char *col_desc(const csv_parser *p, int c, char *buf, size_t n)
{
    if (p->header)
        snprintf(buf, n, "column %d ('%.60s')", c + 1, p->header[c]);
    else
        snprintf(buf, n, "column %d", c + 1);
    return buf;
}

static ct_status keep_header(csv_parser *p)
{
    p->header = calloc((size_t)p->row.n, sizeof *p->header);
    if (!p->header) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", p->name);
    for (int c = 0; c < p->row.n; c++)
        if (!(p->header[c] = strdup(p->row.field[c])))
            return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", p->name);
    return CT_OK;
}

static void free_header(csv_parser *p)
{
    for (int c = 0; p->header && c < p->ncols; c++) free(p->header[c]);
    free(p->header);
    p->header = NULL;
}

static ct_status fail_unknown_name(const csv_parser *p, const char *want, long header_line)
{
    char list[512];
    size_t k = 0;
    list[0] = 0;
    for (int c = 0; c < p->ncols && k < sizeof list; c++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s'%s'", c ? ", " : "", p->header[c]);
    return CT_FAIL(CT_ERR_DATA, "%s:%ld: label column '%s' is not in the header (columns: %s)",
                   p->name, header_line, want, list);
}

/* label_column: a header name, else a 0-based index; NULL is the last. */
static ct_status resolve_label(csv_parser *p, const char *want, long header_line, int no_label)
{
    if (no_label) {
        p->label_col = -1;
        return CT_OK;
    }
    if (!want) {
        p->label_col = p->ncols - 1;
        return CT_OK;
    }
    for (int c = 0; p->header && c < p->ncols; c++)
        if (strcmp(p->header[c], want) == 0) return p->label_col = c, CT_OK;
    char *end;
    errno = 0;
    long idx = strtol(want, &end, 10);
    if (end == want || *end || errno) {
        if (p->header) return fail_unknown_name(p, want, header_line);
        return CT_FAIL(CT_ERR_DATA,
                       "%s:%ld: label column '%s' is a name, but the file has no header line",
                       p->name, header_line, want);
    }
    if (idx < 0 || idx >= p->ncols)
        return CT_FAIL(CT_ERR_DATA,
                       "%s:%ld: label column index %ld is out of range (0-based; the file has "
                       "%d columns)",
                       p->name, header_line, idx, p->ncols);
    p->label_col = (int)idx;
    return CT_OK;
}

/* --- values ------------------------------------------------------------- */

static ct_status parse_value(const csv_parser *p, int c, float *out)
{
    const char *f = p->row.field[c];
    char desc[96];
    if (!*f)
        return CT_FAIL(CT_ERR_DATA, "%s:%ld: %s: empty field", p->name, p->line,
                       col_desc(p, c, desc, sizeof desc));
    char *end;
    double v = strtod(f, &end);
    if (end == f || *end)
        return CT_FAIL(CT_ERR_DATA, "%s:%ld: %s: \"%.40s\" is not a number", p->name, p->line,
                       col_desc(p, c, desc, sizeof desc), f);
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return CT_FAIL(CT_ERR_DATA, "%s:%ld: %s: \"%.40s\" is not a finite float32 value",
                       p->name, p->line, col_desc(p, c, desc, sizeof desc), f);
    *out = (float)v;
    return CT_OK;
}

/* Text mode: the spellings of a missing value (pandas's read_csv ones). */
static int is_missing_token(const char *f)
{
    static const char *const tokens[] = {"", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null",
                                         "None", "?", "<NA>", "#N/A"};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        if (strcmp(f, tokens[i]) == 0) return 1;
    return 0;
}

static int is_number(const char *f)
{
    char *end;
    double v = strtod(f, &end);
    return end != f && !*end && isfinite(v);
}

static uint64_t text_hash(const char *t)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ull;
    return h;
}

static ct_status levels_rehash(csv_levels *lv)
{
    int64_t slots = lv->slots ? 2 * lv->slots : 64;
    int64_t *slot = calloc((size_t)slots, sizeof *slot);
    if (!slot) return CT_FAIL(CT_ERR_NOMEM, "csv levels");
    for (int64_t i = 0; i < lv->n; i++) {
        uint64_t k = text_hash(lv->name[i]) & (uint64_t)(slots - 1);
        while (slot[k]) k = (k + 1) & (uint64_t)(slots - 1);
        slot[k] = i + 1;
    }
    free(lv->slot);
    lv->slot = slot;
    lv->slots = slots;
    return CT_OK;
}

/* The code of text t in lv (added, at `line`, when new). */
static ct_status level_code(csv_levels *lv, const char *t, long line, int64_t *code)
{
    if (2 * (lv->n + 1) > lv->slots) CT_TRY(levels_rehash(lv));
    uint64_t k = text_hash(t) & (uint64_t)(lv->slots - 1);
    for (; lv->slot[k]; k = (k + 1) & (uint64_t)(lv->slots - 1))
        if (strcmp(lv->name[lv->slot[k] - 1], t) == 0) return *code = lv->slot[k] - 1, CT_OK;
    if (lv->n == lv->cap) {
        int64_t cap = lv->cap ? 2 * lv->cap : 16;
        char **nm = realloc(lv->name, (size_t)cap * sizeof *nm);
        if (nm) lv->name = nm;
        long *ln = nm ? realloc(lv->line, (size_t)cap * sizeof *ln) : NULL;
        if (!ln) return CT_FAIL(CT_ERR_NOMEM, "csv levels");
        lv->line = ln;
        lv->cap = cap;
    }
    if (!(lv->name[lv->n] = strdup(t))) return CT_FAIL(CT_ERR_NOMEM, "csv levels");
    lv->line[lv->n] = line;
    lv->slot[k] = lv->n + 1;
    *code = lv->n++;
    return CT_OK;
}

static void levels_free(csv_levels *lv)
{
    for (int64_t i = 0; i < lv->n; i++) free(lv->name[i]);
    free(lv->name);
    free(lv->line);
    free(lv->slot);
}

/* --- the stage ---------------------------------------------------------- */

typedef struct csv_stage {
    ct_mem_source src; /* base, name, cursor */
    float *x, *y;     /* length * nfeat, length */
    int64_t nfeat, cap;
    /* text mode */
    csv_levels *levels; /* per feature (n == 0: a numeric column) */
    char **feat_name;   /* per feature, from the header; NULL without one */
    long *row_line;     /* line of each row */
} csv_stage;

static ct_status csv_grow(csv_stage *s, const csv_parser *p)
{
    int64_t cap = s->cap ? 2 * s->cap : 256;
    float *x = realloc(s->x, (size_t)(cap * s->nfeat) * sizeof *x);
    if (x) s->x = x;
    float *y = x ? realloc(s->y, (size_t)cap * sizeof *y) : NULL;
    if (y) s->y = y;
    long *ln = y && p->text_mode ? realloc(s->row_line, (size_t)cap * sizeof *ln) : NULL;
    if (ln) s->row_line = ln;
    if (!y || (p->text_mode && !ln)) return CT_FAIL(CT_ERR_NOMEM, "%s:%ld: out of memory", p->name, p->line);
    s->cap = cap;
    return CT_OK;
}

static ct_status add_row(csv_stage *s, const csv_parser *p, long first_line)
{
    if (p->row.n != p->ncols)
        return CT_FAIL(CT_ERR_DATA, "%s:%ld: %d field%s, expected %d as on line %ld", p->name,
                       p->line, p->row.n, p->row.n == 1 ? "" : "s", p->ncols, first_line);
    if (s->src.base.length == s->cap) CT_TRY(csv_grow(s, p));
    float *x = s->x + s->src.base.length * s->nfeat;
    if (p->label_col < 0) s->y[s->src.base.length] = 0;
    for (int c = 0; c < p->ncols; c++) {
        float *dst = c == p->label_col ? &s->y[s->src.base.length] : x++;
        if (c == p->label_col || !p->text_mode) {
            CT_TRY(parse_value(p, c, dst));
        } else if (is_missing_token(p->row.field[c])) {
            *dst = NAN;
        } else if (p->is_text[c]) {
            int64_t code = 0;
            CT_TRY(level_code(&s->levels[p->label_col < 0 || c < p->label_col ? c : c - 1], p->row.field[c], p->line, &code));
            *dst = (float)code;
        } else {
            CT_TRY(parse_value(p, c, dst));
        }
    }
    if (s->row_line) s->row_line[s->src.base.length] = p->line;
    s->src.base.length++;
    return CT_OK;
}

typedef struct level_entry {
    char *name;
    long line;
    int64_t old;
} level_entry;

static int cmp_level(const void *a, const void *b)
{
    return strcmp(((const level_entry *)a)->name, ((const level_entry *)b)->name);
}

/* Text columns: levels in byte order, codes renumbered to match. */
static ct_status sort_levels(csv_stage *s)
{
    for (int64_t k = 0; k < s->nfeat; k++) {
        csv_levels *lv = &s->levels[k];
        if (!lv->n) continue;
        level_entry *e = malloc((size_t)lv->n * sizeof *e);
        int64_t *rank = malloc((size_t)lv->n * sizeof *rank);
        if (!e || !rank) {
            free(e), free(rank);
            return CT_FAIL(CT_ERR_NOMEM, "csv levels");
        }
        for (int64_t i = 0; i < lv->n; i++) e[i] = (level_entry){lv->name[i], lv->line[i], i};
        qsort(e, (size_t)lv->n, sizeof *e, cmp_level);
        for (int64_t i = 0; i < lv->n; i++) {
            rank[e[i].old] = i;
            lv->name[i] = e[i].name;
            lv->line[i] = e[i].line;
        }
        for (int64_t r = 0; r < s->src.base.length; r++) {
            float *v = &s->x[r * s->nfeat + k];
            if (!isnan(*v)) *v = (float)rank[(int64_t)*v];
        }
        free(lv->slot);
        lv->slot = NULL, lv->slots = 0;
        free(e), free(rank);
    }
    return CT_OK;
}

static ct_status read_columns(csv_parser *p, const ct_csv_options *opt, int *have_row, long *first_line);

/* Text mode, first pass: which feature columns hold text. */
static ct_status scan_text_columns(csv_parser *p, const ct_csv_options *opt)
{
    int eof = 0;
    long first_line = 0;
    int have_row = 0;
    CT_TRY(read_columns(p, opt, &have_row, &first_line));
    if (!(p->is_text = calloc((size_t)p->ncols, 1))) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", p->name);
    if (!have_row) CT_TRY(next_row(p, &eof));
    while (!eof) {
        for (int c = 0; c < p->ncols && c < p->row.n; c++)
            if (c != p->label_col && !p->is_text[c] && !is_missing_token(p->row.field[c]) && !is_number(p->row.field[c]))
                p->is_text[c] = 1;
        CT_TRY(next_row(p, &eof));
    }
    free_header(p);
    p->pos = 0;
    p->line = 0;
    return CT_OK;
}

/* Class labels when every label is a non-negative integer: max + 1.
 * Above 2^24 float no longer holds every integer, so such values cannot
 * be class indices. */
static int64_t csv_num_classes(const csv_stage *s)
{
    float max = 0;
    for (int64_t i = 0; i < s->src.base.length; i++) {
        float v = s->y[i];
        if (v < 0 || v != floorf(v) || v > 16777216.0f) return 0;
        if (v > max) max = v;
    }
    return (int64_t)max + 1;
}

/* Skips n physical lines, blank or not (sklearn's CSVs open with a
 * "n_samples,n_features,..." line that is neither header nor data). */
static void skip_lines(csv_parser *p, int n)
{
    for (; n > 0 && p->pos < p->len; n--) {
        const char *nl = memchr(p->text + p->pos, '\n', p->len - p->pos);
        p->pos = nl ? (size_t)(nl - p->text) + 1 : p->len;
        p->line++;
    }
}

/* Reads the header (or the first row, to count columns) and the label. */
static ct_status read_columns(csv_parser *p, const ct_csv_options *opt, int *have_row,
                              long *first_line)
{
    int eof;
    skip_lines(p, opt->skip_rows);
    CT_TRY(next_row(p, &eof));
    if (eof) return CT_FAIL(CT_ERR_DATA, "%s: no data rows", p->name);
    *first_line = p->line;
    p->ncols = p->row.n;
    *have_row = !opt->header;
    if (opt->header) CT_TRY(keep_header(p));
    if (p->ncols < 2 && !opt->no_label)
        return CT_FAIL(CT_ERR_DATA,
                       "%s:%ld: 1 column; expected at least 2 (features and a label), is "
                       "the delimiter '%c' right?",
                       p->name, p->line, p->delim);
    return resolve_label(p, opt->label_column, p->line, opt->no_label);
}

static ct_status read_rows(csv_stage *s, csv_parser *p, const ct_csv_options *opt)
{
    int have_row = 0, eof = 0;
    long first_line = 0;
    if (p->text_mode) CT_TRY(scan_text_columns(p, opt));
    CT_TRY(read_columns(p, opt, &have_row, &first_line));
    s->nfeat = p->label_col < 0 ? p->ncols : p->ncols - 1;
    if (p->text_mode) {
        s->levels = calloc((size_t)(s->nfeat + 1), sizeof *s->levels);
        s->feat_name = calloc((size_t)(s->nfeat + 1), sizeof *s->feat_name);
        if (!s->levels || !s->feat_name) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", p->name);
        for (int c = 0, k = 0; p->header && c < p->ncols; c++)
            if (c != p->label_col && !(s->feat_name[k++] = strdup(p->header[c])))
                return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", p->name);
    }
    if (!have_row) CT_TRY(next_row(p, &eof));
    while (!eof) {
        CT_TRY(add_row(s, p, first_line));
        CT_TRY(next_row(p, &eof));
    }
    if (s->src.base.length == 0) return CT_FAIL(CT_ERR_DATA, "%s: no data rows", p->name);
    return p->text_mode ? sort_levels(s) : CT_OK;
}

static ct_status csv_get(ct_stage *st, int64_t i, ct_sample *out)
{
    csv_stage *s = (csv_stage *)st;
    memcpy(out->x, s->x + i * s->nfeat, (size_t)s->nfeat * sizeof(float));
    out->y[0] = s->y[i];
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void csv_close(ct_stage *st)
{
    csv_stage *s = (csv_stage *)st;
    for (int64_t k = 0; s->levels && k < s->nfeat; k++) levels_free(&s->levels[k]);
    for (int64_t k = 0; s->feat_name && k < s->nfeat; k++) free(s->feat_name[k]);
    free(s->levels);
    free(s->feat_name);
    free(s->row_line);
    free(s->x);
    free(s->y);
    free(s->src.name);
    free(s);
}

static const ct_stage_vtable csv_vtable = {"csv", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell, ct_mem_source_seek,
                                           csv_close, csv_get};

ct_status ct_csv_open_memory(const char *text, size_t len, const char *name,
                             const ct_csv_options *opt, ct_stage **out)
{
    static const ct_csv_options defaults = {.delimiter = ','};
    if (!opt) opt = &defaults;
    if (!name) name = "csv";
    *out = NULL;
    if (opt->delimiter == '"' || opt->delimiter == '\n' || opt->delimiter == '\r')
        return CT_FAIL(CT_ERR_USAGE, "%s: a CSV delimiter cannot be a quote or a line break", name);
    if (opt->skip_rows < 0)
        return CT_FAIL(CT_ERR_USAGE, "%s: skip_rows %d is negative", name, opt->skip_rows);
    csv_parser p = {.name = name, .text = text, .len = len, .delim = opt->delimiter ? opt->delimiter : ',',
                    .text_mode = opt->text};
    csv_stage *s = calloc(1, sizeof *s);
    ct_status st = s ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    if (st == CT_OK) {
        s->src.base.vt = &csv_vtable;
        s->src.name = strdup(name);
        st = s->src.name ? read_rows(s, &p, opt) : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    }
    free_header(&p);
    free(p.is_text);
    free(p.row.field);
    free(p.row.buf);
    if (st != CT_OK) {
        if (s) csv_close(&s->src.base);
        return st;
    }
    s->src.base.x_shape = ct_shape1(s->nfeat);
    s->src.base.y_shape = ct_shape1(1);
    s->src.base.num_classes = csv_num_classes(s);
    *out = &s->src.base;
    return CT_OK;
}

static const csv_stage *as_csv(const ct_stage *st)
{
    return st && st->vt == &csv_vtable ? (const csv_stage *)st : NULL;
}

const char *ct_csv_feature_name(const ct_stage *st, int64_t k)
{
    const csv_stage *s = as_csv(st);
    return s && s->feat_name && k >= 0 && k < s->nfeat ? s->feat_name[k] : NULL;
}

int64_t ct_csv_levels(const ct_stage *st, int64_t k, const char *const **levels, const long **first_line)
{
    const csv_stage *s = as_csv(st);
    if (!s || !s->levels || k < 0 || k >= s->nfeat) return 0;
    if (levels) *levels = (const char *const *)s->levels[k].name;
    if (first_line) *first_line = s->levels[k].line;
    return s->levels[k].n;
}

long ct_csv_line(const ct_stage *st, int64_t row)
{
    const csv_stage *s = as_csv(st);
    return s && s->row_line && row >= 0 && row < s->src.base.length ? s->row_line[row] : 0;
}

/* Reads a whole file; *text is NUL-terminated for convenience. */
ct_status ct_file_slurp(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path, strerror(errno));
    /* a device or a pipe (/dev/zero) would be read until memory runs out */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        return CT_FAIL(CT_ERR_DATA, "%s: not a regular file (expected a CSV file)", path);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *b = realloc(buf, 2 * cap);
        if (!b) free(buf);
        buf = b;
        cap *= 2;
    }
    int err = errno, read_failed = buf && ferror(f);
    fclose(f);
    if (!buf) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", path);
    if (read_failed) {
        free(buf);
        return CT_FAIL(err == EISDIR ? CT_ERR_DATA : CT_ERR_IO, "%s: read failed: %s", path, strerror(err));
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return CT_OK;
}

ct_status ct_csv_open(const char *path, const ct_csv_options *opt, ct_stage **out)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    CT_TRY(ct_file_slurp(path, &text, &len));
    ct_status st = ct_csv_open_memory(text, len, path, opt, out);
    free(text);
    return st;
}
