/* copy.c — the copy plugin: a parallel `cp -a` of a folder tree.  This file holds the
 * descriptor, the options, and the parent's side: the walk that makes the tasks, the
 * result hook that adds up what workers did and finishes big files, and the end of the
 * job (hard links, then folder metadata, deepest first).
 *
 * The walk is depth-first in byte order of names, so the same tree always gives the same
 * tasks (--resume works).  It creates each destination folder as it enters it (so workers
 * never wait for one), removes temporary files a killed run left there, and hands out:
 *   - small entries (files below chunk_size, symlinks, FIFOs, devices) in tasks of up to
 *     256 entries or 16 MiB;
 *   - big files in chunks: the parent creates the temporary file at its full (sparse)
 *     size, workers fill their ranges in place, and the parent renames it once every chunk
 *     has succeeded;
 *   - a later name of an already seen inode becomes a hard link, made at the end.
 * Folder modes and times are set after their contents, deepest first, or writing into
 * them would change their times again.  Nothing in the destination that is not in the
 * source is deleted or changed; a destination folder where the source has a file (or the
 * reverse) is an error for that entry.
 */
#include "copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_ENTRIES 256
#define BATCH_BYTES (16u << 20)

static const char *const if_exists_choices[] = { "update", "overwrite", "skip", "error", NULL };

static const TrOption copy_options[] = {
  { .name = "source", .type = TR_OPTION_PATH, .required = TRUE,
    .help = "the folder to copy (its contents go into destination, like cp -a SOURCE/. DEST)" },
  { .name = "destination", .type = TR_OPTION_PATH, .required = TRUE,
    .help = "the folder to copy into; created if missing; never emptied" },
  { .name = "if_exists", .type = TR_OPTION_ENUM, .default_value = "update",
    .choices = if_exists_choices,
    .help = "an existing destination file: update (replace unless same size and mtime), "
            "overwrite, skip, or error" },
  { .name = "preserve", .type = TR_OPTION_STRING, .default_value = "all",
    .help = "metadata to keep: all, none, or a list of mode, ownership, timestamps, xattr "
            "(ownership only as root)" },
  { .name = "chunk_size", .type = TR_OPTION_SIZE, .default_value = "64M", .min = 4096,
    .max = 1e15, .help = "files at least this big are split into chunks of this size" },
  { .name = "fsync", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "flush every file to disk before it takes its final name" },
  { .name = "verify", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "read every copy back and compare it with its source" },
  { .name = NULL },
};

typedef struct {
  char *rel;
  GPtrArray *names; /* sorted */
  guint next;
  int src_fd;       /* the source folder, kept open while its entries are handed out */
} Frame;

typedef struct {
  char *rel;
  struct stat st;
} DirRecord;

typedef struct {
  char *rel;
  char *tmp; /* "" when up to date */
  struct stat st;
  guint64 chunks, remaining;
  gboolean failed;
} BigFile;

typedef struct {
  char *target; /* the first name of the inode */
  char *link;
} HardLink;

typedef struct {
  dev_t dev;
  ino_t ino;
} InodeKey;

typedef struct {
  TrJob *job;
  CopyOptions o;
  int src_root, dst_root;
  GPtrArray *stack;       /* Frame* */
  GPtrArray *dirs;        /* DirRecord*, in the order entered */
  GHashTable *inodes;     /* InodeKey -> first rel (multi-link files) */
  GPtrArray *links;       /* HardLink* */
  GHashTable *big;        /* file id -> BigFile* */
  guint64 next_file_id;
  /* the chunks of the big file being handed out */
  BigFile *chunking;
  guint64 chunking_id, chunk_next;
  /* the batch being filled */
  GByteArray *batch;
  guint batch_n;
  guint64 batch_bytes;
  char *batch_first;
  gboolean walk_done;
  guint64 total_bytes;
  guint64 sockets;
  CopyCounts counts;
  guint64 dirs_copied, hardlinks, hardlinks_failed, dirs_failed, big_files;
  gint64 started;
  gboolean stopped;
} Copy;

static guint
inode_hash (gconstpointer k)
{
  const InodeKey *i = k;
  return (guint) (i->ino ^ (i->dev << 7));
}

static gboolean
inode_equal (gconstpointer a, gconstpointer b)
{
  const InodeKey *x = a, *y = b;
  return x->dev == y->dev && x->ino == y->ino;
}

