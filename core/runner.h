/* runner.h — running one job file (runner.c) and the exit statuses of taskrun. */
#ifndef TASKRUN_RUNNER_H
#define TASKRUN_RUNNER_H

#include "internal.h"
#include "progress.h"
#include "stdout.h"

typedef enum {
  TR_EXIT_OK = 0,           /* every task succeeded */
  TR_EXIT_FAILED = 1,       /* one or more tasks failed; the rest ran */
  TR_EXIT_CANNOT_START = 2, /* usage, job file, plugin load or configuration: nothing ran */
} TrExitStatus;

/* Interrupted by signal `sig` (SIGINT, SIGTERM or SIGHUP, handled alike): 128 + sig, what
 * a shell reports for a process killed by it, so callers see 130, 143 and 129. */
#define TR_EXIT_SIGNALLED(sig) (128 + (sig))

typedef struct {
  const char *job_file;
  const char *job_text; /* the job file's text, given rather than read (-e); NULL: read it */
  GPtrArray *overrides; /* TrOverride* from -s */
  const char *workers;  /* -j as given, read as workers = is; NULL: not given */
  gboolean dry_run;
  gboolean quiet;
  gboolean verbose;
  const char *joblog;   /* --joblog: relative to the current directory; NULL: not given */
  const char *trace;    /* --trace, the same */
  const char *results;  /* --results, the same */
  const char *report;   /* --report, the same */
  gboolean resume;
  TrProgressMode progress;
  gint64 started_us;    /* g_get_monotonic_time () when the command started; 0: now */
} TrRunOptions;

int tr_run (TrRunOptions *opts);

#endif
