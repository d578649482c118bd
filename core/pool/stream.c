/* stream.c — tr_pool_stream (main thread): pulls tasks from a generator, never more than
 * a window ahead of their results, groups them for the hand-over, packs an unordered
 * stream's tiny tasks into bundles, holds an ordered stream's early results, and counts.
 *
 * Owns: the Stream (its window, its ordered hold, its stats), the generator's loop, and
 * tr_pool_map, which is a stream over an array.
 * Does not own: the window's size, the bundle size and the grouping rule (schedule.h),
 * a bundle's bytes (bundle.c), delivery (handoff.c).
 */
#include "private.h"
#include "bundle.h"

#include <stddef.h>
#include <string.h>

typedef struct {
  TrResultFunc on_result;
  gpointer user_data;
  gboolean ordered;
  guint64 next_order;   /* ordered: the next task to hand to on_result */
  GHashTable *held;     /* ordered: order -> record that finished early */
  guint64 held_bytes;   /* ordered: their results' bytes (see STREAM_HELD_BYTES) */
  guint held_files;     /* ordered: their attached files (STREAM_HELD_FILES) */
  guint64 in_window;    /* made and not yet handed to on_result */
  guint64 window_bytes; /* their payloads' bytes (see STREAM_WINDOW_BYTES) */
  TrStats *stats;
  GHashTable *pids;     /* slot << 32 | pid: the pids of two hosts may be equal */
  guint64 last_pid;
  guint bundle_size;    /* tasks per bundle now (tr_sched_bundle_size) */
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

/* Every result of a stream's tasks.  In ordered mode a result that comes early waits
 * (and keeps its place in the window, so memory stays bounded) until those made before
 * it have been handed over. */
void
tr_stream_on_result (const TrResult *r, gpointer data)
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
    /* an ordered stream makes no bundles: every result is a single record's view */
    TrTaskRecord *a = (TrTaskRecord *) ((char *) r - offsetof (TrTaskRecord, caller.view));
    if (a->task.order != s->next_order) {
      g_hash_table_insert (s->held, &a->task.order, record_ref (a));
      s->held_bytes += r->len;
      s->held_files += r->n_files;
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
  TrTaskRecord *h;
  while ((h = g_hash_table_lookup (s->held, &s->next_order))) {
    g_hash_table_steal (s->held, &s->next_order);
    s->held_bytes -= MIN (s->held_bytes, (guint64) h->caller.view.len);
    s->held_files -= MIN (s->held_files, h->caller.view.n_files);
    s->in_window--;
    s->window_bytes -= MIN (s->window_bytes, (guint64) h->caller.view.sent);
    s->next_order++;
    if (s->on_result)
      s->on_result (&h->caller.view, s->user_data);
    tr_async_unref (h);
  }
}

/* Puts the bundle being filled, if any, at the end of batch; returns NULL. */
static TrTaskRecord *
bundle_close (TrTaskRecord **open, TaskQueue *batch)
{
  if (*open) {
    tq_push_tail (batch, *open);
    *open = NULL;
  }
  return NULL;
}

/* The stream's bundle being filled, for this task, or NULL when the task goes singly
 * (tr_sched_goes_single).  A new bundle is started when `open` is full, its bytes are
 * spent, or a task was made elsewhere in between (the ids of a bundle follow one
 * another). */
static TrTaskRecord *
stream_bundle_for (TrPool *pool, Stream *s, TrTaskRecord **open, TaskQueue *batch,
                   const TrTask *task)
{
  PoolMain *m = &pool->main;
  guint frame = (guint) g_atomic_int_get (&pool->shared.frame_tasks);
  /* No task timed yet: the records made while the workers started go first (a short
   * job of long tasks then runs as it always did, on records that need no fresh memory),
   * then bundles, which the I/O thread turns back into single tasks if they are long. */
  if (!frame && m->free_records)
    return bundle_close (open, batch);
  s->bundle_size = tr_sched_bundle_size (frame, s->bundle_size);
  guint size = s->bundle_size;
  gboolean single = tr_sched_goes_single (m->outstanding, pool->settings.n_workers, size,
                                          s->ordered, pool->settings.max_tasks,
                                          task->payload.len);
  TrTaskRecord *b = *open;
  if (b && (single || b->count >= size || bundle_bytes (b) + bundle_bytes_of (task) > BUNDLE_BYTES ||
            m->next_id != b->task.id + b->count - 1))
    b = bundle_close (open, batch);
  if (single)
    return NULL;
  if (!b) {
    b = *open = bundle_new (m, pool, size, task->payload.len);
    b->caller.callback = b->caller.error_callback = tr_stream_on_result;
    b->caller.user_data = s;
    b->caller.report_attempts = TRUE;
  }
  return b;
}

/* Closes the open bundle, if any, and hands over what the stream made. */
static void
stream_submit (TrPool *pool, TrTaskRecord **open, TaskQueue *batch)
{
  bundle_close (open, batch);
  handoff_submit (pool, batch);
}

/* Whether the job was stopped: tr_pool_stop_feeding, or a terminate however asked
 * (tr_pool_request_terminate, tr_pool_terminate from a callback). */
static gboolean
feeding_stopped (TrPool *pool)
{
  return g_atomic_int_get (&pool->shared.cancel_req) ||
         g_atomic_int_get (&pool->shared.terminate_req);
}

gboolean
tr_pool_stream (TrPool *pool, TrGeneratorFunc generator, TrResultFunc on_result,
                gpointer user_data, gboolean ordered, TrStats *stats, GError **error)
{
  if (!pool_owned (pool, G_STRFUNC))
    return FALSE;
  PoolMain *m = &pool->main;
  guint n_workers = pool->settings.n_workers;
  TrStats local = { 0 };
  if (!stats)
    stats = &local;
  memset (stats, 0, sizeof *stats);
  stats->workers = n_workers;
  Stream s = {
    .on_result = on_result, .user_data = user_data, .ordered = ordered,
    .next_order = 1, .stats = stats,
    .held = g_hash_table_new (g_int64_hash, g_int64_equal),
    .pids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL),
  };
  gint64 t0 = g_get_monotonic_time ();
  gboolean gen_done = m->closed, stopping = FALSE;
  handoff_set_input_ended (pool, gen_done);
  GError *gen_error = NULL;
  TrTask task;
  tr_task_init (&task);
  TaskQueue batch = { 0 };
  TrTaskRecord *open = NULL; /* the bundle being filled */
  gint64 batch_since = 0;

  for (;;) {
    guint pulled = 0;
    gint64 began = m->phase_func ? g_get_monotonic_time () : 0;
    guint64 window = tr_sched_stream_window ((guint) g_atomic_int_get (&pool->shared.depth_tasks),
                                             pool->settings.batch, n_workers);
    while (!gen_done && !stopping && s.in_window < window &&
           (s.window_bytes < STREAM_WINDOW_BYTES || s.in_window == 0) &&
           s.held_bytes < STREAM_HELD_BYTES && s.held_files < STREAM_HELD_FILES) {
      if (feeding_stopped (pool)) {
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
      TrTaskRecord *b = stream_bundle_for (pool, &s, &open, &batch, &task);
      if (b) {
        bundle_add (m, b, seq, stats->total, &task);
      } else {
        TrTaskRecord *a = record_new (m, pool, seq, task.description->str, NULL,
                                      task.payload.data, task.payload.len, task.units);
        record_stream_init (a, &s, stats->total);
        tq_push_tail (&batch, a);
      }
      pending++;
      s.in_window++;
      s.window_bytes += task.payload.len;
      if (tr_sched_submit_now (pending, m->outstanding, n_workers) ||
          (tr_sched_submit_asks_clock (pending) &&
           g_get_monotonic_time () - batch_since > SUBMIT_WAIT_US))
        stream_submit (pool, &open, &batch);
      if (++pulled % SUBMIT_GROUP == 0) {
        stream_submit (pool, &open, &batch);
        while (handoff_pump (pool, 0))
          ;
      }
    }
    if (m->phase_func && pulled)
      m->phase_func (TR_POOL_PHASE_GENERATOR, began, g_get_monotonic_time (), pulled,
                     m->phase_data);
    /* ended before the last tasks go: the I/O thread must never see them and think that
     * more are coming, or it would hand them all to the first worker that asks */
    if (gen_done || stopping)
      handoff_set_input_ended (pool, TRUE);
    stream_submit (pool, &open, &batch);
    if (feeding_stopped (pool))
      stopping = TRUE;
    if (s.in_window == 0 && (gen_done || stopping))
      break;
    handoff_pump (pool, 100 * 1000);
    if (m->tick)
      m->tick (m->tick_data);
  }

  tr_task_clear (&task);
  stats->seconds = (g_get_monotonic_time () - t0) / 1e6;
  stats->distinct_pids = g_hash_table_size (s.pids);
  /* the slots the job ended with: fewer when some could not be started again */
  stats->workers = n_workers - (guint) g_atomic_int_get (&pool->shared.slots_lost);
  stats->workers_started = n_workers;
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

/* ---- map: a stream over an array ------------------------------------------------------
 * tr_pool_map runs on the stream's machinery, not one apply_async per payload: a stream
 * bundles tiny tasks, recycles its records and holds a bounded window of them, where a
 * record per payload kept to the end cost 450 bytes and a page fault or so each.  Each
 * result is put at its payload's index as it arrives; the failure of the lowest index is
 * the one reported. */

/* Results are copied into blocks of this size, each result a GBytes slice of its block:
 * one allocation per result, not two, and the bytes of a million tiny results packed. */
#define MAP_BLOCK_BYTES (256 * 1024)

typedef struct {
  GPtrArray *payloads;
  guint next;
  GPtrArray *results; /* of GBytes, NULL until its task has succeeded */
  GBytes *block;      /* the block results are being copied into */
  gsize block_used;
  GError *first_error;
  guint first_error_at;
} MapState;

static TrNext
map_next (gpointer data, TrTask *task, GError **error)
{
  MapState *ms = data;
  if (ms->next >= ms->payloads->len)
    return TR_NEXT_END;
  GBytes *payload = g_ptr_array_index (ms->payloads, ms->next);
  if (!payload) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED, "payload %u is NULL, not a GBytes",
                 ms->next);
    return TR_NEXT_ERROR;
  }
  ms->next++;
  gsize len;
  const void *bytes = g_bytes_get_data (payload, &len);
  tr_task_set_payload (task, bytes, len);
  return TR_NEXT_TASK;
}