static void
frame_free (gpointer p)
{
  Frame *f = p;
  if (f->src_fd >= 0)
    close (f->src_fd);
  g_free (f->rel);
  g_ptr_array_unref (f->names);
  g_free (f);
}

static void
dir_free (gpointer p)
{
  DirRecord *d = p;
  g_free (d->rel);
  g_free (d);
}

static void
big_free (gpointer p)
{
  BigFile *b = p;
  g_free (b->rel);
  g_free (b->tmp);
  g_free (b);
}

static void
link_free (gpointer p)
{
  HardLink *h = p;
  g_free (h->target);
  g_free (h->link);
  g_free (h);
}

static char *
join_rel (const char *dir, const char *name)
{
  return *dir ? g_strconcat (dir, "/", name, NULL) : g_strdup (name);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Reads a folder's names (sorted); NULL with errno on failure. */
static GPtrArray *
read_names (int dirfd)
{
  int fd = fcntl (dirfd, F_DUPFD_CLOEXEC, 0);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (!d) {
    if (fd >= 0)
      close (fd);
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

/* Removes temporary files a killed run left in a destination folder. */
static void
remove_leftovers (int dst_dir)
{
  g_autoptr (GPtrArray) names = read_names (dst_dir);
  for (guint i = 0; names && i < names->len; i++) {
    const char *n = g_ptr_array_index (names, i);
    if (is_temp_name (n))
      unlinkat (dst_dir, n, 0);
  }
}

static gboolean
inside (const char *path, const char *dir)
{
  gsize n = strlen (dir);
  return strcmp (path, dir) == 0 || (g_str_has_prefix (path, dir) && (path[n] == '/' || n == 1));
}

/* The destination, resolved as far as it exists (symlinks included). */
static char *
resolve_destination (const char *dest)
{
  g_autofree char *probe = g_strdup (dest);
  GString *rest = g_string_new (NULL);
  for (;;) {
    char *real = realpath (probe, NULL);
    if (real) {
      char *out = g_build_filename (real, rest->str, NULL);
      free (real);
      g_string_free (rest, TRUE);
      return out;
    }
    char *slash = strrchr (probe, '/');
    if (!slash || slash == probe) {
      g_string_free (rest, TRUE);
      return g_strdup (dest);
    }
    g_string_prepend (rest, slash + 1);
    g_string_prepend_c (rest, '/');
    *slash = '\0';
  }
}

static gboolean
copy_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  Copy *c = g_new0 (Copy, 1);
  c->job = job;
  c->src_root = c->dst_root = -1;
  if (!copy_options_load (config, &c->o, error)) {
    g_free (c);
    return FALSE;
  }
  g_autofree char *src_real = NULL, *dst_real = NULL;
  struct stat st;
  const char *problem = NULL;
  if (stat (c->o.source, &st) < 0)
    problem = g_strerror (errno);
  else if (!S_ISDIR (st.st_mode))
    problem = "not a folder (copy copies a folder's contents)";
  if (!problem && stat (c->o.destination, &st) == 0 && !S_ISDIR (st.st_mode)) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "'destination' %s: not a folder",
                 c->o.destination);
    goto fail;
  }
  if (problem) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "'source' %s: %s", c->o.source, problem);
    goto fail;
  }
  src_real = realpath (c->o.source, NULL);
  dst_real = resolve_destination (c->o.destination);
  if (src_real && inside (dst_real, src_real)) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "'destination' %s is %s 'source' %s: the copy would copy itself", c->o.destination,
                 strcmp (dst_real, src_real) == 0 ? "the same folder as" : "inside", c->o.source);
    goto fail;
  }
  c->stack = g_ptr_array_new_with_free_func (frame_free);
  c->dirs = g_ptr_array_new_with_free_func (dir_free);
  c->inodes = g_hash_table_new_full (inode_hash, inode_equal, g_free, g_free);
  c->links = g_ptr_array_new_with_free_func (link_free);
  c->big = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, big_free);
  c->batch = g_byte_array_new ();
  c->started = g_get_monotonic_time ();
  *state = c;
  return TRUE;

fail:
  copy_options_clear (&c->o);
  g_free (c);
  return FALSE;
}

