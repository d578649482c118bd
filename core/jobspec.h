/* jobspec.h — a job file read into one resolved job (jobspec.c). */
#ifndef TASKRUN_JOBSPEC_H
#define TASKRUN_JOBSPEC_H

#include "internal.h"
#include "runner.h"

/* Everything a run needs from its job file and command line, checked: nothing runs
 * unless all of it is valid. */
typedef struct {
  TrJobFile *file;
  TrConfig *core;          /* [taskrun], with -s and -j applied */
  TrPlugin *plugin;
  const TrPluginDesc *desc;
  TrConfig *plugin_config; /* the plugin's section, with -s applied, validated */
  guint batch;             /* tasks per frame; 0: auto */
  gboolean use_mpi;        /* workers are MPI ranks */
  guint workers;           /* the pool size */
} TrJobSpec;

/* Reads opts->job_file and applies opts' overrides.  NULL with *error (the message as
 * taskrun prints it after "taskrun: ") when the job cannot start. */
TrJobSpec *tr_job_spec_resolve (const TrRunOptions *opts, GError **error);
void tr_job_spec_free (TrJobSpec *spec);
/* Where SECTION.KEY was set: "-s SECTION.KEY=..." or "FILE:LINE" (FILE when not set). */
char *tr_job_spec_where (const TrJobFile *jf, GPtrArray *overrides, const char *section,
                         const char *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrJobSpec, tr_job_spec_free)

/* The [taskrun] keys, declared with the table type plugins use. */
const TrOption *tr_runner_core_options (void);

#endif
