/* The registry of losses and metrics registered through the public API
 * (core/capi_loss.c), as loss.c and metrics.c consult it. */
#ifndef CT_CAPI_LOSS_H
#define CT_CAPI_LOSS_H

#include <stdint.h>

#include "status.h"

/* Index of a registered loss / metric, -1 when there is none. */
int ct_custom_loss_find(const char *name);
int ct_custom_metric_find(const char *name);
const char *ct_custom_loss_name(int idx);
int ct_custom_loss_sparse(int idx);
/* ct_loss_compute's contract for a registered loss. */
double ct_custom_loss_compute(int idx, const float *pred, const float *target, const float *w, int64_t n, int64_t d,
                              float *grad, float grad_scale, float *per_sample, ct_status *status);
/* Adds sum_i w_i v_i and sum_i w_i. */
void ct_custom_metric_update(int idx, const float *pred, const float *target, const float *w, int64_t n, int64_t d,
                             double *sum, double *count);

#endif
