/* nbdswap: verification of a swap backing file.
 *
 * A swap backing file must never need block allocation, copy-on-write or
 * extent conversion while it is serving: under memory pressure that can
 * deadlock the machine.  verify_fd walks the file once (fdatasync, then
 * FIEMAP with FIEMAP_FLAG_SYNC, SEEK_HOLE, statfs, inode flags, mount
 * options, /proc/swaps, OFD locks) and records every problem it finds,
 * each with a message naming the file and the offset range and a fix.
 * It leaves the inode alone (no fsync, no access time), so that the
 * monitor can re-verify a file while it is served (monitor.h); only a
 * map with shared extents is read again after a syncfs, which also
 * writes the file's times.
 *
 * Block devices are accepted: they have no extents to check, so only the
 * size, O_DIRECT, kernel swap, lock and device-in-use (a filesystem
 * mounted on it or a partition, swap on a partition, a dm/md device on
 * top: blockdev.h) checks apply, and the report says so.
 *
 * On NFS, FIEMAP is not available: the verification is "limited" (shared
 * or compressed extents on the server cannot be seen from here), the
 * allocation is checked with st_blocks and SEEK_DATA/SEEK_HOLE, and a
 * soft mount is refused.  The extent list is then empty.
 *
 * This code never exits and does no terminal I/O; it logs (debug only)
 * through log.h, and the printers write to the FILE the caller passes.
 */
#ifndef NBDSWAP_VERIFY_H
#define NBDSWAP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* mkswap refuses a swap area of fewer than 10 pages (one header page and
 * at least nine usable ones); with 4 KiB pages that is 40 KiB. */
#define VERIFY_MIN_SIZE (40 * 1024)

/* The alignment used when the caller does not know the DIO alignment and
 * the kernel does not report one (statx STATX_DIOALIGN, Linux 6.1). */
#define VERIFY_DEFAULT_ALIGNMENT 4096

/* Every reason a file can be refused or warned about.  The number in the
 * comment is the check in the "Verified backing files" issue.  The
 * string form (verify_code_name) is part of the JSON output: stable. */
enum verify_code {
  VERIFY_NOT_REGULAR,           /* 1  "not-regular" */
  VERIFY_SIZE_ZERO,             /* 2  "size-zero" */
  VERIFY_SIZE_UNALIGNED,        /* 2  "size-unaligned" */
  VERIFY_SIZE_TOO_SMALL,        /* 2  "size-too-small" */
  VERIFY_HOLE,                  /* 3  "hole" */
  VERIFY_DELALLOC,              /* 4  "delalloc" */
  VERIFY_UNWRITTEN,             /* 5  "unwritten" */
  VERIFY_SHARED,                /* 6  "shared" */
  VERIFY_INLINE,                /* 7  "inline" */
  VERIFY_ENCODED,               /* 7  "encoded" */
  VERIFY_ENCRYPTED,             /* 7  "encrypted" */
  VERIFY_NOT_ALIGNED,           /* 7  "not-aligned" */
  VERIFY_BTRFS_COW,             /* 8  "btrfs-cow" */
  VERIFY_BTRFS_COMPRESSION,     /* 8  "btrfs-compression" */
  VERIFY_NO_DIRECT,             /* 9  "no-direct" */
  VERIFY_KERNEL_SWAP,           /* 10 "kernel-swap" */
  VERIFY_LOCKED,                /* 10 "locked" */
  VERIFY_PERMISSIONS,           /* 11 "permissions" (a warning) */
  VERIFY_NFS_SOFT,              /* 12 "nfs-soft" */
  VERIFY_NFS_UNALLOCATED,       /* 12 "nfs-unallocated" */
  VERIFY_NO_EXTENT_MAP,         /* "no-extent-map": FIEMAP unsupported */
  VERIFY_NO_LAZYTIME,           /* 13 "no-lazytime" (a warning) */
  VERIFY_DEVICE_IN_USE,         /* 14 "device-in-use": mounted, swap on a
                                 * partition, dm/md on top */
};

enum verify_severity {
  VERIFY_ERROR,                 /* the file must not be served */
  VERIFY_WARNING,               /* served, but the operator should act */
};

/* One problem.  offset/length is the byte range concerned (0/size for
 * whole-file problems).  message names the file and the range; fix is
 * what to do, with the file's own path and a usable size filled in. */
struct verify_problem {
  enum verify_code code;
  enum verify_severity severity;
  uint64_t offset;
  uint64_t length;
  char *message;
  char *fix;
};

/* One extent as FIEMAP reported it, physically contiguous neighbours
 * with equal flags merged (so that a filesystem re-splitting an extent
 * without moving data does not look like a change).  Sorted by logical
 * offset, non-overlapping. */
