/* test-compute.c — the compute plugin through the taskrun binary: exact prime counts and
 * sums of squares (past 2^64, checked against the closed form), answers that do not
 * depend on the chunk or the worker count, 128-bit overflow reported instead of a wrong
 * number, bad ranges refused with exit 2 naming the key, ordered results under batching,
 * and a generous memory bound for 2M tasks (a leak per task would break it). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

typedef unsigned __int128 u128;

/* Runs conf/compute.ini with overrides; returns stdout's first line (the total) or NULL. */
static char *
compute (const char *op, guint64 start, guint64 end, guint64 chunk, int workers, int *status,
         char **err_out)
{
  g_autofree char *s_op = g_strdup_printf ("compute.op=%s", op);
  g_autofree char *s_start = g_strdup_printf ("compute.start=%" G_GUINT64_FORMAT, start);
  g_autofree char *s_end = g_strdup_printf ("compute.end=%" G_GUINT64_FORMAT, end);
  g_autofree char *s_chunk = g_strdup_printf ("compute.chunk=%" G_GUINT64_FORMAT, chunk);
  g_autofree char *j = g_strdup_printf ("%d", workers);
  const char *args[] = { "-c", "conf/compute.ini", "-j", j, "-s", s_op, "-s", s_start, "-s", s_end,
                         "-s", s_chunk, NULL };
  g_autofree char *out = NULL, *err = NULL;
  *status = tt_run_taskrun (args, NULL, NULL, &out, &err);
  if (err_out)
    *err_out = g_steal_pointer (&err);
  if (*status != 0)
    return NULL;
  return g_strndup (out, strcspn (out, "\n"));
}

static void
expect_total (const char *op, guint64 start, guint64 end, guint64 chunk, int workers,
              const char *want)
{
  int status;
  g_autofree char *err = NULL;
  g_autofree char *got = compute (op, start, end, chunk, workers, &status, &err);
  if (status != 0 || g_strcmp0 (got, want) != 0)
    g_error ("%s [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") chunk %" G_GUINT64_FORMAT
             " -j %d: got %s (exit %d), want %s\n%s", op, start, end, chunk, workers, got, status,
             want, err);
}

static void
test_prime_counts (void)
{
  /* references: a separate Miller-Rabin count (and the classic pi(10^6), pi(10^7)) */
  expect_total ("primes", 0, 100, 7, 2, "25");
  expect_total ("primes", 0, 1000000, 100000, 2, "78498");
  expect_total ("primes", 0, 10000000, 100000, 2, "664579");
  expect_total ("primes", 1000000, 1001000, 100, 2, "75");
  expect_total ("primes", 4294967000, 4294968000, 333, 2, "47");
  expect_total ("primes", 1000000000000, 1000000002000, 300, 2, "70");
  expect_total ("primes", G_GUINT64_CONSTANT (9000000000000000000),
                G_GUINT64_CONSTANT (9000000000000001000), 100, 2, "20");
  expect_total ("primes", 5, 5, 10, 1, "0"); /* an empty range */
}

static void
test_sum_squares_closed_form (void)
{
  static const guint64 ends[] = { 1, 2, 1000, 1000000, 10000000 }; /* the last passes 2^64 */
  for (gsize i = 0; i < G_N_ELEMENTS (ends); i++) {
    u128 n = ends[i];
    u128 want = (n - 1) * n * (2 * n - 1) / 6;
    g_autofree char *text = tt_u128_text (want);
    expect_total ("sum-squares", 0, ends[i], 99991, 2, text);
  }
  u128 n = 10000000;
  g_assert_true ((n - 1) * n * (2 * n - 1) / 6 > (u128) G_MAXUINT64);
}

static void
test_independent_of_chunk_and_workers (void)
{
  static const guint64 chunks[] = { 1, 7, 1000, 99991, 10000000 };
  for (gsize c = 0; c < G_N_ELEMENTS (chunks); c++)
    for (int w = 1; w <= 3; w++) {
      expect_total ("primes", 0, 200000, chunks[c], w, "17984");
      expect_total ("sum-squares", 0, 200000, chunks[c], w, "2666646666700000");
    }
}

static void
test_overflow (void)
{
  int status;
  g_autofree char *err = NULL;
  /* one task's sum passes 2^128: that task fails */
  g_autofree char *got = compute ("sum-squares", G_GUINT64_CONSTANT (9000000000000000000),
                                  G_GUINT64_CONSTANT (9000000000000000100), 100, 1, &status, &err);
  g_assert_null (got);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "does not fit in 128 bits"));
  g_assert_nonnull (strstr (err, "no total printed"));
  /* every task fits, the total does not */
  g_autofree char *err2 = NULL;
  g_autofree char *got2 = compute ("sum-squares", G_GUINT64_CONSTANT (9000000000000000000),
                                   G_GUINT64_CONSTANT (9000000000000000008), 4, 2, &status, &err2);
  g_assert_null (got2);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err2, "sum of squares over [9000000000000000000, 9000000000000000008) "
                                  "does not fit in 128 bits: no total printed"));
}

