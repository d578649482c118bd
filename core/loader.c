/* loader.c — finding, loading and checking task plugins.
 *
 * Owns: the plugin search (a name on the plugin path, or a path to a .so), dlopen, the
 * descriptor lookup, the ABI check (GStreamer's rule: the same major, a minor no newer
 * than ours), the sanity checks of the descriptor (name, required hooks, option table),
 * and the text of --list-plugins and --describe.  Each failure is one line that names
 * the plugin and the file, with the loader's own reason.
 * Does not own: running hooks (runner.c, pool.c, worker.c).
 */
#include "internal.h"

#include <dlfcn.h>

G_DEFINE_QUARK (tr-loader-error-quark, tr_loader_error)

struct TrPlugin {
  char *path;
  void *handle;
  const TrPluginDesc *desc;
};

static gboolean
looks_like_path (const char *s)
{
  return strchr (s, '/') != NULL || g_str_has_suffix (s, ".so");
}

/* Plugin names found on the path, for "not found" messages. */
static char *
available_names (void)
{
  g_autoptr (GPtrArray) dirs = tr_paths_plugin_dirs ();
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < dirs->len; i++) {
    g_autoptr (GDir) d = g_dir_open (g_ptr_array_index (dirs, i), 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name (d)))
      if (g_str_has_suffix (n, ".so"))
        g_ptr_array_add (names, g_strndup (n, strlen (n) - 3));
  }
  if (names->len == 0)
    return g_strdup ("none");
  g_ptr_array_add (names, NULL);
  return g_strjoinv (", ", (char **) names->pdata);
}

static char *
find_on_path (const char *name)
{
  g_autoptr (GPtrArray) dirs = tr_paths_plugin_dirs ();
  g_autofree char *file = g_strconcat (name, ".so", NULL);
  for (guint i = 0; i < dirs->len; i++) {
    char *candidate = g_build_filename (g_ptr_array_index (dirs, i), file, NULL);
    if (g_file_test (candidate, G_FILE_TEST_IS_REGULAR))
      return candidate;
    g_free (candidate);
  }
  return NULL;
}

static gboolean
check_desc (const TrPluginDesc *d, const char *path, GError **error)
{
  const char *what = NULL;
  if (!d->name || !*d->name)
    what = "has no name";
  else if (!d->next_task)
    what = "has no next_task hook";
  else if (!d->run)
    what = "has no run hook";
  if (what) {
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_INVALID,
                 "plugin %s: the descriptor %s", path, what);
    return FALSE;
  }
  g_autoptr (GError) e = NULL;
  if (!tr_options_check_table (d->options, &e)) {
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_INVALID, "plugin %s (%s): %s",
                 d->name, path, e->message);
    return FALSE;
  }
  return TRUE;
}

TrPlugin *
tr_plugin_load (const char *name_or_path, const char *base_dir, GError **error)
{
  g_autofree char *path = NULL;
  if (looks_like_path (name_or_path)) {
    g_autofree char *cwd = g_get_current_dir ();
    path = g_canonicalize_filename (name_or_path, base_dir ? base_dir : cwd);
    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND,
                   "plugin file %s does not exist", path);
      return NULL;
    }
  } else {
    path = find_on_path (name_or_path);
    if (!path) {
      g_autofree char *names = available_names ();
      g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND,
                   "plugin '%s' not found on the plugin path (available: %s)", name_or_path,
                   names);
      return NULL;
    }
  }

  dlerror ();
  void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror ();
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_LOADABLE,
                 "plugin %s is not a loadable shared object: %s", path, why ? why : "?");
    return NULL;
  }
  dlerror ();
  const TrPluginDesc *desc = dlsym (handle, TR_PLUGIN_SYMBOL);
  if (!desc) {
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NO_DESCRIPTOR,
                 "plugin %s is not a taskrun plugin: it exports no '%s' (use TR_PLUGIN_DEFINE)",
                 path, TR_PLUGIN_SYMBOL);
    dlclose (handle);
    return NULL;
  }
  if (desc->abi_major != TR_ABI_MAJOR || desc->abi_minor > TR_ABI_MINOR) {
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_ABI,
                 "plugin %s was built for ABI %u.%u, this taskrun speaks %u.x (up to %u.%u): "
                 "rebuild it against this taskrun's header",
                 path, desc->abi_major, desc->abi_minor, TR_ABI_MAJOR, TR_ABI_MAJOR,
                 TR_ABI_MINOR);
    dlclose (handle);
    return NULL;
  }
  if (!check_desc (desc, path, error)) {
    dlclose (handle);
    return NULL;
  }
  TrPlugin *plugin = g_new0 (TrPlugin, 1);
  plugin->path = g_steal_pointer (&path);
  plugin->handle = handle;
  plugin->desc = desc;
  return plugin;
}

