/* bench-embed.c — the pool as a program that embeds it sees it, for tools/bench-compute.
 *
 * A user program: it includes only <taskrun/pool.h>, links libtaskrun.so.1, and runs a
 * function of its own on the pool (tr_plugin_register_func), as tests/embed/in-program.c
 * and the README ("Using the pool from C") do.  Each mode prints one JSON line per
 * measurement on stdout:
 *
 *   pingpong N   the machine's floor for one round trip to another process: a forked
 *                child echoes 1 byte, N times, over a pair of pipes ("pipe"), then over
 *                a Unix socketpair ("socketpair", what the pool talks to its workers on);
 *                each where the scheduler puts the two processes, both held on one CPU
 *                ("pipe-1cpu", ...) and held on two ("pipe-2cpu", ...)
 *   apply N      tr_pool_apply_async of one tiny payload, then tr_async_wait, N times in
 *                a row, on a pool of 1 worker: the round trip a caller waiting for each
 *                result gets (the loop only, the pool already up)
 *   map N        tr_pool_map of N payloads "0" .. "N-1" (decimal text) on 2 workers,
 *                batch = auto; the task returns i*i as 8 bytes and the parent adds them
 *                up (128 bits) and checks the total against (N-1)N(2N-1)/6
 *   map-stream N the same map made of tr_pool_stream (unordered, each result put at its
 *                payload's index): what the public API reaches without tr_pool_map
 *
 * Every mode warms up before it times (a few hundred round trips, or the pool's start),
 * checks every answer, and exits non-zero on a wrong one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <taskrun/pool.h>

typedef unsigned __int128 u128;

#define WARMUP 200

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static G_NORETURN void
die (const char *what, const char *why)
{
  fprintf (stderr, "bench-embed: %s: %s\n", what, why);
  exit (1);
}

/* The task: decimal text i, and the answer i*i as 8 bytes (host order). */
static gboolean
square (const guint8 *data, gsize len, TrOutput *out, GError **error)
{
  guint64 n = 0;
  if (len == 0 || len > 19)
    goto bad;
  for (gsize i = 0; i < len; i++) {
    if (data[i] < '0' || data[i] > '9')
      goto bad;
    n = n * 10 + (data[i] - '0');
  }
  guint64 sq = n * n;
  tr_output_append (out, &sq, sizeof sq);
  return TRUE;
bad:
  g_set_error (error, g_quark_from_static_string ("bench-embed"), 1, "not a number: %.*s",
               (int) MIN (len, 40), (const char *) data);
  return FALSE;
}

static guint64
parse_count (const char *s)
{
  char *end = NULL;
  errno = 0;
  guint64 n = g_ascii_strtoull (s, &end, 10);
  if (errno || !*s || *end || n == 0)
    die (s, "not a positive count");
  return n;
}

/* ---- pingpong ------------------------------------------------------------------------ */

static void
xwrite1 (int fd)
{
  char c = 'x';
  while (write (fd, &c, 1) != 1)
    if (errno != EINTR)
      die ("write", g_strerror (errno));
}

static gboolean
read1 (int fd)
{
  char c;
  for (;;) {
    ssize_t r = read (fd, &c, 1);
    if (r == 1)
      return TRUE;
    if (r == 0)
      return FALSE;
    if (errno != EINTR)
      die ("read", g_strerror (errno));
  }
}

/* Holds the calling process on one CPU; cpu < 0: leaves it free. */
static void
hold_on (int cpu)
{
  if (cpu < 0)
    return;
  cpu_set_t set;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (0, sizeof set, &set) < 0)
    die ("sched_setaffinity", g_strerror (errno));
}

/* N round trips of 1 byte: the parent writes on parent_w, the child reads it on child_r
 * and answers on child_w, the parent reads the answer on parent_r.  The parent runs on
 * parent_cpu and the child on child_cpu (-1: where the scheduler puts them). */
