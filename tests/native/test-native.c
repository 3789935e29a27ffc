/* Tests of 'nbdswap serve --native' with libnbd clients (and a raw
 * socket client for the misbehaving cases) on a unix socket.
 *
 * Every data check is against a shadow copy of the file kept by the
 * test, and at the end against the backing file itself, read without
 * the server: data stamped with seeded random bytes, so a misplaced or
 * lost block shows.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#define FILE_SIZE (16u << 20)

#include "native-harness.h"

/* Negotiation results, and aligned and unaligned writes and reads. */
static void
test_roundtrip (void)
{
  struct nbd_handle *h = connect_h ();
  uint64_t seed = 2;
  unsigned char buf[200000];

  CHECK (nbd_get_size (h) == FILE_SIZE, "size %" PRId64, nbd_get_size (h));
  CHECK (nbd_can_flush (h) == 1 && nbd_can_fua (h) == 1 &&
         nbd_can_zero (h) == 1 && nbd_can_multi_conn (h) == 1 &&
         nbd_can_trim (h) == 0 && nbd_is_read_only (h) == 0, "flags");
  CHECK (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM) >= 512, "minimum");
  CHECK (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED) == 4096, "preferred");
  CHECK (nbd_get_structured_replies_negotiated (h) == 0, "structured");
  for (int i = 0; i < 300; i++) {
    bool aligned = i % 2 == 0;
    uint32_t len = aligned ? 4096 * (1 + rnd (&seed) % 40)
      : 1 + rnd (&seed) % sizeof buf;
    uint64_t off = rnd (&seed) % (FILE_SIZE - len);

    if (aligned)
      off &= ~UINT64_C (4095);
    fill (buf, len, &seed);
    memcpy (shadow + off, buf, len);
    CHECK (nbd_pwrite (h, buf, len, off, i % 7 == 0 ? LIBNBD_CMD_FLAG_FUA
                       : 0) == 0, "pwrite %" PRIu64 "+%" PRIu32 ": %s",
           off, len, nbd_get_error ());
    check_range (h, off - (off > 1000 ? 1000 : off), len, "round trip");
  }
  /* A request larger than all the mid buffers hold goes through the
   * large buffer. */
  {
    uint32_t len = 3u << 20;
    unsigned char *big = malloc (len);

    fill (big, len, &seed);
    memcpy (shadow + 777, big, len);
    CHECK (nbd_pwrite (h, big, len, 777, 0) == 0, "large: %s",
           nbd_get_error ());
    check_range (h, 0, len + 2000, "large");
    free (big);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
}

