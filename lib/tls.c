/* nbdswap: TLS handshakes with GnuTLS, records in the kernel (kTLS).
 * See include/tls.h for the design and its reasons.
 */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "clock.h"
#include "sockio.h"
#include "tls.h"

/* Versions and ciphers kTLS can take over; no ticket, no rekey (see
 * tls.h).  The PSK key exchanges follow nbdkit's and qemu's choice, so
 * that their clients agree with us. */
#define PRIORITY_BASE "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
  "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305"
#define PRIORITY_PSK ":+ECDHE-PSK:+DHE-PSK:+PSK"

/* TLS record content types (RFC 8446, 5.1). */
#define RECORD_ALERT 21
#define RECORD_HANDSHAKE 22

struct tls_creds {
  enum tls_kind kind;
  enum tls_role role;
  char *path;
  bool verify_peer;
  gnutls_psk_server_credentials_t psk_server;
  gnutls_psk_client_credentials_t psk_client;
  gnutls_certificate_credentials_t x509;
  gnutls_priority_t priority;
};

/* One handshake's state, reachable from GnuTLS's callbacks through the
 * session pointer. */
struct hs {
  int sock;
  uint64_t deadline_ns;
  const struct tls_creds *c;
  const char *server_name;      /* a client's: the name to check */
  char identity[128];           /* the PSK identity the client offered */
  bool identity_known;          /* ... and whether the file has it */
  bool identity_asked;
};

/* Copy the identity into the handshake state for the messages. */
static void
hs_note_identity (struct hs *h, const char *name, bool known)
{
  snprintf (h->identity, sizeof h->identity, "%s", name);
  h->identity_known = known;
  h->identity_asked = true;
}

/* Find identity's line in a psktool file and decode its key into key
 * (gnutls_malloc'd).  1 found, 0 not there, -errno. */
static int
psk_lookup (const char *path, const char *identity, char *found,
            size_t foundlen, gnutls_datum_t *key)
{
  FILE *f = fopen (path, "re");
  char *line = NULL;
  size_t cap = 0;
  int r = 0;

  if (f == NULL)
    return -errno;
  while (r == 0 && getline (&line, &cap, f) > 0) {
    char *colon = strchr (line, ':');
    gnutls_datum_t hex;

    if (colon == NULL || line[0] == '#')
      continue;
    *colon = '\0';
    if (identity && strcmp (line, identity) != 0)
      continue;
    if (found)
      snprintf (found, foundlen, "%s", line);
    hex.data = (unsigned char *) colon + 1;
    hex.size = (unsigned) strcspn (colon + 1, "\r\n");
    r = gnutls_hex_decode2 (&hex, key) == 0 ? 1 : -EINVAL;
  }
  free (line);
  fclose (f);
  return r;
}

/* GnuTLS asks the server for the key of the identity a client names:
 * read from the file each time, so that keys can change without a
 * restart. */
static int
psk_server_key (gnutls_session_t s, const char *identity, gnutls_datum_t *key)
{
  struct hs *h = gnutls_session_get_ptr (s);
  int r = psk_lookup (h->c->path, identity, NULL, 0, key);

  hs_note_identity (h, identity, r == 1);
  return r == 1 ? 0 : -1;
}

/* The priority string for this kind of credentials, compiled. */
static int
creds_priority (struct tls_creds *c, char *why, size_t whylen)
{
  char prio[256];
  const char *err = NULL;
  int r;

  snprintf (prio, sizeof prio, "%s%s", PRIORITY_BASE,
            c->kind == TLS_PSK ? PRIORITY_PSK : "");
  r = gnutls_priority_init (&c->priority, prio, &err);
  if (r < 0) {
    snprintf (why, whylen, "GnuTLS refuses the priority string at '%s': %s",
              err ? err : "?", gnutls_strerror (r));
    return -EINVAL;
  }
  return 0;
}

/* PSK credentials: the file must be readable and hold at least one key
 * (and, for a client, the identity asked for). */
