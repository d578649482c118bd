/* run.c — the exec plugin's worker side: one command per task.
 *
 * The command starts with posix_spawnp in the worker's process group (so that the
 * core's task_timeout stops it and everything it started), with stdin /dev/null, the
 * environment plus TASKRUN_SEQ and TASKRUN_SLOT, and the job's working directory.  Its
 * stdout and stderr are read as it runs, each whole into the task's result: in memory
 * while small, in an unlinked temporary file attached to the result when large.
 * What a command leaves running when it exits is killed then (the worker is its
 * subreaper, so setsid does not hide it): a task leaves no process behind.
 * Owns: starting, reading and reaping the command, and the words for how it ended.
 * Does not own: the argv (template.c), printing the output (exec.c).
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  const TrConfig *config;
  ExecTemplate *template;
  guint slot;
  char *workdir;
  int devnull;
  GPtrArray *cols;
  GArray *col_lens;
} ExecWorker;

gboolean
exec_worker_init (const TrConfig *config, gpointer *state, GError **error)
{
  ExecTemplate *t = exec_template_from_config (config, error);
  if (!t)
    return FALSE;
  ExecWorker *w = g_new0 (ExecWorker, 1);
  w->config = config;
  w->template = t;
  const char *slot = g_getenv ("TASKRUN_SLOT");
  w->slot = slot ? (guint) g_ascii_strtoull (slot, NULL, 10) : 1;
  w->workdir = g_strdup (tr_config_get_string (config, "workdir"));
  /* what a command leaves running when it ends (a daemon, setsid or not) comes back to
   * this worker rather than to init, to be stopped with its task (end_leftovers) */
  prctl (PR_SET_CHILD_SUBREAPER, 1);
  w->devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  w->cols = g_ptr_array_new_with_free_func (g_free);
  w->col_lens = g_array_new (FALSE, FALSE, sizeof (gsize));
  if (w->devnull < 0) {
    int errsv = errno;
    g_set_error (error, EXEC_ERROR, errsv, "/dev/null: %s", g_strerror (errsv));
    exec_worker_fini (w);
    return FALSE;
  }
  *state = w;
  return TRUE;
}

void
exec_worker_fini (gpointer state)
{
  ExecWorker *w = state;
  exec_template_free (w->template);
  g_free (w->workdir);
  if (w->devnull >= 0)
    close (w->devnull);
  g_ptr_array_unref (w->cols);
  g_array_unref (w->col_lens);
  g_free (w);
}

/* After a command has been reaped: the processes it left running (reparented to this
 * worker, its subreaper, even when they left its process group with setsid) are killed
 * and reaped, and so are theirs as they come back in turn, so that no task leaves an
 * orphan behind.  One waitid when there are none, as for almost every command. */
static void
end_leftovers (void)
{
  for (int round = 0; round < 64; round++) {
    siginfo_t info = { 0 };
    if (waitid (P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
      return; /* ECHILD: nothing left */
    g_autoptr (GArray) killed = g_array_new (FALSE, FALSE, sizeof (pid_t));
    g_autoptr (GDir) tasks = g_dir_open ("/proc/self/task", 0, NULL);
    const char *tid;
    while (tasks && (tid = g_dir_read_name (tasks))) {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/children", tid);
      g_autofree char *text = NULL;
      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      g_auto (GStrv) pids = g_strsplit (g_strstrip (text), " ", -1);
      for (guint i = 0; pids[i]; i++) {
        pid_t child = (pid_t) g_ascii_strtoll (pids[i], NULL, 10);
        if (child > 0 && kill (child, SIGKILL) == 0)
          g_array_append_val (killed, child);
      }
    }
    /* SIGKILL cannot be held off: each ends, and is reaped here, not left to init */
    for (guint i = 0; i < killed->len; i++)
      while (waitpid (g_array_index (killed, pid_t, i), NULL, 0) < 0 && errno == EINTR)
        ;
    while (waitpid (-1, NULL, WNOHANG) > 0)
      ;
    if (!killed->len)
      return; /* children the file does not show (no /proc): nothing more to do here */
  }
}

/* The environment of a command: the worker's, with TASKRUN_SEQ for this task. */
static GStrv
command_env (guint64 seq)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, seq);
  return g_environ_setenv (g_get_environ (), "TASKRUN_SEQ", text, TRUE);
}

