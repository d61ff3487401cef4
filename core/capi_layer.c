/* Layer types registered through the public API (ct_register_layer): one
 * internal vtable whose functions forward to the user's ct_layer_def.
 *
 * Tape-defined layers (def->call): forward wraps the input and weight
 * buffers as eager tensors without copying, runs call() under a tape and
 * copies the result into the planned output; backward seeds that tape
 * with dL/dout and accumulates straight into the planned input and weight
 * gradients (ct_tape_backward_into), so the only extra work over a
 * hand-written layer is the output copy and the zeroed intermediate
 * gradients. The tape lives from a training forward to its backward. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eager_impl.h"
#include "layer.h"

#define CAPI_MAX_TYPES 64

#define CAPI_MAX_KEYS 32

typedef struct capi_type {
    ct_layer_type vt;   /* first: l->type points here */
    ct_layer_def def;
    ct_layer_key keys[CAPI_MAX_KEYS + 1];   /* def->keys in the library's form, {NULL}-ended */
} capi_type;

typedef struct capi_layer {
    ct_layer base;
    const ct_layer_config *cfg;   /* during init only */
    void *state;
    int n_weights;
    /* tape-defined: what a training forward leaves for backward */
    ct_tape *tape;
    ct_eager *in[CT_LAYER_MAX_INPUTS], *w[CT_LAYER_MAX_PARAMS], *out;
} capi_layer;

static capi_type types[CAPI_MAX_TYPES];
static int n_types;

static const ct_layer_def *def_of(const ct_layer *l) { return &((const capi_type *)l->type)->def; }

/* ---- the internal vtable --------------------------------------------------------- */
static ct_status capi_init(ct_layer *l, const ct_layer_config *cfg)
{
    capi_layer *c = (capi_layer *)l;
    const ct_layer_def *d = def_of(l);
    if (d->state_size && !(c->state = calloc(1, d->state_size)))
        return CT_FAIL(CT_ERR_NOMEM, "%s '%s': out of memory for its state", d->type, l->name);
    ct_status s = CT_OK;
    if (ct_layer_type_key(l->type, "activation")) s = ct_layer_arg_activation(l, cfg, "activation");
    if (s == CT_OK && d->init) {
        c->cfg = cfg;
        s = d->init(l, c->state);
        c->cfg = NULL;
    }
    if (s != CT_OK) { /* the graph frees a layer whose init failed without destroy() */
        if (d->destroy && c->state) d->destroy(c->state);
        free(c->state);
        c->state = NULL;
    }
    return s;
}

static ct_status capi_infer(ct_layer *l)
{
    capi_layer *c = (capi_layer *)l;
    l->out_shape.rank = -1;
    CT_TRY(def_of(l)->build(l, c->state));
    if (l->out_shape.rank < 0)
        return CT_FAIL(CT_ERR_USAGE, "%s '%s': build() did not set the output shape (ct_layer_set_output_shape)",
                       def_of(l)->type, l->name);
    return CT_OK;
}

static void drop_tape(capi_layer *c)
{
    ct_tape_destroy(c->tape);
    c->tape = NULL;
    for (int k = 0; k < CT_LAYER_MAX_INPUTS; k++) {
        ct_eager_free(c->in[k]);
        c->in[k] = NULL;
    }
    for (int k = 0; k < CT_LAYER_MAX_PARAMS; k++) {
        ct_eager_free(c->w[k]);
        c->w[k] = NULL;
    }
    ct_eager_free(c->out);
    c->out = NULL;
}

static ct_eager *wrap_batch(const ct_shape *s, int64_t batch, float *data)
{
    int64_t dims[CT_EAGER_MAX_DIMS];
    dims[0] = batch;
    int r = s->rank + 1 > CT_EAGER_MAX_DIMS ? CT_EAGER_MAX_DIMS : s->rank + 1;
    for (int i = 1; i < r; i++) dims[i] = s->dims[i - 1];
    return ct_eager_wrap(r, dims, data);
}

static void fill_public_io(const ct_layer *l, const ct_layer_io *io, ct_layer_buffers *p)
{
    memset(p, 0, sizeof *p);
    p->batch = io->batch;
    p->n_in = io->n_in;
    for (int k = 0; k < io->n_in && k < 16; k++) {
        p->in[k] = io->in[k];
        p->din[k] = io->din[k];
    }
    p->out = io->out;
    p->dout = io->dout;
    p->training = io->training;
}

/* Forward passes cannot return a status (the graph's contract); a failing
 * call() writes NaN into the output, which the loss turns into the
 * "loss is not finite" error, and keeps the message in the record. */
static void poison(const ct_layer *l, const ct_layer_io *io)
{
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    for (int64_t i = 0; i < n; i++) io->out[i] = NAN;
}

