/* Conv2D (Keras): z = conv(x, kernel) + bias on NHWC images.
 * x (B, H, W, C), kernel (kh, kw, C, filters), bias (filters),
 * z (B, OH, OW, filters); output sizes and 'same' padding as TF.
 *
 * Inside the graph the layer applies its own activation (own_act): a ReLU
 * is fused into the kernels' stores, and its backward into one pass with
 * the bias gradient, which saves two passes over the output per step.
 * Activations whose backward reads z keep z in `saved`.
 *
 * This file also holds the parsing of the window keys (kernel_size,
 * strides, padding, dilation_rate) that every convolution layer shares
 * (declared in conv_common.h). */
#include <string.h>

#include <stdlib.h>

#include "../layer.h"
#include "../keras_json.h"
#include "conv_common.h"
#include "conv.h"
#include "image_ops.h"
#include "ops.h"

ct_status ct_conv_layer_window(const ct_layer *l, const ct_layer_config *c, ct_conv_window *w)
{
    memset(w, 0, sizeof *w);
    const char *pad;
    CT_TRY(ct_layer_arg_pair(l, c, "kernel_size", 1, 1, &w->kh, &w->kw));
    CT_TRY(ct_layer_arg_pair(l, c, "strides", 1, 1, &w->sh, &w->sw));
    CT_TRY(ct_layer_arg_pair(l, c, "dilation_rate", 1, 1, &w->dh, &w->dw));
    CT_TRY(ct_layer_arg_string(l, c, "padding", &pad));
    if (strcmp(pad, "valid") == 0) w->same = 0;
    else if (strcmp(pad, "same") == 0) w->same = 1;
    else
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': padding must be 'valid' or 'same', not '%s'", l->type->name, l->name,
                       pad);
    if ((w->sh > 1 || w->sw > 1) && (w->dh > 1 || w->dw > 1))
        return CT_FAIL(CT_ERR_CONFIG,
                       "%s '%s': strides %dx%d cannot be combined with dilation_rate %dx%d (Keras: strides > 1 "
                       "is not supported in conjunction with dilation_rate > 1)",
                       l->type->name, l->name, w->sh, w->sw, w->dh, w->dw);
    return CT_OK;
}

void ct_conv_layer_window_json(ct_json *j, const ct_conv_window *w)
{
    ct_keras_pair(j, "kernel_size", w->kh, w->kw);
    ct_keras_pair(j, "strides", w->sh, w->sw);
    ct_json_kstr(j, "padding", w->same ? "same" : "valid");
    ct_json_kstr(j, "data_format", "channels_last");
    ct_keras_pair(j, "dilation_rate", w->dh, w->dw);
}

/* Checks a rank-3 input and that the window fits; fills *g for batch 1. */
ct_status ct_conv_layer_geom(const ct_layer *l, const ct_conv_window *w, int f, ct_conv2d_geom *g)
{
    const ct_shape *in = &l->in_shape[0];
    char is[64];
    if (in->rank != 3)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': input %s must be (height, width, channels)", l->type->name, l->name,
                       ct_shape_str(in, 0, is, sizeof is));
    *g = ct_conv2d_geom_make(w, (int)in->dims[0], (int)in->dims[1], (int)in->dims[2], f);
    if (g->oh < 1 || g->ow < 1) {
        ct_shape out = ct_shape3(g->oh, g->ow, f);
        char os[64];
        return CT_FAIL(CT_ERR_SHAPE,
                       "%s '%s': input %s is too small for kernel %dx%d (dilation %dx%d, strides %dx%d, %s): output "
                       "would be %s",
                       l->type->name, l->name, ct_shape_str(in, 0, is, sizeof is), w->kh, w->kw, w->dh, w->dw, w->sh,
                       w->sw, w->same ? "same" : "valid", ct_shape_str(&out, 0, os, sizeof os));
    }
    return CT_OK;
}

typedef struct conv2d {
    ct_layer base;
    int filters, use_bias;
    ct_conv_window win;
    ct_kernel_bias kb;
    int kernel, bias;
    ct_conv2d_geom g;
    int keep_z;      /* own activation needs z in backward: z lives in saved */
    float *fold;     /* inference with a BatchNormalization folded in: kernel, bias, scale, shift */
} conv2d;

static const ct_layer_key conv2d_keys[] = {
    {"filters", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INT32_MAX, 0, NULL, "output channels (>= 1)"},
    CT_KEYS_CONV_WINDOW,
    CT_KEYS_KERNEL_BIAS,
    {NULL},
};

static ct_status conv2d_init(ct_layer *l, const ct_layer_config *c)
{
    conv2d *d = (conv2d *)l;
    int64_t filters;
    CT_TRY(ct_layer_arg_int(l, c, "filters", &filters));
    d->filters = (int)filters;
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &d->use_bias));
    CT_TRY(ct_conv_layer_window(l, c, &d->win));
    return ct_layer_parse_kernel_bias(l, c, &d->kb);
}

