/* DepthwiseConv2D and SeparableConv2D (Keras), NHWC.
 *
 * DepthwiseConv2D: each input channel k has depth_multiplier m filters of
 * its own; output channel k*m + j. x (B, H, W, C), depthwise_kernel
 * (kh, kw, C, m), bias (C*m), z (B, OH, OW, C*m).
 *
 * SeparableConv2D: that depthwise step (strides and dilation apply there,
 * no bias), then a 1x1 convolution: pointwise_kernel (1, 1, C*m, filters),
 * bias (filters). The depthwise result u (B, OH, OW, C*m) is kept from
 * forward to backward in `saved`; its gradient lives in scratch. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "conv_common.h"
#include "conv.h"
#include "ops.h"


typedef struct depthwise {
    ct_layer base;
    int filters, dm, use_bias; /* filters: separable only */
    ct_conv_window win;
    ct_initializer dinit, pinit, binit;
    ct_regularizer dreg, preg, breg;
    int dkernel, pkernel, bias;
    ct_conv2d_geom g; /* the depthwise step: f = C * m */
} depthwise;

#define DEPTHWISE_KEYS                                                                                    \
    CT_KEYS_CONV_WINDOW,                                                                                  \
        {"depth_multiplier", CT_KEY_INT, "1", CT_KEY_RANGE, 1, INT32_MAX, 0, NULL, "filters per input channel"}, \
        CT_KEY_ACTIVATION, CT_KEY_USE_BIAS, CT_KEY_INIT("depthwise_initializer", "glorot_uniform"),         \
        CT_KEY_INIT("bias_initializer", "zeros"), CT_KEY_REG("depthwise_regularizer"), CT_KEY_REG("bias_regularizer")

static const ct_layer_key depthwise_keys[] = {DEPTHWISE_KEYS, {NULL}};

static const ct_layer_key separable_keys[] = {
    {"filters", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INT32_MAX, 0, NULL, "output channels (>= 1)"},
    DEPTHWISE_KEYS,
    CT_KEY_INIT("pointwise_initializer", "glorot_uniform"),
    CT_KEY_REG("pointwise_regularizer"),
    {NULL},
};

static ct_status init_common(ct_layer *l, const ct_layer_config *c, int separable)
{
    depthwise *d = (depthwise *)l;
    int64_t v;
    if (separable) {
        CT_TRY(ct_layer_arg_int(l, c, "filters", &v));
        d->filters = (int)v;
    }
    CT_TRY(ct_layer_arg_int(l, c, "depth_multiplier", &v));
    d->dm = (int)v;
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &d->use_bias));
    CT_TRY(ct_conv_layer_window(l, c, &d->win));
    CT_TRY(ct_layer_arg_activation(l, c, "activation"));
    CT_TRY(ct_layer_arg_init(l, c, "depthwise_initializer", &d->dinit));
    CT_TRY(ct_layer_arg_init(l, c, "bias_initializer", &d->binit));
    CT_TRY(ct_layer_arg_reg(l, c, "depthwise_regularizer", &d->dreg));
    CT_TRY(ct_layer_arg_reg(l, c, "bias_regularizer", &d->breg));
    if (separable) {
        CT_TRY(ct_layer_arg_init(l, c, "pointwise_initializer", &d->pinit));
        CT_TRY(ct_layer_arg_reg(l, c, "pointwise_regularizer", &d->preg));
    }
    return CT_OK;
}

static ct_status depthwise_init(ct_layer *l, const ct_layer_config *c) { return init_common(l, c, 0); }
static ct_status separable_init(ct_layer *l, const ct_layer_config *c) { return init_common(l, c, 1); }

static ct_status infer_common(ct_layer *l, int separable)
{
    depthwise *d = (depthwise *)l;
    int64_t C = l->in_shape[0].rank == 3 ? l->in_shape[0].dims[2] : 0;
    CT_TRY(ct_conv_layer_geom(l, &d->win, (int)(C * d->dm), &d->g));
    int64_t cm = C * d->dm, out_c = separable ? d->filters : cm;
    l->out_shape = ct_shape3(d->g.oh, d->g.ow, out_c);
    int64_t kd[4] = {d->win.kh, d->win.kw, C, d->dm};
    d->dkernel = ct_layer_add_param(l, "depthwise_kernel", ct_shape_make(4, kd), &d->dinit, &d->dreg, 1);
    d->pkernel = -1;
    if (separable) {
        int64_t kp[4] = {1, 1, cm, d->filters};
        d->pkernel = ct_layer_add_param(l, "pointwise_kernel", ct_shape_make(4, kp), &d->pinit, &d->preg, 1);
        int64_t u = (int64_t)d->g.oh * d->g.ow * cm;
        l->saved_per_sample = u;   /* u */
        l->scratch_per_sample = u; /* du */
    }
    d->bias = d->use_bias ? ct_layer_add_param(l, "bias", ct_shape1(out_c), &d->binit, &d->breg, 1) : -1;
    return CT_OK;
}

static ct_status depthwise_infer(ct_layer *l) { return infer_common(l, 0); }
static ct_status separable_infer(ct_layer *l) { return infer_common(l, 1); }

static const float *bias_of(const ct_layer *l, int i) { return i >= 0 ? l->params[i].value : NULL; }

