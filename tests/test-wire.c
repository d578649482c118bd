/* test-wire.c — the frame format: round trips, incomplete frames, the frames a reader
 * must refuse (oversized length, unknown type, truncated fields), and result statuses. */
#include "testutil.h"
#include "wire.h"

static void
test_round_trip (void)
{
  g_auto (TrWireBuf) buf = { 0 };
  tr_wire_buf_init (&buf);
  gsize at = tr_wire_begin (&buf, TR_MSG_TASKS);
  tr_wire_put_u32 (&buf, 2);
  tr_wire_put_u64 (&buf, G_GUINT64_CONSTANT (0x0102030405060708));
  tr_wire_put_bytes (&buf, "abc", 3);
  tr_wire_put_u64 (&buf, 9);
  tr_wire_put_str (&buf, "");
  tr_wire_end (&buf, at);

  TrMsgType type;
  const guint8 *body;
  gsize len, consumed;
  g_assert_cmpint (tr_wire_next_frame (buf.data, buf.len, &type, &body, &len, &consumed), ==,
                   TR_FRAME_OK);
  g_assert_cmpint (type, ==, TR_MSG_TASKS);
  g_assert_cmpuint (consumed, ==, buf.len);
  TrWireReader r;
  tr_wire_reader_init (&r, body, len);
  g_assert_cmpuint (tr_wire_get_u32 (&r), ==, 2);
  g_assert_cmpuint (tr_wire_get_u64 (&r), ==, G_GUINT64_CONSTANT (0x0102030405060708));
  gsize n;
  const guint8 *p = tr_wire_get_bytes (&r, &n);
  g_assert_cmpmem (p, n, "abc", 3);
  g_assert_cmpuint (tr_wire_get_u64 (&r), ==, 9);
  g_autofree char *empty = tr_wire_get_str (&r);
  g_assert_cmpstr (empty, ==, "");
  g_assert_true (tr_wire_reader_done (&r));
}

static void
test_incomplete (void)
{
  g_auto (TrWireBuf) buf = { 0 };
  tr_wire_buf_init (&buf);
  gsize at = tr_wire_begin (&buf, TR_MSG_HELLO);
  tr_wire_put_u32 (&buf, 42);
  tr_wire_end (&buf, at);
  TrMsgType type;
  const guint8 *body;
  gsize len, consumed;
  for (gsize cut = 0; cut < buf.len; cut++)
    g_assert_cmpint (tr_wire_next_frame (buf.data, cut, &type, &body, &len, &consumed), ==,
                     TR_FRAME_INCOMPLETE);
}

static void
test_refused (void)
{
  TrMsgType type;
  const guint8 *body;
  gsize len, consumed;
  /* a header claiming 2 GiB is bad at once: nobody waits for or allocates it */
  const guint8 huge[] = { 0x00, 0x00, 0x00, 0x80, TR_MSG_RESULTS };
  g_assert_cmpint (tr_wire_next_frame (huge, sizeof huge, &type, &body, &len, &consumed), ==,
                   TR_FRAME_BAD);
  const guint8 just_over[] = { 0x01, 0x00, 0x00, 0x04, TR_MSG_RESULTS }; /* 64 MiB + 1 */
  g_assert_cmpint (tr_wire_next_frame (just_over, sizeof just_over, &type, &body, &len, &consumed),
                   ==, TR_FRAME_BAD);
  const guint8 bad_type[] = { 0x00, 0x00, 0x00, 0x00, 0x77 };
  g_assert_cmpint (tr_wire_next_frame (bad_type, sizeof bad_type, &type, &body, &len, &consumed),
                   ==, TR_FRAME_BAD);
  const guint8 zero_type[] = { 0x00, 0x00, 0x00, 0x00, 0x00 };
  g_assert_cmpint (tr_wire_next_frame (zero_type, sizeof zero_type, &type, &body, &len, &consumed),
                   ==, TR_FRAME_BAD);
}

