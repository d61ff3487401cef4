/* Kernels of the non-convolution image layers: pooling, zero padding,
 * upsampling (ops/pool.c) and batch normalization (ops/norm.c).
 *
 * Images are NHWC: x (B, H, W, C) row-major float32, C fastest. Every
 * kernel is a plain function on raw pointers with OpenMP inside; results
 * never depend on the number of threads (reductions run in a fixed order).
 * Backward kernels ACCUMULATE into dx (+dL/dx), as the layers require.
 * Nothing here allocates. */
#ifndef CT_IMAGE_OPS_H
#define CT_IMAGE_OPS_H

#include <stdint.h>

/* ---- pooling (ops/pool.c) ----------------------------------------------
 * Geometry of a 2-D pool over one sample, TF's rules:
 *   valid: out = (in - k) / s + 1                     (needs in >= k)
 *   same:  out = ceil(in / s), pad_total = max((out - 1) * s + k - in, 0),
 *          pad_before = pad_total / 2 (the extra cell goes after). */
typedef struct ct_pool2d_geom {
    int64_t h, w, c;   /* input per sample */
    int64_t oh, ow;    /* output per sample */
    int kh, kw;        /* window */
    int sh, sw;        /* strides */
    int pad_top, pad_left;
} ct_pool2d_geom;

/* Output size and leading pad of one axis (above). Returns 0 when the
 * window does not fit (valid with in < k) or an argument is < 1. */
int ct_pool_out_size(int64_t in, int k, int s, int same, int64_t *out, int *pad_before);

/* Fill g from the input size, window, strides and padding mode. Returns 0
 * when an axis has no output (see ct_pool_out_size). */
int ct_pool2d_geom_make(ct_pool2d_geom *g, int64_t h, int64_t w, int64_t c, int kh, int kw, int sh,
                        int sw, int same);

/* Max pool. x (B, h, w, c) -> y (B, oh, ow, c). Padded cells never win
 * (TF pads with -inf); ties go to the first maximum in row-major window
 * order. The backward pass finds the winners again from x (nothing is
 * kept between the passes) and adds dy (B, oh, ow, c) to their cells of
 * dx (B, h, w, c). */
void ct_op_maxpool2d_fwd(const ct_pool2d_geom *g, int64_t batch, const float *x, float *y);
void ct_op_maxpool2d_bwd(const ct_pool2d_geom *g, int64_t batch, const float *x, const float *dy, float *dx);

/* Average pool: each output is the mean of the window's VALID cells (with
 * 'same' padding the border windows divide by fewer cells, as TF does). */
void ct_op_avgpool2d_fwd(const ct_pool2d_geom *g, int64_t batch, const float *x, float *y);
void ct_op_avgpool2d_bwd(const ct_pool2d_geom *g, int64_t batch, const float *dy, float *dx);

/* Global pools over the hw = h * w cells of each sample: x (B, hw, c) ->
 * y (B, c). The max's backward pass is tf.reduce_max's: dy is shared
 * equally by every cell equal to the maximum (y is the forward output). */
void ct_op_global_avgpool_fwd(int64_t batch, int64_t hw, int64_t c, const float *x, float *y);
void ct_op_global_avgpool_bwd(int64_t batch, int64_t hw, int64_t c, const float *dy, float *dx);
void ct_op_global_maxpool_fwd(int64_t batch, int64_t hw, int64_t c, const float *x, float *y);
void ct_op_global_maxpool_bwd(int64_t batch, int64_t hw, int64_t c, const float *x, const float *y,
                              const float *dy, float *dx);

/* ---- padding and resampling (ops/pool.c) --------------------------------
 * Zero padding: x (B, h, w, c) -> y (B, top + h + bottom, left + w + right, c).
 * The backward pass crops dy back and adds it to dx. */
void ct_op_zero_pad2d_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int top, int bottom, int left,
                          int right, const float *x, float *y);
void ct_op_zero_pad2d_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int top, int bottom, int left,
                          int right, const float *dy, float *dx);

/* Upsampling by integer factors: x (B, h, w, c) -> y (B, h * fh, w * fw, c).
 * Nearest repeats each cell fh x fw times. Bilinear follows
 * tf.image.resize(method=bilinear), i.e. ResizeBilinear with
 * half_pixel_centers=True: src = (dst + 0.5) * (in / out) - 0.5, the lower
 * neighbour clamped at 0 and the upper at in - 1. */
void ct_op_upsample2d_nearest_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                  const float *x, float *y);
void ct_op_upsample2d_nearest_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                  const float *dy, float *dx);
void ct_op_upsample2d_bilinear_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                   const float *x, float *y);
void ct_op_upsample2d_bilinear_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                   const float *dy, float *dx);

/* ---- batch normalization (ops/norm.c) -----------------------------------
 * Channels are the last axis; the statistics reduce over the other axes of
 * the batch, viewed as `groups` blocks of `rows` rows of c values (a layer
 * passes groups = batch, rows = cells per sample). `work` holds
 * groups * 2 * c doubles: one partial sum per block, reduced in block
 * order so the result does not depend on threads. */

/* Per-channel mean and biased variance of x (groups * rows, c). On return
 * work[0 .. c) is the mean and work[c .. 2c) the variance. */
void ct_op_bn_moments(const float *x, int64_t groups, int64_t rows, int64_t c, double *work);

/* y (n, c) = (x - mean) * a + b per channel; b may be NULL (zero). */
void ct_op_bn_apply(const float *x, const float *mean, const float *a, const float *b, float *y, int64_t n,
                    int64_t c);

/* The sums the backward pass needs, with xhat = (x - mean) * inv_std: on
 * return work[0 .. c) = sum dy and work[c .. 2c) = sum dy * xhat. */
void ct_op_bn_bwd_sums(const float *x, const float *dy, const float *mean, const float *inv_std,
                       int64_t groups, int64_t rows, int64_t c, double *work);

/* dx (n, c) += k1 * dy + k2 * (x - mean) + k3 per channel. */
void ct_op_bn_bwd_dx(const float *x, const float *dy, const float *mean, const float *k1, const float *k2,
                     const float *k3, float *dx, int64_t n, int64_t c);

/* A layer followed by a per-channel affine y = z * scale + shift (a
 * BatchNormalization in inference) as one layer: kernel (fan, c) row-major
 * with the output channel last (Dense (in, units); Conv2D (kh, kw, in,
 * filters) as fan = kh * kw * in), k_out = kernel * scale per column,
 * b_out = bias * scale + shift (bias NULL: zeros). */
void ct_op_fold_affine(float *k_out, float *b_out, const float *kernel, const float *bias, int64_t fan, int64_t c,
                       const float *scale, const float *shift);

#endif
