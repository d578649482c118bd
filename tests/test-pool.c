/* test-pool.c — the pool's semantics through the library API, with the testkit plugin:
 * apply, apply_async with a timed wait, ordered map, the unordered stream, callbacks on
 * the owning thread one at a time, close + join, terminate, worker reuse and recycling,
 * and a crashing worker failing only its own task. */
#include "testutil.h"
#include "internal.h"
#include "fakelink.h"
#include "link.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

typedef struct {
  TrPlugin *plugin;
  TrConfig *config;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autofree char *path = tt_test_plugin ("testkit");
  g_autoptr (GError) error = NULL;
  f->plugin = tr_plugin_load (path, NULL, &error);
  g_assert_no_error (error);
  f->config = tr_config_new (tr_plugin_get_desc (f->plugin)->options, "testkit");
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  (void) data;
  tr_config_free (f->config);
  tr_plugin_free (f->plugin);
}

static TrPool *
new_pool (Fixture *f, guint workers, guint max_tasks)
{
  TrPoolOptions o = { .workers = workers, .max_tasks_per_worker = max_tasks };
  g_autoptr (GError) error = NULL;
  TrPool *pool = tr_pool_new (f->plugin, f->config, &o, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  return pool;
}

static GBytes *
cmd (const char *text)
{
  return g_bytes_new (text, strlen (text));
}

static char *
bytes_str (GBytes *b)
{
  gsize len;
  const char *d = g_bytes_get_data (b, &len);
  return g_strndup (d, len);
}

/* Runs one testkit command that must succeed; returns its output as text. */
static char *
apply_ok (TrPool *pool, const char *command)
{
  g_autoptr (GBytes) in = cmd (command);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) out = tr_pool_apply (pool, command, in, &error);
  g_assert_no_error (error);
  return bytes_str (out);
}

static void
test_apply (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  g_autofree char *s = apply_ok (pool, "echo:hello");
  g_assert_cmpstr (s, ==, "hello");

  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bad = cmd ("fail:no luck");
  g_autoptr (GBytes) none = tr_pool_apply (pool, "bad", bad, &error);
  g_assert_null (none);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "no luck");
}

static void
test_apply_async_wait (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  g_autoptr (GBytes) in = cmd ("sleepecho:400:late");
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "slow", in, NULL, NULL, NULL);
  g_assert_false (tr_async_ready (a));
  g_assert_false (tr_async_wait (a, 50 * 1000)); /* not done after 50 ms */
  g_assert_null (tr_async_peek_result (a));
  g_assert_true (tr_async_wait (a, 30 * G_USEC_PER_SEC));
  g_assert_true (tr_async_ready (a));
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) out = tr_async_get (a, &error);
  g_assert_no_error (error);
  g_autofree char *s = bytes_str (out);
  g_assert_cmpstr (s, ==, "late");
  const TrResult *r = tr_async_peek_result (a);
  g_assert_cmpstr (r->description, ==, "slow");
  g_assert_cmpuint (r->worker, ==, 1);
  g_assert_cmpfloat (r->seconds, >=, 0.35);
}

/* A task's run time and start, once the worker has run enough frames to time tasks by
 * its cheaper clock (task-clock.c), still agree with the wall clock. */
static void
test_task_times_after_calibration (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  for (guint i = 0; i < 6; i++) { /* frames of 4 ms each: more than the calibration needs */
    g_autoptr (GBytes) in = cmd ("sleep:4");
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) out = tr_pool_apply (pool, "warm", in, &error);
    g_assert_no_error (error);
  }
  double before = g_get_real_time () / 1e6;
  g_autoptr (GBytes) in = cmd ("sleepecho:300:timed");
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "timed", in, NULL, NULL, NULL);
  g_assert_true (tr_async_wait (a, 30 * G_USEC_PER_SEC));
  double after = g_get_real_time () / 1e6;
  const TrResult *r = tr_async_peek_result (a);
  g_assert_null (r->error);
  g_assert_cmpfloat (r->seconds, >=, 0.29);
  g_assert_cmpfloat (r->seconds, <=, after - before + 0.01);
  g_assert_cmpfloat (r->start_time, >=, before - 0.01);
  g_assert_cmpfloat (r->start_time, <=, after);
}

/* Later items finish first; map still returns them in order. */
static void
test_map_keeps_order (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 4, 0);
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (int i = 0; i < 8; i++) {
    g_autofree char *c = g_strdup_printf ("sleepecho:%d:item%d", (8 - i) * 40, i);
    g_ptr_array_add (in, cmd (c));
  }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, 8);
  for (int i = 0; i < 8; i++) {
    g_autofree char *s = bytes_str (g_ptr_array_index (out, i));
    g_autofree char *want = g_strdup_printf ("item%d", i);
    g_assert_cmpstr (s, ==, want);
  }
}

