/* slots.c — one worker slot's life (I/O thread): spawn and CONFIG, end and blame, the
 * restart rule, the start and task timeouts, and a link that ends before its process.
 *
 * A worker whose process ends, whose link errors or reaches end of stream, or that sends
 * a frame that is not valid is closed and reaped; each task it held fails with the cause
 * in words, and a new worker takes the slot.  The I/O thread never waits for one worker:
 * a process whose link ended but that lives on is watched, then killed.  A worker that
 * fails before saying HELLO at the job's start (cannot load the plugin, worker_init
 * fails, dies at start) is not restarted (nginx's rule for fatal exits), so a broken
 * plugin cannot cause a fork storm; a replacement that fails so later is started again
 * a few times, with growing pauses (slot_retry).
 *
 * Owns: Worker's link, state, clocks and load, and the messages that say a worker's end.
 * Does not own: reading frames (answers.c), the poll loop and dispatch (io.c).
 */
#include "private.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#define START_RETRIES 5
#define START_RETRY_US (G_USEC_PER_SEC / 10)
#define TIMEOUT_GRACE_US (G_USEC_PER_SEC / 2) /* SIGTERM, then SIGKILL */
#define LINK_GONE_GRACE_US G_USEC_PER_SEC
#define LINK_GONE_WHY "closed its link to taskrun and went on running; it was killed"
#define EXIT_PROBE_US (G_USEC_PER_SEC / 10)

static int
ms_until (gint64 next, gint64 now)
{
  if (next == G_MAXINT64)
    return -1;
  return (int) MAX (1, (next - now + 999) / 1000);
}

/* A worker started after the job's start failed before it was ready (killed while it
 * started, worker_init failed, it could not be spawned).  The rule that such a worker is
 * not restarted is for the job's start, where a broken plugin or host must fail the job
 * at once; later the cause may well pass (a task killed it, a resource was short), and
 * a slot lost for good would leave the tasks to fewer workers, or to none.  So the slot
 * is started again after a pause that doubles, START_RETRIES times, then given up; each
 * step is said on stderr, and the job's summary counts the slots it ended with. */
static void
slot_retry (TrPool *pool, Worker *w, const char *why)
{
  if (pool->io.terminated || g_atomic_int_get (&pool->shared.shutdown_req))
    return;
  guint n = pool->settings.n_workers;
  if (++w->start_tries > START_RETRIES) {
    g_atomic_int_inc (&pool->shared.slots_lost);
    events_add (pool, TR_POOL_EVENT_WORKER_LOST, w->slot, 0, NULL, why);
    g_printerr ("taskrun: worker %u could not be started again (%s); the job goes on with %u "
                "of %u workers\n", w->slot, why,
                n - (guint) g_atomic_int_get (&pool->shared.slots_lost), n);
    return;
  }
  gint64 delay = START_RETRY_US << (w->start_tries - 1);
  w->restart_at = g_get_monotonic_time () + delay;
  g_autofree char *again = g_strdup_printf ("%s; starting it again in %g s", why, delay / 1e6);
  events_add (pool, TR_POOL_EVENT_WORKER_RETRY, w->slot, 0, NULL, again);
  g_printerr ("taskrun: worker %u failed while starting (%s); starting it again in %g s\n",
              w->slot, why, delay / 1e6);
}

int
slots_check_restarts (TrPool *pool)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (!w->restart_at)
      continue;
    if (pool->io.terminated || g_atomic_int_get (&pool->shared.shutdown_req)) {
      w->restart_at = 0;
    } else if (now >= w->restart_at) {
      w->restart_at = 0;
      slot_spawn (pool, w);
    } else {
      next = MIN (next, w->restart_at);
    }
  }
  return ms_until (next, now);
}

