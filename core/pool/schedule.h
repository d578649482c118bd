/* schedule.h — the pool's dispatch policy: every tuning number and every rule that
 * uses one, as pure functions of numbers.
 *
 * Owns: how many tasks go in a frame, how many a worker holds, how the end of a job is
 * shared out, how the measured task times move, how large a stream's bundles are and
 * when one goes back to single tasks, when finished tasks cross to the main thread, how
 * far a stream runs ahead of its results, and when it hands its tasks over.
 * Does not own: the queues, frames, clocks and threads that apply the policy (io.c,
 * stream.c, handoff.c).  Nothing here reads a clock, takes a lock or keeps state: what
 * a rule needs is an argument, so that tests/test-schedule.c pins each number.
 *
 * The few rules that run once per task (not per frame) are inline here: a call into
 * another file per task costs as much as a task of a microsecond.
 */
#ifndef TASKRUN_POOL_SCHEDULE_H
#define TASKRUN_POOL_SCHEDULE_H

#include <glib.h>

/* ---- frames and depth ---------------------------------------------------------------- */

/* Tasks in one frame with batch = auto, at most: a frame of 4096 one-number tasks is
 * about 100 KB, and its answer wakes the I/O thread once for all of them. */
#define AUTO_BATCH_MAX 4096
/* Aim for about 2 ms of work per frame: every frame's answer wakes the I/O thread, and
 * where a context switch is dear (a busy virtual machine) 1 ms frames kept too many
 * wake-ups; longer frames leave more work unbalanced at the end of a job (tail_share). */
#define AUTO_TARGET_NS 2000000.0
/* Frames one worker may hold: the depth never needs more to cover a round trip. */
#define MAX_FRAMES_IN_FLIGHT 256
/* Tasks one worker may hold, unless batch asks for more: the window a stream keeps
 * follows the depth, so this bounds the parent's memory per worker. */
#define MAX_DEPTH 8192
/* Payload bytes in one TASKS frame, unless one task is larger: a frame is written and
 * read whole, so its size is memory held on both sides. */
#define FRAME_BYTES (8u << 20)

/* ---- the end of a job (tail_share) --------------------------------------------------- */

/* A worker holds 1 / TAIL_HOLD of its share of what is left. */
#define TAIL_HOLD 2.0
/* ... but never less than this much of its own work (see tr_sched_tail_share). */
#define TAIL_MIN_HOLD_NS 250000.0

/* ---- bundles ------------------------------------------------------------------------ */

/* Larger payloads travel as single tasks: a bundle's bytes are copied once more. */
#define BUNDLE_PAYLOAD_MAX 1024
/* Frames of fewer tasks (of 30 us or more) carry single tasks: bundles save per-task
 * work that tasks that long do not notice, and their tail is shared out finely. */
#define BUNDLE_MIN_FRAME 64
/* Delivered bundles kept, buffers and all, for the next ones: fresh memory costs page
 * faults, and a heap churned by buffers of every size grows in pieces. */
#define BUNDLES_KEPT 4
/* Payloads and descriptions in one bundle, at most. */
#define BUNDLE_BYTES (1u << 20)

/* ---- hand-over to the main thread --------------------------------------------------- */

/* Finished tasks wait at most this long to cross (see tr_sched_hand_over_wait_us). */
#define RESULTS_DELAY_US 10000
/* ... or until this many have finished. */
#define RESULTS_BATCH_MAX 4096
/* ... or until the workers' lines held reach this many bytes. */
#define OUTPUT_FLUSH_BYTES 65536

/* ---- a stream ----------------------------------------------------------------------- */

/* Tasks a stream hands over at once, at most; also the least window it keeps. */
#define SUBMIT_GROUP 4096
/* A group that waited this long goes, whatever its size: a slow generator (a folder
 * walk) must not keep idle workers waiting. */
#define SUBMIT_WAIT_US 1000
/* Payload bytes a stream may have made and not yet seen answered: tasks of large
 * payloads (a folder's path of 150 KB in each of copy's tasks) would otherwise hold the
 * window's count of them, 600 MB, however few the workers can take. */
#define STREAM_WINDOW_BYTES (16u << 20)
/* What an ordered stream may hold of results that came early, in bytes and in attached
 * files: past either it makes no new task until the results it waits for come, so a
 * slow first task among a thousand of a MiB of output each costs 64 MiB, not a GiB, and
 * holds no more descriptors than a default limit of 1024 allows.  (Tasks already made
 * still finish and are held beyond it: a window's worth.) */
#define STREAM_HELD_BYTES (64u << 20)
#define STREAM_HELD_FILES 256
/* Task records made while the workers start, so that a job's first tasks do not wait
 * for fresh memory (a page fault is dear on some machines). */
#define PREALLOCATED_TASKS 512

/* What the policy knows of the pool when it sizes frames: its settings and what has
 * been measured. */
typedef struct {
  guint batch;               /* the job's; 0: auto */
  gboolean per_task_timeout; /* task_timeout is set */
  guint latency_us;          /* the link class's */
  gboolean have_mean;        /* a task was timed */
  double mean_ns;            /* the pool's mean task time */
  guint64 timed;             /* tasks timed so far */
} TrSchedPool;

