/* nbdswap: creation of a swap backing file (see include/create.h). */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/magic.h>

#include "create.h"
#include "log.h"
#include "verify-internal.h"

#define DEFAULT_CHUNK (8 * 1024 * 1024)

/* Writes are aligned to this and the buffer to this; large enough for
 * any DIO alignment we have seen (4 KiB sectors). */
#define WRITE_ALIGNMENT 4096

/* Zeroes opts and sets the verification defaults. */
void
create_options_init (struct create_options *opts)
{
  memset (opts, 0, sizeof *opts);
  verify_options_init (&opts->verify);
}

/* strtoull, then one optional K/M/G/T with an optional "iB". */
int
create_parse_size (const char *s, uint64_t *size)
{
  static const char suffixes[] = "KMGT";
  const char *p;
  char *end;
  uint64_t v;
  int shift = 0;

  if (!isdigit ((unsigned char) s[0]))
    return -EINVAL;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno == ERANGE)
    return -ERANGE;
  if (*end) {
    p = strchr (suffixes, toupper ((unsigned char) *end));
    if (p == NULL)
      return -EINVAL;
    shift = 10 * (p - suffixes + 1);
    end++;
    if (*end && strcasecmp (end, "iB") != 0)
      return -EINVAL;
  }
  if (shift && v > (UINT64_MAX >> shift))
    return -ERANGE;
  *size = v << shift;
  return 0;
}

int
create_check_size (const char *path, uint64_t size)
{
  if (size == 0 || size % WRITE_ALIGNMENT != 0 || size < VERIFY_MIN_SIZE
      || size > (uint64_t) INT64_MAX) {
    log_error ("%s: size %" PRIu64 " is not usable: it must be a multiple "
               "of 4096 bytes, at least %d bytes", path, size,
               VERIFY_MIN_SIZE);
    return -EINVAL;
  }
  return 0;
}

/* Whether the existing file st at path is in use as swap: an active
 * kernel swap area, or locked by a server (the plugin holds an OFD write
 * lock).  Replacing it would leave the user swapping to a deleted file. */
static bool
in_use (const char *path, const struct stat *st)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  char name[256];
  bool active = false;
  int fd;

  if (verify_find_kernel_swap ("/proc/swaps", st, &active, name,
                               sizeof name) == 0 && active) {
    log_error ("%s: is an active kernel swap area: swapoff it first", path);
    return true;
  }
  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0 && fcntl (fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
    active = true;
  if (fd >= 0)
    close (fd);
  if (active)
    log_error ("%s: is being served by another process: stop it first",
               path);
  return active;
}

/* Handles an existing path: refuse it, or with force remove it if it is a
 * regular file not in use (never a device or directory).  *freed gets the
 * space the removal gives back. */
static int
remove_existing (const char *path, bool force, uint64_t *freed)
{
  struct stat st;

  *freed = 0;
  if (lstat (path, &st) == -1)
    return errno == ENOENT ? 0 : -errno;
  if (!force) {
    log_error ("%s: already exists: not overwriting it without --force",
               path);
    return -EEXIST;
  }
  if (!S_ISREG (st.st_mode)) {
    log_error ("%s: exists and is not a regular file: refusing to replace "
               "it, even with --force", path);
    return -EEXIST;
  }
  if (in_use (path, &st))
    return -EBUSY;
  if (unlink (path) == -1) {
    log_error ("%s: cannot remove the existing file: %m", path);
    return -errno;
  }
  *freed = (uint64_t) st.st_blocks * 512;
  return 0;
}

int
create_space_available (const char *dir, uint64_t *avail)
{
  struct statvfs sv;

  if (statvfs (dir, &sv) == -1) {
    log_error ("%s: statvfs: %m", dir);
    return -errno;
  }
  *avail = (uint64_t) sv.f_bavail * sv.f_frsize;
  return 0;
}

/* Checks that the directory of path has size bytes available. */
static int
check_space (const char *path, uint64_t size, uint64_t freed)
{
  char *dir = strdup (path), *slash;
  uint64_t avail;
  int r;

  if (dir == NULL)
    return -ENOMEM;
  slash = strrchr (dir, '/');
  if (slash == NULL)
    strcpy (dir, ".");
  else
    slash[slash == dir] = '\0';    /* keep "/" for "/file" */
  r = create_space_available (dir, &avail);
  free (dir);
  if (r < 0)
    return r;
  avail += freed;
  if (avail < size) {
    log_error ("%s: not enough free space: %" PRIu64 " bytes needed, %"
               PRIu64 " available", path, size, avail);
    return -ENOSPC;
  }
  return 0;
}

