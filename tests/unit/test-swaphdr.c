/* Unit tests: the swap header attach writes instead of running mkswap
 * (server/attach/swaphdr.c), read back through the kernel's layout of
 * union swap_header (include/linux/swap.h), declared here on its own so
 * that an offset wrong in swaphdr.h shows.  tests/attach/test-swaphdr.sh
 * checks the same header with blkid, swaplabel and against mkswap's. */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swaphdr.h"
#include "../check-run.h"

/* The kernel's info view of the first page (its magic view is the last
 * 10 bytes of the page). */
struct kernel_swap_info {
  char bootbits[1024];
  uint32_t version;
  uint32_t last_page;
  uint32_t nr_badpages;
  unsigned char sws_uuid[16];
  unsigned char sws_volume[16];
  uint32_t padding[117];
  uint32_t badpages[1];
};

_Static_assert (offsetof (struct kernel_swap_info, version)
                == SWAPHDR_VERSION_OFF, "version");
_Static_assert (offsetof (struct kernel_swap_info, last_page)
                == SWAPHDR_LAST_PAGE_OFF, "last_page");
_Static_assert (offsetof (struct kernel_swap_info, nr_badpages)
                == SWAPHDR_NR_BADPAGES_OFF, "nr_badpages");
_Static_assert (offsetof (struct kernel_swap_info, sws_uuid)
                == SWAPHDR_UUID_OFF, "uuid");
_Static_assert (offsetof (struct kernel_swap_info, sws_volume)
                == SWAPHDR_LABEL_OFF, "label");

static const unsigned char uuid[16] = {
  0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
  0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77
};

/* True if the len bytes at p are all zero. */
static bool
all_zero (const unsigned char *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (p[i])
      return false;
  return true;
}

/* Checks page (page_size bytes) field by field: a version-1 header of
 * last_page with id and the 16 label bytes want, zeros elsewhere. */
static void
check_header (const unsigned char *page, size_t page_size,
              uint32_t last_page, const unsigned char *id,
              const char want[16])
{
  struct kernel_swap_info info;
  size_t tail = sizeof info.padding + sizeof info.badpages;

  memcpy (&info, page, sizeof info);
  ck_assert (all_zero (page, sizeof info.bootbits));
  ck_assert_uint_eq (info.version, 1);
  ck_assert_uint_eq (info.last_page, last_page);
  ck_assert_uint_eq (info.nr_badpages, 0);
  ck_assert (memcmp (info.sws_uuid, id, 16) == 0);
  ck_assert (memcmp (info.sws_volume, want, 16) == 0);
  ck_assert (all_zero ((const unsigned char *) info.padding, tail));
  ck_assert (all_zero (page + sizeof info,
                       page_size - SWAPHDR_MAGIC_LEN - sizeof info));
  ck_assert (memcmp (page + page_size - 10, "SWAPSPACE2", 10) == 0);
  ck_assert (swaphdr_has_signature (page, page_size));
}

/* 4 KiB pages: the area is the device's whole pages, page 0 the header;
 * a short label is padded with NULs. */
START_TEST (test_layout_4k)
{
  static unsigned char page[4096];
  const char want[16] = "nbdswap-nbd0";

  memset (page, 0xee, sizeof page);
  ck_assert_int_eq (swaphdr_build (page, 4096, 64 * 1024 * 1024 + 1000,
                                   uuid, "nbdswap-nbd0"), 0);
  check_header (page, 4096, 16383, uuid, want);
}
END_TEST

/* 64 KiB pages (arm64, ppc64): the signature moves to the page's end. */
START_TEST (test_layout_64k)
{
  static unsigned char page[65536];
  const char want[16] = "x";

  ck_assert_int_eq (swaphdr_build (page, sizeof page, 1ULL << 30, uuid,
                                   "x"), 0);
  check_header (page, sizeof page, 16383, uuid, want);
  ck_assert (!swaphdr_has_signature (page, 4096));
}
END_TEST

/* A label of 15 bytes fits with its NUL; a longer one is cut there, as
 * mkswap -L does. */
START_TEST (test_label_length)
{
  static unsigned char page[4096];
  const char fifteen[16] = "abcdefghijklmno";

  ck_assert_int_eq (swaphdr_build (page, 4096, 1 << 20, uuid,
                                   "abcdefghijklmno"), 0);
  check_header (page, 4096, 255, uuid, fifteen);
  ck_assert_int_eq (swaphdr_build (page, 4096, 1 << 20, uuid,
                                   "abcdefghijklmnop"), 0);
  check_header (page, 4096, 255, uuid, fifteen);
  ck_assert_int_eq (swaphdr_build (page, 4096, 1 << 20, uuid,
                                   "abcdefghijklmnopqrstuvwxyz"), 0);
  check_header (page, 4096, 255, uuid, fifteen);
}
END_TEST

/* Ten pages is the smallest area; a page size the header cannot have is
 * refused; a size past 2^32 pages is cut to what last_page can name. */
