/* Losses with tf.keras 2.11 semantics: keras/losses.py for the per-sample
 * means and the backend functions (keras/backend.py) for the
 * crossentropies, including their clipping to [epsilon, 1 - epsilon].
 *
 * Each loss is a row function: the loss of one sample of d values and,
 * when asked, its gradient times a scale. The gradient is the derivative
 * of exactly what the row function computes, clipping included (zero where
 * a probability was clipped, as TF's clip_by_value gradient). Rows are
 * computed in double from float inputs. */
#include "loss.h"
#include "reduce.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "capi_loss.h"
#include "config.h"

/* Rows are independent; below this many values one thread is faster. */
#define CT_LOSS_PAR_MIN 65536

/* Keras's backend.epsilon() as the float32 constant the backend clips
 * float32 tensors with; 1 - eps is rounded to float32 as well. */
#define CT_LOSS_EPS 1e-7f
static const double clip_lo = CT_LOSS_EPS;
static const double clip_hi = 1.0f - CT_LOSS_EPS;

static const struct {
    const char *name;
    ct_loss_kind kind;
} loss_table[] = {
    {"mean_squared_error", CT_LOSS_MSE},
    {"mse", CT_LOSS_MSE},
    {"mean_absolute_error", CT_LOSS_MAE},
    {"mae", CT_LOSS_MAE},
    {"huber", CT_LOSS_HUBER},
    {"huber_loss", CT_LOSS_HUBER},
    {"binary_crossentropy", CT_LOSS_BCE},
    {"categorical_crossentropy", CT_LOSS_CCE},
    {"sparse_categorical_crossentropy", CT_LOSS_SCCE},
};
#define N_LOSS_NAMES ((int)(sizeof loss_table / sizeof loss_table[0]))

static const char *const loss_names[N_LOSS_NAMES] = {
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "huber", "huber_loss",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
};

const char *const *ct_loss_names(int *n)
{
    *n = N_LOSS_NAMES;
    return loss_names;
}

/* The canonical name is the first table entry of a kind. */
const char *ct_loss_name(ct_loss_kind k)
{
    if (k == CT_LOSS_CUSTOM) return "custom loss";
    for (int i = 0; i < N_LOSS_NAMES; i++)
        if (loss_table[i].kind == k) return loss_table[i].name;
    return "?";
}

ct_status ct_loss_from_name(const char *name, ct_loss *out)
{
    for (int i = 0; name && i < N_LOSS_NAMES; i++)
        if (strcmp(name, loss_table[i].name) == 0) {
            memset(out, 0, sizeof *out);
            out->kind = loss_table[i].kind;
            out->delta = 1.0; /* Keras's Huber default */
            return CT_OK;
        }
    int custom = ct_custom_loss_find(name);
    if (custom >= 0) {
        memset(out, 0, sizeof *out);
        out->kind = CT_LOSS_CUSTOM;
        out->custom = custom;
        return CT_OK;
    }
    char list[512] = "";
    for (int i = 0; i < N_LOSS_NAMES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", loss_names[i]);
    const char *near = name ? ct_nearest_name(name, loss_names, N_LOSS_NAMES) : NULL;
    return CT_FAIL(CT_ERR_CONFIG, "unknown loss '%s': known are %s%s%s%s", name ? name : "(null)", list,
                   near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
}

int64_t ct_loss_target_width(const ct_loss *l, int64_t d)
{
    if (l->kind == CT_LOSS_CUSTOM) return ct_custom_loss_sparse(l->custom) ? 1 : d;
    return l->kind == CT_LOSS_SCCE ? 1 : d;
}

/* ---- row functions ------------------------------------------------------
 * p (d) predictions, t (d) targets or (1) class index, g (d) gradient out
 * or NULL, s the factor the gradient is multiplied by. Returns the loss. */

typedef double (*row_fn)(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s);

static double sign(double x) { return (double)((x > 0) - (x < 0)); }

static double row_mse(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double e = (double)p[j] - t[j];
        sum += e * e;
        if (g) g[j] = (float)(2 * e * s / d);
    }
    return sum / d;
}

static double row_mae(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double e = (double)p[j] - t[j];
        sum += fabs(e);
        if (g) g[j] = (float)(sign(e) * s / d); /* TF's |x| has gradient 0 at 0 */
    }
    return sum / d;
}

