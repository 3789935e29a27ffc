/* Unit tests: the set of exports (lib/exports.c).  Who may open what
 * (TLS-PSK identities, per-export allow lists), and a real directory
 * under /var/tmp (tmpfs may lack O_DIRECT): fit files served, an unfit
 * one refused once, a locked one retried, a removed one dropped while a
 * client holds it. */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "create.h"
#include "exports.h"
#include "log.h"
#include "../check-run.h"

#define MiB (1024 * 1024)

static char dir[64];
static unsigned errors;                 /* error lines logged */
static char last_error[LOG_LINE_MAX];
static unsigned pool_warnings;          /* exports_attach's shared-pool */
static char pool_warning[LOG_LINE_MAX];

static void
capture_sink (enum log_level level, const char *line)
{
  if (level == LOG_LEVEL_ERROR) {
    errors++;
    snprintf (last_error, sizeof last_error, "%s", line);
  }
  if (level == LOG_LEVEL_WARNING && strstr (line, "whose direct I/O") != NULL) {
    pool_warnings++;
    snprintf (pool_warning, sizeof pool_warning, "%s", line);
  }
}

static void
setup (void)
{
  snprintf (dir, sizeof dir, "/var/tmp/nbdswap-exports.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (dir));
  errors = 0;
  last_error[0] = '\0';
  pool_warnings = 0;
  pool_warning[0] = '\0';
}

static void
teardown (void)
{
  char cmd[128];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq (system (cmd), 0);
}

/* A set configured as the native server configures it. */
static void
set_init (struct exports *s, bool psk)
{
  struct exports_config c = {
    .dir = dir, .read_write_only = "test", .no_direct_fix = "",
    .retry = { 60, true }, .psk = psk,
  };

  exports_init (s, &c);
}

/* DIR/name, fit (as 'nbdswap create' makes it). */
static void
create_fit (const char *name)
{
  struct create_options opts;
  struct verify_result res;
  char path[128];

  snprintf (path, sizeof path, "%s/%s", dir, name);
  create_options_init (&opts);
  ck_assert_int_eq (create_file (path, 4 * MiB, &opts, &res), 0);
  ck_assert_int_eq (res.verdict, VERIFY_FIT);
  verify_result_free (&res);
}

/* DIR/name, sparse (a hole: unfit). */
static void
create_sparse (const char *name)
{
  char path[128];
  int fd;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (ftruncate (fd, 4 * MiB), 0);
  close (fd);
}

static void
remove_file (const char *name)
{
  char path[128];

  snprintf (path, sizeof path, "%s/%s", dir, name);
  ck_assert_int_eq (unlink (path), 0);
}

/* An IPv4 client address. */
static struct sockaddr_in
ipv4 (const char *addr)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };

  ck_assert_int_eq (inet_pton (AF_INET, addr, &sin.sin_addr), 1);
  return sin;
}

/* A name fn collects into a space-separated list. */
static int
collect (void *arg, const char *name)
{
  char *buf = arg;

  if (buf[0])
    strcat (buf, " ");
  strcat (buf, name);
  return 0;
}

/* The names this client may open, as NBD_OPT_LIST would give them. */
static const char *
listed (struct exports *s, const struct export_client *who)
{
  static char buf[256];

  buf[0] = '\0';
  ck_assert_int_eq (exports_list (s, who, collect, buf), 0);
  return buf;
}

/* May the client open the export called name (a served one)? */
static bool
may (struct exports *s, const char *name, const struct export_client *who)
{
  bool exists;
  struct export *x = exports_get (s, name, who, &exists);

  ck_assert (exists);
  exports_put (s, x);
  return x != NULL;
}

