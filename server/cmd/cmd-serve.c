/* nbdswap serve FILE|--dir DIR [options] [-- parameters]: serve with the
 * native server (server/native/), or with --nbdkit run nbdkit with the
 * swapfile plugin; serve-choice.c says which, and when nbdkit stands in
 * for a native server that cannot serve here.
 *
 * The native server verifies, locks and hardens itself (native-serve.c),
 * in this process with --foreground (and under systemd), else in a child
 * in the background.  For nbdkit, serve verifies FILE and prepares what
 * must be set before nbdkit starts, then runs it.  What survives execve
 * and is therefore set here: PR_SET_IO_FLUSHER (a task flag, kept across
 * exec and inherited by nbdkit's threads), oom_score_adj and
 * RLIMIT_MEMLOCK.  Memory locking does not survive exec: the plugin
 * locks after nbdkit's fork.
 *
 * nbdkit in the foreground (--foreground, systemd): exec nbdkit -f.
 * nbdkit sets its own umask (022) before binding -U, so serve binds the
 * unix socket itself, mode 0600, and hands it over as socket activation
 * does (fd 3, LISTEN_FDS=1, LISTEN_PID = this PID, which exec keeps).
 * Background (the default by hand): fork and exec nbdkit -U, let nbdkit
 * fork into the background, then chmod the socket 0600.  Not the
 * handed-over socket here: nbdkit then stays in the foreground and sets
 * PR_SET_PDEATHSIG, so it would die when serve exits.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "engine.h"
#include "harden.h"
#include "log.h"
#include "native.h"
#include "nbdswap.h"
#include "serve.h"
#include "servefiles.h"
#include "swapfile-config.h"
#include "verify.h"

struct serve_opts {
  struct serve_args given;      /* the command line; prepare_paths
                                 * completes socket and pidfile */
  const char *allow[SERVE_MAX_ALLOW]; /* --allow, comma lists split */
  size_t nr_allow;
  /* --allow NAME=CIDR[,...]: export allow_names[i] only for allow_nets[i];
   * for nbdkit, the plugin's allow=NAME=CIDR[,...] made of them. */
  const char *allow_names[SERVE_MAX_ALLOW];
  const char *allow_nets[SERVE_MAX_ALLOW];
  char *plugin_allow[SERVE_MAX_ALLOW];
  size_t nr_export_allow;
  unsigned threads;             /* --threads, or the default */
  long poll_us;                 /* --poll-us, -1 unless given */
  int file_io;                  /* --file-io (enum native_file_io), -1 */
  bool fell_back;               /* nbdkit stands in for the native server */
  struct swapfile_config config; /* the plugin parameters after -- */
  bool activated;               /* systemd passed the listening socket */
  int listen_fd;                /* the unix socket we bound, or -1 */
  char socket_buf[PATH_MAX];
  char stats_buf[PATH_MAX];
  char pid_buf[PATH_MAX];
  char tls_buf[PATH_MAX];
};

/* The subcommand's --help text. */
static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap serve FILE [--socket PATH | --port N [--bind ADDR]]\n"
          " nbdswap serve --dir DIR [...]\n"
          "               [--tls-psk FILE | --tls-certificates DIR\n"
          "                [--tls-verify-peer]]\n"
          "               [--export NAME] [--allow CIDR]...\n"
          "               [--foreground] [--pidfile FILE] [--dry-run]\n"
          "               [[--poll-us N] [--file-io MODE] | --nbdkit "
          "[--threads N]]\n"
          "               [-- plugin parameters, and nbdkit's arguments "
          "with --nbdkit]\n"
          "\nServe FILE with nbdswap's native server (io_uring, a thread per "
          "connection):\nit verifies FILE like 'nbdswap verify' and serves "
          "in the background, serve\nreturning once it serves; with "
          "--foreground (and under systemd) it serves in\nthis process.  "
          "With --nbdkit, serve verifies FILE and runs nbdkit with the\n"
          "swapfile plugin instead.  Where the native server cannot serve "
          "(io_uring\ndenied; TLS without kTLS), serve says so in a warning "
          "and runs nbdkit in its\nplace, unless that would lose what was "
          "asked for.  By default it listens on\n/run/nbdswap/NAME.sock "
          "(mode 0600, directory 0700), NAME being FILE's base\nname "
          "without its extension, and writes its counters to "
          "/run/nbdswap/NAME.stats\n('nbdswap status' reads them).  Under "
          "systemd socket activation (LISTEN_FDS)\nit serves the socket "
          "it was given.\n"
          "\nWith --dir DIR, one server serves every swap backing file in "
          "DIR, each an\nexport named after its file (NAME being DIR's base "
          "name); an unfit file is\nleft out and logged.\n"
          "\nOptions:\n");
  serve_options_help (stdout);
  printf ("\nSwap pages are the clients' process memory: whoever can connect "
          "can read and\nwrite them.  The kernel's nbd client cannot use "
          "TLS: remote swap over an\nuntrusted network needs 'nbdswap attach "
          "--encrypt' plus a tunnel or a trusted\nnetwork.\n"
          "\nEnvironment: NBDSWAP_RUNTIME_DIR (instead of /run/nbdswap), "
          "NBDSWAP_PLUGIN (the\nplugin to load), NBDSWAP_NBDKIT (the nbdkit "
          "to run).\n"
          "\nExit status: 0 serving (in the background), 1 usage error, 2 "
          "FILE is unfit to\nserve, 3 system error (also: the server failed "
          "to start, or cannot enforce\n--allow); in the foreground, once "
          "the server runs, its own status.\n");
}

/* --allow NAME=CIDR[,...] (eq at the '='): the export NAME only for
 * those networks.  The list stays whole (acl_parse splits it), each
 * entry checked here. */
