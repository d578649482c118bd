/* handoff.c — everything that crosses between the main thread and the I/O thread.
 *
 * Main thread to I/O thread: submitted records go into shared.submitted under the lock,
 * and the eventfd is written only when that queue goes from empty to non-empty; the I/O
 * thread takes the whole queue at once.  I/O thread to main thread: finished records go
 * in batches (GPtrArray) onto shared.results, a GAsyncQueue, and so do the workers'
 * lines (tr_pool_output_tag); the main thread pops them whenever it calls into the pool
 * and runs the callbacks, so a slow callback only delays the next batch's callbacks.
 *
 * Owns: both directions of that traffic, the one deliver() for a single task and a
 * bundle, and the one place that decides whether a failed attempt runs again.
 * Does not own: when a hand-over is due (schedule.h), what a record holds (record.c),
 * a bundle's bytes (bundle.c).  The only file of the pool that both threads run; each
 * function says whose it is.
 */
#include "private.h"
#include "bundle.h"

#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

const char tr_pool_output_tag[] = "output";

/* ---- I/O thread ------------------------------------------------------------------- */

/* I/O thread: a finished record, to go with the next hand-over. */
void
handoff_complete (TrPool *pool, TrTaskRecord *a)
{
  PoolIo *io = &pool->io;
  if (io->completed->len == 0)
    io->completed_since = g_get_monotonic_time ();
  g_ptr_array_add (io->completed, a);
}

/* I/O thread: a record that fails with `message`; a bundle fails task by task. */
void
handoff_fail (TrPool *pool, TrTaskRecord *a, TrTaskErrorCode code, const char *message,
              int exit_value, int signal)
{
  if (a->bundle) {
    TaskQueue q = { 0 };
    tq_push_tail (&q, a);
    tq_unbundle_head (&q);
    while ((a = tq_pop_head (&q)))
      handoff_fail (pool, a, code, message, exit_value, signal);
    return;
  }
  g_clear_error (&a->outcome.error);
  a->outcome.error = g_error_new_literal (TR_TASK_ERROR, code, message);
  a->outcome.exit_value = exit_value;
  a->outcome.signal = signal;
  handoff_complete (pool, a);
}

/* I/O thread: every record of q fails (not run: exit value -1). */
void
handoff_fail_queue (TrPool *pool, TaskQueue *q, TrTaskErrorCode code, const char *message)
{
  TrTaskRecord *a;
  while ((a = tq_pop_head (q)))
    handoff_fail (pool, a, code, message, -1, 0);
}

/* I/O thread: hands over what it holds.  Lines go before the finished tasks read with
 * them: a task prints while it runs, and a worker's last words before the failure of
 * the task it died in. */
void
handoff_flush (TrPool *pool)
{
  PoolIo *io = &pool->io;
  gsize out_bytes = io->output[0]->len + io->output[1]->len;
  if (out_bytes) {
    GPtrArray *lines = g_ptr_array_new ();
    g_ptr_array_add (lines, (gpointer) tr_pool_output_tag);
    for (int s = 0; s < 2; s++) {
      g_ptr_array_add (lines, io->output[s]);
      io->output[s] = g_string_new (NULL);
    }
    g_atomic_int_add (&pool->shared.output_backlog, (gint) out_bytes);
    g_async_queue_push (pool->shared.results, lines);
  }
  if (io->completed->len == 0)
    return;
  g_async_queue_push (pool->shared.results, io->completed);
  io->completed = g_ptr_array_new ();
}

/* I/O thread: hands over now if it is due (tr_sched_hand_over_wait_us).  Returns the
 * poll timeout (ms) until it will be, or -1. */
int
handoff_due_ms (TrPool *pool, gboolean input_ended)
{
  PoolIo *io = &pool->io;
  gsize out_bytes = io->output[0]->len + io->output[1]->len;
  if (io->completed->len == 0 && out_bytes == 0)
    return -1;
  gint64 since = io->completed->len == 0 ? io->output_since
                 : out_bytes == 0        ? io->completed_since
                                         : MIN (io->completed_since, io->output_since);
  guint held = 0;
  for (guint i = 0; i < pool->settings.n_workers; i++)
    held += io->workers[i].inflight.length;
  gint64 wait_us = tr_sched_hand_over_wait_us (held, io->ready.length, input_ended,
                                               g_get_monotonic_time () - since,
                                               io->completed->len, out_bytes);
  if (wait_us == 0) {
    handoff_flush (pool);
    return -1;
  }
  return (int) ((wait_us + 999) / 1000);
}

/* I/O thread: moves what the main thread submitted to the ready queue.  The queue is
 * taken whole: a walk over freshly made records would fetch each one from the other
 * core's cache (a quarter of this thread's time with millions of one-number tasks);
 * only a submission known to hold a task too large to send is walked, to fail it. */
