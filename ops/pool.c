/* Pooling, zero padding and upsampling kernels on NHWC images.
 *
 * These are memory-bound, so every kernel walks the image once in memory
 * order with the channel loop innermost and vectorised (`omp simd`: GCC
 * at -O2 only vectorises loops it is told to). Forward kernels split the
 * work over (sample, output row). A backward kernel that scatters splits
 * over samples only, unless the windows of different output rows cannot
 * overlap (stride >= window); either way each dx cell is summed in one
 * fixed order, so results do not depend on the number of threads. */
#include <math.h>
#include <string.h>

#include "image_ops.h"

/* Below this many output values a kernel runs on one thread. */
#define PAR_MIN 32768

static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A float's bits, to select with masks: GCC if-converts `c ? v : 0` added
 * to memory into a conditional store, which stops the vectoriser. */
typedef union fbits {
    float f;
    int32_t i;
} fbits;

/* Channels handled at once where a kernel keeps per-channel state on the stack. */
#define MAXPOOL_BLOCK 64

int ct_pool_out_size(int64_t in, int k, int s, int same, int64_t *out, int *pad_before)
{
    *out = 0;
    *pad_before = 0;
    if (in < 1 || k < 1 || s < 1) return 0;
    if (same) {
        *out = (in + s - 1) / s;
        *pad_before = (int)(max64((*out - 1) * s + k - in, 0) / 2);
        return 1;
    }
    if (in < k) return 0;
    *out = (in - k) / s + 1;
    return 1;
}

int ct_pool2d_geom_make(ct_pool2d_geom *g, int64_t h, int64_t w, int64_t c, int kh, int kw, int sh, int sw,
                        int same)
{
    memset(g, 0, sizeof *g);
    g->h = h, g->w = w, g->c = c;
    g->kh = kh, g->kw = kw, g->sh = sh, g->sw = sw;
    return ct_pool_out_size(h, kh, sh, same, &g->oh, &g->pad_top) &&
           ct_pool_out_size(w, kw, sw, same, &g->ow, &g->pad_left) && c >= 1;
}

/* The window of output (oy, ox) clipped to the image: rows [y0, y1), cols [x0, x1). */
typedef struct window {
    int64_t y0, y1, x0, x1;
} window;

static inline window window_at(const ct_pool2d_geom *g, int64_t oy, int64_t ox)
{
    int64_t ys = oy * g->sh - g->pad_top, xs = ox * g->sw - g->pad_left;
    window r = {max64(ys, 0), min64(ys + g->kh, g->h), max64(xs, 0), min64(xs + g->kw, g->w)};
    return r;
}

/* ---- max pool ------------------------------------------------------------
 * The backward pass finds the winners again from x, as TF's CPU kernel
 * does, instead of storing them in the forward pass: the extra stream of
 * indices made the forward more than twice as slow, while the backward
 * that re-reads x is no slower than the scatter of stored indices was.
 * The first valid cell seeds each maximum, so
 * padded cells never take part; a later cell replaces it only when
 * strictly greater, which keeps the first maximum on ties. */

static void maxpool_row(const ct_pool2d_geom *g, const float *restrict xs, int64_t oy, float *restrict y)
{
    const int64_t C = g->c, W = g->w;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        window wd = window_at(g, oy, ox);
        float *restrict yo = y + ox * C;
        memcpy(yo, xs + (wd.y0 * W + wd.x0) * C, sizeof(float) * (size_t)C);
        for (int64_t iy = wd.y0; iy < wd.y1; iy++)
            for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                if (iy == wd.y0 && ix == wd.x0) continue;
                const float *restrict xp = xs + (iy * W + ix) * C;
#pragma omp simd
                for (int64_t ch = 0; ch < C; ch++) yo[ch] = xp[ch] > yo[ch] ? xp[ch] : yo[ch];
            }
    }
}

/* 2x2 windows, stride 2, no padding: the common CNN case, one pass over
 * the four inputs per output with no read-modify-write of y. */
static int is_2x2(const ct_pool2d_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pad_top == 0 && g->pad_left == 0 &&
           2 * g->oh <= g->h && 2 * g->ow <= g->w;
}

static void maxpool_row_2x2(const ct_pool2d_geom *g, const float *restrict xs, int64_t oy, float *restrict y)
{
    const int64_t C = g->c, W = g->w;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        const float *restrict a = xs + ((2 * oy) * W + 2 * ox) * C, *restrict b = a + C;
        const float *restrict c = a + W * C, *restrict d = c + C;
        float *restrict yo = y + ox * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ch++) {
            float m = a[ch];
            m = b[ch] > m ? b[ch] : m;
            m = c[ch] > m ? c[ch] : m;
            m = d[ch] > m ? d[ch] : m;
            yo[ch] = m;
        }
    }
}

