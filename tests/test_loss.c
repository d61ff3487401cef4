/* Loss tests: names, known values derived by hand, logits against
 * probabilities, extreme logits, finite-difference gradients for every
 * loss and from_logits setting, sample weights, sparse target errors and
 * the threaded path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "loss.h"
#include "rng.h"

static ct_loss make(const char *name, int from_logits)
{
    ct_loss l;
    ct_status st = ct_loss_from_name(name, &l);
    CHECK_MSG(st == CT_OK, "%s: %s", name, ct_error_message());
    l.from_logits = from_logits;
    return l;
}

/* Sum of the per-sample losses (unweighted unless w), no gradient. */
static double loss_sum(const ct_loss *l, const float *p, const float *t, const float *w, int64_t n, int64_t d)
{
    ct_status st;
    double v = ct_loss_compute(l, p, t, w, n, d, NULL, 1.0f, NULL, &st);
    CHECK(st == CT_OK);
    return v;
}

static void test_names(void)
{
    static const struct {
        const char *name;
        ct_loss_kind kind;
    } ok[] = {
        {"mean_squared_error", CT_LOSS_MSE}, {"mse", CT_LOSS_MSE},
        {"mean_absolute_error", CT_LOSS_MAE}, {"mae", CT_LOSS_MAE},
        {"huber", CT_LOSS_HUBER}, {"huber_loss", CT_LOSS_HUBER},
        {"binary_crossentropy", CT_LOSS_BCE}, {"categorical_crossentropy", CT_LOSS_CCE},
        {"sparse_categorical_crossentropy", CT_LOSS_SCCE},
    };
    ct_loss l;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK(ct_loss_from_name(ok[i].name, &l) == CT_OK && l.kind == ok[i].kind && !l.from_logits);
    }
    CHECK(ct_loss_from_name("huber", &l) == CT_OK && l.delta == 1.0);
    CHECK(strcmp(ct_loss_name(CT_LOSS_MSE), "mean_squared_error") == 0);
    CHECK(strcmp(ct_loss_name(CT_LOSS_SCCE), "sparse_categorical_crossentropy") == 0);
    int n;
    const char *const *names = ct_loss_names(&n);
    CHECK(n == 9 && strcmp(names[1], "mse") == 0);

    CHECK(ct_loss_from_name("msee", &l) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "unknown loss 'msee': known are mean_squared_error, mse");
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'mse'?");
    CHECK(ct_loss_from_name("binary_crossentropie", &l) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'binary_crossentropy'?");

    l = make("sparse_categorical_crossentropy", 0);
    CHECK(ct_loss_target_width(&l, 10) == 1);
    l = make("categorical_crossentropy", 0);
    CHECK(ct_loss_target_width(&l, 10) == 10);
}

