/* report.c — a run as one web page that opens from a local file: no network, no script
 * or style from elsewhere.  It shows the summary and the insights, a timeline of every
 * worker slot and of the parent (SVG), a histogram of task durations, the slowest tasks
 * with their descriptions, and each worker's busy and idle share.
 *
 * The timeline is drawn from the trace's spans (trace.c), tiny tasks already grouped.
 * Memory stays bounded however long the run: each lane keeps at most LANE_SPANS_MAX
 * spans, and when one would keep more, the resolution doubles and every lane's
 * neighbours closer than it are merged, whatever their kinds (the merged span takes the
 * graver kind: a failure is never hidden by the successes around it), until it keeps
 * fewer; the page draws at most a rectangle per pixel and kind.
 *
 * The page is written at the end, to a new file in the destination's folder that is
 * renamed over the destination once whole: a page at its name is always a whole page.
 * A destination that is a symlink is followed (the page replaces the file it points
 * to, as cp writes through one), and a page that replaces a file keeps its mode.
 *
 * Owns: the page's layout, the bounded timeline, writing the page.
 * Does not own: the spans (trace.c), the figures (insights.c).
 */
#include "report.h"
#include "config.h"
#include "logfile.h"
#include "stdout.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#define LANE_SPANS_MAX 4096
#define TIMELINE_WIDTH 1000.0 /* pixels of the time axis */
#define LABEL_WIDTH 210.0
#define LANE_HEIGHT 20.0

typedef struct {
  double start, end; /* microseconds since the trace's zero */
  double busy;       /* of end - start, the time its tasks or phases took */
  guint64 tasks;
  TrSpanKind kind;
} Span;

struct TrReport {
  char *path;
  char *job_file, *plugin, *backend;
  guint workers;
  GArray **lanes;  /* [0] generator, [1 .. workers] slots, [workers + 1] results: of Span */
  double resolution_us; /* spans of a kind closer than this are one */
  double first_us, last_us;
  double start_unix;
};

gboolean
tr_report_check (const char *path, GError **error)
{
  struct stat st;
  if (stat (path, &st) == 0 && !S_ISREG (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "the report %s is not a regular file (a page is written there, then renamed over it)",
                 path);
    return FALSE;
  }
  g_autofree char *dir = g_path_get_dirname (path);
  if (access (dir, W_OK | X_OK) != 0) {
    int e = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "cannot create the report %s: %s",
                 path, g_strerror (e));
    return FALSE;
  }
  return TRUE;
}

TrReport *
tr_report_new (const char *path, const TrTraceJob *job)
{
  TrReport *r = g_new0 (TrReport, 1);
  r->path = g_strdup (path);
  r->job_file = g_strdup (job->job_file);
  r->plugin = g_strdup (job->plugin);
  r->backend = g_strdup (job->backend);
  r->workers = MIN (job->workers, TR_WORKERS_MAX);
  r->lanes = g_new0 (GArray *, r->workers + 2);
  for (guint i = 0; i < r->workers + 2; i++)
    r->lanes[i] = g_array_new (FALSE, FALSE, sizeof (Span));
  r->resolution_us = 1;
  r->first_us = 0; /* the axis starts at the command's start: the start-up is seen */
  gint64 now = g_get_monotonic_time ();
  gint64 zero = job->started_us ? job->started_us : now;
  r->start_unix = g_get_real_time () / 1e6 - (now - zero) / 1e6; /* as the trace's zero */
  return r;
}

void
tr_report_free (TrReport *r)
{
  if (!r)
    return;
  for (guint i = 0; i < r->workers + 2; i++)
    g_array_unref (r->lanes[i]);
  g_free (r->lanes);
  g_free (r->path);
  g_free (r->job_file);
  g_free (r->plugin);
  g_free (r->backend);
  g_free (r);
}

/* How grave a kind is, for a span that merges two: a death, a timeout or a failure
 * shows through the successes around it. */
static int
kind_rank (TrSpanKind kind)
{
  switch (kind) {
  case TR_SPAN_DIED: return 5;
  case TR_SPAN_TIMEOUT: return 4;
  case TR_SPAN_FAILED: return 3;
  case TR_SPAN_RETRIED: return 2;
  case TR_SPAN_OK: return 1;
  case TR_SPAN_PARENT: break;
  }
  return 0;
}

