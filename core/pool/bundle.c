/* bundle.c — a bundle's bytes: consecutive tasks of an unordered stream that travel as
 * one TASKS frame and come back as one RESULTS frame, handled by each thread as one unit.
 *
 * With millions of tasks of a microsecond, a record per task that the main thread
 * writes and the I/O thread reads on the other core (and back again) cost more than the
 * tasks.  A bundle keeps its tasks as the wire bytes the worker reads, and its answer as
 * the bytes the worker wrote: the I/O thread checks that answer in one pass and hands it
 * over whole, and the main thread reads the results from it.  Anything unusual (a
 * worker that dies holding it, tasks sent back, a bad record, a cancel, the tail of a
 * job to share out) first turns it into single tasks, in tq_unbundle_head, the one place
 * that does.
 *
 * Owns: the Bundle type, adding tasks, the frame, the answer's check and copy, the
 * cursor over results, and PoolMain's list of bundles kept for reuse.
 * Does not own: when a task is bundled or a bundle undone (schedule.h), what is done
 * with the results (handoff.c).
 */
#include "private.h"
#include "bundle.h"

#include <string.h>

void
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

TrTaskRecord *
bundle_new (PoolMain *m, TrPool *pool, guint size, gsize len)
{
  TrTaskRecord *b = m->free_bundles;
  if (b) {
    m->free_bundles = b->next;
    m->free_bundle_count--;
    Bundle *bu = b->bundle;
    bu->wire.len = 0;
    bu->bytes = 0;
    bu->answer_len = 0;
    if (bu->text)
      g_string_truncate (bu->text, 1); /* its leading NUL stays */
    b->next = NULL;
    b->count = 0;
    b->outcome.worker = 0;
    b->outcome.pid = 0;
  } else {
    b = g_new0 (TrTaskRecord, 1);
    b->bundle = g_new0 (Bundle, 1);
    gsize expect = (gsize) MIN (size, AUTO_BATCH_MAX) * TR_WIRE_TASK_RECORD (len);
    tr_wire_buf_init (&b->bundle->wire);
    tr_wire_buf_grow (&b->bundle->wire, MIN (expect, BUNDLE_BYTES));
  }
  b->ref = 1;
  b->pool = pool;
  b->task.id = m->next_id + 1;
  return b;
}

void
bundle_recycle (PoolMain *m, TrTaskRecord *b)
{
  if (m->free_bundle_count < BUNDLES_KEPT) {
    b->next = m->free_bundles;
    m->free_bundles = b;
    m->free_bundle_count++;
  } else {
    tr_async_unref (b);
  }
}

void
bundle_put_frame (const TrTaskRecord *b, TrWireBuf *out)
{
  gsize at = tr_wire_begin (out, TR_MSG_TASKS);
  tr_wire_put_u32 (out, b->count);
  tr_wire_buf_append (out, b->bundle->wire.data, b->bundle->wire.len);
  tr_wire_end (out, at);
}

void
tq_unbundle_head (TaskQueue *q)
{
  if (!q->head || !q->head->bundle)
    return;
  TrTaskRecord *b = tq_pop_head (q);
  Bundle *bu = b->bundle;
  TaskQueue singles = { 0 };
  TrWireReader r;
  tr_wire_reader_init (&r, bu->wire.data, bu->wire.len);
  for (guint i = 0; i < b->count; i++) {
    TrWireTask t;
    if (!tr_wire_read_task (&r, &t))
      g_error ("taskrun: a bundle of tasks is corrupt"); /* the pool's own bytes */
    TrTaskRecord *a = record_new_unpooled (b->pool);
    a->task.id = t.id;
    a->task.seq = bu->seq[i];
    a->task.units = bu->units[i];
    a->task.description = bu->text_at[i] ? g_strdup (bu->text->str + bu->text_at[i]) : NULL;
    record_copy_payload (a, t.payload, t.len);
    record_stream_init (a, b->caller.user_data, bu->first_order + i);
    tq_push_tail (&singles, a);
  }
  tq_prepend (q, &singles);
  /* no caller holds a bundle, nor may a free list take it from this thread */
  g_assert (b->ref == 1 && !b->caller.recyclable);
  bundle_free (b->bundle);
  g_free (b);
}

gboolean
bundle_check_answer (const TrTaskRecord *b, const guint8 *body, gsize len, BundleAnswer *out)
{
  TrWireReader r;
  tr_wire_reader_init (&r, body, len);
  if (tr_wire_get_u32 (&r) != b->count)
    return FALSE;
  double sum_ns = 0, max_ns = 0;
  for (guint i = 0; i < b->count; i++) {
    TrWireResult res;
    /* a task that attached files is answered alone: the files are a single record's */
    if (!tr_wire_read_result (&r, &res) || res.returned || res.n_files ||
        res.id != b->task.id + i)
      return FALSE;
    sum_ns += (double) res.run_ns;
    max_ns = MAX (max_ns, (double) res.run_ns);
  }
  if (!tr_wire_reader_done (&r))
    return FALSE;
  out->sum_ns = sum_ns;
  out->max_ns = max_ns;
  return TRUE;
}

void
bundle_keep_answer (TrTaskRecord *b, const guint8 *body, gsize len)
{
  Bundle *bu = b->bundle;
  if (bu->answer_room < len) {
    g_free (bu->answer);
    bu->answer = g_malloc (len);
    bu->answer_room = len;
  }
  memcpy (bu->answer, body, len);
  bu->answer_len = len;
}

