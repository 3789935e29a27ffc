/* nbdswap: whether a client may be in this kernel (see include/peer.h). */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "peer.h"

/* Room for one rtnetlink answer (a route, or a part of the links'
 * dump: the kernel sends at most a page's worth per read unless asked
 * for more). */
#define NL_BUF 16384

/* The IPv4 address in sa, taking an IPv4-mapped IPv6 one for what it
 * maps; false if it holds none. */
static bool
ipv4_of (const struct sockaddr *sa, struct in_addr *out)
{
  if (sa->sa_family == AF_INET) {
    *out = ((const struct sockaddr_in *) sa)->sin_addr;
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;

    if (IN6_IS_ADDR_V4MAPPED (a)) {
      memcpy (&out->s_addr, a->s6_addr + 12, 4);
      return true;
    }
  }
  return false;
}

/* Whether a and b hold the same address (an IPv4-mapped IPv6 one equal
 * to its IPv4). */
static bool
same_addr (const struct sockaddr *a, const struct sockaddr *b)
{
  struct in_addr a4, b4;

  if (ipv4_of (a, &a4) && ipv4_of (b, &b4))
    return a4.s_addr == b4.s_addr;
  if (a->sa_family == AF_INET6 && b->sa_family == AF_INET6)
    return IN6_ARE_ADDR_EQUAL (&((const struct sockaddr_in6 *) a)->sin6_addr,
                               &((const struct sockaddr_in6 *) b)->sin6_addr);
  return false;
}

/* Send the rtnetlink request req (len bytes) on a new socket, with a
 * buffer of NL_BUF bytes for the answer in *buf (from the heap: the
 * connections' thread stacks are small); the socket's fd, or -1 with
 * nothing to free. */
static int
nl_ask (void *req, size_t len, char **buf)
{
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  int fd;

  *buf = malloc (NL_BUF);
  if (*buf == NULL)
    return -1;
  fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd != -1 && sendto (fd, req, len, 0, (struct sockaddr *) &kernel,
                          sizeof kernel) != (ssize_t) len) {
    close (fd);
    fd = -1;
  }
  if (fd == -1) {
    free (*buf);
    *buf = NULL;
  }
  return fd;
}

/* The route to sa (an IPv4-mapped IPv6 address asked as the IPv4 one
 * it maps): its output interface (ifindex) and whether it goes through
 * a gateway.  0, or -1 (no route, or rtnetlink refused).  Called once
 * per connection, by the connections' threads at once: no static
 * state. */
static int
route_to (const struct sockaddr *sa, int *oif, bool *gateway)
{
  struct {
    struct nlmsghdr nh;
    struct rtmsg rt;
    char attrs[64];
  } req = { 0 };
  struct in_addr v4;
  bool is4 = ipv4_of (sa, &v4);
  int family = is4 ? AF_INET : AF_INET6;
  size_t alen = is4 ? 4 : 16;
  const void *addr = is4 ? (const void *) &v4
    : (const void *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
  char *buf;
  struct rtattr *rta;
  ssize_t n;
  int fd, r = -1;

  req.nh.nlmsg_type = RTM_GETROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.rt.rtm_family = (unsigned char) family;
  req.rt.rtm_dst_len = (unsigned char) (alen * 8);
  rta = (struct rtattr *) ((char *) &req + NLMSG_LENGTH (sizeof req.rt));
  rta->rta_type = RTA_DST;
  rta->rta_len = (unsigned short) RTA_LENGTH (alen);
  memcpy (RTA_DATA (rta), addr, alen);
  req.nh.nlmsg_len = NLMSG_LENGTH (sizeof req.rt) + RTA_SPACE (alen);
  fd = nl_ask (&req, req.nh.nlmsg_len, &buf);
  if (fd == -1)
    return -1;
  n = recv (fd, buf, NL_BUF, 0);
  close (fd);
  for (struct nlmsghdr *h = (struct nlmsghdr *) buf;
       n > 0 && NLMSG_OK (h, (size_t) n); h = NLMSG_NEXT (h, n)) {
    struct rtmsg *rt = NLMSG_DATA (h);
    int left;

    if (h->nlmsg_type != RTM_NEWROUTE)
      continue;
    *oif = 0;
    *gateway = false;
    left = (int) RTM_PAYLOAD (h);
    for (rta = RTM_RTA (rt); RTA_OK (rta, left); rta = RTA_NEXT (rta, left))
      if (rta->rta_type == RTA_OIF)
        memcpy (oif, RTA_DATA (rta), sizeof *oif);
      else if (rta->rta_type == RTA_GATEWAY || rta->rta_type == RTA_VIA)
        *gateway = true;
    r = *oif > 0 ? 0 : -1;
  }
  free (buf);
  return r;
}

/* Whether interface oif is a veth, or a bridge with a veth among its
 * ports: then what it reaches is (or may be, through the bridge or a
 * gateway on the far side) in this kernel, at the other end of a veth
 * pair.  1 (kind gets "veth" or "bridge"), 0, or -1 when the links could
 * not be read (rtnetlink refused, no memory, oif not among them). */
static int
veth_path (int oif, const char **kind)
{
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
  } req = { 0 };
  char *buf;
  bool oif_seen = false, oif_veth = false, oif_bridge = false;
  bool veth_port = false, done = false, failed = false;
  int fd;

  req.nh.nlmsg_len = NLMSG_LENGTH (sizeof req.ifi);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.ifi.ifi_family = AF_UNSPEC;
  fd = nl_ask (&req, req.nh.nlmsg_len, &buf);
  if (fd == -1)
    return -1;
  while (!done) {
    ssize_t n = recv (fd, buf, NL_BUF, 0);

    if (n <= 0) {
      failed = true;
      break;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *) buf;
         n > 0 && NLMSG_OK (h, (size_t) n); h = NLMSG_NEXT (h, n)) {
      struct ifinfomsg *ifi = NLMSG_DATA (h);
      struct rtattr *rta;
      int left, master = 0;
      bool veth = false, bridge = false;

      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        failed = h->nlmsg_type == NLMSG_ERROR;
        done = true;
        break;
      }
      if (h->nlmsg_type != RTM_NEWLINK)
        continue;
      left = (int) IFLA_PAYLOAD (h);
      for (rta = IFLA_RTA (ifi); RTA_OK (rta, left);
           rta = RTA_NEXT (rta, left)) {
        if (rta->rta_type == IFLA_MASTER)
          memcpy (&master, RTA_DATA (rta), sizeof master);
        else if (rta->rta_type == IFLA_LINKINFO) {
          struct rtattr *in = RTA_DATA (rta);
          int inleft = (int) RTA_PAYLOAD (rta);

          for (; RTA_OK (in, inleft); in = RTA_NEXT (in, inleft))
            if (in->rta_type == IFLA_INFO_KIND) {
              veth = RTA_PAYLOAD (in) >= 5
                && memcmp (RTA_DATA (in), "veth", 5) == 0;
              bridge = RTA_PAYLOAD (in) >= 7
                && memcmp (RTA_DATA (in), "bridge", 7) == 0;
            }
        }
      }
      if (ifi->ifi_index == oif) {
        oif_seen = true;
        oif_veth = veth;
        oif_bridge = bridge;
      }
      if (veth && master == oif)
        veth_port = true;
    }
  }
  close (fd);
  free (buf);
  if (failed || !oif_seen)
    return -1;
  *kind = oif_veth ? "veth" : "bridge";
  return oif_veth || (oif_bridge && veth_port);
}

