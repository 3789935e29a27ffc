/* nbdswap: the verification result: problems, names, freeing. */
#include <config.h>

#include <ctype.h>
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
  [VERIFY_NO_LAZYTIME] = "no-lazytime",
  [VERIFY_DEVICE_IN_USE] = "device-in-use",
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

/* Writes path, in single quotes when the shell would split or expand
 * it. */
static void
write_shell_word (FILE *fp, const char *path)
{
  const char *p;

  if (path[0] && strspn (path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                         "qrstuvwxyz0123456789/._+,:@%-") == strlen (path)) {
    fputs (path, fp);
    return;
  }
  fputc ('\'', fp);
  for (p = path; *p; ++p) {
    if (*p == '\'')
      fputs ("'\\''", fp);
    else
      fputc (*p, fp);
  }
  fputc ('\'', fp);
}

/* The size to suggest: the file's, rounded up to the alignment and to
 * the minimum, with the largest exact binary suffix. */
static void
write_size (FILE *fp, const struct verify_result *res)
{
  static const char suffixes[] = "TGMK";
  uint64_t a = res->dio_alignment ? res->dio_alignment : 4096;
  uint64_t s = (res->size + a - 1) / a * a;
  uint64_t min = res->min_size ? res->min_size : VERIFY_MIN_SIZE;
  size_t i;

  if (s < min)
    s = min;
  for (i = 0; i < 4; ++i) {
    uint64_t unit = 1ULL << (10 * (4 - i));

    if (s % unit == 0) {
      fprintf (fp, "%" PRIu64 "%c", s / unit, suffixes[i]);
      return;
    }
  }
  fprintf (fp, "%" PRIu64, s);
}

/* Whether p starts the whole word w (not part of a longer name). */
static bool
word_at (const char *start, const char *p, const char *w)
{
  size_t n = strlen (w);

  return strncmp (p, w, n) == 0
    && (p == start || !(isalnum ((unsigned char) p[-1]) || p[-1] == '_'))
    && !(isalnum ((unsigned char) p[n]) || p[n] == '_');
}

char *
verify_expand_fix (const struct verify_result *res, const char *fix)
{
  char *out = NULL;
  size_t len = 0;
  const char *p;
  FILE *fp;

  fp = open_memstream (&out, &len);
  if (fp == NULL)
    return NULL;
  for (p = fix; *p; ) {
    if (word_at (fix, p, "FILE") || word_at (fix, p, "DEVICE")) {
      write_shell_word (fp, res->path);
      p += *p == 'F' ? 4 : 6;
    }
    else if (word_at (fix, p, "MOUNTPOINT") && res->mount_point) {
      write_shell_word (fp, res->mount_point);
      p += 10;
    }
    else if (word_at (fix, p, "SIZE") && res->size > 0) {
      write_size (fp, res);
      p += 4;
    }
    else
      fputc (*p++, fp);
  }
  if (fclose (fp) != 0) {
    free (out);
    return NULL;
  }
  return out;
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
  p->fix = verify_expand_fix (res, fix);
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
