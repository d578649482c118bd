/* trace.c — a run as a Chrome trace: the JSON Array Format of the Trace Event Format,
 * which Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * One event per line.  A lane (a "thread" of the format) per worker slot, named
 * "worker N" (with its rank and host under MPI), one complete event ("X") per attempt
 * with the task's seq, description, attempt, outcome, worker pid and error in its args;
 * the workers' starts, ends and restarts, and timeouts and retries, as instant events
 * ("i") on their lane; two lanes for the parent, its generator and its result delivery;
 * the job in the first event's args, the counts in the last one's.
 *
 * The file is written as the run goes, whole lines at a time, at most TRACE_FLUSH_US
 * apart, the groups being filled written out with them: every line ends with a comma,
 * and the closing bracket comes at the end, which the format allows to be missing, so a
 * taskrun that is killed leaves a trace the usual tools open up to its last line.  A
 * write that fails (a full disk) is cut back to the last whole line, and nothing more is
 * written.  Memory is constant: a buffer written out when full, and a group per lane.
 *
 * Tiny tasks would make a trace as large as the job (ten million events): on each lane,
 * successful attempts shorter than TRACE_TINY_US that start within TRACE_GROUP_US of the
 * first of their group are one event, "N tasks", with their count, their first and last
 * seq and their busy time in its args; its span runs from the first one's start to the
 * last one's end.  So a lane has at most one event per TRACE_GROUP_US of tiny tasks, and
 * one per task that takes longer or fails.  The parent's phases are grouped alike.
 *
 * Owns: the file's layout, the grouping rule, the spans it gives the report.
 * Does not own: when attempts end (the pool), what a description is (runner.c), the
 * page (report.c).
 */
#include "trace.h"
#include "config.h"
#include "json.h"
#include "logfile.h"
#include "stdout.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define TRACE_TINY_US 1000.0
#define TRACE_GROUP_US 10000.0
#define TRACE_FLUSH_US (G_USEC_PER_SEC / 10)
#define TRACE_BUFFER_BYTES (256 * 1024)
#define TRACE_NAME_MAX 80           /* bytes of a description used as an event's name */
#define TRACE_DESCRIPTION_MAX 4096  /* bytes of it kept in the args */

/* Tiny attempts (or parent phases) waiting to be written as one event. */
typedef struct {
  guint64 n;
  double first_us, end_us, busy_us;
  guint64 first_seq, last_seq, units;
  guint64 calls;      /* parent lanes: tasks pulled or results delivered */
  GString *only;      /* the event of the first one, written as it is when n stays 1 */
} Group;

struct TrTrace {
  int fd;             /* -1: no file, spans only */
  char *path;
  GString *buf;
  gint64 last_write;
  int write_errno;    /* the first write that failed; 0: none */
  off_t good;         /* where the last whole line written ends */
  double t0_unix;     /* the trace's zero, in Unix seconds and in the monotonic clock */
  gint64 t0_mono;
  int pid;
  guint workers;
  Group *lanes;       /* [0] the generator, [1 .. workers] the slots, [workers + 1] results */
  TrSpanFunc span;
  gpointer span_data;
  double generator_end_us;
};

/* An event's opening fields, into `out` (the trace's buffer, or a group's held event). */
static void
put_head (const TrTrace *t, GString *out, const char *name, const char *cat, char ph, double ts_us,
          guint tid)
{
  g_string_append (out, "{\"name\":");
  tr_json_append_string (out, name, -1);
  g_string_append_printf (out, ",\"cat\":\"%s\",\"ph\":\"%c\",\"ts\":", cat, ph);
  tr_json_append_double (out, ts_us, 3);
  g_string_append_printf (out, ",\"pid\":%d,\"tid\":%u", t->pid, tid);
}

/* The event's end: its args, already written as `,"args":{...}` or nothing. */
static void
put_end (TrTrace *t)
{
  g_string_append (t->buf, "},\n");
  if (t->buf->len >= TRACE_BUFFER_BYTES)
    tr_trace_flush (t);
}

