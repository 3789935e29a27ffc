/* nbdswap native server: the fixed newstyle negotiation, server side,
 * on the connection's blocking socket before its ring takes over.
 *
 * Offered: NBD_OPT_GO and NBD_OPT_INFO (NBD_INFO_EXPORT and
 * NBD_INFO_BLOCK_SIZE), NBD_OPT_EXPORT_NAME, NBD_OPT_LIST, NBD_OPT_ABORT.
 * Everything else, NBD_OPT_STRUCTURED_REPLY and NBD_OPT_STARTTLS
 * included, gets NBD_REP_ERR_UNSUP: the kernel client speaks only simple
 * replies and no TLS.
 */
#include <config.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "native.h"
#include "native-proto.h"

/* The longest option payload read; a longer one ends the negotiation
 * (names are at most 4096 bytes by the protocol). */
#define OPT_MAX 8192

/* Read exactly n bytes; 0, -ECONNRESET at end of stream, or -errno. */
static int
read_full (int sock, void *buf, size_t n)
{
  char *p = buf;

  while (n > 0) {
    ssize_t r = recv (sock, p, n, 0);

    if (r == 0)
      return -ECONNRESET;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    n -= (size_t) r;
  }
  return 0;
}

/* Write exactly n bytes; 0 or -errno. */
static int
write_full (int sock, const void *buf, size_t n)
{
  const char *p = buf;

  while (n > 0) {
    ssize_t r = send (sock, p, n, MSG_NOSIGNAL);

    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    n -= (size_t) r;
  }
  return 0;
}

/* One option reply: header and len bytes of data. */
static int
reply (int sock, uint32_t opt, uint32_t type, const void *data,
       uint32_t len)
{
  struct {
    uint64_t magic;
    uint32_t opt, type, len;
  } __attribute__ ((packed)) h = {
    htobe64 (NBD_MAGIC_REP), htobe32 (opt), htobe32 (type), htobe32 (len)
  };
  int r = write_full (sock, &h, sizeof h);

  if (r == 0 && len > 0)
    r = write_full (sock, data, len);
  return r;
}

/* An error reply carrying a message for the client's log. */
static int
reply_error (int sock, uint32_t opt, uint32_t type, const char *msg)
{
  return reply (sock, opt, type, msg, (uint32_t) strlen (msg));
}

/* The NBD_REP_INFO replies GO and INFO send, then the ACK. */
static int
send_info (int sock, uint32_t opt, const struct native_export *e)
{
  struct {
    uint16_t type;
    uint64_t size;
    uint16_t flags;
  } __attribute__ ((packed)) ex = {
    htobe16 (NBD_INFO_EXPORT), htobe64 (e->size), htobe16 (e->flags)
  };
  /* The minimum is the O_DIRECT alignment (smaller requests work, through
   * read-modify-write, but cost a read); preferred a swap page. */
  uint32_t min = e->align < 512 ? 512 : e->align;
  struct {
    uint16_t type;
    uint32_t min, pref, max;
  } __attribute__ ((packed)) bs = {
    htobe16 (NBD_INFO_BLOCK_SIZE), htobe32 (min),
    htobe32 (min > 4096 ? min : 4096), htobe32 (NATIVE_MAX_REQUEST)
  };
  int r = reply (sock, opt, NBD_REP_INFO, &ex, sizeof ex);

  if (r == 0)
    r = reply (sock, opt, NBD_REP_INFO, &bs, sizeof bs);
  if (r == 0)
    r = reply (sock, opt, NBD_REP_ACK, NULL, 0);
  return r;
}

/* NBD_OPT_GO / NBD_OPT_INFO: 1 to start transmission (GO), 0 to go on
 * negotiating, -errno. */
static int
opt_go (int sock, uint32_t opt, const unsigned char *d, uint32_t len,
        const struct native_export *e)
{
  uint32_t nlen;
  uint16_t nreq;
  int r;

  if (len < 6)
    return reply_error (sock, opt, NBD_REP_ERR_INVALID, "option too short");
  memcpy (&nlen, d, 4);
  nlen = be32toh (nlen);
  if (nlen > len - 6)
    return reply_error (sock, opt, NBD_REP_ERR_INVALID,
                        "export name longer than the option");
  memcpy (&nreq, d + 4 + nlen, 2);
  nreq = be16toh (nreq);
  if ((uint32_t) nreq * 2 != len - 6 - nlen)
    return reply_error (sock, opt, NBD_REP_ERR_INVALID,
                        "information requests do not match the length");
  if (nlen != strlen (e->name) || memcmp (d + 4, e->name, nlen) != 0)
    return reply_error (sock, opt, NBD_REP_ERR_UNKNOWN,
                        "no such export here");
  /* Whatever was requested, EXPORT and BLOCK_SIZE are what we have. */
  r = send_info (sock, opt, e);
  if (r < 0)
    return r;
  return opt == NBD_OPT_GO ? 1 : 0;
}

