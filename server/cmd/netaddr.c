/* nbdswap: numeric addresses, loopback and CIDR checks, the runtime
 * directory and the instance name (see serve.h). */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

const char *
serve_runtime_dir (void)
{
  const char *dir = getenv ("NBDSWAP_RUNTIME_DIR");

  return dir && dir[0] ? dir : SERVE_RUNTIME_DIR;
}

void
serve_instance_name (const char *file, char *buf, size_t len)
{
  const char *base = strrchr (file, '/');
  char *dot;

  snprintf (buf, len, "%s", base ? base + 1 : file);
  dot = strrchr (buf, '.');
  /* A leading dot is part of the name (".swap" stays ".swap"). */
  if (dot && dot != buf)
    *dot = '\0';
}

bool
netaddr_is_numeric (const char *addr)
{
  struct in6_addr a6;
  struct in_addr a4;

  return inet_pton (AF_INET, addr, &a4) == 1
    || inet_pton (AF_INET6, addr, &a6) == 1;
}

bool
netaddr_is_loopback (const char *addr)
{
  struct in6_addr a6;
  struct in_addr a4;

  if (inet_pton (AF_INET, addr, &a4) == 1)
    return (ntohl (a4.s_addr) >> 24) == 127;
  if (inet_pton (AF_INET6, addr, &a6) != 1)
    return false;
  if (IN6_IS_ADDR_LOOPBACK (&a6))
    return true;
  return IN6_IS_ADDR_V4MAPPED (&a6) && a6.s6_addr[12] == 127;
}

bool
netaddr_is_cidr (const char *s)
{
  char addr[INET6_ADDRSTRLEN + 1], *end;
  const char *slash = strchr (s, '/');
  size_t n = slash ? (size_t) (slash - s) : strlen (s);
  struct in6_addr a6;
  struct in_addr a4;
  unsigned long len, max;

  if (n == 0 || n >= sizeof addr)
    return false;
  memcpy (addr, s, n);
  addr[n] = '\0';
  if (inet_pton (AF_INET, addr, &a4) == 1)
    max = 32;
  else if (inet_pton (AF_INET6, addr, &a6) == 1)
    max = 128;
  else
    return false;
  if (slash == NULL)
    return true;
  if (slash[1] < '0' || slash[1] > '9')
    return false;
  len = strtoul (slash + 1, &end, 10);
  return *end == '\0' && len <= max;
}

/* The plugin argument as nbdkit sees it: "swapfile" or a path to the
 * shared object. */
static bool
is_plugin_arg (const char *arg)
{
  const char *base = strrchr (arg, '/');

  base = base ? base + 1 : arg;
  return strcmp (arg, SERVE_PLUGIN_NAME) == 0
    || strcmp (base, SERVE_PLUGIN_SO) == 0;
}

bool
serve_cmdline_is_ours (char **argv, size_t argc)
{
  const char *base;

  if (argc < 2)
    return false;
  base = strrchr (argv[0], '/');
  base = base ? base + 1 : argv[0];
  if (strcmp (base, "nbdkit") != 0)
    return false;
  for (size_t i = 1; i < argc; i++)
    if (is_plugin_arg (argv[i]))
      return true;
  return false;
}
