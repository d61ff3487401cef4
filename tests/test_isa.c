/* The instruction-set switch (ops/isa.h) and every SIMD path of the
 * non-convolution kernels against references computed here in double, on
 * the same inputs, for each instruction set this CPU has (generic, avx2,
 * avx512): BatchNormalization statistics, normalisation and backward
 * sums, the fused ReLU backward with the bias gradient. (The convolution
 * paths are checked the same way in test_conv.) Shapes include channel
 * counts that are not a multiple of the vector width. */
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "ct_test.h"
#include "image_ops.h"
#include "isa.h"
#include "layer_harness.h"

static float *rnd(int64_t n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    random_fill(v, n, lo, hi);
    return v;
}

/* max |a - b| / (1 + |b|) */
static double rel_err_d(const double *a, const double *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static double rel_err_f(const float *a, const double *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1 + fabs(b[i]));
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void test_switch(void)
{
    CHECK(ct_isa_parse("generic") == CT_ISA_GENERIC);
    CHECK(ct_isa_parse("avx2") == CT_ISA_AVX2);
    CHECK(ct_isa_parse("avx512") == CT_ISA_AVX512);
    CHECK(ct_isa_parse("sse9") == CT_ISA_COUNT);
    CHECK(ct_isa_parse(NULL) == CT_ISA_COUNT);
    for (int i = 0; i < CT_ISA_COUNT; i++) CHECK((int)ct_isa_parse(ct_isa_name((ct_isa)i)) == i);
    ct_isa cpu = ct_isa_cpu();
    ct_isa_force(CT_ISA_GENERIC);
    CHECK(ct_isa_active() == CT_ISA_GENERIC);
    CHECK(ct_conv_impl_best() == CT_CONV_GEMM_BATCHED);
    CHECK(!ct_conv_impl_available(CT_CONV_AVX2) && !ct_conv_impl_available(CT_CONV_AVX512));
    /* a request above the CPU gives the best it has */
    ct_isa_force(CT_ISA_AVX512);
    CHECK(ct_isa_active() == cpu);
    CHECK(ct_conv_impl_available(CT_CONV_AVX2) == (cpu >= CT_ISA_AVX2));
    ct_isa_force(CT_ISA_COUNT);
    printf("cpu: %s, active: %s\n", ct_isa_name(cpu), ct_isa_name(ct_isa_active()));
}

/* BatchNormalization kernels on (groups, rows, c) against double loops. */
static void test_bn(ct_isa isa, int64_t groups, int64_t rows, int64_t c)
{
    int64_t n = groups * rows, e = n * c;
    float *x = rnd(e, -2, 3), *dy = rnd(e, -1, 1), *mean = rnd(c, -0.5f, 0.5f), *a = rnd(c, 0.5f, 2);
    float *b = rnd(c, -1, 1), *k1 = rnd(c, -1, 1), *k2 = rnd(c, -1, 1), *k3 = rnd(c, -1, 1);
    float *y = malloc(sizeof(float) * (size_t)e), *dx = rnd(e, -1, 1);
    double *work = malloc(sizeof(double) * (size_t)(2 * c * groups));
    double *ref = calloc((size_t)(2 * c), sizeof(double)), *yref = malloc(sizeof(double) * (size_t)e);
    double *dxref = malloc(sizeof(double) * (size_t)e);
    for (int64_t i = 0; i < e; i++) dxref[i] = dx[i];

    /* moments: mean and biased variance per channel */
    ct_op_bn_moments(x, groups, rows, c, work);
    for (int64_t i = 0; i < e; i++) ref[i % c] += x[i];
    for (int64_t ch = 0; ch < c; ch++) ref[ch] /= (double)n;
    for (int64_t i = 0; i < e; i++) ref[c + i % c] += (x[i] - ref[i % c]) * (x[i] - ref[i % c]);
    for (int64_t ch = 0; ch < c; ch++) ref[c + ch] /= (double)n;
    double err = rel_err_d(work, ref, 2 * c);
    CHECK_MSG(err < 1e-6, "%s bn_moments (%lld, %lld, %lld): err %g", ct_isa_name(isa), (long long)groups,
              (long long)rows, (long long)c, err);

    /* apply, with and without the shift */
    for (int with_b = 0; with_b < 2; with_b++) {
        ct_op_bn_apply(x, mean, a, with_b ? b : NULL, y, n, c);
        for (int64_t i = 0; i < e; i++)
            yref[i] = ((double)x[i] - mean[i % c]) * a[i % c] + (with_b ? b[i % c] : 0.0);
        err = rel_err_f(y, yref, e);
        CHECK_MSG(err < 1e-6, "%s bn_apply%s c %lld: err %g", ct_isa_name(isa), with_b ? "+b" : "", (long long)c,
                  err);
    }

    /* backward sums: sum dy and sum dy * (x - mean) * inv (a as inv) */
    ct_op_bn_bwd_sums(x, dy, mean, a, groups, rows, c, work);
    memset(ref, 0, sizeof(double) * (size_t)(2 * c));
    for (int64_t i = 0; i < e; i++) {
        ref[i % c] += dy[i];
        ref[c + i % c] += (double)dy[i] * ((double)x[i] - mean[i % c]) * a[i % c];
    }
    err = rel_err_d(work, ref, 2 * c);
    CHECK_MSG(err < 1e-5, "%s bn_bwd_sums c %lld: err %g", ct_isa_name(isa), (long long)c, err);

    /* dx += k1 dy + k2 (x - mean) + k3 */
    ct_op_bn_bwd_dx(x, dy, mean, k1, k2, k3, dx, n, c);
    for (int64_t i = 0; i < e; i++)
        dxref[i] += (double)k1[i % c] * dy[i] + (double)k2[i % c] * ((double)x[i] - mean[i % c]) + k3[i % c];
    err = rel_err_f(dx, dxref, e);
    CHECK_MSG(err < 1e-6, "%s bn_bwd_dx c %lld: err %g", ct_isa_name(isa), (long long)c, err);

    free(x), free(dy), free(mean), free(a), free(b), free(k1), free(k2), free(k3), free(y), free(dx);
    free(work), free(ref), free(yref), free(dxref);
}

/* dz = dy * (y > 0), db += column sums of dz. */
static void test_relu_bwd(ct_isa isa, int64_t batch, int64_t rows, int f)
{
    int64_t e = batch * rows * f;
    float *y = rnd(e, -1, 1), *dy = rnd(e, -1, 1), *dz = malloc(sizeof(float) * (size_t)e), *db = rnd(f, -1, 1);
    double *part = malloc(sizeof(double) * (size_t)(batch * f)), *ref = malloc(sizeof(double) * (size_t)e);
    double *dbref = malloc(sizeof(double) * (size_t)f);
    for (int o = 0; o < f; o++) dbref[o] = db[o];
    for (int i = 0; i < e / 7; i++) y[i * 7] = 0; /* exact zeros: no gradient */
    ct_op_conv2d_relu_bwd(y, dy, dz, db, batch, rows, f, part);
    for (int64_t i = 0; i < e; i++) {
        ref[i] = y[i] > 0 ? dy[i] : 0;
        dbref[i % f] += ref[i];
    }
    double err = rel_err_f(dz, ref, e), errb = rel_err_f(db, dbref, f);
    CHECK_MSG(err == 0, "%s relu_bwd f %d: err %g", ct_isa_name(isa), f, err);
    CHECK_MSG(errb < 1e-5, "%s relu_bwd bias f %d: err %g", ct_isa_name(isa), f, errb);
    free(y), free(dy), free(dz), free(db), free(part), free(ref), free(dbref);
}

int main(void)
{
    test_switch();
    static const int64_t shapes[][3] = {{1, 1, 8}, {3, 37, 16}, {4, 100, 32}, {2, 64, 64}, {2, 33, 40},
                                        {3, 17, 5}, {2, 9, 13}, {1, 300, 24}};
    for (int isa = 0; isa <= (int)ct_isa_cpu(); isa++) {
        ct_isa_force((ct_isa)isa);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            test_bn((ct_isa)isa, shapes[s][0], shapes[s][1], shapes[s][2]);
            test_relu_bwd((ct_isa)isa, shapes[s][0], shapes[s][1], (int)shapes[s][2]);
        }
    }
    ct_isa_force(CT_ISA_COUNT);
    return ct_test_report("test_isa");
}
