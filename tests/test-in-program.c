/* test-in-program.c — pools on plugins registered in the program itself: this test
 * program is its own worker program (its main hands the worker mode over first, as the
 * README's example does).  Map and apply_async through re-executed workers, a crash and
 * a timeout failing only their task, a plugin's own error domain, a whole registered
 * descriptor with options and worker_init, duplicate names, a worker program without the
 * plugin, a program whose main forgot the worker mode (no chain of pools), and workers
 * started after the program's file was replaced. */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

/* A descriptor this program opens before main (a library's, say), in every run of it:
 * the worker that this program is must keep it. */
static int own_fd = -1;

__attribute__ ((constructor)) static void
open_own_fd (void)
{
  own_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
}

#define SQUARE_ERROR (g_quark_from_static_string ("test-square-error"))

/* "N" gives N*N, "crash" aborts its worker, "hang" waits for the timeout, "slot" gives
 * TASKRUN_SLOT, anything else fails with SQUARE_ERROR 7. */
static gboolean
square (const guint8 *payload, gsize len, TrOutput *output, GError **error)
{
  g_autofree char *text = g_strndup ((const char *) payload, len);
  if (strcmp (text, "crash") == 0)
    abort ();
  if (strcmp (text, "hang") == 0)
    pause ();
  if (g_str_has_prefix (text, "big:")) {
    /* N bytes, byte k being k % 251 */
    guint64 n = g_ascii_strtoull (text + 4, NULL, 10);
    for (guint64 k = 0; k < n; k++) {
      guint8 b = (guint8) (k % 251);
      tr_output_append (output, &b, 1);
    }
    return TRUE;
  }
  if (strcmp (text, "wait-child") == 0) {
    /* a task that waits for a program of its own: its exit status, "3" */
    pid_t child = fork ();
    if (child == 0)
      _exit (3);
    int status = 0;
    if (child < 0 || waitpid (child, &status, 0) != child) {
      g_set_error (error, SQUARE_ERROR, 8, "waitpid: %s", g_strerror (errno));
      return FALSE;
    }
    g_autofree char *code = g_strdup_printf ("%d", WEXITSTATUS (status));
    tr_output_append (output, code, strlen (code));
    return TRUE;
  }
  if (g_str_has_prefix (text, "orphan:")) {
    /* starts a program that writes its pid to FILE and waits, then crashes */
    const char *file = text + 7;
    if (fork () == 0) {
      g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
      g_file_set_contents (file, pid, -1, NULL);
      for (;;)
        pause ();
    }
    while (!g_file_test (file, G_FILE_TEST_EXISTS))
      g_usleep (1000);
    abort ();
  }
  if (strcmp (text, "attach-bad") == 0) {
    /* the worker's own descriptors, and one that is not open, are refused */
    gboolean any = tr_output_attach_file (output, 3) || tr_output_attach_file (output, 1) ||
                   tr_output_attach_file (output, 999);
    const char *said = any ? "attached" : "refused";
    tr_output_append (output, said, strlen (said));
    return TRUE;
  }
  if (strcmp (text, "own-fd") == 0) {
    g_autofree char *link = g_strdup_printf ("/proc/self/fd/%d", own_fd);
    g_autofree char *target = g_file_read_link (link, NULL);
    const char *what = target ? target : "closed";
    tr_output_append (output, what, strlen (what));
    return TRUE;
  }
  if (strcmp (text, "slot") == 0) {
    const char *slot = g_getenv ("TASKRUN_SLOT");
    tr_output_append (output, slot, strlen (slot));
    return TRUE;
  }
  char *end = NULL;
  gint64 n = g_ascii_strtoll (text, &end, 10);
  if (!*text || *end) {
    g_set_error (error, SQUARE_ERROR, 7, "not a number: %s", text);
    return FALSE;
  }
  g_autofree char *out = g_strdup_printf ("%" G_GINT64_FORMAT, n * n);
  tr_output_append (output, out, strlen (out));
  return TRUE;
}

/* A whole descriptor: an option read in worker_init. */
static const TrOption power_options[] = {
  { .name = "exponent", .type = TR_OPTION_INT, .default_value = "2", .min = 0, .max = 9,
    .help = "the power" },
  { .name = NULL },
};

