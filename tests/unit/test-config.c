/* Unit tests: the plugin's parameter parser, and nbdkit's --log as the
 * plugin reads it from nbdkit's command line. */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "swapfile-config.h"
#include "../check-run.h"

static struct swapfile_config c;
static char err[512];

static void
setup (void)
{
  config_init (&c);
  err[0] = '\0';
}

static void
teardown (void)
{
  config_free (&c);
}

START_TEST (test_defaults)
{
  ck_assert_int_eq (c.engine, ENGINE_AUTO);
  ck_assert (c.direct);
  ck_assert_uint_eq (c.queue_depth, CONFIG_QUEUE_DEPTH_DEFAULT);
  ck_assert_uint_eq (c.workers, CONFIG_WORKERS_DEFAULT);
  ck_assert_ptr_null (c.file);
}
END_TEST

START_TEST (test_file_required)
{
  ck_assert_int_eq (config_check (&c, err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "file="));
  ck_assert_int_eq (config_set (&c, "file", "/srv/a.img", err, sizeof err), 0);
  ck_assert_str_eq (c.file, "/srv/a.img");
  ck_assert_int_eq (config_check (&c, err, sizeof err), 0);
  ck_assert_int_eq (config_set (&c, "file", "", err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "empty"));
  ck_assert_int_eq (config_set (&c, "stats-file", "/run/a.stats", err,
                                sizeof err), 0);
  ck_assert_str_eq (c.stats_file, "/run/a.stats");
  ck_assert_str_eq (c.file, "/srv/a.img");
  ck_assert_int_eq (config_set (&c, "stats-file", "", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "stats-file: the file name is empty"));
}
END_TEST

START_TEST (test_engine)
{
  ck_assert_int_eq (config_set (&c, "engine", "pread", err, sizeof err), 0);
  ck_assert_int_eq (c.engine, ENGINE_PREAD);
  ck_assert_int_eq (config_set (&c, "engine", "io_uring", err, sizeof err), 0);
  ck_assert_int_eq (c.engine, ENGINE_IO_URING);
  ck_assert_int_eq (config_set (&c, "engine", "aio", err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "engine=aio"));
  ck_assert_ptr_nonnull (strstr (err, "engine=auto"));
  ck_assert_int_eq (c.engine, ENGINE_IO_URING);  /* unchanged on error */
  ck_assert_str_eq (config_engine_name (ENGINE_AUTO), "auto");
}
END_TEST

START_TEST (test_direct)
{
  ck_assert_int_eq (config_set (&c, "direct", "false", err, sizeof err), 0);
  ck_assert (!c.direct);
  ck_assert_int_eq (config_set (&c, "direct", "ON", err, sizeof err), 0);
  ck_assert (c.direct);
  ck_assert_int_eq (config_set (&c, "direct", "maybe", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "direct=maybe"));
  ck_assert (c.mlock);
  ck_assert_int_eq (config_set (&c, "mlock", "no", err, sizeof err), 0);
  ck_assert (!c.mlock);
  ck_assert_int_eq (config_set (&c, "mlock", "2", err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "mlock=2: not a boolean"));
}
END_TEST

START_TEST (test_numbers)
{
  ck_assert_int_eq (config_set (&c, "queue-depth", "32", err, sizeof err), 0);
  ck_assert_uint_eq (c.queue_depth, 32);
  ck_assert_int_eq (config_set (&c, "queue-depth", "33", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "power of two"));
  ck_assert_int_eq (config_set (&c, "queue-depth", "0", err, sizeof err),
                    -EINVAL);
  ck_assert_int_eq (config_set (&c, "queue-depth", "-8", err, sizeof err),
                    -EINVAL);
  ck_assert_int_eq (config_set (&c, "queue-depth", "8k", err, sizeof err),
                    -EINVAL);
  ck_assert_int_eq (config_set (&c, "queue-depth", "2048", err, sizeof err),
                    -EINVAL);
  ck_assert_int_eq (config_set (&c, "workers", "4", err, sizeof err), 0);
  ck_assert_uint_eq (c.workers, 4);
  ck_assert_int_eq (config_set (&c, "workers", "99999999999999999999",
                                err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "workers="));
  ck_assert_uint_eq (c.recheck, CONFIG_RECHECK_DEFAULT);
  ck_assert_int_eq (config_set (&c, "recheck", "0", err, sizeof err), 0);
  ck_assert_uint_eq (c.recheck, 0);
  ck_assert_uint_eq (c.retry_timeout, CONFIG_RETRY_TIMEOUT_DEFAULT);
  ck_assert_int_eq (config_set (&c, "retry-timeout", "5", err, sizeof err), 0);
  ck_assert_uint_eq (c.retry_timeout, 5);
  ck_assert_uint_eq (c.recheck, 0);
  ck_assert_int_eq (config_set (&c, "retry-timeout", "1m", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "retry-timeout=1m: must be a number "
                                 "of seconds"));
  ck_assert_int_eq (config_set (&c, "recheck", "86401", err, sizeof err),
                    -EINVAL);
  ck_assert (c.retry_eio);
  ck_assert_int_eq (config_set (&c, "retry-eio", "false", err, sizeof err), 0);
  ck_assert (!c.retry_eio);
  ck_assert_int_eq (config_set (&c, "retry-eio", "maybe", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "retry-eio=maybe: not a boolean"));
}
END_TEST

