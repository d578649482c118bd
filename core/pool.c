/* pool.c — the process pool: a fixed set of reused workers fed by one I/O thread.
 *
 * Owns: submission (apply, apply_async, map, stream), the I/O thread that starts workers,
 * hands them tasks and reads their results, and the hand-over of finished tasks to the
 * thread that owns the pool.  Also worker death, recycling, terminate and shutdown.
 *
 * Threads.  The thread that created the pool (the "main thread") submits tasks and runs
 * every callback, one at a time.  The I/O thread owns the workers: it polls their links
 * and an eventfd, writes TASKS frames, reads RESULTS frames, and pushes finished tasks in
 * batches onto a GAsyncQueue.  The main thread pops those batches whenever it calls into
 * the pool (wait, join, map, stream).  A slow callback therefore only delays the next
 * batch's callbacks; the I/O thread keeps every worker fed from what was submitted.
 *
 * Flow control.  Submitted tasks go into a mutex-protected queue; the eventfd is written
 * only when that queue goes from empty to non-empty, and the I/O thread takes the whole
 * queue at once.  Each worker holds a bounded number of tasks in flight (the depth), sent
 * in frames of `batch` tasks.  With batch = 0 (auto) the frame size and depth follow the
 * measured mean run time: one task at a time for long tasks (so no task waits behind a
 * slow one while a worker idles), up to 4096 per frame for tasks of microseconds.  When
 * the caller says no more tasks are coming (the generator ended, map submitted all,
 * close), the last tasks are shared out by each worker's measured speed (tail_share).
 * tr_pool_stream never has more than a fixed window of tasks outstanding, so memory does
 * not grow with the length of the stream.  Once frames hold BUNDLE_MIN_FRAME or more
 * tasks, an unordered stream packs its tasks into bundles that travel as one unit (see
 * Bundle).
 *
 * Failure.  A worker whose process ends, whose link errors or reaches end of stream, or
 * that sends a frame that is not valid is closed and reaped; each task it held fails with
 * the cause in words, and a new worker takes the slot.  The I/O thread never waits for
 * one worker: a process whose link ended but that lives on is watched, then killed (see
 * worker_link_ended).  A worker that fails before saying HELLO at the job's start
 * (cannot load the plugin, worker_init fails, dies at start) is not restarted (nginx's
 * rule for fatal exits), so a broken plugin cannot cause a fork storm; a replacement
 * that fails so later is started again a few times, with growing pauses (slot_retry).
 *
 * Workers' output.  A local worker's stdout and stderr are pipes (link-local.c) that the
 * I/O thread reads as it reads the links, and cuts into whole lines; the lines go to the
 * main thread with the results, which writes them with the pool's output function, so
 * that no line of one process is cut into by another's (see worker_read_output).
 */
#include "internal.h"
#include "link.h"
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define AUTO_BATCH_MAX 4096
#define MAX_FRAMES_IN_FLIGHT 256
#define PREALLOCATED_TASKS 512
#define SUBMIT_GROUP 4096 /* tasks a stream hands over at once, at most */
/* Payload bytes a stream may have made and not yet seen answered: tasks of large
 * payloads (a folder's path of 150 KB in each of copy's tasks) would otherwise hold the
 * window's count of them, 600 MB, however few the workers can take. */
#define STREAM_WINDOW_BYTES (16u << 20)
#define MAX_DEPTH 8192         /* tasks one worker may hold, unless batch asks for more */
#define FRAME_BYTES (8u << 20) /* payload bytes in one TASKS frame, unless one task is larger */
#define MAX_PAYLOAD (TR_WIRE_MAX_BODY - 1024) /* a task's payload must fit in one frame */
/* Aim for about 2 ms of work per frame: every frame's answer wakes the I/O thread, and
 * where a context switch is dear (a busy virtual machine) frames of 1 ms kept two workers
 * at 1.6x one on primes below 3e7 (tasks of 45 us); 2 ms did better.  Longer frames would
 * leave more work unbalanced at the end of a job (see tail_share). */
#define AUTO_TARGET_NS 2000000.0
#define TAIL_HOLD 2.0 /* see tail_share */
#define TAIL_MIN_HOLD_NS 250000.0 /* see tail_share */
#define RESULTS_DELAY_US 10000     /* see io_hand_over */
#define RESULTS_BATCH_MAX 4096
#define SHUTDOWN_GRACE_US (5 * G_USEC_PER_SEC)
#define READ_CHUNK 262144
#define OUTPUT_CHUNK 65536          /* read from a worker's stdout or stderr at once */
#define OUTPUT_READS_PER_WAKE 4     /* then the other workers' turn */
#define OUTPUT_LINE_MAX 65536       /* a longer line is cut (see output_take) */
#define OUTPUT_FLUSH_BYTES 65536    /* lines held for the main thread, at most */
#define OUTPUT_BACKLOG_MAX (8 << 20) /* handed over but not written yet (see io_main) */
#define OUTPUT_DRAIN_MAX (1 << 20)  /* read from an ended worker's pipes, at most */

#define INLINE_PAYLOAD 48
#define INLINE_RESULT 32
#define BUNDLE_PAYLOAD_MAX 1024 /* larger payloads travel as single tasks */
#define BUNDLE_MIN_FRAME 64     /* frames of fewer tasks (of 30 us or more) carry single tasks */
#define BUNDLES_KEPT 4          /* delivered bundles kept, buffers and all, for the next ones */
#define BUNDLE_BYTES (1u << 20) /* of payloads and descriptions in one bundle, at most */

/* A bundle: consecutive tasks of an unordered stream that travel as one TASKS frame and
 * come back as one RESULTS frame, handled by each thread as one unit.  With millions of
 * tasks of a microsecond, a record per task that the main thread writes and the I/O
 * thread reads on the other core (and back again) cost more than the tasks.  A bundle
 * keeps its tasks as the wire bytes the worker reads, and its answer as the bytes the
 * worker wrote: the I/O thread checks that answer in one pass over it and hands it over
 * whole, and the main thread reads the results from it.  Anything unusual (a worker
 * that dies holding it, tasks sent back, a bad record, a cancel, the tail of a job to
 * share out) first turns it into single tasks, which then take the usual paths. */
typedef struct {
  TrWireBuf wire;       /* the task records of a TASKS frame's body, ids consecutive (the
                         * count goes in front as the frame is sent) */
  guint64 *seq;         /* per task */
  guint64 *units;       /* per task */
  guint32 *text_at;     /* per task: where its description starts in `text`; 0: none */
  guint alloc;          /* room in seq, units and text_at */
  GString *text;        /* the descriptions, each ending in NUL, after one NUL; or NULL */
  guint64 first_order;  /* the first task's; the others follow */
  gsize bytes;          /* of payloads and descriptions */
  guint8 *answer;       /* the RESULTS frame's body, once answered whole */
  gsize answer_len;
  gsize answer_room;    /* allocated at answer */
} Bundle;

struct TrAsync {
  TrAsync *next; /* the queue it is in: submitted, ready, or a worker's in-flight */
  gint ref;
  guint count;    /* tasks: 1, or a bundle's */
  Bundle *bundle; /* NULL: a single task */
  guint64 id;  /* unique in this pool: matches results to tasks on the wire (a bundle's
                * first task's; the others follow) */
  guint64 seq; /* what TrResult.seq shows */
  guint64 order; /* tr_pool_stream: 1, 2, 3 ... in the order the generator made them */
  char *description; /* NULL: none set */
  const guint8 *payload;
  gsize payload_len;
  GBytes *payload_bytes; /* when the caller gave GBytes, else NULL */
  guint8 *payload_heap;  /* a copy too large for payload_inline */
  guint64 units;
  /* Filled by the I/O thread before the task is handed back. */
  guint8 *result;        /* points at result_inline or result_heap; NULL: none */
  gsize result_len;
  guint8 *result_heap;
  GError *error;
  int error_code;
  guint worker;
  GPid pid;
  double seconds;
  double start_time;
  int exit_value;
  int signal;
  guint attempt;
  gboolean isolate; /* was in a frame whose worker died: runs alone next time */
  /* Main thread only. */
  gboolean recyclable;      /* owned by a stream: goes back to the pool's free list */
  gboolean report_attempts; /* the callback also sees attempts that will be retried */
  gboolean done;
  TrResult result_view;
  TrResultFunc callback, error_callback;
  gpointer user_data;
  TrPool *pool;
  guint8 payload_inline[INLINE_PAYLOAD];
  guint8 result_inline[INLINE_RESULT];
};

/* A FIFO of tasks linked through TrAsync.next: no allocation per push.  Its length
 * counts tasks, a bundle as many as it holds. */
typedef struct {
  TrAsync *head, *tail;
  guint length;
} TaskQueue;

static inline void
tq_push_tail (TaskQueue *q, TrAsync *a)
{
  a->next = NULL;
  if (q->tail)
    q->tail->next = a;
  else
    q->head = a;
  q->tail = a;
  q->length += a->count;
}

static inline TrAsync *
tq_pop_head (TaskQueue *q)
{
  TrAsync *a = q->head;
  if (!a)
    return NULL;
  q->head = a->next;
  if (!q->head)
    q->tail = NULL;
  q->length -= a->count;
  a->next = NULL;
  return a;
}

/* Moves all of src to the end of dst. */
static inline void
tq_append (TaskQueue *dst, TaskQueue *src)
{
  if (!src->head)
    return;
  if (dst->tail)
    dst->tail->next = src->head;
  else
    dst->head = src->head;
  dst->tail = src->tail;
  dst->length += src->length;
  *src = (TaskQueue) { 0 };
}

/* Moves all of src to the front of dst. */
static inline void
tq_prepend (TaskQueue *dst, TaskQueue *src)
{
  if (!src->head)
    return;
  src->tail->next = dst->head;
  if (!dst->tail)
    dst->tail = src->tail;
  dst->head = src->head;
  dst->length += src->length;
  *src = (TaskQueue) { 0 };
}

typedef enum { W_DEAD, W_STARTING, W_READY, W_RETIRING } WorkerState;

typedef struct {
  guint slot;
  TrLink *link;
  WorkerState state;
  TaskQueue inflight; /* in the order sent */
  GQueue frames;   /* tasks per TASKS frame in flight, as GUINT_TO_POINTER, in order */
  gint64 head_started; /* monotonic time the first task in flight started (about) */
  gint64 spawned;      /* when this process was started */
  gint64 term_sent;    /* task_timeout: when SIGTERM was sent; 0 if not */
  TrAsync *timed_out;  /* the task that was late when SIGTERM went out */
  gboolean kill_sent;  /* task_timeout: SIGKILL sent after the grace */
  gint64 link_gone;    /* when its link ended while its process lived on; 0: it did not */
  gboolean link_kill_sent; /* its group was killed for that, after LINK_GONE_GRACE_US */
  guint64 spawns;      /* processes started for this slot */
  guint64 sent;    /* tasks sent to this process */
  double ewma_ns;  /* this process's mean task time (0: none yet): its speed, for the tail */
  TrWireBuf out;
  gsize out_off;
  GByteArray *in;
  gboolean quit_sent;
  gboolean cancel_sent; /* it was told to start no more tasks (TR_MSG_CANCEL) */
  guint start_tries;    /* failed starts in a row since the job's start (see slot_retry) */
  gint64 restart_at;    /* when to start this slot again; 0: not to be */
  char *init_failed;    /* what its INIT_FAILED said, if it did */
  int out_fd[2];        /* its stdout and stderr pipes, taken from its link; -1: none */
  GString *partial[2];  /* the last line each began and has not ended */
} Worker;

struct TrPool {
  TrPlugin *plugin;
  GPtrArray *config_pairs;
  guint n_workers;
  guint max_tasks;
  guint batch;
  gint64 timeout_us;
  gint64 start_timeout_us;
  guint retries;
  char *program;
  const TrLinkClass *link_class;

  GThread *io_thread;
  int wake_fd;

  GMutex lock;
  GCond cond;
  TaskQueue submitted;  /* guarded by lock */
  guint submitted_oversize; /* guarded: tasks in `submitted` too large to send */
  gboolean started;     /* guarded: the first workers have all said HELLO or failed */
  char *start_error;    /* guarded */
  gboolean terminated;  /* guarded: workers killed after a terminate request */

