/* Embedding: token ids (T) -> vectors (T, output_dim), Keras's layer.
 *
 * Fidelity: weight "embeddings" (input_dim, output_dim), initializer
 * uniform(-0.05, 0.05) by default; with mask_zero the output carries a
 * mask (id != 0) that recurrent layers, GlobalAveragePooling1D and
 * attention read; mask_zero needs input_dim to count the padding id, as
 * Keras says. Ids arrive as floats (int32 model inputs are converted
 * exactly); an id outside [0, input_dim) gives a zero vector, where Keras
 * on CPU raises an error at run time. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "seq_ops.h"

typedef struct embedding {
    ct_layer base;
    int64_t input_dim, output_dim;
    int mask_zero;
    int64_t input_length; /* 0: not set */
    ct_initializer init;
    ct_regularizer reg;
    int table;
} embedding;

static const ct_layer_key embedding_keys[] = {
    {"input_dim", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 30, 0, NULL, "vocabulary size (ids 0 .. input_dim - 1)"},
    {"output_dim", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 20, 0, NULL, "vector width"},
    {"mask_zero", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "id 0 is padding: output a mask"},
    CT_KEY_INIT("embeddings_initializer", "random_uniform"),
    CT_KEY_REG("embeddings_regularizer"),
    {"input_length", CT_KEY_INT, NULL, CT_KEY_RANGE, 1, 1 << 30, 0, NULL, "sequence length (checked against the input)"},
    {NULL},
};

static ct_status embedding_init(ct_layer *l, const ct_layer_config *c)
{
    embedding *e = (embedding *)l;
    CT_TRY(ct_layer_arg_int(l, c, "input_dim", &e->input_dim));
    CT_TRY(ct_layer_arg_int(l, c, "output_dim", &e->output_dim));
    CT_TRY(ct_layer_arg_bool(l, c, "mask_zero", &e->mask_zero));
    CT_TRY(ct_layer_arg_init(l, c, "embeddings_initializer", &e->init));
    CT_TRY(ct_layer_arg_reg(l, c, "embeddings_regularizer", &e->reg));
    if (ct_layer_arg_is_set(c, "input_length")) CT_TRY(ct_layer_arg_int(l, c, "input_length", &e->input_length));
    return CT_OK;
}

static ct_status embedding_infer(ct_layer *l)
{
    embedding *e = (embedding *)l;
    const ct_shape *in = &l->in_shape[0];
    int64_t n = ct_shape_numel(in);
    if (e->input_length && e->input_length != n)
        return CT_FAIL(CT_ERR_SHAPE, "embedding '%s': input_length %lld, but the input holds %lld ids per sample",
                       l->name, (long long)e->input_length, (long long)n);
    l->out_shape = *in;
    if (in->rank >= CT_MAX_DIMS)
        return CT_FAIL(CT_ERR_SHAPE, "embedding '%s': input rank %d leaves no room for the vector axis", l->name, in->rank);
    l->out_shape.dims[in->rank] = e->output_dim;
    l->out_shape.rank = in->rank + 1;
    e->table = ct_layer_add_param(l, "embeddings", ct_shape2(e->input_dim, e->output_dim), &e->init, &e->reg, 1);
    return CT_OK;
}

static void embedding_forward(ct_layer *l, const ct_layer_io *io)
{
    embedding *e = (embedding *)l;
    int64_t n = io->batch * ct_shape_numel(&l->in_shape[0]);
    ct_op_embedding_fwd(io->in[0], l->params[e->table].value, io->out, n, e->input_dim, e->output_dim);
    if (io->out_mask)
        for (int64_t i = 0; i < n; i++) io->out_mask[i] = io->in[0][i] != 0 ? 1.0f : 0.0f;
}

static void embedding_backward(ct_layer *l, const ct_layer_io *io)
{
    embedding *e = (embedding *)l;
    int64_t n = io->batch * ct_shape_numel(&l->in_shape[0]);
    ct_op_embedding_bwd(io->in[0], io->dout, l->params[e->table].grad, n, e->input_dim, e->output_dim);
}

static int embedding_mask(const ct_layer *l) { return ((const embedding *)l)->mask_zero ? CT_MASK_MAKE : CT_MASK_CONSUME; }

static void embedding_keras(const ct_layer *l, ct_json *j)
{
    const embedding *e = (const embedding *)l;
    ct_json_kint(j, "input_dim", e->input_dim);
    ct_json_kint(j, "output_dim", e->output_dim);
    ct_json_kbool(j, "mask_zero", e->mask_zero);
    ct_json_kint(j, "input_length", ct_shape_numel(&l->in_shape[0]));
}

const ct_layer_type ct_layer_embedding = {
    .name = "embedding", .keras_class = "Embedding", .keys = embedding_keys, .size = sizeof(embedding),
    .min_inputs = 1, .max_inputs = 1, .int_inputs = 1,
    .init = embedding_init, .infer = embedding_infer, .forward = embedding_forward, .backward = embedding_backward,
    .keras_config = embedding_keras, .mask = embedding_mask,
};
