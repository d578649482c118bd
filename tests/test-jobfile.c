/* test-jobfile.c — every bad job file exits 2 before anything runs, and its message names
 * the file, the line and the key.  Runs the built taskrun binary on job files written
 * into a temporary folder; a second part checks the loader functions directly on
 * random bytes (they must fail cleanly, never crash). */
#include "testutil.h"
#include "runner.h"
#include "jobspec.h"

#include <glib/gstdio.h>

typedef struct {
  const char *name;
  const char *content;   /* NULL: no file is written */
  const char *extra[4];  /* more arguments after -c FILE */
  const char *expect[4]; /* substrings of stderr; "@" is replaced by the job file's path */
} BadCase;

#define SLEEP_HEAD "[taskrun]\nplugin = sleep-demo\n"

static const BadCase bad_cases[] = {
  { "missing-file", NULL, { NULL }, { "@: cannot read the job file", NULL } },
  { "binary", "[taskrun]\nplugin = sleep-demo\n\x01\x02\x00garbage\xff\n", { NULL },
    { "@:3: not a text file", NULL } },
  { "invalid-utf8", "[taskrun]\nplugin = sleep\xc3\x28-demo\n", { NULL },
    { "@:2: not a text file", NULL } },
  { "unknown-key-near", SLEEP_HEAD "workres = 2\n", { NULL },
    { "@:3: [taskrun] unknown key 'workres' (did you mean 'workers'?)", NULL } },
  { "unknown-key-far", SLEEP_HEAD "colour = blue\n", { NULL },
    { "@:3: [taskrun] unknown key 'colour' (valid keys: plugin, workers", NULL } },
  { "unknown-plugin-key", SLEEP_HEAD "[sleep-demo]\ntassk = 3\n", { NULL },
    { "@:4: [sleep-demo] unknown key 'tassk' (did you mean 'tasks'?)", NULL } },
  { "int-type", SLEEP_HEAD "workers = many\n", { NULL },
    { "@:3: [taskrun] int 'workers': 'many' is not a whole number", NULL } },
  { "int-range", SLEEP_HEAD "workers = 0\n", { NULL },
    { "@:3: [taskrun] int 'workers': 0 is out of range (1 to 4096)", NULL } },
  { "double-type", SLEEP_HEAD "[sleep-demo]\nseconds = fast\n", { NULL },
    { "@:4: [sleep-demo] double 'seconds': 'fast' is not a number", NULL } },
  { "double-negative", SLEEP_HEAD "[sleep-demo]\nseconds = -1\n", { NULL },
    { "@:4: [sleep-demo] double 'seconds': -1 is out of range", NULL } },
  { "bool-type", SLEEP_HEAD "ordered = perhaps\n", { NULL },
    { "@:3: [taskrun] bool 'ordered': 'perhaps' is not yes or no", NULL } },
  { "enum-value", SLEEP_HEAD "on_failure = maybe\n", { NULL },
    { "@:3: [taskrun] enum 'on_failure': 'maybe' is not one of: continue, stop", NULL } },
  { "batch-value", SLEEP_HEAD "batch = lots\n", { NULL },
    { "@:3: [taskrun] string 'batch': 'lots' is neither auto nor a number", NULL } },
  { "unknown-section", SLEEP_HEAD "[sleepdemo]\ntasks = 1\n", { NULL },
    { "@:3: unknown section [sleepdemo] (did you mean [sleep-demo]?)", NULL } },
  { "duplicate-key", SLEEP_HEAD "workers = 2\nworkers = 3\n", { NULL },
    { "@:4: [taskrun] duplicate key 'workers' (first set on line 3)", NULL } },
  { "duplicate-section", SLEEP_HEAD "[sleep-demo]\ntasks = 1\n[sleep-demo]\nseconds = 1\n",
    { NULL }, { "@:5: section [sleep-demo] appears twice (first on line 3)", NULL } },
  { "missing-plugin", "[taskrun]\nworkers = 2\n", { NULL },
    { "@:1: [taskrun] missing required key 'plugin'", NULL } },
  { "empty-file", "", { NULL }, { "@: no [taskrun] section: missing required key 'plugin'", NULL } },
  { "key-outside-section", "plugin = sleep-demo\n", { NULL },
    { "@:1: key 'plugin' is outside any section", NULL } },
  { "syntax", SLEEP_HEAD "this line has no equals sign\n", { NULL }, { "@:3: syntax error", NULL } },
  { "open-section", "[taskrun\nplugin = sleep-demo\n", { NULL }, { "@:1: syntax error", NULL } },
  { "plugin-not-found", "[taskrun]\nplugin = no-such-plugin\n", { NULL },
    { "@:2: [taskrun] plugin: plugin 'no-such-plugin' not found", "available: ", "sleep-demo",
      NULL } },
  { "plugin-path-missing", "[taskrun]\nplugin = ./nowhere/x.so\n", { NULL },
    { "@:2: [taskrun] plugin: plugin file ", "/nowhere/x.so does not exist", NULL } },
  { "timeout-negative", SLEEP_HEAD "task_timeout = -2.5\n", { NULL },
    { "@:3: [taskrun] double 'task_timeout': -2.5 is out of range", NULL } },
  { "retries-type", SLEEP_HEAD "retries = twice\n", { NULL },
    { "@:3: [taskrun] int 'retries': 'twice' is not a whole number", NULL } },
  /* backend = mpi outside mpirun: exit 2 naming the key, with or without MPI support */
  { "backend-mpi", SLEEP_HEAD "backend = mpi\n", { NULL },
    { "@:3: [taskrun] backend 'mpi': ", NULL } },
  /* blanks inside the brackets are not part of the name: the keys are checked */
  { "section-with-blanks", SLEEP_HEAD "[ sleep-demo ]\ntasks = 1\nbogus = 2\n", { NULL },
    { "@:5: [sleep-demo] unknown key 'bogus'", NULL } },
  { "section-without-name", SLEEP_HEAD "[  ]\ntasks = 1\n", { NULL },
    { "@:3: a section header without a name", NULL } },
  /* a name longer than inih keeps of a section still gets its keys checked */
  { "long-section-name",
    "[taskrun]\nplugin = " TT_TEST_PLUGIN_DIR "/long-name.so\n"
    "[a-plugin-whose-name-is-longer-than-what-inih-keeps-of-a-section]\ncount = 1\nbogus = 1\n",
    { NULL },
    { "@:5: [a-plugin-whose-name-is-longer-than-what-inih-keeps-of-a-section] unknown key "
      "'bogus'", NULL } },
  /* a byte order mark does not hide the first section from the duplicate check */
  { "bom-duplicate-section", "\xEF\xBB\xBF" SLEEP_HEAD "[taskrun]\nworkers = 1\n", { NULL },
    { "@:3: section [taskrun] appears twice (first on line 1)", NULL } },
  /* one grammar for -j and workers: decimal, 1 to 4096, the same words */
  { "workers-hex", SLEEP_HEAD "workers = 0x10\n", { NULL },
    { "@:3: [taskrun] int 'workers': '0x10' is not a whole number", NULL } },
  { "jobs-zero", SLEEP_HEAD, { "-j", "0", NULL },
    { "-j 0: [taskrun] int 'workers': 0 is out of range (1 to 4096)", NULL } },
  { "jobs-hex", SLEEP_HEAD, { "-j", "0x10", NULL },
    { "-j 0x10: [taskrun] int 'workers': '0x10' is not a whole number", NULL } },
  { "jobs-glued-hex", SLEEP_HEAD, { "-j0x10", NULL },
    { "-j 0x10: [taskrun] int 'workers': '0x10' is not a whole number", NULL } },
  { "jobs-too-many", SLEEP_HEAD, { "-j", "4097", NULL },
    { "-j 4097: [taskrun] int 'workers': 4097 is out of range (1 to 4096)", NULL } },
  { "set-syntax", SLEEP_HEAD, { "-s", "workers=2", NULL },
    { "-s workers=2: expected SECTION.KEY=VALUE", NULL } },
  { "set-unknown-section", SLEEP_HEAD, { "-s", "sleep_demo.tasks=2", NULL },
    { "-s sleep_demo.tasks=2: unknown section 'sleep_demo' (did you mean 'sleep-demo'?)", NULL } },
  { "set-bad-value", SLEEP_HEAD, { "-s", "sleep-demo.tasks=ten", NULL },
    { "-s sleep-demo.tasks=ten: [sleep-demo] int 'tasks': 'ten' is not a whole number", NULL } },
  { "set-unknown-key", SLEEP_HEAD, { "-s", "taskrun.worker=2", NULL },
    { "-s taskrun.worker=2: [taskrun] unknown key 'worker' (did you mean 'workers'?)", NULL } },
};

