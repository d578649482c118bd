/* backend.h — where a job's workers run: local processes or MPI ranks (backend.c). */
#ifndef TASKRUN_BACKEND_H
#define TASKRUN_BACKEND_H

#include "internal.h"

/* Chooses the backend from [taskrun] backend (`core`) and how taskrun was started;
 * `backend_at` says where the key was set, for the message.  FALSE with *error (the
 * message as taskrun prints it, after "taskrun: ") when the two disagree. */
gboolean tr_backend_choose (const TrConfig *core, const char *backend_at, gboolean *use_mpi,
                            GError **error);
/* The pool size: `workers` as asked (asked = FALSE: the default), made the number of
 * ranks after rank 0 with MPI, where asking for another number is an error
 * (`workers_at` names where it was asked). */
gboolean tr_backend_workers (gboolean use_mpi, gboolean asked, guint *workers,
                             const char *workers_at, GError **error);

#endif
