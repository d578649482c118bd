/* runner.c — one run of a job file, from reading it to the exit status.
 *
 * Owns: the steps of a job once it is resolved (the plugin's configure, --dry-run, the
 * job log and --resume, the pool's start, the stream of tasks, the plugin's finish, the
 * summary, the exit status), the TrJob object the plugin's parent hooks talk to, the
 * per-task lines of -v and failures, and the first and second SIGINT/SIGTERM/SIGHUP.
 * Does not own: reading the job file into a resolved job (jobspec.c), the backend's rules
 * (backend.c), the pool (pool/), stdout's failures (stdout.c).
 */
#include "config.h"
#include "runner.h"
#include "link.h"
#include "mpi-backend.h"
#include "joblog.h"
#include "watch.h"
#include "jobspec.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

struct TrJob {
  TrRunOptions *opts;
  const TrPluginDesc *desc;
  gpointer state;
  guint workers;
  char *stop_reason;
  TrPool *pool;
  TrProgress *progress;
};

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

gboolean
tr_job_write (TrJob *job, int fd, const void *data, gsize len)
{
  tr_progress_clear (job->progress);
  tr_progress_wrote (job->progress, fd, data, len);
  /* whole, before whatever comes next on the other stream */
  return tr_std_write_bytes (fd, data, len);
}

