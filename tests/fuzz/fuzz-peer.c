/* nbdswap fuzz targets: the client's side of a run (see fuzz.h).
 *
 * The peer writes and reads at once (one thread, MSG_DONTWAIT, poll):
 * the native server stops reading requests while its replies cannot
 * go out, so a peer that only wrote could deadlock with it.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"

/* Send what is left of the input, as much as the socket takes; at the
 * end (or when the server stopped reading) shut the writing side. */
static void
peer_send (struct fuzz_peer *p, size_t *off, int *out)
{
  ssize_t r = send (p->sock, p->data + *off, p->size - *off,
                    MSG_NOSIGNAL | MSG_DONTWAIT);

  if (r > 0)
    *off += (size_t) r;
  else if (r < 0 && errno != EAGAIN && errno != EINTR)
    *off = p->size;             /* EPIPE, ECONNRESET: the server left */
  if (*off == p->size) {
    shutdown (p->sock, SHUT_WR);
    *out = 0;
  }
}

/* The peer thread: send the input, read the answers until end of
 * stream, handing them to p->received. */
static void *
peer_thread (void *arg)
{
  struct fuzz_peer *p = arg;
  static __thread unsigned char in[65536];
  size_t off = 0;
  int out = POLLOUT;

  if (p->size == 0) {
    shutdown (p->sock, SHUT_WR);
    out = 0;
  }
  for (;;) {
    struct pollfd pfd = { p->sock, (short) (POLLIN | out), 0 };

    if (poll (&pfd, 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      fuzz_fail ("fuzz: poll: %s", strerror (errno));
    }
    if (pfd.revents & POLLOUT)
      peer_send (p, &off, &out);
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv (p->sock, in, sizeof in, MSG_DONTWAIT);

      if (r > 0 && p->received)
        p->received (p->arg, in, (size_t) r);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        break;
    }
  }
  if (p->received)
    p->received (p->arg, NULL, 0);
  return NULL;
}

int
fuzz_peer_start (struct fuzz_peer *p, const uint8_t *data, size_t size)
{
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
    fuzz_fail ("fuzz: socketpair: %s", strerror (errno));
  p->sock = sv[0];
  p->data = data;
  p->size = size;
  errno = pthread_create (&p->thread, NULL, peer_thread, p);
  if (errno != 0)
    fuzz_fail ("fuzz: pthread_create: %s", strerror (errno));
  return sv[1];
}

void
fuzz_peer_finish (struct fuzz_peer *p, int server_sock)
{
  shutdown (server_sock, SHUT_RDWR);
  pthread_join (p->thread, NULL);
  close (server_sock);
  close (p->sock);
}

/* The sink that drops every line. */
static void
drop_line (enum log_level level, const char *line)
{
}

void
fuzz_quiet_log (void)
{
  if (getenv ("NBDSWAP_FUZZ_LOG") == NULL)
    log_set_sink (drop_line);
}

void
fuzz_fail (const char *fmt, ...)
{
  va_list args;

  va_start (args, fmt);
  vfprintf (stderr, fmt, args);
  va_end (args);
  fputc ('\n', stderr);
  abort ();
}

void
fuzz_cannot_run (const char *why)
{
  fprintf (stderr, "fuzz: SKIP: %s\n", why);
  exit (77);
}
