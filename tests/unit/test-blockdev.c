/* Unit tests: who else uses a block device (lib/blockdev.c), against
 * fake sysfs and procfs trees: a partition mounted, a device mounted by
 * its source (btrfs shows an anonymous device number), a device-mapper
 * holder on a partition, swap, another process holding it.  The device
 * is a real block device node of this machine (stat must see its
 * number); the trees only describe it.  tests/fs/test-blockdev.sh checks
 * the same against real mounts, swap and servers. */
#include <config.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "blockdev.h"
#include "log.h"
#include "../check-run.h"

static char root[64], sys[128], proc[128], node[300], last_error[LOG_LINE_MAX];
static dev_t rdev;

/* Keep the last error line. */
static void
capture_sink (enum log_level level, const char *line)
{
  if (level == LOG_LEVEL_ERROR)
    snprintf (last_error, sizeof last_error, "%s", line);
}

/* The first block device node in /dev, into node and rdev; false if
 * there is none. */
static bool
find_block_node (void)
{
  DIR *d = opendir ("/dev");
  struct dirent *e;
  struct stat st;

  while (d != NULL && (e = readdir (d)) != NULL) {
    snprintf (node, sizeof node, "/dev/%s", e->d_name);
    if (stat (node, &st) == 0 && S_ISBLK (st.st_mode)) {
      rdev = st.st_rdev;
      closedir (d);
      return true;
    }
  }
  if (d != NULL)
    closedir (d);
  return false;
}

/* Writes text to root/rel, making its directories. */
static void
put (const char *rel, const char *text)
{
  char path[512], cmd[600], *slash;
  FILE *fp;

  snprintf (path, sizeof path, "%s/%s", root, rel);
  slash = strrchr (path, '/');
  *slash = '\0';
  snprintf (cmd, sizeof cmd, "mkdir -p '%s'", path);
  ck_assert_int_eq (system (cmd), 0);
  *slash = '/';
  fp = fopen (path, "w");
  ck_assert_ptr_nonnull (fp);
  fputs (text, fp);
  fclose (fp);
}

/* The fake trees: the device with one partition (259:0), no holders, no
 * mounts, no swap. */
