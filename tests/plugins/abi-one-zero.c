/* abi-one-zero.c — a test plugin built as for ABI 1.0: its descriptor says minor 0, and
 * what a later header puts after `describe` (the reserved pointers, where new hooks go)
 * holds bytes that are not zero, as whatever followed a 1.0 descriptor in memory might.
 * The loader must read none of them: for it they are NULL. */
#include <taskrun/plugin.h>

static TrNext
next (gpointer s, TrTask *t, GError **e)
{
  (void) s; (void) e;
  static int made;
  if (made++ == 3)
    return TR_NEXT_END;
  tr_task_set_payload (t, "x", 1);
  return TR_NEXT_TASK;
}

static gboolean
run (gpointer w, const guint8 *p, gsize l, TrOutput *o, GError **e)
{
  (void) w; (void) p; (void) l; (void) e;
  tr_output_append (o, "ok", 2);
  return TRUE;
}

G_MODULE_EXPORT const TrPluginDesc tr_plugin_descriptor = {
  .abi_major = 1, .abi_minor = 0, .name = "abi-one-zero", .next_task = next, .run = run,
  ._tr_reserved = { (gpointer) 0x1, (gpointer) 0x2, (gpointer) 0x3, (gpointer) 0x4,
                    (gpointer) 0x5, (gpointer) 0x6, (gpointer) 0x7, (gpointer) 0x8 },
};
