/* Losses with Keras's names, reductions and numerics.
 *
 * Predictions come as (n, d) rows. Targets are (n, d) for dense targets or
 * (n, 1) class indices for sparse_categorical_crossentropy. The reduction
 * is Keras's SUM_OVER_BATCH_SIZE: the weighted per-sample losses summed
 * and divided by the number of samples (not by the sum of weights). */
#ifndef CT_LOSS_H
#define CT_LOSS_H

#include <stdint.h>

#include "status.h"

typedef enum ct_loss_kind {
    CT_LOSS_MSE = 0,
    CT_LOSS_MAE,
    CT_LOSS_HUBER,
    CT_LOSS_BCE,
    CT_LOSS_CCE,
    CT_LOSS_SCCE,
    CT_LOSS_COUNT,
    CT_LOSS_CUSTOM         /* registered through the C API; ct_loss.custom says which */
} ct_loss_kind;

typedef struct ct_loss {
    ct_loss_kind kind;
    int from_logits;     /* bce, cce, scce: predictions are logits */
    double delta;        /* huber: 1.0 */
    int custom;          /* CT_LOSS_CUSTOM: its index (core/capi_loss.h) */
} ct_loss;

/* "mean_squared_error" (or "mse"), "mean_absolute_error" ("mae"), "huber",
 * "binary_crossentropy", "categorical_crossentropy",
 * "sparse_categorical_crossentropy". CT_ERR_CONFIG lists the known names. */
ct_status ct_loss_from_name(const char *name, ct_loss *out);
const char *ct_loss_name(ct_loss_kind k);
const char *const *ct_loss_names(int *n);

/* Target values per sample: d for dense targets, 1 for scce. */
int64_t ct_loss_target_width(const ct_loss *l, int64_t d);

/* Outputs of any rank, reduced as Keras reduces them: each sample's
 * output is `positions` rows of d values (a (T, C) output is T rows of
 * C; an (H, W, C) image H*W rows of C), its targets `positions` rows of
 * the target width (a (T,) index sequence for scce against (T, C)). The
 * loss of a sample is the mean over its positions; w[i] (NULL: ones)
 * weighs all of sample i's positions; per_sample[i] gets that mean.
 * Returns sum_i w_i * mean_p loss_ip, and the gradient of that times
 * grad_scale into grad (n * positions * d). */
double ct_loss_compute_positions(const ct_loss *l, const float *pred, const float *target, const float *w,
                                 int64_t n, int64_t positions, int64_t d, float *grad, float grad_scale,
                                 float *per_sample, ct_status *status);

/* Per-sample loss for row i into per_sample[i] (unweighted), and the
 * gradient of (sum_i w_i * loss_i) * grad_scale with respect to pred into
 * grad (overwritten; may be NULL). w may be NULL (all ones). Returns
 * sum_i w_i * loss_i. Sparse targets out of [0, d) give CT_ERR_DATA via
 * *status. Numerically stable: logits go through log-sum-exp. */
double ct_loss_compute(const ct_loss *l, const float *pred, const float *target, const float *w,
                       int64_t n, int64_t d, float *grad, float grad_scale, float *per_sample,
                       ct_status *status);

#endif
