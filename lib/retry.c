/* nbdswap: bounded retry of transient I/O errors (see include/retry.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "retry.h"
#include "stats.h"

#define DELAY_MIN_US 1000
#define DELAY_MAX_US 1000000

/* The kinds of error retried (why each: include/retry.h), and when each
 * was last logged (ns).  EIO only where the policy says so. */
static const int transient[] = {
  EAGAIN, EINTR, ENOMEM, ENOBUFS, ETIMEDOUT, ENOLINK, EIO,
};
static atomic_uint_fast64_t last_logged[sizeof transient / sizeof transient[0]];

static int
transient_index (bool eio, int err)
{
  if (err == EIO && !eio)
    return -1;
  for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
    if (transient[i] == err)
      return (int) i;
  return -1;
}

bool
retry_is_transient (const struct retry_policy *p, int err)
{
  return transient_index (p->eio, err) >= 0;
}

/* Log at most one line per second for each kind of transient error.
 * timeout: the budget to name, 0 for a pause that has none. */
static void
log_rate_limited (int kind, int err, const char *what, uint64_t offset,
                  unsigned timeout)
{
  uint64_t now = clock_now_ns ();
  uint_fast64_t last = atomic_load (&last_logged[kind]);

  if ((last == 0 || now - last >= 1000000000)
      && atomic_compare_exchange_strong (&last_logged[kind], &last, now)) {
    if (timeout > 0)
      log_warning ("%s: offset %" PRIu64 ": %s: transient error, retrying "
                   "for up to %u s", what, offset, strerror (err), timeout);
    else
      log_warning ("%s: %s: transient error, retrying", what,
                   strerror (err));
  }
}

/* Sleep r's current delay, then double it (up to the cap). */
static void
backoff_sleep (struct retry *r)
{
  struct timespec ts;

  if (r->delay_us == 0)
    r->delay_us = DELAY_MIN_US;
  ts.tv_sec = r->delay_us / 1000000;
  ts.tv_nsec = (long) (r->delay_us % 1000000) * 1000;
  nanosleep (&ts, NULL);
  r->delay_us = r->delay_us * 2 > DELAY_MAX_US ? DELAY_MAX_US : r->delay_us * 2;
}

void
retry_pause (struct retry *r, int err, const char *what)
{
  int kind = transient_index (true, err);

  if (kind >= 0)
    log_rate_limited (kind, err, what, 0, 0);
  STATS_ADD (&stats, retries, 1);
  backoff_sleep (r);
}

int
retry_after (struct retry *r, const struct retry_policy *p, int err,
             const char *what, uint64_t offset)
{
  int kind = transient_index (p->eio, err);
  uint64_t now;

  if (kind < 0)
    return -err;
  now = clock_now_ns ();
  if (r->deadline_ns == 0) {
    r->deadline_ns = now + (uint64_t) p->timeout * 1000000000;
    r->delay_us = DELAY_MIN_US;
  }
  if (now >= r->deadline_ns) {
    r->expired = err;
    return -EIO;
  }
  log_rate_limited (kind, err, what, offset, p->timeout);
  backoff_sleep (r);
  return 0;
}

int
retry_after_sync (struct retry *r, const struct retry_policy *p, int err)
{
  /* After a failed writeback the kernel reports EIO to fdatasync once
   * and forgets it (the pages are clean again, errseq_t is consumed):
   * a second fdatasync succeeds although the data never reached the
   * disk (the 2018 "fsyncgate" thread on linux-fsdevel).  Retrying it
   * would acknowledge a flush that lost data, so EIO goes to the client
   * at once; a device cache flush that failed is no different. */
  if (err == EIO) {
    r->sync_eio = true;
    return -EIO;
  }
  return retry_after (r, p, err, "fdatasync", 0);
}