static int
creds_psk (struct tls_creds *c, const char *identity, char *why,
           size_t whylen)
{
  char name[128];
  gnutls_datum_t key = { NULL, 0 };
  int r = psk_lookup (c->path, c->role == TLS_CLIENT ? identity : NULL,
                      name, sizeof name, &key);

  if (r < 0) {
    snprintf (why, whylen, "%s: %s: make it with 'psktool -u NAME -p %s'",
              c->path, r == -EINVAL ? "a key is not hexadecimal"
              : strerror (-r), c->path);
    return r;
  }
  if (r == 0) {
    snprintf (why, whylen, identity && c->role == TLS_CLIENT
              ? "%s: no key for the identity '%s': add one with "
              "'psktool -u %s -p %s'" : "%s: no 'identity:key' line%s: "
              "add one with 'psktool -u NAME -p %s'", c->path,
              identity ? identity : "", identity ? identity : "", c->path);
    return -ENOENT;
  }
  if (c->role == TLS_SERVER) {
    gnutls_free (key.data);
    r = gnutls_psk_allocate_server_credentials (&c->psk_server);
    if (r == 0) {
      gnutls_psk_set_server_credentials_function (c->psk_server,
                                                  psk_server_key);
      r = gnutls_psk_set_server_known_dh_params (c->psk_server,
                                                 GNUTLS_SEC_PARAM_MEDIUM);
    }
  }
  else {
    r = gnutls_psk_allocate_client_credentials (&c->psk_client);
    if (r == 0)
      r = gnutls_psk_set_client_credentials (c->psk_client, name, &key,
                                             GNUTLS_PSK_KEY_RAW);
    gnutls_memset (key.data, 0, key.size);
    gnutls_free (key.data);
  }
  if (r < 0) {
    snprintf (why, whylen, "%s: %s", c->path, gnutls_strerror (r));
    return -EINVAL;
  }
  return 0;
}

/* One PEM file of an X.509 directory: its path, and whether it exists. */
static bool
x509_file (const struct tls_creds *c, const char *name, char *out,
           size_t outlen)
{
  snprintf (out, outlen, "%s/%s", c->path, name);
  return access (out, R_OK) == 0;
}

/* X.509 credentials from the directory's PEM files. */
static int
creds_x509 (struct tls_creds *c, char *why, size_t whylen)
{
  const char *me = c->role == TLS_SERVER ? "server" : "client";
  char ca[4096], cert[4096], key[4096], cname[32], kname[32];
  bool need_ca = c->role == TLS_CLIENT || c->verify_peer;
  int r = gnutls_certificate_allocate_credentials (&c->x509);

  snprintf (cname, sizeof cname, "%s-cert.pem", me);
  snprintf (kname, sizeof kname, "%s-key.pem", me);
  if (r < 0) {
    snprintf (why, whylen, "%s: %s", c->path, gnutls_strerror (r));
    return -ENOMEM;
  }
  if (!x509_file (c, "ca-cert.pem", ca, sizeof ca)) {
    if (need_ca) {
      snprintf (why, whylen, "%s: missing: the CA certificate that signs "
                "the %s's certificate must be there", ca,
                c->role == TLS_SERVER ? "client" : "server");
      return -ENOENT;
    }
  }
  else {
    r = gnutls_certificate_set_x509_trust_file (c->x509, ca,
                                                GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
      snprintf (why, whylen, "%s: %s", ca, r < 0 ? gnutls_strerror (r)
                : "no certificate in it");
      return -EINVAL;
    }
  }
  /* A client's own certificate is optional; a server's is not. */
  if (x509_file (c, cname, cert, sizeof cert) || c->role == TLS_SERVER) {
    x509_file (c, kname, key, sizeof key);
    r = gnutls_certificate_set_x509_key_file (c->x509, cert, key,
                                              GNUTLS_X509_FMT_PEM);
    if (r < 0) {
      snprintf (why, whylen, "%s with %s: %s: make them with certtool "
                "(see docs/remote-swap.md)", cert, key, gnutls_strerror (r));
      return -ENOENT;
    }
  }
  return 0;
}

