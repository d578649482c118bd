/* test-exec.c — the exec plugin through the built taskrun: inputs that try to become
 * words or commands, how a command's end is reported, grouped output, the environment
 * a command sees, --dry-run, the bundled job file, output too large for memory (exact,
 * bounded, a full disk), and --resume after an interrupt. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes job.ini for exec in `dir` with `exec_keys` and runs it with `extra` args. */
static int
run_exec (const char *dir, const char *taskrun_keys, const char *exec_keys,
          const char *const *extra, char **out, char **err)
{
  g_autofree char *text = g_strdup_printf ("[taskrun]\nplugin = exec\nworkers = 2\n%s\n[exec]\n%s",
                                           taskrun_keys ? taskrun_keys : "", exec_keys);
  g_autofree char *job = tt_write (dir, "job.ini", text);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) "-c");
  g_ptr_array_add (args, job);
  for (guint i = 0; extra && extra[i]; i++)
    g_ptr_array_add (args, (gpointer) extra[i]);
  g_ptr_array_add (args, NULL);
  int status = tt_run_taskrun ((const char *const *) args->pdata, dir, NULL, out, err);
  g_test_message ("stderr: %s", *err);
  return status;
}

static const char *const hostile[] = {
  "a b", "$(touch pwned1)", "`touch pwned2`", "; touch pwned3", "| touch pwned4",
  "*", "-n", "--help", "it's", "\"q\"", "x\ny", "tab\there", "&& touch pwned5", "", NULL,
};

/* Each input is one argument, whatever it holds: no word added, nothing run. */
static void
test_inputs_stay_one_word (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (GString) inputs = g_string_new (NULL);
  for (guint i = 0; hostile[i]; i++)
    g_string_append_len (inputs, hostile[i], (gssize) strlen (hostile[i]) + 1);
  g_autofree char *path = g_build_filename (dir, "inputs", NULL);
  g_assert_true (g_file_set_contents (path, inputs->str, (gssize) inputs->len, NULL));
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL,
                         "command = printf '[%s]<%s>\\n' {} END\ninput = inputs\nnull = yes\n",
                         NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  for (guint i = 0; hostile[i]; i++) {
    g_autofree char *want = g_strdup_printf ("[%s]<END>\n", hostile[i]);
    g_assert_nonnull (strstr (out, want));
  }
  for (int i = 1; i <= 5; i++) {
    g_autofree char *p = g_strdup_printf ("%s/pwned%d", dir, i);
    g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
  }
  tt_rmtree (dir);
}

/* How a command ended is the task's outcome, in words, and the job's exit status. */
static void
test_exit_statuses (void)
{
  g_autofree char *dir = tt_tmpdir ();
  static const struct {
    const char *keys;
    const char *says;
  } table[] = {
    { "command = sh -c 'exit 3'\nargs = one\n", "exit status 3" },
    { "command = sh -c 'kill -9 $$'\nargs = one\n", "killed by signal 9 (SIGKILL)" },
    { "command = no-such-command-here {}\nargs = one\n",
      "cannot run 'no-such-command-here': No such file or directory" },
    { "command = ./not-executable\nargs = one\n", "cannot run './not-executable': Permission denied" },
  };
  g_autofree char *ne = tt_write (dir, "not-executable", "#!/bin/sh\n");
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_autofree char *keys = g_strdup_printf ("%sworkdir = .\n", table[i].keys);
    int status = run_exec (dir, NULL, keys, NULL, &out, &err);
    g_assert_cmpint (status, ==, 1);
    g_assert_nonnull (strstr (err, table[i].says));
  }
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_exec (dir, NULL, "command = true\nargs = a b c\n", NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "3 tasks: 3 succeeded"));
  tt_rmtree (dir);
}

/* An executable script without #! runs with /bin/sh, as execvp and GNU parallel run it. */
static void
test_script_without_shebang (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *script = tt_write (dir, "plain-script", "echo ran \"$1\"\n");
  g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL, "workdir = .\ncommand = ./plain-script {}\nargs = 'a b'\n",
                         NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "ran a b\n");
  tt_rmtree (dir);
}

/* What a command leaves running when it exits, even after setsid (a daemon that left its
 * process group), ends with its task: no process outlives the run. */
static void
test_no_leftover_daemon (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL,
                         "shell = yes\nworkdir = .\n"
                         "command = setsid sh -c 'echo $$ > pid-{}; exec sleep 60' "
                         ">/dev/null 2>&1 </dev/null & sleep 0.3\nargs = a b\n",
                         NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  for (const char *c = "ab"; *c; c++) {
    g_autofree char *path = g_strdup_printf ("%s/pid-%c", dir, *c);
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    GPid pid = (GPid) g_ascii_strtoll (text, NULL, 10);
    g_assert_cmpint (pid, >, 0);
    g_array_append_val (pids, pid);
  }
  /* gone once the run has ended, not left running under init */
  g_assert_cmpuint (tt_wait_gone (pids, 10), ==, 0);
  g_array_unref (pids);
  tt_rmtree (dir);
}

/* The job log's Exitval and Signal are the command's, and its Command the command line
 * as run, quoted. */
