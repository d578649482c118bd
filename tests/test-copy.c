/* test-copy.c — the copy plugin through the taskrun binary.  A tree with every hard case
 * (odd bytes in names, the longest names, a path deeper than PATH_MAX, symlinks of every
 * kind, hard links, a FIFO, a device node, sparse and chunked files, modes, owners,
 * times to the nanosecond, xattrs and an ACL) is copied tmpfs to tmpfs and tmpfs to
 * disk, and `rsync -aHAXn --checksum --itemize-changes` must then print nothing; a rerun
 * changes nothing.  Also: kill -9 at random moments never leaves a wrong file at a final
 * name, and a rerun completes the copy without leftovers; the destination is never
 * emptied, never followed through a symlink, never inside the source; unreadable files
 * fail alone; a full disk stops the job.  The oracle also runs with the MPI backend. */
#include "copyutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static void
set_times (const char *path, time_t sec, long nsec)
{
  struct timespec t[2] = { { sec - 1000, 123456789 }, { sec, nsec } };
  must (utimensat (AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), path);
}

/* A minimal POSIX ACL in its xattr form: user::rw- user:1234:r-- group::r-- mask::r-- other::--- */
static void
set_acl (const char *path)
{
  struct { guint32 version; struct { guint16 tag, perm; guint32 id; } e[5]; } acl = {
    2, { { 0x01, 6, 0xffffffff }, { 0x02, 4, 1234 }, { 0x04, 4, 0xffffffff },
         { 0x10, 4, 0xffffffff }, { 0x20, 0, 0xffffffff } } };
  must (setxattr (path, "system.posix_acl_access", &acl, sizeof acl, 0), "setxattr acl");
}

