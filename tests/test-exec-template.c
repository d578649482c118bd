/* test-exec-template.c — the exec plugin's command template, against GNU parallel.
 *
 * Owns: the behaviour of plugins/exec/template.c pinned case by case: the command line
 * "as run" equal to `parallel --dry-run` (run here as the oracle; a case is skipped, with
 * the reason, when parallel is not installed), the argv words, what a shell = yes script
 * prints compared with what parallel prints running the same template, the differences
 * from parallel that template.c documents, and the errors of malformed templates.
 * Does not own: the plugin around template.c (its options, inputs, processes).
 * Built from template.c and GLib alone.
 */
#include "template.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static char *parallel_bin;

static gboolean
have_parallel (void)
{
  if (!parallel_bin) {
    g_test_skip ("GNU parallel is not in PATH: the oracle for this case is missing");
    return FALSE;
  }
  return TRUE;
}

/* ---- inputs ------------------------------------------------------------------------ */

/* Every shell metacharacter, quotes, newlines, leading dashes, path shapes for {.} {/}
 * {//} {/.}, column shapes for colsep "," and "\t", UTF-8 and bytes that are not. */
static const char *const hostile[] = {
  "plain", "a b", "it's", "'", "''", "\"", "\"'\"", "$(id)", "`id`", "${HOME}", "$HOME",
  "a;b", "a|b&c", "a>b<c", "(x)", "{x}", "{}", "*", "?", "[a]", "~", "~root", "!", "#x",
  "%s", "a=b", "a\\b", "\\", "a\nb", "\n", "a\n", "\r\n", "-n", "--help", "-", "", " ",
  "\t", "  lead and trail  ", "é", "日本語.txt", "\xff\xfe", "a\x80.b\xc3", "\x01\x7f",
  "dir/", "/x.y", "a/b.c/d.e.f", ".hidden", "a.b/", "noext", "x.", "..", ".", "/", "//",
  "a//b", "a/b/", "./a", "a\nb/c", "x.y\n", "a/b\nc.d/e", "a.b\nc", "a,b", " a , b ,, c,",
  ",x", "a\tb\t c", "a,b\tc,d", "a::b:c", "+_-./", "x y,'q',$(id),\n", "a/b.c,d/e.f,.g",
  "1,2,3", "a b\t$(id)\t*", " -n \t-e\t", "::x::y", "a b::it's::", "x::$(id) y",
  "x.y\td/e.f\tg/h/",
};

static GPtrArray *
hostile_inputs (void)
{
  GPtrArray *a = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < G_N_ELEMENTS (hostile); i++)
    g_ptr_array_add (a, g_strdup (hostile[i]));
  return a;
}

/* The hostile inputs that have at least cols columns: where one is missing we differ
 * from parallel (test_differences) */
static GPtrArray *
hostile_inputs_with (const char *colsep, guint cols)
{
  GPtrArray *inputs = hostile_inputs ();
  for (guint i = inputs->len; cols && i-- > 0;) {
    g_autoptr (GPtrArray) pieces = g_ptr_array_new_with_free_func (g_free);
    const char *in = inputs->pdata[i];
    if (exec_split_columns (in, strlen (in), colsep, pieces) < cols)
      g_ptr_array_remove_index (inputs, i);
  }
  g_assert_cmpuint (inputs->len, >=, 4);
  return inputs;
}

/* ---- the template's side ----------------------------------------------------------- */

typedef struct {
  GPtrArray *cols;
  ExecValues v;
} Values;

static void
values_init (Values *x, const char *input, gsize len, const char *colsep, guint64 seq)
{
  x->cols = g_ptr_array_new_with_free_func (g_free);
  x->v = (ExecValues) { .input = input, .input_len = len, .seq = seq, .slot = 1 };
  if (colsep) {
    x->v.n_cols = exec_split_columns (input, len, colsep, x->cols);
    g_assert_cmpuint (x->v.n_cols, ==, x->cols->len);
    x->v.cols = (const char *const *) x->cols->pdata;
  }
}

static void
values_clear (Values *x)
{
  g_ptr_array_unref (x->cols);
}

static char *
line_of (const char *template, gboolean shell, const char *colsep, const char *input,
         guint64 seq)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ExecTemplate) t = exec_template_parse (template, colsep != NULL, shell, &error);
  g_assert_no_error (error);
  Values x;
  values_init (&x, input, strlen (input), colsep, seq);
  char *line = exec_template_command_line (t, &x.v, FALSE);
  values_clear (&x);
  return line;
}

static GStrv
argv_of (const char *template, gboolean shell, const char *colsep, const char *input)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ExecTemplate) t = exec_template_parse (template, colsep != NULL, shell, &error);
  g_assert_no_error (error);
  Values x;
  values_init (&x, input, strlen (input), colsep, 1);
  GStrv argv = exec_template_argv (t, &x.v, &error);
  g_assert_no_error (error);
  values_clear (&x);
  return argv;
}

/* ---- running things ---------------------------------------------------------------- */

