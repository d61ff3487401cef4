/* Convolution kernels: the reference loops, im2col + sgemm, and the
 * dispatch to the direct SIMD kernels (conv_simd.h, instantiated for
 * AVX-512 and AVX2); depthwise convolution. See conv.h for the geometry.
 *
 * The SIMD paths are an implicit GEMM with the Keras kernel as the B
 * matrix (rows (i, j, c), columns f). A "segment" is a run of kernel rows
 * that is also contiguous in the input: with dilation 1 along the width,
 * one kernel row i covers kw * c consecutive floats of an input row, so
 * the reduction runs over kh segments of kw * c; otherwise over kh * kw
 * segments of c. Output pixels of one row sit a fixed stride (sw * c)
 * apart in the input, so a register tile of MR pixels x NB*VW filters
 * reads its A values straight from the image; no im2col buffer exists.
 * Zero padding along the width is made real by copying each image into
 * scratch with zero columns; padding rows are skipped instead.
 *
 *   forward      z tile (MR pixels, NB*VW filters) += x rows . kernel
 *   bwd-data     stride 1: a forward convolution of dz with the kernel
 *                flipped and transposed (gather: each dx value written once);
 *                otherwise dcol tile (MR pixels, NB*VW segment floats) =
 *                dz . kernel^T added into the padded dx rows (scatter, one
 *                image per thread)
 *   bwd-weights  dkernel tile (MR segment rows, NB*VW filters) += x^T . dz,
 *                streamed over every pixel of an image with the tile held in
 *                registers; the tiles are split over the threads, so no
 *                reduction is needed and every sum runs in a fixed order
 *                (results do not depend on the thread count).
 *
 * 3x3 stride-1 convolutions with enough channels take Winograd F(2x2, 3x3)
 * (see its section): per 2x2 output tile, transforms around 16 GEMMs that
 * run on the forward and backward-weights register kernels. VW is the
 * vector width: 16 floats (AVX-512) or 8 (AVX2). */
#include "conv.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "isa.h"
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

static const char *const impl_names[CT_CONV_IMPL_COUNT] = {"auto", "ref", "gemm", "gemm_batched", "avx512", "avx2"};

const char *ct_conv_impl_name(ct_conv_impl impl)
{
    return impl >= 0 && impl < CT_CONV_IMPL_COUNT ? impl_names[impl] : "?";
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_HAVE_SIMD 1
#else
#define CT_HAVE_SIMD 0
#endif

/* Availability follows the active instruction set (isa.h), so CT_ISA or
 * ct_isa_force turns the SIMD paths off. */
int ct_conv_impl_available(ct_conv_impl impl)
{
    if (impl == CT_CONV_AVX512) return CT_HAVE_SIMD && ct_isa_active() >= CT_ISA_AVX512;
    if (impl == CT_CONV_AVX2) return CT_HAVE_SIMD && ct_isa_active() >= CT_ISA_AVX2;
    return impl > CT_CONV_AUTO && impl < CT_CONV_IMPL_COUNT;
}

ct_conv_impl ct_conv_impl_best(void)
{
    /* CT_CONV_IMPL=<name>, read once, wins when available. */
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("CT_CONV_IMPL");
        env = 0;
        for (int i = 1; e && i < CT_CONV_IMPL_COUNT; i++)
            if (strcmp(e, impl_names[i]) == 0) env = i;
    }
    if (env > 0 && ct_conv_impl_available((ct_conv_impl)env)) return (ct_conv_impl)env;
    /* Measured (bench_conv): per-image sgemms beat one big sgemm on these
     * small convolutions, more so with two threads. */
    switch (ct_isa_active()) {
    case CT_ISA_AVX512: return CT_CONV_AVX512;
    case CT_ISA_AVX2: return CT_CONV_AVX2;
    default: return CT_CONV_GEMM_BATCHED;
    }
}

int ct_conv_winograd_enabled(void)
{
    /* CT_CONV_WINOGRAD=0 turns it off (for benchmarks), read once. */
    static int cached = -1;
    if (cached < 0) {
        const char *e = getenv("CT_CONV_WINOGRAD");
        cached = !(e && strcmp(e, "0") == 0);
    }
    return cached;
}

