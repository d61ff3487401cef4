/* Convolution kernels: the reference loops, im2col + sgemm, and direct
 * AVX-512 kernels; depthwise convolution. See conv.h for the geometry.
 *
 * The AVX-512 path is an implicit GEMM with the Keras kernel as the B
 * matrix (rows (i, j, c), columns f). A "segment" is a run of kernel rows
 * that is also contiguous in the input: with dilation 1 along the width,
 * one kernel row i covers kw * c consecutive floats of an input row, so
 * the reduction runs over kh segments of kw * c; otherwise over kh * kw
 * segments of c. Output pixels of one row sit a fixed stride (sw * c)
 * apart in the input, so a register tile of MR pixels x NB*16 filters
 * reads its A values straight from the image; no im2col buffer exists.
 * Zero padding along the width is made real by copying each image into
 * scratch with zero columns; padding rows are skipped instead.
 *
 *   forward      z tile (MR pixels, NB*16 filters) += x rows . kernel
 *   bwd-data     stride 1: a forward convolution of dz with the kernel
 *                flipped and transposed (gather: each dx value written once);
 *                otherwise dcol tile (MR pixels, NB*16 segment floats) =
 *                dz . kernel^T added into the padded dx rows (scatter, one
 *                image per thread)
 *   bwd-weights  dkernel tile (MR segment rows, NB*16 filters) += x^T . dz,
 *                streamed over every pixel of an image with the tile held in
 *                registers; the tiles are split over the threads, so no
 *                reduction is needed and every sum runs in a fixed order
 *                (results do not depend on the thread count).
 *
 * 3x3 stride-1 convolutions with enough channels take Winograd F(2x2, 3x3)
 * (see its section): per 2x2 output tile, transforms around 16 GEMMs that
 * run on the forward and backward-weights register kernels. */
#include "conv.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---- geometry ----------------------------------------------------------- */

int ct_conv_out_len(int in, int k, int s, int d, int same, int *pad_before)
{
    int ek = (k - 1) * d + 1;
    if (same) {
        int out = (in + s - 1) / s;
        int total = (out - 1) * s + ek - in;
        if (pad_before) *pad_before = total > 0 ? total / 2 : 0;
        return out;
    }
    if (pad_before) *pad_before = 0;
    return in < ek ? 0 : (in - ek) / s + 1;
}

int ct_deconv_out_len(int in, int k, int s, int d, int same, int output_padding)
{
    int ek = (k - 1) * d + 1;
    if (output_padding < 0) return same ? in * s : in * s + (ek - s > 0 ? ek - s : 0);
    int pad = same ? ek / 2 : 0;
    return (in - 1) * s + ek - 2 * pad + output_padding;
}

ct_conv2d_geom ct_conv2d_geom_make(const ct_conv_window *win, int h, int w, int c, int f)
{
    ct_conv2d_geom g = {.batch = 1, .h = h, .w = w, .c = c, .f = f, .kh = win->kh, .kw = win->kw,
                        .sh = win->sh, .sw = win->sw, .dh = win->dh, .dw = win->dw};
    g.oh = ct_conv_out_len(h, win->kh, win->sh, win->dh, win->same, &g.pt);
    g.ow = ct_conv_out_len(w, win->kw, win->sw, win->dw, win->same, &g.pl);
    return g;
}

static const char *const impl_names[CT_CONV_IMPL_COUNT] = {"auto", "ref", "gemm", "gemm_batched", "avx512"};

const char *ct_conv_impl_name(ct_conv_impl impl)
{
    return impl >= 0 && impl < CT_CONV_IMPL_COUNT ? impl_names[impl] : "?";
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_HAVE_AVX512 1
#else
#define CT_HAVE_AVX512 0
#endif

static int cpu_has_avx512(void)
{
#if CT_HAVE_AVX512
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached;
#else
    return 0;
#endif
}

int ct_conv_impl_available(ct_conv_impl impl)
{
    if (impl == CT_CONV_AVX512) return cpu_has_avx512();
    return impl > CT_CONV_AUTO && impl < CT_CONV_IMPL_COUNT;
}

ct_conv_impl ct_conv_impl_best(void)
{
    static ct_conv_impl cached = CT_CONV_AUTO;
    if (cached == CT_CONV_AUTO) {
        /* Measured (bench_conv): per-image sgemms beat one big sgemm on
         * these small convolutions, more so with two threads. */
        ct_conv_impl best = cpu_has_avx512() ? CT_CONV_AVX512 : CT_CONV_GEMM_BATCHED;
        const char *env = getenv("CT_CONV_IMPL");
        for (int i = 1; env && i < CT_CONV_IMPL_COUNT; i++)
            if (strcmp(env, impl_names[i]) == 0 && ct_conv_impl_available((ct_conv_impl)i)) best = (ct_conv_impl)i;
        cached = best;
    }
    return cached;
}

static ct_conv_impl resolve(const ct_conv2d_geom *g)
{
    ct_conv_impl m = g->impl == CT_CONV_AUTO ? ct_conv_impl_best() : g->impl;
    return ct_conv_impl_available(m) ? m : CT_CONV_GEMM_BATCHED;
}

/* Derived sizes shared by every path. */
typedef struct plan {
    int64_t K;          /* kh * kw * c: rows of the kernel matrix */
    int64_t in_img;     /* h * w * c */
    int64_t out_img;    /* oh * ow * f */
    int merged;         /* dw == 1: one segment per kernel row */
    int nseg, L;        /* segments and their length (floats) */
    int colpad;         /* width padding present: images are copied */
    int wp;             /* padded width (w when !colpad) */
    int64_t pimg;       /* floats of one padded image, rounded to 16 */
    int pointwise;      /* 1x1, stride 1, no padding: x is the im2col matrix */
} plan;

static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Flags of the forward paths: accumulate into z; apply ReLU at the store. */
enum { FWD_ACC = 1, FWD_RELU = 2 };

static plan make_plan(const ct_conv2d_geom *g)
{
    plan p;
    p.K = (int64_t)g->kh * g->kw * g->c;
    p.in_img = (int64_t)g->h * g->w * g->c;
    p.out_img = (int64_t)g->oh * g->ow * g->f;
    p.merged = g->dw == 1;
    p.nseg = p.merged ? g->kh : g->kh * g->kw;
    p.L = p.merged ? g->kw * g->c : g->c;
    int pr = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1 - g->w - g->pl;
    if (pr < 0) pr = 0;
    p.colpad = g->pl > 0 || pr > 0;
    p.wp = g->w + (p.colpad ? g->pl + pr : 0);
    p.pimg = p.colpad ? round16((int64_t)g->h * p.wp * g->c) : 0;
    p.pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
                  g->oh == g->h && g->ow == g->w;
    return p;
}

/* With stride 1, dx is a convolution of dz with the kernel flipped in
 * space and transposed in channels, kernel'[i,j,f,c] = kernel[kh-1-i,
 * kw-1-j, c, f], padded by (k - 1) * d - pad: the gather form of
 * backward-data, which writes every dx value once. Returns 0 when that
 * does not apply. */
static int gather_geom(const ct_conv2d_geom *g, ct_conv2d_geom *g2)
{
    int ekh = (g->kh - 1) * g->dh, ekw = (g->kw - 1) * g->dw;
    if (g->sh != 1 || g->sw != 1 || g->pt > ekh || g->pl > ekw) return 0;
    /* Gather vectorises over c, scatter over its segments (kw * c with
     * dilation 1) but pays a read-modify-write per window: with few
     * channels (c = 3: 3 of 16 lanes) scatter wins. */
    int seg = g->dw == 1 ? g->kw * g->c : g->c;
    double lanes_gather = g->c / (16.0 * ((g->c + 15) / 16)), lanes_scatter = seg / (16.0 * ((seg + 15) / 16));
    if (lanes_gather < 0.8 * lanes_scatter) return 0;
    *g2 = (ct_conv2d_geom){.batch = g->batch, .h = g->oh, .w = g->ow, .c = g->f, .oh = g->h, .ow = g->w,
                           .f = g->c, .kh = g->kh, .kw = g->kw, .sh = 1, .sw = 1, .dh = g->dh, .dw = g->dw,
                           .pt = ekh - g->pt, .pl = ekw - g->pl, .impl = g->impl};
    return 1;
}

/* kt (kh, kw, f, c) = the kernel flipped in space and transposed in
 * channels, the kernel of the gather form (a worksharing loop: call it
 * inside a parallel region). */
static void flip_kernel(const ct_conv2d_geom *g, const float *k, float *kt)
{
    const int kh = g->kh, kw = g->kw;
    const int64_t F = g->f, C = g->c;
#pragma omp for collapse(2) schedule(static)
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++)
            for (int64_t o = 0; o < F; o++)
                for (int64_t c = 0; c < C; c++)
                    kt[((int64_t)(i * kw + j) * F + o) * C + c] =
                        k[((int64_t)((kh - 1 - i) * kw + (kw - 1 - j)) * C + c) * F + o];
}

/* ---- reference ---------------------------------------------------------- */

static void ref_fwd(const ct_conv2d_geom *g, const float *x, const float *k, const float *bias, float *z, int acc)
{
    const int C = g->c, F = g->f;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++)
            for (int q = 0; q < g->ow; q++)
                for (int o = 0; o < F; o++) {
                    float *zo = z + ((b * g->oh + p) * g->ow + q) * F + o;
                    double s = acc ? *zo : bias ? bias[o] : 0.0;
                    for (int i = 0; i < g->kh; i++) {
                        int ih = p * g->sh - g->pt + i * g->dh;
                        if (ih < 0 || ih >= g->h) continue;
                        for (int j = 0; j < g->kw; j++) {
                            int iw = q * g->sw - g->pl + j * g->dw;
                            if (iw < 0 || iw >= g->w) continue;
                            const float *xp = x + ((b * g->h + ih) * g->w + iw) * C;
                            const float *kp = k + ((int64_t)(i * g->kw + j) * C) * F + o;
                            for (int c = 0; c < C; c++) s += (double)xp[c] * kp[(int64_t)c * F];
                        }
                    }
                    *zo = (float)s;
                }
}

static void ref_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *k, float *dx)
{
    const int C = g->c, F = g->f;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++)
            for (int q = 0; q < g->ow; q++) {
                const float *dzp = dz + ((b * g->oh + p) * g->ow + q) * F;
                for (int i = 0; i < g->kh; i++) {
                    int ih = p * g->sh - g->pt + i * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    for (int j = 0; j < g->kw; j++) {
                        int iw = q * g->sw - g->pl + j * g->dw;
                        if (iw < 0 || iw >= g->w) continue;
                        float *dxp = dx + ((b * g->h + ih) * g->w + iw) * C;
                        const float *kp = k + ((int64_t)(i * g->kw + j) * C) * F;
                        for (int c = 0; c < C; c++) {
                            double s = 0;
                            for (int o = 0; o < F; o++) s += (double)dzp[o] * kp[(int64_t)c * F + o];
                            dxp[c] += (float)s;
                        }
                    }
                }
            }
}

