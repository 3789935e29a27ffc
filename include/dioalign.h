/* nbdswap: learning the O_DIRECT alignment of the backing file. */
#ifndef NBDSWAP_DIOALIGN_H
#define NBDSWAP_DIOALIGN_H

#include <stdint.h>

struct dio_align {
  uint32_t offset;              /* file offset and length alignment */
  uint32_t mem;                 /* buffer address alignment */
  const char *source;           /* how it was learned, for the log */
};

/* Largest alignment accepted: beyond it something is wrong. */
#define DIO_ALIGN_MAX 65536

/* The least memory alignment of a buffer handed to the kernel as is. */
#define DIO_MEM_MIN 4096

/* The memory alignment the servers use: the file's, but at least a page.
 * Their own buffers are allocated so; a client's buffer goes to the
 * kernel as is only if it meets it, else it is bounced.  The file's own
 * answer is not enough: ext4 treats a direct write whose memory is not
 * aligned to its block size as unaligned I/O, taking the inode lock
 * exclusively and waiting for every direct I/O in flight, and under
 * memory pressure every later swap write then queues behind the slowest
 * one in flight (docs/design.md, "The plan"). */
static inline uint32_t
dio_mem_align (const struct dio_align *a)
{
  return a->mem > DIO_MEM_MIN ? a->mem : DIO_MEM_MIN;
}

/* Learn the alignment of fd, opened with O_DIRECT: statx STATX_DIOALIGN
 * where the kernel answers, else the device's logical block size, else a
 * probe with reads of growing size.  Returns 0, or -EINVAL if the file
 * cannot do direct I/O at all, or another -errno. */
extern int dio_align_learn (int fd, struct dio_align *a);

#endif /* NBDSWAP_DIOALIGN_H */
