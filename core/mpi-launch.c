/* mpi-launch.c — finding out that mpirun or srun started taskrun, loading the MPI
 * module (see mpi-backend.h) only then, and keeping the launch's variables from the
 * tasks once MPI has read them.
 *
 * Launchers announce themselves in the environment: Open MPI's mpirun sets
 * OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK, Slurm's srun SLURM_PROCID and
 * SLURM_STEP_NUM_TASKS (with PMI_SIZE from its PMI plugins).  Nothing here calls MPI.
 */
#include "config.h"
#include "mpi-backend.h"
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

G_DEFINE_QUARK (taskrun-mpi-error-quark, tr_mpi_error)

static TrMpiSession session; /* .module NULL: no session */
/* What started this process, for messages: read before the launch is hidden. */
static const char *launcher = "mpirun";

static int
env_int (const char *name)
{
  const char *v = g_getenv (name);
  if (!v || !*v)
    return -1;
  char *end = NULL;
  long n = strtol (v, &end, 10);
  return *end == '\0' && n >= 0 && n <= G_MAXINT ? (int) n : -1;
}

gboolean
tr_mpi_launched (int *rank, int *size)
{
  static const char *const size_vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                            "SLURM_STEP_NUM_TASKS", NULL };
  static const char *const rank_vars[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                           "SLURM_PROCID", NULL };
  *size = 0;
  *rank = -1;
  gboolean mpi_rank = FALSE; /* a rank set by an MPI launcher, not only by Slurm */
  for (int i = 0; rank_vars[i]; i++) {
    int r = env_int (rank_vars[i]);
    if (r < 0)
      continue;
    if (*rank < 0)
      *rank = r;
    if (strcmp (rank_vars[i], "SLURM_PROCID") != 0)
      mpi_rank = TRUE;
  }
  for (int i = 0; size_vars[i] && *size <= 0; i++)
    *size = env_int (size_vars[i]);
  *size = MAX (*size, 0);
  launcher = g_getenv ("OMPI_COMM_WORLD_SIZE") || env_int ("SLURM_PROCID") < 0 ? "mpirun" : "srun";
  /* srun sets SLURM_PROCID for an ordinary job step too: only a step of several tasks
   * (or an MPI-aware one) counts.  The size is the step's, not SLURM_NTASKS: a batch
   * script has SLURM_PROCID=0 and the allocation's SLURM_NTASKS, and a taskrun started
   * there by hand is not one of several ranks. */
  return mpi_rank || (*rank >= 0 && *size > 1);
}

const char *
tr_mpi_srun_cannot_join (void)
{
  /* A step of several tasks that no PMIx server and no mpirun started cannot be joined
   * into one job by this Open MPI: each task would be a world of one, and MPI_Init
   * prints a page about how Open MPI was built.  srun's pmix plugin sets PMIX_RANK,
   * mpirun OMPI_COMM_WORLD_SIZE; pmi2's PMI_RANK and PMI_FD serve only an Open MPI with
   * its s1/s2 components (TR_MPI_JOINS_PMI), and a taskrun without MPI says so itself. */
  if (env_int ("SLURM_PROCID") < 0 || env_int ("SLURM_STEP_NUM_TASKS") <= 1)
    return NULL;
  if (g_getenv ("PMIX_RANK") || g_getenv ("OMPI_COMM_WORLD_SIZE"))
    return NULL;
#if defined(TR_HAVE_MPI) && !TR_MPI_JOINS_PMI
  const gboolean pmi_joins = FALSE;
#else
  const gboolean pmi_joins = TRUE;
#endif
  if (pmi_joins && (g_getenv ("PMI_RANK") || g_getenv ("PMI_FD")))
    return NULL;
  const char *plugin = g_getenv ("SLURM_MPI_TYPE");
  return plugin && *plugin && strcmp (plugin, "none") != 0 ? plugin : "none";
}

const char *
tr_mpi_launcher (void)
{
  return launcher;
}

