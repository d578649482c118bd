/* test-hostile-core.c — tasks that attack the pool's own machinery: a task that closes
 * its worker's link and runs on, one that forks and then crashes its worker.  Each must
 * cost only the task itself: the rest of the job runs, no process is left behind, and
 * nothing waits for a process that will not end.  And a stop (a signal, on_failure =
 * stop) starts no task that a worker holds queued behind its running one; and taskrun
 * killed outright leaves nothing its tasks started.  And what tasks print on their
 * stdout and stderr comes out in whole lines, never cut into by another worker's or by
 * taskrun's own, a last line without its newline included. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Waits up to `seconds` for taskrun `pid`.  On a hang it kills taskrun (its workers die
 * with it) and returns -1, so that the test can clean up before it fails; else the exit
 * status (128 + signal when killed).  Reads dir/out.txt and dir/err.txt. */
static int
wait_bounded (GPid pid, double seconds, const char *dir, char **out, char **err)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  int status = 0, result = -1;
  for (;;) {
    if (waitpid (pid, &status, WNOHANG) == pid) {
      result = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
      break;
    }
    if (g_get_monotonic_time () > deadline) {
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      break;
    }
    g_usleep (10000);
  }
  g_autofree char *o = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *e = g_build_filename (dir, "err.txt", NULL);
  if (out)
    g_file_get_contents (o, out, NULL, NULL);
  if (err)
    g_file_get_contents (e, err, NULL, NULL);
  return result;
}

/* The pid in file `path`, 0 if there is none. */
static GPid
read_pid (const char *path)
{
  g_autofree char *text = NULL;
  return g_file_get_contents (path, &text, NULL, NULL) ? (GPid) atoi (text) : 0;
}

/* Whether `pid` is still running, after up to `seconds` for it to go. */
static gboolean
still_running (GPid pid, double seconds)
{
  if (pid <= 0)
    return FALSE;
  g_autoptr (GArray) one = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_array_append_val (one, pid);
  return tt_wait_gone (one, seconds) != 0;
}

/* The pid in "(pid N)" after `after` in `text`; 0 if not found. */
static GPid
pid_after (const char *text, const char *after)
{
  const char *at = text ? strstr (text, after) : NULL;
  at = at ? strstr (at, "pid ") : NULL;
  return at ? (GPid) atoi (at + 4) : 0;
}

/* A task that closes the worker's link (fd 3) and runs on: the pool neither waits for
 * that process nor stops feeding the others.  After a grace the process (and its group)
 * is killed, its task fails with the cause, and every other task runs. */
static void
test_link_closed_task_lives_on (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n",
                                         "tasks = 8\nop = sleepecho:50:%n\nbad_task = 1\n"
                                         "bad_op = close-link-hang\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_test_message ("%s", err ? err : "");
  g_assert_cmpint (status, ==, 1); /* -1: taskrun hung and was killed */
  g_assert_nonnull (strstr (err, "8 tasks: 7 succeeded, 1 failed, 0 not run"));
  g_assert_nonnull (strstr (err, "task 1 (close-link-hang) failed: worker "));
  g_assert_nonnull (strstr (err, "closed its link to taskrun"));
  GPid worker = pid_after (err, "task 1 (close-link-hang) failed: worker ");
  g_assert_cmpint (worker, >, 0);
  g_assert_false (still_running (worker, 3));
  tt_rmtree (dir);
}

/* A task forks (without exec, so the copy holds the worker's link) and crashes its
 * worker: the crash is seen when the worker dies, not when the copy lets go of the link
 * 30 s later, and the copy, in the worker's process group, is stopped with it. */
static void
test_crash_with_forked_child (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 3\nbad_task = 2\nbad_op = fork-then-crash:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  g_autofree char *pidfile = g_build_filename (dir, "forkpid", NULL);
  const char *args[] = { "-c", job, NULL };
  gint64 t0 = g_get_monotonic_time ();
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 60, dir, &out, &err);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%.2f s\n%s", took, err ? err : "");
  GPid kid = read_pid (pidfile);
  gboolean left = still_running (kid, 3);
  if (left)
    kill (kid, SIGKILL); /* no process outlives the test, even when it fails */
  g_assert_cmpint (status, ==, 1);
  g_assert_cmpfloat (took, <, 15.0); /* not the 30 s the copy holds the link */
  g_assert_nonnull (strstr (err, "3 tasks: 2 succeeded, 1 failed, 0 not run"));
  g_assert_nonnull (strstr (err, "killed by signal 11 (SIGSEGV)"));
  g_assert_cmpint (kid, >, 0);
  g_assert_false (left);
  tt_rmtree (dir);
}

