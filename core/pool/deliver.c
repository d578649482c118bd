/* deliver.c — the main thread's half of a hand-over: it takes the I/O thread's batches
 * of finished records from shared.results (waiting on shared.results_fd, see handoff.c),
 * runs each task's callbacks, and decides whether a failed attempt runs again.
 *
 * Owns: handoff_pump, the one deliver() for a single task and a bundle, the one place
 * that decides about a retry (runs_again), the writing of the workers' lines and the
 * handing of the workers' events to the caller that watches them.
 * Does not own: the hand-over itself (handoff.c), what a record holds (record.c), a
 * bundle's bytes (bundle.c).  Main thread only.
 */
#include "private.h"
#include "bundle.h"

#include <poll.h>
#include <stdio.h>
#include <unistd.h>

/* Whether a failed attempt runs again: the one place that decides.  After close the
 * retries of tasks already in still run (join waits for them); once the I/O thread has
 * stopped, or the job was stopped, nothing can. */
static gboolean
runs_again (TrPool *pool, const GError *error, guint attempt, gsize payload_len)
{
  if (!error || attempt > pool->settings.retries || pool->main.joined ||
      g_atomic_int_get (&pool->shared.cancel_req) ||
      g_atomic_int_get (&pool->shared.terminate_req) ||
      payload_len > MAX_PAYLOAD) /* it can never be sent */
    return FALSE;
  return !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED) &&
         !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_TERMINATED) &&
         !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
}

/* One attempt's view to the caller's callbacks: an attempt that will run again reaches
 * the error callback only when the caller asked for attempts. */
static void
call_back (TrPool *pool, const RecordCaller *caller, TrResult *v, gboolean again)
{
  v->final = !again;
  pool->main.outstanding--;
  TrResultFunc cb = v->error ? caller->error_callback : caller->callback;
  if (cb && (!again || caller->report_attempts))
    cb (v, caller->user_data);
}

/* One view serves all the tasks of a bundle: what they share is set once. */
static void
deliver_bundle (TrPool *pool, TrTaskRecord *b)
{
  TrResult v = { .worker = b->outcome.worker, .worker_pid = b->outcome.pid, .attempt = 1 };
  BundleCursor c;
  BundleItem it;
  bundle_cursor_init (&c, b);
  while (bundle_cursor_next (&c, &it)) {
    v.seq = it.seq;
    v.description = it.description;
    v.data = it.res.data;
    v.len = it.res.len;
    v.seconds = it.res.run_ns / 1e9;
    v.units = it.units;
    v.start_time = it.res.start_us / 1e6;
    v.payload = it.payload;
    v.sent = it.payload_len;
    if (G_LIKELY (!it.res.failed)) {
      call_back (pool, &b->caller, &v, FALSE);
      continue;
    }
    g_autoptr (GError) error = answers_result_error (&it.res);
    v.error = error;
    v.error_code = (int) it.res.code;
    v.exit_value = 1;
    gboolean again = runs_again (pool, error, 1, v.sent);
    call_back (pool, &b->caller, &v, again);
    if (again) {
      TrTaskRecord *a = record_new (&pool->main, pool, v.seq, v.description, NULL, v.payload,
                                    v.sent, v.units);
      record_stream_init (a, b->caller.user_data, it.order);
      a->task.attempt = 2;
      TaskQueue q = { 0 };
      tq_push_tail (&q, a);
      handoff_submit (pool, &q);
    }
    v.error = NULL;
    v.error_code = v.exit_value = 0;
  }
  bundle_recycle (&pool->main, b);
}

/* Main thread: a finished record to its callbacks, then run again or let go. */
static void
deliver (TrPool *pool, TrTaskRecord *a)
{
  if (a->bundle) {
    deliver_bundle (pool, a);
    return;
  }
  const GError *error = a->outcome.error;
  TrResult *v = &a->caller.view;
  v->seq = a->task.seq;
  v->description = a->task.description ? a->task.description : "";
  v->data = a->outcome.result;
  v->len = a->outcome.result_len;
  v->error = error;
  v->error_code = error ? error->code : 0;
  v->worker = a->outcome.worker;
  v->worker_pid = a->outcome.pid;
  v->seconds = a->outcome.seconds;
  v->units = a->task.units;
  v->attempt = a->task.attempt;
  v->start_time = a->outcome.start_time;
  v->payload = a->task.payload;
  v->sent = a->task.payload_len;
  v->exit_value = error ? a->outcome.exit_value : 0;
  v->signal = error ? a->outcome.signal : 0;
  v->files = a->outcome.files;
  v->n_files = a->outcome.n_files;

  gboolean again = runs_again (pool, error, a->task.attempt, a->task.payload_len);
  a->caller.done = !again; /* before its callback, which may ask */
  call_back (pool, &a->caller, v, again);
  if (!again) {
    tr_async_unref (a);
    return;
  }
  record_clear_outcome (a);
  a->task.attempt++;
  a->outcome.worker = 0;
  a->outcome.pid = 0;
  TaskQueue q = { 0 };
  tq_push_tail (&q, a);
  handoff_submit (pool, &q);
}

