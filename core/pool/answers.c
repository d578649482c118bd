/* answers.c — what a worker sends, read and checked (I/O thread): HELLO, INIT_FAILED
 * and RESULTS, and the writing of what the pool queued for it.
 *
 * Owns: matching results to the tasks in flight, the measured task times (the means
 * the schedule follows), and the rules a worker's frames must keep.
 * Does not own: what happens to a worker that breaks them (slots.c, which ends it when
 * answers_read says READ_BAD), nor when results cross to the main thread (handoff.c).
 */
#include "private.h"

#include <errno.h>
#include <string.h>

#define READ_CHUNK 262144

/* I/O thread: tasks a worker held but did not run (it died, or sent them back) go to
 * the head of the queue, in order; once the job was stopped they are not run at all. */
void
answers_requeue_unrun (TrPool *pool, TaskQueue *back)
{
  if (pool->io.cancelled)
    handoff_fail_queue (pool, back, TR_TASK_ERROR_CANCELLED,
                        "not run: the job was stopped before it started");
  else
    tq_prepend (&pool->io.ready, back);
}

/* Moves the pool's mean task time and worker w's towards ns, by `weight`. */
static void
measured (TrPool *pool, Worker *w, double ns, double weight, guint tasks)
{
  PoolIo *io = &pool->io;
  io->timed += tasks;
  io->mean_ns = tr_sched_pool_mean (io->have_mean, io->mean_ns, ns, weight);
  io->have_mean = TRUE;
  w->load.mean_ns = tr_sched_worker_mean (w->load.mean_ns, ns, weight);
}

/* The answer to the bundle at the head of w's tasks in flight: when it checks, the
 * bundle keeps a copy and goes to the main thread whole.  FALSE, having changed
 * nothing, for anything else. */
static gboolean
take_bundle_answer (TrPool *pool, Worker *w, const guint8 *body, gsize len)
{
  TrTaskRecord *b = w->inflight.head;
  BundleAnswer sums;
  if (!bundle_check_answer (b, body, len, &sums))
    return FALSE;
  double mean, weight;
  tr_sched_bundle_sample (b->count, sums.sum_ns, sums.max_ns, &mean, &weight);
  measured (pool, w, mean, weight, b->count);
  tq_pop_head (&w->inflight);
  bundle_keep_answer (b, body, len);
  b->outcome.worker = w->slot;
  b->outcome.pid = w->link->pid;
  handoff_complete (pool, b);
  g_queue_pop_head (&w->frames);
  w->clocks.head_started = g_get_monotonic_time ();
  return TRUE;
}

/* The descriptors a record attached: the next ones the link received (they came with
 * the frame's first byte).  Too few (the parent ran out of descriptors, or a worker that
 * lies): the task fails, saying so; the worker is not to blame for this process's limit. */
static void
take_files (TrTaskRecord *a, TrLink *link, guint wanted)
{
  GArray *got = link->received_files;
  guint n = got ? MIN (wanted, got->len) : 0;
  for (guint i = 0; i < n; i++)
    a->outcome.files[i] = g_array_index (got, int, i);
  a->outcome.n_files = n;
  if (n)
    g_array_remove_range (got, 0, n);
  if (n < wanted && !a->outcome.error) {
    a->outcome.error = g_error_new (TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                                    "%u of the %u files holding the task's output did not "
                                    "arrive (taskrun may be out of file descriptors)",
                                    wanted - n, wanted);
    a->outcome.exit_value = 1;
  }
}

GError *
answers_result_error (const TrWireResult *res)
{
  g_autofree char *msg = g_utf8_make_valid ((const char *) res->message, (gssize) res->message_len);
  if (!res->domain_len)
    return g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_FAILED, msg);
  g_autofree char *name = g_strndup ((const char *) res->domain, res->domain_len);
  return g_error_new_literal (g_quark_from_string (name), (gint) res->code, msg);
}

static void
keep_result (TrTaskRecord *a, const TrWireResult *res)
{
  if (res->failed) {
    a->outcome.error = answers_result_error (res);
    a->outcome.exit_value = 1;
  }
  a->outcome.result_len = res->len;
  if (res->len <= INLINE_RESULT) {
    memcpy (a->result_inline, res->data, res->len);
    a->outcome.result = a->result_inline;
  } else {
    a->outcome.result_heap = g_memdup2 (res->data, res->len);
    a->outcome.result = a->outcome.result_heap;
  }
}

/* Handles one RESULTS frame.  FALSE: the frame is not valid for this worker.
 *
 * One pass: each record is read, checked and matched to the next task in flight by id as
 * that task is taken (the tasks of a large frame of tiny ones are seldom in this core's
 * cache, and the frame is read once).  The count must be the oldest TASKS frame's; tasks
 * sent back unrun are all the rest from one on, never the first unless the worker was
 * told CANCEL (it may not start one, but must start a frame it has room for); nothing
 * may follow the last record.  At the first record that breaks a rule (or names the
 * wrong task) the pass stops: the tasks answered before it keep their results, the
 * worker is killed as for any malformed frame, and the rest of that frame is what it
 * was running. */
