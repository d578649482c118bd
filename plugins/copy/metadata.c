/* metadata.c — what `cp -a` keeps besides the bytes: owner and group (when run as root),
 * mode, extended attributes (ACLs are the system.posix_acl_* attributes), and access and
 * modification times to the nanosecond.
 *
 * Order matters: owner first (chown clears set-user-ID bits), then mode, then xattrs (an
 * ACL rewrites the group bits consistently with the mode it encodes), then times last,
 * because every other change touches ctime and some touch mtime.  An xattr the
 * destination filesystem does not support (ENOTSUP) is passed over, like cp -a does.
 * With xattrs preserved, the copy ends with exactly the source's: what it got on its own
 * (an access ACL inherited from its folder's default ACL) is removed, as rsync -AX does.
 *
 * Every call works on a descriptor: a real one for files and folders, an O_PATH one for
 * entries that cannot be opened (symlinks, FIFOs, sockets, devices), reached through its
 * /proc/self/fd link, which names the inode the descriptor holds, never a path an
 * attacker could swap for a symlink.
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* One entry's xattrs, through a real descriptor or an O_PATH one's /proc link. */
typedef struct {
  int fd;
  gboolean by_path;
  char path[32];
} Obj;

static Obj
obj_fd (int fd)
{
  return (Obj) { .fd = fd, .by_path = FALSE };
}

static Obj
obj_path_fd (int fd)
{
  Obj o = { .fd = fd, .by_path = TRUE };
  g_snprintf (o.path, sizeof o.path, "/proc/self/fd/%d", fd);
  return o;
}

static ssize_t
obj_list (const Obj *o, char *list, size_t size)
{
  return o->by_path ? listxattr (o->path, list, size) : flistxattr (o->fd, list, size);
}

static ssize_t
obj_get (const Obj *o, const char *name, void *value, size_t size)
{
  return o->by_path ? getxattr (o->path, name, value, size) : fgetxattr (o->fd, name, value, size);
}

static int
obj_set (const Obj *o, const char *name, const void *value, size_t size)
{
  return o->by_path ? setxattr (o->path, name, value, size, 0)
                    : fsetxattr (o->fd, name, value, size, 0);
}

static int
obj_remove (const Obj *o, const char *name)
{
  return o->by_path ? removexattr (o->path, name) : fremovexattr (o->fd, name);
}

/* The names of o's xattrs ("" list when it has none or the filesystem has none). */
static gboolean
list_names (const Obj *o, char **names, ssize_t *n, GError **error)
{
  *names = NULL;
  for (;;) {
    ssize_t want = obj_list (o, NULL, 0);
    if (want < 0) {
      *n = 0;
      return errno == ENOTSUP || errno == EOPNOTSUPP ? TRUE : copy_fail (error, errno, "listxattr");
    }
    g_free (*names);
    *names = g_malloc ((gsize) want + 1);
    *n = obj_list (o, *names, (size_t) want);
    if (*n >= 0)
      return TRUE;
    if (errno != ERANGE) /* ERANGE: one was added meanwhile */
      return copy_fail (error, errno, "listxattr");
  }
}

static gboolean
has_name (const char *names, ssize_t n, const char *name)
{
  for (const char *p = names; p < names + n; p += strlen (p) + 1)
    if (strcmp (p, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
privileged_name (const char *name)
{
  return g_str_has_prefix (name, "trusted.") || g_str_has_prefix (name, "security.");
}

/* Makes dst's xattrs equal src's. */
static gboolean
copy_xattrs (const Obj *src, const Obj *dst, gboolean special, GError **error)
{
  g_autofree char *names = NULL, *have = NULL;
  ssize_t n, hn;
  if (!list_names (src, &names, &n, error) || !list_names (dst, &have, &hn, error))
    return FALSE;
  for (char *name = have; name < have + hn; name += strlen (name) + 1) {
    if (has_name (names, n, name))
      continue;
    if (obj_remove (dst, name) < 0 && errno != ENODATA && errno != ENOTSUP &&
        errno != EOPNOTSUPP && !(errno == EPERM && privileged_name (name))) {
      g_autofree char *what = g_strdup_printf ("removexattr %s", name);
      return copy_fail (error, errno, what);
    }
  }
  for (char *name = names; name < names + n; name += strlen (name) + 1) {
    ssize_t vn = obj_get (src, name, NULL, 0);
    if (vn < 0)
      continue; /* gone meanwhile */
    g_autofree char *value = g_malloc ((gsize) vn + 1);
    vn = obj_get (src, name, value, (size_t) vn);
    if (vn < 0)
      continue;
    if (obj_set (dst, name, value, (size_t) vn) < 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP)
        continue;
      if (errno == EPERM && (special || privileged_name (name)))
        continue; /* not ours to copy without privilege, or user.* on a symlink or FIFO */
      g_autofree char *what = g_strdup_printf ("setxattr %s", name);
      return copy_fail (error, errno, what);
    }
  }
  return TRUE;
}

static mode_t
final_mode (const struct stat *st, const CopyOptions *o)
{
  return (o->preserve & PRESERVE_MODE) ? st->st_mode & 07777 : st->st_mode & 0777 & ~o->umask;
}

gboolean
meta_apply_fd (int fd, const struct stat *st, int src_fd, const CopyOptions *o, GError **error)
{
  if ((o->preserve & PRESERVE_OWNERSHIP) && fchown (fd, st->st_uid, st->st_gid) < 0)
    return copy_fail (error, errno, "chown");
  if (fchmod (fd, final_mode (st, o)) < 0)
    return copy_fail (error, errno, "chmod");
  if ((o->preserve & PRESERVE_XATTR) && src_fd >= 0) {
    Obj src = obj_fd (src_fd), dst = obj_fd (fd);
    if (!copy_xattrs (&src, &dst, FALSE, error))
      return FALSE;
  }
  if (o->preserve & PRESERVE_TIMESTAMPS) {
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (futimens (fd, times) < 0)
      return copy_fail (error, errno, "utimens");
  }
  return TRUE;
}

gboolean
meta_apply_path (int path_fd, const struct stat *st, int src_path_fd, const CopyOptions *o,
                 GError **error)
{
  Obj dst = obj_path_fd (path_fd);
  if ((o->preserve & PRESERVE_OWNERSHIP) &&
      fchownat (path_fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
    return copy_fail (error, errno, "chown");
  /* a symlink has no mode of its own on Linux; the /proc link of any other entry's O_PATH
   * descriptor leads to that entry alone */
  if (!S_ISLNK (st->st_mode) && chmod (dst.path, final_mode (st, o)) < 0)
    return copy_fail (error, errno, "chmod");
  if ((o->preserve & PRESERVE_XATTR) && src_path_fd >= 0) {
    Obj src = obj_path_fd (src_path_fd);
    if (!copy_xattrs (&src, &dst, TRUE, error))
      return FALSE;
  }
  if (o->preserve & PRESERVE_TIMESTAMPS) {
    struct timespec times[2] = { st->st_atim, st->st_mtim };
    if (utimensat (AT_FDCWD, dst.path, times, 0) < 0)
      return copy_fail (error, errno, "utimensat");
  }
  return TRUE;
}
