/* json.c — JSON text for the files taskrun writes for other programs to read.
 *
 * Owns: escaping strings (RFC 8259: the quote, the backslash and control characters;
 * any byte that is not UTF-8 replaced, so a reader never meets invalid text), numbers
 * that stay numbers, and base64 for bytes that are not text.
 * Does not own: any file's layout (trace.c, results.c).
 */
#include "json.h"

#include <math.h>

static void
append_valid (GString *out, const char *text, gsize len)
{
  for (gsize i = 0; i < len; i++) {
    unsigned char c = (unsigned char) text[i];
    switch (c) {
    case '"': g_string_append (out, "\\\""); break;
    case '\\': g_string_append (out, "\\\\"); break;
    case '\n': g_string_append (out, "\\n"); break;
    case '\t': g_string_append (out, "\\t"); break;
    case '\r': g_string_append (out, "\\r"); break;
    default:
      if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  }
}

void
tr_json_append_string (GString *out, const char *text, gssize len)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  g_string_append_c (out, '"');
  while (n) {
    const char *end;
    gboolean valid = g_utf8_validate_len (text, n, &end);
    append_valid (out, text, (gsize) (end - text));
    if (valid)
      break;
    g_string_append (out, "\\ufffd");
    n -= (gsize) (end - text) + 1;
    text = end + 1;
  }
  g_string_append_c (out, '"');
}

void
tr_json_append_double (GString *out, double value, int decimals)
{
  if (!isfinite (value)) {
    g_string_append (out, "null");
    return;
  }
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (out, g_ascii_formatd (buf, sizeof buf, decimals == 0 ? "%.0f"
                                                          : decimals == 3 ? "%.3f"
                                                                          : "%.6f", value));
}

void
tr_json_append_base64 (GString *out, const guint8 *data, gsize len)
{
  g_autofree char *b64 = g_base64_encode (data, len);
  g_string_append_c (out, '"');
  g_string_append (out, b64);
  g_string_append_c (out, '"');
}
