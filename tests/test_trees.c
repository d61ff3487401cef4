/* Boosted trees (core/trees.h) on tiny sets whose splits, gains and leaf
 * values are worked out by hand in the comments; missing values going the
 * learned way; a categorical split; sklearn's early-stopping rule; bin
 * edges (sklearn's midpoints and numpy's 'midpoint' percentiles); the CSV
 * text mode; the model file round trip; the same trees for 1 and 2
 * threads. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "tmpfiles.h"
#include "../core/trees.h"
#include "../data/sources.h"

static ct_comm solo = {.rank = 0, .size = 1};

/* A model of F features (categorical when cat[f]) for `loss`. */
static void model_init(ct_trees *m, ct_trees_loss loss, int F, const int *cat, int n_levels, int n_classes)
{
    memset(m, 0, sizeof *m);
    m->loss = loss;
    m->n_features = F;
    m->n_classes = n_classes;
    m->k = loss == CT_TREES_MULTICLASS ? n_classes : 1;
    m->features = calloc((size_t)F, sizeof *m->features);
    for (int f = 0; f < F; f++) {
        char b[16];
        snprintf(b, sizeof b, "x%d", f);
        m->features[f].name = strdup(b);
        if (cat && cat[f]) {
            m->features[f].categorical = 1;
            m->features[f].levels = calloc((size_t)n_levels, sizeof(char *));
            for (int c = 0; c < n_levels; c++) {
                snprintf(b, sizeof b, "c%d", c);
                m->features[f].levels[c] = strdup(b);
            }
            m->features[f].n_levels = n_levels;
        }
    }
}

static void data_init(ct_trees_data *d, const float *x, const float *y, int64_t n, int F)
{
    memset(d, 0, sizeof *d);
    d->train.n = n;
    d->train.x_size = F;
    d->train.y_size = 1;
    d->train.x_shape = ct_shape1(F);
    d->train.y_shape = ct_shape1(1);
    d->train.x = malloc(sizeof(float) * (size_t)(n * F));
    d->train.y = malloc(sizeof(float) * (size_t)n);
    memcpy(d->train.x, x, sizeof(float) * (size_t)(n * F));
    memcpy(d->train.y, y, sizeof(float) * (size_t)n);
}

static ct_trees_params params(ct_trees_loss loss)
{
    ct_trees_params p = {.loss = loss, .learning_rate = 1, .l2 = 0, .max_iter = 1, .max_leaf_nodes = 2,
                         .max_depth = 0, .min_samples_leaf = 1, .max_bins = 255, .n_iter_no_change = 10,
                         .tol = 1e-7, .subsample_bins = 200000, .seed = 1, .need_train_loss = 1};
    return p;
}

static double predict1(const ct_trees *m, const float *x)
{
    double r[256];
    ct_trees_predict_raw(m, x, 1, r);
    return r[0];
}

/* y = 1 for x in 1..4, 5 for x in 5..8. Baseline mean 3, gradients
 * raw - y = +2 (left) / -2 (right), hessians 1. Split x <= 4.5: G_L = 8,
 * H_L = 4, G_R = -8, H_R = 4; gain = G_L^2/H_L + G_R^2/H_R - 0 = 32;
 * leaves -8/4 = -2 and +2, so predictions 1 and 5. */
