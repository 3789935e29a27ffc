/* nbdswap: helpers shared by the verification modules (plugin/verify*.c)
 * and their unit tests.  Not for the plugin or the command: they use
 * verify.h only.
 */
#ifndef NBDSWAP_VERIFY_INTERNAL_H
#define NBDSWAP_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "verify.h"

/* Records a problem in res.  fmt formats the message.  Counts it as an
 * error or a warning; past VERIFY_MAX_PER_CODE problems of one code it is
 * only counted in res->nr_omitted.  Returns 0 or -ENOMEM. */
extern int verify_add_problem (struct verify_result *res,
                               enum verify_code code,
                               enum verify_severity severity,
                               uint64_t offset, uint64_t length,
                               const char *fix, const char *fmt, ...)
  __attribute__ ((format (printf, 7, 8)));

/* fix with the words FILE and DEVICE replaced by res->path (quoted for
 * the shell when needed) and SIZE by a size to use (the file's, rounded
 * up to the alignment and the minimum; left as SIZE for an empty file).
 * Returns a string to free, or NULL when out of memory. */
extern char *verify_expand_fix (const struct verify_result *res,
                                const char *fix);

/* Formats a byte count for humans ("16.0 MiB", "4096 bytes") into buf. */
extern const char *verify_human_size (uint64_t bytes, char *buf, size_t len);

/* A growable extent list.  Appending merges e into the last extent when
 * both are logically and physically contiguous with equal flags.
 * Invariant: extents sorted by logical offset, non-overlapping. */
struct extent_list {
  struct verify_extent *v;
  size_t n;
  size_t cap;
};
extern int extent_list_append (struct extent_list *list,
                               const struct verify_extent *e);

/* Reads the extent map of fd (FIEMAP, FIEMAP_FLAG_SYNC) up to size into
 * list.  Returns 0 or -errno (-EOPNOTSUPP: no FIEMAP here). */
extern int verify_read_extents (int fd, uint64_t size,
                                struct extent_list *list);

/* Records holes, and problem flags of the extents in list, as problems
 * of res, one per contiguous run.  Returns 0 or -ENOMEM. */
extern int verify_check_extents (const struct extent_list *list,
                                 struct verify_result *res);

/* Records holes found with SEEK_HOLE/SEEK_DATA.  Returns 0 or -errno. */
extern int verify_check_seek_holes (int fd, struct verify_result *res);

/* One line of /proc/self/mountinfo, split in place (fields point into
 * the line; octal escapes such as \040 are decoded). */
struct mountinfo_entry {
  unsigned long mount_id;
  unsigned int major, minor;
  const char *mount_point;
  const char *mount_options;
  const char *fs_type;
  const char *source;
  const char *super_options;
};
/* Returns 0, or -EINVAL when the line is malformed. */
extern int mountinfo_parse_line (char *line, struct mountinfo_entry *e);

/* True when the comma-separated list has exactly the option name
 * (a whole option, or one of the form name=value). */
extern bool mount_has_option (const char *options, const char *name);

/* Decodes \NNN octal escapes (as in /proc/swaps and mountinfo) in place. */
extern void unescape_octal (char *s);

/* Fills res->mount_point and res->mount_options for fd from
 * /proc/self/mountinfo.  Returns 0 (also when not found) or -errno. */
extern int verify_read_mount (int fd, const struct stat *st,
                              struct verify_result *res);

/* Sets *active when st is a swap area listed in swaps_path (normally
 * /proc/swaps), copying its name into name.  Returns 0 or -errno. */
extern int verify_find_kernel_swap (const char *swaps_path,
                                    const struct stat *st, bool *active,
                                    char *name, size_t name_len);

/* The name of a statfs magic number: "ext4", "xfs", ... or NULL. */
extern const char *verify_fs_name (uint64_t magic);

/* Writes s as a JSON string, quotes included. */
extern void json_print_string (FILE *fp, const char *s);

#endif /* NBDSWAP_VERIFY_INTERNAL_H */
