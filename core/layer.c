/* The layer registry and helpers shared by layer implementations. */
#include "layer.h"

#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_MAX_LAYER_TYPES 128

static const ct_layer_type *registry[CT_MAX_LAYER_TYPES];
static int n_registered;

/* Keys every layer section has, handled by the config reader and graph. */
static const char *const base_keys[] = {"name", "type", "inputs", "line", "extra", "apply", "trainable"};

/* The kind a key of LayerConfig field f must be declared with; -1: not a
 * field. */
static int field_kind(const char *key)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&ctrain__layer_config__descriptor, key);
    if (!f) return -1;
    int rep = f->label == PROTOBUF_C_LABEL_REPEATED;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_INT64: return rep ? CT_KEY_INTS : CT_KEY_INT;
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE: return rep ? CT_KEY_FLOATS : CT_KEY_FLOAT;
    case PROTOBUF_C_TYPE_BOOL: return CT_KEY_BOOL;
    case PROTOBUF_C_TYPE_STRING: return rep ? CT_KEY_STRINGS : CT_KEY_STRING;
    default: return -2;
    }
}

static ct_status check_table(const ct_layer_type *t)
{
    for (const ct_layer_key *k = t->keys; k && k->name; k++) {
        for (size_t i = 0; i < sizeof base_keys / sizeof base_keys[0]; i++)
            if (strcmp(k->name, base_keys[i]) == 0)
                return CT_FAIL(CT_ERR_USAGE, "layer type '%s': key '%s' is a base key every layer has", t->name,
                               k->name);
        int fk = field_kind(k->name);
        if (fk != -1 && fk != (int)k->kind)
            return CT_FAIL(CT_ERR_USAGE,
                           "layer type '%s': key '%s' is a LayerConfig field of another kind; declare it with "
                           "that kind or pick another name", t->name, k->name);
        if (k->def && ct_layer_key_check(k, k->def) != CT_OK) {
            ct_error_prefix("layer type '%s': default of key '%s': ", t->name, k->name);
            return CT_ERR_USAGE;
        }
    }
    return CT_OK;
}

ct_status ct_layer_register(const ct_layer_type *t)
{
    if (!t || !t->name || !t->init || !t->infer || !t->forward || !t->backward || t->size < sizeof(ct_layer))
        return CT_FAIL(CT_ERR_USAGE, "layer type '%s': needs a name, init, infer, forward, backward and a size",
                       t && t->name ? t->name : "");
    CT_TRY(check_table(t));
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
    CT_TRY(ct_layer_arg_activation(l, c, "activation"));
    CT_TRY(ct_layer_arg_init(l, c, "kernel_initializer", &out->kinit));
    CT_TRY(ct_layer_arg_init(l, c, "bias_initializer", &out->binit));
    CT_TRY(ct_layer_arg_reg(l, c, "kernel_regularizer", &out->kreg));
    return ct_layer_arg_reg(l, c, "bias_regularizer", &out->breg);
}

/* ---- key tables ------------------------------------------------------- */

const ct_layer_key *ct_layer_type_key(const ct_layer_type *t, const char *key)
{
    for (const ct_layer_key *k = t ? t->keys : NULL; k && k->name; k++)
        if (strcmp(k->name, key) == 0) return k;
    return NULL;
}