/* Many requests in flight on one connection (libnbd aio). */
static void
test_inflight (void)
{
  struct nbd_handle *h = connect_h ();
  enum { N = 64, LEN = 16384 };
  static unsigned char wb[N][LEN], rb[N][LEN];
  int64_t cookie[N];
  uint64_t seed = 3;

  for (int i = 0; i < N; i++) {
    uint64_t off = (uint64_t) i * 2 * LEN + (i % 3) * 100;

    fill (wb[i], LEN, &seed);
    memcpy (shadow + off, wb[i], LEN);
    cookie[i] = nbd_aio_pwrite (h, wb[i], LEN, off, NBD_NULL_COMPLETION, 0);
    CHECK (cookie[i] > 0, "aio_pwrite: %s", nbd_get_error ());
  }
  CHECK (nbd_aio_in_flight (h) > 1, "only %d in flight",
         nbd_aio_in_flight (h));
  while (nbd_aio_in_flight (h) > 0)
    nbd_poll (h, -1);
  for (int i = 0; i < N; i++)
    CHECK (nbd_aio_command_completed (h, cookie[i]) == 1, "write %d: %s",
           i, nbd_get_error ());
  for (int i = 0; i < N; i++)
    cookie[i] = nbd_aio_pread (h, rb[i], LEN,
                               (uint64_t) i * 2 * LEN + (i % 3) * 100,
                               NBD_NULL_COMPLETION, 0);
  while (nbd_aio_in_flight (h) > 0)
    nbd_poll (h, -1);
  for (int i = 0; i < N; i++) {
    CHECK (nbd_aio_command_completed (h, cookie[i]) == 1, "read %d", i);
    CHECK (memcmp (rb[i], wb[i], LEN) == 0, "aio data %d", i);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
}

/* Requests of every buffer size at once, 32 in flight (libnbd aio),
 * most of them mid-size (over 32 KiB, up to 128 KiB: 20 of 32, more
 * than twice the connection's mid buffers) at unaligned offsets, among
 * them 4 KiB ones (each slot's own buffer) and 200 KB and 600 KB ones
 * (runs of 2 and 5 mid buffers, which must find them adjacent and
 * free): writes alone, reads alone, both at once; then 32 reads and
 * 32 writes at once, so that every slot holds a request, the mid
 * buffers are all taken, reads wait for one and mid-size writes arrive
 * behind them: all must be answered.  Every byte is checked, so a file
 * operation naming another registered buffer than the one its request
 * was given (EFAULT, or another request's bytes) fails here.  The
 * server counts the requests that waited for a mid buffer: some must
 * have, or the waiting was not tested. */
enum { MIX_N = 32, MIX_MAX = 600000 };

/* One batch of MIX_N requests: write, read or both (even requests
 * write, odd ones read), in [base, base + about 5 MiB). */
enum mix_mode { MIX_WRITE, MIX_READ, MIX_BOTH };
struct mix {
  enum mix_mode mode;
  uint64_t off[MIX_N];
  uint32_t len[MIX_N];
  int64_t cookie[MIX_N];
  unsigned char b[MIX_N][MIX_MAX];
};

static bool
mix_writes (const struct mix *m, int i)
{
  return m->mode == MIX_WRITE || (m->mode == MIX_BOTH && i % 2 == 0);
}

/* Lay out m's requests from base: the ranges do not overlap, each
 * starts at an unaligned offset; the end of the last. */
static uint64_t
mix_layout (struct mix *m, uint64_t base)
{
  static const uint32_t lens[] = { 65536, 100000, 4096, 131072, 32769,
                                   200000, 100000, MIX_MAX };
  uint64_t at = base + 3;

  for (int i = 0; i < MIX_N; i++) {
    m->len[i] = lens[i % 8];
    m->off[i] = at;
    at += m->len[i] + 1 + (uint64_t) i * 509 % 4000;
  }
  return at;
}

/* Send all of m's requests (a write's fresh bytes go to the shadow). */
static void
mix_issue (struct nbd_handle *h, struct mix *m, enum mix_mode mode,
           uint64_t base, uint64_t *seed)
{
  m->mode = mode;
  mix_layout (m, base);
  for (int i = 0; i < MIX_N; i++) {
    if (mix_writes (m, i)) {
      fill (m->b[i], m->len[i], seed);
      memcpy (shadow + m->off[i], m->b[i], m->len[i]);
      m->cookie[i] = nbd_aio_pwrite (h, m->b[i], m->len[i], m->off[i],
                                     NBD_NULL_COMPLETION, 0);
    }
    else {
      memset (m->b[i], 0, m->len[i]);
      m->cookie[i] = nbd_aio_pread (h, m->b[i], m->len[i], m->off[i],
                                    NBD_NULL_COMPLETION, 0);
    }
    CHECK (m->cookie[i] > 0, "mix %d: request %d: %s", mode, i,
           nbd_get_error ());
  }
}

/* Once nothing is in flight: each of m's requests succeeded, each read
 * returned the shadow's bytes. */
static void
mix_check (struct nbd_handle *h, const struct mix *m)
{
  for (int i = 0; i < MIX_N; i++) {
    CHECK (nbd_aio_command_completed (h, m->cookie[i]) == 1, "mix %d: %s "
           "%d (%" PRIu32 " bytes at %" PRIu64 "): %s", m->mode,
           mix_writes (m, i) ? "write" : "read", i, m->len[i], m->off[i],
           nbd_get_error ());
    if (!mix_writes (m, i))
      CHECK (memcmp (m->b[i], shadow + m->off[i], m->len[i]) == 0, "mix "
             "%d: read %d (%" PRIu32 " bytes at %" PRIu64 "): wrong data",
             m->mode, i, m->len[i], m->off[i]);
  }
}

/* Wait until nothing of h's is in flight, having checked that more
 * than want were. */
static void
mix_wait (struct nbd_handle *h, int want)
{
  CHECK (nbd_aio_in_flight (h) > want, "only %d requests in flight",
         nbd_aio_in_flight (h));
  while (nbd_aio_in_flight (h) > 0)
    nbd_poll (h, -1);
}

static void
test_buffer_sizes (void)
{
  static struct mix m1, m2;
  struct nbd_handle *h = connect_h ();
  uint64_t seed = 17, end;
  char cmd[600];
  int found = 1;

  for (int round = 0; round < 3; round++) {
    for (enum mix_mode mode = MIX_WRITE; mode <= MIX_BOTH; mode++) {
      mix_issue (h, &m1, mode, 0, &seed);
      mix_wait (h, 8);
      mix_check (h, &m1);
    }
  }
  /* 64 at once: the reads fill every slot first. */
  end = mix_layout (&m1, 0);
  mix_issue (h, &m1, MIX_READ, 0, &seed);
  mix_issue (h, &m2, MIX_WRITE, end, &seed);
  mix_wait (h, MIX_N);
  mix_check (h, &m1);
  mix_check (h, &m2);
  check_range (h, 0, (uint32_t) mix_layout (&m2, end) + 4096,
               "after the mixed sizes");
  nbd_shutdown (h, 0);
  nbd_close (h);

  /* SIGUSR1: the counters, in the log. */
  kill (server, SIGUSR1);
  snprintf (cmd, sizeof cmd, "grep -qE 'native: [1-9][0-9]* requests "
            "waited for one of a connection.s [0-9]+ buffers' '%s'",
            logpath);
  for (int i = 0; i < 100 && (found = system (cmd)) != 0; i++)
    usleep (50000);
  CHECK (found == 0, "no request waited for a mid buffer: the test did not "
         "test that");
  snprintf (cmd, sizeof cmd, "grep -qE 'native: [1-9][0-9]* requests "
            "over 128 KiB went through runs of a connection.s mid "
            "buffers, [1-9][0-9]* larger' '%s'", logpath);
  CHECK (system (cmd) == 0, "the log counts no request in a run of mid "
         "buffers, or none in the large buffer (test_roundtrip's)");
}

/* Several connections writing interleaved 100-byte pieces that share
 * O_DIRECT blocks: read-modify-write must not lose any of them. */
struct mc { int id; int errors; };

static void *
mc_thread (void *arg)
{
  struct mc *m = arg;
  struct nbd_handle *h = connect_h ();
  unsigned char piece[100];

  for (int k = 0; k < 400; k++) {
    uint64_t off = (1u << 20) + (uint64_t) k * 400 + (uint64_t) m->id * 100;

    memset (piece, 0x10 * (m->id + 1) + k % 16, sizeof piece);
    if (nbd_pwrite (h, piece, sizeof piece, off, 0) == -1)
      m->errors++;
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  return NULL;
}

static void
test_multiconn (void)
{
  pthread_t t[4];
  struct mc m[4];
  struct nbd_handle *h;

  for (int i = 0; i < 4; i++) {
    m[i] = (struct mc) { i, 0 };
    pthread_create (&t[i], NULL, mc_thread, &m[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join (t[i], NULL);
    CHECK (m[i].errors == 0, "connection %d: %d errors", i, m[i].errors);
    for (int k = 0; k < 400; k++)
      memset (shadow + (1u << 20) + k * 400 + i * 100,
              0x10 * (i + 1) + k % 16, 100);
  }
  h = connect_h ();
  check_range (h, 1u << 20, 400 * 400, "multi-conn RMW");
  nbd_shutdown (h, 0);
  nbd_close (h);
}

/* Flush, FUA, zeroes; out-of-range requests get EINVAL (reads) or
 * ENOSPC (writes and zeroes, as the protocol suggests) and the
 * connection goes on. */
static void
test_commands (void)
{
  struct nbd_handle *h = connect_h ();
  unsigned char b[4096] = { 1 };

  CHECK (nbd_flush (h, 0) == 0, "flush: %s", nbd_get_error ());
  CHECK (nbd_zero (h, 300000, 5000, 0) == 0, "zero: %s", nbd_get_error ());
  memset (shadow + 5000, 0, 300000);
  CHECK (nbd_zero (h, 4096, 1 << 20, LIBNBD_CMD_FLAG_FUA) == 0, "zero fua");
  memset (shadow + (1 << 20), 0, 4096);
  check_range (h, 0, 2 << 20, "zeroes");
  CHECK (nbd_pread (h, b, 4096, FILE_SIZE - 2048, 0) == -1 &&
         nbd_get_errno () == EINVAL, "read past the end: %s",
         nbd_get_error ());
  CHECK (nbd_pwrite (h, b, 4096, FILE_SIZE, 0) == -1 &&
         nbd_get_errno () == ENOSPC, "write past the end: %s",
         nbd_get_error ());
  CHECK (nbd_trim (h, 4096, 0, 0) == -1 && nbd_get_errno () == EINVAL,
         "trim: %s", nbd_get_error ());
  CHECK (nbd_zero (h, 4096, FILE_SIZE, 0) == -1 &&
         nbd_get_errno () == ENOSPC, "zero past the end");
  check_range (h, FILE_SIZE - 8192, 8192, "after errors");
  nbd_shutdown (h, 0);
  nbd_close (h);
}

/* Garbage, a vanished writer, bad magic: each such client is dropped
 * and another connection keeps being served.  A read or write over the
 * maximum advertised (and here past the end, which is checked first, as
 * nbdkit does) is refused (a write's payload read and dropped: nothing
 * of it lands) and its connection goes on; integration/test-limits
 * checks one within the export. */
static void
test_misbehaving (void)
{
  struct nbd_handle *h = connect_h ();
  unsigned char junk[1000];
  int s;

  s = raw_client ();
  CHECK (s >= 0, "raw client: %m");
  memset (junk, 0xab, sizeof junk);
  CHECK (send (s, junk, sizeof junk, MSG_NOSIGNAL) > 0, "send");
  CHECK (closed_by_server (s), "garbage: connection not closed");
  close (s);
  check_range (h, 0, 65536, "after garbage");

  s = raw_client ();
  send_header (s, 1, 65536, 65536, 0x25609513);
  CHECK (send (s, junk, sizeof junk, MSG_NOSIGNAL) > 0, "send");
  close (s);                    /* gone in the middle of the payload */
  usleep (100000);
  check_range (h, 65536, 65536, "after a vanished writer");

  s = raw_client ();
  CHECK (s >= 0, "raw client: %m");
  if (s >= 0) {
    static unsigned char big[1 << 20];

    memset (big, 0xee, sizeof big);
    send_header (s, 1, 0, 64u << 20, 0x25609513);
    for (int i = 0; i < 64; i++)
      CHECK (send (s, big, sizeof big, MSG_NOSIGNAL) == sizeof big,
             "oversized write: payload MiB %d: %m", i);
    CHECK (read_reply (s, 0) == ENOSPC, "oversized write: not ENOSPC");
    send_header (s, 0, 0, (32u << 20) + 1, 0x25609513);
    CHECK (read_reply (s, 0) == EINVAL, "oversized read: not EINVAL");
    send_header (s, 0, 4096, 4096, 0x25609513);
    CHECK (read_reply (s, 4096) == 0 &&
           memcmp (reply_data, shadow + 4096, 4096) == 0,
           "a read after the oversized requests");
    close (s);
  }

  s = raw_client ();
  send_header (s, 0, 0, 4096, 0x12345678);
  CHECK (closed_by_server (s), "bad magic: connection not closed");
  close (s);
  check_range (h, 0, 1 << 20, "after misbehaving clients");
  nbd_shutdown (h, 0);
  nbd_close (h);
}

/* SIGTERM with writes in flight: every request the server has received
 * completes and is acknowledged, the server exits 0.  The writes are
 * small enough for all of them to be in the socket before the signal
 * (a request still in the client's queue cannot be served). */
static void
test_sigterm (void)
{
  struct nbd_handle *h = connect_h ();
  enum { N = 32, LEN = 4096 };
  static unsigned char wb[N][LEN];
  int64_t cookie[N];
  uint64_t seed = 9;
  int st;

  for (int i = 0; i < N; i++) {
    fill (wb[i], LEN, &seed);
    memcpy (shadow + (2u << 20) + (uint64_t) i * LEN, wb[i], LEN);
    cookie[i] = nbd_aio_pwrite (h, wb[i], LEN,
                                (2u << 20) + (uint64_t) i * LEN,
                                NBD_NULL_COMPLETION, LIBNBD_CMD_FLAG_FUA);
  }
  for (int i = 0; i < 100 && !nbd_aio_is_ready (h); i++)
    nbd_poll (h, 10);           /* until all are on the wire */
  kill (server, SIGTERM);
  while (nbd_aio_in_flight (h) > 0 && nbd_poll (h, 5000) > 0)
    ;
  for (int i = 0; i < N; i++)
    CHECK (nbd_aio_command_completed (h, cookie[i]) == 1,
           "write %d in flight at SIGTERM: %s", i, nbd_get_error ());
  /* The client stays connected, as the kernel does: the server must
   * exit all the same. */
  st = wait_exit (server, 5000);
  CHECK (st == 0, "server exit status %d with the client connected", st);
  nbd_close (h);
}

/* All slots busy (32 reads of 128 KiB whose replies we do not read
 * yet), then NBD_CMD_DISC or a bad magic in the backlog: once slots
 * free up and that is parsed, the server must close the connection
 * although the client keeps it open. */
static void
test_backlog_close (void)
{
  enum { N = 32, LEN = 128 * 1024 };

  for (int k = 0; k < 2; k++) {
    int s = raw_client (), bad = 0;

    for (int i = 0; i < N; i++)
      send_header (s, 0, (uint64_t) i * LEN, LEN, 0x25609513);
    send_header (s, k == 0 ? 2 : 0, 0, k == 0 ? 0 : 4096,
                 k == 0 ? 0x25609513 : 0x12345678);
    usleep (200000);
    for (int i = 0; i < N; i++)
      bad += read_reply (s, LEN) != 0;
    CHECK (bad == 0, "%d reads failed", bad);
    CHECK (closed_by_server (s), "%s after a full queue: the connection "
           "stays open", k == 0 ? "NBD_CMD_DISC" : "a bad magic");
    close (s);
  }
}

/* More requests than slots, then NBD_CMD_DISC and the end of the
 * client's stream (shutdown SHUT_WR, as libnbd does right after
 * NBD_CMD_DISC): every request before the DISC is still answered,
 * those waiting for a slot in the staging buffer too.  Then the same
 * with a write cut short by the end of stream instead of the DISC: its
 * header is parsed only once a slot is free, after the end of stream,
 * and the connection must still end. */
static void
test_eof_backlog (void)
{
  enum { N = 40, LEN = 4096 };
  unsigned char part[100] = { 0 };

  for (int k = 0; k < 2; k++) {
    int s = raw_client (), bad = 0;

    CHECK (s >= 0, "raw client: %m");
    for (int i = 0; i < N; i++)
      send_header (s, 0, (uint64_t) i * LEN, LEN, 0x25609513);
    if (k == 0)
      send_header (s, 2, 0, 0, 0x25609513);
    else {
      send_header (s, 1, 0, 8192, 0x25609513);
      CHECK (send (s, part, sizeof part, MSG_NOSIGNAL) == sizeof part,
             "send");
    }
    shutdown (s, SHUT_WR);
    for (int i = 0; i < N; i++)
      bad += read_reply (s, LEN) != 0;
    CHECK (bad == 0, "%d of the %d reads sent before %s and the end of "
           "stream not answered", bad, N,
           k == 0 ? "NBD_CMD_DISC" : "a cut-short write");
    CHECK (closed_by_server (s), "the connection stays open after the "
           "end of stream (%s)", k == 0 ? "NBD_CMD_DISC" : "a cut-short "
           "write");
    close (s);
  }
}

/* Unknown command flags, a FLUSH with an offset or a length (reserved:
 * zero): EINVAL, as nbdkit answers, and the connection goes on. */
static void
test_bad_flags (void)
{
  int s = raw_client ();
  struct { uint32_t magic; uint16_t flags, type; uint64_t cookie, off;
           uint32_t len; } __attribute__ ((packed)) rq = {
    htobe32 (0x25609513), htobe16 (1u << 3), htobe16 (0), 7, 0,
    htobe32 (4096)
  };

  CHECK (send (s, &rq, sizeof rq, MSG_NOSIGNAL) == sizeof rq, "send");
  CHECK (read_reply (s, 4096) == EINVAL, "a read with flag 1<<3");
  send_header (s, 3, 4096, 0, 0x25609513);
  CHECK (read_reply (s, 0) == EINVAL, "a flush with an offset");
  send_header (s, 3, 0, 4096, 0x25609513);
  CHECK (read_reply (s, 0) == EINVAL, "a flush with a length");
  send_header (s, 3, 0, 0, 0x25609513);
  CHECK (read_reply (s, 0) == 0, "a flush");
  send_header (s, 0, 0, 4096, 0x25609513);
  CHECK (read_reply (s, 4096) == 0, "the connection goes on");
  close (s);
}

/* 37 reads of 128 KiB (5 more than the slots), SIGTERM before any reply
 * is read: every reply arrives, and the server exits while the client
 * keeps the socket open. */
static void
test_stop_backlog (void)
{
  enum { N = 37, LEN = 128 * 1024 };
  int s = raw_client (), bad = 0, st;

  for (int i = 0; i < N; i++)
    send_header (s, 0, (uint64_t) i * LEN, LEN, 0x25609513);
  usleep (300000);
  kill (server, SIGTERM);
  usleep (300000);
  for (int i = 0; i < N; i++)
    bad += read_reply (s, LEN) != 0;
  CHECK (bad == 0, "%d of %d reads not answered", bad, N);
  st = wait_exit (server, 5000);
  CHECK (st == 0, "exit status %d with the client connected (-1: it did "
         "not exit)", st);
  close (s);
}

/* An option longer than the server keeps: NBD_REP_ERR_TOO_BIG, and the
 * negotiation goes on. */
static void
test_option_too_big (void)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  unsigned char greet[18], *big = calloc (1, 10000);
  uint32_t cflags = htobe32 (3);
  struct { uint64_t magic; uint32_t opt, len; } __attribute__ ((packed))
    opt = { htobe64 (UINT64_C (0x49484156454f5054)), htobe32 (99),
            htobe32 (10000) };
  struct { uint64_t magic; uint32_t opt, type, len; }
    __attribute__ ((packed)) rep;
  struct timeval tv = { 10, 0 };
  int s = socket (AF_UNIX, SOCK_STREAM, 0);

  memcpy (sun.sun_path, sock, strlen (sock) + 1);
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK (connect (s, (struct sockaddr *) &sun, sizeof sun) == 0 &&
         recv (s, greet, sizeof greet, MSG_WAITALL) == sizeof greet &&
         send (s, &cflags, 4, 0) == 4 && send (s, &opt, 16, 0) == 16 &&
         send (s, big, 10000, MSG_NOSIGNAL) == 10000, "negotiation");
  CHECK (recv (s, &rep, sizeof rep, MSG_WAITALL) == sizeof rep &&
         be32toh (rep.type) == (1u << 31 | 9), "no NBD_REP_ERR_TOO_BIG "
         "for a 10000-byte option");
  close (s);
  free (big);
}

/* Refused at start, with a message naming the problem: an export name
 * over the protocol's 4096 bytes. */
static void
test_start_refusals (void)
{
  char name[5001], sock2[320];
  const char *extra[] = { "--socket", sock2, "--export", name, NULL };
  int st;

  snprintf (sock2, sizeof sock2, "%s/r.sock", dir);
  memset (name, 'n', 5000);
  name[5000] = '\0';
  st = wait_exit (spawn_server (NULL, extra), 20000);
  CHECK (st == 1 && log_has ("limit of 4096: choose a shorter one"),
         "a 5000-byte --export: exit status %d", st);
}

/* io_uring denied by a seccomp filter (as a container's profile denies
 * it): serve --native (the default) says so and serves with nbdkit and
 * the plugin, whose pread/pwrite engine works there. */
static void
test_uring_denied (void)
{
  char sock2[320];
  const char *extra[] = { "--socket", sock2, NULL };
  unsigned char b[4096];
  struct nbd_handle *h = NULL;
  struct stat sb;
  int st = -1;
  pid_t pid;

  snprintf (sock2, sizeof sock2, "%s/f.sock", dir);
  unlink (pidf);
  spawn_preload = true;
  pid = spawn_server (SECCOMP_WRAPPER, extra);
  spawn_preload = false;
  for (int i = 0; i < 6000; i++) {
    int status;

    if (waitpid (pid, &status, WNOHANG) == pid) {
      st = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
      break;
    }
    if (stat (pidf, &sb) == 0 && sb.st_size > 0) {
      h = nbd_create ();
      if (nbd_connect_unix (h, sock2) == 0)
        break;
      nbd_close (h);
      h = NULL;
    }
    usleep (10000);
  }
  if (st == 77) {
    printf ("SKIP part: cannot install a seccomp filter here\n");
    return;
  }
  CHECK (h != NULL, "io_uring denied: no server came up (exit status %d)",
         st);
  CHECK (log_has ("the native server needs io_uring, and io_uring_setup was "
                  "denied") &&
         log_has ("FALLING BACK to nbdkit with the swapfile plugin") &&
         log_has ("FALLING BACK to the pread/pwrite engine"),
         "io_uring denied: the fallback is not logged");
  if (h) {
    CHECK (nbd_pread (h, b, sizeof b, 1 << 20, 0) == 0 &&
           memcmp (b, shadow + (1 << 20), sizeof b) == 0,
           "io_uring denied: read through the fallback: %s",
           nbd_get_error ());
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
  if (st == -1) {
    /* Under the sanitizers nbdkit can hang in p11-kit's exit handler
     * after the plugin is gone (see integration/harness.c): there a
     * server still running after 5 s is killed, not failed. */
    bool preloaded = getenv ("NBDSWAP_SERVER_PRELOAD") &&
      *getenv ("NBDSWAP_SERVER_PRELOAD");
    kill (pid, SIGTERM);
    st = wait_exit (pid, preloaded ? 5000 : 20000);
    CHECK (st == 0 || (preloaded && st == -1), "io_uring denied: the "
           "fallback server's exit status %d (-1: it did not stop)", st);
  }

  /* engine=io_uring after "--": no fallback, a system error. */
  const char *strict[] = { "--socket", sock2, "--", "engine=io_uring", NULL };
  pid = spawn_server (SECCOMP_WRAPPER, strict);
  st = wait_exit (pid, 20000);
  CHECK (st == 3 && log_has ("engine=io_uring forbids falling back"),
         "io_uring denied, engine=io_uring: exit status %d (want 3) or no "
         "message", st);
}

/* A free TCP port on 127.0.0.1. */
static int
free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int s = socket (AF_INET, SOCK_STREAM, 0), port = -1;

  if (bind (s, (struct sockaddr *) &a, sizeof a) == 0 &&
      getsockname (s, (struct sockaddr *) &a, &len) == 0)
    port = ntohs (a.sin_port);
  close (s);
  return port;
}

/* --port on 127.0.0.1 with --allow: a client outside the list is
 * refused, one inside it is served. */
static void
test_tcp_allow (void)
{
  char port[16];

  snprintf (port, sizeof port, "%d", free_port ());
  for (int k = 0; k < 2; k++) {
    const char *extra[] = { "--bind", "127.0.0.1", "--port", port,
                            "--allow", k == 0 ? "192.0.2.0/24" :
                            "127.0.0.1/32", NULL };
    struct nbd_handle *h = nbd_create ();
    pid_t pid = spawn_server (NULL, extra);
    struct stat st;
    int r = -1;

    for (int i = 0; i < 3000 && stat (pidf, &st) != 0; i++)
      usleep (10000);
    r = nbd_connect_tcp (h, "127.0.0.1", port);
    if (k == 0)
      CHECK (r == -1 && log_has ("client 127.0.0.1 is not in --allow"),
             "127.0.0.1 outside --allow was served");
    else {
      char b[4096];

      CHECK (r == 0 && nbd_pread (h, b, sizeof b, 0, 0) == 0 &&
             memcmp (b, shadow, sizeof b) == 0, "TCP client in --allow: %s",
             nbd_get_error ());
    }
    nbd_close (h);
    kill (pid, SIGTERM);
    CHECK (wait_exit (pid, 20000) == 0, "TCP server exit");
  }
}

/* A client that negotiates one byte every 2 s: each receive of the
 * server's is quick, but the whole negotiation must end by its 30 s
 * deadline.  Sets *arg to the seconds until the server closed (-1:
 * never, within 60 s). */
static void *
trickle (void *arg)
{
  double *closed_after = arg;
  unsigned char greet[18], msg[20] = { 0, 0, 0, 3, 'I', 'H', 'A', 'V',
                                       'E', 'O', 'P', 'T', 0, 0, 0, 7,
                                       0, 0, 0, 100 };
  int s = connect_raw ();
  time_t t0 = time (NULL);

  *closed_after = -1;
  if (s < 0 || recv (s, greet, sizeof greet, MSG_WAITALL) != sizeof greet) {
    *closed_after = -2;
    return NULL;
  }
  for (unsigned i = 0; time (NULL) - t0 < 60; i++) {
    struct pollfd p = { s, POLLIN, 0 };

    if (i < sizeof msg &&
        send (s, msg + i, 1, MSG_NOSIGNAL) != 1)
      break;
    if (poll (&p, 1, 2000) == 1) {
      char b;
      if (recv (s, &b, 1, 0) <= 0)
        break;
    }
  }
  *closed_after = difftime (time (NULL), t0);
  close (s);
  return NULL;
}

/* The server's CPU seconds so far (utime + stime). */
static double
cpu_seconds (pid_t pid)
{
  char path[64], buf[1024], *p;
  unsigned long ut = 0, st = 0;
  FILE *fp;

  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fp = fopen (path, "r");
  if (fp == NULL || fgets (buf, sizeof buf, fp) == NULL) {
    if (fp)
      fclose (fp);
    return 0;
  }
  fclose (fp);
  p = strrchr (buf, ')');
  if (p == NULL ||
      sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
              &ut, &st) != 2)
    return 0;
  return (double) (ut + st) / sysconf (_SC_CLK_TCK);
}

/* Out of file descriptors with clients waiting: the accept loop pauses
 * (little CPU) and says so, instead of spinning.  Whether accept itself
 * fails (rather than the eventfd after it, which drops that client)
 * depends on the parity of the free descriptors when they run out
 * (each client holds two; a descriptor the server holds for a moment,
 * such as the stats file being rewritten, shifts it), so limits from 32
 * up are tried until one hits it, up to 39 (a CI run under load missed
 * at all of 32 to 34). */
static void
test_emfile (void)
{
  enum { NCONN = 64 };
  int c[NCONN], hit = 0;

  for (int limit = 32; limit <= 39 && hit == 0; limit++) {
    double t0, used;

    server_nofile = limit;
    start_server ();
    server_nofile = 0;
    for (int i = 0; i < NCONN; i++)
      c[i] = connect_raw ();
    sleep (1);
    t0 = cpu_seconds (server);
    sleep (2);
    used = cpu_seconds (server) - t0;
    CHECK (used < 0.5, "RLIMIT_NOFILE %d, %d clients: %.2f s of CPU in "
           "2 s", limit, NCONN, used);
    kill (server, SIGTERM);
    CHECK (wait_exit (server, 20000) == 0, "exit");
    /* Read once the server is gone: its log is complete then. */
    hit += log_has ("out of file descriptors");
    for (int i = 0; i < NCONN; i++)
      if (c[i] >= 0)
        close (c[i]);
  }
  CHECK (hit > 0, "accept never ran out of file descriptors: the test "
         "did not test it");
}

/* Deadlines:
 *   - a negotiation trickling a byte at a time ends at its 30 s
 *     deadline, although no single receive is slow;
 *   - SIGTERM with a client stalled in the middle of a write's payload:
 *     the server cuts it off after 10 s and exits. */
static void
test_deadlines (void)
{
  double trickled;
  pthread_t t;
  int st, s;

  start_server ();
  pthread_create (&t, NULL, trickle, &trickled);
  pthread_join (t, NULL);
  CHECK (trickled >= 25 && trickled <= 40, "a trickling negotiation was "
         "closed after %.0f s, not at the 30 s deadline (-1: never, -2: "
         "no greeting)", trickled);

  s = raw_client ();
  send_header (s, 1, 0, 65536, 0x25609513);
  CHECK (send (s, shadow, 1000, MSG_NOSIGNAL) == 1000, "send");
  usleep (200000);
  kill (server, SIGTERM);
  st = wait_exit (server, 20000);
  CHECK (st == 0 && log_has ("did not let its connection finish"),
         "a client stalled in mid-payload at SIGTERM: exit status %d "
         "(-1: the server did not exit)", st);
  close (s);
}

/* --poll-us: the default server (run by the tests before) never spun;
 * with --poll-us 100 one spins for the same depth-1 requests.  The
 * counts are in the log at exit.  That server gets its file through a
 * symbolic link and its options abbreviated (as getopt_long allows) and
 * listens on its default socket (RUNTIME_DIR/swap.sock): 'nbdswap
 * status FILE' lists it by the file's real name, with that socket and
 * fresh counters. */
static void
test_poll_and_status (void)
{
  const char *extra[] = { "--poll", "100", NULL };
  static unsigned char b[4096];
  char cmd[700], want[900], out[8192], saved[sizeof sock], link[320];
  char linked[400];
  struct nbd_handle *h;
  struct stat st;
  size_t n = 0;
  FILE *fp;

  CHECK (log_has ("native: depth-1 spin (--poll-us 0): 0 spins") &&
         !log_has ("native: depth-1 spin (--poll-us 100)"),
         "the default server spun (or logged no count)");

  memcpy (saved, sock, sizeof sock);
  snprintf (sock, sizeof sock, "%s/swap.sock", dir);
  snprintf (link, sizeof link, "%s/lnk", dir);
  snprintf (linked, sizeof linked, "%s/./swap.img", link);
  CHECK (symlink (".", link) == 0, "symlink %s: %m", link);
  spawn_file = linked;
  server = spawn_server (NULL, extra);
  spawn_file = NULL;
  for (int i = 0; i < 6000 && !(stat (pidf, &st) == 0 && st.st_size > 0
                                && handshake_ok ()); i++)
    usleep (10000);
  h = connect_h ();
  for (int i = 0; i < 50; i++)
    CHECK (nbd_pread (h, b, sizeof b, (uint64_t) i * 8192, 0) == 0,
           "read %d with --poll-us 100: %s", i, nbd_get_error ());

  /* Run from another directory, without the server's environment. */
  snprintf (cmd, sizeof cmd, "cd / && env -u NBDSWAP_RUNTIME_DIR %s status "
            "'%s' --json", NBDSWAP, file);
  fp = popen (cmd, "r");
  if (fp) {
    n = fread (out, 1, sizeof out - 1, fp);
    pclose (fp);
  }
  out[n] = '\0';
  snprintf (want, sizeof want, "{\"pid\":%d,\"server\":\"native\","
            "\"file\":\"%s\",\"socket\":\"%s\",\"address\":null,"
            "\"port\":null,\"socket_inherited\":false,", (int) server, file,
            sock);
  CHECK (strstr (out, want) != NULL, "nbdswap status does not list the "
         "native server as %s: %s", want, out);
  CHECK (strstr (out, "\"stats_fresh\":true") && strstr (out, "\"reads\":50,"),
         "nbdswap status: no fresh counters with 50 reads: %s", out);

  nbd_shutdown (h, 0);
  nbd_close (h);
  kill (server, SIGTERM);
  CHECK (wait_exit (server, 20000) == 0, "exit with --poll-us 100");
  snprintf (cmd, sizeof cmd, "grep -qE 'native: depth-1 spin \\(--poll-us "
            "100\\): [1-9][0-9]* spins' '%s'", logpath);
  CHECK (system (cmd) == 0, "--poll-us 100 never spun for a depth-1 "
         "request");
  memcpy (sock, saved, sizeof sock);
}

int
main (void)
{
  harness_init ("native-test", FILE_SIZE);
  start_server ();
  test_roundtrip ();
  test_inflight ();
  test_buffer_sizes ();
  test_multiconn ();
  test_commands ();
  test_misbehaving ();
  test_backlog_close ();
  test_eof_backlog ();
  test_bad_flags ();
  test_option_too_big ();
  test_sigterm ();
  start_server ();
  test_stop_backlog ();
  check_file ();
  test_tcp_allow ();
  test_start_refusals ();
  test_uring_denied ();
  test_emfile ();
  test_deadlines ();
  test_poll_and_status ();
  return harness_finish ("test-native");
}
