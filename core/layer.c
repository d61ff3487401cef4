/* The layer registry and helpers shared by layer implementations. */
#include "layer.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define CT_MAX_LAYER_TYPES 128

static const ct_layer_type *registry[CT_MAX_LAYER_TYPES];
static int n_registered;

ct_status ct_layer_register(const ct_layer_type *t)
{
    for (int i = 0; i < n_registered; i++)
        if (strcmp(registry[i]->name, t->name) == 0) {
            registry[i] = t;
            return CT_OK;
        }
    if (n_registered >= CT_MAX_LAYER_TYPES)
        return CT_FAIL(CT_ERR_RUNTIME, "layer registry full: cannot register '%s'", t->name);
    registry[n_registered++] = t;
    return CT_OK;
}

const ct_layer_type *ct_layer_type_find(const char *name)
{
    for (int i = 0; name && i < n_registered; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

int ct_layer_type_count(void) { return n_registered; }
const ct_layer_type *ct_layer_type_at(int i) { return i >= 0 && i < n_registered ? registry[i] : NULL; }

int ct_layer_add_param(ct_layer *l, const char *name, ct_shape shape, const ct_initializer *init,
                       const ct_regularizer *reg, int trainable)
{
    if (l->n_params >= CT_LAYER_MAX_PARAMS) return -1;
    ct_layer_param *p = &l->params[l->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->shape = shape;
    if (init) p->init = *init;
    if (reg) p->reg = *reg;
    p->trainable = trainable;
    return l->n_params++;
}

ct_status ct_layer_parse_activation(const ct_layer *l, const char *name, ct_activation *out)
{
    if (ct_activation_find(name, out)) return CT_OK;
    int n;
    const char *const *names = ct_activation_names(&n);
    const char *near = ct_nearest_name(name, names, n);
    char list[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return CT_FAIL(CT_ERR_CONFIG, "%s '%s': unknown activation '%s'%s%s%s; known are %s", l->type->name,
                   l->name, name, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "", list);
}

ct_status ct_layer_parse_init(const ct_layer *l, const char *key, const char *spec, ct_initializer *out)
{
    ct_status s = ct_initializer_parse(spec, out);
    if (s != CT_OK) ct_error_prefix("%s '%s': %s: ", l->type->name, l->name, key);
    return s;
}

ct_status ct_layer_parse_reg(const ct_layer *l, const char *key, const char *spec, ct_regularizer *out)
{
    ct_status s = ct_regularizer_parse(spec, out);
    if (s != CT_OK) ct_error_prefix("%s '%s': %s: ", l->type->name, l->name, key);
    return s;
}

ct_status ct_layer_parse_kernel_bias(ct_layer *l, const ct_layer_config *c, ct_kernel_bias *out)
{
    CT_TRY(ct_layer_parse_activation(l, c->activation, &l->act));
    CT_TRY(ct_layer_parse_init(l, "kernel_initializer", c->kernel_initializer, &out->kinit));
    CT_TRY(ct_layer_parse_init(l, "bias_initializer", c->bias_initializer, &out->binit));
    CT_TRY(ct_layer_parse_reg(l, "kernel_regularizer", c->kernel_regularizer, &out->kreg));
    return ct_layer_parse_reg(l, "bias_regularizer", c->bias_regularizer, &out->breg);
}

extern const ct_layer_type ct_layer_dense, ct_layer_flatten, ct_layer_reshape, ct_layer_dropout,
    ct_layer_activation, ct_layer_add, ct_layer_concatenate;
extern const ct_layer_type ct_layer_maxpool2d, ct_layer_avgpool2d, ct_layer_global_avgpool2d,
    ct_layer_global_maxpool2d, ct_layer_zero_padding2d, ct_layer_upsampling2d, ct_layer_batch_normalization,
    ct_layer_spatial_dropout2d, ct_layer_channel_padding;
extern const ct_layer_type ct_layer_conv2d, ct_layer_depthwise_conv2d, ct_layer_separable_conv2d,
    ct_layer_conv2d_transpose;

static void register_builtins_once(void);

/* Idempotent: programs using the public API may reach it more than once. */
void ct_register_builtins(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_builtins_once);
}

static void register_builtins_once(void)
{
    static const ct_layer_type *const builtins[] = {
        &ct_layer_dense, &ct_layer_flatten, &ct_layer_reshape, &ct_layer_dropout,
        &ct_layer_activation, &ct_layer_add, &ct_layer_concatenate,
        &ct_layer_conv2d, &ct_layer_depthwise_conv2d, &ct_layer_separable_conv2d, &ct_layer_conv2d_transpose,
        &ct_layer_maxpool2d, &ct_layer_avgpool2d, &ct_layer_global_avgpool2d, &ct_layer_global_maxpool2d,
        &ct_layer_zero_padding2d, &ct_layer_upsampling2d, &ct_layer_batch_normalization,
        &ct_layer_spatial_dropout2d, &ct_layer_channel_padding,
    };
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) ct_layer_register(builtins[i]);
}
