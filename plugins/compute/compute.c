/* compute.c — the compute plugin: exact reductions over a range of integers.
 *
 * The parent splits [start, end) into tasks of `chunk` numbers; each worker computes over
 * its sub-range and the parent adds the results up in its result hook.
 *   op = primes       how many primes lie in the range (segmented sieve of Eratosthenes;
 *                     Miller-Rabin, deterministic for 64 bits, for very small tasks)
 *   op = sum-squares  the sum of x*x over the range, in 128-bit arithmetic
 * Every addition is checked: a sum that does not fit in 128 bits fails the task or the
 * job with a message, and never prints a wrong number.  The total is printed on stdout
 * in decimal, alone on its line, so that scripts can read it.
 */
#include <taskrun/plugin.h>

#include <math.h>
#include <stdio.h>

typedef unsigned __int128 u128;

enum { OP_PRIMES = 1, OP_SUM_SQUARES = 2 };

static const char *const op_choices[] = { "primes", "sum-squares", NULL };

static const TrOption compute_options[] = {
  { .name = "op", .type = TR_OPTION_ENUM, .default_value = "primes", .choices = op_choices,
    .help = "primes: count the primes in the range; sum-squares: add up x*x over it" },
  { .name = "start", .type = TR_OPTION_INT, .default_value = "0", .min = 0, .max = 9.2e18,
    .help = "first number of the range" },
  { .name = "end", .type = TR_OPTION_INT, .required = TRUE, .min = 0, .max = 9.2e18,
    .help = "the range ends before this number: [start, end)" },
  { .name = "chunk", .type = TR_OPTION_INT, .default_value = "100000", .min = 1, .max = 9.2e18,
    .help = "numbers per task" },
  { .name = NULL },
};

typedef struct {
  guint8 op;
  guint8 pad[7];
  guint64 lo, hi;
} ComputeTask;

typedef struct {
  guint64 lo_bits, hi_bits; /* a u128, as two halves */
} ComputeResult;

typedef struct {
  TrJob *job;
  guint8 op;
  guint64 start, end, chunk, next;
  u128 total;
  gboolean overflow;
} Compute;

static char *
u128_to_string (u128 v)
{
  char buf[64];
  int i = sizeof buf - 1;
  buf[i] = '\0';
  do {
    buf[--i] = (char) ('0' + (int) (v % 10));
    v /= 10;
  } while (v);
  return g_strdup (buf + i);
}

static gboolean
compute_configure (TrJob *job, const TrConfig *config, gpointer *state, GError **error)
{
  guint64 start = (guint64) tr_config_get_int (config, "start");
  guint64 end = (guint64) tr_config_get_int (config, "end");
  if (start > end) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "'start' (%" G_GUINT64_FORMAT ") is greater than 'end' (%" G_GUINT64_FORMAT
                 "): the range [start, end) would be negative", start, end);
    return FALSE;
  }
  Compute *c = g_new0 (Compute, 1);
  c->job = job;
  c->op = g_str_equal (tr_config_get_string (config, "op"), "primes") ? OP_PRIMES : OP_SUM_SQUARES;
  c->start = c->next = start;
  c->end = end;
  c->chunk = (guint64) tr_config_get_int (config, "chunk");
  tr_job_set_total_units (job, end - start, TRUE);
  *state = c;
  return TRUE;
}

static TrNext
compute_next (gpointer state, TrTask *task, GError **error)
{
  (void) error;
  Compute *c = state;
  if (c->next >= c->end)
    return TR_NEXT_END;
  ComputeTask t = { .op = c->op, .lo = c->next };
  t.hi = c->end - c->next > c->chunk ? c->next + c->chunk : c->end;
  c->next = t.hi;
  tr_task_set_payload (task, &t, sizeof t);
  tr_task_set_units (task, t.hi - t.lo);
  return TR_NEXT_TASK;
}

/* Descriptions are made only when needed: a run may have millions of one-number tasks. */
static void
compute_describe (gpointer state, const guint8 *payload, gsize len, GString *out)
{
  (void) state;
  ComputeTask t;
  if (len != sizeof t)
    return;
  memcpy (&t, payload, sizeof t);
  g_string_printf (out, "%s [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ")",
                   t.op == OP_PRIMES ? "primes" : "sum-squares", t.lo, t.hi);
}

