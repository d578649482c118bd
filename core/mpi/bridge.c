/* bridge.c — rank 0's side of the MPI backend: the link class the pool uses, and the
 * bridge thread that carries its bytes to and from the agents.
 *
 * The pool waits on file descriptors (link.h); MPI has none to offer.  So each link is a
 * Unix socketpair, as for a local worker: the pool holds one end, the bridge thread the
 * other, and the bridge thread moves bytes between its ends and MPI messages to the rank
 * of that slot (slot N is rank N).  The pool's code paths, its batching, timeouts and
 * failure handling are the same for both backends.
 *
 * Only the bridge thread calls MPI (MPI_THREAD_SERIALIZED).  The pool's I/O thread hands
 * it control messages (spawn, signal, kill) through a queue and an eventfd, and waits on
 * a condition for the answers it needs (the worker's pid; how it ended).
 */
#include "module.h"
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* SLOT_LOST: its agent stopped answering (see ANSWER_TIMEOUT_US); never used again. */
typedef enum {
  SLOT_IDLE, SLOT_SPAWNING, SLOT_RUNNING, SLOT_FAILED, SLOT_EXITED, SLOT_LOST
} SlotState;

/* How long the pool waits for an agent to start a worker or report its end.  An agent
 * answers within milliseconds; one that does not is on a rank that died under a launcher
 * that let the job go on (mpirun would have ended it). */
#define ANSWER_TIMEOUT_US (30 * G_USEC_PER_SEC)

/* Messages taken per pass of the bridge loop, so that busy ranks cannot hold up the
 * others or the control messages. */
#define MESSAGES_PER_PASS 64

typedef struct {
  /* bridge thread only */
  TrMpiRelay relay;      /* the bridge's end of the pool's socketpair (relay.fd; -1:
                          * none) and the agent */
  gboolean pool_closed;  /* the pool closed its end: CTRL_CLOSE was sent */
  gboolean exit_pending; /* EVENT_EXITED came: close fd once what is for the pool is written */
  /* shared, under B.lock */
  SlotState state;
  pid_t pid;
  int wait_status;
  int spawn_errno;
  char host[EVENT_HOST_MAX];
} Slot;

typedef struct {
  int rank;
  int32_t msg[2];
  int fd; /* CTRL_SPAWN: the bridge's end of the new socketpair */
} Control;

static struct {
  GMutex lock;
  GCond cond;
  GThread *thread;
  int wake_fd;
  int size;
  Slot *slots;         /* [size]; slot 0 unused */
  GArray *controls;    /* Control, to send; under lock */
  gboolean finishing;  /* under lock */
  gboolean finished;   /* under lock */
  int byes;            /* bridge thread: agents that said BYE */
} B;

typedef struct {
  TrLink base;
  int rank;
} MpiLink;

static void
wake_bridge (void)
{
  guint64 one = 1;
  if (write (B.wake_fd, &one, sizeof one) < 0) {
    /* the counter is already non-zero: the bridge will wake */
  }
}

static void
queue_control (int rank, int op, int arg)
{
  Control c = { .rank = rank, .msg = { op, arg }, .fd = -1 };
  g_mutex_lock (&B.lock);
  g_array_append_val (B.controls, c);
  g_mutex_unlock (&B.lock);
  wake_bridge ();
}

/* ---- the link class (the pool's I/O thread) ------------------------------------------ */

