/* nbdswap: creation of a swap backing file that passes verification.
 *
 * create_file makes the file from nothing: refuse an existing path
 * (unless force, and then only a regular file), check free space, create
 * it empty with mode 0600, on btrfs set NOCOW and clear compression
 * before any data, allocate, write every block with zeroes through
 * O_DIRECT in large aligned chunks (so that no extent stays unwritten),
 * fsync, and run verify_fd on the result.
 *
 * create_in_dir makes many such files of one size in one directory (a
 * fleet's exports): it refuses bad names, a missing directory and a
 * filesystem without room for all of them before it writes anything,
 * then makes each file with create_file, reporting progress over the
 * whole batch.
 *
 * It does no terminal I/O: progress goes to a callback, and a cancel flag
 * (set by the caller's SIGINT handler) stops it, removing the partial
 * file.  Errors are logged through log.h.
 */
#ifndef NBDSWAP_CREATE_H
#define NBDSWAP_CREATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
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

/* What became of one name of create_in_dir. */
enum create_state {
  CREATE_PENDING,               /* not tried: the batch stopped before it */
  CREATE_MADE,                  /* created and verified: the verdict in res */
  CREATE_SKIPPED,               /* refused, nothing written: err is -EEXIST
                                 * (exists, no force) or -EBUSY (in use) */
  CREATE_FAILED,                /* failed (err), the partial file removed */
};

struct create_item {
  const char *name;             /* set by the caller (borrowed): a file name */
  char *path;                   /* DIR/NAME, made by create_in_dir */
  enum create_state state;
  int err;                      /* -errno when SKIPPED or FAILED */
  struct verify_result res;     /* when MADE */
};

/* Creates dir/items[i].name for each of the n items, each size bytes as
 * create_file makes it (opts->force replaces existing regular files).
 * Refused before anything is written, with nothing made (-errno): a name
 * that is empty, ".", "..", holds a '/' or is given twice (-EINVAL), a
 * size create_file would refuse (-EINVAL), dir missing (-ENOENT) or not
 * a directory (-ENOTDIR), less free space than all the files to make
 * need together (-ENOSPC).  A name that exists already is skipped (unless
 * force).  The files are then made in order; the first failure other
 * than a skip stops the batch (a system in trouble: no space, I/O
 * errors), the names after it stay CREATE_PENDING.  opts->progress sees
 * the whole batch as one: done and total over all the files to make.
 * Returns 0 when the batch ran (each item says what became of it),
 * -ECANCELED when opts->cancel stopped it (the file being made removed,
 * the ones made before kept), or a refusal above.  The caller frees the
 * items with create_items_free whatever the result. */
extern int create_in_dir (const char *dir, struct create_item *items,
                          size_t n, uint64_t size,
                          const struct create_options *opts);

/* Frees what create_in_dir allocated in the n items. */
extern void create_items_free (struct create_item *items, size_t n);

/* Logs and returns -EINVAL unless size can make a swap area: a non-zero
 * multiple of 4096, at least VERIFY_MIN_SIZE, at most INT64_MAX; what
 * names the file or directory in the message. */
extern int create_check_size (const char *what, uint64_t size);

/* The bytes available to an unprivileged user on dir's filesystem into
 * *avail; logs and returns -errno when statvfs fails. */
extern int create_space_available (const char *dir, uint64_t *avail);

/* Parses a size: a decimal number of bytes with an optional binary
 * suffix K, M, G, T (powers of 1024, either case, "KiB" etc. also
 * accepted).  "KB", "MB"... are refused as ambiguous (1000 or 1024?).
 * Returns 0, -EINVAL (not a size) or -ERANGE (over 2^64-1 bytes). */
extern int create_parse_size (const char *s, uint64_t *size);

#endif /* NBDSWAP_CREATE_H */
