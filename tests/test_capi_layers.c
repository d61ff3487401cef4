/* Layers registered through the public API: a tape-defined dense layer and
 * a hand-written one give the built-in Dense's forward values and every
 * gradient (parameters, and the input gradient that reaches the layer
 * before) on the same seed; key accessors, errors in init and build, and
 * registration errors. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ct_test.h"
#include "ctrain.h"
#include "graph.h"
#include "rng.h"

typedef struct dense_state {
    int64_t units;
} dense_state;

static const ct_key_def dense_keys[] = {
    {"units", CT_KEYTYPE_INT, NULL, 1, 1, 1, 4096, "output width"},
    {"activation", CT_KEYTYPE_STRING, "linear", 0, 0, 0, 0, "activation"},
    {"gain", CT_KEYTYPE_FLOAT, "1.0", 0, 1, 0, 10, "a key of its own (not a LayerConfig field)"},
    {NULL},
};

static ct_status d_init(ct_layer *l, void *state)
{
    dense_state *d = state;
    double scale;
    ct_status s = ct_layer_key_int(l, "units", &d->units);
    if (s == CT_OK) s = ct_layer_key_float(l, "gain", &scale);
    if (s == CT_OK && scale != 1.0) s = ct_layer_fail(l, CT_ERR_CONFIG, "gain must stay 1 in this test, got %g", scale);
    if (s == CT_OK && ct_layer_key_float(l, "nope", &scale) != CT_ERR_RUNTIME)
        s = ct_layer_fail(l, CT_ERR_RUNTIME, "an unknown key was read");
    return s;
}

static ct_status d_build(ct_layer *l, void *state)
{
    dense_state *d = state;
    int64_t k[2] = {ct_layer_input_dim(l, 0, -1), d->units};
    if (ct_layer_add_weight(l, "kernel", 2, k, "glorot_uniform", NULL, 1) < 0) return ct_error_status();
    if (ct_layer_add_weight(l, "bias", 1, &d->units, "zeros", NULL, 1) < 0) return ct_error_status();
    return ct_layer_set_output_shape(l, 1, &d->units);
}

static ct_eager *d_call(ct_layer *l, void *state, ct_eager *const *in, ct_eager *const *w, int training)
{
    return ct_eager_add(ct_eager_matmul(in[0], w[0], 0, 0), w[1]);
}

/* the same by hand, on raw buffers */
static void h_forward(ct_layer *l, void *state, const ct_layer_buffers *io)
{
    dense_state *d = state;
    int64_t fin = ct_layer_input_dim(l, 0, -1);
    const float *k = ct_layer_weight(l, 0), *b = ct_layer_weight(l, 1);
    for (int64_t r = 0; r < io->batch; r++)
        for (int64_t u = 0; u < d->units; u++) {
            float s = 0;
            for (int64_t i = 0; i < fin; i++) s += io->in[0][r * fin + i] * k[i * d->units + u];
            io->out[r * d->units + u] = s + b[u];
        }
}

static void h_backward(ct_layer *l, void *state, const ct_layer_buffers *io)
{
    dense_state *d = state;
    int64_t fin = ct_layer_input_dim(l, 0, -1);
    const float *k = ct_layer_weight(l, 0);
    float *dk = ct_layer_weight_grad(l, 0), *db = ct_layer_weight_grad(l, 1);
    for (int64_t r = 0; r < io->batch; r++)
        for (int64_t u = 0; u < d->units; u++) {
            float g = io->dout[r * d->units + u];
            db[u] += g;
            for (int64_t i = 0; i < fin; i++) {
                dk[i * d->units + u] += io->in[0][r * fin + i] * g;
                if (io->din[0]) io->din[0][r * fin + i] += g * k[i * d->units + u];
            }
        }
}

static const ct_layer_def tape_dense = {.type = "tape_dense", .keras_class = "TapeDense", .keys = dense_keys,
                                        .state_size = sizeof(dense_state), .init = d_init, .build = d_build,
                                        .call = d_call};
static const ct_layer_def hand_dense = {.type = "hand_dense", .keys = dense_keys, .state_size = sizeof(dense_state),
                                        .init = d_init, .build = d_build, .forward = h_forward,
                                        .backward = h_backward};

static const char *model_text(const char *type)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "[model]\ninput = 7\n\n[pre]\ntype = dense\nunits = 6\nactivation = relu\n\n"
             "[fc]\ntype = %s\nunits = 5\nactivation = tanh\n\n"
             "[out]\ntype = dense\nunits = 3\n\n[train]\nloss = mse\n",
             type);
    return buf;
}

static ct_graph *build(const char *type, int64_t batch)
{
    ct_config *c = NULL;
    const char *t = model_text(type);
    ct_graph *g = NULL;
    if (ct_config_parse(t, strlen(t), "layers.conf", NULL, &c) != CT_OK || ct_graph_build(c, 42, &g) != CT_OK ||
        ct_graph_plan(g, batch) != CT_OK) {
        fprintf(stderr, "%s: %s\n", type, ct_error_message());
        ct_config_free(c);
        return NULL;
    }
    ct_config_free(c);
    return g;
}

