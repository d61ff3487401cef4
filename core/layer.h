/* The layer vtable and the registry of layer types.
 *
 * A layer type is one file in core/layers/ holding a ct_layer_type and its
 * functions; ct_register_builtins() lists them. A user's layer registers
 * the same way (ct_layer_register) before a config is read.
 *
 * Lifecycle, driven by the graph:
 *   init(cfg)           read the LayerConfig keys; no shapes known yet
 *   infer(in shapes)    output shape, parameters (ct_layer_param), and the
 *                       per-sample sizes of saved state and scratch
 *   forward / backward  on planned buffers; never allocate
 * Activations are applied by the graph (the layer's `act`), so forward
 * writes the pre-activation z and backward receives dL/dz. Gradients are
 * +dL/dx and backward ACCUMULATES into input and parameter gradients. */
#ifndef CT_LAYER_H
#define CT_LAYER_H

#include <stdint.h>

#include "activation.h"
#include "config.h"
#include "init.h"
#include "regularizer.h"
#include "status.h"
#include "tensor.h"

#define CT_LAYER_MAX_INPUTS 16
#define CT_LAYER_MAX_PARAMS 8
#define CT_NAME_MAX 64

typedef struct ct_layer ct_layer;
typedef struct ct_json ct_json;

/* A parameter a layer asks for in infer(); the graph places it in the
 * store and fills `value`/`grad` before the first forward. */
typedef struct ct_layer_param {
    char name[CT_NAME_MAX];   /* "kernel", "bias" */
    ct_shape shape;
    ct_initializer init;
    ct_regularizer reg;
    int trainable;
    int64_t offset;           /* into the store's slabs, set by the graph */
    float *value, *grad;      /* bound by the graph */
} ct_layer_param;

/* Everything forward/backward may touch for one call. */
typedef struct ct_layer_io {
    int64_t batch;
    int n_in;
    const float *in[CT_LAYER_MAX_INPUTS];  /* batch x numel(in_shape[i]) */
    float *din[CT_LAYER_MAX_INPUTS];       /* accumulate; NULL when not needed */
    float *out;                            /* batch x numel(out_shape): z */
    const float *dout;                     /* dL/dz, backward only */
    float *saved;                          /* batch x saved_per_sample, kept fwd->bwd */
    float *scratch;                        /* batch x scratch_per_sample, free per call */
    int training;
    int64_t row0;                          /* global index of row 0 of this batch (data-parallel shards) */
    uint64_t step;                         /* global step (dropout streams) */
    uint64_t seed;
} ct_layer_io;

typedef struct ct_layer_type {
    const char *name;         /* config type: "dense" */
    const char *keras_class;  /* summary and HDF5: "Dense" */
    const char *const *keys;  /* accepted LayerConfig keys beyond name/type/inputs/line; NULL-ended */
    size_t size;              /* sizeof the concrete struct (header first) */
    int min_inputs, max_inputs;
    int can_own_act;          /* forward/backward can apply `act` themselves (see own_act) */
    ct_status (*init)(ct_layer *l, const ct_layer_config *cfg);
    ct_status (*infer)(ct_layer *l);   /* reads in_shape[], sets out_shape, params, sizes */
    void (*forward)(ct_layer *l, const ct_layer_io *io);
    void (*backward)(ct_layer *l, const ct_layer_io *io);
    void (*destroy)(ct_layer *l);      /* extra resources; may be NULL */
    /* Inference (moving statistics) as a per-channel affine over the last
     * axis, y = x * scale[c] + shift[c]: BatchNormalization. NULL when the
     * layer is not one. */
    void (*inference_affine)(const ct_layer *l, float *scale, float *shift);
    /* Inference forward with the next layer's inference_affine folded into
     * the weights (conv + BN fused): writes that layer's output. NULL when
     * the layer cannot fold. */
    void (*forward_folded)(ct_layer *l, const ct_layer_io *io, const ct_layer *affine);
    /* Keras JSON (model_config in .h5 files, export-json, TF.js): write the
     * layer's own config keys, after name, trainable and dtype, which the
     * writer puts first, as Keras's get_config() spells them: every key,
     * defaults included (tfjs fills missing keys with its own defaults).
     * Called on a built layer (shapes known); core/keras_json.h has the
     * shared pieces (ct_keras_kernel_bias, ct_keras_initializer, ...).
     * NULL: the Keras class has no keys of its own. */
    void (*keras_config)(const ct_layer *l, ct_json *j);
} ct_layer_type;

struct ct_layer {
    const ct_layer_type *type;
    char name[CT_NAME_MAX];
    int line;                 /* config line of the section, 0 when unknown */
    ct_activation act;        /* applied by the graph after forward... */
    int own_act;              /* ...unless set: the layer applies it itself (set by the graph) */
    int n_in;
    ct_shape in_shape[CT_LAYER_MAX_INPUTS];
    ct_shape out_shape;
    int n_params;
    ct_layer_param params[CT_LAYER_MAX_PARAMS];
    int64_t saved_per_sample;
    int64_t scratch_per_sample;
};

/* Declare a parameter from infer(). Returns its index in l->params. */
int ct_layer_add_param(ct_layer *l, const char *name, ct_shape shape, const ct_initializer *init,
                       const ct_regularizer *reg, int trainable);

/* Registry. Registering a name twice replaces the earlier entry. */
ct_status ct_layer_register(const ct_layer_type *t);
void ct_register_builtins(void);
const ct_layer_type *ct_layer_type_find(const char *name);
int ct_layer_type_count(void);
const ct_layer_type *ct_layer_type_at(int i);

/* The kernel/bias settings that Dense and the convolutions share. */
typedef struct ct_kernel_bias {
    ct_initializer kinit, binit;
    ct_regularizer kreg, breg;
} ct_kernel_bias;

/* Helpers for layer init(): parse the common keys with messages that name
 * the layer. ct_layer_parse_kernel_bias reads activation,
 * kernel_/bias_initializer and kernel_/bias_regularizer. */
ct_status ct_layer_parse_kernel_bias(ct_layer *l, const ct_layer_config *c, ct_kernel_bias *out);
ct_status ct_layer_parse_activation(const ct_layer *l, const char *name, ct_activation *out);
ct_status ct_layer_parse_init(const ct_layer *l, const char *key, const char *spec, ct_initializer *out);
ct_status ct_layer_parse_reg(const ct_layer *l, const char *key, const char *spec, ct_regularizer *out);

#endif