gboolean
tr_job_write_file (TrJob *job, int fd, int file, const char *what)
{
  tr_progress_clear (job->progress);
  int read_errno = 0;
  if (tr_std_write_file (fd, file, &read_errno)) {
    struct stat st;
    char last;
    if (fstat (file, &st) == 0 && st.st_size > 0 && pread (file, &last, 1, st.st_size - 1) == 1)
      tr_progress_wrote (job->progress, fd, &last, 1);
    return TRUE;
  }
  if (read_errno)
    tr_job_message (job, "cannot read %s: %s", what, g_strerror (read_errno));
  return FALSE;
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
  TrWatchFiles watch_files;
  TrWatch *watch;       /* the trace, the results file, the insights */
  const char *result_desc; /* describe()'s answer for the result being handled */
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

/* describe() as the watch asks for it: once per result, however many ask */
static const char *
describe_for_watch (gpointer data, const TrResult *r)
{
  RunCtx *ctx = data;
  return describe (ctx, r, &ctx->result_desc);
}

#define MESSAGE_DESCRIPTION_MAX 1024

/* "task N (DESCRIPTION) WHAT[: MESSAGE]" on stderr.  The description and the message are
 * the plugin's text, escaped (tr_text_escape) so that each task stays one line. */
static void
say_task (RunCtx *ctx, const TrResult *r, const char **desc, const char *what,
          const char *message)
{
  g_autofree char *d = tr_description_shown (
      describe (ctx, r, desc), ctx->job->desc->flags & TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS);
  g_autofree char *m = message ? tr_text_escape (message) : NULL;
  /* a message is read by a person: a description of a MiB (a command with a long input)
   * is cut, saying how long it was; the job log keeps it whole */
  gsize d_len = strlen (d);
  if (d_len > MESSAGE_DESCRIPTION_MAX) {
    const char *cut = g_utf8_find_prev_char (d, d + MESSAGE_DESCRIPTION_MAX);
    g_autofree char *whole = g_steal_pointer (&d);
    d = g_strdup_printf ("%.*s... (%" G_GSIZE_FORMAT " bytes)",
                         (int) ((cut ? cut : whole + MESSAGE_DESCRIPTION_MAX) - whole), whole, d_len);
  }
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
      tr_watch_generator_ended (ctx->watch);
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
run_on_result (const TrResult *r_in, gpointer data)
{
  RunCtx *ctx = data;
  const char *desc = NULL;
  /* a plugin that runs commands says their status in its error code */
  TrResult with_status;
  const TrResult *r = r_in;
  if ((ctx->job->desc->flags & TR_PLUGIN_FLAG_STATUS_IN_CODE) && r->error &&
      r->error->domain != TR_TASK_ERROR && r->error_code > 0) {
    with_status = *r;
    with_status.exit_value = r->error_code < 256 ? r->error_code : 0;
    with_status.signal = r->error_code >= 256 ? r->error_code - 256 : 0;
    r = &with_status;
  }
  gboolean cancelled = r->error && g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED);
  /* A job log row is an attempt: a task that no worker took (cancelled, too large to
   * send, no worker left to run it) has no start time or runtime to give, and no row;
   * --resume runs it, as it runs every task without a successful row. */
  gboolean attempted = r->worker != 0 && !cancelled;
  if (attempted) {
    ctx->result_desc = desc;
    tr_watch_attempt (ctx->watch, r, describe_for_watch, ctx);
    desc = ctx->result_desc;
  }
  if (ctx->joblog && attempted && !tr_joblog_write (ctx->joblog, r, describe (ctx, r, &desc),
                                               ctx->job->desc->flags &
                                                   TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS) &&
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
  /* a task a stop kept from running is "not run", not a failure, as in the summary */
  tr_progress_task_done (ctx->job->progress, r->units, r->error != NULL && !cancelled);
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

/* What the workers write on their stdout and stderr, in whole lines (pool/output.c), goes out
 * the way taskrun's own lines do: the progress line erased first, stdout's failures seen. */
static void
run_output (int fd, const char *text, gsize len, gpointer data)
{
  RunCtx *ctx = data;
  tr_progress_clear (ctx->job->progress);
  if (fd == 1)
    tr_stdout_write (text, len);
  else if (fwrite (text, 1, len, stderr) != len) {
    /* nothing to do about a closed stderr */
  }
}

static void
run_tick (gpointer data)
{
  RunCtx *ctx = data;
  tr_progress_tick (ctx->job->progress);
  tr_watch_tick (ctx->watch);
}

/* A job that cannot start says why on one line and runs nothing. */
static int
cannot_start (const GError *error)
{
  g_printerr ("taskrun: %s\n", error->message);
  return TR_EXIT_CANNOT_START;
}

/* --dry-run: the resolved configuration (workers and backend as they will be) and the
 * first five task descriptions. */
static void
print_dry_run (TrJob *job, const TrJobSpec *spec)
{
  g_autofree char *workers = g_strdup_printf ("%u", job->workers);
  tr_config_set (spec->core, "workers", workers, NULL, NULL);
  if (spec->use_mpi)
    tr_config_set (spec->core, "backend", "mpi", NULL, NULL);
  g_autoptr (GString) out = g_string_new (NULL);
  g_string_append_printf (out, "; plugin file: %s\n", tr_plugin_get_path (spec->plugin));
  tr_config_print (spec->core, out);
  g_string_append (out, "\n");
  tr_config_print (spec->plugin_config, out);
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
    g_autofree char *shown_desc = tr_description_shown (
        task.description->str, job->desc->flags & TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS);
    g_string_append_printf (out, ";   %u: %s\n", shown + 1, shown_desc);
  }
  if (shown == 0)
    g_string_append (out, ";   (none)\n");
  tr_task_clear (&task);
  tr_stdout_write (out->str, out->len);
}

/* The plugin's configure hook: its own checks of its options, before anything runs. */
static gboolean
configure_plugin (TrJob *job, const TrJobSpec *spec, const TrRunOptions *opts, GError **error)
{
  const TrPluginDesc *desc = spec->desc;
  g_autoptr (GError) e = NULL;
  if (!desc->configure || desc->configure (job, spec->plugin_config, &job->state, &e))
    return TRUE;
  const char *message = e ? e->message : "(no reason given)";
  /* a message that starts with one of the plugin's keys ("command: ...") is about that
   * key: it is reported where the key was set, the file's line or the -s; a job given
   * as -e has no file to point into */
  g_autofree char *at = NULL;
  const char *colon = strstr (message, ": ");
  for (const TrOption *o = desc->options; colon && !opts->job_text && o && o->name; o++)
    if (strlen (o->name) == (gsize) (colon - message) &&
        strncmp (message, o->name, (gsize) (colon - message)) == 0)
      at = tr_job_spec_where (spec->file, opts->overrides, desc->name, o->name);
  g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_PLUGIN,
               "%s: [%s] the plugin rejected the configuration: %s",
               at ? at : tr_jobfile_get_path (spec->file), desc->name, message);
  return FALSE;
}

/* --resume: the tasks the job log says are done, into ctx->done. */
static gboolean
read_resume (RunCtx *ctx, const TrJobSpec *spec, const char *identity, GError **error)
{
  if (!ctx->joblog_path) {
    g_set_error_literal (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_MISSING,
                         "--resume needs a job log: give --joblog FILE or joblog = in [taskrun]");
    return FALSE;
  }
  if (!(spec->desc->flags & TR_PLUGIN_FLAG_DETERMINISTIC)) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_UNSUPPORTED,
                 "--resume: plugin '%s' does not promise the same tasks in the same order on "
                 "every run, so a job log cannot tell which tasks are left", spec->desc->name);
    return FALSE;
  }
  ctx->done = tr_seq_set_new ();
  if (!tr_joblog_read_succeeded (ctx->joblog_path, identity, ctx->done, error)) {
    g_prefix_error (error, "--resume: ");
    return FALSE;
  }
  return TRUE;
}

