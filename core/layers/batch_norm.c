/* BatchNormalization over the last (channel) axis of a sample of any rank
 * (NHWC images, or Dense outputs), with Keras 2.x semantics:
 *
 *   training   y = (x - mean_B) / sqrt(var_B + eps) * gamma + beta, with the
 *              batch mean and BIASED variance over every axis but the last;
 *              moving = moving * momentum + batch * (1 - momentum)
 *   inference  the same with the moving statistics.
 *
 * Which variance feeds moving_variance follows Keras: for 4-D and 5-D
 * batches (samples of rank 3 or 4) Keras uses TF's fused op, whose batch
 * variance output carries Bessel's correction n / (n - 1)
 * (FusedBatchNormOp: batch_var = variance * rest_size_adjust; Keras keeps
 * it since _bessels_correction_test_only is True), and
 * tf.nn.fused_batch_norm raises eps to at least 1.001e-5. Other ranks take
 * Keras's non-fused path: tf.nn.moments' biased variance, eps as given.
 *
 * Weights, in Keras's order: gamma (if scale), beta (if center), then the
 * NON-trainable moving_mean and moving_variance (C).
 *
 * saved (per batch, in the first 2C slots): the batch mean and 1/sqrt(var +
 * eps) per channel. scratch: per-sample double partial sums (4C floats a
 * sample) followed by 4C floats of per-channel coefficients. The backward
 * pass follows io->training: the full gradient through the batch
 * statistics when set, otherwise the gradient of the fixed affine map the
 * inference forward applied. */
#include <math.h>
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "image_ops.h"

typedef struct batch_norm {
    ct_layer base;
    int axis;
    float momentum, eps;
    int center, scale;
    ct_initializer beta_init, gamma_init, mean_init, var_init;
    ct_regularizer beta_reg, gamma_reg;
    int gamma, beta, mmean, mvar; /* param indices; -1 when absent */
    int fused;                    /* Keras's fused path: Bessel-corrected moving variance */
} batch_norm;

static const ct_layer_key bn_keys[] = {
    {"axis", CT_KEY_INT, "-1", 0, 0, 0, 0, NULL, "the channel axis: -1 (the last)"},
    {"momentum", CT_KEY_FLOAT, "0.99", CT_KEY_RANGE, 0, 1, 0, NULL, "moving-average momentum in [0, 1]"},
    {"epsilon", CT_KEY_FLOAT, "0.001", CT_KEY_RANGE | CT_KEY_LO_OPEN, 0, INFINITY, 0, NULL, "added to the variance (> 0)"},
    {"center", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "learn beta"},
    {"scale", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "learn gamma"},
    CT_KEY_INIT("beta_initializer", "zeros"),
    CT_KEY_INIT("gamma_initializer", "ones"),
    CT_KEY_INIT("moving_mean_initializer", "zeros"),
    CT_KEY_INIT("moving_variance_initializer", "ones"),
    CT_KEY_REG("beta_regularizer"),
    CT_KEY_REG("gamma_regularizer"),
    {NULL},
};

static ct_status bn_init(ct_layer *l, const ct_layer_config *c)
{
    batch_norm *b = (batch_norm *)l;
    int64_t axis;
    double momentum, eps;
    CT_TRY(ct_layer_arg_int(l, c, "axis", &axis));
    if (axis != -1 && (axis < 1 || axis > CT_MAX_DIMS))
        return CT_FAIL(CT_ERR_CONFIG, "batch_normalization '%s': axis must be -1 (the channel axis, last), got %lld",
                       l->name, (long long)axis);
    b->axis = (int)axis;
    CT_TRY(ct_layer_arg_float(l, c, "momentum", &momentum));
    CT_TRY(ct_layer_arg_float(l, c, "epsilon", &eps));
    b->momentum = (float)momentum;
    b->eps = (float)eps;
    CT_TRY(ct_layer_arg_bool(l, c, "center", &b->center));
    CT_TRY(ct_layer_arg_bool(l, c, "scale", &b->scale));
    CT_TRY(ct_layer_arg_init(l, c, "beta_initializer", &b->beta_init));
    CT_TRY(ct_layer_arg_init(l, c, "gamma_initializer", &b->gamma_init));
    CT_TRY(ct_layer_arg_init(l, c, "moving_mean_initializer", &b->mean_init));
    CT_TRY(ct_layer_arg_init(l, c, "moving_variance_initializer", &b->var_init));
    CT_TRY(ct_layer_arg_reg(l, c, "beta_regularizer", &b->beta_reg));
    CT_TRY(ct_layer_arg_reg(l, c, "gamma_regularizer", &b->gamma_reg));
    return CT_OK;
}