static void
write_out (TrTrace *t)
{
  if (t->fd >= 0 && !t->write_errno) {
    if (tr_write_fully (t->fd, t->buf->str, t->buf->len)) {
      t->good += (off_t) t->buf->len;
    } else {
      t->write_errno = errno;
      g_printerr ("taskrun: cannot write the trace %s: %s; it ends at its last whole line\n",
                  t->path, g_strerror (t->write_errno));
      if (ftruncate (t->fd, t->good) != 0) {
        /* said above; the file may end in a cut line */
      }
    }
  }
  g_string_truncate (t->buf, 0);
  t->last_write = g_get_monotonic_time ();
}

static void group_write (TrTrace *t, guint lane);

void
tr_trace_flush (TrTrace *t)
{
  if (t->buf->len >= TRACE_BUFFER_BYTES) {
    write_out (t);
    return;
  }
  if (g_get_monotonic_time () - t->last_write < TRACE_FLUSH_US)
    return;
  /* what the lanes' groups hold is due too: a lane whose next task hangs would hold its
   * last tiny ones for good */
  for (guint lane = 0; lane < t->workers + 2; lane++)
    group_write (t, lane);
  write_out (t);
}

static void
put_metadata (TrTrace *t, const char *what, guint tid, const char *key, const char *text, int number)
{
  g_string_append_printf (t->buf, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,"
                          "\"args\":{\"%s\":", what, t->pid, tid, key);
  if (text)
    tr_json_append_string (t->buf, text, -1);
  else
    g_string_append_printf (t->buf, "%d", number);
  g_string_append (t->buf, "}");
  put_end (t);
}

static void
name_lane (TrTrace *t, guint tid, const char *name, int sort)
{
  put_metadata (t, "thread_name", tid, "name", name, 0);
  put_metadata (t, "thread_sort_index", tid, "sort_index", NULL, sort);
}

static guint
lane_tid (TrTrace *t, guint lane)
{
  return lane == t->workers + 1 ? TR_TRACE_LANE_RESULTS : lane;
}

static double
unix_to_us (TrTrace *t, double unix_seconds)
{
  return (unix_seconds - t->t0_unix) * 1e6;
}

TrTrace *
tr_trace_open (const char *path, const TrTraceJob *job, TrSpanFunc span, gpointer span_data,
               GError **error)
{
  int fd = -1;
  if (path) {
    fd = tr_logfile_open (path, O_WRONLY | O_CREAT, "the trace", error);
    if (fd < 0)
      return NULL;
    if (ftruncate (fd, 0) != 0) {
      int e = errno;
      close (fd);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                   "cannot write the trace %s: %s", path, g_strerror (e));
      return NULL;
    }
  }
  TrTrace *t = g_new0 (TrTrace, 1);
  t->fd = fd;
  t->path = g_strdup (path);
  t->buf = g_string_sized_new (TRACE_BUFFER_BYTES + 8192);
  /* zero is the command's start, so that the workers' starts, which come before the
   * trace is opened, are drawn after it */
  gint64 now = g_get_monotonic_time ();
  t->t0_mono = job->started_us ? job->started_us : now;
  t->t0_unix = g_get_real_time () / 1e6 - (now - t->t0_mono) / 1e6;
  t->last_write = now;
  t->pid = (int) getpid ();
  t->workers = MIN (job->workers, TR_WORKERS_MAX);
  t->lanes = g_new0 (Group, t->workers + 2);
  for (guint i = 0; i < t->workers + 2; i++)
    t->lanes[i].only = g_string_new (NULL);
  t->span = span;
  t->span_data = span_data;
  t->generator_end_us = -1;

  g_string_append (t->buf, "[\n");
  g_autofree char *process = g_strdup_printf ("taskrun: %s %s", job->plugin, job->job_file);
  put_metadata (t, "process_name", 0, "name", process, 0);
  name_lane (t, TR_TRACE_LANE_GENERATOR, "taskrun: generator", -2);
  name_lane (t, TR_TRACE_LANE_RESULTS, "taskrun: results", -1);
  for (guint s = 1; s <= t->workers; s++) {
    g_autofree char *name = g_strdup_printf ("worker %u", s);
    name_lane (t, s, name, (int) s);
  }
  char host[256] = "";
  if (gethostname (host, sizeof host - 1) != 0)
    g_strlcpy (host, "?", sizeof host);
  put_head (t, t->buf, "taskrun started", "run", 'i', 0, TR_TRACE_LANE_GENERATOR);
  g_string_append (t->buf, ",\"s\":\"g\",\"args\":{\"job_file\":");
  tr_json_append_string (t->buf, job->job_file, -1);
  g_string_append (t->buf, ",\"plugin\":");
  tr_json_append_string (t->buf, job->plugin, -1);
  g_string_append_printf (t->buf, ",\"workers\":%u,\"backend\":\"%s\",\"host\":", job->workers,
                          job->backend);
  tr_json_append_string (t->buf, host, -1);
  g_string_append (t->buf, ",\"taskrun_version\":\"" TR_VERSION "\",\"start_unix\":");
  tr_json_append_double (t->buf, t->t0_unix, 6);
  g_string_append_printf (t->buf, ",\"tiny_task_us\":%g,\"group_us\":%g}", TRACE_TINY_US,
                          TRACE_GROUP_US);
  put_end (t);
  write_out (t); /* the file says what it is from the start */
  return t;
}

