/* test-link.c — the contract of a link class (core/link.h): one set of cases, run for
 * every class there is: the local link (core/link-local.c), the fake link of the tests
 * (tests/fakelink.c), and the MPI link (core/mpi/bridge.c, its worker started by an agent
 * on rank 1, core/mpi/agent.c).
 *
 * Each case drives the class's functions as the pool's I/O thread does: spawn, a CONFIG
 * frame answered by HELLO, TASKS answered by RESULTS, QUIT, kill, signal_group, ended,
 * close.  What a class cannot honour is a capability of its LinkCase below; a case that
 * needs one the class lacks ends with g_test_skip and the reason, never a silent pass.
 * The cases (/link/CLASS/CASE):
 *   spawn               a link of its class, pid, pollable fd, nothing to read yet
 *   config-hello        CONFIG is answered by HELLO, and poll says so first
 *   init-failed         a failing worker_init: INIT_FAILED, then "exited with status 3"
 *   tasks-results       TASKS out, RESULTS back, frames in flight, 3 MiB each way
 *   nonblocking         receive with nothing there, send to a worker that reads no more
 *   quit-clean          QUIT: ended, the link's end, close clean with status 0
 *   kill                kill mid-task: ended, the link's end, "killed by signal 9"
 *   signal-group        SIGSTOP, SIGCONT, SIGTERM reach the worker and its task's child
 *   crash-leaves-child  a worker dies while its fork holds the link; close leaves nothing
 *   captures-output     the worker's stdout and stderr on out_fd and err_fd
 *   pool                tr_pool_new_on_link runs a task on the class, and ends
 *
 * The MPI link exists only inside an MPI job.  So each MPI case is a job of its own,
 *   mpirun --oversubscribe -n 2 test-link --tap -p /link/mpi/CASE
 * in which this program, started by mpirun, loads the MPI module as taskrun does
 * (tr_mpi_start): rank 1 becomes the agent (the module's agent_main, the code a taskrun
 * rank runs, which starts build/core/taskrun workers with the local link), and rank 0
 * runs the case against the module's link class.  Both ranks run on this host, so the
 * worker's pid, its process group and its children are checked here as a local worker's
 * are.  The MPI cases are skipped, saying why, when the build has no MPI backend or
 * mpirun is not on PATH.
 *
 * Every call that must not block (send, receive, kill, signal_group, ended) runs under a
 * watchdog that ends this program if it does not return (a send that waits for a reader
 * would stop the pool's I/O thread, and with it every worker); spawn and close, which
 * wait by design, are bounded too, and every wait for the worker has a deadline.
 */
#include "config.h"
#include "testutil.h"
#include "fakelink.h"
#include "internal.h"
#include "link.h"
#include "mpi-backend.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALL_S 5.0   /* a call that must not block: generous, a blocked one never returns */
#define SPAWN_S 40.0 /* the MPI link waits up to 30 s for its agent */
#define CLOSE_S 40.0
#define WAIT_S 15.0  /* for the worker to answer, or to end */

/* ---- what a link class can honour --------------------------------------------------- */

typedef struct {
  const char *name;         /* the test path's second part: /link/NAME/CASE */
  const TrLinkClass *klass; /* the MPI class is the module's, set when it is loaded */
  /* Its worker is a process on this host: link->pid is its pid, it leads a process group
   * of its own, and close reports its wait status.  (The MPI worker is a process on its
   * agent's host, which for these cases, all ranks on one machine, is this one.) */
  gboolean process;
  const char *no_process_why;
  /* Its worker loads the plugin that CONFIG names and runs its tasks. */
  gboolean runs_plugin;
  const char *no_plugin_why;
  /* Why captures_output is FALSE, for the case that reads out_fd and err_fd. */
  const char *no_output_why;
  /* What link->where starts with; NULL: it is NULL (the worker runs here). */
  const char *where_prefix;
} LinkCase;

static LinkCase local_case = {
  .name = "local",
  .klass = &tr_link_local,
  .process = TRUE,
  .runs_plugin = TRUE,
};

static LinkCase fake_case = {
  .name = "fake",
  .klass = &fake_link,
  .no_process_why = "the fake link's worker is a thread of this program: no process, no "
                    "process group, and close reports every end as \"exited with status 0\"",
  .no_plugin_why = "the fake link's worker loads no plugin: it answers every CONFIG with "
                   "HELLO and echoes every task's payload",
  .no_output_why = "the fake link's worker is a thread of this program: it has no stdout "
                   "or stderr of its own (captures_output is FALSE)",
};

static LinkCase mpi_case = {
  .name = "mpi",
  .process = TRUE,
  .runs_plugin = TRUE,
  .no_output_why = "the MPI link does not capture its workers' output (captures_output is "
                   "FALSE): an agent's worker writes to its rank's stdout and stderr, which "
                   "mpirun forwards",
  .where_prefix = "rank 1 on ",
};

/* ---- a watchdog for the calls that must return ---------------------------------------- */

static struct {
  GMutex lock;
  GCond cond;
  GThread *thread;
  const char *what;
  double seconds;
  gint64 deadline; /* 0: nothing is watched */
} dog;

static gpointer
watchdog_main (gpointer data)
{
  (void) data;
  g_mutex_lock (&dog.lock);
  for (;;) {
    if (!dog.deadline) {
      g_cond_wait (&dog.cond, &dog.lock);
    } else if (g_get_monotonic_time () >= dog.deadline) {
      g_printerr ("Bail out! %s did not return within %.0f s: it blocks\n",
                  dog.what, dog.seconds);
      abort ();
    } else {
      g_cond_wait_until (&dog.cond, &dog.lock, dog.deadline);
    }
  }
  return NULL;
}