static void test_known_values(void)
{
    ct_loss l;
    float per[2];
    ct_status st;

    /* mse, row 0: errors (0, 2, -2) -> (0 + 4 + 4) / 3 = 2.6667;
     * row 1: errors (-1, -1, -1) -> 1. Sum 3.6667. */
    const float p[6] = {1, 2, 3, 0, 0, 0}, t[6] = {1, 0, 5, 1, 1, 1};
    l = make("mse", 0);
    CHECK_NEAR(ct_loss_compute(&l, p, t, NULL, 2, 3, NULL, 1, per, &st), 11.0 / 3, 1e-6);
    CHECK_NEAR(per[0], 8.0 / 3, 1e-6);
    CHECK_NEAR(per[1], 1.0, 1e-6);

    /* mae: row 0 (0 + 2 + 2) / 3 = 1.3333, row 1 1. */
    l = make("mae", 0);
    CHECK_NEAR(ct_loss_compute(&l, p, t, NULL, 2, 3, NULL, 1, per, &st), 7.0 / 3, 1e-6);
    CHECK_NEAR(per[0], 4.0 / 3, 1e-6);

    /* huber, delta 1, errors (0.5, -2, 0): 0.5 * 0.25 = 0.125 (quadratic),
     * 1 * 2 - 0.5 * 1 = 1.5 (linear), 0 -> (0.125 + 1.5) / 3 = 0.5416667.
     * With delta 2 the -2 is still quadratic (|x| <= delta): 0.5 * 4 = 2
     * -> (0.125 + 2) / 3 = 0.7083333. */
    const float hp[3] = {1.5f, 0, 3}, ht[3] = {1, 2, 3};
    l = make("huber", 0);
    CHECK_NEAR(loss_sum(&l, hp, ht, NULL, 1, 3), 0.5416667, 1e-6);
    l.delta = 2;
    CHECK_NEAR(loss_sum(&l, hp, ht, NULL, 1, 3), 0.7083333, 1e-6);

    /* binary_crossentropy, p (0.9, 0.2), t (1, 0):
     * -log(0.9 + 1e-7) = 0.1053604, -log(1 - 0.2 + 1e-7) = 0.2231435,
     * mean 0.1642519. */
    const float bp[2] = {0.9f, 0.2f}, bt[2] = {1, 0};
    l = make("binary_crossentropy", 0);
    CHECK_NEAR(loss_sum(&l, bp, bt, NULL, 1, 2), 0.1642519, 1e-6);

    /* Clipping: p = 0, t = 1 is clipped to eps = 1e-7 and eps is added
     * again: -log(2e-7) = 15.424948. p = 1, t = 0 is clipped to the float
     * 1 - eps = 0.99999988: -log(1.19e-7 + 1e-7) = 15.333239. */
    const float cp[2] = {0, 1}, ct[2] = {1, 0};
    CHECK_NEAR(loss_sum(&l, cp, ct, NULL, 1, 2), (15.424948 + 15.333239) / 2, 1e-5);

    /* from_logits: x = 0, t = 1 -> log 2 = 0.6931472;
     * x = 2, t = 0 -> 2 + log(1 + e^-2) = 2.1269280. Mean 1.4100376. */
    const float lx[2] = {0, 2}, lt[2] = {1, 0};
    l = make("binary_crossentropy", 1);
    CHECK_NEAR(loss_sum(&l, lx, lt, NULL, 1, 2), (0.6931472 + 2.1269280) / 2, 1e-6);

    /* categorical_crossentropy normalises: p (1, 1, 2) -> (0.25, 0.25, 0.5),
     * t (0, 0, 1) -> -log 0.5 = 0.6931472. */
    const float qp[3] = {1, 1, 2}, qt[3] = {0, 0, 1};
    l = make("categorical_crossentropy", 0);
    CHECK_NEAR(loss_sum(&l, qp, qt, NULL, 1, 3), 0.6931472, 1e-6);

    /* from_logits, x (1, 2, 3), t (0, 0, 1): log(e + e^2 + e^3) - 3
     * = 3.4076060 - 3 = 0.4076060. */
    const float zx[3] = {1, 2, 3};
    l = make("categorical_crossentropy", 1);
    CHECK_NEAR(loss_sum(&l, zx, qt, NULL, 1, 3), 0.4076060, 1e-6);

    /* sparse: p (0.1, 0.6, 0.3), class 1 -> log(sum p) - log 0.6
     * = 0 + 0.5108256. As logits x (1, 2, 3), class 2 -> 0.4076060. */
    const float sp[3] = {0.1f, 0.6f, 0.3f}, s1 = 1, s2 = 2;
    l = make("sparse_categorical_crossentropy", 0);
    CHECK_NEAR(loss_sum(&l, sp, &s1, NULL, 1, 3), 0.5108256, 1e-6);
    l = make("sparse_categorical_crossentropy", 1);
    CHECK_NEAR(loss_sum(&l, zx, &s2, NULL, 1, 3), 0.4076060, 1e-6);

    /* Sparse clips before normalising, dense normalises before clipping:
     * p (0, 0.5) with class 1. Sparse: clip gives (1e-7, 0.5), so
     * log(0.5000001) - log(0.5) = 2e-7. Dense with t (0, 1): q = (0, 1),
     * clip q_1 to 0.99999988, -log of it = 1.19e-7. */
    const float zp[2] = {0, 0.5f}, zt[2] = {0, 1}, z1 = 1;
    l = make("sparse_categorical_crossentropy", 0);
    CHECK_NEAR(loss_sum(&l, zp, &z1, NULL, 1, 2), 2e-7, 1e-9);
    l = make("categorical_crossentropy", 0);
    CHECK_NEAR(loss_sum(&l, zp, zt, NULL, 1, 2), 1.1920929e-7, 1e-9);
}

