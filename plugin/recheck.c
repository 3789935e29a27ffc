/* nbdswap: re-verifying the backing file while serving (see
 * include/recheck.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "log.h"
#include "recheck.h"

static pthread_t thread;
static bool started;
static int wake[2] = { -1, -1 };        /* pipe: request / stop */
static atomic_bool changed;
static atomic_uint done;
static int file_fd;
static struct verify_options options;
static const struct verify_result *base;
static unsigned every;

bool
recheck_map_changed (void)
{
  return atomic_load_explicit (&changed, memory_order_relaxed);
}

unsigned
recheck_count (void)
{
  return atomic_load (&done);
}

void
recheck_request (void)
{
  int saved = errno;

  if (wake[1] >= 0 && write (wake[1], "r", 1) == -1) {
    /* A full pipe already holds a request: nothing is lost. */
  }
  errno = saved;
}

/* Verify once; on a changed or unfit file, raise the flag (once). */
static void
recheck_once (void)
{
  struct verify_result now;
  int r = verify_fd (file_fd, base->path, &options, &now);

  if (r < 0) {
    errno = -r;
    log_warning ("%s: re-verification could not run: %m (will retry)",
                 base->path);
    return;
  }
  if ((now.verdict != VERIFY_FIT || !verify_same_map (base, &now))
      && !atomic_exchange (&changed, true)) {
    verify_log_result (&now);
    log_error ("%s: the file's extent map CHANGED while serving (a "
               "defrag, balance, dedupe, reflink copy or snapshot?): "
               "writes now fail with EIO so that the filesystem never "
               "allocates or copies on the swap-out path; swapoff on the "
               "client, then check the file with 'nbdswap verify %s' and "
               "restart the server", base->path, base->path);
  }
  verify_result_free (&now);
}

/* Wait for a request, a stop or the interval; re-verify. */
static void *
recheck_thread (void *arg)
{
  for (;;) {
    struct pollfd p = { .fd = wake[0], .events = POLLIN };
    int timeout = every ? (int) (every > INT32_MAX / 1000
                                 ? INT32_MAX : every * 1000) : -1;
    char c = 0;
    int r = poll (&p, 1, timeout);

    if (r == -1 && errno == EINTR)
      continue;
    if (r > 0 && read (wake[0], &c, 1) == 1 && c == 'q')
      return NULL;
    recheck_once ();
    atomic_fetch_add (&done, 1);
  }
}

int
recheck_start (int fd, const struct verify_options *opts,
               const struct verify_result *baseline, unsigned interval)
{
  int r;

  file_fd = fd;
  options = *opts;
  base = baseline;
  every = interval;
  if (pipe2 (wake, O_CLOEXEC | O_NONBLOCK) == -1)
    return -errno;
  r = pthread_create (&thread, NULL, recheck_thread, NULL);
  if (r != 0) {
    close (wake[0]);
    close (wake[1]);
    wake[0] = wake[1] = -1;
    return -r;
  }
  started = true;
  return 0;
}

void
recheck_stop (void)
{
  if (!started)
    return;
  /* The pipe is non-blocking for the signal handler; the stop byte must
   * get through, so wait for room if a burst of SIGHUPs filled it. */
  while (write (wake[1], "q", 1) == -1 && errno == EAGAIN)
    usleep (1000);
  pthread_join (thread, NULL);
  started = false;
  close (wake[0]);
  close (wake[1]);
  wake[0] = wake[1] = -1;
}
