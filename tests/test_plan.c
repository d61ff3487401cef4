/* Plans that fail or are large: a failed ct_graph_plan (a batch whose
 * buffers cannot exist) leaves the previous plan whole, so training goes on
 * with the same results; gradient buckets have no fixed cap (3000
 * parameters give 3000 buckets, in order, covering the slab once). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ct_test.h"
#include "grad_sync.h"
#include "graph.h"
#include "layer.h"
#include "model.h"
#include "rng.h"

static const char conf[] = "[model]\ninput = 5\n[a]\ntype = dense\nunits = 7\nactivation = relu\n"
                           "[out]\ntype = dense\nunits = 3\nactivation = softmax\n"
                           "[train]\noptimizer = sgd\nloss = sparse_categorical_crossentropy\nbatch_size = 4\n";

static ct_model *model(void)
{
    ct_config *c = NULL;
    ct_model *m = NULL;
    if (ct_config_parse(conf, strlen(conf), "plan.conf", NULL, &c) != CT_OK || ct_model_create(c, &m) != CT_OK)
        fprintf(stderr, "%s\n", ct_error_message());
    ct_config_free(c);
    return m;
}

static void test_failed_plan_keeps_the_old(void)
{
    float x[4 * 5], y[4] = {0, 1, 2, 1};
    ct_rng r = ct_rng_make(5, CT_RNG_TEST, 0);
    ct_rng_fill_uniform(&r, 0, -1, 1, x, 20);
    ct_model *a = model(), *b = model();
    CHECK(a && b);
    if (!a || !b) return;
    double la, lb;
    CHECK(ct_model_train_global(a, x, y, 4, &la) == CT_OK);
    CHECK(ct_model_train_global(b, x, y, 4, &lb) == CT_OK);
    float *arena = b->graph->arena;
    int64_t cap = b->graph->batch_cap;
    /* 2^62 rows: the size arithmetic overflows, so nothing is even tried (no sanitizer abort) */
    CHECK(ct_graph_plan(b->graph, (int64_t)1 << 62) == CT_ERR_NOMEM);
    CHECK_STR_CONTAINS(ct_error_message(), "activation buffers for batch");
    CHECK(b->graph->arena == arena && b->graph->batch_cap == cap);
    CHECK(ct_model_train_global(a, x, y, 4, &la) == CT_OK);
    CHECK(ct_model_train_global(b, x, y, 4, &lb) == CT_OK);
    CHECK(la == lb);
    CHECK(memcmp(a->graph->values, b->graph->values, sizeof(float) * (size_t)a->graph->n_values) == 0);
    ct_model_destroy(a);
    ct_model_destroy(b);
}

static void test_many_buckets(void)
{
    enum { P = 3000 };
    int64_t *starts = malloc(sizeof(int64_t) * P), *bounds = malloc(sizeof(int64_t) * (P + 1));
    for (int i = 0; i < P; i++) starts[i] = 16 * i;
    int nb = ct_grad_sync_plan(starts, P, 16 * P, 16 * sizeof(float), bounds, P);
    CHECK_MSG(nb == P, "%d buckets for %d parameters", nb, P);
    int ordered = bounds[0] == 0 && bounds[nb] == 16 * P;
    for (int i = 0; i < nb; i++) ordered &= bounds[i + 1] - bounds[i] == 16;
    CHECK(ordered);
    /* larger buckets: each closes once it holds 1000 floats, counted from the end */
    nb = ct_grad_sync_plan(starts, P, 16 * P, 1000 * sizeof(float), bounds, P);
    ordered = bounds[0] == 0 && bounds[nb] == 16 * P;
    for (int i = 1; i < nb; i++) ordered &= bounds[i + 1] - bounds[i] >= 1000 && bounds[i] > bounds[i - 1];
    CHECK_MSG(ordered && nb == 48, "%d buckets of >= 1000 floats from 48000 (47 of 1008, the rest first)", nb);
    free(starts);
    free(bounds);
}

int main(void)
{
    ct_register_builtins();
    test_failed_plan_keeps_the_old();
    test_many_buckets();
    return ct_test_report("test_plan");
}
