/* Metrics with tf.keras 2.11 semantics (keras/metrics/, the match helpers
 * of keras/utils/metrics_utils.py and tf.math.in_top_k), kept as a
 * weighted sum and a weight count like Keras's Mean metrics: each sample
 * contributes its per-sample value (the mean over its d outputs where the
 * metric has one) times its weight, and its weight (1 without weights) to
 * the count. */
#include "metrics.h"
#include "reduce.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "capi_loss.h"
#include "config.h"

/* Samples are independent; below this many values one thread is faster. */
#define CT_METRIC_PAR_MIN 65536

/* "accuracy" and "acc" resolve at compile time; -1 marks them. */
#define CT_METRIC_AUTO (-1)

static const struct {
    const char *name;
    int kind;
} metric_table[] = {
    {"accuracy", CT_METRIC_AUTO},
    {"acc", CT_METRIC_AUTO},
    {"binary_accuracy", CT_METRIC_BINARY_ACCURACY},
    {"categorical_accuracy", CT_METRIC_CATEGORICAL_ACCURACY},
    {"sparse_categorical_accuracy", CT_METRIC_SPARSE_CATEGORICAL_ACCURACY},
    {"top_k_categorical_accuracy", CT_METRIC_TOP_K_CATEGORICAL_ACCURACY},
    {"sparse_top_k_categorical_accuracy", CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY},
    {"mse", CT_METRIC_MSE},
    {"mean_squared_error", CT_METRIC_MSE},
    {"mae", CT_METRIC_MAE},
    {"mean_absolute_error", CT_METRIC_MAE},
};
#define N_METRIC_NAMES ((int)(sizeof metric_table / sizeof metric_table[0]))

static const char *const metric_names[N_METRIC_NAMES] = {
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "mse", "mean_squared_error",
    "mae", "mean_absolute_error",
};

const char *const *ct_metric_names(int *n)
{
    *n = N_METRIC_NAMES;
    return metric_names;
}

static int is_sparse_kind(ct_metric_kind k)
{
    return k == CT_METRIC_SPARSE_CATEGORICAL_ACCURACY || k == CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY;
}

/* Keras's compile_utils: binary when the model has one output unit, else
 * sparse when targets are class indices, else categorical. */
static ct_metric_kind resolve_accuracy(const ct_loss *loss, int64_t out_dim)
{
    if (out_dim == 1) return CT_METRIC_BINARY_ACCURACY;
    if (loss && loss->kind == CT_LOSS_SCCE) return CT_METRIC_SPARSE_CATEGORICAL_ACCURACY;
    return CT_METRIC_CATEGORICAL_ACCURACY;
}

