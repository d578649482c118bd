/* wrong-abi.c — a test plugin that claims a future ABI; the loader must refuse it. */
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

G_MODULE_EXPORT const TrPluginDesc tr_plugin_descriptor = {
  .abi_major = 2, .abi_minor = 0, .name = "wrong-abi", .next_task = next, .run = run,
};