/* TLS-PSK: an identity opens the export of its name, and no other. */
START_TEST (test_psk_identity)
{
  struct exports s;
  struct sockaddr_in lo = ipv4 ("127.0.0.1");
  struct export_client a = { "alpha", (struct sockaddr *) &lo, NULL, 0 };
  struct export_client b = { "bravo", (struct sockaddr *) &lo, NULL, 0 };
  struct export_client none = { NULL, (struct sockaddr *) &lo, NULL, 0 };

  set_init (&s, true);
  create_fit ("alpha");
  create_fit ("bravo");
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_uint_eq (exports_count (&s), 2);
  ck_assert (may (&s, "alpha", &a));
  ck_assert (!may (&s, "bravo", &a));
  ck_assert (may (&s, "bravo", &b));
  ck_assert (!may (&s, "alpha", &b));
  ck_assert (!may (&s, "alpha", &none));        /* no identity: nothing */
  ck_assert_str_eq (listed (&s, &a), "alpha");
  ck_assert_str_eq (listed (&s, &b), "bravo");
  ck_assert_str_eq (listed (&s, &none), "");
  exports_close (&s);
}
END_TEST

/* Without TLS-PSK every client may open every export, but where an
 * export has its own allow list: only from those networks (a local,
 * unix-socket client always). */
START_TEST (test_allow_per_export)
{
  struct exports s;
  struct sockaddr_in c1 = ipv4 ("192.0.2.21"), c2 = ipv4 ("192.0.2.22");
  struct sockaddr_un local = { .sun_family = AF_UNIX };
  struct export_client one = { NULL, (struct sockaddr *) &c1, NULL, 0 };
  struct export_client two = { NULL, (struct sockaddr *) &c2, NULL, 0 };
  struct export_client unix_client = { NULL, (struct sockaddr *) &local, NULL, 0 };
  char err[128];

  set_init (&s, false);
  create_fit ("alpha");
  create_fit ("bravo");
  create_fit ("charlie");
  ck_assert_int_eq (exports_allow (&s, "alpha", "192.0.2.21", err,
                                   sizeof err), 0);
  ck_assert_int_eq (exports_allow (&s, "bravo", "192.0.2.22/32,10.0.0.0/8",
                                   err, sizeof err), 0);
  ck_assert_int_lt (exports_allow (&s, "bravo", "not-an-address", err,
                                   sizeof err), 0);
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert (may (&s, "alpha", &one));
  ck_assert (!may (&s, "alpha", &two));
  ck_assert (may (&s, "bravo", &two));
  ck_assert (!may (&s, "bravo", &one));
  ck_assert (may (&s, "charlie", &one));       /* no list: open to all */
  ck_assert (may (&s, "charlie", &two));
  ck_assert (may (&s, "alpha", &unix_client));
  ck_assert_str_eq (listed (&s, &one), "alpha charlie");
  ck_assert_str_eq (listed (&s, &two), "bravo charlie");
  exports_close (&s);
}
END_TEST

/* A grants file: one identity, several exports; a line naming no
 * export is refused with its place. */
START_TEST (test_grants)
{
  struct exports s;
  struct export_client a = { "alpha", NULL, NULL, 0 }, b = { "bravo", NULL, NULL, 0 };
  char path[128], err[256];
  FILE *fp;

  set_init (&s, true);
  create_fit ("alpha");
  create_fit ("bravo");
  create_fit ("charlie");
  snprintf (path, sizeof path, "%s/.grants", dir);
  fp = fopen (path, "w");
  ck_assert_ptr_nonnull (fp);
  fputs ("# who  what\n\nalpha charlie\tbravo\n", fp);
  fclose (fp);
  ck_assert_int_eq (exports_read_grants (&s, path, err, sizeof err), 0);
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_str_eq (listed (&s, &a), "alpha bravo charlie");
  ck_assert_str_eq (listed (&s, &b), "bravo");
  ck_assert (!may (&s, "alpha", &b));
  fp = fopen (path, "w");
  fputs ("alpha bravo\nlonely\n", fp);
  fclose (fp);
  ck_assert_int_eq (exports_read_grants (&s, path, err, sizeof err),
                    -EINVAL);
  ck_assert_msg (strstr (err, ".grants line 2: 'lonely' names no export")
                 != NULL, "said \"%s\"", err);
  exports_close (&s);
}
END_TEST

