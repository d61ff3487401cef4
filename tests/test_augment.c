/* Tests of data/augment: every geometric case uses a fixed ct_transform
 * and compares with values worked out by hand; the random draws are
 * checked for determinism, ranges and flip rates. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "augment.h"
#include "ct_test.h"
#include "rng.h"

#define MAXN 4096

static float img[MAXN], scratch[MAXN], ref[MAXN];

/* v(y, x, k) = 10*y + x + 100*k: bilinear reproduces it exactly inside. */
static void fill_ramp(float *x, int h, int w, int c)
{
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int k = 0; k < c; k++) x[((size_t)y * w + i) * c + k] = (float)(10 * y + i + 100 * k);
}

static void fill_random(float *x, size_t n, uint64_t seed)
{
    ct_rng r = ct_rng_make(seed, CT_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = 4.0f * ct_rng_uniform(&r, i) - 2.0f;
}

static float at(const float *x, int w, int c, int y, int i, int k) { return x[((size_t)y * w + i) * c + k]; }

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static ct_transform ident(void)
{
    ct_transform t;
    ct_transform_identity(&t);
    return t;
}

static ct_augment_options opts(ct_fill_mode mode, float cval)
{
    ct_augment_options o;
    ct_augment_defaults(&o);
    o.fill_mode = mode;
    o.cval = cval;
    return o;
}

static void test_defaults_and_identity(void)
{
    ct_augment_options o;
    ct_augment_defaults(&o);
    CHECK(o.rescale == 1.0 && o.zoom_lo == 1.0 && o.zoom_hi == 1.0);
    CHECK(o.fill_mode == CT_FILL_NEAREST && o.interpolation == CT_INTERP_BILINEAR);
    CHECK(!ct_augment_is_random(&o));
    o.crop_padding = 4;
    CHECK(ct_augment_is_random(&o));
    ct_augment_defaults(&o);
    o.zoom_lo = 0.9;
    CHECK(ct_augment_is_random(&o));
    ct_augment_defaults(&o);
    o.rescale = 0.5; /* not random */
    CHECK(!ct_augment_is_random(&o));

    /* identity transform and all-off sample: bit-identical */
    ct_augment_defaults(&o);
    fill_random(img, 5 * 7 * 3, 1);
    memcpy(ref, img, sizeof img);
    ct_transform t = ident();
    ct_augment_apply(&o, &t, 5, 7, 3, img, scratch);
    CHECK(same_bits(img, ref, 5 * 7 * 3));
    ct_augment_sample(&o, 3, 11, 5, 7, 3, img, scratch);
    CHECK(same_bits(img, ref, 5 * 7 * 3));
    ct_augment_draw(&o, 3, 11, 5, 7, &t);
    CHECK(t.theta == 0 && t.tx == 0 && t.ty == 0 && t.shear == 0 && t.zx == 1 && t.zy == 1 &&
          !t.flip_h && !t.flip_v && t.channel_shift == 0 && t.brightness == 1 && t.crop_y == 0 &&
          t.crop_x == 0);

    /* zoom exactly 1 with the other factors 0 skips the resample */
    t = ident();
    t.zx = 1.0;
    t.zy = 1.0;
    ct_augment_apply(&o, &t, 5, 7, 3, img, scratch);
    CHECK(same_bits(img, ref, 5 * 7 * 3));
}

static void test_flips(void)
{
    const int h = 3, w = 4, c = 2;
    ct_augment_options o = opts(CT_FILL_NEAREST, 0);
    fill_ramp(img, h, w, c);
    ct_transform t = ident();
    t.flip_h = 1;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int k = 0; k < c; k++) ok &= at(img, w, c, y, i, k) == (float)(10 * y + (w - 1 - i) + 100 * k);
    CHECK_MSG(ok, "horizontal flip reverses the columns");

    fill_ramp(img, h, w, c);
    t = ident();
    t.flip_v = 1;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    ok = 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int k = 0; k < c; k++) ok &= at(img, w, c, y, i, k) == (float)(10 * (h - 1 - y) + i + 100 * k);
    CHECK_MSG(ok, "vertical flip reverses the rows");

    fill_ramp(img, h, w, c);
    t.flip_h = 1;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    CHECK(at(img, w, c, 0, 0, 1) == 100 + 10 * 2 + 3 && at(img, w, c, 2, 3, 0) == 0);
}

