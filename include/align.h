/* nbdswap: alignment arithmetic for O_DIRECT.
 *
 * Every alignment here is a power of two (asserted where alignments are
 * learned, in dioalign.c).  Callers keep offsets at or below the export
 * size, which is far from UINT64_MAX, so round_up cannot wrap.
 */
#ifndef NBDSWAP_ALIGN_H
#define NBDSWAP_ALIGN_H

#include <stdbool.h>
#include <stdint.h>

/* True if x is a non-zero power of two. */
static inline bool
is_power_of_2 (uint64_t x)
{
  return x != 0 && (x & (x - 1)) == 0;
}

/* True if x is a multiple of a (a power of two). */
static inline bool
is_aligned (uint64_t x, uint64_t a)
{
  return (x & (a - 1)) == 0;
}

/* The largest multiple of a that is <= x. */
static inline uint64_t
round_down (uint64_t x, uint64_t a)
{
  return x & ~(a - 1);
}

/* The smallest multiple of a that is >= x. */
static inline uint64_t
round_up (uint64_t x, uint64_t a)
{
  return (x + a - 1) & ~(a - 1);
}

/* True if the memory at p may be used for O_DIRECT with alignment a. */
static inline bool
ptr_is_aligned (const void *p, uint64_t a)
{
  return is_aligned ((uintptr_t) p, a);
}

#endif /* NBDSWAP_ALIGN_H */