static int
add_export_allow (struct serve_opts *o, char *arg, char *eq)
{
  char copy[4096], *save = NULL;

  if (eq == arg || eq[1] == '\0')
    return usage_error ("serve", "--allow %s: give NAME=CIDR[,CIDR...]: an "
                        "export's name and the networks that may open it",
                        arg);
  if (o->nr_export_allow == SERVE_MAX_ALLOW)
    return usage_error ("serve", "--allow: more than %d NAME=CIDR entries",
                        SERVE_MAX_ALLOW);
  snprintf (copy, sizeof copy, "%s", eq + 1);
  for (char *s = strtok_r (copy, ",", &save); s;
       s = strtok_r (NULL, ",", &save))
    if (!netaddr_is_cidr (s))
      return usage_error ("serve", "--allow %s: %s is not an address or "
                          "ADDR/PREFIX (e.g. 192.0.2.21 or 192.0.2.0/24)",
                          arg, s);
  *eq = '\0';
  o->allow_names[o->nr_export_allow] = arg;
  o->allow_nets[o->nr_export_allow++] = eq + 1;
  return 0;
}

/* Adds the comma-separated CIDRs in list to o->allow, or NAME=CIDR,...
 * to the per-export lists. */
static int
add_allow (struct serve_opts *o, char *list)
{
  /* The last '=': a CIDR has none, an export's file name may. */
  char *save = NULL, *eq = strrchr (list, '=');

  if (eq != NULL)
    return add_export_allow (o, list, eq);

  for (char *s = strtok_r (list, ",", &save); s;
       s = strtok_r (NULL, ",", &save)) {
    if (!netaddr_is_cidr (s))
      return usage_error ("serve", "--allow %s: not an address or "
                          "ADDR/PREFIX (e.g. 192.0.2.0/24 or 2001:db8::/32)",
                          s);
    if (o->nr_allow == SERVE_MAX_ALLOW)
      return usage_error ("serve", "--allow: more than %d entries: "
                          "use wider prefixes", SERVE_MAX_ALLOW);
    o->allow[o->nr_allow++] = s;
  }
  return 0;
}

/* A decimal number in [min, max]. */
static bool
parse_number (const char *s, unsigned long min, unsigned long max,
              unsigned long *out)
{
  char *end;

  if (s[0] < '0' || s[0] > '9')
    return false;
  errno = 0;
  *out = strtoul (s, &end, 10);
  return errno == 0 && *end == '\0' && *out >= min && *out <= max;
}

/* The command line into o->given (serve-options.c's table), then the
 * values that must be numbers or addresses checked.  0 or an exit status
 * (-1: help). */
static int
parse_options (int argc, char **argv, struct serve_opts *o)
{
  const struct serve_args *a = &o->given;
  unsigned long n;
  int r;

  r = serve_args_parse (argc, argv, &o->given, false);
  if (r == -E2BIG)
    return usage_error ("serve", "--allow: more than %d entries: "
                        "use wider prefixes", SERVE_MAX_ALLOW);
  if (r < 0)
    return try_help ("serve");  /* getopt said why */
  if (a->help) {
    usage ();
    return -1;
  }
  if (a->port && !parse_number (a->port, 1, 65535, &n))
    return usage_error ("serve", "--port %s: not a port number "
                        "(1-65535)", a->port);
  if (a->threads && !parse_number (a->threads, 1, 1024, &n))
    return usage_error ("serve", "--threads %s: not a number from 1 "
                        "to 1024 (default %d)", a->threads,
                        SERVE_DEFAULT_THREADS);
  if (a->threads)
    o->threads = (unsigned) n;
  if (a->poll_us && !parse_number (a->poll_us, 0, NATIVE_POLL_US_MAX, &n))
    return usage_error ("serve", "--poll-us %s: not a number of "
                        "microseconds from 0 to %d (default %d)",
                        a->poll_us, NATIVE_POLL_US_MAX, NATIVE_POLL_US);
  if (a->poll_us)
    o->poll_us = (long) n;
  if (a->file_io) {
    static const char *const modes[] = { "auto", "worker", "inline" };

    for (int m = 0; m < 3 && o->file_io < 0; m++)
      if (strcmp (a->file_io, modes[m]) == 0)
        o->file_io = m;
    if (o->file_io < 0)
      return usage_error ("serve", "--file-io %s: not auto, worker or "
                          "inline (auto: inline for clients on other "
                          "machines, workers for this one's)", a->file_io);
  }
  for (size_t i = 0; i < a->allow.n; i++)
    if ((r = add_allow (o, a->allow.item[i])) != 0)
      return r;
  if (a->dir && a->nr_files != 0)
    return usage_error ("serve", "--dir %s and FILE exclude each other: "
                        "serve one file, or every file in a directory",
                        a->dir);
  if (!a->dir && a->nr_files != 1)
    return usage_error ("serve", a->nr_files == 0 ? "expected FILE"
                        : "expected one FILE (nbdkit arguments go after "
                        "'--')");
  return 0;
}

/* What is served, for messages: FILE or DIR. */
static const char *
served (const struct serve_opts *o)
{
  return o->given.dir ? o->given.dir : o->given.file;
}

/* True when systemd handed this process its listening socket(s). */
static bool
socket_activated (void)
{
  const char *fds = getenv ("LISTEN_FDS"), *pid = getenv ("LISTEN_PID");

  return fds && fds[0] && fds[0] != '0'
    && (pid == NULL || atol (pid) == (long) getpid ());
}

/* The address family and loopback-ness of the activated socket (fd 3). */
static bool
activated_tcp_is_public (void)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[64];

  if (getsockname (3, (struct sockaddr *) &ss, &len) == -1)
    return false;
  if (ss.ss_family == AF_INET)
    inet_ntop (AF_INET, &((struct sockaddr_in *) &ss)->sin_addr,
               host, sizeof host);
  else if (ss.ss_family == AF_INET6)
    inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr,
               host, sizeof host);
  else
    return false;
  return !netaddr_is_loopback (host);
}

