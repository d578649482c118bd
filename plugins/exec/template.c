/* template.c — the exec plugin's command template: parsing, the replacement strings'
 * values, shell quoting, the argv and the command line "as run".
 *
 * Owns: everything template.h declares.  Does not own: options, inputs, processes, the
 * job log (the plugin around this file); nothing here runs or reads anything.
 *
 * The rules, with GNU parallel 20221122 as the reference (its --dry-run is the oracle of
 * tests/test-exec-template.c):
 *
 * Replacement strings.  {} {.} {/} {//} {/.} {#} {%}, and with colsep {N} {N.} {N/}
 * {N//} {N/.} where N counts columns from 1, or from the end when negative ({-1} is the
 * last column), white space allowed after N ({2 .}) as parallel allows it.  They are found
 * in the template text wherever they stand, inside quotes too (as parallel finds them),
 * except after a backslash: "\{}" is the literal text {} (parallel replaces it anyway;
 * here it is the one way to write a literal {}).  Any other brace is literal text, as in
 * parallel: {foo}, { }, {..}, {+/} ({..} and {+/} are parallel's only with --plus).
 * Errors, where parallel would run something else: {N} without colsep (parallel reads it
 * as input source N), {0} (parallel: all columns, {00} and {-0} nothing), {N#} and {N%}
 * (parallel: empty), and a perl expression {= ... =}.
 *
 * Values.  {} is the whole input.  {.} drops the last dot and what follows, unless a slash
 * follows it (parallel's s:\.[^/.]*$::): a/b.c/d.e.f -> a/b.c/d.e, a.b/ -> a.b/,
 * .hidden -> '', x. -> x.  {/} drops through the last slash (s:.*\/::), which in Perl
 * stops at a newline: the first line holding a slash loses its start up to that line's
 * last slash (a/b<LF>c.d/e -> b<LF>c.d/e), and dir/ -> ''.  {//} is Perl's
 * File::Basename::dirname: noext -> ., dir/ -> ., /x -> /, // -> /, a//b -> a, '' -> . .
 * {/.} is {/} then {.}.  {#} and {%} are decimal.  Columns are what exec_split_columns
 * gives: trimmed, as --colsep implies --trim lr.  A column beyond the last is empty.
 *
 * No replacement string: the input is appended as a last word (" {}" added to the text,
 * as parallel adds it): command = gzip -9 means gzip -9 {}.
 *
 * Words (without shell).  The template is split the way a POSIX shell splits it: blanks
 * separate words; '...' keeps everything; "..." keeps everything but \" \\ \$ \` and
 * backslash-newline; a backslash outside quotes keeps the next character (and with a
 * newline joins lines).  Nothing is expanded: $, `, globs and ~ are plain characters.
 * Each replacement string becomes part of the word it stands in, so a value is never
 * split, globbed or read by a shell: an input never adds a word.  Shell syntax that would
 * do more than make words is an error naming shell = yes: the operators | & ; < > ( ),
 * an unquoted newline, a comment, a leading NAME=value assignment.
 *
 * Script (shell = yes).  argv is /bin/sh -c SCRIPT, SCRIPT the template text with each
 * replacement string replaced by its value quoted for the place it stands in (below).  So
 * that no input can ever run a command, the parser follows the shell's quoting through
 * '...', "...", $(...), and refuses a replacement string where quoting cannot protect
 * it: inside `...`, ${...}, $((...)), a comment, after a here-document (<<), right after a
 * $.  A "case x in a)" inside $(...) ends it early for this scan: harmless where both
 * sides of it quote alike, so a case inside a $( ) that a "..." encloses is refused, as
 * is a quote inside a ${ } there (shells differ on it).  A backslash-newline is removed
 * before anything else, as the shell removes it (a # after it may start a comment).
 *
 * argv refuses a value with a NUL byte, and an argument longer than Linux takes (32 pages
 * with its NUL, 131071 bytes with 4 KiB pages): a clear error before execve's E2BIG.
 *
 * Quoting, as parallel's shell_quote_scalar_default: a value of only [-_.+a-zA-Z0-9/] is
 * left bare; the empty value is ''; anything else is put in '...' with each ' written
 * '"'"' and the empty '' this leaves at either end dropped: it's -> 'it'"'"'s', ' -> "'".
 * Differences from parallel, each for the same reason (the value stays one word, and the
 * line pasted into a shell runs what taskrun runs):
 *   - inside '...' or "..." of the template a value that needs quoting closes the quote,
 *     is quoted, and reopens it: "{}" with a b -> ""'a b'"" (parallel: "'a b'", which
 *     passes the quotes on, and runs $(...) inside a value); an empty value adds nothing.
 *   - a template starting with a replacement string ({} --version) is quoted too
 *     (parallel then inserts values bare, and runs an input as shell code).
 *   - a column beyond the last is '' (parallel inserts nothing, which drops the word;
 *     and {-N} past the first column wraps around in parallel, Perl's $a[-N]).
 *   - {} and the appended input are the whole input, one word, with colsep too (parallel
 *     makes them every column, each its own word).
 * Without shell the command line pastes back into the same argv, except where the
 * template itself holds a $ or ` (unquoted or inside "..."), a glob or ~: a shell expands
 * those, taskrun's words do not (parallel prints the template as written; so do we).
 * No input can bring one in: only the template's own text stays unquoted.
 */
