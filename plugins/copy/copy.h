/* copy.h — what the files of the copy plugin share: its options, the task payloads
 * that travel from the parent's walk to the workers, the counts that travel back, and
 * the helpers both sides use (folders opened one component at a time, temporary names). */
#ifndef TASKRUN_COPY_H
#define TASKRUN_COPY_H

#include <taskrun/plugin.h>

#include <sys/stat.h>
#include <sys/types.h>

typedef enum { IF_EXISTS_UPDATE, IF_EXISTS_OVERWRITE, IF_EXISTS_SKIP, IF_EXISTS_ERROR } IfExists;

enum {
  PRESERVE_MODE = 1 << 0,
  PRESERVE_OWNERSHIP = 1 << 1,
  PRESERVE_TIMESTAMPS = 1 << 2,
  PRESERVE_XATTR = 1 << 3, /* includes ACLs, which are stored as xattrs */
  PRESERVE_ALL = 0xf,
};

typedef struct {
  char *source;
  char *destination;
  IfExists if_exists;
  guint preserve;
  guint64 chunk_size;
  gboolean fsync;
  gboolean verify;
  gboolean is_root; /* owners and device nodes can be copied */
  mode_t umask;     /* without preserve = mode, modes are the source's less this */
} CopyOptions;

gboolean copy_options_load (const TrConfig *config, CopyOptions *o, GError **error);
void copy_options_clear (CopyOptions *o);

/* Task payloads: a u8 kind, the Roots, then the fields below (integers little-endian as
 * written by payload_put_*). */
typedef enum {
  TASK_ENTRIES = 1, /* u64 n, then n x (u8 flags, [str folder, FolderIds], str name, u8 type):
                     * small files, symlinks, FIFOs, sockets, devices.  The folder is
                     * sent only with ENTRY_NEW_FOLDER (else: the previous entry's), so a
                     * deep folder's path travels once per task, not once per entry;
                     * type is the walk's S_IFMT >> 12, so a type change is noticed. */
  TASK_CHUNK = 2,   /* u64 file id, u64 offset, u64 length, StatKey of the source as the
                     * walk saw it, str relpath, str temporary name ("" = up to date:
                     * nothing to do), u64 dev, u64 ino of that temporary */
  TASK_FAIL = 3,    /* u64 errno, str message: what the walk could not do, as a task */
} TaskKind;

enum { ENTRY_NEW_FOLDER = 1 };

/* Which folders the walk opened, by device and inode: a worker reaches the roots and each
 * folder again by name, and a user who can rename an entry on the way (the destination
 * in a sticky /tmp, a folder of the copy in a folder they can write in) could put another
 * folder there; the worker checks it opened these, or writes and reads nothing there. */
typedef struct {
  guint64 src_dev, src_ino, dst_dev, dst_ino;
} FolderIds;
#define PAYLOAD_HEAD (1 + 4 * 8) /* the kind, then the roots' FolderIds */

/* What identifies one version of a source file: the walk's fstat, checked again on each
 * descriptor a worker opens, so every chunk of a big file reads the same version. */
typedef struct {
  guint64 dev, ino, size, mtime_sec, mtime_nsec;
} StatKey;
void stat_key_from (StatKey *k, const struct stat *st);
gboolean stat_key_same_version (const StatKey *k, const struct stat *st);

/* What a task did, sent back as its output (also when it failed). */
typedef struct {
  guint64 files;      /* regular files copied */
  guint64 bytes;      /* bytes of file data copied */
  guint64 symlinks;
  guint64 specials;   /* FIFOs and device nodes */
  guint64 uptodate;   /* skipped: the destination was already the same */
  guint64 skipped;    /* skipped: if_exists = skip, or not copyable here */
  guint64 failed;     /* entries that failed */
} CopyCounts;

/* Byte-string helpers for payloads. */
void payload_put_u8 (GByteArray *b, guint8 v);
void payload_put_u64 (GByteArray *b, guint64 v);
void payload_put_str (GByteArray *b, const char *s, gsize len);
void payload_put_key (GByteArray *b, const StatKey *k);
typedef struct {
  const guint8 *p, *end;
  gboolean bad;
} PayloadReader;
guint64 payload_get_u64 (PayloadReader *r);
guint8 payload_get_u8 (PayloadReader *r);
char *payload_get_str (PayloadReader *r); /* newly allocated, NUL-terminated */
void payload_get_key (PayloadReader *r, StatKey *k);
void payload_put_ids (GByteArray *b, const FolderIds *ids);
void payload_get_ids (PayloadReader *r, FolderIds *ids);
/* Whether the open folders src and dst (either may be -1: not checked) are those ids names. */
gboolean folder_ids_match (const FolderIds *ids, int src, int dst);

/* Reads a folder's names, sorted, through a description of its own (a dup would share
 * the offset of one already read to its end).  NULL with errno on failure. */
GPtrArray *read_names (int dirfd);


/* A folder of a tree reached by relative path, with the descriptors of the deepest
 * components of the last one kept open (dircursor.c).  The descriptor dir_cursor_open
 * returns belongs to the cursor: valid until its next call, never closed by the caller. */
