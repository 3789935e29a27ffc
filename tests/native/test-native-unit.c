/* Unit tests of the native server's event loop, on the code
 * itself (its static functions included): what no client can provoke
 * on demand, such as a send the kernel answers with EAGAIN.
 */
#include "../../server/native/native-conn.c"
#include "../../server/native/native-request.c"

#include <stdio.h>

static int failures;

#define CHECK_FAILURES failures
#include "../test-check.h"

/* A connection with a ring but no files or buffers registered: enough
 * to look at what it would submit. */
static struct native_export bare_export = {
  .fd = -1, .size = 1 << 20, .align = 512, .mem_align = 512, .name = "",
  .poll_ns = 100000,
};

static struct conn *
bare_conn (void)
{
  struct conn *c = calloc (1, sizeof *c);

  c->e = &bare_export;
  if (conn_ring (c) < 0) {
    printf ("SKIP: no io_uring here\n");
    exit (77);
  }
  for (unsigned i = NATIVE_SLOTS; i-- > 0;) {
    c->slots[i].idx = i;
    slot_free (c, &c->slots[i]);
  }
  return c;
}

/* The last submission entry prepared and not yet submitted. */
static struct io_uring_sqe *
last_sqe (struct conn *c)
{
  struct io_uring_sq *sq = &c->ring.sq;

  return &sq->sqes[(sq->sqe_tail - 1) & sq->ring_mask];
}

/* A send the kernel answers -EAGAIN (or -EINTR) is resubmitted once,
 * whole, on the registered socket, tagged as a send. */
static void
test_send_again (void)
{
  for (int k = 0; k < 2; k++) {
    struct conn *c = bare_conn ();
    struct slot *s = slot_take (c);
    struct io_uring_sqe *sqe;

    s->type = NBD_CMD_WRITE;
    queue_reply (c, s, 0);
    post_send (c);
    io_uring_submit (&c->ring);         /* fails on the fixed file: fine */
    send_done (c, k ? -EINTR : -EAGAIN);
    CHECK (io_uring_sq_ready (&c->ring) == 1, "%u entries prepared, not 1",
           io_uring_sq_ready (&c->ring));
    sqe = last_sqe (c);
    CHECK (sqe->opcode == IORING_OP_SENDMSG, "opcode %d", sqe->opcode);
    CHECK (sqe->fd == FIXED_SOCK && (sqe->flags & IOSQE_FIXED_FILE),
           "fd %d flags 0x%x", sqe->fd, sqe->flags);
    CHECK (sqe->user_data == MAKE_TAG (0, TAG_SEND), "user_data %llu",
           (unsigned long long) sqe->user_data);
    CHECK (c->send_busy && c->msg.msg_iovlen == 1 &&
           c->iov[0].iov_len == sizeof s->reply, "the reply is resent whole");
    native_conn_free (c);
  }
}

/* A parked request is not done: the connection is not finished. */
static void
test_finished_parked (void)
{
  struct conn *c = bare_conn ();
  struct slot *s = slot_take (c);

  c->closing = true;
  native_park (c, s);
  CHECK (!finished (c), "finished with a request parked");
  c->parked = c->parked_tail = NULL;
  c->nparked = 0;
  slot_free (c, s);
  CHECK (finished (c), "not finished with nothing pending");
  native_conn_free (c);
}

/* A full submission queue is submitted and an entry handed out. */
static void
test_sqe_full (void)
{
  struct conn *c = bare_conn ();
  struct io_uring_sqe *sqe;

  while ((sqe = io_uring_get_sqe (&c->ring)) != NULL) {
    io_uring_prep_nop (sqe);
    io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_CANCEL));
  }
  CHECK (get_sqe (c) != NULL, "no entry from a full queue");
  native_conn_free (c);
}

/* The depth-1 spin: it ends when the kernel queues completion work
 * (TASKRUN_FLAG), counts fruitless spins and pauses after
 * NATIVE_POLL_MISSES of them, and never runs at depth 2. */