static void
test_map_reports_failure (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_ptr_array_add (in, cmd ("echo:a"));
  g_ptr_array_add (in, cmd ("fail-own:second"));
  g_ptr_array_add (in, cmd ("fail:third"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_null (out);
  /* the first failure in order, its own domain and code, naming its payload */
  g_assert_error (error, g_quark_from_string ("testkit-own-error-quark"), 42);
  g_assert_cmpstr (error->message, ==, "payload 1: second");
}

typedef struct {
  guint64 n;
  guint64 made;
  GHashTable *seen;
  guint64 last_seq;
  gboolean ordered_ok;
  GThread *owner;
  gint in_callback;
  guint overlaps;
  guint wrong_thread;
  gulong callback_sleep_us;
} StreamCtx;

static TrNext
gen (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  StreamCtx *c = data;
  if (c->made >= c->n)
    return TR_NEXT_END;
  c->made++;
  /* every 97th task is slower, so completion order differs from generator order */
  g_autofree char *text = c->made % 97 == 0 ? g_strdup_printf ("sleepecho:2:%" G_GUINT64_FORMAT, c->made)
                                           : g_strdup_printf ("echo:%" G_GUINT64_FORMAT, c->made);
  tr_task_set_payload (task, text, strlen (text));
  tr_task_set_description (task, "task %" G_GUINT64_FORMAT, c->made);
  return TR_NEXT_TASK;
}

static void
on_result (const TrResult *r, gpointer data)
{
  StreamCtx *c = data;
  if (g_atomic_int_add (&c->in_callback, 1) != 0)
    c->overlaps++;
  if (g_thread_self () != c->owner)
    c->wrong_thread++;
  g_assert_null (r->error);
  g_autofree char *s = g_strndup ((const char *) r->data, r->len);
  g_assert_cmpuint (g_ascii_strtoull (s, NULL, 10), ==, r->seq);
  g_assert_false (g_hash_table_contains (c->seen, &r->seq));
  guint64 *k = g_new (guint64, 1);
  *k = r->seq;
  g_hash_table_add (c->seen, k);
  if (r->seq != c->last_seq + 1)
    c->ordered_ok = FALSE;
  c->last_seq = r->seq;
  if (c->callback_sleep_us)
    g_usleep (c->callback_sleep_us);
  g_atomic_int_add (&c->in_callback, -1);
}

static void
run_stream (Fixture *f, guint64 n, gboolean ordered, gulong sleep_us, StreamCtx *c, TrStats *st)
{
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  c->n = n;
  c->seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  c->owner = g_thread_self ();
  c->ordered_ok = TRUE;
  c->callback_sleep_us = sleep_us;
  g_autoptr (GError) error = NULL;
  g_assert_true (tr_pool_stream (pool, gen, on_result, c, ordered, st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (c->seen), ==, n);
  g_assert_cmpuint (st->total, ==, n);
  g_assert_cmpuint (st->succeeded, ==, n);
  g_assert_cmpuint (st->failed + st->not_run, ==, 0);
  g_hash_table_unref (c->seen);
}

static void
test_stream_unordered (Fixture *f, gconstpointer data)
{
  (void) data;
  StreamCtx c = { 0 };
  TrStats st;
  run_stream (f, 20000, FALSE, 0, &c, &st);
  g_assert_cmpuint (c.overlaps, ==, 0);
  g_assert_cmpuint (c.wrong_thread, ==, 0);
  g_assert_cmpuint (st.distinct_pids, <=, 2);
}

static void
test_stream_ordered (Fixture *f, gconstpointer data)
{
  (void) data;
  StreamCtx c = { 0 };
  TrStats st;
  run_stream (f, 5000, TRUE, 0, &c, &st);
  g_assert_true (c.ordered_ok);
}

/* A slow callback: callbacks still never overlap and run on the owning thread. */
static void
test_callbacks_serialised (Fixture *f, gconstpointer data)
{
  (void) data;
  StreamCtx c = { 0 };
  TrStats st;
  run_stream (f, 200, FALSE, 500, &c, &st);
  g_assert_cmpuint (c.overlaps, ==, 0);
  g_assert_cmpuint (c.wrong_thread, ==, 0);
}

typedef struct {
  guint ok, failed;
  GThread *owner;
  guint wrong_thread;
} Counts;

static void
count_ok (const TrResult *r, gpointer data)
{
  (void) r;
  Counts *c = data;
  c->ok++;
  if (g_thread_self () != c->owner)
    c->wrong_thread++;
}

static void
count_failed (const TrResult *r, gpointer data)
{
  (void) r;
  Counts *c = data;
  c->failed++;
}

static void
test_close_join_waits (Fixture *f, gconstpointer data)
{
  (void) data;
  TrPool *pool = new_pool (f, 2, 0);
  Counts c = { .owner = g_thread_self () };
  for (int i = 0; i < 6; i++) {
    g_autoptr (GBytes) in = cmd ("sleep:100");
    tr_async_unref (tr_pool_apply_async (pool, "sleep", in, count_ok, count_failed, &c));
  }
  tr_pool_close (pool);
  g_autoptr (GBytes) late = cmd ("echo:late");
  g_autoptr (TrAsync) refused = tr_pool_apply_async (pool, "late", late, count_ok, count_failed, &c);
  tr_pool_join (pool);
  g_assert_cmpuint (c.ok, ==, 6);
  g_assert_cmpuint (c.failed, ==, 1); /* submitted after close */
  g_assert_cmpuint (c.wrong_thread, ==, 0);
  g_autoptr (GError) error = NULL;
  g_assert_null (tr_async_get (refused, &error));
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED);
  tr_pool_free (pool);
}

static void
test_terminate (Fixture *f, gconstpointer data)
{
  (void) data;
  TrPool *pool = new_pool (f, 2, 0);
  Counts c = { .owner = g_thread_self () };
  g_autoptr (GPtrArray) asyncs = g_ptr_array_new_with_free_func ((GDestroyNotify) tr_async_unref);
  for (int i = 0; i < 5; i++) {
    g_autoptr (GBytes) in = cmd ("hang");
    g_ptr_array_add (asyncs, tr_pool_apply_async (pool, "hang", in, count_ok, count_failed, &c));
  }
  g_assert_false (tr_async_wait (g_ptr_array_index (asyncs, 0), 200 * 1000));
  gint64 t0 = g_get_monotonic_time ();
  tr_pool_terminate (pool);
  tr_pool_join (pool);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
  g_assert_cmpuint (c.ok, ==, 0);
  g_assert_cmpuint (c.failed, ==, 5);
  guint terminated = 0, cancelled = 0;
  for (guint i = 0; i < asyncs->len; i++) {
    const TrResult *r = tr_async_peek_result (g_ptr_array_index (asyncs, i));
    g_assert_nonnull (r);
    if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_TERMINATED))
      terminated++;
    else if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED))
      cancelled++;
  }
  g_assert_cmpuint (terminated, ==, 2); /* the two running */
  g_assert_cmpuint (cancelled, ==, 3);  /* the three waiting */
  tr_pool_free (pool);
}

