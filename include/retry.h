/* nbdswap: bounded retry of transient I/O errors.
 *
 * On NFS (and under memory pressure anywhere) a write can fail for a
 * while with EAGAIN, EINTR, ENOMEM, ENOBUFS or ETIMEDOUT and then succeed
 * (see the 2013 swap-over-NFS thread in shared/reference).  Reporting EIO
 * at once would lose a swap page, so such errors are retried with
 * exponential backoff (1 ms doubling to 1 s) until retry_timeout seconds
 * have passed since the first failure of the request; only then EIO.
 * At most one log line per second per kind of error.
 */
#ifndef NBDSWAP_RETRY_H
#define NBDSWAP_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_TIMEOUT_DEFAULT 60

/* Per-request state; start zeroed (RETRY_INIT). */
struct retry {
  uint64_t deadline_ns;         /* 0 until the first failure */
  uint32_t delay_us;
};
#define RETRY_INIT { 0, 0 }

/* Seconds a request may keep failing transiently; 0 disables retry. */
extern unsigned retry_timeout;

/* True for the errors (positive errno) that are worth retrying. */
extern bool retry_is_transient (int err);

/* Called after an operation failed with -err.  Sleeps and returns 0 when
 * the operation should be tried again; returns the error to report
 * otherwise (-EIO once a transient error outlived the budget). */
extern int retry_after (struct retry *r, int err, const char *what,
                        uint64_t offset);

/* Sleep before trying again something that must not be given up (a
 * refused io_uring submission with our operations in flight): the same
 * backoff and rate-limited log line, but no deadline. */
extern void retry_pause (struct retry *r, int err, const char *what);

#endif /* NBDSWAP_RETRY_H */
