/* nbdswap: splitting requests into O_DIRECT segments (see include/plan.h). */
#include <config.h>

#include <assert.h>

#include "align.h"
#include "plan.h"

void
plan_init (struct io_plan *p, uint64_t offset, uint64_t count,
           uint32_t align, bool mem_ok, uint32_t chunk, uint32_t max_direct)
{
  assert (count > 0);
  assert (is_power_of_2 (align));
  assert (chunk >= align && is_aligned (chunk, align));
  assert (max_direct >= align && is_aligned (max_direct, align));

  p->offset = offset;
  p->end = offset + count;
  p->align = align;
  p->direct = mem_ok && is_aligned (offset, align) && is_aligned (count, align);
  p->pos = round_down (offset, align);
  p->cover_end = round_up (p->end, align);
  p->max_len = p->direct ? max_direct : chunk;
}

bool
plan_needs_rmw (uint64_t offset, uint64_t count, uint32_t align)
{
  return !is_aligned (offset, align) || !is_aligned (count, align);
}

/* Which edge blocks of a bounce segment the client leaves partly
 * unwritten: those must be read before the segment is written. */
static void
mark_partial_edges (struct io_seg *s, uint32_t align)
{
  uint32_t client_end = s->skip + s->n;

  s->read_first = s->skip > 0 || client_end < align;
  s->read_last = s->len > align
    && (client_end < s->len || s->skip > s->len - align);
}

void
plan_cut (struct io_plan *p, struct io_seg *s)
{
  uint64_t left, first, last;

  assert (p->pos < p->cover_end);
  left = p->cover_end - p->pos;
  s->file_off = p->pos;
  s->len = left < p->max_len ? (uint32_t) left : p->max_len;
  first = p->offset > p->pos ? p->offset : p->pos;
  last = p->end < p->pos + s->len ? p->end : p->pos + s->len;
  s->skip = (uint32_t) (first - p->pos);
  s->n = (uint32_t) (last - first);
  s->buf_off = (uint32_t) (first - p->offset);
  s->direct = p->direct;
  if (s->direct)
    s->read_first = s->read_last = false;
  else
    mark_partial_edges (s, p->align);

  assert (is_aligned (s->file_off, p->align) && is_aligned (s->len, p->align));
  assert (s->n > 0 && s->skip + s->n <= s->len);
  assert (!s->direct || (s->skip == 0 && s->n == s->len));

  p->pos += s->len;
}