/* One of the command's output streams as it is read: in memory up to EXEC_SPILL_AT,
 * then in an unlinked temporary file under $TMPDIR (whole: the memory part is moved
 * there first), which the kernel removes with its last descriptor, whatever ends taskrun.
 * A stream whose file could not be made or written (a full disk) is read to its end and
 * dropped, its errno kept: the task then fails naming it, and none of that stream is shown. */
typedef struct {
  int pipe;         /* the read end; -1 once it ended */
  GByteArray *mem;
  int file;         /* -1: not spilled */
  int lost_errno;   /* not 0: the stream could not be kept */
  gboolean splice_works;
  gboolean trickle; /* spilled, and the last read found little: let the pipe fill */
} Stream;

/* A spilled stream is large: it is read when its pipe holds a good part of a MiB, not at
 * every write of the command (4 KiB for many), which would cost the worker two system
 * calls per write.  So after a read that found less than TRICKLE_BYTES the worker waits
 * TRICKLE_NS; with the pipe made SPILL_PIPE_SIZE, a command writes a MiB a millisecond
 * without blocking. */
#define SPILL_PIPE_SIZE (1 << 20)
#define TRICKLE_BYTES (256 << 10)
#define TRICKLE_NS 1000000

static void
stream_init (Stream *st, int pipe)
{
  *st = (Stream) { .pipe = pipe, .mem = g_byte_array_new (), .file = -1, .splice_works = TRUE };
}

static void
stream_clear (Stream *st)
{
  if (st->pipe >= 0)
    close (st->pipe);
  if (st->file >= 0)
    close (st->file);
  g_byte_array_unref (st->mem);
}

/* An unlinked file for output in $TMPDIR: O_TMPFILE, or where the file system has none a
 * named one removed at once. */
