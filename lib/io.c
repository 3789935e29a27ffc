/* nbdswap: the request executor (see include/io.h). */
#include <config.h>

#include <assert.h>
#include <string.h>

#include "align.h"
#include "io.h"
#include "plan.h"
#include "stats.h"

/* The largest direct segment of a client buffer: nbdkit's requests are
 * at most 64 MiB, so one segment, handed whole to the kernel. */
#define MAX_DIRECT (UINT32_C (64) << 20)

/* Segments in flight at once for one request.  A 4 KiB swap page is one
 * segment; more only helps requests larger than the bounce buffer. */
#define IO_BATCH_MAX 32

/* One batch of segments: the most the ring and the bounce buffer hold. */
struct batch {
  struct io_seg seg[IO_BATCH_MAX];
  uint32_t boff[IO_BATCH_MAX];   /* bounce offset of bounce segments */
  struct engine_op op[IO_BATCH_MAX];
  unsigned n;
};

/* Fill a batch from the plan: stop at the ring's depth or when the next
 * bounce segment would not fit in the bounce buffer.  *held carries a
 * segment that did not fit over to the next batch. */
static void
batch_fill (struct batch *b, struct io_plan *p, struct worker *w,
            struct io_seg *held, bool *have_held)
{
  unsigned max = w->queue_depth < IO_BATCH_MAX
    ? w->queue_depth : IO_BATCH_MAX;
  uint32_t used = 0;
  struct io_seg s;

  b->n = 0;
  while (b->n < max) {
    if (*have_held) {
      s = *held;
      *have_held = false;
    }
    else if (!plan_next (p, &s))
      break;
    if (!s.direct && s.len > w->bounce_size - used) {
      *held = s;
      *have_held = true;
      break;
    }
    b->seg[b->n] = s;
    b->boff[b->n] = used;
    if (!s.direct)
      used += s.len;
    b->n++;
  }
  assert (b->n > 0 || (!*have_held && p->pos >= p->cover_end));
}

/* Point op i at its memory: direct_mem (the client's buffer at the
 * segment, or the zero page) if direct, else its bounce slot. */
static void
batch_op (struct batch *b, unsigned i, struct worker *w, void *direct_mem,
          bool write)
{
  struct io_seg *s = &b->seg[i];

  b->op[i].buf = s->direct ? direct_mem : w->bounce + b->boff[i];
  b->op[i].off = s->file_off;
  b->op[i].len = s->len;
  b->op[i].write = write;
}

int
io_read (struct io_target *t, struct worker *w, void *buf,
         uint32_t count, uint64_t offset)
{
  struct io_plan p;
  struct batch b;
  struct io_seg held;
  bool have_held = false;
  int r;

  plan_init (&p, offset, count, t->align, ptr_is_aligned (buf, t->mem_align),
             t->bounce_size, MAX_DIRECT);
  if (!p.direct)
    STATS_ADD (bounced, 1);
  for (;;) {
    batch_fill (&b, &p, w, &held, &have_held);
    if (b.n == 0)
      break;
    for (unsigned i = 0; i < b.n; i++)
      batch_op (&b, i, w, (char *) buf + b.seg[i].buf_off, false);
    r = t->engine->run (w, b.op, b.n, false);
    if (r < 0)
      return r;
    for (unsigned i = 0; i < b.n; i++)
      if (!b.seg[i].direct)
        memcpy ((char *) buf + b.seg[i].buf_off,
                w->bounce + b.boff[i] + b.seg[i].skip, b.seg[i].n);
  }
  STATS_ADD (reads, 1);
  STATS_ADD (read_bytes, count);
  return 0;
}

/* Read the partial edge blocks of the batch's bounce segments. */
static int
batch_read_edges (struct io_target *t, struct worker *w, struct batch *b)
{
  struct engine_op ops[IO_BATCH_MAX * 2];
  unsigned n = 0;

  for (unsigned i = 0; i < b->n; i++) {
    struct io_seg *s = &b->seg[i];
    unsigned char *mem = w->bounce + b->boff[i];

    if (s->read_first)
      ops[n++] = (struct engine_op) {
        .buf = mem, .off = s->file_off, .len = t->align };
    if (s->read_last)
      ops[n++] = (struct engine_op) {
        .buf = mem + s->len - t->align,
        .off = s->file_off + s->len - t->align, .len = t->align };
  }
  if (n == 0)
    return 0;
  /* The ring holds queue_depth entries: run the edges in slices. */
  for (unsigned i = 0; i < n; i += w->queue_depth) {
    unsigned k = n - i < w->queue_depth ? n - i : w->queue_depth;
    int r = t->engine->run (w, ops + i, k, false);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Write [offset, offset+count) from buf, or zeroes if buf is NULL. */
static int
write_range (struct io_target *t, struct worker *w, const void *buf,
             uint32_t count, uint64_t offset, bool fua)
{
  struct io_plan p;
  struct batch b;
  struct io_seg held;
  bool have_held = false;
  bool zero = buf == NULL;
  int r;

  plan_init (&p, offset, count, t->align,
             zero || ptr_is_aligned (buf, t->mem_align),
             t->bounce_size, zero ? t->zero_size : MAX_DIRECT);
  if (!p.direct)
    STATS_ADD (bounced, 1);
  for (;;) {
    batch_fill (&b, &p, w, &held, &have_held);
    if (b.n == 0)
      return 0;
    r = batch_read_edges (t, w, &b);
    if (r < 0)
      return r;
    for (unsigned i = 0; i < b.n; i++) {
      struct io_seg *s = &b.seg[i];
      unsigned char *mem = w->bounce + b.boff[i] + s->skip;

      batch_op (&b, i, w, zero ? (void *) t->zero_buf
                : (char *) buf + s->buf_off, true);
      if (s->direct)
        continue;
      if (zero)
        memset (mem, 0, s->n);
      else
        memcpy (mem, (const char *) buf + s->buf_off, s->n);
    }
    r = t->engine->run (w, b.op, b.n, fua);
    if (r < 0)
      return r;
  }
}

/* Lock the write's stripes (exclusively if it read-modify-writes), write,
 * unlock. */
static int
locked_write (struct io_target *t, struct worker *w, const void *buf,
              uint32_t count, uint64_t offset, bool fua)
{
  uint64_t start = round_down (offset, t->align);
  uint64_t mask = rangelock_mask (start,
                                  round_up (offset + count, t->align) - start);
  bool rmw = plan_needs_rmw (offset, count, t->align);
  int r;

  if (rmw)
    STATS_ADD (rmw, 1);
  rangelock_lock (&t->locks, mask, rmw);
  r = write_range (t, w, buf, count, offset, fua);
  rangelock_unlock (&t->locks, mask);
  return r;
}

int
io_write (struct io_target *t, struct worker *w, const void *buf,
          uint32_t count, uint64_t offset, bool fua)
{
  int r = locked_write (t, w, buf, count, offset, fua);

  if (r == 0) {
    STATS_ADD (writes, 1);
    STATS_ADD (write_bytes, count);
  }
  return r;
}

int
io_zero (struct io_target *t, struct worker *w, uint32_t count,
         uint64_t offset, bool fua)
{
  int r = locked_write (t, w, NULL, count, offset, fua);

  if (r == 0)
    STATS_ADD (zeroes, 1);
  return r;
}

int
io_flush (struct io_target *t, struct worker *w)
{
  int r = t->engine->sync (w);

  if (r == 0)
    STATS_ADD (flushes, 1);
  return r;
}
