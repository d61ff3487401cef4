/* TokenAndPositionEmbedding, the layer of Keras's example "Text
 * classification with Transformer": token ids (T) -> token_emb[id] +
 * pos_emb[t], (T, embed_dim). Weights as the example's two Embedding
 * sublayers write them: token_emb/embeddings (vocab_size, embed_dim) and
 * pos_emb/embeddings (maxlen, embed_dim), both uniform(-0.05, 0.05). The
 * example passes no mask on; neither does this layer. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "seq_ops.h"

typedef struct token_pos {
    ct_layer base;
    int64_t vocab, maxlen, dim, T;
    ct_initializer init;
    int tok, pos;
} token_pos;

static const ct_layer_key token_pos_keys[] = {
    {"vocab_size", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 30, 0, NULL, "token ids 0 .. vocab_size - 1"},
    {"maxlen", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 24, 0, NULL, "positions (>= the sequence length)"},
    {"embed_dim", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 20, 0, NULL, "vector width"},
    CT_KEY_INIT("embeddings_initializer", "random_uniform"),
    {NULL},
};

static ct_status token_pos_init(ct_layer *l, const ct_layer_config *c)
{
    token_pos *e = (token_pos *)l;
    CT_TRY(ct_layer_arg_int(l, c, "vocab_size", &e->vocab));
    CT_TRY(ct_layer_arg_int(l, c, "maxlen", &e->maxlen));
    CT_TRY(ct_layer_arg_int(l, c, "embed_dim", &e->dim));
    return ct_layer_arg_init(l, c, "embeddings_initializer", &e->init);
}

static ct_status token_pos_infer(ct_layer *l)
{
    token_pos *e = (token_pos *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank != 1)
        return CT_FAIL(CT_ERR_SHAPE, "token_and_position_embedding '%s': expects (timesteps) token ids, got rank %d",
                       l->name, in->rank);
    e->T = in->dims[0];
    if (e->T > e->maxlen)
        return CT_FAIL(CT_ERR_SHAPE, "token_and_position_embedding '%s': sequences of %lld ids exceed maxlen %lld",
                       l->name, (long long)e->T, (long long)e->maxlen);
    l->out_shape = ct_shape2(e->T, e->dim);
    ct_regularizer none = {0};
    e->tok = ct_layer_add_param(l, "token_emb/embeddings", ct_shape2(e->vocab, e->dim), &e->init, &none, 1);
    e->pos = ct_layer_add_param(l, "pos_emb/embeddings", ct_shape2(e->maxlen, e->dim), &e->init, &none, 1);
    return CT_OK;
}

static void token_pos_forward(ct_layer *l, const ct_layer_io *io)
{
    token_pos *e = (token_pos *)l;
    const int64_t B = io->batch, T = e->T, D = e->dim;
    const float *pos = l->params[e->pos].value;
    ct_op_embedding_fwd(io->in[0], l->params[e->tok].value, io->out, B * T, e->vocab, D);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            float *o = io->out + (b * T + t) * D;
            for (int64_t j = 0; j < D; j++) o[j] += pos[t * D + j];
        }
}

static void token_pos_backward(ct_layer *l, const ct_layer_io *io)
{
    token_pos *e = (token_pos *)l;
    const int64_t B = io->batch, T = e->T, D = e->dim;
    ct_op_embedding_bwd(io->in[0], io->dout, l->params[e->tok].grad, B * T, e->vocab, D);
    float *dp = l->params[e->pos].grad;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) dp[t * D + j] += io->dout[(b * T + t) * D + j];
}

static void token_pos_keras(const ct_layer *l, ct_json *j)
{
    const token_pos *e = (const token_pos *)l;
    ct_json_kint(j, "maxlen", e->maxlen);
    ct_json_kint(j, "vocab_size", e->vocab);
    ct_json_kint(j, "embed_dim", e->dim);
}

const ct_layer_type ct_layer_token_and_position_embedding = {
    .name = "token_and_position_embedding", .keras_class = "TokenAndPositionEmbedding", .keys = token_pos_keys,
    .size = sizeof(token_pos), .min_inputs = 1, .max_inputs = 1, .int_inputs = 1,
    .init = token_pos_init, .infer = token_pos_infer, .forward = token_pos_forward, .backward = token_pos_backward,
    .keras_config = token_pos_keras,
};
