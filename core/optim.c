/* Optimizers with tf.keras 2.11 semantics (the "new" optimizer classes in
 * keras/optimizers/optimizer_experimental/): the same update formulas,
 * defaults, slot variables and gradient-clipping rules.
 *
 * A step is Keras's apply_gradients: clip the gradient, apply decoupled
 * weight decay (w -= lr * weight_decay * w, any optimizer, as the 2.11
 * base class does), run the per-element update, count the iteration.
 * Element loops are float32 like Keras; per-step scalars (Adam's bias
 * correction) and norms are computed in double. */
#include "optim.h"
#include "reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

/* Below this many elements a loop runs on one thread: waking the team
 * costs more than the arithmetic. */
#define CT_OPT_PAR_MIN 32768

#define CT_OPT_MAX_SLOTS 3

static const char *const optim_names[CT_OPT_COUNT] = {
    [CT_OPT_SGD] = "sgd",         [CT_OPT_ADAM] = "adam",       [CT_OPT_ADAMW] = "adamw",
    [CT_OPT_RMSPROP] = "rmsprop", [CT_OPT_ADAGRAD] = "adagrad",
};

/* The constructor defaults of the Keras 2.11 classes. Fields an optimizer
 * does not take stay 0. */
static const ct_optim_config optim_defaults[CT_OPT_COUNT] = {
    [CT_OPT_SGD] = {.kind = CT_OPT_SGD, .learning_rate = 0.01},
    [CT_OPT_ADAM] = {.kind = CT_OPT_ADAM, .learning_rate = 0.001, .beta_1 = 0.9,
                     .beta_2 = 0.999, .epsilon = 1e-7},
    [CT_OPT_ADAMW] = {.kind = CT_OPT_ADAMW, .learning_rate = 0.001, .beta_1 = 0.9,
                      .beta_2 = 0.999, .epsilon = 1e-7, .weight_decay = 0.004},
    [CT_OPT_RMSPROP] = {.kind = CT_OPT_RMSPROP, .learning_rate = 0.001, .rho = 0.9,
                        .epsilon = 1e-7},
    [CT_OPT_ADAGRAD] = {.kind = CT_OPT_ADAGRAD, .learning_rate = 0.001,
                        .initial_accumulator_value = 0.1, .epsilon = 1e-7},
};

const char *const *ct_optim_names(int *n)
{
    *n = CT_OPT_COUNT;
    return optim_names;
}

ct_status ct_optim_defaults(const char *name, ct_optim_config *cfg)
{
    /* Keras lower-cases the class name before looking it up, so "Adam",
     * "RMSprop" and "SGD" are accepted too. */
    for (int k = 0; name && k < CT_OPT_COUNT; k++)
        if (strcasecmp(name, optim_names[k]) == 0) {
            *cfg = optim_defaults[k];
            return CT_OK;
        }
    const char *near = name ? ct_nearest_name(name, optim_names, CT_OPT_COUNT) : NULL;
    return CT_FAIL(CT_ERR_CONFIG,
                   "unknown optimizer '%s': known are sgd, adam, adamw, rmsprop, adagrad%s%s%s",
                   name ? name : "(null)", near ? "; did you mean '" : "", near ? near : "",
                   near ? "'?" : "");
}

/* The slot variables of an optimizer, in slab order, named as Keras names
 * them (add_variable_from_reference). Returns how many. Keras's SGD always
 * keeps a momentum slot; we keep it only when momentum > 0, where it
 * matters, since with momentum 0 it is just -lr * g. */
static int slot_names(const ct_optim_config *c, const char *names[CT_OPT_MAX_SLOTS])
{
    int k = 0;
    switch (c->kind) {
    case CT_OPT_SGD:
        if (c->momentum > 0) names[k++] = "momentum";
        break;
    case CT_OPT_ADAM:
    case CT_OPT_ADAMW:
        names[k++] = "m";
        names[k++] = "v";
        if (c->amsgrad) names[k++] = "vhat";
        break;
    case CT_OPT_RMSPROP:
        names[k++] = "velocity";
        if (c->momentum > 0) names[k++] = "momentum";
        if (c->centered) names[k++] = "average_gradient";
        break;
    case CT_OPT_ADAGRAD:
        names[k++] = "accumulator";
        break;
    default:
        break;
    }
    return k;
}

const char *ct_optimizer_slot_name(const ct_optimizer *opt, int slot)
{
    const char *names[CT_OPT_MAX_SLOTS];
    int n = slot_names(&opt->cfg, names);
    return slot >= 0 && slot < n ? names[slot] : NULL;
}

