/* Unit tests: the backing file module (lib/backing.c), the start-up that
 * both servers share.  Files live under /var/tmp: tmpfs may lack
 * O_DIRECT. */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backing.h"
#include "create.h"
#include "log.h"
#include "../check-run.h"

#define MiB (1024 * 1024)

static char dir[64], file[128], last_error[LOG_LINE_MAX];
static unsigned extra_calls;
static struct backing b;

/* Keep the last error line; drop the rest. */
static void
capture_sink (enum log_level level, const char *line)
{
  if (level == LOG_LEVEL_ERROR)
    snprintf (last_error, sizeof last_error, "%s", line);
}

/* A front end's extra stats lines: only counted. */
static void
count_extra (void)
{
  extra_calls++;
}

static void
setup (void)
{
  snprintf (dir, sizeof dir, "/var/tmp/nbdswap-backing.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (file, sizeof file, "%s/swap", dir);
  last_error[0] = '\0';
  backing_init (&b);
  b.path = file;
}

static void
teardown (void)
{
  char cmd[128];

  backing_close (&b);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq (system (cmd), 0);
}

/* A file of len bytes of data (not a fit swap file: no verification). */
static void
write_file (const char *path, size_t len)
{
  static char page[4096];
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  ck_assert_int_ge (fd, 0);
  memset (page, 0x5a, sizeof page);
  for (size_t done = 0; done < len; done += sizeof page) {
    size_t n = len - done < sizeof page ? len - done : sizeof page;
    ck_assert_int_eq (write (fd, page, n), (ssize_t) n);
  }
  close (fd);
}

/* A fit swap file, as 'nbdswap create' makes it. */
static void
create_fit (const char *path)
{
  struct create_options opts;
  struct verify_result res;

  create_options_init (&opts);
  ck_assert_int_eq (create_file (path, 16 * MiB, &opts, &res), 0);
  ck_assert_int_eq (res.verdict, VERIFY_FIT);
  verify_result_free (&res);
}

/* The text a refusal must contain. */
static void
assert_said (const char *want)
{
  ck_assert_msg (strstr (last_error, want) != NULL,
                 "logged \"%s\", wanted \"%s\"", last_error, want);
}

START_TEST (test_missing)
{
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said ("swap: no such file: create it with 'nbdswap create ");
  ck_assert_int_eq (b.fd, -1);
}
END_TEST

/* A directory (EISDIR) and a FIFO (O_DIRECT refused: EINVAL) are named
 * for what they are, not blamed on the filesystem. */
START_TEST (test_not_regular)
{
  b.path = dir;
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said (": is neither a regular file nor a block device: give a "
               "swap backing file made by 'nbdswap create'");
  ck_assert_int_eq (mkfifo (file, 0600), 0);
  b.path = file;
  last_error[0] = '\0';
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said ("swap: is neither a regular file nor a block device");
  b.direct = false;             /* open succeeds: the size check says it */
  last_error[0] = '\0';
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said ("swap: is neither a regular file nor a block device");
}
END_TEST

START_TEST (test_size)
{
  write_file (file, 0);
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said ("swap: size 0 is zero: recreate it with 'nbdswap create ");
  backing_close (&b);
  write_file (file, 3 * 4096 + 512);
  ck_assert_int_eq (backing_open (&b), BACKING_UNFIT);
  assert_said ("swap: size 12800 is not a whole number of 4 KiB pages and "
               "O_DIRECT blocks");
  backing_close (&b);
  write_file (file, 4 * 4096);
  ck_assert_int_eq (backing_open (&b), BACKING_OK);
  ck_assert_uint_eq (b.size, 4 * 4096);
  ck_assert (b.writable);
  ck_assert_uint_ge (b.dio.offset, 512);
}
END_TEST

/* One server per file: a second claim names the first's PID (another
 * process: the lookup passes over its own). */
START_TEST (test_claim)
{
  struct backing first;
  int ready[2];
  char want[128], c;
  pid_t child;

  create_fit (file);
  ck_assert_int_eq (pipe (ready), 0);
  child = fork ();
  ck_assert_int_ge (child, 0);
  if (child == 0) {
    backing_init (&first);
    first.path = file;
    if (backing_open (&first) != BACKING_OK
        || backing_claim (&first) != BACKING_OK
        || write (ready[1], "y", 1) != 1)
      _exit (1);                /* the parent reads end-of-file */
    pause ();
    _exit (0);
  }
  close (ready[1]);
  ck_assert_int_eq (read (ready[0], &c, 1), 1);
  close (ready[0]);
  ck_assert_int_eq (backing_open (&b), BACKING_OK);
  ck_assert_int_eq (backing_claim (&b), BACKING_UNFIT);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  snprintf (want, sizeof want, "swap: already served by another process "
            "(PID %d): one swap file must have one server", (int) child);
  assert_said (want);
  ck_assert (!b.have_verified);
  backing_close (&b);
  ck_assert_int_eq (backing_open (&b), BACKING_OK);
  ck_assert_int_eq (backing_claim (&b), BACKING_OK);
  ck_assert (b.have_verified);
  ck_assert_int_eq (b.verified.verdict, VERIFY_FIT);
}
END_TEST

/* An unfit file is refused after the verification, with its count. */
START_TEST (test_unfit)
{
  int fd = open (file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, 16 * MiB), 0);   /* all hole */
  close (fd);
  ck_assert_int_eq (backing_open (&b), BACKING_OK);
  ck_assert_int_eq (backing_claim (&b), BACKING_UNFIT);
  assert_said ("swap: refusing to serve: the file is not fit for swap (");
  assert_said ("'nbdswap verify ");
}
END_TEST