static void
test_bad_case (gconstpointer data)
{
  const BadCase *c = data;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "job.ini", NULL);
  if (c->content) {
    /* the content may hold NUL bytes: write it by its full literal length */
    gsize len = strlen (c->content);
    if (g_str_equal (c->name, "binary"))
      len = sizeof "[taskrun]\nplugin = sleep-demo\n\x01\x02\x00garbage\xff\n" - 1;
    g_assert_true (g_file_set_contents (path, c->content, len, NULL));
  }
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, "-c");
  g_ptr_array_add (args, path);
  for (int i = 0; c->extra[i]; i++)
    g_ptr_array_add (args, (gpointer) c->extra[i]);
  g_ptr_array_add (args, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun ((const char *const *) args->pdata, dir, NULL, &out, &err);
  g_test_message ("stderr: %s", err);
  g_assert_cmpint (status, ==, 2);
  g_assert_cmpstr (out, ==, ""); /* nothing ran */
  g_assert_true (g_str_has_prefix (err, "taskrun: "));
  for (int i = 0; c->expect[i]; i++) {
    g_auto (GStrv) parts = g_strsplit (c->expect[i], "@", -1);
    g_autofree char *want = g_strjoinv (path, parts);
    if (!strstr (err, want))
      g_error ("stderr lacks \"%s\":\n%s", want, err);
  }
  tt_rmtree (dir);
}