/* The rules between options; 0 or EXIT_USAGE with one line. */
static int
check_options (struct serve_opts *o)
{
  bool tcp = o->given.port || o->given.bind;

  if (o->given.native && o->given.nbdkit)
    return usage_error ("serve", "--native and --nbdkit exclude each other: "
                        "the native server is the default, --nbdkit runs "
                        "nbdkit with the plugin instead");
  if (o->given.socket && tcp)
    return usage_error ("serve", "--socket and --port/--bind exclude each "
                        "other: serve on a unix socket or on TCP");
  if (o->given.dir && o->given.export)
    return usage_error ("serve", "--dir names each export after its file: "
                        "drop --export");
  if (o->given.tls_psk && o->given.tls_certs)
    return usage_error ("serve", "--tls-psk and --tls-certificates exclude "
                        "each other: choose one kind of TLS credentials");
  if (o->given.tls_psk_exports && !(o->given.tls_psk && o->given.dir))
    return usage_error ("serve", "--tls-psk-exports says which exports of "
                        "--dir each PSK identity may open: it needs --dir "
                        "and --tls-psk");
  if (o->given.tls_verify_peer && !o->given.tls_certs)
    return usage_error ("serve", "--tls-verify-peer checks client "
                        "certificates: it needs --tls-certificates DIR");
  if (o->activated && (o->given.socket || tcp))
    return usage_error ("serve", "systemd passed a listening socket "
                        "(LISTEN_FDS): drop --socket/--port/--bind, the "
                        ".socket unit says where to listen");
  if (o->given.bind && !netaddr_is_numeric (o->given.bind))
    return usage_error ("serve", "--bind %s: not a numeric IPv4 or IPv6 "
                        "address: give the address itself", o->given.bind);
  if ((o->nr_allow > 0 || o->nr_export_allow > 0) && !tcp && !o->activated)
    return usage_error ("serve", "--allow applies to TCP (--port/--bind): "
                        "a unix socket is guarded by its mode 0600");
  if (o->nr_allow == 0 && o->given.bind && !netaddr_is_loopback (o->given.bind))
    return usage_error ("serve", "--bind %s is not loopback: give --allow "
                        "CIDR for the clients that may connect; swap pages "
                        "are process memory, whoever connects can read and "
                        "write them", o->given.bind);
  if (o->nr_allow == 0 && o->activated && activated_tcp_is_public ())
    return usage_error ("serve", "the socket systemd passed is TCP on a "
                        "non-loopback address: give --allow CIDR for the "
                        "clients that may connect; swap pages are process "
                        "memory, whoever connects can read and write them");
  return 0;
}

/* The same verification as 'nbdswap verify'; the report on stderr when
 * the file is unfit.  0 fit, else an exit status.  --dir: the plugin
 * verifies each file itself, and leaves out an unfit one. */
static int
verify_file (const struct serve_opts *o)
{
  struct verify_options vo;
  struct verify_result res;
  int fd, r;

  if (o->given.dir)
    return 0;
  fd = open (o->given.file, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd == -1) {
    log_error ("%s: cannot open: %m", o->given.file);
    return EXIT_SYSTEM;
  }
  verify_options_init (&vo);
  vo.direct = o->config.direct;
  r = verify_fd (fd, o->given.file, &vo, &res);
  close (fd);
  if (r < 0) {
    log_error ("%s: cannot verify: %s", o->given.file, strerror (-r));
    return EXIT_SYSTEM;
  }
  r = 0;
  if (res.verdict != VERIFY_FIT) {
    verify_print_text (stderr, &res);
    log_error ("%s: not fit to serve as swap (%zu problem%s above): fix "
               "%s, or recreate it with 'nbdswap create'", o->given.file,
               res.nr_errors, res.nr_errors == 1 ? "" : "s",
               res.nr_errors == 1 ? "it" : "them");
    r = EXIT_UNFIT;
  }
  verify_result_free (&res);
  return r;
}

/* A FILE that does not exist: said with the fix, for either server (the
 * native server would call it unfit, exit status 2; 'nbdswap verify'
 * cannot open it, 3).  0 or EXIT_SYSTEM. */
static int
check_file_exists (const struct serve_opts *o)
{
  struct stat st;

  if (o->given.dir || stat (o->given.file, &st) == 0 || errno != ENOENT)
    return 0;
  log_error ("%s: no such file: create it with 'nbdswap create %s SIZE'",
             o->given.file, o->given.file);
  return EXIT_SYSTEM;
}

/* The runtime directory exists, is a directory and has mode 0700. */
static int
make_runtime_dir (const char *dir)
{
  struct stat st;

  if (mkdir (dir, 0700) == -1 && errno != EEXIST) {
    log_error ("%s: cannot create the runtime directory: %m (set "
               "NBDSWAP_RUNTIME_DIR, or give --socket)", dir);
    return EXIT_SYSTEM;
  }
  if (stat (dir, &st) == -1 || !S_ISDIR (st.st_mode)) {
    log_error ("%s: not a directory: remove it, or set NBDSWAP_RUNTIME_DIR",
               dir);
    return EXIT_SYSTEM;
  }
  /* A directory that others can enter would let them reach the socket
   * if its mode were ever wider: swap pages are process memory. */
  if ((st.st_mode & 0777) != 0700 && chmod (dir, 0700) == -1) {
    log_error ("%s: cannot make it mode 0700: %m", dir);
    return EXIT_SYSTEM;
  }
  return 0;
}

/* An existing socket file at path: remove it if no one listens (a
 * server that was killed), refuse if someone does. */
static int
clear_stale_socket (const char *path)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct stat st;
  int s, r;

  if (lstat (path, &st) == -1)
    return 0;
  if (!S_ISSOCK (st.st_mode)) {
    log_error ("%s: exists and is not a socket: remove it or choose "
               "another --socket", path);
    return EXIT_SYSTEM;
  }
  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", path);
  s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s == -1) {
    log_error ("socket: %m");
    return EXIT_SYSTEM;
  }
  r = connect (s, (struct sockaddr *) &sun, sizeof sun);
  close (s);
  if (r == 0) {
    log_error ("%s: another server is listening there: stop it (see "
               "'nbdswap status') or choose another --socket", path);
    return EXIT_SYSTEM;
  }
  if (unlink (path) == -1) {
    log_error ("%s: cannot remove the stale socket: %m", path);
    return EXIT_SYSTEM;
  }
  return 0;
}

/* Binds and listens on the unix socket, mode 0600, and makes it fd 3
 * for nbdkit the way systemd would (LISTEN_FDS=1).  nbdkit sets its own
 * umask (022) before binding -U, which would leave the socket 0755. */
