/* Unit tests of the request engine (request.h), driven the way both
 * front ends drive it, against an in-memory file: the memory it hands to
 * the kernel, read-modify-write of unaligned writes (bounced and in
 * place), short transfers, retries counted once, errors, zeroes, a
 * write that waits for another's stripes, and the latency buckets each
 * request is counted in.
 *
 * A client buffer goes to the kernel as is only if it meets the servers'
 * memory alignment (dio_mem_align: at least a page, whatever smaller
 * alignment the file reports), else the request is copied through the
 * bounce buffer.  A buffer that is 512-aligned but not page-aligned must
 * be bounced: ext4 serializes such a direct write behind every direct
 * I/O in flight.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "dioalign.h"
#include "request.h"
#include "stats.h"
#include "../check-run.h"

#define FILE_SIZE (1 << 20)
#define BOUNCE (64 * 1024)
#define ALIGN 512

static unsigned char file[FILE_SIZE], model[FILE_SIZE];
static struct req_io seen[256];
static unsigned nseen;
static int fail_next[8];        /* results to return instead of the I/O */
static unsigned nfail;
static bool short_io;           /* move half of what is asked */

static struct req_target target;
static unsigned char *bounce, *scratch, *client;

/* Do one operation on the in-memory file (or fail it), and record it. */
static int
fake_io (const struct req_io *io)
{
  uint32_t n = io->len;

  ck_assert_uint_lt (nseen, 256);
  seen[nseen++] = *io;
  if (nfail > 0) {
    int r = fail_next[0];
    memmove (fail_next, fail_next + 1, sizeof fail_next - sizeof (int));
    nfail--;
    return r;
  }
  if (io->op == REQ_OP_SYNC)
    return 0;
  ck_assert (is_aligned (io->off, ALIGN) && is_aligned (io->len, ALIGN));
  ck_assert (io->off + io->len <= FILE_SIZE);
  if (short_io && n >= 2 * ALIGN)
    n = round_down (n / 2, ALIGN);
  if (io->op == REQ_OP_WRITE)
    memcpy (file + io->off, io->buf, n);
  else
    memcpy (io->buf, file + io->off, n);
  return (int) n;
}

/* A synchronous driver, as the plugin's threads are.  The request starts
 * as stale memory with only the caller's part set, as a native server's
 * reused slot does: the engine must set the rest itself. */
static int
run (enum req_cmd cmd, void *data, uint32_t count, uint64_t offset)
{
  struct req r;
  enum req_next n;

  memset (&r, 0xa5, sizeof r);
  r.cmd = cmd;
  r.offset = offset;
  r.count = count;
  r.fua = false;
  r.data = data;
  r.bounce = bounce;
  r.bounce_size = BOUNCE;
  r.scratch = scratch;
  r.in_place = false;
  r.may_block = true;
  n = req_start (&target, &r);

  while (n == REQ_IO)
    n = req_io_done (&target, &r, fake_io (&r.io));
  ck_assert_int_eq (n, REQ_DONE);
  return r.err;
}

static void
setup (void)
{
  /* A file that reports 512-byte alignment for both offset and memory,
   * as ext4 on a virtio disk does. */
  struct dio_align d = { ALIGN, ALIGN, "test" };
  struct retry_policy p = { 5, true };

  ck_assert_int_eq (req_target_init (&target, "test.img", FILE_SIZE,
                                     d.offset, dio_mem_align (&d), &p), 0);
  ck_assert_int_eq (posix_memalign ((void **) &bounce, 4096,
                                    BOUNCE + 4096), 0);
  scratch = bounce + BOUNCE;
  ck_assert_int_eq (posix_memalign ((void **) &client, 4096,
                                    256 * 1024), 0);
  for (unsigned i = 0; i < 256 * 1024; i++)
    client[i] = (unsigned char) (i * 7 + 1);
  for (unsigned i = 0; i < FILE_SIZE; i++)
    file[i] = model[i] = (unsigned char) (i * 13 + 5);
  nseen = nfail = 0;
  short_io = false;
}

static void
teardown (void)
{
  req_target_fini (&target);
  free (bounce);
  free (client);
}

START_TEST (test_mem_align_at_least_a_page)
{
  struct dio_align small = { 512, 512, "" }, big = { 4096, 8192, "" };

  ck_assert_uint_eq (dio_mem_align (&small), 4096);
  ck_assert_uint_eq (dio_mem_align (&big), 8192);
}
END_TEST