void
slot_spawn (TrPool *pool, Worker *w)
{
  g_autoptr (GError) error = NULL;
  const PoolSettings *set = &pool->settings;
  w->out.len = 0;
  g_byte_array_set_size (w->in, 0);
  w->out_off = 0;
  w->clocks = (WorkerClocks) { 0 };
  w->load = (WorkerLoad) { 0 };
  w->spawns++;
  g_clear_pointer (&w->init_failed, g_free);
  w->link = set->link_class->spawn (w->slot, set->program, &error);
  if (!w->link) {
    w->state = W_DEAD;
    g_free (pool->io.fatal_error);
    pool->io.fatal_error = g_strdup (error->message);
    if (pool->io.started)
      slot_retry (pool, w, error->message);
    return;
  }
  /* the pool reads and closes the output pipes itself, after the worker is reaped */
  w->out_fd[0] = w->out_fd[1] = -1;
  if (set->link_class->captures_output) {
    w->out_fd[0] = w->link->out_fd;
    w->out_fd[1] = w->link->err_fd;
    w->link->out_fd = w->link->err_fd = -1;
  }
  w->state = W_STARTING;
  w->clocks.spawned = g_get_monotonic_time ();
  g_autofree char *plugin_ref = tr_plugin_worker_ref (set->plugin);
  tr_wire_put_config (&w->out, plugin_ref, w->slot, set->link_class->carries_files,
                      set->config_pairs);
  g_debug ("worker %u started as pid %d", w->slot, (int) w->link->pid);
}

/* Closes a worker's link and reaps it.  The tasks of the frame it was running fail with
 * the cause in words; the tasks of later frames never started, so they go back to the
 * front of the queue.  The worker is restarted unless it never got ready (fatal), or the
 * pool is ending.  `why` (may be NULL) is what the parent saw wrong, for a worker it
 * killed itself. */
void
slot_end (TrPool *pool, Worker *w, const char *why, TrTaskErrorCode code)
{
  if (!w->link)
    return;
  pool->io.ends++;
  pid_t pid = w->link->pid;
  /* "worker 2 (pid 4711)", or "worker 2 (rank 2 on node7, pid 4711)" */
  g_autofree char *at = w->link->where ? g_strconcat (w->link->where, ", ", NULL) : g_strdup ("");
  g_autofree char *who = g_strdup_printf ("worker %u (%spid %d)", w->slot, at, (int) pid);
  g_autofree char *who_short = g_strdup_printf ("worker %u, %spid %d", w->slot, at, (int) pid);
  g_autofree char *where = g_strdup (w->link->where); /* close frees the link */
  if (why)
    w->link->klass->kill (w->link);
  gboolean clean = FALSE;
  int status = 0;
  g_autofree char *how = w->link->klass->close (w->link, &clean, &status);
  events_add (pool, TR_POOL_EVENT_WORKER_ENDED, w->slot, pid, where, why ? why : how);
  w->link = NULL;
  output_drain (pool, w);
  WorkerState was = w->state;
  w->state = W_DEAD;

  int exit_value = -1, sig = 0;
  g_autofree char *cause = NULL;
  const WorkerClocks *ck = &w->clocks;
  gboolean timed_out = ck->term_sent && ck->timed_out && ck->timed_out == w->inflight.head;
  if (timed_out) {
    code = TR_TASK_ERROR_TIMEOUT;
    sig = ck->kill_sent ? SIGKILL : SIGTERM;
    cause = g_strdup_printf ("timed out after %g s (%s, stopped with SIG%s)",
                             pool->settings.timeout_us / 1e6, who_short, sigabbrev_np (sig));
  } else if (why) {
    sig = SIGKILL;
    cause = g_strdup_printf ("%s %s", who, why);
  } else {
    cause = g_strdup_printf ("%s %s", who, how);
    if (WIFSIGNALED (status)) {
      exit_value = 0; /* GNU parallel's job log: Exitval 0, Signal N */
      sig = WTERMSIG (status);
    } else if (WIFEXITED (status)) {
      exit_value = WEXITSTATUS (status) ? WEXITSTATUS (status) : 255;
    }
  }
  /* The worker answers frame by frame, so the oldest unanswered frame is the one it was
   * running.  A frame of one task fails that task.  The tasks of a larger frame go back
   * to run one at a time, so that only the one that brings a worker down fails.  A stop
   * for a task that had just finished (timed_out no longer the head) fails nothing. */
  guint running = GPOINTER_TO_UINT (g_queue_pop_head (&w->frames));
  if (running)
    tq_unbundle_head (&w->inflight); /* a bundle is a frame of its own */
  double ran = (g_get_monotonic_time () - ck->head_started) / 1e6;
  gboolean innocent = ck->term_sent && !timed_out && code != TR_TASK_ERROR_TERMINATED;
  TaskQueue back = { 0 };
  guint isolated = 0;
  for (guint i = 0; i < running; i++) {
    TrTaskRecord *held = tq_pop_head (&w->inflight);
    if (innocent || (running > 1 && !held->task.isolate && code != TR_TASK_ERROR_TERMINATED)) {
      held->task.isolate = TRUE;
      tq_push_tail (&back, held);
      isolated++;
      continue;
    }
    held->outcome.worker = w->slot;
    held->outcome.pid = pid;
    held->outcome.seconds = ran;
    handoff_fail (pool, held, code, cause, exit_value, sig);
  }
  tq_append (&back, &w->inflight);
  g_queue_clear (&w->frames);
  answers_requeue_unrun (pool, &back);
  if (isolated && !innocent) {
    /* no task may fail of it (each runs again alone), but a worker that died (the OOM
     * killer, a kill from outside) must not pass unseen */
    g_autofree char *line = g_strdup_printf ("taskrun: %s while it ran a frame of %u tasks; "
                                             "they run again one by one\n", cause, isolated);
    output_add (pool, 1, line, strlen (line));
  }

  if (was == W_STARTING && pool->io.started) {
    g_autofree char *why_start = w->init_failed ? g_strdup_printf ("%s: %s", cause, w->init_failed)
                                                : g_strdup (cause);
    slot_retry (pool, w, why_start);
    return;
  }
  if (was == W_STARTING) {
    /* Failed before HELLO at the job's start: fatal, never restarted.  Keep an
     * INIT_FAILED message if one came. */
    if (!pool->io.fatal_error)
      pool->io.fatal_error = g_strdup_printf ("%s while starting", cause);
    g_debug ("%s while starting; not restarting it", cause);
    return;
  }
  if (!(w->load.quit_sent && clean))
    g_debug ("%s", cause);
  else
    g_debug ("worker %u (pid %d) ended", w->slot, (int) pid);
  if (pool->io.terminated || g_atomic_int_get (&pool->shared.shutdown_req))
    return;
  slot_spawn (pool, w);
}

