/* common.c — the copy plugin's options and the helpers both the parent and the workers
 * use: payload encoding, folders opened without following symlinks, source files and
 * temporaries opened by descriptor and checked, temporary names and their sweep. */
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static guint
parse_preserve (const char *text, GError **error)
{
  if (g_str_equal (text, "all"))
    return PRESERVE_ALL;
  if (g_str_equal (text, "none"))
    return 0;
  guint bits = 0;
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (int i = 0; parts[i]; i++) {
    const char *p = g_strstrip (parts[i]);
    if (g_str_equal (p, "mode"))
      bits |= PRESERVE_MODE;
    else if (g_str_equal (p, "ownership"))
      bits |= PRESERVE_OWNERSHIP;
    else if (g_str_equal (p, "timestamps"))
      bits |= PRESERVE_TIMESTAMPS;
    else if (g_str_equal (p, "xattr"))
      bits |= PRESERVE_XATTR;
    else {
      g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                   "'preserve': '%s' is not all, none, or a list of mode, ownership, "
                   "timestamps, xattr", p);
      return G_MAXUINT;
    }
  }
  return bits;
}

gboolean
copy_options_load (const TrConfig *config, CopyOptions *o, GError **error)
{
  memset (o, 0, sizeof *o);
  const char *ie = tr_config_get_string (config, "if_exists");
  o->if_exists = g_str_equal (ie, "overwrite") ? IF_EXISTS_OVERWRITE
                 : g_str_equal (ie, "skip")    ? IF_EXISTS_SKIP
                 : g_str_equal (ie, "error")   ? IF_EXISTS_ERROR
                                               : IF_EXISTS_UPDATE;
  o->preserve = parse_preserve (tr_config_get_string (config, "preserve"), error);
  if (o->preserve == G_MAXUINT)
    return FALSE;
  o->source = g_strdup (tr_config_get_string (config, "source"));
  o->destination = g_strdup (tr_config_get_string (config, "destination"));
  o->chunk_size = (guint64) tr_config_get_int (config, "chunk_size");
  o->fsync = tr_config_get_bool (config, "fsync");
  o->verify = tr_config_get_bool (config, "verify");
  o->is_root = geteuid () == 0;
  o->umask = umask (022);
  umask (o->umask);
  if (!o->is_root)
    o->preserve &= ~(guint) PRESERVE_OWNERSHIP;
  return TRUE;
}

void
copy_options_clear (CopyOptions *o)
{
  g_free (o->source);
  g_free (o->destination);
}

void
payload_put_u8 (GByteArray *b, guint8 v)
{
  g_byte_array_append (b, &v, 1);
}

void
payload_put_u64 (GByteArray *b, guint64 v)
{
  guint8 x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (guint8) (v >> (8 * i));
  g_byte_array_append (b, x, 8);
}

void
payload_put_str (GByteArray *b, const char *s, gsize len)
{
  payload_put_u64 (b, len);
  g_byte_array_append (b, (const guint8 *) s, len);
}

void
stat_key_from (StatKey *k, const struct stat *st)
{
  k->dev = (guint64) st->st_dev;
  k->ino = (guint64) st->st_ino;
  k->size = (guint64) st->st_size;
  k->mtime_sec = (guint64) st->st_mtim.tv_sec;
  k->mtime_nsec = (guint64) st->st_mtim.tv_nsec;
}

gboolean
stat_key_same_version (const StatKey *k, const struct stat *st)
{
  StatKey now;
  stat_key_from (&now, st);
  return memcmp (k, &now, sizeof now) == 0;
}

void
payload_put_key (GByteArray *b, const StatKey *k)
{
  payload_put_u64 (b, k->dev);
  payload_put_u64 (b, k->ino);
  payload_put_u64 (b, k->size);
  payload_put_u64 (b, k->mtime_sec);
  payload_put_u64 (b, k->mtime_nsec);
}