static void test_regression_stump(void)
{
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {1, 1, 1, 1, 5, 5, 5, 5};
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_SQUARED_ERROR, 1, NULL, 0, 0);
    data_init(&d, x, y, 8, 1);
    ct_trees_params p = params(CT_TREES_SQUARED_ERROR);
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    CHECK(m.n_iter == 1);
    CHECK_NEAR(m.baseline[0], 3, 1e-12);
    const ct_tree *t = &m.trees[0];
    CHECK(t->n_nodes == 3);
    CHECK(t->nodes[0].feature == 0);
    CHECK_NEAR(t->nodes[0].threshold, 4.5, 0);
    CHECK_NEAR(t->nodes[0].gain, 32, 1e-9);
    CHECK(t->nodes[0].count == 8);
    CHECK_NEAR(t->nodes[t->nodes[0].left].value, -2, 1e-9);
    CHECK_NEAR(t->nodes[t->nodes[0].right].value, 2, 1e-9);
    float q[1] = {4.4f};
    CHECK_NEAR(predict1(&m, q), 1, 1e-9);
    q[0] = 4.6f;
    CHECK_NEAR(predict1(&m, q), 5, 1e-9);
    /* edges: midpoints of the 8 distinct values */
    CHECK(m.features[0].n_edges == 7);
    CHECK_NEAR(m.features[0].edges[0], 1.5, 0);
    CHECK_NEAR(m.features[0].edges[6], 7.5, 0);
    /* train loss (half squared error): 0 after the tree, 0.5 * 4 before */
    CHECK_NEAR(m.train_loss[0], 2, 1e-9);
    CHECK_NEAR(m.train_loss[1], 0, 1e-9);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

/* Binary log loss: y = 0, 0, 1, 1 at x = 1..4. Baseline p = 0.5, raw 0;
 * g = p - y = +-0.5, h = p(1-p) = 0.25. Split x <= 2.5: G_L = 1, H_L =
 * 0.5: leaf -G/H = -2, right +2; gain 1/0.5 + 1/0.5 = 4. Loss after:
 * log(1 + e^-2) per row. */
static void test_binary_stump(void)
{
    float x[4] = {1, 2, 3, 4}, y[4] = {0, 0, 1, 1};
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_BINARY, 1, NULL, 0, 2);
    data_init(&d, x, y, 4, 1);
    ct_trees_params p = params(CT_TREES_BINARY);
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    const ct_tree *t = &m.trees[0];
    CHECK_NEAR(m.baseline[0], 0, 1e-12);
    CHECK_NEAR(t->nodes[0].threshold, 2.5, 0);
    CHECK_NEAR(t->nodes[0].gain, 4, 1e-9);
    CHECK_NEAR(t->nodes[t->nodes[0].left].value, -2, 1e-9);
    CHECK_NEAR(t->nodes[t->nodes[0].right].value, 2, 1e-9);
    CHECK_NEAR(m.train_loss[0], log(2.0), 1e-12);
    CHECK_NEAR(m.train_loss[1], log1p(exp(-2.0)), 1e-9);
    float out[1], q[1] = {3.5f};
    ct_trees_predict(&m, q, 1, out);
    CHECK_NEAR(out[0], 1 / (1 + exp(-2.0)), 1e-6);
    ct_trees_scores sc;
    CHECK(ct_trees_evaluate(&m, &d.train, &sc) == CT_OK);
    CHECK_NEAR(sc.accuracy, 1, 0);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

/* Missing values: x = 1, 2, 3, 4, NaN, NaN, 7, 8. With the NaN rows'
 * labels like the high ones the best split sends missing right (x <= 5.5,
 * gain 32 as in the stump); with them like the low ones, left. */
static void test_missing_direction(void)
{
    for (int low = 0; low < 2; low++) {
        float x[8] = {1, 2, 3, 4, NAN, NAN, 7, 8};
        float y[8] = {1, 1, 1, 1, 5, 5, 5, 5};
        if (low) y[4] = y[5] = 1, y[0] = y[1] = 5; /* low side: NaN + 3, 4; high: 1, 2 ... */
        if (low) { /* make it clean: x 1, 2 high; 3, 4, NaN, NaN low; 7, 8 high */
            float xs[8] = {7, 8, 3, 4, NAN, NAN, 9, 10}, ys[8] = {5, 5, 1, 1, 1, 1, 5, 5};
            memcpy(x, xs, sizeof x);
            memcpy(y, ys, sizeof y);
        }
        ct_trees m;
        ct_trees_data d;
        model_init(&m, CT_TREES_SQUARED_ERROR, 1, NULL, 0, 0);
        data_init(&d, x, y, 8, 1);
        ct_trees_params p = params(CT_TREES_SQUARED_ERROR);
        CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
        const ct_tree_node *root = &m.trees[0].nodes[0];
        CHECK(m.features[0].has_missing == 1);
        CHECK_MSG(root->missing_left == low, "missing_left %d, expected %d", root->missing_left, low);
        CHECK_NEAR(root->gain, 32, 1e-9);
        CHECK_NEAR(root->threshold, low ? 5.5 : 5.5, 0);
        float q[1] = {NAN};
        CHECK_NEAR(predict1(&m, q), low ? 1 : 5, 1e-9);
        ct_trees_data_free(&d);
        ct_trees_free(&m);
    }
}