static void
watch (const char *what, double seconds)
{
  g_mutex_lock (&dog.lock);
  if (!dog.thread)
    dog.thread = g_thread_new ("watchdog", watchdog_main, NULL);
  dog.what = what;
  dog.seconds = seconds;
  dog.deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  g_cond_signal (&dog.cond);
  g_mutex_unlock (&dog.lock);
}

static void
unwatch (void)
{
  int e = errno;
  g_mutex_lock (&dog.lock);
  dog.deadline = 0;
  g_mutex_unlock (&dog.lock);
  errno = e;
}

/* ---- one worker behind the class under test ------------------------------------------ */

typedef struct {
  const LinkCase *lc;
  TrLink *link;     /* NULL once closed */
  GByteArray *in;   /* received, not yet taken as frames */
  gboolean eof;     /* receive said end of stream */
  TrWireBuf out;    /* to send */
  gsize out_off;
  char *dir;        /* for the testkit commands that leave files */
} Peer;

static gssize
link_send (Peer *p, const guint8 *data, gsize len)
{
  watch ("the link's send", CALL_S);
  gssize n = p->lc->klass->send (p->link, data, len);
  unwatch ();
  return n;
}

static gssize
link_receive (Peer *p, guint8 *buf, gsize len)
{
  watch ("the link's receive", CALL_S);
  gssize n = p->lc->klass->receive (p->link, buf, len);
  unwatch ();
  return n;
}

static gboolean
link_ended (Peer *p)
{
  watch ("the link's ended", CALL_S);
  gboolean ended = p->lc->klass->ended (p->link);
  unwatch ();
  return ended;
}

static void
link_kill (Peer *p)
{
  watch ("the link's kill", CALL_S);
  p->lc->klass->kill (p->link);
  unwatch ();
}

static void
link_signal_group (Peer *p, int sig)
{
  watch ("the link's signal_group", CALL_S);
  p->lc->klass->signal_group (p->link, sig);
  unwatch ();
}

/* How the worker ended, as close tells it. */
typedef struct {
  char *how;
  gboolean clean;
  int status;
} Ending;

static Ending
link_close (Peer *p)
{
  Ending e = { .clean = 42, .status = -1 }; /* neither: close must set both */
  watch ("the link's close", CLOSE_S);
  e.how = p->lc->klass->close (p->link, &e.clean, &e.status);
  unwatch ();
  p->link = NULL;
  g_assert_nonnull (e.how);
  g_assert_true (e.clean == TRUE || e.clean == FALSE);
  g_test_message ("close: the worker %s (clean %d, wait status 0x%x)", e.how, e.clean, e.status);
  return e;
}

static int
poll_one (int fd, short events, int timeout_ms)
{
  struct pollfd pfd = { .fd = fd, .events = events };
  int n;
  do
    n = poll (&pfd, 1, timeout_ms);
  while (n < 0 && errno == EINTR);
  g_assert_cmpint (n, >=, 0);
  return n ? pfd.revents : 0;
}

static int
ms_until (gint64 deadline)
{
  gint64 left = deadline - g_get_monotonic_time ();
  return left <= 0 ? 0 : (int) MIN (left / 1000 + 1, 1000);
}

/* Receives what there is, without blocking, until the link has no more for now. */
static void
receive_all (Peer *p)
{
  while (!p->eof) {
    gsize have = p->in->len;
    g_byte_array_set_size (p->in, have + 65536);
    gssize n = link_receive (p, p->in->data + have, 65536);
    int e = errno;
    g_byte_array_set_size (p->in, have + (n > 0 ? (gsize) n : 0));
    if (n == 0)
      p->eof = TRUE;
    else if (n < 0) {
      if (e != EAGAIN && e != EWOULDBLOCK)
        g_error ("receive failed: %s", g_strerror (e));
      return;
    }
  }
}

/* Sends what is queued, without blocking, until the link takes no more for now. */
static void
send_some (Peer *p)
{
  while (p->out_off < p->out.len) {
    gssize n = link_send (p, p->out.data + p->out_off, p->out.len - p->out_off);
    int e = errno;
    g_assert_cmpint (n, !=, 0);
    if (n < 0) {
      if (e != EAGAIN && e != EWOULDBLOCK)
        g_error ("send failed: %s", g_strerror (e));
      return;
    }
    p->out_off += (gsize) n;
  }
  p->out.len = p->out_off = 0;
}

/* One round of the pool's loop: waits up to timeout_ms for the link to be readable (or
 * writable, while something is queued), then moves what it can both ways. */
static void
pump (Peer *p, int timeout_ms)
{
  short events = (p->eof ? 0 : POLLIN) | (p->out_off < p->out.len ? POLLOUT : 0);
  if (!events) {
    g_usleep ((gulong) timeout_ms * 1000);
    return;
  }
  int revents = poll_one (p->link->fd, events, timeout_ms);
  if (revents & POLLOUT)
    send_some (p);
  if (revents & (POLLIN | POLLHUP | POLLERR))
    receive_all (p);
}

/* Queues a frame and sends it all, reading meanwhile (a worker may be answering). */
static void
send_frame (Peer *p, const TrWireBuf *frame)
{
  tr_wire_buf_append (&p->out, frame->data, frame->len);
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  send_some (p);
  while (p->out_off < p->out.len) {
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    pump (p, ms_until (deadline));
  }
}

