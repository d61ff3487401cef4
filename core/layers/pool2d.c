/* MaxPooling2D, AveragePooling2D and their global forms on (H, W, C)
 * samples, with Keras's keys and TF's output sizes (ops/image_ops.h).
 *
 * The max pools keep nothing between the passes: MaxPooling2D's backward
 * pass finds the winners again from the input (as TF's CPU kernel does;
 * the first maximum in window order takes the gradient), and
 * GlobalMaxPooling2D's compares the input with its output (as
 * tf.reduce_max's gradient does; tied cells share it). The forward passes
 * therefore run at memory speed in training and inference alike. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "../layer.h"
#include "../keras_json.h"
#include "image_ops.h"

typedef struct pool2d {
    ct_layer base;
    int kh, kw, sh, sw, same;
    ct_pool2d_geom g;
} pool2d;

typedef struct global_pool {
    ct_layer base;
    int keepdims;
} global_pool;

static const ct_layer_key pool_keys[] = {
    {"pool_size", CT_KEY_INTS, "2", CT_KEY_RANGE, 1, INFINITY, 2, NULL, "window: one or two values"},
    {"strides", CT_KEY_INTS, NULL, CT_KEY_RANGE, 1, INFINITY, 2, NULL, "one or two values (default: pool_size)"},
    {"padding", CT_KEY_STRING, "valid", 0, 0, 0, 0, NULL, "valid | same"},
    {NULL},
};
static const ct_layer_key global_keys[] = {
    {"keepdims", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "keep the spatial axes as 1x1"},
    {NULL},
};

static ct_status parse_padding(const ct_layer *l, const char *s, int *same)
{
    *same = 0;
    if (!s || !*s || strcasecmp(s, "valid") == 0) return CT_OK;
    if (strcasecmp(s, "same") == 0) {
        *same = 1;
        return CT_OK;
    }
    return CT_FAIL(CT_ERR_CONFIG, "%s '%s': padding must be valid or same, got '%s'", l->type->name, l->name, s);
}

static ct_status need_image(const ct_layer *l)
{
    const ct_shape *in = &l->in_shape[0];
    char buf[96];
    if (in->rank != 3)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': expects (H, W, C) samples, got %s", l->type->name, l->name,
                       ct_shape_str(in, 0, buf, sizeof buf));
    if (ct_shape_numel(in) > INT32_MAX)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': a sample of %s values is too large (limit 2^31)", l->type->name,
                       l->name, ct_shape_str(in, 0, buf, sizeof buf));
    return CT_OK;
}

/* ---- MaxPooling2D / AveragePooling2D ------------------------------------ */

static ct_status pool_init(ct_layer *l, const ct_layer_config *c)
{
    pool2d *p = (pool2d *)l;
    const char *pad;
    CT_TRY(ct_layer_arg_pair(l, c, "pool_size", 2, 2, &p->kh, &p->kw));
    CT_TRY(ct_layer_arg_pair(l, c, "strides", p->kh, p->kw, &p->sh, &p->sw));
    CT_TRY(ct_layer_arg_string(l, c, "padding", &pad));
    return parse_padding(l, pad, &p->same);
}

static ct_status pool_infer(ct_layer *l)
{
    pool2d *p = (pool2d *)l;
    CT_TRY(need_image(l));
    const int64_t *d = l->in_shape[0].dims;
    if (!ct_pool2d_geom_make(&p->g, d[0], d[1], d[2], p->kh, p->kw, p->sh, p->sw, p->same)) {
        char buf[96];
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': input %s is smaller than the %dx%d pool (padding valid)",
                       l->type->name, l->name, ct_shape_str(&l->in_shape[0], 0, buf, sizeof buf), p->kh, p->kw);
    }
    l->out_shape = ct_shape3(p->g.oh, p->g.ow, p->g.c);
    return CT_OK;
}

static void maxpool_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_maxpool2d_fwd(&((pool2d *)l)->g, io->batch, io->in[0], io->out);
}

static void maxpool_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_maxpool2d_bwd(&((pool2d *)l)->g, io->batch, io->in[0], io->dout, io->din[0]);
}

