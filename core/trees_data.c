/* Data and parameters of the boosted trees: the [data] files read through
 * the ordinary sources (CSV in text mode, so text columns and missing
 * values come through), categories put into the model's vocabulary,
 * labels checked against the loss with the line that breaks the rule,
 * and [boosted_trees] turned into fit parameters with sklearn's rules. */
#include "trees.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inputs.h"
#include "sources.h"

#define EARLY_STOPPING_AUTO_THRESHOLD 10000 /* sklearn: early_stopping='auto' is on above this many samples */
#define MAX_CLASSES 256

/* "file:LINE" of row i of src (CSV), or "file: sample i". buf: 600 bytes. */
static const char *where(const ct_stage *src, const char *path, int64_t i, char *buf)
{
    long line = ct_csv_line(src, i);
    if (line) snprintf(buf, 600, "%.500s:%ld", path, line);
    else snprintf(buf, 600, "%.500s: sample %lld", path, (long long)i);
    return buf;
}

/* Labels against the loss; sets m->n_classes / k when fresh. */
static ct_status check_labels(const ct_config *cfg, ct_trees *m, int fresh, const ct_stage *src, const char *path,
                              const ct_dataset *d)
{
    char at[600];
    const char *loss = cfg->boosted_trees->loss;
    if (d->y_size != 1 || d->y_shape.rank == 0)
        return CT_FAIL(CT_ERR_DATA, "%s: boosted trees need one label per sample, got %lld", path, (long long)d->y_size);
    if (m->loss == CT_TREES_SQUARED_ERROR) return CT_OK;
    int binary = strcmp(loss, "binary_crossentropy") == 0;
    int max = 0;
    for (int64_t i = 0; i < d->n; i++) {
        float y = d->y[i];
        if (binary && y != 0 && y != 1)
            return CT_FAIL(CT_ERR_DATA, "%s: label %g is not 0 or 1 (loss binary_crossentropy)", where(src, path, i, at), y);
        if (!(y >= 0 && y == floorf(y) && y < MAX_CLASSES))
            return CT_FAIL(CT_ERR_DATA, "%s: label %g is not a class index 0..%d (loss %s)", where(src, path, i, at), y,
                           MAX_CLASSES - 1, loss);
        if (!fresh && (int)y >= m->n_classes)
            return CT_FAIL(CT_ERR_DATA, "%s: label %g, but the model has %d classes", where(src, path, i, at), y, m->n_classes);
        max = (int)y > max ? (int)y : max;
    }
    if (!fresh) return CT_OK;
    int nc = binary ? 2 : max + 1;
    if (nc < 2) return CT_FAIL(CT_ERR_DATA, "%s: every label is 0: classification needs two classes at least", path);
    if (nc == 2 && strcmp(loss, "categorical_crossentropy") == 0)
        return CT_FAIL(CT_ERR_DATA, "%s: 2 classes: use loss = log_loss or binary_crossentropy (as sklearn)", path);
    m->n_classes = nc;
    m->loss = nc == 2 ? CT_TREES_BINARY : CT_TREES_MULTICLASS;
    m->k = nc == 2 ? 1 : nc;
    return CT_OK;
}

/* The feature index a categorical_features entry names, or -1. */
static int feature_named(const ct_trees *m, const char *name)
{
    for (int f = 0; f < m->n_features; f++)
        if (strcmp(m->features[f].name, name) == 0) return f;
    char *end;
    long k = strtol(name, &end, 10);
    return *name && !*end && k >= 0 && k < m->n_features ? (int)k : -1;
}

static ct_status setup_features(const ct_config *cfg, ct_trees *m, const ct_stage *src, const char *path,
                                int64_t n_features)
{
    const Ctrain__BoostedTreesConfig *b = cfg->boosted_trees;
    if (n_features < 1 || n_features > INT32_MAX / 256)
        return CT_FAIL(CT_ERR_DATA, "%s: %lld features per sample", path, (long long)n_features);
    m->n_features = (int)n_features;
    m->features = calloc((size_t)n_features, sizeof *m->features);
    if (!m->features) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: features");
    for (int f = 0; f < m->n_features; f++) {
        const char *nm = ct_csv_feature_name(src, f);
        char buf[32];
        snprintf(buf, sizeof buf, "f%d", f);
        if (!(m->features[f].name = strdup(nm ? nm : buf))) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: features");
    }
    for (size_t i = 0; i < b->n_categorical_features; i++) {
        int f = feature_named(m, b->categorical_features[i]);
        if (f < 0) {
            char list[400] = "";
            for (int k = 0, n = 0; k < m->n_features && n < 380; k++)
                n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", k ? ", " : "", m->features[k].name);
            return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] categorical_features: '%s' is not a feature name or "
                           "0-based index of %s (features: %s)", cfg->source ? cfg->source : "config",
                           b->categorical_features[i], path, list);
        }
        m->features[f].categorical = 1;
    }
    return CT_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct num_level {
    float v;
    int64_t first; /* row of the first appearance */
} num_level;

