/* Optimizer tests: every optimizer and option against a plain double
 * transcription of the Keras 2.11 update rules for three steps, literal
 * first steps derived by hand (some are the examples in the Keras
 * docstrings), clipping, defaults and configuration errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "optim.h"

/* ---- reference: the Keras formulas, one element at a time, in double -- */

#define MAXN 8

typedef struct ref_state {
    double m[MAXN], v[MAXN], vhat[MAXN], mom[MAXN], avg[MAXN], acc[MAXN];
    long t; /* steps taken */
} ref_state;

static void ref_init(const ct_optim_config *c, ref_state *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < MAXN; i++) s->acc[i] = c->initial_accumulator_value;
}

static double ref_norm(const double *g, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += g[i] * g[i];
    return sqrt(s);
}

/* Keras _clip_gradients: only the first configured option applies. */
static void ref_clip(const ct_optim_config *c, double *g, int n, const ct_segment *segs, int n_segs)
{
    if (c->clipnorm > 0) {
        for (int s = 0; s < n_segs; s++) {
            double *gs = g + segs[s].offset;
            double norm = ref_norm(gs, (int)segs[s].size);
            if (norm > c->clipnorm)
                for (int i = 0; i < segs[s].size; i++) gs[i] *= c->clipnorm / norm;
        }
    } else if (c->global_clipnorm > 0) {
        double norm = ref_norm(g, n);
        if (norm > c->global_clipnorm)
            for (int i = 0; i < n; i++) g[i] *= c->global_clipnorm / norm;
    } else if (c->clipvalue > 0) {
        for (int i = 0; i < n; i++) g[i] = fmin(fmax(g[i], -c->clipvalue), c->clipvalue);
    }
}

static void ref_sgd(const ct_optim_config *c, ref_state *s, double *w, const double *g, int i, double lr)
{
    if (c->momentum == 0) {
        w[i] = w[i] - lr * g[i];
        return;
    }
    s->mom[i] = c->momentum * s->mom[i] - lr * g[i];
    if (c->nesterov)
        w[i] = w[i] + c->momentum * s->mom[i] - lr * g[i];
    else
        w[i] = w[i] + s->mom[i];
}

static void ref_adam(const ct_optim_config *c, ref_state *s, double *w, const double *g, int i, double lr)
{
    double t = (double)(s->t + 1);
    s->m[i] = c->beta_1 * s->m[i] + (1 - c->beta_1) * g[i];
    s->v[i] = c->beta_2 * s->v[i] + (1 - c->beta_2) * g[i] * g[i];
    double v = s->v[i];
    if (c->amsgrad) {
        s->vhat[i] = fmax(s->vhat[i], s->v[i]);
        v = s->vhat[i];
    }
    double alpha = lr * sqrt(1 - pow(c->beta_2, t)) / (1 - pow(c->beta_1, t));
    w[i] = w[i] - alpha * s->m[i] / (sqrt(v) + c->epsilon);
}

static void ref_rmsprop(const ct_optim_config *c, ref_state *s, double *w, const double *g, int i,
                        double lr)
{
    s->v[i] = c->rho * s->v[i] + (1 - c->rho) * g[i] * g[i];
    double denominator = s->v[i] + c->epsilon;
    if (c->centered) {
        s->avg[i] = c->rho * s->avg[i] + (1 - c->rho) * g[i];
        denominator = s->v[i] - s->avg[i] * s->avg[i] + c->epsilon;
    }
    double increment = lr * g[i] / sqrt(denominator);
    if (c->momentum > 0) {
        s->mom[i] = c->momentum * s->mom[i] + increment;
        w[i] = w[i] - s->mom[i];
    } else {
        w[i] = w[i] - increment;
    }
}

static void ref_adagrad(const ct_optim_config *c, ref_state *s, double *w, const double *g, int i,
                        double lr)
{
    s->acc[i] = s->acc[i] + g[i] * g[i];
    w[i] = w[i] - lr * g[i] / sqrt(s->acc[i] + c->epsilon);
}

