/* Convolution layers and kernels.
 *
 * - every fast kernel (im2col + sgemm, batched sgemm, AVX-512 with its
 *   Winograd paths) against the reference loops on random shapes: forward
 *   (with bias, with ReLU, accumulating), backward-data, backward-weights
 *   (both accumulating, apart and in one call), bias gradient, the fused
 *   ReLU backward;
 * - output sizes and 'same' padding against TF's formulas on a table;
 * - Conv2D applying its own activation (fused ReLU, tanh, gelu);
 * - finite-difference gradient checks of Conv2D, DepthwiseConv2D,
 *   SeparableConv2D and Conv2DTranspose over strides, paddings,
 *   dilations, odd sizes, depth multipliers and output padding (loss
 *   sum(z * R), central differences accumulated in double);
 * - parameter shapes and names as Keras stores them, fans, config errors. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conv.h"
#include "ct_test.h"
#include "graph.h"
#include "layer_harness.h"

static float *rnd(int64_t n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    random_fill(v, n, lo, hi);
    return v;
}

static float *dup(const float *v, int64_t n)
{
    float *d = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(d, v, sizeof(float) * (size_t)n);
    return d;
}

/* max |a - b| / (1 + |b|) */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i]));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* ---- kernels against the reference ------------------------------------- */

static int64_t rand_int(uint64_t *state, int lo, int hi)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int64_t)((*state >> 33) % (uint64_t)(hi - lo + 1));
}

/* Fills g with a random geometry; returns 0 when the window does not fit. */
static int random_geom(uint64_t *st, ct_conv2d_geom *g)
{
    memset(g, 0, sizeof *g);
    static const int channels[] = {1, 3, 5, 8, 16, 17, 32, 33, 48, 64};
    g->batch = rand_int(st, 1, 3);
    g->h = (int)rand_int(st, 1, 11);
    g->w = (int)rand_int(st, 1, 13);
    g->c = channels[rand_int(st, 0, 9)];
    g->f = channels[rand_int(st, 0, 9)] + (int)rand_int(st, 0, 1) * 16;
    g->kh = (int)rand_int(st, 1, 4);
    g->kw = (int)rand_int(st, 1, 4);
    g->sh = (int)rand_int(st, 1, 3);
    g->sw = (int)rand_int(st, 1, 3);
    g->dh = (int)rand_int(st, 1, 2);
    g->dw = (int)rand_int(st, 1, 2);
    int same = (int)rand_int(st, 0, 1);
    g->oh = ct_conv_out_len(g->h, g->kh, g->sh, g->dh, same, &g->pt);
    g->ow = ct_conv_out_len(g->w, g->kw, g->sw, g->dw, same, &g->pl);
    return g->oh >= 1 && g->ow >= 1;
}

static void geom_str(const ct_conv2d_geom *g, char *buf, size_t n)
{
    snprintf(buf, n, "b%lld %dx%dx%d -> %dx%dx%d k%dx%d s%d,%d d%d,%d p%d,%d", (long long)g->batch, g->h, g->w,
             g->c, g->oh, g->ow, g->f, g->kh, g->kw, g->sh, g->sw, g->dh, g->dw, g->pt, g->pl);
}

/* One geometry, one implementation: forward (bias / no bias / accumulate),
 * backward-data and backward-weights on accumulating outputs. */
