/* Integration test: the engine really in use.  engine=io_uring must do
 * its I/O through rings (seen in /proc/PID/fdinfo: their SQ heads move);
 * engine=pread must have none.  Under a seccomp filter that denies
 * io_uring_setup (a container's default profile), engine=auto must serve
 * correctly through pread/pwrite and say why, loudly; engine=io_uring
 * must refuse to start. */
#include <config.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SIZE (UINT64_C (4) << 20)

static struct server s;
static char path[400], filearg[420];

/* Rings of pid and the sum of their SQ heads (submissions made). */
static int
count_rings (pid_t pid, unsigned long *sq_total)
{
  char dir[64], link[600], target[256], line[256];
  DIR *d;
  struct dirent *e;
  int rings = 0;

  *sq_total = 0;
  snprintf (dir, sizeof dir, "/proc/%d/fd", (int) pid);
  d = opendir (dir);
  if (d == NULL)
    return -1;
  while ((e = readdir (d)) != NULL) {
    ssize_t n;
    FILE *fp;

    snprintf (link, sizeof link, "%s/%s", dir, e->d_name);
    n = readlink (link, target, sizeof target - 1);
    if (n < 0)
      continue;
    target[n] = '\0';
    if (strcmp (target, "anon_inode:[io_uring]") != 0)
      continue;
    rings++;
    snprintf (link, sizeof link, "/proc/%d/fdinfo/%s", (int) pid, e->d_name);
    fp = fopen (link, "re");
    while (fp && fgets (line, sizeof line, fp)) {
      unsigned long v;
      if (sscanf (line, "SqHead: %lu", &v) == 1)
        *sq_total += v;
    }
    if (fp)
      fclose (fp);
  }
  closedir (d);
  return rings;
}

/* Write, read back and compare through a fresh connection. */
static void
exercise (void)
{
  struct nbd_handle *h = server_connect (&s, false);
  static unsigned char buf[65536], back[65536];

  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char) (i * 31 + 7);
  for (int i = 0; i < 64; i++) {
    uint64_t off = (uint64_t) i * 65536 + (i % 3);
    CHECK (nbd_pwrite (h, buf, sizeof buf - 5, off, 0) == 0, "pwrite: %s",
           nbd_get_error ());
    CHECK (nbd_pread (h, back, sizeof buf - 5, off, 0) == 0, "pread: %s",
           nbd_get_error ());
    CHECK (memcmp (buf, back, sizeof buf - 5) == 0, "data at %" PRIu64, off);
  }
  CHECK (nbd_flush (h, 0) == 0, "flush");
  nbd_close (h);
}

static void
test_uring_observed (void)
{
  const char *params[] = { filearg, "engine=io_uring", "workers=4", NULL };
  unsigned long sq;
  int rings;

  CHECK (server_start (&s, NULL, params) == 0, "start");
  exercise ();
  rings = count_rings (s.pid, &sq);
  CHECK (rings >= 4, "engine=io_uring: %d rings in the server", rings);
  CHECK (sq >= 128, "engine=io_uring: only %lu submissions seen", sq);
  CHECK (server_stop (&s) == 0, "server exit");
}

static void
test_pread_has_no_ring (void)
{
  const char *params[] = { filearg, "engine=pread", NULL };
  unsigned long sq;

  CHECK (server_start (&s, NULL, params) == 0, "start");
  exercise ();
  CHECK (count_rings (s.pid, &sq) == 0, "engine=pread made rings");
  CHECK (server_stop (&s) == 0, "server exit");
}

static void
test_seccomp_fallback (void)
{
  const char *auto_params[] = { filearg, NULL };
  const char *uring_params[] = { filearg, "engine=io_uring", NULL };
  struct server b;
  unsigned long sq;
  char *log;

  setenv ("NBDSWAP_SERVER_WRAPPER", SECCOMP_WRAPPER, 1);
  CHECK (server_start (&s, NULL, auto_params) == 0, "auto under seccomp");
  exercise ();
  CHECK (count_rings (s.pid, &sq) == 0, "rings despite seccomp");
  CHECK (server_stop (&s) == 0, "server exit");
  log = server_log (&s);
  CHECK (strstr (log, "FALLING BACK to the pread/pwrite engine") != NULL,
         "no loud fallback warning in:\n%s", log);
  CHECK (strstr (log, "seccomp") != NULL, "the reason is not named");
  free (log);

  /* --dump-plugin tells the operator the same, with the reason. */
  {
    char cmd[1200], out[4096] = "";
    const char *pl = getenv ("NBDSWAP_PLUGIN") ? getenv ("NBDSWAP_PLUGIN")
      : PLUGIN_PATH;
    FILE *fp;
    size_t n;

    const char *pre = getenv ("NBDSWAP_SERVER_PRELOAD");

    /* A sanitizer build's plugin needs its runtime preloaded into nbdkit,
     * as the harness does for servers. */
    bool preload = pre && *pre;

    snprintf (cmd, sizeof cmd, "%s%s %s nbdkit --dump-plugin %s",
              preload ? "ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=" : "",
              preload ? pre : "", SECCOMP_WRAPPER, pl);
    fp = popen (cmd, "r");
    n = fp ? fread (out, 1, sizeof out - 1, fp) : 0;
    out[n] = '\0';
    if (fp)
      pclose (fp);
    CHECK (strstr (out, "swapfile_io_uring=no\n") != NULL
           && strstr (out, "swapfile_io_uring_reason=io_uring_setup was "
                      "denied (EPERM)") != NULL,
           "--dump-plugin under seccomp:\n%s", out);
  }

  harness_init (&b, "seccomp");
  CHECK (server_start (&b, NULL, uring_params) == -1,
         "engine=io_uring started under seccomp");
  log = server_log (&b);
  CHECK (strstr (log, "engine=io_uring: io_uring_setup was denied") != NULL,
         "no clear refusal in:\n%s", log);
  free (log);
  harness_cleanup (&b);
  unsetenv ("NBDSWAP_SERVER_WRAPPER");
}

int
main (void)
{
  harness_init (&s, "engine");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  make_file (path, SIZE, 5);
  test_uring_observed ();
  test_pread_has_no_ring ();
  test_seccomp_fallback ();
  harness_cleanup (&s);
  return harness_exit ("test-engine");
}
