/* nbdswap native server: what each NBD command does (see native-conn.h).
 *
 * The protocol's part is here: a command's flags and range are checked,
 * a write's payload is received into its buffer at the place of its
 * data in the aligned cover (buf + offset % align).  The rest is the
 * request engine's (request.h), driven step by step by the event loop
 * (native_advance, native-conn.c): it submits the file operation the
 * engine asks for, parks a request that waits for a lock another request
 * holds, or queues the reply; it hands every completion back to the
 * engine and retries parked slots every turn, as it does a request
 * waiting for the connection's mid buffers or its one large buffer (the
 * buffers: assign_buffer).
 */
#include <config.h>

#include <assert.h>
#include <stdatomic.h>

#include "align.h"
#include "blocksize.h"
#include "log.h"
#include "native-conn.h"
#include "request.h"

static void start (struct conn *c, struct slot *s);

/* Requests served through a run of mid buffers and through a large
 * buffer, and requests that waited for mid buffers, all connections. */
static atomic_uint_fast64_t run_uses, large_uses, mid_waits;

uint64_t
native_run_uses (void)
{
  return atomic_load (&run_uses);
}

uint64_t
native_large_uses (void)
{
  return atomic_load (&large_uses);
}

uint64_t
native_mid_waits (void)
{
  return atomic_load (&mid_waits);
}

/* Is [off, off+len) a non-empty range inside the export? */
static bool
in_range (const struct native_export *e, uint64_t off, uint32_t len)
{
  return len > 0 && off <= e->size && len <= e->size - off;
}

/* The room for the aligned cover of a request in a run of n mid
 * buffers: all of it but the last one's scratch block, which stays the
 * run's (buffer_stride in native-conn.c: a multiple of mem_align). */
static size_t
run_room (const struct conn *c, unsigned n)
{
  return n * c->mid_stride - round_up (c->e->align, c->e->mem_align);
}

/* The room in s's buffer for the aligned cover of a request of up to
 * its tier's size at any offset; the scratch block follows on the next
 * memory-aligned address (see conn_buffers). */
static uint32_t
cover_room (struct conn *c, struct slot *s)
{
  if (s->tier == BUF_MID)
    return (uint32_t) run_room (c, s->mid_n);
  return (s->tier == BUF_SMALL ? NATIVE_SMALL_DATA : BLOCKSIZE_MAX)
    + 2 * c->e->align;
}

/* How many adjacent mid buffers a request of len bytes needs, at any
 * offset: 1 up to NATIVE_MID_DATA; over NATIVE_MID_BUFS, it needs the
 * large buffer. */
static unsigned
mid_run_len (const struct conn *c, uint32_t len)
{
  unsigned n = 1;

  while (n <= NATIVE_MID_BUFS && run_room (c, n) < len + 2 * c->e->align)
    n++;
  return n;
}

/* The bits of mid buffers first to first + n - 1 in conn's mid_free. */
static_assert (NATIVE_MID_BUFS < 32, "mid_free has a bit per mid buffer");
static uint32_t
run_bits (unsigned first, unsigned n)
{
  return ((1u << n) - 1) << first;
}

/* The first run of n free mid buffers, or -1. */
static int
mid_run_find (const struct conn *c, unsigned n)
{
  for (unsigned j = 0; j + n <= NATIVE_MID_BUFS; j++)
    if ((c->mid_free & run_bits (j, n)) == run_bits (j, n))
      return (int) j;
  return -1;
}

/* The buffer size s needs, and for BUF_MID in *n how many mid buffers.
 * Zeroes and flushes carry no data: the slot's own buffer is bounce
 * room enough for them. */
static enum buf_tier
tier_for (const struct conn *c, const struct slot *s, unsigned *n)
{
  if (s->len <= NATIVE_SMALL_DATA || s->type == NBD_CMD_WRITE_ZEROES ||
      s->type == NBD_CMD_FLUSH)
    return BUF_SMALL;
  *n = mid_run_len (c, s->len);
  return *n <= NATIVE_MID_BUFS ? BUF_MID : BUF_LARGE;
}

