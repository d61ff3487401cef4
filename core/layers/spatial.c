/* ZeroPadding2D, UpSampling2D and SpatialDropout2D on (H, W, C) samples.
 *
 * ZeroPadding2D's `padding` is a string, as the schema shares the key with
 * conv's valid/same: "1" pads every side, "1, 2" pads (rows, cols)
 * symmetrically, "t, b, l, r" gives each side (Keras's ((t, b), (l, r))).
 * UpSampling2D's bilinear mode is tf.image.resize's (half-pixel centres),
 * which Keras 2.x's backend.resize_images calls. SpatialDropout2D drops
 * whole channels (noise shape (B, 1, 1, C)) with the counter-based RNG
 * keyed by (seed, step, layer name) and the global sample index, as
 * Dropout does; the scaled mask per (sample, channel) is kept in `saved`. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "image_ops.h"
#include "rng.h"

static ct_status need_image(const ct_layer *l)
{
    char buf[96];
    if (l->in_shape[0].rank != 3)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': expects (H, W, C) samples, got %s", l->type->name, l->name,
                       ct_shape_str(&l->in_shape[0], 0, buf, sizeof buf));
    return CT_OK;
}

/* ---- ZeroPadding2D -------------------------------------------------------- */

typedef struct zero_pad {
    ct_layer base;
    int top, bottom, left, right;
} zero_pad;

static const ct_layer_key zero_pad_keys[] = {
    {"padding", CT_KEY_STRING, "1", 0, 0, 0, 0, NULL, "\"p\", \"rows, cols\" or \"top, bottom, left, right\""},
    {NULL},
};

/* Up to `max` comma-separated integers >= 0; returns the count, -1 on a
 * malformed list. */
static int parse_ints(const char *s, long *v, int max)
{
    int n = 0;
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        if (!isdigit((unsigned char)*s) || n == max) return -1;
        char *end;
        v[n++] = strtol(s, &end, 10);
        if (v[n - 1] > 1000000) return -1;
        s = end;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) return n;
        if (*s++ != ',') return -1;
    }
}

static ct_status zero_pad_init(ct_layer *l, const ct_layer_config *c)
{
    zero_pad *z = (zero_pad *)l;
    long v[4] = {1, 1, 1, 1};
    const char *pad;
    CT_TRY(ct_layer_arg_string(l, c, "padding", &pad));
    int n = parse_ints(pad, v, 4);
    if (n == 1) v[1] = v[2] = v[3] = v[0];
    else if (n == 2) v[3] = v[2] = v[1], v[1] = v[0];
    else if (n != 4)
        return CT_FAIL(CT_ERR_CONFIG,
                       "zero_padding2d '%s': padding must be \"p\", \"rows, cols\" or \"top, bottom, left, right\" "
                       "with integers >= 0, got '%s'",
                       l->name, pad);
    z->top = (int)v[0], z->bottom = (int)v[1], z->left = (int)v[2], z->right = (int)v[3];
    return CT_OK;
}

static ct_status zero_pad_infer(ct_layer *l)
{
    zero_pad *z = (zero_pad *)l;
    CT_TRY(need_image(l));
    const int64_t *d = l->in_shape[0].dims;
    l->out_shape = ct_shape3(d[0] + z->top + z->bottom, d[1] + z->left + z->right, d[2]);
    return CT_OK;
}

static void zero_pad_forward(ct_layer *l, const ct_layer_io *io)
{
    zero_pad *z = (zero_pad *)l;
    const int64_t *d = l->in_shape[0].dims;
    ct_op_zero_pad2d_fwd(io->batch, d[0], d[1], d[2], z->top, z->bottom, z->left, z->right, io->in[0], io->out);
}

static void zero_pad_backward(ct_layer *l, const ct_layer_io *io)
{
    zero_pad *z = (zero_pad *)l;
    const int64_t *d = l->in_shape[0].dims;
    if (io->din[0])
        ct_op_zero_pad2d_bwd(io->batch, d[0], d[1], d[2], z->top, z->bottom, z->left, z->right, io->dout,
                             io->din[0]);
}