static void
test_poll_file (void)
{
  static struct __kernel_timespec us10 = { .tv_sec = 0, .tv_nsec = 10000 };
  struct conn *c = bare_conn ();
  struct slot *a = slot_take (c);
  struct retry b = RETRY_INIT;
  bool found = false;

  c->inflight = 1;              /* as if a's file operation ran */
  /* A 10 us timer stands for the file operation: the spin sees its
   * completion work and ends without a miss (tried thrice: a spinning
   * thread descheduled past its deadline may count one). */
  for (int i = 0; i < 3 && !found; i++) {
    struct io_uring_sqe *sqe = get_sqe (c);

    io_uring_prep_timeout (sqe, &us10, 0, 0);
    io_uring_sqe_set_data64 (sqe, MAKE_TAG (0, TAG_TIMER));
    c->timer_busy = true;
    c->poll_misses = 0;
    poll_file (c);
    found = c->poll_misses == 0 && ring_has_work (c);
    while (c->timer_busy)
      wait_and_complete (c, &b);
    c->inflight = 1;
  }
  CHECK (found, "the spin did not see the completion");
  /* Nothing completes: each spin is a miss, and enough of them pause
   * the spinning. */
  c->poll_misses = 0;
  for (unsigned i = 1; i < NATIVE_POLL_MISSES; i++) {
    poll_file (c);
    CHECK (c->poll_misses == i, "%u misses after %u spins", c->poll_misses,
           i);
  }
  poll_file (c);
  CHECK (c->poll_misses == 0 && c->poll_pause == NATIVE_POLL_PAUSE,
         "no pause after %d misses", NATIVE_POLL_MISSES);
  poll_file (c);
  CHECK (c->poll_pause == NATIVE_POLL_PAUSE - 1 && c->poll_misses == 0,
         "spun while paused");
  /* --poll-us 0: never spins (a spin here would be a miss). */
  uint64_t spins, hits, spins0;
  native_poll_counts (&spins0, &hits);
  bare_export.poll_ns = 0;
  c->poll_pause = 0;
  poll_file (c);
  native_poll_counts (&spins, &hits);
  CHECK (c->poll_misses == 0 && spins == spins0, "spun with --poll-us 0");
  bare_export.poll_ns = 100000;
  /* Two requests: no spin. */
  struct slot *d = slot_take (c);
  c->poll_pause = 0;
  poll_file (c);
  CHECK (c->poll_misses == 0, "spun at depth 2");
  c->inflight = 0;
  slot_free (c, d);
  slot_free (c, a);
  native_conn_free (c);
}

/* A request given its buffer (assign_buffer): CHECKs that it got one of
 * tier t, the buffer registered as reg at buf. */
static void
check_buffer (struct conn *c, struct slot *s, enum buf_tier t, int reg,
              const unsigned char *buf, const char *what)
{
  CHECK (assign_buffer (c, s), "%s: no buffer", what);
  CHECK (s->tier == t && s->buf_reg == reg && s->buf == buf,
         "%s: tier %d, registered index %d (want %d, %d)", what, s->tier,
         s->buf_reg, t, reg);
}

/* A slot taken for a request of type and len. */
static struct slot *
request_slot (struct conn *c, uint16_t type, uint32_t len)
{
  struct slot *s = slot_take (c);

  s->type = type;
  s->len = len;
  return s;
}

/* s holds mid buffers first .. first + n - 1, and its request's cover
 * and scratch block fit in them at any offset. */
static void
check_run (struct conn *c, struct slot *s, unsigned first, unsigned n,
           const char *what)
{
  size_t a = c->e->align;

  CHECK (s->tier == BUF_MID && s->mid_first == first && s->mid_n == n &&
         s->buf == native_mid_buf (c, first) &&
         s->buf_len == n * c->mid_stride &&
         s->buf_reg == (n == 1 ? NATIVE_SLOTS + (int) first : NATIVE_RUN_REG),
         "%s: tier %d, mid %u+%u, registered %d (want mid %u+%u)", what,
         s->tier, s->mid_first, s->mid_n, s->buf_reg, first, n);
  /* The worst offset: a partial block each side, then the scratch. */
  CHECK (cover_room (c, s) >= s->len + 2 * a &&
         round_up (cover_room (c, s), c->e->mem_align) + a <= s->buf_len,
         "%s: cover room %u in %zu bytes for %u", what, cover_room (c, s),
         s->buf_len, s->len);
  /* Not one more buffer than it needs. */
  CHECK (n == 1 || run_room (c, n - 1) < s->len + 2 * a,
         "%s: %u mid buffers where %u hold it", what, n, n - 1);
}

/* Requests over NATIVE_MID_DATA, up to what all the mid buffers hold,
 * take a run of adjacent free ones (a fixed operation naming all the mid
 * buffers registered as one, NATIVE_RUN_REG); while one waits for its run, later requests wait
 * behind it, and it gets the run in the turn after it frees. */
