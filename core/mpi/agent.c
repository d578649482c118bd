/* agent.c — what every rank but 0 runs: a stand-in for rank 0 on its host.
 *
 * On rank 0's request the agent starts a worker with the local link (posix_spawn of
 * taskrun in worker mode, in a process group of its own, exactly as a local pool would),
 * then carries bytes between the worker's socket and MPI messages until the worker ends,
 * and reports how it ended.  Signals for the worker (task timeouts, kills) arrive as
 * control messages.  So a task that crashes takes down its worker, never the rank, and
 * MPI never sees a process die; only a rank that is itself killed ends the MPI job.
 *
 * Single-threaded: MPI is initialised with at least MPI_THREAD_SERIALIZED for rank 0's
 * sake, and here only this thread calls it.
 *
 * When mpirun ends the job (Ctrl-C, a rank that died) it sends every rank SIGTERM: the
 * agent then stops its worker's whole process group, the task's own children included,
 * before it exits.
 */
#include "module.h"
#include "relay.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t agent_signal;

static void
on_signal (int sig)
{
  agent_signal = sig;
}

typedef struct {
  int rank;
  char host[EVENT_HOST_MAX];
  char *program;

  pid_t pid;   /* the worker, until reaped; 0: none */
  gboolean reaped;
  int wait_status;

  TrMpiRelay relay; /* the worker's socket (relay.fd; -1 once closed) and rank 0 */
  GByteArray *recv_buf;
} Agent;

static void
send_event (Agent *ag, int kind, int arg, pid_t pid)
{
  AgentEvent ev = { .kind = kind, .arg = arg, .pid = (int32_t) pid };
  g_strlcpy (ev.host, ag->host, sizeof ev.host);
  MPI_Send (&ev, sizeof ev, MPI_BYTE, 0, TAG_EVENT, MPI_COMM_WORLD);
}


static void
spawn_worker (Agent *ag)
{
  if (ag->pid) {
    g_printerr ("taskrun: rank %d (%s): asked for a worker while one is running\n", ag->rank,
                ag->host);
    send_event (ag, EVENT_SPAWN_FAILED, EBUSY, 0);
    return;
  }
  g_autoptr (GError) error = NULL;
  /* Without pipes of its own: the worker writes to this rank's stdout and stderr, which
   * mpirun forwards to its own, as before taskrun read its local workers' output. */
  TrLink *link = tr_link_local_start ((guint) ag->rank, ag->program, FALSE, &error);
  if (!link) {
    g_printerr ("taskrun: rank %d (%s): %s\n", ag->rank, ag->host, error->message);
    send_event (ag, EVENT_SPAWN_FAILED, EIO, 0);
    return;
  }
  ag->pid = link->pid;
  ag->relay.fd = link->fd;
  ag->reaped = FALSE;
  g_free (link); /* the agent owns fd and pid from here */
  send_event (ag, EVENT_SPAWNED, 0, ag->pid);
}

/* The worker is gone when it has been reaped, its socket is closed, and everything it
 * wrote has been sent on; then rank 0 hears how it ended. */
static void
maybe_report_exit (Agent *ag)
{
  if (!ag->pid || !ag->reaped || ag->relay.fd >= 0 || ag->relay.sending)
    return;
  send_event (ag, EVENT_EXITED, ag->wait_status, ag->pid);
  ag->pid = 0;
}

static void
reap (Agent *ag, gboolean block)
{
  if (!ag->pid || ag->reaped)
    return;
  /* as the local link's close does: its process group goes with it (also a descendant
   * that holds the socket open, so that its end of stream comes) */
  if (!tr_reap_worker (ag->pid, block, &ag->wait_status, &ag->reaped))
    ag->wait_status = 0;
}

/* Stops the worker, if any, and its process group; reaps it. */
static void
stop_worker (Agent *ag)
{
  if (ag->pid && !ag->reaped) {
    kill (-ag->pid, SIGKILL);
    kill (ag->pid, SIGKILL);
  }
  tr_mpi_relay_close_fd (&ag->relay);
  reap (ag, TRUE);
}

