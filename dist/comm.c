/* MPI start-up and shutdown. */
#include "comm.h"

#include <mpi.h>
#include <stdlib.h>

static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

ct_status ct_comm_init(int *argc, char ***argv, ct_comm *c)
{
    c->rank = 0;
    c->size = 1;
    c->mpi = 0;
    if (!launched_by_mpi()) return CT_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return CT_FAIL(CT_ERR_COMM, "MPI_Init_thread failed");
    c->mpi = 1;
    if (provided < MPI_THREAD_FUNNELED)
        return CT_FAIL(CT_ERR_COMM, "MPI provides thread level %d, ctrain needs MPI_THREAD_FUNNELED", provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return CT_OK;
}

void ct_comm_finalize(ct_comm *c)
{
    if (c->mpi) MPI_Finalize();
    c->mpi = 0;
}

void ct_comm_abort(const ct_comm *c, int code)
{
    if (c->mpi && c->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}
