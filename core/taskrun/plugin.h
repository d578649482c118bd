/* plugin.h — the plugin half of taskrun's public headers: what a task plugin's author
 * uses (<taskrun/plugin.h>, or <taskrun/taskrun.h> for both halves).
 *
 * A task plugin is a shared object that exports one constant descriptor, TrPluginDesc,
 * named `tr_plugin_descriptor` (use TR_PLUGIN_DEFINE).  The descriptor carries the ABI
 * version it was built for, the plugin's name and option table, and its hooks.  Some
 * hooks run in the parent process (configure, next_task, result, finish, destroy), the
 * others in each worker process (worker_init, run, worker_fini).  The two sides never
 * share memory: a task travels from next_task to run as a byte payload, and its result
 * travels back from run to result as bytes (and files, since 1.3).
 *
 * A plugin needs nothing but this header and GLib, and links against nothing: the
 * functions it calls (tr_config_*, tr_task_*, tr_output_*, tr_job_*) are provided by the
 * process that loads it.  Everything here has the tr_/Tr/TR_ prefix.
 */
#ifndef TASKRUN_PLUGIN_H
#define TASKRUN_PLUGIN_H

#include <glib.h>

G_BEGIN_DECLS

/* ---------------------------------------------------------------------------------------
 * ABI version
 *
 * A plugin records the version it was compiled against.  The loader accepts a plugin whose
 * major version equals TR_ABI_MAJOR and whose minor version is at most TR_ABI_MINOR, and
 * refuses any other with a message naming both versions.
 *
 * How the ABI grows within a major version:
 *  - functions are only added (a plugin that calls one needs the minor that added it);
 *  - the descriptor ends in TR_PLUGIN_PADDING reserved pointers (since 1.4): a hook or
 *    field added in minor N takes the place of one, and the loader reads it only from a
 *    plugin that says minor N or later; of an older plugin's descriptor it reads no byte
 *    past what that minor had, and the rest counts as NULL (0);
 *  - a struct the core hands out by pointer (TrResult, TrStats) only grows at its end,
 *    and a plugin reads a field added in minor N only when tr_abi_minor () is N or more;
 *  - a struct a program allocates and the library reads or fills (TrPoolOptions, TrStats
 *    for tr_pool_stream) ends in reserved fields (since 1.4) that new ones replace, so
 *    its size never changes; zero in them means "as before".
 * ------------------------------------------------------------------------------------- */
