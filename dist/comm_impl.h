/* Private to dist/: the MPI side of ct_comm, shared by comm.c (start-up,
 * small collectives), allreduce.c (the ring) and bench_comm.c. */
#ifndef CT_COMM_IMPL_H
#define CT_COMM_IMPL_H

#include <mpi.h>
#include <stdint.h>

#include "comm.h"

/* Ring pipeline: segments of CT_RING_SEG elements (256 KiB of floats),
 * at most CT_RING_WINDOW receives and CT_RING_WINDOW sends in flight. */
#define CT_RING_SEG ((int64_t)65536)
#define CT_RING_WINDOW 4

struct ct_comm_state {
    MPI_Comm comm;     /* our duplicate of MPI_COMM_WORLD: no tag clashes with anyone */
    float *rslots;     /* CT_RING_WINDOW receive slots of CT_RING_SEG floats */
    uint16_t *sslots;  /* CT_RING_WINDOW fp16 send slots of CT_RING_SEG halves */
    int64_t seg;       /* elements per segment (CT_RING_SEG; smaller in tests) */
    int broken;        /* a collective failed: refuse the next ones */
    char failure[256]; /* why */
};

/* Monotonic seconds. */
double ct_comm_now(void);

/* CT_ERR_COMM "<op>: <what> with rank <peer> failed on rank <me>: <MPI
 * error string>" (no peer when peer < 0); marks the communicator broken. */
ct_status ct_comm_mpi_error(ct_comm *c, const char *op, const char *what, int peer, int rc);

/* CT_ERR_COMM with the formatted message; marks the communicator broken. */
ct_status ct_comm_timeout_error(ct_comm *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* CT_OK, or CT_ERR_COMM when an earlier collective broke the communicator. */
ct_status ct_comm_check_usable(const ct_comm *c, const char *op);

/* Polls *req (a nonblocking collective) with MPI_Test until it completes,
 * MPI reports an error, or c->timeout seconds pass (then CT_ERR_COMM
 * "<op>: no progress for 300 s (is every rank alive?)"). */
ct_status ct_comm_wait(ct_comm *c, MPI_Request *req, const char *op);

/* What an idle poll loop does between polls: yields the core now and
 * then, so that oversubscribed ranks let the peer they wait for run. */
void ct_comm_idle(unsigned *spins);

/* buf (n doubles, in place) = max over ranks (the bench's timer). */
ct_status ct_comm_allreduce_max_f64(ct_comm *c, double *buf, int n);

#endif