/* NBD_OPT_EXPORT_NAME: no error reply is possible; a wrong name ends the
 * connection.  1, or -errno. */
static int
opt_export_name (int sock, const unsigned char *d, uint32_t len,
                 const struct native_export *e, bool no_zeroes)
{
  struct {
    uint64_t size;
    uint16_t flags;
    char zeroes[124];
  } __attribute__ ((packed)) r = { htobe64 (e->size), htobe16 (e->flags),
                                   { 0 } };

  if (len != strlen (e->name) || memcmp (d, e->name, len) != 0) {
    log_info ("native: a client asked for an unknown export "
              "(NBD_OPT_EXPORT_NAME): closing it");
    return -ENOENT;
  }
  int w = write_full (sock, &r, no_zeroes ? 10 : sizeof r);
  return w < 0 ? w : 1;
}

/* NBD_OPT_LIST: our one export. */
static int
opt_list (int sock, uint32_t len, const struct native_export *e)
{
  unsigned char buf[4 + 4096];
  uint32_t n = (uint32_t) strlen (e->name);
  uint32_t be = htobe32 (n);
  int r;

  if (len != 0)
    return reply_error (sock, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                        "NBD_OPT_LIST takes no data");
  memcpy (buf, &be, 4);
  memcpy (buf + 4, e->name, n);
  r = reply (sock, NBD_OPT_LIST, NBD_REP_SERVER, buf, 4 + n);
  if (r == 0)
    r = reply (sock, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
  return r;
}

/* One option: 1 to start transmission, 0 to go on, 2 when the client
 * aborted, -errno. */
static int
option (int sock, const struct native_export *e, bool no_zeroes)
{
  struct {
    uint64_t magic;
    uint32_t opt, len;
  } __attribute__ ((packed)) h;
  static __thread unsigned char d[OPT_MAX];
  uint32_t opt, len;
  int r = read_full (sock, &h, sizeof h);

  if (r < 0)
    return r;
  if (be64toh (h.magic) != NBD_MAGIC_OPT) {
    log_info ("native: bad option magic from a client: closing it");
    return -EPROTO;
  }
  opt = be32toh (h.opt);
  len = be32toh (h.len);
  if (len > OPT_MAX) {
    log_info ("native: option %" PRIu32 " of %" PRIu32 " bytes is too "
              "long: closing the client", opt, len);
    return -EPROTO;
  }
  r = read_full (sock, d, len);
  if (r < 0)
    return r;
  switch (opt) {
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (sock, d, len, e, no_zeroes);
  case NBD_OPT_ABORT:
    reply (sock, opt, NBD_REP_ACK, NULL, 0);    /* it may be gone */
    return 2;
  case NBD_OPT_LIST:
    return opt_list (sock, len, e);
  case NBD_OPT_GO:
  case NBD_OPT_INFO:
    return opt_go (sock, opt, d, len, e);
  case NBD_OPT_STARTTLS:
    return reply_error (sock, opt, NBD_REP_ERR_UNSUP,
                        "no TLS: the kernel's nbd client cannot use it");
  default:
    return reply_error (sock, opt, NBD_REP_ERR_UNSUP,
                        "option not supported by nbdswap");
  }
}

int
native_handshake (int sock, const struct native_export *e)
{
  struct {
    uint64_t magic, opt;
    uint16_t flags;
  } __attribute__ ((packed)) hello = {
    htobe64 (NBD_MAGIC_INIT), htobe64 (NBD_MAGIC_OPT),
    htobe16 (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
  };
  uint32_t cflags;
  int r = write_full (sock, &hello, sizeof hello);

  if (r == 0)
    r = read_full (sock, &cflags, sizeof cflags);
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
    r = option (sock, e, cflags & NBD_FLAG_C_NO_ZEROES);
  while (r == 0);
  if (r == 2 || r == -ECONNRESET)
    return 0;
  return r;
}
