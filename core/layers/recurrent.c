/* SimpleRNN, LSTM, GRU and Bidirectional over them, on (T, F) samples.
 *
 * Fidelity (tf.keras 2.x): weights kernel (F, G*u), recurrent_kernel
 * (u, G*u), bias (G*u), or (2, 3u) for GRU with reset_after (the Keras 2
 * default); gate orders LSTM i, f, c, o and GRU z, r, h; initializers
 * glorot_uniform, orthogonal, zeros, with unit_forget_bias putting ones on
 * the LSTM forget gate; recurrent_activation sigmoid. In the .h5 the
 * weights sit under the cell as Keras writes them: lstm/lstm_cell/kernel:0,
 * and for Bidirectional forward_lstm/lstm_cell/... and backward_lstm/....
 * A mask (from Embedding(mask_zero) or Masking) keeps the state over
 * padded steps; with return_sequences the output keeps the mask.
 * Bidirectional runs a second layer with go_backwards, reverses its
 * sequence output back into time order, and merges (concat, sum, ave,
 * mul); under return_sequences both directions output zeros at masked
 * steps, as Keras's Bidirectional asks of its layers. dropout and
 * recurrent_dropout draw one mask per sequence (Keras's implementation 2:
 * the same mask for every gate and step), keyed by the global row, so any
 * number of ranks draws the same masks. return_state (the final h, c as
 * extra outputs) is not offered: a layer has one output here. */
#include <string.h>
#include <strings.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"
#include "rng.h"
#include "seq_ops.h"

enum { MERGE_CONCAT, MERGE_SUM, MERGE_AVE, MERGE_MUL };
static const char *const merge_names[] = {"concat", "sum", "ave", "mul"};

typedef struct rnn_layer {
    ct_layer base;
    ct_rnn_cell cell;
    int bidir, merge;
    int64_t units, T, F;
    int use_bias, return_sequences, go_backwards, reset_after;
    float dropout, rec_dropout;
    ct_initializer kinit, rinit, binit;
    ct_regularizer kreg, rreg, breg;
    int p[2][3];        /* kernel, recurrent_kernel, bias per direction (-1: none) */
    ct_rnn_desc d[2];
    int64_t dir_saved;  /* floats per sample per direction in saved */
    uint64_t name_hash;
} rnn_layer;

#define RNN_COMMON_KEYS                                                                                       \
    {"units", CT_KEY_INT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, 1 << 20, 0, NULL, "state width (>= 1)"},   \
        {"activation", CT_KEY_STRING, "tanh", 0, 0, 0, 0, ct_key_check_activation, "cell activation"},     \
        {"use_bias", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "add bias vectors"},                               \
        CT_KEY_INIT("kernel_initializer", "glorot_uniform"), CT_KEY_INIT("recurrent_initializer", "orthogonal"), \
        CT_KEY_INIT("bias_initializer", "zeros"), CT_KEY_REG("kernel_regularizer"),                           \
        CT_KEY_REG("recurrent_regularizer"), CT_KEY_REG("bias_regularizer"),                                   \
        {"dropout", CT_KEY_FLOAT, "0", CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL, "input dropout rate"},     \
        {"recurrent_dropout", CT_KEY_FLOAT, "0", CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL,                  \
         "dropout rate of the state entering recurrent_kernel"},                                              \
        {"return_sequences", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "output every step (T, u), else the last"}, \
        {"go_backwards", CT_KEY_BOOL, "false", 0, 0, 0, 0, NULL, "read the sequence from the end"},            \
        {"seed", CT_KEY_INT, NULL, 0, 0, 0, 0, NULL, "dropout seed (default: the [train] seed)"}

#define RNN_GATED_KEYS \
    {"recurrent_activation", CT_KEY_STRING, "sigmoid", 0, 0, 0, 0, ct_key_check_activation, "gate activation"}

static const ct_layer_key simple_keys[] = {RNN_COMMON_KEYS, {NULL}};
static const ct_layer_key lstm_keys[] = {
    RNN_COMMON_KEYS, RNN_GATED_KEYS,
    {"unit_forget_bias", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "ones on the forget gate's bias at start"},
    {NULL}};
static const ct_layer_key gru_keys[] = {
    RNN_COMMON_KEYS, RNN_GATED_KEYS,
    {"reset_after", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "apply the reset gate after the recurrent product (Keras 2)"},
    {NULL}};