static double row_huber(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    const double delta = l->delta;
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double e = (double)p[j] - t[j], a = fabs(e);
        int quadratic = a <= delta;
        sum += quadratic ? 0.5 * e * e : delta * a - 0.5 * delta * delta;
        if (g) g[j] = (float)((quadratic ? e : delta * sign(e)) * s / d);
    }
    return sum / d;
}

/* TF's clip_by_value passes the gradient at the bounds themselves and
 * blocks it strictly outside. */
static int clipped(double x) { return x < clip_lo || x > clip_hi; }
static double clip(double x) { return x < clip_lo ? clip_lo : (x > clip_hi ? clip_hi : x); }

/* backend.binary_crossentropy: clip, then add epsilon once more inside
 * both logs (2.11 does both). */
static double row_bce(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    const double eps = CT_LOSS_EPS;
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double pc = clip(p[j]), tj = t[j];
        double a = pc + eps, b = 1 - pc + eps;
        sum -= tj * log(a) + (1 - tj) * log(b);
        if (g) g[j] = clipped(p[j]) ? 0.0f : (float)((-tj / a + (1 - tj) / b) * s / d);
    }
    return sum / d;
}

static double sigmoid(double x)
{
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x t + log(1 + e^-|x|). */
static double row_bce_logits(const ct_loss *l, const float *p, const float *t, int64_t d, float *g,
                             double s)
{
    double sum = 0;
    for (int64_t j = 0; j < d; j++) {
        double x = p[j], tj = t[j];
        sum += fmax(x, 0) - x * tj + log1p(exp(-fabs(x)));
        if (g) g[j] = (float)((sigmoid(x) - tj) * s / d);
    }
    return sum / d;
}

/* backend.categorical_crossentropy: q = p / sum(p), clip q, -sum t log q.
 * With G_j = dL/dq_j (0 where clipped), the chain rule through the
 * normalisation gives dL/dp_k = (G_k - sum_j G_j q_j) / sum(p). */
static double row_cce(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    double total = 0, loss = 0, dot = 0;
    for (int64_t j = 0; j < d; j++) total += p[j];
    for (int64_t j = 0; j < d; j++) {
        double q = p[j] / total, qc = clip(q);
        loss -= t[j] * log(qc);
        dot += clipped(q) ? 0 : -t[j] / qc * q;
    }
    for (int64_t j = 0; g && j < d; j++) {
        double q = p[j] / total;
        double gq = clipped(q) ? 0 : -t[j] / clip(q);
        g[j] = (float)((gq - dot) / total * s);
    }
    return loss;
}

static double log_sum_exp(const float *x, int64_t d, double *max_out)
{
    double m = x[0], z = 0;
    for (int64_t j = 1; j < d; j++) m = x[j] > m ? x[j] : m;
    for (int64_t j = 0; j < d; j++) z += exp(x[j] - m);
    *max_out = m;
    return m + log(z);
}

/* softmax_cross_entropy_with_logits: sum_j t_j (lse - x_j). Its exact
 * gradient is softmax * sum(t) - t; TF's kernel uses softmax - t, the
 * same when the targets sum to one. */
static double row_cce_logits(const ct_loss *l, const float *p, const float *t, int64_t d, float *g,
                             double s)
{
    double m, lse = log_sum_exp(p, d, &m), loss = 0, tsum = 0;
    for (int64_t j = 0; j < d; j++) {
        loss += t[j] * (lse - p[j]);
        tsum += t[j];
    }
    for (int64_t j = 0; g && j < d; j++) g[j] = (float)((exp(p[j] - lse) * tsum - t[j]) * s);
    return loss;
}

/* backend.sparse_categorical_crossentropy: clip p, take logs and feed them
 * to sparse softmax crossentropy, i.e. log(sum_j pc_j) - log(pc_c).
 * Unlike the dense version it normalises after clipping, not before. */
static double row_scce(const ct_loss *l, const float *p, const float *t, int64_t d, float *g, double s)
{
    const int64_t c = (int64_t)t[0];
    double total = 0;
    for (int64_t j = 0; j < d; j++) total += clip(p[j]);
    double pc = clip(p[c]);
    for (int64_t j = 0; g && j < d; j++)
        g[j] = clipped(p[j]) ? 0.0f : (float)((1 / total - (j == c ? 1 / pc : 0)) * s);
    return log(total) - log(pc);
}

static double row_scce_logits(const ct_loss *l, const float *p, const float *t, int64_t d, float *g,
                              double s)
{
    const int64_t c = (int64_t)t[0];
    double m, lse = log_sum_exp(p, d, &m);
    for (int64_t j = 0; g && j < d; j++) g[j] = (float)((exp(p[j] - lse) - (j == c)) * s);
    return lse - p[c];
}

/* [kind][from_logits]; the regression losses have no logits form. */
static const row_fn row_fns[CT_LOSS_COUNT][2] = {
    [CT_LOSS_MSE] = {row_mse, row_mse},
    [CT_LOSS_MAE] = {row_mae, row_mae},
    [CT_LOSS_HUBER] = {row_huber, row_huber},
    [CT_LOSS_BCE] = {row_bce, row_bce_logits},
    [CT_LOSS_CCE] = {row_cce, row_cce_logits},
    [CT_LOSS_SCCE] = {row_scce, row_scce_logits},
};

/* Class indices arrive as floats; anything that is not an exact integer
 * in [0, d) would index outside the row. Checked on the calling thread so
 * the error record is the caller's. */
static ct_status check_sparse_targets(const float *target, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++) {
        float c = target[i];
        if (!(c >= 0 && c < (float)d) || c != floorf(c))
            return CT_FAIL(CT_ERR_DATA,
                           "sparse_categorical_crossentropy: sample %lld has target %g; expected an "
                           "integer class index in [0, %lld)",
                           (long long)i, (double)c, (long long)d);
    }
    return CT_OK;
}

