/* nbdswap attach: connect /dev/nbdN to a server ourselves (libnbd
 * handshake, netlink hand-over), make it swap, and supervise it. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "log.h"
#include "client-handshake.h"
#include "nbd-netlink.h"
#include "nbdswap.h"
#include "supervisor.h"
#include "swapdev.h"
#include "swaphdr.h"
#include "tls.h"

#define MAX_CONNECTIONS 16
#define MIN_SWAP_BYTES (40 * 1024)  /* the smallest swap area: 10 pages */

struct attach_opts {
  struct nbd_target target;
  int index;                    /* -1: pick a free device */
  int priority;                 /* -1: the kernel's default */
  unsigned connections;
  unsigned timeout, dead_timeout;
  bool encrypt, integrity, format, foreground;
  const char *tls_psk, *tls_identity, *tls_certs;
  const char *netns;            /* --netns: connect from there */
  int page_cluster;             /* --page-cluster, -1 unless given */
  int max_sectors_kb;           /* --max-sectors-kb, -1 unless given */
};


/* The default request timeout.  When a request times out the kernel
 * drops the connection and sends the request again on the next one; a
 * server still retrying the first copy (transient errors are retried for
 * the plugin's retry-timeout, 60 s by default) could then land an old
 * write over a newer one.  So the timeout must outlast the server's
 * retries: 60 s plus room for the last attempt. */
#define ATTACH_TIMEOUT 90
static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap attach SOCKET|HOST[:PORT] [/dev/nbdN] [options]\n"
          "\nConnect a kernel nbd device to an nbdswap server, make it swap "
          "(a new swap\nheader only if it has no swap signature) and stay "
          "resident to reconnect it if\nthe server restarts.\n"
          "\nOptions:\n"
          " -e, --export NAME        the export name (default \"\")\n"
          " -p, --priority P         swap priority 0-32767 (default: the "
          "kernel's)\n"
          "     --encrypt            dm-crypt plain mode with a random key "
          "between the\n"
          "                          device and swap: server and network "
          "see no plaintext\n"
          "     --integrity          with --encrypt: authenticated "
          "(dm-integrity under\n"
          "                          dm-crypt, HMAC-SHA256): a block changed "
          "outside this\n"
          "                          machine is an I/O error (SIGBUS), never "
          "wrong memory\n"
          " -c, --connections N      sockets to the server (N > 1 needs "
          "multi-conn)\n"
          "     --format             a new swap header even if a signature is "
          "there\n"
          " -f, --foreground         supervise in the foreground (systemd "
          "Type=simple)\n"
          "     --timeout S          request timeout (default 90 s; keep it "
          "above the\n"
          "                          server's retry-timeout, 60 s by default)\n"
          "     --dead-timeout S     how long I/O waits for a reconnect "
          "(default 600 s)\n"
          "     --tls-psk FILE       TLS with a pre-shared key from FILE "
          "(psktool's\n"
          "                          identity:hexkey lines), the records "
          "in the kernel\n"
          "     --tls-identity NAME  the identity to use from FILE (default: "
          "the first)\n"
          "     --tls-certificates DIR  TLS with DIR/ca-cert.pem (and "
          "client-cert.pem,\n"
          "                          client-key.pem if the server asks); "
          "the server's\n"
          "                          certificate must name HOST\n"
          "     --netns NS           connect (and reconnect) from network "
          "namespace NS\n"
          "                          (a name of 'ip netns', or a path such "
          "as\n"
          "                          /proc/PID/ns/net); attach itself stays "
          "in the\n"
          "                          initial one, where the nbd driver is\n"
          "     --page-cluster N     set vm.page-cluster to N (swap-in "
          "readahead of 2^N\n"
          "                          pages, system-wide; %d is advised for "
          "NBD)\n"
          "     --max-sectors-kb N   the device's largest request, KiB "
          "(%d advised,\n"
          "                          not yet the default)\n"
          " -h, --help               display this help\n"
          "\nWith TLS, attach negotiates itself and gives the kernel the "
          "session (kTLS:\nthe 'tls' module); without it, the wire is "
          "plaintext: use --encrypt, and TLS\nor a trusted network.\n"
          "\nExit status: 0 attached, 1 usage error, 2 the export is unfit, "
          "3 system error,\n4 the device is busy, 5 the server is "
          "unreachable.\n", SWAPDEV_PAGE_CLUSTER_ADVICE,
          NBD_MAX_SECTORS_KB_ADVICE);
}

