/* Unit tests (Check) of the pure logic in the verification and creation
 * code: size parsing, extent merging and checking, map comparison,
 * mountinfo and /proc/swaps parsing, JSON escaping, cancellation.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fiemap.h>

#include "create.h"
#include "log.h"
#include "verify-internal.h"
#include "../check-run.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)

/* The last error and the last info line logged (the code under test
 * logs, never prints), and how many warnings. */
static char last_error[LOG_LINE_MAX];
static char last_info[LOG_LINE_MAX];
static int nr_warnings_logged;

/* Keeps the last lines for the assertions. */
static void
capture_sink (enum log_level level, const char *line)
{
  if (level == LOG_LEVEL_ERROR)
    snprintf (last_error, sizeof last_error, "%s", line);
  else if (level == LOG_LEVEL_INFO)
    snprintf (last_info, sizeof last_info, "%s", line);
  else if (level == LOG_LEVEL_WARNING)
    nr_warnings_logged++;
}

/* create_parse_size */

START_TEST (test_parse_size_ok)
{
  static const struct {
    const char *s;
    uint64_t v;
  } cases[] = {
    { "0", 0 }, { "4096", 4096 }, { "1K", KiB }, { "1k", KiB },
    { "16M", 16 * MiB }, { "512m", 512 * MiB }, { "2G", 2048 * MiB },
    { "1T", 1024 * 1024 * MiB }, { "1GiB", 1024 * MiB }, { "3kib", 3 * KiB },
    { "16777215T", 16777215ULL << 40 },
  };
  uint64_t v;
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    v = 12345;
    ck_assert_msg (create_parse_size (cases[i].s, &v) == 0, "%s", cases[i].s);
    ck_assert_msg (v == cases[i].v, "%s -> %llu", cases[i].s,
                   (unsigned long long) v);
  }
}
END_TEST

START_TEST (test_parse_size_bad)
{
  static const char *const einval[] = {
    "", "abc", "1MB", "1.5G", "-1", " 1G", "1G ", "1X", "G", "1Gi", "1KiBs",
  };
  uint64_t v;
  size_t i;

  for (i = 0; i < sizeof einval / sizeof einval[0]; ++i)
    ck_assert_msg (create_parse_size (einval[i], &v) == -EINVAL, "'%s'",
                   einval[i]);
  ck_assert_int_eq (create_parse_size ("18446744073709551616", &v), -ERANGE);
  ck_assert_int_eq (create_parse_size ("16777216T", &v), -ERANGE);
  ck_assert_int_eq (create_parse_size ("17179869184G", &v), -ERANGE);
}
END_TEST

/* extent_list_append */

/* An extent literal. */
static struct verify_extent
ext (uint64_t logical, uint64_t physical, uint64_t length, uint32_t flags)
{
  struct verify_extent e = { logical, physical, length, flags };
  return e;
}

START_TEST (test_extent_merge)
{
  struct extent_list l = { 0 };
  struct verify_extent e;

  e = ext (0, 1 * MiB, 64 * KiB, 0);
  ck_assert_int_eq (extent_list_append (&l, &e), 0);
  e = ext (64 * KiB, 1 * MiB + 64 * KiB, 64 * KiB, 0);     /* contiguous */
  ck_assert_int_eq (extent_list_append (&l, &e), 0);
  ck_assert_uint_eq (l.n, 1);
  ck_assert_uint_eq (l.v[0].length, 128 * KiB);
  e = ext (128 * KiB, 8 * MiB, 64 * KiB, 0);               /* moved */
  ck_assert_int_eq (extent_list_append (&l, &e), 0);
  e = ext (192 * KiB, 8 * MiB + 64 * KiB, 64 * KiB,        /* other flags */
           FIEMAP_EXTENT_UNWRITTEN);
  ck_assert_int_eq (extent_list_append (&l, &e), 0);
  ck_assert_uint_eq (l.n, 3);
  e = ext (100 * KiB, 0, 4 * KiB, 0);                      /* overlaps */
  ck_assert_int_eq (extent_list_append (&l, &e), -EINVAL);
  ck_assert_uint_eq (l.n, 3);
  free (l.v);
}
END_TEST

/* verify_check_extents */

