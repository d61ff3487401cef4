/* Weight initializers with Keras's names and defaults. */
#ifndef CT_INIT_H
#define CT_INIT_H

#include <stdint.h>

#include "rng.h"
#include "status.h"
#include "tensor.h"

typedef enum ct_init_kind {
    CT_INIT_ZEROS = 0,
    CT_INIT_ONES,
    CT_INIT_CONSTANT,
    CT_INIT_RANDOM_NORMAL,
    CT_INIT_RANDOM_UNIFORM,
    CT_INIT_TRUNCATED_NORMAL,
    CT_INIT_GLOROT_UNIFORM,
    CT_INIT_GLOROT_NORMAL,
    CT_INIT_HE_NORMAL,
    CT_INIT_HE_UNIFORM,
    CT_INIT_LECUN_NORMAL,
    CT_INIT_LECUN_UNIFORM,
    CT_INIT_ORTHOGONAL,
    CT_INIT_UNIT_FORGET,    /* LSTM bias (4u): zeros, ones on the forget gate's quarter (unit_forget_bias) */
    CT_INIT_COUNT
} ct_init_kind;

typedef struct ct_initializer {
    ct_init_kind kind;
    double value;           /* constant */
    double mean, stddev;    /* random_normal, truncated_normal */
    double minval, maxval;  /* random_uniform */
    double gain;            /* orthogonal */
} ct_initializer;

/* "glorot_uniform", "constant(0.1)", "random_normal(mean=0, stddev=0.05)",
 * "orthogonal(gain=1)". CT_ERR_CONFIG names the spec and lists the known. */
ct_status ct_initializer_parse(const char *spec, ct_initializer *out);
const char *const *ct_initializer_names(int *n);

/* Fill `out` (numel of `shape`). Fans follow Keras: for a kernel of shape
 * (..., in, out) fan_in = receptive * in, fan_out = receptive * out. */
ct_status ct_initializer_fill(const ct_initializer *init, const ct_shape *shape, const ct_rng *rng,
                              float *out);
void ct_compute_fans(const ct_shape *shape, double *fan_in, double *fan_out);

#endif