static int
bind_socket (struct serve_opts *o)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  mode_t old;
  int s, r;

  snprintf (sun.sun_path, sizeof sun.sun_path, "%s", o->given.socket);
  s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s == -1) {
    log_error ("socket: %m");
    return EXIT_SYSTEM;
  }
  old = umask (0177);
  r = bind (s, (struct sockaddr *) &sun, sizeof sun);
  umask (old);
  if (r == -1 || chmod (o->given.socket, 0600) == -1 || listen (s, 128) == -1) {
    log_error ("%s: cannot listen there: %m: check the directory exists "
               "and is writable, or choose another --socket", o->given.socket);
    close (s);
    return EXIT_SYSTEM;
  }
  o->listen_fd = s;
  return 0;
}

/* Hands the bound socket to nbdkit as fd 3, LISTEN_FDS=1, LISTEN_PID
 * this process (exec keeps the PID).  0 or EXIT_SYSTEM. */
static int
pass_socket (const struct serve_opts *o)
{
  char pid[32];

  if (o->listen_fd != 3 && dup2 (o->listen_fd, 3) == -1) {
    log_error ("dup2: %m");
    return EXIT_SYSTEM;
  }
  /* dup2 clears close-on-exec; a socket that already was fd 3 keeps
   * whatever it had. */
  fcntl (3, F_SETFD, 0);
  snprintf (pid, sizeof pid, "%ld", (long) getpid ());
  if (setenv ("LISTEN_FDS", "1", 1) == -1
      || setenv ("LISTEN_PID", pid, 1) == -1) {
    log_error ("setenv: %m");
    return EXIT_SYSTEM;
  }
  unsetenv ("LISTEN_FDNAMES");
  return 0;
}

/* path, made absolute (in buf) under cwd if it is not: a daemon leaves
 * the working directory.  cwd NULL (getcwd failed): path as it is. */
static const char *
absolute (const char *cwd, const char *path, char *buf, size_t len)
{
  if (path == NULL || path[0] == '/' || cwd == NULL ||
      (size_t) snprintf (buf, len, "%s/%s", cwd, path) >= len)
    return path;
  return buf;
}

/* buf (PATH_MAX bytes) = dir/name.ext: 0, or EXIT_SYSTEM (said) when
 * it does not fit. */
static int
runtime_path (char *buf, const char *dir, const char *name, const char *ext)
{
  int n = snprintf (buf, PATH_MAX, "%s/%s.%s", dir, name, ext);

  if (n >= 0 && n < PATH_MAX)
    return 0;
  log_error ("%s: too long a path for the runtime directory: choose a "
             "shorter NBDSWAP_RUNTIME_DIR", dir);
  return EXIT_SYSTEM;
}

/* Socket, pidfile and stats paths, all absolute (a server in the
 * background leaves the working directory, and status and clients
 * elsewhere need whole paths); the runtime directory made.  0 or a
 * status. */
static int
prepare_paths (struct serve_opts *o)
{
  char name[NAME_MAX + 1], cwdbuf[PATH_MAX], dirbuf[PATH_MAX];
  const char *cwd = getcwd (cwdbuf, sizeof cwdbuf);
  const char *dir = absolute (cwd, serve_runtime_dir (), dirbuf,
                              sizeof dirbuf);
  struct sockaddr_un sun;
  int r;

  serve_instance_name (served (o), name, sizeof name);
  if (!o->given.dry_run && (r = make_runtime_dir (dir)) != 0)
    return r;
  if ((r = runtime_path (o->stats_buf, dir, name, "stats")) != 0)
    return r;
  if (o->given.pidfile == NULL) {
    if ((r = runtime_path (o->pid_buf, dir, name, "pid")) != 0)
      return r;
    o->given.pidfile = o->pid_buf;
  }
  else
    o->given.pidfile = absolute (cwd, o->given.pidfile, o->pid_buf, sizeof o->pid_buf);
  /* Read again at every handshake, when a server in the background has
   * left the working directory (one of the two: check_options). */
  if (o->given.tls_psk)
    o->given.tls_psk = absolute (cwd, o->given.tls_psk, o->tls_buf,
                                 sizeof o->tls_buf);
  else
    o->given.tls_certs = absolute (cwd, o->given.tls_certs, o->tls_buf,
                                   sizeof o->tls_buf);
  if (o->activated || o->given.port || o->given.bind)
    return 0;
  if (o->given.socket == NULL) {
    if ((r = runtime_path (o->socket_buf, dir, name, "sock")) != 0)
      return r;
    o->given.socket = o->socket_buf;
  }
  else
    o->given.socket = absolute (cwd, o->given.socket, o->socket_buf,
                          sizeof o->socket_buf);
  if (strlen (o->given.socket) >= sizeof sun.sun_path) {
    log_error ("%s: a unix socket path must be shorter than %zu bytes: "
               "choose a shorter --socket or NBDSWAP_RUNTIME_DIR",
               o->given.socket, sizeof sun.sun_path);
    return EXIT_SYSTEM;
  }
  if (o->given.dry_run)
    return 0;
  if ((r = clear_stale_socket (o->given.socket)) != 0)
    return r;
  return o->given.foreground ? bind_socket (o) : 0;
}

/* TLS credentials must exist before nbdkit is asked to load them. */
static int
check_tls (const struct serve_opts *o)
{
  struct stat st;

  if (o->given.tls_psk && (stat (o->given.tls_psk, &st) == -1 || !S_ISREG (st.st_mode))) {
    log_error ("--tls-psk %s: not a readable file: make one with "
               "'psktool -u CLIENT -p %s'", o->given.tls_psk, o->given.tls_psk);
    return EXIT_SYSTEM;
  }
  if (o->given.tls_certs
      && (stat (o->given.tls_certs, &st) == -1 || !S_ISDIR (st.st_mode))) {
    log_error ("--tls-certificates %s: not a directory: give the directory "
               "holding ca-cert.pem, server-cert.pem and server-key.pem",
               o->given.tls_certs);
    return EXIT_SYSTEM;
  }
  if (o->given.tls_psk || o->given.tls_certs)
    log_info ("TLS is required of clients: attach the kernel's nbd client "
              "with 'nbdswap attach --tls-psk FILE' (or --tls-certificates "
              "DIR), which puts the keys in the kernel (kTLS); nbd-client's "
              "own TLS relays swap through a user-space proxy and can "
              "deadlock");
  return 0;
}


