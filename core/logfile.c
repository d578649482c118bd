/* logfile.c — opening the files a run writes about itself as it goes: the job log, the
 * trace, the results file.
 *
 * Owns: the rule that such a file is a regular file (or a symlink to one, followed as
 * GNU parallel and cp do), checked before anything is written to it, and the check of a
 * path before a run starts.
 * Does not own: what is written (joblog.c, trace.c, results.c), or when.
 */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* A FIFO that nobody reads would block open() for good, with taskrun deaf to SIGINT,
 * and a device or a socket is no log that a reader could read back: the file is opened
 * without blocking (O_NONBLOCK: a FIFO without a reader fails at once with ENXIO),
 * checked, and only then emptied by the caller (O_TRUNC would empty it before the check
 * could refuse it). */
int
tr_logfile_open (const char *path, int flags, const char *what, GError **error)
{
  int fd = open (path, flags | O_NONBLOCK | O_CLOEXEC, 0666);
  struct stat st;
  int e = errno;
  if (fd >= 0 && fstat (fd, &st) == 0 && S_ISREG (st.st_mode)) {
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
  }
  if (fd >= 0 || e == ENXIO) {
    if (fd >= 0)
      close (fd);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "%s %s is not a regular file (a FIFO, a device or a socket cannot be one)",
                 what, path);
    return -1;
  }
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "cannot %s %s %s: %s",
               e == ENOENT && (flags & O_CREAT) ? "create" : "open", what, path, g_strerror (e));
  return -1;
}

gboolean
tr_logfile_check (const char *path, const char *what, GError **error)
{
  g_autoptr (GError) e = NULL;
  int fd = tr_logfile_open (path, O_RDONLY, what, &e);
  if (fd >= 0) {
    close (fd);
    if (access (path, W_OK) == 0)
      return TRUE;
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), "cannot write %s %s: %s",
                 what, path, g_strerror (err));
    return FALSE;
  }
  if (!g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  g_autofree char *dir = g_path_get_dirname (path);
  if (access (dir, W_OK | X_OK) != 0) {
    int err = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (err), "cannot create %s %s: %s",
                 what, path, g_strerror (err));
    return FALSE;
  }
  return TRUE;
}
