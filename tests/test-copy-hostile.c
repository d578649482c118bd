/* test-copy-hostile.c — the copy plugin against a hostile world, through the taskrun
 * binary: a user racing to swap the destination's temporaries for symlinks or for files
 * of their own, a destination reached through a bind mount inside the source, sources
 * that shrink, are replaced, change type or turn into a FIFO while they are copied, user
 * files that look like temporaries, --dry-run, inherited ACLs, read-only folders as an
 * unprivileged user, a second Ctrl-C, and paths of megabytes.  Each case checks the
 * rules: no file at a final name that is not a complete copy of one version of its
 * source; no entry missing without an error naming it and exit 1; nothing outside the
 * destination touched; no hang. */
#include "copyutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- a racing attacker ------------------------------------------------------------ */

typedef enum {
  SWAP_FOR_SYMLINK, /* every new temporary is replaced by a symlink to `target` */
  SWAP_FOR_OWN_FILE, /* every new temporary is replaced by a new link to file `target` */
} SwapKind;

/* Forks a process that watches folder `dir` and swaps each temporary taskrun creates
 * there, as a user who may write in that folder could.  Stop it with stop_racer.
 *
 * To win the race whenever there is one, the racer runs at a real-time priority on CPU
 * 0, where pin_to_first_cpu puts taskrun too: the event of a temporary's creation wakes
 * it at once, before the process that made the temporary takes another step. */
static GPid
start_racer (const char *dir, SwapKind kind, const char *target)
{
  int ready[2];
  must (pipe (ready), "pipe");
  GPid pid = fork ();
  must (pid, "fork");
  if (pid == 0) {
    prctl (PR_SET_PDEATHSIG, SIGKILL); /* a test that aborts takes its racer along */
    cpu_set_t one;
    CPU_ZERO (&one);
    CPU_SET (0, &one);
    struct sched_param prio = { .sched_priority = 10 };
    if (sched_setaffinity (0, sizeof one, &one) == 0)
      sched_setscheduler (0, SCHED_FIFO, &prio); /* best effort: without it, a slower race */
    int in = inotify_init1 (IN_CLOEXEC);
    int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (in < 0 || dfd < 0 || inotify_add_watch (in, dir, IN_CREATE | IN_MOVED_TO) < 0)
      _exit (1);
    if (write (ready[1], "r", 1) != 1)
      _exit (1);
    char buf[64 * 1024] __attribute__ ((aligned (8)));
    for (guint n = 0;; ) {
      ssize_t len = read (in, buf, sizeof buf);
      if (len <= 0)
        _exit (0);
      for (char *at = buf; at < buf + len;) {
        struct inotify_event *e = (struct inotify_event *) at;
        at += sizeof *e + e->len;
        if (!e->len || strncmp (e->name, ".taskrun-", 9) != 0)
          continue;
        char mine[64];
        g_snprintf (mine, sizeof mine, "racer-%u", n++);
        int made = kind == SWAP_FOR_SYMLINK ? symlinkat (target, dfd, mine)
                                            : linkat (AT_FDCWD, target, dfd, mine, 0);
        if (made == 0 && renameat (dfd, mine, dfd, e->name) < 0)
          unlinkat (dfd, mine, 0);
      }
    }
  }
  close (ready[1]);
  char c;
  g_assert_cmpint (read (ready[0], &c, 1), ==, 1);
  close (ready[0]);
  return pid;
}

static void
stop_racer (GPid pid)
{
  kill (pid, SIGKILL);
  tt_wait_pid (pid, 10, NULL);
}

/* Runs the processes started from here on CPU 0 only (*saved: the set to go back to). */
static void
pin_to_first_cpu (cpu_set_t *saved)
{
  must (sched_getaffinity (0, sizeof *saved, saved), "sched_getaffinity");
  cpu_set_t one;
  CPU_ZERO (&one);
  CPU_SET (0, &one);
  must (sched_setaffinity (0, sizeof one, &one), "sched_setaffinity");
}

static void
unpin (const cpu_set_t *saved)
{
  must (sched_setaffinity (0, sizeof *saved, saved), "sched_setaffinity");
}

/* ---- helpers ---------------------------------------------------------------------- */

