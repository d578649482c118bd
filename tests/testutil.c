/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int mpi_ranks; /* tt_use_mpirun */
static char mpi_ranks_text[16];

gboolean
tt_have_mpi (void)
{
#if TT_HAVE_MPI
  g_autofree char *mpirun = g_find_program_in_path ("mpirun");
  return mpirun != NULL;
#else
  return FALSE;
#endif
}

void
tt_use_mpirun (int ranks)
{
  mpi_ranks = ranks;
  g_snprintf (mpi_ranks_text, sizeof mpi_ranks_text, "%d", ranks);
}

/* taskrun's argv (behind mpirun after tt_use_mpirun), and this process's environment
 * with `env` ("NAME=value") added. */
static GPtrArray *
taskrun_argv (const char *const *args, const char *const *env, GStrv *envp)
{
  GPtrArray *argv = g_ptr_array_new ();
  if (mpi_ranks > 0) {
    /* --oversubscribe: more ranks than this machine's cores */
    g_ptr_array_add (argv, (gpointer) "mpirun");
    g_ptr_array_add (argv, (gpointer) "--oversubscribe");
    g_ptr_array_add (argv, (gpointer) "-n");
    g_ptr_array_add (argv, mpi_ranks_text);
  }
  g_ptr_array_add (argv, (gpointer) TT_TASKRUN);
  for (int i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  *envp = g_get_environ ();
  if (mpi_ranks > 0) {
    /* Open MPI keeps some memory to the end and unloads the components that allocated
     * it, so LeakSanitizer can neither name nor suppress those reports: leaks are checked
     * on the local backend's runs, which go through the same runner and pool. */
    const char *asan = g_environ_getenv (*envp, "ASAN_OPTIONS");
    g_autofree char *opts = g_strconcat (asan ? asan : "", asan ? ":" : "", "detect_leaks=0", NULL);
    *envp = g_environ_setenv (*envp, "ASAN_OPTIONS", opts, TRUE);
    /* as root, Open MPI's mpirun refuses to start unless told twice */
    *envp = g_environ_setenv (*envp, "OMPI_ALLOW_RUN_AS_ROOT", "1", FALSE);
    *envp = g_environ_setenv (*envp, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", FALSE);
  }
  for (int i = 0; env && env[i]; i++) {
    const char *eq = strchr (env[i], '=');
    g_autofree char *name = g_strndup (env[i], eq - env[i]);
    *envp = g_environ_setenv (*envp, name, eq + 1, TRUE);
  }
  return argv;
}

int
tt_run_taskrun (const char *const *args, const char *cwd, const char *const *env, char **out,
                char **err)
{
  g_auto (GStrv) envp = NULL;
  g_autoptr (GPtrArray) argv = taskrun_argv (args, env, &envp);
  int status = 0;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_sync (cwd ? cwd : TT_SOURCE_ROOT, (char **) argv->pdata, envp,
                     mpi_ranks ? G_SPAWN_SEARCH_PATH : G_SPAWN_DEFAULT, NULL,
                     NULL, out, err, &status, &error))
    g_error ("cannot run taskrun: %s", error->message);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

char *
tt_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("taskrun-test-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

void
tt_rmtree (const char *dir)
{
  const char *argv[] = { "rm", "-rf", "--", dir, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

char *
tt_write (const char *dir, const char *name, const char *content)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, content, -1, &error);
  g_assert_no_error (error);
  return path;
}

char *
tt_test_plugin (const char *name)
{
  return g_strdup_printf ("%s/%s.so", TT_TEST_PLUGIN_DIR, name);
}

const char *
tt_source_root (void)
{
  return TT_SOURCE_ROOT;
}

char *
tt_u128_text (unsigned __int128 v)
{
  char buf[64];
  int i = sizeof buf - 1;
  buf[i] = '\0';
  do {
    buf[--i] = (char) ('0' + (int) (v % 10));
    v /= 10;
  } while (v);
  return g_strdup (buf + i);
}

guint
tt_count_lines (const char *text, const char *prefix)
{
  guint n = 0;
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix))
      n++;
  return n;
}

/* In the child before exec: a test that aborts takes the taskrun it started with it. */
static void
die_with_test (gpointer data)
{
  (void) data;
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

GPid
tt_spawn_taskrun (const char *const *args, const char *dir, const char *const *env)
{
  g_autofree char *out = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *err = g_build_filename (dir, "err.txt", NULL);
  int out_fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = open (err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  g_assert_cmpint (out_fd, >=, 0);
  g_assert_cmpint (err_fd, >=, 0);
  GPid pid = tt_spawn_taskrun_fds (args, dir, env, out_fd, err_fd);
  close (out_fd);
  close (err_fd);
  return pid;
}

GPid
tt_spawn_taskrun_fds (const char *const *args, const char *dir, const char *const *env,
                      int out_fd, int err_fd)
{
  g_auto (GStrv) envp = NULL;
  g_autoptr (GPtrArray) argv = taskrun_argv (args, env, &envp);
  GPid pid = 0;
  g_autoptr (GError) error = NULL;
  gboolean ok = g_spawn_async_with_fds (dir, (char **) argv->pdata, envp,
                                        G_SPAWN_DO_NOT_REAP_CHILD |
                                            (mpi_ranks ? G_SPAWN_SEARCH_PATH : 0),
                                        die_with_test, NULL, &pid, -1, out_fd, err_fd, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  return pid;
}

int
tt_wait_pid (GPid pid, double seconds, struct rusage *ru)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  int status = 0;
  struct rusage ignored;
  for (;;) {
    pid_t r = wait4 (pid, &status, WNOHANG, ru ? ru : &ignored);
    if (r == pid)
      return status;
    if (g_get_monotonic_time () > deadline) {
      kill (pid, SIGKILL);
      waitpid (pid, &status, 0);
      g_error ("taskrun (pid %d) did not end within %.1f s", (int) pid, seconds);
    }
    g_usleep (5000);
  }
}

int
tt_wait_taskrun (GPid pid, double seconds, const char *dir, char **out, char **err)
{
  int status = tt_wait_pid (pid, seconds, NULL);
  g_autofree char *o = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *e = g_build_filename (dir, "err.txt", NULL);
  if (out)
    g_file_get_contents (o, out, NULL, NULL);
  if (err)
    g_file_get_contents (e, err, NULL, NULL);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

/* /proc files report size 0, which g_file_get_contents takes at its word. */
static char *
read_proc (const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f)
    return NULL;
  GString *s = g_string_new (NULL);
  char buf[4096];
  size_t n;
  while ((n = fread (buf, 1, sizeof buf, f)) > 0)
    g_string_append_len (s, buf, n);
  fclose (f);
  return g_string_free (s, FALSE);
}

GArray *
tt_children (GPid pid)
{
  GArray *kids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autofree char *tasks = g_strdup_printf ("/proc/%d/task", (int) pid);
  g_autoptr (GDir) d = g_dir_open (tasks, 0, NULL);
  const char *tid;
  while (d && (tid = g_dir_read_name (d))) {
    g_autofree char *path = g_strdup_printf ("%s/%s/children", tasks, tid);
    g_autofree char *text = read_proc (path);
    if (!text)
      continue;
    g_auto (GStrv) parts = g_strsplit (text, " ", -1);
    for (int i = 0; parts[i]; i++)
      if (*parts[i]) {
        GPid k = (GPid) atoi (parts[i]);
        g_array_append_val (kids, k);
      }
  }
  return kids;
}

static gboolean
alive (GPid pid)
{
  /* a zombie waiting for its reaper counts as gone */
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = read_proc (path);
  if (!stat)
    return FALSE;
  const char *close = strrchr (stat, ')');
  return close && close[1] == ' ' && close[2] != 'Z';
}

guint
tt_wait_gone (GArray *pids, double seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  for (;;) {
    guint left = 0;
    for (guint i = 0; i < pids->len; i++)
      left += alive (g_array_index (pids, GPid, i));
    if (left == 0 || g_get_monotonic_time () > deadline)
      return left;
    g_usleep (10000);
  }
}

gboolean
tt_wait_lines (const char *path, guint lines, double seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  for (;;) {
    g_autofree char *text = NULL;
    if (g_file_get_contents (path, &text, NULL, NULL)) {
      guint n = 0;
      for (const char *p = text; *p; p++)
        n += *p == '\n';
      if (n >= lines)
        return TRUE;
    }
    if (g_get_monotonic_time () > deadline)
      return FALSE;
    g_usleep (5000);
  }
}

char *
tt_testkit_job (const char *dir, const char *taskrun_keys, const char *testkit_keys)
{
  g_autofree char *plugin = tt_test_plugin ("testkit");
  g_autofree char *text = g_strdup_printf ("[taskrun]\nplugin = %s\n%s\n[testkit]\n%s\n", plugin,
                                           taskrun_keys ? taskrun_keys : "",
                                           testkit_keys ? testkit_keys : "");
  return tt_write (dir, "job.ini", text);
}

int
tt_run_testkit (const char *taskrun_keys, const char *testkit_keys, const char *const *extra,
                char **out, char **err)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, taskrun_keys, testkit_keys);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, "-c");
  g_ptr_array_add (args, job);
  for (int i = 0; extra && extra[i]; i++)
    g_ptr_array_add (args, (gpointer) extra[i]);
  g_ptr_array_add (args, NULL);
  int status = tt_run_taskrun ((const char *const *) args->pdata, dir, NULL, out, err);
  g_test_message ("%s", err && *err ? *err : "");
  tt_rmtree (dir);
  return status;
}