/* A categorical feature of 4 categories, 10 rows each (sklearn's minimum
 * support), y = 0, 10, 0, 10. Baseline 5; per category G = +50 or -50,
 * H = 10, sorted by G / (H + 10) = 2.5 or -2.5: categories 1, 3 first.
 * Taking both: G_L = -100, H_L = 20, gain 100^2/20 * 2 = 1000; leaves +5
 * (categories 1, 3 -> 10) and -5 (0, 2 -> 0). An unknown category goes
 * where missing values go: here (no missing in training, 20 and 20
 * samples) right. */
static void test_categorical_split(void)
{
    float x[40], y[40];
    for (int i = 0; i < 40; i++) {
        x[i] = (float)(i % 4);
        y[i] = i % 2 ? 10.0f : 0.0f;
    }
    int cat[1] = {1};
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_SQUARED_ERROR, 1, cat, 4, 0);
    data_init(&d, x, y, 40, 1);
    ct_trees_params p = params(CT_TREES_SQUARED_ERROR);
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    const ct_tree_node *root = &m.trees[0].nodes[0];
    CHECK(root->categorical == 1);
    CHECK_MSG(root->cats[0] == ((1u << 1) | (1u << 3)), "left categories 0x%x", root->cats[0]);
    CHECK_NEAR(root->gain, 1000, 1e-6);
    CHECK(root->missing_left == 0);
    for (int c = 0; c < 4; c++) {
        float q[1] = {(float)c};
        CHECK_NEAR(predict1(&m, q), c % 2 ? 10 : 0, 1e-9);
    }
    float q[1] = {NAN};
    CHECK_NEAR(predict1(&m, q), 0, 1e-9);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

/* sklearn's rule with a validation part whose labels are the opposite of
 * the training labels: every tree makes the validation loss worse, so no
 * score after the baseline beats it and training stops after exactly
 * n_iter_no_change iterations. */
static void test_early_stopping(void)
{
    enum { N = 200 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i;
        y[i] = i < N / 2 ? 0.0f : 1.0f;
    }
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_BINARY, 1, NULL, 0, 2);
    data_init(&d, x, y, N, 1);
    d.val = d.train;
    d.val.x = malloc(sizeof x);
    d.val.y = malloc(sizeof y);
    memcpy(d.val.x, x, sizeof x);
    for (int i = 0; i < N; i++) d.val.y[i] = 1 - y[i];
    ct_trees_params p = params(CT_TREES_BINARY);
    p.max_iter = 50;
    p.learning_rate = 0.1;
    p.early_stopping = 1;
    p.n_iter_no_change = 3;
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    CHECK_MSG(m.n_iter == 3, "stopped after %d iterations", m.n_iter);
    CHECK(m.early_stopped == 1);
    for (int i = 1; i <= m.n_iter; i++) CHECK(m.val_loss[i] > m.val_loss[i - 1]);
    ct_trees_free(&m);
    /* validation like training: the loss keeps falling by more than tol,
     * so no stop before max_iter */
    model_init(&m, CT_TREES_BINARY, 1, NULL, 0, 2);
    memcpy(d.val.y, y, sizeof y);
    p.max_iter = 12;
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    CHECK(m.n_iter == 12 && !m.early_stopped);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

