/* nbdswap native server: one connection's event loop (see native.h).
 *
 * Everything a connection does is an operation on its own io_uring:
 *   - one receive at a time, into the staging buffer (headers and small
 *     payloads, many per receive) or straight into a request's buffer
 *     (the rest of a large payload);
 *   - the backing file's reads and writes (registered buffers in three
 *     sizes, native.h; the file registered as fixed file 0), as many as
 *     there are busy slots;
 *   - one send at a time, gathering every reply that is ready into one
 *     sendmsg.  Replies are whole units in that gather list, so two
 *     replies' bytes never interleave on the stream.
 * The thread sleeps only in io_uring_submit_and_wait: a request costs no
 * thread hand-off, and the next header is read while file I/O runs.
 *
 * A slot's life: FREE -> (PAYLOAD: a write's data arriving) -> IO (file
 * operations, possibly several steps) -> REPLY (queued, then sent) ->
 * FREE.  A write is answered only once its O_DIRECT write completed in
 * full; short transfers are resumed, transient errors retried
 * (retry.h).
 */
#include <config.h>

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "align.h"
#include "blocksize.h"
#include "clock.h"
#include "engine.h"
#include "request.h"
#include "log.h"
#include "native.h"
#include "native-conn.h"
#include "native-proto.h"
#include "retry.h"
#include "tls.h"

/* user_data: the slot index shifted left, the operation in the low
 * bits. */
enum tag { TAG_RECV, TAG_SEND, TAG_FILE, TAG_TIMER, TAG_STOP, TAG_CANCEL,
           TAG_DEADLINE };
#define TAG_BITS 3
#define MAKE_TAG(idx, tag) (((uint64_t) (idx) << TAG_BITS) | (tag))

/* Fixed files: the backing file and the client's socket. */
#define FIXED_FILE 0
#define FIXED_SOCK 1

static void queue_reply (struct conn *c, struct slot *s, int err);
static void slot_free (struct conn *c, struct slot *s);

/* Get a submission entry; the ring is sized so that there always is one
 * (one per slot, plus receive, send, timers and cancels), but when the
 * queue is full, submit what it holds and retry, with a short pause if
 * the kernel refuses for a moment (-EAGAIN, -EBUSY).  Never NULL: a ring
 * that takes nothing for a second cannot be left with our buffers in
 * flight, so that ends the process with a reason (not an assert, which
 * NDEBUG would remove). */
static struct io_uring_sqe *
get_sqe (struct conn *c)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&c->ring);
  int r = 0;

  for (unsigned i = 0; sqe == NULL && i < 1000; i++) {
    r = io_uring_submit (&c->ring);
    sqe = io_uring_get_sqe (&c->ring);
    if (sqe == NULL && r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
      break;
    if (sqe == NULL)
      usleep (1000);
  }
  if (sqe == NULL) {
    log_error ("native: io_uring submission queue full and not taking "
               "entries (io_uring_enter: %s): stopping",
               r < 0 ? strerror (-r) : "no room");
    abort ();
  }
  return sqe;
}

/* The client went away before the rest of a write's payload came: that
 * write is dropped (never half done), logged. */
static void
drop_cut_payload (struct conn *c)
{
  if (c->payload == NULL)
    return;
  log_error ("native: the client went away in the middle of a "
             "write's payload (offset %" PRIu64 ", %" PRIu32 " of %"
             PRIu32 " bytes received): the write is dropped",
             c->payload->offset, c->payload->got, c->payload->len);
  slot_free (c, c->payload);
  c->payload = NULL;
}

/* The client's end of the stream came (it may have shut down only its
 * write side and still read its replies): the requests already in the
 * staging buffer are served as slots free up, and reading ends once
 * none is left (parse ran just before us, so with a free slot nothing
 * parseable remains) or a payload's rest is missing. */
static void
eof_reached (struct conn *c)
{
  struct slot *s = c->payload;
  uint32_t left = c->rend - c->rpos;

  if (s && s->len - s->got > left) {
    drop_cut_payload (c);
    c->closing = true;
  }
  else if (s == NULL &&
           (c->free != NULL || left < sizeof (struct nbd_request)))
    c->closing = true;
}

