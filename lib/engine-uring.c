/* nbdswap: the io_uring engine (O_DIRECT reads and writes through a ring
 * owned by the calling thread). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "engine.h"
#include "fault.h"
#include "log.h"
#include "retry.h"

int
engine_uring_probe (char *why, size_t whylen)
{
  struct io_uring ring;
  int r;
  FILE *fp;
  int disabled = 0;

  r = io_uring_queue_init (2, &ring, 0);
  if (r == 0) {
    io_uring_queue_exit (&ring);
    return 0;
  }
  /* Linux 6.6+: the sysctl can deny it to everyone or to most users. */
  fp = fopen ("/proc/sys/kernel/io_uring_disabled", "re");
  if (fp) {
    if (fscanf (fp, "%d", &disabled) != 1)
      disabled = 0;
    fclose (fp);
  }
  if (r == -ENOSYS)
    snprintf (why, whylen, "this kernel has no io_uring "
              "(io_uring_setup: ENOSYS)");
  else if (r == -EPERM && disabled == 2)
    snprintf (why, whylen, "io_uring is disabled by the sysctl "
              "kernel.io_uring_disabled=2 (io_uring_setup: EPERM)");
  else if (r == -EPERM && disabled == 1)
    snprintf (why, whylen, "io_uring is limited to members of "
              "kernel.io_uring_group (kernel.io_uring_disabled=1; "
              "io_uring_setup: EPERM)");
  else if (r == -EPERM)
    snprintf (why, whylen, "io_uring_setup was denied (EPERM): most likely "
              "a seccomp filter, such as a container runtime's default "
              "profile");
  else if (r == -ENOMEM)
    snprintf (why, whylen, "no memory for a ring (io_uring_setup: ENOMEM): "
              "check RLIMIT_MEMLOCK (ulimit -l)");
  else
    snprintf (why, whylen, "io_uring_setup failed: %s", strerror (-r));
  return r;
}

static int
uring_worker_init (struct worker *w)
{
  int r;

  r = io_uring_queue_init (w->queue_depth, &w->ring, 0);
  if (r < 0)
    return r;
  w->has_ring = true;
  /* A registered file saves a file table lookup and refcount per I/O. */
  w->fixed_file = io_uring_register_files (&w->ring, &w->fd, 1) == 0;
  return 0;
}

static void
uring_worker_fini (struct worker *w)
{
  /* Unregister first: a registered file is only let go by the ring's
   * deferred teardown, which would keep the backing file's OFD lock held
   * for a moment after we exit and make a quick restart fail. */
  if (w->fixed_file)
    io_uring_unregister_files (&w->ring);
  if (w->has_ring)
    io_uring_queue_exit (&w->ring);
  w->has_ring = false;
}

/* Queue what is left of op i. */
static void
prep_op (struct worker *w, struct engine_op *op, unsigned i, bool fua)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&w->ring);
  int fd = w->fixed_file ? 0 : w->fd;
  char *buf = (char *) op->buf + op->done;

  /* Batches never exceed the ring, and every SQE is submitted before the
   * next is prepared, so an entry is always free. */
  assert (sqe != NULL);
  int f = fault_check (op->write);
  unsigned len = fault_len (f, op->len - op->done);

  op->injected = f > 0 ? f : 0;
  if (op->injected) {
    io_uring_prep_nop (sqe);            /* fails on completion, no I/O */
    io_uring_sqe_set_data64 (sqe, i);
    return;
  }
  if (op->write)
    io_uring_prep_write (sqe, fd, buf, len, op->off + op->done);
  else
    io_uring_prep_read (sqe, fd, buf, len, op->off + op->done);
  if (op->write && fua)
    sqe->rw_flags = RWF_DSYNC;
  if (w->fixed_file)
    sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64 (sqe, i);
}

/* Account one completion; returns true if op is finished. */
static bool
complete_op (struct worker *w, struct engine_op *op, unsigned i, int res,
             bool fua, struct retry *rt)
{
  if (res > 0) {
    op->done += (uint32_t) res;
    if (op->done >= op->len)
      return true;
    prep_op (w, op, i, fua);    /* short transfer: resume the rest */
    return false;
  }
  if (res == 0) {
    /* No progress: the file ended early (it shrank under us). */
    log_error ("%s: offset %" PRIu64 ": no progress (end of file?)",
               op->write ? "write" : "read", op->off + op->done);
    op->res = -EIO;
    return true;
  }
  if (retry_after (rt, -res, op->write ? "write" : "read",
                   op->off + op->done) == 0) {
    prep_op (w, op, i, fua);
    return false;
  }
  op->res = retry_is_transient (-res) ? -EIO : res;
  return true;
}

