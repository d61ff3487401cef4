/* Tests of the non-convolution image layers: max/average/global pooling,
 * ZeroPadding2D, UpSampling2D, SpatialDropout2D and BatchNormalization.
 *
 * Finite-difference gradient checks as tests/test_layers.c (loss
 * sum(z * R) for a fixed random R, central differences accumulated in
 * double) across strides, paddings and odd sizes; exact outputs against
 * hand-computed values; configuration errors; a small graph built from a
 * .conf text; and results that do not depend on the thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "graph.h"
#include "image_ops.h"
#include "layer_harness.h"

/* ---- harness (tests/layer_harness.h) ---------------------------------- */

static ct_layer *make(const char *type, const ct_layer_config *cfg, ct_shape in)
{
    return make_layer(type, cfg, &in, 1);
}

static void setup(harness *h, ct_layer *l, int64_t batch, int training, int distinct)
{
    harness_setup(h, l, batch, &(gradcheck_opts){.training = training, .distinct = distinct});
}

static int gradcheck(ct_layer *l, int64_t batch, int distinct)
{
    return gradcheck_layer(l, batch, &(gradcheck_opts){.training = 1, .distinct = distinct});
}

static void set_pair(int32_t *store, size_t *n, int32_t **field, int a, int b, int count)
{
    store[0] = a, store[1] = b;
    *field = store;
    *n = (size_t)count;
}

static int shape_is(const ct_layer *l, int rank, int64_t a, int64_t b, int64_t c)
{
    if (!l || l->out_shape.rank != rank) return 0;
    int64_t want[3] = {a, b, c};
    for (int i = 0; i < rank; i++)
        if (l->out_shape.dims[i] != want[i]) return 0;
    return 1;
}

/* ---- pools ---------------------------------------------------------------- */

typedef struct pool_case {
    int kh, kw, sh, sw; /* sh == 0: default strides */
    const char *padding;
    int64_t h, w, c;
    int64_t oh, ow;
} pool_case;

static const pool_case pool_cases[] = {
    {2, 2, 0, 0, NULL, 4, 6, 3, 2, 3},      /* defaults: 2x2 stride 2 valid (fast path) */
    {2, 2, 0, 0, "valid", 6, 8, 16, 3, 4},  /* fast path with a vector of channels */
    {2, 2, 0, 0, "same", 5, 7, 3, 3, 4},    /* odd sizes: padding after */
    {2, 2, 0, 0, "valid", 5, 7, 2, 2, 3},   /* odd sizes: last row/col dropped */
    {3, 3, 2, 2, "same", 5, 7, 2, 3, 4},    /* pad 1 on every side */
    {3, 3, 1, 1, "valid", 5, 5, 2, 3, 3},   /* overlapping windows */
    {3, 3, 1, 1, "same", 4, 5, 3, 4, 5},    /* overlapping with padding */
    {2, 3, 1, 2, "same", 5, 7, 3, 5, 4},    /* rectangular window, mixed strides */
    {3, 2, 3, 1, "valid", 7, 4, 1, 2, 3},   /* single channel */
    {4, 4, 3, 3, "same", 7, 7, 2, 3, 3},    /* window larger than stride */
};

static ct_layer *make_pool(const char *type, const pool_case *pc)
{
    ct_layer_config c = base_cfg();
    int32_t ps[2], st[2];
    set_pair(ps, &c.n_pool_size, &c.pool_size, pc->kh, pc->kw, 2);
    if (pc->sh) set_pair(st, &c.n_strides, &c.strides, pc->sh, pc->sw, 2);
    c.padding = (char *)pc->padding;
    return make(type, &c, ct_shape3(pc->h, pc->w, pc->c));
}

static void test_pool_gradients(void)
{
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        const pool_case *pc = &pool_cases[i];
        ct_layer *l = make_pool("maxpool2d", pc);
        CHECK_MSG(shape_is(l, 3, pc->oh, pc->ow, pc->c), "maxpool case %zu", i);
        CHECK_MSG(gradcheck(l, 2, 1) == 0, "maxpool case %zu", i);
        l = make_pool("avgpool2d", pc);
        CHECK_MSG(shape_is(l, 3, pc->oh, pc->ow, pc->c), "avgpool case %zu", i);
        CHECK_MSG(gradcheck(l, 2, 0) == 0, "avgpool case %zu", i);
    }
    /* One value for pool_size and strides means both axes. */
    ct_layer_config c = base_cfg();
    int32_t ps = 3, st = 2;
    c.pool_size = &ps, c.n_pool_size = 1;
    c.strides = &st, c.n_strides = 1;
    c.padding = "SAME";
    ct_layer *l = make("maxpool2d", &c, ct_shape3(5, 7, 1));
    CHECK(shape_is(l, 3, 3, 4, 1));
    free(l);
}

/* Runs one forward (training) and one backward with dL/dz = dy. */
static void run_once(ct_layer *l, int64_t batch, const float *x, float *y, const float *dy, float *dx, int training)
{
    harness h;
    setup(&h, l, batch, training, 0);
    memcpy(h.in[0], x, sizeof(float) * (size_t)h.in_n[0]);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->forward(l, &io);
    memcpy(y, h.z, sizeof(float) * (size_t)h.out_n);
    if (dy) {
        memcpy(h.r, dy, sizeof(float) * (size_t)h.out_n);
        memset(h.din[0], 0, sizeof(float) * (size_t)h.in_n[0]);
        io_for(&h, &io);
        l->type->backward(l, &io);
        memcpy(dx, h.din[0], sizeof(float) * (size_t)h.in_n[0]);
    }
    harness_free(&h);
}

