/* test-cli.c — the taskrun binary end to end: conf/sleep-demo.ini as shipped, -j and -s,
 * --dry-run, exit 1 when tasks fail, usage errors, --version and --help. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static guint
distinct_pids_in (const char *out, guint *lines)
{
  g_autoptr (GHashTable) pids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) l = g_strsplit (out, "\n", -1);
  *lines = 0;
  for (int i = 0; l[i]; i++) {
    const char *p = strstr (l[i], "(pid ");
    if (!g_str_has_prefix (l[i], "task ") || !p)
      continue;
    (*lines)++;
    g_hash_table_add (pids, g_strndup (p + 5, strcspn (p + 5, ")")));
  }
  return g_hash_table_size (pids);
}

static void
test_sleep_demo_as_shipped (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  int status = tt_run_taskrun (args, NULL, NULL, &out, &err);
  double seconds = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("sleep-demo took %.3f s\n%s%s", seconds, out, err);
  g_assert_cmpint (status, ==, 0);
  guint lines;
  g_assert_cmpuint (distinct_pids_in (out, &lines), ==, 3);
  g_assert_cmpuint (lines, ==, 10);
  g_assert_nonnull (strstr (err, "10 tasks: 10 succeeded, 0 failed, 0 not run; 3 workers"));
  g_assert_nonnull (strstr (err, "10 tasks ran in 3 worker processes"));
  /* 4 rounds of 0.5 s: a generous bound, timing proper is the benchmark's business */
  g_assert_cmpfloat (seconds, >=, 1.95);
  g_assert_cmpfloat (seconds, <, 10.0);
}

static void
test_jobs_and_set (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "-j", "2", "-s", "sleep-demo.tasks=6",
                         "-s", "sleep-demo.seconds=0.05", "-q", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  guint lines;
  g_assert_cmpuint (distinct_pids_in (out, &lines), <=, 2);
  g_assert_cmpuint (lines, ==, 6);
  g_assert_cmpstr (err, ==, ""); /* -q: no summary */
}

static void
test_dry_run (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "--dry-run", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "plugin = sleep-demo\n"));
  g_assert_nonnull (strstr (out, "workers = 3\n"));
  g_assert_nonnull (strstr (out, "[sleep-demo]\ntasks = 10\n"));
  g_assert_nonnull (strstr (out, ";   1: sleep 1 (0.500 s)\n"));
  g_assert_nonnull (strstr (out, ";   5: sleep 5 (0.500 s)\n"));
  g_assert_null (strstr (out, ";   6:"));
  g_assert_cmpuint (tt_count_lines (out, "task "), ==, 0); /* nothing ran */
}

static void
test_failures_exit_1 (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *tk = tt_test_plugin ("testkit");
  g_autofree char *content = g_strdup_printf (
      "[taskrun]\nplugin = %s\nworkers = 2\n[testkit]\ntasks = 5\nop = fail:number %%n\n", tk);
  g_autofree char *job = tt_write (dir, "job.ini", content);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "task 3 (fail:number 3) failed: number 3\n"));
  g_assert_nonnull (strstr (err, "5 tasks: 0 succeeded, 5 failed, 0 not run"));
  g_assert_cmpuint (tt_count_lines (out, ""), ==, 6); /* 5 lines and the final empty piece */
  tt_rmtree (dir);
}

static void
test_init_failure_exit_2 (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *tk = tt_test_plugin ("testkit");
  g_autofree char *content =
      g_strdup_printf ("[taskrun]\nplugin = %s\nworkers = 3\n[testkit]\ninit = fail\n", tk);
  g_autofree char *job = tt_write (dir, "job.ini", content);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "a worker could not start: testkit: worker_init failed: testkit "
                                 "refuses to start (init = fail)"));
  g_assert_cmpstr (out, ==, "");
  tt_rmtree (dir);
}