/* How many tasks started: the started.* files mark-sleep made in dir. */
static guint
count_started (const char *dir)
{
  guint found = 0;
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    found += g_str_has_prefix (name, "started.");
  return found;
}

static void
parse_summary (const char *err, guint64 total, guint64 *ok, guint64 *failed, guint64 *not_run)
{
  g_autofree char *head = g_strdup_printf ("%" G_GUINT64_FORMAT " tasks: ", total);
  const char *sum = err ? strstr (err, head) : NULL;
  g_assert_nonnull (sum);
  g_assert_cmpint (sscanf (sum + strlen (head), "%" G_GUINT64_FORMAT " succeeded, %" G_GUINT64_FORMAT
                           " failed, %" G_GUINT64_FORMAT " not run", ok, failed, not_run), ==, 3);
  g_assert_cmpuint (*ok + *failed + *not_run, ==, total);
}

/* SIGTERM while each of two workers runs its first task and holds more behind it (frames
 * of three): the two running finish, and not one of the held tasks starts. */
static void
test_stop_starts_no_queued_task (gconstpointer data)
{
  int sig = GPOINTER_TO_INT (data);
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 12\nop = mark-sleep:%s:1000\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\nbatch = 3\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  for (int i = 0; i < 2000 && count_started (dir) < 2; i++)
    g_usleep (10000);
  g_assert_cmpuint (count_started (dir), ==, 2); /* both workers run their first task */
  kill (pid, sig);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_test_message ("%s", err ? err : "");
  g_assert_cmpint (status, ==, sig == SIGINT ? 130 : 143);
  guint64 ok, failed, not_run;
  parse_summary (err, 12, &ok, &failed, &not_run);
  g_assert_cmpuint (count_started (dir), ==, 2);
  g_assert_cmpuint (ok, ==, 2);
  g_assert_cmpuint (failed, ==, 0);
  g_assert_cmpuint (not_run, ==, 10);
  /* the plugin saw every task, the held ones as not run */
  g_assert_cmpuint (tt_count_lines (out, ""), ==, 12 + 1);
  tt_rmtree (dir);
}

/* on_failure = stop: task 1 fails at once, while each of two workers has a task of 2 s
 * to start or run and more held behind it (task_timeout makes frames of one task; after
 * the failure, so short a task makes the pool send the workers much more).  Only the
 * tasks started before the stop was known run: one per worker, at most (none when the
 * stop came first). */
static void
test_on_failure_stop_starts_no_queued_task (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 12\nop = mark-sleep:%s:2000\nbad_task = 1\n"
                                           "bad_op = fail:one\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\ntask_timeout = 100\non_failure = stop\n",
                                         keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_test_message ("%s", err ? err : "");
  g_assert_cmpint (status, ==, 1);
  guint64 ok, failed, not_run;
  parse_summary (err, 12, &ok, &failed, &not_run);
  guint started = count_started (dir); /* the failing task makes no mark */
  g_assert_cmpuint (failed, ==, 1);
  g_assert_cmpuint (started, <=, 2);
  g_assert_cmpuint (ok, ==, started);
  g_assert_cmpuint (not_run, ==, 11 - started);
  tt_rmtree (dir);
}

/* taskrun killed with SIGKILL while a task waits for a program it started: the worker
 * dies with its parent, and takes that program (in its process group) with it. */
static void
test_parent_killed_stops_task_children (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 1\nop = child-sleep:%s\n", dir);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  g_autofree char *pidfile = g_build_filename (dir, "childpid", NULL);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  GPid kid = 0;
  for (int i = 0; i < 2000 && !(kid = read_pid (pidfile)); i++)
    g_usleep (10000);
  g_assert_cmpint (kid, >, 0);
  kill (pid, SIGKILL);
  g_assert_cmpint (wait_bounded (pid, 10, dir, NULL, NULL), ==, 128 + SIGKILL);
  gboolean left = still_running (kid, 3);
  if (left)
    kill (kid, SIGKILL); /* no process outlives the test, even when it fails */
  g_assert_false (left);
  tt_rmtree (dir);
}

/* The only worker crashes, and its replacement fails in worker_init once: the slot is
 * started again after a pause, and the job goes on (before, every task left failed:
 * "no worker is left"). */
static void
test_replacement_start_retried (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *mark = g_build_filename (dir, "mark", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 6\nop = echo:%%n\nbad_task = 2\n"
                                           "bad_op = touch-crash:%s\ninit = fail-once-if-mark\n", mark);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  g_autofree char *env_mark = g_strconcat ("TESTKIT_MARK=", mark, NULL);
  const char *env[] = { env_mark, NULL };
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, env);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_test_message ("%s", err ? err : "");
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "6 tasks: 5 succeeded, 1 failed, 0 not run; 1 worker ("));
  g_assert_nonnull (strstr (err, "testkit refuses to start (init = fail-once-if-mark)"));
  g_assert_nonnull (strstr (err, "starting it again in "));
  tt_rmtree (dir);
}

