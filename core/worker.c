/* worker.c — the worker process: read tasks, run them, write results.
 *
 * Owns: the worker side of the protocol.  A worker is the taskrun binary started in its
 * hidden worker mode (see link-local.c for why it is exec'd).  It reads one CONFIG frame
 * (plugin path, slot, validated options), loads the plugin, runs worker_init, and answers
 * HELLO or INIT_FAILED.  Then it loops: read whatever the parent sent, run every task of
 * every complete TASKS frame, and write one RESULTS frame per TASKS frame as soon as that
 * frame's tasks are done (so that a crash is blamed on the frame that was running; the
 * pool sizes frames so that tiny tasks still share system calls).  QUIT or the end of
 * the stream ends the worker.
 *
 * The parent sends frames ahead, so that a worker never waits for its next task.  When
 * the job is stopped it sends CANCEL, which arrives behind those frames: so between tasks
 * the worker reads what has come, without waiting, and looks through it for a CANCEL;
 * from then on it starts no task, and sends each one it holds back as not run.  It looks
 * once per CANCEL_LOOK_NS of task time, not per task: a system call costs more than a
 * tiny task, and a stop a millisecond late starts at most that much work.
 *
 * When its parent dies, a worker stops its process group (its task's programs too) and
 * exits (on_parent_death).
 *
 * A worker never decides anything about failures: a task's error travels back as a
 * result, and if the worker dies the parent sees the socket close and reaps it.
 * Does not own: scheduling, retries, timeouts (pool/).
 */
#include "internal.h"
#include "task-clock.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANCEL_LOOK_NS 1000000 /* 1 ms */

typedef struct {
  int fd;
  GByteArray *in;
  gsize in_off;
  GByteArray *ahead;  /* read while a frame in `in` was in use: the stream after `in` */
  gboolean cancelled; /* a CANCEL came: no task starts any more */
  gint64 look_due;    /* task clock (ns): when to look for a CANCEL next */
  TrWireBuf out;
  gboolean files_allowed;
  GArray *out_files;  /* of int: descriptors the tasks of `out` attached, in record order */
} WorkerIo;

static void
close_out_files (WorkerIo *io)
{
  for (guint i = 0; i < io->out_files->len; i++)
    close (g_array_index (io->out_files, int, i));
  g_array_set_size (io->out_files, 0);
}

/* Blocks until the whole output buffer is written.  The descriptors its records attached
 * go with its first byte (SCM_RIGHTS), so that they have all arrived by the time the
 * parent holds the whole frame, and are then closed here: the parent has its own. */
static gboolean
flush_out (WorkerIo *io)
{
  gsize off = 0;
  while (off < io->out.len) {
    ssize_t n;
    if (io->out_files->len && off == 0) {
      union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE (TR_WIRE_FRAME_FILES * sizeof (int))];
      } control;
      gsize fds_len = io->out_files->len * sizeof (int);
      struct iovec iov = { .iov_base = io->out.data, .iov_len = io->out.len };
      struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                            .msg_controllen = CMSG_SPACE (fds_len) };
      struct cmsghdr *c = CMSG_FIRSTHDR (&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (fds_len);
      memcpy (CMSG_DATA (c), io->out_files->data, fds_len);
      n = sendmsg (io->fd, &msg, MSG_NOSIGNAL);
      if (n > 0)
        close_out_files (io);
    } else {
      n = write (io->fd, io->out.data + off, io->out.len - off);
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      close_out_files (io);
      return FALSE;
    }
    off += (gsize) n;
  }
  io->out.len = 0;
  return TRUE;
}

/* Blocks until at least one more byte arrives; FALSE at end of stream. */
static gboolean
read_more (WorkerIo *io)
{
  if (io->in_off > 0) {
    g_byte_array_remove_range (io->in, 0, io->in_off);
    io->in_off = 0;
  }
  if (io->ahead->len) {
    g_byte_array_append (io->in, io->ahead->data, io->ahead->len);
    g_byte_array_set_size (io->ahead, 0);
    return TRUE;
  }
  gsize have = io->in->len;
  g_byte_array_set_size (io->in, have + 65536);
  ssize_t n;
  do
    n = read (io->fd, io->in->data + have, 65536);
  while (n < 0 && errno == EINTR);
  g_byte_array_set_size (io->in, have + (n > 0 ? (gsize) n : 0));
  return n > 0;
}

