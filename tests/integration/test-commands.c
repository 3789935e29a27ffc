/* Integration test: what the export advertises, and each NBD command's
 * edge cases: trim refused and zero never deallocating (st_blocks stays),
 * out-of-range and zero-length requests, read-only connections, extents,
 * one owner per file, and start-up errors that name the problem. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocksize.h"
#include "harness.h"

#define SIZE (UINT64_C (8) << 20)

static struct server s;
static char path[400], filearg[420];

static long long
blocks_of (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 ? (long long) st.st_blocks : -1;
}

static int
count_extent (void *data, const char *metacontext, uint64_t offset,
              uint32_t *entries, size_t nr, int *error)
{
  int *seen = data;

  for (size_t i = 0; i + 1 < nr; i += 2) {
    CHECK (entries[i + 1] == 0, "extent flags %u (want data)", entries[i + 1]);
    *seen += 1;
  }
  return 0;
}

static void
test_advertised (struct nbd_handle *h)
{
  int64_t min = nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM);
  int seen = 0;

  CHECK (min >= 512 && min <= 4096 && (min & (min - 1)) == 0,
         "minimum block size %" PRIi64, min);
  CHECK (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED) == 4096,
         "preferred %" PRIi64, nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED));
  CHECK (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM) == BLOCKSIZE_MAX,
         "maximum %" PRIi64, nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM));
  CHECK (nbd_can_trim (h) == 0, "trim must not be offered");
  CHECK (nbd_can_multi_conn (h) == 1, "multi-conn");
  CHECK (nbd_can_fua (h) == 1, "fua");
  CHECK (nbd_can_flush (h) == 1, "flush");
  CHECK (nbd_can_zero (h) == 1, "zero");
  /* Offered only to be refused (swapfile_can_fast_zero says why). */
  CHECK (nbd_can_fast_zero (h) == 1, "fast zero is offered");
  CHECK (nbd_zero (h, 4096, 0, LIBNBD_CMD_FLAG_FAST_ZERO) == -1 &&
         nbd_get_errno () == ENOTSUP, "a fast zero: %s (want ENOTSUP)",
         nbd_get_error ());
  CHECK (nbd_is_read_only (h) == 0, "read-write");
  CHECK (nbd_block_status (h, SIZE, 0,
                           (nbd_extent_callback) { .callback = count_extent,
                                                   .user_data = &seen },
                           0) == 0, "block_status: %s", nbd_get_error ());
  CHECK (seen >= 1, "no extents reported");
}

/* Trim is refused and changes nothing; zero writes zeroes in place. */
static void
test_no_deallocation (struct nbd_handle *h)
{
  long long before = blocks_of (path);
  static unsigned char buf[65536];

  CHECK (nbd_trim (h, 1 << 20, 0, 0) == -1, "trim must fail");
  CHECK (nbd_get_errno () == EINVAL, "trim errno %d", nbd_get_errno ());
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "pread");
  CHECK (buf[0] != 0 || buf[1] != 0 || buf[2] != 0, "trim zeroed data");
  /* Without NBD_CMD_FLAG_NO_HOLE the server may trim: it must not. */
  CHECK (nbd_zero (h, 4 << 20, 1 << 20, 0) == 0,
         "zero: %s", nbd_get_error ());
  CHECK (nbd_zero (h, 70001, 12345, LIBNBD_CMD_FLAG_FUA) == 0,
         "unaligned zero: %s", nbd_get_error ());
  CHECK (nbd_flush (h, 0) == 0, "flush");
  CHECK (nbd_pread (h, buf, sizeof buf, 12345, 0) == 0, "pread");
  for (size_t i = 0; i < sizeof buf && i < 70001; i++)
    if (buf[i]) {
      CHECK (0, "byte %zu not zeroed", i);
      break;
    }
  CHECK (blocks_of (path) == before, "st_blocks changed: %lld -> %lld",
         before, blocks_of (path));
}

static void
test_bad_requests (struct nbd_handle *h)
{
  static unsigned char buf[4096];

  CHECK (nbd_pread (h, buf, 20, SIZE - 10, 0) == -1, "read past the end");
  CHECK (nbd_get_errno () == EINVAL, "read past end errno %d",
         nbd_get_errno ());
  CHECK (nbd_pwrite (h, buf, 4096, SIZE, 0) == -1, "write past the end");
  CHECK (nbd_get_errno () == ENOSPC, "write past end errno %d",
         nbd_get_errno ());
  CHECK (nbd_zero (h, 8192, SIZE - 4096, 0) == -1, "zero past the end");
  CHECK (nbd_get_errno () == ENOSPC, "zero past end errno %d",
         nbd_get_errno ());
  CHECK (nbd_pread (h, buf, 0, 0, 0) == -1, "zero-length read");
  CHECK (nbd_get_errno () == EINVAL, "zero-length errno %d",
         nbd_get_errno ());
  /* The last byte of the export works. */
  CHECK (nbd_pwrite (h, "z", 1, SIZE - 1, 0) == 0, "last byte: %s",
         nbd_get_error ());
  CHECK (nbd_pread (h, buf, 1, SIZE - 1, 0) == 0 && buf[0] == 'z',
         "last byte read back");
}