static gboolean
handle_control (Agent *ag, const int32_t *msg)
{
  switch (msg[0]) {
  case CTRL_SPAWN:
    spawn_worker (ag);
    break;
  case CTRL_SIGNAL:
    if (ag->pid && !ag->reaped)
      kill (-ag->pid, msg[1]);
    break;
  case CTRL_KILL:
    if (ag->pid && !ag->reaped)
      kill (ag->pid, SIGKILL);
    break;
  case CTRL_CLOSE:
    tr_mpi_relay_close_fd (&ag->relay);
    break;
  case CTRL_SHUTDOWN:
    return FALSE;
  default:
    g_printerr ("taskrun: rank %d: unknown control message %d from rank 0\n", ag->rank, msg[0]);
    break;
  }
  return TRUE;
}

/* Takes every message rank 0 has sent so far.  FALSE when told to shut down. */
static gboolean
receive_messages (Agent *ag, gboolean *busy)
{
  for (;;) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe (0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag)
      return TRUE;
    *busy = TRUE;
    int n = 0;
    MPI_Get_count (&st, MPI_BYTE, &n);
    if (st.MPI_TAG == TAG_DATA && ag->relay.fd >= 0) {
      tr_mpi_relay_take (&ag->relay, 0, n);
      continue;
    }
    g_byte_array_set_size (ag->recv_buf, (guint) MAX (n, 1));
    MPI_Recv (ag->recv_buf->data, n, MPI_BYTE, 0, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == TAG_DATA) {
      /* the worker's socket is closed: dropped */
    } else if (st.MPI_TAG == TAG_CTRL && n == 2 * (int) sizeof (int32_t)) {
      int32_t msg[2];
      memcpy (msg, ag->recv_buf->data, sizeof msg);
      if (!handle_control (ag, msg))
        return FALSE;
    }
  }
}

/* Bytes both ways between the worker and rank 0; the worker's end of stream closes its
 * socket (its exit is reported once it is reaped too). */
static void
pump_worker (Agent *ag, gboolean *busy)
{
  tr_mpi_relay_write (&ag->relay, busy);
  if (tr_mpi_relay_read (&ag->relay, 0, busy))
    tr_mpi_relay_close_fd (&ag->relay);
}

int
tr_mpi_agent_main (void)
{
  Agent ag = { 0 };
  tr_mpi_relay_init (&ag.relay);
  MPI_Comm_rank (MPI_COMM_WORLD, &ag.rank);
  /* the host as the user knows it: under Slurm, the node's name in Slurm's view (what
   * squeue and sinfo show, not always the machine's hostname) */
  const char *node = g_getenv ("SLURMD_NODENAME");
  if (node && *node)
    g_strlcpy (ag.host, node, sizeof ag.host);
  else if (gethostname (ag.host, sizeof ag.host - 1) != 0)
    g_strlcpy (ag.host, "?", sizeof ag.host);
  ag.program = tr_paths_worker_program ();
  ag.recv_buf = g_byte_array_new ();
  struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: ppoll returns */
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);

  guint sleep_us = IDLE_SLEEP_MIN_US;
  for (;;) {
    if (agent_signal) {
      /* mpirun is ending the job: no MPI_Finalize, the other ranks are going too */
      int sig = agent_signal;
      stop_worker (&ag);
      _exit (128 + sig);
    }
    gboolean busy = FALSE;
    tr_mpi_relay_test_send (&ag.relay, &busy);
    if (!receive_messages (&ag, &busy))
      break;
    pump_worker (&ag, &busy);
    reap (&ag, FALSE);
    maybe_report_exit (&ag);
    if (busy) {
      sleep_us = IDLE_SLEEP_MIN_US;
      continue;
    }
    struct pollfd pfd = { .fd = ag.relay.fd, .events = tr_mpi_relay_poll_events (&ag.relay, TRUE) };
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) sleep_us * 1000 };
    ppoll (&pfd, pfd.events ? 1 : 0, &ts, NULL);
    sleep_us = MIN (sleep_us * 2, IDLE_SLEEP_MAX_US);
  }

  /* Shut down: the job is over; a worker still here is stopped.  Rank 0 goes on
   * receiving until BYE, so a send still in flight completes. */
  stop_worker (&ag);
  if (ag.relay.sending)
    MPI_Wait (&ag.relay.send_req, MPI_STATUS_IGNORE);
  send_event (&ag, EVENT_BYE, 0, 0);
  g_byte_array_unref (ag.recv_buf);
  tr_mpi_relay_clear (&ag.relay);
  g_free (ag.program);
  MPI_Finalize ();
  return 0;
}
