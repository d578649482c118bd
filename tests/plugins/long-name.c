/* long-name.c — a test plugin whose name (and so its job file section) is longer than the
 * 49 bytes inih keeps of a section name: its keys must still reach it.  `count` tasks,
 * each doing nothing. */
#include <taskrun/plugin.h>

static const TrOption options[] = {
  { .name = "count", .type = TR_OPTION_INT, .required = TRUE, .min = 0, .max = 1000,
    .help = "how many tasks" },
  { .name = NULL },
};

typedef struct {
  gint64 left;
} State;

static gboolean
configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  (void) job; (void) error;
  State *s = g_new0 (State, 1);
  s->left = tr_config_get_int (config, "count");
  *state = s;
  return TRUE;
}

static TrNext
next (gpointer state, TrTask *t, GError **e)
{
  (void) e;
  State *s = state;
  if (s->left == 0)
    return TR_NEXT_END;
  s->left--;
  tr_task_set_payload (t, "", 0);
  return TR_NEXT_TASK;
}

static gboolean
run (gpointer w, const guint8 *p, gsize l, TrOutput *o, GError **e)
{
  (void) w; (void) p; (void) l; (void) o; (void) e;
  return TRUE;
}

TR_PLUGIN_DEFINE (.name = "a-plugin-whose-name-is-longer-than-what-inih-keeps-of-a-section",
                  .version = "1.0", .options = options, .configure = configure,
                  .next_task = next, .run = run, .destroy = g_free,
                  .flags = TR_PLUGIN_FLAG_DETERMINISTIC);
