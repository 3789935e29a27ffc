/* nbdswap: the I/O plan, which splits one NBD request into O_DIRECT
 * segments.
 *
 * A request [offset, offset+count) either goes direct (its offset, length
 * and buffer all meet the O_DIRECT alignment: the client's buffer is used
 * as is, no copy), or it goes through the worker's bounce buffer: the
 * aligned cover [round_down(offset), round_up(offset+count)) is cut into
 * chunks of at most `chunk` bytes, and each chunk carries the part of the
 * client's range that falls inside it.
 *
 * Invariants of every segment (asserted in plan.c):
 *   - file_off and len are multiples of align, len > 0;
 *   - [skip, skip+n) lies inside [0, len) and n > 0;
 *   - a direct segment has skip == 0 and n == len;
 *   - segments come in file order, are disjoint, and their client parts
 *     exactly tile [0, count) of the client buffer (buf_off is where each
 *     part starts).
 * For writes, read_first/read_last say which edge blocks of a bounce
 * segment the client does not fully overwrite: they must be read first
 * (read-modify-write) and the write must hold its range lock exclusively.
 */
#ifndef NBDSWAP_PLAN_H
#define NBDSWAP_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "align.h"

struct io_seg {
  uint64_t file_off;            /* where the segment starts in the file */
  uint32_t len;                 /* bytes of file I/O */
  uint32_t buf_off;             /* client buffer offset of its first byte */
  uint32_t skip;                /* bytes before the client's part */
  uint32_t n;                   /* client bytes in this segment */
  bool direct;                  /* client buffer used as is */
  bool read_first;              /* first block is partial (RMW) */
  bool read_last;               /* last block is partial, and not the first */
};

struct io_plan {
  uint64_t offset, end;         /* the client's range */
  uint64_t pos, cover_end;      /* next file offset; end of the cover */
  uint32_t align;
  uint32_t max_len;             /* longest segment */
  bool direct;
};

/* Plan a request.  mem_ok: the buffer meets the memory alignment (or
 * there is no client buffer, as for zeroes, whose zero page is aligned).
 * chunk: bounce size (a multiple of align); max_direct: the longest direct
 * segment (multiples of align).  count must be > 0. */
extern void plan_init (struct io_plan *p, uint64_t offset, uint64_t count,
                       uint32_t align, bool mem_ok, uint32_t chunk,
                       uint32_t max_direct);

/* plan_next's work: cut the next segment into *seg (one is left). */
extern void plan_cut (struct io_plan *p, struct io_seg *seg);

/* The next segment in *seg; false when the plan is done.  Inline: the
 * request engine asks once more after a request's last segment. */
static inline bool
plan_next (struct io_plan *p, struct io_seg *seg)
{
  if (p->pos >= p->cover_end)
    return false;
  plan_cut (p, seg);
  return true;
}

/* The common request planned at once: one direct segment (offset, count
 * and memory aligned, count at most max_direct: a swapped page).  True
 * with that segment in *seg and nothing left in p (plan_next returns
 * false), as plan_init and one plan_next would give; false, touching
 * nothing, for any other request (plan_init plans it).  count > 0. */
static inline bool
plan_one_direct (struct io_plan *p, struct io_seg *seg, uint64_t offset,
                 uint32_t count, uint32_t align, bool mem_ok,
                 uint32_t max_direct)
{
  if (!mem_ok || !is_aligned (offset | count, align) || count > max_direct)
    return false;
  *seg = (struct io_seg) {
    .file_off = offset, .len = count, .n = count, .direct = true,
  };
  p->pos = p->cover_end = offset + count;
  p->direct = true;
  return true;
}

/* True if any segment of this request needs read-modify-write. */
extern bool plan_needs_rmw (uint64_t offset, uint64_t count, uint32_t align);

#endif /* NBDSWAP_PLAN_H */