/* Merges the neighbours closer than the resolution, in place, whatever their kinds:
 * once the resolution passes the widest gap a lane is one span, so compaction ends. */
static void
lane_compact (GArray *lane, double resolution)
{
  guint out = 0;
  for (guint i = 0; i < lane->len; i++) {
    Span *s = &g_array_index (lane, Span, i);
    Span *last = out ? &g_array_index (lane, Span, out - 1) : NULL;
    if (last && s->start - last->end < resolution) {
      last->end = MAX (last->end, s->end);
      last->busy += s->busy;
      last->tasks += s->tasks;
      if (kind_rank (s->kind) > kind_rank (last->kind))
        last->kind = s->kind;
    } else {
      g_array_index (lane, Span, out++) = *s;
    }
  }
  g_array_set_size (lane, out);
}

void
tr_report_span (guint lane, double start_us, double dur_us, double busy_us, guint64 tasks,
                TrSpanKind kind, gpointer data)
{
  TrReport *r = data;
  if (lane > r->workers + 1)
    return;
  GArray *a = r->lanes[lane];
  Span s = { .start = MAX (0, start_us), .end = MAX (0, start_us) + dur_us, .busy = busy_us,
             .tasks = tasks, .kind = kind };
  r->last_us = MAX (r->last_us, s.end);
  Span *last = a->len ? &g_array_index (a, Span, a->len - 1) : NULL;
  if (last && last->kind == kind && s.start - last->end < r->resolution_us &&
      s.start >= last->start) {
    last->end = MAX (last->end, s.end);
    last->busy += busy_us;
    last->tasks += tasks;
    return;
  }
  g_array_append_val (a, s);
  while (a->len > LANE_SPANS_MAX) {
    r->resolution_us *= 2;
    for (guint i = 0; i < r->workers + 2; i++)
      lane_compact (r->lanes[i], r->resolution_us);
  }
}

/* ---- the page ------------------------------------------------------------------------ */

static void
esc (GString *out, const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  g_autofree char *e = g_markup_escape_text (valid, -1);
  g_string_append (out, e);
}

static void
append_duration (GString *out, double seconds)
{
  tr_duration_append (out, seconds, "&#xb5;s");
}

static const char *
kind_class (TrSpanKind kind)
{
  switch (kind) {
  case TR_SPAN_OK: return "ok";
  case TR_SPAN_FAILED: return "failed";
  case TR_SPAN_RETRIED: return "retried";
  case TR_SPAN_TIMEOUT: return "timeout";
  case TR_SPAN_DIED: return "died";
  case TR_SPAN_PARENT: break;
  }
  return "parent";
}

