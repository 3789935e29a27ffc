/* nbdswap: who else uses a block device (see include/blockdev.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/major.h>

#include "blockdev.h"
#include "log.h"
#include "verify-internal.h"

/* Where sysfs and procfs are: changed only by the unit test. */
static const char *sys_root = "/sys";
static const char *proc_root = "/proc";

void
blockdev_set_roots (const char *sys, const char *proc)
{
  sys_root = sys;
  proc_root = proc;
}

/* Partitions beyond this many are not looked at (a GPT disk has 128
 * entries, rarely more than a few in use). */
#define MAX_PARTS 64

/* The device and its partitions: index 0 is the device itself (name ""). */
struct devset {
  dev_t dev[MAX_PARTS + 1];
  char name[MAX_PARTS + 1][64];
  size_t n;
};

/* The index of d in s, or -1. */
static int
devset_find (const struct devset *s, dev_t d)
{
  for (size_t i = 0; i < s->n; ++i)
    if (s->dev[i] == d)
      return (int) i;
  return -1;
}

/* Reads "MAJ:MIN" from a sysfs dev file; 0 when it cannot. */
static dev_t
read_dev_file (const char *path)
{
  unsigned ma, mi;
  FILE *fp = fopen (path, "re");
  int n = 0;

  if (fp != NULL) {
    n = fscanf (fp, "%u:%u", &ma, &mi);
    fclose (fp);
  }
  return n == 2 ? makedev (ma, mi) : 0;
}

/* rdev and its partitions: the subdirectories of its sysfs directory
 * that have a "partition" file. */
static void
list_partitions (dev_t rdev, struct devset *s)
{
  char dir[PATH_MAX], path[PATH_MAX + 300];
  struct dirent *e;
  DIR *d;

  s->dev[0] = rdev;
  s->name[0][0] = '\0';
  s->n = 1;
  snprintf (dir, sizeof dir, "%s/dev/block/%u:%u", sys_root, major (rdev),
            minor (rdev));
  d = opendir (dir);
  if (d == NULL)
    return;
  while (s->n <= MAX_PARTS && (e = readdir (d)) != NULL) {
    snprintf (path, sizeof path, "%s/%s/partition", dir, e->d_name);
    if (e->d_name[0] == '.' || access (path, F_OK) != 0)
      continue;
    snprintf (path, sizeof path, "%s/%s/dev", dir, e->d_name);
    s->dev[s->n] = read_dev_file (path);
    snprintf (s->name[s->n], sizeof s->name[0], "%.63s", e->d_name);
    s->n += s->dev[s->n] != 0;
  }
  closedir (d);
}

/* Slaves deeper than this are not followed (a stack of dm-crypt over LVM
 * over md is four). */
#define MAX_STACK 8

/* dir_over_loop's answer: dir's device, in sysfs, is a loop device. */
static bool
is_loop_dir (const char *dir, char *name, size_t len)
{
  char path[1100], line[128];
  dev_t dev;
  FILE *fp;

  snprintf (path, sizeof path, "%s/dev", dir);
  dev = read_dev_file (path);
  if (dev == 0 || major (dev) != LOOP_MAJOR)
    return false;
  snprintf (name, len, "%u:%u", major (dev), minor (dev));
  snprintf (path, sizeof path, "%s/uevent", dir);
  fp = fopen (path, "re");
  while (fp != NULL && fgets (line, sizeof line, fp) != NULL)
    if (strncmp (line, "DEVNAME=", 8) == 0) {
      line[strcspn (line, "\n")] = '\0';
      snprintf (name, len, "%s", line + 8);
    }
  if (fp != NULL)
    fclose (fp);
  return true;
}

/* Is the device of sysfs directory dir (its path through the symlinks
 * of /sys/dev/block, which the kernel follows), or one below it, a loop
 * device?  A partition's is its disk's ("DIR/.."), a dm or md device's
 * those in its "slaves". */
static bool
dir_over_loop (const char *dir, int depth, char *name, size_t len)
{
  char path[1100];
  struct dirent *e;
  bool found = false;
  DIR *d;

  if (depth > MAX_STACK || strlen (dir) > 1000)
    return false;
  if (is_loop_dir (dir, name, len))
    return true;
  snprintf (path, sizeof path, "%s/partition", dir);
  if (access (path, F_OK) == 0) {
    snprintf (path, sizeof path, "%s/..", dir);
    return dir_over_loop (path, depth + 1, name, len);
  }
  snprintf (path, sizeof path, "%s/slaves", dir);
  d = opendir (path);
  while (d != NULL && !found && (e = readdir (d)) != NULL) {
    if (e->d_name[0] == '.' || strlen (dir) + strlen (e->d_name) + 9 >= sizeof path)
      continue;
    snprintf (path, sizeof path, "%s/slaves/%s", dir, e->d_name);
    found = dir_over_loop (path, depth + 1, name, len);
  }
  if (d != NULL)
    closedir (d);
  return found;
}

