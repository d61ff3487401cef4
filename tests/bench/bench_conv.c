/* bench_conv: GFLOP/s of the convolution kernels on the convolutions of
 * the seed's models, next to OpenBLAS sgemm (1024^3) measured in the same
 * run, at 1 and 2 threads.
 *
 *   bench_conv [--impl avx512,gemm,gemm_batched] [--batch 64,128]
 *              [--threads 1,2] [--reps 5] [--min-time 0.1] [--case NAME]
 *              [--cpu-time]
 *
 * Every figure is the median over --reps repetitions, each timing enough
 * back-to-back calls to last --min-time seconds. The sgemm figure is
 * measured again next to every row (the machine may be shared, and its
 * load changes), and the ratios use that neighbouring figure. FLOPs per pass are
 * 2 * batch * oh * ow * f * kh * kw * c for forward, backward-data and
 * backward-weights alike. The machine may be shared: compare ratios to
 * the sgemm figure of the same run, not absolute numbers across runs.
 * --cpu-time times by the process's CPU time instead of the wall clock (for
 * 1 thread on a machine shared with other work: time spent waiting for
 * the CPU then does not count). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv.h"
#include "ops.h"

extern void openblas_set_num_threads(int);

typedef struct bcase {
    const char *name;
    int h, w, c, f, k, s, same;
} bcase;

/* a: basic CNN, b: AlexNet-like, d: ResNet-20, nin: cnn_nin (3x3 convs, 'same' as
 * PyTorch's padding 1; Keras 'same' with stride 2 on even sizes pads
 * bottom/right only). */
static const bcase cases[] = {
    {"a  32x32x3->32 valid", 32, 32, 3, 32, 3, 1, 0},
    {"b  32x32x3->32 same", 32, 32, 3, 32, 3, 1, 1},
    {"b  32x32x32->32 same", 32, 32, 32, 32, 3, 1, 1},
    {"b  16x16x32->32 same", 16, 16, 32, 32, 3, 1, 1},
    {"d  32x32x3->16 same", 32, 32, 3, 16, 3, 1, 1},
    {"d  32x32x16->16 same", 32, 32, 16, 16, 3, 1, 1},
    {"d  32x32x16->32 s2", 32, 32, 16, 32, 3, 2, 1},
    {"d  16x16x32->32 same", 16, 16, 32, 32, 3, 1, 1},
    {"d  16x16x32->64 s2", 16, 16, 32, 64, 3, 2, 1},
    {"d  8x8x64->64 same", 8, 8, 64, 64, 3, 1, 1},
    {"nin 32x32x32->32 1x1", 32, 32, 32, 32, 1, 1, 0},
    {"nin 16x16x32->64 same", 16, 16, 32, 64, 3, 1, 1},
    {"nin 16x16x64->64 1x1", 16, 16, 64, 64, 1, 1, 0},
    {"nin 16x16x64->10 1x1", 16, 16, 64, 10, 1, 1, 0},
};

static int cpu_time = 0;

