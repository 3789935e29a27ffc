/* nbdswap: the backing file of a serving process (see include/backing.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/major.h>

#include "align.h"
#include "backing.h"
#include "blockdev.h"
#include "log.h"
#include "monitor.h"
#include "owner.h"
#include "request.h"
#include "stats.h"

/* The kernel swaps in 4 KiB pages; the export is cut to match. */
#define SWAP_PAGE 4096

void
backing_init (struct backing *b)
{
  memset (b, 0, sizeof *b);
  b->direct = true;
  b->no_direct_fix = "";
  b->stats = &stats;
  b->fd = -1;
}

/* The one refusal of a file that is neither a regular file nor a block
 * device. */
static enum backing_status
not_regular (const struct backing *b)
{
  log_error ("%s: is neither a regular file nor a block device: give a "
             "swap backing file made by 'nbdswap create'", b->path);
  return BACKING_UNFIT;
}

/* Explain a failed open (errno) with its fix. */
static enum backing_status
open_failed (struct backing *b)
{
  int err = errno;
  struct stat st;

  if (err == ENOENT) {
    log_error ("%s: no such file: create it with 'nbdswap create %s SIZE'",
               b->path, b->path);
    return BACKING_UNFIT;
  }
  /* open(2) refuses O_DIRECT (EINVAL) on a FIFO or a character device
   * before anything else: name what the file is, not the filesystem. */
  if (err == EISDIR
      || (err == EINVAL && stat (b->path, &st) == 0
          && !S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)))
    return not_regular (b);
  if (err == EBUSY && stat (b->path, &st) == 0 && S_ISBLK (st.st_mode)) {
    blockdev_log_busy (b->path, st.st_rdev);
    b->lock_busy = true;        /* its holder may let go: try again */
    return BACKING_UNFIT;
  }
  errno = err;
  if (err == ETXTBSY)
    log_error ("%s: is an active kernel swap file (see /proc/swaps): run "
               "'swapoff %s' first; the kernel and nbdswap must never "
               "share a swap file", b->path, b->path);
  else if (err == EINVAL && b->direct)
    log_error ("%s: the filesystem refuses O_DIRECT (open: %m): swap pages "
               "must not go through the server's page cache; put the file "
               "on a filesystem with direct I/O%s", b->path,
               b->no_direct_fix);
  else if (b->read_write_only != NULL) {
    log_error ("open: %s: %m (%s)", b->path, b->read_write_only);
    return BACKING_SYSTEM;
  }
  else {
    log_error ("open: %s: %m", b->path);
    return BACKING_SYSTEM;
  }
  return BACKING_UNFIT;
}

/* Open read-write, or read-only where the caller allows it and
 * read-write is refused.  A block device is claimed exclusively (O_EXCL),
 * the claim mount and swapon take: the kernel then refuses the open
 * while a filesystem, a swap area, a dm/md device or another server has
 * the device or a partition of it, whichever device node each opened
 * (the owner lock is on the node's inode only). */
static enum backing_status
open_file (struct backing *b)
{
  int flags = O_CLOEXEC | (b->direct ? O_DIRECT : 0);
  struct stat st;

  if (stat (b->path, &st) == 0 && S_ISBLK (st.st_mode))
    flags |= O_EXCL;

  b->fd = owner_open (b->path, O_RDWR | flags);
  b->writable = b->fd >= 0;
  if (b->fd == -1 && b->read_write_only == NULL
      && (errno == EACCES || errno == EROFS || errno == EPERM)) {
    int rw_errno = errno;

    b->fd = owner_open (b->path, O_RDONLY | flags);
    if (b->fd >= 0)
      log_warning ("%s: opened read-only (%s for read-write): clients "
                   "cannot write, so it cannot be used as swap", b->path,
                   strerror (rw_errno));
    else
      errno = rw_errno;
  }
  return b->fd >= 0 ? BACKING_OK : open_failed (b);
}

/* Learn the O_DIRECT alignment, and prove direct reads work at all: some
 * filesystems accept O_DIRECT at open and fail every I/O. */
static enum backing_status
learn_alignment (struct backing *b)
{
  void *buf;
  int r;

  if (!b->direct) {
    b->dio = (struct dio_align) { 1, 1, "direct=false: no alignment" };
    return BACKING_OK;
  }
  r = dio_align_learn (b->fd, &b->dio);
  if (r == 0) {
    r = posix_memalign (&buf, dio_mem_align (&b->dio), b->dio.offset);
    if (r != 0) {
      errno = r;
      log_error ("posix_memalign: %m");
      return BACKING_SYSTEM;
    }
    if (pread (b->fd, buf, b->dio.offset, 0) == -1)
      r = -errno;
    free (buf);
  }
  if (r < 0) {
    errno = -r;
    log_error ("%s: direct I/O fails here (%m): put the file on a "
               "filesystem with direct I/O%s", b->path, b->no_direct_fix);
    return BACKING_UNFIT;
  }
  return BACKING_OK;
}

/* A block device's size, a whole number of pages; and its logical block
 * size (the O_DIRECT alignment) at most a page, so that every swapped
 * page is one direct I/O, not a read-modify-write. */
