/* main.c — the taskrun command line.
 *
 * Owns: option parsing (GOptionContext), --version, --list-plugins, --describe, and the
 * hidden modes taskrun execs itself in: a worker (see link-local.c), and loading one
 * plugin for --list-plugins (see loader.c).  Everything about running a job is in
 * runner.c.
 */
#include "config.h"
#include "mpi-backend.h"
#include "runner.h"
#include "wire.h"

#include <locale.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *opt_config;
static char *opt_jobs;
static char **opt_set;
static gboolean opt_dry_run;
static char *opt_progress;
static char *opt_joblog;
static char *opt_trace;
static char *opt_results;
static char *opt_report;
static gboolean opt_resume;
static gboolean opt_quiet;
static gboolean opt_verbose;
static gboolean opt_version;
static gboolean opt_list_plugins;
static char *opt_describe;

static char *opt_exec;

static const GOptionEntry entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "The job file to run", "JOB.ini" },
  { "exec", 'e', 0, G_OPTION_ARG_STRING, &opt_exec,
    "Run COMMAND once per input, no job file: inputs from stdin, or the words after :::, or the lines of the file after ::::",
    "COMMAND" },
  /* a string: -j is read by the same rule as workers = (decimal, 1 to 4096, the same
   * message), not by GOption's strtol, which takes 0 for "default", 010 as octal and 0x10 */
  { "jobs", 'j', 0, G_OPTION_ARG_STRING, &opt_jobs, "Pool size, 1 to 4096 (overrides workers =)",
    "N" },
  { "set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_set,
    "Override a job file key; paths are relative to the current directory", "SECTION.KEY=VALUE" },
  { "dry-run", 0, 0, G_OPTION_ARG_NONE, &opt_dry_run,
    "Check everything, print the resolved configuration and the first tasks, run nothing", NULL },
  { "progress", 0, 0, G_OPTION_ARG_STRING, &opt_progress,
    "Progress line on stderr: auto (when a terminal), always, never", "auto|always|never" },
  { "joblog", 0, 0, G_OPTION_ARG_FILENAME, &opt_joblog, "Write a job log to FILE", "FILE" },
  { "trace", 0, 0, G_OPTION_ARG_FILENAME, &opt_trace,
    "Write a Chrome trace of the run to FILE (open it in Perfetto)", "FILE" },
  { "results", 0, 0, G_OPTION_ARG_FILENAME, &opt_results,
    "Write one JSON line per finished task to FILE", "FILE.jsonl" },
  { "report", 0, 0, G_OPTION_ARG_FILENAME, &opt_report,
    "Write a web page of the run to FILE (opens from the file, in any browser)", "FILE.html" },
  { "resume", 0, 0, G_OPTION_ARG_NONE, &opt_resume,
    "Skip the tasks that already succeeded in the job log", NULL },
  { "resume-failed", 0, 0, G_OPTION_ARG_NONE, &opt_resume,
    "The same as --resume (GNU parallel's name: failed tasks run again)", NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "No summary", NULL },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "One line per task on stderr", NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
  { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &opt_list_plugins,
    "List the plugins on the plugin path", NULL },
  { "describe", 0, 0, G_OPTION_ARG_STRING, &opt_describe,
    "Describe a plugin and its options", "PLUGIN" },
  { NULL },
};

static int
usage_error (GOptionContext *ctx, const char *message)
{
  g_printerr ("taskrun: %s\nTry 'taskrun --help' for more information.\n", message);
  g_option_context_free (ctx);
  return TR_EXIT_CANNOT_START;
}

static int run_command_line (int argc, char **argv);

static void
close_stdout_at_exit (void)
{
  if (tr_stdout_close (TR_EXIT_OK) != TR_EXIT_OK)
    _exit (TR_EXIT_FAILED);
}

static void
print_out (const char *text)
{
  tr_stdout_write (text, strlen (text));
}

/* The parent holds a descriptor for each result whose output is in a file, and an
 * ordered job may hold many at once: its soft limit goes up to the hard one (as systemd
 * advises a program that needs more).  Its workers put the old one back, so that the
 * commands they run see the limit the user set (some use select()). */
