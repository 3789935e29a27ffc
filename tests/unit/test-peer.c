/* Unit tests: whether a client may be in this kernel (lib/peer.c), which
 * decides how the native server issues its file operations: the cases
 * that do not depend on this host's routes.  The routes (veth, bridge,
 * gateway, another machine) are tests/serve/test-serve-file-io.sh's. */
#include <config.h>

#include <arpa/inet.h>
#include <check.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "peer.h"
#include "../check-run.h"

static char why[160];

/* peer_in_this_kernel for the text address a (IPv4 or IPv6). */
static bool
here (const char *a)
{
  struct sockaddr_storage ss = { 0 };
  struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

  if (inet_pton (AF_INET, a, &s4->sin_addr) == 1)
    s4->sin_family = AF_INET;
  else {
    ck_assert_int_eq (inet_pton (AF_INET6, a, &s6->sin6_addr), 1);
    s6->sin6_family = AF_INET6;
  }
  return peer_in_this_kernel ((struct sockaddr *) &ss, why, sizeof why);
}

START_TEST (test_unix_and_unknown)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };

  ck_assert (peer_in_this_kernel ((struct sockaddr *) &sun, why, sizeof why));
  ck_assert_str_eq (why, "a unix socket");
  ck_assert (peer_in_this_kernel (NULL, why, sizeof why));
  ck_assert_str_eq (why, "a peer whose address is unknown");
}
END_TEST

START_TEST (test_loopback)
{
  ck_assert (here ("127.0.0.1"));
  ck_assert_str_eq (why, "127.0.0.1, a loopback address");
  ck_assert (here ("127.3.2.1"));
  ck_assert (here ("::1"));
  ck_assert (here ("::ffff:127.0.0.1"));
}
END_TEST

/* Every non-loopback address of this machine's interfaces counts as
 * here, IPv4 ones also in their IPv4-mapped IPv6 form. */
START_TEST (test_own_addresses)
{
  struct ifaddrs *list, *i;
  char text[INET6_ADDRSTRLEN], mapped[INET6_ADDRSTRLEN + 8];
  unsigned seen = 0;

  ck_assert_int_eq (getifaddrs (&list), 0);
  for (i = list; i != NULL; i = i->ifa_next) {
    int f = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
    const void *a;

    if (f == AF_INET)
      a = &((struct sockaddr_in *) i->ifa_addr)->sin_addr;
    else if (f == AF_INET6)
      a = &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
    else
      continue;
    ck_assert_ptr_nonnull (inet_ntop (f, a, text, sizeof text));
    ck_assert_msg (here (text), "%s of %s: %s", text, i->ifa_name, why);
    if (f == AF_INET) {
      snprintf (mapped, sizeof mapped, "::ffff:%s", text);
      ck_assert_msg (here (mapped), "%s: %s", mapped, why);
    }
    seen++;
  }
  freeifaddrs (list);
  ck_assert_uint_gt (seen, 0);          /* lo at least */
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("peer");
  TCase *tc = tcase_create ("peer");

  tcase_add_test (tc, test_unix_and_unknown);
  tcase_add_test (tc, test_loopback);
  tcase_add_test (tc, test_own_addresses);
  suite_add_tcase (s, tc);
  return check_run (s);
}