/* An empty result for a file "f" of size bytes. */
static void
result_init (struct verify_result *res, uint64_t size)
{
  memset (res, 0, sizeof *res);
  res->path = strdup ("f");
  res->size = size;
}

/* Runs verify_check_extents on the extents v[0..n). */
static void
check_list (struct verify_result *res, const struct verify_extent *v,
            size_t n)
{
  struct extent_list l = { 0 };
  size_t i;

  for (i = 0; i < n; ++i)
    ck_assert_int_eq (extent_list_append (&l, &v[i]), 0);
  ck_assert_int_eq (verify_check_extents (&l, res), 0);
  free (l.v);
}

START_TEST (test_check_hole_and_unwritten)
{
  const struct verify_extent v[] = {
    ext (0, 1 * MiB, 256 * KiB, 0),
    ext (512 * KiB, 4 * MiB, 256 * KiB, FIEMAP_EXTENT_UNWRITTEN),
    ext (768 * KiB, 9 * MiB, 256 * KiB, FIEMAP_EXTENT_UNWRITTEN),
  };
  struct verify_result res;

  result_init (&res, 1 * MiB);
  check_list (&res, v, 3);
  ck_assert_uint_eq (res.nr_problems, 2);
  ck_assert_uint_eq (res.nr_errors, 2);
  ck_assert_int_eq (res.problems[0].code, VERIFY_HOLE);
  ck_assert_uint_eq (res.problems[0].offset, 256 * KiB);
  ck_assert_uint_eq (res.problems[0].length, 256 * KiB);
  ck_assert_str_eq (res.problems[0].message,
                    "f: bytes 262144-524287 (256.0 KiB) are a hole: no disk "
                    "blocks are allocated there, so a swap-out write would "
                    "have to allocate them under memory pressure");
  /* Two extents in different places, one run of unwritten bytes. */
  ck_assert_int_eq (res.problems[1].code, VERIFY_UNWRITTEN);
  ck_assert_uint_eq (res.problems[1].offset, 512 * KiB);
  ck_assert_uint_eq (res.problems[1].length, 512 * KiB);
  verify_result_free (&res);
}
END_TEST

START_TEST (test_check_tail_hole_and_eof)
{
  const struct verify_extent half[] = { ext (0, 1 * MiB, 512 * KiB, 0) };
  const struct verify_extent past_eof[] = { ext (0, 1 * MiB, 2 * MiB, 0) };
  struct verify_result res;

  result_init (&res, 1 * MiB);
  check_list (&res, half, 1);
  ck_assert_uint_eq (res.nr_problems, 1);
  ck_assert_int_eq (res.problems[0].code, VERIFY_HOLE);
  ck_assert_uint_eq (res.problems[0].offset, 512 * KiB);
  ck_assert_uint_eq (res.problems[0].length, 512 * KiB);
  verify_result_free (&res);

  /* Preallocation past EOF is no problem. */
  result_init (&res, 1 * MiB);
  check_list (&res, past_eof, 1);
  ck_assert_uint_eq (res.nr_problems, 0);
  verify_result_free (&res);

  /* No extents at all: one hole over the whole file. */
  result_init (&res, 1 * MiB);
  check_list (&res, NULL, 0);
  ck_assert_uint_eq (res.nr_problems, 1);
  ck_assert_uint_eq (res.problems[0].offset, 0);
  ck_assert_uint_eq (res.problems[0].length, 1 * MiB);
  verify_result_free (&res);
}
END_TEST

