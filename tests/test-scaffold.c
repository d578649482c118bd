/* test-scaffold.c — the plugin that tools/new-plugin writes is the model plugin authors
 * copy: it must build with warnings as errors, run its example job on its own sample
 * folder (never its build folder), and report every entry it cannot read by name, with
 * exit status 1, rather than skip it.  Built here with cc against the source tree's
 * header, so no installed taskrun is needed (.ci/run builds it against an install). */
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
sh (const char *cwd, const char *script)
{
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (cwd, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &error));
  g_assert_no_error (error);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    g_error ("%s failed:\n%s%s", script, out, err);
}

/* A folder nested deeper than PATH_MAX: no process, root included, can open it by path. */
static void
make_too_deep (const char *base)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_assert_cmpint (chdir (base), ==, 0);
  g_autofree char *name = g_strnfill (200, 'd');
  for (int i = 0; i < 25; i++) {
    g_assert_cmpint (mkdir (name, 0755), ==, 0);
    g_assert_cmpint (chdir (name), ==, 0);
  }
  g_assert_true (g_file_set_contents ("deep.txt", "words here\n", -1, NULL));
  g_assert_cmpint (chdir (cwd), ==, 0);
}

static void
test_word_count (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *proj = g_build_filename (dir, "proj", NULL);
  g_autofree char *make = g_strdup_printf ("sh '%s/tools/new-plugin' word-count '%s' >/dev/null",
                                           tt_source_root (), proj);
  sh (dir, make);
  g_autofree char *build = g_strdup_printf (
      "cc -shared -fPIC -std=gnu11 -Wall -Wextra -Werror $(pkg-config --cflags glib-2.0) "
      "-I '%s/core' -o wc.so word-count.c", tt_source_root ());
  sh (proj, build);

  /* the example job counts its sample folder: two files, 18 words */
  const char *args[] = { "-c", "word-count.ini", "-s", "taskrun.plugin=./wc.so", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, proj, NULL, &out, &err), ==, 0);
  g_test_message ("%s%s", out, err);
  g_assert_cmpuint (tt_count_lines (out, ""), ==, 3 + 1);
  g_assert_nonnull (strstr (out, "/sample/plugin.txt\n"));
  g_assert_nonnull (strstr (out, "      18 total\n"));

  /* an entry it cannot look at is named, once, and the job exits 1 */
  g_autofree char *sample = g_build_filename (proj, "sample", NULL);
  make_too_deep (sample);
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (args, proj, NULL, &out2, &err2), ==, 1);
  g_test_message ("%s", err2);
  g_assert_cmpuint (tt_count_lines (err2, "taskrun: word-count: cannot look at "), ==, 1);
  g_assert_nonnull (strstr (err2, "File name too long\n"));
  g_assert_nonnull (strstr (err2, "1 folders or entries could not be read"));
  tt_rmtree (dir);
}

/* --program: a program on libtaskrun with its task as its own function, built against the
 * source tree's headers and the built libtaskrun.so.  It counts in command-line order,
 * and names a file it cannot read, with exit status 1. */
static void
test_program (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *proj = g_build_filename (dir, "proj", NULL);
  g_autofree char *make = g_strdup_printf (
      "sh '%s/tools/new-plugin' --program word-count '%s' >/dev/null", tt_source_root (), proj);
  sh (dir, make);
  g_autofree char *build = g_strdup_printf (
      "cc -std=gnu11 -Wall -Wextra -Werror " TT_SANITIZE_CFLAGS " -I '%s/core' -o wc word-count.c "
      "$(pkg-config --cflags --libs glib-2.0) -L '%s/core' -ltaskrun -Wl,-rpath,'%s/core'",
      tt_source_root (), TT_BUILD_DIR, TT_BUILD_DIR);
  sh (proj, build);
  const char *argv[] = { "./wc", "-j", "2", "sample/workers.txt", "missing.txt", "sample/pool.txt",
                         NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (proj, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &status, &error));
  g_assert_no_error (error);
  g_test_message ("%s%s", out, err);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
  g_assert_cmpstr (out, ==, "       7 sample/workers.txt\n      10 sample/pool.txt\n      17 total\n");
  g_assert_cmpstr (err, ==, "word-count: missing.txt: No such file or directory\n");
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scaffold/word-count", test_word_count);
  g_test_add_func ("/scaffold/program", test_program);
  return g_test_run ();
}
