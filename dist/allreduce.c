/* The float allreduce: our pipelined ring, and MPI_Allreduce beside it.
 *
 * The ring (p ranks, rank r sends to r+1 and receives from r-1) splits the
 * buffer into p chunks and each chunk into K segments (a chunk of up to
 * 2 MiB is one segment, longer ones are cut in 256 KiB: CT_RING_WHOLE).
 * Message m = t*K + k carries segment k at step t:
 *   reduce-scatter, t = 0 .. p-2: send chunk r-t, receive chunk r-t-1
 *     and add it into ours; at t = p-2 the received chunk r+1 is complete:
 *     its owner (us) applies the scale (and the fp16 rounding) once;
 *   allgather, t = p-1+s: send chunk r+1-s, receive chunk r-s (a copy).
 * Chunk c is therefore summed in the fixed order x[c] + x[c+1] + ... on
 * rank c-1 and then only copied: the same bits everywhere, whatever the
 * timing. Sends of step t need only the same segment of step t-1, so
 * segments flow through the steps like a pipeline: while we add one, the
 * neighbours copy the next (Open MPI's shared-memory transport copies a
 * large message once, on the receiver's core, with process_vm_readv).
 *
 * Sends leave straight from the buffer; receives of the reduce-scatter
 * land in a window of cache-sized slots; those of the allgather straight
 * in the buffer (fp32) once our own send from that spot has completed.
 * Messages go out and are matched in order m on both sides, so one tag
 * suffices (MPI does not overtake between a pair of ranks). */
#include <string.h>

#include "comm_impl.h"
#include "fp16.h"

#define TAG 7
#define W CT_RING_WINDOW

typedef struct ring {
    ct_comm *c;
    float *buf;
    int64_t n;
    int p, r, left, right;
    int fp16;
    float scale;
    int64_t K, M;      /* segments per chunk, messages each way */
    int64_t stride;    /* longest segment: the slot size */
    int wr, ws;        /* receive and send windows */
    int64_t rposted, rdone, sposted, sdone;
    MPI_Request rreq[W], sreq[W];
} ring;

static int mod(int64_t a, int p)
{
    return (int)(((a % p) + p) % p);
}

/* Balanced split of `len` into `parts`: offset and length of part i. */
static int64_t part_off(int64_t len, int64_t parts, int64_t i)
{
    int64_t b = len / parts, e = len % parts;
    return i * b + (i < e ? i : e);
}

static int64_t part_len(int64_t len, int64_t parts, int64_t i)
{
    return len / parts + (i < len % parts);
}

/* Where message m lives in buf: the chunk we send or receive at its step. */
static void locate(const ring *g, int64_t m, int sending, int64_t *off, int64_t *len)
{
    int64_t t = m / g->K, k = m % g->K;
    int chunk;
    if (t < g->p - 1)
        chunk = sending ? mod(g->r - t, g->p) : mod(g->r - t - 1, g->p);
    else
        chunk = sending ? mod(g->r + 1 - (t - (g->p - 1)), g->p) : mod(g->r - (t - (g->p - 1)), g->p);
    int64_t clen = part_len(g->n, g->p, chunk);
    *off = part_off(g->n, g->p, chunk) + part_off(clen, g->K, k);
    *len = part_len(clen, g->K, k);
}

/* --- the local arithmetic -------------------------------------------------- */

/* Wider vectors where the CPU has them (the library is built for the
 * baseline x86-64): the adds run while the neighbour waits. Every width
 * gives the same bits (one IEEE add or multiply per element, nothing to
 * contract into an FMA). */
#if defined(__x86_64__) && defined(__GNUC__)
#define CT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CT_VECTOR_CLONES
#endif

CT_VECTOR_CLONES static void add_f32(float *restrict d, const float *restrict s, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
}

CT_VECTOR_CLONES static void add_scale_f32(float *restrict d, const float *restrict s, int64_t n, float scale)
{
    if (scale == 1.0f) {
        add_f32(d, s, n);
        return;
    }
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] = (d[i] + s[i]) * scale;
}

CT_VECTOR_CLONES static void scale_f32(float *restrict d, int64_t n, float scale)
{
    if (scale == 1.0f) return;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) d[i] *= scale;
}

/* fp16 variants work through an L1-sized block of widened values. */
#define BLK 1024

static void add_f16(float *d, const uint16_t *h, int64_t n)
{
    float t[BLK];
    for (int64_t i = 0; i < n; i += BLK) {
        int64_t b = n - i < BLK ? n - i : BLK;
        ct_f16_unpack(t, h + i, b);
        add_f32(d + i, t, b);
    }
}

