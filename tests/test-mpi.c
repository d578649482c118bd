/* test-mpi.c — the MPI backend, through `mpirun --oversubscribe -n 3 taskrun ...`: rank 0
 * runs the job, ranks 1 and 2 are its workers.  Exact answers as with local workers, one
 * worker per rank, errors for a pool size or backend that disagrees with the launch, a
 * worker that cannot start on one rank, task crashes and timeouts on a rank, tasks that
 * do not see the launch, a task's child process when mpirun ends the job, SIGINT to
 * mpirun and to rank 0, and a killed rank, each followed by --resume finishing exactly
 * the rest.  (The copy plugin under MPI is in test-copy.c, against the rsync oracle.)
 * Skipped as a whole when the build has no MPI backend. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RANKS 3

/* Runs under mpirun; returns the exit status of mpirun. */
static int
run_mpi (const char *const *args, char **out, char **err)
{
  tt_use_mpirun (RANKS);
  int status = tt_run_taskrun (args, NULL, NULL, out, err);
  tt_use_mpirun (0);
  g_test_message ("stderr: %s", *err);
  return status;
}

static void
test_compute (void)
{
  g_autofree char *out = NULL, *err = NULL;
  const char *primes[] = { "-c", "conf/compute.ini", NULL };
  g_assert_cmpint (run_mpi (primes, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, "664579\n");
  g_assert_nonnull (strstr (err, "2 workers (2 processes ran tasks)"));

  /* --dry-run shows the pool size and backend the launch gave */
  const char *dry[] = { "-c", "conf/compute.ini", "--dry-run", NULL };
  g_autofree char *dout = NULL, *derr = NULL;
  g_assert_cmpint (run_mpi (dry, &dout, &derr), ==, 0);
  g_assert_nonnull (strstr (dout, "\nworkers = 2\n"));
  g_assert_nonnull (strstr (dout, "\nbackend = mpi\n"));

  /* sum of squares below 5e6 passes 2^64: the closed form in 128 bits, and the local
   * backend, must agree with the MPI one */
  const guint64 n = 5000000;
  unsigned __int128 expect = (unsigned __int128) (n - 1) * n * (2 * n - 1) / 6;
  g_assert_true (expect > (unsigned __int128) G_MAXUINT64);
  g_autofree char *digits = tt_u128_text (expect);
  g_autofree char *want = g_strdup_printf ("%s\n", digits);
  const char *squares[] = { "-c", "conf/compute.ini", "-s", "compute.op=sum-squares",
                            "-s", "compute.end=5000000", "-s", "compute.chunk=977", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_mpi (squares, &out2, &err2), ==, 0);
  g_assert_cmpstr (out2, ==, want);
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (tt_run_taskrun (squares, NULL, NULL, &out3, &err3), ==, 0);
  g_assert_cmpstr (out3, ==, out2);
}

/* sleep-demo: two workers, one pid each; testkit: the worker numbered W runs on rank W. */
/* --trace and --results under MPI: each worker's lane is named with its rank and host,
 * and each result's Host is where it ran. */
static void
test_trace_names_ranks (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *trace = g_build_filename (dir, "t.json", NULL);
  g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
  const char *args[] = { "-c", "conf/compute.ini", "--trace", trace, "--results", results, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_mpi (args, &out, &err), ==, 0);
  g_autofree char *t = NULL, *r = NULL;
  g_assert_true (g_file_get_contents (trace, &t, NULL, NULL));
  g_assert_true (g_file_get_contents (results, &r, NULL, NULL));
  for (int rank = 1; rank < RANKS; rank++) {
    g_autofree char *lane = g_strdup_printf ("\"name\":\"worker %d (rank %d on ", rank, rank);
    g_assert_nonnull (strstr (t, lane));
  }
  g_assert_nonnull (strstr (t, "\"backend\":\"mpi\""));
  g_assert_cmpuint (tt_count_lines (r, "{\"Version\":1,"), ==, 100);
  g_assert_cmpuint (tt_count_lines (r, "{\"Version\":1,\"Seq\":"), ==, 100);
  g_assert_nonnull (strstr (r, "\"Host\":\"rank 1 on "));
  g_assert_null (strstr (r, "\"Host\":\":\""));
  tt_rmtree (dir);
}

static void
test_one_worker_per_rank (void)
{
  const char *sleep_args[] = { "-c", "conf/sleep-demo.ini", "-s", "taskrun.workers=2",
                               "-s", "sleep-demo.seconds=0.1", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_mpi (sleep_args, &out, &err), ==, 0);
  g_autoptr (GHashTable) pid_of = g_hash_table_new (NULL, NULL);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  guint tasks = 0;
  for (int i = 0; lines[i]; i++) {
    guint seq, worker, pid;
    if (sscanf (lines[i], "task %u: worker %u (pid %u)", &seq, &worker, &pid) != 3)
      continue;
    tasks++;
    g_assert_cmpuint (worker, >=, 1);
    g_assert_cmpuint (worker, <=, RANKS - 1);
    gpointer seen = g_hash_table_lookup (pid_of, GUINT_TO_POINTER (worker));
    if (seen)
      g_assert_cmpuint (GPOINTER_TO_UINT (seen), ==, pid);
    g_hash_table_insert (pid_of, GUINT_TO_POINTER (worker), GUINT_TO_POINTER (pid));
  }
  g_assert_cmpuint (tasks, ==, 10);
  g_assert_cmpuint (g_hash_table_size (pid_of), ==, RANKS - 1);

  /* -v names the worker and pid of each task; rank-pid reports the rank it ran on */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "batch = 1\n", "tasks = 40\nop = rank-pid\n");
  const char *tk_args[] = { "-c", job, "-v", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_mpi (tk_args, &out2, &err2), ==, 0);
  g_autoptr (GHashTable) rank_of_pid = g_hash_table_new (NULL, NULL);
  g_auto (GStrv) olines = g_strsplit (out2, "\n", -1);
  for (int i = 0; olines[i]; i++) {
    guint seq, rank, pid;
    if (sscanf (olines[i], "%u %u:%u", &seq, &rank, &pid) == 3)
      g_hash_table_insert (rank_of_pid, GUINT_TO_POINTER (pid), GUINT_TO_POINTER (rank));
  }
  g_assert_cmpuint (g_hash_table_size (rank_of_pid), >=, 1);
  guint checked = 0;
  g_auto (GStrv) elines = g_strsplit (err2, "\n", -1);
  for (int i = 0; elines[i]; i++) {
    const char *w = strstr (elines[i], "worker ");
    guint worker, pid;
    if (w && sscanf (w, "worker %u (pid %u)", &worker, &pid) == 2 &&
        g_hash_table_contains (rank_of_pid, GUINT_TO_POINTER (pid))) {
      g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (rank_of_pid, GUINT_TO_POINTER (pid))),
                        ==, worker);
      checked++;
    }
  }
  g_assert_cmpuint (checked, ==, 40);
  tt_rmtree (dir);
}

