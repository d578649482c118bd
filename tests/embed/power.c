/* power.c: a task plugin that raises numbers to the power `exponent`. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <taskrun/plugin.h>

static const TrOption power_options[] = {
  { .name = "exponent", .type = TR_OPTION_INT, .default_value = "2", .min = 0, .max = 9,
    .help = "the power each number is raised to" },
  { .name = NULL },
};

static gboolean power_init (const TrConfig *config, gpointer *state, GError **error) {
  *state = GINT_TO_POINTER ((int) tr_config_get_int (config, "exponent"));
  (void) error;
  return TRUE;
}

/* The task: "N" gives N to the power; "crash" kills its worker; "hang" runs into the
 * timeout. */
static gboolean power_run (gpointer state, const guint8 *data, gsize len, TrOutput *out,
                           GError **error) {
  g_autofree char *text = g_strndup ((const char *) data, len);
  char *end = NULL;
  if (strcmp (text, "crash") == 0) abort ();
  if (strcmp (text, "hang") == 0) pause ();
  gint64 n = g_ascii_strtoll (text, &end, 10), result = 1;
  if (!*text || *end) {
    g_set_error (error, g_quark_from_static_string ("power"), 1, "not a number: %s", text);
    return FALSE;
  }
  for (int i = 0; i < GPOINTER_TO_INT (state); i++)
    result *= n;
  g_autofree char *text_out = g_strdup_printf ("%" G_GINT64_FORMAT, result);
  tr_output_append (out, text_out, strlen (text_out));
  return TRUE;
}

TR_PLUGIN_DEFINE (.name = "power", .version = "1.0", .license = "MIT",
                  .description = "raises numbers to a power", .options = power_options,
                  .worker_init = power_init, .run = power_run);
