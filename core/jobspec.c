/* jobspec.c — a job file and its command line, read into one resolved job.
 *
 * Owns: the [taskrun] keys and their meaning, and the order of the checks (the file, the
 * core keys with -s and -j, the batch and the backend, the plugin's load, its section
 * and the unknown sections) so that nothing runs unless all pass; each failure is one
 * message naming the file, the line and the key, or the option it came from.
 * Does not own: the file format (jobfile.c), typed option values (options.c), the
 * backend's rules (backend.c), running the job (runner.c).
 */
#include "jobspec.h"
#include "backend.h"

#include <string.h>

static const char *const on_failure_choices[] = { "continue", "stop", NULL };
static const char *const backend_choices[] = { "local", "mpi", NULL };

/* The [taskrun] section, declared with the same table type plugins use. */
static const TrOption core_options[] = {
  { .name = "plugin", .type = TR_OPTION_STRING, .required = TRUE,
    .help = "the task plugin: a name found on the plugin path, or a path to a .so" },
  { .name = "workers", .type = TR_OPTION_INT, .min = 1, .max = TR_WORKERS_MAX,
    .help = "pool size; default: the number of online CPUs" },
  { .name = "task_timeout", .type = TR_OPTION_DOUBLE, .default_value = "0", .min = 0, .max = 1e9,
    .help = "seconds a task may run before it is killed; 0: no limit" },
  { .name = "retries", .type = TR_OPTION_INT, .default_value = "0", .min = 0, .max = 1000,
    .help = "how many more times a failed task is run" },
  { .name = "on_failure", .type = TR_OPTION_ENUM, .default_value = "continue",
    .choices = on_failure_choices,
    .help = "after a task fails for good: continue, or stop handing out tasks" },
  { .name = "max_tasks_per_worker", .type = TR_OPTION_INT, .default_value = "0", .min = 0,
    .max = G_MAXUINT32, .help = "replace a worker after this many tasks; 0: never" },
  { .name = "ordered", .type = TR_OPTION_BOOL, .default_value = "no",
    .help = "hand results to the plugin in the order the tasks were made" },
  { .name = "batch", .type = TR_OPTION_STRING, .default_value = "auto",
    .help = "tasks per message to a worker: auto, or a number from 1 to 65536" },
  { .name = "joblog", .type = TR_OPTION_PATH,
    .help = "write a GNU parallel style job log to this file (--joblog overrides it)" },
  { .name = "trace", .type = TR_OPTION_PATH,
    .help = "write a Chrome trace of the run (Perfetto opens it) to this file (--trace overrides it)" },
  { .name = "results", .type = TR_OPTION_PATH,
    .help = "write one JSON line per finished task to this file (--results overrides it)" },
  { .name = "report", .type = TR_OPTION_PATH,
    .help = "write a web page of the run to this file (--report overrides it)" },
  { .name = "backend", .type = TR_OPTION_ENUM, .default_value = "local",
    .choices = backend_choices, .help = "where workers run: local processes, or MPI ranks" },
  { .name = NULL },
};

const TrOption *
tr_runner_core_options (void)
{
  return core_options;
}

static gboolean
parse_batch (const char *text, guint *batch)
{
  if (g_strcmp0 (text, "auto") == 0) {
    *batch = 0;
    return TRUE;
  }
  guint64 n;
  if (!g_ascii_string_to_unsigned (text, 10, 1, 65536, &n, NULL))
    return FALSE;
  *batch = (guint) n;
  return TRUE;
}

char *
tr_job_spec_where (const TrJobFile *jf, GPtrArray *overrides, const char *section,
                   const char *key)
{
  const char *ov = tr_overrides_find (overrides, section, key);
  if (ov)
    return g_strdup_printf ("-s %s", ov);
  guint line = 0;
  if (tr_jobfile_lookup (jf, section, key, &line))
    return g_strdup_printf ("%s:%u", tr_jobfile_get_path (jf), line);
  return g_strdup (tr_jobfile_get_path (jf));
}

static char *
where (const TrJobFile *jf, GPtrArray *overrides, const char *key)
{
  return tr_job_spec_where (jf, overrides, "taskrun", key);
}

void
tr_job_spec_free (TrJobSpec *spec)
{
  if (!spec)
    return;
  /* the configurations before the plugin whose option tables they point into */
  if (spec->plugin_config)
    tr_config_free (spec->plugin_config);
  if (spec->core)
    tr_config_free (spec->core);
  if (spec->plugin)
    tr_plugin_free (spec->plugin);
  if (spec->file)
    tr_jobfile_free (spec->file);
  g_free (spec);
}

