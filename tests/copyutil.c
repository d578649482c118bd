/* copyutil.c — what the copy plugin's test programs share: files and folders made to
 * order, job files, running taskrun on them (also as an unprivileged user, from a copy
 * of the built taskrun that user can reach wherever the clone lives), the rsync oracle,
 * and the count of temporaries left behind. */
#include "copyutil.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void
must (int r, const char *what)
{
  if (r < 0)
    g_error ("%s: %s", what, g_strerror (errno));
}


void
write_file (const char *path, gsize size, guint seed)
{
  g_autofree guint8 *buf = g_malloc (MAX (size, 1));
  GRand *r = g_rand_new_with_seed (seed);
  for (gsize i = 0; i < size; i++)
    buf[i] = (guint8) g_rand_int (r);
  g_rand_free (r);
  /* not g_file_set_contents: its temporary name would not fit beside a 255-byte name */
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  must (fd, path);
  must (write (fd, buf, size) == (ssize_t) size ? 0 : -1, path);
  close (fd);
}

char *
path_in (const char *root, const char *rel)
{
  return g_build_filename (root, rel, NULL);
}

/* root/rel, made as an empty folder. */
char *
new_folder (const char *root, const char *rel)
{
  char *path = path_in (root, rel);
  must (mkdir (path, 0755), path);
  return path;
}

char *
oracle (const char *src, const char *dst)
{
  g_autofree char *s = g_strconcat (src, "/", NULL);
  g_autofree char *d = g_strconcat (dst, "/", NULL);
  const char *argv[] = { "rsync", "-aHAXn", "--checksum", "--itemize-changes", s, d, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               &err, &status, NULL));
  if (status != 0)
    g_error ("rsync failed (wait status %d):\n%s%s", status, out, err);
  return g_strconcat (out, err, NULL);
}

char *
copy_job (const char *dir, const char *src, const char *dst, const char *extra)
{
  gboolean own_chunk = extra && strstr (extra, "chunk_size");
  g_autofree char *text = g_strdup_printf ("[taskrun]\nplugin = copy\nworkers = 2\n[copy]\nsource = %s\n"
                                           "destination = %s\n%s%s", src, dst,
                                           own_chunk ? "" : "chunk_size = 64K\n", extra ? extra : "");
  return tt_write (dir, "copy.ini", text);
}

int
run_copy (const char *job, char **out, char **err)
{
  const char *args[] = { "-c", job, NULL };
  return tt_run_taskrun (args, NULL, NULL, out, err);
}

guint
count_temps (const char *root)
{
  const char *argv[] = { "find", root, "-name", ".taskrun-*.tmp", NULL };
  g_autofree char *out = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               NULL, NULL, NULL));
  return tt_count_lines (out, "/");
}


/* A folder under /dev/shm, readable by every user, holding a copy of the built taskrun,
 * the libtaskrun.so.1 it links (found beside it: its RUNPATH starts with $ORIGIN) and the
 * copy plugin: the build tree may sit under a home that is 0700. */
static char *public_dir;

static const char *
public_taskrun_dir (void)
{
  char *dir = public_dir;
  if (dir)
    return dir;
  dir = g_strdup ("/dev/shm/taskrun-public-XXXXXX");
  g_assert_nonnull (g_mkdtemp (dir));
  must (chmod (dir, 0755), dir);
  const char *from[] = { TT_TASKRUN, TT_BUILD_DIR "/plugins/copy/copy.so",
                         TT_BUILD_DIR "/core/libtaskrun.so.1" };
  const char *to[] = { "taskrun", "copy.so", "libtaskrun.so.1" };
  for (int i = 0; i < 3; i++) {
    g_autofree char *dest = path_in (dir, to[i]);
    const char *argv[] = { "cp", from[i], dest, NULL };
    int status;
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                                 NULL, &status, NULL));
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    must (chmod (dest, 0755), dest);
  }
  public_dir = dir;
  return dir;
}

void
copyutil_cleanup (void)
{
  if (public_dir)
    tt_rmtree (public_dir);
  g_clear_pointer (&public_dir, g_free);
}

int
run_copy_as_nobody (const char *job, const char *cwd, char **out, char **err)
{
  if (geteuid () != 0)
    return run_copy (job, out, err);
  const char *dir = public_taskrun_dir ();
  g_autofree char *taskrun = path_in (dir, "taskrun");
  g_autofree char *plugin_path = g_strdup_printf ("TASKRUN_PLUGIN_PATH=%s", dir);
  g_autofree char *worker = g_strdup_printf ("TASKRUN_WORKER_PROGRAM=%s", taskrun);
  const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env",
                         plugin_path, worker, taskrun, "-c", job, NULL };
  int status;
  g_assert_true (g_spawn_sync (cwd, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out, err,
                               &status, NULL));
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}
