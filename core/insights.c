/* insights.c — what a run's timing says: how busy each worker was, how much CPU the
 * parent took, the slowest tasks, and the tail (from the moment the generator ended to
 * the last result), as mpire's worker insights and Dask's performance report give.
 *
 * Per attempt it adds a run time to its slot's sum and compares it with the shortest of
 * the slowest kept, a few nanoseconds (a description is made only for a task that joins
 * the slowest); the histogram, for the report, is one frexp more.
 *
 * Owns: the figures and the summary's lines that say them.
 * Does not own: the summary's counts (runner.c), the page (report.c).
 */
#include "insights.h"

#include <math.h>
#include <sys/resource.h>

struct TrInsights {
  guint workers;
  double *busy;            /* [slot]: seconds its workers spent in run */
  double *slot_end;        /* [slot]: the latest end of an attempt it ran, Unix seconds */
  TrSlowTask slowest[TR_INSIGHTS_SLOWEST];
  guint n_slowest;
  guint64 *histogram;      /* NULL: not kept */
  double generator_end;    /* Unix seconds; 0: not yet */
  double last_end;         /* the latest end of a final attempt, Unix seconds */
  double cpu_at_start;     /* this process's user + system seconds */
  double cpu_share, run_seconds;
};

static double
cpu_seconds (void)
{
  struct rusage ru;
  if (getrusage (RUSAGE_SELF, &ru) != 0)
    return 0;
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

TrInsights *
tr_insights_new (guint workers, gboolean histogram)
{
  TrInsights *in = g_new0 (TrInsights, 1);
  in->workers = workers;
  in->busy = g_new0 (double, workers + 1);
  in->slot_end = g_new0 (double, workers + 1);
  if (histogram)
    in->histogram = g_new0 (guint64, TR_INSIGHTS_BINS);
  in->cpu_at_start = cpu_seconds ();
  return in;
}

void
tr_insights_free (TrInsights *in)
{
  if (!in)
    return;
  for (guint i = 0; i < in->n_slowest; i++)
    g_free (in->slowest[i].description);
  g_free (in->busy);
  g_free (in->slot_end);
  g_free (in->histogram);
  g_free (in);
}

static const char *
outcome_of (const TrResult *r)
{
  if (!r->error)
    return "ok";
  if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_TIMEOUT))
    return "timed out";
  if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_WORKER_DIED))
    return "worker died";
  return "failed";
}

/* Keeps the attempt among the slowest if it is one, a task once (its longest attempt),
 * the list sorted longest first. */
static void
keep_if_slow (TrInsights *in, const TrResult *r, TrDescribeFunc describe, gpointer data)
{
  guint n = in->n_slowest;
  if (n == TR_INSIGHTS_SLOWEST && r->seconds <= in->slowest[n - 1].seconds)
    return;
  guint at = n;
  for (guint i = 0; i < n; i++)
    if (in->slowest[i].seq == r->seq) {
      if (in->slowest[i].seconds >= r->seconds)
        return;
      at = i; /* this task's shorter attempt makes room */
      break;
    }
  if (at == n && n == TR_INSIGHTS_SLOWEST)
    at = --n;
  g_free (in->slowest[at].description);
  if (at == n)
    n++;
  while (at > 0 && in->slowest[at - 1].seconds < r->seconds) {
    in->slowest[at] = in->slowest[at - 1];
    at--;
  }
  in->slowest[at] = (TrSlowTask) {
    .seq = r->seq, .seconds = r->seconds, .worker = r->worker, .attempt = r->attempt,
    .outcome = outcome_of (r), .retried = !r->final,
    .description = g_strdup (describe (data, r)),
  };
  in->n_slowest = n;
}

void
tr_insights_attempt (TrInsights *in, const TrResult *r, TrDescribeFunc describe, gpointer data)
{
  if (r->worker == 0 || r->worker > in->workers)
    return;
  in->busy[r->worker] += r->seconds;
  keep_if_slow (in, r, describe, data);
  double end = r->start_time + r->seconds;
  if (r->final && end > in->last_end)
    in->last_end = end;
  if (end > in->slot_end[r->worker])
    in->slot_end[r->worker] = end;
  if (in->histogram) {
    int exp = 0;
    guint bin = 0;
    if (r->seconds > 0) {
      frexp (r->seconds, &exp); /* seconds = m * 2^exp, m in [0.5, 1) */
      bin = (guint) CLAMP (exp + 20, 0, TR_INSIGHTS_BINS - 1);
    }
    in->histogram[bin]++;
  }
}

void
tr_insights_generator_ended (TrInsights *in)
{
  if (!in->generator_end)
    in->generator_end = g_get_real_time () / 1e6;
}

void
tr_insights_end (TrInsights *in, const TrStats *stats)
{
  in->run_seconds = stats->seconds;
  in->cpu_share = stats->seconds > 0 ? (cpu_seconds () - in->cpu_at_start) / stats->seconds : 0;
}

guint
tr_insights_workers (const TrInsights *in)
{
  return in->workers;
}

