/* Kernels: plain functions on raw pointers, OpenMP inside, no knowledge of
 * layers, graphs or MPI. Shapes are given in the comment of each kernel;
 * all arrays are row-major float32. */
#ifndef CT_OPS_H
#define CT_OPS_H

#include <stdint.h>

#include "activation.h"

/* 1 when the backward of `a` needs only y = act(z), so y may overwrite z. */
int ct_activation_in_place(ct_activation a);

/* y = act(z), z and y (rows, cols); softmax is over each row. y may equal z. */
void ct_op_activation_fwd(ct_activation a, const float *z, float *y, int64_t rows, int64_t cols);
/* dz = dy * act'(z) given z and y = act(z), all (rows, cols). dz may equal dy. */
void ct_op_activation_bwd(ct_activation a, const float *z, const float *y, const float *dy, float *dz,
                          int64_t rows, int64_t cols);

/* dx += dy * act'(z) for y = act(z), all (rows, cols); softmax over rows. */
void ct_op_activation_bwd_acc(ct_activation a, const float *z, const float *y, const float *dy, float *dx,
                              int64_t rows, int64_t cols);

/* C (M,N) = alpha * op(A) op(B) + beta * C, row-major; ta/tb transpose. */
void ct_op_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                const float *B, float beta, float *C);

/* out (rows, cols) += bias (cols) broadcast over rows. */
void ct_op_add_bias(float *out, const float *bias, int64_t rows, int64_t cols);
/* db (cols) += column sums of d (rows, cols). */
void ct_op_bias_grad(const float *d, float *db, int64_t rows, int64_t cols);

/* y[i] += x[i]; y[i] = x[i] * s; fill; */
void ct_op_axpy(float *y, const float *x, float a, int64_t n);
void ct_op_scale(float *y, const float *x, float s, int64_t n);
void ct_op_fill(float *y, float v, int64_t n);

#endif
