/* Eager tensors and tapes: every operation's gradient against central
 * differences (the loss sum(out * R) for a fixed random R, in double),
 * forward values against loops written here, broadcasting, scopes and
 * reference counts, printing, and the errors of bad shapes and misuse. */
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "ctrain.h"
#include "rng.h"

static uint64_t streams = 100;

/* values in [lo, hi]; with distinct, a shuffled grid (no two closer than
 * (hi - lo) / n, so a probe never changes which element is the largest) */
static ct_eager *input(int rank, const int64_t *dims, float lo, float hi, int distinct)
{
    ct_eager *t = ct_eager_random_uniform(rank, dims, lo, hi, 7, streams++);
    if (distinct && t) {
        int64_t n = ct_eager_numel(t), *perm = malloc(sizeof(int64_t) * (size_t)n);
        ct_rng r = ct_rng_make(7, CT_RNG_TEST, streams++);
        ct_rng_permutation(&r, perm, n);
        for (int64_t i = 0; i < n; i++) ct_eager_data(t)[i] = lo + (hi - lo) * ((float)perm[i] + 0.5f) / (float)n;
        free(perm);
    }
    return t;
}

typedef ct_eager *(*op_fn)(ct_eager *const *in, const void *ctx);

static double weighted(const ct_eager *out, const ct_eager *r)
{
    double s = 0;
    for (int64_t i = 0; i < ct_eager_numel(out); i++) s += (double)ct_eager_item(out, i) * ct_eager_item(r, i);
    return s;
}

/* The tape's gradients of sum(f(in) * R) w.r.t. every input against
 * central differences with step eps; |analytic - numeric| <= tol * max(1, |numeric|). */
static void gradcheck(const char *name, int n, ct_eager *const *in, op_fn f, const void *ctx, double eps, double tol)
{
    ct_scope_begin();
    ct_tape *tape;
    CHECK(ct_tape_create(&tape) == CT_OK);
    ct_eager *out = f(in, ctx);
    ct_tape_stop(tape);
    CHECK_MSG(out != NULL, "%s: %s", name, ct_error_message());
    if (!out) {
        ct_tape_destroy(tape);
        ct_scope_end();
        return;
    }
    int64_t dims[CT_EAGER_MAX_DIMS];
    for (int d = 0; d < ct_eager_rank(out); d++) dims[d] = ct_eager_dim(out, d);
    ct_eager *r = ct_eager_random_uniform(ct_eager_rank(out), dims, -1, 1, 11, streams++);
    ct_eager *grads[8];
    CHECK_MSG(ct_tape_gradient_seeded(tape, out, r, n, in, grads) == CT_OK, "%s: %s", name, ct_error_message());
    double worst = 0;
    for (int k = 0; k < n; k++) {
        float *x = ct_eager_data(in[k]);
        for (int64_t j = 0; j < ct_eager_numel(in[k]); j++) {
            float keep = x[j];
            x[j] = keep + (float)eps;
            ct_eager *p = f(in, ctx);
            x[j] = keep - (float)eps;
            ct_eager *m = f(in, ctx);
            x[j] = keep;
            double num = (weighted(p, r) - weighted(m, r)) / (2 * eps);
            double ana = ct_eager_item(grads[k], j);
            double err = fabs(ana - num) / (fabs(num) > 1 ? fabs(num) : 1);
            if (err > worst) worst = err;
            if (err > tol)
                fprintf(stderr, "%s: input %d element %lld: tape %.6g, differences %.6g\n", name, k, (long long)j,
                        ana, num);
        }
    }
    CHECK_MSG(worst <= tol, "%s: worst relative gradient error %.3g > %.3g", name, worst, tol);
    ct_tape_destroy(tape);
    ct_scope_end();
}

/* ---- the operations under test, as op_fn ---------------------------------------------- */
typedef struct unary_ctx {
    ct_eager *(*f)(ct_eager *);
} unary_ctx;
static ct_eager *run_unary(ct_eager *const *in, const void *c) { return ((const unary_ctx *)c)->f(in[0]); }

