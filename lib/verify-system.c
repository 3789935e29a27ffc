/* nbdswap: what the system says about a backing file: its mount
 * (/proc/self/mountinfo), kernel swap areas (/proc/swaps), filesystem
 * names.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <linux/magic.h>

#include "log.h"
#include "verify-internal.h"

#ifndef ZFS_SUPER_MAGIC
#define ZFS_SUPER_MAGIC 0x2fc12fc1
#endif

static const struct {
  uint64_t magic;
  const char *name;
} fs_names[] = {
  { EXT4_SUPER_MAGIC, "ext4" },  /* also ext2/ext3: same magic */
  { XFS_SUPER_MAGIC, "xfs" },
  { BTRFS_SUPER_MAGIC, "btrfs" },
  { NFS_SUPER_MAGIC, "nfs" },
  { TMPFS_MAGIC, "tmpfs" },
  { F2FS_SUPER_MAGIC, "f2fs" },
  { OVERLAYFS_SUPER_MAGIC, "overlay" },
  { CIFS_SUPER_MAGIC, "cifs" },
  { SMB2_SUPER_MAGIC, "smb2" },
  { ZFS_SUPER_MAGIC, "zfs" },
};

/* Looks magic up in the table above. */
const char *
verify_fs_name (uint64_t magic)
{
  size_t i;

  for (i = 0; i < sizeof fs_names / sizeof fs_names[0]; ++i)
    if (fs_names[i].magic == magic)
      return fs_names[i].name;
  return NULL;
}

/* The kernel escapes space, tab, newline and backslash as \NNN. */
void
unescape_octal (char *s)
{
  char *w = s;

  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3'
        && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *w++ = (s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0');
      s += 4;
    }
    else
      *w++ = *s++;
  }
  *w = '\0';
}

/* Splits the next space-separated field off *p; NULL at the end. */
static char *
next_field (char **p)
{
  char *f;

  while (**p == ' ')
    (*p)++;
  if (**p == '\0' || **p == '\n')
    return NULL;
  f = *p;
  while (**p && **p != ' ' && **p != '\n')
    (*p)++;
  if (**p)
    *(*p)++ = '\0';
  return f;
}

/* Format (proc(5)): id parent major:minor root mountpoint options
 * [optional fields...] - fstype source superoptions */
int
mountinfo_parse_line (char *line, struct mountinfo_entry *e)
{
  char *p = line, *f[6], *sep;
  size_t i;

  for (i = 0; i < 6; ++i)
    if ((f[i] = next_field (&p)) == NULL)
      return -EINVAL;
  do
    sep = next_field (&p);
  while (sep && strcmp (sep, "-") != 0);
  if (sep == NULL)
    return -EINVAL;
  e->fs_type = next_field (&p);
  e->source = next_field (&p);
  e->super_options = next_field (&p);
  if (e->super_options == NULL)
    return -EINVAL;
  if (sscanf (f[0], "%lu", &e->mount_id) != 1
      || sscanf (f[2], "%u:%u", &e->major, &e->minor) != 2)
    return -EINVAL;
  unescape_octal (f[4]);
  unescape_octal ((char *) e->source);
  e->mount_point = f[4];
  e->mount_options = f[5];
  return 0;
}

/* Scans the comma-separated list for a whole option name. */
bool
mount_has_option (const char *options, const char *name)
{
  size_t len = strlen (name);
  const char *p = options;

  while (p && *p) {
    if (strncmp (p, name, len) == 0
        && (p[len] == ',' || p[len] == '=' || p[len] == '\0'))
      return true;
    p = strchr (p, ',');
    if (p)
      p++;
  }
  return false;
}

