/* task-clock.h — how a worker times its tasks (see task-clock.c). */
#ifndef TASKRUN_TASK_CLOCK_H
#define TASKRUN_TASK_CLOCK_H

#include <glib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define TR_TASK_CLOCK_HAVE_TSC 1
#else
#define TR_TASK_CLOCK_HAVE_TSC 0
#endif

typedef struct {
  gboolean tsc_allowed;  /* the kernel keeps its own time by the TSC: the TSC is steady */
  double ns_per_tick;    /* 0 until frames have calibrated the TSC */
  guint64 frame_tick;    /* the TSC when the frame began */
  gint64 frame_ns;       /* the monotonic clock then, in nanoseconds */
  gboolean frame_exact;  /* that pair was read without a pause between the two reads */
  guint64 cal_ticks;     /* TSC ticks over the frames timed so far */
  double cal_ns;         /* and the monotonic nanoseconds they took */
} TrTaskClock;

void tr_task_clock_init (TrTaskClock *clock);
/* The monotonic clock in nanoseconds, read from the system. */
gint64 tr_task_clock_mono_ns (void);
/* A frame begins: returns the monotonic time now, in nanoseconds. */
gint64 tr_task_clock_frame_begin (TrTaskClock *clock);
/* The frame ended: calibrates the TSC by the time it took. */
void tr_task_clock_frame_end (TrTaskClock *clock);

/* The monotonic time now, in nanoseconds, as cheaply as the machine allows: within a
 * frame, once calibrated, from the TSC. */
static inline gint64
tr_task_clock_now (const TrTaskClock *clock)
{
#if TR_TASK_CLOCK_HAVE_TSC
  if (clock->ns_per_tick > 0) {
    /* signed, and never before the frame began: a CPU whose TSC is a little behind */
    gint64 ticks = (gint64) (__rdtsc () - clock->frame_tick);
    return clock->frame_ns + (ticks > 0 ? (gint64) ((double) ticks * clock->ns_per_tick) : 0);
  }
#endif
  return tr_task_clock_mono_ns ();
}

#endif