/* Receive into the staging buffer, or into the payload's buffer when
 * the staging buffer holds none of it and a large part is still to
 * come (a payload waiting for a buffer stays in the staging buffer,
 * and in the socket once that is full). */
static void
post_recv (struct conn *c)
{
  struct io_uring_sqe *sqe;
  struct slot *s = c->payload;

  int flags = 0;

  if (c->recv_busy || c->closing)
    return;
  if (c->peer_gone) {
    eof_reached (c);
    return;
  }
  /* Stopping: a payload being received is finished first; what the
   * client sent before the stop (in the socket now) is still read, but
   * only with receives that never wait (MSG_DONTWAIT: io_uring returns
   * -EAGAIN instead of waiting), so a client that keeps the socket open
   * and idle (the kernel) cannot keep us here.  Once the socket was
   * found empty, nothing more is received, and the connection closes
   * when the staging buffer's backlog is parsed (parse ran just before
   * us, so with a free slot nothing parseable is left). */
  if (c->stopping && s == NULL) {
    if (c->drained) {
      if (c->free != NULL ||
          c->rend - c->rpos < sizeof (struct nbd_request))
        c->closing = true;
      return;
    }
    flags = MSG_DONTWAIT;
  }
  if (s && s->buf && !s->discard && c->rpos == c->rend &&
      s->len - s->got >= NATIVE_RECV_DIRECT) {
    sqe = get_sqe (c);
    io_uring_prep_recv (sqe, FIXED_SOCK, s->buf + s->skip + s->got,
                        s->len - s->got, MSG_WAITALL);
    c->recv_direct = true;
  }
  else {
    if (c->rpos > 0) {
      memmove (c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
      c->rend -= c->rpos;
      c->rpos = 0;
    }
    if (c->rend == sizeof c->rbuf)
      return;                   /* full: parsing is waiting for a slot */
    sqe = get_sqe (c);
    io_uring_prep_recv (sqe, FIXED_SOCK, c->rbuf + c->rend,
                        sizeof c->rbuf - c->rend, flags);
    c->recv_direct = false;
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_RECV));
  c->recv_busy = true;
}

/* Cancel the pending receive. */
static void
cancel_recv (struct conn *c)
{
  struct io_uring_sqe *sqe = get_sqe (c);

  io_uring_prep_cancel64 (sqe, MAKE_TAG (0, TAG_RECV), 0);
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_CANCEL));
  c->recv_cancelled = true;
}

/* Read no more requests (NBD_CMD_DISC, a protocol error, a failed send,
 * or the stop): a receive still pending is cancelled, or nothing would
 * ever complete it while the client keeps the socket open (the kernel
 * client does), and the connection could never finish. */
void
native_stop_reading (struct conn *c)
{
  c->closing = true;
  if (c->recv_busy && !c->recv_cancelled)
    cancel_recv (c);
}

/* Gather every ready reply (header, and a read's data) into one
 * sendmsg. */
static void
post_send (struct conn *c)
{
  struct io_uring_sqe *sqe;

  if (c->send_busy || c->sq_head == NULL)
    return;
  c->iov_n = c->iov_pos = 0;
  c->nsending = 0;
  while (c->sq_head && c->iov_n + 2 <= NATIVE_IOV) {
    struct slot *s = c->sq_head;

    c->sq_head = s->next;
    c->sending[c->nsending++] = s;
    c->iov[c->iov_n++] = (struct iovec) { &s->reply, sizeof s->reply };
    if (s->type == NBD_CMD_READ && s->reply.error == 0)
      c->iov[c->iov_n++] = (struct iovec) { s->buf + s->skip, s->len };
  }
  if (c->sq_head == NULL)
    c->sq_tail = NULL;
  c->msg = (struct msghdr) { .msg_iov = c->iov, .msg_iovlen = c->iov_n };
  sqe = get_sqe (c);
  io_uring_prep_sendmsg (sqe, FIXED_SOCK, &c->msg, MSG_NOSIGNAL);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_SEND));
  c->send_busy = true;
}

/* Return a slot, and the buffer it used, to the free lists. */
static void
slot_free (struct conn *c, struct slot *s)
{
  native_buffer_release (c, s);
  s->state = SLOT_FREE;
  s->next = c->free;
  c->free = s;
  c->nfree++;
}