static void
setup (void)
{
  char dev[64], rel[128];

  snprintf (root, sizeof root, "/var/tmp/nbdswap-blockdev.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (root));
  snprintf (sys, sizeof sys, "%s/sys", root);
  snprintf (proc, sizeof proc, "%s/proc", root);
  snprintf (dev, sizeof dev, "sys/dev/block/%u:%u", major (rdev),
            minor (rdev));
  snprintf (rel, sizeof rel, "%s/holders/.keep", dev);
  put (rel, "");
  snprintf (rel, sizeof rel, "%s/part1/partition", dev);
  put (rel, "1\n");
  snprintf (rel, sizeof rel, "%s/part1/dev", dev);
  put (rel, "259:0\n");
  put ("sys/dev/block/259:0/holders/.keep", "");
  put ("proc/self/mountinfo", "");
  put ("proc/swaps", "Filename Type Size Used Priority\n");
  blockdev_set_roots (sys, proc);
}

static void
teardown (void)
{
  char cmd[128];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
  ck_assert_int_eq (system (cmd), 0);
  blockdev_set_roots ("/sys", "/proc");
}

START_TEST (test_free)
{
  struct blockdev_user u;

  ck_assert_int_eq (blockdev_find_user (rdev, &u), 0);
  ck_assert_int_eq (u.use, BLOCKDEV_FREE);
}
END_TEST

START_TEST (test_partition_mounted)
{
  struct blockdev_user u;
  char cause[512];
  const char *fix;

  put ("proc/self/mountinfo",
       "22 1 254:0 / / rw - ext4 /dev/vda rw\n"
       "36 22 259:0 / /mnt/my\\040data rw,relatime shared:1 - ext4 "
       "/dev/nonexistent rw\n");
  ck_assert_int_eq (blockdev_find_user (rdev, &u), 0);
  ck_assert_int_eq (u.use, BLOCKDEV_MOUNTED);
  fix = blockdev_describe (&u, cause, sizeof cause);
  ck_assert_str_eq (cause, "its partition part1 is mounted on /mnt/my data "
                    "(ext4)");
  ck_assert_str_eq (fix, "unmount it first: serving it would overwrite "
                    "that filesystem");
}
END_TEST

START_TEST (test_mounted_by_source)
{
  struct blockdev_user u;
  char line[600], cause[512];

  snprintf (line, sizeof line, "40 22 0:45 / /mnt/b rw - btrfs %s rw\n",
            node);
  put ("proc/self/mountinfo", line);
  ck_assert_int_eq (blockdev_find_user (rdev, &u), 0);
  ck_assert_int_eq (u.use, BLOCKDEV_MOUNTED);
  blockdev_describe (&u, cause, sizeof cause);
  ck_assert_str_eq (cause, "is mounted on /mnt/b (btrfs)");
}
END_TEST

START_TEST (test_holder)
{
  struct blockdev_user u;
  char cause[512];
  const char *fix;

  put ("sys/dev/block/259:0/holders/dm-3", "");
  put ("sys/block/dm-3/dm/name", "vg-lv\n");
  ck_assert_int_eq (blockdev_find_user (rdev, &u), 0);
  ck_assert_int_eq (u.use, BLOCKDEV_HELD);
  fix = blockdev_describe (&u, cause, sizeof cause);
  ck_assert_str_eq (cause, "its partition part1 is in use by dm-3 (vg-lv) "
                    "(device-mapper or md on top of it)");
  ck_assert (strstr (fix, "serve a logical volume, not its physical "
                     "volume") != NULL);
  blockdev_log_busy ("/dev/x", rdev);
  ck_assert_str_eq (last_error, "/dev/x: its partition part1 is in use by "
                    "dm-3 (vg-lv) (device-mapper or md on top of it): "
                    "remove that device first; for LVM, serve a logical "
                    "volume, not its physical volume");
}
END_TEST

START_TEST (test_swap_first)
{
  struct blockdev_user u;
  char text[600], cause[900];

  snprintf (text, sizeof text, "Filename Type Size Used Priority\n"
            "%s partition 1024 0 -2\n", node);
  put ("proc/swaps", text);
  put ("proc/self/mountinfo", "36 22 259:0 / /mnt rw - ext4 /dev/p rw\n");
  ck_assert_int_eq (blockdev_find_user (rdev, &u), 0);
  ck_assert_int_eq (u.use, BLOCKDEV_SWAP);
  ck_assert_str_eq (u.part, "");
  blockdev_describe (&u, cause, sizeof cause);
  snprintf (text, sizeof text, "is an active kernel swap area (%s in "
            "/proc/swaps)", node);
  ck_assert_str_eq (cause, text);
}
END_TEST

START_TEST (test_opener)
{
  char fd[200], comm[64], want[400];

  snprintf (fd, sizeof fd, "%s/4242/fd", proc);
  put ("proc/4242/comm", "fake-server\n");
  put ("proc/4242/fd/.keep", "");
  put ("proc/4243/fd/.keep", "");
  snprintf (fd, sizeof fd, "%s/4242/fd/3", proc);
  ck_assert_int_eq (symlink (node, fd), 0);
  ck_assert_int_eq (blockdev_find_opener (rdev, comm, sizeof comm), 4242);
  ck_assert_str_eq (comm, "fake-server");
  ck_assert_int_eq (blockdev_find_opener (makedev (259, 7), comm,
                                          sizeof comm), 0);
  blockdev_log_busy ("/dev/x", rdev);
  snprintf (want, sizeof want, "/dev/x: is held exclusively by another "
            "process (PID 4242, fake-server, has it open)");
  ck_assert (strncmp (last_error, want, strlen (want)) == 0);
  unlink (fd);
  blockdev_log_busy ("/dev/x", rdev);
  ck_assert (strstr (last_error, "is held exclusively by a user not "
                     "visible here") != NULL);
}
END_TEST

/* ln -s target root/rel, making rel's directories. */
static void
link_to (const char *target, const char *rel)
{
  char path[512];

  put (rel, "");
  snprintf (path, sizeof path, "%s/%s", root, rel);
  ck_assert_int_eq (unlink (path), 0);
  ck_assert_int_eq (symlink (target, path), 0);
}

/* A fake sysfs device: devices/DIR with its dev file, reached as
 * dev/block/DEV like the real one (a symlink), in the tree fsys. */
static void
fake_device (const char *dir, const char *dev)
{
  char rel[256], target[256];

  snprintf (rel, sizeof rel, "fsys/devices/%s/dev", dir);
  snprintf (target, sizeof target, "%s\n", dev);
  put (rel, target);
  snprintf (rel, sizeof rel, "fsys/dev/block/%s", dev);
  snprintf (target, sizeof target, "../../devices/%s", dir);
  link_to (target, rel);
}

/* Which devices are loop devices or made of one: a loop device, its
 * partition, LVM on either, dm-crypt over that LVM; not LVM on a disk;
 * a cycle of slaves ends; a device sysfs does not know is none. */
START_TEST (test_over_loop)
{
  static const struct { unsigned ma, mi; const char *name; } cases[] = {
    { 7, 0, "loop0" }, { 7, 16, "7:16" }, { 259, 5, "loop0" },
    { 253, 0, "loop0" }, { 253, 1, "loop0" }, { 253, 2, "loop0" },
    { 253, 3, NULL }, { 254, 0, NULL }, { 253, 4, NULL }, { 253, 9, NULL },
    { 7, 99, "loop device 7:99" },    /* a loop device sysfs does not show */
  };
  char name[64], fsys[128];

  fake_device ("virtual/block/loop0", "7:0");
  put ("fsys/devices/virtual/block/loop0/uevent",
       "MAJOR=7\nMINOR=0\nDEVNAME=loop0\nDEVTYPE=disk\n");
  fake_device ("virtual/block/loop1", "7:16");       /* no uevent */
  fake_device ("virtual/block/loop0/loop0p1", "259:5");
  put ("fsys/devices/virtual/block/loop0/loop0p1/partition", "1\n");
  fake_device ("pci0000:00/virtio1/block/vda", "254:0");
  fake_device ("virtual/block/dm-0", "253:0");
  link_to ("../../loop0", "fsys/devices/virtual/block/dm-0/slaves/loop0");
  fake_device ("virtual/block/dm-1", "253:1");
  link_to ("../../dm-0", "fsys/devices/virtual/block/dm-1/slaves/dm-0");
  fake_device ("virtual/block/dm-2", "253:2");
  link_to ("../../loop0/loop0p1",
           "fsys/devices/virtual/block/dm-2/slaves/loop0p1");
  fake_device ("virtual/block/dm-3", "253:3");
  link_to ("../../../../pci0000:00/virtio1/block/vda",
           "fsys/devices/virtual/block/dm-3/slaves/vda");
  fake_device ("virtual/block/dm-4", "253:4");
  link_to ("../../dm-4", "fsys/devices/virtual/block/dm-4/slaves/dm-4");
  /* A tree of its own: the setup's has this machine's device. */
  snprintf (fsys, sizeof fsys, "%s/fsys", root);
  blockdev_set_roots (fsys, proc);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    strcpy (name, "?");
    ck_assert_msg (blockdev_over_loop (makedev (cases[i].ma, cases[i].mi),
                                       name, sizeof name)
                   == (cases[i].name != NULL), "%u:%u", cases[i].ma,
                   cases[i].mi);
    if (cases[i].name != NULL)
      ck_assert_str_eq (name, cases[i].name);
  }
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("blockdev");
  TCase *tc = tcase_create ("uses");

  if (!find_block_node ()) {
    fprintf (stderr, "test-blockdev: SKIP: no block device node in /dev\n");
    return 77;
  }
  log_set_sink (capture_sink);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_free);
  tcase_add_test (tc, test_partition_mounted);
  tcase_add_test (tc, test_mounted_by_source);
  tcase_add_test (tc, test_holder);
  tcase_add_test (tc, test_swap_first);
  tcase_add_test (tc, test_opener);
  tcase_add_test (tc, test_over_loop);
  suite_add_tcase (s, tc);
  return check_run (s);
}