static gboolean
same_content (const char *a, const char *b)
{
  g_autofree char *x = NULL, *y = NULL;
  gsize lx, ly;
  return g_file_get_contents (a, &x, &lx, NULL) && g_file_get_contents (b, &y, &ly, NULL) &&
         lx == ly && memcmp (x, y, lx) == 0;
}

/* Starts taskrun on `job` with a job log, one worker, and waits until `rows` tasks have
 * ended, so the rest of a big file's chunks are still to run. */
static GPid
start_and_wait_rows (const char *top, const char *job, guint rows)
{
  g_autofree char *log = path_in (top, "log.tsv");
  const char *args[] = { "-c", job, "-j", "1", "--joblog", log, NULL };
  GPid pid = tt_spawn_taskrun (args, top, NULL);
  g_assert_true (tt_wait_lines (log, 1 + rows, 60));
  return pid;
}

/* A source folder with a big file "aa-big" (many 1 MiB chunks, copied and verified one
 * at a time) and 50 small files after it. */
static char *
big_then_small (const char *top, const char *extra)
{
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *big = path_in (src, "aa-big");
  write_file (big, 256 << 20, 7);
  for (int i = 0; i < 50; i++) {
    g_autofree char *f = g_strdup_printf ("%s/zz-%02d", src, i);
    write_file (f, 1000 + i, 100 + i);
  }
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *text = g_strdup_printf ("chunk_size = 1M\nverify = yes\n%s", extra ? extra : "");
  return copy_job (top, src, dst, text);
}

/* The number before `after_number` in copy's summary lines. */
static guint64
summary_number (const char *err, const char *after_number)
{
  const char *summary = g_strrstr (err, "special files copied\n");
  g_assert_nonnull (summary);
  while (summary > err && summary[-1] != '\n')
    summary--;
  const char *at = strstr (summary, after_number);
  g_assert_nonnull (at);
  while (at > err && g_ascii_isdigit (at[-1]))
    at--;
  return g_ascii_strtoull (at, NULL, 10);
}

/* ---- 1: metadata through descriptors ---------------------------------------------- */

/* As root, FIFOs are made under temporary names and given their
 * metadata; a racer swaps every temporary for a symlink to a canary outside the
 * destination.  The canary keeps its mode, owner, times and contents. */
static void
test_metadata_never_follows_swapped_temporary (void)
{
  if (geteuid () != 0) {
    g_test_skip ("the attack is on a copy run as root");
    return;
  }
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-race-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  for (int i = 0; i < 3000; i++) {
    g_autofree char *f = g_strdup_printf ("%s/fifo-%04d", src, i);
    must (mkfifo (f, 0777), f);
    must (chmod (f, 04777), f);
    must (chown (f, 1234, 1234), f);
  }
  g_autofree char *canary = path_in (top, "canary");
  write_file (canary, 100, 1);
  must (chmod (canary, 0600), canary);
  struct timespec t[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
  must (utimensat (AT_FDCWD, canary, t, 0), canary);
  struct stat before;
  must (stat (canary, &before), canary);
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  GPid racer = start_racer (dst, SWAP_FOR_SYMLINK, canary);
  cpu_set_t cpus;
  pin_to_first_cpu (&cpus);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  unpin (&cpus);
  stop_racer (racer);
  struct stat after;
  must (stat (canary, &after), canary);
  g_test_message ("exit %d", status);
  g_assert_cmpint (after.st_mode, ==, before.st_mode);
  g_assert_cmpint (after.st_uid, ==, before.st_uid);
  g_assert_cmpint (after.st_gid, ==, before.st_gid);
  g_assert_cmpint (after.st_mtim.tv_sec, ==, before.st_mtim.tv_sec);
  g_assert_cmpint (after.st_ctim.tv_sec * 1000000000L + after.st_ctim.tv_nsec, ==,
                   before.st_ctim.tv_sec * 1000000000L + before.st_ctim.tv_nsec);
  g_assert_cmpint (status, !=, 2);
  tt_rmtree (top);
}

/* ---- 2: the destination reached through a bind mount ----------------------------- */

static void
test_destination_inside_source_by_bind_mount (void)
{
  if (geteuid () != 0) {
    g_test_skip ("bind mounts need root");
    return;
  }
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *f = path_in (src, "file");
  write_file (f, 10, 1);
  g_autofree char *view = new_folder (top, "view");
  if (mount (src, view, NULL, MS_BIND, NULL) < 0) {
    g_test_skip ("cannot bind-mount here");
    tt_rmtree (top);
    return;
  }
  /* the destination, by its path, is not below the source; by its inode it is */
  g_autofree char *dst = path_in (view, "copy");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, top, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 60, top, &out, &err);
  gboolean made = g_file_test (dst, G_FILE_TEST_EXISTS);
  umount2 (view, MNT_DETACH);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 2);
  g_assert_nonnull (strstr (err, "inside 'source'"));
  g_assert_false (made);

  /* the other way round: the destination bind-mounted into the source is not walked */
  g_autofree char *dst2 = new_folder (top, "dst2");
  g_autofree char *inner = new_folder (src, "inner");
  must (mount (dst2, inner, NULL, MS_BIND, NULL), "mount");
  g_autofree char *job2 = copy_job (top, src, dst2, NULL);
  const char *args2[] = { "-c", job2, NULL };
  pid = tt_spawn_taskrun (args2, top, NULL);
  g_autofree char *out2 = NULL, *err2 = NULL;
  status = tt_wait_taskrun (pid, 60, top, &out2, &err2);
  umount2 (inner, MNT_DETACH);
  g_test_message ("%s", err2);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err2, "inner: it is the destination folder"));
  g_autofree char *copied = path_in (dst2, "file");
  g_assert_true (same_content (f, copied));
  tt_rmtree (top);
}

