/* Integration test: the serving process is made safe for the reclaim
 * path.  VmLck > 0 with mlock=true (the default) and 0 with mlock=false;
 * when mlockall is refused (RLIMIT_MEMLOCK without CAP_IPC_LOCK) the
 * server does not start and says how to fix it.  Serving threads carry
 * PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE (PR_SET_IO_FLUSHER) and the process
 * oom_score_adj -1000 when it has CAP_SYS_RESOURCE; without it (the
 * development sandbox), each is a logged warning. */
#include <config.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "harness.h"

#define PF_MEMALLOC_NOIO 0x00080000UL
#define PF_LOCAL_THROTTLE 0x00100000UL
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#define PR_GET_IO_FLUSHER 58
#endif

static struct server s;
static char path[400], filearg[420];

/* AddressSanitizer turns mlock and mlockall into no-ops that succeed:
 * in the sanitizer pass (server runtimes preloaded) nothing can be said
 * about VmLck, and mlockall cannot be made to fail. */
static bool
sanitized (void)
{
  const char *p = getenv ("NBDSWAP_SERVER_PRELOAD");
  return p && *p;
}

static long
status_kb (pid_t pid, const char *field)
{
  char p[64], line[256];
  FILE *fp;
  long v = -1;

  snprintf (p, sizeof p, "/proc/%d/status", (int) pid);
  fp = fopen (p, "re");
  while (fp && fgets (line, sizeof line, fp))
    if (strncmp (line, field, strlen (field)) == 0)
      v = strtol (line + strlen (field) + 1, NULL, 10);
  if (fp)
    fclose (fp);
  return v;
}