/* One row a b c d = 1 2 3 4 (two rows so the y axis is exercised too),
 * shifted by tx columns; expect[] is the first row. */
static void check_shift(ct_fill_mode mode, double tx, const float expect[4], const char *what)
{
    const int h = 2, w = 4, c = 3;
    ct_augment_options o = opts(mode, -7.0f);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int k = 0; k < c; k++) img[(y * w + i) * c + k] = (float)(i + 1 + 10 * k + 100 * y);
    ct_transform t = ident();
    t.tx = tx;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int k = 0; k < c; k++) {
                float e = expect[i] == -7.0f ? -7.0f : expect[i] + 10 * k + 100 * y;
                ok &= at(img, w, c, y, i, k) == e;
            }
    CHECK_MSG(ok, "%s: got %g %g %g %g", what, at(img, w, c, 0, 0, 0), at(img, w, c, 0, 1, 0),
              at(img, w, c, 0, 2, 0), at(img, w, c, 0, 3, 0));
}

static void test_integer_shift_fill_modes(void)
{
    /* tx = -2: output column x reads input column x - 2 (content moves right) */
    const float nearest_r[4] = {1, 1, 1, 2};   /* a a | a b */
    const float constant_r[4] = {-7, -7, 1, 2}; /* k k | a b */
    const float reflect_r[4] = {2, 1, 1, 2};   /* b a | a b */
    const float wrap_r[4] = {3, 4, 1, 2};      /* c d | a b */
    check_shift(CT_FILL_NEAREST, -2, nearest_r, "nearest, shift right 2");
    check_shift(CT_FILL_CONSTANT, -2, constant_r, "constant, shift right 2");
    check_shift(CT_FILL_REFLECT, -2, reflect_r, "reflect, shift right 2");
    check_shift(CT_FILL_WRAP, -2, wrap_r, "wrap, shift right 2");
    /* tx = +2: content moves left */
    const float nearest_l[4] = {3, 4, 4, 4};
    const float constant_l[4] = {3, 4, -7, -7};
    const float reflect_l[4] = {3, 4, 4, 3};
    const float wrap_l[4] = {3, 4, 1, 2};
    check_shift(CT_FILL_NEAREST, 2, nearest_l, "nearest, shift left 2");
    check_shift(CT_FILL_CONSTANT, 2, constant_l, "constant, shift left 2");
    check_shift(CT_FILL_REFLECT, 2, reflect_l, "reflect, shift left 2");
    check_shift(CT_FILL_WRAP, 2, wrap_l, "wrap, shift left 2");
    /* far out: reflect period 2n (a b c d d c b a), wrap period n */
    const float reflect_far[4] = {4, 4, 3, 2}; /* x - 5: -5 -4 -3 -2 -> d d c b */
    const float wrap_far[4] = {4, 1, 2, 3};    /* -5 -4 -3 -2 -> d a b c */
    check_shift(CT_FILL_REFLECT, -5, reflect_far, "reflect, shift right 5");
    check_shift(CT_FILL_WRAP, -5, wrap_far, "wrap, shift right 5");
}

static void test_vertical_shift(void)
{
    const int h = 4, w = 3, c = 1;
    ct_augment_options o = opts(CT_FILL_CONSTANT, 0.5f);
    fill_ramp(img, h, w, c);
    ct_transform t = ident();
    t.ty = 1; /* output row y reads input row y + 1 */
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) ok &= at(img, w, c, y, i, 0) == (y < 3 ? (float)(10 * (y + 1) + i) : 0.5f);
    CHECK_MSG(ok, "height shift moves rows");
}