/* ---- 3: the sweep of leftovers ---------------------------------------------------- */

/* A source file and a user's own destination file with names like temporaries are
 * user data: the first is copied, the second kept. */
static void
test_sweep_keeps_files_named_like_temporaries (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *sub = new_folder (src, "sub");
  g_autofree char *a = path_in (src, ".taskrun-0123456789abcdef.tmp");
  write_file (a, 100, 1);
  g_autofree char *a2 = path_in (sub, ".taskrun-00000000deadbeef.tmp");
  write_file (a2, 100, 2);
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *mine = path_in (dst, ".taskrun-fedcba9876543210.tmp");
  write_file (mine, 50, 3);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  g_autofree char *a_copy = path_in (dst, ".taskrun-0123456789abcdef.tmp");
  g_autofree char *a2_copy = path_in (dst, "sub/.taskrun-00000000deadbeef.tmp");
  g_assert_true (same_content (a, a_copy));
  g_assert_true (same_content (a2, a2_copy));
  g_assert_true (g_file_test (mine, G_FILE_TEST_EXISTS));
  /* and a rerun keeps them all */
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_copy (job, &out2, &err2), ==, 0);
  g_assert_true (same_content (a, a_copy));
  g_assert_true (same_content (a2, a2_copy));
  g_assert_true (g_file_test (mine, G_FILE_TEST_EXISTS));
  tt_rmtree (top);
}

/* ---- 4: --dry-run ----------------------------------------------------------------- */

static char *
listing (const char *dir)
{
  const char *argv[] = { "find", dir, "-printf", "%p %s %m\n", NULL };
  char *out = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               NULL, NULL, NULL));
  return out;
}

static void
test_dry_run_writes_nothing (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *d = new_folder (src, "folder");
  g_autofree char *deep = new_folder (d, "deeper");
  g_autofree char *big = path_in (src, "big");
  write_file (big, 300000, 1); /* chunked: above the job's 64K */
  g_autofree char *small = path_in (deep, "small");
  write_file (small, 10, 2);
  /* a destination that does not exist stays so */
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  const char *args[] = { "-c", job, "--dry-run", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out, &err), ==, 0);
  g_assert_nonnull (strstr (out, "big"));
  g_assert_false (g_file_test (dst, G_FILE_TEST_EXISTS));
  /* one that does exists, with part of the tree, is left as it was */
  must (mkdir (dst, 0755), dst);
  g_autofree char *part = new_folder (dst, "folder");
  g_autofree char *before = listing (dst);
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (tt_run_taskrun (args, NULL, NULL, &out2, &err2), ==, 0);
  g_autofree char *after = listing (dst);
  g_assert_cmpstr (after, ==, before);
  tt_rmtree (top);
}

