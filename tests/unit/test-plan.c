/* Unit tests: alignment helpers, the block sizes both servers advertise
 * (blocksize.h) and the I/O plan.
 *
 * The plan is checked by execution: every plan for every small request
 * shape is carried out against an in-memory "file" exactly the way io.c
 * does it (edge blocks read first, client bytes copied into the bounce
 * slot, whole segments written), with the bounce buffer poisoned in
 * between.  Any wrong skip, n, buf_off or read_first/read_last shows up
 * as a byte that differs from a simple model.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "align.h"
#include "blocksize.h"
#include "dioalign.h"
#include "plan.h"
#include "../check-run.h"

START_TEST (test_align_helpers)
{
  ck_assert (is_power_of_2 (1));
  ck_assert (is_power_of_2 (4096));
  ck_assert (!is_power_of_2 (0));
  ck_assert (!is_power_of_2 (4095));
  ck_assert (is_aligned (8192, 4096));
  ck_assert (!is_aligned (8193, 4096));
  ck_assert_uint_eq (round_down (8191, 4096), 4096);
  ck_assert_uint_eq (round_up (4097, 4096), 8192);
  ck_assert_uint_eq (round_up (4096, 4096), 4096);
  ck_assert_uint_eq (round_up (0, 512), 0);
  ck_assert_uint_eq (round_down (UINT64_MAX, 4096), UINT64_MAX - 4095);
  ck_assert (ptr_is_aligned ((void *) 0x1000, 4096));
  ck_assert (!ptr_is_aligned ((void *) 0x1010, 512));
}
END_TEST

START_TEST (test_blocksize_for)
{
  struct blocksize b = blocksize_for (512);

  ck_assert_uint_eq (b.minimum, 512);
  ck_assert_uint_eq (b.preferred, 4096);
  ck_assert_uint_eq (b.maximum, BLOCKSIZE_MAX);
  b = blocksize_for (1);                /* through the page cache */
  ck_assert_uint_eq (b.minimum, 1);
  ck_assert_uint_eq (b.preferred, 4096);
  b = blocksize_for (DIO_ALIGN_MAX);
  ck_assert_uint_eq (b.minimum, DIO_ALIGN_MAX);
  ck_assert_uint_eq (b.preferred, DIO_ALIGN_MAX);
  /* nbdkit's rules for a plugin's .block_size: minimum a power of two
   * up to 64 KiB, preferred from 512 to 32 MiB, maximum a multiple of
   * the minimum, minimum <= preferred <= maximum. */
  ck_assert_uint_le (b.preferred, 32 * 1024 * 1024);
  ck_assert_uint_eq (b.maximum % b.minimum, 0);
  ck_assert_uint_le (b.preferred, b.maximum);
}
END_TEST

START_TEST (test_blocksize_check)
{
  ck_assert_int_eq (blocksize_check ("pread", 0), 0);
  ck_assert_int_eq (blocksize_check ("pread", BLOCKSIZE_MAX), 0);
  ck_assert_int_eq (blocksize_check ("pread", BLOCKSIZE_MAX + 1), -EINVAL);
  ck_assert_int_eq (blocksize_check ("pwrite", UINT32_MAX), -EINVAL);
}
END_TEST

#define FILE_SIZE 8192
#define CHUNK_MAX 4096

/* Carry out a write of count bytes at offset with the plan, against
 * file; returns the number of segments. */
