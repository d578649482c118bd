/* io.c — the I/O thread: its loop, the dispatch of tasks to workers, terminate and
 * cancel, and the end of the job's start.
 *
 * The thread polls every worker's link, exit fd and output pipes, and the eventfd the
 * main thread writes; each round it takes what was submitted, hands tasks out in TASKS
 * frames as the schedule says (schedule.h), writes and reads, and hands finished tasks
 * over (handoff.c).  It never waits for one worker.
 *
 * Owns: PoolIo's queue of ready tasks, the round-robin, the start announcement, and the
 * loop's order of work.  Does not own: a slot's life (slots.c), reading frames
 * (answers.c), the policy's numbers (schedule.c).
 */
#include "private.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_US (5 * G_USEC_PER_SEC)

void
io_state_init (TrPool *pool)
{
  PoolIo *io = &pool->io;
  io->completed = g_ptr_array_new ();
  io->workers = g_new0 (Worker, pool->settings.n_workers);
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &io->workers[i];
    w->slot = i + 1;
    tr_wire_buf_init (&w->out);
    w->in = g_byte_array_new ();
    w->out_fd[0] = w->out_fd[1] = -1;
    w->partial[0] = g_string_new (NULL);
    w->partial[1] = g_string_new (NULL);
  }
  io->output[0] = g_string_new (NULL);
  io->output[1] = g_string_new (NULL);
  io->events = g_array_new (FALSE, FALSE, sizeof (TrPoolEvent));
  g_array_set_clear_func (io->events, tr_pool_event_clear);
}

void
io_state_free (TrPool *pool, TaskQueue *left)
{
  PoolIo *io = &pool->io;
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &io->workers[i];
    if (w->link) {
      gboolean clean;
      int status;
      w->link->klass->kill (w->link);
      g_free (w->link->klass->close (w->link, &clean, &status));
    }
    for (int s = 0; s < 2; s++) {
      if (w->out_fd[s] >= 0)
        close (w->out_fd[s]);
      g_string_free (w->partial[s], TRUE);
    }
    tq_append (left, &w->inflight);
    g_queue_clear (&w->frames);
    tr_wire_buf_clear (&w->out);
    g_byte_array_unref (w->in);
    g_free (w->init_failed);
  }
  tq_append (left, &io->ready);
  g_ptr_array_unref (io->completed);
  g_string_free (io->output[0], TRUE);
  g_string_free (io->output[1], TRUE);
  g_array_unref (io->events);
  g_free (io->workers);
  g_free (io->fatal_error);
}

static TrSchedPool
sched_view (const TrPool *pool)
{
  return (TrSchedPool) {
    .batch = pool->settings.batch,
    .per_task_timeout = pool->settings.timeout_us != 0,
    .latency_us = pool->settings.link_class->latency_us,
    .have_mean = pool->io.have_mean,
    .mean_ns = pool->io.mean_ns,
    .timed = pool->io.timed,
  };
}

/* Writes one TASKS frame for w of up to n single tasks from the ready queue.  A frame
 * ends early at a task that must run alone (its last worker died under it), or when it
 * holds FRAME_BYTES of payload. */
static void
put_frame (TrPool *pool, Worker *w, guint n)
{
  TaskQueue *ready = &pool->io.ready;
  gsize at = tr_wire_begin (&w->out, TR_MSG_TASKS);
  gsize count_at = w->out.len;
  tr_wire_put_u32 (&w->out, 0);
  double now = g_get_real_time () / 1e6; /* until the worker says when it started */
  guint put = 0;
  gsize bytes = 0;
  while (put < n && ready->head) {
    TrTaskRecord *a = ready->head;
    if (put > 0 && (a->task.isolate || a->bundle || bytes + a->task.payload_len > FRAME_BYTES))
      break;
    tq_pop_head (ready);
    tr_wire_put_task (&w->out, a->task.id, a->task.payload, a->task.payload_len);
    a->outcome.start_time = now;
    tq_push_tail (&w->inflight, a);
    bytes += a->task.payload_len;
    put++;
    if (a->task.isolate)
      break;
  }
  tr_wire_patch_u32 (&w->out, count_at, put);
  tr_wire_end (&w->out, at);
  g_queue_push_tail (&w->frames, GUINT_TO_POINTER (put));
  w->load.sent += put;
}