static ct_status bn_infer(ct_layer *l)
{
    batch_norm *b = (batch_norm *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank < 1)
        return CT_FAIL(CT_ERR_SHAPE, "batch_normalization '%s': input must have at least one axis", l->name);
    /* Keras counts the batch axis: the last axis of a rank-r sample is r. */
    if (b->axis != -1 && b->axis != in->rank)
        return CT_FAIL(CT_ERR_CONFIG,
                       "batch_normalization '%s': axis must be -1 (the channel axis, last; here also %d), got %d",
                       l->name, in->rank, b->axis);
    int64_t c = in->dims[in->rank - 1];
    l->out_shape = *in;
    b->fused = in->rank == 3 || in->rank == 4;
    if (b->fused && b->eps < 1.001e-5f) b->eps = 1.001e-5f;
    b->gamma = b->scale ? ct_layer_add_param(l, "gamma", ct_shape1(c), &b->gamma_init, &b->gamma_reg, 1) : -1;
    b->beta = b->center ? ct_layer_add_param(l, "beta", ct_shape1(c), &b->beta_init, &b->beta_reg, 1) : -1;
    b->mmean = ct_layer_add_param(l, "moving_mean", ct_shape1(c), &b->mean_init, NULL, 0);
    b->mvar = ct_layer_add_param(l, "moving_variance", ct_shape1(c), &b->var_init, NULL, 0);
    l->saved_per_sample = 2 * c;
    l->scratch_per_sample = 8 * c;
    return CT_OK;
}

static int64_t bn_channels(const ct_layer *l) { return l->in_shape[0].dims[l->in_shape[0].rank - 1]; }

static const float *param_or_null(const ct_layer *l, int i) { return i >= 0 ? l->params[i].value : NULL; }

static void bn_forward(ct_layer *l, const ct_layer_io *io)
{
    batch_norm *b = (batch_norm *)l;
    const int64_t c = bn_channels(l), rows = ct_shape_numel(&l->in_shape[0]) / c, n = io->batch * rows;
    const float *gamma = param_or_null(l, b->gamma), *beta = param_or_null(l, b->beta);
    float *mmean = l->params[b->mmean].value, *mvar = l->params[b->mvar].value;
    float *a = io->scratch + 4 * c * io->batch;
    if (!io->training) {
        for (int64_t ch = 0; ch < c; ch++)
            a[ch] = (float)((gamma ? gamma[ch] : 1.0) / sqrt((double)mvar[ch] + b->eps));
        ct_op_bn_apply(io->in[0], mmean, a, beta, io->out, n, c);
        return;
    }
    double *work = (double *)(void *)io->scratch;
    ct_op_bn_moments(io->in[0], io->batch, rows, c, work);
    float *mean = io->saved, *inv = io->saved + c;
    const double f = 1.0 - (double)b->momentum, adjust = b->fused && n > 1 ? (double)n / (double)(n - 1) : 1.0;
    for (int64_t ch = 0; ch < c; ch++) {
        double m = work[ch], v = work[c + ch], is = 1.0 / sqrt(v + b->eps);
        mean[ch] = (float)m;
        inv[ch] = (float)is;
        a[ch] = (float)((gamma ? gamma[ch] : 1.0) * is);
        mmean[ch] = (float)((1.0 - f) * mmean[ch] + f * m);
        mvar[ch] = (float)((1.0 - f) * mvar[ch] + f * v * adjust);
    }
    ct_op_bn_apply(io->in[0], mean, a, beta, io->out, n, c);
}

