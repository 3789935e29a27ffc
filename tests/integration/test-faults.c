/* Integration test: transient storage errors, injected for real into the
 * test-only plugin build (include/fault.h).  Errors that clear within
 * retry-timeout (EIO included, unless retry-eio=false) are invisible to
 * the client and lose nothing; errors that outlast it give the client
 * EIO with a clear log line, the server keeps serving, and writes work
 * again once the storage recovers.  Errors that cannot clear (ESTALE),
 * and EIO under retry-eio=false, are reported at once.  Every write the
 * client was told succeeded is in the file afterwards, and a retried
 * operation counts once.
 *
 * The same test runs against both servers: built with FAULTY_NATIVE
 * (test-faults-native) it starts the faulty nbdswap's native server
 * through the harness instead of the faulty plugin.  Both get their
 * faults from the one request engine (lib/request.c).  The native server
 * has only io_uring: there, engine=pread is asked for as io_uring. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SIZE (UINT64_C (4) << 20)
#define BLOCK 4096
#define NBLOCKS 256

static struct server s;
static char path[400], filearg[420];
static bool acked[NBLOCKS];
static size_t log_start;        /* where the current server's log begins */

static void
pattern (unsigned char *buf, int block, int round)
{
  for (int i = 0; i < BLOCK; i++)
    buf[i] = (unsigned char) (block * 131 + round * 17 + i);
}

/* Start the faulty plugin with fault spec and extra params. */
static void
start (const char *spec, const char *p1, const char *p2)
{
  const char *params[] = { filearg, p1, p2, NULL };
  char *log = server_log (&s);

  log_start = strlen (log);     /* the log file is shared by all servers */
  free (log);
  if (harness_native () && p1 && strcmp (p1, "engine=pread") == 0)
    params[1] = "engine=io_uring";
  setenv ("NBDSWAP_FAULT", spec, 1);
  setenv ("NBDSWAP_PLUGIN", FAULTY_PLUGIN, 1);
  CHECK (server_start (&s, NULL, params) == 0, "start with %s", spec);
  unsetenv ("NBDSWAP_FAULT");
  unsetenv ("NBDSWAP_PLUGIN");
}

/* The current server's log (to free). */
static char *
this_log (void)
{
  char *log = server_log (&s);
  size_t n = strlen (log);

  memmove (log, log + (log_start < n ? log_start : n),
           n - (log_start < n ? log_start : n) + 1);
  return log;
}

static bool
log_has (const char *text)
{
  char *log = this_log ();
  bool r = strstr (log, text) != NULL;

  free (log);
  return r;
}

/* How many lines of the server's log contain text. */
static int
log_count (const char *text)
{
  char *log = this_log ();
  int n = 0;

  for (const char *p = log; (p = strstr (p, text)) != NULL; p++)
    n++;
  free (log);
  return n;
}

/* The value of counter name (e.g. "retries=") in the server's final
 * stats line, or -1 if there is none. */
static long long
final_stat (const char *name)
{
  char *log = this_log (), *line = strstr (log, "stats: reads=");
  char *field = line != NULL ? strstr (line, name) : NULL;
  long long v = field != NULL ? strtoll (field + strlen (name), NULL, 10) : -1;

  free (log);
  return v;
}

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The file must hold round's pattern in every acknowledged block. */
static void
check_file (int round)
{
  unsigned char want[BLOCK], got[BLOCK];
  int fd = open (path, O_RDONLY);

  for (int b = 0; b < NBLOCKS; b++) {
    if (!acked[b])
      continue;
    pattern (want, b, round);
    CHECK (pread (fd, got, BLOCK, (off_t) b * BLOCK) == BLOCK, "read file");
    CHECK (memcmp (want, got, BLOCK) == 0,
           "round %d: acknowledged block %d lost", round, b);
  }
  close (fd);
}

/* Short window: every write succeeds, the retries are logged. */
static void
test_short_window (const char *spec, const char *engine, int round)
{
  struct nbd_handle *h;
  unsigned char buf[BLOCK];

  start (spec, engine, "retry-timeout=30");
  h = server_connect (&s, true);
  for (int b = 0; b < NBLOCKS; b++) {
    pattern (buf, b, round);
    acked[b] = nbd_pwrite (h, buf, BLOCK, (uint64_t) b * BLOCK, 0) == 0;
    CHECK (acked[b], "%s: write %d failed during a short window: %s",
           spec, b, nbd_get_error ());
  }
  for (int b = 0; b < NBLOCKS; b++) {
    unsigned char want[BLOCK];
    pattern (want, b, round);
    CHECK (nbd_pread (h, buf, BLOCK, (uint64_t) b * BLOCK, 0) == 0,
           "%s: read %d: %s", spec, b, nbd_get_error ());
    CHECK (memcmp (buf, want, BLOCK) == 0, "%s: block %d", spec, b);
  }
  nbd_close (h);
  CHECK (log_has ("transient error, retrying"), "%s: no retry logged", spec);
  CHECK (server_stop (&s) == 0, "server exit");
  CHECK (final_stat ("retries=") > 0 && final_stat ("errors=") == 0,
         "%s: want retries > 0 and errors = 0 in the final stats, got "
         "%lld and %lld", spec, final_stat ("retries="),
         final_stat ("errors="));
  check_file (round);
}

