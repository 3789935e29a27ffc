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

/* Learn the alignment of fd, opened with O_DIRECT: statx STATX_DIOALIGN
 * where the kernel answers, else the device's logical block size, else a
 * probe with reads of growing size.  Returns 0, or -EINVAL if the file
 * cannot do direct I/O at all, or another -errno. */
extern int dio_align_learn (int fd, struct dio_align *a);

#endif /* NBDSWAP_DIOALIGN_H */
