/* nbdswap: many backing files of one size in one directory, the exports
 * of a fleet (see include/create.h, create_in_dir).
 *
 * Everything that can be refused is refused before the first byte is
 * written: bad names, the directory, the room for all the files.  Then
 * each file is made by create_file, which removes its own partial file on
 * any failure, so a batch stopped anywhere leaves only whole files.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "create.h"
#include "log.h"
#include "verify-internal.h"

/* What is wrong with name as a file name in the directory, or NULL. */
static const char *
name_problem (const char *name)
{
  if (name[0] == '\0')
    return "is empty";
  if (strchr (name, '/') != NULL)
    return "contains '/'";
  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return "names a directory";
  if (name[0] == '.')
    return "starts with '.' (serve --dir skips such names: they are for "
      "files that are not exports)";
  if (strlen (name) > NAME_MAX)
    return "is longer than 255 bytes";
  return NULL;
}

/* Refuses every bad or repeated name (all are reported, not only the
 * first). */
static int
check_names (const char *dir, const struct create_item *items, size_t n)
{
  const char *why;
  size_t i, j;
  int r = 0;

  for (i = 0; i < n; ++i) {
    why = name_problem (items[i].name);
    if (why != NULL) {
      log_error ("'%s': %s: give plain file names; the files are made in "
                 "%s", items[i].name, why, dir);
      r = -EINVAL;
      continue;
    }
    for (j = 0; j < i; ++j)
      if (strcmp (items[i].name, items[j].name) == 0) {
        log_error ("'%s': given twice: give each name once",
                   items[i].name);
        r = -EINVAL;
        break;
      }
  }
  return r;
}

/* Refuses a dir that is missing or not a directory. */
static int
check_dir (const char *dir)
{
  struct stat st;

  if (stat (dir, &st) == -1) {
    if (errno == ENOENT)
      log_error ("%s: no such directory: create it first (mkdir -p %s)",
                 dir, dir);
    else
      log_error ("stat: %s: %m", dir);
    return -errno;
  }
  if (!S_ISDIR (st.st_mode)) {
    log_error ("%s: is not a directory: --dir names the directory to make "
               "the files in", dir);
    return -ENOTDIR;
  }
  return 0;
}

/* Sets each item's path to dir/name (one '/' between). */
static int
make_paths (const char *dir, struct create_item *items, size_t n)
{
  size_t len = strlen (dir), i;
  const char *sep = len > 0 && dir[len - 1] == '/' ? "" : "/";

  for (i = 0; i < n; ++i)
    if (asprintf (&items[i].path, "%s%s%s", dir, sep, items[i].name) == -1) {
      items[i].path = NULL;
      log_error ("asprintf: %m");
      return -ENOMEM;
    }
  return 0;
}

/* Marks an existing name skipped, or (force) counts the space replacing
 * it gives back.  *to_make counts the files that will be written. */
static void
check_existing (struct create_item *item, bool force, uint64_t *to_make,
                uint64_t *freed)
{
  struct stat st;

  if (lstat (item->path, &st) == -1) {
    if (errno == ENOENT) {
      (*to_make)++;
      return;
    }
    log_error ("lstat: %s: %m: skipped", item->path);
    item->err = -errno;
  }
  else if (!force) {
    log_error ("%s: already exists: skipped; remove it, or add --force to "
               "replace it", item->path);
    item->err = -EEXIST;
  }
  else if (!S_ISREG (st.st_mode)) {
    log_error ("%s: exists and is not a regular file: skipped, even with "
               "--force; remove it or choose another name", item->path);
    item->err = -EEXIST;
  }
  else {
    *freed += (uint64_t) st.st_blocks * 512;
    (*to_make)++;
    return;
  }
  item->state = CREATE_SKIPPED;
}

