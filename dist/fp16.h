/* IEEE binary16 ("half") conversion for the fp16 wire format of the
 * allreduce. Values are rounded to nearest, ties to even; infinities and
 * NaNs are kept (a NaN stays a NaN, quieted, with the top payload bits);
 * magnitudes of 65520 and more become infinities and magnitudes up to
 * 2^-25 become zeros (halves below 2^-14 are subnormal). Widening back to float is exact.
 *
 * The array functions use the F16C instructions when the CPU has them and
 * a portable C path otherwise; both give the same bits for every input
 * (tests/mpi/test_allreduce.c compares them over all 65536 halves and a
 * sweep of floats), so ranks on different CPUs agree. */
#ifndef CT_FP16_H
#define CT_FP16_H

#include <stdint.h>

/* Scalar conversions (portable C). */
uint16_t ct_f16_from_f32(float f);
float ct_f32_from_f16(uint16_t h);

/* dst[i] = half(src[i]) and dst[i] = float(src[i]) for i < n; dst and src
 * do not overlap. The _portable variants never use F16C (for tests). */
void ct_f16_pack(uint16_t *dst, const float *src, int64_t n);
void ct_f16_unpack(float *dst, const uint16_t *src, int64_t n);
void ct_f16_pack_portable(uint16_t *dst, const float *src, int64_t n);
void ct_f16_unpack_portable(float *dst, const uint16_t *src, int64_t n);

/* 1 when ct_f16_pack/unpack use the F16C instructions on this CPU. */
int ct_f16_hw_available(void);

#endif
