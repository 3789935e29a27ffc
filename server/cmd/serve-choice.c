/* nbdswap serve: which server runs (serve.h).
 *
 * The native server is serve's own: it runs unless --nbdkit asks for
 * nbdkit with the plugin.  Where the host denies it what it needs
 * (io_uring; kTLS for TLS), serve falls back to nbdkit loudly, unless
 * the command line asks for something only the native server does: then
 * it refuses, since swap served without what was asked for (who may
 * open which export) is worse than swap not served.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "native.h"
#include "nbdswap.h"
#include "serve.h"
#include "tls.h"

bool
serve_uring_denied (char *why, size_t len)
{
  int r = engine_uring_probe (why, len);

  return r == -EPERM || r == -ENOSYS;
}

/* The native server needs io_uring for everything it does. */
static bool
uring_denied (struct native_block *b)
{
  char why[256];

  if (!serve_uring_denied (why, sizeof why))
    return false;
  snprintf (b->cause, sizeof b->cause, "needs io_uring, and %s", why);
  b->fix = "allow io_uring (the container's seccomp profile, sysctl "
    "kernel.io_uring_disabled)";
  b->instead = "and its pread/pwrite engine (more CPU per request)";
  return true;
}

/* The native server's TLS is the kernel's (kTLS): it needs TCP and the
 * tls module.  nbdkit does TLS in user space, on either socket. */
static bool
ktls_missing (const struct serve_args *a, bool activated,
              struct native_block *b)
{
  char why[256];
  bool tcp = activated ? native_socket_is_tcp (3) : a->port || a->bind;

  if (a->tls_psk == NULL && a->tls_certs == NULL)
    return false;
  b->instead = "and TLS in user space";
  if (!tcp) {
    snprintf (b->cause, sizeof b->cause, "does TLS in the kernel (kTLS), "
              "which needs TCP, and this is a unix socket");
    b->fix = "serve on --port/--bind";
    return true;
  }
  if (tls_ktls_probe (why, sizeof why) == 0)
    return false;
  snprintf (b->cause, sizeof b->cause, "does TLS in the kernel (kTLS), "
            "and %s", why);
  b->fix = "load the tls module (at boot: /etc/modules-load.d)";
  return true;
}

bool
serve_native_blocked (const struct serve_args *a, bool activated,
                      struct native_block *b)
{
  return uring_denied (b) || ktls_missing (a, activated, b);
}

const char *
serve_native_only (const struct serve_args *a, size_t nr_export_allow)
{
  if (a->dir && a->tls_psk)
    return a->tls_psk_exports
      ? "--dir with --tls-psk and --tls-psk-exports: each PSK identity "
      "opens the export of its name and those granted to it, a rule only "
      "the native server keeps (nbdkit tells the plugin no TLS identity)"
      : "--dir with --tls-psk: each PSK identity opens only the export "
      "of its name, a rule only the native server keeps (nbdkit tells the "
      "plugin no TLS identity)";
  if (nr_export_allow > 0 && !a->dir)
    return "--allow NAME=CIDR with one FILE: the plugin takes per-export "
      "allow lists with --dir only";
  return NULL;
}

/* The plugin parameters after "--" and whether the native server takes
 * them: why not, or NULL.  engine= and direct= are taken for the values
 * that mean what the native server does anyway (cmd-serve.c checks). */
static const struct {
  const char *key;
  const char *why_not;
} native_keys[] = {
  { "recheck", NULL },
  { "retry-timeout", NULL },
  { "retry-eio", NULL },
  { "mlock", NULL },
  { "engine", NULL },
  { "direct", NULL },
  { "file", "serve takes the file as FILE" },
  { "dir", "serve takes the directory as --dir DIR" },
  { "stats-file", "serve writes the counters to its runtime directory, "
    "where 'nbdswap status' reads them" },
  { "allow", "give --allow CIDR instead" },
  { "queue-depth", "it sizes the plugin's ring per nbdkit thread; the "
    "native server sizes one ring per connection itself (add --nbdkit to "
    "serve with nbdkit and the plugin)" },
  { "workers", "it prepares the plugin's nbdkit threads; the native server "
    "runs one thread per connection (add --nbdkit to serve with nbdkit "
    "and the plugin)" },
};

int
serve_native_param (const char *arg, size_t keylen)
{
  if (keylen == 0 || arg[0] == '-')
    return usage_error ("serve", "the native server (serve's default) runs "
                        "no nbdkit: after '--' it takes only plugin "
                        "parameters (KEY=VALUE), not '%s': add --nbdkit to "
                        "serve with nbdkit", arg);
  for (size_t i = 0; i < sizeof native_keys / sizeof native_keys[0]; i++) {
    if (strlen (native_keys[i].key) != keylen ||
        strncmp (arg, native_keys[i].key, keylen) != 0)
      continue;
    if (native_keys[i].why_not)
      return usage_error ("serve", "%s: not for the native server: %s",
                          arg, native_keys[i].why_not);
    return 0;
  }
  return usage_error ("serve", "%s: unknown parameter: the native server "
                      "takes recheck=, retry-timeout=, retry-eio= and "
                      "mlock= (see nbdkit swapfile --help)", arg);
}
