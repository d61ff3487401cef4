/* The direct convolution kernels, written once for any vector width and
 * made into one instance per instruction set by conv_avx512.c (CT_VW 16)
 * and conv_avx2.c (CT_VW 8, AVX2 + FMA), each compiled with its own
 * target attribute and chosen at run time by conv.c. See conv.c for the
 * method (implicit GEMM register tiles, Winograd F(2x2, 3x3)).
 *
 * Before including this file define CT_VW and CT_SIMD_FN(name), the
 * external name of an entry point. Everything else here is static. The
 * sums run in the same order at any vector width and thread count except
 * within a vector, so the instances agree with each other and with the
 * reference within float rounding. */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "conv_internal.h"

#define CT_INLINE static inline __attribute__((always_inline))
#define VW CT_VW

#if CT_VW == 16
/* AVX-512: 32 registers of 16 floats, masks in k registers. */
#define CT_SIMD __attribute__((target("avx512f")))
typedef __m512 vf;
typedef __mmask16 vmask;
#define v_load(p) _mm512_loadu_ps(p)
#define v_loadm(m, p) _mm512_maskz_loadu_ps(m, p)
#define v_store(p, v) _mm512_storeu_ps(p, v)
#define v_storem(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define v_zero() _mm512_setzero_ps()
#define v_set1(x) _mm512_set1_ps(x)
#define v_fmadd(a, b, c) _mm512_fmadd_ps(a, b, c)
#define v_add(a, b) _mm512_add_ps(a, b)
#define v_sub(a, b) _mm512_sub_ps(a, b)
#define v_mul(a, b) _mm512_mul_ps(a, b)
#define v_max(a, b) _mm512_max_ps(a, b)
/* d where y > 0, else 0 */
#define v_relu_sel(y, d) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), d)
static vmask tail_mask(int n) { return (vmask)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* Largest pixel (or row) tile for NB vectors: MR * NB <= 24 accumulators
 * leave room for the NB B-vectors and a broadcast. */
static const int mr_max[5] = {0, 24, 12, 8, 6};
#define NB_MAX 4

/* Instances for every (MR, NB) with MR <= mr_max[NB]; masked last vector
 * always (masks cost nothing here). */
#define CT_K(KIND, ARGS, MR, NB) \
    static void CT_SIMD KIND##_##MR##_##NB(const ARGS *a) { KIND##_kernel(a, MR, NB, 1); }
#define CT_KERNELS(KIND, ARGS)                                                                                   \
    CT_K(KIND, ARGS, 1, 1) CT_K(KIND, ARGS, 2, 1) CT_K(KIND, ARGS, 3, 1) CT_K(KIND, ARGS, 4, 1)                 \
    CT_K(KIND, ARGS, 5, 1) CT_K(KIND, ARGS, 6, 1) CT_K(KIND, ARGS, 7, 1) CT_K(KIND, ARGS, 8, 1)                 \
    CT_K(KIND, ARGS, 9, 1) CT_K(KIND, ARGS, 10, 1) CT_K(KIND, ARGS, 11, 1) CT_K(KIND, ARGS, 12, 1)              \
    CT_K(KIND, ARGS, 13, 1) CT_K(KIND, ARGS, 14, 1) CT_K(KIND, ARGS, 15, 1) CT_K(KIND, ARGS, 16, 1)             \
    CT_K(KIND, ARGS, 17, 1) CT_K(KIND, ARGS, 18, 1) CT_K(KIND, ARGS, 19, 1) CT_K(KIND, ARGS, 20, 1)             \
    CT_K(KIND, ARGS, 21, 1) CT_K(KIND, ARGS, 22, 1) CT_K(KIND, ARGS, 23, 1) CT_K(KIND, ARGS, 24, 1)             \
    CT_K(KIND, ARGS, 1, 2) CT_K(KIND, ARGS, 2, 2) CT_K(KIND, ARGS, 3, 2) CT_K(KIND, ARGS, 4, 2)                 \
    CT_K(KIND, ARGS, 5, 2) CT_K(KIND, ARGS, 6, 2) CT_K(KIND, ARGS, 7, 2) CT_K(KIND, ARGS, 8, 2)                 \
    CT_K(KIND, ARGS, 9, 2) CT_K(KIND, ARGS, 10, 2) CT_K(KIND, ARGS, 11, 2) CT_K(KIND, ARGS, 12, 2)              \
    CT_K(KIND, ARGS, 1, 3) CT_K(KIND, ARGS, 2, 3) CT_K(KIND, ARGS, 3, 3) CT_K(KIND, ARGS, 4, 3)                 \
    CT_K(KIND, ARGS, 5, 3) CT_K(KIND, ARGS, 6, 3) CT_K(KIND, ARGS, 7, 3) CT_K(KIND, ARGS, 8, 3)                 \
    CT_K(KIND, ARGS, 1, 4) CT_K(KIND, ARGS, 2, 4) CT_K(KIND, ARGS, 3, 4) CT_K(KIND, ARGS, 4, 4)                 \
    CT_K(KIND, ARGS, 5, 4) CT_K(KIND, ARGS, 6, 4)                                                               \
    static void (*const KIND##_tab[5][25])(const ARGS *) = {                                                     \
        {0},                                                                                                     \
        {0, KIND##_1_1, KIND##_2_1, KIND##_3_1, KIND##_4_1, KIND##_5_1, KIND##_6_1, KIND##_7_1, KIND##_8_1,      \
         KIND##_9_1, KIND##_10_1, KIND##_11_1, KIND##_12_1, KIND##_13_1, KIND##_14_1, KIND##_15_1, KIND##_16_1,  \
         KIND##_17_1, KIND##_18_1, KIND##_19_1, KIND##_20_1, KIND##_21_1, KIND##_22_1, KIND##_23_1, KIND##_24_1}, \
        {0, KIND##_1_2, KIND##_2_2, KIND##_3_2, KIND##_4_2, KIND##_5_2, KIND##_6_2, KIND##_7_2, KIND##_8_2,      \
         KIND##_9_2, KIND##_10_2, KIND##_11_2, KIND##_12_2},                                                     \
        {0, KIND##_1_3, KIND##_2_3, KIND##_3_3, KIND##_4_3, KIND##_5_3, KIND##_6_3, KIND##_7_3, KIND##_8_3},     \
        {0, KIND##_1_4, KIND##_2_4, KIND##_3_4, KIND##_4_4, KIND##_5_4, KIND##_6_4},                             \
    };
/* The kernel for NB vectors (the last one holding `rem` floats) x MR rows. */
#define KTAB(KIND, rem, NB, MR) KIND##_tab[NB][MR]

#elif CT_VW == 8
/* AVX2 + FMA: 16 registers of 8 floats; masked loads and stores take an
 * integer vector and cost extra (stores most, on AMD), so kernels come in
 * two kinds, with and without a masked last vector. */
#define CT_SIMD __attribute__((target("avx2,fma")))
typedef __m256 vf;
typedef __m256i vmask;
#define v_load(p) _mm256_loadu_ps(p)
#define v_loadm(m, p) _mm256_maskload_ps(p, m)
#define v_store(p, v) _mm256_storeu_ps(p, v)
#define v_storem(p, m, v) _mm256_maskstore_ps(p, m, v)
#define v_zero() _mm256_setzero_ps()
#define v_set1(x) _mm256_set1_ps(x)
#define v_fmadd(a, b, c) _mm256_fmadd_ps(a, b, c)
#define v_add(a, b) _mm256_add_ps(a, b)
#define v_sub(a, b) _mm256_sub_ps(a, b)
#define v_mul(a, b) _mm256_mul_ps(a, b)
#define v_max(a, b) _mm256_max_ps(a, b)
#define v_relu_sel(y, d) _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), d)
static vmask CT_SIMD tail_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* MR * NB <= 12 accumulators, NB B-vectors and a broadcast: 16 registers. */
static const int mr_max[4] = {0, 12, 6, 4};
#define NB_MAX 3

#define CT_K(KIND, ARGS, MR, NB)                                                                    \
    static void CT_SIMD KIND##_##MR##_##NB##_0(const ARGS *a) { KIND##_kernel(a, MR, NB, 0); } \
    static void CT_SIMD KIND##_##MR##_##NB##_1(const ARGS *a) { KIND##_kernel(a, MR, NB, 1); }
#define CT_KERNELS(KIND, ARGS)                                                                                   \
    CT_K(KIND, ARGS, 1, 1) CT_K(KIND, ARGS, 2, 1) CT_K(KIND, ARGS, 3, 1) CT_K(KIND, ARGS, 4, 1)                 \
    CT_K(KIND, ARGS, 5, 1) CT_K(KIND, ARGS, 6, 1) CT_K(KIND, ARGS, 7, 1) CT_K(KIND, ARGS, 8, 1)                 \
    CT_K(KIND, ARGS, 9, 1) CT_K(KIND, ARGS, 10, 1) CT_K(KIND, ARGS, 11, 1) CT_K(KIND, ARGS, 12, 1)              \
    CT_K(KIND, ARGS, 1, 2) CT_K(KIND, ARGS, 2, 2) CT_K(KIND, ARGS, 3, 2) CT_K(KIND, ARGS, 4, 2)                 \
    CT_K(KIND, ARGS, 5, 2) CT_K(KIND, ARGS, 6, 2)                                                               \
    CT_K(KIND, ARGS, 1, 3) CT_K(KIND, ARGS, 2, 3) CT_K(KIND, ARGS, 3, 3) CT_K(KIND, ARGS, 4, 3)                 \
    static void (*const KIND##_tab[2][4][13])(const ARGS *) = {                                                  \
        {{0},                                                                                                    \
         {0, KIND##_1_1_0, KIND##_2_1_0, KIND##_3_1_0, KIND##_4_1_0, KIND##_5_1_0, KIND##_6_1_0, KIND##_7_1_0,   \
          KIND##_8_1_0, KIND##_9_1_0, KIND##_10_1_0, KIND##_11_1_0, KIND##_12_1_0},                              \
         {0, KIND##_1_2_0, KIND##_2_2_0, KIND##_3_2_0, KIND##_4_2_0, KIND##_5_2_0, KIND##_6_2_0},                \
         {0, KIND##_1_3_0, KIND##_2_3_0, KIND##_3_3_0, KIND##_4_3_0}},                                           \
        {{0},                                                                                                    \
         {0, KIND##_1_1_1, KIND##_2_1_1, KIND##_3_1_1, KIND##_4_1_1, KIND##_5_1_1, KIND##_6_1_1, KIND##_7_1_1,   \
          KIND##_8_1_1, KIND##_9_1_1, KIND##_10_1_1, KIND##_11_1_1, KIND##_12_1_1},                              \
         {0, KIND##_1_2_1, KIND##_2_2_1, KIND##_3_2_1, KIND##_4_2_1, KIND##_5_2_1, KIND##_6_2_1},                \
         {0, KIND##_1_3_1, KIND##_2_3_1, KIND##_3_3_1, KIND##_4_3_1}},                                           \
    };
#define KTAB(KIND, rem, NB, MR) KIND##_tab[(rem) < VW][NB][MR]

#else
#error "CT_VW must be 16 or 8"
#endif

/* Splits n vectors into blocks of at most NB_MAX (as even as possible). */
static int vec_block(int nvec)
{
    int blocks = (nvec + NB_MAX - 1) / NB_MAX;
    return (nvec + blocks - 1) / blocks;
}

/* relu_bwd_image of conv.c, four vectors of columns at a time: per 256
 * rows, float sums per column, added in double. */
void CT_SIMD CT_SIMD_FN(relu_bwd_image)(const float *y, const float *dy, float *dz, double *pb, int64_t rows, int f)
{
    for (int c = 0; c < f; c++) pb[c] = 0;
    for (int c0 = 0; c0 < f; c0 += 4 * VW) {
        int nv = (f - c0 + VW - 1) / VW < 4 ? (f - c0 + VW - 1) / VW : 4;
        vmask m[4];
        for (int n = 0; n < nv; n++) m[n] = tail_mask(f - c0 - VW * n);
        for (int64_t r0 = 0; r0 < rows; r0 += 256) {
            int64_t r1 = r0 + 256 < rows ? r0 + 256 : rows;
            vf sum[4] = {v_zero(), v_zero(), v_zero(), v_zero()};
            for (int64_t r = r0; r < r1; r++)
                for (int n = 0; n < nv; n++) {
                    int64_t e = r * f + c0 + VW * n;
                    vf v;
                    if (f - c0 - VW * n >= VW) {
                        v = v_relu_sel(v_load(y + e), v_load(dy + e));
                        v_store(dz + e, v);
                    } else {
                        v = v_relu_sel(v_loadm(m[n], y + e), v_loadm(m[n], dy + e));
                        v_storem(dz + e, m[n], v);
                    }
                    sum[n] = v_add(sum[n], v);
                }
            for (int n = 0; n < nv; n++) {
                float t[VW];
                v_store(t, sum[n]);
                for (int i = 0; i < VW && c0 + VW * n + i < f; i++) pb[c0 + VW * n + i] += t[i];
            }
        }
    }
}

typedef struct fwd_args {
    const float *const *sx;  /* per segment: input at pixel 0 of the row */
    const float *const *sk;  /* per segment: kernel row 0, column 0 */
    int nseg, L;
    int64_t P, F;            /* input stride between pixels; kernel row stride */
    int64_t Z;               /* output row stride (0: F) */
    int64_t xoff, koff;      /* tile's first pixel (floats into sx) and first filter */
    vmask mask;          /* of the block's last vector */
    const float *bias;       /* at koff, or NULL */
    float *z;                /* tile's first output */
    int mode;                /* 0: z = (bias) + sum; 1: z += sum */
    int relu;                /* store max(z, 0) */
} fwd_args;

/* The last vector of a block masked when TAIL (a constant after inlining). */
CT_INLINE CT_SIMD vf load_nb(const float *p, int n, int NB, vmask mask, const int TAIL)
{
    return TAIL && n == NB - 1 ? v_loadm(mask, p) : v_load(p);
}

CT_INLINE CT_SIMD void store_nb(float *p, int n, int NB, vmask mask, vf v, const int TAIL)
{
    if (TAIL && n == NB - 1) v_storem(p, mask, v);
    else v_store(p, v);
}

CT_INLINE CT_SIMD void fwd_kernel(const fwd_args *a, const int MR, const int NB, const int TAIL)
{
    vf acc[24][4];
    const int64_t P = a->P, F = a->F, Z = a->Z ? a->Z : a->F;
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++)
            acc[r][n] = a->mode ? load_nb(a->z + r * Z + VW * n, n, NB, a->mask, TAIL)
                        : a->bias ? load_nb(a->bias + VW * n, n, NB, a->mask, TAIL)
                                  : v_zero();
    for (int s = 0; s < a->nseg; s++) {
        rows4 x;
        rows4_init(&x, a->sx[s] + a->xoff, P, MR);
        const float *k = a->sk[s] + a->koff;
        for (int l = 0; l < a->L; l++, k += F) {
            vf kv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) kv[n] = load_nb(k + VW * n, n, NB, a->mask, TAIL);
            rows4 xs = x;
            rows4_step(&x, MR);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                vf xb = v_set1(rows4_at(&xs, r));
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = v_fmadd(xb, kv[n], acc[r][n]);
            }
        }
    }
    if (a->relu)
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) acc[r][n] = v_max(acc[r][n], v_zero());
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) store_nb(a->z + r * Z + VW * n, n, NB, a->mask, acc[r][n], TAIL);
}

typedef struct bwd_data_args {
    float *const *sdx;       /* per segment: dx (padded) at pixel 0 of the row */
    const float *const *skt; /* per segment: transposed kernel block (F, L) */
    int nseg, L;
    int64_t P, F;            /* dx stride between pixels; dz row stride */
    int64_t xoff, loff;      /* tile's first pixel (floats into sdx); first segment float */
    vmask mask;
    const float *dz;         /* tile's first pixel, filter 0 */
} bwd_data_args;

CT_INLINE CT_SIMD void bwd_data_kernel(const bwd_data_args *a, const int MR, const int NB, const int TAIL)
{
    const int64_t P = a->P, F = a->F, L = a->L;
    for (int s = 0; s < a->nseg; s++) {
        vf acc[24][4];
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) acc[r][n] = v_zero();
        const float *kt = a->skt[s] + a->loff;
        rows4 dz;
        rows4_init(&dz, a->dz, F, MR);
        for (int64_t f = 0; f < F; f++, kt += L) {
            vf kv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) kv[n] = load_nb(kt + VW * n, n, NB, a->mask, TAIL);
            rows4 zs = dz;
            rows4_step(&dz, MR);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                vf zb = v_set1(rows4_at(&zs, r));
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = v_fmadd(zb, kv[n], acc[r][n]);
            }
        }
        /* Windows of neighbouring pixels overlap: add pixel by pixel. */
        float *dx = a->sdx[s] + a->xoff + a->loff;
#pragma GCC unroll 24
        for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) {
                float *d = dx + r * P + VW * n;
                store_nb(d, n, NB, a->mask, v_add(load_nb(d, n, NB, a->mask, TAIL), acc[r][n]), TAIL);
            }
    }
}

typedef struct bwd_w_args {
    const float *x;          /* image (padded when colpad), at the segment's column offset + l0 */
    int64_t rowstride;       /* floats per (padded) input row */
    int row0, rstep, h;      /* input row of output row p: row0 + p * rstep, skipped outside [0, h) */
    int oh, ow;
    int64_t P, F;            /* input stride between pixels; dz and dk row stride */
    int64_t D;               /* dz stride between pixels (0: F) */
    const float *dz;         /* image, at filter f0 */
    float *dk;               /* tile: row l0 of the segment, filter f0 */
    vmask mask;
} bwd_w_args;

CT_INLINE CT_SIMD void bwd_w_kernel(const bwd_w_args *a, const int MR, const int NB, const int TAIL)
{
    vf acc[24][4];
    const int64_t P = a->P, F = a->F;
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) acc[r][n] = load_nb(a->dk + r * F + VW * n, n, NB, a->mask, TAIL);
    for (int p = 0; p < a->oh; p++) {
        int ih = a->row0 + p * a->rstep;
        if (ih < 0 || ih >= a->h) continue;
        const float *x = a->x + ih * a->rowstride;
        const int64_t D = a->D ? a->D : F;
        const float *dz = a->dz + (int64_t)p * a->ow * D;
        for (int q = 0; q < a->ow; q++, x += P, dz += D) {
            vf zv[4];
#pragma GCC unroll 4
            for (int n = 0; n < NB; n++) zv[n] = load_nb(dz + VW * n, n, NB, a->mask, TAIL);
#pragma GCC unroll 24
            for (int r = 0; r < MR; r++) {
                vf xb = v_set1(x[r]);
#pragma GCC unroll 4
                for (int n = 0; n < NB; n++) acc[r][n] = v_fmadd(xb, zv[n], acc[r][n]);
            }
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NB; n++) store_nb(a->dk + r * F + VW * n, n, NB, a->mask, acc[r][n], TAIL);
}



CT_KERNELS(fwd, fwd_args)
CT_KERNELS(bwd_data, bwd_data_args)
CT_KERNELS(bwd_w, bwd_w_args)

static void CT_SIMD avx_fwd_row(const ct_conv2d_geom *g, const plan *pl, const float *img, int p,
                                  const float *k, const float *bias, float *zrow, int flags)
{
    const float *sx[MAX_SEG], *sk[MAX_SEG];
    int nvec = (g->f + VW - 1) / VW, nb = vec_block(nvec);
    int mr = even_tile(g->ow, mr_max[nb]);
    fwd_args a = {.sx = sx, .sk = sk, .L = pl->L, .P = (int64_t)g->sw * g->c, .F = g->f};
    for (int s0 = 0, first = 1; s0 < pl->nseg || first; s0 += MAX_SEG, first = 0) {
        int n = 0;
        for (int s = s0; s < pl->nseg && s < s0 + MAX_SEG; s++) {
            const float *row = seg_row(g, pl, img, s, p);
            if (!row) continue;
            sx[n] = row;
            sk[n++] = k + (int64_t)s * pl->L * g->f;
        }
        a.nseg = n;
        a.mode = (flags & FWD_ACC) || !first;
        a.relu = (flags & FWD_RELU) && s0 + MAX_SEG >= pl->nseg;
        for (int v0 = 0; v0 < nvec; v0 += nb) {
            int vb = nvec - v0 < nb ? nvec - v0 : nb;
            a.koff = (int64_t)v0 * VW;
            int rem = g->f - v0 * VW - (vb - 1) * VW;
            a.mask = tail_mask(rem);
            a.bias = bias ? bias + a.koff : NULL;
            for (int q0 = 0; q0 < g->ow; q0 += mr) {
                int m = g->ow - q0 < mr ? g->ow - q0 : mr;
                a.xoff = (int64_t)q0 * a.P;
                a.z = zrow + (int64_t)q0 * g->f + a.koff;
                KTAB(fwd, rem, vb, m)(&a);
            }
        }
    }
}

/* U[xi] (c, f) = G g G^T for every (c, f), xi = 4 * row + column. */
static void CT_SIMD wino_kernel_transform(const ct_conv2d_geom *g, const float *k, float *u)
{
    const int64_t C = g->c, F = g->f, CF = C * F;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t f0 = 0; f0 < F; f0 += VW) {
            vmask m = tail_mask((int)(F - f0));
            vf w[3][3], a[4][3], h = v_set1(0.5f);
#pragma GCC unroll 16
            for (int i = 0; i < 3; i++)
#pragma GCC unroll 16
                for (int j = 0; j < 3; j++) w[i][j] = v_loadm(m, k + ((i * 3 + j) * C + c) * F + f0);
#pragma GCC unroll 16
            for (int j = 0; j < 3; j++) {
                vf s = v_add(w[0][j], w[2][j]);
                a[0][j] = w[0][j];
                a[1][j] = v_mul(h, v_add(s, w[1][j]));
                a[2][j] = v_mul(h, v_sub(s, w[1][j]));
                a[3][j] = w[2][j];
            }
#pragma GCC unroll 16
            for (int i = 0; i < 4; i++) {
                vf s = v_add(a[i][0], a[i][2]), v[4];
                v[0] = a[i][0];
                v[1] = v_mul(h, v_add(s, a[i][1]));
                v[2] = v_mul(h, v_sub(s, a[i][1]));
                v[3] = a[i][2];
#pragma GCC unroll 16
                for (int j = 0; j < 4; j++) v_storem(u + (i * 4 + j) * CF + c * F + f0, m, v[j]);
            }
        }
}

/* V row i of a patch from its rows transformed along the height (e[j],
 * the 4 columns): B^T along the width, stored VW values c apart. */
CT_INLINE CT_SIMD void wino_in_row(const vf *e, float *vt, int64_t C, vmask m, const int full)
{
    vf v[4] = {v_sub(e[0], e[2]), v_add(e[1], e[2]), v_sub(e[2], e[1]), v_sub(e[1], e[3])};
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        if (full) v_store(vt + j * C, v[j]);
        else v_storem(vt + j * C, m, v[j]);
    }
}

/* B^T d B of one 4x4 patch of VW channels (p: its first pixel in the padded
 * image, rs floats per row), stored VW values c apart. Output rows 1 and 2
 * share their input rows; each output row is made and stored before the
 * next, so the live vectors fit 16 registers. `full` (a constant after
 * inlining): no mask. */
CT_INLINE CT_SIMD void wino_in_patch(const float *p, int64_t rs, int64_t C, vmask m, float *vt, const int full)
{
    vf a[4], b[4];
#define WINO_LD(i, j) (full ? v_load(p + (i) * rs + (j) * C) : v_loadm(m, p + (i) * rs + (j) * C))
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        vf d1 = WINO_LD(1, j), d2 = WINO_LD(2, j);
        a[j] = v_add(d1, d2);
        b[j] = v_sub(d2, d1);
    }
    wino_in_row(a, vt + 4 * C, C, m, full);
    wino_in_row(b, vt + 8 * C, C, m, full);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) a[j] = v_sub(WINO_LD(0, j), WINO_LD(2, j));
    wino_in_row(a, vt, C, m, full);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) a[j] = v_sub(WINO_LD(1, j), WINO_LD(3, j));
    wino_in_row(a, vt + 12 * C, C, m, full);