/* The replies of a sendmsg went out in full: count each one's time in
 * the server, from its header to now, and free the slots. */
static void
sent (struct conn *c)
{
  struct stats *st = c->e->target->stats;
  uint64_t now = clock_now_ns (), sum = 0;

  for (unsigned i = 0; i < c->nsending; i++) {
    sum += now - c->sending[i]->arrived_ns;
    slot_free (c, c->sending[i]);
  }
  STATS_ADD (st, turns, c->nsending);
  STATS_ADD (st, turn_ns, sum);
  c->nsending = 0;
}

/* Account the bytes a sendmsg moved; release the slots whose replies
 * went out in full, resubmit the rest. */
static void
send_done (struct conn *c, int res)
{
  size_t n;

  c->send_busy = false;
  if (res < 0) {
    if (res == -EINTR || res == -EAGAIN)
      res = 0;                  /* nothing went: resubmit it all below */
    else {
      log_debug ("native: send: %s: dropping the connection",
                 strerror (-res));
      c->broken = true;
      native_stop_reading (c);
      for (unsigned i = 0; i < c->nsending; i++)
        slot_free (c, c->sending[i]);
      c->nsending = 0;
      return;
    }
  }
  n = (size_t) res;
  while (c->iov_pos < c->iov_n && n >= c->iov[c->iov_pos].iov_len)
    n -= c->iov[c->iov_pos++].iov_len;
  if (c->iov_pos < c->iov_n) {
    /* Short send: what is left goes next, before any other reply. */
    c->iov[c->iov_pos].iov_base = (char *) c->iov[c->iov_pos].iov_base + n;
    c->iov[c->iov_pos].iov_len -= n;
    c->msg.msg_iov = c->iov + c->iov_pos;
    c->msg.msg_iovlen = c->iov_n - c->iov_pos;
    struct io_uring_sqe *sqe = get_sqe (c);
    io_uring_prep_sendmsg (sqe, FIXED_SOCK, &c->msg, MSG_NOSIGNAL);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_SEND));
    c->send_busy = true;
    return;
  }
  sent (c);
}

/* Put a finished request's reply on the send queue (err: a positive
 * errno, 0 for success). */
static void
queue_reply (struct conn *c, struct slot *s, int err)
{
  /* The protocol's numbers are Linux's; only these are defined. */
  if (err && err != EPERM && err != EIO && err != ENOMEM && err != EINVAL &&
      err != ENOSPC && err != EOVERFLOW && err != ENOTSUP &&
      err != ESHUTDOWN)
    err = EIO;
  s->reply.error = htobe32 ((uint32_t) err);
  s->state = SLOT_REPLY;
  if (c->broken) {
    slot_free (c, s);
    return;
  }
  s->next = NULL;
  if (c->sq_tail)
    c->sq_tail->next = s;
  else
    c->sq_head = s;
  c->sq_tail = s;
}

/* Submit the file operation the request engine asked s for (s->req.io):
 * a fixed one, naming the registered buffer s was given (not s's own
 * index: a mid buffer is any slot's; a run's, all the mid buffers'),
 * where the memory is in it; a plain one for the large buffer and the
 * zero page. */
static void
file_submit (struct conn *c, struct slot *s)
{
  struct io_uring_sqe *sqe = get_sqe (c);
  const struct req_io *io = &s->req.io;
  unsigned char *p = io->buf;
  bool fixed = s->buf_reg >= 0 && p != NULL && p >= s->buf &&
    p + io->len <= s->buf + s->buf_len;

  s->state = SLOT_IO;
  engine_uring_prep (sqe, io, FIXED_FILE, true, fixed ? s->buf_reg : -1);
  if (c->file_async)
    sqe->flags |= IOSQE_ASYNC;
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (s->idx, TAG_FILE));
  c->inflight++;
}

/* Wait for the next turn of the event loop (native_unpark). */
void
native_park (struct conn *c, struct slot *s)
{
  s->state = SLOT_PARKED;
  s->next = NULL;
  if (c->parked_tail)
    c->parked_tail->next = s;
  else
    c->parked = s;
  c->parked_tail = s;
  c->nparked++;
}