/* With both, both must agree. */
START_TEST (test_psk_and_allow)
{
  struct exports s;
  struct sockaddr_in c1 = ipv4 ("192.0.2.21"), c2 = ipv4 ("192.0.2.22");
  struct export_client right = { "alpha", (struct sockaddr *) &c1, NULL, 0 };
  struct export_client elsewhere = { "alpha", (struct sockaddr *) &c2, NULL, 0 };
  char err[128];

  set_init (&s, true);
  create_fit ("alpha");
  ck_assert_int_eq (exports_allow (&s, "alpha", "192.0.2.21", err,
                                   sizeof err), 0);
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert (may (&s, "alpha", &right));
  ck_assert (!may (&s, "alpha", &elsewhere));
  exports_close (&s);
}
END_TEST

/* Unknown names and names a client may not open look alike to it; the
 * caller learns which. */
START_TEST (test_unknown)
{
  struct exports s;
  struct export_client a = { "alpha", NULL, NULL, 0 };
  bool exists = true;

  set_init (&s, true);
  create_fit ("alpha");
  create_fit ("bravo");
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_ptr_null (exports_get (&s, "nope", &a, &exists));
  ck_assert (!exists);
  ck_assert_ptr_null (exports_get (&s, "bravo", &a, &exists));
  ck_assert (exists);
  exports_close (&s);
}
END_TEST

/* An unfit file is refused with its cause, once; the others serve.  A
 * hidden file, a directory: not exports.  Recreated fit: served at the
 * next scan. */
START_TEST (test_scan_unfit)
{
  struct exports s;
  struct export_client any = { NULL, NULL, NULL, 0 };
  char sub[128];
  unsigned after_first;

  set_init (&s, false);
  create_fit ("alpha");
  create_sparse ("holey");
  create_fit (".hidden");
  snprintf (sub, sizeof sub, "%s/subdir", dir);
  ck_assert_int_eq (mkdir (sub, 0700), 0);
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_str_eq (listed (&s, &any), "alpha");
  ck_assert_msg (strstr (last_error, "export 'holey': not served") != NULL,
                 "logged \"%s\"", last_error);
  after_first = errors;
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_uint_eq (errors, after_first);      /* reported once */
  remove_file ("holey");
  create_fit ("holey");
  ck_assert_int_eq (exports_scan (&s), 0);
  ck_assert_str_eq (listed (&s, &any), "alpha holey");
  exports_close (&s);
}
END_TEST

/* A file another server holds is refused, then served at a re-scan once
 * that server let go. */
START_TEST (test_scan_locked)
{
  struct exports first, second;
  struct export_client any = { NULL, NULL, NULL, 0 };

  set_init (&first, false);
  set_init (&second, false);
  create_fit ("alpha");
  ck_assert_int_eq (exports_scan (&first), 0);
  ck_assert_int_eq (exports_scan (&second), 0);
  ck_assert_uint_eq (exports_count (&second), 0);
  ck_assert_msg (strstr (last_error, "export 'alpha': not served") != NULL,
                 "logged \"%s\"", last_error);
  exports_close (&first);
  ck_assert_int_eq (exports_scan (&second), 0);
  ck_assert_str_eq (listed (&second, &any), "alpha");
  exports_close (&second);
}
END_TEST

/* A file removed while a client holds it: gone from the set, its
 * requests refused, freed (and its counters kept) when let go. */
START_TEST (test_scan_removed)
{
  struct exports s;
  struct export_client any = { NULL, NULL, NULL, 0 };
  struct export *x;
  bool exists;

  set_init (&s, false);
  create_fit ("alpha");
  create_fit ("bravo");
  ck_assert_int_eq (exports_scan (&s), 0);
  x = exports_get (&s, "bravo", &any, &exists);
  ck_assert_ptr_nonnull (x);
  STATS_ADD (&x->stats, reads, 7);
  remove_file ("bravo");
  exports_recheck (&s, true);
  ck_assert_str_eq (listed (&s, &any), "alpha");
  ck_assert_ptr_null (exports_get (&s, "bravo", &any, &exists));
  ck_assert (!exists);
  ck_assert (atomic_load (&x->target.refuse) & REQ_REFUSE_ALL);
  ck_assert_uint_eq (STATS_GET (&s.retired, reads), 0);
  exports_put (&s, x);
  ck_assert_uint_eq (STATS_GET (&s.retired, reads), 7);
  exports_close (&s);
}
END_TEST