typedef struct binary_ctx {
    ct_eager *(*f)(ct_eager *, ct_eager *);
} binary_ctx;
static ct_eager *run_binary(ct_eager *const *in, const void *c) { return ((const binary_ctx *)c)->f(in[0], in[1]); }

static ct_eager *run_leaky(ct_eager *const *in, const void *c) { return ct_eager_leaky_relu(in[0], 0.2f); }
static ct_eager *run_scale(ct_eager *const *in, const void *c) { return ct_eager_scale(in[0], -1.5f); }
static ct_eager *run_adds(ct_eager *const *in, const void *c) { return ct_eager_add_scalar(in[0], 0.75f); }
static ct_eager *run_pow(ct_eager *const *in, const void *c) { return ct_eager_pow(in[0], 2.5f); }

typedef struct mm_ctx {
    int ta, tb;
} mm_ctx;
static ct_eager *run_matmul(ct_eager *const *in, const void *c)
{
    const mm_ctx *m = c;
    return ct_eager_matmul(in[0], in[1], m->ta, m->tb);
}

typedef struct red_ctx {
    ct_eager *(*f)(ct_eager *, int, const int *, int);
    int n;
    int axes[3];
    int keep;
} red_ctx;
static ct_eager *run_reduce(ct_eager *const *in, const void *c)
{
    const red_ctx *r = c;
    return r->f(in[0], r->n, r->axes, r->keep);
}

static ct_eager *run_reshape(ct_eager *const *in, const void *c)
{
    int64_t d[2] = {-1, 4};
    return ct_eager_reshape(in[0], 2, d);
}
static ct_eager *run_transpose(ct_eager *const *in, const void *c)
{
    int perm[3] = {2, 0, 1};
    return ct_eager_transpose(in[0], perm);
}
static ct_eager *run_slice(ct_eager *const *in, const void *c)
{
    int64_t b[3] = {1, 0, 1}, s[3] = {2, -1, 2};
    return ct_eager_slice(in[0], b, s);
}
static ct_eager *run_concat(ct_eager *const *in, const void *c) { return ct_eager_concat(3, in, *(const int *)c); }
static ct_eager *run_gather(ct_eager *const *in, const void *c)
{
    int64_t idx[5] = {2, 0, 2, 3, 1};
    return ct_eager_gather(in[0], *(const int *)c, 5, idx);
}
static ct_eager *run_softmax(ct_eager *const *in, const void *c) { return ct_eager_softmax(in[0]); }
static ct_eager *run_log_softmax(ct_eager *const *in, const void *c) { return ct_eager_log_softmax(in[0]); }

typedef struct conv_ctx {
    int sh, sw, same;
} conv_ctx;
static ct_eager *run_conv(ct_eager *const *in, const void *c)
{
    const conv_ctx *k = c;
    return ct_eager_conv2d(in[0], in[1], k->sh, k->sw, k->same);
}
typedef struct pool_ctx {
    int max, k, s, same;
} pool_ctx;
static ct_eager *run_pool(ct_eager *const *in, const void *c)
{
    const pool_ctx *p = c;
    return p->max ? ct_eager_max_pool2d(in[0], p->k, p->k, p->s, p->s, p->same)
                  : ct_eager_avg_pool2d(in[0], p->k, p->k, p->s, p->s, p->same);
}
/* a composite: a small network's loss, so gradients flow through chains */
static ct_eager *run_chain(ct_eager *const *in, const void *c)
{
    ct_eager *h = ct_eager_tanh(ct_eager_add(ct_eager_matmul(in[0], in[1], 0, 0), in[2]));
    ct_eager *lp = ct_eager_log_softmax(h);
    return ct_eager_neg(ct_eager_mean(ct_eager_mul(lp, in[3]), 0, NULL, 0));
}