/* A replacement that can never start: the slot is given up after a few tries, said so,
 * and the summary counts the worker slots the job ended with. */
static void
test_replacement_never_starts (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *mark = g_build_filename (dir, "mark", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 40\nop = sleepecho:100:%%n\nbad_task = 2\n"
                                           "bad_op = touch-crash:%s\ninit = fail-if-mark\n", mark);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  g_autofree char *env_mark = g_strconcat ("TESTKIT_MARK=", mark, NULL);
  const char *env[] = { env_mark, NULL };
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, env);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 60, dir, &out, &err);
  g_test_message ("%s", err ? err : "");
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "40 tasks: 39 succeeded, 1 failed, 0 not run; 1 of 2 workers ("));
  g_assert_nonnull (strstr (err, "could not be started again"));
  tt_rmtree (dir);
}

/* Counts the lines of `text` found in `expected` (line -> count seen, without its
 * newline); FALSE, with the line in *bad, at the first line that is neither expected
 * nor allowed by `also` (a prefix; NULL: none), or seen twice. */
static gboolean
check_lines (const char *text, GHashTable *expected, const char *also, char **bad)
{
  /* by memchr over the text, not g_strsplit: its strstr makes AddressSanitizer measure
   * the rest of the text at every line, 50 s for these 24 MB */
  const char *end = text + strlen (text);
  guint i = 0;
  for (const char *p = text; p < end; i++) {
    const char *nl = memchr (p, '\n', (gsize) (end - p));
    gboolean last = nl == NULL;
    g_autofree char *l = g_strndup (p, (gsize) ((last ? end : nl) - p));
    p = last ? end : nl + 1;
    gpointer seen;
    if (g_hash_table_lookup_extended (expected, l, NULL, &seen)) {
      if (GPOINTER_TO_UINT (seen) != 0) {
        *bad = g_strdup_printf ("twice: %.80s", l);
        return FALSE;
      }
      g_hash_table_insert (expected, g_strdup (l), GUINT_TO_POINTER (1));
      continue;
    }
    if (also && g_str_has_prefix (l, also) && strlen (l) < 1000)
      continue;
    *bad = g_strdup_printf ("line %u (%zu bytes): %.120s%s", i + 1, strlen (l), l,
                            last ? " (no newline)" : "");
    return FALSE;
  }
  return TRUE;
}

/* The number of lines of `expected` not seen by check_lines. */
static guint
count_missing (GHashTable *expected)
{
  guint missing = 0;
  GHashTableIter it;
  gpointer seen;
  g_hash_table_iter_init (&it, expected);
  while (g_hash_table_iter_next (&it, NULL, &seen))
    missing += GPOINTER_TO_UINT (seen) == 0;
  return missing;
}

/* print-lines' line I of stream WHICH for TAG (without its newline). */
static char *
printed_line (const char *tag, const char *which, guint i, gsize len)
{
  char *l = g_malloc (len + 1);
  int head = g_snprintf (l, len + 1, "%s %s %u ", tag, which, i);
  memset (l + head, '.', len - (gsize) head);
  l[len] = '\0';
  return l;
}

#define PRINT_TASKS 4
#define PRINT_LINES 2000
#define PRINT_LEN 3000

/* Two workers print 2,000 lines of 3,000 bytes each to stdout and to stderr at once, in
 * writes of 1,000 bytes: every line taskrun writes is one of theirs, whole, or one of its
 * own (a result, a message), and each of theirs comes exactly once. */
static void
test_worker_lines_whole (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = %d\nop = print-lines:T%%n:%d:%d\n",
                                           PRINT_TASKS, PRINT_LINES, PRINT_LEN);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 120, dir, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_autoptr (GHashTable) want_out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) want_err = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint t = 1; t <= PRINT_TASKS; t++) {
    g_hash_table_insert (want_out, g_strdup_printf ("%u printed", t), NULL);
    g_autofree char *tag = g_strdup_printf ("T%u", t);
    for (guint i = 0; i < PRINT_LINES; i++) {
      g_hash_table_insert (want_out, printed_line (tag, "out", i, PRINT_LEN), NULL);
      g_hash_table_insert (want_err, printed_line (tag, "err", i, PRINT_LEN), NULL);
    }
  }
  g_autofree char *bad = NULL;
  if (!check_lines (out, want_out, NULL, &bad))
    g_assert_cmpstr (bad, ==, NULL); /* stdout */
  if (!check_lines (err, want_err, "taskrun: ", &bad))
    g_assert_cmpstr (bad, ==, NULL); /* stderr */
  g_assert_cmpuint (count_missing (want_out), ==, 0);
  g_assert_cmpuint (count_missing (want_err), ==, 0);
  tt_rmtree (dir);
}

