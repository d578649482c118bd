/* in-program.c — plugins that live in the program that runs the pool, not in a .so.
 *
 * Owns: the registry of in-program plugins (tr_plugin_register, tr_plugin_register_func),
 * what tr_plugin_load finds there, and the worker side of such a program
 * (tr_worker_main_if_worker).  A pool on an in-program plugin starts its workers by
 * running the program itself again, in taskrun's hidden worker mode (the way Python's
 * spawn start method and MPI programs start): its main registers the same plugins, calls
 * tr_worker_main_if_worker, and that call serves as the worker and exits.  So the
 * registry must be filled the same way in every run of the program, before that call.
 *
 * The worker is sent TR_IN_PROGRAM_REF + the plugin's name in place of a .so's path;
 * a worker program that has no plugin of that name says so and does not start.
 * Does not own: loading .so files (loader.c), the worker loop (worker.c).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  TrPluginDesc desc; /* a copy: the caller's may be on its stack */
  TrTaskFunc func;   /* tr_plugin_register_func: what the descriptor's run calls */
} Registered;

/* Filled from the program's main, read by tr_plugin_load on any thread: under the lock.
 * Entries live as long as the process (a TrPlugin points into one). */
static GMutex registry_lock;
static GHashTable *registry; /* name -> Registered */

/* The run hook of a plugin made from one function: its worker state is the function. */
static gboolean
run_func (gpointer worker_state, const guint8 *payload, gsize len, TrOutput *output,
          GError **error)
{
  const Registered *r = worker_state;
  return r->func (payload, len, output, error);
}

/* `options` copied whole, with its strings (interned), for the life of the process. */
static const TrOption *
copy_options (const TrOption *options)
{
  if (!options)
    return NULL;
  guint n = 0;
  while (options[n].name)
    n++;
  TrOption *copy = g_new0 (TrOption, n + 1);
  for (guint i = 0; i < n; i++) {
    copy[i] = options[i];
    copy[i].name = g_intern_string (options[i].name);
    copy[i].default_value = g_intern_string (options[i].default_value);
    copy[i].help = g_intern_string (options[i].help);
    if (options[i].choices) {
      guint k = g_strv_length ((char **) options[i].choices);
      const char **choices = g_new0 (const char *, k + 1);
      for (guint j = 0; j < k; j++)
        choices[j] = g_intern_string (options[i].choices[j]);
      copy[i].choices = choices;
    }
  }
  return copy;
}

static void
registered_free (Registered *r)
{
  for (const TrOption *o = r->desc.options; o && o->name; o++)
    g_free ((gpointer) o->choices);
  g_free ((gpointer) r->desc.options);
  g_free (r);
}

static gboolean
add (const TrPluginDesc *desc, TrTaskFunc func)
{
  g_autoptr (GError) error = NULL;
  if (desc->abi_major != TR_ABI_MAJOR || desc->abi_minor > TR_ABI_MINOR) {
    g_critical ("tr_plugin_register: %s was built for ABI %u.%u, this libtaskrun speaks up "
                "to %u.%u", desc->name ? desc->name : "(no name)", desc->abi_major,
                desc->abi_minor, TR_ABI_MAJOR, TR_ABI_MINOR);
    return FALSE;
  }
  if (!tr_plugin_check_desc (desc, "(in this program)", &error)) {
    g_critical ("tr_plugin_register: %s", error->message);
    return FALSE;
  }
  if (strchr (desc->name, '/') || g_str_has_suffix (desc->name, ".so")) {
    g_critical ("tr_plugin_register: '%s' would be read as a file's path by tr_plugin_load: "
                "a name has no '/' and does not end in .so", desc->name);
    return FALSE;
  }
  /* everything copied: the caller's descriptor, strings and table may be on its stack */
  Registered *r = g_new0 (Registered, 1);
  memcpy (&r->desc, desc, tr_plugin_desc_size (desc->abi_minor));
  r->desc.name = g_intern_string (desc->name);
  r->desc.version = g_intern_string (desc->version);
  r->desc.description = g_intern_string (desc->description);
  r->desc.license = g_intern_string (desc->license);
  r->desc.unit_name = g_intern_string (desc->unit_name);
  r->desc.options = copy_options (desc->options);
  r->func = func;
  g_mutex_lock (&registry_lock);
  if (!registry)
    registry = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean taken = g_hash_table_contains (registry, desc->name);
  if (!taken)
    g_hash_table_insert (registry, (gpointer) r->desc.name, r);
  g_mutex_unlock (&registry_lock);
  if (taken) {
    g_critical ("tr_plugin_register: a plugin named '%s' is registered already", desc->name);
    registered_free (r);
    return FALSE;
  }
  return TRUE;
}

gboolean
tr_plugin_register (const TrPluginDesc *desc)
{
  g_return_val_if_fail (desc != NULL, FALSE);
  return add (desc, NULL);
}

gboolean
tr_plugin_register_func (const char *name, TrTaskFunc func)
{
  g_return_val_if_fail (name != NULL && func != NULL, FALSE);
  TrPluginDesc desc = { .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, .name = name,
                        .run = run_func };
  return add (&desc, func);
}

TrPlugin *
tr_in_program_find (const char *name)
{
  g_mutex_lock (&registry_lock);
  Registered *r = registry ? g_hash_table_lookup (registry, name) : NULL;
  g_mutex_unlock (&registry_lock);
  if (!r)
    return NULL;
  /* a worker re-runs this very file: /proc/self/exe still names it when the file on
   * disk has been replaced or removed since the program started */
  return tr_plugin_wrap (&r->desc, r->func ? (gpointer) r : NULL);
}

void
tr_worker_main_if_worker (int argc, char **argv)
{
  if (argc == 3 && argv && argv[1] && strcmp (argv[1], TR_WORKER_ARG) == 0)
    exit (tr_worker_main (TR_WORKER_LINK_FD, (pid_t) atol (argv[2])));
}
