/* test-worker-death.c — a worker that crashes, exits, sends garbage or is killed from
 * outside fails only the task it was running, with the cause in words; a new worker takes
 * its place; the run ends with exit 1 and exact counts.  A plugin whose worker_init fails
 * is not restarted in a loop. */
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *bad_op;
  const char *cause;
} CrashCase;

static const CrashCase crash_cases[] = {
  { "segv", "crash", "killed by signal 11 (SIGSEGV)" },
  { "abort", "abort", "killed by signal 6 (SIGABRT)" },
  { "exit", "exit:3", "exited with status 3" },
  { "exit-zero", "exit:0", "exited with status 0" },
  { "garbage", "garbage", "sent a malformed frame and was killed" },
};

/* 12 tasks on 2 workers; task 5 misbehaves; the 11 others succeed. */
static void
test_crash_kind (gconstpointer data)
{
  const CrashCase *c = data;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 12\nop = sleepecho:20:%%n\nbad_task = 5\n"
                                           "bad_op = %s\n", c->bad_op);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, dir, NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "12 tasks: 11 succeeded, 1 failed, 0 not run"));
  g_autofree char *line = g_strdup_printf ("taskrun: task 5 (%s) failed: worker ", c->bad_op);
  g_assert_nonnull (strstr (err, line));
  g_assert_nonnull (strstr (err, c->cause));
  g_assert_cmpuint (tt_count_lines (out, "5 error worker "), ==, 1);
  /* every other task succeeded exactly once */
  for (int i = 1; i <= 12; i++) {
    if (i == 5)
      continue;
    g_autofree char *ok = g_strdup_printf ("%d %d", i, i);
    g_assert_cmpuint (tt_count_lines (out, ok), ==, 1);
  }
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (text, ""), ==, 2 + 12 + 1); /* header, identity, rows, "" */
  tt_rmtree (dir);
}

/* kill -9 (or -SEGV) of a busy worker from outside. */
static void
test_external_kill (gconstpointer data)
{
  int sig = GPOINTER_TO_INT (data);
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", "tasks = 8\nop = sleepecho:1000:%n\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
  /* wait for the first two results, so the workers are mid-way through tasks 3 and 4 */
  g_assert_true (tt_wait_lines (out_path, 2, 20));
  g_usleep (100000);
  g_autoptr (GArray) kids = tt_children (pid);
  g_assert_cmpuint (kids->len, ==, 2);
  GPid victim = g_array_index (kids, GPid, 0);
  g_assert_cmpint (kill (victim, sig), ==, 0);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 30, dir, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "8 tasks: 7 succeeded, 1 failed, 0 not run"));
  g_autofree char *cause = g_strdup_printf ("(pid %d) killed by signal %d (SIG%s)", (int) victim, sig,
                                            sig == SIGKILL ? "KILL" : "SEGV");
  g_assert_nonnull (strstr (err, cause));
  g_assert_cmpuint (tt_wait_gone (kids, 2), ==, 0);
  tt_rmtree (dir);
}

/* worker_init fails: exit 2 with the plugin's message; each slot forked once, no storm. */
static void
test_init_failure_no_storm (gconstpointer data)
{
  const char *init = data;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("init = %s\n", init);
  g_autofree char *job = tt_testkit_job (dir, "workers = 3\n", keys);
  const char *args[] = { "-c", job, NULL };
  const char *env[] = { "G_MESSAGES_DEBUG=taskrun", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, dir, env, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 2);
  g_assert_cmpstr (out, ==, "");
  g_assert_nonnull (strstr (err, "taskrun: a worker could not start: "));
  if (g_str_equal (init, "fail"))
    g_assert_nonnull (strstr (err, "testkit refuses to start (init = fail)"));
  else
    g_assert_nonnull (strstr (err, "killed by signal 11 (SIGSEGV) while starting"));
  /* the debug log names every fork: exactly one per slot */
  guint forks = 0;
  for (const char *p = err; (p = strstr (p, " started as pid ")); p++)
    forks++;
  g_assert_cmpuint (forks, ==, 3);
  tt_rmtree (dir);
}

/* One crashing task among many tiny ones sent in big frames: only it fails. */
static void
test_crash_in_big_frames (gconstpointer data)
{
  const char *batch = data;
  g_autofree char *core = g_strdup_printf ("workers = 1\nbatch = %s\n", batch);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit (core, "tasks = 3000\nquiet = yes\nbad_task = 1500\nbad_op = crash\n",
                                   NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "3000 tasks: 2999 succeeded, 1 failed, 0 not run"));
  g_assert_nonnull (strstr (err, "task 1500 (crash) failed: worker 1 (pid "));
}

