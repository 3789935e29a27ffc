/* nbdswap: counters of the serving process.
 *
 * Plain relaxed atomics: the counters are statistics, read only for
 * reports, and they must never cost a lock on the I/O path.
 */
#ifndef NBDSWAP_STATS_H
#define NBDSWAP_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct stats {
  atomic_uint_fast64_t reads, writes, zeroes, flushes;
  atomic_uint_fast64_t read_bytes, write_bytes;
  atomic_uint_fast64_t rmw;           /* writes that read-modify-wrote */
  atomic_uint_fast64_t bounced;       /* requests copied through a bounce buffer */
  atomic_uint_fast64_t retries;       /* transient errors retried */
  atomic_uint_fast64_t errors;        /* requests that failed */
};

extern struct stats stats;

#define STATS_ADD(field, n) \
  atomic_fetch_add_explicit (&stats.field, (n), memory_order_relaxed)
#define STATS_GET(field) \
  atomic_load_explicit (&stats.field, memory_order_relaxed)

#endif /* NBDSWAP_STATS_H */
