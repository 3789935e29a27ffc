/* nbdswap: the I/O engines and the workers that own their resources:
 * how the plugin's serving threads drive the request engine (request.h).
 *
 * A worker is what one serving thread needs to do I/O without allocating:
 * an io_uring ring (for the io_uring engine), an aligned bounce buffer
 * and a scratch block.  Workers are made before serving (worker_pool_init,
 * in .after_fork) and handed out one per nbdkit thread on its first
 * request; a thread keeps its worker until it exits, when the worker goes
 * back to the pool.  So the I/O path takes no lock to find its ring, and
 * no two threads ever share a ring (no submission lock either).
 *
 * An engine performs one file operation of a request and returns what
 * the system call returned; short transfers, retries and faults are the
 * request engine's.
 */
#ifndef NBDSWAP_ENGINE_H
#define NBDSWAP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

#include "request.h"
#include "retry.h"

struct worker_params {
  /* The backing file, registered with each ring; -1 for a pool that
   * serves several files (a directory of exports): then each request
   * names its file (worker_run) and none is registered. */
  int fd;
  unsigned queue_depth;         /* ring entries */
  uint32_t bounce_size;         /* bytes, a multiple of buf_align */
  uint32_t scratch_size;        /* bytes, a multiple of buf_align */
  uint32_t buf_align;           /* bounce buffer alignment */
};

struct worker {
  int fd;                       /* the file of the request running */
  unsigned queue_depth;
  struct io_uring ring;
  bool has_ring;
  bool fixed_file;              /* fd registered as fixed file 0 */
  unsigned char *bounce;        /* bounce_size bytes, then the scratch */
  uint32_t bounce_size;
  unsigned char *scratch;
  struct worker *next;          /* pool free list */
  struct worker *all_next;      /* list of every worker, for unload */
};

struct engine {
  const char *name;
  int (*worker_init) (struct worker *w);
  void (*worker_fini) (struct worker *w);
  /* The calling thread has taken w and serves with it from now on
   * (optional). */
  void (*worker_bind) (struct worker *w);
  /* Perform io: bytes moved (0 for a sync), or -errno. */
  int (*io) (struct worker *w, const struct req_io *io);
};

extern const struct engine engine_uring;
extern const struct engine engine_pread;

/* Prepare sqe for io on fd (a registered file's index if fixed_file),
 * through registered buffer buf_index (read_fixed/write_fixed) unless it
 * is negative.  The plugin's workers and the native server's
 * connections both queue the request engine's operations with it;
 * inline, as it runs for every operation and its callers' constant
 * arguments fold away. */
static inline void
engine_uring_prep (struct io_uring_sqe *sqe, const struct req_io *io, int fd,
                   bool fixed_file, int buf_index)
{
  switch (io->op) {
  case REQ_OP_READ:
    if (buf_index >= 0)
      io_uring_prep_read_fixed (sqe, fd, io->buf, io->len, io->off,
                                buf_index);
    else
      io_uring_prep_read (sqe, fd, io->buf, io->len, io->off);
    break;
  case REQ_OP_WRITE:
    if (buf_index >= 0)
      io_uring_prep_write_fixed (sqe, fd, io->buf, io->len, io->off,
                                 buf_index);
    else
      io_uring_prep_write (sqe, fd, io->buf, io->len, io->off);
    if (io->fua)
      sqe->rw_flags = RWF_DSYNC;
    break;
  case REQ_OP_SYNC:
    io_uring_prep_fsync (sqe, fd, IORING_FSYNC_DATASYNC);
    break;
  }
  if (fixed_file)
    sqe->flags |= IOSQE_FIXED_FILE;
}

/* io_uring_submit_and_wait refused with r (not EINTR): our operations
 * are queued or in flight into our buffers and must never be abandoned
 * (the next request would submit stale SQEs, or reuse memory the kernel
 * still writes into).  So a transient refusal (EAGAIN, ENOMEM, EBUSY:
 * memory pressure) is waited out with backoff, and anything else, a bug,
 * stops the process (prefixing who to the log line), which corrupts
 * nothing. */
extern void engine_uring_refused (int r, struct retry *backoff,
                                  const char *who);

/* Close ring, unregistering its files first (files: it has some). */
extern void engine_uring_ring_exit (struct io_uring *ring, bool files);

/* Keep the io_uring workers that run ring's operations for the calling
 * thread on the CPUs that thread may run on.  Linux gives a ring's
 * workers every CPU of the machine (or of the cpuset), whatever
 * affinity taskset or systemd's CPUAffinity= gave the server; this
 * registers the thread's own affinity for them when it is narrower.
 * Call it from the thread that submits to ring.  0, or -errno (the
 * kernel keeps its default then). */
extern int engine_uring_workers_follow (struct io_uring *ring);

/* Can this process set up an io_uring?  0, or -errno with the reason in
 * words (seccomp, sysctl, old kernel, memlock limit) in why. */
extern int engine_uring_probe (char *why, size_t whylen);

/* Prepare n workers for engine e.  Returns 0 or -errno. */
extern int worker_pool_init (const struct engine *e,
                             const struct worker_params *wp, unsigned n);
extern void worker_pool_fini (void);

/* The calling thread's worker (made on the spot, with a warning, only if
 * more threads serve than were prepared).  NULL with errno on failure. */
extern struct worker *worker_get (void);

/* Run request r on file fd (t's file) to its end with the calling
 * thread's worker w: every file operation through the pool's engine,
 * lock waits asleep.  Returns r->err. */
extern int worker_run (struct req_target *t, int fd, struct worker *w,
                       struct req *r);

/* How many workers exist (prepared + made later). */
extern unsigned worker_count (void);

#endif /* NBDSWAP_ENGINE_H */
