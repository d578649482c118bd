/* dircursor.c — folders of a tree reached by relative path, cheaply in the order a
 * depth-first walk visits them.
 *
 * A cursor remembers the components of the last folder it opened and keeps descriptors
 * of the deepest DIR_CURSOR_KEEP of them.  The next folder shares a prefix with it (a
 * sibling, a child, a parent in a depth-first walk), so it opens from the deepest kept
 * descriptor of that prefix: a step or two, not one openat per component from the root,
 * which made a tree 3,000 folders deep cost hundreds of millions of openat calls.  When
 * the prefix lies above the kept window, the cursor opens again from the root, keeping
 * the deepest components on the way, so climbing a deep chain costs one pass per
 * DIR_CURSOR_KEEP levels.  Components are opened one at a time, never following a
 * symlink; with `create` (the walk), missing folders are made (mode 0700 until their own
 * mode is set at the end) and existing ones made writable (see make_writable).
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
dir_cursor_init (DirCursor *c, int root)
{
  memset (c, 0, sizeof *c);
  c->root = root;
  c->path = g_string_new (NULL);
  c->ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  for (int i = 0; i < DIR_CURSOR_KEEP; i++)
    c->fds[i] = -1;
}

static int *
slot (DirCursor *c, guint depth)
{
  return &c->fds[depth % DIR_CURSOR_KEEP];
}

/* Drops components from `depth` on. */
static void
truncate_to (DirCursor *c, guint depth)
{
  for (guint d = depth; d < c->ends->len; d++) {
    if (d + DIR_CURSOR_KEEP >= c->ends->len && *slot (c, d) >= 0) {
      close (*slot (c, d));
      *slot (c, d) = -1;
    }
  }
  g_array_set_size (c->ends, depth);
  g_string_truncate (c->path, depth ? g_array_index (c->ends, gsize, depth - 1) : 0);
}

void
dir_cursor_clear (DirCursor *c)
{
  if (!c->path)
    return;
  truncate_to (c, 0);
  g_string_free (c->path, TRUE);
  g_array_unref (c->ends);
  c->path = NULL;
}

/* The descriptor of component `depth - 1` (the root for 0), or -1 if not kept. */
static int
fd_at (DirCursor *c, guint depth)
{
  if (depth == 0)
    return c->root;
  guint d = depth - 1;
  return d + DIR_CURSOR_KEEP >= c->ends->len ? *slot (c, d) : -1;
}

/* Opens component `name` below `base` and pushes it. */
static gboolean
push (DirCursor *c, int base, const char *name, gsize len, gboolean create)
{
  char comp[NAME_MAX + 1];
  if (len == 0 || len > NAME_MAX) {
    errno = len ? ENAMETOOLONG : EINVAL;
    return FALSE;
  }
  memcpy (comp, name, len);
  comp[len] = '\0';
  int fd = openat (base, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    gboolean made = mkdirat (base, comp, 0700) == 0;
    if (!made && errno != EEXIST)
      return FALSE;
    fd = openat (base, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* Between mkdirat and openat the name can be taken over by whoever may write in
     * `base`: what opens must be owned by this process, or by the owner of `base` (a
     * filesystem that gives every file one owner: NFS's root_squash, vfat's uid=), or
     * it is another user's, and nothing goes in it.  The mode says nothing: a setgid
     * folder's are setgid, and vfat's are the mount's. */
    struct stat st, parent;
    if (fd >= 0 && made &&
        (fstat (fd, &st) != 0 ||
         (st.st_uid != geteuid () && (fstat (base, &parent) != 0 || st.st_uid != parent.st_uid)))) {
      close (fd);
      c->taken_over = TRUE;
      errno = EPERM;
      return FALSE;
    }
  }
  if (fd < 0) {
    if (errno == ELOOP)
      errno = ENOTDIR; /* a symlink where a folder belongs: not followed */
    return FALSE;
  }
  if (create)
    make_writable (fd);
  guint depth = c->ends->len;
  if (c->path->len)
    g_string_append_c (c->path, '/');
  g_string_append_len (c->path, name, (gssize) len);
  gsize end = c->path->len;
  g_array_append_val (c->ends, end);
  /* the component that slides out of the window */
  if (depth >= DIR_CURSOR_KEEP && *slot (c, depth) >= 0)
    close (*slot (c, depth));
  *slot (c, depth) = fd;
  return TRUE;
}

/* Pushes each component of `p` ("a/b/c"); FALSE with errno at the first that fails, the
 * cursor left at the deepest one reached. */
static gboolean
push_path (DirCursor *c, const char *p, gboolean create)
{
  while (*p) {
    const char *slash = strchr (p, '/');
    gsize len = slash ? (gsize) (slash - p) : strlen (p);
    if (!push (c, fd_at (c, c->ends->len), p, len, create))
      return FALSE;
    p += len + (slash != NULL);
  }
  return TRUE;
}

int
dir_cursor_open (DirCursor *c, const char *rel, gboolean create)
{
  c->taken_over = FALSE;
  /* how many whole components rel shares with the current path */
  guint common = 0;
  gsize at = 0;
  while (common < c->ends->len) {
    gsize end = g_array_index (c->ends, gsize, common);
    if (strncmp (rel + at, c->path->str + at, end - at) != 0 ||
        (rel[end] != '/' && rel[end] != '\0'))
      break;
    common++;
    at = end + 1;
    if (rel[end] == '\0')
      break;
  }
  if (common < c->ends->len)
    truncate_to (c, common);
  if (fd_at (c, common) < 0) {
    /* above the kept window: from the root again */
    g_autofree char *prefix = g_strdup (c->path->str);
    truncate_to (c, 0);
    if (!push_path (c, prefix, create))
      return -1;
  }
  gsize done = c->ends->len ? g_array_index (c->ends, gsize, c->ends->len - 1) + 1 : 0;
  gsize rel_len = strlen (rel);
  return push_path (c, rel + MIN (done, rel_len), create) ? fd_at (c, c->ends->len) : -1;
}
