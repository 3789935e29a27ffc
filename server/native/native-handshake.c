/* nbdswap native server: the fixed newstyle negotiation, server side,
 * on the connection's blocking socket before its ring takes over.
 *
 * Offered: NBD_OPT_GO and NBD_OPT_INFO (NBD_INFO_EXPORT and
 * NBD_INFO_BLOCK_SIZE), NBD_OPT_EXPORT_NAME, NBD_OPT_LIST, NBD_OPT_ABORT,
 * and NBD_OPT_STARTTLS when the server has TLS credentials.  Everything
 * else, NBD_OPT_STRUCTURED_REPLY included, gets NBD_REP_ERR_UNSUP: the
 * kernel client speaks only simple replies.
 *
 * With TLS configured it is required (nbdkit's --tls=require): before
 * STARTTLS only NBD_OPT_ABORT is served, every other option gets
 * NBD_REP_ERR_TLS_REQD.  After the TLS handshake (lib/tls.c) the keys go
 * into the kernel (kTLS), so the rest of the negotiation and the
 * connection's ring read and write plaintext on the same socket.
 *
 * The exports are the catalogue's (native.h): a name the client may not
 * open is answered as one that does not exist, NBD_REP_ERR_UNKNOWN, and
 * NBD_OPT_LIST names only those it may open.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blocksize.h"
#include "clock.h"
#include "log.h"
#include "native.h"
#include "native-proto.h"
#include "sockio.h"
#include "tls.h"

/* The longest option payload kept; a longer one is read, dropped and
 * answered NBD_REP_ERR_TOO_BIG (names are at most 4096 bytes by the
 * protocol). */
#define OPT_MAX 8192

/* One negotiation: its socket, the moment it must be over, and what to
 * do when the client asks to start transmission. */
struct nego {
  int sock;
  uint64_t deadline_ns;
  const struct native_catalog *cat;
  bool tls_on;                  /* STARTTLS done: the socket is kTLS */
  bool tls_told;                /* "TLS required" logged */
  char identity[256];           /* the client's TLS-PSK identity */
};

/* The client's identity for the catalogue: its TLS-PSK identity, or
 * NULL (no TLS, or certificates). */
static const char *
identity (const struct nego *n)
{
  return n->tls_on && n->cat->tls_psk ? n->identity : NULL;
}

/* Make the export called name (len bytes, not terminated) the
 * connection's: 0 with *e, or -ENOENT (no such export for this
 * client). */
static int
select_export (const struct nego *n, const unsigned char *name, uint32_t len,
               const struct native_export **e)
{
  char buf[NATIVE_NAME_MAX + 1];

  /* A longer name, or one with a NUL in it, names no export. */
  if (len > NATIVE_NAME_MAX || memchr (name, 0, len) != NULL)
    return -ENOENT;
  memcpy (buf, name, len);
  buf[len] = 0;
  return n->cat->select (n->cat->arg, buf, identity (n), e);
}

/* Move exactly len bytes in (POLLIN) or out (POLLOUT), within the
 * negotiation's one deadline (not per receive: a client trickling a byte
 * at a time must not hold a thread for ever).  0, -ECONNRESET when the
 * client closed before all came in, or -errno. */
static int
xfer_full (const struct nego *n, char *p, size_t len, short dir)
{
  return sockio_full (n->sock, p, len, dir, n->deadline_ns);
}

/* Read exactly len bytes; 0, -ECONNRESET at end of stream, or -errno. */
static int
read_full (const struct nego *n, void *buf, size_t len)
{
  return xfer_full (n, buf, len, POLLIN);
}

/* Write exactly len bytes; 0 or -errno. */
static int
write_full (const struct nego *n, const void *buf, size_t len)
{
  return xfer_full (n, (char *) buf, len, POLLOUT);
}

