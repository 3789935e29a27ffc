/* Unit tests: the TLS module (lib/tls.c).  A server and a client
 * handshake over a loopback TCP connection, with PSK and with X.509
 * (certificates made by certtool, skipped without it); the two sides must
 * derive mirrored keys, and each wrong credential must be refused with a
 * message that names it.  Where this kernel has kTLS, the keys are
 * installed on both ends and data and close_notify cross the wire. */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "tls.h"
#include "../check-run.h"

#define KEY_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static char dir[64];

/* Write a file under dir. */
static char *
put_file (const char *name, const char *text)
{
  static char path[4][128];
  static int n;
  char *p = path[n++ % 4];
  FILE *f;

  snprintf (p, 128, "%s/%s", dir, name);
  f = fopen (p, "w");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  fclose (f);
  return p;
}

/* A connected TCP pair over loopback: kTLS needs TCP. */
static void
tcp_pair (int fds[2])
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;
  int l = socket (AF_INET, SOCK_STREAM, 0);

  ck_assert_int_ge (l, 0);
  ck_assert_int_eq (bind (l, (struct sockaddr *) &a, sizeof a), 0);
  ck_assert_int_eq (listen (l, 1), 0);
  ck_assert_int_eq (getsockname (l, (struct sockaddr *) &a, &alen), 0);
  fds[1] = socket (AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq (connect (fds[1], (struct sockaddr *) &a, sizeof a), 0);
  fds[0] = accept (l, NULL, NULL);
  ck_assert_int_ge (fds[0], 0);
  close (l);
}

struct side {
  struct tls_creds *creds;
  const char *server_name;              /* a client's, or NULL */
  int sock, r;
  struct tls_keys keys;
  char peer[256], why[512];
};

static void *
run_side (void *arg)
{
  struct side *s = arg;

  s->r = tls_handshake (s->sock, s->creds, clock_now_ns () + 10000000000ULL,
                        s->server_name, &s->keys, s->peer, sizeof s->peer, s->why,
                        sizeof s->why);
  /* A refused side must not leave the other waiting for the deadline. */
  if (s->r < 0)
    shutdown (s->sock, SHUT_RDWR);
  return NULL;
}

/* Handshake server and client credentials against each other. */
static void
handshake (struct side *srv, struct side *cli)
{
  pthread_t t;
  int fds[2];

  tcp_pair (fds);
  srv->sock = fds[0];
  cli->sock = fds[1];
  ck_assert_int_eq (pthread_create (&t, NULL, run_side, cli), 0);
  run_side (srv);
  pthread_join (t, NULL);
}

/* With kTLS here, the installed keys carry data both ways. */
static void
through_kernel (struct side *srv, struct side *cli)
{
  char why[512], buf[64], what[128];
  ssize_t n;

  if (tls_ktls_probe (why, sizeof why) < 0) {
    fprintf (stderr, "test-tls: no kTLS here (%s): keys not installed\n", why);
    return;
  }
  ck_assert_msg (tls_ktls_install (srv->sock, &srv->keys, why, sizeof why)
                 == 0, "server: %s", why);
  ck_assert_msg (tls_ktls_install (cli->sock, &cli->keys, why, sizeof why)
                 == 0, "client: %s", why);
  ck_assert_int_eq (send (cli->sock, "ping", 4, 0), 4);
  ck_assert_int_eq (recv (srv->sock, buf, 4, MSG_WAITALL), 4);
  ck_assert_int_eq (memcmp (buf, "ping", 4), 0);
  ck_assert_int_eq (send (srv->sock, "pong", 4, 0), 4);
  ck_assert_int_eq (recv (cli->sock, buf, 4, MSG_WAITALL), 4);
  ck_assert_int_eq (memcmp (buf, "pong", 4), 0);
  /* An alert is not data: the plain receive fails, and the record then
   * reads as an orderly end. */
  tls_ktls_close_notify (cli->sock);
  n = recv (srv->sock, buf, sizeof buf, 0);
  ck_assert_int_eq (n, -1);
  ck_assert_int_eq (errno, EIO);
  ck_assert_int_eq (tls_ktls_read_control (srv->sock, what, sizeof what), 1);
  ck_assert_msg (strstr (what, "lose") != NULL, "%s", what);
}

static void
done (struct side *srv, struct side *cli)
{
  close (srv->sock);
  close (cli->sock);
  tls_creds_free (srv->creds);
  tls_creds_free (cli->creds);
}

/* Load credentials, failing the test with why. */
static struct tls_creds *
load (enum tls_kind k, enum tls_role r, const char *path, const char *id,
      bool verify)
{
  struct tls_creds *c;
  char why[512];

  ck_assert_msg (tls_creds_load (&c, k, r, path, id, verify, why,
                                 sizeof why) == 0, "%s", why);
  return c;
}

