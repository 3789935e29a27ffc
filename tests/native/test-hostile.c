/* Hostile and broken clients against 'nbdswap serve --native': the
 * catalogue of docs/design.md ("The native server", "Misbehaving
 * clients"), each case done by a raw socket client while a well-behaved
 * libnbd client on another connection (the steady client) keeps doing
 * verified writes and reads.  After each case: the steady client was
 * never stalled for more than STALL_MS and none of its requests failed,
 * the server answers a new client, and the backing file has not grown;
 * at the end the file holds exactly the shadow (no write landed outside
 * the accepted requests).  A sampler thread reads the server's VmRSS
 * and locked resident memory (Locked: in /proc/PID/smaps_rollup) every
 * 10 ms all along: both stay within the 64 MiB budget (not checked
 * under the sanitizers).  At the end, the stop still ends by its
 * deadline with two stalled clients connected.
 *
 * test-native covers the rest and is not repeated here: garbage and a
 * bad magic in transmission, a 64 MiB write, a writer gone in
 * mid-payload, a full queue then NBD_CMD_DISC, unknown command flags, a
 * 10000-byte option, a trickling negotiation, SIGTERM with a stalled
 * writer alone, out of file descriptors.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "native-harness.h"
#include "native-proto.h"              /* the protocol's numbers */

/* Over 32 MiB, so that a read of the announced maximum is in range. */
#define HFILE_SIZE (40u << 20)

/* The steady client's own range of the file. */
#define STEADY_OFF (36u << 20)
#define STEADY_LEN (4u << 20)

/* Where the half-closed client writes. */
#define HALF_OFF (33u << 20)

/* The longest the steady client may wait for one round. */
#define STALL_MS 3000

/* The memory budget (docs/benchmarks.md, issue 4), in KiB. */
#define BUDGET_KIB (64 * 1024)

/* MAX_CONNS in server/native/native-serve.c. */
#define MAX_CONNS 64

/* NATIVE_STOP_DEADLINE and NATIVE_HANDSHAKE_TIMEOUT in native.h. */
#define STOP_DEADLINE 10
#define HANDSHAKE_TIMEOUT 30

/* Milliseconds on the monotonic clock. */
static uint64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The steady client: rounds done, failed, the slowest round of the
 * current case, and when the last one ended. */
static atomic_bool steady_stop;
static atomic_uint_fast64_t steady_rounds, steady_errors, steady_worst_ms,
  steady_last_ms;

/* One verified round: write a random piece of its range, read it back
 * with some of its surroundings. */
static void
steady_round (struct nbd_handle *h, uint64_t *seed)
{
  static unsigned char wb[65536], rb[65536 + 8192];
  uint32_t len = 1 + rnd (seed) % sizeof wb;
  uint64_t off = STEADY_OFF + 4096 + rnd (seed) % (STEADY_LEN - 8192 - len);

  fill (wb, len, seed);
  memcpy (shadow + off, wb, len);
  if (nbd_pwrite (h, wb, len, off, 0) == -1 ||
      nbd_pread (h, rb, len + 8192, off - 4096, 0) == -1 ||
      memcmp (rb, shadow + off - 4096, len + 8192) != 0) {
    fprintf (stderr, "steady client: round at %" PRIu64 "+%" PRIu32
             " failed: %s\n", off, len, nbd_get_error ());
    atomic_fetch_add (&steady_errors, 1);
  }
}

