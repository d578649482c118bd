/* test-trace.c — --trace and --results, read back as a program would (json-glib): the
 * trace is well-formed for the Trace Event Format, every attempt of the job log is in it
 * once with the log's timing, worker deaths, timeouts and retries are instant events,
 * tiny tasks are grouped without losing one, a killed taskrun leaves a trace a tolerant
 * reader loads; the results file has one row per task with the job log's values; a path
 * that cannot be written stops the job before it runs. */
#include "testutil.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  guint64 seq;
  double start, runtime;
  int exitval, sig;
  char *command;
} LogRow;

static void
log_row_clear (gpointer p)
{
  g_free (((LogRow *) p)->command);
}

/* The rows of a job log, in file order. */
static GArray *
read_joblog (const char *path)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GArray *rows = g_array_new (FALSE, TRUE, sizeof (LogRow));
  g_array_set_clear_func (rows, log_row_clear);
  for (guint i = 2; lines[i] && *lines[i]; i++) {
    g_auto (GStrv) f = g_strsplit (lines[i], "\t", 9);
    g_assert_cmpuint (g_strv_length (f), ==, 9);
    LogRow r = { .seq = g_ascii_strtoull (f[0], NULL, 10), .start = g_ascii_strtod (f[2], NULL),
                 .runtime = g_ascii_strtod (f[3], NULL), .exitval = atoi (f[6]),
                 .sig = atoi (f[7]), .command = g_strdup (f[8]) };
    g_array_append_val (rows, r);
  }
  return rows;
}

static JsonArray *
read_trace (const char *path, JsonParser **keep)
{
  g_autoptr (GError) error = NULL;
  *keep = json_parser_new ();
  g_assert_true (json_parser_load_from_file (*keep, path, &error));
  g_assert_no_error (error);
  JsonNode *root = json_parser_get_root (*keep);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  return json_node_get_array (root);
}

/* Every event has what its phase needs: ph, name, pid, tid; ts for all but metadata,
 * dur (not negative) for complete events, the scope for instant ones. */
static void
check_well_formed (JsonArray *events)
{
  g_assert_cmpuint (json_array_get_length (events), >, 0);
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    g_assert_nonnull (e);
    const char *ph = json_object_get_string_member (e, "ph");
    g_assert_nonnull (ph);
    g_assert_true (strchr ("XiM", ph[0]) && ph[1] == '\0');
    g_assert_nonnull (json_object_get_string_member (e, "name"));
    g_assert_true (json_object_has_member (e, "pid") && json_object_has_member (e, "tid"));
    if (ph[0] != 'M') {
      g_assert_true (json_object_has_member (e, "ts"));
      g_assert_cmpfloat (json_object_get_double_member (e, "ts"), >=, 0);
    }
    if (ph[0] == 'X')
      g_assert_cmpfloat (json_object_get_double_member (e, "dur"), >=, 0);
    if (ph[0] == 'i')
      g_assert_nonnull (json_object_get_string_member (e, "s"));
  }
}

static double
start_unix (JsonArray *events)
{
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    if (g_str_equal (json_object_get_string_member (e, "name"), "taskrun started"))
      return json_object_get_double_member (json_object_get_object_member (e, "args"),
                                            "start_unix");
  }
  g_assert_not_reached ();
}

static guint
count_named (JsonArray *events, const char *ph, const char *name)
{
  guint n = 0;
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    if (g_str_equal (json_object_get_string_member (e, "ph"), ph) &&
        g_str_equal (json_object_get_string_member (e, "name"), name))
      n++;
  }
  return n;
}

/* The tasks the events hold: one per task event, N per group of N. */
static guint64
count_tasks (JsonArray *events)
{
  guint64 tasks = 0;
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    const char *cat = json_object_get_string_member_with_default (e, "cat", "");
    if (g_str_equal (cat, "task"))
      tasks++;
    else if (g_str_equal (cat, "tasks"))
      tasks += (guint64) json_object_get_int_member (json_object_get_object_member (e, "args"),
                                                     "tasks");
  }
  return tasks;
}

