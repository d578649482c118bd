/* jobfile.c — reading a job file and the -s overrides.
 *
 * Owns: the file itself (size, binary garbage, inih syntax), its sections and keys with
 * the line each came from, duplicate keys and sections, unknown sections, and applying a
 * section's keys or -s overrides to a TrConfig so that every error names the file, the
 * line and the key.  Relative paths in the file resolve against the file's folder; those
 * given with -s against the current directory.
 * Does not own: what the keys mean (options.c checks values, runner.c knows [taskrun]).
 *
 * inih is fed through ini_parse_stream with our own line reader, which gives us the line
 * number of each key (Debian's inih is built without INI_HANDLER_LINENO), removes leading
 * blanks (so an indented key is a key, never a continuation of the previous value), and
 * carries values longer than inih's 200-byte line buffer around it.  The reader also
 * reads every section header itself, and a key belongs to the section the reader saw
 * last, never to the name inih passes: inih keeps the blanks of "[ name ]" and cuts a
 * name at 49 bytes, and either would file keys under a section nobody checks.  A UTF-8
 * byte order mark is dropped before the first line, so that line is read like any other.
 */
#include "internal.h"

#include <ini.h>

#define JOBFILE_MAX_BYTES (1024 * 1024)

typedef struct {
  char *section;
  char *key;
  char *value;
  guint line;
} Entry;

typedef struct {
  char *name;
  guint line;
} Section;

struct TrJobFile {
  char *path; /* as given */
  char *dir;  /* absolute folder of the file */
  GPtrArray *entries;  /* Entry* in file order */
  GPtrArray *sections; /* Section* in file order */
};

typedef struct {
  TrJobFile *jf;
  const char *p, *end;
  guint line;
  GPtrArray *long_values; /* values of lines too long for inih */
  const char *section;    /* the last section header read (owned by jf->sections); NULL:
                           * none yet */
  GError *error;          /* first error, by line */
  guint error_line;
} Parse;

static void
entry_free (gpointer p)
{
  Entry *e = p;
  g_free (e->section);
  g_free (e->key);
  g_free (e->value);
  g_free (e);
}

static void
section_free (gpointer p)
{
  Section *s = p;
  g_free (s->name);
  g_free (s);
}

void
tr_jobfile_free (TrJobFile *jf)
{
  if (!jf)
    return;
  g_ptr_array_unref (jf->entries);
  g_ptr_array_unref (jf->sections);
  g_free (jf->path);
  g_free (jf->dir);
  g_free (jf);
}