static int compare_impl(const ct_conv2d_geom *g0, ct_conv_impl impl)
{
    ct_conv2d_geom g = *g0, r = *g0;
    g.impl = impl;
    r.impl = CT_CONV_REF;
    int64_t nx = g.batch * g.h * g.w * g.c, nz = g.batch * g.oh * g.ow * g.f;
    int64_t nk = (int64_t)g.kh * g.kw * g.c * g.f;
    float *x = rnd(nx, -1, 1), *k = rnd(nk, -1, 1), *bias = rnd(g.f, -1, 1), *dz = rnd(nz, -1, 1);
    int64_t ns = ct_op_conv2d_scratch(&g);
    float *scratch = malloc(sizeof(float) * (size_t)(ns > 0 ? ns : 1));
    float *z0 = rnd(nz, -1, 1), *z1 = dup(z0, nz);
    double tol = 2e-5 * sqrt((double)(g.kh * g.kw * g.c + g.batch * g.oh * g.ow));
    int bad = 0;
    char desc[160];
    geom_str(&g, desc, sizeof desc);

    ct_op_conv2d_fwd(&r, x, k, bias, z0, 0, NULL);
    ct_op_conv2d_fwd(&g, x, k, bias, z1, 0, scratch);
    double e = rel_err(z1, z0, nz);
    if (e > tol) bad++, fprintf(stderr, "  %s fwd+bias %s: err %g\n", ct_conv_impl_name(impl), desc, e);
    ct_op_conv2d_fwd(&r, x, k, NULL, z0, 1, NULL);
    ct_op_conv2d_fwd(&g, x, k, NULL, z1, 1, scratch);
    e = rel_err(z1, z0, nz);
    if (e > tol) bad++, fprintf(stderr, "  %s fwd accumulate %s: err %g\n", ct_conv_impl_name(impl), desc, e);
    ct_op_conv2d_fwd(&r, x, k, NULL, z0, 0, NULL);
    ct_op_conv2d_fwd(&g, x, k, NULL, z1, 0, scratch);
    e = rel_err(z1, z0, nz);
    if (e > tol) bad++, fprintf(stderr, "  %s fwd %s: err %g\n", ct_conv_impl_name(impl), desc, e);
    ct_op_conv2d_fwd(&r, x, k, bias, z0, 0, NULL);
    for (int64_t i = 0; i < nz; i++) z0[i] = z0[i] > 0 ? z0[i] : 0;
    ct_op_conv2d_fwd_relu(&g, x, k, bias, z1, scratch);
    e = rel_err(z1, z0, nz);
    if (e > tol) bad++, fprintf(stderr, "  %s fwd+bias+relu %s: err %g\n", ct_conv_impl_name(impl), desc, e);

    float *dx0 = rnd(nx, -1, 1), *dx1 = dup(dx0, nx);
    ct_op_conv2d_bwd_data(&r, dz, k, dx0, NULL);
    ct_op_conv2d_bwd_data(&g, dz, k, dx1, scratch);
    e = rel_err(dx1, dx0, nx);
    if (e > tol) bad++, fprintf(stderr, "  %s bwd_data %s: err %g\n", ct_conv_impl_name(impl), desc, e);

    float *dk0 = rnd(nk, -1, 1), *dk1 = dup(dk0, nk);
    ct_op_conv2d_bwd_weights(&r, x, dz, dk0, NULL);
    ct_op_conv2d_bwd_weights(&g, x, dz, dk1, scratch);
    e = rel_err(dk1, dk0, nk);
    if (e > tol) bad++, fprintf(stderr, "  %s bwd_weights %s: err %g\n", ct_conv_impl_name(impl), desc, e);

    /* both passes in one call (fused where Winograd serves both) */
    memcpy(dx1, dx0, sizeof(float) * (size_t)nx);
    memcpy(dk1, dk0, sizeof(float) * (size_t)nk);
    ct_op_conv2d_bwd_data(&r, dz, k, dx0, NULL);
    ct_op_conv2d_bwd_weights(&r, x, dz, dk0, NULL);
    ct_op_conv2d_bwd(&g, x, dz, k, dx1, dk1, scratch);
    e = rel_err(dx1, dx0, nx);
    if (e > tol) bad++, fprintf(stderr, "  %s bwd (data) %s: err %g\n", ct_conv_impl_name(impl), desc, e);
    e = rel_err(dk1, dk0, nk);
    if (e > tol) bad++, fprintf(stderr, "  %s bwd (weights) %s: err %g\n", ct_conv_impl_name(impl), desc, e);

    free(x), free(k), free(bias), free(dz), free(scratch), free(z0), free(z1);
    free(dx0), free(dx1), free(dk0), free(dk1);
    return bad;
}

static void test_kernels_random(void)
{
    uint64_t st = 12345;
    int tested = 0, bad = 0;
    while (tested < 60) {
        ct_conv2d_geom g;
        if (!random_geom(&st, &g)) continue;
        tested++;
        for (int impl = CT_CONV_GEMM; impl < CT_CONV_IMPL_COUNT; impl++)
            if (ct_conv_impl_available((ct_conv_impl)impl)) bad += compare_impl(&g, (ct_conv_impl)impl);
    }
    CHECK_MSG(bad == 0, "%d kernel mismatches", bad);
}

/* Shapes of the benchmark models, and tile-boundary cases (rows of 24,
 * 12, 8, 6 pixels; 16-multiple and ragged filter counts). */
static void test_kernels_fixed(void)
{
    static const int cases[][9] = {
        /* h, w, c, f, k, s, same, batch, dilation */
        {32, 32, 3, 32, 3, 1, 0, 2, 1},  {32, 32, 3, 32, 3, 1, 1, 2, 1},  {16, 16, 32, 32, 3, 1, 1, 2, 1},
        {8, 8, 64, 64, 3, 1, 1, 3, 1},   {16, 16, 16, 32, 3, 2, 1, 2, 1}, {8, 8, 32, 64, 3, 2, 1, 2, 1},
        {7, 25, 20, 80, 3, 1, 1, 2, 1},  {6, 13, 7, 48, 5, 1, 1, 1, 2},   {9, 9, 16, 16, 1, 1, 0, 3, 1},
        {9, 10, 16, 24, 1, 2, 1, 2, 1},  {5, 29, 4, 15, 2, 1, 1, 2, 1},   {4, 4, 256, 20, 3, 1, 1, 1, 1},
        {3, 3, 2, 2, 11, 1, 1, 1, 1},    {20, 20, 3, 8, 9, 1, 1, 1, 1},   {12, 12, 96, 64, 3, 1, 0, 2, 2},
        /* Winograd (3x3, stride 1, >= 16 channels): valid and same, odd
         * sizes, ragged channels, several tile blocks, 2x2 outputs */
        {9, 11, 16, 16, 3, 1, 0, 2, 1},  {5, 6, 17, 33, 3, 1, 1, 3, 1},   {31, 30, 16, 16, 3, 1, 1, 2, 1},
        {4, 4, 20, 18, 3, 1, 0, 1, 1},   {11, 9, 64, 16, 3, 1, 1, 1, 1},
    };
    int bad = 0;
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        const int *c = cases[n];
        ct_conv2d_geom g = {.batch = c[7], .h = c[0], .w = c[1], .c = c[2], .f = c[3], .kh = c[4], .kw = c[4],
                            .sh = c[5], .sw = c[5], .dh = c[8], .dw = c[8]};
        g.oh = ct_conv_out_len(g.h, g.kh, g.sh, g.dh, c[6], &g.pt);
        g.ow = ct_conv_out_len(g.w, g.kw, g.sw, g.dw, c[6], &g.pl);
        for (int impl = CT_CONV_GEMM; impl < CT_CONV_IMPL_COUNT; impl++)
            if (ct_conv_impl_available((ct_conv_impl)impl)) bad += compare_impl(&g, (ct_conv_impl)impl);
    }
    CHECK_MSG(bad == 0, "%d kernel mismatches", bad);
}

