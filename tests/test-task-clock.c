/* test-task-clock.c — a worker's task clock: it follows the monotonic clock, before and
 * after the frames it runs calibrate the TSC; a TSC read that lands before the frame's
 * start (a CPU a little behind) counts as no time; frames read while the process was
 * paused do not calibrate it. */
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

#define SPIN_NS (5 * 1000 * 1000)

/* A 5 ms frame: the task clock's span over it, and the monotonic clock's bracket around
 * it.  The span must cover the spin and fit in the bracket; a pause of this process
 * anywhere only widens the bracket, so a loaded machine cannot fail the checks. */
typedef struct {
  gint64 span, bracket;
} Frame;

static Frame
run_frame (TrTaskClock *clock)
{
  gint64 mono0 = tr_task_clock_mono_ns ();
  gint64 begin = tr_task_clock_frame_begin (clock);
  spin (SPIN_NS);
  gint64 now = tr_task_clock_now (clock);
  gint64 mono1 = tr_task_clock_mono_ns ();
  tr_task_clock_frame_end (clock);
  return (Frame) { .span = now - begin, .bracket = mono1 - mono0 };
}

static void
test_follows_monotonic (void)
{
  TrTaskClock clock;
  tr_task_clock_init (&clock);
  g_test_message ("the TSC %s", clock.tsc_allowed ? "may be used" : "is not used here");
  /* before calibration every read is the monotonic clock's: exact bounds */
  g_assert_cmpfloat (clock.ns_per_tick, ==, 0);
  Frame first = run_frame (&clock);
  g_assert_cmpint (first.span, >=, SPIN_NS);
  g_assert_cmpint (first.span, <=, first.bracket);
  /* 10 ms of frames calibrate it where the TSC is allowed (a frame read while the test
   * was paused does not count: give it a few more) */
  for (guint i = 0; i < 20 && clock.tsc_allowed && clock.ns_per_tick == 0; i++)
    run_frame (&clock);
  if (!clock.tsc_allowed) {
    g_test_skip ("the kernel does not keep time by the TSC here: only the monotonic clock is read");
    return;
  }
  g_assert_cmpfloat (clock.ns_per_tick, >, 0);
  for (guint i = 0; i < 3; i++) {
    Frame f = run_frame (&clock);
    g_test_message ("calibrated frame %u: task clock %.3f ms, spin 5 ms, bracket %.3f ms", i + 1,
                    f.span / 1e6, f.bracket / 1e6);
    /* within 20%: the rate, not a factor off */
    g_assert_cmpfloat ((double) f.span, >, 0.8 * SPIN_NS);
    g_assert_cmpfloat ((double) f.span, <, 1.2 * (double) f.bracket);
  }
}

static void
test_tsc_behind (void)
{
#if TR_TASK_CLOCK_HAVE_TSC
  /* as if the frame began on a CPU whose TSC is a second ahead of this one's */
  TrTaskClock clock = { .tsc_allowed = TRUE, .ns_per_tick = 0.5, .frame_ns = 1000000 };
  clock.frame_tick = __rdtsc () + G_GUINT64_CONSTANT (2000000000);
  g_assert_cmpint (tr_task_clock_now (&clock), ==, clock.frame_ns);
  /* and a frame's end before its beginning turns the TSC off for good */
  tr_task_clock_frame_end (&clock);
  g_assert_false (clock.tsc_allowed);
  g_assert_cmpfloat (clock.ns_per_tick, ==, 0);
  gint64 before = tr_task_clock_mono_ns ();
  gint64 t = tr_task_clock_now (&clock);
  g_assert_cmpint (t, >=, before);
  g_assert_cmpint (t, <=, tr_task_clock_mono_ns ());
#else
  g_test_skip ("no TSC on this architecture");
#endif
}

static void
test_paused_frames_do_not_calibrate (void)
{
#if TR_TASK_CLOCK_HAVE_TSC
  TrTaskClock clock = { .tsc_allowed = TRUE };
  /* a frame whose start was read across a pause (frame_exact FALSE), 20 ms long */
  tr_task_clock_frame_begin (&clock);
  clock.frame_exact = FALSE;
  spin (20 * 1000 * 1000);
  tr_task_clock_frame_end (&clock);
  g_assert_cmpfloat (clock.cal_ns, ==, 0);
  g_assert_cmpfloat (clock.ns_per_tick, ==, 0);
#else
  g_test_skip ("no TSC on this architecture");
#endif
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/task-clock/follows-monotonic", test_follows_monotonic);
  g_test_add_func ("/task-clock/tsc-behind", test_tsc_behind);
  g_test_add_func ("/task-clock/paused-frames-do-not-calibrate", test_paused_frames_do_not_calibrate);
  return g_test_run ();
}
