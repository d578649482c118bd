/* options.c — typed option values (TrConfig).
 *
 * Owns: turning the text of one `key = value` into a typed value according to a TrOption
 * table (plugin options and the core's own [taskrun] keys share this code), the defaults,
 * the required-key check, the "did you mean" suggestion for unknown keys, and the
 * key=value list that carries a validated configuration to the workers.
 * Does not own: where the text came from (jobfile.c knows files and lines).
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
  const TrOption *option;
  gboolean is_set;
  gboolean has_value;
  char *text; /* the value as given (paths: resolved) */
  gint64 i;
  double d;
  gboolean b;
} TrValue;

struct TrConfig {
  char *section;
  const TrOption *options;
  GPtrArray *values; /* TrValue*, in table order */
};

G_DEFINE_QUARK (tr-config-error-quark, tr_config_error)

static void
value_free (gpointer p)
{
  TrValue *v = p;
  g_free (v->text);
  g_free (v);
}

const char *
tr_option_type_name (TrOptionType type)
{
  switch (type) {
  case TR_OPTION_STRING: return "string";
  case TR_OPTION_INT: return "int";
  case TR_OPTION_DOUBLE: return "double";
  case TR_OPTION_BOOL: return "bool";
  case TR_OPTION_PATH: return "path";
  case TR_OPTION_ENUM: return "enum";
  case TR_OPTION_SIZE: return "size";
  }
  return "?";
}

static TrValue *
find_value (const TrConfig *config, const char *name)
{
  for (guint i = 0; i < config->values->len; i++) {
    TrValue *v = g_ptr_array_index (config->values, i);
    if (strcmp (v->option->name, name) == 0)
      return v;
  }
  return NULL;
}

static gboolean
parse_bool (const char *s, gboolean *out)
{
  static const char *const yes[] = { "yes", "true", "on", "1", NULL };
  static const char *const no[] = { "no", "false", "off", "0", NULL };
  for (int i = 0; yes[i]; i++)
    if (g_ascii_strcasecmp (s, yes[i]) == 0)
      return (*out = TRUE);
  for (int i = 0; no[i]; i++)
    if (g_ascii_strcasecmp (s, no[i]) == 0)
      return !(*out = FALSE);
  return FALSE;
}

/* "64M" -> 67108864.  Suffixes K, M, G, T (powers of 1024), optional trailing "B"/"iB". */
static gboolean
parse_size (const char *s, gint64 *out)
{
  char *end = NULL;
  errno = 0;
  if (!g_ascii_isdigit (*s))
    return FALSE;
  guint64 n = g_ascii_strtoull (s, &end, 10);
  if (errno != 0 || end == s)
    return FALSE;
  guint shift = 0;
  switch (g_ascii_toupper (*end)) {
  case 'K': shift = 10; end++; break;
  case 'M': shift = 20; end++; break;
  case 'G': shift = 30; end++; break;
  case 'T': shift = 40; end++; break;
  default: break;
  }
  if (shift && g_ascii_strcasecmp (end, "iB") == 0)
    end += 2;
  else if (g_ascii_toupper (*end) == 'B')
    end++;
  if (*end != '\0')
    return FALSE;
  if (shift && n > ((guint64) G_MAXINT64 >> shift))
    return FALSE;
  if (n > (guint64) G_MAXINT64)
    return FALSE;
  *out = (gint64) (n << shift);
  return TRUE;
}

static gboolean
out_of_range (const TrOption *o, double x)
{
  if (o->min == o->max)
    return FALSE;
  return x < o->min || x > o->max;
}

/* FALSE with "X is out of range (MIN to MAX)" when x is outside the option's bounds. */
static gboolean
check_range (const TrOption *o, double x, const char *text, GError **error)
{
  if (!out_of_range (o, x))
    return TRUE;
  g_autofree char *r = o->type == TR_OPTION_DOUBLE ? g_strdup_printf ("%g to %g", o->min, o->max)
                                                   : g_strdup_printf ("%.0f to %.0f", o->min, o->max);
  g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE, "%s is out of range (%s)", text, r);
  return FALSE;
}

/* Parses `text` for option `o` into v.  On failure sets an error that says what is wrong
 * with the value (the caller adds where it came from). */