static void
map_result (const TrResult *r, gpointer data)
{
  MapState *ms = data;
  if (!r->final)
    return;
  guint at = (guint) (r->seq - 1);
  if (r->error) {
    if (!ms->first_error || at < ms->first_error_at) {
      g_clear_error (&ms->first_error);
      ms->first_error = g_error_copy (r->error);
      ms->first_error_at = at;
    }
    return;
  }
  if (ms->first_error)
    return;
  if (r->len > MAP_BLOCK_BYTES / 16) {
    ms->results->pdata[at] = g_bytes_new (r->data, r->len);
    return;
  }
  if (!ms->block || ms->block_used + r->len > MAP_BLOCK_BYTES) {
    g_clear_pointer (&ms->block, g_bytes_unref);
    ms->block = g_bytes_new_take (g_malloc (MAP_BLOCK_BYTES), MAP_BLOCK_BYTES);
    ms->block_used = 0;
  }
  /* the block's bytes past block_used belong to no slice yet: this map writes them once */
  guint8 *dest = (guint8 *) g_bytes_get_data (ms->block, NULL) + ms->block_used;
  if (r->len)
    memcpy (dest, r->data, r->len);
  ms->results->pdata[at] = g_bytes_new_from_bytes (ms->block, ms->block_used, r->len);
  ms->block_used += r->len;
}