#include "template.h"

#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (exec-template-error-quark, exec_template_error)

typedef enum { OP_WHOLE, OP_NOEXT, OP_BASE, OP_DIR, OP_BASE_NOEXT, OP_SEQ, OP_SLOT } Op;

/* The quotes of the template text around a replacement string. */
typedef enum { CTX_BARE, CTX_SQUOTE, CTX_DQUOTE } Ctx;

typedef struct {
  Op op;
  gint64 col;       /* 0: the whole input; n > 0: column n; n < 0: the n-th from the end */
  Ctx ctx;
  gsize start, end; /* [start, end) in the text; the appended {} has start == end == len */
} Rpl;

/* A piece of an argv word: a replacement string, or literal bytes of ExecTemplate.lit. */
typedef struct {
  gssize rpl;       /* index in rpls, or -1 */
  gsize off, len;
} Piece;

struct ExecTemplate {
  char *text;
  gsize len;
  gboolean shell;
  gboolean appended; /* no replacement string: the last Rpl is the added " {}" */
  GArray *rpls;      /* Rpl, in text order */
  GPtrArray *words;  /* without shell: a GArray of Piece per argv word */
  GString *lit;
};

/* ---- errors ------------------------------------------------------------------------ */

/* "at character N": counted in characters when the text up to there is UTF-8, else in
 * bytes, from 1 as editors count columns. */
static gsize
char_pos (const char *text, gsize i)
{
  if (g_utf8_validate_len (text, i, NULL))
    return (gsize) g_utf8_strlen (text, (gssize) i) + 1;
  return i + 1;
}

static gpointer
fail (GError **error, const char *text, gsize i, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gpointer
fail (GError **error, const char *text, gsize i, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *what = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "command template, at character %" G_GSIZE_FORMAT ": %s", char_pos (text, i), what);
  return NULL;
}

/* ---- replacement strings ----------------------------------------------------------- */

static const struct {
  const char *text;
  Op op;
} fixed_rpls[] = {
  { "{}", OP_WHOLE }, { "{.}", OP_NOEXT }, { "{/}", OP_BASE }, { "{//}", OP_DIR },
  { "{/.}", OP_BASE_NOEXT }, { "{#}", OP_SEQ }, { "{%}", OP_SLOT },
};

/* What may follow a column number, longest first so that "//}" is not read as "/". */
static const struct {
  const char *text;
  Op op;
} col_suffixes[] = {
  { "//}", OP_DIR }, { "/.}", OP_BASE_NOEXT }, { "/}", OP_BASE }, { ".}", OP_NOEXT },
  { "}", OP_WHOLE }, { "#}", OP_SEQ }, { "%}", OP_SLOT },
};

/* Perl's \s on bytes, which parallel uses for {N .} and for --trim. */
static gboolean
perl_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static gboolean
starts_with (const char *s, gsize len, gsize i, const char *p)
{
  gsize n = strlen (p);
  return i + n <= len && memcmp (s + i, p, n) == 0;
}

/* At s[i] == '{': 1 and *out filled (start, end, op, col) if a replacement string starts
 * here, 0 if the brace is literal text, -1 with error if it is one we refuse. */
static int
match_rpl (const char *s, gsize len, gsize i, gboolean columns, Rpl *out, GError **error)
{
  for (gsize k = 0; k < G_N_ELEMENTS (fixed_rpls); k++)
    if (starts_with (s, len, i, fixed_rpls[k].text)) {
      *out = (Rpl) { .op = fixed_rpls[k].op, .start = i, .end = i + strlen (fixed_rpls[k].text) };
      return 1;
    }
  /* parallel turns {= perl =} into code; running it is out of the question */
  if (i + 1 < len && s[i + 1] == '=' && strstr (s + i + 2, "=}")) {
    fail (error, s, i, "a perl expression {= ... =} is not supported");
    return -1;
  }
  gsize j = i + 1;
  gboolean neg = j < len && s[j] == '-';
  if (neg)
    j++;
  gsize digits = j;
  guint64 n = 0;
  gboolean huge = FALSE;
  while (j < len && g_ascii_isdigit (s[j])) {
    n = n * 10 + (guint64) (s[j] - '0');
    huge |= n > G_MAXINT32;
    j++;
  }
  if (j == digits)
    return 0;
  while (j < len && perl_space (s[j]))
    j++;
  for (gsize k = 0; k < G_N_ELEMENTS (col_suffixes); k++) {
    if (!starts_with (s, len, j, col_suffixes[k].text))
      continue;
    g_autofree char *name = g_strndup (s + i, j + strlen (col_suffixes[k].text) - i);
    if (col_suffixes[k].op == OP_SEQ || col_suffixes[k].op == OP_SLOT) {
      fail (error, s, i, "%s is not a replacement string (a column has no %s: use {%c})",
            name, col_suffixes[k].op == OP_SEQ ? "sequence number" : "slot",
            col_suffixes[k].op == OP_SEQ ? '#' : '%');
      return -1;
    }
    if (!columns) {
      fail (error, s, i, "%s needs colsep: there are columns only when colsep is set", name);
      return -1;
    }
    if (n == 0) {
      fail (error, s, i, "%s: columns are counted from 1 (the whole input is {})", name);
      return -1;
    }
    if (huge) {
      fail (error, s, i, "%s: the column number is too large", name);
      return -1;
    }
    *out = (Rpl) { .op = col_suffixes[k].op, .col = neg ? -(gint64) n : (gint64) n,
                   .start = i, .end = j + strlen (col_suffixes[k].text) };
    return 1;
  }
  return 0;
}

