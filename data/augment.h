/* Image augmentation: the ImageDataGenerator transforms of tf.keras
 * (FORMATS.md section 5), as pure functions on one HWC float image.
 *
 * A pipeline worker calls ct_augment_sample() per sample: it draws the
 * sample's random transform from the counter-based RNG keyed by
 * (seed, CT_RNG_AUGMENT, epoch, sample index), applies it in place and
 * standardises. Nothing here allocates per sample, keeps state or touches
 * globals, so any number of threads may call it at once; the result is a
 * pure function of (options, epoch, index, input image).
 *
 * Order per sample (FORMATS 5.2): one combined affine resample (rotation,
 * shift, shear, zoom; inverse mapping like scipy.ndimage.affine_transform,
 * centre dim/2 - 0.5), channel shift, horizontal flip, vertical flip,
 * brightness, random crop with padding (ours; not in Keras), then
 * standardize (rescale, samplewise, featurewise).
 *
 * Coordinates: x is the column, y the row. width_shift_range moves columns
 * and height_shift_range rows (the intended meaning; FORMATS 5.3), zx
 * scales columns and zy rows. The affine matrix is built in (x, y) order
 * as Keras >= 2.9 does, so for square images with symmetric ranges the
 * distributions equal Keras's exactly.
 *
 * Where we differ from Keras, on purpose:
 *  - draws use fixed slots per sample (index*16 + k), so turning one
 *    transform on does not change the others' values;
 *  - a shift range is always a float range U(-v, v) (no int/list forms);
 *  - brightness is x *= factor (no PIL round trip through uint8);
 *  - fill 'wrap' has period n (abcd|abcd|abcd, as Keras documents it);
 *    scipy's legacy 'wrap' that Keras calls uses period n - 1;
 *  - the bilinear taps are extended one by one with the fill mode; with
 *    'nearest' this equals scipy, with 'reflect' it differs from scipy only
 *    within half a pixel of the border;
 *  - 'constant' treats source coordinates within 1e-4 px of the border as
 *    inside (scipy returns cval for -1e-16, which a 90-degree rotation
 *    produces);
 *  - featurewise statistics are taken after rescale (see ct_feature_stats).
 */
#ifndef CT_AUGMENT_H
#define CT_AUGMENT_H

#include <stdint.h>

#include "../core/status.h"

typedef enum { CT_FILL_NEAREST, CT_FILL_CONSTANT, CT_FILL_REFLECT, CT_FILL_WRAP } ct_fill_mode;
typedef enum { CT_INTERP_BILINEAR, CT_INTERP_NEAREST } ct_interp;

typedef struct ct_augment_options {
    uint64_t seed;
    double rotation_range;                 /* degrees, theta ~ U(-r, r) */
    double width_shift_range, height_shift_range; /* < 1: fraction of the size; >= 1: pixels; U(-v, v) */
    double shear_range;                    /* degrees, U(-s, s) */
    double zoom_lo, zoom_hi;               /* zoom_range z gives [1-z, 1+z]; [1,1] = off; zx, zy drawn independently */
    int horizontal_flip, vertical_flip;    /* each with p = 0.5 */
    double brightness_lo, brightness_hi;   /* both 0 = off; factor ~ U(lo, hi), x *= factor */
    double channel_shift_range;            /* one U(-c, c) added to all channels, clipped to the image's [min, max] before the shift */
    ct_fill_mode fill_mode;
    float cval;                            /* the fill value of CT_FILL_CONSTANT */
    ct_interp interpolation;
    int crop_padding;                      /* CIFAR random crop: pad p >= 0 pixels (fill_mode/cval), crop a random HxW window; 0 = off */
    double rescale;                        /* multiplier after augmentation; 1 = none (0 also means none, as Keras's None) */
    int samplewise_center, samplewise_std_normalization;
    int featurewise_center, featurewise_std_normalization;
    const float *mean, *std;               /* featurewise: c floats each, not owned; NULL skips that step */
} ct_augment_options;

/* Everything off: rescale 1, zoom [1, 1], nearest fill, cval 0, bilinear. */
void ct_augment_defaults(ct_augment_options *o);

/* 1 when any random transform is on (a sample then depends on epoch and
 * index), else 0. */