static void
test_mid_runs (struct conn *c)
{
  struct slot *two, *one, *whole, *late, *s;

  two = request_slot (c, NBD_CMD_WRITE, NATIVE_MID_DATA + 1);
  CHECK (assign_buffer (c, two), "a run of two");
  check_run (c, two, 0, 2, "a write of 128 KiB + 1");
  two->req.io = (struct req_io) { .op = REQ_OP_WRITE, .buf = two->buf,
                                  .len = NATIVE_MID_DATA + 512 };
  file_submit (c, two);
  CHECK (last_sqe (c)->opcode == IORING_OP_WRITE_FIXED &&
         last_sqe (c)->buf_index == NATIVE_RUN_REG, "a run's write: opcode "
         "%d, buffer index %d", last_sqe (c)->opcode,
         last_sqe (c)->buf_index);
  c->inflight = 0;
  one = request_slot (c, NBD_CMD_READ, 40000);
  CHECK (assign_buffer (c, one), "one mid after a run");
  check_run (c, one, 2, 1, "a read of 40000");
  /* 1 MiB, the largest request attach --max-sectors-kb 1024 lets the
   * kernel send: all eight. */
  whole = request_slot (c, NBD_CMD_WRITE, 1 << 20);
  CHECK (!assign_buffer (c, whole) && whole->buf == NULL, "1 MiB while "
         "three mid buffers are taken");
  late = request_slot (c, NBD_CMD_READ, 40000);
  CHECK (!assign_buffer (c, late), "a later request passed the waiting "
         "1 MiB");
  slot_free (c, two);
  native_unpark (c);
  CHECK (!assign_buffer (c, whole), "1 MiB while one mid buffer is taken");
  CHECK (!assign_buffer (c, late), "a later request passed the waiting "
         "1 MiB in the next turn");
  slot_free (c, one);
  native_unpark (c);
  CHECK (assign_buffer (c, whole), "1 MiB with every mid buffer free");
  check_run (c, whole, 0, NATIVE_MID_BUFS, "a write of 1 MiB");
  CHECK (!assign_buffer (c, late), "a mid buffer while 1 MiB holds all");
  slot_free (c, whole);
  native_unpark (c);
  CHECK (assign_buffer (c, late), "the later request after 1 MiB");
  slot_free (c, late);
  /* Every length from 128 KiB + 1 to what eight hold takes the fewest
   * buffers that hold it. */
  for (uint32_t len = NATIVE_MID_DATA + 1;
       len + 2 * c->e->align <= run_room (c, NATIVE_MID_BUFS);
       len += 4093) {
    s = request_slot (c, NBD_CMD_READ, len);
    CHECK (assign_buffer (c, s), "a read of %u", len);
    check_run (c, s, 0, s->mid_n, "a read");
    slot_free (c, s);
  }
}

/* Buffers by size: a slot's own small one (registered as the slot's
 * index), the NATIVE_MID_BUFS mid ones any slot may get (registered
 * after the small ones), the one large one (not registered); a request
 * that finds none of its size free waits (counted once) and gets the
 * next one released; a file operation names the registered index of
 * the buffer its slot was given. */