static TrLink *
mpi_spawn (guint slot, const char *program, GError **error)
{
  (void) program; /* each agent runs its own host's taskrun */
  if ((int) slot >= B.size) {
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED,
                 "worker %u: there is no rank %u (mpirun started %d ranks)", slot, slot, B.size);
    return NULL;
  }
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "worker %u: socketpair: %s", slot, g_strerror (errno));
    return NULL;
  }
  Slot *s = &B.slots[slot];
  g_mutex_lock (&B.lock);
  if (s->state == SLOT_LOST) {
    g_autofree char *host = g_strdup (s->host);
    g_mutex_unlock (&B.lock);
    close (sv[0]);
    close (sv[1]);
    g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED,
                 "worker %u: rank %u (%s) stopped answering", slot, slot, host);
    return NULL;
  }
  g_assert (s->state != SLOT_SPAWNING && s->state != SLOT_RUNNING);
  s->state = SLOT_SPAWNING;
  s->pid = 0;
  Control c = { .rank = (int) slot, .msg = { CTRL_SPAWN, 0 }, .fd = sv[1] };
  g_array_append_val (B.controls, c);
  g_mutex_unlock (&B.lock);
  wake_bridge ();

  gint64 deadline = g_get_monotonic_time () + ANSWER_TIMEOUT_US;
  g_mutex_lock (&B.lock);
  while (s->state == SLOT_SPAWNING)
    if (!g_cond_wait_until (&B.cond, &B.lock, deadline)) {
      s->state = SLOT_LOST; /* the bridge closes its end when the agent answers, if ever */
      break;
    }
  SlotState state = s->state;
  pid_t pid = s->pid;
  int err = s->spawn_errno;
  g_autofree char *host = g_strdup (s->host[0] ? s->host : "?");
  g_mutex_unlock (&B.lock);
  if (state != SLOT_RUNNING) {
    close (sv[0]);
    if (state == SLOT_LOST)
      g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED,
                   "worker %u: rank %u did not start a worker within %d s", slot, slot,
                   (int) (ANSWER_TIMEOUT_US / G_USEC_PER_SEC));
    else
      g_set_error (error, TR_MPI_ERROR, TR_MPI_ERROR_FAILED,
                   "worker %u: rank %u (%s) could not start a worker: %s (its message is above)",
                   slot, slot, host, g_strerror (err));
    return NULL;
  }
  g_debug ("worker %u is rank %u on %s, pid %d", slot, slot, host, (int) pid);
  MpiLink *link = g_new0 (MpiLink, 1);
  link->base.klass = &tr_link_mpi;
  link->base.fd = sv[0];
  link->base.pid = pid;
  link->base.where = g_strdup_printf ("rank %u on %s", slot, host);
  link->rank = (int) slot;
  return &link->base;
}

static gssize
mpi_send (TrLink *link, const guint8 *data, gsize len)
{
  return tr_link_local.send (link, data, len);
}

static gssize
mpi_receive (TrLink *link, guint8 *buf, gsize len)
{
  return tr_link_local.receive (link, buf, len);
}

static void
mpi_kill (TrLink *link)
{
  queue_control (((MpiLink *) link)->rank, CTRL_KILL, 0);
}

static void
mpi_signal_group (TrLink *link, int sig)
{
  queue_control (((MpiLink *) link)->rank, CTRL_SIGNAL, sig);
}

static char *
mpi_close (TrLink *link, gboolean *clean, int *status)
{
  int rank = ((MpiLink *) link)->rank;
  close (link->fd);
  g_free (link->where);
  g_free (link);
  wake_bridge ();
  Slot *s = &B.slots[rank];
  gint64 deadline = g_get_monotonic_time () + ANSWER_TIMEOUT_US;
  g_mutex_lock (&B.lock);
  while (s->state == SLOT_RUNNING)
    if (!g_cond_wait_until (&B.cond, &B.lock, deadline)) {
      s->state = SLOT_LOST;
      break;
    }
  gboolean lost = s->state == SLOT_LOST;
  *status = lost ? 0 : s->wait_status;
  if (!lost)
    s->state = SLOT_IDLE;
  g_mutex_unlock (&B.lock);
  if (lost) {
    *clean = FALSE;
    return g_strdup_printf ("was lost: rank %d did not report how it ended within %d s", rank,
                            (int) (ANSWER_TIMEOUT_US / G_USEC_PER_SEC));
  }
  return tr_describe_wait_status (*status, clean);
}

const TrLinkClass tr_link_mpi = {
  .latency_us = 2 * IDLE_SLEEP_MAX_US, /* each side may be asleep when a message comes */
  .spawn = mpi_spawn,
  .send = mpi_send,
  .receive = mpi_receive,
  .kill = mpi_kill,
  .signal_group = mpi_signal_group,
  .close = mpi_close,
};

/* ---- the bridge thread (the only MPI caller on rank 0) -------------------------------- */

static void
slot_set_state (Slot *s, SlotState state)
{
  g_mutex_lock (&B.lock);
  s->state = state;
  g_cond_broadcast (&B.cond);
  g_mutex_unlock (&B.lock);
}

static void
slot_close_fd (Slot *s)
{
  tr_mpi_relay_close_fd (&s->relay);
}

