/* wire.h — the frames that travel between the parent and its workers (see wire.c). */
#ifndef TASKRUN_WIRE_H
#define TASKRUN_WIRE_H

#include <glib.h>
#include <string.h>

#define TR_WIRE_HEADER 5u                 /* u32 body length, u8 type */
#define TR_WIRE_MAX_BODY (64u << 20)      /* no frame body is larger: 64 MiB */

typedef enum {
  TR_MSG_CONFIG = 1,  /* P->W  str plugin path, u32 slot, u8 files (1: the link carries
                       *       descriptors), u32 n, n x (str key, str value) */
  TR_MSG_HELLO,       /* W->P  (empty): worker_init succeeded */
  TR_MSG_INIT_FAILED, /* W->P  str message */
  TR_MSG_TASKS,       /* P->W  u32 n, n x (u64 seq, bytes payload) */
  TR_MSG_RESULTS,     /* W->P  u32 n, n x (u64 seq, u8 status, u32 code, u64 start (Unix
                       *       microseconds), u64 run nanoseconds, u32 output length, u8 files,
                       *       the output, and for a failure (status 1) only: str message,
                       *       str domain (the GError's, "" for the core's own)); `files`
                       *       descriptors attached
                       *       (SCM_RIGHTS) to the frame's first byte, in record order;
                       *       status 0 done, 1 failed, 2 not run: sent back because the
                       *       answer had no room (never the first, then all the rest), or
                       *       because a CANCEL came (from any task on, then all the rest) */
  TR_MSG_QUIT,        /* P->W  (empty) finish and exit */
  TR_MSG_CANCEL,      /* P->W  (empty) the job was stopped: start no more tasks, send every
                       *       task not yet started back as not run */
  TR_MSG_LAST = TR_MSG_CANCEL,
} TrMsgType;

/* Writing: frames are appended to a TrWireBuf, a plain buffer written in place.  A
 * worker writes a result record per task, and the size checks of a GByteArray (a call
 * or two per append) cost more than a tiny task's own work. */
typedef struct {
  guint8 *data; /* never NULL once initialised */
  gsize len;    /* bytes written */
  gsize room;   /* bytes allocated */
} TrWireBuf;

void tr_wire_buf_init (TrWireBuf *buf);
void tr_wire_buf_clear (TrWireBuf *buf); /* frees the bytes */
void tr_wire_buf_grow (TrWireBuf *buf, gsize more); /* room for `more` bytes after len */
void tr_wire_buf_consume (TrWireBuf *buf, gsize n); /* drops the first n bytes */

/* Appends n bytes, not yet written, and returns where they start. */
static inline guint8 *
tr_wire_buf_extend (TrWireBuf *buf, gsize n)
{
  if (G_UNLIKELY (n > buf->room - buf->len))
    tr_wire_buf_grow (buf, n);
  guint8 *p = buf->data + buf->len;
  buf->len += n;
  return p;
}

static inline void
tr_wire_buf_append (TrWireBuf *buf, const void *data, gsize n)
{
  if (n)
    memcpy (tr_wire_buf_extend (buf, n), data, n);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TrWireBuf, tr_wire_buf_clear)

gsize tr_wire_begin (TrWireBuf *buf, TrMsgType type);
void tr_wire_end (TrWireBuf *buf, gsize start);
void tr_wire_put_u8 (TrWireBuf *buf, guint8 v);
void tr_wire_put_u32 (TrWireBuf *buf, guint32 v);
void tr_wire_put_u64 (TrWireBuf *buf, guint64 v);
void tr_wire_put_bytes (TrWireBuf *buf, const void *data, gsize len);
void tr_wire_put_str (TrWireBuf *buf, const char *s);
void tr_wire_patch_u32 (TrWireBuf *buf, gsize at, guint32 v);
/* One task record of a TASKS frame, TR_WIRE_TASK_RECORD (len) bytes: u64 id, then the
 * payload as bytes. */
#define TR_WIRE_TASK_RECORD(len) (8 + 4 + (gsize) (len))
void tr_wire_put_task (TrWireBuf *buf, guint64 id, const guint8 *payload, gsize len);

/* Reading one frame body.  Any read past the end sets `bad` and returns zeros. */
typedef struct {
  const guint8 *p, *end;
  gboolean bad;
} TrWireReader;