static char *
run (const char *const *argv, gboolean search_path, const char *what)
{
  g_auto (GStrv) env = g_environ_setenv (g_get_environ (), "PARALLEL_SHELL", "/bin/sh", TRUE);
  env = g_environ_setenv (env, "LC_ALL", "C", TRUE);
  char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, (char **) argv, env,
                G_SPAWN_STDIN_FROM_DEV_NULL | (search_path ? G_SPAWN_SEARCH_PATH : 0),
                NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_test_message ("%s exited with %d: %s", what, status, err);
  return out;
}

/* parallel [--dry-run] -j1 -k -0 [--colsep SEP] -- TEMPLATE :::: FILE, the inputs
 * NUL-terminated in FILE so that they can hold newlines */
static char *
run_parallel (const char *template, const char *colsep, const GPtrArray *inputs,
              gboolean dry_run)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  int fd = g_file_open_tmp ("test-exec-template-XXXXXX", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_autoptr (GString) data = g_string_new (NULL);
  for (guint i = 0; i < inputs->len; i++)
    g_string_append_len (data, g_ptr_array_index (inputs, i),
                         (gssize) strlen (g_ptr_array_index (inputs, i)) + 1);
  g_file_set_contents (path, data->str, (gssize) data->len, &error);
  g_assert_no_error (error);
  const char *argv[16];
  int n = 0;
  argv[n++] = parallel_bin;
  if (dry_run)
    argv[n++] = "--dry-run";
  argv[n++] = dry_run ? "-j1" : "-j8"; /* {%} is 1 with -j1; -k keeps the order */
  argv[n++] = "-k";
  argv[n++] = "-0";
  if (colsep) {
    argv[n++] = "--colsep";
    argv[n++] = colsep;
  }
  argv[n++] = "--";
  argv[n++] = template;
  argv[n++] = "::::";
  argv[n++] = path;
  argv[n] = NULL;
  char *out = run (argv, FALSE, "parallel");
  g_unlink (path);
  return out;
}

/* parallel takes a third of a second per template: the oracle's answers for the tables
 * are asked for at the start, several at a time, and each test waits for its own. */
typedef struct {
  char *key;
  char *template, *colsep;
  GPtrArray *inputs;
  gboolean dry_run;
  char *out;
  gboolean done;
} Oracle;

static GMutex oracle_lock;
static GCond oracle_cond;
static GHashTable *oracles; /* key -> Oracle */
static GThreadPool *oracle_pool;

static char *
oracle_key (const char *template, const char *colsep, const GPtrArray *inputs,
            gboolean dry_run)
{
  GString *k = g_string_new (template);
  g_string_append_printf (k, "%c%s%c%d", 1, colsep ? colsep : "", 1, dry_run);
  for (guint i = 0; i < inputs->len; i++)
    g_string_append_printf (k, "%c%s", 1, (const char *) inputs->pdata[i]);
  return g_string_free (k, FALSE);
}

static void
oracle_free (gpointer data)
{
  Oracle *o = data;
  g_free (o->key);
  g_free (o->template);
  g_free (o->colsep);
  g_ptr_array_unref (o->inputs);
  g_free (o->out);
  g_free (o);
}

static void
oracle_work (gpointer data, gpointer user_data)
{
  Oracle *o = data;
  (void) user_data;
  char *out = run_parallel (o->template, o->colsep, o->inputs, o->dry_run);
  g_mutex_lock (&oracle_lock);
  o->out = out;
  o->done = TRUE;
  g_cond_broadcast (&oracle_cond);
  g_mutex_unlock (&oracle_lock);
}

/* takes inputs */
static void
oracle_prefetch (const char *template, const char *colsep, GPtrArray *inputs,
                 gboolean dry_run)
{
  Oracle *o = g_new0 (Oracle, 1);
  o->key = oracle_key (template, colsep, inputs, dry_run);
  o->template = g_strdup (template);
  o->colsep = g_strdup (colsep);
  o->inputs = inputs;
  o->dry_run = dry_run;
  if (g_hash_table_contains (oracles, o->key)) {
    oracle_free (o);
    return;
  }
  g_hash_table_insert (oracles, o->key, o);
  g_thread_pool_push (oracle_pool, o, NULL);
}

/* What parallel prints for these: prefetched, or run now. */
static char *
parallel_output (const char *template, const char *colsep, const GPtrArray *inputs,
                 gboolean dry_run)
{
  g_autofree char *key = oracle_key (template, colsep, inputs, dry_run);
  g_mutex_lock (&oracle_lock);
  Oracle *o = oracles ? g_hash_table_lookup (oracles, key) : NULL;
  while (o && !o->done)
    g_cond_wait (&oracle_cond, &oracle_lock);
  char *out = o ? g_strdup (o->out) : NULL;
  g_mutex_unlock (&oracle_lock);
  return out ? out : run_parallel (template, colsep, inputs, dry_run);
}