static void
test_buffer_tiers (void)
{
  struct conn *c = bare_conn ();
  struct slot *mid[NATIVE_MID_BUFS], *small, *zero, *s, *w, *big, *big2;
  bool seen[NATIVE_MID_BUFS] = { false };
  uint64_t waits0 = native_mid_waits ();
  int r = conn_buffers (c);

  if (r < 0) {
    printf ("SKIP part: registering the buffers: %s\n", strerror (-r));
    native_conn_free (c);
    return;
  }
  small = request_slot (c, NBD_CMD_READ, NATIVE_SMALL_DATA);
  check_buffer (c, small, BUF_SMALL, (int) small->idx,
                native_small_buf (c, small->idx), "a small read");
  zero = request_slot (c, NBD_CMD_WRITE_ZEROES, 1 << 20);
  check_buffer (c, zero, BUF_SMALL, (int) zero->idx,
                native_small_buf (c, zero->idx), "a large zeroing");
  for (unsigned j = 0; j < NATIVE_MID_BUFS; j++) {
    mid[j] = request_slot (c, j % 2 ? NBD_CMD_READ : NBD_CMD_WRITE,
                           j == 0 ? NATIVE_SMALL_DATA + 1 : NATIVE_MID_DATA);
    CHECK (assign_buffer (c, mid[j]) && mid[j]->tier == BUF_MID,
           "mid request %u: no mid buffer", j);
    /* Which mid buffer, from where its memory is: buf_reg must agree. */
    unsigned k = (unsigned) ((size_t) (mid[j]->buf - native_mid_buf (c, 0))
                             / c->mid_stride);
    CHECK (k < NATIVE_MID_BUFS && !seen[k] &&
           mid[j]->buf_reg == NATIVE_SLOTS + (int) k &&
           mid[j]->buf == native_mid_buf (c, k), "mid request %u: buffer "
           "%u registered as %d", j, k, mid[j]->buf_reg);
    if (k < NATIVE_MID_BUFS)
      seen[k] = true;
  }
  /* Every mid buffer taken: the next waits, counted once. */
  w = request_slot (c, NBD_CMD_WRITE, 100000);
  CHECK (!assign_buffer (c, w) && !assign_buffer (c, w) &&
         w->tier == BUF_NONE && w->buf == NULL, "a ninth mid buffer");
  CHECK (native_mid_waits () == waits0 + 1, "%" PRIu64 " waits counted, "
         "not 1", native_mid_waits () - waits0);
  /* The file operation of a request in mid buffer 3 names index
   * NATIVE_SLOTS + 3, not its slot's. */
  s = mid[3];
  s->req.io = (struct req_io) { .op = REQ_OP_WRITE, .buf = s->buf + 512,
                                .len = 65536 };
  file_submit (c, s);
  struct io_uring_sqe *sqe = last_sqe (c);
  CHECK (sqe->opcode == IORING_OP_WRITE_FIXED &&
         sqe->buf_index == s->buf_reg && s->buf_reg != (int) s->idx,
         "mid buffer %d's write: opcode %d, buffer index %d (slot %u)",
         s->buf_reg, sqe->opcode, sqe->buf_index, s->idx);
  c->inflight = 0;
  /* Released: in the next turn the waiting request gets that very
   * buffer (in this one, no request gets one after a wait). */
  int freed = mid[5]->buf_reg;
  slot_free (c, mid[5]);
  CHECK (!assign_buffer (c, w), "a mid buffer in the turn a request waited");
  native_unpark (c);
  CHECK (assign_buffer (c, w) && w->tier == BUF_MID && w->buf_reg == freed,
         "the waiting request did not get the released mid buffer");
  for (unsigned j = 0; j < NATIVE_MID_BUFS; j++)
    if (j != 5)
      slot_free (c, mid[j]);
  slot_free (c, w);
  CHECK (c->mid_free == (1u << NATIVE_MID_BUFS) - 1, "mid buffers not all "
         "back: 0x%x", c->mid_free);
  test_mid_runs (c);
  /* Larger than all the mid buffers hold: the one large buffer, not
   * registered, a plain read. */
  big = request_slot (c, NBD_CMD_READ, 2 << 20);
  check_buffer (c, big, BUF_LARGE, -1, c->large, "a large read");
  big->req.io = (struct req_io) { .op = REQ_OP_READ, .buf = big->buf,
                                  .len = (2 << 20) + 512 };
  file_submit (c, big);
  CHECK (last_sqe (c)->opcode == IORING_OP_READ, "a large read: opcode %d",
         last_sqe (c)->opcode);
  c->inflight = 0;
  big2 = request_slot (c, NBD_CMD_WRITE, 4 << 20);
  CHECK (!assign_buffer (c, big2), "two large buffers");
  slot_free (c, big);
  check_buffer (c, big2, BUF_LARGE, -1, c->large, "the next large write");
  /* All back. */
  slot_free (c, small);
  slot_free (c, zero);
  slot_free (c, big2);
  CHECK (c->nfree == NATIVE_SLOTS &&
         c->mid_free == (1u << NATIVE_MID_BUFS) - 1 && !c->large_busy,
         "buffers not all back: mid 0x%x, large %d", c->mid_free,
         c->large_busy);
  native_conn_free (c);
}

int
main (void)
{
  test_send_again ();
  test_finished_parked ();
  test_sqe_full ();
  test_poll_file ();
  test_buffer_tiers ();
  printf ("test-native-unit: %d failure%s\n", failures,
          failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