/* Main thread: writes a hand-over of workers' lines, hands over its events, and frees it. */
void
handoff_deliver_output (TrPool *pool, GPtrArray *lines)
{
  for (int s = 0; s < 2; s++) {
    GString *text = g_ptr_array_index (lines, 1 + s);
    if (text->len) {
      if (pool->main.output_func) {
        pool->main.output_func (s + 1, text->str, text->len, pool->main.output_data);
      } else {
        fwrite (text->str, 1, text->len, s ? stderr : stdout);
        fflush (s ? stderr : stdout);
      }
      g_atomic_int_add (&pool->shared.output_backlog, -(gint) text->len);
    }
    g_string_free (text, TRUE);
  }
  GArray *events = g_ptr_array_index (lines, 3);
  for (guint i = 0; pool->main.event_func && i < events->len; i++)
    pool->main.event_func (&g_array_index (events, TrPoolEvent, i), pool->main.event_data);
  g_array_unref (events);
  g_ptr_array_unref (lines);
}

/* Main thread: the next hand-over, waiting up to timeout_us (< 0: as long as it takes);
 * NULL if none came. */
static GPtrArray *
results_pop (TrPool *pool, gint64 timeout_us)
{
  PoolShared *sh = &pool->shared;
  GPtrArray *batch = g_async_queue_try_pop (sh->results);
  if (batch || timeout_us == 0)
    return batch;
  gint64 now = g_get_monotonic_time ();
  gint64 deadline = timeout_us < 0                  ? -1
                    : timeout_us > G_MAXINT64 - now ? G_MAXINT64
                                                    : now + timeout_us;
  for (;;) {
    g_atomic_int_set (&sh->main_waiting, 1);
    batch = g_async_queue_try_pop (sh->results);
    if (batch)
      break;
    gint64 left = deadline < 0 ? -1 : deadline - g_get_monotonic_time ();
    if (deadline >= 0 && left <= 0)
      break;
    struct timespec ts = { .tv_sec = left / G_USEC_PER_SEC,
                           .tv_nsec = (left % G_USEC_PER_SEC) * 1000 };
    struct pollfd fd = { .fd = sh->results_fd, .events = POLLIN };
    ppoll (&fd, 1, left < 0 ? NULL : &ts, NULL);
    guint64 count;
    if (read (sh->results_fd, &count, sizeof count) < 0) {
      /* EAGAIN: woken by the timeout, or a signal */
    }
  }
  g_atomic_int_set (&sh->main_waiting, 0);
  return batch;
}

/* Main thread: handles one hand-over.  timeout_us < 0: waits as long as it takes.
 * FALSE: there was none. */
gboolean
handoff_pump (TrPool *pool, gint64 timeout_us)
{
  PoolMain *m = &pool->main;
  if (m->delivering && m->delivering_next < m->delivering->len) {
    /* called from a callback: the rest of its hand-over comes first */
    deliver (pool, g_ptr_array_index (m->delivering, m->delivering_next++));
    return TRUE;
  }
  GPtrArray *batch = results_pop (pool, timeout_us);
  if (!batch)
    return FALSE;
  if (batch->len && g_ptr_array_index (batch, 0) == tr_pool_output_tag) {
    handoff_deliver_output (pool, batch);
    return TRUE;
  }
  GPtrArray *outer = m->delivering; /* a callback's hand-over, all delivered already */
  guint outer_next = m->delivering_next;
  m->delivering = batch;
  m->delivering_next = 0;
  gint64 began = m->phase_func ? g_get_monotonic_time () : 0;
  while (m->delivering_next < batch->len)
    deliver (pool, g_ptr_array_index (batch, m->delivering_next++));
  if (m->phase_func)
    m->phase_func (TR_POOL_PHASE_RESULTS, began, g_get_monotonic_time (), batch->len,
                   m->phase_data);
  m->delivering = outer;
  m->delivering_next = outer_next;
  g_ptr_array_unref (batch);
  return TRUE;
}