static void
handle_event (int rank, const AgentEvent *ev)
{
  Slot *s = &B.slots[rank];
  if (ev->kind == EVENT_BYE) {
    B.byes++;
    return;
  }
  g_mutex_lock (&B.lock);
  gboolean lost = s->state == SLOT_LOST;
  g_mutex_unlock (&B.lock);
  if (lost) {
    slot_close_fd (s);
    return;
  }
  switch (ev->kind) {
  case EVENT_SPAWNED:
    g_mutex_lock (&B.lock);
    s->pid = ev->pid;
    g_strlcpy (s->host, ev->host, sizeof s->host);
    s->state = SLOT_RUNNING;
    g_cond_broadcast (&B.cond);
    g_mutex_unlock (&B.lock);
    break;
  case EVENT_SPAWN_FAILED:
    g_mutex_lock (&B.lock);
    g_strlcpy (s->host, ev->host, sizeof s->host);
    s->spawn_errno = ev->arg;
    g_mutex_unlock (&B.lock);
    slot_close_fd (s);
    slot_set_state (s, SLOT_FAILED);
    break;
  case EVENT_EXITED:
    g_mutex_lock (&B.lock);
    s->wait_status = ev->arg;
    g_mutex_unlock (&B.lock);
    s->exit_pending = TRUE;
    break;
  default:
    break;
  }
}

static void
send_controls (void)
{
  g_mutex_lock (&B.lock);
  g_autoptr (GArray) todo = B.controls;
  B.controls = g_array_new (FALSE, FALSE, sizeof (Control));
  g_mutex_unlock (&B.lock);
  for (guint i = 0; i < todo->len; i++) {
    Control *c = &g_array_index (todo, Control, i);
    if (c->msg[0] == CTRL_SPAWN) {
      Slot *s = &B.slots[c->rank];
      slot_close_fd (s);
      s->relay.fd = c->fd;
      s->pool_closed = FALSE;
      s->exit_pending = FALSE;
    }
    MPI_Send (c->msg, sizeof c->msg, MPI_BYTE, c->rank, TAG_CTRL, MPI_COMM_WORLD);
  }
}

static void
receive_messages (GByteArray *buf, gboolean *busy)
{
  for (int taken = 0; taken < MESSAGES_PER_PASS; taken++) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe (MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag)
      return;
    *busy = TRUE;
    int n = 0;
    MPI_Get_count (&st, MPI_BYTE, &n);
    int rank = st.MPI_SOURCE;
    Slot *s = rank > 0 && rank < B.size ? &B.slots[rank] : NULL;
    if (s && st.MPI_TAG == TAG_DATA && s->relay.fd >= 0 && !s->pool_closed) {
      tr_mpi_relay_take (&s->relay, rank, n);
      continue;
    }
    g_byte_array_set_size (buf, (guint) MAX (n, 1));
    MPI_Recv (buf->data, n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
              MPI_STATUS_IGNORE);
    if (!s || st.MPI_TAG == TAG_DATA)
      continue; /* data for a closed end is dropped */
    if (st.MPI_TAG == TAG_EVENT && n == (int) sizeof (AgentEvent)) {
      AgentEvent ev;
      memcpy (&ev, buf->data, sizeof ev);
      ev.host[sizeof ev.host - 1] = '\0';
      handle_event (rank, &ev);
    }
  }
}

/* Bytes both ways between the pool's socketpair and the agent.  The pool's end of stream
 * is its close: the agent is told (CTRL_CLOSE) and reaps the worker.  Once the worker
 * ended and all it wrote is with the pool (or the pool is gone), the pool gets its end of
 * stream, then its close() gets the wait status. */
static void
pump_slot (Slot *s, int rank, gboolean *busy)
{
  tr_mpi_relay_test_send (&s->relay, busy);
  if (s->relay.fd < 0)
    return;
  tr_mpi_relay_write (&s->relay, busy);
  if (!s->pool_closed && !s->exit_pending && tr_mpi_relay_read (&s->relay, rank, busy)) {
    s->pool_closed = TRUE;
    int32_t msg[2] = { CTRL_CLOSE, 0 };
    MPI_Send (msg, sizeof msg, MPI_BYTE, rank, TAG_CTRL, MPI_COMM_WORLD);
  }
  if (s->exit_pending && !s->relay.sending && (s->relay.to_fd->len == 0 || s->pool_closed)) {
    *busy = TRUE;
    s->exit_pending = FALSE;
    slot_close_fd (s);
    slot_set_state (s, SLOT_EXITED);
  }
}