static void test_gradients(void)
{
    int64_t d23[2] = {2, 3}, d3[1] = {3}, d13[2] = {1, 3}, d21[2] = {2, 1};
    ct_eager *x[4];
    struct {
        const char *name;
        ct_eager *(*f)(ct_eager *);
        float lo, hi;
    } un[] = {
        {"neg", ct_eager_neg, -2, 2},       {"exp", ct_eager_exp, -2, 2},       {"log", ct_eager_log, 0.5f, 3},
        {"sqrt", ct_eager_sqrt, 0.5f, 3},   {"square", ct_eager_square, -2, 2}, {"abs", ct_eager_abs, 0.2f, 2},
        {"tanh", ct_eager_tanh, -2, 2},     {"sigmoid", ct_eager_sigmoid, -3, 3}, {"relu", ct_eager_relu, -2, 2},
    };
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
        x[0] = input(2, d23, un[i].lo, un[i].hi, 1);
        if (!strcmp(un[i].name, "abs") || !strcmp(un[i].name, "relu")) /* keep off the kink at 0 */
            for (int j = 0; j < 6; j++) ct_eager_data(x[0])[j] *= (j % 2) ? -1.0f : 1.0f;
        if (!strcmp(un[i].name, "relu"))
            for (int j = 0; j < 6; j++) ct_eager_data(x[0])[j] += ct_eager_data(x[0])[j] > 0 ? 0.1f : -0.1f;
        unary_ctx c = {un[i].f};
        gradcheck(un[i].name, 1, x, run_unary, &c, 1e-2, 3e-3);
        ct_eager_free(x[0]);
    }
    struct {
        const char *name;
        op_fn f;
        float lo, hi;
    } un2[] = {{"leaky_relu", run_leaky, 0.3f, 2}, {"scale", run_scale, -2, 2}, {"add_scalar", run_adds, -2, 2},
               {"pow", run_pow, 0.5f, 2}};
    for (size_t i = 0; i < sizeof un2 / sizeof un2[0]; i++) {
        x[0] = input(2, d23, un2[i].lo, un2[i].hi, 1);
        if (i == 0) ct_eager_data(x[0])[1] *= -1, ct_eager_data(x[0])[4] *= -1;
        gradcheck(un2[i].name, 1, x, un2[i].f, NULL, 1e-2, 3e-3);
        ct_eager_free(x[0]);
    }
    /* binary ops, same shapes and three kinds of broadcasting */
    struct {
        const char *name;
        ct_eager *(*f)(ct_eager *, ct_eager *);
    } bin[] = {{"add", ct_eager_add},         {"sub", ct_eager_sub},         {"mul", ct_eager_mul},
               {"div", ct_eager_div},         {"maximum", ct_eager_maximum}, {"minimum", ct_eager_minimum}};
    const int64_t *bdims[4] = {d23, d3, d13, d21};
    int brank[4] = {2, 1, 2, 2};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++)
        for (int b = 0; b < 4; b++) {
            char name[64];
            snprintf(name, sizeof name, "%s (broadcast case %d)", bin[i].name, b);
            x[0] = input(2, d23, 0.5f, 2, 1);
            x[1] = input(brank[b], bdims[b], 0.55f, 2.05f, 1); /* never equal to an element of x[0]... */
            binary_ctx c = {bin[i].f};
            gradcheck(name, 2, x, run_binary, &c, 1e-3, 3e-3);
            /* ...and broadcasting the other way round */
            ct_eager *sw[2] = {x[1], x[0]};
            snprintf(name, sizeof name, "%s (broadcast case %d, swapped)", bin[i].name, b);
            gradcheck(name, 2, sw, run_binary, &c, 1e-3, 3e-3);
            ct_eager_free(x[0]);
            ct_eager_free(x[1]);
        }
    /* matmul with every transpose combination */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t da[2] = {ta ? 4 : 3, ta ? 3 : 4}, db[2] = {tb ? 5 : 4, tb ? 4 : 5};
            x[0] = input(2, da, -1, 1, 0);
            x[1] = input(2, db, -1, 1, 0);
            mm_ctx c = {ta, tb};
            char name[64];
            snprintf(name, sizeof name, "matmul ta=%d tb=%d", ta, tb);
            gradcheck(name, 2, x, run_matmul, &c, 1e-2, 3e-3);
            ct_eager_free(x[0]);
            ct_eager_free(x[1]);
        }
    /* reductions */
    int64_t d234[3] = {2, 3, 4};
    red_ctx reds[] = {{ct_eager_sum, 0, {0}, 0},   {ct_eager_sum, 1, {1}, 0},  {ct_eager_sum, 2, {0, -1}, 1},
                      {ct_eager_mean, 0, {0}, 0},  {ct_eager_mean, 1, {2}, 1}, {ct_eager_mean, 2, {0, 1}, 0},
                      {ct_eager_max, 0, {0}, 0},   {ct_eager_max, 1, {1}, 0},  {ct_eager_max, 2, {2, 0}, 1}};
    for (size_t i = 0; i < sizeof reds / sizeof reds[0]; i++) {
        x[0] = input(3, d234, -2, 2, 1);
        char name[64];
        snprintf(name, sizeof name, "reduction %zu", i);
        gradcheck(name, 1, x, run_reduce, &reds[i], 1e-2, 3e-3);
        ct_eager_free(x[0]);
    }
    /* shape operations */
    x[0] = input(3, d234, -2, 2, 0);
    gradcheck("reshape", 1, x, run_reshape, NULL, 1e-2, 3e-3);
    gradcheck("transpose", 1, x, run_transpose, NULL, 1e-2, 3e-3);
    int64_t d334[3] = {3, 3, 4};
    ct_eager *s = input(3, d334, -2, 2, 0);
    gradcheck("slice", 1, &s, run_slice, NULL, 1e-2, 3e-3);
    ct_eager_free(s);
    for (int axis = 0; axis < 3; axis++) {
        int64_t a[3] = {2, 3, 4}, b[3] = {2, 3, 4}, cdim[3] = {2, 3, 4};
        a[axis] = 1;
        cdim[axis] = 3;
        ct_eager *cx[3] = {input(3, a, -1, 1, 0), input(3, b, -1, 1, 0), input(3, cdim, -1, 1, 0)};
        char name[64];
        snprintf(name, sizeof name, "concat axis %d", axis);
        gradcheck(name, 3, cx, run_concat, &axis, 1e-2, 3e-3);
        for (int k = 0; k < 3; k++) ct_eager_free(cx[k]);
    }
    for (int axis = 0; axis < 2; axis++) {
        int64_t g[3] = {4, 4, 3};
        ct_eager *gx = input(3, g, -1, 1, 0);
        char name[64];
        snprintf(name, sizeof name, "gather axis %d (repeated index)", axis);
        gradcheck(name, 1, &gx, run_gather, &axis, 1e-2, 3e-3);
        ct_eager_free(gx);
    }
    gradcheck("softmax", 1, x, run_softmax, NULL, 1e-2, 3e-3);
    gradcheck("log_softmax", 1, x, run_log_softmax, NULL, 1e-2, 3e-3);
    ct_eager_free(x[0]);
    /* convolution and pooling */
    conv_ctx convs[] = {{1, 1, 1}, {1, 1, 0}, {2, 2, 1}, {2, 1, 0}};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        int64_t dx[4] = {2, 5, 6, 3}, dk[4] = {3, 3, 3, 4};
        ct_eager *cx[2] = {input(4, dx, -1, 1, 0), input(4, dk, -1, 1, 0)};
        char name[64];
        snprintf(name, sizeof name, "conv2d stride %dx%d %s", convs[i].sh, convs[i].sw, convs[i].same ? "same" : "valid");
        gradcheck(name, 2, cx, run_conv, &convs[i], 1e-2, 3e-3);
        ct_eager_free(cx[0]);
        ct_eager_free(cx[1]);
    }
    pool_ctx pools[] = {{1, 2, 2, 0}, {1, 3, 2, 1}, {0, 2, 2, 0}, {0, 3, 2, 1}};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        int64_t dx[4] = {2, 5, 6, 2};
        ct_eager *px = input(4, dx, -2, 2, 1);
        char name[64];
        snprintf(name, sizeof name, "%s_pool2d k%d s%d %s", pools[i].max ? "max" : "avg", pools[i].k, pools[i].s,
                 pools[i].same ? "same" : "valid");
        gradcheck(name, 1, &px, run_pool, &pools[i], 1e-3, 3e-3);
        ct_eager_free(px);
    }
    /* a chain of operations, with the labels as a constant input */
    int64_t dxs[2] = {4, 3}, dw[2] = {3, 5}, db[1] = {5}, dy[2] = {4, 5};
    ct_eager *ch[4] = {input(2, dxs, -1, 1, 0), input(2, dw, -1, 1, 0), input(1, db, -1, 1, 0), input(2, dy, 0, 1, 0)};
    gradcheck("chain (dense, tanh, log_softmax, mean)", 4, ch, run_chain, NULL, 1e-2, 3e-3);
    for (int k = 0; k < 4; k++) ct_eager_free(ch[k]);
}

