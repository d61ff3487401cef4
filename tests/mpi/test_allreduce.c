/* dist/ under mpirun (any number of ranks) or alone (a world of one):
 *  - binary16 conversion: F16C and portable paths give the same bits for
 *    all 65536 halves and for floats around every rounding boundary;
 *  - ring allreduce against a double-precision reference and against
 *    MPI_Allreduce for sizes 0, 1, 2, 3, world-1, world+1, 1000003 and
 *    5 MiB of random floats; the same bits on every rank (hash compared
 *    with MPI_Allgather), the same bits when repeated, the scale applied
 *    to the final sum; tiny pipeline segments (many messages in flight);
 *  - the fp16 ring within its error bound, identical on every rank,
 *    exact on small integers;
 *  - broadcast, allreduce of doubles, barrier, argument errors.
 * Every rank reports; rank 0 prints the total and every rank exits
 * non-zero when any rank failed. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

#include "comm.h"
#include "comm_impl.h"
#include "ct_test.h"
#include "fp16.h"

static ct_comm comm;

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Element i of rank r's input: uniform in [-1, 1), or a small integer. */
static float gen(int r, int64_t i, int integers)
{
    uint64_t h = mix(((uint64_t)r << 40) ^ (uint64_t)i);
    if (integers) return (float)((int)(h % 17) - 8);
    return (float)((double)(h >> 40) / (double)(1ull << 23) - 1.0);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* 1 when every rank holds the same hash. */
static int same_everywhere(const void *p, size_t bytes)
{
    if (!comm.mpi) return 1;
    uint64_t h = hash_bytes(p, bytes), *all = malloc((size_t)comm.size * sizeof *all);
    MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int same = 1;
    for (int i = 0; i < comm.size; i++) same &= all[i] == h;
    free(all);
    return same;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* --- binary16 -------------------------------------------------------------- */

static void test_fp16_known(void)
{
    static const struct {
        float f;
        uint16_t h;
    } known[] = {
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff},
        {65519.99f, 0x7bff}, {65520.0f, 0x7c00}, {1e9f, 0x7c00}, {INFINITY, 0x7c00}, {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, {0x1.8p-24f, 0x0002}, {0x3p-25f, 0x0002},
        {0x1p-26f, 0x0000}, {1.0009765625f, 0x3c01}, {1.00048828125f, 0x3c00}, {1.00146484375f, 0x3c02},
        {0.333251953125f, 0x3555},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uint16_t h = ct_f16_from_f32(known[i].f), hv;
        ct_f16_pack(&hv, &known[i].f, 1);
        CHECK_MSG(h == known[i].h, "half(%a) = 0x%04x, expected 0x%04x", known[i].f, h, known[i].h);
        CHECK(hv == h);
    }
    CHECK(isnan(ct_f32_from_f16(ct_f16_from_f32(NAN))));
    CHECK(ct_f32_from_f16(0x3c00) == 1.0f);
    CHECK(ct_f32_from_f16(0x0001) == 0x1p-24f);
    CHECK(ct_f32_from_f16(0xfbff) == -65504.0f);
}

/* F16C and the portable path must agree on every bit; runs the vector
 * path on blocks (the array functions use F16C 8 at a time). */
static void test_fp16_paths(void)
{
    enum { H = 65536 };
    uint16_t *h = malloc(H * sizeof *h), *h2 = malloc(H * sizeof *h2), *h3 = malloc(4 * H * sizeof *h3);
    float *f = malloc(H * sizeof *f), *f2 = malloc(H * sizeof *f2), *g = malloc(4 * H * sizeof *g);
    for (int i = 0; i < H; i++) h[i] = (uint16_t)i;
    ct_f16_unpack(f, h, H);
    ct_f16_unpack_portable(f2, h, H);
    int bad = 0, roundtrip_bad = 0;
    for (int i = 0; i < H; i++) {
        bad += bits(f[i]) != bits(f2[i]);
        if (!isnan(f2[i])) roundtrip_bad += ct_f16_from_f32(f2[i]) != h[i];
    }
    CHECK_MSG(bad == 0, "%d of 65536 halves widen differently with F16C", bad);
    CHECK_MSG(roundtrip_bad == 0, "%d halves do not survive float and back", roundtrip_bad);

    /* floats at and next to every tie between neighbouring halves, plus a
     * sweep over all bit patterns */
    int64_t n = 0;
    for (int i = 0; i < 0x7c00; i++) {
        double lo = ct_f32_from_f16((uint16_t)i), hi = ct_f32_from_f16((uint16_t)(i + 1));
        float mid = (float)(0.5 * (lo + hi));
        g[n++] = mid;
        g[n++] = nextafterf(mid, 0);
        g[n++] = -nextafterf(mid, INFINITY);
    }
    for (uint64_t u = 0; n < 4 * H; u += 0x10003) {
        uint32_t v = (uint32_t)(u * 2654435761u);
        memcpy(&g[n++], &v, 4);
    }
    ct_f16_pack(h3, g, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += h3[i] != ct_f16_from_f32(g[i]);
    CHECK_MSG(bad == 0, "%d of %lld floats narrow differently with F16C", bad, (long long)n);
    ct_f16_pack_portable(h2, g, H);
    CHECK(memcmp(h2, h3, H * sizeof *h2) == 0);
    if (comm.rank == 0) printf("fp16: F16C %s\n", ct_f16_hw_available() ? "used (compared with portable C)" : "not available");
    free(h), free(h2), free(h3), free(f), free(f2), free(g);
}

/* --- float allreduce ------------------------------------------------------- */

typedef struct inputs {
    int64_t n;
    float *x;               /* this rank's input */
    double *ref, *sumabs;   /* sum over ranks, sum of magnitudes */
} inputs;

static void inputs_make(inputs *in, int64_t n, int integers)
{
    in->n = n;
    in->x = malloc((size_t)(n ? n : 1) * sizeof *in->x);
    in->ref = calloc((size_t)(n ? n : 1), sizeof *in->ref);
    in->sumabs = calloc((size_t)(n ? n : 1), sizeof *in->sumabs);
    for (int r = 0; r < comm.size; r++)
        for (int64_t i = 0; i < n; i++) {
            float v = gen(r, i, integers);
            if (r == comm.rank) in->x[i] = v;
            in->ref[i] += v;
            in->sumabs[i] += fabs(v);
        }
}

static void inputs_free(inputs *in)
{
    free(in->x), free(in->ref), free(in->sumabs);
}

static float *copy_of(const inputs *in)
{
    float *y = malloc((size_t)(in->n ? in->n : 1) * sizeof *y);
    memcpy(y, in->x, (size_t)in->n * sizeof *y);
    return y;
}

/* Largest |y - scale*ref| / (rel * scale*sumabs + abs); <= 1 passes. */
static double worst(const inputs *in, const float *y, double scale, double rel, double abs_tol)
{
    double w = 0;
    for (int64_t i = 0; i < in->n; i++) {
        double e = fabs((double)y[i] - scale * in->ref[i]) / (rel * fabs(scale) * in->sumabs[i] + abs_tol);
        if (!(e <= w)) w = e; /* NaN counts as worst */
    }
    return w;
}

static void test_ring_size(int64_t n)
{
    inputs in;
    inputs_make(&in, n, 0);
    int p = comm.size;
    double rel = (p + 1) * 0x1p-24;
    size_t bytes = (size_t)n * sizeof(float);

    float *ring = copy_of(&in), *again = copy_of(&in), *mpi = copy_of(&in), *scaled = copy_of(&in);
    CHECK(ct_comm_allreduce(&comm, ring, n, CT_ALLREDUCE_RING, 1.0f) == CT_OK);
    double w = worst(&in, ring, 1.0, rel, 1e-30);
    CHECK_MSG(w <= 1, "n=%lld: ring off the double reference by %.3g x tolerance", (long long)n, w);
    CHECK_MSG(same_everywhere(ring, bytes), "n=%lld: ranks disagree on the ring's result", (long long)n);
    CHECK(ct_comm_allreduce(&comm, again, n, CT_ALLREDUCE_RING, 1.0f) == CT_OK);
    CHECK_MSG(memcmp(ring, again, bytes) == 0, "n=%lld: the ring is not reproducible", (long long)n);

    CHECK(ct_comm_allreduce(&comm, mpi, n, CT_ALLREDUCE_MPI, 1.0f) == CT_OK);
    w = worst(&in, mpi, 1.0, rel, 1e-30);
    CHECK_MSG(w <= 1, "n=%lld: MPI_Allreduce off the reference by %.3g x tolerance", (long long)n, w);
    if (p <= 2) /* one addition: no order to disagree on */
        CHECK_MSG(memcmp(ring, mpi, bytes) == 0, "n=%lld: ring and MPI differ with 2 ranks", (long long)n);

    float scale = 1.0f / (float)(p + 2);
    CHECK(ct_comm_allreduce(&comm, scaled, n, CT_ALLREDUCE_RING, scale) == CT_OK);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += bits(scaled[i]) != bits(ring[i] * scale);
    CHECK_MSG(bad == 0, "n=%lld: %d values are not scale * the sum", (long long)n, bad);
    CHECK(same_everywhere(scaled, bytes));

    memcpy(mpi, in.x, bytes);
    CHECK(ct_comm_allreduce(&comm, mpi, n, CT_ALLREDUCE_MPI, scale) == CT_OK);
    w = worst(&in, mpi, scale, rel + 0x1p-24, 1e-30);
    CHECK_MSG(w <= 1, "n=%lld: scaled MPI_Allreduce off by %.3g x tolerance", (long long)n, w);

    /* fp16 on the wire: one rounding per hop and one at the end */
    float *h = copy_of(&in);
    CHECK(ct_comm_allreduce_fp16(&comm, h, n, 1.0f) == CT_OK);
    w = worst(&in, h, 1.0, p > 1 ? (p + 1) * 0x1p-11 : 0x1p-24, p * 0x1p-24);
    CHECK_MSG(w <= 1, "n=%lld: fp16 ring off the reference by %.3g x tolerance", (long long)n, w);
    CHECK_MSG(same_everywhere(h, bytes), "n=%lld: ranks disagree on the fp16 result", (long long)n);
    if (p > 1) {
        bad = 0;
        for (int64_t i = 0; i < n; i++) bad += ct_f32_from_f16(ct_f16_from_f32(h[i])) != h[i];
        CHECK_MSG(bad == 0, "n=%lld: %d fp16 results are not halves", (long long)n, bad);
    }
    memcpy(h, in.x, bytes);
    CHECK(ct_comm_allreduce_fp16(&comm, h, n, 0.5f) == CT_OK);
    w = worst(&in, h, 0.5, p > 1 ? (p + 1) * 0x1p-11 : 0x1p-24, p * 0x1p-24);
    CHECK_MSG(w <= 1, "n=%lld: scaled fp16 ring off by %.3g x tolerance", (long long)n, w);

    free(ring), free(again), free(mpi), free(scaled), free(h);
    inputs_free(&in);
}

/* Small integers: every algorithm must be exact. */
static void test_exact(int64_t n)
{
    inputs in;
    inputs_make(&in, n, 1);
    float *y[3] = {copy_of(&in), copy_of(&in), copy_of(&in)};
    CHECK(ct_comm_allreduce(&comm, y[0], n, CT_ALLREDUCE_RING, 1.0f) == CT_OK);
    CHECK(ct_comm_allreduce(&comm, y[1], n, CT_ALLREDUCE_MPI, 1.0f) == CT_OK);
    CHECK(ct_comm_allreduce_fp16(&comm, y[2], n, 1.0f) == CT_OK);
    for (int a = 0; a < 3; a++) {
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += (double)y[a][i] != in.ref[i];
        CHECK_MSG(bad == 0, "n=%lld: algorithm %d is not exact on integers (%d wrong)", (long long)n, a, bad);
        free(y[a]);
    }
    inputs_free(&in);
}

/* Many small segments: the windows wrap many times and allgather receives
 * wait for our own sends. */
static void test_small_segments(void)
{
    if (!comm.st) return;
    int64_t saved = comm.st->seg, saved_whole = comm.st->whole;
    comm.st->whole = 0;
    static const int64_t segs[] = {1, 7, 1000};
    static const int64_t sizes[] = {5, 1000, 12345};
    for (size_t s = 0; s < 3; s++) {
        comm.st->seg = segs[s];
        for (size_t k = 0; k < 3; k++) {
            if (segs[s] == 1 && sizes[k] > 1000) continue;
            test_exact(sizes[k]);
            inputs in;
            inputs_make(&in, sizes[k], 0);
            float *y = copy_of(&in);
            CHECK(ct_comm_allreduce(&comm, y, in.n, CT_ALLREDUCE_RING, 1.0f) == CT_OK);
            CHECK(worst(&in, y, 1.0, (comm.size + 1) * 0x1p-24, 1e-30) <= 1);
            CHECK(same_everywhere(y, (size_t)in.n * sizeof *y));
            free(y);
            inputs_free(&in);
        }
    }
    comm.st->seg = saved;
    comm.st->whole = saved_whole;
}

/* --- the other collectives and errors -------------------------------------- */

static void test_bcast(void)
{
    static const int64_t sizes[] = {0, 1, 1000003};
    int roots[2] = {0, comm.size - 1};
    for (int ri = 0; ri < 2; ri++)
        for (int si = 0; si < 3; si++) {
            int64_t n = sizes[si];
            unsigned char *b = malloc((size_t)n + 1), *want = malloc((size_t)n + 1);
            for (int64_t i = 0; i < n; i++) {
                want[i] = (unsigned char)(mix((uint64_t)i + 77u * (uint64_t)roots[ri]) & 0xff);
                b[i] = comm.rank == roots[ri] ? want[i] : (unsigned char)comm.rank;
            }
            CHECK(ct_comm_bcast(&comm, b, n, roots[ri]) == CT_OK);
            CHECK_MSG(memcmp(b, want, (size_t)n) == 0, "bcast of %lld bytes from rank %d", (long long)n, roots[ri]);
            free(b), free(want);
        }
}

static void test_f64_and_barrier(void)
{
    int p = comm.size;
    double v[3] = {comm.rank + 1.0, 1.0, 0.5 * comm.rank};
    CHECK(ct_comm_allreduce_f64(&comm, v, 3) == CT_OK);
    CHECK(v[0] == p * (p + 1) / 2.0);
    CHECK(v[1] == p);
    CHECK(v[2] == 0.25 * p * (p - 1));
    CHECK(ct_comm_allreduce_f64(&comm, v, 0) == CT_OK);
    CHECK(ct_comm_barrier(&comm) == CT_OK);
}

static void test_errors(void)
{
    float x[4] = {1, 2, 3, 4};
    CHECK(ct_comm_allreduce(&comm, x, -1, CT_ALLREDUCE_RING, 1.0f) == CT_ERR_USAGE);
    CHECK_STR_CONTAINS(ct_error_message(), "allreduce");
    CHECK(ct_comm_allreduce(&comm, NULL, 4, CT_ALLREDUCE_RING, 1.0f) == CT_ERR_USAGE);
    CHECK(ct_comm_allreduce(&comm, x, 4, (ct_reduce_algo)7, 1.0f) == CT_ERR_USAGE);
    CHECK_STR_CONTAINS(ct_error_message(), "unknown algorithm 7");
    CHECK(ct_comm_allreduce_fp16(&comm, x, -3, 1.0f) == CT_ERR_USAGE);
    CHECK(ct_comm_bcast(&comm, x, 16, comm.size) == CT_ERR_USAGE);
    CHECK_STR_CONTAINS(ct_error_message(), "root rank");
    CHECK(ct_comm_bcast(&comm, NULL, 16, 0) == CT_ERR_USAGE);
    CHECK(ct_comm_allreduce_f64(&comm, NULL, 2) == CT_ERR_USAGE);
    CHECK(ct_comm_set_timeout(&comm, -1) == CT_ERR_USAGE);
    CHECK_STR_CONTAINS(ct_error_message(), "timeout");
    CHECK(ct_comm_set_timeout(&comm, NAN) == CT_ERR_USAGE);
    CHECK(ct_comm_set_timeout(&comm, INFINITY) == CT_ERR_USAGE);
    CHECK(comm.timeout == 300.0);
    CHECK(ct_comm_set_timeout(&comm, 0) == CT_OK && comm.timeout == 0);
    CHECK(ct_comm_set_timeout(&comm, 30) == CT_OK);
    /* usage errors send nothing and leave the communicator usable */
    CHECK(ct_comm_allreduce(&comm, x, 4, CT_ALLREDUCE_RING, 1.0f) == CT_OK);
    CHECK(x[0] == comm.size * 1.0f && x[3] == comm.size * 4.0f);
}

int main(int argc, char **argv)
{
    if (ct_comm_init(&argc, &argv, &comm) != CT_OK) {
        fprintf(stderr, "test_allreduce: %s\n", ct_error_message());
        return 1;
    }
    int p = comm.size;
    test_errors();
    test_fp16_known();
    test_fp16_paths();
    int64_t sizes[] = {0, 1, 2, 3, p - 1, p + 1, 1000003, (5 << 20) / 4};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) test_ring_size(sizes[i]);
    test_exact(p + 1);
    test_exact(1000003);
    test_small_segments();
    test_bcast();
    test_f64_and_barrier();

    char name[64];
    snprintf(name, sizeof name, "test_allreduce rank %d of %d", comm.rank, p);
    int mine = ct_test_report(name);
    double failed[2] = {mine, ct_test_failed_};
    if (ct_comm_allreduce_f64(&comm, failed, 2) != CT_OK) {
        fprintf(stderr, "test_allreduce: rank %d: %s\n", comm.rank, ct_error_message());
        failed[0] = 1;
    }
    if (comm.rank == 0)
        printf("test_allreduce: %d rank(s), %g failed, %g failed checks in total\n", p, failed[0], failed[1]);
    ct_comm_finalize(&comm);
    return failed[0] > 0 || mine ? 1 : 0;
}
