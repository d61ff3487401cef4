/* A small separable data set for model tests: 4 features, 3 classes; the
 * class of sample i is i % 3 and its feature of that index is raised by
 * `shift` over normal noise of deviation `noise`. Deterministic in seed. */
#ifndef CT_TEST_BLOBS_H
#define CT_TEST_BLOBS_H

#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "rng.h"

static inline void make_blobs(ct_dataset *d, int64_t n, uint64_t seed, float noise, float shift)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->x_shape = ct_shape1(4);
    d->y_shape = ct_shape1(1);
    d->x_size = 4;
    d->y_size = 1;
    d->num_classes = 3;
    d->x = malloc(sizeof(float) * (size_t)(n * 4));
    d->y = malloc(sizeof(float) * (size_t)n);
    ct_rng r = ct_rng_make(seed, CT_RNG_TEST, 1);
    for (int64_t i = 0; i < n; i++) {
        int cls = (int)(i % 3);
        for (int k = 0; k < 4; k++)
            d->x[i * 4 + k] = (float)ct_rng_normal(&r, (uint64_t)(i * 4 + k)) * noise + (k == cls ? shift : 0.0f);
        d->y[i] = (float)cls;
    }
}

#endif