/* The mount id of fd (statx, Linux 5.8), or 0 when unknown. */
static unsigned long
mount_id_of (int fd)
{
  struct statx stx;

  if (statx (fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == -1
      || !(stx.stx_mask & STATX_MNT_ID))
    return 0;
  return stx.stx_mnt_id;
}

/* Copies the mount point and "per-mount,superblock" options into res. */
static int
save_mount (const struct mountinfo_entry *e, struct verify_result *res)
{
  res->mount_point = strdup (e->mount_point);
  if (res->mount_point == NULL
      || asprintf (&res->mount_options, "%s,%s",
                   e->mount_options, e->super_options) == -1) {
    res->mount_options = NULL;
    return -ENOMEM;
  }
  if (res->fs_type[0] == '\0')
    snprintf (res->fs_type, sizeof res->fs_type, "%s", e->fs_type);
  return 0;
}

/* Matches by mount id; falls back to the device number, which btrfs
 * subvolumes do not share with their mount, hence the mount id first. */
int
verify_read_mount (int fd, const struct stat *st, struct verify_result *res)
{
  unsigned long id = mount_id_of (fd);
  struct mountinfo_entry e;
  char *line = NULL;
  size_t cap = 0;
  FILE *fp;
  int r = 0;

  fp = fopen ("/proc/self/mountinfo", "re");
  if (fp == NULL) {
    /* No /proc (a minimal container): report what can be checked. */
    log_warning ("/proc/self/mountinfo: %m: mount options (NFS soft) "
                 "not checked");
    return 0;
  }
  while (getline (&line, &cap, fp) != -1) {
    if (mountinfo_parse_line (line, &e) < 0)
      continue;
    if (id ? e.mount_id == id
        : (e.major == major (st->st_dev) && e.minor == minor (st->st_dev))) {
      r = save_mount (&e, res);
      break;
    }
  }
  free (line);
  fclose (fp);
  return r;
}

/* Whether the swap area named in /proc/swaps is the file or device st. */
static bool
same_swap (const char *name, const struct stat *st)
{
  struct stat sst;

  if (stat (name, &sst) == -1)
    return false;
  if (S_ISBLK (st->st_mode))
    return S_ISBLK (sst.st_mode) && sst.st_rdev == st->st_rdev;
  return sst.st_dev == st->st_dev && sst.st_ino == st->st_ino;
}

/* Compares st with every area of swaps_path by device and inode. */
int
verify_find_kernel_swap (const char *swaps_path, const struct stat *st,
                         bool *active, char *name, size_t name_len)
{
  char *line = NULL, *p, *f;
  size_t cap = 0;
  FILE *fp;

  *active = false;
  fp = fopen (swaps_path, "re");
  if (fp == NULL)
    return errno == ENOENT ? 0 : -errno;   /* no swap support at all */
  /* The first line is the header. */
  if (getline (&line, &cap, fp) != -1) {
    while (!*active && getline (&line, &cap, fp) != -1) {
      p = line;
      f = next_field (&p);
      if (f == NULL)
        continue;
      unescape_octal (f);
      if (same_swap (f, st)) {
        *active = true;
        snprintf (name, name_len, "%s", f);
      }
    }
  }
  free (line);
  fclose (fp);
  return 0;
}

/* The length of the UTF-8 sequence at p (1 to 4 bytes), or 0 when it is
 * not valid UTF-8 (a path is any bytes; JSON must be UTF-8). */
static size_t
utf8_length (const unsigned char *p)
{
  size_t n, i;

  if (*p < 0x80)
    return 1;
  if (*p >= 0xc2 && *p <= 0xdf)
    n = 2;
  else if (*p >= 0xe0 && *p <= 0xef)
    n = 3;
  else if (*p >= 0xf0 && *p <= 0xf4)
    n = 4;
  else
    return 0;
  for (i = 1; i < n; ++i)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

/* Quotes and escapes s per RFC 8259; a byte that is not valid UTF-8
 * becomes U+FFFD so that the output stays valid JSON. */
void
json_print_string (FILE *fp, const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t n;

  fputc ('"', fp);
  while (*p) {
    n = utf8_length (p);
    if (n == 0) {
      fputs ("\\ufffd", fp);
      p++;
      continue;
    }
    if (n > 1) {
      fwrite (p, 1, n, fp);
      p += n;
      continue;
    }
    switch (*p) {
    case '"': fputs ("\\\"", fp); break;
    case '\\': fputs ("\\\\", fp); break;
    case '\n': fputs ("\\n", fp); break;
    case '\r': fputs ("\\r", fp); break;
    case '\t': fputs ("\\t", fp); break;
    case '\b': fputs ("\\b", fp); break;
    case '\f': fputs ("\\f", fp); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf (fp, "\\u%04x", *p);
      else
        fputc (*p, fp);
    }
    p++;
  }
  fputc ('"', fp);
}