START_TEST (test_check_flags)
{
  const struct verify_extent v[] = {
    ext (0, 1 * MiB, 64 * KiB, FIEMAP_EXTENT_NOT_ALIGNED),
    ext (64 * KiB, 2 * MiB, 64 * KiB, FIEMAP_EXTENT_SHARED),
    ext (128 * KiB, 0, 4 * KiB, FIEMAP_EXTENT_DATA_INLINE
         | FIEMAP_EXTENT_NOT_ALIGNED),
    ext (132 * KiB, 5 * MiB, 60 * KiB, FIEMAP_EXTENT_ENCODED
         | FIEMAP_EXTENT_SHARED),
  };
  struct verify_result res;

  result_init (&res, 192 * KiB);
  check_list (&res, v, 4);
  ck_assert_uint_eq (res.nr_problems, 5);
  ck_assert_int_eq (res.problems[0].code, VERIFY_NOT_ALIGNED);
  ck_assert_uint_eq (res.problems[0].offset, 0);
  ck_assert_uint_eq (res.problems[0].length, 64 * KiB);
  /* The inline extent is reported as inline, not also as misaligned. */
  ck_assert_int_eq (res.problems[1].code, VERIFY_SHARED);
  ck_assert_uint_eq (res.problems[1].offset, 64 * KiB);
  ck_assert_uint_eq (res.problems[1].length, 64 * KiB);
  ck_assert_int_eq (res.problems[2].code, VERIFY_INLINE);
  ck_assert_uint_eq (res.problems[2].offset, 128 * KiB);
  ck_assert_int_eq (res.problems[3].code, VERIFY_SHARED);
  ck_assert_uint_eq (res.problems[3].offset, 132 * KiB);
  ck_assert_int_eq (res.problems[4].code, VERIFY_ENCODED);
  verify_result_free (&res);
}
END_TEST

START_TEST (test_check_flag_codes)
{
  static const struct {
    uint32_t flags;
    enum verify_code code;
  } cases[] = {
    { FIEMAP_EXTENT_DELALLOC, VERIFY_DELALLOC },
    { FIEMAP_EXTENT_UNKNOWN, VERIFY_DELALLOC },
    { FIEMAP_EXTENT_UNWRITTEN, VERIFY_UNWRITTEN },
    { FIEMAP_EXTENT_SHARED, VERIFY_SHARED },
    { FIEMAP_EXTENT_DATA_INLINE, VERIFY_INLINE },
    { FIEMAP_EXTENT_DATA_TAIL, VERIFY_INLINE },
    { FIEMAP_EXTENT_ENCODED, VERIFY_ENCODED },
    { FIEMAP_EXTENT_DATA_ENCRYPTED, VERIFY_ENCRYPTED },
    { FIEMAP_EXTENT_NOT_ALIGNED, VERIFY_NOT_ALIGNED },
  };
  struct verify_result res;
  struct verify_extent e;
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    e = ext (0, 1 * MiB, 64 * KiB, cases[i].flags);
    result_init (&res, 64 * KiB);
    check_list (&res, &e, 1);
    ck_assert_uint_eq (res.nr_problems, 1);
    ck_assert_int_eq (res.problems[0].code, cases[i].code);
    ck_assert_int_eq (res.problems[0].severity, VERIFY_ERROR);
    ck_assert_int_eq (res.nr_errors, 1);
    verify_result_free (&res);
  }
  /* Flags that say nothing about the data are no problem. */
  e = ext (0, 1 * MiB, 64 * KiB, 0);
  result_init (&res, 64 * KiB);
  check_list (&res, &e, 1);
  ck_assert_uint_eq (res.nr_problems, 0);
  verify_result_free (&res);
}
END_TEST

START_TEST (test_check_cap)
{
  struct verify_extent v[20];
  struct verify_result res;
  size_t i;

  /* 20 holes: 4 KiB written, 4 KiB hole, ... */
  for (i = 0; i < 20; ++i)
    v[i] = ext (i * 8 * KiB, i * 1 * MiB, 4 * KiB, 0);
  result_init (&res, 160 * KiB);
  check_list (&res, v, 20);
  ck_assert_uint_eq (res.nr_problems, VERIFY_MAX_PER_CODE);
  ck_assert_uint_eq (res.nr_omitted, 20 - VERIFY_MAX_PER_CODE);
  verify_result_free (&res);
}
END_TEST

/* verify_same_map */