static void test_bias_grad(void)
{
    int64_t rows = 3001;
    int f = 37;
    float *dz = rnd(rows * f, -1, 1), db[37], ref[37];
    for (int c = 0; c < f; c++) db[c] = ref[c] = 0.5f;
    for (int c = 0; c < f; c++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += dz[r * f + c];
        ref[c] += (float)s;
    }
    ct_op_conv2d_bias_grad(dz, db, rows, f);
    CHECK(rel_err(db, ref, f) < 1e-5);
    free(dz);
}

/* The fused ReLU backward: dz = dy * (y > 0) in place, db += sums. */
static void test_relu_bwd(void)
{
    int64_t batch = 3, rows = 301;
    int f = 37;
    int64_t n = batch * rows * f;
    float *y = rnd(n, -1, 1), *dy = rnd(n, -1, 1), *ref = dup(dy, n), db[37], dbref[37];
    double part[3 * 37];
    for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0, ref[i] = y[i] > 0 ? ref[i] : 0;
    for (int c = 0; c < f; c++) {
        double s = 0;
        for (int64_t r = 0; r < batch * rows; r++) s += ref[r * f + c];
        db[c] = 0.5f;
        dbref[c] = 0.5f + (float)s;
    }
    ct_op_conv2d_relu_bwd(y, dy, dy, db, batch, rows, f, part);
    CHECK(memcmp(dy, ref, sizeof(float) * (size_t)n) == 0);
    CHECK(rel_err(db, dbref, f) < 1e-5);
    ct_op_conv2d_relu_bwd(y, ref, ref, NULL, batch, rows, f, part);
    CHECK(memcmp(dy, ref, sizeof(float) * (size_t)n) == 0);
    free(y), free(dy), free(ref);
}

static void test_depthwise_kernels(void)
{
    uint64_t st = 99;
    int tested = 0, bad = 0;
    while (tested < 40) {
        ct_conv2d_geom g;
        if (!random_geom(&st, &g)) continue;
        int m = (int)rand_int(&st, 1, 3);
        g.f = g.c * m;
        tested++;
        ct_conv2d_geom r = g;
        r.impl = CT_CONV_REF;
        int64_t nx = g.batch * g.h * g.w * g.c, nz = g.batch * g.oh * g.ow * g.f, nk = (int64_t)g.kh * g.kw * g.f;
        float *x = rnd(nx, -1, 1), *k = rnd(nk, -1, 1), *bias = rnd(g.f, -1, 1), *dz = rnd(nz, -1, 1);
        float *z0 = malloc(sizeof(float) * (size_t)nz), *z1 = malloc(sizeof(float) * (size_t)nz);
        float *dx0 = rnd(nx, -1, 1), *dx1 = dup(dx0, nx), *dk0 = rnd(nk, -1, 1), *dk1 = dup(dk0, nk);
        ct_op_depthwise_conv2d_fwd(&r, x, k, bias, z0);
        ct_op_depthwise_conv2d_fwd(&g, x, k, bias, z1);
        ct_op_depthwise_conv2d_bwd_data(&r, dz, k, dx0);
        ct_op_depthwise_conv2d_bwd_data(&g, dz, k, dx1);
        ct_op_depthwise_conv2d_bwd_weights(&r, x, dz, dk0);
        ct_op_depthwise_conv2d_bwd_weights(&g, x, dz, dk1);
        char desc[160];
        geom_str(&g, desc, sizeof desc);
        if (rel_err(z1, z0, nz) > 1e-5 || rel_err(dx1, dx0, nx) > 1e-5 || rel_err(dk1, dk0, nk) > 1e-4) {
            bad++;
            fprintf(stderr, "  depthwise m%d %s: %g %g %g\n", m, desc, rel_err(z1, z0, nz), rel_err(dx1, dx0, nx),
                    rel_err(dk1, dk0, nk));
        }
        free(x), free(k), free(bias), free(dz), free(z0), free(z1), free(dx0), free(dx1), free(dk0), free(dk1);
    }
    CHECK_MSG(bad == 0, "%d depthwise mismatches", bad);
}

