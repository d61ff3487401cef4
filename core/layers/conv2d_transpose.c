/* Conv2DTranspose (Keras): the gradient of a convolution with respect to
 * its input, used as a layer. x (B, H, W, C), kernel (kh, kw, filters, C)
 * as Keras stores it (the last two axes swapped), bias (filters),
 * z (B, OH, OW, filters) with OH, OW from Keras's deconv_output_length
 * (output_padding included).
 *
 * The matching forward convolution g maps z's shape (OH, OW, filters)
 * back to x's (H, W, C) with this very kernel, so:
 *   forward      z = conv_bwd_data_g(x) + bias
 *   input grad   dx += conv_fwd_g(dz)
 *   kernel grad  dk += conv_bwd_weights_g(input dz, output grad x)
 * Its padding is what TF's conv2d_transpose uses: the 'same'/'valid' rule
 * of a convolution from OH to H. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "conv_common.h"
#include "conv.h"
#include "ops.h"


typedef struct conv2d_transpose {
    ct_layer base;
    int filters, use_bias;
    int oph, opw; /* output padding, -1: None */
    ct_conv_window win;
    ct_kernel_bias kb;
    int kernel, bias;
    ct_conv2d_geom g; /* from z's shape to x's */
} conv2d_transpose;

static const ct_layer_key transpose_keys[] = {
    {"filters", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INT32_MAX, 0, NULL, "output channels (>= 1)"},
    CT_KEYS_CONV_WINDOW,
    {"output_padding", CT_KEY_INTS, NULL, CT_KEY_RANGE, 0, INFINITY, 2, NULL,
     "extra rows/columns at the far side, each < strides"},
    CT_KEYS_KERNEL_BIAS,
    {NULL},
};

static ct_status transpose_init(ct_layer *l, const ct_layer_config *c)
{
    conv2d_transpose *d = (conv2d_transpose *)l;
    int64_t filters;
    CT_TRY(ct_layer_arg_int(l, c, "filters", &filters));
    d->filters = (int)filters;
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &d->use_bias));
    CT_TRY(ct_conv_layer_window(l, c, &d->win));
    d->oph = d->opw = -1;
    if (ct_layer_arg_is_set(c, "output_padding")) {
        CT_TRY(ct_layer_arg_pair(l, c, "output_padding", 0, 0, &d->oph, &d->opw));
        if (d->oph >= d->win.sh || d->opw >= d->win.sw)
            return CT_FAIL(CT_ERR_CONFIG,
                           "conv2d_transpose '%s': output_padding %dx%d must be smaller than strides %dx%d (Keras)",
                           l->name, d->oph, d->opw, d->win.sh, d->win.sw);
    }
    return ct_layer_parse_kernel_bias(l, c, &d->kb);
}

static ct_status transpose_infer(ct_layer *l)
{
    conv2d_transpose *d = (conv2d_transpose *)l;
    const ct_shape *in = &l->in_shape[0];
    const ct_conv_window *w = &d->win;
    char is[64], os[64];
    if (in->rank != 3)
        return CT_FAIL(CT_ERR_SHAPE, "conv2d_transpose '%s': input %s must be (height, width, channels)", l->name,
                       ct_shape_str(in, 0, is, sizeof is));
    int h = (int)in->dims[0], wd = (int)in->dims[1], c = (int)in->dims[2];
    int oh = ct_deconv_out_len(h, w->kh, w->sh, w->dh, w->same, d->oph);
    int ow = ct_deconv_out_len(wd, w->kw, w->sw, w->dw, w->same, d->opw);
    ct_shape out = ct_shape3(oh, ow, d->filters);
    if (oh < 1 || ow < 1)
        return CT_FAIL(CT_ERR_SHAPE, "conv2d_transpose '%s': input %s gives no output (%s)", l->name,
                       ct_shape_str(in, 0, is, sizeof is), ct_shape_str(&out, 0, os, sizeof os));
    /* The forward convolution from the output back to the input. */
    d->g = ct_conv2d_geom_make(w, oh, ow, d->filters, c);
    if (d->g.oh != h || d->g.ow != wd) {
        ct_shape back = ct_shape3(d->g.oh, d->g.ow, c);
        char bs[64];
        return CT_FAIL(CT_ERR_SHAPE,
                       "conv2d_transpose '%s': output %s does not map back to input %s with kernel %dx%d, strides "
                       "%dx%d, padding %s (it gives %s); change output_padding",
                       l->name, ct_shape_str(&out, 0, os, sizeof os), ct_shape_str(in, 0, is, sizeof is), w->kh, w->kw,
                       w->sh, w->sw, w->same ? "same" : "valid", ct_shape_str(&back, 0, bs, sizeof bs));
    }
    l->out_shape = out;
    int64_t kdims[4] = {w->kh, w->kw, d->filters, c};
    d->kernel = ct_layer_add_param(l, "kernel", ct_shape_make(4, kdims), &d->kb.kinit, &d->kb.kreg, 1);
    d->bias = d->use_bias ? ct_layer_add_param(l, "bias", ct_shape1(d->filters), &d->kb.binit, &d->kb.breg, 1) : -1;
    l->scratch_per_sample = ct_op_conv2d_scratch(&d->g);
    return CT_OK;
}

static void transpose_forward(ct_layer *l, const ct_layer_io *io)
{
    conv2d_transpose *d = (conv2d_transpose *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    int64_t rows = g.batch * g.h * g.w;
    memset(io->out, 0, sizeof(float) * (size_t)(rows * d->filters));
    ct_op_conv2d_bwd_data(&g, io->in[0], l->params[d->kernel].value, io->out, io->scratch);
    if (d->bias >= 0) ct_op_add_bias(io->out, l->params[d->bias].value, rows, d->filters);
}

static void transpose_backward(ct_layer *l, const ct_layer_io *io)
{
    conv2d_transpose *d = (conv2d_transpose *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    const ct_layer_param *k = &l->params[d->kernel];
    ct_op_conv2d_bwd_weights(&g, io->dout, io->in[0], k->grad, io->scratch);
    if (d->bias >= 0) ct_op_conv2d_bias_grad(io->dout, l->params[d->bias].grad, g.batch * g.h * g.w, d->filters);
    if (io->din[0]) ct_op_conv2d_fwd(&g, io->dout, k->value, NULL, io->din[0], 1, io->scratch);
}

static void transpose_keras(const ct_layer *l, ct_json *j)
{
    const conv2d_transpose *d = (const conv2d_transpose *)l;
    ct_json_kint(j, "filters", d->filters);
    ct_conv_layer_window_json(j, &d->win);
    ct_json_kint(j, "groups", 1);
    ct_keras_kernel_bias(j, l, &d->kb, d->use_bias);
    if (d->oph < 0) ct_json_knull(j, "output_padding");
    else ct_keras_pair(j, "output_padding", d->oph, d->opw);
}

const ct_layer_type ct_layer_conv2d_transpose = {
    .name = "conv2d_transpose", .keras_class = "Conv2DTranspose", .keys = transpose_keys,
    .size = sizeof(conv2d_transpose), .min_inputs = 1, .max_inputs = 1,
    .init = transpose_init, .infer = transpose_infer, .forward = transpose_forward, .backward = transpose_backward,    .keras_config = transpose_keras,
};