static void
test_launch_disagrees (void)
{
  g_autofree char *out = NULL, *err = NULL;
  const char *j3[] = { "-c", "conf/compute.ini", "-j", "3", NULL };
  g_assert_cmpint (run_mpi (j3, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "-j 3: [taskrun] workers = 3, but with backend 'mpi' the "
                                 "workers are the 2 ranks after rank 0"));
  g_assert_cmpstr (out, ==, "");

  g_autofree char *out2 = NULL, *err2 = NULL;
  const char *local[] = { "-c", "conf/compute.ini", "-s", "taskrun.backend=local", NULL };
  g_assert_cmpint (run_mpi (local, &out2, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "-s taskrun.backend=local: [taskrun] backend 'local', but "
                                  "taskrun was started as 3 MPI ranks"));
}

/* One rank has no workers to give: the job runs on local workers, unless backend = mpi
 * asks for ranks. */
static void
test_single_rank_runs_locally (void)
{
  tt_use_mpirun (1);
  const char *args[] = { "-c", "conf/compute.ini", "-j", "2", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, NULL, NULL, &out, &err);
  const char *mpi[] = { "-c", "conf/compute.ini", "-s", "taskrun.backend=mpi", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  int status2 = tt_run_taskrun (mpi, NULL, NULL, &out2, &err2);
  tt_use_mpirun (0);
  g_test_message ("%s\n%s", err, err2);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "664579\n");
  g_assert_nonnull (strstr (err, "2 workers (2 processes ran tasks)"));
  g_assert_cmpint (status2, ==, 2);
  g_assert_nonnull (strstr (err2, "[taskrun] backend 'mpi': taskrun was not started as several MPI ranks"));
}