START_TEST (test_same_map)
{
  struct verify_extent a[] = {
    ext (0, 1 * MiB, 64 * KiB, 0), ext (64 * KiB, 3 * MiB, 64 * KiB, 0),
  };
  struct verify_extent b[2];
  struct verify_result ra = { .size = 128 * KiB, .extents = a,
                              .nr_extents = 2 };
  struct verify_result rb = { .size = 128 * KiB, .extents = b,
                              .nr_extents = 2 };

  memcpy (b, a, sizeof a);
  ck_assert (verify_same_map (&ra, &rb));
  b[1].physical += 4096;                      /* moved by a defrag */
  ck_assert (!verify_same_map (&ra, &rb));
  memcpy (b, a, sizeof a);
  b[0].flags = FIEMAP_EXTENT_SHARED;          /* shared by a snapshot */
  ck_assert (!verify_same_map (&ra, &rb));
  memcpy (b, a, sizeof a);
  rb.nr_extents = 1;
  ck_assert (!verify_same_map (&ra, &rb));
  rb.nr_extents = 2;
  rb.size = 256 * KiB;
  ck_assert (!verify_same_map (&ra, &rb));
}
END_TEST

/* mountinfo, options, octal escapes */

START_TEST (test_mountinfo_nfs)
{
  char line[] = "36 35 0:52 /export /mnt/my\\040swap rw,noatime shared:7 "
    "master:1 - nfs4 server:/export rw,vers=4.2,soft,proto=tcp\n";
  struct mountinfo_entry e;

  ck_assert_int_eq (mountinfo_parse_line (line, &e), 0);
  ck_assert_uint_eq (e.mount_id, 36);
  ck_assert_uint_eq (e.major, 0);
  ck_assert_uint_eq (e.minor, 52);
  ck_assert_str_eq (e.mount_point, "/mnt/my swap");
  ck_assert_str_eq (e.mount_options, "rw,noatime");
  ck_assert_str_eq (e.fs_type, "nfs4");
  ck_assert_str_eq (e.source, "server:/export");
  ck_assert_str_eq (e.super_options, "rw,vers=4.2,soft,proto=tcp");
  ck_assert (mount_has_option (e.super_options, "soft"));
  ck_assert (!mount_has_option (e.super_options, "hard"));
}
END_TEST

START_TEST (test_mountinfo_bad)
{
  char no_sep[] = "36 35 0:52 / /mnt rw shared:7 nfs4 srv:/ rw\n";
  char short_line[] = "36 35 0:52 /\n";
  char no_super[] = "36 35 0:52 / /mnt rw - nfs4 srv:/\n";
  char ok[] = "1 0 8:1 / / rw - ext4 /dev/sda1 rw,errors=remount-ro";
  struct mountinfo_entry e;

  ck_assert_int_eq (mountinfo_parse_line (no_sep, &e), -EINVAL);
  ck_assert_int_eq (mountinfo_parse_line (short_line, &e), -EINVAL);
  ck_assert_int_eq (mountinfo_parse_line (no_super, &e), -EINVAL);
  ck_assert_int_eq (mountinfo_parse_line (ok, &e), 0);
  ck_assert_uint_eq (e.major, 8);
  ck_assert_uint_eq (e.minor, 1);
  ck_assert_str_eq (e.super_options, "rw,errors=remount-ro");
}
END_TEST

START_TEST (test_mount_has_option)
{
  ck_assert (mount_has_option ("soft", "soft"));
  ck_assert (mount_has_option ("rw,soft", "soft"));
  ck_assert (mount_has_option ("soft,rw", "soft"));
  ck_assert (mount_has_option ("rw,timeo=600", "timeo"));
  ck_assert (!mount_has_option ("rw,softreval,hard", "soft"));
  ck_assert (!mount_has_option ("rw,nosoft", "soft"));
  ck_assert (!mount_has_option ("", "soft"));
  ck_assert (!mount_has_option (NULL, "soft"));
}
END_TEST

START_TEST (test_unescape)
{
  char s[] = "a\\040b\\134c\\011d\\9e\\04";

  unescape_octal (s);
  ck_assert_str_eq (s, "a b\\c\td\\9e\\04");
}
END_TEST

/* JSON strings */

START_TEST (test_json_string)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);

  ck_assert_ptr_nonnull (fp);
  json_print_string (fp, "a\"b\\c\n\x01\x7f/\xc3\xa9");
  fclose (fp);
  ck_assert_str_eq (buf, "\"a\\\"b\\\\c\\n\\u0001\\u007f/\xc3\xa9\"");
  free (buf);

  /* Bytes that are not UTF-8 (a Latin-1 file name, a cut sequence). */
  buf = NULL;
  fp = open_memstream (&buf, &len);
  json_print_string (fp, "caf\xe9 \xe2\x82\xac \xe2\x82 \xf0\x9f\x98\x80");
  fclose (fp);
  ck_assert_str_eq (buf, "\"caf\\ufffd \xe2\x82\xac \\ufffd\\ufffd "
                    "\xf0\x9f\x98\x80\"");
  free (buf);
}
END_TEST