/* Waits for the next complete frame.  FALSE at end of stream or on a bad frame. */
static gboolean
next_frame (WorkerIo *io, TrMsgType *type, const guint8 **body, gsize *len)
{
  for (;;) {
    gsize consumed;
    TrFrameStatus st = tr_wire_next_frame (io->in->data + io->in_off, io->in->len - io->in_off,
                                           type, body, len, &consumed);
    if (st == TR_FRAME_OK) {
      io->in_off += consumed;
      return TRUE;
    }
    if (st == TR_FRAME_BAD)
      return FALSE;
    if (!read_more (io))
      return FALSE;
  }
}

/* Whether a CANCEL has come: reads what the parent sent so far into `ahead`, without
 * waiting (the frame being run lives in `in`, which must not move), and walks the heads
 * of the frames not yet run, the rest of `in` then `ahead` as one stream. */
static gboolean
cancel_arrived (WorkerIo *io, gint64 now)
{
  io->look_due = now + CANCEL_LOOK_NS;
  if (io->cancelled) {
    io->look_due = G_MININT64; /* every task after it looks, and goes back */
    return TRUE;
  }
  for (;;) {
    gsize have = io->ahead->len;
    g_byte_array_set_size (io->ahead, have + 65536);
    ssize_t n = recv (io->fd, io->ahead->data + have, 65536, MSG_DONTWAIT);
    g_byte_array_set_size (io->ahead, have + (n > 0 ? (gsize) n : 0));
    if (n < 65536)
      break; /* all there was, the end of the stream (seen again by read_more), or an error */
  }
  gsize in_left = io->in->len - io->in_off, total = in_left + io->ahead->len;
  for (gsize pos = 0; pos + TR_WIRE_HEADER <= total;) {
    guint8 head[TR_WIRE_HEADER];
    for (guint k = 0; k < TR_WIRE_HEADER; k++) {
      gsize p = pos + k;
      head[k] = p < in_left ? io->in->data[io->in_off + p] : io->ahead->data[p - in_left];
    }
    if (head[4] == TR_MSG_CANCEL) {
      io->cancelled = TRUE;
      io->look_due = G_MININT64;
      return TRUE;
    }
    pos += TR_WIRE_HEADER + (gsize) tr_wire_load_le (head, 4);
  }
  return FALSE;
}

static void
send_init_failed (WorkerIo *io, const char *message)
{
  gsize at = tr_wire_begin (&io->out, TR_MSG_INIT_FAILED);
  tr_wire_put_str (&io->out, message);
  tr_wire_end (&io->out, at);
  flush_out (io);
}

/* Runs the tasks of one TASKS frame, appending one RESULTS frame. */
static gboolean
run_tasks (WorkerIo *io, TrTaskClock *clock, const TrPluginDesc *desc, gpointer wstate,
           const guint8 *body, gsize len)
{
  TrWireReader r;
  tr_wire_reader_init (&r, body, len);
  guint32 n = tr_wire_get_u32 (&r);
  gsize frame = tr_wire_begin (&io->out, TR_MSG_RESULTS);
  tr_wire_put_u32 (&io->out, n);
  TrOutput output = { .buf = &io->out, .files_allowed = io->files_allowed };
  /* One clock read per task (task-clock.c): a task starts when the one before it ended,
   * and its wall start is derived from the frame's. */
  gint64 mono_base = tr_task_clock_frame_begin (clock); /* ns */
  gint64 real_base = g_get_real_time ();                 /* us */
  gint64 t0 = mono_base;
  for (guint32 i = 0; i < n; i++) {
    TrWireTask task;
    if (!tr_wire_read_task (&r, &task))
      return FALSE;
    /* Room left in this answer for the largest output a task may have, and for a short
     * record for each task after it?  If not, the rest go back unrun (status 2), to be
     * sent again: tasks that are fine alone must not fail for sharing a frame.  After a
     * CANCEL they go back too, and are not sent again. */
    if ((i > 0 && io->out.len - frame + (gsize) (n - i) * TR_WIRE_RETURNED_RECORD +
                      TR_WIRE_MAX_BODY / 2 + 4096 > TR_WIRE_MAX_BODY) ||
        (i > 0 && io->out_files->len + TR_WIRE_TASK_FILES > TR_WIRE_FRAME_FILES) ||
        (G_UNLIKELY (t0 >= io->look_due) && cancel_arrived (io, t0))) {
      for (;;) {
        tr_wire_put_returned (&io->out, task.id);
        if (++i == n)
          break;
        if (!tr_wire_read_task (&r, &task))
          return FALSE;
      }
      break;
    }
    gsize at = tr_wire_begin_result (&io->out, task.id,
                                     (guint64) (real_base + (t0 - mono_base) / 1000));
    GError *error = NULL;
    output.n_files = 0;
    gboolean ok = desc->run (wstate, task.payload, task.len, &output, &error);
    gint64 t1 = MAX (tr_task_clock_now (clock), t0);
    guint64 ns = (guint64) (t1 - t0);
    t0 = t1;
    gsize rlen = io->out.len - at - TR_WIRE_RESULT_HEAD;
    const char *msg = NULL, *domain = NULL;
    guint32 code = 0;
    if (rlen > TR_WIRE_MAX_BODY / 2 || io->out.len - frame > TR_WIRE_MAX_BODY - 4096) {
      /* too big for one message (alone, or with the results before it in this frame) */
      io->out.len = at + TR_WIRE_RESULT_HEAD;
      for (guint k = 0; k < output.n_files; k++)
        close (output.files[k]);
      output.n_files = 0;
      G_STATIC_ASSERT (TR_WIRE_MAX_BODY / 2 == 32u << 20);
      msg = "the task's output is too large to send back (a task's output may be at most "
            "32 MiB)";
      ok = FALSE;
    } else if (!ok) {
      msg = error ? error->message : "the task failed (the plugin gave no reason)";
      code = error ? (guint32) error->code : 0;
      /* the plugin's own domain and code reach the caller as they were set */
      domain = error ? g_quark_to_string (error->domain) : NULL;
    }
    g_array_append_vals (io->out_files, output.files, output.n_files);
    tr_wire_end_result (&io->out, at, ok ? 0 : 1, code, ns, output.n_files, msg, domain);
    g_clear_error (&error); /* a plugin that returns TRUE and sets an error keeps the success */
  }
  if (!tr_wire_reader_done (&r))
    return FALSE;
  tr_wire_end (&io->out, frame);
  tr_task_clock_frame_end (clock);
  return TRUE;
}