static ct_status check_layer_kind(const char *v)
{
    if (strcmp(v, "lstm") == 0 || strcmp(v, "gru") == 0 || strcmp(v, "simple_rnn") == 0) return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "'%s' is not a recurrent layer: use lstm, gru or simple_rnn", v);
}

static ct_status check_merge(const char *v)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(v, merge_names[i]) == 0) return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "merge_mode '%s' is not known: use concat, sum, ave or mul", v);
}

static const ct_layer_key bidir_keys[] = {
    RNN_COMMON_KEYS, RNN_GATED_KEYS,
    {"unit_forget_bias", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "lstm: ones on the forget gate's bias at start"},
    {"reset_after", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "gru: reset gate after the recurrent product"},
    {"layer", CT_KEY_STRING, "lstm", 0, 0, 0, 0, check_layer_kind, "the wrapped layer: lstm, gru or simple_rnn"},
    {"merge_mode", CT_KEY_STRING, "concat", 0, 0, 0, 0, check_merge, "how the directions combine: concat, sum, ave, mul"},
    {NULL}};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ct_status rnn_act(const ct_layer *l, const ct_layer_config *c, const char *key, ct_activation *out)
{
    const char *s = NULL;
    CT_TRY(ct_layer_arg_string(l, c, key, &s));
    CT_TRY(ct_layer_parse_activation(l, s, out));
    if (!ct_rnn_activation_ok(*out))
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': %s '%s' is not available in recurrent cells (use tanh, sigmoid, relu, "
                       "hard_sigmoid or linear)", l->type->name, l->name, key, s);
    return CT_OK;
}

static ct_status rnn_init_common(ct_layer *l, const ct_layer_config *c, ct_rnn_cell cell)
{
    rnn_layer *r = (rnn_layer *)l;
    double dr, rdr;
    ct_activation act, rec_act = CT_ACT_SIGMOID;
    r->cell = cell;
    CT_TRY(ct_layer_arg_int(l, c, "units", &r->units));
    CT_TRY(ct_layer_arg_bool(l, c, "use_bias", &r->use_bias));
    CT_TRY(ct_layer_arg_bool(l, c, "return_sequences", &r->return_sequences));
    CT_TRY(ct_layer_arg_bool(l, c, "go_backwards", &r->go_backwards));
    CT_TRY(ct_layer_arg_float(l, c, "dropout", &dr));
    CT_TRY(ct_layer_arg_float(l, c, "recurrent_dropout", &rdr));
    r->dropout = (float)dr, r->rec_dropout = (float)rdr;
    CT_TRY(rnn_act(l, c, "activation", &act));
    if (cell != CT_RNN_SIMPLE) CT_TRY(rnn_act(l, c, "recurrent_activation", &rec_act));
    CT_TRY(ct_layer_arg_init(l, c, "kernel_initializer", &r->kinit));
    CT_TRY(ct_layer_arg_init(l, c, "recurrent_initializer", &r->rinit));
    CT_TRY(ct_layer_arg_init(l, c, "bias_initializer", &r->binit));
    CT_TRY(ct_layer_arg_reg(l, c, "kernel_regularizer", &r->kreg));
    CT_TRY(ct_layer_arg_reg(l, c, "recurrent_regularizer", &r->rreg));
    CT_TRY(ct_layer_arg_reg(l, c, "bias_regularizer", &r->breg));
    r->reset_after = 0;
    if (cell == CT_RNN_GRU) CT_TRY(ct_layer_arg_bool(l, c, "reset_after", &r->reset_after));
    if (cell == CT_RNN_LSTM) {
        int ufb;
        CT_TRY(ct_layer_arg_bool(l, c, "unit_forget_bias", &ufb));
        if (ufb) {
            if (r->binit.kind != CT_INIT_ZEROS)
                return CT_FAIL(CT_ERR_CONFIG, "%s '%s': unit_forget_bias = true works with bias_initializer zeros "
                               "(set unit_forget_bias = false for another)", l->type->name, l->name);
            r->binit.kind = CT_INIT_UNIT_FORGET;
        }
    }
    for (int k = 0; k < 2; k++)
        r->d[k] = (ct_rnn_desc){.cell = cell, .units = r->units, .act = act, .rec_act = rec_act,
                                .reset_after = r->reset_after, .dropout = r->dropout > 0, .rec_dropout = r->rec_dropout > 0};
    r->name_hash = fnv1a(l->name);
    return CT_OK;
}