double ct_loss_compute(const ct_loss *l, const float *pred, const float *target, const float *w,
                       int64_t n, int64_t d, float *grad, float grad_scale, float *per_sample,
                       ct_status *status)
{
    return ct_loss_compute_positions(l, pred, target, w, n, 1, d, grad, grad_scale, per_sample, status);
}

double ct_loss_compute_positions(const ct_loss *l, const float *pred, const float *target, const float *w,
                                 int64_t n, int64_t positions, int64_t d, float *grad, float grad_scale,
                                 float *per_sample, ct_status *status)
{
    ct_status st = CT_OK;
    if (l->kind == CT_LOSS_CUSTOM)
        return ct_custom_loss_compute(l->custom, pred, target, w, n, d, grad, grad_scale, per_sample, status);
    if ((unsigned)l->kind >= CT_LOSS_COUNT)
        st = CT_FAIL(CT_ERR_USAGE, "loss kind %d is not a known loss", (int)l->kind);
    else if (d < 1)
        st = CT_FAIL(CT_ERR_SHAPE, "%s: predictions have %lld values per sample", ct_loss_name(l->kind),
                     (long long)d);
    else if (positions < 1)
        st = CT_FAIL(CT_ERR_SHAPE, "%s: %lld positions per sample", ct_loss_name(l->kind), (long long)positions);
    else if (l->kind == CT_LOSS_SCCE)
        st = check_sparse_targets(target, n * positions, d);
    if (status) *status = st;
    if (st != CT_OK) {
        /* Leave defined values behind for a caller that ignores the status. */
        if (grad && d > 0 && positions > 0) memset(grad, 0, (size_t)(n * positions * d) * sizeof *grad);
        if (per_sample) memset(per_sample, 0, (size_t)n * sizeof *per_sample);
        return 0.0;
    }

    const row_fn f = row_fns[l->kind][l->from_logits ? 1 : 0];
    const int64_t tw = ct_loss_target_width(l, d);
    const int64_t P = positions;
    /* fixed blocks, summed in order: the same total for any thread count */
    int64_t bs = ct_reduce_block(n, 8), nb = ct_reduce_nblocks(n, bs);
    double part[CT_REDUCE_BLOCKS];
#pragma omp parallel for schedule(static) if (n * P * d >= CT_LOSS_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double total = 0;
        for (int64_t i = b * bs; i < n && i < (b + 1) * bs; i++) {
            double wi = w ? w[i] : 1.0, li = 0;
            for (int64_t p = 0; p < P; p++) {
                int64_t r = i * P + p;
                li += f(l, pred + r * d, target + r * tw, d, grad ? grad + r * d : NULL, wi * grad_scale / (double)P);
            }
            li /= (double)P;
            if (per_sample) per_sample[i] = (float)li;
            total += wi * li;
        }
        part[b] = total;
    }
    return ct_reduce_sum(part, nb);
}
