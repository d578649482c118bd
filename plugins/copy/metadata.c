/* metadata.c — what `cp -a` keeps besides the bytes: owner and group (when run as root),
 * mode, extended attributes (ACLs are the system.posix_acl_* attributes), and access and
 * modification times to the nanosecond.
 *
 * Order matters: owner first (chown clears set-user-ID bits), then mode, then xattrs (an
 * ACL rewrites the group bits consistently with the mode it encodes), then times last,
 * because every other change touches ctime and some touch mtime.  An xattr the
 * destination filesystem does not support (ENOTSUP) is passed over, like cp -a does.
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

typedef ssize_t (*ListFn) (gpointer obj, char *list, size_t size);
typedef ssize_t (*GetFn) (gpointer obj, const char *name, void *value, size_t size);
typedef int (*SetFn) (gpointer obj, const char *name, const void *value, size_t size);

/* Copies every xattr from src to dst through the given accessors. */
static gboolean
copy_xattrs (ListFn list, GetFn get, gpointer src, SetFn set, gpointer dst, gboolean special,
             GError **error)
{
  ssize_t n = list (src, NULL, 0);
  if (n < 0)
    return errno == ENOTSUP || errno == EOPNOTSUPP ? TRUE : copy_fail (error, errno, "listxattr");
  if (n == 0)
    return TRUE;
  g_autofree char *names = g_malloc ((gsize) n);
  n = list (src, names, (size_t) n);
  if (n < 0)
    return copy_fail (error, errno, "listxattr");
  for (char *name = names; name < names + n; name += strlen (name) + 1) {
    ssize_t vn = get (src, name, NULL, 0);
    if (vn < 0)
      continue; /* gone meanwhile */
    g_autofree char *value = g_malloc ((gsize) vn + 1);
    vn = get (src, name, value, (size_t) vn);
    if (vn < 0)
      continue;
    if (set (dst, name, value, (size_t) vn) < 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP)
        continue;
      if (errno == EPERM && (special || g_str_has_prefix (name, "trusted.") ||
                             g_str_has_prefix (name, "security.")))
        continue; /* not ours to copy without privilege, or user.* on a symlink or FIFO */
      g_autofree char *what = g_strdup_printf ("setxattr %s", name);
      return copy_fail (error, errno, what);
    }
  }
  return TRUE;
}

static ssize_t
f_list (gpointer fd, char *l, size_t s)
{
  return flistxattr (GPOINTER_TO_INT (fd), l, s);
}

static ssize_t
f_get (gpointer fd, const char *n, void *v, size_t s)
{
  return fgetxattr (GPOINTER_TO_INT (fd), n, v, s);
}

static int
f_set (gpointer fd, const char *n, const void *v, size_t s)
{
  return fsetxattr (GPOINTER_TO_INT (fd), n, v, s, 0);
}

static ssize_t
l_list (gpointer path, char *l, size_t s)
{
  return llistxattr (path, l, s);
}

static ssize_t
l_get (gpointer path, const char *n, void *v, size_t s)
{
  return lgetxattr (path, n, v, s);
}

static int
l_set (gpointer path, const char *n, const void *v, size_t s)
{
  return lsetxattr (path, n, v, s, 0);
}

gboolean
meta_apply_fd (int fd, const struct stat *st, int src_fd, const CopyOptions *o, GError **error)
{
  if ((o->preserve & PRESERVE_OWNERSHIP) && fchown (fd, st->st_uid, st->st_gid) < 0)
    return copy_fail (error, errno, "chown");
  mode_t mode = (o->preserve & PRESERVE_MODE) ? st->st_mode & 07777 : st->st_mode & 0777 & ~o->umask;
  if (fchmod (fd, mode) < 0)
    return copy_fail (error, errno, "chmod");
  if ((o->preserve & PRESERVE_XATTR) && src_fd >= 0 &&
      !copy_xattrs (f_list, f_get, GINT_TO_POINTER (src_fd), f_set, GINT_TO_POINTER (fd), FALSE,
                    error))
    return FALSE;
  if (o->preserve & PRESERVE_TIMESTAMPS) {
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (futimens (fd, times) < 0)
      return copy_fail (error, errno, "utimens");
  }
  return TRUE;
}

gboolean
meta_apply_at (int dirfd, const char *name, const struct stat *st, int src_dirfd,
               const char *src_name, const CopyOptions *o, GError **error)
{
  gboolean is_link = S_ISLNK (st->st_mode);
  if ((o->preserve & PRESERVE_OWNERSHIP) &&
      fchownat (dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return copy_fail (error, errno, "chown");
  /* a symlink has no mode of its own on Linux */
  mode_t mode = (o->preserve & PRESERVE_MODE) ? st->st_mode & 07777 : st->st_mode & 0777 & ~o->umask;
  if (!is_link && fchmodat (dirfd, name, mode, 0) < 0)
    return copy_fail (error, errno, "chmod");
  if ((o->preserve & PRESERVE_XATTR) && src_dirfd >= 0) {
    /* The l*xattr calls take paths: /proc/self/fd/N/NAME names the entry itself. */
    g_autofree char *src = g_strdup_printf ("/proc/self/fd/%d/%s", src_dirfd, src_name);
    g_autofree char *dst = g_strdup_printf ("/proc/self/fd/%d/%s", dirfd, name);
    if (!copy_xattrs (l_list, l_get, src, l_set, dst, TRUE, error))
      return FALSE;
  }
  if (o->preserve & PRESERVE_TIMESTAMPS) {
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (utimensat (dirfd, name, times, AT_SYMLINK_NOFOLLOW) < 0)
      return copy_fail (error, errno, "utimensat");
  }
  return TRUE;
}
