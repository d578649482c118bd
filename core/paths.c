/* paths.c — where taskrun finds its worker program and its plugins.
 *
 * Owns: telling an uninstalled build (the running executable lives under the build
 * folder meson configured) from an installed one, so that build/core/taskrun finds the
 * plugins built beside it with no environment variable, and the installed taskrun finds
 * <libdir>/taskrun/plugins.  TASKRUN_PLUGIN_PATH (colon-separated folders) comes first in
 * both cases.
 * Does not own: loading (loader.c).
 */
#include "internal.h"
#include "config.h"

#include <stdlib.h>

static char *
self_exe (void)
{
  return g_file_read_link ("/proc/self/exe", NULL);
}

gboolean
tr_paths_in_build_tree (void)
{
  static gsize done = 0;
  static gboolean in_tree = FALSE;
  if (g_once_init_enter (&done)) {
    g_autofree char *exe = self_exe ();
    g_autofree char *root = realpath (TR_BUILD_ROOT, NULL);
    if (exe && root) {
      g_autofree char *prefix = g_strconcat (root, "/", NULL);
      in_tree = g_str_has_prefix (exe, prefix);
    }
    g_once_init_leave (&done, 1);
  }
  return in_tree;
}

char *
tr_paths_worker_program (void)
{
  const char *env = g_getenv ("TASKRUN_WORKER_PROGRAM");
  if (env && *env)
    return g_strdup (env);
  if (tr_paths_in_build_tree ())
    return g_build_filename (TR_BUILD_ROOT, "core", "taskrun", NULL);
  return g_build_filename (TR_BINDIR, "taskrun", NULL);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
tr_paths_plugin_dirs (void)
{
  GPtrArray *dirs = g_ptr_array_new_with_free_func (g_free);
  const char *env = g_getenv ("TASKRUN_PLUGIN_PATH");
  if (env && *env) {
    g_auto (GStrv) parts = g_strsplit (env, ":", -1);
    for (int i = 0; parts[i]; i++)
      if (*parts[i])
        g_ptr_array_add (dirs, g_strdup (parts[i]));
  }
  if (tr_paths_in_build_tree ()) {
    /* Each shipped plugin builds in its own folder: build/plugins/NAME/NAME.so */
    g_autofree char *top = g_build_filename (TR_BUILD_ROOT, "plugins", NULL);
    g_autoptr (GDir) d = g_dir_open (top, 0, NULL);
    g_autoptr (GPtrArray) subs = g_ptr_array_new_with_free_func (g_free);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      char *sub = g_build_filename (top, name, NULL);
      if (g_file_test (sub, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (subs, sub);
      else
        g_free (sub);
    }
    g_ptr_array_sort (subs, compare_strings);
    for (guint i = 0; i < subs->len; i++)
      g_ptr_array_add (dirs, g_strdup (g_ptr_array_index (subs, i)));
  } else {
    g_ptr_array_add (dirs, g_strdup (TR_PLUGINDIR));
  }
  return dirs;
}