static void zero_pad_keras(const ct_layer *l, ct_json *j)
{
    const zero_pad *z = (const zero_pad *)l;
    ct_json_key(j, "padding");
    ct_json_arr(j);
    ct_json_arr(j);
    ct_json_int(j, z->top);
    ct_json_int(j, z->bottom);
    ct_json_arr_end(j);
    ct_json_arr(j);
    ct_json_int(j, z->left);
    ct_json_int(j, z->right);
    ct_json_arr_end(j);
    ct_json_arr_end(j);
    ct_json_kstr(j, "data_format", "channels_last");
}

const ct_layer_type ct_layer_zero_padding2d = {
    .name = "zero_padding2d", .keras_class = "ZeroPadding2D", .keys = zero_pad_keys, .size = sizeof(zero_pad),
    .min_inputs = 1, .max_inputs = 1,
    .init = zero_pad_init, .infer = zero_pad_infer, .forward = zero_pad_forward, .backward = zero_pad_backward,    .keras_config = zero_pad_keras,
};

/* ---- UpSampling2D --------------------------------------------------------- */

typedef struct upsample {
    ct_layer base;
    int fh, fw, bilinear;
} upsample;

static ct_status check_upsample_interp(const char *v)
{
    if (strcmp(v, "nearest") == 0 || strcmp(v, "bilinear") == 0) return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "interpolation must be nearest or bilinear, got '%s'", v);
}

static const ct_layer_key upsample_keys[] = {
    {"size", CT_KEY_INTS, "2", CT_KEY_RANGE, 1, INFINITY, 2, NULL, "upsampling factor: one or two values"},
    {"interpolation", CT_KEY_STRING, "nearest", 0, 0, 0, 0, check_upsample_interp, "nearest | bilinear"},
    {NULL},
};

static ct_status upsample_init(ct_layer *l, const ct_layer_config *c)
{
    upsample *u = (upsample *)l;
    CT_TRY(ct_layer_arg_pair(l, c, "size", 2, 2, &u->fh, &u->fw));
    const char *m;
    CT_TRY(ct_layer_arg_string(l, c, "interpolation", &m));
    if (strcmp(m, "nearest") == 0) u->bilinear = 0;
    else if (strcmp(m, "bilinear") == 0) u->bilinear = 1;
    else
        return CT_FAIL(CT_ERR_CONFIG, "upsampling2d '%s': interpolation must be nearest or bilinear, got '%s'",
                       l->name, m);
    return CT_OK;
}

static ct_status upsample_infer(ct_layer *l)
{
    upsample *u = (upsample *)l;
    CT_TRY(need_image(l));
    const int64_t *d = l->in_shape[0].dims;
    l->out_shape = ct_shape3(d[0] * u->fh, d[1] * u->fw, d[2]);
    return CT_OK;
}

static void upsample_forward(ct_layer *l, const ct_layer_io *io)
{
    upsample *u = (upsample *)l;
    const int64_t *d = l->in_shape[0].dims;
    if (u->bilinear) ct_op_upsample2d_bilinear_fwd(io->batch, d[0], d[1], d[2], u->fh, u->fw, io->in[0], io->out);
    else ct_op_upsample2d_nearest_fwd(io->batch, d[0], d[1], d[2], u->fh, u->fw, io->in[0], io->out);
}

static void upsample_backward(ct_layer *l, const ct_layer_io *io)
{
    upsample *u = (upsample *)l;
    const int64_t *d = l->in_shape[0].dims;
    if (!io->din[0]) return;
    if (u->bilinear)
        ct_op_upsample2d_bilinear_bwd(io->batch, d[0], d[1], d[2], u->fh, u->fw, io->dout, io->din[0]);
    else ct_op_upsample2d_nearest_bwd(io->batch, d[0], d[1], d[2], u->fh, u->fw, io->dout, io->din[0]);
}

static void upsample_keras(const ct_layer *l, ct_json *j)
{
    const upsample *u = (const upsample *)l;
    ct_keras_pair(j, "size", u->fh, u->fw);
    ct_json_kstr(j, "data_format", "channels_last");
    ct_json_kstr(j, "interpolation", u->bilinear ? "bilinear" : "nearest");
}

const ct_layer_type ct_layer_upsampling2d = {
    .name = "upsampling2d", .keras_class = "UpSampling2D", .keys = upsample_keys, .size = sizeof(upsample),
    .min_inputs = 1, .max_inputs = 1,
    .init = upsample_init, .infer = upsample_infer, .forward = upsample_forward, .backward = upsample_backward,    .keras_config = upsample_keras,
};

/* ---- SpatialDropout2D ----------------------------------------------------- */

