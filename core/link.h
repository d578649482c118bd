/* link.h — the worker link: how the parent starts a worker and exchanges frames with it.
 *
 * One small interface (spawn, send, receive, close) so that the pool does not care whether
 * a worker is a child process on this machine (link-local.c) or a worker started by an MPI
 * rank on another host (core/mpi/bridge.c).  Every link exposes a file descriptor that poll() reports readable when
 * bytes arrive, so the pool's I/O thread can wait on all links and its wake-up fd at once.
 */
#ifndef TASKRUN_LINK_H
#define TASKRUN_LINK_H

#include <glib.h>
#include <sys/types.h>

#include "taskrun/taskrun.h"

typedef struct TrLink TrLink;

typedef struct {
  /* How long a message may take to reach a worker or come back from it, beyond the
   * socket's own time, in microseconds (0 for a local worker).  The pool keeps enough
   * work queued in a worker to cover a round trip. */
  guint latency_us;
  /* Whether its links carry the worker's stdout and stderr (TrLink.out_fd, err_fd).
   * FALSE: the worker writes to taskrun's own, or to its host's (an MPI rank's). */
  gboolean captures_output;
  /* Whether a worker may attach descriptors to its answers (SCM_RIGHTS), which `receive`
   * then puts in TrLink.received_files: TRUE only where worker and pool share a kernel. */
  gboolean carries_files;
  /* Starts a worker for `slot` (1-based) running `program` in worker mode. */
  TrLink *(*spawn) (guint slot, const char *program, GError **error);
  /* Writes what it can without blocking; returns the bytes written, or -1 with errno set
   * (EAGAIN: try again when writable). */
  gssize (*send) (TrLink *link, const guint8 *data, gsize len);
  /* Reads what is there without blocking; 0 at end of stream, -1 with errno set.  With
   * carries_files, descriptors that came with the bytes are appended, in order, to
   * link->received_files. */
  gssize (*receive) (TrLink *link, guint8 *buf, gsize len);
  /* Asks the worker to stop now (SIGKILL for a local process). */
  void (*kill) (TrLink *link);
  /* Sends `sig` to the worker's process group: the worker and whatever its task started. */
  void (*signal_group) (TrLink *link, int sig);
  /* Whether the worker's process has ended (it is not reaped: close does that), without
   * waiting.  A process may close its end of the link and live on, or die while a process
   * it forked holds the link open, so the link's end of stream is not the worker's end.
   * NULL: it is, for this class (the link ends only once the worker has been reaped). */
  gboolean (*ended) (TrLink *link);
  /* Closes the link, reaps the worker, stops what is left of its process group, and
   * frees the link.  Returns how the worker ended
   * in words ("exited with status 3", "killed by signal 9 (SIGKILL)"), newly allocated,
   * sets *clean when it exited with status 0, and *status to its wait status. */
  char *(*close) (TrLink *link, gboolean *clean, int *status);
} TrLinkClass;

struct TrLink {
  const TrLinkClass *klass;
  int fd;   /* poll() this for POLLIN / POLLOUT */
  pid_t pid;
  /* Only for a class with `ended`: poll() reports it readable (POLLIN) once the process
   * has ended; -1 when there is none, and `ended` must be asked from time to time. */
  int exit_fd;
  char *where; /* where the worker runs, for messages ("rank 2 on node7"); NULL: here */
  /* Only for a class with `captures_output`: the read ends, non-blocking, of the pipes
   * that are the worker's stdout and stderr; -1 when there is none (closed).  Whoever
   * reads them may close them and set -1 before `close`, which closes what is left. */
  int out_fd, err_fd;
  /* Only for a class with `carries_files`: descriptors received and not yet taken (the
   * pool's I/O thread takes them as it reads the records that attached them); `close`
   * closes what is left.  NULL: none yet. */
  GArray *received_files; /* of int */
};

extern const TrLinkClass tr_link_local;

/* Starts a local worker as tr_link_local.spawn does; without `capture_output` it writes
 * to this process's own stdout and stderr (an MPI agent's worker), and out_fd and err_fd
 * are -1. */
TrLink *tr_link_local_start (guint slot, const char *program, gboolean capture_output,
                             GError **error);

/* tr_pool_new, with workers reached through `link_class` (tr_pool_new: tr_link_local).
 * An argument, not a setting of the process: two pools of one program may use two. */
TrPool *tr_pool_new_on_link (const TrLinkClass *link_class, TrPlugin *plugin,
                             const TrConfig *config, const TrPoolOptions *options,
                             GError **error);

#endif
