/* nbdswap: the io_uring engine (O_DIRECT reads and writes through a ring
 * owned by the calling thread). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "engine.h"
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

int
engine_uring_workers_follow (struct io_uring *ring)
{
  cpu_set_t mine;
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  int r;

  if (sched_getaffinity (0, sizeof mine, &mine) < 0)
    return -errno;
  if (ncpu <= 0 || CPU_COUNT (&mine) >= ncpu)
    return 0;                   /* every CPU online: the kernel's default */
  r = io_uring_register_iowq_aff (ring, sizeof mine, &mine);
  if (r < 0)
    log_debug ("io_uring: workers on this thread's %d CPU(s): %s (they "
               "may run on any)", CPU_COUNT (&mine), strerror (-r));
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
  /* A registered file saves a file table lookup and refcount per I/O.
   * A pool of several files registers none: a ring would keep a removed
   * export's file, and its owner lock, until its next request. */
  w->fixed_file = w->fd >= 0
    && io_uring_register_files (&w->ring, &w->fd, 1) == 0;
  return 0;
}

void
engine_uring_ring_exit (struct io_uring *ring, bool files)
{
  /* Unregister first: a registered file is only let go by the ring's
   * deferred teardown, which would keep the backing file's OFD lock held
   * for a moment after we exit and make a quick restart fail. */
  if (files)
    io_uring_unregister_files (ring);
  io_uring_queue_exit (ring);
}

static void
uring_worker_fini (struct worker *w)
{
  if (w->has_ring)
    engine_uring_ring_exit (&w->ring, w->fixed_file);
  w->has_ring = false;
}

/* user_data of our one operation in flight, and of the no-op of
 * uring_worker_bind. */
#define IO_TAG 1
#define NOP_TAG 2

void
engine_uring_refused (int r, struct retry *backoff, const char *who)
{
  if (r == -EAGAIN || r == -ENOMEM || r == -EBUSY) {
    retry_pause (backoff, -r, "io_uring_enter");
    return;
  }
  log_error ("%sio_uring_enter: %s: the ring is unusable, stopping", who,
             strerror (-r));
  abort ();
}

/* Submit what is queued and wait for at least one completion (see
 * engine_uring_refused for a refusal). */
static void
submit_and_wait (struct worker *w, struct retry *backoff)
{
  int r = io_uring_submit_and_wait (&w->ring, 1);

  if (r < 0 && r != -EINTR)
    engine_uring_refused (r, backoff, "");
}

/* A completion that belongs to no operation in flight (it cannot happen
 * by design): log once and ignore it. */
static void
stray_completion (uint64_t tag, int res)
{
  static atomic_bool warned;

  if (!atomic_exchange (&warned, true))
    log_warning ("io_uring: ignoring a completion for no pending "
                 "operation (tag %" PRIu64 ", result %d)", tag, res);
}

/* Queue io on the ring. */
static void
prep_io (struct worker *w, const struct req_io *io)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&w->ring);

  /* One operation at a time, and the ring is empty between them. */
  assert (sqe != NULL);
  engine_uring_prep (sqe, io, w->fixed_file ? 0 : w->fd, w->fixed_file, -1);
  io_uring_sqe_set_data64 (sqe, IO_TAG);
}

/* Submit what is queued on w's ring and wait for the completion tagged
 * want: its result (strays are logged and dropped). */
static int
await_tag (struct worker *w, uint64_t want)
{
  struct retry backoff = RETRY_INIT;
  struct io_uring_cqe *cqe;

  for (;;) {
    submit_and_wait (w, &backoff);
    while (io_uring_peek_cqe (&w->ring, &cqe) == 0) {
      uint64_t tag = io_uring_cqe_get_data64 (cqe);
      int res = cqe->res;

      io_uring_cqe_seen (&w->ring, cqe);
      if (tag == want)
        return res;
      stray_completion (tag, res);
    }
  }
}

/* Submit io to the thread's own ring and wait for its completion. */
static int
uring_io (struct worker *w, const struct req_io *io)
{
  prep_io (w, io);
  return await_tag (w, IO_TAG);
}

/* A thread of the front end's (nbdkit's) takes w: its io_uring workers,
 * which the kernel makes for the submitting thread, follow that
 * thread's CPUs.  A no-op goes through the ring first, so that the
 * kernel has this thread's io_uring context (made at its first submit)
 * to apply the CPUs to. */
static void
uring_worker_bind (struct worker *w)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&w->ring);

  /* The ring is empty between operations, and is again after this one
   * (await_tag waits out refusals as uring_io does). */
  assert (sqe != NULL);
  io_uring_prep_nop (sqe);
  io_uring_sqe_set_data64 (sqe, NOP_TAG);
  await_tag (w, NOP_TAG);
  engine_uring_workers_follow (&w->ring);
}

const struct engine engine_uring = {
  .name = "io_uring",
  .worker_init = uring_worker_init,
  .worker_fini = uring_worker_fini,
  .worker_bind = uring_worker_bind,
  .io = uring_io,
};
