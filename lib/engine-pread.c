/* nbdswap: the pread/pwrite engine, the fallback when io_uring is denied
 * (a container's seccomp profile) or not wanted (engine=pread). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"
#include "fault.h"
#include "log.h"
#include "retry.h"

static int
pread_worker_init (struct worker *w)
{
  return 0;
}

static void
pread_worker_fini (struct worker *w)
{
}

/* One operation to full completion. */
static int
run_one (struct worker *w, struct engine_op *op, bool fua)
{
  struct retry rt = RETRY_INIT;

  op->done = 0;
  while (op->done < op->len) {
    int f = fault_check (op->write);
    struct iovec iov = {
      .iov_base = (char *) op->buf + op->done,
      .iov_len = fault_len (f, op->len - op->done),
    };
    off_t off = (off_t) (op->off + op->done);
    ssize_t r;

    op->injected = f > 0 ? f : 0;
    if (op->injected) {
      errno = op->injected;             /* fails as the call would */
      r = -1;
    }
    else if (op->write)
      r = pwritev2 (w->fd, &iov, 1, off, fua ? RWF_DSYNC : 0);
    else
      r = preadv2 (w->fd, &iov, 1, off, 0);
    if (r > 0) {
      op->done += (uint32_t) r;
      continue;
    }
    if (r == 0) {
      log_error ("%s: offset %" PRIu64 ": no progress (end of file?)",
                 op->write ? "write" : "read", (uint64_t) off);
      return op->res = -EIO;
    }
    r = retry_after (&rt, errno, op->write ? "write" : "read",
                     (uint64_t) off);
    if (r < 0)
      return op->res = (int) r;
  }
  return op->res = 0;
}

static int
pread_run (struct worker *w, struct engine_op *ops, unsigned n, bool fua)
{
  for (unsigned i = 0; i < n; i++) {
    int r = run_one (w, &ops[i], fua);
    if (r < 0)
      return r;
  }
  return 0;
}

static int
pread_sync (struct worker *w)
{
  struct retry rt = RETRY_INIT;

  while (fdatasync (w->fd) == -1) {
    int r = retry_after_sync (&rt, errno);
    if (r < 0)
      return r;
  }
  return 0;
}

const struct engine engine_pread = {
  .name = "pread",
  .worker_init = pread_worker_init,
  .worker_fini = pread_worker_fini,
  .run = pread_run,
  .sync = pread_sync,
};