/* The next frame from the worker, of type `type`; its body. */
static GBytes *
expect_frame (Peer *p, TrMsgType type)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  for (;;) {
    TrMsgType got;
    const guint8 *body;
    gsize len, consumed;
    TrFrameStatus st = tr_wire_next_frame (p->in->data, p->in->len, &got, &body, &len, &consumed);
    g_assert_cmpint (st, !=, TR_FRAME_BAD);
    if (st == TR_FRAME_OK) {
      GBytes *b = g_bytes_new (body, len);
      g_byte_array_remove_range (p->in, 0, (guint) consumed);
      g_assert_cmpint (got, ==, type);
      return b;
    }
    if (p->eof)
      g_error ("the link ended before a frame of type %d came", type);
    if (g_get_monotonic_time () >= deadline)
      g_error ("no frame of type %d within %.0f s", type, WAIT_S);
    pump (p, ms_until (deadline));
  }
}

static void
put_config (TrWireBuf *b, const char *const *pairs)
{
  g_autofree char *plugin = tt_test_plugin ("testkit");
  guint n = pairs ? g_strv_length ((char **) pairs) : 0;
  g_assert_cmpuint (n % 2, ==, 0);
  g_autoptr (GPtrArray) list = g_ptr_array_new ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (list, (gpointer) pairs[i]);
  tr_wire_put_config (b, plugin, 1 /* slot */, FALSE, list);
}

/* A TASKS frame of tasks first_id, first_id + 1, ... with these (text) payloads. */
static void
put_tasks (TrWireBuf *b, guint64 first_id, const char *const *payloads)
{
  guint n = g_strv_length ((char **) payloads);
  gsize at = tr_wire_begin (b, TR_MSG_TASKS);
  tr_wire_put_u32 (b, n);
  for (guint i = 0; i < n; i++)
    tr_wire_put_task (b, first_id + i, (const guint8 *) payloads[i], strlen (payloads[i]));
  tr_wire_end (b, at);
}

static void
send_simple (Peer *p, TrMsgType type)
{
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  gsize at = tr_wire_begin (&b, type);
  tr_wire_end (&b, at);
  send_frame (p, &b);
}

static void
send_tasks (Peer *p, guint64 first_id, const char *const *payloads)
{
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  put_tasks (&b, first_id, payloads);
  send_frame (p, &b);
}

typedef struct {
  guint64 id;
  gboolean failed, returned;
  char *data; /* NUL-terminated copy */
  gsize len;
  char *message;
} Result;

static void
result_free (gpointer data)
{
  Result *r = data;
  g_free (r->data);
  g_free (r->message);
  g_free (r);
}

/* The next RESULTS frame, which must hold `n` records. */
static GPtrArray *
expect_results (Peer *p, guint n)
{
  g_autoptr (GBytes) body = expect_frame (p, TR_MSG_RESULTS);
  gsize len;
  const guint8 *data = g_bytes_get_data (body, &len);
  TrWireReader r;
  tr_wire_reader_init (&r, data, len);
  g_assert_cmpuint (tr_wire_get_u32 (&r), ==, n);
  GPtrArray *out = g_ptr_array_new_with_free_func (result_free);
  for (guint i = 0; i < n; i++) {
    TrWireResult w;
    g_assert_true (tr_wire_read_result (&r, &w));
    Result *res = g_new0 (Result, 1);
    res->id = w.id;
    res->failed = w.failed;
    res->returned = w.returned;
    res->data = g_strndup ((const char *) w.data, w.len);
    res->len = w.len;
    res->message = g_strndup ((const char *) w.message, w.message_len);
    g_ptr_array_add (out, res);
  }
  g_assert_true (tr_wire_reader_done (&r));
  return out;
}

static void
peer_spawn (Peer *p, const LinkCase *lc)
{
  *p = (Peer) { .lc = lc, .in = g_byte_array_new (), .dir = tt_tmpdir () };
  tr_wire_buf_init (&p->out);
  if (lc == &fake_case)
    fake_forge_min = G_MAXUINT32; /* answers as they should be: no forged record */
  g_autoptr (GError) error = NULL;
  watch ("the link's spawn", SPAWN_S);
  p->link = lc->klass->spawn (1, TT_TASKRUN, &error);
  unwatch ();
  g_assert_no_error (error);
  g_assert_nonnull (p->link);
  g_test_message ("%s link: worker pid %d%s%s", lc->name, (int) p->link->pid,
                  p->link->where ? ", " : "", p->link->where ? p->link->where : "");
}

/* Spawns a worker, sends CONFIG (these key/value pairs) and takes its HELLO. */
static void
peer_start (Peer *p, const LinkCase *lc, const char *const *pairs)
{
  peer_spawn (p, lc);
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  put_config (&b, pairs);
  send_frame (p, &b);
  g_autoptr (GBytes) hello = expect_frame (p, TR_MSG_HELLO);
  g_assert_cmpuint (g_bytes_get_size (hello), ==, 0);
}

/* Kills what is left, closes the link, frees the rest. */
static void
peer_clear (Peer *p)
{
  if (p->link) {
    link_kill (p);
    Ending e = link_close (p);
    g_free (e.how);
  }
  g_byte_array_unref (p->in);
  tr_wire_buf_clear (&p->out);
  tt_rmtree (p->dir);
  g_free (p->dir);
}

/* Waits until the worker's process has ended, as the class tells it: `ended` (and
 * exit_fd readable) for a class that has it, else the link's end of stream, which for
 * such a class comes only once the worker has been reaped. */