/* The complete task events of attempt `attempt` of task `seq`. */
static guint
find_attempt (JsonArray *events, guint64 seq, guint attempt, JsonObject **found)
{
  guint n = 0;
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    if (!g_str_equal (json_object_get_string_member (e, "ph"), "X") ||
        g_strcmp0 (json_object_get_string_member_with_default (e, "cat", ""), "task") != 0)
      continue;
    JsonObject *a = json_object_get_object_member (e, "args");
    if ((guint64) json_object_get_int_member (a, "seq") == seq &&
        json_object_get_int_member (a, "attempt") == attempt) {
      *found = e;
      n++;
    }
  }
  return n;
}

/* Each row of the job log is one attempt in the trace, at the log's time: the log has
 * milliseconds, the trace microseconds. */
static void
check_rows_in_trace (GArray *rows, JsonArray *events)
{
  double t0 = start_unix (events);
  GHashTable *attempts = g_hash_table_new (g_int64_hash, g_int64_equal);
  guint task_events = 0;
  for (guint i = 0; i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    if (g_strcmp0 (json_object_get_string_member_with_default (e, "cat", ""), "task") == 0)
      task_events++;
  }
  g_assert_cmpuint (task_events, ==, rows->len);
  for (guint i = 0; i < rows->len; i++) {
    LogRow *r = &g_array_index (rows, LogRow, i);
    guint attempt = GPOINTER_TO_UINT (g_hash_table_lookup (attempts, &r->seq)) + 1;
    g_hash_table_insert (attempts, &r->seq, GUINT_TO_POINTER (attempt));
    JsonObject *e = NULL;
    g_assert_cmpuint (find_attempt (events, r->seq, attempt, &e), ==, 1);
    double ts = json_object_get_double_member (e, "ts") / 1e6 + t0;
    double dur = json_object_get_double_member (e, "dur") / 1e6;
    g_assert_cmpfloat (fabs (ts - r->start), <=, 0.0015);
    g_assert_cmpfloat (fabs (dur - r->runtime), <=, 0.0015);
    JsonObject *a = json_object_get_object_member (e, "args");
    g_assert_cmpstr (json_object_get_string_member (a, "description"), ==, r->command);
    g_assert_cmpint (json_object_get_int_member (a, "worker_pid"), >, 0);
  }
  g_hash_table_unref (attempts);
}

/* The results file: one row per task, each with its final attempt's job log values. */
static void
check_results (const char *path, GArray *rows, guint tasks)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, tasks + 1);
  g_assert_cmpstr (lines[tasks], ==, "");
  GHashTable *seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint i = 0; i < tasks; i++) {
    g_autoptr (JsonParser) p = json_parser_new ();
    g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
    JsonObject *o = json_node_get_object (json_parser_get_root (p));
    g_assert_cmpint (json_object_get_int_member (o, "Version"), ==, 1);
    gint64 seq = json_object_get_int_member (o, "Seq");
    g_assert_false (g_hash_table_contains (seen, &seq));
    g_hash_table_add (seen, g_memdup2 (&seq, sizeof seq));
    /* the last row of this task in the job log is its final attempt */
    const LogRow *last = NULL;
    for (guint k = 0; k < rows->len; k++)
      if (g_array_index (rows, LogRow, k).seq == (guint64) seq)
        last = &g_array_index (rows, LogRow, k);
    g_assert_nonnull (last);
    g_assert_cmpfloat (fabs (json_object_get_double_member (o, "Starttime") - last->start), <, 0.0006);
    g_assert_cmpfloat (fabs (json_object_get_double_member (o, "JobRuntime") - last->runtime), <, 0.0006);
    g_assert_cmpint (json_object_get_int_member (o, "Exitval"), ==, last->exitval);
    g_assert_cmpint (json_object_get_int_member (o, "Signal"), ==, last->sig);
    g_assert_cmpstr (json_object_get_string_member (o, "Command"), ==, last->command);
    g_assert_cmpstr (json_object_get_string_member (o, "Host"), ==, ":");
    g_assert_cmpint (json_object_get_int_member (o, "Worker"), >=, 1);
    gboolean failed = last->exitval != 0 || last->sig != 0;
    g_assert_cmpint (JSON_NODE_HOLDS_NULL (json_object_get_member (o, "Error")), ==, !failed);
  }
  g_hash_table_destroy (seen);
}

