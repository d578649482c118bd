/* testkit.c — a plugin for the tests (never installed).
 *
 * Each task's payload is a small command, so that a test can ask a worker for exactly
 * the behaviour it checks:
 *   echo:TEXT        result TEXT
 *   bytes:N          result N bytes of 'x'
 *   sleep:MS         sleep MS milliseconds, result "slept"
 *   sleepecho:MS:T   sleep MS milliseconds, result T
 *   pid              result the worker's pid, in decimal
 *   rank-pid         result "R:P": the MPI rank of the worker's host (or -) and its pid
 *   fail:MESSAGE     fail the task with MESSAGE
 *   crash            SIGSEGV;  abort: SIGABRT;  exit:N: exit with status N
 *   hang             sleep forever;  hang-ignoring-term: and ignore SIGTERM
 *   mark-hang:DIR    create DIR/started.PID, then sleep forever
 *   mark-sleep:DIR:MS  create DIR/started.PID.K (K counts this worker's tasks), then
 *                    sleep MS milliseconds, result "slept"
 *   bg-then-crash:DIR  start `sleep 30 &` (pid in DIR/bgpid), then SIGSEGV
 *   child-sleep:DIR  run a child `sleep 30` (pid in DIR/childpid) and wait for it
 *   fail-once:PATH   fail if PATH does not exist (and create it), else succeed
 *   crash-once:PATH  SIGSEGV if PATH does not exist (and create it), else succeed
 *   garbage          write a bad frame on the link (fd 3), then hang
 *   oversize-payload a payload of 65 MiB, too large to send (made by the generator)
 *   close-link-hang  close the link (fd 3), then sleep forever
 *   touch-crash:PATH create PATH, then SIGSEGV
 *   fork-then-crash:DIR  fork a copy that sleeps 30 s holding the link (its pid in
 *                    DIR/forkpid), then SIGSEGV
 *   print-lines:TAG:N:LEN  write N lines of LEN bytes to stdout and N to stderr, each
 *                    "TAG out I " (or "TAG err I ") padded with '.', in write() calls of
 *                    at most 1000 bytes (no stdio buffer to keep a line whole), result
 *                    "printed"
 *   print-partial:TAG:HOW  write "TAG out-partial" to stdout and "TAG err-partial" to
 *                    stderr with no newline, then HOW: crash (SIGSEGV) or return
 *                    (result "printed")
 * As a job file plugin, its generator makes `tasks` tasks of the command `op` (with %n
 * replaced by the task number; task `bad_task` runs `bad_op` instead), and its result
 * hook prints "seq result" lines.
 * `init = fail` makes worker_init fail; `init = crash` kills the worker in worker_init;
 * `init = hang` never returns from it; `init = fail-on-rank-2` fails on MPI rank 2 only;
 * `init = fail-first-hang-rest`: the first worker to create $TESTKIT_MARK fails, the
 * others hang.  `init = fail-if-mark`: fail while $TESTKIT_MARK exists;
 * `init = fail-once-if-mark`: the one worker that removes it fails.
 * `fini = hang`: worker_fini never returns.
 */
#include <taskrun/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const init_choices[] = { "ok",   "fail", "crash", "hang", "fail-on-rank-2",
                                            "fail-first-hang-rest", "fail-if-mark",
                                            "fail-once-if-mark", NULL };

static const char *const fini_choices[] = { "ok", "hang", NULL };

static const TrOption testkit_options[] = {
  { .name = "tasks", .type = TR_OPTION_INT, .default_value = "10", .min = 0, .max = 1e12,
    .help = "how many tasks the generator makes" },
  { .name = "op", .type = TR_OPTION_STRING, .default_value = "echo:%n",
    .help = "the command of every task; %n is the task number" },
  { .name = "init", .type = TR_OPTION_ENUM, .default_value = "ok", .choices = init_choices,
    .help = "what worker_init does" },
  { .name = "fini", .type = TR_OPTION_ENUM, .default_value = "ok", .choices = fini_choices,
    .help = "what worker_fini does" },
  { .name = "quiet", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "do not print result lines" },
  { .name = "bad_task", .type = TR_OPTION_INT, .default_value = "0", .min = 0, .max = 1e12,
    .help = "this task number runs bad_op instead of op; 0: none" },
  { .name = "bad_op", .type = TR_OPTION_STRING, .default_value = "crash",
    .help = "the command of task bad_task" },
  { .name = NULL },
};

typedef struct {
  TrJob *job;
  guint64 tasks, made, bad_task;
  char *op, *bad_op;
  gboolean quiet;
} Testkit;