/* ---- output sizes -------------------------------------------------------- */

static void test_out_len(void)
{
    /* in, k, s, d, same -> out, pad_before: TF conv_output_length and
     * get_pad (pad_total / 2, the odd pixel after). */
    static const int t[][7] = {
        {32, 3, 1, 1, 0, 30, 0}, {32, 3, 1, 1, 1, 32, 1}, {32, 3, 2, 1, 1, 16, 0}, {33, 3, 2, 1, 1, 17, 1},
        {31, 3, 2, 1, 1, 16, 1}, {32, 3, 2, 1, 0, 15, 0}, {33, 3, 2, 1, 0, 16, 0}, {5, 2, 1, 1, 1, 5, 0},
        {7, 3, 1, 2, 1, 7, 2},   {7, 3, 1, 2, 0, 3, 0},   {7, 4, 3, 1, 1, 3, 1},   {8, 4, 3, 1, 1, 3, 1},
        {1, 3, 1, 1, 0, 0, 0},   {2, 5, 2, 1, 1, 1, 1},   {10, 1, 3, 1, 1, 4, 0},  {10, 1, 3, 1, 0, 4, 0},
        {6, 6, 1, 1, 1, 6, 2},   {16, 3, 2, 1, 1, 8, 0},  {17, 5, 4, 1, 1, 5, 2},
    };
    for (size_t n = 0; n < sizeof t / sizeof t[0]; n++) {
        int pad = -1, out = ct_conv_out_len(t[n][0], t[n][1], t[n][2], t[n][3], t[n][4], &pad);
        CHECK_MSG(out == t[n][5] && (out < 1 || pad == t[n][6]), "case %zu: out %d pad %d", n, out, pad);
    }
    /* in, k, s, d, same, output_padding -> out: Keras deconv_output_length */
    static const int d[][7] = {
        {5, 3, 1, 1, 0, -1, 7},  {5, 3, 2, 1, 0, -1, 11}, {5, 3, 2, 1, 1, -1, 10}, {5, 1, 3, 1, 0, -1, 15},
        {5, 3, 2, 1, 1, 1, 10},  {5, 3, 2, 1, 1, 0, 9},   {5, 3, 2, 1, 0, 1, 12},  {4, 2, 2, 1, 1, -1, 8},
        {4, 3, 1, 2, 1, -1, 4},  {4, 3, 1, 2, 0, -1, 8},  {3, 4, 3, 1, 1, 2, 8},
    };
    for (size_t n = 0; n < sizeof d / sizeof d[0]; n++)
        CHECK_MSG(ct_deconv_out_len(d[n][0], d[n][1], d[n][2], d[n][3], d[n][4], d[n][5]) == d[n][6], "deconv case %zu",
                  n);
}

/* ---- layers ---------------------------------------------------------------- */

/* The harness is tests/layer_harness.h; inputs in [-1, 1]. */
static ct_layer *make(const char *type, const ct_layer_config *cfg, ct_shape in)
{
    return make_layer(type, cfg, &in, 1);
}

static void destroy(ct_layer *l) { layer_free(l); }

static void setup(harness *h, ct_layer *l, int64_t batch)
{
    harness_setup(h, l, batch, &(gradcheck_opts){.training = 1, .lo = -1, .hi = 1});
}

/* Backward runs twice (halved) to check that gradients accumulate. */
static int gradcheck(ct_layer *l, int64_t batch)
{
    return gradcheck_layer(l, batch, &(gradcheck_opts){.training = 1, .twice = 1, .tol = 3e-3, .lo = -1, .hi = 1});
}

typedef struct conv_case {
    const char *type;
    int h, w, c;
    int filters, kh, kw, sh, sw, dh, dw;
    const char *padding;
    int dm, oph, opw; /* depth multiplier; output padding (-1: none) */
    int use_bias;
} conv_case;

static ct_layer_config case_cfg(const conv_case *t, int32_t *ks, int32_t *st, int32_t *dl, int32_t *op)
{
    ct_layer_config c = base_cfg();
    if (t->filters > 0) c.has_filters = 1, c.filters = t->filters;
    ks[0] = t->kh, ks[1] = t->kw;
    c.kernel_size = ks, c.n_kernel_size = 2;
    st[0] = t->sh, st[1] = t->sw;
    c.strides = st, c.n_strides = 2;
    dl[0] = t->dh, dl[1] = t->dw;
    c.dilation_rate = dl, c.n_dilation_rate = 2;
    c.padding = (char *)t->padding;
    c.has_depth_multiplier = 1, c.depth_multiplier = t->dm;
    if (t->oph >= 0) op[0] = t->oph, op[1] = t->opw, c.output_padding = op, c.n_output_padding = 2;
    c.use_bias = t->use_bias;
    return c;
}

static ct_layer *make_case(const conv_case *t)
{
    int32_t ks[2], st[2], dl[2], op[2];
    ct_layer_config c = case_cfg(t, ks, st, dl, op);
    return make(t->type, &c, ct_shape3(t->h, t->w, t->c));
}

