/* record.c — task records: making, referencing, clearing and freeing them, and the free
 * list of a stream's records.
 *
 * Owns: the life of a TrTaskRecord (the public TrAsync) and PoolMain's free list of
 * records.  The rule of which thread may take from that list is in the signatures: only
 * a function given the main part (PoolMain *) may, and only the main thread holds one;
 * the I/O thread makes records only with record_new_unpooled.  A record the I/O thread
 * lets go of is never one the caller holds (see tq_unbundle_head).
 * Does not own: bundles' bytes (bundle.c), what a record's fields mean (private.h).
 */
#include "private.h"

#include <string.h>
#include <unistd.h>

void
record_clear_outcome (TrTaskRecord *a)
{
  g_free (a->outcome.result_heap);
  a->outcome.result_heap = NULL;
  a->outcome.result = NULL;
  a->outcome.result_len = 0;
  a->outcome.exit_value = 0;
  a->outcome.signal = 0;
  for (guint i = 0; i < a->outcome.n_files; i++)
    close (a->outcome.files[i]);
  a->outcome.n_files = 0;
  g_clear_error (&a->outcome.error);
}

static void
record_free_contents (TrTaskRecord *a)
{
  g_clear_pointer (&a->bundle, bundle_free);
  g_clear_pointer (&a->task.description, g_free);
  g_clear_pointer (&a->task.payload_bytes, g_bytes_unref);
  g_clear_pointer (&a->task.payload_heap, g_free);
  record_clear_outcome (a);
}

void
record_copy_payload (TrTaskRecord *a, const guint8 *data, gsize len)
{
  a->task.payload_len = len;
  if (len <= INLINE_PAYLOAD) {
    if (len)
      memcpy (a->payload_inline, data, len);
    a->task.payload = a->payload_inline;
  } else {
    a->task.payload_heap = g_memdup2 (data, len);
    a->task.payload = a->task.payload_heap;
  }
}

TrTaskRecord *
record_new_unpooled (TrPool *pool)
{
  TrTaskRecord *a = g_new0 (TrTaskRecord, 1);
  a->ref = 1;
  a->count = 1;
  a->pool = pool;
  a->task.attempt = 1;
  return a;
}

TrTaskRecord *
record_new (PoolMain *m, TrPool *pool, guint64 seq, const char *description, GBytes *bytes,
            const guint8 *data, gsize len, guint64 units)
{
  TrTaskRecord *a = m->free_records;
  if (a) {
    /* a recycled record: record_free_contents cleared what points elsewhere; the rest
     * is reset here, field by field (cheaper than clearing the whole record per task) */
    m->free_records = a->next;
    m->free_count--;
    a->next = NULL;
    a->outcome.worker = 0;
    a->outcome.pid = 0;
    a->outcome.seconds = 0;
    a->outcome.start_time = 0;
    a->task.isolate = FALSE;
    a->caller.done = FALSE;
    a->task.order = 0;
  } else {
    a = g_new0 (TrTaskRecord, 1);
  }
  a->ref = 1;
  a->count = 1;
  a->pool = pool;
  a->task.id = ++m->next_id;
  a->task.seq = seq ? seq : a->task.id;
  a->task.description = description && *description ? g_strdup (description) : NULL;
  a->caller.callback = a->caller.error_callback = NULL;
  a->caller.user_data = NULL;
  a->caller.report_attempts = a->caller.recyclable = FALSE;
  if (bytes) {
    a->task.payload_bytes = g_bytes_ref (bytes);
    a->task.payload = g_bytes_get_data (bytes, &a->task.payload_len);
  } else {
    record_copy_payload (a, data, len);
  }
  if (a->task.payload_len > MAX_PAYLOAD)
    m->oversize_made++; /* failed by the I/O thread when it takes the submission */
  a->task.units = units;
  a->task.attempt = 1;
  return a;
}

/* The main thread's (the caller's handles and the pool's delivered records): a stream's
 * record goes back to the free list.  The I/O thread lets go of records only in
 * tq_unbundle_head, of a bundle no caller holds, which is never recyclable. */
void
tr_async_unref (TrAsync *a)
{
  if (!a || !g_atomic_int_dec_and_test (&a->ref))
    return;
  record_free_contents (a);
  TrPool *pool = a->pool;
  if (a->caller.recyclable && pool && pool->main.free_count < 65536) {
    a->next = pool->main.free_records;
    pool->main.free_records = a;
    pool->main.free_count++;
    return;
  }
  g_free (a);
}

TrTaskRecord *
record_ref (TrTaskRecord *a)
{
  g_atomic_int_inc (&a->ref);
  return a;
}

void
record_stream_init (TrTaskRecord *a, gpointer stream, guint64 order)
{
  a->caller.callback = a->caller.error_callback = tr_stream_on_result;
  a->caller.user_data = stream;
  a->caller.report_attempts = TRUE;
  a->caller.recyclable = TRUE;
  a->task.order = order;
}

void
record_preallocate (PoolMain *m, guint n)
{
  for (guint i = 0; i < n; i++) {
    TrTaskRecord *a = g_new0 (TrTaskRecord, 1);
    a->next = m->free_records;
    m->free_records = a;
    m->free_count++;
  }
}

void
record_free_lists (PoolMain *m)
{
  TrTaskRecord *a;
  while ((a = m->free_records)) {
    m->free_records = a->next;
    g_free (a);
  }
  while ((a = m->free_bundles)) {
    m->free_bundles = a->next;
    tr_async_unref (a);
  }
  m->free_count = m->free_bundle_count = 0;
}