static gpointer
bridge_main (gpointer data)
{
  (void) data;
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  struct pollfd *fds = g_new0 (struct pollfd, (gsize) B.size + 1);
  guint sleep_us = IDLE_SLEEP_MIN_US;
  for (;;) {
    gboolean busy = FALSE;
    send_controls ();
    receive_messages (buf, &busy);
    for (int r = 1; r < B.size; r++)
      pump_slot (&B.slots[r], r, &busy);
    g_mutex_lock (&B.lock);
    gboolean finishing = B.finishing && B.controls->len == 0;
    g_mutex_unlock (&B.lock);
    if (finishing)
      break;
    if (busy) {
      sleep_us = IDLE_SLEEP_MIN_US;
      continue;
    }
    nfds_t n = 0;
    fds[n++] = (struct pollfd) { .fd = B.wake_fd, .events = POLLIN };
    for (int r = 1; r < B.size; r++) {
      Slot *s = &B.slots[r];
      short ev = tr_mpi_relay_poll_events (&s->relay, !s->pool_closed && !s->exit_pending);
      if (ev)
        fds[n++] = (struct pollfd) { .fd = s->relay.fd, .events = ev };
    }
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) sleep_us * 1000 };
    if (ppoll (fds, n, &ts, NULL) > 0 && (fds[0].revents & POLLIN)) {
      guint64 v;
      if (read (B.wake_fd, &v, sizeof v) < 0) {
        /* nothing to read after all */
      }
    }
    sleep_us = MIN (sleep_us * 2, IDLE_SLEEP_MAX_US);
  }
  g_free (fds);

  /* The job is over: every agent stops its worker, if any, and says BYE; until then
   * whatever they still send is taken (and dropped), so that no send of theirs waits
   * for a receive that never comes. */
  for (int r = 1; r < B.size; r++) {
    Slot *s = &B.slots[r];
    if (s->relay.sending)
      MPI_Wait (&s->relay.send_req, MPI_STATUS_IGNORE);
    s->relay.sending = FALSE;
    slot_close_fd (s);
    int32_t msg[2] = { CTRL_SHUTDOWN, 0 };
    MPI_Send (msg, sizeof msg, MPI_BYTE, r, TAG_CTRL, MPI_COMM_WORLD);
  }
  while (B.byes < B.size - 1) {
    gboolean busy = FALSE;
    receive_messages (buf, &busy);
    if (!busy)
      g_usleep (IDLE_SLEEP_MAX_US);
  }
  g_mutex_lock (&B.lock);
  B.finished = TRUE;
  g_cond_broadcast (&B.cond);
  g_mutex_unlock (&B.lock);
  return NULL;
}

gboolean
tr_mpi_bridge_start (int size, GError **error)
{
  B.wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (B.wake_fd < 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "eventfd: %s",
                 g_strerror (errno));
    return FALSE;
  }
  B.size = size;
  B.slots = g_new0 (Slot, (gsize) size);
  for (int r = 0; r < size; r++) {
    tr_mpi_relay_init (&B.slots[r].relay);
  }
  B.controls = g_array_new (FALSE, FALSE, sizeof (Control));
  B.thread = g_thread_new ("taskrun-mpi", bridge_main, NULL);
  return TRUE;
}

/* Rank 0's end of the job (main thread).  Bounded: when an agent is gone (mpirun is
 * ending the job after a rank died) the shutdown may never complete, and taskrun exits
 * anyway. */
int
tr_mpi_bridge_finish (int status)
{
  g_mutex_lock (&B.lock);
  B.finishing = TRUE;
  g_mutex_unlock (&B.lock);
  wake_bridge ();
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  g_mutex_lock (&B.lock);
  gboolean done = TRUE;
  while (!B.finished && done)
    done = g_cond_wait_until (&B.cond, &B.lock, deadline);
  g_mutex_unlock (&B.lock);
  if (!B.finished) {
    g_printerr ("taskrun: the MPI ranks did not shut down within 10 s; exiting\n");
    fflush (stdout);
    _exit (status ? status : 1);
  }
  g_thread_join (B.thread);
  MPI_Finalize (); /* on the thread that initialised MPI */
  for (int r = 0; r < B.size; r++) {
    slot_close_fd (&B.slots[r]);
    tr_mpi_relay_clear (&B.slots[r].relay);
  }
  g_free (B.slots);
  g_array_unref (B.controls);
  close (B.wake_fd);
  return status;
}
