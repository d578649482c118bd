/* test-options.c — typed option values: each type's parsing and range, defaults, required
 * keys, the suggestion for near misses, and the checks of a plugin's option table. */
#include "testutil.h"
#include "internal.h"

static const char *const colours[] = { "red", "green", NULL };
static const TrOption table[] = {
  { .name = "name", .type = TR_OPTION_STRING, .required = TRUE, .help = "who" },
  { .name = "count", .type = TR_OPTION_INT, .default_value = "3", .min = 1, .max = 10 },
  { .name = "ratio", .type = TR_OPTION_DOUBLE, .default_value = "0.5" },
  { .name = "fast", .type = TR_OPTION_BOOL, .default_value = "no" },
  { .name = "colour", .type = TR_OPTION_ENUM, .default_value = "red", .choices = colours },
  { .name = "chunk_size", .type = TR_OPTION_SIZE, .default_value = "64M" },
  { .name = "where", .type = TR_OPTION_PATH },
  { .name = NULL },
};

static void
test_defaults (void)
{
  g_autoptr (TrConfig) c = tr_config_new (table, "t");
  g_assert_cmpint (tr_config_get_int (c, "count"), ==, 3);
  g_assert_cmpfloat (tr_config_get_double (c, "ratio"), ==, 0.5);
  g_assert_false (tr_config_get_bool (c, "fast"));
  g_assert_cmpstr (tr_config_get_string (c, "colour"), ==, "red");
  g_assert_cmpint (tr_config_get_int (c, "chunk_size"), ==, 64 << 20);
  g_assert_null (tr_config_get_string (c, "where"));
  g_assert_false (tr_config_is_set (c, "count"));
  g_autoptr (GError) error = NULL;
  g_assert_false (tr_config_check_required (c, &error));
  g_assert_nonnull (strstr (error->message, "missing required key 'name' (who)"));
}

static void
test_values (void)
{
  g_autoptr (TrConfig) c = tr_config_new (table, "t");
  g_autoptr (GError) error = NULL;
  g_assert_true (tr_config_set (c, "name", "x", NULL, &error));
  g_assert_true (tr_config_set (c, "count", "10", NULL, &error));
  g_assert_true (tr_config_set (c, "ratio", "1e-3", NULL, &error));
  g_assert_true (tr_config_set (c, "fast", "On", NULL, &error));
  g_assert_true (tr_config_set (c, "colour", "green", NULL, &error));
  g_assert_true (tr_config_set (c, "chunk_size", "1GiB", NULL, &error));
  g_assert_true (tr_config_set (c, "where", "a/../b", "/base", &error));
  g_assert_no_error (error);
  g_assert_true (tr_config_check_required (c, NULL));
  g_assert_cmpint (tr_config_get_int (c, "count"), ==, 10);
  g_assert_cmpfloat (tr_config_get_double (c, "ratio"), ==, 1e-3);
  g_assert_true (tr_config_get_bool (c, "fast"));
  g_assert_cmpint (tr_config_get_int (c, "chunk_size"), ==, G_GINT64_CONSTANT (1) << 30);
  g_assert_cmpstr (tr_config_get_string (c, "where"), ==, "/base/b");
  g_assert_true (tr_config_is_set (c, "count"));
  g_autoptr (GPtrArray) pairs = tr_config_to_pairs (c);
  g_assert_cmpuint (pairs->len, ==, 14);
}

static void
test_bad_values (void)
{
  static const char *const cases[][3] = {
    { "count", "11", "int 'count': 11 is out of range (1 to 10)" },
    { "count", "3.5", "int 'count': '3.5' is not a whole number" },
    { "count", "", "int 'count': '' is not a whole number" },
    { "ratio", "nan", "double 'ratio': 'nan' is not a number" },
    { "ratio", "1e999", "double 'ratio': '1e999' is not a number" },
    { "fast", "2", "bool 'fast': '2' is not yes or no" },
    { "colour", "blue", "enum 'colour': 'blue' is not one of: red, green" },
    { "chunk_size", "64X", "size 'chunk_size': '64X' is not a size" },
    { "chunk_size", "-1", "size 'chunk_size': '-1' is not a size" },
    { "chunk_size", "99999999999T", "is not a size" },
    { "where", "", "path 'where': empty path" },
    { "colours", "red", "unknown key 'colours' (did you mean 'colour'?)" },
    { "chunksize", "1", "unknown key 'chunksize' (did you mean 'chunk_size'?)" },
    { "zzz", "1", "unknown key 'zzz' (valid keys: name, count, ratio" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (TrConfig) c = tr_config_new (table, "t");
    g_autoptr (GError) error = NULL;
    g_assert_false (tr_config_set (c, cases[i][0], cases[i][1], NULL, &error));
    g_assert_nonnull (error);
    if (!strstr (error->message, cases[i][2]))
      g_error ("'%s = %s': got \"%s\", want \"%s\"", cases[i][0], cases[i][1], error->message,
               cases[i][2]);
  }
}

static void
test_table_checks (void)
{
  static const TrOption bad_default[] = {
    { .name = "n", .type = TR_OPTION_INT, .default_value = "lots" }, { .name = NULL } };
  static const TrOption bad_name[] = { { .name = "Bad-Name", .type = TR_OPTION_INT }, { .name = NULL } };
  static const TrOption no_choices[] = { { .name = "e", .type = TR_OPTION_ENUM }, { .name = NULL } };
  static const TrOption twice[] = {
    { .name = "a", .type = TR_OPTION_INT }, { .name = "a", .type = TR_OPTION_BOOL }, { .name = NULL } };
  g_autoptr (GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL;
  g_assert_true (tr_options_check_table (table, NULL));
  g_assert_false (tr_options_check_table (bad_default, &e1));
  g_assert_nonnull (strstr (e1->message, "the default of option 'n' is invalid"));
  g_assert_false (tr_options_check_table (bad_name, &e2));
  g_assert_false (tr_options_check_table (no_choices, &e3));
  g_assert_false (tr_options_check_table (twice, &e4));
  g_assert_nonnull (strstr (e4->message, "declared twice"));
}

static void
test_suggest (void)
{
  const char *words[] = { "source", "destination", "if_exists", NULL };
  g_assert_cmpstr (tr_suggest ("destnation", words), ==, "destination");
  g_assert_cmpstr (tr_suggest ("sorce", words), ==, "source");
  g_assert_null (tr_suggest ("banana", words));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/options/defaults", test_defaults);
  g_test_add_func ("/options/values", test_values);
  g_test_add_func ("/options/bad-values", test_bad_values);
  g_test_add_func ("/options/table-checks", test_table_checks);
  g_test_add_func ("/options/suggest", test_suggest);
  return g_test_run ();
}
