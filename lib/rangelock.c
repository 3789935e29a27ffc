/* nbdswap: striped range locks (see include/rangelock.h). */
#include <config.h>

#include <assert.h>
#include <errno.h>

#include "rangelock.h"

int
rangelock_init (struct rangelock *rl)
{
  pthread_rwlockattr_t attr;
  int i, r;

  r = pthread_rwlockattr_init (&attr);
  if (r != 0)
    return -r;
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  for (i = 0; i < RANGELOCK_STRIPES; i++) {
    r = pthread_rwlock_init (&rl->stripe[i], &attr);
    if (r != 0)
      break;
  }
  pthread_rwlockattr_destroy (&attr);
  if (r != 0) {
    while (i-- > 0)
      pthread_rwlock_destroy (&rl->stripe[i]);
    return -r;
  }
  return 0;
}

void
rangelock_destroy (struct rangelock *rl)
{
  for (int i = 0; i < RANGELOCK_STRIPES; i++)
    pthread_rwlock_destroy (&rl->stripe[i]);
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

void
rangelock_lock (struct rangelock *rl, uint64_t mask, bool exclusive)
{
  for (int i = 0; i < RANGELOCK_STRIPES; i++) {
    if (!(mask & (UINT64_C (1) << i)))
      continue;
    if (exclusive)
      pthread_rwlock_wrlock (&rl->stripe[i]);
    else
      pthread_rwlock_rdlock (&rl->stripe[i]);
  }
}

void
rangelock_unlock (struct rangelock *rl, uint64_t mask)
{
  for (int i = RANGELOCK_STRIPES - 1; i >= 0; i--)
    if (mask & (UINT64_C (1) << i))
      pthread_rwlock_unlock (&rl->stripe[i]);
}