bool
peer_in_this_kernel (const struct sockaddr *sa, char *why, size_t whylen)
{
  struct ifaddrs *list, *i;
  struct in_addr v4;
  char text[INET6_ADDRSTRLEN];
  bool here = false;

  if (sa == NULL) {
    snprintf (why, whylen, "a peer whose address is unknown");
    return true;
  }
  if (sa->sa_family == AF_UNIX) {
    snprintf (why, whylen, "a unix socket");
    return true;
  }
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
    snprintf (why, whylen, "a socket of family %d", sa->sa_family);
    return true;
  }
  acl_peer_name (sa, text, sizeof text);
  if ((ipv4_of (sa, &v4) && (ntohl (v4.s_addr) >> 24) == 127)
      || (sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK (
            &((const struct sockaddr_in6 *) sa)->sin6_addr))) {
    snprintf (why, whylen, "%s, a loopback address", text);
    return true;
  }
  if (getifaddrs (&list) == -1) {
    snprintf (why, whylen, "%s (this machine's addresses unknown)", text);
    return true;
  }
  for (i = list; i != NULL && !here; i = i->ifa_next)
    if (i->ifa_addr != NULL && same_addr (sa, i->ifa_addr)) {
      snprintf (why, whylen, "%s, an address of %s here", text,
                i->ifa_name);
      here = true;
    }
  freeifaddrs (list);
  if (here)
    return true;
  /* A veth's other end is in this kernel: a client whose route leaves
   * through one, or through a bridge with veth ports (containers), may
   * be this machine, gateway or not (a routed container network has
   * its gateway on the veth).  Anything unknown counts as here too:
   * inline is the choice that can hang, so it needs the proof. */
  {
    int oif = 0, v;
    bool gateway = false;
    const char *kind = "";
    char name[IF_NAMESIZE] = "?";

    if (route_to (sa, &oif, &gateway) < 0) {
      snprintf (why, whylen, "%s, its route unknown", text);
      return true;
    }
    if_indextoname ((unsigned) oif, name);
    v = veth_path (oif, &kind);
    if (v < 0) {
      snprintf (why, whylen, "%s, reached through %s, a link of unknown "
                "kind", text, name);
      return true;
    }
    if (v > 0) {
      snprintf (why, whylen, "%s, reached through %s %s%s%s", text, kind,
                name, gateway ? " and a gateway" : "",
                strcmp (kind, "veth") == 0
                ? ": the veth's other end is in this kernel"
                : ", which has veth ports (this machine's containers)");
      return true;
    }
    snprintf (why, whylen, "%s, reached through %s%s, not a veth: another "
              "machine", text, name, gateway ? " and a gateway" : "");
    return false;
  }
}
