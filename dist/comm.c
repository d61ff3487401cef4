/* MPI start-up and shutdown, the timeout, and the small collectives
 * (broadcast, allreduce of doubles, barrier). Those are MPI's nonblocking
 * collectives polled with MPI_Test, never a blocking wait, so that a rank
 * that died or stopped taking part becomes a CT_ERR_COMM after the
 * timeout instead of a hang. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "comm_impl.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CT_COMM_DEFAULT_TIMEOUT 300.0
#define CT_COMM_DEFAULT_HEARTBEAT 20.0
/* A poll loop that made no progress for this many polls (milliseconds of
 * spinning or yielding) sleeps CT_IDLE_NAP_NS between polls. */
#define CT_IDLE_SPINS 20000u
#define CT_IDLE_NAP_NS 200000L
/* Broadcasts go out in pieces MPI's int count can hold. */
#define CT_BCAST_PIECE ((int64_t)1 << 30)

static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

double ct_comm_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void state_destroy(struct ct_comm_state *st)
{
    if (!st) return;
    ct_heartbeat_stop(st);
    /* A failed collective may have left receives MPI could still complete
     * into the slots: then they stay allocated. */
    if (!st->broken) {
        if (st->comm != MPI_COMM_NULL) MPI_Comm_free(&st->comm);
        free(st->rslots);
        free(st->sslots);
    }
    free(st);
}

/* More ranks on this node than processors they may run on (the union of
 * their affinity masks: a cpuset or a binding counts): then poll loops
 * must yield. */
static ct_status check_oversubscribed(ct_comm *c)
{
    MPI_Comm node;
    int rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "comm init", "MPI_Comm_split_type", -1, rc);
    int local = 1;
    MPI_Comm_size(node, &local);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++) CPU_SET(i, &set);
    rc = MPI_Allreduce(MPI_IN_PLACE, &set, (int)sizeof set, MPI_BYTE, MPI_BOR, node);
    MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "comm init", "MPI_Allreduce of CPU masks", -1, rc);
    c->st->oversubscribed = local > CPU_COUNT(&set);
    return CT_OK;
}

static ct_status state_create(ct_comm *c)
{
    struct ct_comm_state *st = calloc(1, sizeof *st);
    if (!st) return CT_FAIL(CT_ERR_NOMEM, "comm: out of memory for the communicator state");
    st->comm = MPI_COMM_NULL;
    st->seg = CT_RING_SEG;
    st->whole = CT_RING_WHOLE;
    st->init_thread = pthread_self();
    c->st = st;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &st->comm);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "comm init", "MPI_Comm_dup", -1, rc);
    MPI_Comm_set_errhandler(st->comm, MPI_ERRORS_RETURN);
    CT_TRY(check_oversubscribed(c));
    CT_TRY(ct_heartbeat_start(c, CT_COMM_DEFAULT_HEARTBEAT));
    st->rslots = aligned_alloc(64, CT_RING_SLOTS * sizeof(float));
    st->sslots = aligned_alloc(64, CT_RING_SLOTS * sizeof(uint16_t));
    if (!st->rslots || !st->sslots)
        return CT_FAIL(CT_ERR_NOMEM, "comm: out of memory for the ring's %lld KiB of buffers",
                       (long long)(CT_RING_SLOTS * (sizeof(float) + sizeof(uint16_t)) >> 10));
    return CT_OK;
}

ct_status ct_comm_init(int *argc, char ***argv, ct_comm *c)
{
    c->rank = 0;
    c->size = 1;
    c->mpi = 0;
    c->timeout = CT_COMM_DEFAULT_TIMEOUT;
    c->st = NULL;
    if (!launched_by_mpi()) return CT_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return CT_FAIL(CT_ERR_COMM, "MPI_Init_thread failed");
    c->mpi = 1;
    if (provided < MPI_THREAD_SERIALIZED)
        return CT_FAIL(CT_ERR_COMM, "MPI provides thread level %d, ctrain needs MPI_THREAD_SERIALIZED (gradients are reduced on a communication thread)", provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (c->size > 1) return state_create(c);
    return CT_OK;
}

void ct_comm_finalize(ct_comm *c)
{
    state_destroy(c->st);
    c->st = NULL;
    if (c->mpi) MPI_Finalize();
    c->mpi = 0;
}

ct_status ct_comm_set_timeout(ct_comm *c, double seconds)
{
    if (!(seconds >= 0) || isinf(seconds))
        return CT_FAIL(CT_ERR_USAGE, "comm: timeout must be a finite number of seconds >= 0 (0 = none), got %g",
                       seconds);
    c->timeout = seconds;
    return CT_OK;
}

ct_status ct_comm_set_heartbeat(ct_comm *c, double seconds)
{
    if (!(seconds >= 0) || isinf(seconds))
        return CT_FAIL(CT_ERR_USAGE, "comm: heartbeat must be a finite number of seconds >= 0 (0 = off), got %g",
                       seconds);
    ct_heartbeat_set(c->st, seconds);
    return CT_OK;
}

/* --- errors and polling ---------------------------------------------------- */

static void mark_broken(ct_comm *c)
{
    if (!c->st) return;
    c->st->broken = 1;
    snprintf(c->st->failure, sizeof c->st->failure, "%s", ct_error_message());
}

ct_status ct_comm_mpi_error(ct_comm *c, const char *op, const char *what, int peer, int rc)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error code %d", rc);
    if (peer >= 0)
        CT_FAIL(CT_ERR_COMM, "%s: %s with rank %d failed on rank %d: %s", op, what, peer, c->rank, msg);
    else
        CT_FAIL(CT_ERR_COMM, "%s: %s failed on rank %d: %s", op, what, c->rank, msg);
    mark_broken(c);
    return CT_ERR_COMM;
}