/* Whether a NAME=VALUE entry is one of the launch's: which rank of which job this
 * process is, and how to reach the launcher's PMIx or PMI server.  Open MPI's own (its
 * ess, orte and pmix settings, the world's shape), PMIx's and PMI's all, and Slurm's for
 * the step's task (with these, Open MPI takes a process for a task of a step and waits
 * for a PMI plugin).  The allocation's (SLURM_JOB_ID, SLURM_NODELIST, SLURMD_NODENAME)
 * stay: a task may start steps of its own in it, and the user's MCA settings stay. */
static gboolean
names_the_launch (const char *entry)
{
  static const char *const prefixes[] = {
    "OMPI_COMM_WORLD_", "OMPI_MCA_ess", "OMPI_MCA_orte_", "OMPI_MCA_pmix", "PMIX_", "PMI_",
    "SLURM_PMIX", NULL
  };
  static const char *const names[] = {
    "OMPI_UNIVERSE_SIZE", "OMPI_FIRST_RANKS", "OMPI_APP_CTX_NUM_PROCS", "OMPI_NUM_APP_CTX",
    "OMPI_FILE_LOCATION", "OMPI_ARGV", "OMPI_COMMAND", "SLURM_PROCID", "SLURM_LOCALID",
    "SLURM_GTIDS", "SLURM_STEPID", "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", NULL
  };
  for (int i = 0; prefixes[i]; i++)
    if (g_str_has_prefix (entry, prefixes[i]))
      return TRUE;
  for (int i = 0; names[i]; i++) {
    size_t n = strlen (names[i]);
    if (strncmp (entry, names[i], n) == 0 && entry[n] == '=')
      return TRUE;
  }
  return FALSE;
}

void
tr_mpi_hide_launch (void)
{
  /* A new array put in place whole, never unsetenv: MPI's threads may be reading the
   * environment meanwhile, and unsetenv moves its entries under them.  The old array
   * stays as it was (environ's entries are not this file's to free), and the new one
   * lives as long as the process, reachable from here. */
  static char **kept_environ;
  if (kept_environ)
    return;
  guint n = environ ? g_strv_length (environ) : 0;
  char **kept = g_new0 (char *, n + 1);
  guint k = 0;
  for (guint i = 0; i < n; i++)
    if (!names_the_launch (environ[i]))
      kept[k++] = environ[i];
  kept_environ = kept;
  environ = kept;
}

#ifdef TR_HAVE_MPI
static char *
module_path (void)
{
  const char *env = g_getenv ("TASKRUN_MPI_MODULE");
  if (env && *env)
    return g_strdup (env);
  if (tr_paths_in_build_tree ())
    return g_build_filename (TR_BUILD_ROOT, "core", "mpi", "taskrun-mpi.so", NULL);
  return g_strdup (TR_MPI_MODULE);
}
#endif

const TrMpiSession *
tr_mpi_start (GError **error)
{
#ifndef TR_HAVE_MPI
  g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_UNSUPPORTED,
               "this taskrun was built without MPI support (Open MPI was not found when it "
               "was configured; see the meson option mpi)");
  return NULL;
#else
  g_autofree char *path = module_path ();
  void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED, "cannot load the MPI module: %s",
                 dlerror ());
    return NULL;
  }
  const TrMpiModule *module = dlsym (handle, TR_MPI_MODULE_SYMBOL);
  if (!module || module->abi != TR_MPI_MODULE_ABI) {
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED,
                 "%s: not a taskrun MPI module of this version", path);
    dlclose (handle);
    return NULL;
  }
  int rank = 0, size = 0;
  if (!module->init (&rank, &size, error))
    return NULL; /* MPI's state is unknown: the module stays loaded */
  if (size < 2) {
    /* One rank (a batch script that runs taskrun without srun, say): no workers to be
     * had from MPI, so the job runs on local workers. */
    module->finish (0);
    return NULL;
  }
  session = (TrMpiSession) { .module = module, .rank = rank, .size = size };
  return &session;
#endif
}

const TrMpiSession *
tr_mpi_session (void)
{
  return session.module ? &session : NULL;
}

int
tr_mpi_finish (int status)
{
  const TrMpiModule *module = session.module;
  if (!module || session.rank != 0)
    return status;
  session.module = NULL;
  return module->finish (status);
}
