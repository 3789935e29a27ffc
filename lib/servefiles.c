/* nbdswap: removing the files serve made for nbdkit (servefiles.h). */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "servefiles.h"

/* The socket (and its identity when noted) and the pidfile; NULL when
 * there is none to remove. */
static char *socket_path;
static dev_t socket_dev;
static ino_t socket_ino;
static char *pidfile_path;

/* A copy of the environment variable name, or NULL if unset or empty. */
static char *
env_path (const char *name)
{
  const char *v = getenv (name);

  return v && v[0] ? strdup (v) : NULL;
}

void
servefiles_claim (void)
{
  struct stat st;

  socket_path = env_path (SERVEFILES_SOCKET_ENV);
  if (socket_path && (lstat (socket_path, &st) == -1 ||
                      !S_ISSOCK (st.st_mode))) {
    free (socket_path);
    socket_path = NULL;
  }
  else if (socket_path) {
    socket_dev = st.st_dev;
    socket_ino = st.st_ino;
  }
  pidfile_path = env_path (SERVEFILES_PIDFILE_ENV);
}

pid_t
servefiles_read_pid (const char *path)
{
  FILE *fp = fopen (path, "re");
  int pid = 0;

  if (fp == NULL)
    return 0;
  if (fscanf (fp, "%d", &pid) != 1)
    pid = 0;
  fclose (fp);
  return pid;
}

void
servefiles_remove (void)
{
  struct stat st;

  if (socket_path && lstat (socket_path, &st) == 0 &&
      st.st_dev == socket_dev && st.st_ino == socket_ino &&
      unlink (socket_path) == -1)
    log_warning ("%s: cannot remove the socket: %m", socket_path);
  if (pidfile_path && servefiles_read_pid (pidfile_path) == getpid () &&
      unlink (pidfile_path) == -1)
    log_warning ("%s: cannot remove the pidfile: %m", pidfile_path);
  free (socket_path);
  free (pidfile_path);
  socket_path = pidfile_path = NULL;
}
