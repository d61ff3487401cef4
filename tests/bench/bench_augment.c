/* bench_augment: images per second of ct_augment_sample on one thread,
 * for 32x32x3 CIFAR-sized images and the usual augmentation recipes.
 *
 *   bench_augment [--seconds S] [--size HxWxC]
 *
 * Each case runs for about S seconds (default 2) over a pool of 256
 * distinct random images, one sample index per call (so every call draws a
 * fresh transform), and prints
 *   augment 32x32x3 <case>: N images/s per thread (M us/image)
 * The machine may be shared: compare cases within one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment.h"
#include "rng.h"

#define POOL 256

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct bcase {
    const char *name;
    void (*setup)(ct_augment_options *o);
} bcase;

static void set_flip(ct_augment_options *o) { o->horizontal_flip = 1; }
static void set_shift(ct_augment_options *o) { o->width_shift_range = o->height_shift_range = 0.1; }
static void set_rotation(ct_augment_options *o) { o->rotation_range = 15; }
static void set_zoom(ct_augment_options *o) { o->zoom_lo = 0.9; o->zoom_hi = 1.1; }
static void set_all(ct_augment_options *o)
{
    set_flip(o);
    set_shift(o);
    set_rotation(o);
    set_zoom(o);
}
static void set_crop_flip(ct_augment_options *o)
{
    o->crop_padding = 4;
    o->fill_mode = CT_FILL_CONSTANT;
    o->horizontal_flip = 1;
}
static void set_all_rescale(ct_augment_options *o)
{
    set_all(o);
    o->rescale = 1.0 / 255;
}
static void set_none(ct_augment_options *o) { (void)o; }

static const bcase cases[] = {
    {"flip+shift+rotation+zoom", set_all},
    {"flip", set_flip},
    {"shift 0.1", set_shift},
    {"rotation 15", set_rotation},
    {"zoom 0.1", set_zoom},
    {"crop 4 (constant)+flip", set_crop_flip},
    {"flip+shift+rotation+zoom+rescale", set_all_rescale},
    {"none (copy only)", set_none},
};

int main(int argc, char **argv)
{
    double seconds = 2.0;
    int h = 32, w = 32, c = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc && sscanf(argv[++i], "%dx%dx%d", &h, &w, &c) == 3)
            ;
        else {
            fprintf(stderr, "usage: bench_augment [--seconds S] [--size HxWxC]\n");
            return 2;
        }
    }
    size_t n = (size_t)h * w * c;
    float *pool = malloc(POOL * n * sizeof(float)), *x = malloc(n * sizeof(float)),
          *scratch = malloc(n * sizeof(float));
    if (!pool || !x || !scratch) return 1;
    ct_rng r = ct_rng_make(1, CT_RNG_TEST, 0);
    for (size_t i = 0; i < POOL * n; i++) pool[i] = (float)(int)(256 * ct_rng_uniform(&r, i));

    double sink = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ct_augment_options o;
        ct_augment_defaults(&o);
        o.seed = 7;
        cases[k].setup(&o);
        int64_t done = 0;
        double t0 = now(), t = t0;
        while (t - t0 < seconds) {
            for (int j = 0; j < 1024; j++, done++) {
                memcpy(x, pool + (size_t)(done % POOL) * n, n * sizeof(float));
                ct_augment_sample(&o, 0, done, h, w, c, x, scratch);
                sink += x[done % (int64_t)n];
            }
            t = now();
        }
        double rate = (double)done / (t - t0);
        printf("augment %dx%dx%d %s: %.0f images/s per thread (%.2f us/image)\n", h, w, c, cases[k].name,
               rate, 1e6 / rate);
        fflush(stdout);
    }
    if (sink == 12345.678) printf("%g\n", sink); /* keep the work observable */
    free(pool);
    free(x);
    free(scratch);
    return 0;
}
