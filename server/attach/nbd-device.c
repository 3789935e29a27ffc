/* nbdswap: naming and probing /dev/nbdN in sysfs. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"

int
nbd_device_index (const char *arg)
{
  char *end;
  long n;

  if (strncmp (arg, "/dev/", 5) == 0)
    arg += 5;
  if (strncmp (arg, "nbd", 3) != 0 || arg[3] < '0' || arg[3] > '9')
    return -1;
  n = strtol (arg + 3, &end, 10);
  if (*end || n < 0 || n > 65535)
    return -1;
  return (int) n;
}

/* Reads one number from a sysfs file; 0 if it is missing. */
static long long
sysfs_number (int index, const char *file)
{
  char path[96];
  long long v = 0;
  FILE *fp;

  snprintf (path, sizeof path, "/sys/block/nbd%d/%s", index, file);
  fp = fopen (path, "re");
  if (fp == NULL)
    return 0;
  if (fscanf (fp, "%lld", &v) != 1)
    v = 0;
  fclose (fp);
  return v;
}

/* A connected device has a pid file (the connecting task) or a size. */
int
nbd_device_in_use (int index, long *pid)
{
  long long p = sysfs_number (index, "pid");

  if (pid)
    *pid = (long) p;
  return p > 0 || sysfs_number (index, "size") > 0;
}

long
nbd_device_max_sectors_kb (int index)
{
  long long v = sysfs_number (index, "queue/max_sectors_kb");

  return v > 0 ? (long) v : -ENOENT;
}

long
nbd_device_set_max_sectors_kb (int index, unsigned kb)
{
  char path[96];
  FILE *fp;
  int r = 0;

  snprintf (path, sizeof path, "/sys/block/nbd%d/queue/max_sectors_kb",
            index);
  fp = fopen (path, "we");
  if (fp == NULL)
    return -errno;
  if (fprintf (fp, "%u\n", kb) < 0)
    r = -errno;
  if (fclose (fp) == EOF && r == 0)
    r = -errno;
  return r < 0 ? r : nbd_device_max_sectors_kb (index);
}