static void test_maxpool_ties_and_padding(void)
{
    /* Ties go to the first maximum in row-major window order, in the 2x2
     * fast path and in the general one (3x3 stride 1 valid). */
    ct_layer_config c = base_cfg();
    float x4[16] = {1, 3, 0, 0,
                    3, 3, 0, 0,
                    2, 2, 5, 5,
                    2, 2, 5, 5};
    float y[16], dy[16] = {1, 1, 1, 1}, dx[16];
    ct_layer *l = make("maxpool2d", &c, ct_shape3(4, 4, 1));
    run_once(l, 1, x4, y, dy, dx, 1);
    CHECK(y[0] == 3 && y[1] == 0 && y[2] == 2 && y[3] == 5);
    float want[16] = {0, 1, 1, 0,
                      0, 0, 0, 0,
                      1, 0, 1, 0,
                      0, 0, 0, 0};
    CHECK(memcmp(dx, want, sizeof want) == 0);
    free(l);

    int32_t ps[2], st[2];
    set_pair(ps, &c.n_pool_size, &c.pool_size, 3, 3, 2);
    set_pair(st, &c.n_strides, &c.strides, 1, 1, 2);
    float flat[16];
    for (int i = 0; i < 16; i++) flat[i] = 7;
    l = make("maxpool2d", &c, ct_shape3(4, 4, 1));
    run_once(l, 1, flat, y, dy, dx, 1);
    /* Four overlapping windows, all ties: each picks its own top-left. */
    float want_flat[16] = {1, 1, 0, 0,
                           1, 1, 0, 0,
                           0, 0, 0, 0,
                           0, 0, 0, 0};
    CHECK(y[0] == 7 && y[3] == 7);
    CHECK(memcmp(dx, want_flat, sizeof want_flat) == 0);
    free(l);

    /* 'same' padding is -inf for max pooling: on an all-negative image no
     * output becomes 0, each is the maximum of its valid cells. */
    c.padding = "same";
    float neg[9] = {-9, -8, -7, -6, -5, -4, -3, -2, -1}, yn[9], dyn[9], dxn[9];
    for (int i = 0; i < 9; i++) dyn[i] = 1;
    l = make("maxpool2d", &c, ct_shape3(3, 3, 1));
    CHECK(shape_is(l, 3, 3, 3, 1));
    run_once(l, 1, neg, yn, dyn, dxn, 1);
    float want_neg[9] = {-5, -4, -4, -2, -1, -1, -2, -1, -1};
    CHECK(memcmp(yn, want_neg, sizeof want_neg) == 0);
    CHECK(dxn[8] == 4 && dxn[7] == 2 && dxn[5] == 2 && dxn[4] == 1 && dxn[0] == 0);
    /* Nothing is kept between the passes: a backward after an inference
     * forward gives the same gradient. */
    float yi[9], dxi[9];
    run_once(l, 1, neg, yi, dyn, dxi, 0);
    CHECK(memcmp(yi, want_neg, sizeof want_neg) == 0);
    CHECK(memcmp(dxi, dxn, sizeof dxn) == 0);
    free(l);
}

static void test_avgpool_same_divisor(void)
{
    /* 3x3 window, stride 1, same, on 1..9: border windows divide by their
     * valid cells only (TF): corner (1+2+4+5)/4 = 3, edge
     * (1+2+3+4+5+6)/6 = 3.5, centre 45/9 = 5. */
    ct_layer_config c = base_cfg();
    int32_t ps[2], st[2];
    set_pair(ps, &c.n_pool_size, &c.pool_size, 3, 3, 2);
    set_pair(st, &c.n_strides, &c.strides, 1, 1, 2);
    c.padding = "same";
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[9], dy[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1}, dx[9];
    ct_layer *l = make("avgpool2d", &c, ct_shape3(3, 3, 1));
    run_once(l, 1, x, y, dy, dx, 1);
    CHECK_NEAR(y[0], 3.0, 1e-6);
    CHECK_NEAR(y[1], 3.5, 1e-6);
    CHECK_NEAR(y[4], 5.0, 1e-6);
    CHECK_NEAR(y[8], (5 + 6 + 8 + 9) / 4.0, 1e-6);
    /* The corner output's gradient spreads over its 4 valid cells. */
    CHECK_NEAR(dx[8], 0.25, 1e-7);
    CHECK_NEAR(dx[4], 0.25, 1e-7);
    CHECK(dx[0] == 0);
    free(l);
    /* pool 2 stride 2 same on 3x3: the last row/col windows hold 2 or 1 cells. */
    c = base_cfg();
    c.padding = "same";
    float y2[4];
    l = make("avgpool2d", &c, ct_shape3(3, 3, 1));
    CHECK(shape_is(l, 3, 2, 2, 1));
    run_once(l, 1, x, y2, NULL, NULL, 1);
    CHECK_NEAR(y2[0], 3.0, 1e-6);
    CHECK_NEAR(y2[1], 4.5, 1e-6);
    CHECK_NEAR(y2[2], 7.5, 1e-6);
    CHECK_NEAR(y2[3], 9.0, 1e-6);
    free(l);
}