/* ---- forward values against loops written here ----------------------------------------- */
static void test_forward_values(void)
{
    ct_scope_begin();
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    int64_t d23[2] = {2, 3}, d3[1] = {3}, d32[2] = {3, 2};
    ct_eager *a = ct_eager_from_data(2, d23, av), *b = ct_eager_from_data(1, d3, bv);
    ct_eager *s = ct_eager_add(a, b);
    for (int i = 0; i < 6; i++) CHECK_NEAR(ct_eager_item(s, i), av[i] + bv[i % 3], 0);
    float cv[6] = {1, -1, 0, 2, 3, 1};
    ct_eager *c = ct_eager_from_data(2, d32, cv);
    ct_eager *m = ct_eager_matmul(a, c, 0, 0);
    CHECK(ct_eager_dim(m, 0) == 2 && ct_eager_dim(m, 1) == 2);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float want = 0;
            for (int k = 0; k < 3; k++) want += av[i * 3 + k] * cv[k * 2 + j];
            CHECK_NEAR(ct_eager_item(m, i * 2 + j), want, 1e-5);
        }
    int ax1 = 1;
    ct_eager *rs = ct_eager_sum(a, 1, &ax1, 0);
    CHECK(ct_eager_rank(rs) == 1 && ct_eager_dim(rs, 0) == 2);
    CHECK_NEAR(ct_eager_item(rs, 0), 6, 0);
    CHECK_NEAR(ct_eager_item(rs, 1), 15, 0);
    ct_eager *mx = ct_eager_max(a, 0, NULL, 0);
    CHECK(ct_eager_rank(mx) == 0 && ct_eager_item(mx, 0) == 6);
    ct_eager *am = ct_eager_argmax(c, 1);
    CHECK(ct_eager_item(am, 0) == 0 && ct_eager_item(am, 1) == 1 && ct_eager_item(am, 2) == 0);
    ct_eager *t = ct_eager_transpose(a, NULL);
    CHECK(ct_eager_dim(t, 0) == 3 && ct_eager_item(t, 1) == 4 && ct_eager_item(t, 2) == 2);
    ct_eager *gt = ct_eager_greater(a, ct_eager_scalar(3));
    for (int i = 0; i < 6; i++) CHECK(ct_eager_item(gt, i) == (av[i] > 3 ? 1.0f : 0.0f));
    ct_eager *eq = ct_eager_equal(a, ct_eager_scalar(4));
    CHECK(ct_eager_item(eq, 3) == 1 && ct_eager_item(eq, 2) == 0);
    ct_eager *sm = ct_eager_softmax(a);
    double z = exp(1) + exp(2) + exp(3);
    CHECK_NEAR(ct_eager_item(sm, 0), exp(1) / z, 1e-6);
    ct_eager *ls = ct_eager_log_softmax(a);
    CHECK_NEAR(ct_eager_item(ls, 2), 3 - log(z), 1e-5);
    float lab[3] = {2, 0, 1};
    ct_eager *oh = ct_eager_one_hot(ct_eager_from_data(1, d3, lab), 4);
    CHECK(ct_eager_dim(oh, 1) == 4 && ct_eager_item(oh, 2) == 1 && ct_eager_item(oh, 4) == 1 &&
          ct_eager_item(oh, 9) == 1 && ct_eager_item(oh, 0) == 0);
    /* conv2d against a direct loop, stride 2, same padding */
    int64_t dx[4] = {1, 5, 5, 2}, dk[4] = {3, 3, 2, 3};
    ct_eager *x = ct_eager_random_uniform(4, dx, -1, 1, 3, 1), *k = ct_eager_random_uniform(4, dk, -1, 1, 3, 2);
    ct_eager *y = ct_eager_conv2d(x, k, 2, 2, 1);
    CHECK(y && ct_eager_dim(y, 1) == 3 && ct_eager_dim(y, 2) == 3 && ct_eager_dim(y, 3) == 3);
    double worst = 0;
    for (int p = 0; y && p < 3; p++)
        for (int q = 0; q < 3; q++)
            for (int o = 0; o < 3; o++) {
                double acc = 0; /* same padding: pad 1 before (out 3, needed (3-1)*2+3 = 7, 2 extra, 1 before) */
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        for (int ci = 0; ci < 2; ci++) {
                            int r = p * 2 - 1 + i, cc = q * 2 - 1 + j;
                            if (r < 0 || r >= 5 || cc < 0 || cc >= 5) continue;
                            acc += (double)ct_eager_item(x, (r * 5 + cc) * 2 + ci) *
                                   ct_eager_item(k, ((i * 3 + j) * 2 + ci) * 3 + o);
                        }
                double e = fabs(acc - ct_eager_item(y, (p * 3 + q) * 3 + o));
                if (e > worst) worst = e;
            }
    CHECK_NEAR(worst, 0, 1e-5);
    ct_eager *mp = ct_eager_max_pool2d(x, 2, 2, 2, 2, 0);
    CHECK(ct_eager_dim(mp, 1) == 2);
    float want = ct_eager_item(x, 0);
    for (int r = 0; r < 2; r++)
        for (int cc = 0; cc < 2; cc++)
            if (ct_eager_item(x, (r * 5 + cc) * 2) > want) want = ct_eager_item(x, (r * 5 + cc) * 2);
    CHECK_NEAR(ct_eager_item(mp, 0), want, 0);
    ct_scope_end();
}