/* Builds the hard-case tree under root (which exists). */
static void
build_tree (const char *root)
{
  const gboolean root_user = geteuid () == 0;
  g_autofree char *d = new_folder (root, "dir");
  g_autofree char *sub = path_in (root, "dir/sub");
  must (mkdir (sub, 0700), sub);
  g_autofree char *empty = path_in (root, "empty-dir");
  must (mkdir (empty, 0750), empty);

  g_autofree char *f0 = path_in (root, "empty-file");
  write_file (f0, 0, 1);
  g_autofree char *f1 = path_in (root, "dir/small.bin");
  write_file (f1, 1000, 2);
  g_autofree char *f2 = path_in (root, "dir/sub/medium.bin");
  write_file (f2, 300000, 3); /* above the test's chunk_size: copied in chunks */
  chmod (f2, 0640);
  g_autofree char *f3 = path_in (root, "exec.sh");
  g_assert_true (g_file_set_contents (f3, "#!/bin/sh\necho hi\n", -1, NULL));
  chmod (f3, 0755);

  /* sparse: 4 MiB with data at 0, 1 MiB and the very end */
  g_autofree char *sp = path_in (root, "sparse.img");
  int fd = open (sp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  must (fd, sp);
  must (pwrite (fd, "head", 4, 0) == 4 ? 0 : -1, "pwrite");
  must (pwrite (fd, "middle", 6, 1 << 20) == 6 ? 0 : -1, "pwrite");
  must (pwrite (fd, "tail", 4, (4 << 20) - 4) == 4 ? 0 : -1, "pwrite");
  close (fd);

  /* names: any bytes that are legal, the longest, leading dash, spaces, tabs, newline */
  static const char *const odd[] = { "caf\xc3\xa9 \xe2\x98\x95", "\xff\xfe not utf-8", "-leading dash",
                                     "tab\there", "new\nline", " spaces ", "#hash;semi=eq", NULL };
  for (int i = 0; odd[i]; i++) {
    g_autofree char *f = path_in (d, odd[i]);
    write_file (f, 10 + i, 10 + i);
  }
  char longest[256];
  memset (longest, 'L', 255);
  longest[255] = '\0';
  g_autofree char *lf = path_in (d, longest);
  write_file (lf, 77, 20);

  /* deep: 18 levels of 200-byte names (3.6 KB of path; rsync, the oracle, stops at
   * PATH_MAX, so deeper trees have their own test) */
  char comp[201];
  memset (comp, 'd', 200);
  comp[200] = '\0';
  int dirfd = open (root, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 18; i++) {
    comp[0] = (char) ('a' + i);
    must (mkdirat (dirfd, comp, 0755), "mkdirat deep");
    int next = openat (dirfd, comp, O_RDONLY | O_DIRECTORY);
    close (dirfd);
    dirfd = next;
  }
  int df = openat (dirfd, "bottom.txt", O_WRONLY | O_CREAT, 0644);
  must (write (df, "deep", 4) == 4 ? 0 : -1, "write deep");
  close (df);
  close (dirfd);

  /* symlinks: relative, absolute, dangling, to a folder, in a subfolder */
  g_autofree char *s1 = path_in (root, "link-rel");
  must (symlink ("dir/small.bin", s1), s1);
  g_autofree char *s2 = path_in (root, "link-abs");
  must (symlink ("/etc/hostname", s2), s2);
  g_autofree char *s3 = path_in (root, "link-dangling");
  must (symlink ("no/such/target", s3), s3);
  g_autofree char *s4 = path_in (root, "link-dir");
  must (symlink ("dir", s4), s4);
  g_autofree char *s5 = path_in (root, "dir/sub/up");
  must (symlink ("../../exec.sh", s5), s5);
  set_times (s5, 1500000000, 5);

  /* hard links: three names, two folders */
  g_autofree char *h2 = path_in (root, "dir/hard-2");
  must (link (f1, h2), h2);
  g_autofree char *h3 = path_in (root, "hard-3");
  must (link (f1, h3), h3);
  /* and a hard-linked chunked file */
  g_autofree char *h4 = path_in (root, "medium-link");
  must (link (f2, h4), h4);

  /* a FIFO and, as root, a device node; a symlink and the FIFO with a second name */
  g_autofree char *fifo = path_in (root, "dir/fifo");
  must (mkfifo (fifo, 0620), fifo);
  g_autofree char *fifo2 = path_in (root, "fifo-2");
  must (linkat (AT_FDCWD, fifo, AT_FDCWD, fifo2, 0), fifo2);
  g_autofree char *s1b = path_in (root, "dir/link-rel-2");
  must (linkat (AT_FDCWD, s1, AT_FDCWD, s1b, 0), s1b);
  if (root_user) {
    g_autofree char *dev = path_in (root, "dir/null-dev");
    must (mknod (dev, S_IFCHR | 0666, makedev (1, 3)), dev);
  }

  /* metadata: xattrs, an ACL, owners, special mode bits, times in nanoseconds */
  must (setxattr (f1, "user.colour", "blue", 4, 0), "setxattr");
  must (setxattr (d, "user.kind", "folder", 6, 0), "setxattr dir");
  set_acl (f3);
  if (root_user) {
    must (chown (f2, 1234, 5678), "chown");
    must (lchown (s1, 4321, 8765), "lchown");
    g_autofree char *suid = path_in (root, "suid");
    write_file (suid, 5, 30);
    must (chown (suid, 1000, 1000), "chown suid");
    must (chmod (suid, 04755), "chmod suid");
  }
  g_autofree char *sticky = path_in (root, "sticky");
  must (mkdir (sticky, 01777), sticky);
  chmod (sticky, 01777);
  /* a read-only folder with a file in it */
  g_autofree char *ro = path_in (root, "read-only");
  must (mkdir (ro, 0755), ro);
  g_autofree char *rof = path_in (root, "read-only/inside");
  write_file (rof, 33, 31);
  chmod (ro, 0555);

  set_times (f0, 1234567890, 111111111);
  set_times (f1, 1400000000, 999999999);
  set_times (sub, 1300000000, 7);
  set_times (d, 1200000000, 8);
  set_times (ro, 1100000000, 9);
}

static void
test_oracle (gconstpointer data)
{
  const char *dst_base = data; /* NULL: tmpfs; else a disk folder */
  g_autofree char *src_top = g_strdup ("/dev/shm/taskrun-copy-src-XXXXXX"); /* tmpfs */
  g_assert_nonnull (g_mkdtemp (src_top));
  g_autofree char *dst_top = g_strdup_printf ("%s/taskrun-copy-dst-XXXXXX", dst_base ? dst_base : "/dev/shm");
  g_assert_nonnull (g_mkdtemp (dst_top));
  g_autofree char *src = new_folder (src_top, "tree");
  g_autofree char *dst = path_in (dst_top, "copy");
  build_tree (src);

  g_autofree char *job = copy_job (dst_top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_autofree char *diff = oracle (src, dst);
  if (*diff)
    g_error ("rsync found differences:\n%s", diff);

  /* sparse stays sparse: 4 MiB apparent, a few blocks allocated */
  g_autofree char *sp = path_in (dst, "sparse.img");
  struct stat st;
  must (stat (sp, &st), sp);
  g_assert_cmpint (st.st_size, ==, 4 << 20);
  g_assert_cmpint (st.st_blocks * 512, <, 1 << 20);
  /* hard links kept */
  g_autofree char *a = path_in (dst, "dir/small.bin");
  g_autofree char *b = path_in (dst, "hard-3");
  struct stat sa, sb;
  must (stat (a, &sa), a);
  must (stat (b, &sb), b);
  g_assert_cmpuint (sa.st_ino, ==, sb.st_ino);
  g_assert_cmpuint (sa.st_nlink, ==, 3);
  g_assert_cmpuint (count_temps (dst), ==, 0);

  /* a rerun changes nothing */
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_copy (job, &out2, &err2), ==, 0);
  g_assert_nonnull (strstr (err2, "0 files (0 bytes"));
  g_autofree char *diff2 = oracle (src, dst);
  g_assert_cmpstr (diff2, ==, "");

  g_autofree char *ro_src = path_in (src, "read-only");
  g_autofree char *ro_dst = path_in (dst, "read-only");
  chmod (ro_src, 0755);
  chmod (ro_dst, 0755);
  tt_rmtree (src_top);
  tt_rmtree (dst_top);
}

/* The same tree and oracle with the MPI backend: rank 0 walks, ranks 1 and 2 copy
 * (chunks of the big file included) into a destination that all ranks see. */
static void
test_oracle_mpi (void)
{
  if (!tt_have_mpi ()) {
    g_test_skip ("no MPI backend in this build, or no mpirun on PATH");
    return;
  }
  tt_use_mpirun (3); /* copy_job's workers = 2: the ranks after rank 0 */
  test_oracle (NULL);
  tt_use_mpirun (0);
}

/* Builds a tree of many small files and a few chunked ones, for the kill tests. */
static void
build_bulk (const char *root)
{
  for (int i = 0; i < 20; i++) {
    g_autofree char *dir = g_strdup_printf ("%s/d%02d", root, i);
    must (mkdir (dir, 0755), dir);
    for (int j = 0; j < 50; j++) {
      g_autofree char *f = g_strdup_printf ("%s/f%03d", dir, j);
      write_file (f, 100 + (i * 50 + j) * 37 % 16000, i * 100 + j);
    }
  }
  for (int i = 0; i < 3; i++) {
    g_autofree char *f = g_strdup_printf ("%s/big%d.bin", root, i);
    write_file (f, (gsize) (24 << 20) + i, 1000 + i);
  }
}

/* Every file at a final name in dst is identical to its source.  Returns how many. */
static guint
check_no_partial (const char *src, const char *dst)
{
  if (!g_file_test (dst, G_FILE_TEST_IS_DIR))
    return 0; /* killed before it made the destination */
  const char *argv[] = { "find", dst, "-type", "f", "!", "-name", ".taskrun-*.tmp", NULL };
  g_autofree char *out = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               NULL, NULL, NULL));
  g_auto (GStrv) files = g_strsplit (out, "\n", -1);
  guint checked = 0;
  for (int i = 0; files[i]; i++) {
    if (!*files[i])
      continue;
    checked++;
    g_autofree char *rel = g_strdup (files[i] + strlen (dst));
    g_autofree char *s = g_strconcat (src, rel, NULL);
    g_autofree char *a = NULL, *b = NULL;
    gsize la, lb;
    g_assert_true (g_file_get_contents (s, &a, &la, NULL));
    g_assert_true (g_file_get_contents (files[i], &b, &lb, NULL));
    if (la != lb || memcmp (a, b, la) != 0)
      g_error ("%s is at its final name but differs from its source", files[i]);
  }
  return checked;
}

