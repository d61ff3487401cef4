/* Image augmentation (see augment.h for the semantics and where they
 * differ from Keras).
 *
 * The affine resample is the hot loop. Per image the 3x3 matrix is reduced
 * to six doubles (source x and y as affine functions of the output x, y);
 * per output pixel the source coordinate costs two multiply-adds, and when
 * all bilinear taps lie inside the image (almost every pixel) the value is
 * four weighted taps per channel with no fill handling. Pixels whose taps
 * leave the image take the slow path that applies the fill mode per tap.
 * The kernels are instantiated for 1 and 3 channels so the channel loop
 * unrolls. */
#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"

#define CT_DEG2RAD 0.017453292519943295
/* 'constant': source coordinates this close outside the border count as
 * on it (a 90-degree rotation yields -1e-16 where 0 is meant). */
#define CT_BORDER_EPS 1e-4
/* Coordinates are clamped to this before conversion to int (NaN too). */
#define CT_COORD_LIMIT 1e8

void ct_augment_defaults(ct_augment_options *o)
{
    memset(o, 0, sizeof *o);
    o->zoom_lo = 1.0;
    o->zoom_hi = 1.0;
    o->fill_mode = CT_FILL_NEAREST;
    o->cval = 0.0f;
    o->interpolation = CT_INTERP_BILINEAR;
    o->rescale = 1.0;
}

static int zoom_on(const ct_augment_options *o) { return !(o->zoom_lo == 1.0 && o->zoom_hi == 1.0); }
static int brightness_on(const ct_augment_options *o) { return o->brightness_lo != 0.0 || o->brightness_hi != 0.0; }

int ct_augment_is_random(const ct_augment_options *o)
{
    return o->rotation_range != 0.0 || o->width_shift_range != 0.0 || o->height_shift_range != 0.0 ||
           o->shear_range != 0.0 || zoom_on(o) || o->horizontal_flip || o->vertical_flip ||
           brightness_on(o) || o->channel_shift_range != 0.0 || o->crop_padding > 0;
}

void ct_transform_identity(ct_transform *t)
{
    memset(t, 0, sizeof *t);
    t->zx = 1.0;
    t->zy = 1.0;
    t->brightness = 1.0;
}

/* ------------------------------------------------------------------ draw */

/* Keras's np.random.uniform(lo, hi) = lo + (hi - lo) * u. */
static double uniform_in(const ct_rng *r, uint64_t idx, double lo, double hi)
{
    return lo + (hi - lo) * ct_rng_uniform_f64(r, idx);
}

static double draw_shift(const ct_rng *r, uint64_t idx, double range, int size)
{
    if (range == 0.0) return 0.0;
    double v = uniform_in(r, idx, -range, range);
    return fabs(range) < 1.0 ? v * size : v;
}

void ct_augment_draw(const ct_augment_options *o, uint64_t epoch, int64_t index, int h, int w,
                     ct_transform *t)
{
    ct_rng r = ct_rng_make(o->seed, CT_RNG_AUGMENT, epoch);
    uint64_t base = (uint64_t)index * 16u;
    ct_transform_identity(t);
    if (o->rotation_range != 0.0)
        t->theta = uniform_in(&r, base + 0, -o->rotation_range, o->rotation_range);
    t->ty = draw_shift(&r, base + 1, o->height_shift_range, h);
    t->tx = draw_shift(&r, base + 2, o->width_shift_range, w);
    if (o->shear_range != 0.0) t->shear = uniform_in(&r, base + 3, -o->shear_range, o->shear_range);
    if (zoom_on(o)) {
        t->zx = uniform_in(&r, base + 4, o->zoom_lo, o->zoom_hi);
        t->zy = uniform_in(&r, base + 5, o->zoom_lo, o->zoom_hi);
    }
    t->flip_h = o->horizontal_flip && ct_rng_uniform_f64(&r, base + 6) < 0.5;
    t->flip_v = o->vertical_flip && ct_rng_uniform_f64(&r, base + 7) < 0.5;
    if (o->channel_shift_range != 0.0)
        t->channel_shift = uniform_in(&r, base + 8, -o->channel_shift_range, o->channel_shift_range);
    if (brightness_on(o)) t->brightness = uniform_in(&r, base + 9, o->brightness_lo, o->brightness_hi);
    if (o->crop_padding > 0) {
        uint64_t n = 2u * (uint64_t)o->crop_padding + 1u;
        t->crop_y = (int)ct_rng_below(&r, base + 10, n) - o->crop_padding;
        t->crop_x = (int)ct_rng_below(&r, base + 11, n) - o->crop_padding;
    }
}