static gboolean
testkit_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  (void) error;
  Testkit *t = g_new0 (Testkit, 1);
  t->job = job;
  t->tasks = (guint64) tr_config_get_int (config, "tasks");
  t->op = g_strdup (tr_config_get_string (config, "op"));
  t->quiet = tr_config_get_bool (config, "quiet");
  t->bad_task = (guint64) tr_config_get_int (config, "bad_task");
  t->bad_op = g_strdup (tr_config_get_string (config, "bad_op"));
  *state = t;
  return TRUE;
}

static TrNext
testkit_next (gpointer state, TrTask *task, GError **error)
{
  (void) error;
  Testkit *t = state;
  if (t->made >= t->tasks)
    return TR_NEXT_END;
  t->made++;
  g_autofree char *n = g_strdup_printf ("%" G_GUINT64_FORMAT, t->made);
  g_auto (GStrv) parts = g_strsplit (t->made == t->bad_task ? t->bad_op : t->op, "%n", -1);
  g_autofree char *cmd = g_strjoinv (n, parts);
  if (g_str_equal (cmd, "oversize-payload")) {
    /* more than a frame carries: the task fails before any worker sees it */
    gsize big = (gsize) 65 << 20;
    g_autofree char *pad = g_malloc0 (big);
    tr_task_set_payload (task, pad, big);
    tr_task_set_description (task, "%s", cmd);
    return TR_NEXT_TASK;
  }
  tr_task_set_payload (task, cmd, strlen (cmd));
  tr_task_set_description (task, "%s", cmd);
  return TR_NEXT_TASK;
}

static void
testkit_result (gpointer state, const TrResult *r)
{
  Testkit *t = state;
  if (t->quiet)
    return;
  if (r->error)
    tr_job_print (t->job, "%" G_GUINT64_FORMAT " error %s", r->seq, r->error->message);
  else
    tr_job_print (t->job, "%" G_GUINT64_FORMAT " %.*s", r->seq, (int) r->len, (const char *) r->data);
}

static void
testkit_destroy (gpointer state)
{
  Testkit *t = state;
  g_free (t->op);
  g_free (t->bad_op);
  g_free (t);
}

/* The MPI rank of the worker's host as mpirun gave it to the worker's parent, its rank's
 * process, or NULL outside mpirun: taskrun keeps the launch's variables from workers
 * and tasks (core/mpi-launch.c), and a process's /proc environ stays what it started
 * with, so this is mpirun's word, not taskrun's. */
static char *
launch_rank (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/environ", (int) getppid ());
  g_autofree char *env = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &env, &len, NULL))
    return NULL;
  for (gsize at = 0; at < len; at += strlen (env + at) + 1)
    if (g_str_has_prefix (env + at, "OMPI_COMM_WORLD_RANK="))
      return g_strdup (env + at + strlen ("OMPI_COMM_WORLD_RANK="));
  return NULL;
}

static gboolean
testkit_worker_init (const TrConfig *config, gpointer *wstate, GError **error)
{
  /* the worker's state says whether worker_fini hangs */
  *wstate = GINT_TO_POINTER (g_str_equal (tr_config_get_string (config, "fini"), "hang"));
  const char *init = tr_config_get_string (config, "init");
  if (g_str_equal (init, "crash"))
    raise (SIGSEGV);
  if (g_str_equal (init, "hang"))
    for (;;)
      pause ();
  g_autofree char *rank = launch_rank ();
  if (g_str_equal (init, "fail-on-rank-2") && g_strcmp0 (rank, "2") == 0) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "testkit refuses to start on rank 2 (init = fail-on-rank-2)");
    return FALSE;
  }
  if (g_str_equal (init, "fail-first-hang-rest")) {
    const char *mark = g_getenv ("TESTKIT_MARK");
    int fd = mark ? open (mark, O_WRONLY | O_CREAT | O_EXCL, 0600) : -1;
    if (fd < 0)
      for (;;)
        pause ();
    close (fd);
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "testkit refuses to start (init = fail-first-hang-rest)");
    return FALSE;
  }
  const char *mark = g_getenv ("TESTKIT_MARK");
  if ((g_str_equal (init, "fail-if-mark") && mark && g_file_test (mark, G_FILE_TEST_EXISTS)) ||
      (g_str_equal (init, "fail-once-if-mark") && mark && unlink (mark) == 0)) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "testkit refuses to start (init = %s)", init);
    return FALSE;
  }
  if (g_str_equal (init, "fail")) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "testkit refuses to start (init = fail)");
    return FALSE;
  }
  return TRUE;
}

