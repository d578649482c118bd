/* watch.h — what a run records of itself beside its job log (watch.c). */
#ifndef TASKRUN_WATCH_H
#define TASKRUN_WATCH_H

#include "insights.h"
#include "trace.h"

/* The files asked for (NULL: not asked), absolute or relative to the current folder. */
typedef struct {
  const char *trace;   /* --trace, trace = */
  const char *results; /* --results, results = */
  const char *report;  /* --report, report = */
  gboolean append;     /* --resume: the results file is added to (the trace is a run's) */
  gboolean no_output;  /* the results carry no Output (the plugin runs commands: exec) */
} TrWatchFiles;

typedef struct TrWatch TrWatch; /* main thread only */

/* What opening the files would refuse, found without writing anything: before a run
 * starts (so that a job that cannot start leaves every earlier file as it was), and for
 * --dry-run.  Also refuses two of them, or one and the job log (`joblog`, may be NULL),
 * that name the same file. */
gboolean tr_watch_check (const TrWatchFiles *files, const char *joblog, GError **error);
/* Opens the files (emptied), their paths checked by tr_watch_check first; NULL and
 * *error when one cannot be. */
TrWatch *tr_watch_open (const TrWatchFiles *files, const TrTraceJob *job, GError **error);
/* Watches the pool's workers and, with a trace, its main thread's phases. */
void tr_watch_attach (TrWatch *w, TrPool *pool);
/* Every attempt of a task, as the runner's result hook sees it. */
void tr_watch_attempt (TrWatch *w, const TrResult *r, TrDescribeFunc describe, gpointer data);
void tr_watch_generator_ended (TrWatch *w);
/* From the pool's tick: writes what is due. */
void tr_watch_tick (TrWatch *w);
/* The run is over: ends the files.  FALSE, with a message on stderr for each file that
 * could not be written whole. */
gboolean tr_watch_end (TrWatch *w, const TrStats *stats, gboolean quoted);
const TrInsights *tr_watch_insights (const TrWatch *w);
void tr_watch_free (TrWatch *w);

#endif