/* Terminate in the middle of a stream of tiny tasks, which travel in bundles: each task
 * made gets exactly one final result, and those that did not finish say why. */
typedef struct {
  TrPool *pool;
  guint64 made, stop_at;
  guint64 ok, terminated, cancelled;
  GHashTable *seen;
} TermCtx;

static TrNext
term_gen (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  TermCtx *c = data;
  if (++c->made == c->stop_at)
    tr_pool_request_terminate (c->pool);
  g_autofree char *text = g_strdup_printf ("echo:%" G_GUINT64_FORMAT, c->made);
  tr_task_set_payload (task, text, strlen (text));
  return TR_NEXT_TASK;
}

static void
term_result (const TrResult *r, gpointer data)
{
  TermCtx *c = data;
  g_assert_true (r->final);
  g_assert_true (g_hash_table_add (c->seen, g_memdup2 (&r->seq, sizeof r->seq)));
  if (!r->error)
    c->ok++;
  else if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_TERMINATED))
    c->terminated++;
  else if (g_error_matches (r->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED))
    c->cancelled++;
  else
    g_assert_not_reached ();
}

static void
test_terminate_bundled_stream (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  TermCtx c = { .pool = pool, .stop_at = 100000,
                .seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL) };
  TrStats st;
  g_autoptr (GError) error = NULL;
  g_assert_true (tr_pool_stream (pool, term_gen, term_result, &c, FALSE, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st.total, ==, c.made);
  g_assert_cmpuint (g_hash_table_size (c.seen), ==, c.made);
  g_assert_cmpuint (c.ok + c.terminated + c.cancelled, ==, c.made);
  g_assert_cmpuint (st.succeeded, ==, c.ok);
  g_assert_cmpuint (st.not_run, ==, c.cancelled);
  g_assert_cmpuint (c.cancelled, >, 0); /* made, never sent */
  g_hash_table_unref (c.seen);
}

/* tr_pool_terminate from a result callback, in the middle of a stream: the stream pulls
 * no more tasks from its generator, as after tr_pool_request_terminate. */
#define TERM_LIMIT 1000000

static TrNext
limited_gen (gpointer data, TrTask *task, GError **error)
{
  TermCtx *c = data;
  if (c->made == TERM_LIMIT)
    return TR_NEXT_END;
  return term_gen (data, task, error);
}

static void
terminate_on_first (const TrResult *r, gpointer data)
{
  TermCtx *c = data;
  if (c->ok + c->terminated + c->cancelled == 0)
    tr_pool_terminate (c->pool);
  term_result (r, data);
}

static void
test_terminate_from_callback_stops_stream (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  TermCtx c = { .pool = pool, .seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL) };
  TrStats st;
  g_autoptr (GError) error = NULL;
  g_assert_true (tr_pool_stream (pool, limited_gen, terminate_on_first, &c, FALSE, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (c.made, <, TERM_LIMIT / 10); /* it stopped pulling */
  g_assert_cmpuint (g_hash_table_size (c.seen), ==, c.made);
  g_assert_cmpuint (c.ok + c.terminated + c.cancelled, ==, c.made);
  g_hash_table_unref (c.seen);
}

static guint
distinct_pids (TrPool *pool, guint tasks, GHashTable *per_pid)
{
  g_autoptr (GPtrArray) in = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < tasks; i++)
    g_ptr_array_add (in, cmd ("pid"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = tr_pool_map (pool, in, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < out->len; i++) {
    g_autofree char *s = bytes_str (g_ptr_array_index (out, i));
    gpointer key = GINT_TO_POINTER (atoi (s));
    g_hash_table_insert (per_pid, key,
                         GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (per_pid, key)) + 1));
  }
  return g_hash_table_size (per_pid);
}

