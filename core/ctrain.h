/* ctrain: the public C API (the one header a program or a plugin includes).
 *
 *     #include <ctrain.h>      cc prog.c $(pkg-config --cflags --libs ctrain)
 *                              or, in CMake: find_package(ctrain) and
 *                              target_link_libraries(prog ctrain::ctrain)
 *
 * What is here:
 *   - versions (CT_VERSION_*, CT_ABI_VERSION) and statuses (ct_status, the
 *     thread-local error record);
 *   - eager tensors (ct_eager): float32 arrays that operations create at
 *     once, with scopes that free what a block created;
 *   - tapes (ct_tape): reverse-mode automatic differentiation of anything
 *     computed with the eager operations.
 *
 * Conventions that hold for every declaration below:
 *   - Errors. A function returning ct_status returns CT_OK or an error code
 *     and leaves a sentence naming the object and the expectation in the
 *     calling thread's error record (ct_error_message). Functions returning
 *     a pointer return NULL on error and set the record the same way. An
 *     eager operation given a NULL operand returns NULL WITHOUT touching the
 *     record, so a chain of operations can be checked once at its end and
 *     the message still names the first failure. The library never exits,
 *     aborts or prints on its own.
 *   - Ownership. `create` gives the caller an object to `destroy`;
 *     destroy(NULL) does nothing. Tensors are reference counted (see
 *     ct_eager_free); pointers returned by accessors are borrowed and live
 *     as long as their object.
 *   - Shapes. Row-major (C order), at most CT_EAGER_MAX_DIMS axes; images
 *     are NHWC (batch, height, width, channels) and convolution kernels
 *     HWIO (kh, kw, in_channels, out_channels), as in Keras.
 *   - Threads. Error records, scopes and the stack of recording tapes are
 *     per thread. A tensor or a tape may be used by one thread at a time;
 *     different threads may use different tensors and tapes freely. The
 *     operations themselves run OpenMP-parallel inside.
 *   - Gradients are +dL/dx. */
#ifndef CTRAIN_H
#define CTRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------
 * CT_VERSION_* follow the project version. CT_ABI_VERSION changes whenever
 * a declaration here changes incompatibly (a struct layout, a signature, a
 * vtable): plugins record the value they were compiled with and the loader
 * refuses a plugin whose value differs from the library's. */
#define CT_VERSION_MAJOR 0
#define CT_VERSION_MINOR 1
#define CT_VERSION_PATCH 0
#define CT_VERSION_STRING "0.1.0"
#define CT_ABI_VERSION 1

/* The version and ABI version of the library actually linked (which may
 * differ from the header's macros when an old program meets a new .so). */
const char *ct_version_string(void);
int ct_abi_version(void);

/* ---- statuses and the error record -------------------------------------- */
typedef enum ct_status {
    CT_OK = 0,
    CT_ERR_USAGE,      /* bad arguments from the caller or the command line */
    CT_ERR_CONFIG,     /* malformed or inconsistent .conf, or a plugin that cannot be used */
    CT_ERR_DATA,       /* a data file that is truncated, foreign or inconsistent */
    CT_ERR_SHAPE,      /* shapes that do not fit together */
    CT_ERR_CHECKPOINT, /* a checkpoint that cannot be read or does not match */
    CT_ERR_IO,         /* the operating system refused (open, write, rename) */
    CT_ERR_NOMEM,      /* allocation failed */
    CT_ERR_RUNTIME,    /* a failure while running (NaN guard, internal) */
    CT_ERR_COMM        /* a peer rank failed or a collective timed out */
} ct_status;

/* The calling thread's last error: the sentence ("" when none), its status
 * (CT_OK when none), and clearing it. The string is owned by the library
 * and valid until the thread's next failing call. */
const char *ct_error_message(void);
ct_status ct_error_status(void);
void ct_error_clear(void);
/* "CT_ERR_SHAPE" and so on; never NULL. */
const char *ct_status_name(ct_status s);
/* The exit code the ctrain program uses for a status: 0 ok, 2 bad input
 * or usage (config, data, checkpoint, plugin), 1 runtime failure. */
int ct_status_exit_code(ct_status s);

