/* Convolution kernels, NHWC (Keras channels_last), float32, row-major.
 *
 * A 2-D convolution here is TF's cross-correlation. With the geometry g:
 *
 *   x (batch, h, w, c)   kernel (kh, kw, c, f)   bias (f)   z (batch, oh, ow, f)
 *   z[b,p,q,o] = bias[o] + sum_{i,j,k} x[b, p*sh - pt + i*dh, q*sw - pl + j*dw, k] * kernel[i,j,k,o]
 *
 * with x taken as zero outside the image. The Keras kernel layout is the
 * (kh*kw*c, f) matrix of an implicit GEMM whose rows are the receptive
 * field of one output pixel, so every implementation below reads it as is.
 *
 * Four implementations compute the same thing:
 *   CT_CONV_REF     direct loops with double accumulation: the test oracle.
 *   CT_CONV_GEMM    im2col into scratch + OpenBLAS sgemm (one call over the
 *                   batch); 1x1 stride-1 unpadded convolutions skip im2col.
 *                   Portable.
 *   CT_CONV_GEMM_BATCHED  the same with one single-threaded sgemm per image,
 *                   images spread over the OpenMP threads (backward-weights
 *                   stays one call: per-image calls would race on dkernel).
 *   CT_CONV_AVX512  direct AVX-512 kernels (implicit GEMM, no im2col):
 *                   register tiles of output pixels x filters, inputs with
 *                   column padding copied once per image into scratch;
 *                   stride-1 backward-data as a convolution of dz with the
 *                   flipped kernel. 3x3 stride-1 convolutions with >= 16
 *                   input and output channels (>= 32 with AVX2, where the
 *                   direct kernels win on 16) use Winograd F(2x2, 3x3)
 *                   instead (forward, hence stride-1 backward-data, and
 *                   backward-weights): 16 instead of 36 multiplies per 2x2
 *                   outputs; CT_CONV_WINOGRAD=0 turns it off. Results do
 *                   not depend on the number of threads. Chosen when the
 *                   CPU has avx512f (run time).
 *   CT_CONV_AVX2    the same kernels with AVX2 + FMA, 8 floats per
 *                   vector and register tiles sized for 16 registers
 *                   (both are instances of conv_simd.h).
 * CT_CONV_AUTO picks the fastest available one (ct_conv_impl_best):
 * AVX-512, else AVX2, else the batched sgemm, as far as the active
 * instruction set allows (isa.h: CT_ISA=generic|avx2|avx512); a request for
 * a SIMD path the CPU (or CT_ISA) does not allow falls back to the batched
 * sgemm.
 *
 * Depthwise convolutions (depth multiplier m) use the same geometry with
 * f = c * m: kernel (kh, kw, c, m), output channel k*m + j reads input
 * channel k only.
 *
 * All kernels are plain functions on raw pointers; they never allocate.
 * Work space comes from the caller: at least ct_op_conv2d_scratch(g)
 * floats, 64-byte aligned preferably. Gradients ACCUMULATE (+=). */
#ifndef CT_CONV_H
#define CT_CONV_H

#include <stdint.h>

typedef enum ct_conv_impl {
    CT_CONV_AUTO = 0,
    CT_CONV_REF,
    CT_CONV_GEMM,
    CT_CONV_GEMM_BATCHED,
    CT_CONV_AVX512,
    CT_CONV_AVX2,
    CT_CONV_IMPL_COUNT
} ct_conv_impl;

typedef struct ct_conv2d_geom {
    int64_t batch;
    int h, w, c;            /* input image */
    int oh, ow, f;          /* output image; f = c * m for depthwise */
    int kh, kw;             /* kernel window */
    int sh, sw, dh, dw;     /* strides, dilations (>= 1) */
    int pt, pl;             /* implicit zeros before row 0 / column 0 */
    ct_conv_impl impl;      /* CT_CONV_AUTO: the best available */
} ct_conv2d_geom;

/* One spatial axis, as TF computes it. `same`: out = ceil(in / s) and
 * *pad_before = max((out - 1) * s + (k - 1) * d + 1 - in, 0) / 2 (the odd
 * pixel goes after); valid: out = (in - (k - 1) * d - 1) / s + 1, pad 0.
 * Returns out, which is < 1 when the window does not fit. */