/* A run of `job` in `dir` with a job log, a trace and a results file, its exit status
 * `status`, and what every such run must hold: the trace well-formed, each job log row in
 * it once at the log's time, one result row per task with the log's values.  *err gets
 * stderr; the events stay valid while *parser lives. */
typedef struct {
  char *err;
  GArray *rows;
  JsonParser *parser;
  JsonArray *events;
} TracedRun;

static void
traced_run (TracedRun *run, const char *dir, const char *job, const char *verbose, int status,
            guint log_rows, guint tasks)
{
  const char *args[] = { "-c", job, "--joblog", "log.tsv", "--trace", "trace.json", "--results",
                         "results.jsonl", verbose, NULL };
  g_autofree char *out = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &run->err), ==, status);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  g_autofree char *trace = g_build_filename (dir, "trace.json", NULL);
  g_autofree char *results = g_build_filename (dir, "results.jsonl", NULL);
  run->rows = read_joblog (log);
  g_assert_cmpuint (run->rows->len, ==, log_rows);
  run->events = read_trace (trace, &run->parser);
  check_well_formed (run->events);
  check_rows_in_trace (run->rows, run->events);
  check_results (results, run->rows, tasks);
}

static void
traced_run_clear (TracedRun *run)
{
  g_free (run->err);
  g_array_unref (run->rows);
  g_object_unref (run->parser);
}

/* A job of 3 ms tasks in which one crashes its worker: every attempt, the death and the
 * replacement are in the trace; every task in the results. */
static void
test_attempts_and_death (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n",
                                         "tasks = 12\nop = sleepecho:3:r%n\nbad_task = 5\n"
                                         "bad_op = crash\nquiet = yes\n");
  TracedRun run;
  traced_run (&run, dir, job, NULL, 1, 12, 12);
  JsonObject *crashed = NULL;
  g_assert_cmpuint (find_attempt (run.events, 5, 1, &crashed), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (crashed, "args"),
                                                  "outcome"), ==, "worker died");
  /* two workers started, the one that crashed ended and was replaced; all end at close */
  g_assert_cmpuint (count_named (run.events, "i", "worker started"), ==, 3);
  g_assert_cmpuint (count_named (run.events, "i", "worker ended"), ==, 3);
  g_assert_cmpuint (count_named (run.events, "M", "thread_name"), ==, 4);
  g_assert_cmpuint (count_named (run.events, "i", "run ended"), ==, 1);
  traced_run_clear (&run);
  tt_rmtree (dir);
}

/* A task that hangs past task_timeout, twice (retries = 1): two timeouts, a retry, and
 * one row in the results, for its second attempt; the slowest tasks name it once. */
static void
test_timeout_and_retry (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\ntask_timeout = 0.3\nretries = 1\n",
                                         "tasks = 6\nop = sleepecho:3:r%n\nbad_task = 3\n"
                                         "bad_op = hang\nquiet = yes\n");
  TracedRun run;
  traced_run (&run, dir, job, "-v", 1, 7, 6);
  g_assert_cmpuint (tt_count_lines (run.err, "taskrun: slowest tasks: task 3 (hang) "), ==, 1);
  g_assert_null (strstr (strstr (run.err, "slowest tasks:"), "; task 3 "));
  g_assert_cmpuint (count_named (run.events, "i", "timeout"), ==, 2);
  g_assert_cmpuint (count_named (run.events, "i", "retry"), ==, 1);
  traced_run_clear (&run);
  tt_rmtree (dir);
}