void
payload_get_key (PayloadReader *r, StatKey *k)
{
  k->dev = payload_get_u64 (r);
  k->ino = payload_get_u64 (r);
  k->size = payload_get_u64 (r);
  k->mtime_sec = payload_get_u64 (r);
  k->mtime_nsec = payload_get_u64 (r);
}

void
payload_put_ids (GByteArray *b, const FolderIds *ids)
{
  payload_put_u64 (b, ids->src_dev);
  payload_put_u64 (b, ids->src_ino);
  payload_put_u64 (b, ids->dst_dev);
  payload_put_u64 (b, ids->dst_ino);
}

void
payload_get_ids (PayloadReader *r, FolderIds *ids)
{
  ids->src_dev = payload_get_u64 (r);
  ids->src_ino = payload_get_u64 (r);
  ids->dst_dev = payload_get_u64 (r);
  ids->dst_ino = payload_get_u64 (r);
}

gboolean
folder_ids_match (const FolderIds *ids, int src, int dst)
{
  struct stat st;
  if (src >= 0 && (fstat (src, &st) < 0 || (guint64) st.st_dev != ids->src_dev ||
                   (guint64) st.st_ino != ids->src_ino))
    return FALSE;
  if (dst >= 0 && (fstat (dst, &st) < 0 || (guint64) st.st_dev != ids->dst_dev ||
                   (guint64) st.st_ino != ids->dst_ino))
    return FALSE;
  return TRUE;
}

guint64
payload_get_u64 (PayloadReader *r)
{
  if (r->bad || r->end - r->p < 8) {
    r->bad = TRUE;
    return 0;
  }
  guint64 v = 0;
  for (int i = 0; i < 8; i++)
    v |= (guint64) r->p[i] << (8 * i);
  r->p += 8;
  return v;
}

guint8
payload_get_u8 (PayloadReader *r)
{
  if (r->bad || r->p >= r->end) {
    r->bad = TRUE;
    return 0;
  }
  return *r->p++;
}

char *
payload_get_str (PayloadReader *r)
{
  guint64 n = payload_get_u64 (r);
  if (r->bad || (guint64) (r->end - r->p) < n) {
    r->bad = TRUE;
    return NULL;
  }
  char *s = g_strndup ((const char *) r->p, n);
  r->p += n;
  return s;
}

static guint32
temp_check (guint32 random_part)
{
  /* splitmix64's finaliser over the random digits and a fixed key */
  guint64 z = (guint64) random_part ^ G_GUINT64_CONSTANT (0x7461736b72756e21);
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return (guint32) (z ^ (z >> 31));
}

void
temp_name (char buf[TEMP_NAME_SIZE])
{
  guint32 r = g_random_int ();
  g_snprintf (buf, TEMP_NAME_SIZE, ".taskrun-%08x%08x.tmp", r, temp_check (r));
}