  gint terminate_req;   /* atomic */
  gint cancel_req;      /* atomic: stop feeding, cancel what no worker holds */
  gint shutdown_req;    /* atomic */
  gint stop_feeding;    /* atomic */
  gint input_ended;     /* atomic: the main thread will submit nothing more for now */
  gint frame_tasks;     /* atomic: the I/O thread's frame size now, 0 while no task was
                         * timed: what a stream's bundles follow (stream_bundle_for) */
  gint depth_tasks;     /* atomic: the tasks a worker may hold now, 0 while no task was
                         * timed: what a stream's window follows (stream_window) */

  GAsyncQueue *results; /* GPtrArray* of TrAsync*, or of workers' lines (output_tag):
                         * I/O thread -> main thread */

  /* Main thread only. */
  guint64 next_id;
  guint64 outstanding;
  guint oversize_made; /* tasks made too large to send, not yet submitted */
  TrAsync *free_list;   /* recycled stream tasks */
  TrAsync *free_bundles; /* recycled bundles: fresh memory costs page faults, and a heap
                          * churned by buffers of every size grows in pieces */
  guint free_bundle_count;
  void (*tick) (gpointer data);
  gpointer tick_data;
  guint free_count;
  gboolean closed;
  gboolean joined;

  /* I/O thread only. */
  Worker *workers;
  TaskQueue ready;
  double ewma_ns;
  gboolean have_ewma;
  guint64 timed;          /* tasks whose run time was measured (see evidence_cap) */
  GPtrArray *completed;
  gint64 completed_since; /* when the oldest of `completed` finished */
  char *fatal_error;
  gboolean io_terminated;
  gboolean io_cancelled;
  guint rr;
  guint ends;             /* workers ended so far */
  gint64 next_exit_probe; /* see check_links_gone */
  gboolean io_started;    /* the job's start is over (check_started) */
  gint slots_lost;        /* atomic: slots given up after failed restarts */
  GString *output[2];     /* whole lines of the workers' stdout and stderr, to hand over */
  gint64 output_since;    /* when the oldest of them was read */
  gint output_backlog;    /* atomic: bytes of lines handed over and not yet written */

  /* Main thread. */
  void (*output_func) (int fd, const char *text, gsize len, gpointer data);
  gpointer output_data;
};

/* Marks a hand-over of workers' lines rather than of finished tasks: it is the array's
 * first pointer, followed by the stdout and the stderr GString (io_flush_completed). */
static const char output_tag[] = "output";

/* ---- tasks ------------------------------------------------------------------------- */

static void
async_clear_result (TrAsync *a)
{
  g_free (a->result_heap);
  a->result_heap = NULL;
  a->result = NULL;
  a->result_len = 0;
  a->error_code = 0;
  a->exit_value = 0;
  a->signal = 0;
  g_clear_error (&a->error);
}

static void
bundle_free (Bundle *b)
{
  tr_wire_buf_clear (&b->wire);
  g_free (b->seq);
  g_free (b->units);
  g_free (b->text_at);
  if (b->text)
    g_string_free (b->text, TRUE);
  g_free (b->answer);
  g_free (b);
}

static void
async_free_contents (TrAsync *a)
{
  g_clear_pointer (&a->bundle, bundle_free);
  g_clear_pointer (&a->description, g_free);
  g_clear_pointer (&a->payload_bytes, g_bytes_unref);
  g_clear_pointer (&a->payload_heap, g_free);
  async_clear_result (a);
}

static void
async_copy_payload (TrAsync *a, const guint8 *data, gsize len)
{
  a->payload_len = len;
  if (len <= INLINE_PAYLOAD) {
    if (len)
      memcpy (a->payload_inline, data, len);
    a->payload = a->payload_inline;
  } else {
    a->payload_heap = g_memdup2 (data, len);
    a->payload = a->payload_heap;
  }
}

/* A new task.  Exactly one of `bytes` (kept by reference) or `data` (copied) is used. */
static TrAsync *
async_new (TrPool *pool, guint64 seq, const char *description, GBytes *bytes, const guint8 *data,
           gsize len, guint64 units)
{
  TrAsync *a = pool->free_list;
  if (a) {
    /* a recycled task: async_free_contents cleared what points elsewhere; the rest is
     * reset here, field by field (cheaper than clearing the whole struct per task) */
    pool->free_list = a->next;
    pool->free_count--;
    a->next = NULL;
    a->worker = 0;
    a->pid = 0;
    a->seconds = 0;
    a->start_time = 0;
    a->isolate = FALSE;
    a->done = FALSE;
    a->order = 0;
  } else {
    a = g_new0 (TrAsync, 1);
  }
  a->ref = 1;
  a->count = 1;
  a->pool = pool;
  a->id = ++pool->next_id;
  a->seq = seq ? seq : a->id;
  a->description = description && *description ? g_strdup (description) : NULL;
  a->callback = a->error_callback = NULL;
  a->user_data = NULL;
  a->report_attempts = a->recyclable = FALSE;
  if (bytes) {
    a->payload_bytes = g_bytes_ref (bytes);
    a->payload = g_bytes_get_data (bytes, &a->payload_len);
  } else {
    async_copy_payload (a, data, len);
  }
  if (a->payload_len > MAX_PAYLOAD)
    pool->oversize_made++; /* failed by the I/O thread when it takes the submission */
  a->units = units;
  a->attempt = 1;
  return a;
}

void
tr_async_unref (TrAsync *a)
{
  if (!a || !g_atomic_int_dec_and_test (&a->ref))
    return;
  async_free_contents (a);
  TrPool *pool = a->pool;
  if (a->recyclable && pool && pool->free_count < 65536) {
    a->next = pool->free_list;
    pool->free_list = a;
    pool->free_count++;
    return;
  }
  g_free (a);
}

static TrAsync *
async_ref (TrAsync *a)
{
  g_atomic_int_inc (&a->ref);
  return a;
}

/* ---- bundles ----------------------------------------------------------------------- */

static void stream_on_result (const TrResult *r, gpointer data);

/* Makes a single task one of a stream's (`stream` is its Stream): its results go to
 * stream_on_result, attempts included, and its record is recycled. */
static void
stream_task_init (TrAsync *a, gpointer stream, guint64 order)
{
  a->callback = a->error_callback = stream_on_result;
  a->user_data = stream;
  a->report_attempts = TRUE;
  a->recyclable = TRUE;
  a->order = order;
}

/* Turns bundle b into its tasks, as single tasks in order at the end of `out`, and frees
 * it.  Bundles come only from streams. */
static void
bundle_explode (TrPool *pool, TrAsync *b, TaskQueue *out)
{
  Bundle *bu = b->bundle;
  TrWireReader r;
  tr_wire_reader_init (&r, bu->wire.data, bu->wire.len);
  for (guint i = 0; i < b->count; i++) {
    TrWireTask t;
    if (!tr_wire_read_task (&r, &t))
      g_error ("taskrun: a bundle of tasks is corrupt"); /* the pool's own bytes */
    TrAsync *a = g_new0 (TrAsync, 1);
    a->ref = 1;
    a->count = 1;
    a->pool = pool;
    a->id = t.id;
    a->seq = bu->seq[i];
    a->units = bu->units[i];
    a->description = bu->text_at[i] ? g_strdup (bu->text->str + bu->text_at[i]) : NULL;
    async_copy_payload (a, t.payload, t.len);
    a->attempt = 1;
    stream_task_init (a, b->user_data, bu->first_order + i);
    tq_push_tail (out, a);
  }
  tr_async_unref (b);
}

/* The same for the bundle at the head of q, in its place. */
static void
unbundle_head (TrPool *pool, TaskQueue *q)
{
  TrAsync *b = tq_pop_head (q);
  TaskQueue singles = { 0 };
  bundle_explode (pool, b, &singles);
  tq_prepend (q, &singles);
}

/* ---- I/O thread -------------------------------------------------------------------- */

static void
io_complete (TrPool *pool, TrAsync *a)
{
  if (pool->completed->len == 0)
    pool->completed_since = g_get_monotonic_time ();
  g_ptr_array_add (pool->completed, a);
}

static void
io_fail_status (TrPool *pool, TrAsync *a, TrTaskErrorCode code, const char *message,
                int exit_value, int signal)
{
  if (a->bundle) {
    TaskQueue singles = { 0 };
    bundle_explode (pool, a, &singles);
    while ((a = tq_pop_head (&singles)))
      io_fail_status (pool, a, code, message, exit_value, signal);
    return;
  }
  g_clear_error (&a->error);
  a->error = g_error_new_literal (TR_TASK_ERROR, code, message);
  a->exit_value = exit_value;
  a->signal = signal;
  io_complete (pool, a);
}

static void
io_fail (TrPool *pool, TrAsync *a, TrTaskErrorCode code, const char *message)
{
  io_fail_status (pool, a, code, message, -1, 0);
}

/* Tasks a worker held but did not run (it died, or sent them back) go to the head of the
 * queue, in order; once the job was stopped they are not run at all. */
static void
io_requeue_unrun (TrPool *pool, TaskQueue *back)
{
  if (pool->io_cancelled) {
    TrAsync *a;
    while ((a = tq_pop_head (back)))
      io_fail (pool, a, TR_TASK_ERROR_CANCELLED, "not run: the job was stopped before it started");
  } else {
    tq_prepend (&pool->ready, back);
  }
}

/* Lines go before the finished tasks read with them: a task prints while it runs, and a
 * worker's last words before the failure of the task it died in. */
static void
io_flush_completed (TrPool *pool)
{
  gsize out_bytes = pool->output[0]->len + pool->output[1]->len;
  if (out_bytes) {
    GPtrArray *lines = g_ptr_array_new ();
    g_ptr_array_add (lines, (gpointer) output_tag);
    for (int s = 0; s < 2; s++) {
      g_ptr_array_add (lines, pool->output[s]);
      pool->output[s] = g_string_new (NULL);
    }
    g_atomic_int_add (&pool->output_backlog, (gint) out_bytes);
    g_async_queue_push (pool->results, lines);
  }
  if (pool->completed->len == 0)
    return;
  g_async_queue_push (pool->results, pool->completed);
  pool->completed = g_ptr_array_new ();
}

/* Finished tasks go to the main thread in batches, not frame by frame: each hand-over
 * wakes that thread, and while the workers keep both cores busy its wake-ups are taken
 * from them (on a virtual machine, ~30 us of CPU each; a job of 300 small tasks on two
 * workers woke it 36 times in 8 ms).  They wait at most RESULTS_DELAY_US, and not at all
 * when the main thread may be waiting for them: when the pool has nothing else to run,
 * or when more input may come and the queue is low (the main thread may be held back by
 * its window, or waiting for a result to submit the next task).  10 ms, not 1: a person
 * watching the progress line or the -v lines cannot tell, and on that job the median
 * two-worker run was 4.6% shorter (82 alternating runs of each).  Returns the poll
 * timeout (ms) until the next hand-over is due, or -1. */
static int
io_hand_over (TrPool *pool, gboolean input_ended)
{
  gsize out_bytes = pool->output[0]->len + pool->output[1]->len;
  if (pool->completed->len == 0 && out_bytes == 0)
    return -1;
  gint64 since = pool->completed->len == 0 ? pool->output_since
                 : out_bytes == 0          ? pool->completed_since
                                           : MIN (pool->completed_since, pool->output_since);
  gint64 waited = g_get_monotonic_time () - since;
  guint held = 0;
  for (guint i = 0; i < pool->n_workers; i++)
    held += pool->workers[i].inflight.length;
  if (held == 0 || waited >= RESULTS_DELAY_US || pool->completed->len >= RESULTS_BATCH_MAX ||
      out_bytes >= OUTPUT_FLUSH_BYTES || (!input_ended && pool->ready.length <= held)) {
    io_flush_completed (pool);
    return -1;
  }
  return (int) ((RESULTS_DELAY_US - waited + 999) / 1000);
}

/* ---- workers' output ---------------------------------------------------------------- */

/* Adds `len` bytes to the lines to hand over on stream `s` (0: stdout, 1: stderr). */
static void
output_add (TrPool *pool, int s, const char *text, gsize len)
{
  if (pool->output[0]->len + pool->output[1]->len == 0)
    pool->output_since = g_get_monotonic_time ();
  g_string_append_len (pool->output[s], text, len);
}

/* Ends the line worker w began on stream s, if any: its end (exit, crash, closed stream)
 * ends it, with a newline added, so that its last words are neither lost nor joined to
 * another process's line. */
static void
output_end_line (TrPool *pool, Worker *w, int s)
{
  GString *part = w->partial[s];
  if (part->len == 0)
    return;
  g_string_append_c (part, '\n');
  output_add (pool, s, part->str, part->len);
  g_string_truncate (part, 0);
}

