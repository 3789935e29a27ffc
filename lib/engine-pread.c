/* nbdswap: the pread/pwrite engine, the fallback when io_uring is denied
 * (a container's seccomp profile) or not wanted (engine=pread). */
#include <config.h>

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"

static int
pread_worker_init (struct worker *w)
{
  return 0;
}

static void
pread_worker_fini (struct worker *w)
{
}

/* One system call: what it returns, as -errno on failure. */
static int
pread_io (struct worker *w, const struct req_io *io)
{
  struct iovec iov = { .iov_base = io->buf, .iov_len = io->len };
  ssize_t r;

  switch (io->op) {
  case REQ_OP_READ:
    r = preadv2 (w->fd, &iov, 1, (off_t) io->off, 0);
    break;
  case REQ_OP_WRITE:
    r = pwritev2 (w->fd, &iov, 1, (off_t) io->off, io->fua ? RWF_DSYNC : 0);
    break;
  default:
    r = fdatasync (w->fd);
    break;
  }
  return r < 0 ? -errno : (int) r;
}

const struct engine engine_pread = {
  .name = "pread",
  .worker_init = pread_worker_init,
  .worker_fini = pread_worker_fini,
  .io = pread_io,
};