static void
compute_result (gpointer state, const TrResult *r)
{
  Compute *c = state;
  ComputeResult cr;
  if (r->error || r->len != sizeof cr)
    return;
  memcpy (&cr, r->data, sizeof cr);
  u128 v = ((u128) cr.hi_bits << 64) | cr.lo_bits;
  if (__builtin_add_overflow (c->total, v, &c->total))
    c->overflow = TRUE;
}

static gboolean
compute_finish (gpointer state, const TrStats *stats, GString *summary, GError **error)
{
  Compute *c = state;
  const char *what = c->op == OP_PRIMES ? "primes" : "sum of squares";
  if (c->overflow) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "the %s over [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 ") does not fit in 128 bits: no total printed", what, c->start, c->end);
    return FALSE;
  }
  if (stats->skipped) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "%" G_GUINT64_FORMAT " tasks were skipped (--resume): their results are not in "
                 "this run, so no total is printed; run the job without --resume",
                 stats->skipped);
    return FALSE;
  }
  if (stats->failed || stats->not_run) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                 "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                 " tasks did not succeed: no total printed, it would be wrong",
                 stats->failed + stats->not_run, stats->total);
    return FALSE;
  }
  g_autofree char *total = u128_to_string (c->total);
  tr_job_print (c->job, "%s", total);
  g_string_append_printf (summary, "%s over [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "): %s",
                          what, c->start, c->end, total);
  return TRUE;
}

static void
compute_destroy (gpointer state)
{
  g_free (state);
}

/* ---- worker side ---------------------------------------------------------------------- */

typedef struct {
  guint32 *base;      /* odd primes up to base_limit */
  gsize n_base;
  guint64 base_limit;
  guint8 *segment;
  gsize segment_size;
} Sieve;

static guint64
mulmod (guint64 a, guint64 b, guint64 m)
{
  return (guint64) ((u128) a * b % m);
}

static guint64
powmod (guint64 b, guint64 e, guint64 m)
{
  guint64 r = 1;
  b %= m;
  while (e) {
    if (e & 1)
      r = mulmod (r, b, m);
    b = mulmod (b, b, m);
    e >>= 1;
  }
  return r;
}

/* Deterministic Miller-Rabin for every 64-bit n. */
static gboolean
is_prime (guint64 n)
{
  static const guint64 small[] = { 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37 };
  if (n < 2)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (small); i++) {
    if (n == small[i])
      return TRUE;
    if (n % small[i] == 0)
      return FALSE;
  }
  guint64 d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    s++;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (small); i++) {
    guint64 x = powmod (small[i], d, n);
    if (x == 1 || x == n - 1)
      continue;
    gboolean composite = TRUE;
    for (int r = 1; r < s; r++) {
      x = mulmod (x, x, n);
      if (x == n - 1) {
        composite = FALSE;
        break;
      }
    }
    if (composite)
      return FALSE;
  }
  return TRUE;
}

/* The base primes of the sieve stop at this square root (about 16 MiB while they are
 * made, 4 MiB kept); ranges above its square, 2.8e14, are tested number by number. */
#define SIEVE_ROOT_MAX (1u << 24)

static void
sieve_base (Sieve *sv, guint64 limit)
{
  if (limit <= sv->base_limit)
    return;
  limit = MIN (MAX (limit, sv->base_limit * 2), (guint64) SIEVE_ROOT_MAX);
  guint8 *composite = g_malloc0 (limit + 1);
  GArray *base = g_array_new (FALSE, FALSE, sizeof (guint32));
  for (guint64 i = 3; i <= limit; i += 2) {
    if (composite[i])
      continue;
    guint32 p = (guint32) i;
    g_array_append_val (base, p);
    for (guint64 j = i * i; j <= limit; j += 2 * i)
      composite[j] = 1;
  }
  g_free (composite);
  g_free (sv->base);
  sv->n_base = base->len;
  sv->base = (guint32 *) g_array_free (base, FALSE);
  sv->base_limit = limit;
}

#define SEGMENT_MAX (1u << 18) /* odd numbers per segment: 256 KiB of flags */

/* Makes the segment buffer hold the odd numbers of a range of `span` numbers (up to
 * SEGMENT_MAX of them) and returns how many it holds. */
static gsize
sieve_segment (Sieve *sv, guint64 span)
{
  gsize want = (gsize) MIN (span / 2 + 1, (guint64) SEGMENT_MAX);
  if (sv->segment_size < want) {
    g_free (sv->segment);
    sv->segment = g_malloc (want);
    memset (sv->segment, 0, want); /* fault its pages in now, not in the first task */
    sv->segment_size = want;
  }
  return sv->segment_size;
}

