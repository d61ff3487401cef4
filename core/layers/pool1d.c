/* MaxPooling1D, AveragePooling1D, GlobalMaxPooling1D and
 * GlobalAveragePooling1D on (T, C) samples, run by the 2-D pooling
 * kernels as (1, T) images (ops/image_ops.h).
 *
 * Fidelity: pool_size 2, strides default to pool_size, padding valid or
 * same (TF sizes; averages over the valid cells). GlobalAveragePooling1D
 * takes a mask and averages the unmasked steps only (a fully masked
 * sample gives zeros, where Keras divides 0 by 0); the other pools take
 * no mask, as in Keras, and a masked input is refused when the model is
 * built. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "image_ops.h"
#include "seq_ops.h"

typedef struct pool1d {
    ct_layer base;
    int64_t k, s;
    int same;
    ct_pool2d_geom g;
} pool1d;

static const ct_layer_key pool1d_keys[] = {
    {"pool_size", CT_KEY_INTS, "2", CT_KEY_RANGE, 1, 1 << 16, 1, NULL, "window length"},
    {"strides", CT_KEY_INTS, NULL, CT_KEY_RANGE, 1, 1 << 16, 1, NULL, "step between windows (default pool_size)"},
    {"padding", CT_KEY_STRING, "valid", 0, 0, 0, 0, ct_key_check_padding, "valid or same"},
    {NULL},
};
static const ct_layer_key global1d_keys[] = {
    {"keepdims", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "keep the time axis as length 1"},
    {NULL},
};

static ct_status need_seq(const ct_layer *l)
{
    if (l->in_shape[0].rank != 2)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': expects (steps, channels) samples, got rank %d", l->type->name, l->name,
                       l->in_shape[0].rank);
    return CT_OK;
}

static ct_status pool1d_init(ct_layer *l, const ct_layer_config *c)
{
    pool1d *p = (pool1d *)l;
    const char *pad = NULL;
    int n;
    CT_TRY(ct_layer_arg_ints(l, c, "pool_size", &p->k, 1, &n));
    p->s = p->k;
    if (ct_layer_arg_is_set(c, "strides")) CT_TRY(ct_layer_arg_ints(l, c, "strides", &p->s, 1, &n));
    CT_TRY(ct_layer_arg_string(l, c, "padding", &pad));
    p->same = strcmp(pad, "same") == 0;
    return CT_OK;
}

static ct_status pool1d_infer(ct_layer *l)
{
    pool1d *p = (pool1d *)l;
    CT_TRY(need_seq(l));
    const int64_t T = l->in_shape[0].dims[0], C = l->in_shape[0].dims[1];
    if (!ct_pool2d_geom_make(&p->g, 1, T, C, 1, (int)p->k, 1, (int)p->s, p->same))
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': a window of %lld does not fit %lld steps", l->type->name, l->name,
                       (long long)p->k, (long long)T);
    l->out_shape = ct_shape2(p->g.ow, C);
    return CT_OK;
}

static void maxpool1d_forward(ct_layer *l, const ct_layer_io *io) { ct_op_maxpool2d_fwd(&((pool1d *)l)->g, io->batch, io->in[0], io->out); }
static void maxpool1d_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_maxpool2d_bwd(&((pool1d *)l)->g, io->batch, io->in[0], io->dout, io->din[0]);
}
static void avgpool1d_forward(ct_layer *l, const ct_layer_io *io) { ct_op_avgpool2d_fwd(&((pool1d *)l)->g, io->batch, io->in[0], io->out); }
static void avgpool1d_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_avgpool2d_bwd(&((pool1d *)l)->g, io->batch, io->dout, io->din[0]);
}

static void pool1d_keras(const ct_layer *l, ct_json *j)
{
    const pool1d *p = (const pool1d *)l;
    ct_json_kints(j, "pool_size", &p->k, 1);
    ct_json_kints(j, "strides", &p->s, 1);
    ct_json_kstr(j, "padding", p->same ? "same" : "valid");
    ct_json_kstr(j, "data_format", "channels_last");
}

typedef struct global1d {
    ct_layer base;
    int keepdims;
} global1d;

static ct_status global1d_init(ct_layer *l, const ct_layer_config *c)
{
    return ct_layer_arg_bool(l, c, "keepdims", &((global1d *)l)->keepdims);
}

static ct_status global1d_infer(ct_layer *l)
{
    CT_TRY(need_seq(l));
    const int64_t C = l->in_shape[0].dims[1];
    l->out_shape = ((global1d *)l)->keepdims ? ct_shape2(1, C) : ct_shape1(C);
    return CT_OK;
}

static int64_t steps(const ct_layer *l) { return l->in_shape[0].dims[0]; }
static int64_t chans(const ct_layer *l) { return l->in_shape[0].dims[1]; }

static void gmax1d_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_global_maxpool_fwd(io->batch, steps(l), chans(l), io->in[0], io->out);
}
static void gmax1d_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_global_maxpool_bwd(io->batch, steps(l), chans(l), io->in[0], io->out, io->dout, io->din[0]);
}
static void gavg1d_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_masked_mean_fwd(io->in[0], io->in_mask[0], io->out, io->batch, steps(l), chans(l));
}
static void gavg1d_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_masked_mean_bwd(io->in_mask[0], io->dout, io->din[0], io->batch, steps(l), chans(l));
}

static void global1d_keras(const ct_layer *l, ct_json *j)
{
    ct_json_kstr(j, "data_format", "channels_last");
    ct_json_kbool(j, "keepdims", ((const global1d *)l)->keepdims);
}

static int consumes_mask(const ct_layer *l) { return CT_MASK_CONSUME; }

#define POOL1D_TYPE(ident, tname, kclass, fwd, bwd)                                                            \
    const ct_layer_type ident = {.name = tname, .keras_class = kclass, .keys = pool1d_keys, .size = sizeof(pool1d), \
                                 .min_inputs = 1, .max_inputs = 1, .init = pool1d_init, .infer = pool1d_infer,    \
                                 .forward = fwd, .backward = bwd, .keras_config = pool1d_keras}
POOL1D_TYPE(ct_layer_maxpool1d, "maxpool1d", "MaxPooling1D", maxpool1d_forward, maxpool1d_backward);
POOL1D_TYPE(ct_layer_avgpool1d, "avgpool1d", "AveragePooling1D", avgpool1d_forward, avgpool1d_backward);

const ct_layer_type ct_layer_global_maxpool1d = {
    .name = "global_maxpool1d", .keras_class = "GlobalMaxPooling1D", .keys = global1d_keys, .size = sizeof(global1d),
    .min_inputs = 1, .max_inputs = 1, .init = global1d_init, .infer = global1d_infer,
    .forward = gmax1d_forward, .backward = gmax1d_backward, .keras_config = global1d_keras,
};
const ct_layer_type ct_layer_global_avgpool1d = {
    .name = "global_avgpool1d", .keras_class = "GlobalAveragePooling1D", .keys = global1d_keys,
    .size = sizeof(global1d), .min_inputs = 1, .max_inputs = 1, .init = global1d_init, .infer = global1d_infer,
    .forward = gavg1d_forward, .backward = gavg1d_backward, .keras_config = global1d_keras, .mask = consumes_mask,
};
