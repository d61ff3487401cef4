/* A rank that stops taking part must become a CT_ERR_COMM on the others
 * within the timeout instead of a hang.
 *
 * Usage: mpirun -np N test_comm_timeout ring|fp16|bcast|barrier|f64
 * Rank 1 skips the collective and sleeps; every other rank calls it with
 * a 2 s timeout. Rank 0 checks that it got CT_ERR_COMM, not before the 2 s
 * (no upper bound but a hang's: a loaded machine only makes it later),
 * that the message names the operation (and rank 1, for the ring), that
 * it did not spin a core while it waited (CPU time under half the wall
 * time: the poll loops back off into sleeps), and that the communicator
 * then refuses the next collective (by its "unusable" message, no MPI). It prints
 * "test_comm_timeout <op>: PASS" or "... FAIL" and ends the whole job with
 * MPI_Abort (exit code 0 on success; the CTest entry reads the output, as
 * the ranks left waiting in MPI could not finalise). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "comm.h"
#include "comm_impl.h"

#define TIMEOUT_S 2.0
#define HANG_S 45 /* rank 1 sleeps this long: only a hang comes near it */

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}
#define N_FLOATS (1 << 20) /* large enough that sends wait for the receiver */

static ct_status run(ct_comm *c, const char *op, float *buf)
{
    if (strcmp(op, "ring") == 0) return ct_comm_allreduce(c, buf, N_FLOATS, CT_ALLREDUCE_RING, 1.0f);
    if (strcmp(op, "fp16") == 0) return ct_comm_allreduce_fp16(c, buf, N_FLOATS, 1.0f);
    if (strcmp(op, "bcast") == 0) return ct_comm_bcast(c, buf, 1000, 1); /* rank 1 is the root */
    if (strcmp(op, "barrier") == 0) return ct_comm_barrier(c);
    double v[2] = {1, 2};
    return ct_comm_allreduce_f64(c, v, 2);
}

int main(int argc, char **argv)
{
    ct_comm c;
    if (ct_comm_init(&argc, &argv, &c) != CT_OK || c.size < 2) {
        fprintf(stderr, "test_comm_timeout: needs mpirun with 2 or more ranks (%s)\n", ct_error_message());
        return 1;
    }
    const char *op = argc > 1 ? argv[1] : "ring";
    static const char *const ops[] = {"ring", "fp16", "bcast", "barrier", "f64", NULL};
    static const char *const expect[] = {"allreduce: ", "allreduce: ", "bcast from rank 1: ", "barrier: ",
                                         "allreduce_f64: "};
    int which = -1;
    for (int i = 0; ops[i]; i++)
        if (strcmp(op, ops[i]) == 0) which = i;
    if (which < 0) {
        if (c.rank == 0) printf("test_comm_timeout %s: FAIL (unknown operation)\n", op);
        MPI_Abort(MPI_COMM_WORLD, 2);
        return 2;
    }
    float *buf = calloc(N_FLOATS, sizeof *buf);
    ct_comm_set_timeout(&c, TIMEOUT_S);
    if (ct_comm_barrier(&c) != CT_OK) { /* start together */
        fprintf(stderr, "rank %d: %s\n", c.rank, ct_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    if (c.rank == 1) {
        sleep(HANG_S);
        printf("test_comm_timeout %s: FAIL (rank 0 did not end the job)\n", op);
        fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    double t0 = ct_comm_now(), cpu0 = cpu_seconds();
    ct_status s = run(&c, op, buf);
    double dt = ct_comm_now() - t0, cpu = cpu_seconds() - cpu0;
    if (c.rank != 0) {
        fprintf(stderr, "rank %d: %s after %.2f s: %s\n", c.rank, ct_status_name(s), dt, ct_error_message());
        sleep(HANG_S); /* rank 0 ends the job */
        return 1;
    }
    char why[1200];
    snprintf(why, sizeof why, "%s", ct_error_message());
    int ok = s == CT_ERR_COMM && dt >= TIMEOUT_S - 0.05 && dt < HANG_S - 5 &&
             strncmp(why, expect[which], strlen(expect[which])) == 0;
    int idle = cpu < 0.5 * dt;
    if (which <= 1) ok = ok && strstr(why, "rank 1 ") != NULL;
    /* the communicator is now unusable: the next call fails at once */
    ct_status s2 = ct_comm_barrier(&c);
    int refused = s2 == CT_ERR_COMM && strstr(ct_error_message(), "unusable") != NULL;
    printf("test_comm_timeout %s: %s (%d ranks, %s after %.2f s: \"%s\"; %.2f s of CPU while waiting%s; next call %s)\n",
           op, ok && idle && refused ? "PASS" : "FAIL", c.size, ct_status_name(s), dt, why, cpu,
           idle ? "" : " (SPINNING)", refused ? "refused" : "NOT refused");
    fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, ok && idle && refused ? 0 : 1);
    return 1;
}