int
tls_creds_load (struct tls_creds **out, enum tls_kind kind,
                enum tls_role role, const char *path, const char *identity,
                bool verify_peer, char *why, size_t whylen)
{
  struct tls_creds *c = calloc (1, sizeof *c);
  int r;

  *out = NULL;
  if (c == NULL || (c->path = strdup (path)) == NULL) {
    free (c);
    snprintf (why, whylen, "out of memory");
    return -ENOMEM;
  }
  c->kind = kind;
  c->role = role;
  c->verify_peer = verify_peer;
  r = kind == TLS_PSK ? creds_psk (c, identity, why, whylen)
    : creds_x509 (c, why, whylen);
  if (r == 0)
    r = creds_priority (c, why, whylen);
  if (r < 0) {
    tls_creds_free (c);
    return r;
  }
  *out = c;
  return 0;
}

void
tls_creds_free (struct tls_creds *c)
{
  if (c == NULL)
    return;
  if (c->psk_server)
    gnutls_psk_free_server_credentials (c->psk_server);
  if (c->psk_client)
    gnutls_psk_free_client_credentials (c->psk_client);
  if (c->x509)
    gnutls_certificate_free_credentials (c->x509);
  if (c->priority)
    gnutls_priority_deinit (c->priority);
  free (c->path);
  free (c);
}

/* GnuTLS's transport: never block (the handshake loop waits, within the
 * deadline), and say why to GnuTLS through its errno. */
static ssize_t
hs_pull (gnutls_transport_ptr_t p, void *buf, size_t len)
{
  gnutls_session_t s = p;
  struct hs *h = gnutls_session_get_ptr (s);
  ssize_t r = recv (h->sock, buf, len, MSG_DONTWAIT);

  if (r < 0)
    gnutls_transport_set_errno (s, errno);
  return r;
}

static ssize_t
hs_push (gnutls_transport_ptr_t p, const void *buf, size_t len)
{
  gnutls_session_t s = p;
  struct hs *h = gnutls_session_get_ptr (s);
  ssize_t r = send (h->sock, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

  if (r < 0)
    gnutls_transport_set_errno (s, errno);
  return r;
}

/* Wait until the session can go on, within the deadline. */
static int
hs_wait (gnutls_session_t s, const struct hs *h)
{
  return sockio_wait (h->sock, gnutls_record_get_direction (s) ? POLLOUT
                      : POLLIN, h->deadline_ns);
}

/* A session for the credentials, its transport our non-blocking one. */
static int
hs_session (gnutls_session_t *s, struct hs *h, char *why, size_t whylen)
{
  const struct tls_creds *c = h->c;
  unsigned flags = (c->role == TLS_SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT)
    | GNUTLS_NO_TICKETS | GNUTLS_NO_AUTO_REKEY | GNUTLS_NONBLOCK;
  int r = gnutls_init (s, flags);

  if (r == 0)
    r = gnutls_priority_set (*s, c->priority);
  if (r == 0 && c->kind == TLS_PSK)
    r = gnutls_credentials_set (*s, GNUTLS_CRD_PSK, c->role == TLS_SERVER
                                ? (void *) c->psk_server
                                : (void *) c->psk_client);
  if (r == 0 && c->kind == TLS_X509)
    r = gnutls_credentials_set (*s, GNUTLS_CRD_CERTIFICATE, c->x509);
  if (r < 0) {
    snprintf (why, whylen, "TLS session set-up: %s", gnutls_strerror (r));
    return -ENOMEM;
  }
  if (c->kind == TLS_X509 && (c->role == TLS_CLIENT || c->verify_peer)) {
    if (c->role == TLS_SERVER)
      gnutls_certificate_server_set_request (*s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert (*s, c->role == TLS_CLIENT
                                    ? h->server_name : NULL, 0);
  }
  gnutls_session_set_ptr (*s, h);
  gnutls_transport_set_ptr (*s, *s);
  gnutls_transport_set_pull_function (*s, hs_pull);
  gnutls_transport_set_push_function (*s, hs_push);
  return 0;
}

/* A failed handshake, said for the operator: which credential was wrong
 * where we can tell. */
static int
hs_failed (gnutls_session_t s, const struct hs *h, int r, char *why,
           size_t whylen)
{
  const struct tls_creds *c = h->c;
  bool server = c->role == TLS_SERVER;

  if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR
      || r == GNUTLS_E_PUSH_ERROR) {
    snprintf (why, whylen, "the %s closed the connection during the TLS "
              "handshake (it did not accept our credentials?)",
              server ? "client" : "server");
    return -ECONNRESET;
  }
  if (server && c->kind == TLS_PSK && h->identity_asked && !h->identity_known) {
    snprintf (why, whylen, "unknown PSK identity '%s': it has no key in %s "
              "(add it with 'psktool -u %s -p %s')", h->identity, c->path,
              h->identity, c->path);
    return -EACCES;
  }
  if (server && c->kind == TLS_PSK && h->identity_asked) {
    snprintf (why, whylen, "the client's key for PSK identity '%s' is not "
              "the one in %s (%s)", h->identity, c->path, gnutls_strerror (r));
    return -EACCES;
  }
  if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    snprintf (why, whylen, "the %s refused the TLS handshake: alert '%s'",
              server ? "client" : "server",
              gnutls_alert_get_name (gnutls_alert_get (s)));
    return -EACCES;
  }
  if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR && !server
      && (gnutls_session_get_verify_cert_status (s)
          & GNUTLS_CERT_UNEXPECTED_OWNER)) {
    snprintf (why, whylen, "the server's certificate is not for '%s' (give "
              "attach the name the certificate has, or make one for this "
              "name)", h->server_name ? h->server_name : "?");
    return -EACCES;
  }
  if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR
      || r == GNUTLS_E_CERTIFICATE_ERROR || r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
    snprintf (why, whylen, "the %s's certificate is not trusted by %s/"
              "ca-cert.pem (%s)", server ? "client" : "server", c->path,
              gnutls_strerror (r));
    return -EACCES;
  }
  snprintf (why, whylen, "TLS handshake: %s", gnutls_strerror (r));
  return -EPROTO;
}