static void
pingpong (const char *kind, guint64 n, int parent_cpu, int child_cpu, gboolean socket)
{
  int parent_w, parent_r, child_r, child_w;
  if (socket) {
    int s[2]; /* one socket each side, both ways, as the pool talks to a worker */
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
      die ("socketpair", g_strerror (errno));
    parent_w = parent_r = s[0];
    child_r = child_w = s[1];
  } else {
    int down[2], up[2];
    if (pipe2 (down, O_CLOEXEC) < 0 || pipe2 (up, O_CLOEXEC) < 0)
      die ("pipe", g_strerror (errno));
    parent_w = down[1];
    child_r = down[0];
    parent_r = up[0];
    child_w = up[1];
  }
  cpu_set_t saved;
  if (sched_getaffinity (0, sizeof saved, &saved) < 0)
    die ("sched_getaffinity", g_strerror (errno));
  pid_t pid = fork ();
  if (pid < 0)
    die ("fork", g_strerror (errno));
  if (pid == 0) {
    hold_on (child_cpu);
    close (parent_w);
    if (parent_r != parent_w)
      close (parent_r);
    while (read1 (child_r))
      xwrite1 (child_w);
    _exit (0);
  }
  hold_on (parent_cpu);
  close (child_r);
  if (child_w != child_r)
    close (child_w);
  double t0 = 0;
  for (guint64 i = 0; i < WARMUP + n; i++) {
    if (i == WARMUP)
      t0 = now ();
    xwrite1 (parent_w);
    if (!read1 (parent_r))
      die (kind, "the child went away");
  }
  double s = now () - t0;
  close (parent_w);
  if (parent_r != parent_w)
    close (parent_r);
  int status;
  waitpid (pid, &status, 0);
  if (sched_setaffinity (0, sizeof saved, &saved) < 0)
    die ("sched_setaffinity", g_strerror (errno));
  printf ("{\"mode\":\"pingpong\",\"kind\":\"%s\",\"parent_cpu\":%d,\"child_cpu\":%d"
          ",\"seconds\":%.6f,\"round_trips\":%" G_GUINT64_FORMAT ",\"us_per_round_trip\":%.3f}\n",
          kind, parent_cpu, child_cpu, s, n, s / n * 1e6);
  fflush (stdout);
}

/* Over pipes and over a socketpair, each three ways: where the scheduler puts the two
 * processes (what a program that holds nothing gets), both held on one CPU (no wake-up
 * crosses CPUs), and held on two (every one does). */
static int
run_pingpong (guint64 n)
{
  cpu_set_t set;
  if (sched_getaffinity (0, sizeof set, &set) < 0)
    die ("sched_getaffinity", g_strerror (errno));
  int cpus[2] = { -1, -1 }, found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
    if (CPU_ISSET (c, &set))
      cpus[found++] = c;
  for (int sock = 0; sock < 2; sock++) {
    const char *name = sock ? "socketpair" : "pipe";
    g_autofree char *one = g_strconcat (name, "-1cpu", NULL);
    g_autofree char *two = g_strconcat (name, "-2cpu", NULL);
    pingpong (name, n, -1, -1, sock);
    pingpong (one, n, cpus[0], cpus[0], sock);
    if (found == 2)
      pingpong (two, n, cpus[0], cpus[1], sock);
  }
  return 0;
}

/* ---- the pool -------------------------------------------------------------------------- */

static TrPlugin *plugin; /* outlives its pool */

static TrPool *
start_pool (guint workers)
{
  g_autoptr (GError) error = NULL;
  plugin = tr_plugin_load ("square", NULL, &error);
  if (!plugin)
    die ("tr_plugin_load", error->message);
  TrPoolOptions options = { .workers = workers, .batch = 0 /* automatic */ };
  TrPool *pool = tr_pool_new (plugin, NULL, &options, &error);
  if (!pool)
    die ("tr_pool_new", error->message);
  return pool;
}

static void
stop_pool (TrPool *pool)
{
  tr_pool_close (pool);
  tr_pool_join (pool);
  tr_pool_free (pool);
  g_clear_pointer (&plugin, tr_plugin_free);
}