static void sigmoid_f(const float *x, float *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = (float)(1 / (1 + exp(-(double)x[i])));
}

static void softmax_rows(const float *x, float *p, int n, int d)
{
    for (int i = 0; i < n; i++) {
        double m = x[i * d], z = 0;
        for (int j = 1; j < d; j++) m = fmax(m, x[i * d + j]);
        for (int j = 0; j < d; j++) z += exp(x[i * d + j] - m);
        for (int j = 0; j < d; j++) p[i * d + j] = (float)(exp(x[i * d + j] - m) / z);
    }
}

/* Logits and the probabilities they stand for give the same loss when
 * nothing is near the clipping bounds. */
static void test_logits_match_probabilities(void)
{
    enum { N = 6, D = 5 };
    ct_rng r = ct_rng_make(7, CT_RNG_TEST, 1);
    float x[N * D], p[N * D], t[N * D], idx[N], per_a[N], per_b[N];
    ct_rng_fill_uniform(&r, 0, -3, 3, x, N * D);
    ct_rng_fill_uniform(&r, 100, 0, 1, t, N * D); /* soft binary targets */
    for (int i = 0; i < N; i++) idx[i] = (float)ct_rng_below(&r, 200 + i, D);
    ct_status st;

    ct_loss a = make("binary_crossentropy", 0), b = make("binary_crossentropy", 1);
    sigmoid_f(x, p, N * D);
    ct_loss_compute(&a, p, t, NULL, N, D, NULL, 1, per_a, &st);
    ct_loss_compute(&b, x, t, NULL, N, D, NULL, 1, per_b, &st);
    for (int i = 0; i < N; i++) CHECK_NEAR(per_a[i], per_b[i], 1e-5);

    /* One-hot targets for the categorical pair. */
    float oh[N * D] = {0};
    for (int i = 0; i < N; i++) oh[i * D + (int)idx[i]] = 1;
    softmax_rows(x, p, N, D);
    a = make("categorical_crossentropy", 0), b = make("categorical_crossentropy", 1);
    ct_loss_compute(&a, p, oh, NULL, N, D, NULL, 1, per_a, &st);
    ct_loss_compute(&b, x, oh, NULL, N, D, NULL, 1, per_b, &st);
    for (int i = 0; i < N; i++) CHECK_NEAR(per_a[i], per_b[i], 1e-5);

    a = make("sparse_categorical_crossentropy", 0), b = make("sparse_categorical_crossentropy", 1);
    ct_loss_compute(&a, p, idx, NULL, N, D, NULL, 1, per_a, &st);
    ct_loss_compute(&b, x, idx, NULL, N, D, NULL, 1, per_b, &st);
    for (int i = 0; i < N; i++) CHECK_NEAR(per_a[i], per_b[i], 1e-5);
    /* And the sparse loss equals the dense one on the one-hot rows. */
    a = make("categorical_crossentropy", 1);
    ct_loss_compute(&a, x, oh, NULL, N, D, NULL, 1, per_a, &st);
    for (int i = 0; i < N; i++) CHECK_NEAR(per_a[i], per_b[i], 1e-6);
}

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void test_extreme_logits(void)
{
    ct_status st;
    float g[6];

    /* sigmoid crossentropy: x = 1000, t = 0 costs 1000; x = -1000, t = 1
     * costs 1000; the right answers cost ~0. Gradients are sigmoid - t,
     * i.e. (1, -1, 0, 0) / 4 (mean over the row). */
    const float bx[4] = {1000, -1000, 1000, -1000}, bt[4] = {0, 1, 1, 0};
    ct_loss l = make("binary_crossentropy", 1);
    double v = ct_loss_compute(&l, bx, bt, NULL, 1, 4, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 4));
    CHECK_NEAR(v, 2000.0 / 4, 1e-6);
    CHECK_NEAR(g[0], 0.25, 1e-7);
    CHECK_NEAR(g[1], -0.25, 1e-7);
    CHECK_NEAR(g[2], 0, 1e-7);

    /* softmax crossentropy: x (1000, -1000, 0), target class 1 costs
     * lse - x_1 = 1000 + 1000 = 2000; gradient softmax - onehot = (1, -1, 0). */
    const float cx[3] = {1000, -1000, 0}, ct[3] = {0, 1, 0}, c1 = 1;
    l = make("categorical_crossentropy", 1);
    v = ct_loss_compute(&l, cx, ct, NULL, 1, 3, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 3));
    CHECK_NEAR(v, 2000, 1e-6);
    CHECK_NEAR(g[0], 1, 1e-7);
    CHECK_NEAR(g[1], -1, 1e-7);
    l = make("sparse_categorical_crossentropy", 1);
    v = ct_loss_compute(&l, cx, &c1, NULL, 1, 3, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 3));
    CHECK_NEAR(v, 2000, 1e-6);

    /* Probabilities of exactly 0 and 1 are clipped: finite loss, and zero
     * gradient where the clip was active (p = 1e-9 and p = 1 are outside
     * [1e-7, 1 - 1e-7]). */
    const float pp[4] = {0, 1, 1e-9f, 0.5f}, pt[4] = {1, 0, 1, 1};
    l = make("binary_crossentropy", 0);
    v = ct_loss_compute(&l, pp, pt, NULL, 1, 4, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 4));
    CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] != 0);
    const float sp[3] = {0, 1e-9f, 0.7f}, s2 = 2;
    l = make("sparse_categorical_crossentropy", 0);
    v = ct_loss_compute(&l, sp, &s2, NULL, 1, 3, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 3));
    CHECK(g[0] == 0 && g[1] == 0 && g[2] != 0);
    const float sz[3] = {0.3f, 0, 0.7f};
    l = make("sparse_categorical_crossentropy", 0);
    const float s1 = 1; /* the target itself has probability 0 */
    v = ct_loss_compute(&l, sz, &s1, NULL, 1, 3, g, 1, NULL, &st);
    CHECK(isfinite(v) && all_finite(g, 3) && g[1] == 0);
}