#define TR_ABI_MAJOR 1
#define TR_ABI_MINOR 4 /* 1: tr_job_is_dry_run; tr_job_print says whether it wrote;
                        * 2: tr_job_write, TR_PLUGIN_FLAG_STATUS_IN_CODE;
                        * 3: tr_output_attach_file, TrResult.files, tr_job_write_file,
                        *    TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS; a failed task's GError
                        *    keeps its domain;
                        * 4: the descriptor's reserved pointers (_tr_reserved), tr_abi_minor;
                        *    next_task optional (only a job file's plugin needs one);
                        *    plugins registered in a program (<taskrun/pool.h>);
                        *    reserved fields at the end of TrStats and TrPoolOptions */
#define TR_PLUGIN_PADDING 8

/* The minor version of the taskrun that loaded the plugin (the host's, not the plugin's). */
guint tr_abi_minor (void);

/* The name of the symbol every plugin exports. */
#define TR_PLUGIN_SYMBOL "tr_plugin_descriptor"

/* ---------------------------------------------------------------------------------------
 * Options
 *
 * A plugin declares its options in a table (Fluent Bit's config map is the model).  The
 * core reads them from the plugin's own section of the job file (named after the plugin),
 * applies -s overrides, checks types, ranges and required keys, and only then calls the
 * plugin's configure hook.  `taskrun --describe NAME` prints the table.
 * ------------------------------------------------------------------------------------- */
typedef enum {
  TR_OPTION_STRING, /* any text */
  TR_OPTION_INT,    /* a signed 64-bit integer, decimal */
  TR_OPTION_DOUBLE, /* a decimal number, fractions allowed */
  TR_OPTION_BOOL,   /* yes/no, true/false, on/off, 1/0 */
  TR_OPTION_PATH,   /* a file name; relative ones are made absolute (see README); "-" stays */
  TR_OPTION_ENUM,   /* one of `choices` */
  TR_OPTION_SIZE,   /* a byte count: 4096, 64K, 64M, 1G (powers of 1024) */
} TrOptionType;

typedef struct {
  const char *name;               /* key in the job file: lower case, digits, '_' */
  TrOptionType type;
  const char *default_value;      /* as it would be written in a job file; NULL: none */
  gboolean required;              /* a job file must set it (default_value is ignored) */
  const char *help;               /* one line, shown by --describe */
  const char *const *choices;     /* TR_OPTION_ENUM: NULL-terminated allowed values */
  double min, max;                /* INT, DOUBLE, SIZE: inclusive bounds; min == max: none */
} TrOption;

/* The validated options of one section.  Every declared option can be read: unset ones
 * hold their default, and options without a default read as NULL / 0 / FALSE. */
typedef struct TrConfig TrConfig;

const char *tr_config_get_string (const TrConfig *config, const char *name); /* STRING, PATH, ENUM */
gint64 tr_config_get_int (const TrConfig *config, const char *name);        /* INT, SIZE */
double tr_config_get_double (const TrConfig *config, const char *name);
gboolean tr_config_get_bool (const TrConfig *config, const char *name);
/* TRUE when the job file or the command line set the option (not only its default). */
gboolean tr_config_is_set (const TrConfig *config, const char *name);

/* ---------------------------------------------------------------------------------------
 * Parent-side types
 * ------------------------------------------------------------------------------------- */

/* The task being produced by next_task.  The core reuses one TrTask for every call and
 * clears it before each; the plugin fills it in. */
typedef struct TrTask TrTask;

/* The bytes the worker's run hook will receive.  Copied; may be called more than once to
 * append. */
void tr_task_set_payload (TrTask *task, const void *data, gsize len);
void tr_task_append_payload (TrTask *task, const void *data, gsize len);
/* A short human description for logs and the job log: a path, a range.  Any text: the
 * core shows control bytes and invalid UTF-8 escaped (\n, \t, \xff), so it stays one
 * line.  Optional: without one the core asks the plugin's describe hook when it needs one. */
void tr_task_set_description (TrTask *task, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* How much of the job this task is, in the plugin's progress unit (bytes for copy).
 * Default 1. */
void tr_task_set_units (TrTask *task, guint64 units);

/* What next_task says. */
typedef enum {
  TR_NEXT_TASK,  /* the TrTask holds a task */
  TR_NEXT_END,   /* the stream has ended; next_task is not called again */
  TR_NEXT_ERROR, /* the generator failed: the GError says why; the job stops feeding */
} TrNext;

/* One finished task, as the parent sees it. */
typedef struct {
  guint64 seq;              /* 1, 2, 3 ... in the order next_task produced the tasks */
  const char *description;  /* as set by tr_task_set_description ("" if none) */
  const guint8 *data;       /* what run wrote to its output (also when it then failed) */
  gsize len;
  const GError *error;      /* NULL on success; otherwise why the task failed: the GError
                             * run set, its domain and code kept (since ABI 1.3; before,
                             * TR_TASK_ERROR_FAILED), or TR_TASK_ERROR with the core's code */
  int error_code;           /* error->code (since ABI 1.3 also for the core's errors) */
  guint worker;             /* the worker slot that ran it, 1 .. workers; 0 if none did */
  GPid worker_pid;          /* that worker's process id; 0 if none */
  double seconds;           /* time spent in run, measured in the worker */
  guint64 units;            /* the task's units, as set by tr_task_set_units */
  guint attempt;            /* 1 for the first run, 2 for the first retry, ... */
  gboolean final;           /* FALSE: this attempt failed and the task will run again */
  double start_time;        /* when this attempt started, in Unix seconds */
  const guint8 *payload;    /* the task's payload, as the generator made it */
  gsize sent;               /* its length: bytes sent to the worker */
  int exit_value;           /* as in a GNU parallel job log: 0 success, 1 task failed,
                             * N the worker exited with N, -1 timed out or killed by taskrun */
  int signal;               /* the signal that ended the worker holding the task, or 0 */
  /* Since ABI 1.3: the files run attached (tr_output_attach_file), in the order it
   * attached them, as descriptors open for reading in this process.  The core closes
   * them after the result hook returns (dup one to keep it).  Read them with pread or
   * tr_job_write_file: their offsets are not set. */
  const int *files;
  guint n_files;
} TrResult;

/* The running job, as a plugin's parent-side hooks see it. */
typedef struct TrJob TrJob;

/* Tell the core the total size of the job in progress units, when the plugin knows it
 * (final = TRUE) or has a running estimate (final = FALSE, e.g. while a walk goes on). */
void tr_job_set_total_units (TrJob *job, guint64 total, gboolean final);
/* Stop handing out new tasks (e.g. the destination disk is full); running tasks finish,
 * and the job ends with exit status 1.  `reason` is printed once. */
void tr_job_stop (TrJob *job, const char *reason);
/* The number of workers of the pool. */
guint tr_job_get_workers (TrJob *job);
/* TRUE under --dry-run: next_task is called only to describe the first tasks, and must
 * change nothing (no folder made, no file written or removed). */
gboolean tr_job_is_dry_run (TrJob *job);
/* Prints a line of the plugin's output on stdout (a newline is added if missing).  Use
 * it rather than printf from parent hooks: it keeps the output apart from the progress
 * line on a terminal, and a line that cannot be written (a full disk, a closed pipe) is
 * reported once on stderr and makes the job exit 1.  Returns FALSE when the line was not
 * written (since ABI 1.1), for a plugin whose output is worthless once a line is lost. */
gboolean tr_job_print (TrJob *job, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Writes `len` bytes as they are (any bytes, no newline added) on taskrun's stdout
 * (fd 1) or stderr (fd 2), clear of the progress line: a task's output, say.  FALSE
 * when they were not written (stdout's first failure is reported as tr_job_print's).
 * Since ABI 1.2. */
gboolean tr_job_write (TrJob *job, int fd, const void *data, gsize len);
/* The same for the whole content of `file` (a TrResult's file, say), copied in the
 * kernel where it can be.  FALSE when it was not all written or could not be read; a
 * failure to read is reported on stderr naming `what`.  Since ABI 1.3. */
gboolean tr_job_write_file (TrJob *job, int fd, int file, const char *what);
/* The same for a message on stderr (a warning, a note), prefixed "taskrun: NAME: ". */
void tr_job_message (TrJob *job, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Counts at the end of a run, given to finish. */
typedef struct {
  guint64 total;      /* tasks produced by the generator */
  guint64 succeeded;
  guint64 failed;     /* failed in their last attempt */
  guint64 not_run;    /* produced but never run to the end (stop, interrupt) */
  guint64 skipped;    /* not run because a job log says they succeeded (--resume) */
  guint64 units_done; /* units of succeeded tasks */
  double seconds;     /* wall time of the run */
  guint workers;      /* the worker slots the job ended with */
  guint distinct_pids; /* how many worker processes ran at least one task */
  guint workers_started; /* the slots it started with (since ABI 1.1); more than workers
                          * when a slot's worker could not be started again */
  /* Since 1.4: room for counts later minors add, which a caller of tr_pool_stream
   * (which fills a TrStats it allocated) then has the space for. */
  guint64 _tr_reserved[TR_PLUGIN_PADDING];
} TrStats;

/* ---------------------------------------------------------------------------------------
 * Worker-side types
 * ------------------------------------------------------------------------------------- */

/* Where run writes a task's result payload: up to 32 MiB per task (a larger output fails
 * the task as too large to send back; tasks are never failed for the size of the others
 * batched with them). */
typedef struct TrOutput TrOutput;
void tr_output_append (TrOutput *output, const void *data, gsize len);
/* Hands the result a file besides its bytes, for output too large to hold in memory:
 * the parent's result hook gets it as TrResult.files[i], the whole file whatever the
 * offset.  On TRUE the core owns `fd` (it closes it once it has been sent); make it an
 * unlinked file (O_TMPFILE) so that nothing is left behind whatever happens.  FALSE,
 * the descriptor still the caller's, when the worker's link cannot carry descriptors
 * (the MPI backend: the parent is on another host), the task attached 4 already, or
 * `fd` is not an open descriptor of the task's own (0 to 3 are the worker's).
 * Since ABI 1.3. */
gboolean tr_output_attach_file (TrOutput *output, int fd);

/* The error domain for task failures reported by the core. */
#define TR_TASK_ERROR (tr_task_error_quark ())
GQuark tr_task_error_quark (void);
typedef enum {
  TR_TASK_ERROR_FAILED,      /* run returned FALSE; the message is the plugin's */
  TR_TASK_ERROR_WORKER_DIED, /* the worker exited or was killed while holding the task */
  TR_TASK_ERROR_TIMEOUT,     /* task_timeout passed */
  TR_TASK_ERROR_TERMINATED,  /* the pool was terminated while the task ran */
  TR_TASK_ERROR_CANCELLED,   /* never started: the pool was closed or terminated first */
  TR_TASK_ERROR_NO_WORKER,   /* no worker could start */
  TR_TASK_ERROR_PROTOCOL,    /* the worker sent something that is not a valid frame */
} TrTaskErrorCode;

/* ---------------------------------------------------------------------------------------
 * The descriptor
 * ------------------------------------------------------------------------------------- */

/* Plugin flags. */
typedef enum {
  TR_PLUGIN_FLAG_NONE = 0,
  /* The same job file always yields the same tasks in the same order, so a job log can
   * be used to resume an interrupted run (--resume). */
  TR_PLUGIN_FLAG_DETERMINISTIC = 1 << 0,
  /* A failed task's error code is the status of a command it ran, shown in the job log
   * as GNU parallel shows it: 1 to 255 an exit status (Exitval), 256 + S killed by
   * signal S (Exitval 0, Signal S).  Without it a failed task's Exitval is 1.  Since
   * ABI 1.2. */
  TR_PLUGIN_FLAG_STATUS_IN_CODE = 1 << 1,
  /* Task descriptions are already one line that reads back unambiguously (a command line
   * quoted for a shell), so they are shown as they are, in messages, --dry-run and the job
   * log, unless one holds a control byte or bytes that are not UTF-8.  Without it they
   * are escaped as `ls -b` escapes names (a backslash shown as \\).  Since ABI 1.3. */
  TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS = 1 << 2,
} TrPluginFlags;

typedef struct TrPluginDesc {
  /* Filled in by TR_PLUGIN_DEFINE; the loader reads these two before anything else. */
  guint32 abi_major;
  guint32 abi_minor;

  const char *name;        /* as in `plugin = NAME` and the job file section: [NAME] */
  const char *version;     /* the plugin's own version */
  const char *description; /* one line */
  const char *license;     /* e.g. "MIT" */
  const TrOption *options; /* terminated by an entry whose name is NULL; may be NULL */
  guint32 flags;           /* TrPluginFlags */
  const char *unit_name;   /* progress unit, e.g. "bytes"; NULL: "tasks" */

  /* ---- Parent hooks: all run on the main thread, one at a time, never concurrently. */

  /* Called once with the validated options.  Store what you need in *state.  Return FALSE
   * with an error to reject the configuration (the job exits 2, nothing runs); a message
   * that starts with an option's name and ": " ("command: ...") is reported at the line
   * of the job file, or the -s, that set it.  `job` stays valid until destroy.  Optional. */
  gboolean (*configure) (TrJob *job, const TrConfig *config, gpointer *state, GError **error);
  /* The generator: fill `task` and return TR_NEXT_TASK, or return TR_NEXT_END.  It is
   * called only as far as the core's bounded in-flight window needs, so it may produce
   * millions of tasks without holding them.  Required of a plugin a job file names
   * (since 1.4 a plugin that only runs what a program submits may leave it NULL). */
  TrNext (*next_task) (gpointer state, TrTask *task, GError **error);
  /* Called once per finished task, success or failure.  Keep it quick: while it runs no
   * other result is handled (workers keep working on what they hold).  Optional. */
  void (*result) (gpointer state, const TrResult *result);
  /* Called once after the last result.  Append the plugin's own summary lines to
   * `summary` (the core prints them with its own, unless -q).  Return FALSE with an error
   * to make the job fail (exit 1).  Optional. */
  gboolean (*finish) (gpointer state, const TrStats *stats, GString *summary, GError **error);
  /* Frees *state.  Called exactly once when configure succeeded.  Optional. */
  void (*destroy) (gpointer state);

  /* ---- Worker hooks: run in each worker process (never in the parent), whose
   * environment holds TASKRUN_SLOT, its worker slot (1 .. workers). */

  /* Called once when the worker starts, with the same validated options.  Return FALSE to
   * report that this worker cannot run tasks; such a worker is not restarted.  Optional. */
  gboolean (*worker_init) (const TrConfig *config, gpointer *worker_state, GError **error);
  /* Runs one task: read the payload, append the result to `output`, return TRUE; or set
   * `error` and return FALSE to fail this task only (what it appended to `output` still
   * reaches the result hook, and the error arrives with its domain, its code and its
   * message; the domain is carried by name, so a quark registered in the plugin is the
   * same quark in the parent).  Required. */
  gboolean (*run) (gpointer worker_state, const guint8 *payload, gsize len, TrOutput *output,
                   GError **error);
  /* Called when the worker is retired or the pool ends.  Optional. */
  void (*worker_fini) (gpointer worker_state);

  /* ---- Parent hook, optional: describes a task from its payload, on the main thread,
   * only when a description is needed (a failure, -v, the job log, --dry-run) and
   * next_task did not set one.  Lets a generator of millions of tiny tasks skip
   * formatting a description per task. */
  void (*describe) (gpointer state, const guint8 *payload, gsize len, GString *out);

  /* ---- Since 1.4: room for what later minors add (see "How the ABI grows").  Zero. */
  gpointer _tr_reserved[TR_PLUGIN_PADDING];
} TrPluginDesc;

/* Define the plugin's descriptor:
 *
 *   TR_PLUGIN_DEFINE (
 *     .name = "wordcount", .version = "1.0", .description = "...", .license = "MIT",
 *     .options = wordcount_options, .next_task = wc_next, .run = wc_run);
 */
/* In C++ a const at namespace scope is local to its file, and its name mangled: there the
 * descriptor is extern "C", so that the loader finds it.  A C++ plugin needs C++20's
 * designated initializers, in the descriptor's order; the fields it leaves out are zero,
 * as in C, which g++ -Wextra would warn about. */
#ifdef __cplusplus
#define TR_PLUGIN_DEFINE(...)                                                            \
  _Pragma ("GCC diagnostic push")                                                        \
  _Pragma ("GCC diagnostic ignored \"-Wmissing-field-initializers\"")                    \
  extern "C" G_MODULE_EXPORT const TrPluginDesc tr_plugin_descriptor = {                 \
    .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, __VA_ARGS__ };                 \
  _Pragma ("GCC diagnostic pop")                                                         \
  static_assert (true, "")
#else
#define TR_PLUGIN_DEFINE(...)                                                            \
  G_MODULE_EXPORT const TrPluginDesc tr_plugin_descriptor = {                            \
    .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, __VA_ARGS__ }
#endif

#ifndef G_MODULE_EXPORT
#define G_MODULE_EXPORT __attribute__ ((visibility ("default")))
#endif

G_END_DECLS

#endif /* TASKRUN_PLUGIN_H */