static void ref_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk)
{
    const int C = g->c, F = g->f;
#pragma omp parallel for collapse(3) schedule(static)
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++)
            for (int c = 0; c < C; c++)
                for (int o = 0; o < F; o++) {
                    double s = 0;
                    for (int64_t b = 0; b < g->batch; b++)
                        for (int p = 0; p < g->oh; p++) {
                            int ih = p * g->sh - g->pt + i * g->dh;
                            if (ih < 0 || ih >= g->h) continue;
                            for (int q = 0; q < g->ow; q++) {
                                int iw = q * g->sw - g->pl + j * g->dw;
                                if (iw < 0 || iw >= g->w) continue;
                                s += (double)x[((b * g->h + ih) * g->w + iw) * C + c] *
                                     dz[((b * g->oh + p) * g->ow + q) * F + o];
                            }
                        }
                    dk[((int64_t)(i * g->kw + j) * C + c) * F + o] += (float)s;
                }
}

void ct_op_conv2d_bias_grad(const float *dz, float *db, int64_t rows, int f)
{
    /* Column blocks of 16 over the threads; within a block, rows in order. */
    int nblk = (f + 15) / 16;
#pragma omp parallel for schedule(static) if (rows * f > 65536)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * 16, c1 = c0 + 16 < f ? c0 + 16 : f;
        double tot[16] = {0};
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            float part[16] = {0};
            int64_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
            for (int64_t r = r0; r < r1; r++) {
                const float *d = dz + r * f + c0;
#pragma omp simd
                for (int c = 0; c < c1 - c0; c++) part[c] += d[c];
            }
            for (int c = 0; c < c1 - c0; c++) tot[c] += part[c];
        }
        for (int c = 0; c < c1 - c0; c++) db[c0 + c] += (float)tot[c];
    }
}

/* ---- im2col + sgemm ----------------------------------------------------- */

/* cols (ow, K) for output row p of one image x (h, w, c). */
static void im2col_row(const ct_conv2d_geom *g, const float *x, int p, float *cols, int64_t K)
{
    const int C = g->c;
    for (int q = 0; q < g->ow; q++) {
        float *dst = cols + (int64_t)q * K;
        for (int i = 0; i < g->kh; i++) {
            int ih = p * g->sh - g->pt + i * g->dh;
            for (int j = 0; j < g->kw; j++, dst += C) {
                int iw = q * g->sw - g->pl + j * g->dw;
                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) memset(dst, 0, sizeof(float) * (size_t)C);
                else memcpy(dst, x + ((int64_t)ih * g->w + iw) * C, sizeof(float) * (size_t)C);
            }
        }
    }
}

/* dx (h, w, c) of one image += col2im(dcols (oh*ow, K)). */
static void col2im_image(const ct_conv2d_geom *g, const float *dcols, float *dx, int64_t K)
{
    const int C = g->c;
    for (int p = 0; p < g->oh; p++)
        for (int q = 0; q < g->ow; q++) {
            const float *src = dcols + ((int64_t)p * g->ow + q) * K;
            for (int i = 0; i < g->kh; i++) {
                int ih = p * g->sh - g->pt + i * g->dh;
                for (int j = 0; j < g->kw; j++, src += C) {
                    int iw = q * g->sw - g->pl + j * g->dw;
                    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                    float *d = dx + ((int64_t)ih * g->w + iw) * C;
#pragma omp simd
                    for (int c = 0; c < C; c++) d[c] += src[c];
                }
            }
        }
}

static void im2col_batch(const ct_conv2d_geom *g, const plan *pl, const float *x, float *cols)
{
    int64_t rowsz = (int64_t)g->ow * pl->K, img = g->oh * rowsz;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++) im2col_row(g, x + b * pl->in_img, p, cols + b * img + p * rowsz, pl->K);
}

static void gemm_fwd(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k, const float *bias,
                     float *z, int acc, float *cols)
{
    int64_t M = g->batch * g->oh * g->ow;
    if (!pl->pointwise) im2col_batch(g, pl, x, cols);
    ct_op_gemm(0, 0, M, g->f, pl->K, 1.0f, pl->pointwise ? x : cols, k, acc ? 1.0f : 0.0f, z);
    if (!acc && bias) ct_op_add_bias(z, bias, M, g->f);
}

static void gemm_bwd_data(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k, float *dx,
                          float *dcols)
{
    int64_t M = g->batch * g->oh * g->ow, img = (int64_t)g->oh * g->ow * pl->K;
    if (pl->pointwise) {
        ct_op_gemm(0, 1, M, g->c, g->f, 1.0f, dz, k, 1.0f, dx);
        return;
    }
    ct_op_gemm(0, 1, M, pl->K, g->f, 1.0f, dz, k, 0.0f, dcols);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++) col2im_image(g, dcols + b * img, dx + b * pl->in_img, pl->K);
}

static void gemm_bwd_weights(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz, float *dk,
                             float *cols)
{
    int64_t M = g->batch * g->oh * g->ow;
    if (!pl->pointwise) im2col_batch(g, pl, x, cols);
    ct_op_gemm(1, 0, pl->K, g->f, M, 1.0f, pl->pointwise ? x : cols, dz, 1.0f, dk);
}

/* One single-threaded sgemm per image inside the parallel loop (OpenBLAS
 * runs on the calling thread there). */
static void batched_fwd(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k,
                        const float *bias, float *z, int acc, float *cols)
{
    int64_t rows = (int64_t)g->oh * g->ow, img = rows * pl->K;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++) {
        const float *a = x + b * pl->in_img;
        if (!pl->pointwise) {
            float *c = cols + b * img;
            for (int p = 0; p < g->oh; p++) im2col_row(g, a, p, c + (int64_t)p * g->ow * pl->K, pl->K);
            a = c;
        }
        float *zb = z + b * pl->out_img;
        ct_op_gemm(0, 0, rows, g->f, pl->K, 1.0f, a, k, acc ? 1.0f : 0.0f, zb);
        if (!acc && bias)
            for (int64_t r = 0; r < rows; r++)
                for (int o = 0; o < g->f; o++) zb[r * g->f + o] += bias[o];
    }
}

static void batched_bwd_data(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k, float *dx,
                             float *dcols)
{
    int64_t rows = (int64_t)g->oh * g->ow, img = rows * pl->K;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++) {
        if (pl->pointwise) {
            ct_op_gemm(0, 1, rows, g->c, g->f, 1.0f, dz + b * pl->out_img, k, 1.0f, dx + b * pl->in_img);
        } else {
            ct_op_gemm(0, 1, rows, pl->K, g->f, 1.0f, dz + b * pl->out_img, k, 0.0f, dcols + b * img);
            col2im_image(g, dcols + b * img, dx + b * pl->in_img, pl->K);
        }
    }
}

/* ---- AVX-512 direct kernels ---------------------------------------------- */

#if CT_HAVE_AVX512
#include <immintrin.h>

#define CT_AVX512 __attribute__((target("avx512f")))
#define CT_INLINE static inline __attribute__((always_inline))
#define MAX_SEG 64 /* segments per kernel call; larger kernels take several calls */

/* Largest pixel (or row) tile for NB vectors of 16: MR * NB <= 24
 * accumulators leave room for the NB B-vectors and a broadcast. */
static const int mr_max[5] = {0, 24, 12, 8, 6};

static __mmask16 tail_mask(int n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* relu_bwd_image, four vectors of columns at a time. */
static void CT_AVX512 relu_bwd_image_avx(const float *y, const float *dy, float *dz, double *pb, int64_t rows, int f)
{
    for (int c = 0; c < f; c++) pb[c] = 0;
    for (int c0 = 0; c0 < f; c0 += 64) {
        int nv = (f - c0 + 15) / 16 < 4 ? (f - c0 + 15) / 16 : 4;
        __mmask16 m[4];
        for (int n = 0; n < nv; n++) m[n] = tail_mask(f - c0 - 16 * n);
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            int64_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
            __m512 sum[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t r = r0; r < r1; r++)
                for (int n = 0; n < nv; n++) {
                    int64_t e = r * f + c0 + 16 * n;
                    __mmask16 pos = _mm512_mask_cmp_ps_mask(m[n], _mm512_maskz_loadu_ps(m[n], y + e),
                                                            _mm512_setzero_ps(), _CMP_GT_OQ);
                    __m512 v = _mm512_maskz_loadu_ps(pos, dy + e);
                    _mm512_mask_storeu_ps(dz + e, m[n], v);
                    sum[n] = _mm512_add_ps(sum[n], v);
                }
            for (int n = 0; n < nv; n++) {
                float t[16];
                _mm512_storeu_ps(t, sum[n]);
                for (int i = 0; i < 16 && c0 + 16 * n + i < f; i++) pb[c0 + 16 * n + i] += t[i];
            }
        }
    }
}

typedef struct fwd_args {
    const float *const *sx;  /* per segment: input at pixel 0 of the row */
    const float *const *sk;  /* per segment: kernel row 0, column 0 */
    int nseg, L;
    int64_t P, F;            /* input stride between pixels; kernel row stride */
    int64_t Z;               /* output row stride (0: F) */
    int64_t xoff, koff;      /* tile's first pixel (floats into sx) and first filter */
    __mmask16 mask;          /* of the block's last vector */
    const float *bias;       /* at koff, or NULL */
    float *z;                /* tile's first output */
    int mode;                /* 0: z = (bias) + sum; 1: z += sum */
    int relu;                /* store max(z, 0) */
} fwd_args;

CT_INLINE CT_AVX512 __m512 load_nb(const float *p, int n, int NB, __mmask16 mask)
{
    return n == NB - 1 ? _mm512_maskz_loadu_ps(mask, p) : _mm512_loadu_ps(p);
}

CT_INLINE CT_AVX512 void store_nb(float *p, int n, int NB, __mmask16 mask, __m512 v)
{
    if (n == NB - 1) _mm512_mask_storeu_ps(p, mask, v);
    else _mm512_storeu_ps(p, v);
}

/* Rows r = 4q + m of a tile sit at base[q] + m * stride: four row
 * pointers and two strides (1x and 3x, in bytes) address them all with
 * x86 base + index * scale, where one pointer per row would spill. */
typedef struct rows4 {
    const char *base[6];
    int64_t s1, s3;
} rows4;

CT_INLINE void rows4_init(rows4 *t, const float *p, int64_t stride, const int MR)
{
    t->s1 = stride * (int64_t)sizeof(float);
    t->s3 = 3 * t->s1;
#pragma GCC unroll 6
    for (int q = 0; q < (MR + 3) / 4; q++) t->base[q] = (const char *)(p + 4 * q * stride);
}