static void
parse_fail (Parse *ps, guint line, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static void
parse_fail (Parse *ps, guint line, const char *fmt, ...)
{
  if (ps->error && ps->error_line <= line)
    return;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_clear_error (&ps->error);
  g_set_error (&ps->error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_SYNTAX, "%s:%u: %s", ps->jf->path,
               line, msg);
  ps->error_line = line;
}

static Section *
find_section (TrJobFile *jf, const char *name)
{
  for (guint i = 0; i < jf->sections->len; i++) {
    Section *s = g_ptr_array_index (jf->sections, i);
    if (strcmp (s->name, name) == 0)
      return s;
  }
  return NULL;
}

/* Reads a "[name]" header line: the blanks around the name are not part of it, so
 * "[ copy ]" is [copy].  Sections get their lines, duplicates are caught, and the keys
 * that follow belong to it (see on_key). */
static void
note_section_header (Parse *ps, const char *line, gsize len)
{
  const char *close = memchr (line, ']', len);
  if (!close)
    return; /* inih reports the syntax error */
  g_autofree char *name = g_strstrip (g_strndup (line + 1, close - line - 1));
  if (!*name) {
    parse_fail (ps, ps->line, "a section header without a name");
    return;
  }
  Section *old = find_section (ps->jf, name);
  if (old) {
    parse_fail (ps, ps->line, "section [%s] appears twice (first on line %u)", name, old->line);
    ps->section = old->name;
    return;
  }
  Section *s = g_new0 (Section, 1);
  s->name = g_steal_pointer (&name);
  s->line = ps->line;
  g_ptr_array_add (ps->jf->sections, s);
  ps->section = s->name;
}

/* inih's line reader: one line per call, leading blanks removed. */
static char *
read_line (char *str, int num, void *stream)
{
  Parse *ps = stream;
  if (ps->p >= ps->end)
    return NULL;
  const char *nl = memchr (ps->p, '\n', ps->end - ps->p);
  const char *line_end = nl ? nl + 1 : ps->end;
  const char *line = ps->p;
  ps->p = line_end;
  ps->line++;
  while (line < line_end && (*line == ' ' || *line == '\t'))
    line++;
  gsize len = line_end - line;
  if (len > 0 && *line == '[')
    note_section_header (ps, line, len);
  if (len > 0 && (*line == ';' || *line == '#')) {
    /* a comment is never inih's business, however long */
    str[0] = '\0';
    return str;
  }
  if (len < (gsize) num) {
    memcpy (str, line, len);
    str[len] = '\0';
    return str;
  }
  /* Too long for inih: keep the value aside and hand inih "key=\x01<index>". */
  const char *eq = memchr (line, '=', len);
  g_autofree char *key = eq ? g_strstrip (g_strndup (line, eq - line)) : NULL;
  if (!eq || *line == '[' || strlen (key) + 24 > (gsize) num) {
    parse_fail (ps, ps->line, "line is too long (%" G_GSIZE_FORMAT " bytes; only a value or a "
                "comment may be longer than %d)", len, num - 1);
    str[0] = '\0';
    return str;
  }
  g_autofree char *value = g_strndup (eq + 1, line_end - eq - 1);
  char *comment = strstr (value, " ;");
  if (!comment)
    comment = strstr (value, "\t;");
  if (comment)
    *comment = '\0';
  g_ptr_array_add (ps->long_values, g_strdup (g_strstrip (value)));
  g_snprintf (str, num, "%s=\x01%u\n", key, ps->long_values->len - 1);
  return str;
}

static int
on_key (void *user, const char *inih_section, const char *name, const char *value)
{
  Parse *ps = user;
  (void) inih_section; /* see the top of this file: the reader's is the one that counts */
  const char *section = ps->section;
  if (value[0] == '\x01')
    value = g_ptr_array_index (ps->long_values, (guint) atoi (value + 1));
  if (!section) {
    parse_fail (ps, ps->line, "key '%s' is outside any section (start with [taskrun])", name);
    return 1;
  }
  for (guint i = 0; i < ps->jf->entries->len; i++) {
    Entry *e = g_ptr_array_index (ps->jf->entries, i);
    if (strcmp (e->section, section) == 0 && strcmp (e->key, name) == 0) {
      parse_fail (ps, ps->line, "[%s] duplicate key '%s' (first set on line %u)", section, name,
                  e->line);
      return 1;
    }
  }
  Entry *e = g_new0 (Entry, 1);
  e->section = g_strdup (section);
  e->key = g_strdup (name);
  e->value = g_strdup (value);
  e->line = ps->line;
  g_ptr_array_add (ps->jf->entries, e);
  return 1;
}

/* Rejects what is not text: NUL bytes, invalid UTF-8, control characters. */
static gboolean
check_text (const char *path, const char *data, gsize len, GError **error)
{
  const char *bad = NULL;
  if (!g_utf8_validate (data, len, &bad)) {
    /* bad points at the first invalid byte */
  } else {
    bad = NULL;
    for (gsize i = 0; i < len; i++) {
      guchar c = data[i];
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        bad = data + i;
        break;
      }
    }
  }
  if (!bad)
    return TRUE;
  guint line = 1;
  for (const char *q = data; q < bad; q++)
    line += *q == '\n';
  g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_SYNTAX,
               "%s:%u: not a text file (byte 0x%02x at offset %" G_GSIZE_FORMAT ")", path, line,
               (guchar) *bad, (gsize) (bad - data));
  return FALSE;
}

TrJobFile *
tr_jobfile_load (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) e = NULL;

  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_FILE, "%s: is a directory, not a job file",
                 path);
    return NULL;
  }
  if (!g_file_get_contents (path, &data, &len, &e)) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_FILE, "%s: cannot read the job file: %s",
                 path, e->message);
    return NULL;
  }
  return tr_jobfile_load_data (path, data, len, error);
}