gboolean
slots_any_alive (TrPool *pool)
{
  for (guint i = 0; i < pool->settings.n_workers; i++)
    if (pool->io.workers[i].state != W_DEAD || pool->io.workers[i].restart_at)
      return TRUE;
  return FALSE;
}

ReadStatus
slot_read (TrPool *pool, Worker *w)
{
  ReadStatus st = answers_read (pool, w);
  if (st == READ_BAD) {
    slot_end (pool, w, "sent a malformed frame and was killed", TR_TASK_ERROR_PROTOCOL);
    return READ_ENDED;
  }
  return st;
}

/* The worker's process has ended (or its class cannot tell that from its link's end).
 * Its link may still be open: a process its task forked holds it, and may hold it for
 * long.  What the worker wrote before it died is read first (its answers count), then
 * the worker is ended, and the group it leaves behind with it (tr_reap_worker). */
void
slot_process_ended (TrPool *pool, Worker *w)
{
  if (!w->clocks.link_gone && slot_read (pool, w) == READ_ENDED)
    return;
  slot_end (pool, w, w->clocks.link_kill_sent ? LINK_GONE_WHY : NULL, TR_TASK_ERROR_WORKER_DIED);
}

/* The worker's link reached its end of stream or failed.  The worker is ended once its
 * process has; until then it takes no task and none of its tasks can be answered.  A
 * process whose link ended but that lives on (a task closed fd 3) is never waited for
 * here: the I/O thread serves every worker, its timeouts and the signals, and a wait for
 * one process would stop them all.  It has LINK_GONE_GRACE_US to exit (a worker that
 * ends on its own closes its link a moment before its process ends), then its process
 * group is killed (slots_check_links_gone), and it is ended when its process is. */