/* The stack limit nbdkit gets, and so its threads' stack size. */
#define SERVE_STACK (512 * 1024)

/* What survives execve: IO_FLUSHER, the OOM exemption, the memlock and
 * stack limits.  Each failure is a warning; the plugin repeats its own. */
static void
harden_before_exec (void)
{
  struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
  int r;

  r = harden_io_flusher ();
  if (r < 0)
    log_warning ("PR_SET_IO_FLUSHER: %s: nbdkit will run without it: it "
                 "needs CAP_SYS_RESOURCE (root, or AmbientCapabilities= in "
                 "the unit)", strerror (-r));
  r = harden_oom_exempt ();
  if (r < 0)
    log_warning ("oom_score_adj -1000: %s: the OOM killer may pick the "
                 "server: it needs CAP_SYS_RESOURCE (root, or "
                 "OOMScoreAdjust=-1000 in the unit)", strerror (-r));
  /* Only raises what the caller may raise (CAP_SYS_RESOURCE); the
   * plugin names the fix if mlockall then fails. */
  setrlimit (RLIMIT_MEMLOCK, &rl);
  /* glibc sizes new threads' stacks from RLIMIT_STACK (8 MiB by
   * default), and with mlockall every stack is locked address space:
   * 16 threads a connection make that hundreds of MiB of VmLck.  The
   * serving threads need a few KiB (the plugin keeps its batches small):
   * 512 KiB is ample.  Never raised, only lowered. */
  if (getrlimit (RLIMIT_STACK, &rl) == 0
      && (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SERVE_STACK)) {
    rl.rlim_cur = SERVE_STACK;
    setrlimit (RLIMIT_STACK, &rl);
  }
}

/* Where the plugin is: $NBDSWAP_PLUGIN, the build tree's when this
 * nbdswap runs from a build tree, else nbdkit's plugin directory. */
static const char *
find_plugin (char *buf, size_t len)
{
  const char *env = getenv ("NBDSWAP_PLUGIN");
  char self[PATH_MAX], *slash;
  ssize_t n;

  if (env && env[0])
    return env;
  n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    slash = strrchr (self, '/');
    if (slash) {
      *slash = '\0';
      if (snprintf (buf, len, "%s/../plugin/.libs/" SERVE_PLUGIN_SO,
                    self) < (int) len
          && access (buf, R_OK) == 0)
        return buf;
    }
  }
  return SERVE_PLUGIN_NAME;
}

/* Appends one argument; args has room (see build_args). */
#define ADD(x) (args[n++] = (char *) (x))

/* The nbdkit command line, NULL-terminated, in *out (caller frees the
 * vector; the strings are static or in o, which frees its own).  0 or
 * -errno. */
static int
build_args (struct serve_opts *o, char ***out)
{
  static char plugin[PATH_MAX], threads[16], filearg[PATH_MAX + 8];
  static char statsarg[PATH_MAX + 16], allowarg[4096], exparg[512];
  const char *nbdkit = getenv ("NBDSWAP_NBDKIT");
  char **args = calloc ((size_t) o->given.nr_extra + o->nr_export_allow + 40,
                        sizeof *args);
  size_t n = 0, used = 0;
  char *abs;

  if (args == NULL)
    return -errno;
  ADD (nbdkit && nbdkit[0] ? nbdkit : "nbdkit");
  if (o->given.foreground)
    ADD ("-f");
  /* In the foreground a unix socket is bound by us and passed as
   * LISTEN_FDS (bind_socket); an activated one is passed through. */
  if (o->given.socket && !o->given.foreground) {
    ADD ("-U");
    ADD (o->given.socket);
  }
  else if (o->given.port || o->given.bind) {
    ADD ("-p");
    ADD (o->given.port ? o->given.port : SERVE_DEFAULT_PORT);
    ADD ("-i");
    ADD (o->given.bind ? o->given.bind : "127.0.0.1");
  }
  snprintf (threads, sizeof threads, "%u", o->threads);
  ADD ("-t");
  ADD (threads);
  if (o->given.pidfile) {
    ADD ("-P");
    ADD (o->given.pidfile);
  }
  if (o->given.tls_psk || o->given.tls_certs) {
    ADD ("--tls=require");
    ADD (o->given.tls_psk ? "--tls-psk" : "--tls-certificates");
    ADD (o->given.tls_psk ? o->given.tls_psk : o->given.tls_certs);
    if (o->given.tls_verify_peer)
      ADD ("--tls-verify-peer");
  }
  if (o->given.export) {
    ADD ("-e");
    ADD (o->given.export);
    ADD ("--filter=exportname");
  }
  ADD (find_plugin (plugin, sizeof plugin));
  /* Absolute, so that 'nbdswap status FILE' can match it. */
  abs = realpath (served (o), NULL);
  snprintf (filearg, sizeof filearg, "%s=%s", o->given.dir ? "dir" : "file",
            abs ? abs : served (o));
  free (abs);
  ADD (filearg);
  snprintf (statsarg, sizeof statsarg, "stats-file=%s", o->stats_buf);
  ADD (statsarg);
  if (o->given.export) {
    snprintf (exparg, sizeof exparg, "exportname=%s", o->given.export);
    ADD (exparg);
    ADD ("exportname-strict=true");
  }
  if (o->nr_allow > 0) {
    used = (size_t) snprintf (allowarg, sizeof allowarg, "allow=");
    for (size_t i = 0; i < o->nr_allow && used < sizeof allowarg; i++)
      used += (size_t) snprintf (allowarg + used, sizeof allowarg - used,
                                 "%s%s", i ? "," : "", o->allow[i]);
    ADD (allowarg);
  }
  /* --allow NAME=CIDR: the plugin's own per-export lists (dir= only:
   * check_nbdkit and native_or_fallback refused one FILE's). */
  for (size_t i = 0; i < o->nr_export_allow; i++) {
    if (asprintf (&o->plugin_allow[i], "allow=%s=%s", o->allow_names[i],
                  o->allow_nets[i]) == -1) {
      o->plugin_allow[i] = NULL;
      free (args);
      return -ENOMEM;
    }
    ADD (o->plugin_allow[i]);
  }
  for (int i = 0; i < o->given.nr_extra; i++)
    ADD (o->given.extra[i]);
  *out = args;
  return 0;
}