CT_INLINE float rows4_at(const rows4 *t, const int r)
{
    const char *b = t->base[r / 4];
    switch (r % 4) {
    case 0: return *(const float *)b;
    case 1: return *(const float *)(b + t->s1);
    case 2: return *(const float *)(b + 2 * t->s1);
    default: return *(const float *)(b + t->s3);
    }
}

CT_INLINE void rows4_step(rows4 *t, const int MR)
{
#pragma GCC unroll 6
    for (int q = 0; q < (MR + 3) / 4; q++) t->base[q] += sizeof(float);
}

CT_INLINE CT_AVX512 void fwd_kernel(const fwd_args *a, const int MR, const int NB)
{
    __m512 acc[24][4];
    const int64_t P = a->P, F = a->F, Z = a->Z ? a->Z : a->F;
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++)
            acc[r][n] = a->mode ? load_nb(a->z + r * Z + 16 * n, n, NB, a->mask)
                        : a->bias ? load_nb(a->bias + 16 * n, n, NB, a->mask)
                                  : _mm512_setzero_ps();
    for (int s = 0; s < a->nseg; s++) {
        rows4 x;
        rows4_init(&x, a->sx[s] + a->xoff, P, MR);
        const float *k = a->sk[s] + a->koff;
        for (int l = 0; l < a->L; l++, k += F) {
            __m512 kv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) kv[n] = load_nb(k + 16 * n, n, NB, a->mask);
            rows4 xs = x;
            rows4_step(&x, MR);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                __m512 xb = _mm512_set1_ps(rows4_at(&xs, r));
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = _mm512_fmadd_ps(xb, kv[n], acc[r][n]);
            }
        }
    }
    if (a->relu)
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) acc[r][n] = _mm512_max_ps(acc[r][n], _mm512_setzero_ps());
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) store_nb(a->z + r * Z + 16 * n, n, NB, a->mask, acc[r][n]);
}

typedef struct bwd_data_args {
    float *const *sdx;       /* per segment: dx (padded) at pixel 0 of the row */
    const float *const *skt; /* per segment: transposed kernel block (F, L) */
    int nseg, L;
    int64_t P, F;            /* dx stride between pixels; dz row stride */
    int64_t xoff, loff;      /* tile's first pixel (floats into sdx); first segment float */
    __mmask16 mask;
    const float *dz;         /* tile's first pixel, filter 0 */
} bwd_data_args;

CT_INLINE CT_AVX512 void bwd_data_kernel(const bwd_data_args *a, const int MR, const int NB)
{
    const int64_t P = a->P, F = a->F, L = a->L;
    for (int s = 0; s < a->nseg; s++) {
        __m512 acc[24][4];
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) acc[r][n] = _mm512_setzero_ps();
        const float *kt = a->skt[s] + a->loff;
        rows4 dz;
        rows4_init(&dz, a->dz, F, MR);
        for (int64_t f = 0; f < F; f++, kt += L) {
            __m512 kv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) kv[n] = load_nb(kt + 16 * n, n, NB, a->mask);
            rows4 zs = dz;
            rows4_step(&dz, MR);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                __m512 zb = _mm512_set1_ps(rows4_at(&zs, r));
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = _mm512_fmadd_ps(zb, kv[n], acc[r][n]);
            }
        }
        /* Windows of neighbouring pixels overlap: add pixel by pixel. */
        float *dx = a->sdx[s] + a->xoff + a->loff;
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) {
                float *d = dx + r * P + 16 * n;
                store_nb(d, n, NB, a->mask, _mm512_add_ps(load_nb(d, n, NB, a->mask), acc[r][n]));
            }
    }
}

typedef struct bwd_w_args {
    const float *x;          /* image (padded when colpad), at the segment's column offset + l0 */
    int64_t rowstride;       /* floats per (padded) input row */
    int row0, rstep, h;      /* input row of output row p: row0 + p * rstep, skipped outside [0, h) */
    int oh, ow;
    int64_t P, F;            /* input stride between pixels; dz and dk row stride */
    int64_t D;               /* dz stride between pixels (0: F) */
    const float *dz;         /* image, at filter f0 */
    float *dk;               /* tile: row l0 of the segment, filter f0 */
    __mmask16 mask;
} bwd_w_args;

CT_INLINE CT_AVX512 void bwd_w_kernel(const bwd_w_args *a, const int MR, const int NB)
{
    __m512 acc[24][4];
    const int64_t P = a->P, F = a->F;
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) acc[r][n] = load_nb(a->dk + r * F + 16 * n, n, NB, a->mask);
    for (int p = 0; p < a->oh; p++) {
        int ih = a->row0 + p * a->rstep;
        if (ih < 0 || ih >= a->h) continue;
        const float *x = a->x + ih * a->rowstride;
        const int64_t D = a->D ? a->D : F;
        const float *dz = a->dz + (int64_t)p * a->ow * D;
        for (int q = 0; q < a->ow; q++, x += P, dz += D) {
            __m512 zv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) zv[n] = load_nb(dz + 16 * n, n, NB, a->mask);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                __m512 xb = _mm512_set1_ps(x[r]);
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = _mm512_fmadd_ps(xb, zv[n], acc[r][n]);
            }
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) store_nb(a->dk + r * F + 16 * n, n, NB, a->mask, acc[r][n]);
}