/* More than max_bins distinct values: numpy's percentile 'midpoint' at
 * 100 * b / max_bins. Values 0..999, max_bins 4: positions 249.75,
 * 499.5, 749.25 give 249.5, 499.5, 749.5. */
static void test_quantile_edges(void)
{
    enum { N = 1000 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7) % N), y[i] = (float)(i % 3);
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_SQUARED_ERROR, 1, NULL, 0, 0);
    data_init(&d, x, y, N, 1);
    ct_trees_params p = params(CT_TREES_SQUARED_ERROR);
    p.max_bins = 4;
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    CHECK(m.features[0].n_edges == 3);
    CHECK_NEAR(m.features[0].edges[0], 249.5, 0);
    CHECK_NEAR(m.features[0].edges[1], 499.5, 0);
    CHECK_NEAR(m.features[0].edges[2], 749.5, 0);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

/* Growth limits on 64 rows of 2 features: depth-wise with max_depth 2
 * gives 4 leaves at depth 2; leaf-wise with max_leaf_nodes 3 gives 3;
 * min_samples_leaf 10 keeps every leaf at 10 samples or more. */
static void test_growth_limits(void)
{
    enum { N = 64 };
    float x[2 * N], y[N];
    for (int i = 0; i < N; i++) {
        x[2 * i] = (float)i, x[2 * i + 1] = (float)((i * 37) % N);
        y[i] = (float)(i % 8) + (float)(i / 16);
    }
    for (int mode = 0; mode < 3; mode++) {
        ct_trees m;
        ct_trees_data d;
        model_init(&m, CT_TREES_SQUARED_ERROR, 2, NULL, 0, 0);
        data_init(&d, x, y, N, 2);
        ct_trees_params p = params(CT_TREES_SQUARED_ERROR);
        if (mode == 0) p.depthwise = 1, p.max_depth = 2, p.max_leaf_nodes = 0;
        if (mode == 1) p.max_leaf_nodes = 3;
        if (mode == 2) p.max_leaf_nodes = 31, p.min_samples_leaf = 10;
        CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
        const ct_tree *t = &m.trees[0];
        int leaves = 0, ok = 1;
        for (int j = 0; j < t->n_nodes; j++) {
            if (t->nodes[j].left >= 0) continue;
            leaves++;
            if (mode == 0 && t->nodes[j].depth != 2) ok = 0;
            if (mode == 2 && t->nodes[j].count < 10) ok = 0;
        }
        CHECK_MSG(ok && leaves == (mode == 0 ? 4 : mode == 1 ? 3 : leaves), "mode %d: %d leaves", mode, leaves);
        if (mode == 2) CHECK(leaves > 2 && leaves <= N / 10);
        ct_trees_data_free(&d);
        ct_trees_free(&m);
    }
}

/* Random data of 40,000 rows (histograms and binning go parallel above
 * a few thousand rows): 1 and 2 threads grow the same trees bit for bit;
 * a saved and reloaded model predicts the same bits. Softmax of 3 classes
 * with a categorical feature and missing values. */