static void
test_cannot_start_on_one_rank (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, NULL, "tasks = 6\ninit = fail-on-rank-2\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_mpi (args, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "worker 2 (rank 2 on "));
  g_assert_nonnull (strstr (err, "testkit refuses to start on rank 2"));
  g_assert_cmpstr (out, ==, "");
  tt_rmtree (dir);
}

static void
test_crash_and_timeout_on_a_rank (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "task_timeout = 0.5\n",
                                         "tasks = 8\nbad_task = 3\nbad_op = crash\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_mpi (args, &out, &err), ==, 1);
  g_assert_nonnull (strstr (out, "3 error worker "));
  g_assert_nonnull (strstr (out, " (rank "));
  g_assert_nonnull (strstr (out, "killed by signal 11 (SIGSEGV)"));
  g_assert_nonnull (strstr (err, "8 tasks: 7 succeeded, 1 failed, 0 not run"));

  const char *hang[] = { "-c", job, "-s", "testkit.bad_op=hang-ignoring-term", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_mpi (hang, &out2, &err2), ==, 1);
  g_assert_nonnull (strstr (out2, "3 error timed out after 0.5 s"));
  g_assert_nonnull (strstr (err2, "8 tasks: 7 succeeded, 1 failed, 0 not run"));
  tt_rmtree (dir);
}

/* ---- interruptions, then --resume -------------------------------------------------- */

/* The pids of this job's taskrun processes: ranks and their workers (whose command
 * line does not name the job, so they are found as children of the ranks). */
static GArray *
job_processes (const char *job)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  GDir *proc = g_dir_open ("/proc", 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (proc))) {
    if (!g_ascii_isdigit (name[0]))
      continue;
    g_autofree char *path = g_strdup_printf ("/proc/%s/cmdline", name);
    g_autofree char *cmd = NULL;
    gsize len = 0;
    if (!g_file_get_contents (path, &cmd, &len, NULL))
      continue;
    for (gsize i = 0; i + 1 < len; i++)
      if (cmd[i] == '\0')
        cmd[i] = ' ';
    if (strstr (cmd, job) && strstr (cmd, TT_TASKRUN) && !g_str_has_prefix (cmd, "mpirun")) {
      GPid pid = (GPid) atoi (name);
      g_array_append_val (pids, pid);
      g_autoptr (GArray) kids = tt_children (pid);
      g_array_append_vals (pids, kids->data, kids->len);
    }
  }
  g_dir_close (proc);
  return pids;
}

/* The pid of rank `rank` of the job (from its environment), or 0. */
static GPid
rank_pid (const char *job, int rank)
{
  g_autofree char *want = g_strdup_printf ("OMPI_COMM_WORLD_RANK=%d", rank);
  g_autoptr (GArray) pids = job_processes (job);
  for (guint i = 0; i < pids->len; i++) {
    GPid pid = g_array_index (pids, GPid, i);
    g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", (int) pid);
    g_autofree char *cmd = NULL;
    gsize len = 0;
    if (!g_file_get_contents (path, &cmd, &len, NULL) || memmem (cmd, len, "--tr-worker", 11))
      continue;
    g_free (path);
    path = g_strdup_printf ("/proc/%d/environ", (int) pid);
    g_autofree char *env = NULL;
    if (!g_file_get_contents (path, &env, &len, NULL))
      continue;
    for (gsize off = 0; off < len; off += strlen (env + off) + 1)
      if (strcmp (env + off, want) == 0)
        return pid;
  }
  return 0;
}

