/* Private to dist/: the MPI side of ct_comm, shared by comm.c (start-up,
 * small collectives), allreduce.c (the ring) and bench_comm.c. */
#ifndef CT_COMM_IMPL_H
#define CT_COMM_IMPL_H

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>

#include "comm.h"

/* Ring pipeline (sizes in elements). A chunk of up to CT_RING_WHOLE
 * (2 MiB of floats) goes as one message; longer chunks go in segments of
 * CT_RING_SEG (256 KiB of floats), added while they are still in cache.
 * Measured with 2 ranks on 2 MiB-L2 cores: up to 2 MiB one message wins,
 * as every message costs a rendezvous and a process_vm_readv call; from
 * 4 MiB the segments win (and 256 KiB beat 512 KiB and 1 MiB ones).
 * Receive slots hold CT_RING_SLOTS elements in all (one whole chunk); at
 * most CT_RING_WINDOW receives and sends are in flight. */
#define CT_RING_SEG ((int64_t)65536)
#define CT_RING_WHOLE ((int64_t)524288)
#define CT_RING_SLOTS ((int64_t)524288)
#define CT_RING_WINDOW 4

struct ct_comm_state {
    MPI_Comm comm;     /* our duplicate of MPI_COMM_WORLD: no tag clashes with anyone */
    float *rslots;     /* CT_RING_SLOTS floats for receives */
    uint16_t *sslots;  /* CT_RING_SLOTS halves for fp16 sends */
    int64_t seg;       /* CT_RING_SEG (tests set smaller values) */
    int64_t whole;     /* CT_RING_WHOLE (tests set 0 to force segments) */
    int oversubscribed; /* more ranks on this node than processors */
    pthread_t init_thread; /* the thread that started MPI */
    int broken;        /* a collective failed: refuse the next ones */
    struct ct_heartbeat *hb; /* the liveness thread (heartbeat.c), or NULL */
    char failure[256]; /* why */
};

/* heartbeat.c: start the liveness thread (collective: the ranks exchange
 * their UDP addresses over MPI), change its silence limit (0 = off), stop
 * it (saying goodbye to the peers). */
ct_status ct_heartbeat_start(ct_comm *c, double silence);
void ct_heartbeat_set(struct ct_comm_state *st, double silence);
void ct_heartbeat_stop(struct ct_comm_state *st);

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

/* What an idle poll loop does between polls (*spins counts them since the
 * last progress): when ranks share processors, or on a helper thread,
 * yield, so that the peer we wait for or the compute threads can run. */
void ct_comm_idle(const ct_comm *c, unsigned *spins);

/* buf (n doubles, in place) = max over ranks (the bench's timer). */
ct_status ct_comm_allreduce_max_f64(ct_comm *c, double *buf, int n);

#endif