static void
raise_nofile (void)
{
  struct rlimit lim;
  if (getrlimit (RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max)
    return;
  g_autofree char *started = g_strdup_printf ("%llu", (unsigned long long) lim.rlim_cur);
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &lim) == 0)
    g_setenv (TR_NOFILE_ENV, started, TRUE);
}

/* Whether the command line only asks about taskrun (--version, --help, --list-plugins,
 * --describe) and runs no job: then each process a launcher started answers for its own
 * host (srun -N 4 taskrun --version shows whether every node has the same one), with no
 * MPI job to form.  Read with the option table, so that a value (-e --version) is not
 * taken for an option; the words after -- or ::: are a job's inputs. */
static gboolean
asks_only_about_taskrun (int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--") == 0 || strncmp (a, ":::", 3) == 0)
      return FALSE;
    if (g_str_has_prefix (a, "--help") || strcmp (a, "-h") == 0 || strcmp (a, "-?") == 0)
      return TRUE;
    for (const GOptionEntry *e = entries; e->long_name; e++) {
      gsize n = strlen (e->long_name);
      gboolean is_long = a[0] == '-' && a[1] == '-' && strncmp (a + 2, e->long_name, n) == 0 &&
                         (a[2 + n] == '\0' || a[2 + n] == '=');
      gboolean is_short = e->short_name && a[0] == '-' && a[1] == e->short_name && a[2] == '\0';
      if (!is_long && !is_short)
        continue;
      if (e->arg_data == &opt_version || e->arg_data == &opt_list_plugins ||
          e->arg_data == &opt_describe)
        return TRUE;
      if (e->arg != G_OPTION_ARG_NONE && !strchr (a, '='))
        i++; /* its value is the next word */
      break;
    }
  }
  return FALSE;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], TR_WORKER_ARG) == 0)
    return tr_worker_main (TR_WORKER_LINK_FD, (pid_t) atol (argv[2]));
  tr_std_fds_open ();
  raise_nofile ();
  if (argc == 3 && strcmp (argv[1], TR_INSPECT_ARG) == 0)
    return tr_plugin_inspect_main (argv[2]);
  setlocale (LC_ALL, "");
  /* Result lines appear as tasks finish, also through a pipe (as GNU parallel's do). */
  setvbuf (stdout, NULL, _IOLBF, 0);
  /* GOption prints --help with g_print and calls exit(): its text takes the same checked
   * path as the rest, and stdout is closed (and checked) at that exit too */
  g_set_print_handler (print_out);
  atexit (close_stdout_at_exit);
  /* stdout belongs to results: every log message (G_MESSAGES_DEBUG=taskrun) goes to stderr.
   * (Before any thread starts, as GLib asks.) */
  g_log_writer_default_set_use_stderr (TRUE);
  /* Started by mpirun or srun as several ranks: rank 0 goes on to run the command line,
   * every other rank serves it as a host for one worker (see mpi-backend.h). */
  int mpi_rank = -1, mpi_size = 0;
  gboolean launched = tr_mpi_launched (&mpi_rank, &mpi_size) && !asks_only_about_taskrun (argc, argv);
  const char *srun_plugin = launched && mpi_size != 1 ? tr_mpi_srun_cannot_join () : NULL;
  if (srun_plugin) {
    if (mpi_rank <= 0) {
      if (strcmp (srun_plugin, "none") == 0)
        g_printerr ("taskrun: srun started %d tasks without an MPI plugin (srun --mpi=none), "
                    "so they cannot form one job: run srun --mpi=pmix (or set MpiDefault=pmix "
                    "in slurm.conf)\n", mpi_size);
      else
        g_printerr ("taskrun: srun started %d tasks with --mpi=%s, which this taskrun's Open "
                    "MPI cannot join into one job: run srun --mpi=pmix (or set "
                    "MpiDefault=pmix in slurm.conf)\n", mpi_size, srun_plugin);
    }
    return TR_EXIT_CANNOT_START;
  }
  const TrMpiSession *mpi = NULL;
  if (launched && mpi_size != 1) {
    g_autoptr (GError) mpi_error = NULL;
    mpi = tr_mpi_start (&mpi_error);
    if (!mpi && mpi_error) {
      if (mpi_rank <= 0)
        g_printerr ("taskrun: started as %d MPI ranks, but %s\n", mpi_size, mpi_error->message);
      return TR_EXIT_CANNOT_START;
    }
  }
  if (launched)
    tr_mpi_hide_launch ();
  if (mpi && mpi->rank > 0)
    return mpi->module->agent_main ();
  return tr_mpi_finish (tr_stdout_close (run_command_line (argc, argv)));
}

