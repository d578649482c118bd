/* results.c — results = DIR: each task's stdout, stderr, exit status and signal kept as
 * files DIR/SEQ/stdout, stderr, exitval and signal (GNU parallel's --results, named by
 * the task's number).
 *
 * Owns: the folder's descriptor and writing the files.  Every file is written under a
 * temporary name in its folder and renamed into place, so a file at its final name is
 * always a whole one; everything is reached from the folder's descriptor, never by a
 * path someone could swap.  Does not own: what the output is (run.c), when it is
 * written (exec.c).
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct ExecResults {
  int dirfd;
  char *path; /* for messages */
};

ExecResults *
exec_results_open (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0755) != 0 && errno != EEXIST) {
    int errsv = errno;
    g_set_error (error, EXEC_ERROR, errsv, "results %s: %s", path, g_strerror (errsv));
    return NULL;
  }
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int errsv = errno;
    g_set_error (error, EXEC_ERROR, errsv, "results %s: %s", path, g_strerror (errsv));
    return NULL;
  }
  ExecResults *res = g_new0 (ExecResults, 1);
  res->dirfd = fd;
  res->path = g_strdup (path);
  return res;
}

void
exec_results_close (ExecResults *res)
{
  if (!res)
    return;
  close (res->dirfd);
  g_free (res->path);
  g_free (res);
}

gboolean
exec_write_all (int fd, const guint8 *data, gsize len)
{
  while (len) {
    ssize_t n = write (fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return FALSE;
    if (n == 0) {
      errno = EIO;
      return FALSE;
    }
    data += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* All of `file` (from offset 0) into fd: copy_file_range, in the kernel, else pread and
 * write. */
static gboolean
copy_all (int fd, int file)
{
  loff_t pos = 0;
  for (;;) {
    ssize_t n = copy_file_range (file, &pos, fd, NULL, 1 << 30, 0);
    if (n == 0)
      return TRUE;
    if (n > 0)
      continue;
    if (errno == EINTR)
      continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
      return FALSE;
    break;
  }
  static guint8 buf[1 << 16];
  for (;;) {
    ssize_t n = pread (file, buf, sizeof buf, pos);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n == 0;
    if (!exec_write_all (fd, buf, (gsize) n))
      return FALSE;
    pos += n;
  }
}

/* One file of the task's folder, whole or not at all. */
static gboolean
put_file (int dir, const char *name, const ExecStream *stream)
{
  g_autofree char *tmp = g_strdup_printf (".%s.%08x.tmp", name, g_random_int ());
  int fd = openat (dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return FALSE;
  gboolean ok = stream->file >= 0 ? copy_all (fd, stream->file)
                                  : exec_write_all (fd, stream->data, stream->len);
  int errsv = errno;
  if (close (fd) != 0 && ok) {
    ok = FALSE;
    errsv = errno;
  }
  if (ok && renameat (dir, tmp, dir, name) == 0)
    return TRUE;
  errsv = ok ? errno : errsv;
  unlinkat (dir, tmp, 0);
  errno = errsv;
  return FALSE;
}

gboolean
exec_results_write (ExecResults *res, guint64 seq, const ExecStream *out,
                    const ExecStream *err, int exitval, int signal, GError **error)
{
  char name[32];
  g_snprintf (name, sizeof name, "%" G_GUINT64_FORMAT, seq);
  if (mkdirat (res->dirfd, name, 0755) != 0 && errno != EEXIST)
    goto fail;
  int dir = openat (res->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0)
    goto fail;
  char ev[16], sg[16];
  int ev_len = g_snprintf (ev, sizeof ev, "%d\n", exitval);
  int sg_len = g_snprintf (sg, sizeof sg, "%d\n", signal);
  ExecStream exitval_text = { (const guint8 *) ev, (gsize) ev_len, -1 };
  ExecStream signal_text = { (const guint8 *) sg, (gsize) sg_len, -1 };
  gboolean ok = put_file (dir, "stdout", out) && put_file (dir, "stderr", err) &&
                put_file (dir, "exitval", &exitval_text) && put_file (dir, "signal", &signal_text);
  int errsv = errno;
  close (dir);
  if (ok)
    return TRUE;
  errno = errsv;
fail:;
  int e = errno;
  g_set_error (error, EXEC_ERROR, e, "results %s/%s: %s", res->path, name, g_strerror (e));
  return FALSE;
}