static void test_global_pools(void)
{
    ct_layer_config c = base_cfg();
    /* (2, 2, 2): channel 0 = 1, 4, 2, 4, channel 1 = -1, -2, -3, -4. The
     * tied maxima of channel 0 share its gradient, as tf.reduce_max's do. */
    float x[8] = {1, -1, 4, -2, 2, -3, 4, -4}, y[2], dy[2] = {1, 10}, dx[8];
    ct_layer *l = make("global_maxpool2d", &c, ct_shape3(2, 2, 2));
    CHECK(shape_is(l, 1, 2, 0, 0));
    run_once(l, 1, x, y, dy, dx, 1);
    CHECK(y[0] == 4 && y[1] == -1);
    float want[8] = {0, 10, 0.5f, 0, 0, 0, 0.5f, 0};
    CHECK(memcmp(dx, want, sizeof want) == 0);
    free(l);
    l = make("global_avgpool2d", &c, ct_shape3(2, 2, 2));
    run_once(l, 1, x, y, dy, dx, 1);
    CHECK_NEAR(y[0], 2.75, 1e-6);
    CHECK_NEAR(y[1], -2.5, 1e-6);
    CHECK_NEAR(dx[0], 0.25, 1e-7);
    CHECK_NEAR(dx[7], 2.5, 1e-6);
    free(l);
    c.keepdims = 1;
    c.has_keepdims = 1;
    CHECK(shape_is(l = make("global_avgpool2d", &c, ct_shape3(5, 3, 4)), 3, 1, 1, 4));
    CHECK(gradcheck(l, 3, 0) == 0);
    CHECK(shape_is(l = make("global_maxpool2d", &c, ct_shape3(5, 3, 4)), 3, 1, 1, 4));
    CHECK(gradcheck(l, 3, 1) == 0);
    c.keepdims = 0;
    CHECK(gradcheck(make("global_avgpool2d", &c, ct_shape3(3, 7, 5)), 2, 0) == 0);
    CHECK(gradcheck(make("global_maxpool2d", &c, ct_shape3(3, 7, 5)), 2, 1) == 0);
}

/* ---- zero padding and upsampling ------------------------------------------ */

static void test_zero_padding(void)
{
    ct_layer_config c = base_cfg();
    float x[4] = {1, 2, 3, 4};
    /* Default: 1 on every side. */
    ct_layer *l = make("zero_padding2d", &c, ct_shape3(2, 2, 1));
    CHECK(shape_is(l, 3, 4, 4, 1));
    float y[24], dy[24], dx[4];
    run_once(l, 1, x, y, NULL, NULL, 1);
    float want1[16] = {0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0};
    CHECK(memcmp(y, want1, sizeof want1) == 0);
    free(l);
    /* "rows, cols": 1 row above and below, 2 columns left and right. */
    c.padding = "1, 2";
    l = make("zero_padding2d", &c, ct_shape3(2, 2, 1));
    CHECK(shape_is(l, 3, 4, 6, 1));
    for (int i = 0; i < 24; i++) dy[i] = (float)i;
    run_once(l, 1, x, y, dy, dx, 1);
    float want2[24] = {0, 0, 0, 0, 0, 0,
                       0, 0, 1, 2, 0, 0,
                       0, 0, 3, 4, 0, 0,
                       0, 0, 0, 0, 0, 0};
    CHECK(memcmp(y, want2, sizeof want2) == 0);
    CHECK(dx[0] == 8 && dx[1] == 9 && dx[2] == 14 && dx[3] == 15);
    free(l);
    /* "top, bottom, left, right" */
    c.padding = "0,1, 2 ,0";
    l = make("zero_padding2d", &c, ct_shape3(2, 2, 1));
    CHECK(shape_is(l, 3, 3, 4, 1));
    run_once(l, 1, x, y, NULL, NULL, 1);
    float want3[12] = {0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0};
    CHECK(memcmp(y, want3, sizeof want3) == 0);
    free(l);
    c.padding = "2, 0, 1, 3";
    CHECK(gradcheck(make("zero_padding2d", &c, ct_shape3(3, 5, 2)), 2, 0) == 0);
    const char *bad[] = {"same", "1, 2, 3", "-1", "1,,2", "1, 2, 3, 4, 5", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.padding = (char *)bad[i];
        CHECK_MSG(make("zero_padding2d", &c, ct_shape3(2, 2, 1)) == NULL, "padding '%s'", bad[i]);
        CHECK(ct_error_status() == CT_ERR_CONFIG);
    }
    CHECK_STR_CONTAINS(ct_error_message(), "top, bottom, left, right");
}

/* Reference: TF ResizeBilinear, half_pixel_centers, in double. */
static double bilinear_ref(const float *x, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int64_t oy,
                           int64_t ox, int64_t ch)
{
    double sy = (oy + 0.5) * h / oh - 0.5, sx = (ox + 0.5) * w / ow - 0.5;
    int64_t y0 = (int64_t)floor(sy), x0 = (int64_t)floor(sx);
    double ty = sy - y0, tx = sx - x0;
    int64_t y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
    double tl = x[(y0 * w + x0) * c + ch], tr = x[(y0 * w + x1) * c + ch];
    double bl = x[(y1 * w + x0) * c + ch], br = x[(y1 * w + x1) * c + ch];
    double t = tl + (tr - tl) * tx, b = bl + (br - bl) * tx;
    return t + (b - t) * ty;
}