/* ---- eager tensors ----------------------------------------------------------
 * A ct_eager is a float32 array with a shape (rank 0 is a scalar). Each
 * creating call returns a tensor holding one reference:
 *   - inside a scope (ct_scope_begin) that reference belongs to the scope,
 *     and ct_scope_end releases it: code in a loop body needs no frees;
 *   - outside any scope it belongs to the caller, who releases it with
 *     ct_eager_free.
 * Tapes hold their own references to what they recorded, so a tensor lives
 * on as long as a tape needs it. A tensor's memory is freed when its last
 * reference goes. */
#define CT_EAGER_MAX_DIMS 8

typedef struct ct_eager ct_eager;

/* New tensor of shape dims[0..rank) holding a copy of `data` (numel
 * floats; NULL gives zeros). Errors: rank outside [0, CT_EAGER_MAX_DIMS],
 * a negative dimension (CT_ERR_SHAPE), no memory. */
ct_eager *ct_eager_from_data(int rank, const int64_t *dims, const float *data);
/* A tensor over the caller's memory, without a copy: `data` must hold
 * numel floats and outlive the tensor (and any tape recording it).
 * Writes through ct_eager_data reach the caller's array. */
ct_eager *ct_eager_wrap(int rank, const int64_t *dims, float *data);
ct_eager *ct_eager_zeros(int rank, const int64_t *dims);
ct_eager *ct_eager_full(int rank, const int64_t *dims, float value);
ct_eager *ct_eager_scalar(float value);
/* Draws from ctrain's counter-based generator: the same (seed, stream)
 * gives the same numbers on every machine and thread count. */
ct_eager *ct_eager_random_normal(int rank, const int64_t *dims, float mean, float stddev, uint64_t seed,
                                 uint64_t stream);
ct_eager *ct_eager_random_uniform(int rank, const int64_t *dims, float lo, float hi, uint64_t seed,
                                  uint64_t stream);
/* A new tensor with a copy of t's values (not recorded on tapes). */
ct_eager *ct_eager_clone(const ct_eager *t);

/* Release one reference (the caller's, outside scopes; see above). Freeing
 * a tensor a scope owns is an error the scope cannot detect: don't. */
void ct_eager_free(ct_eager *t);
/* Take one more reference (released by ct_eager_free). Returns t. */
ct_eager *ct_eager_retain(ct_eager *t);

/* Shape and values. ct_eager_data is the tensor's own array (row-major,
 * numel floats), writable: changing values a live tape recorded changes
 * the gradients it will compute. ct_eager_item reads element `i`. */
int ct_eager_rank(const ct_eager *t);
int64_t ct_eager_dim(const ct_eager *t, int axis);  /* negative axes count from the end; 0 when out of range */
int64_t ct_eager_numel(const ct_eager *t);
float *ct_eager_data(ct_eager *t);
float ct_eager_item(const ct_eager *t, int64_t i);
/* Copy the values into out (numel floats). */
ct_status ct_eager_copy_to(const ct_eager *t, float *out, int64_t n);
/* In place, never recorded: y += alpha * x (same shapes). The update of
 * a training step: ct_eager_axpy(w, -lr, dw). */
ct_status ct_eager_axpy(ct_eager *y, float alpha, const ct_eager *x);
/* In place, never recorded: dst = src (same numel). */
ct_status ct_eager_assign(ct_eager *dst, const ct_eager *src);

/* Print "tensor(shape=(2, 3), [[1, 2, 3], [4, 5, 6]])" to f; more than
 * 1000 elements are summarised with "..." (the first and last three per
 * axis), as numpy does. */
ct_status ct_eager_print(const ct_eager *t, FILE *f);

/* Scopes: every tensor created between ct_scope_begin and the matching
 * ct_scope_end (on this thread) is released at the end, unless it was
 * handed out with ct_scope_keep, which moves it to the enclosing scope (or
 * to the caller, who then frees it, when there is none). Scopes nest up
 * to 64 deep. Errors: too deep, no memory; ct_scope_end without a scope
 * does nothing. */
ct_status ct_scope_begin(void);
void ct_scope_end(void);
ct_eager *ct_scope_keep(ct_eager *t);

