/* task-clock.c — how a worker times its tasks.
 *
 * Owns: a worker's clock for task run times and start times.  Every task is timed, and a
 * read of the system's monotonic clock (vDSO, about 20 ns on a virtual machine) was a
 * third of a worker's time for a one-number task.  Where the kernel itself keeps time
 * by the TSC (its clocksource is "tsc": the TSC runs at a constant rate and agrees
 * across CPUs), tasks are timed by the TSC instead (about 10 ns), scaled by the rate
 * measured against the monotonic clock over the frames run so far; the monotonic clock
 * is then read only twice per frame.  Until a millisecond of frames has calibrated the
 * rate, and on other machines, every read is the monotonic clock's.  A TSC that runs
 * backwards or at an implausible rate is not used again.
 * Does not own: what the times are used for (worker.c writes them into results).
 */
#include "task-clock.h"

#define CALIBRATE_NS 1e6        /* of frames before the TSC is trusted */
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

gint64
tr_task_clock_frame_begin (TrTaskClock *clock)
{
#if TR_TASK_CLOCK_HAVE_TSC
  if (clock->tsc_allowed)
    clock->frame_tick = __rdtsc ();
#endif
  clock->frame_ns = tr_task_clock_mono_ns ();
  return clock->frame_ns;
}

void
tr_task_clock_frame_end (TrTaskClock *clock)
{
#if TR_TASK_CLOCK_HAVE_TSC
  if (!clock->tsc_allowed)
    return;
  guint64 tick = __rdtsc ();
  gint64 ns = tr_task_clock_mono_ns ();
  if (tick < clock->frame_tick) {
    clock->tsc_allowed = FALSE;
    clock->ns_per_tick = 0;
    return;
  }
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