static void test_upsampling(void)
{
    ct_layer_config c = base_cfg();
    float x[4] = {1, 2, 3, 4}, y[64];
    ct_layer *l = make("upsampling2d", &c, ct_shape3(2, 2, 1));
    CHECK(shape_is(l, 3, 4, 4, 1));
    run_once(l, 1, x, y, NULL, NULL, 1);
    float want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    CHECK(memcmp(y, want, sizeof want) == 0);
    free(l);
    int32_t sz[2];
    set_pair(sz, &c.n_size, &c.size, 1, 3, 2);
    l = make("upsampling2d", &c, ct_shape3(2, 2, 1));
    CHECK(shape_is(l, 3, 2, 6, 1));
    float dy[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, dx[4];
    run_once(l, 1, x, y, dy, dx, 1);
    float want13[12] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
    CHECK(memcmp(y, want13, sizeof want13) == 0);
    CHECK(dx[0] == 6 && dx[1] == 15 && dx[2] == 24 && dx[3] == 33);
    free(l);
    set_pair(sz, &c.n_size, &c.size, 3, 2, 2);
    CHECK(gradcheck(make("upsampling2d", &c, ct_shape3(3, 2, 3)), 2, 0) == 0);

    /* Bilinear: tf.image.resize([0, 1] -> 4 wide) is [0, 0.25, 0.75, 1]. */
    c.interpolation = "bilinear";
    set_pair(sz, &c.n_size, &c.size, 1, 2, 2);
    float x01[2] = {0, 1};
    l = make("upsampling2d", &c, ct_shape3(1, 2, 1));
    run_once(l, 1, x01, y, NULL, NULL, 1);
    CHECK(y[0] == 0 && y[1] == 0.25f && y[2] == 0.75f && y[3] == 1);
    free(l);
    /* Against the double reference on a random 3x5x2 image, size (2, 3). */
    set_pair(sz, &c.n_size, &c.size, 2, 3, 2);
    float xr[30], yr[180];
    random_fill(xr, 30, -1, 1);
    l = make("upsampling2d", &c, ct_shape3(3, 5, 2));
    CHECK(shape_is(l, 3, 6, 15, 2));
    run_once(l, 1, xr, yr, NULL, NULL, 1);
    double worst = 0;
    for (int64_t oy = 0; oy < 6; oy++)
        for (int64_t ox = 0; ox < 15; ox++)
            for (int64_t ch = 0; ch < 2; ch++)
                worst = fmax(worst, fabs(yr[(oy * 15 + ox) * 2 + ch] - bilinear_ref(xr, 3, 5, 2, 6, 15, oy, ox, ch)));
    CHECK_MSG(worst < 1e-6, "bilinear worst %g", worst);
    free(l);
    CHECK(gradcheck(make("upsampling2d", &c, ct_shape3(3, 5, 2)), 2, 0) == 0);
    set_pair(sz, &c.n_size, &c.size, 3, 3, 1);
    CHECK(gradcheck(make("upsampling2d", &c, ct_shape3(2, 3, 3)), 2, 0) == 0);
    c.interpolation = "bicubic";
    CHECK(make("upsampling2d", &c, ct_shape3(2, 3, 3)) == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "nearest or bilinear");
}

/* ---- spatial dropout ------------------------------------------------------- */

static void test_spatial_dropout(void)
{
    ct_layer_config c = base_cfg();
    c.has_rate = 1;
    c.rate = 0.3f;
    ct_layer *l = make("spatial_dropout2d", &c, ct_shape3(3, 2, 50));
    CHECK(l && l->saved_per_sample == 50);
    harness h;
    setup(&h, l, 40, 1, 0);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->forward(l, &io);
    /* 40 samples x 50 channels: each channel is all zero or all x / 0.7. */
    int64_t dropped = 0;
    int whole = 1;
    for (int64_t b = 0; b < 40; b++)
        for (int64_t ch = 0; ch < 50; ch++) {
            int zeros = 0, scaled = 0;
            for (int64_t i = 0; i < 6; i++) {
                int64_t k = (b * 6 + i) * 50 + ch;
                if (h.z[k] == 0) zeros++;
                else if (fabsf(h.z[k] - h.in[0][k] / 0.7f) <= 1e-5f * (1 + fabsf(h.z[k]))) scaled++;
            }
            if (zeros == 6) dropped++;
            else if (scaled != 6) whole = 0;
        }
    CHECK(whole);
    /* 2000 channels with rate 0.3: 600 expected, 5 standard deviations is 102. */
    CHECK_MSG(dropped > 498 && dropped < 702, "dropped %lld", (long long)dropped);
    /* Backward uses the same mask. */
    memset(h.din[0], 0, sizeof(float) * (size_t)h.in_n[0]);
    for (int64_t i = 0; i < h.out_n; i++) h.r[i] = 1;
    l->type->backward(l, &io);
    int mask_ok = 1;
    for (int64_t i = 0; i < h.in_n[0]; i++)
        if (!((h.z[i] == 0 && h.din[0][i] == 0) || fabsf(h.din[0][i] - 1 / 0.7f) < 1e-6f)) mask_ok = 0;
    CHECK(mask_ok);
    /* Another step draws another mask; inference is the identity. */
    float mask3[2000];
    memcpy(mask3, h.saved, sizeof mask3);
    io.step = 4;
    l->type->forward(l, &io);
    CHECK(memcmp(mask3, h.saved, sizeof mask3) != 0);
    io.training = 0;
    l->type->forward(l, &io);
    CHECK(memcmp(h.z, h.in[0], sizeof(float) * (size_t)h.out_n) == 0);
    teardown(&h);
    CHECK(gradcheck(make("spatial_dropout2d", &c, ct_shape3(2, 3, 4)), 3, 0) == 0);
    CHECK(make("spatial_dropout2d", &c, ct_shape1(10)) == NULL);
    CHECK(ct_error_status() == CT_ERR_SHAPE);
    c.rate = 1.0f;
    CHECK(make("spatial_dropout2d", &c, ct_shape3(2, 3, 4)) == NULL);
}

/* ---- batch normalization --------------------------------------------------- */

static int param_index(const ct_layer *l, const char *name)
{
    for (int k = 0; k < l->n_params; k++)
        if (strcmp(l->params[k].name, name) == 0) return k;
    return -1;
}

static void test_bn_hand_values(void)
{
    /* Batch 2 of 1x1x2 samples: x = [[1, 2], [3, 6]].
     *   channel 0: mean 2, biased var 1, inv = 1/sqrt(1.001) = 0.99950037
     *              y = -0.99950037, +0.99950037
     *   channel 1: mean 4, biased var 4, inv = 1/sqrt(4.001) = 0.49993751
     *              y = -2 * 0.49993751 = -0.99987502, +0.99987502
     * Moving statistics after one step, momentum 0.99, from (0, 1):
     *   moving_mean = 0.99 * 0 + 0.01 * (2, 4) = (0.02, 0.04)
     *   4-D batch (Keras's fused path, Bessel n/(n-1) = 2): unbiased var (2, 8)
     *   moving_variance = 0.99 * 1 + 0.01 * (2, 8) = (1.01, 1.07)
     * Then inference with gamma (2, 0.5), beta (0.1, -0.2):
     *   y = (x - mm) / sqrt(mv + 0.001) * gamma + beta
     *   x = 1: (1 - 0.02) / sqrt(1.011) * 2 + 0.1 = 2.04930813
     *   x = 2: (2 - 0.04) / sqrt(1.071) * 0.5 - 0.2 = 0.74695936
     *   x = 3: 6.02748798,  x = 6: 2.67952948 */
    ct_layer_config c = base_cfg();
    ct_layer *l = make("batch_normalization", &c, ct_shape3(1, 1, 2));
    CHECK(l && l->n_params == 4);
    if (!l) return;
    CHECK(strcmp(l->params[0].name, "gamma") == 0 && l->params[0].trainable);
    CHECK(strcmp(l->params[1].name, "beta") == 0 && l->params[1].trainable);
    CHECK(strcmp(l->params[2].name, "moving_mean") == 0 && !l->params[2].trainable);
    CHECK(strcmp(l->params[3].name, "moving_variance") == 0 && !l->params[3].trainable);
    harness h;
    setup(&h, l, 2, 1, 0);
    float x[4] = {1, 2, 3, 6}, init[8] = {1, 1, 0, 0, 0, 0, 1, 1};
    memcpy(h.in[0], x, sizeof x);
    memcpy(h.values, init, sizeof init);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->forward(l, &io);
    CHECK_NEAR(h.z[0], -0.99950037, 1e-6);
    CHECK_NEAR(h.z[2], 0.99950037, 1e-6);
    CHECK_NEAR(h.z[1], -0.99987502, 1e-6);
    CHECK_NEAR(h.z[3], 0.99987502, 1e-6);
    CHECK_NEAR(h.values[4], 0.02, 1e-7);
    CHECK_NEAR(h.values[5], 0.04, 1e-7);
    CHECK_NEAR(h.values[6], 1.01, 1e-6);
    CHECK_NEAR(h.values[7], 1.07, 1e-6);
    h.values[0] = 2, h.values[1] = 0.5f, h.values[2] = 0.1f, h.values[3] = -0.2f;
    io.training = 0;
    l->type->forward(l, &io);
    CHECK_NEAR(h.z[0], 2.04930813, 2e-6);
    CHECK_NEAR(h.z[1], 0.74695936, 2e-6);
    CHECK_NEAR(h.z[2], 6.02748798, 4e-6);
    CHECK_NEAR(h.z[3], 2.67952948, 2e-6);
    /* Inference leaves the moving statistics alone. */
    CHECK_NEAR(h.values[4], 0.02, 1e-7);
    teardown(&h);

    /* The same numbers as Dense outputs (samples of rank 1): Keras's
     * non-fused path feeds the BIASED variance (1, 4) to the average:
     * moving_variance = 0.99 + 0.01 * (1, 4) = (1.0, 1.03). */
    l = make("batch_normalization", &c, ct_shape1(2));
    setup(&h, l, 2, 1, 0);
    memcpy(h.in[0], x, sizeof x);
    memcpy(h.values, init, sizeof init);
    io_for(&h, &io);
    l->type->forward(l, &io);
    CHECK_NEAR(h.z[0], -0.99950037, 1e-6);
    CHECK_NEAR(h.z[3], 0.99987502, 1e-6);
    CHECK_NEAR(h.values[6], 1.0, 1e-6);
    CHECK_NEAR(h.values[7], 1.03, 1e-6);
    teardown(&h);

    /* center = scale = false: only the moving statistics. */
    c.center = 0, c.scale = 0;
    l = make("batch_normalization", &c, ct_shape3(2, 2, 3));
    CHECK(l && l->n_params == 2 && param_index(l, "moving_mean") == 0);
    free(l);
}

static void test_bn_gradients(void)
{
    ct_layer_config c = base_cfg();
    /* Training mode: the gradient flows through the batch statistics. */
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape3(2, 3, 4)), 3, 0) == 0);
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape3(3, 1, 2)), 4, 0) == 0);
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape1(5)), 4, 0) == 0);
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape2(3, 4)), 3, 0) == 0);
    c.center = 0;
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape3(2, 2, 3)), 3, 0) == 0);
    c.center = 1, c.scale = 0;
    CHECK(gradcheck(make("batch_normalization", &c, ct_shape3(2, 2, 3)), 3, 0) == 0);
    c.scale = 1;
    /* Inference mode: a fixed affine map of the moving statistics. */
    ct_layer *l = make("batch_normalization", &c, ct_shape3(2, 3, 4));
    harness h;
    setup(&h, l, 3, 0, 0);
    int mv = param_index(l, "moving_variance");
    random_fill(l->params[mv].value, 4, 0.5f, 2.0f);
    CHECK(gradcheck_harness(&h, &(gradcheck_opts){.tol = 2e-3}) == 0);
    teardown(&h);
}