static void
test_workers_reused (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 4, 0);
  g_autoptr (GHashTable) per_pid = g_hash_table_new (NULL, NULL);
  g_assert_cmpuint (distinct_pids (pool, 100, per_pid), <=, 4);
  g_assert_cmpuint (g_hash_table_size (per_pid), >=, 1);
}

static void
test_recycling (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 3);
  g_autoptr (GHashTable) per_pid = g_hash_table_new (NULL, NULL);
  guint n = distinct_pids (pool, 30, per_pid);
  g_assert_cmpuint (n, >=, 10);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, per_pid);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_assert_cmpuint (GPOINTER_TO_UINT (v), <=, 3);
}

/* A failed task's GError is the plugin's: its own domain and code reach the caller, and
 * the core's own failures carry their TR_TASK_ERROR code in error_code, not 0. */
static void
test_error_keeps_domain (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  g_autoptr (GBytes) in = cmd ("fail-own:not mine");
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "own", in, NULL, NULL, NULL);
  g_assert_true (tr_async_wait (a, 30 * G_USEC_PER_SEC));
  const TrResult *r = tr_async_peek_result (a);
  g_assert_error (r->error, g_quark_from_string ("testkit-own-error-quark"), 42);
  g_assert_cmpstr (r->error->message, ==, "not mine");
  g_assert_cmpint (r->error_code, ==, 42);
  g_autoptr (GBytes) crash = cmd ("crash");
  g_autoptr (TrAsync) c = tr_pool_apply_async (pool, "crash", crash, NULL, NULL, NULL);
  g_assert_true (tr_async_wait (c, 30 * G_USEC_PER_SEC));
  r = tr_async_peek_result (c);
  g_assert_error (r->error, TR_TASK_ERROR, TR_TASK_ERROR_WORKER_DIED);
  g_assert_cmpint (r->error_code, ==, TR_TASK_ERROR_WORKER_DIED);
}

static void
test_crash_fails_one_task (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  g_autoptr (GBytes) crash = cmd ("crash");
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) none = tr_pool_apply (pool, "crash", crash, &error);
  g_assert_null (none);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_WORKER_DIED);
  g_assert_nonnull (strstr (error->message, "killed by signal 11 (SIGSEGV)"));
  g_assert_true (g_str_has_prefix (error->message, "worker "));
  /* the pool goes on with a replacement worker */
  g_autoptr (GBytes) in = cmd ("echo:after");
  g_clear_error (&error);
  g_autoptr (GBytes) out = tr_pool_apply (pool, "after", in, &error);
  g_assert_no_error (error);
}

static void
test_init_failure (void)
{
  g_autofree char *path = tt_test_plugin ("testkit");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load (path, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TrConfig) config = tr_config_new (tr_plugin_get_desc (plugin)->options, "testkit");
  g_assert_true (tr_config_set (config, "init", "fail", NULL, &error));
  TrPoolOptions o = { .workers = 3 };
  TrPool *pool = tr_pool_new (plugin, config, &o, &error);
  g_assert_null (pool);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
  g_assert_nonnull (strstr (error->message, "testkit refuses to start (init = fail)"));
}

/* A worker_init that never returns: the pool gives up after start_timeout. */
static void
test_start_timeout (void)
{
  g_autofree char *path = tt_test_plugin ("testkit");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load (path, NULL, &error);
  g_autoptr (TrConfig) config = tr_config_new (tr_plugin_get_desc (plugin)->options, "testkit");
  g_assert_true (tr_config_set (config, "init", "hang", NULL, &error));
  TrPoolOptions o = { .workers = 2, .start_timeout = 0.5 };
  gint64 t0 = g_get_monotonic_time ();
  TrPool *pool = tr_pool_new (plugin, config, &o, &error);
  g_assert_null (pool);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 10 * G_USEC_PER_SEC);
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
  g_assert_nonnull (strstr (error->message, "did not start within 0.5 s"));
}

/* One worker fails in worker_init and the other never returns from it: the failure that
 * is reported is the plugin's own message, not the later time-out of the silent one. */
static void
test_start_first_failure_kept (void)
{
  g_autofree char *path = tt_test_plugin ("testkit");
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPlugin) plugin = tr_plugin_load (path, NULL, &error);
  g_autoptr (TrConfig) config = tr_config_new (tr_plugin_get_desc (plugin)->options, "testkit");
  g_assert_true (tr_config_set (config, "init", "fail-first-hang-rest", NULL, &error));
  g_autofree char *dir = g_dir_make_tmp ("taskrun-start-XXXXXX", NULL);
  g_autofree char *mark = g_build_filename (dir, "first", NULL);
  g_setenv ("TESTKIT_MARK", mark, TRUE);
  TrPoolOptions o = { .workers = 2, .start_timeout = 0.5 };
  TrPool *pool = tr_pool_new (plugin, config, &o, &error);
  g_unsetenv ("TESTKIT_MARK");
  g_assert_null (pool);
  g_assert_true (g_file_test (mark, G_FILE_TEST_EXISTS)); /* one worker did fail */
  g_assert_error (error, TR_TASK_ERROR, TR_TASK_ERROR_NO_WORKER);
  g_assert_nonnull (strstr (error->message, "testkit refuses to start (init = fail-first-hang-rest)"));
  g_unlink (mark);
  g_rmdir (dir);
}

/* Ordered results that wait for a slow first task keep their place in the bounded window:
 * memory does not grow with the stream. */
