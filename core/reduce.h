/* Sums whose bits do not depend on the thread count.
 *
 * An OpenMP reduction(+) adds each thread's partial sum in an order that
 * depends on how many threads there are, so the loss, the metrics (which
 * feed early stopping and plateau decisions) and the clipnorm norm came
 * out a few ulps apart with 1, 2 or 3 threads. Here the items are cut into
 * at most CT_REDUCE_BLOCKS blocks whose size depends on n alone; blocks
 * are summed (in any thread, each in item order) into part[], and the
 * block sums added in block order:
 *
 *     int64_t bs = ct_reduce_block(n, 64), nb = ct_reduce_nblocks(n, bs);
 *     double part[CT_REDUCE_BLOCKS];
 *     #pragma omp parallel for schedule(static)
 *     for (int64_t b = 0; b < nb; b++) { ... part[b] = block sum ...; }
 *     double total = ct_reduce_sum(part, nb);
 */
#ifndef CT_REDUCE_H
#define CT_REDUCE_H

#include <stdint.h>

#define CT_REDUCE_BLOCKS 256

/* Items per block: n / CT_REDUCE_BLOCKS rounded up, at least min_block. */
static inline int64_t ct_reduce_block(int64_t n, int64_t min_block)
{
    int64_t b = (n + CT_REDUCE_BLOCKS - 1) / CT_REDUCE_BLOCKS;
    return b < min_block ? min_block : (b < 1 ? 1 : b);
}

static inline int64_t ct_reduce_nblocks(int64_t n, int64_t block) { return n > 0 ? (n + block - 1) / block : 0; }

static inline double ct_reduce_sum(const double *part, int64_t nb)
{
    double s = 0;
    for (int64_t b = 0; b < nb; b++) s += part[b];
    return s;
}

#endif