static void ref_step(const ct_optim_config *c, ref_state *s, double *w, double *g, int n,
                     const ct_segment *segs, int n_segs, double lr)
{
    ref_clip(c, g, n, segs, n_segs);
    for (int i = 0; i < n; i++) {
        if (c->weight_decay > 0) w[i] = w[i] - w[i] * c->weight_decay * lr;
        switch (c->kind) {
        case CT_OPT_SGD: ref_sgd(c, s, w, g, i, lr); break;
        case CT_OPT_ADAM: case CT_OPT_ADAMW: ref_adam(c, s, w, g, i, lr); break;
        case CT_OPT_RMSPROP: ref_rmsprop(c, s, w, g, i, lr); break;
        case CT_OPT_ADAGRAD: ref_adagrad(c, s, w, g, i, lr); break;
        default: break;
        }
    }
    s->t++;
}

/* ---- three steps of the library against the reference ----------------- */

/* The gradient of a quadratic bowl around `centre`, scaled differently on
 * each step so that moments, maxima and clipping all get exercised (the
 * large first step makes amsgrad's vhat differ from v later). */
static const double centre[MAXN] = {0.3, -1.2, 2.0, 0.0, -0.05, 1.5, -3.0, 0.7};
static const double step_scale[3] = {3.0, 0.2, 1.0};

static double grad_at(double w, int i, int step) { return step_scale[step] * (w - centre[i]) + 0.01 * i; }

static void check_three_steps(const char *what, const ct_optim_config *cfg, const ct_segment *segs,
                              int n_segs)
{
    const int n = 7;
    const double w0[MAXN] = {1.0, -0.5, 0.25, 2.0, -1.5, 0.0, 0.8, 0.0};
    const double lrs[3] = {0.1, 0.05, 0.1}; /* the lr argument wins over cfg */
    ct_segment whole = {0, n};
    if (!segs) segs = &whole, n_segs = 1;

    ct_optimizer *opt = NULL;
    ct_status st = ct_optimizer_create(cfg, n, &opt);
    CHECK_MSG(st == CT_OK, "%s: create: %s", what, ct_error_message());
    if (st != CT_OK) return;

    float w[MAXN], g[MAXN];
    double rw[MAXN], rg[MAXN];
    ref_state rs;
    ref_init(cfg, &rs);
    for (int i = 0; i < n; i++) w[i] = (float)w0[i], rw[i] = w0[i];

    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < n; i++) {
            g[i] = (float)grad_at(w[i], i, step);
            rg[i] = grad_at(rw[i], i, step);
        }
        ct_optimizer_step(opt, w, g, segs, n_segs, lrs[step]);
        ref_step(cfg, &rs, rw, rg, n, segs, n_segs, lrs[step]);
        for (int i = 0; i < n; i++)
            CHECK_MSG(fabs(w[i] - rw[i]) <= 2e-6 * fmax(1.0, fabs(rw[i])),
                      "%s: step %d, w[%d] = %.9g, reference %.9g", what, step + 1, i, w[i], rw[i]);
    }
    CHECK(opt->iterations == 3);
    ct_optimizer_destroy(opt);
}

static ct_optim_config defaults(const char *name)
{
    ct_optim_config c;
    ct_status st = ct_optim_defaults(name, &c);
    CHECK(st == CT_OK);
    return c;
}

