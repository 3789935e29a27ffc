/* nbdswap: the extent map of a backing file (FIEMAP, SEEK_HOLE) and the
 * checks on it (issue 3, checks 3 to 7).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>

#include "log.h"
#include "verify-internal.h"

/* Extents asked for per FIEMAP call. */
#define FIEMAP_BATCH 256

/* Flags that say nothing about the data and must not make two maps
 * differ or stop two extents from merging. */
#define IGNORED_FLAGS (FIEMAP_EXTENT_LAST | FIEMAP_EXTENT_MERGED)

/* Appends e, merging it into the last extent when contiguous (see header). */
int
extent_list_append (struct extent_list *list, const struct verify_extent *e)
{
  struct verify_extent *last, *v;

  if (list->n > 0) {
    last = &list->v[list->n - 1];
    if (e->logical < last->logical + last->length)
      return -EINVAL;           /* overlapping or unsorted: FIEMAP bug */
    if (last->logical + last->length == e->logical
        && last->physical + last->length == e->physical
        && last->flags == e->flags) {
      last->length += e->length;
      return 0;
    }
  }
  if (list->n == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 16;
    v = realloc (list->v, cap * sizeof *v);
    if (v == NULL)
      return -ENOMEM;
    list->v = v;
    list->cap = cap;
  }
  list->v[list->n++] = *e;
  return 0;
}

/* Drops the part of e that the list already covers: a filesystem may
 * report the extent that straddles fm_start again in the next batch. */
static void
clip_front (const struct extent_list *list, struct verify_extent *e)
{
  uint64_t end, cut;

  if (list->n == 0)
    return;
  end = list->v[list->n - 1].logical + list->v[list->n - 1].length;
  if (e->logical >= end)
    return;
  cut = end - e->logical;
  if (cut >= e->length) {
    e->length = 0;
    return;
  }
  e->logical += cut;
  e->physical += cut;
  e->length -= cut;
}

