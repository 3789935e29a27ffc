/* nbdswap: the swap header that attach writes itself instead of running
 * mkswap.  mkswap probes the device with libblkid before writing, and
 * with --integrity every sector never written since the integrity device
 * was made fails its tag when read: the probe logged an "INTEGRITY AEAD
 * ERROR" on every attach.  Writing the one page swapon reads, and
 * reading nothing, leaves no such read.
 *
 * The layout is the kernel's union swap_header (include/linux/swap.h),
 * version 1, as mm/swapfile.c's read_swap_header checks it, in the
 * machine's byte order (the kernel swaps a header of the other order):
 *
 *   0      1024 bytes of boot bits, zero
 *   1024   u32 version = 1
 *   1028   u32 last_page: the area's last page; the kernel uses pages
 *          0..last_page and refuses a header longer than the device
 *   1032   u32 nr_badpages = 0
 *   1036   16 bytes UUID (random, version 4)
 *   1052   16 bytes label: up to 15 and NUL-padded, as mkswap -L
 *   1068   zeros up to page_size - 10
 *   page_size - 10   "SWAPSPACE2"
 *
 * page_size is the machine's page size (sysconf), as mkswap's default.
 */
#ifndef NBDSWAP_SWAPHDR_H
#define NBDSWAP_SWAPHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWAPHDR_VERSION_OFF 1024
#define SWAPHDR_LAST_PAGE_OFF 1028
#define SWAPHDR_NR_BADPAGES_OFF 1032
#define SWAPHDR_UUID_OFF 1036
#define SWAPHDR_LABEL_OFF 1052
#define SWAPHDR_UUID_LEN 16
#define SWAPHDR_LABEL_LEN 16
#define SWAPHDR_MAGIC "SWAPSPACE2"
#define SWAPHDR_MAGIC_LEN 10

/* mkswap's smallest area: the header page and 9 for swap. */
#define SWAPHDR_MIN_PAGES 10

/* Fills page (page_size bytes) with the header of a swap area of bytes
 * (rounded down to whole pages) with uuid and label (cut to 15 bytes).  0; -EINVAL for a page_size the header cannot fit; -ENOSPC
 * below SWAPHDR_MIN_PAGES.  An area of more than 2^32 pages is cut to
 * the 2^32 a u32 last_page can name. */
extern int swaphdr_build (void *page, size_t page_size, uint64_t bytes,
                          const unsigned char uuid[SWAPHDR_UUID_LEN],
                          const char *label);

/* True if page (page_size bytes) ends with the signature. */
extern bool swaphdr_has_signature (const void *page, size_t page_size);

/* The machine's page size, the unit of a swap area. */
extern size_t swaphdr_page_size (void);

/* Writes the header of a new swap area over the first page of path, a
 * block device (its whole size, an O_DIRECT write) or a regular file
 * (its size), with a fresh random UUID, copied to uuid if not NULL.
 * Reads nothing from path.  0 or -errno. */
extern int swaphdr_write (const char *path, const char *label,
                          unsigned char uuid[SWAPHDR_UUID_LEN]);

#endif /* NBDSWAP_SWAPHDR_H */
