/* results.h — the results file, one JSON object per finished task (results.c). */
#ifndef TASKRUN_RESULTS_H
#define TASKRUN_RESULTS_H

#include "internal.h"

/* The version every row carries ("Version"): a change that could break a reader of
 * these rows (a field removed, renamed or given another meaning) makes it 2. */
#define TR_RESULTS_VERSION 1

typedef struct TrResultsFile TrResultsFile; /* main thread only */

TrResultsFile *tr_results_open (const char *path, GError **error);
/* One row for a task's final attempt: `command` is its description, `host` where it
 * ran (":" for this host, as in a job log).  Written and flushed at once.  FALSE when
 * it could not be written (errno set). */
gboolean tr_results_write (TrResultsFile *f, const TrResult *r, const char *command,
                           const char *host);
/* FALSE and *error when the file could not be closed cleanly. */
gboolean tr_results_close (TrResultsFile *f, GError **error);

#endif