/* Hands the ready tasks to the workers, each up to its depth, in frames. */
static void
dispatch (TrPool *pool, gboolean input_ended)
{
  PoolIo *io = &pool->io;
  const PoolSettings *set = &pool->settings;
  TrSchedPool sp = sched_view (pool);
  guint fs = tr_sched_frame_size (&sp);
  guint full_depth = tr_sched_worker_depth (&sp, fs);
  g_atomic_int_set (&pool->shared.frame_tasks, (gint) tr_sched_published_frame (&sp, fs));
  g_atomic_int_set (&pool->shared.depth_tasks, (gint) tr_sched_published_depth (&sp, full_depth));
  if (!io->ready.head)
    return;
  double left = 0, rates = 0; /* once input ended: tasks unfinished, live workers' rates */
  if (input_ended) {
    left = io->ready.length;
    for (guint i = 0; i < set->n_workers; i++) {
      const Worker *w = &io->workers[i];
      if (w->state == W_READY && !w->clocks.link_gone) {
        left += w->inflight.length;
        rates += tr_sched_worker_rate (&sp, w->load.mean_ns);
      }
    }
  }
  for (guint k = 0; k < set->n_workers && io->ready.head; k++) {
    Worker *w = &io->workers[(io->rr + k) % set->n_workers];
    if (w->state != W_READY || w->clocks.link_gone)
      continue;
    guint depth = full_depth, wfs = fs;
    if (input_ended) {
      guint share = tr_sched_tail_share (left, tr_sched_worker_rate (&sp, w->load.mean_ns),
                                         rates, w->load.mean_ns);
      depth = MIN (full_depth, share);
      wfs = tr_sched_tail_frame (fs, depth);
    }
    while (io->ready.head && w->inflight.length < depth) {
      if (set->max_tasks && w->load.sent >= set->max_tasks) {
        w->state = W_RETIRING;
        break;
      }
      TrTaskRecord *head = io->ready.head;
      if (head->bundle && tr_sched_unbundle (&sp, fs, input_ended, head->count, wfs)) {
        tq_unbundle_head (&io->ready);
        head = io->ready.head;
      }
      if (w->inflight.length == 0)
        w->clocks.head_started = g_get_monotonic_time ();
      if (head->bundle) {
        /* a frame of its own, made by the main thread */
        tq_pop_head (&io->ready);
        bundle_put_frame (head, &w->out);
        tq_push_tail (&w->inflight, head);
        g_queue_push_tail (&w->frames, GUINT_TO_POINTER (head->count));
        w->load.sent += head->count;
        continue;
      }
      guint n = MIN (wfs, depth - w->inflight.length);
      n = MIN (n, io->ready.length);
      if (set->max_tasks)
        n = MIN (n, set->max_tasks - w->load.sent);
      put_frame (pool, w, n);
      if (set->max_tasks && w->load.sent >= set->max_tasks)
        w->state = W_RETIRING;
    }
  }
  io->rr++;
}

static void
io_terminate (TrPool *pool)
{
  pool->io.terminated = TRUE;
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (w->link) {
      w->clocks.term_sent = 0;
      slot_end (pool, w, "was stopped: the pool was terminated", TR_TASK_ERROR_TERMINATED);
    }
  }
  /* what the workers held but had not started went back to the queue: it is not run */
  handoff_fail_queue (pool, &pool->io.ready, TR_TASK_ERROR_CANCELLED,
                      "cancelled: the pool was terminated");
  g_mutex_lock (&pool->shared.lock);
  pool->shared.terminated = TRUE;
  g_cond_broadcast (&pool->shared.cond);
  g_mutex_unlock (&pool->shared.lock);
}

/* Stop feeding: what no worker holds fails as cancelled (not run), and so does what the
 * workers hold but have not started: each is told to start no more tasks (CANCEL) and
 * sends them back, and answers_requeue_unrun fails them.  No new task starts, though a
 * worker holds tasks ahead so as never to wait for the next one. */
static void
io_cancel_pending (TrPool *pool)
{
  pool->io.cancelled = TRUE;
  handoff_fail_queue (pool, &pool->io.ready, TR_TASK_ERROR_CANCELLED,
                      "not run: the job was stopped before it started");
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (w->link && !w->clocks.link_gone && !w->load.cancel_sent) {
      gsize at = tr_wire_begin (&w->out, TR_MSG_CANCEL);
      tr_wire_end (&w->out, at);
      w->load.cancel_sent = TRUE;
    }
  }
}