static ct_status conv2d_infer(ct_layer *l)
{
    conv2d *d = (conv2d *)l;
    CT_TRY(ct_conv_layer_geom(l, &d->win, d->filters, &d->g));
    l->out_shape = ct_shape3(d->g.oh, d->g.ow, d->filters);
    int64_t kdims[4] = {d->win.kh, d->win.kw, d->g.c, d->filters};
    d->kernel = ct_layer_add_param(l, "kernel", ct_shape_make(4, kdims), &d->kb.kinit, &d->kb.kreg, 1);
    d->bias = d->use_bias ? ct_layer_add_param(l, "bias", ct_shape1(d->filters), &d->kb.binit, &d->kb.breg, 1) : -1;
    int64_t out = (int64_t)d->g.oh * d->g.ow * d->filters;
    d->keep_z = l->act != CT_ACT_LINEAR && !ct_activation_in_place(l->act);
    l->saved_per_sample = d->keep_z ? out : 0;
    /* the fused ReLU backward's per-image bias sums (f doubles) use the
     * scratch before the kernels do */
    int64_t conv = ct_op_conv2d_scratch(&d->g), relu = 2 * (int64_t)d->filters;
    l->scratch_per_sample = conv > relu ? conv : relu;
    free(d->fold);
    d->fold = malloc(sizeof(float) * (size_t)(ct_shape_numel(&l->params[d->kernel].shape) + 3 * d->filters));
    if (!d->fold) return CT_FAIL(CT_ERR_NOMEM, "conv2d '%s': folded weights", l->name);
    return CT_OK;
}

/* Inference of conv followed by BatchNormalization in one pass: with the
 * BN's y = z * s + t per filter, kernel' = kernel * s and bias' = bias * s
 * + t (the kernel is (kh, kw, c, filters), filters last). */
static void conv2d_forward_folded(ct_layer *l, const ct_layer_io *io, const ct_layer *affine)
{
    conv2d *d = (conv2d *)l;
    const int64_t f = d->filters, fan = ct_shape_numel(&l->params[d->kernel].shape) / f;
    float *k = d->fold, *bias = k + fan * f, *scale = bias + f, *shift = scale + f;
    affine->type->inference_affine(affine, scale, shift);
    const float *k0 = l->params[d->kernel].value, *b0 = d->bias >= 0 ? l->params[d->bias].value : NULL;
    ct_op_fold_affine(k, bias, k0, b0, fan, f, scale, shift);
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    ct_op_conv2d_fwd(&g, io->in[0], k, bias, io->out, 0, io->scratch);
}

static void conv2d_destroy(ct_layer *l) { free(((conv2d *)l)->fold); }

static void conv2d_forward(ct_layer *l, const ct_layer_io *io)
{
    conv2d *d = (conv2d *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    const float *k = l->params[d->kernel].value, *bias = d->bias >= 0 ? l->params[d->bias].value : NULL;
    if (!l->own_act) {
        ct_op_conv2d_fwd(&g, io->in[0], k, bias, io->out, 0, io->scratch);
    } else if (l->act == CT_ACT_RELU) {
        ct_op_conv2d_fwd_relu(&g, io->in[0], k, bias, io->out, io->scratch);
    } else {
        float *z = d->keep_z ? io->saved : io->out;
        ct_op_conv2d_fwd(&g, io->in[0], k, bias, z, 0, io->scratch);
        ct_op_activation_fwd(l->act, z, io->out, g.batch * g.oh * g.ow, g.f);
    }
}

static void conv2d_backward(ct_layer *l, const ct_layer_io *io)
{
    conv2d *d = (conv2d *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    const ct_layer_param *k = &l->params[d->kernel];
    float *db = d->bias >= 0 ? l->params[d->bias].grad : NULL;
    int64_t rows = g.batch * g.oh * g.ow;
    const float *dz = io->dout;
    if (l->own_act) {
        /* dout is dL/dy in this node's own gradient buffer: turn it into
         * dL/dz in place, as the graph does for layers that do not own
         * their activation. */
        float *dzw = (float *)io->dout;
        if (l->act == CT_ACT_RELU) {
            ct_op_conv2d_relu_bwd(io->out, io->dout, dzw, db, g.batch, (int64_t)g.oh * g.ow, g.f,
                                  (double *)io->scratch);
            db = NULL;
        } else {
            ct_op_activation_bwd(l->act, d->keep_z ? io->saved : io->out, io->out, io->dout, dzw, rows, g.f);
        }
    }
    if (db) ct_op_conv2d_bias_grad(dz, db, rows, g.f);
    ct_op_conv2d_bwd(&g, io->in[0], dz, k->value, io->din[0], k->grad, io->scratch);
}

static void conv2d_keras(const ct_layer *l, ct_json *j)
{
    const conv2d *d = (const conv2d *)l;
    ct_json_kint(j, "filters", d->filters);
    ct_conv_layer_window_json(j, &d->win);
    ct_json_kint(j, "groups", 1);
    ct_keras_kernel_bias(j, l, &d->kb, d->use_bias);
}

const ct_layer_type ct_layer_conv2d = {
    .name = "conv2d", .keras_class = "Conv2D", .keys = conv2d_keys, .size = sizeof(conv2d),
    .min_inputs = 1, .max_inputs = 1, .can_own_act = 1,
    .init = conv2d_init, .infer = conv2d_infer, .forward = conv2d_forward, .backward = conv2d_backward,
    .destroy = conv2d_destroy, .forward_folded = conv2d_forward_folded,    .keras_config = conv2d_keras,
};