static void
test_truncated_fields (void)
{
  /* a byte string that claims more than the body holds */
  const guint8 body[] = { 0x10, 0x00, 0x00, 0x00, 'a', 'b' };
  TrWireReader r;
  tr_wire_reader_init (&r, body, sizeof body);
  gsize n;
  g_assert_null (tr_wire_get_bytes (&r, &n));
  g_assert_true (r.bad);
  g_assert_cmpuint (tr_wire_get_u64 (&r), ==, 0);
  g_assert_false (tr_wire_reader_done (&r));
  /* a string with a NUL inside is refused */
  const guint8 nul[] = { 0x03, 0x00, 0x00, 0x00, 'a', 0, 'b' };
  tr_wire_reader_init (&r, nul, sizeof nul);
  g_assert_null (tr_wire_get_str (&r));
  /* left-over bytes make a frame invalid */
  const guint8 extra[] = { 0x01, 0x00, 0x00, 0x00, 0xff };
  tr_wire_reader_init (&r, extra, sizeof extra);
  tr_wire_get_u32 (&r);
  g_assert_false (tr_wire_reader_done (&r));
}

/* A result record's status: 0 done, 1 failed, 2 sent back unrun; anything else is bad.
 * Its count of attached files: at most TR_WIRE_TASK_FILES, and none for a task sent back. */
static void
test_result_status (void)
{
  for (guint status = 0; status <= 3; status++)
    for (guint files = 0; files <= TR_WIRE_TASK_FILES + 1; files++) {
    g_auto (TrWireBuf) buf = { 0 };
    tr_wire_buf_init (&buf);
    tr_wire_put_u64 (&buf, 7);
    tr_wire_put_u8 (&buf, (guint8) status);
    tr_wire_put_u32 (&buf, 0);
    tr_wire_put_u64 (&buf, 0);
    tr_wire_put_u64 (&buf, 0);
    tr_wire_put_u32 (&buf, 3);
    tr_wire_put_u8 (&buf, (guint8) files);
    tr_wire_buf_append (&buf, "out", 3);
    if (status == 1) { /* only a failure has a message and a domain */
      tr_wire_put_str (&buf, "");
      tr_wire_put_str (&buf, "");
    }
    TrWireReader r;
    tr_wire_reader_init (&r, buf.data, buf.len);
    TrWireResult res;
    gboolean ok = tr_wire_read_result (&r, &res);
    g_assert_cmpint (ok, ==, status <= 2 && files <= TR_WIRE_TASK_FILES &&
                                 !(status == 2 && files));
    if (!ok)
      continue;
    g_assert_cmpuint (res.n_files, ==, files);
    g_assert_cmpuint (res.id, ==, 7);
    g_assert_cmpint (res.failed, ==, status == 1);
    g_assert_cmpint (res.returned, ==, status == 2);
    g_assert_cmpmem (res.data, res.len, "out", 3);
    g_assert_true (tr_wire_reader_done (&r));
  }
}

/* A result written around a task's run (begin, the output appended, end) has the layout
 * written out field by field, and reads back; a record cut anywhere is refused. */
