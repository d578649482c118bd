/* testutil.h — helpers shared by the test programs: running the built taskrun binary,
 * temporary folders and files, and the paths of the test plugins. */
#ifndef TASKRUN_TESTUTIL_H
#define TASKRUN_TESTUTIL_H

#include <glib.h>

/* Runs build/core/taskrun with `args` (NULL-terminated) in `cwd` (NULL: the source root)
 * with extra environment entries `env` ("NAME=value", may be NULL).  Returns the exit
 * status (128 + signal when killed); *out and *err receive stdout and stderr. */
int tt_run_taskrun (const char *const *args, const char *cwd, const char *const *env, char **out,
                    char **err);
/* A new temporary folder, removed with its contents by tt_rmtree. */
char *tt_tmpdir (void);
void tt_rmtree (const char *dir);
/* Writes `content` to dir/name and returns the path. */
char *tt_write (const char *dir, const char *name, const char *content);
/* build/tests/plugins/NAME.so */
char *tt_test_plugin (const char *name);
const char *tt_source_root (void);
/* Lines of `text` that start with `prefix`. */
guint tt_count_lines (const char *text, const char *prefix);

#endif