/* user_data of the fsync SQE: never an operation's index. */
#define SYNC_TAG UINT64_MAX

/* Submit what is queued and wait for at least one completion.  Nothing
 * of ours that is queued or in flight is ever abandoned: returning early
 * would let the next request submit our stale SQEs, or reuse buffers the
 * kernel still writes into.  So a refused submission that is transient
 * (EAGAIN, ENOMEM, EBUSY: memory pressure) is waited out with backoff,
 * EINTR just waits again, and anything else is a bug in this file, where
 * stopping is the only answer that corrupts nothing. */
static void
submit_and_wait (struct worker *w, struct retry *backoff)
{
  int r = io_uring_submit_and_wait (&w->ring, 1);

  if (r >= 0 || r == -EINTR)
    return;
  if (r == -EAGAIN || r == -ENOMEM || r == -EBUSY) {
    retry_pause (backoff, -r, "io_uring_enter");
    return;
  }
  log_error ("io_uring_enter: %s: the ring is unusable, stopping",
             strerror (-r));
  abort ();
}

/* A completion that belongs to no operation in flight (it cannot happen
 * by design): log once and ignore it, never count it. */
static void
stray_completion (uint64_t tag, int res)
{
  static atomic_bool warned;

  if (!atomic_exchange (&warned, true))
    log_warning ("io_uring: ignoring a completion for no pending "
                 "operation (tag %" PRIu64 ", result %d)", tag, res);
}

static int
uring_run (struct worker *w, struct engine_op *ops, unsigned n, bool fua)
{
  struct retry rt = RETRY_INIT, backoff = RETRY_INIT;
  struct io_uring_cqe *cqe;
  unsigned inflight = n;

  assert (n <= w->queue_depth);
  for (unsigned i = 0; i < n; i++) {
    ops[i].done = 0;
    ops[i].res = 0;
    ops[i].pending = true;
    prep_op (w, &ops[i], i, fua);
  }
  while (inflight > 0) {
    submit_and_wait (w, &backoff);
    while (io_uring_peek_cqe (&w->ring, &cqe) == 0) {
      uint64_t tag = io_uring_cqe_get_data64 (cqe);
      int res = cqe->res;

      io_uring_cqe_seen (&w->ring, cqe);
      if (tag >= n || !ops[tag].pending) {
        stray_completion (tag, res);
        continue;
      }
      if (ops[tag].injected)
        res = -ops[tag].injected;
      if (complete_op (w, &ops[tag], (unsigned) tag, res, fua, &rt)) {
        ops[tag].pending = false;
        inflight--;
      }
    }
  }
  for (unsigned i = 0; i < n; i++)
    if (ops[i].res < 0)
      return ops[i].res;
  return 0;
}

/* Queue one fdatasync. */
static void
prep_sync (struct worker *w)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&w->ring);

  assert (sqe != NULL);         /* the ring holds nothing else now */
  io_uring_prep_fsync (sqe, w->fixed_file ? 0 : w->fd,
                       IORING_FSYNC_DATASYNC);
  if (w->fixed_file)
    sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64 (sqe, SYNC_TAG);
}

/* fdatasync through the ring: one fsync outstanding at a time; a new one
 * is queued only after the previous one's completion was collected. */
static int
uring_sync (struct worker *w)
{
  struct retry rt = RETRY_INIT, backoff = RETRY_INIT;
  struct io_uring_cqe *cqe;

  for (;;) {
    bool done = false;
    int res = 0, r;

    prep_sync (w);
    while (!done) {
      submit_and_wait (w, &backoff);
      while (io_uring_peek_cqe (&w->ring, &cqe) == 0) {
        uint64_t tag = io_uring_cqe_get_data64 (cqe);

        if (tag == SYNC_TAG) {
          res = cqe->res;
          done = true;
        }
        else
          stray_completion (tag, cqe->res);
        io_uring_cqe_seen (&w->ring, cqe);
      }
    }
    if (res >= 0)
      return 0;
    r = retry_after_sync (&rt, -res);
    if (r < 0)
      return r;
  }
}

const struct engine engine_uring = {
  .name = "io_uring",
  .worker_init = uring_worker_init,
  .worker_fini = uring_worker_fini,
  .run = uring_run,
  .sync = uring_sync,
};