START_TEST (test_json_result)
{
  struct verify_problem p = {
    .code = VERIFY_HOLE, .severity = VERIFY_ERROR, .offset = 4096,
    .length = 8192, .message = (char *) "m \"q\"", .fix = (char *) "f",
  };
  struct verify_extent e = ext (0, 1 * MiB, 4096, FIEMAP_EXTENT_SHARED);
  struct verify_result res = {
    .verdict = VERIFY_UNFIT, .path = (char *) "/x", .size = 12288,
    .min_size = 40960,
    .dio_alignment = 4096, .fs_type = "xfs", .fs_magic = 0x58465342,
    .extents_checked = true, .nr_errors = 1, .problems = &p,
    .nr_problems = 1, .extents = &e, .nr_extents = 1,
  };
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);

  verify_print_json (fp, &res);
  fclose (fp);
  ck_assert_str_eq (buf,
    "{\"path\":\"/x\",\"type\":\"regular\",\"size\":12288,"
    "\"min_size\":40960,"
    "\"dio_alignment\":4096,\"direct_checked\":false,"
    "\"filesystem\":\"xfs\",\"fs_magic\":\"0x58465342\","
    "\"mount_point\":null,\"mount_options\":null,\"limited\":false,"
    "\"extents_checked\":true,\"verdict\":\"unfit\",\"errors\":1,"
    "\"warnings\":0,\"omitted\":0,\"problems\":[{\"code\":\"hole\","
    "\"severity\":\"error\",\"offset\":4096,\"length\":8192,"
    "\"message\":\"m \\\"q\\\"\",\"fix\":\"f\"}],\"extents\":[{"
    "\"logical\":0,\"physical\":1048576,\"length\":4096,"
    "\"flags\":[\"shared\"]}]}\n");
  free (buf);
}
END_TEST

START_TEST (test_log_result)
{
  struct verify_problem p[2] = {
    { .code = VERIFY_HOLE, .severity = VERIFY_ERROR,
      .message = (char *) "f: a hole", .fix = (char *) "recreate" },
    { .code = VERIFY_PERMISSIONS, .severity = VERIFY_WARNING,
      .message = (char *) "f: mode", .fix = (char *) "chmod" },
  };
  struct verify_result res = {
    .verdict = VERIFY_UNFIT, .path = (char *) "f", .size = 16 * MiB,
    .fs_type = "nfs", .limited = true, .problems = p, .nr_problems = 2,
  };

  nr_warnings_logged = 0;
  verify_log_result (&res);
  ck_assert_str_eq (last_error, "f: a hole (fix: recreate)");
  ck_assert_int_eq (nr_warnings_logged, 1);
  ck_assert_str_eq (last_info, "f: UNFIT: nfs, 16.0 MiB, 0 extents (limited: "
                    "shared or compressed extents on the server cannot be "
                    "seen from here)");
}
END_TEST

/* /proc/swaps */

START_TEST (test_kernel_swap)
{
  char dir[] = "/tmp/nbdswap-unit.XXXXXX", file[256], other[256],
    swaps[256], name[256];
  struct stat st;
  bool active;
  FILE *fp;

  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (file, sizeof file, "%s/my swap", dir);
  snprintf (other, sizeof other, "%s/other", dir);
  snprintf (swaps, sizeof swaps, "%s/swaps", dir);
  fclose (fopen (file, "w"));
  fclose (fopen (other, "w"));
  fp = fopen (swaps, "w");
  fprintf (fp, "Filename\tType\tSize\tUsed\tPriority\n"
           "/dev/zram0                              partition\t8\t0\t100\n"
           "%s/my\\040swap                          file\t8\t0\t-2\n", dir);
  fclose (fp);

  ck_assert_int_eq (stat (file, &st), 0);
  ck_assert_int_eq (verify_find_kernel_swap (swaps, &st, &active, name,
                                             sizeof name), 0);
  ck_assert (active);
  ck_assert_str_eq (name, file);
  ck_assert_int_eq (stat (other, &st), 0);
  ck_assert_int_eq (verify_find_kernel_swap (swaps, &st, &active, name,
                                             sizeof name), 0);
  ck_assert (!active);
  unlink (file);
  unlink (other);
  unlink (swaps);
  rmdir (dir);
}
END_TEST