/* Do what the request engine answered for s: submit its file operation,
 * park it, or queue its reply (the engine counted it).  Here, beside the
 * ring and the send queue, so that acting on an answer costs no further
 * call. */
void
native_advance (struct conn *c, struct slot *s, enum req_next next)
{
  switch (next) {
  case REQ_IO: file_submit (c, s); return;
  case REQ_BLOCKED: native_park (c, s); return;
  case REQ_DONE: queue_reply (c, s, -s->req.err); return;
  }
}

/* A file operation of slot s completed with res: the request engine
 * decides what comes next (more I/O, a retry, the reply). */
static void
file_done (struct conn *c, struct slot *s, int res)
{
  c->inflight--;
  native_advance (c, s, req_io_done (c->e->target, &s->req, res));
}

/* Refuse a request (err: a positive errno) without the request engine:
 * a protocol error.  Neither counted nor timed: nbdkit answers those
 * before the plugin sees them, and both servers' counters are the
 * request engine's. */
void
native_reply (struct conn *c, struct slot *s, int err)
{
  queue_reply (c, s, err);
}

/* Finish a request that gets no reply (NBD_CMD_DISC, or the connection
 * is being dropped). */
void
native_reply_drop (struct conn *c, struct slot *s)
{
  slot_free (c, s);
}

/* Hand out a free slot for a new request, or NULL. */
static struct slot *
slot_take (struct conn *c)
{
  struct slot *s = c->free;

  if (s == NULL)
    return NULL;
  c->free = s->next;
  c->nfree--;
  assert (s->buf == NULL);      /* slot_free gave it back */
  s->next = NULL;
  s->started = false;
  s->waited = false;
  return s;
}

/* Parse what the staging buffer holds: request headers, and the payloads
 * of writes.  Stops at an incomplete header, when no slot is free, or
 * when the connection is closing. */
static void
parse (struct conn *c)
{
  while (!c->closing) {
    struct slot *s = c->payload;

    if (s) {
      uint32_t n = s->len - s->got;

      if (!s->discard && s->buf == NULL && !native_payload_ready (c, s))
        return;                 /* waits for mid buffers or the large one */
      if (n > c->rend - c->rpos)
        n = c->rend - c->rpos;
      if (!s->discard)
        memcpy (s->buf + s->skip + s->got, c->rbuf + c->rpos, n);
      c->rpos += n;
      s->got += n;
      if (s->got < s->len)
        return;
      c->payload = NULL;
      native_payload_done (c, s);
      continue;
    }
    if (c->rend - c->rpos < sizeof (struct nbd_request))
      return;
    if (c->free == NULL)
      return;
    struct nbd_request rq;
    memcpy (&rq, c->rbuf + c->rpos, sizeof rq);
    if (be32toh (rq.magic) != NBD_MAGIC_REQUEST) {
      log_error ("native: bad request magic 0x%08" PRIx32 ": closing the "
                 "connection", be32toh (rq.magic));
      native_stop_reading (c);
      return;
    }
    c->rpos += sizeof rq;
    s = slot_take (c);
    s->type = be16toh (rq.type);
    s->flags = be16toh (rq.flags);
    s->offset = be64toh (rq.offset);
    s->len = be32toh (rq.length);
    s->got = 0;
    s->skip = 0;
    s->reply.magic = htobe32 (NBD_MAGIC_SIMPLE_REPLY);
    s->reply.cookie = rq.cookie;        /* echoed as it came */
    s->arrived_ns = clock_now_ns ();
    native_request (c, s);
  }
}

/* A receive on a kTLS socket failed: a record that is not data (an
 * alert, a handshake message kTLS cannot follow) or one that failed
 * authentication.  Said once, as what it is; the connection ends. */
static void
tls_recv_failed (struct conn *c, int res)
{
  char what[256];
  int r;

  if (res == -EBADMSG) {
    log_error ("native: a TLS record from the client failed "
               "authentication (changed or corrupted on the wire): "
               "closing the connection");
    return;
  }
  r = tls_ktls_read_control (c->sock, what, sizeof what);
  if (r == 1)
    log_debug ("native: the client ended TLS (%s)", what);
  else
    log_info ("native: %s from the client: closing the connection", what);
}

