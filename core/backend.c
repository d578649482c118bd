/* backend.c — where a job's workers run.
 *
 * Owns: the choice between local worker processes and MPI ranks (the [taskrun] backend
 * key against how taskrun was started), and the pool size that follows from it.
 * Does not own: starting MPI or its module (mpi-launch.c), the links (link-local.c,
 * mpi/bridge.c), reading the key (jobspec.c).
 */
#include "config.h"
#include "backend.h"
#include "mpi-backend.h"

#include <string.h>

/* Unset, the backend follows how taskrun was started: under mpirun or srun with several
 * ranks, rank 0 runs the job and the other ranks are its workers. */
gboolean
tr_backend_choose (const TrConfig *core, const char *backend_at, gboolean *use_mpi, GError **error)
{
  const TrMpiSession *mpi = tr_mpi_session ();
  gboolean want_mpi = tr_config_is_set (core, "backend")
                          ? strcmp (tr_config_get_string (core, "backend"), "mpi") == 0
                          : mpi != NULL;
  if (want_mpi && !mpi) {
#ifdef TR_HAVE_MPI
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "%s: [taskrun] backend 'mpi': taskrun was not started as several MPI ranks; "
                 "start it with mpirun -n N (or srun -n N): rank 0 runs the job, the other N - 1 "
                 "ranks are its workers", backend_at);
#else
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "%s: [taskrun] backend 'mpi': this taskrun was built without MPI support",
                 backend_at);
#endif
    return FALSE;
  }
  if (!want_mpi && mpi) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "%s: [taskrun] backend 'local', but taskrun was started as %d MPI ranks; leave "
                 "backend unset (or mpi) to use them, or start taskrun without mpirun",
                 backend_at, mpi->size);
    return FALSE;
  }
  *use_mpi = want_mpi;
  return TRUE;
}

/* One worker per rank but rank 0: a pool size that says otherwise is a mistake, not a
 * wish to leave ranks idle. */
gboolean
tr_backend_workers (gboolean use_mpi, gboolean asked, guint *workers, const char *workers_at,
                    GError **error)
{
  if (!use_mpi)
    return TRUE;
  guint ranks = (guint) tr_mpi_session ()->size;
  if (asked && *workers != ranks - 1) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "%s: [taskrun] workers = %u, but with backend 'mpi' the workers are the %u ranks "
                 "after rank 0 (%s -n %u); drop workers, or make it %u",
                 workers_at, *workers, ranks - 1, tr_mpi_launcher (), ranks, ranks - 1);
    return FALSE;
  }
  *workers = ranks - 1;
  return TRUE;
}