START_TEST (test_bounds)
{
  static unsigned char page[4096];
  const char want[16] = "s";

  ck_assert_int_eq (swaphdr_build (page, 4096, 10 * 4096, uuid, "s"), 0);
  check_header (page, 4096, 9, uuid, want);
  ck_assert_int_eq (swaphdr_build (page, 4096, 10 * 4096 - 1, uuid, "s"),
                    -ENOSPC);
  ck_assert_int_eq (swaphdr_build (page, 4096, 0, uuid, "s"), -ENOSPC);
  ck_assert_int_eq (swaphdr_build (page, 2048, 1 << 20, uuid, "s"),
                    -EINVAL);
  ck_assert_int_eq (swaphdr_build (page, 4097, 1 << 20, uuid, "s"),
                    -EINVAL);
  ck_assert_int_eq (swaphdr_build (page, 4096, (1ULL << 44) + 5 * 4096,
                                   uuid, "s"), 0);
  check_header (page, 4096, UINT32_MAX, uuid, want);
  ck_assert_int_eq (swaphdr_build (page, 4096, (1ULL << 44), uuid, "s"), 0);
  check_header (page, 4096, UINT32_MAX, uuid, want);
}
END_TEST

/* A page without the signature, or with it elsewhere, is not swap. */
START_TEST (test_signature)
{
  static unsigned char page[4096];

  ck_assert (!swaphdr_has_signature (page, 4096));
  memcpy (page + 4096 - 11, "SWAPSPACE2", 10);
  ck_assert (!swaphdr_has_signature (page, 4096));
  memcpy (page + 4096 - 10, "SWAP-SPACE", 10);     /* version 0 */
  ck_assert (!swaphdr_has_signature (page, 4096));
  memcpy (page + 4096 - 10, "SWAPSPACE2", 10);
  ck_assert (swaphdr_has_signature (page, 4096));
}
END_TEST

static char dir[] = "/tmp/test-swaphdr.XXXXXX";

/* A file of size bytes filled with 0xee in dir; its path in path. */
static void
make_file (const char *name, off_t size, char *path, size_t len)
{
  static unsigned char junk[65536];
  int fd;

  memset (junk, 0xee, sizeof junk);
  snprintf (path, len, "%s/%s", dir, name);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge (fd, 0);
  for (off_t at = 0; at < size; at += (off_t) sizeof junk) {
    size_t n = size - at < (off_t) sizeof junk ? (size_t) (size - at)
      : sizeof junk;
    ck_assert_int_eq (pwrite (fd, junk, n, at), (ssize_t) n);
  }
  close (fd);
}

/* Written to a file: the whole first page is the header with a fresh
 * random (version 4) UUID; the rest of the file is untouched. */
START_TEST (test_write_file)
{
  size_t ps = swaphdr_page_size ();
  unsigned char id1[16], id2[16], *buf = malloc (2 * ps);
  const char want[16] = "nbdswap-nbd3";
  char path[64];
  int fd;

  ck_assert_ptr_nonnull (buf);
  make_file ("swap", 64 * ps + 100, path, sizeof path);
  ck_assert_int_eq (swaphdr_write (path, "nbdswap-nbd3", id1), 0);
  ck_assert_int_eq (swaphdr_write (path, "nbdswap-nbd3", id2), 0);
  ck_assert (memcmp (id1, id2, 16) != 0);
  ck_assert_uint_eq (id2[6] >> 4, 4);
  ck_assert_uint_eq (id2[8] & 0xc0, 0x80);
  fd = open (path, O_RDONLY);
  ck_assert_int_eq (pread (fd, buf, 2 * ps, 0), (ssize_t) (2 * ps));
  close (fd);
  check_header (buf, ps, 63, id2, want);
  ck_assert_uint_eq (buf[ps], 0xee);
  ck_assert_uint_eq (buf[2 * ps - 1], 0xee);
  unlink (path);
  free (buf);
}
END_TEST

/* Nothing is written where no swap area fits; what is not a file or a
 * block device is refused. */
START_TEST (test_write_refused)
{
  size_t ps = swaphdr_page_size ();
  unsigned char byte;
  char path[64], missing[64];
  int fd;

  make_file ("small", 9 * ps, path, sizeof path);
  ck_assert_int_eq (swaphdr_write (path, "l", NULL), -ENOSPC);
  fd = open (path, O_RDONLY);
  ck_assert_int_eq (pread (fd, &byte, 1, ps - 1), 1);
  close (fd);
  ck_assert_uint_eq (byte, 0xee);
  unlink (path);
  snprintf (missing, sizeof missing, "%s/none", dir);
  ck_assert_int_eq (swaphdr_write (missing, "l", NULL), -ENOENT);
  ck_assert_int_eq (swaphdr_write (dir, "l", NULL), -EINVAL);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("swaphdr");
  TCase *tc = tcase_create ("header");
  int r;

  if (mkdtemp (dir) == NULL) {
    perror ("mkdtemp");
    return EXIT_FAILURE;
  }
  tcase_add_test (tc, test_layout_4k);
  tcase_add_test (tc, test_layout_64k);
  tcase_add_test (tc, test_label_length);
  tcase_add_test (tc, test_bounds);
  tcase_add_test (tc, test_signature);
  tcase_add_test (tc, test_write_file);
  tcase_add_test (tc, test_write_refused);
  suite_add_tcase (s, tc);
  r = check_run (s);
  rmdir (dir);
  return r;
}
