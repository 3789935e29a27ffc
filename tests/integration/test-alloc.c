/* Integration test: nothing is allocated per request.  The server runs
 * with an allocation counter preloaded (malloc-count.so); after a warm-up
 * that lets every nbdkit thread take its worker and grow its request
 * buffer, 100,000 requests (4 KiB reads, writes and unaligned writes,
 * flushes, zeroes; 16 in flight) must not allocate anything in the whole
 * serving process.  (The server runs without -v: nbdkit's per-request
 * debug messages allocate.) */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SIZE (UINT64_C (64) << 20)
#define QD 16

static struct server s;
static char countfile[400];

/* Ask the server for its counts; -1 on failure. */
static int
counts (unsigned long *allocs, unsigned long *frees)
{
  unlink (countfile);
  kill (s.pid, SIGUSR2);
  for (int i = 0; i < 500; i++) {
    FILE *fp = fopen (countfile, "re");
    if (fp) {
      int n = fscanf (fp, "%lu %lu", allocs, frees);
      fclose (fp);
      if (n == 2)
        return 0;
    }
    usleep (10000);
  }
  return -1;
}

/* n requests, QD in flight, a mix of the kinds a client sends. */
static void
run_requests (struct nbd_handle *h, unsigned n, uint64_t *st)
{
  static char buf[QD][4096];
  unsigned issued = 0;

  while (issued < n) {
    while (nbd_aio_in_flight (h) < QD && issued < n) {
      uint64_t off = (rnd (st) % (SIZE / 4096)) * 4096;
      char *b = buf[issued % QD];
      int64_t c;

      switch (issued % 8) {
      case 0: case 1: case 2:
        c = nbd_aio_pread (h, b, 4096, off, NBD_NULL_COMPLETION, 0);
        break;
      case 3: case 4:
        c = nbd_aio_pwrite (h, b, 4096, off, NBD_NULL_COMPLETION, 0);
        break;
      case 5:
        c = nbd_aio_pwrite (h, b, 1000, off + 100, NBD_NULL_COMPLETION, 0);
        break;
      case 6:
        c = nbd_aio_zero (h, 8192, off & ~UINT64_C (8191),
                          NBD_NULL_COMPLETION, 0);
        break;
      default:
        c = issued % 64 == 7
          ? nbd_aio_flush (h, NBD_NULL_COMPLETION, 0)
          : nbd_aio_pwrite (h, b, 4096, off, NBD_NULL_COMPLETION,
                            LIBNBD_CMD_FLAG_FUA);
      }
      if (c == -1) {
        CHECK (0, "aio: %s", nbd_get_error ());
        return;
      }
      issued++;
    }
    if (nbd_poll (h, -1) == -1)
      break;
    /* Retire finished commands so libnbd keeps no growing list. */
    while (nbd_aio_peek_command_completed (h) > 0) {
      int64_t c = nbd_aio_peek_command_completed (h);
      CHECK (nbd_aio_command_completed (h, c) == 1, "command failed: %s",
             nbd_get_error ());
    }
  }
  while (nbd_aio_in_flight (h) > 0)
    nbd_poll (h, -1);
  while (nbd_aio_peek_command_completed (h) > 0)
    nbd_aio_command_completed (h, nbd_aio_peek_command_completed (h));
}

int
main (void)
{
  char path[400], filearg[420];
  unsigned long c0, a0, f0, a1, f1;
  struct nbd_handle *h;
  uint64_t st = 42;
  const char *pre = getenv ("NBDSWAP_SERVER_PRELOAD");

  if (pre && *pre) {
    printf ("SKIP: the sanitizer runtime replaces malloc here\n");
    return 77;
  }
  harness_init (&s, "alloc");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  snprintf (countfile, sizeof countfile, "%s/%s/counts", getcwd (NULL, 0),
            s.dir);
  make_file (path, SIZE, 9);
  setenv ("NBDSWAP_SERVER_PRELOAD", MALLOC_COUNT, 1);
  setenv ("MALLOC_COUNT_FILE", countfile, 1);
  setenv ("NBDSWAP_SERVER_QUIET", "1", 1);
  const char *params[] = { filearg, "recheck=0", NULL };
  CHECK (server_start (&s, NULL, params) == 0, "start");
  unsetenv ("NBDSWAP_SERVER_PRELOAD");
  unsetenv ("NBDSWAP_SERVER_QUIET");

  h = server_connect (&s, false);
  run_requests (h, 20000, &st);             /* warm-up */
  /* The measurement itself costs: the signal wakes nbdkit's main thread,
   * which allocates once per wake-up (its poll set).  Calibrate that with
   * two readings and no requests in between. */
  CHECK (counts (&c0, &f0) == 0, "no counts from the server");
  usleep (100000);
  CHECK (counts (&a0, &f0) == 0, "no counts from the server");
  run_requests (h, 100000, &st);
  CHECK (counts (&a1, &f1) == 0, "no counts from the server");
  printf ("allocations during 100000 requests: %lu, of which the "
          "measurement's own: %lu (frees %lu)\n", a1 - a0, a0 - c0,
          f1 - f0);
  CHECK (a1 - a0 == a0 - c0, "%lu allocations in 100000 requests",
         (a1 - a0) - (a0 - c0));
  CHECK (a0 - c0 <= 2, "the measurement alone allocated %lu times",
         a0 - c0);
  CHECK (a0 > 0, "the counter saw nothing at all: not preloaded?");
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  harness_cleanup (&s);
  return harness_exit ("test-alloc");
}
