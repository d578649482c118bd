/* test-bundles.c — tiny tasks of a stream travel in bundles (many tasks as one unit per
 * frame); every task still gets its own result exactly once, and each way a task can
 * fail inside a bundle (its worker crashes or sends garbage, it fails and is retried, the
 * job stops) ends as it does for single tasks.
 *
 * The runs are long enough (tens of thousands of tasks on one worker) that the failing
 * task runs while the generator is still making tasks, so it is inside a bundle, not in
 * the tail of the job, which is shared out as single tasks. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define TASKS 60000
#define BAD 30000

/* Every task's output comes back once, under its own number: 2 workers, no failures. */
static void
test_every_result_once (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 2\n", "tasks = 100000\nop = echo:n%n\n", NULL, &out,
                                   &err),
                   ==, 0);
  g_assert_nonnull (strstr (err, "100000 tasks: 100000 succeeded, 0 failed, 0 not run"));
  g_autofree guint8 *seen = g_new0 (guint8, 100001);
  guint n = 0;
  for (const char *line = out, *end; *line; line = end + 1, n++) {
    end = strchr (line, '\n');
    g_assert_nonnull (end);
    guint64 seq = 0, echoed = 0;
    char next = 0;
    /* "SEQ nN\n": the result of task SEQ is its own payload's output */
    g_assert_cmpint (sscanf (line, "%" G_GUINT64_FORMAT " n%" G_GUINT64_FORMAT "%c", &seq,
                             &echoed, &next),
                     ==, 3);
    g_assert_cmpint (next, ==, '\n');
    g_assert_cmpuint (seq, ==, echoed);
    g_assert_cmpuint (seq, >=, 1);
    g_assert_cmpuint (seq, <=, 100000);
    g_assert_cmpuint (seen[seq], ==, 0);
    seen[seq] = 1;
  }
  g_assert_cmpuint (n, ==, 100000);
}

/* A worker that dies holding a bundle fails only the task that killed it. */
static void
test_death_in_a_bundle (gconstpointer data)
{
  const char *bad_op = data;
  g_autofree char *keys = g_strdup_printf ("tasks = %d\nquiet = yes\nbad_task = %d\nbad_op = %s\n",
                                           TASKS, BAD, bad_op);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 1\n", keys, NULL, &out, &err), ==, 1);
  g_autofree char *summary = g_strdup_printf ("%d tasks: %d succeeded, 1 failed, 0 not run", TASKS,
                                              TASKS - 1);
  g_assert_nonnull (strstr (err, summary));
  g_autofree char *failed = g_strdup_printf ("task %d (%s) failed: worker 1 (pid ", BAD, bad_op);
  g_assert_nonnull (strstr (err, failed));
  /* no other task is named as failed */
  g_assert_cmpuint (tt_count_lines (err, "taskrun: testkit: task ") +
                        tt_count_lines (err, "taskrun: task "),
                    <=, 1);
}

/* Rows of the job log for task `seq`.  The lines are walked by hand: under
 * AddressSanitizer g_strsplit on tens of thousands of lines takes minutes (its strstr
 * checks the whole rest of the text at each line). */
static guint
joblog_rows (const char *log, guint64 seq)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  guint n = 0;
  for (const char *line = text, *end; *line; line = end + 1) {
    end = strchr (line, '\n');
    g_assert_nonnull (end);
    char *after = NULL;
    if (g_ascii_isdigit (*line) && g_ascii_strtoull (line, &after, 10) == seq && *after == '\t')
      n++;
  }
  return n;
}

/* A task that fails inside a bundle is retried on its own, and each attempt is logged. */
static void
test_retry_from_a_bundle (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = %d\nquiet = yes\nbad_task = %d\nbad_op = fail:boom\n",
                                           TASKS, BAD);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\nretries = 2\n", keys);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_autofree char *summary = g_strdup_printf ("%d tasks: %d succeeded, 1 failed, 0 not run", TASKS,
                                              TASKS - 1);
  g_assert_nonnull (strstr (err, summary));
  g_autofree char *first = g_strdup_printf ("task %d (fail:boom) failed, attempt 1 of 3; retrying: boom", BAD);
  g_autofree char *second = g_strdup_printf ("task %d (fail:boom) failed, attempt 2 of 3; retrying: boom", BAD);
  g_autofree char *last = g_strdup_printf ("task %d (fail:boom) failed: boom", BAD);
  g_assert_nonnull (strstr (err, first));
  g_assert_nonnull (strstr (err, second));
  g_assert_nonnull (strstr (err, last));
  g_assert_cmpuint (joblog_rows (log, BAD), ==, 3);
  g_assert_cmpuint (joblog_rows (log, 1), ==, 1);
  g_assert_cmpuint (joblog_rows (log, TASKS), ==, 1);
  tt_rmtree (dir);
}

/* on_failure = stop with bundles made and not yet sent: they are not run, and the counts
 * add up to the tasks made. */
static void
test_stop_with_bundles_queued (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = %d\nquiet = yes\nbad_task = %d\nbad_op = fail:boom\n",
                                           TASKS * 10, BAD);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\non_failure = stop\n", keys);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  const char *line = strstr (err, " tasks: ");
  g_assert_nonnull (line);
  while (line > err && line[-1] != ' ' && line[-1] != '\n')
    line--;
  guint64 total = 0, ok = 0, failed = 0, not_run = 0;
  g_assert_cmpint (sscanf (line, "%" G_GUINT64_FORMAT " tasks: %" G_GUINT64_FORMAT " succeeded, %"
                           G_GUINT64_FORMAT " failed, %" G_GUINT64_FORMAT " not run",
                           &total, &ok, &failed, &not_run),
                   ==, 4);
  g_assert_cmpuint (failed, ==, 1);
  g_assert_cmpuint (ok + failed + not_run, ==, total);
  g_assert_cmpuint (total, <, TASKS * 10); /* the generator stopped */
  g_assert_cmpuint (ok, >=, BAD - 1);
  /* the log has a row for each task that ran, none for those that did not */
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  guint64 rows = 0;
  for (const char *p = text; *p; p++)
    rows += *p == '\n';
  g_assert_cmpuint (rows - 2, ==, ok + failed); /* less the header and the job's identity */
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bundles/every-result-once", test_every_result_once);
  g_test_add_data_func ("/bundles/death/crash", "crash", test_death_in_a_bundle);
  g_test_add_data_func ("/bundles/death/garbage", "garbage", test_death_in_a_bundle);
  g_test_add_func ("/bundles/retry", test_retry_from_a_bundle);
  g_test_add_func ("/bundles/stop-with-bundles-queued", test_stop_with_bundles_queued);
  return g_test_run ();
}