/* Tasks per frame. */
guint tr_sched_frame_size (const TrSchedPool *p);
/* Tasks a worker may hold, frames of `fs`. */
guint tr_sched_worker_depth (const TrSchedPool *p, guint fs);
/* What the I/O thread publishes for a stream to follow: the frame size and the depth,
 * or 0 while they say nothing yet (no task timed, no batch). */
guint tr_sched_published_frame (const TrSchedPool *p, guint fs);
guint tr_sched_published_depth (const TrSchedPool *p, guint depth);

/* A worker's speed relative to the others: the inverse of its mean task time, or of the
 * pool's while it has finished none (worker_mean_ns 0). */
double tr_sched_worker_rate (const TrSchedPool *p, double worker_mean_ns);
/* Once no more input is coming: the tasks a worker of `rate` (and mean worker_mean_ns,
 * 0: none yet) may hold, of `left` unfinished tasks, the live workers' rates summing to
 * `rates`. */
guint tr_sched_tail_share (double left, double rate, double rates, double worker_mean_ns);
/* The frame size for a worker held to `depth` in the tail: two frames at least. */
guint tr_sched_tail_frame (guint fs, guint depth);
/* Whether a bundle of `count` tasks at the head of the queue goes as single tasks, the
 * frame size being `fs` (the worker's in the tail: `wfs`). */
gboolean tr_sched_unbundle (const TrSchedPool *p, guint fs, gboolean input_ended, guint count,
                            guint wfs);

/* The mean of a bundle's tasks that the means move by, and how far (see schedule.c). */
void tr_sched_bundle_sample (guint count, double sum_ns, double max_ns, double *mean,
                             double *weight);
/* How far one single task's time moves the means. */
#define SINGLE_TASK_WEIGHT 0.1

/* The pool's mean task time moved towards ns by weight (a first one is taken whole). */
static inline double
tr_sched_pool_mean (gboolean have_mean, double mean_ns, double ns, double weight)
{
  return have_mean ? (1 - weight) * mean_ns + weight * ns : ns;
}

/* A worker's (0: none yet): never 0 once it has one. */
static inline double
tr_sched_worker_mean (double mean_ns, double ns, double weight)
{
  return mean_ns > 0 ? (1 - weight) * mean_ns + weight * ns : MAX (ns, 1.0);
}

/* How long the finished tasks (and lines) that the I/O thread holds may still wait
 * before they cross to the main thread: 0 to hand them over now.  `held` tasks are in
 * the workers, `ready` queued; the oldest finished `waited_us` ago. */
gint64 tr_sched_hand_over_wait_us (guint held, guint ready, gboolean input_ended,
                                   gint64 waited_us, guint completed, gsize output_bytes);

/* The tasks a stream may have made and not yet handed back. */
guint64 tr_sched_stream_window (guint depth_tasks, guint batch, guint n_workers);

/* A stream's bundle size now, from the published frame size (0: none yet) and the
 * size it had: a power of two, grown at once but shrunk only when the frames shrink
 * fourfold.  The frame size follows every wobble of the measured task time (a task that
 * waited for its core counts as long), and each dip would fill the window with more,
 * smaller bundles beside the large ones kept for reuse, raising the high-water mark of
 * the parent's memory a little more in a long run. */
static inline guint
tr_sched_bundle_size (guint frame_tasks, guint current)
{
  guint size = frame_tasks ? frame_tasks : AUTO_BATCH_MAX;
  size = size >= AUTO_BATCH_MAX ? AUTO_BATCH_MAX : 1u << g_bit_nth_msf (size, -1);
  if (size > current || size * 4 <= current)
    return size;
  return current;
}

/* Whether a stream's task goes singly rather than in a bundle of `bundle_size`:
 * - one of the first tasks, which go at once, one by one;
 * - frames of fewer than BUNDLE_MIN_FRAME tasks;
 * - an ordered stream (early results wait by their task);
 * - max_tasks_per_worker (it counts the tasks a worker is sent);
 * - a payload over BUNDLE_PAYLOAD_MAX. */
static inline gboolean
tr_sched_goes_single (guint64 outstanding, guint n_workers, guint bundle_size, gboolean ordered,
                      guint max_tasks, gsize payload_len)
{
  return outstanding < 2 * (guint64) n_workers || bundle_size < BUNDLE_MIN_FRAME || ordered ||
         max_tasks || payload_len > BUNDLE_PAYLOAD_MAX;
}

/* Whether a stream hands over its `pending` tasks now, without asking the clock: a full
 * group, or a pool that holds fewer tasks than its workers take before any is timed
 * (two each), so that the first tasks start while the generator makes the rest.  The
 * groups are otherwise large: a short job's generator then ends before the I/O thread
 * sees most of its tasks, and they are shared out as a tail. */
static inline gboolean
tr_sched_submit_now (guint pending, guint64 outstanding, guint n_workers)
{
  return pending >= SUBMIT_GROUP || outstanding < 2 * (guint64) n_workers;
}

/* Whether to ask the clock if the group waited SUBMIT_WAIT_US: only at 2, 4, 8 ...
 * tasks, for on some machines a read of the clock costs as much as a tiny task. */
static inline gboolean
tr_sched_submit_asks_clock (guint pending)
{
  return (pending & (pending - 1)) == 0;
}

#endif
