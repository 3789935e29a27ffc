/* nbdswap: socket I/O within a deadline (include/sockio.h). */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "clock.h"
#include "sockio.h"

int
sockio_wait (int fd, short events, uint64_t deadline_ns)
{
  for (;;) {
    uint64_t now = clock_now_ns ();
    struct pollfd p = { fd, events, 0 };
    int r;

    if (now >= deadline_ns)
      return -ETIMEDOUT;
    r = poll (&p, 1, (int) ((deadline_ns - now + 999999) / 1000000));
    if (r > 0)
      return 0;
    if (r < 0 && errno != EINTR)
      return -errno;
  }
}

int
sockio_full (int fd, void *buf, size_t len, short dir, uint64_t deadline_ns)
{
  char *p = buf;

  while (len > 0) {
    int w = sockio_wait (fd, dir, deadline_ns);
    ssize_t r;

    if (w < 0)
      return w;
    if (dir == POLLIN)
      r = recv (fd, p, len, MSG_DONTWAIT);
    else
      r = send (fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r == 0 && dir == POLLIN)
      return -ECONNRESET;
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -errno;
    }
    p += r;
    len -= (size_t) r;
  }
  return 0;
}

int
sockio_skip (int fd, uint64_t len, uint64_t deadline_ns)
{
  unsigned char junk[4096];

  while (len > 0) {
    size_t k = len < sizeof junk ? (size_t) len : sizeof junk;
    int r = sockio_full (fd, junk, k, POLLIN, deadline_ns);

    if (r < 0)
      return r;
    len -= k;
  }
  return 0;
}