#define DIR_CURSOR_KEEP 32
typedef struct {
  int root;              /* not owned */
  GString *path;         /* the components of the current folder, "a/b/c" */
  GArray *ends;          /* gsize: where each component ends in path */
  int fds[DIR_CURSOR_KEEP]; /* component d's descriptor at d % KEEP, for the deepest KEEP */
  gboolean taken_over;   /* the last open failed: a folder it made was another user's
                          * when it opened it (dir_cursor_open resets it) */
} DirCursor;
void dir_cursor_init (DirCursor *c, int root);
/* Folder `rel` ("" for the root) below the root, one component at a time, never
 * following a symlink; with `create` (the walk), missing folders are made (0700 until
 * their mode is set at the end) and existing ones made writable (make_writable).  A
 * descriptor the cursor owns, or -1 with errno set. */
int dir_cursor_open (DirCursor *c, const char *rel, gboolean create);
void dir_cursor_clear (DirCursor *c);

/* ".taskrun-<8 hex><8 hex>.tmp": the temporary names of files being written.  The last
 * 8 digits are a keyed hash of the first 8, so a name of this shape that taskrun did not
 * make (a user's file) is told apart (one chance in 2^32), and the sweep of leftovers
 * removes only taskrun's own. */
#define TEMP_NAME_SIZE 32
void temp_name (char buf[TEMP_NAME_SIZE]);
gboolean is_temp_name (const char *name);
/* Removes the temporaries a killed run left in dst_dir: names of taskrun's shape that the
 * source folder (src_dir; -1 if it has none) does not have, and only files, never
 * folders.  Lists dst_dir through a description of its own. */
void remove_leftovers (int dst_dir, int src_dir);

/* Removes temporary `name` of dst_dir if it is still the file (dev, ino) taskrun made. */
void unlink_temporary (int dst_dir, const char *name, guint64 dev, guint64 ino);
/* Not as root: makes a folder taskrun owns writable and searchable by its owner for the
 * time of the run (an earlier, interrupted run may have given it the final mode of a
 * read-only source folder); finish_dirs gives every folder its mode at the end. */
void make_writable (int dir_fd);

/* Opens a source file to read it: never following a symlink, never blocking on a FIFO
 * put in its place, and only if the descriptor is a regular file of the version `want`
 * names (NULL: any regular file).  -1 and *error otherwise. */
int open_source_file (int dirfd, const char *name, const StatKey *want, GError **error);
/* Opens a temporary taskrun made (by name, in a folder others may write in) and checks it
 * is still that file: a regular file of that device and inode with one link. */
int open_temporary (int dirfd, const char *name, int flags, guint64 dev, guint64 ino,
                    GError **error);

/* Splits "a/b/c" into "a/b" and "c" (the folder is "" at the top). */
void split_rel (const char *rel, char **dir, const char **name);

/* Data (copydata.c). */
/* Copies [offset, offset + length).  `try_clone`: may share extents (whole files only;
 * set to FALSE when the filesystem said no).  `maybe_sparse`: look for holes. */
gboolean copy_range (int src, int dst, guint64 offset, guint64 length, gboolean *try_clone,
                     gboolean maybe_sparse, guint64 *copied, GError **error);
gboolean verify_range (int src, int dst, guint64 offset, guint64 length, GError **error);

/* Metadata (metadata.c).  `src_fd` (may be -1) is where xattrs come from; with
 * PRESERVE_XATTR the copy ends with exactly the source's (an ACL inherited from the
 * destination folder's default ACL is removed). */
gboolean meta_apply_fd (int fd, const struct stat *st, int src_fd, const CopyOptions *o,
                        GError **error);
/* For an entry that cannot be opened to read or write (a symlink, a FIFO, a socket, a
 * device): through O_PATH descriptors of the entry and its source, never a name, so a
 * name swapped for a symlink meanwhile changes nothing outside the destination. */
gboolean meta_apply_path (int path_fd, const struct stat *st, int src_path_fd,
                          const CopyOptions *o, GError **error);

/* The worker hooks (worker.c). */
gboolean copy_worker_init (const TrConfig *config, gpointer *wstate, GError **error);
gboolean copy_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *out,
                   GError **error);
void copy_worker_fini (gpointer wstate);

/* A task's error code is the errno of the failing call, with COPY_ENTRY_ONLY added when
 * the failure is the entry's alone (the source changed or could not be read): only a
 * destination's ENOSPC, EDQUOT, EROFS or EIO means every later write fails too, and
 * stops the job. */
#define COPY_ENTRY_ONLY 0x10000
gboolean copy_errno_is_fatal (int code);
/* Sets *error to "WHAT: strerror(e)" (code e) and returns FALSE: a destination error. */
gboolean copy_fail (GError **error, int e, const char *what);
/* The same for an error of the source (code e | COPY_ENTRY_ONLY). */
gboolean copy_fail_source (GError **error, int e, const char *what);
/* if_exists = update: the same size and modification time (as rsync's quick check). */
gboolean copy_same_file (const struct stat *s, const struct stat *d);

#endif
