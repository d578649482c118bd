/* link-check.c — built by .ci/run against an installed prefix with nothing but
 * `pkg-config --cflags --libs taskrun`: a program links libtaskrun, loads an installed
 * plugin by name and runs it on a pool of two workers. */
#include <stdio.h>
#include <string.h>
#include <taskrun/taskrun.h>

int
main (void)
{
  GError *error = NULL;
  TrPlugin *plugin = tr_plugin_load ("sleep-demo", NULL, &error);
  if (!plugin) {
    fprintf (stderr, "link-check: %s\n", error->message);
    return 1;
  }
  const TrPluginDesc *desc = tr_plugin_get_desc (plugin);
  printf ("%s ABI %u.%u, library %u.%u\n", desc->name, desc->abi_major, desc->abi_minor,
          TR_ABI_MAJOR, tr_abi_minor ());
  int ok = strcmp (desc->name, "sleep-demo") == 0 && desc->abi_minor == tr_abi_minor ();
  tr_plugin_free (plugin);
  return ok ? 0 : 1;
}
