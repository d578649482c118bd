/* runner.c — one run of a job file, from reading it to the exit status.
 *
 * Owns: the [taskrun] keys and their meaning, the order of the checks (job file, core
 * keys, plugin load, plugin section, unknown sections, configure) so that nothing runs
 * unless all pass, --dry-run, the TrJob object the plugin's parent hooks talk to, the
 * per-task lines of -v and failures, the summary, the exit status, and the first and
 * second SIGINT/SIGTERM/SIGHUP.
 * Does not own: the pool (pool.c), the file format (jobfile.c), option parsing (options.c).
 */
#include "config.h"
#include "runner.h"
#include "link.h"
#include "mpi-backend.h"
#include "joblog.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static const char *const on_failure_choices[] = { "continue", "stop", NULL };
static const char *const backend_choices[] = { "local", "mpi", NULL };

/* The [taskrun] section, declared with the same table type plugins use. */
static const TrOption core_options[] = {
  { .name = "plugin", .type = TR_OPTION_STRING, .required = TRUE,
    .help = "the task plugin: a name found on the plugin path, or a path to a .so" },
  { .name = "workers", .type = TR_OPTION_INT, .min = 1, .max = 4096,
    .help = "pool size; default: the number of online CPUs" },
  { .name = "task_timeout", .type = TR_OPTION_DOUBLE, .default_value = "0", .min = 0, .max = 1e9,
    .help = "seconds a task may run before it is killed; 0: no limit" },
  { .name = "retries", .type = TR_OPTION_INT, .default_value = "0", .min = 0, .max = 1000,
    .help = "how many more times a failed task is run" },
  { .name = "on_failure", .type = TR_OPTION_ENUM, .default_value = "continue",
    .choices = on_failure_choices,
    .help = "after a task fails for good: continue, or stop handing out tasks" },
  { .name = "max_tasks_per_worker", .type = TR_OPTION_INT, .default_value = "0", .min = 0,
    .max = G_MAXUINT32, .help = "replace a worker after this many tasks; 0: never" },
  { .name = "ordered", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "hand results to the plugin in the order the tasks were made" },
  { .name = "batch", .type = TR_OPTION_STRING, .default_value = "auto",
    .help = "tasks per message to a worker: auto, or a number from 1 to 65536" },
  { .name = "joblog", .type = TR_OPTION_PATH,
    .help = "write a GNU parallel style job log to this file (--joblog overrides it)" },
  { .name = "backend", .type = TR_OPTION_ENUM, .default_value = "local",
    .choices = backend_choices, .help = "where workers run: local processes, or MPI ranks" },
  { .name = NULL },
};

const TrOption *
tr_runner_core_options (void)
{
  return core_options;
}

struct TrJob {
  TrRunOptions *opts;
  const TrPluginDesc *desc;
  gpointer state;
  guint workers;
  char *stop_reason;
  TrPool *pool;
  TrProgress *progress;
};

/* ---- stdout ------------------------------------------------------------------------ */

/* Everything taskrun writes on stdout (results, --dry-run, --list-plugins, --describe,
 * --version) is the product of the command, so a write that fails (a full disk, a closed
 * descriptor, EIO) must not pass unnoticed: the first failure is reported on stderr at
 * once, later writes are dropped, and the command exits 1, as sha256sum and cp do.
 * SIGPIPE stays at its default, so `taskrun ... | head -1` ends like any other filter
 * (status 141). */
static int stdout_errno;          /* the first failed write's errno; 0: none yet */
static gboolean stdout_failed;
static gboolean stdout_closed;

static void
stdout_fail (int e)
{
  if (stdout_failed)
    return;
  stdout_failed = TRUE;
  stdout_errno = e;
  if (e)
    g_printerr ("taskrun: cannot write to standard output: %s\n", g_strerror (e));
  else
    g_printerr ("taskrun: cannot write to standard output\n");
}

gboolean
tr_stdout_write (const char *text, gsize len)
{
  if (stdout_failed)
    return FALSE;
  errno = 0;
  /* stdout is line-buffered (main.c): a line that ends in '\n' is written here, and a
   * failure sets the stream's error flag */
  if (fwrite (text, 1, len, stdout) != len || ferror (stdout)) {
    stdout_fail (errno);
    return FALSE;
  }
  return TRUE;
}

