/* stdout.h — taskrun's standard output (stdout.c). */
#ifndef TASKRUN_STDOUT_H
#define TASKRUN_STDOUT_H

#include <glib.h>

/* Every write of taskrun's output goes through tr_stdout_write, which reports the first
 * failure on stderr and returns FALSE; tr_stdout_close flushes and closes stdout and
 * returns `status`, made 1 (TR_EXIT_FAILED) from 0 if a write failed. */
gboolean tr_stdout_write (const char *text, gsize len);
/* Writes what is buffered (a last line without its newline); FALSE as tr_stdout_write. */
gboolean tr_stdout_flush (void);
/* Writes `len` bytes on fd 1 or 2 after what stdio holds for it, with write(2): a
 * descriptor someone left non-blocking (O_NONBLOCK on a shared pipe or terminal) is
 * waited for, where stdio would drop what did not fit.  FALSE as tr_std_write_file. */
gboolean tr_std_write_bytes (int fd, const void *data, gsize len);
/* Writes the whole content of `file` (from offset 0, its offset untouched) on fd 1 or 2,
 * after what stdio holds for it.  FALSE when not all of it was written, with *read_errno
 * set when reading `file` failed (0 when writing did: on fd 1, reported as
 * tr_stdout_write's failures are). */
gboolean tr_std_write_file (int fd, int file, int *read_errno);
/* All of `len` bytes to `fd` with write(2), across short writes and EINTR, a
 * non-blocking descriptor waited for: taskrun's output, and the files a run writes about
 * itself (trace, results, report).  FALSE with errno set. */
gboolean tr_write_fully (int fd, const void *data, gsize len);
/* Puts /dev/null in the place of a standard descriptor closed at start; first thing. */
void tr_std_fds_open (void);
int tr_stdout_close (int status);

#endif