double
tr_insights_busy_share (const TrInsights *in, guint slot)
{
  if (slot == 0 || slot > in->workers || in->run_seconds <= 0)
    return 0;
  return MIN (1.0, in->busy[slot] / in->run_seconds);
}

double
tr_insights_parent_cpu_share (const TrInsights *in)
{
  return in->cpu_share;
}

double
tr_insights_tail_seconds (const TrInsights *in)
{
  if (!in->generator_end || !in->last_end)
    return -1;
  return MAX (0, in->last_end - in->generator_end);
}

double
tr_insights_idle_end_seconds (const TrInsights *in)
{
  double first_done = 0;
  for (guint s = 1; s <= in->workers; s++)
    if (in->slot_end[s] && (!first_done || in->slot_end[s] < first_done))
      first_done = in->slot_end[s];
  if (!first_done || !in->last_end)
    return -1;
  return MAX (0, in->last_end - first_done);
}

double
tr_insights_run_seconds (const TrInsights *in)
{
  return in->run_seconds;
}

const TrSlowTask *
tr_insights_slowest (const TrInsights *in, guint *n)
{
  *n = in->n_slowest;
  return in->slowest;
}

const guint64 *
tr_insights_histogram (const TrInsights *in)
{
  return in->histogram;
}

#define INSIGHTS_LIST_WORKERS 8 /* more than this many: the lowest, the mean, the highest */

void
tr_duration_append (GString *out, double seconds, const char *micro)
{
  if (seconds < 1e-3)
    g_string_append_printf (out, "%.0f%s", seconds * 1e6, micro);
  else if (seconds < 1)
    g_string_append_printf (out, "%.1f ms", seconds * 1e3);
  else
    g_string_append_printf (out, "%.2f s", seconds);
}

void
tr_insights_print (const TrInsights *in, gboolean quoted, GString *out)
{
  if (in->workers == 0)
    return;
  double sum = 0, lo = 2, hi = -1;
  guint lo_at = 1, hi_at = 1;
  for (guint s = 1; s <= in->workers; s++) {
    double b = tr_insights_busy_share (in, s);
    sum += b;
    if (b < lo)
      lo = b, lo_at = s;
    if (b > hi)
      hi = b, hi_at = s;
  }
  g_string_append (out, "workers busy: ");
  if (in->workers <= INSIGHTS_LIST_WORKERS) {
    for (guint s = 1; s <= in->workers; s++)
      g_string_append_printf (out, "%s%u %.1f%%", s > 1 ? ", " : "", s,
                              100 * tr_insights_busy_share (in, s));
    if (in->workers > 1)
      g_string_append_printf (out, " (mean %.1f%%)", 100 * sum / in->workers);
  } else {
    g_string_append_printf (out, "mean %.1f%%, lowest %.1f%% (worker %u), highest %.1f%% "
                            "(worker %u)", 100 * sum / in->workers, 100 * lo, lo_at, 100 * hi,
                            hi_at);
  }
  g_string_append_printf (out, "; taskrun itself used %.1f%% of a CPU\n", 100 * in->cpu_share);
  if (in->n_slowest) {
    g_string_append (out, "slowest tasks:");
    for (guint i = 0; i < MIN (3, in->n_slowest); i++) {
      const TrSlowTask *st = &in->slowest[i];
      g_autofree char *d = tr_description_shown (st->description, quoted);
      if (strlen (d) > 60) {
        const char *cut = g_utf8_find_prev_char (d, d + 60);
        d[cut ? cut - d : 60] = '\0';
        g_autofree char *whole = g_steal_pointer (&d);
        d = g_strconcat (whole, "...", NULL);
      }
      g_string_append_printf (out, "%s task %" G_GUINT64_FORMAT "%s%s%s ", i ? ";" : "",
                              st->seq, *d ? " (" : "", d, *d ? ")" : "");
      tr_duration_append (out, st->seconds, " us");
      if (strcmp (st->outcome, "ok") != 0 || st->attempt > 1) {
        g_string_append_printf (out, " (%s%s", st->outcome, st->retried ? ", run again" : "");
        if (st->attempt > 1)
          g_string_append_printf (out, ", attempt %u", st->attempt);
        g_string_append_c (out, ')');
      }
    }
    g_string_append_c (out, '\n');
  }
  double tail = tr_insights_tail_seconds (in), idle = tr_insights_idle_end_seconds (in);
  if (tail >= 0) {
    g_string_append (out, "tail: ");
    tr_duration_append (out, tail, " us");
    g_string_append_printf (out, " from the last task made to the last result (%.0f%% of the "
                            "run)", in->run_seconds > 0 ? 100 * MIN (1.0, tail / in->run_seconds)
                                                        : 0);
    if (idle >= 0 && in->workers > 1) {
      g_string_append (out, "; the first worker done waited ");
      tr_duration_append (out, idle, " us");
      g_string_append (out, " for the last result");
    }
    g_string_append_c (out, '\n');
  }
}
