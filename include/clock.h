/* nbdswap: the monotonic clock, in nanoseconds. */
#ifndef NBDSWAP_CLOCK_H
#define NBDSWAP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns: a vDSO call, cheap enough for every request. */
static inline uint64_t
clock_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}

#endif /* NBDSWAP_CLOCK_H */
