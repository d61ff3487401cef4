/* Internals shared by the convolution kernels (conv.c) and their SIMD
 * instances (conv_avx512.c, conv_avx2.c, both made from conv_simd.h):
 * the plan of a geometry, tilings and scratch layouts that do not depend
 * on the vector width, and the entry points of each instance. Not a
 * public header. */
#ifndef CT_CONV_INTERNAL_H
#define CT_CONV_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "conv.h"

/* Flags of the forward paths: accumulate into z; apply ReLU at the store. */
enum { FWD_ACC = 1, FWD_RELU = 2 };

#define MAX_SEG 64 /* segments per kernel call; larger kernels take several calls */

/* CT_CONV_WINOGRAD=0 turns Winograd off (for benchmarks), read once. */
int ct_conv_winograd_enabled(void);

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

static inline int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }


static inline plan make_plan(const ct_conv2d_geom *g)
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
static inline int gather_geom(const ct_conv2d_geom *g, ct_conv2d_geom *g2, int vw)
{
    int ekh = (g->kh - 1) * g->dh, ekw = (g->kw - 1) * g->dw;
    if (g->sh != 1 || g->sw != 1 || g->pt > ekh || g->pl > ekw) return 0;
    /* Gather vectorises over c, scatter over its segments (kw * c with
     * dilation 1) but pays a read-modify-write per window: with few
     * channels (c = 3: 3 of vw lanes) scatter wins. vw: floats per vector. */
    int seg = g->dw == 1 ? g->kw * g->c : g->c;
    double lanes_gather = g->c / ((double)vw * ((g->c + vw - 1) / vw)),
           lanes_scatter = seg / ((double)vw * ((seg + vw - 1) / vw));
    if (lanes_gather < 0.8 * lanes_scatter) return 0;
    *g2 = (ct_conv2d_geom){.batch = g->batch, .h = g->oh, .w = g->ow, .c = g->f, .oh = g->h, .ow = g->w,
                           .f = g->c, .kh = g->kh, .kw = g->kw, .sh = 1, .sw = 1, .dh = g->dh, .dw = g->dw,
                           .pt = ekh - g->pt, .pl = ekw - g->pl, .impl = g->impl};
    return 1;
}

/* kt (kh, kw, f, c) = the kernel flipped in space and transposed in
 * channels, the kernel of the gather form (a worksharing loop: call it
 * inside a parallel region). */
static inline void flip_kernel(const ct_conv2d_geom *g, const float *k, float *kt)
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

/* Rows r = 4q + m of a tile sit at base[q] + m * stride: four row
 * pointers and two strides (1x and 3x, in bytes) address them all with
 * x86 base + index * scale, where one pointer per row would spill. */
typedef struct rows4 {
    const char *base[6];
    int64_t s1, s3;
} rows4;

static inline __attribute__((always_inline)) void rows4_init(rows4 *t, const float *p, int64_t stride, const int MR)
{
    t->s1 = stride * (int64_t)sizeof(float);
    t->s3 = 3 * t->s1;
#pragma GCC unroll 6
    for (int q = 0; q < (MR + 3) / 4; q++) t->base[q] = (const char *)(p + 4 * q * stride);
}

static inline __attribute__((always_inline)) float rows4_at(const rows4 *t, const int r)
{
    const char *b = t->base[r / 4];
    switch (r % 4) {
    case 0: return *(const float *)b;
    case 1: return *(const float *)(b + t->s1);
    case 2: return *(const float *)(b + 2 * t->s1);
    default: return *(const float *)(b + t->s3);
    }
}

static inline __attribute__((always_inline)) void rows4_step(rows4 *t, const int MR)
{
#pragma GCC unroll 6
    for (int q = 0; q < (MR + 3) / 4; q++) t->base[q] += sizeof(float);
}

/* Splits n items into tiles of at most `max`, as even as possible. */
static inline int even_tile(int n, int max)
{
    int t = (n + max - 1) / max;
    return (n + t - 1) / t;
}