static ct_status simple_init(ct_layer *l, const ct_layer_config *c) { return rnn_init_common(l, c, CT_RNN_SIMPLE); }
static ct_status lstm_init(ct_layer *l, const ct_layer_config *c) { return rnn_init_common(l, c, CT_RNN_LSTM); }
static ct_status gru_init(ct_layer *l, const ct_layer_config *c) { return rnn_init_common(l, c, CT_RNN_GRU); }

static ct_status bidir_init(ct_layer *l, const ct_layer_config *c)
{
    rnn_layer *r = (rnn_layer *)l;
    const char *kind = NULL, *merge = NULL;
    CT_TRY(ct_layer_arg_string(l, c, "layer", &kind));
    CT_TRY(ct_layer_arg_string(l, c, "merge_mode", &merge));
    ct_rnn_cell cell = strcmp(kind, "gru") == 0 ? CT_RNN_GRU : strcmp(kind, "simple_rnn") == 0 ? CT_RNN_SIMPLE : CT_RNN_LSTM;
    CT_TRY(rnn_init_common(l, c, cell));
    r->bidir = 1;
    for (int i = 0; i < 4; i++)
        if (strcmp(merge, merge_names[i]) == 0) r->merge = i;
    return CT_OK;
}

static const char *cell_name(ct_rnn_cell c) { return c == CT_RNN_LSTM ? "lstm" : c == CT_RNN_GRU ? "gru" : "simple_rnn"; }

static ct_status rnn_infer(ct_layer *l)
{
    rnn_layer *r = (rnn_layer *)l;
    const ct_shape *in = &l->in_shape[0];
    if (in->rank != 2)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': expects (timesteps, features) samples, got rank %d", l->type->name,
                       l->name, in->rank);
    r->T = in->dims[0], r->F = in->dims[1];
    const int64_t u = r->units, G = (int64_t)r->cell * u, ndir = r->bidir ? 2 : 1;
    const int64_t width = r->bidir && r->merge == MERGE_CONCAT ? 2 * u : u;
    l->out_shape = r->return_sequences ? ct_shape2(r->T, width) : ct_shape1(width);
    r->dir_saved = 0;
    for (int k = 0; k < ndir; k++) {
        ct_rnn_desc *d = &r->d[k];
        d->steps = r->T, d->in = r->F;
        d->go_backwards = r->bidir ? k == 1 : r->go_backwards;
        d->zero_output_for_mask = r->bidir && r->return_sequences;
        char pre[2 * CT_NAME_MAX + 16], nm[3 * CT_NAME_MAX];
        if (r->bidir) snprintf(pre, sizeof pre, "%s_%s/%s_cell/", k ? "backward" : "forward", cell_name(r->cell), cell_name(r->cell));
        else snprintf(pre, sizeof pre, "%s_cell/", cell_name(r->cell));
        snprintf(nm, sizeof nm, "%skernel", pre);
        r->p[k][0] = ct_layer_add_param(l, nm, ct_shape2(r->F, G), &r->kinit, &r->kreg, 1);
        snprintf(nm, sizeof nm, "%srecurrent_kernel", pre);
        r->p[k][1] = ct_layer_add_param(l, nm, ct_shape2(u, G), &r->rinit, &r->rreg, 1);
        snprintf(nm, sizeof nm, "%sbias", pre);
        r->p[k][2] = !r->use_bias ? -1
                     : r->cell == CT_RNN_GRU && r->reset_after
                         ? ct_layer_add_param(l, nm, ct_shape2(2, G), &r->binit, &r->breg, 1)
                         : ct_layer_add_param(l, nm, ct_shape1(G), &r->binit, &r->breg, 1);
        /* rnn state, dropout masks, the direction's own output */
        r->dir_saved = ct_rnn_saved(d) + r->F + u + (r->return_sequences ? r->T * u : u) + u;
    }
    l->saved_per_sample = ndir * r->dir_saved;
    int64_t scr = ct_rnn_scratch(&r->d[0]);
    l->scratch_per_sample = scr + ndir * (r->return_sequences ? r->T * u : u);
    return CT_OK;
}

typedef struct dir_bufs {
    float *state, *in_drop, *rec_drop, *out, *c_last;
} dir_bufs;