static void test_against_reference(void)
{
    ct_optim_config c;

    check_three_steps("sgd", (c = defaults("sgd"), &c), NULL, 0);
    c = defaults("sgd"), c.momentum = 0.9;
    check_three_steps("sgd momentum", &c, NULL, 0);
    c = defaults("sgd"), c.momentum = 0.9, c.nesterov = 1;
    check_three_steps("sgd nesterov", &c, NULL, 0);
    c = defaults("sgd"), c.weight_decay = 0.1; /* 2.11: every optimizer takes weight_decay */
    check_three_steps("sgd weight_decay", &c, NULL, 0);

    check_three_steps("adam", (c = defaults("adam"), &c), NULL, 0);
    c = defaults("adam"), c.amsgrad = 1;
    check_three_steps("adam amsgrad", &c, NULL, 0);
    /* beta_2 = 0.5 lets v fall after the large first step, so vhat != v. */
    c = defaults("adam"), c.amsgrad = 1, c.beta_2 = 0.5, c.beta_1 = 0.5;
    check_three_steps("adam amsgrad beta_2=0.5", &c, NULL, 0);
    /* A large epsilon tells "sqrt(v) + eps" from "sqrt(v + eps)". */
    c = defaults("adam"), c.epsilon = 0.1;
    check_three_steps("adam epsilon=0.1", &c, NULL, 0);

    check_three_steps("adamw", (c = defaults("adamw"), &c), NULL, 0);
    c = defaults("adamw"), c.weight_decay = 0.5, c.amsgrad = 1, c.beta_2 = 0.5;
    check_three_steps("adamw weight_decay=0.5 amsgrad", &c, NULL, 0);

    check_three_steps("rmsprop", (c = defaults("rmsprop"), &c), NULL, 0);
    c = defaults("rmsprop"), c.momentum = 0.5;
    check_three_steps("rmsprop momentum", &c, NULL, 0);
    c = defaults("rmsprop"), c.centered = 1;
    check_three_steps("rmsprop centered", &c, NULL, 0);
    c = defaults("rmsprop"), c.centered = 1, c.momentum = 0.5, c.rho = 0.5;
    check_three_steps("rmsprop centered momentum rho=0.5", &c, NULL, 0);
    c = defaults("rmsprop"), c.epsilon = 0.1;
    check_three_steps("rmsprop epsilon=0.1", &c, NULL, 0);

    check_three_steps("adagrad", (c = defaults("adagrad"), &c), NULL, 0);
    c = defaults("adagrad"), c.epsilon = 0.1, c.initial_accumulator_value = 0.5;
    check_three_steps("adagrad epsilon=0.1 initial=0.5", &c, NULL, 0);

    /* Clipping, with two variables so that clipnorm is per variable: the
     * first segment's norm is about 3 on step one, the second's about 11. */
    ct_segment segs[2] = {{0, 3}, {3, 4}};
    c = defaults("sgd"), c.clipnorm = 2.0;
    check_three_steps("sgd clipnorm", &c, segs, 2);
    c = defaults("adam"), c.clipnorm = 2.0;
    check_three_steps("adam clipnorm", &c, segs, 2);
    c = defaults("sgd"), c.global_clipnorm = 2.0;
    check_three_steps("sgd global_clipnorm", &c, segs, 2);
    c = defaults("rmsprop"), c.global_clipnorm = 2.0, c.momentum = 0.9;
    check_three_steps("rmsprop global_clipnorm", &c, segs, 2);
    c = defaults("sgd"), c.clipvalue = 0.5;
    check_three_steps("sgd clipvalue", &c, segs, 2);
    c = defaults("adagrad"), c.clipvalue = 0.5;
    check_three_steps("adagrad clipvalue", &c, segs, 2);
    /* Keras applies only the first of clipnorm, global_clipnorm, clipvalue. */
    c = defaults("sgd"), c.clipnorm = 2.0, c.clipvalue = 0.1;
    check_three_steps("sgd clipnorm wins over clipvalue", &c, segs, 2);
    c = defaults("sgd"), c.global_clipnorm = 2.0, c.clipvalue = 0.1;
    check_three_steps("sgd global_clipnorm wins over clipvalue", &c, segs, 2);
}

/* ---- literal first steps, derived by hand ------------------------------ */

/* One step on a single weight `w` with gradient `g`; returns the new w. */
static float one_step(const ct_optim_config *c, float w, float g, double lr, float *slot0)
{
    ct_optimizer *opt = NULL;
    CHECK(ct_optimizer_create(c, 1, &opt) == CT_OK);
    if (!opt) return NAN;
    ct_optimizer_step(opt, &w, &g, NULL, 0, lr);
    if (slot0) *slot0 = opt->n_slots > 0 ? opt->slots[0] : NAN;
    ct_optimizer_destroy(opt);
    return w;
}