bool
blockdev_over_loop (dev_t rdev, char *name, size_t len)
{
  char dir[PATH_MAX];

  snprintf (dir, sizeof dir, "%s/dev/block/%u:%u", sys_root, major (rdev),
            minor (rdev));
  /* A loop device itself, whether or not sysfs can be read (a chroot,
   * a container without /sys): its name from sysfs if it can. */
  if (major (rdev) == LOOP_MAJOR) {
    if (!is_loop_dir (dir, name, len))
      snprintf (name, len, "loop device %u:%u", major (rdev), minor (rdev));
    return true;
  }
  return dir_over_loop (dir, 0, name, len);
}

/* Is the device or a partition an active swap area? */
static int
find_swap (const struct devset *s, struct blockdev_user *u)
{
  struct stat st = { .st_mode = S_IFBLK };
  char swaps[PATH_MAX];
  bool active = false;
  int r = 0;

  snprintf (swaps, sizeof swaps, "%s/swaps", proc_root);
  for (size_t i = 0; r == 0 && !active && i < s->n; ++i) {
    st.st_rdev = s->dev[i];
    r = verify_find_kernel_swap (swaps, &st, &active, u->what,
                                 sizeof u->what);
    if (active) {
      u->use = BLOCKDEV_SWAP;
      snprintf (u->part, sizeof u->part, "%s", s->name[i]);
    }
  }
  return r;
}

/* The index in s of the device a mount is of: by its device number, or
 * by its source (btrfs mounts show an anonymous device number); -1. */
static int
mount_device (const struct devset *s, const struct mountinfo_entry *e)
{
  struct stat st;
  int i = devset_find (s, makedev (e->major, e->minor));

  if (i < 0 && e->source[0] == '/' && stat (e->source, &st) == 0
      && S_ISBLK (st.st_mode))
    i = devset_find (s, st.st_rdev);
  return i;
}

/* Is a filesystem of the device or a partition mounted? */
static int
find_mount (const struct devset *s, struct blockdev_user *u)
{
  struct mountinfo_entry e;
  char *line = NULL, path[PATH_MAX];
  size_t cap = 0;
  FILE *fp;
  int i;

  snprintf (path, sizeof path, "%s/self/mountinfo", proc_root);
  fp = fopen (path, "re");
  if (fp == NULL)
    return errno == ENOENT ? 0 : -errno;
  while (u->use == BLOCKDEV_FREE && getline (&line, &cap, fp) != -1) {
    if (mountinfo_parse_line (line, &e) < 0 || (i = mount_device (s, &e)) < 0)
      continue;
    u->use = BLOCKDEV_MOUNTED;
    snprintf (u->part, sizeof u->part, "%s", s->name[i]);
    snprintf (u->what, sizeof u->what, "%s", e.mount_point);
    snprintf (u->detail, sizeof u->detail, "%s", e.fs_type);
  }
  free (line);
  fclose (fp);
  return 0;
}

/* Does a dm or md device sit on the device or a partition? */
static void
find_holder (const struct devset *s, struct blockdev_user *u)
{
  char path[PATH_MAX + 300];
  struct dirent *e;
  DIR *d;
  FILE *fp;

  for (size_t i = 0; u->use == BLOCKDEV_FREE && i < s->n; ++i) {
    snprintf (path, sizeof path, "%s/dev/block/%u:%u/holders", sys_root,
              major (s->dev[i]), minor (s->dev[i]));
    d = opendir (path);
    while (d != NULL && u->use == BLOCKDEV_FREE && (e = readdir (d))) {
      if (e->d_name[0] == '.')
        continue;
      u->use = BLOCKDEV_HELD;
      snprintf (u->part, sizeof u->part, "%s", s->name[i]);
      snprintf (u->what, sizeof u->what, "%s", e->d_name);
      snprintf (path, sizeof path, "%s/block/%s/dm/name", sys_root,
                e->d_name);
      fp = fopen (path, "re");
      if (fp != NULL && fgets (u->detail, sizeof u->detail, fp) != NULL)
        u->detail[strcspn (u->detail, "\n")] = '\0';
      if (fp != NULL)
        fclose (fp);
    }
    if (d != NULL)
      closedir (d);
  }
}

