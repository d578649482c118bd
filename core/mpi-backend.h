/* mpi-backend.h — the MPI backend as seen from the taskrun binary.
 *
 * taskrun itself never links libmpi: loading Open MPI costs every process (each local
 * worker execs taskrun) several milliseconds and a dozen libraries.  When taskrun finds
 * itself started by mpirun or srun, mpi-launch.c loads the module built from core/mpi/
 * (taskrun-mpi.so, present when the build found Open MPI), which initialises MPI.  Rank 0
 * then runs the job as usual with workers behind the module's link class; every other
 * rank becomes an agent that starts a local worker on rank 0's request and carries its
 * frames over MPI (core/mpi/agent.c).
 */
#ifndef TASKRUN_MPI_BACKEND_H
#define TASKRUN_MPI_BACKEND_H

#include <glib.h>

#include "link.h"

G_BEGIN_DECLS

#define TR_MPI_ERROR (tr_mpi_error_quark ())
GQuark tr_mpi_error_quark (void);
typedef enum {
  TR_MPI_ERROR_UNSUPPORTED,
  TR_MPI_ERROR_FAILED,
} TrMpiErrorCode;

#define TR_MPI_MODULE_ABI 1
#define TR_MPI_MODULE_SYMBOL "tr_mpi_module"

/* What the module exports under TR_MPI_MODULE_SYMBOL. */
typedef struct {
  int abi; /* TR_MPI_MODULE_ABI */
  /* MPI_Init_thread; sets this process's rank and the number of ranks. */
  gboolean (*init) (int *rank, int *size, GError **error);
  /* Ranks >= 1: serve rank 0 until it says stop; returns the exit status. */
  int (*agent_main) (void);
  /* Rank 0: the link class whose slot N is rank N. */
  const TrLinkClass *link_class;
  /* Rank 0, at the end of every run (also one that failed before starting workers):
   * tells the agents to exit, finalises MPI, returns the status to exit with. */
  int (*finish) (int status);
} TrMpiModule;

/* The MPI session of this process, or NULL when taskrun was not started by an MPI
 * launcher (or was started as a single rank). */
typedef struct {
  const TrMpiModule *module;
  int rank;
  int size;
} TrMpiSession;

/* Whether the environment says an MPI launcher started this process, as which rank
 * (*rank) of how many (*size; 0 when the launcher does not say). */
gboolean tr_mpi_launched (int *rank, int *size);
/* Started by srun as one of several tasks of a step that this taskrun cannot join into
 * one MPI job: the step's MPI plugin (SLURM_MPI_TYPE; "none" without one), or NULL when
 * the step can be joined or srun did not start this process. */
const char *tr_mpi_srun_cannot_join (void);
/* "srun" or "mpirun": which launcher tr_mpi_launched found, for messages. */
const char *tr_mpi_launcher (void);

/* Takes out of this process's environment the variables by which the launcher told it
 * its place in the job (see mpi-launch.c), once MPI has read them or will not: the
 * environment is what the workers and their tasks inherit, and a task that starts
 * taskrun or an MPI program of its own must not take that for one more rank of this job. */
void tr_mpi_hide_launch (void);

/* Loads the module and initialises MPI.  NULL with an error when this taskrun has no
 * MPI support or MPI cannot start; NULL without one when MPI has a single rank (MPI is
 * then finalised, and the job runs on local workers). */
const TrMpiSession *tr_mpi_start (GError **error);

/* The session tr_mpi_start made, or NULL. */
const TrMpiSession *tr_mpi_session (void);

/* Rank 0's end: see TrMpiModule.finish.  A no-op without a session. */
int tr_mpi_finish (int status);

G_END_DECLS

#endif
