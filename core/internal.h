/* internal.h — declarations shared by the files of libtaskrun, not installed.
 *
 * Each section names the file that owns it.  Plugins never see this header.
 */
#ifndef TASKRUN_INTERNAL_H
#define TASKRUN_INTERNAL_H

#include "taskrun/taskrun.h"
#include "wire.h"

#include <string.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* The largest pool: workers =, -j, TrPoolOptions.workers, and the trace's lanes. */
#define TR_WORKERS_MAX 4096

/* ---- options.c --------------------------------------------------------------------- */
#define TR_CONFIG_ERROR (tr_config_error_quark ())
GQuark tr_config_error_quark (void);
typedef enum {
  TR_CONFIG_ERROR_FILE,
  TR_CONFIG_ERROR_SYNTAX,
  TR_CONFIG_ERROR_UNKNOWN_KEY,
  TR_CONFIG_ERROR_UNKNOWN_SECTION,
  TR_CONFIG_ERROR_VALUE,
  TR_CONFIG_ERROR_MISSING,
  TR_CONFIG_ERROR_PLUGIN,
  TR_CONFIG_ERROR_UNSUPPORTED,
} TrConfigErrorCode;

const char *tr_option_type_name (TrOptionType type);
const TrOption *tr_config_lookup_option (const TrOption *options, const char *key);
const char *tr_suggest (const char *word, const char *const *candidates);
char *tr_config_unknown_key_message (const TrOption *options, const char *key);
const char *tr_config_get_section (const TrConfig *config);
const TrOption *tr_config_get_options (const TrConfig *config);
GPtrArray *tr_config_to_pairs (const TrConfig *config);
void tr_config_print (const TrConfig *config, GString *out);
gboolean tr_options_check_table (const TrOption *options, GError **error);

/* ---- jobfile.c --------------------------------------------------------------------- */
typedef struct TrJobFile TrJobFile;
TrJobFile *tr_jobfile_load (const char *path, GError **error);
TrJobFile *tr_jobfile_load_data (const char *path, const char *data, gsize len, GError **error);
void tr_jobfile_free (TrJobFile *jf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrJobFile, tr_jobfile_free)
const char *tr_jobfile_get_path (const TrJobFile *jf);
const char *tr_jobfile_get_dir (const TrJobFile *jf);
const char *tr_jobfile_lookup (const TrJobFile *jf, const char *section, const char *key,
                               guint *line);
gboolean tr_jobfile_apply_section (const TrJobFile *jf, const char *section, TrConfig *config,
                                   GError **error);
gboolean tr_jobfile_check_required (const TrJobFile *jf, const char *section,
                                    const TrConfig *config, GError **error);
gboolean tr_jobfile_check_sections (const TrJobFile *jf, const char *const *known,
                                    GError **error);
gboolean tr_jobfile_lookup_section (const TrJobFile *jf, const char *section);
gboolean tr_jobfile_check_near_sections (const TrJobFile *jf, const char *const *known,
                                         GError **error);

typedef struct TrOverride TrOverride;
TrOverride *tr_override_parse (const char *text, GError **error);
void tr_override_free (TrOverride *ov);
const char *tr_override_get_section (const TrOverride *ov);
gboolean tr_overrides_apply (GPtrArray *overrides, const char *section, TrConfig *config,
                             GError **error);
const char *tr_overrides_find (GPtrArray *overrides, const char *section, const char *key);
gboolean tr_overrides_check_sections (GPtrArray *overrides, const char *const *known,
                                      GError **error);

/* ---- paths.c ----------------------------------------------------------------------- */
gboolean tr_paths_in_build_tree (void);
char *tr_paths_worker_program (void);
GPtrArray *tr_paths_plugin_dirs (void);

/* ---- loader.c ---------------------------------------------------------------------- */
#define TR_LOADER_ERROR (tr_loader_error_quark ())
GQuark tr_loader_error_quark (void);
typedef enum {
  TR_LOADER_ERROR_NOT_FOUND,
  TR_LOADER_ERROR_NOT_LOADABLE,
  TR_LOADER_ERROR_NO_DESCRIPTOR,
  TR_LOADER_ERROR_ABI,
  TR_LOADER_ERROR_INVALID,
} TrLoaderErrorCode;
void tr_plugin_list (GString *out);
/* How many bytes of a descriptor a plugin built for `minor` has. */
gsize tr_plugin_desc_size (guint32 minor);
/* The checks every descriptor passes: a name, a run hook, a sane option table. */
gboolean tr_plugin_check_desc (const TrPluginDesc *desc, const char *path, GError **error);
/* A TrPlugin for a descriptor registered in this program (copied whole). */
TrPlugin *tr_plugin_wrap (const TrPluginDesc *desc, gpointer worker_state);
gboolean tr_plugin_is_in_program (const TrPlugin *plugin);
gpointer tr_plugin_get_worker_state (const TrPlugin *plugin);
/* What a worker is told to load (tr_plugin_load_for_worker): a .so's path, or
 * TR_IN_PROGRAM_REF and the name of a plugin registered in the program. */