/* Primes in [lo, hi) with a segmented sieve over odd numbers. */
static guint64
count_primes (Sieve *sv, guint64 lo, guint64 hi)
{
  guint64 root = (guint64) sqrtl ((long double) hi) + 1;
  if (hi - lo <= 64 || root > SIEVE_ROOT_MAX) {
    guint64 n = 0;
    for (guint64 x = lo; x < hi; x++)
      n += is_prime (x);
    return n;
  }
  guint64 count = (lo <= 2 && hi > 2) ? 1 : 0;
  sieve_base (sv, root);
  gsize seg = sieve_segment (sv, hi - lo);
  guint64 first = MAX (lo, 3) | 1; /* first odd number >= max(lo, 3) */
  for (guint64 base = first; base < hi; base += 2 * seg) {
    guint64 top = MIN (hi, base + 2 * seg);
    gsize n = (gsize) ((top - base + 1) / 2); /* odd numbers base, base+2, ... < top */
    memset (sv->segment, 0, n);
    for (gsize i = 0; i < sv->n_base; i++) {
      guint64 p = sv->base[i];
      if (p * p >= top)
        break;
      guint64 start = MAX (p * p, (base + p - 1) / p * p);
      if ((start & 1) == 0)
        start += p;
      for (guint64 j = start; j < top; j += 2 * p)
        sv->segment[(j - base) / 2] = 1;
    }
    for (gsize i = 0; i < n; i++) /* every number here is odd and at least 3 */
      count += !sv->segment[i];
  }
  return count;
}

/* A worker readies its sieve before its first task: the base primes up to the root of
 * `end` and a segment buffer for one task, so that no task pays for them (nor the base
 * primes get made again each time a task's root outgrows them). */
static gboolean
compute_worker_init (const TrConfig *config, gpointer *wstate, GError **error)
{
  (void) error;
  Sieve *sv = g_new0 (Sieve, 1);
  if (g_str_equal (tr_config_get_string (config, "op"), "primes")) {
    guint64 root = (guint64) sqrtl ((long double) tr_config_get_int (config, "end")) + 1;
    guint64 chunk = (guint64) tr_config_get_int (config, "chunk");
    if (root <= SIEVE_ROOT_MAX && chunk > 64) {
      sieve_base (sv, root);
      sieve_segment (sv, chunk);
    }
  }
  *wstate = sv;
  return TRUE;
}

static void
compute_worker_fini (gpointer wstate)
{
  Sieve *sv = wstate;
  g_free (sv->base);
  g_free (sv->segment);
  g_free (sv);
}

static gboolean
compute_run (gpointer wstate, const guint8 *payload, gsize len, TrOutput *out, GError **error)
{
  ComputeTask t;
  if (len != sizeof t) {
    g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED, "bad payload of %zu bytes", len);
    return FALSE;
  }
  memcpy (&t, payload, sizeof t);
  u128 v = 0;
  if (t.op == OP_PRIMES) {
    v = count_primes (wstate, t.lo, t.hi);
  } else {
    for (guint64 x = t.lo; x < t.hi; x++) {
      u128 sq = (u128) x * x;
      if (__builtin_add_overflow (v, sq, &v)) {
        g_set_error (error, TR_TASK_ERROR, TR_TASK_ERROR_FAILED,
                     "the sum of squares over [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                     ") does not fit in 128 bits", t.lo, t.hi);
        return FALSE;
      }
    }
  }
  ComputeResult r = { .lo_bits = (guint64) v, .hi_bits = (guint64) (v >> 64) };
  tr_output_append (out, &r, sizeof r);
  return TRUE;
}

TR_PLUGIN_DEFINE (
  .name = "compute",
  .version = "1.0",
  .description = "exact reductions over [start, end): count primes, or sum squares in 128 bits",
  .license = "MIT",
  .options = compute_options,
  .flags = TR_PLUGIN_FLAG_DETERMINISTIC,
  .unit_name = "numbers",
  .configure = compute_configure,
  .next_task = compute_next,
  .result = compute_result,
  .finish = compute_finish,
  .destroy = compute_destroy,
  .worker_init = compute_worker_init,
  .run = compute_run,
  .worker_fini = compute_worker_fini,
  .describe = compute_describe,
);