/* Run at exit from main, and as an atexit handler for the paths that call exit() (GOption
 * prints --help and exits): what is still buffered is written, and a failure at this
 * last step counts like any other. */
int
tr_stdout_close (int status)
{
  if (stdout_closed)
    return status;
  stdout_closed = TRUE;
  errno = 0;
  if (!stdout_failed && (fflush (stdout) != 0 || ferror (stdout)))
    stdout_fail (errno);
  /* A stdout closed before taskrun started (>&-) with nothing written to it is no
   * failure: there was nothing to lose (gnulib's close_stdout rule). */
  errno = 0;
  if (fclose (stdout) != 0 && errno != EBADF)
    stdout_fail (errno);
  return stdout_failed && status == TR_EXIT_OK ? TR_EXIT_FAILED : status;
}

/* Everything taskrun and its plugin write while a run goes on passes here, so the
 * progress line is erased first and never mixes with it.  FALSE: it could not be
 * written. */
static gboolean
emit (TrJob *job, FILE *to, const char *prefix, const char *format, va_list ap)
{
  tr_progress_clear (job->progress);
  g_autofree char *text = g_strdup_vprintf (format, ap);
  gsize n = strlen (text);
  if (to != stdout) {
    fprintf (to, "%s%s%s", prefix, text, n && text[n - 1] == '\n' ? "" : "\n");
    return TRUE;
  }
  g_autofree char *line = g_strconcat (prefix, text, n && text[n - 1] == '\n' ? "" : "\n", NULL);
  return tr_stdout_write (line, strlen (line));
}

static void
emit_fmt (TrJob *job, FILE *to, const char *prefix, const char *format, ...) G_GNUC_PRINTF (4, 5);

static void
emit_fmt (TrJob *job, FILE *to, const char *prefix, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  emit (job, to, prefix, format, ap);
  va_end (ap);
}

