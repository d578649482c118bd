/* insights.h — what a run's timing says, for the summary and the report (insights.c). */
#ifndef TASKRUN_INSIGHTS_H
#define TASKRUN_INSIGHTS_H

#include "internal.h"
#include "trace.h"

#define TR_INSIGHTS_SLOWEST 10
/* The duration histogram: bin i holds tasks of [2^(i-21), 2^(i-20)) seconds, bin 0 those
 * under a microsecond, the last those of 2^14 s and more. */
#define TR_INSIGHTS_BINS 36

/* One of the slowest tasks: its longest attempt (a task is listed once). */
typedef struct {
  guint64 seq;
  double seconds;
  guint worker;
  guint attempt;
  const char *outcome; /* "ok", "failed", "timed out", "worker died"; static */
  gboolean retried;    /* that attempt failed and the task ran again */
  char *description;
} TrSlowTask;

typedef struct TrInsights TrInsights; /* main thread only */

/* `histogram`: also count task durations (the report draws them). */
TrInsights *tr_insights_new (guint workers, gboolean histogram);
void tr_insights_free (TrInsights *in);
/* Every attempt a worker ran. */
void tr_insights_attempt (TrInsights *in, const TrResult *r, TrDescribeFunc describe,
                          gpointer data);
void tr_insights_generator_ended (TrInsights *in);
/* The run is over: its counts, and the CPU time this process took. */
void tr_insights_end (TrInsights *in, const TrStats *stats);

/* What tr_insights_end found. */
guint tr_insights_workers (const TrInsights *in);
double tr_insights_busy_share (const TrInsights *in, guint slot); /* 1 .. workers */
double tr_insights_parent_cpu_share (const TrInsights *in);       /* of one CPU */
double tr_insights_tail_seconds (const TrInsights *in);           /* < 0: unknown */
/* From the first worker done for good (its last attempt's end) to the last result: how
 * long the stragglers kept the others waiting.  < 0: unknown. */
double tr_insights_idle_end_seconds (const TrInsights *in);
double tr_insights_run_seconds (const TrInsights *in);
const TrSlowTask *tr_insights_slowest (const TrInsights *in, guint *n);
const guint64 *tr_insights_histogram (const TrInsights *in);
/* A duration as a person reads it: 840 us, 12.5 ms, 3.20 s; `micro` is the unit of the
 * first (" us" on a terminal, "&#xb5;s" in a page). */
void tr_duration_append (GString *out, double seconds, const char *micro);
/* The summary's lines: busy shares and the parent's CPU, the slowest three, the tail.
 * `quoted`: descriptions as the plugin shows them (TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS). */
void tr_insights_print (const TrInsights *in, gboolean quoted, GString *out);

#endif