/* A window of injected EIO of 2.5 s, with a request from each of 8
 * threads failing every ~1 ms at first: the log still has at most one
 * retry line per second (so 3, or 4 across second boundaries). */
static void
test_eio_rate_limited (void)
{
  int n;

  test_short_window ("write:EIO:after=20:for=2500", "engine=io_uring", 8);
  n = log_count ("Input/output error: transient error, retrying");
  CHECK (n >= 1 && n <= 4, "%d EIO retry lines for a 2.5 s window: want "
         "1 to 4 (one per second)", n);
}

/* Errors that must reach the client at once although retry-timeout=30:
 * the first failing write fails in well under a second with want_errno
 * (0: any), nothing is retried, and the next writes after the window
 * succeed. */
static void
test_reported_at_once (const char *spec, const char *extra, int want_errno)
{
  struct nbd_handle *h;
  unsigned char buf[BLOCK];
  double t0, t;
  int b;

  start (spec, extra, "retry-timeout=30");
  h = server_connect (&s, true);
  for (b = 0; b < NBLOCKS; b++) {
    pattern (buf, b, 10);
    t0 = now_s ();
    if (nbd_pwrite (h, buf, BLOCK, (uint64_t) b * BLOCK, 0) == -1)
      break;
  }
  t = now_s () - t0;
  CHECK (b < NBLOCKS, "%s %s: no write failed", spec, extra);
  CHECK (t < 1.0, "%s %s: the failing write took %.1f s: it was retried",
         spec, extra, t);
  if (want_errno != 0)
    CHECK (nbd_get_errno () == want_errno, "%s %s: errno %d, want %d",
           spec, extra, nbd_get_errno (), want_errno);
  usleep (1500000);             /* past the 1 s window */
  CHECK (nbd_pwrite (h, buf, BLOCK, (uint64_t) b * BLOCK, 0) == 0,
         "%s %s: writes did not recover: %s", spec, extra, nbd_get_error ());
  nbd_close (h);
  CHECK (!log_has ("transient error, retrying"), "%s %s: retried", spec,
         extra);
  CHECK (server_stop (&s) == 0, "server exit");
  CHECK (final_stat ("retries=") == 0 && final_stat ("errors=") >= 1,
         "%s %s: want retries = 0 and errors >= 1, got %lld and %lld",
         spec, extra, final_stat ("retries="), final_stat ("errors="));
}

/* Every transfer comes back short (half, in whole pages) for the whole
 * run: large requests are resumed until complete, and the data is
 * exact. */
static void
test_short_transfers (const char *engine, int round)
{
  struct nbd_handle *h;
  static unsigned char big[1 << 20], back[1 << 20];

  start ("any:SHORT:after=0:for=600000", engine, "recheck=0");
  h = server_connect (&s, true);
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char) (i * 13 + (size_t) round);
  CHECK (nbd_pwrite (h, big, sizeof big, 1 << 20, 0) == 0, "%s: 1 MiB "
         "write with short transfers: %s", engine, nbd_get_error ());
  CHECK (nbd_pread (h, back, sizeof back, 1 << 20, 0) == 0, "%s: read: %s",
         engine, nbd_get_error ());
  CHECK (memcmp (big, back, sizeof big) == 0, "%s: data after short "
         "transfers differs", engine);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  {
    int fd = open (path, O_RDONLY);
    CHECK (pread (fd, back, sizeof back, 1 << 20) == (ssize_t) sizeof back,
           "read file");
    close (fd);
    CHECK (memcmp (big, back, sizeof big) == 0, "%s: file differs", engine);
  }
}

/* SIGTERM while a write is being retried: nbdkit stops accepting, the
 * write completes and is acknowledged, the server exits 0 with its
 * final stats, and the lock is released (a new server starts). */
