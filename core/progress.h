/* progress.h — the progress line on stderr (progress.c). */
#ifndef TASKRUN_PROGRESS_H
#define TASKRUN_PROGRESS_H

#include "internal.h"

typedef enum { TR_PROGRESS_AUTO, TR_PROGRESS_ALWAYS, TR_PROGRESS_NEVER } TrProgressMode;

typedef struct TrProgress TrProgress;

/* `unit` is the plugin's progress unit ("bytes", "numbers") or NULL for tasks only. */
TrProgress *tr_progress_new (TrProgressMode mode, const char *unit);
void tr_progress_free (TrProgress *p);
/* What is known so far: tasks made (and whether that is all of them), tasks finished,
 * failed, units done, and the plugin's total of units (0 = unknown, final or estimate). */
void tr_progress_set_tasks (TrProgress *p, guint64 made, gboolean all_made);
void tr_progress_task_done (TrProgress *p, guint64 units, gboolean failed);
void tr_progress_set_total_units (TrProgress *p, guint64 total, gboolean final);
/* Redraws the line if it is due (at most ten times a second). */
void tr_progress_tick (TrProgress *p);
/* After `len` bytes of output went to fd (after tr_progress_clear): when fd is a terminal
 * and they did not end a line, the next draw (or whatever is written after the next
 * clear) goes below them rather than over them. */
void tr_progress_wrote (TrProgress *p, int fd, const void *data, gsize len);
/* Erases the line, e.g. before printing anything else; the next tick draws it again. */
void tr_progress_clear (TrProgress *p);

#endif
