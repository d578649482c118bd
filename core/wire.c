/* wire.c — the length-prefixed frames between the parent and its workers.
 *
 * Owns: the byte layout of frames and of the values inside them (little-endian integers,
 * byte strings as u32 length + bytes), and the framing rule: a frame whose header claims
 * more than TR_WIRE_MAX_BODY, or whose type is unknown, is bad, and a reader never trusts
 * a length it has not checked against what it holds.  A worker that sends a bad frame is
 * treated as crashed by the pool (pool/answers.c).  Also the buffer frames are written
 * into (TrWireBuf), and CONFIG's layout, written by the pool and read by the worker.
 * Does not own: moving the bytes (link-local.c), what each message means (pool/answers.c,
 * worker.c).  The same frames will travel over other links (MPI) unchanged.
 */
#include "wire.h"

#include <string.h>

#define TASK_HEAD (TR_WIRE_TASK_RECORD (0)) /* a task record: u64 id, u32 payload length */

/* The 4- and 8-byte cases are single loads and stores (the byte loops were not merged
 * by the compiler, and every record reads several). */
static inline void
set_le (guint8 *p, guint64 v, guint n)
{
  if (n == 8) {
    guint64 le = GUINT64_TO_LE (v);
    memcpy (p, &le, 8);
  } else if (n == 4) {
    guint32 le = GUINT32_TO_LE ((guint32) v);
    memcpy (p, &le, 4);
  } else {
    for (guint i = 0; i < n; i++)
      p[i] = (guint8) (v >> (8 * i));
  }
}

static inline void
put_le (TrWireBuf *buf, guint64 v, guint n)
{
  set_le (tr_wire_buf_extend (buf, n), v, n);
}

void
tr_wire_buf_init (TrWireBuf *buf)
{
  buf->room = 256;
  buf->data = g_malloc (buf->room);
  buf->len = 0;
}

void
tr_wire_buf_clear (TrWireBuf *buf)
{
  g_clear_pointer (&buf->data, g_free);
  buf->len = buf->room = 0;
}

void
tr_wire_buf_grow (TrWireBuf *buf, gsize more)
{
  if (more > G_MAXSIZE / 4 - buf->len)
    g_error ("taskrun: a frame buffer cannot grow by %" G_GSIZE_FORMAT " bytes past %" G_GSIZE_FORMAT,
             more, buf->len);
  buf->room = MAX (2 * buf->room, buf->len + more);
  buf->data = g_realloc (buf->data, buf->room);
}

void
tr_wire_buf_consume (TrWireBuf *buf, gsize n)
{
  g_assert (n <= buf->len);
  memmove (buf->data, buf->data + n, buf->len - n);
  buf->len -= n;
}

gsize
tr_wire_begin (TrWireBuf *buf, TrMsgType type)
{
  gsize start = buf->len;
  put_le (buf, 0, 4);
  tr_wire_put_u8 (buf, (guint8) type);
  return start;
}

void
tr_wire_patch_u32 (TrWireBuf *buf, gsize at, guint32 v)
{
  set_le (buf->data + at, v, 4);
}

void
tr_wire_end (TrWireBuf *buf, gsize start)
{
  gsize body = buf->len - start - TR_WIRE_HEADER;
  g_assert (body <= TR_WIRE_MAX_BODY);
  tr_wire_patch_u32 (buf, start, (guint32) body);
}

void
tr_wire_put_u8 (TrWireBuf *buf, guint8 v)
{
  *tr_wire_buf_extend (buf, 1) = v;
}

void
tr_wire_put_u32 (TrWireBuf *buf, guint32 v)
{
  put_le (buf, v, 4);
}

void
tr_wire_put_u64 (TrWireBuf *buf, guint64 v)
{
  put_le (buf, v, 8);
}

void
tr_wire_put_bytes (TrWireBuf *buf, const void *data, gsize len)
{
  g_assert (len <= TR_WIRE_MAX_BODY);
  put_le (buf, len, 4);
  tr_wire_buf_append (buf, data, len);
}

void
tr_wire_put_str (TrWireBuf *buf, const char *s)
{
  tr_wire_put_bytes (buf, s, s ? strlen (s) : 0);
}

void
tr_wire_reader_init (TrWireReader *r, const guint8 *body, gsize len)
{
  r->p = body;
  r->end = body + len;
  r->bad = FALSE;
}

guint8
tr_wire_get_u8 (TrWireReader *r)
{
  const guint8 *p = tr_wire_take (r, 1);
  return p ? *p : 0;
}

guint32
tr_wire_get_u32 (TrWireReader *r)
{
  const guint8 *p = tr_wire_take (r, 4);
  return p ? (guint32) tr_wire_load_le (p, 4) : 0;
}

guint64
tr_wire_get_u64 (TrWireReader *r)
{
  const guint8 *p = tr_wire_take (r, 8);
  return p ? tr_wire_load_le (p, 8) : 0;
}

const guint8 *
tr_wire_get_bytes (TrWireReader *r, gsize *len)
{
  return tr_wire_take_bytes (r, len);
}

char *
tr_wire_get_str (TrWireReader *r)
{
  gsize n;
  const guint8 *p = tr_wire_get_bytes (r, &n);
  if (r->bad)
    return NULL;
  if (memchr (p, '\0', n)) {
    r->bad = TRUE;
    return NULL;
  }
  return g_strndup ((const char *) p, n);
}