void ct_op_maxpool2d_fwd(const ct_pool2d_geom *g, int64_t batch, const float *x, float *y)
{
    const int64_t in_n = g->h * g->w * g->c, row_n = g->ow * g->c, out_n = g->oh * row_n;
    const int fast = is_2x2(g);
#pragma omp parallel for collapse(2) schedule(static) if (batch * out_n > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            if (fast) maxpool_row_2x2(g, x + b * in_n, oy, y + b * out_n + oy * row_n);
            else maxpool_row(g, x + b * in_n, oy, y + b * out_n + oy * row_n);
        }
}

/* Each 2x2 window's winner (0..3, first on ties) takes dy; the other three
 * cells get +0, so all four rows of dx are plain vector streams. */
static void maxpool_bwd_row_2x2(const ct_pool2d_geom *g, const float *restrict xs, const float *restrict d,
                                int64_t oy, float *restrict dxs)
{
    const int64_t C = g->c, W = g->w;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        const int64_t o = ((2 * oy) * W + 2 * ox) * C;
        const float *restrict a = xs + o, *restrict b = a + C, *restrict c = a + W * C, *restrict e = c + C;
        float *restrict da = dxs + o, *restrict db = da + C, *restrict dc = da + W * C, *restrict de = dc + C;
        const float *restrict dyo = d + ox * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ch++) {
            float m = a[ch];
            int32_t w = 0, gt;
            gt = -(int32_t)(b[ch] > m), w = (w & ~gt) | (1 & gt), m = b[ch] > m ? b[ch] : m;
            gt = -(int32_t)(c[ch] > m), w = (w & ~gt) | (2 & gt), m = c[ch] > m ? c[ch] : m;
            gt = -(int32_t)(e[ch] > m), w = (w & ~gt) | (3 & gt);
            fbits v = {dyo[ch]}, r0, r1, r2, r3;
            r0.i = v.i & -(int32_t)(w == 0), r1.i = v.i & -(int32_t)(w == 1);
            r2.i = v.i & -(int32_t)(w == 2), r3.i = v.i & -(int32_t)(w == 3);
            da[ch] += r0.f, db[ch] += r1.f, dc[ch] += r2.f, de[ch] += r3.f;
        }
    }
}

/* General windows: the winners of a block of channels, then a scatter. */
static void maxpool_bwd_row(const ct_pool2d_geom *g, const float *restrict xs, const float *restrict d, int64_t oy,
                            float *restrict dxs)
{
    const int64_t C = g->c, W = g->w;
    float m[MAXPOOL_BLOCK];
    int32_t k[MAXPOOL_BLOCK];
    for (int64_t ox = 0; ox < g->ow; ox++) {
        window wd = window_at(g, oy, ox);
        for (int64_t c0 = 0; c0 < C; c0 += MAXPOOL_BLOCK) {
            const int32_t nc = (int32_t)(C - c0 < MAXPOOL_BLOCK ? C - c0 : MAXPOOL_BLOCK);
            const int32_t base = (int32_t)((wd.y0 * W + wd.x0) * C + c0);
            const float *restrict x0 = xs + base;
            for (int32_t ch = 0; ch < nc; ch++) m[ch] = x0[ch], k[ch] = base + ch;
            for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                    if (iy == wd.y0 && ix == wd.x0) continue;
                    const int32_t off = (int32_t)((iy * W + ix) * C + c0);
                    const float *restrict xp = xs + off;
#pragma omp simd
                    for (int32_t ch = 0; ch < nc; ch++) {
                        float v = xp[ch];
                        int32_t gt = -(int32_t)(v > m[ch]); /* a bit mask: GCC vectorises it, not ?: */
                        k[ch] = (k[ch] & ~gt) | ((off + ch) & gt);
                        m[ch] = v > m[ch] ? v : m[ch];
                    }
                }
            const float *dyo = d + ox * C + c0;
            for (int32_t ch = 0; ch < nc; ch++) dxs[k[ch]] += dyo[ch];
        }
    }
}

