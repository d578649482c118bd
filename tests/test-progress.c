/* test-progress.c — the progress line: drawn and erased on a terminal (run under
 * script(1)'s pseudo-terminal), absent in a pipe unless asked for, never left in front of
 * result lines or the summary, and honest about a total that is not known yet. */
#include "testutil.h"

#include <signal.h>
#include "progress.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Runs taskrun under a pseudo-terminal; returns what the terminal showed. */
static char *
run_on_terminal (const char *args)
{
  /* timeout: a run that hangs on a terminal must not hang the test */
  g_autofree char *cmd = g_strdup_printf ("timeout 60 %s %s", TT_TASKRUN, args);
  const char *argv[] = { "script", "-q", "-e", "-c", cmd, "/dev/null", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_assert_true (g_spawn_sync (tt_source_root (), (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                               NULL, &out, &err, &status, NULL));
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  return g_steal_pointer (&out);
}

static void
test_terminal (void)
{
  g_autofree char *screen = run_on_terminal ("-c conf/sleep-demo.ini -j 2 -s sleep-demo.tasks=6 "
                                             "-s sleep-demo.seconds=0.3");
  g_test_message ("%s", screen);
  g_assert_nonnull (strstr (screen, "\r 33.3% 2/6 tasks"));
  g_assert_nonnull (strstr (screen, "ETA "));
  /* every result line and the summary start on a cleared line, never after a bar */
  g_auto (GStrv) lines = g_strsplit (screen, "\n", -1);
  guint results = 0;
  for (int i = 0; lines[i]; i++) {
    char *task = strstr (lines[i], "task ");
    char *summary = strstr (lines[i], "taskrun: 6 tasks");
    char *at = task == lines[i] || (task && task[-1] != ' ') ? task : summary;
    if (!at)
      continue;
    if (at != lines[i])
      g_assert_true (at - lines[i] >= 4 && memcmp (at - 4, "\r\033[K", 4) == 0);
    results += task != NULL && at == task;
  }
  g_assert_cmpuint (results, ==, 6);
  g_assert_nonnull (strstr (screen, "taskrun: 6 tasks: 6 succeeded"));
}

/* A task's output that does not end its line stays on the screen: the bar is drawn below
 * it, not over it with a carriage return. */
static void
test_partial_line_kept (void)
{
  g_autofree char *screen = run_on_terminal (
      "-j 1 --progress=always -s exec.shell=yes -e 'printf partial-{} >&2; sleep 0.3' ::: 1 2 3");
  g_test_message ("%s", screen);
  for (int i = 1; i <= 3; i++) {
    g_autofree char *text = g_strdup_printf ("partial-%d", i);
    const char *at = strstr (screen, text);
    g_assert_nonnull (at);
    at += strlen (text);
    /* what follows is the end of the output or a new line, never \r over the text */
    g_assert_true (*at == '\0' || *at == '\n' || g_str_has_prefix (at, "\r\n"));
  }
}

/* Without a bar on the screen, output is left as the commands wrote it: nothing put
 * between outputs that do not end their lines. */
static void
test_no_bar_no_newline (void)
{
  g_autofree char *screen = run_on_terminal ("-q -j1 -e 'printf %s {}' ::: a b c");
  g_test_message ("%s", screen);
  /* between a and b, c: nothing, unless a bar was drawn there first (a slow machine) */
  const char *a = strchr (screen, 'a'), *b = a ? strchr (a, 'b') : NULL;
  const char *c = b ? strchr (b, 'c') : NULL;
  g_assert_nonnull (c);
  for (const char *from = a; from && from < c; from = from == a ? b : NULL) {
    const char *to = from == a ? b : c;
    g_autofree char *between = g_strndup (from + 1, (gsize) (to - from - 1));
    g_assert_true (!*between || strstr (between, "tasks"));
  }
}

static void
test_pipe (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "-j", "2", "-s", "sleep-demo.tasks=4",
                         "-s", "sleep-demo.seconds=0.2", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_assert_null (strchr (err, '\r'));
  g_assert_null (strchr (out, '\r'));
  const char *always[] = { "-c", "conf/sleep-demo.ini", "-j", "2", "-s", "sleep-demo.tasks=4",
                           "-s", "sleep-demo.seconds=0.2", "--progress=always", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (always, NULL, NULL, &out2, &err2), ==, 0);
  g_assert_nonnull (strstr (err2, "tasks/s"));
  g_assert_null (strchr (out2, '\r')); /* results stay clean */
  g_autofree char *screen = run_on_terminal ("-c conf/sleep-demo.ini -s sleep-demo.tasks=3 "
                                             "-s sleep-demo.seconds=0.2 --progress=never");
  g_assert_null (strstr (screen, "\033[K")); /* nothing drawn, nothing erased */
}

/* The line itself, drawn into a file: percent, units, ETA, failures, unknown totals. */
static char *
draw_to_file (void (*setup) (TrProgress *))
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "stderr", NULL);
  int saved = dup (2);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2 (fd, 2);
  close (fd);
  TrProgress *p = tr_progress_new (TR_PROGRESS_ALWAYS, "bytes");
  setup (p);
  g_usleep (150000); /* past the first redraw interval (no bar before it), and a rate */
  tr_progress_tick (p);
  tr_progress_free (p);
  dup2 (saved, 2);
  close (saved);
  char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  tt_rmtree (dir);
  return text;
}

