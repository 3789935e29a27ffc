/* nbdswap: the client allow-list (allow=CIDR,...).
 *
 * Swap pages are process memory: a TCP export reachable from elsewhere
 * must only answer the clients it is meant for.  (nbdkit's ip filter
 * would do this, but Debian 12's nbdkit 1.32.5 builds it unable to parse
 * any address.)  Unix-socket clients are always allowed: the socket's
 * file mode guards them.  An empty list allows everyone.
 */
#ifndef NBDSWAP_ACL_H
#define NBDSWAP_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct acl_entry {
  int family;                   /* AF_INET or AF_INET6 */
  unsigned char addr[16];       /* network byte order */
  unsigned prefix;              /* bits that must match */
};

struct acl {
  struct acl_entry *entries;
  size_t n;
};

/* Append the comma-separated CIDRs (ADDR or ADDR/BITS, IPv4 or IPv6) in
 * list.  Returns 0, -EINVAL with a message naming the bad entry in err,
 * or -ENOMEM. */
extern int acl_parse (struct acl *a, const char *list, char *err,
                      size_t errlen);

/* Is a client at sa allowed?  IPv4-mapped IPv6 addresses match IPv4
 * entries. */
extern bool acl_allows (const struct acl *a, const struct sockaddr *sa);

/* The address of a client at sa, numeric, for a log line ("?" for
 * anything but IPv4 and IPv6); returns name. */
extern const char *acl_peer_name (const struct sockaddr *sa, char *name,
                                  size_t len);

/* A TCP client at sa may connect (an empty list allows all); else one
 * log line naming it and the option (allow=, --allow) that refused it.
 * Both servers admit their clients with it. */
extern bool acl_admit (const struct acl *a, const struct sockaddr *sa,
                       const char *option);

extern void acl_free (struct acl *a);

#endif /* NBDSWAP_ACL_H */