/* Parses a job file already in memory; `path` names it in messages and sets the folder
 * that relative paths are resolved against. */
TrJobFile *
tr_jobfile_load_data (const char *path, const char *data, gsize len, GError **error)
{
  if (len > JOBFILE_MAX_BYTES) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_FILE,
                 "%s: %" G_GSIZE_FORMAT " bytes is too large for a job file (at most %d)", path,
                 len, JOBFILE_MAX_BYTES);
    return NULL;
  }
  if (!check_text (path, data, len, error))
    return NULL;
  /* A byte order mark (editors on Windows write one) is not part of the first line. */
  if (len >= 3 && memcmp (data, "\xEF\xBB\xBF", 3) == 0) {
    data += 3;
    len -= 3;
  }

  TrJobFile *jf = g_new0 (TrJobFile, 1);
  jf->path = g_strdup (path);
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *abs = g_canonicalize_filename (path, cwd);
  jf->dir = g_path_get_dirname (abs);
  jf->entries = g_ptr_array_new_with_free_func (entry_free);
  jf->sections = g_ptr_array_new_with_free_func (section_free);

  Parse ps = { .jf = jf, .p = data, .end = data + len };
  ps.long_values = g_ptr_array_new_with_free_func (g_free);
  int bad_line = ini_parse_stream (read_line, &ps, on_key, &ps);
  g_ptr_array_unref (ps.long_values);
  if (bad_line > 0)
    parse_fail (&ps, bad_line, "syntax error (expected [section], key = value, or a ; comment)");
  else if (bad_line < 0)
    parse_fail (&ps, 0, "inih could not parse the file");
  if (ps.error) {
    g_propagate_error (error, ps.error);
    tr_jobfile_free (jf);
    return NULL;
  }
  return jf;
}

const char *
tr_jobfile_get_path (const TrJobFile *jf)
{
  return jf->path;
}

const char *
tr_jobfile_get_dir (const TrJobFile *jf)
{
  return jf->dir;
}

/* The value of `key` in `section` as written, or NULL; *line receives its line. */
const char *
tr_jobfile_lookup (const TrJobFile *jf, const char *section, const char *key, guint *line)
{
  for (guint i = 0; i < jf->entries->len; i++) {
    Entry *e = g_ptr_array_index (jf->entries, i);
    if (strcmp (e->section, section) == 0 && strcmp (e->key, key) == 0) {
      if (line)
        *line = e->line;
      return e->value;
    }
  }
  return NULL;
}

gboolean
tr_jobfile_apply_section (const TrJobFile *jf, const char *section, TrConfig *config,
                          GError **error)
{
  for (guint i = 0; i < jf->entries->len; i++) {
    Entry *e = g_ptr_array_index (jf->entries, i);
    if (strcmp (e->section, section) != 0)
      continue;
    g_autoptr (GError) err = NULL;
    if (!tr_config_set (config, e->key, e->value, jf->dir, &err)) {
      g_set_error (error, TR_CONFIG_ERROR, err->code, "%s:%u: [%s] %s", jf->path, e->line, section,
                   err->message);
      return FALSE;
    }
  }
  return TRUE;
}

/* Fails for the first required key of `config` that is not set, naming the section's
 * line (or saying the section is missing). */
gboolean
tr_jobfile_check_required (const TrJobFile *jf, const char *section, const TrConfig *config,
                           GError **error)
{
  g_autoptr (GError) err = NULL;
  if (tr_config_check_required (config, &err))
    return TRUE;
  Section *s = find_section ((TrJobFile *) jf, section);
  if (s)
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_MISSING, "%s:%u: [%s] %s", jf->path,
                 s->line, section, err->message);
  else
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_MISSING,
                 "%s: no [%s] section: %s", jf->path, section, err->message);
  return FALSE;
}

gboolean
tr_jobfile_lookup_section (const TrJobFile *jf, const char *section)
{
  return find_section ((TrJobFile *) jf, section) != NULL;
}