static TrNext
many_gen (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  guint64 *made = data; /* the first field of the test's counters */
  if (*made >= 300000)
    return TR_NEXT_END;
  const char *cmd = ++*made == 1 ? "sleepecho:1500:first" : "echo:x";
  tr_task_set_payload (task, cmd, strlen (cmd));
  return TR_NEXT_TASK;
}

static void
count_only (const TrResult *r, gpointer data)
{
  (void) r;
  ((guint64 *) data)[1]++; /* the second field: results seen */
}

static void
test_ordered_window (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  struct { guint64 made, seen; } c = { 0, 0 };
  TrStats st;
  g_autofree char *status = NULL;
  g_assert_true (tr_pool_stream (pool, many_gen, count_only, &c, TRUE, &st, NULL));
  g_assert_cmpuint (c.seen, ==, 300000);
  /* peak RSS of this test process, from /proc: far from the 300k results it would hold */
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  const char *hwm = strstr (status, "VmHWM:");
  g_assert_nonnull (hwm);
  guint64 kib = g_ascii_strtoull (hwm + 6, NULL, 10);
  g_test_message ("peak RSS %" G_GUINT64_FORMAT " KiB", kib);
#if !defined(__SANITIZE_ADDRESS__)
  g_assert_cmpuint (kib, <, 64 * 1024);
#endif
}

/* A stream generator of `total` testkit commands, cmds[0], cmds[1] ... in turn.  The
 * contexts below start with one, so that a stream's generator and its result callback
 * share the one user_data. */
typedef struct {
  const char *const *cmds;
  guint n_cmds, total, made;
} CmdGen;

static TrNext
cmd_gen (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  CmdGen *g = data;
  if (g->made >= g->total)
    return TR_NEXT_END;
  const char *cmd = g->cmds[g->made++ % g->n_cmds];
  tr_task_set_payload (task, cmd, strlen (cmd));
  return TR_NEXT_TASK;
}

/* close() refuses new tasks, not the retries of those already in: a task that fails its
 * first attempt after close still gets the attempts the pool allows. */
static void
test_retry_after_close (Fixture *f, gconstpointer data)
{
  (void) data;
  TrPoolOptions o = { .workers = 1, .retries = 1 };
  g_autoptr (GError) error = NULL;
  TrPool *pool = tr_pool_new (f->plugin, f->config, &o, &error);
  g_assert_no_error (error);
  g_autofree char *dir = g_dir_make_tmp ("taskrun-retry-XXXXXX", NULL);
  g_autofree char *mark = g_build_filename (dir, "failed-once", NULL);
  g_autofree char *text = g_strdup_printf ("fail-once:%s", mark);
  g_autoptr (GBytes) in = cmd (text);
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "fail-once", in, NULL, NULL, NULL);
  tr_pool_close (pool); /* its first result is handled after this, in join */
  tr_pool_join (pool);
  g_assert_true (g_file_test (mark, G_FILE_TEST_EXISTS)); /* the first attempt did fail */
  const TrResult *r = tr_async_peek_result (a);
  g_assert_nonnull (r);
  g_assert_no_error (r->error);
  g_assert_cmpuint (r->attempt, ==, 2);
  tr_pool_free (pool);
  g_unlink (mark);
  g_rmdir (dir);
}

/* The tail of a job is shared out: with batch = 50 each worker could take all 100 tasks
 * in two frames, but once the generator has ended no worker holds more than its share of
 * what is left, so both workers run a fair part of the job. */
typedef struct {
  CmdGen gen;
  guint per_worker[3]; /* results by worker slot, 1 and 2 */
} TailCtx;

static void
count_per_worker (const TrResult *r, gpointer data)
{
  TailCtx *c = data;
  g_assert_null (r->error);
  g_assert_cmpuint (r->worker, >=, 1);
  g_assert_cmpuint (r->worker, <=, 2);
  c->per_worker[r->worker]++;
}

static void
test_tail_shared (Fixture *f, gconstpointer data)
{
  (void) data;
  TrPoolOptions o = { .workers = 2, .batch = 50 };
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPool) pool = tr_pool_new (f->plugin, f->config, &o, &error);
  g_assert_no_error (error);
  static const char *const sleep2[] = { "sleep:2" };
  TailCtx c = { .gen = { sleep2, 1, 100, 0 } };
  TrStats st;
  g_assert_true (tr_pool_stream (pool, cmd_gen, count_per_worker, &c, FALSE, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st.succeeded, ==, 100);
  g_test_message ("worker 1 ran %u tasks, worker 2 ran %u", c.per_worker[1], c.per_worker[2]);
  /* without sharing one worker runs 98 or more; the bound leaves room for a slow core */
  g_assert_cmpuint (c.per_worker[1], >=, 20);
  g_assert_cmpuint (c.per_worker[2], >=, 20);
}

/* A worker inherits no descriptor but its link and the standard three, even one the
 * parent left without close-on-exec. */
