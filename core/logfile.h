/* logfile.h — the files a run writes about itself as it goes (logfile.c). */
#ifndef TASKRUN_LOGFILE_H
#define TASKRUN_LOGFILE_H

#include <glib.h>

/* Opens `path` (open(2) `flags`, O_CLOEXEC added) as a regular file, or fails naming it
 * as `what` ("the job log", "the trace"): a FIFO, a device or a socket is refused without
 * blocking.  Returns the descriptor, or -1 and *error. */
int tr_logfile_open (const char *path, int flags, const char *what, GError **error);
/* What opening `path` for writing would refuse, found without writing (--dry-run, and
 * every check made before a run starts): a file that is not regular, or a folder where
 * it cannot be made. */
gboolean tr_logfile_check (const char *path, const char *what, GError **error);

#endif