void tr_wire_reader_init (TrWireReader *r, const guint8 *body, gsize len);
guint8 tr_wire_get_u8 (TrWireReader *r);
guint32 tr_wire_get_u32 (TrWireReader *r);
guint64 tr_wire_get_u64 (TrWireReader *r);
const guint8 *tr_wire_get_bytes (TrWireReader *r, gsize *len);
char *tr_wire_get_str (TrWireReader *r); /* newly allocated, NUL-terminated; NULL if bad */
gboolean tr_wire_reader_done (const TrWireReader *r); /* consumed exactly, nothing bad */

/* One task of a TASKS frame, and one result of a RESULTS frame, as decoded. */
typedef struct {
  guint64 id;
  const guint8 *payload;
  gsize len;
} TrWireTask;

typedef struct {
  guint64 id;
  gboolean failed;
  gboolean returned;   /* not run: the frame's answer was full; the parent sends it again */
  guint32 code;
  guint64 start_us;    /* Unix microseconds when the task started */
  guint64 run_ns;      /* how long run took */
  const guint8 *data;  /* the task's output (also when it failed) */
  gsize len;
  const guint8 *message; /* the error message when failed, else NULL */
  gsize message_len;
  const guint8 *domain;  /* the error's domain (g_quark_to_string); empty: the core's */
  gsize domain_len;
  guint n_files;       /* descriptors this task attached (tr_output_attach_file) */
} TrWireResult;

/* One result record is written in two steps around the task's run: begin writes its
 * head (id, start; the rest filled in by end), the task appends its output, and end
 * fills in the status (0 done, 1 failed, 2 not run), code, run time and output length
 * and appends the message.  begin returns where the record starts; the output begins
 * TR_WIRE_RESULT_HEAD bytes after it. */
#define TR_WIRE_RESULT_HEAD (8 + 1 + 4 + 8 + 8 + 4 + 1) /* id, status, code, start, run time,
                                                     * output length, files */
/* The most descriptors one task may attach; a frame carries at most TR_WIRE_FRAME_FILES. */
#define TR_WIRE_TASK_FILES 4
#define TR_WIRE_FRAME_FILES 64
gsize tr_wire_begin_result (TrWireBuf *buf, guint64 id, guint64 start_us);
void tr_wire_end_result (TrWireBuf *buf, gsize at, guint8 status, guint32 code, guint64 run_ns,
                         guint n_files, const char *message, const char *domain);

/* Appends the result record of a task sent back unrun (status 2), TR_WIRE_RETURNED_RECORD
 * bytes: id, status, code, start and run time, empty output, no message. */
#define TR_WIRE_RETURNED_RECORD TR_WIRE_RESULT_HEAD
void tr_wire_put_returned (TrWireBuf *buf, guint64 id);

/* ---- Reading records, inline ----------------------------------------------------------
 * Records are read whole, not field by field, and without a call per record: a frame
 * may carry thousands of them, and the parent reads each twice (the I/O thread checks an
 * answer, the main thread reads its results); the calls and checks per field, then per
 * record, were much of the cost of a one-number task. */

/* The 4- and 8-byte cases are single loads (byte loops were not merged by the compiler). */
static inline guint64
tr_wire_load_le (const guint8 *p, guint n)
{
  if (n == 8) {
    guint64 le;
    memcpy (&le, p, 8);
    return GUINT64_FROM_LE (le);
  }
  if (n == 4) {
    guint32 le;
    memcpy (&le, p, 4);
    return GUINT32_FROM_LE (le);
  }
  guint64 v = 0;
  for (guint i = 0; i < n; i++)
    v |= (guint64) p[i] << (8 * i);
  return v;
}

static inline const guint8 *
tr_wire_take (TrWireReader *r, gsize n)
{
  if (r->bad || (gsize) (r->end - r->p) < n) {
    r->bad = TRUE;
    return NULL;
  }
  const guint8 *at = r->p;
  r->p += n;
  return at;
}

/* A byte string: u32 length, then that many bytes. */
static inline const guint8 *
tr_wire_take_bytes (TrWireReader *r, gsize *len)
{
  const guint8 *h = tr_wire_take (r, 4);
  gsize n = h ? (gsize) tr_wire_load_le (h, 4) : 0;
  const guint8 *p = h ? tr_wire_take (r, n) : NULL;
  *len = p ? n : 0;
  return p;
}