static void
test_joblog_statuses (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *log = g_build_filename (dir, "log", NULL);
  g_autofree char *opt = g_strdup_printf ("--joblog=%s", log);
  const char *const extra[] = { opt, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL,
                         "shell = yes\ncommand = case {} in e3) exit 3;; k9) kill -9 $$;; "
                         "nf) no-such-command-here;; esac\nargs = ok e3 k9 nf\n", extra, &out, &err);
  g_assert_cmpint (status, ==, 1);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  static const struct {
    const char *input, *exitval, *signal;
  } rows[] = { { "ok", "0", "0" }, { "e3", "3", "0" }, { "k9", "0", "9" }, { "nf", "127", "0" } };
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++) {
    gboolean found = FALSE;
    for (guint l = 1; lines[l] && !found; l++) {
      g_auto (GStrv) f = g_strsplit (lines[l], "\t", 9);
      g_autofree char *command = g_strdup_printf ("case %s in ", rows[i].input);
      if (g_strv_length (f) < 9 || !g_str_has_prefix (f[8], command))
        continue;
      found = TRUE;
      g_assert_cmpstr (f[6], ==, rows[i].exitval);
      g_assert_cmpstr (f[7], ==, rows[i].signal);
    }
    g_assert_true (found);
  }
  tt_rmtree (dir);
}

/* A failed task's message names its command, cut past 1 KiB with its length said (an
 * input of a MiB must not make a line of a MiB); the job log keeps it whole, pasteable. */
static void
test_long_command_in_message (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *log = g_build_filename (dir, "log", NULL);
  g_autofree char *opt = g_strdup_printf ("--joblog=%s", log);
  g_autofree char *long_input = g_strnfill (5000, 'y');
  g_autofree char *keys = g_strdup_printf ("command = sh -c 'exit 4' x\\\\y %s\nargs = %s\n",
                                           "{}", long_input);
  const char *const extra[] = { opt, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_exec (dir, NULL, keys, extra, &out, &err), ==, 1);
  g_autofree char *want = g_strdup_printf ("... (%zu bytes)) failed: exit status 4",
                                           strlen ("sh -c 'exit 4' x\\\\y ") + 5000);
  g_assert_nonnull (strstr (err, want));
  g_auto (GStrv) lines = g_strsplit (err, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    g_assert_cmpuint (strlen (lines[i]), <, 1200);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (log, &text, NULL, NULL));
  g_autofree char *row_end = g_strdup_printf ("\tsh -c 'exit 4' x\\\\y %s\n", long_input);
  g_assert_true (g_str_has_suffix (text, row_end));
  tt_rmtree (dir);
}

/* Each task's stdout comes out whole, never cut into by another's. */
static void
test_output_grouped (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL,
                         "shell = yes\n"
                         "command = i=0; while [ $i -lt 3000 ]; do echo {} $i; echo {} $i >&2; "
                         "i=$((i+1)); done\n"
                         "args = t1 t2 t3 t4 t5 t6 t7 t8\n",
                         NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  for (int pass = 0; pass < 2; pass++) {
    g_auto (GStrv) lines = g_strsplit (pass ? err : out, "\n", -1);
    char last[16] = "";
    int next = 0, runs = 0;
    for (guint i = 0; lines[i]; i++) {
      char name[16];
      int n;
      if (sscanf (lines[i], "%15s %d", name, &n) != 2 || name[0] != 't' || !g_ascii_isdigit (name[1]))
        continue; /* taskrun's own lines on stderr */
      if (strcmp (name, last) != 0) {
        g_assert_cmpint (n, ==, 0); /* a task's lines begin at its first */
        if (last[0])
          g_assert_cmpint (next, ==, 3000); /* and the one before ended at its last */
        g_strlcpy (last, name, sizeof last);
        runs++;
        next = 0;
      }
      g_assert_cmpint (n, ==, next);
      next++;
    }
    g_assert_cmpint (runs, ==, 8);
  }
  tt_rmtree (dir);
}

/* ordered = yes prints in input order, whatever order the tasks end in; tag = yes puts
 * the input before every line, on both streams. */
static void
test_ordered_and_tagged (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, "ordered = yes\n",
                         "command = sh -c 'sleep 0.$1; echo $1' sh {}\nargs = 4 1 3 0 2\n", NULL,
                         &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "4\n1\n3\n0\n2\n");
  g_free (out);
  g_free (err);
  status = run_exec (dir, NULL,
                     "tag = yes\nshell = yes\ncommand = printf 'x\\ny\\n'; printf 'e\\nlast' >&2\n"
                     "args = 'a b'\n", NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "a b\tx\na b\ty\n");
  g_assert_nonnull (strstr (err, "a b\te\na b\tlast"));
  tt_rmtree (dir);
}

/* results = DIR keeps each task's stdout, stderr, exitval and signal under DIR/SEQ/;
 * under --dry-run nothing is made. */
