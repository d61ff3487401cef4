/* MultiHeadAttention, Keras's layer: inputs query (Tq, Dq), value (Tv, Dv)
 * and optionally key (Tv, Dk; default value). One input means self-
 * attention (query = value = key).
 *
 * Fidelity: weights as Keras's EinsumDense sublayers write them:
 * query/kernel (Dq, H, K), query/bias (H, K), key/kernel (Dk, H, K),
 * key/bias (H, K), value/kernel (Dv, H, Vd), value/bias (H, Vd),
 * attention_output/kernel (H, Vd, Dq), attention_output/bias (Dq);
 * value_dim defaults to key_dim; scores scaled by 1/sqrt(key_dim); masked
 * scores get -1e9 (ops/seq_ops.h). Masks: the query's and the value's
 * (padding) masks, and use_causal_mask; the output keeps the query's
 * mask. Attention dropout on the probabilities in training. */
#include <math.h>
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"
#include "rng.h"
#include "seq_ops.h"

typedef struct mha {
    ct_layer base;
    int64_t heads, key_dim, value_dim, Tq, Tv, Dq, Dv, Dk;
    float dropout;
    int causal, use_bias;
    ct_kernel_bias kb;
    int w[4], b[4]; /* query, key, value, attention_output */
    ct_attn_desc ad;
    uint64_t name_hash;
} mha;

static const ct_layer_key mha_keys[] = {
    {"num_heads", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 4096, 0, NULL, "attention heads"},
    {"key_dim", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 16, 0, NULL, "query and key width per head"},
    {"value_dim", CT_KEY_INT, NULL, CT_KEY_RANGE, 1, 1 << 16, 0, NULL, "value width per head (default key_dim)"},
    {"dropout", CT_KEY_FLOAT, "0", CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL, "dropout on the attention probabilities"},
    {"use_causal_mask", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "step i attends to steps <= i only"},
    {"use_bias", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "biases on the projections"},
    CT_KEY_INIT("kernel_initializer", "glorot_uniform"), CT_KEY_INIT("bias_initializer", "zeros"),
    CT_KEY_REG("kernel_regularizer"), CT_KEY_REG("bias_regularizer"),
    {NULL},
};

static ct_status mha_init(ct_layer *l, const ct_layer_config *c)
{
    mha *m = (mha *)l;
    double dr;
    CT_TRY(ct_layer_arg_int(l, c, "num_heads", &m->heads));
    CT_TRY(ct_layer_arg_int(l, c, "key_dim", &m->key_dim));
    m->value_dim = m->key_dim;
    if (ct_layer_arg_is_set(c, "value_dim")) CT_TRY(ct_layer_arg_int(l, c, "value_dim", &m->value_dim));
    CT_TRY(ct_layer_arg_float(l, c, "dropout", &dr));
    m->dropout = (float)dr;
    CT_TRY(ct_layer_arg_bool(l, c, "use_causal_mask", &m->causal));
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &m->use_bias));
    CT_TRY(ct_layer_arg_init(l, c, "kernel_initializer", &m->kb.kinit));
    CT_TRY(ct_layer_arg_init(l, c, "bias_initializer", &m->kb.binit));
    CT_TRY(ct_layer_arg_reg(l, c, "kernel_regularizer", &m->kb.kreg));
    CT_TRY(ct_layer_arg_reg(l, c, "bias_regularizer", &m->kb.breg));
    uint64_t h = 1469598103934665603ull;
    for (const char *s = l->name; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    m->name_hash = h;
    return CT_OK;
}

static const ct_shape *in_of(const ct_layer *l, int which) /* 0 query, 1 value, 2 key */
{
    int k = which < l->n_in ? which : which == 2 && l->n_in >= 2 ? 1 : 0;
    return &l->in_shape[k];
}