/* Walks parallel's output record by record: each must be ours and a newline. */
static void
assert_same_lines (const char *template, const char *what, const GPtrArray *inputs,
                   const char *theirs, GPtrArray *ours)
{
  gsize at = 0, len = strlen (theirs);
  for (guint i = 0; i < ours->len; i++) {
    const char *mine = g_ptr_array_index (ours, i);
    gsize n = strlen (mine);
    if (at + n <= len && memcmp (theirs + at, mine, n) == 0) {
      at += n;
      continue;
    }
    /* show where they part, not 60 KiB of both */
    gsize d = 0;
    while (d < n && at + d < len && mine[d] == theirs[at + d])
      d++;
    gsize from = d > 60 ? d - 60 : 0;
    g_autofree char *in = g_strndup (g_ptr_array_index (inputs, i), 200);
    g_autofree char *ine = g_strescape (in, NULL);
    g_autofree char *a = g_strndup (mine + from, MIN (n - from, d - from + 60));
    g_autofree char *b = g_strndup (theirs + at + from, MIN (len - at - from, d - from + 60));
    g_autofree char *ae = g_strescape (a, NULL), *be = g_strescape (b, NULL);
    g_test_message ("template %s, %s, input \"%s\": ours and parallel's part at byte %"
                    G_GSIZE_FORMAT, template, what, ine, d);
    g_assert_cmpstr (ae, ==, be);
  }
  g_assert_cmpuint (at, ==, len);
}

/* ---- (1) the command line equals parallel --dry-run -------------------------------- */

typedef struct {
  const char *template;
  const char *colsep;   /* NULL: no columns */
  const char *modes;    /* "w": without shell, "s": shell = yes */
  guint cols;           /* only the inputs with this many columns (a missing one differs) */
} DryCase;

static const DryCase dry_cases[] = {
  { "echo {}", NULL, "ws", 0 },
  { "echo {} {.} {/} {//} {/.} {#} {%}", NULL, "ws", 0 },
  { "echo x{}y {}{} {.}{.} {/}{//}{/.}", NULL, "ws", 0 },         /* repeated, inside words */
  { "gzip -9 --", NULL, "ws", 0 },                                 /* none: the input appended */
  { "echo ", NULL, "ws", 0 },                                      /* appended after a blank */
  { "printf '%s\\n' {}", NULL, "ws", 0 },
  { "printf \"[%s]\" a\\ b {}", NULL, "ws", 0 },
  { "echo $HOME * {} ~", NULL, "ws", 0 },
  { "echo {foo} { } {..} {+/} {1x} {=", NULL, "ws", 0 },           /* literal braces */
  { "echo foo; echo {} | cat >/dev/null 2>&1 && true", NULL, "s", 0 },
  { "echo \"$(basename {})\" $(dirname {} | tr a b)", NULL, "s", 0 },
  { "test -e {} || echo {/} # missing", NULL, "s", 0 },
  { "cat <<<{}", NULL, "s", 0 },
  { "echo {1} {2} {3} {-1} {-3}", ",", "ws", 3 },
  { "echo {1.} {2/} {2//} {2/.} {1 .} {01} {-2/.}", ",", "ws", 2 },
  { "cp -- {1} {2}", "\\t", "ws", 2 },
  { "echo {2} {1} {#}", "::", "ws", 2 },
};

static void
test_dry_run (gconstpointer data)
{
  const DryCase *c = data;
  if (!have_parallel ())
    return;
  g_autoptr (GPtrArray) inputs = hostile_inputs_with (c->colsep, c->cols);
  g_autofree char *theirs = parallel_output (c->template, c->colsep, inputs, TRUE);
  for (const char *m = c->modes; *m; m++) {
    g_autoptr (GPtrArray) ours = g_ptr_array_new_with_free_func (g_free);
    for (guint i = 0; i < inputs->len; i++) {
      char *line = line_of (c->template, *m == 's', c->colsep, g_ptr_array_index (inputs, i),
                            i + 1);
      g_ptr_array_add (ours, g_strconcat (line, "\n", NULL));
      g_free (line);
    }
    assert_same_lines (c->template, *m == 's' ? "shell" : "words", inputs, theirs, ours);
  }
}

/* The line taskrun shows is one line whatever the input holds, and bash reads it back as
 * the same command: printf %s of the shown word prints the input's bytes. */
static void
test_shown_one_line (void)
{
  static const char *const inputs[] = { "plain", "a\nb", "tab\there", "cr\r\n", "\xff\xfe bad",
                                        "it's\n\"q\"", "caf\xc3\xa9\x01", "\x7f", NULL };
  g_autofree char *bash = g_find_program_in_path ("bash");
  for (guint i = 0; inputs[i]; i++) {
    for (int shell = 0; shell < 2; shell++) {
      g_autoptr (GError) error = NULL;
      g_autoptr (ExecTemplate) t = exec_template_parse ("printf %s {}", FALSE, shell, &error);
      g_assert_no_error (error);
      Values x;
      values_init (&x, inputs[i], strlen (inputs[i]), NULL, 1);
      g_autofree char *line = exec_template_command_line (t, &x.v, TRUE);
      values_clear (&x);
      for (const char *p = line; *p; p++)
        g_assert_false (g_ascii_iscntrl (*p));
      g_assert_true (g_utf8_validate (line, -1, NULL));
      if (!bash)
        continue;
      const char *argv[] = { bash, "-c", line, NULL };
      g_autofree char *out = NULL;
      int status = 0;
      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                   NULL, &status, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (out, ==, inputs[i]);
    }
  }
  /* a template with a newline of its own is escaped whole by the core: its values are
   * left as they are, not spelled $'...' to be escaped a second time */
  g_autoptr (GError) error = NULL;
  g_autoptr (ExecTemplate) t = exec_template_parse ("echo {}\nfalse {}", FALSE, TRUE, &error);
  g_assert_no_error (error);
  Values x;
  values_init (&x, "x\ny", 3, NULL, 1);
  g_autofree char *line = exec_template_command_line (t, &x.v, TRUE);
  values_clear (&x);
  g_assert_cmpstr (line, ==, "echo 'x\ny'\nfalse 'x\ny'");
  if (!bash)
    g_test_skip ("no bash to read the lines back");
}