/* Cuts what worker w wrote on stream s into lines: whole lines go to the hand-over, the
 * rest waits for its newline in w->partial.  A line that grows past OUTPUT_LINE_MAX
 * without one is handed over as it is, with a newline added (the rest follows as a line
 * of its own): memory stays bounded whatever a task writes. */
static void
output_take (TrPool *pool, Worker *w, int s, const char *buf, gsize n)
{
  GString *part = w->partial[s];
  while (n) {
    const char *nl = part->len ? memchr (buf, '\n', n) : memrchr (buf, '\n', n);
    if (!nl) {
      g_string_append_len (part, buf, (gssize) n);
      if (part->len >= OUTPUT_LINE_MAX)
        output_end_line (pool, w, s);
      return;
    }
    gsize upto = (gsize) (nl - buf) + 1;
    if (part->len) {
      g_string_append_len (part, buf, (gssize) upto);
      output_add (pool, s, part->str, part->len);
      g_string_truncate (part, 0);
    } else {
      output_add (pool, s, buf, upto); /* every whole line of the chunk at once */
    }
    buf += upto;
    n -= upto;
  }
}

/* Reads worker w's stream s without blocking, up to `max` bytes; at its end of stream
 * (or an error) the pipe is closed and the last line ended. */
static void
worker_read_output (TrPool *pool, Worker *w, int s, gsize max)
{
  char buf[OUTPUT_CHUNK];
  for (gsize got = 0; w->out_fd[s] >= 0 && got < max;) {
    gssize n = read (w->out_fd[s], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      close (w->out_fd[s]);
      w->out_fd[s] = -1;
      output_end_line (pool, w, s);
      return;
    }
    output_take (pool, w, s, buf, (gsize) n);
    got += (gsize) n;
    if ((gsize) n < sizeof buf)
      return; /* the pipe is empty: no system call to hear EAGAIN */
  }
}

/* After worker w was reaped (and its process group killed): what it wrote is all in its
 * pipes; read it, end its last lines, close them.  Bounded: a process that left the
 * group and holds a pipe could write for ever. */
static void
worker_drain_output (TrPool *pool, Worker *w)
{
  for (int s = 0; s < 2; s++) {
    if (w->out_fd[s] >= 0) {
      worker_read_output (pool, w, s, OUTPUT_DRAIN_MAX);
      if (w->out_fd[s] >= 0) {
        close (w->out_fd[s]);
        w->out_fd[s] = -1;
      }
    }
    output_end_line (pool, w, s);
  }
}

static void
worker_queue_config (TrPool *pool, Worker *w)
{
  gsize at = tr_wire_begin (&w->out, TR_MSG_CONFIG);
  tr_wire_put_str (&w->out, tr_plugin_get_path (pool->plugin));
  tr_wire_put_u32 (&w->out, w->slot);
  tr_wire_put_u32 (&w->out, pool->config_pairs->len / 2);
  for (guint i = 0; i < pool->config_pairs->len; i++)
    tr_wire_put_str (&w->out, g_ptr_array_index (pool->config_pairs, i));
  tr_wire_end (&w->out, at);
}

#define START_RETRIES 5
#define START_RETRY_US (G_USEC_PER_SEC / 10)

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
  if (pool->io_terminated || g_atomic_int_get (&pool->shutdown_req))
    return;
  if (++w->start_tries > START_RETRIES) {
    g_atomic_int_inc (&pool->slots_lost);
    g_printerr ("taskrun: worker %u could not be started again (%s); the job goes on with %u "
                "of %u workers\n", w->slot, why,
                pool->n_workers - (guint) g_atomic_int_get (&pool->slots_lost), pool->n_workers);
    return;
  }
  gint64 delay = START_RETRY_US << (w->start_tries - 1);
  w->restart_at = g_get_monotonic_time () + delay;
  g_printerr ("taskrun: worker %u failed while starting (%s); starting it again in %g s\n",
              w->slot, why, delay / 1e6);
}

static void worker_spawn (TrPool *pool, Worker *w);

/* Starts again the slots whose pause is over.  Returns the poll timeout (ms) until the
 * next one is due, or -1. */
static int
check_restarts (TrPool *pool)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (!w->restart_at)
      continue;
    if (pool->io_terminated || g_atomic_int_get (&pool->shutdown_req)) {
      w->restart_at = 0;
    } else if (now >= w->restart_at) {
      w->restart_at = 0;
      worker_spawn (pool, w);
    } else {
      next = MIN (next, w->restart_at);
    }
  }
  if (next == G_MAXINT64)
    return -1;
  return (int) MAX (1, (next - now + 999) / 1000);
}

static void
worker_spawn (TrPool *pool, Worker *w)
{
  g_autoptr (GError) error = NULL;
  w->out.len = 0;
  g_byte_array_set_size (w->in, 0);
  w->out_off = 0;
  w->sent = 0;
  w->ewma_ns = 0;
  w->quit_sent = FALSE;
  w->cancel_sent = FALSE;
  w->term_sent = 0;
  w->timed_out = NULL;
  w->kill_sent = FALSE;
  w->link_gone = 0;
  w->link_kill_sent = FALSE;
  w->spawns++;
  g_clear_pointer (&w->init_failed, g_free);
  w->link = pool->link_class->spawn (w->slot, pool->program, &error);
  if (!w->link) {
    w->state = W_DEAD;
    g_free (pool->fatal_error);
    pool->fatal_error = g_strdup (error->message);
    if (pool->io_started)
      slot_retry (pool, w, error->message);
    return;
  }
  /* the pool reads and closes the output pipes itself, after the worker is reaped */
  w->out_fd[0] = w->out_fd[1] = -1;
  if (pool->link_class->captures_output) {
    w->out_fd[0] = w->link->out_fd;
    w->out_fd[1] = w->link->err_fd;
    w->link->out_fd = w->link->err_fd = -1;
  }
  w->state = W_STARTING;
  w->spawned = g_get_monotonic_time ();
  worker_queue_config (pool, w);
  g_debug ("worker %u started as pid %d", w->slot, (int) w->link->pid);
}

/* Closes a worker's link and reaps it.  The tasks of the frame it was running fail with
 * the cause in words; the tasks of later frames never started, so they go back to the
 * front of the queue.  The worker is restarted unless it never got ready (fatal), or the
 * pool is ending.  `why` (may be NULL) is what the parent saw wrong, for a worker it
 * killed itself. */
static void
worker_end (TrPool *pool, Worker *w, const char *why, TrTaskErrorCode code)
{
  if (!w->link)
    return;
  pool->ends++;
  pid_t pid = w->link->pid;
  /* "worker 2 (pid 4711)", or "worker 2 (rank 2 on node7, pid 4711)" */
  g_autofree char *at = w->link->where ? g_strconcat (w->link->where, ", ", NULL) : g_strdup ("");
  g_autofree char *who = g_strdup_printf ("worker %u (%spid %d)", w->slot, at, (int) pid);
  g_autofree char *who_short = g_strdup_printf ("worker %u, %spid %d", w->slot, at, (int) pid);
  if (why)
    w->link->klass->kill (w->link);
  gboolean clean = FALSE;
  int status = 0;
  g_autofree char *how = w->link->klass->close (w->link, &clean, &status);
  w->link = NULL;
  worker_drain_output (pool, w);
  WorkerState was = w->state;
  w->state = W_DEAD;

  int exit_value = -1, sig = 0;
  g_autofree char *cause = NULL;
  gboolean timed_out = w->term_sent && w->timed_out && w->timed_out == w->inflight.head;
  if (timed_out) {
    code = TR_TASK_ERROR_TIMEOUT;
    sig = w->kill_sent ? SIGKILL : SIGTERM;
    cause = g_strdup_printf ("timed out after %g s (%s, stopped with SIG%s)",
                             pool->timeout_us / 1e6, who_short, sigabbrev_np (sig));
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
   * for a task that had just finished (w->timed_out no longer the head) fails nothing. */
  guint running = GPOINTER_TO_UINT (g_queue_pop_head (&w->frames));
  if (running && w->inflight.head->bundle)
    unbundle_head (pool, &w->inflight); /* a bundle is a frame of its own */
  double ran = (g_get_monotonic_time () - w->head_started) / 1e6;
  gboolean innocent = w->term_sent && !timed_out && code != TR_TASK_ERROR_TERMINATED;
  TaskQueue back = { 0 };
  guint isolated = 0;
  for (guint i = 0; i < running; i++) {
    TrAsync *held = tq_pop_head (&w->inflight);
    if (innocent || (running > 1 && !held->isolate && code != TR_TASK_ERROR_TERMINATED)) {
      held->isolate = TRUE;
      tq_push_tail (&back, held);
      isolated++;
      continue;
    }
    held->worker = w->slot;
    held->pid = pid;
    held->seconds = ran;
    io_fail_status (pool, held, code, cause, exit_value, sig);
  }
  tq_append (&back, &w->inflight);
  g_queue_clear (&w->frames);
  io_requeue_unrun (pool, &back);
  if (isolated && !innocent) {
    /* no task may fail of it (each runs again alone), but a worker that died (the OOM
     * killer, a kill from outside) must not pass unseen */
    g_autofree char *line = g_strdup_printf ("taskrun: %s while it ran a frame of %u tasks; "
                                             "they run again one by one\n", cause, isolated);
    output_add (pool, 1, line, strlen (line));
  }

  if (was == W_STARTING && pool->io_started) {
    g_autofree char *why_start = w->init_failed ? g_strdup_printf ("%s: %s", cause, w->init_failed)
                                                : g_strdup (cause);
    slot_retry (pool, w, why_start);
    return;
  }
  if (was == W_STARTING) {
    /* Failed before HELLO at the job's start: fatal, never restarted.  Keep an
     * INIT_FAILED message if one came. */
    if (!pool->fatal_error)
      pool->fatal_error = g_strdup_printf ("%s while starting", cause);
    g_debug ("%s while starting; not restarting it", cause);
    return;
  }
  if (!(w->quit_sent && clean))
    g_debug ("%s", cause);
  else
    g_debug ("worker %u (pid %d) ended", w->slot, (int) pid);
  if (pool->io_terminated || g_atomic_int_get (&pool->shutdown_req))
    return;
  worker_spawn (pool, w);
}

static gboolean
any_worker_alive (TrPool *pool)
{
  for (guint i = 0; i < pool->n_workers; i++)
    if (pool->workers[i].state != W_DEAD || pool->workers[i].restart_at)
      return TRUE;
  return FALSE;
}

/* Moves the pool's mean task time and worker w's towards ns, by `weight` (a first
 * measurement is taken whole). */
static void
update_means (TrPool *pool, Worker *w, double ns, double weight, guint tasks)
{
  pool->timed += tasks;
  pool->ewma_ns = pool->have_ewma ? (1 - weight) * pool->ewma_ns + weight * ns : ns;
  pool->have_ewma = TRUE;
  w->ewma_ns = w->ewma_ns > 0 ? (1 - weight) * w->ewma_ns + weight * ns : MAX (ns, 1.0);
}

/* The answer to a bundle (r is past its count, which matched): when every record is a
 * result of the bundle's task in its place, the bundle keeps a copy of the answer and
 * goes to the main thread whole.  FALSE, having changed nothing, for anything else. */
static gboolean
take_bundle_answer (TrPool *pool, Worker *w, TrWireReader r, const guint8 *body, gsize len)
{
  TrAsync *b = w->inflight.head;
  double sum_ns = 0, max_ns = 0;
  for (guint i = 0; i < b->count; i++) {
    TrWireResult res;
    if (!tr_wire_read_result (&r, &res) || res.returned || res.id != b->id + i)
      return FALSE;
    sum_ns += (double) res.run_ns;
    max_ns = MAX (max_ns, (double) res.run_ns);
  }
  if (!tr_wire_reader_done (&r))
    return FALSE;
  /* The means move by the bundle's mean without its longest task, half way.  A task held
   * up for milliseconds (its core taken by the host) counts as that long: task by task it
   * would shrink the frames, and so the bundles, for the next hundred tasks, and even in
   * a mean of thousands it can make the frames several times smaller. */
  double mean = b->count > 1 ? (sum_ns - max_ns) / (b->count - 1) : sum_ns;
  mean = MAX (mean, 1.0);
  /* ... but no more than its tasks would have moved it one by one (as singles do, a
   * tenth each): a bundle of one or two, closed early when the main thread was held up,
   * holds little more than the first task of a frame, which runs on cold caches; taken
   * half way, it made the frames four times smaller for a while. */
  double kept = 1.0; /* 0.9 ^ count, down to under a half */
  for (guint i = 0; i < b->count && kept > 0.5; i++)
    kept *= 0.9;
  double weight = MIN (0.5, 1.0 - kept);
  update_means (pool, w, mean, weight, b->count);
  tq_pop_head (&w->inflight);
  Bundle *bu = b->bundle;
  if (bu->answer_room < len) {
    g_free (bu->answer);
    bu->answer = g_malloc (len);
    bu->answer_room = len;
  }
  memcpy (bu->answer, body, len);
  bu->answer_len = len;
  b->worker = w->slot;
  b->pid = w->link->pid;
  io_complete (pool, b);
  g_queue_pop_head (&w->frames);
  w->head_started = g_get_monotonic_time ();
  return TRUE;
}

/* Handles one RESULTS frame.  FALSE: the frame is not valid for this worker.
 *
 * One pass: each record is read, checked and matched to the next task in flight by id as
 * that task is taken (the tasks of a large frame of tiny ones are seldom in this core's
 * cache, and the frame is read once).  The count must be the oldest TASKS frame's; tasks
 * sent back unrun are all the rest from one on, never the first unless the worker was
 * told CANCEL (it may not start one, but must start a frame it has room for); nothing
 * may follow the last record.  At the first record that breaks a rule (or names the wrong task) the pass
 * stops: the tasks answered before it keep their results, the worker is killed as for
 * any malformed frame, and the rest of that frame is what it was running. */
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
    if (take_bundle_answer (pool, w, r, body, len))
      return TRUE;
    unbundle_head (pool, &w->inflight); /* and read the answer task by task */
  }
  TaskQueue back = { 0 };
  gboolean returning = FALSE;
  guint32 i;
  for (i = 0; i < n; i++) {
    TrAsync *a = w->inflight.head;
    if (!tr_wire_read_result (&r, &res) || (res.returned && i == 0 && !w->cancel_sent) ||
        (returning && !res.returned) || !a || a->id != res.id ||
        (i == n - 1 && !tr_wire_reader_done (&r)))
      break;
    returning = res.returned;
    tq_pop_head (&w->inflight);
    if (res.returned) {
      /* the answer was full: the task goes again, first, and its attempt does not count */
      tq_push_tail (&back, a);
      w->sent--;
      continue;
    }
    a->worker = w->slot;
    a->pid = w->link->pid;
    a->seconds = res.run_ns / 1e9;
    a->start_time = res.start_us / 1e6;
    update_means (pool, w, (double) res.run_ns, 0.1, 1);
    if (res.failed) {
      g_autofree char *msg = g_utf8_make_valid ((const char *) res.message, res.message_len);
      a->error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_FAILED, msg);
      a->error_code = (int) res.code;
      a->exit_value = 1;
    }
    a->result_len = res.len;
    if (res.len <= INLINE_RESULT) {
      memcpy (a->result_inline, res.data, res.len);
      a->result = a->result_inline;
    } else {
      a->result_heap = g_memdup2 (res.data, res.len);
      a->result = a->result_heap;
    }
    if (a == w->timed_out)
      w->timed_out = NULL; /* it finished after all, as the signal went out */
    io_complete (pool, a);
  }
  if (back.head) {
    io_requeue_unrun (pool, &back);
    if (w->state == W_RETIRING && pool->max_tasks && w->sent < pool->max_tasks)
      w->state = W_READY;
  }
  if (i < n) {
    frame->data = GUINT_TO_POINTER (n - i); /* what is left of it is what the worker ran */
    return FALSE;
  }
  g_queue_pop_head (&w->frames);
  w->head_started = g_get_monotonic_time ();
  return TRUE;
}

