/* nbdswap: what serve and status share: addresses, the runtime
 * directory, serve's options, and how a served nbdkit is recognised.
 */
#ifndef NBDSWAP_SERVE_H
#define NBDSWAP_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Where sockets and stats files go unless told otherwise; the
 * environment variable NBDSWAP_RUNTIME_DIR overrides it. */
#define SERVE_RUNTIME_DIR "/run/nbdswap"

/* NBD's IANA port, used when --bind is given without --port. */
#define SERVE_DEFAULT_PORT "10809"

/* nbdkit threads per connection: the kernel's nbd client keeps many
 * requests in flight on one connection, and nbdkit serves one request
 * per thread (see nbdswap(8), "Threads"). */
#define SERVE_DEFAULT_THREADS 32

/* The plugin's file name and its short name for nbdkit. */
#define SERVE_PLUGIN_SO "nbdkit-swapfile-plugin.so"
#define SERVE_PLUGIN_NAME "swapfile"

/* The runtime directory: $NBDSWAP_RUNTIME_DIR or SERVE_RUNTIME_DIR. */
extern const char *serve_runtime_dir (void);

/* FILE's base name without its last extension ("host1.img" ->
 * "host1"), into buf; the name of its socket and stats file. */
extern void serve_instance_name (const char *file, char *buf, size_t len);

/* True when ADDR is a numeric loopback address (127.0.0.0/8, ::1,
 * ::ffff:127.x.x.x). */
extern bool netaddr_is_loopback (const char *addr);

/* True when ADDR is a numeric IPv4 or IPv6 address. */
extern bool netaddr_is_numeric (const char *addr);

/* True when S is ADDR or ADDR/PREFIX with a prefix length in range for
 * the address family. */
extern bool netaddr_is_cidr (const char *s);

/* The most --allow CIDRs (after splitting comma lists) serve takes. */
#define SERVE_MAX_ALLOW 64

/* A repeatable option's arguments, in the order given. */
struct serve_list {
  char *item[SERVE_MAX_ALLOW];
  size_t n;
};

/* A 'nbdswap serve' command line as given, each option as its string
 * (serve-options.c has the one table of options that fills it).  The
 * strings are argv's: nothing is copied. */
struct serve_args {
  const char *file;             /* FILE */
  size_t nr_files;              /* words that are not options: 1 is right */
  const char *socket;           /* --socket */
  const char *port;             /* --port */
  const char *bind;             /* --bind */
  struct serve_list allow;      /* each --allow, comma lists unsplit */
  const char *tls_psk;          /* --tls-psk */
  const char *tls_psk_exports;  /* --tls-psk-exports */
  const char *tls_certs;        /* --tls-certificates */
  bool tls_verify_peer;         /* --tls-verify-peer */
  const char *export;           /* --export */
  const char *dir;              /* --dir */
  const char *threads;          /* --threads */
  bool foreground;              /* --foreground */
  const char *pidfile;          /* --pidfile */
  bool dry_run;                 /* --dry-run */
  bool nbdkit;                  /* --nbdkit */
  bool native;                  /* --native (the default: a no-op) */
  const char *poll_us;          /* --poll-us */
  const char *file_io;          /* --file-io */
  bool help;                    /* --help */
  char **extra;                 /* the words after "--" */
  int nr_extra;
};

/* Reads the arguments of 'nbdswap serve' (argv[0] the command's name)
 * into *a as getopt_long does: long options exact or abbreviated,
 * "--opt=value" or "--opt value", short options alone or clustered, FILE
 * anywhere before "--", the words after it into a->extra.  getopt may
 * reorder argv.  quiet (status reading a server's /proc/PID/cmdline):
 * what is not understood is skipped without a word.  Returns 0; else
 * -EINVAL (an unknown option or a missing argument, which getopt named
 * on stderr) or -E2BIG (more than SERVE_MAX_ALLOW --allow). */
extern int serve_args_parse (int argc, char **argv, struct serve_args *a,
                             bool quiet);

/* The options' lines of serve --help, from the same table. */
extern void serve_options_help (FILE *fp);

/* True when the nbdkit command line argv (argc entries) loads the
 * swapfile plugin. */
extern bool serve_cmdline_is_ours (char **argv, size_t argc);

/* Which server serve runs (serve-choice.c): the native server unless
 * --nbdkit, or unless it cannot serve here, when nbdkit with the plugin
 * stands in for it where it can. */

/* True where io_uring is denied: a container's seccomp profile, the
 * kernel.io_uring_disabled sysctl, a kernel without it; the reason in
 * why.  A memory limit is not such a case: the server names it at
 * start. */
extern bool serve_uring_denied (char *why, size_t len);

/* Why the native server cannot serve here, in words that follow "the
 * native server ...". */
struct native_block {
  char cause[384];              /* "needs io_uring, and ..." */
  const char *fix;              /* what would let it serve */
  const char *instead;          /* what nbdkit then does in its place */
};

/* True when the native server cannot serve command line a on this host:
 * io_uring is denied, or TLS is asked where its kTLS cannot be had (a
 * unix socket, no tls module); *b says why.  activated: systemd passed
 * the listening socket, fd 3. */
extern bool serve_native_blocked (const struct serve_args *a, bool activated,
                                  struct native_block *b);

/* What command line a asks of the native server that nbdkit with the
 * plugin cannot give (nr_export_allow: its --allow NAME=CIDR entries),
 * so that nbdkit must not stand in for it: the reason, or NULL. */
extern const char *serve_native_only (const struct serve_args *a,
                                      size_t nr_export_allow);

/* The word arg after "--" (its key keylen bytes, 0 if it is no
 * KEY=VALUE) for the native server, which runs no nbdkit: 0 if it is a
 * plugin parameter the native server takes, else EXIT_USAGE, said. */
extern int serve_native_param (const char *arg, size_t keylen);

#endif /* NBDSWAP_SERVE_H */