/* The stats file of set s (at DIR/.stats), read whole. */
static char *
report (struct exports *s)
{
  static char buf[8192];
  char path[128];
  size_t n;
  FILE *fp;

  exports_report_stats (s);
  snprintf (path, sizeof path, "%s/.stats", dir);
  fp = fopen (path, "r");
  ck_assert_ptr_nonnull (fp);
  n = fread (buf, 1, sizeof buf - 1, fp);
  buf[n] = '\0';
  fclose (fp);
  return buf;
}

/* Does the report hold needle?  Says what it holds when not. */
#define ck_report_has(text, needle) \
  ck_assert_msg (strstr ((text), (needle)) != NULL, "no %s in %s", \
                 (needle), (text))

/* The report of a directory: the sum first (unchanged for a reader of
 * one file's counters), then each export with its clients (address,
 * port, PSK identity) and counters; an export dropped while a client
 * transmits with it still counts in the sum, and after it is freed. */
START_TEST (test_report)
{
  struct exports s;
  struct sockaddr_in c1 = ipv4 ("192.0.2.7");
  struct export_client who = { "alpha", (struct sockaddr *) &c1, "inline", 0 };
  struct export_conn ca, cb;
  struct export *a, *b;
  char path[128], why[256];
  const char *r;
  bool exists;

  set_init (&s, true);
  snprintf (path, sizeof path, "%s/.stats", dir);
  s.cfg.stats_path = path;
  create_fit ("alpha");
  create_fit ("bravo");
  ck_assert_int_eq (exports_scan (&s), 0);
  c1.sin_port = htons (41234);
  a = exports_get (&s, "alpha", &who, &exists);
  ck_assert_ptr_nonnull (a);
  ck_assert_int_eq (exports_attach (&s, a, &ca, &who, "", why, sizeof why),
                    0);
  STATS_ADD (&a->stats, reads, 3);
  who.identity = "bravo";
  b = exports_get (&s, "bravo", &who, &exists);
  ck_assert_ptr_nonnull (b);
  ck_assert_int_eq (exports_attach (&s, b, &cb, &who, "", why, sizeof why),
                    0);
  STATS_ADD (&b->stats, writes, 2);
  r = report (&s);
  ck_assert_msg (strncmp (r, "{\"reads\":3,\"writes\":2,", 21) == 0, "%s", r);
  ck_report_has (r, "\"exports\":[{\"name\":\"alpha\",\"path\":\"");
  ck_report_has (r, "\"connections\":1,\"connections_total\":1,"
                 "\"clients\":[{\"address\":\"192.0.2.7\",\"port\":41234,"
                 "\"identity\":\"alpha\",\"file_io\":\"inline\"}],"
                 "\"counters\":{\"reads\":3,"
                 "\"writes\":0,");
  ck_report_has (r, "\"identity\":\"bravo\",\"file_io\":\"inline\"}],"
                 "\"counters\":{\"reads\":0,"
                 "\"writes\":2,");
  /* bravo dropped while its client transmits: in the sum, not listed. */
  remove_file ("bravo");
  exports_recheck (&s, true);
  r = report (&s);
  ck_assert_msg (strncmp (r, "{\"reads\":3,\"writes\":2,", 21) == 0, "%s", r);
  ck_assert_msg (strstr (r, "bravo") == NULL, "%s", r);
  exports_detach (&s, b, &cb);
  exports_put (&s, b);
  r = report (&s);
  ck_assert_msg (strncmp (r, "{\"reads\":3,\"writes\":2,", 21) == 0, "%s", r);
  /* alpha's client leaves: counted since served, not now. */
  exports_detach (&s, a, &ca);
  exports_put (&s, a);
  r = report (&s);
  ck_report_has (r, "\"connections\":0,\"connections_total\":1,"
                 "\"clients\":[],");
  exports_close (&s);
}
END_TEST