static int
spill_file (void)
{
  const char *dir = g_get_tmp_dir ();
  int fd = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
    return fd;
  g_autofree char *name = g_build_filename (dir, "taskrun-output-XXXXXX", NULL);
  fd = g_mkstemp_full (name, O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    unlink (name);
  return fd;
}

static void
stream_lose (Stream *st, int errsv)
{
  st->lost_errno = errsv ? errsv : EIO;
  if (st->file >= 0)
    close (st->file);
  st->file = -1;
  g_byte_array_set_size (st->mem, 0);
}

/* Reads what the pipe has.  FALSE at its end. */
static gboolean
stream_read (Stream *st, guint8 *buf, gsize room)
{
  if (st->file >= 0 && st->splice_works) {
    ssize_t n = splice (st->pipe, NULL, st->file, NULL, SPILL_PIPE_SIZE, SPLICE_F_MOVE);
    st->trickle = n > 0 && n < TRICKLE_BYTES;
    if (n >= 0)
      return n > 0;
    if (errno == EINTR || errno == EAGAIN)
      return TRUE;
    if (errno != EINVAL) {
      stream_lose (st, errno);
      return TRUE;
    }
    st->splice_works = FALSE;
  }
  ssize_t got = read (st->pipe, buf, room);
  if (got < 0)
    return errno == EINTR || errno == EAGAIN;
  if (got == 0)
    return FALSE;
  if (st->lost_errno)
    return TRUE; /* read on, so that the command is not stopped by a full pipe */
  if (st->file >= 0) {
    if (!exec_write_all (st->file, buf, (gsize) got))
      stream_lose (st, errno);
    st->trickle = (gsize) got < room;
    return TRUE;
  }
  if (st->mem->len + (gsize) got <= EXEC_SPILL_AT) {
    g_byte_array_append (st->mem, buf, (guint) got);
    return TRUE;
  }
  st->file = spill_file ();
  if (st->file < 0 || !exec_write_all (st->file, st->mem->data, st->mem->len) ||
      !exec_write_all (st->file, buf, (gsize) got)) {
    stream_lose (st, errno);
    return TRUE;
  }
  g_byte_array_set_size (st->mem, 0);
  fcntl (st->pipe, F_SETPIPE_SZ, SPILL_PIPE_SIZE); /* best effort: pipe-max-size may be less */
  return TRUE;
}

/* Reads the command's stdout and stderr to their ends. */
static void
read_both (Stream st[2])
{
  guint8 buf[65536];
  while (st[0].pipe >= 0 || st[1].pipe >= 0) {
    if ((st[0].pipe >= 0 && st[0].trickle) || (st[1].pipe >= 0 && st[1].trickle)) {
      struct timespec nap = { 0, TRICKLE_NS };
      nanosleep (&nap, NULL);
    }
    struct pollfd p[2];
    nfds_t n = 0;
    int which[2];
    for (int s = 0; s < 2; s++)
      if (st[s].pipe >= 0) {
        p[n] = (struct pollfd) { .fd = st[s].pipe, .events = POLLIN };
        which[n++] = s;
      }
    if (poll (p, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (nfds_t i = 0; i < n; i++) {
      if (!p[i].revents)
        continue;
      Stream *s = &st[which[i]];
      if (!stream_read (s, buf, sizeof buf)) {
        close (s->pipe);
        s->pipe = -1;
      }
    }
  }
}

/* Where the bytes of a spilled stream cannot travel as a file (the MPI backend), they
 * are read back into memory, as long as the whole output fits a result. */
static void
stream_unspill (Stream *st, gsize other_len, gboolean *overflow)
{
  struct stat sb;
  if (fstat (st->file, &sb) != 0) {
    stream_lose (st, errno);
    return;
  }
  if ((gsize) sb.st_size + other_len > EXEC_OUTPUT_MAX) {
    *overflow = TRUE;
    close (st->file);
    st->file = -1;
    return;
  }
  g_byte_array_set_size (st->mem, (guint) sb.st_size);
  gsize at = 0;
  while (at < (gsize) sb.st_size) {
    ssize_t n = pread (st->file, st->mem->data + at, (gsize) sb.st_size - at, (off_t) at);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      stream_lose (st, n < 0 ? errno : EIO);
      return;
    }
    at += (gsize) n;
  }
  close (st->file);
  st->file = -1;
}

/* The result: the head, the streams held in memory; the spilled ones attached as files,
 * stdout's first.  *overflow: a stream had to come back into memory and did not fit (1
 * stdout, 2 stderr); it is dropped, the other kept. */
static void
put_result (TrOutput *output, ExecHow how, gint32 value, Stream *st, int *overflow)
{
  guint8 files = 0;
  if (st) {
    for (int s = 0; s < 2; s++) {
      if (st[s].file < 0)
        continue;
      if (tr_output_attach_file (output, st[s].file)) {
        files |= s == 0 ? EXEC_STDOUT_FILE : EXEC_STDERR_FILE;
        st[s].file = -1; /* the core's now */
      } else {
        gboolean cut = FALSE;
        stream_unspill (&st[s], st[!s].mem->len, &cut);
        if (cut && !*overflow)
          *overflow = s + 1; /* 1 stdout, 2 stderr: the one dropped */
      }
    }
  }
  guint8 head[EXEC_RESULT_HEAD];
  head[0] = (guint8) how;
  for (int i = 0; i < 4; i++)
    head[1 + i] = (guint8) ((guint32) value >> (8 * i));
  exec_put_u64 (head + 5, st ? st[0].mem->len : 0);
  head[13] = files;
  tr_output_append (output, head, sizeof head);
  for (int s = 0; st && s < 2; s++)
    if (st[s].mem->len)
      tr_output_append (output, st[s].mem->data, st[s].mem->len);
}

gboolean
exec_run (gpointer state, const guint8 *payload, gsize len, TrOutput *output, GError **error)
{
  ExecWorker *w = state;
  if (len < 8) {
    g_set_error_literal (error, EXEC_ERROR, 1, "a task without its sequence number");
    return FALSE;
  }
  guint64 seq = exec_get_u64 (payload);
  ExecValues v;
  exec_values_init (&v, w->config, (const char *) payload + 8, len - 8, seq, w->slot, w->cols,
                    w->col_lens);
  g_auto (GStrv) argv = exec_template_argv (w->template, &v, error);
  if (!argv) {
    if (error && *error)
      (*error)->code = 1; /* nothing ran: the job log's Exitval 1, as for any failed task */
    return FALSE;
  }
  g_auto (GStrv) envp = command_env (seq);

  int pipes[2][2] = { { -1, -1 }, { -1, -1 } };
  for (int s = 0; s < 2; s++)
    if (pipe2 (pipes[s], O_CLOEXEC) < 0) {
      int errsv = errno;
      for (int k = 0; k < s; k++) {
        close (pipes[k][0]);
        close (pipes[k][1]);
      }
      g_set_error (error, EXEC_ERROR, errsv, "cannot make a pipe: %s", g_strerror (errsv));
      return FALSE;
    }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_adddup2 (&actions, w->devnull, 0);
  posix_spawn_file_actions_adddup2 (&actions, pipes[0][1], 1);
  posix_spawn_file_actions_adddup2 (&actions, pipes[1][1], 2);
  if (w->workdir)
    posix_spawn_file_actions_addchdir_np (&actions, w->workdir);
  /* the worker ignores what a command must not inherit ignored */
  posix_spawnattr_t attr;
  posix_spawnattr_init (&attr);
  sigset_t dflt;
  sigemptyset (&dflt);
  sigaddset (&dflt, SIGINT);
  sigaddset (&dflt, SIGPIPE);
  sigaddset (&dflt, SIGHUP);
  posix_spawnattr_setsigdefault (&attr, &dflt);
  sigset_t none;
  sigemptyset (&none);
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int rc = posix_spawnp (&pid, argv[0], &actions, &attr, argv, envp);
  if (rc == ENOEXEC) {
    /* an executable file that is not a program (a script without #!): execvp runs it
     * with /bin/sh, as shells and GNU parallel do; glibc's posix_spawnp does not */
    g_autofree char *found = strchr (argv[0], '/') ? g_strdup (argv[0])
                                                  : g_find_program_in_path (argv[0]);
    if (found) {
      guint n = g_strv_length (argv);
      g_autofree char **sh_argv = g_new0 (char *, n + 2);
      sh_argv[0] = (char *) "/bin/sh";
      sh_argv[1] = found;
      for (guint k = 1; k < n; k++)
        sh_argv[k + 1] = argv[k];
      rc = posix_spawn (&pid, "/bin/sh", &actions, &attr, sh_argv, envp);
    }
  }
  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);
  close (pipes[0][1]);
  close (pipes[1][1]);
  int fds[2] = { pipes[0][0], pipes[1][0] };
  if (rc != 0) {
    close (fds[0]);
    close (fds[1]);
    put_result (output, EXEC_NOT_STARTED, rc, NULL, NULL);
    /* a shell's statuses: 126 found but not runnable, 127 not found */
    int status = rc == ENOENT || rc == ENOTDIR ? 127 : 126;
    g_set_error (error, EXEC_ERROR, status, "cannot run '%s': %s", argv[0], g_strerror (rc));
    return FALSE;
  }
  Stream st[2];
  stream_init (&st[0], fds[0]);
  stream_init (&st[1], fds[1]);
  read_both (st);
  int status;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  end_leftovers ();
  int overflow = 0;
  gboolean signaled = WIFSIGNALED (status);
  int sig = signaled ? WTERMSIG (status) : 0;
  int code = signaled ? 0 : WEXITSTATUS (status);
  put_result (output, signaled ? EXEC_SIGNALED : EXEC_EXITED, signaled ? sig : code, st,
              &overflow);
  int lost = st[0].lost_errno ? st[0].lost_errno : st[1].lost_errno;
  const char *lost_name = st[0].lost_errno ? "stdout" : "stderr";
  stream_clear (&st[0]);
  stream_clear (&st[1]);
  if (signaled) {
    g_set_error (error, EXEC_ERROR, 256 + sig, "killed by signal %d (SIG%s)", sig,
                 sigabbrev_np (sig) ? sigabbrev_np (sig) : "?");
    return FALSE;
  }
  if (lost) {
    g_set_error (error, EXEC_ERROR, code ? code : 1,
                 "its %s was lost: cannot keep it in a temporary file in %s: %s "
                 "(exit status %d)", lost_name, g_get_tmp_dir (), g_strerror (lost), code);
    return FALSE;
  }
  if (overflow) {
    g_set_error (error, EXEC_ERROR, code ? code : 1,
                 "its output passed %u MiB, the most a task on another host can send back, "
                 "and its %s was dropped (exit status %d)",
                 (EXEC_OUTPUT_MAX + EXEC_RESULT_HEAD) >> 20, overflow == 1 ? "stdout" : "stderr",
                 code);
    return FALSE;
  }
  if (code != 0) {
    g_set_error (error, EXEC_ERROR, code, "exit status %d", code);
    return FALSE;
  }
  return TRUE;
}
