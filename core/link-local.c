/* link-local.c — the worker link for workers started on this machine.
 *
 * Start strategy: posix_spawn of the taskrun binary in its hidden worker mode.  The
 * parent has threads (the pool's I/O thread, GLib's), so nothing may run in a forked
 * copy of it but raw system calls; and a plain fork would also mark every page of the
 * parent copy-on-write, so that the parent pays a page fault for each page it writes
 * afterwards, on the cores the workers need.  posix_spawn (glibc: clone with CLONE_VM
 * and CLONE_VFORK) shares the parent's memory until the exec and reports a failed exec
 * as an error.  It sets the process group, the signal mask and dispositions, stdin and
 * the socket, and closes every other descriptor; the worker itself asks for SIGKILL
 * when the parent dies, checks the parent did not die already and ignores SIGINT
 * (worker.c).  A fork server would avoid the exec, but exec costs about a
 * millisecond per worker, once, and keeps the worker a clean process whatever the
 * parent loaded.
 *
 * PR_SET_PDEATHSIG fires when the *thread* that started the child exits; the pool starts
 * workers from its I/O thread, which outlives every one of them.
 *
 * The link itself is a Unix stream socketpair: fd 3 in the worker, non-blocking in the
 * parent.  The worker's stdin is /dev/null.  Its stdout and stderr are each a pipe of its
 * own (TrLink.out_fd, err_fd, read non-blocking by the pool's I/O thread), not taskrun's:
 * several processes writing to one terminal or file cut each other's lines wherever a
 * write ends, so the pool reads whole lines and taskrun writes them itself (pool/output.c).  An
 * MPI agent starts its worker without them (tr_link_local_start): there the rank's own
 * stdout and stderr are the worker's, as mpirun forwards them.
 *
 * The worker's end is watched through a pidfd (exit_fd), not the socket alone: a task may
 * close fd 3 and run on, or fork and crash, leaving its child holding the socket; either
 * way the socket's end of stream says nothing about the process.  Without pidfds (Linux
 * before 5.3) `ended` asks waitid.
 */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "wire.h"


/* `fd` moved above the numbers the worker's descriptors take (0 to 3), close-on-exec;
 * -1 on failure.  With a standard descriptor closed when taskrun started, a new socket or
 * pipe may get its number, and a dup2 onto 1 would then clobber the source of a later
 * dup2, or a dup2 onto itself leave FD_CLOEXEC set. */
static int
above_worker_fds (int fd)
{
  if (fd < 0 || fd > TR_WORKER_LINK_FD)
    return fd;
  int high = fcntl (fd, F_DUPFD_CLOEXEC, TR_WORKER_LINK_FD + 1);
  close (fd);
  return high;
}

static void
close_pair (int *p)
{
  for (int i = 0; i < 2; i++)
    if (p[i] >= 0)
      close (p[i]);
}

/* The worker's stdout and stderr pipes (out[0], err[0] read by the parent); FALSE with
 * every descriptor closed when one cannot be made. */
static gboolean
make_output_pipes (int *out, int *err)
{
  out[0] = out[1] = err[0] = err[1] = -1;
  if (pipe2 (out, O_CLOEXEC) < 0 || pipe2 (err, O_CLOEXEC) < 0)
    goto fail;
  for (int i = 0; i < 2; i++) {
    out[i] = above_worker_fds (out[i]);
    err[i] = above_worker_fds (err[i]);
  }
  if (out[0] < 0 || out[1] < 0 || err[0] < 0 || err[1] < 0)
    goto fail;
  fcntl (out[0], F_SETFL, fcntl (out[0], F_GETFL) | O_NONBLOCK);
  fcntl (err[0], F_SETFL, fcntl (err[0], F_GETFL) | O_NONBLOCK);
  return TRUE;
fail:;
  int e = errno;
  close_pair (out);
  close_pair (err);
  errno = e;
  return FALSE;
}

