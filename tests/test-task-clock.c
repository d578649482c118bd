/* test-task-clock.c — a worker's task clock: it follows the monotonic clock, before and
 * after the frames it runs calibrate the TSC, and never goes backwards within a frame. */
#include "testutil.h"
#include "task-clock.h"

/* Busy for `ns` nanoseconds of the monotonic clock (a sleep would let the CPU idle). */
static void
spin (gint64 ns)
{
  gint64 until = tr_task_clock_mono_ns () + ns;
  while (tr_task_clock_mono_ns () < until)
    ;
}

/* Elapsed time by the task clock over a 5 ms frame, against the monotonic clock. */
static double
frame_ratio (TrTaskClock *clock)
{
  gint64 begin = tr_task_clock_frame_begin (clock);
  gint64 mono0 = tr_task_clock_mono_ns ();
  spin (5 * 1000 * 1000);
  gint64 now = tr_task_clock_now (clock);
  gint64 mono1 = tr_task_clock_mono_ns ();
  tr_task_clock_frame_end (clock);
  /* the task clock was read between the two monotonic reads: its span lies within theirs */
  return (double) (now - begin) / (double) (mono1 - mono0 + (mono0 - begin));
}

static void
test_follows_monotonic (void)
{
  TrTaskClock clock;
  tr_task_clock_init (&clock);
  g_test_message ("the TSC %s", clock.tsc_allowed ? "may be used" : "is not used here");
  /* before calibration every read is the monotonic clock's */
  g_assert_cmpfloat (clock.ns_per_tick, ==, 0);
  double first = frame_ratio (&clock);
  g_assert_cmpfloat (first, >, 0.9);
  g_assert_cmpfloat (first, <=, 1.0);
  /* one 5 ms frame calibrates; the next ones read the TSC where it is allowed */
  g_assert_true (!clock.tsc_allowed || clock.ns_per_tick > 0);
  for (guint i = 0; i < 3; i++) {
    double r = frame_ratio (&clock);
    g_test_message ("frame %u: task clock / monotonic clock = %.4f", i + 2, r);
    /* generous: a preemption between the paired reads widens one span, not a factor */
    g_assert_cmpfloat (r, >, 0.8);
    g_assert_cmpfloat (r, <, 1.2);
  }
}

static void
test_never_backwards_in_a_frame (void)
{
  TrTaskClock clock;
  tr_task_clock_init (&clock);
  for (guint f = 0; f < 3; f++) {
    gint64 prev = tr_task_clock_frame_begin (&clock);
    for (guint i = 0; i < 100000; i++) {
      gint64 t = tr_task_clock_now (&clock);
      g_assert_cmpint (t, >=, prev);
      prev = t;
    }
    spin (1000 * 1000);
    tr_task_clock_frame_end (&clock);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/task-clock/follows-monotonic", test_follows_monotonic);
  g_test_add_func ("/task-clock/never-backwards-in-a-frame", test_never_backwards_in_a_frame);
  return g_test_run ();
}