int ct_augment_is_random(const ct_augment_options *o);

/* One sample's transform. theta and shear in degrees; tx shifts columns
 * and ty rows, in pixels, in the inverse-mapping sense of Keras (the output
 * at column x reads the input near column x + tx); zx, zy scale the
 * sampling coordinates (> 1 zooms out); brightness is a factor (1 = off);
 * crop_y, crop_x place the crop window relative to the unpadded image, in
 * [-crop_padding, crop_padding] (output (y, x) reads input (y + crop_y,
 * x + crop_x), filled outside; 0, 0 = no crop), i.e. the window's top-left
 * in the padded image is (crop_padding + crop_y, crop_padding + crop_x). */
typedef struct ct_transform {
    double theta, tx, ty, shear, zx, zy;
    int flip_h, flip_v;
    double channel_shift, brightness;
    int crop_y, crop_x;
} ct_transform;

/* The identity: zeros, zoom 1, brightness 1. */
void ct_transform_identity(ct_transform *t);

/* The random transform of sample `index` in `epoch` for an h x w image:
 * drawn from ct_rng (o->seed, CT_RNG_AUGMENT, stream = epoch), element
 * index*16 + k, slot k in Keras's draw order: 0 theta, 1 height shift,
 * 2 width shift, 3 shear, 4 zx, 5 zy, 6 flip_h, 7 flip_v, 8 channel shift,
 * 9 brightness, 10 crop_y, 11 crop_x. Transforms that are off get their
 * identity value. */
void ct_augment_draw(const ct_augment_options *o, uint64_t epoch, int64_t index, int h, int w,
                     ct_transform *t);

/* Apply t to one HWC float image x (h*w*c) in place; scratch holds h*w*c
 * floats and must not overlap x. Uses o's fill_mode, cval and
 * interpolation only (t carries the crop offsets). An identity transform
 * leaves x bit-identical. */
void ct_augment_apply(const ct_augment_options *o, const ct_transform *t, int h, int w, int c,
                      float *x, float *scratch);

/* Standardise one sample of n pixels x c channels (n*c floats, HWC):
 * x *= rescale; samplewise: x -= mean(x), x /= std(x) + 1e-6 (over the
 * whole sample, population std, in double); featurewise: x -= mean[ch],
 * x /= std[ch] + 1e-6. */
void ct_augment_standardize(const ct_augment_options *o, int64_t n, int c, float *x);

/* draw + apply + standardize for one h x w x c sample: what a pipeline
 * worker calls. scratch as for ct_augment_apply. */
void ct_augment_sample(const ct_augment_options *o, uint64_t epoch, int64_t index, int h, int w,
                       int c, float *x, float *scratch);

/* Featurewise statistics (Keras's .fit(x_train)): per-channel mean and
 * population std over all pixels of all samples added.
 *
 * The samples are multiplied by `rescale` (a float multiply, as
 * ct_augment_standardize does) before they are counted. Keras computes
 * these statistics on the raw data but standardize() subtracts them after
 * rescale, so with rescale=1/255 its featurewise centring is off by a
 * factor 255; taking them after rescale makes the stored statistics match
 * what standardize sees. Sums are kept in double (each call sums its own
 * pixels first, then adds to the totals), so the result is bit-identical
 * for the same samples added in the same order. */
typedef struct ct_feature_stats {
    int c;
    double *sum, *sumsq; /* c each, owned */
    int64_t count;       /* pixels per channel */
    double rescale;      /* 1 after init; set to the options' rescale */
} ct_feature_stats;

/* CT_ERR_USAGE for c < 1, CT_ERR_NOMEM when allocation fails. */
ct_status ct_feature_stats_init(ct_feature_stats *s, int c);
/* Add `pixels` pixels (pixels*c floats, HWC). */
void ct_feature_stats_add(ct_feature_stats *s, const float *x, int64_t pixels);
/* mean and std: c floats each. No data gives mean 0, std 1; a std of 0
 * becomes 1 (so dividing by it is harmless). */
void ct_feature_stats_finish(const ct_feature_stats *s, float *mean, float *std);
void ct_feature_stats_free(ct_feature_stats *s);

#endif
