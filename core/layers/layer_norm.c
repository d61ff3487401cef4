/* LayerNormalization over the last axis (Keras's default axis -1):
 * y = (x - mean) / sqrt(var + epsilon) * gamma + beta per position.
 * Weights gamma, beta (C); epsilon 1e-3, center and scale as Keras. The
 * mask passes through. Per-position mean and 1/std are kept for the
 * backward pass. */
#include "../layer.h"
#include "../keras_json.h"
#include "seq_ops.h"

typedef struct layer_norm {
    ct_layer base;
    double eps;
    int center, scale;
    ct_initializer ginit, binit;
    ct_regularizer greg, breg;
    int gamma, beta;
    int64_t c;
} layer_norm;

static const ct_layer_key layer_norm_keys[] = {
    {"axis", CT_KEY_INT, "-1", CT_KEY_RANGE, -1, -1, 0, NULL, "normalised axis (only the last, -1)"},
    {"epsilon", CT_KEY_FLOAT, "0.001", CT_KEY_RANGE | CT_KEY_LO_OPEN, 0, 1, 0, NULL, "added to the variance"},
    {"center", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "add beta"},
    {"scale", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "multiply by gamma"},
    CT_KEY_INIT("beta_initializer", "zeros"), CT_KEY_INIT("gamma_initializer", "ones"),
    CT_KEY_REG("beta_regularizer"), CT_KEY_REG("gamma_regularizer"),
    {NULL},
};

static ct_status layer_norm_init(ct_layer *l, const ct_layer_config *c)
{
    layer_norm *n = (layer_norm *)l;
    CT_TRY(ct_layer_arg_float(l, c, "epsilon", &n->eps));
    CT_TRY(ct_layer_arg_bool(l, c, "center", &n->center));
    CT_TRY(ct_layer_arg_bool(l, c, "scale", &n->scale));
    CT_TRY(ct_layer_arg_init(l, c, "beta_initializer", &n->binit));
    CT_TRY(ct_layer_arg_init(l, c, "gamma_initializer", &n->ginit));
    CT_TRY(ct_layer_arg_reg(l, c, "beta_regularizer", &n->breg));
    return ct_layer_arg_reg(l, c, "gamma_regularizer", &n->greg);
}

static ct_status layer_norm_infer(ct_layer *l)
{
    layer_norm *n = (layer_norm *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank < 1) return CT_FAIL(CT_ERR_SHAPE, "layer_normalization '%s': needs at least one axis", l->name);
    n->c = in->dims[in->rank - 1];
    l->out_shape = *in;
    n->gamma = n->scale ? ct_layer_add_param(l, "gamma", ct_shape1(n->c), &n->ginit, &n->greg, 1) : -1;
    n->beta = n->center ? ct_layer_add_param(l, "beta", ct_shape1(n->c), &n->binit, &n->breg, 1) : -1;
    l->saved_per_sample = 2 * (ct_shape_numel(in) / n->c);
    return CT_OK;
}

static int64_t rows_of(const ct_layer *l, int64_t batch) { return batch * (ct_shape_numel(&l->in_shape[0]) / ((const layer_norm *)l)->c); }

static void layer_norm_forward(ct_layer *l, const ct_layer_io *io)
{
    layer_norm *n = (layer_norm *)l;
    ct_op_layer_norm_fwd(io->in[0], n->gamma >= 0 ? l->params[n->gamma].value : NULL,
                         n->beta >= 0 ? l->params[n->beta].value : NULL, (float)n->eps, io->out, io->saved,
                         rows_of(l, io->batch), n->c);
}

static void layer_norm_backward(ct_layer *l, const ct_layer_io *io)
{
    layer_norm *n = (layer_norm *)l;
    ct_op_layer_norm_bwd(io->in[0], n->gamma >= 0 ? l->params[n->gamma].value : NULL, io->dout, io->saved, io->din[0],
                         n->gamma >= 0 ? l->params[n->gamma].grad : NULL, n->beta >= 0 ? l->params[n->beta].grad : NULL,
                         rows_of(l, io->batch), n->c);
}

static void layer_norm_keras(const ct_layer *l, ct_json *j)
{
    const layer_norm *n = (const layer_norm *)l;
    int64_t axis = l->in_shape[0].rank;
    ct_json_kints(j, "axis", &axis, 1);
    ct_json_knum(j, "epsilon", n->eps);
    ct_json_kbool(j, "center", n->center);
    ct_json_kbool(j, "scale", n->scale);
    ct_keras_initializer(j, "beta_initializer", &n->binit);
    ct_keras_initializer(j, "gamma_initializer", &n->ginit);
}


const ct_layer_type ct_layer_layer_normalization = {
    .name = "layer_normalization", .keras_class = "LayerNormalization", .keys = layer_norm_keys,
    .size = sizeof(layer_norm), .min_inputs = 1, .max_inputs = 1,
    .init = layer_norm_init, .infer = layer_norm_infer, .forward = layer_norm_forward,
    .backward = layer_norm_backward, .keras_config = layer_norm_keras, .mask = ct_layer_mask_pass,
};
