/* nbdswap native server: the stripe locks of read-modify-write, shared
 * by all connections (see native-conn.h).
 *
 * The stripes are rangelock.h's (regions of the file mapped to 64
 * stripes, a request's stripes a 64-bit mask), but held across
 * asynchronous I/O by event loops, so they are never waited for: a
 * request that cannot have all its stripes gets none and parks.  An
 * exclusive request that fails is counted as a waiter on its stripes
 * (once, until it succeeds), which turns new shared requests away from
 * them: a stream of aligned writes cannot starve an unaligned one.  A
 * count, not a bit: when one of two exclusive waiters on a stripe gets
 * it, the other still keeps the shared ones away.  One mutex guards the
 * table; it is held only for the few instructions of a try or a
 * release.
 */
#include <config.h>

#include <assert.h>
#include <pthread.h>

#include "native-conn.h"
#include "rangelock.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int holders[RANGELOCK_STRIPES];  /* > 0 shared, -1 exclusive */
static unsigned waiters[RANGELOCK_STRIPES];  /* exclusive requests parked */

/* Count an exclusive waiter in or out of mask's stripes. */
static void
count_waiter (uint64_t mask, int delta)
{
  for (int i = 0; i < RANGELOCK_STRIPES; i++)
    if (mask & (UINT64_C (1) << i)) {
      assert (delta > 0 || waiters[i] > 0);
      waiters[i] += delta;
    }
}

bool
native_lock_try (uint64_t mask, bool exclusive, bool *waiting)
{
  bool ok = true;

  pthread_mutex_lock (&lock);
  for (int i = 0; i < RANGELOCK_STRIPES && ok; i++)
    if (mask & (UINT64_C (1) << i))
      ok = exclusive ? holders[i] == 0 : holders[i] >= 0 && waiters[i] == 0;
  if (ok) {
    for (int i = 0; i < RANGELOCK_STRIPES; i++)
      if (mask & (UINT64_C (1) << i))
        holders[i] = exclusive ? -1 : holders[i] + 1;
    if (*waiting)
      count_waiter (mask, -1);
    *waiting = false;
  }
  else if (exclusive && !*waiting) {
    count_waiter (mask, 1);
    *waiting = true;
  }
  pthread_mutex_unlock (&lock);
  return ok;
}

void
native_lock_release (uint64_t mask, bool exclusive)
{
  pthread_mutex_lock (&lock);
  for (int i = 0; i < RANGELOCK_STRIPES; i++)
    if (mask & (UINT64_C (1) << i)) {
      assert (exclusive ? holders[i] == -1 : holders[i] > 0);
      holders[i] = exclusive ? 0 : holders[i] - 1;
    }
  pthread_mutex_unlock (&lock);
}