struct verify_extent {
  uint64_t logical;
  uint64_t physical;
  uint64_t length;
  uint32_t flags;               /* FIEMAP_EXTENT_*, without LAST/MERGED */
};

enum verify_file_type {
  VERIFY_TYPE_REGULAR,
  VERIFY_TYPE_BLOCK_DEVICE,
  VERIFY_TYPE_DIRECTORY,
  VERIFY_TYPE_OTHER,
};

struct verify_options {
  bool direct;                  /* O_DIRECT required (false: skip check 9) */
  uint32_t dio_alignment;       /* 0: ask the kernel, else 4096 */
  uint64_t min_size;            /* 0: VERIFY_MIN_SIZE */
};

/* Fills *opts with the defaults: direct required, alignment and minimum
 * size decided by verify_fd. */
extern void verify_options_init (struct verify_options *opts);

enum verify_verdict {
  VERIFY_FIT,                   /* no error (there may be warnings) */
  VERIFY_UNFIT,                 /* at least one error */
};

struct verify_result {
  enum verify_verdict verdict;
  char *path;
  enum verify_file_type type;
  uint64_t size;
  uint32_t dio_alignment;       /* the alignment the checks used */
  uint64_t min_size;            /* the minimum size the checks used */
  bool direct_checked;          /* false when direct=false */
  char fs_type[32];             /* "ext4", "xfs", "btrfs", "nfs", ... */
  uint64_t fs_magic;            /* statfs f_type */
  char *mount_point;            /* from mountinfo, NULL if not found */
  char *mount_options;          /* per-mount and superblock options */
  bool limited;                 /* NFS: extents on the server unseen */
  bool extents_checked;         /* false for block devices, NFS */
  size_t nr_errors;
  size_t nr_warnings;
  size_t nr_omitted;            /* problems past VERIFY_MAX_PER_CODE */
  struct verify_problem *problems;
  size_t nr_problems;
  struct verify_extent *extents;
  size_t nr_extents;
};

/* At most this many problems of one code are recorded; further ones
 * (a very fragmented sparse file) are only counted in nr_omitted. */
#define VERIFY_MAX_PER_CODE 16

/* Verifies the open file fd (any access mode; path is used in messages
 * and to find the file in /proc/swaps).  fdatasyncs the file.  Returns 0
 * when the verification ran (the verdict is in *res, which the caller
 * frees with verify_result_free), or -errno when it could not run (then
 * *res holds nothing to free).  Locks held through fd's own open file
 * description do not count as "served by another process", so the plugin
 * re-verifies through the fd that holds its lock (owner_lock: an
 * exclusive OFD write lock on the whole file; flock(2) locks would be
 * invisible to this check). */
extern int verify_fd (int fd, const char *path,
                      const struct verify_options *opts,
                      struct verify_result *res);

/* Pins the file's extent map in the filesystem's own cache where it can:
 * on ext4, loads the whole map into the extent status cache and marks the
 * inode precached, which the cache's shrinker passes over unless nothing
 * else can be freed.  Otherwise, under memory pressure, ext4 may drop
 * the cached map and have to read it from disk (an allocation and a read
 * on the swap-out path, with the inode lock held), and a write whose
 * range it then finds only partly cached takes the inode lock
 * exclusively.  res is fd's verification (its filesystem and path).
 * Logs what it did; returns 1 when pinned, 0 when the filesystem has no
 * such cache to pin, -errno on failure (a warning: serving goes on). */
extern int verify_precache_extents (int fd, const struct verify_result *res);

/* Frees what verify_fd allocated in *res (not res itself). */
extern void verify_result_free (struct verify_result *res);

/* True when both results describe the same file size and extent map:
 * same extents at the same physical places with the same flags. */
extern bool verify_same_map (const struct verify_result *a,
                             const struct verify_result *b);

/* The stable name of a code ("hole", "shared", ...), see enum above. */
extern const char *verify_code_name (enum verify_code code);

/* Logs the result through log.h (for the plugin): each problem as an
 * error or warning line "MESSAGE (fix: FIX)", then one info line with the
 * verdict, filesystem, size and extent count, noting a limited check. */
extern void verify_log_result (const struct verify_result *res);

/* A human report: file, filesystem, size, extents, problems, verdict. */
extern void verify_print_text (FILE *fp, const struct verify_result *res);

/* The same as one JSON object (stable keys, documented in docs/verify.md)
 * followed by a newline. */
extern void verify_print_json (FILE *fp, const struct verify_result *res);

#endif /* NBDSWAP_VERIFY_H */