/* On btrfs: NOCOW and no compression, which only take effect on an
 * empty file (btrfs ignores NOCOW once there is data). */
static int
set_btrfs_flags (int fd, const char *path)
{
  struct statfs sfs;
  int flags;

  if (fstatfs (fd, &sfs) == -1)
    return -errno;
  if ((uint32_t) sfs.f_type != BTRFS_SUPER_MAGIC)
    return 0;
  /* A compression property inherited from the directory would make
   * setting NOCOW fail. */
  if (fremovexattr (fd, "btrfs.compression") == -1 && errno != ENODATA)
    log_debug ("%s: removing btrfs.compression: %m", path);
  if (ioctl (fd, FS_IOC_GETFLAGS, &flags) == -1)
    return -errno;
  flags = (flags | FS_NOCOW_FL) & ~FS_COMPR_FL;
  if (ioctl (fd, FS_IOC_SETFLAGS, &flags) == -1) {
    log_error ("%s: cannot set NOCOW (chattr +C) on btrfs: %m", path);
    return -errno;
  }
  return 0;
}

/* Seconds since start. */
static double
elapsed_since (const struct timespec *start)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Writes zeroes over [0, size) with O_DIRECT (falling back to buffered
 * writes where O_DIRECT is refused: the verifier then says so). */
static int
write_zeroes (int fd, const char *path, uint64_t size,
              const struct create_options *opts)
{
  size_t chunk = opts->chunk_size ? opts->chunk_size : DEFAULT_CHUNK;
  struct create_progress p = { .total = size };
  struct timespec start;
  void *buf;
  ssize_t n;
  int err;

  chunk = (chunk + WRITE_ALIGNMENT - 1) / WRITE_ALIGNMENT * WRITE_ALIGNMENT;
  if (fcntl (fd, F_SETFL, O_DIRECT) == -1)
    log_warning ("%s: O_DIRECT refused (%m): writing through the cache",
                 path);
  err = posix_memalign (&buf, WRITE_ALIGNMENT, chunk);
  if (err)
    return -err;
  memset (buf, 0, chunk);
  clock_gettime (CLOCK_MONOTONIC, &start);
  while (p.done < size) {
    if (opts->cancel && *opts->cancel) {
      free (buf);
      return -ECANCELED;
    }
    n = pwrite (fd, buf, size - p.done < chunk ? size - p.done : chunk,
                p.done);
    if (n <= 0) {
      err = n == 0 ? EIO : errno;
      if (err == EINTR)
        continue;               /* the cancel flag decides */
      log_error ("%s: write at offset %" PRIu64 ": %s", path, p.done,
                 strerror (err));
      free (buf);
      return -err;
    }
    p.done += n;
    p.elapsed = elapsed_since (&start);
    if (opts->progress)
      opts->progress (&p, opts->progress_opaque);
  }
  free (buf);
  return 0;
}

/* Everything between an empty file and a written, synced one. */
static int
fill_file (int fd, const char *path, uint64_t size,
           const struct create_options *opts)
{
  int r;

  if (fchmod (fd, 0600) == -1)
    return -errno;
  r = set_btrfs_flags (fd, path);
  if (r < 0)
    return r;
  /* Reserve first, so that ENOSPC comes now and extents are large. */
  if (fallocate (fd, 0, 0, size) == -1 && errno != EOPNOTSUPP) {
    r = -errno;
    log_error ("%s: fallocate %" PRIu64 " bytes: %m", path, size);
    return r;
  }
  r = write_zeroes (fd, path, size, opts);
  if (r < 0)
    return r;
  if (fsync (fd) == -1) {
    r = -errno;
    log_error ("%s: fsync: %m", path);
  }
  return r;
}

/* Refusals first, then create, fill, verify; removes the file on error. */
int
create_file (const char *path, uint64_t size,
             const struct create_options *opts, struct verify_result *res)
{
  uint64_t freed;
  int fd, r;

  r = create_check_size (path, size);
  if (r == 0)
    r = remove_existing (path, opts->force, &freed);
  if (r == 0)
    r = check_space (path, size, freed);
  if (r < 0)
    return r;
  fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1) {
    r = -errno;
    log_error ("%s: create: %m", path);
    return r;
  }
  r = fill_file (fd, path, size, opts);
  if (r == 0) {
    r = verify_fd (fd, path, &opts->verify, res);
    if (r < 0)
      log_error ("%s: verification could not run: %s", path, strerror (-r));
  }
  close (fd);
  if (r < 0 && unlink (path) == -1)
    log_error ("%s: cannot remove the partial file: %m", path);
  return r;
}