static void
test_bad_ranges (void)
{
  static const struct {
    const char *set;
    const char *expect;
  } cases[] = {
    { "compute.start=20", "'start' (20) is greater than 'end' (10)" },
    { "compute.chunk=0", "int 'chunk': 0 is out of range" },
    { "compute.op=cubes", "enum 'op': 'cubes' is not one of: primes, sum-squares" },
    { "compute.start=-5", "int 'start': -5 is out of range" },
    { "compute.end=-1", "int 'end': -1 is out of range" },
    { "compute.end=ten", "int 'end': 'ten' is not a whole number" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    const char *args[] = { "-c", "conf/compute.ini", "-s", "compute.end=10", "-s", cases[i].set, NULL };
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 2);
    g_assert_cmpstr (out, ==, "");
    if (!strstr (err, cases[i].expect))
      g_error ("-s %s: stderr \"%s\" lacks \"%s\"", cases[i].set, err, cases[i].expect);
  }
  /* a job file without the required end names the section's line */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *job = tt_write (dir, "c.ini", "[taskrun]\nplugin = compute\n[compute]\nop = primes\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 2);
  g_autofree char *want = g_strdup_printf ("%s:3: [compute] missing required key 'end'", job);
  g_assert_nonnull (strstr (err, want));
  tt_rmtree (dir);
}

/* ordered = yes hands results over in generator order, whatever the batching. */
static void
test_ordered_under_batching (gconstpointer data)
{
  const char *batch = data;
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *keys = g_strdup_printf ("workers = 2\nordered = yes\nbatch = %s\n", batch);
  g_autofree char *job = tt_testkit_job (dir, keys, "tasks = 20000\nop = echo:%n\n");
  const char *args[] = { "-c", job, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, dir, NULL, &out, &err), ==, 0);
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 20001);
  for (int i = 0; i < 20000; i++) {
    g_autofree char *want = g_strdup_printf ("%d %d", i + 1, i + 1);
    g_assert_cmpstr (lines[i], ==, want);
  }
  tt_rmtree (dir);
}

/* 2M tiny tasks: the largest process stays far below 64 MiB. */
static void
test_memory_bound (void)
{
#if defined(__SANITIZE_ADDRESS__)
  g_test_skip ("AddressSanitizer's shadow memory inflates RSS; it checks leaks itself");
  return;
#endif
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *conf = g_build_filename (tt_source_root (), "conf", "compute.ini", NULL);
  const char *args[] = { "-c", conf, "-j", "2", "-s", "compute.op=sum-squares", "-s",
                         "compute.end=2000000", "-s", "compute.chunk=1", "-q", NULL };
  GPid pid = tt_spawn_taskrun (args, dir, NULL);
  struct rusage ru;
  int status = tt_wait_pid (pid, 60, &ru); /* generous: the run takes ~1 s */
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  g_test_message ("taskrun's peak RSS for 2M tasks: %ld KiB", ru.ru_maxrss);
  g_assert_cmpint (ru.ru_maxrss, <, 64 * 1024);
  g_autofree char *out = g_build_filename (dir, "out.txt", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (out, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "2666664666667000000\n");
  tt_rmtree (dir);
}

/* --resume cannot give a total: the skipped tasks' results are not in the run. */
static void
test_resume_no_wrong_total (void)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *log = g_build_filename (dir, "log.tsv", NULL);
  const char *first[] = { "-c", "conf/compute.ini", "-s", "compute.end=100000", "-s",
                          "compute.chunk=1000", "--joblog", log, NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (first, NULL, NULL, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, "9592\n");
  const char *again[] = { "-c", "conf/compute.ini", "-s", "compute.end=100000", "-s",
                          "compute.chunk=1000", "--joblog", log, "--resume", NULL };
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (again, NULL, NULL, &out2, &err2), ==, 1);
  g_assert_cmpstr (out2, ==, "");
  g_assert_nonnull (strstr (err2, "100 tasks were skipped (--resume)"));
  tt_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/compute/prime-counts", test_prime_counts);
  g_test_add_func ("/compute/sum-squares-closed-form", test_sum_squares_closed_form);
  g_test_add_func ("/compute/independent-of-chunk-and-workers", test_independent_of_chunk_and_workers);
  g_test_add_func ("/compute/overflow", test_overflow);
  g_test_add_func ("/compute/bad-ranges", test_bad_ranges);
  g_test_add_data_func ("/compute/ordered/batch-auto", "auto", test_ordered_under_batching);
  g_test_add_data_func ("/compute/ordered/batch-7", "7", test_ordered_under_batching);
  g_test_add_func ("/compute/memory-bound", test_memory_bound);
  g_test_add_func ("/compute/resume-no-wrong-total", test_resume_no_wrong_total);
  return g_test_run ();
}
