/* Batch-normalization kernels over the last (channel) axis.
 *
 * Statistics are sums in double: each block of rows (a sample) sums into
 * its own slot of `work`, then the slots are added in block order. That
 * keeps the result independent of the number of threads, and double
 * sums make the one-pass variance E[x^2] - mean^2 safe for the sizes a
 * batch has. */
#include <math.h>

#include "image_ops.h"

#define PAR_MIN 32768

/* work[k] = sum over blocks g of work[g * 2c + k], k < 2c, in block order. */
static void reduce_blocks(double *work, int64_t groups, int64_t c)
{
    const int64_t n = 2 * c;
#pragma omp parallel for schedule(static) if (groups * n > PAR_MIN)
    for (int64_t k = 0; k < n; k++) {
        double t = work[k];
        for (int64_t g = 1; g < groups; g++) t += work[g * n + k];
        work[k] = t;
    }
}

void ct_op_bn_moments(const float *x, int64_t groups, int64_t rows, int64_t c, double *work)
{
#pragma omp parallel for schedule(static) if (groups * rows * c > PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        double *restrict s = work + g * 2 * c, *restrict q = s + c;
        for (int64_t ch = 0; ch < c; ch++) s[ch] = q[ch] = 0;
        for (int64_t r = 0; r < rows; r++) {
            const float *restrict xr = x + (g * rows + r) * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) {
                double v = xr[ch];
                s[ch] += v;
                q[ch] += v * v;
            }
        }
    }
    reduce_blocks(work, groups, c);
    const double n = (double)(groups * rows);
    for (int64_t ch = 0; ch < c; ch++) {
        double mean = work[ch] / n, var = work[c + ch] / n - mean * mean;
        work[ch] = mean;
        work[c + ch] = var > 0 ? var : 0;
    }
}

void ct_op_bn_apply(const float *x, const float *mean, const float *a, const float *b, float *y, int64_t n,
                    int64_t c)
{
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *restrict xr = x + r * c;
        float *restrict yr = y + r * c;
        if (b) {
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yr[ch] = (xr[ch] - mean[ch]) * a[ch] + b[ch];
        } else {
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yr[ch] = (xr[ch] - mean[ch]) * a[ch];
        }
    }
}

void ct_op_bn_bwd_sums(const float *x, const float *dy, const float *mean, const float *inv_std,
                       int64_t groups, int64_t rows, int64_t c, double *work)
{
#pragma omp parallel for schedule(static) if (groups * rows * c > PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        double *restrict s = work + g * 2 * c, *restrict q = s + c;
        for (int64_t ch = 0; ch < c; ch++) s[ch] = q[ch] = 0;
        for (int64_t r = 0; r < rows; r++) {
            const float *restrict xr = x + (g * rows + r) * c, *restrict dr = dy + (g * rows + r) * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) {
                float xhat = (xr[ch] - mean[ch]) * inv_std[ch];
                s[ch] += dr[ch];
                q[ch] += (double)dr[ch] * xhat;
            }
        }
    }
    reduce_blocks(work, groups, c);
}

void ct_op_bn_bwd_dx(const float *x, const float *dy, const float *mean, const float *k1, const float *k2,
                     const float *k3, float *dx, int64_t n, int64_t c)
{
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *restrict xr = x + r * c, *restrict dr = dy + r * c;
        float *restrict o = dx + r * c;
#pragma omp simd
        for (int64_t ch = 0; ch < c; ch++) o[ch] += k1[ch] * dr[ch] + k2[ch] * (xr[ch] - mean[ch]) + k3[ch];
    }
}

void ct_op_fold_affine(float *k_out, float *b_out, const float *kernel, const float *bias, int64_t fan, int64_t c,
                       const float *scale, const float *shift)
{
    for (int64_t r = 0; r < fan; r++)
        for (int64_t ch = 0; ch < c; ch++) k_out[r * c + ch] = kernel[r * c + ch] * scale[ch];
    for (int64_t ch = 0; ch < c; ch++) b_out[ch] = (bias ? bias[ch] * scale[ch] : 0.0f) + shift[ch];
}
