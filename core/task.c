/* task.c — the small plugin-facing objects: TrTask (a task being produced by a
 * generator) and TrOutput (where a worker's run hook writes its result).
 *
 * Owns: their functions, which plugins call.  A TrTask is reused for every call of the
 * generator, so producing a task allocates nothing once its buffers have grown.  Also
 * the one rule for showing a task's text (its description, its error message) on a
 * line: tr_text_escape.
 * Does not own: what happens to a task after the generator returns (pool/stream.c).
 */
#include "internal.h"

#include <fcntl.h>

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
  /* kept as given (a file name is any bytes): every line that shows it escapes it, see
   * tr_text_escape */
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

gboolean
tr_output_attach_file (TrOutput *output, int fd)
{
  /* 0 to 3 are the worker's (its standard streams and its link), and a descriptor that is
   * not open would fail the frame it travels with, blamed on other tasks */
  if (fd <= TR_WORKER_LINK_FD || fcntl (fd, F_GETFD) < 0 || !output->files_allowed ||
      output->n_files == TR_WIRE_TASK_FILES)
    return FALSE;
  output->files[output->n_files++] = fd;
  return TRUE;
}

char *
tr_description_shown (const char *text, gboolean quoted)
{
  if (quoted && g_utf8_validate (text, -1, NULL)) {
    const char *p = text;
    while (*p && !g_ascii_iscntrl (*p))
      p++;
    if (!*p)
      return g_strdup (text);
  }
  return tr_text_escape (text);
}

/* A plugin's text (a file name, an error message) may hold any bytes.  Shown as is, a
 * newline would split a message or a job log row in two and a tab would shift its
 * columns, so control bytes and bytes that are not UTF-8 are written as C escapes, the
 * way `ls -b` shows names: \n \t \r, \xNN for the others, and \\ for a backslash, so
 * that the escaped text stays one line and reads back unambiguously. */
char *
tr_text_escape (const char *text)
{
  const char *end = text + strlen (text);
  GString *out = g_string_sized_new (end - text);
  for (const char *p = text; p < end;) {
    gunichar c = g_utf8_get_char_validated (p, end - p);
    if (c == (gunichar) -1 || c == (gunichar) -2) {
      g_string_append_printf (out, "\\x%02x", (guchar) *p++);
      continue;
    }
    const char *next = g_utf8_next_char (p);
    if (c == '\\')
      g_string_append (out, "\\\\");
    else if (c == '\n')
      g_string_append (out, "\\n");
    else if (c == '\t')
      g_string_append (out, "\\t");
    else if (c == '\r')
      g_string_append (out, "\\r");
    else if (g_unichar_iscntrl (c))
      for (const char *q = p; q < next; q++) /* C0, DEL and C1: by their bytes */
        g_string_append_printf (out, "\\x%02x", (guchar) *q);
    else
      g_string_append_len (out, p, next - p);
    p = next;
  }
  return g_string_free (out, FALSE);
}
