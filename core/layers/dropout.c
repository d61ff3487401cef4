/* Dropout: in training keep each value with probability 1 - rate and scale
 * it by 1 / (1 - rate); identity in inference. The mask is drawn from the
 * counter-based RNG keyed by (seed, step, layer), so it does not depend on
 * threads, and it is kept in `saved` for the backward pass. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"
#include "rng.h"

typedef struct dropout {
    ct_layer base;
    float rate;
    uint64_t seed;
    int has_seed;
    uint64_t name_hash;
} dropout;

static const ct_layer_key dropout_keys[] = {
    {"rate", CT_KEY_FLOAT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL,
     "fraction of the values dropped, in [0, 1)"},
    {"seed", CT_KEY_INT, NULL, 0, 0, 0, 0, NULL, "mask seed (default: the [train] seed)"},
    {NULL},
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ct_status dropout_init(ct_layer *l, const ct_layer_config *c)
{
    dropout *d = (dropout *)l;
    CT_TRY(ct_layer_arg_dropout(l, c, &d->rate, &d->has_seed, &d->seed));
    d->name_hash = fnv1a(l->name);
    return CT_OK;
}

static ct_status dropout_infer(ct_layer *l)
{
    l->out_shape = l->in_shape[0];
    l->saved_per_sample = ct_shape_numel(&l->out_shape); /* the scaled mask */
    return CT_OK;
}

static void dropout_forward(ct_layer *l, const ct_layer_io *io)
{
    dropout *d = (dropout *)l;
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    if (!io->training || d->rate == 0) {
        memcpy(io->out, io->in[0], sizeof(float) * (size_t)n);
        if (io->saved) ct_op_fill(io->saved, 1.0f, n);
        return;
    }
    ct_rng r = ct_rng_make(d->has_seed ? d->seed : io->seed, CT_RNG_DROPOUT, io->step ^ d->name_hash);
    float keep = 1.0f - d->rate, scale = 1.0f / keep;
    /* Keyed by the global element index: the same mask on any number of ranks. */
    uint64_t base = (uint64_t)io->row0 * (uint64_t)ct_shape_numel(&l->out_shape);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float m = ct_rng_uniform(&r, base + (uint64_t)i) < keep ? scale : 0.0f;
        io->saved[i] = m;
        io->out[i] = io->in[0][i] * m;
    }
}

static void dropout_backward(ct_layer *l, const ct_layer_io *io)
{
    if (!io->din[0]) return;
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    for (int64_t i = 0; i < n; i++) io->din[0][i] += io->dout[i] * io->saved[i];
}

static void dropout_keras(const ct_layer *l, ct_json *j)
{
    const dropout *d = (const dropout *)l;
    ct_json_knumf(j, "rate", d->rate);
    ct_json_knull(j, "noise_shape");
    if (d->has_seed) ct_json_kint(j, "seed", (int64_t)d->seed);
    else ct_json_knull(j, "seed");
}

const ct_layer_type ct_layer_dropout = {
    .name = "dropout", .keras_class = "Dropout", .keys = dropout_keys, .size = sizeof(dropout),
    .min_inputs = 1, .max_inputs = 1,
    .init = dropout_init, .infer = dropout_infer, .forward = dropout_forward, .backward = dropout_backward,    .keras_config = dropout_keras,
    .mask = ct_layer_mask_pass,
};