START_TEST (test_psk)
{
  char *sf = put_file ("server.psk", "# keys\nbob:" KEY_B "\nalice:" KEY_A "\n");
  char *cf = put_file ("alice.psk", "alice:" KEY_A "\n");
  struct side srv = { 0 }, cli = { 0 };

  srv.creds = load (TLS_PSK, TLS_SERVER, sf, NULL, false);
  cli.creds = load (TLS_PSK, TLS_CLIENT, cf, "alice", false);
  handshake (&srv, &cli);
  ck_assert_msg (srv.r == 0, "server: %s", srv.why);
  ck_assert_msg (cli.r == 0, "client: %s", cli.why);
  ck_assert_str_eq (srv.peer, "alice");
  ck_assert_uint_eq (srv.keys.len, cli.keys.len);
  ck_assert_uint_gt (srv.keys.len, 0);
  ck_assert_int_eq (memcmp (&srv.keys.tx, &cli.keys.rx, srv.keys.len), 0);
  ck_assert_int_eq (memcmp (&srv.keys.rx, &cli.keys.tx, srv.keys.len), 0);
  ck_assert_int_ne (memcmp (&srv.keys.tx, &srv.keys.rx, srv.keys.len), 0);
  ck_assert_msg (strstr (srv.keys.cipher, "GCM") || strstr (srv.keys.cipher,
                                                            "CHACHA"),
                 "%s", srv.keys.cipher);
  through_kernel (&srv, &cli);
  tls_keys_wipe (&srv.keys);
  ck_assert_uint_eq (srv.keys.tx.gcm128.key[0] | srv.keys.tx.gcm128.key[1], 0);
  done (&srv, &cli);
}
END_TEST

/* A client with client_line as its key file, against a server that
 * knows only alice's KEY_A: refused by the server, which says expect. */
static void
psk_refused (const char *client_line, const char *identity,
             const char *expect)
{
  char *sf = put_file ("server.psk", "alice:" KEY_A "\n");
  char *cf = put_file ("client.psk", client_line);
  struct side srv = { 0 }, cli = { 0 };

  srv.creds = load (TLS_PSK, TLS_SERVER, sf, NULL, false);
  cli.creds = load (TLS_PSK, TLS_CLIENT, cf, identity, false);
  handshake (&srv, &cli);
  ck_assert_int_eq (srv.r, -EACCES);
  ck_assert_msg (strstr (srv.why, expect), "%s", srv.why);
  ck_assert_int_lt (cli.r, 0);
  done (&srv, &cli);
}

START_TEST (test_psk_wrong_key)
{
  psk_refused ("alice:" KEY_B "\n", "alice",
               "key for PSK identity 'alice' is not the one in");
}
END_TEST

START_TEST (test_psk_unknown_identity)
{
  psk_refused ("mallory:" KEY_A "\n", "mallory",
               "unknown PSK identity 'mallory'");
}
END_TEST

/* Bad credential files are refused when loaded, naming the fix. */
START_TEST (test_bad_files)
{
  struct tls_creds *c;
  char why[512];
  char *bad = put_file ("bad.psk", "alice:not-hex\n");
  char *empty = put_file ("empty.psk", "# nothing\n");

  ck_assert_int_lt (tls_creds_load (&c, TLS_PSK, TLS_SERVER, "/nonexistent",
                                    NULL, false, why, sizeof why), 0);
  ck_assert_msg (strstr (why, "psktool"), "%s", why);
  ck_assert_int_lt (tls_creds_load (&c, TLS_PSK, TLS_SERVER, bad, NULL,
                                    false, why, sizeof why), 0);
  ck_assert_msg (strstr (why, "hexadecimal"), "%s", why);
  ck_assert_int_lt (tls_creds_load (&c, TLS_PSK, TLS_SERVER, empty, NULL,
                                    false, why, sizeof why), 0);
  ck_assert_msg (strstr (why, "no 'identity:key' line"), "%s", why);
  ck_assert_int_lt (tls_creds_load (&c, TLS_PSK, TLS_CLIENT, bad, "bob",
                                    false, why, sizeof why), 0);
  ck_assert_int_lt (tls_creds_load (&c, TLS_X509, TLS_SERVER, dir, NULL,
                                    false, why, sizeof why), 0);
  ck_assert_msg (strstr (why, "server-cert.pem"), "%s", why);
}
END_TEST

/* The certificate fixtures, by certtool, in $D (= dir): a CA, a server
 * certificate and a client certificate in $D/x509; in $D/rogue, a client
 * certificate another CA signed, beside our CA's certificate (so that
 * this client trusts our server but our server must not trust it). */