/* A receive completed with res. */
static void
recv_done (struct conn *c, int res)
{
  c->recv_busy = false;
  c->recv_cancelled = false;
  if (res == -EAGAIN && c->stopping && c->payload == NULL) {
    c->drained = true;          /* the stop's non-waiting receive */
    return;
  }
  if (res == -EINTR || res == -EAGAIN)
    return;                     /* post_recv tries again */
  if (res == -ECANCELED && c->closing) {
    if (c->payload) {
      log_debug ("native: closing: the write at offset %" PRIu64 " whose "
                 "payload was arriving is dropped", c->payload->offset);
      slot_free (c, c->payload);
      c->payload = NULL;
    }
    return;
  }
  if (res == -ECANCELED && c->stopping)
    return;                     /* post_recv decides what comes next */
  if (res == 0) {
    c->peer_gone = true;        /* post_recv reads no more */
    return;
  }
  if (res < 0) {
    if (c->e->tls && (res == -EIO || res == -EBADMSG))
      tls_recv_failed (c, res);
    else if (res != -ECONNRESET)
      log_debug ("native: recv: %s", strerror (-res));
    drop_cut_payload (c);
    c->closing = true;
    c->peer_gone = true;
    return;
  }
  if (c->recv_direct) {
    struct slot *s = c->payload;

    s->got += (uint32_t) res;
    if (s->got == s->len) {
      c->payload = NULL;
      native_payload_done (c, s);
    }
    return;
  }
  c->rend += (uint32_t) res;
}

/* The server is stopping: cancel the receive unless it carries the
 * payload of a request (which is then finished), and arm the deadline
 * after which a client that does not let us finish is cut off. */
static void
stop_requested (struct conn *c)
{
  static struct __kernel_timespec deadline = {
    .tv_sec = NATIVE_STOP_DEADLINE, .tv_nsec = 0
  };
  struct io_uring_sqe *sqe;

  c->stopping = true;
  sqe = get_sqe (c);
  io_uring_prep_timeout (sqe, &deadline, 0, 0);
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_DEADLINE));
  if (c->recv_busy && !c->payload && !c->recv_cancelled)
    cancel_recv (c);
}

/* The stop deadline passed with the connection still busy: the client
 * stopped reading its replies or stalled in the middle of a write's
 * payload.  Shut the socket: the pending receive ends (the payload is
 * dropped), sends fail, the file operations finish, the loop ends. */
static void
deadline_passed (struct conn *c)
{
  log_error ("native: a client did not let its connection finish within "
             "%d s of the stop (%s): shutting its socket down",
             NATIVE_STOP_DEADLINE,
             c->payload ? "stalled in the middle of a write's payload" :
             c->send_busy ? "it is not reading its replies" : "busy");
  shutdown (c->sock, SHUT_RDWR);
}

/* Dispatch one completion. */
static void
complete (struct conn *c, uint64_t tag, int res)
{
  unsigned idx = (unsigned) (tag >> TAG_BITS);

  switch ((enum tag) (tag & ((1u << TAG_BITS) - 1))) {
  case TAG_RECV: recv_done (c, res); break;
  case TAG_SEND: send_done (c, res); break;
  case TAG_FILE:
    assert (idx < NATIVE_SLOTS);
    file_done (c, &c->slots[idx], res);
    break;
  case TAG_TIMER: c->timer_busy = false; break;
  case TAG_STOP: stop_requested (c); break;
  case TAG_CANCEL: break;
  case TAG_DEADLINE:
    if (res == -ETIME)
      deadline_passed (c);
    break;
  }
}

/* Is there something for the thread to do: a completion, or (a
 * DEFER_TASKRUN ring with TASKRUN_FLAG) completion work the kernel
 * queued for it, which the next io_uring_enter runs without sleeping? */