static void
test_result_writer (void)
{
  g_auto (TrWireBuf) expect = { 0 };
  tr_wire_buf_init (&expect);
  tr_wire_put_u64 (&expect, 42);
  tr_wire_put_u8 (&expect, 1);
  tr_wire_put_u32 (&expect, 7);
  tr_wire_put_u64 (&expect, 1700000000000000);
  tr_wire_put_u64 (&expect, 123456);
  tr_wire_put_u32 (&expect, 6);
  tr_wire_put_u8 (&expect, 2); /* files */
  tr_wire_buf_append (&expect, "output", 6);
  tr_wire_put_str (&expect, "it broke");
  tr_wire_put_str (&expect, "my-plugin-error-quark");

  g_auto (TrWireBuf) buf = { 0 };
  tr_wire_buf_init (&buf);
  tr_wire_buf_append (&buf, "pre", 3); /* a record need not start at 0 */
  gsize at = tr_wire_begin_result (&buf, 42, 1700000000000000);
  g_assert_cmpuint (at, ==, 3);
  tr_wire_buf_append (&buf, "output", 6);
  tr_wire_end_result (&buf, at, 1, 7, 123456, 2, "it broke", "my-plugin-error-quark");
  g_assert_cmpmem (buf.data + 3, buf.len - 3, expect.data, expect.len);

  TrWireReader r;
  TrWireResult res;
  for (gsize cut = 0; cut < expect.len; cut++) {
    tr_wire_reader_init (&r, expect.data, cut);
    g_assert_false (tr_wire_read_result (&r, &res));
  }
  tr_wire_reader_init (&r, expect.data, expect.len);
  g_assert_true (tr_wire_read_result (&r, &res));
  g_assert_true (tr_wire_reader_done (&r));
  g_assert_cmpuint (res.id, ==, 42);
  g_assert_true (res.failed);
  g_assert_cmpuint (res.code, ==, 7);
  g_assert_cmpuint (res.start_us, ==, 1700000000000000);
  g_assert_cmpuint (res.run_ns, ==, 123456);
  g_assert_cmpmem (res.data, res.len, "output", 6);
  g_assert_cmpmem (res.message, res.message_len, "it broke", 8);
  g_assert_cmpmem (res.domain, res.domain_len, "my-plugin-error-quark", 21);
  g_assert_cmpuint (res.n_files, ==, 2);

  /* a task sent back unrun: status 2, nothing else */
  buf.len = 0;
  tr_wire_put_returned (&buf, 9);
  g_assert_cmpuint (buf.len, ==, TR_WIRE_RETURNED_RECORD);
  tr_wire_reader_init (&r, buf.data, buf.len);
  g_assert_true (tr_wire_read_result (&r, &res));
  g_assert_true (res.returned);
  g_assert_cmpuint (res.id, ==, 9);
  g_assert_cmpuint (res.len, ==, 0);
}

/* The frame buffer grows as it is written, keeps every byte across each growth, and
 * dropping sent bytes from its front keeps the rest in order. */
static void
test_buffer (void)
{
  g_auto (TrWireBuf) buf = { 0 };
  tr_wire_buf_init (&buf);
  for (guint32 i = 0; i < 100000; i++)
    tr_wire_put_u32 (&buf, i);
  g_assert_cmpuint (buf.len, ==, 400000);
  g_assert_cmpuint (buf.room, >=, buf.len);
  tr_wire_buf_consume (&buf, 4 * 99990);
  g_assert_cmpuint (buf.len, ==, 40);
  TrWireReader r;
  tr_wire_reader_init (&r, buf.data, buf.len);
  for (guint32 i = 99990; i < 100000; i++)
    g_assert_cmpuint (tr_wire_get_u32 (&r), ==, i);
  g_assert_true (tr_wire_reader_done (&r));
  memset (tr_wire_buf_extend (&buf, 1 << 20), 0xab, 1 << 20); /* one growth by more than double */
  g_assert_cmpuint (buf.len, ==, 40 + (1 << 20));
  g_assert_cmpuint (buf.data[buf.len - 1], ==, 0xab);
  tr_wire_buf_consume (&buf, buf.len);
  g_assert_cmpuint (buf.len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/wire/round-trip", test_round_trip);
  g_test_add_func ("/wire/incomplete", test_incomplete);
  g_test_add_func ("/wire/refused", test_refused);
  g_test_add_func ("/wire/truncated-fields", test_truncated_fields);
  g_test_add_func ("/wire/result-status", test_result_status);
  g_test_add_func ("/wire/result-writer", test_result_writer);
  g_test_add_func ("/wire/buffer", test_buffer);
  return g_test_run ();
}
