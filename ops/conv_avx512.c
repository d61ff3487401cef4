/* The AVX-512 instance of the direct convolution kernels (conv_simd.h),
 * used when the CPU has avx512f. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_VW 16
#define CT_SIMD_FN(name) ct_conv_avx512_##name
#include "conv_simd.h"
#endif