/* The workers, then the job log: a job that cannot start leaves the last run's log as it
 * was (the log is opened, and without --resume emptied, only once the workers started).
 * NULL with *status set when the job cannot start. */
static TrPool *
start_pool (RunCtx *ctx, const TrJobSpec *spec, const char *identity, int *status)
{
  g_autoptr (GError) error = NULL;
  const TrConfig *core = spec->core;
  TrPoolOptions popts = {
    .workers = ctx->job->workers,
    .max_tasks_per_worker = (guint) tr_config_get_int (core, "max_tasks_per_worker"),
    .batch = spec->batch,
    .task_timeout = tr_config_get_double (core, "task_timeout"),
    .retries = ctx->retries,
    .interrupted = &signal_count,
  };
  const TrLinkClass *link_class =
      spec->use_mpi ? tr_mpi_session ()->module->link_class : &tr_link_local;
  install_signals ();
  TrPool *pool = tr_pool_new_on_link (link_class, spec->plugin, spec->plugin_config, &popts, &error);
  if (!pool) {
    cannot_start (error);
    *status = signal_count ? TR_EXIT_SIGNALLED (signal_first) : TR_EXIT_CANNOT_START;
    return NULL;
  }
  if (ctx->joblog_path)
    ctx->joblog = tr_joblog_open (ctx->joblog_path, ctx->opts->resume, identity, &error);
  TrTraceJob trace_job = {
    .job_file = tr_jobfile_get_path (spec->file), .plugin = spec->desc->name,
    .backend = spec->use_mpi ? "mpi" : "local", .workers = ctx->job->workers,
    .started_us = ctx->opts->started_us,
  };
  if ((ctx->joblog_path && !ctx->joblog) ||
      !(ctx->watch = tr_watch_open (&ctx->watch_files, &trace_job, &error))) {
    *status = cannot_start (error);
    tr_pool_terminate (pool);
    tr_pool_join (pool);
    tr_pool_free (pool);
    return NULL;
  }
  tr_watch_attach (ctx->watch, pool);
  ctx->job->pool = pool;
  signal_pool = pool;
  /* a signal that came while the workers started */
  if (signal_count)
    tr_pool_stop_feeding (pool);
  if (signal_count > 1)
    tr_pool_request_terminate (pool);
  return pool;
}

/* The run itself: the generator streams tasks to the pool until it ends, a stop or an
 * interrupt; then the pool is closed.  Returns the exit status so far. */