TrLink *
tr_link_local_start (guint slot, const char *program, gboolean capture_output, GError **error)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "worker %u: socketpair: %s", slot, g_strerror (errno));
    return NULL;
  }
  int out[2] = { -1, -1 }, err[2] = { -1, -1 };
  if (capture_output && !make_output_pipes (out, err)) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "worker %u: pipe: %s", slot, g_strerror (errno));
    close_pair (sv);
    return NULL;
  }
  char ppid_text[32];
  g_snprintf (ppid_text, sizeof ppid_text, "%ld", (long) getpid ());
  char *argv[] = { (char *) program, (char *) TR_WORKER_ARG, ppid_text, NULL };

  /* Its own process group: a signal for taskrun's group (Ctrl-C, kill -TERM -PGID) is
   * taskrun's to handle, and the pool can stop a worker with whatever its task started.
   * No signal blocked, SIGTERM, SIGPIPE and SIGCHLD at their defaults whatever the parent
   * did. */
  posix_spawnattr_t attr;
  posix_spawnattr_init (&attr);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                       POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup (&attr, 0);
  sigset_t none, defaults;
  sigemptyset (&none);
  posix_spawnattr_setsigmask (&attr, &none);
  sigemptyset (&defaults);
  sigaddset (&defaults, SIGTERM);
  sigaddset (&defaults, SIGPIPE);
  /* ignored, it would be ignored in the worker too (an exec keeps SIG_IGN), whose
   * commands then could not be waited for */
  sigaddset (&defaults, SIGCHLD);
  posix_spawnattr_setsigdefault (&attr, &defaults);
  /* The socket becomes fd 3 (dup2 clears its FD_CLOEXEC), stdin /dev/null, and any
   * other descriptor the parent left inheritable (a plugin's, a library's) is closed
   * before the exec: not after it, where a program that is its own worker may already
   * have opened descriptors of its own (a constructor, a library). */
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_addopen (&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  sv[1] = above_worker_fds (sv[1]);
  posix_spawn_file_actions_adddup2 (&actions, sv[1], TR_WORKER_LINK_FD);
  if (capture_output) {
    posix_spawn_file_actions_adddup2 (&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2 (&actions, err[1], STDERR_FILENO);
  }
  posix_spawn_file_actions_addclosefrom_np (&actions, TR_WORKER_LINK_FD + 1);

  pid_t pid = 0;
  int e = sv[1] < 0 ? errno : posix_spawn (&pid, program, &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);
  if (sv[1] >= 0)
    close (sv[1]);
  /* the write ends are the worker's alone: the pipes' end of stream is its end */
  if (out[1] >= 0)
    close (out[1]);
  if (err[1] >= 0)
    close (err[1]);
  if (e != 0) {
    close (sv[0]);
    if (out[0] >= 0)
      close (out[0]);
    if (err[0] >= 0)
      close (err[0]);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "worker %u: cannot start %s: %s", slot, program, g_strerror (e));
    return NULL;
  }
  int flags = fcntl (sv[0], F_GETFL);
  fcntl (sv[0], F_SETFL, flags | O_NONBLOCK);

  TrLink *link = g_new0 (TrLink, 1);
  link->klass = &tr_link_local;
  link->fd = sv[0];
  link->pid = pid;
  link->out_fd = out[0];
  link->err_fd = err[0];
  /* close-on-exec by default; the pid cannot be reused before the pool reaps it */
  link->exit_fd = (int) syscall (SYS_pidfd_open, pid, 0);
  return link;
}

static TrLink *
local_spawn (guint slot, const char *program, GError **error)
{
  return tr_link_local_start (slot, program, TRUE, error);
}

static gssize
local_send (TrLink *link, const guint8 *data, gsize len)
{
  gssize n;
  do
    n = send (link->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n;
}

/* recvmsg rather than recv: descriptors a worker attached (a task's output file) would
 * otherwise be closed by the kernel, unseen.  A truncated control message (more than
 * TR_WIRE_FRAME_FILES at once, or no descriptor left in this process) loses some: the
 * records that attached them then find too few and fail their tasks (pool/answers.c). */
static gssize
local_receive (TrLink *link, guint8 *buf, gsize len)
{
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE (TR_WIRE_FRAME_FILES * sizeof (int))];
  } control;
  struct iovec iov = { .iov_base = buf, .iov_len = len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                        .msg_controllen = sizeof control.bytes };
  gssize n;
  do
    n = recvmsg (link->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    guint count = (guint) ((c->cmsg_len - CMSG_LEN (0)) / sizeof (int));
    if (!link->received_files)
      link->received_files = g_array_new (FALSE, FALSE, sizeof (int));
    g_array_append_vals (link->received_files, CMSG_DATA (c), count);
  }
  return n;
}