gboolean
is_temp_name (const char *name)
{
  if (strlen (name) != 29 || !g_str_has_prefix (name, ".taskrun-") || !g_str_has_suffix (name, ".tmp"))
    return FALSE;
  guint32 part[2] = { 0, 0 };
  for (int i = 9; i < 25; i++) {
    if (!g_ascii_isxdigit (name[i]) || g_ascii_isupper (name[i]))
      return FALSE;
    part[(i - 9) / 8] = part[(i - 9) / 8] << 4 | (guint32) g_ascii_xdigit_value (name[i]);
  }
  return temp_check (part[0]) == part[1];
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
read_names (int dirfd)
{
  int fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (!d) {
    int e = errno;
    if (fd >= 0)
      close (fd);
    errno = e;
    return NULL;
  }
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  struct dirent *e;
  errno = 0;
  while ((e = readdir (d))) {
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
      continue;
    g_ptr_array_add (names, g_strdup (e->d_name));
  }
  int err = errno;
  closedir (d);
  if (err) {
    g_ptr_array_unref (names);
    errno = err;
    return NULL;
  }
  g_ptr_array_sort (names, compare_names);
  return names;
}

void
remove_leftovers (int dst_dir, int src_dir)
{
  g_autoptr (GPtrArray) names = read_names (dst_dir);
  for (guint i = 0; names && i < names->len; i++) {
    const char *n = g_ptr_array_index (names, i);
    struct stat st;
    if (!is_temp_name (n) || fstatat (dst_dir, n, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        S_ISDIR (st.st_mode))
      continue;
    if (src_dir >= 0 && faccessat (src_dir, n, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
      continue; /* the source has an entry of that name: it is a copy, not a leftover */
    unlinkat (dst_dir, n, 0);
  }
}

int
open_source_file (int dirfd, const char *name, const StatKey *want, GError **error)
{
  int fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP)
      g_set_error (error, TR_TASK_ERROR, e | COPY_ENTRY_ONLY,
                   "open: it became a symlink since the walk saw it; not copied");
    else
      copy_fail_source (error, e, e == ENOENT ? "open (it vanished since the walk saw it)" : "open");
    return -1;
  }
  struct stat st;
  const char *changed = NULL;
  if (fstat (fd, &st) < 0)
    changed = "fstat failed";
  else if (!S_ISREG (st.st_mode))
    changed = "it is no longer a regular file";
  else if (!want)
    return fd;
  else if ((guint64) st.st_dev != want->dev || (guint64) st.st_ino != want->ino)
    changed = "it was replaced by another file";
  else if (!stat_key_same_version (want, &st))
    changed = "it changed";
  if (changed) {
    close (fd);
    g_set_error (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                 "%s since the walk saw it; not copied (run the job again)", changed);
    return -1;
  }
  return fd;
}

void
unlink_temporary (int dst_dir, const char *name, guint64 dev, guint64 ino)
{
  struct stat st;
  if (fstatat (dst_dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (guint64) st.st_dev == dev &&
      (guint64) st.st_ino == ino)
    unlinkat (dst_dir, name, 0);
}

void
make_writable (int dir_fd)
{
  struct stat st;
  if (geteuid () != 0 && fstat (dir_fd, &st) == 0 && st.st_uid == geteuid () &&
      (st.st_mode & 0700) != 0700)
    fchmod (dir_fd, (st.st_mode & 07777) | 0700);
}

int
open_temporary (int dirfd, const char *name, int flags, guint64 dev, guint64 ino, GError **error)
{
  int fd = openat (dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    copy_fail (error, errno, "open the partial copy");
    return -1;
  }
  struct stat st;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || (guint64) st.st_dev != dev ||
      (guint64) st.st_ino != ino || st.st_nlink != 1) {
    close (fd);
    g_set_error (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                 "the partial copy %s was replaced by another file while it was written; "
                 "not copied", name);
    return -1;
  }
  return fd;
}

void
split_rel (const char *rel, char **dir, const char **name)
{
  const char *slash = strrchr (rel, '/');
  if (!slash) {
    *dir = g_strdup ("");
    *name = rel;
  } else {
    *dir = g_strndup (rel, slash - rel);
    *name = slash + 1;
  }
}

gboolean
copy_same_file (const struct stat *s, const struct stat *d)
{
  return s->st_size == d->st_size && s->st_mtim.tv_sec == d->st_mtim.tv_sec &&
         s->st_mtim.tv_nsec == d->st_mtim.tv_nsec;
}

gboolean
copy_fail (GError **error, int e, const char *what)
{
  g_set_error (error, TR_TASK_ERROR, e, "%s: %s", what, g_strerror (e));
  return FALSE;
}

gboolean
copy_fail_source (GError **error, int e, const char *what)
{
  g_set_error (error, TR_TASK_ERROR, e | COPY_ENTRY_ONLY, "%s: %s", what, g_strerror (e));
  return FALSE;
}

gboolean
copy_errno_is_fatal (int code)
{
  return code == ENOSPC || code == EIO || code == EDQUOT || code == EROFS;
}
