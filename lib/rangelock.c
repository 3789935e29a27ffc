/* nbdswap: striped range locks (see include/rangelock.h). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "rangelock.h"

int
rangelock_init (struct rangelock *rl)
{
  int r;

  memset (rl->holders, 0, sizeof rl->holders);
  memset (rl->waiters, 0, sizeof rl->waiters);
  r = pthread_mutex_init (&rl->lock, NULL);
  if (r != 0)
    return -r;
  r = pthread_cond_init (&rl->released, NULL);
  if (r != 0) {
    pthread_mutex_destroy (&rl->lock);
    return -r;
  }
  return 0;
}

void
rangelock_destroy (struct rangelock *rl)
{
  pthread_cond_destroy (&rl->released);
  pthread_mutex_destroy (&rl->lock);
}

uint64_t
rangelock_mask (uint64_t off, uint64_t len)
{
  uint64_t first, last, mask = 0;

  assert (len > 0);
  first = off >> RANGELOCK_REGION_SHIFT;
  last = (off + (len - 1)) >> RANGELOCK_REGION_SHIFT;
  if (last - first >= RANGELOCK_STRIPES - 1)
    return UINT64_MAX;
  for (uint64_t r = first; r <= last; r++)
    mask |= UINT64_C (1) << (r % RANGELOCK_STRIPES);
  return mask;
}

/* Count an exclusive waiter in or out of mask's stripes. */
/* Each stripe i of mask, visiting only the bits that are set: a 4 KiB
 * request has one, and three passes over all 64 were most of a write's
 * cost in user space (bench/cost). */
#define FOR_EACH_STRIPE(i, mask)                                        \
  for (uint64_t m_ = (mask), i = 0;                                     \
       m_ != 0 && ((i = (uint64_t) __builtin_ctzll (m_)), true);        \
       m_ &= m_ - 1)

static void
count_waiter (struct rangelock *rl, uint64_t mask, int delta)
{
  FOR_EACH_STRIPE (i, mask) {
    assert (delta > 0 || rl->waiters[i] > 0);
    rl->waiters[i] += delta;
  }
}

/* rangelock_try with rl->lock held. */
static bool
try_locked (struct rangelock *rl, uint64_t mask, bool exclusive,
            bool *waiting)
{
  bool ok = true;

  FOR_EACH_STRIPE (i, mask) {
    ok = exclusive ? rl->holders[i] == 0
      : rl->holders[i] >= 0 && rl->waiters[i] == 0;
    if (!ok)
      break;
  }
  if (ok) {
    FOR_EACH_STRIPE (i, mask)
      rl->holders[i] = exclusive ? -1 : rl->holders[i] + 1;
    if (*waiting)
      count_waiter (rl, mask, -1);
    *waiting = false;
  }
  else if (exclusive && !*waiting) {
    count_waiter (rl, mask, 1);
    *waiting = true;
  }
  return ok;
}

bool
rangelock_try (struct rangelock *rl, uint64_t mask, bool exclusive,
               bool *waiting)
{
  bool ok;

  pthread_mutex_lock (&rl->lock);
  ok = try_locked (rl, mask, exclusive, waiting);
  pthread_mutex_unlock (&rl->lock);
  return ok;
}

void
rangelock_wait (struct rangelock *rl, uint64_t mask, bool exclusive)
{
  bool waiting = false;

  pthread_mutex_lock (&rl->lock);
  while (!try_locked (rl, mask, exclusive, &waiting))
    pthread_cond_wait (&rl->released, &rl->lock);
  pthread_mutex_unlock (&rl->lock);
}

void
rangelock_release (struct rangelock *rl, uint64_t mask, bool exclusive)
{
  pthread_mutex_lock (&rl->lock);
  FOR_EACH_STRIPE (i, mask) {
    assert (exclusive ? rl->holders[i] == -1 : rl->holders[i] > 0);
    rl->holders[i] = exclusive ? 0 : rl->holders[i] - 1;
  }
  /* Cheap with no sleeper: glibc checks for waiters first. */
  pthread_cond_broadcast (&rl->released);
  pthread_mutex_unlock (&rl->lock);
}