/* ---- 5, 9, 10: a big file that changes while its chunks are copied ------------- */

typedef enum { SHRINK, REPLACE, BECOME_FIFO } Change;

static void
test_big_file_changes (gconstpointer data)
{
  Change change = GPOINTER_TO_INT (data);
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-change-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *job = big_then_small (top, NULL);
  g_autofree char *big = path_in (top, "src/aa-big");
  g_autofree char *keep = path_in (top, "old-aa-big");
  must (link (big, keep), "link");
  g_autofree char *next = path_in (top, "aa-big.new");
  if (change == REPLACE)
    write_file (next, 256 << 20, 8); /* an editor's save: a new file renamed over the old */
  GPid pid = start_and_wait_rows (top, job, 3);
  if (change == SHRINK) {
    must (truncate (big, 1 << 20), big);
  } else if (change == REPLACE) {
    must (rename (next, big), "rename");
  } else {
    must (unlink (big), big);
    must (mkfifo (big, 0644), big);
  }
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 60, top, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  /* the file failed, named; nothing stopped the job */
  g_assert_nonnull (strstr (err, "aa-big"));
  g_assert_null (strstr (err, "stopping"));
  g_autofree char *copy = path_in (top, "dst/aa-big");
  g_assert_false (g_file_test (copy, G_FILE_TEST_EXISTS));
  for (int i = 0; i < 50; i++) {
    g_autofree char *s = g_strdup_printf ("%s/src/zz-%02d", top, i);
    g_autofree char *d = g_strdup_printf ("%s/dst/zz-%02d", top, i);
    g_assert_true (same_content (s, d));
  }
  g_autofree char *dst = path_in (top, "dst");
  g_assert_cmpuint (count_temps (dst), ==, 0);
  g_assert_cmpuint (summary_number (err, " failed"), ==, 1);
  tt_rmtree (top);
}

/* ---- 6: a file that became a folder ---------------------------------------------- */

static void
test_type_change_is_reported (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-type-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *job = big_then_small (top, NULL);
  GPid pid = start_and_wait_rows (top, job, 3);
  g_autofree char *f = path_in (top, "src/zz-07");
  must (unlink (f), f);
  must (mkdir (f, 0755), f);
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_wait_taskrun (pid, 60, top, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "zz-07: it was a file when the walk saw it and is now a folder"));
  g_assert_cmpuint (summary_number (err, " failed"), ==, 1);
  tt_rmtree (top);
}

/* ---- 8: xattrs are exactly the source's ------------------------------------------- */

/* The xattr form of a default ACL that gives user 1234 rwx: copies made in the folder
 * inherit an access ACL from it. */
static gboolean
set_default_acl (const char *path)
{
  struct { guint32 version; struct { guint16 tag, perm; guint32 id; } e[5]; } acl = {
    2, { { 0x01, 7, 0xffffffff }, { 0x02, 7, 1234 }, { 0x04, 5, 0xffffffff },
         { 0x10, 7, 0xffffffff }, { 0x20, 5, 0xffffffff } } };
  return setxattr (path, "system.posix_acl_default", &acl, sizeof acl, 0) == 0;
}

static void
test_inherited_acl_removed (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-acl-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *sub = new_folder (src, "sub");
  g_autofree char *f = path_in (src, "file");
  write_file (f, 10, 1);
  g_autofree char *big = path_in (src, "big");
  write_file (big, 200000, 2);
  g_autofree char *dst = new_folder (top, "dst");
  if (!set_default_acl (dst)) {
    g_test_skip ("no POSIX ACLs on this filesystem");
    tt_rmtree (top);
    return;
  }
  struct stat st;
  must (stat (dst, &st), dst);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  const char *names[] = { "file", "big", "sub" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *c = path_in (dst, names[i]);
    g_assert_cmpint (getxattr (c, "system.posix_acl_access", NULL, 0), <, 0);
    g_assert_cmpint (errno, ==, ENODATA);
  }
  g_autofree char *csub = path_in (dst, "sub");
  g_assert_cmpint (getxattr (csub, "system.posix_acl_default", NULL, 0), <, 0);
  g_autofree char *diff = oracle (src, dst);
  g_assert_cmpstr (diff, ==, "");
  tt_rmtree (top);
}