static bool
ring_has_work (struct conn *c)
{
  return io_uring_cq_ready (&c->ring) > 0 ||
    (IO_URING_READ_ONCE (*c->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/* A hint to the CPU inside a spin loop. */
static inline void
cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause ();
#elif defined(__aarch64__)
  __asm__ volatile ("yield" ::: "memory");
#else
  __asm__ volatile ("" ::: "memory");
#endif
}

/* Depth-1 spins, all connections: how many, and how many of them saw
 * the completion arrive (report_stats logs both). */
static atomic_uint_fast64_t poll_spins, poll_hits;

void
native_poll_counts (uint64_t *spins, uint64_t *hits)
{
  *spins = atomic_load (&poll_spins);
  *hits = atomic_load (&poll_hits);
}

/* At queue depth 1, the thread's sleep while the one file operation
 * runs and its wake-up when it completes cost about as much as a 4K
 * read on a virtual machine (an idle vCPU halts; its wake-up goes
 * through the host).  So when one request is all the connection has
 * and its file operation runs, spin up to e->poll_ns (serve --poll-us)
 * for the completion before sleeping.  Not while waiting for the client
 * (spinning then takes the CPU the client needs: measured slower), and
 * after NATIVE_POLL_MISSES spins in a row that found nothing (a disk
 * slower than the spin), not for the next NATIVE_POLL_PAUSE waits. */
static void
poll_file (struct conn *c)
{
  uint64_t end;

  if (c->e->poll_ns == 0 || c->inflight != 1 ||
      c->nfree != NATIVE_SLOTS - 1 || ring_has_work (c))
    return;
  if (c->poll_pause > 0) {
    c->poll_pause--;
    return;
  }
  io_uring_submit (&c->ring);
  atomic_fetch_add_explicit (&poll_spins, 1, memory_order_relaxed);
  end = clock_now_ns () + c->e->poll_ns;
  while (!ring_has_work (c)) {
    if (clock_now_ns () > end) {
      if (++c->poll_misses >= NATIVE_POLL_MISSES) {
        c->poll_misses = 0;
        c->poll_pause = NATIVE_POLL_PAUSE;
      }
      return;
    }
    cpu_relax ();
  }
  atomic_fetch_add_explicit (&poll_hits, 1, memory_order_relaxed);
  c->poll_misses = 0;
}

/* Wait for completions and handle them. */
static void
wait_and_complete (struct conn *c, struct retry *backoff)
{
  struct io_uring_cqe *cqe;
  unsigned head, n = 0;
  int r;

  poll_file (c);
  r = io_uring_submit_and_wait (&c->ring, 1);

  if (r < 0 && r != -EINTR && r != -ETIME) {
    engine_uring_refused (r, backoff, "native: ");
    return;
  }
  io_uring_for_each_cqe (&c->ring, head, cqe) {
    complete (c, cqe->user_data, cqe->res);
    n++;
  }
  io_uring_cq_advance (&c->ring, n);
}

/* True once nothing of the connection is pending any more.  A parked
 * slot is a request not yet done (a write waiting for a lock, or a
 * request waiting for a mid or the large buffer): never finished, the
 * timer brings it back.  The stop deadline's timeout may
 * still be armed: the ring's teardown cancels it. */
static bool
finished (const struct conn *c)
{
  return c->closing && !c->recv_busy && !c->send_busy && c->inflight == 0 &&
    !c->timer_busy && (c->sq_head == NULL || c->broken) &&
    native_parked (c) == 0 &&
    c->nfree + (c->payload ? 1 : 0) == NATIVE_SLOTS;
}

/* Arm a 1 ms timer: something waits for a lock another connection
 * holds, and nothing else of ours might wake us. */
static void
post_timer (struct conn *c)
{
  static struct __kernel_timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };
  struct io_uring_sqe *sqe;

  if (c->timer_busy)
    return;
  sqe = get_sqe (c);
  io_uring_prep_timeout (sqe, &ms, 0, 0);
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_TIMER));
  c->timer_busy = true;
}

void
native_conn_loop (struct conn *c)
{
  struct retry backoff = RETRY_INIT;
  struct io_uring_sqe *sqe = get_sqe (c);

  /* The stop signal: a read of the connection's eventfd. */
  io_uring_prep_read (sqe, c->stop_fd, &c->stop_val, sizeof c->stop_val, 0);
  io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_STOP));

  for (;;) {
    native_unpark (c);
    parse (c);
    post_recv (c);
    post_send (c);
    if (native_parked (c) > 0)
      post_timer (c);
    if (finished (c))
      break;
    wait_and_complete (c, &backoff);
  }
}

