/* handoff.c — everything that crosses between the main thread and the I/O thread,
 * but the delivery of results to their callbacks (deliver.c).
 *
 * Main thread to I/O thread: submitted records go into shared.submitted under the lock,
 * and the eventfd is written only when that queue goes from empty to non-empty; the I/O
 * thread takes the whole queue at once.  I/O thread to main thread: finished records go
 * in batches (GPtrArray) onto shared.results, a GAsyncQueue, and so do the workers'
 * lines (tr_pool_output_tag); the main thread pops them whenever it calls into the pool
 * and runs the callbacks (deliver.c), so a slow callback only delays the next batch's
 * callbacks.  The main thread waits for them on an eventfd, not in the queue's pop:
 * GAsyncQueue signals a waiter while it holds its lock, and the waiter, woken, sleeps
 * again on that lock (two more futex calls and context switches per hand-over, a tenth
 * of an apply_async round trip on one CPU); the eventfd is written only while the main
 * thread says it waits (main_waiting).
 *
 * Owns: both directions of that traffic: submission, the hand-over of results and its
 * wake-up, the shared part's life.
 * Does not own: when a hand-over is due (schedule.h), what a record holds (record.c),
 * a bundle's bytes (bundle.c), callbacks and retries (deliver.c).  With deliver.c, the
 * only file of the pool that both threads run; each function says whose it is.
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

/* I/O thread: one hand-over onto the results queue; a waiting main thread is woken.  The
 * waiter sets main_waiting before it looks at the queue, and this reads it after the
 * push: one of the two sees the other. */
static void
results_push (TrPool *pool, GPtrArray *batch)
{
  PoolShared *sh = &pool->shared;
  g_async_queue_push (sh->results, batch);
  if (g_atomic_int_get (&sh->main_waiting)) {
    guint64 one = 1;
    if (write (sh->results_fd, &one, sizeof one) < 0) {
      /* EAGAIN: the counter is full, so the waiter is woken already */
    }
  }
}

/* I/O thread: hands over what it holds.  Lines go before the finished tasks read with
 * them: a task prints while it runs, and a worker's last words before the failure of
 * the task it died in. */
void
handoff_flush (TrPool *pool)
{
  PoolIo *io = &pool->io;
  gsize out_bytes = io->output[0]->len + io->output[1]->len;
  if (out_bytes || io->events->len) {
    GPtrArray *lines = g_ptr_array_new ();
    g_ptr_array_add (lines, (gpointer) tr_pool_output_tag);
    for (int s = 0; s < 2; s++) {
      g_ptr_array_add (lines, io->output[s]);
      io->output[s] = g_string_new (NULL);
    }
    g_ptr_array_add (lines, io->events);
    io->events = g_array_new (FALSE, FALSE, sizeof (TrPoolEvent));
    g_array_set_clear_func (io->events, tr_pool_event_clear);
    g_atomic_int_add (&pool->shared.output_backlog, (gint) out_bytes);
    results_push (pool, lines);
  }
  if (io->completed->len == 0)
    return;
  results_push (pool, io->completed);
  io->completed = g_ptr_array_new ();
}

/* I/O thread: hands over now if it is due (tr_sched_hand_over_wait_us).  Returns the
 * poll timeout (ms) until it will be, or -1. */
int
handoff_due_ms (TrPool *pool, gboolean input_ended)
{
  PoolIo *io = &pool->io;
  /* an event weighs in as a line would */
  gsize out_bytes = io->output[0]->len + io->output[1]->len + io->events->len;
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

/* Main thread, before the I/O thread starts. */
void
handoff_init (TrPool *pool)
{
  PoolShared *sh = &pool->shared;
  g_mutex_init (&sh->lock);
  g_cond_init (&sh->cond);
  sh->results = g_async_queue_new ();
  sh->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  sh->results_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
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
  if (sh->results_fd >= 0)
    close (sh->results_fd);
  g_mutex_clear (&sh->lock);
  g_cond_clear (&sh->cond);
}