/* Whether res has a problem with code. */
static bool
has_code (const struct verify_result *res, enum verify_code code)
{
  size_t i;

  for (i = 0; i < res->nr_problems; ++i)
    if (res->problems[i].code == code)
      return true;
  return false;
}

/* The plugin's lock (owner_lock): an exclusive OFD write lock on the
 * whole file.  0 or -errno. */
static int
ofd_lock (int fd)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

  return fcntl (fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* The plugin's lock: seen through another open file description, not
 * through its own (so the plugin can re-verify through its fd). */
START_TEST (test_lock)
{
  char path[] = "/var/tmp/nbdswap-unit-lock.XXXXXX";
  struct verify_result res;
  int fd1, fd2;

  fd1 = mkstemp (path);
  ck_assert_int_ge (fd1, 0);
  fd2 = open (path, O_RDWR);
  ck_assert_int_ge (fd2, 0);
  ck_assert_int_eq (ftruncate (fd1, 64 * KiB), 0);

  ck_assert_int_eq (verify_fd (fd2, path, NULL, &res), 0);
  ck_assert (!has_code (&res, VERIFY_LOCKED));
  verify_result_free (&res);

  ck_assert_int_eq (ofd_lock (fd1), 0);
  ck_assert_int_eq (ofd_lock (fd2), -EAGAIN);
  ck_assert_int_eq (verify_fd (fd1, path, NULL, &res), 0);
  ck_assert (!has_code (&res, VERIFY_LOCKED));
  verify_result_free (&res);
  ck_assert_int_eq (verify_fd (fd2, path, NULL, &res), 0);
  ck_assert (has_code (&res, VERIFY_LOCKED));
  ck_assert_int_eq (res.verdict, VERIFY_UNFIT);
  verify_result_free (&res);

  close (fd1);                  /* closing the description drops it */
  ck_assert_int_eq (ofd_lock (fd2), 0);
  close (fd2);
  unlink (path);
}
END_TEST

/* create_file: refusals and cancellation leave nothing behind. */

START_TEST (test_create_refusals)
{
  static volatile sig_atomic_t cancel = 1;
  char dir[] = "/var/tmp/nbdswap-unit.XXXXXX", file[256];
  struct create_options opts;
  struct verify_result res;

  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (file, sizeof file, "%s/swap", dir);
  create_options_init (&opts);

  ck_assert_int_eq (create_file (file, 4095 * 4, &opts, &res), -EINVAL);
  ck_assert_int_eq (create_file (file, 36 * KiB, &opts, &res), -EINVAL);
  ck_assert_int_eq (access (file, F_OK), -1);

  opts.cancel = &cancel;
  ck_assert_int_eq (create_file (file, 1 * MiB, &opts, &res), -ECANCELED);
  ck_assert_int_eq (access (file, F_OK), -1);

  fclose (fopen (file, "w"));
  opts.cancel = NULL;
  ck_assert_int_eq (create_file (file, 1 * MiB, &opts, &res), -EEXIST);
  ck_assert (strstr (last_error, "already exists: not overwriting it "
                     "without --force") != NULL);
  unlink (file);

  ck_assert_int_eq (create_file (file, (uint64_t) 1 << 60, &opts, &res),
                    -ENOSPC);
  ck_assert (strstr (last_error, "not enough free space") != NULL);
  ck_assert_int_eq (access (file, F_OK), -1);
  rmdir (dir);
}
END_TEST

/* create_in_dir: every refusal before a write leaves the directory as it
 * was; a name that exists is skipped and the others made; progress sees
 * the batch as one. */

/* The last progress report and how many reported done == total. */
static struct create_progress last_progress;
static int nr_progress_complete;

static void
record_progress (const struct create_progress *p, void *opaque)
{
  ck_assert_uint_le (p->done, p->total);
  last_progress = *p;
  nr_progress_complete += p->done == p->total;
}

/* Fills items with names; returns n. */
static size_t
name_items (struct create_item *items, const char *const *names, size_t n)
{
  size_t i;

  for (i = 0; i < n; ++i)
    items[i].name = names[i];
  return n;
}

/* The number of entries in dir besides . and ..  */
static int
count_entries (const char *dir)
{
  char cmd[300];
  FILE *fp;
  int n = -1;

  snprintf (cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
  fp = popen (cmd, "r");
  ck_assert_ptr_nonnull (fp);
  ck_assert_int_eq (fscanf (fp, "%d", &n), 1);
  pclose (fp);
  return n;
}

START_TEST (test_create_dir_refusals)
{
  static const char *const bad[] = { "ok", "a/b", ".", "..", "", "ok" };
  static const char *const two[] = { "one", "two" };
  char dir[] = "/var/tmp/nbdswap-unit.XXXXXX", file[300];
  struct create_item items[6];
  struct create_options opts;

  ck_assert_ptr_nonnull (mkdtemp (dir));
  create_options_init (&opts);
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, bad, 6),
                                   1 * MiB, &opts), -EINVAL);
  ck_assert (strstr (last_error, "'ok': given twice") != NULL);
  create_items_free (items, 6);
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, two, 2),
                                   36 * KiB, &opts), -EINVAL);
  create_items_free (items, 2);
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, two, 2),
                                   (uint64_t) 1 << 60, &opts), -ENOSPC);
  ck_assert (strstr (last_error, "not enough free space for 2 files")
             != NULL);
  create_items_free (items, 2);
  ck_assert_int_eq (count_entries (dir), 0);

  snprintf (file, sizeof file, "%s/missing", dir);
  ck_assert_int_eq (create_in_dir (file, items, name_items (items, two, 2),
                                   1 * MiB, &opts), -ENOENT);
  ck_assert (strstr (last_error, "no such directory: create it first") !=
             NULL);
  create_items_free (items, 2);
  snprintf (file, sizeof file, "%s/file", dir);
  fclose (fopen (file, "w"));
  ck_assert_int_eq (create_in_dir (file, items, name_items (items, two, 2),
                                   1 * MiB, &opts), -ENOTDIR);
  create_items_free (items, 2);
  unlink (file);
  ck_assert_int_eq (count_entries (dir), 0);
  rmdir (dir);
}
END_TEST