static void
test_shutdown_finishes_io (void)
{
  const char *params[] = { filearg, NULL };
  struct nbd_handle *h;
  unsigned char buf[BLOCK], back[BLOCK];
  int64_t cookie;
  int r = 0, fd;

  start ("write:EAGAIN:after=0:for=1500", "engine=io_uring", NULL);
  h = server_connect (&s, true);
  pattern (buf, 0, 9);
  cookie = nbd_aio_pwrite (h, buf, BLOCK, 0, NBD_NULL_COMPLETION, 0);
  CHECK (cookie > 0, "aio_pwrite: %s", nbd_get_error ());
  usleep (300000);
  kill (s.pid, SIGTERM);
  while ((r = nbd_aio_command_completed (h, cookie)) == 0)
    if (nbd_poll (h, -1) == -1)
      break;
  CHECK (r == 1, "the in-flight write was not acknowledged: %s",
         nbd_get_error ());
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit status after SIGTERM");
  CHECK (log_has ("stats: reads=0 writes=1"), "no final stats line");
  fd = open (path, O_RDONLY);
  CHECK (pread (fd, back, BLOCK, 0) == BLOCK && memcmp (buf, back, BLOCK) == 0,
         "the acknowledged write is not in the file");
  close (fd);
  CHECK (server_start (&s, NULL, params) == 0, "lock not released");
  CHECK (server_stop (&s) == 0, "server exit");
}

/* Long window: EIO with a clear log, the server survives, and writes
 * succeed again after the window. */
static void
test_long_window (const char *spec, const char *engine, int round)
{
  struct nbd_handle *h;
  unsigned char buf[BLOCK];
  int failed = 0, ok_after = 0;

  start (spec, engine, "retry-timeout=1");
  h = server_connect (&s, true);
  for (int b = 0; b < NBLOCKS; b++) {
    pattern (buf, b, round);
    acked[b] = nbd_pwrite (h, buf, BLOCK, (uint64_t) b * BLOCK, 0) == 0;
    if (!acked[b]) {
      CHECK (nbd_get_errno () == EIO, "errno %d, not EIO", nbd_get_errno ());
      failed++;
    }
    else if (failed)
      ok_after++;
  }
  CHECK (failed > 0, "%s: no write failed in a window longer than the "
         "budget", spec);
  CHECK (ok_after > 0, "%s: writes did not recover after the window", spec);
  CHECK (log_has ("(retry-timeout): reporting EIO"), "%s: no EIO line", spec);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  check_file (round);
}

/* Exactly count operations fail with a transient error: the request
 * succeeds, and the final counters show count retries (each counted
 * once), no error, and the one request. */
static void
test_exact_retries (const char *spec, bool write, int count)
{
  struct nbd_handle *h;
  unsigned char buf[BLOCK];
  int r;

  start (spec, "engine=io_uring", NULL);
  h = server_connect (&s, true);
  pattern (buf, 0, 20);
  r = write ? nbd_pwrite (h, buf, BLOCK, 0, 0)
    : nbd_pread (h, buf, BLOCK, 0, 0);
  CHECK (r == 0, "%s: the request failed: %s", spec, nbd_get_error ());
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  CHECK (final_stat ("retries=") == count && final_stat ("errors=") == 0,
         "%s: want retries = %d and errors = 0, got %lld and %lld", spec,
         count, final_stat ("retries="), final_stat ("errors="));
  CHECK (final_stat (write ? "writes=" : "reads=") == 1,
         "%s: want 1 request counted, got %lld", spec,
         final_stat (write ? "writes=" : "reads="));
}

int
main (void)
{
#ifdef FAULTY_NATIVE
  setenv ("NBDSWAP_NATIVE", FAULTY_NATIVE, 1);
#endif
  harness_init (&s, "faults");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  make_file (path, SIZE, 7);

  test_exact_retries ("write:EAGAIN:after=0:count=3", true, 3);
  test_exact_retries ("read:ETIMEDOUT:after=0:count=2", false, 2);
  test_short_window ("write:EAGAIN:after=20:for=1500", "engine=io_uring", 1);
  test_short_window ("write:ETIMEDOUT:after=20:for=1500", "engine=pread", 2);
  test_short_window ("any:ENOMEM:after=100:for=800", "engine=io_uring", 3);
  /* A failing device (EIO) or path (ENOLINK) is waited out too. */
  test_short_window ("any:EIO:after=100:for=1500", "engine=pread", 11);
  test_short_window ("any:ENOLINK:after=20:for=1000", "engine=io_uring", 12);
  test_eio_rate_limited ();
  test_reported_at_once ("write:EIO:after=10:for=1000", "retry-eio=false",
                         EIO);
  test_reported_at_once ("write:ESTALE:after=10:for=1000", "engine=io_uring",
                         0);
  test_short_transfers ("engine=io_uring", 6);
  test_short_transfers ("engine=pread", 7);
  test_shutdown_finishes_io ();
  /* 256 writes at 1 s each while the window is open: a 4 s window fails
   * about four of them, then the rest succeed. */
  test_long_window ("write:ENOBUFS:after=10:for=4000", "engine=io_uring", 4);
  test_long_window ("write:EAGAIN:after=10:for=4000", "engine=pread", 5);
  test_long_window ("write:EIO:after=10:for=4000", "engine=io_uring", 13);
  harness_cleanup (&s);
  return harness_exit (harness_native () ? "test-faults-native"
                       : "test-faults");
}