static bool
make_certs (void)
{
  static const char mk[] =
    "set -e; cd \"$D\"; mkdir -p x509 rogue;"
    "printf 'cn = nbdswap test CA\\nca\\ncert_signing_key\\nexpiration_days = 2\\n' > ca.t;"
    "printf 'cn = localhost\\ntls_www_server\\nencryption_key\\nsigning_key\\nexpiration_days = 2\\n' > srv.t;"
    "printf 'cn = client-one\\ntls_www_client\\nencryption_key\\nsigning_key\\nexpiration_days = 2\\n' > cli.t;"
    "for w in x509 rogue; do"
    " certtool -p --outfile $w/ca-key.pem 2>/dev/null;"
    " certtool -s --load-privkey $w/ca-key.pem --template ca.t --outfile $w/ca-cert.pem 2>/dev/null;"
    " certtool -p --outfile $w/client-key.pem 2>/dev/null;"
    " certtool -c --load-privkey $w/client-key.pem --load-ca-certificate $w/ca-cert.pem"
    "  --load-ca-privkey $w/ca-key.pem --template cli.t --outfile $w/client-cert.pem 2>/dev/null;"
    "done;"
    "certtool -p --outfile x509/server-key.pem 2>/dev/null;"
    "certtool -c --load-privkey x509/server-key.pem --load-ca-certificate x509/ca-cert.pem"
    " --load-ca-privkey x509/ca-key.pem --template srv.t --outfile x509/server-cert.pem 2>/dev/null;"
    "cp x509/ca-cert.pem rogue/ca-cert.pem";

  setenv ("D", dir, 1);
  return system (mk) == 0;
}

START_TEST (test_x509)
{
  char sdir[128], cdir[128], rdir[128];
  struct side srv = { 0 }, cli = { 0 };

  if (system ("command -v certtool > /dev/null") != 0) {
    fprintf (stderr, "test-tls: no certtool (gnutls-bin): X.509 not tested\n");
    return;
  }
  ck_assert (make_certs ());
  snprintf (sdir, sizeof sdir, "%s/x509", dir);
  snprintf (cdir, sizeof cdir, "%s/x509", dir);
  /* A client that trusts the CA and shows its certificate. */
  srv.creds = load (TLS_X509, TLS_SERVER, sdir, NULL, true);
  cli.creds = load (TLS_X509, TLS_CLIENT, cdir, NULL, false);
  cli.server_name = "localhost";
  handshake (&srv, &cli);
  ck_assert_msg (srv.r == 0, "server: %s", srv.why);
  ck_assert_msg (cli.r == 0, "client: %s", cli.why);
  ck_assert_msg (strstr (srv.peer, "client-one"), "%s", srv.peer);
  ck_assert_msg (strstr (cli.peer, "localhost"), "%s", cli.peer);
  ck_assert_int_eq (memcmp (&srv.keys.tx, &cli.keys.rx, srv.keys.len), 0);
  through_kernel (&srv, &cli);
  done (&srv, &cli);
  /* A client whose certificate another CA signed (it trusts ours). */
  snprintf (rdir, sizeof rdir, "%s/rogue", dir);
  memset (&srv, 0, sizeof srv);
  memset (&cli, 0, sizeof cli);
  srv.creds = load (TLS_X509, TLS_SERVER, sdir, NULL, true);
  cli.creds = load (TLS_X509, TLS_CLIENT, rdir, NULL, false);
  handshake (&srv, &cli);
  ck_assert_int_eq (srv.r, -EACCES);
  ck_assert_msg (strstr (srv.why, "certificate is not trusted"), "%s",
                 srv.why);
  done (&srv, &cli);
  /* A server whose certificate names another host. */
  memset (&srv, 0, sizeof srv);
  memset (&cli, 0, sizeof cli);
  srv.creds = load (TLS_X509, TLS_SERVER, sdir, NULL, false);
  cli.creds = load (TLS_X509, TLS_CLIENT, cdir, NULL, false);
  cli.server_name = "storage.example";
  handshake (&srv, &cli);
  ck_assert_int_eq (cli.r, -EACCES);
  ck_assert_msg (strstr (cli.why, "is not for 'storage.example'"), "%s",
                 cli.why);
  done (&srv, &cli);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("tls");
  TCase *tc = tcase_create ("core");
  int r;

  snprintf (dir, sizeof dir, "/tmp/nbdswap-test-tls.XXXXXX");
  if (mkdtemp (dir) == NULL)
    return 99;
  tcase_set_timeout (tc, 300);     /* certtool under TCG (VM scenario tls) */
  tcase_add_test (tc, test_psk);
  tcase_add_test (tc, test_psk_wrong_key);
  tcase_add_test (tc, test_psk_unknown_identity);
  tcase_add_test (tc, test_bad_files);
  tcase_add_test (tc, test_x509);
  suite_add_tcase (s, tc);
  r = check_run (s);
  setenv ("D", dir, 1);
  if (system ("rm -rf \"$D\"") != 0)
    fprintf (stderr, "test-tls: could not remove %s\n", dir);
  return r;
}