/* The length of a buffer for requests of up to data bytes: cover room
 * (data plus a partial block each side), then one scratch block, each
 * starting on the memory alignment, so that buffers laid end to end
 * all stay aligned. */
static size_t
buffer_stride (uint32_t data, size_t a, size_t ma)
{
  return round_up (data + 2 * a, ma) + round_up (a, ma);
}

/* Memory for the small and mid buffers (registered with the ring, so
 * pinned: native.h says how much) and the large buffer (address space
 * only until a large request touches it). */
static int
conn_buffers (struct conn *c)
{
  size_t a = c->e->align, ma = c->e->mem_align;
  struct iovec iov[NATIVE_RUN_REG + 1];

  c->small_stride = buffer_stride (NATIVE_SMALL_DATA, a, ma);
  c->mid_stride = buffer_stride (NATIVE_MID_DATA, a, ma);
  c->large_len = round_up (buffer_stride (BLOCKSIZE_MAX, a, ma), 4096);
  c->buf_mem_len = NATIVE_SLOTS * c->small_stride
    + NATIVE_MID_BUFS * c->mid_stride;
  c->buf_mem = mmap (NULL, c->buf_mem_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (c->buf_mem == MAP_FAILED) {
    c->buf_mem = NULL;
    return -errno;
  }
  c->large = mmap (NULL, c->large_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (c->large == MAP_FAILED) {
    c->large = NULL;
    return -errno;
  }
  /* Registered index i: slot i's small buffer; NATIVE_SLOTS + j: mid
   * buffer j; NATIVE_RUN_REG: all the mid buffers, for runs of them
   * (assign_buffer hands these out). */
  for (unsigned i = 0; i < NATIVE_SLOTS; i++)
    iov[i] = (struct iovec) { native_small_buf (c, i), c->small_stride };
  for (unsigned j = 0; j < NATIVE_MID_BUFS; j++)
    iov[NATIVE_SLOTS + j] = (struct iovec) { native_mid_buf (c, j),
                                             c->mid_stride };
  iov[NATIVE_RUN_REG] = (struct iovec) { native_mid_buf (c, 0),
                                         NATIVE_MID_BUFS * c->mid_stride };
  c->mid_free = (1u << NATIVE_MID_BUFS) - 1;
  return io_uring_register_buffers (&c->ring, iov, NATIVE_RUN_REG + 1);
}

/* The ring: one issuer (this thread), task work run only when we wait,
 * and a flag in the ring saying there is some (poll_file watches it),
 * where the kernel and liburing allow it (Linux 6.1); else a plain
 * ring. */
static int
conn_ring (struct conn *c)
{
  static atomic_bool warned;
  struct io_uring_params p = { 0 };
  unsigned entries = NATIVE_SLOTS + 8;
  int r;

  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
    IORING_SETUP_TASKRUN_FLAG;
  r = io_uring_queue_init_params (entries, &c->ring, &p);
  if (r == -EINVAL) {
    if (!atomic_exchange (&warned, true))
      log_info ("native: io_uring without SINGLE_ISSUER|DEFER_TASKRUN|"
                "TASKRUN_FLAG "
                "(this kernel refuses them; Linux 6.1 has them)");
    memset (&p, 0, sizeof p);
    r = io_uring_queue_init_params (entries, &c->ring, &p);
  }
  return r;
}

/* How many of io_uring's workers may run this connection's file
 * operations at once: the kernel's default (four per CPU for regular
 * files, 8 on a 2-CPU machine), unless NBDSWAP_NATIVE_IOWQ=N sets
 * another number, for measurements.  One per request slot (32) was
 * tried as the default, so that every request of a deep queue could
 * reach the disk, and changed nothing measurable (docs/benchmarks.md,
 * "Where a depth-1 request's time goes, and io_uring's workers").  The
 * limit is the calling thread's, not the ring's: this runs on the
 * connection's own thread, the one that submits, never in the probe.
 * Its workers run on this thread's CPUs (engine_uring_workers_follow),
 * inline file I/O included: an operation that would block still goes
 * to a worker. */
static void
conn_workers (struct conn *c)
{
  const char *e = getenv ("NBDSWAP_NATIVE_IOWQ");
  unsigned n[2] = { 0, 0 };     /* bounded, unbounded; 0: unchanged */
  int r;

  engine_uring_workers_follow (&c->ring);
  if (e != NULL && *e != '\0')
    n[0] = (unsigned) strtoul (e, NULL, 10);
  if (n[0] == 0 || !c->file_async)
    return;
  r = io_uring_register_iowq_max_workers (&c->ring, n);
  if (r < 0)
    log_debug ("native: io_uring: %u workers per connection: %s (the "
               "kernel's default stays)", n[0], strerror (-r));
}

/* Undo conn_setup, whatever part of it was done. */
static void
conn_teardown (struct conn *c, bool ring)
{
  if (ring)
    engine_uring_ring_exit (&c->ring, true);
  if (c->buf_mem)
    munmap (c->buf_mem, c->buf_mem_len);
  if (c->large)
    munmap (c->large, c->large_len);
}

/* Say why the ring could not be set up (r from io_uring_queue_init) and
 * what to do about it. */
static void
ring_failure (int r, char *why, size_t whylen)
{
  char reason[256];

  /* The plugin's probe tells a seccomp filter from the sysctl, a kernel
   * without io_uring, or a memory limit. */
  if (engine_uring_probe (reason, sizeof reason) == 0)
    snprintf (reason, sizeof reason, "io_uring_setup: %s", strerror (-r));
  snprintf (why, whylen, "the native server needs io_uring and cannot have "
            "it: %s; allow io_uring (seccomp profile, "
            "kernel.io_uring_disabled) or add --nbdkit (the nbdkit plugin "
            "falls back to pread/pwrite)", reason);
}

/* Ring, registered files and buffers for a connection on sock (the
 * probe registers the backing file in the socket's place).  0, or -errno
 * with the reason and its fix in why. */
static int
conn_setup (struct conn *c, int sock, char *why, size_t whylen)
{
  int fds[2] = { c->e->fd, sock };
  int r = conn_ring (c);

  c->file_async = !c->e->file_inline;
  if (r < 0) {
    ring_failure (r, why, whylen);
    return r;
  }
  r = io_uring_register_files (&c->ring, fds, 2);
  if (r < 0) {
    snprintf (why, whylen, "io_uring: registering the backing file and the "
              "socket: %s", strerror (-r));
    conn_teardown (c, true);
    return r;
  }
  r = conn_buffers (c);
  if (r < 0) {
    snprintf (why, whylen, "io_uring: registering %zu KiB of request "
              "buffers per connection: %s: they count against "
              "RLIMIT_MEMLOCK: raise it (ulimit -l unlimited, "
              "LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK",
              (c->buf_mem_len + NATIVE_MID_BUFS * c->mid_stride) / 1024,
              strerror (-r));
    conn_teardown (c, true);
    return r;
  }
  return 0;
}

int
native_conn_probe (const struct native_export *e, char *why, size_t whylen)
{
  struct conn *c = calloc (1, sizeof *c);
  int r;

  if (c == NULL) {
    snprintf (why, whylen, "calloc: %s", strerror (errno));
    return -ENOMEM;
  }
  c->e = e;
  r = conn_setup (c, e->fd, why, whylen);
  if (r == 0)
    conn_teardown (c, true);
  free (c);
  return r;
}

struct conn *
native_conn_new (int sock, int stop_fd, const struct native_export *e,
                 char *why, size_t whylen)
{
  /* The connection's state is large (the staging buffer): heap, not the
   * thread's stack; once per connection, never per request. */
  struct conn *c = calloc (1, sizeof *c);

  if (c == NULL) {
    snprintf (why, whylen, "calloc: %s", strerror (errno));
    return NULL;
  }
  c->e = e;
  c->sock = sock;
  c->stop_fd = stop_fd;
  if (conn_setup (c, sock, why, whylen) < 0) {
    free (c);
    return NULL;
  }
  conn_workers (c);
  for (unsigned i = NATIVE_SLOTS; i-- > 0;) {
    c->slots[i].idx = i;
    slot_free (c, &c->slots[i]);
  }
  return c;
}

void
native_conn_free (struct conn *c)
{
  if (c == NULL)
    return;
  conn_teardown (c, true);
  free (c);
}

void
native_conn_serve (struct conn *c)
{
  native_conn_loop (c);
  native_conn_free (c);
}
