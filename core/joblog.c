/* joblog.c — the job log, in GNU parallel's --joblog format, and reading it back for
 * --resume.
 *
 * Owns: the file format (a header line, then one tab-separated row per attempt: Seq, Host
 * ":", Starttime in Unix seconds with milliseconds, JobRuntime, Send and Receive bytes,
 * Exitval, Signal, Command), writing each row and flushing it as the attempt ends (so a
 * crash loses at most the row being written), and finding the tasks that already
 * succeeded (Exitval 0 and Signal 0), and refusing a job log that is not a regular file
 * or that another job wrote (the identity row after the header).  A row cut short by a
 * crash (the last line, or the start of a row on a line of its own, which appending
 * leaves) is ignored with a warning; any other malformed line is an error naming the
 * file and line.
 * Does not own: deciding what to skip (runner.c) or when attempts end (pool/handoff.c).
 */
#include "joblog.h"
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define JOBLOG_HEADER "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
/* The row after the header: which job wrote the log, so that --resume refuses a log of
 * another job.  GNU parallel's --resume passes over lines that are not rows. */
#define JOBLOG_IDENTITY "# taskrun job "

struct TrJoblog {
  FILE *file;
};

gboolean
tr_joblog_check (const char *path, GError **error)
{
  return tr_logfile_check (path, "the job log", error);
}

TrJoblog *
tr_joblog_open (const char *path, gboolean append, const char *identity, GError **error)
{
  /* appending reads the old log's last byte, so it opens for reading too */
  int fd = tr_logfile_open (path, O_CREAT | (append ? O_RDWR | O_APPEND : O_WRONLY), "the job log", error);
  if (fd < 0)
    return NULL;
  FILE *f = append || ftruncate (fd, 0) == 0 ? fdopen (fd, append ? "a+" : "w") : NULL;
  if (!f) {
    int e = errno;
    close (fd);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot open the job log %s: %s", path, g_strerror (e));
    return NULL;
  }
  gboolean need_header = TRUE;
  gboolean need_newline = FALSE;
  /* appending: only the last byte of the old log matters (writes go to the end anyway) */
  if (append && fseek (f, -1, SEEK_END) == 0) {
    need_header = FALSE;
    need_newline = fgetc (f) != '\n';
    fseek (f, 0, SEEK_END); /* C wants a seek between reading and writing */
  }
  if (need_newline)
    fputc ('\n', f); /* a row cut short by a crash stays on a line of its own */
  if (need_header)
    fprintf (f, "%s%s%s\n", JOBLOG_HEADER, JOBLOG_IDENTITY, identity);
  if (fflush (f) != 0) {
    int e = errno;
    fclose (f);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot write the job log %s: %s", path, g_strerror (e));
    return NULL;
  }
  TrJoblog *log = g_new0 (TrJoblog, 1);
  log->file = f;
  return log;
}

gboolean
tr_joblog_write (TrJoblog *log, const TrResult *r, const char *command, gboolean quoted)
{
  /* a tab or line break in a description would split the row (--resume could not read
   * it), and turning them into blanks would make two descriptions look the same */
  g_autofree char *escaped = tr_description_shown (command, quoted);
  command = escaped;
  int n = fprintf (log->file,
                   "%" G_GUINT64_FORMAT "\t:\t%.3f\t%10.3f\t%" G_GSIZE_FORMAT "\t%" G_GSIZE_FORMAT
                   "\t%d\t%d\t%s\n",
                   r->seq, r->start_time, r->seconds, r->sent, r->error ? (gsize) 0 : r->len,
                   r->exit_value, r->signal, command);
  return n > 0 && fflush (log->file) == 0;
}

void
tr_joblog_close (TrJoblog *log)
{
  if (!log)
    return;
  fclose (log->file);
  g_free (log);
}

static gboolean
parse_u64 (const char *s, guint64 *out)
{
  return g_ascii_string_to_unsigned (s, 10, 1, G_MAXUINT64, out, NULL);
}

static gboolean
parse_int (const char *s, gint64 *out)
{
  return g_ascii_string_to_signed (g_strstrip ((char *) s), 10, G_MININT32, G_MAXINT32, out, NULL);
}

/* Reads the log row by row (never whole: a log of ten million rows is 1.6 GB), adding
 * the Seq of each succeeded row to the set. */
gboolean
tr_joblog_read_succeeded (const char *path, const char *identity, TrSeqSet *done, GError **error)
{
  g_autoptr (GError) e = NULL;
  int fd = tr_logfile_open (path, O_RDONLY, "the job log", &e);
  if (fd < 0) {
    if (g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      return TRUE; /* nothing ran yet: resume runs everything */
    g_propagate_error (error, g_steal_pointer (&e));
    return FALSE;
  }
  FILE *f = fdopen (fd, "r");
  if (!f) {
    close (fd);
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "cannot read the job log %s: %s", path, g_strerror (errno));
    return FALSE;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  guint lineno = 0;
  gboolean ok = TRUE, identified = FALSE;
  while (ok && (errno = 0, len = getline (&line, &cap, f)) >= 0) {
    lineno++;
    gboolean last = len == 0 || line[len - 1] != '\n'; /* no newline: cut short */
    if (!last)
      line[--len] = '\0';
    if (*line == '\0')
      continue;
    if (lineno == 1 && g_str_has_prefix (line, "Seq\tHost\t"))
      continue;
    if (g_str_has_prefix (line, JOBLOG_IDENTITY)) {
      const char *theirs = line + strlen (JOBLOG_IDENTITY);
      if (identity && strcmp (theirs, identity) != 0) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                     "%s:%u: this job log was written by another job (%s; this job is %s), so "
                     "its task numbers do not name this job's tasks; give another --joblog, or "
                     "run without --resume",
                     path, lineno, theirs, identity);
        ok = FALSE;
      }
      identified = TRUE;
      continue;
    }
    g_auto (GStrv) fields = g_strsplit (line, "\t", 9);
    guint64 seq;
    gint64 exitval, sig;
    gboolean row = g_strv_length (fields) == 9 && parse_u64 (fields[0], &seq) &&
                   parse_int (fields[6], &exitval) && parse_int (fields[7], &sig);
    if (!row) {
      /* Cut short by a crash: the last line, or a start of a row (its Seq, then fewer
       * fields) that a later run, appending, left on a line of its own. */
      if (last || (g_strv_length (fields) < 9 && parse_u64 (fields[0], &seq))) {
        g_printerr ("taskrun: %s:%u: ignoring a row cut short (the run that wrote it was "
                    "interrupted)\n", path, lineno);
        continue;
      }
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s:%u: not a job log row (expected 9 tab-separated fields: Seq, Host, "
                   "Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command)", path, lineno);
      ok = FALSE;
      continue;
    }
    if (exitval == 0 && sig == 0)
      tr_seq_set_add (done, seq);
  }
  if (ok && ferror (f)) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "cannot read the job log %s: %s", path, g_strerror (errno));
    ok = FALSE;
  }
  free (line);
  fclose (f);
  if (ok && !identified && lineno > 1)
    g_printerr ("taskrun: %s: the job log names no job (GNU parallel, or a taskrun before "
                "1.1, wrote it): its task numbers are taken to be this job's\n", path);
  return ok;
}

char *
tr_joblog_identity (const char *plugin, const char *job_file)
{
  g_autofree char *canonical = g_canonicalize_filename (job_file, NULL);
  g_autofree char *shown = tr_text_escape (canonical);
  return g_strdup_printf ("%s %s", plugin, shown);
}