static void test_layer_gradients(void)
{
    static const conv_case cases[] = {
        /* type, h, w, c, filters, kh, kw, sh, sw, dh, dw, padding, dm, oph, opw, bias */
        {"conv2d", 5, 7, 2, 3, 3, 2, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"conv2d", 5, 7, 2, 3, 3, 2, 1, 1, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d", 5, 7, 2, 3, 3, 2, 2, 2, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d", 6, 7, 3, 2, 3, 3, 2, 1, 1, 1, "valid", 1, -1, -1, 0},
        {"conv2d", 6, 8, 2, 3, 3, 3, 2, 2, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d", 7, 6, 2, 2, 3, 2, 1, 1, 2, 2, "same", 1, -1, -1, 1},
        {"conv2d", 7, 7, 2, 2, 2, 3, 1, 1, 2, 1, "valid", 1, -1, -1, 1},
        {"conv2d", 4, 5, 3, 17, 1, 1, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"depthwise_conv2d", 5, 7, 3, 0, 3, 2, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"depthwise_conv2d", 5, 7, 2, 0, 3, 2, 2, 2, 1, 1, "same", 2, -1, -1, 1},
        {"depthwise_conv2d", 6, 6, 2, 0, 3, 3, 1, 1, 2, 2, "same", 2, -1, -1, 0},
        {"separable_conv2d", 5, 7, 2, 3, 3, 2, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"separable_conv2d", 5, 7, 2, 3, 3, 2, 2, 2, 1, 1, "same", 2, -1, -1, 1},
        {"separable_conv2d", 6, 5, 3, 2, 2, 3, 1, 1, 2, 1, "same", 2, -1, -1, 0},
        {"conv2d_transpose", 3, 4, 2, 3, 3, 2, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"conv2d_transpose", 3, 4, 2, 3, 3, 2, 2, 2, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d_transpose", 3, 4, 2, 3, 3, 3, 2, 2, 1, 1, "valid", 1, -1, -1, 1},
        {"conv2d_transpose", 3, 4, 2, 2, 3, 3, 2, 2, 1, 1, "same", 1, 1, 0, 1},
        {"conv2d_transpose", 3, 3, 2, 2, 3, 2, 2, 3, 1, 1, "valid", 1, 1, 2, 0},
        {"conv2d_transpose", 4, 3, 2, 2, 3, 3, 1, 1, 2, 2, "same", 1, -1, -1, 1},
        {"conv2d_transpose", 3, 3, 3, 2, 2, 2, 1, 1, 2, 1, "valid", 1, -1, -1, 1},
        {"conv2d_transpose", 2, 3, 2, 2, 1, 1, 3, 3, 1, 1, "valid", 1, -1, -1, 1},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        const conv_case *t = &cases[n];
        int bad = gradcheck(make_case(t), 2);
        CHECK_MSG(bad == 0, "gradient case %zu (%s %dx%dx%d k%dx%d s%d,%d d%d,%d %s)", n, t->type, t->h, t->w, t->c,
                  t->kh, t->kw, t->sh, t->sw, t->dh, t->dw, t->padding);
    }
}

/* Conv2D applying its own activation (as inside the graph). The harness
 * applies the activation again on top, a composition whose gradient is
 * just as checkable: tanh reads y, gelu the z kept in saved. ReLU (the
 * fused kernels) has kinks that finite differences straddle, so it is
 * compared with the same layer leaving the ReLU to the harness, the way
 * the graph runs a layer that does not own its activation. */
static int own_relu_matches(ct_layer *l)
{
    harness h;
    setup(&h, l, 2);
    int64_t np = 0;
    for (int k = 0; k < l->n_params; k++) np += ct_shape_numel(&l->params[k].shape);
    l->own_act = 1;
    analytic(&h, 1);
    float *dx = dup(h.din[0], h.in_n[0]), *dp = dup(h.grads, np), *y = dup(h.y, h.out_n);
    l->own_act = 0;
    analytic(&h, 1);
    int ok = rel_err(dx, h.din[0], h.in_n[0]) < 1e-5 && rel_err(dp, h.grads, np) < 1e-5 &&
             rel_err(y, h.y, h.out_n) < 1e-6;
    free(dx), free(dp), free(y);
    teardown(&h);
    return ok;
}

static void test_own_activation(void)
{
    static const struct { const char *act; conv_case t; } cases[] = {
        {"relu", {"conv2d", 5, 7, 2, 3, 3, 3, 1, 1, 1, 1, "same", 1, -1, -1, 1}},
        {"relu", {"conv2d", 4, 5, 3, 17, 1, 1, 1, 1, 1, 1, "valid", 1, -1, -1, 1}},
        {"relu", {"conv2d", 6, 8, 2, 3, 3, 3, 2, 2, 1, 1, "same", 1, -1, -1, 0}},
        {"relu", {"conv2d", 9, 9, 16, 40, 3, 3, 1, 1, 1, 1, "same", 1, -1, -1, 1}},
        {"tanh", {"conv2d", 5, 7, 2, 3, 3, 2, 1, 1, 1, 1, "valid", 1, -1, -1, 1}},
        {"gelu", {"conv2d", 5, 6, 3, 4, 3, 3, 1, 1, 1, 1, "same", 1, -1, -1, 1}},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        int32_t ks[2], st[2], dl[2], op[2];
        ct_layer_config c = case_cfg(&cases[n].t, ks, st, dl, op);
        c.activation = (char *)cases[n].act;
        ct_layer *l = make("conv2d", &c, ct_shape3(cases[n].t.h, cases[n].t.w, cases[n].t.c));
        CHECK_MSG(l && l->act != CT_ACT_LINEAR, "own activation case %zu: layer", n);
        if (!l) continue;
        if (l->act == CT_ACT_RELU) {
            CHECK_MSG(own_relu_matches(l), "own activation case %zu (relu)", n);
            continue;
        }
        l->own_act = 1;
        int bad = gradcheck_layer(l, 2, &(gradcheck_opts){.training = 1, .tol = 3e-3, .lo = -1, .hi = 1});
        CHECK_MSG(bad == 0, "own activation case %zu (%s)", n, cases[n].act);
    }
}

static void check_shape3(const ct_layer *l, int a, int b, int c)
{
    CHECK_MSG(l && l->out_shape.rank == 3 && l->out_shape.dims[0] == a && l->out_shape.dims[1] == b &&
                  l->out_shape.dims[2] == c,
              "expected %dx%dx%d", a, b, c);
}

/* Forward and backward give the same bits with 1 and 2 threads: every
 * output and kernel-gradient element is summed in a fixed order. */
static void run_threads(const conv_case *t, int threads, float **z, float **dx, float **dp, int64_t *nz, int64_t *nx,
                        int64_t *np)
{
    ct_layer *l = make_case(t);
    if (!l) return;
    harness h;
    harness_draws = 5000;
    setup(&h, l, 5);
    int keep = omp_get_max_threads();
    omp_set_num_threads(threads);
    loss_of(&h);
    if (h.dy != h.r) memcpy(h.dy, h.r, sizeof(float) * (size_t)h.out_n);
    ct_layer_io io;
    io_for(&h, &io);
    l->type->backward(l, &io);
    omp_set_num_threads(keep);
    *nz = h.out_n, *nx = h.in_n[0], *np = 0;
    for (int k = 0; k < l->n_params; k++) *np += ct_shape_numel(&l->params[k].shape);
    *z = dup(h.z, h.out_n), *dx = dup(h.din[0], h.in_n[0]), *dp = dup(h.grads, *np);
    teardown(&h);
}

static void test_thread_independence(void)
{
    static const conv_case cases[] = {
        {"conv2d", 17, 19, 16, 32, 3, 3, 1, 1, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d", 17, 19, 20, 40, 3, 3, 2, 2, 1, 1, "same", 1, -1, -1, 1},
        {"conv2d", 12, 12, 3, 16, 3, 3, 1, 1, 1, 1, "valid", 1, -1, -1, 1},
        {"conv2d_transpose", 6, 7, 16, 8, 3, 3, 2, 2, 1, 1, "same", 1, -1, -1, 1},
        {"separable_conv2d", 9, 9, 8, 24, 3, 3, 1, 1, 1, 1, "same", 2, -1, -1, 1},
    };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        float *z1 = NULL, *x1 = NULL, *p1 = NULL, *z2 = NULL, *x2 = NULL, *p2 = NULL;
        int64_t nz, nx, np;
        run_threads(&cases[n], 1, &z1, &x1, &p1, &nz, &nx, &np);
        run_threads(&cases[n], 2, &z2, &x2, &p2, &nz, &nx, &np);
        CHECK_MSG(z1 && z2 && memcmp(z1, z2, sizeof(float) * (size_t)nz) == 0, "case %zu: output", n);
        CHECK_MSG(x1 && x2 && memcmp(x1, x2, sizeof(float) * (size_t)nx) == 0, "case %zu: input gradient", n);
        /* The sgemm paths reduce kernel gradients inside OpenBLAS, whose
         * sums depend on its thread count; the direct kernels promise bits. */
        ct_conv_impl impl = ct_conv_impl_best();
        if (impl == CT_CONV_AVX512 || impl == CT_CONV_REF)
            CHECK_MSG(p1 && p2 && memcmp(p1, p2, sizeof(float) * (size_t)np) == 0, "case %zu: parameter gradients",
                      n);
        free(z1), free(x1), free(p1), free(z2), free(x2), free(p2);
    }
}

/* Layers built from a .conf through the graph: shapes, parameter names,
 * a forward and backward pass on planned buffers; keys a type does not
 * accept are config errors. */
static void test_config_graph(void)
{
    const char *text = "[model]\ninput = 9, 8, 3\n"
                       "[c1]\ntype = conv2d\nfilters = 8\nkernel_size = 3\npadding = same\nactivation = relu\n"
                       "kernel_initializer = he_normal\nkernel_regularizer = l2(0.01)\n"
                       "[d1]\ntype = depthwise_conv2d\nkernel_size = 3, 2\nstrides = 2\ndepth_multiplier = 2\n"
                       "[s1]\ntype = separable_conv2d\nfilters = 6\nkernel_size = 2\ndilation_rate = 2\n"
                       "padding = same\nuse_bias = false\n"
                       "[t1]\ntype = conv2d_transpose\nfilters = 5\nkernel_size = 3\nstrides = 2\npadding = same\n"
                       "output_padding = 1\nactivation = tanh\n"
                       "[f]\ntype = flatten\n"
                       "[out]\ntype = dense\nunits = 3\n";
    ct_config *cfg = NULL;
    ct_graph *g = NULL;
    CHECK(ct_config_parse(text, strlen(text), "conv.conf", NULL, &cfg) == CT_OK);
    if (cfg) CHECK(ct_graph_build(cfg, 7, &g) == CT_OK);
    if (!g) {
        fprintf(stderr, "  %s\n", ct_error_message());
        ct_config_free(cfg);
        return;
    }
    check_shape3(g->nodes[0].layer, 9, 8, 8);
    check_shape3(g->nodes[1].layer, 4, 4, 16);
    check_shape3(g->nodes[2].layer, 4, 4, 6);
    check_shape3(g->nodes[3].layer, 8, 8, 5);
    int names = 0;
    for (int i = 0; i < g->n_params; i++) {
        const char *n = g->params[i].full_name;
        names += !strcmp(n, "c1/kernel") + !strcmp(n, "d1/depthwise_kernel") + !strcmp(n, "s1/pointwise_kernel") +
                 !strcmp(n, "t1/kernel") + !strcmp(n, "t1/bias");
    }
    CHECK(names == 5);
    CHECK(g->nodes[2].layer->n_params == 2); /* use_bias = false */
    CHECK(ct_graph_plan(g, 4) == CT_OK);
    float x[4 * 216];
    random_fill(x, 4 * 216, 0, 1);
    ct_graph_forward(g, x, 4, 1, 1, 5);
    ct_node *out = ct_graph_output(g);
    for (int i = 0; i < 12; i++) out->dy[i] = 0.1f * (float)(i + 1);
    ct_graph_backward(g, 4, 0, 1, 5);
    int finite = 1, nonzero = 0;
    for (int64_t i = 0; i < g->n_trainable; i++) finite &= isfinite(g->grads[i]), nonzero += g->grads[i] != 0;
    CHECK(finite && nonzero > g->n_trainable / 2);
    /* A short batch on the same plan. */
    ct_graph_forward(g, x, 3, 0, 2, 5);
    for (int i = 0; i < 9; i++) finite &= isfinite(out->y[i]);
    CHECK(finite);
    ct_graph_destroy(g);
    ct_config_free(cfg);

    const char *bad = "[model]\ninput = 9, 8, 3\n[c1]\ntype = conv2d\nfilters = 8\nkernel_size = 3\n"
                      "depth_multiplier = 2\n";
    cfg = NULL;
    CHECK(ct_config_parse(bad, strlen(bad), "conv.conf", NULL, &cfg) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "depth_multiplier");
    ct_config_free(cfg);
}

/* ---- shapes, params, fans, errors ----------------------------------------- */

static int param_is(const ct_layer *l, int k, const char *name, int rank, const int64_t *dims)
{
    if (!l || k >= l->n_params || strcmp(l->params[k].name, name) != 0 || l->params[k].shape.rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (l->params[k].shape.dims[i] != dims[i]) return 0;
    return 1;
}

static void test_layer_shapes(void)
{
    conv_case t = {"conv2d", 32, 32, 3, 32, 3, 3, 1, 1, 1, 1, "valid", 1, -1, -1, 1};
    ct_layer *l = make_case(&t);
    check_shape3(l, 30, 30, 32);
    CHECK(param_is(l, 0, "kernel", 4, (int64_t[]){3, 3, 3, 32}));
    CHECK(param_is(l, 1, "bias", 1, (int64_t[]){32}));
    if (l) {
        double fi, fo;
        ct_compute_fans(&l->params[0].shape, &fi, &fo);
        CHECK(fi == 27 && fo == 288); /* Keras: receptive field x in / out */
    }
    destroy(l);
    t.padding = "same", t.sh = t.sw = 2, t.h = 33, t.w = 32;
    l = make_case(&t);
    check_shape3(l, 17, 16, 32);
    destroy(l);

    conv_case d = {"depthwise_conv2d", 9, 8, 4, 0, 3, 3, 2, 2, 1, 1, "same", 3, -1, -1, 1};
    l = make_case(&d);
    check_shape3(l, 5, 4, 12);
    CHECK(param_is(l, 0, "depthwise_kernel", 4, (int64_t[]){3, 3, 4, 3}));
    CHECK(param_is(l, 1, "bias", 1, (int64_t[]){12}));
    destroy(l);

    conv_case s = {"separable_conv2d", 9, 8, 4, 10, 3, 3, 1, 1, 1, 1, "valid", 2, -1, -1, 1};
    l = make_case(&s);
    check_shape3(l, 7, 6, 10);
    CHECK(param_is(l, 0, "depthwise_kernel", 4, (int64_t[]){3, 3, 4, 2}));
    CHECK(param_is(l, 1, "pointwise_kernel", 4, (int64_t[]){1, 1, 8, 10}));
    CHECK(param_is(l, 2, "bias", 1, (int64_t[]){10}));
    destroy(l);

    conv_case tr = {"conv2d_transpose", 5, 6, 4, 7, 3, 3, 2, 2, 1, 1, "valid", 1, -1, -1, 1};
    l = make_case(&tr);
    check_shape3(l, 11, 13, 7);
    CHECK(param_is(l, 0, "kernel", 4, (int64_t[]){3, 3, 7, 4}));
    if (l) {
        double fi, fo;
        ct_compute_fans(&l->params[0].shape, &fi, &fo);
        CHECK(fi == 63 && fo == 36); /* Keras computes them from (kh, kw, out, in) as is */
    }
    destroy(l);
    tr.padding = "same";
    l = make_case(&tr);
    check_shape3(l, 10, 12, 7);
    destroy(l);
    tr.oph = 1, tr.opw = 0;
    l = make_case(&tr);
    check_shape3(l, 10, 11, 7);
    destroy(l);
}

static void expect_error(const char *type, ct_layer_config *c, ct_shape in, ct_status want, const char *needle)
{
    ct_layer *l = make(type, c, in);
    CHECK_MSG(l == NULL, "%s: expected an error containing '%s'", type, needle);
    destroy(l);
    CHECK_MSG(ct_error_status() == want, "%s: status %s", type, ct_status_name(ct_error_status()));
    CHECK_STR_CONTAINS(ct_error_message(), needle);
}

static void test_layer_errors(void)
{
    int32_t ks[2], st[2], dl[2], op[2];
    conv_case t = {"conv2d", 8, 8, 3, 4, 3, 3, 1, 1, 1, 1, "valid", 1, -1, -1, 1};
    ct_layer_config c = case_cfg(&t, ks, st, dl, op);
    c.has_filters = 0;
    expect_error("conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "filters");
    c = case_cfg(&t, ks, st, dl, op);
    c.n_kernel_size = 0;
    expect_error("conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "kernel_size");
    t.sh = 2, t.dh = 2;
    c = case_cfg(&t, ks, st, dl, op);
    expect_error("conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "dilation");
    expect_error("depthwise_conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "dilation");
    expect_error("separable_conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "dilation");
    expect_error("conv2d_transpose", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "dilation");
    t.sh = 1, t.dh = 1;
    c = case_cfg(&t, ks, st, dl, op);
    c.padding = "causal";
    expect_error("conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "padding");
    c = case_cfg(&t, ks, st, dl, op);
    expect_error("conv2d", &c, ct_shape2(8, 3), CT_ERR_SHAPE, "8x3");
    expect_error("conv2d", &c, ct_shape3(2, 8, 3), CT_ERR_SHAPE, "2x8x3");
    c.activation = "rellu";
    expect_error("conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "rellu");
    c = case_cfg(&t, ks, st, dl, op);
    c.has_depth_multiplier = 1, c.depth_multiplier = 0;
    expect_error("depthwise_conv2d", &c, ct_shape3(8, 8, 3), CT_ERR_CONFIG, "depth_multiplier");
    /* Keras: output padding must be smaller than the stride. */
    conv_case tr = {"conv2d_transpose", 4, 4, 2, 3, 3, 3, 2, 2, 1, 1, "same", 1, 2, 0, 1};
    c = case_cfg(&tr, ks, st, dl, op);
    expect_error("conv2d_transpose", &c, ct_shape3(4, 4, 2), CT_ERR_CONFIG, "output_padding");
    /* Even kernel, 'same', output_padding 0: TF cannot map the output back. */
    conv_case te = {"conv2d_transpose", 4, 4, 2, 3, 2, 2, 2, 2, 1, 1, "same", 1, 0, 0, 1};
    c = case_cfg(&te, ks, st, dl, op);
    expect_error("conv2d_transpose", &c, ct_shape3(4, 4, 2), CT_ERR_SHAPE, "conv2d_transpose");
    /* The keys each type accepts. */
    const ct_layer_type *ty = ct_layer_type_find("conv2d");
    CHECK(ty && ct_layer_type_key(ty, "filters") && !ct_layer_type_key(ty, "depth_multiplier"));
}

/* Strong references: the weak ones in core/layer.c do not pull these
 * objects out of the static library. */
extern const ct_layer_type ct_layer_conv2d, ct_layer_depthwise_conv2d, ct_layer_separable_conv2d,
    ct_layer_conv2d_transpose;

int main(void)
{
    ct_register_builtins();
    const ct_layer_type *mine[] = {&ct_layer_conv2d, &ct_layer_depthwise_conv2d, &ct_layer_separable_conv2d,
                                   &ct_layer_conv2d_transpose};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) ct_layer_register(mine[i]);
    printf("conv impl: %s\n", ct_conv_impl_name(ct_conv_impl_best()));
    test_out_len();
    test_kernels_fixed();
    test_kernels_random();
    test_bias_grad();
    test_relu_bwd();
    test_depthwise_kernels();
    test_layer_shapes();
    test_layer_errors();
    test_layer_gradients();
    test_own_activation();
    test_thread_independence();
    test_config_graph();
    return ct_test_report("test_conv");
}
