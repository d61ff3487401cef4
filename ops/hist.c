/* Histogram kernels (see hist.h). The features are split among the
 * threads in contiguous blocks, so one thread owns each histogram entry:
 * no per-thread copies, no reduction, and the result is the same for any
 * thread count. Rows stay the outer loop so a row's gradient is loaded
 * once per thread and its bins are read from one cache line. */
#include "hist.h"

#include <omp.h>
#include <string.h>

/* Rows below this go to one thread: the fork costs more than it saves. */
#define HIST_PARALLEL_MIN 8192

static void build_block(const uint8_t *bins, int64_t stride, int f0, int f1, const int32_t *rows, int64_t n,
                        const int64_t *gc, const int64_t *h, int64_t *hist)
{
    if (h) {
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rows ? rows[i] : i;
            const uint8_t *b = bins + r * stride;
            int64_t g = gc[r], hh = h[r];
            int64_t *e = hist + (int64_t)f0 * CT_HIST_BINS * 2;
            for (int f = f0; f < f1; f++, e += CT_HIST_BINS * 2) {
                int64_t *slot = e + 2 * b[f];
                slot[0] += g;
                slot[1] += hh;
            }
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rows ? rows[i] : i;
            const uint8_t *b = bins + r * stride;
            int64_t g = gc[r];
            int64_t *e = hist + (int64_t)f0 * CT_HIST_BINS;
            for (int f = f0; f < f1; f++, e += CT_HIST_BINS) e[b[f]] += g;
        }
    }
}

void ct_op_hist_build(const uint8_t *bins, int64_t stride, int n_features, const int32_t *rows, int64_t n,
                      const int64_t *gc, const int64_t *h, int64_t *hist)
{
    int nt = n < HIST_PARALLEL_MIN ? 1 : omp_get_max_threads();
    if (nt > n_features) nt = n_features;
    if (nt <= 1) {
        build_block(bins, stride, 0, n_features, rows, n, gc, h, hist);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        int f0 = (int)((int64_t)n_features * t / k), f1 = (int)((int64_t)n_features * (t + 1) / k);
        build_block(bins, stride, f0, f1, rows, n, gc, h, hist);
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
        if (left[bins[(int64_t)r * stride + f]]) rows[nl++] = r;
        else tmp[nr++] = r;
    }
    memcpy(rows + nl, tmp, (size_t)nr * sizeof *rows);
    return nl;
}