static void
test_results_dir (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  const char *const dry[] = { "--dry-run", NULL };
  const char *keys = "shell = yes\nresults = res\n"
                     "command = printf 'o%s' {}; printf 'e%s' {} >&2; [ {} != b ]\nargs = a b\n";
  g_assert_cmpint (run_exec (dir, NULL, keys, dry, &out, &err), ==, 0);
  g_autofree char *res = g_build_filename (dir, "res", NULL);
  g_assert_false (g_file_test (res, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_exec (dir, NULL, keys, NULL, &out, &err), ==, 1);
  static const struct {
    const char *file, *text;
  } want[] = {
    { "res/1/stdout", "oa" }, { "res/1/stderr", "ea" }, { "res/1/exitval", "0\n" },
    { "res/1/signal", "0\n" }, { "res/2/stdout", "ob" }, { "res/2/exitval", "1\n" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (want); i++) {
    g_autofree char *path = g_build_filename (dir, want[i].file, NULL);
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    g_assert_cmpstr (text, ==, want[i].text);
  }
  tt_rmtree (dir);
}

/* What a command knows of its task: {#} and TASKRUN_SEQ agree, {%} and TASKRUN_SLOT. */
static void
test_environment (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  int status = run_exec (dir, NULL,
                         "shell = yes\ncommand = echo {#}=$TASKRUN_SEQ {%}=$TASKRUN_SLOT\n"
                         "args = a b c d e f\n", NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  guint seen = 0;
  for (guint i = 0; lines[i] && *lines[i]; i++) {
    guint seq, seq_env, slot, slot_env;
    g_assert_cmpint (sscanf (lines[i], "%u=%u %u=%u", &seq, &seq_env, &slot, &slot_env), ==, 4);
    g_assert_cmpuint (seq, ==, seq_env);
    g_assert_cmpuint (slot, ==, slot_env);
    g_assert_cmpuint (slot, >=, 1);
    g_assert_cmpuint (slot, <=, 2);
    seen |= 1u << seq;
  }
  g_assert_cmpuint (seen, ==, 0x7e); /* 1 .. 6 */
  tt_rmtree (dir);
}

/* --dry-run prints the commands, quoted, and runs none. */
static void
test_dry_run (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  const char *const extra[] = { "--dry-run", NULL };
  int status = run_exec (dir, NULL, "command = touch -- {}\nworkdir = .\nargs = made 'a b'\n", extra,
                         &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "touch -- made"));
  g_assert_nonnull (strstr (out, "touch -- 'a b'"));
  g_autofree char *made = g_build_filename (dir, "made", NULL);
  g_assert_false (g_file_test (made, G_FILE_TEST_EXISTS));
  tt_rmtree (dir);
}

/* `taskrun -e T --dry-run` shows the commands GNU parallel's --dry-run shows for the same
 * template and inputs, for a table of templates with every replacement string, colsep
 * among them (the oracle is run here; skipped when it is not installed).  Quotes in the
 * template are left to test-exec-template.c: there taskrun keeps a quoted word one word,
 * where parallel pastes the value into the text, a documented difference. */
static void
test_dry_run_matches_parallel (void)
{
  g_autofree char *parallel = g_find_program_in_path ("parallel");
  if (!parallel) {
    g_test_skip ("GNU parallel is not in PATH: the oracle for this case is missing");
    return;
  }
  static const char *const plain[] = { "a.txt", "dir/sub/b.tar.gz", "with space.c",
                                       "it's \"q\"", "$(x);*", NULL };
  static const char *const commas[] = { "a.b,c/d.e", "p q,r s", "1,2,3", ",", "x/y.z,w", NULL };
  static const char *const colons[] = { "x::y", "a b::c", "1::2::3", "::", "p.q::r/s", NULL };
  /* every input has the columns its template names: a column past the last is '' in
   * taskrun, where parallel drops the word (template.c) */
  static const struct {
    const char *template, *colsep;
    const char *const *inputs;
  } table[] = {
    { "echo {}", NULL, plain },
    { "echo {.} {/} {//} {/.}", NULL, plain },
    { "echo {#} {%} {} {}", NULL, plain },
    { "cp -- {} {.}.bak", NULL, plain },
    { "printf %s {}", NULL, plain },
    { "echo pre{}post x{.}y{#}", NULL, plain },
    { "wc -l", NULL, plain },
    { "echo {1} {2} {1.} {2/} {2//} {1/.}", ",", commas },
    { "echo {2} {1} {#} {-1}", "::", colons },
  };
  g_autofree char *dir = tt_tmpdir ();
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    const char *const *inputs = table[i].inputs;
    g_autoptr (GPtrArray) ours = g_ptr_array_new_with_free_func (g_free);
    g_ptr_array_add (ours, g_strdup ("--dry-run"));
    if (table[i].colsep) {
      g_ptr_array_add (ours, g_strdup ("-s"));
      g_ptr_array_add (ours, g_strdup_printf ("exec.colsep=%s", table[i].colsep));
    }
    g_ptr_array_add (ours, g_strdup ("-e"));
    g_ptr_array_add (ours, g_strdup (table[i].template));
    g_ptr_array_add (ours, g_strdup (":::"));
    g_autoptr (GPtrArray) theirs = g_ptr_array_new ();
    g_ptr_array_add (theirs, parallel);
    g_ptr_array_add (theirs, (gpointer) "--dry-run");
    g_ptr_array_add (theirs, (gpointer) "-k");
    g_ptr_array_add (theirs, (gpointer) "-j1");
    if (table[i].colsep) {
      g_ptr_array_add (theirs, (gpointer) "--colsep");
      g_ptr_array_add (theirs, (gpointer) table[i].colsep);
    }
    g_ptr_array_add (theirs, (gpointer) table[i].template);
    g_ptr_array_add (theirs, (gpointer) ":::");
    for (guint k = 0; inputs[k]; k++) {
      g_ptr_array_add (ours, g_strdup (inputs[k]));
      g_ptr_array_add (theirs, (gpointer) inputs[k]);
    }
    g_ptr_array_add (ours, NULL);
    g_ptr_array_add (theirs, NULL);
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun ((const char *const *) ours->pdata, dir, NULL, &out, &err), ==, 0);
    g_autoptr (GString) shown = g_string_new (NULL);
    const char *at = strstr (out, "; first tasks:\n");
    g_assert_nonnull (at);
    g_auto (GStrv) lines = g_strsplit (at + strlen ("; first tasks:\n"), "\n", -1);
    for (guint k = 0; lines[k]; k++) {
      const char *colon = strstr (lines[k], ": ");
      if (g_str_has_prefix (lines[k], ";   ") && colon)
        g_string_append_printf (shown, "%s\n", colon + 2);
    }
    g_autofree char *want = NULL, *want_err = NULL;
    int wait_status = 0;
    g_autoptr (GError) error = NULL;
    g_assert_true (g_spawn_sync (dir, (char **) theirs->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &want, &want_err, &wait_status, &error));
    g_assert_no_error (error);
    g_test_message ("template %s: parallel says\n%s", table[i].template, want);
    g_assert_cmpstr (shown->str, ==, want);
  }
  tt_rmtree (dir);
}