/* ---- finite differences ------------------------------------------------- */

/* Central differences of L = sum_i w_i loss_i against grad / grad_scale.
 * Inputs are floats, so the step actually taken is measured after
 * rounding; the losses are accumulated in double by the library. */
static void check_gradient(const char *what, const ct_loss *l, float *p, const float *t, const float *w,
                           int n, int d)
{
    const float scale = 0.5f;
    const double h = 1e-3;
    float *grad = malloc((size_t)(n * d) * sizeof *grad);
    ct_status st;
    ct_loss_compute(l, p, t, w, n, d, grad, scale, NULL, &st);
    CHECK(st == CT_OK);
    int bad = 0;
    for (int k = 0; k < n * d; k++) {
        float orig = p[k];
        float up = (float)(orig + h), down = (float)(orig - h);
        p[k] = up;
        double lp = loss_sum(l, p, t, w, n, d);
        p[k] = down;
        double lm = loss_sum(l, p, t, w, n, d);
        p[k] = orig;
        double fd = (lp - lm) / ((double)up - (double)down);
        double an = grad[k] / scale;
        if (!(fabs(an - fd) <= 1e-4 * fmax(1.0, fabs(fd)))) {
            if (bad++ < 3)
                fprintf(stderr, "%s: d/dp[%d] = %.8g, finite difference %.8g\n", what, k, an, fd);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d gradient entries off", what, bad);
    free(grad);
}

static void test_gradients(void)
{
    enum { N = 4, D = 5 };
    ct_rng r = ct_rng_make(11, CT_RNG_TEST, 2);
    float p[N * D], t[N * D], w[N], idx[N];
    ct_rng_fill_uniform(&r, 0, 0, 1, w, N);

    /* Regression losses: errors at least 0.1 from the kinks (0 for mae,
     * +-delta for huber); targets in [-1, 1]. */
    ct_rng_fill_uniform(&r, 10, -1, 1, t, N * D);
    for (int k = 0; k < N * D; k++) {
        float e = 0.1f + 1.5f * ct_rng_uniform(&r, 100 + k); /* |e| in [0.1, 1.6] */
        if (fabsf(e - 1.0f) < 0.1f) e += 0.25f;               /* away from delta = 1 */
        p[k] = t[k] + (k % 2 ? e : -e);
    }
    const char *regression[] = {"mse", "mae", "huber"};
    for (int i = 0; i < 3; i++) {
        ct_loss l = make(regression[i], 0);
        check_gradient(regression[i], &l, p, t, w, N, D);
        check_gradient(regression[i], &l, p, t, NULL, N, D);
    }
    ct_loss hl = make("huber", 0);
    hl.delta = 0.5;
    check_gradient("huber delta 0.5", &hl, p, t, w, N, D);

    /* Crossentropies on probabilities: p in [0.1, 0.9], far from the clip;
     * soft targets; categorical rows deliberately not normalised so the
     * p / sum(p) step is part of the derivative. */
    ct_rng_fill_uniform(&r, 200, 0.1f, 0.9f, p, N * D);
    ct_rng_fill_uniform(&r, 300, 0, 1, t, N * D);
    for (int i = 0; i < N; i++) idx[i] = (float)ct_rng_below(&r, 400 + i, D);
    ct_loss l = make("binary_crossentropy", 0);
    check_gradient("binary_crossentropy", &l, p, t, w, N, D);
    l = make("categorical_crossentropy", 0);
    check_gradient("categorical_crossentropy", &l, p, t, w, N, D);
    l = make("sparse_categorical_crossentropy", 0);
    check_gradient("sparse_categorical_crossentropy", &l, p, idx, w, N, D);

    /* Logits in [-4, 4]; categorical targets that do not sum to one check
     * that the gradient is exact (softmax * sum(t) - t). */
    ct_rng_fill_uniform(&r, 500, -4, 4, p, N * D);
    l = make("binary_crossentropy", 1);
    check_gradient("binary_crossentropy from_logits", &l, p, t, w, N, D);
    l = make("categorical_crossentropy", 1);
    check_gradient("categorical_crossentropy from_logits", &l, p, t, w, N, D);
    l = make("sparse_categorical_crossentropy", 1);
    check_gradient("sparse_categorical_crossentropy from_logits", &l, p, idx, w, N, D);
}

static void test_weights(void)
{
    enum { N = 3, D = 4 };
    ct_rng r = ct_rng_make(3, CT_RNG_TEST, 3);
    float p[N * D], t[N * D], per[N], gw[N * D], g1[N * D];
    const float w[N] = {0.5f, 0, 2};
    ct_rng_fill_uniform(&r, 0, 0.1f, 0.9f, p, N * D);
    ct_rng_fill_uniform(&r, 50, 0, 1, t, N * D);
    ct_status st;
    for (int k = 0; k < CT_LOSS_COUNT; k++) {
        ct_loss l = {.kind = (ct_loss_kind)k, .delta = 1.0};
        float idx[N] = {0, 3, 1};
        const float *tg = k == CT_LOSS_SCCE ? idx : t;
        double total = ct_loss_compute(&l, p, tg, w, N, D, gw, 1, per, &st);
        ct_loss_compute(&l, p, tg, NULL, N, D, g1, 1, NULL, &st);
        /* The return is sum_i w_i loss_i; per_sample is unweighted. */
        CHECK_NEAR(total, 0.5 * per[0] + 2 * per[2], 1e-6);
        CHECK_NEAR(loss_sum(&l, p, tg, NULL, N, D), per[0] + per[1] + per[2], 1e-6);
        /* Each row's gradient is the unweighted one times its weight. */
        for (int i = 0; i < N; i++)
            for (int j = 0; j < D; j++) CHECK_NEAR(gw[i * D + j], w[i] * g1[i * D + j], 1e-7);
        /* grad_scale multiplies the gradient, not the loss. */
        float gs[N * D];
        double again = ct_loss_compute(&l, p, tg, w, N, D, gs, 0.25f, NULL, &st);
        CHECK_NEAR(again, total, 1e-12);
        for (int j = 0; j < N * D; j++) CHECK_NEAR(gs[j], 0.25 * gw[j], 1e-7);
    }
}

static void test_sparse_errors(void)
{
    ct_loss l = make("sparse_categorical_crossentropy", 0);
    const float p[6] = {0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f};
    float g[6], per[2];
    ct_status st;
    const float bad_targets[][2] = {{0, 3}, {-1, 0}, {1, 1.5f}, {NAN, 0}};
    const char *expect[] = {"sample 1 has target 3", "sample 0 has target -1", "sample 1 has target 1.5",
                            "sample 0 has target nan"};
    for (int k = 0; k < 4; k++) {
        memset(g, 0x7f, sizeof g);
        ct_loss_compute(&l, p, bad_targets[k], NULL, 2, 3, g, 1, per, &st);
        CHECK(st == CT_ERR_DATA);
        CHECK_STR_CONTAINS(ct_error_message(), expect[k]);
        CHECK_STR_CONTAINS(ct_error_message(), "[0, 3)");
        CHECK(g[0] == 0 && g[5] == 0); /* left defined */
    }
    const float good[2] = {2, 0};
    ct_loss_compute(&l, p, good, NULL, 2, 3, g, 1, per, &st);
    CHECK(st == CT_OK);
    l.from_logits = 1;
    ct_loss_compute(&l, p, bad_targets[0], NULL, 2, 3, g, 1, per, &st);
    CHECK(st == CT_ERR_DATA);
}

/* Above the threading threshold the result equals row-by-row calls. */
static void test_threaded(void)
{
    enum { N = 2000, D = 50 };
    float *p = malloc(N * D * sizeof *p), *t = malloc(N * D * sizeof *t), *g = malloc(N * D * sizeof *g);
    float *g1 = malloc(D * sizeof *g1), *w = malloc(N * sizeof *w);
    ct_rng r = ct_rng_make(5, CT_RNG_TEST, 4);
    ct_rng_fill_uniform(&r, 0, 0.05f, 1, p, N * D);
    ct_rng_fill_uniform(&r, N * D, 0, 1, t, N * D);
    ct_rng_fill_uniform(&r, 2 * N * D, 0, 2, w, N);
    ct_loss l = make("categorical_crossentropy", 0);
    ct_status st;
    double total = ct_loss_compute(&l, p, t, w, N, D, g, 0.1f, NULL, &st), rows = 0;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        rows += ct_loss_compute(&l, p + i * D, t + i * D, w + i, 1, D, g1, 0.1f, NULL, &st);
        for (int j = 0; j < D; j++) bad += g1[j] != g[i * D + j];
    }
    CHECK_NEAR(total, rows, 1e-9 * fabs(rows));
    CHECK(bad == 0);
    free(p), free(t), free(g), free(g1), free(w);
}

int main(void)
{
    test_names();
    test_known_values();
    test_logits_match_probabilities();
    test_extreme_logits();
    test_gradients();
    test_weights();
    test_sparse_errors();
    test_threaded();
    return ct_test_report("test_loss");
}