/* Whether a replacement string, or one refused, starts at s[i]. */
static gboolean
rpl_at (const char *s, gsize len, gsize i, gboolean columns)
{
  Rpl r;
  return s[i] == '{' && match_rpl (s, len, i, columns, &r, NULL) != 0;
}

/* ---- parsing without shell: words -------------------------------------------------- */

typedef struct {
  ExecTemplate *t;
  GArray *word; /* the word being made, NULL between words */
} WordScan;

static void
word_begin (WordScan *w)
{
  if (!w->word) {
    w->word = g_array_new (FALSE, FALSE, sizeof (Piece));
    g_ptr_array_add (w->t->words, w->word);
  }
}

static void
word_add_byte (WordScan *w, char c)
{
  word_begin (w);
  Piece *last = w->word->len ? &g_array_index (w->word, Piece, w->word->len - 1) : NULL;
  if (!last || last->rpl >= 0) {
    Piece p = { .rpl = -1, .off = w->t->lit->len, .len = 0 };
    g_array_append_val (w->word, p);
    last = &g_array_index (w->word, Piece, w->word->len - 1);
  }
  g_string_append_c (w->t->lit, c); /* a word's literal bytes are contiguous in lit */
  last->len++;
}

static void
word_add_rpl (WordScan *w, const Rpl *r)
{
  word_begin (w);
  g_array_append_val (w->t->rpls, *r);
  Piece p = { .rpl = (gssize) w->t->rpls->len - 1 };
  g_array_append_val (w->word, p);
}

static gboolean
scan_words (ExecTemplate *t, gboolean columns, GError **error)
{
  const char *s = t->text;
  gsize len = t->len;
  WordScan w = { .t = t };
  Ctx quote = CTX_BARE;
  gsize quote_at = 0, first_word_at = 0;
  gboolean first_seen = FALSE;
  for (gsize i = 0; i < len;) {
    char c = s[i];
    if (!w.word && quote == CTX_BARE && c != ' ' && c != '\t' && !first_seen) {
      first_seen = TRUE;
      first_word_at = i;
    }
    if (c == '{') {
      Rpl r;
      int m = match_rpl (s, len, i, columns, &r, error);
      if (m < 0)
        return FALSE;
      if (m > 0) {
        r.ctx = quote;
        word_add_rpl (&w, &r);
        i = r.end;
        continue;
      }
    }
    if (quote == CTX_SQUOTE) {
      if (c == '\'')
        quote = CTX_BARE;
      else
        word_add_byte (&w, c);
      if (c == '\\' && i + 1 < len && s[i + 1] == '{') /* \{ is never a replacement */
        word_add_byte (&w, s[++i]);
      i++;
    } else if (quote == CTX_DQUOTE) {
      if (c == '"') {
        quote = CTX_BARE;
        i++;
      } else if (c == '\\' && i + 1 < len && strchr ("\"\\$`\n", s[i + 1])) {
        if (s[i + 1] != '\n') /* backslash-newline: the shell removes both */
          word_add_byte (&w, s[i + 1]);
        i += 2;
      } else if (c == '\\' && i + 1 < len && s[i + 1] == '{') {
        word_add_byte (&w, '\\'); /* kept in "...", as the shell keeps it; \{ is literal */
        word_add_byte (&w, '{');
        i += 2;
      } else {
        word_add_byte (&w, c);
        i++;
      }
    } else if (c == ' ' || c == '\t') {
      w.word = NULL;
      i++;
    } else if (c == '\'' || c == '"') {
      word_begin (&w); /* '' is an empty word */
      quote = c == '\'' ? CTX_SQUOTE : CTX_DQUOTE;
      quote_at = i;
      i++;
    } else if (c == '\\') {
      if (i + 1 == len)
        return !!fail (error, s, i, "a trailing backslash escapes nothing");
      if (s[i + 1] != '\n')
        word_add_byte (&w, s[i + 1]);
      i += 2;
    } else if (c == '\n' || strchr ("|&;<>()", c)) {
      /* without a shell these would be arguments; with one they join or redirect
       * commands: either way not what the template says, so say what would */
      return !!fail (error, s, i, "%s is shell syntax: set shell = yes to run the command "
                     "through /bin/sh", c == '\n' ? "a newline" : (char[]) { '\'', c, '\'', 0 });
    } else if (c == '#' && !w.word) {
      return !!fail (error, s, i, "'#' starts a shell comment: set shell = yes, or quote it");
    } else {
      word_add_byte (&w, c);
      i++;
    }
  }
  if (quote != CTX_BARE)
    return !!fail (error, s, quote_at, "unterminated %s quote: it is never closed",
                   quote == CTX_SQUOTE ? "single" : "double");
  if (t->words->len == 0)
    return !!fail (error, s, len, "the command is empty");
  /* NAME=value first: a shell would set a variable, execvp would look for a program */
  gsize j = first_word_at;
  if (g_ascii_isalpha (s[j]) || s[j] == '_') {
    while (g_ascii_isalnum (s[j]) || s[j] == '_')
      j++;
    if (s[j] == '=')
      return !!fail (error, s, first_word_at, "%.*s is a shell variable assignment: set "
                     "shell = yes, or run env", (int) (j + 1 - first_word_at), s + first_word_at);
  }
  if (t->rpls->len == 0) {
    w.word = NULL;
    word_add_rpl (&w, &(Rpl) { .op = OP_WHOLE, .ctx = CTX_BARE, .start = len, .end = len });
    t->appended = TRUE;
  }
  return TRUE;
}