static int cmp_num_level(const void *a, const void *b)
{
    float x = ((const num_level *)a)->v, y = ((const num_level *)b)->v;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static ct_status too_many_levels(const ct_config *cfg, const ct_trees_feature *fe, const char *at, int64_t n)
{
    return CT_FAIL(CT_ERR_DATA, "%s: categorical feature '%s' has %lld levels here, more than [boosted_trees] "
                   "max_bins = %d allows", at, fe->name, (long long)n, cfg->boosted_trees->max_bins);
}

/* The vocabulary of categorical feature f from the training file: its
 * text levels (already codes in byte order), or its distinct numbers in
 * numeric order (values become codes). */
static ct_status learn_levels(const ct_config *cfg, ct_trees_feature *fe, int f, const ct_stage *src, const char *path,
                              ct_dataset *d)
{
    char at[600];
    int max_bins = cfg->boosted_trees->max_bins;
    const char *const *text;
    const long *lines;
    int64_t nt = ct_csv_levels(src, f, &text, &lines), F = d->x_size;
    if (nt > 0) {
        if (nt > max_bins) { /* the line where level max_bins + 1 first appeared */
            int64_t *ls = malloc(sizeof *ls * (size_t)nt);
            if (!ls) return CT_FAIL(CT_ERR_NOMEM, "levels");
            for (int64_t i = 0; i < nt; i++) ls[i] = lines[i];
            qsort(ls, (size_t)nt, sizeof *ls, cmp_i64);
            snprintf(at, sizeof at, "%.500s:%lld", path, (long long)ls[max_bins]);
            free(ls);
            return too_many_levels(cfg, fe, at, nt);
        }
        fe->levels = calloc((size_t)nt, sizeof *fe->levels);
        if (!fe->levels) return CT_FAIL(CT_ERR_NOMEM, "levels");
        for (fe->n_levels = 0; fe->n_levels < nt; fe->n_levels++)
            if (!(fe->levels[fe->n_levels] = strdup(text[fe->n_levels]))) return CT_FAIL(CT_ERR_NOMEM, "levels");
        return CT_OK;
    }
    num_level *lv = malloc(sizeof *lv * (size_t)(max_bins + 1));
    if (!lv) return CT_FAIL(CT_ERR_NOMEM, "levels");
    int n = 0;
    for (int64_t i = 0; i < d->n; i++) { /* file order, so the error names the first extra level */
        float v = d->x[i * F + f];
        if (isnan(v)) continue;
        int k = 0;
        while (k < n && lv[k].v != v) k++;
        if (k < n) continue;
        if (n == max_bins) {
            free(lv);
            return too_many_levels(cfg, fe, where(src, path, i, at), max_bins + 1);
        }
        lv[n++] = (num_level){v, i};
    }
    qsort(lv, (size_t)n, sizeof *lv, cmp_num_level);
    fe->levels = calloc((size_t)(n ? n : 1), sizeof *fe->levels);
    for (int k = 0; fe->levels && k < n; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.9g", (double)lv[k].v);
        if (!(fe->levels[k] = strdup(buf))) break;
        fe->n_levels++;
    }
    free(lv);
    return fe->levels && fe->n_levels == n ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "levels");
}

/* Feature f of d into the model's codes (NaN: missing or unknown). */
static ct_status encode_feature(const ct_trees_feature *fe, int f, const ct_stage *src, ct_dataset *d)
{
    const char *const *text;
    int64_t nt = ct_csv_levels(src, f, &text, NULL), F = d->x_size;
    char **sorted = malloc(sizeof(char *) * (size_t)(fe->n_levels ? fe->n_levels : 1));
    int *code_of = malloc(sizeof(int) * (size_t)(nt ? nt : 1));
    if (!sorted || !code_of) {
        free(sorted), free(code_of);
        return CT_FAIL(CT_ERR_NOMEM, "categories");
    }
    memcpy(sorted, fe->levels, sizeof(char *) * (size_t)fe->n_levels);
    qsort(sorted, (size_t)fe->n_levels, sizeof *sorted, cmp_str);
    for (int64_t i = 0; i < nt; i++) { /* this file's text codes to the model's */
        char *key = (char *)text[i], **hit = bsearch(&key, sorted, (size_t)fe->n_levels, sizeof *sorted, cmp_str);
        code_of[i] = -1;
        for (int c = 0; hit && c < fe->n_levels; c++)
            if (fe->levels[c] == *hit) code_of[i] = c;
    }
    for (int64_t r = 0; r < d->n; r++) {
        float *v = &d->x[r * F + f];
        if (isnan(*v)) continue;
        int c = -1;
        if (nt > 0) {
            c = code_of[(int64_t)*v];
        } else {
            char buf[32], *key = buf, **hit;
            snprintf(buf, sizeof buf, "%.9g", (double)*v);
            hit = bsearch(&key, sorted, (size_t)fe->n_levels, sizeof *sorted, cmp_str);
            for (int k = 0; hit && k < fe->n_levels; k++)
                if (fe->levels[k] == *hit) c = k;
        }
        *v = c >= 0 ? (float)c : NAN;
    }
    free(sorted);
    free(code_of);
    return CT_OK;
}

