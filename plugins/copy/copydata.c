/* copydata.c — moving a file's bytes: a clone where the filesystem shares extents
 * (FICLONE), else copy_file_range, else read/write; holes stay holes (only the data
 * regions that SEEK_DATA / SEEK_HOLE report are copied into a destination already sized
 * with ftruncate).
 *
 * Fallback follows coreutils' rule: copy_file_range may give way to read/write only
 * before it has written a byte of this range (ENOSYS, EXDEV, EINVAL, EOPNOTSUPP, EPERM,
 * ETXTBSY, EBADF: "not here"); once bytes were written, any error is the file's error.
 * Every error carries its errno as the GError code, with COPY_ENTRY_ONLY for the
 * source's errors, so the parent can tell a full disk from an unreadable or changing file.
 */
#include "copy.h"

#include <errno.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BUFFER_SIZE (1 << 20)

static gboolean
cfr_unsupported (int e)
{
  return e == ENOSYS || e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == EPERM ||
         e == ETXTBSY || e == EBADF;
}

/* Buffer `i` (0 or 1) of BUFFER_SIZE bytes, made once: a worker is a process of its own
 * and copies one range at a time. */
static guint8 *
scratch (int i)
{
  static guint8 *buffers[2];
  if (!buffers[i])
    buffers[i] = g_malloc (BUFFER_SIZE);
  return buffers[i];
}

/* Copies [from, to) with read/write. */
static gboolean
copy_rw (int src, int dst, guint64 from, guint64 to, guint64 *copied, GError **error)
{
  guint8 *buf = scratch (0);
  while (from < to) {
    gsize want = (gsize) MIN ((guint64) BUFFER_SIZE, to - from);
    ssize_t n = pread (src, buf, want, (off_t) from);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return copy_fail_source (error, errno, "read");
    if (n == 0)
      return copy_fail_source (error, EAGAIN, "read: the source file shrank while it was copied");
    gsize done = 0;
    while (done < (gsize) n) {
      ssize_t w = pwrite (dst, buf + done, (gsize) n - done, (off_t) (from + done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return copy_fail (error, errno, "write");
      done += (gsize) w;
    }
    from += (guint64) n;
    *copied += (guint64) n;
  }
  return TRUE;
}

/* Copies one data region [from, to). *wrote tracks whether copy_file_range has written
 * anything of this range yet (after that, no fallback). */
static gboolean
copy_region (int src, int dst, guint64 from, guint64 to, gboolean *use_cfr, gboolean *wrote,
             guint64 *copied, GError **error)
{
  while (from < to && *use_cfr) {
    loff_t in = (loff_t) from, out = (loff_t) from;
    ssize_t n = copy_file_range (src, &in, dst, &out, (size_t) MIN (to - from, (guint64) 1 << 30), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      if (!*wrote && cfr_unsupported (errno)) {
        *use_cfr = FALSE; /* before the first byte: fall back */
        break;
      }
      if (errno == EIO) {
        /* either side's: read/write on the rest tells which */
        *use_cfr = FALSE;
        break;
      }
      return copy_fail (error, errno, "copy_file_range");
    }
    if (n == 0)
      return copy_fail_source (error, EAGAIN,
                               "copy_file_range: the source file shrank while it was copied");
    *wrote = TRUE;
    from += (guint64) n;
    *copied += (guint64) n;
  }
  return from >= to || copy_rw (src, dst, from, to, copied, error);
}

gboolean
copy_range (int src, int dst, guint64 offset, guint64 length, gboolean *try_clone,
            gboolean maybe_sparse, guint64 *copied, GError **error)
{
  *copied = 0;
  if (length == 0)
    return TRUE;
  if (try_clone && *try_clone) {
    if (ioctl (dst, FICLONE, src) == 0) {
      *copied = length;
      return TRUE;
    }
    if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV || errno == EINVAL)
      *try_clone = FALSE; /* this filesystem does not clone: stop asking */
  }
  guint64 end = offset + length;
  gboolean use_cfr = TRUE, wrote = FALSE;
  if (!maybe_sparse)
    return copy_region (src, dst, offset, end, &use_cfr, &wrote, copied, error);
  guint64 pos = offset;
  while (pos < end) {
    off_t data = lseek (src, (off_t) pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO)
        break; /* only a hole is left */
      /* no SEEK_DATA here: all of it is data */
      return copy_region (src, dst, pos, end, &use_cfr, &wrote, copied, error);
    }
    if ((guint64) data >= end)
      break;
    off_t hole = lseek (src, data, SEEK_HOLE);
    guint64 stop = hole < 0 ? end : MIN ((guint64) hole, end);
    if (!copy_region (src, dst, (guint64) data, stop, &use_cfr, &wrote, copied, error))
      return FALSE;
    pos = stop;
  }
  return TRUE;
}

gboolean
verify_range (int src, int dst, guint64 offset, guint64 length, GError **error)
{
  guint8 *a = scratch (0), *b = scratch (1);
  guint64 pos = offset, end = offset + length;
  while (pos < end) {
    gsize want = (gsize) MIN ((guint64) BUFFER_SIZE, end - pos);
    ssize_t na = pread (src, a, want, (off_t) pos);
    if (na < 0)
      return copy_fail_source (error, errno, "verify: read the source");
    ssize_t nb = pread (dst, b, want, (off_t) pos);
    if (nb < 0)
      return copy_fail (error, errno, "verify: read the copy");
    if (na != nb || na == 0 || memcmp (a, b, (gsize) na) != 0) {
      /* the source changed, or the destination gave back other bytes: this file's
       * failure either way */
      g_set_error (error, TR_TASK_ERROR, EIO | COPY_ENTRY_ONLY,
                   "verify: the copy differs from the source near byte %" G_GUINT64_FORMAT, pos);
      return FALSE;
    }
    pos += (guint64) na;
  }
  return TRUE;
}
