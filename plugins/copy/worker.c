/* worker.c — the copy plugin in a worker: copies the entries of a task, or one chunk of
 * a big file.
 *
 * Every entry is written under a temporary name in its destination folder, given its
 * metadata, and renamed into place, so a file at its final name is always complete; a
 * failure removes the temporary.  Folders are reached one component at a time without
 * following symlinks, so nothing is ever written outside the destination.  The source and
 * destination folders of the last entry stay open, since the walk hands out the entries
 * of one folder together.
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  CopyOptions o;
  int src_root, dst_root;
  char *src_dir_rel, *dst_dir_rel;
  int src_dir, dst_dir;
  gboolean try_clone; /* FALSE once the destination said it cannot clone */
} CopyWorker;

static gboolean
fail_errno (GError **error, int e, const char *fmt, const char *path)
{
  g_set_error (error, TR_TASK_ERROR, e, fmt, path, g_strerror (e));
  return FALSE;
}

/* Whether `message` already names `rel` as a path ("open REL: ...", "rename into REL: ..."),
 * not merely contains its letters (an entry named "e" is in almost every message). */
static gboolean
names_entry (const char *message, const char *rel)
{
  gsize n = strlen (rel);
  for (const char *at = strstr (message, rel); at; at = strstr (at + 1, rel)) {
    gboolean starts = at == message || at[-1] == ' ';
    gboolean ends = at[n] == ':' || at[n] == ' ' || at[n] == '\0';
    if (starts && ends)
      return TRUE;
  }
  return FALSE;
}

static int
cached_dir (CopyWorker *w, gboolean dst, const char *rel)
{
  char **cached_rel = dst ? &w->dst_dir_rel : &w->src_dir_rel;
  int *cached_fd = dst ? &w->dst_dir : &w->src_dir;
  if (*cached_fd >= 0 && g_strcmp0 (*cached_rel, rel) == 0)
    return *cached_fd;
  if (*cached_fd >= 0)
    close (*cached_fd);
  g_free (*cached_rel);
  *cached_rel = g_strdup (rel);
  *cached_fd = open_dir_rel (dst ? w->dst_root : w->src_root, rel, FALSE);
  return *cached_fd;
}

static gboolean
open_roots (CopyWorker *w, GError **error)
{
  if (w->src_root < 0) {
    w->src_root = open (w->o.source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->src_root < 0)
      return fail_errno (error, errno, "source %s: %s", w->o.source);
  }
  if (w->dst_root < 0) {
    w->dst_root = open (w->o.destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dst_root < 0)
      return fail_errno (error, errno, "destination %s: %s", w->o.destination);
  }
  return TRUE;
}

static gboolean
same_entry (int src_dir, int dst_dir, const char *name, const struct stat *s,
            const struct stat *d)
{
  if ((s->st_mode & S_IFMT) != (d->st_mode & S_IFMT))
    return FALSE;
  if (S_ISREG (s->st_mode))
    return copy_same_file (s, d);
  if (S_ISLNK (s->st_mode)) {
    /* the same target, not only a target of the same length */
    char a[PATH_MAX + 1], b[PATH_MAX + 1];
    ssize_t n = readlinkat (src_dir, name, a, PATH_MAX);
    ssize_t m = readlinkat (dst_dir, name, b, PATH_MAX);
    return n >= 0 && n == m && memcmp (a, b, (size_t) n) == 0 && copy_same_file (s, d);
  }
  if (S_ISCHR (s->st_mode) || S_ISBLK (s->st_mode))
    return s->st_rdev == d->st_rdev;
  return TRUE; /* FIFOs */
}

