/* Masking: steps whose features all equal mask_value are masked (Keras's
 * layer): the output is the input with those steps zeroed, and carries a
 * (T) mask for the layers after it. Samples (T, F). */
#include "../layer.h"
#include "../keras_json.h"

typedef struct masking {
    ct_layer base;
    double value;
} masking;

static const ct_layer_key masking_keys[] = {
    {"mask_value", CT_KEY_FLOAT, "0", 0, 0, 0, 0, NULL, "a step whose features all equal this is masked"},
    {NULL},
};

static ct_status masking_init(ct_layer *l, const ct_layer_config *c)
{
    return ct_layer_arg_float(l, c, "mask_value", &((masking *)l)->value);
}

static ct_status masking_infer(ct_layer *l)
{
    if (l->in_shape[0].rank != 2)
        return CT_FAIL(CT_ERR_SHAPE, "masking '%s': expects (steps, features) samples, got rank %d", l->name,
                       l->in_shape[0].rank);
    l->out_shape = l->in_shape[0];
    l->saved_per_sample = l->in_shape[0].dims[0]; /* the mask, for backward */
    return CT_OK;
}

static void masking_forward(ct_layer *l, const ct_layer_io *io)
{
    const float v = (float)((masking *)l)->value;
    const int64_t T = l->in_shape[0].dims[0], F = l->in_shape[0].dims[1];
    for (int64_t r = 0; r < io->batch * T; r++) {
        const float *x = io->in[0] + r * F;
        float keep = 0;
        for (int64_t f = 0; f < F; f++)
            if (x[f] != v) keep = 1;
        io->saved[r] = keep;
        if (io->out_mask) io->out_mask[r] = keep;
        for (int64_t f = 0; f < F; f++) io->out[r * F + f] = x[f] * keep;
    }
}

static void masking_backward(ct_layer *l, const ct_layer_io *io)
{
    if (!io->din[0]) return;
    const int64_t T = l->in_shape[0].dims[0], F = l->in_shape[0].dims[1];
    for (int64_t r = 0; r < io->batch * T; r++)
        for (int64_t f = 0; f < F; f++) io->din[0][r * F + f] += io->dout[r * F + f] * io->saved[r];
}

static void masking_keras(const ct_layer *l, ct_json *j) { ct_json_knum(j, "mask_value", ((const masking *)l)->value); }
static int makes_mask(const ct_layer *l) { return CT_MASK_MAKE; }

const ct_layer_type ct_layer_masking = {
    .name = "masking", .keras_class = "Masking", .keys = masking_keys, .size = sizeof(masking),
    .min_inputs = 1, .max_inputs = 1, .init = masking_init, .infer = masking_infer, .forward = masking_forward,
    .backward = masking_backward, .keras_config = masking_keras, .mask = makes_mask,
};
