/* aborts.c — a test plugin whose constructor aborts the process that loads it, before
 * the loader sees its descriptor: --list-plugins must survive it and list it as broken. */
#include <taskrun/plugin.h>

#include <stdlib.h>

__attribute__ ((constructor)) static void
abort_at_load (void)
{
  abort ();
}

static TrNext
next (gpointer s, TrTask *t, GError **e)
{
  (void) s; (void) t; (void) e;
  return TR_NEXT_END;
}

static gboolean
run (gpointer w, const guint8 *p, gsize l, TrOutput *o, GError **e)
{
  (void) w; (void) p; (void) l; (void) o; (void) e;
  return TRUE;
}

TR_PLUGIN_DEFINE (.name = "aborts", .version = "1.0", .next_task = next, .run = run);