/* ---- tapes, scopes, references ---------------------------------------------------------------- */
static void test_tape_semantics(void)
{
    /* d/dw of (w*w + 3w) at w = 2 is 7; intermediate results as wrt; twice asked */
    ct_eager *w = ct_eager_scalar(2);
    ct_scope_begin();
    ct_tape *t;
    CHECK(ct_tape_create(&t) == CT_OK);
    ct_eager *sq = ct_eager_mul(w, w);
    ct_eager *loss = ct_eager_add(sq, ct_eager_scale(w, 3));
    ct_tape_stop(t);
    ct_eager *after = ct_eager_mul(loss, w); /* not recorded */
    CHECK(ct_tape_size(t) == 3);
    ct_eager *g[2];
    ct_eager *wrt[2] = {w, sq};
    CHECK(ct_tape_gradient(t, loss, 2, wrt, g) == CT_OK);
    CHECK_NEAR(ct_eager_item(g[0], 0), 7, 1e-6);
    CHECK_NEAR(ct_eager_item(g[1], 0), 1, 1e-6);
    CHECK(ct_tape_gradient(t, loss, 1, wrt, g) == CT_OK);
    CHECK_NEAR(ct_eager_item(g[0], 0), 7, 1e-6);
    /* a tensor the target does not depend on gets zeros */
    ct_eager *other = ct_eager_scalar(5);
    CHECK(ct_tape_gradient(t, loss, 1, &other, g) == CT_OK && ct_eager_item(g[0], 0) == 0);
    /* errors */
    CHECK_FAILS(ct_tape_gradient(t, after, 1, wrt, g), CT_ERR_USAGE, "not computed on this tape");
    int64_t d2[1] = {2};
    ct_eager *vec = ct_eager_zeros(1, d2);
    CHECK_FAILS(ct_tape_gradient(t, vec, 1, wrt, g), CT_ERR_SHAPE, "2 elements", "expected one");
    ct_tape_destroy(t);
    /* nested tapes both record; the tape keeps tensors alive past the scope */
    ct_tape *outer, *inner;
    ct_tape_create(&outer);
    ct_tape_create(&inner);
    ct_eager *e = ct_eager_exp(w);
    ct_tape_destroy(inner);
    CHECK(ct_tape_size(outer) == 1);
    ct_scope_end();
    CHECK(ct_tape_gradient(outer, e, 1, &w, g) == CT_OK);
    CHECK_NEAR(ct_eager_item(g[0], 0), exp(2), 1e-5);
    ct_eager_free(g[0]);
    ct_tape_destroy(outer);
    /* kept tensors survive their scope */
    ct_scope_begin();
    ct_eager *kept = ct_scope_keep(ct_eager_scalar(9));
    ct_scope_end();
    CHECK(ct_eager_item(kept, 0) == 9);
    ct_eager_free(kept);
    ct_eager_free(w);
}

