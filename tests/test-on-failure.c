/* test-on-failure.c — on_failure = stop: after the first task that fails for good, no new
 * task starts, running ones finish, the rest are counted as not run, exit 1. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static void
test_stop (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 1\non_failure = stop\n",
                                   "tasks = 20\nop = sleepecho:20:%n\nbad_task = 3\nbad_op = fail:three\n",
                                   NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "task 3 (fail:three) failed: three"));
  g_assert_nonnull (strstr (err, "on_failure = stop"));
  /* tasks 1 and 2 ran; 3 failed; at most the tasks already handed to the worker ran after */
  guint64 ok = 0, failed = 0, not_run = 0;
  const char *sum = strstr (err, "20 tasks: ");
  g_assert_nonnull (sum);
  g_assert_cmpint (sscanf (sum, "20 tasks: %" G_GUINT64_FORMAT " succeeded, %" G_GUINT64_FORMAT
                           " failed, %" G_GUINT64_FORMAT " not run", &ok, &failed, &not_run), ==, 3);
  g_assert_cmpuint (failed, ==, 1);
  g_assert_cmpuint (ok + failed + not_run, ==, 20);
  g_assert_cmpuint (ok, >=, 2);
  g_assert_cmpuint (not_run, >=, 10);
}

static void
test_continue (void)
{
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_testkit ("workers = 1\n", "tasks = 20\nbad_task = 3\nbad_op = fail:three\n",
                                   NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "20 tasks: 19 succeeded, 1 failed, 0 not run"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/on-failure/stop", test_stop);
  g_test_add_func ("/on-failure/continue", test_continue);
  return g_test_run ();
}