static void test_fold_affine(void)
{
    /* Dense (4 -> 3) then inference BN equals the folded Dense. */
    float x[2 * 4], k[12], b[3], gamma[3], beta[3], mean[3], var[3], y[6], yf[6];
    random_fill(x, 8, -1, 1);
    random_fill(k, 12, -1, 1);
    random_fill(b, 3, -1, 1);
    random_fill(gamma, 3, 0.5f, 2);
    random_fill(beta, 3, -1, 1);
    random_fill(mean, 3, -1, 1);
    random_fill(var, 3, 0.2f, 3);
    ct_op_gemm(0, 0, 2, 3, 4, 1.0f, x, k, 0.0f, y);
    ct_op_add_bias(y, b, 2, 3);
    for (int i = 0; i < 6; i++) y[i] = (y[i] - mean[i % 3]) / sqrtf(var[i % 3] + 1e-3f) * gamma[i % 3] + beta[i % 3];
    float scale[3], shift[3], kf[12], bf[3];
    for (int c = 0; c < 3; c++) {
        scale[c] = gamma[c] / sqrtf(var[c] + 1e-3f);
        shift[c] = beta[c] - mean[c] * scale[c];
    }
    ct_op_fold_affine(kf, bf, k, b, 4, 3, scale, shift);
    ct_op_gemm(0, 0, 2, 3, 4, 1.0f, x, kf, 0.0f, yf);
    ct_op_add_bias(yf, bf, 2, 3);
    double worst = 0;
    for (int i = 0; i < 6; i++) worst = fmax(worst, fabs(y[i] - yf[i]));
    CHECK_MSG(worst < 1e-5, "fold worst %g", worst);
}

