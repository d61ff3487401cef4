/* Finite-difference gradient checks for every layer type, every
 * activation and the regularizers.
 *
 * Each layer runs alone on random inputs; the loss is sum(act(z) * R) for
 * a fixed random R, accumulated in double. Analytic gradients (backward)
 * for inputs and parameters are compared with central differences. */
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "layer_harness.h"

static void test_dense(void)
{
    ct_layer_config c = base_cfg();
    c.has_units = 1;
    c.units = 5;
    ct_shape in = ct_shape1(7);
    CHECK(gradcheck_layer(make_layer("dense", &c, &in, 1), 3, &(gradcheck_opts){.tol = 2e-3}) == 0);
    /* Dense on a rank-3 input acts on the last axis. */
    ct_shape in3 = ct_shape2(4, 3);
    ct_layer *l = make_layer("dense", &c, &in3, 1);
    CHECK(l && l->out_shape.rank == 2 && l->out_shape.dims[0] == 4 && l->out_shape.dims[1] == 5);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    c.use_bias = 0;
    l = make_layer("dense", &c, &in, 1);
    CHECK(l && l->n_params == 1);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
}

static void test_shape_layers(void)
{
    ct_layer_config c = base_cfg();
    ct_shape in = ct_shape3(2, 3, 4);
    ct_layer *l = make_layer("flatten", &c, &in, 1);
    CHECK(l && l->out_shape.rank == 1 && l->out_shape.dims[0] == 24);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    int64_t ts[] = {4, -1};
    c.target_shape = ts;
    c.n_target_shape = 2;
    l = make_layer("reshape", &c, &in, 1);
    CHECK(l && l->out_shape.dims[0] == 4 && l->out_shape.dims[1] == 6);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    int64_t bad_ts[] = {5, 5};
    c.target_shape = bad_ts;
    CHECK(make_layer("reshape", &c, &in, 1) == NULL);
    CHECK(ct_error_status() == CT_ERR_SHAPE);
    CHECK_STR_CONTAINS(ct_error_message(), "24 values");
}

