/* nbdswap native server: the serving process (see native.h).
 *
 * At start, the same checks as the plugin's .get_ready, in the same
 * order, by the same module (lib/backing.c, through the set of exports,
 * lib/exports.c): open O_DIRECT, learn the alignment and prove direct
 * reads work, the size, the owner lock, a full verification (the file
 * must be fit).  One FILE is a set of one export (an unfit file stops
 * the start); --dir DIR serves each fit file in DIR (an unfit one is
 * left out, logged).  Then the process hardening (mlockall MCL_ONFAULT,
 * oom_score_adj) and the monitor thread (re-verification, and a re-scan
 * of DIR, on SIGHUP; stats on SIGUSR1).  The main thread accepts; every
 * connection gets a thread (PR_SET_IO_FLUSHER, negotiation, in which the
 * client picks its export by name, then its own ring).
 * SIGTERM/SIGINT: stop accepting, shut the read side of every
 * connection (so each finishes the requests it has and sends their
 * replies), join them, write the stats, exit 0.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>

#include "backing.h"
#include "clock.h"
#include "daemon.h"
#include "exports.h"
#include "harden.h"
#include "log.h"
#include "native.h"
#include "native-proto.h"
#include "nbdswap.h"
#include "peer.h"
#include "request.h"
#include "retry.h"
#include "tls.h"

/* Connections served at once; more are closed at accept with a log
 * line (the kernel opens one per --connections, at most 16 in
 * practice). */
#define MAX_CONNS 64

/* The accept loop's pause after an error it cannot clear by itself
 * (out of file descriptors, an error on the listening socket), and the
 * least time between two log lines of such errors. */
#define ACCEPT_BACKOFF_MS 100
#define ACCEPT_LOG_EVERY_NS (10 * UINT64_C (1000000000))


struct conn_entry {
  pthread_t thread;
  int sock;                     /* -1 once the thread closed it */
  int stop_fd;                  /* eventfd: stop serving */
  atomic_bool serving;          /* past the negotiation */
  bool used;
  atomic_bool done;
};

/* A connection refusing more names than this stops logging them. */
#define REFUSALS_LOGGED 4

/* What every connection gets whatever its export: flags, spin, TLS. */
static struct native_export server;
static enum native_file_io file_io;    /* --file-io */
static struct exports exports;
/* --dir's directory, held open while serving: 'nbdswap status' finds
 * which directory this process serves by it (as the kernel names it),
 * as it finds a file served by its descriptor. */
static int served_dir = -1;
static struct conn_entry conns[MAX_CONNS];
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop_pipe[2] = { -1, -1 };

/* The native server's own counters, logged after each "stats:" line. */
static void
report_native_counters (void)
{
  uint64_t spins, hits;

  log_info ("native: %" PRIu64 " requests over %d KiB went through "
            "runs of a connection's mid buffers, %" PRIu64 " larger ones "
            "through its one large buffer", native_run_uses (),
            NATIVE_MID_DATA / 1024, native_large_uses ());
  log_info ("native: %" PRIu64 " requests waited for one of a "
            "connection's %d buffers of %d KiB", native_mid_waits (),
            NATIVE_MID_BUFS, NATIVE_MID_DATA / 1024);
  native_poll_counts (&spins, &hits);
  log_info ("native: depth-1 spin (--poll-us %" PRIu64 "): %" PRIu64
            " spins, %" PRIu64 " saw the disk complete", server.poll_ns / 1000,
            spins, hits);
}

static void
on_stop (int sig)
{
  int saved = errno;

  if (write (stop_pipe[1], "x", 1) == -1) {
    /* The pipe is full: a stop is already pending. */
  }
  errno = saved;
}

/* Signal handlers: stop (SIGTERM, SIGINT); the monitor's (SIGHUP,
 * SIGUSR1) come with it, from exports_monitor_start. */
static int
install_signals (void)
{
  struct sigaction sa = { .sa_handler = on_stop };

  if (pipe2 (stop_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
    log_error ("pipe2: %m");
    return -1;
  }
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction (SIGTERM, &sa, NULL) == -1 || sigaction (SIGINT, &sa, NULL)) {
    log_error ("sigaction: %m");
    return -1;
  }
  signal (SIGPIPE, SIG_IGN);
  return 0;
}