/* forward and backward with the same batch and dL/dout; returns a copy of
 * the output and of all gradients */
static void step(ct_graph *g, const float *x, const float *dy, int64_t batch, float **out, float **grads)
{
    ct_graph_forward(g, x, batch, 1, 0, 42);
    ct_node *o = ct_graph_output(g);
    *out = malloc(sizeof(float) * (size_t)(batch * o->out_size));
    memcpy(*out, o->y, sizeof(float) * (size_t)(batch * o->out_size));
    memcpy(o->dy, dy, sizeof(float) * (size_t)(batch * o->out_size));
    ct_graph_backward(g, batch, 0, 0, 42);
    *grads = malloc(sizeof(float) * (size_t)g->n_values);
    memcpy(*grads, g->grads, sizeof(float) * (size_t)g->n_values);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void test_matches_dense(const char *type)
{
    const int64_t batch = 9;
    ct_graph *ref = build("dense", batch), *g = build(type, batch);
    CHECK(ref && g);
    if (!ref || !g) return;
    CHECK(g->n_values == ref->n_values);
    CHECK_MSG(max_diff(g->values, ref->values, ref->n_values) == 0, "%s: initial weights differ from Dense's", type);
    CHECK(!strcmp(g->nodes[1].layer->type->name, type));
    float x[9 * 7], dy[9 * 3];
    ct_rng r = ct_rng_make(3, CT_RNG_TEST, 1);
    ct_rng_fill_uniform(&r, 0, -1, 1, x, 9 * 7);
    ct_rng_fill_uniform(&r, 1000, -1, 1, dy, 9 * 3);
    float *o_ref, *g_ref, *o, *gr;
    step(ref, x, dy, batch, &o_ref, &g_ref);
    step(g, x, dy, batch, &o, &gr);
    double fo = max_diff(o, o_ref, batch * 3), fg = max_diff(gr, g_ref, ref->n_values);
    CHECK_MSG(fo <= 1e-6, "%s: outputs differ from Dense's by %g", type, fo);
    CHECK_MSG(fg <= 1e-5, "%s: gradients differ from Dense's by %g", type, fg);
    /* the input gradient reached [pre]: its kernel gradient is not zero */
    double pre = 0;
    for (int64_t i = 0; i < 7 * 6; i++) pre += fabs(gr[g->nodes[0].layer->params[0].offset + i]);
    CHECK(pre > 0);
    /* inference mode gives the same values again */
    ct_graph_forward(g, x, batch, 0, 0, 42);
    CHECK(max_diff(ct_graph_output(g)->y, o_ref, batch * 3) <= 1e-6);
    free(o_ref);
    free(g_ref);
    free(o);
    free(gr);
    ct_graph_destroy(ref);
    ct_graph_destroy(g);
}

static void test_errors(void)
{
    ct_layer_def bad = tape_dense;
    bad.build = NULL;
    CHECK_FAILS(ct_register_layer(&bad), CT_ERR_USAGE, "needs build()");
    bad = tape_dense;
    bad.call = NULL;
    CHECK_FAILS(ct_register_layer(&bad), CT_ERR_USAGE, "needs call() or forward() and backward()");
    /* its own keys: required, range, unknown ones, init's own message */
    struct {
        const char *body, *needles[3];
    } cases[] = {
        {"", {"fc", "units"}},
        {"units = 0\n", {"bad.conf:6", "units"}},
        {"units = 2\ngain = 11\n", {"bad.conf:7", "gain"}},
        {"units = 2\nfilters = 3\n", {"bad.conf:7", "filters"}},
        {"units = 2\ngain = 2\n", {"tape_dense 'fc': gain must stay 1 in this test, got 2"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, "[model]\ninput = 4\n\n[fc]\ntype = tape_dense\n%s\n[train]\nloss = mse\n", cases[i].body);
        ct_config *c = NULL;
        ct_graph *g = NULL;
        ct_error_clear();
        ct_status s = ct_config_parse(t, strlen(t), "bad.conf", NULL, &c);
        if (s == CT_OK) s = ct_graph_build(c, 1, &g);
        CHECK_MSG(s == CT_ERR_CONFIG, "case %zu gave %s", i, ct_status_name(s));
        for (int k = 0; k < 3 && cases[i].needles[k]; k++) CHECK_STR_CONTAINS(ct_error_message(), cases[i].needles[k]);
        ct_graph_destroy(g);
        ct_config_free(c);
    }
}

int main(void)
{
    CHECK(ct_register_layer(&tape_dense) == CT_OK);
    CHECK(ct_register_layer(&hand_dense) == CT_OK);
    test_matches_dense("tape_dense");
    test_matches_dense("hand_dense");
    test_errors();
    ct_eager_release_cache();
    return ct_test_report("test_capi_layers");
}