/* A refusal's line names the client (address, PSK identity, or a local
 * one) and the name it asked for, escaped: it is the client's text. */
START_TEST (test_refusal_line)
{
  struct sockaddr_in a = ipv4 ("192.0.2.22");
  struct export_client tls = { "client2", (struct sockaddr *) &a, NULL, 0 };
  struct export_client local = { NULL, NULL, NULL, 0 };

  exports_log_refusal ("native: ", &tls, "client1", true, "");
  ck_assert_str_eq (last_error, "native: client 192.0.2.22 (PSK identity "
                    "'client2') asked for export 'client1': refused (not "
                    "one this client may open)");
  exports_log_refusal ("", &local, "x\nnbdswap: forged", false, "; more");
  ck_assert_str_eq (last_error, "client a local client asked for export "
                    "'x\\x0anbdswap: forged': refused (no such export); "
                    "more");
}
END_TEST

/* Attach client who's connection c to x: 0 or -EBUSY. */
static int
attach (struct exports *s, struct export *x, struct export_conn *c,
        const char *identity, struct sockaddr_in *addr)
{
  struct export_client who = { identity, (struct sockaddr *) addr, NULL, -1 };
  char why[256] = "";
  int r;

  r = exports_attach (s, x, c, &who, "native: ", why, sizeof why);
  ck_assert_int_eq (r == 0, why[0] == '\0');
  return r;
}

/* One client at a time transmits with an export: its own several
 * connections (another port, or the same identity from elsewhere) are
 * welcome, another client is refused with a line naming both, until the
 * first one's connections are gone. */
START_TEST (test_one_client)
{
  struct sockaddr_in c1 = ipv4 ("192.0.2.21"), c1b = ipv4 ("192.0.2.21");
  struct sockaddr_in c2 = ipv4 ("192.0.2.22");
  struct export_conn k[6];
  struct exports s, p;
  struct export *x, *y;

  create_fit ("alpha");
  set_init (&s, false);
  ck_assert_int_eq (exports_scan (&s), 0);
  x = s.list;
  c1.sin_port = htons (1000);
  c1b.sin_port = htons (1001);
  ck_assert_int_eq (attach (&s, x, &k[0], NULL, &c1), 0);
  ck_assert_int_eq (attach (&s, x, &k[1], NULL, &c1b), 0);   /* multi-conn */
  errors = 0;
  ck_assert_int_eq (attach (&s, x, &k[2], NULL, &c2), -EBUSY);
  ck_assert_uint_eq (errors, 1);
  ck_assert_str_eq (last_error, "native: client 192.0.2.22 asked for export "
                    "'alpha': refused (in use by 192.0.2.21; one client at "
                    "a time writes to an export): detach it there first, or "
                    "wait until the server sees that client's connections "
                    "end");
  ck_assert_uint_eq (x->nr_conns, 2);
  exports_detach (&s, x, &k[0]);
  ck_assert_int_eq (attach (&s, x, &k[2], NULL, &c2), -EBUSY);
  exports_detach (&s, x, &k[1]);
  ck_assert_int_eq (attach (&s, x, &k[2], NULL, &c2), 0);
  /* Local clients (no address) are this machine: one client. */
  ck_assert_int_eq (attach (&s, x, &k[3], NULL, NULL), -EBUSY);
  exports_detach (&s, x, &k[2]);
  ck_assert_int_eq (attach (&s, x, &k[3], NULL, NULL), 0);
  ck_assert_int_eq (attach (&s, x, &k[4], NULL, NULL), 0);
  exports_detach (&s, x, &k[3]);
  exports_detach (&s, x, &k[4]);
  exports_close (&s);

  /* With TLS-PSK the identity is the client, wherever it connects from;
   * two identities granted one export take turns. */
  set_init (&p, true);
  ck_assert_int_eq (exports_scan (&p), 0);
  ck_assert_int_eq (exports_grant (&p, "backup", "alpha"), 0);
  y = p.list;
  ck_assert_int_eq (attach (&p, y, &k[0], "alpha", &c1), 0);
  ck_assert_int_eq (attach (&p, y, &k[1], "alpha", &c2), 0);
  ck_assert_int_eq (attach (&p, y, &k[2], "backup", &c1), -EBUSY);
  ck_assert_msg (strstr (last_error, "client 192.0.2.21 (PSK identity "
                         "'backup') asked for export 'alpha': refused (in "
                         "use by 192.0.2.22 (PSK identity 'alpha');")
                 != NULL, "%s", last_error);
  exports_detach (&p, y, &k[0]);
  exports_detach (&p, y, &k[1]);
  ck_assert_int_eq (attach (&p, y, &k[2], "backup", &c1), 0);
  exports_detach (&p, y, &k[2]);
  exports_close (&p);
}
END_TEST