typedef struct spatial_dropout {
    ct_layer base;
    float rate;
    uint64_t seed;
    int has_seed;
    uint64_t name_hash;
} spatial_dropout;

static const ct_layer_key spatial_dropout_keys[] = {
    {"rate", CT_KEY_FLOAT, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE | CT_KEY_HI_OPEN, 0, 1, 0, NULL,
     "fraction of the channels dropped, in [0, 1)"},
    {"seed", CT_KEY_INT, NULL, 0, 0, 0, 0, NULL, "mask seed (default: the [train] seed)"},
    {NULL},
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ct_status spatial_dropout_init(ct_layer *l, const ct_layer_config *c)
{
    spatial_dropout *d = (spatial_dropout *)l;
    CT_TRY(ct_layer_arg_dropout(l, c, &d->rate, &d->has_seed, &d->seed));
    d->name_hash = fnv1a(l->name);
    return CT_OK;
}

static ct_status spatial_dropout_infer(ct_layer *l)
{
    CT_TRY(need_image(l));
    l->out_shape = l->in_shape[0];
    l->saved_per_sample = l->in_shape[0].dims[2]; /* the scaled mask per channel */
    return CT_OK;
}

/* y (B, hw, c) = x * mask (B, c) broadcast over the cells; y may be dx to
 * accumulate (acc = 1). */
static void channel_mask(const float *x, const float *mask, float *y, int64_t batch, int64_t hw, int64_t c,
                         int acc)
{
#pragma omp parallel for collapse(2) schedule(static) if (batch * hw * c > 65536)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < hw; i++) {
            const float *restrict m = mask + b * c, *restrict xr = x + (b * hw + i) * c;
            float *restrict yr = y + (b * hw + i) * c;
            if (acc) {
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) yr[ch] += xr[ch] * m[ch];
            } else {
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) yr[ch] = xr[ch] * m[ch];
            }
        }
}

static void spatial_dropout_forward(ct_layer *l, const ct_layer_io *io)
{
    spatial_dropout *d = (spatial_dropout *)l;
    const int64_t *dims = l->in_shape[0].dims, c = dims[2], hw = dims[0] * dims[1];
    if (!io->training || d->rate == 0) {
        memcpy(io->out, io->in[0], sizeof(float) * (size_t)(io->batch * hw * c));
        if (io->saved)
            for (int64_t i = 0; i < io->batch * c; i++) io->saved[i] = 1.0f;
        return;
    }
    ct_rng r = ct_rng_make(d->has_seed ? d->seed : io->seed, CT_RNG_DROPOUT, io->step ^ d->name_hash);
    float keep = 1.0f - d->rate, scale = 1.0f / keep;
    /* Keyed by the global (sample, channel) index: the same mask on any number of ranks. */
    uint64_t base = (uint64_t)io->row0 * (uint64_t)c;
    for (int64_t i = 0; i < io->batch * c; i++)
        io->saved[i] = ct_rng_uniform(&r, base + (uint64_t)i) < keep ? scale : 0.0f;
    channel_mask(io->in[0], io->saved, io->out, io->batch, hw, c, 0);
}

static void spatial_dropout_backward(ct_layer *l, const ct_layer_io *io)
{
    const int64_t *dims = l->in_shape[0].dims;
    if (io->din[0]) channel_mask(io->dout, io->saved, io->din[0], io->batch, dims[0] * dims[1], dims[2], 1);
}

static void spatial_dropout_keras(const ct_layer *l, ct_json *j)
{
    const spatial_dropout *d = (const spatial_dropout *)l;
    ct_json_knumf(j, "rate", d->rate);
    ct_json_knull(j, "noise_shape");
    if (d->has_seed) ct_json_kint(j, "seed", (int64_t)d->seed);
    else ct_json_knull(j, "seed");
    ct_json_kstr(j, "data_format", "channels_last");
}

const ct_layer_type ct_layer_spatial_dropout2d = {
    .name = "spatial_dropout2d", .keras_class = "SpatialDropout2D", .keys = spatial_dropout_keys,
    .size = sizeof(spatial_dropout), .min_inputs = 1, .max_inputs = 1,
    .init = spatial_dropout_init, .infer = spatial_dropout_infer, .forward = spatial_dropout_forward,
    .backward = spatial_dropout_backward,    .keras_config = spatial_dropout_keras,
};