static void
test_usage_errors (void)
{
  static const struct {
    const char *args[6];
    const char *expect;
  } cases[] = {
    { { "--no-such-option", NULL }, "Unknown option --no-such-option" },
    { { "-j", "x", "-c", "conf/sleep-demo.ini" }, "-j x: [taskrun] int 'workers': 'x' is not a whole number" },
    { { "-j", "0", "-c", NULL }, "Missing argument for -c" },
    { { "-c", "conf/sleep-demo.ini", "extra", NULL }, "unexpected argument" },
    { { "--progress=sometimes", "-c", "conf/sleep-demo.ini", NULL },
      "--progress takes auto, always or never" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun (cases[i].args, NULL, NULL, &out, &err), ==, 2);
    if (!strstr (err, cases[i].expect))
      g_error ("case %zu: stderr \"%s\" lacks \"%s\"", i, err, cases[i].expect);
    g_assert_cmpstr (out, ==, "");
  }
  const char *none[] = { NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (none, NULL, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "no job file: give one with -c JOB.ini"));
}

static void
test_verbose (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "-j", "2", "-s", "sleep-demo.tasks=3", "-s",
                         "sleep-demo.seconds=0", "-v", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_assert_cmpuint (tt_count_lines (err, "taskrun: task "), ==, 3);
  g_assert_nonnull (strstr (err, "taskrun: task 2 (sleep 2 (0.000 s)) done by worker "));
}

static void
test_version_and_help (void)
{
  const char *v[] = { "--version", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (v, NULL, NULL, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "taskrun 0."));
  g_assert_nonnull (strstr (out, "plugin ABI 1."));
  const char *h[] = { "--help", NULL };
  g_autofree char *hout = NULL, *herr = NULL;
  g_assert_cmpint (tt_run_taskrun (h, NULL, NULL, &hout, &herr), ==, 0);
  g_assert_nonnull (strstr (hout, "--config"));
  g_assert_nonnull (strstr (hout, "Exit status"));
}

/* Runs taskrun through sh with `redirect` applied to its stdout (e.g. ">/dev/full"), or
 * piped into `head -1` when redirect is NULL; returns taskrun's own exit status. */
static int
run_with_stdout (const char *redirect, const char *const *args, char **err)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, "/bin/sh");
  g_ptr_array_add (argv, "-c");
  /* the pipe case: taskrun's status travels out on fd 3, head's output is dropped */
  g_ptr_array_add (argv, redirect ? g_strdup_printf ("exec \"$0\" \"$@\" %s", redirect)
                                  : g_strdup ("s=$( { { \"$0\" \"$@\"; echo $? >&3; } | head -1 "
                                              ">/dev/null; } 3>&1 ); exit $s"));
  g_ptr_array_add (argv, TT_TASKRUN);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  int status = 0;
  g_autoptr (GError) error = NULL;
  gboolean ok = g_spawn_sync (tt_source_root (), (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL,
                              NULL, NULL, err, &status, &error);
  g_free (argv->pdata[2]);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

/* Output that cannot be written is lost output: every command that writes on stdout
 * says so and exits 1, whether the write fails at a line or at the final flush. */
static void
test_stdout_write_errors (void)
{
  static const char *const cases[][8] = {
    { "-q", "-c", "conf/compute.ini", "-s", "compute.end=1000", NULL },
    { "-c", "conf/sleep-demo.ini", "-s", "sleep-demo.tasks=4", "-s", "sleep-demo.seconds=0", NULL },
    { "--dry-run", "-c", "conf/compute.ini", NULL },
    { "--list-plugins", NULL },
    { "--describe", "compute", NULL },
    { "--version", NULL },
    { "--help", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *err = NULL;
    int status = run_with_stdout (">/dev/full", cases[i], &err);
    g_test_message ("%s: %d %s", cases[i][0], status, err);
    g_assert_cmpint (status, ==, 1);
    /* said once, with the reason */
    g_assert_cmpuint (tt_count_lines (err, "taskrun: cannot write to standard output: No space "
                                           "left on device"), ==, 1);
  }
  /* a reader that goes away ends taskrun by SIGPIPE, as any filter (sh reports 128 + 13) */
  const char *many[] = { "-q", "-c", "conf/sleep-demo.ini", "-j", "1", "-s",
                         "sleep-demo.tasks=5000", "-s", "sleep-demo.seconds=0", NULL };
  g_autofree char *err = NULL;
  g_assert_cmpint (run_with_stdout (NULL, many, &err), ==, 141);
  g_assert_null (strstr (err, "cannot write"));
}

/* The summary speaks English for one task and one worker, and gives the whole command's
 * time beside the run phase's. */
static void
test_summary_words (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "-j", "1", "-s", "sleep-demo.tasks=1", "-s",
                         "sleep-demo.seconds=0", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "taskrun: 1 task: 1 succeeded, 0 failed, 0 not run; 1 worker "
                                 "(1 process ran tasks); "));
  g_assert_nonnull (strstr (err, " s in all\n"));
  g_assert_nonnull (strstr (err, "1 task ran in 1 worker process (pool of 1)\n"));
}