/* The peer's name for the log: its PSK identity or its certificate's
 * distinguished name. */
static void
hs_peer (gnutls_session_t s, const struct hs *h, char *peer, size_t peerlen)
{
  const gnutls_datum_t *certs;
  unsigned n = 0;
  gnutls_x509_crt_t crt;
  gnutls_datum_t dn;

  snprintf (peer, peerlen, "%s", h->c->kind == TLS_PSK ? "" : "anonymous");
  if (h->c->kind == TLS_PSK) {
    gnutls_datum_t u = { NULL, 0 };

    /* The identity decides which exports the client may open: one with
     * a NUL in it, or too long to keep whole, is no identity at all
     * (empty), never a shortened one. */
    if (h->c->role == TLS_SERVER
        && gnutls_psk_server_get_username2 (s, &u) == 0 && u.data != NULL
        && u.size < peerlen && memchr (u.data, '\0', u.size) == NULL) {
      memcpy (peer, u.data, u.size);
      peer[u.size] = '\0';
    }
    return;
  }
  certs = gnutls_certificate_get_peers (s, &n);
  if (n == 0 || gnutls_x509_crt_init (&crt) < 0)
    return;
  if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0
      && gnutls_x509_crt_get_dn3 (crt, &dn, 0) == 0) {
    snprintf (peer, peerlen, "%.*s", (int) dn.size, dn.data);
    gnutls_free (dn.data);
  }
  gnutls_x509_crt_deinit (crt);
}

/* One direction's key material into kTLS's fields.  TLS 1.3 (and
 * ChaCha20 in 1.2: whole_iv) build each nonce from the whole static IV;
 * TLS 1.2 AES-GCM sends an explicit part that starts at the sequence
 * number. */
static int
fill_direction (unsigned char *k, size_t kn, unsigned char *salt, size_t sn,
                unsigned char *ivp, size_t ivn, unsigned char *rec_seq,
                bool whole_iv, const gnutls_datum_t *key,
                const gnutls_datum_t *iv, const unsigned char seq[8])
{
  if (key->size != kn || iv->size < sn
      || (whole_iv && iv->size != sn + ivn) || (!whole_iv && ivn != 8))
    return -EPROTO;
  memcpy (k, key->data, kn);
  memcpy (salt, iv->data, sn);
  memcpy (ivp, whole_iv ? iv->data + sn : seq, ivn);
  memcpy (rec_seq, seq, 8);
  return 0;
}