static const char *
outcome_name (TrSpanKind kind)
{
  switch (kind) {
  case TR_SPAN_OK: return "ok";
  case TR_SPAN_FAILED: return "failed";
  case TR_SPAN_RETRIED: return "failed, retried";
  case TR_SPAN_TIMEOUT: return "timed out";
  case TR_SPAN_DIED: return "worker died";
  case TR_SPAN_PARENT: break;
  }
  return "parent";
}

/* Writes a lane's group: as the one event it held, or as "N tasks". */
static void
group_write (TrTrace *t, guint lane)
{
  Group *g = &t->lanes[lane];
  if (!g->n)
    return;
  gboolean parent = lane == 0 || lane == t->workers + 1;
  double dur = g->end_us - g->first_us;
  if (g->n == 1 && g->only->len) {
    g_string_append_len (t->buf, g->only->str, (gssize) g->only->len);
    if (t->buf->len >= TRACE_BUFFER_BYTES)
      tr_trace_flush (t);
  } else if (parent) {
    put_head (t, t->buf, lane == 0 ? "generator" : "results", "parent", 'X', g->first_us,
              lane_tid (t, lane));
    g_string_append (t->buf, ",\"dur\":");
    tr_json_append_double (t->buf, dur, 3);
    g_string_append_printf (t->buf, ",\"args\":{\"spans\":%" G_GUINT64_FORMAT ",\"%s\":%"
                            G_GUINT64_FORMAT ",\"busy_us\":", g->n, lane == 0 ? "tasks" : "results",
                            g->calls);
    tr_json_append_double (t->buf, g->busy_us, 3);
    g_string_append (t->buf, "}");
    put_end (t);
  } else {
    g_autofree char *name = g_strdup_printf ("%" G_GUINT64_FORMAT " tasks", g->n);
    put_head (t, t->buf, name, "tasks", 'X', g->first_us, lane);
    g_string_append (t->buf, ",\"dur\":");
    tr_json_append_double (t->buf, dur, 3);
    g_string_append_printf (t->buf, ",\"args\":{\"tasks\":%" G_GUINT64_FORMAT ",\"first_seq\":%"
                            G_GUINT64_FORMAT ",\"last_seq\":%" G_GUINT64_FORMAT ",\"units\":%"
                            G_GUINT64_FORMAT ",\"outcome\":\"ok\",\"busy_us\":", g->n,
                            g->first_seq, g->last_seq, g->units);
    tr_json_append_double (t->buf, g->busy_us, 3);
    g_string_append (t->buf, "}");
    put_end (t);
  }
  if (t->span)
    t->span (lane, g->first_us, dur, g->busy_us, parent ? 0 : g->n,
             parent ? TR_SPAN_PARENT : TR_SPAN_OK, t->span_data);
  g->n = 0;
  g->busy_us = 0;
  g->units = 0;
  g->calls = 0;
  g_string_truncate (g->only, 0);
}

