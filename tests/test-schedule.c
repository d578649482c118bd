/* test-schedule.c — the pool's dispatch policy, number by number.
 *
 * Built from core/pool/schedule.c and GLib alone: no pool, no worker, no clock.  Each
 * table pins what the policy gives today, so that a change of a constant or a rule
 * shows here as a changed number, with the reason to be written beside it.
 */
#include "schedule.h"

#include <math.h>

#define MS 1000000.0 /* ns */
#define US 1000.0

static TrSchedPool
timed_pool (double mean_ns, guint64 timed)
{
  return (TrSchedPool) { .have_mean = TRUE, .mean_ns = mean_ns, .timed = timed };
}

/* frame size for task times from 100 ns to 1 s, with plenty of evidence */
static void
test_frame_size (void)
{
  static const struct {
    double mean_ns;
    guint frame;
  } table[] = {
    { 100, 4096 },    /* 20,000 would fit in 2 ms: capped at AUTO_BATCH_MAX */
    { 1 * US, 2000 },
    { 10 * US, 200 },
    { 45 * US, 44 },
    { 100 * US, 20 },
    { 1 * MS, 2 },
    { 1.5 * MS, 1 },
    { 2 * MS, 1 },    /* AUTO_TARGET_NS: a frame of its own */
    { 1000 * MS, 1 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    TrSchedPool p = timed_pool (table[i].mean_ns, 1000000);
    g_assert_cmpuint (tr_sched_frame_size (&p), ==, table[i].frame);
  }
  /* before any task was timed: one task per frame */
  TrSchedPool fresh = { 0 };
  g_assert_cmpuint (tr_sched_frame_size (&fresh), ==, 1);
  /* the evidence cap: no more tasks in a frame than were timed */
  TrSchedPool few = timed_pool (1 * US, 10);
  g_assert_cmpuint (tr_sched_frame_size (&few), ==, 10);
  few.timed = 0;
  g_assert_cmpuint (tr_sched_frame_size (&few), ==, 1);
  /* batch is taken as it is, and a timeout makes every frame one task */
  TrSchedPool batch = timed_pool (1 * US, 1000000);
  batch.batch = 7;
  g_assert_cmpuint (tr_sched_frame_size (&batch), ==, 7);
  batch.per_task_timeout = TRUE;
  g_assert_cmpuint (tr_sched_frame_size (&batch), ==, 1);
}

static void
test_depth (void)
{
  static const struct {
    double mean_ns;
    guint64 timed;
    guint latency_us;
    guint fs, depth;
  } table[] = {
    { 100, 1000000, 0, 4096, 8192 },   /* ten frames would cover 4 ms: MAX_DEPTH */
    { 1 * US, 1000000, 0, 2000, 4000 }, /* two frames of 2 ms */
    { 10 * US, 1000000, 0, 200, 400 },
    { 1 * MS, 1000000, 0, 2, 4 },
    { 1000 * MS, 1000000, 0, 1, 1 },   /* a frame that long: never a second */
    { 1000 * MS, 1000000, 1000, 1, 2 }, /* over a link with latency: always a second */
    { 1 * US, 1000000, 1000, 2000, 6000 }, /* and enough to cover the round trip */
    { 1 * US, 100, 0, 100, 200 },      /* evidence: twice what was timed */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    TrSchedPool p = timed_pool (table[i].mean_ns, table[i].timed);
    p.latency_us = table[i].latency_us;
    g_assert_cmpuint (tr_sched_frame_size (&p), ==, table[i].fs);
    g_assert_cmpuint (tr_sched_worker_depth (&p, table[i].fs), ==, table[i].depth);
  }
  /* before timing: two frames */
  TrSchedPool fresh = { 0 };
  g_assert_cmpuint (tr_sched_worker_depth (&fresh, 1), ==, 2);
  fresh.batch = 50;
  g_assert_cmpuint (tr_sched_worker_depth (&fresh, 50), ==, 100);
  /* a batch asks for more than MAX_DEPTH: it gets two frames, no evidence cap */
  TrSchedPool big = timed_pool (100, 10);
  big.batch = 10000;
  g_assert_cmpuint (tr_sched_worker_depth (&big, 10000), ==, 20000);
}

static void
test_published (void)
{
  TrSchedPool fresh = { 0 };
  g_assert_cmpuint (tr_sched_published_frame (&fresh, 1), ==, 0);
  g_assert_cmpuint (tr_sched_published_depth (&fresh, 2), ==, 0);
  fresh.per_task_timeout = TRUE; /* frames of one are known; the depth is not */
  g_assert_cmpuint (tr_sched_published_frame (&fresh, 1), ==, 1);
  g_assert_cmpuint (tr_sched_published_depth (&fresh, 2), ==, 0);
  TrSchedPool p = timed_pool (1 * US, 1000000);
  g_assert_cmpuint (tr_sched_published_frame (&p, 2000), ==, 2000);
  g_assert_cmpuint (tr_sched_published_depth (&p, 4000), ==, 4000);
}

static void
test_tail (void)
{
  static const struct {
    double left, rate, rates, worker_mean_ns;
    guint share;
  } table[] = {
    { 1000, 1, 2, 1 * US, 250 },   /* half of its half */
    { 1000, 1, 2, 100, 2500 },     /* the floor: TAIL_MIN_HOLD_NS of its own work */
    { 1000, 3, 4, 1 * US, 375 },   /* a faster worker holds more */
    { 10, 1, 2, 1 * MS, 3 },       /* 2.5, rounded up */
    { 0, 1, 2, 1 * MS, 1 },        /* never nothing */
    { 1000, 1, 2, 0, 250 },        /* no mean of its own yet: no floor */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_cmpuint (tr_sched_tail_share (table[i].left, table[i].rate, table[i].rates,
                                           table[i].worker_mean_ns), ==, table[i].share);
  g_assert_cmpuint (tr_sched_tail_frame (100, 10), ==, 5);
  g_assert_cmpuint (tr_sched_tail_frame (100, 1), ==, 1);
  g_assert_cmpuint (tr_sched_tail_frame (4, 100), ==, 4);
  TrSchedPool p = timed_pool (2 * US, 100);
  g_assert_cmpfloat (tr_sched_worker_rate (&p, 4 * US), ==, 1.0 / (4 * US));
  g_assert_cmpfloat (tr_sched_worker_rate (&p, 0), ==, 1.0 / (2 * US)); /* the pool's */
  TrSchedPool fresh = { 0 };
  g_assert_cmpfloat (tr_sched_worker_rate (&fresh, 0), ==, 1.0);
}

/* when a bundle goes back to single tasks */
static void
test_unbundle (void)
{
  TrSchedPool p = timed_pool (10 * US, 1000000);
  g_assert_true (tr_sched_unbundle (&p, 63, FALSE, 100, 63));   /* frames below 64 */
  g_assert_false (tr_sched_unbundle (&p, 64, FALSE, 100, 64));
  g_assert_false (tr_sched_unbundle (&p, 200, FALSE, 1000, 200)); /* more input coming */
  /* the tail: a bundle larger than the worker's frame, of more than 0.5 ms of work */
  g_assert_true (tr_sched_unbundle (&p, 200, TRUE, 100, 50));   /* 1 ms */
  g_assert_false (tr_sched_unbundle (&p, 200, TRUE, 50, 50));   /* fits the frame */
  g_assert_false (tr_sched_unbundle (&p, 200, TRUE, 40, 20));   /* 0.4 ms: goes whole */
  g_assert_false (tr_sched_unbundle (&p, 200, TRUE, 50, 20));   /* 0.5 ms exactly */
}

/* how far a bundle's answer moves the means */
static void
test_bundle_weight (void)
{
  static const struct {
    guint count;
    double sum_ns, max_ns, mean, weight;
  } table[] = {
    { 1, 5000, 5000, 5000, 0.1 },
    { 2, 3000, 2000, 1000, 0.19 },          /* the longest task left out */
    { 6, 6000, 1000, 1000, 1 - 0.531441 },  /* 0.9^6 */
    { 7, 7000, 1000, 1000, 0.5 },           /* 0.9^7 is under a half: capped */
    { 4096, 4096e3, 5e6, 1, 0.5 },          /* a held-up task does not count; 1 ns floor */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++) {
    double mean, weight;
    tr_sched_bundle_sample (table[i].count, table[i].sum_ns, table[i].max_ns, &mean, &weight);
    g_assert_cmpfloat_with_epsilon (mean, table[i].mean, 1e-9);
    g_assert_cmpfloat_with_epsilon (weight, table[i].weight, 1e-9);
  }
  /* the means themselves: a first measurement is taken whole */
  g_assert_cmpfloat (tr_sched_pool_mean (FALSE, 0, 2000, SINGLE_TASK_WEIGHT), ==, 2000);
  g_assert_cmpfloat_with_epsilon (tr_sched_pool_mean (TRUE, 1000, 2000, SINGLE_TASK_WEIGHT),
                                  1100, 1e-9);
  g_assert_cmpfloat (tr_sched_worker_mean (0, 0.2, SINGLE_TASK_WEIGHT), ==, 1.0);
  g_assert_cmpfloat_with_epsilon (tr_sched_worker_mean (1000, 2000, 0.5), 1500, 1e-9);
}

/* bundle size: a power of two, up at once, down only at a fourfold drop */
static void
test_bundle_size (void)
{
  static const struct {
    guint frame, current, size;
  } table[] = {
    { 0, 0, 4096 },      /* nothing published: the largest */
    { 3000, 0, 2048 },
    { 5000, 0, 4096 },
    { 3000, 1024, 2048 }, /* grown at once */
    { 1100, 2048, 2048 }, /* 1024: not a fourfold drop, kept */
    { 1000, 2048, 512 },  /* 512: a fourfold drop */
    { 63, 4096, 32 },
    { 1, 8, 1 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_cmpuint (tr_sched_bundle_size (table[i].frame, table[i].current), ==, table[i].size);
  /* which tasks go singly */
  g_assert_true (tr_sched_goes_single (3, 2, 4096, FALSE, 0, 8));   /* the first tasks */
  g_assert_false (tr_sched_goes_single (4, 2, 4096, FALSE, 0, 8));
  g_assert_true (tr_sched_goes_single (100, 2, 32, FALSE, 0, 8));   /* small frames */
  g_assert_false (tr_sched_goes_single (100, 2, 64, FALSE, 0, 8));
  g_assert_true (tr_sched_goes_single (100, 2, 4096, TRUE, 0, 8));  /* ordered */
  g_assert_true (tr_sched_goes_single (100, 2, 4096, FALSE, 5, 8)); /* max_tasks */
  g_assert_false (tr_sched_goes_single (100, 2, 4096, FALSE, 0, 1024));
  g_assert_true (tr_sched_goes_single (100, 2, 4096, FALSE, 0, 1025));
}

/* when finished tasks cross to the main thread */
static void
test_hand_over (void)
{
  static const struct {
    guint held, ready;
    gboolean input_ended;
    gint64 waited_us;
    guint completed;
    gsize output_bytes;
    gint64 wait_us;
  } table[] = {
    { 0, 100, TRUE, 0, 1, 0, 0 },         /* the workers hold nothing: now */
    { 10, 100, TRUE, 10000, 1, 0, 0 },    /* waited RESULTS_DELAY_US */
    { 10, 100, TRUE, 9999, 1, 0, 1 },
    { 10, 100, TRUE, 0, 4096, 0, 0 },     /* RESULTS_BATCH_MAX */
    { 10, 100, TRUE, 0, 4095, 0, 10000 },
    { 10, 100, TRUE, 0, 0, 65536, 0 },    /* OUTPUT_FLUSH_BYTES of lines */
    { 10, 10, FALSE, 0, 1, 0, 0 },        /* more may come and the queue is low */
    { 10, 11, FALSE, 3000, 1, 0, 7000 },
    { 10, 0, TRUE, 2500, 1, 0, 7500 },    /* nothing more coming: no hurry */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_cmpint (tr_sched_hand_over_wait_us (table[i].held, table[i].ready,
                                                 table[i].input_ended, table[i].waited_us,
                                                 table[i].completed, table[i].output_bytes),
                     ==, table[i].wait_us);
}

/* how far a stream runs ahead, and when it hands its tasks over */
static void
test_stream (void)
{
  static const struct {
    guint depth, batch, workers;
    guint64 window;
  } table[] = {
    { 0, 0, 2, 4096 + 64 },        /* before timing: 16 per worker, at least SUBMIT_GROUP */
    { 0, 0, 1024, 16384 + 64 },
    { 4000, 0, 2, 16004 + 64 },    /* twice the depth, and two */
    { 8192, 0, 2, 16384 + 64 },    /* MAX_DEPTH per worker, at most */
    { 1, 0, 1024, 4096 + 64 },     /* long tasks on many workers: a few each */
    { 0, 10000, 2, 40000 + 64 },   /* two frames of a large batch */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_cmpuint (tr_sched_stream_window (table[i].depth, table[i].batch, table[i].workers),
                      ==, table[i].window);
  g_assert_true (tr_sched_submit_now (4096, 1000, 2));
  g_assert_false (tr_sched_submit_now (4095, 1000, 2));
  g_assert_true (tr_sched_submit_now (1, 3, 2));
  g_assert_false (tr_sched_submit_now (1, 4, 2));
  for (guint n = 1; n <= 4096; n++)
    g_assert_cmpint (tr_sched_submit_asks_clock (n), ==, (n & (n - 1)) == 0);
  g_assert_true (tr_sched_submit_asks_clock (1024));
  g_assert_false (tr_sched_submit_asks_clock (1000));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/schedule/frame-size", test_frame_size);
  g_test_add_func ("/schedule/depth", test_depth);
  g_test_add_func ("/schedule/published", test_published);
  g_test_add_func ("/schedule/tail", test_tail);
  g_test_add_func ("/schedule/unbundle", test_unbundle);
  g_test_add_func ("/schedule/bundle-weight", test_bundle_weight);
  g_test_add_func ("/schedule/bundle-size", test_bundle_size);
  g_test_add_func ("/schedule/hand-over", test_hand_over);
  g_test_add_func ("/schedule/stream", test_stream);
  return g_test_run ();
}