/* Instances for every (MR, NB) with MR <= mr_max[NB]. */
#define CT_KERNELS(KIND, ARGS)                                                                        \
    static void CT_AVX512 KIND##_1_1(const ARGS *a) { KIND##_kernel(a, 1, 1); }                       \
    static void CT_AVX512 KIND##_2_1(const ARGS *a) { KIND##_kernel(a, 2, 1); }                       \
    static void CT_AVX512 KIND##_3_1(const ARGS *a) { KIND##_kernel(a, 3, 1); }                       \
    static void CT_AVX512 KIND##_4_1(const ARGS *a) { KIND##_kernel(a, 4, 1); }                       \
    static void CT_AVX512 KIND##_5_1(const ARGS *a) { KIND##_kernel(a, 5, 1); }                       \
    static void CT_AVX512 KIND##_6_1(const ARGS *a) { KIND##_kernel(a, 6, 1); }                       \
    static void CT_AVX512 KIND##_7_1(const ARGS *a) { KIND##_kernel(a, 7, 1); }                       \
    static void CT_AVX512 KIND##_8_1(const ARGS *a) { KIND##_kernel(a, 8, 1); }                       \
    static void CT_AVX512 KIND##_9_1(const ARGS *a) { KIND##_kernel(a, 9, 1); }                       \
    static void CT_AVX512 KIND##_10_1(const ARGS *a) { KIND##_kernel(a, 10, 1); }                     \
    static void CT_AVX512 KIND##_11_1(const ARGS *a) { KIND##_kernel(a, 11, 1); }                     \
    static void CT_AVX512 KIND##_12_1(const ARGS *a) { KIND##_kernel(a, 12, 1); }                     \
    static void CT_AVX512 KIND##_13_1(const ARGS *a) { KIND##_kernel(a, 13, 1); }                     \
    static void CT_AVX512 KIND##_14_1(const ARGS *a) { KIND##_kernel(a, 14, 1); }                     \
    static void CT_AVX512 KIND##_15_1(const ARGS *a) { KIND##_kernel(a, 15, 1); }                     \
    static void CT_AVX512 KIND##_16_1(const ARGS *a) { KIND##_kernel(a, 16, 1); }                     \
    static void CT_AVX512 KIND##_17_1(const ARGS *a) { KIND##_kernel(a, 17, 1); }                     \
    static void CT_AVX512 KIND##_18_1(const ARGS *a) { KIND##_kernel(a, 18, 1); }                     \
    static void CT_AVX512 KIND##_19_1(const ARGS *a) { KIND##_kernel(a, 19, 1); }                     \
    static void CT_AVX512 KIND##_20_1(const ARGS *a) { KIND##_kernel(a, 20, 1); }                     \
    static void CT_AVX512 KIND##_21_1(const ARGS *a) { KIND##_kernel(a, 21, 1); }                     \
    static void CT_AVX512 KIND##_22_1(const ARGS *a) { KIND##_kernel(a, 22, 1); }                     \
    static void CT_AVX512 KIND##_23_1(const ARGS *a) { KIND##_kernel(a, 23, 1); }                     \
    static void CT_AVX512 KIND##_24_1(const ARGS *a) { KIND##_kernel(a, 24, 1); }                     \
    static void CT_AVX512 KIND##_1_2(const ARGS *a) { KIND##_kernel(a, 1, 2); }                       \
    static void CT_AVX512 KIND##_2_2(const ARGS *a) { KIND##_kernel(a, 2, 2); }                       \
    static void CT_AVX512 KIND##_3_2(const ARGS *a) { KIND##_kernel(a, 3, 2); }                       \
    static void CT_AVX512 KIND##_4_2(const ARGS *a) { KIND##_kernel(a, 4, 2); }                       \
    static void CT_AVX512 KIND##_5_2(const ARGS *a) { KIND##_kernel(a, 5, 2); }                       \
    static void CT_AVX512 KIND##_6_2(const ARGS *a) { KIND##_kernel(a, 6, 2); }                       \
    static void CT_AVX512 KIND##_7_2(const ARGS *a) { KIND##_kernel(a, 7, 2); }                       \
    static void CT_AVX512 KIND##_8_2(const ARGS *a) { KIND##_kernel(a, 8, 2); }                       \
    static void CT_AVX512 KIND##_9_2(const ARGS *a) { KIND##_kernel(a, 9, 2); }                       \
    static void CT_AVX512 KIND##_10_2(const ARGS *a) { KIND##_kernel(a, 10, 2); }                     \
    static void CT_AVX512 KIND##_11_2(const ARGS *a) { KIND##_kernel(a, 11, 2); }                     \
    static void CT_AVX512 KIND##_12_2(const ARGS *a) { KIND##_kernel(a, 12, 2); }                     \
    static void CT_AVX512 KIND##_1_3(const ARGS *a) { KIND##_kernel(a, 1, 3); }                       \
    static void CT_AVX512 KIND##_2_3(const ARGS *a) { KIND##_kernel(a, 2, 3); }                       \
    static void CT_AVX512 KIND##_3_3(const ARGS *a) { KIND##_kernel(a, 3, 3); }                       \
    static void CT_AVX512 KIND##_4_3(const ARGS *a) { KIND##_kernel(a, 4, 3); }                       \
    static void CT_AVX512 KIND##_5_3(const ARGS *a) { KIND##_kernel(a, 5, 3); }                       \
    static void CT_AVX512 KIND##_6_3(const ARGS *a) { KIND##_kernel(a, 6, 3); }                       \
    static void CT_AVX512 KIND##_7_3(const ARGS *a) { KIND##_kernel(a, 7, 3); }                       \
    static void CT_AVX512 KIND##_8_3(const ARGS *a) { KIND##_kernel(a, 8, 3); }                       \
    static void CT_AVX512 KIND##_1_4(const ARGS *a) { KIND##_kernel(a, 1, 4); }                       \
    static void CT_AVX512 KIND##_2_4(const ARGS *a) { KIND##_kernel(a, 2, 4); }                       \
    static void CT_AVX512 KIND##_3_4(const ARGS *a) { KIND##_kernel(a, 3, 4); }                       \
    static void CT_AVX512 KIND##_4_4(const ARGS *a) { KIND##_kernel(a, 4, 4); }                       \
    static void CT_AVX512 KIND##_5_4(const ARGS *a) { KIND##_kernel(a, 5, 4); }                       \
    static void CT_AVX512 KIND##_6_4(const ARGS *a) { KIND##_kernel(a, 6, 4); }                       \
    static void (*const KIND##_tab[5][25])(const ARGS *) = {                                          \
        {0},                                                                                          \
        {0, KIND##_1_1, KIND##_2_1, KIND##_3_1, KIND##_4_1, KIND##_5_1, KIND##_6_1, KIND##_7_1,       \
         KIND##_8_1, KIND##_9_1, KIND##_10_1, KIND##_11_1, KIND##_12_1, KIND##_13_1, KIND##_14_1,     \
         KIND##_15_1, KIND##_16_1, KIND##_17_1, KIND##_18_1, KIND##_19_1, KIND##_20_1, KIND##_21_1,   \
         KIND##_22_1, KIND##_23_1, KIND##_24_1},                                                      \
        {0, KIND##_1_2, KIND##_2_2, KIND##_3_2, KIND##_4_2, KIND##_5_2, KIND##_6_2, KIND##_7_2,       \
         KIND##_8_2, KIND##_9_2, KIND##_10_2, KIND##_11_2, KIND##_12_2},                              \
        {0, KIND##_1_3, KIND##_2_3, KIND##_3_3, KIND##_4_3, KIND##_5_3, KIND##_6_3, KIND##_7_3,       \
         KIND##_8_3},                                                                                 \
        {0, KIND##_1_4, KIND##_2_4, KIND##_3_4, KIND##_4_4, KIND##_5_4, KIND##_6_4},                  \
    };

CT_KERNELS(fwd, fwd_args)
CT_KERNELS(bwd_data, bwd_data_args)
CT_KERNELS(bwd_w, bwd_w_args)

/* Splits n vectors of 16 into blocks of at most 4 (as even as possible). */
static int vec_block(int nvec) { return (nvec + (nvec + 3) / 4 - 1) / ((nvec + 3) / 4); }

/* Splits n items into tiles of at most `max`, as even as possible. */
static int even_tile(int n, int max)
{
    int t = (n + max - 1) / max;
    return (n + t - 1) / t;
}

/* Copy one image (h, w, c) into rows of wp floats*c with pl zero columns in front. */
static void pad_rows(const ct_conv2d_geom *g, const plan *pl, const float *x, float *dst, int r0, int r1)
{
    int64_t C = g->c, wp = pl->wp;
    for (int r = r0; r < r1; r++) {
        float *d = dst + r * wp * C;
        memset(d, 0, sizeof(float) * (size_t)(g->pl * C));
        memcpy(d + g->pl * C, x + (int64_t)r * g->w * C, sizeof(float) * (size_t)(g->w * C));
        memset(d + (g->pl + g->w) * C, 0, sizeof(float) * (size_t)((wp - g->pl - g->w) * C));
    }
}

/* Input rows (padded or not) of segment s for output row p: the pointer to
 * pixel 0, or NULL when the kernel row falls outside the image. */
static const float *seg_row(const ct_conv2d_geom *g, const plan *pl, const float *img, int s, int p)
{
    int i = pl->merged ? s : s / g->kw, j = pl->merged ? 0 : s % g->kw;
    int ih = p * g->sh - g->pt + i * g->dh;
    if (ih < 0 || ih >= g->h) return NULL;
    return img + ((int64_t)ih * pl->wp + (int64_t)j * g->dw) * g->c;
}

static void CT_AVX512 avx_fwd_row(const ct_conv2d_geom *g, const plan *pl, const float *img, int p,
                                  const float *k, const float *bias, float *zrow, int flags)
{
    const float *sx[MAX_SEG], *sk[MAX_SEG];
    int nvec = (g->f + 15) / 16, nb = vec_block(nvec);
    int mr = even_tile(g->ow, mr_max[nb]);
    fwd_args a = {.sx = sx, .sk = sk, .L = pl->L, .P = (int64_t)g->sw * g->c, .F = g->f};
    for (int s0 = 0, first = 1; s0 < pl->nseg || first; s0 += MAX_SEG, first = 0) {
        int n = 0;
        for (int s = s0; s < pl->nseg && s < s0 + MAX_SEG; s++) {
            const float *row = seg_row(g, pl, img, s, p);
            if (!row) continue;
            sx[n] = row;
            sk[n++] = k + (int64_t)s * pl->L * g->f;
        }
        a.nseg = n;
        a.mode = (flags & FWD_ACC) || !first;
        a.relu = (flags & FWD_RELU) && s0 + MAX_SEG >= pl->nseg;
        for (int v0 = 0; v0 < nvec; v0 += nb) {
            int vb = nvec - v0 < nb ? nvec - v0 : nb;
            a.koff = (int64_t)v0 * 16;
            a.mask = tail_mask(g->f - v0 * 16 - (vb - 1) * 16);
            a.bias = bias ? bias + a.koff : NULL;
            for (int q0 = 0; q0 < g->ow; q0 += mr) {
                int m = g->ow - q0 < mr ? g->ow - q0 : mr;
                a.xoff = (int64_t)q0 * a.P;
                a.z = zrow + (int64_t)q0 * g->f + a.koff;
                fwd_tab[vb][m](&a);
            }
        }
    }
}


/* ---- Winograd F(2x2, 3x3) forward ----------------------------------------- */

/* 3x3, stride 1, no dilation, with enough channels for the GEMMs: 16
 * multiplies per 2x2 outputs instead of 36. z = A^T [(G g G^T) . (B^T d B)] A
 * per 2x2 output tile; the 16 elementwise products over channels are 16
 * GEMMs (tiles x c) . (c x f), run by the forward kernels. Tiles go in
 * blocks of wino_tb(g) consecutive tiles (row-major) of one image, each
 * block transformed into a slot that stays in cache: V (tb, 16, c) and M
 * (tb, 16, f), one tile's 16 values together, so every transform reads
 * and writes one stream and a GEMM's rows are 16 * c (or f) apart. Every
 * output is computed by one thread in a fixed order. */
static int wino_enabled(void)
{
    /* CT_CONV_WINOGRAD=0 turns it off (for benchmarks), read once. */
    static int cached = -1;
    if (cached < 0) {
        const char *e = getenv("CT_CONV_WINOGRAD");
        cached = !(e && strcmp(e, "0") == 0);
    }
    return cached;
}

static int wino_ok(const ct_conv2d_geom *g)
{
    return wino_enabled() && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->c >= 16 && g->f >= 16 && g->oh >= 2 && g->ow >= 2;
}

static int64_t wino_tiles(const ct_conv2d_geom *g) { return (int64_t)((g->oh + 1) / 2) * ((g->ow + 1) / 2); }

/* Tiles per block: a slot of 16 * tb * (c + f) floats near 256 KiB, in
 * the L2 cache. Measured (bench_conv, batch 128): 64 KiB slots lose 10-20%
 * to the per-block overheads, larger than 256 KiB gain little. */
static int64_t wino_tb(const ct_conv2d_geom *g)
{
    int64_t tb = 4096 / (g->c + g->f), t = wino_tiles(g);
    if (tb < 8) tb = 8;
    return tb < t ? tb : t;
}

/* Floats per tile in V (n = c) and M (n = f): 16 * n and one cache line
 * more, so that the rows a GEMM tile touches (tiles apart) do not crowd a
 * few L1 sets when 16 * n floats is a multiple of 1 KiB. */
static int64_t wino_ts(int64_t n) { return 16 * n + 16; }

static int64_t wino_slot(const ct_conv2d_geom *g) { return wino_tb(g) * (wino_ts(g->c) + wino_ts(g->f)); }

/* Kernel transform, the U matrices first; then a slot per sample. */
static int64_t wino_scratch(const ct_conv2d_geom *g)
{
    return round16(16 * (int64_t)g->c * g->f) + g->batch * wino_slot(g);
}

/* U[xi] (c, f) = G g G^T for every (c, f), xi = 4 * row + column. */
static void CT_AVX512 wino_kernel_transform(const ct_conv2d_geom *g, const float *k, float *u)
{
    const int64_t C = g->c, F = g->f, CF = C * F;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t f0 = 0; f0 < F; f0 += 16) {
            __mmask16 m = tail_mask((int)(F - f0));
            __m512 w[3][3], a[4][3], h = _mm512_set1_ps(0.5f);
#pragma GCC unroll 16
            for (int i = 0; i < 3; i++)
#pragma GCC unroll 16
                for (int j = 0; j < 3; j++) w[i][j] = _mm512_maskz_loadu_ps(m, k + ((i * 3 + j) * C + c) * F + f0);
#pragma GCC unroll 16
            for (int j = 0; j < 3; j++) {
                __m512 s = _mm512_add_ps(w[0][j], w[2][j]);
                a[0][j] = w[0][j];
                a[1][j] = _mm512_mul_ps(h, _mm512_add_ps(s, w[1][j]));
                a[2][j] = _mm512_mul_ps(h, _mm512_sub_ps(s, w[1][j]));
                a[3][j] = w[2][j];
            }
#pragma GCC unroll 16
            for (int i = 0; i < 4; i++) {
                __m512 s = _mm512_add_ps(a[i][0], a[i][2]), v[4];
                v[0] = a[i][0];
                v[1] = _mm512_mul_ps(h, _mm512_add_ps(s, a[i][1]));
                v[2] = _mm512_mul_ps(h, _mm512_sub_ps(s, a[i][1]));
                v[3] = a[i][2];
#pragma GCC unroll 16
                for (int j = 0; j < 4; j++) _mm512_mask_storeu_ps(u + (i * 4 + j) * CF + c * F + f0, m, v[j]);
            }
        }
}

/* B^T d B of one 4x4 patch of 16 channels, stored 16 values c apart.
 * `full` (a constant after inlining): no mask, no edges; masked stores
 * and loads cost measurably more on the interior tiles. */
CT_INLINE CT_AVX512 void wino_in_patch(const ct_conv2d_geom *g, const float *x, int r0, int q0, int64_t c0,
                                       __mmask16 m, float *vt, const int full)
{
    const int64_t C = g->c;
    __m512 d[4][4], e[4][4];
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 16
        for (int j = 0; j < 4; j++) {
            int r = r0 + i, q = q0 + j;
            const float *p = x + ((int64_t)r * g->w + q) * C + c0;
            if (full) d[i][j] = _mm512_loadu_ps(p);
            else d[i][j] = r >= 0 && r < g->h && q >= 0 && q < g->w ? _mm512_maskz_loadu_ps(m, p) : _mm512_setzero_ps();
        }
#pragma GCC unroll 16
    for (int j = 0; j < 4; j++) {
        e[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        e[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        e[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        e[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        __m512 v[4] = {_mm512_sub_ps(e[i][0], e[i][2]), _mm512_add_ps(e[i][1], e[i][2]),
                       _mm512_sub_ps(e[i][2], e[i][1]), _mm512_sub_ps(e[i][1], e[i][3])};
#pragma GCC unroll 16
        for (int j = 0; j < 4; j++) {
            if (full) _mm512_storeu_ps(vt + (i * 4 + j) * C, v[j]);
            else _mm512_mask_storeu_ps(vt + (i * 4 + j) * C, m, v[j]);
        }
    }
}

/* V (n, 16, c) (tiles wino_ts(c) apart) = B^T d B for tiles [t0, t0 + n)
 * of image x (h, w, c). */
static void CT_AVX512 wino_input_transform(const ct_conv2d_geom *g, const float *x, int64_t t0, int64_t n, float *v)
{
    const int64_t C = g->c, tw = (g->ow + 1) / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        int r0 = (int)(2 * ty) - g->pt, q0 = (int)(2 * tx) - g->pl;
        int inner = r0 >= 0 && r0 + 4 <= g->h && q0 >= 0 && q0 + 4 <= g->w;
        float *vt = v + t * wino_ts(C);
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            __mmask16 m = tail_mask((int)(C - c0));
            if (inner && c0 + 16 <= C) wino_in_patch(g, x, r0, q0, c0, m, vt + c0, 1);
            else wino_in_patch(g, x, r0, q0, c0, m, vt + c0, 0);
        }
    }
}

/* M[., xi] (n, f) = V[., xi] (n, c) . U[xi] (c, f) for the 16 xi. */
static void CT_AVX512 wino_gemms(const ct_conv2d_geom *g, const float *v, const float *u, float *mm, int64_t n)
{
    const int64_t C = g->c, F = g->f;
    int nvec = (g->f + 15) / 16, nb = vec_block(nvec);
    int mr = even_tile((int)n, mr_max[nb]);
#pragma GCC unroll 16
    for (int xi = 0; xi < 16; xi++) {
        const float *sx[1] = {v + xi * C}, *sk[1] = {u + xi * C * F};
        fwd_args a = {.sx = sx, .sk = sk, .nseg = 1, .L = g->c, .P = wino_ts(C), .F = F, .Z = wino_ts(F)};
        for (int v0 = 0; v0 < nvec; v0 += nb) {
            int vb = nvec - v0 < nb ? nvec - v0 : nb;
            a.koff = (int64_t)v0 * 16;
            a.mask = tail_mask(g->f - v0 * 16 - (vb - 1) * 16);
            for (int64_t q0 = 0; q0 < n; q0 += mr) {
                int m = n - q0 < mr ? (int)(n - q0) : mr;
                a.xoff = q0 * wino_ts(C);
                a.z = mm + q0 * wino_ts(F) + xi * F + a.koff;
                fwd_tab[vb][m](&a);
            }
        }
    }
}

/* Masked or plain (full: a constant after inlining) load and store. */
CT_INLINE CT_AVX512 __m512 wino_ld(const float *p, __mmask16 m, const int full)
{
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

CT_INLINE CT_AVX512 void wino_st(float *p, __mmask16 m, __m512 v, const int full)
{
    if (full) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, m, v);
}

/* One tile of 16 filters: A^T M A (+ bias, accumulated or ReLU'd), rows x
 * cols outputs (2 x 2 and no mask when full). */
CT_INLINE CT_AVX512 void wino_out_tile(const ct_conv2d_geom *g, const float *mt, int64_t ty, int64_t tx, int rows,
                                       int cols, int64_t f0, __mmask16 m, const float *bias, float *z, int flags,
                                       const int full)
{
    const int64_t F = g->f;
    __m512 a[4][4], r[2][4], y[2][2];
#pragma GCC unroll 16
    for (int xi = 0; xi < 16; xi++) a[xi / 4][xi % 4] = wino_ld(mt + xi * F + f0, m, full);
#pragma GCC unroll 16
    for (int j = 0; j < 4; j++) {
        r[0][j] = _mm512_add_ps(_mm512_add_ps(a[0][j], a[1][j]), a[2][j]);
        r[1][j] = _mm512_sub_ps(_mm512_sub_ps(a[1][j], a[2][j]), a[3][j]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++) {
        y[i][0] = _mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]);
        y[i][1] = _mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]);
    }
    __m512 b = bias && !(flags & FWD_ACC) ? wino_ld(bias + f0, m, full) : _mm512_setzero_ps();
    if (full) rows = cols = 2;
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int j = 0; j < cols; j++) {
            float *o = z + ((2 * ty + i) * g->ow + 2 * tx + j) * F + f0;
            __m512 val = _mm512_add_ps(y[i][j], (flags & FWD_ACC) ? wino_ld(o, m, full) : b);
            if (flags & FWD_RELU) val = _mm512_max_ps(val, _mm512_setzero_ps());
            wino_st(o, m, val, full);
        }
}

/* z tiles [t0, t0 + n) of one image (oh, ow, f) from M: A^T M A (+ bias,
 * accumulated or ReLU'd as flags say), clipped at odd edges. */
static void CT_AVX512 wino_output_transform(const ct_conv2d_geom *g, const float *mm, int64_t t0, int64_t n,
                                            const float *bias, float *z, int flags)
{
    const int64_t F = g->f, tw = (g->ow + 1) / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        int rows = 2 * ty + 1 < g->oh ? 2 : 1, cols = 2 * tx + 1 < g->ow ? 2 : 1;
        const float *mt = mm + t * wino_ts(F);
        for (int64_t f0 = 0; f0 < F; f0 += 16) {
            __mmask16 m = tail_mask((int)(F - f0));
            if (rows == 2 && cols == 2 && f0 + 16 <= F) wino_out_tile(g, mt, ty, tx, 2, 2, f0, m, bias, z, flags, 1);
            else wino_out_tile(g, mt, ty, tx, rows, cols, f0, m, bias, z, flags, 0);
        }
    }
}