static void test_literals(void)
{
    ct_optim_config c;
    float s0;

    /* SGD, the Keras docstring: lr 0.1, loss w^2/2 so g = w = 1:
     * w = 1 - 0.1 * 1 = 0.9. */
    c = defaults("sgd");
    CHECK_NEAR(one_step(&c, 1.0f, 1.0f, 0.1, NULL), 0.9, 1e-7);

    /* SGD momentum 0.9, the docstring's two steps from w = 1, g = w:
     * m1 = -0.1 * 1 = -0.1, w1 = 0.9 (a step of 0.1);
     * m2 = 0.9 * -0.1 - 0.1 * 0.9 = -0.18, w2 = 0.72 (a step of 0.18). */
    c = defaults("sgd"), c.momentum = 0.9;
    {
        ct_optimizer *opt = NULL;
        CHECK(ct_optimizer_create(&c, 1, &opt) == CT_OK);
        float w = 1.0f, g = w;
        ct_optimizer_step(opt, &w, &g, NULL, 0, 0.1);
        CHECK_NEAR(w, 0.9, 1e-7);
        g = w;
        ct_optimizer_step(opt, &w, &g, NULL, 0, 0.1);
        CHECK_NEAR(w, 0.72, 1e-7);
        CHECK_NEAR(opt->slots[0], -0.18, 1e-7);
        ct_optimizer_destroy(opt);
    }

    /* SGD nesterov 0.9, w = 1, g = 0.5, lr 0.01: m = -0.005,
     * w = 1 + 0.9 * -0.005 - 0.005 = 0.9905. */
    c = defaults("sgd"), c.momentum = 0.9, c.nesterov = 1;
    CHECK_NEAR(one_step(&c, 1.0f, 0.5f, 0.01, NULL), 0.9905, 1e-7);

    /* Adam, the Keras docstring: lr 0.1, w = 10, g = 10.
     * m = 0.1 * 10 = 1, v = 0.001 * 100 = 0.1,
     * alpha = 0.1 * sqrt(1 - 0.999) / (1 - 0.9) = 0.1 * 0.0316228 / 0.1 = 0.0316228,
     * w = 10 - 0.0316228 * 1 / (0.3162278 + 1e-7) = 10 - 0.1 * (1 - 3.2e-7) = 9.9000000. */
    c = defaults("adam");
    CHECK_NEAR(one_step(&c, 10.0f, 10.0f, 0.1, NULL), 9.9, 2e-6);

    /* Adam defaults, w = 1, g = 0.5: sqrt(v) = sqrt(0.001) * 0.5 = 0.01581139,
     * step = 0.001 * 0.01581139 / (0.01581139 + 1e-7) = 0.000999993675,
     * w = 0.999000006. */
    c = defaults("adam");
    CHECK_NEAR(one_step(&c, 1.0f, 0.5f, 0.001, &s0), 0.999000006, 1e-7);
    CHECK_NEAR(s0, 0.05, 1e-9); /* m = 0.1 * g */

    /* AdamW defaults, w = 1, g = 0.5: decay first, w = 1 - 1 * 0.004 * 0.001
     * = 0.999996, then the Adam step above: 0.999996 - 0.000999993675
     * = 0.998996006. */
    c = defaults("adamw");
    CHECK_NEAR(one_step(&c, 1.0f, 0.5f, 0.001, NULL), 0.998996006, 1e-7);

    /* RMSprop, the Keras docstring: lr 0.1, w = 10, g = 10.
     * v = 0.1 * 100 = 10, w = 10 - 0.1 * 10 / sqrt(10 + 1e-7)
     * = 10 - 1 / 3.16227767 = 9.68377224. */
    c = defaults("rmsprop");
    CHECK_NEAR(one_step(&c, 10.0f, 10.0f, 0.1, &s0), 9.68377224, 2e-6);
    CHECK_NEAR(s0, 10.0, 1e-5);

    /* RMSprop centered, w = 1, g = 0.5, lr 0.001: v = 0.025, avg = 0.05,
     * denominator = 0.025 - 0.0025 + 1e-7 = 0.0225001, sqrt = 0.15000033,
     * w = 1 - 0.0005 / 0.15000033 = 1 - 0.00333332593 = 0.996666674. */
    c = defaults("rmsprop"), c.centered = 1;
    CHECK_NEAR(one_step(&c, 1.0f, 0.5f, 0.001, NULL), 0.996666674, 1e-7);

    /* Adagrad defaults, w = 1, g = 0.5: acc = 0.1 + 0.25 = 0.35,
     * w = 1 - 0.001 * 0.5 / sqrt(0.3500001) = 1 - 0.0005 / 0.59160806
     * = 1 - 0.000845154 = 0.999154846. */
    c = defaults("adagrad");
    CHECK_NEAR(one_step(&c, 1.0f, 0.5f, 0.001, &s0), 0.999154846, 1e-7);
    CHECK_NEAR(s0, 0.35, 1e-7);
}

