/* nbdswap: the monitor thread (see include/monitor.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "clock.h"
#include "harden.h"
#include "log.h"
#include "monitor.h"

static pthread_t thread;
static bool started;
static int wake[2] = { -1, -1 };        /* pipe: 'r'echeck, 's'tats, 'q'uit */
static atomic_uint done;
static struct monitor_params params;

unsigned
monitor_rechecks (void)
{
  return atomic_load (&done);
}

/* Async-signal-safe: one byte into the pipe, errno kept. */
static void
request (char c)
{
  int saved = errno;

  if (wake[1] >= 0 && write (wake[1], &c, 1) == -1) {
    /* A full pipe already holds requests: nothing is lost. */
  }
  errno = saved;
}

void
monitor_request_recheck (void)
{
  request ('r');
}

void
monitor_request_stats (void)
{
  request ('s');
}

/* Milliseconds until the deadline (0 if past), or -1 for none. */
static int
ms_until (uint64_t deadline)
{
  uint64_t now = clock_now_ns ();

  if (deadline == 0)
    return -1;
  return now >= deadline ? 0 : (int) ((deadline - now + 999999) / 1000000);
}

/* Wait for a request, a stop or the interval, and act on it.  The next
 * periodic re-verification is an absolute deadline, so that stats
 * requests (or signals) arriving more often than recheck= cannot keep
 * postponing it. */
static void *
monitor_thread (void *arg)
{
  uint64_t period = (uint64_t) params.recheck * 1000000000;
  uint64_t next = period ? clock_now_ns () + period : 0;

  /* Its re-verification reads the backing file while the client swaps
   * through this server: an allocation there must not recurse into
   * reclaim that writes swap back to us.  Without the mark, the VM's
   * ktls-pressure scenario hung in 3 minutes: this thread's O_DIRECT
   * pread allocating a bio went into direct reclaim, whose swap-out to
   * /dev/nbd0 waited in wbt_wait for writes the serving thread could not
   * finish (it waited on the same bio mempool). */
  harden_serving_thread ();
  for (;;) {
    struct pollfd p = { .fd = wake[0], .events = POLLIN };
    char c = 0;
    int r = poll (&p, 1, ms_until (next));

    if (r == -1 && errno != EINTR)
      log_warning ("monitor: poll: %m");
    if (r > 0 && read (wake[0], &c, 1) == 1) {
      if (c == 'q')
        return NULL;
      if (c == 's' && params.report_stats)
        params.report_stats (params.arg);
    }
    if (c == 'r' || (next && clock_now_ns () >= next)) {
      params.recheck_fn (params.arg, c == 'r');
      atomic_fetch_add (&done, 1);
      if (next)
        next = clock_now_ns () + period;
    }
  }
}

int
monitor_start (const struct monitor_params *p)
{
  int r;

  params = *p;
  if (pipe2 (wake, O_CLOEXEC | O_NONBLOCK) == -1)
    return -errno;
  r = pthread_create (&thread, NULL, monitor_thread, NULL);
  if (r != 0) {
    close (wake[0]);
    close (wake[1]);
    wake[0] = wake[1] = -1;
    return -r;
  }
  started = true;
  return 0;
}

int
monitor_serve (const struct monitor_params *p)
{
  int r = monitor_start (p);

  if (r < 0) {
    errno = -r;
    log_error ("starting the monitor thread: %m");
    return -1;
  }
  if (monitor_catch_signals () == -1) {
    log_error ("sigaction SIGHUP/SIGUSR1: %m");
    return -1;
  }
  return 0;
}

void
monitor_stop (void)
{
  if (!started)
    return;
  /* The pipe is non-blocking for the signal handlers; the stop byte must
   * get through, so wait for room if a burst of signals filled it. */
  while (write (wake[1], "q", 1) == -1 && errno == EAGAIN)
    usleep (1000);
  pthread_join (thread, NULL);
  started = false;
  close (wake[0]);
  close (wake[1]);
  wake[0] = wake[1] = -1;
}

static void
on_sighup (int sig)
{
  monitor_request_recheck ();
}

static void
on_sigusr1 (int sig)
{
  monitor_request_stats ();
}

int
monitor_catch_signals (void)
{
  struct sigaction sa = { .sa_handler = on_sighup, .sa_flags = SA_RESTART };

  sigemptyset (&sa.sa_mask);
  if (sigaction (SIGHUP, &sa, NULL) == -1)
    return -1;
  sa.sa_handler = on_sigusr1;
  return sigaction (SIGUSR1, &sa, NULL);
}
