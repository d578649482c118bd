/* exec.c — the exec plugin's parent side: runs a command once per input, N at a time,
 * GNU parallel's everyday job.
 *
 * Owns: the options, reading the inputs (a file or stdin, one per line or NUL-ended, or
 * the `args` list), one task per input, and writing each task's output whole when it
 * ends: stdout to stdout, stderr to stderr, never mixed with another task's.
 * Does not own: the command's words and quoting (template.c), running it (run.c),
 * timeouts, retries and the job log (the core).
 */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (taskrun-exec-error-quark, exec_error)

const TrOption exec_options[] = {
  { .name = "command", .type = TR_OPTION_STRING, .required = TRUE,
    .help = "the command, with GNU parallel's replacement strings ({} {.} {/} {//} {/.} {#} {%} {1} ...)" },
  { .name = "shell", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "run it with /bin/sh -c, every substituted value quoted (pipes, redirections)" },
  { .name = "input", .type = TR_OPTION_PATH,
    .help = "a file of inputs, one per line (- for stdin); the default without args" },
  { .name = "null", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "inputs end in NUL, not newline (find -print0)" },
  { .name = "args", .type = TR_OPTION_STRING,
    .help = "the inputs as a list of words in the job file (GNU parallel's :::)" },
  { .name = "colsep", .type = TR_OPTION_STRING,
    .help = "split each input into columns {1} {2} ... at this string (TAB: a tab)" },
  { .name = "tag", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "put the input and a tab before every line a command prints (GNU parallel's --tag)" },
  { .name = "results", .type = TR_OPTION_PATH,
    .help = "also keep each task's stdout, stderr, exitval and signal in files under DIR/SEQ/" },
  { .name = "workdir", .type = TR_OPTION_PATH,
    .help = "the commands' working directory (default: where taskrun was started)" },
  { .name = NULL },
};

typedef struct {
  TrJob *job;
  const TrConfig *config;
  ExecTemplate *template;
  FILE *in;           /* the input file, or stdin; NULL with `args` */
  gboolean close_in;  /* it is ours to close */
  int delim;          /* '\n' or '\0' */
  GStrv args;         /* `args`, split as a shell splits words */
  guint next_arg;
  char *line;         /* getdelim's buffer */
  size_t line_room;
  guint64 made;
  char *input_name;   /* for messages */
  gboolean tag;
  GString *tagged;    /* a task's output with its tags, reused */
  ExecResults *results; /* results = DIR; NULL: none */
} Exec;

ExecTemplate *
exec_template_from_config (const TrConfig *config, GError **error)
{
  return exec_template_parse (tr_config_get_string (config, "command"),
                              tr_config_is_set (config, "colsep"),
                              tr_config_get_bool (config, "shell"), error);
}

static const char *
colsep_of (const TrConfig *config)
{
  const char *sep = tr_config_get_string (config, "colsep");
  return sep && strcmp (sep, "TAB") == 0 ? "\t" : sep;
}

void
exec_values_init (ExecValues *v, const TrConfig *config, const char *input, gsize len,
                  guint64 seq, guint slot, GPtrArray *cols, GArray *col_lens)
{
  *v = (ExecValues) { .input = input, .input_len = len, .seq = seq, .slot = slot };
  if (!tr_config_is_set (config, "colsep"))
    return;
  g_ptr_array_set_size (cols, 0);
  g_array_set_size (col_lens, 0);
  exec_split_columns (input, len, colsep_of (config), cols);
  for (guint i = 0; i < cols->len; i++) {
    gsize n = strlen (g_ptr_array_index (cols, i));
    g_array_append_val (col_lens, n);
  }
  v->cols = (const char *const *) cols->pdata;
  v->col_lens = (const gsize *) (void *) col_lens->data;
  v->n_cols = cols->len;
}

static void
exec_destroy (gpointer state)
{
  Exec *e = state;
  if (e->close_in && e->in)
    fclose (e->in);
  g_strfreev (e->args);
  free (e->line);
  g_clear_pointer (&e->template, exec_template_free);
  g_free (e->input_name);
  if (e->tagged)
    g_string_free (e->tagged, TRUE);
  exec_results_close (e->results);
  g_free (e);
}