static void CT_AVX512 wino_fwd(const ct_conv2d_geom *g, const float *x, const float *k, const float *bias, float *z,
                               int flags, float *scratch)
{
    int64_t B = g->batch, T = wino_tiles(g), tb = wino_tb(g), nblk = (T + tb - 1) / tb, slot = wino_slot(g);
    int64_t in_img = (int64_t)g->h * g->w * g->c, out_img = (int64_t)g->oh * g->ow * g->f;
    float *u = scratch, *slots = scratch + round16(16 * (int64_t)g->c * g->f);
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < B ? nt : (int)B)
    {
        float *v = slots + omp_get_thread_num() * slot, *mm = v + tb * wino_ts(g->c);
        wino_kernel_transform(g, k, u);
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t blk = 0; blk < nblk; blk++) {
                int64_t t0 = blk * tb, n = T - t0 < tb ? T - t0 : tb;
                wino_input_transform(g, x + b * in_img, t0, n, v);
                wino_gemms(g, v, u, mm, n);
                wino_output_transform(g, mm, t0, n, bias, z + b * out_img, flags);
            }
    }
}

static void CT_AVX512 avx_fwd(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k,
                              const float *bias, float *z, int flags, float *scratch)
{
    int64_t B = g->batch, rowz = (int64_t)g->ow * g->f;
    int nt = omp_get_max_threads();
    if (wino_ok(g)) {
        wino_fwd(g, x, k, bias, z, flags, scratch);
        return;
    }
    if (!pl->colpad) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int p = 0; p < g->oh; p++)
                avx_fwd_row(g, pl, x + b * pl->in_img, p, k, bias, z + b * pl->out_img + p * rowz, flags);
    } else if (B >= nt) {
        /* One image per thread at a time, padded into that thread's slot,
         * which stays in its core's cache. */
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            float *img = scratch + omp_get_thread_num() * pl->pimg;
            pad_rows(g, pl, x + b * pl->in_img, img, 0, g->h);
            for (int p = 0; p < g->oh; p++)
                avx_fwd_row(g, pl, img, p, k, bias, z + b * pl->out_img + p * rowz, flags);
        }
    } else {
#pragma omp parallel
        {
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int r = 0; r < g->h; r++) pad_rows(g, pl, x + b * pl->in_img, scratch + b * pl->pimg, r, r + 1);
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int p = 0; p < g->oh; p++)
                    avx_fwd_row(g, pl, scratch + b * pl->pimg, p, k, bias, z + b * pl->out_img + p * rowz, flags);
        }
    }
}

/* Scatter dz of one image into dx rows (padded layout of wp columns). */
static void CT_AVX512 avx_bwd_data_image(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *kt,
                                         float *img)
{
    float *sdx[MAX_SEG];
    const float *skt[MAX_SEG];
    int nvec = (pl->L + 15) / 16, nb = vec_block(nvec);
    int mr = even_tile(g->ow, mr_max[nb]);
    bwd_data_args a = {.sdx = sdx, .skt = skt, .L = pl->L, .P = (int64_t)g->sw * g->c, .F = g->f};
    for (int p = 0; p < g->oh; p++)
        for (int s0 = 0; s0 < pl->nseg; s0 += MAX_SEG) {
            int n = 0;
            for (int s = s0; s < pl->nseg && s < s0 + MAX_SEG; s++) {
                const float *row = seg_row(g, pl, img, s, p);
                if (!row) continue;
                sdx[n] = (float *)row;
                skt[n++] = kt + (int64_t)s * pl->L * g->f;
            }
            if (!n) continue;
            a.nseg = n;
            for (int q0 = 0; q0 < g->ow; q0 += mr) {
                int m = g->ow - q0 < mr ? g->ow - q0 : mr;
                a.xoff = (int64_t)q0 * a.P;
                a.dz = dz + ((int64_t)p * g->ow + q0) * g->f;
                for (int v0 = 0; v0 < nvec; v0 += nb) {
                    int vb = nvec - v0 < nb ? nvec - v0 : nb;
                    a.loff = (int64_t)v0 * 16;
                    a.mask = tail_mask(pl->L - v0 * 16 - (vb - 1) * 16);
                    bwd_data_tab[vb][m](&a);
                }
            }
        }
}