static void test_clipping_literals(void)
{
    ct_optim_config c = defaults("sgd");
    ct_optimizer *opt = NULL;
    ct_segment segs[2] = {{0, 2}, {2, 1}};

    /* clipnorm 5 per variable: (3, 4) has norm 5, not above, kept; (12)
     * has norm 12 and becomes 5. SGD with lr 1 makes w = -g. */
    c.clipnorm = 5;
    CHECK(ct_optimizer_create(&c, 3, &opt) == CT_OK);
    float w[3] = {0, 0, 0}, g[3] = {3, 4, 12};
    ct_optimizer_step(opt, w, g, segs, 2, 1.0);
    CHECK_NEAR(w[0], -3, 1e-6);
    CHECK_NEAR(w[1], -4, 1e-6);
    CHECK_NEAR(w[2], -5, 1e-6);
    CHECK_NEAR(g[2], 5, 1e-6); /* clipped in place */
    ct_optimizer_destroy(opt);

    /* global_clipnorm 6.5: the norm of (3, 4, 12) is 13, so everything is
     * halved: (1.5, 2, 6). */
    c = defaults("sgd"), c.global_clipnorm = 6.5;
    CHECK(ct_optimizer_create(&c, 3, &opt) == CT_OK);
    float w2[3] = {0, 0, 0}, g2[3] = {3, 4, 12};
    ct_optimizer_step(opt, w2, g2, segs, 2, 1.0);
    CHECK_NEAR(w2[0], -1.5, 1e-6);
    CHECK_NEAR(w2[1], -2, 1e-6);
    CHECK_NEAR(w2[2], -6, 1e-6);
    ct_optimizer_destroy(opt);

    /* clipvalue 0.5: (3, -0.2, -4) becomes (0.5, -0.2, -0.5); NaN stays NaN. */
    c = defaults("sgd"), c.clipvalue = 0.5;
    CHECK(ct_optimizer_create(&c, 4, &opt) == CT_OK);
    float w3[4] = {0, 0, 0, 0}, g3[4] = {3, -0.2f, -4, NAN};
    ct_optimizer_step(opt, w3, g3, NULL, 0, 1.0);
    CHECK_NEAR(w3[0], -0.5, 1e-7);
    CHECK_NEAR(w3[1], 0.2, 1e-7);
    CHECK_NEAR(w3[2], 0.5, 1e-7);
    CHECK(isnan(w3[3]));
    ct_optimizer_destroy(opt);

    /* clipnorm without segments treats the slab as one variable. */
    c = defaults("sgd"), c.clipnorm = 6.5;
    CHECK(ct_optimizer_create(&c, 3, &opt) == CT_OK);
    float w4[3] = {0, 0, 0}, g4[3] = {3, 4, 12};
    ct_optimizer_step(opt, w4, g4, NULL, 0, 1.0);
    CHECK_NEAR(w4[2], -6, 1e-6);
    ct_optimizer_destroy(opt);
}