/* Handles one frame from a worker.  FALSE: protocol violation (the worker is killed). */
static gboolean
handle_frame (TrPool *pool, Worker *w, TrMsgType type, const guint8 *body, gsize len)
{
  TrWireReader r;
  switch (type) {
  case TR_MSG_HELLO:
    if (w->state != W_STARTING)
      return FALSE;
    if (len != 0) /* HELLO says nothing more: the pool knows its worker's pid */
      return FALSE;
    w->state = W_READY;
    w->start_tries = 0;
    return TRUE;
  case TR_MSG_INIT_FAILED: {
    if (w->state != W_STARTING)
      return FALSE;
    tr_wire_reader_init (&r, body, len);
    g_autofree char *msg = tr_wire_get_str (&r);
    if (!msg)
      return FALSE;
    g_free (pool->fatal_error);
    g_autofree char *text = g_utf8_make_valid (msg, -1);
    g_free (w->init_failed);
    w->init_failed = g_strdup (text);
    /* on another host, say which: the others may be fine */
    pool->fatal_error = w->link->where ? g_strdup_printf ("worker %u (%s): %s", w->slot,
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

typedef enum {
  READ_OK,    /* read what there was */
  READ_GONE,  /* end of stream: the worker must be reaped */
  READ_ENDED, /* the worker sent a bad frame and was ended (and perhaps replaced) */
} ReadStatus;

/* Reads what the worker sent and handles every complete frame. */
static ReadStatus
worker_read (TrPool *pool, Worker *w)
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
      if (st == TR_FRAME_BAD || !handle_frame (pool, w, type, body, len)) {
        worker_end (pool, w, "sent a malformed frame and was killed", TR_TASK_ERROR_PROTOCOL);
        return READ_ENDED;
      }
      off += consumed;
    }
    if (off)
      g_byte_array_remove_range (w->in, 0, off);
    if ((gsize) n < READ_CHUNK)
      return READ_OK;
  }
}

static void
worker_write (Worker *w)
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

#define LINK_GONE_GRACE_US G_USEC_PER_SEC
#define LINK_GONE_WHY "closed its link to taskrun and went on running; it was killed"

/* The worker's process has ended (or its class cannot tell that from its link's end).
 * Its link may still be open: a process its task forked holds it, and may hold it for
 * long.  What the worker wrote before it died is read first (its answers count), then
 * the worker is ended, and the group it leaves behind with it (tr_reap_worker). */
static void
worker_process_ended (TrPool *pool, Worker *w)
{
  if (!w->link_gone && worker_read (pool, w) == READ_ENDED)
    return;
  worker_end (pool, w, w->link_kill_sent ? LINK_GONE_WHY : NULL, TR_TASK_ERROR_WORKER_DIED);
}

/* The worker's link reached its end of stream or failed.  The worker is ended once its
 * process has; until then it takes no task and none of its tasks can be answered.  A
 * process whose link ended but that lives on (a task closed fd 3) is never waited for
 * here: the I/O thread serves every worker, its timeouts and the signals, and a wait for
 * one process would stop them all.  It has LINK_GONE_GRACE_US to exit (a worker that
 * ends on its own closes its link a moment before its process ends), then its process
 * group is killed (check_links_gone), and it is ended when its process is. */
static void
worker_link_ended (TrPool *pool, Worker *w)
{
  if (!w->link->klass->ended || w->link->klass->ended (w->link)) {
    worker_process_ended (pool, w);
    return;
  }
  if (!w->link_gone) {
    w->link_gone = g_get_monotonic_time ();
    g_debug ("worker %u (pid %d): its link ended but its process lives on", w->slot,
             (int) w->link->pid);
  }
}

/* Kills what outlived its link past the grace, and ends the workers whose process ended
 * without an exit_fd to say so (asked every EXIT_PROBE_US while their link is open: a
 * system call per worker, not to be made for every frame).  Returns the poll timeout
 * (ms) until the next check, or -1. */
#define EXIT_PROBE_US (G_USEC_PER_SEC / 10)
static int
check_links_gone (TrPool *pool)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  gboolean probe = now >= pool->next_exit_probe;
  if (probe)
    pool->next_exit_probe = now + EXIT_PROBE_US;
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (!w->link || !w->link->klass->ended)
      continue;
    if (!w->link_gone) {
      if (w->link->exit_fd >= 0)
        continue;
      if (probe && w->link->klass->ended (w->link))
        worker_process_ended (pool, w);
      else
        next = MIN (next, pool->next_exit_probe);
      continue;
    }
    if (w->link->klass->ended (w->link)) {
      worker_process_ended (pool, w);
      continue;
    }
    if (!w->link_kill_sent) {
      gint64 due = w->link_gone + LINK_GONE_GRACE_US;
      if (now >= due) {
        w->link->klass->signal_group (w->link, SIGKILL);
        w->link_kill_sent = TRUE;
      } else {
        next = MIN (next, due);
      }
    }
    if (w->link->exit_fd < 0)
      next = MIN (next, now + 20000); /* asked, not told */
  }
  if (next == G_MAXINT64)
    return -1;
  return (int) MAX (1, (next - now + 999) / 1000);
}

/* With batch = auto, a frame never holds more tasks than have been timed so far, nor a
 * worker more than twice that: a few quick tasks are no evidence that the next thousand
 * are quick (8 workers, 80 tasks of 1 s after one quick one: 49 s instead of 11, the
 * frames made for the quick one holding dozens of long ones).  The evidence doubles with
 * each round of answers, so tiny tasks reach full frames within a dozen rounds. */
static double
evidence_cap (const TrPool *pool)
{
  return (double) MAX (pool->timed, 1);
}

static guint
frame_size (TrPool *pool)
{
  if (pool->timeout_us)
    return 1; /* a timeout is per task: the parent must know which task runs */
  if (pool->batch)
    return pool->batch;
  if (!pool->have_ewma || pool->ewma_ns >= AUTO_TARGET_NS)
    return 1;
  double n = MIN (AUTO_TARGET_NS / MAX (pool->ewma_ns, 1.0), evidence_cap (pool));
  return (guint) CLAMP (n, 1.0, (double) AUTO_BATCH_MAX);
}

/* How many tasks a worker may hold: enough frames to cover about 4 ms of work, so that it
 * never waits for the parent, but never a second frame when one frame is already that
 * long (a task must not queue behind a slow one while another worker idles).  Over a
 * link with latency (an MPI rank) a worker always holds a second frame, and enough to
 * cover a round trip: there, waiting for the parent costs more than a queued task.
 * Before any task has been timed a worker holds two frames: its first answer then finds
 * it busy with the second, not idle for a round trip through the parent (two wake-ups,
 * longer than many small tasks). */
static guint
worker_depth (TrPool *pool, guint fs)
{
  guint latency_us = pool->link_class->latency_us;
  if (!pool->have_ewma)
    return 2 * fs;
  double per_frame = MAX (pool->ewma_ns, 1.0) * fs;
  double cover_ns = 2 * AUTO_TARGET_NS + 2 * 1000.0 * latency_us;
  if (per_frame >= cover_ns && !latency_us)
    return fs;
  guint frames = (guint) CLAMP (cover_ns / per_frame, 2.0, (double) MAX_FRAMES_IN_FLIGHT);
  guint depth = MIN (frames * fs, MAX (2 * fs, MAX_DEPTH));
  if (!pool->batch)
    depth = (guint) MIN ((double) depth, MAX (2.0 * fs, 2.0 * evidence_cap (pool)));
  return depth;
}

/* How fast a worker runs tasks, relative to the others: the inverse of its mean task
 * time, or of the pool's while it has finished none. */
static double
worker_rate (TrPool *pool, const Worker *w)
{
  double ns = w->ewma_ns > 0 ? w->ewma_ns : pool->have_ewma ? pool->ewma_ns : 1.0;
  return 1.0 / MAX (ns, 1.0);
}

/* Once nothing more is coming, a worker may hold only half its share of what is left
 * (queued here and held by the workers), its share in proportion to its speed, so that
 * the workers finish together: the last frames must not all go to the first worker that
 * asks while the others run dry, nor as many to a worker on a slow or busy core as to
 * one on an idle core.  Half, so that the pool keeps back work for whichever worker runs
 * out first (guided self-scheduling, by "factoring"): a core that stalls for a few
 * milliseconds (a busy host under a virtual machine) then delays only what it holds.
 * But never less than TAIL_MIN_HOLD_NS of the worker's own work, in two frames: below
 * that, the round trip for each small frame (an answer, a wake-up, the next frame) costs
 * more than the imbalance it saves. */
typedef struct {
  double left;  /* tasks not finished */
  double rates; /* sum of the workers' rates */
} Tail;

static Tail
tail_measure (TrPool *pool)
{
  Tail t = { .left = pool->ready.length };
  for (guint i = 0; i < pool->n_workers; i++) {
    const Worker *w = &pool->workers[i];
    if (w->state == W_READY && !w->link_gone) {
      t.left += w->inflight.length;
      t.rates += worker_rate (pool, w);
    }
  }
  return t;
}

