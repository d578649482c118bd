/* fakelink.h — a link class whose worker is a thread of this process (fakelink.c), for
 * tests that need answers no real worker gives, or a link with no process behind it. */
#ifndef TASKRUN_FAKELINK_H
#define TASKRUN_FAKELINK_H

#include <glib.h>

#include "link.h"

extern const TrLinkClass fake_link;
/* Links spawned so far; the first one's worker is slow (20 ms after each TASKS frame), so
 * that tasks queue up into larger frames.  Worker N's pid is 100000 + N - 1. */
extern gint fake_spawns;
extern gint fake_forged; /* the wrong answer went out */
/* The fewest tasks of a frame answered wrongly: at least three, so that the rest of the
 * frame after the wrong record is two or more tasks, which run again one at a time (a
 * rest of one task is the task the worker was running, and fails, as in a crash).
 * G_MAXUINT32: none is. */
extern guint32 fake_forge_min;
extern guint64 fake_forge_from_id; /* and whose first task has at least this id */
extern char fake_forged_first[32]; /* the payload of the first task of that frame */

#endif