static void
wait_worker_end (Peer *p)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  if (!p->lc->klass->ended) {
    while (!p->eof) {
      if (g_get_monotonic_time () >= deadline)
        g_error ("the link did not end within %.0f s of the worker's end", WAIT_S);
      pump (p, ms_until (deadline));
    }
    return;
  }
  while (!link_ended (p)) {
    if (g_get_monotonic_time () >= deadline)
      g_error ("ended did not turn TRUE within %.0f s", WAIT_S);
    if (p->link->exit_fd >= 0)
      poll_one (p->link->exit_fd, POLLIN, ms_until (deadline));
    else
      g_usleep (10000);
  }
  if (p->link->exit_fd >= 0)
    g_assert_true (poll_one (p->link->exit_fd, POLLIN, 0) & POLLIN);
}

/* The link's end of stream, within WAIT_S. */
static void
wait_link_end (Peer *p)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  while (!p->eof) {
    if (g_get_monotonic_time () >= deadline)
      g_error ("the link did not reach its end of stream within %.0f s", WAIT_S);
    pump (p, ms_until (deadline));
  }
}

/* Whether `pid` is a process that has not ended (a zombie has). */
static gboolean
alive (pid_t pid)
{
  g_autoptr (GArray) one = g_array_new (FALSE, FALSE, sizeof (GPid));
  GPid gp = pid;
  g_array_append_val (one, gp);
  return tt_wait_gone (one, 0) == 1;
}

/* The state letter of `pid` in /proc (R, S, T, Z, ...), or 0 when it is gone. */
static char
proc_state (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return 0;
  const char *close = strrchr (stat, ')');
  return close && close[1] == ' ' ? close[2] : 0;
}

static gboolean
stopped (pid_t pid)
{
  char s = proc_state (pid);
  return s == 'T' || s == 't';
}

static void
wait_state (pid_t pid, gboolean want_stopped, const char *who)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  while (stopped (pid) != want_stopped) {
    if (g_get_monotonic_time () >= deadline)
      g_error ("%s (pid %d) is %s after %.0f s", who, (int) pid,
               want_stopped ? "not stopped" : "still stopped", WAIT_S);
    g_usleep (5000);
  }
}

static void
assert_gone_soon (pid_t pid, const char *who)
{
  g_autoptr (GArray) one = g_array_new (FALSE, FALSE, sizeof (GPid));
  GPid gp = pid;
  g_array_append_val (one, gp);
  if (tt_wait_gone (one, WAIT_S) != 0)
    g_error ("%s (pid %d) is still running %.0f s on", who, (int) pid, WAIT_S);
}

/* The pid that a testkit command wrote to dir/name. */
static pid_t
wait_pid_file (Peer *p, const char *name)
{
  g_autofree char *path = g_build_filename (p->dir, name, NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  for (;;) {
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL) && atoi (text) > 0)
      return (pid_t) atoi (text);
    if (g_get_monotonic_time () >= deadline)
      g_error ("%s was not written within %.0f s", path, WAIT_S);
    g_usleep (5000);
  }
}

static void
assert_killed_by (const Ending *e, int sig)
{
  g_autofree char *words = g_strdup_printf ("killed by signal %d (SIG%s)", sig, sigabbrev_np (sig));
  g_assert_true (g_str_has_prefix (e->how, words));
  g_assert_false (e->clean);
  g_assert_true (WIFSIGNALED (e->status));
  g_assert_cmpint (WTERMSIG (e->status), ==, sig);
}

/* ---- the contract ------------------------------------------------------------------- */

/* spawn gives a link of its class, with a pid and a descriptor to poll; nothing comes
 * before CONFIG is sent; the worker is a taskrun worker process, alive, not ended. */
static void
test_spawn (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_spawn (&p, lc);
  TrLink *link = p.link;
  g_assert_true (link->klass == lc->klass);
  g_assert_cmpint (link->pid, >, 0);
  g_assert_cmpint (link->fd, >=, 0);
  g_assert_true (poll_one (link->fd, POLLOUT, 0) & POLLOUT);
  g_assert_false (poll_one (link->fd, POLLIN, 50) & POLLIN);
  /* nothing to read: receive says so at once, it does not wait */
  guint8 byte;
  errno = 0;
  gssize n = link_receive (&p, &byte, 1);
  int e = errno;
  g_assert_cmpint (n, ==, -1);
  g_assert_true (e == EAGAIN || e == EWOULDBLOCK);
  if (lc->where_prefix)
    g_assert_true (link->where && g_str_has_prefix (link->where, lc->where_prefix));
  else
    g_assert_null (link->where);
  if (lc->klass->captures_output) {
    g_assert_cmpint (link->out_fd, >=, 0);
    g_assert_cmpint (link->err_fd, >=, 0);
    g_assert_cmpint (link->out_fd, !=, link->err_fd);
    g_assert_true (fcntl (link->out_fd, F_GETFL) & O_NONBLOCK);
    g_assert_true (fcntl (link->err_fd, F_GETFL) & O_NONBLOCK);
  }
  if (lc->klass->ended) {
    g_assert_false (link_ended (&p));
    if (link->exit_fd >= 0)
      g_assert_false (poll_one (link->exit_fd, POLLIN, 0) & POLLIN);
  }
  if (lc->process) {
    g_assert_true (alive (link->pid));
    g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", (int) link->pid);
    g_autofree char *cmd = NULL;
    gsize len = 0;
    g_assert_true (g_file_get_contents (path, &cmd, &len, NULL));
    g_assert_nonnull (memmem (cmd, len, TR_WORKER_ARG, strlen (TR_WORKER_ARG)));
    /* a process group of its own: signals for it cannot reach this program's */
    g_assert_cmpint (getpgid (link->pid), ==, link->pid);
  }
  peer_clear (&p);
}