static void CT_AVX512 avx_bwd_data(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k,
                                   float *dx, float *scratch)
{
    float *kt = scratch, *imgs = scratch + round16(pl->K * g->f);
    const int64_t L = pl->L, F = g->f, C = g->c;
    ct_conv2d_geom g2;
    if (gather_geom(g, &g2)) {
#pragma omp parallel
        flip_kernel(g, k, kt);
        plan pl2 = make_plan(&g2);
        avx_fwd(&g2, &pl2, dz, kt, NULL, dx, FWD_ACC, imgs);
        return;
    }
    /* Scatter form; kt: per segment the (F, L) transpose of its (L, F)
     * kernel block. Padded images go to one slot per thread (<= batch). */
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < g->batch ? nt : (int)g->batch)
    {
#pragma omp for schedule(static)
        for (int s = 0; s < pl->nseg; s++)
            for (int64_t l = 0; l < L; l++)
                for (int64_t o = 0; o < F; o++) kt[(s * F + o) * L + l] = k[(s * L + l) * F + o];
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < g->batch; b++) {
            const float *dzb = dz + b * pl->out_img;
            float *dxb = dx + b * pl->in_img;
            if (!pl->colpad) {
                avx_bwd_data_image(g, pl, dzb, kt, dxb);
                continue;
            }
            float *img = imgs + omp_get_thread_num() * pl->pimg;
            memset(img, 0, sizeof(float) * (size_t)(g->h * pl->wp * C));
            avx_bwd_data_image(g, pl, dzb, kt, img);
            for (int r = 0; r < g->h; r++) {
                const float *src = img + ((int64_t)r * pl->wp + g->pl) * C;
                float *d = dxb + (int64_t)r * g->w * C;
#pragma omp simd
                for (int64_t e = 0; e < g->w * C; e++) d[e] += src[e];
            }
        }
    }
}

/* bwd-weights tiles: segment x row chunk (mr rows) x vector chunk (nb
 * vectors), numbered so that tile t is computed from t (no tile table). */
typedef struct wtiling {
    int mr, nb, nl, nv, nvec;
    int64_t n;
} wtiling;

static wtiling make_wtiling(const ct_conv2d_geom *g, const plan *pl, int nt)
{
    wtiling w;
    w.nvec = (g->f + 15) / 16;
    w.nb = vec_block(w.nvec);
    w.mr = even_tile(pl->L, mr_max[w.nb]);
    /* At least two tiles per thread: halve the vectors of a tile first
     * (tiles stay equal), then its rows. */
    for (;;) {
        w.nv = (w.nvec + w.nb - 1) / w.nb;
        w.nl = (pl->L + w.mr - 1) / w.mr;
        w.n = (int64_t)pl->nseg * w.nl * w.nv;
        if (w.n >= 2 * nt || (w.nb == 1 && w.mr == 1)) break;
        if (w.nb > 1) {
            w.nb = (w.nb + 1) / 2;
            w.mr = even_tile(pl->L, mr_max[w.nb]);
        } else {
            w.mr = (w.mr + 1) / 2;
        }
    }
    return w;
}

static void CT_AVX512 avx_bwd_w_tile(const ct_conv2d_geom *g, const plan *pl, const wtiling *w, int64_t t,
                                     const float *img, const float *dz, float *dk)
{
    int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv % w->nl) * w->mr, s = (int)(t / w->nv / w->nl);
    int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = pl->L - l0 < w->mr ? pl->L - l0 : w->mr;
    int i = pl->merged ? s : s / g->kw, j = pl->merged ? 0 : s % g->kw;
    bwd_w_args a = {
        .x = img + (int64_t)j * g->dw * g->c + l0,
        .rowstride = (int64_t)pl->wp * g->c,
        .row0 = i * g->dh - g->pt, .rstep = g->sh, .h = g->h, .oh = g->oh, .ow = g->ow,
        .P = (int64_t)g->sw * g->c, .F = g->f,
        .dz = dz + v0 * 16,
        .dk = dk + ((int64_t)s * pl->L + l0) * g->f + v0 * 16,
        .mask = tail_mask(g->f - v0 * 16 - (nb - 1) * 16),
    };
    bwd_w_tab[nb][mr](&a);
}

/* Work of tile t: rows x vectors. */
static int64_t wtile_cost(const plan *pl, const wtiling *w, int64_t t)
{
    int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv % w->nl) * w->mr;
    int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = pl->L - l0 < w->mr ? pl->L - l0 : w->mr;
    return (int64_t)nb * mr;
}

/* Thread tid's tiles: a contiguous range [t0, t1) holding about 1/T of the work. */
static void wtiles_of_thread(const plan *pl, const wtiling *w, int tid, int T, int64_t *t0, int64_t *t1)
{
    int64_t total = 0;
    for (int64_t t = 0; t < w->n; t++) total += wtile_cost(pl, w, t);
    int64_t lo = total * tid / T, hi = total * (tid + 1) / T, acc = 0;
    *t0 = *t1 = w->n;
    for (int64_t t = 0; t < w->n; t++) {
        /* a tile belongs to the thread whose share holds its midpoint */
        int64_t c = wtile_cost(pl, w, t), mid = 2 * acc + c;
        if (*t0 == w->n && mid > 2 * lo) *t0 = t;
        if (mid > 2 * hi) {
            *t1 = t;
            break;
        }
        acc += c;
    }
    if (*t1 < *t0) *t1 = *t0;
}

/* Tile-split: the threads own fixed tiles of dk and stream every image
 * for them, so nothing needs reducing; with width padding, the padded
 * batch is made first (the one barrier). Every image passes through every
 * thread's cache. */
static void CT_AVX512 bwd_w_tiles(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                  float *dk, float *scratch)
{
    wtiling w = make_wtiling(g, pl, omp_get_max_threads());
    int64_t B = g->batch;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), T = omp_get_num_threads();
        if (pl->colpad) {
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int r = 0; r < g->h; r++) pad_rows(g, pl, x + b * pl->in_img, scratch + b * pl->pimg, r, r + 1);
        }
        int64_t t0, t1;
        wtiles_of_thread(pl, &w, tid, T, &t0, &t1);
        for (int64_t b = 0; b < B; b++) {
            const float *img = pl->colpad ? scratch + b * pl->pimg : x + b * pl->in_img;
            for (int64_t t = t0; t < t1; t++) avx_bwd_w_tile(g, pl, &w, t, img, dz + b * pl->out_img, dk);
        }
    }
}

/* Grouped: the batch is cut into at most 8 groups of consecutive images
 * (their size depends on the batch only); one thread sums a group's
 * partial dk over all tiles, padding each image into its own slot, and the
 * partials are added to dk in group order. Each image is read once. */
#define BWD_W_GROUPS 8

static void bwd_w_group_shape(int64_t batch, int64_t *ng, int64_t *per)
{
    *per = (batch + BWD_W_GROUPS - 1) / BWD_W_GROUPS;
    *ng = (batch + *per - 1) / *per;
}

static void CT_AVX512 bwd_w_grouped(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                    float *dk, float *scratch)
{
    wtiling w = make_wtiling(g, pl, 1);
    int64_t B = g->batch, KF = pl->K * g->f, kf16 = round16(KF), ng, per;
    bwd_w_group_shape(B, &ng, &per);
    float *part = scratch, *slots = scratch + ng * kf16;
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < ng ? nt : (int)ng)
    {
        float *slot = slots + omp_get_thread_num() * pl->pimg;
#pragma omp for schedule(dynamic, 1)
        for (int64_t gi = 0; gi < ng; gi++) {
            float *pg = part + gi * kf16;
            memset(pg, 0, sizeof(float) * (size_t)KF);
            for (int64_t b = gi * per; b < B && b < (gi + 1) * per; b++) {
                const float *img = x + b * pl->in_img;
                if (pl->colpad) {
                    pad_rows(g, pl, img, slot, 0, g->h);
                    img = slot;
                }
                for (int64_t t = 0; t < w.n; t++) avx_bwd_w_tile(g, pl, &w, t, img, dz + b * pl->out_img, pg);
            }
        }
#pragma omp for schedule(static)
        for (int64_t e0 = 0; e0 < KF; e0 += 256) {
            int64_t e1 = e0 + 256 < KF ? e0 + 256 : KF;
            for (int64_t e = e0; e < e1; e++) {
                float sum = part[e];
                for (int64_t gi = 1; gi < ng; gi++) sum += part[gi * kf16 + e];
                dk[e] += sum;
            }
        }
    }
}

/* Grouping reads each image once but writes and re-reads up to 8
 * kernel-sized partial sums; tile-splitting needs no partials but moves
 * every image through each of the (assumed two) threads and, with width
 * padding, writes the padded batch. Floats moved per image, batch 64.
 * A function of the geometry only, so results do not depend on threads. */
static int bwd_w_use_groups(const ct_conv2d_geom *g, const plan *pl)
{
    int64_t xin = pl->colpad ? pl->pimg : pl->in_img;
    int64_t tiles = 2 * (xin + pl->out_img) + (pl->colpad ? pl->pimg + pl->in_img : 0);
    int64_t groups = pl->in_img + pl->out_img + 2 * BWD_W_GROUPS * pl->K * g->f / 64;
    return groups < tiles;
}


/* ---- Winograd F(2x2, 3x3) backward-weights --------------------------------
 *
 * With M = V . U per xi and z = A^T M A: dM = A dz A^T per tile (zero
 * beyond odd edges), dU[xi] (c, f) = sum over tiles of V[xi]^T dM[xi], and
 * dkernel += G^T dU G. The sums over tiles run in the bwd_w kernels (a row
 * of n "pixels" that are tiles); images go in the fixed groups of
 * bwd_w_grouped, one partial dU per group, added in group order. */

/* dM of one tile of 16 filters: A dz A^T, zero beyond odd edges. */
CT_INLINE CT_AVX512 void wino_grad_tile(const ct_conv2d_geom *g, const float *dz, int64_t ty, int64_t tx, int rows,
                                        int cols, int64_t f0, __mmask16 m, float *o, const int full)
{
    const int64_t F = g->f;
    __m512 y[2][2], r[4][2];
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 16
        for (int j = 0; j < 2; j++) {
            const float *p = dz + ((2 * ty + i) * g->ow + 2 * tx + j) * F + f0;
            y[i][j] = full || (i < rows && j < cols) ? wino_ld(p, m, full) : _mm512_setzero_ps();
        }
#pragma GCC unroll 16
    for (int j = 0; j < 2; j++) {
        r[0][j] = y[0][j];
        r[1][j] = _mm512_add_ps(y[0][j], y[1][j]);
        r[2][j] = _mm512_sub_ps(y[0][j], y[1][j]);
        r[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), y[1][j]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        wino_st(o + (i * 4 + 0) * F, m, r[i][0], full);
        wino_st(o + (i * 4 + 1) * F, m, _mm512_add_ps(r[i][0], r[i][1]), full);
        wino_st(o + (i * 4 + 2) * F, m, _mm512_sub_ps(r[i][0], r[i][1]), full);
        wino_st(o + (i * 4 + 3) * F, m, _mm512_sub_ps(_mm512_setzero_ps(), r[i][1]), full);
    }
}

