/* nbdswap: going into the background (the attach supervisor, and the
 * native server of serve).
 *
 * The command forks; the child gets ready (verifies, locks...) with
 * the command's stdout and stderr still open and in the terminal's
 * process group, so that whatever stops it from starting is printed
 * where the command was typed, and a Ctrl-C meanwhile stops it too.
 * Once in place it calls daemon_ready: from then on it has a session of
 * its own, logs to syslog, its stdout and stderr are /dev/null, and the
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

/* In the child: leave the terminal's session, tell the parent, then log
 * to syslog as ident and move stdout and stderr to /dev/null.  0, or
 * -errno when the parent could not be told (it is gone: whoever started
 * it never learnt that this serves, so the caller should stop). */
extern int daemon_ready (int ready_fd, const char *ident);

#endif /* NBDSWAP_DAEMON_H */