/* A task writes a line with no newline on stdout and on stderr, then its worker crashes
 * (or, the last task, returns, and the worker quits at the job's end): each comes out
 * as a line of its own, not lost, not joined to what taskrun writes next. */
static void
test_worker_last_partial_line (gconstpointer data)
{
  const char *how = data;
  gboolean crash = g_str_equal (how, "crash");
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("tasks = 3\nbad_task = %d\nbad_op = print-partial:P:%s\n",
                                           crash ? 2 : 3, how);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_test_message ("stdout:\n%s\nstderr:\n%s", out ? out : "", err ? err : "");
  g_assert_cmpint (status, ==, crash ? 1 : 0);
  g_autoptr (GHashTable) want_out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) want_err = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (want_out, g_strdup ("P out-partial"), NULL);
  g_hash_table_insert (want_err, g_strdup ("P err-partial"), NULL);
  for (guint t = 1; t <= 3; t++)
    if (t != (crash ? 2u : 3u))
      g_hash_table_insert (want_out, g_strdup_printf ("%u %u", t, t), NULL);
  if (!crash)
    g_hash_table_insert (want_out, g_strdup ("3 printed"), NULL);
  g_autofree char *bad = NULL;
  /* the crashed task's result line names its error: any "2 error ..." line is its */
  if (!check_lines (out, want_out, crash ? "2 error " : NULL, &bad))
    g_assert_cmpstr (bad, ==, NULL); /* stdout */
  if (!check_lines (err, want_err, "taskrun: ", &bad))
    g_assert_cmpstr (bad, ==, NULL); /* stderr */
  g_assert_false (g_hash_table_lookup (want_out, "P out-partial") == NULL);
  g_assert_false (g_hash_table_lookup (want_err, "P err-partial") == NULL);
  tt_rmtree (dir);
}

/* A line of 200,000 bytes without a newline until its end: taskrun holds no more than
 * 64 KiB of it, and writes it in pieces of their own lines, nothing lost or added. */
static void
test_worker_long_line_cut (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 1\nop = print-lines:L:1:200000\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = wait_bounded (pid, 30, dir, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  g_autoptr (GString) joined = g_string_new (NULL);
  guint pieces = 0;
  for (guint i = 0; lines[i]; i++) {
    if (!*lines[i] || g_str_equal (lines[i], "1 printed"))
      continue;
    g_assert_cmpuint (strlen (lines[i]), <, 2 * 65536);
    g_string_append (joined, lines[i]);
    pieces++;
  }
  g_autofree char *want = printed_line ("L", "out", 0, 200000);
  g_assert_cmpuint (pieces, >=, 2);
  g_assert_cmpuint (joined->len, ==, 200000);
  g_assert_cmpint (memcmp (joined->str, want, joined->len), ==, 0);
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hostile-core/link-closed-task-lives-on", test_link_closed_task_lives_on);
  g_test_add_func ("/hostile-core/crash-with-forked-child", test_crash_with_forked_child);
  g_test_add_data_func ("/hostile-core/sigterm-starts-no-queued-task", GINT_TO_POINTER (SIGTERM),
                        test_stop_starts_no_queued_task);
  g_test_add_data_func ("/hostile-core/sigint-starts-no-queued-task", GINT_TO_POINTER (SIGINT),
                        test_stop_starts_no_queued_task);
  g_test_add_func ("/hostile-core/on-failure-stop-starts-no-queued-task",
                   test_on_failure_stop_starts_no_queued_task);
  g_test_add_func ("/hostile-core/parent-killed-stops-task-children",
                   test_parent_killed_stops_task_children);
  g_test_add_func ("/hostile-core/replacement-start-retried", test_replacement_start_retried);
  g_test_add_func ("/hostile-core/replacement-never-starts", test_replacement_never_starts);
  g_test_add_func ("/hostile-core/worker-lines-whole", test_worker_lines_whole);
  g_test_add_data_func ("/hostile-core/worker-last-partial-line-crash", "crash",
                        test_worker_last_partial_line);
  g_test_add_data_func ("/hostile-core/worker-last-partial-line-exit", "return",
                        test_worker_last_partial_line);
  g_test_add_func ("/hostile-core/worker-long-line-cut", test_worker_long_line_cut);
  return g_test_run ();
}