/* Copy one image (h, w, c) into rows of wp floats*c with pl zero columns in front. */
static inline void pad_rows(const ct_conv2d_geom *g, const plan *pl, const float *x, float *dst, int r0, int r1)
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
static inline const float *seg_row(const ct_conv2d_geom *g, const plan *pl, const float *img, int s, int p)
{
    int i = pl->merged ? s : s / g->kw, j = pl->merged ? 0 : s % g->kw;
    int ih = p * g->sh - g->pt + i * g->dh;
    if (ih < 0 || ih >= g->h) return NULL;
    return img + ((int64_t)ih * pl->wp + (int64_t)j * g->dw) * g->c;
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
static inline int wino_ok(const ct_conv2d_geom *g, int vw)
{
    /* Measured (bench_conv --cpu-time, batch 128): with 8-wide vectors
     * the direct kernels beat Winograd on 16 -> 16 channels (83 vs 74
     * GFLOP/s) and lose from 32 up (91 vs 108); with 16-wide ones
     * Winograd wins from 16. */
    int min_c = vw == 8 ? 32 : 16;
    return ct_conv_winograd_enabled() && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->c >= min_c && g->f >= min_c && g->oh >= 2 && g->ow >= 2;
}

static inline int64_t wino_tiles(const ct_conv2d_geom *g) { return (int64_t)((g->oh + 1) / 2) * ((g->ow + 1) / 2); }

/* Tiles per block: a slot of 16 * tb * (c + f) floats near 256 KiB, in
 * the L2 cache. Measured (bench_conv, batch 128): 64 KiB slots lose 10-20%
 * to the per-block overheads, larger than 256 KiB gain little. */
static inline int64_t wino_tb(const ct_conv2d_geom *g)
{
    int64_t tb = 4096 / (g->c + g->f), t = wino_tiles(g);
    if (tb < 8) tb = 8;
    return tb < t ? tb : t;
}

/* Floats per tile in V (n = c) and M (n = f): 16 * n and one cache line
 * more, so that the rows a GEMM tile touches (tiles apart) do not crowd a
 * few L1 sets when 16 * n floats is a multiple of 1 KiB. */
static inline int64_t wino_ts(int64_t n) { return 16 * n + 16; }

/* The image padded with zeros so that every tile's 4x4 patch lies inside:
 * 2 * tiles + 2 rows and columns, the first pt rows and pl columns zero. */
static inline int64_t wino_pad_h(const ct_conv2d_geom *g) { return 2 * (int64_t)((g->oh + 1) / 2) + 2; }
static inline int64_t wino_pad_w(const ct_conv2d_geom *g) { return 2 * (int64_t)((g->ow + 1) / 2) + 2; }

/* V and M of a block, then a padded image of g or of its gather form (whose
 * input is dz: oh x ow x f, padded to at most (h + 3) x (w + 3)). */
static inline int64_t wino_slot(const ct_conv2d_geom *g)
{
    int64_t h = g->h > g->oh ? g->h : g->oh, w = g->w > g->ow ? g->w : g->ow, c = g->c > g->f ? g->c : g->f;
    return wino_tb(g) * (wino_ts(g->c) + wino_ts(g->f)) + round16((h + 3) * (w + 3) * c);
}

/* Kernel transform, the U matrices first; then a slot per sample. */
static inline int64_t wino_scratch(const ct_conv2d_geom *g)
{
    return round16(16 * (int64_t)g->c * g->f) + g->batch * wino_slot(g);
}

/* bwd-weights tiles: segment x row chunk (mr rows) x vector chunk (nb
 * vectors), numbered so that tile t is computed from t (no tile table). */
typedef struct wtiling {
    int mr, nb, nl, nv, nvec;
    int64_t n;
} wtiling;

/* Work of tile t: rows x vectors. */
static inline int64_t wtile_cost(const plan *pl, const wtiling *w, int64_t t)
{
    int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv % w->nl) * w->mr;
    int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = pl->L - l0 < w->mr ? pl->L - l0 : w->mr;
    return (int64_t)nb * mr;
}

/* Thread tid's tiles: a contiguous range [t0, t1) holding about 1/T of the work. */
static inline void wtiles_of_thread(const plan *pl, const wtiling *w, int tid, int T, int64_t *t0, int64_t *t1)
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

/* Grouped: the batch is cut into at most 8 groups of consecutive images
 * (their size depends on the batch only); one thread sums a group's
 * partial dk over all tiles, padding each image into its own slot, and the
 * partials are added to dk in group order. Each image is read once. */
#define BWD_W_GROUPS 8

static inline void bwd_w_group_shape(int64_t batch, int64_t *ng, int64_t *per)
{
    *per = (batch + BWD_W_GROUPS - 1) / BWD_W_GROUPS;
    *ng = (batch + *per - 1) / *per;
}

/* Grouping reads each image once but writes and re-reads up to 8
 * kernel-sized partial sums; tile-splitting needs no partials but moves
 * every image through each of the (assumed two) threads and, with width
 * padding, writes the padded batch. Floats moved per image, batch 64.
 * A function of the geometry only, so results do not depend on threads. */
static inline int bwd_w_use_groups(const ct_conv2d_geom *g, const plan *pl)
{
    int64_t xin = pl->colpad ? pl->pimg : pl->in_img;
    int64_t tiles = 2 * (xin + pl->out_img) + (pl->colpad ? pl->pimg + pl->in_img : 0);
    int64_t groups = pl->in_img + pl->out_img + 2 * BWD_W_GROUPS * pl->K * g->f / 64;
    return groups < tiles;
}

/* Partial dU per group, the flipped kernel and its U for the fused
 * backward-data, then a slot per sample (<= threads used; the gather
 * geometry has the same c + f, so the same slot serves both). */
static inline int64_t wino_bwd_w_scratch(const ct_conv2d_geom *g)
{
    int64_t ng, per, cf = (int64_t)g->c * g->f;
    bwd_w_group_shape(g->batch, &ng, &per);
    return ng * round16(16 * cf) + round16(9 * cf) + round16(16 * cf) + g->batch * wino_slot(g);
}

/* The gather form of backward-data (see gather_geom) through Winograd,
 * when it applies. */
static inline int wino_gather(const ct_conv2d_geom *g, ct_conv2d_geom *g2, int vw)
{
    return wino_ok(g, vw) && gather_geom(g, g2, vw) && wino_ok(g2, vw);
}

/* The entry points of one SIMD instance (ISA = avx512 or avx2), chosen by
 * conv.c's dispatch when the CPU has the instructions. */
#define CT_CONV_SIMD_DECLS(ISA)                                                                               \
    void ct_conv_##ISA##_fwd(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k,         \
                             const float *bias, float *z, int flags, float *scratch);                         \
    void ct_conv_##ISA##_bwd_data(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k,   \
                                  float *dx, float *scratch);                                                 \
    void ct_conv_##ISA##_bwd_weights(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz, \
                                     float *dk, float *scratch);                                              \
    void ct_conv_##ISA##_bwd_fused(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk,       \
                                   const float *k, float *dx, float *scratch);                                \
    void ct_conv_##ISA##_relu_bwd_image(const float *y, const float *dy, float *dz, double *pb, int64_t rows,  \
                                        int f);
CT_CONV_SIMD_DECLS(avx512)
CT_CONV_SIMD_DECLS(avx2)

#endif
