/* Flatten and Reshape: the same values under another per-sample shape.
 * Both copy (a view would save a copy per step; the graph does not yet
 * alias buffers). Reshape's target_shape may hold one -1, as in Keras. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"

typedef struct reshape {
    ct_layer base;
    ct_shape target; /* may hold one -1 until infer */
} reshape;

static const ct_layer_key reshape_keys[] = {
    {"target_shape", CT_KEY_INTS, NULL, CT_KEY_REQUIRED, 0, 0, CT_MAX_DIMS, NULL,
     "per-sample shape; one dimension may be -1"},
    {NULL},
};

static ct_status flatten_init(ct_layer *l, const ct_layer_config *c) { return CT_OK; }

static ct_status flatten_infer(ct_layer *l)
{
    l->out_shape = ct_shape1(ct_shape_numel(&l->in_shape[0]));
    return CT_OK;
}

static ct_status reshape_init(ct_layer *l, const ct_layer_config *c)
{
    reshape *r = (reshape *)l;
    int64_t dims[CT_MAX_DIMS];
    int nd;
    CT_TRY(ct_layer_arg_ints(l, c, "target_shape", dims, CT_MAX_DIMS, &nd));
    if (nd < 1)
        return CT_FAIL(CT_ERR_CONFIG, "reshape '%s': needs target_shape with 1 to %d dimensions", l->name,
                       CT_MAX_DIMS);
    int unknown = 0;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == -1) unknown++;
        else if (dims[i] < 1)
            return CT_FAIL(CT_ERR_CONFIG, "reshape '%s': target_shape dimensions must be >= 1 or one -1",
                           l->name);
    }
    if (unknown > 1) return CT_FAIL(CT_ERR_CONFIG, "reshape '%s': at most one -1 in target_shape", l->name);
    r->target = ct_shape_make(nd, dims);
    return CT_OK;
}

static ct_status reshape_infer(ct_layer *l)
{
    reshape *r = (reshape *)l;
    int64_t n = ct_shape_numel(&l->in_shape[0]), known = 1;
    int at = -1;
    for (int i = 0; i < r->target.rank; i++) {
        if (r->target.dims[i] == -1) at = i;
        else known *= r->target.dims[i];
    }
    l->out_shape = r->target;
    if (at >= 0 && known > 0 && n % known == 0) l->out_shape.dims[at] = n / known;
    char a[64], b[64];
    if (ct_shape_numel(&l->out_shape) != n || (at >= 0 && n % known))
        return CT_FAIL(CT_ERR_SHAPE, "reshape '%s': input %s has %lld values, target_shape %s does not fit",
                       l->name, ct_shape_str(&l->in_shape[0], 0, a, sizeof a), (long long)n,
                       ct_shape_str(&r->target, 0, b, sizeof b));
    return CT_OK;
}

static void copy_forward(ct_layer *l, const ct_layer_io *io)
{
    memcpy(io->out, io->in[0], sizeof(float) * (size_t)(io->batch * ct_shape_numel(&l->out_shape)));
}

static void copy_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_axpy(io->din[0], io->dout, 1.0f, io->batch * ct_shape_numel(&l->out_shape));
}

static void flatten_keras(const ct_layer *l, ct_json *j) { ct_json_kstr(j, "data_format", "channels_last"); }

const ct_layer_type ct_layer_flatten = {
    .name = "flatten", .keras_class = "Flatten", .keys = NULL, .size = sizeof(ct_layer),
    .min_inputs = 1, .max_inputs = 1,
    .init = flatten_init, .infer = flatten_infer, .forward = copy_forward, .backward = copy_backward,    .keras_config = flatten_keras,
};

static void reshape_keras(const ct_layer *l, ct_json *j)
{
    const reshape *r = (const reshape *)l;
    ct_json_kints(j, "target_shape", r->target.dims, r->target.rank);
}

const ct_layer_type ct_layer_reshape = {
    .name = "reshape", .keras_class = "Reshape", .keys = reshape_keys, .size = sizeof(reshape),
    .min_inputs = 1, .max_inputs = 1,
    .init = reshape_init, .infer = reshape_infer, .forward = copy_forward, .backward = copy_backward,    .keras_config = reshape_keras,
};

/* Activation: the graph applies the layer's activation after a copy, or,
 * inside the graph (own_act), the layer computes act(x) in one pass and
 * its backward adds act'(x) * dy to the input's gradient in one pass. */
static const ct_layer_key activation_keys[] = {
    {"activation", CT_KEY_STRING, NULL, CT_KEY_REQUIRED, 0, 0, 0, ct_key_check_activation, "the activation (relu, ...)"},
    {NULL},
};

static ct_status activation_init(ct_layer *l, const ct_layer_config *c)
{
    return ct_layer_arg_activation(l, c, "activation");
}

static ct_status same_infer(ct_layer *l)
{
    l->out_shape = l->in_shape[0];
    return CT_OK;
}

static int64_t act_cols(const ct_layer *l) { return l->out_shape.dims[l->out_shape.rank - 1]; }

static void activation_forward(ct_layer *l, const ct_layer_io *io)
{
    if (!l->own_act) {
        copy_forward(l, io);
        return;
    }
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    ct_op_activation_fwd(l->act, io->in[0], io->out, n / act_cols(l), act_cols(l));
}

static void activation_backward(ct_layer *l, const ct_layer_io *io)
{
    if (!l->own_act) {
        copy_backward(l, io);
        return;
    }
    if (!io->din[0]) return;
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    ct_op_activation_bwd_acc(l->act, io->in[0], io->out, io->dout, io->din[0], n / act_cols(l), act_cols(l));
}

static void activation_keras(const ct_layer *l, ct_json *j) { ct_json_kstr(j, "activation", ct_activation_name(l->act)); }

const ct_layer_type ct_layer_activation = {
    .name = "activation", .keras_class = "Activation", .keys = activation_keys, .size = sizeof(ct_layer),
    .min_inputs = 1, .max_inputs = 1, .can_own_act = 1,
    .init = activation_init, .infer = same_infer, .forward = activation_forward, .backward = activation_backward,    .keras_config = activation_keras,
    .mask = ct_layer_mask_pass,
};