/* The threaded path (n above the one-thread threshold) against the
 * reference, element by element. */
static void test_large(void)
{
    const int64_t n = 100003;
    ct_optim_config c = defaults("rmsprop");
    c.momentum = 0.9, c.centered = 1, c.global_clipnorm = 50.0;
    ct_optimizer *opt = NULL;
    CHECK(ct_optimizer_create(&c, n, &opt) == CT_OK);
    float *w = malloc((size_t)n * sizeof *w), *g = malloc((size_t)n * sizeof *g);
    double *rw = malloc((size_t)n * sizeof *rw), *rg = malloc((size_t)n * sizeof *rg);
    double *v = calloc((size_t)n, sizeof *v), *avg = calloc((size_t)n, sizeof *avg),
           *mom = calloc((size_t)n, sizeof *mom);
    for (int64_t i = 0; i < n; i++) rw[i] = w[i] = (float)sin(0.001 * (double)i);
    for (int step = 0; step < 2; step++) {
        double norm2 = 0;
        for (int64_t i = 0; i < n; i++) {
            g[i] = (float)(rw[i] * (step + 1) - 0.1);
            rg[i] = g[i];
            norm2 += rg[i] * rg[i];
        }
        double f = sqrt(norm2) > 50.0 ? 50.0 / sqrt(norm2) : 1.0;
        ct_optimizer_step(opt, w, g, NULL, 0, 0.01);
        for (int64_t i = 0; i < n; i++) {
            double gi = rg[i] * f;
            v[i] = 0.9 * v[i] + 0.1 * gi * gi;
            avg[i] = 0.9 * avg[i] + 0.1 * gi;
            mom[i] = 0.9 * mom[i] + 0.01 * gi / sqrt(v[i] - avg[i] * avg[i] + 1e-7);
            rw[i] -= mom[i];
        }
    }
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(fabs(w[i] - rw[i]) <= 2e-5 * fmax(1.0, fabs(rw[i])));
    CHECK_MSG(bad == 0, "%d of %lld weights differ from the reference", bad, (long long)n);
    free(w), free(g), free(rw), free(rg), free(v), free(avg), free(mom);
    ct_optimizer_destroy(opt);
}

