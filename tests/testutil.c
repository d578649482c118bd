/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <string.h>
#include <sys/wait.h>

int
tt_run_taskrun (const char *const *args, const char *cwd, const char *const *env, char **out,
                char **err)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) TT_TASKRUN);
  for (int i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_auto (GStrv) envp = g_get_environ ();
  for (int i = 0; env && env[i]; i++) {
    const char *eq = strchr (env[i], '=');
    g_autofree char *name = g_strndup (env[i], eq - env[i]);
    envp = g_environ_setenv (envp, name, eq + 1, TRUE);
  }
  int status = 0;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_sync (cwd ? cwd : TT_SOURCE_ROOT, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL,
                     NULL, out, err, &status, &error))
    g_error ("cannot run taskrun: %s", error->message);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

char *
tt_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("taskrun-test-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

void
tt_rmtree (const char *dir)
{
  const char *argv[] = { "rm", "-rf", "--", dir, NULL };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

char *
tt_write (const char *dir, const char *name, const char *content)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, content, -1, &error);
  g_assert_no_error (error);
  return path;
}

char *
tt_test_plugin (const char *name)
{
  return g_strdup_printf ("%s/%s.so", TT_TEST_PLUGIN_DIR, name);
}

const char *
tt_source_root (void)
{
  return TT_SOURCE_ROOT;
}

guint
tt_count_lines (const char *text, const char *prefix)
{
  guint n = 0;
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  for (int i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix))
      n++;
  return n;
}