static ct_status check_config(const ct_optim_config *c)
{
    const char *name = (unsigned)c->kind < CT_OPT_COUNT ? optim_names[c->kind] : NULL;
    if (!name)
        return CT_FAIL(CT_ERR_CONFIG, "optimizer kind %d is not one of sgd, adam, adamw, rmsprop, adagrad",
                       (int)c->kind);
    /* Both are norms of the same gradient; Keras refuses the pair too. */
    if (c->clipnorm > 0 && c->global_clipnorm > 0)
        return CT_FAIL(CT_ERR_CONFIG,
                       "optimizer %s: at most one of clipnorm and global_clipnorm can be set "
                       "(clipnorm=%g, global_clipnorm=%g)",
                       name, c->clipnorm, c->global_clipnorm);
    if (c->kind == CT_OPT_SGD && (c->momentum < 0 || c->momentum > 1))
        return CT_FAIL(CT_ERR_CONFIG, "optimizer sgd: momentum must be in [0, 1], got %g", c->momentum);
    if (c->kind == CT_OPT_RMSPROP && c->momentum < 0)
        return CT_FAIL(CT_ERR_CONFIG, "optimizer rmsprop: momentum must be >= 0, got %g", c->momentum);
    if (c->weight_decay < 0)
        return CT_FAIL(CT_ERR_CONFIG, "optimizer %s: weight_decay must be >= 0, got %g", name,
                       c->weight_decay);
    return CT_OK;
}

ct_status ct_optimizer_create(const ct_optim_config *cfg, int64_t n, ct_optimizer **out)
{
    *out = NULL;
    if (n < 0) return CT_FAIL(CT_ERR_USAGE, "optimizer: %lld parameters", (long long)n);
    CT_TRY(check_config(cfg));
    ct_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt) return CT_FAIL(CT_ERR_NOMEM, "optimizer: out of memory");
    const char *names[CT_OPT_MAX_SLOTS];
    opt->cfg = *cfg;
    opt->n = n;
    opt->n_slots = slot_names(cfg, names);
    size_t count = (size_t)opt->n_slots * (size_t)n;
    if (count > 0) {
        /* aligned_alloc wants a size that is a multiple of the alignment. */
        size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
        opt->slots = aligned_alloc(64, bytes);
        if (!opt->slots) {
            int n_slots = opt->n_slots;
            free(opt);
            return CT_FAIL(CT_ERR_NOMEM, "optimizer %s: cannot allocate %d slots of %lld floats",
                           optim_names[cfg->kind], n_slots, (long long)n);
        }
        memset(opt->slots, 0, count * sizeof(float));
        /* Keras initialises Adagrad's accumulator to a constant, so that
         * the first steps are not divided by ~sqrt(epsilon). */
        if (cfg->kind == CT_OPT_ADAGRAD) {
            float a0 = (float)cfg->initial_accumulator_value;
            for (int64_t i = 0; i < n; i++) opt->slots[i] = a0;
        }
    }
    *out = opt;
    return CT_OK;
}

void ct_optimizer_destroy(ct_optimizer *opt)
{
    if (!opt) return;
    free(opt->slots);
    free(opt);
}

/* ---- gradient clipping ------------------------------------------------ */

/* In fixed blocks (core/reduce.h): the norm, and so the clipped step, is
 * the same for any thread count. */
static double sum_squares(const float *g, int64_t n)
{
    int64_t bs = ct_reduce_block(n, 1024), nb = ct_reduce_nblocks(n, bs);
    double part[CT_REDUCE_BLOCKS];
#pragma omp parallel for schedule(static) if (n >= CT_OPT_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t end = (b + 1) * bs < n ? (b + 1) * bs : n;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = b * bs; i < end; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    return ct_reduce_sum(part, nb);
}

static void scale(float *g, int64_t n, float s)
{
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) g[i] *= s;
}

/* tf.clip_by_norm: rescale only when the norm exceeds the limit. */
static void clip_by_norm(float *g, int64_t n, double limit)
{
    double norm = sqrt(sum_squares(g, n));
    if (norm > limit) scale(g, n, (float)(limit / norm));
}

/* Comparisons rather than fminf/fmaxf so that a NaN stays NaN and the
 * caller's NaN guard still sees it. */
static void clip_by_value(float *g, int64_t n, float v)
{
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) g[i] = g[i] > v ? v : (g[i] < -v ? -v : g[i]);
}

/* Keras's _clip_gradients: the first of clipnorm, global_clipnorm,
 * clipvalue that is set wins; the others are not applied. */
static void clip_gradients(const ct_optim_config *c, float *g, int64_t n, const ct_segment *segs,
                           int n_segs)
{
    if (c->clipnorm > 0) {
        if (!segs || n_segs <= 0) {
            clip_by_norm(g, n, c->clipnorm);
            return;
        }
        for (int s = 0; s < n_segs; s++) clip_by_norm(g + segs[s].offset, segs[s].size, c->clipnorm);
    } else if (c->global_clipnorm > 0) {
        clip_by_norm(g, n, c->global_clipnorm);
    } else if (c->clipvalue > 0) {
        clip_by_value(g, n, (float)c->clipvalue);
    }
}

