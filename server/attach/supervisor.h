/* nbdswap: the attach supervisor.
 *
 * It sits in the kernel's reclaim path (the device it keeps connected is
 * swap), so it is memory-locked, PR_SET_IO_FLUSHER (its allocations do no
 * I/O) and OOM-exempt.  It waits for NBD_CMD_LINK_DEAD about its device
 * on the nbd multicast group, reconnects to the server with backoff
 * (100 ms doubling to 5 s, for ever) and hands the new socket to the
 * kernel with NBD_CMD_RECONFIGURE; the kernel holds the I/O meanwhile
 * (dead-connection timeout).  SIGTERM/SIGINT end it; it does not
 * disconnect the device (detach does).
 */
#ifndef NBDSWAP_SUPERVISOR_H
#define NBDSWAP_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client-handshake.h"

struct nl_sock;

struct supervisor {
  int index;                    /* /dev/nbdN */
  struct nbd_target target;
  uint64_t size;                /* a reconnect must find the same size */
  struct nl_sock *monitor;      /* subscribed before NBD_CMD_CONNECT */
};

/* The pidfile of device index's supervisor. */
extern void supervisor_pidfile (int index, char *path, size_t len);

/* Writes the pidfile (also in the foreground, for detach). */
extern int supervisor_write_pidfile (int index);

/* Locks memory, sets IO_FLUSHER and OOM exemption (warnings only). */
extern void supervisor_harden (void);

/* Writes the pidfile, then serves until a signal; returns an exit code. */
extern int supervisor_run (struct supervisor *s);

/* Detaches into the background (parent exits 0 once the child has its
 * pidfile); logs go to syslog from then on.  Returns -errno on failure. */
extern int supervisor_daemonize (int index);

#endif /* NBDSWAP_SUPERVISOR_H */