/* ---- configuration errors ---------------------------------------------------- */

static void test_config_errors(void)
{
    ct_layer_config c = base_cfg();
    c.axis = 1;
    CHECK(make("batch_normalization", &c, ct_shape3(4, 4, 2)) == NULL);
    CHECK(ct_error_status() == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "axis must be -1");
    c.axis = 0;
    CHECK(make("batch_normalization", &c, ct_shape3(4, 4, 2)) == NULL);
    CHECK(ct_error_status() == CT_ERR_CONFIG);
    c.axis = -2;
    CHECK(make("batch_normalization", &c, ct_shape3(4, 4, 2)) == NULL);
    /* Keras counts the batch axis: 3 is the channel axis of (H, W, C). */
    c.axis = 3;
    ct_layer *l = make("batch_normalization", &c, ct_shape3(4, 4, 2));
    CHECK(l != NULL);
    free(l);
    c = base_cfg();
    c.momentum = 1.5f;
    CHECK(make("batch_normalization", &c, ct_shape1(3)) == NULL);

    const char *pools[] = {"maxpool2d", "avgpool2d"};
    for (int i = 0; i < 2; i++) {
        c = base_cfg();
        int32_t zero = 0, three[3] = {2, 2, 2}, ps[2];
        c.pool_size = &zero, c.n_pool_size = 1;
        CHECK(make(pools[i], &c, ct_shape3(4, 4, 1)) == NULL);
        CHECK(ct_error_status() == CT_ERR_CONFIG);
        CHECK_STR_CONTAINS(ct_error_message(), "pool_size: expected a list of integers: must be >= 1");
        c.pool_size = three, c.n_pool_size = 3;
        CHECK(make(pools[i], &c, ct_shape3(4, 4, 1)) == NULL);
        c.n_pool_size = 0;
        c.strides = &zero, c.n_strides = 1;
        CHECK(make(pools[i], &c, ct_shape3(4, 4, 1)) == NULL);
        c.n_strides = 0;
        c.padding = "full";
        CHECK(make(pools[i], &c, ct_shape3(4, 4, 1)) == NULL);
        CHECK_STR_CONTAINS(ct_error_message(), "valid or same");
        c.padding = "valid";
        set_pair(ps, &c.n_pool_size, &c.pool_size, 3, 3, 2);
        CHECK(make(pools[i], &c, ct_shape3(2, 5, 1)) == NULL);
        CHECK(ct_error_status() == CT_ERR_SHAPE);
        CHECK_STR_CONTAINS(ct_error_message(), "smaller than the 3x3 pool");
        CHECK(make(pools[i], &c, ct_shape1(16)) == NULL);
        CHECK(ct_error_status() == CT_ERR_SHAPE);
    }
    c = base_cfg();
    int32_t zero = 0;
    c.size = &zero, c.n_size = 1;
    CHECK(make("upsampling2d", &c, ct_shape3(2, 2, 1)) == NULL);
    CHECK(make("global_avgpool2d", &c, ct_shape2(4, 4)) == NULL);

    /* The config reader enforces each type's keys. */
    const char *text = "[model]\ninput = 4, 4, 1\n\n[p]\ntype = maxpool2d\nunits = 3\n";
    ct_config *cfg = NULL;
    CHECK(ct_config_parse(text, strlen(text), "mem.conf", NULL, &cfg) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "pool_size");
    ct_config_free(cfg);
}