void ct_op_maxpool2d_bwd(const ct_pool2d_geom *g, int64_t batch, const float *x, const float *dy, float *dx)
{
    const int64_t in_n = g->h * g->w * g->c, row_n = g->ow * g->c, out_n = g->oh * row_n;
    if (is_2x2(g)) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * out_n > PAR_MIN)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                maxpool_bwd_row_2x2(g, x + b * in_n, dy + b * out_n + oy * row_n, oy, dx + b * in_n);
        return;
    }
    if (g->sh >= g->kh) {
        /* Output rows own disjoint input rows: split over rows too. */
#pragma omp parallel for collapse(2) schedule(static) if (batch * out_n > PAR_MIN)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t oy = 0; oy < g->oh; oy++)
                maxpool_bwd_row(g, x + b * in_n, dy + b * out_n + oy * row_n, oy, dx + b * in_n);
        return;
    }
#pragma omp parallel for schedule(static) if (batch * out_n > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            maxpool_bwd_row(g, x + b * in_n, dy + b * out_n + oy * row_n, oy, dx + b * in_n);
}

/* ---- average pool -------------------------------------------------------- */

static void avgpool_row_2x2(const ct_pool2d_geom *g, const float *restrict xs, int64_t oy, float *restrict y)
{
    const int64_t C = g->c, W = g->w;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        const float *restrict a = xs + ((2 * oy) * W + 2 * ox) * C, *restrict b = a + C;
        const float *restrict c = a + W * C, *restrict d = c + C;
        float *restrict yo = y + ox * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ch++) yo[ch] = (((a[ch] + b[ch]) + c[ch]) + d[ch]) * 0.25f;
    }
}

void ct_op_avgpool2d_fwd(const ct_pool2d_geom *g, int64_t batch, const float *x, float *y)
{
    const int64_t C = g->c, W = g->w, in_n = g->h * W * C, row_n = g->ow * C, out_n = g->oh * row_n;
    const int fast = is_2x2(g);
#pragma omp parallel for collapse(2) schedule(static) if (batch * out_n > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *xs = x + b * in_n;
            if (fast) {
                avgpool_row_2x2(g, xs, oy, y + b * out_n + oy * row_n);
                continue;
            }
            for (int64_t ox = 0; ox < g->ow; ox++) {
                window wd = window_at(g, oy, ox);
                float *restrict yo = y + b * out_n + oy * row_n + ox * C;
                memset(yo, 0, sizeof(float) * (size_t)C);
                for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                    for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                        const float *restrict xp = xs + (iy * W + ix) * C;
#pragma omp simd
                        for (int64_t ch = 0; ch < C; ch++) yo[ch] += xp[ch];
                    }
                float inv = 1.0f / (float)((wd.y1 - wd.y0) * (wd.x1 - wd.x0));
#pragma omp simd
                for (int64_t ch = 0; ch < C; ch++) yo[ch] *= inv;
            }
        }
}

static void avgpool_bwd_row(const ct_pool2d_geom *g, const float *restrict d, int64_t oy, float *restrict dxs)
{
    const int64_t C = g->c, W = g->w;
    for (int64_t ox = 0; ox < g->ow; ox++) {
        window wd = window_at(g, oy, ox);
        float inv = 1.0f / (float)((wd.y1 - wd.y0) * (wd.x1 - wd.x0));
        const float *restrict dyo = d + ox * C;
        for (int64_t iy = wd.y0; iy < wd.y1; iy++)
            for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                float *restrict dp = dxs + (iy * W + ix) * C;
#pragma omp simd
                for (int64_t ch = 0; ch < C; ch++) dp[ch] += dyo[ch] * inv;
            }
    }
}

void ct_op_avgpool2d_bwd(const ct_pool2d_geom *g, int64_t batch, const float *dy, float *dx)
{
    const int64_t in_n = g->h * g->w * g->c, row_n = g->ow * g->c, out_n = g->oh * row_n;
    if (g->sh >= g->kh) {
#pragma omp parallel for collapse(2) schedule(static) if (batch * out_n > PAR_MIN)
        for (int64_t b = 0; b < batch; b++)
            for (int64_t oy = 0; oy < g->oh; oy++) avgpool_bwd_row(g, dy + b * out_n + oy * row_n, oy, dx + b * in_n);
        return;
    }
#pragma omp parallel for schedule(static) if (batch * out_n > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < g->oh; oy++) avgpool_bwd_row(g, dy + b * out_n + oy * row_n, oy, dx + b * in_n);
}

/* ---- global pools -------------------------------------------------------- */

void ct_op_global_avgpool_fwd(int64_t batch, int64_t hw, int64_t c, const float *x, float *y)
{
    float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if (batch * hw * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++) {
        float *restrict yo = y + b * c;
        const float *xs = x + b * hw * c;
        memset(yo, 0, sizeof(float) * (size_t)c);
        for (int64_t i = 0; i < hw; i++) {
            const float *restrict xp = xs + i * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yo[ch] += xp[ch];
        }
#pragma omp simd
        for (int64_t ch = 0; ch < c; ch++) yo[ch] *= inv;
    }
}