/* A value longer than inih's 200-byte line buffer, and indented keys, still work. */
static void
test_long_line_and_indent (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *testkit = tt_test_plugin ("testkit");
  GString *op = g_string_new ("echo:");
  for (int i = 0; i < 300; i++)
    g_string_append_c (op, 'a' + i % 26);
  g_autofree char *content = g_strdup_printf (
      "[taskrun]\n  plugin = %s   ; indented, with a comment\n    workers = 1\n[testkit]\n"
      "tasks = 2\nop = %s ; a long value\n",
      testkit, op->str);
  g_autofree char *path = tt_write (dir, "job.ini", content);
  const char *args[] = { "-c", path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, dir, NULL, &out, &err);
  g_assert_cmpint (status, ==, 0);
  g_autofree char *line1 = g_strdup_printf ("1 %s\n", op->str + 5);
  g_assert_nonnull (strstr (out, line1));
  g_string_free (op, TRUE);
  tt_rmtree (dir);
}

/* What inih would get wrong on its own is read right: a comment longer than its line
 * buffer, a section named longer than it keeps, blanks inside the brackets, a byte order
 * mark; and -j 010 is ten, as workers = 010 is. */
static void
test_edges_that_run (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *comment = g_strnfill (300, 'c');
  g_autofree char *content = g_strdup_printf (
      "\xEF\xBB\xBF[taskrun]\nplugin = " TT_TEST_PLUGIN_DIR "/long-name.so\n; %s\n"
      "workers = 1\n[ a-plugin-whose-name-is-longer-than-what-inih-keeps-of-a-section ]\n"
      "# %s\ncount = 3\n", comment, comment);
  g_autofree char *path = tt_write (dir, "job.ini", content);
  const char *args[] = { "-c", path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, dir, NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (err, "3 tasks: 3 succeeded"));
  const char *dry[] = { "-c", path, "-j", "010", "--dry-run", NULL };
  g_autofree char *dout = NULL, *derr = NULL;
  g_assert_cmpint (tt_run_taskrun (dry, dir, NULL, &dout, &derr), ==, 0);
  g_assert_nonnull (strstr (dout, "workers = 10\n"));
  tt_rmtree (dir);
}

/* Relative paths in a job file are relative to its folder; with -s, to the current one. */
static void
test_relative_paths (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *sub = g_build_filename (dir, "jobs", NULL);
  g_mkdir (sub, 0755);
  g_autofree char *testkit = tt_test_plugin ("testkit");
  g_autofree char *copy = g_build_filename (dir, "tk.so", NULL);
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (testkit, &data, &len, NULL));
  g_assert_true (g_file_set_contents (copy, data, len, NULL));
  g_autofree char *path =
      tt_write (sub, "job.ini", "[taskrun]\nplugin = ../tk.so\nworkers = 1\n[testkit]\ntasks = 1\n");
  const char *args[] = { "-c", "jobs/job.ini", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "1 1\n"));
  /* with -s the same relative path is taken from the current folder (dir), so it fails */
  const char *args2[] = { "-c", "jobs/job.ini", "-s", "taskrun.plugin=../tk.so", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (args2, dir, NULL, &out2, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "-s taskrun.plugin"));
  tt_rmtree (dir);
}

/* The loader functions never crash on arbitrary bytes. */
static void
test_random_bytes (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autofree char *path = g_build_filename (dir, "r.ini", NULL);
  static const char alphabet[] = "[]=;# \n\ttaskrunpluginworkers\x01\xff\xc3";
  for (int round = 0; round < 500; round++) {
    gsize len = g_rand_int_range (rand, 0, 600);
    g_autofree char *buf = g_malloc (len + 1);
    for (gsize i = 0; i < len; i++)
      buf[i] = round % 2 ? (char) g_rand_int_range (rand, 0, 256)
                         : alphabet[g_rand_int_range (rand, 0, sizeof alphabet - 1)];
    g_assert_true (g_file_set_contents (path, buf, len, NULL));
    g_autoptr (GError) error = NULL;
    TrJobFile *jf = tr_jobfile_load (path, &error);
    if (jf) {
      g_autoptr (TrConfig) core = tr_config_new (tr_runner_core_options (), "taskrun");
      g_autoptr (GError) e2 = NULL;
      if (!tr_jobfile_apply_section (jf, "taskrun", core, &e2))
        g_assert_nonnull (strstr (e2->message, path));
      tr_jobfile_free (jf);
    } else {
      g_assert_nonnull (strstr (error->message, path));
    }
  }
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
    g_autofree char *name = g_strdup_printf ("/jobfile/bad/%s", bad_cases[i].name);
    g_test_add_data_func (name, &bad_cases[i], test_bad_case);
  }
  g_test_add_func ("/jobfile/long-line-and-indent", test_long_line_and_indent);
  g_test_add_func ("/jobfile/relative-paths", test_relative_paths);
  g_test_add_func ("/jobfile/edges-that-run", test_edges_that_run);
  g_test_add_func ("/jobfile/random-bytes", test_random_bytes);
  return g_test_run ();
}
