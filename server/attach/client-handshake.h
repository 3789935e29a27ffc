/* nbdswap: the NBD handshake for the kernel client.
 *
 * libnbd negotiates (fixed newstyle, NBD_OPT_GO with the export name;
 * no structured replies, no meta contexts: the kernel speaks only simple
 * replies; with TLS, client-starttls.c negotiates instead, since the
 * kernel can only use a kTLS session), then we keep a duplicate of its
 * socket and close the handle.  nbd_close closes its descriptor without
 * sending NBD_CMD_DISC (only nbd_shutdown sends one), so our duplicate is
 * a connection in the transmission phase, ready for the kernel.
 */
#ifndef NBDSWAP_NBD_HANDSHAKE_H
#define NBDSWAP_NBD_HANDSHAKE_H

#include <stdbool.h>
#include <stdint.h>

/* Where the server is: a unix socket path, or a TCP host and port. */
struct tls_creds;
struct nbd_target {
  const char *unix_path;        /* non-NULL: a unix socket */
  char host[256];
  char port[16];
  const char *export_name;      /* "" by default */
  const struct tls_creds *tls;  /* non-NULL: TLS (kTLS), TCP only */
  int netns_fd;                 /* >= 0: connect from this network
                                   namespace (attach --netns) ... */
  int home_netns_fd;            /* ... then return to this one */
};

/* What the server said about the export. */
struct nbd_export {
  uint64_t size;
  uint64_t flags;               /* transmission flags, NBD_FLAG_* */
  bool multi_conn;
  uint32_t max_block;           /* the largest request it takes, 0:
                                   not said (the TLS handshake does
                                   not ask) */
};

/* Parses SOCKET|HOST[:PORT]|[V6ADDR][:PORT] (no namespace: netns_fd
 * -1); -EINVAL if malformed. */
extern int nbd_target_parse (const char *arg, struct nbd_target *t);

/* Connects and negotiates; returns a blocking socket descriptor in the
 * transmission phase, or -errno with a libnbd message in err (of errlen
 * bytes).  -ECONNREFUSED/-ENOENT/-ETIMEDOUT...: the server is not there.
 * With t->netns_fd, the socket is made in that network namespace and
 * the calling thread is back in t->home_netns_fd on return. */
extern int nbd_handshake (const struct nbd_target *t, struct nbd_export *e,
                          char *err, size_t errlen);

/* The same with TLS (t->tls), negotiated by us, not libnbd
 * (client-starttls.c): the socket returned has the session's keys in
 * the kernel (kTLS), so the kernel's nbd client can use it. */
extern int nbd_handshake_tls (const struct nbd_target *t,
                              struct nbd_export *e, char *err, size_t errlen);

#endif /* NBDSWAP_NBD_HANDSHAKE_H */