/* Which exports share the kernel's bio pool with this machine's
 * swap-outs: files on ext4, xfs (and their kin), a block device whose
 * node is elsewhere than /dev or that is made of a loop device; not a
 * block device by /dev's node, btrfs, NFS or a filesystem not known
 * to; nothing before the claim. */
START_TEST (test_shares_pool)
{
  static const struct {
    const char *fs; int type; const char *loop; const char *what;
  } cases[] = {
    { "ext4", VERIFY_TYPE_REGULAR, "", "a file on ext4" },
    { "xfs", VERIFY_TYPE_REGULAR, "", "a file on xfs" },
    { "ext4", VERIFY_TYPE_BLOCK_DEVICE, "", "a block device node on ext4, "
      "where every read and write updates the node's times" },
    { "tmpfs", VERIFY_TYPE_BLOCK_DEVICE, "", NULL },
    { "devtmpfs", VERIFY_TYPE_BLOCK_DEVICE, "", NULL },
    { "tmpfs", VERIFY_TYPE_BLOCK_DEVICE, "loop3", "a block device over "
      "loop3, whose I/O goes to a file" },
    { "btrfs", VERIFY_TYPE_REGULAR, "", NULL },
    { "nfs4", VERIFY_TYPE_REGULAR, "", NULL },
    { "fuse.sshfs", VERIFY_TYPE_REGULAR, "", NULL },
    { "ext", VERIFY_TYPE_REGULAR, "", NULL },
  };
  char what[160];

  ck_assert (!backing_shares_swap_pool (&b, what, sizeof what));
  create_fit (file);
  ck_assert_int_eq (backing_open (&b), BACKING_OK);
  ck_assert_int_eq (backing_claim (&b), BACKING_OK);
  ck_assert_str_eq (b.over_loop, "");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf (b.verified.fs_type, sizeof b.verified.fs_type, "%s",
              cases[i].fs);
    b.verified.type = cases[i].type;
    snprintf (b.over_loop, sizeof b.over_loop, "%s", cases[i].loop);
    what[0] = '\0';
    ck_assert_msg (backing_shares_swap_pool (&b, what, sizeof what)
                   == (cases[i].what != NULL), "case %zu (%s)", i,
                   cases[i].fs);
    if (cases[i].what != NULL)
      ck_assert_str_eq (what, cases[i].what);
    /* The inline choice never for a file (its descriptor here). */
    ck_assert (!backing_own_bio_pool (&b));
  }
}
END_TEST

/* The stats report: the front end's lines, and one wording for a stats
 * file that cannot be written. */
START_TEST (test_stats)
{
  char path[160];
  struct stat st;

  snprintf (path, sizeof path, "%s/missing/s.json", dir);
  b.stats_path = path;
  b.report_extra = count_extra;
  backing_report_stats (&b);
  ck_assert_uint_eq (extra_calls, 1);
  assert_said ("stats-file: ");
  assert_said ("/missing/s.json: No such file or directory");
  snprintf (path, sizeof path, "%s/s.json", dir);
  backing_report_stats (&b);
  ck_assert_uint_eq (extra_calls, 2);
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_int_gt (st.st_size, 0);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("backing");
  TCase *tc = tcase_create ("start");

  log_set_sink (capture_sink);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_missing);
  tcase_add_test (tc, test_not_regular);
  tcase_add_test (tc, test_size);
  tcase_add_test (tc, test_claim);
  tcase_add_test (tc, test_unfit);
  tcase_add_test (tc, test_stats);
  tcase_add_test (tc, test_shares_pool);
  suite_add_tcase (s, tc);
  return check_run (s);
}