/* A step for the axis's ticks: 1, 2 or 5 times a power of ten, about 8 of them. */
static double
tick_step (double total)
{
  double raw = total / 8, p = pow (10, floor (log10 (raw)));
  return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static void
put_lane (GString *o, const TrReport *r, guint lane, double y, double scale, const char *label,
          const char *cls, guint worker)
{
  g_string_append_printf (o, "<g class=\"%s\"", cls);
  if (worker)
    g_string_append_printf (o, " data-worker=\"%u\"", worker);
  g_string_append_printf (o, "><text x=\"4\" y=\"%.1f\" class=\"label\">", y + 14);
  esc (o, label);
  g_string_append (o, "</text>");
  GArray *a = r->lanes[lane];
  /* one rectangle per pixel and kind at most */
  for (guint i = 0; i < a->len;) {
    const Span *s = &g_array_index (a, Span, i);
    double x0 = LABEL_WIDTH + (s->start - r->first_us) * scale;
    double x1 = LABEL_WIDTH + (s->end - r->first_us) * scale;
    guint64 tasks = s->tasks;
    double busy = s->busy;
    guint j = i + 1;
    for (; j < a->len; j++) {
      const Span *n = &g_array_index (a, Span, j);
      double nx0 = LABEL_WIDTH + (n->start - r->first_us) * scale;
      if (n->kind != s->kind || nx0 > x1 + 1)
        break;
      x1 = MAX (x1, LABEL_WIDTH + (n->end - r->first_us) * scale);
      tasks += n->tasks;
      busy += n->busy;
    }
    /* a span mostly idle (grouped phases, sparse tiny tasks) is drawn faint */
    double wall = (x1 - x0) / scale;
    double opacity = wall > 0 ? CLAMP (busy / wall, 0.2, 1.0) : 1.0;
    g_string_append_printf (o, "<rect class=\"%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" "
                            "height=\"%.1f\" fill-opacity=\"%.2f\" data-tip=\"",
                            kind_class (s->kind), x0, y + 3, MAX (0.6, x1 - x0),
                            LANE_HEIGHT - 6, opacity);
    if (s->kind == TR_SPAN_PARENT)
      g_string_append (o, "busy ");
    else
      g_string_append_printf (o, "%" G_GUINT64_FORMAT " %s, %s, ", tasks,
                              tasks == 1 ? "task" : "tasks", kind_class (s->kind));
    append_duration (o, busy / 1e6);
    g_string_append (o, " from ");
    append_duration (o, s->start / 1e6);
    g_string_append (o, "\"></rect>");
    i = j;
  }
  g_string_append (o, "</g>\n");
}

static void
put_timeline (GString *o, const TrReport *r, char *const *hosts)
{
  double span_us = MAX (r->last_us - r->first_us, 1);
  double scale = TIMELINE_WIDTH / span_us;
  guint lanes = r->workers + 2;
  double height = 30 + lanes * LANE_HEIGHT;
  g_string_append_printf (o, "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" "
                          "width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                          "aria-label=\"a timeline of every worker\">\n",
                          LABEL_WIDTH + TIMELINE_WIDTH + 20, height);
  double step = tick_step (span_us / 1e6);
  for (double t = 0; t * 1e6 <= span_us * 1.0001; t += step) {
    double x = LABEL_WIDTH + t * 1e6 * scale;
    g_string_append_printf (o, "<line class=\"tick\" x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" "
                            "y2=\"%.0f\"></line><text class=\"axis\" x=\"%.1f\" y=\"%.0f\">",
                            x, x, height - 18, x + 2, height - 4);
    append_duration (o, t);
    g_string_append (o, "</text>\n");
  }
  put_lane (o, r, 0, 0, scale, "taskrun: generator", "parent-lane", 0);
  put_lane (o, r, r->workers + 1, LANE_HEIGHT, scale, "taskrun: results", "parent-lane", 0);
  for (guint s = 1; s <= r->workers; s++) {
    g_autofree char *label = hosts[s] ? g_strdup_printf ("worker %u (%s)", s, hosts[s])
                                          : g_strdup_printf ("worker %u", s);
    put_lane (o, r, s, (s + 1) * LANE_HEIGHT, scale, label, "lane", s);
  }
  g_string_append (o, "</svg>\n");
}

static void
put_histogram (GString *o, const TrInsights *in)
{
  const guint64 *h = tr_insights_histogram (in);
  guint lo = TR_INSIGHTS_BINS, hi = 0;
  guint64 most = 0;
  for (guint i = 0; h && i < TR_INSIGHTS_BINS; i++)
    if (h[i]) {
      lo = MIN (lo, i);
      hi = MAX (hi, i);
      most = MAX (most, h[i]);
    }
  if (!most) {
    g_string_append (o, "<p>No task ran.</p>\n");
    return;
  }
  guint bars = hi - lo + 1;
  double bar_w = MIN (60.0, 900.0 / bars), chart_h = 160;
  g_string_append_printf (o, "<svg id=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" "
                          "width=\"%.0f\" height=\"%.0f\">\n", bars * bar_w + 20, chart_h + 40);
  for (guint i = lo; i <= hi; i++) {
    double hgt = h[i] ? MAX (1, chart_h * (double) h[i] / (double) most) : 0;
    double x = 10 + (i - lo) * bar_w;
    /* bin i: [2^(i-21), 2^(i-20)) seconds (insights.h) */
    double from = i == 0 ? 0 : ldexp (1, (int) i - 21);
    g_string_append_printf (o, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" data-tip=\"%" G_GUINT64_FORMAT " tasks of ", x,
                            chart_h - hgt, bar_w - 2, hgt, h[i]);
    append_duration (o, from);
    g_string_append (o, " to ");
    append_duration (o, ldexp (1, (int) i - 20));
    g_string_append_printf (o, "\"></rect><text class=\"axis\" x=\"%.1f\" y=\"%.0f\">", x,
                            chart_h + 14 + (i - lo) % 2 * 12);
    append_duration (o, from);
    g_string_append (o, "</text>\n");
  }
  g_string_append (o, "</svg>\n");
}

static void
put_slowest (GString *o, const TrInsights *in, gboolean quoted)
{
  guint n;
  const TrSlowTask *slow = tr_insights_slowest (in, &n);
  g_string_append (o, "<table id=\"slowest\"><thead><tr><th>task</th><th>description</th>"
                      "<th>worker</th><th>time</th><th>outcome</th></tr></thead><tbody>\n");
  for (guint i = 0; i < n; i++) {
    g_autofree char *d = tr_description_shown (slow[i].description, quoted);
    g_string_append_printf (o, "<tr class=\"slow-task\"><td>%" G_GUINT64_FORMAT "</td><td>",
                            slow[i].seq);
    esc (o, d);
    g_string_append_printf (o, "</td><td>%u</td><td>", slow[i].worker);
    append_duration (o, slow[i].seconds);
    g_string_append_printf (o, "</td><td>%s%s", slow[i].outcome,
                            slow[i].retried ? ", run again" : "");
    if (slow[i].attempt > 1)
      g_string_append_printf (o, ", attempt %u", slow[i].attempt);
    g_string_append (o, "</td></tr>\n");
  }
  g_string_append (o, "</tbody></table>\n");
}

static void
put_workers (GString *o, const TrInsights *in)
{
  g_string_append (o, "<table id=\"workers\"><thead><tr><th>worker</th><th>busy</th>"
                      "<th>idle</th><th></th></tr></thead><tbody>\n");
  for (guint s = 1; s <= tr_insights_workers (in); s++) {
    double b = 100 * tr_insights_busy_share (in, s);
    g_string_append_printf (o, "<tr class=\"worker\"><td>%u</td><td>%.1f%%</td><td>%.1f%%</td>"
                            "<td><svg width=\"200\" height=\"12\"><rect class=\"ok\" width=\"%.1f\" "
                            "height=\"12\"></rect><rect class=\"idle\" x=\"%.1f\" width=\"%.1f\" "
                            "height=\"12\"></rect></svg></td></tr>\n", s, b, 100 - b, 2 * b,
                            2 * b, 200 - 2 * b);
  }
  g_string_append (o, "</tbody></table>\n");
}

static const char PAGE_STYLE[] =
  "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
  "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
  "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;"
  "border-bottom:1px solid #ddd}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}"
  "svg text{font:11px sans-serif;fill:#333}.tick{stroke:#e4e4e4}"
  ".ok{fill:#3b7dd8}.failed{fill:#d83b3b}.retried{fill:#e0a030}.timeout{fill:#e06a10}"
  ".died{fill:#111}.parent{fill:#8a8a8a}.idle{fill:#e8e8e8}.bar{fill:#3b7dd8}"
  "#tip{position:fixed;right:12px;top:12px;background:#ffd;border:1px solid #cc9;"
  "padding:4px 8px;display:none}";

/* The page's one script, inline: a span's details where the pointer is. */
static const char PAGE_SCRIPT[] =
  "(function(){var tip=document.getElementById('tip');"
  "document.addEventListener('mouseover',function(e){var t=e.target.getAttribute&&"
  "e.target.getAttribute('data-tip');if(t){tip.textContent=t;tip.style.display='block';}"
  "else{tip.style.display='none';}});"
  "document.body.setAttribute('data-ready','yes');})();";

/* Writes `page` to a new file beside `dest` (the file a symlink names: the caller
 * resolves it), renamed over `dest` once whole; a file it replaces keeps its mode.  The
 * new file's name is short, so that any name `dest` may have fits beside it.  FALSE with
 * errno set, and nothing left beside `dest`. */
static gboolean
replace_whole (const char *dest, const GString *page)
{
  struct stat old;
  gboolean replaces = stat (dest, &old) == 0 && S_ISREG (old.st_mode);
  g_autofree char *dir = g_path_get_dirname (dest);
  g_autofree char *tmp = g_build_filename (dir, ".taskrun-report.XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0666); /* the umask applies */
  if (fd < 0)
    return FALSE;
  gboolean ok = (!replaces || fchmod (fd, old.st_mode & 07777) == 0) &&
                tr_write_fully (fd, page->str, page->len);
  int e = errno;
  if (close (fd) != 0 && ok) {
    ok = FALSE;
    e = errno;
  }
  if (ok && rename (tmp, dest) != 0) {
    ok = FALSE;
    e = errno;
  }
  if (!ok) {
    g_unlink (tmp);
    errno = e;
  }
  return ok;
}

gboolean
tr_report_write (TrReport *r, const TrInsights *in, const TrStats *stats, gboolean quoted,
                 char *const *hosts, GError **error)
{
  g_autoptr (GString) o = g_string_new (NULL);
  g_string_append (o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<title>taskrun: ");
  esc (o, r->plugin);
  g_string_append (o, " ");
  esc (o, r->job_file);
  g_string_append_printf (o, "</title><style>%s</style></head>\n<body>\n<div id=\"tip\"></div>\n"
                          "<h1>taskrun: ", PAGE_STYLE);
  esc (o, r->plugin);
  g_string_append (o, " ");
  esc (o, r->job_file);
  g_autoptr (GDateTime) when = g_date_time_new_from_unix_local ((gint64) r->start_unix);
  g_autofree char *started = when ? g_date_time_format (when, "%Y-%m-%d %H:%M:%S %z") : g_strdup ("?");
  char host[256] = "";
  if (gethostname (host, sizeof host - 1) != 0)
    g_strlcpy (host, "?", sizeof host);
  g_string_append (o, "</h1>\n<table id=\"summary\">");
  g_string_append_printf (o, "<tr><th>tasks</th><td>%" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT
                          " succeeded, %" G_GUINT64_FORMAT " failed, %" G_GUINT64_FORMAT
                          " not run, %" G_GUINT64_FORMAT " skipped</td></tr>", stats->total,
                          stats->succeeded, stats->failed, stats->not_run, stats->skipped);
  g_string_append_printf (o, "<tr><th>workers</th><td>%u (%s)</td></tr><tr><th>run</th><td>",
                          r->workers, r->backend);
  append_duration (o, stats->seconds);
  g_string_append_printf (o, ", first task to last result</td></tr><tr><th>started</th><td>%s on ",
                          started);
  esc (o, host);
  g_string_append (o, "</td></tr><tr><th>taskrun</th><td>" TR_VERSION "</td></tr></table>\n");
  g_autoptr (GString) said = g_string_new (NULL);
  tr_insights_print (in, quoted, said);
  g_string_append (o, "<h2>Insights</h2>\n<pre id=\"insights\">");
  esc (o, said->str);
  g_string_append (o, "</pre>\n<h2>Timeline</h2>\n<p>Each lane is a worker slot, or the "
                      "parent's generator and result delivery; blue: succeeded, red: failed, "
                      "orange: timed out or retried, black: its worker died.</p>\n");
  put_timeline (o, r, hosts);
  g_string_append (o, "<h2>Task durations</h2>\n");
  put_histogram (o, in);
  g_string_append (o, "<h2>Slowest tasks</h2>\n");
  put_slowest (o, in, quoted);
  g_string_append (o, "<h2>Workers</h2>\n");
  put_workers (o, in);
  g_string_append_printf (o, "<script>%s</script>\n</body></html>\n", PAGE_SCRIPT);

  g_autofree char *real = realpath (r->path, NULL);
  if (replace_whole (real ? real : r->path, o))
    return TRUE;
  int e = errno;
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "cannot write the report %s: %s",
               r->path, g_strerror (e));
  return FALSE;
}