/* 10M one-number tasks: grouped, every task counted once, the file small, and the
 * memory of the run bounded (generous bounds: no timing here). */
static void
test_tiny_tasks_grouped (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_write (dir, "ss.ini",
                                   "[taskrun]\nplugin = compute\nworkers = 2\n[compute]\n"
                                   "op = sum-squares\nstart = 0\nend = 10000000\nchunk = 1\n");
  /* the largest of taskrun and its workers, as bench-compute measures it.  Under a
   * sanitizer it is its allocator's (its quarantine alone varies from 145 to 330 MiB
   * between runs of this job, with or without a trace): the bound is for a plain build */
  const char *args[] = { "-q", "-c", job, "--trace", "trace.json", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  struct rusage ru;
  int status = tt_wait_pid (pid, 200, &ru);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_test_message ("largest process: %ld KiB", ru.ru_maxrss);
  if (!*TT_SANITIZE_CFLAGS)
    g_assert_cmpint (ru.ru_maxrss, <, 64 * 1024);
  g_autofree char *trace = g_build_filename (dir, "trace.json", NULL);
  struct stat st;
  g_assert_cmpint (stat (trace, &st), ==, 0);
  g_test_message ("trace of 10M tasks: %lld bytes", (long long) st.st_size);
  g_assert_cmpint (st.st_size, <, 2 * 1024 * 1024);
  g_autoptr (JsonParser) p = NULL;
  JsonArray *events = read_trace (trace, &p);
  check_well_formed (events);
  guint64 tasks = count_tasks (events);
  g_assert_cmpuint (tasks, ==, 10000000);
  g_assert_cmpuint (count_named (events, "X", "generator"), >, 0);
  g_assert_cmpuint (count_named (events, "X", "results"), >, 0);
  tt_rmtree (dir);
}

/* What a tolerant reader (Perfetto, chrome://tracing) does with a trace cut short: the
 * closing bracket may be missing, and the last line may be cut. */
static JsonArray *
read_cut_trace (const char *path, JsonParser **keep)
{
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  char *end = strrchr (text, '\n');
  g_assert_nonnull (end);
  *end = '\0'; /* a line cut short goes */
  g_strchomp (text);
  if (g_str_has_suffix (text, ","))
    text[strlen (text) - 1] = '\0';
  g_autofree char *whole = g_strconcat (text, "\n]", NULL);
  *keep = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_data (*keep, whole, -1, &error));
  g_assert_no_error (error);
  return json_node_get_array (json_parser_get_root (*keep));
}