/* Writes a regular file under `tmp` in dst_dir: data, verify, metadata, fsync. */
static gboolean
write_regular (CopyWorker *w, int src_dir, const char *name, int dst_dir, const char *tmp,
               const struct stat *st, guint64 *bytes, GError **error)
{
  int in = openat (src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return fail_errno (error, errno, "open %s: %s", name);
  int mode = w->o.verify ? O_RDWR : O_WRONLY; /* verify reads the copy back */
  int out = openat (dst_dir, tmp, mode | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    close (in);
    return fail_errno (error, e, "create %s: %s", tmp);
  }
  gboolean ok = TRUE;
  if (ftruncate (out, st->st_size) < 0)
    ok = fail_errno (error, errno, "truncate %s: %s", tmp);
  /* fewer allocated blocks than bytes: there may be holes to keep */
  gboolean sparse = (guint64) st->st_blocks * 512 < (guint64) st->st_size;
  ok = ok && copy_range (in, out, 0, (guint64) st->st_size, &w->try_clone, sparse, bytes, error);
  ok = ok && (!w->o.verify || verify_range (in, out, 0, (guint64) st->st_size, error));
  ok = ok && meta_apply_fd (out, st, in, &w->o, error);
  if (ok && w->o.fsync && fsync (out) < 0)
    ok = fail_errno (error, errno, "fsync %s: %s", tmp);
  close (in);
  if (close (out) < 0 && ok)
    ok = fail_errno (error, errno, "close %s: %s", tmp);
  return ok;
}

/* Copies one entry (relative path `rel`), counting what it did. */
static gboolean
copy_entry (CopyWorker *w, const char *rel, CopyCounts *c, GError **error)
{
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (rel, &dir, &name);
  int src_dir = cached_dir (w, FALSE, dir);
  if (src_dir < 0)
    return fail_errno (error, errno, "source folder %s: %s", *dir ? dir : ".");
  int dst_dir = cached_dir (w, TRUE, dir);
  if (dst_dir < 0)
    return fail_errno (error, errno, "destination folder %s: %s", *dir ? dir : ".");
  struct stat st, dst;
  if (fstatat (src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return fail_errno (error, errno, "%s: %s", rel);
  gboolean exists = fstatat (dst_dir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists) {
    switch (w->o.if_exists) {
    case IF_EXISTS_SKIP:
      c->skipped++;
      return TRUE;
    case IF_EXISTS_ERROR:
      return fail_errno (error, EEXIST, "%s: %s (if_exists = error)", rel);
    case IF_EXISTS_UPDATE:
      if (same_entry (src_dir, dst_dir, name, &st, &dst)) {
        c->uptodate++;
        return TRUE;
      }
      break;
    case IF_EXISTS_OVERWRITE:
      break;
    }
    if (S_ISDIR (dst.st_mode))
      return fail_errno (error, EISDIR, "%s: %s in the destination; it is not replaced", rel);
  }

  char tmp[TEMP_NAME_SIZE];
  temp_name (tmp);
  gboolean ok;
  guint64 bytes = 0;
  switch (st.st_mode & S_IFMT) {
  case S_IFREG:
    ok = write_regular (w, src_dir, name, dst_dir, tmp, &st, &bytes, error);
    break;
  case S_IFLNK: {
    g_autofree char *target = g_malloc ((gsize) st.st_size + 1);
    ssize_t n = readlinkat (src_dir, name, target, (gsize) st.st_size + 1);
    if (n < 0 || n > st.st_size)
      return fail_errno (error, n < 0 ? errno : EAGAIN, "readlink %s: %s", rel);
    target[n] = '\0';
    if (symlinkat (target, dst_dir, tmp) < 0)
      return fail_errno (error, errno, "symlink %s: %s", rel);
    ok = meta_apply_at (dst_dir, tmp, &st, src_dir, name, &w->o, error);
    break;
  }
  case S_IFIFO:
    if (mkfifoat (dst_dir, tmp, 0600) < 0)
      return fail_errno (error, errno, "mkfifo %s: %s", rel);
    ok = meta_apply_at (dst_dir, tmp, &st, src_dir, name, &w->o, error);
    break;
  case S_IFCHR:
  case S_IFBLK:
    if (!w->o.is_root) {
      c->skipped++; /* device nodes need root, as with cp -a */
      return TRUE;
    }
    if (mknodat (dst_dir, tmp, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0)
      return fail_errno (error, errno, "mknod %s: %s", rel);
    ok = meta_apply_at (dst_dir, tmp, &st, src_dir, name, &w->o, error);
    break;
  default:
    c->skipped++; /* sockets: the walk already warned */
    return TRUE;
  }
  if (ok && renameat (dst_dir, tmp, dst_dir, name) < 0) {
    int e = errno;
    ok = fail_errno (error, e == ENOTEMPTY || e == EISDIR ? EISDIR : e, "rename into %s: %s", rel);
  }
  if (ok && w->o.fsync && fsync (dst_dir) < 0)
    ok = fail_errno (error, errno, "fsync the folder of %s: %s", rel);
  if (!ok) {
    unlinkat (dst_dir, tmp, 0);
    if (error && *error && !names_entry ((*error)->message, rel)) {
      /* name the entry in every message */
      g_prefix_error (error, "%s: ", rel);
    }
    return FALSE;
  }
  if (S_ISREG (st.st_mode)) {
    c->files++;
    c->bytes += bytes;
  } else if (S_ISLNK (st.st_mode)) {
    c->symlinks++;
  } else {
    c->specials++;
  }
  return TRUE;
}

/* One chunk of a big file, written in place into the temporary file the parent made. */
static gboolean
copy_chunk (CopyWorker *w, PayloadReader *r, CopyCounts *c, GError **error)
{
  payload_get_u64 (r); /* file id: the parent's */
  guint64 offset = payload_get_u64 (r);
  guint64 length = payload_get_u64 (r);
  payload_get_u64 (r); /* size */
  g_autofree char *rel = payload_get_str (r);
  g_autofree char *tmp = payload_get_str (r);
  if (r->bad)
    return fail_errno (error, EINVAL, "%s: %s", "bad chunk payload");
  if (!*tmp) {
    c->uptodate += offset == 0; /* the parent found it up to date: count it once */
    return TRUE;
  }
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (rel, &dir, &name);
  int src_dir = cached_dir (w, FALSE, dir);
  int dst_dir = src_dir < 0 ? -1 : cached_dir (w, TRUE, dir);
  if (src_dir < 0 || dst_dir < 0)
    return fail_errno (error, errno, "folder of %s: %s", rel);
  int in = openat (src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return fail_errno (error, errno, "open %s: %s", rel);
  int out = openat (dst_dir, tmp, (w->o.verify ? O_RDWR : O_WRONLY) | O_NOFOLLOW | O_CLOEXEC);
  if (out < 0) {
    int e = errno;
    close (in);
    return fail_errno (error, e, "open the partial copy of %s: %s", rel);
  }
  guint64 bytes = 0;
  struct stat st;
  gboolean sparse = fstat (in, &st) < 0 || (guint64) st.st_blocks * 512 < (guint64) st.st_size;
  gboolean ok = copy_range (in, out, offset, length, NULL, sparse, &bytes, error);
  ok = ok && (!w->o.verify || verify_range (in, out, offset, length, error));
  close (in);
  /* on a network filesystem a full disk may first show at close */
  if (close (out) < 0 && ok)
    ok = copy_fail (error, errno, "close");
  c->bytes += bytes;
  if (!ok)
    g_prefix_error (error, "%s: ", rel);
  return ok;
}

gboolean
copy_worker_init (const TrConfig *config, gpointer *wstate, GError **error)
{
  CopyWorker *w = g_new0 (CopyWorker, 1);
  w->src_root = w->dst_root = w->src_dir = w->dst_dir = -1;
  w->try_clone = TRUE;
  if (!copy_options_load (config, &w->o, error)) {
    g_free (w);
    return FALSE;
  }
  *wstate = w;
  return TRUE;
}

void
copy_worker_fini (gpointer wstate)
{
  CopyWorker *w = wstate;
  for (int *fd = &w->src_root; fd <= &w->dst_root; fd++)
    if (*fd >= 0)
      close (*fd);
  if (w->src_dir >= 0)
    close (w->src_dir);
  if (w->dst_dir >= 0)
    close (w->dst_dir);
  g_free (w->src_dir_rel);
  g_free (w->dst_dir_rel);
  copy_options_clear (&w->o);
  g_free (w);
}

gboolean
copy_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *out, GError **error)
{
  CopyWorker *w = wstate;
  CopyCounts c = { 0 };
  PayloadReader r = { payload, payload + len, FALSE };
  gboolean ok = TRUE;
  guint8 kind = payload_get_u8 (&r);
  if (!open_roots (w, error)) {
    ok = FALSE;
  } else if (kind == TASK_ENTRIES) {
    guint64 n = payload_get_u64 (&r);
    GString *errors = NULL;
    int fatal = 0, first = 0;
    for (guint64 i = 0; i < n && !r.bad; i++) {
      g_autofree char *rel = payload_get_str (&r);
      if (!rel)
        break;
      g_autoptr (GError) e = NULL;
      if (!copy_entry (w, rel, &c, &e)) {
        c.failed++;
        if (!first)
          first = e->code;
        if (!errors)
          errors = g_string_new (NULL);
        if (errors->len < 2000)
          g_string_append_printf (errors, "%s%s", errors->len ? "; " : "", e->message);
        if (copy_errno_is_fatal (e->code)) {
          fatal = e->code;
          break; /* the rest would fail the same way */
        }
      }
    }
    if (errors) {
      /* the code says whether the job must stop: only a fatal errno does */
      g_set_error (error, TR_TASK_ERROR, fatal ? fatal : first,
                   "%" G_GUINT64_FORMAT " of %"
                   G_GUINT64_FORMAT " entries failed: %s", c.failed, n, errors->str);
      g_string_free (errors, TRUE);
      ok = FALSE;
    }
  } else if (kind == TASK_CHUNK) {
    ok = copy_chunk (w, &r, &c, error);
    c.failed += !ok;
  } else if (kind == TASK_FAIL) {
    int code = (int) payload_get_u64 (&r);
    g_autofree char *msg = payload_get_str (&r);
    g_set_error_literal (error, TR_TASK_ERROR, code, msg ? msg : "the walk failed");
    c.failed++;
    ok = FALSE;
  } else {
    g_set_error (error, TR_TASK_ERROR, EINVAL, "unknown copy task kind %u", kind);
    ok = FALSE;
  }
  tr_output_append (out, &c, sizeof c);
  return ok;
}

