/* Finite-difference gradient checks for a single layer, shared by the
 * layer tests. A layer runs alone on random inputs; the loss is
 * sum(act(z) * R) for a fixed random R, accumulated in double; backward's
 * input and parameter gradients are compared with central differences. */
#ifndef CT_LAYER_HARNESS_H
#define CT_LAYER_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "ops.h"
#include "rng.h"

typedef struct harness {
    ct_layer *l;
    int64_t batch;
    int training;
    float *in[CT_LAYER_MAX_INPUTS], *din[CT_LAYER_MAX_INPUTS];
    int64_t in_n[CT_LAYER_MAX_INPUTS];
    float *z, *y, *r, *dy, *saved, *scratch;
    float *values, *grads;
    int64_t out_n;
    const float *mask;  /* input 0's mask (batch x T), or NULL */
    float *out_mask;    /* where a mask-making layer writes its mask, or NULL */
} harness;

typedef struct gradcheck_opts {
    int training;       /* io->training (1 unless testing inference) */
    int distinct;       /* inputs 0.05 apart: a probe never changes a max-pool winner */
    int twice;          /* run backward twice and halve: checks accumulation */
    double eps, tol;    /* defaults 1e-2, 2e-3 */
    float lo, hi;       /* input range, default [-2, 2] */
} gradcheck_opts;

static uint64_t harness_draws = 1;

static inline void random_fill(float *v, int64_t n, float lo, float hi)
{
    ct_rng r = ct_rng_make(7, CT_RNG_TEST, harness_draws++);
    ct_rng_fill_uniform(&r, 0, lo, hi, v, n);
}

static inline void distinct_fill(float *v, int64_t n)
{
    ct_rng r = ct_rng_make(7, CT_RNG_TEST, harness_draws++);
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
    ct_rng_permutation(&r, perm, n);
    for (int64_t i = 0; i < n; i++) v[i] = 0.05f * (float)(perm[i] - n / 2);
    free(perm);
}

static inline ct_layer_config base_cfg(void)
{
    ct_layer_config c;
    ctrain__layer_config__init(&c);
    return c;
}

static inline void layer_free(ct_layer *l)
{
    if (!l) return;
    if (l->type->destroy) l->type->destroy(l);
    free(l);
}

/* A layer of `type` on n_in inputs of the given shapes, or NULL (the error
 * record says why). */
static inline ct_layer *make_layer(const char *type, const ct_layer_config *cfg, const ct_shape *in, int n_in)
{
    const ct_layer_type *t = ct_layer_type_find(type);
    if (!t) {
        fprintf(stderr, "layer type %s is not registered\n", type);
        return NULL;
    }
    ct_layer *l = calloc(1, t->size);
    l->type = t;
    snprintf(l->name, sizeof l->name, "%s_test", type);
    ct_error_clear();
    if (t->init(l, cfg) != CT_OK) {
        layer_free(l);
        return NULL;
    }
    l->n_in = n_in;
    for (int i = 0; i < n_in; i++) l->in_shape[i] = in[i];
    if (t->infer(l) != CT_OK) {
        layer_free(l);
        return NULL;
    }
    return l;
}

static inline void harness_setup(harness *h, ct_layer *l, int64_t batch, const gradcheck_opts *o)
{
    memset(h, 0, sizeof *h);
    h->l = l;
    h->batch = batch;
    h->training = o ? o->training : 1;
    float lo = o && o->hi > o->lo ? o->lo : -2, hi = o && o->hi > o->lo ? o->hi : 2;
    for (int i = 0; i < l->n_in; i++) {
        h->in_n[i] = batch * ct_shape_numel(&l->in_shape[i]);
        h->in[i] = malloc(sizeof(float) * (size_t)h->in_n[i]);
        h->din[i] = calloc((size_t)h->in_n[i], sizeof(float));
        if (o && o->distinct) distinct_fill(h->in[i], h->in_n[i]);
        else random_fill(h->in[i], h->in_n[i], lo, hi);
    }
    h->out_n = batch * ct_shape_numel(&l->out_shape);
    h->z = calloc((size_t)h->out_n, sizeof(float));
    h->y = calloc((size_t)h->out_n, sizeof(float));
    h->r = malloc(sizeof(float) * (size_t)h->out_n);
    random_fill(h->r, h->out_n, -1, 1);
    /* With a linear activation dL/dz is R itself: tests may set R and call
     * backward directly. */
    h->dy = l->act == CT_ACT_LINEAR ? h->r : calloc((size_t)h->out_n, sizeof(float));
    /* Exactly what the graph gives: batch x per-sample sizes. */
    h->saved = calloc((size_t)(batch * l->saved_per_sample + 1), sizeof(float));
    h->scratch = calloc((size_t)(batch * l->scratch_per_sample + 1), sizeof(float));
    int64_t total = 0;
    for (int k = 0; k < l->n_params; k++) total += ct_shape_numel(&l->params[k].shape);
    h->values = malloc(sizeof(float) * (size_t)(total + 1));
    h->grads = calloc((size_t)(total + 1), sizeof(float));
    random_fill(h->values, total, -0.5f, 0.5f);
    int64_t off = 0;
    for (int k = 0; k < l->n_params; k++) {
        l->params[k].value = h->values + off;
        l->params[k].grad = h->grads + off;
        off += ct_shape_numel(&l->params[k].shape);
    }
}

