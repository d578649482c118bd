/* common.c — the copy plugin's options and the helpers both the parent and the workers
 * use: payload encoding, folders opened without following symlinks, temporary names. */
#include "copy.h"

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

int
open_dir_rel (int root_fd, const char *rel, gboolean create)
{
  int fd = fcntl (root_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0 || !*rel)
    return fd;
  const char *p = rel;
  while (*p) {
    const char *slash = strchr (p, '/');
    gsize len = slash ? (gsize) (slash - p) : strlen (p);
    char comp[NAME_MAX + 1];
    if (len == 0 || len > NAME_MAX) {
      close (fd);
      errno = len ? ENAMETOOLONG : EINVAL;
      return -1;
    }
    memcpy (comp, p, len);
    comp[len] = '\0';
    int next = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat (fd, comp, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
      }
      next = openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    int e = errno;
    close (fd);
    if (next < 0) {
      errno = e == ELOOP ? ENOTDIR : e; /* a symlink where a folder belongs: not followed */
      return -1;
    }
    fd = next;
    p += len;
    if (*p == '/')
      p++;
  }
  return fd;
}

void
temp_name (char buf[TEMP_NAME_SIZE])
{
  guint64 r = ((guint64) g_random_int () << 32) | g_random_int ();
  g_snprintf (buf, TEMP_NAME_SIZE, ".taskrun-%016" G_GINT64_MODIFIER "x.tmp", r);
}

gboolean
is_temp_name (const char *name)
{
  if (strlen (name) != 29 || !g_str_has_prefix (name, ".taskrun-") || !g_str_has_suffix (name, ".tmp"))
    return FALSE;
  for (int i = 9; i < 25; i++)
    if (!g_ascii_isxdigit (name[i]) || g_ascii_isupper (name[i]))
      return FALSE;
  return TRUE;
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
copy_errno_is_fatal (int e)
{
  return e == ENOSPC || e == EIO || e == EDQUOT || e == EROFS;
}
