/* stdout.c — taskrun's standard output, written and closed with every failure seen.
 *
 * Owns: the one way taskrun writes its product to stdout, and its final flush and close.
 * Does not own: what is written (runner.c, main.c, loader.c), stderr.
 */
#include "stdout.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* Everything taskrun writes on stdout (results, --dry-run, --list-plugins, --describe,
 * --version) is the product of the command, so a write that fails (a full disk, a closed
 * descriptor, EIO) must not pass unnoticed: the first failure is reported on stderr at
 * once, later writes are dropped, and the command exits 1, as sha256sum and cp do.
 * SIGPIPE stays at its default, so `taskrun ... | head -1` ends like any other filter
 * (status 141). */
static int stdout_errno;          /* the first failed write's errno; 0: none yet */
static gboolean stdout_failed;
static gboolean stdout_closed;
static gboolean stdout_missing;   /* closed when taskrun started: /dev/null holds its place */

static void
stdout_fail (int e)
{
  if (stdout_failed)
    return;
  stdout_failed = TRUE;
  stdout_errno = e;
  if (e)
    g_printerr ("taskrun: cannot write to standard output: %s\n", g_strerror (e));
  else
    g_printerr ("taskrun: cannot write to standard output\n");
}

void
tr_std_fds_open (void)
{
  /* Descriptors 0, 1 and 2 closed when taskrun started (>&-, a daemon, cron) would be
   * the first ones the pool makes (its eventfd, a worker's socket): result lines would go
   * into the eventfd and messages into a worker's link.  /dev/null holds their places;
   * a write to a stdout that was closed still fails, as a write to a closed one would. */
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl (fd, F_GETFD) >= 0 || errno != EBADF)
      continue;
    int null = open ("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null >= 0 && null != fd) {
      dup2 (null, fd);
      close (null);
    }
    if (fd == 1)
      stdout_missing = TRUE;
  }
}

gboolean
tr_stdout_write (const char *text, gsize len)
{
  if (stdout_failed)
    return FALSE;
  if (stdout_missing && len) {
    stdout_fail (EBADF);
    return FALSE;
  }
  errno = 0;
  /* stdout is line-buffered (main.c): a line that ends in '\n' is written here, and a
   * failure sets the stream's error flag */
  if (fwrite (text, 1, len, stdout) != len || ferror (stdout)) {
    stdout_fail (errno);
    return FALSE;
  }
  return TRUE;
}

gboolean
tr_stdout_flush (void)
{
  if (stdout_failed)
    return FALSE;
  errno = 0;
  if (fflush (stdout) != 0 || ferror (stdout)) {
    stdout_fail (errno);
    return FALSE;
  }
  return TRUE;
}

static void
wait_writable (int fd)
{
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  poll (&p, 1, -1);
}

gboolean
tr_write_fully (int fd, const void *bytes, gsize len)
{
  const guint8 *data = bytes;
  while (len) {
    gssize n = write (fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      wait_writable (fd);
      continue;
    }
    if (n <= 0) {
      if (n == 0)
        errno = EIO;
      return FALSE;
    }
    data += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* Before bytes go to fd 1 or 2 with write(2): what stdio holds goes first, and a stdout
 * closed when taskrun started fails as stdout's writes do.  FALSE: write nothing. */
static gboolean
raw_write_begin (int fd, gsize len)
{
  if (fd == 1 ? !tr_stdout_flush () : fflush (stderr) != 0)
    return FALSE;
  if (fd == 1 && stdout_missing && len) {
    stdout_fail (EBADF);
    return FALSE;
  }
  return TRUE;
}

/* One chunk of `file` at *pos to fd: sendfile (the kernel copies, for a pipe, a file or
 * a terminal alike), else pread and write.  Returns the bytes written, 0 at the file's
 * end, -1 with errno set and *reading saying which side failed.  A non-blocking fd
 * (inherited so) is waited for. */
static gssize
copy_chunk (int fd, int file, off_t *pos, gboolean *use_sendfile, gboolean *reading)
{
  enum { CHUNK = 1 << 20 };
  for (;;) {
    gssize n;
    *reading = FALSE;
    if (*use_sendfile) {
      n = sendfile (fd, file, pos, CHUNK);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
        *use_sendfile = FALSE;
        continue;
      }
      /* sendfile does not say which side failed: EIO and the like come from the file */
      *reading = n < 0 && errno != EAGAIN && errno != EPIPE && errno != ENOSPC &&
                 errno != EDQUOT && errno != EFBIG && errno != EBADF;
    } else {
      static guint8 buf[CHUNK]; /* main thread only, as every writer of stdout */
      n = pread (file, buf, CHUNK, *pos);
      if (n <= 0) {
        *reading = n < 0;
        if (n < 0 && errno == EINTR)
          continue;
        return n;
      }
      if (!tr_write_fully (fd, buf, (gsize) n))
        return -1;
      *pos += n;
      return n;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      wait_writable (fd);
      continue;
    }
    return n;
  }
}

gboolean
tr_std_write_bytes (int fd, const void *data, gsize len)
{
  if (!raw_write_begin (fd, len))
    return FALSE;
  if (tr_write_fully (fd, data, len))
    return TRUE;
  if (fd == 1)
    stdout_fail (errno);
  return FALSE;
}

gboolean
tr_std_write_file (int fd, int file, int *read_errno)
{
  *read_errno = 0;
  if (!raw_write_begin (fd, 1)) /* an empty file fails on a missing stdout too */
    return FALSE;
  off_t pos = 0;
  gboolean use_sendfile = TRUE, reading = FALSE;
  gssize n;
  while ((n = copy_chunk (fd, file, &pos, &use_sendfile, &reading)) > 0)
    ;
  if (n == 0)
    return TRUE;
  if (reading)
    *read_errno = errno ? errno : EIO;
  else if (fd == 1)
    stdout_fail (errno);
  return FALSE;
}

/* Run at exit from main, and as an atexit handler for the paths that call exit() (GOption
 * prints --help and exits): what is still buffered is written, and a failure at this
 * last step counts like any other. */
int
tr_stdout_close (int status)
{
  if (stdout_closed)
    return status;
  stdout_closed = TRUE;
  errno = 0;
  if (!stdout_failed && (fflush (stdout) != 0 || ferror (stdout)))
    stdout_fail (errno);
  /* A stdout closed before taskrun started (>&-) with nothing written to it is no
   * failure: there was nothing to lose (gnulib's close_stdout rule). */
  errno = 0;
  if (fclose (stdout) != 0 && errno != EBADF)
    stdout_fail (errno);
  return stdout_failed && status == 0 ? 1 : status; /* TR_EXIT_OK, TR_EXIT_FAILED */
}

