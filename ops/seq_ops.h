/* Kernels of the sequence layers: recurrent cells (ops/rnn.c), attention
 * and layer normalization (ops/attention.c), embedding lookups and masked
 * time pooling (ops/attention.c).
 *
 * Sequences are batch-major: x (B, T, F) row-major float32, features
 * fastest, as Keras's (batch, timesteps, features). A mask is (B, T) floats,
 * 1 for a real step and 0 for a padded one (NULL: every step is real).
 * Backward kernels ACCUMULATE into input and parameter gradients (+dL/dx).
 * Nothing here allocates: saved state and scratch come from the caller,
 * sized by the *_saved / *_scratch functions (floats per sample unless
 * said otherwise). Results never depend on the number of threads. */
#ifndef CT_SEQ_OPS_H
#define CT_SEQ_OPS_H

#include <stdint.h>

#include "activation.h"

/* ---- recurrent layers (ops/rnn.c) ---------------------------------------
 * Keras 2 cells, weights laid out as tf.keras stores them:
 *   SimpleRNN  kernel (F, u)   recurrent (u, u)   bias (u)
 *              h = act(x W + h' U + b)
 *   LSTM       kernel (F, 4u)  recurrent (u, 4u)  bias (4u), gates i, f, c, o
 *              i, f, o = rec_act(.), g = act(.); c = f c' + i g; h = o act(c)
 *   GRU        kernel (F, 3u)  recurrent (u, 3u), gates z, r, h;
 *     reset_after (Keras 2 default): bias (2, 3u) = input bias, recurrent bias
 *              xz, xr, xh = x W + b_in;  rz, rr, rh = h' U + b_rec
 *              z = rec_act(xz + rz), r = rec_act(xr + rr), n = act(xh + r * rh)
 *     reset_before: bias (3u) on the input side
 *              z = rec_act(xz + h' Uz), r = rec_act(xr + h' Ur), n = act(xh + (r h') Uh)
 *              h = z h' + (1 - z) n
 * (h', c' the state before the step.) A masked step keeps the state
 * (h = h', c = c') and outputs h' (zero with zero_output_for_mask, as
 * Bidirectional asks for); go_backwards reads x (and the mask) from the
 * last step to the first and returns outputs in that processing order.
 * Dropout masks (already scaled by 1 / (1 - rate)), one per sequence as
 * Keras draws them: in_drop (B, F) multiplies x, rec_drop (B, u) the state
 * entering U. Activations: linear, relu, tanh, sigmoid, hard_sigmoid. */
typedef enum ct_rnn_cell { CT_RNN_SIMPLE = 1, CT_RNN_GRU = 3, CT_RNN_LSTM = 4 } ct_rnn_cell; /* = gates */

typedef struct ct_rnn_desc {
    ct_rnn_cell cell;
    int64_t batch, steps, in, units;
    ct_activation act, rec_act;
    int reset_after;          /* GRU */
    int go_backwards;
    int zero_output_for_mask;
    int dropout, rec_dropout; /* 1: in_drop / rec_drop will be given (sizes saved state and scratch) */
} ct_rnn_desc;

typedef struct ct_rnn_weights {
    const float *kernel, *rec, *bias; /* bias may be NULL (use_bias false) */
} ct_rnn_weights;

typedef struct ct_rnn_grads {
    float *kernel, *rec, *bias;       /* may be NULL when not wanted */
} ct_rnn_grads;

/* 1 when the cell supports activation a (see above). */
int ct_rnn_activation_ok(ct_activation a);

/* Floats of saved state (kept from forward to backward) and of scratch
 * (free between calls) per sample. */
int64_t ct_rnn_saved(const ct_rnn_desc *d);
int64_t ct_rnn_scratch(const ct_rnn_desc *d);

/* x (B, T, F), mask (B, T) or NULL, in_drop / rec_drop or NULL.
 * seq (B, T, u) or NULL: the output at every step; h_last (B, u) and
 * c_last (B, u, LSTM only) or NULL: the final state. saved: B *
 * ct_rnn_saved floats. */
void ct_op_rnn_fwd(const ct_rnn_desc *d, const ct_rnn_weights *w, const float *x, const float *mask,
                   const float *in_drop, const float *rec_drop, float *seq, float *h_last, float *c_last,
                   float *saved, float *scratch);

/* Gradients given dseq (B, T, u), dh_last, dc_last (B, u), any NULL.
 * dx (B, T, F) may be NULL. */