static void depthwise_forward(ct_layer *l, const ct_layer_io *io)
{
    depthwise *d = (depthwise *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    ct_op_depthwise_conv2d_fwd(&g, io->in[0], l->params[d->dkernel].value, bias_of(l, d->bias), io->out);
}

static void depthwise_backward(ct_layer *l, const ct_layer_io *io)
{
    depthwise *d = (depthwise *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    const ct_layer_param *k = &l->params[d->dkernel];
    ct_op_depthwise_conv2d_bwd_weights(&g, io->in[0], io->dout, k->grad);
    if (d->bias >= 0) ct_op_conv2d_bias_grad(io->dout, l->params[d->bias].grad, g.batch * g.oh * g.ow, g.f);
    if (io->din[0]) ct_op_depthwise_conv2d_bwd_data(&g, io->dout, k->value, io->din[0]);
}

static void separable_forward(ct_layer *l, const ct_layer_io *io)
{
    depthwise *d = (depthwise *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    int64_t rows = g.batch * g.oh * g.ow;
    ct_op_depthwise_conv2d_fwd(&g, io->in[0], l->params[d->dkernel].value, NULL, io->saved);
    ct_op_gemm(0, 0, rows, d->filters, g.f, 1.0f, io->saved, l->params[d->pkernel].value, 0.0f, io->out);
    if (d->bias >= 0) ct_op_add_bias(io->out, l->params[d->bias].value, rows, d->filters);
}

static void separable_backward(ct_layer *l, const ct_layer_io *io)
{
    depthwise *d = (depthwise *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    int64_t rows = g.batch * g.oh * g.ow;
    const ct_layer_param *kp = &l->params[d->pkernel], *kd = &l->params[d->dkernel];
    float *du = io->scratch;
    /* pointwise: dKp (C*m, filters) += u^T dz; du = dz Kp^T */
    ct_op_gemm(1, 0, g.f, d->filters, rows, 1.0f, io->saved, io->dout, 1.0f, kp->grad);
    if (d->bias >= 0) ct_op_conv2d_bias_grad(io->dout, l->params[d->bias].grad, rows, d->filters);
    ct_op_gemm(0, 1, rows, g.f, d->filters, 1.0f, io->dout, kp->value, 0.0f, du);
    ct_op_depthwise_conv2d_bwd_weights(&g, io->in[0], du, kd->grad);
    if (io->din[0]) ct_op_depthwise_conv2d_bwd_data(&g, du, kd->value, io->din[0]);
}

/* What DepthwiseConv2D and SeparableConv2D share in Keras JSON. */
static void depthwise_common_keras(const depthwise *d, ct_json *j)
{
    ct_conv_layer_window_json(j, &d->win);
    ct_json_kint(j, "depth_multiplier", d->dm);
    ct_json_kstr(j, "activation", ct_activation_name(d->base.act));
    ct_json_kbool(j, "use_bias", d->use_bias);
    ct_keras_initializer(j, "depthwise_initializer", &d->dinit);
}

static void depthwise_keras(const ct_layer *l, ct_json *j)
{
    const depthwise *d = (const depthwise *)l;
    depthwise_common_keras(d, j);
    ct_keras_initializer(j, "bias_initializer", &d->binit);
    ct_keras_regularizer(j, "depthwise_regularizer", &d->dreg);
    ct_keras_regularizer(j, "bias_regularizer", &d->breg);
    ct_json_knull(j, "activity_regularizer");
    ct_json_knull(j, "depthwise_constraint");
    ct_json_knull(j, "bias_constraint");
}

static void separable_keras(const ct_layer *l, ct_json *j)
{
    const depthwise *d = (const depthwise *)l;
    ct_json_kint(j, "filters", d->filters);
    depthwise_common_keras(d, j);
    ct_keras_initializer(j, "pointwise_initializer", &d->pinit);
    ct_keras_initializer(j, "bias_initializer", &d->binit);
    ct_keras_regularizer(j, "depthwise_regularizer", &d->dreg);
    ct_keras_regularizer(j, "pointwise_regularizer", &d->preg);
    ct_keras_regularizer(j, "bias_regularizer", &d->breg);
    ct_json_knull(j, "activity_regularizer");
    ct_json_knull(j, "depthwise_constraint");
    ct_json_knull(j, "pointwise_constraint");
    ct_json_knull(j, "bias_constraint");
}

const ct_layer_type ct_layer_depthwise_conv2d = {
    .name = "depthwise_conv2d", .keras_class = "DepthwiseConv2D", .keys = depthwise_keys,
    .size = sizeof(depthwise), .min_inputs = 1, .max_inputs = 1,
    .init = depthwise_init, .infer = depthwise_infer, .forward = depthwise_forward, .backward = depthwise_backward,    .keras_config = depthwise_keras,
};

const ct_layer_type ct_layer_separable_conv2d = {
    .name = "separable_conv2d", .keras_class = "SeparableConv2D", .keys = separable_keys,
    .size = sizeof(depthwise), .min_inputs = 1, .max_inputs = 1,
    .init = separable_init, .infer = separable_infer, .forward = separable_forward, .backward = separable_backward,    .keras_config = separable_keras,
};
