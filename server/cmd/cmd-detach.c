/* nbdswap detach DEVICE|all: swapoff, remove the dm-crypt mapping, stop
 * the supervisor, disconnect. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "nbd-netlink.h"
#include "nbdswap.h"
#include "supervisor.h"
#include "swapdev.h"
#include "swaproom.h"

static void
usage (void)
{
  printf ("\nUsage:\n"
          " nbdswap detach /dev/nbdN|all [--force]\n"
          "\nStop swapping to a device attached with 'nbdswap attach': "
          "swapoff (the pages\ncome back into memory), remove its dm-crypt "
          "mapping, stop its supervisor and\ndisconnect it.  'all' detaches "
          "every device that has a supervisor.\n"
          "\nOptions:\n"
          " -f, --force   swapoff even if a memory cgroup or the system seems "
          "to have no\n               room for the pages (the kernel may then "
          "OOM-kill there)\n"
          " -h, --help    display this help\n"
          "\nBefore swapoff, detach checks that the pages on the device fit "
          "back into memory:\nunder every memory cgroup's memory.max and in "
          "MemAvailable, counting free space\non other swap.  If they do "
          "not, or swapoff itself runs out of memory, nothing\nis changed: "
          "the device stays attached and in use as swap.\n"
          "\nExit status: 0 detached, 1 usage error or not attached, 3 system "
          "error,\n4 the device is busy, 6 not enough memory to take the pages "
          "back (still attached).\n");
}

/* True if pid is a live nbdswap: not a stranger that reused the pid, and
 * not a zombie (a daemonized supervisor's parent is init, which may reap
 * it late). */
static bool
is_nbdswap (long pid)
{
  char path[64], stat[256] = "", *close_paren;
  FILE *fp;

  snprintf (path, sizeof path, "/proc/%ld/stat", pid);
  fp = fopen (path, "re");
  if (fp == NULL)
    return false;
  if (fgets (stat, sizeof stat, fp) == NULL)
    stat[0] = '\0';
  fclose (fp);
  close_paren = strrchr (stat, ')');
  return strstr (stat, " (nbdswap) ") != NULL && close_paren
    && close_paren[1] == ' ' && close_paren[2] != 'Z';
}

/* Sends SIGTERM to the supervisor of index and waits up to 10 s. */
static int
stop_supervisor (int index)
{
  struct timespec tick = { 0, 50 * 1000000 };
  char path[128];
  long pid = 0;
  FILE *fp;
  int i;

  supervisor_pidfile (index, path, sizeof path);
  fp = fopen (path, "re");
  if (fp == NULL)
    return -ENOENT;
  if (fscanf (fp, "%ld", &pid) != 1)
    pid = 0;
  fclose (fp);
  if (pid > 1 && is_nbdswap (pid) && kill ((pid_t) pid, SIGTERM) == 0)
    for (i = 0; i < 200 && is_nbdswap (pid); ++i)
      nanosleep (&tick, NULL);
  unlink (path);
  return 0;
}

/* 0 if the pages of swap device dev fit back into memory; else says
 * where they do not and returns EXIT_NOMEM. */
static int
check_room (const char *dev)
{
  struct swaproom_report rep;
  int r = swaproom_check (dev, &rep);

  if (r <= 0)
    return 0;          /* unreadable figures: let swapoff find out */
  if (rep.cgroup[0] != '\0')
    fprintf (stderr, "nbdswap detach: %s: cgroup %s has up to %" PRIu64
             " MiB swapped out there but room for %" PRIu64 " MiB under its "
             "memory.max: swapoff would OOM-kill in it; raise "
             "/sys/fs/cgroup%s/memory.max or add other swap, then retry "
             "(still attached)\n", dev, rep.cgroup, rep.need_kib / 1024,
             rep.room_kib / 1024, rep.cgroup);
  else
    fprintf (stderr, "nbdswap detach: %s: %" PRIu64 " MiB swapped out "
             "there but only %" PRIu64 " MiB of memory available: free "
             "memory or add other swap, then retry (still attached)\n",
             dev, rep.need_kib / 1024, rep.room_kib / 1024);
  return EXIT_NOMEM;
}

