/* loader.c — finding, loading and checking task plugins.
 *
 * Owns: the plugin search (a name on the plugin path, or a path to a .so), dlopen, the
 * descriptor lookup, the ABI check (GStreamer's rule: the same major, a minor no newer
 * than ours), the sanity checks of the descriptor (name, required hooks, option table),
 * and the text of --list-plugins (each file loaded in a child of its own) and --describe.  Each failure is one line that names
 * the plugin and the file, with the loader's own reason.
 * Does not own: running hooks (runner.c, pool/, worker.c), plugins registered in the
 * program itself (in-program.c: tr_plugin_load finds those first, by name).
 */
#include "internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

G_DEFINE_QUARK (tr-loader-error-quark, tr_loader_error)

struct TrPlugin {
  char *path;   /* the .so, or for an in-program plugin the program's file */
  void *handle; /* NULL: in-program (in-program.c) */
  gpointer worker_state; /* in-program: what the worker's run gets before worker_init */
  /* the plugin's descriptor as far as its minor version had one, the rest zero: nothing
   * reads past the end of an older plugin's descriptor (see "How the ABI grows") */
  TrPluginDesc desc;
};

/* How many bytes of a descriptor a plugin built for `minor` has. */
gsize
tr_plugin_desc_size (guint32 minor)
{
  return minor < 4 ? offsetof (TrPluginDesc, _tr_reserved) : sizeof (TrPluginDesc);
}

guint
tr_abi_minor (void)
{
  return TR_ABI_MINOR;
}

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
    /* absolute: workers load it by this path, and the program may change directory */
    g_autofree char *joined = g_build_filename (g_ptr_array_index (dirs, i), file, NULL);
    char *candidate = g_canonicalize_filename (joined, NULL);
    if (g_file_test (candidate, G_FILE_TEST_IS_REGULAR))
      return candidate;
    g_free (candidate);
  }
  return NULL;
}

/* next_task is not checked here: a plugin that only runs tasks a program submits needs
 * none; a job file's plugin does (jobspec.c). */
gboolean
tr_plugin_check_desc (const TrPluginDesc *d, const char *path, GError **error)
{
  const char *what = NULL;
  if (!d->name || !*d->name)
    what = "has no name";
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
  g_return_val_if_fail (name_or_path != NULL, NULL);
  if (!*name_or_path) {
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND, "no plugin named: the name is empty");
    return NULL;
  }
  g_autofree char *path = NULL;
  if (!looks_like_path (name_or_path)) {
    TrPlugin *in_program = tr_in_program_find (name_or_path);
    if (in_program)
      return in_program;
  }
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
  if (!tr_plugin_check_desc (desc, path, error)) {
    dlclose (handle);
    return NULL;
  }
  TrPlugin *plugin = g_new0 (TrPlugin, 1);
  plugin->path = g_steal_pointer (&path);
  plugin->handle = handle;
  memcpy (&plugin->desc, desc, tr_plugin_desc_size (desc->abi_minor));
  return plugin;
}

TrPlugin *
tr_plugin_wrap (const TrPluginDesc *desc, gpointer worker_state)
{
  TrPlugin *plugin = g_new0 (TrPlugin, 1);
  plugin->path = g_file_read_link ("/proc/self/exe", NULL);
  if (!plugin->path)
    plugin->path = g_strdup ("(this program)");
  plugin->worker_state = worker_state;
  plugin->desc = *desc;
  return plugin;
}

gboolean
tr_plugin_is_in_program (const TrPlugin *plugin)
{
  return plugin->handle == NULL;
}

gpointer
tr_plugin_get_worker_state (const TrPlugin *plugin)
{
  return plugin->worker_state;
}

char *
tr_plugin_worker_ref (const TrPlugin *plugin)
{
  return tr_plugin_is_in_program (plugin) ? g_strconcat (TR_IN_PROGRAM_REF, plugin->desc.name, NULL)
                                          : g_strdup (plugin->path);
}