static void avgpool_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_avgpool2d_fwd(&((pool2d *)l)->g, io->batch, io->in[0], io->out);
}

static void avgpool_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_avgpool2d_bwd(&((pool2d *)l)->g, io->batch, io->dout, io->din[0]);
}

static void pool_keras(const ct_layer *l, ct_json *j)
{
    const pool2d *p = (const pool2d *)l;
    ct_keras_pair(j, "pool_size", p->kh, p->kw);
    ct_json_kstr(j, "padding", p->same ? "same" : "valid");
    ct_keras_pair(j, "strides", p->sh, p->sw);
    ct_json_kstr(j, "data_format", "channels_last");
}

const ct_layer_type ct_layer_maxpool2d = {
    .name = "maxpool2d", .keras_class = "MaxPooling2D", .keys = pool_keys, .size = sizeof(pool2d),
    .min_inputs = 1, .max_inputs = 1,
    .init = pool_init, .infer = pool_infer, .forward = maxpool_forward, .backward = maxpool_backward,    .keras_config = pool_keras,
};

const ct_layer_type ct_layer_avgpool2d = {
    .name = "avgpool2d", .keras_class = "AveragePooling2D", .keys = pool_keys, .size = sizeof(pool2d),
    .min_inputs = 1, .max_inputs = 1,
    .init = pool_init, .infer = pool_infer, .forward = avgpool_forward, .backward = avgpool_backward,    .keras_config = pool_keras,
};

/* ---- GlobalAveragePooling2D / GlobalMaxPooling2D ------------------------ */

static ct_status global_init(ct_layer *l, const ct_layer_config *c)
{
    return ct_layer_arg_bool(l, c, "keepdims", &((global_pool *)l)->keepdims);
}

static ct_status global_infer(ct_layer *l)
{
    CT_TRY(need_image(l));
    int64_t ch = l->in_shape[0].dims[2];
    l->out_shape = ((global_pool *)l)->keepdims ? ct_shape3(1, 1, ch) : ct_shape1(ch);
    return CT_OK;
}

static int64_t cells(const ct_layer *l) { return l->in_shape[0].dims[0] * l->in_shape[0].dims[1]; }
static int64_t chans(const ct_layer *l) { return l->in_shape[0].dims[2]; }

static void gavg_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_global_avgpool_fwd(io->batch, cells(l), chans(l), io->in[0], io->out);
}

static void gavg_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0]) ct_op_global_avgpool_bwd(io->batch, cells(l), chans(l), io->dout, io->din[0]);
}

static void gmax_forward(ct_layer *l, const ct_layer_io *io)
{
    ct_op_global_maxpool_fwd(io->batch, cells(l), chans(l), io->in[0], io->out);
}

static void gmax_backward(ct_layer *l, const ct_layer_io *io)
{
    if (io->din[0])
        ct_op_global_maxpool_bwd(io->batch, cells(l), chans(l), io->in[0], io->out, io->dout, io->din[0]);
}

static void global_keras(const ct_layer *l, ct_json *j)
{
    ct_json_kstr(j, "data_format", "channels_last");
    ct_json_kbool(j, "keepdims", ((const global_pool *)l)->keepdims);
}

const ct_layer_type ct_layer_global_avgpool2d = {
    .name = "global_avgpool2d", .keras_class = "GlobalAveragePooling2D", .keys = global_keys,
    .size = sizeof(global_pool), .min_inputs = 1, .max_inputs = 1,
    .init = global_init, .infer = global_infer, .forward = gavg_forward, .backward = gavg_backward,    .keras_config = global_keras,
};

const ct_layer_type ct_layer_global_maxpool2d = {
    .name = "global_maxpool2d", .keras_class = "GlobalMaxPooling2D", .keys = global_keys,
    .size = sizeof(global_pool), .min_inputs = 1, .max_inputs = 1,
    .init = global_init, .infer = global_infer, .forward = gmax_forward, .backward = gmax_backward,    .keras_config = global_keras,
};