/* [taskrun]: the file's, then -s, then -j, then what follows from them. */
static gboolean
resolve_core (TrJobSpec *spec, const TrRunOptions *opts, GError **error)
{
  TrJobFile *jf = spec->file;
  /* a job file without [taskrun] but with a near miss ([TaskRun], [task-run]) is told
   * about the near miss rather than about a missing section */
  if (!tr_jobfile_lookup_section (jf, "taskrun")) {
    const char *only[] = { "taskrun", NULL };
    if (!tr_jobfile_check_near_sections (jf, only, error))
      return FALSE;
  }
  spec->core = tr_config_new (core_options, "taskrun");
  if (!tr_jobfile_apply_section (jf, "taskrun", spec->core, error) ||
      !tr_overrides_apply (opts->overrides, "taskrun", spec->core, error) ||
      !tr_jobfile_check_required (jf, "taskrun", spec->core, error))
    return FALSE;
  /* -j is the last word on workers, and is read by the same rule as the key */
  if (opts->workers && !tr_config_set (spec->core, "workers", opts->workers, NULL, error)) {
    g_prefix_error (error, "-j %s: [taskrun] ", opts->workers);
    return FALSE;
  }
  if (!parse_batch (tr_config_get_string (spec->core, "batch"), &spec->batch)) {
    g_autofree char *at = where (jf, opts->overrides, "batch");
    g_set_error (error, TR_CONFIG_ERROR, TR_CONFIG_ERROR_VALUE,
                 "%s: [taskrun] string 'batch': '%s' is neither auto nor a number from 1 to 65536",
                 at, tr_config_get_string (spec->core, "batch"));
    return FALSE;
  }
  g_autofree char *backend_at = where (jf, opts->overrides, "backend");
  if (!tr_backend_choose (spec->core, backend_at, &spec->use_mpi, error))
    return FALSE;
  gboolean asked = tr_config_is_set (spec->core, "workers");
  spec->workers = asked ? (guint) tr_config_get_int (spec->core, "workers") : g_get_num_processors ();
  g_autofree char *workers_at = opts->workers ? g_strdup_printf ("-j %s", opts->workers)
                                              : where (jf, opts->overrides, "workers");
  return tr_backend_workers (spec->use_mpi, asked, &spec->workers, workers_at, error);
}

/* The plugin: a path in the job file is relative to the job file's folder, one given
 * with -s to the current directory. */
static gboolean
load_plugin (TrJobSpec *spec, const TrRunOptions *opts, GError **error)
{
  const char *name = tr_config_get_string (spec->core, "plugin");
  guint line = 0;
  const char *in_file = tr_jobfile_lookup (spec->file, "taskrun", "plugin", &line);
  gboolean from_file = in_file && !tr_overrides_find (opts->overrides, "taskrun", "plugin");
  spec->plugin = tr_plugin_load (name, from_file ? tr_jobfile_get_dir (spec->file) : NULL, error);
  if (spec->plugin && !tr_plugin_get_desc (spec->plugin)->next_task) {
    /* a plugin for programs that submit its tasks themselves (<taskrun/pool.h>) */
    g_set_error (error, TR_LOADER_ERROR, TR_LOADER_ERROR_INVALID,
                 "plugin %s (%s) has no next_task hook: it makes no tasks of its own, so "
                 "it runs only in a program that submits them",
                 tr_plugin_get_desc (spec->plugin)->name, tr_plugin_get_path (spec->plugin));
    g_clear_pointer (&spec->plugin, tr_plugin_free);
  }
  if (!spec->plugin) {
    if (from_file)
      g_prefix_error (error, "%s:%u: [taskrun] plugin: ", tr_jobfile_get_path (spec->file), line);
    else
      g_prefix_error (error, "-s taskrun.plugin: ");
    return FALSE;
  }
  spec->desc = tr_plugin_get_desc (spec->plugin);
  return TRUE;
}

/* The plugin's section, with -s; any other section is unknown. */
static gboolean
resolve_plugin_config (TrJobSpec *spec, const TrRunOptions *opts, GError **error)
{
  const char *name = spec->desc->name;
  const char *known[] = { "taskrun", name, NULL };
  spec->plugin_config = tr_config_new (spec->desc->options, name);
  return tr_jobfile_check_sections (spec->file, known, error) &&
         tr_overrides_check_sections (opts->overrides, known, error) &&
         tr_jobfile_apply_section (spec->file, name, spec->plugin_config, error) &&
         tr_overrides_apply (opts->overrides, name, spec->plugin_config, error) &&
         tr_jobfile_check_required (spec->file, name, spec->plugin_config, error);
}

TrJobSpec *
tr_job_spec_resolve (const TrRunOptions *opts, GError **error)
{
  g_autoptr (TrJobSpec) spec = g_new0 (TrJobSpec, 1);
  spec->file = opts->job_text ? tr_jobfile_load_data (opts->job_file, opts->job_text,
                                                      strlen (opts->job_text), error)
                              : tr_jobfile_load (opts->job_file, error);
  if (!spec->file || !resolve_core (spec, opts, error) || !load_plugin (spec, opts, error) ||
      !resolve_plugin_config (spec, opts, error))
    return NULL;
  return g_steal_pointer (&spec);
}