/* Opens the roots and enters the source root: the first call of the walk. */
static gboolean
start_walk (Copy *c, GError **error)
{
  c->src_root = open (c->o.source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->src_root < 0) {
    g_set_error (error, TR_TASK_ERROR, errno, "source %s: %s", c->o.source, g_strerror (errno));
    return FALSE;
  }
  if (g_mkdir_with_parents (c->o.destination, 0700) < 0 ||
      (c->dst_root = open (c->o.destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    g_set_error (error, TR_TASK_ERROR, errno, "destination %s: %s", c->o.destination,
                 g_strerror (errno));
    return FALSE;
  }
  struct stat st;
  fstat (c->src_root, &st);
  DirRecord *d = g_new0 (DirRecord, 1);
  d->rel = g_strdup ("");
  d->st = st;
  g_ptr_array_add (c->dirs, d);
  remove_leftovers (c->dst_root);
  GPtrArray *names = read_names (c->src_root);
  if (!names) {
    g_set_error (error, TR_TASK_ERROR, errno, "read %s: %s", c->o.source, g_strerror (errno));
    return FALSE;
  }
  Frame *f = g_new0 (Frame, 1);
  f->rel = g_strdup ("");
  f->names = names;
  f->src_fd = -1;
  g_ptr_array_add (c->stack, f);
  return TRUE;
}

static void
batch_begin_if_empty (Copy *c)
{
  if (c->batch_n)
    return;
  g_byte_array_set_size (c->batch, 0);
  guint8 kind = TASK_ENTRIES;
  g_byte_array_append (c->batch, &kind, 1);
  payload_put_u64 (c->batch, 0); /* count, patched when handed out */
  c->batch_bytes = 0;
}

static void
emit_batch (Copy *c, TrTask *task)
{
  for (int i = 0; i < 8; i++)
    c->batch->data[1 + i] = (guint8) ((guint64) c->batch_n >> (8 * i));
  tr_task_set_payload (task, c->batch->data, c->batch->len);
  if (c->batch_n == 1)
    tr_task_set_description (task, "%s", c->batch_first);
  else
    tr_task_set_description (task, "%s and %u more", c->batch_first, c->batch_n - 1);
  tr_task_set_units (task, MAX (c->batch_bytes, 1));
  c->batch_n = 0;
  c->batch_bytes = 0;
  g_clear_pointer (&c->batch_first, g_free);
}

static void
emit_fail (Copy *c, TrTask *task, const char *fmt, const char *rel, int e)
{
  (void) c;
  g_autofree char *msg = g_strdup_printf (fmt, rel, g_strerror (e));
  GByteArray *b = g_byte_array_new ();
  guint8 kind = TASK_FAIL;
  g_byte_array_append (b, &kind, 1);
  payload_put_u64 (b, (guint64) e);
  payload_put_str (b, msg, strlen (msg));
  tr_task_set_payload (task, b->data, b->len);
  tr_task_set_description (task, "%s", *rel ? rel : ".");
  g_byte_array_unref (b);
}

static void
emit_chunk (Copy *c, TrTask *task)
{
  BigFile *b = c->chunking;
  guint64 off = c->chunk_next;
  guint64 len = MIN (c->o.chunk_size, (guint64) b->st.st_size - off);
  GByteArray *p = g_byte_array_new ();
  guint8 kind = TASK_CHUNK;
  g_byte_array_append (p, &kind, 1);
  payload_put_u64 (p, c->chunking_id);
  payload_put_u64 (p, off);
  payload_put_u64 (p, len);
  payload_put_u64 (p, (guint64) b->st.st_size);
  payload_put_str (p, b->rel, strlen (b->rel));
  payload_put_str (p, b->tmp, strlen (b->tmp));
  tr_task_set_payload (task, p->data, p->len);
  tr_task_set_description (task, "%s [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ")", b->rel, off,
                           off + len);
  tr_task_set_units (task, MAX (len, 1));
  g_byte_array_unref (p);
  c->chunk_next = off + len;
  if (c->chunk_next >= (guint64) b->st.st_size)
    c->chunking = NULL;
}

/* Sets up a big file: checks if it is up to date, else creates its sparse temporary. */
static gboolean
begin_big_file (Copy *c, int dst_dir, const char *rel, const char *name, const struct stat *st,
                int *err)
{
  BigFile *b = g_new0 (BigFile, 1);
  b->rel = g_strdup (rel);
  b->st = *st;
  b->chunks = ((guint64) st->st_size + c->o.chunk_size - 1) / c->o.chunk_size;
  b->remaining = b->chunks;
  struct stat d;
  gboolean exists = fstatat (dst_dir, name, &d, AT_SYMLINK_NOFOLLOW) == 0;
  gboolean skip = exists && (c->o.if_exists == IF_EXISTS_SKIP ||
                             (c->o.if_exists == IF_EXISTS_UPDATE && S_ISREG (d.st_mode) &&
                              copy_same_file (st, &d)));
  if (exists && !skip && (c->o.if_exists == IF_EXISTS_ERROR || S_ISDIR (d.st_mode))) {
    *err = S_ISDIR (d.st_mode) ? EISDIR : EEXIST;
    big_free (b);
    return FALSE;
  }
  if (skip) {
    b->tmp = g_strdup ("");
  } else {
    char tmp[TEMP_NAME_SIZE];
    temp_name (tmp);
    int fd = openat (dst_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate (fd, st->st_size) < 0) {
      *err = errno;
      if (fd >= 0) {
        close (fd);
        unlinkat (dst_dir, tmp, 0);
      }
      big_free (b);
      return FALSE;
    }
    close (fd);
    b->tmp = g_strdup (tmp);
  }
  guint64 *id = g_new (guint64, 1);
  *id = ++c->next_file_id;
  g_hash_table_insert (c->big, id, b);
  c->chunking = b;
  c->chunking_id = *id;
  c->chunk_next = 0;
  return TRUE;
}

static TrNext
copy_next (gpointer state, TrTask *task, GError **error)
{
  Copy *c = state;
  if (c->src_root < 0 && !c->walk_done && !start_walk (c, error))
    return TR_NEXT_ERROR;
  for (;;) {
    if (c->chunking) {
      emit_chunk (c, task);
      return TR_NEXT_TASK;
    }
    if (c->batch_n && (c->batch_n >= BATCH_ENTRIES || c->batch_bytes >= BATCH_BYTES)) {
      emit_batch (c, task);
      return TR_NEXT_TASK;
    }
    if (c->stack->len == 0) {
      if (!c->walk_done) {
        c->walk_done = TRUE;
        tr_job_set_total_units (c->job, c->total_bytes, TRUE);
      }
      if (c->batch_n) {
        emit_batch (c, task);
        return TR_NEXT_TASK;
      }
      return TR_NEXT_END;
    }
    Frame *f = g_ptr_array_index (c->stack, c->stack->len - 1);
    if (f->next >= f->names->len) {
      g_ptr_array_remove_index (c->stack, c->stack->len - 1);
      continue;
    }
    const char *name = g_ptr_array_index (f->names, f->next++);
    g_autofree char *rel = join_rel (f->rel, name);
    /* Only the innermost folders keep an fd open, so that a tree of any depth stays
     * within the descriptor limit. */
    if (f->src_fd < 0)
      f->src_fd = open_dir_rel (c->src_root, f->rel, FALSE);
    struct stat st;
    if (f->src_fd < 0 || fstatat (f->src_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      emit_fail (c, task, "%s: %s", rel, errno);
      return TR_NEXT_TASK;
    }

    if (S_ISDIR (st.st_mode)) {
      int dst_dir = open_dir_rel (c->dst_root, rel, TRUE);
      int sub = dst_dir < 0 ? -1 : open_dir_rel (c->src_root, rel, FALSE);
      GPtrArray *names = sub < 0 ? NULL : read_names (sub);
      int e = errno;
      if (sub >= 0)
        close (sub);
      if (!names) {
        if (dst_dir >= 0)
          close (dst_dir);
        emit_fail (c, task, dst_dir < 0 ? "destination folder %s: %s" : "source folder %s: %s",
                   rel, e);
        return TR_NEXT_TASK;
      }
      remove_leftovers (dst_dir);
      close (dst_dir);
      DirRecord *d = g_new0 (DirRecord, 1);
      d->rel = g_strdup (rel);
      d->st = st;
      g_ptr_array_add (c->dirs, d);
      Frame *nf = g_new0 (Frame, 1);
      nf->rel = g_steal_pointer (&rel);
      nf->names = names;
      nf->src_fd = -1;
      if (c->stack->len > 64 && f->src_fd >= 0) {
        close (f->src_fd);
        f->src_fd = -1; /* opened again when the walk comes back to it */
      }
      g_ptr_array_add (c->stack, nf);
      continue;
    }
    if (S_ISSOCK (st.st_mode)) {
      tr_job_message (c->job, "skipping socket %s/%s (sockets cannot be copied)", c->o.source, rel);
      c->sockets++;
      continue;
    }
    if (!S_ISDIR (st.st_mode) && st.st_nlink > 1) {
      InodeKey key = { st.st_dev, st.st_ino };
      const char *first = g_hash_table_lookup (c->inodes, &key);
      if (first) {
        HardLink *h = g_new0 (HardLink, 1);
        h->target = g_strdup (first);
        h->link = g_steal_pointer (&rel);
        g_ptr_array_add (c->links, h);
        continue;
      }
      g_hash_table_insert (c->inodes, g_memdup2 (&key, sizeof key), g_strdup (rel));
    }
    if (S_ISREG (st.st_mode)) {
      c->total_bytes += (guint64) st.st_size;
      tr_job_set_total_units (c->job, c->total_bytes, FALSE);
    }
    if (S_ISREG (st.st_mode) && (guint64) st.st_size >= c->o.chunk_size) {
      int dst_dir = open_dir_rel (c->dst_root, f->rel, FALSE);
      int e = errno;
      if (dst_dir < 0 || !begin_big_file (c, dst_dir, rel, name, &st, &e)) {
        if (dst_dir >= 0)
          close (dst_dir);
        emit_fail (c, task, "%s: %s", rel, e);
        return TR_NEXT_TASK;
      }
      close (dst_dir);
      c->big_files++;
      continue; /* its chunks go out next */
    }
    batch_begin_if_empty (c);
    payload_put_str (c->batch, rel, strlen (rel));
    if (!c->batch_n)
      c->batch_first = g_strdup (rel);
    c->batch_n++;
    if (S_ISREG (st.st_mode))
      c->batch_bytes += (guint64) st.st_size;
  }
}

static void
add_counts (CopyCounts *to, const CopyCounts *from)
{
  to->files += from->files;
  to->bytes += from->bytes;
  to->symlinks += from->symlinks;
  to->specials += from->specials;
  to->uptodate += from->uptodate;
  to->skipped += from->skipped;
  to->failed += from->failed;
}

/* Gives a big file its metadata and final name, once all its chunks are in. */
static void
finish_big_file (Copy *c, BigFile *b)
{
  if (!*b->tmp)
    return; /* up to date */
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (b->rel, &dir, &name);
  int dst_dir = open_dir_rel (c->dst_root, dir, FALSE);
  if (dst_dir < 0) {
    c->counts.failed++;
    tr_job_message (c->job, "%s: not copied: cannot open its folder in the destination: %s",
                    b->rel, g_strerror (errno));
    return;
  }
  if (b->failed) {
    unlinkat (dst_dir, b->tmp, 0);
    close (dst_dir);
    c->counts.failed++;
    tr_job_message (c->job, "%s: not copied (a part of it failed or did not run)", b->rel);
    return;
  }
  g_autoptr (GError) error = NULL;
  int src_dir = open_dir_rel (c->src_root, dir, FALSE);
  int in = src_dir < 0 ? -1 : openat (src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int out = openat (dst_dir, b->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  gboolean ok = out >= 0 ? meta_apply_fd (out, &b->st, in, &c->o, &error)
                         : copy_fail (&error, errno, "open the partial copy");
  if (ok && c->o.fsync && fsync (out) < 0)
    ok = copy_fail (&error, errno, "fsync");
  if (out >= 0)
    close (out);
  if (in >= 0)
    close (in);
  if (src_dir >= 0)
    close (src_dir);
  if (ok && renameat (dst_dir, b->tmp, dst_dir, name) < 0)
    ok = copy_fail (&error, errno, "rename into place");
  if (ok && c->o.fsync && fsync (dst_dir) < 0) /* the new name, as for a small file */
    ok = copy_fail (&error, errno, "fsync the folder");
  if (ok) {
    c->counts.files++;
  } else {
    unlinkat (dst_dir, b->tmp, 0);
    c->counts.failed++;
    tr_job_message (c->job, "%s: %s", b->rel, error->message);
  }
  close (dst_dir);
}

static void
copy_result (gpointer state, const TrResult *r)
{
  Copy *c = state;
  CopyCounts got = { 0 };
  if (r->len == sizeof got)
    memcpy (&got, r->data, sizeof got);
  else if (r->error)
    got.failed = 1;
  if (r->sent > 0 && r->payload[0] == TASK_CHUNK) {
    PayloadReader pr = { r->payload + 1, r->payload + r->sent, FALSE };
    guint64 id = payload_get_u64 (&pr);
    BigFile *b = g_hash_table_lookup (c->big, &id);
    c->counts.bytes += got.bytes;
    if (got.uptodate)
      c->counts.uptodate++;
    if (b) {
      if (r->error)
        b->failed = TRUE;
      if (--b->remaining == 0) {
        finish_big_file (c, b);
        g_hash_table_remove (c->big, &id);
      }
    }
  } else {
    add_counts (&c->counts, &got);
  }
  if (r->error && copy_errno_is_fatal (r->error_code) && !c->stopped) {
    c->stopped = TRUE;
    g_autofree char *why = g_strdup_printf ("the destination failed (%s): every later file would "
                                            "fail too", g_strerror (r->error_code));
    tr_job_stop (c->job, why);
  }
}

/* Writes all of a big file into its temporary, in the parent. */
static gboolean
complete_big_file (Copy *c, BigFile *b)
{
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (b->rel, &dir, &name);
  int sd = open_dir_rel (c->src_root, dir, FALSE);
  int dd = sd < 0 ? -1 : open_dir_rel (c->dst_root, dir, FALSE);
  int in = dd < 0 ? -1 : openat (sd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int out = in < 0 ? -1 : openat (dd, b->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  guint64 copied = 0;
  g_autoptr (GError) error = NULL;
  gboolean ok = out >= 0 && copy_range (in, out, 0, (guint64) b->st.st_size, NULL, TRUE, &copied,
                                        &error);
  if (!ok)
    tr_job_message (c->job, "%s: %s", b->rel, error ? error->message : g_strerror (errno));
  c->counts.bytes += copied;
  for (int *fd = (int[]) { sd, dd, in, out }, i = 0; i < 4; i++)
    if (fd[i] >= 0)
      close (fd[i]);
  return ok;
}

static void
make_hard_links (Copy *c)
{
  for (guint i = 0; i < c->links->len; i++) {
    HardLink *h = g_ptr_array_index (c->links, i);
    g_autofree char *tdir = NULL, *ldir = NULL;
    const char *tname, *lname;
    split_rel (h->target, &tdir, &tname);
    split_rel (h->link, &ldir, &lname);
    int td = open_dir_rel (c->dst_root, tdir, FALSE);
    int ld = td < 0 ? -1 : open_dir_rel (c->dst_root, ldir, FALSE);
    struct stat ts, ls;
    gboolean ok = TRUE;
    int e = 0;
    if (ld >= 0 && fstatat (td, tname, &ts, AT_SYMLINK_NOFOLLOW) == 0) {
      gboolean exists = fstatat (ld, lname, &ls, AT_SYMLINK_NOFOLLOW) == 0;
      if (exists && ls.st_ino == ts.st_ino && ls.st_dev == ts.st_dev) {
        c->counts.uptodate++; /* already linked */
      } else if (exists && c->o.if_exists == IF_EXISTS_SKIP) {
        c->counts.skipped++;
      } else if (exists && c->o.if_exists == IF_EXISTS_ERROR) {
        ok = FALSE;
        e = EEXIST;
      } else {
        char tmp[TEMP_NAME_SIZE];
        temp_name (tmp);
        ok = linkat (td, tname, ld, tmp, 0) == 0 && renameat (ld, tmp, ld, lname) == 0;
        e = errno;
        if (ok)
          c->hardlinks++;
        else
          unlinkat (ld, tmp, 0);
      }
    } else {
      ok = FALSE;
      e = errno;
    }
    if (!ok) {
      c->hardlinks_failed++;
      tr_job_message (c->job, "hard link %s -> %s: %s", h->link, h->target, g_strerror (e));
    }
    if (td >= 0)
      close (td);
    if (ld >= 0)
      close (ld);
  }
}

/* Folder metadata, deepest first (the reverse of the order they were entered). */
static void
finish_dirs (Copy *c)
{
  for (guint i = c->dirs->len; i > 0; i--) {
    DirRecord *d = g_ptr_array_index (c->dirs, i - 1);
    int dst = open_dir_rel (c->dst_root, d->rel, FALSE);
    int src = dst < 0 ? -1 : open_dir_rel (c->src_root, d->rel, FALSE);
    g_autoptr (GError) error = NULL;
    if (dst < 0 || !meta_apply_fd (dst, &d->st, src, &c->o, &error)) {
      c->dirs_failed++;
      tr_job_message (c->job, "folder %s: %s", *d->rel ? d->rel : ".",
                      error ? error->message : g_strerror (errno));
    } else if (*d->rel) {
      c->dirs_copied++;
    }
    if (dst >= 0)
      close (dst);
    if (src >= 0)
      close (src);
  }
}

/* "12.3 MiB" with a plain space (GLib's sizes use a no-break space, which turns into
 * '?' in a non-UTF-8 locale). */
static char *
human_bytes (guint64 n)
{
  static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = (double) n;
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  return u ? g_strdup_printf ("%.1f %s", v, units[u]) : g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", n);
}

static gboolean
copy_finish (gpointer state, const TrStats *stats, GString *summary, GError **error)
{
  Copy *c = state;
  /* big files whose chunks did not all run (a stop, an interrupt): drop their temporaries */
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, c->big);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    BigFile *b = v;
    /* Chunks that never reported were skipped by --resume (a chunk that was cancelled or
     * failed did report, and marked the file failed): copy the whole file here, since
     * this run cannot know what an earlier run wrote into a temporary it removed. */
    if (*b->tmp && !b->failed)
      b->failed = stats->skipped == 0 || !complete_big_file (c, b);
    finish_big_file (c, b);
  }
  g_hash_table_remove_all (c->big);
  /* a second interrupt may have killed workers mid-file: no temporary stays behind */
  for (guint i = 0; c->dst_root >= 0 && i < c->dirs->len; i++) {
    DirRecord *d = g_ptr_array_index (c->dirs, i);
    int fd = open_dir_rel (c->dst_root, d->rel, FALSE);
    if (fd >= 0) {
      remove_leftovers (fd);
      close (fd);
    }
  }
  if (c->dst_root >= 0) {
    make_hard_links (c);
    finish_dirs (c);
  }
  double secs = (g_get_monotonic_time () - c->started) / 1e6;
  g_autofree char *bytes = human_bytes (c->counts.bytes);
  g_autofree char *rate = human_bytes ((guint64) (c->counts.bytes / MAX (secs, 1e-3)));
  g_string_append_printf (summary,
                          "%" G_GUINT64_FORMAT " files (%s, %s/s), %" G_GUINT64_FORMAT
                          " folders, %" G_GUINT64_FORMAT " symlinks, %" G_GUINT64_FORMAT
                          " hard links, %" G_GUINT64_FORMAT " special files copied\n",
                          c->counts.files, bytes, rate, c->dirs_copied, c->counts.symlinks,
                          c->hardlinks, c->counts.specials);
  g_string_append_printf (summary,
                          "%" G_GUINT64_FORMAT " up to date, %" G_GUINT64_FORMAT " skipped, %"
                          G_GUINT64_FORMAT " failed\n",
                          c->counts.uptodate, c->counts.skipped + c->sockets,
                          c->counts.failed + c->hardlinks_failed + c->dirs_failed);
  if (c->hardlinks_failed || c->dirs_failed || c->counts.failed) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "%" G_GUINT64_FORMAT " entries could not be copied (see above)",
                 c->counts.failed + c->hardlinks_failed + c->dirs_failed);
    return FALSE;
  }
  return TRUE;
}

static void
copy_destroy (gpointer state)
{
  Copy *c = state;
  if (c->src_root >= 0)
    close (c->src_root);
  if (c->dst_root >= 0)
    close (c->dst_root);
  g_ptr_array_unref (c->stack);
  g_ptr_array_unref (c->dirs);
  g_hash_table_unref (c->inodes);
  g_ptr_array_unref (c->links);
  g_hash_table_unref (c->big);
  g_byte_array_unref (c->batch);
  g_free (c->batch_first);
  copy_options_clear (&c->o);
  g_free (c);
}

TR_PLUGIN_DEFINE (
  .name = "copy",
  .version = "1.0",
  .description = "copies a folder tree like cp -a: atomic per file, resumable, in parallel; "
                 "under MPI, source and destination must be on a filesystem every rank sees",
  .license = "MIT",
  .options = copy_options,
  .flags = TR_PLUGIN_FLAG_DETERMINISTIC,
  .unit_name = "bytes",
  .configure = copy_configure,
  .next_task = copy_next,
  .result = copy_result,
  .finish = copy_finish,
  .destroy = copy_destroy,
  .worker_init = copy_worker_init,
  .run = copy_run,
  .worker_fini = copy_worker_fini,
);