/* One option reply: header and len bytes of data. */
static int
reply (const struct nego *n, uint32_t opt, uint32_t type, const void *data,
       uint32_t len)
{
  struct {
    uint64_t magic;
    uint32_t opt, type, len;
  } __attribute__ ((packed)) h = {
    htobe64 (NBD_MAGIC_REP), htobe32 (opt), htobe32 (type), htobe32 (len)
  };
  int r = write_full (n, &h, sizeof h);

  if (r == 0 && len > 0)
    r = write_full (n, data, len);
  return r;
}

/* An error reply carrying a message for the client's log. */
static int
reply_error (const struct nego *n, uint32_t opt, uint32_t type,
             const char *msg)
{
  return reply (n, opt, type, msg, (uint32_t) strlen (msg));
}

/* The NBD_REP_INFO replies GO and INFO send about e, then the ACK. */
static int
send_info (const struct nego *n, uint32_t opt, const struct native_export *e)
{
  struct {
    uint16_t type;
    uint64_t size;
    uint16_t flags;
  } __attribute__ ((packed)) ex = {
    htobe16 (NBD_INFO_EXPORT), htobe64 (e->size), htobe16 (e->flags)
  };
  /* What the plugin advertises too (blocksize.h). */
  struct blocksize b = blocksize_for (e->align);
  struct {
    uint16_t type;
    uint32_t min, pref, max;
  } __attribute__ ((packed)) bs = {
    htobe16 (NBD_INFO_BLOCK_SIZE), htobe32 (b.minimum),
    htobe32 (b.preferred), htobe32 (b.maximum)
  };
  int r = reply (n, opt, NBD_REP_INFO, &ex, sizeof ex);

  if (r == 0)
    r = reply (n, opt, NBD_REP_INFO, &bs, sizeof bs);
  if (r == 0)
    r = reply (n, opt, NBD_REP_ACK, NULL, 0);
  return r;
}

/* NBD_OPT_GO / NBD_OPT_INFO: 1 to start transmission (GO), 0 to go on
 * negotiating, -errno. */
static int
opt_go (const struct nego *n, uint32_t opt, const unsigned char *d,
        uint32_t len)
{
  const struct native_export *e;
  char why[512];
  uint32_t nlen;
  uint16_t nreq;
  int r;

  if (len < 6)
    return reply_error (n, opt, NBD_REP_ERR_INVALID, "option too short");
  memcpy (&nlen, d, 4);
  nlen = be32toh (nlen);
  if (nlen > len - 6)
    return reply_error (n, opt, NBD_REP_ERR_INVALID,
                        "export name longer than the option");
  memcpy (&nreq, d + 4 + nlen, 2);
  nreq = be16toh (nreq);
  if ((uint32_t) nreq * 2 != len - 6 - nlen)
    return reply_error (n, opt, NBD_REP_ERR_INVALID,
                        "information requests do not match the length");
  if (select_export (n, d + 4, nlen, &e) < 0)
    return reply_error (n, opt, NBD_REP_ERR_UNKNOWN,
                        "no such export here");
  /* The connection's ring and buffers exist before the client is told
   * yes: if they cannot, it hears why, not a dropped connection. */
  if (opt == NBD_OPT_GO && (r = n->cat->go (n->cat->arg, why,
                                             sizeof why)) < 0) {
    r = reply_error (n, opt, r == -EBUSY ? NBD_REP_ERR_POLICY
                     : NBD_REP_ERR_UNKNOWN, why);
    return r < 0 ? r : 0;
  }
  /* Whatever was requested, EXPORT and BLOCK_SIZE are what we have. */
  r = send_info (n, opt, e);
  if (r < 0)
    return r;
  return opt == NBD_OPT_GO ? 1 : 0;
}

/* NBD_OPT_EXPORT_NAME: no error reply is possible; a wrong name, or a
 * connection that cannot be set up, ends the connection.  1, or
 * -errno. */
