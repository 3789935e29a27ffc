/* nbdswap: the attach supervisor: reconnect on NBD_CMD_LINK_DEAD. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "harden.h"
#include "log.h"
#include "nbd-netlink.h"
#include "supervisor.h"

#define PIDDIR "/run/nbdswap"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static volatile sig_atomic_t stop_signal;

static void
on_stop (int sig)
{
  stop_signal = sig;
}

void
supervisor_pidfile (int index, char *path, size_t len)
{
  snprintf (path, len, PIDDIR "/attach-nbd%d.pid", index);
}

void
supervisor_harden (void)
{
  int r;

  if ((r = harden_mlock ()) < 0)
    log_warning ("supervisor: mlockall: %s: it may be swapped out itself "
                 "(needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK)",
                 strerror (-r));
  if ((r = harden_io_flusher ()) < 0)
    log_warning ("supervisor: PR_SET_IO_FLUSHER: %s: a reconnect under "
                 "memory pressure may deadlock (needs CAP_SYS_RESOURCE)",
                 strerror (-r));
  if ((r = harden_oom_exempt ()) < 0)
    log_warning ("supervisor: oom_score_adj -1000: %s: the OOM killer may "
                 "end it (needs CAP_SYS_RESOURCE)", strerror (-r));
}

/* Writes our pid to the pidfile (temporary file, then rename). */
int
supervisor_write_pidfile (int index)
{
  char path[128], tmp[140];
  FILE *fp;

  if (mkdir (PIDDIR, 0755) == -1 && errno != EEXIST)
    return -errno;
  supervisor_pidfile (index, path, sizeof path);
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  fp = fopen (tmp, "we");
  if (fp == NULL)
    return -errno;
  fprintf (fp, "%ld\n", (long) getpid ());
  if (fclose (fp) == EOF || rename (tmp, path) == -1)
    return -errno;
  return 0;
}

int
supervisor_daemonize (int index)
{
  char ident[32];
  int ready_fd, status;
  pid_t pid;

  pid = daemon_fork (&ready_fd, &status);
  if (pid < 0)
    return (int) pid;
  if (pid > 0)
    /* The parent returns success only once the child is in place. */
    _exit (status == -1 ? EXIT_SUCCESS : 3);
  if (chdir ("/") == -1)
    return -errno;
  if (supervisor_write_pidfile (index) < 0)
    log_warning ("cannot write the pidfile under " PIDDIR
                 ": detach will not find this supervisor");
  snprintf (ident, sizeof ident, "nbdswap-attach[nbd%d]", index);
  return daemon_ready (ready_fd, ident);
}

/* Sleeps ms milliseconds unless a stop signal arrives. */
static void
nap (int ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };

  while (!stop_signal && nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Connects again (with backoff) and hands one socket to the kernel.
 * Returns 0, -ENOSPC (the kernel had no dead connection), or -EINTR. */
static int
reconnect_one (struct supervisor *s)
{
  struct nbd_export e = { 0 };
  char err[256];
  int delay = BACKOFF_MIN_MS, fd, r, tries = 0;

  while (!stop_signal) {
    fd = nbd_handshake (&s->target, &e, err, sizeof err);
    if (fd >= 0 && e.size != s->size) {
      log_error ("reconnect: the export is now %" PRIu64 " bytes, was %"
                 PRIu64 ": not handing it to /dev/nbd%d", e.size, s->size,
                 s->index);
      close (fd);
      fd = -EINVAL;
    }
    if (fd >= 0) {
      r = nbdnl_reconfigure (s->index, &fd, 1);
      close (fd);               /* the kernel holds its own reference */
      if (r == 0) {
        log_info ("reconnected /dev/nbd%d after %d attempts", s->index,
                  tries + 1);
        return 0;
      }
      if (r == -ENOSPC)
        return r;
      log_error ("reconnect: NBD_CMD_RECONFIGURE /dev/nbd%d: %s", s->index,
                 strerror (-r));
    }
    else if (tries % 10 == 0)
      log_warning ("reconnect /dev/nbd%d: %s (retrying)", s->index, err);
    ++tries;
    nap (delay);
    delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
  }
  return -EINTR;
}

/* After lost notifications: replace dead sockets until none is left. */
static void
reconnect_all (struct supervisor *s)
{
  int i;

  for (i = 0; i < 64 && reconnect_one (s) == 0; ++i)
    ;
}

int
supervisor_run (struct supervisor *s)
{
  struct sigaction sa;
  struct pollfd pfd;
  int r;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;     /* no SA_RESTART: poll must return */
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  pfd.fd = nbdnl_monitor_fd (s->monitor);
  pfd.events = POLLIN;
  log_info ("supervising /dev/nbd%d", s->index);
  while (!stop_signal) {
    if (poll (&pfd, 1, -1) == -1) {
      if (errno == EINTR)
        continue;
      log_error ("poll: %m");
      return 3;
    }
    r = nbdnl_monitor_read (s->monitor, s->index);
    if (r == 1) {
      log_warning ("/dev/nbd%d: the kernel reports a dead connection: "
                   "reconnecting", s->index);
      if (reconnect_one (s) == -ENOSPC)
        log_info ("/dev/nbd%d: no dead connection left", s->index);
    }
    else if (r == -ENOBUFS) {
      log_warning ("/dev/nbd%d: netlink notifications lost: checking every "
                   "connection", s->index);
      reconnect_all (s);
    }
    else if (r < 0) {
      /* A notification may have been lost with the error: look. */
      log_warning ("netlink: %s: checking every connection", strerror (-r));
      reconnect_all (s);
    }
  }
  log_info ("supervisor for /dev/nbd%d stopping (signal %d)", s->index,
            (int) stop_signal);
  return 0;
}