START_TEST (test_create_dir_batch)
{
  static volatile sig_atomic_t cancel = 1;
  static const char *const names[] = { "a", "b", "c" };
  char dir[] = "/var/tmp/nbdswap-unit.XXXXXX", file[300];
  struct create_item items[3];
  struct create_options opts;
  struct stat st;

  ck_assert_ptr_nonnull (mkdtemp (dir));
  create_options_init (&opts);
  opts.progress = record_progress;
  snprintf (file, sizeof file, "%s/b", dir);
  fclose (fopen (file, "w"));
  nr_progress_complete = 0;
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, names, 3),
                                   1 * MiB, &opts), 0);
  ck_assert_int_eq (items[0].state, CREATE_MADE);
  ck_assert_int_eq (items[1].state, CREATE_SKIPPED);
  ck_assert_int_eq (items[1].err, -EEXIST);
  ck_assert (strstr (last_error, "/b: already exists: skipped") != NULL);
  ck_assert_int_eq (items[2].state, CREATE_MADE);
  ck_assert_uint_eq (last_progress.total, 2 * MiB);
  ck_assert_uint_eq (last_progress.done, 2 * MiB);
  ck_assert_int_eq (nr_progress_complete, 1);
  ck_assert_int_eq (stat (items[2].path, &st), 0);
  ck_assert_int_eq (st.st_size, 1 * MiB);
  ck_assert_int_eq (stat (file, &st), 0);
  ck_assert_int_eq (st.st_size, 0);             /* left alone */
  create_items_free (items, 3);

  /* With force, every name is made, b replaced. */
  opts.force = true;
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, names, 3),
                                   1 * MiB, &opts), 0);
  ck_assert_int_eq (items[1].state, CREATE_MADE);
  ck_assert_uint_eq (last_progress.total, 3 * MiB);
  ck_assert_int_eq (stat (file, &st), 0);
  ck_assert_int_eq (st.st_size, 1 * MiB);
  create_items_free (items, 3);

  /* Cancelled: nothing more is made (create_file removes the file it was
   * making; test_create_refusals checks that). */
  for (size_t i = 0; i < 3; ++i) {
    snprintf (file, sizeof file, "%s/%s", dir, names[i]);
    unlink (file);
  }
  opts.cancel = &cancel;
  ck_assert_int_eq (create_in_dir (dir, items, name_items (items, names, 3),
                                   1 * MiB, &opts), -ECANCELED);
  ck_assert_int_eq (items[0].state, CREATE_PENDING);
  ck_assert_int_eq (count_entries (dir), 0);
  create_items_free (items, 3);
  rmdir (dir);
}
END_TEST