static void test_rotation_90(void)
{
    const int n = 5, c = 3;
    ct_augment_options o = opts(CT_FILL_CONSTANT, -99.0f);
    for (int dir = -1; dir <= 1; dir += 2) {
        fill_random(img, (size_t)n * n * c, 7);
        memcpy(ref, img, sizeof(float) * n * n * c);
        ct_transform t = ident();
        t.theta = 90.0 * dir;
        ct_augment_apply(&o, &t, n, n, c, img, scratch);
        double err = 0;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                for (int k = 0; k < c; k++) {
                    /* +90: out(y, x) = in(x, n-1-y); -90: out(y, x) = in(n-1-x, y) */
                    float e = dir > 0 ? at(ref, n, c, x, n - 1 - y, k) : at(ref, n, c, n - 1 - x, y, k);
                    double d = fabs(at(img, n, c, y, x, k) - e);
                    err = d > err ? d : err;
                }
        CHECK_MSG(err <= 1e-5, "rotation %+d degrees: max error %g", 90 * dir, err);
    }
    /* 180 degrees with 'constant': sin(pi) = 1.2e-16 puts some sources at
     * -1e-16, which must still read the border pixel, not cval */
    fill_random(img, (size_t)n * n * c, 9);
    memcpy(ref, img, sizeof(float) * n * n * c);
    ct_transform t = ident();
    t.theta = 180;
    ct_augment_apply(&o, &t, n, n, c, img, scratch);
    double err = 0;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            for (int k = 0; k < c; k++)
                err = fmax(err, fabs(at(img, n, c, y, x, k) - at(ref, n, c, n - 1 - y, n - 1 - x, k)));
    CHECK_MSG(err <= 1e-5, "rotation 180 degrees: max error %g", err);

    /* four quarter turns return the image */
    fill_random(img, (size_t)n * n * c, 8);
    memcpy(ref, img, sizeof(float) * n * n * c);
    t = ident();
    t.theta = 90;
    for (int i = 0; i < 4; i++) ct_augment_apply(&o, &t, n, n, c, img, scratch);
    err = 0;
    for (int i = 0; i < n * n * c; i++) err = fmax(err, fabs(img[i] - ref[i]));
    CHECK(err <= 1e-5);
}

static void test_zoom(void)
{
    const int n = 4;
    ct_augment_options o = opts(CT_FILL_NEAREST, 0);
    /* zoom 2: source = 2*(out - 1.5) + 1.5 = -1.5, 0.5, 2.5, 4.5 per axis;
     * on the ramp (10y + x) with edge clamping: 0, 0.5, 2.5, 3 */
    const float z2[4] = {0, 0.5f, 2.5f, 3};
    fill_ramp(img, n, n, 1);
    ct_transform t = ident();
    t.zx = 2;
    t.zy = 2;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    int ok = 1;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) ok &= fabsf(img[y * n + x] - (10 * z2[y] + z2[x])) <= 1e-5f;
    CHECK_MSG(ok, "zoom 2 (zoom out): row 0 = %g %g %g %g", img[0], img[1], img[2], img[3]);
    CHECK_NEAR(img[1 * n + 1], 5.5, 1e-5); /* (0.5, 0.5): mean of 0, 1, 10, 11 */

    /* zoom 0.5: source = 0.5*(out - 1.5) + 1.5 = 0.75, 1.25, 1.75, 2.25 */
    const float zh[4] = {0.75f, 1.25f, 1.75f, 2.25f};
    fill_ramp(img, n, n, 1);
    t.zx = 0.5;
    t.zy = 0.5;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    ok = 1;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) ok &= fabsf(img[y * n + x] - (10 * zh[y] + zh[x])) <= 1e-5f;
    CHECK_MSG(ok, "zoom 0.5 (zoom in): row 0 = %g %g %g %g", img[0], img[1], img[2], img[3]);

    /* zx alone scales columns only */
    fill_ramp(img, n, n, 1);
    t.zx = 2;
    t.zy = 1;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    ok = 1;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) ok &= fabsf(img[y * n + x] - (10 * y + z2[x])) <= 1e-5f;
    CHECK_MSG(ok, "zx scales columns");

    /* a non-linear image: zoom 0.5 reads (0.75, 0.75) = bilinear of 4 pixels */
    const float v[16] = {0, 8, 1, 5, 4, 2, 9, 3, 7, 6, 2, 1, 3, 3, 8, 0};
    memcpy(img, v, sizeof v);
    t.zx = 0.5;
    t.zy = 0.5;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    /* rows 0,1 cols 0,1 weights (.25*.25, .25*.75, .75*.25, .75*.75) */
    double e = 0.0625 * 0 + 0.1875 * 8 + 0.1875 * 4 + 0.5625 * 2;
    CHECK_NEAR(img[0], e, 1e-5);
}