static int
opt_export_name (const struct nego *n, const unsigned char *d, uint32_t len,
                 bool no_zeroes)
{
  const struct native_export *e;
  char why[512];
  int w;
  struct {
    uint64_t size;
    uint16_t flags;
    char zeroes[124];
  } __attribute__ ((packed)) r = { 0, 0, { 0 } };

  if (select_export (n, d, len, &e) < 0) {
    log_info ("native: a client asked for an export it cannot have "
              "(NBD_OPT_EXPORT_NAME): closing it");
    return -ENOENT;
  }
  if ((w = n->cat->go (n->cat->arg, why, sizeof why)) < 0)
    return w == -EBUSY ? w : -EIO;
  r.size = htobe64 (e->size);
  r.flags = htobe16 (e->flags);
  w = write_full (n, &r, no_zeroes ? 10 : sizeof r);
  return w < 0 ? w : 1;
}

/* One NBD_REP_SERVER reply of NBD_OPT_LIST (the catalogue's emit). */
static int
list_one (void *arg, const char *name)
{
  const struct nego *n = arg;
  unsigned char buf[4 + NATIVE_NAME_MAX];
  size_t nl = strlen (name);
  uint32_t be = htobe32 ((uint32_t) nl);

  if (nl > NATIVE_NAME_MAX)    /* refused at start: never here */
    return 0;
  memcpy (buf, &be, 4);
  memcpy (buf + 4, name, nl);
  return reply (n, NBD_OPT_LIST, NBD_REP_SERVER, buf, (uint32_t) (4 + nl));
}