/* A long input (parallel refuses a command line longer than about 63 KiB, so 60 KiB). */
static void
test_dry_run_long (void)
{
  if (!have_parallel ())
    return;
  g_autoptr (GPtrArray) inputs = g_ptr_array_new_with_free_func (g_free);
  GString *big = g_string_new (NULL);
  for (int i = 0; big->len < 60 * 1024; i++)
    g_string_append_printf (big, "w%d $x;\n", i); /* quoted, but not growing */
  g_ptr_array_add (inputs, g_string_free (big, FALSE));
  g_autofree char *theirs = run_parallel ("gzip -9 -- {}", NULL, inputs, TRUE);
  g_autoptr (GPtrArray) ours = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *line = line_of ("gzip -9 -- {}", FALSE, NULL, inputs->pdata[0], 1);
  g_ptr_array_add (ours, g_strconcat (line, "\n", NULL));
  assert_same_lines ("gzip -9 -- {}", "words", inputs, theirs, ours);
}

/* 128 KiB: parallel refuses it (its limit is about 63 KiB); here the line is made, and the
 * argv holds it up to the kernel's limit of one argument, 32 pages with the NUL. */
static void
test_input_128k (void)
{
  gsize max = (gsize) sysconf (_SC_PAGESIZE) * 32 - 1;
  g_autofree char *big = g_malloc (max + 2);
  memset (big, 'x', max + 1);
  big[max + 1] = 0;
  g_autofree char *line = line_of ("test -n {}", FALSE, NULL, big, 1);
  g_assert_cmpuint (strlen (line), ==, strlen ("test -n ") + max + 1);
  g_assert_true (g_str_has_prefix (line, "test -n xxx"));

  g_autoptr (ExecTemplate) t = exec_template_parse ("test -n {}", FALSE, FALSE, NULL);
  ExecValues v = { .input = big, .input_len = max + 1 };
  g_autoptr (GError) error = NULL;
  g_assert_null (exec_template_argv (t, &v, &error));
  g_assert_error (error, EXEC_TEMPLATE_ERROR, EXEC_TEMPLATE_ERROR_TOO_LONG);
  g_assert_nonnull (strstr (error->message, "argument 3"));
  g_clear_error (&error);

  /* the kernel says the same: one byte more than allowed fails, the longest runs */
  const char *too_long[] = { "/bin/sh", "-c", "exit 0", big, NULL };
  g_assert_false (g_spawn_sync (NULL, (char **) too_long, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                NULL, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  v.input_len = max;
  big[max] = 0;
  g_auto (GStrv) argv = exec_template_argv (t, &v, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (argv[2]), ==, max);
  int status = -1;
  g_assert_true (g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* {#}: the sequence number, record after record (parallel counts from 1). */
static void
test_dry_run_seq (void)
{
  if (!have_parallel ())
    return;
  g_autoptr (GPtrArray) inputs = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; i < 12; i++)
    g_ptr_array_add (inputs, g_strdup_printf ("in%d", i));
  g_autofree char *theirs = run_parallel ("echo {#} {%} {} {#}", NULL, inputs, TRUE);
  g_autoptr (GPtrArray) ours = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < inputs->len; i++) {
    g_autofree char *line = line_of ("echo {#} {%} {} {#}", FALSE, NULL, inputs->pdata[i], i + 1);
    g_ptr_array_add (ours, g_strconcat (line, "\n", NULL));
  }
  assert_same_lines ("echo {#} {%} {} {#}", "words", inputs, theirs, ours);
}

/* ---- (2) argv ---------------------------------------------------------------------- */

typedef struct {
  const char *template;
  const char *colsep;
  const char *input;
  gboolean expands; /* a shell would expand part of the template: no paste check */
  const char *argv[10];
} ArgvCase;

static const ArgvCase argv_cases[] = {
  { "gzip -9 -- {}", NULL, "a b;c", FALSE, { "gzip", "-9", "--", "a b;c" } },
  { "echo {}", NULL, "-n", FALSE, { "echo", "-n" } },                  /* its own word, as given */
  { "echo {} {}", NULL, "$(id) `id` *", FALSE, { "echo", "$(id) `id` *", "$(id) `id` *" } },
  { "echo x{}y", NULL, "a b", FALSE, { "echo", "xa by" } },
  { "echo", NULL, "a b", FALSE, { "echo", "a b" } },                   /* appended: one word */
  { "echo {}", NULL, "a\nb 'c\"", FALSE, { "echo", "a\nb 'c\"" } },
  { "printf '%s\\n' {.}", NULL, "d/f.tar.gz", FALSE, { "printf", "%s\\n", "d/f.tar" } },
  { "echo '' \"\" a\\ b \"a\\\"b\\$\" 'it'\\''s' \"\\x\"", NULL, "z", FALSE,
    { "echo", "", "", "a b", "a\"b$", "it's", "\\x", "z" } },  /* z appended */
  { "echo \"{}\" '{}'", NULL, "it's a", FALSE, { "echo", "it's a", "it's a" } },
  { "echo \"{}\" '{}'", NULL, "", FALSE, { "echo", "", "" } },
  { "echo \\{} \"\\{}\" '\\{}' {}", NULL, "v", FALSE, { "echo", "{}", "\\{}", "\\{}", "v" } },
  { "{} --version", NULL, "my prog", FALSE, { "my prog", "--version" } },
  { "echo $HOME ~ * {/}", NULL, "a/b", TRUE, { "echo", "$HOME", "~", "*", "b" } },
  { "echo a\\\nb\t{}", NULL, "v", FALSE, { "echo", "ab", "v" } },       /* backslash-newline */
  { "cp -- {1} {2}", ",", "a b , c d", FALSE, { "cp", "--", "a b", "c d" } },
  { "echo {3} {-1} {}", ",", "a,b", FALSE, { "echo", "", "b", "a,b" } },
  { "echo", ",", "a,b", FALSE, { "echo", "a,b" } },
  { "echo {1}", "\\t", "x\ty", FALSE, { "echo", "x" } },
  { "echo {#}/{%}", NULL, "v", FALSE, { "echo", "1/1" } },
  { "echo {foo} { } {=", NULL, "v", FALSE, { "echo", "{foo}", "{", "}", "{=", "v" } },
};

/* "LEN:WORD;" for each word: what a shell's "$@" gave, comparable without NUL bytes */
static char *
words_listing (const char *const *words)
{
  GString *s = g_string_new (NULL);
  for (; *words; words++)
    g_string_append_printf (s, "%zu:%s;", strlen (*words), *words);
  return g_string_free (s, FALSE);
}

static void
test_argv (gconstpointer data)
{
  const ArgvCase *c = data;
  g_auto (GStrv) argv = argv_of (c->template, FALSE, c->colsep, c->input);
  g_autofree char *want = words_listing (c->argv);
  g_autofree char *got = words_listing ((const char *const *) argv);
  g_assert_cmpstr (got, ==, want);
  if (c->expands)
    return;

  /* the command line pasted into a shell gives the same words: "set --" it, list "$@" */
  g_autofree char *line = line_of (c->template, FALSE, c->colsep, c->input, 1);
  g_autofree char *script = g_strconcat ("set -- ", line, "\nfor a; do printf '%s:%s;' "
                                         "\"${#a}\" \"$a\"; done", NULL);
  const char *sh[] = { "/bin/sh", "-c", script, NULL };
  g_autofree char *out = run (sh, FALSE, "sh");
  g_assert_cmpstr (out, ==, want);
}

/* An input can never add a word, whatever it holds: every hostile input, in every place. */
static void
test_argv_hostile (void)
{
  static const char *const templates[] = { "cmd -- {}", "cmd x{}y {.} {/} {//} {/.}",
                                           "cmd \"{}\" '{}'", "cmd" };
  static const guint words[] = { 3, 6, 3, 2 };
  g_autoptr (GPtrArray) inputs = hostile_inputs ();
  for (gsize k = 0; k < G_N_ELEMENTS (templates); k++)
    for (guint i = 0; i < inputs->len; i++) {
      const char *in = inputs->pdata[i];
      g_auto (GStrv) argv = argv_of (templates[k], FALSE, NULL, in);
      g_assert_cmpuint (g_strv_length (argv), ==, words[k]);
      if (k != 1)
        g_assert_cmpstr (argv[words[k] - 1], ==, in);
    }
}

/* A value with a NUL byte cannot be an argument: an error, with shell and without. */
static void
test_argv_nul (void)
{
  ExecValues v = { .input = "a\0b", .input_len = 3 };
  for (int shell = 0; shell < 2; shell++) {
    g_autoptr (ExecTemplate) t = exec_template_parse ("echo {}", FALSE, shell, NULL);
    g_autoptr (GError) error = NULL;
    g_assert_null (exec_template_argv (t, &v, &error));
    g_assert_error (error, EXEC_TEMPLATE_ERROR, EXEC_TEMPLATE_ERROR_NUL);
    g_assert_nonnull (strstr (error->message, "NUL byte"));
  }
  /* a NUL in an input the template does not use stops nothing */
  g_autoptr (ExecTemplate) t = exec_template_parse ("echo {#}", FALSE, FALSE, NULL);
  g_auto (GStrv) argv = exec_template_argv (t, &v, NULL);
  g_assert_nonnull (argv);
}

/* shell = yes: /bin/sh -c SCRIPT, SCRIPT the command line */
static void
test_argv_shell_form (void)
{
  g_auto (GStrv) argv = argv_of ("echo foo; echo {}", TRUE, NULL, "a b");
  g_assert_cmpuint (g_strv_length (argv), ==, 3);
  g_assert_cmpstr (argv[0], ==, "/bin/sh");
  g_assert_cmpstr (argv[1], ==, "-c");
  g_assert_cmpstr (argv[2], ==, "echo foo; echo 'a b'");
}

/* Running: what our argv prints equals what parallel prints running the same template,
 * with shell = yes (our /bin/sh -c) and without (our execvp; parallel's shell). */
typedef struct {
  const char *template;
  const char *colsep;
  gboolean shell;
  guint cols;
} RunCase;

static const RunCase run_cases[] = {
  { "printf \"%s\\n\" {}", NULL, TRUE, 0 },
  { "printf '[%s]' {} {.} {/} {//} {/.}; echo", NULL, TRUE, 0 },
  { "echo foo; printf '<%s>' {} | tr a-z A-Z; echo", NULL, TRUE, 0 },
  { "printf '%s|' \"$(basename -- {})\" x{}y; echo", NULL, TRUE, 0 },
  { "printf '(%s)' {2} {1} {-1}; echo", ",", TRUE, 2 },
  { "printf [%s] {} {.} {/} {//} {/.} {#}", NULL, FALSE, 0 },
  { "printf [%s] {1} {2.} {3/}", "\\t", FALSE, 3 },
  { "printf [%s]", NULL, FALSE, 0 },
};

static void
test_run (gconstpointer data)
{
  const RunCase *c = data;
  if (!have_parallel ())
    return;
  g_autoptr (GPtrArray) inputs = hostile_inputs_with (c->colsep, c->cols);
  g_autofree char *theirs = parallel_output (c->template, c->colsep, inputs, FALSE);
  g_autoptr (GPtrArray) ours = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < inputs->len; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (ExecTemplate) t = exec_template_parse (c->template, c->colsep != NULL, c->shell,
                                                      &error);
    g_assert_no_error (error);
    Values x;
    values_init (&x, inputs->pdata[i], strlen (inputs->pdata[i]), c->colsep, i + 1);
    g_auto (GStrv) argv = exec_template_argv (t, &x.v, &error);
    g_assert_no_error (error);
    values_clear (&x);
    g_ptr_array_add (ours, run ((const char *const *) argv, TRUE, argv[0]));
  }
  assert_same_lines (c->template, c->shell ? "run, shell" : "run, words", inputs, theirs, ours);
}

/* ---- where we differ from parallel, on purpose (template.c says why) --------------- */

typedef struct {
  const char *template;
  const char *colsep;
  const char *input;
  const char *ours;
  const char *parallel; /* what parallel --dry-run prints, pinned so a change shows */
} DiffCase;

static const DiffCase diff_cases[] = {
  /* a value inside the template's quotes stays a value */
  { "echo \"{}\"", NULL, "a b", "echo \"\"'a b'\"\"", "echo \"'a b'\"" },
  { "echo '{}'", NULL, "$(id)", "echo '''$(id)'''", "echo ''$(id)''" },
  { "echo \"{}\"", NULL, "", "echo \"\"", "echo \"''\"" },
  /* a template starting with a replacement string is quoted too */
  { "{} arg", NULL, "x y", "'x y' arg", "x y arg" },
  /* a column beyond the last is an empty word, not none */
  { "echo {3} z", ",", "a,b", "echo '' z", "echo  z" },
  { "echo {-2}", ",", "a", "echo ''", "echo a" }, /* parallel: Perl's $a[-1] */
  /* {} is the whole input, with colsep too */
  { "echo {}", ",", "a b,c", "echo 'a b,c'", "echo 'a b' c" },
  { "echo", ",", "a,b", "echo 'a,b'", "echo a b" },
  /* \{ is literal */
  { "echo \\{} {}", NULL, "v", "echo \\{} v", "echo \\v v" },
};

static GPtrArray *
one_input (const char *input)
{
  GPtrArray *a = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (a, g_strdup (input));
  return a;
}

static void
test_differences (gconstpointer data)
{
  const DiffCase *c = data;
  g_autofree char *line = line_of (c->template, FALSE, c->colsep, c->input, 1);
  g_assert_cmpstr (line, ==, c->ours);
  if (!have_parallel ())
    return;
  g_autoptr (GPtrArray) inputs = one_input (c->input);
  g_autofree char *theirs = parallel_output (c->template, c->colsep, inputs, TRUE);
  g_autofree char *want = g_strconcat (c->parallel, "\n", NULL);
  g_assert_cmpstr (theirs, ==, want);
}

/* ---- (3) errors -------------------------------------------------------------------- */

typedef struct {
  const char *template;
  gboolean columns, shell;
  const char *what;  /* in the message; NULL: no error */
  const char *where; /* "at character N" */
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "echo 'abc", FALSE, FALSE, "unterminated single quote", "at character 6:" },
  { "echo \"abc", FALSE, FALSE, "unterminated double quote", "at character 6:" },
  { "echo 'abc", FALSE, TRUE, "unterminated single quote", "at character 6:" },
  { "echo \"a'bc", FALSE, TRUE, "unterminated double quote", "at character 6:" },
  { "echo $(ls 'x'", FALSE, TRUE, "unterminated command substitution $(", "at character 6:" },
  { "\xc3\xa9" "ch\xd0\xbe 'x", FALSE, FALSE, "unterminated single quote", "at character 6:" },
  { "echo abc\\", FALSE, FALSE, "trailing backslash", "at character 9:" },
  { "echo abc\\", FALSE, TRUE, "trailing backslash", "at character 9:" },
  { "", FALSE, FALSE, "the command is empty", "at character 1:" },
  { " \t ", FALSE, TRUE, "the command is empty", "at character 4:" },
  { "echo {3}", FALSE, FALSE, "{3} needs colsep", "at character 6:" },
  { "echo {-1/}", FALSE, TRUE, "{-1/} needs colsep", "at character 6:" },
  { "echo {0}", TRUE, FALSE, "{0}: columns are counted from 1", "at character 6:" },
  { "echo {00.}", TRUE, FALSE, "{00.}: columns are counted from 1", "at character 6:" },
  { "echo {99999999999}", TRUE, FALSE, "too large", "at character 6:" },
  { "echo {2#}", TRUE, FALSE, "{2#} is not a replacement string", "at character 6:" },
  { "echo {= s/a/b/ =}", FALSE, FALSE, "perl expression {= ... =} is not supported",
    "at character 6:" },
  { "echo a | wc", FALSE, FALSE, "'|' is shell syntax: set shell = yes", "at character 8:" },
  { "gzip {} > {}.gz", FALSE, FALSE, "'>' is shell syntax", "at character 9:" },
  { "echo a; echo b", FALSE, FALSE, "';' is shell syntax", "at character 7:" },
  { "echo a\necho b", FALSE, FALSE, "a newline is shell syntax", "at character 7:" },
  { "echo #x {}", FALSE, FALSE, "'#' starts a shell comment", "at character 6:" },
  { "LC_ALL=C sort {}", FALSE, FALSE, "LC_ALL= is a shell variable assignment",
    "at character 1:" },
  { "echo `cat {}`", FALSE, TRUE, "{} inside the command substitution `", "at character 11:" },
  { "echo ${x:-{}}", FALSE, TRUE, "{} inside the parameter expansion ${", "at character 11:" },
  { "echo $(( {#} + 1 ))", FALSE, TRUE, "{#} inside the arithmetic expansion $((",
    "at character 10:" },
  { "echo {} # {}", FALSE, TRUE, "{} in a shell comment", "at character 11:" },
  { "echo x # note", FALSE, TRUE, "ends in a comment", "at character 14:" },
  { "cat <<EOF\n{}\nEOF", FALSE, TRUE, "{} after the here-document at character 5",
    "at character 11:" },
  { "echo ${}", FALSE, TRUE, "{} right after a $", "at character 7:" },
  /* a case pattern's ) would end "$(" for the scanner, and a quote inside "${" would open a
   * quote for it; so a value after them would be quoted for the wrong context */
  { "n=\"$(case {} in *.gz) zcat {};; esac)\"", FALSE, TRUE, "a case inside the \"$(\" at character 4",
    "at character 6:" },
  { "echo \"$(true; case x in x) echo {};; esac)\"", FALSE, TRUE, "a case inside", "at character 15:" },
  { "echo $(case {} in *) echo {};; esac)", FALSE, TRUE, NULL, NULL }, /* unquoted: fine */
  { "echo \"${x:-'}\" \"{}\" \"'}\"", FALSE, TRUE, "a single quote inside the \"${\"",
    "at character 12:" },
  { "echo ${x:-'a b'} {}", FALSE, TRUE, NULL, NULL }, /* unquoted, the quote is a quote */
  /* a backslash-newline disappears: the # after it starts a comment */
  { "echo \\\n#{}", FALSE, TRUE, "{} in a shell comment", "at character 9:" },
  { "echo a\\\nb {}", FALSE, TRUE, NULL, NULL },
  { "echo $\"{}\"", FALSE, TRUE, NULL, NULL }, /* {} is inside the quotes: fine */
  { "echo {foo} { } {..} {+/} {1x} {=", FALSE, FALSE, NULL, NULL }, /* literal, as parallel */
  { "echo \\{}", FALSE, FALSE, NULL, NULL },
  { "a=b", FALSE, TRUE, NULL, NULL },
};

static void
test_errors (gconstpointer data)
{
  const ErrorCase *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (ExecTemplate) t = exec_template_parse (c->template, c->columns, c->shell, &error);
  if (!c->what) {
    g_assert_no_error (error);
    g_assert_nonnull (t);
    return;
  }
  g_assert_null (t);
  g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
  g_test_message ("%s -> %s", c->template, error->message);
  g_assert_nonnull (strstr (error->message, c->what));
  g_assert_nonnull (strstr (error->message, c->where));
}

/* ---- the rest of the API ----------------------------------------------------------- */

static void
test_uses (void)
{
  static const struct {
    const char *template;
    gboolean columns;
    const char *uses; /* of "#%c" */
  } cases[] = {
    { "echo {}", FALSE, "" },        { "echo {#}", FALSE, "#" },
    { "echo {%}", FALSE, "%" },      { "echo {2.} {#} {%}", TRUE, "#%c" },
    { "echo {}", TRUE, "" },         { "echo", TRUE, "" },
    { "echo {-1}", TRUE, "c" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (ExecTemplate) t = exec_template_parse (cases[i].template, cases[i].columns,
                                                      FALSE, NULL);
    g_assert_nonnull (t);
    g_assert_cmpstr (exec_template_text (t), ==, cases[i].template);
    for (const char *w = "#%c"; *w; w++)
      g_assert_cmpint (exec_template_uses (t, *w), ==, strchr (cases[i].uses, *w) != NULL);
  }
}

static void
test_split_columns (void)
{
  static const struct {
    const char *input;
    const char *colsep;
    const char *cols; /* joined by | */
  } cases[] = {
    { " a , b ,, c,", ",", "a|b||c|" },   /* trimmed; empty ones kept, at the end too */
    { ",x", ",", "|x" },
    { "", ",", "" },                       /* one empty column */
    { "  ", ",", "" },
    { "a\tb\t c", "\\t", "a|b|c" },        /* \t as parallel's --colsep writes TAB */
    { "a\tb", "\t", "a|b" },
    { "a::b:c", "::", "a|b:c" },
    { "a|b", "\\|", "a|b" },               /* \| is the bar, as in a regex */
    { "a.b", ".", "a|b" },                 /* a plain string: . is a dot, not any byte */
    { "a\\db", "\\d", "a|b" },             /* \d is kept as written, not digits */
    { "a,b", "", "a,b" },                  /* an empty colsep splits nothing */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GPtrArray) cols = g_ptr_array_new_with_free_func (g_free);
    g_ptr_array_add (cols, g_strdup ("before")); /* appended to, not replaced */
    guint n = exec_split_columns (cases[i].input, strlen (cases[i].input), cases[i].colsep, cols);
    g_assert_cmpuint (n, ==, cols->len - 1);
    g_ptr_array_add (cols, NULL);
    g_autofree char *joined = g_strjoinv ("|", (char **) cols->pdata + 1);
    g_assert_cmpstr (joined, ==, cases[i].cols);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  parallel_bin = g_find_program_in_path ("parallel");
  for (gsize i = 0; i < G_N_ELEMENTS (dry_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/exec-template/dry-run/%02zu", i);
    g_test_add_data_func (path, &dry_cases[i], test_dry_run);
  }
  g_test_add_func ("/exec-template/dry-run/long", test_dry_run_long);
  g_test_add_func ("/exec-template/shown-one-line", test_shown_one_line);
  g_test_add_func ("/exec-template/dry-run/seq", test_dry_run_seq);
  g_test_add_func ("/exec-template/input-128k", test_input_128k);
  for (gsize i = 0; i < G_N_ELEMENTS (argv_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/exec-template/argv/%02zu", i);
    g_test_add_data_func (path, &argv_cases[i], test_argv);
  }
  g_test_add_func ("/exec-template/argv/hostile", test_argv_hostile);
  g_test_add_func ("/exec-template/argv/nul", test_argv_nul);
  g_test_add_func ("/exec-template/argv/shell-form", test_argv_shell_form);
  for (gsize i = 0; i < G_N_ELEMENTS (run_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/exec-template/run/%02zu", i);
    g_test_add_data_func (path, &run_cases[i], test_run);
  }
  for (gsize i = 0; i < G_N_ELEMENTS (diff_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/exec-template/differs/%02zu", i);
    g_test_add_data_func (path, &diff_cases[i], test_differences);
  }
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++) {
    g_autofree char *path = g_strdup_printf ("/exec-template/errors/%02zu", i);
    g_test_add_data_func (path, &error_cases[i], test_errors);
  }
  g_test_add_func ("/exec-template/uses", test_uses);
  g_test_add_func ("/exec-template/split-columns", test_split_columns);
  if (parallel_bin) {
    oracles = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, oracle_free);
    oracle_pool = g_thread_pool_new (oracle_work, NULL, (int) MAX (4, g_get_num_processors ()),
                                     FALSE, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS (dry_cases); i++)
      oracle_prefetch (dry_cases[i].template, dry_cases[i].colsep,
                       hostile_inputs_with (dry_cases[i].colsep, dry_cases[i].cols), TRUE);
    for (gsize i = 0; i < G_N_ELEMENTS (run_cases); i++)
      oracle_prefetch (run_cases[i].template, run_cases[i].colsep,
                       hostile_inputs_with (run_cases[i].colsep, run_cases[i].cols), FALSE);
    for (gsize i = 0; i < G_N_ELEMENTS (diff_cases); i++)
      oracle_prefetch (diff_cases[i].template, diff_cases[i].colsep,
                       one_input (diff_cases[i].input), TRUE);
  }
  int r = g_test_run ();
  if (oracle_pool)
    g_thread_pool_free (oracle_pool, FALSE, TRUE);
  g_clear_pointer (&oracles, g_hash_table_unref);
  g_free (parallel_bin);
  return r;
}
