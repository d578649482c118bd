/* template.h — the exec plugin's command template: `command = gzip -9 -- {}` parsed once,
 * then turned, per input, into the argv to execvp and into the command line as GNU
 * parallel --dry-run prints it.
 *
 * Owns: parsing the template (words, quotes, replacement strings, the errors a malformed
 * template gives), the values of GNU parallel's replacement strings, shell quoting, and
 * splitting an input into columns by colsep.
 * Does not own: reading inputs, running anything, the plugin's options, the job log.
 * Built from GLib alone (tests/test-exec-template.c links only template.c).
 *
 * The rules, and where they differ from GNU parallel 20221122, are stated in template.c.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct ExecTemplate ExecTemplate;

/* Errors of exec_template_argv (a template that does not parse is G_OPTION_ERROR /
 * G_OPTION_ERROR_BAD_VALUE: it is a bad value of the command option). */
#define EXEC_TEMPLATE_ERROR (exec_template_error_quark ())
GQuark exec_template_error_quark (void);
typedef enum {
  EXEC_TEMPLATE_ERROR_NUL,      /* a substituted value holds a NUL byte */
  EXEC_TEMPLATE_ERROR_TOO_LONG, /* one argument is longer than the kernel takes */
} ExecTemplateError;

/* columns: colsep is set; shell: shell = yes.  NULL with G_OPTION_ERROR /
 * G_OPTION_ERROR_BAD_VALUE whose message says what is wrong and at which character
 * (counted from 1) of command. */
ExecTemplate *exec_template_parse (const char *command, gboolean columns, gboolean shell,
                                   GError **error);
void exec_template_free (ExecTemplate *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecTemplate, exec_template_free)

typedef struct {
  const char *input;          /* the whole input: any byte, NUL included, is held */
  gsize input_len;
  const char *const *cols;    /* when columns: the pieces exec_split_columns gave */
  const gsize *col_lens;      /* NULL: each column is NUL-terminated */
  guint n_cols;
  guint64 seq;                /* {#}: the task's sequence number, from 1 */
  guint slot;                 /* {%}: the worker slot, from 1 */
} ExecValues;

/* The argv to execvp: NULL-terminated, the strings owned (g_strfreev).  With shell:
 * "/bin/sh", "-c", script.  NULL with EXEC_TEMPLATE_ERROR if a substituted value holds a
 * NUL byte or an argument would be longer than execve takes. */
GStrv exec_template_argv (const ExecTemplate *t, const ExecValues *v, GError **error);

/* The command line as GNU parallel --dry-run prints it, quoted so that it can be pasted
 * into a shell; with shell it is the script itself.  `shown`: the line taskrun shows
 * (--dry-run, the job log, messages), which unlike parallel's is always one line: a
 * value's control bytes and bytes that are not UTF-8 are spelled $'\n', $'\xNN' (bash,
 * ksh and zsh read them back).  A NUL byte in a value ends the string there (no argv can
 * hold one: exec_template_argv refuses it). */
char *exec_template_command_line (const ExecTemplate *t, const ExecValues *v, gboolean shown);

/* What the caller must provide: '#' ({#}: seq), '%' ({%}: slot), 'c' (a column). */
gboolean exec_template_uses (const ExecTemplate *t, char which);

/* The template as given to exec_template_parse. */
const char *exec_template_text (const ExecTemplate *t);

/* Splits input[0..len) at each occurrence of colsep and appends the columns to cols_out
 * as newly allocated NUL-terminated strings (give the array g_free as its free func),
 * each with leading and trailing white space removed, as GNU parallel's --colsep does
 * (it implies --trim lr).  Returns how many were appended: at least 1 (an empty input is
 * one empty column).  colsep is a plain string, not a regular expression as it is for
 * GNU parallel: "\t" (backslash, t) is TAB, "\n" LF, "\r" CR, "\\" a backslash, and a
 * backslash before any other punctuation is that character (so "\|" and "|" are both
 * the bar); everything else stands for itself.  An empty colsep splits nothing. */
guint exec_split_columns (const char *input, gsize len, const char *colsep,
                          GPtrArray *cols_out);

G_END_DECLS