static ct_status fail_unknown(const char *name)
{
    char list[512] = "";
    for (int i = 0; i < N_METRIC_NAMES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", metric_names[i]);
    const char *near = name ? ct_nearest_name(name, metric_names, N_METRIC_NAMES) : NULL;
    return CT_FAIL(CT_ERR_CONFIG, "unknown metric '%s': known are %s%s%s%s", name ? name : "(null)", list,
                   near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
}

ct_status ct_metric_resolve(const char *name, const ct_loss *loss, int64_t out_dim, ct_metric *out)
{
    int i = 0;
    while (name && i < N_METRIC_NAMES && strcmp(name, metric_table[i].name) != 0) i++;
    if (name && i == N_METRIC_NAMES && ct_custom_metric_find(name) >= 0) {
        memset(out, 0, sizeof *out);
        out->kind = CT_METRIC_CUSTOM;
        out->custom = ct_custom_metric_find(name);
        snprintf(out->name, sizeof out->name, "%s", name);
        return CT_OK;
    }
    if (!name || i == N_METRIC_NAMES) return fail_unknown(name);
    int kind = metric_table[i].kind;
    if (kind == CT_METRIC_AUTO) kind = resolve_accuracy(loss, out_dim);

    /* The targets' layout comes from the loss: (n, 1) indices for the
     * sparse loss, (n, d) otherwise. A metric reading the other layout
     * would walk the wrong stride. (Keras fails on the shapes for the
     * accuracies and silently broadcasts for mse/mae; we refuse both.) */
    if (loss && out_dim > 1 && is_sparse_kind((ct_metric_kind)kind) != (loss->kind == CT_LOSS_SCCE)) {
        const char *sparse = "class-index (n, 1)", *dense = "dense (n, d)";
        return CT_FAIL(CT_ERR_CONFIG, "metric '%s' needs %s targets, but loss %s gives %s targets", name,
                       is_sparse_kind((ct_metric_kind)kind) ? sparse : dense, ct_loss_name(loss->kind),
                       loss->kind == CT_LOSS_SCCE ? sparse : dense);
    }

    memset(out, 0, sizeof *out);
    out->kind = (ct_metric_kind)kind;
    snprintf(out->name, sizeof out->name, "%s", name);
    out->k = 5;
    out->threshold = 0.5;
    return CT_OK;
}

void ct_metric_reset(ct_metric *m)
{
    m->sum = 0;
    m->count = 0;
}

double ct_metric_value(const ct_metric *m) { return m->count > 0 ? m->sum / m->count : 0.0; }

/* ---- per-sample values ---------------------------------------------------
 * p (d) predictions, t (d) targets or (1) class index. */

/* tf.argmax: the first index of the maximum. */
static int64_t argmax(const float *x, int64_t d)
{
    int64_t best = 0;
    for (int64_t j = 1; j < d; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

/* metrics_utils.binary_matches: (p > threshold) as 0/1, compared for
 * equality with the target, averaged over the outputs. A soft target
 * such as 0.9 therefore never matches, as in Keras. */
static double binary_accuracy(const ct_metric *m, const float *p, const float *t, int64_t d)
{
    const float thr = (float)m->threshold;
    int64_t hits = 0;
    for (int64_t j = 0; j < d; j++) hits += (p[j] > thr ? 1.0f : 0.0f) == t[j];
    return (double)hits / d;
}

/* sparse_categorical_matches casts the argmax to the target's float type
 * and compares, so a target of 2.5 matches nothing. */
static double sparse_accuracy(const float *p, float c, int64_t d) { return (float)argmax(p, d) == c; }

/* tf.math.in_top_k: the target is in the top k when fewer than k classes
 * score strictly higher, so ties at the boundary all count; any non-finite
 * score in the row, or a target outside [0, d), counts as a miss. */
static double in_top_k(const float *p, int64_t c, int64_t d, int k)
{
    if (c < 0 || c >= d || !isfinite(p[c])) return 0;
    int64_t higher = 0;
    for (int64_t j = 0; j < d; j++) {
        if (!isfinite(p[j])) return 0;
        higher += p[j] > p[c];
    }
    return higher < k;
}

/* The sparse top-k metric casts float targets to int32, truncating. */
static int64_t truncate_index(float c, int64_t d) { return c > -1 && c < (float)d ? (int64_t)c : -1; }

static double mean_error(const float *p, const float *t, int64_t d, int squared)
{
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double e = (double)p[j] - t[j];
        sum += squared ? e * e : fabs(e);
    }
    return sum / d;
}

static double sample_value(const ct_metric *m, const float *p, const float *t, int64_t d)
{
    switch (m->kind) {
    case CT_METRIC_BINARY_ACCURACY: return binary_accuracy(m, p, t, d);
    case CT_METRIC_CATEGORICAL_ACCURACY: return argmax(p, d) == argmax(t, d);
    case CT_METRIC_SPARSE_CATEGORICAL_ACCURACY: return sparse_accuracy(p, t[0], d);
    case CT_METRIC_TOP_K_CATEGORICAL_ACCURACY: return in_top_k(p, argmax(t, d), d, m->k);
    case CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY: return in_top_k(p, truncate_index(t[0], d), d, m->k);
    case CT_METRIC_MSE: return mean_error(p, t, d, 1);
    case CT_METRIC_MAE: return mean_error(p, t, d, 0);
    default: return NAN;
    }
}

void ct_metric_update(ct_metric *m, const float *pred, const float *target, const float *w, int64_t n,
                      int64_t d)
{
    ct_metric_update_positions(m, pred, target, w, n, 1, d);
}

void ct_metric_update_positions(ct_metric *m, const float *pred, const float *target, const float *w, int64_t n,
                                int64_t positions, int64_t d)
{
    if (n <= 0 || d <= 0 || positions <= 0 || m->kind == CT_METRIC_LOSS) return;
    if (m->kind == CT_METRIC_CUSTOM) {
        ct_custom_metric_update(m->custom, pred, target, w, n * positions, d, &m->sum, &m->count);
        return;
    }
    const int64_t tw = is_sparse_kind(m->kind) ? 1 : d, P = positions;
    /* fixed blocks, summed in order: the same sums for any thread count */
    int64_t bs = ct_reduce_block(n, 8), nb = ct_reduce_nblocks(n, bs);
    double part_sum[CT_REDUCE_BLOCKS], part_count[CT_REDUCE_BLOCKS];
#pragma omp parallel for schedule(static) if (n * P * d >= CT_METRIC_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double sum = 0, count = 0;
        for (int64_t i = b * bs; i < n && i < (b + 1) * bs; i++) {
            double wi = w ? w[i] : 1.0, v = 0;
            for (int64_t p = 0; p < P; p++) v += sample_value(m, pred + (i * P + p) * d, target + (i * P + p) * tw, d);
            sum += wi * (P == 1 ? v : v / (double)P);
            count += wi;
        }
        part_sum[b] = sum;
        part_count[b] = count;
    }
    m->sum += ct_reduce_sum(part_sum, nb);
    m->count += ct_reduce_sum(part_count, nb);
}
