/* no-run.c — a test plugin whose descriptor lacks the required run hook. */
#include <taskrun/plugin.h>

static TrNext
next (gpointer s, TrTask *t, GError **e)
{
  (void) s; (void) t; (void) e;
  return TR_NEXT_END;
}

TR_PLUGIN_DEFINE (.name = "no-run", .next_task = next);
