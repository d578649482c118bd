/* sleep-demo.c — the seeds' first pool example as a taskrun plugin.
 *
 * Each task sleeps for `seconds` (plus up to `jitter` more, from a fixed seed so that the
 * task list is the same every run) and reports which worker ran it and that worker's pid.
 * The output makes the point of a pool visible: a handful of processes, each reused for
 * many tasks.
 */
#include <taskrun/plugin.h>

#include <errno.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  TrJob *job;
  guint64 tasks;
  double seconds;
  double jitter;
  guint64 produced;
  GRand *rand;
  GHashTable *pids;
} SleepDemo;

typedef struct {
  guint64 number;
  double seconds;
} SleepTask;

typedef struct {
  guint32 pid;
  double slept;
} SleepResult;

static const TrOption sleep_demo_options[] = {
  { .name = "tasks", .type = TR_OPTION_INT, .default_value = "10", .min = 0, .max = 1e12,
    .help = "how many tasks to run" },
  { .name = "seconds", .type = TR_OPTION_DOUBLE, .default_value = "0.5", .min = 0, .max = 86400,
    .help = "how long each task sleeps" },
  { .name = "jitter", .type = TR_OPTION_DOUBLE, .default_value = "0", .min = 0, .max = 86400,
    .help = "up to this many more seconds per task, varied from task to task" },
  { .name = NULL },
};

static gboolean
sleep_demo_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  (void) error;
  SleepDemo *sd = g_new0 (SleepDemo, 1);
  sd->job = job;
  sd->tasks = (guint64) tr_config_get_int (config, "tasks");
  sd->seconds = tr_config_get_double (config, "seconds");
  sd->jitter = tr_config_get_double (config, "jitter");
  sd->rand = g_rand_new_with_seed (20240601);
  sd->pids = g_hash_table_new (NULL, NULL);
  *state = sd;
  return TRUE;
}

static TrNext
sleep_demo_next (gpointer state, TrTask *task, GError **error)
{
  (void) error;
  SleepDemo *sd = state;
  if (sd->produced >= sd->tasks)
    return TR_NEXT_END;
  SleepTask t = { .number = ++sd->produced, .seconds = sd->seconds };
  if (sd->jitter > 0)
    t.seconds += g_rand_double_range (sd->rand, 0, sd->jitter);
  tr_task_set_payload (task, &t, sizeof t);
  tr_task_set_description (task, "sleep %" G_GUINT64_FORMAT " (%.3f s)", t.number, t.seconds);
  return TR_NEXT_TASK;
}

static gboolean
sleep_demo_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *output,
                GError **error)
{
  (void) wstate;
  SleepTask t;
  if (len != sizeof t) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "payload of %zu bytes, expected %zu",
                 len, sizeof t);
    return FALSE;
  }
  memcpy (&t, payload, sizeof t);
  struct timespec start, end;
  clock_gettime (CLOCK_MONOTONIC, &start);
  /* Until a deadline, not for a duration: a signal does not stretch the sleep, and a task
   * of 0 s does not sleep at all (a relative sleep of 0 still waits out the timer slack,
   * 50 us by default: the "empty" tasks of the seeds' headline were not empty). */
  if (t.seconds > 0) {
    gint64 ns = (gint64) start.tv_nsec + (gint64) (t.seconds * 1e9);
    struct timespec until = { .tv_sec = start.tv_sec + (time_t) (ns / 1000000000),
                              .tv_nsec = (long) (ns % 1000000000) };
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
      ;
  }
  clock_gettime (CLOCK_MONOTONIC, &end);
  SleepResult r = { .pid = (guint32) getpid (),
                    .slept = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9 };
  tr_output_append (output, &r, sizeof r);
  return TRUE;
}

static void
sleep_demo_result (gpointer state, const TrResult *result)
{
  SleepDemo *sd = state;
  SleepResult r;
  if (result->error || result->len != sizeof r)
    return;
  memcpy (&r, result->data, sizeof r);
  g_hash_table_add (sd->pids, GUINT_TO_POINTER (r.pid));
  tr_job_print (sd->job, "task %" G_GUINT64_FORMAT ": worker %u (pid %u) slept %.3f s", result->seq,
                result->worker, r.pid, r.slept);
}

static gboolean
sleep_demo_finish (gpointer state, const TrStats *stats, GString *summary, GError **error)
{
  (void) error;
  SleepDemo *sd = state;
  guint pids = g_hash_table_size (sd->pids);
  g_string_append_printf (summary, "%" G_GUINT64_FORMAT " %s ran in %u worker %s (pool of %u)%s",
                          stats->succeeded, g_dngettext (NULL, "task", "tasks", stats->succeeded),
                          pids, g_dngettext (NULL, "process", "processes", pids), stats->workers,
                          stats->succeeded > pids ? ": processes were reused from task to task"
                                                  : "");
  return TRUE;
}

static void
sleep_demo_destroy (gpointer state)
{
  SleepDemo *sd = state;
  g_rand_free (sd->rand);
  g_hash_table_unref (sd->pids);
  g_free (sd);
}

TR_PLUGIN_DEFINE (
  .name = "sleep-demo",
  .version = "1.0",
  .description = "each task sleeps and reports the worker and pid that ran it",
  .license = "MIT",
  .options = sleep_demo_options,
  .flags = TR_PLUGIN_FLAG_DETERMINISTIC,
  .configure = sleep_demo_configure,
  .next_task = sleep_demo_next,
  .run = sleep_demo_run,
  .result = sleep_demo_result,
  .finish = sleep_demo_finish,
  .destroy = sleep_demo_destroy,
);
