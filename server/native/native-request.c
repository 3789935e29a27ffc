/* nbdswap native server: what each NBD command does (see native-conn.h).
 *
 * A request runs as a small state machine over its slot's buffer; every
 * step is one file operation started with native_file_start, and
 * native_op_step_done moves it on.  A step that must wait (the large
 * buffer is taken; another connection holds a lock this write needs)
 * parks the slot, and the event loop retries parked slots every turn.
 *
 * Unaligned requests need no separate bounce buffer: the data is placed
 * at buf + skip, so the slot's buffer is the aligned cover of the
 * request.  An unaligned write first reads the partial edge blocks into
 * the slot's scratch block and copies in the bytes the client does not
 * overwrite (read-modify-write), holding its stripes exclusively so that
 * no other write (of any connection) touches them meanwhile.
 */
#include <config.h>

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "align.h"
#include "log.h"
#include "native-conn.h"
#include "rangelock.h"
#include "stats.h"

static void run (struct conn *c, struct slot *s);

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

/* The aligned cover of [off, off+len). */
static void
set_cover (struct conn *c, struct slot *s, uint64_t off, uint32_t len)
{
  uint32_t a = c->e->align;

  s->cover_off = round_down (off, a);
  s->skip = (uint32_t) (off - s->cover_off);
  s->cover_len = (uint32_t) (round_up (off + len, a) - s->cover_off);
}

/* The scratch block after the cover room of s's buffer. */
static unsigned char *
scratch (struct conn *c, struct slot *s)
{
  size_t room = s->large ? NATIVE_MAX_REQUEST : NATIVE_SLOT_DATA;

  return s->buf + room + 2 * (size_t) c->e->align;
}

/* Give s a buffer that holds its cover: its own slot's, or the one large
 * buffer.  False if it needs the large buffer and that is taken. */
