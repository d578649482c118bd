/* report.h — a run as one self-contained web page (report.c). */
#ifndef TASKRUN_REPORT_H
#define TASKRUN_REPORT_H

#include "insights.h"
#include "trace.h"

typedef struct TrReport TrReport; /* main thread only */

/* What writing the page at `path` would refuse, found before the run (as the job log's
 * check): a folder where it cannot be made, a path that is a folder or not a regular
 * file. */
gboolean tr_report_check (const char *path, GError **error);
TrReport *tr_report_new (const char *path, const TrTraceJob *job);
/* The trace's spans (a TrSpanFunc): the page's timeline is drawn from them. */
void tr_report_span (guint lane, double start_us, double dur_us, double busy_us, guint64 tasks,
                     TrSpanKind kind, gpointer report);
/* Writes the page: to a new file in the same folder, renamed over `path` once whole.
 * `hosts` [slot]: where its worker runs ("rank 2 on node7"), for its lane's name; NULL
 * entries: this host. */
gboolean tr_report_write (TrReport *r, const TrInsights *in, const TrStats *stats,
                          gboolean quoted, char *const *hosts, GError **error);
void tr_report_free (TrReport *r);

#endif