/* Parses a whole non-negative number no larger than max. */
static int
parse_uint (const char *s, unsigned max, unsigned *out)
{
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul (s, &end, 10);
  if (*s < '0' || *s > '9' || *end || errno || v > max)
    return -1;
  *out = (unsigned) v;
  return 0;
}

/* Options and operands into o; an exit code, or -1 to go on. */
static int
parse_args (int argc, char **argv, struct attach_opts *o)
{
  static const struct option longopts[] = {
    { "export", required_argument, NULL, 'e' },
    { "priority", required_argument, NULL, 'p' },
    { "encrypt", no_argument, NULL, 'E' },
    { "integrity", no_argument, NULL, 'G' },
    { "connections", required_argument, NULL, 'c' },
    { "format", no_argument, NULL, 'F' },
    { "foreground", no_argument, NULL, 'f' },
    { "timeout", required_argument, NULL, 'T' },
    { "dead-timeout", required_argument, NULL, 'D' },
    { "tls-psk", required_argument, NULL, 'K' },
    { "tls-identity", required_argument, NULL, 'I' },
    { "tls-certificates", required_argument, NULL, 'C' },
    { "netns", required_argument, NULL, 'N' },
    { "page-cluster", required_argument, NULL, 'P' },
    { "max-sectors-kb", required_argument, NULL, 'M' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *export_name = "";
  unsigned u;
  int c;

  while ((c = getopt_long (argc, argv, "e:p:c:fh", longopts, NULL)) != -1) {
    switch (c) {
    case 'e': export_name = optarg; break;
    case 'p':
      if (parse_uint (optarg, 32767, &u) == -1)
        return usage_error ("attach", "--priority: '%s' is not 0-32767",
                            optarg);
      o->priority = (int) u;
      break;
    case 'E': o->encrypt = true; break;
    case 'G': o->integrity = true; break;
    case 'c':
      if (parse_uint (optarg, MAX_CONNECTIONS, &o->connections) == -1
          || o->connections == 0)
        return usage_error ("attach", "--connections: '%s' is not 1-%d",
                            optarg, MAX_CONNECTIONS);
      break;
    case 'F': o->format = true; break;
    case 'f': o->foreground = true; break;
    case 'T':
      if (parse_uint (optarg, 86400, &o->timeout) == -1 || o->timeout == 0)
        return usage_error ("attach", "--timeout: '%s' is not 1-86400 "
                            "seconds", optarg);
      break;
    case 'D':
      if (parse_uint (optarg, 86400 * 365, &o->dead_timeout) == -1
          || o->dead_timeout == 0)
        return usage_error ("attach", "--dead-timeout: '%s' is not a "
                            "positive number of seconds", optarg);
      break;
    case 'K': o->tls_psk = optarg; break;
    case 'I': o->tls_identity = optarg; break;
    case 'C': o->tls_certs = optarg; break;
    case 'N': o->netns = optarg; break;
    case 'P':
      if (parse_uint (optarg, SWAPDEV_PAGE_CLUSTER_MAX, &u) == -1)
        return usage_error ("attach", "--page-cluster: '%s' is not 0-%d "
                            "(%d is advised)", optarg,
                            SWAPDEV_PAGE_CLUSTER_MAX,
                            SWAPDEV_PAGE_CLUSTER_ADVICE);
      o->page_cluster = (int) u;
      break;
    case 'M':
      if (parse_uint (optarg, NBD_MAX_SECTORS_KB_MAX, &u) == -1 ||
          (u != 0 && (u < NBD_MAX_SECTORS_KB_MIN || u % 4 != 0)))
        return usage_error ("attach", "--max-sectors-kb: '%s' is not 0 or "
                            "a multiple of 4 in %d-%d (%d is advised)",
                            optarg, NBD_MAX_SECTORS_KB_MIN,
                            NBD_MAX_SECTORS_KB_MAX,
                            NBD_MAX_SECTORS_KB_ADVICE);
      o->max_sectors_kb = (int) u;
      break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("attach");
    }
  }
  if (argc - optind < 1)
    return usage_error ("attach", "no server given (a socket path or "
                        "HOST[:PORT])");
  if (argc - optind > 2)
    return usage_error ("attach", "too many arguments");
  if (nbd_target_parse (argv[optind], &o->target) < 0)
    return usage_error ("attach", "'%s' is neither a socket path (with a "
                        "'/') nor HOST[:PORT]", argv[optind]);
  o->target.export_name = export_name;
  if (o->integrity && !o->encrypt)
    return usage_error ("attach", "--integrity authenticates what "
                        "--encrypt encrypts: give both");
  if (o->tls_psk && o->tls_certs)
    return usage_error ("attach", "--tls-psk and --tls-certificates exclude "
                        "each other: choose one kind of TLS credentials");
  if (o->tls_identity && !o->tls_psk)
    return usage_error ("attach", "--tls-identity picks a key of --tls-psk "
                        "FILE: give --tls-psk");
  if ((o->tls_psk || o->tls_certs) && o->target.unix_path)
    return usage_error ("attach", "TLS to a unix socket: attach's TLS runs "
                        "in the kernel (kTLS), which needs TCP: give "
                        "HOST[:PORT]");
  if (o->netns && o->target.unix_path)
    return usage_error ("attach", "--netns is for TCP: a unix socket is "
                        "reached by its path from any network namespace");
  if (argc - optind == 2
      && (o->index = nbd_device_index (argv[optind + 1])) < 0)
    return usage_error ("attach", "'%s' is not an nbd device (/dev/nbdN)",
                        argv[optind + 1]);
  return -1;
}

/* Swap-in readahead: --page-cluster N sets vm.page-cluster (the swap
 * works either way: a failure is a warning); without it, a value below
 * the advice gets a hint (--page-cluster with the value it has keeps it
 * and silences the hint).  Said once, at attach. */
static void
page_cluster (const struct attach_opts *o)
{
  int now = swapdev_page_cluster (), r;

  if (o->page_cluster < 0) {
    if (now >= 0 && now < SWAPDEV_PAGE_CLUSTER_ADVICE)
      fprintf (stderr, "nbdswap attach: hint: vm.page-cluster is %d (a "
               "swap-in reads at most %d pages); over NBD every read is a "
               "round trip, and %d moved the swap benchmark in about 0.6x "
               "the time: add --page-cluster %d (system-wide; "
               "--page-cluster %d keeps %d and drops this hint; "
               "docs/attach.md)\n", now, 1 << now,
               SWAPDEV_PAGE_CLUSTER_ADVICE, SWAPDEV_PAGE_CLUSTER_ADVICE,
               now, now);
    return;
  }
  if (now == o->page_cluster)
    return;
  r = swapdev_set_page_cluster ((unsigned) o->page_cluster);
  if (r < 0)
    fprintf (stderr, "nbdswap attach: warning: --page-cluster %d: writing "
             "/proc/sys/vm/page-cluster: %s%s; swap is on, with readahead "
             "unchanged\n", o->page_cluster, strerror (-r),
             r == -EROFS || r == -EACCES || r == -EPERM
             ? " (a read-only /proc/sys, as in a container: set it where "
               "it is writable, e.g. on the host: sysctl vm.page-cluster=N)"
             : "");
  else if (now >= 0)
    printf ("vm.page-cluster %d -> %d (swap-in readahead of up to %d "
            "pages, every swap device's)\n", now, o->page_cluster,
            1 << o->page_cluster);
  else
    printf ("vm.page-cluster set to %d (swap-in readahead of up to %d "
            "pages, every swap device's)\n", o->page_cluster,
            1 << o->page_cluster);
}

/* The device's largest request: --max-sectors-kb N sets it, 0 or no
 * option leaves it (opt-in: with the server in this kernel, 1 MiB
 * requests under global memory exhaustion hung the native-pressure-1m
 * VM scenario, docs/attach.md).  Never above the largest request the
 * server said it takes.  Before swap, or a dm-crypt stack, goes on the device (dm
 * takes its limits from the device when its table is loaded).  Swap
 * works either way: a failure is a warning. */
static void
max_sectors (const struct attach_opts *o, const struct nbd_export *e,
             int index)
{
  long now = nbd_device_max_sectors_kb (index), kept;
  long want = o->max_sectors_kb;

  if (want <= 0 || now < 0)
    return;
  if (e->max_block > 0 && (uint64_t) want * 1024 > e->max_block) {
    want = (long) (e->max_block / 1024) / 4 * 4;
    if (want < NBD_MAX_SECTORS_KB_MIN)
      return;
    fprintf (stderr, "nbdswap attach: warning: --max-sectors-kb %d: the "
             "server takes requests of at most %" PRIu32 " bytes: %ld "
             "KiB\n", o->max_sectors_kb, e->max_block, want);
  }
  if (want == now)
    return;
  kept = nbd_device_set_max_sectors_kb (index, (unsigned) want);
  if (kept < 0)
    fprintf (stderr, "nbdswap attach: warning: /sys/block/nbd%d/queue/"
             "max_sectors_kb %ld: %s; requests stay at %ld KiB at most%s\n",
             index, want, strerror ((int) -kept), now,
             kept == -EINVAL ? " (the kernel takes at most "
             "max_hw_sectors_kb, and at least a page)" : "");
  else
    printf ("/dev/nbd%d: requests of up to %ld KiB (was %ld)\n", index,
            kept, now);
}

/* Loads the nbd module unless it is there (built in or loaded). */
static int
load_module (void)
{
  int status;
  pid_t pid;

  if (access ("/sys/module/nbd", F_OK) == 0)
    return 0;
  pid = fork ();
  if (pid == 0) {
    /* Our own line says what failed; modprobe's would be a second. */
    int null = open ("/dev/null", O_WRONLY);
    dup2 (null, 2);
    execlp ("modprobe", "modprobe", "nbd", (char *) NULL);
    _exit (127);
  }
  if (pid == -1 || waitpid (pid, &status, 0) == -1)
    return -errno;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0
      || access ("/sys/module/nbd", F_OK) == -1)
    return -ENOENT;
  return 0;
}

/* The first /dev/nbdN at or after start that nobody uses, or -1 (then
 * the kernel makes a new one). */
static int
free_device (int start)
{
  char path[64];
  int i;

  for (i = start; i < 1024; ++i) {
    snprintf (path, sizeof path, "/sys/block/nbd%d", i);
    if (access (path, F_OK) == -1)
      return -1;
    if (!nbd_device_in_use (i, NULL))
      return i;
  }
  return -1;
}

/* Negotiates the connections; fds[] gets them.  An exit code or -1. */
static int
connect_all (const struct attach_opts *o, struct nbd_export *e, int *fds)
{
  const char *where = o->target.unix_path ? o->target.unix_path
                                          : o->target.host;
  char err[256];
  unsigned i;

  for (i = 0; i < o->connections; ++i) {
    fds[i] = nbd_handshake (&o->target, e, err, sizeof err);
    if (fds[i] < 0) {
      /* ENOENT is also the server's answer to an export it does not
       * have or will not give this client (NBD_REP_ERR_UNKNOWN): then it
       * runs, and it is not the socket path that is missing. */
      bool unknown = fds[i] == -ENOENT && (o->target.unix_path == NULL
                                           || access (o->target.unix_path,
                                                      F_OK) == 0);
      bool absent = !unknown && (fds[i] == -ECONNREFUSED
                                 || fds[i] == -ENOENT
                                 || fds[i] == -EHOSTUNREACH
                                 || fds[i] == -ETIMEDOUT);

      fprintf (stderr, "nbdswap attach: cannot connect to %s%s%s: %s%s\n",
               where, o->netns ? " from network namespace " : "",
               o->netns ? o->netns : "", err, absent ? " (is the server "
               "running? start it with 'nbdswap serve')" : unknown ? " (no "
               "such export, or not one this client may open: the server's "
               "log names the refusal)" : o->target.tls ? " (the server's "
               "log names what it refused)" : "");
      return EXIT_UNREACHABLE;
    }
    if (i == 0 && o->connections > 1 && !e->multi_conn) {
      fprintf (stderr, "nbdswap attach: the server does not offer "
               "multi-conn: use --connections 1\n");
      return EXIT_UNFIT;
    }
    if (i == 0 && (e->flags & 2 /* NBD_FLAG_READ_ONLY */)) {
      fprintf (stderr, "nbdswap attach: the export is read-only: swap "
               "needs writes (serve it without -r)\n");
      return EXIT_UNFIT;
    }
    if (i == 0 && (e->size < MIN_SWAP_BYTES || e->size % 4096)) {
      fprintf (stderr, "nbdswap attach: the export is %" PRIu64 " bytes: "
               "swap needs a whole number of 4 KiB pages, at least 40 KiB\n",
               e->size);
      return EXIT_UNFIT;
    }
  }
  return -1;
}

static void
close_all (int *fds, unsigned n)
{
  unsigned i;

  for (i = 0; i < n; ++i)
    if (fds[i] >= 0)
      close (fds[i]);
}

/* Hands the sockets to the kernel; *index gets the device.  Exit code or
 * -1. */
static int
hand_over (const struct attach_opts *o, const struct nbd_export *e,
           const int *fds, int *index)
{
  struct nbdnl_config cfg = {
    .index = o->index, .size = e->size, .block_size = 4096,
    .server_flags = e->flags, .timeout = o->timeout,
    .dead_conn_timeout = o->dead_timeout, .fds = fds,
    .nr_fds = o->connections,
  };
  int r, tries = 0;

  if (o->index < 0)
    cfg.index = free_device (0);
  for (;;) {
    r = nbdnl_connect (&cfg);
    /* Someone took our free device between the scan and the connect. */
    if (r == -EBUSY && o->index < 0 && cfg.index >= 0 && ++tries < 16) {
      cfg.index = free_device (cfg.index + 1);
      continue;
    }
    break;
  }
  if (r == -EBUSY) {
    fprintf (stderr, "nbdswap attach: /dev/nbd%d is busy (configured "
             "already): detach it or name another device\n", cfg.index);
    return EXIT_BUSY;
  }
  if (r < 0) {
    fprintf (stderr, "nbdswap attach: NBD_CMD_CONNECT: %s (the kernel "
             "refused the device; see dmesg)\n", strerror (-r));
    return EXIT_SYSTEM;
  }
  *index = r;
  return -1;
}

/* A new swap header (if needed or asked) and swapon on the device or
 * its dm-crypt mapping.  Exit code or -1. */
static int
make_swap (const struct attach_opts *o, int index)
{
  char dev[80], label[32];     /* the header keeps 15 bytes */
  int r;

  snprintf (dev, sizeof dev, "/dev/nbd%d", index);
  if (o->encrypt && (r = swapdev_crypt_open (index, o->integrity, dev,
                                                 sizeof dev)) < 0) {
    fprintf (stderr, "nbdswap attach: dm-crypt on /dev/nbd%d: %s (needs "
             "dmsetup and the dm_crypt module)\n", index, strerror (-r));
    return EXIT_SYSTEM;
  }
  r = o->encrypt || o->format ? 0 : swapdev_has_signature (dev);
  if (r < 0) {
    fprintf (stderr, "nbdswap attach: read %s: %s\n", dev, strerror (-r));
    return EXIT_SYSTEM;
  }
  /* Written, not mkswap: mkswap's probe reads sectors that were never
   * written, each an integrity error under --integrity (swaphdr.h). */
  snprintf (label, sizeof label, "nbdswap-nbd%d", index);
  if (r == 0 && (r = swaphdr_write (dev, label, NULL)) < 0) {
    fprintf (stderr, "nbdswap attach: writing the swap header on %s: %s%s\n",
             dev, strerror (-r), r == -ENOSPC ? " (smaller than 10 pages)"
             : r == -EBUSY ? " (in use)" : "");
    return r == -EBUSY ? EXIT_BUSY : EXIT_SYSTEM;
  }
  r = swapdev_swapon (dev, o->priority);
  if (r < 0) {
    fprintf (stderr, "nbdswap attach: swapon %s: %s%s\n", dev,
             strerror (-r), r == -EBUSY ? " (already swap?)" : "");
    return r == -EBUSY ? EXIT_BUSY : EXIT_SYSTEM;
  }
  return -1;
}

/* Loads the module and subscribes to its notifications (before the
 * device exists, so that no LINK_DEAD is missed).  Exit code or -1. */
static int
prepare_kernel (struct nl_sock **monitor)
{
  int r;

  if (load_module () < 0) {
    fprintf (stderr, "nbdswap attach: no nbd driver: 'modprobe nbd' failed "
             "(install the kernel's modules or build CONFIG_BLK_DEV_NBD)\n");
    return EXIT_SYSTEM;
  }
  if ((r = nbdnl_monitor_open (monitor)) < 0) {
    fprintf (stderr, "nbdswap attach: nbd netlink: %s (kernel older than "
             "4.12?)\n", strerror (-r));
    return EXIT_SYSTEM;
  }
  return -1;
}

/* Undoes a half-made attach of device index. */
static void
undo (int index)
{
  swapdev_crypt_close (index);
  nbdnl_disconnect (index);
}

/* Checks that the device given on the command line is free. */
static int
check_given_device (int index)
{
  long pid = 0;

  if (!nbd_device_in_use (index, &pid))
    return -1;
  if (pid > 0)
    fprintf (stderr, "nbdswap attach: /dev/nbd%d is in use: connected by "
             "pid %ld (detach it, or name another device)\n", index, pid);
  else
    fprintf (stderr, "nbdswap attach: /dev/nbd%d is in use: it has a size "
             "(connected; detach it, or name another device)\n", index);
  return EXIT_BUSY;
}

/* With --tls-*: kTLS proven and the credentials loaded before anything
 * is touched, and kept for the supervisor's reconnects.  An exit code, or
 * -1 to go on. */
static int
setup_tls (struct attach_opts *o)
{
  static struct tls_creds *creds;
  const char *path = o->tls_psk ? o->tls_psk : o->tls_certs;
  char why[512];

  if (path == NULL)
    return -1;
  if (tls_ktls_probe (why, sizeof why) < 0) {
    fprintf (stderr, "nbdswap attach: TLS: %s (attach never falls back to "
             "plaintext)\n", why);
    return EXIT_SYSTEM;
  }
  if (tls_creds_load (&creds, o->tls_psk ? TLS_PSK : TLS_X509, TLS_CLIENT,
                      path, o->tls_identity, false, why, sizeof why) < 0) {
    fprintf (stderr, "nbdswap attach: TLS credentials: %s\n", why);
    return EXIT_USAGE;
  }
  o->target.tls = creds;
  return -1;
}

/* With --netns: the namespace to connect from, and ours to come back
 * to, opened once (the supervisor reconnects from there for as long as
 * it runs, even if the name is removed), and entered once to prove it
 * can be.  An exit code, or -1 to go on. */
static int
open_netns (struct attach_opts *o)
{
  char path[PATH_MAX];
  int fd, home;

  if (o->netns == NULL)
    return -1;
  snprintf (path, sizeof path, strchr (o->netns, '/') ? "%s"
            : "/run/netns/%s", o->netns);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    fprintf (stderr, "nbdswap attach: --netns %s: %s: %s (give a name "
             "that 'ip netns list' shows, or a namespace file such as "
             "/proc/PID/ns/net)\n", o->netns, path, strerror (errno));
    return EXIT_USAGE;
  }
  home = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home == -1) {
    fprintf (stderr, "nbdswap attach: /proc/thread-self/ns/net: %s (is "
             "/proc mounted?)\n", strerror (errno));
    close (fd);
    return EXIT_SYSTEM;
  }
  if (setns (fd, CLONE_NEWNET) == -1) {
    int err = errno;

    fprintf (stderr, "nbdswap attach: --netns %s: %s: %s\n", o->netns, path,
             err == EINVAL ? "not a network namespace" : strerror (err));
    close (fd);
    close (home);
    return err == EINVAL ? EXIT_USAGE : EXIT_SYSTEM;
  }
  if (setns (home, CLONE_NEWNET) == -1) {
    fprintf (stderr, "nbdswap attach: returning to the initial network "
             "namespace: %s\n", strerror (errno));
    close (fd);
    close (home);
    return EXIT_SYSTEM;
  }
  o->target.netns_fd = fd;
  o->target.home_netns_fd = home;
  return -1;
}