/* Text columns must be declared categorical. */
static ct_status check_text(const ct_trees *m, const ct_stage *src, const char *path)
{
    for (int f = 0; f < m->n_features; f++) {
        const char *const *text;
        const long *lines;
        if (m->features[f].categorical || ct_csv_levels(src, f, &text, &lines) == 0) continue;
        long first = lines[0];
        for (int64_t i = 0; i < ct_csv_levels(src, f, NULL, NULL); i++) first = lines[i] < first ? lines[i] : first;
        return CT_FAIL(CT_ERR_DATA, "%s:%ld: feature '%s' holds text; list it in [boosted_trees] categorical_features "
                       "(or fix the value)", path, first, m->features[f].name);
    }
    return CT_OK;
}

/* One file into model space; learns the features and vocabulary when
 * `learn` (the training file of a fresh model). */
static ct_status read_file(const ct_config *cfg, ct_trees *m, int learn, const char *path, const char *labels,
                           int no_label, ct_dataset *out)
{
    ct_stage *src = NULL;
    memset(out, 0, sizeof *out);
    ct_status s = ct_inputs_open_as(cfg, path, labels, no_label, &src);
    if (s == CT_OK) s = ct_dataset_from_stage(src, out);
    if (s == CT_OK && out->x_shape.rank != 1)
        s = CT_FAIL(CT_ERR_DATA, "%s: boosted trees need samples of one axis (features), got rank %d", path, out->x_shape.rank);
    if (s == CT_OK && learn) s = setup_features(cfg, m, src, path, out->x_size);
    if (s == CT_OK && out->x_size != m->n_features)
        s = CT_FAIL(CT_ERR_DATA, "%s: samples have %lld features, the model has %d", path, (long long)out->x_size,
                    m->n_features);
    if (s == CT_OK) s = check_text(m, src, path);
    if (s == CT_OK && out->y_shape.rank) s = check_labels(cfg, m, learn, src, path, out);
    for (int f = 0; s == CT_OK && f < m->n_features; f++) {
        if (!m->features[f].categorical) continue;
        if (learn) s = learn_levels(cfg, &m->features[f], f, src, path, out);
        if (s == CT_OK) s = encode_feature(&m->features[f], f, src, out);
    }
    ct_stage_close(src);
    if (s != CT_OK) ct_dataset_free(out);
    return s;
}

ct_status ct_trees_read(const ct_config *cfg, const ct_trees *m, const char *path, ct_dataset *out)
{
    /* a CSV without the label column: one column fewer than the model has features */
    ct_stage *src = NULL;
    int no_label = 0;
    if (cfg->data && cfg->data->format && strcmp(cfg->data->format, "csv") == 0 &&
        ct_inputs_open(cfg, path, NULL, &src) == CT_OK)
        no_label = ct_shape_numel(&src->x_shape) + 1 == m->n_features;
    ct_stage_close(src);
    ct_error_clear();
    return read_file(cfg, (ct_trees *)m, 0, path, NULL, no_label, out);
}

static ct_status set_loss(const ct_config *cfg, ct_trees *m)
{
    const char *loss = cfg->boosted_trees ? cfg->boosted_trees->loss : NULL;
    if (!loss) return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] needs loss = log_loss or squared_error", cfg->source);
    m->loss = strcmp(loss, "squared_error") == 0 ? CT_TREES_SQUARED_ERROR : CT_TREES_BINARY;
    m->k = 1;
    return CT_OK;
}