/* A page-aligned 4 KiB write goes as is; one from a buffer 512 bytes
 * into a page is bounced, and the kernel sees only page-aligned memory.
 * Either way the file gets the client's bytes. */
START_TEST (test_write_memory)
{
  ck_assert_int_eq (run (REQ_WRITE, client, 4096, 8192), 0);
  ck_assert_uint_eq (nseen, 1);
  ck_assert_ptr_eq (seen[0].buf, client);

  nseen = 0;
  ck_assert_int_eq (run (REQ_WRITE, client + 512, 4096, 16384), 0);
  ck_assert_uint_eq (nseen, 1);
  ck_assert_ptr_ne (seen[0].buf, client + 512);
  ck_assert (ptr_is_aligned (seen[0].buf, 4096));
  ck_assert_uint_eq (seen[0].off, 16384);
  ck_assert_uint_eq (seen[0].len, 4096);

  ck_assert_int_eq (memcmp (file + 8192, client, 4096), 0);
  ck_assert_int_eq (memcmp (file + 16384, client + 512, 4096), 0);
}
END_TEST

/* The same for reads, and a 128 KiB request (the kernel client's
 * largest) from a buffer 512 bytes into a page: through the 64 KiB
 * bounce buffer in pieces, never the client's memory. */
START_TEST (test_read_memory)
{
  unsigned char *big = client + 64 * 1024;

  ck_assert_int_eq (run (REQ_READ, client, 4096, 4096), 0);
  ck_assert_ptr_eq (seen[0].buf, client);
  ck_assert_int_eq (memcmp (client, file + 4096, 4096), 0);

  nseen = 0;
  ck_assert_int_eq (run (REQ_READ, big + 512, 128 * 1024, 65536), 0);
  ck_assert_uint_ge (nseen, 2);
  for (unsigned i = 0; i < nseen; i++) {
    ck_assert (ptr_is_aligned (seen[i].buf, 4096));
    ck_assert ((unsigned char *) seen[i].buf < big
               || (unsigned char *) seen[i].buf >= big + 132 * 1024);
  }
  ck_assert_int_eq (memcmp (big + 512, file + 65536, 128 * 1024), 0);
}
END_TEST

/* A target's max_direct cuts an aligned request into direct operations
 * of at most that length (a block device's REQ_BDEV_MAX_DIRECT, here
 * scaled down), straight from the client's memory, in order; without
 * it the request is one operation. */
START_TEST (test_max_direct)
{
  ck_assert_uint_eq (target.max_direct, REQ_MAX_DIRECT);
  ck_assert_int_eq (run (REQ_WRITE, client, 256 * 1024, 0), 0);
  ck_assert_uint_eq (nseen, 1);

  target.max_direct = 64 * 1024;
  nseen = 0;
  for (unsigned i = 0; i < 256 * 1024; i++)
    client[i] = (unsigned char) (i * 3 + 2);
  ck_assert_int_eq (run (REQ_WRITE, client, 256 * 1024, 128 * 1024), 0);
  ck_assert_uint_eq (nseen, 4);
  for (unsigned i = 0; i < nseen; i++) {
    ck_assert_uint_eq (seen[i].len, 64 * 1024);
    ck_assert_uint_eq (seen[i].off, 128 * 1024 + i * 64 * 1024);
    ck_assert_ptr_eq (seen[i].buf, client + i * 64 * 1024);
  }
  ck_assert_int_eq (memcmp (file + 128 * 1024, client, 256 * 1024), 0);
  nseen = 0;
  ck_assert_int_eq (run (REQ_READ, client, 192 * 1024, 0), 0);
  ck_assert_uint_eq (nseen, 3);
  ck_assert_int_eq (memcmp (client, file, 192 * 1024), 0);
}
END_TEST

/* Unaligned writes of every shape keep the bytes around them: the edge
 * blocks are read first and patched (read-modify-write).  Offsets and
 * lengths cross the bounce buffer's size, and each is checked against a
 * model of the file. */
START_TEST (test_rmw)
{
  static const uint32_t offs[] = { 1, 511, 512, 700, 4095, 65536 - 3 };
  static const uint32_t lens[] = { 1, 2, 511, 513, 4096, 70000, 131073 };

  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
      uint64_t off = offs[i] + (uint64_t) j * 3000;
      uint32_t src = (uint32_t) (i * 37 + j);

      ck_assert_int_eq (run (REQ_WRITE, client + src, lens[j], off), 0);
      memcpy (model + off, client + src, lens[j]);
      ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);
    }
}
END_TEST

