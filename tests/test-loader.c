/* test-loader.c — loading plugins: each broken plugin is refused with its own reason,
 * both by tr_plugin_load and by the taskrun binary (exit 2, nothing run), and
 * --list-plugins shows broken plugins as broken instead of crashing. */
#include "testutil.h"

#include <unistd.h>
#include "internal.h"

static void
expect_load_error (const char *name, TrLoaderErrorCode code, const char *text)
{
  g_autofree char *path = tt_test_plugin (name);
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) p = tr_plugin_load (path, NULL, &error);
  g_assert_null (p);
  g_assert_error (error, TR_LOADER_ERROR, (gint) code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, text));
}

static void
test_wrong_abi (void)
{
  expect_load_error ("wrong-abi", TR_LOADER_ERROR_ABI, "built for ABI 2.0, this taskrun speaks 1.x");
}

/* A plugin built for 1.0 loads, and nothing past its 1.0 descriptor is read: the fields
 * later minors add (the reserved pointers) are NULL whatever bytes follow it.  It runs. */
static void
test_old_minor_not_read_past (void)
{
  g_autofree char *path = tt_test_plugin ("abi-one-zero");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) p = tr_plugin_load (path, NULL, &error);
  g_assert_no_error (error);
  const TrPluginDesc *d = tr_plugin_get_desc (p);
  g_assert_cmpuint (d->abi_minor, ==, 0);
  g_assert_nonnull (d->run);
  for (guint i = 0; i < TR_PLUGIN_PADDING; i++)
    g_assert_null (d->_tr_reserved[i]);
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job_text = g_strdup_printf ("[taskrun]\nplugin = %s\nworkers = 1\n", path);
  g_autofree char *job = tt_write (dir, "job.ini", job_text);
  const char *const args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "3 tasks: 3 succeeded"));
  tt_rmtree (dir);
}

static void
test_no_descriptor (void)
{
  expect_load_error ("no-descriptor", TR_LOADER_ERROR_NO_DESCRIPTOR,
                     "is not a taskrun plugin: it exports no 'tr_plugin_descriptor'");
}

static void
test_not_elf (void)
{
  expect_load_error ("not-elf", TR_LOADER_ERROR_NOT_LOADABLE, "is not a loadable shared object");
}

static void
test_no_run_hook (void)
{
  expect_load_error ("no-run", TR_LOADER_ERROR_INVALID, "the descriptor has no run hook");
}

static void
test_not_found (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) p = tr_plugin_load ("does-not-exist", NULL, &error);
  g_assert_null (p);
  g_assert_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "plugin 'does-not-exist' not found"));
  g_assert_nonnull (strstr (error->message, "sleep-demo")); /* lists what is there */
}

static void
test_by_name_from_build_tree (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) p = tr_plugin_load ("sleep-demo", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (tr_plugin_get_desc (p)->name, ==, "sleep-demo");
  g_assert_true (g_str_has_suffix (tr_plugin_get_path (p), "/plugins/sleep-demo/sleep-demo.so"));
}

static void
test_plugin_path_env (void)
{
  const char *env[] = { "TASKRUN_PLUGIN_PATH=" TT_TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "--describe", "testkit", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, env, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "testkit 1.0: commands for the tests"));
}

/* A relative folder on the plugin path gives an absolute path: workers load the plugin
 * by it, and the program may have changed directory by then. */
static void
test_plugin_path_relative (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *parent = g_path_get_dirname (TT_TEST_PLUGIN_DIR);
  g_autofree char *base = g_path_get_basename (TT_TEST_PLUGIN_DIR);
  g_assert_cmpint (chdir (parent), ==, 0);
  g_setenv ("TASKRUN_PLUGIN_PATH", base, TRUE);
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load ("testkit", NULL, &error);
  g_unsetenv ("TASKRUN_PLUGIN_PATH");
  g_assert_cmpint (chdir (cwd), ==, 0);
  g_assert_no_error (error);
  g_assert_cmpstr (tr_plugin_get_path (plugin), ==, TT_TEST_PLUGIN_DIR "/testkit.so");
}

/* The binary refuses each broken plugin named in a job file: exit 2, the reason, no run. */
static void
test_cli_refuses (gconstpointer data)
{
  const char *const *c = data; /* plugin file, expected text */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *plugin = tt_test_plugin (c[0]);
  g_autofree char *content = g_strdup_printf ("[taskrun]\nworkers = 1\nplugin = %s\n", plugin);
  g_autofree char *job = tt_write (dir, "job.ini", content);
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 2);
  g_assert_cmpstr (out, ==, "");
  g_autofree char *at = g_strdup_printf ("%s:3: [taskrun] plugin: ", job);
  g_assert_nonnull (strstr (err, at));
  g_assert_nonnull (strstr (err, c[1]));
  tt_rmtree (dir);
}