/* The parent died (PR_SET_PDEATHSIG): whatever this worker's task started is in its
 * process group (the worker leads it, link-local.c), and with no parent left nobody else
 * will stop it.  The group goes, this process with it.  kill is async-signal-safe. */
static void
on_parent_death (int sig)
{
  (void) sig;
  kill (0, SIGKILL);
  _exit (TR_WORKER_EXIT_PARENT_DIED);
}

/* Set once this process serves as a worker (a task of it may start a pool of its own). */
static gboolean serving;

gboolean
tr_worker_is_stray (void)
{
  if (serving)
    return FALSE;
  g_autofree char *cmdline = NULL;
  gsize len = 0;
  if (!g_file_get_contents ("/proc/self/cmdline", &cmdline, &len, NULL))
    return FALSE;
  gsize first = strnlen (cmdline, len);
  return first + 1 < len && strcmp (cmdline + first + 1, TR_WORKER_ARG) == 0;
}

int
tr_worker_main (int fd, pid_t parent)
{
  serving = TRUE;
  struct stat link;
  if (fstat (fd, &link) != 0 || !S_ISSOCK (link.st_mode)) {
    /* run by hand: this mode is for a pool's workers, whose link is fd 3 */
    fprintf (stderr, "%s is a worker mode for a taskrun pool, which starts it with its link "
             "on descriptor %d; it is not run by hand\n", TR_WORKER_ARG, fd);
    return TR_WORKER_EXIT_BAD_CONFIG;
  }
  /* Not SIGKILL itself: that would leave the task's programs behind.  SIGHUP is the
   * parent-is-gone signal; a task's programs get none of their own from it. */
  struct sigaction sa = { .sa_handler = on_parent_death };
  sigfillset (&sa.sa_mask);
  sigaction (SIGHUP, &sa, NULL);
  prctl (PR_SET_PDEATHSIG, SIGHUP);
  if (parent > 0 && getppid () != parent)
    return TR_WORKER_EXIT_NOT_OURS;
  signal (SIGINT, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  /* (descriptors the parent left inheritable were closed before the exec: link-local.c) */
  /* the link is this process's alone: programs a task starts must not hold it open */
  fcntl (fd, F_SETFD, FD_CLOEXEC);
  /* stdout is a pipe to taskrun (link-local.c), which stdio would buffer in blocks: a
   * plugin's printf would then come out long after its task, and die with the worker
   * when it crashes.  Line by line, as on the terminal it stands for. */
  setvbuf (stdout, NULL, _IOLBF, 0);

  WorkerIo io = { .fd = fd, .in = g_byte_array_new (), .ahead = g_byte_array_new (),
                  .out_files = g_array_new (FALSE, FALSE, sizeof (int)) };
  tr_wire_buf_init (&io.out);
  TrMsgType type;
  const guint8 *body;
  gsize len;
  int status = TR_WORKER_EXIT_OK;
  g_autoptr (TrPlugin) plugin = NULL;
  g_autoptr (TrConfig) config = NULL;
  gpointer wstate = NULL;
  gboolean inited = FALSE;

  if (!next_frame (&io, &type, &body, &len) || type != TR_MSG_CONFIG) {
    status = TR_WORKER_EXIT_BAD_CONFIG;
    goto out;
  }
  {
    g_auto (TrWireConfig) cfg = { 0 };
    if (!tr_wire_read_config (body, len, &cfg)) {
      status = TR_WORKER_EXIT_BAD_CONFIG;
      goto out;
    }
    /* the slot, for the plugin and whatever its tasks run (GNU parallel's
     * PARALLEL_JOBSLOT): set before the plugin is loaded, so that it sees it too */
    g_autofree char *slot = g_strdup_printf ("%" G_GUINT32_FORMAT, cfg.slot);
    g_setenv ("TASKRUN_SLOT", slot, TRUE);
    /* the limit taskrun was started with, for the plugin and what it runs */
    const char *started = g_getenv (TR_NOFILE_ENV);
    struct rlimit lim;
    if (started && getrlimit (RLIMIT_NOFILE, &lim) == 0) {
      rlim_t soft = (rlim_t) g_ascii_strtoull (started, NULL, 10);
      if (soft > 0 && soft < lim.rlim_cur) {
        lim.rlim_cur = soft;
        setrlimit (RLIMIT_NOFILE, &lim);
      }
    }
    g_unsetenv (TR_NOFILE_ENV);
    io.files_allowed = cfg.carries_files;
    g_autoptr (GError) error = NULL;
    plugin = tr_plugin_load_for_worker (cfg.plugin_path, &error);
    if (!plugin) {
      send_init_failed (&io, error->message);
      status = TR_WORKER_EXIT_INIT_FAILED;
      goto out;
    }
    const TrPluginDesc *desc = tr_plugin_get_desc (plugin);
    wstate = tr_plugin_get_worker_state (plugin);
    config = tr_config_new (desc->options, desc->name);
    for (guint i = 0; i + 1 < cfg.pairs->len; i += 2) {
      if (!tr_config_set (config, g_ptr_array_index (cfg.pairs, i),
                          g_ptr_array_index (cfg.pairs, i + 1), NULL, &error)) {
        send_init_failed (&io, error->message);
        status = TR_WORKER_EXIT_INIT_FAILED;
        goto out;
      }
    }
    if (desc->worker_init && !desc->worker_init (config, &wstate, &error)) {
      g_autofree char *msg = g_strdup_printf (
          "%s: worker_init failed: %s", desc->name,
          error ? error->message : "(the plugin gave no reason)");
      send_init_failed (&io, msg);
      status = TR_WORKER_EXIT_INIT_FAILED;
      goto out;
    }
    inited = TRUE;
    gsize at = tr_wire_begin (&io.out, TR_MSG_HELLO);
    tr_wire_end (&io.out, at);
    if (!flush_out (&io)) {
      status = TR_WORKER_EXIT_LINK_LOST;
      goto out;
    }
  }

  {
    const TrPluginDesc *desc = tr_plugin_get_desc (plugin);
    TrTaskClock clock;
    tr_task_clock_init (&clock);
    /* Each frame's results go out before the next frame starts: if a task brings this
     * process down, the parent then knows that the oldest unanswered frame was running. */
    while (next_frame (&io, &type, &body, &len)) {
      if (type == TR_MSG_QUIT)
        break;
      if (type == TR_MSG_CANCEL) {
        io.cancelled = TRUE;
        io.look_due = G_MININT64;
        continue;
      }
      if (type != TR_MSG_TASKS || !run_tasks (&io, &clock, desc, wstate, body, len)) {
        status = TR_WORKER_EXIT_BAD_FRAME;
        break;
      }
      if (!flush_out (&io))
        break;
    }
    flush_out (&io);
  }

out:
  if (inited && tr_plugin_get_desc (plugin)->worker_fini)
    tr_plugin_get_desc (plugin)->worker_fini (wstate);
  g_byte_array_unref (io.in);
  g_byte_array_unref (io.ahead);
  close_out_files (&io);
  g_array_unref (io.out_files);
  tr_wire_buf_clear (&io.out);
  return status;
}