gboolean
tr_wire_reader_done (const TrWireReader *r)
{
  return !r->bad && r->p == r->end;
}

TrFrameStatus
tr_wire_next_frame (const guint8 *buf, gsize len, TrMsgType *type, const guint8 **body,
                    gsize *body_len, gsize *consumed)
{
  if (len < TR_WIRE_HEADER)
    return TR_FRAME_INCOMPLETE;
  guint64 n = tr_wire_load_le (buf, 4);
  guint8 t = buf[4];
  if (n > TR_WIRE_MAX_BODY || t < TR_MSG_CONFIG || t > TR_MSG_LAST)
    return TR_FRAME_BAD;
  if (len - TR_WIRE_HEADER < n)
    return TR_FRAME_INCOMPLETE;
  *type = (TrMsgType) t;
  *body = buf + TR_WIRE_HEADER;
  *body_len = (gsize) n;
  *consumed = TR_WIRE_HEADER + (gsize) n;
  return TR_FRAME_OK;
}

/* Records are written whole, not field by field: a frame may carry thousands of them. */
gsize
tr_wire_begin_result (TrWireBuf *buf, guint64 id, guint64 start_us)
{
  gsize at = buf->len;
  guint8 *p = tr_wire_buf_extend (buf, TR_WIRE_RESULT_HEAD);
  memset (p, 0, TR_WIRE_RESULT_HEAD);
  set_le (p, id, 8);
  set_le (p + 13, start_us, 8);
  return at;
}

void
tr_wire_end_result (TrWireBuf *buf, gsize at, guint8 status, guint32 code, guint64 run_ns,
                    guint n_files, const char *message, const char *domain)
{
  gsize out_len = buf->len - at - TR_WIRE_RESULT_HEAD;
  g_assert (out_len <= TR_WIRE_MAX_BODY && status <= 2 && n_files <= TR_WIRE_TASK_FILES);
  guint8 *p = buf->data + at;
  p[8] = status;
  set_le (p + 9, code, 4);
  set_le (p + 21, run_ns, 8);
  set_le (p + 29, out_len, 4);
  p[33] = (guint8) n_files;
  /* only a failure has a message and a domain: a frame of a million tiny successes does
   * not carry a million empty ones */
  if (status != 1)
    return;
  gsize mlen = message ? strlen (message) : 0;
  guint8 *m = tr_wire_buf_extend (buf, 4 + mlen);
  set_le (m, mlen, 4);
  if (mlen)
    memcpy (m + 4, message, mlen);
  gsize dlen = domain ? strlen (domain) : 0;
  guint8 *d = tr_wire_buf_extend (buf, 4 + dlen);
  set_le (d, dlen, 4);
  if (dlen)
    memcpy (d + 4, domain, dlen);
}

void
tr_wire_put_returned (TrWireBuf *buf, guint64 id)
{
  tr_wire_end_result (buf, tr_wire_begin_result (buf, id, 0), 2, 0, 0, 0, NULL, NULL);
}

void
tr_wire_put_task (TrWireBuf *buf, guint64 id, const guint8 *payload, gsize len)
{
  g_assert (len <= TR_WIRE_MAX_BODY);
  guint8 *p = tr_wire_buf_extend (buf, TR_WIRE_TASK_RECORD (len));
  set_le (p, id, 8);
  set_le (p + 8, len, 4);
  if (len)
    memcpy (p + TASK_HEAD, payload, len);
}

void
tr_wire_put_config (TrWireBuf *out, const char *plugin_path, guint32 slot,
                    gboolean carries_files, const GPtrArray *pairs)
{
  gsize at = tr_wire_begin (out, TR_MSG_CONFIG);
  tr_wire_put_str (out, plugin_path);
  tr_wire_put_u32 (out, slot);
  tr_wire_put_u8 (out, carries_files ? 1 : 0);
  tr_wire_put_u32 (out, pairs->len / 2);
  for (guint i = 0; i + 1 < pairs->len; i += 2) {
    tr_wire_put_str (out, g_ptr_array_index (pairs, i));
    tr_wire_put_str (out, g_ptr_array_index (pairs, i + 1));
  }
  tr_wire_end (out, at);
}

gboolean
tr_wire_read_config (const guint8 *body, gsize len, TrWireConfig *out)
{
  *out = (TrWireConfig) { .pairs = g_ptr_array_new_with_free_func (g_free) };
  TrWireReader r;
  tr_wire_reader_init (&r, body, len);
  out->plugin_path = tr_wire_get_str (&r);
  out->slot = tr_wire_get_u32 (&r);
  guint8 files = tr_wire_get_u8 (&r);
  out->carries_files = files == 1;
  if (files > 1)
    r.bad = TRUE;
  guint32 n = tr_wire_get_u32 (&r);
  for (guint32 i = 0; i < n && !r.bad; i++) {
    char *key = tr_wire_get_str (&r);
    char *value = tr_wire_get_str (&r);
    if (r.bad) {
      g_free (key);
      g_free (value);
      break;
    }
    g_ptr_array_add (out->pairs, key);
    g_ptr_array_add (out->pairs, value);
  }
  return !r.bad && out->plugin_path && tr_wire_reader_done (&r);
}

void
tr_wire_config_clear (TrWireConfig *config)
{
  g_clear_pointer (&config->plugin_path, g_free);
  g_clear_pointer (&config->pairs, g_ptr_array_unref);
}