/* ---- a graph built from a config ---------------------------------------------- */

static void test_graph(void)
{
    const char *text = "[model]\ninput = 6, 5, 3\n\n"
                       "[pad]\ntype = zero_padding2d\npadding = 1, 0\n\n"
                       "[bn]\ntype = batch_normalization\n\n"
                       "[pool]\ntype = maxpool2d\npool_size = 3\nstrides = 2\npadding = same\n\n"
                       "[up]\ntype = upsampling2d\nsize = 2\ninterpolation = bilinear\n\n"
                       "[sdrop]\ntype = spatial_dropout2d\nrate = 0.25\n\n"
                       "[avg]\ntype = avgpool2d\n\n"
                       "[gap]\ntype = global_avgpool2d\n\n"
                       "[bn2]\ntype = batch_normalization\n\n"
                       "[out]\ntype = dense\nunits = 2\n";
    ct_config *cfg = NULL;
    ct_graph *g = NULL;
    CHECK(ct_config_parse(text, strlen(text), "mem.conf", NULL, &cfg) == CT_OK);
    if (!cfg) {
        fprintf(stderr, "%s\n", ct_error_message());
        return;
    }
    CHECK(ct_graph_build(cfg, 1, &g) == CT_OK);
    if (!g) {
        fprintf(stderr, "%s\n", ct_error_message());
        ct_config_free(cfg);
        return;
    }
    /* pad (8,5,3) -> pool same (4,3,3) -> up (8,6,3) -> avg (4,3,3) -> gap (3) */
    CHECK(shape_is(g->nodes[2].layer, 3, 4, 3, 3));
    CHECK(shape_is(g->nodes[3].layer, 3, 8, 6, 3));
    CHECK(shape_is(g->nodes[6].layer, 1, 3, 0, 0));
    /* Trainable: 2 x (gamma, beta) of 3 + dense 3*2+2; moving statistics after. */
    CHECK(ct_graph_count_params(g, 1) == 12 + 8);
    CHECK(ct_graph_count_params(g, 0) == 12 + 8 + 12);
    const ct_layer *bn = g->nodes[1].layer;
    CHECK(bn->params[2].offset >= g->n_trainable && bn->params[3].offset >= g->n_trainable);
    CHECK(bn->params[3].value[0] == 1.0f && bn->params[2].value[0] == 0.0f);
    CHECK(ct_graph_plan(g, 4) == CT_OK);
    float x[4 * 90];
    random_fill(x, 4 * 90, 0, 1);
    ct_graph_forward(g, x, 4, 1, 1, 5);
    ct_node *out = ct_graph_output(g);
    for (int i = 0; i < 8; i++) out->dy[i] = 0.1f * (float)(i + 1);
    ct_graph_backward(g, 4, 0, 1, 5);
    int finite = 1;
    for (int64_t i = 0; i < g->n_trainable; i++) finite &= isfinite(g->grads[i]);
    CHECK(finite);
    CHECK(bn->params[0].grad[0] != 0);
    CHECK(bn->params[2].value[0] != 0.0f); /* the moving mean moved */
    /* Batch of 3 on a plan for 4 (a short last batch). */
    ct_graph_forward(g, x, 3, 0, 2, 5);
    for (int i = 0; i < 6; i++) finite &= isfinite(out->y[i]);
    CHECK(finite);
    ct_graph_destroy(g);
    ct_config_free(cfg);
}

/* Inference folds a BatchNormalization into the Conv2D before it: the same
 * outputs as running them apart (no_fusion), for a conv with and without
 * bias, a BN with and without scale, after the moving statistics moved.
 * A conv with an activation, or read by another layer too, is not fused. */
static void test_conv_bn_fusion(void)
{
    const char *text = "[model]\ninput = 9, 7, 5\n\n"
                       "[c1]\ntype = conv2d\nfilters = 6\nkernel_size = 3\npadding = same\n\n"
                       "[b1]\ntype = batch_normalization\n\n"
                       "[r1]\ntype = activation\nactivation = relu\n\n"
                       "[c2]\ntype = conv2d\nfilters = 20\nkernel_size = 3\nuse_bias = false\nstrides = 2\n\n"
                       "[b2]\ntype = batch_normalization\nscale = false\n\n"
                       "[t2]\ntype = activation\nactivation = tanh\n\n"
                       "[c3]\ntype = conv2d\nfilters = 4\nkernel_size = 1\nactivation = relu\n\n"
                       "[b3]\ntype = batch_normalization\n\n"
                       "[gap]\ntype = global_avgpool2d\n\n"
                       "[out]\ntype = dense\nunits = 3\n";
    ct_config *cfg = NULL;
    ct_graph *g = NULL;
    CHECK(ct_config_parse(text, strlen(text), "mem.conf", NULL, &cfg) == CT_OK);
    if (!cfg || ct_graph_build(cfg, 3, &g) != CT_OK) {
        fprintf(stderr, "%s\n", ct_error_message());
        ct_config_free(cfg);
        return;
    }
    CHECK(ct_graph_plan(g, 6) == CT_OK);
    float x[6 * 9 * 7 * 5], fused[6 * 3], apart[6 * 3];
    random_fill(x, 6 * 315, -1, 1);
    /* non-trivial gamma, beta and moving statistics */
    for (int s = 0; s < 5; s++) ct_graph_forward(g, x, 6, 1, (uint64_t)s, 5);
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].layer->n_params; k++) {
            ct_layer_param *p = &g->nodes[i].layer->params[k];
            if (strcmp(p->name, "gamma") == 0 || strcmp(p->name, "beta") == 0)
                random_fill(p->value, ct_shape_numel(&p->shape), 0.5f, 1.5f);
        }
    ct_graph_forward(g, x, 6, 0, 9, 5);
    memcpy(fused, ct_graph_output(g)->y, sizeof fused);
    g->no_fusion = 1;
    ct_graph_forward(g, x, 6, 0, 9, 5);
    memcpy(apart, ct_graph_output(g)->y, sizeof apart);
    double worst = 0;
    for (int i = 0; i < 18; i++) worst = fmax(worst, fabs(fused[i] - apart[i]) / (fabs(apart[i]) + 1e-3));
    CHECK_MSG(worst < 1e-4, "fused vs separate conv + BN: worst relative difference %g", worst);
    CHECK(memcmp(fused, apart, sizeof fused) != 0); /* the fused path did run (other rounding) */
    ct_graph_destroy(g);
    ct_config_free(cfg);
}