/* ------------------------------------------------------- affine matrix */

typedef double mat3[3][3];

static void mat_mul(mat3 out, const mat3 a, const mat3 b)
{
    mat3 r;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
    memcpy(out, r, sizeof r);
}

/* Chain the non-trivial factor f onto m (m = m * f), as Keras does. */
static void chain(mat3 m, int *have, const mat3 f)
{
    if (*have)
        mat_mul(m, m, f);
    else
        memcpy(m, f, sizeof(mat3));
    *have = 1;
}

/* The inverse map (source = A * output) in (x = column, y = row)
 * coordinates, centred: C * R * T * Sh * Z * C^-1. aff = {sx = a0 x + a1 y
 * + a2, sy = a3 x + a4 y + a5}. Returns 0 for the identity (no factor). */
static int affine_map(const ct_transform *t, int h, int w, double aff[6])
{
    mat3 m;
    int have = 0;
    if (t->theta != 0.0) {
        double th = t->theta * CT_DEG2RAD, c = cos(th), s = sin(th);
        const mat3 r = {{c, -s, 0}, {s, c, 0}, {0, 0, 1}};
        chain(m, &have, r);
    }
    if (t->tx != 0.0 || t->ty != 0.0) {
        const mat3 sh = {{1, 0, t->tx}, {0, 1, t->ty}, {0, 0, 1}};
        chain(m, &have, sh);
    }
    if (t->shear != 0.0) {
        double s = t->shear * CT_DEG2RAD;
        const mat3 sm = {{1, -sin(s), 0}, {0, cos(s), 0}, {0, 0, 1}};
        chain(m, &have, sm);
    }
    if (t->zx != 1.0 || t->zy != 1.0) {
        const mat3 z = {{t->zx, 0, 0}, {0, t->zy, 0}, {0, 0, 1}};
        chain(m, &have, z);
    }
    if (!have) return 0;
    double ox = w / 2.0 - 0.5, oy = h / 2.0 - 0.5;
    const mat3 c = {{1, 0, ox}, {0, 1, oy}, {0, 0, 1}};
    const mat3 ci = {{1, 0, -ox}, {0, 1, -oy}, {0, 0, 1}};
    mat_mul(m, c, m);
    mat_mul(m, m, ci);
    aff[0] = m[0][0]; aff[1] = m[0][1]; aff[2] = m[0][2];
    aff[3] = m[1][0]; aff[4] = m[1][1]; aff[5] = m[1][2];
    return 1;
}

/* ----------------------------------------------------------- resample */

/* An index outside [0, n) folded back by the fill mode ('constant' is
 * handled by the caller and clamps here). */
static inline int fold_index(long i, int n, ct_fill_mode mode)
{
    if (i >= 0 && i < n) return (int)i;
    if (mode == CT_FILL_REFLECT) {
        long p = 2L * n, m = i % p;
        if (m < 0) m += p;
        return (int)(m < n ? m : p - 1 - m);
    }
    if (mode == CT_FILL_WRAP) {
        long m = i % n;
        return (int)(m < 0 ? m + n : m);
    }
    return i < 0 ? 0 : n - 1;
}

static inline double clamp_coord(double v)
{
    if (!(v > -CT_COORD_LIMIT)) return -CT_COORD_LIMIT; /* NaN too */
    return v < CT_COORD_LIMIT ? v : CT_COORD_LIMIT;
}

/* 'constant': is (sx, sy) inside the image (up to CT_BORDER_EPS)? When it
 * is, clamp it onto the image so the taps stay in range. */
static inline int constant_inside(double *sx, double *sy, int h, int w)
{
    double xm = w - 1, ym = h - 1;
    if (!(*sx >= -CT_BORDER_EPS && *sx <= xm + CT_BORDER_EPS && *sy >= -CT_BORDER_EPS &&
          *sy <= ym + CT_BORDER_EPS))
        return 0;
    *sx = *sx < 0 ? 0 : (*sx > xm ? xm : *sx);
    *sy = *sy < 0 ? 0 : (*sy > ym ? ym : *sy);
    return 1;
}