static void test_interpolation(void)
{
    const int h = 2, w = 5, c = 3;
    ct_augment_options o = opts(CT_FILL_NEAREST, 0);
    fill_random(img, (size_t)h * w * c, 21);
    memcpy(ref, img, sizeof(float) * h * w * c);
    ct_transform t = ident();
    t.tx = 0.5; /* bilinear: the mean of the two neighbours */
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                int x1 = x + 1 < w ? x + 1 : w - 1;
                float e = 0.5f * (at(ref, w, c, y, x, k) + at(ref, w, c, y, x1, k));
                ok &= fabsf(at(img, w, c, y, x, k) - e) <= 1e-6f;
            }
    CHECK_MSG(ok, "half-pixel shift = mean of neighbours");

    o.interpolation = CT_INTERP_NEAREST;
    memcpy(img, ref, sizeof(float) * h * w * c);
    t.tx = 0.6; /* rounds to the next column */
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) ok &= at(img, w, c, y, x, k) == at(ref, w, c, y, x + 1 < w ? x + 1 : w - 1, k);
    CHECK_MSG(ok, "nearest interpolation, shift 0.6");

    memcpy(img, ref, sizeof(float) * h * w * c);
    t.tx = -0.4; /* rounds back to the same column */
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    CHECK(same_bits(img, ref, (size_t)h * w * c));

    o.fill_mode = CT_FILL_CONSTANT;
    o.cval = 9;
    memcpy(img, ref, sizeof(float) * h * w * c);
    t.tx = 1.4;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    CHECK(at(img, w, c, 0, 2, 1) == at(ref, w, c, 0, 3, 1) && at(img, w, c, 1, 0, 2) == at(ref, w, c, 1, 1, 2));
    /* sources 4.4 and 5.4 lie outside [0, 4]: cval, as scipy's 'constant' */
    CHECK(at(img, w, c, 1, 3, 0) == 9.0f && at(img, w, c, 0, 4, 2) == 9.0f);
}

static void test_channel_shift_and_brightness(void)
{
    const int h = 2, w = 2, c = 3;
    ct_augment_options o = opts(CT_FILL_NEAREST, 0);
    const float v[12] = {0.1f, 0.5f, 0.9f, 0.2f, 0.3f, 0.4f, 0.6f, 0.7f, 0.8f, 0.0f, 1.0f, 0.5f};
    memcpy(img, v, sizeof v);
    ct_transform t = ident();
    t.channel_shift = 0.3;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= img[i] == fminf(v[i] + 0.3f, 1.0f);
    CHECK_MSG(ok, "channel shift +0.3 clipped to max 1.0");
    CHECK(img[10] == 1.0f && img[2] == 1.0f && img[0] == 0.1f + 0.3f);

    memcpy(img, v, sizeof v);
    t.channel_shift = -0.25;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    ok = 1;
    for (int i = 0; i < 12; i++) ok &= img[i] == fmaxf(v[i] - 0.25f, 0.0f);
    CHECK_MSG(ok, "channel shift -0.25 clipped to min 0");

    memcpy(img, v, sizeof v);
    t = ident();
    t.brightness = 1.5;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    ok = 1;
    for (int i = 0; i < 12; i++) ok &= img[i] == v[i] * 1.5f;
    CHECK_MSG(ok, "brightness 1.5 multiplies");
}