static void
test_no_inherited_fds (Fixture *f, gconstpointer data)
{
  (void) data;
  int null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  int leaked = fcntl (null_fd, F_DUPFD, 10); /* deliberately without FD_CLOEXEC */
  close (null_fd);
  g_assert_cmpint (leaked, >=, 10);
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  g_autofree char *ask = g_strdup_printf ("fd-open:%d", leaked);
  g_autofree char *text = apply_ok (pool, ask);
  g_assert_cmpstr (text, ==, "closed");
  /* and the check itself can tell: descriptor 1 is open in the worker */
  g_autofree char *text1 = apply_ok (pool, "fd-open:1");
  g_assert_cmpstr (text1, ==, "open");
  close (leaked);
}

/* The I/O thread hands finished tasks over in batches, but never sits on them while the
 * rest of the pool is busy: a quick task's result arrives long before a slow one ends. */
typedef struct {
  CmdGen gen;
  gint64 started;
  gint64 quick_at, slow_at;
} HandOverCtx;

static void
note_arrival (const TrResult *r, gpointer data)
{
  HandOverCtx *c = data;
  g_assert_null (r->error);
  gint64 now = g_get_monotonic_time ();
  if (r->len == 5 && memcmp (r->data, "quick", 5) == 0)
    c->quick_at = now;
  else
    c->slow_at = now;
}

