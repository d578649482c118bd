/* worker.c — the copy plugin in a worker: copies the entries of a task, or one chunk of
 * a big file.
 *
 * Every entry is written under a temporary name in its destination folder, given its
 * metadata, and renamed into place, so a file at its final name is always complete; a
 * failure removes the temporary.  Folders are reached one component at a time without
 * following symlinks, so nothing is ever written outside the destination; metadata goes
 * through descriptors of what this worker made, checked to be it.  A file is read
 * through one descriptor, checked to be a regular file before and the same version
 * after: a source that changed meanwhile fails that entry alone, named, and is not left
 * at its final name.  An entry whose type is not the one the walk saw fails the same way.
 * The source and destination folders of the last entry stay open, since the walk hands
 * out the entries of one folder together.
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
  DirCursor src_dirs, dst_dirs; /* the folders of the entries, in the walk's order */
  gboolean try_clone; /* FALSE once the destination said it cannot clone */
  guint64 failed_file; /* the big file whose chunk failed last here (0: none) */
} CopyWorker;

static gboolean
fail_errno (GError **error, int e, const char *fmt, const char *path)
{
  g_set_error (error, TR_TASK_ERROR, e, fmt, path, g_strerror (e));
  return FALSE;
}

/* The source (dst = FALSE) or destination folder `rel`; the cursor keeps it open. */
static int
cached_dir (CopyWorker *w, gboolean dst, const char *rel)
{
  return dir_cursor_open (dst ? &w->dst_dirs : &w->src_dirs, rel, FALSE);
}

static gboolean
open_roots (CopyWorker *w, GError **error)
{
  if (w->src_root < 0) {
    w->src_root = open (w->o.source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->src_root < 0)
      return fail_errno (error, errno, "source %s: %s", w->o.source);
    dir_cursor_init (&w->src_dirs, w->src_root);
  }
  if (w->dst_root < 0) {
    w->dst_root = open (w->o.destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dst_root < 0)
      return fail_errno (error, errno, "destination %s: %s", w->o.destination);
    dir_cursor_init (&w->dst_dirs, w->dst_root);
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
  return TRUE; /* FIFOs, sockets */
}

static const char *
type_name (mode_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFREG: return "a file";
  case S_IFDIR: return "a folder";
  case S_IFLNK: return "a symlink";
  case S_IFIFO: return "a FIFO";
  case S_IFSOCK: return "a socket";
  case S_IFCHR: return "a character device";
  case S_IFBLK: return "a block device";
  default: return "of an unknown type";
  }
}

static gboolean
type_changed (GError **error, mode_t was, mode_t now)
{
  g_set_error (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
               "it was %s when the walk saw it and is now %s; not copied (run the job again)",
               type_name (was), type_name (now));
  return FALSE;
}

/* Writes regular file `in` (stat `st`) under `tmp` in dst_dir: data, verify, metadata,
 * fsync; then checks the source is still the version it read. */
