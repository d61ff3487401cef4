/* Add and Concatenate: the layers that join branches of a graph. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"

static const ct_layer_key concat_keys[] = {
    {"axis", CT_KEY_INT, "-1", 0, 0, 0, 0, NULL, "axis to join along, Keras-style (-1: the last; 1: the first after the batch)"},
    {NULL},
};

static ct_status add_init(ct_layer *l, const ct_layer_config *c) { return CT_OK; }

static ct_status add_infer(ct_layer *l)
{
    char a[64], b[64];
    for (int i = 1; i < l->n_in; i++)
        if (!ct_shape_equal(&l->in_shape[i], &l->in_shape[0]))
            return CT_FAIL(CT_ERR_SHAPE, "add '%s': input %d has shape %s, input 0 has %s; all must match",
                           l->name, i, ct_shape_str(&l->in_shape[i], 0, a, sizeof a),
                           ct_shape_str(&l->in_shape[0], 0, b, sizeof b));
    l->out_shape = l->in_shape[0];
    return CT_OK;
}

static void add_forward(ct_layer *l, const ct_layer_io *io)
{
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    const float *a = io->in[0], *b = io->in[1];
    float *o = io->out;
    /* The first two inputs in one pass (a ResNet shortcut is exactly two). */
#pragma omp parallel for simd schedule(static) if (n > 262144)
    for (int64_t k = 0; k < n; k++) o[k] = a[k] + b[k];
    for (int i = 2; i < io->n_in; i++) ct_op_axpy(io->out, io->in[i], 1.0f, n);
}

static void add_backward(ct_layer *l, const ct_layer_io *io)
{
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    for (int i = 0; i < io->n_in; i++)
        if (io->din[i]) ct_op_axpy(io->din[i], io->dout, 1.0f, n);
}

const ct_layer_type ct_layer_add = {
    .name = "add", .keras_class = "Add", .keys = NULL, .size = sizeof(ct_layer),
    .min_inputs = 2, .max_inputs = CT_LAYER_MAX_INPUTS,
    .init = add_init, .infer = add_infer, .forward = add_forward, .backward = add_backward,
};

typedef struct concat {
    ct_layer base;
    int axis_cfg; /* Keras axis, counting the batch axis */
    int axis;     /* per-sample axis */
    int64_t outer, inner_out;
    int64_t inner[CT_LAYER_MAX_INPUTS]; /* values per outer index of input i */
} concat;

static ct_status concat_init(ct_layer *l, const ct_layer_config *c)
{
    int64_t axis;
    CT_TRY(ct_layer_arg_int(l, c, "axis", &axis));
    if (axis < -CT_MAX_DIMS - 1 || axis > CT_MAX_DIMS)
        return CT_FAIL(CT_ERR_CONFIG, "concatenate '%s': axis %lld is out of range", l->name, (long long)axis);
    ((concat *)l)->axis_cfg = (int)axis;
    return CT_OK;
}

static ct_status concat_infer(ct_layer *l)
{
    concat *c = (concat *)l;
    int rank = l->in_shape[0].rank;
    int axis = c->axis_cfg < 0 ? rank + c->axis_cfg : c->axis_cfg - 1;
    if (axis < 0 || axis >= rank)
        return CT_FAIL(CT_ERR_SHAPE, "concatenate '%s': axis %d is out of range for inputs of rank %d (+batch)",
                       l->name, c->axis_cfg, rank);
    c->axis = axis;
    l->out_shape = l->in_shape[0];
    l->out_shape.dims[axis] = 0;
    char a[64], b[64];
    for (int i = 0; i < l->n_in; i++) {
        const ct_shape *s = &l->in_shape[i];
        int ok = s->rank == rank;
        for (int d = 0; ok && d < rank; d++)
            if (d != axis && s->dims[d] != l->in_shape[0].dims[d]) ok = 0;
        if (!ok)
            return CT_FAIL(CT_ERR_SHAPE,
                           "concatenate '%s': input %d has shape %s, input 0 has %s; they may differ only on axis %d",
                           l->name, i, ct_shape_str(s, 0, a, sizeof a), ct_shape_str(&l->in_shape[0], 0, b, sizeof b),
                           c->axis_cfg);
        l->out_shape.dims[axis] += s->dims[axis];
    }
    c->outer = 1;
    for (int d = 0; d < axis; d++) c->outer *= l->out_shape.dims[d];
    int64_t tail = 1;
    for (int d = axis + 1; d < rank; d++) tail *= l->out_shape.dims[d];
    for (int i = 0; i < l->n_in; i++) c->inner[i] = l->in_shape[i].dims[axis] * tail;
    c->inner_out = l->out_shape.dims[axis] * tail;
    return CT_OK;
}

static void concat_forward(ct_layer *l, const ct_layer_io *io)
{
    concat *c = (concat *)l;
    int64_t rows = io->batch * c->outer;
    for (int64_t r = 0; r < rows; r++) {
        float *o = io->out + r * c->inner_out;
        for (int i = 0; i < io->n_in; i++) {
            memcpy(o, io->in[i] + r * c->inner[i], sizeof(float) * (size_t)c->inner[i]);
            o += c->inner[i];
        }
    }
}

static void concat_backward(ct_layer *l, const ct_layer_io *io)
{
    concat *c = (concat *)l;
    int64_t rows = io->batch * c->outer;
    for (int64_t r = 0; r < rows; r++) {
        const float *g = io->dout + r * c->inner_out;
        for (int i = 0; i < io->n_in; i++) {
            if (io->din[i]) {
                float *d = io->din[i] + r * c->inner[i];
                for (int64_t k = 0; k < c->inner[i]; k++) d[k] += g[k];
            }
            g += c->inner[i];
        }
    }
}

static void concat_keras(const ct_layer *l, ct_json *j) { ct_json_kint(j, "axis", ((const concat *)l)->axis_cfg); }

const ct_layer_type ct_layer_concatenate = {
    .name = "concatenate", .keras_class = "Concatenate", .keys = concat_keys, .size = sizeof(concat),
    .min_inputs = 2, .max_inputs = CT_LAYER_MAX_INPUTS,
    .init = concat_init, .infer = concat_infer, .forward = concat_forward, .backward = concat_backward,    .keras_config = concat_keras,
};
