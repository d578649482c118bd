/* protocol.h — the messages between rank 0 and the agents (ranks >= 1).
 *
 * The worker's own frames (wire.h) travel unchanged as TAG_DATA messages: a byte stream
 * cut wherever a read ended, in order (MPI does not let two messages from one sender to
 * one receiver overtake each other when one receive could match both, and every receive
 * here takes any tag).  Control and events are small arrays of int32.
 */
#ifndef TASKRUN_MPI_PROTOCOL_H
#define TASKRUN_MPI_PROTOCOL_H

#include <stdint.h>

enum {
  TAG_DATA = 1,  /* bytes of the worker's stream, either way */
  TAG_CTRL = 2,  /* rank 0 -> agent: int32 { op, arg } */
  TAG_EVENT = 3, /* agent -> rank 0: int32 { event, arg, pid } + host name (char[]) */
};

enum {
  CTRL_SPAWN = 1,    /* start a worker */
  CTRL_SIGNAL = 2,   /* arg: a signal for the worker's process group */
  CTRL_KILL = 3,     /* SIGKILL to the worker */
  CTRL_CLOSE = 4,    /* rank 0 closed its end: close the worker's, reap it */
  CTRL_SHUTDOWN = 5, /* the job is over: stop any worker, leave */
};

enum {
  EVENT_SPAWNED = 1,      /* pid: the worker's; then its host name */
  EVENT_SPAWN_FAILED = 2, /* arg: errno */
  EVENT_EXITED = 3,       /* arg: the worker's wait status; nothing more comes for it */
  EVENT_BYE = 4,          /* after CTRL_SHUTDOWN: the agent sends nothing more */
};

#define EVENT_INTS 3
#define EVENT_HOST_MAX 256
#define DATA_CHUNK (256 * 1024)

/* Poll cadence while MPI is quiet: MPI offers no descriptor to wait on, so both sides
 * look for messages after each wake-up and sleep at most this long (microseconds) in
 * between, starting short after any traffic. */
#define IDLE_SLEEP_MIN_US 20
#define IDLE_SLEEP_MAX_US 2000

#endif