/* Swapoff whichever of the mapping or the device is swap; -1 when done
 * (or there was none), else an exit code. */
static int
swap_off (int index, bool force)
{
  char name[64], dev[96];
  int r;

  swapdev_crypt_name (index, name, sizeof name);
  snprintf (dev, sizeof dev, "/dev/mapper/%s", name);
  if (!swapdev_is_active (dev))
    snprintf (dev, sizeof dev, "/dev/nbd%d", index);
  if (!swapdev_is_active (dev))
    return -1;
  if (!force && (r = check_room (dev)) != 0)
    return r;
  r = swapdev_swapoff (dev);
  if (r == -ENOMEM) {
    fprintf (stderr, "nbdswap detach: swapoff %s: not enough memory to take "
             "the pages back: free memory, raise the memory.max of the "
             "cgroups using it or add other swap, then retry (still "
             "attached)\n", dev);
    return EXIT_NOMEM;
  }
  if (r < 0) {
    fprintf (stderr, "nbdswap detach: swapoff %s: %s\n", dev, strerror (-r));
    return r == -EBUSY ? EXIT_BUSY : EXIT_SYSTEM;
  }
  return -1;
}

/* Detaches one device; an exit code. */
static int
detach_one (int index, bool force)
{
  char pidfile[128];
  int r;

  supervisor_pidfile (index, pidfile, sizeof pidfile);
  if (!nbd_device_in_use (index, NULL) && access (pidfile, F_OK) == -1) {
    fprintf (stderr, "nbdswap detach: /dev/nbd%d is not attached\n", index);
    return EXIT_USAGE;
  }
  if ((r = swap_off (index, force)) >= 0)
    return r;
  r = swapdev_crypt_close (index);
  if (r < 0 && r != -ENOENT) {
    fprintf (stderr, "nbdswap detach: cannot remove the dm-crypt mapping "
             "of /dev/nbd%d (in use? see 'dmsetup info')\n", index);
    return EXIT_BUSY;
  }
  stop_supervisor (index);
  r = nbdnl_disconnect (index);
  if (r < 0 && nbd_device_in_use (index, NULL)) {
    fprintf (stderr, "nbdswap detach: NBD_CMD_DISCONNECT /dev/nbd%d: %s\n",
             index, strerror (-r));
    return EXIT_SYSTEM;
  }
  printf ("/dev/nbd%d detached\n", index);
  return EXIT_FIT;
}

/* Every device with a supervisor pidfile. */
static int
detach_all (bool force)
{
  struct dirent *d;
  int index, r, worst = EXIT_FIT, n = 0;
  DIR *dir = opendir ("/run/nbdswap");

  while (dir && (d = readdir (dir)) != NULL)
    if (sscanf (d->d_name, "attach-nbd%d.pid", &index) == 1
        && strstr (d->d_name, ".tmp") == NULL) {
      ++n;
      r = detach_one (index, force);
      if (r != EXIT_FIT)
        worst = r;
    }
  if (dir)
    closedir (dir);
  if (n == 0)
    printf ("nothing attached\n");
  return worst;
}

int
cmd_detach (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "force", no_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c, index = -1;
  bool force = false;

  while ((c = getopt_long (argc, argv, "fh", longopts, NULL)) != -1) {
    switch (c) {
    case 'f': force = true; break;
    case 'h': usage (); return EXIT_FIT;
    default: return try_help ("detach");
    }
  }
  if (argc - optind != 1)
    return usage_error ("detach", argc == optind ? "no device given "
                        "(/dev/nbdN or all)" : "too many arguments");
  if (strcmp (argv[optind], "all") != 0
      && (index = nbd_device_index (argv[optind])) < 0)
    return usage_error ("detach", "'%s' is not an nbd device (/dev/nbdN "
                        "or all)", argv[optind]);
  if (geteuid () != 0) {
    fprintf (stderr, "nbdswap detach: must run as root (swapoff and nbd "
             "netlink need CAP_SYS_ADMIN)\n");
    return EXIT_SYSTEM;
  }
  if (strcmp (argv[optind], "all") == 0)
    return detach_all (force);
  return detach_one (index, force);
}
