/* nbdswap: learning the O_DIRECT alignment (see include/dioalign.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/stat.h>

#include "align.h"
#include "dioalign.h"

/* statx through the system call: glibc 2.36's struct statx predates the
 * DIO alignment fields (Linux 6.1). */
static int
from_statx (int fd, struct dio_align *a)
{
  struct statx stx = { 0 };

  if (syscall (SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == -1)
    return -errno;
  if (!(stx.stx_mask & STATX_DIOALIGN))
    return -EOPNOTSUPP;                 /* this filesystem does not say */
  if (stx.stx_dio_offset_align == 0)
    return -EINVAL;                     /* it says: no direct I/O */
  a->offset = stx.stx_dio_offset_align;
  a->mem = stx.stx_dio_mem_align;
  a->source = "statx STATX_DIOALIGN";
  return 0;
}

/* The logical block size of the device under fd (the device itself for a
 * block device; the filesystem's device from sysfs for a file). */
static int
from_device (int fd, struct dio_align *a)
{
  struct stat st;
  char path[128];
  FILE *fp;
  unsigned v = 0;
  int bs;

  if (fstat (fd, &st) == -1)
    return -errno;
  if (S_ISBLK (st.st_mode)) {
    if (ioctl (fd, BLKSSZGET, &bs) == -1)
      return -errno;
    a->offset = a->mem = (uint32_t) bs;
    a->source = "the device's logical block size (BLKSSZGET)";
    return 0;
  }
  /* A partition has no queue/ of its own: its disk's is one level up. */
  for (int up = 0; up < 2; up++) {
    snprintf (path, sizeof path, "/sys/dev/block/%u:%u/%squeue/"
              "logical_block_size", major (st.st_dev), minor (st.st_dev),
              up ? "../" : "");
    fp = fopen (path, "re");
    if (fp == NULL)
      continue;
    if (fscanf (fp, "%u", &v) != 1)
      v = 0;
    fclose (fp);
    if (v > 0) {
      a->offset = a->mem = v;
      a->source = "the filesystem device's logical block size (sysfs)";
      return 0;
    }
  }
  return -ENOENT;
}

/* Try direct reads of 512, 1024, ... bytes at offset 0: the first size
 * the file accepts is its alignment (btrfs, network filesystems). */
static int
from_probe (int fd, struct dio_align *a)
{
  void *buf;
  int r = -EINVAL;

  if (posix_memalign (&buf, DIO_ALIGN_MAX, DIO_ALIGN_MAX) != 0)
    return -ENOMEM;
  for (uint32_t size = 512; size <= DIO_ALIGN_MAX; size *= 2) {
    if (pread (fd, buf, size, 0) >= 0) {
      a->offset = a->mem = size;
      a->source = "a probe with direct reads";
      r = 0;
      break;
    }
    if (errno != EINVAL) {
      r = -errno;
      break;
    }
  }
  free (buf);
  return r;
}

int
dio_align_learn (int fd, struct dio_align *a)
{
  int r = from_statx (fd, a);

  if (r == -EINVAL)
    return r;
  if (r < 0)
    r = from_device (fd, a);
  if (r < 0)
    r = from_probe (fd, a);
  if (r < 0)
    return r;
  /* Some filesystems report a smaller memory alignment than offset
   * alignment (4 bytes on NVMe); none should report a larger one, but
   * an unset (0) value means "same as offset". */
  if (a->mem == 0)
    a->mem = a->offset;
  /* Bounce slots and edge blocks sit at multiples of the offset alignment
   * inside an aligned buffer: a device that wants more of memory than of
   * offsets (dma_alignment 4095 on a 512-byte device) gets its I/O
   * planned at the memory alignment. */
  if (a->mem > a->offset)
    a->offset = a->mem;
  if (!is_power_of_2 (a->offset) || a->offset > DIO_ALIGN_MAX
      || !is_power_of_2 (a->mem) || a->mem > DIO_ALIGN_MAX)
    return -EINVAL;
  return 0;
}