/* Bad templates and inputs are job file errors: exit 2, nothing runs. */
static void
test_bad_job (void)
{
  g_autofree char *dir = tt_tmpdir ();
  static const struct {
    const char *keys;
    const char *says;
  } table[] = {
    { "command = echo 'open\nargs = a\n", "job.ini:6: [exec] the plugin rejected the "
      "configuration: command: command template, at character 6: unterminated single quote" },
    { "args = a\ncommand = echo {3}\n", "job.ini:7: [exec] the plugin rejected the "
      "configuration: command: command template, at character 6: {3} needs colsep" },
    { "command = echo\ninput = no-such-file\n", "no-such-file" },
    { "command = echo\ninput = x\nargs = a\n", "input and args" },
    { "command = pwd\nargs = a\nworkdir = no-such-folder\n",
      "no-such-folder: No such file or directory" },
    { "command = pwd\nargs = a\nworkdir = job.ini\n", "job.ini: Not a directory" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run_exec (dir, NULL, table[i].keys, NULL, &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, table[i].says));
  }
  /* an empty input: a job of no task */
  g_autofree char *empty = tt_write (dir, "empty", "");
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_exec (dir, NULL, "command = false\ninput = empty\n", NULL, &out, &err), ==, 0);
  tt_rmtree (dir);
}

/* input = - reads standard input as the job runs; an input longer than one argument can
 * be (128 KiB on Linux) fails alone, named, and the others run. */
static void
test_stdin_and_long_input (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_write (dir, "job.ini",
                                   "[taskrun]\nplugin = exec\nworkers = 2\n"
                                   "[exec]\ncommand = printf '%.3s\\n' {}\ninput = -\n");
  g_autoptr (GString) in = g_string_new ("one\ntwo\n");
  for (int i = 0; i < 200000; i++)
    g_string_append_c (in, 'x');
  g_string_append (in, "\nthree\n");
  g_autofree char *inputs = g_build_filename (dir, "inputs", NULL);
  g_assert_true (g_file_set_contents (inputs, in->str, (gssize) in->len, NULL));
  g_autofree char *script = g_strdup_printf ("exec '%s' -c '%s' < '%s'", TT_TASKRUN, job, inputs);
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_assert_true (g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, NULL));
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_nonnull (strstr (out, "one\n"));
  g_assert_nonnull (strstr (out, "two\n"));
  g_assert_nonnull (strstr (out, "thr\n"));
  g_assert_null (strstr (out, "xxx"));
  g_assert_nonnull (strstr (err, "4 tasks: 3 succeeded, 1 failed"));
  tt_rmtree (dir);
}

