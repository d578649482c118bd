// cxx.cc — a plugin written in C++ with TR_PLUGIN_DEFINE: the loader must find its
// descriptor (extern "C", not a file-local const) and run it.
#include <taskrun/plugin.h>

#include <cstring>

static TrNext
cxx_next (gpointer state, TrTask *task, GError **error)
{
  (void) error;
  int *left = static_cast<int *> (state);
  if ((*left)-- <= 0)
    return TR_NEXT_END;
  tr_task_set_payload (task, "c++", 3);
  return TR_NEXT_TASK;
}

static gboolean
cxx_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  (void) job, (void) config, (void) error;
  *state = g_new0 (int, 1);
  *static_cast<int *> (*state) = 3;
  return TRUE;
}

static gboolean
cxx_run (gpointer worker_state, const guint8 *payload, gsize len, TrOutput *output,
         GError **error)
{
  (void) worker_state, (void) error;
  tr_output_append (output, payload, len);
  return TRUE;
}

TR_PLUGIN_DEFINE (.name = "cxx", .version = "1.0", .description = "a plugin in C++",
                  .configure = cxx_configure, .next_task = cxx_next, .destroy = g_free,
                  .run = cxx_run);