/* page_cache (the plugin's direct=false): the file is opened without
 * O_DIRECT and the request engine takes any buffer as it is. */
START_TEST (test_page_cache)
{
  struct exports direct, cached;
  struct exports_config c = { .retry = { 60, true }, .page_cache = true };
  char path[128];

  set_init (&direct, false);
  create_fit ("alpha");
  create_fit ("bravo");
  snprintf (path, sizeof path, "%s/alpha", dir);
  ck_assert_int_eq (exports_add_file (&direct, "a", path), BACKING_OK);
  ck_assert (direct.list->backing.direct);
  ck_assert_uint_ge (direct.list->target.mem_align, 512);
  exports_init (&cached, &c);
  snprintf (path, sizeof path, "%s/bravo", dir);
  ck_assert_int_eq (exports_add_file (&cached, "", path), BACKING_OK);
  ck_assert (!cached.list->backing.direct);
  ck_assert_uint_eq (cached.list->target.mem_align, 1);
  ck_assert_int_eq (fcntl (cached.list->backing.fd, F_GETFL) & O_DIRECT, 0);
  exports_close (&direct);
  exports_close (&cached);
}
END_TEST

/* A file on ext4 or xfs shares the swap-outs' bio pool: exports_attach
 * says so once per export, to a client that may be this machine (here
 * 1, or 0 with no address: peer.h's "may be"), never to one elsewhere
 * (-1).  Skipped where the test directory's filesystem shares no pool. */
START_TEST (test_pool_warning)
{
  struct exports s;
  struct export_conn k[4];
  struct export_client far = { NULL, NULL, NULL, -1 };
  struct export_client near = { NULL, NULL, NULL, 1 };
  struct export_client unknown = { NULL, NULL, NULL, 0 };
  struct export *x;
  char why[256], fs[32];
  bool exists;

  set_init (&s, false);
  create_fit ("alpha");
  ck_assert_int_eq (exports_scan (&s), 0);
  x = exports_get (&s, "alpha", &far, &exists);
  ck_assert_ptr_nonnull (x);
  if (!backing_shares_swap_pool (&x->backing, fs, sizeof fs)) {
    fprintf (stderr, "test_pool_warning: SKIP: %s is on %s\n", dir,
             x->backing.verified.fs_type);
    exports_put (&s, x);
    exports_close (&s);
    return;
  }
  ck_assert_int_eq (exports_attach (&s, x, &k[0], &far, "native: ", why,
                                    sizeof why), 0);
  ck_assert_uint_eq (pool_warnings, 0);
  ck_assert_int_eq (exports_attach (&s, x, &k[1], &near, "native: ", why,
                                    sizeof why), 0);
  ck_assert_uint_eq (pool_warnings, 1);
  ck_assert_msg (strstr (pool_warning, "native: export 'alpha': ") != NULL
                 && strstr (pool_warning, "/alpha is a file on ") != NULL
                 && strstr (pool_warning, "serve a block device") != NULL,
                 "%s", pool_warning);
  ck_assert_int_eq (exports_attach (&s, x, &k[2], &unknown, "native: ", why,
                                    sizeof why), 0);
  ck_assert_int_eq (exports_attach (&s, x, &k[3], &near, "native: ", why,
                                    sizeof why), 0);
  ck_assert_uint_eq (pool_warnings, 1);             /* once per export */
  for (int i = 0; i < 4; i++)
    exports_detach (&s, x, &k[i]);
  exports_put (&s, x);
  exports_close (&s);

  /* No address, not asked: it may be this machine. */
  set_init (&s, false);
  ck_assert_int_eq (exports_scan (&s), 0);
  x = exports_get (&s, "alpha", &unknown, &exists);
  ck_assert_ptr_nonnull (x);
  ck_assert_int_eq (exports_attach (&s, x, &k[0], &unknown, "", why,
                                    sizeof why), 0);
  ck_assert_uint_eq (pool_warnings, 2);
  exports_detach (&s, x, &k[0]);
  exports_put (&s, x);
  exports_close (&s);
}
END_TEST