#undef WINO_LD
}

/* xp = image x (h, w, c) padded as wino_pad_h/w say. */
static void wino_pad_image(const ct_conv2d_geom *g, const float *x, float *xp)
{
    const int64_t C = g->c, hp = wino_pad_h(g), wp = wino_pad_w(g);
    for (int64_t r = 0; r < hp; r++) {
        float *d = xp + r * wp * C;
        int64_t ih = r - g->pt;
        if (ih < 0 || ih >= g->h) {
            memset(d, 0, sizeof(float) * (size_t)(wp * C));
            continue;
        }
        int64_t right = wp - g->pl - g->w;
        memset(d, 0, sizeof(float) * (size_t)(g->pl * C));
        memcpy(d + g->pl * C, x + ih * g->w * C, sizeof(float) * (size_t)(g->w * C));
        if (right > 0) memset(d + (g->pl + g->w) * C, 0, sizeof(float) * (size_t)(right * C));
    }
}

/* V (n, 16, c) (tiles wino_ts(c) apart) = B^T d B for tiles [t0, t0 + n)
 * of the padded image xp (wino_pad_image). */
static void CT_SIMD wino_input_transform(const ct_conv2d_geom *g, const float *xp, int64_t t0, int64_t n, float *v)
{
    const int64_t C = g->c, tw = (g->ow + 1) / 2, rs = wino_pad_w(g) * C;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        const float *p = xp + 2 * ty * rs + 2 * tx * C;
        float *vt = v + t * wino_ts(C);
        for (int64_t c0 = 0; c0 < C; c0 += VW) {
            vmask m = tail_mask((int)(C - c0));
            if (c0 + VW <= C) wino_in_patch(p + c0, rs, C, m, vt + c0, 1);
            else wino_in_patch(p + c0, rs, C, m, vt + c0, 0);
        }
    }
}

