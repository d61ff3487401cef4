/* Histogram kernels (see hist.h). The features are split among the
 * threads in contiguous blocks, so one thread owns each histogram entry:
 * no per-thread copies, no reduction, and the result is the same for any
 * thread count. Rows stay the outer loop so a row's gradient is loaded
 * once per thread and its bins are read from one cache line. */
#include "hist.h"

#include <emmintrin.h>
#include <omp.h>
#include <string.h>

/* Rows below this go to one thread: the fork costs more than it saves. */
#define HIST_PARALLEL_MIN 8192
/* Rows ahead whose bins and gradients are prefetched (a row's 50-odd
 * updates take about as long as a miss to memory). */
#define PREFETCH 12

/* Two lanes: one 128-bit load, add and store per (row, feature) (SSE2,
 * part of x86-64), instead of two 64-bit read-modify-writes. */
static void build_block(const uint8_t *restrict bins, int64_t stride, int f0, int f1, const int32_t *restrict rows,
                        int64_t n, const int64_t *restrict gh, int W, int64_t *restrict hist)
{
    if (W == 2) {
        __m128i *base = (__m128i *)hist + (int64_t)f0 * CT_HIST_BINS;
        const __m128i *v2 = (const __m128i *)gh;
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rows ? rows[i] : i;
            if (rows && i + PREFETCH < n) { /* a node's rows are scattered: fetch ahead */
                int64_t q = rows[i + PREFETCH];
                __builtin_prefetch(bins + q * stride + f0);
                __builtin_prefetch(v2 + q);
            }
            const uint8_t *b = bins + r * stride;
            __m128i v = _mm_load_si128(v2 + r);
            __m128i *e = base;
            int f = f0;
            for (; f + 4 <= f1; f += 4, e += 4 * CT_HIST_BINS) {
                __m128i *s0 = e + b[f], *s1 = e + CT_HIST_BINS + b[f + 1];
                __m128i *s2 = e + 2 * CT_HIST_BINS + b[f + 2], *s3 = e + 3 * CT_HIST_BINS + b[f + 3];
                __m128i a0 = _mm_load_si128(s0), a1 = _mm_load_si128(s1), a2 = _mm_load_si128(s2), a3 = _mm_load_si128(s3);
                _mm_store_si128(s0, _mm_add_epi64(a0, v));
                _mm_store_si128(s1, _mm_add_epi64(a1, v));
                _mm_store_si128(s2, _mm_add_epi64(a2, v));
                _mm_store_si128(s3, _mm_add_epi64(a3, v));
            }
            for (; f < f1; f++, e += CT_HIST_BINS) {
                __m128i *s0 = e + b[f];
                _mm_store_si128(s0, _mm_add_epi64(_mm_load_si128(s0), v));
            }
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rows ? rows[i] : i;
            if (rows && i + PREFETCH < n) {
                int64_t q = rows[i + PREFETCH];
                __builtin_prefetch(bins + q * stride + f0);
                __builtin_prefetch(gh + q);
            }
            const uint8_t *b = bins + r * stride;
            int64_t g = gh[r];
            int64_t *e = hist + (int64_t)f0 * CT_HIST_BINS;
            for (int f = f0; f < f1; f++, e += CT_HIST_BINS) e[b[f]] += g;
        }
    }
}

void ct_op_hist_build(const uint8_t *bins, int64_t stride, int n_features, const int32_t *rows, int64_t n,
                      const int64_t *gh, int W, int64_t *hist)
{
    int nt = n < HIST_PARALLEL_MIN ? 1 : omp_get_max_threads();
    if (nt > n_features) nt = n_features;
    if (nt <= 1) {
        build_block(bins, stride, 0, n_features, rows, n, gh, W, hist);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        int f0 = (int)((int64_t)n_features * t / k), f1 = (int)((int64_t)n_features * (t + 1) / k);
        build_block(bins, stride, f0, f1, rows, n, gh, W, hist);
    }
}

void ct_op_hist_sub(int64_t *dst, const int64_t *a, const int64_t *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = a[i] - b[i];
}

int64_t ct_op_hist_partition(const uint8_t *bins, int64_t stride, int f, const uint8_t *left, int32_t *rows,
                             int64_t n, int32_t *tmp)
{
    int64_t nl = 0, nr = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t r = rows[i];
        if (i + 4 * PREFETCH < n) __builtin_prefetch(bins + (int64_t)rows[i + 4 * PREFETCH] * stride + f);
        if (left[bins[(int64_t)r * stride + f]]) rows[nl++] = r;
        else tmp[nr++] = r;
    }
    memcpy(rows + nl, tmp, (size_t)nr * sizeof *rows);
    return nl;
}