static const char *kind_name(ct_key_kind k)
{
    static const char *const names[] = {"an integer", "a number", "a boolean", "a string",
                                        "a list of integers", "a list of numbers", "a list of names"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static int is_list(ct_key_kind k) { return k == CT_KEY_INTS || k == CT_KEY_FLOATS || k == CT_KEY_STRINGS; }

static ct_status check_range(const ct_layer_key *k, double v)
{
    if (!(k->flags & CT_KEY_RANGE)) return CT_OK;
    int low = (k->flags & CT_KEY_LO_OPEN) ? !(v > k->lo) : !(v >= k->lo);
    int high = (k->flags & CT_KEY_HI_OPEN) ? !(v < k->hi) : !(v <= k->hi);
    if (!low && !high) return CT_OK;
    if (isinf(k->hi))
        return CT_FAIL(CT_ERR_CONFIG, "must be %s %g, got %.10g", (k->flags & CT_KEY_LO_OPEN) ? ">" : ">=", k->lo, v);
    return CT_FAIL(CT_ERR_CONFIG, "must be in %c%g, %g%c, got %.10g", (k->flags & CT_KEY_LO_OPEN) ? '(' : '[', k->lo,
                   k->hi, (k->flags & CT_KEY_HI_OPEN) ? ')' : ']', v);
}

/* One element (trimmed copy in e) of a value of kind k. */
static ct_status check_elem(const ct_layer_key *k, const char *e, double *num)
{
    int64_t i;
    int b;
    *num = 0;
    switch (k->kind) {
    case CT_KEY_INT: case CT_KEY_INTS:
        CT_TRY(ct_config_parse_int(e, &i));
        *num = (double)i;
        return check_range(k, *num);
    case CT_KEY_FLOAT: case CT_KEY_FLOATS:
        CT_TRY(ct_config_parse_real(e, num));
        return check_range(k, *num);
    case CT_KEY_BOOL: return ct_config_parse_bool(e, &b);
    case CT_KEY_STRING: case CT_KEY_STRINGS: return k->check ? k->check(e) : CT_OK;
    }
    return CT_FAIL(CT_ERR_RUNTIME, "key '%s' has an unknown kind", k->name);
}

/* Calls fn on each trimmed element of a list (one element for scalars). */
static ct_status each_elem(const ct_layer_key *k, const char *value, ct_status (*fn)(void *, const char *, int),
                           void *ctx)
{
    if (!is_list(k->kind)) {
        char buf[512];
        size_t n = strlen(value);
        while (n && (value[n - 1] == ' ' || value[n - 1] == '\t')) n--;
        while (n && (*value == ' ' || *value == '\t')) value++, n--;
        if (n >= sizeof buf) return CT_FAIL(CT_ERR_CONFIG, "value is longer than %zu bytes", sizeof buf - 1);
        memcpy(buf, value, n);
        buf[n] = 0;
        return fn(ctx, buf, 0);
    }
    int idx = 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        char buf[256];
        if (n == 0) return CT_FAIL(CT_ERR_CONFIG, "element %d of the list is empty", idx + 1);
        if (n >= sizeof buf) return CT_FAIL(CT_ERR_CONFIG, "element %d is longer than %zu bytes", idx + 1, sizeof buf - 1);
        memcpy(buf, p, n);
        buf[n] = 0;
        CT_TRY(fn(ctx, buf, idx));
        idx++;
        if (!comma) break;
        p = comma + 1;
    }
    if (k->max_n && idx > k->max_n)
        return CT_FAIL(CT_ERR_CONFIG, "has %d values, at most %d are allowed", idx, k->max_n);
    return CT_OK;
}

static ct_status check_one(void *ctx, const char *e, int idx)
{
    double num;
    (void)idx;
    ct_status s = check_elem(ctx, e, &num);
    if (s != CT_OK && s != CT_ERR_CONFIG) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ct_error_message());
        return CT_FAIL(CT_ERR_CONFIG, "%s", msg);
    }
    return s;
}

ct_status ct_layer_key_check(const ct_layer_key *k, const char *value)
{
    ct_status s = each_elem(k, value, check_one, (void *)k);
    if (s != CT_OK) ct_error_prefix("expected %s: ", kind_name(k->kind));
    return s;
}

/* The text of a key: set in the config, else the table default (NULL when
 * neither). Fails for a key the type does not declare. */
static ct_status arg_text(const ct_layer *l, const ct_layer_config *c, const char *key, char *buf, size_t cap,
                          const ct_layer_key **kout, const char **out)
{
    const ct_layer_key *k = ct_layer_type_key(l->type, key);
    if (!k) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is not in the type's key table", l->type->name, l->name, key);
    const char *t = c ? ct_config_layer_text(c, key, buf, cap, NULL) : NULL;
    if (!t) t = k->def;
    if (!t && (k->flags & CT_KEY_REQUIRED))
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': needs %s = ... (%s)", l->type->name, l->name, key,
                       k->doc ? k->doc : kind_name(k->kind));
    if (t && ct_layer_key_check(k, t) != CT_OK) {
        ct_error_prefix("%s '%s': %s: ", l->type->name, l->name, key);
        return CT_ERR_CONFIG;
    }
    *kout = k;
    *out = t;
    return CT_OK;
}

ct_status ct_layer_arg_int(const ct_layer *l, const ct_layer_config *c, const char *key, int64_t *out)
{
    char buf[64];
    const ct_layer_key *k;
    const char *t;
    CT_TRY(arg_text(l, c, key, buf, sizeof buf, &k, &t));
    if (k->kind != CT_KEY_INT) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is not an integer", l->type->name, l->name, key);
    if (!t) return CT_FAIL(CT_ERR_CONFIG, "%s '%s': needs %s = ...", l->type->name, l->name, key);
    return ct_config_parse_int(t, out);
}