static void
test_killed_run_leaves_trace (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_write (dir, "sleep.ini",
                                   "[taskrun]\nplugin = sleep-demo\nworkers = 2\n[sleep-demo]\n"
                                   "tasks = 100000\nseconds = 0.002\n");
  const char *args[] = { "-q", "-c", job, "--trace", "trace.json", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *trace = g_build_filename (dir, "trace.json", NULL);
  g_assert_true (tt_wait_lines (trace, 40, 30));
  GArray *kids = tt_children (pid);
  kill (pid, SIGKILL);
  int status = tt_wait_pid (pid, 30, NULL);
  g_assert_true (WIFSIGNALED (status));
  /* the workers see their parent go and end */
  g_assert_cmpuint (tt_wait_gone (kids, 30), ==, 0);
  g_array_unref (kids);
  g_autoptr (JsonParser) p = NULL;
  JsonArray *events = read_cut_trace (trace, &p);
  check_well_formed (events);
  g_assert_cmpuint (count_named (events, "i", "run ended"), ==, 0);
  g_assert_cmpuint (count_named (events, "i", "taskrun started"), ==, 1);
  guint task_events = 0;
  for (guint i = 0; i < json_array_get_length (events); i++)
    if (g_str_equal (json_object_get_string_member_with_default (
                         json_array_get_object_element (events, i), "cat", ""), "task"))
      task_events++;
  g_assert_cmpuint (task_events, >, 0);
  tt_rmtree (dir);
}

/* A trace or results path that cannot be written, or two files that are one: exit 2,
 * the path named, nothing run, also under --dry-run; and the files of the run before,
 * job log and trace, left as they were. */
static void
test_bad_paths (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 3\nquiet = yes\n");
  const char *first[] = { "-c", job, "--joblog", "log.tsv", "--trace", "old.json", NULL };
  g_autofree char *out0 = NULL, *err0 = NULL;
  g_assert_cmpint (tt_run_taskrun (first, dir, NULL, &out0, &err0), ==, 0);
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  g_autofree char *old_trace = g_build_filename (dir, "old.json", NULL);
  g_autofree char *log_before = NULL, *trace_before = NULL;
  g_assert_true (g_file_get_contents (log, &log_before, NULL, NULL));
  g_assert_true (g_file_get_contents (old_trace, &trace_before, NULL, NULL));
  g_autofree char *link = g_build_filename (dir, "link.json", NULL);
  g_assert_cmpint (symlink ("old.json", link), ==, 0);
  g_autofree char *fifo = g_build_filename (dir, "fifo", NULL);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_autofree char *sub = g_build_filename (dir, "sub", NULL);
  g_assert_cmpint (mkdir (sub, 0700), ==, 0);
  struct {
    const char *option, *path, *says;
  } cases[] = {
    { "--trace", "no/such/dir/t.json", "cannot create the trace" },
    { "--trace", fifo, "is not a regular file" },
    { "--results", "no/such/dir/r.jsonl", "cannot create the results file" },
    { "--results", sub, "the results file" },
    { "--report", "no/such/dir/r.html", "cannot create the report" },
    { "--report", sub, "is not a regular file" },
    /* the same file twice: by name, and through a symlink */
    { "--results", "old.json", "the trace and the results file are the same file" },
    { "--report", link, "the trace and the report are the same file" },
    { "--trace", "log.tsv", "the job log and the trace are the same file" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int dry = 0; dry < 2; dry++) {
      const char *args[] = { "-c", job, "--joblog", "log.tsv", "--trace", "old.json",
                             cases[i].option, cases[i].path, dry ? "--dry-run" : NULL, NULL };
      if (g_str_equal (cases[i].option, "--trace")) {
        args[4] = cases[i].option; /* it replaces the trace */
        args[5] = cases[i].path;
        args[6] = dry ? "--dry-run" : NULL;
        args[7] = NULL;
      }
      g_autofree char *out = NULL, *err = NULL;
      g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 2);
      g_test_message ("%s", err);
      g_assert_nonnull (strstr (err, cases[i].says));
      g_autofree char *base = g_path_get_basename (cases[i].path);
      g_assert_nonnull (strstr (err, base));
      g_autofree char *log_after = NULL, *trace_after = NULL;
      g_assert_true (g_file_get_contents (log, &log_after, NULL, NULL));
      g_assert_true (g_file_get_contents (old_trace, &trace_after, NULL, NULL));
      g_assert_cmpstr (log_after, ==, log_before);
      g_assert_cmpstr (trace_after, ==, trace_before);
    }
  tt_rmtree (dir);
}

/* --resume adds to the results file, as to the job log: the rows of the tasks done
 * before stay, and the tasks run again get a row each. */
static void
test_resume_keeps_results (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *mark = g_build_filename (dir, "mark", NULL);
  g_autofree char *keys = g_strdup_printf ("tasks = 5\nop = echo:%%n\nbad_task = 3\n"
                                           "bad_op = fail-once:%s\nquiet = yes\n", mark);
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", keys);
  const char *args[] = { "-c", job, "--joblog", "log.tsv", "--results", "r.jsonl", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  const char *again[] = { "-c", job, "--joblog", "log.tsv", "--results", "r.jsonl", "--resume",
                          NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (again, dir, NULL, &out2, &err2), ==, 0);
  g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (text, "{\"Version\":1,"), ==, 6);
  g_assert_cmpuint (tt_count_lines (text, "{\"Version\":1,\"Seq\":3,"), ==, 2);
  tt_rmtree (dir);
}

/* Tiny tasks held in a lane's group reach the file within the flush interval, also when
 * the lane's next task hangs; a SIGKILL then loses none of them. */
static void
test_groups_reach_the_file (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n",
                                         "tasks = 30\nop = echo:%n\nbad_task = 25\n"
                                         "bad_op = hang\nquiet = yes\n");
  const char *args[] = { "-q", "-c", job, "--trace", "t.json", "--results", "r.jsonl", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
  /* the tasks that ended before the hang (those of its frame wait with it) */
  g_assert_true (tt_wait_lines (results, 1, 30));
  guint done = 0;
  for (guint same = 0; same < 10;) {
    g_usleep (G_USEC_PER_SEC / 10);
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
    guint now = tt_count_lines (text, "{");
    same = now == done ? same + 1 : 0;
    done = now;
  }
  g_assert_cmpuint (done, <, 25);
  g_usleep (G_USEC_PER_SEC); /* ten flush intervals */
  kill (pid, SIGKILL);
  tt_wait_pid (pid, 30, NULL);
  g_autofree char *trace = g_build_filename (dir, "t.json", NULL);
  g_autoptr (JsonParser) p = NULL;
  JsonArray *events = read_cut_trace (trace, &p);
  guint64 tasks = count_tasks (events);
  g_assert_cmpuint (tasks, ==, done);
  tt_rmtree (dir);
}

/* The report: through a symlink, the file it names is replaced and the link stays; a
 * file's mode is kept; a name as long as a name may be works; a lane of more spans than
 * it keeps, alternating success and failure, is compacted (it once looped for good). */
static void
test_report_destination (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n", "tasks = 2\nquiet = yes\n");
  g_autofree char *pub = g_build_filename (dir, "pub", NULL);
  g_assert_cmpint (mkdir (pub, 0700), ==, 0);
  g_autofree char *real = tt_write (pub, "real.html", "OLD");
  g_assert_cmpint (chmod (real, 0600), ==, 0);
  g_autofree char *link = g_build_filename (dir, "link.html", NULL);
  g_assert_cmpint (symlink ("pub/real.html", link), ==, 0);
  const char *args[] = { "-q", "-c", job, "--report", "link.html", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  struct stat st;
  g_assert_cmpint (lstat (link, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
  g_assert_cmpint (stat (real, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_autofree char *page = NULL;
  g_assert_true (g_file_get_contents (real, &page, NULL, NULL));
  g_assert_true (g_str_has_prefix (page, "<!DOCTYPE html>"));
  g_autoptr (GDir) listing = g_dir_open (pub, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (listing), ==, "real.html");
  g_assert_null (g_dir_read_name (listing));

  char name[256];
  memset (name, 'r', 250);
  strcpy (name + 250, ".htm");
  const char *long_args[] = { "-q", "-c", job, "--report", name, NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (long_args, dir, NULL, &out2, &err2), ==, 0);
  g_autofree char *long_path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_test (long_path, G_FILE_TEST_IS_REGULAR));

  g_autoptr (GString) inputs = g_string_new (NULL);
  for (int i = 0; i < 4400; i++)
    g_string_append (inputs, i % 2 ? "1\n" : "0\n");
  g_autofree char *alt = tt_write (dir, "alt.txt", inputs->str);
  const char *alt_args[] = { "-q", "-j", "1", "-e", "test {} = 1", "--report", "alt.html", "::::",
                             alt, NULL };
  g_autofree char *out3 = NULL, *err3 = NULL;
  g_assert_cmpint (tt_run_taskrun (alt_args, dir, NULL, &out3, &err3), ==, 1);
  g_autofree char *alt_page = g_build_filename (dir, "alt.html", NULL);
  g_autofree char *alt_text = NULL;
  g_assert_true (g_file_get_contents (alt_page, &alt_text, NULL, NULL));
  g_assert_nonnull (strstr (alt_text, "<rect class=\"failed\""));
  tt_rmtree (dir);
}

/* A full disk: the trace and the results file are cut back to their last whole line,
 * so a tolerant reader still loads them, and the run says so and exits 1.  Needs a small
 * tmpfs: skipped where one cannot be mounted. */
static void
test_full_disk (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *small = g_build_filename (dir, "small", NULL);
  g_assert_cmpint (mkdir (small, 0700), ==, 0);
  g_autofree char *mount = g_strdup_printf ("mount -t tmpfs -o size=16k tmpfs '%s' 2>/dev/null",
                                            small);
  if (system (mount) != 0) {
    g_test_skip ("cannot mount a tmpfs here (needs root)");
    tt_rmtree (dir);
    return;
  }
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n",
                                         "tasks = 3000\nop = fail:%n\nquiet = yes\n");
  const char *args[] = { "-q", "-c", job, "--trace", "small/t.json", "--results", "small/r.jsonl",
                         NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, dir, NULL, &out, &err);
  g_autofree char *trace = g_build_filename (small, "t.json", NULL);
  g_autofree char *results = g_build_filename (small, "r.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
  g_autoptr (JsonParser) p = NULL;
  JsonArray *events = read_cut_trace (trace, &p);
  g_autofree char *umount = g_strdup_printf ("umount '%s'", small);
  g_assert_cmpint (system (umount), ==, 0);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "the trace"));
  g_assert_nonnull (strstr (err, "cannot write the results file"));
  check_well_formed (events);
  g_assert_true (g_str_has_suffix (text, "}\n"));
  g_auto (GStrv) rows = g_strsplit (text, "\n", -1);
  for (guint i = 0; rows[i] && *rows[i]; i++) {
    g_autoptr (JsonParser) rp = json_parser_new ();
    g_assert_true (json_parser_load_from_data (rp, rows[i], -1, NULL));
  }
  tt_rmtree (dir);
}

/* exec's rows carry no Output (its payload is its own record; the commands' output goes
 * to stdout), and a signal shows in Signal with an Error. */
static void
test_results_of_commands (void)
{
  g_autofree char *dir = tt_tmpdir ();
  const char *args[] = { "-q", "-j", "1", "-s", "exec.shell=yes", "-e",
                         "test {} = b && kill -SEGV $$; echo {}", "--results", "r.jsonl",
                         ":::", "a", "b", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 1);
  g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
  g_assert_null (strstr (text, "\"Output"));
  g_assert_nonnull (strstr (text, "\"Signal\":11,"));
  g_assert_nonnull (strstr (text, "\"Exitval\":0,\"Signal\":0,\"Command\":\"test a = b"));
  tt_rmtree (dir);
}

/* The [taskrun] keys, relative to the job file's folder. */
static void
test_job_file_keys (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\ntrace = t.json\nresults = r.jsonl\n",
                                         "tasks = 4\nquiet = yes\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_autofree char *trace = g_build_filename (dir, "t.json", NULL);
  g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
  g_autoptr (JsonParser) p = NULL;
  check_well_formed (read_trace (trace, &p));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
  g_assert_cmpuint (tt_count_lines (text, "{\"Version\":1,"), ==, 4);
  tt_rmtree (dir);
}

/* Output that is UTF-8 text is carried as it is; compute's results (binary numbers) as
 * base64. */
static void
test_results_output (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 1\n",
                                         "tasks = 2\nop = echo:caf\xc3\xa9 %n\nquiet = yes\n");
  g_autofree char *sums = tt_write (dir, "sums.ini",
                                    "[taskrun]\nplugin = compute\nworkers = 1\n[compute]\n"
                                    "op = sum-squares\nstart = 0\nend = 3\nchunk = 3\n");
  for (int binary = 0; binary < 2; binary++) {
    const char *args[] = { "-q", "-c", binary ? sums : job, "--results", "r.jsonl", NULL };
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
    g_autofree char *results = g_build_filename (dir, "r.jsonl", NULL);
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (results, &text, NULL, NULL));
    g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, binary ? 2 : 3);
    for (int i = 0; lines[i] && *lines[i]; i++) {
      g_autoptr (JsonParser) p = json_parser_new ();
      g_assert_true (json_parser_load_from_data (p, lines[i], -1, NULL));
      JsonObject *o = json_node_get_object (json_parser_get_root (p));
      if (!binary) {
        g_autofree char *want = g_strdup_printf ("caf\xc3\xa9 %" G_GINT64_FORMAT,
                                                 json_object_get_int_member (o, "Seq"));
        g_assert_cmpstr (json_object_get_string_member (o, "Output"), ==, want);
        continue;
      }
      /* 0 + 1 + 4, as compute's 16-byte little-endian sum */
      g_assert_false (json_object_has_member (o, "Output"));
      gsize len;
      g_autofree guchar *raw = g_base64_decode (json_object_get_string_member (o, "OutputBase64"),
                                                &len);
      g_assert_cmpuint (len, ==, 16);
      g_assert_cmpuint (raw[0], ==, 5);
    }
  }
  tt_rmtree (dir);
}

