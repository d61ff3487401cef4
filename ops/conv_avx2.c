/* The AVX2 + FMA instance of the direct convolution kernels
 * (conv_simd.h), used when the CPU has avx2 and fma but not avx512f (or
 * when CT_ISA=avx2 asks for it). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_VW 8
#define CT_SIMD_FN(name) ct_conv_avx2_##name
#include "conv_simd.h"
#endif