/* A task's description and error message are the plugin's text: a newline or a tab in
 * them is shown escaped, so each task stays one line on stderr and in the job log. */
static void
test_task_text_escaped (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 1\nquiet = yes\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "-s", "testkit.op=fail:one\ntwo\tthree\\", "--joblog", log,
                         NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "taskrun: task 1 (fail:one\\ntwo\\tthree\\\\) failed: "
                                 "one\\ntwo\\tthree\\\\\n"));
  g_assert_null (strstr (err, "\ntwo"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\tfail:one\\ntwo\\tthree\\\\\n"));
  tt_rmtree (dir);
}

/* Every attempt's worker counts among the processes that ran tasks: a task that
 * crashed its worker and then succeeded on the replacement ran in two processes. */
static void
test_summary_counts_retried_processes (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *mark = g_build_filename (dir, "crashed", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 3\nbad_task = 1\nbad_op = crash-once:%s\n", mark);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 1\nretries = 1\n", keys, NULL, &out, &err), ==, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "(2 processes ran tasks)"));
  tt_rmtree (dir);
}

/* A worker_fini that outlives the 5 s grace is killed, and said so: what it was finishing
 * is not finished. */
static void
test_slow_worker_fini_is_reported (void)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_testkit ("workers = 1\n", "tasks = 1\nfini = hang\n", NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0); /* every task succeeded */
  g_assert_nonnull (strstr (err, "worker 1 (pid "));
  g_assert_nonnull (strstr (err, "did not exit within 5 s of the end of the job"));
}

/* The limit a task's output is refused for is the one it is held to. */
static void
test_output_limit_is_named (void)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_testkit ("workers = 1\n", "tasks = 1\nop = bytes:33554433\n", NULL, &out, &err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "too large to send back (a task's output may be at most 32 MiB)"));
}

/* Debug logging says when workers end, as it says when they start. */
static void
test_debug_logs_worker_ends (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", "tasks = 4\n");
  const char *args[] = { "-c", job, NULL };
  const char *env[] = { "G_MESSAGES_DEBUG=taskrun", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, env, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "worker 1 started as pid"));
  g_assert_true (g_regex_match_simple ("worker 1 \\(pid [0-9]+\\) ended", err, 0, 0));
  g_assert_true (g_regex_match_simple ("worker 2 \\(pid [0-9]+\\) ended", err, 0, 0));
  tt_rmtree (dir);
}

/* Started with stdout (and stderr) closed, as from cron or a daemon: the descriptors the
 * pool makes must not take their numbers (result lines went into its eventfd, messages
 * into a worker's link, and a healthy task failed); a result that cannot be written is
 * an error, exit 1. */