/* M[., xi] (n, f) = V[., xi] (n, c) . U[xi] (c, f) for the 16 xi. */
static void CT_SIMD wino_gemms(const ct_conv2d_geom *g, const float *v, const float *u, float *mm, int64_t n)
{
    const int64_t C = g->c, F = g->f;
    int nvec = (g->f + VW - 1) / VW, nb = vec_block(nvec);
    int mr = even_tile((int)n, mr_max[nb]);
#pragma GCC unroll 16
    for (int xi = 0; xi < 16; xi++) {
        const float *sx[1] = {v + xi * C}, *sk[1] = {u + xi * C * F};
        fwd_args a = {.sx = sx, .sk = sk, .nseg = 1, .L = g->c, .P = wino_ts(C), .F = F, .Z = wino_ts(F)};
        for (int v0 = 0; v0 < nvec; v0 += nb) {
            int vb = nvec - v0 < nb ? nvec - v0 : nb;
            a.koff = (int64_t)v0 * VW;
            int rem = g->f - v0 * VW - (vb - 1) * VW;
            a.mask = tail_mask(rem);
            for (int64_t q0 = 0; q0 < n; q0 += mr) {
                int m = n - q0 < mr ? (int)(n - q0) : mr;
                a.xoff = q0 * wino_ts(C);
                a.z = mm + q0 * wino_ts(F) + xi * F + a.koff;
                KTAB(fwd, rem, vb, m)(&a);
            }
        }
    }
}

