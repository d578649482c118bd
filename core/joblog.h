/* joblog.h — the GNU parallel style job log (joblog.c). */
#ifndef TASKRUN_JOBLOG_H
#define TASKRUN_JOBLOG_H

#include "internal.h"

typedef struct TrJoblog TrJoblog;

/* Opens `path`; with `append` an existing log is kept and added to (no second header). */
TrJoblog *tr_joblog_open (const char *path, gboolean append, GError **error);
/* Writes one row for an attempt (Command: `command`) and flushes it. */
gboolean tr_joblog_write (TrJoblog *log, const TrResult *result, const char *command);
void tr_joblog_close (TrJoblog *log);
/* The Seq numbers (guint64*) of rows with Exitval 0 and Signal 0; empty when the file does
 * not exist. */
GHashTable *tr_joblog_read_succeeded (const char *path, GError **error);

#endif