/* allow=: parsing, and matching IPv4, IPv6, mapped and unix peers. */
START_TEST (test_allow)
{
  struct sockaddr_in v4 = { .sin_family = AF_INET };
  struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
  struct sockaddr_un un = { .sun_family = AF_UNIX };

  inet_pton (AF_INET, "192.0.2.77", &v4.sin_addr);
  ck_assert (acl_allows (&c.allow, (struct sockaddr *) &v4)); /* empty */
  ck_assert_int_eq (config_set (&c, "allow", "10.0.0.0/8,192.0.2.64/27",
                                err, sizeof err), 0);
  ck_assert_uint_eq (c.allow.n, 2);
  ck_assert (acl_allows (&c.allow, (struct sockaddr *) &v4));
  inet_pton (AF_INET, "192.0.2.96", &v4.sin_addr);            /* /27 edge */
  ck_assert (!acl_allows (&c.allow, (struct sockaddr *) &v4));
  inet_pton (AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr);     /* mapped */
  ck_assert (acl_allows (&c.allow, (struct sockaddr *) &v6));
  inet_pton (AF_INET6, "2001:db8::1", &v6.sin6_addr);
  ck_assert (!acl_allows (&c.allow, (struct sockaddr *) &v6));
  ck_assert (acl_allows (&c.allow, (struct sockaddr *) &un));
  ck_assert_int_eq (config_set (&c, "allow", "2001:db8::/32", err,
                                sizeof err), 0);
  ck_assert (acl_allows (&c.allow, (struct sockaddr *) &v6));
  ck_assert_int_eq (config_set (&c, "allow", "10.0.0.0/33", err,
                                sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "'10.0.0.0/33' is not an address"));
  ck_assert_int_eq (config_set (&c, "allow", "example.com", err,
                                sizeof err), -EINVAL);
}
END_TEST

/* dir=: one of file= and dir=, never both; allow=NAME=CIDR only with
 * dir=, split at the last '=' (a file name may hold one). */
START_TEST (test_dir)
{
  ck_assert_int_eq (config_set (&c, "dir", "", err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "dir: the directory name is empty"));
  ck_assert_int_eq (config_set (&c, "dir", "/srv/fleet", err, sizeof err), 0);
  ck_assert_str_eq (c.dir, "/srv/fleet");
  ck_assert_int_eq (config_check (&c, err, sizeof err), 0);
  ck_assert_int_eq (config_set (&c, "file", "/srv/a.img", err, sizeof err), 0);
  ck_assert_int_eq (config_check (&c, err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "file=/srv/a.img and dir=/srv/fleet "
                                 "exclude each other"));

  ck_assert_int_eq (config_set (&c, "allow", "a=b=10.0.0.0/8,192.0.2.1", err,
                                sizeof err), 0);
  ck_assert_uint_eq (c.nr_export_allow, 1);
  ck_assert_str_eq (c.export_allow[0].name, "a=b");
  ck_assert_str_eq (c.export_allow[0].nets, "10.0.0.0/8,192.0.2.1");
  ck_assert_uint_eq (c.allow.n, 0);     /* not the global list */
  ck_assert_int_eq (config_set (&c, "allow", "a=x", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "'x' is not an address"));
  ck_assert_int_eq (config_set (&c, "allow", "=10.0.0.1", err, sizeof err),
                    -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "give NAME=CIDR"));
  ck_assert_int_eq (config_set (&c, "allow", "a=", err, sizeof err), -EINVAL);
  ck_assert_uint_eq (c.nr_export_allow, 1);
  free (c.dir);
  c.dir = NULL;
  ck_assert_int_eq (config_check (&c, err, sizeof err), -EINVAL);
  ck_assert_ptr_nonnull (strstr (err, "allow=a=b=10.0.0.0/8,192.0.2.1: a "
                                 "per-export list is for the exports of "
                                 "dir="));
}
END_TEST

