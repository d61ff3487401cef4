/* The counter-based random generator (Philox4x32-10).
 *
 * Every random number in ctrain is a pure function of (seed, purpose,
 * stream, index): initialisation keys the stream by parameter, shuffling by
 * epoch, dropout by (step, layer), augmentation by (epoch, sample). Results
 * therefore do not depend on thread counts or on timing, and a resumed run
 * draws exactly what the uninterrupted run would have drawn. */
#ifndef CT_RNG_H
#define CT_RNG_H

#include <stdint.h>

typedef enum ct_rng_purpose {
    CT_RNG_INIT = 1,
    CT_RNG_SHUFFLE = 2,
    CT_RNG_DROPOUT = 3,
    CT_RNG_AUGMENT = 4,
    CT_RNG_SPLIT = 5,
    CT_RNG_TEST = 6
} ct_rng_purpose;

/* One Philox4x32-10 block: four 32-bit outputs. */
void ct_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

/* A stream: a key (seed, purpose) and a 64-bit stream id; elements are
 * addressed by a 64-bit index, four per block. */
typedef struct ct_rng {
    uint32_t key[2];
    uint64_t stream;
} ct_rng;

ct_rng ct_rng_make(uint64_t seed, ct_rng_purpose purpose, uint64_t stream);

uint32_t ct_rng_u32(const ct_rng *r, uint64_t index);
/* Uniform in [0, 1) with 24 random bits (exactly representable). */
float ct_rng_uniform(const ct_rng *r, uint64_t index);
/* Uniform in [0, 1) as double with 53 bits (uses two 32-bit draws). */
double ct_rng_uniform_f64(const ct_rng *r, uint64_t index);
/* Standard normal (Box-Muller on indices 2i and 2i+1 of a derived stream). */
double ct_rng_normal(const ct_rng *r, uint64_t index);
/* Unbiased integer in [0, n) for n >= 1. */
uint64_t ct_rng_below(const ct_rng *r, uint64_t index, uint64_t n);

/* Fill helpers: out[i] = draw(index0 + i). */
void ct_rng_fill_uniform(const ct_rng *r, uint64_t index0, float lo, float hi, float *out, int64_t n);
void ct_rng_fill_normal(const ct_rng *r, uint64_t index0, float mean, float stddev, float *out, int64_t n);

/* A Fisher-Yates permutation of 0..n-1, keyed by the stream. */
void ct_rng_permutation(const ct_rng *r, int64_t *perm, int64_t n);

#endif
