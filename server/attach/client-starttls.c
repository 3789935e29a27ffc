/* nbdswap attach: the NBD handshake with TLS, for the kernel client.
 *
 * libnbd would keep its TLS session in user space, where the kernel
 * cannot follow it, so with TLS the negotiation is ours: fixed newstyle,
 * NBD_OPT_STARTTLS, the TLS handshake (lib/tls.c), the session's keys
 * into the kernel (kTLS), then NBD_OPT_GO over the now encrypted socket.
 * The socket the kernel gets carries plaintext for it and TLS records on
 * the wire.  Everything within one deadline.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-handshake.h"
#include "clock.h"
#include "native-proto.h"
#include "sockio.h"
#include "tls.h"

/* Seconds the whole negotiation may take. */
#define STARTTLS_TIMEOUT 30

struct chan {
  int fd;
  uint64_t deadline_ns;
};

/* Move exactly len bytes in (POLLIN) or out (POLLOUT) within the
 * negotiation's deadline. */
static int
chan_full (const struct chan *c, void *buf, size_t len, short dir)
{
  return sockio_full (c->fd, buf, len, dir, c->deadline_ns);
}

/* Connect to the target's host and port, each address in turn. */
static int
tcp_connect (const struct nbd_target *t, char *err, size_t errlen)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *a;
  int r = getaddrinfo (t->host, t->port, &hints, &res), fd = -1, e = 0;

  if (r != 0) {
    snprintf (err, errlen, "%s:%s: %s", t->host, t->port, gai_strerror (r));
    return -EHOSTUNREACH;
  }
  for (a = res; a && fd < 0; a = a->ai_next) {
    fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && connect (fd, a->ai_addr, a->ai_addrlen) == -1) {
      e = errno;
      close (fd);
      fd = -1;
    }
  }
  freeaddrinfo (res);
  if (fd < 0) {
    snprintf (err, errlen, "connect %s:%s: %s", t->host, t->port,
              strerror (e ? e : EHOSTUNREACH));
    return -(e ? e : EHOSTUNREACH);
  }
  return fd;
}

/* Send option opt with len bytes of data. */
static int
send_option (const struct chan *c, uint32_t opt, const void *data,
             uint32_t len)
{
  struct {
    uint64_t magic;
    uint32_t opt, len;
  } __attribute__ ((packed)) h = {
    htobe64 (NBD_MAGIC_OPT), htobe32 (opt), htobe32 (len)
  };
  int r = chan_full (c, &h, sizeof h, POLLOUT);

  if (r == 0 && len > 0)
    r = chan_full (c, (void *) data, len, POLLOUT);
  return r;
}

/* Read one option reply: its type, and up to cap bytes of its data in
 * buf (the rest dropped); *len the data's length.  0 or -errno. */
static int
read_reply (const struct chan *c, uint32_t opt, uint32_t *type,
            unsigned char *buf, uint32_t cap, uint32_t *len)
{
  struct {
    uint64_t magic;
    uint32_t opt, type, len;
  } __attribute__ ((packed)) h;
  uint32_t keep;
  int r = chan_full (c, &h, sizeof h, POLLIN);

  if (r < 0)
    return r;
  if (be64toh (h.magic) != NBD_MAGIC_REP || be32toh (h.opt) != opt)
    return -EPROTO;
  *type = be32toh (h.type);
  *len = be32toh (h.len);
  keep = *len < cap ? *len : cap;
  r = chan_full (c, buf, keep, POLLIN);
  if (r == 0)
    r = sockio_skip (c->fd, *len - keep, c->deadline_ns);
  return r;
}

/* An error reply, said: the server's own text when it sent one. */
static int
reply_error (uint32_t type, const unsigned char *msg, uint32_t len,
             const char *what, char *err, size_t errlen)
{
  snprintf (err, errlen, "%s refused (NBD error %u)%s%.*s", what,
            type & ~NBD_REP_ERR, len ? ": " : "", (int) len,
            (const char *) msg);
  return type == NBD_REP_ERR_UNKNOWN ? -ENOENT : -EPROTO;
}

/* Greeting and client flags: fixed newstyle or nothing. */
static int
greet (const struct chan *c, char *err, size_t errlen)
{
  struct {
    uint64_t magic, opt;
    uint16_t flags;
  } __attribute__ ((packed)) g;
  uint32_t cflags;
  int r = chan_full (c, &g, sizeof g, POLLIN);

  if (r < 0) {
    snprintf (err, errlen, "reading the server's greeting: %s",
              strerror (-r));
    return r;
  }
  if (be64toh (g.magic) != NBD_MAGIC_INIT || be64toh (g.opt) != NBD_MAGIC_OPT
      || !(be16toh (g.flags) & NBD_FLAG_FIXED_NEWSTYLE)) {
    snprintf (err, errlen, "not an NBD server speaking fixed newstyle");
    return -EPROTO;
  }
  cflags = htobe32 (NBD_FLAG_C_FIXED_NEWSTYLE |
                    (be16toh (g.flags) & NBD_FLAG_NO_ZEROES
                     ? NBD_FLAG_C_NO_ZEROES : 0));
  return chan_full (c, &cflags, sizeof cflags, POLLOUT);
}