/* A connection's negotiation: who the client is, the export it chose
 * (a reference into the set) and, once it asked to go, its ring and its
 * place among the export's clients in the counters. */
struct go_ctx {
  struct conn_entry *ce;
  struct sockaddr_storage addr; /* the client's address */
  bool have_addr;
  struct export *x;             /* selected, held */
  char identity[256];           /* the TLS-PSK identity that selected x */
  struct native_export view;    /* x as the connection serves it */
  struct conn *c;
  struct export_conn session;   /* attached to x once it serves */
  bool attached;
  bool file_here;               /* file_io_decide's: may be this machine */
  bool file_device;             /* ... x is a block device with a pool of
                                   its own (backing_own_bio_pool) */
  char file_why[160];           /* ... and why */
  unsigned refusals;            /* names refused to it */
};

/* A name refused: one log line naming the client and the export (up to
 * REFUSALS_LOGGED per connection: a client cannot flood the log). */
static void
log_refusal (struct go_ctx *g, const struct export_client *who,
             const char *name, bool exists)
{
  if (++g->refusals > REFUSALS_LOGGED)
    return;
  exports_log_refusal ("native: ", who, name, exists,
                       g->refusals == REFUSALS_LOGGED
                       ? "; further refusals on this connection are not "
                       "logged" : "");
}

/* The catalogue's select: the export called name, if this client may
 * open it, becomes the connection's. */
static int
catalog_select (void *arg, const char *name, const char *identity,
                const struct native_export **e)
{
  struct go_ctx *g = arg;
  struct export_client who = {
    identity, g->have_addr ? (const struct sockaddr *) &g->addr : NULL, NULL,
    0
  };
  bool exists;
  struct export *x = exports_get (&exports, name, &who, &exists);

  if (x == NULL) {
    log_refusal (g, &who, name, exists);
    return -ENOENT;
  }
  /* The connection holds one export: a later GO may name another. */
  if (g->c == NULL) {
    exports_put (&exports, g->x);
    g->x = x;
    g->view = server;
    g->view.fd = x->backing.fd;
    g->view.target = &x->target;
    g->view.size = x->backing.size;
    g->view.align = x->backing.dio.offset;
    g->view.mem_align = dio_mem_align (&x->backing.dio);
    g->view.name = x->name;
    snprintf (g->identity, sizeof g->identity, "%s",
              identity ? identity : "");
  }
  else
    exports_put (&exports, x);        /* never after GO: only INFO's */
  *e = &g->view;
  return 0;
}

/* The catalogue's list: the names this client may open. */
static int
catalog_list (void *arg, const char *identity,
              int (*emit) (void *ctx, const char *name), void *ctx)
{
  struct go_ctx *g = arg;
  struct export_client who = {
    identity, g->have_addr ? (const struct sockaddr *) &g->addr : NULL, NULL,
    0
  };

  return exports_list (&exports, &who, emit, ctx);
}

/* How the connection of g issues its file operations (native.h, enum
 * native_file_io): g->view.file_inline, with the reason in g->file_why
 * and whether the client may be this machine in g->file_here.  The
 * workers are for a file's sake: a block device's direct I/O takes its
 * bios from a pool of its own (backing.h), so the cycle they break does
 * not form, and auto issues inline for every client of one. */
static void
file_io_decide (struct go_ctx *g)
{
  g->file_here = peer_in_this_kernel (g->have_addr
                                      ? (const struct sockaddr *) &g->addr
                                      : NULL, g->file_why,
                                      sizeof g->file_why);
  g->file_device = backing_own_bio_pool (&g->x->backing);
  g->view.file_inline = file_io == NATIVE_FILE_IO_INLINE
    || (file_io == NATIVE_FILE_IO_AUTO && (!g->file_here || g->file_device));
}

/* Say file_io_decide's choice once per connection (a client connects
 * once, and again after a restart), with the reason: as information,
 * or as a warning when --file-io inline was asked for a client that may
 * be this machine. */
