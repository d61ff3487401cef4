/* ChannelPadding: zeros added before and after the channels (last axis),
 * the "option A" shortcut of the CIFAR ResNets (He et al. 2016), which
 * Keras users write as Lambda(lambda x: tf.pad(x, [[0,0],[0,0],[0,0],[a,b]])).
 * padding = "p" (p zeros each side) or "before, after". */
#include <stdlib.h>
#include <string.h>

#include "../layer.h"
#include "../keras_json.h"
#include "ops.h"

typedef struct chpad {
    ct_layer base;
    int64_t before, after;
} chpad;

static const ct_layer_key chpad_keys[] = {
    {"padding", CT_KEY_STRING, NULL, CT_KEY_REQUIRED, 0, 0, 0, NULL, "zeros each side \"p\", or \"before, after\""},
    {NULL},
};

static ct_status chpad_init(ct_layer *l, const ct_layer_config *c)
{
    chpad *p = (chpad *)l;
    const char *s;
    CT_TRY(ct_layer_arg_string(l, c, "padding", &s));
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s || a < 0) goto bad;
    while (*end == ' ') end++;
    if (*end == ',') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t || b < 0) goto bad;
        while (*end == ' ') end++;
    }
    if (*end) goto bad;
    p->before = a;
    p->after = b;
    return CT_OK;
bad:
    return CT_FAIL(CT_ERR_CONFIG, "channel_padding '%s': padding = '%s': expected 'p' or 'before, after' (integers >= 0)",
                   l->name, s);
}

static ct_status chpad_infer(ct_layer *l)
{
    chpad *p = (chpad *)l;
    if (l->in_shape[0].rank < 1) return CT_FAIL(CT_ERR_SHAPE, "channel_padding '%s': input has no channel axis", l->name);
    l->out_shape = l->in_shape[0];
    l->out_shape.dims[l->out_shape.rank - 1] += p->before + p->after;
    return CT_OK;
}

static void chpad_forward(ct_layer *l, const ct_layer_io *io)
{
    chpad *p = (chpad *)l;
    int64_t c = l->in_shape[0].dims[l->in_shape[0].rank - 1], co = c + p->before + p->after;
    int64_t rows = io->batch * ct_shape_numel(&l->in_shape[0]) / c;
#pragma omp parallel for schedule(static) if (rows * co > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *o = io->out + r * co;
        memset(o, 0, sizeof(float) * (size_t)p->before);
        memcpy(o + p->before, io->in[0] + r * c, sizeof(float) * (size_t)c);
        memset(o + p->before + c, 0, sizeof(float) * (size_t)p->after);
    }
}

static void chpad_backward(ct_layer *l, const ct_layer_io *io)
{
    chpad *p = (chpad *)l;
    if (!io->din[0]) return;
    int64_t c = l->in_shape[0].dims[l->in_shape[0].rank - 1], co = c + p->before + p->after;
    int64_t rows = io->batch * ct_shape_numel(&l->in_shape[0]) / c;
#pragma omp parallel for schedule(static) if (rows * co > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *g = io->dout + r * co + p->before;
        float *d = io->din[0] + r * c;
        for (int64_t k = 0; k < c; k++) d[k] += g[k];
    }
}

static void chpad_keras(const ct_layer *l, ct_json *j)
{
    const chpad *p = (const chpad *)l;
    ct_keras_pair(j, "padding", (int)p->before, (int)p->after);
}

const ct_layer_type ct_layer_channel_padding = {
    .name = "channel_padding", .keras_class = "ChannelPadding", .keys = chpad_keys, .size = sizeof(chpad),
    .min_inputs = 1, .max_inputs = 1,
    .init = chpad_init, .infer = chpad_infer, .forward = chpad_forward, .backward = chpad_backward,    .keras_config = chpad_keras,
};