static void
say (TrJob *job, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
say (TrJob *job, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  emit (job, stderr, "taskrun: ", format, ap);
  va_end (ap);
}

void
tr_job_message (TrJob *job, const char *format, ...)
{
  g_autofree char *prefix = g_strdup_printf ("taskrun: %s: ", job->desc->name);
  va_list ap;
  va_start (ap, format);
  g_autofree char *text = g_strdup_vprintf (format, ap);
  va_end (ap);
  /* a message names files, which may hold any bytes: one line, escaped */
  gsize n = strlen (text);
  if (n && text[n - 1] == '\n')
    text[n - 1] = '\0';
  g_autofree char *escaped = tr_text_escape (text);
  emit_fmt (job, stderr, prefix, "%s", escaped);
}

gboolean
tr_job_print (TrJob *job, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  gboolean ok = emit (job, stdout, "", format, ap);
  va_end (ap);
  return ok;
}

void
tr_job_set_total_units (TrJob *job, guint64 total, gboolean final)
{
  if (job->progress)
    tr_progress_set_total_units (job->progress, total, final);
}

void
tr_job_stop (TrJob *job, const char *reason)
{
  if (job->stop_reason)
    return;
  job->stop_reason = g_strdup (reason ? reason : "the plugin stopped the job");
  say (job, "stopping: %s", job->stop_reason);
  if (job->pool)
    tr_pool_stop_feeding (job->pool);
}

guint
tr_job_get_workers (TrJob *job)
{
  return job->workers;
}

gboolean
tr_job_is_dry_run (TrJob *job)
{
  return job->opts->dry_run;
}

/* ---- signals ---------------------------------------------------------------------- */

static volatile int signal_count; /* an int for TrPoolOptions.interrupted; set atomically */
static volatile sig_atomic_t signal_first;
static TrPool *volatile signal_pool;

/* First SIGINT, SIGTERM or SIGHUP: stop feeding, let running tasks finish.  Second: kill
 * them now.  SIGHUP (the terminal or the ssh session went away) is a request to stop
 * like SIGTERM, as in GNU parallel: the job log is flushed and the summary printed
 * rather than the run cut off mid-row.
 * Both only set flags and write an eventfd, which is safe in a signal handler. */
static void
on_signal (int sig)
{
  static const char once[] = "\ntaskrun: interrupted: finishing the running tasks, starting no "
                              "new ones (interrupt again to stop them now)\n";
  static const char twice[] = "\ntaskrun: interrupted again: stopping the running tasks now\n";
  if (signal_count++ == 0)
    signal_first = sig;
  if (write (STDERR_FILENO, signal_count == 1 ? once : twice,
             signal_count == 1 ? sizeof once - 1 : sizeof twice - 1) < 0) {
    /* nothing to do about a closed stderr */
  }
  if (signal_pool) {
    if (signal_count == 1)
      tr_pool_stop_feeding (signal_pool);
    else
      tr_pool_request_terminate (signal_pool);
  }
}

static void
install_signals (void)
{
  /* SA_RESTART: a write of result lines interrupted by the signal must not lose a line */
  struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

/* ---- the run ----------------------------------------------------------------------- */

typedef struct {
  TrJob *job;
  TrRunOptions *opts;
  TrJoblog *joblog;
  TrSeqSet *done;       /* --resume: seqs that already succeeded */
  guint64 produced;     /* tasks the plugin's generator made, skipped ones included */
  guint64 skipped;
  guint retries;
  gboolean stop_on_failure;
  gboolean joblog_failed;
  GString *described;   /* scratch for describe() */
  const char *joblog_path;
} RunCtx;

/* The task's description: the one its generator set, else the plugin's describe hook's,
 * made once per result however many lines name it (*made: NULL until then). */
static const char *
describe (RunCtx *ctx, const TrResult *r, const char **made)
{
  if (*made)
    return *made;
  if (*r->description || !ctx->job->desc->describe)
    return *made = r->description;
  g_string_truncate (ctx->described, 0);
  ctx->job->desc->describe (ctx->job->state, r->payload, r->sent, ctx->described);
  return *made = ctx->described->str;
}

/* "task N (DESCRIPTION) WHAT[: MESSAGE]" on stderr.  The description and the message are
 * the plugin's text, escaped (tr_text_escape) so that each task stays one line. */
static void
say_task (RunCtx *ctx, const TrResult *r, const char **desc, const char *what,
          const char *message)
{
  g_autofree char *d = tr_text_escape (describe (ctx, r, desc));
  g_autofree char *m = message ? tr_text_escape (message) : NULL;
  say (ctx->job, "task %" G_GUINT64_FORMAT " (%s) %s%s%s", r->seq, d, what, m ? ": " : "",
       m ? m : "");
}

static TrNext
run_generator (gpointer data, TrTask *task, GError **error)
{
  RunCtx *ctx = data;
  for (;;) {
    TrNext next = ctx->job->desc->next_task (ctx->job->state, task, error);
    if (next != TR_NEXT_TASK) {
      tr_progress_set_tasks (ctx->job->progress, ctx->produced - ctx->skipped, TRUE);
      return next;
    }
    guint64 seq = ++ctx->produced;
    if (ctx->done && tr_seq_set_contains (ctx->done, seq)) {
      ctx->skipped++;
      tr_task_reset (task);
      continue;
    }
    task->seq = seq;
    tr_progress_set_tasks (ctx->job->progress, ctx->produced - ctx->skipped, FALSE);
    return TR_NEXT_TASK;
  }
}

static void
run_on_result (const TrResult *r, gpointer data)
{
  RunCtx *ctx = data;
  const char *desc = NULL;
  gboolean cancelled = r->error && g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED);
  /* A job log row is an attempt: a task that no worker took (cancelled, too large to
   * send, no worker left to run it) has no start time or runtime to give, and no row;
   * --resume runs it, as it runs every task without a successful row. */
  gboolean attempted = r->worker != 0 && !cancelled;
  if (ctx->joblog && attempted && !tr_joblog_write (ctx->joblog, r, describe (ctx, r, &desc)) &&
      !ctx->joblog_failed) {
    ctx->joblog_failed = TRUE;
    say (ctx->job, "cannot write the job log %s: %s", ctx->joblog_path, g_strerror (errno));
  }
  if (!r->final) {
    g_autofree char *what = g_strdup_printf ("failed, attempt %u of %u; retrying", r->attempt,
                                             ctx->retries + 1);
    say_task (ctx, r, &desc, what, r->error->message);
    return;
  }
  tr_progress_task_done (ctx->job->progress, r->units, r->error != NULL);
  if (r->error) {
    if (!cancelled || ctx->opts->verbose)
      say_task (ctx, r, &desc, "failed", r->error->message);
    if (!cancelled && ctx->stop_on_failure && !ctx->job->stop_reason)
      tr_job_stop (ctx->job, "a task failed and on_failure = stop: no new tasks are started");
  } else if (ctx->opts->verbose) {
    g_autofree char *what = g_strdup_printf ("done by worker %u (pid %d) in %.3f s", r->worker,
                                             (int) r->worker_pid, r->seconds);
    say_task (ctx, r, &desc, what, NULL);
  }
  if (ctx->job->desc->result)
    ctx->job->desc->result (ctx->job->state, r);
  /* no progress tick here: the pool calls run_tick after each batch of results, and a
   * clock read per task is what its stream loop avoids */
}

static void
run_tick (gpointer data)
{
  RunCtx *ctx = data;
  tr_progress_tick (ctx->job->progress);
}

static gboolean
parse_batch (const char *text, guint *batch)
{
  if (g_strcmp0 (text, "auto") == 0) {
    *batch = 0;
    return TRUE;
  }
  guint64 n;
  if (!g_ascii_string_to_unsigned (text, 10, 1, 65536, &n, NULL))
    return FALSE;
  *batch = (guint) n;
  return TRUE;
}

/* Where a [taskrun] key was set: "-s taskrun.KEY=..." or "FILE:LINE". */
static char *
where (const TrJobFile *jf, GPtrArray *overrides, const char *key)
{
  const char *ov = tr_overrides_find (overrides, "taskrun", key);
  if (ov)
    return g_strdup_printf ("-s %s", ov);
  guint line = 0;
  if (tr_jobfile_lookup (jf, "taskrun", key, &line))
    return g_strdup_printf ("%s:%u", tr_jobfile_get_path (jf), line);
  return g_strdup (tr_jobfile_get_path (jf));
}

/* backend: where the workers run.  Unset, it follows how taskrun was started: under mpirun
 * or srun with several ranks, rank 0 runs the job and the other ranks are its workers. */
static gboolean
choose_backend (const TrJobFile *jf, GPtrArray *overrides, const TrConfig *core,
                gboolean *use_mpi)
{
  const TrMpiSession *mpi = tr_mpi_session ();
  gboolean want_mpi = tr_config_is_set (core, "backend") ? strcmp (tr_config_get_string (core, "backend"), "mpi") == 0
                          : mpi != NULL;
  g_autofree char *at = where (jf, overrides, "backend");
  if (want_mpi && !mpi) {
#ifdef TR_HAVE_MPI
    g_printerr ("taskrun: %s: [taskrun] backend 'mpi': taskrun was not started as several MPI "
                "ranks; start it with mpirun -n N (or srun -n N): rank 0 runs the job, the "
                "other N - 1 ranks are its workers\n", at);
#else
    g_printerr ("taskrun: %s: [taskrun] backend 'mpi': this taskrun was built without MPI "
                "support\n", at);
#endif
    return FALSE;
  }
  if (!want_mpi && mpi) {
    g_printerr ("taskrun: %s: [taskrun] backend 'local', but taskrun was started as %d MPI "
                "ranks; leave backend unset (or mpi) to use them, or start taskrun without "
                "mpirun\n", at, mpi->size);
    return FALSE;
  }
  *use_mpi = want_mpi;
  return TRUE;
}

static void
print_dry_run (TrJob *job, const TrConfig *core, const TrConfig *pcfg, const char *plugin_path)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_string_append_printf (out, "; plugin file: %s\n", plugin_path);
  tr_config_print (core, out);
  g_string_append (out, "\n");
  tr_config_print (pcfg, out);
  g_string_append (out, "\n; first tasks:\n");
  TrTask task;
  tr_task_init (&task);
  guint shown = 0;
  for (; shown < 5; shown++) {
    tr_task_reset (&task);
    g_autoptr (GError) e = NULL;
    TrNext n = job->desc->next_task (job->state, &task, &e);
    if (n == TR_NEXT_ERROR) {
      g_string_append_printf (out, "; the generator failed: %s\n", e ? e->message : "?");
      break;
    }
    if (n == TR_NEXT_END)
      break;
    if (!task.description->len && job->desc->describe)
      job->desc->describe (job->state, task.payload.data, task.payload.len, task.description);
    g_autofree char *shown_desc = tr_text_escape (task.description->str);
    g_string_append_printf (out, ";   %u: %s\n", shown + 1, shown_desc);
  }
  if (shown == 0)
    g_string_append (out, ";   (none)\n");
  tr_task_clear (&task);
  tr_stdout_write (out->str, out->len);
}

