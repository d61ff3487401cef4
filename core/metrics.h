/* Metrics as (weighted sum, weight count) pairs, so that they reduce
 * across batches and ranks exactly; the value is sum / count. */
#ifndef CT_METRICS_H
#define CT_METRICS_H

#include <stdint.h>

#include "loss.h"
#include "status.h"

typedef enum ct_metric_kind {
    CT_METRIC_BINARY_ACCURACY = 0,
    CT_METRIC_CATEGORICAL_ACCURACY,
    CT_METRIC_SPARSE_CATEGORICAL_ACCURACY,
    CT_METRIC_TOP_K_CATEGORICAL_ACCURACY,
    CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY,
    CT_METRIC_MSE,
    CT_METRIC_MAE,
    CT_METRIC_LOSS,       /* an output's loss in a multi-output model ("out_a_loss"): sums added by the model */
    CT_METRIC_COUNT,
    CT_METRIC_CUSTOM      /* registered through the C API; ct_metric.custom says which */
} ct_metric_kind;

typedef struct ct_metric {
    ct_metric_kind kind;
    char name[96];        /* as shown: "accuracy", "mse", "top_k_categorical_accuracy", "out_a_accuracy" */
    int k;                /* top-k: 5 */
    double threshold;     /* binary accuracy: 0.5 */
    double sum, count;
    int custom;           /* CT_METRIC_CUSTOM: its index (core/capi_loss.h) */
} ct_metric;

/* Resolve a configured name. "accuracy"/"acc" follows Keras: binary when
 * the model has one output unit, sparse categorical when the targets are
 * class indices (sparse loss), categorical otherwise; the shown name stays
 * "accuracy". Known names: accuracy, acc, binary_accuracy,
 * categorical_accuracy, sparse_categorical_accuracy,
 * top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mse,
 * mean_squared_error, mae, mean_absolute_error. */
ct_status ct_metric_resolve(const char *name, const ct_loss *loss, int64_t out_dim, ct_metric *out);
const char *const *ct_metric_names(int *n);

void ct_metric_reset(ct_metric *m);
/* pred (n, d) model outputs (probabilities, not logits); target as for the
 * loss (n, d) or (n, 1) indices; w per-sample weights or NULL. */
void ct_metric_update(ct_metric *m, const float *pred, const float *target, const float *w, int64_t n,
                      int64_t d);
double ct_metric_value(const ct_metric *m);
/* Outputs of any rank (see ct_loss_compute_positions): sample i's value is
 * the mean over its positions, weighted by w[i]. */
void ct_metric_update_positions(ct_metric *m, const float *pred, const float *target, const float *w, int64_t n,
                                int64_t positions, int64_t d);

#endif