static void test_defaults(void)
{
    ct_optim_config c;
    c = defaults("sgd");
    CHECK(c.kind == CT_OPT_SGD && c.learning_rate == 0.01 && c.momentum == 0 && !c.nesterov);
    c = defaults("adam");
    CHECK(c.kind == CT_OPT_ADAM && c.learning_rate == 0.001 && c.beta_1 == 0.9 && c.beta_2 == 0.999 &&
          c.epsilon == 1e-7 && !c.amsgrad && c.weight_decay == 0);
    c = defaults("adamw");
    CHECK(c.kind == CT_OPT_ADAMW && c.learning_rate == 0.001 && c.beta_1 == 0.9 && c.beta_2 == 0.999 &&
          c.epsilon == 1e-7 && !c.amsgrad && c.weight_decay == 0.004);
    c = defaults("rmsprop");
    CHECK(c.kind == CT_OPT_RMSPROP && c.learning_rate == 0.001 && c.rho == 0.9 && c.momentum == 0 &&
          c.epsilon == 1e-7 && !c.centered);
    c = defaults("adagrad");
    CHECK(c.kind == CT_OPT_ADAGRAD && c.learning_rate == 0.001 && c.initial_accumulator_value == 0.1 &&
          c.epsilon == 1e-7);
    for (const char *const *p = (const char *const[]){"sgd", "adam", "adamw", "rmsprop", "adagrad", NULL}; *p;
         p++) {
        c = defaults(*p);
        CHECK(c.clipnorm == 0 && c.clipvalue == 0 && c.global_clipnorm == 0);
    }
    /* Keras lower-cases class names: "RMSprop" and "Adam" work. */
    CHECK(ct_optim_defaults("RMSprop", &c) == CT_OK && c.kind == CT_OPT_RMSPROP);
    CHECK(ct_optim_defaults("Adam", &c) == CT_OK && c.kind == CT_OPT_ADAM);

    int n;
    const char *const *names = ct_optim_names(&n);
    CHECK(n == CT_OPT_COUNT && strcmp(names[CT_OPT_ADAMW], "adamw") == 0);

    ct_error_clear();
    CHECK(ct_optim_defaults("adamm", &c) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "unknown optimizer 'adamm'");
    CHECK_STR_CONTAINS(ct_error_message(), "sgd, adam, adamw, rmsprop, adagrad");
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'adam");
    CHECK(ct_optim_defaults("rmsporp", &c) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'rmsprop'?");
}

static void test_slots_and_errors(void)
{
    ct_optimizer *opt = NULL;
    ct_optim_config c;
    struct {
        const char *name;
        int momentum, centered, amsgrad, n_slots;
        const char *slots[3];
    } cases[] = {
        {"sgd", 0, 0, 0, 0, {NULL}},
        {"sgd", 1, 0, 0, 1, {"momentum"}},
        {"adam", 0, 0, 0, 2, {"m", "v"}},
        {"adamw", 0, 0, 1, 3, {"m", "v", "vhat"}},
        {"rmsprop", 0, 0, 0, 1, {"velocity"}},
        {"rmsprop", 1, 1, 0, 3, {"velocity", "momentum", "average_gradient"}},
        {"rmsprop", 0, 1, 0, 2, {"velocity", "average_gradient"}},
        {"adagrad", 0, 0, 0, 1, {"accumulator"}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        c = defaults(cases[k].name);
        c.momentum = cases[k].momentum ? 0.9 : 0;
        c.centered = cases[k].centered, c.amsgrad = cases[k].amsgrad;
        CHECK(ct_optimizer_create(&c, 5, &opt) == CT_OK);
        CHECK_MSG(opt->n_slots == cases[k].n_slots, "%s: %d slots", cases[k].name, opt->n_slots);
        for (int s = 0; s < cases[k].n_slots; s++) {
            const char *got = ct_optimizer_slot_name(opt, s);
            CHECK_MSG(got && strcmp(got, cases[k].slots[s]) == 0, "%s slot %d: %s", cases[k].name, s,
                      got ? got : "NULL");
        }
        CHECK(ct_optimizer_slot_name(opt, opt->n_slots) == NULL);
        /* Slots start at zero, Adagrad's accumulator at its initial value. */
        for (int64_t i = 0; i < opt->n_slots * opt->n; i++)
            CHECK(opt->slots[i] == (c.kind == CT_OPT_ADAGRAD ? 0.1f : 0.0f));
        CHECK(opt->iterations == 0);
        ct_optimizer_destroy(opt);
    }
    ct_optimizer_destroy(NULL);

    c = defaults("adam"), c.clipnorm = 1, c.global_clipnorm = 1;
    CHECK(ct_optimizer_create(&c, 5, &opt) == CT_ERR_CONFIG && opt == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "at most one of clipnorm and global_clipnorm");
    c = defaults("sgd"), c.momentum = 1.5;
    CHECK(ct_optimizer_create(&c, 5, &opt) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "momentum must be in [0, 1]");
    c = defaults("sgd"), c.kind = CT_OPT_COUNT;
    CHECK(ct_optimizer_create(&c, 5, &opt) == CT_ERR_CONFIG);
    c = defaults("adam");
    CHECK(ct_optimizer_create(&c, 0, &opt) == CT_OK); /* a model without weights */
    ct_optimizer_step(opt, NULL, NULL, NULL, 0, 0.1);
    CHECK(opt->iterations == 1);
    ct_optimizer_destroy(opt);
}

int main(void)
{
    test_defaults();
    test_literals();
    test_clipping_literals();
    test_against_reference();
    test_large();
    test_slots_and_errors();
    return ct_test_report("test_optim");
}