int
cmd_attach (int argc, char **argv)
{
  struct attach_opts o = { .index = -1, .priority = -1, .page_cluster = -1,
                           .max_sectors_kb = -1,
                           .connections = 1,
                           .timeout = ATTACH_TIMEOUT, .dead_timeout = 600 };
  struct supervisor sv;
  struct nbd_export e = { 0 };
  int fds[MAX_CONNECTIONS], index, r;

  r = parse_args (argc, argv, &o);
  if (r >= 0)
    return r;
  if (geteuid () != 0) {
    fprintf (stderr, "nbdswap attach: must run as root (nbd netlink and "
             "swapon need CAP_SYS_ADMIN)\n");
    return EXIT_SYSTEM;
  }
  if (o.index >= 0 && (r = check_given_device (o.index)) >= 0)
    return r;
  if ((r = setup_tls (&o)) >= 0 || (r = open_netns (&o)) >= 0)
    return r;
  /* The server first: a wrong address touches nothing in the kernel. */
  memset (fds, -1, sizeof fds);
  r = connect_all (&o, &e, fds);
  if (r < 0)
    r = prepare_kernel (&sv.monitor);
  if (r < 0)
    r = hand_over (&o, &e, fds, &index);
  close_all (fds, o.connections);   /* the kernel holds them now */
  if (r >= 0)
    return r;
  max_sectors (&o, &e, index);
  if ((r = make_swap (&o, index)) >= 0) {
    undo (index);
    return r;
  }
  printf ("/dev/nbd%d%s%s attached to %s\n", index, o.integrity ?
          " (encrypted, authenticated)" : o.encrypt ? " (encrypted)" : "", o.target.tls ? " (TLS in the kernel)" : "",
          o.target.unix_path ? o.target.unix_path : o.target.host);
  page_cluster (&o);
  fflush (stdout);

  sv.index = index;
  sv.target = o.target;
  sv.size = e.size;
  if (o.foreground)
    supervisor_write_pidfile (index);
  else if ((r = supervisor_daemonize (index)) < 0) {
    fprintf (stderr, "nbdswap attach: cannot start the supervisor: %s "
             "(the device stays attached without reconnects)\n",
             strerror (-r));
    return EXIT_SYSTEM;
  }
  supervisor_harden ();
  r = supervisor_run (&sv);
  {
    char pidfile[128];
    supervisor_pidfile (index, pidfile, sizeof pidfile);
    unlink (pidfile);
  }
  return r;
}
