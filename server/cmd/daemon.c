/* nbdswap: going into the background (see daemon.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* The sink for a daemon: syslog, with the ident named by openlog. */
static void
syslog_sink (enum log_level level, const char *line)
{
  if (level != LOG_LEVEL_DEBUG || log_debug_enabled ())
    syslog (log_syslog_priority (level), "%s", line);
}

pid_t
daemon_fork (int *ready_fd, int *exit_status)
{
  int pipefd[2], null, status;
  char ok = 0;
  pid_t pid;

  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return -errno;
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    int e = errno;
    close (pipefd[0]);
    close (pipefd[1]);
    return -e;
  }
  if (pid > 0) {
    close (pipefd[1]);
    /* One byte: ready.  End of file: the child ended (or closed it
     * without saying it is ready, which is as bad). */
    while (read (pipefd[0], &ok, 1) == -1 && errno == EINTR)
      ;
    close (pipefd[0]);
    *exit_status = -1;
    if (ok != 1) {
      while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
        ;
      *exit_status = WIFEXITED (status) ? WEXITSTATUS (status) :
        WIFSIGNALED (status) ? 128 + WTERMSIG (status) : 1;
    }
    return pid;
  }
  close (pipefd[0]);
  null = open ("/dev/null", O_RDONLY);
  if (null >= 0) {
    dup2 (null, 0);
    if (null > 0)
      close (null);
  }
  *ready_fd = pipefd[1];
  return 0;
}

int
daemon_ready (int ready_fd, const char *ident)
{
  static char name[64];
  struct sigaction ign = { .sa_handler = SIG_IGN }, old;
  char ok = 1;
  int null, r = 0;

  /* Only now out of the terminal's process group: a Ctrl-C while the
   * command is still starting stops the child with it. */
  setsid ();
  /* A parent gone (killed) means nobody was told this serves: EPIPE,
   * not SIGPIPE, and the caller stops. */
  sigaction (SIGPIPE, &ign, &old);
  if (write (ready_fd, &ok, 1) != 1)
    r = -errno;
  sigaction (SIGPIPE, &old, NULL);
  close (ready_fd);
  if (r < 0)
    return r;
  snprintf (name, sizeof name, "%s", ident);
  openlog (name, LOG_PID, LOG_DAEMON);
  log_set_sink (syslog_sink);
  fflush (NULL);
  null = open ("/dev/null", O_WRONLY);
  if (null >= 0) {
    dup2 (null, 1);
    dup2 (null, 2);
    if (null > 2)
      close (null);
  }
  return 0;
}