static void test_crop(void)
{
    const int h = 4, w = 5, c = 2;
    ct_augment_options o = opts(CT_FILL_CONSTANT, 0);
    o.crop_padding = 2;
    fill_ramp(img, h, w, c);
    ct_transform t = ident();
    t.crop_y = -1; /* window top-left (1, 4) in the padded image */
    t.crop_x = 2;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    int ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                int sy = y - 1, sx = x + 2;
                float e = (sy < 0 || sx >= w) ? 0.0f : (float)(10 * sy + sx + 100 * k);
                ok &= at(img, w, c, y, x, k) == e;
            }
    CHECK_MSG(ok, "crop with zero padding, offsets (-1, +2)");
    /* a few by hand */
    CHECK(at(img, w, c, 0, 0, 0) == 0 && at(img, w, c, 1, 0, 0) == 2 && at(img, w, c, 3, 2, 1) == 124 &&
          at(img, w, c, 2, 3, 0) == 0);

    o.fill_mode = CT_FILL_NEAREST;
    fill_ramp(img, h, w, c);
    t.crop_y = 2;
    t.crop_x = -2;
    ct_augment_apply(&o, &t, h, w, c, img, scratch);
    ok = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sy = y + 2 > h - 1 ? h - 1 : y + 2, sx = x - 2 < 0 ? 0 : x - 2;
            ok &= at(img, w, c, y, x, 1) == (float)(10 * sy + sx + 100);
        }
    CHECK_MSG(ok, "crop with edge padding, offsets (+2, -2)");

    /* draws: offsets within [-p, p], every value reached */
    int seen[5] = {0};
    o.crop_padding = 2;
    int in_range = 1;
    for (int i = 0; i < 2000; i++) {
        ct_augment_draw(&o, 0, i, h, w, &t);
        in_range &= t.crop_y >= -2 && t.crop_y <= 2 && t.crop_x >= -2 && t.crop_x <= 2;
        if (in_range) seen[t.crop_x + 2]++;
    }
    CHECK(in_range);
    CHECK(seen[0] > 300 && seen[2] > 300 && seen[4] > 300);
}

static void test_combined_matches_sequential(void)
{
    /* shift then zoom in one resample = the matrix product applied by hand:
     * source x = zx*(x - ox) + tx + ox */
    const int n = 6;
    ct_augment_options o = opts(CT_FILL_NEAREST, 0);
    fill_ramp(img, n, n, 1);
    ct_transform t = ident();
    t.tx = 1;
    t.zx = 0.5;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    int ok = 1;
    for (int x = 0; x < n; x++) {
        double sx = 0.5 * (x - 2.5) + 1 + 2.5;
        sx = sx > n - 1 ? n - 1 : sx;
        ok &= fabs(img[2 * n + x] - (20 + sx)) <= 1e-5;
    }
    CHECK_MSG(ok, "T*Z composition");

    /* shear 45: source x = x - sin(45)*(y - oy), source y = cos(45)*(y - oy) + oy */
    fill_ramp(img, n, n, 1);
    t = ident();
    t.shear = 45;
    ct_augment_apply(&o, &t, n, n, 1, img, scratch);
    double s = sqrt(0.5), y = 4, x = 3;
    double sx = x - s * (y - 2.5), sy = s * (y - 2.5) + 2.5;
    CHECK_NEAR(img[4 * n + 3], 10 * sy + sx, 1e-5);
}

