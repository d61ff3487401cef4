/* binary16 conversion: a portable C path and an F16C path that must agree
 * bit for bit (see fp16.h). */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "fp16.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CT_F16C 1
#include <immintrin.h>
#else
#define CT_F16C 0
#endif

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t ct_f16_from_f32(float f)
{
    uint32_t u = bits_of(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) /* NaN: quiet it and keep the top 9 payload bits, as F16C does */
        return (uint16_t)(sign | 0x7e00u | ((u >> 13) & 0x3ffu));
    if (u >= 0x47800000u) /* >= 65536 (and infinity): infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (u < 0x38800000u) {
        /* Below 2^-14 the half is subnormal: adding 0.5 puts its 10 bits
         * at the bottom of the float's mantissa, and the float addition
         * itself rounds to nearest even. */
        float magic = float_of(126u << 23); /* 0.5 */
        return (uint16_t)(sign | (uint16_t)(bits_of(float_of(u) + magic) - (126u << 23)));
    }
    /* Normal: rebias the exponent and round the 13 dropped bits to nearest
     * even; a carry out of the mantissa correctly bumps the exponent (up
     * to infinity for 65520 <= |f| < 65536). */
    uint32_t odd = (u >> 13) & 1u;
    u += 0xc8000000u /* (15 - 127) << 23 */ + 0xfffu + odd;
    return (uint16_t)(sign | (uint16_t)(u >> 13));
}

float ct_f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 31) /* infinity or NaN; F16C quiets a signalling NaN */
        return float_of(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e != 0) return float_of(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0) return float_of(sign);
    e = 113; /* subnormal half: normalise */
    do {
        m <<= 1;
        e--;
    } while (!(m & 0x400u));
    return float_of(sign | (e << 23) | ((m & 0x3ffu) << 13));
}

void ct_f16_pack_portable(uint16_t *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = ct_f16_from_f32(src[i]);
}

void ct_f16_unpack_portable(float *dst, const uint16_t *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] = ct_f32_from_f16(src[i]);
}

#if CT_F16C
/* The target attribute lets these two functions use F16C without building
 * the library for it; the tails use the portable path (same bits). */
__attribute__((target("avx,f16c"))) static void pack_f16c(uint16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    ct_f16_pack_portable(dst + i, src + i, n - i);
}

__attribute__((target("avx,f16c"))) static void unpack_f16c(float *dst, const uint16_t *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    ct_f16_unpack_portable(dst + i, src + i, n - i);
}
#endif

int ct_f16_hw_available(void)
{
#if CT_F16C
    /* CPUID leaf 1: ECX bits 27-29 are OSXSAVE, AVX, F16C (clang 14's
     * __builtin_cpu_supports does not know "f16c"). */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c >> 27 & 1) || !(c >> 28 & 1) || !(c >> 29 & 1)) return 0; /* OSXSAVE, AVX, F16C */
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); /* the OS saves the YMM state */
    return (lo & 6) == 6;
#else
    return 0;
#endif
}

void ct_f16_pack(uint16_t *dst, const float *src, int64_t n)
{
#if CT_F16C
    if (ct_f16_hw_available()) {
        pack_f16c(dst, src, n);
        return;
    }
#endif
    ct_f16_pack_portable(dst, src, n);
}

void ct_f16_unpack(float *dst, const uint16_t *src, int64_t n)
{
#if CT_F16C
    if (ct_f16_hw_available()) {
        unpack_f16c(dst, src, n);
        return;
    }
#endif
    ct_f16_unpack_portable(dst, src, n);
}
