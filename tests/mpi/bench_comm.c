/* Driver for ct_comm_bench (what `ctrain bench-comm` runs): the ring
 * against MPI_Allreduce, 4 KiB to 64 MiB, table and summary on rank 0.
 * Run: mpirun -np 2 bench_comm */
#include <mpi.h>
#include <stdio.h>

#include "comm.h"

int main(int argc, char **argv)
{
    ct_comm c;
    ct_status s = ct_comm_init(&argc, &argv, &c);
    if (s == CT_OK) s = ct_comm_bench(&c, stdout);
    if (s != CT_OK) {
        fprintf(stderr, "bench_comm: rank %d: %s\n", c.rank, ct_error_message());
        if (c.mpi && c.size > 1) MPI_Abort(MPI_COMM_WORLD, ct_status_exit_code(s));
    }
    ct_comm_finalize(&c);
    return ct_status_exit_code(s);
}