static void
file_io_log (const struct go_ctx *g)
{
  const char *mode = file_io == NATIVE_FILE_IO_INLINE ? "--file-io inline"
    : file_io == NATIVE_FILE_IO_WORKER ? "--file-io worker"
    : g->file_here && g->file_device ? "a block device, its own bio pool; "
                                       "the client may be this machine"
    : g->file_here ? "the client may be this machine"
    : "the client is elsewhere";

  if (g->view.file_inline && g->file_here && !g->file_device)
    log_warning ("native: export '%s': file operations inline (%s) for a "
                 "client that may be this machine (%s): if this machine "
                 "swaps through it, an operation waiting for memory can "
                 "stop the replies that would free it; use --file-io auto",
                 g->x->name, mode, g->file_why);
  else
    log_info ("native: export '%s': file operations %s (%s: %s)",
              g->x->name, g->view.file_inline ? "inline"
              : "through io_uring's workers", mode, g->file_why);
}

/* NBD_OPT_GO: the export is this client's alone (exports_attach), and
 * the connection's ring is set up, before the client is told yes.
 * 0, -EBUSY (the export is another client's), or -1; each refusal
 * logged (exports_attach logs its own). */
static int
go_setup (void *arg, char *why, size_t whylen)
{
  struct go_ctx *g = arg;

  if (!g->attached) {
    struct export_client who = {
      g->identity[0] ? g->identity : NULL,
      g->have_addr ? (const struct sockaddr *) &g->addr : NULL, NULL, 0
    };

    file_io_decide (g);
    who.file_io = g->view.file_inline ? "inline" : "worker";
    who.here = g->file_here ? 1 : -1;
    if (exports_attach (&exports, g->x, &g->session, &who, "native: ", why,
                        whylen) < 0)
      return -EBUSY;
    g->attached = true;
    file_io_log (g);
  }
  if (g->c == NULL)
    g->c = native_conn_new (g->ce->sock, g->ce->stop_fd, &g->view, why,
                            whylen);
  if (g->c == NULL) {
    log_error ("native: a client asked for export '%s', refused: %s",
               g->x->name, why);
    return -1;
  }
  /* Serving from now on, before the client hears yes: a stop from then
   * on must let its first requests be served (its ring reads stop_fd),
   * not cut the socket as for a client still negotiating. */
  atomic_store (&g->ce->serving, true);
  return 0;
}

/* A connection's thread: negotiate, then serve. */
static void *
conn_thread (void *arg)
{
  struct conn_entry *ce = arg;
  struct go_ctx g = { .ce = ce };
  struct native_catalog cat = {
    .tls = server.tls, .tls_psk = exports.cfg.psk,
    .select = catalog_select, .list = catalog_list, .go = go_setup,
    .arg = &g,
  };
  socklen_t alen = sizeof g.addr;
  int r;

  harden_serving_thread ();
  g.have_addr = getpeername (ce->sock, (struct sockaddr *) &g.addr, &alen)
    == 0;
  r = native_handshake (ce->sock, &cat);
  if (r < 0)
    log_info ("native: negotiation failed: %s", strerror (-r));
  if (r == 1) {
    native_conn_serve (g.c);
    /* TLS is on whenever configured: an orderly end for the client. */
    if (server.tls)
      tls_ktls_close_notify (ce->sock);
  }
  else
    native_conn_free (g.c);
  /* After the ring (which registered its file) is gone. */
  if (g.attached)
    exports_detach (&exports, g.x, &g.session);
  exports_put (&exports, g.x);
  pthread_mutex_lock (&conns_lock);
  close (ce->sock);
  ce->sock = -1;
  close (ce->stop_fd);
  ce->stop_fd = -1;
  pthread_mutex_unlock (&conns_lock);
  atomic_store (&ce->done, true);
  return NULL;
}

/* Join the threads whose connections ended. */
static void
reap (bool all)
{
  for (int i = 0; i < MAX_CONNS; i++) {
    if (!conns[i].used || (!all && !atomic_load (&conns[i].done)))
      continue;
    pthread_join (conns[i].thread, NULL);
    conns[i].used = false;
  }
}

/* Is this TCP client on the allow list? */
static bool
client_allowed (int sock, const struct native_opts *o)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  if (!o->tcp || o->acl.n == 0)
    return true;
  if (getpeername (sock, (struct sockaddr *) &ss, &len) == -1)
    return false;
  return acl_admit (&o->acl, (struct sockaddr *) &ss, "--allow");
}

