/* The communicator: rank and world size over MPI, with a world of one
 * when the process was not started by mpirun (no MPI_Init then, so a
 * plain `ctrain` needs no MPI runtime at all). Collectives return
 * statuses; nothing here aborts except ct_comm_abort. */
#ifndef CT_COMM_H
#define CT_COMM_H

#include <stddef.h>

#include "status.h"

typedef struct ct_comm {
    int rank, size;
    int mpi;          /* MPI was initialised by us */
} ct_comm;

/* Starts MPI when launched under mpirun (or srun with PMI), checking the
 * provided thread level; otherwise rank 0 of 1. */
ct_status ct_comm_init(int *argc, char ***argv, ct_comm *c);
void ct_comm_finalize(ct_comm *c);
/* End every rank of the job (MPI_Abort) with `code`; returns only in a
 * world of one. */
void ct_comm_abort(const ct_comm *c, int code);

#endif
