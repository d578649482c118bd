/* pool.h — the library half of taskrun's public headers: what a program that runs a
 * pool of worker processes itself uses (<taskrun/pool.h>, or <taskrun/taskrun.h>).
 *
 * libtaskrun's pool, which the taskrun command and the tests use: a fixed set of reused
 * worker processes with blocking, asynchronous, ordered and streaming submission, in the
 * spirit of Python's multiprocessing.Pool, running a plugin's tasks: a plugin file's, or
 * functions of the program itself.  It includes the plugin half, whose types (TrResult,
 * TrPluginDesc, TrStats) it shares, and whose rule for growing the ABI (plugin.h, "How
 * the ABI grows") holds here too.
 */
#ifndef TASKRUN_POOL_H
#define TASKRUN_POOL_H

#include <taskrun/plugin.h>

G_BEGIN_DECLS

/* A loaded plugin. */
typedef struct TrPlugin TrPlugin;

/* Loads `name_or_path`: a name registered in this program (tr_plugin_register, below),
 * else a name searched on the plugin path (TASKRUN_PLUGIN_PATH, then the plugins built
 * beside an uninstalled taskrun, or the installed plugin directory), or a path to a .so
 * (containing '/' or ending in ".so"), relative to `base_dir` (NULL: the current
 * directory). */
TrPlugin *tr_plugin_load (const char *name_or_path, const char *base_dir, GError **error);
const TrPluginDesc *tr_plugin_get_desc (const TrPlugin *plugin);
/* The .so's path; for a plugin registered in the program, the program's file. */
const char *tr_plugin_get_path (const TrPlugin *plugin);
void tr_plugin_free (TrPlugin *plugin);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrPlugin, tr_plugin_free)

/* ---------------------------------------------------------------------------------------
 * Tasks in the program itself (since 1.4)
 *
 * A program can run its own functions on a pool, with no plugin file, as Python's Pool
 * runs a function: it registers them by name, and a pool on such a plugin starts each
 * worker by running the program again (/proc/self/exe) in a worker mode that main hands
 * to tr_worker_main_if_worker.  So main must register the same plugins in every run, and
 * call tr_worker_main_if_worker right after, before it does anything else:
 *
 *   int main (int argc, char **argv) {
 *     tr_plugin_register_func ("square", square);
 *     tr_worker_main_if_worker (argc, argv);   // a worker runs tasks here, then exits
 *     TrPlugin *plugin = tr_plugin_load ("square", NULL, &error);
 *     ...
 *
 * Registered names come before the plugin path in tr_plugin_load.
 * ------------------------------------------------------------------------------------- */

/* A task function: the same contract as TrPluginDesc.run, without worker state. */
typedef gboolean (*TrTaskFunc) (const guint8 *payload, gsize len, TrOutput *output,
                                GError **error);
/* Registers `func` as a plugin named `name` whose run hook it is (no options, no other
 * hook).  FALSE, with a critical warning, when the name is taken. */
gboolean tr_plugin_register_func (const char *name, TrTaskFunc func);
/* Registers a whole descriptor (options, worker_init, parent hooks: as for a .so; it is
 * copied).  FALSE, with a critical warning, when it is not valid or its name is taken. */
gboolean tr_plugin_register (const TrPluginDesc *desc);
/* When this process was started by a pool as one of its workers, runs as that worker
 * and exits; otherwise returns at once. */
void tr_worker_main_if_worker (int argc, char **argv);

/* A set of options for one plugin, built from key = value strings. */
TrConfig *tr_config_new (const TrOption *options, const char *section);
/* Parses and stores `value` for `key`; relative paths are resolved against base_dir
 * (NULL: the current directory).  Fails for unknown keys and malformed values. */
gboolean tr_config_set (TrConfig *config, const char *key, const char *value,
                        const char *base_dir, GError **error);
/* Fails naming the first required option that is not set. */
gboolean tr_config_check_required (const TrConfig *config, GError **error);
void tr_config_free (TrConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrConfig, tr_config_free)

/* Zero means the default in every field: initialise the whole struct (`= { .workers = 2 }`
 * or memset), so that the reserved fields are zero.  A field added in minor N takes the
 * place of a reserved one, so an older program's zeros keep its default; setting it
 * needs a libtaskrun of minor N or later (tr_abi_minor ()). */
typedef struct {
  guint workers;              /* pool size, up to 4096; 0: the number of online CPUs */
  guint max_tasks_per_worker; /* retire a worker after this many tasks; 0: never */
  guint batch;                /* tasks per message, up to 65536; 0: automatic */
  const char *worker_program; /* NULL: the taskrun binary that matches this library */
  double task_timeout;        /* seconds; a task running longer is stopped (its worker gets
                               * SIGTERM, then SIGKILL after a grace); 0 or infinity: no
                               * limit; tr_pool_new refuses a negative, NaN or finite value
                               * above 1e9, as it does the other fields out of range */
  guint retries;              /* run a failed task up to this many more times */
  double start_timeout;       /* seconds a worker may take to load the plugin and run
                               * worker_init before it counts as failed; 0: 60;
                               * infinity: 1e9 */
  const volatile int *interrupted; /* if not NULL and it becomes non-zero while
                                    * tr_pool_new waits for the workers, it gives up */
  gpointer _tr_reserved[TR_PLUGIN_PADDING]; /* zero */
} TrPoolOptions;

typedef struct TrPool TrPool;