static void capi_forward(ct_layer *l, const ct_layer_io *io)
{
    capi_layer *c = (capi_layer *)l;
    const ct_layer_def *d = def_of(l);
    if (!d->call) {
        ct_layer_buffers p;
        fill_public_io(l, io, &p);
        d->forward(l, c->state, &p);
        return;
    }
    drop_tape(c);
    ct_scope_begin();
    for (int k = 0; k < io->n_in; k++) c->in[k] = ct_eager_retain(wrap_batch(&l->in_shape[k], io->batch, (float *)io->in[k]));
    for (int k = 0; k < l->n_params; k++) {
        const ct_layer_param *pp = &l->params[k];
        c->w[k] = ct_eager_retain(ct_eager_wrap(pp->shape.rank, pp->shape.dims, pp->value));
    }
    if (io->training && ct_tape_create(&c->tape) != CT_OK) c->tape = NULL;
    ct_eager *out = d->call(l, c->state, c->in, c->w, io->training);
    ct_tape_stop(c->tape);
    int64_t want = io->batch * ct_shape_numel(&l->out_shape);
    if (out && ct_eager_numel(out) == want) {
        memcpy(io->out, ct_eager_data(out), sizeof(float) * (size_t)want);
        c->out = ct_eager_retain(out);
    } else {
        if (out)
            CT_FAIL(CT_ERR_SHAPE, "%s '%s': call() returned %lld values for a batch of %lld, expected %lld", d->type,
                    l->name, (long long)ct_eager_numel(out), (long long)io->batch, (long long)want);
        poison(l, io);
    }
    ct_scope_end();
    if (!io->training) drop_tape(c);
}

static void capi_backward(ct_layer *l, const ct_layer_io *io)
{
    capi_layer *c = (capi_layer *)l;
    const ct_layer_def *d = def_of(l);
    if (!d->call) {
        ct_layer_buffers p;
        fill_public_io(l, io, &p);
        d->backward(l, c->state, &p);
        return;
    }
    if (!c->tape || !c->out) return; /* the forward failed and said so */
    ct_eager *wrt[CT_LAYER_MAX_INPUTS + CT_LAYER_MAX_PARAMS];
    float *acc[CT_LAYER_MAX_INPUTS + CT_LAYER_MAX_PARAMS];
    int n = 0;
    for (int k = 0; k < io->n_in; k++)
        if (io->din[k]) {
            wrt[n] = c->in[k];
            acc[n++] = io->din[k];
        }
    for (int k = 0; k < l->n_params; k++)
        if (l->params[k].trainable && l->params[k].grad) {
            wrt[n] = c->w[k];
            acc[n++] = l->params[k].grad;
        }
    ct_tape_backward_into(c->tape, c->out, io->dout, n, wrt, acc);
    drop_tape(c);
}

static void capi_destroy(ct_layer *l)
{
    capi_layer *c = (capi_layer *)l;
    drop_tape(c);
    if (def_of(l)->destroy && c->state) def_of(l)->destroy(c->state);
    free(c->state);
}

/* ---- registration ------------------------------------------------------------------------ */
static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

/* A public key definition in the library's form; names that say what
 * they hold get the library's value checks. */
static ct_layer_key key_of(const ct_key_def *k)
{
    ct_layer_key o = {.name = k->name, .kind = (ct_key_kind)k->type, .def = k->def, .lo = k->lo, .hi = k->hi,
                      .doc = k->doc ? k->doc : ""};
    o.flags = (k->required ? CT_KEY_REQUIRED : 0) | (k->has_range ? CT_KEY_RANGE : 0);
    if (k->type == CT_KEYTYPE_STRING || k->type == CT_KEYTYPE_STRINGS) {
        if (!strcmp(k->name, "activation")) o.check = ct_key_check_activation;
        else if (ends_with(k->name, "_initializer")) o.check = ct_key_check_initializer;
        else if (ends_with(k->name, "_regularizer")) o.check = ct_key_check_regularizer;
    }
    return o;
}
ct_status ct_register_layer(const ct_layer_def *def)
{
    if (!def || !def->type || !*def->type)
        return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: the definition needs a type name");
    if (!def->build)
        return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: layer type '%s' needs build()", def->type);
    if (!def->call && !(def->forward && def->backward))
        return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: layer type '%s' needs call() or forward() and backward()",
                       def->type);
    ct_register_builtins();
    int slot = n_types;
    for (int i = 0; i < n_types; i++)
        if (!strcmp(types[i].def.type, def->type)) slot = i;
    if (slot == CAPI_MAX_TYPES)
        return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: at most %d layer types can be registered", CAPI_MAX_TYPES);
    capi_type *t = &types[slot];
    int nk = 0;
    for (const ct_key_def *k = def->keys; k && k->name; k++) {
        if (nk == CAPI_MAX_KEYS)
            return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: layer type '%s' has more than %d keys", def->type,
                           CAPI_MAX_KEYS);
        if ((unsigned)k->type > CT_KEYTYPE_STRINGS)
            return CT_FAIL(CT_ERR_USAGE, "ct_register_layer: layer type '%s': key '%s' has no valid type", def->type,
                           k->name);
        t->keys[nk++] = key_of(k);
    }
    t->keys[nk] = (ct_layer_key){0};
    t->def = *def;
    t->vt = (ct_layer_type){
        .name = def->type, .keras_class = def->keras_class ? def->keras_class : def->type, .keys = t->keys,
        .size = sizeof(capi_layer), .min_inputs = def->min_inputs > 0 ? def->min_inputs : 1,
        .max_inputs = def->max_inputs > 0 ? def->max_inputs : 1, .init = capi_init, .infer = capi_infer,
        .forward = capi_forward, .backward = capi_backward, .destroy = capi_destroy};
    if (t->vt.max_inputs > CT_LAYER_MAX_INPUTS) t->vt.max_inputs = CT_LAYER_MAX_INPUTS;
    CT_TRY(ct_layer_register(&t->vt));
    if (slot == n_types) n_types++;
    return CT_OK;
}

