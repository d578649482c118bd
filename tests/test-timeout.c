/* test-timeout.c — task_timeout stops a stuck task (SIGTERM, then SIGKILL after a grace),
 * reports "timed out after 0.5 s" and replaces the worker; retries run a failed task
 * again, with one job log row per attempt. */
#include "testutil.h"

#include <string.h>

static guint
count_rows (const char *log, const char *needle)
{
  guint n = 0;
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);
  for (int i = 1; lines[i]; i++) /* after the header; the job's identity is no row */
    if (*lines[i] && *lines[i] != '#' && (!needle || strstr (lines[i], needle)))
      n++;
  return n;
}

static void
test_timeout_fires (void)
{
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  int status = tt_run_testkit ("workers = 2\ntask_timeout = 0.5\n",
                               "tasks = 6\nop = sleepecho:10:%n\nbad_task = 2\nbad_op = hang\n", NULL,
                               &out, &err);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%.3f s", took);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "task 2 (hang) failed: timed out after 0.5 s"));
  g_assert_nonnull (strstr (err, "6 tasks: 5 succeeded, 1 failed, 0 not run"));
  /* timeout + grace, with room for a loaded machine */
  g_assert_cmpfloat (took, >=, 0.5);
  g_assert_cmpfloat (took, <, 5.0);
}

/* A task that ignores SIGTERM is killed after the grace. */
static void
test_timeout_escalates_to_kill (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\ntask_timeout = 0.3\n",
                                         "tasks = 1\nop = hang-ignoring-term\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "timed out after 0.3 s (worker 1, pid "));
  g_assert_nonnull (strstr (err, "stopped with SIGKILL"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_cmpuint (count_rows (text, "\t-1\t9\thang-ignoring-term"), ==, 1);
  tt_rmtree (dir);
}

/* 3 stuck tasks, task_timeout = 0.5, retries = 2: 9 attempts, 9 rows, a few seconds. */
static void
test_retries_rows (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\ntask_timeout = 0.5\nretries = 2\n",
                                         "tasks = 3\nop = hang\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  gint64 t0 = g_get_monotonic_time ();
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%.3f s\n%s", took, err);
  g_assert_cmpfloat (took, <, 15.0);
  g_assert_nonnull (strstr (err, "3 tasks: 0 succeeded, 3 failed, 0 not run"));
  g_assert_cmpuint (tt_count_lines (err, "taskrun: task 1 (hang) failed, attempt "), ==, 2);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_cmpuint (count_rows (text, NULL), ==, 9);
  for (int seq = 1; seq <= 3; seq++) {
    g_autofree char *start = g_strdup_printf ("%d\t:\t", seq);
    g_assert_cmpuint (tt_count_lines (text, start), ==, 3);
  }
  g_assert_cmpuint (count_rows (text, "\t-1\t15\thang"), ==, 9);
  tt_rmtree (dir);
}

/* A task that fails once and then succeeds counts as succeeded. */
static void
test_retry_then_success (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *marker = g_build_filename (dir, "marker", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 4\nbad_task = 3\nbad_op = fail-once:%s\n", marker);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\nretries = 1\n", keys);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "4 tasks: 4 succeeded, 0 failed, 0 not run"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_cmpuint (count_rows (text, NULL), ==, 5);
  g_assert_cmpuint (tt_count_lines (text, "3\t:\t"), ==, 2);
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/timeout/fires", test_timeout_fires);
  g_test_add_func ("/timeout/escalates-to-kill", test_timeout_escalates_to_kill);
  g_test_add_func ("/timeout/retries-rows", test_retries_rows);
  g_test_add_func ("/timeout/retry-then-success", test_retry_then_success);
  return g_test_run ();
}
