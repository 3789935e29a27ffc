/* nbdswap: going into the background (the attach supervisor, and serve
 * --native).
 *
 * The command forks; the child starts a session of its own and gets
 * ready (verifies, locks, binds...) with the command's stdout and stderr
 * still open, so that whatever stops it from starting is printed where
 * the command was typed.  Once in place it calls daemon_ready: from then
 * on it logs to syslog, its stdout and stderr are /dev/null, and the
 * parent, which waited for exactly that, returns.
 */
#ifndef NBDSWAP_DAEMON_H
#define NBDSWAP_DAEMON_H

#include <sys/types.h>

/* Fork.  Returns 0 in the child, with *ready_fd to hand to daemon_ready.
 * Returns the child's PID in the parent once the child is ready
 * (*exit_status -1), or once it ended without getting ready
 * (*exit_status its exit status; 128 + N for a signal N).  -errno if
 * the fork failed. */
extern pid_t daemon_fork (int *ready_fd, int *exit_status);

/* In the child: log to syslog as ident (kept), move stdout and stderr to
 * /dev/null and let the parent go. */
extern void daemon_ready (int ready_fd, const char *ident);

#endif /* NBDSWAP_DAEMON_H */