/* ---- inside the callbacks ------------------------------------------------------------------- */
const char *ct_layer_name(const ct_layer *l) { return l ? l->name : ""; }
int ct_layer_input_count(const ct_layer *l) { return l ? l->n_in : 0; }

int ct_layer_input_rank(const ct_layer *l, int input)
{
    return l && input >= 0 && input < l->n_in ? l->in_shape[input].rank : 0;
}

int64_t ct_layer_input_dim(const ct_layer *l, int input, int axis)
{
    if (!l || input < 0 || input >= l->n_in) return 0;
    const ct_shape *s = &l->in_shape[input];
    if (axis < 0) axis += s->rank;
    return axis >= 0 && axis < s->rank ? s->dims[axis] : 0;
}

ct_status ct_layer_set_output_shape(ct_layer *l, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > CT_MAX_DIMS - 1 || (rank && !dims))
        return ct_layer_fail(l, CT_ERR_USAGE, "output rank %d is outside [0, %d]", rank, CT_MAX_DIMS - 1);
    for (int i = 0; i < rank; i++)
        if (dims[i] < 1) return ct_layer_fail(l, CT_ERR_SHAPE, "output dimension %d is %lld, expected >= 1", i, (long long)dims[i]);
    l->out_shape = ct_shape_make(rank, dims);
    return CT_OK;
}

int ct_layer_add_weight(ct_layer *l, const char *name, int rank, const int64_t *dims, const char *initializer,
                        const char *regularizer, int trainable)
{
    ct_initializer init = {0};
    ct_regularizer reg = {0};
    if (!name || !*name || rank < 0 || rank > CT_MAX_DIMS || (rank && !dims)) {
        ct_layer_fail(l, CT_ERR_USAGE, "add_weight: needs a name and a rank in [0, %d]", CT_MAX_DIMS);
        return -1;
    }
    if (initializer && ct_layer_parse_init(l, name, initializer, &init) != CT_OK) return -1;
    if (regularizer && ct_layer_parse_reg(l, name, regularizer, &reg) != CT_OK) return -1;
    int k = ct_layer_add_param(l, name, ct_shape_make(rank, dims), &init, &reg, trainable);
    if (k < 0) ct_layer_fail(l, CT_ERR_USAGE, "add_weight '%s': at most %d weights per layer", name, CT_LAYER_MAX_PARAMS);
    return k;
}

float *ct_layer_weight(ct_layer *l, int index)
{
    return l && index >= 0 && index < l->n_params ? l->params[index].value : NULL;
}

float *ct_layer_weight_grad(ct_layer *l, int index)
{
    return l && index >= 0 && index < l->n_params ? l->params[index].grad : NULL;
}

ct_status ct_layer_fail(const ct_layer *l, ct_status s, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ct_error_set(s, __FILE__, __LINE__, "%s '%s': %s", l && l->type ? l->type->name : "layer",
                        l ? l->name : "?", msg);
}

/* Config keys: through the per-layer key tables (layer.h). */
static const ct_layer_config *cfg_of(const ct_layer *l)
{
    return l ? ((const capi_layer *)l)->cfg : NULL;
}

static ct_status outside_init(const ct_layer *l, const char *key)
{
    return ct_layer_fail(l, CT_ERR_RUNTIME, "key '%s' read outside init()", key);
}

ct_status ct_layer_key_int(const ct_layer *l, const char *key, int64_t *out)
{
    return cfg_of(l) ? ct_layer_arg_int(l, cfg_of(l), key, out) : outside_init(l, key);
}

ct_status ct_layer_key_float(const ct_layer *l, const char *key, double *out)
{
    return cfg_of(l) ? ct_layer_arg_float(l, cfg_of(l), key, out) : outside_init(l, key);
}

ct_status ct_layer_key_bool(const ct_layer *l, const char *key, int *out)
{
    return cfg_of(l) ? ct_layer_arg_bool(l, cfg_of(l), key, out) : outside_init(l, key);
}

ct_status ct_layer_key_string(const ct_layer *l, const char *key, const char **out)
{
    return cfg_of(l) ? ct_layer_arg_string(l, cfg_of(l), key, out) : outside_init(l, key);
}
