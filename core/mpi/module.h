/* module.h — what the parts of the MPI module (taskrun-mpi.so) share. */
#ifndef TASKRUN_MPI_MODULE_H
#define TASKRUN_MPI_MODULE_H

#include <mpi.h>
#include <stdint.h>

#include "internal.h"
#include "link.h"
#include "mpi-backend.h"
#include "protocol.h"

/* An agent's report (TAG_EVENT).  Ranks exchange it as raw bytes: every host of a job is
 * assumed to be of one architecture, as MPI_BYTE messages of C structs always are. */
typedef struct {
  int32_t kind;
  int32_t arg;
  int32_t pid;
  char host[EVENT_HOST_MAX];
} AgentEvent;

int tr_mpi_agent_main (void);

extern const TrLinkClass tr_link_mpi;
gboolean tr_mpi_bridge_start (int size, GError **error);
int tr_mpi_bridge_finish (int status);

#endif