/* The owner's last step: d = float(half((d + h) * scale)). */
static void add_scale_round_f16(float *d, const uint16_t *h, int64_t n, float scale)
{
    float t[BLK];
    uint16_t q[BLK];
    for (int64_t i = 0; i < n; i += BLK) {
        int64_t b = n - i < BLK ? n - i : BLK;
        ct_f16_unpack(t, h + i, b);
        add_scale_f32(d + i, t, b, scale);
        ct_f16_pack(q, d + i, b);
        ct_f16_unpack(d + i, q, b);
    }
}

static void process_recv(ring *g, int64_t m)
{
    int64_t off, len, t = m / g->K;
    locate(g, m, 0, &off, &len);
    float *d = g->buf + off;
    void *slot = g->c->st->rslots + (m % g->wr) * g->stride;
    if (!g->fp16) {
        if (t < g->p - 2) add_f32(d, slot, len);
        else if (t == g->p - 2) add_scale_f32(d, slot, len, g->scale);
        /* allgather: already in place */
    } else {
        if (t < g->p - 2) add_f16(d, slot, len);
        else if (t == g->p - 2) add_scale_round_f16(d, slot, len, g->scale);
        else ct_f16_unpack(d, slot, len);
    }
}

/* --- posting and the progress loop ----------------------------------------- */

/* 1 when receive `rposted` may be posted: a free slot, or for an fp32
 * allgather receive, our send from the same spot (step t-(p-1)) done. */
static int recv_ready(const ring *g)
{
    int64_t m = g->rposted;
    if (m >= g->M || m >= g->rdone + g->wr) return 0;
    if (!g->fp16 && m / g->K >= g->p - 1) return g->sdone > m - (g->p - 1) * g->K;
    return 1;
}

/* 1 when send `sposted` may go: the same segment of the previous step has
 * arrived (and been added), and the send window has room. */
static int send_ready(const ring *g)
{
    int64_t m = g->sposted;
    if (m >= g->M || m >= g->sdone + g->ws) return 0;
    return m < g->K || g->rdone > m - g->K;
}

static ct_status post_recv(ring *g)
{
    int64_t m = g->rposted, off, len;
    locate(g, m, 0, &off, &len);
    void *dst = g->c->st->rslots + (m % g->wr) * g->stride;
    if (!g->fp16 && m / g->K >= g->p - 1) dst = g->buf + off;
    int rc = MPI_Irecv(dst, (int)len, g->fp16 ? MPI_UINT16_T : MPI_FLOAT, g->left, TAG, g->c->st->comm,
                       &g->rreq[m % g->wr]);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(g->c, "allreduce", "MPI_Irecv", g->left, rc);
    g->rposted++;
    return CT_OK;
}

static ct_status post_send(ring *g)
{
    int64_t m = g->sposted, off, len;
    locate(g, m, 1, &off, &len);
    const void *src = g->buf + off;
    if (g->fp16) {
        uint16_t *h = g->c->st->sslots + (m % g->ws) * g->stride;
        ct_f16_pack(h, g->buf + off, len);
        src = h;
    }
    int rc = MPI_Isend(src, (int)len, g->fp16 ? MPI_UINT16_T : MPI_FLOAT, g->right, TAG, g->c->st->comm,
                       &g->sreq[m % g->ws]);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(g->c, "allreduce", "MPI_Isend", g->right, rc);
    g->sposted++;
    return CT_OK;
}

/* After a failure: withdraw what we can so MPI forgets the requests. The
 * slots stay allocated (the communicator is marked broken). */
static void abandon(ring *g)
{
    for (int64_t m = g->rdone; m < g->rposted; m++) {
        MPI_Cancel(&g->rreq[m % g->wr]);
        MPI_Request_free(&g->rreq[m % g->wr]);
    }
    for (int64_t m = g->sdone; m < g->sposted; m++) MPI_Request_free(&g->sreq[m % g->ws]);
}

static ct_status post_ready(ring *g)
{
    while (send_ready(g)) CT_TRY(post_send(g));
    while (recv_ready(g)) CT_TRY(post_recv(g));
    return CT_OK;
}

/* One pass: take at most one arrival, then post what that unblocked
 * before calling into MPI again (a single MPI_Test may spend a long time
 * copying other large messages in, and the neighbour is waiting for our
 * send), then collect finished sends. *progress = a message arrived or
 * left. */