/* Masked or plain (full: a constant after inlining) load and store. */
CT_INLINE CT_SIMD vf wino_ld(const float *p, vmask m, const int full)
{
    return full ? v_load(p) : v_loadm(m, p);
}

CT_INLINE CT_SIMD void wino_st(float *p, vmask m, vf v, const int full)
{
    if (full) v_store(p, v);
    else v_storem(p, m, v);
}

/* One tile of 16 filters: A^T M A (+ bias, accumulated or ReLU'd), rows x
 * cols outputs (2 x 2 and no mask when full). */
CT_INLINE CT_SIMD void wino_out_tile(const ct_conv2d_geom *g, const float *mt, int64_t ty, int64_t tx, int rows,
                                       int cols, int64_t f0, vmask m, const float *bias, float *z, int flags,
                                       const int full)
{
    const int64_t F = g->f;
    vf r[2][4], y[2][2];
    /* column by column, so that only r stays live (16 registers suffice) */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        vf a0 = wino_ld(mt + j * F + f0, m, full), a1 = wino_ld(mt + (4 + j) * F + f0, m, full);
        vf a2 = wino_ld(mt + (8 + j) * F + f0, m, full), a3 = wino_ld(mt + (12 + j) * F + f0, m, full);
        r[0][j] = v_add(v_add(a0, a1), a2);
        r[1][j] = v_sub(v_sub(a1, a2), a3);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++) {
        y[i][0] = v_add(v_add(r[i][0], r[i][1]), r[i][2]);
        y[i][1] = v_sub(v_sub(r[i][1], r[i][2]), r[i][3]);
    }
    vf b = bias && !(flags & FWD_ACC) ? wino_ld(bias + f0, m, full) : v_zero();
    if (full) rows = cols = 2;
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 16
        for (int j = 0; j < cols; j++) {
            float *o = z + ((2 * ty + i) * g->ow + 2 * tx + j) * F + f0;
            vf val = v_add(y[i][j], (flags & FWD_ACC) ? wino_ld(o, m, full) : b);
            if (flags & FWD_RELU) val = v_max(val, v_zero());
            wino_st(o, m, val, full);
        }
}

