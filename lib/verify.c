/* nbdswap: verification of a swap backing file (see include/verify.h).
 * This file runs the checks in order; the extent map is walked in
 * verify-extents.c and the system files are read in verify-system.c.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>

#include "blockdev.h"
#include "log.h"
#include "owner.h"
#include "verify-internal.h"

/* The file type, from the mode. */
static enum verify_file_type
file_type (mode_t mode)
{
  if (S_ISREG (mode))
    return VERIFY_TYPE_REGULAR;
  if (S_ISBLK (mode))
    return VERIFY_TYPE_BLOCK_DEVICE;
  if (S_ISDIR (mode))
    return VERIFY_TYPE_DIRECTORY;
  return VERIFY_TYPE_OTHER;
}

/* The DIO alignment: the caller's, else the kernel's (statx
 * STATX_DIOALIGN, Linux 6.1), never less than a 4 KiB swap page. */
static uint32_t
dio_alignment (int fd, const struct verify_options *opts)
{
  uint32_t a = opts->dio_alignment;
  struct statx stx;

  if (a == 0 && statx (fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0
      && (stx.stx_mask & STATX_DIOALIGN))
    a = stx.stx_dio_offset_align;
  return a > VERIFY_DEFAULT_ALIGNMENT ? a : VERIFY_DEFAULT_ALIGNMENT;
}

/* Filesystem type and mount of fd into res. */
static int
read_filesystem (int fd, const struct stat *st, struct verify_result *res)
{
  struct statfs sfs;
  const char *name;

  if (fstatfs (fd, &sfs) == -1)
    return -errno;
  res->fs_magic = (uint64_t) sfs.f_type & 0xffffffff;
  name = verify_fs_name (res->fs_magic);
  if (name)
    snprintf (res->fs_type, sizeof res->fs_type, "%s", name);
  return verify_read_mount (fd, st, res);
}

/* Check 1: a regular file or a block device. */
static int
check_type (const struct stat *st, struct verify_result *res)
{
  if (res->type == VERIFY_TYPE_REGULAR
      || res->type == VERIFY_TYPE_BLOCK_DEVICE)
    return 0;
  return verify_add_problem (res, VERIFY_NOT_REGULAR, VERIFY_ERROR,
                             0, 0,
                             "give the path of a swap file or of a block "
                             "device (nbdswap create makes a swap file)",
                             "%s: is %s, not a regular file or a block "
                             "device", res->path,
                             res->type == VERIFY_TYPE_DIRECTORY
                             ? "a directory" : "a special file");
}

/* Check 2: size 0, unaligned, too small. */
static int
check_size (const struct verify_options *opts, struct verify_result *res)
{
  uint64_t min = res->min_size;
  uint64_t a = res->dio_alignment, tail = res->size % a;
  char h[32];
  int r;

  if (res->size == 0)
    return verify_add_problem (res, VERIFY_SIZE_ZERO, VERIFY_ERROR, 0, 0,
                               "nbdswap create FILE SIZE --force",
                               "%s: is empty (size 0)", res->path);
  if (tail) {
    r = verify_add_problem (res, VERIFY_SIZE_UNALIGNED, VERIFY_ERROR,
                            res->size - tail, tail,
                            "recreate it with a size that is a multiple of "
                            "4096 (nbdswap create FILE SIZE --force)",
                            "%s: size %" PRIu64 " is not a multiple of %"
                            PRIu64 " bytes (the swap page and direct I/O "
                            "alignment): bytes %" PRIu64 "-%" PRIu64
                            " cannot be used", res->path, res->size, a,
                            res->size - tail, res->size - 1);
    if (r < 0)
      return r;
  }
  if (res->size < min)
    return verify_add_problem (res, VERIFY_SIZE_TOO_SMALL, VERIFY_ERROR,
                               0, res->size,
                               "recreate it larger: nbdswap create FILE "
                               "SIZE --force",
                               "%s: size %" PRIu64 " is below the minimum "
                               "swap area of %s (mkswap needs 10 pages)",
                               res->path, res->size,
                               verify_human_size (min, h, sizeof h));
  return 0;
}

/* Check 11: swap holds process memory.  Like swapon, a block device
 * may be group-readable (the "disk" group), a file may not. */
static int
check_permissions (const struct stat *st, struct verify_result *res)
{
  mode_t mask = S_ISBLK (st->st_mode) ? S_IRWXO : (S_IRWXG | S_IRWXO);

  if ((st->st_mode & mask) == 0)
    return 0;
  return verify_add_problem (res, VERIFY_PERMISSIONS, VERIFY_WARNING,
                             0, res->size,
                             S_ISBLK (st->st_mode) ? "chmod o-rwx DEVICE"
                             : "chmod 0600 FILE",
                             "%s: insecure permissions %04o: swap holds "
                             "process memory (keys, passwords) that "
                             "others could read", res->path,
                             (unsigned) (st->st_mode & 07777));
}

/* Check 7, encrypted by the filesystem, from the inode: ext4 and f2fs
 * do not flag the extents of an fscrypt file, and O_DIRECT on one
 * silently falls back to the page cache without inline encryption. */
static int
check_encrypt_flag (int flags, struct verify_result *res)
{
  size_t i;

  if (!(flags & FS_ENCRYPT_FL))
    return 0;
  for (i = 0; i < res->nr_problems; ++i)
    if (res->problems[i].code == VERIFY_ENCRYPTED)
      return 0;                 /* the extents said so already */
  return verify_add_problem (res, VERIFY_ENCRYPTED, VERIFY_ERROR,
                             0, res->size,
                             "put the swap file outside the encrypted "
                             "directory; nbdswap attach --encrypt protects "
                             "swapped memory instead",
                             "%s: is encrypted by the filesystem (fscrypt): "
                             "direct I/O to it goes through the page cache",
                             res->path);
}

/* Checks 7 (fscrypt) and 8 (btrfs: NOCOW, no compression) on the inode
 * flags.  Only btrfs must answer FS_IOC_GETFLAGS. */
static int
check_inode_flags (int fd, struct verify_result *res)
{
  bool btrfs = res->fs_magic == BTRFS_SUPER_MAGIC;
  int flags = 0, r;

  if (ioctl (fd, FS_IOC_GETFLAGS, &flags) == -1)
    return btrfs ? -errno : 0;
  r = check_encrypt_flag (flags, res);
  if (r < 0 || !btrfs)
    return r;
  if (!(flags & FS_NOCOW_FL)) {
    r = verify_add_problem (res, VERIFY_BTRFS_COW, VERIFY_ERROR,
                            0, res->size,
                            "NOCOW can only be set on an empty file: "
                            "nbdswap create FILE SIZE --force (or touch "
                            "NEW; chattr +C NEW; then write all of NEW)",
                            "%s: is on btrfs without the NOCOW attribute "
                            "(chattr +C): every write would allocate new "
                            "blocks (copy-on-write)", res->path);
    if (r < 0)
      return r;
  }
  if (flags & FS_COMPR_FL)
    return verify_add_problem (res, VERIFY_BTRFS_COMPRESSION, VERIFY_ERROR,
                               0, res->size,
                               "chattr -c does not rewrite data already "
                               "compressed: nbdswap create FILE SIZE "
                               "--force",
                               "%s: has compression enabled (chattr +c "
                               "or the compression property)", res->path);
  return 0;
}

/* Checks 3-7 on a local filesystem: FIEMAP, then SEEK_HOLE as a cross
 * check.  A shared extent is rechecked after syncfs: xfs clears its
 * reflink state lazily and btrfs drops a deleted snapshot's references
 * at commit. */
static int
check_extents (int fd, struct verify_result *res)
{
  struct extent_list list = { 0 };
  size_t i, before = res->nr_problems;
  bool shared = false;
  int r;

  r = verify_read_extents (fd, res->size, &list);
  for (i = 0; r == 0 && i < list.n; ++i)
    shared |= (list.v[i].flags & FIEMAP_EXTENT_SHARED) != 0;
  if (r == 0 && shared) {
    log_debug ("%s: shared extents: syncfs and read the map again",
               res->path);
    syncfs (fd);
    list.n = 0;
    r = verify_read_extents (fd, res->size, &list);
  }
  if (r == 0)
    r = verify_check_extents (&list, res);
  res->extents = list.v;
  res->nr_extents = list.n;
  if (r < 0)
    return r;
  res->extents_checked = true;
  /* SEEK_HOLE reports unwritten extents as holes on ext4 and xfs: only
   * cross-check a map that FIEMAP found clean. */
  if (res->nr_problems == before)
    r = verify_check_seek_holes (fd, res);
  return r;
}

/* Check 12: NFS.  No FIEMAP: count allocated blocks, look for holes,
 * refuse a soft mount. */
static int
check_nfs (int fd, struct verify_result *res)
{
  uint64_t allocated;
  char h1[32], h2[32];
  struct stat st;
  int r;

  res->limited = true;
  /* After the fdatasync, so that the server has counted every block. */
  if (fstat (fd, &st) == -1)
    return -errno;
  allocated = (uint64_t) st.st_blocks * 512;
  if (mount_has_option (res->mount_options, "soft")
      || mount_has_option (res->mount_options, "softerr")) {
    r = verify_add_problem (res, VERIFY_NFS_SOFT, VERIFY_ERROR, 0, res->size,
                            "mount the export with -o hard (the default)",
                            "%s: is on an NFS mount with the soft option "
                            "(%s): a soft mount can fail a write after a "
                            "timeout, and a swapped page would be lost",
                            res->path,
                            res->mount_point ? res->mount_point : "?");
    if (r < 0)
      return r;
  }
  if (allocated < res->size) {
    r = verify_add_problem (res, VERIFY_NFS_UNALLOCATED, VERIFY_ERROR,
                            0, res->size,
                            "write every block: nbdswap create FILE SIZE "
                            "--force",
                            "%s: only %s of %s are allocated on the NFS "
                            "server", res->path,
                            verify_human_size (allocated, h1, sizeof h1),
                            verify_human_size (res->size, h2, sizeof h2));
    if (r < 0)
      return r;
  }
  return verify_check_seek_holes (fd, res);
}

/* Checks 3-8 and 12 for a regular file, by filesystem. */
static int
check_regular (int fd, struct verify_result *res)
{
  int r;

  /* Flush dirty pages first: on NFS st_blocks then counts them, and
   * locally FIEMAP sees final extents.  fdatasync, not fsync: the data
   * and its allocation are all the checks read, and the monitor runs
   * this while the file is served.  On a lazytime mount the file's
   * times can be dirty in memory only (I_DIRTY_TIME), and a full fsync
   * turns them into an inode update (vfs_fsync_range calls
   * mark_inode_dirty_sync; ext4 journals it): a metadata transaction in
   * the middle of swap traffic at every re-verification, which the VM's
   * pressure-no-journal probe counted. */
  if (fdatasync (fd) == -1)
    return -errno;
  if (res->fs_magic == NFS_SUPER_MAGIC)
    return check_nfs (fd, res);
  r = check_extents (fd, res);
  if (r == -EOPNOTSUPP || r == -ENOTTY)
    r = verify_add_problem (res, VERIFY_NO_EXTENT_MAP, VERIFY_ERROR,
                            0, res->size,
                            "put the swap file on ext4, xfs, btrfs or NFS",
                            "%s: the filesystem (%s) cannot report the "
                            "file's extents (FIEMAP), so holes and shared "
                            "blocks cannot be ruled out", res->path,
                            res->fs_type[0] ? res->fs_type : "unknown");
  if (r == 0)
    r = check_inode_flags (fd, res);
  return r;
}

/* fd's file opened again read-only with O_DIRECT (through
 * /proc/self/fd, so that it is this very file), O_NOATIME where allowed
 * (owner_open); -1 with errno on failure. */
static int
reopen_direct (int fd, const char *path)
{
  char proc[64];
  int dfd;

  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  dfd = owner_open (proc, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (dfd == -1 && errno == ENOENT)        /* no /proc: the path will do */
    dfd = owner_open (path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  return dfd;
}

/* One aligned direct read at offset 0 through dfd: 0 or an errno. */
static int
read_aligned (int dfd, uint32_t alignment)
{
  void *buf = NULL;
  int err = posix_memalign (&buf, alignment, alignment);

  if (err == 0 && pread (dfd, buf, alignment, 0) == -1)
    err = errno;
  free (buf);
  return err;
}

/* Check 9: an aligned direct read.  Through fd itself when it is open
 * O_DIRECT already: the servers' descriptor is, and the monitor runs
 * this while the file is served.  A reopen walks /proc/self/fd/N, and
 * following that link updates its access time: a procfs inode marked
 * dirty (I_DIRTY_SYNC) from the monitor thread whenever memory pressure
 * had evicted it (the VM's pressure-no-journal probe, Linux 6.1).
 * Otherwise (nbdswap verify) through a reopened descriptor. */
static int
check_direct (int fd, struct verify_result *res)
{
  int flags = fcntl (fd, F_GETFL);
  int dfd = fd, err = 0;
  const char *what = "open";

  if (flags == -1 || !(flags & O_DIRECT))
    dfd = reopen_direct (fd, res->path);
  if (dfd == -1)
    err = errno;
  else if (res->size >= res->dio_alignment) {
    what = "an aligned read";
    err = read_aligned (dfd, res->dio_alignment);
  }
  if (dfd >= 0 && dfd != fd)
    close (dfd);
  res->direct_checked = true;
  if (err == 0)
    return 0;
  return verify_add_problem (res, VERIFY_NO_DIRECT, VERIFY_ERROR,
                             0, res->size,
                             "put the file on a filesystem with direct I/O "
                             "(ext4, xfs, btrfs, NFS), or serve it with "
                             "direct=false",
                             "%s: O_DIRECT %s failed: %s", res->path, what,
                             strerror (err));
}

/* Check 10a: an active kernel swap area. */
static int
check_kernel_swap (const struct stat *st, struct verify_result *res)
{
  char name[4096];
  bool active;
  int r;

  r = verify_find_kernel_swap ("/proc/swaps", st, &active, name, sizeof name);
  if (r < 0 || !active)
    return r;
  return verify_add_problem (res, VERIFY_KERNEL_SWAP, VERIFY_ERROR,
                             0, res->size,
                             "swapoff it first, or use another file",
                             "%s: is an active kernel swap area (%s in "
                             "/proc/swaps)", res->path, name);
}

/* Check 10b: another process holds a lock on the file (the plugin holds
 * an exclusive OFD write lock on the whole file while it serves). */
static int
check_lock (int fd, struct verify_result *res)
{
  struct flock fl = {
    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0,
  };
  char pid[32] = "";

  if (fcntl (fd, F_OFD_GETLK, &fl) == -1) {
    log_debug ("%s: F_OFD_GETLK: %m (lock check skipped)", res->path);
    return 0;
  }
  if (fl.l_type == F_UNLCK)
    return 0;
  if (fl.l_pid > 0)             /* -1 for an OFD lock: no single owner */
    snprintf (pid, sizeof pid, " (pid %d)", (int) fl.l_pid);
  return verify_add_problem (res, VERIFY_LOCKED, VERIFY_ERROR, 0, res->size,
                             "stop the server using it (nbdswap status "
                             "lists them), or use another file",
                             "%s: is already served by another process%s: "
                             "it holds a %s lock on the file", res->path,
                             pid, fl.l_type == F_WRLCK ? "write" : "read");
}

/* Check 13: a write through the filesystem updates the file's mtime and
 * ctime (at most once per clock tick; the servers open it O_NOATIME, so
 * reads update nothing).  On ext4 and xfs without lazytime that is a
 * metadata transaction in the middle of the server's write (ext4's
 * journal via ext4_dirty_inode, an xfs transaction).  When the same
 * kernel swaps through the server (local swap, a sidecar), a task that
 * holds the journal and waits in reclaim for swap-out waits on the
 * server, which waits on the journal: the VM's pressure test hung so,
 * the server in wait_transaction_locked.  With lazytime the times stay in
 * memory.  Not btrfs: it journals the times whatever the mount options
 * (btrfs_update_time), and joins a transaction at every NOCOW write's
 * completion anyway (docs/verify.md); not NFS (the times are the
 * server's) nor tmpfs (no transaction). */
static int
check_timestamps (const struct stat *st, struct verify_result *res)
{
  bool journaled = res->fs_magic == EXT4_SUPER_MAGIC ||
    res->fs_magic == XFS_SUPER_MAGIC;

  if (!S_ISREG (st->st_mode) || !journaled || res->mount_options == NULL ||
      mount_has_option (res->mount_options, "lazytime"))
    return 0;
  return verify_add_problem (res, VERIFY_NO_LAZYTIME, VERIFY_WARNING,
                             0, res->size,
                             "mount -o remount,lazytime MOUNTPOINT (and "
                             "add lazytime to its /etc/fstab entry)",
                             "%s: %s is mounted without lazytime: every "
                             "write the server makes also updates the "
                             "file's times in a filesystem transaction, "
                             "which can wait for memory; where this machine "
                             "swaps through the server itself (local swap, "
                             "a sidecar) that can deadlock", res->path,
                             res->mount_point ? res->mount_point : "its "
                             "filesystem");
}

/* Check 14: a block device someone else uses: a filesystem mounted on
 * it or on a partition, swap on a partition (the device's own swap is
 * check 10a), a dm or md device on top (an LVM physical volume).  The
 * servers' O_EXCL open refuses all of these anyway (backing.h); this
 * puts them in nbdswap verify's report. */
static int
check_device_use (const struct stat *st, struct verify_result *res)
{
  struct blockdev_user u;
  const char *fix;
  char cause[PATH_MAX + 256];
  int r;

  if (!S_ISBLK (st->st_mode))
    return 0;
  r = blockdev_find_user (st->st_rdev, &u);
  if (r < 0 || u.use == BLOCKDEV_FREE
      || (u.use == BLOCKDEV_SWAP && u.part[0] == '\0'))
    return r;
  fix = blockdev_describe (&u, cause, sizeof cause);
  return verify_add_problem (res, VERIFY_DEVICE_IN_USE, VERIFY_ERROR, 0,
                             res->size, fix, "%s: %s", res->path, cause);
}

/* Everything after the type check, in the order. */
static int
run_checks (int fd, const struct stat *st, const struct verify_options *opts,
            struct verify_result *res)
{
  int r;

  if (res->type == VERIFY_TYPE_BLOCK_DEVICE
      && ioctl (fd, BLKGETSIZE64, &res->size) == -1)
    return -errno;
  r = check_size (opts, res);
  if (r == 0 && res->type == VERIFY_TYPE_REGULAR && res->size > 0)
    r = check_regular (fd, res);
  if (r == 0 && opts->direct)
    r = check_direct (fd, res);
  if (r == 0)
    r = check_kernel_swap (st, res);
  if (r == 0)
    r = check_lock (fd, res);
  if (r == 0)
    r = check_device_use (st, res);
  if (r == 0)
    r = check_permissions (st, res);
  if (r == 0)
    r = check_timestamps (st, res);
  return r;
}

/* Fills *res: file type, filesystem and mount, then the checks. */
int
verify_fd (int fd, const char *path, const struct verify_options *opts,
           struct verify_result *res)
{
  struct verify_options defaults;
  struct stat st;
  int r;

  if (opts == NULL) {
    verify_options_init (&defaults);
    opts = &defaults;
  }
  memset (res, 0, sizeof *res);
  if (fstat (fd, &st) == -1)
    return -errno;
  res->path = strdup (path);
  if (res->path == NULL)
    return -ENOMEM;
  res->type = file_type (st.st_mode);
  if (res->type == VERIFY_TYPE_REGULAR)
    res->size = st.st_size;
  res->dio_alignment = dio_alignment (fd, opts);
  res->min_size = opts->min_size ? opts->min_size : VERIFY_MIN_SIZE;
  r = read_filesystem (fd, &st, res);
  if (r == 0)
    r = check_type (&st, res);
  if (r == 0 && res->nr_errors == 0)
    r = run_checks (fd, &st, opts, res);
  if (r < 0) {
    verify_result_free (res);
    return r;
  }
  res->verdict = res->nr_errors ? VERIFY_UNFIT : VERIFY_FIT;
  return 0;
}
