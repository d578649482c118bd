/* relay.h — one socket's bytes carried over MPI, both ways (relay.c). */
#ifndef TASKRUN_MPI_RELAY_H
#define TASKRUN_MPI_RELAY_H

#include <glib.h>
#include <mpi.h>

/* Owned by the one thread that calls MPI on its rank (the bridge thread on rank 0, the
 * agent elsewhere). */
typedef struct {
  int fd;               /* the local end: the worker's socket, or the pool's; -1: none */
  GByteArray *to_fd;    /* bytes that came over MPI, still to be written to fd */
  gsize to_fd_off;
  guint8 *send_buf;     /* DATA_CHUNK bytes read from fd, in flight to the peer rank */
  MPI_Request send_req;
  gboolean sending;
} TrMpiRelay;

void tr_mpi_relay_init (TrMpiRelay *r);
void tr_mpi_relay_clear (TrMpiRelay *r); /* frees the buffers; fd is the caller's */
/* Closes fd and drops what was still to be written to it. */
void tr_mpi_relay_close_fd (TrMpiRelay *r);
/* Receives the probed TAG_DATA message (`count` bytes from `rank`) behind what is still
 * waiting for fd. */
void tr_mpi_relay_take (TrMpiRelay *r, int rank, int count);
/* Completes the send in flight, if it is done. */
void tr_mpi_relay_test_send (TrMpiRelay *r, gboolean *busy);
/* Writes what is waiting to fd without blocking; a peer that closed drops it. */
void tr_mpi_relay_write (TrMpiRelay *r, gboolean *busy);
/* Unless a send is in flight: reads what fd has and sends it to rank `peer`.  TRUE when
 * fd reached its end (or failed): the caller decides what that end means. */
gboolean tr_mpi_relay_read (TrMpiRelay *r, int peer, gboolean *busy);
/* What to poll fd for while idle (POLLIN, POLLOUT), given whether reading is wanted. */
short tr_mpi_relay_poll_events (const TrMpiRelay *r, gboolean want_read);

#endif