static unsigned
simulate_write (unsigned char *file, const unsigned char *client,
                uint64_t offset, uint32_t count, uint32_t align,
                bool mem_ok, uint32_t chunk, uint32_t max_direct)
{
  static unsigned char bounce[CHUNK_MAX];
  struct io_plan p;
  struct io_seg s;
  uint64_t next_buf = 0, next_file = round_down (offset, align);
  unsigned nseg = 0;

  plan_init (&p, offset, count, align, mem_ok, chunk, max_direct);
  while (plan_next (&p, &s)) {
    nseg++;
    ck_assert_uint_eq (s.file_off, next_file);      /* in order, no gap */
    ck_assert_uint_eq (s.buf_off, next_buf);        /* client bytes tile */
    ck_assert (is_aligned (s.file_off, align) && is_aligned (s.len, align));
    ck_assert_uint_le (s.file_off + s.len, FILE_SIZE);
    ck_assert_uint_eq (s.buf_off, s.file_off + s.skip - offset);
    if (s.direct) {
      ck_assert_uint_le (s.len, max_direct);
      memcpy (file + s.file_off, client + s.buf_off, s.len);
    }
    else {
      ck_assert_uint_le (s.len, chunk);
      memset (bounce, 0xa5, sizeof bounce);         /* poison */
      if (s.read_first)
        memcpy (bounce, file + s.file_off, align);
      if (s.read_last)
        memcpy (bounce + s.len - align, file + s.file_off + s.len - align,
                align);
      memcpy (bounce + s.skip, client + s.buf_off, s.n);
      memcpy (file + s.file_off, bounce, s.len);
    }
    next_buf += s.n;
    next_file += s.len;
  }
  ck_assert_uint_eq (next_buf, count);
  ck_assert_uint_eq (next_file, round_up (offset + count, align));
  return nseg;
}

/* Every request shape in a small file, for several alignments, chunk
 * sizes and memory alignments. */
START_TEST (test_plan_write_exhaustive)
{
  static unsigned char file[FILE_SIZE], model[FILE_SIZE], client[FILE_SIZE];
  static const uint32_t aligns[] = { 1, 512, 1024 };
  static const uint32_t chunks[] = { 1024, 2048, 4096 };
  unsigned cases = 0;

  for (size_t i = 0; i < sizeof client; i++)
    client[i] = (unsigned char) (i * 7 + 3);
  for (size_t ai = 0; ai < 3; ai++)
    for (size_t ci = 0; ci < 3; ci++)
      for (int mem_ok = 0; mem_ok <= 1; mem_ok++)
        for (uint64_t off = 0; off < 3000; off += 37)
          for (uint32_t count = 1; off + count <= FILE_SIZE; count += 211) {
            uint32_t a = aligns[ai];
            for (size_t i = 0; i < sizeof file; i++)
              file[i] = model[i] = (unsigned char) (i ^ 0x5a);
            memcpy (model + off, client, count);
            simulate_write (file, client, off, count, a, mem_ok,
                            chunks[ci] < a ? a : chunks[ci], 2048);
            ck_assert_msg (memcmp (file, model, sizeof file) == 0,
                           "align %u chunk %u mem_ok %d off %lu count %u",
                           a, chunks[ci], mem_ok, (unsigned long) off,
                           count);
            cases++;
          }
  ck_assert_uint_gt (cases, 10000);
}
END_TEST

START_TEST (test_plan_direct_only_when_all_aligned)
{
  struct io_plan p;
  struct io_seg s;

  plan_init (&p, 4096, 8192, 512, true, 4096, 1 << 20);
  ck_assert (plan_next (&p, &s));
  ck_assert (s.direct);
  ck_assert_uint_eq (s.len, 8192);
  ck_assert (!plan_next (&p, &s));

  plan_init (&p, 4096, 8192, 512, false, 4096, 1 << 20);  /* buffer */
  ck_assert (plan_next (&p, &s));
  ck_assert (!s.direct);
  ck_assert (!s.read_first && !s.read_last);     /* no RMW needed */
  ck_assert_uint_eq (s.len, 4096);

  plan_init (&p, 4097, 100, 512, true, 4096, 1 << 20);    /* offset */
  ck_assert (plan_next (&p, &s));
  ck_assert (!s.direct && s.read_first && !s.read_last);
  ck_assert_uint_eq (s.file_off, 4096);
  ck_assert_uint_eq (s.len, 512);
  ck_assert_uint_eq (s.skip, 1);
  ck_assert (!plan_next (&p, &s));
}
END_TEST