static guint
tail_share (TrPool *pool, const Tail *t, const Worker *w)
{
  double share = t->left * worker_rate (pool, w) / t->rates / TAIL_HOLD;
  if (w->ewma_ns > 0)
    share = MAX (share, TAIL_MIN_HOLD_NS / w->ewma_ns);
  share = CLAMP (share, 1.0, (double) G_MAXUINT - 1);
  guint whole = (guint) share;
  return whole < share ? whole + 1 : whole; /* rounded up */
}

static void
dispatch (TrPool *pool, gboolean input_ended)
{
  guint fs = frame_size (pool);
  g_atomic_int_set (&pool->frame_tasks, pool->have_ewma || pool->batch || pool->timeout_us ? (gint) fs : 0);
  guint full_depth = worker_depth (pool, fs);
  g_atomic_int_set (&pool->depth_tasks, pool->have_ewma || pool->batch ? (gint) MIN (full_depth, G_MAXINT) : 0);
  if (!pool->ready.head)
    return;
  Tail tail = input_ended ? tail_measure (pool) : (Tail) { 0 };
  for (guint k = 0; k < pool->n_workers && pool->ready.head; k++) {
    Worker *w = &pool->workers[(pool->rr + k) % pool->n_workers];
    if (w->state != W_READY || w->link_gone)
      continue;
    guint depth = full_depth, wfs = fs;
    if (input_ended) {
      /* in at least two frames, so that the worker runs one while its other is answered */
      depth = MIN (full_depth, tail_share (pool, &tail, w));
      wfs = MIN (fs, MAX (depth / 2, 1));
    }
    while (pool->ready.head && w->inflight.length < depth) {
      if (pool->max_tasks && w->sent >= pool->max_tasks) {
        w->state = W_RETIRING;
        break;
      }
      TrAsync *head = pool->ready.head;
      /* A bundle made before any task was timed, of tasks that turn out to be long, goes
       * as single tasks.  So does the tail, shared out task by task; but a bundle of less
       * than two minimum holds of work goes whole: so little imbalance costs less than
       * remaking its tasks. */
      if (head->bundle && (fs < BUNDLE_MIN_FRAME ||
                           (input_ended && head->count > wfs &&
                            head->count * pool->ewma_ns > 2 * TAIL_MIN_HOLD_NS))) {
        unbundle_head (pool, &pool->ready);
        head = pool->ready.head;
      }
      if (w->inflight.length == 0)
        w->head_started = g_get_monotonic_time ();
      if (head->bundle) {
        /* a frame of its own, made by the main thread */
        tq_pop_head (&pool->ready);
        gsize at = tr_wire_begin (&w->out, TR_MSG_TASKS);
        tr_wire_put_u32 (&w->out, head->count);
        tr_wire_buf_append (&w->out, head->bundle->wire.data, head->bundle->wire.len);
        tr_wire_end (&w->out, at);
        tq_push_tail (&w->inflight, head);
        g_queue_push_tail (&w->frames, GUINT_TO_POINTER (head->count));
        w->sent += head->count;
        continue;
      }
      guint n = MIN (wfs, depth - w->inflight.length);
      n = MIN (n, pool->ready.length);
      if (pool->max_tasks)
        n = MIN (n, pool->max_tasks - w->sent);
      gsize at = tr_wire_begin (&w->out, TR_MSG_TASKS);
      gsize count_at = w->out.len;
      tr_wire_put_u32 (&w->out, 0);
      double now = g_get_real_time () / 1e6; /* until the worker says when it started */
      /* A frame ends early at a task that must run alone (its last worker died under it),
       * or when it holds FRAME_BYTES of payload. */
      guint put = 0;
      gsize bytes = 0;
      while (put < n && pool->ready.head) {
        TrAsync *a = pool->ready.head;
        if (put > 0 && (a->isolate || a->bundle || bytes + a->payload_len > FRAME_BYTES))
          break;
        tq_pop_head (&pool->ready);
        tr_wire_put_task (&w->out, a->id, a->payload, a->payload_len);
        a->start_time = now;
        tq_push_tail (&w->inflight, a);
        bytes += a->payload_len;
        put++;
        if (a->isolate)
          break;
      }
      tr_wire_patch_u32 (&w->out, count_at, put);
      tr_wire_end (&w->out, at);
      g_queue_push_tail (&w->frames, GUINT_TO_POINTER (put));
      w->sent += put;
      if (pool->max_tasks && w->sent >= pool->max_tasks)
        w->state = W_RETIRING;
    }
  }
  pool->rr++;
}

static void
io_terminate (TrPool *pool)
{
  pool->io_terminated = TRUE;
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (w->link) {
      w->term_sent = 0;
      worker_end (pool, w, "was stopped: the pool was terminated", TR_TASK_ERROR_TERMINATED);
    }
  }
  /* what the workers held but had not started went back to the queue: it is not run */
  TrAsync *a;
  while ((a = tq_pop_head (&pool->ready)))
    io_fail (pool, a, TR_TASK_ERROR_CANCELLED, "cancelled: the pool was terminated");
  g_mutex_lock (&pool->lock);
  pool->terminated = TRUE;
  g_cond_broadcast (&pool->cond);
  g_mutex_unlock (&pool->lock);
}

/* Stop feeding: what no worker holds fails as cancelled (not run), and so does what the
 * workers hold but have not started: each is told to start no more tasks (CANCEL) and
 * sends them back, and io_requeue_unrun fails them.  No new task starts, though a worker
 * holds tasks ahead so as never to wait for the next one. */
static void
io_cancel_pending (TrPool *pool)
{
  pool->io_cancelled = TRUE;
  TrAsync *a;
  while ((a = tq_pop_head (&pool->ready)))
    io_fail (pool, a, TR_TASK_ERROR_CANCELLED, "not run: the job was stopped before it started");
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (w->link && !w->link_gone && !w->cancel_sent) {
      gsize at = tr_wire_begin (&w->out, TR_MSG_CANCEL);
      tr_wire_end (&w->out, at);
      w->cancel_sent = TRUE;
    }
  }
}

#define TIMEOUT_GRACE_US (G_USEC_PER_SEC / 2)

/* task_timeout: SIGTERM to a worker whose running task is late, SIGKILL after a grace.
 * Returns the poll timeout (ms) until the next deadline, or -1. */
static int
check_timeouts (TrPool *pool)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = G_MAXINT64;
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (w->link && w->state == W_STARTING) {
      gint64 due = w->spawned + pool->start_timeout_us;
      if (now >= due) {
        g_autofree char *why = g_strdup_printf ("did not start within %g s and was killed",
                                                pool->start_timeout_us / 1e6);
        /* the first failure is the one to report: another worker's own reason (its
         * plugin's message) says more than this one's silence */
        gboolean first = pool->fatal_error == NULL;
        worker_end (pool, w, why, TR_TASK_ERROR_NO_WORKER);
        if (first) {
          g_free (pool->fatal_error);
          pool->fatal_error = g_strdup_printf ("worker %u %s", w->slot, why);
        }
      } else {
        next = MIN (next, due);
      }
      continue;
    }
    if (!pool->timeout_us || !w->link || w->inflight.length == 0)
      continue;
    if (!w->term_sent) {
      gint64 due = w->head_started + pool->timeout_us;
      if (now >= due) {
        g_debug ("worker %u (pid %d): task timed out, sending SIGTERM", w->slot, (int) w->link->pid);
        /* the worker's process group: its task's children too */
        w->link->klass->signal_group (w->link, SIGTERM);
        w->term_sent = now;
        w->timed_out = w->inflight.head;
        due = now + TIMEOUT_GRACE_US;
      }
      next = MIN (next, due);
    } else if (!w->kill_sent) {
      gint64 due = w->term_sent + TIMEOUT_GRACE_US;
      if (now >= due) {
        w->link->klass->signal_group (w->link, SIGKILL);
        w->kill_sent = TRUE;
      } else {
        next = MIN (next, due);
      }
    }
  }
  if (next == G_MAXINT64)
    return -1;
  return (int) MAX (1, (next - now + 999) / 1000);
}

/* Moves what the main thread submitted to the ready queue.  The queue is taken whole: a
 * walk over freshly made tasks would fetch each one from the other core's cache (a
 * quarter of this thread's time with millions of one-number tasks); only a submission
 * known to hold a task too large to send is walked, to fail that task. */
static void
take_submitted (TrPool *pool)
{
  g_mutex_lock (&pool->lock);
  TaskQueue got = pool->submitted;
  guint oversize = pool->submitted_oversize;
  pool->submitted = (TaskQueue) { 0 };
  pool->submitted_oversize = 0;
  g_mutex_unlock (&pool->lock);
  TrAsync *a;
  if (!pool->io_terminated && !pool->io_cancelled) {
    if (!oversize) {
      tq_append (&pool->ready, &got);
      return;
    }
    while ((a = tq_pop_head (&got))) {
      if (a->payload_len > MAX_PAYLOAD) {
        g_autofree char *msg = g_strdup_printf ("the task's payload (%" G_GSIZE_FORMAT " bytes) is "
                                                "larger than one message can carry (%u bytes)",
                                                a->payload_len, (guint) MAX_PAYLOAD);
        io_fail (pool, a, TR_TASK_ERROR_FAILED, msg);
      } else {
        tq_push_tail (&pool->ready, a);
      }
    }
    return;
  }
  while ((a = tq_pop_head (&got)))
    io_fail (pool, a, TR_TASK_ERROR_CANCELLED,
             pool->io_terminated ? "cancelled: the pool was terminated"
                                 : "not run: the job was stopped before it started");
}

static void
check_started (TrPool *pool, gboolean *announced)
{
  if (*announced)
    return;
  for (guint i = 0; i < pool->n_workers; i++)
    if (pool->workers[i].state == W_STARTING)
      return;
  *announced = TRUE;
  pool->io_started = TRUE;
  g_mutex_lock (&pool->lock);
  pool->started = TRUE;
  /* One worker that cannot start fails the start: its host (an MPI rank on another
   * machine, say) lacks something the job needs, and a pool quietly smaller than asked
   * for would hide it. */
  if (!any_worker_alive (pool) || pool->fatal_error)
    pool->start_error = g_strdup (pool->fatal_error ? pool->fatal_error : "no worker could start");
  g_cond_broadcast (&pool->cond);
  g_mutex_unlock (&pool->lock);
}

typedef struct {
  Worker *w;
  guint64 spawns; /* its Worker.spawns when polled */
  gboolean exit;  /* the entry is its exit_fd, not its link */
  int output;     /* the entry is its stdout (1) or stderr (2) pipe; 0: neither */
} Polled;

