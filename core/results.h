/* results.h — the results file, one JSON object per finished task (results.c). */
#ifndef TASKRUN_RESULTS_H
#define TASKRUN_RESULTS_H

#include "internal.h"

/* The version every row carries ("Version"): a change that could break a reader of
 * these rows (a field removed, renamed or given another meaning) makes it 2. */
#define TR_RESULTS_VERSION 1

typedef struct TrResultsFile TrResultsFile; /* main thread only */

/* Opens `path`, emptied, or with `append` (--resume) kept and added to: the rows of the
 * tasks an earlier run finished stay, as they do in the job log. */
TrResultsFile *tr_results_open (const char *path, gboolean append, GError **error);
/* One row for a task's final attempt: `command` is its description, `host` where it
 * ran (":" for this host, as in a job log); `with_output`: the row carries the task's
 * result payload (not for a plugin whose payload is a record of its own, exec's).
 * Written and flushed at once.  FALSE when it could not be written (errno set). */
gboolean tr_results_write (TrResultsFile *f, const TrResult *r, const char *command,
                           const char *host, gboolean with_output);
/* FALSE and *error when the file could not be closed cleanly. */
gboolean tr_results_close (TrResultsFile *f, GError **error);

#endif