/* An in-place request, the native server's way (its data at bounce +
 * offset % align), run to its end; its error. */
static int
run_in_place (enum req_cmd cmd, uint64_t off, uint32_t len)
{
  struct req r = {
    .cmd = cmd, .offset = off, .count = len,
    .data = bounce + off % ALIGN, .bounce = bounce, .bounce_size = BOUNCE,
    .scratch = scratch, .in_place = true,
  };
  enum req_next n = req_start (&target, &r);

  while (n == REQ_IO)
    n = req_io_done (&target, &r, fake_io (&r.io));
  return r.err;
}

/* The native server's way: the data already sits in the bounce buffer
 * at offset % align, and nothing is copied.  The edges are still read
 * and patched. */
START_TEST (test_in_place)
{
  uint64_t off = 3 * 4096 + 100;
  uint32_t len = 5000;

  memcpy (bounce + off % ALIGN, client, len);
  ck_assert_int_eq (run_in_place (REQ_WRITE, off, len), 0);
  ck_assert_ptr_eq (seen[nseen - 1].buf, bounce);
  memcpy (model + off, client, len);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);

  /* And a read into place. */
  memset (bounce, 0, BOUNCE);
  ck_assert_int_eq (run_in_place (REQ_READ, off, len), 0);
  ck_assert_int_eq (memcmp (bounce + off % ALIGN, client, len), 0);
}
END_TEST

/* In place, an unaligned request longer than the target's max_direct
 * goes in operations of at most that length, each from where its data
 * is (no copy), the edges read and patched: a block device's long
 * unaligned write does not overrun its pool (REQ_BDEV_MAX_DIRECT, here
 * scaled down). */
START_TEST (test_in_place_max_direct)
{
  uint64_t off = 2 * 4096 + 300;
  uint32_t len = 40000, cover = 40448;          /* 8192 .. 48640 */
  uint32_t written = 0;

  target.max_direct = 8192;
  memcpy (bounce + off % ALIGN, client, len);
  ck_assert_int_eq (run_in_place (REQ_WRITE, off, len), 0);
  for (unsigned i = 0; i < nseen; i++) {
    ck_assert_uint_le (seen[i].len, 8192);
    if (seen[i].op == REQ_OP_WRITE) {
      ck_assert_uint_eq (seen[i].off, 8192 + written);
      ck_assert_ptr_eq (seen[i].buf, bounce + written);
      written += seen[i].len;
    }
  }
  ck_assert_uint_eq (written, cover);
  memcpy (model + off, client, len);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);

  /* And a read into place, in pieces too. */
  memset (bounce, 0, BOUNCE);
  nseen = 0;
  ck_assert_int_eq (run_in_place (REQ_READ, off, len), 0);
  ck_assert_uint_eq (nseen, (cover + 8191) / 8192);
  ck_assert_int_eq (memcmp (bounce + off % ALIGN, client, len), 0);
}
END_TEST

/* In place, a write inside one block: the block is read, patched around
 * the client's bytes, and written whole, under its stripe exclusively
 * (a concurrent shared writer is turned away meanwhile). */
START_TEST (test_in_place_one_block)
{
  uint64_t off = 8192 + 100;
  struct req r = {
    .cmd = REQ_WRITE, .offset = off, .count = 10,
    .data = bounce + off % ALIGN, .bounce = bounce, .bounce_size = BOUNCE,
    .scratch = scratch, .in_place = true,
  };
  bool waiting = false;
  enum req_next n;

  memcpy (bounce + off % ALIGN, client, 10);
  n = req_start (&target, &r);
  ck_assert_int_eq (n, REQ_IO);
  ck_assert_ptr_eq (r.io.buf, scratch);         /* the edge block first */
  ck_assert (!rangelock_try (&target.locks, rangelock_mask (8192, 512),
                             false, &waiting));
  while (n == REQ_IO)
    n = req_io_done (&target, &r, fake_io (&r.io));
  ck_assert_int_eq (r.err, 0);
  ck_assert_uint_eq (seen[nseen - 1].len, ALIGN);
  memcpy (model + off, client, 10);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);
  ck_assert (rangelock_try (&target.locks, rangelock_mask (8192, 512),
                            false, &waiting));
  rangelock_release (&target.locks, rangelock_mask (8192, 512), false);
}
END_TEST