/* Threads of pid whose flags have both IO_FLUSHER bits. */
static int
flusher_threads (pid_t pid)
{
  char p[300], buf[1024];
  DIR *d;
  struct dirent *e;
  int n = 0;

  snprintf (p, sizeof p, "/proc/%d/task", (int) pid);
  d = opendir (p);
  while (d && (e = readdir (d)) != NULL) {
    FILE *fp;
    char *rp;
    unsigned long flags = 0;

    if (e->d_name[0] == '.')
      continue;
    snprintf (p, sizeof p, "/proc/%d/task/%s/stat", (int) pid, e->d_name);
    fp = fopen (p, "re");
    if (fp == NULL)
      continue;
    /* Field 9 (flags) comes after "pid (comm) state ppid pgrp session
     * tty_nr tpgid": skip past the last ')' to be safe with odd names. */
    if (fgets (buf, sizeof buf, fp) && (rp = strrchr (buf, ')')) != NULL
        && sscanf (rp + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1
        && (flags & (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE))
           == (PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE))
      n++;
    fclose (fp);
  }
  if (d)
    closedir (d);
  return n;
}

static int
oom_score_adj (pid_t pid)
{
  char p[64];
  FILE *fp;
  int v = 0;

  snprintf (p, sizeof p, "/proc/%d/oom_score_adj", (int) pid);
  fp = fopen (p, "re");
  if (fp && fscanf (fp, "%d", &v) != 1)
    v = 0;
  if (fp)
    fclose (fp);
  return v;
}

static void
touch_export (void)
{
  struct nbd_handle *h = server_connect (&s, true);
  static char buf[65536];

  for (int i = 0; i < 32; i++)
    CHECK (nbd_pread (h, buf, sizeof buf, (uint64_t) i * 65536, 0) == 0,
           "pread: %s", nbd_get_error ());
  nbd_close (h);
}

/* On ext4 the server pins the file's extent map in the extent cache. */
static void
check_extent_cache (const char *log)
{
  struct statfs sfs;

  if (statfs (path, &sfs) == 0 && sfs.f_type == EXT4_SUPER_MAGIC)
    CHECK (strstr (log, "extent map precached in ext4's extent cache")
           != NULL, "ext4: no 'extent map precached' line in the log");
  else
    printf ("test file not on ext4: extent cache pinning not checked\n");
}

static void
test_locked_and_flagged (bool capable)
{
  const char *params[] = { filearg, NULL };
  char *log;

  CHECK (server_start (&s, NULL, params) == 0, "start");
  touch_export ();
  if (!sanitized ())
    CHECK (status_kb (s.pid, "VmLck:") > 0, "VmLck %ld kB with mlock=true",
           status_kb (s.pid, "VmLck:"));
  log = server_log (&s);
  if (capable) {
    CHECK (flusher_threads (s.pid) >= 1, "no serving thread is an IO flusher");
    CHECK (oom_score_adj (s.pid) == -1000, "oom_score_adj %d",
           oom_score_adj (s.pid));
    CHECK (strstr (log, "PR_SET_IO_FLUSHER") == NULL, "spurious warning");
  }
  else {
    CHECK (flusher_threads (s.pid) == 0, "IO flusher without the capability?");
    CHECK (strstr (log, "PR_SET_IO_FLUSHER: Operation not permitted") != NULL,
           "no IO_FLUSHER warning in the log");
    CHECK (strstr (log, "oom_score_adj -1000: Permission denied") != NULL
           || strstr (log, "oom_score_adj -1000: Operation not permitted")
           != NULL, "no oom_score_adj warning in the log");
    /* Warned once, not per thread. */
    CHECK (strstr (strstr (log, "PR_SET_IO_FLUSHER") + 1,
                   "PR_SET_IO_FLUSHER") == NULL, "warned more than once");
  }
  check_extent_cache (log);
  free (log);
  CHECK (server_stop (&s) == 0, "server exit");
}

/* Locked address space grows by little more than a small stack per
 * serving thread: the plugin makes nbdkit's threads' stacks 512 KiB in
 * .load (glibc would give each RLIMIT_STACK, 8 MiB by default, all of it
 * locked under mlockall).  Three more connections of 16 threads each
 * must add well under 1 MiB of VmLck per thread. */
static void
test_small_stacks (void)
{
  const char *params[] = { filearg, NULL };
  struct nbd_handle *h[4];
  long lck0, lck1, thr0, thr1, per_thread;

  if (sanitized ()) {
    printf ("SKIP stack sizes: ASan makes mlockall a no-op\n");
    return;
  }
  CHECK (server_start (&s, NULL, params) == 0, "start");
  h[0] = server_connect (&s, true);
  lck0 = status_kb (s.pid, "VmLck:");
  thr0 = status_kb (s.pid, "Threads:");
  for (int i = 1; i < 4; i++)
    h[i] = server_connect (&s, true);
  /* nbdkit starts a connection's threads as it serves it: wait until
   * the count has settled. */
  thr1 = status_kb (s.pid, "Threads:");
  for (int tries = 0; tries < 100; tries++) {
    usleep (50000);
    if (status_kb (s.pid, "Threads:") == thr1 && thr1 >= thr0 + 3 * 16)
      break;
    thr1 = status_kb (s.pid, "Threads:");
  }
  lck1 = status_kb (s.pid, "VmLck:");
  CHECK (thr1 >= thr0 + 3 * 16, "threads %ld -> %ld: nbdkit should start 16 "
         "a connection", thr0, thr1);
  per_thread = (lck1 - lck0) / (thr1 - thr0);
  printf ("VmLck %ld kB -> %ld kB for %ld more threads: %ld kB each\n",
          lck0, lck1, thr1 - thr0, per_thread);
  CHECK (per_thread > 0 && per_thread <= 1024,
         "%ld kB of locked address space per serving thread", per_thread);
  for (int i = 0; i < 4; i++)
    nbd_close (h[i]);
  CHECK (server_stop (&s) == 0, "server exit");
}

static void
test_unlocked (void)
{
  const char *params[] = { filearg, "mlock=false", NULL };

  CHECK (server_start (&s, NULL, params) == 0, "start");
  touch_export ();
  CHECK (status_kb (s.pid, "VmLck:") == 0, "VmLck %ld kB with mlock=false",
         status_kb (s.pid, "VmLck:"));
  CHECK (server_stop (&s) == 0, "server exit");
}

/* Without CAP_IPC_LOCK and with a 64 KiB RLIMIT_MEMLOCK, mlockall fails:
 * the server must refuse to start and name the fix. */
static void
test_mlock_refused (void)
{
  const char *params[] = { filearg, NULL };
  struct server b;
  char *log;

  if (sanitized ()) {
    printf ("SKIP mlock refusal: ASan makes mlockall a no-op\n");
    return;
  }
  if (access ("/usr/bin/setpriv", X_OK) != 0
      || access ("/usr/bin/prlimit", X_OK) != 0) {
    printf ("SKIP mlock refusal: setpriv/prlimit (util-linux) missing\n");
    return;
  }
  setenv ("NBDSWAP_SERVER_WRAPPER", MEMLOCK_WRAPPER, 1);
  harness_init (&b, "mlock");
  CHECK (server_start (&b, NULL, params) == -1, "started without memlock");
  log = server_log (&b);
  CHECK (strstr (log, "mlockall: Cannot allocate memory") != NULL
         && strstr (log, "mlock=false") != NULL,
         "no clear mlock refusal in:\n%s", log);
  free (log);
  harness_cleanup (&b);
  unsetenv ("NBDSWAP_SERVER_WRAPPER");
}

int
main (void)
{
  /* Does this process (and so the server it starts) have
   * CAP_SYS_RESOURCE?  PR_SET_IO_FLUSHER answers without side effects
   * that matter for a test process. */
  bool capable = prctl (PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0;

  printf ("CAP_SYS_RESOURCE: %s\n", capable ? "yes" : "no (sandbox)");
  harness_init (&s, "harden");
  snprintf (path, sizeof path, "%s/backing.img", s.dir);
  snprintf (filearg, sizeof filearg, "file=%s", path);
  make_file (path, 4 << 20, 6);
  test_locked_and_flagged (capable);
  test_unlocked ();
  test_small_stacks ();
  test_mlock_refused ();
  harness_cleanup (&s);
  return harness_exit ("test-harden");
}