/* The one-line form: -e COMMAND with ::: and its inputs, :::: and a file, or stdin. */
static void
test_one_line (void)
{
  g_autofree char *dir = tt_tmpdir ();
  const char *const words[] = { "-q", "-e", "printf '[%s]\\n' {}", ":::", "a b", "-n", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (words, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "[a b]\n"));
  g_assert_nonnull (strstr (out, "[-n]\n"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree char *list = tt_write (dir, "list", "one\ntwo\n");
  const char *const file[] = { "-q", "-j", "1", "-e", "echo {.}", "::::", "list", NULL };
  g_assert_cmpint (tt_run_taskrun (file, dir, NULL, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, "one\ntwo\n");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_autofree char *script = g_strdup_printf ("printf 'x.c\\n' | '%s' -q -e 'echo {.}'", TT_TASKRUN);
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  int status = 0;
  g_assert_true (g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, NULL));
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "x\n");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *const stray[] = { "-e", "echo", "stray", NULL };
  g_assert_cmpint (tt_run_taskrun (stray, dir, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "after -e COMMAND"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  const char *const both[] = { "-c", "job.ini", "-e", "echo", NULL };
  g_assert_cmpint (tt_run_taskrun (both, dir, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "-c and -e"));
  /* a second list is GNU parallel's cross product: refused, never run as inputs */
  for (int k = 0; k < 2; k++) {
    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
    const char *const two[] = { "-e", "echo", ":::", "a", k ? "::::" : ":::", "b", NULL };
    g_assert_cmpint (tt_run_taskrun (two, dir, NULL, &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, k ? "a second '::::'" : "a second ':::'"));
    g_assert_cmpstr (out, ==, "");
  }
  tt_rmtree (dir);
}

/* Under the MPI backend the commands run on the ranks, their output grouped as ever. */
static void
test_mpi (void)
{
  if (!tt_have_mpi ()) {
    g_test_skip ("no MPI backend in this build, or no mpirun on PATH");
    return;
  }
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = NULL, *err = NULL;
  tt_use_mpirun (3);
  /* f prints 3 MB, more than a stream keeps in memory: a worker on another host cannot
   * attach its spill file, and sends it in the result; g prints more than a result can
   * carry, and fails saying so */
  int status = run_exec (dir, NULL,
                         "shell = yes\ncommand = echo {} slot=$TASKRUN_SLOT; "
                         "if [ {} = f ]; then head -c 3000000 /dev/zero | tr '\\0' x; fi; "
                         "if [ {} = g ]; then head -c 40000000 /dev/zero; fi; exit 0\n"
                         "args = a b c d e f g\n", NULL, &out, &err);
  tt_use_mpirun (0);
  g_assert_cmpint (status, ==, 1);
  for (const char *c = "abcdef"; *c; c++) {
    g_autofree char *line = g_strdup_printf ("%c slot=", *c);
    g_assert_nonnull (strstr (out, line));
  }
  g_assert_cmpuint (strlen (out), ==, 6 * strlen ("a slot=1\n") + 3000000);
  g_assert_nonnull (strstr (err, "the most a task on another host can send back, and its stdout was dropped"));
  g_assert_nonnull (strstr (err, "7 tasks: 6 succeeded, 1 failed"));
  tt_rmtree (dir);
}

/* Bytes no text tool would keep: NULs, bytes that are not UTF-8, lines of any length,
 * no newline at the end; `n` of them from `seed`. */
static GBytes *
odd_bytes (gsize n, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  guint8 *b = g_malloc (n);
  for (gsize i = 0; i < n; i++) {
    guint32 r = g_rand_int (rand);
    b[i] = r % 7 == 0 ? '\n' : r % 11 == 0 ? 0 : (guint8) (r >> 8);
  }
  if (n)
    b[n - 1] = 0xff;
  return g_bytes_new_take (b, n);
}

/* How many entries a folder holds. */
static guint
entries_in (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  g_assert_nonnull (d);
  guint n = 0;
  while (g_dir_read_name (d))
    n++;
  return n;
}

/* Output past what a task keeps in memory (64 KiB a stream) comes out byte for byte on
 * both streams, in input order, tagged, and in results = DIR, and the temporary files
 * that held it leave nothing in $TMPDIR. */
static void
test_large_output (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *tmp = g_build_filename (dir, "tmp", NULL);
  g_assert_cmpint (g_mkdir (tmp, 0700), ==, 0);
  static const gsize sizes[] = { 3u << 20, 100, (64u << 10) + 1, 5u << 20, 64u << 10 };
  GBytes *outs[G_N_ELEMENTS (sizes)], *errs[G_N_ELEMENTS (sizes)];
  g_autoptr (GString) args = g_string_new ("args =");
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
    outs[i] = odd_bytes (sizes[i], (guint32) i);
    errs[i] = odd_bytes (sizes[G_N_ELEMENTS (sizes) - 1 - i], (guint32) (100 + i));
    g_autofree char *o = g_strdup_printf ("%s/o%zu", dir, i), *e = g_strdup_printf ("%s/e%zu", dir, i);
    g_assert_true (g_file_set_contents (o, g_bytes_get_data (outs[i], NULL),
                                        (gssize) g_bytes_get_size (outs[i]), NULL));
    g_assert_true (g_file_set_contents (e, g_bytes_get_data (errs[i], NULL),
                                        (gssize) g_bytes_get_size (errs[i]), NULL));
    g_string_append_printf (args, " %zu", i);
  }
  g_autofree char *env_tmp = g_strdup_printf ("TMPDIR=%s", tmp);
  const char *const env[] = { env_tmp, NULL };
  for (int tagged = 0; tagged < 2; tagged++) {
    g_autofree char *keys = g_strdup_printf ("shell = yes\nworkdir = .\ncommand = cat o{}; cat e{} >&2\n"
                                             "results = res%d\ntag = %s\n%s\n",
                                             tagged, tagged ? "yes" : "no", args->str);
    g_autofree char *text = g_strdup_printf ("[taskrun]\nplugin = exec\nworkers = 2\nordered = yes\n"
                                             "[exec]\n%s", keys);
    g_autofree char *job = tt_write (dir, "job.ini", text);
    const char *const argv[] = { "-q", "-c", job, NULL };
    g_autofree char *out = NULL, *err = NULL;
    gsize out_len = 0, err_len = 0;
    GPid pid = tt_spawn_taskrun (argv, dir, env);
    g_assert_cmpint (tt_wait_pid (pid, 60, NULL), ==, 0);
    g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
    g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
    g_assert_true (g_file_get_contents (out_path, &out, &out_len, NULL));
    g_assert_true (g_file_get_contents (err_path, &err, &err_len, NULL));
    g_autoptr (GByteArray) want_out = g_byte_array_new (), want_err = g_byte_array_new ();
    for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
      for (int s = 0; s < 2; s++) {
        GByteArray *want = s ? want_err : want_out;
        gsize len;
        const guint8 *b = g_bytes_get_data (s ? errs[i] : outs[i], &len);
        for (gsize at = 0; at < len;) {
          const guint8 *nl = memchr (b + at, '\n', len - at);
          gsize end = nl ? (gsize) (nl - b) + 1 : len;
          if (tagged) {
            char tag[32];
            int n = g_snprintf (tag, sizeof tag, "%zu\t", i);
            g_byte_array_append (want, (const guint8 *) tag, (guint) n);
          }
          g_byte_array_append (want, b + at, (guint) (end - at));
          at = end;
        }
        /* results = DIR keeps the bytes as the command wrote them, untagged */
        g_autofree char *kept_path = g_strdup_printf ("%s/res%d/%zu/%s", dir, tagged, i + 1,
                                                      s ? "stderr" : "stdout");
        g_autofree char *kept = NULL;
        gsize kept_len = 0;
        g_assert_true (g_file_get_contents (kept_path, &kept, &kept_len, NULL));
        g_assert_cmpmem (kept, kept_len, b, len);
      }
    }
    g_assert_cmpmem (out, out_len, want_out->data, want_out->len);
    g_assert_cmpuint (err_len, ==, want_err->len);
    g_assert_true (memcmp (err, want_err->data, err_len) == 0);
  }
  g_assert_cmpuint (entries_in (tmp), ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++) {
    g_bytes_unref (outs[i]);
    g_bytes_unref (errs[i]);
  }
  tt_rmtree (dir);
}

/* A stdout and stderr left non-blocking (O_NONBLOCK on a shared pipe) by whoever started
 * taskrun get every byte, read slowly: a full pipe is waited for, never dropped. */
static void
test_nonblocking_output (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (GBytes) data = odd_bytes (500000, 7);
  g_autofree char *path = g_build_filename (dir, "data", NULL);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (data, NULL), 500000, NULL));
  for (int s = 0; s < 2; s++) {
    int fds[2];
    g_assert_cmpint (pipe (fds), ==, 0);
    fcntl (fds[1], F_SETFL, fcntl (fds[1], F_GETFL) | O_NONBLOCK);
    int null = open ("/dev/null", O_WRONLY | O_CLOEXEC);
    const char *const argv[] = { "-q", "-j", "2", "-s", "exec.shell=yes", "-s", "exec.workdir=.",
                                 "-e", s ? "cat {} >&2" : "cat {}", ":::", "data", "data", "data",
                                 NULL };
    GPid pid = tt_spawn_taskrun_fds (argv, dir, NULL, s ? null : fds[1], s ? fds[1] : null);
    close (fds[1]);
    close (null);
    gsize total = 0;
    gboolean same = TRUE;
    guint8 buf[65536];
    for (;;) {
      g_usleep (2000);
      ssize_t n = read (fds[0], buf, sizeof buf);
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n; i++)
        same &= buf[i] == ((const guint8 *) g_bytes_get_data (data, NULL))[(total + (gsize) i) % 500000];
      total += (gsize) n;
    }
    close (fds[0]);
    g_assert_cmpint (tt_wait_pid (pid, 60, NULL), ==, 0);
    g_assert_cmpuint (total, ==, 3 * 500000);
    g_assert_true (same);
  }
  tt_rmtree (dir);
}

