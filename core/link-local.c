/* link-local.c — the worker link for forked workers on this machine.
 *
 * Fork strategy: fork + exec of the taskrun binary in its hidden worker mode.  The parent
 * has threads (the pool's I/O thread, GLib's), and a child forked from a threaded process
 * may only call async-signal-safe functions until it execs: a lock another thread held
 * at fork time (malloc's, GLib's) would stay locked forever in the child.  So between
 * fork and exec the child makes raw system calls only: ignore SIGINT (the parent
 * coordinates shutdown), take a process group of its own, unblock signals (blocked
 * around fork so no parent handler runs in the child), ask for SIGKILL when the parent
 * dies, check the parent did not die already, move the socket to fd 3, close every
 * other descriptor, exec.  A fork server would avoid the exec, but exec costs about a millisecond per
 * worker, once, and keeps the worker a clean process whatever the parent loaded.
 *
 * PR_SET_PDEATHSIG fires when the *thread* that forked the child exits; the pool forks
 * from its I/O thread, which outlives every worker it starts.
 *
 * The link itself is a Unix stream socketpair: fd 3 in the worker, non-blocking in the
 * parent.  The worker's stdin is /dev/null; stdout and stderr are shared with the parent.
 */
#include "link.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
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
  int devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Everything the child needs is prepared before fork: no allocation after it. */
  char ppid_text[32];
  g_snprintf (ppid_text, sizeof ppid_text, "%ld", (long) getpid ());
  char *argv[] = { (char *) program, (char *) TR_WORKER_ARG, ppid_text, NULL };
  pid_t parent = getpid ();

  /* No signal handler of the parent may run in the child between fork and exec. */
  sigset_t all, old;
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  pid_t pid = fork ();
  if (pid != 0)
    pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    int e = errno;
    close (sv[0]);
    close (sv[1]);
    if (devnull >= 0)
      close (devnull);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "worker %u: fork: %s", slot,
                 g_strerror (e));
    return NULL;
  }
  if (pid == 0) {
    /* Child: async-signal-safe calls only, until execv.  Its own process group: a signal
     * for taskrun's group (Ctrl-C, kill -TERM -PGID) is taskrun's to handle, and the pool
     * can stop a worker with whatever its task started. */
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigaction (SIGINT, &ign, NULL);
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigaction (SIGTERM, &dfl, NULL);
    sigaction (SIGPIPE, &dfl, NULL);
    setpgid (0, 0);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    if (getppid () != parent)
      _exit (127);
    if (devnull >= 0)
      dup2 (devnull, STDIN_FILENO);
    if (sv[1] == WORKER_FD)
      fcntl (WORKER_FD, F_SETFD, 0);
    else if (dup2 (sv[1], WORKER_FD) < 0)
      _exit (127);
    /* dup2 clears FD_CLOEXEC on the copy; close everything above it. */
    syscall (SYS_close_range, WORKER_FD + 1, ~0U, 0);
    execv (program, argv);
    static const char msg[] = "taskrun: cannot start the worker program\n";
    if (write (STDERR_FILENO, msg, sizeof msg - 1) < 0) {
      /* nothing more can be done */
    }
    _exit (127);
  }
  close (sv[1]);
  if (devnull >= 0)
    close (devnull);
  int flags = fcntl (sv[0], F_GETFL);
  fcntl (sv[0], F_SETFL, flags | O_NONBLOCK);

  TrLink *link = g_new0 (TrLink, 1);
  link->klass = &tr_link_local;
  link->fd = sv[0];
  link->pid = pid;
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
  .close = local_close,
};