/* Make buf (registered as reg, -1: not registered) s's buffer. */
static void
give_buffer (struct slot *s, enum buf_tier tier, unsigned char *buf,
             size_t len, int reg)
{
  s->tier = tier;
  s->buf = buf;
  s->buf_len = len;
  s->buf_reg = reg;
}

/* Give s a buffer that holds its cover: its slot's small one, a run of
 * free mid ones (registered: one mid buffer, or all of them as one for
 * a longer run), or the one large buffer.  False if it needs mid
 * buffers or the large one and they are not free: it waits until a
 * request using them is done (native_buffer_release).  Mid buffers go oldest request first: once
 * one waits in a turn of the event loop (parked requests are retried
 * oldest first, then the payload, then new headers), no later request
 * gets any that turn, so a large request is not starved by small ones
 * that each fit in what is free. */
static bool
assign_buffer (struct conn *c, struct slot *s)
{
  unsigned n;
  int j;

  switch (tier_for (c, s, &n)) {
  case BUF_SMALL:
    give_buffer (s, BUF_SMALL, native_small_buf (c, s->idx),
                 c->small_stride, (int) s->idx);
    return true;
  case BUF_MID:
    j = c->mid_blocked ? -1 : mid_run_find (c, n);
    if (j < 0) {
      if (!s->waited)
        atomic_fetch_add (&mid_waits, 1);
      s->waited = true;
      c->mid_blocked = true;
      return false;
    }
    c->mid_free &= ~run_bits ((unsigned) j, n);
    give_buffer (s, BUF_MID, native_mid_buf (c, (unsigned) j),
                 n * c->mid_stride,
                 n == 1 ? NATIVE_SLOTS + j : NATIVE_RUN_REG);
    s->mid_first = (unsigned) j;
    s->mid_n = n;
    if (s->len > NATIVE_MID_DATA)   /* one buffer may hold a little more */
      atomic_fetch_add (&run_uses, 1);
    return true;
  default:                      /* BUF_LARGE */
    if (c->large_busy)
      return false;
    c->large_busy = true;
    atomic_fetch_add (&large_uses, 1);
    give_buffer (s, BUF_LARGE, c->large, c->large_len, -1);
    return true;
  }
}

/* Take back s's buffer: its request is done, or dropped. */
void
native_buffer_release (struct conn *c, struct slot *s)
{
  if (s->tier == BUF_MID) {
    assert ((c->mid_free & run_bits (s->mid_first, s->mid_n)) == 0);
    c->mid_free |= run_bits (s->mid_first, s->mid_n);
  }
  else if (s->tier == BUF_LARGE)
    c->large_busy = false;
  give_buffer (s, BUF_NONE, NULL, 0, -1);
}

/* Hand s to the request engine: its data (in place in its buffer, or
 * none), the rest of the buffer as bounce room, and its scratch block. */
static void
start (struct conn *c, struct slot *s)
{
  static const enum req_cmd cmds[] = {
    [NBD_CMD_READ] = REQ_READ, [NBD_CMD_WRITE] = REQ_WRITE,
    [NBD_CMD_FLUSH] = REQ_FLUSH, [NBD_CMD_WRITE_ZEROES] = REQ_ZERO,
  };
  struct req *r = &s->req;
  bool data = s->type == NBD_CMD_READ || s->type == NBD_CMD_WRITE;
  uint32_t room;

  if (s->buf == NULL && !assign_buffer (c, s)) {
    native_park (c, s);         /* waits for mid buffers or the large one */
    return;
  }
  /* The caller's part of the request only: the engine sets its own
   * state, so the struct is not cleared for every request. */
  room = cover_room (c, s);
  r->cmd = cmds[s->type];
  r->offset = s->offset;
  r->count = s->len;            /* 0 for a flush (native_request) */
  r->fua = s->flags & NBD_CMD_FLAG_FUA;
  r->data = data ? s->buf + s->skip : NULL;
  r->in_place = data;
  r->bounce = s->buf;
  r->bounce_size = room;
  r->scratch = s->buf + round_up (room, c->e->mem_align);
  r->may_block = false;
  s->started = true;
  native_advance (c, s, req_start (c->e->target, r));
}