static const char *const refuse_wrong_abi[] = { "wrong-abi", "built for ABI 2.0" };
static const char *const refuse_no_desc[] = { "no-descriptor", "is not a taskrun plugin" };
static const char *const refuse_not_elf[] = { "not-elf", "not a loadable shared object" };
static const char *const refuse_pool_only[] = {
  "power", "has no next_task hook: it makes no tasks of its own, so it runs only in a program"
};

/* A plugin without next_task is for programs that submit its tasks: it loads. */
static void
test_pool_only_loads (void)
{
  g_autofree char *path = tt_test_plugin ("power");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (tr_plugin_get_desc (plugin)->next_task);
  g_assert_nonnull (tr_plugin_get_desc (plugin)->run);
}

static void
test_list_plugins_with_broken (void)
{
  const char *env[] = { "TASKRUN_PLUGIN_PATH=" TT_TEST_PLUGIN_DIR, NULL };
  const char *args[] = { "--list-plugins", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, env, &out, &err), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "testkit"));
  g_assert_nonnull (strstr (out, "sleep-demo"));
  g_assert_cmpuint (tt_count_lines (out, "?              -        broken: "), ==, 5);
  g_assert_nonnull (strstr (out, "built for ABI 2.0"));
  /* a constructor that aborts takes down the child that loads it, not the list */
  g_assert_nonnull (strstr (out, "broken: plugin " TT_TEST_PLUGIN_DIR "/aborts.so: loading it "
                                 "ended the process (killed by signal 6 (SIGABRT)"));
}

static void
test_describe_unknown (void)
{
  const char *args[] = { "--describe", "nope", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "plugin 'nope' not found"));
}

static void
test_describe_sleep_demo (void)
{
  const char *args[] = { "--describe", "sleep-demo", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "\ntasks: int, default 10"));
  g_assert_nonnull (strstr (out, "\nseconds: double, default 0.5"));
  g_assert_nonnull (strstr (out, "\njitter: double, default 0"));
}

/* Every option of every shipped plugin is described with its type and default. */
static void
test_describe_shipped (void)
{
  static const char *const expect[][8] = {
    { "compute", "\nop: enum, default primes, one of: primes | sum-squares.",
      "\nstart: int, default 0, from 0 to", "\nend: int, required, from 0 to",
      "\nchunk: int, default 100000, from 1 to", NULL },
    { "copy", "\nsource: path, required.", "\ndestination: path, required.",
      "\nif_exists: enum, default update, one of: update | overwrite | skip | error.",
      "\npreserve: string, default all.", "\nchunk_size: size, default 64M, from 4096 to",
      "\nfsync: bool, default no.", "\nverify: bool, default no." },
    { "sleep-demo", "\ntasks: int, default 10", "\nseconds: double, default 0.5",
      "\njitter: double, default 0", NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (expect); i++) {
    const char *args[] = { "--describe", expect[i][0], NULL };
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
    for (int j = 1; j < 8 && expect[i][j]; j++)
      if (!strstr (out, expect[i][j]))
        g_error ("--describe %s lacks \"%s\":\n%s", expect[i][0], expect[i][j], out);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/loader/wrong-abi", test_wrong_abi);
  g_test_add_func ("/loader/old-minor-not-read-past", test_old_minor_not_read_past);
  g_test_add_func ("/loader/no-descriptor", test_no_descriptor);
  g_test_add_func ("/loader/not-elf", test_not_elf);
  g_test_add_func ("/loader/no-run-hook", test_no_run_hook);
  g_test_add_func ("/loader/not-found", test_not_found);
  g_test_add_func ("/loader/by-name-from-build-tree", test_by_name_from_build_tree);
  g_test_add_func ("/loader/plugin-path-env", test_plugin_path_env);
  g_test_add_func ("/loader/plugin-path-relative", test_plugin_path_relative);
  g_test_add_data_func ("/loader/cli/wrong-abi", refuse_wrong_abi, test_cli_refuses);
  g_test_add_data_func ("/loader/cli/no-descriptor", refuse_no_desc, test_cli_refuses);
  g_test_add_data_func ("/loader/cli/not-elf", refuse_not_elf, test_cli_refuses);
  g_test_add_func ("/loader/pool-only-loads", test_pool_only_loads);
  g_test_add_data_func ("/loader/cli/pool-only", refuse_pool_only, test_cli_refuses);
  g_test_add_func ("/loader/list-plugins-with-broken", test_list_plugins_with_broken);
  g_test_add_func ("/loader/describe-unknown", test_describe_unknown);
  g_test_add_func ("/loader/describe-sleep-demo", test_describe_sleep_demo);
  g_test_add_func ("/loader/describe-shipped", test_describe_shipped);
  return g_test_run ();
}
