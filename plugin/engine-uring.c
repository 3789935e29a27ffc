/* nbdswap: the io_uring engine (O_DIRECT reads and writes through a ring
 * owned by the calling thread). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

static int
uring_run (struct worker *w, struct engine_op *ops, unsigned n, bool fua)
{
  struct retry rt = RETRY_INIT;
  struct io_uring_cqe *cqe;
  unsigned inflight = n;
  int r;

  assert (n <= w->queue_depth);
  for (unsigned i = 0; i < n; i++) {
    ops[i].done = 0;
    ops[i].res = 0;
    prep_op (w, &ops[i], i, fua);
  }
  while (inflight > 0) {
    r = io_uring_submit_and_wait (&w->ring, 1);
    if (r < 0 && r != -EINTR
        && retry_after (&rt, -r, "io_uring_enter", 0) != 0) {
      /* Only a bug gets here (EFAULT, EINVAL...).  Earlier operations of
       * this batch may still be in flight into buffers we would hand
       * back: stopping is the only way not to corrupt memory. */
      log_error ("io_uring_enter: %s: the ring is unusable, stopping",
                 strerror (-r));
      abort ();
    }
    while (io_uring_peek_cqe (&w->ring, &cqe) == 0) {
      unsigned i = (unsigned) io_uring_cqe_get_data64 (cqe);
      int res = cqe->res;

      io_uring_cqe_seen (&w->ring, cqe);
      assert (i < n);
      if (ops[i].injected)
        res = -ops[i].injected;
      if (complete_op (w, &ops[i], i, res, fua, &rt))
        inflight--;
    }
  }
  for (unsigned i = 0; i < n; i++)
    if (ops[i].res < 0)
      return ops[i].res;
  return 0;
}

static int
uring_sync (struct worker *w)
{
  struct retry rt = RETRY_INIT;
  struct io_uring_sqe *sqe;
  struct io_uring_cqe *cqe;
  int r;

  for (;;) {
    sqe = io_uring_get_sqe (&w->ring);
    assert (sqe != NULL);
    io_uring_prep_fsync (sqe, w->fixed_file ? 0 : w->fd,
                         IORING_FSYNC_DATASYNC);
    if (w->fixed_file)
      sqe->flags |= IOSQE_FIXED_FILE;
    r = io_uring_submit_and_wait (&w->ring, 1);
    if (r >= 0) {
      r = io_uring_wait_cqe (&w->ring, &cqe);
      if (r == 0) {
        r = cqe->res;
        io_uring_cqe_seen (&w->ring, cqe);
      }
    }
    if (r >= 0)
      return 0;
    r = retry_after (&rt, -r, "fdatasync", 0);
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
