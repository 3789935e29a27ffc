/* nbdswap: the process's counters (see include/stats.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "stats.h"

struct stats stats;

uint64_t
stats_percentile_us (const struct stats *s, double q)
{
  uint64_t n[STATS_LAT_BUCKETS], total = 0, seen = 0;

  for (unsigned b = 0; b < STATS_LAT_BUCKETS; b++)
    total += n[b] = STATS_GET (s, latency[b]);
  if (total == 0)
    return 0;
  for (unsigned b = 0; b < STATS_LAT_BUCKETS; b++) {
    seen += n[b];
    if ((double) seen >= q * (double) total)
      return UINT64_C (1) << b;
  }
  return UINT64_C (1) << (STATS_LAT_BUCKETS - 1);
}

/* The counters in report order, with their names. */
#define STATS_FIELDS(X)                                                 \
  X (reads) X (writes) X (zeroes) X (flushes) X (read_bytes)            \
  X (write_bytes) X (rmw) X (bounced) X (retries) X (errors) X (rechecks)

/* The time sums: in the stats file, not in the line (include/stats.h). */
#define STATS_SUMS(X) X (engine_ns) X (turns) X (turn_ns)

void
stats_add (struct stats *dst, const struct stats *src)
{
#define ADD(f) STATS_ADD (dst, f, STATS_GET (src, f));
  STATS_FIELDS (ADD)
  STATS_SUMS (ADD)
#undef ADD
  for (unsigned b = 0; b < STATS_LAT_BUCKETS; b++)
    STATS_ADD (dst, latency[b], STATS_GET (src, latency[b]));
}

void
stats_format_line (const struct stats *s, char *buf, size_t len)
{
#define FMT(f) #f "=%" PRIuFAST64 " "
#define ARG(f) STATS_GET (s, f),
  snprintf (buf, len, STATS_FIELDS (FMT)
            "p50_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64,
            STATS_FIELDS (ARG)
            stats_percentile_us (s, 0.5), stats_percentile_us (s, 0.99),
            stats_percentile_us (s, 0.999));
#undef FMT
#undef ARG
}

void
stats_format_fields (const struct stats *s, char *buf, size_t len)
{
#define FMT(f) "\"" #f "\":%" PRIuFAST64 ","
#define FMT_AFTER(f) ",\"" #f "\":%" PRIuFAST64
#define ARG(f) STATS_GET (s, f),
#define ARG_AFTER(f) , STATS_GET (s, f)
  snprintf (buf, len, STATS_FIELDS (FMT)
            "\"latency_us\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64
            ",\"p999\":%" PRIu64 "}" STATS_SUMS (FMT_AFTER),
            STATS_FIELDS (ARG)
            stats_percentile_us (s, 0.5), stats_percentile_us (s, 0.99),
            stats_percentile_us (s, 0.999) STATS_SUMS (ARG_AFTER));
#undef FMT_AFTER
#undef ARG_AFTER
#undef FMT
#undef ARG
}

int
stats_write_file_more (const struct stats *s, const char *path,
                       void (*more) (FILE *fp, void *arg), void *arg)
{
  char fields[1024], tmp[4200];
  FILE *fp;

  if ((size_t) snprintf (tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  fp = fopen (tmp, "we");
  if (fp == NULL)
    return -1;
  stats_format_fields (s, fields, sizeof fields);
  fprintf (fp, "{%s", fields);
  if (more != NULL)
    more (fp, arg);
  fputs ("}\n", fp);
  if (fclose (fp) == EOF || rename (tmp, path) == -1)
    return -1;
  return 0;
}

int
stats_write_file (const struct stats *s, const char *path)
{
  return stats_write_file_more (s, path, NULL, NULL);
}
