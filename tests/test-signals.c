/* test-signals.c — SIGINT, SIGTERM or SIGHUP once: no new tasks, running ones finish,
 * summary, exit 130 / 143 / 129; twice: workers killed at once; SIGKILL of taskrun: its
 * workers die with it.  No case leaves a worker process behind. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

static void
parse_summary (const char *err, guint64 total, guint64 *ok, guint64 *failed, guint64 *not_run)
{
  g_autofree char *head = g_strdup_printf ("%" G_GUINT64_FORMAT " tasks: ", total);
  const char *sum = strstr (err, head);
  g_assert_nonnull (sum);
  g_assert_cmpint (sscanf (sum + strlen (head), "%" G_GUINT64_FORMAT " succeeded, %" G_GUINT64_FORMAT
                           " failed, %" G_GUINT64_FORMAT " not run", ok, failed, not_run), ==, 3);
  g_assert_cmpuint (*ok + *failed + *not_run, ==, total);
}

static void
test_once (gconstpointer data)
{
  int sig = GPOINTER_TO_INT (data);
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", "tasks = 20\nop = sleepecho:1000:%n\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
  g_assert_true (tt_wait_lines (out_path, 2, 20));
  g_autoptr (GArray) kids = tt_children (pid);
  g_assert_cmpuint (kids->len, ==, 2);
  kill (pid, sig);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 20, dir, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 128 + sig); /* 130, 143, 129 */
  guint64 ok, failed, not_run;
  parse_summary (err, 20, &ok, &failed, &not_run);
  g_assert_cmpuint (failed, ==, 0); /* running tasks were let finish */
  g_assert_cmpuint (ok, >=, 2);
  g_assert_cmpuint (not_run, >=, 10);
  /* the plugin saw every task: ok results, and the rest as not run */
  g_assert_cmpuint (tt_count_lines (out, ""), ==, 20 + 1);
  guint cancelled = 0;
  for (const char *p = out; (p = strstr (p, " error not run: the job was stopped")); p++)
    cancelled++;
  g_assert_cmpuint (cancelled, ==, not_run);
  g_assert_nonnull (strstr (err, "finishing the running tasks"));
  g_assert_cmpuint (tt_wait_gone (kids, 2), ==, 0);
  tt_rmtree (dir);
}

/* Waits until `n` tasks have started (each made a started.PID file in dir). */
static void
wait_started (const char *dir, guint n)
{
  for (int i = 0; i < 2000; i++) {
    guint found = 0;
    g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)))
      found += g_str_has_prefix (name, "started.");
    if (found >= n)
      return;
    g_usleep (10000);
  }
  g_error ("the tasks did not start within 20 s");
}

/* Waits until taskrun's standard error (dir/err.txt) says `text`. */
static void
wait_said (const char *dir, const char *text)
{
  g_autofree char *path = g_build_filename (dir, "err.txt", NULL);
  for (int i = 0; i < 2000; i++) {
    g_autofree char *err = NULL;
    if (g_file_get_contents (path, &err, NULL, NULL) && strstr (err, text))
      return;
    g_usleep (10000);
  }
  g_error ("taskrun did not say \"%s\" within 20 s", text);
}

static void
test_twice (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 5\nop = mark-hang:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  wait_started (dir, 2); /* both workers hold a task now */
  g_autoptr (GArray) kids = tt_children (pid);
  g_assert_cmpuint (kids->len, ==, 2);
  kill (pid, SIGINT);
  /* the second must not merge with the first while that one is still pending */
  wait_said (dir, "finishing the running tasks");
  kill (pid, SIGINT);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 10, dir, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 130);
  guint64 ok, failed, not_run;
  parse_summary (err, 5, &ok, &failed, &not_run);
  g_assert_cmpuint (ok, ==, 0);
  g_assert_cmpuint (failed, ==, 2);  /* the two that were running, killed */
  g_assert_cmpuint (not_run, ==, 3);
  g_assert_cmpuint (tt_wait_gone (kids, 2), ==, 0);
  tt_rmtree (dir);
}

static void
test_parent_killed (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 5\nop = mark-hang:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  wait_started (dir, 2);
  g_autoptr (GArray) kids = tt_children (pid);
  g_assert_cmpuint (kids->len, ==, 2);
  kill (pid, SIGKILL);
  g_assert_cmpint (tt_wait_taskrun (pid, 10, dir, NULL, NULL), ==, 128 + SIGKILL);
  /* within a second, generously doubled for a loaded machine */
  g_assert_cmpuint (tt_wait_gone (kids, 2.0), ==, 0);
  tt_rmtree (dir);
}

/* SIGTERM to taskrun's whole process group (as `kill -TERM -PGID` or a service manager
 * sends it): workers have their own groups, so running tasks still finish. */
static void
test_group_sigterm (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", "tasks = 20\nop = sleepecho:1000:%n\n");
  g_autofree char *cmd = g_strdup_printf ("exec %s -c %s", TT_TASKRUN, job);
  /* setsid: a group of its own for taskrun, so the test is not in it */
  const char *argv[] = { "setsid", "--wait", "sh", "-c", cmd, NULL };
  GPid pid;
  g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
  int out_fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err_fd = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_true (g_spawn_async_with_fds (dir, (char **) argv, NULL,
                                         G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                         &pid, -1, out_fd, err_fd, NULL));
  close (out_fd);
  close (err_fd);
  g_assert_true (tt_wait_lines (out_path, 2, 20));
  /* setsid made the spawned process the leader of a new group that taskrun is in */
  GPid group = getpgid (pid);
  g_assert_cmpint (group, ==, pid);
  kill (-group, SIGTERM);
  g_autofree char *err = NULL;
  /* bounded: kills and fails on a hang */
  g_assert_cmpint (tt_wait_taskrun (pid, 20, dir, NULL, &err), ==, 143);
  g_test_message ("%s", err);
  guint64 ok, failed, not_run;
  parse_summary (err, 20, &ok, &failed, &not_run);
  g_assert_cmpuint (failed, ==, 0);
  g_assert_cmpuint (not_run, >=, 10);
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/signals/sigint-once", GINT_TO_POINTER (SIGINT), test_once);
  g_test_add_data_func ("/signals/sigterm-once", GINT_TO_POINTER (SIGTERM), test_once);
  g_test_add_data_func ("/signals/sighup-once", GINT_TO_POINTER (SIGHUP), test_once);
  g_test_add_func ("/signals/sigint-twice", test_twice);
  g_test_add_func ("/signals/parent-killed", test_parent_killed);
  g_test_add_func ("/signals/group-sigterm", test_group_sigterm);
  return g_test_run ();
}
