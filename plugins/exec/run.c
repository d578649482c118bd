/* run.c — the exec plugin's worker side: one command per task.
 *
 * The command starts with posix_spawnp in the worker's process group (so that the
 * core's task_timeout stops it and everything it started), with stdin /dev/null, the
 * environment plus TASKRUN_SEQ and TASKRUN_SLOT, and the job's working directory.  Its
 * stdout and stderr are read as it runs, each whole into the task's result.
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

/* The environment of a command: the worker's, with TASKRUN_SEQ for this task. */
static GStrv
command_env (guint64 seq)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, seq);
  return g_environ_setenv (g_get_environ (), "TASKRUN_SEQ", text, TRUE);
}

/* Reads the command's stdout and stderr to their ends into `out` and `err`; what passes
 * EXEC_OUTPUT_MAX in all is read and dropped (the command must not block on a full pipe),
 * and *overflow says so. */
static void
read_both (int fds[2], GByteArray *out, GByteArray *err, gboolean *overflow)
{
  guint8 buf[65536];
  GByteArray *to[2] = { out, err };
  while (fds[0] >= 0 || fds[1] >= 0) {
    struct pollfd p[2];
    nfds_t n = 0;
    int which[2];
    for (int s = 0; s < 2; s++)
      if (fds[s] >= 0) {
        p[n] = (struct pollfd) { .fd = fds[s], .events = POLLIN };
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
      int s = which[i];
      ssize_t got = read (fds[s], buf, sizeof buf);
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        close (fds[s]);
        fds[s] = -1;
        continue;
      }
      if (out->len + err->len + (gsize) got > EXEC_OUTPUT_MAX)
        *overflow = TRUE;
      else
        g_byte_array_append (to[s], buf, (guint) got);
    }
  }
}

static void
put_result (TrOutput *output, ExecHow how, gint32 value, GByteArray *out, GByteArray *err)
{
  guint8 head[EXEC_RESULT_HEAD];
  head[0] = (guint8) how;
  for (int i = 0; i < 4; i++)
    head[1 + i] = (guint8) ((guint32) value >> (8 * i));
  exec_put_u64 (head + 5, out ? out->len : 0);
  tr_output_append (output, head, sizeof head);
  if (out && out->len)
    tr_output_append (output, out->data, out->len);
  if (err && err->len)
    tr_output_append (output, err->data, err->len);
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
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GByteArray) err = g_byte_array_new ();
  gboolean overflow = FALSE;
  read_both (fds, out, err, &overflow);
  int status;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFSIGNALED (status)) {
    int sig = WTERMSIG (status);
    put_result (output, EXEC_SIGNALED, sig, out, err);
    g_set_error (error, EXEC_ERROR, 256 + sig, "killed by signal %d (SIG%s)", sig,
                 sigabbrev_np (sig) ? sigabbrev_np (sig) : "?");
    return FALSE;
  }
  int code = WEXITSTATUS (status);
  put_result (output, EXEC_EXITED, code, out, err);
  if (overflow) {
    g_set_error (error, EXEC_ERROR, code ? code : 1,
                 "its output passed %u MiB and was cut there (exit status %d)",
                 EXEC_OUTPUT_MAX >> 20, code);
    return FALSE;
  }
  if (code != 0) {
    g_set_error (error, EXEC_ERROR, code, "exit status %d", code);
    return FALSE;
  }
  return TRUE;
}