/* z tiles [t0, t0 + n) of one image (oh, ow, f) from M: A^T M A (+ bias,
 * accumulated or ReLU'd as flags say), clipped at odd edges. */
static void CT_SIMD wino_output_transform(const ct_conv2d_geom *g, const float *mm, int64_t t0, int64_t n,
                                            const float *bias, float *z, int flags)
{
    const int64_t F = g->f, tw = (g->ow + 1) / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        int rows = 2 * ty + 1 < g->oh ? 2 : 1, cols = 2 * tx + 1 < g->ow ? 2 : 1;
        const float *mt = mm + t * wino_ts(F);
        for (int64_t f0 = 0; f0 < F; f0 += VW) {
            vmask m = tail_mask((int)(F - f0));
            if (rows == 2 && cols == 2 && f0 + VW <= F) wino_out_tile(g, mt, ty, tx, 2, 2, f0, m, bias, z, flags, 1);
            else wino_out_tile(g, mt, ty, tx, rows, cols, f0, m, bias, z, flags, 0);
        }
    }
}

static void CT_SIMD wino_fwd(const ct_conv2d_geom *g, const float *x, const float *k, const float *bias, float *z,
                               int flags, float *scratch)
{
    int64_t B = g->batch, T = wino_tiles(g), tb = wino_tb(g), nblk = (T + tb - 1) / tb, slot = wino_slot(g);
    int64_t in_img = (int64_t)g->h * g->w * g->c, out_img = (int64_t)g->oh * g->ow * g->f;
    float *u = scratch, *slots = scratch + round16(16 * (int64_t)g->c * g->f);
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < B ? nt : (int)B)
    {
        float *v = slots + omp_get_thread_num() * slot, *mm = v + tb * wino_ts(g->c), *xp = mm + tb * wino_ts(g->f);
        wino_kernel_transform(g, k, u);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; b++) {
            wino_pad_image(g, x + b * in_img, xp);
            for (int64_t blk = 0; blk < nblk; blk++) {
                int64_t t0 = blk * tb, n = T - t0 < tb ? T - t0 : tb;
                wino_input_transform(g, xp, t0, n, v);
                wino_gemms(g, v, u, mm, n);
                wino_output_transform(g, mm, t0, n, bias, z + b * out_img, flags);
            }
        }
    }
}

static void CT_SIMD avx_fwd(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k,
                              const float *bias, float *z, int flags, float *scratch)
{
    int64_t B = g->batch, rowz = (int64_t)g->ow * g->f;
    int nt = omp_get_max_threads();
    if (wino_ok(g, VW)) {
        wino_fwd(g, x, k, bias, z, flags, scratch);
        return;
    }
    if (!pl->colpad) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int p = 0; p < g->oh; p++)
                avx_fwd_row(g, pl, x + b * pl->in_img, p, k, bias, z + b * pl->out_img + p * rowz, flags);
    } else if (B >= nt) {
        /* One image per thread at a time, padded into that thread's slot,
         * which stays in its core's cache. */
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            float *img = scratch + omp_get_thread_num() * pl->pimg;
            pad_rows(g, pl, x + b * pl->in_img, img, 0, g->h);
            for (int p = 0; p < g->oh; p++)
                avx_fwd_row(g, pl, img, p, k, bias, z + b * pl->out_img + p * rowz, flags);
        }
    } else {
#pragma omp parallel
        {
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int r = 0; r < g->h; r++) pad_rows(g, pl, x + b * pl->in_img, scratch + b * pl->pimg, r, r + 1);
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int p = 0; p < g->oh; p++)
                    avx_fwd_row(g, pl, scratch + b * pl->pimg, p, k, bias, z + b * pl->out_img + p * rowz, flags);
        }
    }
}

