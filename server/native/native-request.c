/* nbdswap native server: what each NBD command does (see native-conn.h).
 *
 * The protocol's part is here: a command's flags and range are checked,
 * a write's payload is received into its slot's buffer at the place of
 * its data in the aligned cover (buf + offset % align).  The rest is the
 * request engine's (request.h), driven step by step by the event loop
 * (native_advance, native-conn.c): it submits the file operation the
 * engine asks for, parks a request that waits for a lock another request
 * holds, or queues the reply; it hands every completion back to the
 * engine and retries parked slots every turn, as it does a request
 * waiting for the connection's one large buffer.
 */
#include <config.h>

#include <stdatomic.h>

#include "align.h"
#include "blocksize.h"
#include "log.h"
#include "native-conn.h"
#include "request.h"

static void start (struct conn *c, struct slot *s);

/* Requests served through a large buffer, all connections. */
static atomic_uint_fast64_t large_uses;

uint64_t
native_large_uses (void)
{
  return atomic_load (&large_uses);
}

/* Is [off, off+len) a non-empty range inside the export? */
static bool
in_range (const struct native_export *e, uint64_t off, uint32_t len)
{
  return len > 0 && off <= e->size && len <= e->size - off;
}

/* The room in s's buffer for the aligned cover of a request of up to
 * NATIVE_SLOT_DATA (or BLOCKSIZE_MAX) bytes at any offset; the
 * scratch block follows on the next memory-aligned address (see
 * conn_buffers). */
static uint32_t
cover_room (struct conn *c, struct slot *s)
{
  return (s->large ? BLOCKSIZE_MAX : NATIVE_SLOT_DATA)
    + 2 * c->e->align;
}

/* Give s a buffer that holds its cover: its own slot's, or the one large
 * buffer.  False if it needs the large buffer and that is taken. */
static bool
assign_buffer (struct conn *c, struct slot *s)
{
  if (s->len <= NATIVE_SLOT_DATA || s->type == NBD_CMD_WRITE_ZEROES ||
      s->type == NBD_CMD_FLUSH) {
    /* Zeroes and flushes carry no data: the slot's own buffer is bounce
     * room enough. */
    s->buf = c->slot_mem + s->idx * c->slot_stride;
    s->large = false;
    return true;
  }
  if (c->large_busy)
    return false;
  c->large_busy = true;
  atomic_fetch_add (&large_uses, 1);
  s->large = true;
  s->buf = c->large;
  return true;
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
    native_park (c, s);         /* waits for the large buffer */
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

  s->buf = NULL;
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

  c->parked = NULL;
  c->nparked = 0;
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