/* CONFIG is answered by HELLO, and poll says so before anything is received. */
static void
test_config_hello (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_spawn (&p, lc);
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  put_config (&b, (const char *const[]) { "op", "echo:unused", NULL });
  /* sent without reading anything back (the frame is small: one call or a few) */
  for (gsize off = 0; off < b.len;) {
    gssize n = link_send (&p, b.data + off, b.len - off);
    g_assert_cmpint (n, >, 0);
    off += (gsize) n;
  }
  int revents = poll_one (p.link->fd, POLLIN, (int) (WAIT_S * 1000));
  g_assert_true (revents & POLLIN);
  g_autoptr (GBytes) hello = expect_frame (&p, TR_MSG_HELLO);
  g_assert_cmpuint (g_bytes_get_size (hello), ==, 0);
  if (lc->klass->ended)
    g_assert_false (link_ended (&p));
  peer_clear (&p);
}

/* A worker whose worker_init fails answers INIT_FAILED with the plugin's message and
 * exits with status 3. */
static void
test_init_failed (gconstpointer data)
{
  const LinkCase *lc = data;
  if (!lc->runs_plugin) {
    g_test_skip (lc->no_plugin_why);
    return;
  }
  Peer p;
  peer_spawn (&p, lc);
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  put_config (&b, (const char *const[]) { "init", "fail", NULL });
  send_frame (&p, &b);
  g_autoptr (GBytes) body = expect_frame (&p, TR_MSG_INIT_FAILED);
  gsize len;
  TrWireReader r;
  const guint8 *d = g_bytes_get_data (body, &len);
  tr_wire_reader_init (&r, d, len);
  g_autofree char *message = tr_wire_get_str (&r);
  g_assert_true (tr_wire_reader_done (&r));
  g_assert_cmpstr (message, ==, "testkit: worker_init failed: testkit refuses to start (init = fail)");
  wait_worker_end (&p);
  wait_link_end (&p);
  Ending e = link_close (&p);
  g_assert_cmpstr (e.how, ==, "exited with status 3");
  g_assert_false (e.clean);
  g_assert_true (WIFEXITED (e.status));
  g_assert_cmpint (WEXITSTATUS (e.status), ==, 3);
  g_free (e.how);
  peer_clear (&p);
}

/* TASKS frames go out and RESULTS frames come back, several in flight, large ones in
 * pieces (more than a socket holds), every record for its task, in order. */
static void
test_tasks_results (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_start (&p, lc, NULL);
  const gsize big = 3 << 20;
  g_autofree char *x = g_strnfill (big, 'x');
  g_autofree char *echo_big = g_strconcat ("echo:", x, NULL);
  g_autofree char *bytes_big = g_strdup_printf ("bytes:%" G_GSIZE_FORMAT, big);
  /* both frames queued before any answer is read */
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  put_tasks (&b, 11, (const char *const[]) { "echo:alpha", "fail:no luck", bytes_big, NULL });
  put_tasks (&b, 14, (const char *const[]) { echo_big, NULL });
  send_frame (&p, &b);

  g_autoptr (GPtrArray) first = expect_results (&p, 3);
  g_autoptr (GPtrArray) second = expect_results (&p, 1);
  Result *r0 = first->pdata[0], *r1 = first->pdata[1], *r2 = first->pdata[2];
  Result *r3 = second->pdata[0];
  g_assert_cmpuint (r0->id, ==, 11);
  g_assert_cmpuint (r1->id, ==, 12);
  g_assert_cmpuint (r2->id, ==, 13);
  g_assert_cmpuint (r3->id, ==, 14);
  for (guint i = 0; i < 3; i++)
    g_assert_false (((Result *) first->pdata[i])->returned);
  g_assert_false (r3->returned);
  g_assert_false (r0->failed);
  g_assert_false (r2->failed);
  g_assert_false (r3->failed);
  if (lc->runs_plugin) {
    g_assert_cmpstr (r0->data, ==, "alpha");
    g_assert_true (r1->failed);
    g_assert_cmpstr (r1->message, ==, "no luck");
    g_assert_cmpuint (r2->len, ==, big);
    g_assert_cmpstr (r2->data, ==, x);
    g_assert_cmpuint (r3->len, ==, big);
    g_assert_cmpstr (r3->data, ==, x);
  } else {
    /* the fake worker echoes every payload, and fails none */
    g_test_message ("%s", lc->no_plugin_why);
    g_assert_cmpstr (r0->data, ==, "echo:alpha");
    g_assert_false (r1->failed);
    g_assert_cmpstr (r1->data, ==, "fail:no luck");
    g_assert_cmpstr (r2->data, ==, bytes_big);
    g_assert_cmpstr (r3->data, ==, echo_big);
  }
  g_assert_cmpuint (p.in->len, ==, 0); /* nothing more came */
  peer_clear (&p);
}

/* send and receive never wait: with nothing to read, receive says EAGAIN; to a worker
 * that does not read (busy with a task), send takes what it can and then says EAGAIN. */
