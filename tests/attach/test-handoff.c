/* nbdswap attach: the socket libnbd negotiated is still a live
 * connection in the transmission phase after nbd_close, speaking simple
 * replies, and blocking: exactly what the kernel needs.  If nbd_close
 * had sent NBD_CMD_DISC, or structured replies had been negotiated, the
 * raw write/read below would fail.
 */
#include <config.h>

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client-handshake.h"

#define REQ_MAGIC 0x25609513u
#define SIMPLE_REPLY_MAGIC 0x67446698u
#define CMD_READ 0
#define CMD_WRITE 1
#define EXPORT_SIZE (1024 * 1024)

static char dir[] = "/tmp/test-handoff.XXXXXX";
static pid_t server;

static void
cleanup (void)
{
  char sock[64];

  if (server > 0) {
    kill (server, SIGKILL);   /* a client may still hold a connection */
    waitpid (server, NULL, 0);
  }
  snprintf (sock, sizeof sock, "%s/sock", dir);
  unlink (sock);
  rmdir (dir);
}

/* Reads exactly n bytes or fails the test. */
static void
read_all (int fd, void *buf, size_t n)
{
  ssize_t r;
  size_t done = 0;

  while (done < n) {
    r = read (fd, (char *) buf + done, n - done);
    if (r <= 0) {
      fprintf (stderr, "FAIL: read from the handed-over socket: %s\n",
               r == 0 ? "end of file (the server hung up)" : strerror (errno));
      exit (EXIT_FAILURE);
    }
    done += (size_t) r;
  }
}

/* Sends one simple request (with data for a write) and checks the
 * simple reply's magic, error and handle. */
static void
request (int fd, uint16_t type, uint64_t handle, uint64_t off, uint32_t len,
         const void *data)
{
  unsigned char req[28], rep[16];
  uint32_t u32;
  uint64_t u64;

  u32 = htonl (REQ_MAGIC); memcpy (req, &u32, 4);
  memset (req + 4, 0, 2);
  req[6] = (unsigned char) (type >> 8); req[7] = (unsigned char) type;
  u64 = htobe64 (handle); memcpy (req + 8, &u64, 8);
  u64 = htobe64 (off); memcpy (req + 16, &u64, 8);
  u32 = htonl (len); memcpy (req + 24, &u32, 4);
  if (write (fd, req, sizeof req) != sizeof req
      || (data && write (fd, data, len) != (ssize_t) len)) {
    fprintf (stderr, "FAIL: write to the handed-over socket: %m\n");
    exit (EXIT_FAILURE);
  }
  read_all (fd, rep, sizeof rep);
  memcpy (&u32, rep, 4);
  if (ntohl (u32) != SIMPLE_REPLY_MAGIC) {
    fprintf (stderr, "FAIL: reply magic 0x%08x, want a simple reply\n",
             ntohl (u32));
    exit (EXIT_FAILURE);
  }
  memcpy (&u32, rep + 4, 4);
  memcpy (&u64, rep + 8, 8);
  if (u32 != 0 || be64toh (u64) != handle) {
    fprintf (stderr, "FAIL: reply error %u handle %llu\n", ntohl (u32),
             (unsigned long long) be64toh (u64));
    exit (EXIT_FAILURE);
  }
}

int
main (void)
{
  struct nbd_target t;
  struct nbd_export e;
  char sock[64], err[256], wbuf[4096], rbuf[4096];
  int fd, i;

  if (system ("nbdkit --version > /dev/null 2>&1") != 0) {
    printf ("SKIP: nbdkit is not installed\n");
    return 77;
  }
  if (mkdtemp (dir) == NULL)
    return EXIT_FAILURE;
  atexit (cleanup);
  snprintf (sock, sizeof sock, "%s/sock", dir);
  server = fork ();
  if (server == 0) {
    execlp ("nbdkit", "nbdkit", "-f", "-U", sock, "memory", "1M",
            (char *) NULL);
    _exit (127);
  }
  for (i = 0; i < 100 && access (sock, F_OK) == -1; ++i)
    usleep (50000);

  nbd_target_parse (sock, &t);
  fd = nbd_handshake (&t, &e, err, sizeof err);
  if (fd < 0) {
    fprintf (stderr, "FAIL: handshake: %s\n", err);
    return EXIT_FAILURE;
  }
  if (e.size != EXPORT_SIZE || !(e.flags & 1) || (e.flags & 2)) {
    fprintf (stderr, "FAIL: size %llu flags 0x%llx\n",
             (unsigned long long) e.size, (unsigned long long) e.flags);
    return EXIT_FAILURE;
  }
  if (fcntl (fd, F_GETFL) & O_NONBLOCK) {
    fprintf (stderr, "FAIL: the socket is still non-blocking\n");
    return EXIT_FAILURE;
  }
  for (i = 0; i < (int) sizeof wbuf; ++i)
    wbuf[i] = (char) (i * 7 + 3);
  request (fd, CMD_WRITE, 1, 8192, sizeof wbuf, wbuf);
  request (fd, CMD_READ, 2, 8192, sizeof rbuf, NULL);
  read_all (fd, rbuf, sizeof rbuf);
  if (memcmp (wbuf, rbuf, sizeof wbuf) != 0) {
    fprintf (stderr, "FAIL: read back different data\n");
    return EXIT_FAILURE;
  }
  close (fd);
  printf ("ok: the negotiated socket carries simple requests after "
          "nbd_close\n");
  return EXIT_SUCCESS;
}
