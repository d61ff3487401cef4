/* Metric tests: Keras's resolution of "accuracy", known answers for each
 * metric (ties, thresholds, soft targets, top-k boundaries), weights,
 * accumulation across updates and the threaded path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "metrics.h"
#include "rng.h"

static ct_metric resolve(const char *name, const char *loss_name, int64_t out_dim)
{
    ct_loss loss;
    ct_metric m;
    memset(&m, 0, sizeof m);
    if (loss_name) CHECK(ct_loss_from_name(loss_name, &loss) == CT_OK);
    ct_status st = ct_metric_resolve(name, loss_name ? &loss : NULL, out_dim, &m);
    CHECK_MSG(st == CT_OK, "%s: %s", name, ct_error_message());
    return m;
}

/* One update from zero; returns the value. */
static double value_of(ct_metric *m, const float *p, const float *t, const float *w, int64_t n, int64_t d)
{
    ct_metric_reset(m);
    ct_metric_update(m, p, t, w, n, d);
    return ct_metric_value(m);
}

static void test_resolution(void)
{
    ct_metric m;
    /* Keras compile_utils: one output unit means binary, whatever the loss. */
    m = resolve("accuracy", "binary_crossentropy", 1);
    CHECK(m.kind == CT_METRIC_BINARY_ACCURACY && strcmp(m.name, "accuracy") == 0);
    m = resolve("accuracy", "sparse_categorical_crossentropy", 1);
    CHECK(m.kind == CT_METRIC_BINARY_ACCURACY);
    m = resolve("acc", "sparse_categorical_crossentropy", 10);
    CHECK(m.kind == CT_METRIC_SPARSE_CATEGORICAL_ACCURACY && strcmp(m.name, "acc") == 0);
    m = resolve("accuracy", "categorical_crossentropy", 10);
    CHECK(m.kind == CT_METRIC_CATEGORICAL_ACCURACY && strcmp(m.name, "accuracy") == 0);
    m = resolve("accuracy", "mse", 3);
    CHECK(m.kind == CT_METRIC_CATEGORICAL_ACCURACY);
    m = resolve("accuracy", NULL, 3);
    CHECK(m.kind == CT_METRIC_CATEGORICAL_ACCURACY);

    m = resolve("mse", "mse", 2);
    CHECK(m.kind == CT_METRIC_MSE && strcmp(m.name, "mse") == 0);
    m = resolve("mean_squared_error", "mse", 2);
    CHECK(m.kind == CT_METRIC_MSE && strcmp(m.name, "mean_squared_error") == 0);
    m = resolve("mae", "mse", 2);
    CHECK(m.kind == CT_METRIC_MAE && strcmp(m.name, "mae") == 0);
    m = resolve("mean_absolute_error", NULL, 2);
    CHECK(m.kind == CT_METRIC_MAE);
    m = resolve("binary_accuracy", "binary_crossentropy", 3);
    CHECK(m.kind == CT_METRIC_BINARY_ACCURACY && m.threshold == 0.5);
    m = resolve("top_k_categorical_accuracy", "categorical_crossentropy", 10);
    CHECK(m.kind == CT_METRIC_TOP_K_CATEGORICAL_ACCURACY && m.k == 5);
    CHECK(strcmp(m.name, "top_k_categorical_accuracy") == 0 && m.sum == 0 && m.count == 0);
    m = resolve("sparse_top_k_categorical_accuracy", "sparse_categorical_crossentropy", 10);
    CHECK(m.kind == CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY && m.k == 5);

    int n;
    const char *const *names = ct_metric_names(&n);
    CHECK(n == 11 && strcmp(names[0], "accuracy") == 0);

    ct_loss cce, scce;
    ct_loss_from_name("categorical_crossentropy", &cce);
    ct_loss_from_name("sparse_categorical_crossentropy", &scce);
    CHECK(ct_metric_resolve("accuracyy", &cce, 10, &m) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "unknown metric 'accuracyy': known are accuracy, acc,");
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'accuracy'?");
    /* The target layout follows the loss; a metric reading the other
     * layout is refused. */
    CHECK(ct_metric_resolve("sparse_categorical_accuracy", &cce, 10, &m) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "class-index");
    CHECK(ct_metric_resolve("categorical_accuracy", &scce, 10, &m) == CT_ERR_CONFIG);
    CHECK(ct_metric_resolve("mse", &scce, 10, &m) == CT_ERR_CONFIG);
}