static void test_channel_padding(void)
{
    ct_layer_config c = base_cfg();
    c.padding = "1, 2";
    ct_shape in = ct_shape3(2, 3, 4);
    ct_layer *l = make_layer("channel_padding", &c, &in, 1);
    CHECK(l && l->out_shape.dims[2] == 7);
    harness h;
    harness_setup(&h, l, 2, NULL);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->forward(l, &io);
    int ok = 1;
    for (int64_t r = 0; r < 2 * 6; r++)
        for (int k = 0; k < 7; k++) {
            float want = (k >= 1 && k < 5) ? h.in[0][r * 4 + k - 1] : 0.0f;
            ok &= h.z[r * 7 + k] == want;
        }
    CHECK(ok);
    teardown(&h);
    CHECK(gradcheck_layer(make_layer("channel_padding", &c, &in, 1), 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    c.padding = "8";
    l = make_layer("channel_padding", &c, &in, 1);
    CHECK(l && l->out_shape.dims[2] == 20);
    free(l);
    c.padding = "1, x";
    CHECK(make_layer("channel_padding", &c, &in, 1) == NULL && ct_error_status() == CT_ERR_CONFIG);
}

static void test_dropout(void)
{
    ct_layer_config c = base_cfg();
    c.has_rate = 1;
    c.rate = 0.4f;
    ct_shape in = ct_shape1(50);
    ct_layer *l = make_layer("dropout", &c, &in, 1);
    harness h;
    harness_setup(&h, l, 40, NULL);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->forward(l, &io);
    int64_t zeros = 0;
    int scaled_ok = 1;
    for (int64_t i = 0; i < h.out_n; i++) {
        if (h.z[i] == 0) zeros++;
        else if (fabsf(h.z[i] - h.in[0][i] / 0.6f) > 1e-5f) scaled_ok = 0;
    }
    /* 2000 values with rate 0.4: 800 expected, 5 standard deviations is 110. */
    CHECK_MSG(zeros > 690 && zeros < 910, "zeros %lld", (long long)zeros);
    CHECK(scaled_ok);
    io.training = 0;
    l->type->forward(l, &io);
    CHECK(memcmp(h.z, h.in[0], sizeof(float) * (size_t)h.out_n) == 0);
    teardown(&h);
    CHECK(gradcheck_layer(make_layer("dropout", &c, &in, 1), 3, &(gradcheck_opts){.tol = 2e-3}) == 0);
}

static void test_merge(void)
{
    ct_layer_config c = base_cfg();
    ct_shape two[3] = {ct_shape2(3, 4), ct_shape2(3, 4), ct_shape2(3, 4)};
    ct_layer *l = make_layer("add", &c, two, 3);
    CHECK(l != NULL);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    ct_shape mism[2] = {ct_shape2(3, 4), ct_shape2(3, 5)};
    CHECK(make_layer("add", &c, mism, 2) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "3x5");
    c.axis = -1;
    l = make_layer("concatenate", &c, mism, 2);
    CHECK(l && l->out_shape.dims[1] == 9);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    ct_shape rows[2] = {ct_shape2(2, 4), ct_shape2(3, 4)};
    c.axis = 1; /* Keras counts the batch axis: the first per-sample axis */
    l = make_layer("concatenate", &c, rows, 2);
    CHECK(l && l->out_shape.dims[0] == 5 && l->out_shape.dims[1] == 4);
    CHECK(gradcheck_layer(l, 2, &(gradcheck_opts){.tol = 2e-3}) == 0);
    CHECK(make_layer("concatenate", &c, mism, 2) == NULL);
}

static void test_activations(void)
{
    int n;
    const char *const *names = ct_activation_names(&n);
    CHECK(n == 12);
    for (int i = 0; i < n; i++) {
        ct_layer_config c = base_cfg();
        c.activation = (char *)names[i];
        ct_shape in = ct_shape1(6);
        ct_layer *l = make_layer("activation", &c, &in, 1);
        CHECK_MSG(l != NULL, "%s", names[i]);
        if (!l) continue;
        /* Piecewise functions: move inputs away from their kinks. */
        harness h;
        harness_setup(&h, l, 4, NULL);
        for (int64_t k = 0; k < h.in_n[0]; k++) {
            float v = h.in[0][k];
            if (fabsf(v) < 0.05f) h.in[0][k] = v < 0 ? -0.3f : 0.3f;
            if (fabsf(fabsf(v) - 2.5f) < 0.05f) h.in[0][k] = v * 0.8f;
        }
        analytic(&h, 0);
        float g[24];
        memcpy(g, h.din[0], sizeof(float) * (size_t)h.in_n[0]);
        int bad = check_array(&h, h.in[0], g, h.in_n[0], names[i], 1e-3, 5e-3);
        CHECK_MSG(bad == 0, "activation %s", names[i]);
        teardown(&h);
    }
    /* Known values. */
    float z[6] = {-1, 0, 1, 2, -3, 0.5f}, y[6];
    ct_op_activation_fwd(CT_ACT_RELU, z, y, 1, 6);
    CHECK(y[0] == 0 && y[2] == 1 && y[3] == 2);
    ct_op_activation_fwd(CT_ACT_SIGMOID, z, y, 1, 6);
    CHECK_NEAR(y[2], 0.7310585786, 1e-6);
    ct_op_activation_fwd(CT_ACT_SOFTMAX, z, y, 2, 3);
    CHECK_NEAR(y[0] + y[1] + y[2], 1.0, 1e-6);
    CHECK_NEAR(y[2], exp(1) / (exp(-1) + 1 + exp(1)), 1e-6);
    ct_op_activation_fwd(CT_ACT_SELU, z, y, 1, 6);
    CHECK_NEAR(y[0], 1.0507009873554805 * 1.6732632423543772 * (exp(-1) - 1), 1e-5);
    ct_op_activation_fwd(CT_ACT_GELU, z, y, 1, 6);
    CHECK_NEAR(y[2], 0.8413447461, 1e-5);
    ct_op_activation_fwd(CT_ACT_HARD_SIGMOID, z, y, 1, 6);
    CHECK_NEAR(y[2], 0.7, 1e-6);
    CHECK_NEAR(y[4], 0.0, 1e-6);
    ct_op_activation_fwd(CT_ACT_SOFTPLUS, z, y, 1, 6);
    CHECK_NEAR(y[2], log1p(exp(1)), 1e-6);
    float big[2] = {1000, -1000};
    ct_op_activation_fwd(CT_ACT_SOFTPLUS, big, y, 1, 2);
    CHECK_NEAR(y[0], 1000, 1e-3);
    CHECK_NEAR(y[1], 0, 1e-6);
    ct_op_activation_fwd(CT_ACT_SIGMOID, big, y, 1, 2);
    CHECK(y[0] == 1.0f && y[1] == 0.0f);
    ct_activation a;
    CHECK(!ct_activation_find("rellu", &a));
}

static void test_regularizers(void)
{
    ct_regularizer r;
    CHECK(ct_regularizer_parse("l2", &r) == CT_OK && r.l2 == 0.01 && r.l1 == 0);
    CHECK(ct_regularizer_parse("l1(0.5)", &r) == CT_OK && r.l1 == 0.5);
    CHECK(ct_regularizer_parse("l1_l2(l1=0.1, l2=0.2)", &r) == CT_OK && r.l1 == 0.1 && r.l2 == 0.2);
    CHECK(ct_regularizer_parse("l1_l2", &r) == CT_OK && r.l1 == 0.01 && r.l2 == 0.01);
    CHECK(ct_regularizer_parse("l3(0.1)", &r) == CT_ERR_CONFIG);
    CHECK(ct_regularizer_parse("l2(x)", &r) == CT_ERR_CONFIG);
    CHECK(ct_regularizer_parse("l2(0.1", &r) == CT_ERR_CONFIG);
    CHECK(ct_regularizer_parse("l2(-1)", &r) == CT_ERR_CONFIG);
    /* Penalty and gradient against hand values and finite differences. */
    ct_regularizer rr = {0.1, 0.2};
    float w[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0, 0, 0};
    double pen = ct_regularizer_apply(&rr, w, g, 3);
    CHECK_NEAR(pen, 0.1 * 3.5 + 0.2 * 5.25, 1e-6);
    CHECK_NEAR(g[0], 0.1 + 0.4, 1e-6);
    CHECK_NEAR(g[1], -0.1 - 0.8, 1e-6);
    for (int i = 0; i < 3; i++) {
        float keep = w[i], tmp[3];
        w[i] = keep + 1e-3f;
        double p = ct_regularizer_apply(&rr, w, tmp, 3);
        w[i] = keep - 1e-3f;
        double m = ct_regularizer_apply(&rr, w, tmp, 3);
        w[i] = keep;
        CHECK_NEAR((p - m) / 2e-3, g[i], 1e-3);
    }
}

static void test_initializers(void)
{
    ct_initializer in;
    ct_rng r = ct_rng_make(3, CT_RNG_INIT, 1);
    static float v[256 * 128];
    ct_shape s = ct_shape2(256, 128);
    CHECK(ct_initializer_parse("glorot_uniform", &in) == CT_OK);
    CHECK(ct_initializer_fill(&in, &s, &r, v) == CT_OK);
    double lim = sqrt(6.0 / 384), mx = 0, var = 0;
    for (int i = 0; i < 256 * 128; i++) {
        mx = fabs(v[i]) > mx ? fabs(v[i]) : mx;
        var += (double)v[i] * v[i];
    }
    CHECK(mx <= lim && mx > 0.99 * lim);
    CHECK_NEAR(var / (256 * 128), lim * lim / 3, 0.05 * lim * lim / 3);
    CHECK(ct_initializer_parse("he_normal", &in) == CT_OK);
    CHECK(ct_initializer_fill(&in, &s, &r, v) == CT_OK);
    var = 0;
    for (int i = 0; i < 256 * 128; i++) var += (double)v[i] * v[i];
    CHECK_NEAR(var / (256 * 128), 2.0 / 256, 0.05 * 2.0 / 256);
    CHECK(ct_initializer_parse("constant(0.25)", &in) == CT_OK && in.value == 0.25);
    CHECK(ct_initializer_parse("random_normal(stddev=0.1)", &in) == CT_OK && in.stddev == 0.1 && in.mean == 0);
    CHECK(ct_initializer_parse("random_uniform(-1, 1)", &in) == CT_OK && in.minval == -1 && in.maxval == 1);
    CHECK(ct_initializer_parse("glorot_unifrom", &in) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "did you mean 'glorot_uniform'");
    CHECK(ct_initializer_parse("constant(value=1, bogus=2)", &in) == CT_ERR_CONFIG);
    /* Orthogonal: Q^T Q = I for a tall matrix. */
    ct_shape q = ct_shape2(20, 6);
    CHECK(ct_initializer_parse("orthogonal", &in) == CT_OK);
    CHECK(ct_initializer_fill(&in, &q, &r, v) == CT_OK);
    double worst = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            double d = 0;
            for (int i = 0; i < 20; i++) d += (double)v[i * 6 + a] * v[i * 6 + b];
            worst = fmax(worst, fabs(d - (a == b)));
        }
    CHECK(worst < 1e-5);
    /* Truncated normal never leaves two standard deviations. */
    CHECK(ct_initializer_parse("truncated_normal(stddev=1)", &in) == CT_OK);
    CHECK(ct_initializer_fill(&in, &s, &r, v) == CT_OK);
    mx = 0;
    for (int i = 0; i < 256 * 128; i++) mx = fmax(mx, fabs(v[i]));
    CHECK(mx <= 2.0);
}

static void test_rng(void)
{
    /* Philox4x32-10 known answer (Random123 kat_vectors: ctr 0, key 0). */
    uint32_t key[2] = {0, 0}, ctr[4] = {0, 0, 0, 0}, out[4];
    ct_philox4x32(key, ctr, out);
    CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu && out[3] == 0x9b00dbd8u);
    uint32_t key2[2] = {0xa4093822u, 0x299f31d0u}, ctr2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    ct_philox4x32(key2, ctr2, out);
    CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdcceb && out[2] == 0x5001e420u && out[3] == 0x24126ea1u);
    ct_rng r = ct_rng_make(1, CT_RNG_SHUFFLE, 0);
    int64_t perm[100];
    int seen[100] = {0};
    ct_rng_permutation(&r, perm, 100);
    for (int i = 0; i < 100; i++) seen[perm[i]]++;
    int all = 1;
    for (int i = 0; i < 100; i++) all &= seen[i] == 1;
    CHECK(all);
}

int main(void)
{
    ct_register_builtins();
    test_rng();
    test_dense();
    test_shape_layers();
    test_dropout();
    test_channel_padding();
    test_merge();
    test_activations();
    test_regularizers();
    test_initializers();
    return ct_test_report("test_layers");
}