/* Appends the extents of one FIEMAP answer; sets *last at the end. */
static int
append_batch (struct extent_list *list, const struct fiemap *fm,
              bool *last)
{
  uint32_t i;
  int r;

  for (i = 0; i < fm->fm_mapped_extents; ++i) {
    const struct fiemap_extent *fe = &fm->fm_extents[i];
    struct verify_extent e = {
      .logical = fe->fe_logical,
      .physical = fe->fe_physical,
      .length = fe->fe_length,
      .flags = fe->fe_flags & ~IGNORED_FLAGS,
    };

    if (fe->fe_flags & FIEMAP_EXTENT_LAST)
      *last = true;
    clip_front (list, &e);
    if (e.length == 0)
      continue;
    r = extent_list_append (list, &e);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Walks the map in batches until FIEMAP says LAST or size is reached. */
int
verify_read_extents (int fd, uint64_t size, struct extent_list *list)
{
  struct fiemap *fm;
  uint64_t start = 0;
  bool last = false;
  int r = 0;

  fm = calloc (1, sizeof *fm + FIEMAP_BATCH * sizeof fm->fm_extents[0]);
  if (fm == NULL)
    return -ENOMEM;
  while (!last && start < size) {
    memset (fm, 0, sizeof *fm);
    fm->fm_start = start;
    fm->fm_length = size - start;
    /* SYNC: delayed-allocation extents get their disk location first. */
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = FIEMAP_BATCH;
    if (ioctl (fd, FS_IOC_FIEMAP, fm) == -1) {
      r = -errno;
      break;
    }
    if (fm->fm_mapped_extents == 0)
      break;
    r = append_batch (list, fm, &last);
    if (r < 0)
      break;
    start = list->v[list->n - 1].logical + list->v[list->n - 1].length;
  }
  free (fm);
  return r;
}

/* Extent flags, each reported as one problem per contiguous run. */
struct flag_check {
  uint32_t flags;
  enum verify_code code;
  const char *what;
  const char *fix;
};

#define FIX_RECREATE \
  "recreate the file so that every block is allocated and written: " \
  "nbdswap create FILE SIZE --force"

static const struct flag_check flag_checks[] = {
  { FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN, VERIFY_DELALLOC,
    "still have no disk location after a sync (delayed allocation): "
    "writing them would allocate blocks under memory pressure",
    "run sync and verify again; if it persists, " FIX_RECREATE },
  { FIEMAP_EXTENT_UNWRITTEN, VERIFY_UNWRITTEN,
    "are allocated but unwritten (fallocate without writing): the first "
    "write converts the extent, a metadata transaction on the swap-out path",
    "write every block once: " FIX_RECREATE },
  { FIEMAP_EXTENT_SHARED, VERIFY_SHARED,
    "share their disk blocks with another file (a reflink copy, a "
    "snapshot or deduplication): a write would have to copy them first",
    "delete the copy or snapshot sharing them, or replace the file with "
    "a private copy: nbdswap create FILE.new SIZE, then rename it" },
  { FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL, VERIFY_INLINE,
    "are stored inline with the filesystem metadata (the file is tiny)",
    "a swap file needs real data blocks: " FIX_RECREATE },
  { FIEMAP_EXTENT_ENCODED, VERIFY_ENCODED,
    "are compressed or otherwise encoded: they cannot be overwritten "
    "in place",
    "disable compression for the file before writing its data (nbdswap "
    "create sets NOCOW and no compression): " FIX_RECREATE },
  { FIEMAP_EXTENT_DATA_ENCRYPTED, VERIFY_ENCRYPTED,
    "are encrypted by the filesystem",
    "put the swap file outside the encrypted directory; nbdswap attach "
    "--encrypt protects swapped memory instead" },
  { FIEMAP_EXTENT_NOT_ALIGNED, VERIFY_NOT_ALIGNED,
    "are flagged by the filesystem as not block-aligned (packed with "
    "other data)",
    FIX_RECREATE },
};
#define NR_FLAG_CHECKS (sizeof flag_checks / sizeof flag_checks[0])

/* One run of extents with a problem flag, [start, end). */
struct run {
  bool active;
  uint64_t start, end;
};

/* Records the run of check i, if any, as one problem. */
static int
flush_run (struct run *run, size_t i, struct verify_result *res)
{
  char h[32];

  if (!run->active)
    return 0;
  run->active = false;
  return verify_add_problem (res, flag_checks[i].code, VERIFY_ERROR,
                             run->start, run->end - run->start,
                             flag_checks[i].fix,
                             "%s: bytes %" PRIu64 "-%" PRIu64 " (%s) %s",
                             res->path, run->start, run->end - 1,
                             verify_human_size (run->end - run->start,
                                                h, sizeof h),
                             flag_checks[i].what);
}

/* Records a hole [start, end). */
static int
add_hole (struct verify_result *res, uint64_t start, uint64_t end)
{
  char h[32];

  return verify_add_problem (res, VERIFY_HOLE, VERIFY_ERROR,
                             start, end - start,
                             "recreate the file fully written (nbdswap "
                             "create FILE SIZE --force); never make it "
                             "with truncate or a sparse copy",
                             "%s: bytes %" PRIu64 "-%" PRIu64 " (%s) are "
                             "a hole: no disk blocks are allocated there, "
                             "so a swap-out write would have to allocate "
                             "them under memory pressure",
                             res->path, start, end - 1,
                             verify_human_size (end - start, h, sizeof h));
}

/* The flags of e that are problems.  Inline data is always flagged
 * NOT_ALIGNED too: report it once, as inline.  The disk address itself is
 * not checked against 4 KiB: nbdswap writes through the filesystem with
 * O_DIRECT (not through bmap like kernel swap), so on a filesystem with
 * 1 KiB blocks a page spans four allocated blocks, which is safe. */
static uint32_t
problem_flags (const struct verify_extent *e)
{
  uint32_t f = e->flags;

  if (f & (FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL))
    return f & ~FIEMAP_EXTENT_NOT_ALIGNED;
  return f;
}

/* Extends or starts or ends the flag runs with extent [start, end). */
static int
update_runs (struct run *runs, uint32_t flags, uint64_t start,
             uint64_t end, struct verify_result *res)
{
  size_t i;
  int r;

  for (i = 0; i < NR_FLAG_CHECKS; ++i) {
    if (runs[i].active && (!(flags & flag_checks[i].flags)
                           || runs[i].end != start)) {
      r = flush_run (&runs[i], i, res);
      if (r < 0)
        return r;
    }
    if (flags & flag_checks[i].flags) {
      if (!runs[i].active) {
        runs[i].active = true;
        runs[i].start = start;
      }
      runs[i].end = end;
    }
  }
  return 0;
}

/* Holes between extents and runs of problem flags, clipped to the size. */
int
verify_check_extents (const struct extent_list *list,
                      struct verify_result *res)
{
  struct run runs[NR_FLAG_CHECKS] = { 0 };
  uint64_t expected = 0, size = res->size;
  size_t i;
  int r;

  for (i = 0; i < list->n && expected < size; ++i) {
    const struct verify_extent *e = &list->v[i];
    uint64_t end = e->logical + e->length;

    if (end > size)
      end = size;               /* preallocation past EOF is harmless */
    if (e->logical > expected) {
      r = add_hole (res, expected, e->logical);
      if (r < 0)
        return r;
    }
    if (e->logical >= size)
      break;
    r = update_runs (runs, problem_flags (e), e->logical, end, res);
    if (r < 0)
      return r;
    expected = end;
  }
  for (i = 0; i < NR_FLAG_CHECKS; ++i) {
    r = flush_run (&runs[i], i, res);
    if (r < 0)
      return r;
  }
  if (expected < size)
    return add_hole (res, expected, size);
  return 0;
}

/* Every [SEEK_HOLE, SEEK_DATA) range below the size is a hole. */
int
verify_check_seek_holes (int fd, struct verify_result *res)
{
  off_t hole = 0, data;
  int r;

  while ((uint64_t) hole < res->size) {
    hole = lseek (fd, hole, SEEK_HOLE);
    if (hole == -1)
      return errno == ENXIO ? 0 : -errno;
    if ((uint64_t) hole >= res->size)
      break;
    data = lseek (fd, hole, SEEK_DATA);
    if (data == -1 && errno != ENXIO)
      return -errno;
    if (data == -1 || (uint64_t) data > res->size)
      data = res->size;
    r = add_hole (res, hole, data);
    if (r < 0)
      return r;
    hole = data;
  }
  return 0;
}

/* Equal size and extent for extent equal: nothing moved or became shared. */
bool
verify_same_map (const struct verify_result *a, const struct verify_result *b)
{
  size_t i;

  if (a->size != b->size || a->nr_extents != b->nr_extents)
    return false;
  for (i = 0; i < a->nr_extents; ++i) {
    const struct verify_extent *x = &a->extents[i], *y = &b->extents[i];

    if (x->logical != y->logical || x->physical != y->physical
        || x->length != y->length || x->flags != y->flags)
      return false;
  }
  return true;
}

/* ext4's EXT4_IOC_PRECACHE_EXTENTS (fs/ext4/ext4.h; not in the uapi
 * headers). */
#define NBDSWAP_EXT4_IOC_PRECACHE_EXTENTS _IO ('f', 18)

int
verify_precache_extents (int fd, const struct verify_result *res)
{
  const char *path = res->path;

  if (res->fs_magic != EXT4_SUPER_MAGIC)
    return 0;
  if (ioctl (fd, NBDSWAP_EXT4_IOC_PRECACHE_EXTENTS) == -1) {
    log_warning ("%s: could not pin the extent map in ext4's extent cache "
                 "(EXT4_IOC_PRECACHE_EXTENTS: %m): under memory pressure "
                 "ext4 may have to read it from disk on the swap-out path",
                 path);
    return -errno;
  }
  log_info ("%s: extent map precached in ext4's extent cache", path);
  return 1;
}