static void test_errors_and_print(void)
{
    ct_scope_begin();
    int64_t d23[2] = {2, 3}, d4[1] = {4}, d32[2] = {3, 2};
    ct_eager *a = ct_eager_zeros(2, d23), *b = ct_eager_zeros(1, d4);
    ct_error_clear();
    CHECK(ct_eager_add(a, b) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "add: shapes (2, 3) and (4,) do not broadcast");
    CHECK(ct_error_status() == CT_ERR_SHAPE);
    /* NULL operands propagate without replacing the first message */
    CHECK(ct_eager_exp(ct_eager_add(a, b)) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "do not broadcast");
    CHECK(ct_eager_matmul(a, a, 0, 0) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "inner dimensions differ");
    int64_t bad[2] = {4, -1};
    CHECK(ct_eager_reshape(a, 2, bad) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "has 6 elements");
    int64_t idx[1] = {7};
    CHECK(ct_eager_gather(a, 1, 1, idx) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "index 7 (entry 0) is outside [0, 3)");
    int ax = 2;
    CHECK(ct_eager_sum(a, 1, &ax, 0) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "axis 2 is out of range");
    int64_t neg[1] = {-3};
    CHECK(ct_eager_zeros(1, neg) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "dimension 0 is -3");
    CHECK(ct_eager_conv2d(a, a, 1, 1, 1) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "(batch, height, width, channels)");
    /* printing */
    float v[6] = {1, 2.5f, -3, 4, 5, 6};
    ct_eager *p = ct_eager_from_data(2, d32, v);
    char buf[512] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    CHECK(ct_eager_print(p, f) == CT_OK);
    ct_eager_print(ct_eager_scalar(0.5f), f);
    fclose(f);
    CHECK_STR_CONTAINS(buf, "tensor(shape=(3, 2), [[1, 2.5], [-3, 4], [5, 6]])\ntensor(shape=(), 0.5)\n");
    int64_t big[1] = {2000};
    ct_eager *l = ct_eager_full(1, big, 1);
    memset(buf, 0, sizeof buf);
    f = fmemopen(buf, sizeof buf - 1, "w");
    ct_eager_print(l, f);
    fclose(f);
    CHECK_STR_CONTAINS(buf, "tensor(shape=(2000,), [1, 1, 1, ..., 1, 1, 1])");
    ct_scope_end();
    CHECK(ct_abi_version() == CT_ABI_VERSION);
    CHECK(!strcmp(ct_version_string(), CT_VERSION_STRING));
}

int main(void)
{
    test_gradients();
    test_forward_values();
    test_tape_semantics();
    test_errors_and_print();
    ct_eager_release_cache();
    return ct_test_report("test_eager");
}