static gboolean
write_regular (CopyWorker *w, int in, int dst_dir, const char *tmp, const struct stat *st,
               guint64 *bytes, GError **error)
{
  int mode = w->o.verify ? O_RDWR : O_WRONLY; /* verify reads the copy back */
  int out = openat (dst_dir, tmp, mode | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return copy_fail (error, errno, "create the temporary copy");
  gboolean ok = TRUE;
  if (ftruncate (out, st->st_size) < 0)
    ok = copy_fail (error, errno, "truncate the temporary copy");
  /* fewer allocated blocks than bytes: there may be holes to keep */
  gboolean sparse = (guint64) st->st_blocks * 512 < (guint64) st->st_size;
  ok = ok && copy_range (in, out, 0, (guint64) st->st_size, &w->try_clone, sparse, bytes, error);
  ok = ok && (!w->o.verify || verify_range (in, out, 0, (guint64) st->st_size, error));
  StatKey read;
  stat_key_from (&read, st);
  struct stat after;
  if (ok && (fstat (in, &after) < 0 || !stat_key_same_version (&read, &after))) {
    ok = FALSE;
    g_set_error_literal (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                         "it changed while it was copied; not copied (run the job again)");
  }
  ok = ok && meta_apply_fd (out, st, in, &w->o, error);
  if (ok && w->o.fsync && fsync (out) < 0)
    ok = copy_fail (error, errno, "fsync");
  if (close (out) < 0 && ok)
    ok = copy_fail (error, errno, "close");
  return ok;
}

/* Makes a symlink, FIFO, socket or device node under `tmp`, and gives it its metadata
 * through an O_PATH descriptor checked to be the node just made. */
static gboolean
make_special (CopyWorker *w, int src_dir, const char *name, int dst_dir, const char *tmp,
              const struct stat *st, GError **error)
{
  mode_t type = st->st_mode & S_IFMT;
  if (type == S_IFLNK) {
    g_autofree char *target = g_malloc ((gsize) st->st_size + 1);
    ssize_t n = readlinkat (src_dir, name, target, (gsize) st->st_size + 1);
    if (n < 0 || n > st->st_size)
      return copy_fail_source (error, n < 0 ? errno : EAGAIN, "readlink");
    target[n] = '\0';
    if (symlinkat (target, dst_dir, tmp) < 0)
      return copy_fail (error, errno, "symlink");
  } else if (mknodat (dst_dir, tmp, type | 0600, type == S_IFCHR || type == S_IFBLK ? st->st_rdev : 0) < 0) {
    int e = errno;
    if (e == EPERM && (type == S_IFCHR || type == S_IFBLK))
      return copy_fail_source (error, e, "mknod (only root can make device nodes)");
    return copy_fail (error, e, "mknod");
  }
  int made = openat (dst_dir, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  int src = openat (src_dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat ms;
  gboolean ok;
  if (made < 0 || fstat (made, &ms) < 0 || (ms.st_mode & S_IFMT) != type ||
      ms.st_uid != geteuid () || ms.st_nlink != 1) {
    ok = FALSE;
    g_set_error_literal (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                         "the temporary entry was replaced while it was made; not copied");
  } else {
    ok = meta_apply_path (made, st, src, &w->o, error);
  }
  if (made >= 0)
    close (made);
  if (src >= 0)
    close (src);
  return ok;
}

/* Copies entry `name` of folder src_dir to dst_dir, which the walk saw as type
 * `walk_type` (S_IFMT bits), counting what it did. */
static gboolean
copy_entry (CopyWorker *w, int src_dir, int dst_dir, const char *name, mode_t walk_type,
            CopyCounts *c, GError **error)
{
  struct stat st, dst;
  int in = -1;
  if (walk_type == S_IFREG) {
    /* the descriptor is the truth about the file: what it is, its size, its version */
    in = open_source_file (src_dir, name, NULL, error);
    if (in < 0 || fstat (in, &st) < 0) {
      if (in >= 0)
        close (in);
      struct stat now;
      if (error && *error && fstatat (src_dir, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
          !S_ISREG (now.st_mode)) {
        g_clear_error (error);
        return type_changed (error, walk_type, now.st_mode);
      }
      return FALSE;
    }
  } else if (fstatat (src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    return copy_fail_source (error, errno, errno == ENOENT ? "it vanished since the walk saw it" : "lstat");
  } else if ((st.st_mode & S_IFMT) != walk_type) {
    return type_changed (error, walk_type, st.st_mode);
  }
  gboolean exists = fstatat (dst_dir, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists) {
    gboolean done = FALSE, ok = TRUE;
    switch (w->o.if_exists) {
    case IF_EXISTS_SKIP:
      c->skipped++;
      done = TRUE;
      break;
    case IF_EXISTS_ERROR:
      g_set_error (error, TR_TASK_ERROR, EEXIST | COPY_ENTRY_ONLY, "%s (if_exists = error)",
                   g_strerror (EEXIST));
      ok = FALSE;
      done = TRUE;
      break;
    case IF_EXISTS_UPDATE:
      if (same_entry (src_dir, dst_dir, name, &st, &dst)) {
        c->uptodate++;
        done = TRUE;
      }
      break;
    case IF_EXISTS_OVERWRITE:
      break;
    }
    if (!done && S_ISDIR (dst.st_mode)) {
      g_set_error (error, TR_TASK_ERROR, EISDIR | COPY_ENTRY_ONLY,
                   "%s in the destination; it is not replaced", g_strerror (EISDIR));
      ok = FALSE;
      done = TRUE;
    }
    if (done) {
      if (in >= 0)
        close (in);
      return ok;
    }
  }

  char tmp[TEMP_NAME_SIZE];
  temp_name (tmp);
  guint64 bytes = 0;
  gboolean ok = S_ISREG (st.st_mode) ? write_regular (w, in, dst_dir, tmp, &st, &bytes, error)
                                     : make_special (w, src_dir, name, dst_dir, tmp, &st, error);
  if (in >= 0)
    close (in);
  if (ok && renameat (dst_dir, tmp, dst_dir, name) < 0) {
    int e = errno;
    ok = copy_fail (error, e == ENOTEMPTY || e == EISDIR ? EISDIR | COPY_ENTRY_ONLY : e,
                    "rename into place");
  }
  if (ok && w->o.fsync && fsync (dst_dir) < 0)
    ok = copy_fail (error, errno, "fsync its folder");
  if (!ok) {
    unlinkat (dst_dir, tmp, 0);
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

/* One chunk of a big file, written in place into the temporary file the parent made,
 * from the version of the source the walk saw. */
static gboolean
copy_chunk (CopyWorker *w, PayloadReader *r, CopyCounts *c, GError **error)
{
  guint64 file = payload_get_u64 (r);
  guint64 offset = payload_get_u64 (r);
  guint64 length = payload_get_u64 (r);
  StatKey key;
  payload_get_key (r, &key);
  g_autofree char *rel = payload_get_str (r);
  g_autofree char *tmp = payload_get_str (r);
  guint64 tmp_dev = payload_get_u64 (r), tmp_ino = payload_get_u64 (r);
  if (r->bad)
    return copy_fail (error, EINVAL, "bad chunk payload");
  if (!*tmp) {
    c->uptodate += offset == 0; /* the parent found it up to date: count it once */
    return TRUE;
  }
  if (file == w->failed_file)
    return TRUE; /* moot: a chunk of this file failed here already, and so did the file */
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (rel, &dir, &name);
  int src_dir = cached_dir (w, FALSE, dir);
  if (src_dir < 0)
    return copy_fail_source (error, errno, "open its source folder");
  int dst_dir = cached_dir (w, TRUE, dir);
  if (dst_dir < 0)
    return copy_fail (error, errno, "open its destination folder");
  int in = open_source_file (src_dir, name, &key, error);
  if (in < 0)
    return FALSE;
  int out = open_temporary (dst_dir, tmp, w->o.verify ? O_RDWR : O_WRONLY, tmp_dev, tmp_ino, error);
  if (out < 0) {
    close (in);
    return FALSE;
  }
  guint64 bytes = 0;
  struct stat st;
  gboolean sparse = fstat (in, &st) < 0 || (guint64) st.st_blocks * 512 < (guint64) st.st_size;
  gboolean ok = copy_range (in, out, offset, length, NULL, sparse, &bytes, error);
  ok = ok && (!w->o.verify || verify_range (in, out, offset, length, error));
  if (ok && (fstat (in, &st) < 0 || !stat_key_same_version (&key, &st))) {
    ok = FALSE;
    g_set_error_literal (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                         "it changed while it was copied; not copied (run the job again)");
  }
  close (in);
  /* on a network filesystem a full disk may first show at close */
  if (close (out) < 0 && ok)
    ok = copy_fail (error, errno, "close");
  c->bytes += bytes;
  return ok;
}

gboolean
copy_worker_init (const TrConfig *config, gpointer *wstate, GError **error)
{
  CopyWorker *w = g_new0 (CopyWorker, 1);
  w->src_root = w->dst_root = -1;
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
  dir_cursor_clear (&w->src_dirs);
  dir_cursor_clear (&w->dst_dirs);
  if (w->src_root >= 0)
    close (w->src_root);
  if (w->dst_root >= 0)
    close (w->dst_root);
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
  FolderIds roots;
  payload_get_ids (&r, &roots);
  if (!open_roots (w, error)) {
    ok = FALSE;
  } else if (!folder_ids_match (&roots, w->src_root, w->dst_root)) {
    /* the roots are reached by name: renamed and replaced since the walk opened them,
     * they are another folder, where nothing is read or written */
    g_set_error (error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                 "the source %s or the destination %s is no longer the folder the job started "
                 "with (it was replaced); nothing is copied there", w->o.source, w->o.destination);
    ok = FALSE;
  } else if (kind == TASK_ENTRIES) {
    guint64 n = payload_get_u64 (&r);
    GString *errors = NULL;
    int fatal = 0, first = 0;
    g_autofree char *dir = NULL;
    int src_dir = -1, dst_dir = -1;
    g_autoptr (GError) dir_error = NULL; /* why no entry of this folder can be copied */
    guint64 i;
    for (i = 0; i < n && !r.bad; i++) {
      if (payload_get_u8 (&r) & ENTRY_NEW_FOLDER) {
        g_free (dir);
        dir = payload_get_str (&r);
        FolderIds ids;
        payload_get_ids (&r, &ids);
        /* the cursors' descriptors stay valid until their next call: the next folder */
        g_clear_error (&dir_error);
        src_dir = dir && !r.bad ? cached_dir (w, FALSE, dir) : -1;
        if (src_dir < 0)
          copy_fail_source (&dir_error, errno, "open its source folder");
        else if ((dst_dir = cached_dir (w, TRUE, dir)) < 0)
          copy_fail (&dir_error, errno, "open its destination folder");
        else if (!folder_ids_match (&ids, src_dir, dst_dir))
          /* reached by name, and another folder now: a user who can write in a
           * folder above renamed the one the walk made or saw, and put theirs there */
          g_set_error_literal (&dir_error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                               "its folder was replaced by another since the walk made it; "
                               "not copied");
      }
      g_autofree char *name = payload_get_str (&r);
      mode_t type = (mode_t) payload_get_u8 (&r) << 12;
      if (r.bad || !dir)
        break;
      g_autoptr (GError) e = NULL;
      gboolean done = !dir_error && copy_entry (w, src_dir, dst_dir, name, type, &c, &e);
      if (dir_error)
        e = g_error_copy (dir_error);
      if (!done) {
        c.failed++;
        if (!first)
          first = e->code;
        if (!errors)
          errors = g_string_new (NULL);
        if (errors->len < 2000) {
          g_autofree char *rel = *dir ? g_strconcat (dir, "/", name, NULL) : g_strdup (name);
          g_string_append_printf (errors, "%s%s: %s", errors->len ? "; " : "", rel, e->message);
        }
        if (copy_errno_is_fatal (e->code)) {
          fatal = e->code;
          i++;
          break; /* the rest would fail the same way */
        }
      }
    }
    if (i < n) {
      /* not tried: after a fatal error, or a payload cut short */
      c.failed += n - i;
      if (!errors)
        errors = g_string_new (NULL);
      g_string_append_printf (errors, "%s%" G_GUINT64_FORMAT " more not tried",
                              errors->len ? "; " : "", n - i);
      if (r.bad && !fatal && !first)
        first = EINVAL;
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
    PayloadReader id = r;
    ok = copy_chunk (w, &r, &c, error);
    c.failed += !ok;
    if (!ok)
      w->failed_file = payload_get_u64 (&id);
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