/* -v gives the insights: each worker's busy share, the slowest tasks (the one that slept
 * longest first), the tail. */
static void
test_insights (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n",
                                         "tasks = 6\nop = sleepecho:5:r%n\nbad_task = 4\n"
                                         "bad_op = sleepecho:300:slow\nquiet = yes\n");
  const char *args[] = { "-v", "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_test_message ("%s", err);
  g_assert_cmpuint (tt_count_lines (err, "taskrun: workers busy: 1 "), ==, 1);
  g_assert_nonnull (strstr (err, "(mean "));
  g_assert_cmpuint (tt_count_lines (err, "taskrun: slowest tasks: task 4 (sleepecho:300:slow) "),
                    ==, 1);
  g_assert_cmpuint (tt_count_lines (err, "taskrun: tail: "), ==, 1);
  g_assert_nonnull (strstr (err, "the first worker done waited "));
  /* without -v, a short run has none */
  const char *quiet_args[] = { "-c", job, NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (quiet_args, dir, NULL, &out2, &err2), ==, 0);
  g_assert_null (strstr (err2, "workers busy"));
  tt_rmtree (dir);
}

/* A run of 5 s or more has its insights without -v. */
static void
test_insights_of_a_long_run (void)
{
  const char *args[] = { "-c", "conf/sleep-demo.ini", "-j", "2", "-s", "sleep-demo.tasks=2",
                         "-s", "sleep-demo.seconds=5.05", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_test_message ("%s", err);
  g_assert_cmpuint (tt_count_lines (err, "taskrun: workers busy: 1 "), ==, 1);
  g_assert_cmpuint (tt_count_lines (err, "taskrun: slowest tasks: task "), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/trace/attempts-and-death", test_attempts_and_death);
  g_test_add_func ("/trace/timeout-and-retry", test_timeout_and_retry);
  g_test_add_func ("/trace/tiny-tasks-grouped", test_tiny_tasks_grouped);
  g_test_add_func ("/trace/killed-run-leaves-trace", test_killed_run_leaves_trace);
  g_test_add_func ("/trace/bad-paths", test_bad_paths);
  g_test_add_func ("/trace/resume-keeps-results", test_resume_keeps_results);
  g_test_add_func ("/trace/groups-reach-the-file", test_groups_reach_the_file);
  g_test_add_func ("/trace/report-destination", test_report_destination);
  g_test_add_func ("/trace/results-of-commands", test_results_of_commands);
  g_test_add_func ("/trace/full-disk", test_full_disk);
  g_test_add_func ("/trace/job-file-keys", test_job_file_keys);
  g_test_add_func ("/trace/results-output", test_results_output);
  g_test_add_func ("/trace/insights", test_insights);
  g_test_add_func ("/trace/insights-of-a-long-run", test_insights_of_a_long_run);
  return g_test_run ();
}