/* ---- 11: read-only folders, not as root ------------------------------------------- */

/* A copy made as a user into its own destination gives a read-only source folder its
 * mode at the end; a rerun (after new files appeared, or after an interrupted run) must
 * still be able to write in it, and end with the mode again. */
static void
test_read_only_folder_converges (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-ro-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  must (chmod (top, 0777), top);
  g_autofree char *src = path_in (top, "src");
  g_autofree char *ro = path_in (src, "ro");
  g_autofree char *f1 = path_in (ro, "one");
  g_autofree char *f2 = path_in (ro, "two");
  g_autofree char *dst = path_in (top, "dst");
  const char *const script =
    "set -e; mkdir -p \"$1/ro\"; echo one > \"$1/ro/one\"; chmod 0555 \"$1/ro\"";
  const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
                         script, "sh", src, NULL };
  const char *const *cmd = geteuid () == 0 ? argv : argv + 4;
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) cmd, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_autofree char *job = copy_job (top, src, dst, NULL);
  must (chmod (job, 0644), job);
  g_autofree char *out = NULL, *err = NULL;
  int first = run_copy_as_nobody (job, top, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (first, ==, 0);
  /* the source gains a file */
  must (chmod (ro, 0755), ro);
  write_file (f2, 20, 2);
  must (chmod (f2, 0644), f2);
  must (chmod (ro, 0555), ro);
  g_autofree char *out2 = NULL, *err2 = NULL;
  int again = run_copy_as_nobody (job, top, &out2, &err2);
  g_test_message ("%s", err2);
  g_assert_cmpint (again, ==, 0);
  g_autofree char *c2 = path_in (dst, "ro/two");
  g_assert_true (same_content (f2, c2));
  g_autofree char *cro = path_in (dst, "ro");
  struct stat st;
  must (stat (cro, &st), cro);
  g_assert_cmpint (st.st_mode & 07777, ==, 0555);
  (void) f1;
  must (chmod (ro, 0755), ro);
  must (chmod (cro, 0755), cro);
  tt_rmtree (top);
}

/* ---- 12: a second Ctrl-C --------------------------------------------------------- */

/* Workers killed by a second SIGINT in the middle of a file at the destination's top
 * leave a temporary there; the end of the job removes it. */
static void
test_second_interrupt_leaves_no_temporary (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-int-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  for (int i = 0; i < 4; i++) {
    g_autofree char *f = g_strdup_printf ("%s/file-%d", src, i);
    write_file (f, 200 << 20, i);
  }
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, "chunk_size = 1G\nverify = yes\n");
  const char *args[] = { "-c", job, NULL };
  GPid pid = tt_spawn_taskrun (args, top, NULL);
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (count_temps (dst) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (count_temps (dst), >, 0);
  kill (pid, SIGINT);
  g_usleep (20000);
  kill (pid, SIGINT);
  int status = tt_wait_taskrun (pid, 60, top, NULL, NULL);
  g_assert_cmpint (status, ==, 130);
  g_assert_cmpuint (count_temps (dst), ==, 0);
  tt_rmtree (top);
}

/* ---- 13: the counts add up ---------------------------------------------------------- */

/* A full destination stops the job; every entry of the source is still counted once:
 * copied + up to date + skipped + failed = entries. */
static void
test_counts_add_up_when_stopped (void)
{
  if (geteuid () != 0) {
    g_test_skip ("mounting a small tmpfs needs root");
    return;
  }
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *mnt = new_folder (top, "small");
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
    g_test_skip ("cannot mount a tmpfs here");
    tt_rmtree (top);
    return;
  }
  g_autofree char *src = g_strdup ("/dev/shm/taskrun-count-XXXXXX");
  g_assert_nonnull (g_mkdtemp (src));
  const guint files = 3000;
  for (guint i = 0; i < files; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%04u", src, i);
    write_file (f, 2000, i);
  }
  g_autofree char *dst = path_in (mnt, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  umount2 (mnt, MNT_DETACH); /* before asserting: a failed test must not leave it mounted */
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  guint64 copied = summary_number (err, " files (");
  guint64 uptodate = summary_number (err, " up to date");
  guint64 skipped = summary_number (err, " skipped,");
  guint64 failed = summary_number (err, " failed");
  g_assert_cmpuint (copied, <, files);
  g_assert_cmpuint (copied + uptodate + skipped + failed, ==, files);
  tt_rmtree (src);
  tt_rmtree (top);
}

