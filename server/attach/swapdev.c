/* nbdswap: swap signature, swapon/swapoff, dm-crypt. */
#include <config.h>

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/fs.h>

#include "swapdev.h"
#include "swaphdr.h"

/* The signature sits in the last 10 bytes of the first page. */
int
swapdev_has_signature (const char *dev)
{
  size_t page_size = swaphdr_page_size ();
  char *page;
  ssize_t n;
  int fd, r;

  page = malloc (page_size);
  if (page == NULL)
    return -ENOMEM;
  fd = open (dev, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    free (page);
    return -errno;
  }
  n = pread (fd, page, page_size, 0);
  r = n == -1 ? -errno : 0;
  close (fd);
  if (r == 0)
    r = (size_t) n == page_size && swaphdr_has_signature (page, page_size);
  free (page);
  return r;
}

/* Runs argv with stdin from in_fd (or /dev/null), output to a pipe that
 * is printed to stderr only if the tool fails, else kept in keep (of
 * keeplen bytes, NUL-terminated) when keep is not NULL.  Returns 0, -EIO
 * or -ENOENT (no such tool). */
int
swapdev_run (char *const argv[], int in_fd, char *keep, size_t keeplen)
{
  char out[4096];
  int pipefd[2], status;
  ssize_t n, len = 0;
  pid_t pid;

  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return -errno;
  pid = fork ();
  if (pid == -1) {
    close (pipefd[0]);
    close (pipefd[1]);
    return -errno;
  }
  if (pid == 0) {
    int null = open ("/dev/null", O_RDONLY);
    dup2 (in_fd >= 0 ? in_fd : null, 0);
    dup2 (pipefd[1], 1);
    dup2 (pipefd[1], 2);
    setenv ("DM_DISABLE_UDEV", "1", 1);   /* no udev in a minimal boot */
    execvp (argv[0], argv);
    fprintf (stderr, "%s: %s\n", argv[0], strerror (errno));
    _exit (127);
  }
  close (pipefd[1]);
  while ((n = read (pipefd[0], out + len, sizeof out - 1 - (size_t) len)) > 0)
    len += n;
  out[len] = '\0';
  close (pipefd[0]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
    if (keep)
      snprintf (keep, keeplen, "%s", out);
    return 0;
  }
  fprintf (stderr, "%s", out);
  return WIFEXITED (status) && WEXITSTATUS (status) == 127 ? -ENOENT : -EIO;
}

/* A tool whose output matters only when it fails. */
static int
run_tool (char *const argv[], int in_fd)
{
  return swapdev_run (argv, in_fd, NULL, 0);
}

