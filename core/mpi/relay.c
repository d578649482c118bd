/* relay.c — one socket's bytes carried over MPI, both ways.
 *
 * Both ends of the MPI link do the same work: rank 0's bridge thread between the pool's
 * socketpair and an agent, and each agent between its worker's socket and rank 0.  Bytes
 * from MPI are written to the socket without blocking, in order; bytes from the socket
 * go out as TAG_DATA messages of up to DATA_CHUNK, one in flight at a time, so that the
 * peer receives them in order and a slow peer holds the reader back rather than filling
 * this rank's memory.  What an end of stream means (a worker gone, the pool closed) is
 * the caller's: the relay only reports it.
 */
#include "relay.h"
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

void
tr_mpi_relay_init (TrMpiRelay *r)
{
  r->fd = -1;
  r->to_fd = g_byte_array_new ();
  r->to_fd_off = 0;
  r->send_buf = g_malloc (DATA_CHUNK);
  r->sending = FALSE;
}

void
tr_mpi_relay_clear (TrMpiRelay *r)
{
  g_clear_pointer (&r->to_fd, g_byte_array_unref);
  g_clear_pointer (&r->send_buf, g_free);
}

void
tr_mpi_relay_close_fd (TrMpiRelay *r)
{
  if (r->fd >= 0)
    close (r->fd);
  r->fd = -1;
  r->to_fd->len = 0;
  r->to_fd_off = 0;
}

void
tr_mpi_relay_take (TrMpiRelay *r, int rank, int count)
{
  guint had = r->to_fd->len;
  g_byte_array_set_size (r->to_fd, had + (guint) count);
  MPI_Recv (r->to_fd->data + had, count, MPI_BYTE, rank, TAG_DATA, MPI_COMM_WORLD,
            MPI_STATUS_IGNORE);
}

void
tr_mpi_relay_test_send (TrMpiRelay *r, gboolean *busy)
{
  if (!r->sending)
    return;
  int done = 0;
  MPI_Test (&r->send_req, &done, MPI_STATUS_IGNORE);
  if (done) {
    r->sending = FALSE;
    *busy = TRUE;
  }
}

void
tr_mpi_relay_write (TrMpiRelay *r, gboolean *busy)
{
  if (r->fd < 0 || r->to_fd->len <= r->to_fd_off)
    return;
  gssize n = send (r->fd, r->to_fd->data + r->to_fd_off, r->to_fd->len - r->to_fd_off,
                   MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n > 0) {
    *busy = TRUE;
    r->to_fd_off += (gsize) n;
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    r->to_fd_off = r->to_fd->len; /* the other end is gone; its end of stream follows */
  }
  if (r->to_fd_off == r->to_fd->len) {
    r->to_fd->len = 0;
    r->to_fd_off = 0;
  }
}

gboolean
tr_mpi_relay_read (TrMpiRelay *r, int peer, gboolean *busy)
{
  if (r->fd < 0 || r->sending)
    return FALSE;
  gssize n = recv (r->fd, r->send_buf, DATA_CHUNK, MSG_DONTWAIT);
  if (n > 0) {
    *busy = TRUE;
    MPI_Isend (r->send_buf, (int) n, MPI_BYTE, peer, TAG_DATA, MPI_COMM_WORLD, &r->send_req);
    r->sending = TRUE;
    return FALSE;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return FALSE;
  *busy = TRUE;
  return TRUE;
}

short
tr_mpi_relay_poll_events (const TrMpiRelay *r, gboolean want_read)
{
  short events = 0;
  if (r->fd >= 0 && want_read && !r->sending)
    events |= POLLIN;
  if (r->fd >= 0 && r->to_fd->len > r->to_fd_off)
    events |= POLLOUT;
  return events;
}