static inline void fill_pixel(float *o, int c, float v)
{
    for (int k = 0; k < c; k++) o[k] = v;
}

/* The slow path of one bilinear output pixel. */
static inline void bilinear_border(const float *src, float *o, int h, int w, int c, double sx,
                                   double sy, ct_fill_mode mode, float cval)
{
    if (mode == CT_FILL_CONSTANT && !constant_inside(&sx, &sy, h, w)) {
        fill_pixel(o, c, cval);
        return;
    }
    sx = clamp_coord(sx);
    sy = clamp_coord(sy);
    double fx0 = floor(sx), fy0 = floor(sy);
    long x0 = (long)fx0, y0 = (long)fy0;
    float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
    int xa = fold_index(x0, w, mode), xb = fold_index(x0 + 1, w, mode);
    int ya = fold_index(y0, h, mode), yb = fold_index(y0 + 1, h, mode);
    const float *p00 = src + ((size_t)ya * w + xa) * c, *p01 = src + ((size_t)ya * w + xb) * c;
    const float *p10 = src + ((size_t)yb * w + xa) * c, *p11 = src + ((size_t)yb * w + xb) * c;
    float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    for (int k = 0; k < c; k++) o[k] = w00 * p00[k] + w01 * p01[k] + w10 * p10[k] + w11 * p11[k];
}

/* src (h,w,c) -> dst (h,w,c), bilinear, inverse map aff. */
static inline __attribute__((always_inline)) void resample_bilinear(
    const float *src, float *dst, int h, int w, int c, const double aff[6], ct_fill_mode mode,
    float cval)
{
    const double xm = w - 1, ym = h - 1;
    const size_t row = (size_t)w * c;
    for (int y = 0; y < h; y++) {
        double bx = aff[1] * y + aff[2], by = aff[4] * y + aff[5];
        float *o = dst + (size_t)y * row;
        for (int x = 0; x < w; x++, o += c) {
            double sx = aff[0] * x + bx, sy = aff[3] * x + by;
            if (sx >= 0 && sx < xm && sy >= 0 && sy < ym) {
                int x0 = (int)sx, y0 = (int)sy; /* non-negative: truncation is floor */
                float fx = (float)(sx - x0), fy = (float)(sy - y0);
                const float *p = src + (size_t)y0 * row + (size_t)x0 * c, *q = p + row;
                float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
                for (int k = 0; k < c; k++) o[k] = w00 * p[k] + w01 * p[c + k] + w10 * q[k] + w11 * q[c + k];
            } else {
                bilinear_border(src, o, h, w, c, sx, sy, mode, cval);
            }
        }
    }
}

/* Order 0 as scipy: the tap is floor(coordinate + 0.5). */
static inline __attribute__((always_inline)) void resample_nearest(
    const float *src, float *dst, int h, int w, int c, const double aff[6], ct_fill_mode mode,
    float cval)
{
    const double xm = w - 1, ym = h - 1;
    const size_t row = (size_t)w * c;
    for (int y = 0; y < h; y++) {
        double bx = aff[1] * y + aff[2], by = aff[4] * y + aff[5];
        float *o = dst + (size_t)y * row;
        for (int x = 0; x < w; x++, o += c) {
            double sx = aff[0] * x + bx, sy = aff[3] * x + by;
            const float *p;
            if (sx >= 0 && sx <= xm && sy >= 0 && sy <= ym) {
                p = src + (size_t)(int)(sy + 0.5) * row + (size_t)(int)(sx + 0.5) * c;
            } else if (mode == CT_FILL_CONSTANT && !constant_inside(&sx, &sy, h, w)) {
                fill_pixel(o, c, cval);
                continue;
            } else {
                int xi = fold_index((long)floor(clamp_coord(sx) + 0.5), w, mode);
                int yi = fold_index((long)floor(clamp_coord(sy) + 0.5), h, mode);
                p = src + (size_t)yi * row + (size_t)xi * c;
            }
            for (int k = 0; k < c; k++) o[k] = p[k];
        }
    }
}