static gboolean
parse_value (const TrOption *o, const char *text, const char *base_dir, TrValue *v,
             GError **error)
{
  switch (o->type) {
  case TR_OPTION_STRING:
    v->text = g_strdup (text);
    break;
  case TR_OPTION_PATH:
    if (*text == '\0') {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE, "empty path");
      return FALSE;
    }
    if (strcmp (text, "-") == 0) {
      v->text = g_strdup ("-"); /* standard input or output, where a plugin takes it */
    } else if (g_path_is_absolute (text) || base_dir == NULL) {
      g_autofree char *cwd = g_get_current_dir ();
      g_autofree char *abs = g_path_is_absolute (text) ? g_strdup (text)
                                                       : g_build_filename (cwd, text, NULL);
      v->text = g_canonicalize_filename (abs, NULL);
    } else {
      v->text = g_canonicalize_filename (text, base_dir);
    }
    /* g_canonicalize_filename drops a trailing slash; rsync-style meaning is kept by the
     * plugin, which sees the resolved path only. */
    break;
  case TR_OPTION_INT:
  case TR_OPTION_SIZE: {
    gint64 n;
    if (o->type == TR_OPTION_INT
            ? !g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &n, NULL)
            : !parse_size (text, &n)) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   o->type == TR_OPTION_INT
                       ? "'%s' is not a whole number"
                       : "'%s' is not a size (a byte count such as 4096, 64K, 64M or 1G)",
                   text);
      return FALSE;
    }
    if (!check_range (o, (double) n, text, error))
      return FALSE;
    v->i = n;
    v->text = g_strdup (text);
    break;
  }
  case TR_OPTION_DOUBLE: {
    char *end = NULL;
    errno = 0;
    double d = g_ascii_strtod (text, &end);
    if (*text == '\0' || end == text || *end != '\0' || errno == ERANGE || !isfinite (d)) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE, "'%s' is not a number", text);
      return FALSE;
    }
    if (!check_range (o, d, text, error))
      return FALSE;
    v->d = d;
    v->text = g_strdup (text);
    break;
  }
  case TR_OPTION_BOOL:
    if (!parse_bool (text, &v->b)) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   "'%s' is not yes or no (also true/false, on/off, 1/0)", text);
      return FALSE;
    }
    v->text = g_strdup (v->b ? "yes" : "no");
    break;
  case TR_OPTION_ENUM: {
    for (int i = 0; o->choices && o->choices[i]; i++)
      if (strcmp (o->choices[i], text) == 0) {
        v->text = g_strdup (text);
        v->has_value = TRUE;
        return TRUE;
      }
    g_autofree char *allowed = o->choices ? g_strjoinv (", ", (char **) o->choices)
                                          : g_strdup ("(none)");
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "'%s' is not one of: %s", text, allowed);
    return FALSE;
  }
  }
  v->has_value = TRUE;
  return TRUE;
}

TrConfig *
tr_config_new (const TrOption *options, const char *section)
{
  TrConfig *config = g_new0 (TrConfig, 1);
  config->section = g_strdup (section ? section : "");
  config->options = options;
  config->values = g_ptr_array_new_with_free_func (value_free);
  for (const TrOption *o = options; o && o->name; o++) {
    TrValue *v = g_new0 (TrValue, 1);
    v->option = o;
    if (o->default_value && !o->required) {
      /* Defaults are part of the plugin, so a bad one is the plugin's bug: keep the text
       * and let the check in tr_plugin_check_desc report it. */
      if (!parse_value (o, o->default_value, NULL, v, NULL)) {
        g_clear_pointer (&v->text, g_free);
        v->has_value = FALSE;
      }
    }
    g_ptr_array_add (config->values, v);
  }
  return config;
}

void
tr_config_free (TrConfig *config)
{
  if (!config)
    return;
  g_ptr_array_unref (config->values);
  g_free (config->section);
  g_free (config);
}

const TrOption *
tr_config_lookup_option (const TrOption *options, const char *key)
{
  for (const TrOption *o = options; o && o->name; o++)
    if (strcmp (o->name, key) == 0)
      return o;
  return NULL;
}

/* Levenshtein distance, small strings only. */
static guint
edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  if (la > 64 || lb > 64)
    return G_MAXUINT;
  guint row[65];
  for (gsize j = 0; j <= lb; j++)
    row[j] = j;
  for (gsize i = 1; i <= la; i++) {
    guint prev = row[0];
    row[0] = i;
    for (gsize j = 1; j <= lb; j++) {
      guint cur = row[j];
      guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = MIN (MIN (row[j] + 1, row[j - 1] + 1), prev + cost);
      prev = cur;
    }
  }
  return row[lb];
}

const char *
tr_suggest (const char *word, const char *const *candidates)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  for (int i = 0; candidates && candidates[i]; i++) {
    guint d = edit_distance (word, candidates[i]);
    if (d < best_d) {
      best_d = d;
      best = candidates[i];
    }
  }
  gsize len = strlen (word);
  guint limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
  return best_d <= limit ? best : NULL;
}

char *
tr_config_unknown_key_message (const TrOption *options, const char *key)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (const TrOption *o = options; o && o->name; o++)
    g_ptr_array_add (names, (gpointer) o->name);
  g_ptr_array_add (names, NULL);
  const char *near = tr_suggest (key, (const char *const *) names->pdata);
  if (near)
    return g_strdup_printf ("unknown key '%s' (did you mean '%s'?)", key, near);
  if (names->len <= 1)
    return g_strdup_printf ("unknown key '%s' (this section takes no keys)", key);
  g_autofree char *all = g_strjoinv (", ", (char **) names->pdata);
  return g_strdup_printf ("unknown key '%s' (valid keys: %s)", key, all);
}