/* ---- thread-count independence ------------------------------------------------ */

static void fwd_bwd_threads(const char *type, ct_layer_config *c, ct_shape in, int64_t batch, int threads,
                            float *y, float *dx, float *pg, int64_t *out_n, int64_t *in_n)
{
    ct_layer *l = make(type, c, in);
    harness h;
    harness_draws = 1000; /* the same data for both thread counts */
    setup(&h, l, batch, 1, 0);
    int nt = omp_get_max_threads();
    omp_set_num_threads(threads);
    analytic(&h, 0);
    omp_set_num_threads(nt);
    memcpy(y, h.z, sizeof(float) * (size_t)h.out_n);
    memcpy(dx, h.din[0], sizeof(float) * (size_t)h.in_n[0]);
    *out_n = h.out_n, *in_n = h.in_n[0];
    int64_t np = 0;
    for (int k = 0; k < l->n_params; k++) np += ct_shape_numel(&l->params[k].shape);
    memcpy(pg, h.grads, sizeof(float) * (size_t)np);
    teardown(&h);
}

static void test_threads(void)
{
    /* Large enough that every kernel runs in parallel. */
    const int64_t B = 16, H = 32, W = 32, C = 16, n = B * H * W * C;
    float *y1 = malloc(sizeof(float) * (size_t)n), *y2 = malloc(sizeof(float) * (size_t)n);
    float *d1 = malloc(sizeof(float) * (size_t)n), *d2 = malloc(sizeof(float) * (size_t)n);
    float p1[64], p2[64];
    const char *types[] = {"batch_normalization", "maxpool2d", "avgpool2d", "upsampling2d"};
    for (int t = 0; t < 4; t++) {
        ct_layer_config c = base_cfg();
        int32_t ps[2];
        if (t == 2) {
            set_pair(ps, &c.n_pool_size, &c.pool_size, 3, 3, 2);
            c.padding = "same";
        }
        if (t == 3) c.interpolation = "bilinear";
        ct_shape in = t == 3 ? ct_shape3(H / 2, W / 2, C) : ct_shape3(H, W, C);
        memset(p1, 0, sizeof p1), memset(p2, 0, sizeof p2);
        int64_t out_n, in_n;
        fwd_bwd_threads(types[t], &c, in, B, 1, y1, d1, p1, &out_n, &in_n);
        fwd_bwd_threads(types[t], &c, in, B, 2, y2, d2, p2, &out_n, &in_n);
        CHECK_MSG(memcmp(y1, y2, sizeof(float) * (size_t)out_n) == 0, "%s forward", types[t]);
        CHECK_MSG(memcmp(d1, d2, sizeof(float) * (size_t)in_n) == 0, "%s backward", types[t]);
        CHECK_MSG(memcmp(p1, p2, sizeof p1) == 0, "%s parameter gradients", types[t]);
    }
    free(y1); free(y2); free(d1); free(d2);
}

/* core/layer.c refers to the image layers weakly, which does not pull
 * their objects out of the static library: name them here. */
extern const ct_layer_type ct_layer_maxpool2d, ct_layer_avgpool2d, ct_layer_global_avgpool2d,
    ct_layer_global_maxpool2d, ct_layer_zero_padding2d, ct_layer_upsampling2d, ct_layer_batch_normalization,
    ct_layer_spatial_dropout2d;

int main(void)
{
    ct_register_builtins();
    const ct_layer_type *mine[] = {&ct_layer_maxpool2d, &ct_layer_avgpool2d, &ct_layer_global_avgpool2d,
                                   &ct_layer_global_maxpool2d, &ct_layer_zero_padding2d, &ct_layer_upsampling2d,
                                   &ct_layer_batch_normalization, &ct_layer_spatial_dropout2d};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) ct_layer_register(mine[i]);
    test_pool_gradients();
    test_maxpool_ties_and_padding();
    test_avgpool_same_divisor();
    test_global_pools();
    test_zero_padding();
    test_upsampling();
    test_spatial_dropout();
    test_bn_hand_values();
    test_bn_gradients();
    test_fold_affine();
    test_conv_bn_fusion();
    test_config_errors();
    test_graph();
    test_threads();
    return ct_test_report("test_image_layers");
}
