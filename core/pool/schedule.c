/* schedule.c — the dispatch policy's rules that run once per frame or per answer.
 *
 * Owns: the reasons behind each number in schedule.h and the rules that use them.
 * Does not own: any state; the callers pass what was measured (TrSchedPool) and apply
 * what comes back.  Built alone with GLib into tests/test-schedule.c.
 */
#include "schedule.h"

/* With batch = auto, a frame never holds more tasks than have been timed so far, nor a
 * worker more than twice that: a few quick tasks are no evidence that the next thousand
 * are quick (frames made for one quick task would hold dozens of long ones, and a
 * worker would sit on them while the others idle).  The evidence doubles with each round of
 * answers, so tiny tasks reach full frames within a dozen rounds. */
static double
evidence_cap (const TrSchedPool *p)
{
  return (double) MAX (p->timed, 1);
}

guint
tr_sched_frame_size (const TrSchedPool *p)
{
  if (p->per_task_timeout)
    return 1; /* a timeout is per task: the parent must know which task runs */
  if (p->batch)
    return p->batch;
  if (!p->have_mean || p->mean_ns >= AUTO_TARGET_NS)
    return 1;
  double n = MIN (AUTO_TARGET_NS / MAX (p->mean_ns, 1.0), evidence_cap (p));
  return (guint) CLAMP (n, 1.0, (double) AUTO_BATCH_MAX);
}

/* Enough frames to cover about 4 ms of work, so that a worker never waits for the
 * parent, but never a second frame when one frame is already that long (a task must
 * not queue behind a slow one while another worker idles).  Over a link with latency
 * (an MPI rank) a worker always holds a second frame, and enough to cover a round trip:
 * there, waiting for the parent costs more than a queued task.  Before any task has been
 * timed a worker holds two frames: its first answer then finds it busy with the second,
 * not idle for a round trip through the parent (two wake-ups, longer than many small
 * tasks). */
guint
tr_sched_worker_depth (const TrSchedPool *p, guint fs)
{
  if (!p->have_mean)
    return 2 * fs;
  double per_frame = MAX (p->mean_ns, 1.0) * fs;
  double cover_ns = 2 * AUTO_TARGET_NS + 2 * 1000.0 * p->latency_us;
  if (per_frame >= cover_ns && !p->latency_us)
    return fs;
  guint frames = (guint) CLAMP (cover_ns / per_frame, 2.0, (double) MAX_FRAMES_IN_FLIGHT);
  guint depth = MIN (frames * fs, MAX (2 * fs, MAX_DEPTH));
  if (!p->batch)
    depth = (guint) MIN ((double) depth, MAX (2.0 * fs, 2.0 * evidence_cap (p)));
  return depth;
}

/* A stream's bundles follow the frame size; with a timeout every task is a frame. */
guint
tr_sched_published_frame (const TrSchedPool *p, guint fs)
{
  return p->have_mean || p->batch || p->per_task_timeout ? fs : 0;
}

/* A stream's window follows the depth. */
guint
tr_sched_published_depth (const TrSchedPool *p, guint depth)
{
  return p->have_mean || p->batch ? MIN (depth, (guint) G_MAXINT) : 0;
}

double
tr_sched_worker_rate (const TrSchedPool *p, double worker_mean_ns)
{
  double ns = worker_mean_ns > 0 ? worker_mean_ns : p->have_mean ? p->mean_ns : 1.0;
  return 1.0 / MAX (ns, 1.0);
}

/* Once nothing more is coming, a worker may hold only half its share of what is left
 * (queued and held by the workers), its share in proportion to its speed, so that the
 * workers finish together: the last frames must not all go to the first worker that
 * asks while the others run dry, nor as many to a worker on a slow or busy core as to
 * one on an idle core.  Half, so that the pool keeps back work for whichever worker runs
 * out first (guided self-scheduling, by "factoring"): a core that stalls for a few
 * milliseconds (a busy host under a virtual machine) then delays only what it holds.
 * But never less than TAIL_MIN_HOLD_NS of the worker's own work: below that, the round
 * trip for each small frame (an answer, a wake-up, the next frame) costs more than the
 * imbalance it saves.  Rounded up. */