START_TEST (test_unknown_key)
{
  ck_assert_int_eq (config_set (&c, "size", "1G", err, sizeof err), -ENOENT);
  ck_assert_ptr_nonnull (strstr (err, "size=1G"));
  ck_assert_ptr_nonnull (strstr (err, "unknown parameter"));
}
END_TEST

/* log_dest_from_cmdline on a literal holding NUL-separated arguments
 * (sizeof - 1: the literal's own final NUL is not part of it). */
#define DEST(lit) log_dest_from_cmdline (lit, sizeof lit - 1)

START_TEST (test_nbdkit_log)
{
  ck_assert_int_eq (DEST ("nbdkit\0-f\0plugin.so\0file=x\0"), LOG_DEST_AUTO);
  ck_assert_int_eq (DEST ("nbdkit\0--log=syslog\0plugin.so\0"), LOG_DEST_SYSLOG);
  ck_assert_int_eq (DEST ("nbdkit\0--log\0stderr\0plugin.so\0"), LOG_DEST_STDERR);
  ck_assert_int_eq (DEST ("nbdkit\0--log=null\0"), LOG_DEST_NULL);
  ck_assert_int_eq (DEST ("nbdkit\0--log=auto\0"), LOG_DEST_AUTO);
  /* The last one counts. */
  ck_assert_int_eq (DEST ("nbdkit\0--log=null\0--log=syslog\0"), LOG_DEST_SYSLOG);
  /* Not the option: a plugin parameter, a prefix, a value elsewhere. */
  ck_assert_int_eq (DEST ("nbdkit\0plugin.so\0log=syslog\0"), LOG_DEST_AUTO);
  ck_assert_int_eq (DEST ("nbdkit\0--logx=syslog\0"), LOG_DEST_AUTO);
  /* Cut short: "--log" with no value, an argument without its NUL. */
  ck_assert_int_eq (DEST ("nbdkit\0--log\0"), LOG_DEST_AUTO);
  ck_assert_int_eq (DEST ("nbdkit\0--log\0sysl"), LOG_DEST_AUTO);
  ck_assert_int_eq (DEST ("nbdkit\0--log=syslog"), LOG_DEST_AUTO);
  ck_assert_int_eq (log_dest_from_cmdline ("", 0), LOG_DEST_AUTO);
}
END_TEST

/* A client's text in a log line: printable ASCII kept, the rest (a
 * newline that would start a forged line, escapes, high bytes) as \xNN,
 * cut whole at the buffer's end. */
START_TEST (test_log_escape)
{
  char out[32];

  ck_assert_str_eq (log_escape ("swap-1.img", out, sizeof out), "swap-1.img");
  ck_assert_str_eq (log_escape ("a\nnbdswap: x", out, sizeof out),
                    "a\\x0anbdswap: x");
  ck_assert_str_eq (log_escape ("\x1b[2J\\\xff", out, sizeof out),
                    "\\x1b[2J\\x5c\\xff");
  ck_assert_str_eq (log_escape ("abc\n", out, 6), "abc");
  ck_assert_str_eq (log_escape ("abcdefgh", out, 6), "abcde");
  ck_assert_str_eq (log_escape ("", out, sizeof out), "");
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("config");
  TCase *tc = tcase_create ("parse");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_defaults);
  tcase_add_test (tc, test_file_required);
  tcase_add_test (tc, test_engine);
  tcase_add_test (tc, test_direct);
  tcase_add_test (tc, test_numbers);
  tcase_add_test (tc, test_allow);
  tcase_add_test (tc, test_dir);
  tcase_add_test (tc, test_unknown_key);
  tcase_add_test (tc, test_nbdkit_log);
  tcase_add_test (tc, test_log_escape);
  suite_add_tcase (s, tc);
  return check_run (s);
}