/* ---- 13a: a big file's temporary swapped for the user's own file ------------------ */

/* A user who may write in a destination folder renames a file of their own over each
 * temporary as it appears: taskrun must not write the source into it (the user could
 * read it), nor give it a final name. */
static void
test_swapped_temporary_is_not_written (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-swap-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *a = path_in (src, "a-big");
  write_file (a, 24 << 20, 1);
  g_autofree char *b = path_in (src, "b-big");
  write_file (b, 24 << 20, 2);
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *own = path_in (top, "users-file");
  write_file (own, 8 << 20, 3);
  g_autofree char *own_before = NULL;
  gsize own_len;
  g_assert_true (g_file_get_contents (own, &own_before, &own_len, NULL));
  g_autofree char *job = copy_job (top, src, dst, "chunk_size = 1M\n");
  GPid racer = start_racer (dst, SWAP_FOR_OWN_FILE, own);
  cpu_set_t cpus;
  pin_to_first_cpu (&cpus);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  unpin (&cpus);
  stop_racer (racer);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_autofree char *own_after = NULL;
  gsize after_len;
  g_assert_true (g_file_get_contents (own, &own_after, &after_len, NULL));
  g_assert_cmpuint (after_len, ==, own_len);
  g_assert_true (memcmp (own_after, own_before, own_len) == 0);
  const char *names[] = { "a-big", "b-big" };
  for (int i = 0; i < 2; i++) {
    g_autofree char *s = path_in (src, names[i]);
    g_autofree char *d = path_in (dst, names[i]);
    g_assert_true (!g_file_test (d, G_FILE_TEST_EXISTS) || same_content (s, d));
  }
  tt_rmtree (top);
}

/* ---- 13b, 13c: paths of megabytes -------------------------------------------------- */

/* 300 files with 255-byte names at the bottom of 1,100 folders of 255-byte names: a
 * path of 280 KiB each; no task's payload may grow past what a frame carries. */
static void
test_deep_long_names (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-deep-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  char name[256];
  memset (name, 'n', 255);
  name[255] = '\0';
  int fd = open (src, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 1100; i++) {
    must (mkdirat (fd, name, 0755), "mkdirat");
    int next = openat (fd, name, O_RDONLY | O_DIRECTORY);
    must (next, "openat");
    close (fd);
    fd = next;
  }
  for (int i = 0; i < 300; i++) {
    g_snprintf (name, sizeof name, "%0250d", i);
    int f = openat (fd, name, O_WRONLY | O_CREAT, 0644);
    must (f, "create");
    must (write (f, "x", 1), "write");
    close (f);
  }
  close (fd);
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (summary_number (err, " files ("), ==, 300);
  g_assert_cmpuint (summary_number (err, " folders"), ==, 1100);
  tt_rmtree (top); /* rm -rf: any depth */
}

/* ---- 13d: device nodes, not as root ------------------------------------------------- */

static void
test_device_node_as_user_is_reported (void)
{
  if (geteuid () != 0) {
    g_test_skip ("making the source's device node needs root");
    return;
  }
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-dev-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  must (chmod (top, 0777), top);
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *node = path_in (src, "null");
  must (mknod (node, S_IFCHR | 0666, makedev (1, 3)), node);
  g_autofree char *f = path_in (src, "file");
  write_file (f, 10, 1);
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  must (chmod (job, 0644), job);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy_as_nobody (job, top, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "null: mknod (only root can make device nodes)"));
  g_autofree char *copied = path_in (dst, "file");
  g_assert_true (same_content (f, copied));
  tt_rmtree (top);
}

/* ---- 13e: names in messages ---------------------------------------------------------- */

/* A name with a newline and a byte that is not UTF-8 shows escaped, on one line, in the
 * task's failure and in copy's own message about the file. */