gboolean
tr_config_set (TrConfig *config, const char *key, const char *value, const char *base_dir,
               GError **error)
{
  TrValue *v = find_value (config, key);
  if (!v) {
    g_autofree char *msg = tr_config_unknown_key_message (config->options, key);
    g_set_error_literal (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_UNKNOWN_KEY, msg);
    return FALSE;
  }
  TrValue fresh = { .option = v->option };
  g_autoptr (GError) e = NULL;
  if (!parse_value (v->option, value, base_dir, &fresh, &e)) {
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE, "%s '%s': %s",
                 tr_option_type_name (v->option->type), key, e->message);
    return FALSE;
  }
  g_free (v->text);
  *v = fresh;
  v->is_set = TRUE;
  v->has_value = TRUE;
  return TRUE;
}

gboolean
tr_config_check_required (const TrConfig *config, GError **error)
{
  for (guint i = 0; i < config->values->len; i++) {
    TrValue *v = g_ptr_array_index (config->values, i);
    if (v->option->required && !v->is_set) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_MISSING,
                   "missing required key '%s' (%s)", v->option->name,
                   v->option->help ? v->option->help : "no help");
      return FALSE;
    }
  }
  return TRUE;
}

static TrValue *
get_checked (const TrConfig *config, const char *name)
{
  TrValue *v = find_value (config, name);
  if (!v)
    g_critical ("taskrun: option '%s' is not declared in section [%s]", name, config->section);
  return v;
}

const char *
tr_config_get_string (const TrConfig *config, const char *name)
{
  TrValue *v = get_checked (config, name);
  return v && v->has_value ? v->text : NULL;
}

gint64
tr_config_get_int (const TrConfig *config, const char *name)
{
  TrValue *v = get_checked (config, name);
  return v && v->has_value ? v->i : 0;
}

double
tr_config_get_double (const TrConfig *config, const char *name)
{
  TrValue *v = get_checked (config, name);
  return v && v->has_value ? v->d : 0.0;
}

gboolean
tr_config_get_bool (const TrConfig *config, const char *name)
{
  TrValue *v = get_checked (config, name);
  return v && v->has_value ? v->b : FALSE;
}

gboolean
tr_config_is_set (const TrConfig *config, const char *name)
{
  TrValue *v = get_checked (config, name);
  return v && v->is_set;
}

const char *
tr_config_get_section (const TrConfig *config)
{
  return config->section;
}

const TrOption *
tr_config_get_options (const TrConfig *config)
{
  return config->options;
}

/* The options that were set, as "key", "value" pairs (values resolved), for the wire. */
GPtrArray *
tr_config_to_pairs (const TrConfig *config)
{
  GPtrArray *pairs = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < config->values->len; i++) {
    TrValue *v = g_ptr_array_index (config->values, i);
    if (!v->is_set)
      continue;
    g_ptr_array_add (pairs, g_strdup (v->option->name));
    g_ptr_array_add (pairs, g_strdup (v->text));
  }
  return pairs;
}

/* Prints "key = value" for every option that has a value, for --dry-run. */
void
tr_config_print (const TrConfig *config, GString *out)
{
  g_string_append_printf (out, "[%s]\n", config->section);
  for (guint i = 0; i < config->values->len; i++) {
    TrValue *v = g_ptr_array_index (config->values, i);
    if (!v->has_value)
      continue;
    g_string_append_printf (out, "%s = %s%s\n", v->option->name, v->text,
                            v->is_set ? "" : "    ; default");
  }
}

/* Checks a plugin's option table: names, enum choices, and that every default parses. */
gboolean
tr_options_check_table (const TrOption *options, GError **error)
{
  for (const TrOption *o = options; o && o->name; o++) {
    if (!*o->name || strspn (o->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen (o->name)) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   "option name '%s' must use only a-z, 0-9 and '_'", o->name);
      return FALSE;
    }
    if ((unsigned) o->type > TR_OPTION_SIZE) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   "option '%s' has an unknown type %d", o->name, (int) o->type);
      return FALSE;
    }
    if (o->type == TR_OPTION_ENUM && (!o->choices || !o->choices[0])) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   "enum option '%s' declares no choices", o->name);
      return FALSE;
    }
    if (tr_config_lookup_option (options, o->name) != o) {
      g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                   "option '%s' is declared twice", o->name);
      return FALSE;
    }
    if (o->default_value && !o->required) {
      TrValue v = { .option = o };
      g_autoptr (GError) e = NULL;
      if (!parse_value (o, o->default_value, NULL, &v, &e)) {
        g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                     "the default of option '%s' is invalid: %s", o->name, e->message);
        return FALSE;
      }
      g_free (v.text);
    }
  }
  return TRUE;
}