/* Each reads one record; FALSE when the body is malformed (r->bad is set). */
static inline gboolean
tr_wire_read_task (TrWireReader *r, TrWireTask *out)
{
  const guint8 *h = tr_wire_take (r, TR_WIRE_TASK_RECORD (0));
  gsize n = h ? (gsize) tr_wire_load_le (h + 8, 4) : 0;
  out->id = h ? tr_wire_load_le (h, 8) : 0;
  out->payload = h ? tr_wire_take (r, n) : NULL;
  out->len = out->payload ? n : 0;
  return !r->bad;
}

static inline gboolean
tr_wire_read_result (TrWireReader *r, TrWireResult *out)
{
  const guint8 *h = tr_wire_take (r, TR_WIRE_RESULT_HEAD);
  if (!h) {
    memset (out, 0, sizeof *out);
    return FALSE;
  }
  guint8 status = h[8];
  out->id = tr_wire_load_le (h, 8);
  out->code = (guint32) tr_wire_load_le (h + 9, 4);
  out->start_us = tr_wire_load_le (h + 13, 8);
  out->run_ns = tr_wire_load_le (h + 21, 8);
  gsize n = (gsize) tr_wire_load_le (h + 29, 4);
  out->n_files = h[33];
  out->data = tr_wire_take (r, n);
  out->len = out->data ? n : 0;
  if (status == 1) {
    out->message = tr_wire_take_bytes (r, &out->message_len);
    out->domain = tr_wire_take_bytes (r, &out->domain_len);
  } else {
    out->message = out->domain = NULL;
    out->message_len = out->domain_len = 0;
  }
  if (status > 2 || out->n_files > TR_WIRE_TASK_FILES || (status == 2 && out->n_files))
    r->bad = TRUE;
  out->failed = status == 1;
  out->returned = status == 2;
  return !r->bad;
}

typedef enum {
  TR_FRAME_INCOMPLETE, /* need more bytes */
  TR_FRAME_OK,
  TR_FRAME_BAD,        /* unknown type or a length over TR_WIRE_MAX_BODY */
} TrFrameStatus;

/* Looks for one complete frame at the start of buf. */
TrFrameStatus tr_wire_next_frame (const guint8 *buf, gsize len, TrMsgType *type,
                                  const guint8 **body, gsize *body_len, gsize *consumed);

/* The descriptor a local worker finds its end of the link on (link-local.c spawns it
 * there, main.c hands it to tr_worker_main). */
#define TR_WORKER_LINK_FD 3

/* How a worker process exits: what its status says to whoever reads it. */
typedef enum {
  TR_WORKER_EXIT_OK = 0,
  TR_WORKER_EXIT_INIT_FAILED = 3,  /* it sent INIT_FAILED: the plugin or its options */
  TR_WORKER_EXIT_NOT_OURS = 70,    /* its parent is not the process that started it */
  TR_WORKER_EXIT_BAD_CONFIG = 71,  /* the first frame was not a valid CONFIG */
  TR_WORKER_EXIT_LINK_LOST = 72,   /* HELLO could not be written */
  TR_WORKER_EXIT_BAD_FRAME = 73,   /* the parent sent a frame it does not understand */
  TR_WORKER_EXIT_PARENT_DIED = 74, /* the parent died: its process group was killed */
} TrWorkerExit;

/* CONFIG, the first frame a worker reads: its plugin, its slot, whether its link carries
 * descriptors (TrLinkClass.carries_files), and the plugin's options as key and value
 * strings (pairs: key, value, key, value ...). */
void tr_wire_put_config (TrWireBuf *out, const char *plugin_path, guint32 slot,
                         gboolean carries_files, const GPtrArray *pairs);
typedef struct {
  char *plugin_path;
  guint32 slot;
  gboolean carries_files;
  GPtrArray *pairs; /* of char*, owned: key, value, key, value ... */
} TrWireConfig;
/* FALSE for a body that is not a CONFIG's; out is cleared either way first. */
gboolean tr_wire_read_config (const guint8 *body, gsize len, TrWireConfig *out);
void tr_wire_config_clear (TrWireConfig *config);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TrWireConfig, tr_wire_config_clear)

#endif