static ct_status mha_infer(ct_layer *l)
{
    mha *m = (mha *)l;
    for (int i = 0; i < l->n_in; i++)
        if (l->in_shape[i].rank != 2)
            return CT_FAIL(CT_ERR_SHAPE, "multi_head_attention '%s': input %d must be (steps, features), got rank %d",
                           l->name, i + 1, l->in_shape[i].rank);
    const ct_shape *q = in_of(l, 0), *v = in_of(l, 1), *k = in_of(l, 2);
    m->Tq = q->dims[0], m->Dq = q->dims[1], m->Tv = v->dims[0], m->Dv = v->dims[1], m->Dk = k->dims[1];
    if (k->dims[0] != m->Tv)
        return CT_FAIL(CT_ERR_SHAPE, "multi_head_attention '%s': key has %lld steps, value %lld", l->name,
                       (long long)k->dims[0], (long long)m->Tv);
    const int64_t H = m->heads, K = m->key_dim, V = m->value_dim;
    int64_t dq[3] = {m->Dq, H, K}, dk[3] = {m->Dk, H, K}, dv[3] = {m->Dv, H, V}, dout[3] = {H, V, m->Dq};
    const char *names[4] = {"query", "key", "value", "attention_output"};
    ct_shape ks[4] = {ct_shape_make(3, dq), ct_shape_make(3, dk), ct_shape_make(3, dv), ct_shape_make(3, dout)};
    ct_shape bs[4] = {ct_shape2(H, K), ct_shape2(H, K), ct_shape2(H, V), ct_shape1(m->Dq)};
    for (int i = 0; i < 4; i++) {
        char nm[80];
        snprintf(nm, sizeof nm, "%s/kernel", names[i]);
        m->w[i] = ct_layer_add_param(l, nm, ks[i], &m->kb.kinit, &m->kb.kreg, 1);
        snprintf(nm, sizeof nm, "%s/bias", names[i]);
        m->b[i] = m->use_bias ? ct_layer_add_param(l, nm, bs[i], &m->kb.binit, &m->kb.breg, 1) : -1;
    }
    l->out_shape = ct_shape2(m->Tq, m->Dq);
    m->ad = (ct_attn_desc){0, m->Tq, m->Tv, H, K, V, m->causal, (float)(1.0 / sqrt((double)K))};
    const int64_t P = H * m->Tq * m->Tv;
    /* Q, K, V, O, the attention's saved probabilities, the dropout mask */
    l->saved_per_sample = m->Tq * H * K + m->Tv * H * K + m->Tv * H * V + m->Tq * H * V + ct_attn_saved(&m->ad) +
                          (m->dropout > 0 ? P : 0);
    /* dQ, dK, dV, dO and the attention's scratch */
    l->scratch_per_sample = m->Tq * H * K + m->Tv * H * K + m->Tv * H * V + m->Tq * H * V + ct_attn_scratch(&m->ad);
    return CT_OK;
}

typedef struct mha_bufs {
    float *q, *k, *v, *o, *attn, *drop;
} mha_bufs;

static mha_bufs bufs(const mha *m, float *base, int64_t B, int with_drop)
{
    const int64_t H = m->heads, K = m->key_dim, V = m->value_dim;
    mha_bufs b;
    b.q = base;
    b.k = b.q + B * m->Tq * H * K;
    b.v = b.k + B * m->Tv * H * K;
    b.o = b.v + B * m->Tv * H * V;
    b.attn = b.o + B * m->Tq * H * V;
    b.drop = with_drop ? b.attn + B * ct_attn_saved(&m->ad) : NULL;
    return b;
}

static const float *input(const ct_layer_io *io, int which)
{
    int k = which < io->n_in ? which : which == 2 && io->n_in >= 2 ? 1 : 0;
    return io->in[k];
}
static float *dinput(const ct_layer_io *io, int which)
{
    int k = which < io->n_in ? which : which == 2 && io->n_in >= 2 ? 1 : 0;
    return io->din[k];
}
static const float *mask_of(const ct_layer_io *io, int which)
{
    int k = which < io->n_in ? which : 0;
    return io->in_mask[k];
}

static void project(const ct_layer *l, const mha *m, int i, const float *x, int64_t rows, int64_t din, int64_t dout, float *y)
{
    ct_op_gemm(0, 0, rows, dout, din, 1.0f, x, l->params[m->w[i]].value, 0.0f, y);
    if (m->b[i] >= 0) ct_op_add_bias(y, l->params[m->b[i]].value, rows, dout);
}