static void
testkit_worker_fini (gpointer wstate)
{
  if (GPOINTER_TO_INT (wstate))
    for (;;)
      pause ();
}

/* Writes all of `len` bytes of `text` on `fd`, `piece` bytes at a time. */
static void
write_pieces (int fd, const char *text, gsize len, gsize piece)
{
  while (len) {
    ssize_t n = write (fd, text, MIN (len, piece));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit (97);
    text += n;
    len -= (gsize) n;
  }
}

/* print-lines: line I of stream WHICH, LEN bytes and a newline, in `line`. */
static void
make_line (char *line, const char *tag, const char *which, guint i, gsize len)
{
  int head = g_snprintf (line, len + 1, "%s %s %u ", tag, which, i);
  memset (line + head, '.', len - (gsize) head);
  line[len] = '\n';
}

static gboolean
testkit_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *out, GError **error)
{
  (void) wstate;
  g_autofree char *cmd = g_strndup ((const char *) payload, len);
  if (g_str_has_prefix (cmd, "echo:")) {
    tr_output_append (out, cmd + 5, strlen (cmd + 5));
  } else if (g_str_has_prefix (cmd, "bytes:")) {
    gsize n = g_ascii_strtoull (cmd + 6, NULL, 10);
    g_autofree char *x = g_malloc (n);
    memset (x, 'x', n);
    tr_output_append (out, x, n);
  } else if (g_str_has_prefix (cmd, "sleep:")) {
    g_usleep (1000 * g_ascii_strtoull (cmd + 6, NULL, 10));
    tr_output_append (out, "slept", 5);
  } else if (g_str_has_prefix (cmd, "sleepecho:")) {
    char *end = NULL;
    g_usleep (1000 * g_ascii_strtoull (cmd + 10, &end, 10));
    const char *text = end && *end == ':' ? end + 1 : "";
    tr_output_append (out, text, strlen (text));
  } else if (g_str_equal (cmd, "pid")) {
    g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
    tr_output_append (out, pid, strlen (pid));
  } else if (g_str_equal (cmd, "rank-pid")) {
    g_autofree char *rank = launch_rank ();
    g_autofree char *text = g_strdup_printf ("%s:%d", rank ? rank : "-", (int) getpid ());
    tr_output_append (out, text, strlen (text));
  } else if (g_str_has_prefix (cmd, "fail:")) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "%s", cmd + 5);
    return FALSE;
  } else if (g_str_has_prefix (cmd, "fail-own:")) {
    /* an error in a domain of the plugin's own, code 42, G_FILE_ERROR_EXIST's neighbour */
    g_set_error (error, g_quark_from_static_string ("testkit-own-error-quark"), 42, "%s",
                 cmd + 9);
    return FALSE;
  } else if (g_str_equal (cmd, "crash")) {
    raise (SIGSEGV);
  } else if (g_str_equal (cmd, "abort")) {
    abort ();
  } else if (g_str_has_prefix (cmd, "exit:")) {
    _exit (atoi (cmd + 5));
  } else if (g_str_equal (cmd, "hang")) {
    for (;;)
      pause ();
  } else if (g_str_has_prefix (cmd, "mark-hang:")) {
    /* tells the test it is running (a file DIR/started.PID), then hangs */
    g_autofree char *mark = g_strdup_printf ("%s/started.%d", cmd + 10, (int) getpid ());
    g_file_set_contents (mark, "", 0, NULL);
    for (;;)
      pause ();
  } else if (g_str_has_prefix (cmd, "mark-sleep:") && strrchr (cmd, ':') > cmd + 10) {
    /* tells the test this task started (a file of its own), then sleeps */
    static guint started;
    char *ms = strrchr (cmd, ':');
    *ms++ = '\0';
    g_autofree char *mark = g_strdup_printf ("%s/started.%d.%u", cmd + 11, (int) getpid (), ++started);
    g_file_set_contents (mark, "", 0, NULL);
    g_usleep (1000 * g_ascii_strtoull (ms, NULL, 10));
    tr_output_append (out, "slept", 5);
  } else if (g_str_has_prefix (cmd, "bg-then-crash:")) {
    /* leaves a background process (its pid in DIR/bgpid), then crashes */
    g_autofree char *sh = g_strdup_printf ("sleep 30 & echo $! > %s/bgpid", cmd + 14);
    if (system (sh) != 0)
      _exit (98);
    raise (SIGSEGV);
  } else if (g_str_has_prefix (cmd, "child-sleep:")) {
    /* waits for a child process (its pid in DIR/childpid) that sleeps 30 s */
    g_autofree char *sh = g_strdup_printf ("echo $$ > %s/childpid; exec sleep 30", cmd + 12);
    if (system (sh) != 0)
      _exit (98);
    tr_output_append (out, "child done", 10);
  } else if (g_str_has_prefix (cmd, "touch-crash:")) {
    g_file_set_contents (cmd + 12, "", 0, NULL);
    raise (SIGSEGV);
  } else if (g_str_equal (cmd, "close-link-hang")) {
    close (3);
    for (;;)
      pause ();
  } else if (g_str_has_prefix (cmd, "fork-then-crash:")) {
    /* a plain fork, no exec: the copy holds every descriptor, the link too */
    pid_t kid = fork ();
    if (kid == 0) {
      sleep (30);
      _exit (0);
    }
    g_autofree char *path = g_strdup_printf ("%s/forkpid", cmd + 16);
    g_autofree char *text = g_strdup_printf ("%d", (int) kid);
    g_file_set_contents (path, text, -1, NULL);
    raise (SIGSEGV);
  } else if (g_str_has_prefix (cmd, "print-lines:")) {
    g_auto (GStrv) f = g_strsplit (cmd + 12, ":", 3);
    if (g_strv_length (f) != 3)
      _exit (96);
    guint n = (guint) g_ascii_strtoull (f[1], NULL, 10);
    gsize len = MAX ((gsize) g_ascii_strtoull (f[2], NULL, 10), strlen (f[0]) + 20);
    g_autofree char *line = g_malloc (len + 1);
    for (guint i = 0; i < n; i++) {
      make_line (line, f[0], "out", i, len);
      write_pieces (1, line, len + 1, 1000);
      make_line (line, f[0], "err", i, len);
      write_pieces (2, line, len + 1, 1000);
    }
    tr_output_append (out, "printed", 7);
  } else if (g_str_has_prefix (cmd, "print-partial:") && strrchr (cmd, ':') > cmd + 13) {
    char *how = strrchr (cmd, ':');
    *how++ = '\0';
    g_autofree char *o = g_strdup_printf ("%s out-partial", cmd + 14);
    g_autofree char *e = g_strdup_printf ("%s err-partial", cmd + 14);
    write_pieces (1, o, strlen (o), 1000);
    write_pieces (2, e, strlen (e), 1000);
    if (g_str_equal (how, "crash"))
      raise (SIGSEGV);
    tr_output_append (out, "printed", 7);
  } else if (g_str_equal (cmd, "hang-ignoring-term")) {
    signal (SIGTERM, SIG_IGN);
    for (;;)
      pause ();
  } else if (g_str_has_prefix (cmd, "crash-once:")) {
    /* crashes the first time (creating the marker file), succeeds after */
    const char *marker = cmd + 11;
    if (!g_file_test (marker, G_FILE_TEST_EXISTS)) {
      g_file_set_contents (marker, "", 0, NULL);
      raise (SIGSEGV);
    }
    tr_output_append (out, "second", 6);
  } else if (g_str_has_prefix (cmd, "fail-once:")) {
    /* fails the first time (creating the marker file), succeeds after */
    const char *marker = cmd + 10;
    if (!g_file_test (marker, G_FILE_TEST_EXISTS)) {
      g_file_set_contents (marker, "", 0, NULL);
      g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "first attempt fails");
      return FALSE;
    }
    tr_output_append (out, "second", 6);
  } else if (g_str_has_prefix (cmd, "fd-open:")) {
    /* whether this worker has descriptor N open */
    const char *state = fcntl (atoi (cmd + 8), F_GETFD) >= 0 ? "open" : "closed";
    tr_output_append (out, state, strlen (state));
  } else if (g_str_equal (cmd, "garbage")) {
    static const guint8 junk[] = { 0xff, 0xff, 0xff, 0x7f, 0x04, 'j', 'u', 'n', 'k' };
    if (write (3, junk, sizeof junk) < 0)
      _exit (99);
    for (;;)
      pause ();
  } else {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "unknown testkit command '%s'", cmd);
    return FALSE;
  }
  return TRUE;
}

TR_PLUGIN_DEFINE (
  .name = "testkit",
  .version = "1.0",
  .description = "commands for the tests: echo, sleep, pid, fd-open, fail, crash, hang, garbage",
  .license = "MIT",
  .options = testkit_options,
  .flags = TR_PLUGIN_FLAG_DETERMINISTIC,
  .configure = testkit_configure,
  .next_task = testkit_next,
  .result = testkit_result,
  .destroy = testkit_destroy,
  .worker_init = testkit_worker_init,
  .worker_fini = testkit_worker_fini,
  .run = testkit_run,
);