/* ordered = yes with a slow first task: the results that come early are held in files,
 * not memory, and taskrun holds their descriptors past a low soft limit (it raises its
 * own; the commands still see the one it was started with). */
static void
test_ordered_holds_output_in_files (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (GString) args = g_string_new ("args =");
  for (int i = 1; i <= 300; i++)
    g_string_append_printf (args, " %d", i);
  g_autofree char *job_text = g_strdup_printf (
      "[taskrun]\nplugin = exec\nworkers = 2\nordered = yes\n[exec]\nshell = yes\n"
      "command = if [ {} = 1 ]; then sleep 1.5; ulimit -n >&2; fi; echo {}; "
      "head -c 200000 /dev/zero\n%s\n", args->str);
  g_autofree char *job = tt_write (dir, "job.ini", job_text);
  struct rlimit saved, low;
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  if (saved.rlim_max < 1024) {
    g_test_skip ("the hard limit on descriptors is too low to raise past the held files");
    tt_rmtree (dir);
    return;
  }
  low = saved;
  low.rlim_cur = 128; /* fewer than the results held */
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &low), ==, 0);
  const char *const argv[] = { "-q", "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (argv, dir, NULL);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  struct rusage ru;
  g_assert_cmpint (tt_wait_pid (pid, 120, &ru), ==, 0);
  g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
  g_autofree char *out = NULL, *err = NULL;
  gsize out_len = 0;
  g_assert_true (g_file_get_contents (out_path, &out, &out_len, NULL));
  g_assert_true (g_file_get_contents (err_path, &err, NULL, NULL));
  g_assert_cmpstr (err, ==, "128\n");
  /* in input order, each task whole */
  gsize at = 0;
  for (int i = 1; i <= 300; i++) {
    g_autofree char *head = g_strdup_printf ("%d\n", i);
    g_assert_true (at + strlen (head) + 200000 <= out_len);
    g_assert_cmpmem (out + at, strlen (head), head, strlen (head));
    at += strlen (head);
    for (gsize k = 0; k < 200000; k += 4093)
      g_assert_cmpint (out[at + k], ==, 0);
    at += 200000;
  }
  g_assert_cmpuint (at, ==, out_len);
  g_test_message ("largest process: %ld KiB", ru.ru_maxrss);
#if !defined(__SANITIZE_ADDRESS__)
  g_assert_cmpint (ru.ru_maxrss, <, 32 * 1024); /* 300 x 200 kB held would be 60 MB */
#endif
  tt_rmtree (dir);
}

/* A task printing 2 GiB: all of it arrives, and no process of the run (taskrun, its
 * workers, the command) grows by more than a generous bound: the output is never in
 * memory (it was limited to 32 MiB when it was). */