static void mha_forward(ct_layer *l, const ct_layer_io *io)
{
    mha *m = (mha *)l;
    const int64_t B = io->batch, H = m->heads, K = m->key_dim, V = m->value_dim;
    const int drop = io->training && m->dropout > 0;
    mha_bufs b = bufs(m, io->saved, B, m->dropout > 0);
    project(l, m, 0, input(io, 0), B * m->Tq, m->Dq, H * K, b.q);
    project(l, m, 1, input(io, 2), B * m->Tv, m->Dk, H * K, b.k);
    project(l, m, 2, input(io, 1), B * m->Tv, m->Dv, H * V, b.v);
    if (drop) {
        const int64_t P = H * m->Tq * m->Tv;
        ct_rng g = ct_rng_make(io->seed, CT_RNG_DROPOUT, io->step ^ m->name_hash);
        float keep = 1 - m->dropout;
        for (int64_t i = 0; i < B * P; i++)
            b.drop[i] = ct_rng_uniform(&g, (uint64_t)(io->row0 * P) + (uint64_t)i) < keep ? 1 / keep : 0.0f;
    }
    ct_attn_desc ad = m->ad;
    ad.batch = B;
    ct_op_attention_fwd(&ad, b.q, b.k, b.v, mask_of(io, 1), mask_of(io, 0), drop ? b.drop : NULL, b.o, b.attn);
    project(l, m, 3, b.o, B * m->Tq, H * V, m->Dq, io->out);
}

static void unproject(ct_layer *l, const mha *m, int i, const float *x, const float *dy, int64_t rows, int64_t din,
                      int64_t dout, float *dx)
{
    ct_op_gemm(1, 0, din, dout, rows, 1.0f, x, dy, 1.0f, l->params[m->w[i]].grad);
    if (m->b[i] >= 0) ct_op_bias_grad(dy, l->params[m->b[i]].grad, rows, dout);
    if (dx) ct_op_gemm(0, 1, rows, din, dout, 1.0f, dy, l->params[m->w[i]].value, 1.0f, dx);
}

static void mha_backward(ct_layer *l, const ct_layer_io *io)
{
    mha *m = (mha *)l;
    const int64_t B = io->batch, H = m->heads, K = m->key_dim, V = m->value_dim;
    const int drop = io->training && m->dropout > 0;
    mha_bufs b = bufs(m, io->saved, B, m->dropout > 0);
    mha_bufs d = bufs(m, io->scratch, B, 0); /* dq, dk, dv, do, then the attention's scratch */
    memset(d.q, 0, sizeof(float) * (size_t)(B * (m->Tq * H * K + m->Tv * H * K + m->Tv * H * V)));
    memset(d.o, 0, sizeof(float) * (size_t)(B * m->Tq * H * V));
    unproject(l, m, 3, b.o, io->dout, B * m->Tq, H * V, m->Dq, d.o);
    ct_attn_desc ad = m->ad;
    ad.batch = B;
    ct_op_attention_bwd(&ad, b.q, b.k, b.v, drop ? b.drop : NULL, d.o, b.attn, d.q, d.k, d.v, d.attn);
    unproject(l, m, 0, input(io, 0), d.q, B * m->Tq, m->Dq, H * K, dinput(io, 0));
    unproject(l, m, 1, input(io, 2), d.k, B * m->Tv, m->Dk, H * K, dinput(io, 2));
    unproject(l, m, 2, input(io, 1), d.v, B * m->Tv, m->Dv, H * V, dinput(io, 1));
}

static void mha_keras(const ct_layer *l, ct_json *j)
{
    const mha *m = (const mha *)l;
    ct_json_kint(j, "num_heads", m->heads);
    ct_json_kint(j, "key_dim", m->key_dim);
    ct_json_kint(j, "value_dim", m->value_dim);
    ct_json_knumf(j, "dropout", m->dropout);
    ct_json_kbool(j, "use_bias", m->use_bias);
    ct_json_knull(j, "output_shape");
    ct_json_knull(j, "attention_axes");
    ct_keras_initializer(j, "kernel_initializer", &m->kb.kinit);
    ct_keras_initializer(j, "bias_initializer", &m->kb.binit);
}

const ct_layer_type ct_layer_multi_head_attention = {
    .name = "multi_head_attention", .keras_class = "MultiHeadAttention", .keys = mha_keys, .size = sizeof(mha),
    .min_inputs = 1, .max_inputs = 3, .init = mha_init, .infer = mha_infer, .forward = mha_forward,
    .backward = mha_backward, .keras_config = mha_keras, .mask = ct_layer_mask_pass,
};
