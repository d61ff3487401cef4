/* `ctrain bench-comm`: our ring against MPI_Allreduce, side by side in one
 * run (this kind of machine is noisy: only ratios measured together mean
 * something). For each size the two alternate in batches of about 10 ms;
 * a batch's time per operation is the slowest rank's; reported is the
 * median over at least 5 batches and about 0.2 s per algorithm. Both run
 * in place with scale 1 on zeros (values do not change the speed, and
 * zeros never overflow); before timing, each size checks on small
 * integers (exact sums) that both give the same bits. */
#include <stdlib.h>
#include <string.h>

#include "comm_impl.h"

#define MIN_BYTES ((int64_t)4 << 10)
#define MAX_BYTES ((int64_t)64 << 20)
#define MAX_SIZES 32
#define MIN_REPS 5
#define MAX_REPS 64
#define TARGET_S 0.2
#define BATCH_S 0.01

static ct_status batch(ct_comm *c, ct_reduce_algo algo, float *buf, int64_t n, int iters, double *per_op)
{
    CT_TRY(ct_comm_barrier(c));
    double t0 = ct_comm_now();
    for (int i = 0; i < iters; i++) CT_TRY(ct_comm_allreduce(c, buf, n, algo, 1.0f));
    *per_op = (ct_comm_now() - t0) / iters;
    return ct_comm_allreduce_max_f64(c, per_op, 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Ring and MPI on the same small integers must agree exactly; returns the
 * number of ranks that saw a difference. */
static ct_status check(ct_comm *c, float *a, float *b, int64_t n, int *bad_ranks)
{
    for (int64_t i = 0; i < n; i++) a[i] = b[i] = (float)((i * 7 + c->rank * 13) % 101 - 50);
    CT_TRY(ct_comm_allreduce(c, a, n, CT_ALLREDUCE_RING, 1.0f));
    CT_TRY(ct_comm_allreduce(c, b, n, CT_ALLREDUCE_MPI, 1.0f));
    double bad = memcmp(a, b, (size_t)n * sizeof *a) != 0;
    CT_TRY(ct_comm_allreduce_f64(c, &bad, 1));
    *bad_ranks = (int)bad;
    return CT_OK;
}

/* Median seconds per operation of each algorithm at one size. */
static ct_status time_size(ct_comm *c, float *buf, int64_t n, double t_med[2])
{
    static const ct_reduce_algo algos[2] = {CT_ALLREDUCE_RING, CT_ALLREDUCE_MPI};
    double t[2][MAX_REPS], total[2] = {0, 0};
    int iters[2];
    memset(buf, 0, (size_t)n * sizeof *buf);
    for (int a = 0; a < 2; a++) {
        double once;
        CT_TRY(batch(c, algos[a], buf, n, 2, &once)); /* warm-up */
        CT_TRY(batch(c, algos[a], buf, n, 1, &once));
        iters[a] = once > 0 ? (int)(BATCH_S / once) : 1000;
        if (iters[a] < 1) iters[a] = 1;
        if (iters[a] > 1000) iters[a] = 1000;
    }
    /* every rank sees the same (maximum) times, so all stop together */
    int reps = 0;
    while (reps < MAX_REPS && (reps < MIN_REPS || total[0] < TARGET_S || total[1] < TARGET_S)) {
        for (int a = 0; a < 2; a++) {
            CT_TRY(batch(c, algos[a], buf, n, iters[a], &t[a][reps]));
            total[a] += t[a][reps] * iters[a];
        }
        reps++;
    }
    for (int a = 0; a < 2; a++) t_med[a] = median(t[a], reps);
    return CT_OK;
}

static void size_label(char *s, size_t cap, int64_t bytes)
{
    if (bytes >= (1 << 20)) snprintf(s, cap, "%lld MiB", (long long)(bytes >> 20));
    else snprintf(s, cap, "%lld KiB", (long long)(bytes >> 10));
}

ct_status ct_comm_bench(ct_comm *c, FILE *out)
{
    if (c->size < 2)
        return CT_FAIL(CT_ERR_USAGE, "bench-comm: needs at least 2 ranks (run it under mpirun -np 2 or more)");
    CT_TRY(ct_comm_check_usable(c, "bench-comm"));
    FILE *o = c->rank == 0 ? out : NULL;
    float *a = malloc((size_t)MAX_BYTES), *b = malloc((size_t)MAX_BYTES);
    double missing = !a || !b;
    ct_status s = ct_comm_allreduce_f64(c, &missing, 1);
    if (s == CT_OK && missing > 0)
        s = CT_FAIL(CT_ERR_NOMEM, "bench-comm: %g rank(s) could not allocate 2 x %lld MiB", missing,
                    (long long)(MAX_BYTES >> 20));
    if (s != CT_OK) goto done;

    if (o) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = 0;
        fprintf(o,
                "# bench-comm: %d ranks, %s; ring: chunks up to %lld KiB whole, longer ones in %lld KiB segments; "
                "in place, median of >= %d batches\n",
                c->size, lib, (long long)(c->st->whole * (int64_t)sizeof(float)) >> 10,
                (long long)(c->st->seg * (int64_t)sizeof(float)) >> 10, MIN_REPS);
        fprintf(o, "# %8s %11s %13s %11s %13s %9s %6s\n", "size", "ring us", "ring busGB/s", "mpi us", "mpi busGB/s",
                "ring/mpi", "same");
        fflush(o);
    }
    double ratios[MAX_SIZES];
    int n_ratios = 0, mismatches = 0;
    double busf = 2.0 * (c->size - 1) / c->size;
    for (int64_t bytes = MIN_BYTES; bytes <= MAX_BYTES; bytes *= 2) {
        int64_t n = bytes / (int64_t)sizeof(float);
        int bad = 0;
        double t[2];
        if ((s = check(c, a, b, n, &bad)) != CT_OK) goto done;
        if ((s = time_size(c, a, n, t)) != CT_OK) goto done;
        double bw_ring = busf * (double)bytes / t[0] / 1e9, bw_mpi = busf * (double)bytes / t[1] / 1e9;
        if (bytes >= (1 << 20) && n_ratios < MAX_SIZES) ratios[n_ratios++] = bw_ring / bw_mpi;
        mismatches += bad > 0;
        if (o) {
            char label[32];
            size_label(label, sizeof label, bytes);
            fprintf(o, "  %8s %11.1f %13.2f %11.1f %13.2f %9.2f %6s\n", label, t[0] * 1e6, bw_ring, t[1] * 1e6,
                    bw_mpi, bw_ring / bw_mpi, bad ? "NO" : "yes");
            fflush(o);
        }
    }
    if (o) {
        double mn = ratios[0];
        for (int i = 1; i < n_ratios; i++)
            if (ratios[i] < mn) mn = ratios[i];
        fprintf(o, "bench-comm: ring/mpi bus bandwidth at >= 1 MiB: min %.2f, median %.2f\n", mn,
                median(ratios, n_ratios));
        fflush(o);
    }
    if (mismatches)
        s = CT_FAIL(CT_ERR_RUNTIME, "bench-comm: ring and MPI_Allreduce gave different sums at %d size(s)", mismatches);
done:
    free(a);
    free(b);
    return s;
}