/* Prints the command, shell-quoted where needed. */
static void
print_args (char **args)
{
  for (size_t i = 0; args[i]; i++) {
    const char *a = args[i];
    bool plain = a[0] != '\0' && strspn (a, "abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_=./:,@%+") == strlen (a);
    if (i)
      putchar (' ');
    if (plain)
      fputs (a, stdout);
    else {
      putchar ('\'');
      for (; *a; a++)
        if (*a == '\'')
          fputs ("'\\''", stdout);
        else
          putchar (*a);
      putchar ('\'');
    }
  }
  putchar ('\n');
}

/* Names the files serve made for nbdkit, the unix socket (bound here,
 * or nbdkit's -U) and the pidfile, for the plugin to remove at exit, as
 * the native server removes its own: nbdkit never does (servefiles.h).
 * An activated socket is systemd's, TCP has none: then its variable is
 * cleared.  0 or EXIT_SYSTEM. */
static int
name_files_for_plugin (const struct serve_opts *o)
{
  const char *sock = o->activated ? NULL : o->given.socket;

  if ((sock ? setenv (SERVEFILES_SOCKET_ENV, sock, 1)
       : unsetenv (SERVEFILES_SOCKET_ENV)) == -1 ||
      (o->given.pidfile ? setenv (SERVEFILES_PIDFILE_ENV, o->given.pidfile, 1)
       : unsetenv (SERVEFILES_PIDFILE_ENV)) == -1) {
    log_error ("setenv: %m");
    return EXIT_SYSTEM;
  }
  return 0;
}

/* Replaces this process with nbdkit; returns only on failure. */
static int
exec_nbdkit (const struct serve_opts *o, char **args)
{
  int r;

  if (o->listen_fd >= 0 && (r = pass_socket (o)) != 0)
    return r;
  fflush (NULL);
  execvp (args[0], args);
  log_error ("cannot run %s: %m: install nbdkit (Debian: apt-get install "
             "nbdkit), or set NBDSWAP_NBDKIT", args[0]);
  return EXIT_SYSTEM;
}

/* The line a background serve ends with (tests and scripts read the PID
 * from it), for nbdkit and the native server alike. */
static void
print_serving (const struct serve_opts *o, pid_t pid)
{
  printf ("nbdswap: serving %s on %s (PID %d)\n", served (o),
          o->given.socket ? o->given.socket : "TCP", (int) pid);
}

/* Background: nbdkit forks itself once the plugin accepted the file and
 * the socket is bound (its parent's exit status says whether it got
 * that far); then the socket is made 0600.  nbdkit's -U socket is 0755
 * for that moment, in a 0700 directory, and 0755 gives others no write
 * permission, which connect needs.  (serve does not hand nbdkit a
 * socket here: nbdkit runs in the foreground then and sets
 * PR_SET_PDEATHSIG, so it would die with this process.) */
static int
run_background (const struct serve_opts *o, char **args)
{
  struct timespec pause = { 0, 200 * 1000 * 1000 };
  int status;
  pid_t pid;

  unlink (o->given.pidfile);
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    log_error ("fork: %m");
    return EXIT_SYSTEM;
  }
  if (pid == 0) {
    execvp (args[0], args);
    log_error ("cannot run %s: %m: install nbdkit (Debian: apt-get install "
               "nbdkit), or set NBDSWAP_NBDKIT", args[0]);
    _exit (EXIT_SYSTEM);
  }
  if (waitpid (pid, &status, 0) == -1 || !WIFEXITED (status)
      || WEXITSTATUS (status) != 0) {
    log_error ("%s: nbdkit did not start: the lines above say why",
               served (o));
    return EXIT_SYSTEM;
  }
  if (o->given.socket && chmod (o->given.socket, 0600) == -1)
    log_warning ("%s: chmod 0600: %m", o->given.socket);
  /* The plugin locks memory after the fork; give it a moment to fail. */
  nanosleep (&pause, NULL);
  pid = servefiles_read_pid (o->given.pidfile);
  if (pid <= 0 || kill (pid, 0) == -1) {
    log_error ("%s: nbdkit stopped after starting: see the system log "
               "(journalctl -t nbdkit) for why", served (o));
    return EXIT_SYSTEM;
  }
  print_serving (o, pid);
  return EXIT_FIT;
}

/* systemd runs services in the foreground (Type=simple); so does socket
 * activation (o->activated set). */
static bool
stays_in_foreground (const struct serve_opts *o)
{
  return o->given.foreground || o->activated || getenv ("INVOCATION_ID");
}

/* Everything before nbdkit's exec; 0 or an exit status. */
static int
prepare (struct serve_opts *o)
{
  int r;

  o->given.foreground = stays_in_foreground (o);
  if ((r = verify_file (o)) != 0)
    return r;
  return prepare_paths (o);
}

/* The plugin parameters among the words after "--" into o->config, by
 * the plugin's own parser, once: a value means the same to serve's own
 * checks, to the plugin and to the native server.  Other words (nbdkit's
 * options, filters' parameters) are nbdkit's.  0 or an exit status. */
static int
parse_extra (struct serve_opts *o)
{
  char key[32], err[256];
  bool filters = false;
  int r;

  /* With an nbdkit filter, a KEY=VALUE may be the filter's (the ip
   * filter's allow=, say): then only what serve itself acts on
   * (direct=) is read, and nbdkit judges the rest. */
  for (int i = 0; i < o->given.nr_extra; i++)
    filters |= strncmp (o->given.extra[i], "--filter", 8) == 0;
  for (int i = 0; i < o->given.nr_extra; i++) {
    const char *arg = o->given.extra[i], *eq = strchr (arg, '=');
    size_t keylen = eq ? (size_t) (eq - arg) : 0;

    if (!o->given.nbdkit && (r = serve_native_param (arg, keylen)) != 0)
      return r;
    if (keylen == 0 || keylen >= sizeof key || arg[0] == '-')
      continue;
    snprintf (key, sizeof key, "%.*s", (int) keylen, arg);
    if (filters && o->given.nbdkit && strcmp (key, "direct") != 0)
      continue;
    r = config_set (&o->config, key, eq + 1, err, sizeof err);
    if (r == -ENOMEM) {
      log_error ("%s: %s", arg, strerror (ENOMEM));
      return EXIT_SYSTEM;
    }
    if (r < 0 && r != -ENOENT)
      return usage_error ("serve", "%s", err);
  }
  return 0;
}