/* Start a thread for an accepted connection. */
static void
start_conn (int sock, const struct native_opts *o)
{
  int one = 1, i;

  if (!client_allowed (sock, o)) {
    close (sock);
    return;
  }
  if (o->tcp)
    setsockopt (sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  reap (false);
  for (i = 0; i < MAX_CONNS && conns[i].used; i++)
    ;
  if (i == MAX_CONNS) {
    log_error ("native: %d connections already: refusing one more",
               MAX_CONNS);
    close (sock);
    return;
  }
  conns[i].stop_fd = eventfd (0, EFD_CLOEXEC);
  if (conns[i].stop_fd == -1) {
    log_error ("eventfd: %m: dropping a connection");
    close (sock);
    return;
  }
  conns[i].sock = sock;
  conns[i].used = true;
  atomic_store (&conns[i].done, false);
  atomic_store (&conns[i].serving, false);
  errno = pthread_create (&conns[i].thread, NULL, conn_thread, &conns[i]);
  if (errno != 0) {
    log_error ("pthread_create: %m: dropping a connection");
    conns[i].used = false;
    close (conns[i].stop_fd);
    close (sock);
  }
}

/* Log an accept loop error, at most once per ACCEPT_LOG_EVERY_NS (a
 * condition that lasts repeats on every turn), saying how many were
 * not logged. */
static void
accept_error (const char *what, int err)
{
  static uint64_t last_ns;
  static unsigned quiet;
  uint64_t now = clock_now_ns ();

  if (last_ns != 0 && now - last_ns < ACCEPT_LOG_EVERY_NS) {
    quiet++;
    return;
  }
  errno = err;
  if (quiet)
    log_error ("native: %s: %m (and %u more like it not logged); pausing "
               "%d ms", what, quiet, ACCEPT_BACKOFF_MS);
  else
    log_error ("native: %s: %m; pausing %d ms", what, ACCEPT_BACKOFF_MS);
  last_ns = now;
  quiet = 0;
}

/* Accept one connection; false to pause (an error that lasts: no file
 * descriptors, no memory), after which the client still waits in the
 * listen queue. */
static bool
accept_one (const struct native_opts *o)
{
  int s = accept4 (o->listen_fd, NULL, NULL, SOCK_CLOEXEC);

  if (s >= 0) {
    start_conn (s, o);
    return true;
  }
  if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
    return true;
  if (errno == EMFILE || errno == ENFILE)
    accept_error ("accept: out of file descriptors (raise ulimit -n, "
                  "LimitNOFILE=)", errno);
  else
    accept_error ("accept", errno);
  return false;
}

/* Accept until a stop signal.  Never spins: an error that poll keeps
 * reporting (on the listening socket, or EMFILE with a client waiting)
 * pauses the loop, and its log line is rate-limited. */
static void
accept_loop (const struct native_opts *o)
{
  struct pollfd p[2] = { { o->listen_fd, POLLIN, 0 },
                         { stop_pipe[0], POLLIN, 0 } };
  int timeout = -1;

  for (;;) {
    int r = poll (p, 2, timeout);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      log_error ("poll: %m");
      return;
    }
    if (p[1].revents)
      return;
    if (r == 0) {               /* the pause is over: listen again */
      p[0].fd = o->listen_fd;
      timeout = -1;
      continue;
    }
    if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      int err = 0;
      socklen_t len = sizeof err;

      if (getsockopt (o->listen_fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1
          || err == 0)
        err = EIO;
      accept_error ("the listening socket reports an error", err);
    }
    else if (!(p[0].revents & POLLIN) || accept_one (o))
      continue;
    /* Pause: watch only the stop pipe for a while (a negative fd is
     * ignored by poll, POLLERR and POLLHUP included). */
    p[0].fd = -1;
    timeout = ACCEPT_BACKOFF_MS;
  }
}

/* Finish: every connection serves the requests it has read, then ends;
 * one still negotiating is cut off. */
static void
stop_all (void)
{
  uint64_t one = 1;

  pthread_mutex_lock (&conns_lock);
  for (int i = 0; i < MAX_CONNS; i++) {
    if (!conns[i].used || conns[i].sock < 0)
      continue;
    if (write (conns[i].stop_fd, &one, sizeof one) != sizeof one)
      log_error ("eventfd write: %m");
    if (!atomic_load (&conns[i].serving))
      shutdown (conns[i].sock, SHUT_RDWR);
  }
  pthread_mutex_unlock (&conns_lock);
  reap (true);
}