/* dM (n, 16, f) for tiles [t0, t0 + n) of one image's dz (oh, ow, f). */
static void CT_AVX512 wino_grad_transform(const ct_conv2d_geom *g, const float *dz, int64_t t0, int64_t n,
                                          float *dm)
{
    const int64_t F = g->f, tw = (g->ow + 1) / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        int rows = 2 * ty + 1 < g->oh ? 2 : 1, cols = 2 * tx + 1 < g->ow ? 2 : 1;
        float *o = dm + t * wino_ts(F);
        for (int64_t f0 = 0; f0 < F; f0 += 16) {
            __mmask16 m = tail_mask((int)(F - f0));
            if (rows == 2 && cols == 2 && f0 + 16 <= F) wino_grad_tile(g, dz, ty, tx, 2, 2, f0, m, o + f0, 1);
            else wino_grad_tile(g, dz, ty, tx, rows, cols, f0, m, o + f0, 0);
        }
    }
}

/* du[xi] (c, f) += V[., xi]^T (c, n) . dM[., xi] (n, f) for the 16 xi. */
static void CT_AVX512 wino_bwd_w_gemms(const ct_conv2d_geom *g, const wtiling *w, const float *v, const float *dm,
                                       float *du, int64_t n)
{
    const int64_t C = g->c, F = g->f;
    for (int xi = 0; xi < 16; xi++)
        for (int64_t t = 0; t < w->n; t++) {
            int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv) * w->mr;
            int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = g->c - l0 < w->mr ? g->c - l0 : w->mr;
            bwd_w_args a = {
                .x = v + xi * C + l0, .rowstride = 0, .row0 = 0, .rstep = 1, .h = 1, .oh = 1, .ow = (int)n,
                .P = wino_ts(C), .F = F, .D = wino_ts(F), .dz = dm + xi * F + v0 * 16,
                .dk = du + xi * C * F + l0 * F + v0 * 16,
                .mask = tail_mask(g->f - v0 * 16 - (nb - 1) * 16),
            };
            bwd_w_tab[nb][mr](&a);
        }
}

/* dk (3, 3, c, f) += G^T dU G, over c and vectors of f. */
static void CT_AVX512 wino_kernel_grad_transform(const ct_conv2d_geom *g, const float *du, float *dk)
{
    const int64_t C = g->c, F = g->f, CF = C * F;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t f0 = 0; f0 < F; f0 += 16) {
            __mmask16 m = tail_mask((int)(F - f0));
            __m512 u[4][4], b[3][4], h = _mm512_set1_ps(0.5f);
#pragma GCC unroll 16
            for (int xi = 0; xi < 16; xi++) u[xi / 4][xi % 4] = _mm512_maskz_loadu_ps(m, du + xi * CF + c * F + f0);
#pragma GCC unroll 16
            for (int j = 0; j < 4; j++) {
                __m512 s = _mm512_mul_ps(h, _mm512_add_ps(u[1][j], u[2][j]));
                b[0][j] = _mm512_add_ps(u[0][j], s);
                b[1][j] = _mm512_mul_ps(h, _mm512_sub_ps(u[1][j], u[2][j]));
                b[2][j] = _mm512_add_ps(s, u[3][j]);
            }
#pragma GCC unroll 16
            for (int i = 0; i < 3; i++) {
                __m512 s = _mm512_mul_ps(h, _mm512_add_ps(b[i][1], b[i][2])), r[3];
                r[0] = _mm512_add_ps(b[i][0], s);
                r[1] = _mm512_mul_ps(h, _mm512_sub_ps(b[i][1], b[i][2]));
                r[2] = _mm512_add_ps(s, b[i][3]);
#pragma GCC unroll 16
                for (int j = 0; j < 3; j++) {
                    float *o = dk + ((i * 3 + j) * C + c) * F + f0;
                    _mm512_mask_storeu_ps(o, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), r[j]));
                }
            }
        }
}

/* Partial dU per group, the flipped kernel and its U for the fused
 * backward-data, then a slot per sample (<= threads used; the gather
 * geometry has the same c + f, so the same slot serves both). */
static int64_t wino_bwd_w_scratch(const ct_conv2d_geom *g)
{
    int64_t ng, per, cf = (int64_t)g->c * g->f;
    bwd_w_group_shape(g->batch, &ng, &per);
    return ng * round16(16 * cf) + round16(9 * cf) + round16(16 * cf) + g->batch * wino_slot(g);
}

/* The gather form of backward-data (see gather_geom) through Winograd,
 * when it applies. */
static int wino_gather(const ct_conv2d_geom *g, ct_conv2d_geom *g2)
{
    return wino_ok(g) && gather_geom(g, g2) && wino_ok(g2);
}

/* dk += dL/dkernel and, when dx is not NULL, dx += dL/dx (the gather
 * form, wino_gather must hold) image by image in the same pass, so that
 * each image of dz is read from memory once. */
static void CT_AVX512 wino_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk,
                                       const float *k, float *dx, float *scratch)
{
    int64_t B = g->batch, T = wino_tiles(g), tb = wino_tb(g), nblk = (T + tb - 1) / tb, ng, per;
    int64_t in_img = (int64_t)g->h * g->w * g->c, out_img = (int64_t)g->oh * g->ow * g->f;
    int64_t U = round16(16 * (int64_t)g->c * g->f);
    bwd_w_group_shape(B, &ng, &per);
    float *part = scratch, *kt = scratch + ng * U, *u2 = kt + round16(9 * (int64_t)g->c * g->f);
    float *slots = u2 + U;
    ct_conv2d_geom g2;
    if (dx) wino_gather(g, &g2);
    int64_t T2 = dx ? wino_tiles(&g2) : 0, nblk2 = (T2 + tb - 1) / tb;
    /* tiles of dU: rows of c x vectors of f, as the bwd_w kernels take them */
    wtiling w;
    w.nvec = (g->f + 15) / 16;
    w.nb = vec_block(w.nvec);
    w.mr = even_tile(g->c, mr_max[w.nb]);
    w.nv = (w.nvec + w.nb - 1) / w.nb;
    w.nl = (g->c + w.mr - 1) / w.mr;
    w.n = (int64_t)w.nl * w.nv;
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < ng ? nt : (int)ng)
    {
        float *v = slots + omp_get_thread_num() * wino_slot(g), *dm = v + tb * wino_ts(g->c);
        if (dx) {
            flip_kernel(g, k, kt);
            wino_kernel_transform(&g2, kt, u2);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t gi = 0; gi < ng; gi++) {
            float *du = part + gi * U;
            memset(du, 0, sizeof(float) * (size_t)(16 * g->c * g->f));
            for (int64_t b = gi * per; b < B && b < (gi + 1) * per; b++) {
                for (int64_t blk = 0; blk < nblk; blk++) {
                    int64_t t0 = blk * tb, n = T - t0 < tb ? T - t0 : tb;
                    wino_input_transform(g, x + b * in_img, t0, n, v);
                    wino_grad_transform(g, dz + b * out_img, t0, n, dm);
                    wino_bwd_w_gemms(g, &w, v, dm, du, n);
                }
                /* dx of image b: g2's input is dz, its v and M fit the slot */
                for (int64_t blk = 0; blk < nblk2; blk++) {
                    int64_t t0 = blk * tb, n = T2 - t0 < tb ? T2 - t0 : tb;
                    float *m2 = v + tb * wino_ts(g2.c);
                    wino_input_transform(&g2, dz + b * out_img, t0, n, v);
                    wino_gemms(&g2, v, u2, m2, n);
                    wino_output_transform(&g2, m2, t0, n, NULL, dx + b * in_img, FWD_ACC);
                }
            }
        }
        int64_t n16 = 16 * (int64_t)g->c * g->f;
#pragma omp for schedule(static)
        for (int64_t e0 = 0; e0 < n16; e0 += 256) {
            int64_t e1 = e0 + 256 < n16 ? e0 + 256 : n16;
            for (int64_t gi = 1; gi < ng; gi++)
                for (int64_t e = e0; e < e1; e++) part[e] += part[gi * U + e];
        }
        wino_kernel_grad_transform(g, part, dk);
    }
}

static void CT_AVX512 avx_bwd_weights(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                      float *dk, float *scratch)
{
    if (wino_ok(g)) wino_bwd_weights(g, x, dz, dk, NULL, NULL, scratch);
    else if (bwd_w_use_groups(g, pl)) bwd_w_grouped(g, pl, x, dz, dk, scratch);
    else bwd_w_tiles(g, pl, x, dz, dk, scratch);
}
#endif /* CT_HAVE_AVX512 */

int64_t ct_op_conv2d_scratch(const ct_conv2d_geom *g)
{
    plan p = make_plan(g);
    switch (resolve(g)) {
    case CT_CONV_GEMM:
    case CT_CONV_GEMM_BATCHED:
        return p.pointwise ? 0 : round16(g->batch * g->oh * g->ow * p.K);
#if CT_HAVE_AVX512
    case CT_CONV_AVX512: {
        /* bwd-data: the transposed kernel, then a padded image (of x, or of
         * dz for the gather form) per sample or per thread; grouped
         * bwd-weights: the partial sums, then padded image slots. */
        int64_t pimg = p.pimg, kf16 = round16(p.K * g->f);
        ct_conv2d_geom g2;
        int64_t need2 = 0;
        if (gather_geom(g, &g2)) {
            plan p2 = make_plan(&g2);
            if (p2.pimg > pimg) pimg = p2.pimg;
            if (wino_ok(&g2)) need2 = kf16 + wino_scratch(&g2);
        }
        int64_t need = kf16 + g->batch * pimg;
        if (need < need2) need = need2;
        if (wino_ok(g) && need < wino_scratch(g)) need = wino_scratch(g);
        if (wino_ok(g) && need < wino_bwd_w_scratch(g)) need = wino_bwd_w_scratch(g);
        if (bwd_w_use_groups(g, &p)) {
            int64_t ng, per;
            bwd_w_group_shape(g->batch, &ng, &per);
            if (ng * kf16 + g->batch * p.pimg > need) need = ng * kf16 + g->batch * p.pimg;
        }
        return need;
    }
#endif
    default:
        return 0;
    }
}

/* ---- dispatch ----------------------------------------------------------- */

static void conv_fwd(const ct_conv2d_geom *g, const float *x, const float *kernel, const float *bias, float *z,
                     int flags, float *scratch)
{
    plan pl = make_plan(g);
    int acc = flags & FWD_ACC;
    switch (resolve(g)) {
    case CT_CONV_GEMM: gemm_fwd(g, &pl, x, kernel, bias, z, acc, scratch); break;
    case CT_CONV_GEMM_BATCHED: batched_fwd(g, &pl, x, kernel, bias, z, acc, scratch); break;
#if CT_HAVE_AVX512
    case CT_CONV_AVX512: avx_fwd(g, &pl, x, kernel, bias, z, flags, scratch); return;
#endif
    default: ref_fwd(g, x, kernel, bias, z, acc); break;
    }
    if (flags & FWD_RELU) {
        int64_t n = g->batch * pl.out_img;
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) z[i] = z[i] > 0 ? z[i] : 0.0f;
    }
}