/* Files at a final name under dir (none while it does not exist), counted in this
 * process: polled in a tight loop, a child `find` per look would be too slow. */
static guint
count_finals (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  if (!d)
    return 0;
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name (d))) {
    g_autofree char *path = g_build_filename (dir, name, NULL);
    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      n += count_finals (path);
    else if (!(g_str_has_prefix (name, ".taskrun-") && g_str_has_suffix (name, ".tmp")))
      n++;
  }
  return n;
}

static void
test_kill_and_rerun (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-kill-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = path_in (top, "dst");
  build_bulk (src);
  g_autofree char *job = copy_job (top, src, dst, "chunk_size = 1M\n");
  const char *args[] = { "-c", job, NULL };
  const guint total = 20 * 50 + 3;
  /* The first run is killed as soon as a file is complete, so that at least one kill
   * lands in the middle of the copy whatever the machine's speed; the others after a
   * delay from the start. */
  static const int delays_ms[] = { -1, 5, 20, 40, 80, 150 };
  for (gsize i = 0; i < G_N_ELEMENTS (delays_ms); i++) {
    GPid pid = tt_spawn_taskrun (args, top, NULL);
    if (delays_ms[i] < 0) {
      gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
      while (count_finals (dst) == 0 && g_get_monotonic_time () < deadline)
        g_usleep (200);
    } else {
      g_usleep (delays_ms[i] * 1000);
    }
    g_autoptr (GArray) kids = tt_children (pid);
    kill (pid, SIGKILL);
    tt_wait_taskrun (pid, 10, top, NULL, NULL);
    g_assert_cmpuint (tt_wait_gone (kids, 2), ==, 0);
    guint checked = check_no_partial (src, dst);
    g_test_message ("kill %zu: %u of %u files at their final names", i, checked, total);
    if (delays_ms[i] < 0) {
      g_assert_cmpuint (checked, >, 0);
      g_assert_cmpuint (checked, <, total); /* the kill did land mid-copy */
    }
  }
  g_autofree char *out = NULL, *err = NULL;
  int status = tt_run_taskrun (args, NULL, NULL, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
  g_autofree char *diff = oracle (src, dst);
  g_assert_cmpstr (diff, ==, "");
  g_assert_cmpuint (count_temps (dst), ==, 0);
  tt_rmtree (top);
}

/* Deeper than PATH_MAX: 30 levels of 200-byte names (6 KB of path). */
static void
test_deeper_than_path_max (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-deep-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = path_in (top, "dst");
  char comp[201];
  memset (comp, 'x', 200);
  comp[200] = '\0';
  int fd = open (src, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 30; i++) {
    must (mkdirat (fd, comp, 0755), "mkdirat");
    int next = openat (fd, comp, O_RDONLY | O_DIRECTORY);
    close (fd);
    fd = next;
  }
  int f = openat (fd, "bottom", O_WRONLY | O_CREAT, 0600);
  must (write (f, "deepest", 7) == 7 ? 0 : -1, "write");
  close (f);
  close (fd);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  fd = open (dst, O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 30; i++) {
    int next = openat (fd, comp, O_RDONLY | O_DIRECTORY);
    must (next, "openat copy");
    close (fd);
    fd = next;
  }
  char buf[16] = { 0 };
  f = openat (fd, "bottom", O_RDONLY);
  must (f, "open bottom");
  g_assert_cmpint (read (f, buf, sizeof buf), ==, 7);
  g_assert_cmpstr (buf, ==, "deepest");
  struct stat st;
  must (fstat (f, &st), "fstat");
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  close (f);
  close (fd);
  tt_rmtree (top);
}

static void
test_refuses_itself (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  static const char *const dsts[] = { "src", "src/inner", "src/./inner/../deeper", NULL };
  for (int i = 0; dsts[i]; i++) {
    g_autofree char *dst = path_in (top, dsts[i]);
    g_autofree char *job = copy_job (top, src, dst, NULL);
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run_copy (job, &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, "the copy would copy itself"));
  }
  /* through a symlink too */
  g_autofree char *alias = path_in (top, "alias");
  must (symlink ("src", alias), alias);
  g_autofree char *dst = path_in (top, "alias/x");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "inside"));
  tt_rmtree (top);
}

