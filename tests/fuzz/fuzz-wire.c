/* fuzz-wire.c — libFuzzer target for the frame decoder: the input is a byte stream as a
 * worker (or the parent) might send it.  Every frame is cut with tr_wire_next_frame and
 * decoded with the same readers pool.c and worker.c use; nothing may crash, read out of
 * bounds, or allocate what a header claims. */
#include "wire.h"

#include <stdint.h>

static void
decode (TrMsgType type, const guint8 *body, gsize len)
{
  TrWireReader r;
  tr_wire_reader_init (&r, body, len);
  switch (type) {
  case TR_MSG_HELLO:
    break;
  case TR_MSG_INIT_FAILED:
    g_free (tr_wire_get_str (&r));
    break;
  case TR_MSG_CONFIG: {
    g_free (tr_wire_get_str (&r));
    tr_wire_get_u32 (&r);
    guint32 n = tr_wire_get_u32 (&r);
    for (guint32 i = 0; i < n && !r.bad; i++) {
      g_free (tr_wire_get_str (&r));
      g_free (tr_wire_get_str (&r));
    }
    break;
  }
  case TR_MSG_TASKS: {
    guint32 n = tr_wire_get_u32 (&r);
    TrWireTask t;
    for (guint32 i = 0; i < n && tr_wire_read_task (&r, &t); i++)
      ;
    break;
  }
  case TR_MSG_RESULTS: {
    guint32 n = tr_wire_get_u32 (&r);
    TrWireResult res;
    for (guint32 i = 0; i < n && tr_wire_read_result (&r, &res); i++) {
      if (res.failed) {
        g_autofree char *msg = g_utf8_make_valid ((const char *) res.message, res.message_len);
        (void) msg;
      }
    }
    break;
  }
  case TR_MSG_QUIT:
  case TR_MSG_CANCEL:
    break;
  }
  (void) tr_wire_reader_done (&r);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  gsize off = 0;
  for (;;) {
    TrMsgType type;
    const guint8 *body;
    gsize len, consumed;
    TrFrameStatus st = tr_wire_next_frame (data + off, size - off, &type, &body, &len, &consumed);
    if (st != TR_FRAME_OK)
      break;
    decode (type, body, len);
    off += consumed;
  }
  return 0;
}
