/* joblog.h — the GNU parallel style job log (joblog.c). */
#ifndef TASKRUN_JOBLOG_H
#define TASKRUN_JOBLOG_H

#include "internal.h"
#include "seqset.h"

typedef struct TrJoblog TrJoblog;

/* Opens `path`; with `append` an existing log is kept and added to (no second header).
 * A new log starts with the header and the job's `identity` (tr_joblog_identity). */
TrJoblog *tr_joblog_open (const char *path, gboolean append, const char *identity, GError **error);
/* Writes one row for an attempt (Command: `command`) and flushes it. */
gboolean tr_joblog_write (TrJoblog *log, const TrResult *result, const char *command,
                          gboolean quoted);
void tr_joblog_close (TrJoblog *log);
/* What opening `path` would refuse, found without writing (--dry-run): a file that is not
 * regular, or a folder where it cannot be made. */
gboolean tr_joblog_check (const char *path, GError **error);
/* Adds to `done` the Seq numbers of rows with Exitval 0 and Signal 0 (none when the file
 * does not exist).  FALSE and *error for a file that is not a job log, or that names a
 * job other than `identity`. */
gboolean tr_joblog_read_succeeded (const char *path, const char *identity, TrSeqSet *done,
                                   GError **error);
/* What names a job for its log: its plugin and its job file ("compute /jobs/primes.ini").
 * Options changed with -s keep the job the same (a fix between a run and its --resume);
 * another job file, or another plugin, is another job. */
char *tr_joblog_identity (const char *plugin, const char *job_file);

#endif
