/* fuzz-jobfile.c — libFuzzer target for the job-file loader: arbitrary bytes as a job
 * file go through the same checks taskrun makes (text check, inih, sections, keys, the
 * [taskrun] options); every outcome must be a job file or a GError, never a crash. */
#include "jobspec.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  TrJobFile *jf = tr_jobfile_load_data ("fuzz.ini", (const char *) data, size, &error);
  if (!jf) {
    g_assert (error && strstr (error->message, "fuzz.ini"));
    g_error_free (error);
    return 0;
  }
  TrConfig *core = tr_config_new (tr_runner_core_options (), "taskrun");
  static const char *const known[] = { "taskrun", "sleep-demo", NULL };
  if (tr_jobfile_apply_section (jf, "taskrun", core, &error) &&
      tr_jobfile_check_required (jf, "taskrun", core, &error) &&
      tr_jobfile_check_sections (jf, known, &error)) {
    g_assert (tr_config_get_string (core, "plugin") != NULL);
  } else {
    g_assert (error && strstr (error->message, "fuzz.ini"));
  }
  g_clear_error (&error);
  tr_config_free (core);
  tr_jobfile_free (jf);
  return 0;
}
