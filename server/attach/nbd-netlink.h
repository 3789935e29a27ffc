/* nbdswap: the kernel nbd driver's generic-netlink interface ("nbd").
 *
 * Every function returns 0 (or a non-negative value) on success and
 * -errno on failure; the errno is the kernel's own answer where there is
 * one (EBUSY: the device is configured already; ENOSPC on reconfigure:
 * no dead connection to replace).  Nothing here prints.
 */
#ifndef NBDSWAP_NBD_NETLINK_H
#define NBDSWAP_NBD_NETLINK_H

#include <stdint.h>

struct nl_sock;

/* What NBD_CMD_CONNECT hands the kernel. */
struct nbdnl_config {
  int index;                    /* /dev/nbdN's N, or -1: kernel picks */
  uint64_t size;                /* export size in bytes */
  uint64_t block_size;          /* 4096 */
  uint64_t server_flags;        /* the export's transmission flags */
  uint64_t timeout;             /* request timeout, seconds */
  uint64_t dead_conn_timeout;   /* wait this long for a reconnect */
  const int *fds;               /* negotiated sockets */
  unsigned nr_fds;
};

/* Configures the device; returns its index (>= 0) or -errno. */
extern int nbdnl_connect (const struct nbdnl_config *cfg);

/* Hands sockets to a configured device in place of dead ones. */
extern int nbdnl_reconfigure (int index, const int *fds, unsigned nr_fds);

/* Disconnects the device (its queued I/O fails). */
extern int nbdnl_disconnect (int index);

/* Opens a socket subscribed to the driver's multicast group; *out is it. */
extern int nbdnl_monitor_open (struct nl_sock **out);

/* Reads what has arrived on the monitor socket (call when its fd is
 * readable).  Returns 1 if a NBD_CMD_LINK_DEAD for device index arrived,
 * 0 if not, -ENOBUFS if notifications were lost, else -errno. */
extern int nbdnl_monitor_read (struct nl_sock *sk, int index);

/* The monitor socket's file descriptor, for poll. */
extern int nbdnl_monitor_fd (struct nl_sock *sk);

extern void nbdnl_monitor_close (struct nl_sock *sk);

#endif /* NBDSWAP_NBD_NETLINK_H */