static int
run_tasks (RunCtx *ctx, const TrJobSpec *spec, TrPool *pool, TrStats *stats)
{
  g_autoptr (GError) error = NULL;
  int status = TR_EXIT_OK;
  tr_pool_set_tick (pool, run_tick, ctx);
  tr_pool_set_output (pool, run_output, ctx);
  gboolean gen_ok = tr_pool_stream (pool, run_generator, run_on_result, ctx,
                                    tr_config_get_bool (spec->core, "ordered"), stats, &error);
  tr_progress_clear (ctx->job->progress);
  stats->skipped = ctx->skipped;
  stats->total += ctx->skipped;
  signal_pool = NULL;
  tr_pool_close (pool);
  tr_pool_join (pool);
  tr_pool_free (pool);
  ctx->job->pool = NULL;
  if (!tr_watch_end (ctx->watch, stats,
                     ctx->job->desc->flags & TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS))
    status = TR_EXIT_FAILED;
  if (!gen_ok) {
    g_printerr ("taskrun: [%s] the task generator failed: %s\n", spec->desc->name, error->message);
    status = TR_EXIT_FAILED;
  }
  if (stats->failed || stats->not_run || ctx->job->stop_reason)
    status = TR_EXIT_FAILED;
  return status;
}

/* A run this long, or one with -v, has its insights in its summary. */
#define INSIGHTS_AFTER_SECONDS 5.0

/* The summary on stderr: the counts, the pool, the times, the insights, then the
 * plugin's lines. */