void ct_op_conv2d_fwd(const ct_conv2d_geom *g, const float *x, const float *kernel, const float *bias, float *z,
                      int accumulate, float *scratch)
{
    conv_fwd(g, x, kernel, bias, z, accumulate ? FWD_ACC : 0, scratch);
}

void ct_op_conv2d_fwd_relu(const ct_conv2d_geom *g, const float *x, const float *kernel, const float *bias,
                           float *z, float *scratch)
{
    conv_fwd(g, x, kernel, bias, z, FWD_RELU, scratch);
}

/* One image of the fused ReLU backward: pb (f) = column sums of dz, in
 * blocks of 256 rows summed in float, then in double. */
static void relu_bwd_image(const float *y, const float *dy, float *dz, double *pb, int64_t rows, int f)
{
#if CT_HAVE_AVX512
    if (cpu_has_avx512()) {
        relu_bwd_image_avx(y, dy, dz, pb, rows, f);
        return;
    }
#endif
    for (int c = 0; c < f; c++) pb[c] = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += 256) {
        int64_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
        for (int c = 0; c < f; c++) {
            float sum = 0;
            for (int64_t r = r0; r < r1; r++) {
                float v = y[r * f + c] > 0 ? dy[r * f + c] : 0.0f;
                dz[r * f + c] = v;
                sum += v;
            }
            pb[c] += sum;
        }
    }
}

void ct_op_conv2d_relu_bwd(const float *y, const float *dy, float *dz, float *db, int64_t batch,
                           int64_t rows, int f, double *part)
{
    /* One image per iteration: its partial column sums go to its own
     * slot, summed in image order afterwards (thread-count independent). */
#pragma omp parallel for schedule(static) if (batch * rows * f > 65536)
    for (int64_t b = 0; b < batch; b++) {
        int64_t o = b * rows * f;
        relu_bwd_image(y + o, dy + o, dz + o, part + b * f, rows, f);
    }
    if (db)
        for (int c = 0; c < f; c++) {
            double t = 0;
            for (int64_t b = 0; b < batch; b++) t += part[b * f + c];
            db[c] += (float)t;
        }
}

void ct_op_conv2d_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *kernel, float *dx, float *scratch)
{
    plan pl = make_plan(g);
    switch (resolve(g)) {
    case CT_CONV_GEMM: gemm_bwd_data(g, &pl, dz, kernel, dx, scratch); break;
    case CT_CONV_GEMM_BATCHED: batched_bwd_data(g, &pl, dz, kernel, dx, scratch); break;
#if CT_HAVE_AVX512
    case CT_CONV_AVX512: avx_bwd_data(g, &pl, dz, kernel, dx, scratch); break;
#endif
    default: ref_bwd_data(g, dz, kernel, dx); break;
    }
}

void ct_op_conv2d_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dkernel,
                              float *scratch)
{
    plan pl = make_plan(g);
    switch (resolve(g)) {
    /* Per-image sgemms would race on dkernel: both GEMM paths use one call. */
    case CT_CONV_GEMM:
    case CT_CONV_GEMM_BATCHED: gemm_bwd_weights(g, &pl, x, dz, dkernel, scratch); break;
#if CT_HAVE_AVX512
    case CT_CONV_AVX512: avx_bwd_weights(g, &pl, x, dz, dkernel, scratch); break;
#endif
    default: ref_bwd_weights(g, x, dz, dkernel); break;
    }
}

void ct_op_conv2d_bwd(const ct_conv2d_geom *g, const float *x, const float *dz, const float *kernel, float *dx,
                      float *dkernel, float *scratch)
{
#if CT_HAVE_AVX512
    ct_conv2d_geom g2;
    if (dx && resolve(g) == CT_CONV_AVX512 && wino_gather(g, &g2)) {
        wino_bwd_weights(g, x, dz, dkernel, kernel, dx, scratch);
        return;
    }
#endif
    ct_op_conv2d_bwd_weights(g, x, dz, dkernel, scratch);
    if (dx) ct_op_conv2d_bwd_data(g, dz, kernel, dx, scratch);
}

/* ---- depthwise ---------------------------------------------------------- */

/* Output channel o = k * m + j reads input channel k = o / m. */

static void dw_ref_fwd(const ct_conv2d_geom *g, const float *x, const float *k, const float *bias, float *z)
{
    const int C = g->c, F = g->f, m = F / C;
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++)
            for (int q = 0; q < g->ow; q++)
                for (int o = 0; o < F; o++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int i = 0; i < g->kh; i++)
                        for (int j = 0; j < g->kw; j++) {
                            int ih = p * g->sh - g->pt + i * g->dh, iw = q * g->sw - g->pl + j * g->dw;
                            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                            s += (double)x[((b * g->h + ih) * g->w + iw) * C + o / m] * k[(i * g->kw + j) * F + o];
                        }
                    z[((b * g->oh + p) * g->ow + q) * F + o] = (float)s;
                }
}

static void dw_ref_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *k, float *dx)
{
    const int C = g->c, F = g->f, m = F / C;
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++)
            for (int q = 0; q < g->ow; q++)
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int ih = p * g->sh - g->pt + i * g->dh, iw = q * g->sw - g->pl + j * g->dw;
                        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                        for (int o = 0; o < F; o++)
                            dx[((b * g->h + ih) * g->w + iw) * C + o / m] +=
                                dz[((b * g->oh + p) * g->ow + q) * F + o] * k[(i * g->kw + j) * F + o];
                    }
}

static void dw_ref_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk)
{
    const int C = g->c, F = g->f, m = F / C;
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++)
            for (int o = 0; o < F; o++) {
                double s = 0;
                for (int64_t b = 0; b < g->batch; b++)
                    for (int p = 0; p < g->oh; p++)
                        for (int q = 0; q < g->ow; q++) {
                            int ih = p * g->sh - g->pt + i * g->dh, iw = q * g->sw - g->pl + j * g->dw;
                            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                            s += (double)x[((b * g->h + ih) * g->w + iw) * C + o / m] *
                                 dz[((b * g->oh + p) * g->ow + q) * F + o];
                        }
                dk[(i * g->kw + j) * F + o] += (float)s;
            }
}

/* Valid output columns [q0, q1) for kernel column j. */
static void dw_cols(const ct_conv2d_geom *g, int j, int *q0, int *q1)
{
    int off = g->pl - j * g->dw; /* iw = q * sw - off */
    int lo = off > 0 ? (off + g->sw - 1) / g->sw : 0;
    int hi = (g->w - 1 + off) >= 0 ? (g->w - 1 + off) / g->sw + 1 : 0;
    *q0 = lo;
    *q1 = hi < g->ow ? hi : g->ow;
}

void ct_op_depthwise_conv2d_fwd(const ct_conv2d_geom *g, const float *x, const float *k, const float *bias, float *z)
{
    if (g->impl == CT_CONV_REF) {
        dw_ref_fwd(g, x, k, bias, z);
        return;
    }
    const int C = g->c, F = g->f, m = F / C;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++) {
            float *zr = z + ((b * g->oh + p) * g->ow) * F;
            for (int q = 0; q < g->ow; q++)
                for (int o = 0; o < F; o++) zr[(int64_t)q * F + o] = bias ? bias[o] : 0.0f;
            for (int i = 0; i < g->kh; i++) {
                int ih = p * g->sh - g->pt + i * g->dh;
                if (ih < 0 || ih >= g->h) continue;
                for (int j = 0; j < g->kw; j++) {
                    int q0, q1;
                    dw_cols(g, j, &q0, &q1);
                    const float *kp = k + (int64_t)(i * g->kw + j) * F;
                    for (int q = q0; q < q1; q++) {
                        const float *xp = x + ((b * g->h + ih) * g->w + q * g->sw - g->pl + j * g->dw) * C;
                        float *zp = zr + (int64_t)q * F;
                        if (m == 1) {
#pragma omp simd
                            for (int c = 0; c < C; c++) zp[c] += xp[c] * kp[c];
                        } else {
                            for (int c = 0; c < C; c++)
                                for (int e = 0; e < m; e++) zp[c * m + e] += xp[c] * kp[c * m + e];
                        }
                    }
                }
            }
        }
}

void ct_op_depthwise_conv2d_bwd_data(const ct_conv2d_geom *g, const float *dz, const float *k, float *dx)
{
    if (g->impl == CT_CONV_REF) {
        dw_ref_bwd_data(g, dz, k, dx);
        return;
    }
    const int C = g->c, F = g->f, m = F / C;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < g->batch; b++)
        for (int p = 0; p < g->oh; p++)
            for (int i = 0; i < g->kh; i++) {
                int ih = p * g->sh - g->pt + i * g->dh;
                if (ih < 0 || ih >= g->h) continue;
                for (int j = 0; j < g->kw; j++) {
                    int q0, q1;
                    dw_cols(g, j, &q0, &q1);
                    const float *kp = k + (int64_t)(i * g->kw + j) * F;
                    for (int q = q0; q < q1; q++) {
                        float *xp = dx + ((b * g->h + ih) * g->w + q * g->sw - g->pl + j * g->dw) * C;
                        const float *zp = dz + ((b * g->oh + p) * g->ow + q) * F;
                        if (m == 1) {
#pragma omp simd
                            for (int c = 0; c < C; c++) xp[c] += zp[c] * kp[c];
                        } else {
                            for (int c = 0; c < C; c++) {
                                float s = 0;
                                for (int e = 0; e < m; e++) s += zp[c * m + e] * kp[c * m + e];
                                xp[c] += s;
                            }
                        }
                    }
                }
            }
}

void ct_op_depthwise_conv2d_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk)
{
    if (g->impl == CT_CONV_REF) {
        dw_ref_bwd_weights(g, x, dz, dk);
        return;
    }
    const int C = g->c, F = g->f, m = F / C;
    int nblk = (F + 15) / 16;
    /* Channel blocks over the threads: each owns its columns of dk. */
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int o0 = blk * 16, o1 = o0 + 16 < F ? o0 + 16 : F;
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                int q0, q1;
                dw_cols(g, j, &q0, &q1);
                float acc[16] = {0};
                for (int64_t b = 0; b < g->batch; b++)
                    for (int p = 0; p < g->oh; p++) {
                        int ih = p * g->sh - g->pt + i * g->dh;
                        if (ih < 0 || ih >= g->h) continue;
                        for (int q = q0; q < q1; q++) {
                            const float *xp = x + ((b * g->h + ih) * g->w + q * g->sw - g->pl + j * g->dw) * C;
                            const float *zp = dz + ((b * g->oh + p) * g->ow + q) * F;
                            for (int o = o0; o < o1; o++) acc[o - o0] += xp[o / m] * zp[o];
                        }
                    }
                float *dp = dk + (int64_t)(i * g->kw + j) * F;
                for (int o = o0; o < o1; o++) dp[o] += acc[o - o0];
            }
    }
}