static void
test_nonblocking (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_start (&p, lc, NULL);
  guint8 byte;
  errno = 0;
  g_assert_cmpint (link_receive (&p, &byte, 1), ==, -1);
  g_assert_true (errno == EAGAIN || errno == EWOULDBLOCK);

  /* a task that never ends: the worker never reads again, and a send that waited for it
   * would wait for ever (a worker that reads again later would only hide the wait) */
  send_tasks (&p, 1, (const char *const[]) { "hang", NULL });
  /* the head of a frame of one 16 MiB task, then its bytes, as fast as send takes them */
  const gsize payload = 16 << 20;
  g_auto (TrWireBuf) b;
  tr_wire_buf_init (&b);
  gsize at = tr_wire_begin (&b, TR_MSG_TASKS);
  tr_wire_put_u32 (&b, 1);
  tr_wire_put_u64 (&b, 2);
  tr_wire_put_u32 (&b, (guint32) payload);
  memset (tr_wire_buf_extend (&b, payload), 'y', payload);
  tr_wire_end (&b, at);
  gsize off = 0, calls = 0, refusals = 0;
  while (off < b.len && refusals < 3) {
    errno = 0;
    gssize n = link_send (&p, b.data + off, b.len - off);
    int e = errno;
    calls++;
    g_assert_cmpint (n, !=, 0);
    if (n < 0) {
      g_assert_true (e == EAGAIN || e == EWOULDBLOCK);
      refusals++;
      g_usleep (10000);
    } else {
      off += (gsize) n;
    }
  }
  g_test_message ("%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes sent in %" G_GSIZE_FORMAT
                  " calls, %" G_GSIZE_FORMAT " refused", off, b.len, calls, refusals);
  g_assert_cmpuint (off, >, 0);
  peer_clear (&p);
}

/* A worker sent QUIT exits: the class says it ended, its link ends, and close reports a
 * clean exit, status 0. */
static void
test_quit_clean (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_start (&p, lc, NULL);
  pid_t pid = p.link->pid;
  send_simple (&p, TR_MSG_QUIT);
  wait_worker_end (&p);
  wait_link_end (&p);
  g_assert_cmpuint (p.in->len, ==, 0);
  Ending e = link_close (&p);
  g_assert_cmpstr (e.how, ==, "exited with status 0");
  g_assert_true (e.clean);
  g_assert_true (WIFEXITED (e.status));
  g_assert_cmpint (WEXITSTATUS (e.status), ==, 0);
  g_free (e.how);
  if (lc->process)
    g_assert_false (alive (pid));
  peer_clear (&p);
}

/* kill ends a worker in the middle of a task: the class says it ended, its link ends, and
 * close reports SIGKILL. */
static void
test_kill (gconstpointer data)
{
  const LinkCase *lc = data;
  Peer p;
  peer_start (&p, lc, NULL);
  pid_t pid = p.link->pid;
  if (lc->runs_plugin) {
    /* killed while it runs a task that never ends */
    g_autofree char *task = g_strdup_printf ("mark-hang:%s", p.dir);
    send_tasks (&p, 1, (const char *const[]) { task, NULL });
    g_autofree char *mark = g_strdup_printf ("%s/started.%d", p.dir, (int) pid);
    gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
    while (!g_file_test (mark, G_FILE_TEST_EXISTS)) {
      if (g_get_monotonic_time () >= deadline)
        g_error ("the task did not start within %.0f s", WAIT_S);
      g_usleep (5000);
    }
  } else {
    /* the fake worker answers at once: killed while it waits for the next frame */
    send_tasks (&p, 1, (const char *const[]) { "hang", NULL });
    g_autoptr (GPtrArray) res = expect_results (&p, 1);
  }
  link_kill (&p);
  wait_worker_end (&p);
  wait_link_end (&p);
  Ending e = link_close (&p);
  if (!lc->process) {
    g_free (e.how);
    peer_clear (&p);
    g_autofree char *why = g_strdup_printf ("kill ended the worker (its link ended), but how "
                                            "it ended cannot be checked: %s", lc->no_process_why);
    g_test_skip (why);
    return;
  }
  assert_killed_by (&e, SIGKILL);
  g_free (e.how);
  g_assert_false (alive (pid));
  peer_clear (&p);
}

/* signal_group reaches the worker's process group: the worker and the child its task
 * started stop together (SIGSTOP), go on together (SIGCONT), and end (SIGTERM), the
 * child before close could have stopped it. */
static void
test_signal_group (gconstpointer data)
{
  const LinkCase *lc = data;
  if (!lc->process) {
    g_test_skip (lc->no_process_why);
    return;
  }
  Peer p;
  peer_start (&p, lc, NULL);
  pid_t worker = p.link->pid;
  g_autofree char *task = g_strdup_printf ("child-sleep:%s", p.dir);
  send_tasks (&p, 1, (const char *const[]) { task, NULL });
  pid_t child = wait_pid_file (&p, "childpid");
  g_assert_cmpint (child, !=, worker);
  g_assert_true (alive (child));
  g_assert_cmpint (getpgid (child), ==, worker);

  link_signal_group (&p, SIGSTOP);
  wait_state (worker, TRUE, "the worker");
  wait_state (child, TRUE, "the task's child");
  link_signal_group (&p, SIGCONT);
  wait_state (worker, FALSE, "the worker");
  wait_state (child, FALSE, "the task's child");

  link_signal_group (&p, SIGTERM);
  wait_worker_end (&p);
  assert_gone_soon (child, "the task's child");
  wait_link_end (&p);
  Ending e = link_close (&p);
  assert_killed_by (&e, SIGTERM);
  g_free (e.how);
  peer_clear (&p);
}

/* A worker that dies while a process it forked holds the link open: a class with `ended`
 * says it ended (exit_fd readable) though its link has not; a class without makes the
 * link end once the worker is reaped.  Either way close reports the crash, and what is
 * left of the worker's process group is gone. */