static guint64
result_u64 (const guint8 *data, gsize len, const char *what)
{
  guint64 v;
  if (len != sizeof v)
    die (what, "a result that is not 8 bytes");
  memcpy (&v, data, sizeof v);
  return v;
}

static int
run_apply (guint64 n)
{
  TrPool *pool = start_pool (1);
  char buf[24];
  double t0 = 0;
  for (guint64 i = 0; i < WARMUP + n; i++) {
    if (i == WARMUP)
      t0 = now (); /* every earlier result was waited for: the loop proper starts */
    guint64 x = i % 1000;
    int len = snprintf (buf, sizeof buf, "%" G_GUINT64_FORMAT, x);
    GBytes *payload = g_bytes_new (buf, len);
    TrAsync *a = tr_pool_apply_async (pool, NULL, payload, NULL, NULL, NULL);
    g_bytes_unref (payload);
    tr_async_wait (a, -1);
    const TrResult *r = tr_async_peek_result (a);
    if (!r || r->error)
      die ("apply", r ? r->error->message : "no result after the wait");
    if (result_u64 (r->data, r->len, "apply") != x * x)
      die ("apply", "WRONG ANSWER");
    tr_async_unref (a);
  }
  double s = now () - t0;
  printf ("{\"mode\":\"apply\",\"workers\":1,\"seconds\":%.6f,\"round_trips\":%" G_GUINT64_FORMAT
          ",\"us_per_round_trip\":%.3f}\n", s, n, s / n * 1e6);
  fflush (stdout);
  stop_pool (pool);
  return 0;
}

static const char *
u128_text (u128 v, char *buf, gsize size)
{
  gsize i = size - 1;
  buf[i] = '\0';
  do {
    buf[--i] = (char) ('0' + (int) (v % 10));
    v /= 10;
  } while (v && i > 0);
  return buf + i;
}

static GPtrArray *
make_payloads (guint64 n)
{
  if (n > G_MAXUINT)
    die ("map", "too many payloads for one GPtrArray");
  GPtrArray *payloads = g_ptr_array_new_full ((guint) n, (GDestroyNotify) g_bytes_unref);
  char buf[24];
  for (guint64 i = 0; i < n; i++) {
    int len = snprintf (buf, sizeof buf, "%" G_GUINT64_FORMAT, i);
    g_ptr_array_add (payloads, g_bytes_new (buf, len));
  }
  return payloads;
}

/* The results' total, checked against the sum of the squares below n. */
static u128
check_sum (GPtrArray *results, guint64 n, const char *what)
{
  if (results->len != n)
    die (what, "not one result per payload");
  u128 sum = 0;
  for (guint i = 0; i < results->len; i++) {
    if (!results->pdata[i])
      die (what, "a payload without a result");
    gsize len;
    const guint8 *data = g_bytes_get_data (results->pdata[i], &len);
    sum += result_u64 (data, len, what);
  }
  u128 nn = n;
  if (sum != (nn - 1) * nn * (2 * nn - 1) / 6)
    die (what, "WRONG ANSWER: the total is not the sum of the squares");
  return sum;
}

/* The same map made of tr_pool_stream, unordered: the generator hands out the payloads
 * in order, and each result lands at its index (seq - 1), so the caller gets what
 * tr_pool_map gives, from the stream's recycled records and bundles. */
typedef struct {
  GPtrArray *payloads, *results;
  guint next;
  char *failure;
} StreamMap;

static TrNext
stream_map_next (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  StreamMap *sm = data;
  if (sm->next == sm->payloads->len)
    return TR_NEXT_END;
  gsize len;
  const guint8 *p = g_bytes_get_data (sm->payloads->pdata[sm->next++], &len);
  tr_task_set_payload (task, p, len);
  return TR_NEXT_TASK;
}

