/* with-plugin.c: a pool of 2 worker processes running the tasks of a plugin file. */
#include <stdio.h>
#include <string.h>
#include <taskrun/pool.h>

static void done (const TrResult *r, gpointer data) {
  printf ("%s: %.*s\n", r->description, (int) r->len, r->data);
  (void) data;
}
static void failed (const TrResult *r, gpointer data) {
  printf ("%s: failed: %s\n", r->description, r->error->message);
  (void) data;
}

int main (int argc, char **argv) {
  g_autoptr (GError) error = NULL;
  /* a name on the plugin path ($TASKRUN_PLUGIN_PATH, the installed plugins) or a path */
  g_autoptr (TrPlugin) plugin = tr_plugin_load (argc > 1 ? argv[1] : "power", NULL, &error);
  g_autoptr (TrConfig) config = NULL;
  if (plugin) {
    config = tr_config_new (tr_plugin_get_desc (plugin)->options, "power");
    tr_config_set (config, "exponent", "3", NULL, &error);
  }
  TrPoolOptions options = { .workers = 2, .task_timeout = 1 };
  g_autoptr (TrPool) pool = error ? NULL : tr_pool_new (plugin, config, &options, &error);
  if (!pool) {
    fprintf (stderr, "%s\n", error->message);
    return 1;
  }
  g_autoptr (GPtrArray) numbers = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (int i = 1; i <= 5; i++)
    g_ptr_array_add (numbers, g_bytes_new_take (g_strdup_printf ("%d", i), 1));
  g_autoptr (GPtrArray) cubes = tr_pool_map (pool, numbers, &error);
  if (!cubes) {
    fprintf (stderr, "map: %s\n", error->message);
    return 1;
  }
  for (guint i = 0; i < cubes->len; i++)
    printf ("map %u: %.*s\n", i + 1, (int) g_bytes_get_size (cubes->pdata[i]),
            (const char *) g_bytes_get_data (cubes->pdata[i], NULL));

  const char *inputs[] = { "12", "crash", "hang", "x", "9" };
  for (int i = 0; i < 5; i++) {
    g_autoptr (GBytes) payload = g_bytes_new_static (inputs[i], strlen (inputs[i]));
    tr_async_unref (tr_pool_apply_async (pool, inputs[i], payload, done, failed, NULL));
  }
  tr_pool_close (pool);
  tr_pool_join (pool); /* waits for every task, running the callbacks */
  return 0;
}