static enum backing_status
learn_device_size (struct backing *b)
{
  if (ioctl (b->fd, BLKGETSIZE64, &b->size) == -1) {
    log_error ("ioctl BLKGETSIZE64: %s: %m", b->path);
    return BACKING_SYSTEM;
  }
  if (b->direct && b->dio.offset > SWAP_PAGE) {
    log_error ("%s: logical block size %" PRIu32 " is larger than a 4 KiB "
               "swap page: each page written would be a read-modify-write; "
               "use a device with 512 or 4096-byte logical blocks",
               b->path, b->dio.offset);
    return BACKING_UNFIT;
  }
  if (b->size == 0 || !is_aligned (b->size, SWAP_PAGE)) {
    log_error ("%s: size %" PRIu64 " is %s: resize the device to a "
               "multiple of 4096 bytes (for LVM: lvresize -L)", b->path,
               b->size, b->size == 0 ? "zero"
               : "not a whole number of 4 KiB pages");
    return BACKING_UNFIT;
  }
  return BACKING_OK;
}

/* The export size: the file's or the device's; a whole number of pages
 * and O_DIRECT blocks. */
static enum backing_status
learn_size (struct backing *b)
{
  struct stat st;
  uint32_t unit = b->dio.offset > SWAP_PAGE ? b->dio.offset : SWAP_PAGE;

  if (fstat (b->fd, &st) == -1) {
    log_error ("fstat: %s: %m", b->path);
    return BACKING_SYSTEM;
  }
  if (S_ISBLK (st.st_mode))
    return learn_device_size (b);
  else if (S_ISREG (st.st_mode))
    b->size = (uint64_t) st.st_size;
  else
    return not_regular (b);
  if (b->size == 0 || !is_aligned (b->size, unit)) {
    log_error ("%s: size %" PRIu64 " is %s: recreate it with "
               "'nbdswap create %s SIZE' and a SIZE that is a multiple "
               "of %" PRIu32 " bytes", b->path, b->size,
               b->size == 0 ? "zero" : "not a whole number of 4 KiB pages "
               "and O_DIRECT blocks", b->path, unit);
    return BACKING_UNFIT;
  }
  return BACKING_OK;
}

enum backing_status
backing_open (struct backing *b)
{
  enum backing_status r = open_file (b);

  if (r == BACKING_OK)
    r = learn_alignment (b);
  if (r == BACKING_OK)
    r = learn_size (b);
  return r;
}

/* One owner: no second server, no kernel swapon on the same file.  The
 * holder's PID is 0 when it cannot be seen from here. */
static enum backing_status
lock_file (struct backing *b)
{
  pid_t holder;
  int r = owner_lock (b->fd, b->writable, &holder);

  b->lock_busy = r == -EBUSY;
  if (r == -EBUSY && holder == getpid ())
    log_error ("%s: already served by this server under another name (a "
               "link to, or a rename of, another export): one swap file "
               "must have one export; remove the second name", b->path);
  else if (r == -EBUSY && holder > 0)
    log_error ("%s: already served by another process (PID %d): one "
               "swap file must have one server; stop that one first",
               b->path, (int) holder);
  else if (r == -EBUSY)
    log_error ("%s: already served by another process (its PID is not "
               "visible from here: another PID namespace?): one swap "
               "file must have one server; stop that one first",
               b->path);
  else if (r < 0) {
    errno = -r;
    log_error ("fcntl F_OFD_SETLK: %s: %m", b->path);
    return BACKING_SYSTEM;
  }
  return r == 0 ? BACKING_OK : BACKING_UNFIT;
}

/* The full verification (holes, unwritten, shared, inline or compressed
 * extents, btrfs NOCOW, NFS soft mounts...; docs/verify.md), through the
 * locked descriptor so that our own lock does not count against us.  The
 * result is kept: it is the map that re-verification compares with. */
static enum backing_status
verify_file (struct backing *b)
{
  struct stat st;
  int r;

  verify_options_init (&b->verify);
  b->verify.direct = b->direct;
  b->verify.dio_alignment = b->direct ? b->dio.offset : 0;
  r = verify_fd (b->fd, b->path, &b->verify, &b->verified);
  if (r < 0) {
    errno = -r;
    log_error ("%s: cannot verify the file: %m", b->path);
    return BACKING_SYSTEM;
  }
  b->have_verified = true;
  verify_log_result (&b->verified);
  if (b->verified.verdict != VERIFY_FIT) {
    log_error ("%s: refusing to serve: the file is not fit for swap "
               "(%zu problem%s above); 'nbdswap verify %s' prints a full "
               "report", b->path, b->verified.nr_errors,
               b->verified.nr_errors == 1 ? "" : "s", b->path);
    return BACKING_UNFIT;
  }
  verify_precache_extents (b->fd, &b->verified);
  b->over_loop[0] = '\0';
  if (fstat (b->fd, &st) == 0 && S_ISBLK (st.st_mode))
    blockdev_over_loop (st.st_rdev, b->over_loop, sizeof b->over_loop);
  return BACKING_OK;
}

