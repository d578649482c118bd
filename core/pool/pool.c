/* pool.c — the process pool's public API (main thread): new, free, close, join,
 * terminate, apply, apply_async and its handle, and the pool's settings.
 *
 * A pool is a fixed set of reused workers fed by one I/O thread (io.c).  The thread that
 * created the pool (the "main thread") submits tasks and runs every callback, one at a
 * time, whenever it calls into the pool; the I/O thread owns the workers.  What crosses
 * between the two is in handoff.c; the types, and which thread owns each part of the
 * pool, in private.h.
 *
 * Owns: PoolSettings (made here, before the I/O thread starts), the start of the I/O
 * thread and the wait for the workers' start, and the end of both.
 * Does not own: streams and map (stream.c), delivery (handoff.c), anything of a worker.
 */
#include "private.h"

#include <pthread.h>

#include <math.h>


TrPool *
tr_pool_new (TrPlugin *plugin, const TrConfig *config, const TrPoolOptions *options,
             GError **error)
{
  g_return_val_if_fail (plugin != NULL, NULL);
  return tr_pool_new_on_link (&tr_link_local, plugin, config, options, error);
}

/* The bounds of TrPoolOptions (pool.h): the CLI's, so that a library caller gets the
 * same pools a job file can ask for. */
#define MAX_BATCH 65536
#define MAX_SECONDS 1e9 /* about 31 years */

static gboolean
seconds_ok (const char *name, double *value, double infinite_as, GError **error)
{
  if (isinf (*value) && *value > 0) {
    *value = infinite_as;
    return TRUE;
  }
  if (*value >= 0 && *value <= MAX_SECONDS)
    return TRUE;
  g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER,
               "TrPoolOptions.%s is %g: it must be 0 or more seconds, up to %g, or infinity",
               name, *value, MAX_SECONDS);
  return FALSE;
}

/* `options` checked into `out`: FALSE, naming the field, when one is out of range. */
static gboolean
options_check (const TrPoolOptions *options, TrPoolOptions *out, GError **error)
{
  *out = *options;
  if (out->workers > TR_WORKERS_MAX || out->batch > MAX_BATCH) {
    gboolean w = out->workers > TR_WORKERS_MAX;
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER,
                 "TrPoolOptions.%s is %u: it must be at most %u", w ? "workers" : "batch",
                 w ? out->workers : out->batch, w ? TR_WORKERS_MAX : MAX_BATCH);
    return FALSE;
  }
  return seconds_ok ("task_timeout", &out->task_timeout, 0, error) &&
         seconds_ok ("start_timeout", &out->start_timeout, MAX_SECONDS, error);
}

static void
settings_init (PoolSettings *set, const TrLinkClass *link_class, TrPlugin *plugin,
               const TrConfig *config, const TrPoolOptions *options)
{
  set->plugin = plugin;
  set->config_pairs = config ? tr_config_to_pairs (config) : g_ptr_array_new ();
  set->n_workers = options->workers ? options->workers : g_get_num_processors ();
  set->max_tasks = options->max_tasks_per_worker;
  set->batch = options->batch;
  set->timeout_us = options->task_timeout > 0
                        ? MAX ((gint64) 1, (gint64) (options->task_timeout * G_USEC_PER_SEC))
                        : 0;
  set->retries = options->retries;
  set->start_timeout_us = (gint64) ((options->start_timeout > 0 ? options->start_timeout : 60) *
                                    G_USEC_PER_SEC);
  /* an in-program plugin's workers are this program, run again: /proc/self/exe is its
   * file as it was started, even once the file on disk was replaced (a rebuild) */
  if (options->worker_program)
    set->program = g_strdup (options->worker_program);
  else if (tr_plugin_is_in_program (plugin))
    set->program = g_strdup ("/proc/self/exe");
  else
    set->program = tr_paths_worker_program ();
  set->link_class = link_class;
}

/* How many times this process's line has forked since it loaded the library: a child's
 * copy of a pool is not the pool (its I/O thread and its workers are the parent's), and
 * a call on it must not stop the parent's workers or wait for an I/O thread it has not. */
static guint fork_generation;

static void
on_fork_child (void)
{
  fork_generation++;
}

gboolean
pool_owned (const TrPool *pool, const char *func)
{
  if (pool->main.owner == g_thread_self () && pool->main.fork_generation == fork_generation)
    return TRUE;
  g_critical ("%s: a pool is used only by the thread that made it, in the process that made "
              "it (not from another thread, not in a child after fork)", func);
  return FALSE;
}

