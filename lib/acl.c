/* nbdswap: the client allow-list (see include/acl.h). */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "log.h"

/* Parse one ADDR[/BITS] into e. */
static int
parse_one (const char *s, struct acl_entry *e)
{
  char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
  unsigned max;
  long bits;

  if (strlen (s) >= sizeof buf)
    return -EINVAL;
  strcpy (buf, s);
  slash = strchr (buf, '/');
  if (slash)
    *slash = '\0';
  memset (e, 0, sizeof *e);
  if (inet_pton (AF_INET, buf, e->addr) == 1) {
    e->family = AF_INET;
    max = 32;
  }
  else if (inet_pton (AF_INET6, buf, e->addr) == 1) {
    e->family = AF_INET6;
    max = 128;
  }
  else
    return -EINVAL;
  e->prefix = max;
  if (slash) {
    errno = 0;
    bits = strtol (slash + 1, &end, 10);
    if (errno || end == slash + 1 || *end || bits < 0 || bits > (long) max)
      return -EINVAL;
    e->prefix = (unsigned) bits;
  }
  return 0;
}

int
acl_parse (struct acl *a, const char *list, char *err, size_t errlen)
{
  char *copy = strdup (list), *save = NULL, *tok;
  int r = 0;

  if (copy == NULL)
    return -ENOMEM;
  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save)) {
    struct acl_entry e, *grown;

    if (parse_one (tok, &e) < 0) {
      snprintf (err, errlen, "allow=%s: '%s' is not an address or CIDR "
                "(e.g. 192.0.2.0/24 or 2001:db8::/32)", list, tok);
      r = -EINVAL;
      break;
    }
    grown = realloc (a->entries, (a->n + 1) * sizeof *grown);
    if (grown == NULL) {
      r = -ENOMEM;
      break;
    }
    a->entries = grown;
    a->entries[a->n++] = e;
  }
  if (r == 0 && a->n == 0) {
    snprintf (err, errlen, "allow=%s: no address given", list);
    r = -EINVAL;
  }
  free (copy);
  return r;
}

/* Do the first bits of x and y agree? */
static bool
prefix_equal (const unsigned char *x, const unsigned char *y, unsigned bits)
{
  unsigned whole = bits / 8, rest = bits % 8;

  if (memcmp (x, y, whole) != 0)
    return false;
  return rest == 0
    || ((x[whole] ^ y[whole]) & (unsigned char) (0xff << (8 - rest))) == 0;
}

bool
acl_allows (const struct acl *a, const struct sockaddr *sa)
{
  const unsigned char *addr;
  int family = sa->sa_family;

  if (a->n == 0 || family == AF_UNIX)
    return true;
  if (family == AF_INET)
    addr = (const unsigned char *) &((const struct sockaddr_in *) sa)->sin_addr;
  else if (family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    addr = a6->s6_addr;
    if (IN6_IS_ADDR_V4MAPPED (a6)) {
      family = AF_INET;
      addr += 12;
    }
  }
  else
    return false;
  for (size_t i = 0; i < a->n; i++)
    if (a->entries[i].family == family
        && prefix_equal (addr, a->entries[i].addr, a->entries[i].prefix))
      return true;
  return false;
}

void
acl_free (struct acl *a)
{
  free (a->entries);
  a->entries = NULL;
  a->n = 0;
}

const char *
acl_peer_name (const struct sockaddr *sa, char *name, size_t len)
{
  const void *addr = NULL;

  if (sa->sa_family == AF_INET)
    addr = &((const struct sockaddr_in *) sa)->sin_addr;
  else if (sa->sa_family == AF_INET6)
    addr = &((const struct sockaddr_in6 *) sa)->sin6_addr;
  if (addr == NULL || inet_ntop (sa->sa_family, addr, name, len) == NULL)
    snprintf (name, len, "?");
  return name;
}

bool
acl_admit (const struct acl *a, const struct sockaddr *sa,
           const char *option)
{
  char name[INET6_ADDRSTRLEN];

  if (a->n == 0 || acl_allows (a, sa))
    return true;
  acl_peer_name (sa, name, sizeof name);
  log_error ("client %s is not in %s: connection refused (swap pages are "
             "process memory; add its network to %s to let it in)", name,
             option, option);
  return false;
}