/* Garbage from a worker holding a frame of several tasks: the replacement worker lives on. */
static void
test_garbage_in_a_frame (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 1\nbatch = 4\n",
                                   "tasks = 12\nbad_task = 5\nbad_op = garbage\n", NULL, &out, &err),
                   ==, 1);
  g_assert_nonnull (strstr (err, "12 tasks: 11 succeeded, 1 failed, 0 not run"));
  g_assert_nonnull (strstr (err, "sent a malformed frame and was killed"));
}

static gboolean
pid_alive (const char *pidfile)
{
  g_autofree char *text = NULL;
  /* no pid file: the task never started its process, and there is nothing to check */
  g_assert_true (g_file_get_contents (pidfile, &text, NULL, NULL));
  g_autoptr (GArray) one = g_array_new (FALSE, FALSE, sizeof (GPid));
  GPid pid = (GPid) atoi (text);
  g_array_append_val (one, pid);
  return tt_wait_gone (one, 3) != 0;
}

/* A process a task started neither keeps the worker's link open (so the crash is seen at
 * once) nor outlives its worker. */
static void
test_task_children (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 3\nbad_task = 2\nbad_op = bg-then-crash:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%.2f s\n%s", took, err);
  g_assert_cmpfloat (took, <, 15.0); /* not the 30 s of the background sleep */
  g_assert_nonnull (strstr (err, "3 tasks: 2 succeeded, 1 failed"));
  g_autofree char *bg = g_build_filename (dir, "bgpid", NULL);
  g_assert_false (pid_alive (bg));
  tt_rmtree (dir);
}

/* A timed-out task's child process is stopped with it. */
static void
test_timeout_stops_children (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 1\nop = child-sleep:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\ntask_timeout = 0.5\n", keys);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%.2f s\n%s", took, err);
  g_assert_cmpfloat (took, <, 15.0);
  g_assert_nonnull (strstr (err, "timed out after 0.5 s"));
  g_autofree char *child = g_build_filename (dir, "childpid", NULL);
  g_assert_false (pid_alive (child));
  tt_rmtree (dir);
}

/* A worker_init that never returns: SIGINT still ends the run, leaving no process. */
static void
test_init_hang_interrupted (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", "init = hang\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autoptr (GArray) kids = NULL;
  for (int i = 0; i < 500; i++) {
    g_clear_pointer (&kids, g_array_unref);
    kids = tt_children (pid);
    if (kids->len == 2)
      break;
    g_usleep (10000);
  }
  g_assert_cmpuint (kids->len, ==, 2);
  g_usleep (200000);
  kill (pid, SIGINT);
  g_autofree char *err = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 10, dir, NULL, &err), ==, 130);
  g_assert_nonnull (strstr (err, "interrupted while the workers were starting"));
  g_assert_cmpuint (tt_wait_gone (kids, 2), ==, 0);
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (crash_cases); i++) {
    g_autofree char *name = g_strdup_printf ("/worker-death/%s", crash_cases[i].name);
    g_test_add_data_func (name, &crash_cases[i], test_crash_kind);
  }
  g_test_add_data_func ("/worker-death/kill-9", GINT_TO_POINTER (SIGKILL), test_external_kill);
  g_test_add_data_func ("/worker-death/kill-segv", GINT_TO_POINTER (SIGSEGV), test_external_kill);
  g_test_add_data_func ("/worker-death/init-fails", "fail", test_init_failure_no_storm);
  g_test_add_data_func ("/worker-death/init-crashes", "crash", test_init_failure_no_storm);
  g_test_add_data_func ("/worker-death/crash-in-big-frames/batch-auto", "auto", test_crash_in_big_frames);
  g_test_add_data_func ("/worker-death/crash-in-big-frames/batch-1", "1", test_crash_in_big_frames);
  g_test_add_func ("/worker-death/garbage-in-a-frame", test_garbage_in_a_frame);
  g_test_add_func ("/worker-death/task-children", test_task_children);
  g_test_add_func ("/worker-death/timeout-stops-children", test_timeout_stops_children);
  g_test_add_func ("/worker-death/init-hang-interrupted", test_init_hang_interrupted);
  return g_test_run ();
}