static gboolean
power_init (const TrConfig *config, gpointer *state, GError **error)
{
  (void) error;
  *state = GINT_TO_POINTER ((int) tr_config_get_int (config, "exponent"));
  return TRUE;
}

static gboolean
power_run (gpointer state, const guint8 *payload, gsize len, TrOutput *output, GError **error)
{
  (void) error;
  g_autofree char *text = g_strndup ((const char *) payload, len);
  gint64 n = g_ascii_strtoll (text, NULL, 10), r = 1;
  for (int i = 0; i < GPOINTER_TO_INT (state); i++)
    r *= n;
  g_autofree char *out = g_strdup_printf ("%" G_GINT64_FORMAT, r);
  tr_output_append (output, out, strlen (out));
  return TRUE;
}

static const TrPluginDesc power_desc = {
  .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, .name = "test-power",
  .options = power_options, .worker_init = power_init, .run = power_run,
};

/* A descriptor, its name and its option table built on the stack, then overwritten: the
 * registry has its own copy.  Its task answers the option `level`. */
static gboolean
stack_init (const TrConfig *config, gpointer *state, GError **error)
{
  (void) error;
  *state = GINT_TO_POINTER ((int) tr_config_get_int (config, "level"));
  return TRUE;
}

static gboolean
stack_run (gpointer state, const guint8 *payload, gsize len, TrOutput *output, GError **error)
{
  (void) payload, (void) len, (void) error;
  g_autofree char *out = g_strdup_printf ("level %d", GPOINTER_TO_INT (state));
  tr_output_append (output, out, strlen (out));
  return TRUE;
}

static void
register_from_stack (void)
{
  char name[32], key[32], help[32], fallback[8];
  g_strlcpy (name, "test-stack", sizeof name);
  g_strlcpy (key, "level", sizeof key);
  g_strlcpy (help, "a level", sizeof help);
  g_strlcpy (fallback, "1", sizeof fallback);
  TrOption options[] = {
    { .name = key, .type = TR_OPTION_INT, .default_value = fallback, .min = 0, .max = 9, .help = help },
    { .name = NULL },
  };
  TrPluginDesc desc = { .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, .name = name,
                        .options = options, .worker_init = stack_init, .run = stack_run };
  tr_plugin_register (&desc);
  memset (name, 'X', sizeof name - 1);
  memset (key, 'X', sizeof key - 1);
  memset (help, 'X', sizeof help - 1);
  memset (fallback, 'X', sizeof fallback - 1);
  memset (options, 0xaa, sizeof options);
}

static TrPool *
pool_on (const char *name, const TrConfig *config, TrPoolOptions *o, TrPlugin **plugin)
{
  g_autoptr (GError) error = NULL;
  *plugin = tr_plugin_load (name, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (tr_plugin_is_in_program (*plugin));
  TrPool *pool = tr_pool_new (*plugin, config, o, &error);
  g_assert_no_error (error);
  return pool;
}

static char *
apply_text (TrPool *pool, const char *input, GError **error)
{
  g_autoptr (GBytes) payload = g_bytes_new (input, strlen (input));
  g_autoptr (GBytes) out = tr_pool_apply (pool, input, payload, error);
  return out ? g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out)) : NULL;
}

