/* bench-exec-spawn.c — the limit that tools/bench-exec measures the runners against: the
 * least a program can do to run a command once per input, two at a time, on this machine.
 *
 *     bench-exec-spawn JOBS INPUTS WORD...
 *
 * Reads INPUTS (one per line; `-` for stdin), and for each line starts WORD... with the
 * line as one more word at the end (or in place of every word that is exactly `{}`), by
 * posix_spawnp (glibc's is clone(CLONE_VM | CLONE_VFORK) + execve: the cheapest start
 * there is), with stdin /dev/null and stdout and stderr inherited, JOBS of them in flight
 * at once, each reaped by waitpid (-1) as it ends.  No pipes, no grouping of output, no
 * quoting, no shell: what no runner can beat.  tools/bench-exec compiles it at run time
 * with `cc -O2` and checks its output as it checks every contender's.
 *
 * Exit status: 0 when every command exited 0; 1 when one failed or could not start (each
 * said on stderr); 2 on a usage or input error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int failed;

static void
reap_one (void)
{
  int status;
  pid_t pid;
  while ((pid = waitpid (-1, &status, 0)) < 0 && errno == EINTR)
    ;
  if (pid < 0) {
    perror ("bench-exec-spawn: waitpid");
    exit (2);
  }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    fprintf (stderr, "bench-exec-spawn: pid %ld: %s %d\n", (long) pid,
             WIFEXITED (status) ? "exit status" : "killed by signal",
             WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
    failed = 1;
  }
}

int
main (int argc, char **argv)
{
  if (argc < 4) {
    fprintf (stderr, "usage: bench-exec-spawn JOBS INPUTS WORD...\n");
    return 2;
  }
  int jobs = atoi (argv[1]);
  if (jobs < 1) {
    fprintf (stderr, "bench-exec-spawn: JOBS must be at least 1\n");
    return 2;
  }
  FILE *in = strcmp (argv[2], "-") == 0 ? stdin : fopen (argv[2], "re");
  if (!in) {
    perror (argv[2]);
    return 2;
  }
  int nwords = argc - 3;
  char **words = argv + 3;
  int has_braces = 0;
  for (int i = 0; i < nwords; i++)
    has_braces |= strcmp (words[i], "{}") == 0;
  char **child_argv = calloc ((size_t) nwords + 2, sizeof *child_argv);
  if (!child_argv)
    return 2;

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);

  char *line = NULL;
  size_t room = 0;
  ssize_t len;
  int running = 0;
  while ((len = getline (&line, &room, in)) >= 0) {
    if (len > 0 && line[len - 1] == '\n')
      line[len - 1] = '\0';
    int n = 0;
    for (int i = 0; i < nwords; i++)
      child_argv[n++] = has_braces && strcmp (words[i], "{}") == 0 ? line : words[i];
    if (!has_braces)
      child_argv[n++] = line;
    child_argv[n] = NULL;
    if (running == jobs) {
      reap_one ();
      running--;
    }
    pid_t pid;
    int rc = posix_spawnp (&pid, child_argv[0], &actions, NULL, child_argv, environ);
    if (rc != 0) {
      fprintf (stderr, "bench-exec-spawn: cannot run '%s': %s\n", child_argv[0], strerror (rc));
      failed = 1;
      continue;
    }
    running++;
  }
  if (ferror (in)) {
    perror (argv[2]);
    return 2;
  }
  while (running-- > 0)
    reap_one ();
  posix_spawn_file_actions_destroy (&actions);
  free (line);
  free (child_argv);
  return failed;
}
