/* copy.c — the copy plugin: a parallel `cp -a` of a folder tree.  This file holds the
 * descriptor, the options, and the parent's side: the walk that makes the tasks, the
 * result hook that adds up what workers did and finishes big files, and the end of the
 * job (hard links, then folder metadata, deepest first).
 *
 * The walk is depth-first in byte order of names.  It creates each destination folder as
 * it enters it (so workers never wait for one), removes temporary files a killed run left
 * there, and hands out:
 *   - small entries (files below chunk_size, symlinks, FIFOs, sockets, devices) in tasks
 *     of up to 256 entries, 16 MiB of data or 1 MiB of names;
 *   - big files in chunks: the parent creates the temporary file at its full (sparse)
 *     size, workers fill their ranges in place, and the parent renames it once every chunk
 *     has succeeded; every chunk checks it reads the version of the file the walk saw;
 *   - a later name of an already seen inode becomes a hard link, made at the end.
 * Which tasks the walk makes depends on the destination too (a folder that cannot be made
 * is one failed task, not its whole subtree), so copy does not offer --resume: a rerun of
 * the same job skips what is already up to date, the way rsync does.  Under --dry-run the
 * walk only reads.
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
/* Names per task: a path of a thousand long folder names is 256 KiB, and 256 of them
 * must not make one payload of 64 MiB. */
#define BATCH_PAYLOAD_BYTES (1u << 20)

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

/* A folder the walk is in.  Its path is not kept here but in Copy.path, whose first
 * path_len bytes it is: a stack of full paths would hold the square of a deep chain's
 * depth in bytes. */
typedef struct {
  GPtrArray *names; /* sorted */
  guint next;
  gsize path_len;
  guint dir;        /* its DirRecord */
  FolderIds ids;    /* its source folder and the destination folder made for it */
  guint64 serial;   /* unique in the run: a batch's folder is known by it */
} Frame;

/* A folder entered, for its metadata at the end: its name and its parent's index, from
 * which its path is made again (DIR_TOP: the top, whose name is ""). */
#define DIR_TOP G_MAXUINT
typedef struct {
  char *name;
  guint parent;
  struct stat st;
  FolderIds ids; /* checked before its metadata is set */
} DirRecord;

typedef struct {
  char *rel;
  char *tmp; /* "" when up to date */
  struct stat st;
  guint64 tmp_dev, tmp_ino; /* the temporary: reopened by name, checked by identity */
  guint64 chunks, remaining;
  gboolean failed;
} BigFile;

/* The first name the walk saw of an inode with several links, and what it was then. */
typedef struct {
  char *rel;
  guint dir;      /* its folder's DirRecord */
  struct stat st;
} FirstName;

typedef struct {
  char *target;   /* the first name of the inode */
  guint target_dir, link_dir; /* their folders' DirRecords */
  struct stat st; /* the inode as the walk saw it at the first name */
  char *link;
} HardLink;

static void
first_name_free (gpointer p)
{
  FirstName *f = p;
  g_free (f->rel);
  g_free (f);
}

typedef struct {
  dev_t dev;
  ino_t ino;
} InodeKey;

typedef struct {
  TrJob *job;
  CopyOptions o;
  gboolean dry_run;       /* read only: no folder made, no temporary created or removed */
  int src_root, dst_root; /* dst_root is -1 in a dry run whose destination does not exist */
  dev_t dst_dev;          /* the destination folder, which the walk must not enter */
  ino_t dst_ino;
  FolderIds roots;        /* the roots as the walk opened them: every task carries them */
  GPtrArray *stack;       /* Frame* */
  GString *path;          /* the path of the Frame on top of the stack ("" at the top) */
  int path_src_fd;        /* that folder in the source (the walk's own descriptor) */
  guint64 path_src_serial; /* the Frame it belongs to; 0: none */
  DirCursor src_walk, dst_walk; /* the folders the walk enters */
  DirCursor src_done, dst_done; /* the folders of finished big files, and at the end */
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
  guint64 batch_dir;      /* the serial of the Frame of the batch's last entry; 0: none */
  guint64 frames_made;
  gboolean walk_done;
  guint64 total_bytes;
  CopyCounts counts;
  guint64 dirs_copied, hardlinks, hardlinks_failed, dirs_failed, big_files;
  guint64 not_tried;  /* entries of tasks that were never started (the job stopped) */
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
  g_ptr_array_unref (f->names);
  g_free (f);
}

