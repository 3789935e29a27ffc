/* Unit tests: which memory the request executor hands to the kernel.
 *
 * An engine that records its operations instead of doing them stands in
 * for io_uring.  A client buffer goes to the kernel as is only if it
 * meets the servers' memory alignment (dio_mem_align: at least a page,
 * whatever smaller alignment the file reports), else the request is
 * copied through the worker's page-aligned bounce buffer.  A buffer that
 * is 512-aligned but not page-aligned must be bounced: ext4 serializes
 * such a direct write behind every direct I/O in flight.
 */
#include <config.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "dioalign.h"
#include "engine.h"
#include "io.h"
#include "../check-run.h"

#define FILE_SIZE (1 << 20)
#define BOUNCE (64 * 1024)

static unsigned char file[FILE_SIZE];
static struct engine_op seen[64];
static unsigned nseen;

/* Do the operations on the in-memory file, and record them. */
static int
record_run (struct worker *w, struct engine_op *ops, unsigned n, bool fua)
{
  (void) w;
  (void) fua;
  for (unsigned i = 0; i < n; i++) {
    ck_assert_uint_lt (nseen, 64);
    seen[nseen++] = ops[i];
    if (ops[i].write)
      memcpy (file + ops[i].off, ops[i].buf, ops[i].len);
    else
      memcpy (ops[i].buf, file + ops[i].off, ops[i].len);
    ops[i].done = ops[i].len;
  }
  return 0;
}

static int
record_sync (struct worker *w)
{
  (void) w;
  return 0;
}

static const struct engine record_engine = {
  .name = "record", .run = record_run, .sync = record_sync,
};

static struct io_target target;
static struct worker worker;
static unsigned char *client;   /* page-aligned, 2 pages + 8 KiB */

static void
setup (void)
{
  /* A file that reports 512-byte alignment for both offset and memory,
   * as ext4 on a virtio disk does. */
  struct dio_align d = { 512, 512, "test" };

  target = (struct io_target) {
    .engine = &record_engine, .size = FILE_SIZE, .align = d.offset,
    .mem_align = dio_mem_align (&d), .bounce_size = BOUNCE,
  };
  ck_assert_int_eq (rangelock_init (&target.locks), 0);
  worker = (struct worker) { .fd = -1, .queue_depth = 8,
                             .bounce_size = BOUNCE };
  ck_assert_int_eq (posix_memalign ((void **) &worker.bounce,
                                    dio_mem_align (&d), BOUNCE), 0);
  ck_assert_int_eq (posix_memalign ((void **) &client, 4096, 4 * 4096), 0);
  for (unsigned i = 0; i < 4 * 4096; i++)
    client[i] = (unsigned char) (i * 7 + 1);
  memset (file, 0, sizeof file);
  nseen = 0;
}

static void
teardown (void)
{
  rangelock_destroy (&target.locks);
  free (worker.bounce);
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
  ck_assert_int_eq (io_write (&target, &worker, client, 4096, 8192, false), 0);
  ck_assert_uint_eq (nseen, 1);
  ck_assert_ptr_eq (seen[0].buf, client);

  nseen = 0;
  ck_assert_int_eq (io_write (&target, &worker, client + 512, 4096, 16384,
                              false), 0);
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
 * largest) from a buffer 512 bytes into a page. */
START_TEST (test_read_memory)
{
  unsigned char *big;

  for (unsigned i = 0; i < FILE_SIZE; i++)
    file[i] = (unsigned char) (i * 13 + 5);
  ck_assert_int_eq (io_read (&target, &worker, client, 4096, 4096), 0);
  ck_assert_ptr_eq (seen[0].buf, client);
  ck_assert_int_eq (memcmp (client, file + 4096, 4096), 0);

  ck_assert_int_eq (posix_memalign ((void **) &big, 4096, 132 * 1024), 0);
  nseen = 0;
  ck_assert_int_eq (io_read (&target, &worker, big + 512, 128 * 1024,
                             65536), 0);
  ck_assert_uint_ge (nseen, 2);           /* 64 KiB bounce: two batches */
  for (unsigned i = 0; i < nseen; i++) {
    ck_assert (ptr_is_aligned (seen[i].buf, 4096));
    ck_assert ((unsigned char *) seen[i].buf < big
               || (unsigned char *) seen[i].buf >= big + 132 * 1024);
  }
  ck_assert_int_eq (memcmp (big + 512, file + 65536, 128 * 1024), 0);
  free (big);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("io");
  TCase *tc = tcase_create ("memory");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_mem_align_at_least_a_page);
  tcase_add_test (tc, test_write_memory);
  tcase_add_test (tc, test_read_memory);
  suite_add_tcase (s, tc);
  return check_run (s);
}
