/* Histogram kernels of the boosted trees (core/trees.c).
 *
 * Samples are binned to one byte per feature (row-major: bins (rows,
 * stride), feature f of row r at bins[r * stride + f]; bin 255 holds the
 * missing values). A histogram holds, per feature and bin, W int64 lanes:
 * lane 0 the sum of the rows' packed gradient-and-count values, lane 1
 * (when W = 2) the sum of their quantised hessians. Integer sums are exact
 * and associative, so a histogram does not depend on the order of its
 * rows, on how they are split among threads or ranks, or on whether it
 * was built or obtained by subtraction: that is what makes 1, 2 and 4
 * ranks grow the same trees bit for bit. */
#ifndef CT_OPS_HIST_H
#define CT_OPS_HIST_H

#include <stdint.h>

#define CT_HIST_BINS 256
#define CT_MISSING_BIN 255

/* hist (n_features, 256, W) += for each row r of rows[0..n) (or of
 * r = 0..n-1 when rows is NULL) its W lanes gh[r * W .. r * W + W) (W = 1
 * or 2: the packed gradient and count, then the hessian) at bin
 * bins[r * stride + f], for the features f in [0, n_features). Threads
 * split the features (OpenMP); each bin is summed by one thread, in row
 * order. hist and gh must be 16-byte aligned (malloc's are). */
void ct_op_hist_build(const uint8_t *bins, int64_t stride, int n_features, const int32_t *rows, int64_t n,
                      const int64_t *gh, int W, int64_t *hist);

/* dst[i] = a[i] - b[i] for n lanes (the sibling of a built child). */
void ct_op_hist_sub(int64_t *dst, const int64_t *a, const int64_t *b, int64_t n);

/* Stable in-place partition of rows[0..n) by go_left(bin of feature f):
 * left rows first, in their order, then the right ones, in theirs; uses
 * tmp (n entries). left[b] (256 bytes) says where bin b goes. Returns the
 * number of left rows. */
int64_t ct_op_hist_partition(const uint8_t *bins, int64_t stride, int f, const uint8_t *left, int32_t *rows,
                             int64_t n, int32_t *tmp);

#endif
