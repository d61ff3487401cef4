/* The layer vtable, the registry of layer types, and each type's table of
 * configuration keys.
 *
 * A layer type is one file in core/layers/ holding a ct_layer_type and its
 * functions; ct_register_builtins() lists them. A user's layer (a plugin)
 * registers the same way (ct_layer_register) before a config is read.
 *
 * Lifecycle, driven by the graph:
 *   init(cfg)           read the layer's keys (ct_layer_arg_*); no shapes yet
 *   infer(in shapes)    output shape, parameters (ct_layer_param), and the
 *                       per-sample sizes of saved state and scratch
 *   forward / backward  on planned buffers; never allocate
 * Activations are applied by the graph (the layer's `act`), so forward
 * writes the pre-activation z and backward receives dL/dz. Gradients are
 * +dL/dx and backward ACCUMULATES into input and parameter gradients (a
 * shared layer is called at several nodes: its parameter gradients are the
 * sum over its calls).
 *
 * Per-layer configuration. Each type declares its keys in `keys`, a table
 * of ct_layer_key ({name, kind, default, range, check, doc}, ended by a
 * {NULL} entry). The .conf reader accepts in a layer section exactly the
 * keys of its type's table plus the base keys every layer has (type,
 * inputs, apply, trainable), checks each value against its entry (kind,
 * range, list length, check function) and names file:line otherwise.
 * Storage: a key that is one of the historical LayerConfig fields of
 * core/ctrain.proto (units, filters, rate, ...) is stored in that field,
 * so old configs, model files and checkpoints read the same; every other
 * key is stored as text in LayerConfig.extra (key, value, line). Both
 * travel in the packed config to every rank and into checkpoints. A layer
 * reads its keys only through ct_layer_arg_* (below), which return the
 * value set in the file or the table's default, so the table is the one
 * place a key's default lives. A table key that names a LayerConfig
 * field must have that field's kind (ct_layer_register checks it).
 *
 * How to add a layer: write core/layers/NAME.c with a struct whose first
 * member is ct_layer, a key table, init (ct_layer_arg_* into the struct),
 * infer, forward, backward, and `const ct_layer_type ct_layer_NAME`; add
 * it to ct_register_builtins() in core/layer.c (a plugin calls
 * ct_layer_register instead). No other file changes: core/ctrain.proto,
 * core/config.c and the other layers stay as they are. Add a gradient
 * check to tests/test_layers.c (tests/layer_harness.h). */
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
    /* Keras masks of sequence tensors: (batch, T) floats, 1 for a real
     * step, 0 for padding; NULL when the input has none. */
    const float *in_mask[CT_LAYER_MAX_INPUTS];
    float *out_mask;                       /* a CT_MASK_MAKE layer writes its output's mask here */
} ct_layer_io;

/* What a layer does with masks (ct_layer_type.mask; NULL means
 * CT_MASK_REFUSE). Keras's rules: a layer that cannot take a mask and is
 * given one fails when the model is built, naming both layers. */
enum {
    CT_MASK_REFUSE = 0,  /* takes no mask (Conv1D, Flatten, ...) */
    CT_MASK_PASS,        /* uses or ignores it; its output has input 0's mask (Dense, Dropout, LSTM sequences) */
    CT_MASK_CONSUME,     /* may use it; its output has no mask (LSTM last state, GlobalAveragePooling1D) */
    CT_MASK_MAKE,        /* its output gets a new (batch, out_shape[0]) mask it writes (Embedding mask_zero, Masking) */
};
/* For ct_layer_type.mask: layers that always pass input 0's mask on. */
int ct_layer_mask_pass(const ct_layer *l);

/* The kind of a key's value as the .conf writes it; lists are
 * comma-separated. */
typedef enum ct_key_kind {
    CT_KEY_INT,      /* 64-bit integer */
    CT_KEY_FLOAT,    /* real number */
    CT_KEY_BOOL,     /* true/false, yes/no, 1/0 */
    CT_KEY_STRING,   /* any text (a name, "1, 2") */
    CT_KEY_INTS,     /* list of integers */
    CT_KEY_FLOATS,   /* list of reals */
    CT_KEY_STRINGS,  /* list of names */
} ct_key_kind;

enum {
    CT_KEY_REQUIRED = 1,  /* init fails (naming the layer and key) when it is not set */
    CT_KEY_LO_OPEN = 2,   /* the range excludes lo */
    CT_KEY_HI_OPEN = 4,   /* the range excludes hi */
    CT_KEY_RANGE = 8,     /* numbers (every list element) must lie in [lo, hi] */
};

/* One entry of a layer type's key table. */
typedef struct ct_layer_key {
    const char *name;
    ct_key_kind kind;
    const char *def;          /* default as the .conf would write it; NULL: none */
    int flags;                /* CT_KEY_* */
    double lo, hi;            /* with CT_KEY_RANGE */
    int max_n;                /* lists: at most this many elements (0: any) */
    ct_status (*check)(const char *value);  /* strings (each list element): NULL or a name check */
    const char *doc;          /* one line for `ctrain layers` and messages */
} ct_layer_key;

/* Name checks for key tables; messages list what is allowed. */
ct_status ct_key_check_activation(const char *v);
ct_status ct_key_check_initializer(const char *v);
ct_status ct_key_check_regularizer(const char *v);
ct_status ct_key_check_padding(const char *v);     /* valid | same */
ct_status ct_key_check_dtype(const char *v);       /* float32 | int32 */

