/* The seed's MyDense as a plugin: a dense layer written with tape
 * operations (no backward pass to write), loaded by a .conf:
 *
 *   cc -shared -fPIC -O2 plugin_mydense.c $(pkg-config --cflags ctrain) -o libmydense.so
 *   ctrain mydense.conf        # [plugins] load = libmydense.so, [fc] type = my_dense
 *
 * Keys: units (required), activation, kernel_initializer, use_bias. It also
 * registers a metric, binary_error (the share of samples on the wrong side
 * of 0.5), to show that plugins bring losses and metrics the same way. */
#include <ctrain.h>

typedef struct mydense {
    int64_t units;
    int use_bias;
    const char *kernel_init;
} mydense;

/* its config keys: types, defaults, ranges; the .conf reader checks them */
static const ct_key_def keys[] = {
    {"units", CT_KEYTYPE_INT, NULL, 1, 1, 1, 1e9, "output width"},
    {"activation", CT_KEYTYPE_STRING, "linear", 0, 0, 0, 0, "activation applied to the output"},
    {"kernel_initializer", CT_KEYTYPE_STRING, "glorot_uniform", 0, 0, 0, 0, "kernel initializer"},
    {"use_bias", CT_KEYTYPE_BOOL, "true", 0, 0, 0, 0, "add a bias vector"},
    {NULL},
};

static ct_status mydense_init(ct_layer *l, void *state)
{
    mydense *d = state;
    ct_status s = ct_layer_key_int(l, "units", &d->units);
    if (s == CT_OK) s = ct_layer_key_bool(l, "use_bias", &d->use_bias);
    if (s == CT_OK) s = ct_layer_key_string(l, "kernel_initializer", &d->kernel_init);
    return s; /* the string points into the config: build() runs before the config goes */
}

/* input (features,) -> output (units,); kernel (features, units), bias (units,) */
static ct_status mydense_build(ct_layer *l, void *state)
{
    mydense *d = state;
    if (ct_layer_input_rank(l, 0) != 1)
        return ct_layer_fail(l, CT_ERR_SHAPE, "expects a flat input (add a flatten layer before it)");
    int64_t kdims[2] = {ct_layer_input_dim(l, 0, 0), d->units};
    if (ct_layer_add_weight(l, "kernel", 2, kdims, d->kernel_init, NULL, 1) < 0) return ct_error_status();
    if (d->use_bias && ct_layer_add_weight(l, "bias", 1, &d->units, "zeros", NULL, 1) < 0) return ct_error_status();
    return ct_layer_set_output_shape(l, 1, &d->units);
}

/* x (batch, features) -> x . kernel + bias (batch, units) */
static ct_eager *mydense_call(ct_layer *l, void *state, ct_eager *const *in, ct_eager *const *w, int training)
{
    mydense *d = state;
    ct_eager *z = ct_eager_matmul(in[0], w[0], 0, 0);
    return d->use_bias ? ct_eager_add(z, w[1]) : z;
}

static const ct_layer_def mydense_def = {
    .type = "my_dense", .keras_class = "MyDense", .keys = keys, .min_inputs = 1, .max_inputs = 1,
    .state_size = sizeof(mydense), .init = mydense_init, .build = mydense_build, .call = mydense_call,
};

/* per sample: 1 when the prediction is on the wrong side of 0.5 */
static void binary_error(const float *pred, const float *y, int64_t n, int64_t d, float *values)
{
    for (int64_t i = 0; i < n; i++) values[i] = (pred[i * d] > 0.5f) != (y[i * d] > 0.5f);
}

static const ct_metric_def binary_error_def = {.name = "binary_error", .compute = binary_error};

CT_PLUGIN(register_mydense)
{
    ct_status s = ct_register_layer(&mydense_def);
    return s == CT_OK ? ct_register_metric(&binary_error_def) : s;
}