/* Seqs with a successful row in the job log, each counted. */
static GHashTable *
logged_successes (const char *joblog)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (joblog, &text, NULL, NULL));
  GHashTable *seen = g_hash_table_new (NULL, NULL);
  g_auto (GStrv) rows = g_strsplit (text, "\n", -1);
  for (int i = 1; rows[i]; i++) {
    g_auto (GStrv) f = g_strsplit (rows[i], "\t", -1);
    if (g_strv_length (f) < 9 || strcmp (f[6], "0") != 0 || strcmp (f[7], "0") != 0)
      continue;
    gpointer key = GUINT_TO_POINTER ((guint) atoi (f[0]));
    guint n = GPOINTER_TO_UINT (g_hash_table_lookup (seen, key));
    g_hash_table_insert (seen, key, GUINT_TO_POINTER (n + 1));
  }
  return seen;
}

typedef enum { STOP_MPIRUN_SIGINT, STOP_RANK0_SIGINT, STOP_KILL_RANK } StopHow;

/* Starts a job of 30 tasks of 0.3 s with a job log, interrupts it as `how` says once a
 * few tasks are logged, checks how it ended and that nothing is left running, then runs
 * it again with --resume: every task succeeds exactly once over the two runs. */
static void
interrupt_then_resume (StopHow how)
{
  const guint tasks = 30;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *joblog = g_build_filename (dir, "joblog", NULL);
  g_autofree char *keys = g_strdup_printf ("joblog = %s\n", joblog);
  g_autofree char *tk = g_strdup_printf ("tasks = %u\nop = sleepecho:300:%%n\n", tasks);
  g_autofree char *job = tt_testkit_job (dir, keys, tk);
  const char *args[] = { "-c", job, NULL };

  tt_use_mpirun (RANKS);
  GPid mpirun = tt_spawn_taskrun (args, dir, NULL);
  tt_use_mpirun (0);
  g_assert_true (tt_wait_lines (joblog, 5, 60));
  GPid target = how == STOP_MPIRUN_SIGINT ? mpirun : rank_pid (job, how == STOP_KILL_RANK ? 2 : 0);
  g_assert_cmpint (target, >, 0);
  kill (target, how == STOP_KILL_RANK ? SIGKILL : SIGINT);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (mpirun, 60, dir, &out, &err);
  g_test_message ("first run, exit %d: %s", status, err);
  if (how == STOP_RANK0_SIGINT) {
    /* taskrun's own interrupt: running tasks finish, the rest are not started, exit 130 */
    g_assert_cmpint (status, ==, 130);
    g_assert_nonnull (strstr (err, "interrupted"));
  } else {
    /* mpirun ends the job (SIGTERM to every rank, then SIGKILL) and exits non-zero by
     * its own rules */
    g_assert_cmpint (status, !=, 0);
  }
  g_autoptr (GArray) left = job_processes (job);
  g_assert_cmpuint (tt_wait_gone (left, 10), ==, 0);

  g_autoptr (GHashTable) before = logged_successes (joblog);
  g_assert_cmpuint (g_hash_table_size (before), >=, 4);
  g_assert_cmpuint (g_hash_table_size (before), <, tasks);

  const char *resume[] = { "-c", job, "--resume", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_mpi (resume, &out2, &err2), ==, 0);
  g_autoptr (GHashTable) after = logged_successes (joblog);
  for (guint seq = 1; seq <= tasks; seq++)
    g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (after, GUINT_TO_POINTER (seq))), ==, 1);
  g_assert_cmpuint (g_hash_table_size (after), ==, tasks);
  g_autofree char *skipped = g_strdup_printf ("%u skipped", g_hash_table_size (before));
  g_assert_nonnull (strstr (err2, skipped));
  tt_rmtree (dir);
}

/* When mpirun ends the job, a task's own child process (in its worker's process group)
 * goes too: the agent stops the group on mpirun's SIGTERM. */
