/* exec.h — what the exec plugin's parent side and its workers share: the options, the
 * task's payload and the result's layout.
 *
 * A task's payload: u64 sequence number (little-endian), then the input's bytes.
 * A result: u8 how (EXEC_EXITED, EXEC_SIGNALED, EXEC_NOT_STARTED), i32 its value (the
 * exit status, the signal, the errno), u64 the length of the command's stdout, u8 which
 * streams are in attached files (EXEC_STDOUT_FILE, EXEC_STDERR_FILE: the result's
 * files, stdout's first), then the stdout and the stderr held in memory (none of a
 * stream that is in a file).
 */
#ifndef TASKRUN_EXEC_H
#define TASKRUN_EXEC_H

#include <taskrun/plugin.h>

#include "template.h"

typedef enum {
  EXEC_EXITED = 0,
  EXEC_SIGNALED = 1,
  EXEC_NOT_STARTED = 2,
} ExecHow;

enum { EXEC_STDOUT_FILE = 1, EXEC_STDERR_FILE = 2 };

#define EXEC_RESULT_HEAD (1 + 4 + 8 + 1)
/* What a task's output may take in its result's bytes (TrOutput's limit, less the head):
 * all of it where files cannot be attached (the MPI backend). */
#define EXEC_OUTPUT_MAX ((32u << 20) - EXEC_RESULT_HEAD)
/* A stream is held in memory up to this size, then in an unlinked temporary file: so a
 * command's output costs the worker and taskrun a few MiB, whatever its size, and the
 * early results an ordered job holds cost 128 KiB each at most.  A file costs some 15 us
 * to make, nothing beside a command that writes this much. */
#define EXEC_SPILL_AT (64u << 10)

/* One stream of a task's output: bytes in memory, or a file (data NULL, file >= 0). */
typedef struct {
  const guint8 *data;
  gsize len;
  int file;
} ExecStream;

#define EXEC_ERROR (exec_error_quark ())
GQuark exec_error_quark (void);

extern const TrOption exec_options[];

/* results = DIR (results.c). */
typedef struct ExecResults ExecResults;
ExecResults *exec_results_open (const char *path, GError **error);
gboolean exec_results_write (ExecResults *res, guint64 seq, const ExecStream *out,
                             const ExecStream *err, int exitval, int signal, GError **error);
void exec_results_close (ExecResults *res);
/* Writes all of data to fd (EINTR retried); FALSE with errno set. */
gboolean exec_write_all (int fd, const guint8 *data, gsize len);

/* The worker hooks (run.c). */
gboolean exec_worker_init (const TrConfig *config, gpointer *state, GError **error);
gboolean exec_run (gpointer state, const guint8 *payload, gsize len, TrOutput *output,
                   GError **error);
void exec_worker_fini (gpointer state);

/* The template as the options say: command, shell, colsep. */
ExecTemplate *exec_template_from_config (const TrConfig *config, GError **error);
/* The values of one input (columns split when colsep is set); `cols` keeps the pieces. */
void exec_values_init (ExecValues *v, const TrConfig *config, const char *input, gsize len,
                       guint64 seq, guint slot, GPtrArray *cols, GArray *col_lens);

static inline void
exec_put_u64 (guint8 *p, guint64 v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (guint8) (v >> (8 * i));
}

static inline guint64
exec_get_u64 (const guint8 *p)
{
  guint64 v = 0;
  for (int i = 0; i < 8; i++)
    v |= (guint64) p[i] << (8 * i);
  return v;
}

#endif