ct_status ct_trees_data_load(const ct_config *cfg, int want_train, ct_trees *m, ct_trees_data *out)
{
    memset(out, 0, sizeof *out);
    const Ctrain__DataConfig *d = cfg->data;
    const char *src = cfg->source ? cfg->source : "config";
    if (!d || !d->train) return CT_FAIL(CT_ERR_CONFIG, "%s: [data] needs train = <file>", src);
    int fresh = !m->features;
    if (fresh) CT_TRY(set_loss(cfg, m));
    int split = d->has_test_split && d->test_split > 0;
    if (split && d->test) return CT_FAIL(CT_ERR_CONFIG, "%s: [data] gives both test = and test_split =; choose one", src);
    ct_status s = CT_OK;
    if (want_train || fresh || split || (!d->test && !d->validation)) {
        s = read_file(cfg, m, fresh, d->train, d->train_labels, 0, &out->train);
        if (s == CT_OK && split) s = ct_dataset_split_random(&out->train, ct_inputs_decimal(d->test_split), (uint64_t)d->split_seed, &out->test);
        if (s == CT_OK && !d->validation && d->has_validation_split && d->validation_split > 0)
            s = ct_dataset_split_tail(&out->train, ct_inputs_decimal(d->validation_split), &out->val);
    }
    if (s == CT_OK && d->validation) s = read_file(cfg, m, 0, d->validation, d->validation_labels, 0, &out->val);
    if (s == CT_OK && d->test && !split) s = read_file(cfg, m, 0, d->test, d->test_labels, 0, &out->test);
    if (s != CT_OK) ct_trees_data_free(out);
    return s;
}

void ct_trees_data_free(ct_trees_data *d)
{
    ct_dataset_free(&d->train);
    ct_dataset_free(&d->val);
    ct_dataset_free(&d->test);
    memset(d, 0, sizeof *d);
}

/* class_weight = balanced (sklearn: n / (n_classes * count)) or a list. */
static ct_status class_weights(const ct_config *cfg, const ct_trees *m, const ct_dataset *train, double **out)
{
    const char *cw = cfg->boosted_trees->class_weight, *src = cfg->source ? cfg->source : "config";
    *out = NULL;
    if (!cw || !*cw) return CT_OK;
    if (m->loss == CT_TREES_SQUARED_ERROR)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] class_weight needs a classification loss", src);
    double *w = calloc((size_t)m->n_classes, sizeof *w);
    if (!w) return CT_FAIL(CT_ERR_NOMEM, "class weights");
    if (strcmp(cw, "balanced") == 0) {
        int64_t cnt[MAX_CLASSES] = {0};
        for (int64_t i = 0; i < train->n; i++) cnt[(int)train->y[i]]++;
        for (int c = 0; c < m->n_classes; c++)
            w[c] = cnt[c] ? (double)train->n / ((double)m->n_classes * (double)cnt[c]) : 0;
        *out = w;
        return CT_OK;
    }
    const char *p = cw;
    int n = 0;
    for (; *p && n <= m->n_classes; n++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0) || !isfinite(v) || n == m->n_classes) break;
        w[n] = v;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') p++;
        else if (*p) break;
    }
    if (*p || n != m->n_classes) {
        free(w);
        return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] class_weight = %s: give balanced or %d non-negative weights, "
                       "one per class", src, cw, m->n_classes);
    }
    *out = w;
    return CT_OK;
}

ct_status ct_trees_params_from_config(const ct_config *cfg, const ct_trees *m, const ct_dataset *train,
                                      ct_trees_params *p)
{
    const Ctrain__BoostedTreesConfig *b = cfg->boosted_trees;
    memset(p, 0, sizeof *p);
    p->loss = m->loss;
    p->learning_rate = b->learning_rate;
    p->l2 = b->l2_regularization;
    p->max_iter = b->max_iter;
    p->max_leaf_nodes = b->max_leaf_nodes;
    p->max_depth = b->max_depth;
    p->min_samples_leaf = b->min_samples_leaf;
    p->max_bins = b->max_bins;
    p->depthwise = b->grow_policy && strcmp(b->grow_policy, "depthwise") == 0;
    if (b->max_leaf_nodes == 1)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] max_leaf_nodes = 1: give 2 or more, or 0 for no limit", cfg->source);
    if (!p->depthwise && b->max_leaf_nodes == 0 && b->max_depth == 0)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [boosted_trees] leaf-wise growth needs max_leaf_nodes or max_depth", cfg->source);
    const char *es = b->early_stopping ? b->early_stopping : "auto";
    p->early_stopping = strcmp(es, "true") == 0 || (strcmp(es, "auto") == 0 && train->n > EARLY_STOPPING_AUTO_THRESHOLD);
    p->n_iter_no_change = b->n_iter_no_change;
    p->tol = b->tol;
    p->validation_fraction = b->validation_fraction;
    p->subsample_bins = b->subsample_bins;
    p->seed = (uint64_t)b->seed;
    return class_weights(cfg, m, train, &p->class_weight);
}

void ct_trees_params_free(ct_trees_params *p)
{
    free(p->class_weight);
    p->class_weight = NULL;
}