static void
test_crash_leaves_child (gconstpointer data)
{
  const LinkCase *lc = data;
  if (!lc->process) {
    g_test_skip (lc->no_process_why);
    return;
  }
  Peer p;
  peer_start (&p, lc, NULL);
  g_autofree char *task = g_strdup_printf ("fork-then-crash:%s", p.dir);
  send_tasks (&p, 1, (const char *const[]) { task, NULL });
  pid_t copy = wait_pid_file (&p, "forkpid");
  wait_worker_end (&p);
  if (lc->klass->ended) {
    /* the copy holds the link open: no end of stream (looked for during 200 ms) */
    pump (&p, 200);
    g_assert_false (p.eof);
    g_assert_true (alive (copy));
  } else {
    g_assert_true (p.eof);
  }
  Ending e = link_close (&p);
  assert_killed_by (&e, SIGSEGV);
  g_free (e.how);
  assert_gone_soon (copy, "the forked copy of the worker");
  peer_clear (&p);
}

/* A class that captures output: the worker's stdout and stderr lines arrive on out_fd
 * and err_fd, whole and in order, and the pipes end when the worker does. */
static void
read_pipe (int fd, GString *into, gboolean *ended)
{
  char buf[4096];
  for (;;) {
    gssize n = read (fd, buf, sizeof buf);
    if (n > 0) {
      g_string_append_len (into, buf, n);
      continue;
    }
    if (n == 0)
      *ended = TRUE;
    else
      g_assert_true (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    return;
  }
}

static void
test_captures_output (gconstpointer data)
{
  const LinkCase *lc = data;
  if (!lc->klass->captures_output) {
    g_test_skip (lc->no_output_why);
    return;
  }
  Peer p;
  peer_start (&p, lc, NULL);
  send_tasks (&p, 1, (const char *const[]) { "print-lines:T:3:30", NULL });
  g_autoptr (GPtrArray) res = expect_results (&p, 1);
  g_assert_cmpstr (((Result *) res->pdata[0])->data, ==, "printed");
  send_simple (&p, TR_MSG_QUIT);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  gboolean out_end = FALSE, err_end = FALSE;
  gint64 deadline = g_get_monotonic_time () + (gint64) (WAIT_S * G_USEC_PER_SEC);
  while (!out_end || !err_end) {
    if (g_get_monotonic_time () >= deadline)
      g_error ("the output pipes did not end within %.0f s of the worker's end", WAIT_S);
    struct pollfd fds[2] = { { .fd = out_end ? -1 : p.link->out_fd, .events = POLLIN },
                             { .fd = err_end ? -1 : p.link->err_fd, .events = POLLIN } };
    poll (fds, 2, ms_until (deadline));
    if (!out_end)
      read_pipe (p.link->out_fd, out, &out_end);
    if (!err_end)
      read_pipe (p.link->err_fd, err, &err_end);
  }
  /* testkit's lines: "T out I " (or "T err I ") padded with '.' to 30 bytes */
  g_autoptr (GString) want_out = g_string_new (NULL);
  g_autoptr (GString) want_err = g_string_new (NULL);
  for (int i = 0; i < 3; i++) {
    g_string_append_printf (want_out, "T out %d ......................\n", i);
    g_string_append_printf (want_err, "T err %d ......................\n", i);
  }
  g_assert_cmpuint (strchr (want_out->str, '\n') - want_out->str, ==, 30);
  g_assert_cmpstr (out->str, ==, want_out->str);
  g_assert_cmpstr (err->str, ==, want_err->str);
  wait_worker_end (&p);
  wait_link_end (&p);
  Ending e = link_close (&p);
  g_assert_true (e.clean);
  g_free (e.how);
  peer_clear (&p);
}

/* The pool runs on the class: a task through tr_pool_new_on_link, and its end. */
static void
test_pool (gconstpointer data)
{
  const LinkCase *lc = data;
  if (lc == &fake_case)
    fake_forge_min = G_MAXUINT32;
  g_autofree char *path = tt_test_plugin ("testkit");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load (path, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TrConfig) config = tr_config_new (tr_plugin_get_desc (plugin)->options, "testkit");
  TrPoolOptions o = { .workers = 1, .worker_program = TT_TASKRUN };
  watch ("tr_pool_new_on_link", SPAWN_S);
  TrPool *pool = tr_pool_new_on_link (lc->klass, plugin, config, &o, &error);
  unwatch ();
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_autoptr (GBytes) in = g_bytes_new_static ("echo:through the pool", 21);
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "one", in, NULL, NULL, NULL);
  g_assert_true (tr_async_wait (a, (gint64) (WAIT_S * G_USEC_PER_SEC)));
  const TrResult *r = tr_async_peek_result (a);
  g_assert_no_error (r->error);
  g_autofree char *text = g_strndup ((const char *) r->data, r->len);
  g_assert_cmpstr (text, ==, lc->runs_plugin ? "through the pool" : "echo:through the pool");
  g_assert_cmpuint (r->worker, ==, 1);
  g_assert_cmpint (r->worker_pid, >, 0);
  if (lc->process)
    g_assert_cmpint (getpgid (r->worker_pid), ==, r->worker_pid);
  /* close and join: the worker is sent QUIT and its end is waited for */
  gint64 t0 = g_get_monotonic_time ();
  watch ("tr_pool_close and tr_pool_join", CLOSE_S);
  tr_pool_close (pool);
  tr_pool_join (pool);
  unwatch ();
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("close + join: %.3f s", took);
  /* the pool waits 5 s for a worker that does not end after QUIT, then kills it */
  g_assert_cmpfloat (took, <, 4.0);
  tr_pool_free (pool);
}

typedef struct {
  const char *name;
  GTestDataFunc func;
} Case;