static void resample(const ct_augment_options *o, const float *src, float *dst, int h, int w, int c,
                     const double aff[6])
{
    ct_fill_mode mode = o->fill_mode;
    float cval = o->cval;
    if (o->interpolation == CT_INTERP_NEAREST) {
        if (c == 3)
            resample_nearest(src, dst, h, w, 3, aff, mode, cval);
        else if (c == 1)
            resample_nearest(src, dst, h, w, 1, aff, mode, cval);
        else
            resample_nearest(src, dst, h, w, c, aff, mode, cval);
    } else {
        if (c == 3)
            resample_bilinear(src, dst, h, w, 3, aff, mode, cval);
        else if (c == 1)
            resample_bilinear(src, dst, h, w, 1, aff, mode, cval);
        else
            resample_bilinear(src, dst, h, w, c, aff, mode, cval);
    }
}

/* ------------------------------------------------- the other transforms */

/* Keras: one intensity for all channels, clipped to the [min, max] the
 * image had before the shift. */
static void channel_shift(float *x, size_t n, float s)
{
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    for (size_t i = 0; i < n; i++) {
        float v = x[i] + s;
        x[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

static void flip_columns(float *x, int h, int w, int c)
{
    for (int y = 0; y < h; y++) {
        float *r = x + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                float t = r[(size_t)a * c + k];
                r[(size_t)a * c + k] = r[(size_t)b * c + k];
                r[(size_t)b * c + k] = t;
            }
    }
}

static void flip_rows(float *x, int h, int w, int c)
{
    size_t row = (size_t)w * c;
    for (int a = 0, b = h - 1; a < b; a++, b--) {
        float *ra = x + (size_t)a * row, *rb = x + (size_t)b * row;
        for (size_t i = 0; i < row; i++) {
            float t = ra[i];
            ra[i] = rb[i];
            rb[i] = t;
        }
    }
}

static inline void border_copy(const ct_augment_options *o, const float *in, float *out, int w, int c,
                               int x, int dx)
{
    if (o->fill_mode == CT_FILL_CONSTANT)
        fill_pixel(out + (size_t)x * c, c, o->cval);
    else
        memcpy(out + (size_t)x * c, in + (size_t)fold_index((long)x + dx, w, o->fill_mode) * c,
               (size_t)c * sizeof(float));
}

/* dst(y, x) = src(y + dy, x + dx) with the fill mode outside: the random
 * crop of the padded image. Rows and the interior column span are copied
 * whole; only the border columns fold per pixel. */
static void crop_shift(const ct_augment_options *o, const float *src, float *dst, int h, int w,
                       int c, int dy, int dx)
{
    const size_t row = (size_t)w * c;
    int lo = dx < 0 ? -dx : 0, hi = dx > 0 ? w - dx : w; /* output columns read in-range */
    if (lo > w) lo = w;
    if (hi < lo) hi = lo;
    for (int y = 0; y < h; y++) {
        float *out = dst + (size_t)y * row;
        long sy = (long)y + dy;
        if (o->fill_mode == CT_FILL_CONSTANT && (sy < 0 || sy >= h)) {
            for (size_t i = 0; i < row; i++) out[i] = o->cval;
            continue;
        }
        const float *in = src + (size_t)fold_index(sy, h, o->fill_mode) * row;
        for (int x = 0; x < lo; x++) border_copy(o, in, out, w, c, x, dx);
        if (hi > lo)
            memcpy(out + (size_t)lo * c, in + (size_t)(lo + dx) * c, (size_t)(hi - lo) * c * sizeof(float));
        for (int x = hi; x < w; x++) border_copy(o, in, out, w, c, x, dx);
    }
}

void ct_augment_apply(const ct_augment_options *o, const ct_transform *t, int h, int w, int c,
                      float *x, float *scratch)
{
    size_t n = (size_t)h * w * c;
    if (n == 0) return;
    double aff[6];
    if (affine_map(t, h, w, aff)) {
        resample(o, x, scratch, h, w, c, aff);
        memcpy(x, scratch, n * sizeof(float));
    }
    if (t->channel_shift != 0.0) channel_shift(x, n, (float)t->channel_shift);
    if (t->flip_h) flip_columns(x, h, w, c);
    if (t->flip_v) flip_rows(x, h, w, c);
    if (t->brightness != 1.0) {
        float f = (float)t->brightness;
        for (size_t i = 0; i < n; i++) x[i] *= f;
    }
    if (t->crop_y != 0 || t->crop_x != 0) {
        memcpy(scratch, x, n * sizeof(float));
        crop_shift(o, scratch, x, h, w, c, t->crop_y, t->crop_x);
    }
}

/* --------------------------------------------------------- standardize */

void ct_augment_standardize(const ct_augment_options *o, int64_t n, int c, float *x)
{
    size_t m = (size_t)n * (size_t)c;
    if (m == 0) return;
    if (o->rescale != 0.0 && o->rescale != 1.0) {
        float r = (float)o->rescale;
        for (size_t i = 0; i < m; i++) x[i] *= r;
    }
    if (o->samplewise_center || o->samplewise_std_normalization) {
        double s = 0;
        for (size_t i = 0; i < m; i++) s += x[i];
        double mean = s / (double)m;
        if (o->samplewise_center) {
            float fm = (float)mean;
            for (size_t i = 0; i < m; i++) x[i] -= fm;
            mean = 0;
            for (size_t i = 0; i < m; i++) mean += x[i];
            mean /= (double)m;
        }
        if (o->samplewise_std_normalization) {
            double ss = 0;
            for (size_t i = 0; i < m; i++) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
            float d = (float)(sqrt(ss / (double)m) + 1e-6);
            for (size_t i = 0; i < m; i++) x[i] /= d;
        }
    }
    if (o->featurewise_center && o->mean) {
        for (int64_t p = 0; p < n; p++)
            for (int k = 0; k < c; k++) x[(size_t)p * c + k] -= o->mean[k];
    }
    if (o->featurewise_std_normalization && o->std) {
        for (int64_t p = 0; p < n; p++)
            for (int k = 0; k < c; k++) x[(size_t)p * c + k] /= o->std[k] + 1e-6f;
    }
}

void ct_augment_sample(const ct_augment_options *o, uint64_t epoch, int64_t index, int h, int w,
                       int c, float *x, float *scratch)
{
    ct_transform t;
    ct_augment_draw(o, epoch, index, h, w, &t);
    ct_augment_apply(o, &t, h, w, c, x, scratch);
    ct_augment_standardize(o, (int64_t)h * w, c, x);
}

/* ----------------------------------------------------- feature stats */

ct_status ct_feature_stats_init(ct_feature_stats *s, int c)
{
    memset(s, 0, sizeof *s);
    if (c < 1) return CT_FAIL(CT_ERR_USAGE, "feature statistics: %d channels, expected at least 1", c);
    s->sum = calloc((size_t)c, sizeof(double));
    s->sumsq = calloc((size_t)c, sizeof(double));
    if (!s->sum || !s->sumsq) {
        ct_feature_stats_free(s);
        return CT_FAIL(CT_ERR_NOMEM, "feature statistics: out of memory for %d channels", c);
    }
    s->c = c;
    s->rescale = 1.0;
    return CT_OK;
}

void ct_feature_stats_add(ct_feature_stats *s, const float *x, int64_t pixels)
{
    const int c = s->c;
    const float r = (float)s->rescale;
    const int scale = s->rescale != 0.0 && s->rescale != 1.0;
    for (int ch = 0; ch < c; ch++) {
        double a = 0, q = 0;
        for (int64_t i = 0; i < pixels; i++) {
            float f = x[(size_t)i * c + ch];
            double v = scale ? (double)(f * r) : (double)f;
            a += v;
            q += v * v;
        }
        s->sum[ch] += a;
        s->sumsq[ch] += q;
    }
    s->count += pixels;
}

void ct_feature_stats_finish(const ct_feature_stats *s, float *mean, float *std)
{
    for (int ch = 0; ch < s->c; ch++) {
        if (s->count <= 0) {
            mean[ch] = 0.0f;
            std[ch] = 1.0f;
            continue;
        }
        double m = s->sum[ch] / (double)s->count;
        double var = s->sumsq[ch] / (double)s->count - m * m;
        float sd = (float)sqrt(var > 0 ? var : 0);
        mean[ch] = (float)m;
        std[ch] = sd > 0 ? sd : 1.0f;
    }
}

void ct_feature_stats_free(ct_feature_stats *s)
{
    if (!s) return;
    free(s->sum);
    free(s->sumsq);
    s->sum = s->sumsq = NULL;
    s->c = 0;
    s->count = 0;
}