#define TR_IN_PROGRAM_REF "in-program:"
char *tr_plugin_worker_ref (const TrPlugin *plugin);
TrPlugin *tr_plugin_load_for_worker (const char *ref, GError **error);

/* ---- in-program.c ------------------------------------------------------------------ */
/* The plugin registered in this program as `name`, or NULL. */
TrPlugin *tr_in_program_find (const char *name);
/* The hidden mode in which taskrun loads one plugin for --list-plugins (see loader.c). */
#define TR_INSPECT_ARG "--tr-inspect-plugin"
int tr_plugin_inspect_main (const char *path);
void tr_plugin_describe (const TrPluginDesc *desc, GString *out);

/* ---- task.c: the structs behind the opaque plugin-facing types --------------------- */
struct TrTask {
  TrWireBuf payload;   /* the bytes the worker will receive; the buffer is reused by every task */
  GString *description;
  guint64 units;
  guint64 seq; /* set by a generator wrapper that skips tasks (--resume); 0: next number */
};
void tr_task_init (TrTask *task);
void tr_task_reset (TrTask *task);
void tr_task_clear (TrTask *task);
/* `text` as one readable, unambiguous line: control bytes and invalid UTF-8 escaped as
 * \n, \t, \r, \xNN, a backslash as \\ (as ls -b shows names). */
char *tr_text_escape (const char *text);
/* A task description as shown: with `quoted` (TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS) as it
 * is when it is UTF-8 without control bytes, else tr_text_escape's form. */
char *tr_description_shown (const char *text, gboolean quoted);

struct TrOutput {
  TrWireBuf *buf; /* the frame being built; run appends the result payload to it */
  gboolean files_allowed; /* the link carries descriptors (TrWireConfig.carries_files) */
  guint n_files;          /* attached by the task being run, taken over */
  int files[TR_WIRE_TASK_FILES];
};

/* ---- pool/pool.c: what a caller inside the library may watch of a pool -------------- */
typedef enum {
  TR_POOL_EVENT_WORKER_READY, /* a worker process said HELLO: `where` says where it runs */
  TR_POOL_EVENT_WORKER_ENDED, /* a worker process ended: `text` says how */
  TR_POOL_EVENT_WORKER_RETRY, /* a slot's start failed; `text`: why, and when it is tried again */
  TR_POOL_EVENT_WORKER_LOST,  /* a slot given up after failed starts; `text`: why */
} TrPoolEventKind;
typedef struct {
  TrPoolEventKind kind;
  guint slot;
  GPid pid;    /* 0 when no process was started */
  double when; /* Unix seconds, on the I/O thread as it happened */
  char *where; /* the link's place ("rank 2 on node7"), or NULL: this host */
  char *text;  /* or NULL */
} TrPoolEvent;
void tr_pool_event_clear (gpointer event);
/* Called on the thread that calls into the pool, with the workers' events in the order
 * they happened, delivered with the workers' lines (also during tr_pool_free).  The
 * events from the start of the pool on are kept for it until the first delivery. */
typedef void (*TrPoolEventFunc) (const TrPoolEvent *event, gpointer data);
void tr_pool_set_event_func (TrPool *pool, TrPoolEventFunc func, gpointer data);
/* What the thread of tr_pool_stream spent its time on, in spans of g_get_monotonic_time:
 * pulling `count` tasks from the generator, or delivering `count` results.  Timed per
 * loop, never per task, so watching costs two clock reads a hand-over. */
typedef enum { TR_POOL_PHASE_GENERATOR, TR_POOL_PHASE_RESULTS } TrPoolPhase;
typedef void (*TrPoolPhaseFunc) (TrPoolPhase phase, gint64 start_us, gint64 end_us, guint count,
                                 gpointer data);
void tr_pool_set_phase_func (TrPool *pool, TrPoolPhaseFunc func, gpointer data);

/* ---- link-local.c ------------------------------------------------------------------ */
char *tr_describe_wait_status (int status, gboolean *clean);
/* Waits (or, unless `block`, only looks) for worker `pid` to end; once it has, kills what
 * is left of its process group and reaps it.  *reaped says whether it ended, *status is
 * its wait status.  FALSE when it could not be reaped (errno set); with errno ECHILD and
 * *reaped TRUE it has ended, its status unknown (the process ignores SIGCHLD). */
gboolean tr_reap_worker (pid_t pid, gboolean block, int *status, gboolean *reaped);

/* ---- worker.c ---------------------------------------------------------------------- */
#define TR_WORKER_ARG "--tr-worker"
/* The descriptor limit taskrun was started with, for its workers to put back (the
 * parent raises its own: it may hold a file for each early result of an ordered job). */
#define TR_NOFILE_ENV "TASKRUN_STARTED_NOFILE"
int tr_worker_main (int fd, pid_t parent);
/* TRUE in a process started as a pool's worker that did not become one: a program whose
 * main did not hand its worker mode to tr_worker_main_if_worker, and went on to start a
 * pool of its own, which would start workers of its own, and so on. */
gboolean tr_worker_is_stray (void);

G_END_DECLS

#endif