/* ---- parsing with shell: where each replacement string stands ---------------------- */

typedef enum { SH_TOP, SH_SQUOTE, SH_DQUOTE, SH_CMDSUB, SH_BACKTICK, SH_PARAM, SH_ARITH } ShCtx;

typedef struct {
  ShCtx ctx;
  gsize at;     /* where it was opened */
  guint depth;  /* open parentheses inside $( and $(( */
} ShFrame;

static const char *
sh_ctx_name (ShCtx c)
{
  switch (c) {
  case SH_SQUOTE: return "single quote";
  case SH_DQUOTE: return "double quote";
  case SH_CMDSUB: return "command substitution $(";
  case SH_BACKTICK: return "command substitution `";
  case SH_PARAM: return "parameter expansion ${";
  case SH_ARITH: return "arithmetic expansion $((";
  default: return "command";
  }
}

/* Whether a double quote encloses the innermost frame: there a $( ) or ${ } is read by
 * rules the scanner does not follow far enough to quote a value after some constructs. */
static gboolean
inside_dquote (GArray *stack)
{
  for (guint k = stack->len - 1; k-- > 0;)
    if (g_array_index (stack, ShFrame, k).ctx == SH_DQUOTE)
      return TRUE;
  return FALSE;
}

static gboolean
scan_script (ExecTemplate *t, gboolean columns, GError **error)
{
  const char *s = t->text;
  gsize len = t->len;
  g_autoptr (GArray) stack = g_array_new (FALSE, FALSE, sizeof (ShFrame));
  g_array_append_val (stack, ((ShFrame) { .ctx = SH_TOP }));
  gboolean word_start = TRUE;  /* a # here starts a comment */
  gboolean comment = FALSE;
  gssize heredoc_at = -1, dollar_at = -1;
  gboolean blank = TRUE;
  for (gsize i = 0; i < len;) {
    ShFrame *f = &g_array_index (stack, ShFrame, stack->len - 1);
    char c = s[i];
    if (!perl_space (c))
      blank = FALSE;
    if (c == '{') {
      Rpl r;
      int m = match_rpl (s, len, i, columns, &r, error);
      if (m < 0)
        return FALSE;
      if (m > 0) {
        g_autofree char *name = g_strndup (s + i, r.end - i);
        if (comment)
          return !!fail (error, s, i, "%s in a shell comment: a newline in a value would end "
                         "the comment", name);
        if (f->ctx == SH_BACKTICK || f->ctx == SH_PARAM || f->ctx == SH_ARITH)
          return !!fail (error, s, i, "%s inside the %s opened at character %" G_GSIZE_FORMAT
                         " cannot be quoted safely: use $(...), or a variable set to it",
                         name, sh_ctx_name (f->ctx), char_pos (s, f->at));
        if (heredoc_at >= 0)
          return !!fail (error, s, i, "%s after the here-document at character %" G_GSIZE_FORMAT
                         ": a here-document's text is not unquoted by the shell; use printf "
                         "'%%s\\n' %s |", name, char_pos (s, (gsize) heredoc_at), name);
        if (dollar_at >= 0 && (gsize) dollar_at + 1 == i)
          return !!fail (error, s, i, "%s right after a $: the shell would read $ and the "
                         "quote as one", name);
        r.ctx = f->ctx == SH_SQUOTE ? CTX_SQUOTE : f->ctx == SH_DQUOTE ? CTX_DQUOTE : CTX_BARE;
        g_array_append_val (t->rpls, r);
        i = r.end;
        word_start = FALSE;
        continue;
      }
    }
    if (comment) {
      if (c == '\n') {
        comment = FALSE;
        word_start = TRUE;
      }
      i++;
      continue;
    }
    switch (f->ctx) {
    case SH_SQUOTE:
      if (c == '\'')
        g_array_set_size (stack, stack->len - 1);
      i += c == '\\' && i + 1 < len && s[i + 1] == '{' ? 2 : 1; /* \{ is never a replacement */
      continue;
    case SH_BACKTICK:
      if (c == '`')
        g_array_set_size (stack, stack->len - 1);
      i += c == '\\' && i + 1 < len ? 2 : 1;
      continue;
    case SH_ARITH:
      if (c == '(')
        f->depth++;
      else if (c == ')' && f->depth > 0)
        f->depth--;
      else if (c == ')' && i + 1 < len && s[i + 1] == ')') {
        g_array_set_size (stack, stack->len - 1);
        i++;
      }
      i++;
      continue;
    default:
      break;
    }
    /* SH_TOP, SH_CMDSUB, SH_DQUOTE, SH_PARAM: backslash, quotes and expansions */
    if (c == '\\' && i + 1 < len && s[i + 1] == '\n') {
      /* a line continuation: the shell removes both, so what follows continues the word
       * (or starts one, and a # there is a comment) as if they were not there */
      i += 2;
      continue;
    }
    if (c == '\\') {
      if (i + 1 == len)
        return !!fail (error, s, i, "a trailing backslash escapes nothing");
      /* in "...", \ escapes only \" \\ \$ \` and newline; \{ is never a replacement */
      gboolean pair = f->ctx != SH_DQUOTE || strchr ("\"\\$`\n{", s[i + 1]);
      i += pair ? 2 : 1;
      word_start = FALSE;
      continue;
    }
    if (c == '$') {
      ShFrame nf = { .at = i };
      if (starts_with (s, len, i, "$((")) {
        nf.ctx = SH_ARITH;
        i += 3;
      } else if (starts_with (s, len, i, "$(")) {
        nf.ctx = SH_CMDSUB;
        i += 2;
        word_start = TRUE;
      } else if (starts_with (s, len, i, "${") && !rpl_at (s, len, i + 1, columns)) {
        nf.ctx = SH_PARAM;
        i += 2;
      } else {
        dollar_at = (gssize) i;
        i++;
        continue;
      }
      g_array_append_val (stack, nf);
      continue;
    }
    if (f->ctx == SH_PARAM && (c == '\'' || c == '"') && inside_dquote (stack))
      return !!fail (error, s, i, "a %s quote inside the \"${\" at character %" G_GSIZE_FORMAT
                     ": shells differ on whether it quotes there, so what follows cannot be "
                     "quoted safely", c == '\'' ? "single" : "double", char_pos (s, f->at));
    if (c == '`' || (f->ctx != SH_DQUOTE && (c == '\'' || c == '"'))) {
      ShFrame nf = { .ctx = c == '`' ? SH_BACKTICK : c == '\'' ? SH_SQUOTE : SH_DQUOTE, .at = i };
      g_array_append_val (stack, nf);
      i++;
      word_start = FALSE;
      continue;
    }
    if (f->ctx == SH_DQUOTE) {
      if (c == '"')
        g_array_set_size (stack, stack->len - 1);
      i++;
      continue;
    }
    if (f->ctx == SH_PARAM) {
      if (c == '}')
        g_array_set_size (stack, stack->len - 1);
      i++;
      continue;
    }
    /* SH_TOP and SH_CMDSUB: words and operators */
    if (f->ctx == SH_CMDSUB && word_start && starts_with (s, len, i, "case") &&
        (i + 4 == len || perl_space (s[i + 4])) && inside_dquote (stack))
      return !!fail (error, s, i, "a case inside the \"$(\" at character %" G_GSIZE_FORMAT
                     ": its patterns' ) cannot be told from the end of $( ), so a value after "
                     "it cannot be quoted safely; set a variable with the case outside the "
                     "quotes", char_pos (s, f->at));
    if (c == '#' && word_start) {
      comment = TRUE;
      i++;
      continue;
    }
    if (f->ctx == SH_CMDSUB && c == '(')
      f->depth++;
    else if (f->ctx == SH_CMDSUB && c == ')') {
      if (f->depth == 0) {
        g_array_set_size (stack, stack->len - 1);
        i++;
        word_start = FALSE;
        continue;
      }
      f->depth--;
    }
    if (starts_with (s, len, i, "<<<")) { /* a here-string is a word */
      i += 3;
      word_start = TRUE;
      continue;
    }
    if (starts_with (s, len, i, "<<") && heredoc_at < 0)
      heredoc_at = (gssize) i;
    word_start = perl_space (c) || strchr ("|&;<>()", c);
    i++;
  }
  if (stack->len > 1) {
    ShFrame *f = &g_array_index (stack, ShFrame, stack->len - 1);
    return !!fail (error, s, f->at, "unterminated %s: it is never closed", sh_ctx_name (f->ctx));
  }
  if (blank)
    return !!fail (error, s, len, "the command is empty");
  if (t->rpls->len == 0) {
    if (comment)
      return !!fail (error, s, len, "the template ends in a comment, where the input would "
                     "be appended: say where it goes with {}");
    if (heredoc_at >= 0)
      return !!fail (error, s, (gsize) heredoc_at, "the input cannot be appended after a "
                     "here-document: say where it goes with {}");
    g_array_append_val (t->rpls, ((Rpl) { .op = OP_WHOLE, .ctx = CTX_BARE,
                                          .start = len, .end = len }));
    t->appended = TRUE;
  }
  return TRUE;
}