static bool
assign_buffer (struct conn *c, struct slot *s)
{
  if (s->len <= NATIVE_SLOT_DATA) {
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

/* Wait for the next turn of the event loop. */
static void
park (struct conn *c, struct slot *s)
{
  s->state = SLOT_PARKED;
  s->next = c->parked;
  c->parked = s;
  c->nparked++;
}

/* A read or write longer than we announced: the protocol lets us drop
 * the connection, and we cannot buffer it. */
static void
too_long (struct conn *c, struct slot *s)
{
  log_error ("native: %s of %" PRIu32 " bytes is over the maximum of %d "
             "bytes announced: closing the connection",
             s->type == NBD_CMD_READ ? "read" : "write", s->len,
             NATIVE_MAX_REQUEST);
  native_stop_reading (c);
  native_reply_drop (c, s);
}

/* Choose the first phase of a write of [offset, offset+len) whose data
 * is in place, and start it. */
static void
write_start (struct conn *c, struct slot *s)
{
  bool head = s->skip != 0;
  bool tail = !is_aligned (s->skip + s->len, c->e->align);

  s->lock_mask = 0;
  s->phase = head ? PH_RMW_HEAD : tail ? PH_RMW_TAIL : PH_WRITE;
  if (head || tail)
    STATS_ADD (rmw, 1);
  run (c, s);
}

/* The next piece of a WRITE_ZEROES: at most one slot buffer of zeroes,
 * written like a write. */
static void
zero_next (struct conn *c, struct slot *s)
{
  uint64_t left = s->zero_end - s->zero_pos;
  uint32_t n = left < NATIVE_SLOT_DATA ? (uint32_t) left : NATIVE_SLOT_DATA;

  s->offset = s->zero_pos;
  s->len = n;
  s->zero_pos += n;
  set_cover (c, s, s->offset, n);
  assign_buffer (c, s);         /* n fits a slot: never the large one */
  memset (s->buf + s->skip, 0, n);
  write_start (c, s);
}

/* Take the stripes a write needs; false (and parked) if another write
 * holds them. */
static bool
lock_for_write (struct conn *c, struct slot *s)
{
  bool excl = s->phase != PH_WRITE || s->skip != 0 ||
    !is_aligned (s->skip + s->len, c->e->align);
  uint64_t mask;

  if (s->lock_mask)
    return true;
  mask = rangelock_mask (s->cover_off, s->cover_len);
  if (!native_lock_try (mask, excl, &s->lock_waiting)) {
    park (c, s);
    return false;
  }
  s->lock_mask = mask;
  s->lock_excl = excl;
  return true;
}

/* Let go of the stripes a write held. */
static void
unlock_write (struct slot *s)
{
  if (s->lock_mask)
    native_lock_release (s->lock_mask, s->lock_excl);
  s->lock_mask = 0;
}

/* Start (or retry, after parking) the current phase of s. */
static void
run (struct conn *c, struct slot *s)
{
  uint32_t a = c->e->align;

  switch (s->phase) {
  case PH_READ:
    if (s->buf == NULL && !assign_buffer (c, s)) {
      park (c, s);
      return;
    }
    native_file_start (c, s, FOP_READ, s->buf, s->cover_off, s->cover_len);
    return;
  case PH_RMW_HEAD:
    if (lock_for_write (c, s))
      native_file_start (c, s, FOP_READ, scratch (c, s), s->cover_off, a);
    return;
  case PH_RMW_TAIL:
    if (lock_for_write (c, s))
      native_file_start (c, s, FOP_READ, scratch (c, s),
                         s->cover_off + s->cover_len - a, a);
    return;
  case PH_WRITE:
    if (lock_for_write (c, s))
      native_file_start (c, s, FOP_WRITE, s->buf, s->cover_off,
                         s->cover_len);
    return;
  case PH_SYNC:
    native_file_start (c, s, FOP_SYNC, NULL, 0, 0);
    return;
  }
}

/* Flags the command may carry: FUA on any (the protocol says so, once
 * negotiated), NO_HOLE on WRITE_ZEROES; nothing else was negotiated. */
static bool
flags_valid (const struct slot *s)
{
  uint16_t ok = NBD_CMD_FLAG_FUA;

  if (s->type == NBD_CMD_WRITE_ZEROES)
    ok |= NBD_CMD_FLAG_NO_HOLE;
  return (s->flags & ~ok) == 0;
}

void
native_request (struct conn *c, struct slot *s)
{
  const struct native_export *e = c->e;
  bool flags_ok = flags_valid (s);

  s->buf = NULL;
  s->discard = false;
  s->lock_mask = 0;
  s->lock_waiting = false;
  switch (s->type) {
  case NBD_CMD_READ:
    if (s->len > NATIVE_MAX_REQUEST)
      return too_long (c, s);
    if (!flags_ok || !in_range (e, s->offset, s->len))
      return native_reply (c, s, EINVAL);
    STATS_ADD (reads, 1);
    STATS_ADD (read_bytes, s->len);
    set_cover (c, s, s->offset, s->len);
    if (s->skip || s->cover_len != s->len)
      STATS_ADD (bounced, 1);
    s->phase = PH_READ;
    run (c, s);
    return;
  case NBD_CMD_WRITE:
    if (s->len > NATIVE_MAX_REQUEST)
      return too_long (c, s);
    /* Refused: the payload is still on the wire and must be read (and
     * dropped) before the next header.  Past the end is ENOSPC, as the
     * protocol suggests for writes. */
    s->discard = !flags_ok || !in_range (e, s->offset, s->len);
    s->discard_err = !flags_ok ? EINVAL : s->len == 0 ? EINVAL : ENOSPC;
    if (!s->discard)
      set_cover (c, s, s->offset, s->len);
    s->state = SLOT_PAYLOAD;
    c->payload = s;
    return;
  case NBD_CMD_WRITE_ZEROES:
    if (!flags_ok || s->len == 0)
      return native_reply (c, s, EINVAL);
    if (!in_range (e, s->offset, s->len))
      return native_reply (c, s, ENOSPC);
    if (native_writes_refused ())
      return native_reply (c, s, EIO);
    STATS_ADD (zeroes, 1);
    s->zero_pos = s->offset;
    s->zero_end = s->offset + s->len;
    zero_next (c, s);
    return;
  case NBD_CMD_FLUSH:
    if (!flags_ok)
      return native_reply (c, s, EINVAL);
    STATS_ADD (flushes, 1);
    s->phase = PH_SYNC;
    run (c, s);
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
  if (native_writes_refused ()) {
    native_reply (c, s, EIO);   /* the monitor logged why */
    return;
  }
  STATS_ADD (writes, 1);
  STATS_ADD (write_bytes, s->len);
  write_start (c, s);
}

void
native_op_step_done (struct conn *c, struct slot *s)
{
  uint32_t a = c->e->align;
  uint32_t end = s->skip + s->len;

  switch (s->phase) {
  case PH_READ:
  case PH_SYNC:
    native_reply (c, s, 0);
    return;
  case PH_RMW_HEAD:
    memcpy (s->buf, scratch (c, s), s->skip);
    s->phase = is_aligned (end, a) ? PH_WRITE : PH_RMW_TAIL;
    run (c, s);
    return;
  case PH_RMW_TAIL:
    assert (end > s->cover_len - a);
    memcpy (s->buf + end, scratch (c, s) + (end - (s->cover_len - a)),
            s->cover_len - end);
    s->phase = PH_WRITE;
    run (c, s);
    return;
  case PH_WRITE:
    unlock_write (s);
    if (s->type == NBD_CMD_WRITE_ZEROES && s->zero_pos < s->zero_end)
      zero_next (c, s);
    else
      native_reply (c, s, 0);
    return;
  }
}

void
native_op_failed (struct conn *c, struct slot *s, int err)
{
  unlock_write (s);
  native_reply (c, s, err);
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
    run (c, s);
    s = next;
  }
}
