/* nbdswap: negotiate with libnbd, then keep the socket for the kernel. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <libnbd.h>
#include <linux/nbd.h>

#include "client-handshake.h"

/* Not in every <linux/nbd.h>; values from the NBD protocol. */
#ifndef NBD_FLAG_ROTATIONAL
#define NBD_FLAG_ROTATIONAL (1 << 4)
#endif
#ifndef NBD_FLAG_SEND_WRITE_ZEROES
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#endif

/* HOST[:PORT], [V6]:PORT, or a path (anything with a '/'). */
int
nbd_target_parse (const char *arg, struct nbd_target *t)
{
  const char *colon, *host = arg, *end;
  size_t hostlen;

  memset (t, 0, sizeof *t);
  t->export_name = "";
  t->netns_fd = t->home_netns_fd = -1;
  if (*arg == '\0')
    return -EINVAL;
  if (strchr (arg, '/')) {
    t->unix_path = arg;
    return 0;
  }
  if (*arg == '[') {
    end = strchr (arg, ']');
    if (end == NULL)
      return -EINVAL;
    host = arg + 1;
    hostlen = (size_t) (end - host);
    colon = end[1] == ':' ? end + 1 : NULL;
    if (end[1] != '\0' && colon == NULL)
      return -EINVAL;
  }
  else {
    colon = strrchr (arg, ':');
    if (colon && strchr (arg, ':') != colon)
      return -EINVAL;           /* a bare IPv6 address needs brackets */
    hostlen = colon ? (size_t) (colon - arg) : strlen (arg);
  }
  if (hostlen == 0 || hostlen >= sizeof t->host)
    return -EINVAL;
  memcpy (t->host, host, hostlen);
  if (colon == NULL)
    strcpy (t->port, "10809");
  else if (colon[1] == '\0' || strlen (colon + 1) >= sizeof t->port
           || strspn (colon + 1, "0123456789") != strlen (colon + 1))
    return -EINVAL;
  else
    strcpy (t->port, colon + 1);
  return 0;
}

/* Rebuilds the transmission flags from libnbd's answers (libnbd 1.14
 * has no call that returns them whole). */
static uint64_t
export_flags (struct nbd_handle *h)
{
  uint64_t f = NBD_FLAG_HAS_FLAGS;

  if (nbd_is_read_only (h) == 1) f |= NBD_FLAG_READ_ONLY;
  if (nbd_can_flush (h) == 1) f |= NBD_FLAG_SEND_FLUSH;
  if (nbd_can_fua (h) == 1) f |= NBD_FLAG_SEND_FUA;
  if (nbd_is_rotational (h) == 1) f |= NBD_FLAG_ROTATIONAL;
  if (nbd_can_trim (h) == 1) f |= NBD_FLAG_SEND_TRIM;
  if (nbd_can_zero (h) == 1) f |= NBD_FLAG_SEND_WRITE_ZEROES;
  if (nbd_can_multi_conn (h) == 1) f |= NBD_FLAG_CAN_MULTI_CONN;
  return f;
}

/* Settings for a handshake the kernel can take over. */
static int
prepare (struct nbd_handle *h, const struct nbd_target *t)
{
  if (nbd_set_export_name (h, t->export_name) == -1
      || nbd_set_request_structured_replies (h, false) == -1
      || nbd_set_tls (h, LIBNBD_TLS_DISABLE) == -1)
    return -1;
  if (t->unix_path)
    return nbd_connect_unix (h, t->unix_path);
  return nbd_connect_tcp (h, t->host, t->port);
}

/* Negotiates, duplicates the socket, closes the handle. */
static int
handshake_here (const struct nbd_target *t, struct nbd_export *e,
                char *err, size_t errlen)
{
  struct nbd_handle *h;
  int64_t size;
  int fd, r;

  if (t->tls)
    return nbd_handshake_tls (t, e, err, errlen);
  h = nbd_create ();
  if (h == NULL) {
    snprintf (err, errlen, "%s", nbd_get_error ());
    return -ENOMEM;
  }
  if (prepare (h, t) == -1 || (size = nbd_get_size (h)) == -1)
    goto fail;
  e->size = (uint64_t) size;
  e->flags = export_flags (h);
  e->multi_conn = nbd_can_multi_conn (h) == 1;
  {
    int64_t m = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
    e->max_block = m > 0 && m <= UINT32_MAX ? (uint32_t) m : 0;
  }
  fd = nbd_aio_get_fd (h);
  if (fd == -1)
    goto fail;
  fd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (fd == -1) {
    r = -errno;
    snprintf (err, errlen, "dup: %s", strerror (errno));
    nbd_close (h);
    return r;
  }
  /* libnbd made it non-blocking; the kernel's sends and receives must
   * block.  The duplicate shares the flag with libnbd's descriptor, which
   * is closed next anyway. */
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  nbd_close (h);
  return fd;

 fail:
  r = nbd_get_errno () ? -nbd_get_errno () : -EIO;
  snprintf (err, errlen, "%s", nbd_get_error ());
  nbd_close (h);
  return r;
}

/* The handshake from t's network namespace, if it has one.  A socket
 * stays in the namespace it was made in, while the kernel's nbd driver
 * takes it over netlink from the initial namespace only (Linux 6.1
 * registers its family there alone): so only the connect moves. */
int
nbd_handshake (const struct nbd_target *t, struct nbd_export *e,
               char *err, size_t errlen)
{
  int fd, r;

  if (t->netns_fd < 0)
    return handshake_here (t, e, err, errlen);
  if (setns (t->netns_fd, CLONE_NEWNET) == -1) {
    r = -errno;
    snprintf (err, errlen, "entering the network namespace: %s",
              strerror (errno));
    return r;
  }
  fd = handshake_here (t, e, err, errlen);
  if (setns (t->home_netns_fd, CLONE_NEWNET) == -1) {
    /* Netlink from here would not find the driver: give up this try. */
    r = -errno;
    snprintf (err, errlen, "returning to the initial network namespace: %s",
              strerror (errno));
    if (fd >= 0)
      close (fd);
    return r;
  }
  return fd;
}
