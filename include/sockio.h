/* nbdswap: blocking-style socket I/O with one deadline, for the
 * negotiations (the native server's, attach's with TLS, the TLS
 * handshake): a peer that trickles a byte at a time cannot hold a thread
 * past the deadline.  The socket may be blocking: every call is
 * MSG_DONTWAIT after a poll.
 */
#ifndef NBDSWAP_SOCKIO_H
#define NBDSWAP_SOCKIO_H

#include <stddef.h>
#include <stdint.h>

/* Wait until fd is ready for events (POLLIN, POLLOUT) by deadline_ns
 * (clock_now_ns).  0, -ETIMEDOUT, or -errno. */
extern int sockio_wait (int fd, short events, uint64_t deadline_ns);

/* Move exactly len bytes: in when dir is POLLIN, out when POLLOUT.  0,
 * -ECONNRESET when the peer closed before all came in, -ETIMEDOUT, or
 * -errno. */
extern int sockio_full (int fd, void *buf, size_t len, short dir,
                        uint64_t deadline_ns);

/* Read and drop len bytes (the rest of a message not kept, so that the
 * stream stays in step).  0, or as sockio_full. */
extern int sockio_skip (int fd, uint64_t len, uint64_t deadline_ns);

#endif /* NBDSWAP_SOCKIO_H */