/* NBD_OPT_STARTTLS, the TLS handshake, the keys into the kernel. */
static int
starttls (const struct chan *c, const struct nbd_target *t, char *err,
          size_t errlen)
{
  unsigned char msg[256];
  uint32_t type, len;
  struct tls_keys keys;
  char peer[256], why[512];
  int r = send_option (c, NBD_OPT_STARTTLS, NULL, 0);

  if (r == 0)
    r = read_reply (c, NBD_OPT_STARTTLS, &type, msg, sizeof msg, &len);
  if (r < 0) {
    snprintf (err, errlen, "asking for TLS: %s", strerror (-r));
    return r;
  }
  if (type != NBD_REP_ACK) {
    reply_error (type, msg, len, "TLS (NBD_OPT_STARTTLS)", err, errlen);
    snprintf (err + strlen (err), errlen - strlen (err), ": serve with "
              "--tls-psk or --tls-certificates");
    return -EPROTONOSUPPORT;
  }
  r = tls_handshake (c->fd, t->tls, c->deadline_ns, t->host, &keys, peer,
                     sizeof peer, why, sizeof why);
  if (r == 0) {
    r = tls_ktls_install (c->fd, &keys, why, sizeof why);
    tls_keys_wipe (&keys);
  }
  if (r < 0)
    snprintf (err, errlen, "TLS: %s", why);
  return r;
}

/* NBD_OPT_GO for the export; its size and flags in e. */
static int
go (const struct chan *c, const struct nbd_target *t, struct nbd_export *e,
    char *err, size_t errlen)
{
  size_t nl = strlen (t->export_name);
  unsigned char req[4 + 4096 + 2], msg[512];
  uint32_t be = htobe32 ((uint32_t) nl), type, len;
  bool have_info = false;
  int r;

  e->max_block = 0;             /* not asked for: no NBD_INFO_BLOCK_SIZE */
  if (nl > 4096) {
    snprintf (err, errlen, "export name longer than 4096 bytes");
    return -EINVAL;
  }
  memcpy (req, &be, 4);
  memcpy (req + 4, t->export_name, nl);
  memset (req + 4 + nl, 0, 2);              /* no information requests */
  r = send_option (c, NBD_OPT_GO, req, (uint32_t) (4 + nl + 2));
  while (r == 0) {
    r = read_reply (c, NBD_OPT_GO, &type, msg, sizeof msg, &len);
    if (r < 0)
      break;
    if (type & NBD_REP_ERR)
      return reply_error (type, msg, len < sizeof msg ? len : sizeof msg,
                          "the export", err, errlen);
    if (type == NBD_REP_ACK)
      break;
    if (type == NBD_REP_INFO && len >= 12 && msg[0] == 0 &&
        msg[1] == NBD_INFO_EXPORT) {
      uint64_t size;
      uint16_t flags;

      memcpy (&size, msg + 2, 8);
      memcpy (&flags, msg + 10, 2);
      e->size = be64toh (size);
      e->flags = be16toh (flags);
      e->multi_conn = e->flags & NBD_FLAG_CAN_MULTI_CONN;
      have_info = true;
    }
  }
  if (r < 0) {
    snprintf (err, errlen, "NBD_OPT_GO: %s", strerror (-r));
    return r;
  }
  if (!have_info) {
    snprintf (err, errlen, "the server sent no size for the export");
    return -EPROTO;
  }
  return 0;
}

int
nbd_handshake_tls (const struct nbd_target *t, struct nbd_export *e,
                   char *err, size_t errlen)
{
  struct chan c = { -1, clock_now_ns () + STARTTLS_TIMEOUT * UINT64_C (1000000000) };
  int r;

  if (t->unix_path) {
    snprintf (err, errlen, "TLS to a unix socket: attach's TLS runs in the "
              "kernel (kTLS), which needs TCP");
    return -EINVAL;
  }
  c.fd = tcp_connect (t, err, errlen);
  if (c.fd < 0)
    return c.fd;
  r = greet (&c, err, errlen);
  if (r == 0)
    r = starttls (&c, t, err, errlen);
  if (r == 0)
    r = go (&c, t, e, err, errlen);
  if (r < 0) {
    close (c.fd);
    return r;
  }
  return c.fd;
}
