/* test-joblog.c — the job log is GNU parallel's format, column by column; --resume after
 * an interrupted run runs exactly the rest and appends; --resume refuses what it cannot
 * do (no job log, a plugin without a deterministic order, a malformed log). */
#include "testutil.h"
#include "joblog.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>

static const char header[] = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

static void
test_format (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n",
                                         "tasks = 3\nop = sleepecho:5:r%n\nbad_task = 2\nbad_op = fail:no\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  gint64 before = g_get_real_time ();
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpstr (lines[0], ==, header);
  /* header, the job's identity (a line GNU parallel's --resume passes over), 3 rows, ""
   * after the last \n */
  g_assert_cmpuint (g_strv_length (lines), ==, 6);
  g_assert_true (g_str_has_prefix (lines[1], "# taskrun job testkit /"));
  g_autoptr (GRegex) row = g_regex_new (
      "^([0-9]+)\t:\t([0-9]+\\.[0-9]{3})\t( *[0-9]+\\.[0-9]{3})\t([0-9]+)\t([0-9]+)\t(-?[0-9]+)\t([0-9]+)\t(.*)$",
      0, 0, NULL);
  gboolean seen[4] = { FALSE };
  for (int i = 2; i <= 4; i++) {
    g_autoptr (GMatchInfo) m = NULL;
    g_assert_true (g_regex_match (row, lines[i], 0, &m));
    g_autofree char *seq = g_match_info_fetch (m, 1);
    g_autofree char *start = g_match_info_fetch (m, 2);
    g_autofree char *runtime = g_match_info_fetch (m, 3);
    g_autofree char *send = g_match_info_fetch (m, 4);
    g_autofree char *recv = g_match_info_fetch (m, 5);
    g_autofree char *exitval = g_match_info_fetch (m, 6);
    g_autofree char *sig = g_match_info_fetch (m, 7);
    g_autofree char *cmd = g_match_info_fetch (m, 8);
    int n = atoi (seq);
    seen[n] = TRUE;
    g_assert_cmpuint (strlen (runtime), ==, 10); /* right-aligned like parallel's %10.3f */
    double t = g_ascii_strtod (start, NULL);
    g_assert_cmpfloat (t, >=, before / 1e6 - 1);
    g_assert_cmpfloat (t, <=, g_get_real_time () / 1e6 + 1);
    g_assert_cmpstr (sig, ==, "0");
    if (n == 2) {
      g_assert_cmpstr (cmd, ==, "fail:no");
      g_assert_cmpstr (exitval, ==, "1");
      g_assert_cmpstr (send, ==, "7");
      g_assert_cmpstr (recv, ==, "0");
    } else {
      g_autofree char *want = g_strdup_printf ("sleepecho:5:r%d", n);
      g_assert_cmpstr (cmd, ==, want);
      g_assert_cmpstr (exitval, ==, "0");
      g_assert_cmpstr (send, ==, "14");
      g_assert_cmpstr (recv, ==, "2");
      g_assert_cmpfloat (g_ascii_strtod (runtime, NULL), >=, 0.004);
    }
  }
  g_assert_true (seen[1] && seen[2] && seen[3]);
  tt_rmtree (dir);
}

/* Interrupt a run, then --resume it: each task succeeds exactly once in the log. */
static void
test_resume_after_sigint (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\njoblog = log.tsv\n",
                                         "tasks = 30\nop = sleepecho:300:%n\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_assert_true (tt_wait_lines (log, 1 + 6, 20));
  kill (pid, SIGINT);
  g_autofree char *err1 = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 20, dir, NULL, &err1), ==, 130);

  const char *again[] = { "-c", job, "--resume", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (again, dir, NULL, &out, &err), ==, 0);
  g_test_message ("first:\n%s\nsecond:\n%s", err1, err);
  g_assert_nonnull (strstr (err, "skipped (done in the job log)"));

  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpstr (lines[0], ==, header);
  guint ok[31] = { 0 };
  guint rows = 0;
  g_assert_true (g_str_has_prefix (lines[1], "# taskrun job testkit /"));
  for (int i = 2; lines[i]; i++) {
    if (!*lines[i])
      continue;
    g_assert_false (g_str_has_prefix (lines[i], "Seq\t")); /* one header only */
    g_assert_false (g_str_has_prefix (lines[i], "#")); /* one identity only */
    g_auto (GStrv) f = g_strsplit (lines[i], "\t", 9);
    int seq = atoi (f[0]);
    g_assert_cmpint (seq, >=, 1);
    g_assert_cmpint (seq, <=, 30);
    if (g_str_equal (f[6], "0") && g_str_equal (f[7], "0"))
      ok[seq]++;
    rows++;
  }
  for (int seq = 1; seq <= 30; seq++)
    g_assert_cmpuint (ok[seq], ==, 1);
  g_assert_cmpuint (rows, ==, 30);
  /* the second run printed only the tasks it ran */
  guint64 skipped = 0;
  const char *p = strstr (err, " not run, ");
  g_assert_nonnull (p);
  skipped = g_ascii_strtoull (p + strlen (" not run, "), NULL, 10);
  g_assert_cmpuint (tt_count_lines (out, ""), ==, 30 - skipped + 1);
  tt_rmtree (dir);
}

