/* module.c — the entry points of taskrun-mpi.so (see core/mpi-backend.h): MPI start-up, and the
 * descriptor the taskrun binary looks up after loading the module. */
#include "module.h"

#include <stdlib.h>

static int world_size = 1;

static gboolean
module_init (int *rank, int *size, GError **error)
{
  int provided = 0;
  /* Agents start their workers with posix_spawn (no copy of the parent's memory), but a
   * plugin or library may still fork: on InfiniBand, ask libibverbs to keep registered
   * memory out of any child (a fork would otherwise break it in the parent). */
  setenv ("RDMAV_FORK_SAFE", "1", 0);
  if (MPI_Init_thread (NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED, "MPI_Init_thread failed");
    return FALSE;
  }
  MPI_Comm_rank (MPI_COMM_WORLD, rank);
  MPI_Comm_size (MPI_COMM_WORLD, size);
  world_size = *size;
  if (provided < MPI_THREAD_SERIALIZED) {
    /* rank 0 calls MPI from its bridge thread, not from the thread that started it */
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_UNSUPPORTED,
                 "this MPI library offers no thread support beyond level %d "
                 "(MPI_THREAD_SERIALIZED is needed)", provided);
    return FALSE;
  }
  if (*rank == 0 && *size > 1)
    return tr_mpi_bridge_start (*size, error);
  return TRUE;
}

static int
module_finish (int status)
{
  if (world_size > 1)
    return tr_mpi_bridge_finish (status);
  MPI_Finalize ();
  return status;
}

G_MODULE_EXPORT const TrMpiModule tr_mpi_module = {
  .abi = TR_MPI_MODULE_ABI,
  .init = module_init,
  .agent_main = tr_mpi_agent_main,
  .link_class = &tr_link_mpi,
  .finish = module_finish,
};