static void fit_random(int threads, ct_trees *m)
{
    enum { N = 40000, F = 6 };
    float *x = malloc(sizeof(float) * N * F), *y = malloc(sizeof(float) * N);
    uint64_t s = 12345;
    for (int i = 0; i < N * F; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 33) % 10000) / 100.0f;
        if (i % F == 5) x[i] = (float)((s >> 40) % 5);
        if ((s >> 20) % 17 == 0) x[i] = NAN;
    }
    for (int i = 0; i < N; i++)
        y[i] = (float)(((x[i * F] > 50) + (x[i * F + 5] == 2) + (x[i * F + 1] > 20)) % 3);
    int cat[F] = {0, 0, 0, 0, 0, 1};
    ct_trees_data d;
    model_init(m, CT_TREES_MULTICLASS, F, cat, 5, 3);
    data_init(&d, x, y, N, F);
    ct_trees_params p = params(CT_TREES_MULTICLASS);
    p.max_iter = 5, p.learning_rate = 0.1, p.max_leaf_nodes = 31, p.min_samples_leaf = 20;
    omp_set_num_threads(threads);
    CHECK(ct_trees_fit(m, &d, &p, &solo, NULL) == CT_OK);
    ct_trees_scores sc;
    CHECK(ct_trees_evaluate(m, &d.train, &sc) == CT_OK);
    CHECK_MSG(sc.accuracy > 0.9, "training accuracy %.4f", sc.accuracy);
    ct_trees_data_free(&d);
    free(x);
    free(y);
}

static int same_trees(const ct_trees *a, const ct_trees *b)
{
    if (a->n_iter != b->n_iter || a->k != b->k) return 0;
    for (int t = 0; t < a->n_iter * a->k; t++) {
        if (a->trees[t].n_nodes != b->trees[t].n_nodes) return 0;
        for (int j = 0; j < a->trees[t].n_nodes; j++) {
            const ct_tree_node *p = &a->trees[t].nodes[j], *q = &b->trees[t].nodes[j];
            if (p->left != q->left || p->feature != q->feature || p->bin != q->bin || p->missing_left != q->missing_left ||
                memcmp(p->cats, q->cats, sizeof p->cats) || memcmp(&p->value, &q->value, sizeof p->value) ||
                memcmp(&p->gain, &q->gain, sizeof p->gain) || p->count != q->count)
                return 0;
        }
    }
    return 1;
}

static void test_threads_and_file(void)
{
    ct_trees a, b, c;
    fit_random(1, &a);
    fit_random(2, &b);
    CHECK_MSG(same_trees(&a, &b), "1 and 2 threads grew different trees");
    CHECK(tmp_make("trees"));
    const char *path = tmp_path("m.h5");
    ct_config *cfg = NULL;
    const char *conf = "[model]\nkind = boosted_trees\n[boosted_trees]\nloss = log_loss\n";
    CHECK(ct_config_parse(conf, strlen(conf), "t.conf", NULL, &cfg) == CT_OK);
    CHECK(ct_trees_save(path, cfg, &a) == CT_OK);
    CHECK(ct_trees_file_is(path) == 1);
    ct_config *cfg2 = NULL;
    CHECK_MSG(ct_trees_load(path, &cfg2, &c) == CT_OK, "%s", ct_error_message());
    CHECK(same_trees(&a, &c));
    CHECK(cfg2 && ct_config_is_trees(cfg2));
    float x[6 * 3] = {10, 20, 30, 40, 50, 2, 70, 1, NAN, 3, 4, 0, 55, 25, 5, 5, 5, 4};
    float pa[9], pc[9];
    ct_trees_predict(&a, x, 3, pa);
    ct_trees_predict(&c, x, 3, pc);
    CHECK(memcmp(pa, pc, sizeof pa) == 0);
    CHECK_NEAR(pa[0] + pa[1] + pa[2], 1, 1e-6);
    tmp_remove();
    ct_config_free(cfg);
    ct_config_free(cfg2);
    ct_trees_free(&a);
    ct_trees_free(&b);
    ct_trees_free(&c);
}

/* CSV text mode: missing spellings are NaN, a text column's codes follow
 * the byte order of its texts, lines are kept per row. */