ExecTemplate *
exec_template_parse (const char *command, gboolean columns, gboolean shell, GError **error)
{
  g_return_val_if_fail (command != NULL, NULL);
  g_autoptr (ExecTemplate) t = g_new0 (ExecTemplate, 1);
  t->text = g_strdup (command);
  t->len = strlen (command);
  t->shell = shell;
  t->rpls = g_array_new (FALSE, FALSE, sizeof (Rpl));
  t->words = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  t->lit = g_string_new (NULL);
  if (!(shell ? scan_script (t, columns, error) : scan_words (t, columns, error)))
    return NULL;
  return g_steal_pointer (&t);
}

void
exec_template_free (ExecTemplate *t)
{
  if (!t)
    return;
  g_free (t->text);
  g_array_unref (t->rpls);
  g_ptr_array_unref (t->words);
  g_string_free (t->lit, TRUE);
  g_free (t);
}

const char *
exec_template_text (const ExecTemplate *t)
{
  return t->text;
}

gboolean
exec_template_uses (const ExecTemplate *t, char which)
{
  for (guint k = 0; k < t->rpls->len; k++) {
    const Rpl *r = &g_array_index (t->rpls, Rpl, k);
    if ((which == '#' && r->op == OP_SEQ) || (which == '%' && r->op == OP_SLOT) ||
        (which == 'c' && r->col != 0))
      return TRUE;
  }
  return FALSE;
}