ct_status ct_layer_arg_float(const ct_layer *l, const ct_layer_config *c, const char *key, double *out)
{
    char buf[64];
    const ct_layer_key *k;
    const char *t;
    CT_TRY(arg_text(l, c, key, buf, sizeof buf, &k, &t));
    if (k->kind != CT_KEY_FLOAT) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is not a number", l->type->name, l->name, key);
    if (!t) return CT_FAIL(CT_ERR_CONFIG, "%s '%s': needs %s = ...", l->type->name, l->name, key);
    return ct_config_parse_real(t, out);
}

ct_status ct_layer_arg_bool(const ct_layer *l, const ct_layer_config *c, const char *key, int *out)
{
    char buf[16];
    const ct_layer_key *k;
    const char *t;
    CT_TRY(arg_text(l, c, key, buf, sizeof buf, &k, &t));
    if (k->kind != CT_KEY_BOOL) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is not a boolean", l->type->name, l->name, key);
    if (!t) return CT_FAIL(CT_ERR_CONFIG, "%s '%s': needs %s = ...", l->type->name, l->name, key);
    return ct_config_parse_bool(t, out);
}

ct_status ct_layer_arg_string(const ct_layer *l, const ct_layer_config *c, const char *key, const char **out)
{
    char buf[8];
    const ct_layer_key *k;
    const char *t;
    CT_TRY(arg_text(l, c, key, buf, sizeof buf, &k, &t));
    if (k->kind != CT_KEY_STRING) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is not a string", l->type->name, l->name, key);
    *out = t;
    return CT_OK;
}

typedef struct list_out {
    const ct_layer *l;
    const char *key;
    int64_t *ints;
    double *reals;
    int cap, n;
} list_out;

static ct_status store_elem(void *ctx, const char *e, int idx)
{
    list_out *o = ctx;
    if (idx >= o->cap)
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': %s takes at most %d values", o->l->type->name, o->l->name, o->key, o->cap);
    o->n = idx + 1;
    return o->ints ? ct_config_parse_int(e, &o->ints[idx]) : ct_config_parse_real(e, &o->reals[idx]);
}

static ct_status arg_list(const ct_layer *l, const ct_layer_config *c, const char *key, ct_key_kind kind,
                          list_out *o, int *n)
{
    char buf[1024];
    const ct_layer_key *k;
    const char *t;
    *n = 0;
    CT_TRY(arg_text(l, c, key, buf, sizeof buf, &k, &t));
    if (k->kind != kind) return CT_FAIL(CT_ERR_RUNTIME, "%s '%s': key '%s' is %s", l->type->name, l->name, key, kind_name(k->kind));
    if (!t) return CT_OK;
    CT_TRY(each_elem(k, t, store_elem, o));
    *n = o->n;
    return CT_OK;
}

ct_status ct_layer_arg_ints(const ct_layer *l, const ct_layer_config *c, const char *key, int64_t *out, int cap, int *n)
{
    list_out o = {l, key, out, NULL, cap, 0};
    return arg_list(l, c, key, CT_KEY_INTS, &o, n);
}

ct_status ct_layer_arg_floats(const ct_layer *l, const ct_layer_config *c, const char *key, double *out, int cap,
                              int *n)
{
    list_out o = {l, key, NULL, out, cap, 0};
    return arg_list(l, c, key, CT_KEY_FLOATS, &o, n);
}

ct_status ct_layer_arg_pair(const ct_layer *l, const ct_layer_config *c, const char *key, int def_h, int def_w,
                            int *h, int *w)
{
    int64_t v[2];
    int n;
    CT_TRY(ct_layer_arg_ints(l, c, key, v, 2, &n));
    *h = n ? (int)v[0] : def_h;
    *w = n ? (int)v[n - 1] : def_w;
    return CT_OK;
}

ct_status ct_layer_arg_dropout(const ct_layer *l, const ct_layer_config *c, float *rate, int *has_seed,
                               uint64_t *seed)
{
    double r;
    int64_t s = 0;
    CT_TRY(ct_layer_arg_float(l, c, "rate", &r));
    *rate = (float)r;
    *has_seed = ct_layer_arg_is_set(c, "seed");
    if (*has_seed) CT_TRY(ct_layer_arg_int(l, c, "seed", &s));
    *seed = (uint64_t)s;
    return CT_OK;
}

int ct_layer_arg_is_set(const ct_layer_config *c, const char *key)
{
    char buf[1024];
    return c && ct_config_layer_text(c, key, buf, sizeof buf, NULL) != NULL;
}

