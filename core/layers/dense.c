/* Dense: z = x . kernel + bias over the last axis of the input.
 * x (B, ..., in), kernel (in, units), bias (units), z (B, ..., units). */
#include <math.h>
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"

typedef struct dense {
    ct_layer base;
    int64_t units;
    int use_bias;
    ct_kernel_bias kb;
    int kernel, bias; /* param indices */
} dense;

static const ct_layer_key dense_keys[] = {
    {"units", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INFINITY, 0, NULL, "output width (>= 1)"},
    CT_KEYS_KERNEL_BIAS,
    {NULL},
};

static ct_status dense_init(ct_layer *l, const ct_layer_config *c)
{
    dense *d = (dense *)l;
    CT_TRY(ct_layer_arg_int(l, c, "units", &d->units));
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &d->use_bias));
    return ct_layer_parse_kernel_bias(l, c, &d->kb);
}

static ct_status dense_infer(ct_layer *l)
{
    dense *d = (dense *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank < 1) return CT_FAIL(CT_ERR_SHAPE, "dense '%s': input must have at least one axis", l->name);
    int64_t fin = in->dims[in->rank - 1];
    l->out_shape = *in;
    l->out_shape.dims[in->rank - 1] = d->units;
    d->kernel = ct_layer_add_param(l, "kernel", ct_shape2(fin, d->units), &d->kb.kinit, &d->kb.kreg, 1);
    d->bias = d->use_bias ? ct_layer_add_param(l, "bias", ct_shape1(d->units), &d->kb.binit, &d->kb.breg, 1) : -1;
    return CT_OK;
}

static int64_t dense_rows(const ct_layer *l, int64_t batch)
{
    const ct_shape *in = &l->in_shape[0];
    return batch * (ct_shape_numel(in) / in->dims[in->rank - 1]);
}

static void dense_forward(ct_layer *l, const ct_layer_io *io)
{
    dense *d = (dense *)l;
    int64_t rows = dense_rows(l, io->batch), fin = l->params[d->kernel].shape.dims[0];
    ct_op_gemm(0, 0, rows, d->units, fin, 1.0f, io->in[0], l->params[d->kernel].value, 0.0f, io->out);
    if (d->bias >= 0) ct_op_add_bias(io->out, l->params[d->bias].value, rows, d->units);
}

static void dense_backward(ct_layer *l, const ct_layer_io *io)
{
    dense *d = (dense *)l;
    int64_t rows = dense_rows(l, io->batch), fin = l->params[d->kernel].shape.dims[0];
    /* dK (in, units) += x^T dz;  db += colsum dz;  dx (rows, in) += dz K^T */
    ct_op_gemm(1, 0, fin, d->units, rows, 1.0f, io->in[0], io->dout, 1.0f, l->params[d->kernel].grad);
    if (d->bias >= 0) ct_op_bias_grad(io->dout, l->params[d->bias].grad, rows, d->units);
    if (io->din[0])
        ct_op_gemm(0, 1, rows, fin, d->units, 1.0f, io->dout, l->params[d->kernel].value, 1.0f, io->din[0]);
}

static void dense_keras(const ct_layer *l, ct_json *j)
{
    const dense *d = (const dense *)l;
    ct_json_kint(j, "units", d->units);
    ct_keras_kernel_bias(j, l, &d->kb, d->use_bias);
}

const ct_layer_type ct_layer_dense = {
    .name = "dense", .keras_class = "Dense", .keys = dense_keys, .size = sizeof(dense),
    .min_inputs = 1, .max_inputs = 1,
    .init = dense_init, .infer = dense_infer, .forward = dense_forward, .backward = dense_backward,
    .keras_config = dense_keras,
    .mask = ct_layer_mask_pass,
};