/* The request engine's longest direct operation: a file's any request
 * as one, a block device's at most REQ_BDEV_MAX_DIRECT (larger ones
 * would take further bios from the swap-outs' pool).  The block device
 * is a loop device over a file here, where the test may make one. */
START_TEST (test_max_direct)
{
  struct exports s;
  char path[128], cmd[400], dev[64] = "";
  enum backing_status r;
  uint32_t md;
  int detached;
  FILE *p;

  set_init (&s, false);
  create_fit ("alpha");
  snprintf (path, sizeof path, "%s/alpha", dir);
  ck_assert_int_eq (exports_add_file (&s, "a", path), BACKING_OK);
  ck_assert_uint_eq (s.list->target.max_direct, REQ_MAX_DIRECT);
  exports_close (&s);

  snprintf (cmd, sizeof cmd, "losetup -f --show '%s' 2>/dev/null", path);
  p = geteuid () == 0 ? popen (cmd, "r") : NULL;
  if (p == NULL || fgets (dev, sizeof dev, p) == NULL || dev[0] != '/') {
    if (p != NULL)
      pclose (p);
    fprintf (stderr, "test_max_direct: SKIP the block device: no loop "
             "device here\n");
    return;
  }
  pclose (p);
  dev[strcspn (dev, "\n")] = '\0';
  /* The loop device is detached before any assertion (a failed one
   * ends this process). */
  set_init (&s, false);
  r = exports_add_file (&s, "b", dev);
  md = r == BACKING_OK ? s.list->target.max_direct : 0;
  exports_close (&s);
  snprintf (cmd, sizeof cmd, "losetup -d '%s'", dev);
  detached = system (cmd);
  ck_assert_int_eq (r, BACKING_OK);
  ck_assert_uint_eq (md, REQ_BDEV_MAX_DIRECT);
  ck_assert_int_eq (detached, 0);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("exports");
  TCase *tc = tcase_create ("set");

  log_set_sink (capture_sink);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_psk_identity);
  tcase_add_test (tc, test_allow_per_export);
  tcase_add_test (tc, test_psk_and_allow);
  tcase_add_test (tc, test_grants);
  tcase_add_test (tc, test_unknown);
  tcase_add_test (tc, test_scan_unfit);
  tcase_add_test (tc, test_scan_locked);
  tcase_add_test (tc, test_scan_removed);
  tcase_add_test (tc, test_report);
  tcase_add_test (tc, test_refusal_line);
  tcase_add_test (tc, test_pool_warning);
  tcase_add_test (tc, test_max_direct);
  tcase_add_test (tc, test_one_client);
  tcase_add_test (tc, test_page_cache);
  suite_add_tcase (s, tc);
  return check_run (s);
}