/* One direction's keys (read: what we receive), as kTLS wants them. */
static int
hs_direction (gnutls_session_t s, unsigned read, union tls_keys_dir *d,
              socklen_t *len)
{
  gnutls_datum_t mac, iv, key;
  unsigned char seq[8];
  bool v13 = gnutls_protocol_get_version (s) == GNUTLS_TLS1_3;
  int r = gnutls_record_get_state (s, read, &mac, &iv, &key, seq);

  if (r < 0)
    return -EPROTO;
  memset (d, 0, sizeof *d);
  d->info.version = v13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
  /* Each of kTLS's structures has the same four fields. */
#define DIRECTION(f, whole)                                               \
  (*len = sizeof (f), fill_direction ((f).key, sizeof (f).key, (f).salt,  \
                                      sizeof (f).salt, (f).iv,            \
                                      sizeof (f).iv, (f).rec_seq, (whole),\
                                      &key, &iv, seq))
  switch (gnutls_cipher_get (s)) {
  case GNUTLS_CIPHER_AES_128_GCM:
    d->info.cipher_type = TLS_CIPHER_AES_GCM_128;
    return DIRECTION (d->gcm128, v13);
  case GNUTLS_CIPHER_AES_256_GCM:
    d->info.cipher_type = TLS_CIPHER_AES_GCM_256;
    return DIRECTION (d->gcm256, v13);
  case GNUTLS_CIPHER_CHACHA20_POLY1305:
    d->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    return DIRECTION (d->chacha, true);
#undef DIRECTION
  default:
    return -EPROTO;
  }
}

/* The finished session's keys both ways, checked for what kTLS needs. */
static int
hs_keys (gnutls_session_t s, struct tls_keys *keys, char *why, size_t whylen)
{
  const char *cipher = gnutls_cipher_get_name (gnutls_cipher_get (s));
  const char *version = gnutls_protocol_get_name
    (gnutls_protocol_get_version (s));

  snprintf (keys->cipher, sizeof keys->cipher, "%s %s",
            version ? version : "?", cipher ? cipher : "?");
  /* The client may not have sent anything after its Finished yet: had
   * it, GnuTLS would hold bytes the kernel never sees. */
  if (gnutls_record_check_pending (s) > 0) {
    snprintf (why, whylen, "the peer sent data before the TLS handshake "
              "was over: cannot hand the session to the kernel");
    return -EPROTO;
  }
  if (hs_direction (s, 0, &keys->tx, &keys->len) < 0
      || hs_direction (s, 1, &keys->rx, &keys->len) < 0) {
    tls_keys_wipe (keys);
    snprintf (why, whylen, "%s: not a cipher kTLS can take", keys->cipher);
    return -EPROTO;
  }
  return 0;
}

int
tls_handshake (int sock, const struct tls_creds *c, uint64_t deadline_ns,
               const char *server_name, struct tls_keys *keys, char *peer,
               size_t peerlen, char *why, size_t whylen)
{
  struct hs h = { .sock = sock, .deadline_ns = deadline_ns, .c = c,
                  .server_name = server_name };
  gnutls_session_t s;
  int r = hs_session (&s, &h, why, whylen);

  if (r < 0)
    return r;
  do {
    r = gnutls_handshake (s);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
      int w = hs_wait (s, &h);

      if (w < 0) {
        snprintf (why, whylen, w == -ETIMEDOUT
                  ? "the TLS handshake did not finish in time"
                  : "poll: %s", strerror (-w));
        gnutls_deinit (s);
        return w;
      }
    }
  } while (r < 0 && !gnutls_error_is_fatal (r));
  if (r < 0)
    r = hs_failed (s, &h, r, why, whylen);
  else {
    hs_peer (s, &h, peer, peerlen);
    r = hs_keys (s, keys, why, whylen);
  }
  /* No gnutls_bye: the session lives on in the kernel. */
  gnutls_deinit (s);
  return r;
}