/* Flags the command may carry: FUA on any (the protocol says so, once
 * negotiated), NO_HOLE and FAST_ZERO on WRITE_ZEROES; nothing else was
 * negotiated. */
static bool
flags_valid (const struct slot *s)
{
  uint16_t ok = NBD_CMD_FLAG_FUA;

  if (s->type == NBD_CMD_WRITE_ZEROES)
    ok |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
  return (s->flags & ~ok) == 0;
}

/* Why a write is refused (a positive errno), or 0: checked in nbdkit's
 * order, so that both servers give the same answer.  Outside the export
 * (a zero length included) is ENOSPC, as the protocol suggests for
 * writes; then the flags; then the size (blocksize.h). */
static int
write_refusal (const struct native_export *e, const struct slot *s)
{
  if (!in_range (e, s->offset, s->len))
    return ENOSPC;
  if (!flags_valid (s))
    return EINVAL;
  return -blocksize_check (req_cmd_name (REQ_WRITE), s->len);
}

void
native_request (struct conn *c, struct slot *s)
{
  const struct native_export *e = c->e;
  bool flags_ok = flags_valid (s);

  s->discard = false;
  s->skip = (uint32_t) (s->offset - round_down (s->offset, e->align));
  switch (s->type) {
  case NBD_CMD_READ:
    if (!flags_ok || !in_range (e, s->offset, s->len) ||
        blocksize_check (req_cmd_name (REQ_READ), s->len) < 0)
      return native_reply (c, s, EINVAL);
    start (c, s);
    return;
  case NBD_CMD_WRITE:
    /* Refused: the payload is still on the wire and is read (through
     * the staging buffer, whatever its length) and dropped before the
     * next header. */
    s->discard_err = write_refusal (e, s);
    s->discard = s->discard_err != 0;
    s->state = SLOT_PAYLOAD;
    c->payload = s;
    return;
  case NBD_CMD_WRITE_ZEROES:
    if (!in_range (e, s->offset, s->len))
      return native_reply (c, s, ENOSPC);
    if (!flags_ok)
      return native_reply (c, s, EINVAL);
    /* Zeroing is never faster than writing: a client asking for a fast
     * zero is told to write instead (ENOTSUP), as the plugin tells it
     * (see swapfile_can_fast_zero for why both offer it). */
    if (s->flags & NBD_CMD_FLAG_FAST_ZERO)
      return native_reply (c, s, ENOTSUP);
    start (c, s);
    return;
  case NBD_CMD_FLUSH:
    /* Offset and length are reserved, zero (the protocol). */
    if (!flags_ok || s->offset != 0 || s->len != 0)
      return native_reply (c, s, EINVAL);
    start (c, s);
    return;
  case NBD_CMD_DISC:
    native_stop_reading (c);
    native_reply_drop (c, s);
    return;
  default:
    /* TRIM is not offered (a swap file must keep its blocks), and
     * nothing else was negotiated. */
    native_reply (c, s, EINVAL);
    return;
  }
}

bool
native_payload_ready (struct conn *c, struct slot *s)
{
  return assign_buffer (c, s);
}

void
native_payload_done (struct conn *c, struct slot *s)
{
  if (s->discard) {
    native_reply (c, s, s->discard_err);
    return;
  }
  start (c, s);
}

void
native_unpark (struct conn *c)
{
  struct slot *s = c->parked;

  c->parked = c->parked_tail = NULL;
  c->nparked = 0;
  c->mid_blocked = false;       /* a new turn: the oldest waiter first */
  while (s) {
    struct slot *next = s->next;

    s->next = NULL;
    if (s->started)
      native_advance (c, s, req_resume (c->e->target, &s->req));
    else
      start (c, s);
    s = next;
  }
}