ct_status ct_layer_arg_init(const ct_layer *l, const ct_layer_config *c, const char *key, ct_initializer *out)
{
    const char *v;
    CT_TRY(ct_layer_arg_string(l, c, key, &v));
    return ct_layer_parse_init(l, key, v, out);
}

ct_status ct_layer_arg_reg(const ct_layer *l, const ct_layer_config *c, const char *key, ct_regularizer *out)
{
    const char *v;
    CT_TRY(ct_layer_arg_string(l, c, key, &v));
    return ct_layer_parse_reg(l, key, v, out);
}

ct_status ct_layer_arg_activation(ct_layer *l, const ct_layer_config *c, const char *key)
{
    const char *v;
    CT_TRY(ct_layer_arg_string(l, c, key, &v));
    if (!v) return CT_FAIL(CT_ERR_CONFIG, "%s '%s': needs %s = ...", l->type->name, l->name, key);
    return ct_layer_parse_activation(l, v, &l->act);
}

/* ---- name checks for key tables --------------------------------------- */

static ct_status one_of(const char *what, const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return CT_OK;
    char list[256] = "";
    for (int i = 0; i < n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    const char *near = ct_nearest_name(v, names, n);
    return CT_FAIL(CT_ERR_CONFIG, "unknown %s '%s';%s%s%s allowed: %s", what, v, near ? " did you mean '" : "",
                   near ? near : "", near ? "'?" : "", list);
}

ct_status ct_key_check_activation(const char *v)
{
    int n;
    const char *const *names = ct_activation_names(&n);
    return one_of("activation", v, names, n);
}

static ct_status as_config(ct_status s)
{
    if (s == CT_OK || s == CT_ERR_CONFIG) return s;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ct_error_message());
    return CT_FAIL(CT_ERR_CONFIG, "%s", msg);
}

ct_status ct_key_check_initializer(const char *v)
{
    ct_initializer i;
    return as_config(ct_initializer_parse(v, &i));
}

ct_status ct_key_check_regularizer(const char *v)
{
    ct_regularizer r;
    return as_config(ct_regularizer_parse(v, &r));
}

ct_status ct_key_check_padding(const char *v)
{
    static const char *const names[] = {"valid", "same"};
    return one_of("padding", v, names, 2);
}

ct_status ct_key_check_dtype(const char *v)
{
    static const char *const names[] = {"float32", "int32"};
    return one_of("dtype", v, names, 2);
}

extern const ct_layer_type ct_layer_dense, ct_layer_flatten, ct_layer_reshape, ct_layer_dropout,
    ct_layer_activation, ct_layer_add, ct_layer_concatenate;
extern const ct_layer_type ct_layer_maxpool2d, ct_layer_avgpool2d, ct_layer_global_avgpool2d,
    ct_layer_global_maxpool2d, ct_layer_zero_padding2d, ct_layer_upsampling2d, ct_layer_batch_normalization,
    ct_layer_spatial_dropout2d, ct_layer_channel_padding, ct_layer_input;
extern const ct_layer_type ct_layer_conv2d, ct_layer_depthwise_conv2d, ct_layer_separable_conv2d,
    ct_layer_conv2d_transpose;

int ct_layer_mask_pass(const ct_layer *l) { return CT_MASK_PASS; }

/* The sequence layers (embedding.c, token_position.c, conv1d.c, pool1d.c,
 * recurrent.c, layer_norm.c, multi_head_attention.c, masking.c,
 * spatial_dropout1d.c). */
extern const ct_layer_type ct_layer_embedding, ct_layer_token_and_position_embedding, ct_layer_conv1d,
    ct_layer_maxpool1d, ct_layer_avgpool1d, ct_layer_global_maxpool1d, ct_layer_global_avgpool1d, ct_layer_simple_rnn,
    ct_layer_lstm, ct_layer_gru, ct_layer_bidirectional, ct_layer_layer_normalization, ct_layer_multi_head_attention,
    ct_layer_masking, ct_layer_spatial_dropout1d;

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
        &ct_layer_spatial_dropout2d, &ct_layer_channel_padding, &ct_layer_input,
        &ct_layer_embedding, &ct_layer_token_and_position_embedding, &ct_layer_conv1d, &ct_layer_maxpool1d,
        &ct_layer_avgpool1d, &ct_layer_global_maxpool1d, &ct_layer_global_avgpool1d, &ct_layer_simple_rnn,
        &ct_layer_lstm, &ct_layer_gru, &ct_layer_bidirectional, &ct_layer_layer_normalization,
        &ct_layer_multi_head_attention, &ct_layer_masking, &ct_layer_spatial_dropout1d,
    };
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) ct_layer_register(builtins[i]);
}
