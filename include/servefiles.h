/* nbdswap: the files 'nbdswap serve' made for nbdkit, removed when the
 * server stops, as the native server removes its own: nbdkit never
 * removes its unix socket (neither -U nor one handed to it) nor its
 * pidfile (-P).
 *
 * serve names them in the environment of the nbdkit it runs (not a
 * socket systemd passed: that one is systemd's to keep).  The plugin, in
 * the process that serves, notes the socket's identity once nbdkit
 * listens on it (servefiles_claim, .after_fork) and at exit removes the
 * socket if it is still that one and the pidfile if it still names this
 * process (servefiles_remove, .unload): what a later server made at the
 * same paths is left alone.
 */
#ifndef NBDSWAP_SERVEFILES_H
#define NBDSWAP_SERVEFILES_H

#include <sys/types.h>

#define SERVEFILES_SOCKET_ENV "NBDSWAP_SERVE_SOCKET"
#define SERVEFILES_PIDFILE_ENV "NBDSWAP_SERVE_PIDFILE"

/* The PID a pidfile holds; 0 if there is none (yet). */
extern pid_t servefiles_read_pid (const char *path);

/* Note the files named in the environment, if any. */
extern void servefiles_claim (void);

/* Remove the files servefiles_claim noted, where still ours. */
extern void servefiles_remove (void);

#endif /* NBDSWAP_SERVEFILES_H */
