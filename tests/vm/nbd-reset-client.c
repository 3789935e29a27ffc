/* nbdswap VM tests: the client that makes nbdkit 1.32.5 abort.
 *
 * It connects to an NBD server (a unix socket path, or HOST:PORT), reads
 * the export's first page and sends writes of that same page back to
 * offset 0 without ever reading a reply, until the server stops reading
 * them: its replies have filled this socket's receive queue and its
 * threads wait in send.  Then it resets the connection: SO_LINGER 0, so
 * that TCP sends RST; on a unix socket the replies left unread make the
 * server's reads and sends fail (ECONNRESET, EPIPE).  nbdkit 1.32.5 then
 * aborts in its own core ("raw_send_socket: Assertion `sock >= 0'
 * failed"), taking every other client's connection with it
 * (docs/remote-swap.md).  A reset while the server still reads, as after
 * a fixed few hundred writes, makes it abort only some of the time.
 *
 * The page written back is the page read, so the export does not change:
 * the client may run against a swap device in use (page 0 holds the swap
 * header, which the kernel reads at swapon and never writes).
 *
 * Usage: nbd-reset-client SOCKET|HOST:PORT [MAX_WRITES]   (default 5000:
 * nbdkit stops reading after about 280, the native server after about
 * 3000)
 * Prints one line: the writes queued, whether the server stopped reading
 * them, the replies left unread.  Exit status: 0 the connection was reset
 * as planned, 1 failure (connect, handshake, usage), 3 the server closed
 * the connection first (nbdkit may have died of an earlier client).
 */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <libnbd.h>

#define RESET_PAGE 4096

/* A server that has read no request for this long (ms) has stopped
 * reading: its replies have nowhere to go.  Generous for a TCG guest. */
#define RESET_STALL_MS 3000

/* Connects h to target: a path if it holds a slash, else HOST:PORT. */
static int
reset_client_connect (struct nbd_handle *h, char *target)
{
  char *colon;

  if (strchr (target, '/'))
    return nbd_connect_unix (h, target);
  colon = strrchr (target, ':');
  if (colon == NULL) {
    fprintf (stderr, "nbd-reset-client: %s: not a socket path or "
             "HOST:PORT\n", target);
    exit (EXIT_FAILURE);
  }
  *colon = '\0';
  return nbd_connect_tcp (h, target, colon + 1);
}

/* Queues n writes of page to offset 0 and sends them without reading a
 * reply, until all are sent or the server stops reading (*stalled):
 * libnbd writes when told the socket takes more (nbd_aio_notify_write)
 * and reads only when told there is something to read
 * (nbd_aio_notify_read), which never happens here.  -1 if the
 * connection fails meanwhile. */
static int
reset_client_flood (struct nbd_handle *h, const void *page, unsigned n,
                    bool *stalled)
{
  struct pollfd p = { .fd = nbd_aio_get_fd (h), .events = POLLOUT };

  *stalled = false;
  for (unsigned i = 0; i < n; i++)
    if (nbd_aio_pwrite (h, page, RESET_PAGE, 0, NBD_NULL_COMPLETION, 0)
        == -1)
      return -1;
  while (nbd_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_WRITE) {
    if (poll (&p, 1, RESET_STALL_MS) == 0) {
      *stalled = true;
      return 0;
    }
    if (nbd_aio_notify_write (h) == -1)
      return -1;
  }
  return 0;
}

/* Closes the connection with a reset, leaving the replies unread; prints
 * what was queued and how many replies (16 bytes each: simple replies)
 * had arrived. */
static void
reset_client_reset (struct nbd_handle *h, unsigned n, bool stalled)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  int fd = nbd_aio_get_fd (h), unread = -1;

  ioctl (fd, FIONREAD, &unread);
  /* On a unix socket this changes nothing: the unread replies do it. */
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  /* nbd_close closes the socket without NBD_CMD_DISC (nbd_shutdown would
   * send one). */
  nbd_close (h);
  printf ("nbd-reset-client: %u writes of %d bytes to offset 0 queued, "
          "%s; %d replies unread (%d bytes); connection reset\n", n,
          RESET_PAGE, stalled ? "the server stopped reading them"
          : "all sent", unread / 16, unread);
}

int
main (int argc, char *argv[])
{
  static char page[RESET_PAGE];
  struct nbd_handle *h;
  unsigned long n = 5000;
  bool stalled;

  if (argc < 2 || argc > 3
      || (argc == 3 && ((n = strtoul (argv[2], NULL, 10)) == 0 || n > 100000))) {
    fprintf (stderr, "Usage: nbd-reset-client SOCKET|HOST:PORT [MAX_WRITES]\n");
    return EXIT_FAILURE;
  }
  h = nbd_create ();
  if (h == NULL
      || reset_client_connect (h, argv[1]) == -1
      || nbd_pread (h, page, sizeof page, 0, 0) == -1) {
    fprintf (stderr, "nbd-reset-client: %s\n", nbd_get_error ());
    return EXIT_FAILURE;
  }
  if (reset_client_flood (h, page, (unsigned) n, &stalled) == -1) {
    fprintf (stderr, "nbd-reset-client: the server closed the connection: "
             "%s\n", nbd_get_error ());
    return 3;
  }
  reset_client_reset (h, (unsigned) n, stalled);
  return EXIT_SUCCESS;
}
