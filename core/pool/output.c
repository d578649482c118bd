/* output.c — the workers' stdout and stderr, cut into whole lines, and the events of
 * their lives (I/O thread).
 *
 * A local worker's stdout and stderr are pipes (link-local.c) that the I/O thread reads
 * as it reads the links, and cuts into whole lines; the lines go to the main thread with
 * the results (handoff.c), which writes them with the pool's output function, so that no
 * line of one process is cut into by another's.
 *
 * Owns: reading the pipes, the line each worker began (Worker.partial), the lines held
 * for the next hand-over (PoolIo.output), and the bounds on all of them; the workers'
 * starts and ends held for it beside the lines (PoolIo.events), for a caller that
 * watches them (a trace).
 * Does not own: when lines are handed over (schedule.h), how they are written (the
 * main thread's output function), when a worker's pipes open (slots.c).
 */
#include "private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define OUTPUT_CHUNK 65536          /* read from a worker's stdout or stderr at once */
#define OUTPUT_READS_PER_WAKE 4     /* then the other workers' turn */
#define OUTPUT_LINE_MAX 65536       /* a longer line is cut (see output_take) */
#define OUTPUT_BACKLOG_MAX (8 << 20) /* handed over but not written yet */
#define OUTPUT_DRAIN_MAX (1 << 20)  /* read from an ended worker's pipes, at most */

/* Adds `len` bytes to the lines to hand over on stream `s` (0: stdout, 1: stderr). */
void
output_add (TrPool *pool, int s, const char *text, gsize len)
{
  PoolIo *io = &pool->io;
  if (io->output[0]->len + io->output[1]->len + io->events->len == 0)
    io->output_since = g_get_monotonic_time ();
  g_string_append_len (io->output[s], text, len);
}

void
events_add (TrPool *pool, TrPoolEventKind kind, guint slot, GPid pid, const char *where,
            const char *text)
{
  PoolIo *io = &pool->io;
  if (io->output[0]->len + io->output[1]->len + io->events->len == 0)
    io->output_since = g_get_monotonic_time ();
  TrPoolEvent ev = {
    .kind = kind, .slot = slot, .pid = pid, .when = g_get_real_time () / 1e6,
    .where = g_strdup (where), .text = g_strdup (text),
  };
  g_array_append_val (io->events, ev);
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
output_read_up_to (TrPool *pool, Worker *w, int s, gsize max)
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

/* What poll said is readable on stream s: a few chunks, then the other workers' turn. */
void
output_read (TrPool *pool, Worker *w, int s)
{
  output_read_up_to (pool, w, s, OUTPUT_READS_PER_WAKE * OUTPUT_CHUNK);
}

/* After worker w was reaped (and its process group killed): what it wrote is all in its
 * pipes; read it, end its last lines, close them.  Bounded: a process that left the
 * group and holds a pipe could write for ever. */
void
output_drain (TrPool *pool, Worker *w)
{
  for (int s = 0; s < 2; s++) {
    if (w->out_fd[s] >= 0) {
      output_read_up_to (pool, w, s, OUTPUT_DRAIN_MAX);
      if (w->out_fd[s] >= 0) {
        close (w->out_fd[s]);
        w->out_fd[s] = -1;
      }
    }
    output_end_line (pool, w, s);
  }
}

/* Workers' lines wait while the main thread has many not yet written (a slow terminal,
 * a full pipe downstream): then the pipes fill and the workers that print wait in
 * write(), as they would on a slow terminal of their own, instead of taskrun holding
 * without bound what they print.  The I/O thread asks again every 10 ms. */
gboolean
output_may_read (TrPool *pool)
{
  return g_atomic_int_get (&pool->shared.output_backlog) < OUTPUT_BACKLOG_MAX;
}
