/* nondeterministic.c — a test plugin that does not declare a deterministic task order,
 * so --resume must refuse it. */
#include <taskrun/plugin.h>

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

TR_PLUGIN_DEFINE (.name = "nondeterministic", .version = "1.0", .next_task = next, .run = run);
