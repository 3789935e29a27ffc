/* nbdswap: the human and JSON forms of a verification result. */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>

#include <linux/fiemap.h>

#include "log.h"
#include "verify-internal.h"

static const char *const type_names[] = {
  [VERIFY_TYPE_REGULAR] = "regular",
  [VERIFY_TYPE_BLOCK_DEVICE] = "block-device",
  [VERIFY_TYPE_DIRECTORY] = "directory",
  [VERIFY_TYPE_OTHER] = "other",
};

static const struct {
  uint32_t flag;
  const char *name;
} flag_names[] = {
  { FIEMAP_EXTENT_UNKNOWN, "unknown" },
  { FIEMAP_EXTENT_DELALLOC, "delalloc" },
  { FIEMAP_EXTENT_ENCODED, "encoded" },
  { FIEMAP_EXTENT_DATA_ENCRYPTED, "encrypted" },
  { FIEMAP_EXTENT_NOT_ALIGNED, "not-aligned" },
  { FIEMAP_EXTENT_DATA_INLINE, "inline" },
  { FIEMAP_EXTENT_DATA_TAIL, "tail" },
  { FIEMAP_EXTENT_UNWRITTEN, "unwritten" },
  { FIEMAP_EXTENT_SHARED, "shared" },
};
#define NR_FLAG_NAMES (sizeof flag_names / sizeof flag_names[0])

/* One line summing up the extent map. */
static void
print_extent_summary (FILE *fp, const struct verify_result *res)
{
  uint64_t largest = 0, smallest = UINT64_MAX;
  char h1[32], h2[32];
  size_t i;

  if (res->type == VERIFY_TYPE_BLOCK_DEVICE) {
    fprintf (fp, "not checked (a block device has no extents)\n");
    return;
  }
  if (!res->extents_checked) {
    fprintf (fp, "not checked%s\n",
             res->limited ? " (no FIEMAP on NFS)" : "");
    return;
  }
  for (i = 0; i < res->nr_extents; ++i) {
    if (res->extents[i].length > largest)
      largest = res->extents[i].length;
    if (res->extents[i].length < smallest)
      smallest = res->extents[i].length;
  }
  if (res->nr_extents == 0) {
    fprintf (fp, "none\n");
    return;
  }
  fprintf (fp, "%zu (largest %s, smallest %s)\n", res->nr_extents,
           verify_human_size (largest, h1, sizeof h1),
           verify_human_size (smallest, h2, sizeof h2));
}

/* Headline fields, then each problem with its fix, then the verdict. */
void
verify_print_text (FILE *fp, const struct verify_result *res)
{
  char h[32];
  size_t i;

  fprintf (fp, "File:        %s (%s)\n", res->path, type_names[res->type]);
  fprintf (fp, "Filesystem:  %s", res->fs_type[0] ? res->fs_type : "unknown");
  if (res->mount_point)
    fprintf (fp, " on %s (%s)", res->mount_point, res->mount_options);
  fprintf (fp, "\nSize:        %" PRIu64 " bytes", res->size);
  if (res->size >= 1024)
    fprintf (fp, " (%s)", verify_human_size (res->size, h, sizeof h));
  fprintf (fp, ", alignment %" PRIu32 "%s\n", res->dio_alignment,
           res->direct_checked ? ", O_DIRECT checked" : "");
  fprintf (fp, "Extents:     ");
  print_extent_summary (fp, res);
  if (res->limited)
    fprintf (fp, "Limited:     shared or compressed extents on the server "
             "cannot be seen from here\n");
  for (i = 0; i < res->nr_problems; ++i) {
    const struct verify_problem *p = &res->problems[i];

    fprintf (fp, "%s [%s]: %s\n    fix: %s\n",
             p->severity == VERIFY_ERROR ? "error" : "warning",
             verify_code_name (p->code), p->message, p->fix);
  }
  if (res->nr_omitted)
    fprintf (fp, "(%zu more problems of the same kinds not shown)\n",
             res->nr_omitted);
  fprintf (fp, "Verdict:     %s: %zu error%s, %zu warning%s\n",
           res->verdict == VERIFY_FIT ? "fit to serve" : "UNFIT",
           res->nr_errors, res->nr_errors == 1 ? "" : "s",
           res->nr_warnings, res->nr_warnings == 1 ? "" : "s");
}