/* Field by field: the padding of two segments may differ. */
static bool
seg_equal (const struct io_seg *s, const struct io_seg *t)
{
  return s->file_off == t->file_off && s->len == t->len &&
    s->buf_off == t->buf_off && s->skip == t->skip && s->n == t->n &&
    s->direct == t->direct && s->read_first == t->read_first &&
    s->read_last == t->read_last;
}

/* The one-segment shortcut gives exactly what plan_init and plan_next
 * give whenever the plan is one direct segment, and declines every
 * other request. */
START_TEST (test_plan_one_direct)
{
  static const uint32_t aligns[] = { 1, 512, 4096 };
  unsigned taken = 0;

  for (size_t ai = 0; ai < 3; ai++)
    for (int mem_ok = 0; mem_ok <= 1; mem_ok++)
      for (uint64_t off = 0; off < 20000; off += 509)
        for (uint32_t count = 1; count < 20000; count += 383) {
          uint32_t a = aligns[ai];
          uint32_t off_a = (uint32_t) round_down (off, a);
          uint32_t count_a = (uint32_t) round_up (count, a);
          struct io_plan p, q;
          struct io_seg s, t;
          bool one;

          /* Each shape also aligned, so the shortcut is often taken. */
          for (int k = 0; k < 2; k++) {
            uint64_t o = k ? off_a : off;
            uint32_t n = k ? count_a : count;

            plan_init (&p, o, n, a, mem_ok, 4096, 8192);
            ck_assert (plan_next (&p, &s));
            one = s.direct && !plan_next (&p, &s);
            if (!plan_one_direct (&q, &t, o, n, a, mem_ok, 8192)) {
              ck_assert_msg (!one, "declined: align %u off %lu count %u",
                             a, (unsigned long) o, n);
              continue;
            }
            taken++;
            ck_assert_msg (one, "taken: align %u off %lu count %u",
                           a, (unsigned long) o, n);
            plan_init (&p, o, n, a, mem_ok, 4096, 8192);
            ck_assert (plan_next (&p, &s));
            ck_assert (seg_equal (&s, &t));
            ck_assert (!plan_next (&q, &t));
          }
        }
  ck_assert_uint_gt (taken, 100);
}
END_TEST

START_TEST (test_plan_needs_rmw)
{
  ck_assert (!plan_needs_rmw (0, 4096, 512));
  ck_assert (plan_needs_rmw (1, 4096, 512));
  ck_assert (plan_needs_rmw (0, 4095, 512));
  ck_assert (!plan_needs_rmw (3, 5, 1));
}
END_TEST

START_TEST (test_plan_edges_straddling_chunks)
{
  struct io_plan p;
  struct io_seg s;

  /* 100 .. 5000 with 512 blocks and 2048 chunks: [0,2048) reads its first
   * block, [2048,4096) is whole, [4096,5120) reads its last block. */
  plan_init (&p, 100, 4900, 512, true, 2048, 1 << 20);
  ck_assert (plan_next (&p, &s));
  ck_assert (s.read_first && !s.read_last);
  ck_assert (plan_next (&p, &s));
  ck_assert (!s.read_first && !s.read_last);
  ck_assert (plan_next (&p, &s));
  ck_assert_uint_eq (s.file_off, 4096);
  ck_assert_uint_eq (s.len, 1024);
  ck_assert (!s.read_first && s.read_last);
  ck_assert (!plan_next (&p, &s));
}
END_TEST

static Suite *
plan_suite (void)
{
  Suite *s = suite_create ("plan");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_align_helpers);
  tcase_add_test (tc, test_blocksize_for);
  tcase_add_test (tc, test_blocksize_check);
  tcase_add_test (tc, test_plan_write_exhaustive);
  tcase_add_test (tc, test_plan_direct_only_when_all_aligned);
  tcase_add_test (tc, test_plan_one_direct);
  tcase_add_test (tc, test_plan_needs_rmw);
  tcase_add_test (tc, test_plan_edges_straddling_chunks);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return check_run (plan_suite ());
}