const TrPluginDesc *
tr_plugin_get_desc (const TrPlugin *plugin)
{
  return plugin->desc;
}

const char *
tr_plugin_get_path (const TrPlugin *plugin)
{
  return plugin->path;
}

void
tr_plugin_free (TrPlugin *plugin)
{
  if (!plugin)
    return;
  /* Sanitizer builds keep the object mapped so that leak reports can name its frames. */
  if (!g_getenv ("TASKRUN_NO_DLCLOSE"))
    dlclose (plugin->handle);
  g_free (plugin->path);
  g_free (plugin);
}

void
tr_plugin_list (GString *out)
{
  g_autoptr (GPtrArray) dirs = tr_paths_plugin_dirs ();
  for (guint i = 0; i < dirs->len; i++) {
    const char *dir = g_ptr_array_index (dirs, i);
    g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
    if (!d)
      continue;
    g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
    const char *n;
    while ((n = g_dir_read_name (d)))
      if (g_str_has_suffix (n, ".so"))
        g_ptr_array_add (files, g_build_filename (dir, n, NULL));
    for (guint j = 0; j < files->len; j++) {
      const char *file = g_ptr_array_index (files, j);
      g_autoptr (GError) e = NULL;
      g_autoptr (TrPlugin) p = tr_plugin_load (file, NULL, &e);
      if (p)
        g_string_append_printf (out, "%-14s %-8s %s\n%-14s %-8s %s\n", p->desc->name,
                                p->desc->version ? p->desc->version : "-",
                                p->desc->description ? p->desc->description : "", "", "",
                                p->path);
      else
        g_string_append_printf (out, "%-14s %-8s broken: %s\n", "?", "-", e->message);
    }
  }
}

void
tr_plugin_describe (const TrPluginDesc *d, GString *out)
{
  g_string_append_printf (out, "%s %s: %s\n", d->name, d->version ? d->version : "",
                          d->description ? d->description : "");
  if (d->license)
    g_string_append_printf (out, "license: %s\n", d->license);
  g_string_append_printf (out, "progress unit: %s; task order: %s\n",
                          d->unit_name ? d->unit_name : "tasks",
                          (d->flags & TR_PLUGIN_FLAG_DETERMINISTIC) ? "deterministic (--resume works)"
                                                                    : "not deterministic");
  g_string_append_printf (out, "options, in section [%s]:\n", d->name);
  if (!d->options || !d->options->name)
    g_string_append (out, "  (none)\n");
  for (const TrOption *o = d->options; o && o->name; o++) {
    g_string_append_printf (out, "%s: %s, ", o->name, tr_option_type_name (o->type));
    if (o->required)
      g_string_append (out, "required");
    else if (o->default_value)
      g_string_append_printf (out, "default %s", o->default_value);
    else
      g_string_append (out, "optional, no default");
    if (o->min != o->max) {
      if (o->type == TR_OPTION_DOUBLE)
        g_string_append_printf (out, ", from %g to %g", o->min, o->max);
      else
        g_string_append_printf (out, ", from %.0f to %.0f", o->min, o->max);
    }
    if (o->type == TR_OPTION_ENUM && o->choices) {
      g_autofree char *all = g_strjoinv (" | ", (char **) o->choices);
      g_string_append_printf (out, ", one of: %s", all);
    }
    g_string_append_printf (out, ". %s\n", o->help ? o->help : "");
  }
}