int ct_conv_out_len(int in, int k, int s, int d, int same, int *pad_before);

/* Conv2DTranspose output length (Keras conv_utils.deconv_output_length);
 * output_padding < 0 means None. The result is < 1 when nothing fits. */
int ct_deconv_out_len(int in, int k, int s, int d, int same, int output_padding);

/* The window of a convolution layer and the geometry it gives on an
 * (h, w, c) image with f output channels (batch 1, impl AUTO). oh or ow
 * is < 1 when the window does not fit. */
typedef struct ct_conv_window {
    int kh, kw, sh, sw, dh, dw;
    int same; /* padding 'same' (else 'valid') */
} ct_conv_window;
ct_conv2d_geom ct_conv2d_geom_make(const ct_conv_window *win, int h, int w, int c, int f);

/* Name ("ref", "gemm", "gemm_batched", "avx512", "avx2"), availability on this
 * CPU, and the implementation CT_CONV_AUTO resolves to. The environment
 * variable CT_CONV_IMPL=<name> overrides the choice (for benchmarks). */
const char *ct_conv_impl_name(ct_conv_impl impl);
int ct_conv_impl_available(ct_conv_impl impl);
ct_conv_impl ct_conv_impl_best(void);

/* Floats of work space any of the three conv2d kernels needs for g
 * (g->batch images). It is affine in the batch: fixed + batch * part, so
 * batch * ct_op_conv2d_scratch(g with batch 1) always suffices. */
int64_t ct_op_conv2d_scratch(const ct_conv2d_geom *g);

/* z = conv(x, kernel) + bias (bias may be NULL); with accumulate,
 * z += conv(x, kernel) and bias is ignored. */
void ct_op_conv2d_fwd(const ct_conv2d_geom *g, const float *x, const float *kernel, const float *bias,
                      float *z, int accumulate, float *scratch);
/* z = max(conv(x, kernel) + bias, 0): the ReLU applied as the AVX-512
 * kernels store z (a pass after the others). */
void ct_op_conv2d_fwd_relu(const ct_conv2d_geom *g, const float *x, const float *kernel, const float *bias,
                           float *z, float *scratch);
/* The backward of that ReLU fused with the bias gradient, one pass:
 * dz = dy * (y > 0) for y = relu(z), y, dy, dz (batch, rows, f); db (f),
 * when not NULL, += column sums of dz, summed per image into part (batch *
 * f doubles, caller's scratch) and then in image order. */
void ct_op_conv2d_relu_bwd(const float *y, const float *dy, float *dz, float *db, int64_t batch,
                           int64_t rows, int f, double *part);
/* dx (batch, h, w, c) += dL/dx given dz (batch, oh, ow, f). */
void ct_op_conv2d_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *kernel, float *dx,
                           float *scratch);
/* dkernel (kh, kw, c, f) += dL/dkernel given x and dz. */
void ct_op_conv2d_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dkernel,
                              float *scratch);

/* Both backward passes: dkernel += dL/dkernel and, when dx is not NULL,
 * dx += dL/dx; where Winograd serves both, image by image in one pass
 * (each image of dz read from memory once). */
void ct_op_conv2d_bwd(const ct_conv2d_geom *g, const float *x, const float *dz, const float *kernel, float *dx,
                      float *dkernel, float *scratch);

/* db (f) += column sums of dz (rows, f); rows = batch * oh * ow. Sums in
 * a fixed order (independent of the thread count), double accumulators. */
void ct_op_conv2d_bias_grad(const float *dz, float *db, int64_t rows, int f);

/* Depthwise: kernel (kh, kw, c, m), z (batch, oh, ow, c * m); g->f = c * m.
 * Direct loops, OpenMP over rows (fwd), images (bwd_data) or channel
 * blocks (bwd_weights); g->impl == CT_CONV_REF selects the oracle. No
 * scratch. */
void ct_op_depthwise_conv2d_fwd(const ct_conv2d_geom *g, const float *x, const float *kernel,
                                const float *bias, float *z);
void ct_op_depthwise_conv2d_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *kernel, float *dx);
void ct_op_depthwise_conv2d_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz,
                                        float *dkernel);

#endif
