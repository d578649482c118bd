/* copy.h — what the files of the copy plugin share: its options, the task payloads
 * that travel from the parent's walk to the workers, the counts that travel back, and
 * the helpers both sides use (folders opened one component at a time, temporary names). */
#ifndef TASKRUN_COPY_H
#define TASKRUN_COPY_H

#include <taskrun/taskrun.h>

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

/* Task payloads: a u8 kind, then the fields below (integers little-endian as written by
 * payload_put_*). */
typedef enum {
  TASK_ENTRIES = 1, /* u64 n, n x str relpath: small files, symlinks, FIFOs, devices */
  TASK_CHUNK = 2,   /* u64 file id, u64 offset, u64 length, u64 file size,
                     * str relpath, str temporary name ("" = up to date: nothing to do) */
  TASK_FAIL = 3,    /* u64 errno, str message: what the walk could not do, as a task */
} TaskKind;

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
void payload_put_u64 (GByteArray *b, guint64 v);
void payload_put_str (GByteArray *b, const char *s, gsize len);
typedef struct {
  const guint8 *p, *end;
  gboolean bad;
} PayloadReader;
guint64 payload_get_u64 (PayloadReader *r);
guint8 payload_get_u8 (PayloadReader *r);
char *payload_get_str (PayloadReader *r); /* newly allocated, NUL-terminated */

/* Opens folder `rel` ("" for the root itself) below root_fd, one component at a time,
 * never following a symlink; with `create`, missing folders are made (mode 0700 until
 * their own mode is set at the end).  Returns an fd or -1 with errno set. */
int open_dir_rel (int root_fd, const char *rel, gboolean create);

/* ".taskrun-<16 hex>.tmp": the temporary names of files being written. */
#define TEMP_NAME_SIZE 32
void temp_name (char buf[TEMP_NAME_SIZE]);
gboolean is_temp_name (const char *name);

/* Splits "a/b/c" into "a/b" and "c" (the folder is "" at the top). */
void split_rel (const char *rel, char **dir, const char **name);

/* Data (copydata.c). */
/* Copies [offset, offset + length).  `try_clone`: may share extents (whole files only;
 * set to FALSE when the filesystem said no).  `maybe_sparse`: look for holes. */
gboolean copy_range (int src, int dst, guint64 offset, guint64 length, gboolean *try_clone,
                     gboolean maybe_sparse, guint64 *copied, GError **error);
gboolean verify_range (int src, int dst, guint64 offset, guint64 length, GError **error);

/* Metadata (metadata.c).  `src_fd` (may be -1) is where xattrs come from. */
gboolean meta_apply_fd (int fd, const struct stat *st, int src_fd, const CopyOptions *o,
                        GError **error);
/* For an entry that cannot be opened (a symlink, a FIFO, a device): by name. */
gboolean meta_apply_at (int dirfd, const char *name, const struct stat *st, int src_dirfd,
                        const char *src_name, const CopyOptions *o, GError **error);

/* The worker hooks (worker.c). */
gboolean copy_worker_init (const TrConfig *config, gpointer *wstate, GError **error);
gboolean copy_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *out,
                   GError **error);
void copy_worker_fini (gpointer wstate);

/* Errors that mean every later write will fail too: the job stops. */
gboolean copy_errno_is_fatal (int e);
/* Sets *error to "WHAT: strerror(e)" (code e) and returns FALSE. */
gboolean copy_fail (GError **error, int e, const char *what);
/* if_exists = update: the same size and modification time (as rsync's quick check). */
gboolean copy_same_file (const struct stat *s, const struct stat *d);

#endif