/* The parameters in o->config that the native server cannot honour.  0
 * or EXIT_USAGE. */
static int
native_params (const struct serve_opts *o)
{
  if (o->config.engine == ENGINE_PREAD)
    return usage_error ("serve", "engine=pread: the native server (serve's "
                        "default) has only io_uring: add --nbdkit for the "
                        "plugin's pread/pwrite engine");
  if (!o->config.direct)
    return usage_error ("serve", "direct=false: the native server (serve's "
                        "default) does only O_DIRECT: add --nbdkit to serve "
                        "through the page cache");
  return 0;
}

/* The native server: what nbdkit would have done is ours; the options
 * that only make sense for nbdkit are refused, naming --nbdkit (also
 * where serve then falls back to nbdkit: a command line is valid or not
 * whatever the host allows).  0 or EXIT_USAGE. */
static int
check_native (struct serve_opts *o)
{
  if (o->given.threads)
    return usage_error ("serve", "--threads %s sets nbdkit's threads, and "
                        "the native server (serve's default) runs one "
                        "thread per connection: add --nbdkit to serve with "
                        "nbdkit, or drop --threads", o->given.threads);
  if (o->given.export && strlen (o->given.export) > NATIVE_NAME_MAX)
    return usage_error ("serve", "--export: the name is %zu bytes, over "
                        "the NBD protocol's limit of %d: choose a shorter "
                        "one", strlen (o->given.export), NATIVE_NAME_MAX);
  return native_params (o);
}

/* The native server in the background: fork; the child (which returns -1 here,
 * and serves) verifies, locks and hardens itself with the command's
 * stderr still open, so what stops it is printed here; the parent
 * returns once the child serves, or with the child's exit status. */
static int
native_background (struct serve_opts *o, struct native_opts *no)
{
  static char file[PATH_MAX], grants[PATH_MAX];
  char cwdbuf[PATH_MAX];
  int status;
  pid_t pid;

  /* The other paths are absolute already (prepare_paths). */
  if (no->tls_psk_exports)
    no->tls_psk_exports = absolute (getcwd (cwdbuf, sizeof cwdbuf),
                                    no->tls_psk_exports, grants,
                                    sizeof grants);
  if (no->dir)
    no->dir = absolute (getcwd (cwdbuf, sizeof cwdbuf), no->dir, file,
                        sizeof file);
  else
    no->file = absolute (getcwd (cwdbuf, sizeof cwdbuf), no->file, file,
                         sizeof file);
  pid = daemon_fork (&no->ready_fd, &status);
  if (pid < 0) {
    log_error ("fork: %s", strerror ((int) -pid));
    return EXIT_SYSTEM;
  }
  if (pid == 0) {
    if (chdir ("/") == -1)
      log_warning ("chdir /: %m: the server keeps this directory busy");
    return -1;
  }
  if (status == -1) {
    print_serving (o, pid);
    return EXIT_FIT;
  }
  /* The child removes the socket when it fails, but not when a signal
   * ends it. */
  if (o->given.socket)
    unlink (o->given.socket);
  if (status > 128) {
    log_error ("%s: the server was killed by signal %d (%s) before it "
               "served", served (o), status - 128, strsignal (status - 128));
    return EXIT_SYSTEM;
  }
  log_error ("%s: the server stopped before it served (exit status %d): "
             "the lines above say why", served (o), status);
  return status > 0 ? status : EXIT_SYSTEM;
}

/* The native server: bind, then serve until SIGTERM: in this process
 * with --foreground (and under systemd), else in a child in the
 * background. */
static int
serve_native (struct serve_opts *o)
{
  struct native_opts no = { .file = o->given.file, .dir = o->given.dir,
                            .listen_fd = -1,
                            .ready_fd = -1, .params = &o->config,
                            .poll_us = o->poll_us >= 0 ? (unsigned) o->poll_us
                                                       : NATIVE_POLL_US,
                            .file_io = o->file_io >= 0
                              ? (enum native_file_io) o->file_io
                              : NATIVE_FILE_IO_AUTO };
  bool background;
  char err[256];
  int r;

  background = !stays_in_foreground (o);
  o->given.foreground = true;         /* binds the unix socket in prepare_paths */
  if ((r = prepare_paths (o)) != 0)
    return r;
  for (size_t i = 0; i < o->nr_allow; i++)
    if (acl_parse (&no.acl, o->allow[i], err, sizeof err) < 0) {
      log_error ("--allow: %s", err);
      return EXIT_USAGE;
    }
  if (o->given.dry_run) {
    char params[128];

    config_format (&o->config, params, sizeof params);
    printf ("# nbdswap serve: the native server: %s%s on ",
            o->given.dir ? "every file in " : "", served (o));
    if (o->activated || o->given.socket)
      printf ("%s", o->activated ? "the socket systemd passed"
              : o->given.socket);
    else
      printf ("tcp:%s:%s", o->given.bind ? o->given.bind : "127.0.0.1",
              o->given.port ? o->given.port : SERVE_DEFAULT_PORT);
    printf (", %s\n", params);
    return EXIT_FIT;
  }
  if (o->activated)
    no.listen_fd = 3;
  else if (o->given.port || o->given.bind)
    no.listen_fd = native_listen_tcp (o->given.bind ? o->given.bind : "127.0.0.1",
                                      o->given.port ? o->given.port : SERVE_DEFAULT_PORT);
  else
    no.listen_fd = o->listen_fd;
  if (no.listen_fd < 0)
    return EXIT_SYSTEM;
  no.tcp = native_socket_is_tcp (no.listen_fd);
  no.allow_names = o->allow_names;
  no.allow_nets = o->allow_nets;
  no.nr_export_allow = o->nr_export_allow;
  no.export_name = o->given.export ? o->given.export : "";
  no.stats_path = o->stats_buf;
  no.pidfile = o->given.pidfile;
  no.tls_psk = o->given.tls_psk;
  no.tls_psk_exports = o->given.tls_psk_exports;
  no.tls_certs = o->given.tls_certs;
  no.tls_verify_peer = o->given.tls_verify_peer;
  if (background && (r = native_background (o, &no)) >= 0) {
    close (no.listen_fd);       /* the child's now: its socket stays */
    acl_free (&no.acl);
    return r;
  }
  r = native_serve (&no);
  if (o->given.socket && !o->activated)
    unlink (o->given.socket);
  acl_free (&no.acl);
  return r;
}