void
slot_link_ended (TrPool *pool, Worker *w)
{
  if (!w->link->klass->ended || w->link->klass->ended (w->link)) {
    slot_process_ended (pool, w);
    return;
  }
  if (!w->clocks.link_gone) {
    w->clocks.link_gone = g_get_monotonic_time ();
    g_debug ("worker %u (pid %d): its link ended but its process lives on", w->slot,
             (int) w->link->pid);
  }
}

/* Kills what outlived its link past the grace, and ends the workers whose process ended
 * without an exit_fd to say so (asked every EXIT_PROBE_US while their link is open: a
 * system call per worker, not to be made for every frame). */
int
slots_check_links_gone (TrPool *pool)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  gboolean probe = now >= pool->io.next_exit_probe;
  if (probe)
    pool->io.next_exit_probe = now + EXIT_PROBE_US;
  for (guint i = 0; i < pool->settings.n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    if (!w->link || !w->link->klass->ended)
      continue;
    WorkerClocks *ck = &w->clocks;
    if (!ck->link_gone) {
      if (w->link->exit_fd >= 0)
        continue;
      if (probe && w->link->klass->ended (w->link))
        slot_process_ended (pool, w);
      else
        next = MIN (next, pool->io.next_exit_probe);
      continue;
    }
    if (w->link->klass->ended (w->link)) {
      slot_process_ended (pool, w);
      continue;
    }
    if (!ck->link_kill_sent) {
      gint64 due = ck->link_gone + LINK_GONE_GRACE_US;
      if (now >= due) {
        w->link->klass->signal_group (w->link, SIGKILL);
        ck->link_kill_sent = TRUE;
      } else {
        next = MIN (next, due);
      }
    }
    if (w->link->exit_fd < 0)
      next = MIN (next, now + 20000); /* asked, not told */
  }
  return ms_until (next, now);
}

/* A worker that does not say HELLO within start_timeout is killed; task_timeout sends
 * SIGTERM to the process group of a worker whose running task is late, and SIGKILL after
 * a grace. */
int
slots_check_timeouts (TrPool *pool)
{
  const PoolSettings *set = &pool->settings;
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  for (guint i = 0; i < set->n_workers; i++) {
    Worker *w = &pool->io.workers[i];
    WorkerClocks *ck = &w->clocks;
    if (w->link && w->state == W_STARTING) {
      gint64 due = ck->spawned + set->start_timeout_us;
      if (now >= due) {
        g_autofree char *why = g_strdup_printf ("did not start within %g s and was killed",
                                                set->start_timeout_us / 1e6);
        /* the first failure is the one to report: another worker's own reason (its
         * plugin's message) says more than this one's silence */
        gboolean first = pool->io.fatal_error == NULL;
        slot_end (pool, w, why, TR_TASK_ERROR_NO_WORKER);
        if (first) {
          g_free (pool->io.fatal_error);
          pool->io.fatal_error = g_strdup_printf ("worker %u %s", w->slot, why);
        }
      } else {
        next = MIN (next, due);
      }
      continue;
    }
    if (!set->timeout_us || !w->link || w->inflight.length == 0)
      continue;
    if (!ck->term_sent) {
      gint64 due = ck->head_started + set->timeout_us;
      if (now >= due) {
        g_debug ("worker %u (pid %d): task timed out, sending SIGTERM", w->slot, (int) w->link->pid);
        /* the worker's process group: its task's children too */
        w->link->klass->signal_group (w->link, SIGTERM);
        ck->term_sent = now;
        ck->timed_out = w->inflight.head;
        due = now + TIMEOUT_GRACE_US;
      }
      next = MIN (next, due);
    } else if (!ck->kill_sent) {
      gint64 due = ck->term_sent + TIMEOUT_GRACE_US;
      if (now >= due) {
        w->link->klass->signal_group (w->link, SIGKILL);
        ck->kill_sent = TRUE;
      } else {
        next = MIN (next, due);
      }
    }
  }
  return ms_until (next, now);
}