int
tls_ktls_install (int sock, const struct tls_keys *keys, char *why,
                  size_t whylen)
{
  if (setsockopt (sock, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == -1) {
    int e = errno;

    if (e == ENOENT)
      snprintf (why, whylen, "this kernel has no kTLS (TLS in the kernel): "
                "load it with 'modprobe tls' (kernel option CONFIG_TLS)");
    else
      snprintf (why, whylen, "setsockopt (TCP_ULP, \"tls\"): %s%s",
                strerror (e), e == EOPNOTSUPP || e == ENOTCONN
                ? ": kTLS needs a connected TCP socket" : "");
    return -e;
  }
  if (setsockopt (sock, SOL_TLS, TLS_TX, &keys->tx, keys->len) == -1
      || setsockopt (sock, SOL_TLS, TLS_RX, &keys->rx, keys->len) == -1) {
    int e = errno;

    snprintf (why, whylen, "kTLS refuses the session's keys (%s): %s: "
              "this kernel's kTLS lacks that cipher or version", keys->cipher,
              strerror (e));
    return -e;
  }
  return 0;
}

int
tls_ktls_probe (char *why, size_t whylen)
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;
  int l = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int c = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int s = -1, r = 0;

  if (l >= 0 && c >= 0 && bind (l, (struct sockaddr *) &a, sizeof a) == 0
      && listen (l, 1) == 0
      && getsockname (l, (struct sockaddr *) &a, &alen) == 0
      && connect (c, (struct sockaddr *) &a, sizeof a) == 0
      && (s = accept4 (l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
    if (setsockopt (s, SOL_TCP, TCP_ULP, "tls", sizeof "tls") == -1) {
      r = -errno;
      snprintf (why, whylen, r == -ENOENT
                ? "this kernel has no kTLS (TLS in the kernel): load it "
                "with 'modprobe tls' (kernel option CONFIG_TLS)"
                : "setsockopt (TCP_ULP, \"tls\") on a loopback connection: "
                "%s", strerror (-r));
    }
  }
  /* No loopback connection here (no lo, no IPv4): the handshake will
   * tell, connection by connection. */
  if (s >= 0)
    close (s);
  if (c >= 0)
    close (c);
  if (l >= 0)
    close (l);
  return r;
}

void
tls_keys_wipe (struct tls_keys *keys)
{
  explicit_bzero (&keys->tx, sizeof keys->tx);
  explicit_bzero (&keys->rx, sizeof keys->rx);
}

int
tls_ktls_read_control (int sock, char *what, size_t whatlen)
{
  static __thread unsigned char buf[16384];
  char cbuf[CMSG_SPACE (sizeof (unsigned char))];
  struct iovec iov = { buf, sizeof buf };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm;
  unsigned type = 0;
  ssize_t n = recvmsg (sock, &m, MSG_DONTWAIT);

  if (n < 0) {
    snprintf (what, whatlen, "%s%s", strerror (errno), errno == EBADMSG
              ? " (a record failed authentication: changed on the wire)"
              : "");
    return -errno;
  }
  for (cm = CMSG_FIRSTHDR (&m); cm; cm = CMSG_NXTHDR (&m, cm))
    if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
      type = *CMSG_DATA (cm);
  if (type == RECORD_ALERT && n >= 2) {
    snprintf (what, whatlen, "TLS alert '%s'",
              gnutls_alert_get_name ((gnutls_alert_description_t) buf[1]));
    return buf[1] == GNUTLS_A_CLOSE_NOTIFY;
  }
  snprintf (what, whatlen, "a TLS record of type %u (%s) that kTLS cannot "
            "follow", type, type == RECORD_HANDSHAKE
            ? "a key update or session ticket" : "not data");
  return 0;
}

void
tls_ktls_close_notify (int sock)
{
  unsigned char alert[2] = { GNUTLS_AL_WARNING, GNUTLS_A_CLOSE_NOTIFY };
  char cbuf[CMSG_SPACE (sizeof (unsigned char))];
  struct iovec iov = { alert, sizeof alert };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
                      .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *cm = CMSG_FIRSTHDR (&m);

  cm->cmsg_level = SOL_TLS;
  cm->cmsg_type = TLS_SET_RECORD_TYPE;
  cm->cmsg_len = CMSG_LEN (sizeof (unsigned char));
  *CMSG_DATA (cm) = RECORD_ALERT;
  m.msg_controllen = cm->cmsg_len;
  (void) sendmsg (sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
}