/* engine=io_uring where io_uring is denied: refused before anything
 * starts, by both servers alike (the plugin would refuse it too, but
 * only once nbdkit runs, with nbdkit's exit status).  0 or
 * EXIT_SYSTEM. */
static int
check_uring_required (const struct serve_opts *o)
{
  char why[256];

  if (o->config.engine != ENGINE_IO_URING
      || !serve_uring_denied (why, sizeof why))
    return 0;
  log_error ("%s needs io_uring, and %s; engine=io_uring forbids "
             "falling back to the pread/pwrite engine: allow io_uring (the "
             "container's seccomp profile, sysctl kernel.io_uring_disabled), "
             "or drop engine=io_uring",
             o->given.nbdkit ? "engine=io_uring" : "the native server", why);
  return EXIT_SYSTEM;
}

/* --nbdkit: what only the native server does is refused.  0 or
 * EXIT_USAGE. */
static int
check_nbdkit (const struct serve_opts *o)
{
  const char *only = serve_native_only (&o->given, o->nr_export_allow);

  if (o->poll_us >= 0)
    return usage_error ("serve", "--poll-us tunes the native server, and "
                        "--nbdkit runs nbdkit: drop --poll-us or --nbdkit");
  if (o->file_io >= 0)
    return usage_error ("serve", "--file-io tunes the native server, and "
                        "--nbdkit runs nbdkit: drop --file-io or --nbdkit");
  if (only)
    return usage_error ("serve", "--nbdkit: %s: drop --nbdkit", only);
  return 0;
}

/* The native server, or nbdkit with the plugin in its place where it
 * cannot serve here: swap served slower beats swap not served, but
 * never silently (one warning naming the cause and the fix), and never
 * without what the command line asks for (then refused: exit 3).
 * engine=io_uring, which forbids pread/pwrite, was refused before.
 * -1: go on with nbdkit; else serve's exit status. */
static int
native_or_fallback (struct serve_opts *o)
{
  struct native_block b;
  const char *only;

  if (!serve_native_blocked (&o->given, o->activated, &b))
    return serve_native (o);
  only = serve_native_only (&o->given, o->nr_export_allow);
  if (only) {
    log_error ("the native server %s; nbdkit cannot serve in its place, "
               "since %s; to serve, %s", b.cause, only, b.fix);
    return EXIT_SYSTEM;
  }
  log_warning ("the native server %s: FALLING BACK to nbdkit with the "
               "swapfile plugin %s%s; to serve with the native server, %s, "
               "or add --nbdkit to choose nbdkit", b.cause, b.instead,
               o->poll_us >= 0 && o->file_io >= 0
               ? " (--poll-us and --file-io do not apply)"
               : o->poll_us >= 0 ? " (--poll-us does not apply)"
               : o->file_io >= 0 ? " (--file-io does not apply)" : "", b.fix);
  o->fell_back = true;
  return -1;
}

/* nbdkit with the plugin: prepare, then exec it (or print it). */
static int
serve_nbdkit (struct serve_opts *o)
{
  char **args = NULL;
  int r;

  if ((r = prepare (o)) != 0)
    return r;
  if ((r = build_args (o, &args)) < 0) {
    log_error ("%s", strerror (-r));
    return EXIT_SYSTEM;
  }
  if (o->given.dry_run) {
    printf ("# nbdswap serve: nbdkit with the swapfile plugin%s\n",
            o->fell_back ? ", in the native server's place (the warning "
            "says why)" : "");
    if (o->given.socket && o->given.foreground)
      printf ("# nbdswap binds %s (mode 0600) and passes it to nbdkit as "
              "fd 3 (LISTEN_FDS=1)\n", o->given.socket);
    print_args (args);
    free (args);
    return EXIT_FIT;
  }
  harden_before_exec ();
  r = name_files_for_plugin (o);
  if (r == 0)
    r = o->given.foreground ? exec_nbdkit (o, args) : run_background (o, args);
  free (args);
  return r;
}

/* Parses and checks the command line, then serves with the server it
 * asks for, or the one that can serve here. */
static int
serve_main (struct serve_opts *o, int argc, char **argv)
{
  int r;

  r = parse_options (argc, argv, o);
  if (r != 0)
    return r == -1 ? EXIT_FIT : r;
  o->activated = socket_activated ();
  if ((r = check_options (o)) != 0 || (r = parse_extra (o)) != 0)
    return r;
  r = o->given.nbdkit ? check_nbdkit (o) : check_native (o);
  if (r != 0 || (r = check_file_exists (o)) != 0 ||
      (r = check_uring_required (o)) != 0 || (r = check_tls (o)) != 0)
    return r;
  if (!o->given.nbdkit && (r = native_or_fallback (o)) >= 0)
    return r;
  return serve_nbdkit (o);
}

/* nbdswap serve: the options into one struct, then serve. */
int
cmd_serve (int argc, char **argv)
{
  struct serve_opts o = { .threads = SERVE_DEFAULT_THREADS, .listen_fd = -1,
                          .poll_us = -1, .file_io = -1 };
  int r;

  config_init (&o.config);
  r = serve_main (&o, argc, argv);
  config_free (&o.config);
  for (size_t i = 0; i < o.nr_export_allow; i++)
    free (o.plugin_allow[i]);
  return r;
}