static void
test_odd_names_escaped_in_messages (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-names-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  must (chmod (top, 0777), top);
  g_autofree char *src = new_folder (top, "src");
  must (chmod (src, 0777), src);
  g_autofree char *odd = path_in (src, "new\nline\xff-big");
  write_file (odd, 200000, 1); /* chunked: its end is copy's own message */
  must (chmod (odd, 0), odd);
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  must (chmod (job, 0644), job);
  g_autofree char *out = NULL, *err = NULL;
  int status;
  if (geteuid () == 0) {
    status = run_copy_as_nobody (job, top, &out, &err);
  } else {
    status = run_copy (job, &out, &err);
  }
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "taskrun: copy: new\\nline\\xff-big: not copied"));
  g_assert_nonnull (strstr (err, "(new\\nline\\xff-big [0, 65536)) failed"));
  g_assert_null (strstr (err, "\xff"));
  g_assert_null (strstr (err, "new\nline"));
  must (chmod (odd, 0644), odd);
  tt_rmtree (top);
}

/* ---- the roots and folders reached again by name -------------------------------- */

/* Forks a process that waits until `appears` exists, then renames `target` to
 * `target`.real and puts `replacement` (a symlink's target if `as_symlink`, else a new
 * folder of that name) in its place: a user who owns the destination in a sticky /tmp,
 * or who may write in a folder of the copy, can do this between the walk and a worker. */
/* Renames `target` aside once `appears` exists, and puts a symlink to `replacement`, or
 * (as_symlink FALSE) a folder of its own, in its place: run as root, it does so as
 * another user (nobody), the attacker a folder writable by others lets in. */
static GPid
start_swapper (const char *appears, const char *target, const char *replacement, gboolean as_symlink)
{
  GPid pid = fork ();
  must (pid, "fork");
  if (pid == 0) {
    if (!as_symlink && geteuid () == 0 &&
        (setgroups (0, NULL) != 0 || setresgid (65534, 65534, 65534) != 0 ||
         setresuid (65534, 65534, 65534) != 0))
      _exit (1);
    for (int i = 0; i < 2000000 && access (appears, F_OK) != 0; i++)
      g_usleep (10);
    g_autofree char *aside = g_strconcat (target, ".real", NULL);
    if (rename (target, aside) != 0)
      _exit (1);
    if (as_symlink ? symlink (replacement, target) : mkdir (target, 0777))
      _exit (1);
    _exit (0);
  }
  return pid;
}

/* Many folders first, so that the workers' first task comes well after the walk made
 * the destination; then files. */
static void
folders_then_files (const char *src, const char *sub, guint folders)
{
  g_autofree char *many = path_in (src, sub);
  must (g_mkdir_with_parents (many, 0755), many);
  int fd = open (many, O_RDONLY | O_DIRECTORY);
  for (guint i = 0; i < folders; i++) {
    char name[16];
    g_snprintf (name, sizeof name, "%u", i);
    must (mkdirat (fd, name, 0755), "mkdirat");
  }
  close (fd);
}

static void
test_destination_root_swapped (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-rootswap-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  folders_then_files (src, "a", 20000);
  for (int i = 0; i < 20; i++) {
    g_autofree char *f = g_strdup_printf ("%s/z%02d", src, i);
    write_file (f, 100, i);
  }
  g_autofree char *victim = new_folder (top, "victim");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *appears = path_in (dst, "a");
  GPid swapper = start_swapper (appears, dst, victim, TRUE);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_assert_cmpint (tt_wait_pid (swapper, 30, NULL), ==, 0);
  g_autoptr (GDir) d = g_dir_open (victim, 0, NULL);
  g_assert_nonnull (d);
  g_assert_null (g_dir_read_name (d)); /* nothing written outside the destination */
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "is no longer the folder the job started with"));
  tt_rmtree (top);
}