static const Case cases[] = {
  { "spawn", test_spawn },
  { "config-hello", test_config_hello },
  { "init-failed", test_init_failed },
  { "tasks-results", test_tasks_results },
  { "nonblocking", test_nonblocking },
  { "quit-clean", test_quit_clean },
  { "kill", test_kill },
  { "signal-group", test_signal_group },
  { "crash-leaves-child", test_crash_leaves_child },
  { "captures-output", test_captures_output },
  { "pool", test_pool },
};

/* ---- the MPI cases, each a job of its own ---------------------------------------------- */

static void
test_mpi_job (gconstpointer data)
{
  const Case *c = data;
#ifndef TR_HAVE_MPI
  (void) c;
  g_test_skip ("this build has no MPI backend (meson option mpi, or Open MPI not found): "
               "there is no MPI link to test");
#else
  if (!tt_have_mpi ()) {
    g_test_skip ("mpirun is not on PATH: the MPI link exists only in an MPI job");
    return;
  }
  /* this program again, started by mpirun */
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_assert_nonnull (exe);
  g_autofree char *path = g_strdup_printf ("/link/mpi/%s", c->name);
  const char *argv[] = { "mpirun", "--oversubscribe", "-n", "2", exe, "--tap", "-p", path, NULL };
  g_auto (GStrv) envp = g_get_environ ();
  /* as in testutil.c: Open MPI keeps memory to the end in components it unloads, which
   * LeakSanitizer can neither name nor suppress (the local and fake cases are checked) */
  const char *asan = g_environ_getenv (envp, "ASAN_OPTIONS");
  g_autofree char *opts = g_strconcat (asan ? asan : "", asan ? ":" : "", "detect_leaks=0", NULL);
  envp = g_environ_setenv (envp, "ASAN_OPTIONS", opts, TRUE);
  envp = g_environ_setenv (envp, "OMPI_ALLOW_RUN_AS_ROOT", "1", FALSE);
  envp = g_environ_setenv (envp, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", FALSE);

  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out_path = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *err_path = g_build_filename (dir, "err.txt", NULL);
  int out_fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err_fd = open (err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  g_assert_cmpint (out_fd, >=, 0);
  g_assert_cmpint (err_fd, >=, 0);
  GPid pid = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_async_with_fds (NULL, (char **) argv, envp,
                                         G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                         NULL, &pid, -1, out_fd, err_fd, &error));
  g_assert_no_error (error);
  close (out_fd);
  close (err_fd);

  /* bounded: mpirun is asked to end the job (SIGTERM to every rank), then killed */
  const double limit = 120;
  gint64 deadline = g_get_monotonic_time () + (gint64) (limit * G_USEC_PER_SEC);
  int status = 0;
  gboolean timed_out = FALSE;
  for (;;) {
    pid_t r = waitpid (pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (!timed_out && g_get_monotonic_time () > deadline) {
      timed_out = TRUE;
      kill (pid, SIGTERM);
      deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
    } else if (timed_out && g_get_monotonic_time () > deadline) {
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      break;
    }
    g_usleep (5000);
  }
  g_autofree char *out = NULL, *err = NULL;
  g_file_get_contents (out_path, &out, NULL, NULL);
  g_file_get_contents (err_path, &err, NULL, NULL);
  tt_rmtree (dir);
  g_test_message ("mpirun --oversubscribe -n 2 test-link -p %s:\n%s%s", path, out ? out : "",
                  err ? err : "");
  g_assert_false (timed_out);
  /* the case's own line, as rank 0 reported it */
  g_autofree char *ok = g_strdup_printf ("ok 1 %s", path);
  const char *line = NULL;
  g_auto (GStrv) lines = g_strsplit (out ? out : "", "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (g_str_equal (lines[i], ok) || (g_str_has_prefix (lines[i], ok) && lines[i][strlen (ok)] == ' '))
      line = lines[i];
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_nonnull (line);
  const char *skip = strstr (line, " # SKIP ");
  if (skip)
    g_test_skip (skip + 8);
#endif
}

/* Under mpirun: rank 0 runs the MPI cases on the module's link class, every other rank
 * is an agent, exactly as a taskrun rank is. */
static int
mpi_main (int argc, char **argv, int rank)
{
  g_autoptr (GError) error = NULL;
  const TrMpiSession *mpi = tr_mpi_start (&error);
  if (!mpi) {
    if (rank <= 0)
      g_printerr ("test-link: under mpirun, but the MPI module did not start: %s\n",
                  error ? error->message : "a single rank");
    return 2;
  }
  if (mpi->rank > 0)
    return mpi->module->agent_main ();
  mpi_case.klass = mpi->module->link_class;
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_strdup_printf ("/link/mpi/%s", cases[i].name);
    g_test_add_data_func (path, &mpi_case, cases[i].func);
  }
  int status = g_test_run ();
  return tr_mpi_finish (status);
}

int
main (int argc, char **argv)
{
  int rank = -1, size = 0;
  if (tr_mpi_launched (&rank, &size) && size != 1)
    return mpi_main (argc, argv, rank);

  g_test_init (&argc, &argv, NULL);
  LinkCase *links[] = { &local_case, &fake_case };
  for (gsize l = 0; l < G_N_ELEMENTS (links); l++)
    for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
      g_autofree char *path = g_strdup_printf ("/link/%s/%s", links[l]->name, cases[i].name);
      g_test_add_data_func (path, links[l], cases[i].func);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_strdup_printf ("/link/mpi/%s", cases[i].name);
    g_test_add_data_func (path, &cases[i], test_mpi_job);
  }
  return g_test_run ();
}