int
native_listen_tcp (const char *addr, const char *port)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
  struct addrinfo *ai;
  int one = 1, s, r = getaddrinfo (addr, port, &hints, &ai);

  if (r != 0) {
    log_error ("--bind %s --port %s: %s", addr, port, gai_strerror (r));
    return -1;
  }
  s = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (s, ai->ai_addr, ai->ai_addrlen) == -1 || listen (s, 128) == -1) {
      log_error ("%s port %s: cannot listen there: %m", addr, port);
      close (s);
      s = -1;
    }
  }
  else
    log_error ("socket: %m");
  freeaddrinfo (ai);
  return s;
}

bool
native_socket_is_tcp (int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  return getsockname (fd, (struct sockaddr *) &ss, &len) == 0 &&
    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* The PID file, for 'nbdswap status' and scripts. */
static void
write_pidfile (const char *path)
{
  FILE *fp;

  if (path == NULL)
    return;
  fp = fopen (path, "we");
  if (fp == NULL || fprintf (fp, "%d\n", (int) getpid ()) < 0 ||
      fclose (fp) == EOF)
    log_warning ("pidfile %s: %m", path);
}

/* The set: FILE as one export, or every file of --dir.  0, or the exit
 * status. */
static int
open_exports (const struct native_opts *o)
{
  struct exports_config cfg = {
    .dir = o->dir,
    .read_write_only = "the native server serves read-write only (--nbdkit "
    "serves a read-only file)",
    .no_direct_fix = " (the native server has no page-cache mode; nbdkit "
    "has: --nbdkit -- direct=false)",
    .retry = { o->params->retry_timeout, o->params->retry_eio },
    .stats_path = o->stats_path,
    .recheck = o->params->recheck,
    .report_extra = report_native_counters,
    /* A directory's exports each belong to the identity of their name;
     * one FILE to every identity of the key file, as before. */
    .psk = o->tls_psk != NULL && o->dir != NULL,
  };
  char err[256] = "";
  int r;

  exports_init (&exports, &cfg);
  if (o->dir != NULL && !cfg.psk && o->nr_export_allow == 0)
    log_warning ("--dir %s: every client that connects may open every "
                 "export: give each client its own with --tls-psk (an "
                 "identity opens the export of its name) or --allow "
                 "NAME=CIDR", o->dir);
  for (size_t i = 0; i < o->nr_export_allow; i++)
    if (exports_allow (&exports, o->allow_names[i], o->allow_nets[i], err,
                       sizeof err) < 0) {
      log_error ("--allow %s=%s: %s", o->allow_names[i], o->allow_nets[i],
                 err);
      return EXIT_USAGE;
    }
  if (o->tls_psk_exports != NULL
      && exports_read_grants (&exports, o->tls_psk_exports, err,
                              sizeof err) < 0) {
    log_error ("--tls-psk-exports: %s", err);
    return EXIT_SYSTEM;
  }
  if (o->dir == NULL) {
    r = exports_add_file (&exports, o->export_name, o->file);
    if (r < 0)
      return r == BACKING_UNFIT ? EXIT_UNFIT : EXIT_SYSTEM;
    return 0;
  }
  served_dir = open (o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (exports_scan (&exports) < 0)
    return EXIT_SYSTEM;
  if (exports_count (&exports) == 0)
    log_warning ("--dir %s: no export to serve yet: add swap backing files "
                 "('nbdswap create %s/NAME SIZE'), then send SIGHUP",
                 o->dir, o->dir);
  return 0;
}

/* Can a connection be set up here at all (io_uring, memory)?  Found at
 * start, not at a client's first request: with the first export, or
 * with the directory itself standing in for a file.  0, or the exit
 * status. */
static int
probe_connections (const struct native_opts *o)
{
  struct native_export e = server;
  struct export *x = exports.list;
  char why[512];
  int r, dirfd = -1;

  if (x != NULL) {
    e.fd = x->backing.fd;
    e.align = x->backing.dio.offset;
    e.mem_align = dio_mem_align (&x->backing.dio);
  }
  else {
    dirfd = open (o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    e.fd = dirfd;
    e.align = e.mem_align = 4096;
  }
  r = native_conn_probe (&e, why, sizeof why);
  if (dirfd >= 0)
    close (dirfd);
  if (r < 0) {
    log_error ("%s", why);
    return EXIT_SYSTEM;
  }
  return 0;
}

/* TLS credentials loaded and kTLS proven, before anything is opened:
 * the native server's TLS is the kernel's (lib/tls.c).  0, or the exit
 * status. */
static int
setup_tls (const struct native_opts *o, struct tls_creds **creds)
{
  char why[512];
  const char *path = o->tls_psk ? o->tls_psk : o->tls_certs;

  *creds = NULL;
  if (path == NULL)
    return 0;
  if (!o->tcp) {
    log_error ("native: TLS on a unix socket: the native server's TLS runs "
               "in the kernel (kTLS), which needs TCP: serve on --port/--bind, "
               "or add --nbdkit (nbdkit does TLS in user space)");
    return EXIT_SYSTEM;
  }
  if (tls_ktls_probe (why, sizeof why) < 0) {
    log_error ("native: TLS: %s; or add --nbdkit (nbdkit does TLS "
               "in user space)", why);
    return EXIT_SYSTEM;
  }
  if (tls_creds_load (creds, o->tls_psk ? TLS_PSK : TLS_X509, TLS_SERVER,
                      path, NULL, o->tls_verify_peer, why, sizeof why) < 0) {
    log_error ("native: TLS credentials: %s", why);
    return EXIT_SYSTEM;
  }
  return 0;
}

/* The start-up line: what is served. */
static void
log_serving (const struct native_opts *o)
{
  const struct export *x = exports.list;
  const struct dio_align *d;

  if (o->dir != NULL) {
    log_info ("native: serving %zu export%s from %s", exports_count (&exports),
              exports_count (&exports) == 1 ? "" : "s", o->dir);
    return;
  }
  d = &x->backing.dio;
  log_info ("native: serving %s: %" PRIu64 " bytes, alignment %" PRIu32
            " (memory %" PRIu32 ", %s)", o->file, x->backing.size, d->offset,
            d->mem, d->source);
}

int
native_serve (struct native_opts *o)
{
  struct tls_creds *tls;
  const char *pidfile = NULL;   /* once written */
  char params[128];
  int r, status;

  harden_malloc ();
  /* Before the monitor and connection threads exist, as the plugin does
   * at .load: each thread's stack is locked address space. */
  r = harden_thread_stacks ();
  if (r < 0)
    log_warning ("cannot make thread stacks smaller (%s): every thread "
                 "keeps RLIMIT_STACK (ulimit -s) of locked address space; "
                 "lower that limit", strerror (-r));
  status = setup_tls (o, &tls);
  if (status != 0)
    return status;
  server.tls = tls;
  server.name = o->export_name;
  server.poll_ns = (uint64_t) o->poll_us * 1000;
  file_io = o->file_io;
  /* What the plugin offers (fast zero only to refuse it: see
   * native_request). */
  server.flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN |
    NBD_FLAG_SEND_FAST_ZERO;
  status = open_exports (o);
  if (status == 0)
    status = probe_connections (o);
  if (status != 0)
    goto out;
  status = EXIT_SYSTEM;
  if (harden_serving_process (o->params->mlock, ", or add '-- mlock=false' "
                              "to serve's command line to run unlocked") < 0
      || install_signals () < 0 || exports_monitor_start (&exports) < 0)
    goto out;
  status = 0;
  log_serving (o);
  config_format (o->params, params, sizeof params);
  log_info ("native: %s", params);
  write_pidfile (o->pidfile);
  pidfile = o->pidfile;
  if (o->ready_fd >= 0 && (r = daemon_ready (o->ready_fd, "nbdswap-serve"))
      < 0) {
    log_error ("native: the serve command that started this server is "
               "gone (%s): stopping", strerror (-r));
    status = EXIT_SYSTEM;
  }
  else
    accept_loop (o);
  close (o->listen_fd);
  stop_all ();
 out:
  exports_monitor_stop (&exports);
  exports_close (&exports);
  if (served_dir >= 0)
    close (served_dir);
  served_dir = -1;
  if (pidfile)
    unlink (pidfile);
  tls_creds_free (tls);
  return status;
}
