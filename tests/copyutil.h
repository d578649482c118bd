/* copyutil.h — helpers of the copy plugin's test programs (test-copy, test-copy-hostile). */
#ifndef TASKRUN_COPYUTIL_H
#define TASKRUN_COPYUTIL_H

#include <glib.h>

/* Fails the test with `what` and errno's text when r < 0. */
void must (int r, const char *what);
/* Writes `size` pseudo-random bytes (from `seed`) to path, mode 0644. */
void write_file (const char *path, gsize size, guint seed);
/* root/rel */
char *path_in (const char *root, const char *rel);
/* root/rel, made as an empty folder (0755). */
char *new_folder (const char *root, const char *rel);
/* What `rsync -aHAXn --checksum --itemize-changes SRC/ DST/` prints: "" when equal. */
char *oracle (const char *src, const char *dst);
/* dir/copy.ini: 2 workers, chunk_size 64K unless `extra` sets it, and `extra`'s lines. */
char *copy_job (const char *dir, const char *src, const char *dst, const char *extra);
/* taskrun -c job; its exit status. */
int run_copy (const char *job, char **out, char **err);
/* The same as the unprivileged user 65534 when root (from a copy of taskrun that user can
 * reach), else as this user; in `cwd`. */
int run_copy_as_nobody (const char *job, const char *cwd, char **out, char **err);
/* Temporary names (.taskrun-*.tmp) anywhere under root. */
guint count_temps (const char *root);
/* Removes the public copy of taskrun, if one was made. */
void copyutil_cleanup (void);

#endif
