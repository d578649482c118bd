/* seqset.h — a set of task numbers (Seq) kept as sorted runs (seqset.c). */
#ifndef TASKRUN_SEQSET_H
#define TASKRUN_SEQSET_H

#include <glib.h>

typedef struct TrSeqSet TrSeqSet;

TrSeqSet *tr_seq_set_new (void);
void tr_seq_set_free (TrSeqSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrSeqSet, tr_seq_set_free)
void tr_seq_set_add (TrSeqSet *set, guint64 seq);
gboolean tr_seq_set_contains (const TrSeqSet *set, guint64 seq);
/* How many numbers it holds, and in how many runs. */
guint64 tr_seq_set_count (const TrSeqSet *set);
guint tr_seq_set_runs (const TrSeqSet *set);

#endif