static void
test_2gb_output (void)
{
  g_autofree char *dir = tt_tmpdir ();
  int pipe_fds[2];
  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  int err_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  const char *const argv[] = { "-q", "-e", "head -c 2147483648", ":::", "/dev/zero", NULL };
  GPid pid = tt_spawn_taskrun_fds (argv, dir, NULL, pipe_fds[1], err_fd);
  close (pipe_fds[1]);
  close (err_fd);
  guint64 total = 0;
  gboolean all_zero = TRUE;
  g_autofree guint8 *buf = g_malloc (1 << 20);
  for (;;) {
    ssize_t n = read (pipe_fds[0], buf, 1 << 20);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n && all_zero; i += 4093)
      all_zero = buf[i] == 0;
    total += (guint64) n;
  }
  close (pipe_fds[0]);
  struct rusage ru;
  g_assert_cmpint (tt_wait_pid (pid, 300, &ru), ==, 0);
  g_assert_cmpuint (total, ==, G_GUINT64_CONSTANT (2147483648));
  g_assert_true (all_zero);
  g_test_message ("largest process of the run: %ld KiB", ru.ru_maxrss);
#if !defined(__SANITIZE_ADDRESS__) /* its shadow memory and quarantine are no measure */
  g_assert_cmpint (ru.ru_maxrss, <, 64 * 1024); /* KiB */
#endif
  tt_rmtree (dir);
}

/* A full $TMPDIR while a task's output is spilled fails that task, naming the stream and
 * ENOSPC, and shows none of that stream: never a cut output reported as success.  The
 * other tasks run and print as usual.  Needs a small tmpfs mounted for the test (root). */
