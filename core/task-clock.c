/* task-clock.c — how a worker times its tasks.
 *
 * Owns: a worker's clock for task run times and start times.  Every task is timed, and a
 * read of the system's monotonic clock (vDSO, about 20 ns on a virtual machine) was a
 * third of a worker's time for a one-number task.  Where the kernel itself keeps time
 * by the TSC (its clocksource is "tsc": the TSC runs at a constant rate and agrees
 * across CPUs), tasks are timed by the TSC instead (about 10 ns), scaled by the rate
 * measured against the monotonic clock over the frames run so far; the monotonic clock
 * is then read only a few times per frame.  Each end of a frame pairs a TSC read with the
 * monotonic clocks read just before and after it; a pair with a pause between those (the
 * process preempted, the host holding the CPU) does not count towards the rate.  Until
 * 10 ms of frames have calibrated it, and on other machines, every read is the monotonic
 * clock's.  A TSC that runs backwards or at an implausible rate is not used again.
 * Does not own: what the times are used for (worker.c writes them into results).
 */
#include "task-clock.h"

#define CALIBRATE_NS 1e7        /* of frames before the TSC is trusted */
#define PAIR_SLACK_NS 20000     /* a pair read further apart than this is not exact */
#define TICK_NS_MIN (1.0 / 20)  /* a TSC faster than 20 GHz ... */
#define TICK_NS_MAX 10.0        /* ... or slower than 100 MHz is not one */

gint64
tr_task_clock_mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

void
tr_task_clock_init (TrTaskClock *clock)
{
  *clock = (TrTaskClock) { 0 };
#if TR_TASK_CLOCK_HAVE_TSC
  g_autofree char *source = NULL;
  if (g_file_get_contents ("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                           &source, NULL, NULL))
    clock->tsc_allowed = g_str_equal (g_strstrip (source), "tsc");
#endif
}

/* Reads the TSC between two reads of the monotonic clock (three tries at most): *ns is
 * the middle of those, and the result tells whether they were close enough to pair them
 * exactly. */
static gboolean
read_pair (guint64 *tick, gint64 *ns)
{
  for (guint attempt = 0;; attempt++) {
    gint64 before = tr_task_clock_mono_ns ();
#if TR_TASK_CLOCK_HAVE_TSC
    *tick = __rdtsc ();
#else
    *tick = 0;
#endif
    gint64 after = tr_task_clock_mono_ns ();
    *ns = before + (after - before) / 2;
    if (after - before <= PAIR_SLACK_NS || attempt == 2)
      return after - before <= PAIR_SLACK_NS;
  }
}

gint64
tr_task_clock_frame_begin (TrTaskClock *clock)
{
  if (clock->tsc_allowed)
    clock->frame_exact = read_pair (&clock->frame_tick, &clock->frame_ns);
  else
    clock->frame_ns = tr_task_clock_mono_ns ();
  return clock->frame_ns;
}

void
tr_task_clock_frame_end (TrTaskClock *clock)
{
#if TR_TASK_CLOCK_HAVE_TSC
  if (!clock->tsc_allowed)
    return;
  guint64 tick;
  gint64 ns;
  gboolean exact = read_pair (&tick, &ns);
  if (tick < clock->frame_tick) {
    clock->tsc_allowed = FALSE;
    clock->ns_per_tick = 0;
    return;
  }
  if (!exact || !clock->frame_exact)
    return;
  clock->cal_ticks += tick - clock->frame_tick;
  clock->cal_ns += (double) (ns - clock->frame_ns);
  if (clock->cal_ns < CALIBRATE_NS || clock->cal_ticks == 0)
    return;
  double rate = clock->cal_ns / (double) clock->cal_ticks;
  if (rate < TICK_NS_MIN || rate > TICK_NS_MAX) {
    clock->tsc_allowed = FALSE;
    clock->ns_per_tick = 0;
    return;
  }
  clock->ns_per_tick = rate;
#else
  (void) clock;
#endif
}