static void
test_never_deletes_never_follows (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *outside = new_folder (top, "outside");
  g_autofree char *ssub = new_folder (src, "sub");
  g_autofree char *sf = path_in (src, "sub/file");
  write_file (sf, 10, 1);
  g_autofree char *sa = path_in (src, "a");
  write_file (sa, 10, 2);
  /* the destination has an extra file, and "sub" is a symlink to a folder outside */
  g_autofree char *extra = path_in (dst, "extra");
  write_file (extra, 5, 3);
  g_autofree char *dsub = path_in (dst, "sub");
  must (symlink (outside, dsub), dsub);
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "destination folder sub: Not a directory"));
  g_assert_true (g_file_test (extra, G_FILE_TEST_EXISTS));      /* not deleted */
  g_autofree char *leak = path_in (outside, "file");
  g_assert_false (g_file_test (leak, G_FILE_TEST_EXISTS));      /* not written through */
  g_autofree char *da = path_in (dst, "a");
  g_assert_true (g_file_test (da, G_FILE_TEST_IS_REGULAR));     /* the rest went on */
  tt_rmtree (top);
}

static void
test_if_exists (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *sa = path_in (src, "a");
  write_file (sa, 100, 1);
  g_autofree char *da = path_in (dst, "a");
  g_assert_true (g_file_set_contents (da, "old", 3, NULL));
  static const struct { const char *mode; int status; const char *content; } cases[] = {
    { "skip", 0, "old" }, { "error", 1, "old" }, { "update", 0, NULL }, { "overwrite", 0, NULL },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    if (!cases[i].content)
      g_assert_true (g_file_set_contents (da, "old", 3, NULL));
    g_autofree char *extra = g_strdup_printf ("if_exists = %s\n", cases[i].mode);
    g_autofree char *job = copy_job (top, src, dst, extra);
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run_copy (job, &out, &err), ==, cases[i].status);
    g_autofree char *got = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (da, &got, &len, NULL));
    if (cases[i].content)
      g_assert_cmpstr (got, ==, cases[i].content);
    else
      g_assert_cmpuint (len, ==, 100);
    if (cases[i].status == 1)
      g_assert_nonnull (strstr (err, "a: File exists (if_exists = error)"));
  }
  tt_rmtree (top);
}

