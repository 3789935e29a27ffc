/* nbdswap: the request sizes both servers advertise and accept.
 *
 * One definition for the plugin (nbdkit's .block_size callback) and the
 * native server (its NBD_INFO_BLOCK_SIZE reply), so that a client sees
 * the same constraints whichever server it reaches, and one rule for a
 * read or write over the maximum: it is refused with EINVAL and the
 * connection goes on (a write's payload is read and dropped first).
 *
 * The maximum is 32 MiB: the kernel's nbd client never sends more
 * (nbd_dev_add sets max_hw_sectors to 65536 sectors), and the native
 * server serves a request over its slot size through one large buffer
 * per connection of this size, which bounds its memory.  nbdkit 1.32
 * does not enforce a plugin's maximum (only its own 64 MiB, with
 * ENOMEM), so the plugin refuses what is over ours itself.
 */
#ifndef NBDSWAP_BLOCKSIZE_H
#define NBDSWAP_BLOCKSIZE_H

#include <stdint.h>

/* The largest read or write either server accepts. */
#define BLOCKSIZE_MAX (32 * 1024 * 1024)

/* The kernel swaps in 4 KiB pages: the preferred size, unless the
 * O_DIRECT alignment is larger. */
#define BLOCKSIZE_SWAP_PAGE 4096

/* NBD_INFO_BLOCK_SIZE's three numbers.  Hints: Linux's nbd client
 * ignores them, and a request smaller or less aligned than minimum still
 * works (through read-modify-write), it only costs more. */
struct blocksize {
  uint32_t minimum;             /* the O_DIRECT alignment (1: page cache) */
  uint32_t preferred;           /* a swap page, or the alignment if larger */
  uint32_t maximum;             /* BLOCKSIZE_MAX */
};

/* The constraints for a file whose O_DIRECT offset alignment is align
 * (a power of two up to DIO_ALIGN_MAX; 1 through the page cache). */
static inline struct blocksize
blocksize_for (uint32_t align)
{
  return (struct blocksize) {
    .minimum = align,
    .preferred = align > BLOCKSIZE_SWAP_PAGE ? align : BLOCKSIZE_SWAP_PAGE,
    .maximum = BLOCKSIZE_MAX,
  };
}

/* blocksize_check's refusal: the log line, and -EINVAL. */
extern int blocksize_refuse (const char *op, uint32_t count);

/* A read or write (op names it) of count bytes: 0 if within
 * BLOCKSIZE_MAX, else -EINVAL, with one log line saying so.  Inline:
 * every read and write is checked. */
static inline int
blocksize_check (const char *op, uint32_t count)
{
  return count <= BLOCKSIZE_MAX ? 0 : blocksize_refuse (op, count);
}

#endif /* NBDSWAP_BLOCKSIZE_H */