/* ---- update rules (dense branches of the Keras update_step) ----------- */

static float *slot(ct_optimizer *opt, int k) { return opt->slots + (int64_t)k * opt->n; }

static void step_sgd(ct_optimizer *opt, float *restrict w, const float *restrict g, double lr)
{
    const int64_t n = opt->n;
    const float flr = (float)lr, mu = (float)opt->cfg.momentum;
    if (opt->n_slots == 0) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) w[i] -= flr * g[i];
        return;
    }
    float *restrict m = slot(opt, 0);
    const int nesterov = opt->cfg.nesterov;
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        m[i] = mu * m[i] - flr * g[i];
        w[i] += nesterov ? mu * m[i] - flr * g[i] : m[i];
    }
}

static void step_adam(ct_optimizer *opt, float *restrict w, const float *restrict g, double lr)
{
    const ct_optim_config *c = &opt->cfg;
    const int64_t n = opt->n;
    const double t = (double)(opt->iterations + 1);
    const float alpha = (float)(lr * sqrt(1 - pow(c->beta_2, t)) / (1 - pow(c->beta_1, t)));
    const float one_b1 = (float)(1 - c->beta_1), one_b2 = (float)(1 - c->beta_2);
    const float eps = (float)c->epsilon;
    float *restrict m = slot(opt, 0), *restrict v = slot(opt, 1);
    if (!c->amsgrad) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            m[i] += (g[i] - m[i]) * one_b1;
            v[i] += (g[i] * g[i] - v[i]) * one_b2;
            w[i] -= (m[i] * alpha) / (sqrtf(v[i]) + eps);
        }
        return;
    }
    /* amsgrad divides by the running maximum of v instead of v. */
    float *restrict vhat = slot(opt, 2);
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * one_b1;
        v[i] += (g[i] * g[i] - v[i]) * one_b2;
        vhat[i] = vhat[i] > v[i] ? vhat[i] : v[i];
        w[i] -= (m[i] * alpha) / (sqrtf(vhat[i]) + eps);
    }
}

static void step_rmsprop(ct_optimizer *opt, float *restrict w, const float *restrict g, double lr)
{
    const ct_optim_config *c = &opt->cfg;
    const int64_t n = opt->n;
    const float flr = (float)lr, rho = (float)c->rho, one_rho = (float)(1 - c->rho);
    const float eps = (float)c->epsilon, mu = (float)c->momentum;
    int k = 0;
    float *restrict v = slot(opt, k++);
    float *restrict mom = c->momentum > 0 ? slot(opt, k++) : NULL;
    float *restrict mg = c->centered ? slot(opt, k++) : NULL;
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        v[i] = rho * v[i] + one_rho * g[i] * g[i];
        float denom = v[i] + eps; /* Keras puts epsilon inside the sqrt */
        if (mg) {
            mg[i] = rho * mg[i] + one_rho * g[i];
            denom = v[i] - mg[i] * mg[i] + eps;
        }
        float inc = flr * g[i] / sqrtf(denom);
        if (mom) {
            mom[i] = mu * mom[i] + inc;
            inc = mom[i];
        }
        w[i] -= inc;
    }
}

static void step_adagrad(ct_optimizer *opt, float *restrict w, const float *restrict g, double lr)
{
    const int64_t n = opt->n;
    const float flr = (float)lr, eps = (float)opt->cfg.epsilon;
    float *restrict acc = slot(opt, 0);
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        acc[i] += g[i] * g[i];
        w[i] -= flr * g[i] / sqrtf(acc[i] + eps);
    }
}

typedef void (*step_fn)(ct_optimizer *, float *restrict, const float *restrict, double);

static const step_fn step_fns[CT_OPT_COUNT] = {
    [CT_OPT_SGD] = step_sgd,         [CT_OPT_ADAM] = step_adam,       [CT_OPT_ADAMW] = step_adam,
    [CT_OPT_RMSPROP] = step_rmsprop, [CT_OPT_ADAGRAD] = step_adagrad,
};

/* Decoupled weight decay, applied after clipping and before the update,
 * as Keras 2.11's _apply_weight_decay. AdamW is Adam with a default
 * weight_decay; any optimizer given one decays the same way. */
static void decay_weights(float *w, int64_t n, double lr, double wd)
{
    const float f = (float)(lr * wd);
#pragma omp parallel for simd schedule(static) if (parallel : n >= CT_OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) w[i] -= w[i] * f;
}

void ct_optimizer_step(ct_optimizer *opt, float *w, float *g, const ct_segment *segs, int n_segs,
                       double lr)
{
    clip_gradients(&opt->cfg, g, opt->n, segs, n_segs);
    if (opt->cfg.weight_decay > 0) decay_weights(w, opt->n, lr, opt->cfg.weight_decay);
    step_fns[opt->cfg.kind](opt, w, g, lr);
    opt->iterations++;
}