/* Frees the buffers; the layer stays the caller's. */
static inline void harness_free(harness *h)
{
    for (int i = 0; i < h->l->n_in; i++) {
        free(h->in[i]);
        free(h->din[i]);
    }
    if (h->dy != h->r) free(h->dy);
    free(h->z), free(h->y), free(h->r), free(h->saved), free(h->scratch);
    free(h->values), free(h->grads);
}

static inline void teardown(harness *h)
{
    harness_free(h);
    layer_free(h->l);
}

static inline void io_for(harness *h, ct_layer_io *io)
{
    memset(io, 0, sizeof *io);
    io->batch = h->batch;
    io->n_in = h->l->n_in;
    for (int i = 0; i < h->l->n_in; i++) {
        io->in[i] = h->in[i];
        io->din[i] = h->din[i];
    }
    io->out = h->z;
    io->dout = h->dy;
    io->saved = h->saved;
    io->scratch = h->scratch;
    io->training = h->training;
    io->step = 3;
    io->seed = 11;
    io->in_mask[0] = h->mask;
    io->out_mask = h->out_mask;
}

static inline int64_t harness_cols(const ct_layer *l) { return l->out_shape.dims[l->out_shape.rank - 1]; }

/* sum(act(z) * R), the activation applied as the graph does. */
static inline double loss_of(harness *h)
{
    ct_layer_io io;
    io_for(h, &io);
    h->l->type->forward(h->l, &io);
    ct_op_activation_fwd(h->l->act, h->z, h->y, h->out_n / harness_cols(h->l), harness_cols(h->l));
    double s = 0;
    for (int64_t i = 0; i < h->out_n; i++) s += (double)h->y[i] * h->r[i];
    return s;
}

/* Forward, then backward from dL/dy = R into zeroed gradients (twice:
 * the gradients accumulate, to be halved by the caller). */
static inline void analytic(harness *h, int twice)
{
    loss_of(h);
    ct_layer_io io;
    io_for(h, &io);
    for (int i = 0; i < h->l->n_in; i++) memset(h->din[i], 0, sizeof(float) * (size_t)h->in_n[i]);
    for (int k = 0; k < h->l->n_params; k++)
        memset(h->l->params[k].grad, 0, sizeof(float) * (size_t)ct_shape_numel(&h->l->params[k].shape));
    ct_op_activation_bwd(h->l->act, h->z, h->y, h->r, h->dy, h->out_n / harness_cols(h->l), harness_cols(h->l));
    h->l->type->backward(h->l, &io);
    if (twice) h->l->type->backward(h->l, &io);
}

/* Analytic g against central differences of every element of v. */
static inline int check_array(harness *h, float *v, const float *g, int64_t n, const char *what, double eps, double tol)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + (float)eps;
        double lp = loss_of(h);
        v[i] = keep - (float)eps;
        double lm = loss_of(h);
        v[i] = keep;
        double num = (lp - lm) / (2 * eps);
        if (fabs(num - g[i]) > tol * (1 + fabs(num))) {
            if (bad < 3)
                fprintf(stderr, "  %s %s[%lld]: analytic %.6g numeric %.6g\n", h->l->name, what, (long long)i, g[i], num);
            bad++;
        }
    }
    return bad;
}

/* Input and trainable-parameter gradients of a prepared harness. */
static inline int gradcheck_harness(harness *h, const gradcheck_opts *o)
{
    double eps = o && o->eps > 0 ? o->eps : 1e-2, tol = o && o->tol > 0 ? o->tol : 2e-3;
    int twice = o && o->twice;
    float scale = twice ? 0.5f : 1.0f;
    analytic(h, twice);
    int bad = 0;
    for (int i = 0; i < h->l->n_in; i++) {
        float *g = malloc(sizeof(float) * (size_t)h->in_n[i]);
        for (int64_t k = 0; k < h->in_n[i]; k++) g[k] = h->din[i][k] * scale;
        bad += check_array(h, h->in[i], g, h->in_n[i], "input", eps, tol);
        free(g);
    }
    for (int k = 0; k < h->l->n_params; k++) {
        ct_layer_param *p = &h->l->params[k];
        if (!p->trainable) continue; /* moving statistics get no gradient */
        int64_t n = ct_shape_numel(&p->shape);
        float *g = malloc(sizeof(float) * (size_t)n);
        for (int64_t j = 0; j < n; j++) g[j] = p->grad[j] * scale;
        bad += check_array(h, p->value, g, n, p->name, eps, tol);
        free(g);
    }
    return bad;
}

/* Builds buffers for l, checks, frees l. NULL l counts as a failure. */
static inline int gradcheck_layer(ct_layer *l, int64_t batch, const gradcheck_opts *o)
{
    if (!l) {
        fprintf(stderr, "  layer not built: %s\n", ct_error_message());
        return 1;
    }
    harness h;
    harness_setup(&h, l, batch, o);
    int bad = gradcheck_harness(&h, o);
    teardown(&h);
    return bad;
}

#endif