static dir_bufs bufs_of(const rnn_layer *r, float *saved, int64_t B, int k)
{
    const int64_t u = r->units;
    dir_bufs b;
    b.state = saved + B * k * r->dir_saved;
    b.in_drop = b.state + B * ct_rnn_saved(&r->d[k]);
    b.rec_drop = b.in_drop + B * r->F;
    b.out = b.rec_drop + B * u;
    b.c_last = b.out + B * (r->return_sequences ? r->T * u : u);
    return b;
}

/* Per-sequence dropout masks, keyed by (seed, step, layer, direction, global row). */
static void draw_masks(const rnn_layer *r, const ct_layer_io *io, int k, dir_bufs *b)
{
    const int64_t B = io->batch;
    uint64_t key = io->step ^ r->name_hash ^ ((uint64_t)k << 40);
    if (r->dropout > 0) {
        ct_rng g = ct_rng_make(io->seed, CT_RNG_DROPOUT, key);
        float keep = 1 - r->dropout;
        for (int64_t i = 0; i < B * r->F; i++)
            b->in_drop[i] = ct_rng_uniform(&g, (uint64_t)(io->row0 * r->F) + (uint64_t)i) < keep ? 1 / keep : 0.0f;
    }
    if (r->rec_dropout > 0) {
        ct_rng g = ct_rng_make(io->seed, CT_RNG_DROPOUT, key ^ 0x5bd1e995ull);
        float keep = 1 - r->rec_dropout;
        for (int64_t i = 0; i < B * r->units; i++)
            b->rec_drop[i] = ct_rng_uniform(&g, (uint64_t)(io->row0 * r->units) + (uint64_t)i) < keep ? 1 / keep : 0.0f;
    }
}

static ct_rnn_weights weights_of(const ct_layer *l, const rnn_layer *r, int k)
{
    return (ct_rnn_weights){l->params[r->p[k][0]].value, l->params[r->p[k][1]].value,
                            r->p[k][2] >= 0 ? l->params[r->p[k][2]].value : NULL};
}

static void rnn_forward(ct_layer *l, const ct_layer_io *io)
{
    rnn_layer *r = (rnn_layer *)l;
    const int64_t B = io->batch, u = r->units, T = r->T, ndir = r->bidir ? 2 : 1;
    const float *mask = io->in_mask[0];
    for (int k = 0; k < ndir; k++) {
        ct_rnn_desc d = r->d[k];
        d.batch = B;
        dir_bufs b = bufs_of(r, io->saved, B, k);
        int drop = io->training && (r->dropout > 0 || r->rec_dropout > 0);
        if (drop) draw_masks(r, io, k, &b);
        ct_rnn_weights w = weights_of(l, r, k);
        float *seq = r->return_sequences ? (ndir == 1 ? io->out : b.out) : NULL;
        float *h = r->return_sequences ? NULL : ndir == 1 ? io->out : b.out;
        d.dropout = d.dropout && io->training, d.rec_dropout = d.rec_dropout && io->training;
        ct_op_rnn_fwd(&d, &w, io->in[0], mask, d.dropout ? b.in_drop : NULL, d.rec_dropout ? b.rec_drop : NULL, seq, h,
                      b.c_last, b.state, io->scratch);
    }
    if (ndir == 1) return;
    dir_bufs f = bufs_of(r, io->saved, B, 0), bk = bufs_of(r, io->saved, B, 1);
    const int64_t steps = r->return_sequences ? T : 1, width = r->merge == MERGE_CONCAT ? 2 * u : u;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < steps; t++) {
            /* the backward direction's outputs come in processing order: reverse them back */
            const float *x = f.out + (b * steps + t) * u, *y = bk.out + (b * steps + (steps - 1 - t)) * u;
            float *o = io->out + (b * steps + t) * width;
            for (int64_t j = 0; j < u; j++) switch (r->merge) {
                case MERGE_CONCAT: o[j] = x[j], o[u + j] = y[j]; break;
                case MERGE_SUM: o[j] = x[j] + y[j]; break;
                case MERGE_AVE: o[j] = 0.5f * (x[j] + y[j]); break;
                default: o[j] = x[j] * y[j]; break;
                }
        }
}

