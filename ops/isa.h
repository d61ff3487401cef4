/* The instruction sets the kernels choose between at run time.
 *
 *   CT_ISA_GENERIC  portable C (compiled for the baseline x86-64 or any
 *                   other target) and OpenBLAS
 *   CT_ISA_AVX2     AVX2 + FMA, 8 floats per vector
 *   CT_ISA_AVX512   AVX-512F, 16 floats per vector
 *
 * ct_isa_active() is the best one the CPU has (CPUID), unless the
 * environment variable CT_ISA=generic|avx2|avx512 asks for a lower one (a
 * request above what the CPU has gives the best it has), or a test or
 * benchmark called ct_isa_force. Every kernel family with SIMD paths
 * (convolutions, pooling, BatchNormalization, activations, elementwise
 * and optimizer loops) follows it, so one switch compares the paths. */
#ifndef CT_ISA_H
#define CT_ISA_H

typedef enum ct_isa { CT_ISA_GENERIC = 0, CT_ISA_AVX2 = 1, CT_ISA_AVX512 = 2, CT_ISA_COUNT } ct_isa;

/* The best instruction set of this CPU. */
ct_isa ct_isa_cpu(void);
/* The one the kernels use now: min(cpu, CT_ISA, forced). */
ct_isa ct_isa_active(void);
/* Use `isa` (capped at ct_isa_cpu()) from now on; CT_ISA_COUNT returns to
 * the default. Returns the previous active one. Not thread-safe: call it
 * between kernel calls (tests, benchmarks). */
ct_isa ct_isa_force(ct_isa isa);
/* "generic", "avx2", "avx512"; ct_isa_parse returns CT_ISA_COUNT for an
 * unknown name. */
const char *ct_isa_name(ct_isa isa);
ct_isa ct_isa_parse(const char *name);

#endif