static void
local_kill (TrLink *link)
{
  if (link->pid > 0)
    kill (link->pid, SIGKILL);
}

static void
local_signal_group (TrLink *link, int sig)
{
  if (link->pid > 0)
    kill (-link->pid, sig);
}

static gboolean
local_ended (TrLink *link)
{
  if (link->exit_fd >= 0) {
    struct pollfd p = { .fd = link->exit_fd, .events = POLLIN };
    return poll (&p, 1, 0) > 0;
  }
  siginfo_t info = { 0 };
  int w;
  do
    w = waitid (P_PID, (id_t) link->pid, &info, WEXITED | WNOWAIT | WNOHANG);
  while (w < 0 && errno == EINTR);
  return w < 0 || info.si_pid != 0; /* an error: there is nothing left to wait for */
}

char *
tr_describe_wait_status (int status, gboolean *clean)
{
  *clean = FALSE;
  if (WIFEXITED (status)) {
    *clean = WEXITSTATUS (status) == 0;
    return g_strdup_printf ("exited with status %d", WEXITSTATUS (status));
  }
  if (WIFSIGNALED (status)) {
    int sig = WTERMSIG (status);
    const char *abbrev = sigabbrev_np (sig);
    return g_strdup_printf ("killed by signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
                            WCOREDUMP (status) ? ", core dumped" : "");
  }
  return g_strdup_printf ("ended with wait status 0x%x", status);
}

gboolean
tr_reap_worker (pid_t pid, gboolean block, int *status, gboolean *reaped)
{
  *status = 0;
  *reaped = FALSE;
  siginfo_t info = { 0 };
  int w;
  do
    w = waitid (P_PID, (id_t) pid, &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  while (w < 0 && errno == EINTR);
  if (w == 0 && info.si_pid == 0)
    return TRUE; /* still running */
  /* Whatever its tasks started goes with it.  The group is killed while the worker is
   * still a zombie: until it is reaped its pid, and so its group's id, cannot be reused. */
  if (w == 0)
    kill (-pid, SIGKILL);
  if (w < 0 && errno == ECHILD) {
    /* Gone without a zombie: a program that embeds the pool ignores SIGCHLD (so the
     * kernel reaped the worker) or reaped it itself.  Its status is lost, but not its
     * group: a group id is not reused while any process of the group lives. */
    kill (-pid, SIGKILL);
    *reaped = TRUE;
    errno = ECHILD;
    return FALSE;
  }
  pid_t r;
  do
    r = waitpid (pid, status, 0);
  while (r < 0 && errno == EINTR);
  *reaped = TRUE;
  return r >= 0;
}

static char *
local_close (TrLink *link, gboolean *clean, int *status)
{
  close (link->fd);
  if (link->exit_fd >= 0)
    close (link->exit_fd);
  if (link->out_fd >= 0)
    close (link->out_fd);
  if (link->err_fd >= 0)
    close (link->err_fd);
  if (link->received_files) {
    for (guint i = 0; i < link->received_files->len; i++)
      close (g_array_index (link->received_files, int, i));
    g_array_unref (link->received_files);
  }
  gboolean reaped;
  gboolean ok = tr_reap_worker (link->pid, TRUE, status, &reaped);
  g_free (link);
  if (!ok) {
    *clean = FALSE;
    if (errno == ECHILD && reaped)
      return g_strdup ("ended, with an exit status this process could not learn (it "
                       "ignores SIGCHLD, or something in it reaped the worker)");
    return g_strdup_printf ("could not be reaped: %s", g_strerror (errno));
  }
  return tr_describe_wait_status (*status, clean);
}

const TrLinkClass tr_link_local = {
  .captures_output = TRUE,
  .carries_files = TRUE,
  .spawn = local_spawn,
  .send = local_send,
  .receive = local_receive,
  .kill = local_kill,
  .signal_group = local_signal_group,
  .ended = local_ended,
  .close = local_close,
};