static void test_draw(void)
{
    ct_augment_options o;
    ct_augment_defaults(&o);
    o.seed = 42;
    o.rotation_range = 15;
    o.width_shift_range = 0.1;
    o.height_shift_range = 3; /* pixels */
    o.shear_range = 5;
    o.zoom_lo = 0.9;
    o.zoom_hi = 1.2;
    o.horizontal_flip = 1;
    o.vertical_flip = 1;
    o.brightness_lo = 0.5;
    o.brightness_hi = 1.5;
    o.channel_shift_range = 0.2;
    o.crop_padding = 4;
    CHECK(ct_augment_is_random(&o));

    ct_transform a, b;
    ct_augment_draw(&o, 3, 17, 32, 40, &a);
    ct_augment_draw(&o, 3, 17, 32, 40, &b);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    ct_augment_draw(&o, 3, 18, 32, 40, &b);
    CHECK(a.theta != b.theta && a.tx != b.tx && a.zx != b.zx);
    ct_augment_draw(&o, 4, 17, 32, 40, &b);
    CHECK(a.theta != b.theta && a.ty != b.ty);
    o.seed = 43;
    ct_augment_draw(&o, 3, 17, 32, 40, &b);
    CHECK(a.theta != b.theta);
    o.seed = 42;
    /* fixed slots: turning rotation off leaves the other draws alone */
    o.rotation_range = 0;
    ct_augment_draw(&o, 3, 17, 32, 40, &b);
    CHECK(b.theta == 0 && b.tx == a.tx && b.zy == a.zy && b.flip_h == a.flip_h);
    o.rotation_range = 15;

    /* the sample pipeline is deterministic bit for bit */
    fill_random(img, 32 * 40 * 3, 5);
    memcpy(ref, img, sizeof(float) * 32 * 40 * 3);
    ct_augment_sample(&o, 3, 17, 32, 40, 3, img, scratch);
    static float img2[MAXN];
    memcpy(img2, ref, sizeof(float) * 32 * 40 * 3);
    ct_augment_sample(&o, 3, 17, 32, 40, 3, img2, scratch);
    CHECK(same_bits(img, img2, 32 * 40 * 3));
    memcpy(img2, ref, sizeof(float) * 32 * 40 * 3);
    ct_augment_sample(&o, 3, 16, 32, 40, 3, img2, scratch);
    CHECK(!same_bits(img, img2, 32 * 40 * 3));

    /* ranges and rates */
    const int N = 20000;
    int in_range = 1, fh = 0, fv = 0;
    double tmin = 1e9, tmax = -1e9, zmin = 1e9, zmax = -1e9, txmax = 0, tymax = 0, bmin = 1e9, bmax = 0;
    for (int i = 0; i < N; i++) {
        ct_transform t;
        ct_augment_draw(&o, 1, i, 32, 40, &t);
        in_range &= fabs(t.theta) <= 15 && fabs(t.tx) <= 0.1 * 40 && fabs(t.ty) <= 3 && fabs(t.shear) <= 5;
        in_range &= t.zx >= 0.9 && t.zx < 1.2 && t.zy >= 0.9 && t.zy < 1.2;
        in_range &= t.brightness >= 0.5 && t.brightness < 1.5 && fabs(t.channel_shift) <= 0.2;
        in_range &= abs(t.crop_x) <= 4 && abs(t.crop_y) <= 4;
        tmin = fmin(tmin, t.theta);
        tmax = fmax(tmax, t.theta);
        zmin = fmin(zmin, fmin(t.zx, t.zy));
        zmax = fmax(zmax, fmax(t.zx, t.zy));
        txmax = fmax(txmax, fabs(t.tx));
        tymax = fmax(tymax, fabs(t.ty));
        bmin = fmin(bmin, t.brightness);
        bmax = fmax(bmax, t.brightness);
        fh += t.flip_h;
        fv += t.flip_v;
    }
    CHECK(in_range);
    /* the ranges are used (not collapsed): extremes near both ends */
    CHECK(tmin < -14.5 && tmax > 14.5 && zmin < 0.91 && zmax > 1.19);
    CHECK(txmax > 3.9 && tymax > 2.9 && bmin < 0.51 && bmax > 1.49);
    /* flip rate 0.5: 5 sigma = 5*sqrt(N/4) ~ 354 */
    CHECK_MSG(abs(fh - N / 2) < 354, "horizontal flips %d of %d", fh, N);
    CHECK_MSG(abs(fv - N / 2) < 354, "vertical flips %d of %d", fv, N);
    /* flips drawn independently of each other: both ~ N/4 */
    int both = 0;
    for (int i = 0; i < N; i++) {
        ct_transform t;
        ct_augment_draw(&o, 1, i, 32, 40, &t);
        both += t.flip_h && t.flip_v;
    }
    CHECK_MSG(abs(both - N / 4) < 310, "both flips %d of %d", both, N);

    /* flips off -> never */
    o.horizontal_flip = 0;
    int any = 0;
    for (int i = 0; i < 200; i++) {
        ct_transform t;
        ct_augment_draw(&o, 1, i, 32, 40, &t);
        any |= t.flip_h;
    }
    CHECK(!any);
}

