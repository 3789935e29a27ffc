/* nbdswap: the version-1 swap header, built and written without reading
 * the device (see swaphdr.h for the layout and why). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "swaphdr.h"

/* Stores v at off in the machine's byte order, as the kernel reads it. */
static void
put_u32 (unsigned char *page, size_t off, uint32_t v)
{
  memcpy (page + off, &v, sizeof v);
}

int
swaphdr_build (void *page, size_t page_size, uint64_t bytes,
               const unsigned char uuid[SWAPHDR_UUID_LEN], const char *label)
{
  unsigned char *p = page;
  uint64_t pages = bytes / page_size;

  if (page_size < 4096 || (page_size & (page_size - 1)) != 0)
    return -EINVAL;
  if (pages < SWAPHDR_MIN_PAGES)
    return -ENOSPC;
  /* last_page is a u32; the kernel caps the area at what it can map
   * anyway (swapfile_maximum_size), with a warning. */
  if (pages - 1 > UINT32_MAX)
    pages = (uint64_t) UINT32_MAX + 1;
  memset (p, 0, page_size);
  put_u32 (p, SWAPHDR_VERSION_OFF, 1);
  put_u32 (p, SWAPHDR_LAST_PAGE_OFF, (uint32_t) (pages - 1));
  put_u32 (p, SWAPHDR_NR_BADPAGES_OFF, 0);
  memcpy (p + SWAPHDR_UUID_OFF, uuid, SWAPHDR_UUID_LEN);
  /* As mkswap -L (util-linux 2.38) cuts it: always NUL-terminated. */
  memcpy (p + SWAPHDR_LABEL_OFF, label,
          strnlen (label, SWAPHDR_LABEL_LEN - 1));
  memcpy (p + page_size - SWAPHDR_MAGIC_LEN, SWAPHDR_MAGIC,
          SWAPHDR_MAGIC_LEN);
  return 0;
}

bool
swaphdr_has_signature (const void *page, size_t page_size)
{
  return page_size >= SWAPHDR_MAGIC_LEN
    && memcmp ((const char *) page + page_size - SWAPHDR_MAGIC_LEN,
               SWAPHDR_MAGIC, SWAPHDR_MAGIC_LEN) == 0;
}

size_t
swaphdr_page_size (void)
{
  long n = sysconf (_SC_PAGESIZE);

  return n > 0 ? (size_t) n : 4096;
}

/* A random (version 4, RFC 4122 variant) UUID, as mkswap's. */
static int
random_uuid (unsigned char uuid[SWAPHDR_UUID_LEN])
{
  ssize_t n;

  do
    n = getrandom (uuid, SWAPHDR_UUID_LEN, 0);
  while (n == -1 && errno == EINTR);
  if (n != SWAPHDR_UUID_LEN)
    return n == -1 ? -errno : -EIO;
  uuid[6] = (uuid[6] & 0x0f) | 0x40;
  uuid[8] = (uuid[8] & 0x3f) | 0x80;
  return 0;
}

/* Opens path for the header: a block device exclusively (refused while
 * mounted, swap or held, as mkswap does) and with O_DIRECT, so the page
 * goes to the device with no read around it; its size in bytes. */
static int
open_target (const char *path, uint64_t *bytes)
{
  struct stat st;
  int fd;

  if (stat (path, &st) == -1)
    return -errno;
  if (!S_ISBLK (st.st_mode) && !S_ISREG (st.st_mode))
    return -EINVAL;
  fd = open (path, O_WRONLY | O_CLOEXEC
             | (S_ISBLK (st.st_mode) ? O_EXCL | O_DIRECT : 0));
  if (fd == -1)
    return -errno;
  *bytes = (uint64_t) st.st_size;
  if (S_ISBLK (st.st_mode) && ioctl (fd, BLKGETSIZE64, bytes) == -1) {
    int r = -errno;
    close (fd);
    return r;
  }
  return fd;
}

/* Writes the page at offset 0 and through to the device or disk. */
static int
write_page (int fd, const void *page, size_t page_size)
{
  ssize_t n = pwrite (fd, page, page_size, 0);

  if (n == -1)
    return -errno;
  if ((size_t) n != page_size)
    return -EIO;
  return fsync (fd) == -1 ? -errno : 0;
}

int
swaphdr_write (const char *path, const char *label,
               unsigned char uuid[SWAPHDR_UUID_LEN])
{
  size_t page_size = swaphdr_page_size ();
  unsigned char id[SWAPHDR_UUID_LEN];
  uint64_t bytes = 0;
  void *page = NULL;
  int fd, r;

  if ((r = random_uuid (id)) < 0)
    return r;
  if (posix_memalign (&page, page_size, page_size) != 0)
    return -ENOMEM;
  fd = open_target (path, &bytes);
  r = fd < 0 ? fd : swaphdr_build (page, page_size, bytes, id, label);
  if (r == 0)
    r = write_page (fd, page, page_size);
  if (fd >= 0)
    close (fd);
  free (page);
  if (r == 0 && uuid)
    memcpy (uuid, id, SWAPHDR_UUID_LEN);
  return r;
}
