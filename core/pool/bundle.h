/* bundle.h — a bundle's layout and the parts of it that run once per task.
 *
 * Owns: struct Bundle, adding a task to one, and reading a delivered one's results;
 * inline because they run per task, and a call into another file per task costs as
 * much as a task of a microsecond.  The rest of a bundle's life is bundle.c's.
 * Included by bundle.c, stream.c and handoff.c only.
 */
#ifndef TASKRUN_POOL_BUNDLE_H
#define TASKRUN_POOL_BUNDLE_H

#include "private.h"

struct Bundle {
  TrWireBuf wire;      /* the task records of a TASKS frame's body, ids consecutive (the
                        * count goes in front as the frame is sent) */
  guint64 *seq;        /* per task */
  guint64 *units;      /* per task */
  guint32 *text_at;    /* per task: where its description starts in `text`; 0: none */
  guint alloc;         /* room in seq, units and text_at */
  GString *text;       /* the descriptions, each ending in NUL, after one NUL; or NULL */
  guint64 first_order; /* the first task's; the others follow */
  gsize bytes;         /* of payloads and descriptions */
  guint8 *answer;      /* the RESULTS frame's body, once answered whole */
  gsize answer_len;
  gsize answer_room;   /* allocated at answer */
};

/* Main thread: adds a stream's task to the bundle being filled. */
static inline void
bundle_add (PoolMain *m, TrTaskRecord *b, guint64 seq, guint64 order, const TrTask *task)
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
  tr_wire_put_task (&bu->wire, ++m->next_id, task->payload.data, task->payload.len);
  bu->seq[b->count] = seq;
  bu->units[b->count] = task->units;
  bu->bytes += bundle_bytes_of (task);
  b->count++; /* not yet in any queue: no length to keep */
}

static inline gsize
bundle_bytes (const TrTaskRecord *b)
{
  return b->bundle->bytes;
}

/* Main thread: walks a delivered bundle's tasks with their results. */
static inline void
bundle_cursor_init (BundleCursor *c, const TrTaskRecord *b)
{
  const Bundle *bu = b->bundle;
  c->b = b;
  c->i = 0;
  tr_wire_reader_init (&c->tasks, bu->wire.data, bu->wire.len);
  tr_wire_reader_init (&c->answer, bu->answer, bu->answer_len);
  tr_wire_get_u32 (&c->answer);
}

/* The next task and its result; FALSE after the last.  The answer was checked by the
 * I/O thread (bundle_check_answer), so a record that does not read is the pool's bug. */
static inline gboolean
bundle_cursor_next (BundleCursor *c, BundleItem *item)
{
  const Bundle *bu = c->b->bundle;
  if (c->i >= c->b->count)
    return FALSE;
  TrWireTask t;
  if (!tr_wire_read_task (&c->tasks, &t) || !tr_wire_read_result (&c->answer, &item->res))
    g_error ("taskrun: a bundle of tasks is corrupt");
  guint i = c->i++;
  item->seq = bu->seq[i];
  item->units = bu->units[i];
  item->order = bu->first_order + i;
  item->description = (bu->text ? bu->text->str : "") + bu->text_at[i]; /* text_at 0: none */
  item->payload = t.payload;
  item->payload_len = t.len;
  return TRUE;
}

#endif