static void
stream_map_result (const TrResult *r, gpointer data)
{
  StreamMap *sm = data;
  if (!r->final)
    return;
  if (r->error) {
    if (!sm->failure)
      sm->failure = g_strdup_printf ("payload %" G_GUINT64_FORMAT ": %s", r->seq - 1,
                                     r->error->message);
    return;
  }
  sm->results->pdata[r->seq - 1] = g_bytes_new (r->data, r->len);
}

static GPtrArray *
map_via_stream (TrPool *pool, GPtrArray *payloads)
{
  GPtrArray *results = g_ptr_array_new_full (payloads->len, (GDestroyNotify) g_bytes_unref);
  g_ptr_array_set_size (results, payloads->len);
  StreamMap sm = { .payloads = payloads, .results = results };
  g_autoptr (GError) error = NULL;
  if (!tr_pool_stream (pool, stream_map_next, stream_map_result, &sm, FALSE, NULL, &error))
    die ("tr_pool_stream", error->message);
  if (sm.failure)
    die ("map-stream", sm.failure);
  return results;
}

/* map: tr_pool_map; map-stream: map_via_stream.  Times each step: the pool's start, the
 * payloads' making, the map, adding up, freeing payloads and results, the pool's end. */
static int
run_map (guint64 n, gboolean via_stream)
{
  const char *mode = via_stream ? "map-stream" : "map";
  double t_new = now ();
  TrPool *pool = start_pool (2);
  double t0 = now ();
  GPtrArray *payloads = make_payloads (n);
  double t1 = now ();
  GPtrArray *results;
  if (via_stream) {
    results = map_via_stream (pool, payloads);
  } else {
    g_autoptr (GError) error = NULL;
    results = tr_pool_map (pool, payloads, &error);
    if (!results)
      die ("tr_pool_map", error->message);
  }
  double t2 = now ();
  u128 sum = check_sum (results, n, mode);
  double t3 = now ();
  g_ptr_array_unref (results);
  g_ptr_array_unref (payloads);
  double t4 = now ();
  stop_pool (pool);
  double t_end = now ();

  struct rusage self, children;
  getrusage (RUSAGE_SELF, &self);
  getrusage (RUSAGE_CHILDREN, &children);
  char total[48];
  double seconds = t3 - t0; /* payloads made, mapped, results added up */
  printf ("{\"mode\":\"%s\",\"workers\":2,\"batch\":\"auto\",\"tasks\":%" G_GUINT64_FORMAT
          ",\"result\":\"%s\",\"seconds\":%.6f,\"map_seconds\":%.6f,\"build_seconds\":%.6f"
          ",\"sum_seconds\":%.6f,\"free_seconds\":%.6f,\"pool_start_seconds\":%.6f"
          ",\"pool_end_seconds\":%.6f,\"whole_seconds\":%.6f,\"tasks_per_second\":%.0f"
          ",\"map_tasks_per_second\":%.0f,\"self_kb\":%ld,\"children_kb\":%ld}\n",
          mode, n, u128_text (sum, total, sizeof total), seconds, t2 - t1, t1 - t0, t3 - t2,
          t4 - t3, t0 - t_new, t_end - t4, t_end - t_new, n / seconds, n / (t2 - t1),
          self.ru_maxrss, children.ru_maxrss);
  fflush (stdout);
  return 0;
}

int
main (int argc, char **argv)
{
  tr_plugin_register_func ("square", square);
  tr_worker_main_if_worker (argc, argv); /* in a worker: runs tasks, then exits */
  if (argc != 3) {
    fprintf (stderr, "usage: bench-embed pingpong|apply|map|map-stream N\n");
    return 2;
  }
  guint64 n = parse_count (argv[2]);
  if (strcmp (argv[1], "pingpong") == 0)
    return run_pingpong (n);
  if (strcmp (argv[1], "apply") == 0)
    return run_apply (n);
  if (strcmp (argv[1], "map") == 0)
    return run_map (n, FALSE);
  if (strcmp (argv[1], "map-stream") == 0)
    return run_map (n, TRUE);
  fprintf (stderr, "bench-embed: unknown mode %s (pingpong, apply, map or map-stream)\n",
           argv[1]);
  return 2;
}