int
swapdev_swapon (const char *dev, int priority)
{
  int flags = 0;

  if (priority >= 0)
    flags = SWAP_FLAG_PREFER
      | ((priority << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
  return swapon (dev, flags) == -1 ? -errno : 0;
}

/* swapoff(2) runs in a child: the kernel makes the task in swapoff the
 * OOM killer's first choice (PF_OOM_ORIGIN, mm/swapfile.c), so when the
 * pages coming back exhaust memory the child dies, not detach, which can
 * still say why.  The kernel puts the area back in use either way. */
int
swapdev_swapoff (const char *dev)
{
  int status;
  pid_t pid;

  pid = fork ();
  if (pid == -1)
    return -errno;
  if (pid == 0)
    _exit (swapoff (dev) == -1 ? errno & 0xff : 0);
  while (waitpid (pid, &status, 0) == -1)
    if (errno != EINTR)
      return -errno;
  if (WIFEXITED (status))
    return -WEXITSTATUS (status);
  return WTERMSIG (status) == SIGKILL ? -ENOMEM : -EINTR;
}

#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"

int
swapdev_page_cluster (void)
{
  FILE *fp = fopen (PAGE_CLUSTER, "re");
  int n, r;

  if (fp == NULL)
    return -errno;
  r = fscanf (fp, "%d", &n) == 1 && n >= 0 ? n : -EINVAL;
  fclose (fp);
  return r;
}

int
swapdev_set_page_cluster (unsigned n)
{
  char buf[16];
  int len = snprintf (buf, sizeof buf, "%u\n", n);
  int fd = open (PAGE_CLUSTER, O_WRONLY | O_CLOEXEC);
  int r = 0;
  ssize_t w;

  if (fd == -1)
    return -errno;
  w = write (fd, buf, (size_t) len);
  if (w != len)
    r = w < 0 ? -errno : -EIO;
  if (close (fd) == -1 && r == 0)
    r = -errno;
  return r;
}

/* /proc/swaps names the device as it was given to swapon, or as the
 * kernel's d_path of it: compare device numbers, not names. */
bool
swapdev_is_active (const char *dev)
{
  struct stat want, st;
  char line[512], path[512];
  bool found = false;
  FILE *fp;

  if (stat (dev, &want) == -1)
    return false;
  fp = fopen ("/proc/swaps", "re");
  if (fp == NULL)
    return false;
  while (!found && fgets (line, sizeof line, fp))
    if (sscanf (line, "%511s", path) == 1 && stat (path, &st) == 0
        && S_ISBLK (st.st_mode) && st.st_rdev == want.st_rdev)
      found = true;
  fclose (fp);
  return found;
}

void
swapdev_crypt_name (int index, char *name, size_t len)
{
  snprintf (name, len, "nbdswap-nbd%d", index);
}

/* Size of block device path in 512-byte sectors. */
static int
sectors (const char *path, uint64_t *out)
{
  uint64_t bytes = 0;
  int fd, r = 0;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -errno;
  if (ioctl (fd, BLKGETSIZE64, &bytes) == -1)
    r = -errno;
  close (fd);
  *out = bytes / 512;
  return r;
}

int
swapdev_dmsetup (const char *verb, const char *name, const char *table,
                 size_t len)
{
  char *argv[] = { (char *) "dmsetup", (char *) verb, (char *) "--noudevsync",
                   (char *) name, NULL };
  int fds[2] = { -1, -1 }, r;

  if (table) {
    if (pipe2 (fds, O_CLOEXEC) == -1)
      return -errno;
    /* Shorter than a pipe's buffer: no reader needed yet. */
    r = write (fds[1], table, len) == (ssize_t) len ? 0 : -EIO;
    close (fds[1]);
    if (r < 0) {
      close (fds[0]);
      return r;
    }
  }
  r = run_tool (argv, fds[0]);
  if (fds[0] >= 0)
    close (fds[0]);
  return r;
}

/* The dm-crypt table line, with a fresh random key, in table (of size
 * bytes): plain XTS over /dev/nbdN, or AEAD over the integrity device
 * under.  Its length, or -errno.  The caller wipes it after use. */
static int
crypt_table (int index, const char *under, uint64_t nr_sectors, char *table,
             size_t size)
{
  /* XTS: two AES-256 keys; with integrity also the HMAC key after them
   * (dm-crypt splits an authenc key as cipher key, then MAC key). */
  unsigned char key[96];
  size_t klen = under ? 96 : 64;
  char hex[193];
  int fd, len;
  ssize_t n;

  fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -errno;
  n = read (fd, key, klen);
  close (fd);
  if (n != (ssize_t) klen)
    return -EIO;
  for (size_t i = 0; i < klen; ++i)
    snprintf (hex + 2 * i, 3, "%02x", key[i]);
  if (under)
    len = snprintf (table, size, "0 %" PRIu64 " crypt "
                    "capi:authenc(hmac(sha256),xts(aes))-random %s 0 %s 0 2 "
                    "integrity:%d:aead sector_size:4096\n", nr_sectors, hex,
                    under, SWAPDEV_INTEGRITY_TAG);
  else
    len = snprintf (table, size, "0 %" PRIu64 " crypt "
                    "aes-xts-plain64 %s 0 /dev/nbd%d 0\n", nr_sectors, hex,
                    index);
  explicit_bzero (key, sizeof key);
  explicit_bzero (hex, sizeof hex);
  return len;
}

int
swapdev_crypt_open (int index, bool integrity, char *path, size_t len)
{
  char name[64], dev[64], under[32], table[640];
  uint64_t nr = 0;
  int r;

  swapdev_crypt_name (index, name, sizeof name);
  snprintf (dev, sizeof dev, "/dev/nbd%d", index);
  {
    /* dmsetup does not load the crypt target; failure shows below. */
    char *argv[] = { (char *) "modprobe", (char *) "-q", (char *) "dm_crypt",
                     NULL };
    run_tool (argv, -1);
  }
  r = integrity ? swapdev_integrity_open (index, under, sizeof under, &nr)
    : sectors (dev, &nr);
  if (r < 0)
    return r;
  r = crypt_table (index, integrity ? under : NULL, nr, table, sizeof table);
  if (r > 0)
    r = swapdev_dmsetup ("create", name, table, (size_t) r);
  explicit_bzero (table, sizeof table);
  if (r == 0)
    snprintf (path, len, "/dev/mapper/%s", name);
  if (r < 0 && integrity) {
    swapdev_dmsetup ("remove", name, NULL, 0);
    swapdev_integrity_close (index);
  }
  return r;
}

int
swapdev_crypt_close (int index)
{
  char name[64], holders[64];
  struct dirent *d;
  bool held = false;
  DIR *dir;
  int r;

  /* Without udev there may be no /dev/mapper node: look for a holder of
   * /dev/nbdN in sysfs instead. */
  snprintf (holders, sizeof holders, "/sys/block/nbd%d/holders", index);
  dir = opendir (holders);
  while (dir && (d = readdir (dir)) != NULL)
    if (d->d_name[0] != '.')
      held = true;
  if (dir)
    closedir (dir);
  if (!held)
    return -ENOENT;
  swapdev_crypt_name (index, name, sizeof name);
  r = swapdev_dmsetup ("remove", name, NULL, 0);
  /* --integrity: the integrity device under it goes next. */
  if (r == 0 && swapdev_integrity_close (index) == -EIO)
    r = -EIO;
  return r;
}