static void
test_enospc_while_spilling (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *tmp = g_build_filename (dir, "small", NULL);
  g_assert_cmpint (g_mkdir (tmp, 0700), ==, 0);
  if (mount ("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m") != 0) {
    g_autofree char *why = g_strdup_printf ("cannot mount a small tmpfs for $TMPDIR: %s",
                                            g_strerror (errno));
    g_test_skip (why);
    tt_rmtree (dir);
    return;
  }
  g_autofree char *env_tmp = g_strdup_printf ("TMPDIR=%s", tmp);
  const char *const env[] = { env_tmp, NULL };
  g_autofree char *job = tt_write (dir, "job.ini",
                                   "[taskrun]\nplugin = exec\nworkers = 2\n[exec]\nshell = yes\n"
                                   "command = if [ {} = big ]; then head -c 8000000 /dev/zero; "
                                   "fi; echo done {}\nargs = big small\n");
  const char *const argv[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (argv, dir, env);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 60, dir, &out, &err);
  umount2 (tmp, MNT_DETACH);
  g_test_message ("stderr: %s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "task 1 (if [ big = big ]"));
  g_assert_nonnull (strstr (err, "its stdout was lost"));
  g_assert_nonnull (strstr (err, "No space left on device"));
  g_assert_cmpstr (out, ==, "done small\n");
  g_assert_nonnull (strstr (err, "2 tasks: 1 succeeded, 1 failed"));
  tt_rmtree (dir);
}

/* taskrun killed (SIGKILL) while a task's output is spilled: its workers and the command
 * go (no orphan), and $TMPDIR holds nothing, as the spill files never had a name. */
static void
test_killed_while_spilling (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *tmp = g_build_filename (dir, "tmp", NULL);
  g_assert_cmpint (g_mkdir (tmp, 0700), ==, 0);
  g_autofree char *env_tmp = g_strdup_printf ("TMPDIR=%s", tmp);
  const char *const env[] = { env_tmp, NULL };
  g_autofree char *started = g_build_filename (dir, "started", NULL);
  g_autofree char *command = g_strdup_printf ("head -c 5000000 /dev/zero; echo {} >> %s; sleep 60",
                                              started);
  const char *const argv[] = { "-q", "-j", "2", "-s", "exec.shell=yes", "-e", command,
                               ":::", "a", "b", NULL };
  GPid pid = tt_spawn_taskrun (argv, dir, env);
  g_assert_true (tt_wait_lines (started, 2, 30));
  g_autoptr (GArray) workers = tt_children (pid);
  g_assert_cmpuint (workers->len, >=, 2);
  for (guint i = 0, n = workers->len; i < n; i++) {
    g_autoptr (GArray) commands = tt_children (g_array_index (workers, GPid, i));
    g_array_append_vals (workers, commands->data, commands->len);
  }
  g_assert_cmpuint (workers->len, >=, 4); /* and the commands they run */
  kill (pid, SIGKILL);
  tt_wait_pid (pid, 30, NULL);
  g_assert_cmpuint (tt_wait_gone (workers, 30), ==, 0);
  g_assert_cmpuint (entries_in (tmp), ==, 0);
  tt_rmtree (dir);
}

/* A job log of one -e command is not another's: --resume with another command (or other
 * inputs) is refused, naming the log's line; with the same one it skips what ran. */
static void
test_resume_knows_the_command (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *log = g_build_filename (dir, "log", NULL);
  g_autofree char *opt = g_strdup_printf ("--joblog=%s", log);
  g_autofree char *out = NULL, *err = NULL;
  const char *const first[] = { opt, "-e", "echo first", ":::", "a", "b", "c", NULL };
  g_assert_cmpint (tt_run_taskrun (first, dir, NULL, &out, &err), ==, 0);
  static const char *const other[][8] = {
    { "--resume", NULL, "-e", "echo other", ":::", "a", "b", "c" },
    { "--resume", NULL, "-e", "echo first", ":::", "x", "y", "z" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (other); i++) {
    const char *argv[9];
    memcpy (argv, other[i], sizeof other[i]);
    argv[1] = opt;
    argv[8] = NULL;
    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (tt_run_taskrun (argv, dir, NULL, &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, "log:2: this job log was written by another job"));
    g_assert_cmpstr (out, ==, "");
  }
  const char *const same[] = { opt, "--resume", "-e", "echo first", ":::", "a", "b", "c", NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (tt_run_taskrun (same, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "3 skipped"));
  g_assert_cmpstr (out, ==, "");
  tt_rmtree (dir);
}

/* Interrupted (SIGINT) with a job log, then run again with --resume: the second run runs
 * exactly the tasks the first did not finish, so that every input has run once. */
static void
test_resume_after_interrupt (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *log = g_build_filename (dir, "log", NULL);
  g_autofree char *inputs = g_build_filename (dir, "inputs", NULL);
  g_autoptr (GString) list = g_string_new (NULL);
  for (int i = 1; i <= 40; i++)
    g_string_append_printf (list, "in%d\n", i);
  g_assert_true (g_file_set_contents (inputs, list->str, -1, NULL));
  g_autofree char *ran = g_build_filename (dir, "ran", NULL);
  g_autofree char *job = tt_write (dir, "job.ini",
                                   "[taskrun]\nplugin = exec\nworkers = 2\n[exec]\nshell = yes\n"
                                   "workdir = .\ninput = inputs\n"
                                   "command = sleep 0.1; echo {} >> ran; echo {}\n");
  g_autofree char *opt = g_strdup_printf ("--joblog=%s", log);
  const char *const first[] = { "-c", job, opt, NULL };
  GPid pid = tt_spawn_taskrun (first, dir, NULL);
  g_assert_true (tt_wait_lines (log, 6, 30));
  kill (pid, SIGINT);
  g_autofree char *out1 = NULL, *err1 = NULL;
  int status = tt_wait_taskrun (pid, 30, dir, &out1, &err1);
  g_assert_cmpint (status, ==, 130);
  const char *const again[] = { "-c", job, opt, "--resume", NULL };
  pid = tt_spawn_taskrun (again, dir, NULL);
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 60, dir, &out2, &err2), ==, 0);
  /* every input ran exactly once in all (the commands' own record), and the two runs'
   * outputs are the two halves */
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (ran, &text, NULL, NULL));
  g_autofree char *both = g_strconcat (out1, out2, NULL);
  g_auto (GStrv) ran_lines = g_strsplit (text, "\n", -1);
  g_auto (GStrv) out_lines = g_strsplit (both, "\n", -1);
  for (int i = 1; i <= 40; i++) {
    g_autofree char *line = g_strdup_printf ("in%d", i);
    guint in_ran = 0, in_out = 0;
    for (guint k = 0; ran_lines[k]; k++)
      in_ran += strcmp (ran_lines[k], line) == 0;
    for (guint k = 0; out_lines[k]; k++)
      in_out += strcmp (out_lines[k], line) == 0;
    g_assert_cmpuint (in_ran, ==, 1);
    g_assert_cmpuint (in_out, ==, 1);
  }
  g_assert_cmpuint (tt_count_lines (out1, "in"), >=, 6);
  g_assert_cmpuint (tt_count_lines (out2, "in"), >=, 1);
  tt_rmtree (dir);
}

/* conf/exec.ini runs from the source tree as it is. */
static void
test_bundled_job (void)
{
  const char *const args[] = { "-c", "conf/exec.ini", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, NULL, NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, " core/runner.c\n"));
  g_assert_nonnull (strstr (out, " core/jobfile.c\n"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/exec/inputs-stay-one-word", test_inputs_stay_one_word);
  g_test_add_func ("/exec/exit-statuses", test_exit_statuses);
  g_test_add_func ("/exec/joblog-statuses", test_joblog_statuses);
  g_test_add_func ("/exec/long-command-in-message", test_long_command_in_message);
  g_test_add_func ("/exec/script-without-shebang", test_script_without_shebang);
  g_test_add_func ("/exec/no-leftover-daemon", test_no_leftover_daemon);
  g_test_add_func ("/exec/output-grouped", test_output_grouped);
  g_test_add_func ("/exec/ordered-and-tagged", test_ordered_and_tagged);
  g_test_add_func ("/exec/results-dir", test_results_dir);
  g_test_add_func ("/exec/environment", test_environment);
  g_test_add_func ("/exec/dry-run", test_dry_run);
  g_test_add_func ("/exec/dry-run-matches-parallel", test_dry_run_matches_parallel);
  g_test_add_func ("/exec/bad-job", test_bad_job);
  g_test_add_func ("/exec/stdin-and-long-input", test_stdin_and_long_input);
  g_test_add_func ("/exec/one-line", test_one_line);
  g_test_add_func ("/exec/mpi", test_mpi);
  g_test_add_func ("/exec/bundled-job", test_bundled_job);
  g_test_add_func ("/exec/large-output", test_large_output);
  g_test_add_func ("/exec/2gb-output", test_2gb_output);
  g_test_add_func ("/exec/ordered-holds-output-in-files", test_ordered_holds_output_in_files);
  g_test_add_func ("/exec/nonblocking-output", test_nonblocking_output);
  g_test_add_func ("/exec/enospc-while-spilling", test_enospc_while_spilling);
  g_test_add_func ("/exec/killed-while-spilling", test_killed_while_spilling);
  g_test_add_func ("/exec/resume-after-interrupt", test_resume_after_interrupt);
  g_test_add_func ("/exec/resume-knows-the-command", test_resume_knows_the_command);
  return g_test_run ();
}