static void
test_registration_copied (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) probe = tr_plugin_load ("test-stack", NULL, &error);
  g_assert_no_error (error);
  const TrPluginDesc *d = tr_plugin_get_desc (probe);
  g_assert_cmpstr (d->name, ==, "test-stack");
  g_assert_cmpstr (d->options[0].name, ==, "level");
  g_assert_cmpstr (d->options[0].default_value, ==, "1");
  g_assert_cmpstr (d->options[0].help, ==, "a level");
  g_assert_null (d->options[1].name);
  g_autoptr (TrConfig) config = tr_config_new (d->options, "test-stack");
  g_assert_true (tr_config_set (config, "level", "5", NULL, &error));
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 1 };
  TrPool *pool = pool_on ("test-stack", config, &o, &plugin);
  g_autofree char *level = apply_text (pool, "", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (level, ==, "level 5");
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

static void
test_map_in_order (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (int i = 0; i < 2000; i++) {
    char n[16];
    g_snprintf (n, sizeof n, "%d", i);
    g_ptr_array_add (in, g_bytes_new (n, strlen (n)));
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 2000);
  for (int i = 0; i < 2000; i++) {
    g_autofree char *want = g_strdup_printf ("%d", i * i);
    GBytes *b = g_ptr_array_index (out, i);
    g_assert_cmpmem (g_bytes_get_data (b, NULL), g_bytes_get_size (b), want, strlen (want));
  }
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

/* Results of every size, below and above what a map packs into shared blocks, each whole
 * and at its payload's index. */
static void
test_map_results_of_every_size (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < 400; i++) {
    g_autofree char *cmd = g_strdup_printf ("big:%u", (i * 7919) % 40000);
    g_ptr_array_add (in, g_bytes_new (cmd, strlen (cmd)));
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 400);
  for (guint i = 0; i < 400; i++) {
    gsize len;
    const guint8 *b = g_bytes_get_data (out->pdata[i], &len);
    g_assert_cmpuint (len, ==, (i * 7919) % 40000);
    for (gsize k = 0; k < len; k++)
      if (b[k] != k % 251)
        g_error ("result %u: byte %zu is %u", i, k, b[k]);
  }
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

/* Of several failures, the lowest index is reported; after close, map is refused. */
static void
test_map_failures_and_close (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < 50; i++) {
    const char *cmd = i == 40 ? "x40" : i == 7 ? "x7" : i == 30 ? "crash" : "3";
    g_ptr_array_add (in, g_bytes_new (cmd, strlen (cmd)));
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_null (out);
  g_assert_error (error, SQUARE_ERROR, 7);
  g_assert_cmpstr (error->message, ==, "payload 7: not a number: x7");
  g_clear_error (&error);
  tr_pool_close (pool);
  g_autoptr (GPtrArray) none = tr_pool_map (pool, in, &error);
  g_assert_null (none);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED);
  tr_pool_join (pool);
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

/* A callback that calls into the pool and waits: for a task whose result came in the
 * same hand-over as its own (both in one frame: batch = 2), and for join. */
typedef struct {
  TrPool *pool;
  TrAsync *sibling;
  gboolean sibling_done, joined;
} Reentrant;

static void
wait_for_sibling (const TrResult *r, gpointer data)
{
  (void) r;
  Reentrant *re = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) got = tr_async_get (re->sibling, &error);
  g_assert_no_error (error);
  re->sibling_done = TRUE;
}

static void
join_from_callback (const TrResult *r, gpointer data)
{
  (void) r;
  Reentrant *re = data;
  tr_pool_join (re->pool);
  re->joined = TRUE;
}

static void
test_callback_waits_on_pool (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 1, .batch = 2 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  Reentrant re = { .pool = pool };
  g_autoptr (GBytes) payload = g_bytes_new_static ("2", 1);
  for (int round = 0; round < 20; round++) {
    re.sibling_done = FALSE;
    g_autoptr (TrAsync) first = tr_pool_apply_async (pool, "first", payload, wait_for_sibling, NULL, &re);
    re.sibling = tr_pool_apply_async (pool, "second", payload, NULL, NULL, NULL);
    g_assert_true (tr_async_wait (first, 20 * G_USEC_PER_SEC));
    g_assert_true (re.sibling_done);
    tr_async_unref (re.sibling);
  }
  for (int round = 0; round < 20; round++) {
    re.joined = FALSE;
    tr_async_unref (tr_pool_apply_async (pool, "a", payload, join_from_callback, NULL, &re));
    tr_async_unref (tr_pool_apply_async (pool, "b", payload, NULL, NULL, NULL));
    tr_pool_join (pool);
    g_assert_true (re.joined);
  }
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

typedef struct {
  guint ok, failed;
  GString *seen;
} Counts;

static void
on_done (const TrResult *r, gpointer data)
{
  Counts *c = data;
  c->ok++;
  g_string_append_printf (c->seen, "%s=%.*s;", r->description, (int) r->len, r->data);
}

static void
on_failed (const TrResult *r, gpointer data)
{
  Counts *c = data;
  c->failed++;
  g_string_append_printf (c->seen, "%s!%s:%d;", r->description,
                          g_quark_to_string (r->error->domain), r->error->code);
}

/* A crash, a hang and a plugin error each fail their own task; the pool goes on. */
static void
test_failures_fail_only_their_task (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2, .task_timeout = 0.5 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  Counts c = { .seen = g_string_new (NULL) };
  const char *inputs[] = { "3", "crash", "hang", "x", "4" };
  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++) {
    g_autoptr (GBytes) payload = g_bytes_new_static (inputs[i], strlen (inputs[i]));
    tr_async_unref (tr_pool_apply_async (pool, inputs[i], payload, on_done, on_failed, &c));
  }
  g_autoptr (GError) error = NULL;
  g_autofree char *after = apply_text (pool, "5", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (after, ==, "25");
  tr_pool_close (pool);
  tr_pool_join (pool);
  g_assert_cmpuint (c.ok, ==, 2);
  g_assert_cmpuint (c.failed, ==, 3);
  g_autofree char *worker_died = g_strdup_printf ("crash!%s:%d;", g_quark_to_string (TR_TASK_ERROR),
                                                  TR_TASK_ERROR_WORKER_DIED);
  g_autofree char *timeout = g_strdup_printf ("hang!%s:%d;", g_quark_to_string (TR_TASK_ERROR),
                                              TR_TASK_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (c.seen->str, "3=9;"));
  g_assert_nonnull (strstr (c.seen->str, "4=16;"));
  g_assert_nonnull (strstr (c.seen->str, worker_died));
  g_assert_nonnull (strstr (c.seen->str, timeout));
  g_assert_nonnull (strstr (c.seen->str, "x!test-square-error:7;"));
  g_string_free (c.seen, TRUE);
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

static void
test_descriptor_with_options (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) probe = tr_plugin_load ("test-power", NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TrConfig) config = tr_config_new (tr_plugin_get_desc (probe)->options, "test-power");
  g_assert_true (tr_config_set (config, "exponent", "3", NULL, &error));
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2 };
  TrPool *pool = pool_on ("test-power", config, &o, &plugin);
  g_autofree char *cube = apply_text (pool, "7", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cube, ==, "343");
  tr_pool_free (pool);
  tr_plugin_free (plugin);
  /* a value out of the option's range is refused in the parent, before any worker */
  g_assert_false (tr_config_set (config, "exponent", "12", NULL, &error));
  g_assert_nonnull (strstr (error->message, "exponent"));
}

/* The worker sees its slot, and keeps the descriptors the program opened itself. */
static void
test_worker_keeps_its_own (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 1 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  g_autoptr (GError) error = NULL;
  g_autofree char *slot = apply_text (pool, "slot", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (slot, ==, "1");
  g_autofree char *fd_target = apply_text (pool, "own-fd", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fd_target, ==, "/dev/null");
  g_autofree char *attached = apply_text (pool, "attach-bad", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (attached, ==, "refused");
  g_autofree char *after = apply_text (pool, "6", &error);
  g_assert_cmpstr (after, ==, "36");
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

static void
test_duplicate_name_refused (void)
{
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*'test-square' is registered already*");
  g_assert_false (tr_plugin_register_func ("test-square", square));
  g_test_assert_expected_messages ();
  TrPluginDesc nameless = { .abi_major = TR_ABI_MAJOR, .abi_minor = TR_ABI_MINOR, .run = power_run };
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*has no name*");
  g_assert_false (tr_plugin_register (&nameless));
  g_test_assert_expected_messages ();
  const char *path_like[] = { "a/b", "x.so" };
  for (guint i = 0; i < G_N_ELEMENTS (path_like); i++) {
    g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*would be read as a file's path*");
    g_assert_false (tr_plugin_register_func (path_like[i], square));
    g_test_assert_expected_messages ();
  }
  TrPluginDesc newer = power_desc;
  newer.name = "test-newer";
  newer.abi_minor = TR_ABI_MINOR + 1;
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*built for ABI*");
  g_assert_false (tr_plugin_register (&newer));
  g_test_assert_expected_messages ();
}

/* Arguments a careless caller passes: a critical warning or an error, never a crash. */
static void
test_careless_arguments (void)
{
  g_autoptr (GError) error = NULL;
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*name_or_path != NULL*");
  g_assert_null (tr_plugin_load (NULL, NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_null (tr_plugin_load ("", NULL, &error));
  g_assert_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*plugin != NULL*");
  g_assert_null (tr_pool_new (NULL, NULL, NULL, &error));
  g_test_assert_expected_messages ();
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 1 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*payload != NULL*");
  g_assert_null (tr_pool_apply_async (pool, "x", NULL, NULL, NULL, NULL));
  g_test_assert_expected_messages ();
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_ptr_array_add (in, g_bytes_new_static ("2", 1));
  g_ptr_array_add (in, NULL);
  g_assert_null (tr_pool_map (pool, in, &error));
  g_assert_nonnull (error);
  g_assert_cmpstr (error->message, ==, "payload 1 is NULL, not a GBytes");
  g_clear_error (&error);
  g_autoptr (GPtrArray) empty = g_ptr_array_new ();
  g_autoptr (GPtrArray) none = tr_pool_map (pool, empty, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
  g_autofree char *after = apply_text (pool, "5", &error);
  g_assert_cmpstr (after, ==, "25");
  tr_pool_free (pool);
  tr_plugin_free (plugin);
}

/* Freeing a pool with tasks still running: every task's callback runs, and the handles
 * outlive the pool, done. */
static void
test_free_while_running (void)
{
  TrPlugin *plugin;
  TrPoolOptions o = { .workers = 2 };
  TrPool *pool = pool_on ("test-square", NULL, &o, &plugin);
  Counts c = { .seen = g_string_new (NULL) };
  TrAsync *handles[40];
  for (guint i = 0; i < G_N_ELEMENTS (handles); i++) {
    const char *input = i < 2 ? "hang" : "3";
    g_autoptr (GBytes) payload = g_bytes_new_static (input, strlen (input));
    handles[i] = tr_pool_apply_async (pool, input, payload, on_done, on_failed, &c);
  }
  tr_pool_free (pool);
  g_assert_cmpuint (c.ok + c.failed, ==, G_N_ELEMENTS (handles));
  g_assert_cmpuint (c.failed, >=, 2);
  for (guint i = 0; i < G_N_ELEMENTS (handles); i++) {
    g_assert_true (tr_async_ready (handles[i]));
    g_assert_nonnull (tr_async_peek_result (handles[i]));
    tr_async_unref (handles[i]);
  }
  g_string_free (c.seen, TRUE);
  tr_plugin_free (plugin);
}

/* Options out of range are refused, naming the field; infinity means no limit. */
static void
test_options_checked (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("test-square", NULL, &error);
  const struct {
    TrPoolOptions o;
    const char *says;
  } bad[] = {
    { { .workers = 5000 }, "TrPoolOptions.workers is 5000: it must be at most 4096" },
    { { .workers = 1, .batch = 70000 }, "TrPoolOptions.batch is 70000" },
    { { .workers = 1, .task_timeout = -1 }, "TrPoolOptions.task_timeout is -1: it must be" },
    { { .workers = 1, .task_timeout = NAN }, "TrPoolOptions.task_timeout is nan" },
    { { .workers = 1, .task_timeout = 1e20 }, "TrPoolOptions.task_timeout is 1e+20" },
    { { .workers = 1, .start_timeout = -INFINITY }, "TrPoolOptions.start_timeout is -inf" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    TrPool *pool = tr_pool_new (plugin, NULL, &bad[i].o, &error);
    g_assert_null (pool);
    g_assert_nonnull (error);
    if (!strstr (error->message, bad[i].says))
      g_error ("case %u: %s", i, error->message);
    g_clear_error (&error);
  }
  TrPoolOptions forever = { .workers = 1, .task_timeout = INFINITY, .start_timeout = INFINITY };
  g_autoptr (TrPool) pool = tr_pool_new (plugin, NULL, &forever, &error);
  g_assert_no_error (error);
  g_autofree char *nine = apply_text (pool, "3", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (nine, ==, "9");
}

/* Registered names come before the plugin path: "testkit" is also a .so there. */
static void
test_registered_name_first (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("testkit", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (tr_plugin_is_in_program (plugin));
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_assert_cmpstr (tr_plugin_get_path (plugin), ==, exe);
}

/* Another worker program (taskrun) has no such plugin: the pool does not start, and
 * says why. */
static void
test_other_worker_program (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("test-square", NULL, &error);
  TrPoolOptions o = { .workers = 1, .worker_program = TT_TASKRUN };
  TrPool *pool = tr_pool_new (plugin, NULL, &o, &error);
  g_assert_null (pool);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
  g_assert_nonnull (strstr (error->message, "'test-square' is registered in the program"));
  g_assert_nonnull (strstr (error->message, "has no plugin of that name"));
}

/* Runs this program again with `env`; its exit status, its stdout and stderr. */
static int
run_self (const char *program, const char *const *env, char **out, char **err)
{
  g_autofree char *exe = program ? g_strdup (program) : g_file_read_link ("/proc/self/exe", NULL);
  const char *argv[] = { exe, NULL };
  g_auto (GStrv) envp = g_get_environ ();
  for (guint i = 0; env[i]; i += 2)
    envp = g_environ_setenv (envp, env[i], env[i + 1], TRUE);
  int status = -1;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_DEFAULT, NULL, NULL, out, err,
                               &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* A program whose main does not hand over the worker mode: each worker it starts would
 * run main again and start a pool of its own.  The worker's pool is refused instead, so
 * the first pool fails to start, naming the cause. */
static void
test_forgotten_worker_mode (void)
{
  g_autofree char *out = NULL, *err = NULL;
  const char *env[] = { "TT_FORGET_WORKER_MODE", "1", NULL };
  int rc = run_self (NULL, env, &out, &err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "first pool: not started:"));
  g_assert_nonnull (strstr (err, "main must call tr_worker_main_if_worker"));
  g_assert_null (strstr (out, "nested pool started"));
}

/* The worker mode run by hand says what it is, and exits non-zero. */
static void
test_worker_mode_by_hand (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  const char *argv[] = { exe, "--tr-worker", "1", NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
                               &out, &err, &status, &error));
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), !=, 0);
  g_assert_nonnull (strstr (err, "is a worker mode for a taskrun pool"));
}

/* Workers started after the program's file was replaced run the file as it was. */
static void
test_program_file_replaced (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *copy = g_build_filename (dir, "copy", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (self, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (copy, bytes, len, NULL));
  g_assert_cmpint (g_chmod (copy, 0755), ==, 0);
  g_autofree char *out = NULL, *err = NULL;
  const char *env[] = { "TT_REPLACE_SELF", "1", NULL };
  int rc = run_self (copy, env, &out, &err);
  if (rc != 0)
    g_printerr ("%s", err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpstr (out, ==, "1 4 9 16 25 36 \n");
  tt_rmtree (dir);
}

/* A program that ignores SIGCHLD (the kernel then reaps its children itself): a worker
 * that crashes is still reported, what its task started still goes with it, and its
 * tasks can still wait for their own children. */
static void
test_sigchld_ignored (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *pid_file = g_build_filename (dir, "pid", NULL);
  g_autofree char *out = NULL, *err = NULL;
  const char *env[] = { "TT_IGNORE_SIGCHLD", pid_file, NULL };
  int rc = run_self (NULL, env, &out, &err);
  g_test_message ("%s%s", out, err);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "wait-child: 3\n"));
  g_assert_nonnull (strstr (out, "orphan: failed: worker 1 (pid "));
  g_assert_nonnull (strstr (out, "ignores SIGCHLD"));
  g_assert_nonnull (strstr (out, "after: 16\n"));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (pid_file, &text, NULL, NULL));
  pid_t left = (pid_t) atoi (text);
  g_assert_cmpint (left, >, 1);
  gboolean gone = FALSE;
  for (int i = 0; i < 500 && !gone; i++) {
    gone = kill (left, 0) != 0 && errno == ESRCH;
    if (!gone)
      g_usleep (10000);
  }
  if (!gone)
    kill (left, SIGKILL);
  g_assert_true (gone);
  tt_rmtree (dir);
}

static int
sigchld_ignoring_main (const char *pid_file)
{
  signal (SIGCHLD, SIG_IGN);
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("test-square", NULL, &error);
  TrPoolOptions o = { .workers = 1 };
  g_autoptr (TrPool) pool = tr_pool_new (plugin, NULL, &o, &error);
  if (!pool) {
    g_printerr ("%s\n", error->message);
    return 6;
  }
  g_autofree char *orphan = g_strconcat ("orphan:", pid_file, NULL);
  const char *inputs[] = { "wait-child", orphan, "4" };
  for (int i = 0; i < 3; i++) {
    g_autoptr (GError) task_error = NULL;
    g_autofree char *got = apply_text (pool, inputs[i], &task_error);
    printf ("%s: %s%s\n", i == 1 ? "orphan" : i == 2 ? "after" : inputs[i],
            got ? got : "failed: ", got ? "" : task_error->message);
  }
  return 0;
}

/* What TT_FORGET_WORKER_MODE and TT_REPLACE_SELF runs do instead of the tests. */
static int
forgetful_main (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("test-square", NULL, &error);
  TrPoolOptions o = { .workers = 1, .start_timeout = 20 };
  g_autoptr (TrPool) pool = tr_pool_new (plugin, NULL, &o, &error);
  if (getenv ("TT_IN_WORKER")) {
    /* a worker that ran main again: it must not get a pool */
    printf ("nested pool %s\n", pool ? "started" : "refused");
    g_printerr ("%s\n", pool ? "nested pool started" : error->message);
    return 3;
  }
  printf ("first pool: %s%s\n", pool ? "started" : "not started: ", pool ? "" : error->message);
  return 0;
}

static int
replacing_main (void)
{
  /* the file this process runs is removed, and another put at its name */
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  if (g_unlink (self) != 0 || !g_file_set_contents (self, "#!/bin/sh\nexit 9\n", -1, NULL) ||
      g_chmod (self, 0755) != 0)
    return 5;
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("test-square", NULL, &error);
  TrPoolOptions o = { .workers = 1, .max_tasks_per_worker = 1 };
  g_autoptr (TrPool) pool = tr_pool_new (plugin, NULL, &o, &error);
  if (!pool) {
    g_printerr ("%s\n", error->message);
    return 6;
  }
  for (int i = 1; i <= 6; i++) {
    g_autofree char *in = g_strdup_printf ("%d", i);
    g_autofree char *sq = apply_text (pool, in, &error);
    if (!sq) {
      g_printerr ("%s\n", error->message);
      return 7;
    }
    printf ("%s ", sq);
  }
  printf ("\n");
  return 0;
}

int
main (int argc, char **argv)
{
  tr_plugin_register_func ("test-square", square);
  tr_plugin_register_func ("testkit", square);
  tr_plugin_register (&power_desc);
  register_from_stack ();
  if (getenv ("TT_FORGET_WORKER_MODE")) {
    if (argc > 1)
      g_setenv ("TT_IN_WORKER", "1", TRUE);
    return forgetful_main ();
  }
  tr_worker_main_if_worker (argc, argv);
  if (getenv ("TT_REPLACE_SELF"))
    return replacing_main ();
  if (getenv ("TT_IGNORE_SIGCHLD"))
    return sigchld_ignoring_main (getenv ("TT_IGNORE_SIGCHLD"));

  /* (set before any thread: the pools' threads read the environment) */
  g_setenv ("TASKRUN_PLUGIN_PATH", TT_TEST_PLUGIN_DIR, TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/in-program/map-in-order", test_map_in_order);
  g_test_add_func ("/in-program/map-results-of-every-size", test_map_results_of_every_size);
  g_test_add_func ("/in-program/map-failures-and-close", test_map_failures_and_close);
  g_test_add_func ("/in-program/callback-waits-on-pool", test_callback_waits_on_pool);
  g_test_add_func ("/in-program/failures-fail-only-their-task", test_failures_fail_only_their_task);
  g_test_add_func ("/in-program/descriptor-with-options", test_descriptor_with_options);
  g_test_add_func ("/in-program/worker-keeps-its-own", test_worker_keeps_its_own);
  g_test_add_func ("/in-program/registration-copied", test_registration_copied);
  g_test_add_func ("/in-program/duplicate-name-refused", test_duplicate_name_refused);
  g_test_add_func ("/in-program/options-checked", test_options_checked);
  g_test_add_func ("/in-program/free-while-running", test_free_while_running);
  g_test_add_func ("/in-program/careless-arguments", test_careless_arguments);
  g_test_add_func ("/in-program/registered-name-first", test_registered_name_first);
  g_test_add_func ("/in-program/other-worker-program", test_other_worker_program);
  g_test_add_func ("/in-program/forgotten-worker-mode", test_forgotten_worker_mode);
  g_test_add_func ("/in-program/program-file-replaced", test_program_file_replaced);
  g_test_add_func ("/in-program/worker-mode-by-hand", test_worker_mode_by_hand);
  g_test_add_func ("/in-program/sigchld-ignored", test_sigchld_ignored);
  return g_test_run ();
}
