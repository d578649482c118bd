/* watch.c — what a run records of itself beside its job log: the trace (trace.c), the
 * results file (results.c), the insights of its summary (insights.c) and the report
 * (report.c, drawn from the trace's spans, so a report without --trace has a trace
 * that writes no file), fed from the runner's result hook and from the pool's events.
 *
 * Owns: which of them are on, feeding each, the hosts the workers run on (for the
 * results' Host), and saying which file could not be written.
 * Does not own: the formats (their files), the job log (joblog.c), the summary
 * (runner.c).
 */
#include "watch.h"
#include "logfile.h"
#include "report.h"
#include "results.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

struct TrWatch {
  TrTrace *trace;
  TrResultsFile *results;
  char *results_path;
  gboolean results_output;
  gboolean results_failed;
  TrInsights *insights;
  TrReport *report;
  char **hosts;   /* [slot]: where its worker runs (from its start event); NULL: here; for
                   * the results' Host and the report's lanes */
  guint workers;
};

/* Whether two paths name one file: the same name, or (both existing) the same inode,
 * through a symlink or a hard link. */
static gboolean
same_file (const char *a, const char *b)
{
  g_autofree char *ca = g_canonicalize_filename (a, NULL);
  g_autofree char *cb = g_canonicalize_filename (b, NULL);
  if (strcmp (ca, cb) == 0)
    return TRUE;
  struct stat sa, sb;
  return stat (a, &sa) == 0 && stat (b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

gboolean
tr_watch_check (const TrWatchFiles *files, const char *joblog, GError **error)
{
  const char *paths[] = { joblog, files->trace, files->results, files->report };
  const char *names[] = { "the job log", "the trace", "the results file", "the report" };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    for (guint j = i + 1; j < G_N_ELEMENTS (paths); j++)
      if (paths[i] && paths[j] && same_file (paths[i], paths[j])) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                     "%s and %s are the same file, %s: give each its own", names[i], names[j],
                     paths[j]);
        return FALSE;
      }
  return (!files->trace || tr_logfile_check (files->trace, "the trace", error)) &&
         (!files->results || tr_logfile_check (files->results, "the results file", error)) &&
         (!files->report || tr_report_check (files->report, error));
}

TrWatch *
tr_watch_open (const TrWatchFiles *files, const TrTraceJob *job, GError **error)
{
  TrWatch *w = g_new0 (TrWatch, 1);
  w->workers = job->workers;
  w->hosts = g_new0 (char *, job->workers + 2);
  w->insights = tr_insights_new (job->workers, files->report != NULL);
  if (files->report)
    w->report = tr_report_new (files->report, job);
  if ((files->trace || w->report) &&
      !(w->trace = tr_trace_open (files->trace, job, w->report ? tr_report_span : NULL, w->report,
                                  error))) {
    tr_watch_free (w);
    return NULL;
  }
  if (files->results && !(w->results = tr_results_open (files->results, files->append, error))) {
    tr_watch_free (w);
    return NULL;
  }
  w->results_path = g_strdup (files->results);
  w->results_output = !files->no_output;
  return w;
}

static void
on_event (const TrPoolEvent *ev, gpointer data)
{
  TrWatch *w = data;
  if (ev->kind == TR_POOL_EVENT_WORKER_READY && ev->slot <= w->workers) {
    g_free (w->hosts[ev->slot]);
    w->hosts[ev->slot] = g_strdup (ev->where);
  }
  if (w->trace)
    tr_trace_worker_event (w->trace, ev);
}

static void
on_phase (TrPoolPhase phase, gint64 start_us, gint64 end_us, guint count, gpointer data)
{
  TrWatch *w = data;
  tr_trace_phase (w->trace, phase, start_us, end_us, count);
}

void
tr_watch_attach (TrWatch *w, TrPool *pool)
{
  tr_pool_set_event_func (pool, on_event, w);
  if (w->trace)
    tr_pool_set_phase_func (pool, on_phase, w);
}

void
tr_watch_attempt (TrWatch *w, const TrResult *r, TrDescribeFunc describe, gpointer data)
{
  tr_insights_attempt (w->insights, r, describe, data);
  if (w->trace)
    tr_trace_attempt (w->trace, r, describe, data);
  if (w->results && r->final && !w->results_failed) {
    const char *host = r->worker <= w->workers && w->hosts[r->worker] ? w->hosts[r->worker] : ":";
    if (!tr_results_write (w->results, r, describe (data, r), host, w->results_output)) {
      w->results_failed = TRUE;
      g_printerr ("taskrun: cannot write the results file %s: %s\n", w->results_path,
                  g_strerror (errno));
    }
  }
}

void
tr_watch_generator_ended (TrWatch *w)
{
  tr_insights_generator_ended (w->insights);
  if (w->trace)
    tr_trace_generator_ended (w->trace);
}

void
tr_watch_tick (TrWatch *w)
{
  if (w->trace)
    tr_trace_flush (w->trace);
}

gboolean
tr_watch_end (TrWatch *w, const TrStats *stats, gboolean quoted)
{
  gboolean ok = !w->results_failed;
  tr_insights_end (w->insights, stats);
  g_autoptr (GError) error = NULL;
  if (w->trace && !tr_trace_close (g_steal_pointer (&w->trace), stats, &error)) {
    g_printerr ("taskrun: %s\n", error->message);
    g_clear_error (&error);
    ok = FALSE;
  }
  if (w->results && !tr_results_close (g_steal_pointer (&w->results), &error)) {
    g_printerr ("taskrun: %s\n", error->message);
    g_clear_error (&error);
    ok = FALSE;
  }
  if (w->report && !tr_report_write (w->report, w->insights, stats, quoted, w->hosts, &error)) {
    g_printerr ("taskrun: %s\n", error->message);
    ok = FALSE;
  }
  return ok;
}

const TrInsights *
tr_watch_insights (const TrWatch *w)
{
  return w->insights;
}

void
tr_watch_free (TrWatch *w)
{
  if (!w)
    return;
  if (w->trace) {
    TrStats none = { 0 };
    tr_trace_close (w->trace, &none, NULL);
  }
  tr_results_close (w->results, NULL);
  tr_report_free (w->report);
  tr_insights_free (w->insights);
  for (guint i = 0; i < w->workers + 2; i++)
    g_free (w->hosts[i]);
  g_free (w->hosts);
  g_free (w->results_path);
  g_free (w);
}
