/* SpatialDropout1D: in training drop whole channels of a (T, C) sample
 * (one draw per sample and channel, scaled by 1 / (1 - rate)), Keras's
 * layer; identity in inference. Draws are keyed by (seed, step, layer,
 * global row) so any number of ranks drops the same channels. The mask
 * passes through. */
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "rng.h"

typedef struct sdrop1d {
    ct_layer base;
    float rate;
    uint64_t name_hash;
} sdrop1d;

static const ct_layer_key sdrop1d_keys[] = {
    {"rate", CT_KEY_FLOAT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL, "fraction of channels dropped"},
    {NULL},
};

static ct_status sdrop1d_init(ct_layer *l, const ct_layer_config *c)
{
    double r;
    CT_TRY(ct_layer_arg_float(l, c, "rate", &r));
    ((sdrop1d *)l)->rate = (float)r;
    uint64_t h = 1469598103934665603ull;
    for (const char *s = l->name; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    ((sdrop1d *)l)->name_hash = h;
    return CT_OK;
}

static ct_status sdrop1d_infer(ct_layer *l)
{
    if (l->in_shape[0].rank != 2)
        return CT_FAIL(CT_ERR_SHAPE, "spatial_dropout1d '%s': expects (steps, channels) samples, got rank %d", l->name,
                       l->in_shape[0].rank);
    l->out_shape = l->in_shape[0];
    l->saved_per_sample = l->in_shape[0].dims[1];
    return CT_OK;
}

static void sdrop1d_forward(ct_layer *l, const ct_layer_io *io)
{
    sdrop1d *d = (sdrop1d *)l;
    const int64_t T = l->in_shape[0].dims[0], C = l->in_shape[0].dims[1];
    float keep = 1 - d->rate;
    ct_rng g = ct_rng_make(io->seed, CT_RNG_DROPOUT, io->step ^ d->name_hash);
    for (int64_t i = 0; i < io->batch * C; i++)
        io->saved[i] = !io->training || d->rate == 0 ? 1.0f
                       : ct_rng_uniform(&g, (uint64_t)(io->row0 * C) + (uint64_t)i) < keep ? 1 / keep : 0.0f;
    for (int64_t b = 0; b < io->batch; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) io->out[(b * T + t) * C + c] = io->in[0][(b * T + t) * C + c] * io->saved[b * C + c];
}

static void sdrop1d_backward(ct_layer *l, const ct_layer_io *io)
{
    if (!io->din[0]) return;
    const int64_t T = l->in_shape[0].dims[0], C = l->in_shape[0].dims[1];
    for (int64_t b = 0; b < io->batch; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) io->din[0][(b * T + t) * C + c] += io->dout[(b * T + t) * C + c] * io->saved[b * C + c];
}

static void sdrop1d_keras(const ct_layer *l, ct_json *j) { ct_json_knumf(j, "rate", ((const sdrop1d *)l)->rate); }

const ct_layer_type ct_layer_spatial_dropout1d = {
    .name = "spatial_dropout1d", .keras_class = "SpatialDropout1D", .keys = sdrop1d_keys, .size = sizeof(sdrop1d),
    .min_inputs = 1, .max_inputs = 1, .init = sdrop1d_init, .infer = sdrop1d_infer, .forward = sdrop1d_forward,
    .backward = sdrop1d_backward, .keras_config = sdrop1d_keras, .mask = ct_layer_mask_pass,
};