/* Scatter dz of one image into dx rows (padded layout of wp columns). */
static void CT_SIMD avx_bwd_data_image(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *kt,
                                         float *img)
{
    float *sdx[MAX_SEG];
    const float *skt[MAX_SEG];
    int nvec = (pl->L + VW - 1) / VW, nb = vec_block(nvec);
    int mr = even_tile(g->ow, mr_max[nb]);
    bwd_data_args a = {.sdx = sdx, .skt = skt, .L = pl->L, .P = (int64_t)g->sw * g->c, .F = g->f};
    for (int p = 0; p < g->oh; p++)
        for (int s0 = 0; s0 < pl->nseg; s0 += MAX_SEG) {
            int n = 0;
            for (int s = s0; s < pl->nseg && s < s0 + MAX_SEG; s++) {
                const float *row = seg_row(g, pl, img, s, p);
                if (!row) continue;
                sdx[n] = (float *)row;
                skt[n++] = kt + (int64_t)s * pl->L * g->f;
            }
            if (!n) continue;
            a.nseg = n;
            for (int q0 = 0; q0 < g->ow; q0 += mr) {
                int m = g->ow - q0 < mr ? g->ow - q0 : mr;
                a.xoff = (int64_t)q0 * a.P;
                a.dz = dz + ((int64_t)p * g->ow + q0) * g->f;
                for (int v0 = 0; v0 < nvec; v0 += nb) {
                    int vb = nvec - v0 < nb ? nvec - v0 : nb;
                    a.loff = (int64_t)v0 * VW;
                    int rem = pl->L - v0 * VW - (vb - 1) * VW;
                    a.mask = tail_mask(rem);
                    KTAB(bwd_data, rem, vb, m)(&a);
                }
            }
        }
}

static void CT_SIMD avx_bwd_data(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k,
                                   float *dx, float *scratch)
{
    float *kt = scratch, *imgs = scratch + round16(pl->K * g->f);
    const int64_t L = pl->L, F = g->f, C = g->c;
    ct_conv2d_geom g2;
    if (gather_geom(g, &g2, VW)) {
#pragma omp parallel
        flip_kernel(g, k, kt);
        plan pl2 = make_plan(&g2);
        avx_fwd(&g2, &pl2, dz, kt, NULL, dx, FWD_ACC, imgs);
        return;
    }
    /* Scatter form; kt: per segment the (F, L) transpose of its (L, F)
     * kernel block. Padded images go to one slot per thread (<= batch). */
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < g->batch ? nt : (int)g->batch)
    {
#pragma omp for schedule(static)
        for (int s = 0; s < pl->nseg; s++)
            for (int64_t l = 0; l < L; l++)
                for (int64_t o = 0; o < F; o++) kt[(s * F + o) * L + l] = k[(s * L + l) * F + o];
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < g->batch; b++) {
            const float *dzb = dz + b * pl->out_img;
            float *dxb = dx + b * pl->in_img;
            if (!pl->colpad) {
                avx_bwd_data_image(g, pl, dzb, kt, dxb);
                continue;
            }
            float *img = imgs + omp_get_thread_num() * pl->pimg;
            memset(img, 0, sizeof(float) * (size_t)(g->h * pl->wp * C));
            avx_bwd_data_image(g, pl, dzb, kt, img);
            for (int r = 0; r < g->h; r++) {
                const float *src = img + ((int64_t)r * pl->wp + g->pl) * C;
                float *d = dxb + (int64_t)r * g->w * C;
#pragma omp simd
                for (int64_t e = 0; e < g->w * C; e++) d[e] += src[e];
            }
        }
    }
}

static wtiling make_wtiling(const ct_conv2d_geom *g, const plan *pl, int nt)
{
    wtiling w;
    w.nvec = (g->f + VW - 1) / VW;
    w.nb = vec_block(w.nvec);
    w.mr = even_tile(pl->L, mr_max[w.nb]);
    /* At least two tiles per thread: halve the vectors of a tile first
     * (tiles stay equal), then its rows. */
    for (;;) {
        w.nv = (w.nvec + w.nb - 1) / w.nb;
        w.nl = (pl->L + w.mr - 1) / w.mr;
        w.n = (int64_t)pl->nseg * w.nl * w.nv;
        if (w.n >= 2 * nt || (w.nb == 1 && w.mr == 1)) break;
        if (w.nb > 1) {
            w.nb = (w.nb + 1) / 2;
            w.mr = even_tile(pl->L, mr_max[w.nb]);
        } else {
            w.mr = (w.mr + 1) / 2;
        }
    }
    return w;
}

static void CT_SIMD avx_bwd_w_tile(const ct_conv2d_geom *g, const plan *pl, const wtiling *w, int64_t t,
                                     const float *img, const float *dz, float *dk)
{
    int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv % w->nl) * w->mr, s = (int)(t / w->nv / w->nl);
    int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = pl->L - l0 < w->mr ? pl->L - l0 : w->mr;
    int i = pl->merged ? s : s / g->kw, j = pl->merged ? 0 : s % g->kw;
    bwd_w_args a = {
        .x = img + (int64_t)j * g->dw * g->c + l0,
        .rowstride = (int64_t)pl->wp * g->c,
        .row0 = i * g->dh - g->pt, .rstep = g->sh, .h = g->h, .oh = g->oh, .ow = g->ow,
        .P = (int64_t)g->sw * g->c, .F = g->f,
        .dz = dz + v0 * VW,
        .dk = dk + ((int64_t)s * pl->L + l0) * g->f + v0 * VW,
        .mask = tail_mask(g->f - v0 * VW - (nb - 1) * VW),
    };
    KTAB(bwd_w, g->f - v0 * VW - (nb - 1) * VW, nb, mr)(&a);
}

/* Tile-split: the threads own fixed tiles of dk and stream every image
 * for them, so nothing needs reducing; with width padding, the padded
 * batch is made first (the one barrier). Every image passes through every
 * thread's cache. */