/* Fails for the first section whose name is a near miss of one in `known`. */
gboolean
tr_jobfile_check_near_sections (const TrJobFile *jf, const char *const *known, GError **error)
{
  for (guint i = 0; i < jf->sections->len; i++) {
    Section *s = g_ptr_array_index (jf->sections, i);
    g_autofree char *lower = g_ascii_strdown (s->name, -1);
    const char *near = tr_suggest (lower, known);
    if (near && !g_strv_contains (known, s->name)) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_UNKNOWN_SECTION,
                   "%s:%u: unknown section [%s] (did you mean [%s]?)", jf->path, s->line, s->name,
                   near);
      return FALSE;
    }
  }
  return TRUE;
}

/* Fails for the first section that is not in `known`. */
gboolean
tr_jobfile_check_sections (const TrJobFile *jf, const char *const *known, GError **error)
{
  for (guint i = 0; i < jf->sections->len; i++) {
    Section *s = g_ptr_array_index (jf->sections, i);
    if (g_strv_contains (known, s->name))
      continue;
    const char *near = tr_suggest (s->name, known);
    g_autofree char *all = g_strjoinv ("], [", (char **) known);
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_UNKNOWN_SECTION,
                 "%s:%u: unknown section [%s] (%s%s%s)", jf->path, s->line, s->name,
                 near ? "did you mean [" : "this job file takes [", near ? near : all,
                 near ? "]?" : "]");
    return FALSE;
  }
  return TRUE;
}

/* ---- -s SECTION.KEY=VALUE ------------------------------------------------------------ */

struct TrOverride {
  char *text;
  char *section;
  char *key;
  char *value;
};

void
tr_override_free (TrOverride *ov)
{
  if (!ov)
    return;
  g_free (ov->text);
  g_free (ov->section);
  g_free (ov->key);
  g_free (ov->value);
  g_free (ov);
}

TrOverride *
tr_override_parse (const char *text, GError **error)
{
  const char *eq = strchr (text, '=');
  const char *dot = eq ? memchr (text, '.', eq - text) : NULL;
  if (!eq || !dot || dot == text || dot + 1 == eq) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_SYNTAX,
                 "-s %s: expected SECTION.KEY=VALUE (for example -s taskrun.workers=2)", text);
    return NULL;
  }
  TrOverride *ov = g_new0 (TrOverride, 1);
  ov->text = g_strdup (text);
  ov->section = g_strstrip (g_strndup (text, dot - text));
  ov->key = g_strstrip (g_strndup (dot + 1, eq - dot - 1));
  ov->value = g_strstrip (g_strdup (eq + 1));
  return ov;
}

const char *
tr_override_get_section (const TrOverride *ov)
{
  return ov->section;
}

/* Applies the overrides for `section` (paths relative to the current directory). */
gboolean
tr_overrides_apply (GPtrArray *overrides, const char *section, TrConfig *config, GError **error)
{
  for (guint i = 0; overrides && i < overrides->len; i++) {
    TrOverride *ov = g_ptr_array_index (overrides, i);
    if (strcmp (ov->section, section) != 0)
      continue;
    g_autoptr (GError) err = NULL;
    if (!tr_config_set (config, ov->key, ov->value, NULL, &err)) {
      g_set_error (error, TR_CONFIG_ERROR, err->code, "-s %s: [%s] %s", ov->text, section,
                   err->message);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
tr_overrides_check_sections (GPtrArray *overrides, const char *const *known, GError **error)
{
  for (guint i = 0; overrides && i < overrides->len; i++) {
    TrOverride *ov = g_ptr_array_index (overrides, i);
    if (g_strv_contains (known, ov->section))
      continue;
    const char *near = tr_suggest (ov->section, known);
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_UNKNOWN_SECTION,
                 "-s %s: unknown section '%s'%s%s%s", ov->text, ov->section,
                 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    return FALSE;
  }
  return TRUE;
}

/* The text of the last -s that sets section.key, or NULL. */
const char *
tr_overrides_find (GPtrArray *overrides, const char *section, const char *key)
{
  for (guint i = overrides ? overrides->len : 0; i > 0; i--) {
    TrOverride *ov = g_ptr_array_index (overrides, i - 1);
    if (strcmp (ov->section, section) == 0 && strcmp (ov->key, key) == 0)
      return ov->text;
  }
  return NULL;
}
