/* seqset.c — the task numbers a job log says are done, for --resume.
 *
 * A job of ten million tasks must resume in the memory its run needs, not in one entry
 * per row: the numbers are kept as sorted runs [first, last], so a log of tasks that all
 * succeeded is one run whatever its length, and each failed task splits a run in two.
 * Rows arrive nearly in order (attempts end a little out of order across workers), so a
 * new number almost always extends or joins the last runs; a lookup is a binary search.
 * Does not own: reading the log (joblog.c).
 */
#include "seqset.h"

typedef struct {
  guint64 first, last;
} Run;

struct TrSeqSet {
  GArray *runs; /* Run, sorted, disjoint and not adjacent */
  guint64 count;
};

TrSeqSet *
tr_seq_set_new (void)
{
  TrSeqSet *set = g_new0 (TrSeqSet, 1);
  set->runs = g_array_new (FALSE, FALSE, sizeof (Run));
  return set;
}

void
tr_seq_set_free (TrSeqSet *set)
{
  if (!set)
    return;
  g_array_unref (set->runs);
  g_free (set);
}

/* The index of the first run whose last is >= seq (runs->len if none). */
static guint
lower_bound (const TrSeqSet *set, guint64 seq)
{
  guint lo = 0, hi = set->runs->len;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    if (g_array_index (set->runs, Run, mid).last < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

gboolean
tr_seq_set_contains (const TrSeqSet *set, guint64 seq)
{
  guint i = lower_bound (set, seq);
  return i < set->runs->len && g_array_index (set->runs, Run, i).first <= seq;
}

void
tr_seq_set_add (TrSeqSet *set, guint64 seq)
{
  guint i = lower_bound (set, seq);
  Run *runs = (Run *) set->runs->data;
  if (i < set->runs->len && runs[i].first <= seq)
    return; /* already in */
  set->count++;
  gboolean joins_before = i > 0 && runs[i - 1].last + 1 == seq;
  gboolean joins_after = i < set->runs->len && seq + 1 == runs[i].first;
  if (joins_before && joins_after) {
    runs[i - 1].last = runs[i].last;
    g_array_remove_index (set->runs, i);
  } else if (joins_before) {
    runs[i - 1].last = seq;
  } else if (joins_after) {
    runs[i].first = seq;
  } else {
    Run r = { seq, seq };
    g_array_insert_val (set->runs, i, r);
  }
}

guint64
tr_seq_set_count (const TrSeqSet *set)
{
  return set->count;
}

guint
tr_seq_set_runs (const TrSeqSet *set)
{
  return set->runs->len;
}