static void CT_SIMD bwd_w_tiles(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                  float *dk, float *scratch)
{
    wtiling w = make_wtiling(g, pl, omp_get_max_threads());
    int64_t B = g->batch;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), T = omp_get_num_threads();
        if (pl->colpad) {
#pragma omp for collapse(2) schedule(static)
            for (int64_t b = 0; b < B; b++)
                for (int r = 0; r < g->h; r++) pad_rows(g, pl, x + b * pl->in_img, scratch + b * pl->pimg, r, r + 1);
        }
        int64_t t0, t1;
        wtiles_of_thread(pl, &w, tid, T, &t0, &t1);
        for (int64_t b = 0; b < B; b++) {
            const float *img = pl->colpad ? scratch + b * pl->pimg : x + b * pl->in_img;
            for (int64_t t = t0; t < t1; t++) avx_bwd_w_tile(g, pl, &w, t, img, dz + b * pl->out_img, dk);
        }
    }
}

static void CT_SIMD bwd_w_grouped(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                    float *dk, float *scratch)
{
    wtiling w = make_wtiling(g, pl, 1);
    int64_t B = g->batch, KF = pl->K * g->f, kf16 = round16(KF), ng, per;
    bwd_w_group_shape(B, &ng, &per);
    float *part = scratch, *slots = scratch + ng * kf16;
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < ng ? nt : (int)ng)
    {
        float *slot = slots + omp_get_thread_num() * pl->pimg;
#pragma omp for schedule(dynamic, 1)
        for (int64_t gi = 0; gi < ng; gi++) {
            float *pg = part + gi * kf16;
            memset(pg, 0, sizeof(float) * (size_t)KF);
            for (int64_t b = gi * per; b < B && b < (gi + 1) * per; b++) {
                const float *img = x + b * pl->in_img;
                if (pl->colpad) {
                    pad_rows(g, pl, img, slot, 0, g->h);
                    img = slot;
                }
                for (int64_t t = 0; t < w.n; t++) avx_bwd_w_tile(g, pl, &w, t, img, dz + b * pl->out_img, pg);
            }
        }
#pragma omp for schedule(static)
        for (int64_t e0 = 0; e0 < KF; e0 += 256) {
            int64_t e1 = e0 + 256 < KF ? e0 + 256 : KF;
            for (int64_t e = e0; e < e1; e++) {
                float sum = part[e];
                for (int64_t gi = 1; gi < ng; gi++) sum += part[gi * kf16 + e];
                dk[e] += sum;
            }
        }
    }
}


/* ---- Winograd F(2x2, 3x3) backward-weights --------------------------------
 *
 * With M = V . U per xi and z = A^T M A: dM = A dz A^T per tile (zero
 * beyond odd edges), dU[xi] (c, f) = sum over tiles of V[xi]^T dM[xi], and
 * dkernel += G^T dU G. The sums over tiles run in the bwd_w kernels (a row
 * of n "pixels" that are tiles); images go in the fixed groups of
 * bwd_w_grouped, one partial dU per group, added in group order. */

/* dM of one tile of 16 filters: A dz A^T, zero beyond odd edges. */
CT_INLINE CT_SIMD void wino_grad_tile(const ct_conv2d_geom *g, const float *dz, int64_t ty, int64_t tx, int rows,
                                        int cols, int64_t f0, vmask m, float *o, const int full)
{
    const int64_t F = g->f;
    vf y[2][2], r[4][2];
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 16
        for (int j = 0; j < 2; j++) {
            const float *p = dz + ((2 * ty + i) * g->ow + 2 * tx + j) * F + f0;
            y[i][j] = full || (i < rows && j < cols) ? wino_ld(p, m, full) : v_zero();
        }
#pragma GCC unroll 16
    for (int j = 0; j < 2; j++) {
        r[0][j] = y[0][j];
        r[1][j] = v_add(y[0][j], y[1][j]);
        r[2][j] = v_sub(y[0][j], y[1][j]);
        r[3][j] = v_sub(v_zero(), y[1][j]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        wino_st(o + (i * 4 + 0) * F, m, r[i][0], full);
        wino_st(o + (i * 4 + 1) * F, m, v_add(r[i][0], r[i][1]), full);
        wino_st(o + (i * 4 + 2) * F, m, v_sub(r[i][0], r[i][1]), full);
        wino_st(o + (i * 4 + 3) * F, m, v_sub(v_zero(), r[i][1]), full);
    }
}

/* dM (n, 16, f) for tiles [t0, t0 + n) of one image's dz (oh, ow, f). */
static void CT_SIMD wino_grad_transform(const ct_conv2d_geom *g, const float *dz, int64_t t0, int64_t n,
                                          float *dm)
{
    const int64_t F = g->f, tw = (g->ow + 1) / 2;
    for (int64_t t = 0; t < n; t++) {
        int64_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        int rows = 2 * ty + 1 < g->oh ? 2 : 1, cols = 2 * tx + 1 < g->ow ? 2 : 1;
        float *o = dm + t * wino_ts(F);
        for (int64_t f0 = 0; f0 < F; f0 += VW) {
            vmask m = tail_mask((int)(F - f0));
            if (rows == 2 && cols == 2 && f0 + VW <= F) wino_grad_tile(g, dz, ty, tx, 2, 2, f0, m, o + f0, 1);
            else wino_grad_tile(g, dz, ty, tx, rows, cols, f0, m, o + f0, 0);
        }
    }
}

/* du[xi] (c, f) += V[., xi]^T (c, n) . dM[., xi] (n, f) for the 16 xi. */
static void CT_SIMD wino_bwd_w_gemms(const ct_conv2d_geom *g, const wtiling *w, const float *v, const float *dm,
                                       float *du, int64_t n)
{
    const int64_t C = g->c, F = g->f;
    for (int xi = 0; xi < 16; xi++)
        for (int64_t t = 0; t < w->n; t++) {
            int v0 = (int)(t % w->nv) * w->nb, l0 = (int)(t / w->nv) * w->mr;
            int nb = w->nvec - v0 < w->nb ? w->nvec - v0 : w->nb, mr = g->c - l0 < w->mr ? g->c - l0 : w->mr;
            bwd_w_args a = {
                .x = v + xi * C + l0, .rowstride = 0, .row0 = 0, .rstep = 1, .h = 1, .oh = 1, .ow = (int)n,
                .P = wino_ts(C), .F = F, .D = wino_ts(F), .dz = dm + xi * F + v0 * VW,
                .dk = du + xi * C * F + l0 * F + v0 * VW,
                .mask = tail_mask(g->f - v0 * VW - (nb - 1) * VW),
            };
            KTAB(bwd_w, g->f - v0 * VW - (nb - 1) * VW, nb, mr)(&a);
        }
}

/* dk (3, 3, c, f) += G^T dU G, over c and vectors of f. */
static void CT_SIMD wino_kernel_grad_transform(const ct_conv2d_geom *g, const float *du, float *dk)
{
    const int64_t C = g->c, F = g->f, CF = C * F;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t f0 = 0; f0 < F; f0 += VW) {
            vmask m = tail_mask((int)(F - f0));
            vf u[4][4], b[3][4], h = v_set1(0.5f);
#pragma GCC unroll 16
            for (int xi = 0; xi < 16; xi++) u[xi / 4][xi % 4] = v_loadm(m, du + xi * CF + c * F + f0);
#pragma GCC unroll 16
            for (int j = 0; j < 4; j++) {
                vf s = v_mul(h, v_add(u[1][j], u[2][j]));
                b[0][j] = v_add(u[0][j], s);
                b[1][j] = v_mul(h, v_sub(u[1][j], u[2][j]));
                b[2][j] = v_add(s, u[3][j]);
            }
#pragma GCC unroll 16
            for (int i = 0; i < 3; i++) {
                vf s = v_mul(h, v_add(b[i][1], b[i][2])), r[3];
                r[0] = v_add(b[i][0], s);
                r[1] = v_mul(h, v_sub(b[i][1], b[i][2]));
                r[2] = v_add(s, b[i][3]);
#pragma GCC unroll 16
                for (int j = 0; j < 3; j++) {
                    float *o = dk + ((i * 3 + j) * C + c) * F + f0;
                    v_storem(o, m, v_add(v_loadm(m, o), r[j]));
                }
            }
        }
}