static void
test_resume_refusals (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 3\n");
  g_autofree char *out = NULL, *err = NULL;
  const char *no_log[] = { "-c", job, "--resume", NULL };
  g_assert_cmpint (tt_run_taskrun (no_log, dir, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "--resume needs a job log"));

  g_autofree char *nd = tt_test_plugin ("nondeterministic");
  g_autofree char *text = g_strdup_printf ("[taskrun]\nplugin = %s\n", nd);
  g_autofree char *job2 = tt_write (dir, "nd.ini", text);
  const char *nd_args[] = { "-c", job2, "--joblog", "x.tsv", "--resume", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (nd_args, dir, NULL, &out2, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "plugin 'nondeterministic' does not promise the same tasks"));

  g_autofree char *bad = tt_write (dir, "bad.tsv", "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                                                  "this is not a row\n1\t:\t1.0\t 0.1\t0\t0\t0\t0\tx\n");
  const char *bad_args[] = { "-c", job, "--joblog", bad, "--resume", NULL };
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (tt_run_taskrun (bad_args, dir, NULL, &out3, &err3), ==, 2);
  g_autofree char *where = g_strdup_printf ("%s:2: not a job log row", bad);
  g_assert_nonnull (strstr (err3, where));
  g_assert_cmpstr (out3, ==, "");
  tt_rmtree (dir);
}

/* A last row cut short by a crash is ignored; the run completes the rest. */
static void
test_resume_truncated_row (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 3\n");
  g_autofree char *log = tt_write (dir, "log.tsv", "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                                                   "1\t:\t1.000\t     0.100\t6\t1\t0\t0\techo:1\n2\t:\t1.0");
  const char *args[] = { "-c", job, "--joblog", log, "--resume", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, ":3: ignoring a row cut short"));
  g_assert_nonnull (strstr (err, "3 tasks: 2 succeeded, 0 failed, 0 not run, 1 skipped"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  /* the row cut short stays on a line of its own; a complete row for 2 follows */
  g_assert_cmpuint (tt_count_lines (text, "2\t:\t1.0\n"), ==, 0);
  g_assert_cmpuint (tt_count_lines (text, "2\t:\t"), ==, 2);
  g_assert_nonnull (strstr (text, "\t0\t0\techo:2\n"));
  g_assert_cmpuint (tt_count_lines (text, "3\t:\t"), ==, 1);
  tt_rmtree (dir);
}

/* --resume with ordered = yes: the tasks left run, in order, and each gets its row. */
static void
test_resume_ordered (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\nordered = yes\njoblog = log.tsv\n",
                                         "tasks = 6\nbad_task = 3\nbad_op = fail:once\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  const char *again[] = { "-c", job, "--resume", "-s", "testkit.bad_task=0", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (again, dir, NULL, &out2, &err2), ==, 0);
  g_test_message ("%s", err2);
  g_assert_cmpstr (out2, ==, "3 3\n");
  g_assert_nonnull (strstr (err2, "6 tasks: 1 succeeded, 0 failed, 0 not run, 5 skipped"));
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (text, "3\t:\t"), ==, 2);
  tt_rmtree (dir);
}

/* A description with a tab or a line break stays on its row, so --resume can read the log;
 * reopening to append keeps the one header and ends a row cut short by a crash. */
static void
test_row_stays_one_line (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "log.tsv", NULL);
  g_autoptr (GError) error = NULL;
  TrJoblog *log = tr_joblog_open (path, FALSE, "unit /jobs/a.ini", &error);
  g_assert_no_error (error);
  TrResult ok = { .seq = 1 }, ok2 = { .seq = 2 }, ok3 = { .seq = 3 }, ok4 = { .seq = 4 };
  g_assert_true (tr_joblog_write (log, &ok, "copy a\nb\tc\r", FALSE));
  /* a plugin whose descriptions are quoted command lines: kept as they are, pasteable,
   * unless a control byte forces the escaped form */
  g_assert_true (tr_joblog_write (log, &ok3, "printf '%s\\n' 'C:\\dir'", TRUE));
  g_assert_true (tr_joblog_write (log, &ok4, "echo 'a\nb\\'", TRUE));
  tr_joblog_close (log);
  /* a crash cut the next row short */
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_autofree char *cut = g_strconcat (text, "7\t:\t17", NULL);
  g_assert_true (g_file_set_contents (path, cut, -1, NULL));
  log = tr_joblog_open (path, TRUE, "unit /jobs/a.ini", &error);
  g_assert_no_error (error);
  g_assert_true (tr_joblog_write (log, &ok2, "second", FALSE));
  tr_joblog_close (log);
  g_autofree char *after = NULL;
  g_assert_true (g_file_get_contents (path, &after, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (after, "Seq\t"), ==, 1);
  g_assert_nonnull (strstr (after, "\tcopy a\\nb\\tc\\r\n"));
  g_assert_nonnull (strstr (after, "\tprintf '%s\\n' 'C:\\dir'\n"));
  g_assert_nonnull (strstr (after, "\techo 'a\\nb\\\\'\n"));
  g_assert_nonnull (strstr (after, "\t17\n2\t:\t"));
  g_autoptr (TrSeqSet) done = tr_seq_set_new ();
  g_assert_true (tr_joblog_read_succeeded (path, "unit /jobs/a.ini", done, &error));
  g_assert_no_error (error);
  g_assert_true (tr_seq_set_contains (done, 1));
  g_assert_true (tr_seq_set_contains (done, 2));
  g_assert_false (tr_seq_set_contains (done, 7));
  /* and another job's identity is refused, naming the line */
  g_autoptr (TrSeqSet) other = tr_seq_set_new ();
  g_assert_false (tr_joblog_read_succeeded (path, "unit /jobs/b.ini", other, &error));
  g_assert_nonnull (strstr (error->message, "log.tsv:2: this job log was written by another job"));
  tt_rmtree (dir);
}

/* A job log that is not a regular file is refused (exit 2, naming it) at once: a FIFO
 * that nobody reads must not leave taskrun blocked in open(), deaf to signals. */
static void
test_not_a_regular_file (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 2\n");
  g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
  g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
  const char *const cases[][6] = {
    { "-c", job, "--joblog", fifo, NULL },
    { "-c", job, "--joblog", fifo, "--resume", NULL },
    { "-c", job, "--joblog", "/dev/null", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    GPid pid = tt_spawn_taskrun (cases[i], dir, NULL);
    g_autofree char *out = NULL, *err = NULL;
    /* generous: the old behaviour was to block forever */
    int status = tt_wait_taskrun (pid, 30, dir, &out, &err);
    g_test_message ("%s", err);
    g_assert_cmpint (status, ==, 2);
    g_autofree char *want = g_strdup_printf ("the job log %s is not a regular file", cases[i][3]);
    g_assert_nonnull (strstr (err, want));
    g_assert_cmpuint (tt_count_lines (out, "1 "), ==, 0); /* no task ran */
  }
  tt_rmtree (dir);
}

/* A row is an attempt: a task that no worker ever took (its payload too large to send)
 * fails and is counted, but gets no row with a made-up start time; --resume runs it. */
static void
test_no_row_without_attempt (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\njoblog = log.tsv\n",
                                         "tasks = 3\nbad_task = 2\nbad_op = oversize-payload\n");
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "3 tasks: 2 succeeded, 1 failed"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_test_message ("%s", text);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 5); /* header, identity, rows 1 and 3, "" */
  g_assert_true (g_str_has_prefix (lines[2], "1\t:\t"));
  g_assert_true (g_str_has_prefix (lines[3], "3\t:\t"));
  g_assert_null (strstr (text, "\t0.000\t"));
  tt_rmtree (dir);
}

/* The set of done numbers: runs join however the rows arrive, and a failed task splits
 * them. */
static void
test_seq_set (void)
{
  g_autoptr (TrSeqSet) set = tr_seq_set_new ();
  static const guint64 order[] = { 5, 3, 4, 1, 9, 2, 8, 4, 10 };
  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    tr_seq_set_add (set, order[i]);
  g_assert_cmpuint (tr_seq_set_count (set), ==, 8); /* 4 came twice */
  g_assert_cmpuint (tr_seq_set_runs (set), ==, 2); /* 1-5 and 8-10 */
  for (guint64 n = 0; n <= 11; n++)
    g_assert_true (tr_seq_set_contains (set, n) == ((n >= 1 && n <= 5) || (n >= 8 && n <= 10)));
  tr_seq_set_add (set, 7);
  tr_seq_set_add (set, 6);
  g_assert_cmpuint (tr_seq_set_runs (set), ==, 1);
  tr_seq_set_add (set, G_MAXUINT64);
  g_assert_true (tr_seq_set_contains (set, G_MAXUINT64));
  g_assert_false (tr_seq_set_contains (set, G_MAXUINT64 - 1));
  g_assert_cmpuint (tr_seq_set_runs (set), ==, 2);
}

/* A job log names its job: --resume with another job file's log is refused (exit 2,
 * naming the log's line), not taken as this job's task numbers. */
static void
test_resume_refuses_another_jobs_log (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *a = tt_testkit_job (dir, "workers = 1\njoblog = log.tsv\n", "tasks = 3\n");
  g_autofree char *a_renamed = g_build_filename (dir, "a.ini", NULL);
  g_assert_cmpint (rename (a, a_renamed), ==, 0);
  g_autofree char *b = tt_testkit_job (dir, "workers = 1\njoblog = log.tsv\n", "tasks = 5\n");
  const char *first[] = { "-c", a_renamed, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (first, dir, NULL, &out, &err), ==, 0);
  const char *other[] = { "-c", b, "--resume", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (other, dir, NULL, &out2, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "log.tsv:2: this job log was written by another job"));
  g_assert_cmpstr (out2, ==, "");
  /* the same job resumes */
  const char *same[] = { "-c", a_renamed, "--resume", NULL };
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (tt_run_taskrun (same, dir, NULL, &out3, &err3), ==, 0);
  g_assert_nonnull (strstr (err3, "3 skipped"));
  tt_rmtree (dir);
}

/* --resume keeps the numbers done in a compact set, reading the log row by row: a log of
 * a million succeeded rows costs a few MiB, not the log's size several times over. */
static void
test_resume_memory (void)
{
  g_autofree char *dir = tt_tmpdir ();
  const guint tasks = 1000000;
  g_autofree char *keys = g_strdup_printf ("tasks = %u\nquiet = yes\n", tasks);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\njoblog = log.tsv\n", keys);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  FILE *f = fopen (log, "w");
  g_assert_nonnull (f);
  g_autofree char *canonical = g_canonicalize_filename (job, NULL);
  fprintf (f, "%s\n# taskrun job testkit %s\n", header, canonical);
  for (guint i = 1; i <= tasks; i++)
    fprintf (f, "%u\t:\t1700000000.000\t     0.001\t7\t0\t0\t0\tnoop task number %u\n", i, i);
  g_assert_cmpint (fclose (f), ==, 0);
  const char *args[] = { "-c", job, "--resume", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  struct rusage ru;
  int status = tt_wait_pid (pid, 120, &ru);
  g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
  g_autofree char *err = NULL;
  g_assert_true (g_file_get_contents (err_path, &err, NULL, NULL));
  g_test_message ("%s; largest process %ld KiB", err, ru.ru_maxrss);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_assert_nonnull (strstr (err, "1000000 skipped"));
#if !defined(__SANITIZE_ADDRESS__) /* its shadow memory and quarantine are no measure */
  g_assert_cmpint (ru.ru_maxrss, <, 64 * 1024); /* generous: the log alone is 55 MB */
#endif
  tt_rmtree (dir);
}

/* The one rule for a plugin's text on a line: control bytes, invalid UTF-8 and the
 * backslash itself escaped as ls -b does, everything else (UTF-8 too) as it is. */
static void
test_text_escape (void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
    { "plain", "plain" },
    { "a\nb", "a\\nb" },
    { "tab\there\r", "tab\\there\\r" },
    { "back\\slash", "back\\\\slash" },
    { "bad \xff byte", "bad \\xff byte" },
    { "\x01\x7f", "\\x01\\x7f" },
    { "caf\xc3\xa9 \xc2\x85", "caf\xc3\xa9 \\xc2\\x85" }, /* é kept, U+0085 (C1) escaped */
    { "cut \xc3", "cut \\xc3" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *got = tr_text_escape (cases[i].in);
    g_assert_cmpstr (got, ==, cases[i].out);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/joblog/format", test_format);
  g_test_add_func ("/joblog/resume-after-sigint", test_resume_after_sigint);
  g_test_add_func ("/joblog/resume-refusals", test_resume_refusals);
  g_test_add_func ("/joblog/resume-truncated-row", test_resume_truncated_row);
  g_test_add_func ("/joblog/resume-ordered", test_resume_ordered);
  g_test_add_func ("/joblog/row-stays-one-line", test_row_stays_one_line);
  g_test_add_func ("/joblog/not-a-regular-file", test_not_a_regular_file);
  g_test_add_func ("/joblog/no-row-without-attempt", test_no_row_without_attempt);
  g_test_add_func ("/joblog/text-escape", test_text_escape);
  g_test_add_func ("/joblog/resume-refuses-another-jobs-log", test_resume_refuses_another_jobs_log);
  g_test_add_func ("/joblog/resume-memory", test_resume_memory);
  g_test_add_func ("/joblog/seq-set", test_seq_set);
  return g_test_run ();
}