typedef struct ct_layer_type {
    const char *name;         /* config type: "dense" */
    const char *keras_class;  /* summary and HDF5: "Dense" */
    const ct_layer_key *keys; /* its keys beyond the base keys; ended by {NULL}; NULL: none */
    size_t size;              /* sizeof the concrete struct (header first) */
    int min_inputs, max_inputs;
    int can_own_act;          /* forward/backward can apply `act` themselves (see own_act) */
    int int_inputs;           /* accepts int32 model inputs (token ids: Embedding); else float only */
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
    /* Mask behaviour, CT_MASK_* (NULL: CT_MASK_REFUSE). */
    int (*mask)(const ct_layer *l);
} ct_layer_type;

struct ct_layer {
    const ct_layer_type *type;
    char name[CT_NAME_MAX];
    int line;                 /* config line of the section, 0 when unknown */
    int trainable;            /* 0: its parameters are frozen (no update, no allreduce) */
    int n_calls;              /* nodes that apply it (> 1: a shared layer) */
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

/* Reading keys in init(). Each returns the value set in the config or the
 * table's default; a key missing from the type's table is a programming
 * error (CT_ERR_RUNTIME naming it). A CT_KEY_REQUIRED key that is not set
 * fails with CT_ERR_CONFIG naming the layer and the key. Strings point
 * into the config or the table: copy what must outlive init. */
ct_status ct_layer_arg_int(const ct_layer *l, const ct_layer_config *c, const char *key, int64_t *out);
ct_status ct_layer_arg_float(const ct_layer *l, const ct_layer_config *c, const char *key, double *out);
ct_status ct_layer_arg_bool(const ct_layer *l, const ct_layer_config *c, const char *key, int *out);
/* *out is NULL when the key is not set and has no default. */
ct_status ct_layer_arg_string(const ct_layer *l, const ct_layer_config *c, const char *key, const char **out);
/* Lists: up to `cap` values in out, their number in *n (0 when unset
 * without default). More than `cap` values is a CT_ERR_CONFIG. */
ct_status ct_layer_arg_ints(const ct_layer *l, const ct_layer_config *c, const char *key, int64_t *out, int cap,
                            int *n);
ct_status ct_layer_arg_floats(const ct_layer *l, const ct_layer_config *c, const char *key, double *out, int cap,
                              int *n);
/* One or two values (one means both axes; none gives the defaults), as
 * kernel_size, strides, pool_size. */
ct_status ct_layer_arg_pair(const ct_layer *l, const ct_layer_config *c, const char *key, int def_h, int def_w,
                            int *h, int *w);
/* Dropout's keys (Dropout, SpatialDropout2D): rate, and seed when set. */
ct_status ct_layer_arg_dropout(const ct_layer *l, const ct_layer_config *c, float *rate, int *has_seed,
                               uint64_t *seed);
/* Whether the config sets the key (rather than the default applying). */
int ct_layer_arg_is_set(const ct_layer_config *c, const char *key);

/* The table entry of `key` in type t, or NULL. */
const ct_layer_key *ct_layer_type_key(const ct_layer_type *t, const char *key);
/* Check one value (as text) against its table entry; the message names the
 * expectation (the caller adds file:line, layer and key). */
ct_status ct_layer_key_check(const ct_layer_key *k, const char *value);
/* (The value of a key as text, wherever it is stored:
 * ct_config_layer_text in config.h.) */

/* Registry. Registering a name twice replaces the earlier entry. A key
 * table whose entry names a LayerConfig field of another kind, or a base
 * key (type, inputs, apply, trainable, name, line, extra), is refused. */
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
/* Read an initializer / regularizer / activation key with ct_layer_arg_string and parse it. */
ct_status ct_layer_arg_init(const ct_layer *l, const ct_layer_config *c, const char *key, ct_initializer *out);
ct_status ct_layer_arg_reg(const ct_layer *l, const ct_layer_config *c, const char *key, ct_regularizer *out);
ct_status ct_layer_arg_activation(ct_layer *l, const ct_layer_config *c, const char *key);
/* Table entries the kernel/bias layers share, for their key tables. */
#define CT_KEY_ACTIVATION {"activation", CT_KEY_STRING, "linear", 0, 0, 0, 0, ct_key_check_activation, "activation applied to the output"}
#define CT_KEY_USE_BIAS {"use_bias", CT_KEY_BOOL, "true", 0, 0, 0, 0, NULL, "add a bias vector"}
#define CT_KEY_INIT(name, def) {name, CT_KEY_STRING, def, 0, 0, 0, 0, ct_key_check_initializer, "initializer (Keras name, e.g. he_normal)"}
#define CT_KEY_REG(name) {name, CT_KEY_STRING, NULL, 0, 0, 0, 0, ct_key_check_regularizer, "regularizer: l1(x), l2(x) or l1_l2(x, y)"}
#define CT_KEYS_KERNEL_BIAS                                                                       \
    CT_KEY_ACTIVATION, CT_KEY_USE_BIAS, CT_KEY_INIT("kernel_initializer", "glorot_uniform"),       \
        CT_KEY_INIT("bias_initializer", "zeros"), CT_KEY_REG("kernel_regularizer"), CT_KEY_REG("bias_regularizer")
ct_status ct_layer_parse_init(const ct_layer *l, const char *key, const char *spec, ct_initializer *out);
ct_status ct_layer_parse_reg(const ct_layer *l, const char *key, const char *spec, ct_regularizer *out);

#endif
