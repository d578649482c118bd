/* results.c — the results file: one JSON object per line (JSON Lines) for each task's
 * final attempt, written and flushed as it ends, for a program to read.
 *
 * The fields are GNU parallel's `--results FILE.json` names where they mean the same
 * thing (Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command), then
 * taskrun's own: Version (TR_RESULTS_VERSION), Worker (the slot), Pid, Attempt, Units,
 * Error (null, or its Domain, Code and Message), and the task's output as Output (when it
 * is UTF-8 text) or OutputBase64 (when it is not), except for a plugin that runs
 * commands (TR_PLUGIN_FLAG_STATUS_IN_CODE: exec), whose payload is a record of its own
 * and whose commands' output goes to taskrun's stdout.  A field is only ever added
 * within a version; docs/results.md is the reference.
 *
 * Owns: the row's layout and writing it whole.
 * Does not own: which attempts get a row (runner.c: final attempts a worker ran, the
 * rows of the job log that end a task), descriptions.
 */
#include "results.h"
#include "json.h"
#include "logfile.h"
#include "stdout.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct TrResultsFile {
  int fd;
  off_t good;   /* where the last whole row ends: a row cut short is cut off there */
  char *path;
  GString *row;
};

TrResultsFile *
tr_results_open (const char *path, gboolean append, GError **error)
{
  int fd = tr_logfile_open (path, O_WRONLY | O_CREAT | (append ? O_APPEND : 0), "the results file",
                            error);
  if (fd < 0)
    return NULL;
  if (!append && ftruncate (fd, 0) != 0) {
    int e = errno;
    close (fd);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot write the results file %s: %s", path, g_strerror (e));
    return NULL;
  }
  TrResultsFile *f = g_new0 (TrResultsFile, 1);
  f->fd = fd;
  f->good = lseek (fd, 0, SEEK_END);
  if (append && f->good > 0) {
    /* a row an interrupted run cut short stays on a line of its own */
    char last = '\n';
    if (pread (fd, &last, 1, f->good - 1) == 1 && last != '\n' && write (fd, "\n", 1) == 1)
      f->good++;
  }
  f->path = g_strdup (path);
  f->row = g_string_new (NULL);
  return f;
}

gboolean
tr_results_write (TrResultsFile *f, const TrResult *r, const char *command, const char *host,
                  gboolean with_output)
{
  GString *o = f->row;
  g_string_printf (o, "{\"Version\":%d,\"Seq\":%" G_GUINT64_FORMAT ",\"Host\":", TR_RESULTS_VERSION,
                   r->seq);
  tr_json_append_string (o, host, -1);
  g_string_append (o, ",\"Starttime\":");
  tr_json_append_double (o, r->start_time, 3);
  g_string_append (o, ",\"JobRuntime\":");
  tr_json_append_double (o, r->seconds, 3);
  g_string_append_printf (o, ",\"Send\":%" G_GSIZE_FORMAT ",\"Receive\":%" G_GSIZE_FORMAT
                          ",\"Exitval\":%d,\"Signal\":%d,\"Command\":", r->sent,
                          r->error ? (gsize) 0 : r->len, r->exit_value, r->signal);
  tr_json_append_string (o, command, -1);
  g_string_append_printf (o, ",\"Worker\":%u,\"Pid\":%d,\"Attempt\":%u,\"Units\":%" G_GUINT64_FORMAT
                          ",\"Error\":", r->worker, (int) r->worker_pid, r->attempt, r->units);
  if (r->error) {
    g_string_append (o, "{\"Domain\":");
    tr_json_append_string (o, g_quark_to_string (r->error->domain), -1);
    g_string_append_printf (o, ",\"Code\":%d,\"Message\":", r->error->code);
    tr_json_append_string (o, r->error->message, -1);
    g_string_append (o, "}");
  } else {
    g_string_append (o, "null");
  }
  if (!with_output) {
    /* no Output: the payload is the plugin's own record */
  } else if (r->len == 0) {
    g_string_append (o, ",\"Output\":\"\"");
  } else if (g_utf8_validate_len ((const char *) r->data, r->len, NULL)) {
    g_string_append (o, ",\"Output\":");
    tr_json_append_string (o, (const char *) r->data, (gssize) r->len);
  } else {
    g_string_append (o, ",\"OutputBase64\":");
    tr_json_append_base64 (o, r->data, r->len);
  }
  g_string_append (o, "}\n");
  if (!tr_write_fully (f->fd, o->str, o->len)) {
    int e = errno;
    /* no row half written: a reader of JSON Lines would stop at it */
    if (ftruncate (f->fd, f->good) != 0) {
      /* nothing more to do: the caller says the write's error */
    }
    errno = e;
    return FALSE;
  }
  f->good += (off_t) o->len;
  return TRUE;
}

gboolean
tr_results_close (TrResultsFile *f, GError **error)
{
  if (!f)
    return TRUE;
  gboolean ok = close (f->fd) == 0;
  if (!ok)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "cannot write the results file %s: %s", f->path, g_strerror (errno));
  g_string_free (f->row, TRUE);
  g_free (f->path);
  g_free (f);
  return ok;
}
