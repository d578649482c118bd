/* task.c — the small plugin-facing objects: TrTask (a task being produced by a
 * generator) and TrOutput (where a worker's run hook writes its result).
 *
 * Owns: their functions, which plugins call.  A TrTask is reused for every call of the
 * generator, so producing a task allocates nothing once its buffers have grown.
 * Does not own: what happens to a task after the generator returns (pool.c).
 */
#include "internal.h"

#include <stdarg.h>

G_DEFINE_QUARK (tr-task-error-quark, tr_task_error)

void
tr_task_init (TrTask *task)
{
  tr_wire_buf_init (&task->payload);
  task->description = g_string_new (NULL);
  task->units = 1;
  task->seq = 0;
}

void
tr_task_reset (TrTask *task)
{
  /* emptied in place, once per task: with one-number tasks the calls into GLib's arrays
   * took a fifth of the main thread's time */
  task->payload.len = 0;
  if (task->description->len)
    g_string_truncate (task->description, 0);
  task->units = 1;
  task->seq = 0;
}

void
tr_task_clear (TrTask *task)
{
  tr_wire_buf_clear (&task->payload);
  g_string_free (task->description, TRUE);
}

void
tr_task_set_payload (TrTask *task, const void *data, gsize len)
{
  /* the buffer is reused from task to task: it only grows, and a copy is all it takes */
  task->payload.len = 0;
  tr_wire_buf_append (&task->payload, data, len);
}

void
tr_task_append_payload (TrTask *task, const void *data, gsize len)
{
  tr_wire_buf_append (&task->payload, data, len);
}

void
tr_task_set_description (TrTask *task, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_string_vprintf (task->description, format, ap);
  va_end (ap);
  /* One line: a description goes into logs and the tab-separated job log. */
  for (gsize i = 0; i < task->description->len; i++)
    if (task->description->str[i] == '\n' || task->description->str[i] == '\t' ||
        task->description->str[i] == '\r')
      task->description->str[i] = ' ';
}

void
tr_task_set_units (TrTask *task, guint64 units)
{
  task->units = units;
}

void
tr_output_append (TrOutput *output, const void *data, gsize len)
{
  tr_wire_buf_append (output->buf, data, len);
}
