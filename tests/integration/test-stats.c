/* Integration test: statistics.  SIGUSR1 writes the counters to
 * stats-file= (JSON) and logs them while serving; at exit they are
 * written and logged again, final; SIGHUP (a re-verification) does not
 * stop the server. */
#include <config.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int
main (void)
{
  char path[400], filearg[420], stats[400], statsarg[420];
  struct nbd_handle *h;
  static char buf[4096];
  char *log;

  harness_init (&s, "stats");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  snprintf (stats, sizeof stats, "%s/server.stats", s.dir);
  /* Relative on purpose: the plugin anchors it before nbdkit's chdir. */
  snprintf (statsarg, sizeof statsarg, "stats-file=%s", stats);
  make_file (path, 1 << 20, 8);
  const char *params[] = { filearg, statsarg, NULL };
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
  kill (s.pid, SIGUSR1);
  CHECK (wait_for_file (stats), "no stats file after SIGUSR1");
  CHECK (json_value (stats, "reads") == 50, "reads %lld",
         json_value (stats, "reads"));
  CHECK (json_value (stats, "writes") == 20, "writes %lld",
         json_value (stats, "writes"));
  CHECK (json_value (stats, "write_bytes") == 20 * 4096, "write_bytes");
  CHECK (json_value (stats, "flushes") == 1, "flushes");
  CHECK (json_value (stats, "errors") == 0, "errors");
  CHECK (json_value (stats, "p50") > 0, "no latency recorded");
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
  harness_cleanup (&s);
  return harness_exit ("test-stats");
}
