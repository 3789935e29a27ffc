/* nbdswap native server: the serving process (see native.h).
 *
 * At start, the same checks as the plugin's .get_ready, in the same
 * order, by the same module (lib/backing.c): open O_DIRECT, learn the
 * alignment and prove direct reads work, the size, the owner lock, a
 * full verification (the file must be fit).  Then the process hardening
 * (mlockall MCL_ONFAULT, oom_score_adj) and the monitor thread
 * (re-verification on SIGHUP, stats on SIGUSR1).  The main thread accepts; every connection
 * gets a thread (PR_SET_IO_FLUSHER, negotiation, then its own ring).
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
#include "harden.h"
#include "log.h"
#include "native.h"
#include "native-proto.h"
#include "nbdswap.h"
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

static struct native_export export;
static struct req_target target;
static struct conn_entry conns[MAX_CONNS];
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop_pipe[2] = { -1, -1 };
static struct backing backing;

/* The native server's own counters, logged after each "stats:" line. */
static void
report_native_counters (void)
{
  uint64_t spins, hits;

  log_info ("native: %" PRIu64 " requests over %d KiB went through a "
            "connection's one large buffer", native_large_uses (),
            NATIVE_SLOT_DATA / 1024);
  native_poll_counts (&spins, &hits);
  log_info ("native: depth-1 spin (--poll-us %" PRIu64 "): %" PRIu64
            " spins, %" PRIu64 " saw the disk complete", export.poll_ns / 1000,
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
 * SIGUSR1) come with it, from backing_monitor_start. */
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

/* NBD_OPT_GO: set up the connection's ring before the client is told
 * yes. */
struct go_ctx {
  struct conn_entry *ce;
  struct conn *c;
};

static int
go_setup (void *arg, char *why, size_t whylen)
{
  struct go_ctx *g = arg;

  if (g->c == NULL)
    g->c = native_conn_new (g->ce->sock, g->ce->stop_fd, &export, why,
                            whylen);
  if (g->c == NULL)
    return -1;
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
  struct go_ctx g = { ce, NULL };
  int r;

  harden_serving_thread ();
  r = native_handshake (ce->sock, &export, go_setup, &g);
  if (r < 0)
    log_info ("native: negotiation failed: %s", strerror (-r));
  if (r == 1) {
    native_conn_serve (g.c);
    /* TLS is on whenever configured: an orderly end for the client. */
    if (export.tls)
      tls_ktls_close_notify (ce->sock);
  }
  else
    native_conn_free (g.c);
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

/* Open, prove, size, lock and verify the file (lib/backing.c, which
 * says what failed); 0, or the exit status. */
static int
open_backing (const struct native_opts *o)
{
  char why[512];
  int r;

  backing_init (&backing);
  backing.path = o->file;
  backing.read_write_only = "--native serves read-write only";
  backing.no_direct_fix = " (--native has no page-cache mode)";
  backing.stats_path = o->stats_path;
  backing.recheck = o->params->recheck;
  backing.report_extra = report_native_counters;
  r = backing_open (&backing);
  if (r < 0)
    return r == BACKING_UNFIT ? EXIT_UNFIT : EXIT_SYSTEM;
  export.fd = backing.fd;
  export.size = backing.size;
  export.align = backing.dio.offset;
  export.mem_align = dio_mem_align (&backing.dio);
  /* Found now, not at a client's first request. */
  r = native_conn_probe (&export, why, sizeof why);
  if (r < 0) {
    log_error ("%s", why);
    return EXIT_SYSTEM;
  }
  r = backing_claim (&backing);
  if (r < 0)
    return r == BACKING_UNFIT ? EXIT_UNFIT : EXIT_SYSTEM;
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
               "or serve without --native (nbdkit does TLS in user space)");
    return EXIT_SYSTEM;
  }
  if (tls_ktls_probe (why, sizeof why) < 0) {
    log_error ("native: TLS: %s; or serve without --native (nbdkit does TLS "
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

int
native_serve (struct native_opts *o)
{
  struct tls_creds *tls;
  const struct dio_align *d = &backing.dio;
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
  export.tls = tls;
  export.name = o->export_name;
  export.poll_ns = (uint64_t) o->poll_us * 1000;
  /* What the plugin offers (fast zero only to refuse it: see
   * native_request). */
  export.flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
    NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN |
    NBD_FLAG_SEND_FAST_ZERO;
  status = open_backing (o);
  if (status != 0)
    goto out;
  status = EXIT_SYSTEM;
  r = req_target_init (&target, o->file, export.size, export.align,
                       export.mem_align, &(struct retry_policy) {
                         o->params->retry_timeout, o->params->retry_eio });
  if (r < 0) {
    errno = -r;
    log_error ("native: preparing the request engine: %m");
    goto out;
  }
  export.target = &target;
  if (harden_serving_process (o->params->mlock, ", or add '-- mlock=false' "
                              "to serve's command line to run unlocked") < 0
      || install_signals () < 0 || backing_monitor_start (&backing) < 0)
    goto out;
  status = 0;
  log_info ("native: serving %s: %" PRIu64 " bytes, alignment %" PRIu32
            " (memory %" PRIu32 ", %s)", o->file, export.size, d->offset,
            d->mem, d->source);
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
  backing_monitor_stop (&backing);
  req_target_fini (&target);
  backing_close (&backing);
  if (pidfile)
    unlink (pidfile);
  tls_creds_free (tls);
  return status;
}
