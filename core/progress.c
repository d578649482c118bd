/* progress.c — the progress line: one line on stderr, redrawn in place at most ten
 * times a second, with percent, done/total (tasks, and the plugin's unit such as bytes),
 * rate, ETA and failures so far.
 *
 * Owns: whether to draw at all (auto: only when stderr is a terminal, so it never lands
 * in a pipe or a file), the text of the line, and erasing it.  The runner erases it
 * before anything else is written (result lines, messages, the summary), so the line and
 * other output never mix.  While the total is not known yet (the copy walk is still
 * running), the line says so instead of showing a wrong percent.
 * Does not own: counting (runner.c feeds it).
 */
#include "progress.h"

#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REDRAW_US (G_USEC_PER_SEC / 10)

struct TrProgress {
  gboolean enabled;
  char *unit;
  gint64 start, last_draw;
  guint64 made, done, failed, units_done, units_total;
  gboolean all_made, units_final;
  gboolean drawn;
  gboolean mid_line; /* output left the terminal's cursor after text: draw below it */
  gboolean ever_drawn;
};

TrProgress *
tr_progress_new (TrProgressMode mode, const char *unit)
{
  TrProgress *p = g_new0 (TrProgress, 1);
  p->enabled = mode == TR_PROGRESS_ALWAYS || (mode == TR_PROGRESS_AUTO && isatty (STDERR_FILENO));
  p->unit = g_strdup (unit);
  p->start = g_get_monotonic_time ();
  /* the first bar waits as a redraw does: a job over in a moment draws none */
  p->last_draw = p->start;
  return p;
}

void
tr_progress_free (TrProgress *p)
{
  if (!p)
    return;
  tr_progress_clear (p);
  g_free (p->unit);
  g_free (p);
}

void
tr_progress_set_tasks (TrProgress *p, guint64 made, gboolean all_made)
{
  p->made = made;
  p->all_made = all_made;
}

void
tr_progress_task_done (TrProgress *p, guint64 units, gboolean failed)
{
  p->done++;
  p->failed += failed;
  if (!failed)
    p->units_done += units;
}

void
tr_progress_set_total_units (TrProgress *p, guint64 total, gboolean final)
{
  p->units_total = total;
  p->units_final = final;
}

static void
append_amount (GString *s, double v, const char *unit)
{
  if (unit && g_str_equal (unit, "bytes")) {
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int u = 0;
    while (v >= 1024 && u < 4) {
      v /= 1024;
      u++;
    }
    g_string_append_printf (s, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  } else {
    static const char *const units[] = { "", "k", "M", "G", "T" };
    int u = 0;
    while (v >= 1000 && u < 4) {
      v /= 1000;
      u++;
    }
    g_string_append_printf (s, u ? "%.1f%s" : "%.0f%s", v, units[u]);
  }
}

static void
append_duration (GString *s, double secs)
{
  if (secs >= 3600)
    g_string_append_printf (s, "%dh%02dm", (int) (secs / 3600), (int) (secs / 60) % 60);
  else if (secs >= 60)
    g_string_append_printf (s, "%dm%02ds", (int) (secs / 60), (int) secs % 60);
  else
    g_string_append_printf (s, "%ds", (int) secs);
}

static void
draw (TrProgress *p)
{
  double elapsed = (g_get_monotonic_time () - p->start) / 1e6;
  gboolean by_units = p->unit && p->units_total > 0;
  double done = by_units ? (double) p->units_done : (double) p->done;
  double total = by_units ? (double) p->units_total : (double) p->made;
  gboolean known = by_units ? p->units_final : p->all_made;
  /* the \r of a redraw would put the line over a line of output without its end */
  g_autoptr (GString) s = g_string_new (p->mid_line ? "\n\r" : "\r");
  p->mid_line = FALSE;
  if (known && total > 0)
    g_string_append_printf (s, "%5.1f%% ", 100.0 * MIN (done / total, 1.0));
  else
    g_string_append (s, "  ... ");
  g_string_append_printf (s, "%" G_GUINT64_FORMAT, p->done);
  if (p->all_made)
    g_string_append_printf (s, "/%" G_GUINT64_FORMAT, p->made);
  g_string_append (s, " tasks");
  if (by_units) {
    g_string_append (s, ", ");
    append_amount (s, (double) p->units_done, p->unit);
    g_string_append (s, "/");
    append_amount (s, (double) p->units_total, p->unit);
    if (!g_str_equal (p->unit, "bytes"))
      g_string_append_printf (s, " %s", p->unit);
  }
  double rate = elapsed > 0 ? done / elapsed : 0;
  g_string_append (s, ", ");
  append_amount (s, rate, by_units ? p->unit : NULL);
  g_string_append (s, by_units ? "/s" : " tasks/s");
  if (!known)
    g_string_append (s, ", total not known yet");
  else if (rate > 0 && done < total) {
    g_string_append (s, ", ETA ");
    append_duration (s, (total - done) / rate);
  }
  if (p->failed)
    g_string_append_printf (s, ", %" G_GUINT64_FORMAT " failed", p->failed);
  struct winsize ws;
  gsize width = ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10 ? ws.ws_col - 1 : 79;
  gsize lead = s->str[0] == '\n' ? 2 : 1;
  if (s->len - lead > width)
    g_string_truncate (s, width + lead);
  g_string_append (s, "\033[K"); /* erase what a longer line left */
  fputs (s->str, stderr);
  fflush (stderr);
  p->drawn = TRUE;
  p->ever_drawn = TRUE;
  p->last_draw = g_get_monotonic_time ();
}

void
tr_progress_tick (TrProgress *p)
{
  if (!p || !p->enabled)
    return;
  if (g_get_monotonic_time () - p->last_draw < REDRAW_US)
    return;
  draw (p);
}

void
tr_progress_wrote (TrProgress *p, int fd, const void *data, gsize len)
{
  if (!p || !p->enabled || !len || !isatty (fd))
    return;
  p->mid_line = ((const char *) data)[len - 1] != '\n';
}

void
tr_progress_clear (TrProgress *p)
{
  if (p && p->enabled && p->mid_line && !p->drawn && p->ever_drawn) {
    /* what comes next (a message, the summary) starts a line of its own, once a bar has
     * been on the screen: without one, output is left as the commands wrote it */
    fputs ("\n", stderr);
    fflush (stderr);
    p->mid_line = FALSE;
    return;
  }
  if (!p || !p->enabled || !p->drawn)
    return;
  fputs ("\r\033[K", stderr);
  fflush (stderr);
  p->drawn = FALSE;
}
