/* link-local.c — the worker link for workers started on this machine.
 *
 * Start strategy: posix_spawn of the taskrun binary in its hidden worker mode.  The
 * parent has threads (the pool's I/O thread, GLib's), so nothing may run in a forked
 * copy of it but raw system calls; and a plain fork would also mark every page of the
 * parent copy-on-write, so that the parent pays a page fault for each page it writes
 * afterwards, on the cores the workers need.  posix_spawn (glibc: clone with CLONE_VM
 * and CLONE_VFORK) shares the parent's memory until the exec and reports a failed exec
 * as an error.  It sets the process group, the signal mask and dispositions, stdin and
 * the socket; the worker itself asks for SIGKILL when the parent dies, checks the parent
 * did not die already, ignores SIGINT and closes any descriptor it inherited by
 * mistake (worker.c).  A fork server would avoid the exec, but exec costs about a
 * millisecond per worker, once, and keeps the worker a clean process whatever the
 * parent loaded.
 *
 * PR_SET_PDEATHSIG fires when the *thread* that started the child exits; the pool starts
 * workers from its I/O thread, which outlives every one of them.
 *
 * The link itself is a Unix stream socketpair: fd 3 in the worker, non-blocking in the
 * parent.  The worker's stdin is /dev/null; stdout and stderr are shared with the parent.
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

#define WORKER_FD 3

static TrLink *
local_spawn (guint slot, const char *program, GError **error)
{
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "worker %u: socketpair: %s", slot, g_strerror (errno));
    return NULL;
  }
  char ppid_text[32];
  g_snprintf (ppid_text, sizeof ppid_text, "%ld", (long) getpid ());
  char *argv[] = { (char *) program, (char *) TR_WORKER_ARG, ppid_text, NULL };

  /* Its own process group: a signal for taskrun's group (Ctrl-C, kill -TERM -PGID) is
   * taskrun's to handle, and the pool can stop a worker with whatever its task started.
   * No signal blocked, SIGTERM and SIGPIPE at their defaults whatever the parent did. */
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
  posix_spawnattr_setsigdefault (&attr, &defaults);
  /* The socket becomes fd 3 (dup2 clears its FD_CLOEXEC), stdin /dev/null; the worker
   * closes any other descriptor the parent left inheritable. */
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_addopen (&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (sv[1] == WORKER_FD) {
    /* dup2 onto itself would leave FD_CLOEXEC set: go through a spare number */
    int spare = fcntl (sv[1], F_DUPFD_CLOEXEC, WORKER_FD + 1);
    close (sv[1]);
    sv[1] = spare;
  }
  posix_spawn_file_actions_adddup2 (&actions, sv[1], WORKER_FD);

  pid_t pid = 0;
  int e = sv[1] < 0 ? errno : posix_spawn (&pid, program, &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);
  if (sv[1] >= 0)
    close (sv[1]);
  if (e != 0) {
    close (sv[0]);
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
  /* close-on-exec by default; the pid cannot be reused before the pool reaps it */
  link->exit_fd = (int) syscall (SYS_pidfd_open, pid, 0);
  return link;
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

static gssize
local_receive (TrLink *link, guint8 *buf, gsize len)
{
  gssize n;
  do
    n = recv (link->fd, buf, len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
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
  gboolean reaped;
  gboolean ok = tr_reap_worker (link->pid, TRUE, status, &reaped);
  g_free (link);
  if (!ok) {
    *clean = FALSE;
    return g_strdup_printf ("could not be reaped: %s", g_strerror (errno));
  }
  return tr_describe_wait_status (*status, clean);
}

const TrLinkClass tr_link_local = {
  .name = "local",
  .spawn = local_spawn,
  .send = local_send,
  .receive = local_receive,
  .kill = local_kill,
  .signal_group = local_signal_group,
  .ended = local_ended,
  .close = local_close,
};