int
blockdev_find_user (dev_t rdev, struct blockdev_user *u)
{
  struct devset s;
  int r;

  memset (u, 0, sizeof *u);
  list_partitions (rdev, &s);
  r = find_swap (&s, u);
  if (r == 0 && u->use == BLOCKDEV_FREE)
    r = find_mount (&s, u);
  if (r == 0 && u->use == BLOCKDEV_FREE)
    find_holder (&s, u);
  return r;
}

const char *
blockdev_describe (const struct blockdev_user *u, char *buf, size_t len)
{
  int n = 0;

  if (u->part[0])
    n = snprintf (buf, len, "its partition %s ", u->part);
  else
    n = snprintf (buf, len, "%s", "");
  buf += n;
  len -= n;
  switch (u->use) {
  case BLOCKDEV_SWAP:
    snprintf (buf, len, "is an active kernel swap area (%s in /proc/swaps)",
              u->what);
    return "swapoff it first: the kernel and nbdswap must never share a "
      "swap area";
  case BLOCKDEV_MOUNTED:
    snprintf (buf, len, "is mounted on %s (%s)", u->what, u->detail);
    return "unmount it first: serving it would overwrite that filesystem";
  case BLOCKDEV_HELD:
    snprintf (buf, len, "is in use by %s%s%s%s (device-mapper or md on top "
              "of it)", u->what, u->detail[0] ? " (" : "", u->detail,
              u->detail[0] ? ")" : "");
    return "remove that device first; for LVM, serve a logical volume, not "
      "its physical volume";
  case BLOCKDEV_FREE:
    break;
  }
  snprintf (buf, len, "is not in use");
  return "";
}

/* Does process pid (a /proc entry name) have rdev open? */
static bool
has_open (const char *pid, dev_t rdev)
{
  char path[PATH_MAX + 600];
  struct dirent *e;
  struct stat st;
  bool found = false;
  DIR *d;

  snprintf (path, sizeof path, "%s/%s/fd", proc_root, pid);
  d = opendir (path);
  while (d != NULL && !found && (e = readdir (d)) != NULL) {
    snprintf (path, sizeof path, "%s/%s/fd/%s", proc_root, pid, e->d_name);
    found = e->d_name[0] != '.' && stat (path, &st) == 0
      && S_ISBLK (st.st_mode) && st.st_rdev == rdev;
  }
  if (d != NULL)
    closedir (d);
  return found;
}

pid_t
blockdev_find_opener (dev_t rdev, char *comm, size_t len)
{
  DIR *proc = opendir (proc_root);
  struct dirent *p;
  char path[PATH_MAX + 64];
  pid_t found = 0;
  FILE *fp;

  snprintf (comm, len, "?");
  while (proc != NULL && found == 0 && (p = readdir (proc)) != NULL)
    if (p->d_name[0] >= '1' && p->d_name[0] <= '9'
        && atoi (p->d_name) != getpid () && has_open (p->d_name, rdev))
      found = atoi (p->d_name);
  if (proc != NULL)
    closedir (proc);
  snprintf (path, sizeof path, "%s/%d/comm", proc_root, (int) found);
  fp = found ? fopen (path, "re") : NULL;
  if (fp != NULL && fgets (comm, len, fp) != NULL)
    comm[strcspn (comm, "\n")] = '\0';
  if (fp != NULL)
    fclose (fp);
  return found;
}

void
blockdev_log_busy (const char *path, dev_t rdev)
{
  struct blockdev_user u;
  char cause[PATH_MAX + 256], comm[64];
  const char *fix;
  pid_t pid;

  if (blockdev_find_user (rdev, &u) == 0 && u.use != BLOCKDEV_FREE) {
    fix = blockdev_describe (&u, cause, sizeof cause);
    log_error ("%s: %s: %s", path, cause, fix);
    return;
  }
  pid = blockdev_find_opener (rdev, comm, sizeof comm);
  if (pid > 0)
    log_error ("%s: is held exclusively by another process (PID %d, %s, "
               "has it open): one device must have one server; stop that "
               "one first", path, (int) pid, comm);
  else
    log_error ("%s: is held exclusively by a user not visible here (a "
               "mount or server in another namespace?): 'lsblk %s' may "
               "say which; stop it first", path, path);
}
