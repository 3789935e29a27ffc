/* nbdswap: whether a client may be in this kernel.
 *
 * A server whose client's kernel is its own (a sidecar on a unix
 * socket, a client on loopback or on one of this machine's addresses)
 * serves that kernel's swap: its file operations run while that kernel
 * is short of memory, and an operation that waits for a bio from a pool
 * the client's swap-outs hold can only go on once this server replies
 * to them.  So who the peer is decides how the native server may issue
 * file operations (native.h, --file-io).
 */
#ifndef NBDSWAP_PEER_H
#define NBDSWAP_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* True if the peer at sa (NULL: unknown) may be in this kernel: a unix
 * socket, a loopback address, an address of one of this network
 * namespace's interfaces, or an address whose route leaves through a
 * veth (whose other end is always in this kernel: gateway or not, as
 * routed container networks have it) or a bridge with veth ports
 * (containers); and whatever cannot be found out (no route, rtnetlink
 * refused, no memory): the other answer is the one that can hang.  why
 * gets the reason either way ("a unix socket", "10.0.0.2, reached
 * through veth v0: ...").  So a server in a container of its own sees
 * every client as here (its eth0 is a veth); namespaces of one machine
 * joined some other way (macvlan, ipvlan, a tunnel) look like other
 * machines. */
extern bool peer_in_this_kernel (const struct sockaddr *sa, char *why,
                                 size_t whylen);

#endif /* NBDSWAP_PEER_H */