static void test_binary(void)
{
    ct_metric m = resolve("binary_accuracy", NULL, 1);
    /* p > 0.5 against t: 0.7 -> 1 == 1 hit; 0.5 -> 0 != 1 miss (strictly
     * greater); 0.2 -> 0 == 0 hit; 0.9 -> 1 != 0 miss. 2 of 4. */
    const float p[4] = {0.7f, 0.5f, 0.2f, 0.9f}, t[4] = {1, 1, 0, 0};
    CHECK_NEAR(value_of(&m, p, t, NULL, 4, 1), 0.5, 1e-12);
    /* As two samples of two outputs: per-sample means 0.5 and 0.5. With
     * weights (3, 1) and p (0.7, 0.6 | 0.2, 0.9), t (1, 1 | 0, 0):
     * sample 0 scores 1, sample 1 scores 0.5 -> (3 * 1 + 0.5) / 4. */
    const float p2[4] = {0.7f, 0.6f, 0.2f, 0.9f}, w[2] = {3, 1};
    CHECK_NEAR(value_of(&m, p2, t, w, 2, 2), 3.5 / 4, 1e-12);
    /* A soft target never equals a thresholded 0/1, as in Keras. */
    const float soft = 0.9f, high = 0.99f;
    CHECK(value_of(&m, &high, &soft, NULL, 1, 1) == 0);
    /* Another threshold. */
    m.threshold = 0.8;
    const float one = 1;
    CHECK(value_of(&m, &p[0], &one, NULL, 1, 1) == 0);
}

static void test_categorical(void)
{
    ct_metric m = resolve("categorical_accuracy", NULL, 3);
    /* Row 0: argmax p = 2, argmax t = 2: hit. Row 1: p ties at 0 and 1,
     * tf.argmax takes the first (0), the target is 1: miss. */
    const float p[6] = {0.1f, 0.2f, 0.7f, 0.4f, 0.4f, 0.2f}, t[6] = {0, 0, 1, 0, 1, 0};
    CHECK_NEAR(value_of(&m, p, t, NULL, 2, 3), 0.5, 1e-12);

    ct_metric s = resolve("sparse_categorical_accuracy", NULL, 3);
    /* Class indices as floats: 2 hits row 0; 0 hits row 1 (tie -> 0). */
    const float idx[2] = {2, 0};
    CHECK_NEAR(value_of(&s, p, idx, NULL, 2, 3), 1.0, 1e-12);
    /* Keras compares argmax cast to float with the target: 2.5 never
     * matches, and an index out of range never matches. */
    const float odd[2] = {2.5f, 7};
    CHECK(value_of(&s, p, odd, NULL, 2, 3) == 0);
}

/* The value for one sample of d scores with class index c. */
static double hit(ct_metric *m, const float *p, float c, int64_t d) { return value_of(m, p, &c, NULL, 1, d); }

static void test_top_k(void)
{
    ct_metric m = resolve("sparse_top_k_categorical_accuracy", NULL, 5);
    m.k = 2;
    const float p[5] = {0.1f, 0.3f, 0.3f, 0.2f, 0.1f};
    /* Class 3 (0.2): two classes score strictly higher, not < 2: miss.
     * Class 2 (0.3): none higher: hit. Class 1 likewise. */
    CHECK(hit(&m, p, 3, 5) == 0);
    CHECK(hit(&m, p, 2, 5) == 1);
    CHECK(hit(&m, p, 1, 5) == 1);
    /* Ties straddling the boundary all count (tf.math.in_top_k): with
     * (0.5, 0.2, 0.2, 0.1) and k = 2, classes 1 and 2 both have only one
     * higher score, so both are "in the top 2". */
    const float q[4] = {0.5f, 0.2f, 0.2f, 0.1f};
    CHECK(hit(&m, q, 1, 4) == 1);
    CHECK(hit(&m, q, 2, 4) == 1);
    CHECK(hit(&m, q, 3, 4) == 0);
    /* Targets are truncated to int32 like Keras's cast: 2.7 -> 2. */
    CHECK(hit(&m, q, 2.7f, 4) == 1);
    CHECK(hit(&m, q, 4, 4) == 0);
    /* A non-finite score anywhere in the row makes in_top_k say no. */
    const float bad[4] = {0.5f, NAN, 0.2f, 0.1f};
    CHECK(hit(&m, bad, 0, 4) == 0);
    /* k >= d: always in. */
    m.k = 5;
    CHECK(hit(&m, q, 3, 4) == 1);

    /* Dense top-k takes argmax of the one-hot target; default k = 5 of 7. */
    ct_metric d = resolve("top_k_categorical_accuracy", NULL, 7);
    const float p7[14] = {0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f, 0.1f,  /* row 0 */
                          0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f}; /* row 1 */
    const float t7[14] = {0, 0, 0, 0, 1, 0, 0, /* class 4 */
                          1, 0, 0, 0, 0, 0, 0}; /* class 0 */
    /* Row 0: class 4 has 4 higher scores, < 5: hit. Row 1: class 0 has 6: miss. */
    CHECK_NEAR(value_of(&d, p7, t7, NULL, 2, 7), 0.5, 1e-12);
}