/* The steady client's thread: rounds every 2 ms until told to stop. */
static void *
steady_thread (void *arg)
{
  struct nbd_handle *h = connect_h ();
  uint64_t seed = 11;

  (void) arg;
  atomic_store (&steady_last_ms, now_ms ());
  while (!atomic_load (&steady_stop)) {
    uint64_t t0 = now_ms (), t;

    steady_round (h, &seed);
    t = now_ms ();
    if (t - t0 > atomic_load (&steady_worst_ms))
      atomic_store (&steady_worst_ms, t - t0);
    atomic_store (&steady_last_ms, t);
    atomic_fetch_add (&steady_rounds, 1);
    usleep (2000);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  return NULL;
}

/* The server's memory, in KiB: the largest seen in this case and in
 * the whole test. */
static atomic_bool sampling_stop, unchecked, no_rollup;
static atomic_long case_rss, case_locked, max_rss, max_locked;
static atomic_int sample_failures;

/* A "Field:   N kB" line's value from a /proc file, or -1. */
static long
proc_kb (const char *path, const char *field)
{
  char line[256];
  size_t n = strlen (field);
  long v = -1;
  FILE *fp = fopen (path, "r");

  if (fp == NULL)
    return -1;
  while (fgets (line, sizeof line, fp))
    if (strncmp (line, field, n) == 0) {
      v = strtol (line + n, NULL, 10);
      break;
    }
  fclose (fp);
  return v;
}

/* *m = max (*m, v), against the other samplers' updates. */
static void
raise_max (atomic_long *m, long v)
{
  long old = atomic_load (m);

  while (v > old && !atomic_compare_exchange_weak (m, &old, v))
    ;
}

/* The sampler's thread: VmRSS and Locked every 10 ms. */
static void *
sampler_thread (void *arg)
{
  char status[64], rollup[64];

  (void) arg;
  snprintf (status, sizeof status, "/proc/%d/status", (int) server);
  snprintf (rollup, sizeof rollup, "/proc/%d/smaps_rollup", (int) server);
  while (!atomic_load (&sampling_stop)) {
    long rss = proc_kb (status, "VmRSS:");
    long locked = atomic_load (&no_rollup) ? 0 : proc_kb (rollup, "Locked:");

    if (rss < 0 || locked < 0)
      atomic_fetch_add (&sample_failures, 1);
    raise_max (&case_rss, rss);
    raise_max (&case_locked, locked);
    raise_max (&max_rss, rss);
    raise_max (&max_locked, locked);
    usleep (10000);
  }
  return NULL;
}

/* A case starts: its memory maxima and the steady client's worst round
 * start afresh; returns the rounds so far. */
static uint64_t
case_begin (void)
{
  atomic_store (&case_rss, 0);
  atomic_store (&case_locked, 0);
  atomic_store (&steady_worst_ms, 0);
  return atomic_load (&steady_rounds);
}

/* A case ended: the steady client kept going through it (and goes on
 * now), the server answers a new client, the file has not grown, and
 * the memory stayed within the budget. */
static void
case_end (const char *what, uint64_t rounds)
{
  struct stat st;
  uint64_t t0 = now_ms (), last, waiting;

  while (atomic_load (&steady_rounds) < rounds + 2 &&
         now_ms () - t0 < STALL_MS)
    usleep (10000);
  CHECK (atomic_load (&steady_rounds) >= rounds + 2, "%s: the steady client "
         "made %" PRIu64 " rounds", what,
         (uint64_t) atomic_load (&steady_rounds) - rounds);
  CHECK (atomic_load (&steady_worst_ms) <= STALL_MS, "%s: the steady "
         "client waited %" PRIu64 " ms for one round", what,
         (uint64_t) atomic_load (&steady_worst_ms));
  last = atomic_load (&steady_last_ms);        /* before now_ms () */
  waiting = now_ms () - last;
  CHECK (waiting <= STALL_MS, "%s: the steady client has been waiting %"
         PRIu64 " ms for its round", what, waiting);
  CHECK (atomic_load (&steady_errors) == 0, "%s: %" PRIu64 " rounds of the "
         "steady client failed", what,
         (uint64_t) atomic_load (&steady_errors));
  CHECK (kill (server, 0) == 0 && handshake_ok (), "%s: the server does not "
         "answer a new client", what);
  CHECK (stat (file, &st) == 0 && st.st_size == (off_t) file_size,
         "%s: the backing file's size is %jd", what, (intmax_t) st.st_size);
  printf ("%-28s VmRSS max %5.1f MiB, locked max %5.1f MiB\n", what,
          atomic_load (&case_rss) / 1024.0,
          atomic_load (&case_locked) / 1024.0);
  if (!atomic_load (&unchecked))
    CHECK (atomic_load (&case_rss) <= BUDGET_KIB &&
           atomic_load (&case_locked) <= BUDGET_KIB, "%s: the server's "
           "memory went over %d MiB", what, BUDGET_KIB / 1024);
}

/* A connected socket that read the greeting and sent the client flags
 * (fixed newstyle, no zeroes); -1 on failure. */
static int
negotiating (void)
{
  unsigned char greet[18];
  uint32_t cflags = htobe32 (NBD_FLAG_C_FIXED_NEWSTYLE |
                            NBD_FLAG_C_NO_ZEROES);
  struct timeval tv = { 10, 0 };
  int s = connect_raw ();

  if (s < 0)
    return -1;
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (recv (s, greet, sizeof greet, MSG_WAITALL) != sizeof greet ||
      send (s, &cflags, 4, MSG_NOSIGNAL) != 4) {
    close (s);
    return -1;
  }
  return s;
}

/* Send an option header and len bytes of data. */
static bool
send_option (int s, uint32_t opt, const void *data, uint32_t len)
{
  struct { uint64_t magic; uint32_t opt, len; } __attribute__ ((packed))
    h = { htobe64 (NBD_MAGIC_OPT), htobe32 (opt), htobe32 (len) };

  return send (s, &h, sizeof h, MSG_NOSIGNAL) == sizeof h &&
    (len == 0 || send (s, data, len, MSG_NOSIGNAL) == (ssize_t) len);
}

/* Read option replies up to the one of this type; false if the
 * stream ends or is garbled first. */
static bool
reply_until (int s, uint32_t type)
{
  struct { uint64_t magic; uint32_t opt, type, len; }
    __attribute__ ((packed)) r;
  unsigned char data[1024];

  for (;;) {
    uint32_t len;

    if (recv (s, &r, sizeof r, MSG_WAITALL) != sizeof r)
      return false;
    len = be32toh (r.len);
    if (len > sizeof data ||
        (len && recv (s, data, len, MSG_WAITALL) != (ssize_t) len))
      return false;
    if (be32toh (r.type) == type)
      return true;
  }
}

/* Options sent as fast as the socket takes them, no reply ever read:
 * its socket, and when it started. */
static int haggler = -1;
static uint64_t haggler_ms;

/* Option haggling: one negotiation of 3000 NBD_OPT_LIST and 3000
 * NBD_OPT_INFO whose replies are read, then the export and a verified
 * read (served, in bounded memory); and one that sends NBD_OPT_LIST
 * without ever reading a reply, until the socket takes no more: its
 * thread waits to send, and the handshake deadline cuts it
 * (haggler_cut, at the end). */
static void
test_haggling (void)
{
  uint64_t rounds = case_begin (), t0 = now_ms ();
  unsigned char info[6] = { 0 };        /* name "", no requests */
  unsigned char flags[10];
  int s = negotiating ();
  bool ok = s >= 0;

  for (int i = 0; ok && i < 6000; i++)
    ok = (i % 2 ? send_option (s, NBD_OPT_INFO, info, sizeof info)
          : send_option (s, NBD_OPT_LIST, NULL, 0)) &&
      reply_until (s, NBD_REP_ACK);
  CHECK (ok, "an NBD_OPT_LIST/INFO loop was not served");
  ok = ok && send_option (s, NBD_OPT_EXPORT_NAME, NULL, 0) &&
    recv (s, flags, sizeof flags, MSG_WAITALL) == sizeof flags;
  if (ok)
    send_header (s, NBD_CMD_READ, 4096, 4096, NBD_MAGIC_REQUEST);
  CHECK (ok && read_reply (s, 4096) == 0 &&
         memcmp (reply_data, shadow + 4096, 4096) == 0,
         "no verified read after 6000 options");
  printf ("6000 options served in %.1f s\n", (now_ms () - t0) / 1000.0);
  if (s >= 0)
    close (s);

  haggler = negotiating ();
  haggler_ms = now_ms ();
  CHECK (haggler >= 0, "haggler: no negotiation");
  if (haggler >= 0) {
    struct { uint64_t magic; uint32_t opt, len; } __attribute__ ((packed))
      h = { htobe64 (NBD_MAGIC_OPT), htobe32 (NBD_OPT_LIST), 0 };
    uint64_t last = now_ms ();
    unsigned sent = 0;

    while (now_ms () - last < 300) {
      if (send (haggler, &h, sizeof h, MSG_NOSIGNAL | MSG_DONTWAIT) ==
          sizeof h) {
        sent++;
        last = now_ms ();
      }
      else
        usleep (1000);
    }
    printf ("haggler: %u options sent, no reply read\n", sent);
  }
  case_end ("option haggling", rounds);
}

/* At the end: the haggler was cut by the handshake deadline (its
 * log line), not much after it. */
static void
haggler_cut (void)
{
  uint64_t due = haggler_ms + HANDSHAKE_TIMEOUT * 1000;
  double after;

  if (haggler < 0)
    return;
  while (now_ms () < due)
    usleep (100000);
  CHECK (closed_by_server (haggler), "haggler: not closed");
  after = (now_ms () - haggler_ms) / 1000.0;
  CHECK (after <= HANDSHAKE_TIMEOUT + 15 &&
         log_has ("did not finish negotiating within 30 s"), "haggler: "
         "closed after %.0f s, not at the %d s handshake deadline", after,
         HANDSHAKE_TIMEOUT);
  close (haggler);
}

/* Truncated, garbled and oversized negotiations and requests: each
 * client is dropped (or told no and the negotiation goes on), the
 * others are served. */
static void
test_garbage (void)
{
  uint64_t rounds = case_begin ();
  unsigned char greet[18], junk[4096];
  uint32_t bad_flags = 0xffffffff;
  int s;

  memset (junk, 0x5a, sizeof junk);
  /* Gone at once, before reading the greeting. */
  s = connect_raw ();
  CHECK (s >= 0, "connect: %m");
  close (s);

  /* Two of the four client flag bytes, then gone. */
  s = connect_raw ();
  CHECK (recv (s, greet, sizeof greet, MSG_WAITALL) == sizeof greet &&
         send (s, &bad_flags, 2, MSG_NOSIGNAL) == 2, "truncated flags");
  close (s);

  /* Every client flag set. */
  s = connect_raw ();
  CHECK (recv (s, greet, sizeof greet, MSG_WAITALL) == sizeof greet &&
         send (s, &bad_flags, 4, MSG_NOSIGNAL) == 4, "client flags");
  CHECK (closed_by_server (s), "client flags 0xffffffff: not closed");
  close (s);

  /* An option with garbage magic. */
  s = negotiating ();
  CHECK (s >= 0 && send (s, junk, 16, MSG_NOSIGNAL) == 16 &&
         closed_by_server (s), "garbage option magic: not closed");
  close (s);

  /* Ten bytes of an option header, then gone. */
  s = negotiating ();
  CHECK (s >= 0 && send (s, junk, 10, MSG_NOSIGNAL) == 10, "truncated option");
  close (s);

  /* An option announcing 4 GiB of data, 4 KiB of it, then gone. */
  s = negotiating ();
  CHECK (s >= 0, "negotiation");
  if (s >= 0) {
    struct { uint64_t magic; uint32_t opt, len; } __attribute__ ((packed))
      h = { htobe64 (NBD_MAGIC_OPT), htobe32 (99), htobe32 (0xffffffff) };

    CHECK (send (s, &h, sizeof h, MSG_NOSIGNAL) == sizeof h &&
           send (s, junk, sizeof junk, MSG_NOSIGNAL) == sizeof junk,
           "oversized option");
    close (s);
  }

  /* NBD_OPT_GO whose name length runs past the option, NBD_OPT_INFO
   * whose request count does not match its length: refused, and the
   * negotiation goes on to NBD_OPT_ABORT. */
  s = negotiating ();
  if (s >= 0) {
    unsigned char go[10] = { 0xff, 0xff, 0xff, 0xf0 };
    unsigned char inf[6] = { 0, 0, 0, 0, 0x7f, 0xff };

    CHECK (send_option (s, NBD_OPT_GO, go, sizeof go) &&
           reply_until (s, NBD_REP_ERR_INVALID),
           "GO with a name past its end: no NBD_REP_ERR_INVALID");
    CHECK (send_option (s, NBD_OPT_INFO, inf, sizeof inf) &&
           reply_until (s, NBD_REP_ERR_INVALID),
           "INFO with 32767 requests in 0 bytes: no NBD_REP_ERR_INVALID");
    CHECK (send_option (s, NBD_OPT_ABORT, NULL, 0) &&
           reply_until (s, NBD_REP_ACK) &&
           closed_by_server (s), "NBD_OPT_ABORT after malformed options");
    close (s);
  }

  /* In transmission: ten bytes of a request header, then gone; a read
   * of 4 GiB - 1 (over the 32 MiB maximum: refused, EINVAL). */
  s = raw_client ();
  CHECK (s >= 0 && send (s, junk, 10, MSG_NOSIGNAL) == 10, "truncated header");
  if (s >= 0)
    close (s);
  s = raw_client ();
  if (s >= 0) {
    send_header (s, NBD_CMD_READ, 0, 0xffffffff, NBD_MAGIC_REQUEST);
    CHECK (read_reply (s, 0) == EINVAL, "a read of 4 GiB - 1: not EINVAL");
    close (s);
  }
  case_end ("garbage and truncation", rounds);
}

/* Requests past the end, and ranges whose end overflows 64 bits: each
 * refused (reads EINVAL, writes and zeroes ENOSPC, zero lengths too, as
 * nbdkit answers; a write's payload read and dropped), the connection
 * goes on, nothing is written. */
static void
test_past_end (void)
{
  uint64_t rounds = case_begin (), size = file_size;
  static const struct { uint16_t type; uint64_t off; uint32_t len; int err; }
    rq[] = {
    { NBD_CMD_READ, HFILE_SIZE, 1, EINVAL },
    { NBD_CMD_READ, UINT64_MAX - 4095, 4096, EINVAL },
    { NBD_CMD_READ, 4096, 0, EINVAL },
    { NBD_CMD_WRITE, HFILE_SIZE - 100, 4096, ENOSPC },
    { NBD_CMD_WRITE, UINT64_MAX - 10, 4096, ENOSPC },
    { NBD_CMD_WRITE, HFILE_SIZE, 0, ENOSPC },   /* as nbdkit: no range */
    { NBD_CMD_WRITE_ZEROES, HFILE_SIZE - 4096, 0xffffffff, ENOSPC },
    { NBD_CMD_WRITE_ZEROES, UINT64_MAX - 511, 512, ENOSPC },
  };
  int s = raw_client ();

  CHECK (s >= 0, "raw client");
  for (size_t i = 0; s >= 0 && i < sizeof rq / sizeof rq[0]; i++) {
    int err;

    send_header (s, rq[i].type, rq[i].off, rq[i].len, NBD_MAGIC_REQUEST);
    if (rq[i].type == NBD_CMD_WRITE && rq[i].len)
      CHECK (send (s, shadow, rq[i].len, MSG_NOSIGNAL) ==
             (ssize_t) rq[i].len, "payload");
    err = read_reply (s, 0);
    CHECK (err == rq[i].err, "command %u at %" PRIu64 "+%" PRIu32 ": error "
           "%d, want %d", rq[i].type, rq[i].off, rq[i].len, err, rq[i].err);
  }
  if (s >= 0) {
    send_header (s, NBD_CMD_READ, size - 4096, 4096, NBD_MAGIC_REQUEST);
    CHECK (read_reply (s, 4096) == 0 &&
           memcmp (reply_data, shadow + size - 4096, 4096) == 0,
           "the last block after refused requests");
    close (s);
  }
  case_end ("past the end", rounds);
}

/* Half-closed sockets: requests (more than the 32 slots), then
 * shutdown (SHUT_WR): every reply still arrives, then the server
 * closes.  Reads of one block (the replies may come in any order), and
 * writes that land. */
static void
test_half_closed (void)
{
  enum { NREAD = 40, NWRITE = 8, LEN = 4096 };
  uint64_t rounds = case_begin (), seed = 21;
  static unsigned char wb[NWRITE][LEN];
  struct nbd_handle *h;
  int s = raw_client (), bad = 0;

  for (int i = 0; s >= 0 && i < NREAD; i++)
    send_header (s, NBD_CMD_READ, 8192, LEN, NBD_MAGIC_REQUEST);
  CHECK (s >= 0 && shutdown (s, SHUT_WR) == 0, "shutdown: %m");
  for (int i = 0; s >= 0 && i < NREAD; i++)
    bad += read_reply (s, LEN) != 0 ||
      memcmp (reply_data, shadow + 8192, LEN) != 0;
  CHECK (s >= 0 && bad == 0, "half-closed: %d of %d reads not answered "
         "with their data", bad, NREAD);
  CHECK (s >= 0 && closed_by_server (s), "half-closed: not closed after "
         "the replies");
  if (s >= 0)
    close (s);

  s = raw_client ();
  bad = 0;
  for (int i = 0; s >= 0 && i < NWRITE; i++) {
    fill (wb[i], LEN, &seed);
    send_header (s, NBD_CMD_WRITE, HALF_OFF + (uint64_t) i * LEN, LEN,
                 NBD_MAGIC_REQUEST);
    CHECK (send (s, wb[i], LEN, MSG_NOSIGNAL) == LEN, "payload");
  }
  CHECK (s >= 0 && shutdown (s, SHUT_WR) == 0, "shutdown: %m");
  for (int i = 0; s >= 0 && i < NWRITE; i++)
    bad += read_reply (s, 0) != 0;
  CHECK (s >= 0 && bad == 0, "half-closed: %d of %d writes not answered",
         bad, NWRITE);
  if (s >= 0)
    close (s);
  for (int i = 0; i < NWRITE; i++)
    memcpy (shadow + HALF_OFF + (uint64_t) i * LEN, wb[i], LEN);
  h = connect_h ();
  check_range (h, HALF_OFF - 4096, NWRITE * LEN + 8192, "half-closed writes");
  nbd_close (h);
  case_end ("half-closed sockets", rounds);
}

/* A client that never reads its replies while sending reads: first one
 * of the 32 MiB maximum (the connection's large buffer), then 128 KiB
 * ones until the socket takes no more.  The server's memory stays
 * bounded (slots, the large buffer, the socket buffers), the others are
 * served; once the client is gone, the server lets the memory go. */
static void
test_no_reader (void)
{
  uint64_t rounds = case_begin (), last;
  char rollup[64];
  long peak, locked = -1;
  unsigned sent = 0;
  int s = raw_client ();

  CHECK (s >= 0, "raw client");
  if (s < 0)
    return;
  send_header (s, NBD_CMD_READ, 0, 32u << 20, NBD_MAGIC_REQUEST);
  last = now_ms ();
  while (now_ms () - last < 500) {
    struct nbd_request rq = {
      htobe32 (NBD_MAGIC_REQUEST), 0, htobe16 (NBD_CMD_READ), 7,
      htobe64 ((uint64_t) (sent % 64) << 17), htobe32 (128 * 1024)
    };

    if (send (s, &rq, sizeof rq, MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof rq) {
      sent++;
      last = now_ms ();
    }
    else
      usleep (1000);
  }
  usleep (500000);
  printf ("no reader: %u reads sent before the socket took no more\n",
          sent + 1);
  case_end ("a client never reading", rounds);
  peak = atomic_load (&case_locked);
  close (s);
  /* Its send fails, the connection ends, its buffers are unmapped. */
  snprintf (rollup, sizeof rollup, "/proc/%d/smaps_rollup", (int) server);
  for (int i = 0; i < 300 && !atomic_load (&unchecked); i++) {
    locked = proc_kb (rollup, "Locked:");
    if (locked >= 0 && locked < peak - 16384)
      break;
    usleep (10000);
  }
  if (!atomic_load (&unchecked))
    CHECK (locked >= 0 && locked < peak - 16384, "the client that never read "
           "is gone, and the server still has %ld KiB locked (%ld at the "
           "most)", locked, peak);
}

/* The two clients test_stalled_clients leaves connected. */
static int stalled = -1, unread = -1;

/* A write whose payload never arrives, and 64 reads of 128 KiB whose
 * replies are never read (more than the socket holds): both clients
 * stay connected until the end (stop_with_stalled_clients), the others
 * are served. */
static void
test_stalled_clients (void)
{
  uint64_t rounds = case_begin ();

  stalled = raw_client ();
  CHECK (stalled >= 0, "raw client");
  if (stalled >= 0) {
    send_header (stalled, NBD_CMD_WRITE, 0, 65536, NBD_MAGIC_REQUEST);
    CHECK (send (stalled, shadow, 1000, MSG_NOSIGNAL) == 1000, "send");
  }
  unread = raw_client ();
  CHECK (unread >= 0, "raw client");
  for (int i = 0; unread >= 0 && i < 64; i++)
    send_header (unread, NBD_CMD_READ, (uint64_t) i << 17, 128 * 1024,
                 NBD_MAGIC_REQUEST);
  usleep (500000);
  case_end ("stalled writer and reader", rounds);
}

/* More connections than the server's limit: those over it are closed at
 * once with a log line, those under it get their greeting, and the
 * others keep being served. */
static void
test_conn_limit (void)
{
  enum { N = MAX_CONNS + 6 };
  uint64_t rounds = case_begin ();
  int c[N], admitted = 0, refused = 0;

  for (int i = 0; i < N; i++) {
    struct timeval tv = { 5, 0 };
    unsigned char greet[18];

    c[i] = connect_raw ();
    if (c[i] < 0)
      continue;
    setsockopt (c[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (recv (c[i], greet, sizeof greet, MSG_WAITALL) == sizeof greet)
      admitted++;
    else
      refused++;
  }
  /* The steady client, the haggler and the two stalled clients hold
   * four. */
  CHECK (admitted + refused == N && refused >= N - (MAX_CONNS - 4) &&
         admitted >= MAX_CONNS / 2, "%d connections: %d admitted, %d "
         "refused (want at most %d admitted)", N, admitted, refused,
         MAX_CONNS - 4);
  CHECK (log_has ("native: 64 connections already: refusing one more"),
         "no log line for a refused connection");
  usleep (300000);
  for (int i = 0; i < N; i++)
    if (c[i] >= 0)
      close (c[i]);
  /* Their threads end when they see the close. */
  for (int i = 0; i < 200 && !handshake_ok (); i++)
    usleep (10000);
  case_end ("65+ connections", rounds);
}

/* The server's open file descriptors. */
static int
server_fds (void)
{
  char path[64];
  struct dirent *d;
  int n = 0;
  DIR *dp;

  snprintf (path, sizeof path, "/proc/%d/fd", (int) server);
  dp = opendir (path);
  if (dp == NULL)
    return -1;
  while ((d = readdir (dp)) != NULL)
    n += d->d_name[0] != '.';
  closedir (dp);
  return n;
}

/* 1000 connect/disconnect cycles: gone at once, gone after the
 * greeting, gone after NBD_CMD_DISC (each time a ring and its buffers
 * set up and torn down).  No descriptor or memory is kept. */
static void
test_cycles (void)
{
  uint64_t rounds = case_begin (), t0 = now_ms ();
  int fds0 = server_fds (), fds = -1;
  char rollup[64];
  unsigned char greet[18];
  long locked0;

  snprintf (rollup, sizeof rollup, "/proc/%d/smaps_rollup", (int) server);
  locked0 = proc_kb (rollup, "Locked:");
  for (int i = 0; i < 1000; i++) {
    int s = i % 3 == 2 ? raw_client () : connect_raw ();

    CHECK (s >= 0, "cycle %d: connect", i);
    if (s < 0)
      break;
    if (i % 3 == 1 && recv (s, greet, sizeof greet, MSG_WAITALL) !=
        sizeof greet)
      CHECK (0, "cycle %d: no greeting", i);
    if (i % 3 == 2)
      send_header (s, NBD_CMD_DISC, 0, 0, NBD_MAGIC_REQUEST);
    close (s);
  }
  printf ("1000 cycles in %.1f s\n", (now_ms () - t0) / 1000.0);
  /* The threads close their descriptors as they end (and are joined
   * at the next accept: this one's).  No new connection while counting,
   * or its own descriptors would be counted. */
  handshake_ok ();
  for (int i = 0; i < 300; i++) {
    fds = server_fds ();
    if (fds <= fds0)
      break;
    usleep (10000);
  }
  CHECK (fds0 > 0 && fds <= fds0, "after 1000 cycles the server holds %d "
         "file descriptors, %d before", fds, fds0);
  if (!atomic_load (&unchecked)) {
    long locked = proc_kb (rollup, "Locked:");

    CHECK (locked <= locked0 + 4096, "after 1000 cycles %ld KiB locked, "
           "%ld KiB before", locked, locked0);
  }
  case_end ("1000 connect/disconnect", rounds);
}

/* The stop with the two stalled clients still connected: both
 * cut at the stop deadline, logged, exit 0. */
static void
stop_with_stalled_clients (void)
{
  uint64_t t0 = now_ms ();
  int st;

  kill (server, SIGTERM);
  st = wait_exit (server, (STOP_DEADLINE + 20) * 1000);
  CHECK (st == 0, "exit status %d at the stop (-1: it did not exit)", st);
  CHECK ((now_ms () - t0) / 1000 <= STOP_DEADLINE + 5, "the stop took %"
         PRIu64 " s", (now_ms () - t0) / 1000);
  CHECK (log_has ("stalled in the middle of a write"),
         "the stalled writer's cut is not logged");
  CHECK (log_has ("it is not reading its replies"),
         "the cut of the client that does not read is not logged");
  if (stalled >= 0)
    close (stalled);
  if (unread >= 0)
    close (unread);
}

int
main (void)
{
  pthread_t steady, sampler;
  const char *preload = getenv ("NBDSWAP_SERVER_PRELOAD");
  char rollup[64];

  harness_init ("hostile-test", HFILE_SIZE);
  start_server ();
  /* ASan's shadow memory and quarantine count in VmRSS, and it makes
   * mlockall a no-op: the budget cannot be checked there. */
  snprintf (rollup, sizeof rollup, "/proc/%d/smaps_rollup", (int) server);
  atomic_store (&no_rollup, access (rollup, R_OK) != 0);
  if (preload && *preload) {
    atomic_store (&unchecked, true);
    printf ("SKIP part: the memory budget under the sanitizers\n");
  }
  else if (atomic_load (&no_rollup)) {
    atomic_store (&unchecked, true);
    printf ("SKIP part: the memory budget: no %s (Linux 4.14 has it)\n",
            rollup);
  }
  pthread_create (&sampler, NULL, sampler_thread, NULL);
  pthread_create (&steady, NULL, steady_thread, NULL);
  test_haggling ();
  test_garbage ();
  test_past_end ();
  test_half_closed ();
  test_no_reader ();
  test_stalled_clients ();
  test_conn_limit ();
  test_cycles ();
  haggler_cut ();
  atomic_store (&steady_stop, true);
  pthread_join (steady, NULL);
  atomic_store (&sampling_stop, true);
  pthread_join (sampler, NULL);
  stop_with_stalled_clients ();
  CHECK (atomic_load (&sample_failures) == 0, "%d samples of the server's "
         "memory could not be read", atomic_load (&sample_failures));
  printf ("the whole test: VmRSS max %.1f MiB, locked max %.1f MiB\n",
          atomic_load (&max_rss) / 1024.0, atomic_load (&max_locked) / 1024.0);
  check_file ();
  return harness_finish ("test-hostile");
}