static void
test_results_not_held (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  g_autoptr (GError) error = NULL;
  static const char *const slow_then_quick[] = { "sleepecho:2000:slow", "sleepecho:0:quick" };
  HandOverCtx c = { .gen = { slow_then_quick, 2, 2, 0 }, .started = g_get_monotonic_time () };
  TrStats st;
  g_assert_true (tr_pool_stream (pool, cmd_gen, note_arrival, &c, FALSE, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st.succeeded, ==, 2);
  g_assert_cmpint (c.quick_at, >, 0);
  g_assert_cmpint (c.slow_at, >, 0);
  g_test_message ("quick result after %.3f s, slow after %.3f s", (c.quick_at - c.started) / 1e6,
                  (c.slow_at - c.started) / 1e6);
  /* generous: the quick one is due within milliseconds, the slow one after 2 s */
  g_assert_cmpint (c.slow_at - c.quick_at, >, G_USEC_PER_SEC);
}

/* Forty outputs of 10 MiB with batch = 10 (frames of ten while the tail allows): one
 * answer carries at most 64 MiB, so the worker sends back the tasks it has no room for,
 * and every one succeeds (a task that is fine alone must not fail for sharing a frame).
 * With max_tasks_per_worker the tasks sent back do not count against the worker. */
typedef struct {
  CmdGen gen;
  guint ok;
} BigCtx;

static void
big_result (const TrResult *r, gpointer data)
{
  BigCtx *c = data;
  g_assert_no_error (r->error);
  g_assert_cmpuint (r->len, ==, 10485760);
  g_assert_true (r->data[0] == 'x' && r->data[r->len - 1] == 'x');
  c->ok++;
}

static void
test_big_outputs_share_frames (Fixture *f, gconstpointer data)
{
  (void) data;
  for (guint max_tasks = 0; max_tasks <= 15; max_tasks += 15) {
    TrPoolOptions o = { .workers = 1, .batch = 10, .max_tasks_per_worker = max_tasks };
    g_autoptr (GError) error = NULL;
    g_autoptr (TrPool) pool = tr_pool_new (f->plugin, f->config, &o, &error);
    g_assert_no_error (error);
    static const char *const big[] = { "bytes:10485760" };
    BigCtx c = { .gen = { big, 1, 40, 0 } };
    TrStats st;
    g_assert_true (tr_pool_stream (pool, cmd_gen, big_result, &c, FALSE, &st, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (st.succeeded, ==, 40);
    g_assert_cmpuint (c.ok, ==, 40);
  }
}

/* A worker answers a frame with a record for the wrong task second.  The task it
 * answered first keeps its result (it is not run again); the worker is killed, and the
 * rest of the frame runs on its replacement: every task done exactly once, on its first
 * attempt.  Tasks come from a stream, whose first tasks go at once and the rest in one
 * group, so that frames of several tasks form whatever the timing. */
typedef struct {
  guint64 made, n, got;
  GHashTable *seen;
} EchoCtx;

static TrNext
echo_gen (gpointer data, TrTask *task, GError **error)
{
  (void) error;
  EchoCtx *c = data;
  if (c->made == c->n)
    return TR_NEXT_END;
  g_autofree char *text = g_strdup_printf ("t%" G_GUINT64_FORMAT, ++c->made);
  tr_task_set_payload (task, text, strlen (text));
  return TR_NEXT_TASK;
}

static void
echo_check (const TrResult *r, gpointer data)
{
  EchoCtx *c = data;
  g_assert_no_error (r->error);
  g_assert_cmpuint (r->attempt, ==, 1);
  g_assert_cmpmem (r->data, r->len, r->payload, r->sent);
  g_autofree char *text = g_strdup_printf ("t%" G_GUINT64_FORMAT, r->seq);
  g_assert_cmpmem (r->data, r->len, text, strlen (text));
  /* the first task of the forged frame was answered by the first worker */
  if (g_str_equal (text, fake_forged_first))
    g_assert_cmpint (r->worker_pid, ==, 100000);
  g_assert_true (g_hash_table_add (c->seen, g_memdup2 (&r->seq, sizeof r->seq)));
  c->got++;
}

static void
run_forged_stream (Fixture *f, guint batch, guint64 tasks, guint32 forge_min, guint64 forge_from_id)
{
  g_atomic_int_set (&fake_spawns, 0);
  g_atomic_int_set (&fake_forged, 0);
  fake_forged_first[0] = '\0';
  fake_forge_min = forge_min;
  fake_forge_from_id = forge_from_id;
  TrPoolOptions o = { .workers = 1, .batch = batch };
  g_autoptr (GError) error = NULL;
  g_autoptr (TrPool) pool = tr_pool_new_on_link (&fake_link, f->plugin, f->config, &o, &error);
  g_assert_no_error (error);
  EchoCtx c = { .n = tasks, .seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL) };
  TrStats st;
  g_assert_true (tr_pool_stream (pool, echo_gen, echo_check, &c, FALSE, &st, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (st.succeeded, ==, c.n);
  g_assert_cmpuint (c.got, ==, c.n);
  g_assert_cmpint (g_atomic_int_get (&fake_forged), ==, 1);
  g_assert_cmpint (g_atomic_int_get (&fake_spawns), ==, 2);
  g_assert_cmpstr (fake_forged_first, !=, "");
  g_hash_table_unref (c.seen);
}

static void
test_wrong_id_keeps_answered (Fixture *f, gconstpointer data)
{
  (void) data;
  run_forged_stream (f, 4, 24, 3, 0);
}

/* The same in a stream of tiny tasks, whose frames of many are bundles: a wrong id in
 * the answer to one makes it single tasks again, and the same rule holds.  Only a frame
 * of 64 or more from the 1,000th task on is answered wrongly: the first tasks of a
 * stream (at most 516) go singly, and the tail is far off. */
static void
test_wrong_id_in_a_bundle (Fixture *f, gconstpointer data)
{
  (void) data;
  run_forged_stream (f, 0, 20000, 64, 1000);
}

/* One quick task first is no evidence that the rest are quick: with batch = auto, the
 * 40 half-second tasks after it must spread over the 8 workers (about 2.5 s), not go in
 * frames made for the quick one (9.5 s before frames were capped by the tasks timed). */
static void
test_quick_first_task_does_not_bunch_long_ones (void)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_testkit ("workers = 8\n",
                               "tasks = 41\nop = sleep:500\nbad_task = 1\nbad_op = echo:quick\n"
                               "quiet = yes\n", NULL, &out, &err);
  double took = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("%s; %.2f s", err, took);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpfloat (took, <, 6.0); /* generous: 5 rounds of 0.5 s is the whole job */
}

/* The tasks the generator made: the first number of taskrun's summary line. */
static guint64
summary_total (const char *err)
{
  guint64 made = 0;
  for (const char *at = strstr (err, "taskrun: "); at && !made; at = strstr (at + 1, "taskrun: "))
    made = g_ascii_strtoull (at + 9, NULL, 10);
  return made;
}

/* The stream's window follows the measured depth: 128 workers on tasks of a second
 * hold one task each, and the parent does not make a million tasks ahead of them (a
 * fixed 8,192 per worker made 1.05M of them, 60 MB, here; 2.4 GB at -j 1024). */
static void
test_window_follows_task_time (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_testkit_job (dir, "workers = 128\n",
                                         "tasks = 1100000\nop = sleep:1000\nquiet = yes\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_usleep (3 * G_USEC_PER_SEC); /* the workers started; a fixed window fills in 1 s */
  kill (pid, SIGTERM);
  g_usleep (200000);
  kill (pid, SIGTERM);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 30, dir, &out, &err), ==, 143);
  g_test_message ("%s", err);
  /* the summary's first number: the tasks the generator made */
  guint64 made = summary_total (err);
  g_assert_cmpuint (made, >, 0);
  g_assert_cmpuint (made, <, 100000); /* generous: about 4,300 */
  tt_rmtree (dir);
}

/* The window is bounded by payload bytes too: tasks of 100 KB payloads are not made
 * thousands ahead of two workers (the count alone let 4,160 of them, 416 MB, wait). */
static void
test_window_bounded_by_bytes (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *filler = g_strnfill (100000, 'x');
  g_autofree char *keys = g_strdup_printf ("tasks = 5000\nop = sleepecho:1000:%s\nquiet = yes\n", filler);
  g_autofree char *job = tt_testkit_job (dir, "workers = 2\n", keys);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  g_usleep (2 * G_USEC_PER_SEC);
  kill (pid, SIGTERM);
  g_usleep (200000);
  kill (pid, SIGTERM);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_wait_taskrun (pid, 30, dir, &out, &err), ==, 143);
  guint64 made = summary_total (err);
  g_test_message ("%" G_GUINT64_FORMAT " tasks made", made);
  g_assert_cmpuint (made, >, 0);
  g_assert_cmpuint (made, <, 1500); /* 16 MiB of them: about 170 */
  tt_rmtree (dir);
}

static void
count_call (const TrResult *r, gpointer data)
{
  (void) r;
  (*(int *) data)++;
}

/* A task submitted after close and join is refused; if the pool is then freed, its
 * error callback still runs and its handle is done (it once read the freed pool). */
static void
test_refused_after_join_then_freed (Fixture *f, gconstpointer data)
{
  (void) data;
  TrPool *pool = new_pool (f, 1, 0);
  tr_pool_close (pool);
  tr_pool_join (pool);
  int errors = 0;
  g_autoptr (GBytes) in = cmd ("echo:late");
  TrAsync *a = tr_pool_apply_async (pool, "late", in, count_call, count_call, &errors);
  tr_pool_free (pool);
  g_assert_cmpint (errors, ==, 1);
  g_assert_true (tr_async_wait (a, -1));
  g_assert_error (tr_async_peek_result (a)->error, TR_TASK_ERROR, TR_TASK_ERROR_CANCELLED);
  tr_async_unref (a);
}

/* The longest timeout is "for good", not an overflow (UBSan saw it). */
static void
test_wait_longest_timeout (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  g_autoptr (GBytes) in = cmd ("sleepecho:20:x");
  g_autoptr (TrAsync) a = tr_pool_apply_async (pool, "x", in, NULL, NULL, NULL);
  g_assert_true (tr_async_wait (a, G_MAXINT64));
  const TrResult *r = tr_async_peek_result (a);
  g_assert_no_error (r->error);
  g_assert_cmpmem (r->data, r->len, "x", 1);
}

static gpointer
apply_from_thread (gpointer pool)
{
  g_autoptr (GBytes) in = cmd ("echo:x");
  return tr_pool_apply (pool, "x", in, NULL);
}

/* Another thread's call is refused with a critical, not run into the pool's state (four
 * threads applying at once corrupted it). */
static void
test_other_thread_refused (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 1, 0);
  g_test_expect_message ("taskrun", G_LOG_LEVEL_CRITICAL,
                         "tr_pool_apply: a pool is used only by the thread that made it*");
  GThread *t = g_thread_new ("other", apply_from_thread, pool);
  gpointer got = g_thread_join (t);
  g_test_assert_expected_messages ();
  g_assert_null (got);
  g_autofree char *mine = apply_ok (pool, "echo:mine");
  g_assert_cmpstr (mine, ==, "mine");
}