/* ---- values ------------------------------------------------------------------------ */

/* {.}: Perl s:\.[^/.]*$:: — [^/.] takes newlines too, so $ is the end of the value. */
static gsize
noext_len (const char *s, gsize n)
{
  for (gsize i = n; i-- > 0;) {
    if (s[i] == '/')
      return n;
    if (s[i] == '.')
      return i;
  }
  return n;
}

/* {/}: Perl s:.*\/:: — . stops at a newline, so the match is in the first line that holds
 * a slash, from that line's start to its last slash. */
static void
append_base (GString *out, const char *s, gsize n)
{
  for (gsize ls = 0; ls <= n;) {
    gsize le = ls;
    gssize slash = -1;
    for (; le < n && s[le] != '\n'; le++)
      if (s[le] == '/')
        slash = (gssize) le;
    if (slash >= 0) {
      g_string_append_len (out, s, (gssize) ls);
      g_string_append_len (out, s + slash + 1, (gssize) (n - (gsize) slash - 1));
      return;
    }
    ls = le + 1;
  }
  g_string_append_len (out, s, (gssize) n);
}

/* File::Basename::fileparse on Unix: m{^(.*\/)?(.*)}s, "./" for an empty folder part;
 * _strip_trailing_sep: trailing slashes dropped, but never the first character. */
static void
fileparse (const char *s, gsize n, const char **dir, gsize *dir_len, gsize *base_len)
{
  gsize k = n;
  while (k > 0 && s[k - 1] != '/')
    k--;
  if (k == 0) {
    *dir = "./";
    *dir_len = 2;
  } else {
    *dir = s;
    *dir_len = k;
  }
  *base_len = n - k;
}

static gsize
strip_trailing_sep (const char *d, gsize n)
{
  while (n > 1 && d[n - 1] == '/')
    n--;
  return n;
}

/* {//}: File::Basename::dirname on Unix */
static void
append_dir (GString *out, const char *s, gsize n)
{
  const char *dir;
  gsize dir_len, base_len;
  fileparse (s, n, &dir, &dir_len, &base_len);
  dir_len = strip_trailing_sep (dir, dir_len);
  if (base_len == 0) {
    fileparse (dir, dir_len, &dir, &dir_len, &base_len);
    dir_len = strip_trailing_sep (dir, dir_len);
  }
  g_string_append_len (out, dir, (gssize) dir_len);
}

/* Appends the value of r, unquoted. */
static void
append_value (GString *out, const Rpl *r, const ExecValues *v)
{
  const char *s = v->input ? v->input : "";
  gsize n = v->input ? v->input_len : 0;
  if (r->op == OP_SEQ) {
    g_string_append_printf (out, "%" G_GUINT64_FORMAT, v->seq);
    return;
  }
  if (r->op == OP_SLOT) {
    g_string_append_printf (out, "%u", v->slot);
    return;
  }
  if (r->col != 0) {
    gint64 k = r->col > 0 ? r->col - 1 : (gint64) v->n_cols + r->col;
    if (k < 0 || k >= (gint64) v->n_cols || !v->cols)
      return; /* a column beyond the last is empty */
    s = v->cols[k];
    n = v->col_lens ? v->col_lens[k] : strlen (s);
  }
  switch (r->op) {
  case OP_NOEXT:
    g_string_append_len (out, s, (gssize) noext_len (s, n));
    break;
  case OP_BASE:
    append_base (out, s, n);
    break;
  case OP_BASE_NOEXT: {
    g_autoptr (GString) b = g_string_new (NULL);
    append_base (b, s, n);
    g_string_append_len (out, b->str, (gssize) noext_len (b->str, b->len));
    break;
  }
  case OP_DIR:
    append_dir (out, s, n);
    break;
  default:
    g_string_append_len (out, s, (gssize) n);
  }
}