static gboolean
exec_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  Exec *e = g_new0 (Exec, 1);
  e->job = job;
  e->config = config;
  e->delim = tr_config_get_bool (config, "null") ? '\0' : '\n';
  e->tag = tr_config_get_bool (config, "tag");
  e->tagged = g_string_new (NULL);
  e->template = exec_template_from_config (config, error);
  if (!e->template) {
    g_prefix_error (error, "command: ");
    exec_destroy (e);
    return FALSE;
  }
  /* a workdir that is not a folder would fail every task as "cannot run" the command */
  const char *workdir = tr_config_get_string (config, "workdir");
  int wd = workdir ? open (workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -2;
  if (wd == -1) {
    int errsv = errno;
    g_set_error (error, EXEC_ERROR, errsv, "workdir %s: %s", workdir, g_strerror (errsv));
    exec_destroy (e);
    return FALSE;
  }
  if (wd >= 0)
    close (wd);
  const char *results = tr_config_get_string (config, "results");
  if (results && !tr_job_is_dry_run (job) && !(e->results = exec_results_open (results, error))) {
    exec_destroy (e);
    return FALSE;
  }
  const char *args = tr_config_get_string (config, "args");
  const char *input = tr_config_get_string (config, "input");
  if (args && input) {
    g_set_error_literal (error, EXEC_ERROR, EINVAL, "input and args: give one or the other");
    exec_destroy (e);
    return FALSE;
  }
  if (args) {
    if (!g_shell_parse_argv (args, NULL, &e->args, error)) {
      if (*error && g_error_matches (*error, G_SHELL_ERROR, G_SHELL_ERROR_EMPTY_STRING)) {
        g_clear_error (error);
        e->args = g_new0 (char *, 1);
      } else {
        g_prefix_error (error, "args: ");
        exec_destroy (e);
        return FALSE;
      }
    }
    *state = e;
    return TRUE;
  }
  if (!input || strcmp (input, "-") == 0) {
    e->in = stdin;
    e->input_name = g_strdup ("standard input");
  } else {
    e->in = fopen (input, "re");
    if (!e->in) {
      int errsv = errno;
      g_set_error (error, EXEC_ERROR, errsv, "input %s: %s", input, g_strerror (errsv));
      exec_destroy (e);
      return FALSE;
    }
    e->close_in = TRUE;
    e->input_name = g_strdup (input);
  }
  *state = e;
  return TRUE;
}

/* The next input, from the list or the file; NULL at the end (or an error, in *error). */
static const char *
next_input (Exec *e, gsize *len, GError **error)
{
  if (e->args) {
    const char *a = e->args[e->next_arg];
    if (!a)
      return NULL;
    e->next_arg++;
    *len = strlen (a);
    return a;
  }
  errno = 0;
  ssize_t n = getdelim (&e->line, &e->line_room, e->delim, e->in);
  if (n < 0) {
    if (ferror (e->in)) {
      int errsv = errno ? errno : EIO;
      g_set_error (error, EXEC_ERROR, errsv, "reading %s: %s", e->input_name, g_strerror (errsv));
    }
    return NULL;
  }
  if (n > 0 && e->line[n - 1] == e->delim)
    n--;
  *len = (gsize) n;
  return e->line;
}

static TrNext
exec_next (gpointer state, TrTask *task, GError **error)
{
  Exec *e = state;
  gsize len = 0;
  const char *input = next_input (e, &len, error);
  if (!input)
    return error && *error ? TR_NEXT_ERROR : TR_NEXT_END;
  guint8 head[8];
  exec_put_u64 (head, ++e->made);
  tr_task_set_payload (task, head, sizeof head);
  tr_task_append_payload (task, input, len);
  return TR_NEXT_TASK;
}

/* The command line as it runs, quoted to be pasted into a shell: the job log's Command,
 * --dry-run's lines, the name of a failed task.  The slot is not known here: {%} shows
 * as 1, as GNU parallel's --dry-run shows it. */
static void
exec_describe (gpointer state, const guint8 *payload, gsize len, GString *out)
{
  Exec *e = state;
  if (len < 8)
    return;
  g_autoptr (GPtrArray) cols = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) col_lens = g_array_new (FALSE, FALSE, sizeof (gsize));
  ExecValues v;
  exec_values_init (&v, e->config, (const char *) payload + 8, len - 8, exec_get_u64 (payload), 1,
                    cols, col_lens);
  g_autofree char *line = exec_template_command_line (e->template, &v, TRUE);
  g_string_append (out, line);
}

/* How much of a stream is tagged and written at a time. */
#define TAG_CHUNK (1u << 20)

/* Appends `len` bytes of a stream to e->tagged, each line after `tag` and a tab, and
 * writes what it holds whenever that passes a MiB (a long tag on many short lines must
 * not make it huge).  *line_start: the next byte starts a line. */