/* One log line per problem, then the verdict. */
void
verify_log_result (const struct verify_result *res)
{
  char h[32];
  size_t i;

  for (i = 0; i < res->nr_problems; ++i) {
    const struct verify_problem *p = &res->problems[i];

    if (p->severity == VERIFY_ERROR)
      log_error ("%s (fix: %s)", p->message, p->fix);
    else
      log_warning ("%s (fix: %s)", p->message, p->fix);
  }
  if (res->nr_omitted)
    log_error ("%s: %zu more problems of the same kinds", res->path,
               res->nr_omitted);
  /* A block device's filesystem is the one its node is on (devtmpfs),
   * and it has no extents: neither says anything about it. */
  if (res->type == VERIFY_TYPE_BLOCK_DEVICE)
    log_info ("%s: %s: block device, %s", res->path,
              res->verdict == VERIFY_FIT ? "fit to serve" : "UNFIT",
              verify_human_size (res->size, h, sizeof h));
  else
    log_info ("%s: %s: %s, %s, %zu extent%s%s", res->path,
              res->verdict == VERIFY_FIT ? "fit to serve" : "UNFIT",
              res->fs_type[0] ? res->fs_type : "unknown filesystem",
              verify_human_size (res->size, h, sizeof h), res->nr_extents,
              res->nr_extents == 1 ? "" : "s",
              res->limited ? " (limited: shared or compressed extents on "
              "the server cannot be seen from here)" : "");
}

/* "key": string-or-null, */
static void
json_field (FILE *fp, const char *key, const char *value)
{
  fprintf (fp, "\"%s\":", key);
  if (value)
    json_print_string (fp, value);
  else
    fputs ("null", fp);
  fputc (',', fp);
}

/* "problems": [...], in the order found. */
static void
json_problems (FILE *fp, const struct verify_result *res)
{
  size_t i;

  fputs ("\"problems\":[", fp);
  for (i = 0; i < res->nr_problems; ++i) {
    const struct verify_problem *p = &res->problems[i];

    fprintf (fp, "%s{\"code\":\"%s\",\"severity\":\"%s\",\"offset\":%"
             PRIu64 ",\"length\":%" PRIu64 ",", i ? "," : "",
             verify_code_name (p->code),
             p->severity == VERIFY_ERROR ? "error" : "warning",
             p->offset, p->length);
    json_field (fp, "message", p->message);
    fputs ("\"fix\":", fp);
    json_print_string (fp, p->fix);
    fputc ('}', fp);
  }
  fputs ("],", fp);
}

/* "extents": [...], flags by name. */
static void
json_extents (FILE *fp, const struct verify_result *res)
{
  size_t i, j;
  const char *sep;

  fputs ("\"extents\":[", fp);
  for (i = 0; i < res->nr_extents; ++i) {
    const struct verify_extent *e = &res->extents[i];

    fprintf (fp, "%s{\"logical\":%" PRIu64 ",\"physical\":%" PRIu64
             ",\"length\":%" PRIu64 ",\"flags\":[", i ? "," : "",
             e->logical, e->physical, e->length);
    sep = "";
    for (j = 0; j < NR_FLAG_NAMES; ++j)
      if (e->flags & flag_names[j].flag) {
        fprintf (fp, "%s\"%s\"", sep, flag_names[j].name);
        sep = ",";
      }
    fputs ("]}", fp);
  }
  fputc (']', fp);
}

/* One JSON object on one line; keys documented in docs/verify.md. */
void
verify_print_json (FILE *fp, const struct verify_result *res)
{
  fputc ('{', fp);
  json_field (fp, "path", res->path);
  fprintf (fp, "\"type\":\"%s\",\"size\":%" PRIu64 ",\"min_size\":%" PRIu64
           ",\"dio_alignment\":%" PRIu32 ",\"direct_checked\":%s,",
           type_names[res->type], res->size, res->min_size,
           res->dio_alignment,
           res->direct_checked ? "true" : "false");
  json_field (fp, "filesystem", res->fs_type[0] ? res->fs_type : NULL);
  fprintf (fp, "\"fs_magic\":\"0x%" PRIx64 "\",", res->fs_magic);
  json_field (fp, "mount_point", res->mount_point);
  json_field (fp, "mount_options", res->mount_options);
  fprintf (fp, "\"limited\":%s,\"extents_checked\":%s,\"verdict\":\"%s\","
           "\"errors\":%zu,\"warnings\":%zu,\"omitted\":%zu,",
           res->limited ? "true" : "false",
           res->extents_checked ? "true" : "false",
           res->verdict == VERIFY_FIT ? "fit" : "unfit",
           res->nr_errors, res->nr_warnings, res->nr_omitted);
  json_problems (fp, res);
  json_extents (fp, res);
  fputs ("}\n", fp);
}