void ct_op_global_avgpool_bwd(int64_t batch, int64_t hw, int64_t c, const float *dy, float *dx)
{
    float inv = 1.0f / (float)hw;
#pragma omp parallel for collapse(2) schedule(static) if (batch * hw * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < hw; i++) {
            const float *restrict d = dy + b * c;
            float *restrict dp = dx + (b * hw + i) * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) dp[ch] += d[ch] * inv;
        }
}

void ct_op_global_maxpool_fwd(int64_t batch, int64_t hw, int64_t c, const float *x, float *y)
{
#pragma omp parallel for schedule(static) if (batch * hw * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++) {
        float *restrict yo = y + b * c;
        const float *xs = x + b * hw * c;
        memcpy(yo, xs, sizeof(float) * (size_t)c);
        for (int64_t i = 1; i < hw; i++) {
            const float *restrict xp = xs + i * c;
#pragma omp simd
            for (int64_t ch = 0; ch < c; ch++) yo[ch] = xp[ch] > yo[ch] ? xp[ch] : yo[ch];
        }
    }
}

/* tf.reduce_max's gradient (math_grad.py _MinOrMaxGrad): every cell equal
 * to the maximum gets dy / (number of such cells). */
void ct_op_global_maxpool_bwd(int64_t batch, int64_t hw, int64_t c, const float *x, const float *y,
                              const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if (batch * hw * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t c0 = 0; c0 < c; c0 += MAXPOOL_BLOCK) {
            const int64_t nc = c - c0 < MAXPOOL_BLOCK ? c - c0 : MAXPOOL_BLOCK;
            const float *restrict yo = y + b * c + c0;
            int32_t count[MAXPOOL_BLOCK];
            fbits g[MAXPOOL_BLOCK];
            for (int64_t ch = 0; ch < nc; ch++) count[ch] = 0;
            for (int64_t i = 0; i < hw; i++) {
                const float *restrict xp = x + (b * hw + i) * c + c0;
#pragma omp simd
                for (int64_t ch = 0; ch < nc; ch++) count[ch] += xp[ch] == yo[ch];
            }
            for (int64_t ch = 0; ch < nc; ch++) g[ch].f = count[ch] ? dy[b * c + c0 + ch] / (float)count[ch] : 0.0f;
            for (int64_t i = 0; i < hw; i++) {
                const float *restrict xp = x + (b * hw + i) * c + c0;
                float *restrict dp = dx + (b * hw + i) * c + c0;
#pragma omp simd
                for (int64_t ch = 0; ch < nc; ch++) {
                    fbits r;
                    r.i = g[ch].i & -(int32_t)(xp[ch] == yo[ch]);
                    dp[ch] += r.f;
                }
            }
        }
    }
}

/* ---- zero padding -------------------------------------------------------- */

void ct_op_zero_pad2d_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int top, int bottom, int left,
                          int right, const float *x, float *y)
{
    const int64_t oh = h + top + bottom, ow = w + left + right, row = ow * c;
#pragma omp parallel for collapse(2) schedule(static) if (batch * oh * row > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < oh; oy++) {
            float *yr = y + (b * oh + oy) * row;
            int64_t iy = oy - top;
            if (iy < 0 || iy >= h) {
                memset(yr, 0, sizeof(float) * (size_t)row);
                continue;
            }
            memset(yr, 0, sizeof(float) * (size_t)(left * c));
            memcpy(yr + left * c, x + (b * h + iy) * w * c, sizeof(float) * (size_t)(w * c));
            memset(yr + (left + w) * c, 0, sizeof(float) * (size_t)(right * c));
        }
}

void ct_op_zero_pad2d_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int top, int bottom, int left,
                          int right, const float *dy, float *dx)
{
    const int64_t oh = h + top + bottom, row = (w + left + right) * c, n = w * c;
#pragma omp parallel for collapse(2) schedule(static) if (batch * h * n > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t iy = 0; iy < h; iy++) {
            const float *restrict d = dy + (b * oh + iy + top) * row + left * c;
            float *restrict dr = dx + (b * h + iy) * n;
#pragma omp simd
            for (int64_t i = 0; i < n; i++) dr[i] += d[i];
        }
}

/* ---- upsampling ---------------------------------------------------------- */