/* NBD_OPT_LIST: the exports this client may open. */
static int
opt_list (struct nego *n, uint32_t len)
{
  int r;

  if (len != 0)
    return reply_error (n, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                        "NBD_OPT_LIST takes no data");
  r = n->cat->list (n->cat->arg, identity (n), list_one, n);
  if (r == 0)
    r = reply (n, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
  return r;
}

/* NBD_OPT_STARTTLS: the TLS handshake on this socket, then its keys to
 * the kernel.  0 to go on negotiating (now in TLS), -errno. */
static int
opt_starttls (struct nego *n, uint32_t len)
{
  struct tls_keys keys;
  char why[512];
  int r;

  if (n->cat->tls == NULL)
    return reply_error (n, NBD_OPT_STARTTLS, NBD_REP_ERR_UNSUP,
                        "TLS is not configured on this server");
  if (n->tls_on)
    return reply_error (n, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID,
                        "TLS is already on");
  if (len != 0)
    return reply_error (n, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID,
                        "NBD_OPT_STARTTLS takes no data");
  r = reply (n, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0);
  if (r < 0)
    return r;
  r = tls_handshake (n->sock, n->cat->tls, n->deadline_ns, NULL, &keys,
                     n->identity, sizeof n->identity, why, sizeof why);
  if (r == 0) {
    r = tls_ktls_install (n->sock, &keys, why, sizeof why);
    tls_keys_wipe (&keys);
  }
  if (r < 0) {
    log_error ("native: TLS with a client failed, closing it: %s", why);
    return r;
  }
  log_info ("native: TLS with client '%s' (%s, records in the kernel)",
            n->identity, keys.cipher);
  n->tls_on = true;
  return 0;
}

/* An option's name for the log. */
static const char *
opt_name (uint32_t opt)
{
  switch (opt) {
  case NBD_OPT_EXPORT_NAME: return "NBD_OPT_EXPORT_NAME";
  case NBD_OPT_LIST: return "NBD_OPT_LIST";
  case NBD_OPT_INFO: return "NBD_OPT_INFO";
  case NBD_OPT_GO: return "NBD_OPT_GO";
  case NBD_OPT_STRUCTURED_REPLY: return "NBD_OPT_STRUCTURED_REPLY";
  default: return "an option";
  }
}

/* An option other than STARTTLS or ABORT before TLS, where TLS is
 * required: refused, and said once per connection. */
static int
tls_required (struct nego *n, uint32_t opt)
{
  if (!n->tls_told)
    log_info ("native: a client asked for %s (%" PRIu32 ") without TLS: "
              "refused (TLS is required: the client must use STARTTLS with "
              "the server's --tls-psk or --tls-certificates credentials)",
              opt_name (opt), opt);
  n->tls_told = true;
  if (opt == NBD_OPT_EXPORT_NAME)      /* no error reply is possible */
    return -EACCES;
  return reply_error (n, opt, NBD_REP_ERR_TLS_REQD,
                      "TLS is required: use STARTTLS");
}

/* One option: 1 to start transmission, 0 to go on, 2 when the client
 * aborted, -errno. */
static int
option (struct nego *n, bool no_zeroes)
{
  struct {
    uint64_t magic;
    uint32_t opt, len;
  } __attribute__ ((packed)) h;
  static __thread unsigned char d[OPT_MAX];
  uint32_t opt, len;
  int r = read_full (n, &h, sizeof h);

  if (r < 0)
    return r;
  if (be64toh (h.magic) != NBD_MAGIC_OPT) {
    log_info ("native: bad option magic from a client: closing it");
    return -EPROTO;
  }
  opt = be32toh (h.opt);
  len = be32toh (h.len);
  if (len > OPT_MAX) {
    /* The protocol's answer; the data is read (within the negotiation's
     * deadline) so that the stream stays in step. */
    r = sockio_skip (n->sock, len, n->deadline_ns);
    if (r < 0)
      return r;
    return reply_error (n, opt, NBD_REP_ERR_TOO_BIG, "option too long");
  }
  r = read_full (n, d, len);
  if (r < 0)
    return r;
  if (n->cat->tls && !n->tls_on && opt != NBD_OPT_STARTTLS &&
      opt != NBD_OPT_ABORT)
    return tls_required (n, opt);
  switch (opt) {
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (n, d, len, no_zeroes);
  case NBD_OPT_ABORT:
    reply (n, opt, NBD_REP_ACK, NULL, 0);       /* it may be gone */
    return 2;
  case NBD_OPT_LIST:
    return opt_list (n, len);
  case NBD_OPT_GO:
  case NBD_OPT_INFO:
    return opt_go (n, opt, d, len);
  case NBD_OPT_STARTTLS:
    return opt_starttls (n, len);
  default:
    return reply_error (n, opt, NBD_REP_ERR_UNSUP,
                        "option not supported by nbdswap");
  }
}

int
native_handshake (int sock, const struct native_catalog *cat)
{
  struct nego n = {
    .sock = sock, .cat = cat,
    .deadline_ns = clock_now_ns ()
      + NATIVE_HANDSHAKE_TIMEOUT * UINT64_C (1000000000),
  };
  struct {
    uint64_t magic, opt;
    uint16_t flags;
  } __attribute__ ((packed)) hello = {
    htobe64 (NBD_MAGIC_INIT), htobe64 (NBD_MAGIC_OPT),
    htobe16 (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
  };
  uint32_t cflags;
  int r = write_full (&n, &hello, sizeof hello);

  if (r == 0)
    r = read_full (&n, &cflags, sizeof cflags);
  if (r < 0)
    return r == -ECONNRESET ? 0 : r;
  cflags = be32toh (cflags);
  if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
      (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
    log_info ("native: client flags 0x%" PRIx32 " refused (fixed newstyle "
              "only): closing it", cflags);
    return -EPROTO;
  }
  do
    r = option (&n, cflags & NBD_FLAG_C_NO_ZEROES);
  while (r == 0);
  if (r == 2 || r == -ECONNRESET)
    return 0;
  if (r == -ETIMEDOUT)
    log_info ("native: a client did not finish negotiating within %d s: "
              "closing it", NATIVE_HANDSHAKE_TIMEOUT);
  return r;
}
