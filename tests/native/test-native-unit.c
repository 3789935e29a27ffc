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
  c->parked = NULL;
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

int
main (void)
{
  test_send_again ();
  test_finished_parked ();
  test_sqe_full ();
  test_poll_file ();
  printf ("test-native-unit: %d failure%s\n", failures,
          failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