static int
run_command_line (int argc, char **argv)
{
  gint64 started_us = g_get_monotonic_time (); /* the summary's "in all" */

  /* GOption does not take a value glued to a short option; users of make and parallel
   * type -j2, so split "-jN" into "-j" "N". */
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  for (int i = 0; i < argc; i++) {
    if (i > 0 && g_str_has_prefix (argv[i], "-j") && argv[i][2] && g_ascii_isdigit (argv[i][2])) {
      g_ptr_array_add (args, "-j");
      g_ptr_array_add (args, argv[i] + 2);
    } else {
      g_ptr_array_add (args, argv[i]);
    }
  }
  /* GNU parallel's ::: and :::: end the options: what follows is -e's inputs, whatever
   * they look like (a leading - too) */
  g_autoptr (GPtrArray) inputs = g_ptr_array_new ();
  for (guint i = 1; i < args->len; i++)
    if (strcmp (g_ptr_array_index (args, i), ":::") == 0 ||
        strcmp (g_ptr_array_index (args, i), "::::") == 0) {
      for (guint k = i; k < args->len; k++)
        g_ptr_array_add (inputs, g_ptr_array_index (args, k));
      g_ptr_array_set_size (args, i);
      break;
    }
  g_ptr_array_add (args, NULL);
  argc = (int) args->len - 1;
  argv = (char **) args->pdata;
  GOptionContext *ctx = g_option_context_new ("- run a job file's tasks on a pool of worker processes");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (
      ctx,
      "Usage: taskrun -c JOB.ini [-j N] [-s SECTION.KEY=VALUE]... [--dry-run]\n"
      "       taskrun -e COMMAND [-j N] [-s exec.KEY=VALUE]... [::: INPUT... | :::: FILE]\n"
      "       taskrun --list-plugins | --describe PLUGIN | --version\n\n"
      "Exit status: 0 every task succeeded; 1 one or more tasks failed, or standard\n"
      "output could not be written; 2 the job could not start (usage, job file, plugin);\n"
      "130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (once: running tasks finish).\n\n"
      "Plugins are searched in TASKRUN_PLUGIN_PATH (folders separated by ':'), then in\n"
      TR_PLUGINDIR " (or beside an uninstalled build).\n");
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return usage_error (ctx, error->message);
  /* -e's inputs: ::: and words, or :::: and a file (GNU parallel's), or none (stdin) */
  g_autofree char *exec_inputs = NULL;
  if (opt_exec && opt_config)
    return usage_error (ctx, "-c and -e: give a job file or a command, not both");
  if (inputs->len && !opt_exec)
    return usage_error (ctx, "::: and :::: give the inputs of -e COMMAND");
  if (opt_exec && argc > 1)
    return usage_error (ctx, "after -e COMMAND: ::: and the inputs, or :::: and a file of them");
  if (inputs->len) {
    const char *mark = g_ptr_array_index (inputs, 0);
    for (guint i = 1; i < inputs->len; i++) {
      const char *word = g_ptr_array_index (inputs, i);
      if (strcmp (word, ":::") == 0 || strcmp (word, "::::") == 0) {
        g_autofree char *msg = g_strdup_printf (
            "a second '%s' after -e COMMAND: it takes one list of inputs (GNU parallel's combinations of several "
            "are not supported; put \"%s\" in a file given with :::: to run it as an input)",
            word, word);
        return usage_error (ctx, msg);
      }
    }
    if (strcmp (mark, ":::") == 0) {
      g_autoptr (GString) words = g_string_new ("exec.args=");
      for (guint i = 1; i < inputs->len; i++) {
        g_autofree char *q = g_shell_quote (g_ptr_array_index (inputs, i));
        g_string_append_printf (words, "%s%s", i > 1 ? " " : "", q);
      }
      exec_inputs = g_string_free (g_steal_pointer (&words), FALSE);
    } else if (inputs->len == 2) {
      exec_inputs = g_strconcat ("exec.input=", (const char *) g_ptr_array_index (inputs, 1), NULL);
    } else {
      return usage_error (ctx, ":::: takes one file of inputs");
    }
  }
  if (argc > 1)
    return usage_error (ctx, "unexpected argument (the job file goes after -c)");

  int status = TR_EXIT_OK;
  if (opt_version) {
    g_autofree char *version = g_strdup_printf ("taskrun %s (plugin ABI %d.%d)\n", TR_VERSION,
                                                TR_ABI_MAJOR, TR_ABI_MINOR);
    print_out (version);
  } else if (opt_list_plugins) {
    g_autoptr (GString) out = g_string_new (NULL);
    tr_plugin_list (out);
    print_out (out->len ? out->str : "no plugins found on the plugin path\n");
  } else if (opt_describe) {
    g_autoptr (TrPlugin) plugin = tr_plugin_load (opt_describe, NULL, &error);
    if (!plugin) {
      g_printerr ("taskrun: %s\n", error->message);
      status = TR_EXIT_CANNOT_START;
    } else {
      g_autoptr (GString) out = g_string_new (NULL);
      tr_plugin_describe (tr_plugin_get_desc (plugin), out);
      print_out (out->str);
    }
  } else if (!opt_config && !opt_exec) {
    status = usage_error (ctx, "no job file: give one with -c JOB.ini (or a command with -e)");
    ctx = NULL;
  } else if (opt_progress && !g_strv_contains ((const char *const[]) { "auto", "always", "never", NULL },
                                                opt_progress)) {
    status = usage_error (ctx, "--progress takes auto, always or never");
    ctx = NULL;
  } else {
    g_autoptr (GPtrArray) overrides = g_ptr_array_new_with_free_func ((GDestroyNotify) tr_override_free);
    /* -e is a job of the exec plugin whose keys come first, so that -s may change them */
    g_autofree char *exec_command = opt_exec ? g_strconcat ("exec.command=", opt_exec, NULL) : NULL;
    g_autoptr (GPtrArray) sets = g_ptr_array_new ();
    if (exec_command)
      g_ptr_array_add (sets, exec_command);
    if (exec_inputs)
      g_ptr_array_add (sets, exec_inputs);
    for (int i = 0; opt_set && opt_set[i]; i++)
      g_ptr_array_add (sets, opt_set[i]);
    for (guint i = 0; i < sets->len; i++) {
      TrOverride *ov = tr_override_parse (g_ptr_array_index (sets, i), &error);
      if (!ov) {
        g_printerr ("taskrun: %s\n", error->message);
        status = TR_EXIT_CANNOT_START;
        break;
      }
      g_ptr_array_add (overrides, ov);
    }
    if (status == TR_EXIT_OK) {
      TrRunOptions run = {
        .job_file = opt_exec ? "taskrun -e" : opt_config,
        .job_text = opt_exec ? "[taskrun]\nplugin = exec\n[exec]\n" : NULL,
        .overrides = overrides, .workers = opt_jobs,
        .dry_run = opt_dry_run, .quiet = opt_quiet, .verbose = opt_verbose,
        .joblog = opt_joblog, .trace = opt_trace, .results = opt_results, .report = opt_report, .resume = opt_resume, .started_us = started_us,
        .progress = !opt_progress || g_str_equal (opt_progress, "auto") ? TR_PROGRESS_AUTO
                    : g_str_equal (opt_progress, "always")              ? TR_PROGRESS_ALWAYS
                                                                        : TR_PROGRESS_NEVER,
      };
      status = tr_run (&run);
    }
  }
  if (ctx)
    g_option_context_free (ctx);
  g_free (opt_config);
  g_free (opt_exec);
  g_strfreev (opt_set);
  g_free (opt_progress);
  g_free (opt_jobs);
  g_free (opt_joblog);
  g_free (opt_trace);
  g_free (opt_results);
  g_free (opt_report);
  g_free (opt_describe);
  return status;
}