static ct_status step(ring *g, int *progress)
{
    *progress = 0;
    int done = 0, rc;
    if (g->rdone < g->rposted) {
        rc = MPI_Test(&g->rreq[g->rdone % g->wr], &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return ct_comm_mpi_error(g->c, "allreduce", "receive (MPI_Test)", g->left, rc);
        if (done) {
            process_recv(g, g->rdone++);
            *progress = 1;
            CT_TRY(post_ready(g));
        }
    }
    int64_t sdone = g->sdone;
    while (g->sdone < g->sposted) {
        rc = MPI_Test(&g->sreq[g->sdone % g->ws], &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return ct_comm_mpi_error(g->c, "allreduce", "send (MPI_Test)", g->right, rc);
        if (!done) break;
        g->sdone++;
    }
    if (g->sdone == sdone) return CT_OK;
    *progress = 1;
    return post_ready(g);
}

static ct_status stalled(ring *g)
{
    /* A send nobody takes points at the right neighbour; otherwise we wait
     * for the left one. */
    if (g->sdone < g->sposted)
        return ct_comm_timeout_error(g->c, "allreduce: rank %d has taken no message from rank %d for %g s (is it alive?)",
                                     g->right, g->r, g->c->timeout);
    return ct_comm_timeout_error(g->c, "allreduce: no message from rank %d for %g s (is it alive?)", g->left,
                                 g->c->timeout);
}

static ct_status ring_allreduce(ct_comm *c, float *buf, int64_t n, float scale, int fp16)
{
    ring g;
    memset(&g, 0, sizeof g);
    g.c = c;
    g.buf = buf;
    g.n = n;
    g.p = c->size;
    g.r = c->rank;
    g.left = mod(c->rank - 1, c->size);
    g.right = mod(c->rank + 1, c->size);
    g.fp16 = fp16;
    g.scale = scale;
    const struct ct_comm_state *st = c->st;
    int64_t biggest = (n + g.p - 1) / g.p;
    g.K = biggest > st->whole && biggest > st->seg ? (biggest + st->seg - 1) / st->seg : 1;
    g.M = 2 * (int64_t)(g.p - 1) * g.K;
    g.stride = (biggest + g.K - 1) / g.K;
    int64_t slots = CT_RING_SLOTS / (g.stride > 0 ? g.stride : 1);
    g.wr = slots < 1 ? 1 : slots > W ? W : (int)slots;
    g.ws = fp16 ? g.wr : W;

    double last = ct_comm_now();
    unsigned spins = 0;
    ct_status s = post_ready(&g);
    while (s == CT_OK && (g.rdone < g.M || g.sdone < g.M)) {
        int progress;
        s = step(&g, &progress);
        if (s != CT_OK) break;
        if (progress) {
            spins = 0;
            if (c->timeout > 0) last = ct_comm_now();
            continue;
        }
        if (c->timeout > 0 && (spins & 15) == 0 && ct_comm_now() - last > c->timeout) {
            s = stalled(&g);
            break;
        }
        ct_comm_idle(c, &spins);
    }
    if (s != CT_OK) abandon(&g);
    return s;
}

/* --- entry points ---------------------------------------------------------- */

static ct_status check_args(const ct_comm *c, const char *op, const float *buf, int64_t n)
{
    if (n < 0 || (!buf && n > 0))
        return CT_FAIL(CT_ERR_USAGE, "%s: needs a buffer and n >= 0, got n = %lld at %p", op, (long long)n,
                       (const void *)buf);
    return ct_comm_check_usable(c, op);
}

static ct_status mpi_allreduce(ct_comm *c, float *buf, int64_t n, float scale)
{
    const int64_t piece = (int64_t)1 << 28; /* MPI counts are int */
    for (int64_t off = 0; off < n; off += piece) {
        int len = (int)(n - off < piece ? n - off : piece);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, len, MPI_FLOAT, MPI_SUM, c->st->comm);
        if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "allreduce (MPI)", "MPI_Allreduce", -1, rc);
    }
    scale_f32(buf, n, scale);
    return CT_OK;
}

ct_status ct_comm_allreduce(ct_comm *c, float *buf, int64_t n, ct_reduce_algo algo, float scale)
{
    if (algo != CT_ALLREDUCE_RING && algo != CT_ALLREDUCE_MPI)
        return CT_FAIL(CT_ERR_USAGE, "allreduce: unknown algorithm %d (expected ring %d or mpi %d)", (int)algo,
                       CT_ALLREDUCE_RING, CT_ALLREDUCE_MPI);
    CT_TRY(check_args(c, "allreduce", buf, n));
    if (c->size == 1) {
        scale_f32(buf, n, scale);
        return CT_OK;
    }
    if (n == 0) return CT_OK;
    if (algo == CT_ALLREDUCE_MPI) return mpi_allreduce(c, buf, n, scale);
    return ring_allreduce(c, buf, n, scale, 0);
}

ct_status ct_comm_allreduce_fp16(ct_comm *c, float *buf, int64_t n, float scale)
{
    CT_TRY(check_args(c, "allreduce_fp16", buf, n));
    if (c->size == 1) {
        scale_f32(buf, n, scale);
        return CT_OK;
    }
    if (n == 0) return CT_OK;
    return ring_allreduce(c, buf, n, scale, 1);
}