/* if_exists = update compares a symlink's target, not only its length and time: a link
 * to "yy" with the source link's mtime is still replaced by the link to "xx". */
static void
test_update_symlink_target (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *sl = path_in (src, "l");
  g_autofree char *dl = path_in (dst, "l");
  must (symlink ("xx", sl), sl);
  must (symlink ("yy", dl), dl);
  struct stat st;
  must (lstat (sl, &st), sl);
  struct timespec times[2] = { st.st_atim, st.st_mtim };
  must (utimensat (AT_FDCWD, dl, times, AT_SYMLINK_NOFOLLOW), dl);
  g_autofree char *job = copy_job (top, src, dst, "if_exists = update\n");
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  g_autofree char *target = g_file_read_link (dl, NULL);
  g_assert_cmpstr (target, ==, "xx");
  tt_rmtree (top);
}

/* As an unprivileged user, an unreadable file fails alone, named with its errno text. */
static void
test_unreadable_file (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-unreadable-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  chmod (top, 0777);
  g_autofree char *src = path_in (top, "src");
  must (mkdir (src, 0777), src);
  for (int i = 0; i < 5; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%d", src, i);
    write_file (f, 100, i);
    chmod (f, i == 2 ? 0000 : 0644);
  }
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  chmod (job, 0644);
  g_autofree char *out = NULL, *err = NULL;
  int status;
  status = run_copy_as_nobody (job, top, &out, &err);
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "f2: open: Permission denied"));
  g_assert_nonnull (strstr (err, "4 files ("));
  for (int i = 0; i < 5; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%d", dst, i);
    g_assert_true (g_file_test (f, G_FILE_TEST_EXISTS) == (i != 2));
  }
  g_assert_cmpuint (count_temps (dst), ==, 0);
  tt_rmtree (top);
}

