/* nbdswap: striped range locks that keep read-modify-write correct.
 *
 * A write whose edges are not block aligned reads the edge blocks, patches
 * them and writes them back.  If another write touched the same block in
 * between, write-back would undo part of it: a lost update.  So every
 * write locks the stripes its aligned cover touches, ascending (which
 * rules out deadlock): shared when no RMW is needed, exclusive when it is.
 * Reads take no lock.
 *
 * The file is divided into regions of 2^RANGELOCK_REGION_SHIFT bytes;
 * region r belongs to stripe r % RANGELOCK_STRIPES; a request's stripes
 * are a 64-bit mask.  Writers are preferred so that a stream of aligned
 * writes cannot starve an RMW.
 */
#ifndef NBDSWAP_RANGELOCK_H
#define NBDSWAP_RANGELOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RANGELOCK_STRIPES 64
#define RANGELOCK_REGION_SHIFT 20

struct rangelock {
  pthread_rwlock_t stripe[RANGELOCK_STRIPES];
};

/* Returns 0 or -errno. */
extern int rangelock_init (struct rangelock *rl);
extern void rangelock_destroy (struct rangelock *rl);

/* The stripes covering [off, off+len); len > 0. */
extern uint64_t rangelock_mask (uint64_t off, uint64_t len);

extern void rangelock_lock (struct rangelock *rl, uint64_t mask,
                            bool exclusive);
extern void rangelock_unlock (struct rangelock *rl, uint64_t mask);

#endif /* NBDSWAP_RANGELOCK_H */
