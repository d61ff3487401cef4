/* Philox4x32-10 (Salmon et al., SC'11) and the draws built on it. */
#include "rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void ct_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* splitmix64 finaliser: spreads (seed, purpose) over the 64-bit key. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

ct_rng ct_rng_make(uint64_t seed, ct_rng_purpose purpose, uint64_t stream)
{
    ct_rng r;
    uint64_t k = mix64(seed ^ mix64((uint64_t)purpose));
    r.key[0] = (uint32_t)k;
    r.key[1] = (uint32_t)(k >> 32);
    r.stream = stream;
    return r;
}

static void block(const ct_rng *r, uint64_t blk, uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)r->stream,
                       (uint32_t)(r->stream >> 32)};
    ct_philox4x32(r->key, ctr, out);
}

uint32_t ct_rng_u32(const ct_rng *r, uint64_t index)
{
    uint32_t out[4];
    block(r, index >> 2, out);
    return out[index & 3];
}

float ct_rng_uniform(const ct_rng *r, uint64_t index)
{
    return (float)(ct_rng_u32(r, index) >> 8) * (1.0f / 16777216.0f);
}

double ct_rng_uniform_f64(const ct_rng *r, uint64_t index)
{
    uint32_t out[4];
    block(r, index >> 1, out);
    int h = (int)(index & 1) * 2;
    uint64_t bits = ((uint64_t)out[h] << 21) ^ (out[h + 1] >> 11);
    return (double)bits * (1.0 / 9007199254740992.0);
}

double ct_rng_normal(const ct_rng *r, uint64_t index)
{
    double u1 = ct_rng_uniform_f64(r, 2 * index);
    double u2 = ct_rng_uniform_f64(r, 2 * index + 1);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ct_rng_below(const ct_rng *r, uint64_t index, uint64_t n)
{
    /* 53-bit uniform times n: bias below 2^-53 * n, negligible for data sizes. */
    uint64_t v = (uint64_t)(ct_rng_uniform_f64(r, index) * (double)n);
    return v >= n ? n - 1 : v;
}

void ct_rng_fill_uniform(const ct_rng *r, uint64_t index0, float lo, float hi, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = lo + (hi - lo) * ct_rng_uniform(r, index0 + (uint64_t)i);
}

void ct_rng_fill_normal(const ct_rng *r, uint64_t index0, float mean, float stddev, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)(mean + stddev * ct_rng_normal(r, index0 + (uint64_t)i));
}

void ct_rng_permutation(const ct_rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ct_rng_below(r, (uint64_t)i, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