/* A full destination stops the job: no new tasks, exit 1, no temporaries left. */
static void
test_disk_full (void)
{
  if (geteuid () != 0) {
    g_test_skip ("mounting a small tmpfs needs root");
    return;
  }
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *mnt = new_folder (top, "small");
  if (mount ("tmpfs", mnt, "tmpfs", 0, "size=2m") < 0) {
    g_test_skip ("cannot mount a tmpfs here");
    tt_rmtree (top);
    return;
  }
  g_autofree char *src = g_strdup ("/dev/shm/taskrun-full-XXXXXX");
  g_assert_nonnull (g_mkdtemp (src));
  for (int i = 0; i < 40; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%02d", src, i);
    write_file (f, 200000, i);
  }
  g_autofree char *dst = path_in (mnt, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  guint temps = count_temps (dst);
  umount2 (mnt, MNT_DETACH); /* before asserting: a failed test must not leave the tmpfs mounted */
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "No space left on device"));
  g_assert_nonnull (strstr (err, "stopping: the destination failed"));
  g_assert_cmpuint (temps, ==, 0);
  tt_rmtree (src);
  tt_rmtree (top);
}

/* A socket is made again with mknod, as cp -a and rsync -a do; it is not skipped. */
static void
test_socket_copied (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *sock = path_in (src, "sock");
  const char *argv[] = { "python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
                         sock, NULL };
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               &status, NULL));
  g_autofree char *f = path_in (src, "file");
  write_file (f, 10, 1);
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  g_assert_nonnull (strstr (err, "1 special files copied"));
  g_assert_nonnull (strstr (err, "0 skipped"));
  g_autofree char *copied = path_in (dst, "sock");
  struct stat st;
  must (lstat (copied, &st), copied);
  g_assert_true (S_ISSOCK (st.st_mode));
  tt_rmtree (top);
}

/* fsync and verify change how a file is written, not what: the oracle still agrees. */
static void
test_fsync_verify (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-fsync-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = path_in (top, "dst");
  for (int i = 0; i < 30; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%02d", src, i);
    write_file (f, (gsize) (i * 9000), i);
  }
  g_autofree char *big = path_in (src, "big");
  write_file (big, 300000, 99); /* chunked: verified chunk by chunk */
  g_autofree char *job = copy_job (top, src, dst, "fsync = yes\nverify = yes\n");
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  g_autofree char *diff = oracle (src, dst);
  g_assert_cmpstr (diff, ==, "");
  tt_rmtree (top);
}

