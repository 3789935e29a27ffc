/* nbdswap: exclusive ownership of the backing file (see include/owner.h). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "owner.h"

int
owner_lock (int fd, bool exclusive, pid_t *holder)
{
  struct flock fl = {
    .l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
    .l_start = 0, .l_len = 0,
  };

  *holder = 0;
  /* A server that was just killed lets go of the lock only when the
   * kernel has torn down its io_uring rings, a moment after it exited:
   * when no living holder can be seen, wait for that, up to 5 s. */
  for (int tries = 0; tries < 50; tries++) {
    if (fcntl (fd, F_OFD_SETLK, &fl) == 0)
      return 0;
    if (errno != EAGAIN && errno != EACCES)
      return -errno;
    *holder = owner_find_holder (fd);
    if (*holder > 0)
      break;
    usleep (100000);
  }
  return -EBUSY;
}

/* Does this /proc/locks-style line describe a lock held (not waited
 * for) on dev:ino?  Sets *pid to the PID it lists (-1 for OFD locks). */
static bool
lock_line_matches (const char *line, dev_t dev, ino_t ino, int *pid)
{
  unsigned maj, min;
  unsigned long long lino;
  char kind[16], mode[16], type[16];

  if (strstr (line, "->"))
    return false;
  if (sscanf (line, "%*d: %15s %15s %15s %d %x:%x:%llu",
              kind, mode, type, pid, &maj, &min, &lino) != 7)
    return false;
  return maj == major (dev) && min == minor (dev)
    && lino == (unsigned long long) ino;
}

/* Search /proc/PID/fdinfo/N for a "lock:" line on dev:ino: the only
 * place that names the owner of an OFD lock (/proc/locks shows -1). */
static pid_t
find_in_fdinfo (dev_t dev, ino_t ino)
{
  DIR *proc = opendir ("/proc");
  struct dirent *p;
  pid_t found = 0;

  if (proc == NULL)
    return 0;
  while (found == 0 && (p = readdir (proc)) != NULL) {
    char path[600], line[256];
    DIR *fds;
    struct dirent *f;
    int pid;

    if (p->d_name[0] < '1' || p->d_name[0] > '9'
        || atoi (p->d_name) == getpid ())
      continue;
    snprintf (path, sizeof path, "/proc/%s/fdinfo", p->d_name);
    fds = opendir (path);
    if (fds == NULL)
      continue;
    while (found == 0 && (f = readdir (fds)) != NULL) {
      FILE *fp;

      snprintf (path, sizeof path, "/proc/%s/fdinfo/%s", p->d_name,
                f->d_name);
      fp = fopen (path, "re");
      if (fp == NULL)
        continue;
      while (fgets (line, sizeof line, fp))
        if (strncmp (line, "lock:\t", 6) == 0
            && lock_line_matches (line + 6, dev, ino, &pid)) {
          found = atoi (p->d_name);
          break;
        }
      fclose (fp);
    }
    closedir (fds);
  }
  closedir (proc);
  return found;
}

pid_t
owner_find_holder (int fd)
{
  struct stat st;
  FILE *fp;
  char line[256];
  int pid;
  pid_t found = 0;

  if (fstat (fd, &st) == -1)
    return 0;
  /* POSIX and flock locks name their owner in /proc/locks. */
  fp = fopen ("/proc/locks", "re");
  if (fp) {
    while (found == 0 && fgets (line, sizeof line, fp))
      if (lock_line_matches (line, st.st_dev, st.st_ino, &pid) && pid > 0)
        found = pid;
    fclose (fp);
  }
  return found ? found : find_in_fdinfo (st.st_dev, st.st_ino);
}

int
owner_open (const char *path, int flags)
{
  int fd = open (path, flags | O_NOATIME);

  if (fd == -1 && errno == EPERM)
    fd = open (path, flags);
  return fd;
}
