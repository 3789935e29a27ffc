/* nbdswap: bounded retry of transient I/O errors.
 *
 * A swap server must not turn a passing storage problem into a lost
 * page: the kernel kills the process whose page cannot be swapped in.
 * So errors that can clear with time are retried with exponential
 * backoff (1 ms doubling to 1 s) until retry-timeout seconds have passed
 * since the first failure of the request; only then EIO.  At most one
 * log line per second per kind of error; every retry is counted.
 *
 * Retried, and why:
 *   EAGAIN, EINTR, ENOMEM, ENOBUFS, ETIMEDOUT  memory pressure and NFS:
 *            a write can fail with these for a while and then succeed
 *            (the 2013 swap-over-NFS thread in shared/reference).
 *   ENOLINK  the block layer's "recoverable transport" error
 *            (BLK_STS_TRANSPORT): a path to the disk went away and may
 *            come back (iSCSI, NVMe over fabrics without multipath).
 *   EIO      a failing device or path: a cable, a controller reset, a
 *            SAN fail-over, dm-multipath with no path left.  Such windows
 *            last seconds, and waiting them out is what dm-multipath's
 *            queue_if_no_path does for the same reason.  A disk that is
 *            really dead costs each request retry-timeout seconds before
 *            the same EIO.  retry-eio=false reports EIO at once (for a
 *            stack that already retries below us, e.g. dm-multipath).
 *            Never for fdatasync (retry_after_sync).
 * Not retried, and why:
 *   ESTALE     the NFS file handle is dead (the file was removed or
 *              replaced on the server): no retry on this descriptor can
 *              ever succeed, and a reopened path is another file.
 *   EREMOTEIO  the target rejected the command (BLK_STS_TARGET), or an
 *              NFS server answered a status the client does not know:
 *              the same request gets the same answer.
 *   ENODATA    an unreadable sector (BLK_STS_MEDIUM): it does not heal.
 *   ENOSPC, EDQUOT, EROFS, EBADF, EINVAL...  not transient: the file is
 *              fully allocated, so these mean a configuration problem.
 */
#ifndef NBDSWAP_RETRY_H
#define NBDSWAP_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_TIMEOUT_DEFAULT 60

/* What is retried and for how long: the serving parameters
 * retry-timeout= and retry-eio=, handed to the core by the front end. */
struct retry_policy {
  unsigned timeout;             /* seconds; 0 disables retry */
  bool eio;                     /* EIO is retried too (default true) */
};
#define RETRY_POLICY_DEFAULT { RETRY_TIMEOUT_DEFAULT, true }

/* Per-request state; start zeroed (RETRY_INIT).  When retry gives up, it
 * says why here, for the caller's one log line of the failure. */
struct retry {
  uint64_t deadline_ns;         /* 0 until the first failure */
  uint32_t delay_us;
  int expired;                  /* the transient errno that outlived the budget */
  bool sync_eio;                /* a failed flush's EIO, never retried */
};
#define RETRY_INIT { 0, 0, 0, false }

/* True for the errors (positive errno) that are worth retrying. */
extern bool retry_is_transient (const struct retry_policy *p, int err);

/* Called after an operation failed with -err.  Sleeps and returns 0 when
 * the operation should be tried again (the caller counts the retry);
 * returns the error to report otherwise: -EIO once a transient error
 * outlived the budget (r->expired says which). */
extern int retry_after (struct retry *r, const struct retry_policy *p,
                        int err, const char *what, uint64_t offset);

/* retry_after for a failed fdatasync (never retries EIO: r->sync_eio). */
extern int retry_after_sync (struct retry *r, const struct retry_policy *p,
                             int err);

/* Sleep before trying again something that must not be given up (a
 * refused io_uring submission with our operations in flight): the same
 * backoff and rate-limited log line, but no deadline. */
extern void retry_pause (struct retry *r, int err, const char *what);

#endif /* NBDSWAP_RETRY_H */
