/* testutil.h — helpers shared by the test programs: running the built taskrun binary,
 * temporary folders and files, and the paths of the test plugins. */
#ifndef TASKRUN_TESTUTIL_H
#define TASKRUN_TESTUTIL_H

#include <glib.h>

/* Whether this build has the MPI backend and mpirun is on PATH. */
gboolean tt_have_mpi (void);
/* From now on the helpers below start taskrun as `mpirun --oversubscribe -n RANKS
 * taskrun ...` (0: directly).  The test environment allows mpirun to run as root. */
void tt_use_mpirun (int ranks);

/* Runs build/core/taskrun with `args` (NULL-terminated) in `cwd` (NULL: the source root)
 * with extra environment entries `env` ("NAME=value", may be NULL).  Returns the exit
 * status (128 + signal when killed); *out and *err receive stdout and stderr. */
int tt_run_taskrun (const char *const *args, const char *cwd, const char *const *env, char **out,
                    char **err);
/* Starts taskrun in the background, its stdout and stderr going to files in `dir`
 * (out.txt, err.txt).  Returns its pid. */
GPid tt_spawn_taskrun (const char *const *args, const char *dir, const char *const *env);
/* The same with its stdout and stderr on these descriptors (the caller's to close). */
GPid tt_spawn_taskrun_fds (const char *const *args, const char *dir, const char *const *env,
                           int out_fd, int err_fd);
struct rusage;
/* Waits for `pid` up to `seconds`; kills it and fails the test if it does not end.
 * Returns its wait status, and its resource use in *ru unless ru is NULL. */
int tt_wait_pid (GPid pid, double seconds, struct rusage *ru);
/* The same, then returns the exit status (128 + signal when killed) and reads
 * dir/out.txt, dir/err.txt. */
int tt_wait_taskrun (GPid pid, double seconds, const char *dir, char **out, char **err);
/* The pids of the processes `pid` has forked (from any of its threads). */
GArray *tt_children (GPid pid);
/* Waits up to `seconds` for every pid in `pids` to be gone; returns how many remain. */
guint tt_wait_gone (GArray *pids, double seconds);
/* Polls until `path` holds at least `lines` lines, up to `seconds`; FALSE on timeout. */
gboolean tt_wait_lines (const char *path, guint lines, double seconds);

/* A new temporary folder, removed with its contents by tt_rmtree. */
char *tt_tmpdir (void);
void tt_rmtree (const char *dir);
/* Writes `content` to dir/name and returns the path. */
char *tt_write (const char *dir, const char *name, const char *content);
/* Writes dir/job.ini for the testkit plugin with the given extra lines for [taskrun]
 * and [testkit] (each "key = value\n"...), and returns its path. */
char *tt_testkit_job (const char *dir, const char *taskrun_keys, const char *testkit_keys);
/* Writes a testkit job (as tt_testkit_job) into a temporary folder, runs taskrun on it
 * there with `extra` arguments (may be NULL), removes the folder, and returns the exit
 * status; *out and *err receive stdout and stderr. */
int tt_run_testkit (const char *taskrun_keys, const char *testkit_keys, const char *const *extra,
                    char **out, char **err);
/* build/tests/plugins/NAME.so */
char *tt_test_plugin (const char *name);
const char *tt_source_root (void);
/* `v` in decimal, newly allocated (the exact sums the compute tests check). */
char *tt_u128_text (unsigned __int128 v);
/* Lines of `text` that start with `prefix`. */
guint tt_count_lines (const char *text, const char *prefix);

#endif