/* A child after fork() that frees its copy of the pool neither stops the parent's
 * workers nor waits for an I/O thread it does not have (it once hung, or killed them). */
static void
test_fork_child_frees_its_copy (Fixture *f, gconstpointer data)
{
  (void) data;
  g_autoptr (TrPool) pool = new_pool (f, 2, 0);
  g_autoptr (GBytes) in = cmd ("sleepecho:300:busy");
  g_autoptr (TrAsync) running = tr_pool_apply_async (pool, "busy", in, NULL, NULL, NULL);
  pid_t child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0) {
    tr_pool_free (pool);
    _exit (0);
  }
  int status = tt_wait_pid (child, 30, NULL);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_assert_true (tr_async_wait (running, -1));
  g_assert_no_error (tr_async_peek_result (running)->error);
  g_autofree char *after = apply_ok (pool, "echo:after");
  g_assert_cmpstr (after, ==, "after");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/pool/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("apply", test_apply);
  ADD ("refused-after-join-then-freed", test_refused_after_join_then_freed);
  ADD ("wait-longest-timeout", test_wait_longest_timeout);
  ADD ("other-thread-refused", test_other_thread_refused);
  ADD ("fork-child-frees-its-copy", test_fork_child_frees_its_copy);
  ADD ("apply-async-wait", test_apply_async_wait);
  ADD ("task-times-after-calibration", test_task_times_after_calibration);
  ADD ("map-keeps-order", test_map_keeps_order);
  ADD ("map-reports-failure", test_map_reports_failure);
  ADD ("stream-unordered", test_stream_unordered);
  ADD ("stream-ordered", test_stream_ordered);
  ADD ("callbacks-serialised", test_callbacks_serialised);
  ADD ("close-join-waits", test_close_join_waits);
  ADD ("terminate", test_terminate);
  ADD ("terminate-bundled-stream", test_terminate_bundled_stream);
  ADD ("workers-reused", test_workers_reused);
  ADD ("recycling", test_recycling);
  ADD ("crash-fails-one-task", test_crash_fails_one_task);
  ADD ("error-keeps-domain", test_error_keeps_domain);
  ADD ("terminate-from-callback-stops-stream", test_terminate_from_callback_stops_stream);
  g_test_add_func ("/pool/init-failure", test_init_failure);
  g_test_add_func ("/pool/start-timeout", test_start_timeout);
  g_test_add_func ("/pool/start-first-failure-kept", test_start_first_failure_kept);
  ADD ("ordered-window", test_ordered_window);
  ADD ("tail-shared", test_tail_shared);
  ADD ("no-inherited-fds", test_no_inherited_fds);
  ADD ("results-not-held", test_results_not_held);
  ADD ("retry-after-close", test_retry_after_close);
  ADD ("big-outputs-share-frames", test_big_outputs_share_frames);
  ADD ("wrong-id-keeps-answered", test_wrong_id_keeps_answered);
  ADD ("wrong-id-in-a-bundle", test_wrong_id_in_a_bundle);
  g_test_add_func ("/pool/quick-first-task-does-not-bunch-long-ones",
                   test_quick_first_task_does_not_bunch_long_ones);
  g_test_add_func ("/pool/window-follows-task-time", test_window_follows_task_time);
  g_test_add_func ("/pool/window-bounded-by-bytes", test_window_bounded_by_bytes);
  return g_test_run ();
}