static void test_csv_text(void)
{
    const char text[] = "a,b,y\n1,red,0\n,blue,1\n\n3,red,1\nNA,green,0\n";
    ct_csv_options o = {.delimiter = ',', .header = 1, .text = 1};
    ct_stage *s = NULL;
    CHECK(tmp_make("trees_csv"));
    write_file(tmp_path("t.csv"), text, sizeof text - 1);
    CHECK(ct_csv_open(tmp_path("t.csv"), &o, &s) == CT_OK);
    tmp_remove();
    if (!s) return;
    const char *const *lv;
    const long *ln;
    CHECK(ct_csv_levels(s, 0, NULL, NULL) == 0);
    CHECK(ct_csv_levels(s, 1, &lv, &ln) == 3);
    CHECK(strcmp(lv[0], "blue") == 0 && strcmp(lv[1], "green") == 0 && strcmp(lv[2], "red") == 0);
    CHECK(ln[0] == 3 && ln[1] == 6 && ln[2] == 2);
    CHECK(strcmp(ct_csv_feature_name(s, 1), "b") == 0);
    CHECK(ct_csv_line(s, 2) == 5);
    float x[2], y[1];
    ct_sample smp = {x, y, 0, 1};
    CHECK(ct_stage_get(s, 1, &smp) == CT_OK);
    CHECK(isnan(x[0]) && x[1] == 0 && y[0] == 1);
    CHECK(ct_stage_get(s, 3, &smp) == CT_OK);
    CHECK(isnan(x[0]) && x[1] == 1);
    ct_stage_close(s);
    /* without text mode the same file is an error naming line and column */
    o.text = 0;
    CHECK_FAILS(ct_csv_open_memory(text, sizeof text - 1, "t.csv", &o, &s), CT_ERR_DATA, "t.csv:2", "column 2");
}

/* Class weights: sklearn's "balanced" is n / (n_classes * count); a
 * list is taken as given; the baseline is the weighted mean: with y = 0,
 * 0, 0, 1 and weights 1, 3, p = 3/6, raw 0; a list of the wrong length
 * names the key. */
static void test_class_weight(void)
{
    const char *conf = "[model]\nkind = boosted_trees\n[boosted_trees]\nloss = log_loss\nclass_weight = balanced\n";
    ct_config *cfg = NULL;
    CHECK(ct_config_parse(conf, strlen(conf), "w.conf", NULL, &cfg) == CT_OK);
    if (!cfg) return;
    float x[4] = {1, 2, 3, 4}, y[4] = {0, 0, 0, 1};
    ct_trees m;
    ct_trees_data d;
    model_init(&m, CT_TREES_BINARY, 1, NULL, 0, 2);
    data_init(&d, x, y, 4, 1);
    ct_trees_params p;
    CHECK(ct_trees_params_from_config(cfg, &m, &d.train, &p) == CT_OK);
    CHECK(p.class_weight && fabs(p.class_weight[0] - 4.0 / 6) < 1e-12 && fabs(p.class_weight[1] - 2.0) < 1e-12);
    CHECK(p.early_stopping == 0 && p.max_leaf_nodes == 31 && p.min_samples_leaf == 20 && p.max_bins == 255);
    ct_trees_params_free(&p);
    CHECK(ct_config_override(cfg, "boosted_trees.class_weight=1, 3") == CT_OK);
    CHECK(ct_trees_params_from_config(cfg, &m, &d.train, &p) == CT_OK);
    p.min_samples_leaf = 1, p.learning_rate = 1;
    CHECK(ct_trees_fit(&m, &d, &p, &solo, NULL) == CT_OK);
    CHECK_NEAR(m.baseline[0], 0, 1e-12);
    ct_trees_params_free(&p);
    CHECK(ct_config_override(cfg, "boosted_trees.class_weight=1, 2, 3") == CT_OK);
    CHECK_FAILS(ct_trees_params_from_config(cfg, &m, &d.train, &p), CT_ERR_CONFIG, "class_weight", "2 non-negative weights");
    ct_config_free(cfg);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
}

int main(void)
{
    test_class_weight();
    test_regression_stump();
    test_binary_stump();
    test_missing_direction();
    test_categorical_split();
    test_early_stopping();
    test_quantile_edges();
    test_growth_limits();
    test_threads_and_file();
    test_csv_text();
    return ct_test_report("test_trees");
}