static void
tag_bytes (Exec *e, int fd, const guint8 *data, gsize len, const guint8 *tag, gsize tag_len,
           gboolean *line_start)
{
  for (gsize at = 0; at < len;) {
    const guint8 *nl = memchr (data + at, '\n', len - at);
    gsize end = nl ? (gsize) (nl - data) + 1 : len;
    if (*line_start) {
      g_string_append_len (e->tagged, (const char *) tag, (gssize) tag_len);
      g_string_append_c (e->tagged, '\t');
    }
    g_string_append_len (e->tagged, (const char *) data + at, (gssize) (end - at));
    *line_start = nl != NULL;
    at = end;
    if (e->tagged->len >= TAG_CHUNK) {
      tr_job_write (e->job, fd, e->tagged->str, e->tagged->len);
      g_string_truncate (e->tagged, 0);
    }
  }
}

/* Writes one stream of a task's output on fd, each line after `tag` and a tab when
 * tag = yes (a last line without its newline too).  A stream in a file is copied in the
 * kernel, or read a MiB at a time to be tagged. */
static void
write_stream (Exec *e, int fd, const ExecStream *st, const guint8 *tag, gsize tag_len)
{
  if (st->file >= 0 && !e->tag) {
    tr_job_write_file (e->job, fd, st->file, "a task's output in its temporary file");
    return;
  }
  g_string_truncate (e->tagged, 0);
  gboolean line_start = TRUE;
  if (st->file < 0) {
    if (!st->len)
      return;
    if (!e->tag) {
      tr_job_write (e->job, fd, st->data, st->len);
      return;
    }
    tag_bytes (e, fd, st->data, st->len, tag, tag_len, &line_start);
  } else {
    g_autofree guint8 *buf = g_malloc (TAG_CHUNK);
    for (off_t pos = 0;;) {
      ssize_t n = pread (st->file, buf, TAG_CHUNK, pos);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        tr_job_message (e->job, "cannot read a task's output in its temporary file: %s",
                        g_strerror (errno));
      if (n <= 0)
        break;
      tag_bytes (e, fd, buf, (gsize) n, tag, tag_len, &line_start);
      pos += n;
    }
  }
  if (e->tagged->len)
    tr_job_write (e->job, fd, e->tagged->str, e->tagged->len);
  g_string_truncate (e->tagged, 0);
}

/* A task's output, whole, as it ends: its stdout, then its stderr. */
static void
exec_result (gpointer state, const TrResult *r)
{
  Exec *e = state;
  if (r->len < EXEC_RESULT_HEAD || r->sent < 8)
    return;
  guint64 out_len = exec_get_u64 (r->data + 5);
  guint8 in_files = r->data[13];
  gsize body = r->len - EXEC_RESULT_HEAD;
  out_len = MIN (out_len, body);
  const guint8 *mem = r->data + EXEC_RESULT_HEAD;
  ExecStream out = { mem, out_len, -1 }, err = { mem + out_len, body - out_len, -1 };
  guint next_file = 0;
  if ((in_files & EXEC_STDOUT_FILE) && next_file < r->n_files)
    out = (ExecStream) { NULL, 0, r->files[next_file++] };
  if ((in_files & EXEC_STDERR_FILE) && next_file < r->n_files)
    err = (ExecStream) { NULL, 0, r->files[next_file++] };
  write_stream (e, 1, &out, r->payload + 8, r->sent - 8);
  write_stream (e, 2, &err, r->payload + 8, r->sent - 8);
  if (!e->results)
    return;
  gint32 value = (gint32) (r->data[1] | r->data[2] << 8 | r->data[3] << 16 | (guint32) r->data[4] << 24);
  int exitval = r->data[0] == EXEC_EXITED   ? value
                : r->data[0] == EXEC_SIGNALED ? 0
                : value == ENOENT || value == ENOTDIR ? 127 : 126;
  int signal = r->data[0] == EXEC_SIGNALED ? value : 0;
  g_autoptr (GError) error = NULL;
  if (!exec_results_write (e->results, exec_get_u64 (r->payload), &out, &err, exitval, signal,
                           &error))
    tr_job_stop (e->job, error->message); /* a result not kept is a failed job */
}

TR_PLUGIN_DEFINE (
  .name = "exec",
  .version = "0.1",
  .description = "runs a command once per input, N at a time (GNU parallel's everyday job)",
  .license = "MIT",
  .options = exec_options,
  .flags = TR_PLUGIN_FLAG_DETERMINISTIC | TR_PLUGIN_FLAG_STATUS_IN_CODE |
           TR_PLUGIN_FLAG_QUOTED_DESCRIPTIONS,
  .configure = exec_configure,
  .next_task = exec_next,
  .result = exec_result,
  .destroy = exec_destroy,
  .describe = exec_describe,
  .worker_init = exec_worker_init,
  .run = exec_run,
  .worker_fini = exec_worker_fini);