/* ---- quoting ----------------------------------------------------------------------- */

/* parallel's test: /[^-_.+a-z0-9\/]/i, on bytes */
static gboolean
shell_safe (const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (s[i]) && !strchr ("-_.+/", s[i]))
      return FALSE;
  return TRUE;
}

/* parallel's shell_quote_scalar_default */
static void
append_quoted (GString *out, const char *s, gsize n)
{
  if (n == 0) {
    g_string_append (out, "''");
    return;
  }
  if (shell_safe (s, n)) {
    g_string_append_len (out, s, (gssize) n);
    return;
  }
  g_autoptr (GString) q = g_string_new ("'");
  for (gsize i = 0; i < n; i++) {
    if (s[i] == '\'')
      g_string_append (q, "'\"'\"'");
    else
      g_string_append_c (q, s[i]);
  }
  g_string_append_c (q, '\'');
  gsize from = 0, to = q->len;
  if (g_str_has_prefix (q->str, "''"))
    from = 2;
  if (to - from >= 2 && q->str[to - 1] == '\'' && q->str[to - 2] == '\'')
    to -= 2;
  g_string_append_len (out, q->str + from, (gssize) (to - from));
}

/* Where a value holds a control byte or bytes that are not UTF-8, the line shown (never
 * the script run) spells them $'\n', $'\t', $'\r', $'\xNN' between '...' runs of the
 * rest: one line that bash, ksh and zsh read back as the same bytes (dash 0.5.12 has no
 * $'...'), so the job log and messages can show it as it is. */
static gsize
plain_run (const char *s, gsize n)
{
  gsize i = 0;
  while (i < n) {
    guchar c = (guchar) s[i];
    if (c < 0x20 || c == 0x7f)
      break;
    if (c < 0x80) {
      i++;
      continue;
    }
    gunichar u = g_utf8_get_char_validated (s + i, (gssize) (n - i));
    if (u == (gunichar) -1 || u == (gunichar) -2)
      break;
    i += (gsize) g_unichar_to_utf8 (u, NULL);
  }
  return i;
}

static void
append_quoted_shown (GString *out, const char *s, gsize n)
{
  if (plain_run (s, n) == n) {
    append_quoted (out, s, n);
    return;
  }
  for (gsize i = 0; i < n;) {
    gsize run = plain_run (s + i, n - i);
    if (run) {
      append_quoted (out, s + i, run);
      i += run;
      continue;
    }
    guchar c = (guchar) s[i++];
    if (c == '\n')
      g_string_append (out, "$'\\n'");
    else if (c == '\t')
      g_string_append (out, "$'\\t'");
    else if (c == '\r')
      g_string_append (out, "$'\\r'");
    else
      g_string_append_printf (out, "$'\\x%02x'", c);
  }
}

/* A value where the template text has ctx around it: bare, it is quoted; inside '...' or
 * "..." a value that needs quoting closes the quote first and reopens it after.  `shown`:
 * for the line shown, not the script (append_quoted_shown). */
static void
append_in_ctx (GString *out, Ctx ctx, const char *s, gsize n, gboolean shown)
{
  void (*quote) (GString *, const char *, gsize) = shown ? append_quoted_shown : append_quoted;
  if (ctx == CTX_BARE) {
    quote (out, s, n);
  } else if (shell_safe (s, n)) {
    g_string_append_len (out, s, (gssize) n); /* nothing, for the empty value */
  } else {
    char q = ctx == CTX_SQUOTE ? '\'' : '"';
    g_string_append_c (out, q);
    quote (out, s, n);
    g_string_append_c (out, q);
  }
}

char *
exec_template_command_line (const ExecTemplate *t, const ExecValues *v, gboolean shown)
{
  /* a template with a control byte of its own (a script's newline) is no one line
   * anyway: the core escapes all of it, and values spelled $'...' would be escaped twice */
  for (gsize i = 0; shown && i < t->len; i++)
    if (g_ascii_iscntrl (t->text[i]))
      shown = FALSE;
  GString *out = g_string_sized_new (t->len + 64);
  g_autoptr (GString) val = g_string_new (NULL);
  gsize at = 0;
  for (guint k = 0; k < t->rpls->len; k++) {
    const Rpl *r = &g_array_index (t->rpls, Rpl, k);
    g_string_append_len (out, t->text + at, (gssize) (r->start - at));
    if (t->appended)
      g_string_append_c (out, ' ');
    g_string_truncate (val, 0);
    append_value (val, r, v);
    append_in_ctx (out, r->ctx, val->str, val->len, shown);
    at = r->end;
  }
  g_string_append_len (out, t->text + at, (gssize) (t->len - at));
  return g_string_free (out, FALSE);
}