/* A short transfer then a transient error: only the rest is retried,
 * from where it stopped. */
START_TEST (test_short_then_retry)
{
  uint64_t retries = STATS_GET (target.stats, retries);
  struct req r = {
    .cmd = REQ_WRITE, .offset = 0, .count = 8192, .data = client,
    .bounce = bounce, .bounce_size = BOUNCE, .scratch = scratch,
    .may_block = true,
  };
  enum req_next n = req_start (&target, &r);

  ck_assert_int_eq (n, REQ_IO);
  n = req_io_done (&target, &r, 4096);          /* half moved */
  ck_assert_int_eq (n, REQ_IO);
  ck_assert_ptr_eq (r.io.buf, client + 4096);
  ck_assert_uint_eq (r.io.off, 4096);
  ck_assert_uint_eq (r.io.len, 4096);
  n = req_io_done (&target, &r, -EAGAIN);
  ck_assert_int_eq (n, REQ_IO);
  ck_assert_uint_eq (r.io.off, 4096);
  ck_assert_uint_eq (r.io.len, 4096);
  memcpy (file, client, 4096);                  /* what the first half did */
  while (n == REQ_IO)
    n = req_io_done (&target, &r, fake_io (&r.io));
  ck_assert_int_eq (r.err, 0);
  ck_assert_uint_eq (STATS_GET (target.stats, retries) - retries, 1);
  ck_assert_int_eq (memcmp (file, client, 8192), 0);
}
END_TEST

/* FUA reaches every write of a zeroing, and only writes. */
START_TEST (test_zero_fua)
{
  struct req r = {
    .cmd = REQ_ZERO, .offset = 100, .count = 5000, .fua = true,
    .bounce = bounce, .bounce_size = BOUNCE, .scratch = scratch,
    .may_block = true,
  };
  enum req_next n = req_start (&target, &r);

  while (n == REQ_IO)
    n = req_io_done (&target, &r, fake_io (&r.io));
  ck_assert_int_eq (r.err, 0);
  for (unsigned i = 0; i < nseen; i++)
    ck_assert (seen[i].fua == (seen[i].op == REQ_OP_WRITE));
  ck_assert_uint_gt (nseen, 1);                 /* edges read first */
}
END_TEST

/* A short transfer is resumed where it stopped. */
START_TEST (test_short)
{
  short_io = true;
  ck_assert_int_eq (run (REQ_WRITE, client, 64 * 1024, 0), 0);
  ck_assert_uint_gt (nseen, 1);
  ck_assert_int_eq (memcmp (file, client, 64 * 1024), 0);
  ck_assert_int_eq (run (REQ_READ, client + 128 * 1024, 64 * 1024, 0), 0);
  ck_assert_int_eq (memcmp (client + 128 * 1024, client, 64 * 1024), 0);
}
END_TEST

/* Two transient failures: two retries, counted once each, the request
 * succeeds; a lasting error fails it once, counted once. */
START_TEST (test_retry_counted_once)
{
  uint64_t retries = STATS_GET (target.stats, retries), errors = STATS_GET (target.stats, errors);

  fail_next[0] = -EAGAIN;
  fail_next[1] = -ETIMEDOUT;
  nfail = 2;
  ck_assert_int_eq (run (REQ_WRITE, client, 4096, 0), 0);
  ck_assert_uint_eq (STATS_GET (target.stats, retries) - retries, 2);
  ck_assert_uint_eq (STATS_GET (target.stats, errors) - errors, 0);
  ck_assert_uint_eq (nseen, 3);
  ck_assert_int_eq (memcmp (file, client, 4096), 0);

  fail_next[0] = -ENOSPC;
  nfail = 1;
  ck_assert_int_eq (run (REQ_WRITE, client, 4096, 4096), -ENOSPC);
  ck_assert_uint_eq (STATS_GET (target.stats, retries) - retries, 2);
  ck_assert_uint_eq (STATS_GET (target.stats, errors) - errors, 1);

  /* A flush's EIO is never retried. */
  fail_next[0] = -EIO;
  nfail = 1;
  ck_assert_int_eq (run (REQ_FLUSH, NULL, 0, 0), -EIO);
  ck_assert_uint_eq (STATS_GET (target.stats, retries) - retries, 2);
}
END_TEST

