/* private.h — the pool's types, shared by the files of core/pool/ and by nothing else.
 *
 * Owns: the task record, the bundle, the task queue, the worker slot and the pool, with
 * which thread owns each piece of state shown in the type: TrPool is four parts named
 * by their owner (settings, shared, main, io), and the files of each thread touch only
 * their thread's part and the shared one (tests/check-pool-owners.sh checks it).
 * Does not own: what the state means; each file's opening comment says that.
 *
 * The files, from the bottom up (each calls only those below it, and handoff.c is the
 * one that both threads call):
 *   schedule.c  the dispatch policy (pure)
 *   record.c    task records and their free lists
 *   bundle.c    a bundle's bytes
 *   handoff.c   what crosses between the threads
 *   deliver.c   handing results, lines and events to the caller (main thread)
 *   output.c    workers' lines, and their starts and ends (I/O thread)
 *   answers.c   reading a worker's frames (I/O thread)
 *   slots.c     one worker slot's life (I/O thread)
 *   io.c        the I/O thread's loop and dispatch
 *   stream.c    tr_pool_stream (main thread)
 *   pool.c      the public API (main thread)
 */
#ifndef TASKRUN_POOL_PRIVATE_H
#define TASKRUN_POOL_PRIVATE_H

#include "internal.h"
#include "link.h"
#include "wire.h"
#include "schedule.h"

#define MAX_PAYLOAD (TR_WIRE_MAX_BODY - 1024) /* a task's payload must fit in one frame */
#define INLINE_PAYLOAD 48
#define INLINE_RESULT 32

typedef struct TrTaskRecord TrTaskRecord; /* the public TrAsync */
typedef struct Bundle Bundle;

/* ---- the task record ------------------------------------------------------------------ */

/* Whom a record's results go to, and how: main thread only. */
typedef struct {
  TrResultFunc callback, error_callback;
  gpointer user_data;
  gboolean recyclable;      /* a stream's: goes back to the main part's free list */
  gboolean report_attempts; /* the callback also sees attempts that will be retried */
  gboolean done;
  TrResult view;
} RecordCaller;

/* One task (or one bundle of a stream's tasks) from submission to its last callback.
 * The main thread fills `task` and `caller` and submits it; from then until it is
 * handed back, only the I/O thread touches it (`task` read, `outcome` written); after
 * that only the main thread.  A record crosses whole, so no field is shared at once. */
struct TrTaskRecord {
  TrTaskRecord *next; /* the queue it is in: submitted, ready, in flight, or a free list */
  gint ref;           /* atomic: the caller's reference and the pool's */
  guint count;        /* tasks: 1, or a bundle's */
  Bundle *bundle;     /* NULL: a single task */
  TrPool *pool;
  struct {
    guint64 id;    /* unique in the pool, matches results to tasks on the wire (a
                    * bundle's first task's; the others follow) */
    guint64 seq;   /* what TrResult.seq shows */
    guint64 order; /* a stream's: 1, 2, 3 ... in the order the generator made them */
    char *description; /* NULL: none */
    const guint8 *payload;
    gsize payload_len;
    GBytes *payload_bytes; /* when the caller gave GBytes, else NULL */
    guint8 *payload_heap;  /* a copy too large for payload_inline */
    guint64 units;
    guint attempt;
    gboolean isolate; /* was in a frame whose worker died: runs alone next time */
  } task;
  struct {
    guint8 *result; /* result_inline or result_heap; NULL: none */
    gsize result_len;
    guint8 *result_heap;
    GError *error; /* TrResult.error_code is its code */
    guint worker;
    GPid pid;
    double seconds;
    double start_time;
    int exit_value;
    int signal;
    guint n_files;                 /* descriptors the task attached, this process's own */
    int files[TR_WIRE_TASK_FILES];
  } outcome;
  RecordCaller caller;
  guint8 payload_inline[INLINE_PAYLOAD];
  guint8 result_inline[INLINE_RESULT];
};

/* A FIFO of records linked through next: no allocation per push.  Its length counts
 * tasks, a bundle as many as it holds. */
typedef struct {
  TrTaskRecord *head, *tail;
  guint length;
} TaskQueue;

static inline void
tq_push_tail (TaskQueue *q, TrTaskRecord *a)
{
  a->next = NULL;
  if (q->tail)
    q->tail->next = a;
  else
    q->head = a;
  q->tail = a;
  q->length += a->count;
}

