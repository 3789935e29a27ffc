/* nbdswap: counters and latency histogram of the serving process.
 *
 * Plain relaxed atomics: the counters are statistics, read only for
 * reports, and they must never cost a lock on the I/O path.  Latency is
 * kept as a histogram of power-of-two microsecond buckets: bucket b holds
 * requests that took [2^(b-1), 2^b) µs (bucket 0: under 1 µs), so a
 * percentile is known to within a factor of two, without allocation.
 */
#ifndef NBDSWAP_STATS_H
#define NBDSWAP_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_LAT_BUCKETS 32

struct stats {
  atomic_uint_fast64_t reads, writes, zeroes, flushes;
  atomic_uint_fast64_t read_bytes, write_bytes;
  atomic_uint_fast64_t rmw;           /* writes that read-modify-wrote */
  atomic_uint_fast64_t bounced;       /* requests copied through a bounce buffer */
  atomic_uint_fast64_t retries;       /* transient errors retried */
  atomic_uint_fast64_t errors;        /* requests that failed */
  atomic_uint_fast64_t rechecks;      /* re-verifications of the file */
  atomic_uint_fast64_t latency[STATS_LAT_BUCKETS];
};

extern struct stats stats;

#define STATS_ADD(field, n) \
  atomic_fetch_add_explicit (&stats.field, (n), memory_order_relaxed)
#define STATS_GET(field) \
  atomic_load_explicit (&stats.field, memory_order_relaxed)

/* Count one request that took ns nanoseconds: its bucket is the bit
 * length of its microseconds.  Inline, and without a loop over the bits:
 * it runs once for every request. */
static inline void
stats_latency (uint64_t ns)
{
  uint64_t us = ns / 1000;
  unsigned b = us == 0 ? 0 : 64 - (unsigned) __builtin_clzll (us);

  if (b > STATS_LAT_BUCKETS - 1)
    b = STATS_LAT_BUCKETS - 1;
  STATS_ADD (latency[b], 1);
}

/* The latency (µs, the upper bound of its bucket) under which the
 * fraction q (0 < q <= 1) of requests finished; 0 with no requests. */
extern uint64_t stats_percentile_us (double q);

/* The counters as one line of "name=value" pairs. */
extern void stats_format_line (char *buf, size_t len);

/* The counters as a JSON object (one line, newline-terminated). */
extern void stats_format_json (char *buf, size_t len);

/* Write the JSON counters to path, atomically (path.tmp, then rename):
 * a reader sees the old file or the new one, never half of one.  0, or
 * -1 with errno set. */
extern int stats_write_file (const char *path);

#endif /* NBDSWAP_STATS_H */
