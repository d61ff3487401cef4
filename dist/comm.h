/* The communicator: rank and world size over MPI, with a world of one
 * when the process was not started by mpirun (no MPI_Init then, so a
 * plain `ctrain` needs no MPI runtime at all). Collectives return
 * statuses; nothing here aborts (ending a job is the launcher's
 * ct_comm_abort, launcher/distributed.c).
 *
 * Every collective must be called by every rank in the same order with
 * the same sizes (our graph order is the same on every rank). In a world
 * of one they make no MPI call: the allreduces only apply their scale, the
 * others return at once.
 *
 * Errors: CT_ERR_USAGE for bad arguments (nothing was sent), CT_ERR_COMM
 * when MPI reports an error or a collective makes no progress for the
 * timeout; the message names the operation, the peer rank and the MPI
 * error string. After a CT_ERR_COMM the buffer's contents are undefined,
 * the communicator refuses further collectives (MPI may still hold
 * requests of the failed one) and the caller should end the job with
 * ct_comm_abort (launcher/). Only the thread that called ct_comm_init may call these
 * functions, or one thread at a time (MPI_THREAD_SERIALIZED: the gradient
 * buckets of grad_sync.h run on a communication thread). */
#ifndef CT_COMM_H
#define CT_COMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct ct_comm {
    int rank, size;
    int mpi;                  /* MPI was initialised by us */
    double timeout;           /* seconds a collective may wait without progress; 0 = forever */
    struct ct_comm_state *st; /* private to dist/: MPI communicator and scratch; NULL in a world of one */
} ct_comm;

typedef enum ct_reduce_algo {
    /* Ours: reduce-scatter then allgather around the ring of ranks over
     * point-to-point messages; chunks (1/size of the buffer) over 2 MiB
     * are pipelined in segments of 256 KiB.
     * Fixed reduction order: chunk c is summed on one rank in ring order
     * and only copied afterwards, so every rank holds the same bits,
     * whatever the timing. Covered by the timeout. */
    CT_ALLREDUCE_RING = 0,
    /* MPI_Allreduce (MPI_SUM), the yardstick. A blocking call: NOT covered
     * by the timeout (MPI_Iallreduce is about 2x slower in Open MPI 4.1).
     * Open MPI 4.1 gave the same bits on every rank in our runs; the MPI
     * standard does not promise it. */
    CT_ALLREDUCE_MPI = 1
} ct_reduce_algo;

/* Starts MPI when launched under mpirun (or srun with PMI), checking the
 * provided thread level; otherwise rank 0 of 1. Sets the timeout to 300 s
 * and, with more than one rank, allocates 3 MiB of scratch for the ring,
 * so that collectives allocate nothing. */
ct_status ct_comm_init(int *argc, char ***argv, ct_comm *c);
/* Frees the scratch and finalises MPI (all ranks must call it). */
void ct_comm_finalize(ct_comm *c);

/* Seconds a collective may go without progress before it fails with
 * CT_ERR_COMM ("allreduce: no message from rank 1 for 300 s (is it
 * alive?)"); 0 waits forever. CT_ERR_USAGE when negative or not finite. */
ct_status ct_comm_set_timeout(ct_comm *c, double seconds);

/* The liveness heartbeat (dist/heartbeat.c): with more than one rank,
 * every rank runs a thread outside MPI that sends a UDP datagram to every
 * peer about every second (silence / 10, at most 1 s). When a peer has
 * been silent for `seconds` (it died, was stopped, or its network is
 * down), that thread prints "ctrain: error on rank R (host H): no
 * heartbeat from rank P (host HP) for S s: ..." and calls
 * ct_comm_dead_peer_hook(1), whatever MPI call the main thread is stuck
 * in: the ctrain program sets it to end its process (exit code 1), and
 * the launcher then ends the job. The library itself never exits: with
 * the hook unset (a program using the C API) only the message appears and
 * the collectives fail on their own timeouts. ct_comm_init starts it with 20 s; 0 turns it
 * off (also where UDP between the nodes is blocked). A rank that
 * finalises says goodbye, so that its silence afterwards is no failure.
 * CT_ERR_USAGE when negative or not finite. */
ct_status ct_comm_set_heartbeat(ct_comm *c, double seconds);
extern void (*ct_comm_dead_peer_hook)(int code);

/* buf (n floats, caller's, in place) = scale * sum over ranks of buf.
 * Result identical in every bit on every rank. n may be 0 or smaller than
 * the world (then some ranks own empty chunks). scale is applied once to
 * the final sum (1/size averages, 1 sums). */
ct_status ct_comm_allreduce(ct_comm *c, float *buf, int64_t n, ct_reduce_algo algo, float scale);

/* The ring with IEEE binary16 on the wire (half the bytes): each partial
 * sum is rounded to half (nearest even) before it is sent and added in
 * float; the final value is rounded to half once more, on its owner too,
 * so every rank holds the same bits. Error: about (size+1) * 2^-11
 * relative to the sum of magnitudes; partial sums must stay below 65504
 * in magnitude and values below 2^-14 lose precision (halves are
 * subnormal there). In a world of one: only the scale, no rounding. */
ct_status ct_comm_allreduce_fp16(ct_comm *c, float *buf, int64_t n, float scale);

/* buf (bytes, caller's) of rank `root` copied to every rank. */
ct_status ct_comm_bcast(ct_comm *c, void *buf, int64_t bytes, int root);

/* buf (n doubles, in place) = sum over ranks; for small metric records
 * such as (sum, count) pairs. */
ct_status ct_comm_allreduce_f64(ct_comm *c, double *buf, int n);

/* buf (n int64, in place) = sum over ranks: exact, so the same on every
 * rank whatever the order (the boosted trees' histograms, core/trees.h). */
ct_status ct_comm_allreduce_i64(ct_comm *c, int64_t *buf, int n);
/* buf (n doubles, in place) = maximum over ranks (exact). */
ct_status ct_comm_allreduce_max_f64(ct_comm *c, double *buf, int n);

/* Returns when every rank has entered it. */
ct_status ct_comm_barrier(ct_comm *c);

/* Times the ring and MPI_Allreduce side by side on 4 KiB to 64 MiB (fp32,
 * in place, sum) and prints on rank 0 to `out` (other ranks may pass
 * NULL) one line per size: bytes, time and bus bandwidth of each
 * (busbw = 2(p-1)/p * bytes / time, the NCCL-tests convention) and the
 * ratio of ring to MPI bus bandwidth, then the summary line
 * "bench-comm: ring/mpi bus bandwidth at >= 1 MiB: min X, median Y".
 * Takes about 8 s with 2 ranks; needs 128 MiB per rank.
 * CT_ERR_USAGE in a world of one. */
ct_status ct_comm_bench(ct_comm *c, FILE *out);

#endif