static gpointer
io_main (gpointer data)
{
  TrPool *pool = data;
  gboolean announced = FALSE;
  gint64 shutdown_deadline = 0;
  /* the wake-up fd, then each worker's link, its exit_fd and its output pipes */
  struct pollfd *fds = g_new0 (struct pollfd, 4 * pool->n_workers + 1);
  Polled *polled = g_new0 (Polled, 4 * pool->n_workers);

  for (guint i = 0; i < pool->n_workers; i++)
    worker_spawn (pool, &pool->workers[i]);

  for (;;) {
    if (g_atomic_int_get (&pool->terminate_req) && !pool->io_terminated)
      io_terminate (pool);
    /* read before taking: when it says ended, everything submitted is taken below */
    gboolean input_ended = g_atomic_int_get (&pool->input_ended);
    take_submitted (pool);
    if (g_atomic_int_get (&pool->cancel_req) && !pool->io_cancelled)
      io_cancel_pending (pool);
    if (announced && !any_worker_alive (pool)) {
      TrAsync *a;
      g_autofree char *msg = g_strdup_printf (
          "no worker is left to run it: %s", pool->fatal_error ? pool->fatal_error : "all failed");
      while ((a = tq_pop_head (&pool->ready)))
        io_fail (pool, a, TR_TASK_ERROR_NO_WORKER, msg);
    }
    dispatch (pool, input_ended);

    gboolean shutting_down = g_atomic_int_get (&pool->shutdown_req);
    if (shutting_down && !shutdown_deadline)
      shutdown_deadline = g_get_monotonic_time () + SHUTDOWN_GRACE_US;
    for (guint i = 0; i < pool->n_workers; i++) {
      Worker *w = &pool->workers[i];
      gboolean idle = w->inflight.length == 0 && !pool->ready.head;
      if (w->link && !w->link_gone && !w->quit_sent &&
          ((w->state == W_RETIRING && w->inflight.length == 0) ||
           (shutting_down && idle && w->state != W_STARTING))) {
        gsize at = tr_wire_begin (&w->out, TR_MSG_QUIT);
        tr_wire_end (&w->out, at);
        w->quit_sent = TRUE;
      }
      if (w->link && !w->link_gone && w->out.len > w->out_off)
        worker_write (w);
    }
    int hand_over_ms = -1;
    if (shutting_down || pool->io_terminated)
      io_flush_completed (pool);
    else
      hand_over_ms = io_hand_over (pool, input_ended);
    check_started (pool, &announced);

    if (shutting_down && !any_worker_alive (pool))
      break;
    if (shutting_down && g_get_monotonic_time () > shutdown_deadline) {
      /* a worker_fini that takes longer than the grace is the plugin's fault, but must be
       * said: whatever it was finishing is not finished */
      for (guint i = 0; i < pool->n_workers; i++)
        if (pool->workers[i].link) {
          g_printerr ("taskrun: worker %u (pid %d) did not exit within %d s of the end of the "
                      "job (its plugin's worker_fini, or a task's program holding it) and was "
                      "killed\n", pool->workers[i].slot, (int) pool->workers[i].link->pid,
                      (int) (SHUTDOWN_GRACE_US / G_USEC_PER_SEC));
          worker_end (pool, &pool->workers[i], "did not exit after the pool was closed and was killed",
                      TR_TASK_ERROR_TERMINATED);
        }
      io_flush_completed (pool);
      break;
    }

    /* Before the poll set is made: these may end a worker and start its replacement.
     * A worker ended changes what the loop above decides (a start to announce, tasks
     * to share out), so the loop runs again before it waits. */
    guint ends = pool->ends;
    int gone_ms = check_links_gone (pool);
    int timeout = check_timeouts (pool);
    if (pool->ends != ends)
      continue;
    int restart_ms = check_restarts (pool);
    if (restart_ms >= 0 && (gone_ms < 0 || restart_ms < gone_ms))
      gone_ms = restart_ms;
    nfds_t nfds = 0;
    fds[nfds++] = (struct pollfd) { .fd = pool->wake_fd, .events = POLLIN };
    guint np = 0;
    /* Workers' lines wait while the main thread has many not yet written (a slow
     * terminal, a full pipe downstream): then the pipes fill and the workers that print
     * wait in write(), as they would on a slow terminal of their own, instead of taskrun
     * holding without bound what they print.  The backlog is looked at every 10 ms. */
    gboolean read_output = g_atomic_int_get (&pool->output_backlog) < OUTPUT_BACKLOG_MAX;
    for (guint i = 0; i < pool->n_workers; i++) {
      Worker *w = &pool->workers[i];
      if (!w->link)
        continue;
      if (!w->link_gone) {
        short ev = POLLIN;
        if (w->out.len > w->out_off)
          ev |= POLLOUT;
        fds[nfds++] = (struct pollfd) { .fd = w->link->fd, .events = ev };
        polled[np++] = (Polled) { w, w->spawns, FALSE, 0 };
      }
      if (w->link->klass->ended && w->link->exit_fd >= 0) {
        fds[nfds++] = (struct pollfd) { .fd = w->link->exit_fd, .events = POLLIN };
        polled[np++] = (Polled) { w, w->spawns, TRUE, 0 };
      }
      for (int s = 0; s < 2 && read_output; s++)
        if (w->out_fd[s] >= 0) {
          fds[nfds++] = (struct pollfd) { .fd = w->out_fd[s], .events = POLLIN };
          polled[np++] = (Polled) { w, w->spawns, FALSE, s + 1 };
        }
    }
    if (!read_output && (timeout < 0 || timeout > 10))
      timeout = 10;
    if (gone_ms >= 0 && (timeout < 0 || gone_ms < timeout))
      timeout = gone_ms;
    if (shutting_down && (timeout < 0 || timeout > 100))
      timeout = 100;
    if (hand_over_ms >= 0 && (timeout < 0 || hand_over_ms < timeout))
      timeout = hand_over_ms;
    int r = poll (fds, nfds, timeout);
    if (r < 0 && errno != EINTR)
      g_error ("taskrun: poll failed: %s", g_strerror (errno));
    if (r <= 0)
      continue;
    if (fds[0].revents & POLLIN) {
      guint64 v;
      if (read (pool->wake_fd, &v, sizeof v) < 0) {
        /* EAGAIN: already drained */
      }
    }
    for (guint j = 0; j < np; j++) {
      Worker *w = polled[j].w;
      short re = fds[j + 1].revents;
      /* a worker ended (and perhaps restarted) by an earlier entry is not this one's */
      if (!w->link || re == 0 || w->spawns != polled[j].spawns)
        continue;
      if (polled[j].output) {
        worker_read_output (pool, w, polled[j].output - 1, OUTPUT_READS_PER_WAKE * OUTPUT_CHUNK);
        continue;
      }
      if (polled[j].exit) {
        worker_process_ended (pool, w);
        continue;
      }
      if (re & POLLOUT)
        worker_write (w);
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        if (worker_read (pool, w) == READ_GONE)
          worker_link_ended (pool, w);
      }
    }
  }
  io_flush_completed (pool);
  g_free (fds);
  g_free (polled);
  g_mutex_lock (&pool->lock);
  pool->started = TRUE;
  pool->terminated = TRUE;
  g_cond_broadcast (&pool->cond);
  g_mutex_unlock (&pool->lock);
  return NULL;
}

/* ---- main thread ------------------------------------------------------------------- */

static void
wake_io (TrPool *pool)
{
  guint64 one = 1;
  if (write (pool->wake_fd, &one, sizeof one) < 0) {
    /* EAGAIN: the counter is already non-zero, the thread will wake */
  }
}

static void
submit_queue (TrPool *pool, TaskQueue *q)
{
  if (!q->head)
    return;
  pool->outstanding += q->length;
  g_mutex_lock (&pool->lock);
  gboolean was_empty = pool->submitted.head == NULL;
  tq_append (&pool->submitted, q);
  pool->submitted_oversize += pool->oversize_made;
  pool->oversize_made = 0;
  g_mutex_unlock (&pool->lock);
  if (was_empty)
    wake_io (pool);
}

/* Tells the I/O thread whether more submissions are on their way.  With none coming it
 * shares out the tail of the work evenly; this is a scheduling hint, not a promise. */
static void
set_input_ended (TrPool *pool, gboolean ended)
{
  if (g_atomic_int_get (&pool->input_ended) != ended) {
    g_atomic_int_set (&pool->input_ended, ended);
    if (ended)
      wake_io (pool);
  }
}

static gboolean
retryable (TrPool *pool, const GError *error, guint attempt, gsize payload_len)
{
  /* after close the retries of tasks already in still run (join waits for them); once the
   * I/O thread has stopped, nothing can */
  if (!error || attempt > pool->retries || pool->joined ||
      g_atomic_int_get (&pool->cancel_req) || g_atomic_int_get (&pool->terminate_req) ||
      payload_len > MAX_PAYLOAD) /* it can never be sent */
    return FALSE;
  return !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED) &&
         !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_TERMINATED) &&
         !g_error_matches (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
}

/* A task of a bundle failed (v is its view, res its record): it runs again as a single
 * task if it may, else its error callback sees it. */
static void
deliver_bundle_failure (TrPool *pool, TrAsync *b, guint i, TrResult *v, const TrWireResult *res)
{
  g_autofree char *msg = g_utf8_make_valid ((const char *) res->message, res->message_len);
  g_autoptr (GError) error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_FAILED, msg);
  gboolean again = retryable (pool, error, 1, v->sent);
  v->error = error;
  v->error_code = (int) res->code;
  v->exit_value = 1;
  v->final = !again;
  if ((!again || b->report_attempts) && b->error_callback)
    b->error_callback (v, b->user_data);
  if (again) {
    TrAsync *a = async_new (pool, v->seq, v->description, NULL, v->payload, v->sent, v->units);
    stream_task_init (a, b->user_data, b->bundle->first_order + i);
    a->attempt = 2;
    TaskQueue q = { 0 };
    tq_push_tail (&q, a);
    submit_queue (pool, &q);
  }
  v->error = NULL;
  v->error_code = v->exit_value = 0;
  v->final = TRUE;
}

/* Hands over the results of a bundle answered whole, read from its answer as its tasks
 * are read from its wire bytes.  One view serves every task: what all share is set once. */
static void
deliver_bundle (TrPool *pool, TrAsync *b)
{
  Bundle *bu = b->bundle;
  TrWireReader tasks, answer;
  tr_wire_reader_init (&tasks, bu->wire.data, bu->wire.len);
  tr_wire_reader_init (&answer, bu->answer, bu->answer_len);
  tr_wire_get_u32 (&answer);
  const char *text = bu->text ? bu->text->str : ""; /* text_at is 0 without descriptions */
  TrResult v = { .worker = b->worker, .worker_pid = b->pid, .attempt = 1, .final = TRUE };
  for (guint i = 0; i < b->count; i++) {
    TrWireTask t;
    TrWireResult res;
    if (!tr_wire_read_task (&tasks, &t) || !tr_wire_read_result (&answer, &res))
      g_error ("taskrun: a bundle of tasks is corrupt"); /* checked by the I/O thread */
    v.seq = bu->seq[i];
    v.description = text + bu->text_at[i];
    v.data = res.data;
    v.len = res.len;
    v.seconds = res.run_ns / 1e9;
    v.units = bu->units[i];
    v.start_time = res.start_us / 1e6;
    v.payload = t.payload;
    v.sent = t.len;
    pool->outstanding--;
    if (G_UNLIKELY (res.failed))
      deliver_bundle_failure (pool, b, i, &v, &res);
    else if (b->callback)
      b->callback (&v, b->user_data);
  }
  if (pool->free_bundle_count < BUNDLES_KEPT) {
    b->next = pool->free_bundles;
    pool->free_bundles = b;
    pool->free_bundle_count++;
  } else {
    tr_async_unref (b);
  }
}

static void
deliver (TrPool *pool, TrAsync *a)
{
  if (a->bundle) {
    deliver_bundle (pool, a);
    return;
  }
  gboolean again = retryable (pool, a->error, a->attempt, a->payload_len);
  TrResult *v = &a->result_view;
  v->seq = a->seq;
  v->description = a->description ? a->description : "";
  v->data = a->result;
  v->len = a->result_len;
  v->error = a->error;
  v->error_code = a->error ? a->error_code : 0;
  v->worker = a->worker;
  v->worker_pid = a->pid;
  v->seconds = a->seconds;
  v->units = a->units;
  v->attempt = a->attempt;
  v->final = !again;
  v->start_time = a->start_time;
  v->payload = a->payload;
  v->sent = a->payload_len;
  v->exit_value = a->error ? a->exit_value : 0;
  v->signal = a->error ? a->signal : 0;

  pool->outstanding--;
  if (again) {
    if (a->report_attempts && a->error_callback)
      a->error_callback (&a->result_view, a->user_data);
    async_clear_result (a);
    a->attempt++;
    a->worker = 0;
    a->pid = 0;
    TaskQueue q = { 0 };
    tq_push_tail (&q, a);
    submit_queue (pool, &q);
    return;
  }
  a->done = TRUE;
  TrResultFunc cb = a->error ? a->error_callback : a->callback;
  if (cb)
    cb (&a->result_view, a->user_data);
  tr_async_unref (a);
}

/* Writes a hand-over of workers' lines (io_flush_completed) and frees it. */
static void
deliver_output (TrPool *pool, GPtrArray *lines)
{
  for (int s = 0; s < 2; s++) {
    GString *text = g_ptr_array_index (lines, 1 + s);
    if (text->len) {
      if (pool->output_func) {
        pool->output_func (s + 1, text->str, text->len, pool->output_data);
      } else {
        fwrite (text->str, 1, text->len, s ? stderr : stdout);
        fflush (s ? stderr : stdout);
      }
      g_atomic_int_add (&pool->output_backlog, -(gint) text->len);
    }
    g_string_free (text, TRUE);
  }
  g_ptr_array_unref (lines);
}

/* Handles one batch of finished tasks (or of workers' lines).  timeout_us < 0: wait as
 * long as it takes. */
static gboolean
pump (TrPool *pool, gint64 timeout_us)
{
  GPtrArray *batch;
  if (timeout_us < 0)
    batch = g_async_queue_pop (pool->results);
  else if (timeout_us == 0)
    batch = g_async_queue_try_pop (pool->results);
  else
    batch = g_async_queue_timeout_pop (pool->results, (guint64) timeout_us);
  if (!batch)
    return FALSE;
  if (batch->len && g_ptr_array_index (batch, 0) == output_tag) {
    deliver_output (pool, batch);
    return TRUE;
  }
  for (guint i = 0; i < batch->len; i++)
    deliver (pool, g_ptr_array_index (batch, i));
  g_ptr_array_unref (batch);
  return TRUE;
}