static void
test_closed_stdout_is_an_error (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\njoblog = log.tsv\n",
                                         "tasks = 20\nop = sleepecho:20:x\n");
  g_autofree char *script = g_strdup_printf ("exec '%s' -c '%s' >&- 2>err.txt", TT_TASKRUN, job);
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  int status;
  g_assert_true (g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                               &status, NULL));
  g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
  g_autofree char *err = NULL;
  g_assert_true (g_file_get_contents (err_path, &err, NULL, NULL));
  g_test_message ("%s", err);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_nonnull (strstr (err, "cannot write to standard output: Bad file descriptor"));
  g_assert_nonnull (strstr (err, "20 tasks: 20 succeeded, 0 failed"));
  /* both closed: every task still succeeds (the job log says so) */
  g_autofree char *script2 = g_strdup_printf ("exec '%s' -q -c '%s' >&- 2>&-", TT_TASKRUN, job);
  const char *argv2[] = { "/bin/sh", "-c", script2, NULL };
  g_assert_true (g_spawn_sync (dir, (char **) argv2, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                               &status, NULL));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_autofree char *log_path = g_build_filename (dir, "log.tsv", NULL);
  g_autofree char *log = NULL;
  g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (log, ""), ==, 2 + 20 + 1);
  g_assert_null (strstr (log, "\t255\t"));
  tt_rmtree (dir);
}

/* --dry-run checks the job log as the run would, and writes none. */
static void
test_dry_run_checks_job_log (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 2\n");
  const char *bad[][6] = { { "-c", job, "--dry-run", "--joblog", "/dev/null", NULL },
                           { "-c", job, "--dry-run", "--joblog", "/nonexistent/log.tsv", NULL } };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun (bad[i], dir, NULL, &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, bad[i][4]));
  }
  g_autofree char *fresh = g_build_filename (dir, "fresh.tsv", NULL);
  const char *good[] = { "-c", job, "--dry-run", "--joblog", fresh, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (good, dir, NULL, &out, &err), ==, 0);
  g_assert_false (g_file_test (fresh, G_FILE_TEST_EXISTS));
  tt_rmtree (dir);
}

/* A worker that dies holding a frame of many tiny tasks fails none of them (each runs
 * again alone, and the one that crashed it succeeds the second time), but its death is
 * said: a worker killed by the OOM killer must not pass unseen. */
static void
test_worker_death_in_a_frame_is_said (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *mark = g_build_filename (dir, "crashed", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 200000\nquiet = yes\nbad_task = 150000\n"
                                           "bad_op = crash-once:%s\n", mark);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_testkit ("workers = 2\n", keys, NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (err, "killed by signal 11 (SIGSEGV) while it ran a frame of "));
  g_assert_nonnull (strstr (err, "200000 succeeded, 0 failed"));
  tt_rmtree (dir);
}

/* Started by srun as one of several tasks without a PMI plugin (srun --mpi=none, as the
 * environment says), or with one this Open MPI cannot use: one line saying what to add,
 * exit 2, before MPI is touched; a task of a step of one, or one that PMIx started, is
 * not refused, nor a question about taskrun (--version). */
