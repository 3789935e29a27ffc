/* nbdswap: TLS for NBD connections, with the record layer in the kernel
 * (kTLS).
 *
 * GnuTLS does the handshake in user space; the session's traffic keys
 * are then installed on the TCP socket (TCP_ULP "tls", SOL_TLS TLS_TX
 * and TLS_RX) and the socket carries plaintext for its owner from then
 * on: the native server's io_uring receives and sends stay as they are,
 * and (issue 14) the kernel's nbd client can be handed such a socket.
 *
 * Because nothing in user space sees the records after the switch, the
 * session must never need it: no TLS 1.3 session tickets and no key
 * updates (the kernel's nbd client reads with no room for a control
 * message, and Linux 6.1's kTLS cannot rekey), and only ciphers kTLS has
 * (AES-GCM-128/256, ChaCha20-Poly1305; TLS 1.2 or 1.3).
 *
 * Credentials are read the way nbdkit and qemu read them, so one set of
 * files serves every front end:
 *   PSK:   a file of "identity:hexkey" lines (psktool -u NAME -p FILE);
 *   X.509: a directory holding ca-cert.pem, server-cert.pem and
 *          server-key.pem (client-cert.pem, client-key.pem on a client).
 */
#ifndef NBDSWAP_TLS_H
#define NBDSWAP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <linux/tls.h>

enum tls_kind { TLS_PSK, TLS_X509 };
enum tls_role { TLS_SERVER, TLS_CLIENT };

/* Loaded credentials: read-only once loaded, shared by all connections. */
struct tls_creds;

/* The keys of one direction, in the form setsockopt (SOL_TLS) takes. */
union tls_keys_dir {
  struct tls_crypto_info info;
  struct tls12_crypto_info_aes_gcm_128 gcm128;
  struct tls12_crypto_info_aes_gcm_256 gcm256;
  struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* What a finished handshake hands over to the kernel. */
struct tls_keys {
  union tls_keys_dir tx, rx;
  socklen_t len;                        /* of each */
  char cipher[64];                      /* for the log: "TLS1.3 AES-256-GCM" */
};

/* Load credentials of kind from path for role.  For a client with PSK,
 * identity chooses the line of the file (NULL: the first).  For a server
 * with X.509, verify_peer asks every client for a certificate signed by
 * ca-cert.pem.  0, or -errno with the cause and its fix in why. */
extern int tls_creds_load (struct tls_creds **out, enum tls_kind kind,
                           enum tls_role role, const char *path,
                           const char *identity, bool verify_peer,
                           char *why, size_t whylen);
extern void tls_creds_free (struct tls_creds *c);

/* The TLS handshake on the connected stream socket sock, finished by
 * deadline_ns (clock_now_ns), then the session's keys in keys.  A client
 * with X.509 checks that the server's certificate names server_name (a
 * host name or address; NULL: any name the CA signed).  peer gets the
 * client's PSK identity or certificate name (a server), or the server's
 * (a client).  Nothing the peer sent after its last handshake
 * message is left in user space.  0, or -errno with the cause in why:
 * -EACCES for a credential the other side does not accept (unknown
 * identity, wrong key, untrusted certificate), -ETIMEDOUT, -EPROTO. */
extern int tls_handshake (int sock, const struct tls_creds *c,
                          uint64_t deadline_ns, const char *server_name,
                          struct tls_keys *keys,
                          char *peer, size_t peerlen,
                          char *why, size_t whylen);

/* Install keys on the TCP socket sock: from now on the kernel encrypts
 * what is sent and decrypts what is received.  0, or -errno with the
 * cause and its fix in why (-ENOENT: this kernel has no kTLS). */
extern int tls_ktls_install (int sock, const struct tls_keys *keys,
                             char *why, size_t whylen);

/* Can this kernel do kTLS?  Tried on a TCP connection over the loopback
 * interface.  0, or -errno with the cause and its fix in why. */
extern int tls_ktls_probe (char *why, size_t whylen);

/* Forget the keys (explicit_bzero). */
extern void tls_keys_wipe (struct tls_keys *keys);

/* On a kTLS socket whose receive failed with EIO (a record that is not
 * data came): read that record and describe it in what ("close_notify"
 * for an orderly end).  1 if it ended the stream in order, 0 otherwise,
 * -errno if nothing could be read. */
extern int tls_ktls_read_control (int sock, char *what, size_t whatlen);

/* Send a close_notify alert on a kTLS socket (best effort). */
extern void tls_ktls_close_notify (int sock);

#endif /* NBDSWAP_TLS_H */
