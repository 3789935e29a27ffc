/* nbdswap: the backing file of a serving process, from open to close.
 *
 * Both front ends (the nbdkit plugin, the native server) start the same
 * way, through this module:
 *
 *   backing_open     open (O_DIRECT, O_NOATIME where allowed, O_CLOEXEC,
 *                    O_EXCL for a block device: blockdev.h names who has
 *                    it when that fails), learn the O_DIRECT alignment and
 *                    prove it with one direct read, learn the size (a
 *                    regular file or a block device; whole 4 KiB pages
 *                    and O_DIRECT blocks, a device's logical block at
 *                    most a page);
 *   backing_claim    take the owner lock (owner.h), verify the file fully
 *                    (verify.h), refuse an unfit one, pin its extent map;
 *   backing_recheck  re-verify against the map verified by
 *                    backing_claim; a changed map refuses writes;
 *   backing_monitor_start
 *                    the monitor thread (monitor.h) for a process
 *                    serving this one file: backing_recheck every
 *                    recheck seconds and on SIGHUP, stats on SIGUSR1;
 *   backing_monitor_stop, backing_close
 *                    the last stats report, then the descriptor.
 *
 * Every failure is logged here, once, in the "op: object: %m" form with
 * its fix; where the fix depends on the front end (the plugin can serve
 * through the page cache, the native server cannot), the front end gives
 * its text in struct backing.  The caller only learns the category
 * (enum backing_status), from which the nbdswap command picks its exit
 * status.
 *
 * A process may hold many (exports.h: a directory of exports); the
 * monitor thread is one per process, so backing_monitor_start is for a
 * process serving one file, and a set runs the monitor itself.
 */
#ifndef NBDSWAP_BACKING_H
#define NBDSWAP_BACKING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dioalign.h"
#include "stats.h"
#include "verify.h"

/* What a failed step says to the caller (it was logged already). */
enum backing_status {
  BACKING_OK = 0,
  /* The file must not be served: missing, not a regular file or block
   * device, an active kernel swap file, no direct I/O, a wrong size,
   * served by another process, or unfit (the verification's errors). */
  BACKING_UNFIT = -1,
  /* Something else failed (memory, a system call, the verification could
   * not run): the file itself may be fine. */
  BACKING_SYSTEM = -2,
};

struct backing {
  /* Set by the caller before backing_open; the strings are borrowed and
   * must outlive the struct. */
  const char *path;             /* absolute: the file or block device */
  bool direct;                  /* O_DIRECT (false: through the page cache) */
  /* NULL: when read-write is refused, open read-only (with a warning:
   * clients cannot write).  Else the file is opened read-write only, and
   * an open that fails says this note too ("the native server serves
   * read-write only ..."). */
  const char *read_write_only;
  /* Appended to the two O_DIRECT refusals: how to serve without direct
   * I/O (", or add direct=false ..."), or why that is not offered. */
  const char *no_direct_fix;
  const char *stats_path;       /* the JSON counters file, or NULL */
  struct stats *stats;          /* reported, rechecks counted: &stats */
  /* Where a changed map refuses writes (the request target's refuse,
   * REQ_REFUSE_WRITES); NULL: nowhere, only the log line. */
  atomic_uint *refuse;
  unsigned recheck;             /* re-verify every N seconds; 0: on SIGHUP */
  /* Called by each stats report after the "stats:" line, for the front
   * end's own counters; NULL for none. */
  void (*report_extra) (void);

  /* Set by backing_open. */
  int fd;                       /* -1 when closed */
  bool writable;                /* false: opened read-only */
  bool lock_busy;               /* another holder has it: try again later */
  struct dio_align dio;         /* {1, 1} when !direct */
  uint64_t size;                /* bytes, a whole number of pages */

  /* Set by backing_claim: the verification at start, the baseline that
   * re-verification compares with. */
  struct verify_options verify;
  struct verify_result verified;
  bool have_verified;
  char over_loop[64];           /* a block device made of a loop device:
                                   its name (blockdev_over_loop), or "" */
  bool monitoring;              /* backing_monitor_start succeeded */
  bool map_changed;             /* backing_recheck found it changed */
};

/* Zero *b, with direct I/O on and no descriptor; the caller then sets
 * path and what else it needs. */
extern void backing_init (struct backing *b);

/* Open b->path, prove O_DIRECT works with the learned alignment, and
 * learn the size. */
extern enum backing_status backing_open (struct backing *b);

/* Lock the file (one server per file), verify it fully through the locked
 * descriptor, refuse it if unfit, and pin its extent map. */
extern enum backing_status backing_claim (struct backing *b);

/* Re-verify the file against the map of backing_claim, through the
 * served descriptor; counted in b->stats.  The first time the map changed
 * or the file became unfit: one loud error, and writes refused (*b->refuse).
 * Run by the monitor thread (it allocates). */
extern void backing_recheck (struct backing *b);

/* Start the monitor thread and route SIGHUP (recheck) and SIGUSR1
 * (stats) to it.  Call after any fork. */
extern enum backing_status backing_monitor_start (struct backing *b);

/* Stop the monitor thread; if it ran, report the stats a last time. */
extern void backing_monitor_stop (struct backing *b);

/* The counters: a "stats: ..." log line, the front end's extra lines,
 * and the JSON file written atomically. */
extern void backing_report_stats (struct backing *b);

/* Whether swap of this machine through b can stall under global memory
 * exhaustion: b's I/O can wait for the kernel's shared bio pool
 * (fs_bio_set), the pool this machine's own swap-outs to an nbd device
 * hold until the server answers.  So it is for a regular file on a
 * filesystem whose direct I/O takes its bios from there (ext4, xfs,
 * f2fs; not btrfs, which has its own, nor NFS, which sends none), and
 * for a block device whose own pool (blkdev_dio_pool) is not the whole
 * way: its node on another filesystem than /dev's devtmpfs (a read or
 * write updates the node's times, and on ext4 or xfs that is a journal
 * transaction), or a loop device below it (its I/O goes to a file).
 * True with what b is, to follow "PATH is ", in what (at least 128
 * bytes: "a file on ext4", "a block device over loop3, whose I/O goes to
 * a file"); a front end says it for a client that may be this machine
 * (peer.h). */
extern bool backing_shares_swap_pool (const struct backing *b, char *what,
                                      size_t len);

/* Whether b is a block device whose direct I/O keeps off that pool all
 * the way (the converse of the above for a block device).  The native
 * server issues such a device's operations inline for every client. */
extern bool backing_own_bio_pool (const struct backing *b);

/* Free the verification and close the descriptor (idempotent). */
extern void backing_close (struct backing *b);

#endif /* NBDSWAP_BACKING_H */