static ct_conv_impl resolve(const ct_conv2d_geom *g)
{
    ct_conv_impl m = g->impl == CT_CONV_AUTO ? ct_conv_impl_best() : g->impl;
    return ct_conv_impl_available(m) ? m : CT_CONV_GEMM_BATCHED;
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

int64_t ct_op_conv2d_scratch(const ct_conv2d_geom *g)
{
    plan p = make_plan(g);
    switch (resolve(g)) {
    case CT_CONV_GEMM:
    case CT_CONV_GEMM_BATCHED:
        return p.pointwise ? 0 : round16(g->batch * g->oh * g->ow * p.K);
#if CT_HAVE_SIMD
    case CT_CONV_AVX512:
    case CT_CONV_AVX2: {
        /* bwd-data: the transposed kernel, then a padded image (of x, or of
         * dz for the gather form) per sample or per thread; grouped
         * bwd-weights: the partial sums, then padded image slots. */
        int64_t pimg = p.pimg, kf16 = round16(p.K * g->f);
        ct_conv2d_geom g2;
        int64_t need2 = 0;
        int vw = resolve(g) == CT_CONV_AVX512 ? 16 : 8;
        if (gather_geom(g, &g2, vw)) {
            plan p2 = make_plan(&g2);
            if (p2.pimg > pimg) pimg = p2.pimg;
            if (wino_ok(&g2, vw)) need2 = kf16 + wino_scratch(&g2);
        }
        int64_t need = kf16 + g->batch * pimg;
        if (need < need2) need = need2;
        if (wino_ok(g, vw) && need < wino_scratch(g)) need = wino_scratch(g);
        if (wino_ok(g, vw) && need < wino_bwd_w_scratch(g)) need = wino_bwd_w_scratch(g);
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
#if CT_HAVE_SIMD
    case CT_CONV_AVX512: ct_conv_avx512_fwd(g, &pl, x, kernel, bias, z, flags, scratch); return;
    case CT_CONV_AVX2: ct_conv_avx2_fwd(g, &pl, x, kernel, bias, z, flags, scratch); return;
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
#if CT_HAVE_SIMD
    switch (ct_isa_active()) {
    case CT_ISA_AVX512: ct_conv_avx512_relu_bwd_image(y, dy, dz, pb, rows, f); return;
    case CT_ISA_AVX2: ct_conv_avx2_relu_bwd_image(y, dy, dz, pb, rows, f); return;
    default: break;
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
#if CT_HAVE_SIMD
    case CT_CONV_AVX512: ct_conv_avx512_bwd_data(g, &pl, dz, kernel, dx, scratch); break;
    case CT_CONV_AVX2: ct_conv_avx2_bwd_data(g, &pl, dz, kernel, dx, scratch); break;
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
#if CT_HAVE_SIMD
    case CT_CONV_AVX512: ct_conv_avx512_bwd_weights(g, &pl, x, dz, dkernel, scratch); break;
    case CT_CONV_AVX2: ct_conv_avx2_bwd_weights(g, &pl, x, dz, dkernel, scratch); break;
#endif
    default: ref_bwd_weights(g, x, dz, dkernel); break;
    }
}

void ct_op_conv2d_bwd(const ct_conv2d_geom *g, const float *x, const float *dz, const float *kernel, float *dx,
                      float *dkernel, float *scratch)
{
#if CT_HAVE_SIMD
    ct_conv2d_geom g2;
    ct_conv_impl m = resolve(g);
    if (dx && m == CT_CONV_AVX512 && wino_gather(g, &g2, 16)) {
        ct_conv_avx512_bwd_fused(g, x, dz, dkernel, kernel, dx, scratch);
        return;
    }
    if (dx && m == CT_CONV_AVX2 && wino_gather(g, &g2, 8)) {
        ct_conv_avx2_bwd_fused(g, x, dz, dkernel, kernel, dx, scratch);
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
