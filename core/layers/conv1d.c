/* Conv1D on (T, C) samples: Keras's layer run by the conv2d kernels as a
 * (1, T) image (ops/conv.h), so it shares their speed and tests.
 *
 * Fidelity: kernel (kernel_size, C, filters), bias (filters); padding
 * valid, same (TF's: out = ceil(T / s), the odd pad after) or causal
 * ((kernel_size - 1) * dilation zeros before the first step, output
 * length ceil(T / s)); dilation_rate; strides. Like Keras, Conv1D takes
 * no mask: a masked input is refused when the model is built. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "conv.h"
#include "ops.h"

typedef struct conv1d {
    ct_layer base;
    int64_t filters, k, s, d;
    int pad; /* 0 valid, 1 same, 2 causal */
    int use_bias;
    ct_kernel_bias kb;
    ct_conv2d_geom g;
    int kernel, bias;
} conv1d;

static ct_status check_pad1d(const char *v)
{
    if (strcmp(v, "valid") == 0 || strcmp(v, "same") == 0 || strcmp(v, "causal") == 0) return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "padding '%s' is not known: use valid, same or causal", v);
}

static const ct_layer_key conv1d_keys[] = {
    {"filters", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 20, 0, NULL, "output channels"},
    {"kernel_size", CT_KEY_INTS, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 16, 1, NULL, "window length"},
    {"strides", CT_KEY_INTS, "1", CT_KEY_RANGE, 1, 1 << 16, 1, NULL, "step between windows"},
    {"padding", CT_KEY_STRING, "valid", 0, 0, 0, 0, check_pad1d, "valid, same or causal"},
    {"dilation_rate", CT_KEY_INTS, "1", CT_KEY_RANGE, 1, 1 << 16, 1, NULL, "spacing of the window's taps"},
    CT_KEYS_KERNEL_BIAS,
    {NULL},
};

static ct_status conv1d_init(ct_layer *l, const ct_layer_config *c)
{
    conv1d *d = (conv1d *)l;
    const char *pad = NULL;
    CT_TRY(ct_layer_arg_int(l, c, "filters", &d->filters));
    int n;
    CT_TRY(ct_layer_arg_ints(l, c, "kernel_size", &d->k, 1, &n));
    CT_TRY(ct_layer_arg_ints(l, c, "strides", &d->s, 1, &n));
    CT_TRY(ct_layer_arg_ints(l, c, "dilation_rate", &d->d, 1, &n));
    CT_TRY(ct_layer_arg_string(l, c, "padding", &pad));
    d->pad = strcmp(pad, "same") == 0 ? 1 : strcmp(pad, "causal") == 0 ? 2 : 0;
    if (d->s > 1 && d->d > 1)
        return CT_FAIL(CT_ERR_CONFIG, "conv1d '%s': strides > 1 with dilation_rate > 1 is not supported (as in Keras)",
                       l->name);
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &d->use_bias));
    return ct_layer_parse_kernel_bias(l, c, &d->kb);
}

static ct_status conv1d_infer(ct_layer *l)
{
    conv1d *d = (conv1d *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank != 2)
        return CT_FAIL(CT_ERR_SHAPE, "conv1d '%s': expects (steps, channels) samples, got rank %d", l->name, in->rank);
    const int T = (int)in->dims[0], C = (int)in->dims[1];
    ct_conv_window w = {1, (int)d->k, 1, (int)d->s, 1, (int)d->d, d->pad == 1};
    d->g = ct_conv2d_geom_make(&w, 1, T, C, (int)d->filters);
    if (d->pad == 2) d->g.ow = (T - 1) / (int)d->s + 1, d->g.pl = (int)((d->k - 1) * d->d);
    if (d->g.ow < 1)
        return CT_FAIL(CT_ERR_SHAPE, "conv1d '%s': a window of %lld taps (dilation %lld) does not fit %d steps",
                       l->name, (long long)d->k, (long long)d->d, T);
    l->out_shape = ct_shape2(d->g.ow, d->filters);
    int64_t kdims[3] = {d->k, C, d->filters};
    d->kernel = ct_layer_add_param(l, "kernel", ct_shape_make(3, kdims), &d->kb.kinit, &d->kb.kreg, 1);
    d->bias = d->use_bias ? ct_layer_add_param(l, "bias", ct_shape1(d->filters), &d->kb.binit, &d->kb.breg, 1) : -1;
    l->scratch_per_sample = ct_op_conv2d_scratch(&d->g);
    return CT_OK;
}

static void conv1d_forward(ct_layer *l, const ct_layer_io *io)
{
    conv1d *d = (conv1d *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    ct_op_conv2d_fwd(&g, io->in[0], l->params[d->kernel].value, d->bias >= 0 ? l->params[d->bias].value : NULL,
                     io->out, 0, io->scratch);
}

static void conv1d_backward(ct_layer *l, const ct_layer_io *io)
{
    conv1d *d = (conv1d *)l;
    ct_conv2d_geom g = d->g;
    g.batch = io->batch;
    if (d->bias >= 0) ct_op_conv2d_bias_grad(io->dout, l->params[d->bias].grad, g.batch * g.ow, g.f);
    ct_op_conv2d_bwd(&g, io->in[0], io->dout, l->params[d->kernel].value, io->din[0], l->params[d->kernel].grad,
                     io->scratch);
}

static void conv1d_keras(const ct_layer *l, ct_json *j)
{
    const conv1d *d = (const conv1d *)l;
    static const char *const pads[] = {"valid", "same", "causal"};
    ct_json_kint(j, "filters", d->filters);
    ct_json_kints(j, "kernel_size", &d->k, 1);
    ct_json_kints(j, "strides", &d->s, 1);
    ct_json_kstr(j, "padding", pads[d->pad]);
    ct_json_kstr(j, "data_format", "channels_last");
    ct_json_kints(j, "dilation_rate", &d->d, 1);
    ct_json_kint(j, "groups", 1);
    ct_keras_kernel_bias(j, l, &d->kb, d->use_bias);
}

const ct_layer_type ct_layer_conv1d = {
    .name = "conv1d", .keras_class = "Conv1D", .keys = conv1d_keys, .size = sizeof(conv1d),
    .min_inputs = 1, .max_inputs = 1,
    .init = conv1d_init, .infer = conv1d_infer, .forward = conv1d_forward, .backward = conv1d_backward,
    .keras_config = conv1d_keras,
};