static void test_regression(void)
{
    ct_metric m = resolve("mse", NULL, 2);
    /* Row 0: errors (1, -3) -> (1 + 9) / 2 = 5. Row 1: (0, 2) -> 2.
     * Unweighted mean 3.5; weights (1, 3) -> (5 + 6) / 4 = 2.75. */
    const float p[4] = {1, 0, 2, 2}, t[4] = {0, 3, 2, 0}, w[2] = {1, 3};
    CHECK_NEAR(value_of(&m, p, t, NULL, 2, 2), 3.5, 1e-12);
    CHECK_NEAR(value_of(&m, p, t, w, 2, 2), 2.75, 1e-12);
    ct_metric a = resolve("mae", NULL, 2);
    /* mae rows: (1 + 3) / 2 = 2, (0 + 2) / 2 = 1 -> 1.5; weighted (2 + 3) / 4. */
    CHECK_NEAR(value_of(&a, p, t, NULL, 2, 2), 1.5, 1e-12);
    CHECK_NEAR(value_of(&a, p, t, w, 2, 2), 1.25, 1e-12);
    CHECK(a.count == 4);
}

/* Two updates equal one update on the concatenation, for every metric,
 * with and without weights; reset clears; an empty metric reads 0. */
static void test_accumulation(void)
{
    enum { N = 10, D = 6 };
    ct_rng r = ct_rng_make(9, CT_RNG_TEST, 1);
    float p[N * D], t[N * D], idx[N], w[N];
    ct_rng_fill_uniform(&r, 0, 0, 1, p, N * D);
    ct_rng_fill_uniform(&r, 100, 0, 2, w, N);
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        idx[i] = (float)ct_rng_below(&r, 200 + i, D);
        t[i * D + (int)idx[i]] = 1;
    }
    const char *names[] = {"binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "mse", "mae"};
    for (int k = 0; k < 7; k++) {
        ct_metric m = resolve(names[k], NULL, D);
        const float *tg = strstr(names[k], "sparse") ? idx : t;
        int64_t tw = strstr(names[k], "sparse") ? 1 : D;
        for (int weighted = 0; weighted < 2; weighted++) {
            const float *ww = weighted ? w : NULL;
            ct_metric_reset(&m);
            CHECK(ct_metric_value(&m) == 0);
            ct_metric_update(&m, p, tg, ww, N, D);
            double sum = m.sum, count = m.count;
            ct_metric_reset(&m);
            ct_metric_update(&m, p, tg, ww, 4, D);
            ct_metric_update(&m, p + 4 * D, tg + 4 * tw, ww ? ww + 4 : NULL, N - 4, D);
            CHECK_NEAR(m.sum, sum, 1e-12);
            CHECK_NEAR(m.count, count, 1e-12);
            CHECK(weighted || count == N);
        }
    }
}

/* Above the threading threshold the totals equal sample-by-sample updates. */
static void test_threaded(void)
{
    enum { N = 3000, D = 40 };
    float *p = malloc(N * D * sizeof *p), *t = calloc(N * D, sizeof *t), *w = malloc(N * sizeof *w);
    ct_rng r = ct_rng_make(4, CT_RNG_TEST, 2);
    ct_rng_fill_uniform(&r, 0, 0, 1, p, N * D);
    ct_rng_fill_uniform(&r, N * D, 0, 1, w, N);
    for (int i = 0; i < N; i++) t[i * D + ct_rng_below(&r, 2 * N * D + i, D)] = 1;
    ct_metric all = resolve("top_k_categorical_accuracy", NULL, D), one = all;
    ct_metric_update(&all, p, t, w, N, D);
    for (int i = 0; i < N; i++) ct_metric_update(&one, p + i * D, t + i * D, w + i, 1, D);
    CHECK_NEAR(all.sum, one.sum, 1e-9 * one.sum);
    CHECK_NEAR(all.count, one.count, 1e-9 * one.count);
    free(p), free(t), free(w);
}

int main(void)
{
    test_resolution();
    test_binary();
    test_categorical();
    test_top_k();
    test_regression();
    test_accumulation();
    test_threaded();
    return ct_test_report("test_metrics");
}
