/* Integration test: statistics and re-verification.  SIGUSR1 writes the
 * counters to the stats file (JSON) and logs them while serving; at exit
 * they are written and logged again, final; SIGHUP re-verifies the file
 * (counted) and does not stop the server.  Built twice: test-stats runs
 * nbdkit with the plugin (stats-file=), test-stats-native the native
 * server (STATS_NATIVE names its nbdswap; the counters go to its runtime
 * directory, where 'nbdswap status' reads them). */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct server s;

/* The value of "key": in the JSON file, or -1. */
static long long
json_value (const char *file, const char *key)
{
  char buf[2048], pat[64];
  FILE *fp = fopen (file, "re");
  size_t n;
  char *p;

  if (fp == NULL)
    return -1;
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  snprintf (pat, sizeof pat, "\"%s\":", key);
  p = strstr (buf, pat);
  return p ? strtoll (p + strlen (pat), NULL, 10) : -1;
}

static bool
wait_for_file (const char *file)
{
  struct stat st;

  for (int i = 0; i < 500; i++) {
    if (stat (file, &st) == 0)
      return true;
    usleep (10000);
  }
  return false;
}

/* Signal every thread of the server, every 200 µs, for ms. */
static void
signal_storm (pid_t pid, int sig, int ms)
{
  uint64_t end = 0;
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  end = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000 + ms;
  for (;;) {
    char dir[64];
    DIR *d;
    struct dirent *e;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    if ((uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000 >= end)
      return;
    snprintf (dir, sizeof dir, "/proc/%d/task", (int) pid);
    d = opendir (dir);
    while (d && (e = readdir (d)) != NULL)
      if (e->d_name[0] != '.')
        syscall (SYS_tgkill, pid, atoi (e->d_name), sig);
    if (d)
      closedir (d);
    usleep (200);
  }
}

struct storm { pid_t pid; int ms; };

static void *
storm_thread (void *arg)
{
  struct storm *st = arg;
  signal_storm (st->pid, SIGUSR1, st->ms);
  return NULL;
}

/* Flushes while every server thread is showered with SIGUSR1 and the
 * file has dirty pages (so fdatasync is slow and gets interrupted): no
 * flush may fail, and the requests after them must neither fail nor
 * hang (a flush once left stale completions in its thread's ring). */
static void
test_flush_under_signals (const char *filearg, const char *path)
{
  struct nbd_handle *h;
  static char buf[65536];
  pthread_t t;
  struct storm st;
  int fd;

  const char *params[] = { filearg, "recheck=0", NULL };
  CHECK (server_start (&s, NULL, params) == 0, "start");
  h = server_connect (&s, true);
  fd = open (path, O_WRONLY);
  st = (struct storm) { s.pid, 3000 };
  pthread_create (&t, NULL, storm_thread, &st);
  alarm (120);                          /* a hang fails the test */
  for (int i = 0; i < 20; i++) {
    for (int j = 0; j < 64 && fd >= 0; j++)
      if (pwrite (fd, buf, sizeof buf, (off_t) j * 65536) != sizeof buf)
        break;                          /* dirty the page cache */
    CHECK (nbd_flush (h, 0) == 0, "flush %d: %s", i, nbd_get_error ());
  }
  pthread_join (t, NULL);
  for (int i = 0; i < 200; i++) {
    CHECK (nbd_pwrite (h, buf, 4096, (uint64_t) i * 4096, 0) == 0,
           "write %d after the storm: %s", i, nbd_get_error ());
    CHECK (nbd_pread (h, buf, 4096, (uint64_t) i * 4096, 0) == 0,
           "read %d after the storm: %s", i, nbd_get_error ());
  }
  alarm (0);
  if (fd >= 0)
    close (fd);
  nbd_close (h);
  CHECK (server_stop (&s) == 0, "server exit");
  {
    char *log = server_log (&s);
    CHECK (strstr (log, "no progress") == NULL,
           "stale completions taken for data");
    free (log);
  }
}

/* Stats requests more often than recheck= must not postpone it. */
static void
test_recheck_not_postponed (const char *filearg, const char *statsarg,
                            const char *stats)
{
  const char *params[] = { filearg, "recheck=1",
                           statsarg[0] ? statsarg : NULL, NULL };

  CHECK (server_start (&s, NULL, params) == 0, "start");
  for (int i = 0; i < 14; i++) {       /* 3.5 s of SIGUSR1 every 0.25 s */
    kill (s.pid, SIGUSR1);
    usleep (250000);
  }
  usleep (300000);
  CHECK (json_value (stats, "rechecks") >= 2, "%lld re-verifications in "
         "3.5 s with recheck=1 and frequent SIGUSR1",
         json_value (stats, "rechecks"));
  CHECK (server_stop (&s) == 0, "server exit");
}

int
main (void)
{
  char path[400], filearg[420], stats[400], statsarg[420];
  struct nbd_handle *h;
  static char buf[4096];
  char *log;

#ifdef STATS_NATIVE
  setenv ("NBDSWAP_NATIVE", STATS_NATIVE, 1);
#endif
  harness_init (&s, "stats");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  if (harness_native ()) {
    /* serve's own: RUNTIME_DIR/NAME.stats, the runtime directory being
     * the test's (see the harness). */
    snprintf (stats, sizeof stats, "%s/backing.stats", s.dir);
    statsarg[0] = '\0';
  }
  else {
    snprintf (stats, sizeof stats, "%s/server.stats", s.dir);
    snprintf (statsarg, sizeof statsarg, "stats-file=%s", stats);
  }
  make_file (path, 8 << 20, 8);
  /* No stats-file= for the native server: the list ends before it. */
  const char *params[] = { filearg, statsarg[0] ? statsarg : NULL, NULL };
  CHECK (server_start (&s, NULL, params) == 0, "start");

  h = server_connect (&s, true);
  for (int i = 0; i < 50; i++)
    CHECK (nbd_pread (h, buf, sizeof buf, (uint64_t) i * 4096, 0) == 0,
           "pread");
  for (int i = 0; i < 20; i++)
    CHECK (nbd_pwrite (h, buf, sizeof buf, (uint64_t) i * 4096, 0) == 0,
           "pwrite");
  CHECK (nbd_flush (h, 0) == 0, "flush");

  kill (s.pid, SIGHUP);
  usleep (500000);                      /* a 8 MiB file: quickly verified */
  kill (s.pid, SIGUSR1);
  CHECK (wait_for_file (stats), "no stats file after SIGUSR1");
  CHECK (json_value (stats, "rechecks") == 1, "rechecks %lld after SIGHUP, "
         "want 1", json_value (stats, "rechecks"));
  CHECK (json_value (stats, "reads") == 50, "reads %lld",
         json_value (stats, "reads"));
  CHECK (json_value (stats, "writes") == 20, "writes %lld",
         json_value (stats, "writes"));
  CHECK (json_value (stats, "write_bytes") == 20 * 4096, "write_bytes");
  CHECK (json_value (stats, "flushes") == 1, "flushes");
  CHECK (json_value (stats, "errors") == 0, "errors");
  CHECK (json_value (stats, "p50") > 0, "no latency recorded");
  /* The time sums: the engine's for every request, each of 71 at least
   * a microsecond's work; the native server's whole turn (header read
   * to reply sent) for each of its 71 replies, which holds the
   * engine's time; nbdkit sends the plugin's. */
  CHECK (json_value (stats, "engine_ns") >= 71 * 1000, "engine_ns %lld "
         "for 71 requests", json_value (stats, "engine_ns"));
  if (harness_native ()) {
    CHECK (json_value (stats, "turns") == 71, "turns %lld, want 71",
           json_value (stats, "turns"));
    CHECK (json_value (stats, "turn_ns") > json_value (stats, "engine_ns"),
           "turn_ns %lld not above engine_ns %lld",
           json_value (stats, "turn_ns"), json_value (stats, "engine_ns"));
  }
  else
    CHECK (json_value (stats, "turns") == 0, "turns %lld without the "
           "native server", json_value (stats, "turns"));
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0,
         "the server stopped serving after SIGHUP/SIGUSR1");
  nbd_close (h);
  log = server_log (&s);
  CHECK (strstr (log, "stats: reads=50 writes=20") != NULL,
         "SIGUSR1 did not log the counters");
  free (log);

  CHECK (server_stop (&s) == 0, "server exit");
  CHECK (json_value (stats, "reads") == 51, "final reads %lld",
         json_value (stats, "reads"));
  log = server_log (&s);
  CHECK (strstr (log, "stats: reads=51 writes=20") != NULL,
         "the counters were not logged at exit");
  free (log);
  test_recheck_not_postponed (filearg, statsarg, stats);
  test_flush_under_signals (filearg, path);
  harness_cleanup (&s);
  return harness_exit (harness_native () ? "test-stats-native"
                       : "test-stats");
}