static void
test_srun_without_pmi (void)
{
  const char *args[] = { "-c", "conf/compute.ini", NULL };
  const char *plain[] = { "SLURM_PROCID=0", "SLURM_STEP_NUM_TASKS=3", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, plain, &out, &err), ==, 2);
  g_assert_cmpstr (err, ==, "taskrun: srun started 3 tasks without an MPI plugin (srun --mpi=none), "
                            "so they cannot form one job: run srun --mpi=pmix (or set "
                            "MpiDefault=pmix in slurm.conf)\n");
  g_assert_cmpstr (out, ==, "");
  const char *other_rank[] = { "SLURM_PROCID=2", "SLURM_STEP_NUM_TASKS=3", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, other_rank, &out2, &err2), ==, 2);
  g_assert_cmpstr (err2, ==, ""); /* rank 0 says it, once */
  const char *one[] = { "SLURM_PROCID=0", "SLURM_STEP_NUM_TASKS=1", NULL };
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, one, &out3, &err3), ==, 0);
  g_assert_cmpstr (out3, ==, "664579\n");

  /* a question about taskrun forms no job: each task answers for its host */
  const char *version[] = { "--version", NULL };
  g_autofree char *out4 = NULL, *err4 = NULL;
  g_assert_cmpint (tt_run_taskrun (version, NULL, plain, &out4, &err4), ==, 0);
  g_assert_true (g_str_has_prefix (out4, "taskrun "));
  const char *list[] = { "-q", "--list-plugins", NULL };
  g_autofree char *out5 = NULL, *err5 = NULL;
  g_assert_cmpint (tt_run_taskrun (list, NULL, plain, &out5, &err5), ==, 0);
  g_assert_nonnull (strstr (out5, "compute"));
  /* ... but a value that reads like one is a job's */
  const char *value[] = { "-e", "--version", ":::", "a", NULL };
  g_autofree char *out6 = NULL, *err6 = NULL;
  g_assert_cmpint (tt_run_taskrun (value, NULL, plain, &out6, &err6), ==, 2);
  g_assert_nonnull (strstr (err6, "srun started 3 tasks without an MPI plugin"));

  /* srun --mpi=pmi2: PMI-2's variables, which Debian's Open MPI cannot use (no s1/s2
   * components), get the same one line, naming the plugin */
  if (tt_have_mpi () && !TT_MPI_JOINS_PMI) {
    const char *pmi2[] = { "SLURM_PROCID=0", "SLURM_STEP_NUM_TASKS=3", "SLURM_MPI_TYPE=pmi2",
                           "PMI_RANK=0", "PMI_SIZE=3", "PMI_FD=9", NULL };
    g_autofree char *out7 = NULL, *err7 = NULL;
    g_assert_cmpint (tt_run_taskrun (args, NULL, pmi2, &out7, &err7), ==, 2);
    g_assert_cmpstr (err7, ==, "taskrun: srun started 3 tasks with --mpi=pmi2, which this "
                               "taskrun's Open MPI cannot join into one job: run srun "
                               "--mpi=pmix (or set MpiDefault=pmix in slurm.conf)\n");
    g_assert_cmpstr (out7, ==, "");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/sleep-demo-as-shipped", test_sleep_demo_as_shipped);
  g_test_add_func ("/cli/jobs-and-set", test_jobs_and_set);
  g_test_add_func ("/cli/dry-run", test_dry_run);
  g_test_add_func ("/cli/failures-exit-1", test_failures_exit_1);
  g_test_add_func ("/cli/init-failure-exit-2", test_init_failure_exit_2);
  g_test_add_func ("/cli/usage-errors", test_usage_errors);
  g_test_add_func ("/cli/version-and-help", test_version_and_help);
  g_test_add_func ("/cli/verbose", test_verbose);
  g_test_add_func ("/cli/stdout-write-errors", test_stdout_write_errors);
  g_test_add_func ("/cli/summary-words", test_summary_words);
  g_test_add_func ("/cli/task-text-escaped", test_task_text_escaped);
  g_test_add_func ("/cli/summary-counts-retried-processes", test_summary_counts_retried_processes);
  g_test_add_func ("/cli/slow-worker-fini-is-reported", test_slow_worker_fini_is_reported);
  g_test_add_func ("/cli/output-limit-is-named", test_output_limit_is_named);
  g_test_add_func ("/cli/debug-logs-worker-ends", test_debug_logs_worker_ends);
  g_test_add_func ("/cli/closed-stdout-is-an-error", test_closed_stdout_is_an_error);
  g_test_add_func ("/cli/dry-run-checks-job-log", test_dry_run_checks_job_log);
  g_test_add_func ("/cli/worker-death-in-a-frame-is-said", test_worker_death_in_a_frame_is_said);
  g_test_add_func ("/cli/srun-without-pmi", test_srun_without_pmi);
  return g_test_run ();
}
