/* nbdswap: creation of a swap backing file that passes verification.
 *
 * create_file makes the file from nothing: refuse an existing path
 * (unless force, and then only a regular file), check free space, create
 * it empty with mode 0600, on btrfs set NOCOW and clear compression
 * before any data, allocate, write every block with zeroes through
 * O_DIRECT in large aligned chunks (so that no extent stays unwritten),
 * fsync, and run verify_fd on the result.
 *
 * It does no terminal I/O: progress goes to a callback, and a cancel flag
 * (set by the caller's SIGINT handler) stops it, removing the partial
 * file.  Errors are logged through log.h.
 */
#ifndef NBDSWAP_CREATE_H
#define NBDSWAP_CREATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "verify.h"

struct create_progress {
  uint64_t done;                /* bytes written so far */
  uint64_t total;               /* the file size */
  double elapsed;               /* seconds since writing started */
};

/* Called after every chunk and once at the end (done == total). */
typedef void (*create_progress_fn) (const struct create_progress *p,
                                    void *opaque);

struct create_options {
  bool force;                   /* replace an existing regular file */
  const volatile sig_atomic_t *cancel; /* non-zero: stop (may be NULL) */
  create_progress_fn progress;  /* may be NULL */
  void *progress_opaque;
  uint32_t chunk_size;          /* bytes per write; 0: 8 MiB */
  struct verify_options verify; /* for the final verification */
};

/* Fills *opts with the defaults (no force, no progress, no cancel). */
extern void create_options_init (struct create_options *opts);

/* Creates path with size bytes (a non-zero multiple of 4096, at least
 * VERIFY_MIN_SIZE) and verifies it into *res.  Returns 0 when the file
 * was created and verified (the verdict is in *res, to be freed with
 * verify_result_free), or -errno: -EINVAL bad size, -EEXIST exists
 * without force (or not a regular file), -EBUSY the existing file is
 * kernel swap or served (even with force), -ENOSPC not enough free space,
 * -ECANCELED cancelled;
 * on error no file is left behind. */
extern int create_file (const char *path, uint64_t size,
                        const struct create_options *opts,
                        struct verify_result *res);

/* Parses a size: a decimal number of bytes with an optional binary
 * suffix K, M, G, T (powers of 1024, either case, "KiB" etc. also
 * accepted).  "KB", "MB"... are refused as ambiguous (1000 or 1024?).
 * Returns 0, -EINVAL (not a size) or -ERANGE (over 2^64-1 bytes). */
extern int create_parse_size (const char *s, uint64_t *size);

#endif /* NBDSWAP_CREATE_H */