/* A task's commands do not see the launch that started their worker: a taskrun (or any
 * MPI program) a task starts runs on its own, as it would outside mpirun, rather than
 * taking itself for a rank of the worker's job (it failed in MPI_Init). */
static void
test_tasks_do_not_see_the_launch (void)
{
  g_autofree char *command = g_strdup_printf (
    "env | grep -c -e ^OMPI_COMM_WORLD -e ^OMPI_MCA_orte -e ^OMPI_MCA_ess -e ^PMIX_ ; "
    "%s -q -e 'echo inner' ::: x y z; echo inner-status $?", TT_TASKRUN);
  const char *args[] = { "-q", "-s", "exec.shell=yes", "-e", command, ":::", "1", "2", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_mpi (args, &out, &err), ==, 0);
  g_assert_cmpuint (tt_count_lines (out, "0"), ==, 2);
  g_assert_cmpuint (tt_count_lines (out, "inner "), ==, 6);
  g_assert_cmpuint (tt_count_lines (out, "inner x"), ==, 2);
  g_assert_cmpuint (tt_count_lines (out, "inner-status 0"), ==, 2);
  g_assert_null (strstr (err, "MPI_Init"));
}

static void
test_mpirun_stops_task_children (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 1\nop = child-sleep:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, NULL, keys);
  g_autofree char *childpid = g_build_filename (dir, "childpid", NULL);
  const char *args[] = { "-c", job, NULL };
  tt_use_mpirun (RANKS);
  GPid mpirun = tt_spawn_taskrun (args, dir, NULL);
  tt_use_mpirun (0);
  g_assert_true (tt_wait_lines (childpid, 1, 60));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (childpid, &text, NULL, NULL));
  GPid child = (GPid) atoi (text);
  g_assert_cmpint (child, >, 0);
  g_assert_cmpint (kill (child, 0), ==, 0);
  kill (mpirun, SIGINT);
  g_assert_cmpint (tt_wait_taskrun (mpirun, 60, dir, NULL, NULL), !=, 0);
  g_autoptr (GArray) gone = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_array_append_val (gone, child);
  g_assert_cmpuint (tt_wait_gone (gone, 10), ==, 0);
  tt_rmtree (dir);
}

static void
test_sigint_to_mpirun (void)
{
  interrupt_then_resume (STOP_MPIRUN_SIGINT);
}

static void
test_sigint_to_rank0 (void)
{
  interrupt_then_resume (STOP_RANK0_SIGINT);
}

static void
test_killed_rank (void)
{
  interrupt_then_resume (STOP_KILL_RANK);
}

static void
test_skipped (void)
{
  g_test_skip ("no MPI backend in this build (meson option mpi), or no mpirun on PATH");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (!tt_have_mpi ()) {
    g_test_add_func ("/mpi/skipped", test_skipped);
    return g_test_run ();
  }
  g_test_add_func ("/mpi/compute-exact", test_compute);
  g_test_add_func ("/mpi/one-worker-per-rank", test_one_worker_per_rank);
  g_test_add_func ("/mpi/trace-names-ranks", test_trace_names_ranks);
  g_test_add_func ("/mpi/launch-disagrees", test_launch_disagrees);
  g_test_add_func ("/mpi/single-rank-runs-locally", test_single_rank_runs_locally);
  g_test_add_func ("/mpi/cannot-start-on-one-rank", test_cannot_start_on_one_rank);
  g_test_add_func ("/mpi/crash-and-timeout-on-a-rank", test_crash_and_timeout_on_a_rank);
  g_test_add_func ("/mpi/tasks-do-not-see-the-launch", test_tasks_do_not_see_the_launch);
  g_test_add_func ("/mpi/mpirun-stops-task-children", test_mpirun_stops_task_children);
  g_test_add_func ("/mpi/sigint-to-mpirun-then-resume", test_sigint_to_mpirun);
  g_test_add_func ("/mpi/sigint-to-rank0-then-resume", test_sigint_to_rank0);
  g_test_add_func ("/mpi/killed-rank-then-resume", test_killed_rank);
  return g_test_run ();
}