TrPool *
tr_pool_new (TrPlugin *plugin, const TrConfig *config, const TrPoolOptions *options,
             GError **error)
{
  return tr_pool_new_on_link (&tr_link_local, plugin, config, options, error);
}

TrPool *
tr_pool_new_on_link (const TrLinkClass *link_class, TrPlugin *plugin, const TrConfig *config,
                     const TrPoolOptions *options, GError **error)
{
  TrPoolOptions defaults = { 0 };
  if (!options)
    options = &defaults;
  TrPool *pool = g_new0 (TrPool, 1);
  pool->plugin = plugin;
  pool->config_pairs = config ? tr_config_to_pairs (config) : g_ptr_array_new ();
  pool->n_workers = options->workers ? options->workers : g_get_num_processors ();
  pool->max_tasks = options->max_tasks_per_worker;
  pool->batch = options->batch;
  pool->timeout_us = options->task_timeout > 0
                         ? MAX ((gint64) 1, (gint64) (options->task_timeout * G_USEC_PER_SEC))
                         : 0;
  pool->retries = options->retries;
  pool->start_timeout_us = (gint64) ((options->start_timeout > 0 ? options->start_timeout : 60) *
                                     G_USEC_PER_SEC);
  pool->program = options->worker_program ? g_strdup (options->worker_program)
                                          : tr_paths_worker_program ();
  pool->link_class = link_class;
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->cond);

  pool->results = g_async_queue_new ();
  pool->completed = g_ptr_array_new ();
  pool->workers = g_new0 (Worker, pool->n_workers);
  for (guint i = 0; i < pool->n_workers; i++) {
    pool->workers[i].slot = i + 1;
    tr_wire_buf_init (&pool->workers[i].out);
    pool->workers[i].in = g_byte_array_new ();
    pool->workers[i].out_fd[0] = pool->workers[i].out_fd[1] = -1;
    pool->workers[i].partial[0] = g_string_new (NULL);
    pool->workers[i].partial[1] = g_string_new (NULL);
  }
  pool->output[0] = g_string_new (NULL);
  pool->output[1] = g_string_new (NULL);
  pool->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);

  if (!g_file_test (pool->program, G_FILE_TEST_IS_EXECUTABLE)) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER,
                 "the worker program %s is missing or not executable", pool->program);
    tr_pool_free (pool);
    return NULL;
  }
  pool->io_thread = g_thread_try_new ("taskrun-io", io_main, pool, error);
  if (!pool->io_thread) {
    tr_pool_free (pool);
    return NULL;
  }
  /* While the workers start: the records of the first tasks, so that a job's first
   * tasks do not wait for fresh memory (a page fault is dear on some machines) */
  for (guint i = 0; i < PREALLOCATED_TASKS; i++) {
    TrAsync *a = g_new0 (TrAsync, 1);
    a->next = pool->free_list;
    pool->free_list = a;
    pool->free_count++;
  }
  gboolean interrupted = FALSE;
  g_mutex_lock (&pool->lock);
  while (!pool->started && !interrupted) {
    g_cond_wait_until (&pool->cond, &pool->lock, g_get_monotonic_time () + G_USEC_PER_SEC / 10);
    interrupted = options->interrupted && *options->interrupted;
  }
  char *start_error = g_steal_pointer (&pool->start_error);
  g_mutex_unlock (&pool->lock);
  if (interrupted && !pool->started) {
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
  return pool->n_workers;
}

static TrAsync *
submit_one (TrPool *pool, guint64 seq, const char *description, GBytes *payload, guint64 units,
            TrResultFunc callback, TrResultFunc error_callback, gpointer user_data)
{
  TrAsync *a = async_new (pool, seq, description, payload, NULL, 0, units);
  a->callback = callback;
  a->error_callback = error_callback;
  a->user_data = user_data;
  if (pool->closed || pool->joined) {
    a->error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED,
                                    "the pool is closed: no more tasks can be submitted");
    pool->outstanding++;
    GPtrArray *one = g_ptr_array_new ();
    g_ptr_array_add (one, a);
    g_async_queue_push (pool->results, one);
    return a;
  }
  set_input_ended (pool, FALSE);
  TaskQueue q = { 0 };
  tq_push_tail (&q, a);
  submit_queue (pool, &q);
  return a;
}

TrAsync *
tr_pool_apply_async (TrPool *pool, const char *description, GBytes *payload,
                     TrResultFunc callback, TrResultFunc error_callback, gpointer user_data)
{
  TrAsync *a = submit_one (pool, 0, description, payload, 1, callback, error_callback, user_data);
  return async_ref (a);
}

gboolean
tr_async_ready (TrAsync *a)
{
  while (!a->done && pump (a->pool, 0))
    ;
  return a->done;
}

gboolean
tr_async_wait (TrAsync *a, gint64 timeout_us)
{
  if (timeout_us < 0) {
    while (!a->done)
      pump (a->pool, -1);
    return TRUE;
  }
  gint64 deadline = g_get_monotonic_time () + timeout_us;
  while (!a->done) {
    gint64 left = deadline - g_get_monotonic_time ();
    if (left <= 0)
      return tr_async_ready (a);
    pump (a->pool, left);
  }
  return TRUE;
}

GBytes *
tr_async_get (TrAsync *a, GError **error)
{
  tr_async_wait (a, -1);
  if (a->error) {
    g_propagate_error (error, g_error_copy (a->error));
    return NULL;
  }
  return g_bytes_new (a->result, a->result_len);
}

const TrResult *
tr_async_peek_result (TrAsync *a)
{
  return a->done ? &a->result_view : NULL;
}

GBytes *
tr_pool_apply (TrPool *pool, const char *description, GBytes *payload, GError **error)
{
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, description, payload, NULL, NULL, NULL);
  return tr_async_get (a, error);
}

GPtrArray *
tr_pool_map (TrPool *pool, GPtrArray *payloads, GError **error)
{
  g_autoptr (GPtrArray) asyncs = g_ptr_array_new_with_free_func ((GDestroyNotify) tr_async_unref);
  for (guint i = 0; i < payloads->len; i++) {
    g_autofree char *desc = g_strdup_printf ("item %u", i);
    TrAsync *a = submit_one (pool, i + 1, desc, g_ptr_array_index (payloads, i), 1, NULL, NULL,
                             NULL);
    g_ptr_array_add (asyncs, async_ref (a));
  }
  set_input_ended (pool, TRUE);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  const GError *first = NULL;
  for (guint i = 0; i < asyncs->len; i++) {
    TrAsync *a = g_ptr_array_index (asyncs, i);
    tr_async_wait (a, -1);
    if (a->error && !first)
      first = a->error;
    if (!first)
      g_ptr_array_add (out, g_bytes_new (a->result, a->result_len));
  }
  if (first) {
    g_propagate_error (error, g_error_copy (first));
    g_ptr_array_unref (out);
    return NULL;
  }
  return out;
}

/* ---- streaming --------------------------------------------------------------------- */

typedef struct {
  TrResultFunc on_result;
  gpointer user_data;
  gboolean ordered;
  guint64 next_order;  /* ordered: the next task to hand to on_result */
  GHashTable *held;    /* ordered: order -> TrAsync* that finished early */
  guint64 in_window;   /* made and not yet handed to on_result */
  guint64 window_bytes; /* their payloads' bytes (see STREAM_WINDOW_BYTES) */
  TrStats *stats;
  GHashTable *pids;   /* slot << 32 | pid: the pids of two hosts may be equal */
  guint64 last_pid;
  guint bundle_size;  /* tasks per bundle now (see stream_bundle_for) */
} Stream;

/* Every attempt's worker process counts among those that ran tasks, a failed attempt
 * that is retried too. */
static void
stream_count_pid (Stream *s, const TrResult *r)
{
  guint64 key = (guint64) r->worker << 32 | (guint32) r->worker_pid;
  if (r->worker_pid && key != s->last_pid) {
    guint64 *k = g_new (guint64, 1);
    *k = key;
    g_hash_table_add (s->pids, k);
    s->last_pid = key;
  }
}

static void
stream_count (Stream *s, const TrResult *r)
{
  if (!r->error) {
    s->stats->succeeded++;
    s->stats->units_done += r->units;
  } else if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED)) {
    s->stats->not_run++;
  } else {
    s->stats->failed++;
  }
  stream_count_pid (s, r);
}

/* In ordered mode a result that comes early waits (and keeps its place in the window, so
 * memory stays bounded) until those made before it have been handed over. */
static void
stream_on_result (const TrResult *r, gpointer data)
{
  Stream *s = data;
  if (!r->final) {
    stream_count_pid (s, r);
    if (s->on_result)
      s->on_result (r, s->user_data);
    return;
  }
  stream_count (s, r);
  if (s->ordered) {
    /* an ordered stream makes no bundles: every result is a single task's view */
    TrAsync *a = (TrAsync *) ((char *) r - offsetof (TrAsync, result_view));
    if (a->order != s->next_order) {
      g_hash_table_insert (s->held, &a->order, async_ref (a));
      return;
    }
  }
  s->in_window--;
  s->window_bytes -= MIN (s->window_bytes, (guint64) r->sent);
  s->next_order++;
  if (s->on_result)
    s->on_result (r, s->user_data);
  if (!s->ordered)
    return;
  TrAsync *h;
  while ((h = g_hash_table_lookup (s->held, &s->next_order))) {
    g_hash_table_steal (s->held, &s->next_order);
    s->in_window--;
    s->window_bytes -= MIN (s->window_bytes, (guint64) h->result_view.sent);
    s->next_order++;
    if (s->on_result)
      s->on_result (&h->result_view, s->user_data);
    tr_async_unref (h);
  }
}

/* An empty bundle for about `size` tasks of `len` bytes: a recycled one if there is. */
static TrAsync *
bundle_new (TrPool *pool, guint size, gsize len)
{
  TrAsync *b = pool->free_bundles;
  if (b) {
    pool->free_bundles = b->next;
    pool->free_bundle_count--;
    Bundle *bu = b->bundle;
    bu->wire.len = 0;
    bu->bytes = 0;
    bu->answer_len = 0;
    if (bu->text)
      g_string_truncate (bu->text, 1); /* its leading NUL stays */
    b->next = NULL;
    b->count = 0;
    b->worker = 0;
    b->pid = 0;
  } else {
    b = g_new0 (TrAsync, 1);
    b->bundle = g_new0 (Bundle, 1);
    gsize expect = (gsize) MIN (size, AUTO_BATCH_MAX) * TR_WIRE_TASK_RECORD (len);
    tr_wire_buf_init (&b->bundle->wire);
    tr_wire_buf_grow (&b->bundle->wire, MIN (expect, BUNDLE_BYTES));
  }
  b->ref = 1;
  b->pool = pool;
  b->id = pool->next_id + 1;
  return b;
}

/* Puts the bundle being filled, if any, at the end of batch; returns NULL. */
static TrAsync *
bundle_close (TrAsync **open, TaskQueue *batch)
{
  if (*open) {
    tq_push_tail (batch, *open);
    *open = NULL;
  }
  return NULL;
}

/* What a task takes of a bundle's BUNDLE_BYTES: its payload and its description. */
static inline gsize
bundle_bytes_of (const TrTask *task)
{
  return task->payload.len + task->description->len + 1;
}

/* A stream's bundle being filled, for this task, or NULL when the task goes singly:
 * - one of the first tasks, which go at once, one by one;
 * - frames of fewer than BUNDLE_MIN_FRAME tasks: tasks that long gain nothing from
 *   bundles, and the tail of such a job is shared out finely;
 * - an ordered stream (early results wait in its hash table, by their task);
 * - max_tasks_per_worker (it counts the tasks a worker is sent);
 * - a payload over BUNDLE_PAYLOAD_MAX.
 * A new bundle is started when `open` is full, its bytes are spent, or a task was made
 * elsewhere in between (the ids of a bundle follow one another). */
