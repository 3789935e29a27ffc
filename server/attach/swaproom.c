/* nbdswap detach: is there room for the pages swapoff brings back?
 * See swaproom.h for why detach asks before calling swapoff. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "swaproom.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define MAX_DEPTH 16            /* cgroup nesting followed */

/* What the walk compares against: the KiB in use on the device, and the
 * KiB free on every other swap area (reclaim may still swap there while
 * the device is being emptied). */
struct need {
  uint64_t used_kib;
  uint64_t other_free_kib;
};

/* /proc/swaps: the usage of block device dev and the space left on the
 * other areas.  Sizes there are in KiB. */
static int
swaps_usage (const char *dev, struct need *n)
{
  struct stat want, st;
  char line[512], path[512];
  uint64_t size, used;
  bool found = false;
  FILE *fp;

  if (stat (dev, &want) == -1)
    return -errno;
  fp = fopen ("/proc/swaps", "re");
  if (fp == NULL)
    return -errno;
  n->other_free_kib = 0;
  while (fgets (line, sizeof line, fp))
    if (sscanf (line, "%511s %*s %" SCNu64 " %" SCNu64,
                path, &size, &used) == 3) {
      if (stat (path, &st) == 0 && S_ISBLK (st.st_mode)
          && st.st_rdev == want.st_rdev) {
        n->used_kib = used;
        found = true;
      }
      else if (size > used)
        n->other_free_kib += size - used;
    }
  fclose (fp);
  return found ? 0 : -ENOENT;
}

/* The number in file dir/name ("max" reads as UINT64_MAX); -1 if there
 * is no such file (no memory controller, or no swap accounting). */
static int
read_value (const char *dir, const char *name, uint64_t *v)
{
  char path[512], word[32] = "";
  FILE *fp;
  int ok;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  fp = fopen (path, "re");
  if (fp == NULL)
    return -1;
  ok = fscanf (fp, "%31s", word) == 1;
  fclose (fp);
  if (ok && strcmp (word, "max") == 0)
    *v = UINT64_MAX;
  else if (!ok || sscanf (word, "%" SCNu64, v) != 1)
    return -1;
  return 0;
}

/* The value of "key value" line key in file path (memory.stat,
 * /proc/meminfo with its "kB"), or 0. */
static uint64_t
read_keyed (const char *path, const char *key)
{
  char line[256], k[64];
  uint64_t v, found = 0;
  FILE *fp = fopen (path, "re");

  while (fp && fgets (line, sizeof line, fp))
    if (sscanf (line, "%63s %" SCNu64, k, &v) == 2 && strcmp (k, key) == 0) {
      found = v;
      break;
    }
  if (fp)
    fclose (fp);
  return found;
}

/* True if cgroup dir, limited by its memory.max, has no room for what it
 * swapped out (at most the device's use); rep filled then.  Page cache
 * counts as room: reclaim drops it before it kills. */
static bool
cgroup_short (const char *dir, const struct need *n,
              struct swaproom_report *rep)
{
  uint64_t max, cur, swap, need, room;
  char stat_path[512];

  if (read_value (dir, "memory.max", &max) == -1 || max == UINT64_MAX
      || read_value (dir, "memory.swap.current", &swap) == -1 || swap == 0
      || read_value (dir, "memory.current", &cur) == -1)
    return false;
  snprintf (stat_path, sizeof stat_path, "%s/memory.stat", dir);
  need = swap / 1024 < n->used_kib ? swap / 1024 : n->used_kib;
  room = (max > cur ? max - cur : 0) / 1024
    + read_keyed (stat_path, "file") / 1024;
  if (need <= room + n->other_free_kib)
    return false;
  rep->need_kib = need;
  rep->room_kib = room + n->other_free_kib;
  snprintf (rep->cgroup, sizeof rep->cgroup, "%s",
            dir + strlen (CGROUP_ROOT));
  return true;
}

/* Checks cgroup dir and those below it; true at the first one short of
 * room. */
static bool
walk_cgroups (const char *dir, const struct need *n,
              struct swaproom_report *rep, int depth)
{
  char child[512];
  struct dirent *d;
  bool short_found;
  DIR *dp;

  if (cgroup_short (dir, n, rep))
    return true;
  if (depth == MAX_DEPTH || (dp = opendir (dir)) == NULL)
    return false;
  short_found = false;
  while (!short_found && (d = readdir (dp)) != NULL)
    if (d->d_type == DT_DIR && d->d_name[0] != '.'
        && (size_t) snprintf (child, sizeof child, "%s/%s", dir, d->d_name)
           < sizeof child)
      short_found = walk_cgroups (child, n, rep, depth + 1);
  closedir (dp);
  return short_found;
}

int
swaproom_check (const char *dev, struct swaproom_report *rep)
{
  struct need n;
  uint64_t avail;
  int r;

  r = swaps_usage (dev, &n);
  if (r < 0)
    return r;
  memset (rep, 0, sizeof *rep);
  if (walk_cgroups (CGROUP_ROOT, &n, rep, 0))
    return 1;
  avail = read_keyed ("/proc/meminfo", "MemAvailable:");
  if (n.used_kib <= avail + n.other_free_kib)
    return 0;
  rep->need_kib = n.used_kib;
  rep->room_kib = avail + n.other_free_kib;
  return 1;
}