static inline TrTaskRecord *
tq_pop_head (TaskQueue *q)
{
  TrTaskRecord *a = q->head;
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

/* ---- the worker slot (I/O thread) ------------------------------------------------------ */

typedef enum { W_DEAD, W_STARTING, W_READY, W_RETIRING } WorkerState;

/* A slot's clocks for its current process: reset as one when a process is spawned. */
typedef struct {
  gint64 spawned;          /* when it was started */
  gint64 head_started;     /* when the first task in flight started (about) */
  gint64 term_sent;        /* task_timeout: when SIGTERM went; 0: not */
  TrTaskRecord *timed_out; /* the task that was late when SIGTERM went */
  gboolean kill_sent;      /* task_timeout: SIGKILL sent after the grace */
  gint64 link_gone;        /* when its link ended while its process lived on; 0: not */
  gboolean link_kill_sent; /* its group was killed for that */
} WorkerClocks;

/* What the current process was given and told, and how fast it ran: reset as one. */
typedef struct {
  guint64 sent;       /* tasks sent */
  double mean_ns;     /* its mean task time (0: none yet): its speed, for the tail */
  gboolean quit_sent;
  gboolean cancel_sent; /* told to start no more tasks (TR_MSG_CANCEL) */
} WorkerLoad;

typedef struct {
  guint slot;
  TrLink *link;
  WorkerState state;
  TaskQueue inflight; /* in the order sent */
  GQueue frames;      /* tasks per TASKS frame in flight, as GUINT_TO_POINTER, in order */
  WorkerClocks clocks;
  WorkerLoad load;
  TrWireBuf out;
  gsize out_off;
  GByteArray *in;
  guint64 spawns;       /* processes started for this slot */
  guint start_tries;    /* failed starts in a row since the job's start (slots.c) */
  gint64 restart_at;    /* when to start this slot again; 0: not to be */
  char *init_failed;    /* what its INIT_FAILED said, if it did */
  int out_fd[2];        /* its stdout and stderr pipes, taken from its link; -1: none */
  GString *partial[2];  /* the last line each began and has not ended */
} Worker;

/* ---- the pool ---------------------------------------------------------------------------- */

/* Set by tr_pool_new before the I/O thread starts; read by both, changed by neither. */
typedef struct {
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
} PoolSettings;

/* Both threads: the fields under `lock`, or atomic, as marked. */
typedef struct {
  int wake_fd; /* eventfd: the main thread wakes the I/O thread */
  GMutex lock;
  GCond cond;
  TaskQueue submitted;      /* lock */
  guint submitted_oversize; /* lock: tasks in `submitted` too large to send */
  gboolean started;         /* lock: the first workers have all said HELLO or failed */
  char *start_error;        /* lock */
  gboolean terminated;      /* lock: workers killed after a terminate request */
  gint terminate_req;       /* atomic */
  gint cancel_req;          /* atomic: stop feeding, cancel what no worker holds */
  gint shutdown_req;        /* atomic */
  gint input_ended;         /* atomic: the main thread will submit nothing more for now */
  gint frame_tasks;         /* atomic: the frame size published (tr_sched_published_frame) */
  gint depth_tasks;         /* atomic: the depth published (tr_sched_published_depth) */
  gint slots_lost;          /* atomic: slots given up after failed restarts */
  gint output_backlog;      /* atomic: bytes of lines handed over and not yet written */
  GAsyncQueue *results;     /* GPtrArray* of records, or of workers' lines (output_tag):
                             * I/O thread -> main thread */
  int results_fd;           /* eventfd: the I/O thread wakes a main thread waiting for
                             * `results` (handoff.c says why not the queue's own wait) */
  gint main_waiting;        /* atomic: the main thread waits on results_fd */
} PoolShared;

/* The thread that made the pool: it submits, and runs every callback. */
typedef struct {
  GThread *io_thread;
  GThread *owner;              /* the thread that made the pool: the only one that calls in */
  guint fork_generation;       /* tr_fork_generation () when it was made (pool.c) */
  guint64 next_id;
  guint64 outstanding;
  guint oversize_made;         /* tasks made too large to send, not yet submitted */
  TrTaskRecord *free_records;  /* recycled stream records (record.c) */
  guint free_count;
  TrTaskRecord *free_bundles;  /* recycled bundles (bundle.c) */
  guint free_bundle_count;
  void (*tick) (gpointer data);
  gpointer tick_data;
  void (*output_func) (int fd, const char *text, gsize len, gpointer data);
  gpointer output_data;
  TrPoolEventFunc event_func;
  gpointer event_data;
  TrPoolPhaseFunc phase_func;
  gpointer phase_data;
  gboolean closed;
  gboolean joined;
  /* the hand-over whose records are being delivered, and the next one of them: a
   * callback that calls into the pool (to wait for a task of the same hand-over, or to
   * join) gets those delivered first, not a wait for the queue (handoff_pump) */
  GPtrArray *delivering;
  guint delivering_next;
} PoolMain;

/* The I/O thread: it owns the workers (and, once it has been joined, the main thread
 * frees all of this in io_state_free). */
typedef struct {
  Worker *workers;
  TaskQueue ready;
  double mean_ns;         /* the pool's mean task time */
  gboolean have_mean;
  guint64 timed;          /* tasks whose run time was measured */
  GPtrArray *completed;   /* finished, to hand over (handoff.c) */
  gint64 completed_since; /* when the oldest of them finished */
  char *fatal_error;
  gboolean terminated;
  gboolean cancelled;
  gboolean started;       /* the job's start is over (io.c, check_started) */
  guint rr;
  guint ends;             /* workers ended so far */
  gint64 next_exit_probe; /* see check_links_gone */
  GString *output[2];     /* whole lines of the workers' stdout and stderr, to hand over */
  gint64 output_since;    /* when the oldest of them, or of `events`, was read */
  GArray *events;         /* TrPoolEvent: the workers' starts and ends, to hand over with
                           * the lines (output.c) */
} PoolIo;

struct TrPool {
  PoolSettings settings;
  PoolShared shared;
  PoolMain main;
  PoolIo io;
};

/* Marks a hand-over of workers' lines rather than of finished tasks: it is the array's
 * first pointer, followed by the stdout and the stderr GString, and the GArray of
 * TrPoolEvent (output.c). */
extern const char tr_pool_output_tag[];

/* ---- pool.c ------------------------------------------------------------------------------ */

/* Whether the calling thread may use the pool: the thread that made it, in the process
 * that made it (a child's copy after fork is not the pool: its I/O thread and its workers
 * are the parent's); FALSE with a g_critical naming `func`.  Every entry point but the
 * signal-safe ones asks. */
gboolean pool_owned (const TrPool *pool, const char *func);

/* ---- record.c -------------------------------------------------------------------------- */

/* Main thread: a new record, from the main part's free list when it has one.  Exactly
 * one of `bytes` (kept by reference) or `data` (copied) is used. */
TrTaskRecord *record_new (PoolMain *m, TrPool *pool, guint64 seq, const char *description,
                          GBytes *bytes, const guint8 *data, gsize len, guint64 units);
/* Either thread: a record of its own memory, never from a free list. */
TrTaskRecord *record_new_unpooled (TrPool *pool);
TrTaskRecord *record_ref (TrTaskRecord *a);
void record_copy_payload (TrTaskRecord *a, const guint8 *data, gsize len);
void record_clear_outcome (TrTaskRecord *a);
/* Main thread: what tr_pool_new makes ahead, and what tr_pool_free frees. */
void record_preallocate (PoolMain *m, guint n);
void record_free_lists (PoolMain *m);
/* Makes a single record one of a stream's (`stream` is its Stream, stream.c): its
 * results go to tr_stream_on_result, attempts included, and its record is recycled. */
void record_stream_init (TrTaskRecord *a, gpointer stream, guint64 order);
void tr_stream_on_result (const TrResult *r, gpointer data);

/* ---- bundle.c ---------------------------------------------------------------------------- */

/* Main thread: an empty bundle for about `size` tasks of `len` bytes, recycled if one
 * is kept; its tasks then get ids from next_id + 1 on. */
TrTaskRecord *bundle_new (PoolMain *m, TrPool *pool, guint size, gsize len);
/* What a task takes of a bundle's BUNDLE_BYTES. */
static inline gsize
bundle_bytes_of (const TrTask *task)
{
  return task->payload.len + task->description->len + 1;
}
/* Main thread: keeps a delivered bundle for the next, or frees it. */
void bundle_recycle (PoolMain *m, TrTaskRecord *b);
void bundle_free (Bundle *b);
/* Either thread: turns the record at the head of q, if a bundle, into its tasks in its
 * place, as single records of a stream.  The one place where a bundle is undone. */
void tq_unbundle_head (TaskQueue *q);
/* I/O thread: appends a TASKS frame of the bundle to out. */
void bundle_put_frame (const TrTaskRecord *b, TrWireBuf *out);

/* The check of an answer to a bundle: the RESULTS body must be a result of each of its
 * tasks in its place, nothing more.  Pure: it changes nothing, and says the sum and the
 * longest of the run times. */
typedef struct {
  double sum_ns, max_ns;
} BundleAnswer;
gboolean bundle_check_answer (const TrTaskRecord *b, const guint8 *body, gsize len,
                              BundleAnswer *out);
/* I/O thread: keeps a copy of a checked answer. */
void bundle_keep_answer (TrTaskRecord *b, const guint8 *body, gsize len);

/* Main thread: a walk over a delivered bundle's tasks with their results (bundle.h). */
typedef struct {
  const TrTaskRecord *b;
  TrWireReader tasks, answer;
  guint i;
} BundleCursor;
typedef struct {
  guint64 seq, units, order;
  const char *description;
  const guint8 *payload;
  gsize payload_len;
  TrWireResult res;
} BundleItem;

/* ---- handoff.c --------------------------------------------------------------------------- */

/* I/O thread. */
void handoff_complete (TrPool *pool, TrTaskRecord *a);
void handoff_fail (TrPool *pool, TrTaskRecord *a, TrTaskErrorCode code, const char *message,
                   int exit_value, int signal);
void handoff_fail_queue (TrPool *pool, TaskQueue *q, TrTaskErrorCode code, const char *message);
void handoff_flush (TrPool *pool);
int handoff_due_ms (TrPool *pool, gboolean input_ended);
void handoff_take_submitted (TrPool *pool);
/* Main thread. */
void handoff_wake_io (TrPool *pool);
void handoff_submit (TrPool *pool, TaskQueue *q);
void handoff_set_input_ended (TrPool *pool, gboolean ended);
gboolean handoff_pump (TrPool *pool, gint64 timeout_us);
void handoff_deliver_output (TrPool *pool, GPtrArray *lines);
void handoff_refuse (TrPool *pool, TrTaskRecord *a, const char *why);
/* Main thread, before the I/O thread starts and once it has been joined. */
void handoff_init (TrPool *pool);
void handoff_free (TrPool *pool);

/* ---- output.c (I/O thread) ---------------------------------------------------------------- */

void output_add (TrPool *pool, int s, const char *text, gsize len);

/* I/O thread: records that slot's worker process `pid` started or ended, or that the
 * slot is started again or given up, for the next hand-over; `where` and `text` (either
 * may be NULL) are copied. */
void events_add (TrPool *pool, TrPoolEventKind kind, guint slot, GPid pid, const char *where,
                 const char *text);

void output_read (TrPool *pool, Worker *w, int s);
void output_drain (TrPool *pool, Worker *w);
/* Whether the main thread writes fast enough for more lines to be read. */
gboolean output_may_read (TrPool *pool);

/* ---- answers.c (I/O thread) --------------------------------------------------------------- */

typedef enum {
  READ_OK,    /* read what there was */
  READ_GONE,  /* end of stream: the worker must be reaped */
  READ_BAD,   /* the worker broke the protocol: it must be ended (slot_read does) */
  READ_ENDED, /* it was ended for that (and perhaps replaced) */
} ReadStatus;
ReadStatus answers_read (TrPool *pool, Worker *w);
void answers_write (Worker *w);
/* Tasks a worker held but did not run, back to the head of the queue (or failed, once
 * the job was stopped). */
void answers_requeue_unrun (TrPool *pool, TaskQueue *back);
/* The GError of a failed record (any thread): the plugin's own domain (its name made a
 * quark in this process) and code, or TR_TASK_ERROR_FAILED when it set none. */
GError *answers_result_error (const TrWireResult *res);

/* ---- slots.c (I/O thread) ----------------------------------------------------------------- */

void slot_spawn (TrPool *pool, Worker *w);
void slot_end (TrPool *pool, Worker *w, const char *why, TrTaskErrorCode code);
void slot_process_ended (TrPool *pool, Worker *w);
void slot_link_ended (TrPool *pool, Worker *w);
/* answers_read, ending the worker if it broke the protocol. */
ReadStatus slot_read (TrPool *pool, Worker *w);
gboolean slots_any_alive (TrPool *pool);
/* Each returns the poll timeout (ms) until its next deadline, or -1. */
int slots_check_restarts (TrPool *pool);
int slots_check_links_gone (TrPool *pool);
int slots_check_timeouts (TrPool *pool);

/* ---- io.c ------------------------------------------------------------------------------- */

/* Main thread, before the I/O thread starts and after it was joined. */
void io_state_init (TrPool *pool);
/* ... giving the records it still holds to `left`, for the main thread to let go. */
void io_state_free (TrPool *pool, TaskQueue *left);
gpointer io_main (gpointer pool);

#endif