static TrAsync *
stream_bundle_for (TrPool *pool, Stream *s, TrAsync **open, TaskQueue *batch, const TrTask *task)
{
  guint size = (guint) g_atomic_int_get (&pool->frame_tasks);
  /* No task timed yet: the records made while the workers started go first (a short
   * job of long tasks then runs as it always did, on records that need no fresh memory),
   * then bundles, which the I/O thread turns back into single tasks if they are long. */
  if (!size && pool->free_list)
    return bundle_close (open, batch);
  if (!size)
    size = AUTO_BATCH_MAX;
  /* A power of two, grown at once but shrunk only when the frames shrink fourfold: the
   * frame size follows every wobble of the measured task time (a task that waited for
   * its core counts as long), and each dip would fill the window with more, smaller
   * bundles beside the large ones kept for reuse, each dip raising the high-water mark
   * of the parent's memory a little more in a long run. */
  size = size >= AUTO_BATCH_MAX ? AUTO_BATCH_MAX : 1u << g_bit_nth_msf (size, -1);
  if (size > s->bundle_size || size * 4 <= s->bundle_size)
    s->bundle_size = size;
  size = s->bundle_size;
  gboolean single = pool->outstanding < 2 * (guint64) pool->n_workers ||
                    size < BUNDLE_MIN_FRAME || s->ordered || pool->max_tasks ||
                    task->payload.len > BUNDLE_PAYLOAD_MAX;
  TrAsync *b = *open;
  if (b && (single || b->count >= size ||
            b->bundle->bytes + bundle_bytes_of (task) > BUNDLE_BYTES ||
            pool->next_id != b->id + b->count - 1))
    b = bundle_close (open, batch);
  if (single)
    return NULL;
  if (!b) {
    b = *open = bundle_new (pool, size, task->payload.len);
    b->callback = b->error_callback = stream_on_result;
    b->user_data = s;
    b->report_attempts = TRUE;
  }
  return b;
}

static void
bundle_add (TrPool *pool, TrAsync *b, guint64 seq, guint64 order, const TrTask *task)
{
  Bundle *bu = b->bundle;
  if (b->count == bu->alloc) {
    bu->alloc = MAX (16, 2 * bu->alloc);
    bu->seq = g_renew (guint64, bu->seq, bu->alloc);
    bu->units = g_renew (guint64, bu->units, bu->alloc);
    bu->text_at = g_renew (guint32, bu->text_at, bu->alloc);
  }
  bu->text_at[b->count] = 0;
  if (task->description->len) {
    if (!bu->text)
      bu->text = g_string_new_len ("", 1);
    bu->text_at[b->count] = (guint32) bu->text->len;
    g_string_append_len (bu->text, task->description->str, task->description->len + 1);
  }
  if (b->count == 0)
    bu->first_order = order;
  tr_wire_put_task (&bu->wire, ++pool->next_id, task->payload.data, task->payload.len);
  bu->seq[b->count] = seq;
  bu->units[b->count] = task->units;
  bu->bytes += bundle_bytes_of (task);
  b->count++; /* not yet in any queue: no length to keep */
}

/* Closes the open bundle, if any, and hands over what the stream made. */
static void
stream_submit (TrPool *pool, TrAsync **open, TaskQueue *batch)
{
  bundle_close (open, batch);
  submit_queue (pool, batch);
}

void
tr_pool_stop_feeding (TrPool *pool)
{
  g_atomic_int_set (&pool->stop_feeding, 1);
  g_atomic_int_set (&pool->cancel_req, 1);
  wake_io (pool);
}

void
tr_pool_set_tick (TrPool *pool, void (*tick) (gpointer data), gpointer data)
{
  pool->tick = tick;
  pool->tick_data = data;
}

void
tr_pool_set_output (TrPool *pool,
                    void (*output) (int fd, const char *text, gsize len, gpointer data),
                    gpointer data)
{
  pool->output_func = output;
  pool->output_data = data;
}

void
tr_pool_request_terminate (TrPool *pool)
{
  g_atomic_int_set (&pool->stop_feeding, 1);
  g_atomic_int_set (&pool->terminate_req, 1);
  wake_io (pool);
}

/* How many tasks a stream may have made and not yet handed back: what keeps every worker
 * as full as the I/O thread wants it (twice its depth), and the hand-over groups, but no
 * more.  A fixed window of 8,192 tasks per worker held 2.4 GB at -j 1024 for tasks of a
 * second, each worker holding one; it follows the measured depth, so memory stays a few
 * MiB at any pool size, while tiny tasks keep their deep queues. */
static guint64
stream_window (TrPool *pool)
{
  guint64 depth = (guint64) g_atomic_int_get (&pool->depth_tasks);
  guint64 per_worker = depth ? MIN (2 * depth + 2, (guint64) MAX_DEPTH) : 16;
  if (pool->batch)
    per_worker = MAX (per_worker, 2 * (guint64) pool->batch);
  return MAX ((guint64) pool->n_workers * per_worker, (guint64) SUBMIT_GROUP) + 64;
}

gboolean
tr_pool_stream (TrPool *pool, TrGeneratorFunc generator, TrResultFunc on_result,
                gpointer user_data, gboolean ordered, TrStats *stats, GError **error)
{
  TrStats local = { 0 };
  if (!stats)
    stats = &local;
  memset (stats, 0, sizeof *stats);
  stats->workers = pool->n_workers;
  Stream s = {
    .on_result = on_result, .user_data = user_data, .ordered = ordered,
    .next_order = 1, .stats = stats,
    .held = g_hash_table_new (g_int64_hash, g_int64_equal),
    .pids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL),
  };
  gint64 t0 = g_get_monotonic_time ();
  gboolean gen_done = pool->closed, stopping = FALSE;
  set_input_ended (pool, gen_done);
  GError *gen_error = NULL;
  TrTask task;
  tr_task_init (&task);
  TaskQueue batch = { 0 };
  TrAsync *open = NULL; /* the bundle being filled */
  gint64 batch_since = 0;

  for (;;) {
    guint pulled = 0;
    guint64 window = stream_window (pool);
    while (!gen_done && !stopping && s.in_window < window &&
           (s.window_bytes < STREAM_WINDOW_BYTES || s.in_window == 0)) {
      if (g_atomic_int_get (&pool->stop_feeding)) {
        stopping = TRUE;
        break;
      }
      tr_task_reset (&task);
      TrNext next = generator (user_data, &task, &gen_error);
      if (next != TR_NEXT_TASK) {
        gen_done = TRUE;
        if (next == TR_NEXT_ERROR && !gen_error)
          gen_error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                                           "the task generator failed (no reason given)");
        break;
      }
      stats->total++;
      guint64 seq = task.seq ? task.seq : stats->total;
      guint pending = batch.length + (open ? open->count : 0);
      if (pending == 0)
        batch_since = g_get_monotonic_time ();
      TrAsync *b = stream_bundle_for (pool, &s, &open, &batch, &task);
      if (b) {
        bundle_add (pool, b, seq, stats->total, &task);
      } else {
        TrAsync *a = async_new (pool, seq, task.description->str, NULL, task.payload.data,
                                task.payload.len, task.units);
        stream_task_init (a, &s, stats->total);
        tq_push_tail (&batch, a);
      }
      pending++;
      s.in_window++;
      s.window_bytes += task.payload.len;
      /* Hand tasks over in groups, but never sit on them: while the pool holds fewer
       * tasks than its workers take before any is timed (two each), each task goes at
       * once (the first ones of a job start while the generator makes the rest), and a
       * slow generator (a directory walk) must not keep idle workers waiting.  The
       * groups are large: a short job's generator then ends before the I/O thread sees
       * most of its tasks, and they are shared out as a tail (with groups of 256, 300
       * tasks went out as 200 held at once by the first two workers and 100 shared).
       * The clock is read when the group reaches 2, 4, 8 ... tasks: on some machines a
       * read costs as much as a tiny task. */
      if (pending >= SUBMIT_GROUP || pool->outstanding < 2 * (guint64) pool->n_workers ||
          ((pending & (pending - 1)) == 0 && g_get_monotonic_time () - batch_since > 1000))
        stream_submit (pool, &open, &batch);
      if (++pulled % SUBMIT_GROUP == 0) {
        stream_submit (pool, &open, &batch);
        while (pump (pool, 0))
          ;
      }
    }
    /* ended before the last tasks go: the I/O thread must never see them and think that
     * more are coming, or it would hand them all to the first worker that asks */
    if (gen_done || stopping)
      set_input_ended (pool, TRUE);
    stream_submit (pool, &open, &batch);
    if (g_atomic_int_get (&pool->stop_feeding))
      stopping = TRUE;
    if (s.in_window == 0 && (gen_done || stopping))
      break;
    pump (pool, 100 * 1000);
    if (pool->tick)
      pool->tick (pool->tick_data);
  }

  tr_task_clear (&task);
  stats->seconds = (g_get_monotonic_time () - t0) / 1e6;
  stats->distinct_pids = g_hash_table_size (s.pids);
  /* the slots the job ended with: fewer when some could not be started again */
  stats->workers = pool->n_workers - (guint) g_atomic_int_get (&pool->slots_lost);
  stats->workers_started = pool->n_workers;
  g_hash_table_unref (s.pids);
  GHashTableIter it;
  gpointer held;
  g_hash_table_iter_init (&it, s.held);
  while (g_hash_table_iter_next (&it, NULL, &held))
    tr_async_unref (held);
  g_hash_table_unref (s.held);
  if (gen_error) {
    g_propagate_error (error, gen_error);
    return FALSE;
  }
  return TRUE;
}

/* ---- close, join, terminate, free ---------------------------------------------------- */

void
tr_pool_close (TrPool *pool)
{
  pool->closed = TRUE;
  set_input_ended (pool, TRUE);
}

static void
stop_io_thread (TrPool *pool)
{
  if (!pool->io_thread)
    return;
  g_atomic_int_set (&pool->shutdown_req, 1);
  wake_io (pool);
  g_thread_join (pool->io_thread);
  pool->io_thread = NULL;
}

void
tr_pool_join (TrPool *pool)
{
  while (pool->outstanding > 0)
    pump (pool, -1);
  if (pool->closed && !pool->joined) {
    stop_io_thread (pool);
    pool->joined = TRUE;
    /* to the last hand-over: the workers' last lines may come after every result */
    while (pump (pool, 0))
      ;
  }
}

void
tr_pool_terminate (TrPool *pool)
{
  if (!pool->io_thread)
    return;
  g_atomic_int_set (&pool->terminate_req, 1);
  wake_io (pool);
  g_mutex_lock (&pool->lock);
  while (!pool->terminated)
    g_cond_wait (&pool->cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

void
tr_pool_free (TrPool *pool)
{
  if (!pool)
    return;
  if (pool->io_thread) {
    if (pool->outstanding > 0)
      tr_pool_terminate (pool);
    stop_io_thread (pool);
  }
  GPtrArray *batch;
  while ((batch = g_async_queue_try_pop (pool->results))) {
    if (batch->len && g_ptr_array_index (batch, 0) == output_tag) {
      /* a worker's last words (why its worker_init failed, say) are written all the same */
      deliver_output (pool, batch);
      continue;
    }
    for (guint i = 0; i < batch->len; i++)
      tr_async_unref (g_ptr_array_index (batch, i));
    g_ptr_array_unref (batch);
  }
  g_async_queue_unref (pool->results);
  for (guint i = 0; i < pool->n_workers; i++) {
    Worker *w = &pool->workers[i];
    if (w->link) {
      gboolean clean;
      w->link->klass->kill (w->link);
      int status;
      g_free (w->link->klass->close (w->link, &clean, &status));
    }
    for (int s = 0; s < 2; s++) {
      if (w->out_fd[s] >= 0)
        close (w->out_fd[s]);
      g_string_free (w->partial[s], TRUE);
    }
    TrAsync *a;
    while ((a = tq_pop_head (&w->inflight)))
      tr_async_unref (a);
    g_queue_clear (&w->frames);
    tr_wire_buf_clear (&w->out);
    g_byte_array_unref (w->in);
    g_free (w->init_failed);
  }
  TrAsync *a;
  while ((a = tq_pop_head (&pool->submitted)))
    tr_async_unref (a);
  while ((a = tq_pop_head (&pool->ready)))
    tr_async_unref (a);
  while ((a = pool->free_list)) {
    pool->free_list = a->next;
    g_free (a);
  }
  while ((a = pool->free_bundles)) {
    pool->free_bundles = a->next;
    tr_async_unref (a);
  }
  g_ptr_array_unref (pool->completed);
  g_string_free (pool->output[0], TRUE);
  g_string_free (pool->output[1], TRUE);
  g_free (pool->workers);
  g_free (pool->fatal_error);
  g_free (pool->start_error);
  g_free (pool->program);
  g_ptr_array_unref (pool->config_pairs);
  if (pool->wake_fd >= 0)
    close (pool->wake_fd);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->cond);
  g_free (pool);
}