void
handoff_take_submitted (TrPool *pool)
{
  PoolShared *sh = &pool->shared;
  PoolIo *io = &pool->io;
  g_mutex_lock (&sh->lock);
  TaskQueue got = sh->submitted;
  guint oversize = sh->submitted_oversize;
  sh->submitted = (TaskQueue) { 0 };
  sh->submitted_oversize = 0;
  g_mutex_unlock (&sh->lock);
  if (io->terminated || io->cancelled) {
    handoff_fail_queue (pool, &got, TR_TASK_ERROR_CANCELLED,
                        io->terminated ? "cancelled: the pool was terminated"
                                       : "not run: the job was stopped before it started");
    return;
  }
  if (!oversize) {
    tq_append (&io->ready, &got);
    return;
  }
  TrTaskRecord *a;
  while ((a = tq_pop_head (&got))) {
    if (a->task.payload_len > MAX_PAYLOAD) {
      g_autofree char *msg = g_strdup_printf ("the task's payload (%" G_GSIZE_FORMAT " bytes) is "
                                              "larger than one message can carry (%u bytes)",
                                              a->task.payload_len, (guint) MAX_PAYLOAD);
      handoff_fail (pool, a, TR_TASK_ERROR_FAILED, msg, -1, 0);
    } else {
      tq_push_tail (&io->ready, a);
    }
  }
}

/* ---- main thread ------------------------------------------------------------------ */

/* Main thread (or a signal handler): wakes the I/O thread. */
void
handoff_wake_io (TrPool *pool)
{
  guint64 one = 1;
  if (write (pool->shared.wake_fd, &one, sizeof one) < 0) {
    /* EAGAIN: the counter is already non-zero, the thread will wake */
  }
}

/* Main thread: submits the records of q. */
void
handoff_submit (TrPool *pool, TaskQueue *q)
{
  if (!q->head)
    return;
  PoolShared *sh = &pool->shared;
  pool->main.outstanding += q->length;
  g_mutex_lock (&sh->lock);
  gboolean was_empty = sh->submitted.head == NULL;
  tq_append (&sh->submitted, q);
  sh->submitted_oversize += pool->main.oversize_made;
  pool->main.oversize_made = 0;
  g_mutex_unlock (&sh->lock);
  if (was_empty)
    handoff_wake_io (pool);
}

/* Main thread: tells the I/O thread whether more submissions are on their way.  With
 * none coming it shares out the tail of the work; a scheduling hint, not a promise. */
void
handoff_set_input_ended (TrPool *pool, gboolean ended)
{
  if (g_atomic_int_get (&pool->shared.input_ended) != ended) {
    g_atomic_int_set (&pool->shared.input_ended, ended);
    if (ended)
      handoff_wake_io (pool);
  }
}

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

/* Main thread: writes a hand-over of workers' lines and frees it. */
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
  g_ptr_array_unref (lines);
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
  GAsyncQueue *results = pool->shared.results;
  GPtrArray *batch;
  if (timeout_us < 0)
    batch = g_async_queue_pop (results);
  else if (timeout_us == 0)
    batch = g_async_queue_try_pop (results);
  else
    batch = g_async_queue_timeout_pop (results, (guint64) timeout_us);
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
  while (m->delivering_next < batch->len)
    deliver (pool, g_ptr_array_index (batch, m->delivering_next++));
  m->delivering = outer;
  m->delivering_next = outer_next;
  g_ptr_array_unref (batch);
  return TRUE;
}

/* Main thread, before the I/O thread starts. */
void
handoff_init (TrPool *pool)
{
  PoolShared *sh = &pool->shared;
  g_mutex_init (&sh->lock);
  g_cond_init (&sh->cond);
  sh->results = g_async_queue_new ();
  sh->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* Main thread: a record that is not submitted, failed as cancelled with `why`, goes
 * the way of every result, so that its callbacks run in order with the others. */
void
handoff_refuse (TrPool *pool, TrTaskRecord *a, const char *why)
{
  a->outcome.error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED, why);
  pool->main.outstanding++;
  GPtrArray *one = g_ptr_array_new ();
  g_ptr_array_add (one, a);
  g_async_queue_push (pool->shared.results, one);
}

/* Main thread, the I/O thread joined: what was handed over and not delivered is let
 * go, but a worker's last words (why its worker_init failed, say) are written all the
 * same; then the shared part is freed. */
void
handoff_free (TrPool *pool)
{
  PoolShared *sh = &pool->shared;
  GPtrArray *batch;
  while ((batch = g_async_queue_try_pop (sh->results))) {
    if (batch->len && g_ptr_array_index (batch, 0) == tr_pool_output_tag) {
      handoff_deliver_output (pool, batch);
      continue;
    }
    for (guint i = 0; i < batch->len; i++)
      tr_async_unref (g_ptr_array_index (batch, i));
    g_ptr_array_unref (batch);
  }
  g_async_queue_unref (sh->results);
  TrTaskRecord *a;
  while ((a = tq_pop_head (&sh->submitted)))
    tr_async_unref (a);
  g_free (sh->start_error);
  if (sh->wake_fd >= 0)
    close (sh->wake_fd);
  g_mutex_clear (&sh->lock);
  g_cond_clear (&sh->cond);
}