/* Zeroes: an aligned range straight from the zero page; an unaligned one
 * through the bounce buffer, keeping its neighbours. */
START_TEST (test_zero)
{
  ck_assert_int_eq (run (REQ_ZERO, NULL, 2 * REQ_ZERO_SIZE / 4, 4096), 0);
  ck_assert_ptr_eq (seen[0].buf, target.zero_buf);
  memset (model + 4096, 0, 2 * REQ_ZERO_SIZE / 4);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);
  ck_assert_int_eq (run (REQ_ZERO, NULL, 100000, 700001), 0);
  memset (model + 700001, 0, 100000);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);
}
END_TEST

/* Without may_block (an event loop), a write that needs a stripe another
 * write holds reports REQ_BLOCKED, and goes on once it is free. */
START_TEST (test_blocked)
{
  struct req a = {
    .cmd = REQ_WRITE, .offset = 100, .count = 100, .data = client,
    .bounce = bounce, .bounce_size = BOUNCE / 2, .scratch = scratch,
  };
  unsigned char *b2;
  struct req b;

  ck_assert_int_eq (posix_memalign ((void **) &b2, 4096, BOUNCE), 0);
  b = (struct req) {
    .cmd = REQ_WRITE, .offset = 4096, .count = 4096, .data = client,
    .bounce = b2, .bounce_size = BOUNCE, .scratch = b2 + BOUNCE - 4096,
  };
  ck_assert_int_eq (req_start (&target, &a), REQ_IO);   /* holds it */
  ck_assert_int_eq (req_start (&target, &b), REQ_BLOCKED);
  ck_assert_int_eq (req_resume (&target, &b), REQ_BLOCKED);
  ck_assert (!b.lock_waiting);          /* b is aligned: a shared waiter */
  enum req_next n = REQ_IO;
  while (n == REQ_IO)
    n = req_io_done (&target, &a, fake_io (&a.io));
  ck_assert_int_eq (a.err, 0);
  n = req_resume (&target, &b);
  while (n == REQ_IO)
    n = req_io_done (&target, &b, fake_io (&b.io));
  ck_assert_int_eq (b.err, 0);
  memcpy (model + 100, client, 100);
  memcpy (model + 4096, client, 4096);
  ck_assert_int_eq (memcmp (file, model, FILE_SIZE), 0);
  free (b2);
}
END_TEST

/* A request's latency lands in the bucket of its microseconds' bit
 * length: [2^(b-1), 2^b) us in bucket b, under 1 us in bucket 0, and
 * anything longer than the last bucket's range in the last. */
START_TEST (test_latency_buckets)
{
  static const struct { uint64_t ns; unsigned bucket; } cases[] = {
    { 0, 0 }, { 999, 0 }, { 1000, 1 }, { 1999, 1 }, { 2000, 2 },
    { 3999, 2 }, { 4000, 3 }, { 1000000, 10 },
    { (UINT64_C (1) << 29) * 1000, 30 },
    { (UINT64_C (1) << 30) * 1000, STATS_LAT_BUCKETS - 1 },
    { UINT64_MAX, STATS_LAT_BUCKETS - 1 },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned b = cases[i].bucket;
    uint64_t before = STATS_GET (target.stats, latency[b]);

    stats_latency (target.stats, cases[i].ns);
    ck_assert_msg (STATS_GET (target.stats, latency[b]) == before + 1,
                   "%" PRIu64 " ns: not in bucket %u", cases[i].ns, b);
  }
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("request");
  TCase *tc = tcase_create ("engine");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_mem_align_at_least_a_page);
  tcase_add_test (tc, test_write_memory);
  tcase_add_test (tc, test_max_direct);
  tcase_add_test (tc, test_read_memory);
  tcase_add_test (tc, test_rmw);
  tcase_add_test (tc, test_in_place);
  tcase_add_test (tc, test_in_place_one_block);
  tcase_add_test (tc, test_in_place_max_direct);
  tcase_add_test (tc, test_short_then_retry);
  tcase_add_test (tc, test_zero_fua);
  tcase_add_test (tc, test_short);
  tcase_add_test (tc, test_retry_counted_once);
  tcase_add_test (tc, test_zero);
  tcase_add_test (tc, test_blocked);
  tcase_add_test (tc, test_latency_buckets);
  suite_add_tcase (s, tc);
  return check_run (s);
}