static void bn_inference_affine(const ct_layer *l, float *scale, float *shift)
{
    const batch_norm *b = (const batch_norm *)l;
    const float *gamma = param_or_null(l, b->gamma), *beta = param_or_null(l, b->beta);
    const float *mmean = l->params[b->mmean].value, *mvar = l->params[b->mvar].value;
    for (int64_t ch = 0; ch < bn_channels(l); ch++) {
        /* the same rounding as bn_forward's inference scale */
        scale[ch] = (float)((gamma ? gamma[ch] : 1.0) / sqrt((double)mvar[ch] + b->eps));
        shift[ch] = (beta ? beta[ch] : 0.0f) - mmean[ch] * scale[ch];
    }
}

static void bn_backward(ct_layer *l, const ct_layer_io *io)
{
    batch_norm *b = (batch_norm *)l;
    const int64_t c = bn_channels(l), rows = ct_shape_numel(&l->in_shape[0]) / c, n = io->batch * rows;
    const float *gamma = param_or_null(l, b->gamma);
    float *coef = io->scratch + 4 * c * io->batch, *k1 = coef, *k2 = coef + c, *k3 = coef + 2 * c;
    const float *mean, *inv;
    if (io->training) {
        mean = io->saved;
        inv = io->saved + c;
    } else {
        float *iv = coef + 3 * c;
        const float *mvar = l->params[b->mvar].value;
        for (int64_t ch = 0; ch < c; ch++) iv[ch] = (float)(1.0 / sqrt((double)mvar[ch] + b->eps));
        mean = l->params[b->mmean].value;
        inv = iv;
    }
    double *work = (double *)(void *)io->scratch;
    ct_op_bn_bwd_sums(io->in[0], io->dout, mean, inv, io->batch, rows, c, work);
    for (int64_t ch = 0; ch < c; ch++) {
        double sdy = work[ch], sdx = work[c + ch], g = gamma ? gamma[ch] : 1.0;
        if (b->gamma >= 0) l->params[b->gamma].grad[ch] += (float)sdx;
        if (b->beta >= 0) l->params[b->beta].grad[ch] += (float)sdy;
        /* dx = g * inv * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * inv */
        k1[ch] = (float)(g * inv[ch]);
        k2[ch] = io->training ? (float)(-g * inv[ch] * inv[ch] * sdx / (double)n) : 0.0f;
        k3[ch] = io->training ? (float)(-g * inv[ch] * sdy / (double)n) : 0.0f;
    }
    if (io->din[0]) ct_op_bn_bwd_dx(io->in[0], io->dout, mean, k1, k2, k3, io->din[0], n, c);
}

static void bn_keras(const ct_layer *l, ct_json *j)
{
    const batch_norm *b = (const batch_norm *)l;
    ct_json_kint(j, "axis", ct_keras_last_axis(l));
    ct_json_knumf(j, "momentum", b->momentum);
    ct_json_knumf(j, "epsilon", b->eps);
    ct_json_kbool(j, "center", b->center);
    ct_json_kbool(j, "scale", b->scale);
    ct_keras_initializer(j, "beta_initializer", &b->beta_init);
    ct_keras_initializer(j, "gamma_initializer", &b->gamma_init);
    ct_keras_initializer(j, "moving_mean_initializer", &b->mean_init);
    ct_keras_initializer(j, "moving_variance_initializer", &b->var_init);
    ct_keras_regularizer(j, "beta_regularizer", &b->beta_reg);
    ct_keras_regularizer(j, "gamma_regularizer", &b->gamma_reg);
    ct_json_knull(j, "beta_constraint");
    ct_json_knull(j, "gamma_constraint");
}

const ct_layer_type ct_layer_batch_normalization = {
    .name = "batch_normalization", .keras_class = "BatchNormalization", .keys = bn_keys,
    .size = sizeof(batch_norm), .min_inputs = 1, .max_inputs = 1,
    .init = bn_init, .infer = bn_infer, .forward = bn_forward, .backward = bn_backward,
    .inference_affine = bn_inference_affine,    .keras_config = bn_keras,
};