/* Refuses a batch the filesystem has no room for, before any write. */
static int
check_room (const char *dir, uint64_t count, uint64_t size, uint64_t freed)
{
  uint64_t avail, need;
  char h1[32], h2[32], h3[32];
  int r;

  if (count == 0)
    return 0;
  need = size > UINT64_MAX / count ? UINT64_MAX : size * count;
  r = create_space_available (dir, &avail);
  if (r < 0)
    return r;
  avail = avail > UINT64_MAX - freed ? UINT64_MAX : avail + freed;
  if (avail >= need)
    return 0;
  log_error ("%s: not enough free space for %" PRIu64 " files of %s: %s "
             "needed, %s available: free space there, or give fewer names "
             "or a smaller --size", dir, count,
             verify_human_size (size, h1, sizeof h1),
             verify_human_size (need, h2, sizeof h2),
             verify_human_size (avail, h3, sizeof h3));
  return -ENOSPC;
}

/* The caller's progress callback, shown the batch as one file. */
struct batch_progress {
  const struct create_options *outer;
  uint64_t base;                /* bytes of the files made before */
  uint64_t total;               /* bytes of all the files to make */
  uint64_t start_ns;
};

/* Adds the files made before to one file's progress. */
static void
batch_progress_update (const struct create_progress *p, void *opaque)
{
  struct batch_progress *bp = opaque;
  struct create_progress all = {
    .done = bp->base + p->done, .total = bp->total,
    .elapsed = (clock_now_ns () - bp->start_ns) / 1e9,
  };

  bp->outer->progress (&all, bp->outer->progress_opaque);
}

/* Makes the pending items in order; stops at the first failure. */
static int
make_files (struct create_item *items, size_t n, uint64_t size,
            const struct create_options *opts, struct batch_progress *bp)
{
  struct create_options one = *opts;
  size_t i;
  int r;

  if (opts->progress != NULL) {
    one.progress = batch_progress_update;
    one.progress_opaque = bp;
  }
  for (i = 0; i < n; ++i) {
    if (items[i].state != CREATE_PENDING)
      continue;
    if (opts->cancel != NULL && *opts->cancel)
      return -ECANCELED;
    r = create_file (items[i].path, size, &one, &items[i].res);
    if (r == 0) {
      items[i].state = CREATE_MADE;
      bp->base += size;
      continue;
    }
    items[i].err = r;
    /* Another process made the name or uses it since the check: a skip,
     * like a name that existed from the start. */
    if (r == -EEXIST || r == -EBUSY) {
      items[i].state = CREATE_SKIPPED;
      bp->total -= size;
      continue;
    }
    items[i].state = CREATE_FAILED;
    return r == -ECANCELED ? r : 0;
  }
  return 0;
}

int
create_in_dir (const char *dir, struct create_item *items, size_t n,
               uint64_t size, const struct create_options *opts)
{
  struct batch_progress bp = { .outer = opts };
  uint64_t to_make = 0, freed = 0;
  size_t i;
  int r;

  for (i = 0; i < n; ++i) {
    items[i].path = NULL;
    items[i].state = CREATE_PENDING;
    items[i].err = 0;
  }
  r = check_names (dir, items, n);
  if (r == 0)
    r = create_check_size (dir, size);
  if (r == 0)
    r = check_dir (dir);
  if (r == 0)
    r = make_paths (dir, items, n);
  for (i = 0; r == 0 && i < n; ++i)
    check_existing (&items[i], opts->force, &to_make, &freed);
  if (r == 0)
    r = check_room (dir, to_make, size, freed);
  if (r < 0)
    return r;
  bp.total = to_make * size;
  bp.start_ns = clock_now_ns ();
  return make_files (items, n, size, opts, &bp);
}

void
create_items_free (struct create_item *items, size_t n)
{
  size_t i;

  for (i = 0; i < n; ++i) {
    if (items[i].state == CREATE_MADE)
      verify_result_free (&items[i].res);
    free (items[i].path);
    items[i].path = NULL;
  }
}