START_TEST (test_expand_fix)
{
  struct verify_result res = {
    .path = (char *) "/srv/swap", .size = 16 * MiB + 100,
    .dio_alignment = 4096, .min_size = 40960,
  };
  char *f;

  f = verify_expand_fix (&res, "nbdswap create FILE SIZE --force; "
                         "FILE.new, FILES, NEWFILE, DEVICE");
  ck_assert_str_eq (f, "nbdswap create /srv/swap 16388K --force; "
                    "/srv/swap.new, FILES, NEWFILE, /srv/swap");
  free (f);

  res.path = (char *) "/mnt/my swap's";
  res.size = 2 * 1024 * MiB;
  f = verify_expand_fix (&res, "chmod 0600 FILE; SIZE");
  ck_assert_str_eq (f, "chmod 0600 '/mnt/my swap'\\''s'; 2G");
  free (f);

  res.size = 4096;                            /* too small: the minimum */
  f = verify_expand_fix (&res, "SIZE");
  ck_assert_str_eq (f, "40K");
  free (f);

  res.size = 0;                               /* no size to suggest */
  f = verify_expand_fix (&res, "create FILE SIZE");
  ck_assert_str_eq (f, "create '/mnt/my swap'\\''s' SIZE");
  free (f);
}
END_TEST

START_TEST (test_human_size)
{
  char h[32];

  ck_assert_str_eq (verify_human_size (1023, h, sizeof h), "1023 bytes");
  ck_assert_str_eq (verify_human_size (1024, h, sizeof h), "1.0 KiB");
  ck_assert_str_eq (verify_human_size (16 * MiB, h, sizeof h), "16.0 MiB");
  ck_assert_str_eq (verify_human_size (3ULL << 40, h, sizeof h), "3.0 TiB");
}
END_TEST

/* Every test in one case: all are fast. */
static Suite *
verify_suite (void)
{
  Suite *s = suite_create ("verify");
  TCase *tc = tcase_create ("logic");

  tcase_add_test (tc, test_parse_size_ok);
  tcase_add_test (tc, test_parse_size_bad);
  tcase_add_test (tc, test_extent_merge);
  tcase_add_test (tc, test_check_hole_and_unwritten);
  tcase_add_test (tc, test_check_tail_hole_and_eof);
  tcase_add_test (tc, test_check_flags);
  tcase_add_test (tc, test_check_flag_codes);
  tcase_add_test (tc, test_check_cap);
  tcase_add_test (tc, test_same_map);
  tcase_add_test (tc, test_mountinfo_nfs);
  tcase_add_test (tc, test_mountinfo_bad);
  tcase_add_test (tc, test_mount_has_option);
  tcase_add_test (tc, test_unescape);
  tcase_add_test (tc, test_json_string);
  tcase_add_test (tc, test_json_result);
  tcase_add_test (tc, test_log_result);
  tcase_add_test (tc, test_kernel_swap);
  tcase_add_test (tc, test_lock);
  tcase_add_test (tc, test_create_refusals);
  tcase_add_test (tc, test_create_dir_refusals);
  tcase_add_test (tc, test_create_dir_batch);
  tcase_add_test (tc, test_expand_fix);
  tcase_add_test (tc, test_human_size);
  suite_add_tcase (s, tc);
  return s;
}

/* Runs the suite with the log captured. */
int
main (void)
{
  log_set_sink (capture_sink);
  return check_run (verify_suite ());
}
