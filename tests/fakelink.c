/* fakelink.c — a fake worker, for frames no real worker sends.
 *
 * A link class whose "worker" is a thread of this process speaking the wire protocol on a
 * socket pair: it echoes each task's payload, except that the first TASKS frame of at least
 * fake_forge_min tasks is answered with a wrong id in its second record.  test-pool.c
 * forges answers with it; test-link.c holds it to the contract every link class keeps
 * (with no forging: fake_forge_min = G_MAXUINT32).
 *
 * What it is not: a process.  Its pid is made up (no such process is signalled),
 * signal_group does nothing, and close reports every end as "exited with status 0".
 */
#include "fakelink.h"
#include "wire.h"

#include <sys/socket.h>

#include <glib-unix.h>
#include <unistd.h>

typedef struct {
  TrLink link;
  int peer;
  GThread *thread;
} FakeLink;

/* what they mean: fakelink.h */
gint fake_spawns;
gint fake_forged;
guint32 fake_forge_min;
guint64 fake_forge_from_id;
char fake_forged_first[32];

static gboolean
fake_read (int fd, guint8 *buf, gsize n)
{
  while (n) {
    gssize got = read (fd, buf, n);
    if (got <= 0)
      return FALSE;
    buf += got;
    n -= (gsize) got;
  }
  return TRUE;
}

static gpointer
fake_worker (gpointer data)
{
  FakeLink *f = data;
  g_auto (TrWireBuf) out = { 0 };
  tr_wire_buf_init (&out);
  guint8 head[TR_WIRE_HEADER];
  while (fake_read (f->peer, head, sizeof head)) {
    guint32 len = (guint32) head[0] | (guint32) head[1] << 8 | (guint32) head[2] << 16 |
                  (guint32) head[3] << 24;
    g_autofree guint8 *body = g_malloc (len + 1);
    if (!fake_read (f->peer, body, len) || head[4] == TR_MSG_QUIT)
      break;
    out.len = 0;
    gsize at;
    if (head[4] == TR_MSG_CONFIG) {
      at = tr_wire_begin (&out, TR_MSG_HELLO);
      tr_wire_end (&out, at);
    } else if (head[4] == TR_MSG_TASKS) {
      TrWireReader r;
      tr_wire_reader_init (&r, body, len);
      guint32 n = tr_wire_get_u32 (&r);
      gboolean forge = FALSE;
      at = tr_wire_begin (&out, TR_MSG_RESULTS);
      tr_wire_put_u32 (&out, n);
      for (guint32 i = 0; i < n; i++) {
        TrWireTask t;
        g_assert_true (tr_wire_read_task (&r, &t));
        if (i == 0)
          forge = n >= fake_forge_min && t.id >= fake_forge_from_id &&
                  g_atomic_int_compare_and_exchange (&fake_forged, 0, 1);
        if (forge && i == 0) /* the payload is not NUL-terminated: copy its length only */
          memcpy (fake_forged_first, t.payload, MIN (t.len, sizeof fake_forged_first - 1));
        gsize rec = tr_wire_begin_result (&out, forge && i == 1 ? G_MAXUINT64 : t.id, 0);
        tr_wire_buf_append (&out, t.payload, (guint) t.len);
        tr_wire_end_result (&out, rec, 0, 0, 1000, 0, NULL, NULL);
      }
      tr_wire_end (&out, at);
    }
    if (out.len && send (f->peer, out.data, out.len, MSG_NOSIGNAL) != (gssize) out.len)
      break;
    if (head[4] == TR_MSG_TASKS && g_atomic_int_get (&fake_spawns) == 1)
      g_usleep (20000); /* the first worker is slow: the tasks queue up into larger frames */
  }
  /* The worker is gone (QUIT, its link's end, a failed send): its end of the link goes
   * with it, as a process's does when it exits.  A class without `ended` is read that
   * way (link.h): the link's end of stream is the worker's end. */
  shutdown (f->peer, SHUT_RDWR);
  return NULL;
}

static TrLink *
fake_spawn (guint slot, const char *program, GError **error)
{
  (void) slot, (void) program, (void) error;
  int sv[2];
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (sv[0], TRUE, NULL));
  FakeLink *f = g_new0 (FakeLink, 1);
  f->link.klass = &fake_link;
  f->link.fd = sv[0];
  f->link.pid = 100000 + g_atomic_int_add (&fake_spawns, 1); /* no such process is signalled */
  f->peer = sv[1];
  f->thread = g_thread_new ("fake-worker", fake_worker, f);
  return &f->link;
}

static gssize
fake_send (TrLink *link, const guint8 *data, gsize len)
{
  return send (link->fd, data, len, MSG_NOSIGNAL);
}

static gssize
fake_receive (TrLink *link, guint8 *buf, gsize len)
{
  return read (link->fd, buf, len);
}

static void
fake_kill (TrLink *link)
{
  shutdown (link->fd, SHUT_RDWR); /* the thread reads end of stream and returns */
}

static void
fake_signal_group (TrLink *link, int sig)
{
  (void) link, (void) sig;
}

static char *
fake_close (TrLink *link, gboolean *clean, int *status)
{
  FakeLink *f = (FakeLink *) link;
  shutdown (link->fd, SHUT_RDWR);
  g_thread_join (f->thread);
  close (link->fd);
  close (f->peer);
  g_free (f);
  *clean = TRUE;
  *status = 0;
  return g_strdup ("exited with status 0");
}

const TrLinkClass fake_link = {
  .spawn = fake_spawn, .send = fake_send, .receive = fake_receive,
  .kill = fake_kill, .signal_group = fake_signal_group, .close = fake_close,
};