static void rnn_backward(ct_layer *l, const ct_layer_io *io)
{
    rnn_layer *r = (rnn_layer *)l;
    const int64_t B = io->batch, u = r->units, T = r->T, ndir = r->bidir ? 2 : 1;
    const int64_t steps = r->return_sequences ? T : 1;
    float *dsplit = io->scratch + B * ct_rnn_scratch(&r->d[0]); /* per direction: d(out) */
    if (ndir == 2) {
        dir_bufs f = bufs_of(r, io->saved, B, 0), bk = bufs_of(r, io->saved, B, 1);
        float *df = dsplit, *db = dsplit + B * steps * u;
        const int64_t width = r->merge == MERGE_CONCAT ? 2 * u : u;
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < steps; t++) {
                const int64_t tb = b * steps + (steps - 1 - t), tf = b * steps + t;
                const float *g = io->dout + tf * width;
                for (int64_t j = 0; j < u; j++) switch (r->merge) {
                    case MERGE_CONCAT: df[tf * u + j] = g[j], db[tb * u + j] = g[u + j]; break;
                    case MERGE_SUM: df[tf * u + j] = db[tb * u + j] = g[j]; break;
                    case MERGE_AVE: df[tf * u + j] = db[tb * u + j] = 0.5f * g[j]; break;
                    default:
                        df[tf * u + j] = g[j] * bk.out[tb * u + j];
                        db[tb * u + j] = g[j] * f.out[tf * u + j];
                        break;
                    }
            }
    }
    for (int k = 0; k < ndir; k++) {
        ct_rnn_desc d = r->d[k];
        d.batch = B;
        dir_bufs b = bufs_of(r, io->saved, B, k);
        ct_rnn_weights w = weights_of(l, r, k);
        ct_rnn_grads g = {l->params[r->p[k][0]].grad, l->params[r->p[k][1]].grad,
                          r->p[k][2] >= 0 ? l->params[r->p[k][2]].grad : NULL};
        const float *dout = ndir == 1 ? io->dout : dsplit + k * B * steps * u;
        d.dropout = d.dropout && io->training, d.rec_dropout = d.rec_dropout && io->training;
        ct_op_rnn_bwd(&d, &w, io->in[0], io->in_mask[0], d.dropout ? b.in_drop : NULL, d.rec_dropout ? b.rec_drop : NULL,
                      r->return_sequences ? dout : NULL, r->return_sequences ? NULL : dout, NULL, b.state, io->scratch,
                      io->din[0], &g);
    }
}

static int rnn_mask(const ct_layer *l)
{
    return ((const rnn_layer *)l)->return_sequences ? CT_MASK_PASS : CT_MASK_CONSUME;
}

static void rnn_keras(const ct_layer *l, ct_json *j)
{
    const rnn_layer *r = (const rnn_layer *)l;
    ct_json_kint(j, "units", r->units);
    ct_json_kstr(j, "activation", ct_activation_name(r->d[0].act));
    if (r->cell != CT_RNN_SIMPLE) ct_json_kstr(j, "recurrent_activation", ct_activation_name(r->d[0].rec_act));
    ct_json_kbool(j, "use_bias", r->use_bias);
    ct_json_kbool(j, "return_sequences", r->return_sequences);
    ct_json_kbool(j, "return_state", 0);
    ct_json_kbool(j, "go_backwards", r->go_backwards);
    ct_json_knumf(j, "dropout", r->dropout);
    ct_json_knumf(j, "recurrent_dropout", r->rec_dropout);
    if (r->cell == CT_RNN_LSTM) ct_json_kbool(j, "unit_forget_bias", r->binit.kind == CT_INIT_UNIT_FORGET);
    if (r->cell == CT_RNN_GRU) ct_json_kbool(j, "reset_after", r->reset_after);
    if (r->bidir) ct_json_kstr(j, "merge_mode", merge_names[r->merge]);
}

#define RNN_TYPE(ident, tname, kclass, keyt, initf)                                                           \
    const ct_layer_type ident = {                                                                               \
        .name = tname, .keras_class = kclass, .keys = keyt, .size = sizeof(rnn_layer), .min_inputs = 1,         \
        .max_inputs = 1, .init = initf, .infer = rnn_infer, .forward = rnn_forward, .backward = rnn_backward,   \
        .keras_config = rnn_keras, .mask = rnn_mask,                                                            \
    }

RNN_TYPE(ct_layer_simple_rnn, "simple_rnn", "SimpleRNN", simple_keys, simple_init);
RNN_TYPE(ct_layer_lstm, "lstm", "LSTM", lstm_keys, lstm_init);
RNN_TYPE(ct_layer_gru, "gru", "GRU", gru_keys, gru_init);
RNN_TYPE(ct_layer_bidirectional, "bidirectional", "Bidirectional", bidir_keys, bidir_init);
