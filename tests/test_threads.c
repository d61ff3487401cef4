/* Training gives bitwise the same weights, loss and metric sums with 1, 2
 * and 3 threads: every reduction (the clipnorm norm, the loss and metric
 * sums, BatchNormalization's statistics, the layers' kernels) runs in an
 * order that does not depend on the thread count, and dropout's mask is
 * keyed by (seed, step, element), not by thread. Shapes are large enough
 * that every parallel path is taken (batch x units >= 65536). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "layer.h"
#include "ct_test.h"
#include "model.h"
#include "rng.h"

static const char conf[] =
    "[model]\ninput = 48\n"
    "[a]\ntype = dense\nunits = 256\nactivation = relu\n"
    "[bn]\ntype = batch_normalization\n"
    "[drop]\ntype = dropout\nrate = 0.3\n"
    "[out]\ntype = dense\nunits = 160\nactivation = softmax\n"
    "[train]\noptimizer = adam\nlearning_rate = 0.01\nclipnorm = 0.5\nloss = sparse_categorical_crossentropy\n"
    "metrics = accuracy\nbatch_size = 512\nseed = 7\n";

enum { BATCH = 512, IN = 48, CLASSES = 160, STEPS = 4 };

typedef struct run_out {
    float *values;
    int64_t n;
    double loss[STEPS], metric_sum, metric_count;
} run_out;

static int run(int threads, const float *x, const float *y, run_out *o)
{
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ct_config *c = NULL;
    ct_model *m = NULL;
    if (ct_config_parse(conf, strlen(conf), "threads.conf", NULL, &c) != CT_OK || ct_model_create(c, &m) != CT_OK) {
        fprintf(stderr, "%s\n", ct_error_message());
        ct_config_free(c);
        return 0;
    }
    int ok = 1;
    for (int s = 0; ok && s < STEPS; s++) ok = ct_model_train_global(m, x, y, BATCH, &o->loss[s]) == CT_OK;
    if (!ok) fprintf(stderr, "train: %s\n", ct_error_message());
    o->n = m->graph->n_values;
    o->values = malloc(sizeof(float) * (size_t)o->n);
    if (o->values) memcpy(o->values, m->graph->values, sizeof(float) * (size_t)o->n);
    o->metric_sum = m->metrics[0].sum;
    o->metric_count = m->metrics[0].count;
    ct_model_destroy(m);
    ct_config_free(c);
    return ok && o->values;
}

int main(void)
{
    ct_register_builtins();
    float *x = malloc(sizeof(float) * BATCH * IN), *y = malloc(sizeof(float) * BATCH);
    ct_rng r = ct_rng_make(3, CT_RNG_TEST, 0);
    ct_rng_fill_uniform(&r, 0, -2, 2, x, BATCH * IN);
    for (int i = 0; i < BATCH; i++) y[i] = (float)((i * 37) % CLASSES);
    run_out one = {0};
    CHECK(run(1, x, y, &one));
    CHECK(one.metric_count > 0 && isfinite(one.loss[STEPS - 1]));
    CHECK_MSG(one.loss[STEPS - 1] < one.loss[0], "the loss did not fall: %g -> %g", one.loss[0], one.loss[STEPS - 1]);
    for (int t = 2; t <= 3; t++) {
        run_out o = {0};
        CHECK(run(t, x, y, &o));
        if (o.values && one.values) {
            int64_t diff = -1;
            for (int64_t i = 0; i < o.n && diff < 0; i++)
                if (memcmp(&o.values[i], &one.values[i], sizeof(float)) != 0) diff = i;
            CHECK_MSG(o.n == one.n && diff < 0, "%d threads: weight %lld is %.9g, with 1 thread %.9g", t,
                      (long long)diff, diff >= 0 ? o.values[diff] : 0.0, diff >= 0 ? one.values[diff] : 0.0);
        }
        for (int s = 0; s < STEPS; s++)
            CHECK_MSG(memcmp(&o.loss[s], &one.loss[s], sizeof(double)) == 0, "%d threads: loss of step %d %.17g vs %.17g",
                      t, s, o.loss[s], one.loss[s]);
        CHECK_MSG(memcmp(&o.metric_sum, &one.metric_sum, sizeof(double)) == 0 &&
                      memcmp(&o.metric_count, &one.metric_count, sizeof(double)) == 0,
                  "%d threads: accuracy sum %.17g/%.17g vs %.17g/%.17g", t, o.metric_sum, o.metric_count,
                  one.metric_sum, one.metric_count);
        free(o.values);
    }
    free(one.values);
    free(x);
    free(y);
    return ct_test_report("test_threads");
}
