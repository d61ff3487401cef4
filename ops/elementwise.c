/* Small elementwise and BLAS-backed kernels shared by the layers. */
#include <cblas.h>

#include "ops.h"

/* C is cut into a grid of tiles that depends on M and N only, and each
 * tile is one single-threaded sgemm (OpenBLAS runs single-threaded inside
 * an active parallel region). A multi-threaded OpenBLAS call gives other
 * bits for other thread counts; this way every element is computed by the
 * same call whatever the thread count, so training is bitwise the same
 * with 1, 2 or 3 threads (tests/test_threads.c). */
#define GEMM_TILE_M 64
#define GEMM_TILE_N 128

void ct_op_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                const float *B, float beta, float *C)
{
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    const int64_t tm = (M + GEMM_TILE_M - 1) / GEMM_TILE_M, tn = (N + GEMM_TILE_N - 1) / GEMM_TILE_N;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tm * tn; t++) {
        int64_t i0 = (t / tn) * GEMM_TILE_M, j0 = (t % tn) * GEMM_TILE_N;
        int64_t m = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M, n = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;
        const float *a = ta ? A + i0 : A + i0 * lda; /* rows i0.. of op(A) */
        const float *b = tb ? B + j0 * ldb : B + j0; /* columns j0.. of op(B) */
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m,
                    (blasint)n, (blasint)K, alpha, a, (blasint)lda, b, (blasint)ldb, beta, C + i0 * N + j0,
                    (blasint)N);
    }
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
    /* Sum over rows in row order so the result does not depend on threads;
     * blocks of 64 columns read the rows contiguously (the same sums, in
     * the same order, as one column at a time). */
    const int64_t nblk = (cols + 63) / 64;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t blk = 0; blk < nblk; blk++) {
        const int64_t c0 = blk * 64, c1 = c0 + 64 < cols ? c0 + 64 : cols;
        float s[64] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *dr = d + r * cols;
            for (int64_t c = c0; c < c1; c++) s[c - c0] += dr[c];
        }
        for (int64_t c = c0; c < c1; c++) db[c] += s[c - c0];
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
