/* nbdswap: the verification result: problems, names, freeing. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify-internal.h"

/* Indexed by enum verify_code: the stable names used in JSON output and
 * the tests.  Never rename one. */
static const char *const code_names[] = {
  [VERIFY_NOT_REGULAR] = "not-regular",
  [VERIFY_SIZE_ZERO] = "size-zero",
  [VERIFY_SIZE_UNALIGNED] = "size-unaligned",
  [VERIFY_SIZE_TOO_SMALL] = "size-too-small",
  [VERIFY_HOLE] = "hole",
  [VERIFY_DELALLOC] = "delalloc",
  [VERIFY_UNWRITTEN] = "unwritten",
  [VERIFY_SHARED] = "shared",
  [VERIFY_INLINE] = "inline",
  [VERIFY_ENCODED] = "encoded",
  [VERIFY_ENCRYPTED] = "encrypted",
  [VERIFY_NOT_ALIGNED] = "not-aligned",
  [VERIFY_BTRFS_COW] = "btrfs-cow",
  [VERIFY_BTRFS_COMPRESSION] = "btrfs-compression",
  [VERIFY_NO_DIRECT] = "no-direct",
  [VERIFY_KERNEL_SWAP] = "kernel-swap",
  [VERIFY_LOCKED] = "locked",
  [VERIFY_PERMISSIONS] = "permissions",
  [VERIFY_NFS_SOFT] = "nfs-soft",
  [VERIFY_NFS_UNALLOCATED] = "nfs-unallocated",
  [VERIFY_NO_EXTENT_MAP] = "no-extent-map",
};

/* The stable name of code, "unknown" for a value out of range. */
const char *
verify_code_name (enum verify_code code)
{
  if ((size_t) code >= sizeof code_names / sizeof code_names[0]
      || code_names[code] == NULL)
    return "unknown";
  return code_names[code];
}

/* Defaults: O_DIRECT required, alignment and minimum size automatic. */
void
verify_options_init (struct verify_options *opts)
{
  opts->direct = true;
  opts->dio_alignment = 0;
  opts->min_size = 0;
}

/* Formats bytes with a binary unit, or plain bytes below 1 KiB. */
const char *
verify_human_size (uint64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
  double v = bytes;
  size_t u = 0;

  if (bytes < 1024) {
    snprintf (buf, len, "%" PRIu64 " bytes", bytes);
    return buf;
  }
  v /= 1024;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024;
    u++;
  }
  snprintf (buf, len, "%.1f %s", v, units[u]);
  return buf;
}

/* Counts the problems of one code already recorded. */
static size_t
count_code (const struct verify_result *res, enum verify_code code)
{
  size_t i, n = 0;

  for (i = 0; i < res->nr_problems; ++i)
    if (res->problems[i].code == code)
      n++;
  return n;
}

/* Appends one problem (see verify-internal.h). */
int
verify_add_problem (struct verify_result *res, enum verify_code code,
                    enum verify_severity severity,
                    uint64_t offset, uint64_t length,
                    const char *fix, const char *fmt, ...)
{
  struct verify_problem *p, *v;
  va_list args;
  int r;

  if (count_code (res, code) >= VERIFY_MAX_PER_CODE) {
    res->nr_omitted++;
    return 0;
  }
  v = realloc (res->problems, (res->nr_problems + 1) * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  res->problems = v;
  p = &v[res->nr_problems];
  memset (p, 0, sizeof *p);
  p->code = code;
  p->severity = severity;
  p->offset = offset;
  p->length = length;
  va_start (args, fmt);
  r = vasprintf (&p->message, fmt, args);
  va_end (args);
  if (r == -1)
    return -ENOMEM;
  p->fix = strdup (fix);
  if (p->fix == NULL) {
    free (p->message);
    return -ENOMEM;
  }
  res->nr_problems++;
  if (severity == VERIFY_ERROR)
    res->nr_errors++;
  else
    res->nr_warnings++;
  return 0;
}

/* Frees every string and array of res and zeroes it. */
void
verify_result_free (struct verify_result *res)
{
  size_t i;

  for (i = 0; i < res->nr_problems; ++i) {
    free (res->problems[i].message);
    free (res->problems[i].fix);
  }
  free (res->problems);
  free (res->extents);
  free (res->path);
  free (res->mount_point);
  free (res->mount_options);
  memset (res, 0, sizeof *res);
}
