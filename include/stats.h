/* nbdswap: counters and latency histogram of an export (and of the
 * serving process: `stats`, the plugin's one export, and the sum the
 * native server reports).
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
#include <stdio.h>

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
  /* Where a request's time goes, as sums (the stats file only: a reader
   * divides the change between two readings).  engine_ns: in the
   * request engine, start to end (file I/O, its queue, retries), both
   * front ends; turns, turn_ns: the native server's replies sent and
   * the time from each request's header being parsed (not received: a
   * header waiting for a free slot waits uncounted) to its reply's send
   * completing. */
  atomic_uint_fast64_t engine_ns, turns, turn_ns;
};

/* The process's counters: the plugin's export, and what no export
 * counts (the plugin's ring waits). */
extern struct stats stats;

#define STATS_ADD(s, field, n) \
  atomic_fetch_add_explicit (&(s)->field, (n), memory_order_relaxed)
#define STATS_GET(s, field) \
  atomic_load_explicit (&(s)->field, memory_order_relaxed)

/* Count one request that took ns nanoseconds: its bucket is the bit
 * length of its microseconds.  Inline, and without a loop over the bits:
 * it runs once for every request. */
static inline void
stats_latency (struct stats *s, uint64_t ns)
{
  uint64_t us = ns / 1000;
  unsigned b = us == 0 ? 0 : 64 - (unsigned) __builtin_clzll (us);

  if (b > STATS_LAT_BUCKETS - 1)
    b = STATS_LAT_BUCKETS - 1;
  STATS_ADD (s, latency[b], 1);
  STATS_ADD (s, engine_ns, ns);
}

/* The latency (µs, the upper bound of its bucket) under which the
 * fraction q (0 < q <= 1) of requests finished; 0 with no requests. */
extern uint64_t stats_percentile_us (const struct stats *s, double q);

/* Add every counter of src to dst (a sum over exports). */
extern void stats_add (struct stats *dst, const struct stats *src);

/* The counters as one line of "name=value" pairs. */
extern void stats_format_line (const struct stats *s, char *buf,
                               size_t len);

/* The counters as the members of a JSON object, without its braces:
 * "reads":N,...,"latency_us":{...},"engine_ns":N,"turns":N,"turn_ns":N. */
extern void stats_format_fields (const struct stats *s, char *buf,
                                 size_t len);

/* Write the JSON counters to path, atomically (path.tmp, then rename):
 * a reader sees the old file or the new one, never half of one.  0, or
 * -1 with errno set. */
extern int stats_write_file (const struct stats *s, const char *path);

/* stats_write_file, with more members after the counters: more (unless
 * NULL) writes them to fp, each starting with a comma. */
extern int stats_write_file_more (const struct stats *s, const char *path,
                                  void (*more) (FILE *fp, void *arg),
                                  void *arg);

#endif /* NBDSWAP_STATS_H */