static gboolean
handle_results (TrPool *pool, Worker *w, const guint8 *body, gsize len)
{
  TrWireReader r;
  TrWireResult res;
  tr_wire_reader_init (&r, body, len);
  guint32 n = tr_wire_get_u32 (&r);
  GList *frame = g_queue_peek_head_link (&w->frames);
  if (n == 0 || !frame || n != GPOINTER_TO_UINT (frame->data))
    return FALSE;
  if (w->inflight.head->bundle) {
    if (take_bundle_answer (pool, w, body, len))
      return TRUE;
    tq_unbundle_head (&w->inflight); /* and read the answer task by task */
  }
  TaskQueue back = { 0 };
  gboolean returning = FALSE;
  guint32 i;
  for (i = 0; i < n; i++) {
    TrTaskRecord *a = w->inflight.head;
    if (!tr_wire_read_result (&r, &res) || (res.returned && i == 0 && !w->load.cancel_sent) ||
        (returning && !res.returned) || !a || a->task.id != res.id ||
        (i == n - 1 && !tr_wire_reader_done (&r)))
      break;
    returning = res.returned;
    tq_pop_head (&w->inflight);
    if (res.returned) {
      /* the answer was full: the task goes again, first, and its attempt does not count */
      tq_push_tail (&back, a);
      w->load.sent--;
      continue;
    }
    a->outcome.worker = w->slot;
    a->outcome.pid = w->link->pid;
    a->outcome.seconds = res.run_ns / 1e9;
    a->outcome.start_time = res.start_us / 1e6;
    measured (pool, w, (double) res.run_ns, SINGLE_TASK_WEIGHT, 1);
    keep_result (a, &res);
    if (res.n_files)
      take_files (a, w->link, res.n_files);
    if (a == w->clocks.timed_out)
      w->clocks.timed_out = NULL; /* it finished after all, as the signal went out */
    handoff_complete (pool, a);
  }
  if (back.head) {
    answers_requeue_unrun (pool, &back);
    guint max_tasks = pool->settings.max_tasks;
    if (w->state == W_RETIRING && max_tasks && w->load.sent < max_tasks)
      w->state = W_READY;
  }
  if (i < n) {
    frame->data = GUINT_TO_POINTER (n - i); /* what is left of it is what the worker ran */
    return FALSE;
  }
  g_queue_pop_head (&w->frames);
  w->clocks.head_started = g_get_monotonic_time ();
  return TRUE;
}

/* Handles one frame from a worker.  FALSE: protocol violation. */
static gboolean
handle_frame (TrPool *pool, Worker *w, TrMsgType type, const guint8 *body, gsize len)
{
  switch (type) {
  case TR_MSG_HELLO:
    if (w->state != W_STARTING)
      return FALSE;
    if (len != 0) /* HELLO says nothing more: the pool knows its worker's pid */
      return FALSE;
    w->state = W_READY;
    w->start_tries = 0;
    events_add (pool, TR_POOL_EVENT_WORKER_READY, w->slot, w->link->pid, w->link->where, NULL);
    return TRUE;
  case TR_MSG_INIT_FAILED: {
    if (w->state != W_STARTING)
      return FALSE;
    TrWireReader r;
    tr_wire_reader_init (&r, body, len);
    g_autofree char *msg = tr_wire_get_str (&r);
    if (!msg)
      return FALSE;
    g_free (pool->io.fatal_error);
    g_autofree char *text = g_utf8_make_valid (msg, -1);
    g_free (w->init_failed);
    w->init_failed = g_strdup (text);
    /* on another host, say which: the others may be fine */
    pool->io.fatal_error = w->link->where ? g_strdup_printf ("worker %u (%s): %s", w->slot,
                                                             w->link->where, text)
                                          : g_steal_pointer (&text);
    return TRUE; /* the worker exits; its end of stream is handled by the caller */
  }
  case TR_MSG_RESULTS:
    if (w->state != W_READY && w->state != W_RETIRING)
      return FALSE;
    return handle_results (pool, w, body, len);
  default:
    return FALSE;
  }
}

/* Reads what the worker sent and handles every complete frame. */
ReadStatus
answers_read (TrPool *pool, Worker *w)
{
  for (;;) {
    gsize have = w->in->len;
    g_byte_array_set_size (w->in, have + READ_CHUNK);
    gssize n = w->link->klass->receive (w->link, w->in->data + have, READ_CHUNK);
    g_byte_array_set_size (w->in, have + (n > 0 ? (gsize) n : 0));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return READ_OK;
    if (n <= 0)
      return READ_GONE; /* end of stream or error: what came before was handled already */
    gsize off = 0;
    for (;;) {
      TrMsgType type;
      const guint8 *body;
      gsize len, consumed;
      TrFrameStatus st = tr_wire_next_frame (w->in->data + off, w->in->len - off, &type, &body,
                                             &len, &consumed);
      if (st == TR_FRAME_INCOMPLETE)
        break;
      if (st == TR_FRAME_BAD || !handle_frame (pool, w, type, body, len))
        return READ_BAD;
      off += consumed;
    }
    if (off)
      g_byte_array_remove_range (w->in, 0, off);
    if ((gsize) n < READ_CHUNK)
      return READ_OK;
  }
}

/* Writes what the pool queued for the worker, as far as its link takes it now. */
void
answers_write (Worker *w)
{
  while (w->out_off < w->out.len) {
    gssize n = w->link->klass->send (w->link, w->out.data + w->out_off, w->out.len - w->out_off);
    if (n <= 0)
      break; /* EAGAIN: wait for POLLOUT; an error shows up as POLLHUP/POLLERR */
    w->out_off += (gsize) n;
  }
  if (w->out_off == w->out.len) {
    w->out.len = 0;
    w->out_off = 0;
  } else if (w->out_off > 1 << 20) {
    tr_wire_buf_consume (&w->out, w->out_off);
    w->out_off = 0;
  }
}