static double now(void)
{
    struct timespec t;
    clock_gettime(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct run {
    const ct_conv2d_geom *g;
    int op; /* 0 fwd, 1 bwd-data, 2 bwd-weights, 3 sgemm */
    const float *x, *k, *bias, *dz;
    float *z, *dx, *dk, *scratch;
    int n; /* sgemm size */
} run;

static void once(const run *r)
{
    switch (r->op) {
    case 0: ct_op_conv2d_fwd(r->g, r->x, r->k, r->bias, r->z, 0, r->scratch); break;
    case 1: ct_op_conv2d_bwd_data(r->g, r->dz, r->k, r->dx, r->scratch); break;
    case 2: ct_op_conv2d_bwd_weights(r->g, r->x, r->dz, r->dk, r->scratch); break;
    default: ct_op_gemm(0, 0, r->n, r->n, r->n, 1.0f, r->x, r->k, 0.0f, r->z); break;
    }
}

/* Median GFLOP/s over reps. */
static double measure(const run *r, double flop, int reps, double min_time)
{
    once(r);
    once(r);
    double t0 = now();
    once(r);
    double t1 = now() - t0;
    int calls = (int)(min_time / (t1 > 1e-7 ? t1 : 1e-7)) + 1;
    double g[64];
    if (reps > 64) reps = 64;
    for (int i = 0; i < reps; i++) {
        t0 = now();
        for (int c = 0; c < calls; c++) once(r);
        g[i] = flop * calls / (now() - t0) / 1e9;
    }
    qsort(g, (size_t)reps, sizeof g[0], cmp_double);
    return g[reps / 2];
}

static float *filled(int64_t n)
{
    float *v = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64 + 64));
    for (int64_t i = 0; i < n; i++) v[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return v;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        while (*s && *s != ',') s++;
        if (*s == ',') s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    int batches[8] = {64, 128}, nbatch = 2, threads[8] = {1, 2}, nthreads = 2, reps = 5;
    double min_time = 0.1;
    ct_conv_impl impls[8] = {CT_CONV_AVX512, CT_CONV_GEMM, CT_CONV_GEMM_BATCHED};
    int nimpl = 3;
    const char *only = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--cpu-time") == 0) {
            cpu_time = 1;
            i--;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--batch") == 0) nbatch = parse_list(argv[i + 1], batches, 8);
        else if (strcmp(argv[i], "--threads") == 0) nthreads = parse_list(argv[i + 1], threads, 8);
        else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--min-time") == 0) min_time = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--case") == 0) only = argv[i + 1];
        else if (strcmp(argv[i], "--impl") == 0) {
            nimpl = 0;
            for (const char *s = argv[i + 1]; *s && nimpl < 8;) {
                for (int m = 1; m < CT_CONV_IMPL_COUNT; m++) {
                    const char *name = ct_conv_impl_name((ct_conv_impl)m);
                    size_t len = strlen(name);
                    if (strncmp(s, name, len) == 0 && (s[len] == ',' || s[len] == 0)) impls[nimpl++] = (ct_conv_impl)m;
                }
                while (*s && *s != ',') s++;
                if (*s == ',') s++;
            }
        } else {
            fprintf(stderr, "usage: %s [--impl avx512,gemm,gemm_batched,ref] [--batch 64,128] [--threads 1,2] "
                            "[--reps 5] [--min-time 0.1] [--case substring] [--cpu-time]\n", argv[0]);
            return 2;
        }
    }
    printf("# best impl here: %s; GFLOP/s medians of %d reps; r_* = GFLOP/s / sgemm 1024^3 GFLOP/s measured\n"
           "# next to the row with the same thread count\n",
           ct_conv_impl_name(ct_conv_impl_best()), reps);
    const int n = 1024;
    float *A = filled((int64_t)n * n), *B = filled((int64_t)n * n), *C = filled((int64_t)n * n);
    run sg = {.op = 3, .x = A, .k = B, .z = C, .n = n};
    printf("%-22s %5s %3s %-12s %9s %9s %9s %6s %6s %6s %6s\n", "conv", "batch", "thr", "impl", "fwd", "bwd_data",
           "bwd_wt", "sgemm", "r_fwd", "r_bd", "r_bw");
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const bcase *cs = &cases[ci];
        if (only && !strstr(cs->name, only)) continue;
        for (int bi = 0; bi < nbatch; bi++) {
            ct_conv_window win = {cs->k, cs->k, cs->s, cs->s, 1, 1, cs->same};
            ct_conv2d_geom g = ct_conv2d_geom_make(&win, cs->h, cs->w, cs->c, cs->f);
            g.batch = batches[bi];
            int64_t nx = g.batch * g.h * g.w * g.c, nz = g.batch * g.oh * g.ow * g.f;
            int64_t nk = (int64_t)g.kh * g.kw * g.c * g.f;
            double flop = 2.0 * (double)nz * g.kh * g.kw * g.c;
            float *x = filled(nx), *k = filled(nk), *bias = filled(g.f), *dz = filled(nz);
            float *z = filled(nz), *dx = filled(nx), *dk = filled(nk);
            for (int mi = 0; mi < nimpl; mi++) {
                g.impl = impls[mi];
                if (!ct_conv_impl_available(g.impl)) continue;
                float *scratch = filled(ct_op_conv2d_scratch(&g) + 16);
                for (int t = 0; t < nthreads; t++) {
                    omp_set_num_threads(threads[t]);
                    openblas_set_num_threads(threads[t]);
                    double sgemm = measure(&sg, 2.0 * n * n * n, 3, min_time), gf[3];
                    for (int op = 0; op < 3; op++) {
                        run r = {.g = &g, .op = op, .x = x, .k = k, .bias = bias, .dz = dz,
                                 .z = z, .dx = dx, .dk = dk, .scratch = scratch};
                        gf[op] = measure(&r, flop, reps, min_time);
                        /* keep the accumulating outputs bounded */
                        memset(dx, 0, sizeof(float) * (size_t)nx);
                        memset(dk, 0, sizeof(float) * (size_t)nk);
                    }
                    printf("%-22s %5d %3d %-12s %9.1f %9.1f %9.1f %6.1f %6.2f %6.2f %6.2f\n", cs->name,
                           batches[bi], threads[t], ct_conv_impl_name(g.impl), gf[0], gf[1], gf[2], sgemm,
                           gf[0] / sgemm, gf[1] / sgemm, gf[2] / sgemm);
                    fflush(stdout);
                }
                free(scratch);
            }
            free(x), free(k), free(bias), free(dz), free(z), free(dx), free(dk);
        }
    }
    free(A), free(B), free(C);
    return 0;
}