/* Once no worker is starting, the job's start is over: tr_pool_new may return. */
static void
check_started (TrPool *pool)
{
  if (pool->io.started)
    return;
  for (guint i = 0; i < pool->settings.n_workers; i++)
    if (pool->io.workers[i].state == W_STARTING)
      return;
  pool->io.started = TRUE;
  PoolShared *sh = &pool->shared;
  g_mutex_lock (&sh->lock);
  sh->started = TRUE;
  /* One worker that cannot start fails the start: its host (an MPI rank on another
   * machine, say) lacks something the job needs, and a pool quietly smaller than asked
   * for would hide it. */
  if (!slots_any_alive (pool) || pool->io.fatal_error)
    sh->start_error = g_strdup (pool->io.fatal_error ? pool->io.fatal_error : "no worker could start");
  g_cond_broadcast (&sh->cond);
  g_mutex_unlock (&sh->lock);
}

/* Writes QUIT to the workers that are done: retiring ones with nothing in flight, and
 * at shutdown every idle one; then what each has queued, as far as its link takes it. */
static void
send_quits_and_write (TrPool *pool, gboolean shutting_down)
{
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    gboolean idle = w->inflight.length == 0 && !pool->io.ready.head;
    if (w->link && !w->clocks.link_gone && !w->load.quit_sent &&
        ((w->state == W_RETIRING && w->inflight.length == 0) ||
         (shutting_down && idle && w->state != W_STARTING))) {
      gsize at = tr_wire_begin (&w->out, TR_MSG_QUIT);
      tr_wire_end (&w->out, at);
      w->load.quit_sent = TRUE;
    }
    if (w->link && !w->clocks.link_gone && w->out.len > w->out_off)
      answers_write (w);
  }
}

/* A worker_fini that takes longer than the grace is the plugin's fault, but must be
 * said: whatever it was finishing is not finished. */
static void
kill_lingering (TrPool *pool)
{
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (!w->link)
      continue;
    g_printerr ("taskrun: worker %u (pid %d) did not exit within %d s of the end of the "
                "job (its plugin's worker_fini, or a task's program holding it) and was "
                "killed\n", w->slot, (int) w->link->pid,
                (int) (SHUTDOWN_GRACE_US / G_USEC_PER_SEC));
    slot_end (pool, w, "did not exit after the pool was closed and was killed",
              TR_TASK_ERROR_TERMINATED);
  }
}

typedef struct {
  Worker *w;
  guint64 spawns; /* its Worker.spawns when polled */
  gboolean exit;  /* the entry is its exit_fd, not its link */
  int output;     /* the entry is its stdout (1) or stderr (2) pipe; 0: neither */
} Polled;

static int
earliest (int a, int b)
{
  return a < 0 ? b : b < 0 ? a : MIN (a, b);
}

/* Makes the poll set: the wake-up fd, then each worker's link, its exit_fd and its
 * output pipes (while the main thread keeps up with writing lines). */
static nfds_t
poll_set (TrPool *pool, struct pollfd *fds, Polled *polled, gboolean read_output)
{
  nfds_t nfds = 0;
  fds[nfds++] = (struct pollfd) { .fd = pool->shared.wake_fd, .events = POLLIN };
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (!w->link)
      continue;
    if (!w->clocks.link_gone) {
      short ev = POLLIN;
      if (w->out.len > w->out_off)
        ev |= POLLOUT;
      polled[nfds - 1] = (Polled) { w, w->spawns, FALSE, 0 };
      fds[nfds++] = (struct pollfd) { .fd = w->link->fd, .events = ev };
    }
    if (w->link->klass->ended && w->link->exit_fd >= 0) {
      polled[nfds - 1] = (Polled) { w, w->spawns, TRUE, 0 };
      fds[nfds++] = (struct pollfd) { .fd = w->link->exit_fd, .events = POLLIN };
    }
    for (int s = 0; s < 2 && read_output; s++)
      if (w->out_fd[s] >= 0) {
        polled[nfds - 1] = (Polled) { w, w->spawns, FALSE, s + 1 };
        fds[nfds++] = (struct pollfd) { .fd = w->out_fd[s], .events = POLLIN };
      }
  }
  return nfds;
}