enum backing_status
backing_claim (struct backing *b)
{
  enum backing_status r = lock_file (b);

  return r == BACKING_OK ? verify_file (b) : r;
}

/* backing_shares_swap_pool for a block device: why its I/O can reach
 * the shared pool, into what; false when it cannot. */
static bool
bdev_shares_pool (const struct backing *b, char *what, size_t len)
{
  const char *fs = b->verified.fs_type;
  struct stat st;

  /* The verifier names /dev's devtmpfs "tmpfs", by its magic number. */
  if (strcmp (fs, "tmpfs") != 0 && strcmp (fs, "devtmpfs") != 0) {
    snprintf (what, len, "a block device node on %s, where every read and "
              "write updates the node's times", fs[0] ? fs : "a filesystem "
              "not known here");
    return true;
  }
  if (b->over_loop[0] != '\0') {
    if (fstat (b->fd, &st) == 0 && S_ISBLK (st.st_mode)
        && major (st.st_rdev) == LOOP_MAJOR)
      snprintf (what, len, "a loop device, whose I/O goes to a file");
    else
      snprintf (what, len, "a block device over %s, whose I/O goes to a "
                "file", b->over_loop);
    return true;
  }
  return false;
}

bool
backing_shares_swap_pool (const struct backing *b, char *what, size_t len)
{
  /* Linux 6.1: these do direct I/O through iomap with no bio_set of
   * their own, so from fs_bio_set (fs/iomap/direct-io.c); btrfs has
   * btrfs_dio_bioset, NFS and FUSE send no bios, and others are not
   * known here.  The name is the verifier's, from the superblock's
   * magic: ext2 and ext3 mounts are "ext4" there. */
  static const char *const shared[] = { "ext4", "xfs", "f2fs" };
  const struct verify_result *v = &b->verified;

  if (!b->have_verified)
    return false;
  if (v->type == VERIFY_TYPE_BLOCK_DEVICE)
    return bdev_shares_pool (b, what, len);
  if (v->type != VERIFY_TYPE_REGULAR)
    return false;
  for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
    if (strcmp (v->fs_type, shared[i]) == 0) {
      snprintf (what, len, "a file on %s", v->fs_type);
      return true;
    }
  return false;
}

bool
backing_own_bio_pool (const struct backing *b)
{
  char what[160];
  struct stat st;

  return b->have_verified && b->verified.type == VERIFY_TYPE_BLOCK_DEVICE
    && !bdev_shares_pool (b, what, sizeof what)
    && fstat (b->fd, &st) == 0 && S_ISBLK (st.st_mode);
}

void
backing_recheck (struct backing *b)
{
  struct verify_result now;
  int r = verify_fd (b->fd, b->path, &b->verify, &now);

  STATS_ADD (b->stats, rechecks, 1);
  if (r < 0) {
    errno = -r;
    log_warning ("%s: re-verification could not run: %m (will retry)",
                 b->path);
    return;
  }
  if ((now.verdict != VERIFY_FIT || !verify_same_map (&b->verified, &now))
      && !b->map_changed) {
    b->map_changed = true;
    if (b->refuse != NULL)
      atomic_fetch_or (b->refuse, REQ_REFUSE_WRITES);
    verify_log_result (&now);
    log_error ("%s: the file's extent map CHANGED while serving (a "
               "defrag, balance, dedupe, reflink copy or snapshot?): "
               "writes now fail with EIO so that the filesystem never "
               "allocates or copies on the swap-out path; swapoff on the "
               "client, then check the file with 'nbdswap verify %s' and "
               "restart the server", b->path, b->path);
  }
  verify_result_free (&now);
}

/* The monitor's calls, for a process serving this one file. */
static void
recheck_cb (void *arg, bool requested)
{
  backing_recheck (arg);
}

static void
report_stats_cb (void *arg)
{
  backing_report_stats (arg);
}

enum backing_status
backing_monitor_start (struct backing *b)
{
  struct monitor_params mp = {
    .recheck = b->recheck, .recheck_fn = recheck_cb,
    .report_stats = report_stats_cb, .arg = b,
  };

  if (monitor_serve (&mp) < 0)
    return BACKING_SYSTEM;
  b->monitoring = true;
  return BACKING_OK;
}

void
backing_monitor_stop (struct backing *b)
{
  monitor_stop ();
  if (b->monitoring)
    backing_report_stats (b);
  b->monitoring = false;
}

void
backing_report_stats (struct backing *b)
{
  char line[1024];

  stats_format_line (b->stats, line, sizeof line);
  log_info ("stats: %s", line);
  if (b->report_extra != NULL)
    b->report_extra ();
  if (b->stats_path != NULL && stats_write_file (b->stats, b->stats_path)
      == -1)
    log_error ("stats-file: %s: %m", b->stats_path);
}

void
backing_close (struct backing *b)
{
  if (b->have_verified)
    verify_result_free (&b->verified);
  b->have_verified = false;
  if (b->fd >= 0)
    close (b->fd);
  b->fd = -1;
}
