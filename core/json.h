/* json.h — writing JSON text (json.c): the trace and the results file. */
#ifndef TASKRUN_JSON_H
#define TASKRUN_JSON_H

#include <glib.h>

/* Appends `text` (`len` bytes; -1: up to its NUL) as a JSON string, quotes included.
 * Bytes that are not UTF-8 become U+FFFD: the output is always valid JSON. */
void tr_json_append_string (GString *out, const char *text, gssize len);
/* Appends a number; one that is not finite (no JSON number can be) as null. */
void tr_json_append_double (GString *out, double value, int decimals);
/* Appends `len` bytes as a JSON string of their base64. */
void tr_json_append_base64 (GString *out, const guint8 *data, gsize len);

#endif