/* Operations. Each returns a new tensor (see the ownership rule above) or
 * NULL with the error record set (shapes that do not fit: CT_ERR_SHAPE,
 * bad arguments: CT_ERR_USAGE, memory: CT_ERR_NOMEM); NULL operands give
 * NULL silently. While a tape records on this thread, each call is
 * recorded on it. Axes may be negative (counted from the end).
 *
 * Elementwise with numpy broadcasting (shapes aligned at the last axis; a
 * dimension of 1 stretches): */
ct_eager *ct_eager_add(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_sub(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_mul(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_div(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_maximum(ct_eager *a, ct_eager *b); /* gradient to a where a >= b, else to b */
ct_eager *ct_eager_minimum(ct_eager *a, ct_eager *b); /* gradient to a where a <= b, else to b */
/* Comparisons give 1.0 where true and 0.0 elsewhere; no gradient flows
 * through them. */
ct_eager *ct_eager_equal(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_not_equal(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_less(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_less_equal(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_greater(ct_eager *a, ct_eager *b);
ct_eager *ct_eager_greater_equal(ct_eager *a, ct_eager *b);
/* Elementwise math of one tensor. */
ct_eager *ct_eager_neg(ct_eager *x);
ct_eager *ct_eager_exp(ct_eager *x);
ct_eager *ct_eager_log(ct_eager *x);
ct_eager *ct_eager_sqrt(ct_eager *x);
ct_eager *ct_eager_square(ct_eager *x);
ct_eager *ct_eager_abs(ct_eager *x);
ct_eager *ct_eager_tanh(ct_eager *x);
ct_eager *ct_eager_sigmoid(ct_eager *x);
ct_eager *ct_eager_relu(ct_eager *x);
ct_eager *ct_eager_leaky_relu(ct_eager *x, float alpha);
ct_eager *ct_eager_scale(ct_eager *x, float s);        /* s * x */
ct_eager *ct_eager_add_scalar(ct_eager *x, float s);   /* x + s */
ct_eager *ct_eager_pow(ct_eager *x, float p);          /* x ** p */

/* Matrix product of rank-2 tensors: op(a) (M, K) . op(b) (K, N) -> (M, N),
 * op transposing when the flag is set. OpenBLAS sgemm. */
ct_eager *ct_eager_matmul(ct_eager *a, ct_eager *b, int transpose_a, int transpose_b);

/* Reductions over axes[0..n_axes) (n_axes == 0: over every axis);
 * keepdims leaves the reduced axes with length 1. The max's gradient goes
 * to the first maximum of each reduced group. Sums use double
 * accumulators. */
ct_eager *ct_eager_sum(ct_eager *x, int n_axes, const int *axes, int keepdims);
ct_eager *ct_eager_mean(ct_eager *x, int n_axes, const int *axes, int keepdims);
ct_eager *ct_eager_max(ct_eager *x, int n_axes, const int *axes, int keepdims);
/* Index of the maximum along `axis` (as floats), no gradient. */
ct_eager *ct_eager_argmax(ct_eager *x, int axis);

/* Shape operations. reshape: one dimension may be -1 (inferred); the
 * element count must not change. transpose: perm is a permutation of the
 * axes (NULL reverses them). slice: begin[i] and size[i] per axis, size -1
 * meaning "to the end". concat: n tensors equal except along axis.
 * gather: rows indices[0..n) of x along axis (each in [0, dim)). */
ct_eager *ct_eager_reshape(ct_eager *x, int rank, const int64_t *dims);
ct_eager *ct_eager_transpose(ct_eager *x, const int *perm);
ct_eager *ct_eager_slice(ct_eager *x, const int64_t *begin, const int64_t *size);
ct_eager *ct_eager_concat(int n, ct_eager *const *xs, int axis);
ct_eager *ct_eager_gather(ct_eager *x, int axis, int64_t n, const int64_t *indices);
/* (n,) class indices in `labels` (floats holding integers in [0, depth))
 * -> (n, depth) rows of zeros with a one; no gradient. */
ct_eager *ct_eager_one_hot(ct_eager *labels, int64_t depth);

/* Softmax and log-softmax over the last axis (max-subtracted, stable). */
ct_eager *ct_eager_softmax(ct_eager *x);
ct_eager *ct_eager_log_softmax(ct_eager *x);

/* Convolution and pooling on NHWC images through ctrain's kernels:
 * x (B, H, W, C), kernel (kh, kw, C, F) -> (B, OH, OW, F); `same` pads as
 * TF does (output ceil(H / stride)), else 'valid'. */
ct_eager *ct_eager_conv2d(ct_eager *x, ct_eager *kernel, int stride_h, int stride_w, int same);
ct_eager *ct_eager_max_pool2d(ct_eager *x, int kh, int kw, int stride_h, int stride_w, int same);
ct_eager *ct_eager_avg_pool2d(ct_eager *x, int kh, int kw, int stride_h, int stride_w, int same);

/* ---- tapes (automatic differentiation) ---------------------------------------
 * ct_tape_create starts recording on the calling thread: every eager
 * operation the thread runs until ct_tape_stop (or destroy) is recorded,
 * with references to the tensors its backward pass needs. Tapes nest: all
 * recording tapes of the thread record each operation. A tape can be asked
 * for gradients any number of times, while recording or after.
 * Errors: no memory; more than 16 tapes recording on one thread. */
typedef struct ct_tape ct_tape;

ct_status ct_tape_create(ct_tape **out);
/* Stop recording (idempotent). Must run on the thread that created it. */
void ct_tape_stop(ct_tape *t);
/* Stop and release every reference the tape holds. */
void ct_tape_destroy(ct_tape *t);
/* Number of operations recorded so far. */
int64_t ct_tape_size(const ct_tape *t);

/* Gradients of `target` (a tensor with one element) with respect to
 * wrt[0..n): grads[i] is a new tensor of wrt[i]'s shape (ownership as for
 * any created tensor), zeros where target does not depend on wrt[i]. Any
 * tensor may be in wrt: inputs created before the tape, parameters,
 * intermediate results. Errors: target not recorded by this tape and not
 * in wrt, target with more than one element (CT_ERR_SHAPE). */
ct_status ct_tape_gradient(ct_tape *t, ct_eager *target, int n, ct_eager *const *wrt, ct_eager **grads);
/* The same for a target of any shape, seeded with dL/dtarget = `seed`
 * (target's shape): the vector-Jacobian product. */
ct_status ct_tape_gradient_seeded(ct_tape *t, ct_eager *target, ct_eager *seed, int n, ct_eager *const *wrt,
                                  ct_eager **grads);

/* ---- data sets in memory ------------------------------------------------------
 * A ct_data holds n samples as two float arrays, x (n, x shape...) and
 * y (n, y_size), as the CLI's sources produce them (class labels are one
 * float per sample). Read-only after creation; safe to read from several
 * threads at once. */
typedef struct ct_dataset ct_data;

/* Read a whole source into memory. format "idx" (MNIST-style, plain or
 * gzip; `labels` may be NULL) or "npy" (x and y files; y may be NULL).
 * Errors name the file and the byte offset (CT_ERR_DATA, CT_ERR_IO); an
 * unknown format is CT_ERR_USAGE. *out is the caller's (ct_data_destroy). */
ct_status ct_data_load(const char *format, const char *x_path, const char *y_path, ct_data **out);
/* A copy of caller arrays: x holds n * numel(x_dims) floats, y n * y_size
 * (y may be NULL with y_size 0). */
ct_status ct_data_from_arrays(int64_t n, int x_rank, const int64_t *x_dims, const float *x, int64_t y_size,
                              const float *y, ct_data **out);
void ct_data_destroy(ct_data *d);
int64_t ct_data_count(const ct_data *d);
/* Per-sample shape of x: returns the rank and writes up to
 * CT_EAGER_MAX_DIMS dims (dims may be NULL). */
int ct_data_x_shape(const ct_data *d, int64_t *dims);
int64_t ct_data_y_size(const ct_data *d);
/* Number of classes when y holds class labels (max label + 1), else 0. */
int64_t ct_data_num_classes(const ct_data *d);
/* The arrays themselves (borrowed; valid until destroy). */
const float *ct_data_x(const ct_data *d);
const float *ct_data_y(const ct_data *d);

/* ---- custom layers ------------------------------------------------------------
 * A layer type registered from C (or from a plugin, below) is used like a
 * built-in one: `type = my_dense` in a .conf, in models built from C, in
 * summaries, .h5 files and checkpoints (under its Keras class name).
 *
 * The library calls, per layer instance:
 *   init(l, state)    read the layer's config keys (ct_layer_key_*); no
 *                     shapes are known yet
 *   build(l, state)   read the input shapes (ct_layer_input_*), set the
 *                     output shape, declare the weights (ct_layer_add_weight)
 * and then per batch EITHER
 *   call(l, state, inputs, weights, training)   written with eager
 *                     operations, returns the output tensor; the library
 *                     records it on a tape and runs that backwards: no
 *                     backward to write;
 * OR forward(l, state, io) and backward(l, state, io) on raw buffers
 *                     (backward ACCUMULATES +dL/dinput into io->din[k] and
 *                     +dL/dweight into ct_layer_weight_grad).
 * Shapes exclude the batch axis: an input of per-sample shape (784,)
 * arrives in call() as a (batch, 784) tensor. `state` is state_size bytes
 * of zeroed memory per instance, owned by the library; destroy(state)
 * releases what the layer put in it (may be NULL). If the layer type
 * lists "activation" among its keys, the library applies that activation
 * after the layer (as for Dense). Callbacks report errors by returning a
 * status after setting the record (ct_layer_fail); call() by returning
 * NULL. Layers run on the thread that trains the model. */
typedef struct ct_layer ct_layer;

typedef struct ct_layer_buffers {
    int64_t batch;
    int n_in;
    const float *in[16];      /* batch x per-sample input k */
    float *din[16];           /* backward: += dL/din[k]; NULL when not needed */
    float *out;               /* batch x per-sample output */
    const float *dout;        /* backward: dL/dout */
    int training;
} ct_layer_buffers;

/* A layer type's own config keys: the .conf reader accepts exactly these
 * (plus the keys every layer has: type, inputs, apply, trainable), checks
 * each value's type and range and names file:line, the layer and the key
 * when one is wrong. Keys named activation, *_initializer and
 * *_regularizer are also checked as such. */
typedef enum ct_key_type {
    CT_KEYTYPE_INT, CT_KEYTYPE_FLOAT, CT_KEYTYPE_BOOL, CT_KEYTYPE_STRING,
    CT_KEYTYPE_INTS, CT_KEYTYPE_FLOATS, CT_KEYTYPE_STRINGS  /* comma-separated lists */
} ct_key_type;

typedef struct ct_key_def {
    const char *name;          /* NULL ends a table */
    ct_key_type type;
    const char *def;           /* default as a .conf would write it ("128", "relu"); NULL: none */
    int required;              /* init fails naming the layer and key when it is not set */
    int has_range;             /* numbers (each list element) must lie in [lo, hi] */
    double lo, hi;
    const char *doc;           /* one line for messages */
} ct_key_def;

typedef struct ct_layer_def {
    const char *type;          /* config name, "my_dense" (static storage) */
    const char *keras_class;   /* "MyDense"; NULL: the type */
    const ct_key_def *keys;    /* its config keys, ended by {NULL} (static storage; at most 32) */
    int min_inputs, max_inputs;
    size_t state_size;
    ct_status (*init)(ct_layer *l, void *state);   /* may be NULL */
    ct_status (*build)(ct_layer *l, void *state);
    ct_eager *(*call)(ct_layer *l, void *state, ct_eager *const *inputs, ct_eager *const *weights, int training);
    void (*forward)(ct_layer *l, void *state, const ct_layer_buffers *io);
    void (*backward)(ct_layer *l, void *state, const ct_layer_buffers *io);
    void (*destroy)(void *state);
} ct_layer_def;

/* Register a layer type (the definition is copied; the strings it points
 * to must stay valid). Registering a type name again replaces it.
 * Errors: a missing name or build, neither call nor forward+backward,
 * a full registry (CT_ERR_USAGE). Not thread-safe: register before
 * building models. */
ct_status ct_register_layer(const ct_layer_def *def);

/* Inside the callbacks: */
const char *ct_layer_name(const ct_layer *l);
int ct_layer_input_count(const ct_layer *l);
int ct_layer_input_rank(const ct_layer *l, int input);
int64_t ct_layer_input_dim(const ct_layer *l, int input, int axis);   /* negative axes from the end */
/* build(): the per-sample output shape. Errors: rank out of range. */
ct_status ct_layer_set_output_shape(ct_layer *l, int rank, const int64_t *dims);
/* build(): declare a weight; returns its index (the order of `weights`
 * in call()) or -1 with the record set. initializer: Keras's names and
 * arguments ("glorot_uniform", "constant(0.1)", NULL = zeros);
 * regularizer: "l2(0.01)", "l1_l2(l1=0.01, l2=0.01)" or NULL. Weights are
 * initialised from the model seed, the layer name and the weight name. */
int ct_layer_add_weight(ct_layer *l, const char *name, int rank, const int64_t *dims, const char *initializer,
                        const char *regularizer, int trainable);
/* The weight's values and gradient (numel floats each; valid in call,
 * forward and backward). */
float *ct_layer_weight(ct_layer *l, int index);
float *ct_layer_weight_grad(ct_layer *l, int index);
/* init(): the value of one of the layer's keys, as set in the config or
 * else its default. Errors: CT_ERR_CONFIG for a required key that is not
 * set (naming the layer and the key); CT_ERR_RUNTIME for a key that is
 * not in the type's table or has another type. Strings point into the
 * config: copy what must outlive init (*out is NULL when unset without a
 * default). */
ct_status ct_layer_key_int(const ct_layer *l, const char *key, int64_t *out);
ct_status ct_layer_key_float(const ct_layer *l, const char *key, double *out);
ct_status ct_layer_key_bool(const ct_layer *l, const char *key, int *out);
ct_status ct_layer_key_string(const ct_layer *l, const char *key, const char **out);
/* Set the error record with "<type> '<name>': " before the message and
 * return `s` (for init and build). */
ct_status ct_layer_fail(const ct_layer *l, ct_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- custom losses and metrics --------------------------------------------------
 * Registered by name, they are used like built-in ones: `[train] loss =
 * my_loss`, `metrics = my_metric`, in C-built models and from plugins
 * (register them in the plugin's function; the [plugins] section then
 * has to come before [train]). Predictions arrive as (n, d) rows of the
 * model output; targets as (n, d) rows, or (n, 1) class indices when
 * sparse_targets is set. The library applies sample weights and Keras's
 * reduction (the weighted per-sample losses summed, divided by n). */
typedef struct ct_loss_def {
    const char *name;       /* static storage */
    int sparse_targets;
    /* EITHER by hand: per_sample[i] = loss of row i and, when grad is not
     * NULL, grad (n, d) = d loss_i / d pred (overwritten, unscaled) */
    ct_status (*compute)(const float *pred, const float *y, int64_t n, int64_t d, float *per_sample, float *grad);
    /* OR with eager operations: the (n,) per-sample losses of pred (n, d)
     * and y; the gradient comes from a tape */
    ct_eager *(*call)(ct_eager *pred, ct_eager *y);
} ct_loss_def;

typedef struct ct_metric_def {
    const char *name;       /* static storage */
    /* values[i] = the metric of row i; the shown value is the weighted
     * mean over the epoch (reduced over ranks as a sum and a count) */
    void (*compute)(const float *pred, const float *y, int64_t n, int64_t d, float *values);
} ct_metric_def;

/* Registering a name again replaces it; built-in names cannot be taken.
 * Errors (CT_ERR_USAGE): no name, no function, a built-in name, a full
 * registry. Not thread-safe: register before building models. */
ct_status ct_register_loss(const ct_loss_def *def);
ct_status ct_register_metric(const ct_metric_def *def);

/* ---- plugins ---------------------------------------------------------------------
 * A plugin is a shared object that registers layers, losses and metrics
 * when loaded. It defines both symbols, most simply through the macro:
 *
 *     CT_PLUGIN(my_register) { return ct_register_layer(&my_dense); }
 *
 * A .conf loads plugins before it builds anything:
 *     [plugins]
 *     load = ./libmydense.so          (relative to the .conf file)
 * and so does a model or checkpoint file made from such a .conf. Loading
 * refuses, with CT_ERR_CONFIG and a message naming the plugin, a file
 * that cannot be opened, one without the two symbols, and one built for
 * another CT_ABI_VERSION. Loading the same file twice does nothing. */
#define CT_PLUGIN_ABI_SYMBOL "ct_plugin_abi_version"
#define CT_PLUGIN_REGISTER_SYMBOL "ct_plugin_register"
#define CT_PLUGIN(fn)                                   \
    const int ct_plugin_abi_version = CT_ABI_VERSION;   \
    ct_status ct_plugin_register(void);                 \
    static ct_status fn(void);                          \
    ct_status ct_plugin_register(void) { return fn(); } \
    static ct_status fn(void)

ct_status ct_plugin_load(const char *path);

/* ---- models ------------------------------------------------------------------------
 * A ct_net is a compiled model: its graph of layers with their weights,
 * the loss, metrics and optimizer of its config's [train] section, and
 * that config's [data] pipeline. Build one from a .conf file or a saved
 * .h5 (ct_net_load), or from config text composed in C (ct_net_from_text):
 * every graph a .conf can describe (inputs, any layer type with its keys,
 * `inputs =` connections, several branches merged) is reachable from C
 * that way, with the same validation and messages. A net is used by one
 * thread at a time. */
typedef struct ct_net ct_net;

/* path: a .conf or an .h5 written by ctrain (weights, optimizer state and
 * step restored). overrides: "section.key=value" as with --set (may be
 * NULL). Errors: CT_ERR_CONFIG / CT_ERR_CHECKPOINT / CT_ERR_IO naming the
 * file and line. *out is the caller's (ct_net_destroy). */
ct_status ct_net_load(const char *path, const char *const *overrides, int n_overrides, ct_net **out);
/* text: the .conf language; name is used in messages ("name:line: ");
 * relative paths resolve against the current directory. */
ct_status ct_net_from_text(const char *text, const char *name, ct_net **out);
void ct_net_destroy(ct_net *n);
/* Write an .h5 model file (config, weights, optimizer state) through a
 * temporary name. */
ct_status ct_net_save(const ct_net *n, const char *path);

int64_t ct_net_input_size(const ct_net *n);   /* floats per sample */
int64_t ct_net_output_size(const ct_net *n);  /* floats per sample of the output */
int64_t ct_net_target_size(const ct_net *n);  /* floats per sample of y (1 for class indices) */
int64_t ct_net_batch_size(const ct_net *n);
double ct_net_learning_rate(const ct_net *n);
void ct_net_set_learning_rate(ct_net *n, double lr);
uint64_t ct_net_step(const ct_net *n);        /* optimizer steps taken */

/* Logs handed to callbacks: "loss", metric names, "val_" ones at epoch
 * ends. Borrowed for the duration of the callback. */
typedef struct ct_logs ct_logs;
int ct_logs_count(const ct_logs *l);
const char *ct_logs_name(const ct_logs *l, int i);
double ct_logs_value(const ct_logs *l, int i);
/* 1 and *v when `name` is present, else 0. */
int ct_logs_get(const ct_logs *l, const char *name, double *v);

/* Callbacks as C functions (any may be NULL). They run on rank 0 only in
 * data-parallel training, and their decisions (stop, a new learning rate
 * set with ct_net_set_learning_rate) reach every rank at the same step.
 * Setting *stop ends training after this batch or epoch; returning a
 * status other than CT_OK ends fit with it. epoch counts from 0, batch
 * from 1. */
typedef struct ct_net_callbacks {
    void *ctx;
    ct_status (*epoch_begin)(void *ctx, ct_net *n, int epoch);
    ct_status (*batch_end)(void *ctx, ct_net *n, int epoch, int64_t batch, const ct_logs *logs, int *stop);
    ct_status (*epoch_end)(void *ctx, ct_net *n, int epoch, const ct_logs *logs, int *stop);
} ct_net_callbacks;

/* Train on arrays (val may be NULL), shuffled by the config's seed, with
 * the config's batch size; Keras's fit semantics. */
ct_status ct_net_fit(ct_net *n, const ct_data *train, const ct_data *val, int epochs, const ct_net_callbacks *cb);
/* Train on the config's [data] pipeline ([augment], workers, validation)
 * for its [train] epochs, as `ctrain train` does (without its built-in
 * callback sections). */
ct_status ct_net_fit_config(ct_net *n, const ct_net_callbacks *cb);
/* Loss and metrics over d: *loss, and metrics[i] for i < n_metrics (the
 * config's order, ct_net_metric_name). */
ct_status ct_net_evaluate(ct_net *n, const ct_data *d, double *loss, double *metrics, int n_metrics);
int ct_net_metric_count(const ct_net *n);
const char *ct_net_metric_name(const ct_net *n, int i);
/* out: count x ct_net_output_size floats, inference mode. */
ct_status ct_net_predict(ct_net *n, const float *x, int64_t count, float *out);

/* ---- data parallelism ------------------------------------------------------------
 * Under mpirun, every rank builds the same net, calls ct_net_data_parallel
 * (rank 0's weights go to all), and then fit, evaluate and the custom-loop
 * calls work on this rank's share of each global batch, with gradients
 * averaged in a fixed order (every rank holds the same bits). Without
 * mpirun the world has one rank. ct_mpi_init may be called once per
 * process, before any net is made data-parallel. */
ct_status ct_mpi_init(int *argc, char ***argv, int *rank, int *size);
void ct_mpi_finalize(void);
ct_status ct_net_data_parallel(ct_net *n);

/* ---- custom training loops ------------------------------------------------------
 * The pieces of a training step, for loops written by hand (GradientTape
 * for models):
 *   ct_net_forward(n, x, batch, training, &out)   the output of x
 *   ct_net_loss(n, y, &loss)            the compiled loss of that output,
 *                                       leaving dL/dout (mean over the batch)
 *   or ct_net_set_output_grad(n, dout)  any loss: the caller's dL/dout
 *   ct_net_backward(n, accumulate)      gradients of every trainable weight
 *                                       (added to the previous ones when
 *                                       accumulate)
 *   read / change them (ct_net_param_grad), ct_net_allreduce_grads(n)
 *   ct_net_apply_gradients(n, layers)   the optimizer on chosen layers
 * A step composed this way computes exactly what fit computes (the same
 * calls in the same order), bit for bit. */
ct_status ct_net_forward(ct_net *n, const float *x, int64_t batch, int training, const float **out);
ct_status ct_net_loss(ct_net *n, const float *y, double *loss);
ct_status ct_net_set_output_grad(ct_net *n, const float *dout);
ct_status ct_net_backward(ct_net *n, int accumulate);
/* Weights by index [0, ct_net_param_count) or by "layer/weight" name
 * (-1 when absent). Value and gradient arrays hold ct_net_param_size
 * floats and may be changed in place. */
int ct_net_param_count(const ct_net *n);
int ct_net_param_find(const ct_net *n, const char *name);
const char *ct_net_param_name(const ct_net *n, int i);
int64_t ct_net_param_size(const ct_net *n, int i);
float *ct_net_param_value(ct_net *n, int i);
float *ct_net_param_grad(ct_net *n, int i);
/* Average the gradients over the ranks (a no-op on one rank). */
ct_status ct_net_allreduce_grads(ct_net *n);
/* Regularizer gradients, then one optimizer step (lr: ct_net_learning_rate)
 * on the trainable weights of layers[0..n_layers) (n_layers 0: all).
 * Errors: an unknown layer name (CT_ERR_USAGE). */
ct_status ct_net_apply_gradients(ct_net *n, int n_layers, const char *const *layers);
/* Freeze (0) or unfreeze (1) a layer's weights for apply_gradients and fit. */
ct_status ct_net_set_trainable(ct_net *n, const char *layer, int trainable);

/* The training batches `ctrain train` reads for the net's config: the
 * [data] source with [augment], shuffled per epoch by the seed, this
 * rank's share. */
typedef struct ct_batches ct_batches;
ct_status ct_net_batches(ct_net *n, ct_batches **out);
void ct_batches_destroy(ct_batches *b);
int64_t ct_batches_steps(const ct_batches *b);
/* Rewind to the start of epoch `epoch` (from 0). */
ct_status ct_batches_epoch(ct_batches *b, int epoch);
/* The next batch (borrowed until the next call); *end = 1 after the last. */
ct_status ct_batches_next(ct_batches *b, const float **x, const float **y, int64_t *rows, int *end);

/* Free the per-thread cache of tensor buffers (the operations recycle
 * freed buffers of equal size, so a training loop allocates nothing in
 * its steady state). Optional; for leak checkers and long-lived threads. */
void ct_eager_release_cache(void);

#ifdef __cplusplus
}
#endif

#endif
