/* nbdswap: the monitor thread of the serving process: re-verification
 * of the backing files, and statistics reports.  It runs its owner's
 * calls (backing.c for one file, exports.c for a set): what it does is
 * theirs, when it does it is the monitor's.
 *
 * Re-verification.  A file was verified at start, but a defrag,
 * balance, dedupe or snapshot can later move or share its extents: the
 * next swap-out would then make the filesystem allocate or copy under
 * memory pressure.  The thread re-verifies the file every `recheck=`
 * seconds and whenever the server gets SIGHUP; if the extent map changed
 * or the file became unfit, it logs a loud error and from then on writes
 * fail with EIO (reads still work, so the client can swap pages back in).
 *
 * Statistics.  On SIGUSR1 and at exit the counters (stats.h) are written
 * to `stats-file=` (if given) and logged.
 *
 * The thread allocates (verify_fd does); it is never on the I/O path,
 * which only reads one atomic flag.  Signal handlers only write a byte
 * to the thread's pipe.
 */
#ifndef NBDSWAP_MONITOR_H
#define NBDSWAP_MONITOR_H

#include <stdbool.h>

struct monitor_params {
  unsigned recheck;                     /* seconds; 0: on request only */
  /* Re-verify: every recheck seconds (requested false), and on a
   * request, SIGHUP (requested true: a set also re-scans its
   * directory then). */
  void (*recheck_fn) (void *arg, bool requested);
  void (*report_stats) (void *arg);     /* called on a stats request */
  void *arg;                            /* theirs */
};

/* Start the thread.  Returns 0 or -errno. */
extern int monitor_start (const struct monitor_params *p);

/* monitor_start, then monitor_catch_signals; what failed is logged.
 * 0 or -1. */
extern int monitor_serve (const struct monitor_params *p);

/* Stop and join the thread (if started). */
extern void monitor_stop (void);

/* Ask for a re-verification / a stats report now.  Async-signal-safe. */
extern void monitor_request_recheck (void);
extern void monitor_request_stats (void);

/* Route SIGHUP to a recheck and SIGUSR1 to a stats report (SA_RESTART).
 * 0, or -1 with errno set. */
extern int monitor_catch_signals (void);

/* How many re-verifications have completed. */
extern unsigned monitor_rechecks (void);

#endif /* NBDSWAP_MONITOR_H */