/* preserve = none keeps the bytes only; a bad preserve value names the key. */
static void
test_preserve (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = path_in (top, "dst");
  g_autofree char *f = path_in (src, "old");
  write_file (f, 100, 1);
  chmod (f, 0604);
  set_times (f, 1000000000, 5);
  g_autofree char *job = copy_job (top, src, dst, "preserve = none\n");
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 0);
  g_autofree char *d = path_in (dst, "old");
  struct stat st;
  must (stat (d, &st), d);
  g_assert_cmpint (st.st_mtim.tv_sec, !=, 1000000000); /* a fresh time */
  mode_t mask = umask (022);
  umask (mask);
  g_assert_cmpint (st.st_mode & 07777, ==, 0604 & ~mask); /* the source's, less the umask */
  g_autofree char *job2 = copy_job (top, src, dst, "preserve = mode, sizes\n");
  g_autofree char *out2 = NULL, *err2 = NULL;
  g_assert_cmpint (run_copy (job2, &out2, &err2), ==, 2);
  g_assert_nonnull (strstr (err2, "'preserve': 'sizes' is not all, none, or a list of mode, ownership, "
                                  "timestamps, xattr"));
  g_assert_cmpstr (out2, ==, "");
  tt_rmtree (top);
}

/* An ordinary failed entry fails alone: the job goes on (only a full or broken
 * destination stops it). */
static void
test_ordinary_failure_goes_on (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = new_folder (top, "dst");
  for (int i = 0; i < 20; i++) {
    g_autofree char *f = g_strdup_printf ("%s/f%02d", src, i);
    write_file (f, 100000, i); /* chunked: many tasks after the failure */
  }
  g_autofree char *a = path_in (src, "aaa");
  write_file (a, 10, 50);
  g_autofree char *blocker = path_in (dst, "aaa");
  must (mkdir (blocker, 0755), blocker); /* a folder where the source has a file */
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 1);
  g_test_message ("%s", err);
  g_assert_null (strstr (err, "stopping"));
  g_assert_nonnull (strstr (err, "aaa: Is a directory in the destination; it is not replaced"));
  g_assert_nonnull (strstr (err, "20 files ("));
  g_assert_nonnull (strstr (err, " 1 failed"));
  tt_rmtree (top);
}

/* A hard link's name that exists with other content: if_exists = error keeps it. */
static void
test_hard_link_if_exists_error (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = new_folder (top, "dst");
  g_autofree char *a = path_in (src, "a");
  write_file (a, 10, 1);
  g_autofree char *b = path_in (src, "b");
  must (link (a, b), b);
  g_autofree char *old = path_in (dst, "b");
  g_assert_true (g_file_set_contents (old, "OLD", 3, NULL));
  g_autofree char *job = copy_job (top, src, dst, "if_exists = error\n");
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (run_copy (job, &out, &err), ==, 1);
  g_assert_nonnull (strstr (err, "hard link b -> a: File exists"));
  g_autofree char *kept = NULL;
  g_assert_true (g_file_get_contents (old, &kept, NULL, NULL));
  g_assert_cmpstr (kept, ==, "OLD");
  tt_rmtree (top);
}

/* A destination in a setgid folder (a group's shared folder): each folder the walk makes
 * there is setgid by the kernel's rule, and is still the walk's own, written in. */
static void
test_setgid_destination (void)
{
  g_autofree char *top = tt_tmpdir ();
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *deep = new_folder (src, "a");
  g_autofree char *deeper = new_folder (src, "a/b");
  g_autofree char *f = path_in (src, "a/b/f");
  write_file (f, 1000, 1);
  g_autofree char *shared = new_folder (top, "shared");
  must (chmod (shared, 02775), shared);
  g_autofree char *dst = path_in (shared, "dst"); /* made by the walk too */
  g_autofree char *job = copy_job (top, src, dst, NULL);
  g_autofree char *out = NULL, *err = NULL;
  int status = run_copy (job, &out, &err);
  g_test_message ("%s", err);
  g_assert_null (strstr (err, "replaced by another"));
  g_assert_cmpint (status, ==, 0);
  g_autofree char *copied = path_in (dst, "a/b/f");
  g_assert_true (g_file_test (copied, G_FILE_TEST_IS_REGULAR));
  tt_rmtree (top);
}