/* ---- argv -------------------------------------------------------------------------- */

/* Linux's MAX_ARG_STRLEN: one argument, its NUL included, is at most 32 pages. */
static gsize
max_arg_len (void)
{
#ifdef __linux__
  long page = sysconf (_SC_PAGESIZE);
  return (page > 0 ? (gsize) page : 4096) * 32 - 1;
#else
  return G_MAXSIZE;
#endif
}

static gboolean
check_arg (const GString *arg, guint index, GError **error)
{
  const char *nul = memchr (arg->str, '\0', arg->len);
  if (nul) {
    g_set_error (error, EXEC_TEMPLATE_ERROR, EXEC_TEMPLATE_ERROR_NUL,
                 "argument %u of the command would hold a NUL byte (at its byte %"
                 G_GSIZE_FORMAT "), which no argument can", index, (gsize) (nul - arg->str) + 1);
    return FALSE;
  }
  if (arg->len > max_arg_len ()) {
    g_set_error (error, EXEC_TEMPLATE_ERROR, EXEC_TEMPLATE_ERROR_TOO_LONG,
                 "argument %u of the command would be %" G_GSIZE_FORMAT " bytes long; the "
                 "kernel takes at most %" G_GSIZE_FORMAT, index, arg->len, max_arg_len ());
    return FALSE;
  }
  return TRUE;
}

GStrv
exec_template_argv (const ExecTemplate *t, const ExecValues *v, GError **error)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  if (t->shell) {
    /* the script is the command line: a NUL in a value is looked for in the values,
     * where the command line would stop at it */
    g_autoptr (GString) val = g_string_new (NULL);
    for (guint k = 0; k < t->rpls->len; k++) {
      g_string_truncate (val, 0);
      append_value (val, &g_array_index (t->rpls, Rpl, k), v);
      if (!check_arg (val, 3, error))
        return NULL;
    }
    g_autoptr (GString) script = g_string_new (NULL);
    g_autofree char *line = exec_template_command_line (t, v, FALSE);
    g_string_append (script, line);
    if (!check_arg (script, 3, error))
      return NULL;
    g_strv_builder_add_many (b, "/bin/sh", "-c", script->str, NULL);
    return g_strv_builder_end (b);
  }
  g_autoptr (GString) arg = g_string_new (NULL);
  for (guint w = 0; w < t->words->len; w++) {
    GArray *word = g_ptr_array_index (t->words, w);
    g_string_truncate (arg, 0);
    for (guint p = 0; p < word->len; p++) {
      const Piece *piece = &g_array_index (word, Piece, p);
      if (piece->rpl < 0)
        g_string_append_len (arg, t->lit->str + piece->off, (gssize) piece->len);
      else
        append_value (arg, &g_array_index (t->rpls, Rpl, piece->rpl), v);
    }
    if (!check_arg (arg, w + 1, error))
      return NULL;
    g_strv_builder_add (b, arg->str);
  }
  return g_strv_builder_end (b);
}

/* ---- columns ----------------------------------------------------------------------- */

/* colsep as written (parallel reads a regular expression; here its escapes of one
 * character only) to the bytes it stands for */
static char *
colsep_bytes (const char *colsep)
{
  GString *out = g_string_new (NULL);
  for (const char *p = colsep; *p; p++) {
    if (*p == '\\' && p[1]) {
      char e = *++p;
      if (e == 't' || e == 'n' || e == 'r')
        g_string_append_c (out, e == 't' ? '\t' : e == 'n' ? '\n' : '\r');
      else if (g_ascii_isalnum (e))
        g_string_append_printf (out, "\\%c", e); /* \d, \s...: regex classes, kept as written */
      else
        g_string_append_c (out, e);
    } else {
      g_string_append_c (out, *p);
    }
  }
  return g_string_free (out, FALSE);
}

static void
add_trimmed (GPtrArray *cols_out, const char *s, gsize n)
{
  while (n > 0 && perl_space (*s)) {
    s++;
    n--;
  }
  while (n > 0 && perl_space (s[n - 1]))
    n--;
  g_ptr_array_add (cols_out, g_strndup (s, n));
}

guint
exec_split_columns (const char *input, gsize len, const char *colsep, GPtrArray *cols_out)
{
  g_autofree char *sep = colsep_bytes (colsep ? colsep : "");
  gsize sep_len = strlen (sep);
  guint n = 0;
  gsize from = 0;
  /* Perl's split /SEP/, $line, -1: empty columns kept, at the start and the end too */
  for (gsize i = 0; sep_len > 0 && i + sep_len <= len;) {
    if (memcmp (input + i, sep, sep_len) == 0) {
      add_trimmed (cols_out, input + from, i - from);
      n++;
      i += sep_len;
      from = i;
    } else {
      i++;
    }
  }
  add_trimmed (cols_out, input + from, len - from);
  return n + 1;
}