void ct_op_upsample2d_nearest_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                  const float *x, float *y)
{
    const int64_t ow = w * fw, row = ow * c;
#pragma omp parallel for collapse(2) schedule(static) if (batch * h * fh * row > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t iy = 0; iy < h; iy++) {
            const float *xr = x + (b * h + iy) * w * c;
            float *yr = y + (b * h + iy) * fh * row;
            for (int64_t ix = 0; ix < w; ix++)
                for (int k = 0; k < fw; k++) memcpy(yr + (ix * fw + k) * c, xr + ix * c, sizeof(float) * (size_t)c);
            for (int k = 1; k < fh; k++) memcpy(yr + k * row, yr, sizeof(float) * (size_t)row);
        }
}

void ct_op_upsample2d_nearest_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                  const float *dy, float *dx)
{
    const int64_t row = w * fw * c;
#pragma omp parallel for collapse(2) schedule(static) if (batch * h * fh * row > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t iy = 0; iy < h; iy++) {
            const float *dr = dy + (b * h + iy) * fh * row;
            float *dxr = dx + (b * h + iy) * w * c;
            for (int64_t ix = 0; ix < w; ix++) {
                float *restrict dp = dxr + ix * c;
                for (int ky = 0; ky < fh; ky++)
                    for (int kx = 0; kx < fw; kx++) {
                        const float *restrict d = dr + ky * row + (ix * fw + kx) * c;
#pragma omp simd
                        for (int64_t ch = 0; ch < c; ch++) dp[ch] += d[ch];
                    }
            }
        }
}

/* TF's ResizeBilinear source coordinate with half-pixel centres, computed
 * in float as TF does (scale = in / out). */
typedef struct lerp1 {
    int64_t lo, hi;
    float t;
} lerp1;

static inline lerp1 lerp_at(int64_t o, int64_t in, float scale)
{
    float s = ((float)o + 0.5f) * scale - 0.5f;
    float f = floorf(s);
    lerp1 r = {max64((int64_t)f, 0), min64((int64_t)ceilf(s), in - 1), s - f};
    return r;
}

void ct_op_upsample2d_bilinear_fwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                   const float *x, float *y)
{
    const int64_t oh = h * fh, ow = w * fw;
    const float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
#pragma omp parallel for collapse(2) schedule(static) if (batch * oh * ow * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < oh; oy++) {
            lerp1 ly = lerp_at(oy, h, sy);
            const float *top = x + (b * h + ly.lo) * w * c, *bot = x + (b * h + ly.hi) * w * c;
            float *yr = y + (b * oh + oy) * ow * c;
            for (int64_t ox = 0; ox < ow; ox++) {
                lerp1 lx = lerp_at(ox, w, sx);
                const float *restrict tl = top + lx.lo * c, *restrict tr = top + lx.hi * c;
                const float *restrict bl = bot + lx.lo * c, *restrict br = bot + lx.hi * c;
                float *restrict yo = yr + ox * c;
#pragma omp simd
                for (int64_t ch = 0; ch < c; ch++) {
                    float t = tl[ch] + (tr[ch] - tl[ch]) * lx.t;
                    float u = bl[ch] + (br[ch] - bl[ch]) * lx.t;
                    yo[ch] = t + (u - t) * ly.t;
                }
            }
        }
}

void ct_op_upsample2d_bilinear_bwd(int64_t batch, int64_t h, int64_t w, int64_t c, int fh, int fw,
                                   const float *dy, float *dx)
{
    const int64_t oh = h * fh, ow = w * fw;
    const float sy = (float)h / (float)oh, sx = (float)w / (float)ow;
    /* Neighbouring output rows share input rows: split over samples. */
#pragma omp parallel for schedule(static) if (batch * oh * ow * c > PAR_MIN)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t oy = 0; oy < oh; oy++) {
            lerp1 ly = lerp_at(oy, h, sy);
            float *top = dx + (b * h + ly.lo) * w * c, *bot = dx + (b * h + ly.hi) * w * c;
            const float *dr = dy + (b * oh + oy) * ow * c;
            for (int64_t ox = 0; ox < ow; ox++) {
                lerp1 lx = lerp_at(ox, w, sx);
                const float *d = dr + ox * c;
                float wtl = (1 - ly.t) * (1 - lx.t), wtr = (1 - ly.t) * lx.t;
                float wbl = ly.t * (1 - lx.t), wbr = ly.t * lx.t;
                /* The four corners may coincide at the border: no restrict. */
                float *tl = top + lx.lo * c, *tr = top + lx.hi * c, *bl = bot + lx.lo * c, *br = bot + lx.hi * c;
                for (int64_t ch = 0; ch < c; ch++) {
                    tl[ch] += d[ch] * wtl;
                    tr[ch] += d[ch] * wtr;
                    bl[ch] += d[ch] * wbl;
                    br[ch] += d[ch] * wbr;
                }
            }
        }
}