GPtrArray *
tr_pool_map (TrPool *pool, GPtrArray *payloads, GError **error)
{
  g_return_val_if_fail (pool != NULL && payloads != NULL, NULL);
  if (!pool_owned (pool, G_STRFUNC))
    return NULL;
  if (pool->main.closed || pool->main.joined) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED,
                 "the pool is closed: no more tasks can be submitted");
    return NULL;
  }
  MapState ms = { .payloads = payloads };
  ms.results = g_ptr_array_new_full (payloads->len, (GDestroyNotify) g_bytes_unref);
  g_ptr_array_set_size (ms.results, payloads->len);
  GError *stream_error = NULL;
  gboolean fed = tr_pool_stream (pool, map_next, map_result, &ms, FALSE, NULL, &stream_error);
  g_clear_pointer (&ms.block, g_bytes_unref);
  if (!fed) {
    /* a NULL in `payloads`: the tasks before it ran, and none after */
    g_clear_error (&ms.first_error);
    g_propagate_error (error, stream_error);
    g_ptr_array_unref (ms.results);
    return NULL;
  }
  /* a stopped or terminated pool leaves tasks that never ran, which failed as such */
  if (!ms.first_error) {
    for (guint i = 0; i < ms.results->len; i++)
      if (!ms.results->pdata[i]) {
        ms.first_error = g_error_new_literal (TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED,
                                              "it never ran (the pool was stopped)");
        ms.first_error_at = i;
        break;
      }
  }
  if (ms.first_error) {
    /* the caller learns which payload failed (its index), and keeps domain and code */
    g_propagate_prefixed_error (error, ms.first_error, "payload %u: ", ms.first_error_at);
    g_ptr_array_unref (ms.results);
    return NULL;
  }
  return ms.results;
}