/* dk += dL/dkernel and, when dx is not NULL, dx += dL/dx (the gather
 * form, wino_gather must hold) image by image in the same pass, so that
 * each image of dz is read from memory once. */
static void CT_SIMD wino_bwd_weights(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk,
                                       const float *k, float *dx, float *scratch)
{
    int64_t B = g->batch, T = wino_tiles(g), tb = wino_tb(g), nblk = (T + tb - 1) / tb, ng, per;
    int64_t in_img = (int64_t)g->h * g->w * g->c, out_img = (int64_t)g->oh * g->ow * g->f;
    int64_t U = round16(16 * (int64_t)g->c * g->f);
    bwd_w_group_shape(B, &ng, &per);
    float *part = scratch, *kt = scratch + ng * U, *u2 = kt + round16(9 * (int64_t)g->c * g->f);
    float *slots = u2 + U;
    ct_conv2d_geom g2;
    if (dx) wino_gather(g, &g2, VW);
    int64_t T2 = dx ? wino_tiles(&g2) : 0, nblk2 = (T2 + tb - 1) / tb;
    /* tiles of dU: rows of c x vectors of f, as the bwd_w kernels take them */
    wtiling w;
    w.nvec = (g->f + VW - 1) / VW;
    w.nb = vec_block(w.nvec);
    w.mr = even_tile(g->c, mr_max[w.nb]);
    w.nv = (w.nvec + w.nb - 1) / w.nb;
    w.nl = (g->c + w.mr - 1) / w.mr;
    w.n = (int64_t)w.nl * w.nv;
    int nt = omp_get_max_threads();
#pragma omp parallel num_threads(nt < ng ? nt : (int)ng)
    {
        float *v = slots + omp_get_thread_num() * wino_slot(g), *dm = v + tb * wino_ts(g->c);
        float *xp = dm + tb * wino_ts(g->f); /* padded x, then padded dz */
        if (dx) {
            flip_kernel(g, k, kt);
            wino_kernel_transform(&g2, kt, u2);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t gi = 0; gi < ng; gi++) {
            float *du = part + gi * U;
            memset(du, 0, sizeof(float) * (size_t)(16 * g->c * g->f));
            for (int64_t b = gi * per; b < B && b < (gi + 1) * per; b++) {
                wino_pad_image(g, x + b * in_img, xp);
                for (int64_t blk = 0; blk < nblk; blk++) {
                    int64_t t0 = blk * tb, n = T - t0 < tb ? T - t0 : tb;
                    wino_input_transform(g, xp, t0, n, v);
                    wino_grad_transform(g, dz + b * out_img, t0, n, dm);
                    wino_bwd_w_gemms(g, &w, v, dm, du, n);
                }
                /* dx of image b: g2's input is dz, its v and M fit the slot */
                if (nblk2) wino_pad_image(&g2, dz + b * out_img, xp);
                for (int64_t blk = 0; blk < nblk2; blk++) {
                    int64_t t0 = blk * tb, n = T2 - t0 < tb ? T2 - t0 : tb;
                    float *m2 = v + tb * wino_ts(g2.c);
                    wino_input_transform(&g2, xp, t0, n, v);
                    wino_gemms(&g2, v, u2, m2, n);
                    wino_output_transform(&g2, m2, t0, n, NULL, dx + b * in_img, FWD_ACC);
                }
            }
        }
        int64_t n16 = 16 * (int64_t)g->c * g->f;
#pragma omp for schedule(static)
        for (int64_t e0 = 0; e0 < n16; e0 += 256) {
            int64_t e1 = e0 + 256 < n16 ? e0 + 256 : n16;
            for (int64_t gi = 1; gi < ng; gi++)
                for (int64_t e = e0; e < e1; e++) part[e] += part[gi * U + e];
        }
        wino_kernel_grad_transform(g, part, dk);
    }
}

static void CT_SIMD avx_bwd_weights(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                      float *dk, float *scratch)
{
    if (wino_ok(g, VW)) wino_bwd_weights(g, x, dz, dk, NULL, NULL, scratch);
    else if (bwd_w_use_groups(g, pl)) bwd_w_grouped(g, pl, x, dz, dk, scratch);
    else bwd_w_tiles(g, pl, x, dz, dk, scratch);
}

/* ---- entry points ---------------------------------------------------------- */

void CT_SIMD CT_SIMD_FN(fwd)(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *k,
                             const float *bias, float *z, int flags, float *scratch)
{
    avx_fwd(g, pl, x, k, bias, z, flags, scratch);
}

void CT_SIMD CT_SIMD_FN(bwd_data)(const ct_conv2d_geom *g, const plan *pl, const float *dz, const float *k,
                                  float *dx, float *scratch)
{
    avx_bwd_data(g, pl, dz, k, dx, scratch);
}

void CT_SIMD CT_SIMD_FN(bwd_weights)(const ct_conv2d_geom *g, const plan *pl, const float *x, const float *dz,
                                     float *dk, float *scratch)
{
    avx_bwd_weights(g, pl, x, dz, dk, scratch);
}

void CT_SIMD CT_SIMD_FN(bwd_fused)(const ct_conv2d_geom *g, const float *x, const float *dz, float *dk,
                                   const float *k, float *dx, float *scratch)
{
    wino_bwd_weights(g, x, dz, dk, k, dx, scratch);
}