/* Interrupted in the middle of a chunked file, then --resume: the copy is complete. */
/* copy's tasks depend on the destination's state, so --resume is refused (exit 2,
 * nothing written); the plain rerun of an interrupted copy is what completes it. */
static void
test_resume_refused_rerun_completes (void)
{
  g_autofree char *top = g_strdup ("/dev/shm/taskrun-resume-XXXXXX");
  g_assert_nonnull (g_mkdtemp (top));
  g_autofree char *src = new_folder (top, "src");
  g_autofree char *dst = path_in (top, "dst");
  for (int i = 0; i < 3; i++) {
    g_autofree char *f = g_strdup_printf ("%s/big%d", src, i);
    write_file (f, 48 << 20, i);
  }
  g_autofree char *job = copy_job (top, src, dst, "chunk_size = 1M\nverify = yes\n");
  g_autofree char *log = path_in (top, "log.tsv");
  const char *args[] = { "-c", job, "--joblog", log, NULL };
  GPid pid = tt_spawn_taskrun (args, top, NULL);
  g_assert_true (tt_wait_lines (log, 1 + 20, 30)); /* 20 chunks done */
  kill (pid, SIGINT);
  g_assert_cmpint (tt_wait_taskrun (pid, 30, top, NULL, NULL), ==, 130);
  g_assert_cmpuint (count_temps (dst), ==, 0);
  const char *resume[] = { "-c", job, "--joblog", log, "--resume", NULL };
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (tt_run_taskrun (resume, top, NULL, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "--resume"));
  g_autofree char *out2 = NULL, *err2 = NULL;
  int status = tt_run_taskrun (args, top, NULL, &out2, &err2);
  g_test_message ("%s", err2);
  g_assert_cmpint (status, ==, 0);
  g_autofree char *diff = oracle (src, dst);
  g_assert_cmpstr (diff, ==, "");
  g_assert_cmpuint (count_temps (dst), ==, 0);
  tt_rmtree (top);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/copy/oracle/tmpfs-to-tmpfs", NULL, test_oracle);
  g_test_add_data_func ("/copy/oracle/tmpfs-to-disk", TT_BUILD_DIR, test_oracle);
  g_test_add_func ("/copy/oracle/mpi", test_oracle_mpi);
  g_test_add_func ("/copy/kill-and-rerun", test_kill_and_rerun);
  g_test_add_func ("/copy/deeper-than-path-max", test_deeper_than_path_max);
  g_test_add_func ("/copy/refuses-itself", test_refuses_itself);
  g_test_add_func ("/copy/never-deletes-never-follows", test_never_deletes_never_follows);
  g_test_add_func ("/copy/if-exists", test_if_exists);
  g_test_add_func ("/copy/update-symlink-target", test_update_symlink_target);
  g_test_add_func ("/copy/unreadable-file", test_unreadable_file);
  g_test_add_func ("/copy/disk-full", test_disk_full);
  g_test_add_func ("/copy/socket-copied", test_socket_copied);
  g_test_add_func ("/copy/fsync-verify", test_fsync_verify);
  g_test_add_func ("/copy/preserve", test_preserve);
  g_test_add_func ("/copy/ordinary-failure-goes-on", test_ordinary_failure_goes_on);
  g_test_add_func ("/copy/hard-link-if-exists-error", test_hard_link_if_exists_error);
  g_test_add_func ("/copy/resume-refused-rerun-completes", test_resume_refused_rerun_completes);
  g_test_add_func ("/copy/setgid-destination", test_setgid_destination);
  int status = g_test_run ();
  copyutil_cleanup ();
  return status;
}