TrPool *
tr_pool_new_on_link (const TrLinkClass *link_class, TrPlugin *plugin, const TrConfig *config,
                     const TrPoolOptions *options, GError **error)
{
  static gsize atfork_done = 0;
  if (g_once_init_enter (&atfork_done)) {
    pthread_atfork (NULL, NULL, on_fork_child);
    g_once_init_leave (&atfork_done, 1);
  }
  TrPoolOptions defaults = { 0 }, checked;
  if (!options)
    options = &defaults;
  if (!options_check (options, &checked, error))
    return NULL;
  options = &checked;
  if (tr_worker_is_stray ()) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER,
                 "this process was started as a pool's worker, but its main went on to "
                 "start a pool: main must call tr_worker_main_if_worker (argc, argv) first");
    return NULL;
  }
  TrPool *pool = g_new0 (TrPool, 1);
  pool->main.owner = g_thread_self ();
  pool->main.fork_generation = fork_generation;
  settings_init (&pool->settings, link_class, plugin, config, options);
  PoolShared *sh = &pool->shared;
  handoff_init (pool);
  io_state_init (pool);

  if (!g_file_test (pool->settings.program, G_FILE_TEST_IS_EXECUTABLE)) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER,
                 "the worker program %s is missing or not executable", pool->settings.program);
    tr_pool_free (pool);
    return NULL;
  }
  pool->main.io_thread = g_thread_try_new ("taskrun-io", io_main, pool, error);
  if (!pool->main.io_thread) {
    tr_pool_free (pool);
    return NULL;
  }
  record_preallocate (&pool->main, PREALLOCATED_TASKS); /* while the workers start */
  gboolean interrupted = FALSE;
  g_mutex_lock (&sh->lock);
  while (!sh->started && !interrupted) {
    g_cond_wait_until (&sh->cond, &sh->lock, g_get_monotonic_time () + G_USEC_PER_SEC / 10);
    interrupted = options->interrupted && *options->interrupted;
  }
  char *start_error = g_steal_pointer (&sh->start_error);
  gboolean started = sh->started;
  g_mutex_unlock (&sh->lock);
  if (interrupted && !started) {
    g_free (start_error);
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_TERMINATED,
                 "interrupted while the workers were starting");
    tr_pool_request_terminate (pool);
    tr_pool_free (pool);
    return NULL;
  }
  if (start_error) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER, "a worker could not start: %s",
                 start_error);
    g_free (start_error);
    tr_pool_free (pool);
    return NULL;
  }
  return pool;
}

guint
tr_pool_get_workers (TrPool *pool)
{
  return pool->settings.n_workers;
}

static TrTaskRecord *
submit_one (TrPool *pool, guint64 seq, const char *description, GBytes *payload, guint64 units,
            TrResultFunc callback, TrResultFunc error_callback, gpointer user_data)
{
  PoolMain *m = &pool->main;
  TrTaskRecord *a = record_new (m, pool, seq, description, payload, NULL, 0, units);
  a->caller.callback = callback;
  a->caller.error_callback = error_callback;
  a->caller.user_data = user_data;
  if (m->closed || m->joined) {
    handoff_refuse (pool, a, "the pool is closed: no more tasks can be submitted");
    return a;
  }
  handoff_set_input_ended (pool, FALSE);
  TaskQueue q = { 0 };
  tq_push_tail (&q, a);
  handoff_submit (pool, &q);
  return a;
}

TrAsync *
tr_pool_apply_async (TrPool *pool, const char *description, GBytes *payload,
                     TrResultFunc callback, TrResultFunc error_callback, gpointer user_data)
{
  g_return_val_if_fail (pool != NULL && payload != NULL, NULL);
  if (!pool_owned (pool, G_STRFUNC))
    return NULL;
  TrTaskRecord *a = submit_one (pool, 0, description, payload, 1, callback, error_callback, user_data);
  return record_ref (a);
}

gboolean
tr_async_ready (TrAsync *a)
{
  while (!a->caller.done && handoff_pump (a->pool, 0))
    ;
  return a->caller.done;
}

gboolean
tr_async_wait (TrAsync *a, gint64 timeout_us)
{
  if (a->caller.done)
    return TRUE; /* done: the pool is not touched (it may be gone) */
  if (!pool_owned (a->pool, G_STRFUNC))
    return FALSE;
  if (timeout_us < 0) {
    while (!a->caller.done)
      handoff_pump (a->pool, -1);
    return TRUE;
  }
  gint64 now = g_get_monotonic_time ();
  /* a timeout as long as G_MAXINT64 must not overflow: it is "for good" */
  gint64 deadline = timeout_us > G_MAXINT64 - now ? G_MAXINT64 : now + timeout_us;
  while (!a->caller.done) {
    gint64 left = deadline - g_get_monotonic_time ();
    if (left <= 0)
      return tr_async_ready (a);
    handoff_pump (a->pool, left);
  }
  return TRUE;
}

