/* trace.h — a run as a Chrome trace (trace.c), for Perfetto, chrome://tracing and the
 * report. */
#ifndef TASKRUN_TRACE_H
#define TASKRUN_TRACE_H

#include "internal.h"

/* The lanes a trace draws: the parent's two, then one per worker slot (1 .. workers). */
#define TR_TRACE_LANE_GENERATOR 0
#define TR_TRACE_LANE_RESULTS (TR_WORKERS_MAX + 1)

typedef enum {
  TR_SPAN_OK,
  TR_SPAN_FAILED,  /* failed for good */
  TR_SPAN_RETRIED, /* failed, and runs again */
  TR_SPAN_TIMEOUT,
  TR_SPAN_DIED,    /* its worker died holding it */
  TR_SPAN_PARENT,  /* the parent's generator or result phase */
} TrSpanKind;

/* What a trace says of its job, in its first event. */
typedef struct {
  const char *job_file;
  const char *plugin;
  const char *backend; /* "local", "mpi" */
  guint workers;
  gint64 started_us; /* g_get_monotonic_time () when the command started: the trace's zero */
} TrTraceJob;

typedef struct TrTrace TrTrace; /* main thread only */

/* Every span the trace writes (a task, a group of tiny ones, a parent phase), in
 * microseconds since the trace began, also when it writes no file: the report is drawn
 * from these.  `busy_us`: of `dur_us`, the time its tasks or phases took. */
typedef void (*TrSpanFunc) (guint lane, double start_us, double dur_us, double busy_us,
                            guint64 tasks, TrSpanKind kind, gpointer data);

/* A trace written to `path` (truncated), or with `path` NULL to no file, its spans only
 * given to `span`.  NULL and *error when the file cannot be opened. */
TrTrace *tr_trace_open (const char *path, const TrTraceJob *job, TrSpanFunc span,
                        gpointer span_data, GError **error);
/* The task's description, made only when an event needs it. */
typedef const char *(*TrDescribeFunc) (gpointer data, const TrResult *r);
/* One attempt of a task (an attempt no worker ran is not drawn). */
void tr_trace_attempt (TrTrace *t, const TrResult *r, TrDescribeFunc describe, gpointer data);
void tr_trace_worker_event (TrTrace *t, const TrPoolEvent *ev);
void tr_trace_phase (TrTrace *t, TrPoolPhase phase, gint64 start_us, gint64 end_us, guint count);
void tr_trace_generator_ended (TrTrace *t);
/* Writes what is buffered when it is due (TRACE_FLUSH_US since the last write). */
void tr_trace_flush (TrTrace *t);
/* Ends the trace with the run's counts and closes its file.  FALSE and *error when a
 * write failed (the first failure is the one named).  Frees the trace either way. */
gboolean tr_trace_close (TrTrace *t, const TrStats *stats, GError **error);

#endif