void ct_op_rnn_bwd(const ct_rnn_desc *d, const ct_rnn_weights *w, const float *x, const float *mask,
                   const float *in_drop, const float *rec_drop, const float *dseq, const float *dh_last,
                   const float *dc_last, const float *saved, float *scratch, float *dx, const ct_rnn_grads *g);

/* ---- attention (ops/attention.c) ----------------------------------------
 * Scaled dot-product attention over heads, the core of Keras's
 * MultiHeadAttention after its projections:
 *   q (B, Tq, H, K), k (B, Tv, H, K), v (B, Tv, H, Vd) -> o (B, Tq, H, Vd)
 *   s[b,h,i,j] = scale * q[b,i,h,:] . k[b,j,h,:]   (scale = 1/sqrt(K))
 *   p = softmax_j(s + (1 - m) * -1e9),  o[b,i,h,:] = sum_j p[b,h,i,j] v[b,j,h,:]
 * The mask m[b,i,j] is the product of: key_mask[b,j] (padding of the
 * keys, NULL: none), query_mask[b,i] (NULL: none; Keras ANDs it in too)
 * and, with causal, j <= i. A row with every key masked comes out uniform,
 * as Keras's softmax of -1e9s does (masked scores are set to -1e9, where
 * Keras adds it: the same in float32, whose spacing at 1e9 is 64, and the
 * gradient of a fully masked row is 0). p (B, H, Tq, Tv) is kept for the
 * backward pass (saved); attention dropout, when drop is not NULL,
 * multiplies p by drop (B, H, Tq, Tv, scaled) after the softmax. */
typedef struct ct_attn_desc {
    int64_t batch, tq, tv, heads, key_dim, value_dim;
    int causal;
    float scale;
} ct_attn_desc;

/* Floats kept per sample (p, the dropped p, a flag per fully masked row) and scratch per sample. */
int64_t ct_attn_saved(const ct_attn_desc *d);
int64_t ct_attn_scratch(const ct_attn_desc *d);

void ct_op_attention_fwd(const ct_attn_desc *d, const float *q, const float *k, const float *v,
                         const float *key_mask, const float *query_mask, const float *drop, float *o,
                         float *saved);
/* dq, dk, dv (same shapes as q, k, v) += the gradients given do. */
void ct_op_attention_bwd(const ct_attn_desc *d, const float *q, const float *k, const float *v,
                         const float *drop, const float *dout, const float *saved, float *dq, float *dk,
                         float *dv, float *scratch);

/* ---- layer normalization (ops/attention.c) ------------------------------
 * Keras LayerNormalization over the last axis: x (rows, c),
 * y = (x - mean) / sqrt(var + eps) * gamma + beta (gamma, beta may be NULL:
 * 1 and 0). stats (rows, 2) keeps mean and 1/sqrt(var + eps). */
void ct_op_layer_norm_fwd(const float *x, const float *gamma, const float *beta, float eps, float *y,
                          float *stats, int64_t rows, int64_t c);
/* dx += dL/dx; dgamma, dbeta (c) += their gradients (any may be NULL). */
void ct_op_layer_norm_bwd(const float *x, const float *gamma, const float *dy, const float *stats, float *dx,
                          float *dgamma, float *dbeta, int64_t rows, int64_t c);

/* ---- embeddings and masked pooling (ops/attention.c) --------------------
 * ids (n) token ids held as floats (exact below 2^24), table (vocab, dim):
 * y (n, dim) = table[ids]; an id outside [0, vocab) gives zeros and counts
 * in the return value (the layer reports it). The backward pass adds dy
 * rows into dtable, in a fixed order. */
int64_t ct_op_embedding_fwd(const float *ids, const float *table, float *y, int64_t n, int64_t vocab,
                            int64_t dim);
void ct_op_embedding_bwd(const float *ids, const float *dy, float *dtable, int64_t n, int64_t vocab,
                         int64_t dim);

/* Masked mean over time: x (B, T, C), mask (B, T) -> y (B, C) =
 * sum_t m x / sum_t m (Keras GlobalAveragePooling1D with a mask; a fully
 * masked row divides by 0 in Keras and gives NaN; here it gives 0). */
void ct_op_masked_mean_fwd(const float *x, const float *mask, float *y, int64_t b, int64_t t, int64_t c);
void ct_op_masked_mean_bwd(const float *mask, const float *dy, float *dx, int64_t b, int64_t t, int64_t c);

#endif