/* One attempt as its own complete event, into `out`. */
static void
put_attempt (TrTrace *t, GString *out, const TrResult *r, const char *desc, TrSpanKind kind,
             double ts, double dur)
{
  g_autofree char *name = NULL;
  gsize dlen = strlen (desc);
  if (dlen == 0)
    name = g_strdup_printf ("task %" G_GUINT64_FORMAT, r->seq);
  else if (dlen > TRACE_NAME_MAX)
    name = g_strndup (desc, TRACE_NAME_MAX);
  put_head (t, out, name ? name : desc, "task", 'X', ts, r->worker);
  g_string_append (out, ",\"dur\":");
  tr_json_append_double (out, dur, 3);
  g_string_append_printf (out, ",\"args\":{\"seq\":%" G_GUINT64_FORMAT ",\"attempt\":%u,"
                          "\"outcome\":\"%s\",\"worker_pid\":%d,\"units\":%" G_GUINT64_FORMAT
                          ",\"description\":", r->seq, r->attempt, outcome_name (kind),
                          (int) r->worker_pid, r->units);
  tr_json_append_string (out, desc, (gssize) MIN (dlen, TRACE_DESCRIPTION_MAX));
  if (r->error) {
    g_string_append (out, ",\"error\":");
    tr_json_append_string (out, r->error->message, (gssize) MIN (strlen (r->error->message),
                                                                 TRACE_DESCRIPTION_MAX));
  }
  g_string_append (out, "}},\n");
}

static void
put_instant (TrTrace *t, const char *name, double ts, guint tid, const char *args_json)
{
  put_head (t, t->buf, name, "event", 'i', ts, tid);
  g_string_append_printf (t->buf, ",\"s\":\"t\"%s%s%s", args_json ? ",\"args\":{" : "",
                          args_json ? args_json : "", args_json ? "}" : "");
  put_end (t);
}

void
tr_trace_attempt (TrTrace *t, const TrResult *r, TrDescribeFunc describe, gpointer data)
{
  if (r->worker == 0 || r->worker > t->workers)
    return;
  double ts = unix_to_us (t, r->start_time), dur = r->seconds * 1e6;
  Group *g = &t->lanes[r->worker];
  gboolean tiny = !r->error && r->final && dur < TRACE_TINY_US;
  if (g->n && (!tiny || ts > g->first_us + TRACE_GROUP_US))
    group_write (t, r->worker);
  if (tiny) {
    if (g->n == 0) {
      g->first_us = ts;
      g->first_seq = r->seq;
      /* the first of a group is kept as its own event, for a group that stays one */
      put_attempt (t, g->only, r, describe (data, r), TR_SPAN_OK, ts, dur);
    }
    g->n++;
    g->last_seq = r->seq;
    g->end_us = g->n == 1 ? ts + dur : MAX (g->end_us, ts + dur);
    g->busy_us += dur;
    g->units += r->units;
    return;
  }
  TrSpanKind kind = TR_SPAN_OK;
  if (r->error) {
    kind = !r->final ? TR_SPAN_RETRIED : TR_SPAN_FAILED;
    if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_TIMEOUT))
      kind = TR_SPAN_TIMEOUT;
    else if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_WORKER_DIED))
      kind = TR_SPAN_DIED;
  }
  put_attempt (t, t->buf, r, describe (data, r), kind, ts, dur);
  if (kind == TR_SPAN_TIMEOUT || !r->final) {
    g_autofree char *args = g_strdup_printf ("\"seq\":%" G_GUINT64_FORMAT ",\"attempt\":%u",
                                             r->seq, r->attempt);
    if (kind == TR_SPAN_TIMEOUT)
      put_instant (t, "timeout", ts + dur, r->worker, args);
    if (!r->final)
      put_instant (t, "retry", ts + dur, r->worker, args);
  }
  if (t->buf->len >= TRACE_BUFFER_BYTES)
    tr_trace_flush (t);
  if (t->span)
    t->span (r->worker, ts, dur, dur, 1, kind, t->span_data);
}

