/* Small elementwise and BLAS-backed kernels shared by the layers. */
#include <cblas.h>

#include "ops.h"

void ct_op_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                const float *B, float beta, float *C)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)(ta ? M : K), B,
                (blasint)(tb ? K : N), beta, C, (blasint)N);
}

void ct_op_add_bias(float *out, const float *bias, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
#pragma omp simd
        for (int64_t c = 0; c < cols; c++) o[c] += bias[c];
    }
}

void ct_op_bias_grad(const float *d, float *db, int64_t rows, int64_t cols)
{
    /* Sum over rows in row order so the result does not depend on threads. */
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t c = 0; c < cols; c++) {
        float s = 0;
        for (int64_t r = 0; r < rows; r++) s += d[r * cols + c];
        db[c] += s;
    }
}

void ct_op_axpy(float *y, const float *x, float a, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 262144)
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void ct_op_scale(float *y, const float *x, float s, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 262144)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
}

void ct_op_fill(float *y, float v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = v;
}