static void
handle_polled (TrPool *pool, const struct pollfd *fds, const Polled *polled, nfds_t nfds)
{
  if (fds[0].revents & POLLIN) {
    guint64 v;
    if (read (pool->shared.wake_fd, &v, sizeof v) < 0) {
      /* EAGAIN: already drained */
    }
  }
  for (nfds_t j = 0; j + 1 < nfds; j++) {
    Worker *w = polled[j].w;
    short re = fds[j + 1].revents;
    /* a worker ended (and perhaps restarted) by an earlier entry is not this one's */
    if (!w->link || re == 0 || w->spawns != polled[j].spawns)
      continue;
    if (polled[j].output) {
      output_read (pool, w, polled[j].output - 1);
      continue;
    }
    if (polled[j].exit) {
      slot_process_ended (pool, w);
      continue;
    }
    if (re & POLLOUT)
      answers_write (w);
    if ((re & (POLLIN | POLLHUP | POLLERR)) && slot_read (pool, w) == READ_GONE)
      slot_link_ended (pool, w);
  }
}

gpointer
io_main (gpointer data)
{
  TrPool *pool = data;
  PoolShared *sh = &pool->shared;
  gint64 shutdown_deadline = 0;
  guint n = pool->settings.n_workers;
  struct pollfd *fds = g_new0 (struct pollfd, 4 * n + 1);
  Polled *polled = g_new0 (Polled, 4 * n);

  for (guint i = 0; i < n; i++)
    slot_spawn (pool, &pool->io.workers[i]);

  for (;;) {
    if (g_atomic_int_get (&sh->terminate_req) && !pool->io.terminated)
      io_terminate (pool);
    /* read before taking: when it says ended, everything submitted is taken below */
    gboolean input_ended = g_atomic_int_get (&sh->input_ended);
    handoff_take_submitted (pool);
    if (g_atomic_int_get (&sh->cancel_req) && !pool->io.cancelled)
      io_cancel_pending (pool);
    if (pool->io.started && !slots_any_alive (pool)) {
      g_autofree char *msg = g_strdup_printf ("no worker is left to run it: %s",
                                              pool->io.fatal_error ? pool->io.fatal_error
                                                                   : "all failed");
      handoff_fail_queue (pool, &pool->io.ready, TR_TASK_ERROR_NO_WORKER, msg);
    }
    dispatch (pool, input_ended);

    gboolean shutting_down = g_atomic_int_get (&sh->shutdown_req);
    if (shutting_down && !shutdown_deadline)
      shutdown_deadline = g_get_monotonic_time () + SHUTDOWN_GRACE_US;
    send_quits_and_write (pool, shutting_down);
    int hand_over_ms = -1;
    if (shutting_down || pool->io.terminated)
      handoff_flush (pool);
    else
      hand_over_ms = handoff_due_ms (pool, input_ended);
    check_started (pool);

    if (shutting_down && !slots_any_alive (pool))
      break;
    if (shutting_down && g_get_monotonic_time () > shutdown_deadline) {
      kill_lingering (pool);
      handoff_flush (pool);
      break;
    }

    /* Before the poll set is made: these may end a worker and start its replacement.
     * A worker ended changes what the loop above decides (a start to announce, tasks
     * to share out), so the loop runs again before it waits. */
    guint ends = pool->io.ends;
    int gone_ms = slots_check_links_gone (pool);
    int timeout = slots_check_timeouts (pool);
    if (pool->io.ends != ends)
      continue;
    gone_ms = earliest (gone_ms, slots_check_restarts (pool));
    gboolean read_output = output_may_read (pool);
    nfds_t nfds = poll_set (pool, fds, polled, read_output);
    if (!read_output)
      timeout = earliest (timeout, 10);
    timeout = earliest (timeout, gone_ms);
    if (shutting_down)
      timeout = earliest (timeout, 100);
    timeout = earliest (timeout, hand_over_ms);
    int r = poll (fds, nfds, timeout);
    if (r < 0 && errno != EINTR)
      g_error ("taskrun: poll failed: %s", g_strerror (errno));
    if (r > 0)
      handle_polled (pool, fds, polled, nfds);
  }
  handoff_flush (pool);
  g_free (fds);
  g_free (polled);
  g_mutex_lock (&sh->lock);
  sh->started = TRUE;
  sh->terminated = TRUE;
  g_cond_broadcast (&sh->cond);
  g_mutex_unlock (&sh->lock);
  return NULL;
}