void
tr_trace_worker_event (TrTrace *t, const TrPoolEvent *ev)
{
  if (ev->slot == 0 || ev->slot > t->workers)
    return;
  static const char *const names[] = {
    [TR_POOL_EVENT_WORKER_READY] = "worker started",
    [TR_POOL_EVENT_WORKER_ENDED] = "worker ended",
    [TR_POOL_EVENT_WORKER_RETRY] = "worker failed to start",
    [TR_POOL_EVENT_WORKER_LOST] = "slot given up",
  };
  if (ev->kind == TR_POOL_EVENT_WORKER_READY && ev->where) {
    g_autofree char *name = g_strdup_printf ("worker %u (%s)", ev->slot, ev->where);
    put_metadata (t, "thread_name", ev->slot, "name", name, 0);
  }
  g_autoptr (GString) args = g_string_new (NULL);
  g_string_append_printf (args, "\"worker_pid\":%d", (int) ev->pid);
  if (ev->where) {
    g_string_append (args, ",\"where\":");
    tr_json_append_string (args, ev->where, -1);
  }
  if (ev->text) {
    g_string_append (args, ",\"how\":");
    tr_json_append_string (args, ev->text, -1);
  }
  put_instant (t, names[ev->kind], unix_to_us (t, ev->when), ev->slot, args->str);
}

void
tr_trace_phase (TrTrace *t, TrPoolPhase phase, gint64 start_us, gint64 end_us, guint count)
{
  guint lane = phase == TR_POOL_PHASE_GENERATOR ? 0 : t->workers + 1;
  Group *g = &t->lanes[lane];
  double ts = (double) (start_us - t->t0_mono), dur = (double) (end_us - start_us);
  if (g->n && ts > g->first_us + TRACE_GROUP_US)
    group_write (t, lane);
  if (g->n == 0)
    g->first_us = ts;
  g->n++;
  g->end_us = ts + dur;
  g->busy_us += dur;
  g->calls += count;
}

void
tr_trace_generator_ended (TrTrace *t)
{
  t->generator_end_us = (double) (g_get_monotonic_time () - t->t0_mono);
  put_instant (t, "generator ended", t->generator_end_us, TR_TRACE_LANE_GENERATOR, NULL);
}

gboolean
tr_trace_close (TrTrace *t, const TrStats *stats, GError **error)
{
  for (guint lane = 0; lane < t->workers + 2; lane++)
    group_write (t, lane);
  double now = (double) (g_get_monotonic_time () - t->t0_mono);
  /* the last event: no comma after it, then the bracket */
  put_head (t, t->buf, "run ended", "run", 'i', now, TR_TRACE_LANE_GENERATOR);
  g_string_append_printf (t->buf, ",\"s\":\"g\",\"args\":{\"tasks\":%" G_GUINT64_FORMAT
                          ",\"succeeded\":%" G_GUINT64_FORMAT ",\"failed\":%" G_GUINT64_FORMAT
                          ",\"not_run\":%" G_GUINT64_FORMAT ",\"skipped\":%" G_GUINT64_FORMAT
                          ",\"seconds\":", stats->total, stats->succeeded, stats->failed,
                          stats->not_run, stats->skipped);
  tr_json_append_double (t->buf, stats->seconds, 6);
  g_string_append (t->buf, "}}\n]\n");
  write_out (t);
  int e = t->write_errno;
  if (t->fd >= 0 && close (t->fd) != 0 && !e)
    e = errno;
  if (e && t->write_errno)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "the trace %s is not whole: %s", t->path, g_strerror (e));
  else if (e)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "cannot write the trace %s: %s",
                 t->path, g_strerror (e));
  for (guint i = 0; i < t->workers + 2; i++)
    g_string_free (t->lanes[i].only, TRUE);
  g_free (t->lanes);
  g_string_free (t->buf, TRUE);
  g_free (t->path);
  g_free (t);
  return e == 0;
}