guint
tr_sched_tail_share (double left, double rate, double rates, double worker_mean_ns)
{
  double share = left * rate / rates / TAIL_HOLD;
  if (worker_mean_ns > 0)
    share = MAX (share, TAIL_MIN_HOLD_NS / worker_mean_ns);
  share = CLAMP (share, 1.0, (double) G_MAXUINT - 1);
  guint whole = (guint) share;
  return whole < share ? whole + 1 : whole;
}

/* In at least two frames, so that the worker runs one while its other is answered. */
guint
tr_sched_tail_frame (guint fs, guint depth)
{
  return MIN (fs, MAX (depth / 2, 1));
}

/* A bundle made before any task was timed, of tasks that turn out to be long, goes as
 * single tasks.  So does the tail, shared out task by task; but a bundle of less than
 * two minimum holds of work goes whole: so little imbalance costs less than remaking
 * its tasks. */
gboolean
tr_sched_unbundle (const TrSchedPool *p, guint fs, gboolean input_ended, guint count, guint wfs)
{
  return fs < BUNDLE_MIN_FRAME ||
         (input_ended && count > wfs && count * p->mean_ns > 2 * TAIL_MIN_HOLD_NS);
}

/* The means move by the bundle's mean without its longest task, half way.  A task held
 * up for milliseconds (its core taken by the host) counts as that long: task by task it
 * would shrink the frames, and so the bundles, for the next hundred tasks, and even in a
 * mean of thousands it can make the frames several times smaller.  But no more than its
 * tasks would have moved them one by one (SINGLE_TASK_WEIGHT each): a bundle of one or
 * two, closed early when the main thread was held up, holds little more than the first
 * task of a frame, which runs on cold caches, and taken half way it would shrink the
 * frames for a while. */
void
tr_sched_bundle_sample (guint count, double sum_ns, double max_ns, double *mean, double *weight)
{
  double m = count > 1 ? (sum_ns - max_ns) / (count - 1) : sum_ns;
  *mean = MAX (m, 1.0);
  double kept = 1.0; /* (1 - SINGLE_TASK_WEIGHT) ^ count, down to under a half */
  for (guint i = 0; i < count && kept > 0.5; i++)
    kept *= 1.0 - SINGLE_TASK_WEIGHT;
  *weight = MIN (0.5, 1.0 - kept);
}

/* Finished tasks go to the main thread in batches, not frame by frame: each hand-over
 * wakes that thread, and while the workers keep both cores busy its wake-ups are taken
 * from them.  They wait at most RESULTS_DELAY_US, and not at all when the main thread
 * may be waiting for them: when the workers hold nothing else, or when more input may
 * come and the queue is low (the main thread may be held back by its window, or waiting
 * for a result to submit the next task).  10 ms: a person watching the progress line or
 * the -v lines cannot tell, and fewer wake-ups leave more of the cores to the workers. */
gint64
tr_sched_hand_over_wait_us (guint held, guint ready, gboolean input_ended, gint64 waited_us,
                            guint completed, gsize output_bytes)
{
  if (held == 0 || waited_us >= RESULTS_DELAY_US || completed >= RESULTS_BATCH_MAX ||
      output_bytes >= OUTPUT_FLUSH_BYTES || (!input_ended && ready <= held))
    return 0;
  return RESULTS_DELAY_US - waited_us;
}

/* What keeps every worker as full as the I/O thread wants it (twice its depth), and the
 * hand-over groups, but no more.  A fixed window per worker would hold millions of
 * tasks for a thousand workers on tasks of a second, each holding one; following the
 * measured depth, memory stays small at any pool size, while tiny tasks keep their deep
 * queues.  Before the depth is known: 16 per worker. */
guint64
tr_sched_stream_window (guint depth_tasks, guint batch, guint n_workers)
{
  guint64 depth = depth_tasks;
  guint64 per_worker = depth ? MIN (2 * depth + 2, (guint64) MAX_DEPTH) : 16;
  if (batch)
    per_worker = MAX (per_worker, 2 * (guint64) batch);
  return MAX ((guint64) n_workers * per_worker, (guint64) SUBMIT_GROUP) + 64;
}