/* Starts the workers: each loads the plugin and runs its worker_init with `config`.
 * Returns when every worker is ready.  Fails when a worker could not start, with the
 * worker's own message.
 *
 * A pool belongs to the thread that made it, in the process that made it: every call
 * on it (and on its TrAsync handles) comes from that thread, but for the ones said to be
 * safe from any thread.  A call from another thread is refused with a g_critical and
 * does nothing.  In a child after fork() the pool's copy is not the pool (its I/O
 * thread and its workers are the parent's): tr_pool_free there frees nothing and stops
 * no worker, and any other call is refused. */
TrPool *tr_pool_new (TrPlugin *plugin, const TrConfig *config, const TrPoolOptions *options,
                     GError **error);
guint tr_pool_get_workers (TrPool *pool);

/* Callbacks run on the thread that calls into the pool (wait, join, map, apply, stream),
 * one at a time. */
typedef void (*TrResultFunc) (const TrResult *result, gpointer user_data);

/* Runs one task and waits for it.  Returns its result payload, or NULL with the error. */
GBytes *tr_pool_apply (TrPool *pool, const char *description, GBytes *payload, GError **error);

/* A task submitted with apply_async. */
typedef struct TrTaskRecord TrAsync;
/* Submits one task and returns at once.  `callback` runs on success, `error_callback` on
 * failure (either may be NULL), from whichever pool call next handles results. */
TrAsync *tr_pool_apply_async (TrPool *pool, const char *description, GBytes *payload,
                              TrResultFunc callback, TrResultFunc error_callback,
                              gpointer user_data);
/* Handles pending results without blocking, then tells whether this task is done. */
gboolean tr_async_ready (TrAsync *async);
/* Waits up to timeout_us microseconds (negative: forever), handling results meanwhile.
 * Returns TRUE when the task is done. */
gboolean tr_async_wait (TrAsync *async, gint64 timeout_us);
/* The result payload (a new reference), or NULL with the error.  Waits if needed. */
GBytes *tr_async_get (TrAsync *async, GError **error);
/* The finished task's details; NULL until it is done.  Owned by async. */
const TrResult *tr_async_peek_result (TrAsync *async);
void tr_async_unref (TrAsync *async);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrAsync, tr_async_unref)

/* Runs every payload (GBytes) and returns their results in the same order, as a
 * GPtrArray of GBytes, once all are done.  If any task fails, returns NULL and the first
 * failure's error (in order), after all tasks have ended: its domain and code, its
 * message after "payload I: " (I its index in `payloads`). */
GPtrArray *tr_pool_map (TrPool *pool, GPtrArray *payloads, GError **error);

/* A generator for tr_pool_stream: the same contract as TrPluginDesc.next_task. */
typedef TrNext (*TrGeneratorFunc) (gpointer user_data, TrTask *task, GError **error);

/* Pulls tasks from `generator` and runs them, never holding more than a bounded window
 * of tasks; `on_result` runs once per attempt: with result->final FALSE for an attempt
 * that failed and will be retried, and once with final TRUE per task (in completion
 * order, or in generator order when `ordered`).  Returns when the generator has ended and every task has finished, or
 * feeding was stopped (tr_pool_stop_feeding, a generator error) and running ones ended.
 * `stats` (may be NULL) receives the counts.  Returns FALSE only on a generator error. */
gboolean tr_pool_stream (TrPool *pool, TrGeneratorFunc generator, TrResultFunc on_result,
                         gpointer user_data, gboolean ordered, TrStats *stats, GError **error);

/* Stops feeding, for good: tr_pool_stream pulls no new task, tasks not yet handed to a
 * worker fail with TR_TASK_ERROR_CANCELLED, and so does every task submitted after it
 * (the pool takes no more: make a new one); running tasks finish.  Safe from any thread
 * and from a signal handler. */
void tr_pool_stop_feeding (TrPool *pool);
/* Like tr_pool_terminate, but only asks: returns at once.  Safe from a signal handler. */
void tr_pool_request_terminate (TrPool *pool);
/* tr_pool_stream calls `tick` on its thread at least ten times a second while it runs
 * (for a progress display); NULL to stop. */
void tr_pool_set_tick (TrPool *pool, void (*tick) (gpointer data), gpointer data);
/* The lines the workers write on their stdout (fd 1) and stderr (fd 2) reach `output` on
 * the thread that calls into the pool, whole lines at a time, so that it can write them
 * where they cannot mix with its own (by default: fwrite to taskrun's stdout or stderr).
 * NULL: the default. */
void tr_pool_set_output (TrPool *pool,
                         void (*output) (int fd, const char *text, gsize len, gpointer data),
                         gpointer data);

/* No more submissions (the retries of tasks already submitted still run). */
void tr_pool_close (TrPool *pool);
/* Waits until every submitted task has finished and its callbacks have run (and, after
 * tr_pool_close, until the workers have exited). */
void tr_pool_join (TrPool *pool);
/* Stops the workers now: tasks not yet finished fail with TR_TASK_ERROR_TERMINATED and
 * their error callbacks run during the next join. */
void tr_pool_terminate (TrPool *pool);
/* Terminates if tasks are still running, and runs their error callbacks (each a
 * TR_TASK_ERROR_TERMINATED), then frees the pool.  A TrAsync may outlive its pool: it is
 * then done, and can still be read and unref'd. */
void tr_pool_free (TrPool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrPool, tr_pool_free)

G_END_DECLS

#endif /* TASKRUN_POOL_H */