static void test_standardize(void)
{
    ct_augment_options o;
    ct_augment_defaults(&o);
    const float v[6] = {1, 2, 3, 4, 5, 6}; /* 3 pixels x 2 channels */
    memcpy(img, v, sizeof v);
    o.rescale = 0.5;
    ct_augment_standardize(&o, 3, 2, img);
    CHECK(img[0] == 0.5f && img[5] == 3.0f);

    /* samplewise: mean 3.5, population std sqrt(35/12) */
    memcpy(img, v, sizeof v);
    o.rescale = 1;
    o.samplewise_center = 1;
    ct_augment_standardize(&o, 3, 2, img);
    CHECK(img[0] == -2.5f && img[5] == 2.5f);
    memcpy(img, v, sizeof v);
    o.samplewise_std_normalization = 1;
    ct_augment_standardize(&o, 3, 2, img);
    double sd = sqrt(35.0 / 12.0) + 1e-6;
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= fabs(img[i] - (v[i] - 3.5) / sd) <= 1e-6;
    CHECK_MSG(ok, "samplewise centre + std");
    /* std alone divides by the std around the mean, without centring */
    memcpy(img, v, sizeof v);
    o.samplewise_center = 0;
    ct_augment_standardize(&o, 3, 2, img);
    CHECK_NEAR(img[1], 2 / sd, 1e-6);

    /* featurewise, after rescale */
    const float mean[2] = {1.0f, 2.0f}, std[2] = {0.5f, 4.0f};
    ct_augment_defaults(&o);
    o.rescale = 2;
    o.featurewise_center = 1;
    o.featurewise_std_normalization = 1;
    o.mean = mean;
    o.std = std;
    memcpy(img, v, sizeof v);
    ct_augment_standardize(&o, 3, 2, img);
    ok = 1;
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 2; k++)
            ok &= fabs(img[p * 2 + k] - (2 * v[p * 2 + k] - mean[k]) / (std[k] + 1e-6)) <= 1e-5;
    CHECK_MSG(ok, "featurewise centre + std");
    CHECK_NEAR(img[3], (8 - 2) / 4.000001, 1e-6);
    o.featurewise_std_normalization = 0;
    memcpy(img, v, sizeof v);
    ct_augment_standardize(&o, 3, 2, img);
    CHECK(img[0] == 1.0f && img[1] == 2.0f && img[4] == 9.0f);
}

