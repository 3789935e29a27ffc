/* nbdswap: who else uses a block device.
 *
 * A block device served as swap must belong to the server alone.  The
 * servers open it with O_EXCL (backing.h), the claim mount and swapon
 * also take, so the kernel itself refuses the open (EBUSY) while a
 * filesystem is mounted on it or on one of its partitions, it is a swap
 * area, a device-mapper or md device sits on it (an LVM physical volume,
 * dm-crypt), or another server holds it, whatever device node each of
 * them opened.  EBUSY does not say which: this module finds out, from
 * /proc/swaps, /proc/self/mountinfo, sysfs (partitions, holders) and
 * /proc/PID/fd, so that the refusal names the cause and its fix.
 * nbdswap verify asks it too, for the report of a device nobody claims
 * exclusively yet.
 */
#ifndef NBDSWAP_BLOCKDEV_H
#define NBDSWAP_BLOCKDEV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum blockdev_use {
  BLOCKDEV_FREE,                /* none of the below was seen */
  BLOCKDEV_SWAP,                /* an active swap area (/proc/swaps) */
  BLOCKDEV_MOUNTED,             /* a mounted filesystem (mountinfo) */
  BLOCKDEV_HELD,                /* a dm or md device on top (sysfs holders) */
};

/* A use of the device or of one of its partitions. */
struct blockdev_user {
  enum blockdev_use use;
  char part[64];                /* the partition used ("loop0p1"), or "" */
  char what[PATH_MAX];          /* the swap area's name, the mount point,
                                 * or the holder ("dm-3") */
  char detail[128];             /* the filesystem type, or the holder's
                                 * device-mapper name ("vg-swap"), or "" */
};

/* Finds the first use of the block device rdev or of a partition of it:
 * swap, then mounts, then holders.  Returns 0 (u->use BLOCKDEV_FREE when
 * nothing was seen) or -errno when a system file cannot be read. */
extern int blockdev_find_user (dev_t rdev, struct blockdev_user *u);

/* Formats the use as a cause ("is mounted on /srv (ext4)", "its
 * partition loop0p1 is an active swap area (...)") into buf; returns the
 * fix, a constant string. */
extern const char *blockdev_describe (const struct blockdev_user *u,
                                      char *buf, size_t len);

/* Another process that has rdev open, by /proc/PID/fd (its command name
 * in comm); 0 when none is visible from here. */
extern pid_t blockdev_find_opener (dev_t rdev, char *comm, size_t len);

/* Logs why path, a block device an O_EXCL open refused with EBUSY, is
 * busy: its use above, else the process holding it, with the fix. */
extern void blockdev_log_busy (const char *path, dev_t rdev);

/* Whether the block device rdev is a loop device or is made of one: a
 * partition of one, or a dm or md device with one among its slaves, at
 * any depth (LVM on a loop device, dm-crypt over that).  Its I/O then
 * goes to a file.  The loop device's name ("loop3") into name (left
 * as it was when false).  A loop
 * device itself is known by its major number; one below another device
 * only through sysfs (false when it does not show one).  Not seen: other
 * devices whose I/O may go to a file of this machine (nbd, ublk, an
 * iSCSI target here). */
extern bool blockdev_over_loop (dev_t rdev, char *name, size_t len);

/* Reads sys and proc instead of /sys and /proc (the unit test's fake
 * trees); NULL-free, borrowed. */
extern void blockdev_set_roots (const char *sys, const char *proc);

#endif /* NBDSWAP_BLOCKDEV_H */