static void
test_read_only (void)
{
  static const char *const opts[] = { "-r", NULL };
  const char *params[] = { filearg, NULL };
  struct nbd_handle *h;
  static unsigned char buf[4096];

  CHECK (server_start (&s, opts, params) == 0, "read-only start");
  h = server_connect (&s, false);
  CHECK (nbd_is_read_only (h) == 1, "read-only flag");
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "read-only read");
  CHECK (nbd_pwrite (h, buf, sizeof buf, 0, 0) == -1, "read-only write");
  CHECK (nbd_get_errno () == EPERM, "read-only write errno %d",
         nbd_get_errno ());
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
}

/* A second server on the same file is refused, naming the first's PID. */
static void
test_one_owner (void)
{
  struct server s2;
  const char *params[] = { filearg, NULL };
  char want[64];
  char *log;

  CHECK (server_start (&s, NULL, params) == 0, "first server");
  harness_init (&s2, "owner");
  CHECK (server_start (&s2, NULL, params) == -1, "second server started");
  log = server_log (&s2);
  snprintf (want, sizeof want, "already served by another process (PID %d)",
            (int) s.pid);
  CHECK (strstr (log, want) != NULL, "second server's log lacks '%s':\n%s",
         want, log);
  free (log);
  harness_cleanup (&s2);
  CHECK (server_stop (&s) == 0, "server exit");
  /* Released on exit: a new server starts. */
  CHECK (server_start (&s, NULL, params) == 0, "server after release");
  CHECK (server_stop (&s) == 0, "server exit");
}

/* Start with params; expect failure and a log containing want. */
static void
expect_refusal (const char *const *params, const char *want)
{
  struct server b;
  char *log;

  harness_init (&b, "refuse");
  CHECK (server_start (&b, NULL, params) == -1, "started: %s", params[0]);
  log = server_log (&b);
  CHECK (strstr (log, want) != NULL, "log lacks '%s':\n%s", want, log);
  free (log);
  harness_cleanup (&b);
}

static void
test_startup_errors (void)
{
  char odd[400], oddarg[420], dirarg[420], emptyarg[420];
  int fd;

  snprintf (odd, sizeof odd, "%s/odd.img", s.dir);
  make_file (odd, 4096 * 3 + 512, 3);
  snprintf (oddarg, sizeof oddarg, "file=%s", odd);
  snprintf (dirarg, sizeof dirarg, "file=%s", s.dir);
  snprintf (emptyarg, sizeof emptyarg, "file=%s/empty.img", s.dir);
  fd = open (emptyarg + 5, O_CREAT | O_WRONLY, 0600);
  close (fd);

  expect_refusal ((const char *[]) { filearg, "colour=blue", NULL },
                  "colour=blue: unknown parameter");
  expect_refusal ((const char *[]) { filearg, "engine=aio", NULL },
                  "engine=aio: unknown engine");
  expect_refusal ((const char *[]) { filearg, "queue-depth=3", NULL },
                  "queue-depth=3: must be a power of two");
  expect_refusal ((const char *[]) { "direct=false", NULL },
                  "file=<FILENAME> is required");
  expect_refusal ((const char *[]) { "file=/nonexistent/swap.img", NULL },
                  "nbdswap create");
  expect_refusal ((const char *[]) { oddarg, NULL },
                  "not a whole number of 4 KiB pages");
  expect_refusal ((const char *[]) { emptyarg, NULL }, "size 0 is zero");
  expect_refusal ((const char *[]) { dirarg, "direct=false", NULL },
                  "neither a regular file nor a block device");
}

int
main (void)
{
  struct nbd_handle *h;

  harness_init (&s, "commands");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  make_file (path, SIZE, 4);
  const char *params[] = { filearg, NULL };
  if (server_start (&s, NULL, params) == -1) {
    fprintf (stderr, "server failed:\n%s\n", server_log (&s));
    return EXIT_FAILURE;
  }
  h = server_connect (&s, false);
  test_advertised (h);
  test_no_deallocation (h);
  test_bad_requests (h);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  test_read_only ();
  test_one_owner ();
  test_startup_errors ();
  harness_cleanup (&s);
  return harness_exit ("test-commands");
}