static void
test_destination_folder_swapped (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-dirswap-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  must (chmod (top, 0755), top); /* the swapper, another user, reaches dst/pub */
  g_autofree char *src = new_folder (top, "src");
  folders_then_files (src, "pub/secret/0many", 20000);
  g_autofree char *key = path_in (src, "pub/secret/key");
  write_file (key, 100, 1);
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *pub = new_folder (dst, "pub");
  must (chmod (pub, 0777), pub); /* a folder others may write in */
  g_autofree char *secret = path_in (pub, "secret");
  GPid swapper = start_swapper (secret, secret, NULL, FALSE);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_assert_cmpint (tt_wait_pid (swapper, 30, NULL), ==, 0);
  g_autofree char *planted = path_in (secret, "key");
  g_assert_false (g_file_test (planted, G_FILE_TEST_EXISTS)); /* not written in the user's */
  g_assert_cmpint (status, ==, 1);
  /* whether the swap came as the walk made the folder or after */
  g_assert_true (strstr (err, "its folder was replaced by another since the walk made it") ||
                 strstr (err, "it was replaced by another as the walk made it"));
  tt_rmtree (top);
}

/* A hard link's later name is never linked to what merely sits at its first name. */
static void
test_hard_link_only_to_this_runs_copy (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *a = new_folder (src, "a");
  g_autofree char *b = new_folder (src, "b");
  g_autofree char *first = path_in (a, "zz");
  g_autofree char *second = path_in (b, "zz");
  write_file (first, 100, 1);
  must (link (first, second), "link");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *da = new_folder (dst, "a");
  g_autofree char *old = path_in (da, "zz");
  write_file (old, 33, 2); /* kept by if_exists = skip */
  g_autofree char *job = copy_job (top, src, dst, "if_exists = skip\n");
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "hard link b/zz -> a/zz: its first name in the destination is not "
                                 "this run's copy of it"));
  g_autofree char *db = path_in (dst, "b/zz");
  g_assert_false (g_file_test (db, G_FILE_TEST_EXISTS));
  tt_rmtree (top);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/copy-hostile/metadata-never-follows-swapped-temporary",
                   test_metadata_never_follows_swapped_temporary);
  g_test_add_func ("/copy-hostile/destination-inside-source-by-bind-mount",
                   test_destination_inside_source_by_bind_mount);
  g_test_add_func ("/copy-hostile/sweep-keeps-files-named-like-temporaries",
                   test_sweep_keeps_files_named_like_temporaries);
  g_test_add_func ("/copy-hostile/dry-run-writes-nothing", test_dry_run_writes_nothing);
  g_test_add_data_func ("/copy-hostile/big-file-shrinks", GINT_TO_POINTER (SHRINK),
                        test_big_file_changes);
  g_test_add_data_func ("/copy-hostile/big-file-replaced", GINT_TO_POINTER (REPLACE),
                        test_big_file_changes);
  g_test_add_data_func ("/copy-hostile/big-file-becomes-fifo", GINT_TO_POINTER (BECOME_FIFO),
                        test_big_file_changes);
  g_test_add_func ("/copy-hostile/type-change-is-reported", test_type_change_is_reported);
  g_test_add_func ("/copy-hostile/inherited-acl-removed", test_inherited_acl_removed);
  g_test_add_func ("/copy-hostile/read-only-folder-converges", test_read_only_folder_converges);
  g_test_add_func ("/copy-hostile/second-interrupt-leaves-no-temporary",
                   test_second_interrupt_leaves_no_temporary);
  g_test_add_func ("/copy-hostile/counts-add-up-when-stopped", test_counts_add_up_when_stopped);
  g_test_add_func ("/copy-hostile/swapped-temporary-is-not-written",
                   test_swapped_temporary_is_not_written);
  g_test_add_func ("/copy-hostile/deep-long-names", test_deep_long_names);
  g_test_add_func ("/copy-hostile/device-node-as-user-is-reported",
                   test_device_node_as_user_is_reported);
  g_test_add_func ("/copy-hostile/odd-names-escaped-in-messages", test_odd_names_escaped_in_messages);
  g_test_add_func ("/copy-hostile/destination-root-swapped", test_destination_root_swapped);
  g_test_add_func ("/copy-hostile/destination-folder-swapped", test_destination_folder_swapped);
  g_test_add_func ("/copy-hostile/hard-link-only-to-this-runs-copy",
                   test_hard_link_only_to_this_runs_copy);
  int status = g_test_run ();
  copyutil_cleanup ();
  return status;
}
