/* nbdswap: striped range locks that keep read-modify-write correct.
 *
 * A write whose edges are not block aligned reads the edge blocks, patches
 * them and writes them back.  If another write touched the same block in
 * between, write-back would undo part of it: a lost update.  So every
 * write holds the stripes its aligned cover touches for as long as its
 * I/O runs: shared when no RMW is needed, exclusive when it is.  Reads
 * take no lock.
 *
 * The file is divided into regions of 2^RANGELOCK_REGION_SHIFT bytes;
 * region r belongs to stripe r % RANGELOCK_STRIPES; a request's stripes
 * are a 64-bit mask, taken all at once or not at all (so no two requests
 * can each hold part of what the other needs).
 *
 * One implementation for both kinds of caller.  An event loop holds
 * stripes across asynchronous I/O and must never sleep: it tries
 * (rangelock_try) and, if it fails, parks the request and tries again
 * later.  A serving thread may sleep: rangelock_wait blocks until the
 * stripes are free.  Writers are preferred: an exclusive request that
 * failed is counted as a waiter on its stripes (once, until it
 * succeeds), which turns new shared requests away from them, so a stream
 * of aligned writes cannot starve an unaligned one.  A count, not a bit:
 * when one of two exclusive waiters on a stripe gets it, the other still
 * keeps the shared ones away.  One mutex guards the table; it is held
 * only for the few instructions of a try or a release.
 */
#ifndef NBDSWAP_RANGELOCK_H
#define NBDSWAP_RANGELOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RANGELOCK_STRIPES 64
#define RANGELOCK_REGION_SHIFT 20

struct rangelock {
  pthread_mutex_t lock;
  pthread_cond_t released;              /* signalled when a stripe frees */
  int holders[RANGELOCK_STRIPES];       /* > 0 shared, -1 exclusive */
  unsigned waiters[RANGELOCK_STRIPES];  /* exclusive requests waiting */
};

/* Returns 0 or -errno. */
extern int rangelock_init (struct rangelock *rl);
extern void rangelock_destroy (struct rangelock *rl);

/* The stripes covering [off, off+len); len > 0. */
extern uint64_t rangelock_mask (uint64_t off, uint64_t len);

/* Take every stripe of mask, or none: true if taken.  *waiting is the
 * request's own flag (false at first): set while it is counted as an
 * exclusive waiter, cleared when it gets the stripes. */
extern bool rangelock_try (struct rangelock *rl, uint64_t mask,
                           bool exclusive, bool *waiting);

/* Take every stripe of mask, sleeping until they are free. */
extern void rangelock_wait (struct rangelock *rl, uint64_t mask,
                            bool exclusive);

/* Let go of stripes taken by rangelock_try or rangelock_wait. */
extern void rangelock_release (struct rangelock *rl, uint64_t mask,
                               bool exclusive);

#endif /* NBDSWAP_RANGELOCK_H */