int
tr_run (TrRunOptions *opts)
{
  if (!opts->started_us)
    opts->started_us = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TrJobFile) jf = tr_jobfile_load (opts->job_file, &error);
  if (!jf) {
    g_printerr ("taskrun: %s\n", error->message);
    return TR_EXIT_CANNOT_START;
  }

  /* [taskrun]; a job file without one but with a near miss ([TaskRun], [task-run]) is
   * told about the near miss rather than about a missing section */
  if (!tr_jobfile_lookup_section (jf, "taskrun")) {
    const char *only[] = { "taskrun", NULL };
    if (!tr_jobfile_check_near_sections (jf, only, &error)) {
      g_printerr ("taskrun: %s\n", error->message);
      return TR_EXIT_CANNOT_START;
    }
  }
  g_autoptr (TrConfig) core = tr_config_new (core_options, "taskrun");
  if (!tr_jobfile_apply_section (jf, "taskrun", core, &error) ||
      !tr_overrides_apply (opts->overrides, "taskrun", core, &error) ||
      !tr_jobfile_check_required (jf, "taskrun", core, &error)) {
    g_printerr ("taskrun: %s\n", error->message);
    return TR_EXIT_CANNOT_START;
  }
  /* -j is the last word on workers, and is read by the same rule as the key */
  if (opts->workers && !tr_config_set (core, "workers", opts->workers, NULL, &error)) {
    g_printerr ("taskrun: -j %s: [taskrun] %s\n", opts->workers, error->message);
    return TR_EXIT_CANNOT_START;
  }
  guint batch = 0;
  if (!parse_batch (tr_config_get_string (core, "batch"), &batch)) {
    g_autofree char *at = where (jf, opts->overrides, "batch");
    g_printerr ("taskrun: %s: [taskrun] string 'batch': '%s' is neither auto nor a number from 1 "
                "to 65536\n", at, tr_config_get_string (core, "batch"));
    return TR_EXIT_CANNOT_START;
  }
  gboolean use_mpi = FALSE;
  if (!choose_backend (jf, opts->overrides, core, &use_mpi))
    return TR_EXIT_CANNOT_START;

  /* The plugin: a path in the job file is relative to the job file's folder, one given
   * with -s to the current directory. */
  const char *plugin_name = tr_config_get_string (core, "plugin");
  guint plugin_line = 0;
  const char *in_file = tr_jobfile_lookup (jf, "taskrun", "plugin", &plugin_line);
  gboolean from_file = in_file && !tr_overrides_find (opts->overrides, "taskrun", "plugin");
  g_autoptr (TrPlugin) plugin =
      tr_plugin_load (plugin_name, from_file ? tr_jobfile_get_dir (jf) : NULL, &error);
  if (!plugin) {
    if (from_file)
      g_printerr ("taskrun: %s:%u: [taskrun] plugin: %s\n", tr_jobfile_get_path (jf), plugin_line,
                  error->message);
    else
      g_printerr ("taskrun: -s taskrun.plugin: %s\n", error->message);
    return TR_EXIT_CANNOT_START;
  }
  const TrPluginDesc *desc = tr_plugin_get_desc (plugin);

  const char *known[] = { "taskrun", desc->name, NULL };
  g_autoptr (TrConfig) pcfg = tr_config_new (desc->options, desc->name);
  if (!tr_jobfile_check_sections (jf, known, &error) ||
      !tr_overrides_check_sections (opts->overrides, known, &error) ||
      !tr_jobfile_apply_section (jf, desc->name, pcfg, &error) ||
      !tr_overrides_apply (opts->overrides, desc->name, pcfg, &error) ||
      !tr_jobfile_check_required (jf, desc->name, pcfg, &error)) {
    g_printerr ("taskrun: %s\n", error->message);
    return TR_EXIT_CANNOT_START;
  }

  TrJob job = { .opts = opts, .desc = desc };
  job.progress = tr_progress_new (opts->dry_run ? TR_PROGRESS_NEVER : opts->progress, desc->unit_name);
  job.workers = tr_config_is_set (core, "workers") ? (guint) tr_config_get_int (core, "workers")
                                                   : g_get_num_processors ();
  if (use_mpi) {
    /* one worker per rank but rank 0; a pool size that says otherwise is a mistake */
    guint ranks = (guint) tr_mpi_session ()->size;
    if (tr_config_is_set (core, "workers") && job.workers != ranks - 1) {
      g_autofree char *at = opts->workers ? g_strdup_printf ("-j %s", opts->workers)
                                          : where (jf, opts->overrides, "workers");
      g_printerr ("taskrun: %s: [taskrun] workers = %u, but with backend 'mpi' the workers are "
                  "the %u ranks after rank 0 (mpirun -n %u); drop workers, or make it %u\n",
                  at, job.workers, ranks - 1, ranks, ranks - 1);
      tr_progress_free (job.progress);
      return TR_EXIT_CANNOT_START;
    }
    job.workers = ranks - 1;
    tr_pool_use_link_class (tr_mpi_session ()->module->link_class);
  }
  if (desc->configure && !desc->configure (&job, pcfg, &job.state, &error)) {
    g_printerr ("taskrun: %s: [%s] the plugin rejected the configuration: %s\n",
                tr_jobfile_get_path (jf), desc->name,
                error ? error->message : "(no reason given)");
    tr_progress_free (job.progress);
    return TR_EXIT_CANNOT_START;
  }

  int status = TR_EXIT_OK;
  g_autoptr (GString) summary = g_string_new (NULL);
  RunCtx ctx = {
    .job = &job, .opts = opts, .described = g_string_new (NULL),
    .retries = (guint) tr_config_get_int (core, "retries"),
    .stop_on_failure = strcmp (tr_config_get_string (core, "on_failure"), "stop") == 0,
  };
  g_autofree char *joblog_path = opts->joblog ? g_canonicalize_filename (opts->joblog, NULL)
                                              : g_strdup (tr_config_get_string (core, "joblog"));
  g_autofree char *identity = tr_joblog_identity (desc->name, tr_jobfile_get_path (jf));
  if (opts->dry_run) {
    g_autofree char *workers = g_strdup_printf ("%u", job.workers);
    tr_config_set (core, "workers", workers, NULL, NULL);
    if (use_mpi)
      tr_config_set (core, "backend", "mpi", NULL, NULL);
    print_dry_run (&job, core, pcfg, tr_plugin_get_path (plugin));
    goto done;
  }

  if (opts->resume) {
    if (!joblog_path) {
      g_printerr ("taskrun: --resume needs a job log: give --joblog FILE or joblog = in [taskrun]\n");
      status = TR_EXIT_CANNOT_START;
      goto done;
    }
    if (!(desc->flags & TR_PLUGIN_FLAG_DETERMINISTIC)) {
      g_printerr ("taskrun: --resume: plugin '%s' does not promise the same tasks in the same "
                  "order on every run, so a job log cannot tell which tasks are left\n",
                  desc->name);
      status = TR_EXIT_CANNOT_START;
      goto done;
    }
    ctx.done = tr_seq_set_new ();
    if (!tr_joblog_read_succeeded (joblog_path, identity, ctx.done, &error)) {
      g_printerr ("taskrun: --resume: %s\n", error->message);
      status = TR_EXIT_CANNOT_START;
      goto done;
    }
  }
  TrPoolOptions popts = {
    .workers = job.workers,
    .max_tasks_per_worker = (guint) tr_config_get_int (core, "max_tasks_per_worker"),
    .batch = batch,
    .task_timeout = tr_config_get_double (core, "task_timeout"),
    .retries = ctx.retries,
    .interrupted = &signal_count,
  };
  install_signals ();
  TrPool *pool = tr_pool_new (plugin, pcfg, &popts, &error);
  if (!pool) {
    g_printerr ("taskrun: %s\n", error->message);
    status = signal_count ? TR_EXIT_SIGNALLED (signal_first) : TR_EXIT_CANNOT_START;
    goto done;
  }
  /* The job log is opened (and, without --resume, emptied) only once the workers have
   * started: a job that cannot start leaves the last run's log as it was. */
  if (joblog_path) {
    ctx.joblog_path = joblog_path;
    ctx.joblog = tr_joblog_open (joblog_path, opts->resume, identity, &error);
    if (!ctx.joblog) {
      g_printerr ("taskrun: %s\n", error->message);
      status = TR_EXIT_CANNOT_START;
      tr_pool_terminate (pool);
      tr_pool_join (pool);
      tr_pool_free (pool);
      goto done;
    }
  }
  job.pool = pool;
  signal_pool = pool;
  if (signal_count)
    tr_pool_stop_feeding (pool);
  if (signal_count > 1)
    tr_pool_request_terminate (pool);

  TrStats stats = { 0 };
  tr_pool_set_tick (pool, run_tick, &ctx);
  gboolean gen_ok = tr_pool_stream (pool, run_generator, run_on_result, &ctx,
                                    tr_config_get_bool (core, "ordered"), &stats, &error);
  tr_progress_clear (job.progress);
  stats.skipped = ctx.skipped;
  stats.total += ctx.skipped;
  signal_pool = NULL;
  tr_pool_close (pool);
  tr_pool_join (pool);
  tr_pool_free (pool);
  job.pool = NULL;

  if (!gen_ok) {
    g_printerr ("taskrun: [%s] the task generator failed: %s\n", desc->name, error->message);
    g_clear_error (&error);
    status = TR_EXIT_FAILED;
  }
  if (stats.failed || stats.not_run || job.stop_reason)
    status = TR_EXIT_FAILED;

  if (desc->finish && !desc->finish (job.state, &stats, summary, &error)) {
    g_printerr ("taskrun: [%s] %s\n", desc->name, error ? error->message : "the job failed");
    g_clear_error (&error);
    status = TR_EXIT_FAILED;
  }
  if (!opts->quiet) {
    double rate = stats.seconds > 0 ? stats.succeeded / stats.seconds : 0;
    g_autofree char *skipped = stats.skipped ? g_strdup_printf (", %" G_GUINT64_FORMAT
                                                                " skipped (done in the job log)",
                                                                stats.skipped)
                                             : g_strdup ("");
    /* The run phase (first task handed out to last result) gives the rate; the whole
     * command's time, start-up and the plugin's finish included, is what a user waited. */
    double all = (g_get_monotonic_time () - opts->started_us) / 1e6;
    g_printerr ("taskrun: %" G_GUINT64_FORMAT " %s: %" G_GUINT64_FORMAT " succeeded, %"
                G_GUINT64_FORMAT " failed, %" G_GUINT64_FORMAT " not run%s; %u %s (%u %s ran "
                "tasks); %.*f s, %.1f tasks/s; %.*f s in all\n",
                stats.total, g_dngettext (NULL, "task", "tasks", stats.total), stats.succeeded,
                stats.failed, stats.not_run, skipped, stats.workers,
                g_dngettext (NULL, "worker", "workers", stats.workers), stats.distinct_pids,
                g_dngettext (NULL, "process", "processes", stats.distinct_pids),
                stats.seconds < 10 ? 4 : 1, stats.seconds, rate, all < 10 ? 4 : 1, all);
    if (summary->len) {
      g_auto (GStrv) lines = g_strsplit (summary->str, "\n", -1);
      for (int i = 0; lines[i]; i++)
        if (*lines[i])
          g_printerr ("taskrun: %s: %s\n", desc->name, lines[i]);
    }
  }
  if (signal_count)
    status = TR_EXIT_SIGNALLED (signal_first);

done:
  tr_progress_free (job.progress);
  tr_joblog_close (ctx.joblog);
  g_string_free (ctx.described, TRUE);
  tr_seq_set_free (ctx.done);
  if (desc->destroy)
    desc->destroy (job.state);
  g_free (job.stop_reason);
  return status;
}
