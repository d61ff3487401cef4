/* Batch-normalization kernels over the last (channel) axis.
 *
 * Statistics are sums in double: each block of rows (a sample) sums into
 * its own slot of `work`, then the slots are added in block order. That
 * keeps the result independent of the number of threads, and double
 * sums make the one-pass variance E[x^2] - mean^2 safe for the sizes a
 * batch has. */
#include <math.h>

#include "image_ops.h"
#include "isa.h"

#define PAR_MIN 32768

/* ---- AVX2 + FMA -------------------------------------------------------------
 * For c a multiple of 8 (every channel vector full). The sums keep the
 * generic path's order across rows blocks and samples; within a block of
 * 16 rows a channel sums in float, then adds into its double total. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_AVX2 __attribute__((target("avx2,fma")))
#define CT_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define BN_ROWS 16

static int use_avx2(int64_t c) { return c % 8 == 0 && ct_isa_active() >= CT_ISA_AVX2; }

/* d[0..8) += v, in double */
CT_AVX2_INLINE void add_to_double(double *d, __m256 v)
{
    _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

/* s, q (NV vectors from channel c0) += sums of x and x^2 (or, with dy, of
 * dy and dy * (x - mean) * inv) over rows of one sample. */
CT_AVX2_INLINE void sums_block(const float *x, const float *dy, const float *mean, const float *inv, int64_t rows,
                               int64_t c, int64_t c0, double *s, double *q, const int NV)
{
    __m256 m[4], iv[4];
    for (int n = 0; n < NV; n++) {
        m[n] = dy ? _mm256_loadu_ps(mean + c0 + 8 * n) : _mm256_setzero_ps();
        iv[n] = dy ? _mm256_loadu_ps(inv + c0 + 8 * n) : _mm256_setzero_ps();
    }
    for (int64_t r0 = 0; r0 < rows; r0 += BN_ROWS) {
        int64_t r1 = r0 + BN_ROWS < rows ? r0 + BN_ROWS : rows;
        __m256 fs[4], fq[4];
        for (int n = 0; n < NV; n++) fs[n] = fq[n] = _mm256_setzero_ps();
        for (int64_t r = r0; r < r1; r++)
            for (int n = 0; n < NV; n++) {
                __m256 v = _mm256_loadu_ps(x + r * c + c0 + 8 * n);
                if (dy) {
                    __m256 d = _mm256_loadu_ps(dy + r * c + c0 + 8 * n);
                    __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(v, m[n]), iv[n]);
                    fs[n] = _mm256_add_ps(fs[n], d);
                    fq[n] = _mm256_fmadd_ps(d, xhat, fq[n]);
                } else {
                    fs[n] = _mm256_add_ps(fs[n], v);
                    fq[n] = _mm256_fmadd_ps(v, v, fq[n]);
                }
            }
        for (int n = 0; n < NV; n++) {
            add_to_double(s + c0 + 8 * n, fs[n]);
            add_to_double(q + c0 + 8 * n, fq[n]);
        }
    }
}

/* work per group as the generic loops leave it: sums in [0, c), squares
 * (or dy * xhat) in [c, 2c). */
static void CT_AVX2 group_sums_avx2(const float *x, const float *dy, const float *mean, const float *inv,
                                    int64_t groups, int64_t rows, int64_t c, double *work)
{
#pragma omp parallel for schedule(static) if (groups * rows * c > PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        double *s = work + g * 2 * c, *q = s + c;
        const float *xg = x + g * rows * c, *dg = dy ? dy + g * rows * c : NULL;
        for (int64_t ch = 0; ch < 2 * c; ch++) s[ch] = 0;
        for (int64_t c0 = 0; c0 < c; c0 += 32) {
            switch ((c - c0) / 8 < 4 ? (c - c0) / 8 : 4) {
            case 1: sums_block(xg, dg, mean, inv, rows, c, c0, s, q, 1); break;
            case 2: sums_block(xg, dg, mean, inv, rows, c, c0, s, q, 2); break;
            case 3: sums_block(xg, dg, mean, inv, rows, c, c0, s, q, 3); break;
            default: sums_block(xg, dg, mean, inv, rows, c, c0, s, q, 4); break;
            }
        }
    }
}

static void CT_AVX2 bn_apply_avx2(const float *x, const float *mean, const float *a, const float *b, float *y,
                                  int64_t n, int64_t c)
{
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
    for (int64_t r = 0; r < n; r++)
        for (int64_t ch = 0; ch < c; ch += 8) {
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + r * c + ch), _mm256_loadu_ps(mean + ch));
            __m256 o = b ? _mm256_fmadd_ps(v, _mm256_loadu_ps(a + ch), _mm256_loadu_ps(b + ch))
                         : _mm256_mul_ps(v, _mm256_loadu_ps(a + ch));
            _mm256_storeu_ps(y + r * c + ch, o);
        }
}

static void CT_AVX2 bn_bwd_dx_avx2(const float *x, const float *dy, const float *mean, const float *k1,
                                   const float *k2, const float *k3, float *dx, int64_t n, int64_t c)
{
#pragma omp parallel for schedule(static) if (n * c > PAR_MIN)
    for (int64_t r = 0; r < n; r++)
        for (int64_t ch = 0; ch < c; ch += 8) {
            int64_t e = r * c + ch;
            __m256 xm = _mm256_sub_ps(_mm256_loadu_ps(x + e), _mm256_loadu_ps(mean + ch));
            __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(k1 + ch), _mm256_loadu_ps(dy + e),
                                       _mm256_fmadd_ps(_mm256_loadu_ps(k2 + ch), xm, _mm256_loadu_ps(k3 + ch)));
            _mm256_storeu_ps(dx + e, _mm256_add_ps(_mm256_loadu_ps(dx + e), t));
        }
}
#endif

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

/* The generic per-sample sums of x and x^2. */
static void moment_sums(const float *x, int64_t groups, int64_t rows, int64_t c, double *work)
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
}

void ct_op_bn_moments(const float *x, int64_t groups, int64_t rows, int64_t c, double *work)
{
#if defined(CT_AVX2)
    if (use_avx2(c)) group_sums_avx2(x, NULL, NULL, NULL, groups, rows, c, work);
    else
#endif
        moment_sums(x, groups, rows, c, work);
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
#if defined(CT_AVX2)
    if (use_avx2(c)) {
        bn_apply_avx2(x, mean, a, b, y, n, c);
        return;
    }
#endif
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
    if (use_avx2(c)) {
#if defined(CT_AVX2)
        group_sums_avx2(x, dy, mean, inv_std, groups, rows, c, work);
#endif
    } else
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
#if defined(CT_AVX2)
    if (use_avx2(c)) {
        bn_bwd_dx_avx2(x, dy, mean, k1, k2, k3, dx, n, c);
        return;
    }
#endif
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
