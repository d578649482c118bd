/* in-program.c: a pool of 2 worker processes running a function of this program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <taskrun/pool.h>

/* The task: "N" gives N*N; "crash" kills its worker; "hang" runs into the timeout. */
static gboolean square (const guint8 *data, gsize len, TrOutput *out, GError **error) {
  g_autofree char *text = g_strndup ((const char *) data, len);
  char *end = NULL;
  if (strcmp (text, "crash") == 0) abort ();
  if (strcmp (text, "hang") == 0) pause ();
  gint64 n = g_ascii_strtoll (text, &end, 10);
  if (!*text || *end) {
    g_set_error (error, g_quark_from_static_string ("square"), 1, "not a number: %s", text);
    return FALSE;
  }
  g_autofree char *result = g_strdup_printf ("%" G_GINT64_FORMAT, n * n);
  tr_output_append (out, result, strlen (result));
  return TRUE;
}

static void done (const TrResult *r, gpointer data) {
  printf ("%s: %.*s\n", r->description, (int) r->len, r->data);
  (void) data;
}
static void failed (const TrResult *r, gpointer data) {
  printf ("%s: failed: %s\n", r->description, r->error->message);
  (void) data;
}

int main (int argc, char **argv) {
  tr_plugin_register_func ("square", square);
  tr_worker_main_if_worker (argc, argv); /* in a worker: runs tasks, then exits */
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("square", NULL, &error);
  TrPoolOptions options = { .workers = 2, .task_timeout = 1 };
  g_autoptr (TrPool) pool = tr_pool_new (plugin, NULL, &options, &error);
  if (!pool) {
    fprintf (stderr, "%s\n", error->message);
    return 1;
  }
  g_autoptr (GPtrArray) numbers = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (int i = 1; i <= 5; i++)
    g_ptr_array_add (numbers, g_bytes_new_take (g_strdup_printf ("%d", i), 1));
  g_autoptr (GPtrArray) squares = tr_pool_map (pool, numbers, &error);
  if (!squares) {
    fprintf (stderr, "map: %s\n", error->message);
    return 1;
  }
  for (guint i = 0; i < squares->len; i++)
    printf ("map %u: %.*s\n", i + 1, (int) g_bytes_get_size (squares->pdata[i]),
            (const char *) g_bytes_get_data (squares->pdata[i], NULL));

  const char *inputs[] = { "12", "crash", "hang", "x", "9" };
  for (int i = 0; i < 5; i++) {
    g_autoptr (GBytes) payload = g_bytes_new_static (inputs[i], strlen (inputs[i]));
    tr_async_unref (tr_pool_apply_async (pool, inputs[i], payload, done, failed, NULL));
  }
  tr_pool_close (pool);
  tr_pool_join (pool); /* waits for every task, running the callbacks */
  return 0;
}