static void test_feature_stats(void)
{
    ct_feature_stats s;
    CHECK(ct_feature_stats_init(&s, 0) == CT_ERR_USAGE);
    CHECK(ct_feature_stats_init(&s, 3) == CT_OK);
    s.rescale = 1.0 / 255;
    const int samples = 50, pixels = 64, c = 3;
    static float data[50 * 64 * 3];
    ct_rng r = ct_rng_make(9, CT_RNG_TEST, 1);
    for (int i = 0; i < samples * pixels * c; i++)
        data[i] = (float)(int)(256 * ct_rng_uniform(&r, (uint64_t)i)) * (i % 3 == 1 ? 0.5f : 1.0f);
    for (int i = 0; i < samples; i++) ct_feature_stats_add(&s, data + (size_t)i * pixels * c, pixels);
    CHECK(s.count == (int64_t)samples * pixels);
    float mean[3], std[3];
    ct_feature_stats_finish(&s, mean, std);
    int ok = 1;
    for (int k = 0; k < c; k++) {
        /* two-pass double reference on the rescaled values */
        double m = 0, q = 0;
        int64_t n = 0;
        for (int i = k; i < samples * pixels * c; i += c, n++) m += (double)(data[i] * (float)(1.0 / 255));
        m /= (double)n;
        for (int i = k; i < samples * pixels * c; i += c) {
            double d = (double)(data[i] * (float)(1.0 / 255)) - m;
            q += d * d;
        }
        double sd = sqrt(q / (double)n);
        ok &= fabs(mean[k] - m) <= 1e-6 && fabs(std[k] - sd) <= 1e-6;
        if (!ok) fprintf(stderr, "channel %d: mean %g vs %g, std %g vs %g\n", k, mean[k], m, std[k], sd);
    }
    CHECK_MSG(ok, "feature stats match a two-pass double reference");
    CHECK(std[1] < std[0] * 0.6); /* channel 1 was halved */

    /* same samples in the same order -> bit-identical */
    ct_feature_stats s2;
    CHECK(ct_feature_stats_init(&s2, 3) == CT_OK);
    s2.rescale = 1.0 / 255;
    ct_feature_stats_add(&s2, data, 10 * pixels); /* batching does not matter either here */
    for (int i = 10; i < samples; i++) ct_feature_stats_add(&s2, data + (size_t)i * pixels * c, pixels);
    float mean2[3], std2[3];
    ct_feature_stats_finish(&s2, mean2, std2);
    CHECK(fabsf(mean2[0] - mean[0]) <= 1e-6f && fabsf(std2[2] - std[2]) <= 1e-6f);
    ct_feature_stats_free(&s2);
    CHECK(ct_feature_stats_init(&s2, 3) == CT_OK);
    s2.rescale = 1.0 / 255;
    for (int i = 0; i < samples; i++) ct_feature_stats_add(&s2, data + (size_t)i * pixels * c, pixels);
    ct_feature_stats_finish(&s2, mean2, std2);
    CHECK(memcmp(mean, mean2, sizeof mean) == 0 && memcmp(std, std2, sizeof std) == 0);
    ct_feature_stats_free(&s2);
    ct_feature_stats_free(&s);
    ct_feature_stats_free(NULL);

    /* constant channel: std 1; no data: mean 0 std 1 */
    CHECK(ct_feature_stats_init(&s, 2) == CT_OK);
    ct_feature_stats_finish(&s, mean, std);
    CHECK(mean[0] == 0 && std[1] == 1);
    const float flat[4] = {3, 1, 3, 2};
    ct_feature_stats_add(&s, flat, 2);
    ct_feature_stats_finish(&s, mean, std);
    CHECK(mean[0] == 3 && std[0] == 1 && mean[1] == 1.5f && std[1] == 0.5f);
    ct_feature_stats_free(&s);
}

static void test_random_transform_sane(void)
{
    /* Full random pipeline on a constant image with nearest fill: every
     * resample of a constant is the constant (weights sum to 1). */
    ct_augment_options o;
    ct_augment_defaults(&o);
    o.seed = 3;
    o.rotation_range = 40;
    o.width_shift_range = 0.2;
    o.height_shift_range = 0.2;
    o.shear_range = 20;
    o.zoom_lo = 0.8;
    o.zoom_hi = 1.2;
    o.horizontal_flip = 1;
    o.vertical_flip = 1;
    const int reps = 40;
    int ok = 1;
    for (int m = 0; m < 4; m++) {
        o.fill_mode = (ct_fill_mode)m;
        o.cval = 0.75f;
        for (int i = 0; i < reps; i++) {
            for (int j = 0; j < 9 * 11 * 3; j++) img[j] = 0.75f;
            ct_augment_sample(&o, 0, i, 9, 11, 3, img, scratch);
            for (int j = 0; j < 9 * 11 * 3; j++) ok &= fabsf(img[j] - 0.75f) <= 1e-6f;
        }
    }
    CHECK_MSG(ok, "a constant image stays constant under every fill mode");
}

int main(void)
{
    test_defaults_and_identity();
    test_flips();
    test_integer_shift_fill_modes();
    test_vertical_shift();
    test_rotation_90();
    test_zoom();
    test_interpolation();
    test_channel_shift_and_brightness();
    test_crop();
    test_combined_matches_sequential();
    test_draw();
    test_standardize();
    test_feature_stats();
    test_random_transform_sane();
    return ct_test_report("test_augment");
}