TrPlugin *
tr_plugin_load_for_worker (const char *ref, GError **error)
{
  if (!g_str_has_prefix (ref, TR_IN_PROGRAM_REF))
    return tr_plugin_load (ref, NULL, error);
  const char *name = ref + strlen (TR_IN_PROGRAM_REF);
  TrPlugin *plugin = tr_in_program_find (name);
  if (!plugin) {
    g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND,
                 "plugin '%s' is registered in the program that runs the pool, but the "
                 "worker program %s has no plugin of that name (a worker must register the "
                 "same plugins, before tr_worker_main_if_worker)",
                 name, exe ? exe : "?");
  }
  return plugin;
}

const TrPluginDesc *
tr_plugin_get_desc (const TrPlugin *plugin)
{
  return &plugin->desc;
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
  if (plugin->handle && !g_getenv ("TASKRUN_NO_DLCLOSE"))
    dlclose (plugin->handle);
  g_free (plugin->path);
  g_free (plugin);
}

/* --list-plugins loads every .so on the plugin path, and loading runs code that taskrun
 * does not control (a constructor that aborts, loops or exits): a list must survive the
 * worst file in the folder.  So each candidate is loaded in a child, the taskrun binary
 * itself in a hidden mode (an exec, as for workers: no fork of a process with threads),
 * which prints "ok" and the plugin's entry or "broken" and the loader's reason; a child
 * that dies, exits otherwise, or takes longer than INSPECT_TIMEOUT_S makes the file
 * broken, with what happened to it as the reason. */
#define INSPECT_TIMEOUT_S 10

int
tr_plugin_inspect_main (const char *path)
{
  g_autoptr (GError) e = NULL;
  g_autoptr (TrPlugin) p = tr_plugin_load (path, NULL, &e);
  g_autoptr (GString) out = g_string_new (NULL);
  if (p)
    g_string_append_printf (out, "ok\n%-14s %-8s %s\n%-14s %-8s %s\n", p->desc.name,
                            p->desc.version ? p->desc.version : "-",
                            p->desc.description ? p->desc.description : "", "", "", p->path);
  else
    g_string_append_printf (out, "broken\n%s\n", e->message);
  fputs (out->str, stdout);
  return fflush (stdout) == 0 && p ? 0 : 2;
}

/* The --list-plugins entry of `file`, from a child that loads it. */
static char *
inspect (const char *file)
{
  g_autofree char *program = tr_paths_worker_program ();
  const char *argv[] = { program, TR_INSPECT_ARG, file, NULL };
  GPid pid = 0;
  int out_fd = -1;
  g_autoptr (GError) e = NULL;
  if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                 NULL, &pid, NULL, &out_fd, NULL, &e))
    return g_strdup_printf ("%-14s %-8s broken: cannot start %s to load %s: %s\n", "?", "-",
                            program, file, e->message);
  g_autoptr (GString) text = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + INSPECT_TIMEOUT_S * G_USEC_PER_SEC;
  gboolean late = FALSE;
  for (;;) {
    gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
    GPollFD fd = { .fd = out_fd, .events = G_IO_IN };
    if (left_ms <= 0 || (g_poll (&fd, 1, (int) left_ms) == 0)) {
      late = TRUE;
      break;
    }
    char buf[4096];
    ssize_t n = read (out_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    g_string_append_len (text, buf, n);
  }
  close (out_fd);
  if (late)
    kill (pid, SIGKILL);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid (pid);
  if (late)
    return g_strdup_printf ("%-14s %-8s broken: plugin %s: loading it did not end within %d s\n",
                            "?", "-", file, INSPECT_TIMEOUT_S);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && g_str_has_prefix (text->str, "ok\n"))
    return g_strdup (text->str + 3);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 2 && g_str_has_prefix (text->str, "broken\n"))
    return g_strdup_printf ("%-14s %-8s broken: %s", "?", "-", text->str + 7);
  gboolean clean;
  g_autofree char *how = tr_describe_wait_status (status, &clean);
  g_autofree char *abs = g_canonicalize_filename (file, NULL);
  return g_strdup_printf ("%-14s %-8s broken: plugin %s: loading it ended the process (%s)\n",
                          "?", "-", abs, how);
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
      g_autofree char *entry = inspect (g_ptr_array_index (files, j));
      g_string_append (out, entry);
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