GBytes *
tr_async_get (TrAsync *a, GError **error)
{
  tr_async_wait (a, -1);
  if (a->outcome.error) {
    g_propagate_error (error, g_error_copy (a->outcome.error));
    return NULL;
  }
  return g_bytes_new (a->outcome.result, a->outcome.result_len);
}

const TrResult *
tr_async_peek_result (TrAsync *a)
{
  return a->caller.done ? &a->caller.view : NULL;
}

GBytes *
tr_pool_apply (TrPool *pool, const char *description, GBytes *payload, GError **error)
{
  g_return_val_if_fail (pool != NULL && payload != NULL, NULL);
  if (!pool_owned (pool, G_STRFUNC))
    return NULL;
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, description, payload, NULL, NULL, NULL);
  return tr_async_get (a, error);
}

/* Safe from a signal handler: atomics and a write(2). */
void
tr_pool_stop_feeding (TrPool *pool)
{
  g_atomic_int_set (&pool->shared.cancel_req, 1);
  handoff_wake_io (pool);
}

void
tr_pool_request_terminate (TrPool *pool)
{
  g_atomic_int_set (&pool->shared.terminate_req, 1);
  handoff_wake_io (pool);
}

void
tr_pool_set_tick (TrPool *pool, void (*tick) (gpointer data), gpointer data)
{
  pool->main.tick = tick;
  pool->main.tick_data = data;
}

void
tr_pool_set_output (TrPool *pool,
                    void (*output) (int fd, const char *text, gsize len, gpointer data),
                    gpointer data)
{
  pool->main.output_func = output;
  pool->main.output_data = data;
}

void
tr_pool_set_event_func (TrPool *pool, TrPoolEventFunc func, gpointer data)
{
  pool->main.event_func = func;
  pool->main.event_data = data;
}

void
tr_pool_set_phase_func (TrPool *pool, TrPoolPhaseFunc func, gpointer data)
{
  pool->main.phase_func = func;
  pool->main.phase_data = data;
}

void
tr_pool_event_clear (gpointer event)
{
  TrPoolEvent *ev = event;
  g_free (ev->where);
  g_free (ev->text);
}

void
tr_pool_close (TrPool *pool)
{
  if (!pool_owned (pool, G_STRFUNC))
    return;
  pool->main.closed = TRUE;
  handoff_set_input_ended (pool, TRUE);
}

static void
stop_io_thread (TrPool *pool)
{
  if (!pool->main.io_thread)
    return;
  g_atomic_int_set (&pool->shared.shutdown_req, 1);
  handoff_wake_io (pool);
  g_thread_join (pool->main.io_thread);
  pool->main.io_thread = NULL;
}

void
tr_pool_join (TrPool *pool)
{
  if (!pool_owned (pool, G_STRFUNC))
    return;
  PoolMain *m = &pool->main;
  while (m->outstanding > 0)
    handoff_pump (pool, -1);
  if (m->closed && !m->joined) {
    stop_io_thread (pool);
    m->joined = TRUE;
    /* to the last hand-over: the workers' last lines may come after every result */
    while (handoff_pump (pool, 0))
      ;
  }
}

void
tr_pool_terminate (TrPool *pool)
{
  if (!pool_owned (pool, G_STRFUNC))
    return;
  if (!pool->main.io_thread)
    return;
  PoolShared *sh = &pool->shared;
  g_atomic_int_set (&sh->terminate_req, 1);
  handoff_wake_io (pool);
  g_mutex_lock (&sh->lock);
  while (!sh->terminated)
    g_cond_wait (&sh->cond, &sh->lock);
  g_mutex_unlock (&sh->lock);
}

void
tr_pool_free (TrPool *pool)
{
  if (!pool)
    return;
  if (pool->main.fork_generation != fork_generation)
    return; /* a child's copy: its memory is left, the parent's workers untouched */
  if (!pool_owned (pool, G_STRFUNC))
    return;
  if (pool->main.io_thread) {
    /* every task submitted gets its callback, and every handle its end: a TrAsync may
     * outlive the pool (it is then done, and touches the pool no more) */
    if (pool->main.outstanding > 0) {
      tr_pool_terminate (pool);
      tr_pool_join (pool);
    }
    stop_io_thread (pool);
  }
  /* what is still to be delivered (a task refused after the join, say) gets its
   * callbacks, and its handle its end, before the pool is gone */
  while (handoff_pump (pool, 0))
    ;
  /* the I/O thread is joined: the main thread owns every part now */
  handoff_free (pool);
  TaskQueue left = { 0 };
  io_state_free (pool, &left);
  TrTaskRecord *a;
  while ((a = tq_pop_head (&left)))
    tr_async_unref (a);
  record_free_lists (&pool->main);
  g_free (pool->settings.program);
  g_ptr_array_unref (pool->settings.config_pairs);
  g_free (pool);
}
