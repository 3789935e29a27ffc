/* nbdswap: re-verifying the backing file while it is served.
 *
 * The file was verified at start, but a defrag, balance, dedupe or
 * snapshot can later move or share its extents: the next swap-out would
 * then make the filesystem allocate or copy under memory pressure.  A
 * thread re-verifies the file every `recheck=` seconds and whenever the
 * server gets SIGHUP; if the extent map changed or the file became unfit,
 * it logs a loud error and from then on writes fail with EIO (reads still
 * work, so the client can swap pages back in).
 *
 * The thread allocates (verify_fd does); it is never on the I/O path,
 * which only reads one atomic flag.
 */
#ifndef NBDSWAP_RECHECK_H
#define NBDSWAP_RECHECK_H

#include <stdbool.h>

#include "verify.h"

/* Start the thread.  baseline is the result verified at start (kept by
 * the caller for the thread's life).  interval 0: on SIGHUP only.
 * Returns 0 or -errno. */
extern int recheck_start (int fd, const struct verify_options *opts,
                          const struct verify_result *baseline,
                          unsigned interval);

/* Stop and join the thread (if started). */
extern void recheck_stop (void);

/* Ask for a re-verification now.  Async-signal-safe (SIGHUP handler). */
extern void recheck_request (void);

/* How many re-verifications have completed (for tests and stats). */
extern unsigned recheck_count (void);

/* True once the map changed: writes must fail with EIO. */
extern bool recheck_map_changed (void);

#endif /* NBDSWAP_RECHECK_H */