static void
print_summary (const TrJob *job, const TrStats *stats, const TrInsights *insights,
               const GString *plugin_lines)
{
  double rate = stats->seconds > 0 ? stats->succeeded / stats->seconds : 0;
  g_autofree char *skipped = stats->skipped ? g_strdup_printf (", %" G_GUINT64_FORMAT
                                                               " skipped (done in the job log)",
                                                               stats->skipped)
                                            : g_strdup ("");
  /* The run phase (first task handed out to last result) gives the rate; the whole
   * command's time, start-up and the plugin's finish included, is what a user waited. */
  double all = (g_get_monotonic_time () - job->opts->started_us) / 1e6;
  g_autofree char *of = stats->workers_started > stats->workers
                           ? g_strdup_printf (" of %u", stats->workers_started)
                           : g_strdup ("");
  g_printerr ("taskrun: %" G_GUINT64_FORMAT " %s: %" G_GUINT64_FORMAT " succeeded, %"
              G_GUINT64_FORMAT " failed, %" G_GUINT64_FORMAT " not run%s; %u%s %s (%u %s ran "
              "tasks); %.*f s, %.1f tasks/s; %.*f s in all\n",
              stats->total, g_dngettext (NULL, "task", "tasks", stats->total), stats->succeeded,
              stats->failed, stats->not_run, skipped, stats->workers, of,
              g_dngettext (NULL, "worker", "workers", stats->workers_started > stats->workers
                                                         ? stats->workers_started
                                                         : stats->workers), stats->distinct_pids,
              g_dngettext (NULL, "process", "processes", stats->distinct_pids),
              stats->seconds < 10 ? 4 : 1, stats->seconds, rate, all < 10 ? 4 : 1, all);
  if (insights && (job->opts->verbose || stats->seconds >= INSIGHTS_AFTER_SECONDS)) {
    g_autoptr (GString) said = g_string_new (NULL);
    tr_insights_print (insights, job->desc->flags & TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS, said);
    g_auto (GStrv) insight_lines = g_strsplit (said->str, "\n", -1);
    for (int i = 0; insight_lines[i]; i++)
      if (*insight_lines[i])
        g_printerr ("taskrun: %s\n", insight_lines[i]);
  }
  g_auto (GStrv) lines = g_strsplit (plugin_lines->str, "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (*lines[i])
      g_printerr ("taskrun: %s: %s\n", job->desc->name, lines[i]);
}

/* Where a file the run writes about itself goes (job log, trace, results, report): the
 * command line's (relative to the current folder), else the [taskrun] key's (relative to
 * the job file's), else none. */
static char *
watch_path (const char *given, const TrJobSpec *spec, const char *key)
{
  if (given)
    return g_canonicalize_filename (given, NULL);
  return g_strdup (tr_config_get_string (spec->core, key));
}

/* One job: resolve it, let the plugin check it, then either describe it (--dry-run) or
 * run it, finish it and sum it up. */
int
tr_run (TrRunOptions *opts)
{
  if (!opts->started_us)
    opts->started_us = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TrJobSpec) spec = tr_job_spec_resolve (opts, &error);
  if (!spec)
    return cannot_start (error);
  const TrPluginDesc *desc = spec->desc;
  TrJob job = { .opts = opts, .desc = desc, .workers = spec->workers };
  job.progress = tr_progress_new (opts->dry_run ? TR_PROGRESS_NEVER : opts->progress, desc->unit_name);
  if (!configure_plugin (&job, spec, opts, &error)) {
    tr_progress_free (job.progress);
    return cannot_start (error);
  }

  int status = TR_EXIT_OK;
  g_autofree char *joblog_path = watch_path (opts->joblog, spec, "joblog");
  g_autofree char *identity = tr_joblog_identity (desc->name, tr_jobfile_get_path (spec->file));
  if (opts->job_text) {
    /* a job given on the command line (-e) is its options: its command and inputs, so
     * that --resume takes no other command's log for its own */
    g_autoptr (GString) options = g_string_new (NULL);
    tr_config_print (spec->plugin_config, options);
    g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, options->str,
                                                          (gssize) options->len);
    g_autofree char *path_part = g_steal_pointer (&identity);
    identity = g_strdup_printf ("%s options:%.16s", path_part, sum);
  }
  g_autofree char *trace_path = watch_path (opts->trace, spec, "trace");
  g_autofree char *results_path = watch_path (opts->results, spec, "results");
  g_autofree char *report_path = watch_path (opts->report, spec, "report");
  RunCtx ctx = {
    .job = &job, .opts = opts, .described = g_string_new (NULL), .joblog_path = joblog_path,
    .watch_files = { .trace = trace_path, .results = results_path, .report = report_path,
                     .append = opts->resume,
                     .no_output = (desc->flags & TR_PLUGIN_FLAG_STATUS_IN_CODE) != 0 },
    .retries = (guint) tr_config_get_int (spec->core, "retries"),
    .stop_on_failure = strcmp (tr_config_get_string (spec->core, "on_failure"), "stop") == 0,
  };
  TrPool *pool = NULL;
  if (opts->dry_run) {
    /* a dry run checks what the run would: the job log too, written by nothing */
    if ((joblog_path && !tr_joblog_check (joblog_path, &error)) ||
        !tr_watch_check (&ctx.watch_files, joblog_path, &error))
      status = cannot_start (error);
    else if (opts->resume && !read_resume (&ctx, spec, identity, &error))
      status = cannot_start (error);
    else
      print_dry_run (&job, spec);
  } else if (opts->resume && !read_resume (&ctx, spec, identity, &error)) {
    status = cannot_start (error);
  } else if (!tr_watch_check (&ctx.watch_files, joblog_path, &error)) {
    /* before anything is opened: a job that cannot start empties no earlier file */
    status = cannot_start (error);
  } else if ((pool = start_pool (&ctx, spec, identity, &status))) {
    TrStats stats = { 0 };
    status = run_tasks (&ctx, spec, pool, &stats);
    g_autoptr (GString) plugin_lines = g_string_new (NULL);
    g_clear_error (&error);
    if (desc->finish && !desc->finish (job.state, &stats, plugin_lines, &error)) {
      g_printerr ("taskrun: [%s] %s\n", desc->name, error ? error->message : "the job failed");
      status = TR_EXIT_FAILED;
    }
    if (!opts->quiet)
      print_summary (&job, &stats, tr_watch_insights (ctx.watch), plugin_lines);
    if (signal_count)
      status = TR_EXIT_SIGNALLED (signal_first);
  }

  tr_progress_free (job.progress);
  tr_joblog_close (ctx.joblog);
  tr_watch_free (ctx.watch);
  g_string_free (ctx.described, TRUE);
  tr_seq_set_free (ctx.done);
  if (desc->destroy)
    desc->destroy (job.state);
  g_free (job.stop_reason);
  return status;
}