ct_status ct_comm_timeout_error(ct_comm *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_error_setv(CT_ERR_COMM, __FILE__, __LINE__, fmt, ap);
    va_end(ap);
    mark_broken(c);
    return CT_ERR_COMM;
}

ct_status ct_comm_check_usable(const ct_comm *c, const char *op)
{
    if (c->st && c->st->broken)
        return CT_FAIL(CT_ERR_COMM, "%s: the communicator is unusable after an earlier failure (%s)", op,
                       c->st->failure);
    return CT_OK;
}

void ct_comm_idle(const ct_comm *c, unsigned *spins)
{
    /* Yield only when ranks share cores, or when a helper thread (not the
     * one that started MPI: grad_sync's) polls while compute threads want
     * the cores. A rank's main thread with a core of its own would hand
     * it to an unrelated process for a whole time slice (MPI's blocking
     * calls spin too). Even then a few microseconds of pure polling come
     * first. A wait that goes on (a slow or dead peer) backs off into
     * short sleeps, so a rank waiting for minutes does not burn its core. */
    if (++*spins <= 64 || !c->st) return;
    if (*spins > CT_IDLE_SPINS) {
        struct timespec nap = {0, CT_IDLE_NAP_NS};
        nanosleep(&nap, NULL);
    } else if (c->st->oversubscribed || !pthread_equal(pthread_self(), c->st->init_thread)) {
        sched_yield();
    }
}

ct_status ct_comm_wait(ct_comm *c, MPI_Request *req, const char *op)
{
    double t0 = ct_comm_now();
    unsigned spins = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, op, "MPI_Test", -1, rc);
        if (done) return CT_OK;
        if (c->timeout > 0 && (spins & 15) == 0 && ct_comm_now() - t0 > c->timeout)
            return ct_comm_timeout_error(c, "%s: no progress for %g s (is every rank alive?)", op, c->timeout);
        ct_comm_idle(c, &spins);
    }
}

/* --- small collectives ----------------------------------------------------- */

ct_status ct_comm_bcast(ct_comm *c, void *buf, int64_t bytes, int root)
{
    if (bytes < 0 || (!buf && bytes > 0))
        return CT_FAIL(CT_ERR_USAGE, "bcast: needs a buffer and a size >= 0, got %lld bytes at %p", (long long)bytes,
                       buf);
    if (root < 0 || root >= c->size)
        return CT_FAIL(CT_ERR_USAGE, "bcast: root rank %d is not in the world of %d", root, c->size);
    if (c->size == 1 || bytes == 0) return CT_OK;
    CT_TRY(ct_comm_check_usable(c, "bcast"));
    char op[64];
    snprintf(op, sizeof op, "bcast from rank %d", root);
    for (int64_t off = 0; off < bytes; off += CT_BCAST_PIECE) {
        int64_t len = bytes - off < CT_BCAST_PIECE ? bytes - off : CT_BCAST_PIECE;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + off, (int)len, MPI_BYTE, root, c->st->comm, &req);
        if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, op, "MPI_Ibcast", root, rc);
        CT_TRY(ct_comm_wait(c, &req, op));
    }
    return CT_OK;
}

static ct_status allreduce_small(ct_comm *c, void *buf, int n, MPI_Datatype type, MPI_Op mop, const char *op)
{
    if (n < 0 || (!buf && n > 0))
        return CT_FAIL(CT_ERR_USAGE, "%s: needs a buffer and n >= 0, got n = %d at %p", op, n, buf);
    if (c->size == 1 || n == 0) return CT_OK;
    CT_TRY(ct_comm_check_usable(c, op));
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, mop, c->st->comm, &req);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, op, "MPI_Iallreduce", -1, rc);
    return ct_comm_wait(c, &req, op);
}

ct_status ct_comm_allreduce_f64(ct_comm *c, double *buf, int n)
{
    return allreduce_small(c, buf, n, MPI_DOUBLE, MPI_SUM, "allreduce_f64");
}

ct_status ct_comm_allreduce_i64(ct_comm *c, int64_t *buf, int n)
{
    return allreduce_small(c, buf, n, MPI_INT64_T, MPI_SUM, "allreduce_i64");
}

ct_status ct_comm_allreduce_max_f64(ct_comm *c, double *buf, int n)
{
    return allreduce_small(c, buf, n, MPI_DOUBLE, MPI_MAX, "allreduce_max_f64");
}

ct_status ct_comm_barrier(ct_comm *c)
{
    if (c->size == 1) return CT_OK;
    CT_TRY(ct_comm_check_usable(c, "barrier"));
    MPI_Request req;
    int rc = MPI_Ibarrier(c->st->comm, &req);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "barrier", "MPI_Ibarrier", -1, rc);
    return ct_comm_wait(c, &req, "barrier");
}
