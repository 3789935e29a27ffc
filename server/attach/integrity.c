/* nbdswap attach --integrity: dm-integrity under dm-crypt, so that a
 * block changed or corrupted outside this machine reaches the process as
 * an error (SIGBUS), never as its memory.
 *
 * The integrity device is in direct mode ('D': no journal; swap needs no
 * crash consistency, its contents die with the boot) with no hash of its
 * own: it only stores the tags dm-crypt's AEAD cipher computes (the
 * HMAC-SHA256 of each 4 KiB sector and its random IV).  Built from device
 * mapper tables alone, no LUKS header: the first 64 KiB of /dev/nbdN are
 * zeroed, so the kernel formats a fresh superblock, then the mapping is
 * loaded once with one block to learn how many data sectors the device
 * provides, and again at that size.
 *
 * Every sector of the new device has no valid tag until it is written,
 * and a read of it fails (an "INTEGRITY AEAD ERROR" in the kernel log):
 * attach writes the swap header itself (swaphdr.c) and reads nothing,
 * swapon reads only that page, and swap only pages it wrote.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swapdev.h"

/* What the kernel formats away: its superblock and first metadata. */
#define INTEGRITY_ZERO (64 * 1024)

void
swapdev_integrity_name (int index, char *name, size_t len)
{
  snprintf (name, len, "nbdswap-nbd%d-integrity", index);
}

/* Zero the start of dev, where the integrity superblock goes, with a
 * direct write (through to the server). */
static int
zero_start (const char *dev)
{
  void *buf;
  int fd, r = 0;

  if (posix_memalign (&buf, 4096, INTEGRITY_ZERO) != 0)
    return -ENOMEM;
  memset (buf, 0, INTEGRITY_ZERO);
  fd = open (dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd == -1)
    r = -errno;
  else {
    if (pwrite (fd, buf, INTEGRITY_ZERO, 0) != INTEGRITY_ZERO || fsync (fd))
      r = -EIO;
    close (fd);
  }
  free (buf);
  return r;
}

/* dmsetup VERB name with the integrity table (of nr sectors). */
static int
load (const char *verb, const char *name, int index, uint64_t nr)
{
  char table[256];
  int len;

  len = snprintf (table, sizeof table, "0 %" PRIu64 " integrity /dev/nbd%d 0 "
                  "%d D 1 block_size:4096\n", nr, index, SWAPDEV_INTEGRITY_TAG);
  return swapdev_dmsetup (verb, name, table, (size_t) len);
}

/* dmsetup's one-line answer about name (status or info). */
static int
ask (const char *name, char *const extra[], char *out, size_t outlen)
{
  char *argv[12] = { (char *) "dmsetup" };
  int n = 1;

  for (; *extra && n < 10; extra++)
    argv[n++] = *extra;
  argv[n++] = (char *) name;
  argv[n] = NULL;
  return swapdev_run (argv, -1, out, outlen);
}

int
swapdev_integrity_open (int index, char *under, size_t len, uint64_t *nr)
{
  char name[64], dev[64], out[512];
  char *status[] = { (char *) "status", NULL };
  char *info[] = { (char *) "info", (char *) "-c", (char *) "--noheadings",
                   (char *) "-o", (char *) "major,minor", NULL };
  unsigned maj, min;
  int r;

  swapdev_integrity_name (index, name, sizeof name);
  snprintf (dev, sizeof dev, "/dev/nbd%d", index);
  {
    char *argv[] = { (char *) "modprobe", (char *) "-q",
                     (char *) "dm_integrity", NULL };
    swapdev_run (argv, -1, NULL, 0);    /* failure shows below */
  }
  r = zero_start (dev);
  if (r == 0)
    r = load ("create", name, index, 8);
  /* "0 8 integrity MISMATCHES PROVIDED_SECTORS RECALC" */
  if (r == 0 && (r = ask (name, status, out, sizeof out)) == 0
      && sscanf (out, "%*s %*s %*s %*s %" SCNu64, nr) != 1)
    r = -EPROTO;
  /* The smallest swap area (swaphdr.h): ten 4 KiB pages, in sectors. */
  if (r == 0 && *nr < 80)
    r = -ENOSPC;
  if (r == 0)
    r = load ("reload", name, index, *nr);
  if (r == 0)
    r = swapdev_dmsetup ("resume", name, NULL, 0);
  if (r == 0 && (r = ask (name, info, out, sizeof out)) == 0
      && sscanf (out, "%u:%u", &maj, &min) != 2)
    r = -EPROTO;
  if (r < 0) {
    swapdev_integrity_close (index);
    return r;
  }
  snprintf (under, len, "%u:%u", maj, min);
  return 0;
}

/* Is there a device-mapper device called name?  (sysfs: no dmsetup
 * error message for the usual answer, no.) */
static bool
dm_exists (const char *name)
{
  char path[300], got[128];
  struct dirent *d;
  bool found = false;
  DIR *dir = opendir ("/sys/block");
  FILE *f;

  while (dir && !found && (d = readdir (dir)) != NULL) {
    if (strncmp (d->d_name, "dm-", 3) != 0)
      continue;
    snprintf (path, sizeof path, "/sys/block/%s/dm/name", d->d_name);
    f = fopen (path, "re");
    if (f && fgets (got, sizeof got, f)) {
      got[strcspn (got, "\n")] = '\0';
      found = strcmp (got, name) == 0;
    }
    if (f)
      fclose (f);
  }
  if (dir)
    closedir (dir);
  return found;
}

int
swapdev_integrity_close (int index)
{
  char name[64];

  swapdev_integrity_name (index, name, sizeof name);
  if (!dm_exists (name))
    return -ENOENT;
  return swapdev_dmsetup ("remove", name, NULL, 0);
}