static void
unknown_total (TrProgress *p)
{
  tr_progress_set_tasks (p, 40, FALSE);
  tr_progress_set_total_units (p, 3 << 20, FALSE);
  tr_progress_task_done (p, 1 << 20, FALSE);
  tr_progress_task_done (p, 0, TRUE);
}

static void
known_total (TrProgress *p)
{
  tr_progress_set_tasks (p, 4, TRUE);
  tr_progress_set_total_units (p, 4 << 20, TRUE);
  tr_progress_task_done (p, 1 << 20, FALSE);
}

static void
test_line (void)
{
  g_autofree char *a = draw_to_file (unknown_total);
  g_test_message ("%s", a);
  g_assert_nonnull (strstr (a, "  ... 2 tasks, 1.0 MiB/3.0 MiB"));
  g_assert_nonnull (strstr (a, "total not known yet"));
  g_assert_nonnull (strstr (a, "1 failed"));
  g_assert_null (strstr (a, "%"));
  g_assert_true (g_str_has_suffix (a, "\r\033[K")); /* erased at the end */
  g_autofree char *b = draw_to_file (known_total);
  g_assert_nonnull (strstr (b, " 25.0% 1/4 tasks, 1.0 MiB/4.0 MiB"));
  g_assert_nonnull (strstr (b, "ETA "));
}

/* Tasks a stop kept from running are "not run" in the progress line as in the summary,
 * never "failed". */
static void
test_not_run_is_no_failure (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 4\n", "tasks = 200\nop = sleep:200\nquiet = yes\n");
  const char *args[] = { "-c", job, "--progress=always", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_usleep (500000);
  kill (pid, SIGINT);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 30, dir, &out, &err), ==, 130);
  g_assert_nonnull (strstr (err, " 0 failed, "));
  g_assert_false (g_regex_match_simple ("[1-9][0-9]* failed", err, 0, 0));
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/progress/terminal", test_terminal);
  g_test_add_func ("/progress/pipe", test_pipe);
  g_test_add_func ("/progress/partial-line-kept", test_partial_line_kept);
  g_test_add_func ("/progress/no-bar-no-newline", test_no_bar_no_newline);
  g_test_add_func ("/progress/line", test_line);
  g_test_add_func ("/progress/not-run-is-no-failure", test_not_run_is_no_failure);
  return g_test_run ();
}