static void
dir_free (gpointer p)
{
  DirRecord *d = p;
  g_free (d->name);
  g_free (d);
}

/* The path of folder `i` of c->dirs. */
static char *
dir_path (const Copy *c, guint i)
{
  GPtrArray *names = g_ptr_array_new ();
  for (guint at = i; at != DIR_TOP;) {
    const DirRecord *d = g_ptr_array_index (c->dirs, at);
    if (*d->name)
      g_ptr_array_add (names, d->name);
    at = d->parent;
  }
  GString *path = g_string_new (NULL);
  for (guint k = names->len; k > 0; k--) {
    if (path->len)
      g_string_append_c (path, '/');
    g_string_append (path, g_ptr_array_index (names, k - 1));
  }
  g_ptr_array_unref (names);
  return g_string_free (path, FALSE);
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

/* Where the destination is, seen from the source: by device and inode, so a bind mount
 * or a symlink that leads back into the source is seen too.  The destination's nearest
 * existing folder and each of its parents up to / are compared with the source folder. */
typedef enum { DEST_APART, DEST_SAME, DEST_INSIDE } DestPlace;

static DestPlace
destination_place (const struct stat *src, const char *dest)
{
  g_autofree char *probe = g_strdup (dest);
  int fd;
  gboolean is_dest = TRUE;
  while ((fd = open (probe, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    char *slash = strrchr (probe, '/');
    if (!slash)
      fd = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    else if (slash == probe)
      fd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (!slash || slash == probe)
      break;
    *slash = '\0';
    is_dest = FALSE;
  }
  if (fd < 0)
    return DEST_APART;
  DestPlace place = DEST_APART;
  struct stat st, up;
  for (gboolean first = TRUE; fstat (fd, &st) == 0; first = FALSE) {
    if (st.st_dev == src->st_dev && st.st_ino == src->st_ino) {
      place = first && is_dest ? DEST_SAME : DEST_INSIDE;
      break;
    }
    int parent = openat (fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0 || fstat (parent, &up) < 0 || (up.st_dev == st.st_dev && up.st_ino == st.st_ino)) {
      if (parent >= 0)
        close (parent);
      break; /* the top */
    }
    close (fd);
    fd = parent;
  }
  close (fd);
  return place;
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
  struct stat st, st_src;
  const char *problem = NULL;
  if (stat (c->o.source, &st_src) < 0)
    problem = g_strerror (errno);
  else if (!S_ISDIR (st_src.st_mode))
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
  DestPlace place = destination_place (&st_src, c->o.destination);
  if (place != DEST_APART) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "'destination' %s is %s 'source' %s: the copy would copy itself", c->o.destination,
                 place == DEST_SAME ? "the same folder as" : "inside", c->o.source);
    goto fail;
  }
  c->dry_run = tr_job_is_dry_run (job);
  c->stack = g_ptr_array_new_with_free_func (frame_free);
  c->path = g_string_new (NULL);
  c->path_src_fd = -1;
  c->dirs = g_ptr_array_new_with_free_func (dir_free);
  c->inodes = g_hash_table_new_full (inode_hash, inode_equal, g_free, first_name_free);
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

/* Records folder `name` (below DirRecord `parent`), and pushes a Frame for its names;
 * c->path is already its path. */
static void
push_folder (Copy *c, const char *name, guint parent, const struct stat *st, const FolderIds *ids,
             GPtrArray *names)
{
  DirRecord *d = g_new0 (DirRecord, 1);
  d->name = g_strdup (name);
  d->parent = parent;
  d->st = *st;
  d->ids = *ids;
  g_ptr_array_add (c->dirs, d);
  Frame *f = g_new0 (Frame, 1);
  f->names = names;
  f->path_len = c->path->len;
  f->dir = c->dirs->len - 1;
  f->ids = *ids;
  f->serial = ++c->frames_made;
  g_ptr_array_add (c->stack, f);
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
  if ((!c->dry_run && g_mkdir_with_parents (c->o.destination, 0700) < 0) ||
      ((c->dst_root = open (c->o.destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 &&
       !(c->dry_run && errno == ENOENT))) {
    g_set_error (error, TR_TASK_ERROR, errno, "destination %s: %s", c->o.destination,
                 g_strerror (errno));
    return FALSE;
  }
  struct stat st;
  if (c->dst_root >= 0 && fstat (c->dst_root, &st) == 0) {
    c->dst_dev = st.st_dev;
    c->dst_ino = st.st_ino;
  }
  if (c->dst_root >= 0 && !c->dry_run)
    make_writable (c->dst_root);
  fstat (c->src_root, &st);
  dir_cursor_init (&c->src_walk, c->src_root);
  dir_cursor_init (&c->dst_walk, c->dst_root);
  dir_cursor_init (&c->src_done, c->src_root);
  dir_cursor_init (&c->dst_done, c->dst_root);
  if (c->dst_root >= 0 && !c->dry_run)
    remove_leftovers (c->dst_root, c->src_root);
  GPtrArray *names = read_names (c->src_root);
  if (!names) {
    g_set_error (error, TR_TASK_ERROR, errno, "read %s: %s", c->o.source, g_strerror (errno));
    return FALSE;
  }
  c->roots = (FolderIds) { (guint64) st.st_dev, (guint64) st.st_ino, (guint64) c->dst_dev,
                          (guint64) c->dst_ino };
  push_folder (c, "", DIR_TOP, &st, &c->roots, names);
  return TRUE;
}

static void
batch_begin_if_empty (Copy *c)
{
  if (c->batch_n)
    return;
  g_byte_array_set_size (c->batch, 0);
  payload_put_u8 (c->batch, TASK_ENTRIES);
  payload_put_ids (c->batch, &c->roots);
  payload_put_u64 (c->batch, 0); /* count, patched when handed out */
  c->batch_bytes = 0;
  c->batch_dir = 0;
}

/* Adds one entry of folder `f` to the batch. */
static void
batch_add (Copy *c, const Frame *f, const char *name, const char *rel, const struct stat *st)
{
  batch_begin_if_empty (c);
  gboolean new_folder = c->batch_dir != f->serial;
  payload_put_u8 (c->batch, new_folder ? ENTRY_NEW_FOLDER : 0);
  if (new_folder) {
    payload_put_str (c->batch, c->path->str, f->path_len);
    payload_put_ids (c->batch, &f->ids);
  }
  c->batch_dir = f->serial;
  payload_put_str (c->batch, name, strlen (name));
  payload_put_u8 (c->batch, (guint8) ((st->st_mode & S_IFMT) >> 12));
  if (!c->batch_n)
    c->batch_first = g_strdup (rel); /* rel: only for the first entry */
  c->batch_n++;
  if (S_ISREG (st->st_mode))
    c->batch_bytes += (guint64) st->st_size;
}

static gboolean
batch_full (const Copy *c)
{
  return c->batch_n && (c->batch_n >= BATCH_ENTRIES || c->batch_bytes >= BATCH_BYTES ||
                        c->batch->len >= BATCH_PAYLOAD_BYTES);
}

static void
emit_batch (Copy *c, TrTask *task)
{
  for (int i = 0; i < 8; i++)
    c->batch->data[PAYLOAD_HEAD + i] = (guint8) ((guint64) c->batch_n >> (8 * i));
  tr_task_set_payload (task, c->batch->data, c->batch->len);
  if (c->batch_n == 1)
    tr_task_set_description (task, "%s", c->batch_first);
  else
    tr_task_set_description (task, "%s and %u more", c->batch_first, c->batch_n - 1);
  tr_task_set_units (task, MAX (c->batch_bytes, 1));
  c->batch_n = 0;
  c->batch_bytes = 0;
  c->batch_dir = 0;
  g_clear_pointer (&c->batch_first, g_free);
}

static void
emit_fail (Copy *c, TrTask *task, const char *fmt, const char *rel, int e)
{
  g_autofree char *msg = g_strdup_printf (fmt, rel, g_strerror (e));
  GByteArray *b = g_byte_array_new ();
  payload_put_u8 (b, TASK_FAIL);
  payload_put_ids (b, &c->roots);
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
  StatKey key;
  stat_key_from (&key, &b->st);
  payload_put_u8 (p, TASK_CHUNK);
  payload_put_ids (p, &c->roots);
  payload_put_u64 (p, c->chunking_id);
  payload_put_u64 (p, off);
  payload_put_u64 (p, len);
  payload_put_key (p, &key);
  payload_put_str (p, b->rel, strlen (b->rel));
  payload_put_str (p, b->tmp, strlen (b->tmp));
  payload_put_u64 (p, b->tmp_dev);
  payload_put_u64 (p, b->tmp_ino);
  tr_task_set_payload (task, p->data, p->len);
  tr_task_set_description (task, "%s [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ")", b->rel, off,
                           off + len);
  tr_task_set_units (task, MAX (len, 1));
  g_byte_array_unref (p);
  c->chunk_next = off + len;
  if (c->chunk_next >= (guint64) b->st.st_size)
    c->chunking = NULL;
}

/* Sets up a big file: checks if it is up to date, else creates its sparse temporary
 * (dst_dir is -1 in a dry run whose folder does not exist yet). */
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
  gboolean exists = dst_dir >= 0 && fstatat (dst_dir, name, &d, AT_SYMLINK_NOFOLLOW) == 0;
  gboolean skip = exists && (c->o.if_exists == IF_EXISTS_SKIP ||
                             (c->o.if_exists == IF_EXISTS_UPDATE && S_ISREG (d.st_mode) &&
                              copy_same_file (st, &d)));
  if (exists && !skip && (c->o.if_exists == IF_EXISTS_ERROR || S_ISDIR (d.st_mode))) {
    *err = S_ISDIR (d.st_mode) ? EISDIR : EEXIST;
    big_free (b);
    return FALSE;
  }
  if (skip || c->dry_run) {
    b->tmp = g_strdup ("");
  } else {
    char tmp[TEMP_NAME_SIZE];
    int fd;
    do {
      temp_name (tmp);
      fd = openat (dst_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EEXIST);
    struct stat ts;
    if (fd < 0 || fstat (fd, &ts) < 0 || ftruncate (fd, st->st_size) < 0) {
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
    b->tmp_dev = (guint64) ts.st_dev;
    b->tmp_ino = (guint64) ts.st_ino;
  }
  guint64 *id = g_new (guint64, 1);
  *id = ++c->next_file_id;
  g_hash_table_insert (c->big, id, b);
  c->chunking = b;
  c->chunking_id = *id;
  c->chunk_next = 0;
  return TRUE;
}

/* Enters source folder `name` of the Frame on top (whose path c->path is, and becomes
 * rel): makes its destination folder, sweeps it, and pushes its names.  FALSE with
 * *what and *err set when it cannot; c->path is then the parent's again. */
static gboolean
enter_folder (Copy *c, const char *name, const struct stat *st, const char **what, int *err)
{
  Frame *parent = g_ptr_array_index (c->stack, c->stack->len - 1);
  if (st->st_dev == c->dst_dev && st->st_ino == c->dst_ino) {
    *what = "%s: it is the destination folder, reached through a bind mount or a link: "
            "not copied into itself%.0s";
    *err = ELOOP;
    return FALSE;
  }
  if (c->path->len)
    g_string_append_c (c->path, '/');
  g_string_append (c->path, name);
  int dst_dir = c->dst_root < 0 ? -1 : dir_cursor_open (&c->dst_walk, c->path->str, !c->dry_run);
  if (dst_dir < 0 && c->dst_walk.taken_over) {
    *what = "destination folder %s: it was replaced by another as the walk made it; "
            "not copied%.0s";
    *err = EAGAIN;
    g_string_truncate (c->path, parent->path_len);
    return FALSE;
  }
  if (dst_dir < 0 && !(c->dry_run && (c->dst_root < 0 || errno == ENOENT))) {
    *what = "destination folder %s: %s";
    *err = errno;
    g_string_truncate (c->path, parent->path_len);
    return FALSE;
  }
  FolderIds ids = { (guint64) st->st_dev, (guint64) st->st_ino, 0, 0 };
  struct stat dst_st;
  if (dst_dir >= 0 && fstat (dst_dir, &dst_st) == 0) {
    ids.dst_dev = (guint64) dst_st.st_dev;
    ids.dst_ino = (guint64) dst_st.st_ino;
  }
  int sub = dir_cursor_open (&c->src_walk, c->path->str, FALSE);
  GPtrArray *names = sub < 0 ? NULL : read_names (sub);
  *err = errno;
  if (names && !folder_ids_match (&ids, sub, -1)) {
    /* the folder the walk listed is not the one it saw: swapped meanwhile */
    g_ptr_array_unref (names);
    names = NULL;
    *err = EAGAIN;
  }
  if (names && dst_dir >= 0 && !c->dry_run)
    remove_leftovers (dst_dir, sub);
  if (!names) {
    *what = "source folder %s: %s";
    g_string_truncate (c->path, parent->path_len);
    return FALSE;
  }
  push_folder (c, name, parent->dir, st, &ids, names);
  return TRUE;
}

/* The source folder of the Frame on top, through a descriptor of the walk's own. */
static int
top_source_folder (Copy *c, const Frame *f)
{
  if (c->path_src_serial != f->serial) {
    if (c->path_src_fd >= 0)
      close (c->path_src_fd);
    int fd = dir_cursor_open (&c->src_walk, c->path->str, FALSE);
    c->path_src_fd = fd < 0 ? -1 : fcntl (fd, F_DUPFD_CLOEXEC, 0);
    c->path_src_serial = f->serial;
  }
  if (c->path_src_fd < 0)
    errno = errno ? errno : EBADF;
  return c->path_src_fd;
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
    if (batch_full (c)) {
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
      if (c->stack->len) {
        Frame *up = g_ptr_array_index (c->stack, c->stack->len - 1);
        g_string_truncate (c->path, up->path_len);
      }
      continue;
    }
    const char *name = g_ptr_array_index (f->names, f->next++);
    /* the entry's whole path is made only where it is needed: per entry, a deep
     * folder's path would cost its length each time */
#define REL() (rel ? rel : (rel = join_rel (c->path->str, name)))
    g_autofree char *rel = NULL;
    int src_dir = top_source_folder (c, f);
    struct stat st;
    if (src_dir < 0 || fstatat (src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      emit_fail (c, task, "%s: %s", REL (), errno);
      return TR_NEXT_TASK;
    }

    if (S_ISDIR (st.st_mode)) {
      const char *what;
      int e;
      if (!enter_folder (c, name, &st, &what, &e)) {
        emit_fail (c, task, what, REL (), e);
        return TR_NEXT_TASK;
      }
      continue;
    }
    if (st.st_nlink > 1) {
      InodeKey key = { st.st_dev, st.st_ino };
      const FirstName *first = g_hash_table_lookup (c->inodes, &key);
      if (first) {
        HardLink *h = g_new0 (HardLink, 1);
        h->target = g_strdup (first->rel);
        h->target_dir = first->dir;
        h->st = first->st;
        h->link = g_strdup (REL ());
        h->link_dir = f->dir;
        g_ptr_array_add (c->links, h);
        continue;
      }
      FirstName *fn = g_new0 (FirstName, 1);
      fn->rel = g_strdup (REL ());
      fn->dir = f->dir;
      fn->st = st;
      g_hash_table_insert (c->inodes, g_memdup2 (&key, sizeof key), fn);
    }
    if (S_ISREG (st.st_mode)) {
      c->total_bytes += (guint64) st.st_size;
      tr_job_set_total_units (c->job, c->total_bytes, FALSE);
    }
    if (S_ISREG (st.st_mode) && (guint64) st.st_size >= c->o.chunk_size) {
      int dst_dir = c->dst_root < 0 ? -1 : dir_cursor_open (&c->dst_walk, c->path->str, FALSE);
      int e = errno;
      if ((dst_dir < 0 && !c->dry_run) || !begin_big_file (c, dst_dir, REL (), name, &st, &e)) {
        emit_fail (c, task, "%s: %s", REL (), e);
        return TR_NEXT_TASK;
      }
      c->big_files++;
      continue; /* its chunks go out next */
    }
    batch_add (c, f, name, c->batch_n ? NULL : REL (), &st);
#undef REL
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

/* Gives a big file its metadata and final name, once all its chunks are in.  The
 * temporary is opened by descriptor and checked to be the one the walk made, and the
 * source to be still the version every chunk read. */
static void
finish_big_file (Copy *c, BigFile *b)
{
  if (!*b->tmp)
    return; /* up to date */
  g_autofree char *dir = NULL;
  const char *name;
  split_rel (b->rel, &dir, &name);
  int dst_dir = dir_cursor_open (&c->dst_done, dir, FALSE);
  if (dst_dir < 0) {
    c->counts.failed++;
    tr_job_message (c->job, "%s: not copied: cannot open its folder in the destination: %s",
                    b->rel, g_strerror (errno));
    return;
  }
  if (b->failed) {
    unlink_temporary (dst_dir, b->tmp, b->tmp_dev, b->tmp_ino);
    c->counts.failed++;
    tr_job_message (c->job, "%s: not copied (a part of it failed or did not run)", b->rel);
    return;
  }
  g_autoptr (GError) error = NULL;
  int src_dir = dir_cursor_open (&c->src_done, dir, FALSE);
  StatKey version;
  stat_key_from (&version, &b->st);
  int in = src_dir < 0 ? -1 : open_source_file (src_dir, name, &version, &error);
  int out = in < 0 ? -1 : open_temporary (dst_dir, b->tmp, O_WRONLY, b->tmp_dev, b->tmp_ino, &error);
  gboolean ok = src_dir < 0 ? copy_fail_source (&error, errno, "open its source folder")
                            : out >= 0 && meta_apply_fd (out, &b->st, in, &c->o, &error);
  if (ok && c->o.fsync && fsync (out) < 0)
    ok = copy_fail (&error, errno, "fsync");
  if (ok && renameat (dst_dir, b->tmp, dst_dir, name) < 0)
    ok = copy_fail (&error, errno, "rename into place");
  struct stat now;
  if (ok && (fstatat (dst_dir, name, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
             (guint64) now.st_dev != b->tmp_dev || (guint64) now.st_ino != b->tmp_ino)) {
    ok = FALSE;
    g_set_error (&error, TR_TASK_ERROR, EAGAIN | COPY_ENTRY_ONLY,
                 "the partial copy was replaced by another file as it took its final name");
  }
  if (ok && c->o.fsync && fsync (dst_dir) < 0) /* the new name, as for a small file */
    ok = copy_fail (&error, errno, "fsync the folder");
  if (out >= 0)
    close (out);
  if (in >= 0)
    close (in);
  if (ok) {
    c->counts.files++;
  } else {
    unlink_temporary (dst_dir, b->tmp, b->tmp_dev, b->tmp_ino);
    c->counts.failed++;
    tr_job_message (c->job, "%s: not copied: %s", b->rel, error->message);
  }
}

/* How many entries a task held, from its payload. */
static guint64
task_entries (const TrResult *r)
{
  if (r->sent == 0 || r->payload[0] != TASK_ENTRIES)
    return 1;
  PayloadReader pr = { r->payload + PAYLOAD_HEAD, r->payload + r->sent, FALSE };
  return payload_get_u64 (&pr);
}

static void
copy_result (gpointer state, const TrResult *r)
{
  Copy *c = state;
  CopyCounts got = { 0 };
  if (r->len == sizeof got) {
    memcpy (&got, r->data, sizeof got);
  } else if (r->error) {
    /* the task never ran to its end (it was not started, or its worker died): none of
     * its entries was copied */
    got.failed = task_entries (r);
    if (r->payload[0] != TASK_CHUNK && g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED))
      c->not_tried += got.failed;
  }
  if (r->sent > 0 && r->payload[0] == TASK_CHUNK) {
    PayloadReader pr = { r->payload + PAYLOAD_HEAD, r->payload + r->sent, FALSE };
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

/* Whether `made`, at a hard link's first name in the destination, is this run's copy of
 * the inode the walk saw there (h->st): of its type, size and (when kept) mtime and owner.
 * Whatever else sits at that name (an old file an if_exists rule kept, a copy of a source
 * that changed, a user's file put there) is not linked under a second name. */
static gboolean
is_copy_of (const Copy *c, const HardLink *h, const struct stat *made)
{
  const struct stat *src = &h->st;
  if ((made->st_mode & S_IFMT) != (src->st_mode & S_IFMT))
    return FALSE;
  if (S_ISREG (src->st_mode) && made->st_size != src->st_size)
    return FALSE;
  if ((c->o.preserve & PRESERVE_TIMESTAMPS) && !S_ISLNK (src->st_mode) &&
      (made->st_mtim.tv_sec != src->st_mtim.tv_sec || made->st_mtim.tv_nsec != src->st_mtim.tv_nsec))
    return FALSE;
  if (c->o.preserve & PRESERVE_OWNERSHIP)
    return made->st_uid == src->st_uid && made->st_gid == src->st_gid;
  return made->st_uid == geteuid ();
}

/* Hard links last, once every first name is copied: each later name is linked to the
 * inode at the first name, checked to be this run's copy and linked through its
 * descriptor, in folders checked to be the walk's. */
static void
make_hard_links (Copy *c)
{
  for (guint i = 0; i < c->links->len; i++) {
    HardLink *h = g_ptr_array_index (c->links, i);
    g_autofree char *tdir = NULL, *ldir = NULL;
    const char *tname, *lname;
    split_rel (h->target, &tdir, &tname);
    split_rel (h->link, &ldir, &lname);
    const DirRecord *tr = g_ptr_array_index (c->dirs, h->target_dir);
    const DirRecord *lr = g_ptr_array_index (c->dirs, h->link_dir);
    /* two folders at once: the walk's cursor is free by now */
    int td = dir_cursor_open (&c->dst_done, tdir, FALSE);
    int ld = td < 0 ? -1 : dir_cursor_open (&c->dst_walk, ldir, FALSE);
    int made = ld < 0 ? -1 : openat (td, tname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat ts, ls;
    gboolean ok = TRUE;
    int e = 0;
    const char *why = NULL;
    if (made < 0 || fstat (made, &ts) < 0) {
      ok = FALSE;
      e = errno;
    } else if (!folder_ids_match (&tr->ids, -1, td) || !folder_ids_match (&lr->ids, -1, ld)) {
      ok = FALSE;
      why = "a folder of it was replaced by another during the copy; not linked";
    } else {
      gboolean exists = fstatat (ld, lname, &ls, AT_SYMLINK_NOFOLLOW) == 0;
      if (exists && ls.st_ino == ts.st_ino && ls.st_dev == ts.st_dev) {
        c->counts.uptodate++; /* already linked */
      } else if (exists && c->o.if_exists == IF_EXISTS_SKIP) {
        c->counts.skipped++;
      } else if (exists && c->o.if_exists == IF_EXISTS_ERROR) {
        ok = FALSE;
        e = EEXIST;
      } else if (!is_copy_of (c, h, &ts)) {
        ok = FALSE;
        why = "its first name in the destination is not this run's copy of it (it was kept "
              "by if_exists, failed, or its source changed); not linked";
      } else {
        char tmp[TEMP_NAME_SIZE];
        temp_name (tmp);
        char proc[32];
        g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", made);
        ok = linkat (AT_FDCWD, proc, ld, tmp, AT_SYMLINK_FOLLOW) == 0 &&
             renameat (ld, tmp, ld, lname) == 0;
        e = errno;
        if (ok)
          c->hardlinks++;
        else
          unlinkat (ld, tmp, 0);
      }
    }
    if (!ok) {
      c->hardlinks_failed++;
      tr_job_message (c->job, "hard link %s -> %s: %s", h->link, h->target, why ? why : g_strerror (e));
    }
    if (made >= 0)
      close (made);
  }
}

/* Folder metadata, deepest first (the reverse of the order they were entered). */
static void
finish_dirs (Copy *c)
{
  for (guint i = c->dirs->len; i > 0; i--) {
    DirRecord *d = g_ptr_array_index (c->dirs, i - 1);
    g_autofree char *rel = dir_path (c, i - 1);
    int dst = dir_cursor_open (&c->dst_done, rel, FALSE);
    int src = dst < 0 ? -1 : dir_cursor_open (&c->src_done, rel, FALSE);
    g_autoptr (GError) error = NULL;
    if (dst >= 0 && !folder_ids_match (&d->ids, -1, dst)) {
      g_set_error_literal (&error, TR_TASK_ERROR, EAGAIN,
                           "it was replaced by another folder during the copy; its mode, owner "
                           "and times are not set");
      dst = -1;
    }
    if (dst < 0 || !meta_apply_fd (dst, &d->st, src, &c->o, &error)) {
      c->dirs_failed++;
      tr_job_message (c->job, "folder %s: %s", *rel ? rel : ".",
                      error ? error->message : g_strerror (errno));
    } else if (*rel) {
      c->dirs_copied++;
    }
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
    b->failed = TRUE; /* a chunk never reported */
    finish_big_file (c, b);
  }
  g_hash_table_remove_all (c->big);
  /* a worker killed mid-file (a second interrupt, a crash, a timeout) left its
   * temporary behind: none stays.  A job whose every task ended well left none. */
  gboolean clean = !stats->failed && !stats->not_run && !c->stopped;
  for (guint i = 0; !clean && c->dst_root >= 0 && !c->dry_run && i < c->dirs->len; i++) {
    g_autofree char *rel = dir_path (c, i);
    int fd = dir_cursor_open (&c->dst_done, rel, FALSE);
    int src = fd < 0 ? -1 : dir_cursor_open (&c->src_done, rel, FALSE);
    if (fd >= 0)
      remove_leftovers (fd, src);
  }
  if (c->dst_root >= 0 && !c->dry_run) {
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
                          G_GUINT64_FORMAT " failed",
                          c->counts.uptodate, c->counts.skipped,
                          c->counts.failed + c->hardlinks_failed + c->dirs_failed);
  if (c->not_tried)
    g_string_append_printf (summary, " (%" G_GUINT64_FORMAT " of them not tried: the job stopped first)",
                            c->not_tried);
  g_string_append_c (summary, '\n');
  if (!c->walk_done)
    g_string_append (summary, "the walk stopped before the end of the source: the entries it "
                              "did not reach are not counted above\n");
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
  g_string_free (c->path, TRUE);
  if (c->path_src_fd >= 0)
    close (c->path_src_fd);
  dir_cursor_clear (&c->src_walk);
  dir_cursor_clear (&c->dst_walk);
  dir_cursor_clear (&c->src_done);
  dir_cursor_clear (&c->dst_done);
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
  .description = "copies a folder tree like cp -a: atomic per file, in parallel; a rerun "
                 "copies only what changed; under MPI, source and destination must be on a filesystem every rank sees",
  .license = "MIT",
  .options = copy_options,
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
